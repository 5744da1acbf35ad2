//! IKE message fragmentation (RFC 7383): round trips through `fragment` and
//! `Reassembler` for AEAD and AES-CBC + HMAC suites at the size boundaries,
//! in every delivery order, with duplicates, forged fragments, re-fragmented
//! sets, stale and newer message IDs and the memory limits; every datagram
//! within the size asked for; proptests for random plaintexts, sizes and
//! orders, and "never panics, never poisoned" on mutated input.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use proptest::prelude::*;
use rand_core::Rng;
use tandem_crypto::aead::AeadAlgorithm;
use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
use tandem_ike::Error;
use tandem_ike::fragment::{self, Limits, Reassembler, max_chunk_len};
use tandem_ike::protect::{SkCipher, SkSuite};
use tandem_ike::wire::*;

// ---------------------------------------------------------------- helpers

const GCM: SkSuite = SkSuite::Aead(AeadAlgorithm::Aes256Gcm16);
const CHACHA: SkSuite = SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305);
const CBC: SkSuite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);
const CBC512: SkSuite = SkSuite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha512_256);
/// Two AEADs and two CBC + HMAC suites (different IV, ICV and key sizes).
const SUITES: [SkSuite; 4] = [GCM, CHACHA, CBC, CBC512];

/// Offsets in a fragment datagram.
const EXCHANGE_TYPE: usize = 18;
const FLAGS: usize = 19;
const MESSAGE_ID: usize = 20;
const SKF_NEXT: usize = 28;
const SKF_CRITICAL: usize = 29;
const FRAGMENT_NUMBER: usize = 32;
const TOTAL_FRAGMENTS: usize = 34;
const IV: usize = 36;

/// The first inner payload type the tests announce.
const FIRST: PayloadType = PayloadType::IDi;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A sending and a receiving cipher keyed alike.
fn ciphers(suite: SkSuite) -> (SkCipher, SkCipher) {
    let encr: Vec<u8> = (0..suite.encr_keymat_len()).map(|i| i as u8).collect();
    let integ: Vec<u8> = (0..suite.integ_key_len()).map(|i| 0x40 ^ i as u8).collect();
    let tx = SkCipher::new(suite, &encr, &integ).expect("valid keys");
    let rx = SkCipher::new(suite, &encr, &integ).expect("valid keys");
    (tx, rx)
}

/// An IKE_AUTH header (Next Payload and Length are the fragmenter's).
fn header(message_id: u32, response: bool) -> Header {
    Header {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0x1112_1314_1516_1718,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange_type: ExchangeType::IKE_AUTH,
        flags: Flags::new(true, response),
        message_id,
        length: 0,
    }
}

/// `len` octets of plaintext that differ with `seed`.
fn plaintext(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Fragments `inner` as a request (`response` false) with message ID `id`.
fn send(tx: &mut SkCipher, inner: &[u8], max: usize, id: u32, response: bool) -> Vec<Vec<u8>> {
    fragment::fragment(header(id, response), FIRST, inner, tx, &mut rng(7), max).expect("fits")
}

/// The number of fragments `fragment` should make.
fn expected_count(len: usize, chunk: usize) -> usize {
    len.div_ceil(chunk).max(1)
}

/// Feeds `order` of `frags`; asserts that only the last one completes the
/// message, and returns what it completed.
fn deliver(r: &mut Reassembler, rx: &SkCipher, frags: &[Vec<u8>], order: &[usize]) -> (PayloadType, Vec<u8>) {
    let (last, init) = order.split_last().expect("at least one fragment");
    for &i in init {
        assert_eq!(r.add(&frags[i], rx), Ok(None), "fragment {} completed early", i + 1);
    }
    r.add(&frags[*last], rx).expect("authentic").expect("the last fragment completes the message")
}

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

/// Fisher-Yates with a seeded RNG.
fn shuffle<T>(v: &mut [T], rng: &mut ChaCha20Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Checks the RFC 7383 fields of every fragment against the original.
fn assert_fragment_fields(frags: &[Vec<u8>], original: Header, max: usize) {
    let total = u16::try_from(frags.len()).expect("at most 65535");
    for (i, f) in frags.iter().enumerate() {
        assert!(f.len() <= max, "fragment {} is {} octets, over {max}", i + 1, f.len());
        let m = Message::parse(f).expect("a well-formed message");
        assert_eq!(m.header.next_payload, PayloadType::SKF);
        assert_eq!(usize::try_from(m.header.length), Ok(f.len()), "own Length");
        assert_eq!(
            (m.header.spi_i, m.header.spi_r, m.header.exchange_type, m.header.flags, m.header.message_id),
            (original.spi_i, original.spi_r, original.exchange_type, original.flags, original.message_id),
        );
        assert_eq!(m.payloads.len(), 1, "the SKF payload alone");
        let skf = m.skf().expect("an SKF payload");
        assert_eq!(usize::from(skf.fragment_number), i + 1);
        assert_eq!(skf.total_fragments, total);
        let next = if i == 0 { FIRST } else { PayloadType::NONE };
        assert_eq!(skf.next_payload, next, "only fragment 1 names the first inner payload");
    }
}

fn patch_u16(frag: &[u8], at: usize, value: u16) -> Vec<u8> {
    let mut f = frag.to_vec();
    f[at..at + 2].copy_from_slice(&value.to_be_bytes());
    f
}

// ---------------------------------------------------------------- known answers

// Built independently with Python's `cryptography`, `hmac` and `hashlib`:
// an IKE_AUTH request (SPIs 0102..08 / 1112..18, message ID 1) whose SK
// plaintext bytes(range(0x40, 0x72)) is split into two fragments, the
// first naming IDi (35). Per fragment, with skf = 35|00 or 00|00, the SKF
// Payload Length, Fragment Number and Total Fragments (00 02):
//   AES-256-GCM-16, key bytes(range(32)), salt a0a1a2a3, IVs 5 and 6,
//   chunks of 30 and 20 octets:
//     aad = header | skf;  msg = aad | iv | AESGCM(key).encrypt(salt + iv, chunk + 00, aad)
//   AES-128-CBC + HMAC-SHA2-256-128, ekey bytes(range(0x10, 0x20)), akey
//   bytes(range(0x30, 0x50)), IV f0..ff, chunks of 31 and 19 octets:
//     msg = header | skf | iv | AES-CBC(chunk | zero padding | pad length)
//     msg = msg | HMAC-SHA256(akey, msg)[:16]
const KAT_GCM: [&str; 2] = [
    "0102030405060708111213141516171835202308000000010000005b2300003f000100020000000000000005\
     d988aa4b7c923a78feccd4a1444309f1f8904d01c3fb21de67704c3c5a47074fd918d87a7100d3c645b29d810b2748",
    "0102030405060708111213141516171835202308000000010000005100000035000200020000000000000006\
     e6028df4d0af61c20b55a00559b35f3b2dbfda4d1f387593f4d0f3da678961016e72858534",
];
const KAT_CBC: [&str; 2] = [
    "010203040506070811121314151617183520230800000001000000642300004800010002\
     f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff324fe7294054beca20f91307639cb09437cbba7522ccee7ebc20ba782ebf006b\
     cf3a7ec57ea0f388a51a17204d379562",
    "010203040506070811121314151617183520230800000001000000640000004800020002\
     f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff1a177d4270b135fd5a36273a92ac59d057ba76d2f62edf2c2572ed014342118e\
     2f6aa019f5669671927a5aaa9de947c0",
];

/// Hands out the same 16 octets forever: fixes a CBC IV.
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
        dst.iter_mut().zip(self.0.iter().cycle()).for_each(|(d, s)| *d = *s);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FixedRng {}

fn kat_inner() -> Vec<u8> {
    (0x40..0x72).collect()
}

#[test]
fn matches_python_aes256gcm16_fragments_both_ways() {
    let keymat: Vec<u8> = (0..32).chain([0xa0, 0xa1, 0xa2, 0xa3]).collect();
    let mut tx = SkCipher::new(GCM, &keymat, &[]).expect("valid key");
    let rx = SkCipher::new(GCM, &keymat, &[]).expect("valid key");
    tx.advance_iv_counter(5);
    assert_eq!(max_chunk_len(GCM, 91), 30);
    let frags =
        fragment::fragment(header(1, false), FIRST, &kat_inner(), &mut tx, &mut rng(0), 91).expect("fits");
    assert_eq!(frags.iter().map(hex::encode).collect::<Vec<_>>(), KAT_GCM);
    let python: Vec<Vec<u8>> = KAT_GCM.iter().map(|h| hex::decode(h).expect("hex")).collect();
    assert_eq!(deliver(&mut Reassembler::new(), &rx, &python, &[1, 0]), (FIRST, kat_inner()));
}

#[test]
fn matches_python_aes128cbc_hmac_sha256_fragments_both_ways() {
    let ekey: Vec<u8> = (0x10..0x20).collect();
    let akey: Vec<u8> = (0x30..0x50).collect();
    let mut tx = SkCipher::new(CBC, &ekey, &akey).expect("valid keys");
    let rx = SkCipher::new(CBC, &ekey, &akey).expect("valid keys");
    let mut iv = rand_core::UnwrapErr(FixedRng(core::array::from_fn(|i| 0xf0 + i as u8)));
    assert_eq!(max_chunk_len(CBC, 100), 31);
    let frags =
        fragment::fragment(header(1, false), FIRST, &kat_inner(), &mut tx, &mut iv, 100).expect("fits");
    assert_eq!(frags.iter().map(hex::encode).collect::<Vec<_>>(), KAT_CBC);
    let python: Vec<Vec<u8>> = KAT_CBC.iter().map(|h| hex::decode(h).expect("hex")).collect();
    assert_eq!(deliver(&mut Reassembler::new(), &rx, &python, &[1, 0]), (FIRST, kat_inner()));
}

// ---------------------------------------------------------------- sending

#[test]
fn round_trips_at_the_size_boundaries_for_every_suite() {
    for suite in SkSuite::ALL {
        for max in [300, 1252] {
            let chunk = max_chunk_len(suite, max);
            let lens = [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 1, 7 * chunk + 5];
            for len in lens {
                let (mut tx, rx) = ciphers(suite);
                let inner = plaintext(len, 1);
                let frags = send(&mut tx, &inner, max, 3, false);
                assert_eq!(frags.len(), expected_count(len, chunk), "{suite:?} max {max} len {len}");
                assert_fragment_fields(&frags, header(3, false), max);
                let order: Vec<usize> = (0..frags.len()).collect();
                let done = deliver(&mut Reassembler::new(), &rx, &frags, &order);
                assert_eq!(done, (FIRST, inner), "{suite:?} max {max} len {len}");
            }
        }
    }
}

#[test]
fn fills_each_fragment_as_far_as_the_size_allows() {
    for suite in SUITES {
        let max = 500;
        let chunk = max_chunk_len(suite, max);
        let (mut tx, _) = ciphers(suite);
        let frags = send(&mut tx, &plaintext(3 * chunk, 2), max, 1, false);
        for f in &frags {
            match suite {
                // No padding: a full chunk fills the datagram exactly.
                SkSuite::Aead(_) => assert_eq!(f.len(), max),
                // Block padding: within one block of it.
                SkSuite::CbcHmac(..) => assert!(f.len() <= max && f.len() > max - 16, "{}", f.len()),
            }
        }
        // One more octet in a chunk would not fit.
        let mut bigger =
            MessageBuilder::new(header(1, false)).build_prefix(PayloadType::SKF).expect("prefix");
        tx.seal_fragment(&mut rng(1), &mut bigger, 0, 1, 1, &plaintext(chunk + 1, 0)).expect("seal");
        assert!(bigger.len() > max, "{suite:?}");
    }
}

#[test]
fn open_returns_each_fragment_and_its_chunk() {
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let chunk = max_chunk_len(suite, 200);
        let inner = plaintext(2 * chunk + 9, 3);
        let frags = send(&mut tx, &inner, 200, 4, true);
        for (i, (f, piece)) in frags.iter().zip(inner.chunks(chunk)).enumerate() {
            let got = fragment::open(f, &rx).expect("authentic");
            assert_eq!((usize::from(got.number), got.total), (i + 1, 3));
            assert_eq!(got.next_payload, if i == 0 { FIRST } else { PayloadType::NONE });
            assert_eq!(got.header.message_id, 4);
            assert!(got.header.flags.response());
            assert_eq!(got.chunk, piece);
        }
    }
}

#[test]
fn reassembled_plaintext_parses_as_the_original_payloads() {
    let big = plaintext(1500, 4);
    let payloads = [
        Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"gateway.example" }),
        Payload::Cert(Cert { encoding: CertEncoding::X509_SIGNATURE, data: &big }),
        Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, &[])),
        Payload::VendorId(VendorId { data: &big[..700] }),
    ];
    let mut inner = Vec::new();
    let first = emit_inner(&payloads, &mut inner).expect("emit");
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let frags = fragment::fragment(header(1, false), first, &inner, &mut tx, &mut rng(5), 548)
            .expect("fragments");
        assert_eq!(frags.len(), expected_count(inner.len(), max_chunk_len(suite, 548)));
        let order: Vec<usize> = (0..frags.len()).rev().collect();
        let (ty, plain) = deliver(&mut Reassembler::new(), &rx, &frags, &order);
        assert_eq!(parse_inner(ty, &plain).expect("parses"), payloads);
    }
}

#[test]
fn rejects_a_datagram_too_small_for_any_plaintext() {
    for suite in SkSuite::ALL {
        // IKE header, SKF headers, IV, ICV and one block (or one octet)
        // of padded plaintext.
        let min_pt = match suite {
            SkSuite::Aead(_) => 2,
            SkSuite::CbcHmac(..) => 16,
        };
        let smallest = 28 + 8 + suite.iv_len() + suite.icv_len() + min_pt;
        let (mut tx, rx) = ciphers(suite);
        let before = tx.iv_counter();
        for max in [0, 28, smallest - 1] {
            let r = fragment::fragment(header(1, false), FIRST, b"abc", &mut tx, &mut rng(1), max);
            assert!(matches!(r, Err(Error::Unencodable(_))), "{suite:?} {max}: {r:?}");
        }
        assert_eq!(tx.iv_counter(), before, "nothing sealed");
        let frags = send(&mut tx, b"abc", smallest, 1, false);
        assert_eq!(frags.len(), 3_usize.div_ceil(min_pt - 1));
        assert_fragment_fields(&frags, header(1, false), smallest);
        let order: Vec<usize> = (0..frags.len()).collect();
        assert_eq!(deliver(&mut Reassembler::new(), &rx, &frags, &order), (FIRST, b"abc".to_vec()));
    }
}

#[test]
fn rejects_more_than_65535_fragments() {
    // 62 octets carry one plaintext octet per AES-GCM fragment.
    let (mut tx, rx) = ciphers(GCM);
    assert_eq!(max_chunk_len(GCM, 62), 1);
    let r = fragment::fragment(header(1, false), FIRST, &plaintext(65_536, 0), &mut tx, &mut rng(1), 62);
    assert_eq!(r, Err(Error::Unencodable("a message in more than 65535 fragments")));
    assert_eq!(tx.iv_counter(), 0, "nothing sealed");

    let inner = plaintext(65_535, 9);
    let frags = send(&mut tx, &inner, 62, 1, false);
    assert_eq!(frags.len(), 65_535);
    assert!(frags.iter().all(|f| f.len() == 62));
    let mut r = Reassembler::with_limits(Limits { max_fragments: u16::MAX, max_size: 1 << 20 });
    let order: Vec<usize> = (0..frags.len()).rev().collect();
    assert_eq!(deliver(&mut r, &rx, &frags, &order), (FIRST, inner));
}

#[test]
fn seal_fragment_rejects_number_zero_or_above_total() {
    let (mut tx, _) = ciphers(GCM);
    let prefix = MessageBuilder::new(header(1, false)).build_prefix(PayloadType::SKF).expect("prefix");
    for (number, total) in [(0, 3), (4, 3), (1, 0), (0, 0)] {
        let mut m = prefix.clone();
        let r = tx.seal_fragment(&mut rng(1), &mut m, 0, number, total, b"x");
        assert!(matches!(r, Err(Error::Unencodable(_))), "{number}/{total}");
        assert_eq!(m, prefix, "message left as it was");
    }
}

// ---------------------------------------------------------------- receiving

#[test]
fn reassembles_in_every_order_of_up_to_five_fragments() {
    for suite in [GCM, CBC] {
        let max = 160;
        let chunk = max_chunk_len(suite, max);
        for n in 1..=5 {
            let (mut tx, rx) = ciphers(suite);
            let inner = plaintext(chunk * (n - 1) + 1, n as u8);
            let frags = send(&mut tx, &inner, max, 2, false);
            assert_eq!(frags.len(), n);
            for order in permutations(n) {
                let done = deliver(&mut Reassembler::new(), &rx, &frags, &order);
                assert_eq!(done, (FIRST, inner.clone()), "{suite:?} order {order:?}");
            }
        }
    }
}

#[test]
fn reassembles_random_shuffles_of_many_fragments() {
    let mut shuffler = rng(42);
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let inner = plaintext(40 * max_chunk_len(suite, 120) - 3, 6);
        let frags = send(&mut tx, &inner, 120, 9, true);
        assert_eq!(frags.len(), 40);
        for _ in 0..50 {
            let mut order: Vec<usize> = (0..frags.len()).collect();
            shuffle(&mut order, &mut shuffler);
            let done = deliver(&mut Reassembler::new(), &rx, &frags, &order);
            assert_eq!(done, (FIRST, inner.clone()), "{suite:?} order {order:?}");
        }
    }
}

#[test]
fn ignores_duplicates_before_and_after_completion() {
    let mut shuffler = rng(3);
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let inner = plaintext(6 * max_chunk_len(suite, 200) - 1, 7);
        let frags = send(&mut tx, &inner, 200, 5, false);
        let mut order: Vec<usize> = (0..frags.len()).chain(0..frags.len()).chain([0, 3, 3]).collect();
        shuffle(&mut order, &mut shuffler);
        let mut r = Reassembler::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut completions = 0;
        for &i in &order {
            let first_time = seen.insert(i);
            match r.add(&frags[i], &rx).expect("authentic") {
                Some(done) => {
                    assert!(first_time && seen.len() == frags.len(), "completes on the last new fragment");
                    assert_eq!(done, (FIRST, inner.clone()));
                    completions += 1;
                }
                None => assert!(!first_time || seen.len() < frags.len()),
            }
        }
        assert_eq!(completions, 1, "{suite:?}");
        assert_eq!((r.buffered(), r.pending(false)), (0, None), "nothing held after completion");
    }
}

#[test]
fn rejects_a_forged_fragment_without_poisoning_the_set() {
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let chunk = max_chunk_len(suite, 150);
        let inner = plaintext(5 * chunk, 8);
        let frags = send(&mut tx, &inner, 150, 6, false);
        assert_eq!(frags.len(), 5);
        let f4 = &frags[3];
        let last = f4.len() - 1;
        let mut forgeries: Vec<(&str, Vec<u8>)> = Vec::new();
        for (what, at) in
            [("IV", IV), ("ciphertext", IV + suite.iv_len() + 2), ("ICV", last), ("SKF next", SKF_NEXT)]
        {
            let mut f = f4.clone();
            f[at] ^= 0x01;
            forgeries.push((what, f));
        }
        let mut critical = f4.clone();
        critical[SKF_CRITICAL] ^= 0x80;
        forgeries.push(("critical bit", critical));
        // Header and SKF fields that would change the reassembler's state
        // if they were believed: they are authenticated too.
        forgeries.push(("higher total", patch_u16(f4, TOTAL_FRAGMENTS, 6)));
        forgeries.push(("other number", patch_u16(f4, FRAGMENT_NUMBER, 5)));
        let mut newer = f4.clone();
        newer[MESSAGE_ID + 3] += 1;
        forgeries.push(("newer message ID", newer));
        let mut flags = f4.clone();
        flags[FLAGS] ^= Flags::RESPONSE;
        forgeries.push(("other direction", flags));
        let mut exchange = f4.clone();
        exchange[EXCHANGE_TYPE] = ExchangeType::INFORMATIONAL.0;
        forgeries.push(("exchange type", exchange));
        forgeries.push(("truncated", f4[..f4.len() - 1].to_vec()));

        for (what, forged) in forgeries {
            let mut r = Reassembler::new();
            for f in &frags[..3] {
                assert_eq!(r.add(f, &rx), Ok(None));
            }
            let held = r.buffered();
            let result = r.add(&forged, &rx);
            assert!(result.is_err(), "{suite:?} {what}: {result:?}");
            if !matches!(what, "exchange type" | "truncated" | "critical bit") {
                assert_eq!(result, Err(Error::IntegrityCheckFailed), "{suite:?} {what}");
            }
            assert_eq!((r.buffered(), r.pending(false), r.pending(true)), (held, Some(6), None), "{what}");
            // The genuine copies still complete the message.
            assert_eq!(r.add(&frags[3], &rx), Ok(None));
            assert_eq!(r.add(&frags[4], &rx), Ok(Some((FIRST, inner.clone()))), "{suite:?} {what}");
        }
    }
}

#[test]
fn a_forged_copy_of_a_stored_fragment_is_dropped_unread() {
    let (mut tx, rx) = ciphers(GCM);
    let frags = send(&mut tx, &plaintext(300, 1), 150, 1, false);
    let mut r = Reassembler::new();
    assert_eq!(r.add(&frags[0], &rx), Ok(None));
    let mut forged = frags[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 0xff;
    // A duplicate number cannot change anything: dropped without a check.
    assert_eq!(r.add(&forged, &rx), Ok(None));
    let rest: Vec<usize> = (1..frags.len()).collect();
    assert_eq!(deliver(&mut r, &rx, &frags, &rest), (FIRST, plaintext(300, 1)));
}

#[test]
fn a_larger_total_discards_the_set_and_a_smaller_one_is_ignored() {
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let inner = plaintext(1000, 10);
        // The same message fragmented twice: the second time smaller, as
        // after a path MTU drop (RFC 7383 section 2.5.2).
        let coarse = send(&mut tx, &inner, 400, 8, false);
        let fine = send(&mut tx, &inner, 250, 8, false);
        assert!(fine.len() > coarse.len() && coarse.len() >= 3, "{} {}", coarse.len(), fine.len());

        // Coarse first, then fine: the fine set replaces the coarse one.
        let mut r = Reassembler::new();
        assert_eq!(r.add(&coarse[0], &rx), Ok(None));
        assert_eq!(r.add(&coarse[1], &rx), Ok(None));
        assert_eq!(r.add(&fine[1], &rx), Ok(None));
        let one_fine = r.buffered();
        assert_eq!(one_fine, fragment::open(&fine[1], &rx).expect("authentic").chunk.len());
        for f in &coarse {
            assert_eq!(r.add(f, &rx), Ok(None), "a smaller total is ignored");
        }
        assert_eq!(r.buffered(), one_fine);
        let rest: Vec<usize> = (0..fine.len()).filter(|&i| i != 1).collect();
        assert_eq!(deliver(&mut r, &rx, &fine, &rest), (FIRST, inner.clone()));

        // Fine first: the coarse fragments never enter.
        let mut r = Reassembler::new();
        assert_eq!(r.add(&fine[0], &rx), Ok(None));
        for f in &coarse {
            assert_eq!(r.add(f, &rx), Ok(None));
        }
        let rest: Vec<usize> = (1..fine.len()).collect();
        assert_eq!(deliver(&mut r, &rx, &fine, &rest), (FIRST, inner.clone()));
    }
}

#[test]
fn rejects_fragment_number_zero_or_above_total() {
    let (mut tx, rx) = ciphers(CBC);
    let frags = send(&mut tx, &plaintext(200, 11), 120, 1, false);
    let total = u16::try_from(frags.len()).expect("few");
    let cases = [
        (patch_u16(&frags[0], FRAGMENT_NUMBER, 0), "fragment number 0"),
        (patch_u16(&frags[0], FRAGMENT_NUMBER, total + 1), "fragment number above total fragments"),
        (patch_u16(&frags[0], TOTAL_FRAGMENTS, 0), "total fragments 0"),
        (patch_u16(&frags[2], TOTAL_FRAGMENTS, 2), "fragment number above total fragments"),
    ];
    let mut r = Reassembler::new();
    for (f, why) in cases {
        assert_eq!(r.add(&f, &rx), Err(Error::InvalidSyntax(why)));
        assert_eq!(fragment::open(&f, &rx), Err(Error::InvalidSyntax(why)));
    }
    assert_eq!((r.buffered(), r.pending(false)), (0, None));
}

#[test]
fn rejects_messages_that_are_not_a_lone_fragment() {
    let (mut tx, rx) = ciphers(GCM);
    let mut r = Reassembler::new();

    // An ordinary SK message.
    let mut sk = MessageBuilder::new(header(1, false)).build_prefix(PayloadType::SK).expect("prefix");
    tx.seal(&mut rng(1), &mut sk, FIRST.0, b"inner").expect("seal");
    assert_eq!(r.add(&sk, &rx), Err(Error::InvalidSyntax("not an IKE Fragment message")));

    // A fragment behind an unencrypted payload.
    let mut with_notify = MessageBuilder::new(header(1, false))
        .payload(Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, &[])))
        .build_prefix(PayloadType::SKF)
        .expect("prefix");
    tx.seal_fragment(&mut rng(1), &mut with_notify, FIRST.0, 1, 1, b"inner").expect("seal");
    assert_eq!(
        r.add(&with_notify, &rx),
        Err(Error::InvalidSyntax("payloads beside the Encrypted Fragment payload"))
    );

    // No payload at all, and bytes that are no IKE message.
    let empty = MessageBuilder::new(header(1, false)).build().expect("build");
    assert_eq!(r.add(&empty, &rx), Err(Error::InvalidSyntax("not an IKE Fragment message")));
    assert!(r.add(&[], &rx).is_err());
    assert!(r.add(&[0x2e; 40], &rx).is_err());
    assert_eq!(r.buffered(), 0);
}

#[test]
fn newer_message_ids_start_over_and_older_ones_are_stale() {
    let (mut tx, rx) = ciphers(CHACHA);
    let five = send(&mut tx, &plaintext(500, 5), 150, 5, false);
    let six = send(&mut tx, &plaintext(400, 6), 150, 6, false);
    let mut r = Reassembler::new();
    assert_eq!(r.add(&five[0], &rx), Ok(None));
    assert_eq!(r.pending(false), Some(5));
    assert_eq!(r.add(&six[1], &rx), Ok(None));
    assert_eq!(r.pending(false), Some(6), "the newer message replaced the older");
    for f in &five {
        assert_eq!(r.add(f, &rx), Ok(None), "older message ID: stale");
    }
    assert_eq!(r.pending(false), Some(6));
    let rest: Vec<usize> = (0..six.len()).filter(|&i| i != 1).collect();
    assert_eq!(deliver(&mut r, &rx, &six, &rest), (FIRST, plaintext(400, 6)));
    // Completed: replays of it or of older messages start nothing.
    for f in six.iter().chain(&five) {
        assert_eq!(r.add(f, &rx), Ok(None));
    }
    assert_eq!((r.pending(false), r.buffered()), (None, 0));
    // The next message is welcome.
    let seven = send(&mut tx, &plaintext(300, 7), 150, 7, false);
    let order: Vec<usize> = (0..seven.len()).collect();
    assert_eq!(deliver(&mut r, &rx, &seven, &order), (FIRST, plaintext(300, 7)));
}

#[test]
fn keeps_requests_and_responses_apart() {
    let (mut tx, rx) = ciphers(CBC512);
    let request = send(&mut tx, &plaintext(700, 1), 200, 3, false);
    let response = send(&mut tx, &plaintext(500, 2), 200, 1, true);
    let mut r = Reassembler::new();
    let mut results = Vec::new();
    for i in 0..request.len().max(response.len()) {
        for set in [&request, &response] {
            if let Some(f) = set.get(i) {
                if let Some(done) = r.add(f, &rx).expect("authentic") {
                    results.push(done);
                }
            }
        }
        if i == 0 {
            assert_eq!((r.pending(false), r.pending(true)), (Some(3), Some(1)));
        }
    }
    assert_eq!(results.len(), 2);
    assert!(results.contains(&(FIRST, plaintext(700, 1))));
    assert!(results.contains(&(FIRST, plaintext(500, 2))));
}

#[test]
fn enforces_the_fragment_count_limit() {
    let (mut tx, rx) = ciphers(GCM);
    let chunk = max_chunk_len(GCM, 100);
    let limits = Limits { max_fragments: 4, ..Limits::default() };
    let mut r = Reassembler::with_limits(limits);
    let five = send(&mut tx, &plaintext(4 * chunk + 1, 1), 100, 1, false);
    assert_eq!(five.len(), 5);
    for f in &five {
        assert_eq!(r.add(f, &rx), Err(Error::FragmentLimit("more fragments than the reassembly limit")));
    }
    assert_eq!((r.buffered(), r.pending(false)), (0, None));
    let four = send(&mut tx, &plaintext(4 * chunk, 2), 100, 2, false);
    let order: Vec<usize> = (0..4).collect();
    assert_eq!(deliver(&mut r, &rx, &four, &order), (FIRST, plaintext(4 * chunk, 2)));
}

#[test]
fn enforces_the_size_limit() {
    for suite in SUITES {
        let (mut tx, rx) = ciphers(suite);
        let limits = Limits { max_fragments: 64, max_size: 1000 };
        let mut r = Reassembler::with_limits(limits);
        let over = send(&mut tx, &plaintext(1001, 1), 150, 1, false);
        let mut refused = 0;
        for f in over.iter().chain(&over) {
            match r.add(f, &rx) {
                Ok(None) => {}
                Err(Error::FragmentLimit(_)) => refused += 1,
                other => panic!("{suite:?}: {other:?}"),
            }
            assert!(r.buffered() <= 1000, "{}", r.buffered());
        }
        assert!(refused >= 1, "{suite:?}");
        // Exactly at the limit is fine.
        let at = send(&mut tx, &plaintext(1000, 2), 150, 2, false);
        let order: Vec<usize> = (0..at.len()).rev().collect();
        assert_eq!(deliver(&mut r, &rx, &at, &order), (FIRST, plaintext(1000, 2)));
    }
}

#[test]
fn discard_drops_messages_in_progress() {
    let (mut tx, rx) = ciphers(GCM);
    let frags = send(&mut tx, &plaintext(400, 3), 150, 4, true);
    let mut r = Reassembler::new();
    assert_eq!(r.add(&frags[0], &rx), Ok(None));
    assert!(r.buffered() > 0);
    r.discard();
    assert_eq!((r.buffered(), r.pending(true)), (0, None));
    // A retransmission of the whole message is reassembled from scratch.
    let order: Vec<usize> = (0..frags.len()).collect();
    assert_eq!(deliver(&mut r, &rx, &frags, &order), (FIRST, plaintext(400, 3)));
}

// ---------------------------------------------------------------- proptests

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_random_plaintexts_sizes_and_orders(
        suite in 0..SkSuite::ALL.len(),
        len in 0usize..4000,
        max in 40usize..1500,
        seed in any::<u64>(),
        dups in 0usize..8,
    ) {
        let suite = SkSuite::ALL[suite];
        let (mut tx, rx) = ciphers(suite);
        let inner = plaintext(len, seed as u8);
        let chunk = max_chunk_len(suite, max);
        let result = fragment::fragment(header(2, false), FIRST, &inner, &mut tx, &mut rng(seed), max);
        if chunk == 0 {
            prop_assert!(matches!(result, Err(Error::Unencodable(_))));
            return Ok(());
        }
        let frags = result.expect("fits");
        prop_assert_eq!(frags.len(), expected_count(len, chunk));
        prop_assert!(frags.iter().all(|f| f.len() <= max));
        assert_fragment_fields(&frags, header(2, false), max);

        let mut shuffler = rng(seed ^ 1);
        let mut order: Vec<usize> = (0..frags.len()).collect();
        order.extend((0..dups).map(|i| i % frags.len()));
        shuffle(&mut order, &mut shuffler);
        let mut r = Reassembler::with_limits(Limits { max_fragments: u16::MAX, max_size: 1 << 16 });
        let mut done = Vec::new();
        for i in order {
            if let Some(d) = r.add(&frags[i], &rx).expect("authentic") {
                done.push(d);
            }
        }
        prop_assert_eq!(done, vec![(FIRST, inner)]);
    }

    #[test]
    fn never_panics_nor_is_poisoned_by_mutated_fragments(
        suite in 0..SUITES.len(),
        mutations in proptest::collection::vec((any::<usize>(), any::<usize>(), 1u8..=255), 1..24),
        junk in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let suite = SUITES[suite];
        let (mut tx, rx) = ciphers(suite);
        let inner = plaintext(900, 4);
        let frags = send(&mut tx, &inner, 200, 9, false);
        let mut r = Reassembler::new();
        prop_assert!(r.add(&junk, &rx).is_err());
        prop_assert!(fragment::open(&junk, &rx).is_err());
        let mut genuine = 0;
        for (which, at, xor) in mutations {
            let mut f = frags[which % frags.len()].clone();
            let at = at % f.len();
            f[at] ^= xor;
            // A mutated fragment changes nothing: it neither completes a
            // message, nor enters a set, nor discards one.
            let before = (r.buffered(), r.pending(false), r.pending(true));
            let result = r.add(&f, &rx);
            prop_assert!(matches!(result, Err(_) | Ok(None)), "{:?}", result);
            prop_assert_eq!((r.buffered(), r.pending(false), r.pending(true)), before);
            prop_assert!(fragment::open(&f, &rx).is_err());
            // Genuine fragments arrive in between, all but the last.
            if genuine + 1 < frags.len() {
                prop_assert_eq!(r.add(&frags[genuine], &rx), Ok(None));
                genuine += 1;
            }
        }
        let rest: Vec<usize> = (genuine..frags.len()).collect();
        prop_assert_eq!(deliver(&mut r, &rx, &frags, &rest), (FIRST, inner));
    }
}
