//! Arbitrary bytes into tandem-ike's sync state codec: `IkeSaState::decode`
//! and `sync::decode_child` never panic, and what decodes re-encodes into
//! octets that decode to the same encoding (a fixed point after one round;
//! the first may differ only where a deadline was clamped to what the
//! platform's `Instant` can hold). `seeds/ike_sync_state/` holds valid
//! encodings of both kinds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Instant;
use tandem_ike::sync::{IkeSaState, TimeBase, decode_child, encode_child};

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)] // only an origin for the time base
    let base = TimeBase { now: Instant::now(), now_ms: 1_780_272_000_000 };
    if let Ok(state) = IkeSaState::decode(data, &base) {
        let once = state.encode(&base);
        let again = IkeSaState::decode(once.expose(), &base).expect("a decoded state re-encodes validly");
        assert_eq!(again.encode(&base), once, "re-encoding is not a fixed point");
    }
    if let Ok((child, rekey_at, expire_at)) = decode_child(data, &base) {
        let once = encode_child(&child, rekey_at, expire_at, &base);
        let (again, r, e) =
            decode_child(once.expose(), &base).expect("a decoded CHILD_SA re-encodes validly");
        assert_eq!(encode_child(&again, r, e, &base), once, "re-encoding is not a fixed point");
    }
});
