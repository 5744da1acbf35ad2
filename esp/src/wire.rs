//! Zero-copy views of the headers ESP touches: IPv4, IPv6, UDP, and the
//! UDP-encapsulation demux of RFC 3948 (ESP, IKE behind the non-ESP marker,
//! NAT keepalives).
//!
//! Every parser here takes untrusted bytes and returns [`Error::Malformed`]
//! or [`Error::ShortPacket`] rather than panicking.

use crate::Error;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;

/// IP protocol number of ESP.
pub const PROTO_ESP: u8 = 50;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// ESP next-header value of an IPv4 packet (IP-in-IP).
pub const PROTO_IPV4: u8 = 4;
/// ESP next-header value of an IPv6 packet.
pub const PROTO_IPV6: u8 = 41;
/// ESP next-header value of a dummy packet (RFC 4303 section 2.6).
pub const PROTO_NONE: u8 = 59;
/// UDP port of IKE before NAT detection.
pub const IKE_PORT: u16 = 500;
/// UDP port of IKE and UDP-encapsulated ESP after NAT detection.
pub const NAT_T_PORT: u16 = 4500;
/// IPv4 header length without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HEADER_LEN: usize = 40;
/// UDP header length.
pub const UDP_HEADER_LEN: usize = 8;

/// The parts of an IP header that ESP and the SPD need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Protocol (IPv4) or next header (IPv6, the fixed header's).
    pub protocol: u8,
    /// Header length in octets (IPv4 with options; IPv6 fixed header).
    pub header_len: usize,
    /// Total packet length from the header's length field.
    pub total_len: usize,
    /// DSCP and ECN (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    /// Whether this IPv4 packet is a fragment (MF set or offset non-zero).
    pub fragment: bool,
}

impl IpHeader {
    /// Parses the IP header at the start of `packet`; its length fields must
    /// fit in `packet`. The IPv4 header checksum is not verified here: the
    /// kernel or the port driver that delivered the packet did that.
    pub fn parse(packet: &[u8]) -> Result<Self, Error> {
        match packet.first().map(|b| b >> 4) {
            Some(4) => Self::parse_v4(packet),
            Some(6) => Self::parse_v6(packet),
            Some(_) => Err(Error::Malformed("IP version")),
            None => Err(Error::ShortPacket),
        }
    }

    fn parse_v4(p: &[u8]) -> Result<Self, Error> {
        if p.len() < IPV4_HEADER_LEN {
            return Err(Error::ShortPacket);
        }
        let header_len = usize::from(p[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([p[2], p[3]]));
        if header_len < IPV4_HEADER_LEN || total_len < header_len || total_len > p.len() {
            return Err(Error::Malformed("IPv4"));
        }
        let frag = u16::from_be_bytes([p[6], p[7]]);
        Ok(Self {
            src: IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15])),
            dst: IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19])),
            protocol: p[9],
            header_len,
            total_len,
            tos: p[1],
            fragment: frag & 0x3fff != 0,
        })
    }

    fn parse_v6(p: &[u8]) -> Result<Self, Error> {
        if p.len() < IPV6_HEADER_LEN {
            return Err(Error::ShortPacket);
        }
        let total_len = IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([p[4], p[5]]));
        if total_len > p.len() {
            return Err(Error::Malformed("IPv6"));
        }
        let addr = |o: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[o..o + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        };
        Ok(Self {
            src: addr(8),
            dst: addr(24),
            protocol: p[6],
            header_len: IPV6_HEADER_LEN,
            total_len,
            tos: (p[0] << 4) | (p[1] >> 4),
            fragment: false,
        })
    }

    /// The transport payload's range within the packet.
    pub fn payload(&self) -> Range<usize> {
        self.header_len..self.total_len
    }
}

/// Source and destination ports of a TCP, UDP or SCTP packet's payload, or
/// `(0, 0)` when the protocol has none or the payload is too short (an
/// initial fragment of a port-carrying protocol always has them).
pub fn ports(protocol: u8, payload: &[u8]) -> (u16, u16) {
    match protocol {
        PROTO_TCP | PROTO_UDP | 132 if payload.len() >= 4 => {
            (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
        }
        _ => (0, 0),
    }
}

/// What a datagram received on UDP port 4500 carries (RFC 3948 section 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpEncapKind {
    /// A NAT-keepalive (one octet 0xFF): to be dropped silently.
    NatKeepalive,
    /// An IKE message behind the 4-octet non-ESP marker; the range excludes
    /// the marker.
    Ike(Range<usize>),
    /// An ESP packet (SPI is non-zero).
    Esp,
}

/// Classifies a UDP/4500 payload.
pub fn classify_udp_encap(payload: &[u8]) -> Result<UdpEncapKind, Error> {
    match payload {
        [0xff] => Ok(UdpEncapKind::NatKeepalive),
        [0, 0, 0, 0, ..] => Ok(UdpEncapKind::Ike(4..payload.len())),
        p if p.len() >= 8 => Ok(UdpEncapKind::Esp),
        _ => Err(Error::ShortPacket),
    }
}

/// The ones'-complement sum of `data` (big-endian 16-bit words, a
/// trailing odd octet padded with zero) added to `acc` (RFC 1071), folded
/// to 16 bits.
pub fn checksum_add(acc: u32, data: &[u8]) -> u32 {
    // Ones'-complement addition does not care about byte order (RFC 1071
    // section 2(B)): add native-order 32-bit words in four lanes (which
    // the compiler vectorizes), fold, and swap into network order once.
    let mut lanes = [0u64; 4];
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        for (lane, w) in lanes.iter_mut().zip(c.chunks_exact(4)) {
            *lane += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
    }
    let mut native: u64 = lanes.iter().map(|&l| u64::from(fold(l))).sum();
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        native += u64::from(u16::from_ne_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        native += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    u32::from(fold(u64::from(acc) + u64::from(u16::from_be(fold(native)))))
}

/// A ones'-complement sum folded to 16 bits, not complemented: what a
/// partial checksum (the pseudo-header's, left for offload) holds.
pub fn checksum_fold(acc: u32) -> u16 {
    fold(u64::from(acc))
}

/// Finishes a ones'-complement checksum.
pub fn checksum_finish(acc: u32) -> u16 {
    !checksum_fold(acc)
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // Folded to 16 bits above.
    acc as u16
}

/// Writes an IPv4 header (no options, DF clear, TTL 64) into `out[..20]`.
pub(crate) fn write_ipv4(
    out: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    total_len: u16,
    id: u16,
    tos: u8,
) {
    out[0] = 0x45;
    out[1] = tos;
    out[2..4].copy_from_slice(&total_len.to_be_bytes());
    out[4..6].copy_from_slice(&id.to_be_bytes());
    out[6..8].fill(0);
    out[8] = 64;
    out[9] = protocol;
    out[10..12].fill(0);
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    let c = checksum_finish(checksum_add(0, &out[..IPV4_HEADER_LEN]));
    out[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Writes an IPv6 fixed header (hop limit 64) into `out[..40]`.
pub(crate) fn write_ipv6(
    out: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload_len: u16,
    tclass: u8,
) {
    out[0] = 0x60 | (tclass >> 4);
    out[1] = tclass << 4;
    out[2..4].fill(0);
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out[6] = next;
    out[7] = 64;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
}

/// Rewrites the protocol and length fields of the IP header at the start of
/// `packet` (used when transport mode inserts or removes ESP).
pub(crate) fn rewrite_ip(packet: &mut [u8], protocol: u8, total_len: usize) -> Result<(), Error> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let len = u16::try_from(total_len).map_err(|_| Error::Malformed("IPv4 length"))?;
            let hl = usize::from(packet[0] & 0x0f) * 4;
            packet[9] = protocol;
            packet[2..4].copy_from_slice(&len.to_be_bytes());
            packet[10..12].fill(0);
            let c = checksum_finish(checksum_add(0, &packet[..hl]));
            packet[10..12].copy_from_slice(&c.to_be_bytes());
        }
        Some(6) => {
            let len = total_len
                .checked_sub(IPV6_HEADER_LEN)
                .and_then(|l| u16::try_from(l).ok())
                .ok_or(Error::Malformed("IPv6 length"))?;
            packet[6] = protocol;
            packet[4..6].copy_from_slice(&len.to_be_bytes());
        }
        _ => return Err(Error::Malformed("IP version")),
    }
    Ok(())
}

/// Writes a UDP header; the checksum is computed for IPv6 (where it is
/// mandatory) and left zero for IPv4 (RFC 3948 section 2.1).
pub(crate) fn write_udp(
    packet: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
) -> Result<(), Error> {
    let len = u16::try_from(packet.len()).map_err(|_| Error::NoRoom)?;
    packet[0..2].copy_from_slice(&sport.to_be_bytes());
    packet[2..4].copy_from_slice(&dport.to_be_bytes());
    packet[4..6].copy_from_slice(&len.to_be_bytes());
    packet[6..8].fill(0);
    if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
        let mut acc = checksum_add(0, &s.octets());
        acc = checksum_add(acc, &d.octets());
        acc = checksum_add(acc, &[0, 0, 0, 0, 0, 0, 0, PROTO_UDP]);
        acc += u32::from(len);
        acc = checksum_add(acc, packet);
        let c = match checksum_finish(acc) {
            0 => 0xffff,
            c => c,
        };
        packet[6..8].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6() {
        let mut v4 = [0u8; 28];
        write_ipv4(&mut v4, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), PROTO_UDP, 28, 7, 0xb8);
        let h = IpHeader::parse(&v4).expect("valid");
        assert_eq!(h.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((h.protocol, h.header_len, h.total_len, h.tos), (PROTO_UDP, 20, 28, 0xb8));
        assert_eq!(checksum_finish(checksum_add(0, &v4[..20])), 0, "header checksum verifies");

        let mut v6 = [0u8; 48];
        write_ipv6(&mut v6, Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED, PROTO_ESP, 8, 0x2e);
        let h = IpHeader::parse(&v6).expect("valid");
        assert_eq!((h.protocol, h.total_len, h.tos), (PROTO_ESP, 48, 0x2e));
    }

    #[test]
    fn rejects_truncated_and_inconsistent_headers() {
        assert_eq!(IpHeader::parse(&[]), Err(Error::ShortPacket));
        assert_eq!(IpHeader::parse(&[0x45; 19]), Err(Error::ShortPacket));
        let mut v4 = [0u8; 20];
        write_ipv4(&mut v4, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 6, 40, 0, 0);
        assert_eq!(IpHeader::parse(&v4), Err(Error::Malformed("IPv4")));
        v4[0] = 0x44; // IHL 16 octets
        assert!(IpHeader::parse(&v4).is_err());
        assert_eq!(IpHeader::parse(&[0x50; 40]), Err(Error::Malformed("IP version")));
    }

    #[test]
    fn sums_as_rfc_1071_does() {
        let naive = |d: &[u8]| {
            let mut s: u64 =
                d.chunks(2).map(|c| u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0))).sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u32
        };
        let data: Vec<u8> = (0..3000u32).map(|i| ((i * 7919 + 13) % 256) as u8).collect();
        for len in (0..100).chain([1399, 1400, 1401, 2999, 3000]) {
            assert_eq!(checksum_add(0, &data[..len]), naive(&data[..len]), "{len} octets");
            assert_eq!(
                checksum_fold(checksum_add(0xffff, &data[..len])),
                checksum_fold(naive(&data[..len]) + 0xffff)
            );
        }
        assert_eq!(checksum_add(0, &[0xff; 4096]), 0xffff);
    }

    #[test]
    fn checksum_accepts_any_accumulator() {
        assert_eq!(checksum_add(u32::MAX, &[0xff; 64]), checksum_add(0xffff, &[0xff; 64]));
        assert_eq!(checksum_finish(checksum_add(0, &[0x45, 0x00, 0x00, 0x1c])), !0x451c);
    }

    #[test]
    fn classifies_udp_encap_payloads() {
        assert_eq!(classify_udp_encap(&[0xff]), Ok(UdpEncapKind::NatKeepalive));
        assert_eq!(classify_udp_encap(&[0, 0, 0, 0, 1, 2]), Ok(UdpEncapKind::Ike(4..6)));
        assert_eq!(classify_udp_encap(&[1, 2, 3, 4, 0, 0, 0, 1]), Ok(UdpEncapKind::Esp));
        assert_eq!(classify_udp_encap(&[1, 2, 3]), Err(Error::ShortPacket));
    }
}
