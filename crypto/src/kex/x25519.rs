//! Curve25519, group 31 (RFC 8031): X25519 (RFC 7748).

use super::{DhGroup, invalid};
use crate::{Error, secret::SecretBytes};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use x25519_dalek::X25519_BASEPOINT_BYTES;
use zeroize::Zeroizing;

/// Octets in a scalar, a public value and a shared secret.
const LEN: usize = 32;

/// 32 random octets; clamping happens inside X25519 (RFC 7748 section 5).
pub(super) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Zeroizing<[u8; LEN]> {
    let mut k = Zeroizing::new([0u8; LEN]);
    rng.fill_bytes(&mut *k);
    k
}

/// A fixed 32-octet scalar.
pub(super) fn from_bytes(group: DhGroup, bytes: &[u8]) -> Result<Zeroizing<[u8; LEN]>, Error> {
    <[u8; LEN]>::try_from(bytes).map(Zeroizing::new).map_err(|_| Error::KeyLength {
        alg: group.name(),
        want: LEN,
        got: bytes.len(),
    })
}

/// `X25519(k, 9)`.
pub(super) fn public_value(k: &[u8; LEN]) -> Vec<u8> {
    x25519_dalek::x25519(*k, X25519_BASEPOINT_BYTES).to_vec()
}

/// `X25519(k, u)` for the peer's `u`, refusing the all-zero output that any
/// low-order `u` produces (RFC 8031 section 2, RFC 7748 section 6.1).
pub(super) fn shared_secret(k: &[u8; LEN], group: DhGroup, peer_public: &[u8]) -> Result<SecretBytes, Error> {
    let u = <[u8; LEN]>::try_from(peer_public).map_err(|_| invalid(group, "length is not 32 octets"))?;
    let out = Zeroizing::new(x25519_dalek::x25519(*k, u));
    if bool::from(out.ct_eq(&[0u8; LEN])) {
        return Err(Error::DegenerateSecret);
    }
    Ok(SecretBytes::from_slice(&*out))
}
