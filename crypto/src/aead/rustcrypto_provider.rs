//! The RustCrypto AEAD provider (`aes-gcm`, `chacha20poly1305`), pure Rust.
//! Key schedules are zeroized on drop (the crates' `zeroize` feature).

use super::{AeadAlgorithm, AeadCipher, NONCE_LEN, TAG_LEN};
use crate::Error;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;

struct RustCryptoAead<C> {
    alg: AeadAlgorithm,
    cipher: C,
}

pub(super) fn cipher(alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, Error> {
    let bad_len = |_| Error::KeyLength { alg: alg.name(), want: alg.key_len(), got: key.len() };
    Ok(match alg {
        AeadAlgorithm::Aes128Gcm16 => {
            Box::new(RustCryptoAead { alg, cipher: Aes128Gcm::new_from_slice(key).map_err(bad_len)? })
        }
        AeadAlgorithm::Aes256Gcm16 => {
            Box::new(RustCryptoAead { alg, cipher: Aes256Gcm::new_from_slice(key).map_err(bad_len)? })
        }
        AeadAlgorithm::ChaCha20Poly1305 => {
            Box::new(RustCryptoAead { alg, cipher: ChaCha20Poly1305::new_from_slice(key).map_err(bad_len)? })
        }
    })
}

impl<C> AeadCipher for RustCryptoAead<C>
where
    C: AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16> + Send + Sync,
{
    fn algorithm(&self) -> AeadAlgorithm {
        self.alg
    }

    #[inline]
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Error> {
        let tag = self
            .cipher
            .encrypt_inout_detached(&(*nonce).into(), aad, in_out.into())
            .map_err(|_| Error::BadLength(in_out.len()))?;
        Ok(tag.into())
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        self.cipher
            .decrypt_inout_detached(&(*nonce).into(), aad, in_out.into(), &(*tag).into())
            .map_err(|_| Error::BadTag)
    }
}
