//! Known-answer tests against published vectors, run for every AEAD provider
//! built in.
//!
//! Sources (transcribed by hand; every vector here passes, which is the
//! check on the transcription):
//! - RFC 8439 section 2.8.2: AEAD_CHACHA20_POLY1305.
//! - McGrew & Viega, "The Galois/Counter Mode of Operation" (gcm-revised-spec),
//!   test cases 1-4 (AES-128) and 13-16 (AES-256), the ones with 96-bit IVs.
//! - NIST CAVP `gcmEncryptExtIV128.rsp` / `gcmEncryptExtIV256.rsp`
//!   (IVlen = 96, PTlen = 128, Taglen = 128, with AAD), two per key size.
//! - RFC 4231 section 4: HMAC-SHA-256/384/512 test cases 1-7.
//! - RFC 4868 section 2.7.2: HMAC-SHA-256-128 / 384-192 / 512-256
//!   authenticator vectors (keys of exactly the integrity key length).
//! - RFC 3602 section 4: AES-128-CBC cases 1-4; NIST SP 800-38A F.2.5/F.2.6:
//!   CBC-AES256.
//! - draft-mcgrew-gcm-test-01 section 4 and RFC 7634 Appendix A: whole ESP
//!   packets, from `esp/tests/vectors/mod.rs`.

#[path = "../../esp/tests/vectors/mod.rs"]
mod esp_vectors;

use tandem_crypto::Error;
use tandem_crypto::aead::{AeadAlgorithm, IV_LEN, NONCE_LEN, Provider, SALT_LEN, SaltedAead, TAG_LEN};
use tandem_crypto::cbc_hmac::{AesCbc, BLOCK_LEN, CbcAlgorithm, IntegAlgorithm, Integrity};
use tandem_crypto::prf::PrfAlgorithm;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector is valid hex")
}

fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("test vector field has the expected length")
}

/// An AEAD known answer: a 12-octet nonce, as the AEAD specifications print it.
struct AeadVector {
    name: &'static str,
    alg: AeadAlgorithm,
    key: &'static str,
    nonce: &'static str,
    aad: &'static str,
    plaintext: &'static str,
    ciphertext: &'static str,
    tag: &'static str,
}

/// Seals and opens `v` with `provider`, both through the raw cipher (whole
/// nonce) and through [`SaltedAead`] (nonce split into salt and explicit IV).
fn check_aead(provider: Provider, v: &AeadVector) {
    let ctx = format!("{} [{}]", v.name, provider.name());
    let key = h(v.key);
    let nonce: [u8; NONCE_LEN] = arr(&h(v.nonce));
    let aad = h(v.aad);
    let pt = h(v.plaintext);
    let ct = h(v.ciphertext);
    let tag: [u8; TAG_LEN] = arr(&h(v.tag));

    let cipher = provider.cipher(v.alg, &key).expect("key length matches the algorithm");
    assert_eq!(cipher.algorithm(), v.alg, "{ctx}");
    let mut buf = pt.clone();
    let got_tag = cipher.seal_in_place(&nonce, &aad, &mut buf).expect("seal");
    assert_eq!(hex::encode(&buf), v.ciphertext, "{ctx}: ciphertext");
    assert_eq!(hex::encode(got_tag), v.tag, "{ctx}: tag");
    cipher.open_in_place(&nonce, &aad, &mut buf, &tag).expect("published tag verifies");
    assert_eq!(buf, pt, "{ctx}: opened plaintext");

    let mut keymat = key.clone();
    keymat.extend_from_slice(&nonce[..SALT_LEN]);
    let iv: [u8; IV_LEN] = arr(&nonce[SALT_LEN..]);
    let salted = SaltedAead::new(provider, v.alg, &keymat).expect("keymat length matches");
    let mut buf = pt.clone();
    let got_tag = salted.seal(&iv, &aad, &mut buf).expect("seal");
    assert_eq!(buf, ct, "{ctx}: salted ciphertext");
    assert_eq!(got_tag, tag, "{ctx}: salted tag");
    salted.open(&iv, &aad, &mut buf, &tag).expect("published tag verifies");
    assert_eq!(buf, pt, "{ctx}: salted opened plaintext");
}

// ---------------------------------------------------------------------------
// ChaCha20-Poly1305: RFC 8439 section 2.8.2
// ---------------------------------------------------------------------------

/// RFC 8439 section 2.8.2. The nonce is the 32-bit constant `07000000`
/// followed by the 64-bit IV `4041424344454647`.
const RFC8439_AEAD: AeadVector = AeadVector {
    name: "RFC 8439 2.8.2",
    alg: AeadAlgorithm::ChaCha20Poly1305,
    key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    nonce: "070000004041424344454647",
    aad: "50515253c0c1c2c3c4c5c6c7",
    plaintext: concat!(
        "4c616469657320616e642047656e746c",
        "656d656e206f662074686520636c6173",
        "73206f66202739393a20496620492063",
        "6f756c64206f6666657220796f75206f",
        "6e6c79206f6e652074697020666f7220",
        "746865206675747572652c2073756e73",
        "637265656e20776f756c642062652069",
        "742e",
    ),
    ciphertext: concat!(
        "d31a8d34648e60db7b86afbc53ef7ec2",
        "a4aded51296e08fea9e2b5a736ee62d6",
        "3dbea45e8ca9671282fafb69da92728b",
        "1a71de0a9e060b2905d6a5b67ecd3b36",
        "92ddbd7f2d778b8c9803aee328091b58",
        "fab324e4fad675945585808b4831d7bc",
        "3ff4def08e4b7a9de576d26586cec64b",
        "6116",
    ),
    tag: "1ae10b594f09e26a7e902ecbd0600691",
};

#[test]
fn accepts_rfc8439_aead_vector() {
    // The plaintext is the ASCII sentence the RFC prints beside the hex.
    assert_eq!(
        h(RFC8439_AEAD.plaintext),
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
    );
    for &p in Provider::available() {
        check_aead(p, &RFC8439_AEAD);
    }
}

/// Opens the RFC 8439 vector after `tamper` has changed (ciphertext, tag, aad).
fn open_rfc8439_tampered(
    provider: Provider,
    tamper: impl Fn(&mut Vec<u8>, &mut [u8; TAG_LEN], &mut Vec<u8>),
) {
    let v = &RFC8439_AEAD;
    let cipher = provider.cipher(v.alg, &h(v.key)).expect("key");
    let nonce: [u8; NONCE_LEN] = arr(&h(v.nonce));
    let mut ct = h(v.ciphertext);
    let mut tag: [u8; TAG_LEN] = arr(&h(v.tag));
    let mut aad = h(v.aad);
    tamper(&mut ct, &mut tag, &mut aad);
    assert_eq!(
        cipher.open_in_place(&nonce, &aad, &mut ct, &tag),
        Err(Error::BadTag),
        "tampered input accepted by {}",
        provider.name()
    );
}

#[test]
fn rejects_flipped_ciphertext_bit() {
    for &p in Provider::available() {
        open_rfc8439_tampered(p, |ct, _, _| ct[0] ^= 0x01);
        open_rfc8439_tampered(p, |ct, _, _| {
            let last = ct.len() - 1;
            ct[last] ^= 0x80;
        });
    }
}

#[test]
fn rejects_flipped_tag_bit() {
    for &p in Provider::available() {
        open_rfc8439_tampered(p, |_, tag, _| tag[0] ^= 0x01);
        open_rfc8439_tampered(p, |_, tag, _| tag[TAG_LEN - 1] ^= 0x80);
    }
}

#[test]
fn rejects_modified_aad() {
    for &p in Provider::available() {
        open_rfc8439_tampered(p, |_, _, aad| aad[0] ^= 0x01);
        open_rfc8439_tampered(p, |_, _, aad| aad.clear());
    }
}

// ---------------------------------------------------------------------------
// AES-GCM
// ---------------------------------------------------------------------------

const GCM_P: &str = concat!(
    "d9313225f88406e5a55909c5aff5269a",
    "86a7a9531534f7da2e4c303d8a318a72",
    "1c3c0c95956809532fcf0e2449a6b525",
    "b16aedf5aa0de657ba637b391aafd255",
);
/// Test cases 4 and 16 use the first 60 octets of [`GCM_P`].
const GCM_P60: &str = concat!(
    "d9313225f88406e5a55909c5aff5269a",
    "86a7a9531534f7da2e4c303d8a318a72",
    "1c3c0c95956809532fcf0e2449a6b525",
    "b16aedf5aa0de657ba637b39",
);
const GCM_A: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";

/// gcm-revised-spec test cases 1-4 (AES-128, 96-bit IV).
const GCM_SPEC_128: &[AeadVector] = &[
    AeadVector {
        name: "GCM spec test case 1",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "00000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "",
        ciphertext: "",
        tag: "58e2fccefa7e3061367f1d57a4e7455a",
    },
    AeadVector {
        name: "GCM spec test case 2",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "00000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "00000000000000000000000000000000",
        ciphertext: "0388dace60b6a392f328c2b971b2fe78",
        tag: "ab6e47d42cec13bdf53a67b21257bddf",
    },
    AeadVector {
        name: "GCM spec test case 3",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: "",
        plaintext: GCM_P,
        ciphertext: concat!(
            "42831ec2217774244b7221b784d0d49c",
            "e3aa212f2c02a4e035c17e2329aca12e",
            "21d514b25466931c7d8f6a5aac84aa05",
            "1ba30b396a0aac973d58e091473f5985",
        ),
        tag: "4d5c2af327cd64a62cf35abd2ba6fab4",
    },
    AeadVector {
        name: "GCM spec test case 4",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: GCM_A,
        plaintext: GCM_P60,
        ciphertext: concat!(
            "42831ec2217774244b7221b784d0d49c",
            "e3aa212f2c02a4e035c17e2329aca12e",
            "21d514b25466931c7d8f6a5aac84aa05",
            "1ba30b396a0aac973d58e091",
        ),
        tag: "5bc94fbc3221a5db94fae95ae7121a47",
    },
];

/// gcm-revised-spec test cases 13-16 (AES-256, 96-bit IV).
const GCM_SPEC_256: &[AeadVector] = &[
    AeadVector {
        name: "GCM spec test case 13",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "",
        ciphertext: "",
        tag: "530f8afbc74536b9a963b4f1c4cb738b",
    },
    AeadVector {
        name: "GCM spec test case 14",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "0000000000000000000000000000000000000000000000000000000000000000",
        nonce: "000000000000000000000000",
        aad: "",
        plaintext: "00000000000000000000000000000000",
        ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
        tag: "d0d1c8a799996bf0265b98b5d48ab919",
    },
    AeadVector {
        name: "GCM spec test case 15",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: "",
        plaintext: GCM_P,
        ciphertext: concat!(
            "522dc1f099567d07f47f37a32a84427d",
            "643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838",
            "c5f61e6393ba7a0abcc9f662898015ad",
        ),
        tag: "b094dac5d93471bdec1a502270e3cc6c",
    },
    AeadVector {
        name: "GCM spec test case 16",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        nonce: "cafebabefacedbaddecaf888",
        aad: GCM_A,
        plaintext: GCM_P60,
        ciphertext: concat!(
            "522dc1f099567d07f47f37a32a84427d",
            "643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838",
            "c5f61e6393ba7a0abcc9f662",
        ),
        tag: "76fc6ece0f4e1768cddf8853bb2d551b",
    },
];

/// NIST CAVP GCM encryption vectors with a 128-bit plaintext and AAD
/// (transcribed via the RustCrypto `aes-gcm` test suite, which carries the
/// `.rsp` files' values).
const GCM_CAVP_WITH_AAD: &[AeadVector] = &[
    AeadVector {
        name: "CAVP gcmEncryptExtIV128 PTlen=128 AADlen=128",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "7b0345f6dcf469ecf9b17efa39de5359",
        nonce: "b15d6fcde5e6cf1fa99ba145",
        aad: "72e9cb26885154d4629e7bc91279bb19",
        plaintext: "822ae01a0372b6aa46c2e5bf19db92f2",
        ciphertext: "382e440694b0c93be8dd438e37635194",
        tag: "2fa042bff9a9cd35e343b520017841bb",
    },
    AeadVector {
        name: "CAVP gcmEncryptExtIV128 PTlen=128 AADlen=160",
        alg: AeadAlgorithm::Aes128Gcm16,
        key: "d4a22488f8dd1d5c6c19a7d6ca17964c",
        nonce: "f3d5837f22ac1a0425e0d1d5",
        aad: "f1c5d424b83f96c6ad8cb28ca0d20e475e023b5a",
        plaintext: "7b43016a16896497fb457be6d2a54122",
        ciphertext: "c2bd67eef5e95cac27e3b06e3031d0a8",
        tag: "f23eacf9d1cdf8737726c58648826e9c",
    },
    AeadVector {
        name: "CAVP gcmEncryptExtIV256 PTlen=128 AADlen=128",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "425a341c67e6d873870f54e2cc5a2984c734e81729c0dbaaeee050309f1ce674",
        nonce: "0c09b7b4e9e097317b791433",
        aad: "4300a721547846761e4bf8df2b6ec1d6",
        plaintext: "76dda644b3faca509b37def0319f30cc",
        ciphertext: "1dd80daa0fc9e47e43897c64a6663f5e",
        tag: "5d69b34d8c3b12f783faaea7e93685db",
    },
    AeadVector {
        name: "CAVP gcmEncryptExtIV256 PTlen=128 AADlen=160",
        alg: AeadAlgorithm::Aes256Gcm16,
        key: "83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a",
        nonce: "0b459724904e010a46901cf3",
        aad: "794a14ccd178c8ebfd1379dc704c5e208f9d8424",
        plaintext: "33d893a2114ce06fc15d55e454cf90c3",
        ciphertext: "cc66bee423e3fcd4c0865715e9586696",
        tag: "0fb291bd3dba94a1dfd8b286cfb97ac5",
    },
];

#[test]
fn accepts_gcm_spec_vectors_aes128() {
    for &p in Provider::available() {
        for v in GCM_SPEC_128 {
            check_aead(p, v);
        }
    }
}

#[test]
fn accepts_gcm_spec_vectors_aes256() {
    for &p in Provider::available() {
        for v in GCM_SPEC_256 {
            check_aead(p, v);
        }
    }
}

#[test]
fn accepts_cavp_gcm_vectors_with_aad() {
    for &p in Provider::available() {
        for v in GCM_CAVP_WITH_AAD {
            check_aead(p, v);
        }
    }
}

#[test]
fn rejects_tampered_gcm_packets() {
    for &p in Provider::available() {
        for v in [&GCM_SPEC_128[3], &GCM_SPEC_256[3]] {
            let cipher = p.cipher(v.alg, &h(v.key)).expect("key");
            let nonce: [u8; NONCE_LEN] = arr(&h(v.nonce));
            let aad = h(v.aad);
            let tag: [u8; TAG_LEN] = arr(&h(v.tag));

            let mut bad_tag = tag;
            bad_tag[5] ^= 0x10;
            let mut ct = h(v.ciphertext);
            assert_eq!(cipher.open_in_place(&nonce, &aad, &mut ct, &bad_tag), Err(Error::BadTag));

            let mut ct = h(v.ciphertext);
            ct[17] ^= 0x04;
            assert_eq!(cipher.open_in_place(&nonce, &aad, &mut ct, &tag), Err(Error::BadTag));

            let mut ct = h(v.ciphertext);
            assert_eq!(cipher.open_in_place(&nonce, &aad[1..], &mut ct, &tag), Err(Error::BadTag));
        }
    }
}

#[test]
fn rejects_wrong_aead_key_lengths() {
    for &p in Provider::available() {
        for alg in AeadAlgorithm::ALL {
            let short = vec![0; alg.key_len() - 1];
            assert!(matches!(p.cipher(alg, &short), Err(Error::KeyLength { .. })));
            let no_salt = vec![0; alg.key_len()];
            assert!(matches!(SaltedAead::new(p, alg, &no_salt), Err(Error::KeyLength { .. })));
        }
    }
}

// ---------------------------------------------------------------------------
// HMAC-SHA2: RFC 4231 (PRF, full output) and RFC 4868 (truncated ICV)
// ---------------------------------------------------------------------------

struct HmacVector {
    case: u32,
    key: &'static str,
    data: &'static str,
    sha256: &'static str,
    sha384: &'static str,
    sha512: &'static str,
}

/// 131 octets of 0xaa (RFC 4231 test cases 6 and 7).
const KEY_AA_131: &str = concat!(
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaa",
);

/// RFC 4231 section 4, test cases 1-7. Case 5's outputs are the published
/// 128-bit truncations.
const RFC4231: &[HmacVector] = &[
    HmacVector {
        case: 1,
        key: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        data: "4869205468657265",
        sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        sha384: concat!(
            "afd03944d84895626b0825f4ab46907f",
            "15f9dadbe4101ec682aa034c7cebc59c",
            "faea9ea9076ede7f4af152e8b2fa9cb6",
        ),
        sha512: concat!(
            "87aa7cdea5ef619d4ff0b4241a1d6cb0",
            "2379f4e2ce4ec2787ad0b30545e17cde",
            "daa833b7d6b8a702038b274eaea3f4e4",
            "be9d914eeb61f1702e696c203a126854",
        ),
    },
    HmacVector {
        case: 2,
        key: "4a656665",
        data: "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        sha256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        sha384: concat!(
            "af45d2e376484031617f78d2b58a6b1b",
            "9c7ef464f5a01b47e42ec3736322445e",
            "8e2240ca5e69e2c78b3239ecfab21649",
        ),
        sha512: concat!(
            "164b7a7bfcf819e2e395fbe73b56e0a3",
            "87bd64222e831fd610270cd7ea250554",
            "9758bf75c05a994a6d034f65f8f0e6fd",
            "caeab1a34d4a6b4b636e070a38bce737",
        ),
    },
    HmacVector {
        case: 3,
        key: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        data: concat!(
            "dddddddddddddddddddddddddddddddd",
            "dddddddddddddddddddddddddddddddd",
            "dddddddddddddddddddddddddddddddd",
            "dddd",
        ),
        sha256: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        sha384: concat!(
            "88062608d3e6ad8a0aa2ace014c8a86f",
            "0aa635d947ac9febe83ef4e55966144b",
            "2a5ab39dc13814b94e3ab6e101a34f27",
        ),
        sha512: concat!(
            "fa73b0089d56a284efb0f0756c890be9",
            "b1b5dbdd8ee81a3655f83e33b2279d39",
            "bf3e848279a722c806b485a47e67c807",
            "b946a337bee8942674278859e13292fb",
        ),
    },
    HmacVector {
        case: 4,
        key: "0102030405060708090a0b0c0d0e0f10111213141516171819",
        data: concat!(
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcd",
        ),
        sha256: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        sha384: concat!(
            "3e8a69b7783c25851933ab6290af6ca7",
            "7a9981480850009cc5577c6e1f573b4e",
            "6801dd23c4a7d679ccf8a386c674cffb",
        ),
        sha512: concat!(
            "b0ba465637458c6990e5a8c5f61d4af7",
            "e576d97ff94b872de76f8050361ee3db",
            "a91ca5c11aa25eb4d679275cc5788063",
            "a5f19741120c4f2de2adebeb10a298dd",
        ),
    },
    HmacVector {
        case: 5,
        key: "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
        data: "546573742057697468205472756e636174696f6e",
        sha256: "a3b6167473100ee06e0c796c2955552b",
        sha384: "3abf34c3503b2a23a46efc619baef897",
        sha512: "415fad6271580a531d4179bc891d87a6",
    },
    HmacVector {
        case: 6,
        key: KEY_AA_131,
        data: concat!(
            "54657374205573696e67204c61726765",
            "72205468616e20426c6f636b2d53697a",
            "65204b6579202d2048617368204b6579",
            "204669727374",
        ),
        sha256: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        sha384: concat!(
            "4ece084485813e9088d2c63a041bc5b4",
            "4f9ef1012a2b588f3cd11f05033ac4c6",
            "0c2ef6ab4030fe8296248df163f44952",
        ),
        sha512: concat!(
            "80b24263c7c1a3ebb71493c1dd7be8b4",
            "9b46d1f41b4aeec1121b013783f8f352",
            "6b56d037e05f2598bd0fd2215d6a1e52",
            "95e64f73f63f0aec8b915a985d786598",
        ),
    },
    HmacVector {
        case: 7,
        key: KEY_AA_131,
        data: concat!(
            "54686973206973206120746573742075",
            "73696e672061206c6172676572207468",
            "616e20626c6f636b2d73697a65206b65",
            "7920616e642061206c61726765722074",
            "68616e20626c6f636b2d73697a652064",
            "6174612e20546865206b6579206e6565",
            "647320746f2062652068617368656420",
            "6265666f7265206265696e6720757365",
            "642062792074686520484d414320616c",
            "676f726974686d2e",
        ),
        sha256: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        sha384: concat!(
            "6617178e941f020d351e2f254e8fd32c",
            "602420feb0b8fb9adccebb82461e99c5",
            "a678cc31e799176d3860e6110c46523e",
        ),
        sha512: concat!(
            "e37b6a775dc87dbaa4dfa9f96e5e3ffd",
            "debd71f8867289865df5a32d20cdc944",
            "b6022cac3c4982b10d5eeb55c3e4de15",
            "134676fb6de0446065c97440fa8c6a58",
        ),
    },
];

#[test]
fn prf_matches_rfc4231_hmac_vectors() {
    for v in RFC4231 {
        let key = h(v.key);
        let data = h(v.data);
        for (alg, want) in [
            (PrfAlgorithm::HmacSha256, v.sha256),
            (PrfAlgorithm::HmacSha384, v.sha384),
            (PrfAlgorithm::HmacSha512, v.sha512),
        ] {
            let out = alg.prf(&key, &[&data]);
            assert_eq!(out.len(), alg.output_len(), "case {} {}", v.case, alg.name());
            // Case 5 publishes only the first 128 bits; the others the whole output.
            let want = h(want);
            if v.case == 5 {
                assert_eq!(want.len(), 16);
            } else {
                assert_eq!(want.len(), alg.output_len(), "case {} {}", v.case, alg.name());
            }
            assert_eq!(&out.expose()[..want.len()], &want[..], "case {} {}", v.case, alg.name());
        }
    }
}

#[test]
fn prf_concatenates_its_parts() {
    let v = &RFC4231[6];
    let key = h(v.key);
    let data = h(v.data);
    let (a, rest) = data.split_at(7);
    let (b, c) = rest.split_at(64);
    for alg in [PrfAlgorithm::HmacSha256, PrfAlgorithm::HmacSha384, PrfAlgorithm::HmacSha512] {
        assert_eq!(alg.prf(&key, &[a, b, &[], c]).expose(), alg.prf(&key, &[&data]).expose());
    }
}

/// RFC 4868 section 2.7.2: (algorithm, key, data, PRF output). The ICV is
/// the first half of the PRF output.
const RFC4868_AUTH: &[(&str, IntegAlgorithm, &str, &str, &str)] = &[
    (
        "AUTH256-1",
        IntegAlgorithm::HmacSha256_128,
        "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        "4869205468657265",
        "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7",
    ),
    (
        "AUTH256-2",
        IntegAlgorithm::HmacSha256_128,
        "4a6566654a6566654a6566654a6566654a6566654a6566654a6566654a656665",
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        "167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6",
    ),
    (
        "AUTH256-3",
        IntegAlgorithm::HmacSha256_128,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        concat!(
            "dddddddddddddddddddddddddddddddd",
            "dddddddddddddddddddddddddddddddd",
            "dddddddddddddddddddddddddddddddd",
            "dddd",
        ),
        "cdcb1220d1ecccea91e53aba3092f962e549fe6ce9ed7fdc43191fbde45c30b0",
    ),
    (
        "AUTH256-4",
        IntegAlgorithm::HmacSha256_128,
        "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        concat!(
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcd",
        ),
        "372efcf9b40b35c2115b1346903d2ef42fced46f0846e7257bb156d3d7b30d3f",
    ),
    (
        "AUTH384-1",
        IntegAlgorithm::HmacSha384_192,
        concat!(
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        ),
        "4869205468657265",
        concat!(
            "b6a8d5636f5c6a7224f9977dcf7ee6c7",
            "fb6d0c48cbdee9737a959796489bddbc",
            "4c5df61d5b3297b4fb68dab9f1b582c2",
        ),
    ),
    (
        "AUTH384-2",
        IntegAlgorithm::HmacSha384_192,
        concat!(
            "4a6566654a6566654a6566654a656665",
            "4a6566654a6566654a6566654a656665",
            "4a6566654a6566654a6566654a656665",
        ),
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        concat!(
            "2c7353974f1842fd66d53c452ca42122",
            "b28c0b594cfb184da86a368e9b8e16f5",
            "349524ca4e82400cbde0686d403371c9",
        ),
    ),
    (
        "AUTH512-1",
        IntegAlgorithm::HmacSha512_256,
        concat!(
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        ),
        "4869205468657265",
        concat!(
            "637edc6e01dce7e6742a99451aae82df",
            "23da3e92439e590e43e761b33e910fb8",
            "ac2878ebd5803f6f0b61dbce5e251ff8",
            "789a4722c1be65aea45fd464e89f8f5b",
        ),
    ),
    (
        "AUTH512-2",
        IntegAlgorithm::HmacSha512_256,
        concat!(
            "4a6566654a6566654a6566654a656665",
            "4a6566654a6566654a6566654a656665",
            "4a6566654a6566654a6566654a656665",
            "4a6566654a6566654a6566654a656665",
        ),
        "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        concat!(
            "cb370917ae8a7ce28cfd1d8f4705d614",
            "1c173b2a9362c15df235dfb251b15454",
            "6aa334ae9fb9afc2184932d8695e397b",
            "fa0ffb93466cfcceaae38c833b7dba38",
        ),
    ),
];

fn prf_for(alg: IntegAlgorithm) -> PrfAlgorithm {
    match alg {
        IntegAlgorithm::HmacSha256_128 => PrfAlgorithm::HmacSha256,
        IntegAlgorithm::HmacSha384_192 => PrfAlgorithm::HmacSha384,
        IntegAlgorithm::HmacSha512_256 => PrfAlgorithm::HmacSha512,
    }
}

#[test]
fn integrity_icv_is_truncated_rfc4868_output() {
    for &(name, alg, key, data, full) in RFC4868_AUTH {
        let key = h(key);
        let data = h(data);
        let full = h(full);
        assert_eq!(full.len(), 2 * alg.icv_len(), "{name}");
        assert_eq!(prf_for(alg).prf(&key, &[&data]).expose(), &full[..], "{name}: PRF-HMAC");

        let integ = Integrity::new(alg, &key).expect("key length is the hash length");
        let icv = integ.compute(&[&data]);
        assert_eq!(&icv[..alg.icv_len()], &full[..alg.icv_len()], "{name}: ICV");
        let (a, b) = data.split_at(3);
        assert_eq!(integ.compute(&[a, b]), icv, "{name}: split input");
        integ.verify(&[&data], &full[..alg.icv_len()]).expect("published ICV verifies");
    }
}

#[test]
fn integrity_verify_rejects_modified_icv() {
    for &(name, alg, key, data, full) in RFC4868_AUTH {
        let integ = Integrity::new(alg, &h(key)).expect("key");
        let data = h(data);
        let icv = &h(full)[..alg.icv_len()];
        for i in [0, alg.icv_len() - 1] {
            let mut bad = icv.to_vec();
            bad[i] ^= 0x01;
            assert_eq!(integ.verify(&[&data], &bad), Err(Error::BadTag), "{name}: flipped octet {i}");
        }
        assert_eq!(integ.verify(&[&data], &icv[..icv.len() - 1]), Err(Error::BadTag), "{name}: short ICV");
        assert_eq!(integ.verify(&[&data], &h(full)), Err(Error::BadTag), "{name}: untruncated ICV");
        let mut other = data.clone();
        other.push(0);
        assert_eq!(integ.verify(&[&other], icv), Err(Error::BadTag), "{name}: other data");
    }
}

#[test]
fn integrity_rejects_wrong_key_length() {
    for alg in
        [IntegAlgorithm::HmacSha256_128, IntegAlgorithm::HmacSha384_192, IntegAlgorithm::HmacSha512_256]
    {
        // RFC 4231's 20-octet key is fine for the PRF but not for integrity.
        assert!(matches!(Integrity::new(alg, &[0x0b; 20]), Err(Error::KeyLength { .. })));
    }
}

// ---------------------------------------------------------------------------
// AES-CBC: RFC 3602 section 4 and NIST SP 800-38A F.2.5/F.2.6
// ---------------------------------------------------------------------------

/// (name, algorithm, key, IV, plaintext, ciphertext).
const CBC_VECTORS: &[(&str, CbcAlgorithm, &str, &str, &str, &str)] = &[
    (
        "RFC 3602 case 1",
        CbcAlgorithm::Aes128Cbc,
        "06a9214036b8a15b512e03d534120006",
        "3dafba429d9eb430b422da802c9fac41",
        // "Single block msg"
        "53696e676c6520626c6f636b206d7367",
        "e353779c1079aeb82708942dbe77181a",
    ),
    (
        "RFC 3602 case 2",
        CbcAlgorithm::Aes128Cbc,
        "c286696d887c9aa0611bbb3e2025a45a",
        "562e17996d093d28ddb3ba695a2e6f58",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
    ),
    (
        "RFC 3602 case 3",
        CbcAlgorithm::Aes128Cbc,
        "6c3ea0477630ce21a2ce334aa746c2cd",
        "c782dc4c098c66cbd9cd27d825682c81",
        // "This is a 48-byte message (exactly 3 AES blocks)"
        concat!(
            "5468697320697320612034382d627974",
            "65206d65737361676520286578616374",
            "6c7920332041455320626c6f636b7329",
        ),
        concat!(
            "d0a02b3836451753d493665d33f0e886",
            "2dea54cdb293abc7506939276772f8d5",
            "021c19216bad525c8579695d83ba2684",
        ),
    ),
    (
        "RFC 3602 case 4",
        CbcAlgorithm::Aes128Cbc,
        "56e47a38c5598974bc46903dba290349",
        "8ce82eefbea0da3c44699ed7db51b7d9",
        concat!(
            "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
            "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
            "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
            "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
        ),
        concat!(
            "c30e32ffedc0774e6aff6af0869f71aa",
            "0f3af07a9a31a9c684db207eb0ef8e4e",
            "35907aa632c3ffdf868bb7b29d3d46ad",
            "83ce9f9a102ee99d49a53e87f4c3da55",
        ),
    ),
    (
        "SP 800-38A F.2.5/F.2.6 CBC-AES256",
        CbcAlgorithm::Aes256Cbc,
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
        "000102030405060708090a0b0c0d0e0f",
        concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710",
        ),
        concat!(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6",
            "9cfc4e967edb808d679f777bc6702c7d",
            "39f23369a9d9bacfa530e26304231461",
            "b2eb05e2c39be9fcda6c19078c6a9d1b",
        ),
    ),
];

#[test]
fn aes_cbc_encrypts_published_vectors() {
    assert_eq!(h(CBC_VECTORS[0].4), b"Single block msg");
    assert_eq!(h(CBC_VECTORS[2].4), b"This is a 48-byte message (exactly 3 AES blocks)");
    for &(name, alg, key, iv, pt, ct) in CBC_VECTORS {
        let cbc = AesCbc::new(alg, &h(key)).expect("key length");
        assert_eq!(cbc.algorithm(), alg);
        let iv: [u8; BLOCK_LEN] = arr(&h(iv));
        let mut buf = h(pt);
        cbc.encrypt(&iv, &mut buf).expect("whole blocks");
        assert_eq!(hex::encode(&buf), ct, "{name}: encrypt");
    }
}

#[test]
fn aes_cbc_decrypts_published_vectors() {
    for &(name, alg, key, iv, pt, ct) in CBC_VECTORS {
        let cbc = AesCbc::new(alg, &h(key)).expect("key length");
        let iv: [u8; BLOCK_LEN] = arr(&h(iv));
        let mut buf = h(ct);
        cbc.decrypt(&iv, &mut buf).expect("whole blocks");
        assert_eq!(hex::encode(&buf), pt, "{name}: decrypt");
    }
}

#[test]
fn aes_cbc_rejects_partial_blocks_and_bad_keys() {
    let cbc = AesCbc::new(CbcAlgorithm::Aes128Cbc, &[0; 16]).expect("key");
    let mut buf = [0u8; 17];
    assert_eq!(cbc.encrypt(&[0; BLOCK_LEN], &mut buf), Err(Error::BadLength(17)));
    assert_eq!(cbc.decrypt(&[0; BLOCK_LEN], &mut buf[..15]), Err(Error::BadLength(15)));
    assert!(matches!(AesCbc::new(CbcAlgorithm::Aes256Cbc, &[0; 16]), Err(Error::KeyLength { .. })));
}

// ---------------------------------------------------------------------------
// prf+ (RFC 7296 section 2.13)
// ---------------------------------------------------------------------------

#[test]
fn prf_plus_is_the_t1_t2_t3_concatenation() {
    let key = h(RFC4231[3].key);
    let seed = b"Ni | Nr | SPIi | SPIr";
    for alg in [PrfAlgorithm::HmacSha256, PrfAlgorithm::HmacSha384, PrfAlgorithm::HmacSha512] {
        let t1 = alg.prf(&key, &[seed, &[1]]);
        let t2 = alg.prf(&key, &[t1.expose(), seed, &[2]]);
        let t3 = alg.prf(&key, &[t2.expose(), seed, &[3]]);
        let stream = [t1.expose(), t2.expose(), t3.expose()].concat();
        let block = alg.output_len();
        for n in [0, 1, block - 1, block, block + 1, 2 * block + 7, 3 * block] {
            let out = alg.prf_plus(&key, seed, n).expect("short prf+");
            assert_eq!(out.expose(), &stream[..n], "{} len {n}", alg.name());
        }
    }
}

#[test]
fn prf_plus_rejects_more_than_255_blocks() {
    let key = [0x42; 32];
    for alg in [PrfAlgorithm::HmacSha256, PrfAlgorithm::HmacSha384, PrfAlgorithm::HmacSha512] {
        let max = 255 * alg.output_len();
        assert_eq!(alg.prf_plus(&key, b"seed", max + 1).map(|_| ()), Err(Error::PrfPlusTooLong(max + 1)));
        let full = alg.prf_plus(&key, b"seed", max).expect("255 blocks are allowed");
        assert_eq!(full.len(), max);
        // The last block is T255, with counter octet 0xff.
        let t254_start = 253 * alg.output_len();
        let t254 = &full.expose()[t254_start..t254_start + alg.output_len()];
        let t255 = alg.prf(&key, &[t254, b"seed", &[0xff]]);
        assert_eq!(&full.expose()[max - alg.output_len()..], t255.expose());
    }
}

// ---------------------------------------------------------------------------
// Whole ESP packets: draft-mcgrew-gcm-test-01 section 4, RFC 7634 Appendix A
// ---------------------------------------------------------------------------

fn esp_alg(name: &str) -> AeadAlgorithm {
    AeadAlgorithm::ALL.into_iter().find(|a| a.name() == name).expect("known algorithm keyword")
}

#[test]
fn esp_vectors_have_consistent_trailers() {
    for v in esp_vectors::ESP_VECTORS {
        let pt = h(v.plaintext);
        assert!(pt.len() >= 2, "{}", v.name);
        assert_eq!(pt.len() % 4, 0, "{}: ESP payload + trailer is 4-octet aligned", v.name);
        let next_header = pt[pt.len() - 1];
        let pad_len = usize::from(pt[pt.len() - 2]);
        assert!(next_header == 1 || next_header == 4, "{}: next header {next_header}", v.name);
        assert_eq!(v.inner_len + pad_len + 2, pt.len(), "{}: inner_len", v.name);
        // RFC 4303 section 2.4 default padding: 1, 2, 3, ...
        let padding = &pt[v.inner_len..v.inner_len + pad_len];
        assert!(padding.iter().enumerate().all(|(i, &b)| usize::from(b) == i + 1), "{}: padding", v.name);
    }
}

#[test]
fn esp_vectors_aad_is_spi_and_sequence_number() {
    for v in esp_vectors::ESP_VECTORS {
        let mut aad = v.spi.to_be_bytes().to_vec();
        if v.esn {
            aad.extend_from_slice(&((v.seq >> 32) as u32).to_be_bytes());
        } else {
            assert!(v.seq <= u64::from(u32::MAX), "{}: 32-bit sequence number", v.name);
        }
        aad.extend_from_slice(&(v.seq as u32).to_be_bytes());
        assert_eq!(hex::encode(&aad), v.aad, "{}", v.name);
    }
}

#[test]
fn esp_vectors_seal_to_published_packets() {
    for &p in Provider::available() {
        for v in esp_vectors::ESP_VECTORS {
            let ctx = format!("{} [{}]", v.name, p.name());
            let alg = esp_alg(v.alg);
            let key = h(v.key);
            assert_eq!(key.len(), alg.key_len(), "{ctx}: key length");
            let mut keymat = key;
            keymat.extend_from_slice(&h(v.salt));
            let aead = SaltedAead::new(p, alg, &keymat).expect("keymat");
            let iv: [u8; IV_LEN] = arr(&h(v.iv));
            let aad = h(v.aad);
            let pt = h(v.plaintext);

            let mut body = pt.clone();
            let tag = aead.seal(&iv, &aad, &mut body).expect("seal");
            let mut packet = Vec::new();
            packet.extend_from_slice(&v.spi.to_be_bytes());
            packet.extend_from_slice(&(v.seq as u32).to_be_bytes());
            packet.extend_from_slice(&iv);
            packet.extend_from_slice(&body);
            packet.extend_from_slice(&tag);
            assert_eq!(hex::encode(&packet), v.packet, "{ctx}: packet");

            // And the published packet opens back to the plaintext.
            let published = h(v.packet);
            let header = 8 + IV_LEN;
            let mut ct = published[header..published.len() - TAG_LEN].to_vec();
            let tag: [u8; TAG_LEN] = arr(&published[published.len() - TAG_LEN..]);
            aead.open(&iv, &aad, &mut ct, &tag).expect("published ICV verifies");
            assert_eq!(ct, pt, "{ctx}: opened plaintext");
        }
    }
}

#[test]
fn esp_vectors_cover_every_algorithm_and_esn() {
    let vs = esp_vectors::ESP_VECTORS;
    for alg in AeadAlgorithm::ALL {
        assert!(vs.iter().any(|v| v.alg == alg.name()), "no vector for {}", alg.name());
    }
    assert!(vs.iter().any(|v| v.esn) && vs.iter().any(|v| !v.esn));
    assert_eq!(vs.len(), 16, "15 draft-mcgrew-gcm-test-01 packets + RFC 7634 Appendix A");
}
