//! `KeyExchange::shared_secret` with arbitrary peer values, for every
//! `DhGroup` (private values from a fixed-seed RNG): never panics, and a
//! secret that is computed has the group's length. The input is tried as
//! it is and cut or zero-extended to the group's public-value length, so
//! the validation behind the length check is reached for every group.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tandem_crypto::kex::{DhGroup, KeyExchange};

fn exchanges() -> &'static [KeyExchange] {
    static KEX: OnceLock<Vec<KeyExchange>> = OnceLock::new();
    KEX.get_or_init(|| {
        let mut rng = tandem_fuzz::rng(0x006b_6578);
        DhGroup::ALL.iter().map(|&g| KeyExchange::generate(g, &mut rng)).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    for kex in exchanges() {
        let group = kex.group();
        let n = group.public_len();
        let mut sized = data.to_vec();
        sized.resize(n, 0);
        let tries: &[&[u8]] = if data.len() == n { &[data] } else { &[data, &sized] };
        for &peer in tries {
            if let Ok(secret) = kex.shared_secret(peer) {
                assert_eq!(peer.len(), n, "{group:?} accepted a {}-octet value", peer.len());
                let want = match group {
                    DhGroup::Ecp256 | DhGroup::Ecp384 => n / 2,
                    _ => n,
                };
                assert_eq!(secret.len(), want, "{group:?} secret length");
            }
        }
    }
});
