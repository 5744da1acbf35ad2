//! Diffie-Hellman key exchange for IKEv2 (RFC 7296 section 1.2, RFC 5903,
//! RFC 8031, RFC 3526).
//!
//! [`KeyExchange`] holds one side's private value and the public value it
//! sends in its KE payload; [`KeyExchange::shared_secret`] validates the
//! peer's public value and computes the `g^ir` that feeds SKEYSEED
//! (RFC 7296 section 2.14). Encodings, per group:
//!
//! | group | public value | shared secret |
//! |-------|--------------|---------------|
//! | MODP 14/15 | `g^x mod p`, big-endian, left-padded to 256/384 octets | `g^xy mod p`, same padding |
//! | ECP 19/20 | `x \|\| y`, each 32/48 octets, no `0x04` prefix (RFC 5903 section 7) | the x coordinate, 32/48 octets |
//! | x25519 (31) | the 32-octet u coordinate (RFC 8031 section 2) | the 32-octet X25519 output |
//!
//! Peer values are checked before use: MODP values must satisfy
//! `1 < y < p-1` (RFC 6989 section 2.1 for safe primes), ECP values must be
//! on the curve and not the identity, and an all-zero X25519 result
//! (a low-order peer value) is refused (RFC 8031 section 2, RFC 7748
//! section 6.1).

use crate::{Error, secret::SecretBytes};
use core::fmt;
use rand_core::CryptoRng;
use zeroize::ZeroizeOnDrop;

mod ecp;
mod modp;
mod x25519;

/// The key-exchange groups Tandem negotiates, by IANA Transform Type 4 ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 2048-bit MODP group 14 (`modp2048`, RFC 3526).
    Modp2048,
    /// 3072-bit MODP group 15 (`modp3072`, RFC 3526).
    Modp3072,
    /// NIST P-256, group 19 (`ecp256`, RFC 5903).
    Ecp256,
    /// NIST P-384, group 20 (`ecp384`, RFC 5903).
    Ecp384,
    /// Curve25519, group 31 (`x25519` / `curve25519`, RFC 8031).
    Curve25519,
}

impl DhGroup {
    /// Every supported group.
    pub const ALL: [Self; 5] = [Self::Modp2048, Self::Modp3072, Self::Ecp256, Self::Ecp384, Self::Curve25519];

    /// The IANA Transform Type 4 identifier.
    pub const fn iana_id(self) -> u16 {
        match self {
            Self::Modp2048 => 14,
            Self::Modp3072 => 15,
            Self::Ecp256 => 19,
            Self::Ecp384 => 20,
            Self::Curve25519 => 31,
        }
    }

    /// The group with IANA identifier `id`, if supported.
    pub fn from_iana_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.iana_id() == id)
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Modp2048 => "modp2048",
            Self::Modp3072 => "modp3072",
            Self::Ecp256 => "ecp256",
            Self::Ecp384 => "ecp384",
            Self::Curve25519 => "x25519",
        }
    }

    /// Length of the public value in a KE payload, in octets (also the
    /// length of the shared secret for MODP and x25519; for ECP groups the
    /// shared secret is the x coordinate, half of it).
    pub const fn public_len(self) -> usize {
        match self {
            Self::Modp2048 => 256,
            Self::Modp3072 => 384,
            Self::Ecp256 => 64,
            Self::Ecp384 => 96,
            Self::Curve25519 => 32,
        }
    }
}

/// A private key-exchange value and its public value (zeroized on drop).
///
/// One value serves one exchange: IKEv2 uses a fresh one per IKE SA and,
/// with PFS, per CREATE_CHILD_SA. `Debug` prints only the group.
pub struct KeyExchange {
    group: DhGroup,
    private: Private,
    public: Vec<u8>,
}

/// The private half, per group; every variant zeroizes itself on drop.
enum Private {
    Modp2048(modp::Exponent<{ modp::U2048_LIMBS }>),
    Modp3072(modp::Exponent<{ modp::U3072_LIMBS }>),
    Ecp256(p256::SecretKey),
    Ecp384(p384::SecretKey),
    Curve25519(x25519_dalek::StaticSecret),
}

impl KeyExchange {
    /// A fresh private value for `group`, drawn from `rng`, and its public value.
    pub fn generate<R: CryptoRng + ?Sized>(group: DhGroup, rng: &mut R) -> Self {
        let private = match group {
            DhGroup::Modp2048 => Private::Modp2048(modp::Exponent::generate(rng)),
            DhGroup::Modp3072 => Private::Modp3072(modp::Exponent::generate(rng)),
            DhGroup::Ecp256 => Private::Ecp256(ecp::generate(rng)),
            DhGroup::Ecp384 => Private::Ecp384(ecp::generate(rng)),
            DhGroup::Curve25519 => Private::Curve25519(x25519::generate(rng)),
        };
        Self::with_private(group, private)
    }

    /// Builds a key exchange from a fixed private value; for known-answer
    /// tests only (real exchanges use [`KeyExchange::generate`]).
    ///
    /// `private` is the big-endian exponent (1 to 256/384 octets, nonzero)
    /// for MODP groups, the big-endian scalar (exactly 32/48 octets,
    /// `0 < d < n`) for ECP groups, and the 32-octet X25519 scalar as in
    /// RFC 7748 (clamped when used) for Curve25519. A wrong length gives
    /// [`Error::KeyLength`]; a zero or out-of-range value gives
    /// [`Error::DegenerateSecret`].
    #[doc(hidden)]
    pub fn from_private(group: DhGroup, private: &[u8]) -> Result<Self, Error> {
        let private = match group {
            DhGroup::Modp2048 => Private::Modp2048(modp::Exponent::from_be_bytes(group, private)?),
            DhGroup::Modp3072 => Private::Modp3072(modp::Exponent::from_be_bytes(group, private)?),
            DhGroup::Ecp256 => Private::Ecp256(ecp::from_be_bytes(group, private)?),
            DhGroup::Ecp384 => Private::Ecp384(ecp::from_be_bytes(group, private)?),
            DhGroup::Curve25519 => Private::Curve25519(x25519::from_bytes(group, private)?),
        };
        Ok(Self::with_private(group, private))
    }

    fn with_private(group: DhGroup, private: Private) -> Self {
        let public = match &private {
            Private::Modp2048(x) => x.public_value(&modp::MODP2048),
            Private::Modp3072(x) => x.public_value(&modp::MODP3072),
            Private::Ecp256(d) => ecp::public_value(d),
            Private::Ecp384(d) => ecp::public_value(d),
            Private::Curve25519(k) => x25519::public_value(k),
        };
        debug_assert_eq!(public.len(), group.public_len());
        Self { group, private, public }
    }

    /// The group this exchange belongs to.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value, exactly as carried in an IKEv2 KE payload's
    /// Key Exchange Data ([`DhGroup::public_len`] octets).
    pub fn public_value(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret `g^ir` (RFC 7296 section 2.14) with a peer whose KE
    /// payload carried `peer_public`.
    ///
    /// The peer value is validated first: a wrong length, an out-of-range
    /// MODP value, or a point off the curve gives
    /// [`Error::InvalidPublicValue`]; an all-zero X25519 result (a low-order
    /// peer point) gives [`Error::DegenerateSecret`].
    pub fn shared_secret(&self, peer_public: &[u8]) -> Result<SecretBytes, Error> {
        let group = self.group;
        match &self.private {
            Private::Modp2048(x) => x.shared_secret(&modp::MODP2048, group, peer_public),
            Private::Modp3072(x) => x.shared_secret(&modp::MODP3072, group, peer_public),
            Private::Ecp256(d) => ecp::shared_secret(d, group, peer_public),
            Private::Ecp384(d) => ecp::shared_secret(d, group, peer_public),
            Private::Curve25519(k) => x25519::shared_secret(k, group, peer_public),
        }
    }
}

impl fmt::Debug for KeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyExchange").field("group", &self.group).finish_non_exhaustive()
    }
}

// Every field of `Private` zeroizes itself on drop; the public value is public.
impl ZeroizeOnDrop for KeyExchange {}

/// The error for a bad peer public value in `group`.
fn invalid(group: DhGroup, reason: &'static str) -> Error {
    Error::InvalidPublicValue { group: group.name(), reason }
}
