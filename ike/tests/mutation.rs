//! A random mutation of one datagram of a real exchange sequence
//! (IKE_SA_INIT, IKE_AUTH, a CHILD_SA rekey, an IKE SA rekey), delivered in
//! place of the original: no panic, and the endpoints end consistent:
//! either the exchanges complete (retransmission brings the original) or
//! an SA fails with a typed error, and whatever pairs both sides still
//! hold match, keys included.

mod common;

use common::{Sim, live_pairs, pair};
use proptest::prelude::*;
use tandem_ike::Event;

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
    },
    /// Rewrite a 16-bit length field: the header's low half (26), or a
    /// payload's Payload Length at a generic header's offset.
    Length {
        at: usize,
        value: u16,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        (prop_oneof![Just(26usize), Just(30), Just(26 + 4), any::<usize>()], any::<u16>())
            .prop_map(|(at, value)| Mutation::Length { at, value }),
    ]
}

fn apply(m: &Mutation, data: &mut Vec<u8>) {
    let n = data.len();
    match *m {
        Mutation::Flip { at, bit } => data[at % n] ^= 1 << bit,
        Mutation::Insert { at, byte } => data.insert(at % (n + 1), byte),
        Mutation::Delete { at } => {
            data.remove(at % n);
        }
        Mutation::Length { at, value } => {
            let at = at % n.saturating_sub(1).max(1);
            data[at..at + 2].copy_from_slice(&value.to_be_bytes());
        }
    }
}

/// Runs the sequence, mutating the `target`-th datagram sent.
fn run(target: usize, m: &Mutation, seed: u64) -> Sim {
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes128gcm16-x25519");
    // Small fragments, so fragments get mutated too.
    (ic.fragment_size, rc.fragment_size) = (180, 180);
    let mut s = Sim::new(ic, rc, seed);
    let mut count = 0;
    let mut step = |s: &mut Sim| {
        for _ in 0..10_000 {
            if s.flight.is_empty() {
                if !s.tick() {
                    return;
                }
                continue;
            }
            let (to, mut t) = s.flight.remove(0);
            count += 1;
            if count == target {
                apply(m, &mut t.data);
            }
            s.deliver(to, &t);
        }
        panic!("no quiet");
    };
    step(&mut s);
    // Later exchanges, where the SAs are still up.
    let sa_i = s.i.sa_ids().next();
    if let (Some(sa_i), true) = (sa_i, s.ike_sas() == (1, 1)) {
        let child = live_pairs(&s.i_events).ok().and_then(|p| p.keys().next().copied());
        if let Some(child) = child {
            if s.i.rekey_child(s.now, &mut s.rng, sa_i, child).is_ok() {
                s.collect();
                step(&mut s);
            }
        }
        let sa_r = s.r.sa_ids().next();
        if let Some(sa_r) = sa_r {
            if s.r.rekey_ike(s.now, &mut s.rng, sa_r).is_ok() {
                s.collect();
                step(&mut s);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_datagram_never_leaves_the_peers_inconsistent(
        target in 1usize..40,
        m in mutation(),
        seed in 0u64..4,
    ) {
        let s = run(target, &m, seed);
        let i = live_pairs(&s.i_events).map_err(TestCaseError::fail)?;
        let r = live_pairs(&s.r_events).map_err(TestCaseError::fail)?;
        let failed = |events: &[Event]| events.iter().any(|e| matches!(
            e,
            Event::IkeSaFailed { .. } | Event::ChildSaFailed { .. } | Event::IkeSaDeleted { error: Some(_), .. }
        ));
        if !failed(&s.i_events) && !failed(&s.r_events) {
            // Nothing failed: everything completed, one pair each.
            prop_assert_eq!((i.len(), r.len()), (1, 1), "{:?} / {:?}", s.i_events, s.r_events);
        }
        // Pairs both sides hold match, SPIs and keys crosswise.
        for p in i.values() {
            if let Some(q) = r.get(&p.outbound) {
                prop_assert_eq!(q.outbound, p.inbound);
                prop_assert_eq!(&q.in_key, &p.out_key);
                prop_assert_eq!(&q.out_key, &p.in_key);
            }
        }
        if !i.is_empty() && !r.is_empty() {
            let matched = i.values().filter(|p| r.contains_key(&p.outbound)).count();
            prop_assert_eq!(matched, i.len().min(r.len()), "{:?} / {:?}", i, r);
        }
    }
}
