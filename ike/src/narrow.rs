//! Traffic selector narrowing (RFC 7296 section 2.9).
//!
//! A responder answers the initiator's TSi and TSr with a subset of what was
//! proposed that its policy allows: [`narrow`] intersects every proposed
//! selector with every configured one and keeps the non-empty results; an
//! empty answer means TS_UNACCEPTABLE. The initiator then checks with
//! [`covers`] that each selector of the answer lies inside one it proposed.
//! TSi and TSr are narrowed separately, each against the configured
//! selectors of its own side; choosing which configured CHILD_SA the
//! proposal is for is the caller's job.
//!
//! A selector is the product of three sets: an address range (one family),
//! an IP protocol (0 is any) and a port range. Two selectors intersect in
//! each of the three, or not at all. Rules:
//!
//! - Addresses of different families never intersect; a selector whose
//!   start and end addresses differ in family, or whose start is above its
//!   end, is empty: it intersects nothing and covers nothing.
//! - Protocol 0 intersected with `p` is `p`; two different non-zero
//!   protocols do not intersect.
//! - Ports are compared as numbers (for ICMP, type << 8 | code, as section
//!   3.13.1 encodes them). A range whose start is above its end is empty,
//!   except OPAQUE.
//! - OPAQUE (start 65535, end 0, section 3.13.1; RFC 4301 section 4.4.1.1)
//!   selects the packets whose ports are not available, such as non-initial
//!   fragments. Tandem treats it as a set of its own that only "any port"
//!   (0..=65535, which in RFC 4301 includes OPAQUE) contains: OPAQUE
//!   intersected with any-port or with OPAQUE is OPAQUE, with a narrower
//!   range nothing; [`covers`] follows the same rule.
//!
//! Section 2.9 lets an initiator put the selector of the packet that
//! triggered the negotiation first in TSi and TSr. Nothing here treats it
//! specially: [`narrow`] keeps the proposed order, so when that packet is
//! acceptable its (narrowed) selector comes first in the answer, and when it
//! is not, the rest of the list is still narrowed. Selectors of types other
//! than address ranges are left out by the caller
//! ([`Ts::ranges`](crate::wire::Ts::ranges)), as section 2.9 asks.

use crate::wire::TrafficSelector;
use core::net::IpAddr;
use std::collections::BTreeSet;

/// The OPAQUE port encoding: start 65535, end 0.
const OPAQUE: (u16, u16) = (u16::MAX, 0);

/// A selector's ports, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ports {
    /// An inclusive range, start at most end.
    Range(u16, u16),
    /// OPAQUE: ports not available.
    Opaque,
}

/// Every port.
const ANY_PORT: Ports = Ports::Range(0, u16::MAX);

impl Ports {
    /// The ports of `ts`; `None` if the range is empty.
    fn of(ts: &TrafficSelector) -> Option<Self> {
        match (ts.start_port, ts.end_port) {
            OPAQUE => Some(Self::Opaque),
            (s, e) if s <= e => Some(Self::Range(s, e)),
            _ => None,
        }
    }

    /// The wire start and end ports.
    fn bounds(self) -> (u16, u16) {
        match self {
            Self::Range(s, e) => (s, e),
            Self::Opaque => OPAQUE,
        }
    }

    /// The common ports of `self` and `other`.
    fn intersect(self, other: Self) -> Option<Self> {
        match (self, other) {
            (Self::Range(a_start, a_end), Self::Range(b_start, b_end)) => {
                let (start, end) = (a_start.max(b_start), a_end.min(b_end));
                (start <= end).then_some(Self::Range(start, end))
            }
            (Self::Opaque, Self::Opaque) => Some(Self::Opaque),
            (Self::Opaque, p) | (p, Self::Opaque) => (p == ANY_PORT).then_some(Self::Opaque),
        }
    }

    /// Whether every port of `inner` is one of `self`.
    fn covers(self, inner: Self) -> bool {
        match (self, inner) {
            (Self::Range(o_start, o_end), Self::Range(i_start, i_end)) => {
                o_start <= i_start && i_end <= o_end
            }
            (Self::Opaque, Self::Opaque) => true,
            (outer, Self::Opaque) => outer == ANY_PORT,
            (Self::Opaque, Self::Range(..)) => false,
        }
    }
}

/// Whether `ts` selects any address: one family, start at most end.
fn has_addresses(ts: &TrafficSelector) -> bool {
    match (ts.start_addr, ts.end_addr) {
        (IpAddr::V4(s), IpAddr::V4(e)) => s <= e,
        (IpAddr::V6(s), IpAddr::V6(e)) => s <= e,
        _ => false,
    }
}

/// Whether both selectors' addresses are of one family.
fn same_family(a: &TrafficSelector, b: &TrafficSelector) -> bool {
    a.start_addr.is_ipv4() == b.start_addr.is_ipv4()
}

/// The common protocol of `a` and `b` (0 is any).
fn intersect_protocol(a: u8, b: u8) -> Option<u8> {
    match (a, b) {
        (0, p) | (p, 0) => Some(p),
        (a, b) => (a == b).then_some(a),
    }
}

/// The traffic both `a` and `b` select, or `None` if none (see the
/// [module docs](self) for the rules).
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    if !has_addresses(a) || !has_addresses(b) || !same_family(a, b) {
        return None;
    }
    let ip_protocol = intersect_protocol(a.ip_protocol, b.ip_protocol)?;
    let (start_port, end_port) = Ports::of(a)?.intersect(Ports::of(b)?)?.bounds();
    // Within one family, `IpAddr` orders numerically.
    let start_addr = a.start_addr.max(b.start_addr);
    let end_addr = a.end_addr.min(b.end_addr);
    if start_addr > end_addr {
        return None;
    }
    Some(TrafficSelector { ip_protocol, start_port, end_port, start_addr, end_addr })
}

/// Whether `outer` selects all the traffic `inner` does; an empty `inner`
/// is never covered (it is no valid answer).
pub fn covers(outer: &TrafficSelector, inner: &TrafficSelector) -> bool {
    if !has_addresses(outer) || !has_addresses(inner) || !same_family(outer, inner) {
        return false;
    }
    let protocol = outer.ip_protocol == 0 || outer.ip_protocol == inner.ip_protocol;
    let ports = match (Ports::of(outer), Ports::of(inner)) {
        (Some(o), Some(i)) => o.covers(i),
        _ => false,
    };
    protocol && ports && outer.start_addr <= inner.start_addr && inner.end_addr <= outer.end_addr
}

/// The responder's narrowing: every non-empty intersection of a `proposed`
/// selector with a `configured` one, in the proposed order (then the
/// configured order), each once. Empty means TS_UNACCEPTABLE.
pub fn narrow(proposed: &[TrafficSelector], configured: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in proposed {
        for c in configured {
            let Some(ts) = intersect(p, c) else { continue };
            if seen.insert((ts.ip_protocol, ts.start_port, ts.end_port, ts.start_addr, ts.end_addr)) {
                out.push(ts);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: [u8; 4], e: [u8; 4]) -> TrafficSelector {
        TrafficSelector::any(IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(e)))
    }

    fn ports(mut ts: TrafficSelector, start: u16, end: u16) -> TrafficSelector {
        ts.start_port = start;
        ts.end_port = end;
        ts
    }

    #[test]
    fn port_ranges_intersect_and_cover() {
        let r = Ports::Range;
        assert_eq!(r(10, 20).intersect(r(15, 30)), Some(r(15, 20)));
        assert_eq!(r(10, 20).intersect(r(21, 30)), None);
        assert_eq!(r(10, 20).intersect(r(20, 20)), Some(r(20, 20)));
        assert!(r(10, 20).covers(r(10, 20)));
        assert!(!r(10, 20).covers(r(9, 20)));
    }

    #[test]
    fn opaque_meets_only_any_port_and_itself() {
        let opaque = Ports::Opaque;
        assert_eq!(opaque.intersect(ANY_PORT), Some(opaque));
        assert_eq!(ANY_PORT.intersect(opaque), Some(opaque));
        assert_eq!(opaque.intersect(opaque), Some(opaque));
        assert_eq!(opaque.intersect(Ports::Range(0, 65534)), None);
        assert_eq!(Ports::Range(1, 65535).intersect(opaque), None);
        assert!(ANY_PORT.covers(opaque) && opaque.covers(opaque));
        assert!(!opaque.covers(ANY_PORT) && !Ports::Range(0, 80).covers(opaque));
    }

    #[test]
    fn reversed_ports_other_than_opaque_are_empty() {
        let ts = ports(v4([10, 0, 0, 0], [10, 0, 0, 255]), 100, 50);
        assert_eq!(Ports::of(&ts), None);
        assert_eq!(intersect(&ts, &ts), None);
        assert!(!covers(&v4([0; 4], [255; 4]), &ts));
        let opaque = ports(ts, 65535, 0);
        assert_eq!(Ports::of(&opaque), Some(Ports::Opaque));
    }

    #[test]
    fn mixed_family_selector_is_empty() {
        let odd = TrafficSelector::any(IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let all4 = v4([0; 4], [255; 4]);
        assert_eq!(intersect(&odd, &all4), None);
        assert_eq!(intersect(&all4, &odd), None);
        assert!(!covers(&odd, &all4) && !covers(&all4, &odd));
    }

    #[test]
    fn protocols_intersect_when_one_is_any_or_both_match() {
        assert_eq!(intersect_protocol(0, 0), Some(0));
        assert_eq!(intersect_protocol(0, 6), Some(6));
        assert_eq!(intersect_protocol(17, 0), Some(17));
        assert_eq!(intersect_protocol(17, 17), Some(17));
        assert_eq!(intersect_protocol(6, 17), None);
    }

    #[test]
    fn narrow_drops_duplicates_keeping_the_first() {
        let a = v4([10, 0, 0, 0], [10, 0, 255, 255]);
        let b = v4([10, 0, 1, 0], [10, 0, 1, 255]);
        // Both proposals narrow to b against the configured b.
        assert_eq!(narrow(&[a, a, b], &[b]), vec![b]);
    }
}
