//! Virtual addresses for remote-access clients (RFC 7296 section 2.19):
//! the [`AddressPool`] a responder leases INTERNAL_IP4_ADDRESS and
//! INTERNAL_IP6_ADDRESS values from, and [`RangePool`], a pool over one
//! address range.
//!
//! Leases are keyed by the peer's identity, so a client that reconnects
//! (or a second IKE SA of the same identity) gets the address it had.
//! The endpoint releases an IKE SA's addresses when the SA ends; a rekey
//! hands them to the new SA. A cluster plugs in its own pool, which leases
//! only the addresses of the segments its node owns.

use crate::config::Identity;
use core::net::IpAddr;
use std::collections::HashMap;

/// Where virtual addresses come from.
pub trait AddressPool {
    /// An address of the family of `ipv6` for the peer `peer`: the one it
    /// already holds, or a free one. `None` when the pool has none.
    fn lease(&mut self, peer: &Identity, ipv6: bool) -> Option<IpAddr>;
    /// Gives a leased address back.
    fn release(&mut self, addr: IpAddr);
}

/// A pool over the addresses `first..=last` (both of one family).
#[derive(Debug)]
pub struct RangePool {
    first: u128,
    size: u128,
    ipv6: bool,
    /// Offsets from `first` in use, with their holders.
    leased: HashMap<u128, Identity>,
    /// The lease of each identity.
    by_peer: HashMap<Identity, u128>,
    /// Where the search for a free address goes on from.
    cursor: u128,
}

impl RangePool {
    /// A pool of `first..=last`; `None` if they are of different families
    /// or `first > last`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        let (first, last, ipv6) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), false),
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), true),
            _ => return None,
        };
        let size = last.checked_sub(first)?.checked_add(1)?;
        Some(Self { first, size, ipv6, leased: HashMap::new(), by_peer: HashMap::new(), cursor: 0 })
    }

    /// Addresses currently leased.
    pub fn leased(&self) -> usize {
        self.leased.len()
    }

    fn addr(&self, offset: u128) -> IpAddr {
        let bits = self.first + offset;
        if self.ipv6 {
            IpAddr::V6(bits.into())
        } else {
            // `first + offset <= last`, an IPv4 value.
            IpAddr::V4(u32::try_from(bits).unwrap_or(u32::MAX).into())
        }
    }

    fn offset(&self, addr: IpAddr) -> Option<u128> {
        let bits = match (addr, self.ipv6) {
            (IpAddr::V4(a), false) => u128::from(a.to_bits()),
            (IpAddr::V6(a), true) => a.to_bits(),
            _ => return None,
        };
        bits.checked_sub(self.first).filter(|o| *o < self.size)
    }
}

/// At most this many addresses are probed for a free one per lease, so a
/// huge, nearly full IPv6 pool cannot stall the engine.
const MAX_PROBES: u128 = 4096;

impl AddressPool for RangePool {
    fn lease(&mut self, peer: &Identity, ipv6: bool) -> Option<IpAddr> {
        if ipv6 != self.ipv6 {
            return None;
        }
        if let Some(offset) = self.by_peer.get(peer) {
            return Some(self.addr(*offset));
        }
        for _ in 0..self.size.min(MAX_PROBES) {
            let offset = self.cursor;
            self.cursor = (self.cursor + 1) % self.size;
            if let std::collections::hash_map::Entry::Vacant(free) = self.leased.entry(offset) {
                free.insert(peer.clone());
                self.by_peer.insert(peer.clone(), offset);
                return Some(self.addr(offset));
            }
        }
        None
    }

    fn release(&mut self, addr: IpAddr) {
        if let Some(peer) = self.offset(addr).and_then(|o| self.leased.remove(&o)) {
            self.by_peer.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn leases_each_address_once_and_the_same_one_to_the_same_peer() {
        let mut pool = RangePool::new(v4([10, 3, 0, 1]), v4([10, 3, 0, 2])).expect("range");
        let (a, b, c) = (Identity::fqdn("a"), Identity::fqdn("b"), Identity::fqdn("c"));
        assert_eq!(pool.lease(&a, false), Some(v4([10, 3, 0, 1])));
        assert_eq!(pool.lease(&b, false), Some(v4([10, 3, 0, 2])));
        assert_eq!(pool.lease(&a, false), Some(v4([10, 3, 0, 1])), "a holds its address");
        assert_eq!(pool.lease(&c, false), None, "exhausted");
        assert_eq!(pool.lease(&c, true), None, "no IPv6 here");
        pool.release(v4([10, 3, 0, 1]));
        assert_eq!(pool.lease(&c, false), Some(v4([10, 3, 0, 1])));
        assert_eq!(pool.leased(), 2);
        pool.release(v4([192, 0, 2, 1]));
        assert_eq!(pool.leased(), 2, "foreign addresses are ignored");
    }

    #[test]
    fn handles_ipv6_and_rejects_bad_ranges() {
        let first = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let last = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff));
        let mut pool = RangePool::new(first, last).expect("range");
        assert_eq!(pool.lease(&Identity::fqdn("a"), true), Some(first));
        assert!(RangePool::new(last, first).is_none());
        assert!(RangePool::new(first, v4([10, 0, 0, 1])).is_none());
        let full =
            RangePool::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::from_bits(u128::MAX)));
        assert!(full.is_none(), "the whole IPv6 space does not fit a u128 count");
    }
}
