//! Encrypted (SK) payload protection: known answers, round trips for every
//! suite and provider, and rejection of anything altered, truncated or
//! malformed, without panics.
//!
//! Known answers:
//! - RFC 7634 Appendix B (ChaCha20-Poly1305 in IKEv2), whose ciphertext was
//!   also re-computed with Python's `cryptography` package;
//! - one AES-256-GCM-16 and one AES-128-CBC + HMAC-SHA2-256-128 message
//!   built independently with Python's `cryptography`, `hmac` and `hashlib`
//!   (script in the comment above each), both with an unencrypted payload
//!   before the SK payload so the associated data / ICV coverage of
//!   preceding payloads is checked.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use proptest::prelude::*;
use tandem_crypto::aead::{AeadAlgorithm, Provider, SaltedAead};
use tandem_crypto::cbc_hmac::{AesCbc, CbcAlgorithm, IntegAlgorithm, Integrity};
use tandem_crypto::proposal::EncrAlgorithm;
use tandem_ike::Error;
use tandem_ike::protect::{IKE_HEADER_LEN, IKE_LENGTH_OFFSET, SkCipher, SkSuite};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("test vector is valid hex")
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Hands out the same 16 octets forever: lets a test fix a CBC IV.
struct FixedRng([u8; 16]);

impl rand_core::TryRng for FixedRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for (d, s) in dst.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

// RFC 7634 Appendix B: key 80..9f, salt a0 a1 a2 a3, IV 10..17; an
// INFORMATIONAL request carrying one Notify (INITIAL_CONTACT-type 0x4001).
const RFC7634_KEYMAT: &str = "808182838485868788898a8b8c8d8e8f 909192939495969798999a9b9c9d9e9f a0a1a2a3";
const RFC7634_IV: u64 = 0x1011_1213_1415_1617;
const RFC7634_HEADER: &str = "c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045";
const RFC7634_INNER: &str = "0000000c 00004001 0000000a";
const RFC7634_MESSAGE: &str = "
    c0c1c2c3c4c5c6c7 d0d1d2d3d4d5d6d7 2e202500 00000009 00000045
    29000029 1011121314151617
    610394701f8d017f7c12924889
    6b71bfe25236efd7cdc67066906315b2";

#[test]
fn matches_rfc7634_appendix_b_decryption() {
    for &provider in Provider::available() {
        let suite = SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305);
        let cipher = SkCipher::with_provider(provider, suite, &h(RFC7634_KEYMAT), &[]).expect("valid key");
        let inner = cipher.open(&h(RFC7634_MESSAGE), IKE_HEADER_LEN).expect("authentic");
        assert_eq!(inner, h(RFC7634_INNER), "{}", provider.name());
    }
}

#[test]
fn matches_rfc7634_appendix_b_encryption() {
    for &provider in Provider::available() {
        let suite = SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305);
        let mut cipher =
            SkCipher::with_provider(provider, suite, &h(RFC7634_KEYMAT), &[]).expect("valid key");
        cipher.advance_iv_counter(RFC7634_IV);
        let mut message = h(RFC7634_HEADER);
        message[IKE_LENGTH_OFFSET..].fill(0); // seal sets the length
        cipher.seal(&mut rng(0), &mut message, 0x29, &h(RFC7634_INNER)).expect("seals");
        assert_eq!(hex::encode(&message), hex::encode(h(RFC7634_MESSAGE)), "{}", provider.name());
        assert_eq!(cipher.iv_counter(), RFC7634_IV + 1);
    }
}

// Python, with inner = bytes(range(0x40, 0x68)) and an unencrypted Vendor
// ID payload (next = SK) between header and SK payload:
//   key = bytes(range(32)); salt = a0a1a2a3; iv = (5).to_bytes(8, "big")
//   aad = header | vid | 23 00 <sk_len>;  ct = AESGCM(key).encrypt(salt + iv, inner + b"\0", aad)
const GCM_KEYMAT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f a0a1a2a3";
const GCM_MESSAGE: &str = "
    0102030405060708 1112131415161718 2b202308 00000001 00000069
    2e000008deadbeef
    23000045 0000000000000005
    d988aa4b7c923a78feccd4a1444309f1f8904d01c3fb21de67704c3c5a47594b3e447e678f565695ca
    21e3eeee821fb3dca723f665f7081c57";
// Python: ekey = bytes(range(0x10, 0x20)); akey = bytes(range(0x30, 0x50));
//   iv = bytes(range(0xf0, 0x100)); pt = inner | 7 zero octets | 07;
//   msg = header | vid | 23 00 <sk_len> | iv | AES-CBC(ekey, iv, pt);
//   icv = hmac.new(akey, msg, sha256).digest()[:16]
const CBC_EKEY: &str = "101112131415161718191a1b1c1d1e1f";
const CBC_AKEY: &str = "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f";
const CBC_IV: [u8; 16] =
    [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];
const CBC_MESSAGE: &str = "
    0102030405060708 1112131415161718 2b202308 00000001 00000078
    2e000008deadbeef
    23000054 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff
    324fe7294054beca20f91307639cb094148826a7ab118c19ec8c56ab06945ef31a9aa03f3987b219024632293d0a07b4
    c24998f32f0b95e2e821cc2b7b91503a";
const PY_PREFIX: &str = "0102030405060708 1112131415161718 2b202308 00000001 00000000 2e000008deadbeef";
const PY_SK_OFFSET: usize = 36;

fn py_inner() -> Vec<u8> {
    (0x40..0x68).collect()
}

#[test]
fn matches_python_aes256gcm16_message_both_ways() {
    for &provider in Provider::available() {
        let suite = SkSuite::Aead(AeadAlgorithm::Aes256Gcm16);
        let mut cipher = SkCipher::with_provider(provider, suite, &h(GCM_KEYMAT), &[]).expect("valid key");
        assert_eq!(cipher.open(&h(GCM_MESSAGE), PY_SK_OFFSET).expect("authentic"), py_inner());
        cipher.advance_iv_counter(5);
        let mut message = h(PY_PREFIX);
        cipher.seal(&mut rng(0), &mut message, 0x23, &py_inner()).expect("seals");
        assert_eq!(hex::encode(&message), hex::encode(h(GCM_MESSAGE)), "{}", provider.name());
    }
}

#[test]
fn matches_python_aes128cbc_hmac_sha256_message_both_ways() {
    let suite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);
    let mut cipher = SkCipher::new(suite, &h(CBC_EKEY), &h(CBC_AKEY)).expect("valid keys");
    assert_eq!(cipher.open(&h(CBC_MESSAGE), PY_SK_OFFSET).expect("authentic"), py_inner());
    let mut message = h(PY_PREFIX);
    let mut fixed = rand_core::UnwrapErr(FixedRng(CBC_IV));
    cipher.seal(&mut fixed, &mut message, 0x23, &py_inner()).expect("seals");
    assert_eq!(hex::encode(&message), hex::encode(h(CBC_MESSAGE)));
}

/// Keys for `suite` from a seeded RNG: (encryption key material, integrity key).
fn keys_for(suite: SkSuite, seed: u8) -> (Vec<u8>, Vec<u8>) {
    use rand_core::Rng;
    let mut r = rng(seed);
    let mut e = vec![0; suite.encr_keymat_len()];
    let mut a = vec![0; suite.integ_key_len()];
    r.fill_bytes(&mut e);
    r.fill_bytes(&mut a);
    (e, a)
}

fn pair(provider: Provider, suite: SkSuite, seed: u8) -> (SkCipher, SkCipher) {
    let (e, a) = keys_for(suite, seed);
    let tx = SkCipher::with_provider(provider, suite, &e, &a).expect("valid keys");
    let rx = SkCipher::with_provider(provider, suite, &e, &a).expect("valid keys");
    (tx, rx)
}

/// An IKE header naming SK as its first payload, Length left at zero.
fn header() -> Vec<u8> {
    h("8877665544332211 0000000000000000 2e202408 00000002 00000000")
}

fn sealed(tx: &mut SkCipher, inner: &[u8]) -> Vec<u8> {
    let mut message = header();
    tx.seal(&mut rng(7), &mut message, 0x29, inner).expect("seals");
    message
}

#[test]
fn round_trips_every_suite_and_provider() {
    for &provider in Provider::available() {
        for suite in SkSuite::ALL {
            let (mut tx, rx) = pair(provider, suite, 1);
            for len in [0, 1, 3, 15, 16, 17, 31, 32, 100, 1000, 4000] {
                let inner: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let message = sealed(&mut tx, &inner);
                let what = format!("{} {} len {len}", suite.name(), provider.name());
                assert_eq!(message.len(), IKE_HEADER_LEN + suite.sk_payload_len(len), "{what}");
                let total = u32::from_be_bytes(message[24..28].try_into().expect("4 octets"));
                assert_eq!(total as usize, message.len(), "{what}: header Length");
                let sk_len = u16::from_be_bytes([message[30], message[31]]);
                assert_eq!(usize::from(sk_len), message.len() - IKE_HEADER_LEN, "{what}: SK Length");
                assert_eq!(message[IKE_HEADER_LEN], 0x29, "{what}: first inner payload type");
                assert_eq!(rx.open(&message, IKE_HEADER_LEN).expect("authentic"), inner, "{what}");
            }
        }
    }
}

#[test]
fn pads_cbc_to_whole_blocks_with_minimal_padding() {
    let suite = SkSuite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha384_192);
    let (mut tx, _) = pair(Provider::preferred(), suite, 2);
    for len in 0..40 {
        let message = sealed(&mut tx, &vec![0xab; len]);
        let ct_len = message.len() - IKE_HEADER_LEN - 4 - 16 - 24;
        assert_eq!(ct_len % 16, 0);
        assert!(ct_len > len && ct_len <= len + 16, "len {len}: {ct_len}");
    }
}

#[test]
fn sends_aead_without_padding() {
    let suite = SkSuite::Aead(AeadAlgorithm::Aes128Gcm16);
    let (mut tx, _) = pair(Provider::preferred(), suite, 3);
    for len in [0, 5, 13] {
        let message = sealed(&mut tx, &vec![1; len]);
        assert_eq!(message.len(), IKE_HEADER_LEN + 4 + 8 + len + 1 + 16);
    }
}

#[test]
fn never_repeats_an_aead_iv() {
    let suite = SkSuite::Aead(AeadAlgorithm::Aes256Gcm16);
    let (mut tx, _) = pair(Provider::preferred(), suite, 4);
    let ivs: Vec<Vec<u8>> = (0..5).map(|_| sealed(&mut tx, b"same")[32..40].to_vec()).collect();
    for (i, iv) in ivs.iter().enumerate() {
        assert_eq!(iv, &(i as u64).to_be_bytes());
    }
    tx.advance_iv_counter(1000);
    tx.advance_iv_counter(3); // never backwards
    assert_eq!(tx.iv_counter(), 1000);
    assert_eq!(sealed(&mut tx, b"x")[32..40], 1000u64.to_be_bytes());
}

#[test]
fn rejects_sealing_past_the_last_aead_iv() {
    let suite = SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305);
    let (mut tx, rx) = pair(Provider::preferred(), suite, 5);
    tx.advance_iv_counter(u64::MAX - 1);
    let message = sealed(&mut tx, b"last but one");
    assert!(rx.open(&message, IKE_HEADER_LEN).is_ok());
    let mut message = header();
    let before = message.clone();
    let err = tx.seal(&mut rng(0), &mut message, 0x29, b"one too many");
    assert!(matches!(err, Err(Error::Unencodable(_))), "{err:?}");
    assert_eq!(message, before, "a failed seal leaves the message as it was");
}

#[test]
fn draws_fresh_cbc_ivs_from_the_rng() {
    let suite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);
    let (mut tx, _) = pair(Provider::preferred(), suite, 6);
    let mut r = rng(9);
    let mut a = header();
    let mut b = header();
    tx.seal(&mut r, &mut a, 0x29, b"same").expect("seals");
    tx.seal(&mut r, &mut b, 0x29, b"same").expect("seals");
    assert_ne!(a[32..48], b[32..48]);
}

#[test]
fn covers_unencrypted_payloads_before_the_sk_payload() {
    for &provider in Provider::available() {
        for suite in SkSuite::ALL {
            let (mut tx, rx) = pair(provider, suite, 10);
            let mut message = h(PY_PREFIX);
            tx.seal(&mut rng(1), &mut message, 0x23, b"inner payloads").expect("seals");
            assert_eq!(rx.open(&message, PY_SK_OFFSET).expect("authentic"), b"inner payloads");
            message[IKE_HEADER_LEN + 5] ^= 1; // inside the Vendor ID data
            assert_eq!(rx.open(&message, PY_SK_OFFSET), Err(Error::IntegrityCheckFailed), "{}", suite.name());
        }
    }
}

#[test]
fn rejects_a_different_key() {
    for suite in SkSuite::ALL {
        let (mut tx, _) = pair(Provider::preferred(), suite, 11);
        let (_, other) = pair(Provider::preferred(), suite, 12);
        let message = sealed(&mut tx, b"for someone else");
        assert_eq!(
            other.open(&message, IKE_HEADER_LEN),
            Err(Error::IntegrityCheckFailed),
            "{}",
            suite.name()
        );
    }
}

/// Builds an authentic message around a hand-made plaintext (inner,
/// padding and Pad Length), as a peer with other padding habits would.
fn with_plaintext(suite: SkSuite, seed: u8, plaintext: &[u8]) -> Vec<u8> {
    let (e, a) = keys_for(suite, seed);
    let mut message = header();
    let (iv_len, icv_len) = (suite.iv_len(), suite.icv_len());
    let sk_len = 4 + iv_len + plaintext.len() + icv_len;
    message.extend_from_slice(&[0x29, 0]);
    message.extend_from_slice(&(sk_len as u16).to_be_bytes());
    let total = (message.len() + sk_len - 4) as u32;
    message[24..28].copy_from_slice(&total.to_be_bytes());
    match suite {
        SkSuite::Aead(alg) => {
            let cipher = SaltedAead::new(Provider::preferred(), alg, &e).expect("valid key");
            let iv = [9; 8];
            let mut ct = plaintext.to_vec();
            let tag = cipher.seal(&iv, &message, &mut ct).expect("seals");
            message.extend_from_slice(&iv);
            message.extend_from_slice(&ct);
            message.extend_from_slice(&tag);
        }
        SkSuite::CbcHmac(c, i) => {
            let iv = [9; 16];
            let mut ct = plaintext.to_vec();
            AesCbc::new(c, &e).expect("valid key").encrypt(&iv, &mut ct).expect("whole blocks");
            message.extend_from_slice(&iv);
            message.extend_from_slice(&ct);
            let icv = Integrity::new(i, &a).expect("valid key").compute(&[&message]);
            message.extend_from_slice(&icv[..i.icv_len()]);
        }
    }
    message
}

#[test]
fn accepts_any_pad_length_that_fits() {
    for suite in SkSuite::ALL {
        let (_, rx) = pair(Provider::preferred(), suite, 13);
        // 5 inner octets, 26 octets of non-zero padding, Pad Length 26: two
        // blocks where one would do, and arbitrary padding content.
        let mut pt = b"inner".to_vec();
        pt.extend_from_slice(&[0xee; 26]);
        pt.push(26);
        let message = with_plaintext(suite, 13, &pt);
        assert_eq!(rx.open(&message, IKE_HEADER_LEN).expect("authentic"), b"inner", "{}", suite.name());
    }
}

#[test]
fn rejects_a_pad_length_beyond_the_plaintext() {
    for suite in SkSuite::ALL {
        let (_, rx) = pair(Provider::preferred(), suite, 14);
        let mut pt = vec![0; 15];
        pt.push(16); // 16 octets of padding claimed, 15 present
        let message = with_plaintext(suite, 14, &pt);
        let err = rx.open(&message, IKE_HEADER_LEN);
        assert!(matches!(err, Err(Error::InvalidSyntax(_))), "{}: {err:?}", suite.name());
    }
}

#[test]
fn rejects_framing_that_does_not_match_the_message() {
    let suite = SkSuite::Aead(AeadAlgorithm::Aes128Gcm16);
    let (mut tx, rx) = pair(Provider::preferred(), suite, 15);
    let message = sealed(&mut tx, b"framing");
    // The SK payload is not where the caller says.
    for offset in [0, 27, 29, 32, message.len(), usize::MAX] {
        assert!(rx.open(&message, offset).is_err(), "offset {offset}");
    }
    // A trailing octet the header Length does not count.
    let mut longer = message.clone();
    longer.push(0);
    assert!(matches!(rx.open(&longer, IKE_HEADER_LEN), Err(Error::InvalidSyntax(_))));
    // Header Length and SK Length agree with each other but not the data.
    let mut shorter = message.clone();
    shorter.pop();
    assert!(rx.open(&shorter, IKE_HEADER_LEN).is_err());
}

#[test]
fn rejects_seal_into_a_message_without_header_and_leaves_it_untouched() {
    let suite = SkSuite::Aead(AeadAlgorithm::Aes128Gcm16);
    let (mut tx, _) = pair(Provider::preferred(), suite, 16);
    let mut short = vec![0; IKE_HEADER_LEN - 1];
    assert!(matches!(tx.seal(&mut rng(0), &mut short, 0x29, b"x"), Err(Error::Unencodable(_))));
    assert_eq!(short, vec![0; IKE_HEADER_LEN - 1]);
    let mut message = header();
    let err = tx.seal(&mut rng(0), &mut message, 0x29, &vec![0; 70_000]);
    assert!(matches!(err, Err(Error::Unencodable(_))), "{err:?}");
    assert_eq!(message, header());
}

#[test]
fn rejects_mismatched_suites_and_keys() {
    use AeadAlgorithm::Aes128Gcm16;
    let aead = EncrAlgorithm::Aead(Aes128Gcm16);
    let cbc = EncrAlgorithm::Cbc(CbcAlgorithm::Aes128Cbc);
    let integ = IntegAlgorithm::HmacSha256_128;
    assert!(matches!(SkSuite::new(aead, Some(integ)), Err(Error::InvalidSuite(_))));
    assert!(matches!(SkSuite::new(cbc, None), Err(Error::InvalidSuite(_))));
    assert_eq!(SkSuite::new(aead, None), Ok(SkSuite::Aead(Aes128Gcm16)));
    assert_eq!(SkSuite::new(cbc, Some(integ)), Ok(SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, integ)));
    // A key without its salt, an integrity key for an AEAD, a short HMAC key.
    assert!(matches!(SkCipher::new(SkSuite::Aead(Aes128Gcm16), &[0; 16], &[]), Err(Error::Crypto(_))));
    assert!(matches!(
        SkCipher::new(SkSuite::Aead(Aes128Gcm16), &[0; 20], &[0; 32]),
        Err(Error::InvalidSuite(_))
    ));
    let cbc_suite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, integ);
    assert!(matches!(SkCipher::new(cbc_suite, &[0; 16], &[0; 16]), Err(Error::Crypto(_))));
}

#[test]
fn debug_hides_keys() {
    let suite = SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305);
    let cipher = SkCipher::new(suite, &h(RFC7634_KEYMAT), &[]).expect("valid key");
    let shown = format!("{cipher:?}");
    assert!(shown.contains("ChaCha20Poly1305"), "{shown}");
    assert!(!shown.contains("128") && !shown.contains("80, 81") && !shown.contains("8081"), "{shown}");
}

/// One sealed message per suite, for the property tests.
fn sample(suite_index: usize, inner_len: usize) -> (SkCipher, Vec<u8>) {
    let suite = SkSuite::ALL[suite_index % SkSuite::ALL.len()];
    let (mut tx, rx) = pair(Provider::preferred(), suite, 20);
    let inner: Vec<u8> = (0..inner_len).map(|i| (i * 7) as u8).collect();
    (rx, sealed(&mut tx, &inner))
}

proptest! {
    #[test]
    fn rejects_any_altered_octet(suite in 0usize..9, len in 0usize..80, at in any::<prop::sample::Index>(), flip in 1u8..) {
        let (rx, mut message) = sample(suite, len);
        let i = at.index(message.len());
        message[i] ^= flip;
        prop_assert!(rx.open(&message, IKE_HEADER_LEN).is_err(), "octet {} of {}", i, message.len());
    }

    #[test]
    fn rejects_every_truncation(suite in 0usize..9, len in 0usize..80, cut in any::<prop::sample::Index>()) {
        let (rx, message) = sample(suite, len);
        let keep = cut.index(message.len());
        prop_assert!(rx.open(&message[..keep], IKE_HEADER_LEN).is_err());
        // Even with both length fields rewritten to the truncated size.
        let mut fixed = message[..keep].to_vec();
        if fixed.len() >= IKE_HEADER_LEN + 4 {
            let total = fixed.len() as u32;
            fixed[24..28].copy_from_slice(&total.to_be_bytes());
            let sk = (fixed.len() - IKE_HEADER_LEN) as u16;
            fixed[30..32].copy_from_slice(&sk.to_be_bytes());
            prop_assert!(rx.open(&fixed, IKE_HEADER_LEN).is_err());
        }
    }

    #[test]
    fn never_panics_on_garbage(suite in 0usize..9, data in prop::collection::vec(any::<u8>(), 0..200), offset in 0usize..220) {
        let (rx, _) = sample(suite, 0);
        let _ = rx.open(&data, offset);
        // Garbage with consistent lengths reaches the ICV check.
        let mut framed = data.clone();
        if framed.len() >= IKE_HEADER_LEN + 4 && framed.len() < 65_000 {
            let total = framed.len() as u32;
            framed[24..28].copy_from_slice(&total.to_be_bytes());
            let sk = (framed.len() - IKE_HEADER_LEN) as u16;
            framed[30..32].copy_from_slice(&sk.to_be_bytes());
            prop_assert!(rx.open(&framed, IKE_HEADER_LEN).is_err());
        }
    }

    #[test]
    fn round_trips_any_inner_payloads(suite in 0usize..9, inner in prop::collection::vec(any::<u8>(), 0..600)) {
        let suite = SkSuite::ALL[suite];
        let (mut tx, rx) = pair(Provider::preferred(), suite, 21);
        let message = sealed(&mut tx, &inner);
        prop_assert_eq!(rx.open(&message, IKE_HEADER_LEN).expect("authentic"), inner);
    }
}
