//! Ethernet II framing: the 14-octet header, MAC address classes and the
//! multicast MACs that IP multicast maps to.

use core::net::{Ipv4Addr, Ipv6Addr};

/// A MAC address.
pub(crate) type Mac = [u8; 6];

/// Octets of an Ethernet header (destination, source, ethertype).
pub(crate) const HEADER_LEN: usize = 14;
/// The shortest frame on the wire without its FCS; shorter frames are
/// padded with zeros.
pub(crate) const MIN_FRAME: usize = 60;

/// Ethertype of IPv4.
pub(crate) const IPV4: u16 = 0x0800;
/// Ethertype of ARP.
pub(crate) const ARP: u16 = 0x0806;
/// Ethertype of IPv6.
pub(crate) const IPV6: u16 = 0x86dd;
/// Ethertype of the cluster's handover marks (IEEE 802 local experimental
/// ethertype 1).
pub(crate) const MARK: u16 = 0x88b5;

/// The broadcast MAC.
pub(crate) const BROADCAST: Mac = [0xff; 6];

/// A frame's destination, source, ethertype and payload; `None` for a
/// frame shorter than its header.
pub(crate) fn parse(frame: &[u8]) -> Option<(Mac, Mac, u16, &[u8])> {
    let (dst, rest) = frame.split_first_chunk::<6>()?;
    let (src, rest) = rest.split_first_chunk::<6>()?;
    let (ty, payload) = rest.split_first_chunk::<2>()?;
    Some((*dst, *src, u16::from_be_bytes(*ty), payload))
}

/// Whether `ethertype` is an 802.1Q or 802.1ad (QinQ) tag.
pub(crate) fn is_vlan_tag(ethertype: u16) -> bool {
    matches!(ethertype, 0x8100 | 0x88a8 | 0x9100)
}

/// Whether `mac` can name one station: the group bit clear and not all zero.
pub(crate) fn is_unicast(mac: Mac) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

/// Whether `mac` is an IPv6 multicast MAC (33:33:xx:xx:xx:xx, RFC 2464).
pub(crate) fn is_ipv6_multicast(mac: Mac) -> bool {
    mac[..2] == [0x33, 0x33]
}

/// The MAC an IPv4 multicast group maps to (RFC 1112: 01:00:5e and the low
/// 23 bits).
pub(crate) fn ipv4_multicast(group: Ipv4Addr) -> Mac {
    let [_, b, c, d] = group.octets();
    [0x01, 0x00, 0x5e, b & 0x7f, c, d]
}

/// The MAC an IPv6 multicast group maps to (RFC 2464: 33:33 and the low 32
/// bits).
pub(crate) fn ipv6_multicast(group: Ipv6Addr) -> Mac {
    let [.., a, b, c, d] = group.octets();
    [0x33, 0x33, a, b, c, d]
}

/// Writes the header of a frame from `src` to `dst` into `out` (14 octets).
pub(crate) fn write_header(out: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    out[..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// A frame from `src` to `dst` carrying `payload`, padded to the Ethernet
/// minimum: one allocation and one copy of the payload.
pub(crate) fn frame(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + payload.len();
    let mut f = Vec::with_capacity(len.max(MIN_FRAME));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < MIN_FRAME {
        f.resize(MIN_FRAME, 0);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_multicast_groups_to_macs() {
        assert_eq!(ipv4_multicast(Ipv4Addr::new(239, 129, 2, 3)), [1, 0, 0x5e, 1, 2, 3]);
        let g: Ipv6Addr = "ff02::1:ff00:1234".parse().expect("address");
        assert_eq!(ipv6_multicast(g), [0x33, 0x33, 0xff, 0, 0x12, 0x34]);
        assert!(is_ipv6_multicast(ipv6_multicast(g)));
        assert!(!is_unicast(BROADCAST) && !is_unicast([0; 6]) && !is_unicast([1, 0, 0x5e, 0, 0, 1]));
        assert!(is_unicast([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn pads_short_frames_and_rejects_short_headers() {
        let f = frame(BROADCAST, [2, 0, 0, 0, 0, 1], ARP, &[9; 28]);
        assert_eq!(f.len(), 60);
        assert_eq!(parse(&f), Some((BROADCAST, [2, 0, 0, 0, 0, 1], ARP, &f[14..])));
        assert_eq!(frame(BROADCAST, BROADCAST, IPV4, &[0; 100]).len(), 114);
        assert_eq!(parse(&f[..13]), None);
    }
}
