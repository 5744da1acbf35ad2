//! The cluster sync protocol's framing on arbitrary bytes: the header and
//! body parsers never panic, and a body that decodes re-encodes into one
//! that decodes to the same message. Handover marks: opening never panics,
//! and only a mark sealed under the key opens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tandem_cluster::sync::SyncKeys;
use tandem_cluster::sync::wire::{Header, Message, parse_body};
use tandem_cluster::{NodeId, SegmentSet};
use tandem_crypto::aead::AeadAlgorithm;

static KEYS: LazyLock<SyncKeys> = LazyLock::new(|| {
    SyncKeys::new(b"the fuzzed cluster's secret", 7, AeadAlgorithm::Aes256Gcm16).expect("a valid secret")
});

fuzz_target!(|data: &[u8]| {
    assert!(KEYS.open_mark(data).is_err(), "a mark forged from fuzzed bytes opened");
    if let [node, b @ ..] = data
        && let Some(bits) = b.get(..8)
    {
        let segments = SegmentSet::from_bits(u64::from_be_bytes(bits.try_into().unwrap_or_default()));
        let mark = KEYS.seal_mark(NodeId(*node), segments);
        assert_eq!(KEYS.open_mark(&mark).ok(), Some((NodeId(*node), segments)));
    }
    let _ = Header::parse(data);
    if let Ok((_, fields)) = parse_body(data) {
        for field in fields {
            if field.is_err() {
                break;
            }
        }
    }
    if let Ok(message) = Message::decode(data) {
        let mut out = Vec::new();
        if message.encode(&mut out).is_ok() {
            assert_eq!(Message::decode(&out).ok(), Some(message), "re-encoded message differs");
        }
    }
});
