//! Key exchange: known answers, peer-value validation, agreement and robustness.
//!
//! Sources of the vectors:
//! - X25519: RFC 7748 section 6.1 and RFC 8031 Appendix A.
//! - ECP 256/384: RFC 5903 sections 8.1 and 8.2.
//! - MODP 2048: computed for this file with Python's built-in `pow` (an
//!   independent big-integer implementation) from the RFC 3526 prime, plus
//!   structured exponents whose powers of two can be checked by hand.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use proptest::prelude::*;
use std::sync::LazyLock;
use tandem_crypto::Error;
use tandem_crypto::kex::{DhGroup, KeyExchange};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("test vector is valid hex")
}

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// The RFC 3526 primes, written out independently of the library's copy.
const P2048: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1 29024E08 8A67CC74 020BBEA6 3B139B22
    514A0879 8E3404DD EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245 E485B576 625E7EC6
    F44C42E9 A637ED6B 0BFF5CB6 F406B7ED EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F 83655D23 DCA3AD96 1C62F356 208552BB
    9ED52907 7096966D 670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B E39E772C 180E8603
    9B2783A2 EC07A28F B5C55DF0 6F4C52C9 DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AACAA68 FFFFFFFF FFFFFFFF";
const P3072: &str = "
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1 29024E08 8A67CC74 020BBEA6 3B139B22
    514A0879 8E3404DD EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245 E485B576 625E7EC6
    F44C42E9 A637ED6B 0BFF5CB6 F406B7ED EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F 83655D23 DCA3AD96 1C62F356 208552BB
    9ED52907 7096966D 670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B E39E772C 180E8603
    9B2783A2 EC07A28F B5C55DF0 6F4C52C9 DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64 ECFB8504 58DBEF0A 8AEA7157 5D060C7D
    B3970F85 A6E1E4C7 ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B F12FFA06 D98A0864
    D8760273 3EC86A64 521F2B18 177B200C BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A93AD2CA FFFFFFFF FFFFFFFF";

fn prime(group: DhGroup) -> Vec<u8> {
    match group {
        DhGroup::Modp2048 => h(P2048),
        DhGroup::Modp3072 => h(P3072),
        _ => unreachable!("only MODP groups have a prime here"),
    }
}

/// Adds `delta` (which may be negative) to a big-endian integer, in place.
fn add_small(n: &mut [u8], delta: i16) {
    let mut carry = i32::from(delta);
    for b in n.iter_mut().rev() {
        let v = i32::from(*b) + carry;
        *b = v.rem_euclid(256) as u8;
        carry = v.div_euclid(256);
        if carry == 0 {
            break;
        }
    }
}

fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, group: DhGroup, what: &str) {
    match result {
        Err(Error::InvalidPublicValue { group: g, .. }) => assert_eq!(g, group.name(), "{what}"),
        other => panic!("{}: {what}: expected InvalidPublicValue, got {other:?}", group.name()),
    }
}

// ---------------------------------------------------------------- X25519 ---

#[test]
fn x25519_rfc7748_section_6_1() {
    let alice = KeyExchange::from_private(
        DhGroup::Curve25519,
        &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .expect("valid private value");
    let bob = KeyExchange::from_private(
        DhGroup::Curve25519,
        &h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
    )
    .expect("valid private value");
    assert_eq!(alice.public_value(), h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"));
    assert_eq!(bob.public_value(), h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"));
    let k = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(alice.shared_secret(bob.public_value()).expect("valid peer value").expose(), k);
    assert_eq!(bob.shared_secret(alice.public_value()).expect("valid peer value").expose(), k);
}

#[test]
fn x25519_rfc8031_appendix_a() {
    let i = KeyExchange::from_private(
        DhGroup::Curve25519,
        &h("75 1f b4 30 86 55 b4 76 b6 78 9b 73 25 f9 ea 8c dd d1 6a 58 53 3f f6 d9 e6 00 09 46 4a 5f 9d 94"),
    )
    .expect("valid private value");
    let r = KeyExchange::from_private(
        DhGroup::Curve25519,
        &h("0a 54 64 52 53 29 0d 60 dd ad d0 e0 30 ba cd 9e 55 01 ef dc 22 07 55 a1 e9 78 f1 b8 39 a0 56 88"),
    )
    .expect("valid private value");
    assert_eq!(
        i.public_value(),
        h("48 d5 dd d4 06 12 57 ba 16 6f a3 f9 bb db 74 f1 a4 e8 1c 08 93 84 fa 77 f7 90 70 9f 0d fb c7 66")
    );
    assert_eq!(
        r.public_value(),
        h("0b e7 c1 f5 aa d8 7d 7e 44 86 62 67 32 98 a4 43 47 8b 85 97 45 17 9e af 56 4c 79 c0 ef 6e ee 25")
    );
    let k =
        h("c7 49 50 60 7a 12 32 7f 32 04 d9 4b 68 25 bf b0 68 b7 f8 31 9a 9e 37 08 ed 3d 43 ce 81 30 c9 50");
    assert_eq!(i.shared_secret(r.public_value()).expect("valid peer value").expose(), k);
    assert_eq!(r.shared_secret(i.public_value()).expect("valid peer value").expose(), k);
}

/// Every u that X25519 (with the top bit masked, RFC 7748 section 5) maps to
/// the all-zero output: the low-order points of RFC 7748 section 7 / the
/// libsodium blacklist, and their encodings with the top bit set.
const X25519_LOW_ORDER: [&str; 11] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

#[test]
fn x25519_rejects_low_order_points() {
    let mut rng = rng(1);
    for _ in 0..4 {
        let kex = KeyExchange::generate(DhGroup::Curve25519, &mut rng);
        for u in X25519_LOW_ORDER {
            assert_eq!(kex.shared_secret(&h(u)), Err(Error::DegenerateSecret), "u = {u}");
        }
    }
}

#[test]
fn x25519_rejects_wrong_lengths() {
    let kex = KeyExchange::generate(DhGroup::Curve25519, &mut rng(2));
    let good = KeyExchange::generate(DhGroup::Curve25519, &mut rng(3)).public_value().to_vec();
    for len in [0, 1, 31, 33, 64] {
        let mut v = good.clone();
        v.resize(len, 0x42);
        assert_invalid(kex.shared_secret(&v), DhGroup::Curve25519, &format!("length {len}"));
    }
    assert!(kex.shared_secret(&good).is_ok());
}

// ------------------------------------------------------------------- ECP ---

struct EcpVector {
    group: DhGroup,
    i: &'static str,
    gi: &'static str,
    r: &'static str,
    gr: &'static str,
    gir: &'static str,
}

const RFC5903: [EcpVector; 2] = [
    // Section 8.1, 256-bit Random ECP Group.
    EcpVector {
        group: DhGroup::Ecp256,
        i: "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
        gi: "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180
             5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
        r: "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
        gr: "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63
             56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
        gir: "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
    },
    // Section 8.2, 384-bit Random ECP Group.
    EcpVector {
        group: DhGroup::Ecp384,
        i: "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
            E35B5380 41E649EE 3FAEF896 783AB194",
        gi: "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
             DE3AC808 ACB4BDB4 C88732AE E95F41AA 9482ED1F C0EEB9CA FC498462 5CCFC23F
             65032149 E0E144AD A0241815 35A0F38E EB9FCFF3 C2C947DA E69B4C63 4573A81C",
        r: "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
            E0308312 916B8ED2 960E4BD5 5A7448FC",
        gr: "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
             0D1AC43A 0336DEF9 6FDA41D0 774A3571 DCFBEC7A ACF31964 72169E83 8430367F
             66EEBE3C 6E70C416 DD5F0C68 759DD1FF F83FA401 42209DFF 5EAAD96D B9E6386C",
        gir: "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
              D6031355 69B9E9D0 9CF5D4A2 70F59746",
    },
];

#[test]
fn ecp_rfc5903_section_8() {
    for v in &RFC5903 {
        let i = KeyExchange::from_private(v.group, &h(v.i)).expect("valid private value");
        let r = KeyExchange::from_private(v.group, &h(v.r)).expect("valid private value");
        assert_eq!(i.public_value(), h(v.gi), "{:?} gi", v.group);
        assert_eq!(r.public_value(), h(v.gr), "{:?} gr", v.group);
        let gir = h(v.gir);
        assert_eq!(gir.len(), v.group.public_len() / 2);
        assert_eq!(
            i.shared_secret(r.public_value()).expect("valid peer value").expose(),
            gir,
            "{:?} i",
            v.group
        );
        assert_eq!(
            r.shared_secret(i.public_value()).expect("valid peer value").expose(),
            gir,
            "{:?} r",
            v.group
        );
    }
}

#[test]
fn ecp_rejects_bad_points() {
    for v in &RFC5903 {
        let group = v.group;
        let n = group.public_len() / 2;
        let kex = KeyExchange::from_private(group, &h(v.i)).expect("valid private value");
        let gr = h(v.gr);

        assert_invalid(kex.shared_secret(&vec![0; 2 * n]), group, "all-zero point");
        for len in [0, 1, n, 2 * n - 1, 2 * n + 1] {
            let mut bad = gr.clone();
            bad.resize(len, 0);
            assert_invalid(kex.shared_secret(&bad), group, &format!("length {len}"));
        }
        // SEC1 uncompressed form (0x04 prefix) is not the IKEv2 encoding.
        let mut sec1 = vec![4];
        sec1.extend_from_slice(&gr);
        assert_invalid(kex.shared_secret(&sec1), group, "0x04 prefix");

        let mut off_curve = gr.clone();
        off_curve[2 * n - 1] ^= 1;
        assert_invalid(kex.shared_secret(&off_curve), group, "y + 1");
        let mut off_curve = gr.clone();
        off_curve[0] ^= 0x80;
        assert_invalid(kex.shared_secret(&off_curve), group, "x flipped");
        assert_invalid(kex.shared_secret(&vec![0xff; 2 * n]), group, "coordinates >= p");

        // The unmodified value is still accepted.
        assert!(kex.shared_secret(&gr).is_ok());
    }
}

#[test]
fn ecp_from_private_rejects_bad_scalars() {
    for group in [DhGroup::Ecp256, DhGroup::Ecp384] {
        let n = group.public_len() / 2;
        assert!(matches!(KeyExchange::from_private(group, &vec![0; n]), Err(Error::DegenerateSecret)));
        assert!(matches!(KeyExchange::from_private(group, &vec![0xff; n]), Err(Error::DegenerateSecret)));
        assert!(matches!(KeyExchange::from_private(group, &vec![1; n - 1]), Err(Error::KeyLength { .. })));
    }
}

// ------------------------------------------------------------------ MODP ---

#[test]
fn modp2048_known_answer() {
    // Exponents are SHA-512("tandem modp2048 initiator"/"... responder");
    // the values were computed with Python's pow() over the RFC 3526 prime.
    let i = KeyExchange::from_private(
        DhGroup::Modp2048,
        &h("f3ff97dad78fa82bb4c044398a8a4f00e8633c06a846a11ef931b70a761a155e
            006da511010eec30f7d8818554cf8b2d983a4451da7c46b7bafc954dc9717410"),
    )
    .expect("valid private value");
    let r = KeyExchange::from_private(
        DhGroup::Modp2048,
        &h("b911394447eecca3928552601a8752a65237f8028c59085a48d0fdc360587d9a
            5fd6ed77890787dd34365921fe869825ea59b759e1f0e83b6152a06b03cc05d2"),
    )
    .expect("valid private value");
    let gi = h("
        0ff2c64157907ab932999314fc22e3f38de5c69c0f2c43ccac4e75bd1c251da00dfede3f222b6354fe5935704ca00e06
        deb8b75007c944151dd2fc4cc35e8a3326be7a0e4d315e827c4b6304329ff2b07f0ec1bd08287cc35e217c2e34cef7bf
        bedf700387fdd07e0b8604b0d6de18499e744e1cc5aef8b9e71136f0c043f3aca82dbf32e284c599aa56974e3dca3913
        7e0ef0f021377e6300f73743d2be802bdbd2d338872c850b4e43337606d0bda84ffa58f4c801197013e23edfd0afa652
        e189db716a6105ab8608f2908397ce2951ee24f0870d853d2440ef84b76261f9e45759cde084915c5fbb5f1154b44206
        fc14feb04735cb9859d254424d99e04d");
    let gr = h("
        3fd28127ac0accfc3e02ab61742d043f0a0fc0f42f34686094e7560462f8fa13aaa9d1ce50cded838e2e38359a5460e8
        273c9881a03e7b3ed7208f2a98005c66faf545b50a1e00984066004fd7c619d4db84d41cf43798c30239dd6b8ca1c25c
        ab533673535416494d0a2e7e9a655f094def5dcaad99afd856bd1485bcde374ec716ff7311c796ed9681f595cabfc5f0
        95c5a3c91f9b0d1d601f25f7372ba6598d7d8591cf917cf8c48c87e48f442b9eb3fa6bc8232150f71666e7bc7310cc90
        693deb8af1f16314a78e16219020216721f538b25f2c1f3a8d23f9826e61d315d3bb976364a8e62eb626055c09e3b2a8
        2028ddf20e8fef39c124785dc02a5056");
    let gir = h("
        0805384c6f4fb1b068059376f6f753b0855e6b75d2b961f8b887a2cdf916ad221696189b2b44f67f05f8bc6710bbb9cc
        5c6ceab84c556a328d29b4c42f16d5c67d8a70e2a785c705445b0eff83cf40049e17eff982583d0353a4b9d3c142faed
        b85ac6e7b78180190d519a72d514ffd5d995b8f459949c67740a1a5568def38ba7218c67b028e8165ea74758f052f7f5
        dc293b13ae48e10cf8e8fe84cbd825f1a9007ff2d044b1ca6ddb74a705e1bcabf5d81d354486f37e69aa6705bd6554b1
        97fab366d1f33b76c4b74ba8c691f1c7cc81fa8b5c18b4765cd30bb31a7528eee0b307889ce72fd0f7843e81925d9544
        14387b1b83c5266f5255fb54b24c1c03");
    assert_eq!(i.public_value(), gi);
    assert_eq!(r.public_value(), gr);
    // The leading octet of g^ir is 0x08: the encoding keeps the full width.
    assert_eq!(i.shared_secret(&gr).expect("valid peer value").expose(), gir);
    assert_eq!(r.shared_secret(&gi).expect("valid peer value").expose(), gir);
}

#[test]
fn modp_structured_known_answers() {
    // Exponents whose powers of two are checkable by hand: 2^1 = 2, and
    // 2^(8(len-1)) < p is 0x01 followed by len-1 zero octets.
    for group in [DhGroup::Modp2048, DhGroup::Modp3072] {
        let len = group.public_len();
        let one = KeyExchange::from_private(group, &[1]).expect("valid private value");
        let mut two = vec![0; len];
        two[len - 1] = 2;
        assert_eq!(one.public_value(), two);

        // 2^(8 * (len - 1)) is 0x01 followed by len - 1 zero octets.
        let e = u16::try_from(8 * (len - 1)).expect("exponent fits in 16 bits").to_be_bytes();
        let top = KeyExchange::from_private(group, &e).expect("valid private value");
        let mut want = vec![0; len];
        want[0] = 1;
        assert_eq!(top.public_value(), want);

        // Both sides get 2^(8(len-1)); and a small shared secret (2^1, from
        // exponent 1 and peer value 2) keeps the full modulus length.
        assert_eq!(one.shared_secret(top.public_value()).expect("valid peer value").expose(), want);
        assert_eq!(top.shared_secret(one.public_value()).expect("valid peer value").expose(), want);
        let s = one.shared_secret(&two).expect("valid peer value");
        assert_eq!(s.len(), len);
        assert_eq!(s.expose(), two);
    }
}

#[test]
fn modp_rejects_out_of_range_values() {
    for group in [DhGroup::Modp2048, DhGroup::Modp3072] {
        let len = group.public_len();
        let kex = KeyExchange::generate(group, &mut rng(4));
        let p = prime(group);
        assert_eq!(p.len(), len);

        let mut bad = Vec::new();
        bad.push(("0", vec![0; len]));
        let mut one = vec![0; len];
        one[len - 1] = 1;
        bad.push(("1", one));
        let mut p_minus_1 = p.clone();
        add_small(&mut p_minus_1, -1);
        bad.push(("p-1", p_minus_1));
        bad.push(("p", p.clone()));
        let mut p_plus_1 = p.clone();
        add_small(&mut p_plus_1, 1);
        bad.push(("p+1", p_plus_1));
        bad.push(("2^n - 1", vec![0xff; len]));
        for (what, v) in &bad {
            assert_invalid(kex.shared_secret(v), group, what);
        }

        // Wrong lengths, including a valid value with a leading zero octet
        // added or removed.
        let peer = KeyExchange::generate(group, &mut rng(5));
        let mut longer = vec![0];
        longer.extend_from_slice(peer.public_value());
        assert_invalid(kex.shared_secret(&longer), group, "len + 1");
        assert_invalid(kex.shared_secret(&peer.public_value()[1..]), group, "len - 1");
        assert_invalid(kex.shared_secret(&[]), group, "empty");
        assert_invalid(kex.shared_secret(&[2]), group, "one octet");

        // The boundaries just inside the range are accepted: 2 and p-2.
        let mut two = vec![0; len];
        two[len - 1] = 2;
        assert!(kex.shared_secret(&two).is_ok());
        let mut p_minus_2 = p.clone();
        add_small(&mut p_minus_2, -2);
        assert!(kex.shared_secret(&p_minus_2).is_ok());
    }
}

#[test]
fn modp_from_private_rejects_bad_exponents() {
    for group in [DhGroup::Modp2048, DhGroup::Modp3072] {
        let len = group.public_len();
        assert!(matches!(KeyExchange::from_private(group, &[]), Err(Error::KeyLength { .. })));
        assert!(matches!(KeyExchange::from_private(group, &vec![1; len + 1]), Err(Error::KeyLength { .. })));
        assert!(matches!(KeyExchange::from_private(group, &[0, 0]), Err(Error::DegenerateSecret)));
    }
}

// ------------------------------------------------------------ all groups ---

#[test]
fn both_parties_agree_for_every_group() {
    let mut rng = rng(6);
    for group in DhGroup::ALL {
        for _ in 0..2 {
            let i = KeyExchange::generate(group, &mut rng);
            let r = KeyExchange::generate(group, &mut rng);
            assert_eq!(i.group(), group);
            assert_eq!(i.public_value().len(), group.public_len());
            assert_ne!(i.public_value(), r.public_value());
            let si = i.shared_secret(r.public_value()).expect("valid peer value");
            let sr = r.shared_secret(i.public_value()).expect("valid peer value");
            assert_eq!(si, sr, "{group:?}");
            let want = match group {
                DhGroup::Ecp256 | DhGroup::Ecp384 => group.public_len() / 2,
                _ => group.public_len(),
            };
            assert_eq!(si.len(), want, "{group:?}");
            assert!(si.expose().iter().any(|&b| b != 0));
        }
    }
}

#[test]
fn generation_is_deterministic_in_the_rng() {
    for group in DhGroup::ALL {
        let a = KeyExchange::generate(group, &mut rng(7));
        let b = KeyExchange::generate(group, &mut rng(7));
        let c = KeyExchange::generate(group, &mut rng(8));
        assert_eq!(a.public_value(), b.public_value(), "{group:?}");
        assert_ne!(a.public_value(), c.public_value(), "{group:?}");
    }
}

#[test]
fn a_peer_value_from_another_group_is_rejected() {
    let mut rng = rng(9);
    let all: Vec<KeyExchange> =
        DhGroup::ALL.into_iter().map(|g| KeyExchange::generate(g, &mut rng)).collect();
    for a in &all {
        for b in &all {
            if a.group() != b.group() {
                assert_invalid(a.shared_secret(b.public_value()), a.group(), "other group's value");
            }
        }
    }
}

#[test]
fn debug_does_not_print_secrets() {
    let kex = KeyExchange::from_private(
        DhGroup::Curve25519,
        &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .expect("valid private value");
    let s = format!("{kex:?}");
    assert_eq!(s, "KeyExchange { group: Curve25519, .. }");
}

static KEXES: LazyLock<Vec<KeyExchange>> = LazyLock::new(|| {
    let mut rng = rng(10);
    DhGroup::ALL.into_iter().map(|g| KeyExchange::generate(g, &mut rng)).collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn shared_secret_never_panics_on_any_length(bytes in proptest::collection::vec(any::<u8>(), 0..520)) {
        for kex in KEXES.iter() {
            let _ = kex.shared_secret(&bytes);
        }
    }

    #[test]
    fn shared_secret_never_panics_on_the_right_length(seed in any::<[u8; 32]>()) {
        use chacha20::rand_core::Rng;
        let mut r = ChaCha20Rng::from_seed(seed);
        for kex in KEXES.iter() {
            let mut bytes = vec![0; kex.group().public_len()];
            r.fill_bytes(&mut bytes);
            match kex.shared_secret(&bytes) {
                Ok(s) => prop_assert!(!s.is_empty()),
                Err(Error::InvalidPublicValue { .. } | Error::DegenerateSecret) => {}
                Err(e) => prop_assert!(false, "unexpected error {e:?}"),
            }
        }
    }
}
