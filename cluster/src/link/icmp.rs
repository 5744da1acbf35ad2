//! The ICMP the link speaks for its VIP: echo replies, and the "too big"
//! errors (IPv4 fragmentation needed, RFC 792 and RFC 1191; ICMPv6 packet
//! too big, RFC 4443) that drive path MTU discovery for traffic the node
//! cannot forward whole.

use super::ip::{self, PROTO_ICMP, PROTO_ICMPV6, TTL};
use core::net::IpAddr;
use std::time::{Duration, Instant};
use tandem_esp::wire::IpHeader;

/// ICMP echo request.
pub(crate) const ECHO_REQUEST: u8 = 8;
/// ICMPv6 echo request.
pub(crate) const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY: u8 = 0;
const ECHO_REPLY_V6: u8 = 129;
const UNREACHABLE: u8 = 3;
const FRAG_NEEDED: u8 = 4;
const TOO_BIG_V6: u8 = 2;
/// IPv4 flag "don't fragment".
const DF: u8 = 0x40;
/// The smallest MTU an IPv4 link may have (RFC 791).
const MIN_MTU_V4: u16 = 68;
/// The smallest MTU an IPv6 link may have (RFC 8200), and the size ICMPv6
/// errors must fit in (RFC 4443 section 2.4 (c)).
const MIN_MTU_V6: u16 = 1280;
/// Octets of the original datagram's data an IPv4 error quotes after its
/// header (RFC 792).
const QUOTE_V4: usize = 8;
/// "Too big" errors per second at most (RFC 1812 section 4.3.2.8, RFC 4443
/// section 2.4 (f)).
const TOO_BIG_PER_SECOND: u32 = 100;

/// Whether the ICMP message `msg` is a well-formed echo request: code 0, a
/// whole header and a valid checksum (for ICMPv6, with the pseudo-header
/// of `src` and `dst`).
pub(crate) fn echo_request_ok(src: IpAddr, dst: IpAddr, msg: &[u8]) -> bool {
    let sum_ok = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ip::icmpv4_checksum_ok(msg),
        (IpAddr::V6(s), IpAddr::V6(d)) => ip::icmpv6_checksum_ok(s, d, msg),
        _ => false,
    };
    msg.len() >= 8 && msg.get(1) == Some(&0) && sum_ok
}

/// The reply from `vip` to the echo request `msg` that `peer` sent; `id`
/// is the IPv4 identification.
pub(crate) fn echo_reply(vip: IpAddr, peer: IpAddr, msg: &[u8], id: u16) -> Option<Vec<u8>> {
    let body = msg.get(4..)?;
    let reply = |ty: u8| [&[ty, 0, 0, 0][..], body].concat();
    match (vip, peer) {
        (IpAddr::V4(v), IpAddr::V4(p)) => ip::icmpv4(v, p, id, reply(ECHO_REPLY)),
        (IpAddr::V6(v), IpAddr::V6(p)) => ip::icmpv6(v, p, TTL, reply(ECHO_REPLY_V6)),
        _ => None,
    }
}

/// The "too big" error from `vip` about `packet`, for a next-hop MTU of
/// `mtu` (raised to the family's minimum); `None` where none may be sent:
/// another family than the VIP's, a source that is not one remote station,
/// an ICMP error, an IPv4 packet without DF, a non-initial fragment or one
/// to a broadcast or multicast address. `id` is the IPv4 identification.
pub(crate) fn too_big(vip: IpAddr, packet: &[u8], mtu: u16, id: u16) -> Option<Vec<u8>> {
    let (h, packet) = ip::parse(packet).ok()?;
    if !ip::is_unicast_peer(h.src, vip) {
        return None;
    }
    match (vip, h.src, h.dst) {
        (IpAddr::V4(v), IpAddr::V4(src), IpAddr::V4(dst)) => {
            let offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
            let df = packet.get(6)? & DF != 0;
            let error = h.protocol == PROTO_ICMP && is_icmpv4_error(*packet.get(h.header_len)?);
            if !df || offset != 0 || error || dst.is_broadcast() || dst.is_multicast() {
                return None;
            }
            let quote = packet.get(..packet.len().min(h.header_len + QUOTE_V4))?;
            let [m0, m1] = mtu.max(MIN_MTU_V4).to_be_bytes();
            let msg = [&[UNREACHABLE, FRAG_NEEDED, 0, 0, 0, 0, m0, m1][..], quote].concat();
            ip::icmpv4(v, src, id, msg)
        }
        (IpAddr::V6(v), IpAddr::V6(src), IpAddr::V6(_)) => {
            let (next, at) = upper_layer(&h, packet)?;
            if next == PROTO_ICMPV6 && *packet.get(at)? < ECHO_REQUEST_V6 {
                return None;
            }
            let room = usize::from(MIN_MTU_V6) - 40 - 8;
            let quote = packet.get(..packet.len().min(room))?;
            let mtu = u32::from(mtu.max(MIN_MTU_V6)).to_be_bytes();
            let msg = [&[TOO_BIG_V6, 0, 0, 0][..], &mtu, quote].concat();
            ip::icmpv6(v, src, TTL, msg)
        }
        _ => None,
    }
}

/// ICMP types that report errors (RFC 1812 section 4.3.2.7: no error
/// about an error).
fn is_icmpv4_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// The upper-layer protocol of an IPv6 packet and its offset, past the
/// hop-by-hop, routing, destination options, fragment and AH headers;
/// `None` if they do not parse, run too long, or for a non-initial
/// fragment (its upper layer is unknown).
fn upper_layer(h: &IpHeader, packet: &[u8]) -> Option<(u8, usize)> {
    let (mut next, mut at) = (h.protocol, h.header_len);
    for _ in 0..8 {
        let len = match next {
            0 | 43 | 60 => (usize::from(*packet.get(at + 1)?) + 1) * 8,
            44 if u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]) & 0xfff8 != 0 => {
                return None;
            }
            44 => 8,
            51 => (usize::from(*packet.get(at + 1)?) + 2) * 4,
            _ => return Some((next, at)),
        };
        next = *packet.get(at)?;
        at += len;
    }
    None
}

/// A limit of [`TOO_BIG_PER_SECOND`] per one-second window.
#[derive(Debug, Default)]
pub(crate) struct RateLimit {
    window: Option<Instant>,
    count: u32,
}

impl RateLimit {
    /// Whether one more may go at `now`; counts it if so.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.window.is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.count = 0;
        }
        let allowed = self.count < TOO_BIG_PER_SECOND;
        if allowed {
            self.count += 1;
        }
        allowed
    }
}
