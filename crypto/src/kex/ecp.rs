//! ECP groups 19 and 20 (RFC 5903): ECDH on NIST P-256 and P-384.

use super::{DhGroup, invalid};
use crate::{Error, secret::SecretBytes};
use p256::elliptic_curve::{
    AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, Generate, NonZeroScalar, PublicKey, SecretKey,
    array::typenum::Unsigned, ecdh, point::AffineCoordinates,
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Octets in one coordinate (and in a scalar) of curve `C`.
fn field_len<C: CurveArithmetic>() -> usize {
    <FieldBytesSize<C> as Unsigned>::USIZE
}

/// A random scalar in `[1, n)`.
pub(super) fn generate<C: CurveArithmetic, R: CryptoRng + ?Sized>(rng: &mut R) -> SecretKey<C> {
    SecretKey::from(NonZeroScalar::<C>::generate_from_rng(rng))
}

/// A fixed scalar: exactly one field length, big-endian, `0 < d < n`.
pub(super) fn from_be_bytes<C: CurveArithmetic>(group: DhGroup, bytes: &[u8]) -> Result<SecretKey<C>, Error> {
    let want = field_len::<C>();
    let repr = FieldBytes::<C>::try_from(bytes).map(Zeroizing::new).map_err(|_| Error::KeyLength {
        alg: group.name(),
        want,
        got: bytes.len(),
    })?;
    SecretKey::from_bytes(&repr).map_err(|_| Error::DegenerateSecret)
}

/// `x || y` of `d * G` (RFC 5903 section 7: no SEC1 `0x04` prefix).
pub(super) fn public_value<C: CurveArithmetic>(d: &SecretKey<C>) -> Vec<u8> {
    let point = *d.public_key().as_affine();
    let mut out = Vec::with_capacity(2 * field_len::<C>());
    out.extend_from_slice(&point.x());
    out.extend_from_slice(&point.y());
    out
}

/// The x coordinate of `d * Q` for the peer's `Q = x || y`, after checking
/// that `Q` is a point on the curve other than the identity.
pub(super) fn shared_secret<C: CurveArithmetic>(
    d: &SecretKey<C>,
    group: DhGroup,
    peer_public: &[u8],
) -> Result<SecretBytes, Error> {
    let n = field_len::<C>();
    if peer_public.len() != 2 * n {
        return Err(invalid(group, "length is not twice the field length"));
    }
    let (x, y) = peer_public.split_at(n);
    let (Ok(x), Ok(y)) = (FieldBytes::<C>::try_from(x), FieldBytes::<C>::try_from(y)) else {
        return Err(invalid(group, "length is not twice the field length"));
    };
    // `from_coordinates` rejects coordinates not below the field prime and
    // points not satisfying the curve equation (the all-zero encoding among
    // them, as b != 0); the affine form cannot encode the identity, which
    // `from_affine` refuses as well.
    let point: AffinePoint<C> = Option::from(AffineCoordinates::from_coordinates(&x, &y))
        .ok_or_else(|| invalid(group, "not a point on the curve"))?;
    let peer = PublicKey::<C>::from_affine(point).map_err(|_| invalid(group, "point at infinity"))?;
    let shared = ecdh::diffie_hellman(d.to_nonzero_scalar(), peer.as_affine());
    Ok(SecretBytes::from_slice(shared.raw_secret_bytes()))
}
