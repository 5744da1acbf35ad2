//! The outer IP packets of a node's external side: what an arriving packet
//! carries (IKE, ESP, a NAT-keepalive) and the UDP packets IKE sends.

use crate::Error;
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use tandem_esp::wire::{
    IKE_PORT, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpHeader, NAT_T_PORT, PROTO_ESP, PROTO_UDP, UDP_HEADER_LEN,
    UdpEncapKind, checksum_add, checksum_finish, classify_udp_encap,
};

/// The non-ESP marker before IKE messages on port 4500 (RFC 3948).
const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// What an external packet carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outer {
    /// An IKE message at `body` within the packet.
    Ike {
        /// Our address and port (the packet's destination).
        local: SocketAddr,
        /// The peer's address and port.
        remote: SocketAddr,
        /// The IKE message, marker excluded.
        body: Range<usize>,
    },
    /// An ESP packet (SPI to ICV) at `esp`, raw or UDP-encapsulated.
    Esp {
        /// The SPI.
        spi: u32,
        /// The ESP packet within the packet.
        esp: Range<usize>,
    },
    /// A NAT-keepalive: nothing to do.
    Keepalive,
}

/// Classifies the IP packet `p` addressed to `vip`.
pub fn classify(p: &[u8], vip: IpAddr) -> Result<Outer, Error> {
    let h = IpHeader::parse(p).map_err(|_| Error::Packet("not an IP packet"))?;
    if h.dst != vip {
        return Err(Error::Packet("not addressed to the cluster"));
    }
    if h.fragment {
        return Err(Error::Packet("fragmented outer packet"));
    }
    let payload = h.payload();
    match h.protocol {
        PROTO_ESP => esp_at(p, payload),
        PROTO_UDP => {
            let u = &p[payload.clone()];
            if u.len() < UDP_HEADER_LEN {
                return Err(Error::Packet("short UDP header"));
            }
            let sport = u16::from_be_bytes([u[0], u[1]]);
            let dport = u16::from_be_bytes([u[2], u[3]]);
            let len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            if len < UDP_HEADER_LEN || len > u.len() {
                return Err(Error::Packet("bad UDP length"));
            }
            let body = payload.start + UDP_HEADER_LEN..payload.start + len;
            let local = SocketAddr::new(h.dst, dport);
            let remote = SocketAddr::new(h.src, sport);
            match dport {
                IKE_PORT => Ok(Outer::Ike { local, remote, body }),
                NAT_T_PORT => match classify_udp_encap(&p[body.clone()]) {
                    Ok(UdpEncapKind::NatKeepalive) => Ok(Outer::Keepalive),
                    Ok(UdpEncapKind::Ike(r)) => {
                        Ok(Outer::Ike { local, remote, body: body.start + r.start..body.start + r.end })
                    }
                    Ok(UdpEncapKind::Esp) => esp_at(p, body),
                    Err(_) => Err(Error::Packet("short UDP/4500 payload")),
                },
                _ => Err(Error::Packet("UDP port is neither 500 nor 4500")),
            }
        }
        _ => Err(Error::Packet("neither ESP nor UDP")),
    }
}

fn esp_at(p: &[u8], esp: Range<usize>) -> Result<Outer, Error> {
    match p.get(esp.clone()) {
        Some([a, b, c, d, _, _, _, _, ..]) => {
            Ok(Outer::Esp { spi: u32::from_be_bytes([*a, *b, *c, *d]), esp })
        }
        _ => Err(Error::Packet("short ESP packet")),
    }
}

/// The IKE message `data` as a UDP packet from `local` to `remote`, with
/// the non-ESP marker when either port is 4500 (the NAT-T flow). `None` for mixed
/// address families or a message too large for one IP packet.
pub fn ike_packet(local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let natt = local.port() == NAT_T_PORT || remote.port() == NAT_T_PORT;
    let marker: &[u8] = if natt { &NON_ESP_MARKER } else { &[] };
    udp_packet(local, remote, &[marker, data])
}

/// A UDP packet from `local` to `remote` carrying `parts` in order, with
/// its checksum (required for IPv6). `None` for mixed families or an
/// oversized payload.
pub fn udp_packet(local: SocketAddr, remote: SocketAddr, parts: &[&[u8]]) -> Option<Vec<u8>> {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let udp_len = u16::try_from(UDP_HEADER_LEN + body).ok()?;
    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&local.port().to_be_bytes());
    udp.extend_from_slice(&remote.port().to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    for p in parts {
        udp.extend_from_slice(p);
    }
    let (src, dst) = (local.ip(), remote.ip());
    let mut sum = checksum_add(0, &udp);
    let mut out = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(IPV4_HEADER_LEN + udp.len()).ok()?;
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, PROTO_UDP, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let hsum = checksum_finish(checksum_add(0, &h));
            h[10..12].copy_from_slice(&hsum.to_be_bytes());
            sum = checksum_add(sum, &s.octets());
            sum = checksum_add(sum, &d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&udp_len.to_be_bytes());
            h.extend_from_slice(&[PROTO_UDP, 64]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            debug_assert_eq!(h.len(), IPV6_HEADER_LEN);
            sum = checksum_add(sum, &s.octets());
            sum = checksum_add(sum, &d.octets());
            h
        }
        _ => return None,
    };
    sum = checksum_add(sum, &[0, PROTO_UDP]);
    sum = checksum_add(sum, &udp_len.to_be_bytes());
    let c = match checksum_finish(sum) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&udp);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn ike_on_both_ports_round_trips() {
        for (local, remote) in
            [("192.0.2.1:500", "198.51.100.7:500"), ("[2001:db8::1]:4500", "[2001:db8::7]:4321")]
        {
            let (local, remote) = (sa(local), sa(remote));
            // Built as the peer would send it to us.
            let p = ike_packet(remote, local, b"ike message").expect("fits");
            match classify(&p, local.ip()) {
                Ok(Outer::Ike { local: l, remote: r, body }) => {
                    assert_eq!((l, r, &p[body]), (local, remote, &b"ike message"[..]));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn esp_keepalives_and_strangers() {
        let (vip, peer) = (sa("192.0.2.1:4500"), sa("198.51.100.7:4500"));
        let esp = udp_packet(peer, vip, &[&[0xc0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3]]).expect("fits");
        assert!(matches!(classify(&esp, vip.ip()), Ok(Outer::Esp { spi: 0xc000_0001, .. })));
        let ka = udp_packet(peer, vip, &[&[0xff]]).expect("fits");
        assert_eq!(classify(&ka, vip.ip()), Ok(Outer::Keepalive));
        assert!(classify(&ka, "192.0.2.2".parse().expect("ip")).is_err(), "another address");
        let other = udp_packet(peer, sa("192.0.2.1:53"), &[b"dns"]).expect("fits");
        assert!(classify(&other, vip.ip()).is_err());
        for n in 0..esp.len() {
            let _ = classify(&esp[..n], vip.ip());
        }
    }
}
