//! The cipher suites an ESP SA can use, keyed from IKEv2 KEYMAT.

use crate::Error;
use rand_core::CryptoRng;
use tandem_crypto::aead::{self, AeadAlgorithm, Provider, SaltedAead};
use tandem_crypto::cbc_hmac::{self, AesCbc, CbcAlgorithm, IntegAlgorithm, Integrity};
use zeroize::Zeroizing;

/// ESP header length: SPI and sequence number.
pub const ESP_HEADER_LEN: usize = 8;
/// Largest IV of any suite.
pub const MAX_IV_LEN: usize = cbc_hmac::BLOCK_LEN;
/// Largest ICV of any suite.
pub const MAX_ICV_LEN: usize = cbc_hmac::MAX_ICV_LEN;

/// An ESP cipher suite: an AEAD, or AES-CBC with HMAC-SHA2 integrity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-GCM-16 or ChaCha20-Poly1305 (RFC 4106, RFC 7634).
    Aead(AeadAlgorithm),
    /// AES-CBC (RFC 3602) with HMAC-SHA2 (RFC 4868).
    CbcHmac(CbcAlgorithm, IntegAlgorithm),
}

impl Suite {
    /// Every suite Tandem supports.
    pub const ALL: [Suite; 9] = [
        Suite::Aead(AeadAlgorithm::Aes128Gcm16),
        Suite::Aead(AeadAlgorithm::Aes256Gcm16),
        Suite::Aead(AeadAlgorithm::ChaCha20Poly1305),
        Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128),
        Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha384_192),
        Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha512_256),
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha256_128),
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha384_192),
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha512_256),
    ];

    /// KEYMAT length for one direction: encryption key (with salt for an
    /// AEAD) followed by the integrity key (RFC 7296 section 2.17).
    pub const fn keymat_len(self) -> usize {
        match self {
            Suite::Aead(a) => a.keymat_len(),
            Suite::CbcHmac(c, i) => c.key_len() + i.key_len(),
        }
    }

    /// IV length in octets.
    pub const fn iv_len(self) -> usize {
        match self {
            Suite::Aead(_) => aead::IV_LEN,
            Suite::CbcHmac(..) => cbc_hmac::BLOCK_LEN,
        }
    }

    /// ICV length in octets.
    pub const fn icv_len(self) -> usize {
        match self {
            Suite::Aead(_) => aead::TAG_LEN,
            Suite::CbcHmac(_, i) => i.icv_len(),
        }
    }

    /// The ciphertext's alignment (RFC 4303 section 2.4: at least 4).
    pub const fn align(self) -> usize {
        match self {
            Suite::Aead(_) => 4,
            Suite::CbcHmac(..) => cbc_hmac::BLOCK_LEN,
        }
    }

    /// The suite's name in strongSwan syntax (`aes128gcm16`, `aes128-sha256`).
    pub fn name(self) -> String {
        match self {
            Suite::Aead(a) => a.name().to_owned(),
            Suite::CbcHmac(c, i) => format!("{}-{}", c.name(), i.name()),
        }
    }
}

/// A keyed suite for one direction of one SA.
pub(crate) enum Cipher {
    Aead(SaltedAead),
    CbcHmac(Box<CbcHmac>),
}

/// AES-CBC with HMAC integrity, keyed.
pub(crate) struct CbcHmac {
    pub(crate) cbc: AesCbc,
    pub(crate) integ: Integrity,
    /// Outbound only: a random key whose block cipher turns the sequence
    /// number into an unpredictable IV.
    pub(crate) iv_gen: Option<AesCbc>,
}

impl Cipher {
    pub(crate) fn new<R: CryptoRng + ?Sized>(
        suite: Suite,
        provider: Provider,
        keymat: &[u8],
        outbound_rng: Option<&mut R>,
    ) -> Result<Self, Error> {
        if keymat.len() != suite.keymat_len() {
            return Err(Error::InvalidSa("KEYMAT length does not match the suite"));
        }
        Ok(match suite {
            Suite::Aead(a) => Cipher::Aead(SaltedAead::new(provider, a, keymat)?),
            Suite::CbcHmac(c, i) => {
                let (ek, ik) = keymat.split_at(c.key_len());
                let iv_gen = match outbound_rng {
                    Some(rng) => {
                        let mut k = Zeroizing::new([0u8; 32]);
                        rng.fill_bytes(&mut k[..c.key_len()]);
                        Some(AesCbc::new(c, &k[..c.key_len()])?)
                    }
                    None => None,
                };
                Cipher::CbcHmac(Box::new(CbcHmac {
                    cbc: AesCbc::new(c, ek)?,
                    integ: Integrity::new(i, ik)?,
                    iv_gen,
                }))
            }
        })
    }
}
