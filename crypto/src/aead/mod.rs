//! AEAD ciphers as ESP and IKEv2 use them (RFC 4106, RFC 5282, RFC 7634).
//!
//! The key material negotiated for an AEAD transform is the cipher key
//! followed by a 4-octet salt. Each packet carries an 8-octet explicit IV;
//! the 12-octet nonce is `salt || IV`. [`SaltedAead`] holds both halves and is
//! what protocols use; [`AeadCipher`] is the small trait a provider implements.

use crate::Error;
use zeroize::Zeroizing;

#[cfg(feature = "ring")]
mod ring_provider;
#[cfg(feature = "rustcrypto")]
mod rustcrypto_provider;

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("tandem-crypto needs at least one AEAD provider: enable `ring` or `rustcrypto`");

/// Length of every supported AEAD's ICV (tag), in octets.
pub const TAG_LEN: usize = 16;
/// Length of the explicit per-packet IV, in octets.
pub const IV_LEN: usize = 8;
/// Length of the salt that completes the nonce, in octets.
pub const SALT_LEN: usize = 4;
/// Length of the full nonce, in octets.
pub const NONCE_LEN: usize = SALT_LEN + IV_LEN;

/// The AEAD algorithms Tandem negotiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// AES-GCM with a 16-octet ICV and a 128-bit key (`aes128gcm16`).
    Aes128Gcm16,
    /// AES-GCM with a 16-octet ICV and a 256-bit key (`aes256gcm16`).
    Aes256Gcm16,
    /// ChaCha20-Poly1305 (`chacha20poly1305`).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 3] = [Self::Aes128Gcm16, Self::Aes256Gcm16, Self::ChaCha20Poly1305];

    /// Cipher key length in octets (without the salt).
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm16 => 16,
            Self::Aes256Gcm16 | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Negotiated key material length in octets: key plus salt.
    pub const fn keymat_len(self) -> usize {
        self.key_len() + SALT_LEN
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm16 => "aes128gcm16",
            Self::Aes256Gcm16 => "aes256gcm16",
            Self::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }
}

/// A keyed AEAD cipher: the one trait an AEAD provider implements.
///
/// Both methods work in place on the caller's buffer and never allocate.
pub trait AeadCipher: Send + Sync {
    /// The algorithm this cipher was keyed for.
    fn algorithm(&self) -> AeadAlgorithm;

    /// Encrypts `in_out` in place and returns the tag.
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error>;

    /// Verifies `tag` (in constant time) and decrypts `in_out` in place.
    ///
    /// On [`Error::BadTag`] the contents of `in_out` are unspecified.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error>;
}

/// An AEAD implementation, chosen at build time by cargo features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// `ring` (feature `ring`): assembly AES-GCM and ChaCha20-Poly1305.
    Ring,
    /// RustCrypto's `aes-gcm` and `chacha20poly1305` (feature `rustcrypto`).
    RustCrypto,
}

impl Provider {
    /// The providers compiled into this build, preferred first.
    pub const fn available() -> &'static [Provider] {
        #[cfg(all(feature = "ring", feature = "rustcrypto"))]
        {
            &[Provider::Ring, Provider::RustCrypto]
        }
        #[cfg(all(feature = "ring", not(feature = "rustcrypto")))]
        {
            &[Provider::Ring]
        }
        #[cfg(all(not(feature = "ring"), feature = "rustcrypto"))]
        {
            &[Provider::RustCrypto]
        }
    }

    /// The data path's default: `ring` when built in, as `cargo bench -p
    /// tandem-esp` measures it faster for every algorithm on x86-64 (see
    /// BENCHMARKS.md); otherwise RustCrypto.
    pub const fn preferred() -> Self {
        Self::available()[0]
    }

    /// The provider's name as benchmarks and logs print it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::RustCrypto => "rustcrypto",
        }
    }

    /// Keys `alg` with `key` (the cipher key only, no salt).
    pub fn cipher(self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, Error> {
        if key.len() != alg.key_len() {
            return Err(Error::KeyLength { alg: alg.name(), want: alg.key_len(), got: key.len() });
        }
        match self {
            #[cfg(feature = "ring")]
            Self::Ring => ring_provider::cipher(alg, key),
            #[cfg(feature = "rustcrypto")]
            Self::RustCrypto => rustcrypto_provider::cipher(alg, key),
            #[allow(unreachable_patterns)]
            _ => Err(Error::Unavailable(self.name())),
        }
    }
}

/// An AEAD keyed from negotiated key material (`key || salt`), taking the
/// 8-octet explicit IV per call.
pub struct SaltedAead {
    cipher: Box<dyn AeadCipher>,
    salt: Zeroizing<[u8; SALT_LEN]>,
}

impl SaltedAead {
    /// Splits `keymat` into key and salt and keys `alg` with `provider`.
    pub fn new(provider: Provider, alg: AeadAlgorithm, keymat: &[u8]) -> Result<Self, Error> {
        if keymat.len() != alg.keymat_len() {
            return Err(Error::KeyLength { alg: alg.name(), want: alg.keymat_len(), got: keymat.len() });
        }
        let (key, salt) = keymat.split_at(alg.key_len());
        let mut s = Zeroizing::new([0; SALT_LEN]);
        s.copy_from_slice(salt);
        Ok(Self { cipher: provider.cipher(alg, key)?, salt: s })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.cipher.algorithm()
    }

    #[inline]
    fn nonce(&self, iv: &[u8; IV_LEN]) -> [u8; NONCE_LEN] {
        let mut n = [0; NONCE_LEN];
        n[..SALT_LEN].copy_from_slice(&*self.salt);
        n[SALT_LEN..].copy_from_slice(iv);
        n
    }

    /// Encrypts `in_out` in place under nonce `salt || iv`; returns the tag.
    #[inline]
    pub fn seal(&self, iv: &[u8; IV_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        self.cipher.seal_in_place(&self.nonce(iv), aad, in_out)
    }

    /// Verifies `tag` and decrypts `in_out` in place under nonce `salt || iv`.
    #[inline]
    pub fn open(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        self.cipher.open_in_place(&self.nonce(iv), aad, in_out, tag)
    }
}

impl core::fmt::Debug for SaltedAead {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaltedAead").field("alg", &self.algorithm()).finish_non_exhaustive()
    }
}
