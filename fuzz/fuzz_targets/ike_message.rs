//! Arbitrary bytes into tandem-ike's message codec and SK protection:
//!
//! - `wire::Message::parse`; what parses re-emits through `MessageBuilder`
//!   with the same header and parses back to the same header (Length
//!   included) and payloads, and emitting that again gives the same octets.
//!   The octets need not equal the input: the codec drops what RFC 7296
//!   says to ignore on receipt (reserved fields, unknown flag bits, the
//!   critical bit of known payload types), so the round trip compares the
//!   decoded header and payloads, not `Message` (which holds the input).
//! - `wire::parse_inner` on the input after its first octet, that octet
//!   being the first inner payload type; what parses re-emits through
//!   `emit_inner` and parses back equal.
//! - `protect::SkCipher::open` at the SK payload's offset, when the input
//!   parses with one, under a fixed AES-GCM key and a fixed
//!   AES-CBC + HMAC-SHA-256 key (`seeds/ike_message/` holds messages sealed
//!   with them, so the fuzzer starts past the ICV): anything that opens
//!   parses as inner payloads or fails cleanly. `open` also gets every
//!   input at an offset taken from its last two octets.
//! - The SK body, as arbitrary plaintext, sealed behind the other payloads
//!   under both keys and opened again: the message parses with the same
//!   payloads and the plaintext comes back.
//!
//! Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_crypto::aead::AeadAlgorithm;
use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
use tandem_ike::Error;
use tandem_ike::protect::{SkCipher, SkSuite};
use tandem_ike::wire::{Message, MessageBuilder, Payload, PayloadType, emit_inner, parse_inner};

/// The AEAD suite of the fixed key.
const AEAD: SkSuite = SkSuite::Aead(AeadAlgorithm::Aes128Gcm16);
/// The CBC + HMAC suite of the fixed key.
const CBC: SkSuite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);
/// Octet the fixed encryption keys (and AEAD salt) repeat.
const ENCR_KEY_OCTET: u8 = 0x11;
/// Octet the fixed integrity key repeats.
const INTEG_KEY_OCTET: u8 = 0x22;

fuzz_target!(|data: &[u8]| {
    let ciphers = [cipher(AEAD), cipher(CBC)];
    if let Ok(m) = Message::parse(data) {
        round_trip(&m);
        open(&m, &ciphers);
        reseal(&m);
    }
    inner(data);
    if let Some(&[hi, lo]) = data.last_chunk::<2>() {
        let offset = usize::from(u16::from_be_bytes([hi, lo]));
        for c in &ciphers {
            let _ = c.open(data, offset);
        }
    }
});

/// `suite` keyed with the fixed key.
fn cipher(suite: SkSuite) -> SkCipher {
    SkCipher::new(
        suite,
        &vec![ENCR_KEY_OCTET; suite.encr_keymat_len()],
        &vec![INTEG_KEY_OCTET; suite.integ_key_len()],
    )
    .expect("the fixed keys have the suite's lengths")
}

/// Re-emits a parsed message and checks it decodes the same.
fn round_trip(m: &Message<'_>) {
    let mut b = MessageBuilder::new(m.header);
    m.payloads.iter().cloned().for_each(|p| b.push(p));
    let bytes = b.build().unwrap_or_else(|e| panic!("{m:?} parsed but does not re-emit: {e}"));
    assert_eq!(bytes.len(), b.buffer_len(), "buffer_len disagrees with build");
    assert_eq!(bytes.len(), m.bytes().len(), "re-emitted at another length");
    let again = Message::parse(&bytes).unwrap_or_else(|e| panic!("re-emitted {bytes:02x?} fails: {e}"));
    assert_eq!(again.header, m.header);
    assert_eq!(again.payloads, m.payloads);
    assert_eq!(again.sk_offset(), m.sk_offset());
    assert_eq!(again.aad().map(<[u8]>::len), m.aad().map(<[u8]>::len));
    let mut b2 = MessageBuilder::new(again.header);
    again.payloads.iter().cloned().for_each(|p| b2.push(p));
    assert_eq!(b2.build().ok(), Some(bytes), "emission is not a fixed point");
}

/// Opens the SK payload, if any, under both fixed keys.
fn open(m: &Message<'_>, ciphers: &[SkCipher]) {
    let (Some(sk), Some(offset)) = (m.sk(), m.sk_offset()) else { return };
    for c in ciphers {
        match c.open(m.bytes(), offset) {
            Ok(plaintext) => {
                assert!(plaintext.len() < sk.body.len(), "plaintext longer than the SK body");
                if let Ok(payloads) = parse_inner(sk.next_payload, &plaintext) {
                    check_inner(sk.next_payload, &payloads);
                }
            }
            Err(Error::IntegrityCheckFailed | Error::Truncated(_) | Error::InvalidSyntax(_)) => {}
            Err(e) => panic!("open failed with an unexpected error: {e:?}"),
        }
    }
}

/// Seals the SK body as plaintext behind the other payloads and opens it.
fn reseal(m: &Message<'_>) {
    let Some(sk) = m.sk() else { return };
    let before = &m.payloads[..m.payloads.len() - 1];
    let mut b = MessageBuilder::new(m.header);
    before.iter().cloned().for_each(|p| b.push(p));
    let prefix = b.build_prefix(PayloadType::SK).expect("the payloads before SK re-emit");
    let mut rng = tandem_fuzz::rng(7);
    for suite in [AEAD, CBC] {
        let mut c = cipher(suite);
        let mut message = prefix.clone();
        c.seal(&mut rng, &mut message, sk.next_payload.0, sk.body).expect("seal");
        let sealed = Message::parse(&message).unwrap_or_else(|e| panic!("sealed {message:02x?} fails: {e}"));
        assert_eq!(&sealed.payloads[..before.len()], before);
        let resealed = sealed.sk().expect("an SK payload last");
        assert_eq!(resealed.next_payload, sk.next_payload);
        let offset = sealed.sk_offset().expect("an SK offset");
        assert_eq!(offset, prefix.len());
        assert_eq!(c.open(&message, offset).as_deref(), Ok(sk.body), "{suite:?}");
    }
}

/// The input after its first octet as SK plaintext of that first type.
fn inner(data: &[u8]) {
    let Some((&first, plaintext)) = data.split_first() else { return };
    let first = PayloadType(first);
    if let Ok(payloads) = parse_inner(first, plaintext) {
        check_inner(first, &payloads);
    }
}

/// Re-emits parsed inner payloads and checks they decode the same.
fn check_inner(first: PayloadType, payloads: &[Payload<'_>]) {
    let mut out = Vec::new();
    let ty = emit_inner(payloads, &mut out).unwrap_or_else(|e| panic!("{payloads:?} does not re-emit: {e}"));
    assert_eq!(ty, first, "first inner type");
    let again = parse_inner(ty, &out).unwrap_or_else(|e| panic!("re-emitted {out:02x?} fails: {e}"));
    assert_eq!(again, payloads);
    let mut out2 = Vec::new();
    emit_inner(&again, &mut out2).expect("re-emits");
    assert_eq!(out2, out, "emission is not a fixed point");
}
