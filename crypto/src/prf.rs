//! Pseudo-random functions and IKEv2's `prf+` (RFC 7296 section 2.13).

use crate::{Error, secret::SecretBytes};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384, Sha512};

/// The PRFs Tandem negotiates: HMAC with SHA-2 (RFC 4868).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrfAlgorithm {
    /// PRF_HMAC_SHA2_256 (`prfsha256`).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (`prfsha384`).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (`prfsha512`).
    HmacSha512,
}

impl PrfAlgorithm {
    /// Output length in octets, which is also the preferred key length.
    pub const fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "prfsha256",
            Self::HmacSha384 => "prfsha384",
            Self::HmacSha512 => "prfsha512",
        }
    }

    /// `prf(key, data)`, where `data` is the concatenation of `parts`. HMAC
    /// accepts keys of any length, so this cannot fail.
    pub fn prf(self, key: &[u8], parts: &[&[u8]]) -> SecretBytes {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> SecretBytes {
            let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
            for p in parts {
                m.update(p);
            }
            SecretBytes::from_slice(&m.finalize().into_bytes())
        }
        match self {
            Self::HmacSha256 => run::<Hmac<Sha256>>(key, parts),
            Self::HmacSha384 => run::<Hmac<Sha384>>(key, parts),
            Self::HmacSha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    /// `prf+(key, seed)` truncated to `len` octets:
    /// `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`.
    pub fn prf_plus(self, key: &[u8], seed: &[u8], len: usize) -> Result<SecretBytes, Error> {
        let block = self.output_len();
        if len > 255 * block {
            return Err(Error::PrfPlusTooLong(len));
        }
        let mut out = SecretBytes::zeroed(len);
        let mut prev = SecretBytes::default();
        let mut filled = 0;
        let mut counter = 1u8;
        while filled < len {
            let t = self.prf(key, &[prev.expose(), seed, &[counter]]);
            let n = (len - filled).min(block);
            out.expose_mut()[filled..filled + n].copy_from_slice(&t.expose()[..n]);
            filled += n;
            prev = t;
            counter = counter.wrapping_add(1);
        }
        Ok(out)
    }
}
