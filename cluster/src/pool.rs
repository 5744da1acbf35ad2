//! HA address pools: one virtual-IP range shared by the cluster without a
//! lease server. The range is split by segment (address number `i` belongs
//! to segment `i mod count + 1`), a node leases only addresses of the
//! segments it owns, and the addresses that mirrored SAs of other nodes
//! hold are reserved. Ownership of a segment is exclusive, so two nodes
//! never lease the same address; a client keeps its address across a
//! takeover because its IKE SA (and the lease in it) moves whole.

use crate::segment::{Segment, SegmentCount, SegmentSet};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tandem_ike::Identity;
use tandem_ike::pool::AddressPool;

/// Addresses scanned per lease at most, so a huge, nearly full IPv6 range
/// cannot stall the engine.
const MAX_SCAN: u128 = 1 << 16;

#[derive(Debug)]
struct State {
    first: u128,
    last: u128,
    v6: bool,
    count: SegmentCount,
    owned: SegmentSet,
    /// Our leases.
    leased: HashMap<u128, Identity>,
    by_peer: HashMap<Identity, u128>,
    /// Addresses mirrored SAs hold, with how many hold each.
    reserved: HashMap<u128, u32>,
    /// Where the next scan starts.
    cursor: u128,
}

/// A handle on a node's HA pool: the IKE engine leases through one clone
/// (as its [`AddressPool`]), the cluster engine updates ownership and
/// reservations through another.
#[derive(Clone, Debug)]
pub struct HaPool(Arc<Mutex<State>>);

impl HaPool {
    /// A pool of `first..=last` split into `count` segments; `None` if the
    /// ends are of different families or out of order.
    pub fn new(first: IpAddr, last: IpAddr, count: SegmentCount) -> Option<Self> {
        let (a, b, v6) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), false),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), true),
            _ => return None,
        };
        (a <= b).then(|| {
            Self(Arc::new(Mutex::new(State {
                first: a,
                last: b,
                v6,
                count,
                owned: SegmentSet::EMPTY,
                leased: HashMap::new(),
                by_peer: HashMap::new(),
                reserved: HashMap::new(),
                cursor: 0,
            })))
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic elsewhere cannot leave the maps half-updated: every
        // change below is a single insert or remove.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The segments whose addresses this node may lease.
    pub fn set_owned(&self, owned: SegmentSet) {
        self.with(|s| s.owned = owned);
    }

    /// The segment an address of the range belongs to.
    pub fn segment_of(&self, addr: IpAddr) -> Option<Segment> {
        self.with(|s| s.index(addr).and_then(|i| s.segment(i)))
    }

    /// Marks `addr` as held by a mirrored SA of another node.
    pub fn reserve(&self, addr: IpAddr) {
        self.with(|s| {
            if let Some(i) = s.index(addr) {
                *s.reserved.entry(i).or_default() += 1;
            }
        });
    }

    /// Ends one reservation of `addr`.
    pub fn unreserve(&self, addr: IpAddr) {
        self.with(|s| {
            if let Some(i) = s.index(addr)
                && let Some(n) = s.reserved.get_mut(&i)
            {
                *n -= 1;
                if *n == 0 {
                    s.reserved.remove(&i);
                }
            }
        });
    }

    /// Addresses this node leased, and reserved for others.
    pub fn usage(&self) -> (usize, usize) {
        self.with(|s| (s.leased.len(), s.reserved.len()))
    }
}

impl State {
    fn index(&self, addr: IpAddr) -> Option<u128> {
        let a = match addr {
            IpAddr::V4(a) if !self.v6 => u128::from(u32::from(a)),
            IpAddr::V6(a) if self.v6 => u128::from(a),
            _ => return None,
        };
        (self.first..=self.last).contains(&a).then(|| a - self.first)
    }

    fn segment(&self, index: u128) -> Option<Segment> {
        let n = u128::from(self.count.get());
        // The remainder is below 64.
        self.count.segment(((index % n) + 1) as u32).ok()
    }

    fn addr(&self, index: u128) -> IpAddr {
        let a = self.first + index;
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            // Within a range of IPv4 addresses.
            IpAddr::V4(Ipv4Addr::from(a as u32))
        }
    }
}

impl AddressPool for HaPool {
    fn lease(&mut self, peer: &Identity, ipv6: bool) -> Option<IpAddr> {
        self.with(|s| {
            if ipv6 != s.v6 {
                return None;
            }
            if let Some(&i) = s.by_peer.get(peer) {
                return Some(s.addr(i));
            }
            let size = s.last - s.first + 1;
            for k in 0..size.min(MAX_SCAN) {
                let i = (s.cursor + k) % size;
                let mine = s.segment(i).is_some_and(|g| s.owned.contains(g));
                if mine && !s.leased.contains_key(&i) && !s.reserved.contains_key(&i) {
                    s.cursor = (i + 1) % size;
                    s.leased.insert(i, peer.clone());
                    s.by_peer.insert(peer.clone(), i);
                    return Some(s.addr(i));
                }
            }
            None
        })
    }

    fn release(&mut self, addr: IpAddr) {
        self.with(|s| {
            if let Some(i) = s.index(addr)
                && let Some(peer) = s.leased.remove(&i)
            {
                s.by_peer.remove(&peer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn nodes_lease_only_their_segments_and_respect_reservations() {
        let count = SegmentCount::new(2).expect("count");
        let (first, last) = (v4([10, 9, 0, 0]), v4([10, 9, 0, 7]));
        let mut a = HaPool::new(first, last, count).expect("pool");
        let mut b = HaPool::new(first, last, count).expect("pool");
        a.set_owned(SegmentSet::from_bits(0b01));
        b.set_owned(SegmentSet::from_bits(0b10));
        let mut seen = HashSet::new();
        for n in 0..4 {
            let x = a.lease(&Identity::fqdn(&format!("a{n}")), false).expect("a has four");
            let y = b.lease(&Identity::fqdn(&format!("b{n}")), false).expect("b has four");
            assert_eq!(a.segment_of(x).map(Segment::get), Some(1));
            assert_eq!(b.segment_of(y).map(Segment::get), Some(2));
            assert!(seen.insert(x) && seen.insert(y), "no address twice");
        }
        assert_eq!(a.lease(&Identity::fqdn("late"), false), None, "a's half is used up");
        // b takes a's segment over: a's leases arrive as reservations.
        b.set_owned(SegmentSet::from_bits(0b11));
        for &x in &seen {
            b.reserve(x);
        }
        assert_eq!(b.lease(&Identity::fqdn("late"), false), None, "all reserved or leased");
        let freed = a.lease(&Identity::fqdn("a0"), false).expect("a0 keeps its address");
        b.unreserve(freed);
        assert_eq!(b.lease(&Identity::fqdn("late"), false), Some(freed));
        assert_eq!(b.lease(&Identity::fqdn("v6"), true), None, "wrong family");
        assert_eq!(b.usage(), (5, 7));
    }
}
