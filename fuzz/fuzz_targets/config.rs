//! The gateway's configuration parser (`tandem check`, `tandem run`) on
//! arbitrary text: a typed error or a configuration, never a panic.
#![no_main]

#[allow(dead_code, unreachable_pub, missing_docs, unused_imports)]
#[path = "../../src/config/mod.rs"]
mod config;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::parse_str(text, std::path::Path::new("/nonexistent/fuzz.toml"));
    }
});
