//! Addresses as the configuration writes them: address ranges (CIDR
//! prefixes or `first-last`), peer addresses, and traffic selectors.

use super::value::deserialize_parsed;
use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;
use serde::{Deserialize, Deserializer};

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `addr`.
    pub(crate) fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// Address length in bits.
    const fn bits(self) -> u32 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// An address as a number (IPv4 in the low 32 bits).
fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// The address of `family` numbered `bits` (truncated to its length).
fn from_bits(family: Family, bits: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4((bits as u32).into()),
        Family::V6 => IpAddr::V6(bits.into()),
    }
}

/// The addresses `first..=last` of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IpRange {
    first: IpAddr,
    last: IpAddr,
}

impl IpRange {
    /// The range `first..=last`; `None` across families or if `first > last`.
    pub(crate) fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        (Family::of(first) == Family::of(last) && to_bits(first) <= to_bits(last))
            .then_some(Self { first, last })
    }

    /// The first address.
    pub(crate) fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address.
    pub(crate) fn last(&self) -> IpAddr {
        self.last
    }

    /// The family of both ends.
    pub(crate) fn family(&self) -> Family {
        Family::of(self.first)
    }

    /// The prefix length, if the range is exactly one CIDR block.
    pub(crate) fn prefix_len(&self) -> Option<u32> {
        let host = to_bits(self.first) ^ to_bits(self.last);
        let block = host & host.wrapping_add(1) == 0 && to_bits(self.first) & host == 0;
        block.then(|| self.family().bits() - host.count_ones())
    }

    /// Whether the two ranges share an address.
    pub(crate) fn overlaps(&self, other: &IpRange) -> bool {
        self.family() == other.family()
            && to_bits(self.first) <= to_bits(other.last)
            && to_bits(other.first) <= to_bits(self.last)
    }

    /// The range without the first address, and (IPv4) without the last,
    /// when this is a CIDR block of four or more addresses: the network
    /// and broadcast addresses a pool must not lease. Other ranges are
    /// returned as they are.
    pub(crate) fn leasable(&self) -> IpRange {
        let family = self.family();
        match self.prefix_len() {
            Some(len) if len + 2 <= family.bits() => {
                let first = to_bits(self.first) + 1;
                let last = match family {
                    Family::V4 => to_bits(self.last) - 1,
                    Family::V6 => to_bits(self.last),
                };
                IpRange { first: from_bits(family, first), last: from_bits(family, last) }
            }
            _ => *self,
        }
    }

    /// Parses `a.b.c.d/len`, `first-last` or one address.
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((addr, len)) = s.split_once('/') {
            let addr = parse_ip(addr)?;
            let family = Family::of(addr);
            let len: u32 = len.trim().parse().map_err(|_| format!("invalid prefix length in {s:?}"))?;
            if len > family.bits() {
                return Err(format!("prefix length {len} in {s:?} is longer than {}", family.bits()));
            }
            let host = u128::MAX.checked_shr(128 - family.bits() + len).unwrap_or(0);
            let net = to_bits(addr) & !host;
            if net != to_bits(addr) {
                return Err(format!(
                    "{s:?} has host bits set; the network is {}/{len}",
                    from_bits(family, net)
                ));
            }
            return Ok(IpRange { first: addr, last: from_bits(family, net | host) });
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (parse_ip(a)?, parse_ip(b)?);
            if Family::of(a) != Family::of(b) {
                return Err(format!("range {s:?} mixes IPv4 and IPv6"));
            }
            return IpRange::new(a, b).ok_or_else(|| format!("range {s:?} ends before it starts"));
        }
        let a = parse_ip(s)?;
        Ok(IpRange { first: a, last: a })
    }
}

/// Parses one address, naming it when invalid.
fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let s = s.trim();
    s.parse().map_err(|_| format!("{s:?} is not an IP address"))
}

impl FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, r#"an address range such as "10.3.0.0/24" or "10.3.0.10-10.3.0.99""#)
    }
}

impl fmt::Display for IpRange {
    /// `first/len` for a CIDR block, `first-last` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix_len() {
            Some(len) => write!(f, "{}/{len}", self.first),
            None => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

/// A value of `local_addrs` or `remote_addrs`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerAddr {
    /// `%any`: any address.
    Any,
    /// One address; the only kind, with [`PeerAddr::Name`], an initiator
    /// can send to.
    Addr(IpAddr),
    /// Any address of a CIDR prefix or range (responder only).
    Range(IpRange),
    /// A DNS name, resolved when the connection is initiated.
    Name(String),
}

impl PeerAddr {
    /// The one family this matches, if it is limited to one.
    pub(crate) fn family(&self) -> Option<Family> {
        match self {
            Self::Addr(a) => Some(Family::of(*a)),
            Self::Range(r) => Some(r.family()),
            Self::Any | Self::Name(_) => None,
        }
    }
}

impl FromStr for PeerAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "%any" {
            return Ok(Self::Any);
        }
        if let Ok(a) = s.parse() {
            return Ok(Self::Addr(a));
        }
        // Host names may contain '-', so a range needs addresses each side.
        let range_like =
            s.contains('/') || s.split_once('-').is_some_and(|(a, _)| a.trim().parse::<IpAddr>().is_ok());
        if range_like {
            return IpRange::parse(s).map(Self::Range);
        }
        if is_dns_name(s) {
            return Ok(Self::Name(s.to_owned()));
        }
        Err(format!("{s:?} is not an IP address, CIDR prefix, range, host name or %any"))
    }
}

/// Whether `s` is a syntactically valid DNS host name whose last label is
/// not all digits (so a mistyped IPv4 address is not taken for a name).
fn is_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (1..=253).contains(&s.len())
        && s.split('.').all(label_ok)
        && s.rsplit('.').next().is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, r#"an address such as "192.0.2.1", "10.0.0.0/8", "vpn.example.com" or "%any""#)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("%any"),
            Self::Addr(a) => write!(f, "{a}"),
            Self::Range(r) => write!(f, "{r}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// The addresses of a traffic selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TsAddrs {
    /// `dynamic`: the SA's own address on this side (the IKE address, or a
    /// virtual IP), filled in when the CHILD_SA is made.
    Dynamic,
    /// A prefix, a range or one address.
    Range(IpRange),
}

/// A traffic selector: `10.1.0.0/16`, `dynamic`, `10.1.0.1-10.1.0.9`, each
/// optionally followed by `[protocol]` or `[protocol/port]` or
/// `[protocol/first-last]`, as in swanctl.conf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TsSpec {
    /// The addresses.
    pub(crate) addrs: TsAddrs,
    /// IP protocol number; 0 for any.
    pub(crate) protocol: u8,
    /// First port (0 with `end_port` 65535 for any).
    pub(crate) start_port: u16,
    /// Last port.
    pub(crate) end_port: u16,
}

/// Protocol names accepted in traffic selectors.
const PROTOCOLS: &[(&str, u8)] =
    &[("icmp", 1), ("tcp", 6), ("udp", 17), ("gre", 47), ("ipv6-icmp", 58), ("icmpv6", 58), ("sctp", 132)];

impl FromStr for TsSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, sel) = match s.split_once('[') {
            Some((addr, rest)) => {
                let sel = rest.strip_suffix(']').ok_or_else(|| format!("{s:?}: missing ']'"))?;
                (addr.trim(), Some(sel.trim()))
            }
            None => (s, None),
        };
        let addrs = if addr == "dynamic" { TsAddrs::Dynamic } else { TsAddrs::Range(IpRange::parse(addr)?) };
        let mut ts = TsSpec { addrs, protocol: 0, start_port: 0, end_port: u16::MAX };
        let Some(sel) = sel else { return Ok(ts) };
        let (proto, ports) = match sel.split_once('/') {
            Some((p, ports)) => (p.trim(), Some(ports.trim())),
            None => (sel, None),
        };
        ts.protocol = match proto {
            "" | "%any" => 0,
            name => match PROTOCOLS.iter().find(|(n, _)| *n == name) {
                Some(&(_, number)) => number,
                None => name.parse().map_err(|_| format!("{s:?}: unknown protocol {name:?}"))?,
            },
        };
        match ports {
            None | Some("" | "%any") => {}
            Some(ports) => {
                if ts.protocol == 0 {
                    return Err(format!("{s:?}: a port needs a protocol, as in [tcp/443]"));
                }
                let port =
                    |p: &str| p.trim().parse::<u16>().map_err(|_| format!("{s:?}: invalid port {p:?}"));
                let (start, end) = match ports.split_once('-') {
                    Some((a, b)) => (port(a)?, port(b)?),
                    None => (port(ports)?, port(ports)?),
                };
                if start > end {
                    return Err(format!("{s:?}: port range ends before it starts"));
                }
                (ts.start_port, ts.end_port) = (start, end);
            }
        }
        Ok(ts)
    }
}

impl<'de> Deserialize<'de> for TsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            d,
            r#"a traffic selector such as "10.1.0.0/16", "dynamic" or "0.0.0.0/0[tcp/443]""#,
        )
    }
}

impl fmt::Display for TsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addrs {
            TsAddrs::Dynamic => f.write_str("dynamic")?,
            TsAddrs::Range(r) => write!(f, "{r}")?,
        }
        let any_port = (self.start_port, self.end_port) == (0, u16::MAX);
        if self.protocol == 0 && any_port {
            return Ok(());
        }
        match PROTOCOLS.iter().find(|(_, n)| *n == self.protocol) {
            Some((name, _)) => write!(f, "[{name}")?,
            None => write!(f, "[{}", self.protocol)?,
        }
        match (any_port, self.start_port == self.end_port) {
            (true, _) => f.write_str("]"),
            (false, true) => write!(f, "/{}]", self.start_port),
            (false, false) => write!(f, "/{}-{}]", self.start_port, self.end_port),
        }
    }
}

/// An interface address with its on-link prefix length, as the cluster's
/// VIPs are written: `"192.0.2.1/24"`, `"2001:db8::1/64"`. Unlike a CIDR
/// range, the host bits are the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct IfAddr {
    /// The address.
    pub(crate) addr: IpAddr,
    /// The length of the on-link prefix, 1 to 32 (IPv4) or 128 (IPv6).
    pub(crate) prefix_len: u8,
}

impl IfAddr {
    /// Whether `other` is of the same family and inside this address's
    /// on-link prefix.
    pub(crate) fn on_link(&self, other: IpAddr) -> bool {
        let family = Family::of(self.addr);
        let host = u128::MAX.checked_shr(128 - family.bits() + u32::from(self.prefix_len)).unwrap_or(0);
        family == Family::of(other) && to_bits(self.addr) & !host == to_bits(other) & !host
    }

    /// For an IPv4 prefix of four or more addresses, whether the address is
    /// the prefix's network or broadcast address.
    pub(crate) fn is_v4_network_or_broadcast(&self) -> bool {
        let IpAddr::V4(a) = self.addr else { return false };
        let host = u32::MAX.checked_shr(u32::from(self.prefix_len)).unwrap_or(0);
        self.prefix_len <= 30 && (a.to_bits() & host == 0 || a.to_bits() & host == host)
    }
}

impl FromStr for IfAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let Some((addr, len)) = t.split_once('/') else {
            return Err(format!(
                "{s:?} has no prefix length: write the address with its on-link prefix, as in \"192.0.2.1/24\""
            ));
        };
        let addr = parse_ip(addr)?;
        let bits = Family::of(addr).bits();
        let len: u32 = len.trim().parse().map_err(|_| format!("invalid prefix length in {s:?}"))?;
        if !(1..=bits).contains(&len) {
            return Err(format!("prefix length {len} in {s:?} is outside 1..={bits}"));
        }
        let prefix_len = u8::try_from(len).map_err(|_| format!("invalid prefix length in {s:?}"))?;
        Ok(Self { addr, prefix_len })
    }
}

impl<'de> Deserialize<'de> for IfAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            d,
            r#"an address with its prefix length such as "192.0.2.1/24" or "2001:db8::1/64""#,
        )
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// An Ethernet MAC address, written `"01:00:5e:00:00:20"` (or with `-`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MacAddr(pub(crate) [u8; 6]);

impl MacAddr {
    /// The multicast MAC an IP address maps to: for IPv4 `01:00:5e` and
    /// the low 23 bits of the address (RFC 1112), for IPv6 `33:33` and the
    /// low 32 bits (RFC 2464).
    pub(crate) fn multicast_for(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => {
                let o = a.octets();
                Self([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
            }
            IpAddr::V6(a) => {
                let o = a.octets();
                Self([0x33, 0x33, o[12], o[13], o[14], o[15]])
            }
        }
    }

    /// Whether this is the MAC of a well-known IPv6 group as well: the
    /// link-scope groups `ff02::x` and `ff02::1:x` (all nodes, all
    /// routers, MLDv2, mDNS...) and the solicited-node groups
    /// (`33:33:ff:..`), which hosts join for their own addresses.
    pub(crate) fn is_well_known_ipv6_group(&self) -> bool {
        let m = self.0;
        m[..2] == [0x33, 0x33] && (m[2] == 0xff || (m[2] == 0 && m[3] <= 1))
    }

    /// `ff:ff:ff:ff:ff:ff`.
    pub(crate) fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// `00:00:00:00:00:00`.
    pub(crate) fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// The group bit (bit 0 of the first octet) is set.
    pub(crate) fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// The locally administered bit (bit 1 of the first octet) is set.
    pub(crate) fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let sep = if t.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = t.split(sep);
        for octet in &mut out {
            let part = parts.next().unwrap_or_default();
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{s:?} is not a MAC address such as \"01:00:5e:00:00:20\""));
            }
            *octet = u8::from_str_radix(part, 16)
                .map_err(|_| format!("{s:?} is not a MAC address such as \"01:00:5e:00:00:20\""))?;
        }
        if parts.next().is_some() {
            return Err(format!("{s:?} is not a MAC address such as \"01:00:5e:00:00:20\""));
        }
        Ok(Self(out))
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, r#"a MAC address such as "01:00:5e:00:00:20""#)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}
