//! The `ring` AEAD provider.
//!
//! `ring` keeps its expanded keys in its own types, which it does not zeroize
//! on drop; the key bytes Tandem hands it are held in zeroizing buffers.

use super::{AeadAlgorithm, AeadCipher, NONCE_LEN, TAG_LEN};
use crate::Error;
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

struct RingAead {
    alg: AeadAlgorithm,
    key: LessSafeKey,
}

pub(super) fn cipher(alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadCipher>, Error> {
    let ring_alg = match alg {
        AeadAlgorithm::Aes128Gcm16 => &AES_128_GCM,
        AeadAlgorithm::Aes256Gcm16 => &AES_256_GCM,
        AeadAlgorithm::ChaCha20Poly1305 => &CHACHA20_POLY1305,
    };
    let unbound = UnboundKey::new(ring_alg, key).map_err(|_| Error::KeyLength {
        alg: alg.name(),
        want: alg.key_len(),
        got: key.len(),
    })?;
    Ok(Box::new(RingAead { alg, key: LessSafeKey::new(unbound) }))
}

impl AeadCipher for RingAead {
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
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map_err(|_| Error::BadLength(in_out.len()))?;
        let mut out = [0; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    #[inline]
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Error> {
        self.key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                Tag::from(*tag),
                in_out,
                0..,
            )
            .map(|_| ())
            .map_err(|_| Error::BadTag)
    }
}
