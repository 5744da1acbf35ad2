//! Curve25519, group 31 (RFC 8031): X25519 (RFC 7748).

use super::{DhGroup, invalid};
use crate::{Error, secret::SecretBytes};
use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret};

/// Octets in a scalar, a public value and a shared secret.
const LEN: usize = 32;

/// 32 random octets; clamping happens inside X25519 (RFC 7748 section 5).
/// `StaticSecret` zeroizes itself on drop.
pub(super) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> StaticSecret {
    StaticSecret::random_from_rng(rng)
}

/// A fixed 32-octet scalar.
pub(super) fn from_bytes(group: DhGroup, bytes: &[u8]) -> Result<StaticSecret, Error> {
    let k = <[u8; LEN]>::try_from(bytes).map_err(|_| Error::KeyLength {
        alg: group.name(),
        want: LEN,
        got: bytes.len(),
    })?;
    Ok(StaticSecret::from(k))
}

/// `X25519(k, 9)`.
pub(super) fn public_value(k: &StaticSecret) -> Vec<u8> {
    PublicKey::from(k).as_bytes().to_vec()
}

/// `X25519(k, u)` for the peer's `u`, refusing the all-zero output that any
/// low-order `u` produces (RFC 8031 section 2, RFC 7748 section 6.1).
pub(super) fn shared_secret(
    k: &StaticSecret,
    group: DhGroup,
    peer_public: &[u8],
) -> Result<SecretBytes, Error> {
    let u = <[u8; LEN]>::try_from(peer_public).map_err(|_| invalid(group, "length is not 32 octets"))?;
    let out = k.diffie_hellman(&PublicKey::from(u));
    // `was_contributory` is a constant-time all-zero check.
    if !out.was_contributory() {
        return Err(Error::DegenerateSecret);
    }
    Ok(SecretBytes::from_slice(out.as_bytes()))
}
