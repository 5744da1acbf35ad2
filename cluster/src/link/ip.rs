//! The IP layer as far as the link needs it: the length checks that trim a
//! frame's payload to its packet, and the headers and checksums of the
//! packets the link writes itself (ARP aside: ND, echo replies, ICMP
//! errors).

use super::Malformed;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tandem_esp::wire::{IPV4_HEADER_LEN, IpHeader, checksum_add, checksum_finish};

/// IP protocol number of ICMP.
pub(crate) const PROTO_ICMP: u8 = 1;
/// IPv6 next header of ICMPv6.
pub(crate) const PROTO_ICMPV6: u8 = 58;
/// TTL / hop limit of the packets the link originates (ND aside).
pub(crate) const TTL: u8 = 64;

/// The header of the IP packet at the start of `p` and the packet itself,
/// trimmed to the header's length (Ethernet padding dropped).
pub(crate) fn parse(p: &[u8]) -> Result<(IpHeader, &[u8]), Malformed> {
    let h = IpHeader::parse(p).map_err(|_| Malformed)?;
    let packet = p.get(..h.total_len).ok_or(Malformed)?;
    Ok((h, packet))
}

/// Whether the IPv4 header of `packet` (parsed as `h`) has a valid
/// checksum.
pub(crate) fn ipv4_checksum_ok(h: &IpHeader, packet: &[u8]) -> bool {
    packet.get(..h.header_len).is_some_and(|hdr| checksum_finish(checksum_add(0, hdr)) == 0)
}

/// The IPv6 pseudo-header sum (RFC 8200 section 8.1) of an ICMPv6 message
/// of `len` octets.
fn icmpv6_pseudo(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u32 {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let mut sum = checksum_add(0, &src.octets());
    sum = checksum_add(sum, &dst.octets());
    sum = checksum_add(sum, &len.to_be_bytes());
    checksum_add(sum, &[0, 0, 0, PROTO_ICMPV6])
}

/// Whether the ICMPv6 message `msg` from `src` to `dst` has a valid
/// checksum.
pub(crate) fn icmpv6_checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> bool {
    checksum_finish(checksum_add(icmpv6_pseudo(src, dst, msg.len()), msg)) == 0
}

/// Whether the ICMP message `msg` has a valid checksum.
pub(crate) fn icmpv4_checksum_ok(msg: &[u8]) -> bool {
    checksum_finish(checksum_add(0, msg)) == 0
}

/// The ICMP message `msg` (checksum field ignored) in an IPv4 packet from
/// `src` to `dst`, DF clear, with identification `id`; `None` if too large.
pub(crate) fn icmpv4(src: Ipv4Addr, dst: Ipv4Addr, id: u16, mut msg: Vec<u8>) -> Option<Vec<u8>> {
    msg.get_mut(2..4)?.fill(0);
    let c = checksum_finish(checksum_add(0, &msg));
    msg.get_mut(2..4)?.copy_from_slice(&c.to_be_bytes());
    let [t0, t1] = u16::try_from(IPV4_HEADER_LEN + msg.len()).ok()?.to_be_bytes();
    let [i0, i1] = id.to_be_bytes();
    let mut h = [0; IPV4_HEADER_LEN];
    h[..12].copy_from_slice(&[0x45, 0, t0, t1, i0, i1, 0, 0, TTL, PROTO_ICMP, 0, 0]);
    h[12..16].copy_from_slice(&src.octets());
    h[16..].copy_from_slice(&dst.octets());
    let c = checksum_finish(checksum_add(0, &h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut p = Vec::with_capacity(IPV4_HEADER_LEN + msg.len());
    p.extend_from_slice(&h);
    p.extend_from_slice(&msg);
    Some(p)
}

/// The ICMPv6 message `msg` (checksum field ignored) in an IPv6 packet from
/// `src` to `dst` with hop limit `hops`; `None` if too large.
pub(crate) fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, mut msg: Vec<u8>) -> Option<Vec<u8>> {
    msg.get_mut(2..4)?.fill(0);
    let c = checksum_finish(checksum_add(icmpv6_pseudo(src, dst, msg.len()), &msg));
    msg.get_mut(2..4)?.copy_from_slice(&c.to_be_bytes());
    let [l0, l1] = u16::try_from(msg.len()).ok()?.to_be_bytes();
    let mut p = Vec::with_capacity(40 + msg.len());
    p.extend_from_slice(&[0x60, 0, 0, 0, l0, l1, PROTO_ICMPV6, hops]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&msg);
    Some(p)
}

/// Whether `addr` can be the source of a packet the link answers or
/// reports on: one station, not this port's own address.
pub(crate) fn is_unicast_peer(addr: IpAddr, vip: IpAddr) -> bool {
    let special = match addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    };
    !special && addr != vip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_checksummed_headers() {
        let (s, d) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
        let p = icmpv4(s, d, 7, vec![8, 0, 0xaa, 0xbb, 1, 2, 3]).expect("fits");
        let (h, packet) = parse(&p).expect("parses");
        assert_eq!((h.src, h.dst, h.protocol, h.total_len), (s.into(), d.into(), PROTO_ICMP, 27));
        assert!(ipv4_checksum_ok(&h, packet) && icmpv4_checksum_ok(&p[20..]));
        let (s, d): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().expect("a"), "fe80::7".parse().expect("a"));
        let p = icmpv6(s, d, 255, vec![128, 0, 1, 1, 0, 1, 0, 1, 9]).expect("fits");
        let (h, _) = parse(&p).expect("parses");
        assert_eq!((h.protocol, h.total_len, p[7]), (PROTO_ICMPV6, 49, 255));
        assert!(icmpv6_checksum_ok(s, d, &p[40..]));
        let mut bad = p[40..].to_vec();
        bad[8] ^= 1;
        assert!(!icmpv6_checksum_ok(s, d, &bad));
        assert_eq!(icmpv6(s, d, 64, vec![128]), None, "shorter than an ICMPv6 header");
    }
}
