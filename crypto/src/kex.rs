//! Diffie-Hellman key exchange for IKEv2 (RFC 7296 section 1.2, RFC 5903,
//! RFC 8031, RFC 3526).

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
