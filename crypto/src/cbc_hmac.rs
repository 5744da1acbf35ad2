//! AES-CBC encryption (RFC 3602) and HMAC-SHA2 integrity (RFC 4868), the
//! non-AEAD suites many clients still propose (`aes128-sha256`).

use crate::{Error, secret::ct_eq};
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use aes::{Aes128, Aes256, Block};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// AES block length, which is also the CBC IV length, in octets.
pub const BLOCK_LEN: usize = 16;

/// The AES-CBC key sizes Tandem negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CbcAlgorithm {
    /// AES-CBC with a 128-bit key (`aes128`).
    Aes128Cbc,
    /// AES-CBC with a 256-bit key (`aes256`).
    Aes256Cbc,
}

impl CbcAlgorithm {
    /// Key length in octets.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc => 16,
            Self::Aes256Cbc => 32,
        }
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128Cbc => "aes128",
            Self::Aes256Cbc => "aes256",
        }
    }
}

#[derive(Clone)]
enum AesKey {
    Aes128(Box<Aes128>),
    Aes256(Box<Aes256>),
}

/// A keyed AES-CBC cipher working in place on whole blocks.
#[derive(Clone)]
pub struct AesCbc {
    alg: CbcAlgorithm,
    key: AesKey,
}

impl AesCbc {
    /// Keys AES-CBC.
    pub fn new(alg: CbcAlgorithm, key: &[u8]) -> Result<Self, Error> {
        let bad = |_| Error::KeyLength { alg: alg.name(), want: alg.key_len(), got: key.len() };
        let key = match alg {
            CbcAlgorithm::Aes128Cbc => AesKey::Aes128(Box::new(Aes128::new_from_slice(key).map_err(bad)?)),
            CbcAlgorithm::Aes256Cbc => AesKey::Aes256(Box::new(Aes256::new_from_slice(key).map_err(bad)?)),
        };
        Ok(Self { alg, key })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> CbcAlgorithm {
        self.alg
    }

    /// Encrypts `data` (a whole number of blocks) in place.
    pub fn encrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), Error> {
        let blocks = as_blocks(data)?;
        match &self.key {
            AesKey::Aes128(k) => {
                cbc::Encryptor::inner_iv_init((**k).clone(), iv.into()).encrypt_blocks(blocks)
            }
            AesKey::Aes256(k) => {
                cbc::Encryptor::inner_iv_init((**k).clone(), iv.into()).encrypt_blocks(blocks)
            }
        }
        Ok(())
    }

    /// Decrypts `data` (a whole number of blocks) in place.
    pub fn decrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), Error> {
        let blocks = as_blocks(data)?;
        match &self.key {
            AesKey::Aes128(k) => {
                cbc::Decryptor::inner_iv_init((**k).clone(), iv.into()).decrypt_blocks(blocks)
            }
            AesKey::Aes256(k) => {
                cbc::Decryptor::inner_iv_init((**k).clone(), iv.into()).decrypt_blocks(blocks)
            }
        }
        Ok(())
    }

    /// Encrypts one block with the raw block cipher: a PRP the ESP layer
    /// uses to derive unpredictable CBC IVs from a counter under an
    /// IV-only key (the technique of RFC 3602 section 3 / NIST SP 800-38A
    /// Appendix C).
    pub fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        let mut b = Block::from(*block);
        match &self.key {
            AesKey::Aes128(k) => k.encrypt_block(&mut b),
            AesKey::Aes256(k) => k.encrypt_block(&mut b),
        }
        block.copy_from_slice(&b);
    }
}

impl core::fmt::Debug for AesCbc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AesCbc").field("alg", &self.alg).finish_non_exhaustive()
    }
}

fn as_blocks(data: &mut [u8]) -> Result<&mut [Block], Error> {
    if !data.len().is_multiple_of(BLOCK_LEN) {
        return Err(Error::BadLength(data.len()));
    }
    let (blocks, rest) = Block::slice_as_chunks_mut(data);
    debug_assert!(rest.is_empty(), "length checked to be a multiple of the block size");
    Ok(blocks)
}

/// HMAC-SHA2 integrity transforms with truncated ICVs (RFC 4868).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegAlgorithm {
    /// AUTH_HMAC_SHA2_256_128 (`sha256`).
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192 (`sha384`).
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256 (`sha512`).
    HmacSha512_256,
}

impl IntegAlgorithm {
    /// Key length in octets (the hash output size, RFC 4868 section 2.1.2).
    pub const fn key_len(self) -> usize {
        match self {
            Self::HmacSha256_128 => 32,
            Self::HmacSha384_192 => 48,
            Self::HmacSha512_256 => 64,
        }
    }

    /// ICV length in octets (half the hash output).
    pub const fn icv_len(self) -> usize {
        self.key_len() / 2
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256_128 => "sha256",
            Self::HmacSha384_192 => "sha384",
            Self::HmacSha512_256 => "sha512",
        }
    }
}

/// Largest ICV of any [`IntegAlgorithm`].
pub const MAX_ICV_LEN: usize = 32;

#[derive(Clone)]
enum HmacState {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

/// A keyed integrity transform. The keyed HMAC state is computed once and
/// cloned per message.
#[derive(Clone)]
pub struct Integrity {
    alg: IntegAlgorithm,
    state: HmacState,
}

impl Integrity {
    /// Keys `alg`; the key must be exactly [`IntegAlgorithm::key_len`] octets.
    pub fn new(alg: IntegAlgorithm, key: &[u8]) -> Result<Self, Error> {
        if key.len() != alg.key_len() {
            return Err(Error::KeyLength { alg: alg.name(), want: alg.key_len(), got: key.len() });
        }
        let bad = |_| Error::KeyLength { alg: alg.name(), want: alg.key_len(), got: key.len() };
        let state = match alg {
            IntegAlgorithm::HmacSha256_128 => HmacState::Sha256(Hmac::new_from_slice(key).map_err(bad)?),
            IntegAlgorithm::HmacSha384_192 => HmacState::Sha384(Hmac::new_from_slice(key).map_err(bad)?),
            IntegAlgorithm::HmacSha512_256 => HmacState::Sha512(Hmac::new_from_slice(key).map_err(bad)?),
        };
        Ok(Self { alg, state })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> IntegAlgorithm {
        self.alg
    }

    /// Computes the truncated ICV over the concatenation of `parts`; returns
    /// a buffer whose first [`IntegAlgorithm::icv_len`] octets are the ICV.
    pub fn compute(&self, parts: &[&[u8]]) -> [u8; MAX_ICV_LEN] {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]], out: &mut [u8; MAX_ICV_LEN]) {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            let full = m.finalize().into_bytes();
            let n = full.len() / 2;
            out[..n].copy_from_slice(&full[..n]);
        }
        let mut out = [0; MAX_ICV_LEN];
        match &self.state {
            HmacState::Sha256(m) => run(m, parts, &mut out),
            HmacState::Sha384(m) => run(m, parts, &mut out),
            HmacState::Sha512(m) => run(m, parts, &mut out),
        }
        out
    }

    /// Verifies `icv` over `parts` in constant time.
    pub fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> Result<(), Error> {
        let n = self.alg.icv_len();
        let want = self.compute(parts);
        if ct_eq(&want[..n], icv) { Ok(()) } else { Err(Error::BadTag) }
    }
}

impl core::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Integrity").field("alg", &self.alg).finish_non_exhaustive()
    }
}
