//! Proves the data path allocation-free: a counting global allocator sees
//! no allocation while packets are encapsulated, looked up and
//! decapsulated, for every suite.
#![allow(unsafe_code)] // GlobalAlloc is an unsafe trait; this only counts.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tandem_esp::{Framing, Policy, Received, Sad, Spd, Suite, TrafficSelector};

struct Counting;

thread_local! {
    // Only this test's thread counts: the harness allocates on its own threads.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.get() {
            ALLOCS.set(ALLOCS.get() + 1);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn encapsulates_and_decapsulates_without_allocating() {
    for suite in Suite::ALL {
        for framing in [Framing::Ip, Framing::Esp] {
            let mut o = PairOpts::new(suite);
            o.udp = framing == Framing::Ip;
            let (mut out, inb) = pair(o, 5);
            let mut sad = Sad::new(1);
            sad.insert_inbound(inb).expect("insert");
            let mut spd = Spd::new();
            spd.insert(Policy {
                local: TrafficSelector::ANY_V4,
                remote: TrafficSelector::ANY_V4,
                target: (),
            });
            let inner = inner_packet(false, 1000, 9);
            let (mut buf, r) = framed(&inner);

            COUNTING.set(true);
            for _ in 0..100 {
                buf[r.clone()].copy_from_slice(&inner);
                assert!(spd.lookup(&buf[r.clone()]).expect("parses").is_some());
                let wire = out.encapsulate(&mut buf, r.clone(), framing).expect("encapsulate");
                let ok = match framing {
                    Framing::Ip => matches!(sad.receive(&mut buf, wire), Ok(Received::Plaintext(_))),
                    Framing::Esp => sad.decapsulate(&mut buf, wire).is_ok(),
                };
                assert!(ok);
            }
            COUNTING.set(false);
            assert_eq!(ALLOCS.replace(0), 0, "{suite:?} {framing:?} allocated");
        }
    }
}
