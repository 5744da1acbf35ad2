//! The outbound policy lookup: traffic selectors (RFC 7296 section 3.13.1)
//! map a plaintext packet to whatever protects it (an outbound SA handle).

use crate::Error;
use crate::wire::{self, IpHeader};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One traffic selector: an address range, an IP protocol and a port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// First address of the range.
    pub start: IpAddr,
    /// Last address of the range (same family as `start`).
    pub end: IpAddr,
    /// IP protocol, 0 for any.
    pub protocol: u8,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
}

impl TrafficSelector {
    /// Every IPv4 address, protocol and port.
    pub const ANY_V4: Self = Self {
        start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        end: IpAddr::V4(Ipv4Addr::BROADCAST),
        protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
    };

    /// Every IPv6 address, protocol and port.
    pub const ANY_V6: Self = Self {
        start: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        end: IpAddr::V6(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff)),
        protocol: 0,
        start_port: 0,
        end_port: u16::MAX,
    };

    /// The subnet `addr/prefix`, any protocol and port.
    pub fn subnet(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let (start, end) = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                let a = u32::from(a);
                (IpAddr::V4((a & mask).into()), IpAddr::V4((a | !mask).into()))
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                let a = u128::from(a);
                (IpAddr::V6((a & mask).into()), IpAddr::V6((a | !mask).into()))
            }
            _ => return Err(Error::InvalidSa("prefix length too long for the address family")),
        };
        Ok(Self { start, end, protocol: 0, start_port: 0, end_port: u16::MAX })
    }

    /// Whether the selector covers this address, protocol and port.
    pub fn matches(&self, addr: IpAddr, protocol: u8, port: u16) -> bool {
        let in_range = match (self.start, self.end, addr) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
            _ => false,
        };
        in_range
            && (self.protocol == 0 || self.protocol == protocol)
            && self.start_port <= port
            && port <= self.end_port
    }

    /// Number of addresses covered, saturated: smaller is more specific.
    fn width(&self) -> u128 {
        match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => u128::from(u32::from(e).saturating_sub(u32::from(s))),
            (IpAddr::V6(s), IpAddr::V6(e)) => u128::from(e).saturating_sub(u128::from(s)),
            _ => u128::MAX,
        }
    }
}

/// Handle of a policy in an [`Spd`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(u64);

/// An outbound policy: packets from `local` to `remote` go to `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy<T> {
    /// Selector on the source side (our protected network).
    pub local: TrafficSelector,
    /// Selector on the destination side (the peer's protected network).
    pub remote: TrafficSelector,
    /// What protects matching packets, e.g. an outbound SA handle.
    pub target: T,
}

/// The security policy database for outbound traffic.
///
/// Lookups scan policies from the most specific (narrowest remote, then
/// local, address range) to the least, so a narrower child SA wins over a
/// catch-all; the scan is linear, which suits the tens of policies of a
/// gateway.
#[derive(Clone, Debug)]
pub struct Spd<T> {
    policies: Vec<(PolicyId, Policy<T>)>,
    next_id: u64,
}

impl<T> Default for Spd<T> {
    fn default() -> Self {
        Self { policies: Vec::new(), next_id: 0 }
    }
}

impl<T> Spd<T> {
    /// An empty SPD.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy and returns its handle.
    pub fn insert(&mut self, policy: Policy<T>) -> PolicyId {
        let id = PolicyId(self.next_id);
        self.next_id += 1;
        let key = |p: &Policy<T>| (p.remote.width(), p.local.width());
        let at = self.policies.partition_point(|(_, p)| key(p) <= key(&policy));
        self.policies.insert(at, (id, policy));
        id
    }

    /// Removes a policy.
    pub fn remove(&mut self, id: PolicyId) -> Option<Policy<T>> {
        let i = self.policies.iter().position(|(pid, _)| *pid == id)?;
        Some(self.policies.remove(i).1)
    }

    /// The policy behind `id`, mutably (to point it at a rekeyed SA).
    pub fn get_mut(&mut self, id: PolicyId) -> Option<&mut Policy<T>> {
        self.policies.iter_mut().find(|(pid, _)| *pid == id).map(|(_, p)| p)
    }

    /// Every policy, most specific first.
    pub fn iter(&self) -> impl Iterator<Item = (PolicyId, &Policy<T>)> {
        self.policies.iter().map(|(id, p)| (*id, p))
    }

    /// The target of the first policy matching the plaintext IP packet
    /// `packet`, or `None` when no policy covers it.
    pub fn lookup(&self, packet: &[u8]) -> Result<Option<&T>, Error> {
        let h = IpHeader::parse(packet)?;
        // Non-initial fragments carry no ports: they match only selectors
        // open to every port (RFC 4301 section 7).
        let (sport, dport) = if h.fragment && packet.get(6..8).is_some_and(|f| f[0] & 0x1f != 0 || f[1] != 0)
        {
            (None, None)
        } else {
            let (s, d) = wire::ports(h.protocol, &packet[h.payload()]);
            (Some(s), Some(d))
        };
        Ok(self
            .policies
            .iter()
            .map(|(_, p)| p)
            .find(|p| {
                selector_matches(&p.local, h.src, h.protocol, sport)
                    && selector_matches(&p.remote, h.dst, h.protocol, dport)
            })
            .map(|p| &p.target))
    }
}

fn selector_matches(ts: &TrafficSelector, addr: IpAddr, protocol: u8, port: Option<u16>) -> bool {
    match port {
        Some(p) => ts.matches(addr, protocol, p),
        None => ts.start_port == 0 && ts.end_port == u16::MAX && ts.matches(addr, protocol, 0),
    }
}
