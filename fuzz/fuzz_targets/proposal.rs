//! `proposal::parse_proposals` for IKE and ESP on arbitrary text (invalid
//! UTF-8 replaced): no panics, and whatever parses prints (`Display`) to a
//! string that parses back to the same proposals.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_crypto::proposal::{ProposalKind, parse_proposals};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for kind in [ProposalKind::Ike, ProposalKind::Esp] {
        match parse_proposals(kind, &text) {
            Ok(proposals) => {
                assert!(!proposals.is_empty());
                let printed = proposals.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                let reparsed = parse_proposals(kind, &printed)
                    .unwrap_or_else(|e| panic!("{kind:?} {text:?} printed as {printed:?}, which fails: {e}"));
                assert_eq!(reparsed, proposals, "{kind:?} {text:?} printed as {printed:?}");
                for p in &proposals {
                    assert!(!p.encr.is_empty(), "{p:?}");
                    assert_eq!(
                        p.transforms().count(),
                        p.encr.len() + p.prf.len() + p.integ.len() + p.dh.len() + p.esn.len()
                    );
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
