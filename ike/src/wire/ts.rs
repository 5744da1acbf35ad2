//! The Traffic Selector payloads, TSi and TSr (RFC 7296 section 3.13).
//!
//! ```text
//! Payload:  Number of TSs | RESERVED (3) | Traffic Selectors
//! Selector: TS Type | IP Protocol ID | Selector Length (2)
//!           Start Port (2) | End Port (2) | Starting Address | Ending Address
//! ```
//!
//! Rules: Number of TSs equals the selectors present and nothing follows
//! them; an IPv4 range is exactly 16 octets and an IPv6 range 40; any
//! selector is at least its 4-octet header. Selectors of other types (a
//! security label, RFC 9478) are kept opaque so the negotiation layer can
//! refuse them with TS_UNACCEPTABLE instead of the whole message failing.
//!
//! Lenient on purpose: Start Port above End Port is accepted, because
//! section 3.13.1 encodes OPAQUE ports as 65535..0; a starting address above
//! the ending one is accepted too (section 3.13.1 sets no rule: it is an
//! empty range, which narrowing turns into TS_UNACCEPTABLE). An empty TS
//! payload (Number of TSs 0) decodes, for the same reason.

use super::registry::TsType;
use super::{Reader, atomic, fit_u8, patch_len16};
use crate::Error;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of an IPv4 address range selector.
const IPV4_RANGE_LEN: usize = 16;
/// Length of an IPv6 address range selector.
const IPV6_RANGE_LEN: usize = 40;
/// Length of the selector header (type, protocol, length).
const SELECTOR_HEADER_LEN: usize = 4;

/// A TSi or TSr payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ts {
    /// The selectors, in wire order.
    pub selectors: Vec<Selector>,
}

/// One traffic selector substructure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// An IPv4 or IPv6 address range (TS types 7 and 8).
    Range(TrafficSelector),
    /// A selector of another type, kept as it came.
    Other {
        /// The TS type.
        ts_type: TsType,
        /// The second octet (IP Protocol ID for address ranges, reserved in
        /// a security label).
        ip_protocol: u8,
        /// The octets after the 4-octet selector header.
        data: Vec<u8>,
    },
}

/// An address range selector; its TS type follows from the address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// The IP protocol (0 for any).
    pub ip_protocol: u8,
    /// The first port (ICMP: type << 8 | code).
    pub start_port: u16,
    /// The last port (65535 for any; 0 with start 65535 for OPAQUE).
    pub end_port: u16,
    /// The first address.
    pub start_addr: IpAddr,
    /// The last address, of the same family.
    pub end_addr: IpAddr,
}

impl TrafficSelector {
    /// TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE after the start address.
    pub const fn ts_type(&self) -> TsType {
        match self.start_addr {
            IpAddr::V4(_) => TsType::TS_IPV4_ADDR_RANGE,
            IpAddr::V6(_) => TsType::TS_IPV6_ADDR_RANGE,
        }
    }

    /// A selector of every protocol and port between two addresses.
    pub const fn any(start_addr: IpAddr, end_addr: IpAddr) -> Self {
        Self { ip_protocol: 0, start_port: 0, end_port: u16::MAX, start_addr, end_addr }
    }

    fn buffer_len(&self) -> usize {
        match self.start_addr {
            IpAddr::V4(_) => IPV4_RANGE_LEN,
            IpAddr::V6(_) => IPV6_RANGE_LEN,
        }
    }
}

impl From<TrafficSelector> for Selector {
    fn from(ts: TrafficSelector) -> Self {
        Self::Range(ts)
    }
}

impl Selector {
    /// Length of the emitted substructure.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Range(ts) => ts.buffer_len(),
            Self::Other { data, .. } => SELECTOR_HEADER_LEN + data.len(),
        }
    }

    fn parse(outer: &mut Reader<'_>) -> Result<Self, Error> {
        let mut head = Reader::new(outer.rest(), "traffic selector");
        let ts_type = TsType(head.u8()?);
        let ip_protocol = head.u8()?;
        let len = usize::from(head.u16()?);
        if len < SELECTOR_HEADER_LEN {
            return Err(Error::InvalidSyntax("traffic selector length below 4"));
        }
        let mut r = Reader::new(outer.take(len).map_err(|_| head.truncated())?, "traffic selector");
        r.skip(SELECTOR_HEADER_LEN)?;
        let (want, v6) = match ts_type {
            TsType::TS_IPV4_ADDR_RANGE => (IPV4_RANGE_LEN, false),
            TsType::TS_IPV6_ADDR_RANGE => (IPV6_RANGE_LEN, true),
            _ => return Ok(Self::Other { ts_type, ip_protocol, data: r.rest().to_vec() }),
        };
        if len != want {
            return Err(Error::InvalidSyntax("address range selector of the wrong length"));
        }
        let start_port = r.u16()?;
        let end_port = r.u16()?;
        let (start_addr, end_addr) = if v6 {
            let s = Ipv6Addr::from(r.array::<16>()?);
            let e = Ipv6Addr::from(r.array::<16>()?);
            (IpAddr::V6(s), IpAddr::V6(e))
        } else {
            let s = Ipv4Addr::from(r.array::<4>()?);
            let e = Ipv4Addr::from(r.array::<4>()?);
            (IpAddr::V4(s), IpAddr::V4(e))
        };
        Ok(Self::Range(TrafficSelector { ip_protocol, start_port, end_port, start_addr, end_addr }))
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        match self {
            Self::Range(ts) => {
                out.extend_from_slice(&[ts.ts_type().0, ts.ip_protocol, 0, 0]);
                out.extend_from_slice(&ts.start_port.to_be_bytes());
                out.extend_from_slice(&ts.end_port.to_be_bytes());
                match (ts.start_addr, ts.end_addr) {
                    (IpAddr::V4(s), IpAddr::V4(e)) => {
                        out.extend_from_slice(&s.octets());
                        out.extend_from_slice(&e.octets());
                    }
                    (IpAddr::V6(s), IpAddr::V6(e)) => {
                        out.extend_from_slice(&s.octets());
                        out.extend_from_slice(&e.octets());
                    }
                    _ => return Err(Error::Unencodable("traffic selector mixing IPv4 and IPv6")),
                }
            }
            Self::Other { ts_type, ip_protocol, data } => {
                if matches!(*ts_type, TsType::TS_IPV4_ADDR_RANGE | TsType::TS_IPV6_ADDR_RANGE) {
                    return Err(Error::Unencodable("address range given as an opaque selector"));
                }
                out.extend_from_slice(&[ts_type.0, *ip_protocol, 0, 0]);
                out.extend_from_slice(data);
            }
        }
        patch_len16(out, start + 2, start, "traffic selector length")
    }
}

impl Ts {
    /// A payload of address range selectors.
    pub fn new(selectors: impl IntoIterator<Item = TrafficSelector>) -> Self {
        Self { selectors: selectors.into_iter().map(Selector::Range).collect() }
    }

    /// The address range selectors, skipping the others.
    pub fn ranges(&self) -> impl Iterator<Item = &TrafficSelector> {
        self.selectors.iter().filter_map(|s| match s {
            Selector::Range(ts) => Some(ts),
            Selector::Other { .. } => None,
        })
    }

    /// Decodes a TS payload body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "TS payload");
        let count = usize::from(r.u8()?);
        r.skip(3)?;
        let selectors = (0..count).map(|_| Selector::parse(&mut r)).collect::<Result<Vec<_>, _>>()?;
        if !r.is_empty() {
            return Err(Error::InvalidSyntax("data after the last traffic selector"));
        }
        Ok(Self { selectors })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.selectors.iter().map(Selector::buffer_len).sum::<usize>()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let count = fit_u8(self.selectors.len(), "traffic selector count")?;
        atomic(out, |out| {
            out.extend_from_slice(&[count, 0, 0, 0]);
            self.selectors.iter().try_for_each(|s| s.emit(out))
        })
    }
}
