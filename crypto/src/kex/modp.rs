//! MODP groups 14 and 15 (RFC 3526): `Z_p^*` with a safe prime `p` and
//! generator 2, computed with constant-time Montgomery exponentiation.

use super::{DhGroup, invalid};
use crate::{Error, secret::SecretBytes};
use crypto_bigint::{
    U2048, U3072, Uint,
    modular::{FixedMontyForm, FixedMontyParams},
};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Limbs of a 2048-bit integer on this target.
pub(super) const U2048_LIMBS: usize = U2048::LIMBS;
/// Limbs of a 3072-bit integer on this target.
pub(super) const U3072_LIMBS: usize = U3072::LIMBS;

/// Bits in a generated private exponent. NIST SP 800-56A asks for at least
/// twice the group's security strength (about 112 bits for group 14, 128
/// for group 15); 512 bits is comfortably above both and keeps the
/// exponentiation a quarter (or a sixth) of a full-length one.
const EXPONENT_BITS: u32 = 512;
/// Octets in a generated private exponent.
const EXPONENT_BYTES: usize = EXPONENT_BITS as usize / 8;

/// The 2048-bit MODP group's prime (RFC 3526 section 3):
/// `2^2048 - 2^1984 - 1 + 2^64 * ([2^1918 pi] + 124476)`.
const P2048_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// The 3072-bit MODP group's prime (RFC 3526 section 4):
/// `2^3072 - 2^3008 - 1 + 2^64 * ([2^2942 pi] + 1690314)`.
const P3072_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// A MODP group's Montgomery parameters, computed at compile time.
pub(super) struct Modp<const L: usize> {
    params: FixedMontyParams<L>,
    p_minus_1: Uint<L>,
}

impl<const L: usize> Modp<L> {
    const fn new(prime_hex: &str) -> Self {
        let p = crypto_bigint::Odd::<Uint<L>>::from_be_hex(prime_hex);
        let p_minus_1 = Uint::<L>::from_be_hex(prime_hex).wrapping_sub(&Uint::ONE);
        Self { params: FixedMontyParams::new_vartime(p), p_minus_1 }
    }
}

/// Group 14.
pub(super) static MODP2048: Modp<U2048_LIMBS> = Modp::new(P2048_HEX);
/// Group 15.
pub(super) static MODP3072: Modp<U3072_LIMBS> = Modp::new(P3072_HEX);

/// A private exponent (zeroized on drop) and how many of its low bits the
/// exponentiation walks.
pub(super) struct Exponent<const L: usize> {
    x: Zeroizing<Uint<L>>,
    bits: u32,
}

impl<const L: usize> Exponent<L> {
    /// A random, nonzero [`EXPONENT_BITS`]-bit exponent.
    pub(super) fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut buf = Zeroizing::new(vec![0u8; Uint::<L>::BYTES]);
        let low = Uint::<L>::BYTES - EXPONENT_BYTES;
        loop {
            rng.fill_bytes(&mut buf[low..]);
            // Zero has probability 2^-512; the check is for correctness only.
            if !bool::from(buf[low..].ct_eq(&[0u8; EXPONENT_BYTES])) {
                break;
            }
        }
        Self { x: Zeroizing::new(Uint::from_be_slice(&buf)), bits: EXPONENT_BITS }
    }

    /// A fixed exponent, big-endian, 1 to `Uint::<L>::BYTES` octets, nonzero.
    pub(super) fn from_be_bytes(group: DhGroup, bytes: &[u8]) -> Result<Self, Error> {
        let want = Uint::<L>::BYTES;
        if bytes.is_empty() || bytes.len() > want {
            return Err(Error::KeyLength { alg: group.name(), want, got: bytes.len() });
        }
        let mut buf = Zeroizing::new(vec![0u8; want]);
        buf[want - bytes.len()..].copy_from_slice(bytes);
        let x = Zeroizing::new(Uint::<L>::from_be_slice(&buf));
        if x.is_zero_vartime() {
            return Err(Error::DegenerateSecret);
        }
        Ok(Self { x, bits: Uint::<L>::BITS })
    }

    /// `base^x mod p` as an integer below `p`.
    fn pow(&self, group: &Modp<L>, base: &Uint<L>) -> Zeroizing<Uint<L>> {
        let base = FixedMontyForm::new(base, &group.params);
        let power = Zeroizing::new(base.pow_bounded_exp(&*self.x, self.bits));
        Zeroizing::new(power.retrieve())
    }

    /// `g^x mod p`, big-endian, left-padded to the modulus length.
    pub(super) fn public_value(&self, group: &Modp<L>) -> Vec<u8> {
        self.pow(group, &Uint::from_u64(2)).to_be_bytes().to_vec()
    }

    /// `y^x mod p` for the peer's `y`, after checking `1 < y < p-1`.
    pub(super) fn shared_secret(
        &self,
        group: &Modp<L>,
        id: DhGroup,
        peer_public: &[u8],
    ) -> Result<SecretBytes, Error> {
        if peer_public.len() != Uint::<L>::BYTES {
            return Err(invalid(id, "length is not the modulus length"));
        }
        let y = Uint::<L>::from_be_slice(peer_public);
        // RFC 6989 section 2.1: for a safe-prime group, 1 < y < p-1 excludes
        // the only elements of small order (1 and p-1).
        if y <= Uint::ONE {
            return Err(invalid(id, "value is 0 or 1"));
        }
        if y >= group.p_minus_1 {
            return Err(invalid(id, "value is p-1 or not below the prime"));
        }
        let z = self.pow(group, &y);
        // Unreachable for a valid y and a nonzero exponent below the
        // subgroup order, but cheap to refuse.
        if *z <= Uint::ONE || *z == group.p_minus_1 {
            return Err(Error::DegenerateSecret);
        }
        let bytes = Zeroizing::new(z.to_be_bytes());
        Ok(SecretBytes::from_slice(&bytes))
    }
}
