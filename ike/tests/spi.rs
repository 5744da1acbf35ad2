//! SPI allocation sees what each SPI is for: an allocator that tags IKE
//! SPIs with the peer's address (and rekeyed ones with their predecessor's)
//! and CHILD_SA SPIs with their IKE SA finds its tags on every SPI an
//! endpoint uses, as initiator and responder, through CHILD_SA and IKE SA
//! rekeys.

mod common;

use common::{I_ADDR, R_ADDR, Sim, failures, live_pairs, pair};
use core::net::IpAddr;
use tandem_ike::{ChildSa, Endpoint, Event, IkeSaId, SpiAllocator};

/// The random part of a tagged IKE SPI.
const IKE_RANDOM: u64 = (1 << 48) - 1;

/// IKE SPIs: the top octet is the last octet of the peer's IPv4 address,
/// the next one counts rekeys. CHILD_SA SPIs: the top two octets are
/// those of their IKE SA's SPI.
struct Tagged;

fn last_octet(peer: IpAddr) -> u64 {
    match peer {
        IpAddr::V4(a) => u64::from(a.octets()[3]),
        IpAddr::V6(_) => panic!("the tests use IPv4"),
    }
}

impl SpiAllocator for Tagged {
    fn ike_spi(&mut self, random: u64, peer: IpAddr) -> u64 {
        last_octet(peer) << 56 | (random & IKE_RANDOM) | 1
    }

    fn rekeyed_ike_spi(&mut self, random: u64, old: IkeSaId) -> u64 {
        let generation = (old.0 >> 48 & 0xff) + 1;
        old.0 & 0xff << 56 | generation << 48 | (random & IKE_RANDOM) | 1
    }

    fn child_spi(&mut self, random: u32, ike_sa: IkeSaId) -> u32 {
        ((ike_sa.0 >> 48) as u32) << 16 | (random & 0xffff) | 0x100
    }
}

/// The tag of an IKE SA: peer octet and rekey count.
fn tag(sa: IkeSaId) -> u32 {
    (sa.0 >> 48) as u32
}

/// Checks one side's SPIs (its peer's address ends in `peer`, ours in
/// `ours`); returns the generations of the CHILD_SAs it made.
fn check_side(events: &[Event], peer: u8, ours: u8) -> Vec<u32> {
    assert!(failures(events).is_empty(), "{events:?}");
    let mut generations = Vec::new();
    let mut child = |c: &ChildSa| {
        assert_eq!(c.inbound_spi >> 16, tag(c.ike_sa), "CHILD_SA {:#x} beside {:?}", c.inbound_spi, c.ike_sa);
        assert_eq!(c.outbound_spi >> 24, u32::from(ours), "the peer placed its SPI by our address");
        generations.push(c.inbound_spi >> 16 & 0xff);
    };
    for e in events {
        match e {
            Event::IkeSaEstablished { sa, .. } => assert_eq!(tag(*sa), u32::from(peer) << 8, "{sa:?}"),
            Event::IkeSaRekeyed { old, new } => assert_eq!(tag(*new), tag(*old) + 1, "{old:?} -> {new:?}"),
            Event::ChildSaEstablished(c) | Event::ChildSaRekeyed { new: c, .. } => child(c),
            _ => {}
        }
    }
    generations
}

fn rekey_child(s: &mut Sim, by_initiator: bool) {
    let (i_sa, r_sa) = s.sa_ids();
    let (ep, sa, events) =
        if by_initiator { (&mut s.i, i_sa, &s.i_events) } else { (&mut s.r, r_sa, &s.r_events) };
    let live = live_pairs(events).expect("consistent");
    let inbound = *live.keys().next().expect("a CHILD_SA");
    ep.rekey_child(s.now, &mut s.rng, sa, inbound).expect("rekey the CHILD_SA");
    s.collect();
    s.settle();
}

fn rekey_ike(s: &mut Sim, by_initiator: bool) {
    let (i_sa, r_sa) = s.sa_ids();
    let (ep, sa) = if by_initiator { (&mut s.i, i_sa) } else { (&mut s.r, r_sa) };
    ep.rekey_ike(s.now, &mut s.rng, sa).expect("rekey the IKE SA");
    s.collect();
    s.settle();
}

#[test]
fn allocators_see_the_peer_and_the_ike_sa_of_every_spi() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let (i, r) = (
        Endpoint::with_spi_allocator(ic, Box::new(Tagged)),
        Endpoint::with_spi_allocator(rc, Box::new(Tagged)),
    );
    let mut s = Sim::with_endpoints(i, r, 11);
    s.settle();
    let (i_peer, r_peer) = (R_ADDR.ip(), I_ADDR.ip());
    let (i_sa, r_sa) = s.sa_ids();
    assert_eq!(u64::from(tag(i_sa)), last_octet(i_peer) << 8, "{i_sa:?}");
    assert_eq!(u64::from(tag(r_sa)), last_octet(r_peer) << 8, "{r_sa:?}");

    rekey_child(&mut s, true);
    rekey_child(&mut s, false);
    rekey_ike(&mut s, true);
    rekey_child(&mut s, false);
    rekey_ike(&mut s, false);
    rekey_child(&mut s, true);

    let (i_sa, r_sa) = s.sa_ids();
    assert_eq!((tag(i_sa) & 0xff, tag(r_sa) & 0xff), (2, 2), "two IKE SA rekeys");
    let (i_octet, r_octet) = (last_octet(i_peer) as u8, last_octet(r_peer) as u8);
    let i_gens = check_side(&s.i_events, i_octet, r_octet);
    let r_gens = check_side(&s.r_events, r_octet, i_octet);
    // IKE_AUTH and two rekeys under the first IKE SA, one under each next.
    for gens in [&i_gens, &r_gens] {
        assert_eq!(gens, &[0, 0, 0, 1, 2], "CHILD_SAs made under each IKE SA");
    }
    let count = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::IkeSaRekeyed { .. })).count();
    assert_eq!((count(&s.i_events), count(&s.r_events)), (2, 2));
    assert_eq!(live_pairs(&s.i_events).expect("consistent").len(), 1);
}
