//! Proposal parsing, printing and IANA mapping.

use proptest::prelude::*;
use tandem_crypto::Error;
use tandem_crypto::aead::AeadAlgorithm;
use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
use tandem_crypto::kex::DhGroup;
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::proposal::{EncrAlgorithm, Proposal, ProposalKind, Transform, parse_proposals};

use AeadAlgorithm::*;
use CbcAlgorithm::*;
use DhGroup::*;
use IntegAlgorithm::*;
use PrfAlgorithm::*;
use ProposalKind::{Esp, Ike};

const AEADS: [EncrAlgorithm; 3] = [
    EncrAlgorithm::Aead(Aes128Gcm16),
    EncrAlgorithm::Aead(Aes256Gcm16),
    EncrAlgorithm::Aead(ChaCha20Poly1305),
];
const CBCS: [EncrAlgorithm; 2] = [EncrAlgorithm::Cbc(Aes128Cbc), EncrAlgorithm::Cbc(Aes256Cbc)];
const INTEGS: [IntegAlgorithm; 3] = [HmacSha256_128, HmacSha384_192, HmacSha512_256];
const PRFS: [PrfAlgorithm; 3] = [HmacSha256, HmacSha384, HmacSha512];

fn one(kind: ProposalKind, s: &str) -> Proposal {
    let mut v = parse_proposals(kind, s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(v.len(), 1, "{s:?}");
    v.remove(0)
}

/// Asserts `s` is rejected and returns the reason.
fn reject(kind: ProposalKind, s: &str) -> String {
    match parse_proposals(kind, s) {
        Err(Error::Proposal { reason, .. }) => reason,
        other => panic!("{s:?} should be rejected, got {other:?}"),
    }
}

fn all_transforms() -> Vec<Transform> {
    let mut all: Vec<Transform> = AEADS.iter().chain(&CBCS).map(|&e| Transform::Encr(e)).collect();
    all.extend(PRFS.map(Transform::Prf));
    all.extend(INTEGS.map(Transform::Integ));
    all.extend(DhGroup::ALL.map(Transform::Dh));
    all.extend([Transform::Esn(false), Transform::Esn(true)]);
    all
}

#[test]
fn parses_aead_ike() {
    let p = one(Ike, "aes256gcm16-prfsha256-x25519");
    assert_eq!(
        p,
        Proposal {
            encr: vec![EncrAlgorithm::Aead(Aes256Gcm16)],
            prf: vec![HmacSha256],
            integ: vec![],
            dh: vec![Curve25519],
            esn: vec![],
        }
    );
    assert_eq!(p.to_string(), "aes256gcm16-prfsha256-x25519");
    assert!(p.encr[0].is_aead());
}

#[test]
fn parses_multiple_algorithms_of_one_type() {
    let p = one(Ike, "aes128-aes256-sha256-sha384-modp2048-ecp256");
    assert_eq!(p.encr, CBCS.to_vec());
    assert!(!p.encr[0].is_aead());
    assert_eq!(p.integ, vec![HmacSha256_128, HmacSha384_192]);
    // No PRF given: each integrity algorithm implies its PRF.
    assert_eq!(p.prf, vec![HmacSha256, HmacSha384]);
    assert_eq!(p.dh, vec![Modp2048, Ecp256]);
    assert!(p.esn.is_empty());
}

#[test]
fn keyword_order_does_not_matter() {
    assert_eq!(
        one(Ike, "x25519-prfsha384-aes256gcm16-ecp384-aes128gcm16"),
        one(Ike, "aes256gcm16-aes128gcm16-prfsha384-x25519-ecp384")
    );
}

#[test]
fn every_keyword_parses() {
    let ike = [
        ("aes128-sha256-x25519", Transform::Encr(CBCS[0])),
        ("aes-sha256-x25519", Transform::Encr(CBCS[0])),
        ("aes256-sha256-x25519", Transform::Encr(CBCS[1])),
        ("aes128gcm16-prfsha256-x25519", Transform::Encr(AEADS[0])),
        ("aes128gcm-prfsha256-x25519", Transform::Encr(AEADS[0])),
        ("aes128gcm128-prfsha256-x25519", Transform::Encr(AEADS[0])),
        ("aes256gcm16-prfsha256-x25519", Transform::Encr(AEADS[1])),
        ("aes256gcm-prfsha256-x25519", Transform::Encr(AEADS[1])),
        ("aes256gcm128-prfsha256-x25519", Transform::Encr(AEADS[1])),
        ("chacha20poly1305-prfsha256-x25519", Transform::Encr(AEADS[2])),
        ("aes128-sha256-x25519", Transform::Integ(HmacSha256_128)),
        ("aes128-sha2_256-x25519", Transform::Integ(HmacSha256_128)),
        ("aes128-sha384-x25519", Transform::Integ(HmacSha384_192)),
        ("aes128-sha2_384-x25519", Transform::Integ(HmacSha384_192)),
        ("aes128-sha512-x25519", Transform::Integ(HmacSha512_256)),
        ("aes128-sha2_512-x25519", Transform::Integ(HmacSha512_256)),
        ("aes128gcm16-prfsha256-x25519", Transform::Prf(HmacSha256)),
        ("aes128gcm16-prfsha384-x25519", Transform::Prf(HmacSha384)),
        ("aes128gcm16-prfsha512-x25519", Transform::Prf(HmacSha512)),
        ("aes128gcm16-prfsha256-modp2048", Transform::Dh(Modp2048)),
        ("aes128gcm16-prfsha256-modp3072", Transform::Dh(Modp3072)),
        ("aes128gcm16-prfsha256-ecp256", Transform::Dh(Ecp256)),
        ("aes128gcm16-prfsha256-ecp384", Transform::Dh(Ecp384)),
        ("aes128gcm16-prfsha256-x25519", Transform::Dh(Curve25519)),
        ("aes128gcm16-prfsha256-curve25519", Transform::Dh(Curve25519)),
    ];
    for (s, t) in ike {
        assert!(one(Ike, s).transforms().any(|x| x == t), "{s:?} should contain {t}");
    }
    assert_eq!(one(Esp, "aes128gcm16-esn").esn, vec![true]);
    assert_eq!(one(Esp, "aes128gcm16-noesn").esn, vec![false]);
    assert_eq!(one(Esp, "aes128gcm16-esn-noesn").esn, vec![true, false]);
}

#[test]
fn several_proposals_and_whitespace() {
    let v = parse_proposals(Ike, "  aes256gcm16-prfsha384-ecp384 ,aes128 - sha256 - modp2048  ")
        .expect("valid proposals");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].to_string(), "aes256gcm16-prfsha384-ecp384");
    assert_eq!(v[1].to_string(), "aes128-sha256-prfsha256-modp2048");
}

#[test]
fn esp_defaults_and_pfs() {
    let p = one(Esp, "aes128gcm16");
    assert_eq!(p.encr, vec![AEADS[0]]);
    assert!(p.integ.is_empty() && p.prf.is_empty() && p.dh.is_empty());
    assert_eq!(p.esn, vec![false], "ESN defaults to noesn");
    assert_eq!(p.to_string(), "aes128gcm16-noesn");

    let p = one(Esp, "aes256-sha512-ecp384-esn");
    assert_eq!(p.encr, vec![CBCS[1]]);
    assert_eq!(p.integ, vec![HmacSha512_256]);
    assert_eq!(p.dh, vec![Ecp384], "a DH group in ESP means PFS");
    assert_eq!(p.esn, vec![true]);
    assert!(p.prf.is_empty());
}

#[test]
fn aead_integrity_derives_prf_then_is_dropped() {
    let p = one(Ike, "aes256gcm16-sha384-x25519");
    assert_eq!(p.prf, vec![HmacSha384]);
    assert!(p.integ.is_empty());
    // An explicit PRF wins; integrity is still dropped.
    let p = one(Ike, "aes256gcm16-sha384-prfsha512-x25519");
    assert_eq!(p.prf, vec![HmacSha512]);
    assert!(p.integ.is_empty());
    // ESP drops integrity with AEADs too.
    assert!(one(Esp, "chacha20poly1305-sha256").integ.is_empty());
}

#[test]
fn explicit_prf_is_kept_for_cbc() {
    let p = one(Ike, "aes128-sha256-prfsha512-ecp256");
    assert_eq!(p.prf, vec![HmacSha512]);
    assert_eq!(p.integ, vec![HmacSha256_128]);
}

#[test]
fn duplicates_are_ignored() {
    let p = one(Ike, "aes128-aes128-sha256-sha2_256-x25519-curve25519-x25519");
    assert_eq!(p.encr, vec![CBCS[0]]);
    assert_eq!(p.integ, vec![HmacSha256_128]);
    assert_eq!(p.prf, vec![HmacSha256]);
    assert_eq!(p.dh, vec![Curve25519]);
    assert_eq!(one(Esp, "aes128gcm-aes128gcm16-esn-esn").esn, vec![true]);
}

#[test]
fn transforms_in_type_order() {
    let p = one(Esp, "modp2048-sha256-aes128-esn");
    let types: Vec<u8> = p.transforms().map(|t| t.iana().0).collect();
    assert_eq!(types, vec![1, 3, 4, 5]);
    let p = one(Ike, "x25519-sha256-aes256");
    let types: Vec<u8> = p.transforms().map(|t| t.iana().0).collect();
    assert_eq!(types, vec![1, 2, 3, 4]);
}

#[test]
fn rejects_unknown_keyword_by_name() {
    let err = parse_proposals(Ike, "aes256gcm16-aes999-x25519").expect_err("unknown keyword");
    match &err {
        Error::Proposal { proposal, reason } => {
            assert_eq!(proposal, "aes256gcm16-aes999-x25519");
            assert!(reason.contains("unknown keyword \"aes999\""), "{reason}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("aes999"), "{err}");
    // Only the offending item is reported.
    match parse_proposals(Esp, "aes128gcm16, 3des-sha1") {
        Err(Error::Proposal { proposal, reason }) => {
            assert_eq!(proposal, "3des-sha1");
            assert!(reason.contains("\"3des\""), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn keywords_are_case_sensitive() {
    let reason = reject(Ike, "AES256GCM16-prfsha256-x25519");
    assert!(reason.contains("\"AES256GCM16\""), "{reason}");
    assert!(reason.contains("lower-case"), "{reason}");
}

#[test]
fn rejects_empty_input() {
    for s in ["", "   ", ",", "aes128gcm16,", ",aes128gcm16", "aes128gcm16, ,aes256gcm16"] {
        reject(Esp, s);
    }
    for s in ["aes128gcm16--noesn", "-aes128gcm16", "aes128gcm16-", "aes128gcm16- -esn"] {
        assert!(reject(Esp, s).contains("empty keyword"), "{s:?}");
    }
}

#[test]
fn rejects_rule_violations() {
    let cases: &[(ProposalKind, &str, &str)] = &[
        // Encryption is mandatory.
        (Ike, "sha256-prfsha256-x25519", "encryption"),
        (Esp, "sha256", "encryption"),
        (Esp, "noesn", "encryption"),
        // AEAD and classic encryption don't mix.
        (Ike, "aes128-aes128gcm16-sha256-x25519", "mixed"),
        (Esp, "aes256gcm16-aes256-sha256", "mixed"),
        // Classic encryption needs integrity.
        (Ike, "aes128-prfsha256-x25519", "integrity"),
        (Esp, "aes128", "integrity"),
        (Esp, "aes256-modp2048", "integrity"),
        // IKE needs a PRF; an AEAD proposal cannot derive one without integrity.
        (Ike, "aes128gcm16-x25519", "PRF"),
        (Ike, "chacha20poly1305-ecp256", "PRF"),
        // IKE needs a key exchange method.
        (Ike, "aes128-sha256", "key exchange"),
        (Ike, "aes128gcm16-prfsha256", "key exchange"),
        // PRF is IKE only, ESN is ESP only.
        (Esp, "aes128gcm16-prfsha256", "PRF"),
        (Ike, "aes128gcm16-prfsha256-x25519-noesn", "ESN"),
        (Ike, "aes128-sha256-x25519-esn", "ESN"),
    ];
    for &(kind, s, what) in cases {
        let reason = reject(kind, s);
        assert!(reason.contains(what), "{kind:?} {s:?}: {reason:?} should mention {what:?}");
    }
}

#[test]
fn iana_round_trip_for_every_transform() {
    let all = all_transforms();
    assert_eq!(all.len(), 18);
    for t in &all {
        let (ty, id, bits) = t.iana();
        assert_eq!(Transform::from_iana(ty, id, bits), Some(*t), "{t}");
    }
    // Distinct transforms have distinct IANA triples and names.
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a.iana(), b.iana(), "{a} / {b}");
            assert_ne!(a.name(), b.name());
        }
    }
    // Every name parses back to its transform.
    for t in &all {
        let s = match t {
            Transform::Esn(_) => format!("aes128gcm16-{t}"),
            Transform::Encr(e) if !e.is_aead() => format!("{t}-sha256-x25519"),
            Transform::Integ(_) => format!("aes128-{t}-x25519"),
            _ => format!("aes128gcm16-prfsha256-x25519-{t}"),
        };
        let kind = if matches!(t, Transform::Esn(_)) { Esp } else { Ike };
        let p = one(kind, &s);
        assert!(p.transforms().any(|x| x == *t), "{s:?}");
    }
}

#[test]
fn iana_values() {
    let expect = [
        (Transform::Encr(CBCS[0]), (1, 12, Some(128))),
        (Transform::Encr(CBCS[1]), (1, 12, Some(256))),
        (Transform::Encr(AEADS[0]), (1, 20, Some(128))),
        (Transform::Encr(AEADS[1]), (1, 20, Some(256))),
        (Transform::Encr(AEADS[2]), (1, 28, None)),
        (Transform::Prf(HmacSha256), (2, 5, None)),
        (Transform::Prf(HmacSha384), (2, 6, None)),
        (Transform::Prf(HmacSha512), (2, 7, None)),
        (Transform::Integ(HmacSha256_128), (3, 12, None)),
        (Transform::Integ(HmacSha384_192), (3, 13, None)),
        (Transform::Integ(HmacSha512_256), (3, 14, None)),
        (Transform::Dh(Modp2048), (4, 14, None)),
        (Transform::Dh(Modp3072), (4, 15, None)),
        (Transform::Dh(Ecp256), (4, 19, None)),
        (Transform::Dh(Ecp384), (4, 20, None)),
        (Transform::Dh(Curve25519), (4, 31, None)),
        (Transform::Esn(false), (5, 0, None)),
        (Transform::Esn(true), (5, 1, None)),
    ];
    for (t, iana) in expect {
        assert_eq!(t.iana(), iana, "{t}");
    }
}

#[test]
fn from_iana_rejects_unsupported() {
    // AES needs a Key Length attribute, of a supported size.
    assert_eq!(Transform::from_iana(1, 12, None), None);
    assert_eq!(Transform::from_iana(1, 20, None), None);
    assert_eq!(Transform::from_iana(1, 12, Some(192)), None);
    assert_eq!(Transform::from_iana(1, 20, Some(192)), None);
    // ChaCha20-Poly1305 and non-ENCR types take no Key Length attribute.
    assert_eq!(Transform::from_iana(1, 28, Some(256)), None);
    assert_eq!(Transform::from_iana(2, 5, Some(256)), None);
    assert_eq!(Transform::from_iana(4, 31, Some(256)), None);
    // Unsupported IDs and types.
    assert_eq!(Transform::from_iana(1, 3, None), None); // ENCR_3DES
    assert_eq!(Transform::from_iana(1, 18, Some(128)), None); // ENCR_AES_GCM_8
    assert_eq!(Transform::from_iana(2, 2, None), None); // PRF_HMAC_SHA1
    assert_eq!(Transform::from_iana(3, 2, None), None); // AUTH_HMAC_SHA1_96
    assert_eq!(Transform::from_iana(4, 2, None), None); // 1024-bit MODP
    assert_eq!(Transform::from_iana(5, 2, None), None);
    assert_eq!(Transform::from_iana(0, 0, None), None);
    assert_eq!(Transform::from_iana(6, 1, None), None);
}

/// An ordered, duplicate-free, non-empty selection of `items` in any order.
fn pick<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>, min: usize) -> impl Strategy<Value = Vec<T>> {
    let max = items.len();
    proptest::sample::subsequence(items, min..=max).prop_shuffle()
}

fn ike_proposal() -> impl Strategy<Value = Proposal> {
    let aead = (pick(AEADS.to_vec(), 1), Just(Vec::new()));
    let cbc = (pick(CBCS.to_vec(), 1), pick(INTEGS.to_vec(), 1));
    (prop_oneof![aead, cbc], pick(PRFS.to_vec(), 1), pick(DhGroup::ALL.to_vec(), 1))
        .prop_map(|((encr, integ), prf, dh)| Proposal { encr, prf, integ, dh, esn: vec![] })
}

fn esp_proposal() -> impl Strategy<Value = Proposal> {
    let aead = (pick(AEADS.to_vec(), 1), Just(Vec::new()));
    let cbc = (pick(CBCS.to_vec(), 1), pick(INTEGS.to_vec(), 1));
    (prop_oneof![aead, cbc], pick(DhGroup::ALL.to_vec(), 0), pick(vec![false, true], 1))
        .prop_map(|((encr, integ), dh, esn)| Proposal { encr, prf: vec![], integ, dh, esn })
}

fn keyword_soup() -> impl Strategy<Value = String> {
    let words = prop_oneof![
        Just("aes128"),
        Just("aes256gcm16"),
        Just("chacha20poly1305"),
        Just("sha256"),
        Just("prfsha384"),
        Just("x25519"),
        Just("modp2048"),
        Just("esn"),
        Just("noesn"),
        Just("AES128"),
        Just("aes999"),
        Just(""),
        Just(" "),
        Just("é"),
    ];
    let seps = prop_oneof![Just("-"), Just(","), Just(" - "), Just(", "), Just("--")];
    proptest::collection::vec((words, seps), 0..12)
        .prop_map(|parts| parts.into_iter().flat_map(|(w, s)| [w, s]).collect::<String>())
}

proptest! {
    #[test]
    fn ike_display_parse_round_trip(ps in proptest::collection::vec(ike_proposal(), 1..4)) {
        let s = ps.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        prop_assert_eq!(parse_proposals(Ike, &s).map_err(|e| e.to_string()), Ok(ps));
    }

    #[test]
    fn esp_display_parse_round_trip(ps in proptest::collection::vec(esp_proposal(), 1..4)) {
        let s = ps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        prop_assert_eq!(parse_proposals(Esp, &s).map_err(|e| e.to_string()), Ok(ps));
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = parse_proposals(Ike, &s);
        let _ = parse_proposals(Esp, &s);
    }

    #[test]
    fn parse_never_panics_on_keyword_soup(s in keyword_soup()) {
        for kind in [Ike, Esp] {
            if let Ok(ps) = parse_proposals(kind, &s) {
                // Whatever parses prints back to the same proposals.
                let again = ps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                prop_assert_eq!(parse_proposals(kind, &again).map_err(|e| e.to_string()), Ok(ps));
            }
        }
    }
}
