//! IKE SA and Child SA key derivation against NIST's IKEv2 KDF answers
//! (SP 800-135), plus the structure of the derived keys.
//!
//! Vector sources are listed in `vectors/ikev2_kdf.rs`; every transcribed
//! value was also re-derived with Python's `hmac` module before use.

#[path = "vectors/ikev2_kdf.rs"]
mod vectors;

use tandem_crypto::prf::PrfAlgorithm;
use tandem_ike::keys::{self, IKE_SPI_LEN, IkeKeys};
use tandem_ike::protect::SkSuite;
use vectors::{CASES, KdfCase};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector is valid hex")
}

fn spi(s: &str) -> [u8; IKE_SPI_LEN] {
    h(s).try_into().expect("SPIs are 8 octets")
}

fn count(prf: PrfAlgorithm) -> usize {
    CASES.iter().filter(|c| c.prf == prf).count()
}

/// Each PRF has at least two vectors, so each quantity below is checked
/// twice per PRF.
#[test]
fn has_at_least_two_vectors_per_prf() {
    for prf in [PrfAlgorithm::HmacSha256, PrfAlgorithm::HmacSha384, PrfAlgorithm::HmacSha512] {
        assert!(count(prf) >= 2, "{}", prf.name());
    }
}

#[test]
fn matches_cavp_skeyseed_vectors() {
    for c in CASES {
        let got = keys::skeyseed(c.prf, &h(c.ni), &h(c.nr), &h(c.g_ir));
        assert_eq!(got.expose(), h(c.skeyseed), "{}", c.name);
    }
}

/// The seven keys in RFC order, concatenated: the prf+ stream they were cut
/// from.
fn concatenated(k: &IkeKeys) -> Vec<u8> {
    [k.sk_d(), k.sk_ai(), k.sk_ar(), k.sk_ei(), k.sk_er(), k.sk_pi(), k.sk_pr()]
        .iter()
        .flat_map(|s| s.expose().to_vec())
        .collect()
}

fn derive(c: &KdfCase, encr: usize, integ: usize) -> IkeKeys {
    let skeyseed = h(c.skeyseed);
    IkeKeys::derive(c.prf, &skeyseed, &h(c.ni), &h(c.nr), &spi(c.spi_i), &spi(c.spi_r), encr, integ)
        .expect("lengths within prf+'s limit")
}

#[test]
fn matches_cavp_dkm_vectors() {
    for c in CASES {
        let dkm = h(c.dkm);
        // A split whose keys cover the whole DKM: SK_d, then SK_ei of the
        // DKM's length (integrity empty).
        let all = concatenated(&derive(c, dkm.len(), 0));
        assert_eq!(all[..dkm.len()], dkm[..], "{}", c.name);
    }
}

#[test]
fn cuts_keys_from_the_dkm_in_rfc_order() {
    for c in CASES {
        let dkm = h(c.dkm);
        let p = c.prf.output_len();
        for suite in SkSuite::ALL {
            let (e, a) = (suite.encr_keymat_len(), suite.integ_key_len());
            let k = derive(c, e, a);
            // Every key at its offset, as far as the known DKM reaches.
            let at = [(k.sk_d(), 0), (k.sk_ai(), p), (k.sk_ar(), p + a), (k.sk_ei(), p + 2 * a)];
            let at = at.into_iter().chain([
                (k.sk_er(), p + 2 * a + e),
                (k.sk_pi(), p + 2 * (a + e)),
                (k.sk_pr(), 2 * p + 2 * (a + e)),
            ]);
            for (key, offset) in at {
                let end = (offset + key.len()).min(dkm.len());
                if offset < end {
                    assert_eq!(key.expose()[..end - offset], dkm[offset..end], "{} {}", c.name, suite.name());
                }
            }
            assert_eq!(k.sk_d().len(), p);
            assert_eq!(k.sk_pi().len(), p);
            assert_eq!(k.sk_pr().len(), p);
            assert_eq!(k.sk_ei().len(), e);
            assert_eq!(k.sk_er().len(), e);
            assert_eq!(k.sk_ai().len(), a);
            assert_eq!(k.sk_ar().len(), a);
        }
    }
}

#[test]
fn matches_cavp_child_sa_vectors_without_key_exchange() {
    for c in CASES {
        let want = h(c.dkm_child);
        let sk_d = &h(c.dkm)[..c.prf.output_len()];
        let got = keys::child_keymat(c.prf, sk_d, None, &h(c.ni), &h(c.nr), want.len()).expect("in range");
        assert_eq!(got.expose(), want, "{}", c.name);
        // SK_d as IkeKeys derives it gives the same KEYMAT.
        let k = derive(c, 0, 0);
        let again = keys::child_keymat(c.prf, k.sk_d().expose(), None, &h(c.ni), &h(c.nr), want.len());
        assert_eq!(again.expect("in range").expose(), want, "{}", c.name);
    }
}

#[test]
fn matches_cavp_child_sa_vectors_with_key_exchange() {
    for c in CASES {
        let want = h(c.dkm_child_dh);
        let sk_d = &h(c.dkm)[..c.prf.output_len()];
        let g_ir_new = h(c.g_ir_new);
        let got = keys::child_keymat(c.prf, sk_d, Some(&g_ir_new), &h(c.ni), &h(c.nr), want.len())
            .expect("in range");
        assert_eq!(got.expose(), want, "{}", c.name);
    }
}

#[test]
fn matches_cavp_rekey_skeyseed_vectors() {
    for c in CASES {
        let sk_d = &h(c.dkm)[..c.prf.output_len()];
        let got = keys::rekey_skeyseed(c.prf, sk_d, &h(c.g_ir_new), &h(c.ni), &h(c.nr));
        assert_eq!(got.expose(), h(c.skeyseed_rekey), "{}", c.name);
    }
}

#[test]
fn splits_child_keymat_initiator_to_responder_first() {
    for c in CASES {
        let keymat = h(c.dkm_child_dh);
        let half = keymat.len() / 2;
        let sk_d = &h(c.dkm)[..c.prf.output_len()];
        let g_ir_new = h(c.g_ir_new);
        let k =
            keys::child_sa_keys(c.prf, sk_d, Some(&g_ir_new), &h(c.ni), &h(c.nr), half).expect("in range");
        assert_eq!(k.initiator_to_responder().expose(), &keymat[..half], "{}", c.name);
        assert_eq!(k.responder_to_initiator().expose(), &keymat[half..2 * half], "{}", c.name);
    }
}

#[test]
fn rejects_key_material_beyond_prf_plus_limit() {
    let c = &CASES[0];
    let skeyseed = h(c.skeyseed);
    // 255 blocks of 32 octets is prf+'s maximum for HMAC-SHA-256.
    let err = IkeKeys::derive(c.prf, &skeyseed, &h(c.ni), &h(c.nr), &spi(c.spi_i), &spi(c.spi_r), 5000, 0);
    assert!(err.is_err());
    let err =
        IkeKeys::derive(c.prf, &skeyseed, &h(c.ni), &h(c.nr), &spi(c.spi_i), &spi(c.spi_r), usize::MAX, 1);
    assert!(err.is_err(), "overflowing lengths are an error, not a panic");
    assert!(keys::child_keymat(c.prf, &skeyseed, None, b"n", b"n", 255 * 32 + 1).is_err());
    assert!(keys::child_sa_keys(c.prf, &skeyseed, None, b"n", b"n", usize::MAX).is_err());
}

#[test]
fn debug_never_shows_key_material() {
    for c in CASES {
        let k = derive(c, 36, 0);
        let shown = format!("{k:?}");
        assert!(shown.contains("octets"), "{shown}");
        for key in [k.sk_d(), k.sk_ei(), k.sk_er(), k.sk_pi(), k.sk_pr()] {
            let secret = hex::encode(&key.expose()[..8]);
            assert!(!shown.to_lowercase().contains(&secret), "{shown}");
            assert!(!shown.contains(&format!("{:?}", &key.expose()[..4])), "{shown}");
        }
        let child = keys::child_sa_keys(c.prf, k.sk_d().expose(), None, b"ni", b"nr", 36).expect("in range");
        let shown = format!("{child:?}");
        assert!(!shown.contains(&hex::encode(&child.initiator_to_responder().expose()[..8])), "{shown}");
    }
}

#[test]
fn rekeyed_sa_keys_use_the_new_prf_over_the_old_prfs_skeyseed() {
    // Section 2.18: SKEYSEED from the old SA's PRF, the keys from the new
    // SA's. A 48-octet SKEYSEED from HMAC-SHA-384 keys an HMAC-SHA-256 SA.
    let c = CASES.iter().find(|c| c.prf == PrfAlgorithm::HmacSha384).expect("a SHA-384 case");
    let sk_d = &h(c.dkm)[..48];
    let skeyseed = keys::rekey_skeyseed(c.prf, sk_d, &h(c.g_ir_new), &h(c.ni), &h(c.nr));
    assert_eq!(skeyseed.len(), 48);
    let suite = SkSuite::ALL[1];
    let k = IkeKeys::derive(
        PrfAlgorithm::HmacSha256,
        skeyseed.expose(),
        &h(c.ni),
        &h(c.nr),
        &spi(c.spi_i),
        &spi(c.spi_r),
        suite.encr_keymat_len(),
        suite.integ_key_len(),
    )
    .expect("in range");
    assert_eq!(k.sk_d().len(), 32, "SK_d takes the new PRF's length");
}
