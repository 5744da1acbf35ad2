//! Public-key authentication: certificates and signature AUTH payloads.
//!
//! What IKE_AUTH needs when peers authenticate with signatures instead of a
//! pre-shared key, as building blocks for the state machine; like the rest
//! of the crate it does no I/O, never reads the clock (validation takes
//! `now`) and takes the RNG from the caller.
//!
//! - [`Certificate`]: an X.509 v3 certificate (RFC 5280) from a CERT
//!   payload (encoding 4, RFC 7296 section 3.6) or a PEM file: subject,
//!   subjectAltNames, validity, public key. [`verify_chain`] validates one
//!   against trusted CAs; [`matches_identity`] checks it names the peer's
//!   ID payload (RFC 4945 section 3.1).
//! - [`PrivateKey`] and [`PublicKey`]: P-256, P-384, Ed25519 and RSA keys.
//!   [`PrivateKey::sign_auth`] makes the AUTH data of Digital Signature
//!   authentication (Auth Method 14, RFC 7427; Ed25519 per RFC 8420),
//!   [`PrivateKey::sign_auth_legacy`] that of ECDSA methods 9 and 10
//!   (RFC 4754) for peers without RFC 7427; [`verify_auth`] checks a peer's
//!   AUTH data of methods 14, 9, 10 and 1 (RSA with SHA-1).
//! - SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4): [`HashAlgorithm`],
//!   what Tandem announces ([`SUPPORTED_HASH_ALGORITHMS`]), the notify
//!   data codec and [`PrivateKey::choose_scheme`] / [`choose_hash`].
//! - CERTREQ (RFC 7296 section 3.7): [`certreq_hash`] and the payload
//!   data codec.
//!
//! The signed octets themselves come from [`crate::auth`] (RFC 7296
//! section 2.15). In IKE_AUTH, a responder checking the initiator (or the
//! reverse) runs: [`Certificate::from_der`] on each CERT payload,
//! [`verify_chain`] on the first with the others as intermediates,
//! [`matches_identity`] against IDi/IDr, then [`verify_auth`] with the
//! certificate's [`Certificate::public_key`] and answers any failure with
//! AUTHENTICATION_FAILED.

mod algid;
mod sig;
mod x509;

pub use algid::SignatureScheme;
pub use sig::{KeyKind, MIN_RSA_BITS, PrivateKey, PublicKey, SignatureVerified, verify_auth};
pub use x509::{AltName, Certificate, ChainVerified, MAX_INTERMEDIATES, matches_identity, verify_chain};

use crate::Error;
use core::fmt;

/// A value of the IANA "IKEv2 Hash Algorithms" registry (RFC 7427
/// section 7), as carried in SIGNATURE_HASH_ALGORITHMS; unknown values
/// round-trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashAlgorithm(pub u16);

impl HashAlgorithm {
    /// SHA-1 (RFC 3174); never announced or accepted by Tandem.
    pub const SHA1: Self = Self(1);
    /// SHA2-256.
    pub const SHA2_256: Self = Self(2);
    /// SHA2-384.
    pub const SHA2_384: Self = Self(3);
    /// SHA2-512.
    pub const SHA2_512: Self = Self(4);
    /// "Identity": the signature scheme takes the message itself
    /// (RFC 8420; Ed25519).
    pub const IDENTITY: Self = Self(5);

    /// The registry name of this value, or `None` if Tandem does not know it.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("SHA1"),
            2 => Some("SHA2_256"),
            3 => Some("SHA2_384"),
            4 => Some("SHA2_512"),
            5 => Some("IDENTITY"),
            _ => None,
        }
    }
}

impl fmt::Debug for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "HashAlgorithm({})", self.0),
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The hashes Tandem signs and verifies with, in its order of preference:
/// what it announces in SIGNATURE_HASH_ALGORITHMS.
pub const SUPPORTED_HASH_ALGORITHMS: [HashAlgorithm; 4] =
    [HashAlgorithm::SHA2_256, HashAlgorithm::SHA2_384, HashAlgorithm::SHA2_512, HashAlgorithm::IDENTITY];

/// The Notification Data of a SIGNATURE_HASH_ALGORITHMS notify: each hash
/// as two octets, big-endian (RFC 7427 section 4).
pub fn signature_hash_algorithms_data(hashes: &[HashAlgorithm]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0.to_be_bytes()).collect()
}

/// Parses a SIGNATURE_HASH_ALGORITHMS notify's data; unknown values are
/// kept. Fails with [`Error::InvalidSyntax`] on an odd length.
pub fn parse_signature_hash_algorithms(data: &[u8]) -> Result<Vec<HashAlgorithm>, Error> {
    if !data.len().is_multiple_of(2) {
        return Err(Error::InvalidSyntax("SIGNATURE_HASH_ALGORITHMS data of odd length"));
    }
    Ok(data.chunks_exact(2).map(|c| HashAlgorithm(u16::from_be_bytes([c[0], c[1]]))).collect())
}

/// The first of `ours` that the peer announced, if any.
pub fn choose_hash(ours: &[HashAlgorithm], peer: &[HashAlgorithm]) -> Option<HashAlgorithm> {
    ours.iter().copied().find(|h| peer.contains(h))
}

/// A CA's entry in CERTREQ data: the SHA-1 hash of its DER
/// SubjectPublicKeyInfo (RFC 7296 section 3.7).
pub fn certreq_hash(ca: &Certificate) -> [u8; 20] {
    tandem_crypto::hash::sha1(&[ca.spki_der()])
}

/// The Certification Authority data of a CERTREQ payload (encoding 4)
/// naming `cas`: their [`certreq_hash`]es, concatenated.
pub fn certreq_data(cas: &[Certificate]) -> Vec<u8> {
    cas.iter().flat_map(certreq_hash).collect()
}

/// Splits a CERTREQ payload's Certification Authority data into hashes.
/// Fails with [`Error::InvalidSyntax`] unless its length is a multiple of
/// 20.
pub fn parse_certreq_data(data: &[u8]) -> Result<Vec<[u8; 20]>, Error> {
    let chunks = data.chunks_exact(20);
    if !chunks.remainder().is_empty() {
        return Err(Error::InvalidSyntax("CERTREQ data is not a list of SHA-1 hashes"));
    }
    Ok(chunks.map(|c| <[u8; 20]>::try_from(c).unwrap_or_default()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_signature_hash_algorithms() {
        let data = signature_hash_algorithms_data(&SUPPORTED_HASH_ALGORITHMS);
        assert_eq!(data, [0, 2, 0, 3, 0, 4, 0, 5]);
        assert_eq!(parse_signature_hash_algorithms(&data), Ok(SUPPORTED_HASH_ALGORITHMS.to_vec()));
        let unknown = parse_signature_hash_algorithms(&[0x12, 0x34]).map(|v| v[0]);
        assert_eq!(unknown, Ok(HashAlgorithm(0x1234)));
        assert_eq!(format!("{:?}", HashAlgorithm(0x1234)), "HashAlgorithm(4660)");
        assert!(parse_signature_hash_algorithms(&[0, 2, 0]).is_err());
    }

    #[test]
    fn chooses_our_first_hash_the_peer_has() {
        let peer = [HashAlgorithm::SHA1, HashAlgorithm::SHA2_512, HashAlgorithm::SHA2_384];
        assert_eq!(choose_hash(&SUPPORTED_HASH_ALGORITHMS, &peer), Some(HashAlgorithm::SHA2_384));
        assert_eq!(choose_hash(&SUPPORTED_HASH_ALGORITHMS, &[HashAlgorithm::SHA1]), None);
    }

    #[test]
    fn rejects_certreq_data_of_partial_hashes() {
        assert_eq!(parse_certreq_data(&[7; 40]).map(|v| v.len()), Ok(2));
        assert!(parse_certreq_data(&[7; 41]).is_err());
    }
}
