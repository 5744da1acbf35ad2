//! Proposal selection (RFC 7296 sections 2.7 and 3.3.6): the responder
//! picks one offered proposal and one transform of each type in it.
//!
//! Tandem prefers its own configured order (as strongSwan does by default):
//! for each configured proposal in turn, the first offered proposal it can
//! satisfy wins, and within a type the first configured algorithm that was
//! offered is chosen. A transform of a type Tandem does not know makes its
//! proposal unacceptable; unknown algorithms of a known type are ignored.

use tandem_crypto::kex::DhGroup;
use tandem_crypto::proposal::{EncrAlgorithm, Proposal, ProposalKind, Transform};
use tandem_crypto::{cbc_hmac::IntegAlgorithm, prf::PrfAlgorithm};

/// IANA transform types (RFC 7296 section 3.3.2).
const ENCR: u8 = 1;
const PRF: u8 = 2;
const INTEG: u8 = 3;
const DH: u8 = 4;
const ESN: u8 = 5;

/// One proposal as the peer offered it, decoded from its transforms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The proposal number, echoed in the answer.
    pub number: u8,
    encr: Vec<EncrAlgorithm>,
    prf: Vec<PrfAlgorithm>,
    integ: Vec<IntegAlgorithm>,
    dh: Vec<DhGroup>,
    esn: Vec<bool>,
    /// Transform types present, including unsupported algorithms, by type.
    present: [bool; 6],
    /// Integrity or key exchange "NONE" (ID 0) was offered.
    integ_none: bool,
    dh_none: bool,
    /// A transform of a type outside 1..=5 was offered.
    unknown_type: bool,
}

impl Offer {
    /// Decodes the `(type, id, key length)` triples of one offered proposal.
    pub fn from_transforms(number: u8, transforms: impl IntoIterator<Item = (u8, u16, Option<u16>)>) -> Self {
        let mut o = Offer { number, ..Offer::default() };
        for (ty, id, key_bits) in transforms {
            match ty {
                ENCR..=ESN => o.present[usize::from(ty)] = true,
                _ => o.unknown_type = true,
            }
            match (ty, id) {
                (INTEG, 0) => o.integ_none = true,
                (DH, 0) => o.dh_none = true,
                _ => match Transform::from_iana(ty, id, key_bits) {
                    Some(Transform::Encr(e)) => o.encr.push(e),
                    Some(Transform::Prf(p)) => o.prf.push(p),
                    Some(Transform::Integ(i)) => o.integ.push(i),
                    Some(Transform::Dh(g)) => o.dh.push(g),
                    Some(Transform::Esn(e)) => o.esn.push(e),
                    None => {}
                },
            }
        }
        o
    }
}

/// The algorithms agreed on: one of each type the proposal used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selected {
    /// The offered proposal's number.
    pub number: u8,
    /// Encryption.
    pub encr: EncrAlgorithm,
    /// PRF (IKE SAs).
    pub prf: Option<PrfAlgorithm>,
    /// Integrity (non-AEAD encryption).
    pub integ: Option<IntegAlgorithm>,
    /// Key exchange (IKE SAs, and CHILD SAs with PFS).
    pub dh: Option<DhGroup>,
    /// Extended sequence numbers (ESP).
    pub esn: bool,
}

impl Selected {
    /// The selection as a one-algorithm-per-type proposal, for the answer.
    pub fn to_proposal(&self) -> Proposal {
        Proposal {
            encr: vec![self.encr],
            prf: self.prf.into_iter().collect(),
            integ: self.integ.into_iter().collect(),
            dh: self.dh.into_iter().collect(),
            esn: if self.prf.is_some() { Vec::new() } else { vec![self.esn] },
        }
    }
}

/// Chooses from `offers` by the `configured` proposals' preference, or
/// `None`: the answer is then NO_PROPOSAL_CHOSEN.
pub fn select(kind: ProposalKind, configured: &[Proposal], offers: &[Offer]) -> Option<Selected> {
    configured.iter().find_map(|c| offers.iter().find_map(|o| matches(kind, c, o)))
}

/// The first configured algorithm that was also offered.
fn pick<T: Copy + PartialEq>(configured: &[T], offered: &[T]) -> Option<T> {
    configured.iter().copied().find(|a| offered.contains(a))
}

fn matches(kind: ProposalKind, c: &Proposal, o: &Offer) -> Option<Selected> {
    if o.unknown_type {
        return None;
    }
    let encr = pick(&c.encr, &o.encr)?;
    // Integrity: none with an AEAD (an explicit NONE is fine), required
    // and agreed otherwise.
    let integ = if encr.is_aead() {
        if !o.integ.is_empty() || (o.present[usize::from(INTEG)] && !o.integ_none) {
            return None;
        }
        None
    } else {
        Some(pick(&c.integ, &o.integ)?)
    };
    match kind {
        ProposalKind::Ike => {
            let prf = pick(&c.prf, &o.prf)?;
            let dh = pick(&c.dh, &o.dh)?;
            if o.present[usize::from(ESN)] {
                return None;
            }
            Some(Selected { number: o.number, encr, prf: Some(prf), integ, dh: Some(dh), esn: false })
        }
        ProposalKind::Esp => {
            if o.present[usize::from(PRF)] {
                return None;
            }
            // PFS: a configured group must be offered; without one, the
            // offer must allow NONE (or carry no key exchange at all).
            let dh = if c.dh.is_empty() {
                if !o.dh.is_empty() && !o.dh_none {
                    return None;
                }
                None
            } else {
                Some(pick(&c.dh, &o.dh)?)
            };
            // An offer without an ESN transform means 32-bit numbers.
            let offered_esn: &[bool] = if o.present[usize::from(ESN)] { &o.esn } else { &[false] };
            let esn = pick(&c.esn, offered_esn)?;
            Some(Selected { number: o.number, encr, prf: None, integ, dh, esn })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crypto::proposal::parse_proposals;

    fn offer(number: u8, kind: ProposalKind, s: &str) -> Offer {
        let p = parse_proposals(kind, s).expect("valid proposal").remove(0);
        Offer::from_transforms(number, p.transforms().map(|t| t.iana()))
    }

    fn conf(kind: ProposalKind, s: &str) -> Vec<Proposal> {
        parse_proposals(kind, s).expect("valid proposals")
    }

    #[test]
    fn accepts_the_first_configured_proposal_the_peer_offers() {
        let c = conf(ProposalKind::Ike, "aes256gcm16-prfsha384-ecp384,aes128-sha256-prfsha256-modp2048");
        let offers = [
            offer(1, ProposalKind::Ike, "aes128-sha256-modp2048"),
            offer(2, ProposalKind::Ike, "aes256gcm16-aes128gcm16-prfsha256-prfsha384-x25519-ecp384"),
        ];
        let s = select(ProposalKind::Ike, &c, &offers).expect("a match");
        assert_eq!(s.number, 2);
        assert_eq!(s.to_proposal().to_string(), "aes256gcm16-prfsha384-ecp384");
    }

    #[test]
    fn rejects_when_nothing_overlaps() {
        let c = conf(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519");
        assert_eq!(
            select(ProposalKind::Ike, &c, &[offer(1, ProposalKind::Ike, "aes256gcm16-prfsha256-ecp256")]),
            None
        );
        assert_eq!(select(ProposalKind::Ike, &c, &[]), None);
    }

    #[test]
    fn rejects_proposals_with_unknown_transform_types() {
        let c = conf(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519");
        let weird =
            Offer::from_transforms(1, [(1, 20, Some(256)), (2, 5, None), (4, 31, None), (9, 1, None)]);
        assert_eq!(select(ProposalKind::Ike, &c, &[weird]), None);
        // An unknown algorithm of a known type is simply not chosen.
        let extra =
            Offer::from_transforms(1, [(1, 20, Some(256)), (1, 99, None), (2, 5, None), (4, 31, None)]);
        assert!(select(ProposalKind::Ike, &c, &[extra]).is_some());
    }

    #[test]
    fn negotiates_esp_with_and_without_pfs_and_esn() {
        let plain = conf(ProposalKind::Esp, "aes128gcm16");
        let pfs = conf(ProposalKind::Esp, "aes128gcm16-x25519-esn-noesn");
        let offered_pfs = offer(1, ProposalKind::Esp, "aes128gcm16-x25519-esn");
        // PFS offered without NONE: a configuration without PFS refuses it.
        assert_eq!(select(ProposalKind::Esp, &plain, std::slice::from_ref(&offered_pfs)), None);
        let s = select(ProposalKind::Esp, &pfs, &[offered_pfs]).expect("PFS agreed");
        assert_eq!((s.dh, s.esn), (Some(DhGroup::Curve25519), true));
        // NONE among the groups lets a PFS-less configuration accept.
        let with_none =
            Offer::from_transforms(3, [(1, 20, Some(128)), (4, 31, None), (4, 0, None), (5, 0, None)]);
        let s = select(ProposalKind::Esp, &plain, &[with_none]).expect("no PFS");
        assert_eq!((s.number, s.dh, s.esn), (3, None, false));
        // A configuration with PFS refuses an offer without key exchange.
        assert_eq!(select(ProposalKind::Esp, &pfs, &[offer(1, ProposalKind::Esp, "aes128gcm16")]), None);
    }

    #[test]
    fn requires_matching_integrity_for_cbc_and_none_for_aead() {
        let c = conf(ProposalKind::Esp, "aes128-sha256,aes256gcm16");
        let s = select(ProposalKind::Esp, &c, &[offer(1, ProposalKind::Esp, "aes128-sha512-sha256")])
            .expect("CBC");
        assert_eq!(s.integ, Some(IntegAlgorithm::HmacSha256_128));
        assert_eq!(select(ProposalKind::Esp, &c, &[offer(1, ProposalKind::Esp, "aes128-sha384")]), None);
        // AEAD with a real integrity transform is malformed; with NONE it is fine.
        let bad = Offer::from_transforms(1, [(1, 20, Some(256)), (3, 12, None), (5, 0, None)]);
        assert_eq!(select(ProposalKind::Esp, &c, &[bad]), None);
        let ok = Offer::from_transforms(1, [(1, 20, Some(256)), (3, 0, None), (5, 0, None)]);
        assert!(select(ProposalKind::Esp, &c, &[ok]).is_some());
    }
}
