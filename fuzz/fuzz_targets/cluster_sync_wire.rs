//! The cluster sync protocol's framing on arbitrary bytes: the header and
//! body parsers never panic, and a body that decodes re-encodes into one
//! that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_cluster::sync::wire::{Header, Message, parse_body};

fuzz_target!(|data: &[u8]| {
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
