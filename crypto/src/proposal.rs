//! IKEv2 proposals written with strongSwan's algorithm keywords.
//!
//! A proposal string such as `aes256gcm16-prfsha256-x25519` is a dash-separated
//! list of keywords in any order; several proposals are separated by commas and
//! listed in order of preference. Each keyword names one IKEv2 transform
//! (RFC 7296 section 3.3.2); [`Transform::iana`] gives its transform type,
//! transform ID and Key Length attribute (RFC 7296 section 3.3.5).
//!
//! Keywords (aliases in parentheses; [`Transform::name`] prints the first):
//!
//! | Type      | Keywords |
//! |-----------|----------|
//! | ENCR      | `aes128` (`aes`), `aes256`, `aes128gcm16` (`aes128gcm`, `aes128gcm128`), `aes256gcm16` (`aes256gcm`, `aes256gcm128`), `chacha20poly1305` |
//! | INTEG     | `sha256` (`sha2_256`), `sha384` (`sha2_384`), `sha512` (`sha2_512`) |
//! | PRF       | `prfsha256`, `prfsha384`, `prfsha512` |
//! | DH / KE   | `modp2048`, `modp3072`, `ecp256`, `ecp384`, `x25519` (`curve25519`) |
//! | ESN       | `esn`, `noesn` |
//!
//! The rules follow strongSwan's:
//!
//! - Keywords are case-sensitive (`AES128` is unknown), as strongSwan matches
//!   them exactly. Whitespace around proposals and keywords is ignored.
//! - Several algorithms of one type may be listed, most preferred first. A
//!   repeated algorithm (including through an alias, `sha256-sha2_256`) is
//!   ignored after its first occurrence, so no transform is sent twice.
//! - Every proposal needs an encryption algorithm; AEAD and classic
//!   encryption cannot be mixed in one proposal.
//! - Classic (non-AEAD) encryption needs an integrity algorithm. AEAD
//!   proposals drop any integrity algorithms listed, as strongSwan does.
//! - IKE proposals need a PRF and a key exchange method. Without an explicit
//!   PRF, each integrity algorithm implies the matching PRF (`sha256` gives
//!   `prfsha256`); as in strongSwan this also holds for AEAD proposals, where
//!   the integrity algorithm is then dropped, so `aes256gcm16-sha256-x25519`
//!   means `aes256gcm16-prfsha256-x25519`. An AEAD proposal with neither a PRF
//!   nor an integrity algorithm is rejected.
//! - ESP proposals without `esn`/`noesn` get `noesn`, strongSwan's default. A
//!   key exchange method in an ESP proposal requests PFS.
//!
//! Stricter than strongSwan, which silently drops or keeps such keywords: a
//! PRF in an ESP proposal and an ESN keyword in an IKE proposal are errors,
//! and ESP with classic encryption requires integrity (no encryption-only ESP).

use crate::Error;
use crate::aead::AeadAlgorithm;
use crate::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
use crate::kex::DhGroup;
use crate::prf::PrfAlgorithm;
use core::fmt;

/// IANA Transform Type 1, encryption algorithm (ENCR).
const TYPE_ENCR: u8 = 1;
/// IANA Transform Type 2, pseudo-random function (PRF).
const TYPE_PRF: u8 = 2;
/// IANA Transform Type 3, integrity algorithm (INTEG).
const TYPE_INTEG: u8 = 3;
/// IANA Transform Type 4, Diffie-Hellman group / key exchange method.
const TYPE_DH: u8 = 4;
/// IANA Transform Type 5, extended sequence numbers (ESN).
const TYPE_ESN: u8 = 5;

/// ENCR_AES_CBC (RFC 3602).
const ENCR_AES_CBC: u16 = 12;
/// ENCR_AES_GCM_16 (RFC 4106, RFC 5282).
const ENCR_AES_GCM_16: u16 = 20;
/// ENCR_CHACHA20_POLY1305 (RFC 7634).
const ENCR_CHACHA20_POLY1305: u16 = 28;

/// An encryption transform: an AEAD or AES-CBC (which needs integrity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncrAlgorithm {
    /// A combined-mode (AEAD) cipher.
    Aead(AeadAlgorithm),
    /// AES-CBC, paired with an [`IntegAlgorithm`].
    Cbc(CbcAlgorithm),
}

impl EncrAlgorithm {
    /// Whether this is a combined-mode (AEAD) cipher.
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::Aead(_))
    }

    /// The strongSwan keyword.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aead(a) => a.name(),
            Self::Cbc(c) => c.name(),
        }
    }
}

impl fmt::Display for EncrAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One IKEv2 transform (RFC 7296 section 3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    /// Transform Type 1: encryption algorithm.
    Encr(EncrAlgorithm),
    /// Transform Type 2: pseudo-random function (IKE only).
    Prf(PrfAlgorithm),
    /// Transform Type 3: integrity algorithm.
    Integ(IntegAlgorithm),
    /// Transform Type 4: Diffie-Hellman group (key exchange method).
    Dh(DhGroup),
    /// Transform Type 5: extended sequence numbers on (`esn`) or off (`noesn`).
    Esn(bool),
}

impl Transform {
    /// IANA transform type, transform ID and Key Length attribute in bits.
    pub fn iana(&self) -> (u8, u16, Option<u16>) {
        match *self {
            Self::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes128Cbc)) => (TYPE_ENCR, ENCR_AES_CBC, Some(128)),
            Self::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes256Cbc)) => (TYPE_ENCR, ENCR_AES_CBC, Some(256)),
            Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes128Gcm16)) => {
                (TYPE_ENCR, ENCR_AES_GCM_16, Some(128))
            }
            Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes256Gcm16)) => {
                (TYPE_ENCR, ENCR_AES_GCM_16, Some(256))
            }
            Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::ChaCha20Poly1305)) => {
                (TYPE_ENCR, ENCR_CHACHA20_POLY1305, None)
            }
            Self::Prf(PrfAlgorithm::HmacSha256) => (TYPE_PRF, 5, None),
            Self::Prf(PrfAlgorithm::HmacSha384) => (TYPE_PRF, 6, None),
            Self::Prf(PrfAlgorithm::HmacSha512) => (TYPE_PRF, 7, None),
            Self::Integ(IntegAlgorithm::HmacSha256_128) => (TYPE_INTEG, 12, None),
            Self::Integ(IntegAlgorithm::HmacSha384_192) => (TYPE_INTEG, 13, None),
            Self::Integ(IntegAlgorithm::HmacSha512_256) => (TYPE_INTEG, 14, None),
            Self::Dh(group) => (TYPE_DH, group.iana_id(), None),
            Self::Esn(esn) => (TYPE_ESN, u16::from(esn), None),
        }
    }

    /// The transform with these IANA values, or `None` if unsupported (AES
    /// without a Key Length attribute, or any other type with one, included).
    pub fn from_iana(ty: u8, id: u16, key_bits: Option<u16>) -> Option<Transform> {
        let t = match (ty, id, key_bits) {
            (TYPE_ENCR, ENCR_AES_CBC, Some(128)) => Self::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes128Cbc)),
            (TYPE_ENCR, ENCR_AES_CBC, Some(256)) => Self::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes256Cbc)),
            (TYPE_ENCR, ENCR_AES_GCM_16, Some(128)) => {
                Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes128Gcm16))
            }
            (TYPE_ENCR, ENCR_AES_GCM_16, Some(256)) => {
                Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes256Gcm16))
            }
            (TYPE_ENCR, ENCR_CHACHA20_POLY1305, None) => {
                Self::Encr(EncrAlgorithm::Aead(AeadAlgorithm::ChaCha20Poly1305))
            }
            (TYPE_PRF, 5, None) => Self::Prf(PrfAlgorithm::HmacSha256),
            (TYPE_PRF, 6, None) => Self::Prf(PrfAlgorithm::HmacSha384),
            (TYPE_PRF, 7, None) => Self::Prf(PrfAlgorithm::HmacSha512),
            (TYPE_INTEG, 12, None) => Self::Integ(IntegAlgorithm::HmacSha256_128),
            (TYPE_INTEG, 13, None) => Self::Integ(IntegAlgorithm::HmacSha384_192),
            (TYPE_INTEG, 14, None) => Self::Integ(IntegAlgorithm::HmacSha512_256),
            (TYPE_DH, id, None) => Self::Dh(DhGroup::from_iana_id(id)?),
            (TYPE_ESN, 0, None) => Self::Esn(false),
            (TYPE_ESN, 1, None) => Self::Esn(true),
            _ => return None,
        };
        Some(t)
    }

    /// The strongSwan keyword.
    pub fn name(&self) -> &'static str {
        match *self {
            Self::Encr(e) => e.name(),
            Self::Prf(p) => p.name(),
            Self::Integ(i) => i.name(),
            Self::Dh(g) => g.name(),
            Self::Esn(true) => "esn",
            Self::Esn(false) => "noesn",
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which SA a proposal is for; the rules differ (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProposalKind {
    /// An IKE SA proposal.
    Ike,
    /// An ESP (Child SA) proposal.
    Esp,
}

/// One proposal: the acceptable algorithms of each type, most preferred first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Encryption algorithms: all AEAD or all AES-CBC.
    pub encr: Vec<EncrAlgorithm>,
    /// PRFs (IKE only).
    pub prf: Vec<PrfAlgorithm>,
    /// Integrity algorithms (empty with AEAD encryption).
    pub integ: Vec<IntegAlgorithm>,
    /// Key exchange methods (required for IKE; PFS for ESP).
    pub dh: Vec<DhGroup>,
    /// ESN modes, `true` for ESN (ESP only).
    pub esn: Vec<bool>,
}

impl Proposal {
    /// The proposal's transforms, ordered by transform type, then preference.
    pub fn transforms(&self) -> impl Iterator<Item = Transform> {
        let encr = self.encr.iter().copied().map(Transform::Encr);
        let prf = self.prf.iter().copied().map(Transform::Prf);
        let integ = self.integ.iter().copied().map(Transform::Integ);
        let dh = self.dh.iter().copied().map(Transform::Dh);
        let esn = self.esn.iter().copied().map(Transform::Esn);
        encr.chain(prf).chain(integ).chain(dh).chain(esn)
    }
}

impl fmt::Display for Proposal {
    /// strongSwan syntax: encryption, integrity, PRF, key exchange, ESN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encr = self.encr.iter().map(|e| e.name());
        let integ = self.integ.iter().map(|i| i.name());
        let prf = self.prf.iter().map(|p| p.name());
        let dh = self.dh.iter().map(|g| g.name());
        let esn = self.esn.iter().map(|&e| Transform::Esn(e).name());
        for (i, kw) in encr.chain(integ).chain(prf).chain(dh).chain(esn).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(kw)?;
        }
        Ok(())
    }
}

/// Every keyword and the transform it names; canonical names come first.
const KEYWORDS: &[(&str, Transform)] = &[
    ("aes128", Transform::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes128Cbc))),
    ("aes", Transform::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes128Cbc))),
    ("aes256", Transform::Encr(EncrAlgorithm::Cbc(CbcAlgorithm::Aes256Cbc))),
    ("aes128gcm16", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes128Gcm16))),
    ("aes128gcm", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes128Gcm16))),
    ("aes128gcm128", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes128Gcm16))),
    ("aes256gcm16", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes256Gcm16))),
    ("aes256gcm", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes256Gcm16))),
    ("aes256gcm128", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::Aes256Gcm16))),
    ("chacha20poly1305", Transform::Encr(EncrAlgorithm::Aead(AeadAlgorithm::ChaCha20Poly1305))),
    ("sha256", Transform::Integ(IntegAlgorithm::HmacSha256_128)),
    ("sha2_256", Transform::Integ(IntegAlgorithm::HmacSha256_128)),
    ("sha384", Transform::Integ(IntegAlgorithm::HmacSha384_192)),
    ("sha2_384", Transform::Integ(IntegAlgorithm::HmacSha384_192)),
    ("sha512", Transform::Integ(IntegAlgorithm::HmacSha512_256)),
    ("sha2_512", Transform::Integ(IntegAlgorithm::HmacSha512_256)),
    ("prfsha256", Transform::Prf(PrfAlgorithm::HmacSha256)),
    ("prfsha384", Transform::Prf(PrfAlgorithm::HmacSha384)),
    ("prfsha512", Transform::Prf(PrfAlgorithm::HmacSha512)),
    ("modp2048", Transform::Dh(DhGroup::Modp2048)),
    ("modp3072", Transform::Dh(DhGroup::Modp3072)),
    ("ecp256", Transform::Dh(DhGroup::Ecp256)),
    ("ecp384", Transform::Dh(DhGroup::Ecp384)),
    ("x25519", Transform::Dh(DhGroup::Curve25519)),
    ("curve25519", Transform::Dh(DhGroup::Curve25519)),
    ("esn", Transform::Esn(true)),
    ("noesn", Transform::Esn(false)),
];

/// The transform a keyword names (exact, case-sensitive match).
fn lookup(keyword: &str) -> Option<Transform> {
    KEYWORDS.iter().find(|(kw, _)| *kw == keyword).map(|&(_, t)| t)
}

/// The PRF an integrity algorithm implies when an IKE proposal names none.
const fn prf_for(integ: IntegAlgorithm) -> PrfAlgorithm {
    match integ {
        IntegAlgorithm::HmacSha256_128 => PrfAlgorithm::HmacSha256,
        IntegAlgorithm::HmacSha384_192 => PrfAlgorithm::HmacSha384,
        IntegAlgorithm::HmacSha512_256 => PrfAlgorithm::HmacSha512,
    }
}

/// Appends `item` unless it is already listed (repeats are ignored).
fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Parses comma-separated proposals of dash-separated strongSwan keywords.
///
/// See the module documentation for the keywords and the rules applied.
/// Errors name the offending proposal and, for unknown keywords, the keyword.
pub fn parse_proposals(kind: ProposalKind, s: &str) -> Result<Vec<Proposal>, Error> {
    if s.trim().is_empty() {
        return Err(proposal_error("", "no proposals given"));
    }
    s.split(',').map(|item| parse_proposal(kind, item.trim())).collect()
}

/// Builds an [`Error::Proposal`].
fn proposal_error(proposal: &str, reason: impl Into<String>) -> Error {
    Error::Proposal { proposal: proposal.to_owned(), reason: reason.into() }
}

/// Parses and checks one proposal (one comma-separated item, trimmed).
fn parse_proposal(kind: ProposalKind, item: &str) -> Result<Proposal, Error> {
    let err = |reason: &str| proposal_error(item, reason);
    if item.is_empty() {
        return Err(err("empty proposal"));
    }
    let mut p = Proposal::default();
    for keyword in item.split('-').map(str::trim) {
        if keyword.is_empty() {
            return Err(err("empty keyword"));
        }
        let Some(transform) = lookup(keyword) else {
            let hint = match lookup(&keyword.to_ascii_lowercase()) {
                Some(_) => " (keywords are lower-case)",
                None => "",
            };
            return Err(proposal_error(item, format!("unknown keyword {keyword:?}{hint}")));
        };
        match transform {
            Transform::Encr(e) => push_unique(&mut p.encr, e),
            Transform::Prf(prf) => push_unique(&mut p.prf, prf),
            Transform::Integ(i) => push_unique(&mut p.integ, i),
            Transform::Dh(g) => push_unique(&mut p.dh, g),
            Transform::Esn(e) => push_unique(&mut p.esn, e),
        }
    }

    match kind {
        ProposalKind::Ike if !p.esn.is_empty() => {
            return Err(err("ESN (esn/noesn) applies to ESP, not to IKE proposals"));
        }
        ProposalKind::Esp if !p.prf.is_empty() => {
            return Err(err("a PRF applies to IKE, not to ESP proposals"));
        }
        _ => {}
    }
    if p.encr.is_empty() {
        return Err(err("an encryption algorithm is required"));
    }
    let aead = p.encr.iter().all(|e| e.is_aead());
    if !aead && p.encr.iter().any(|e| e.is_aead()) {
        return Err(err("AEAD and non-AEAD encryption algorithms cannot be mixed in one proposal"));
    }
    if !aead && p.integ.is_empty() {
        return Err(err("non-AEAD encryption requires an integrity algorithm"));
    }

    match kind {
        ProposalKind::Ike => {
            if p.prf.is_empty() {
                for &i in &p.integ {
                    push_unique(&mut p.prf, prf_for(i));
                }
            }
            if p.prf.is_empty() {
                return Err(err("an IKE proposal requires a PRF (e.g. prfsha256)"));
            }
            if p.dh.is_empty() {
                return Err(err("an IKE proposal requires a key exchange method (e.g. x25519)"));
            }
        }
        ProposalKind::Esp => {
            if p.esn.is_empty() {
                p.esn.push(false);
            }
        }
    }
    if aead {
        // AEAD proposals must not carry integrity (RFC 7296 section 3.3);
        // strongSwan strips them after using them to derive the PRF.
        p.integ.clear();
    }
    Ok(p)
}
