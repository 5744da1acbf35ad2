//! Received frames: the Ethernet filter, then ARP, ND, ICMP echo to the
//! VIP, and the IP packets for the node.

use super::ether::{self, Mac};
use super::nd::{self, Nd};
use super::{Link, Malformed, Received, arp, icmp, ip};
use core::net::{IpAddr, Ipv6Addr};
use std::time::Instant;
use tandem_esp::wire::IpHeader;

impl Link {
    /// What `frame` is, answering and learning on the way.
    pub(super) fn input<'a>(
        &mut self,
        now: Instant,
        frame: &'a [u8],
        owns: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Received<'a>, Malformed> {
        let (dst, src, ethertype, payload) = ether::parse(frame).ok_or(Malformed)?;
        // AF_PACKET shows us our own frames too; the cluster MAC is never a source.
        if src == self.cfg.own_mac || src == self.cfg.cluster_mac {
            return Ok(Received::Ignored);
        }
        if !ether::is_unicast(src) {
            return Err(Malformed);
        }
        if ether::is_vlan_tag(ethertype) {
            self.stats.tagged += 1;
            return Ok(Received::Ignored);
        }
        let to_us = dst == self.cfg.cluster_mac || dst == self.cfg.own_mac;
        match ethertype {
            ether::ARP if to_us || dst == ether::BROADCAST => self.arp(now, payload),
            ether::IPV4 if to_us => self.ipv4(now, src, payload, owns),
            ether::IPV6 if to_us || ether::is_ipv6_multicast(dst) => {
                self.ipv6(now, src, to_us, payload, owns)
            }
            ether::MARK if dst == self.cfg.cluster_mac => Ok(Received::Mark(payload)),
            _ => Ok(Received::Ignored),
        }
    }

    /// An ARP packet: answer a request for the VIP, learn the sender.
    fn arp(&mut self, now: Instant, payload: &[u8]) -> Result<Received<'static>, Malformed> {
        let IpAddr::V4(vip) = self.cfg.vip else { return Ok(Received::Ignored) };
        let a = arp::Arp::parse(payload)?;
        if a.sender_ip == vip {
            // Another node's request names the cluster MAC; anyone else
            // claims our address.
            if a.sender_mac != self.cfg.cluster_mac {
                self.stats.vip_conflicts += 1;
            }
            return Ok(Received::Ignored);
        }
        let learned = self.learn(now, IpAddr::V4(a.sender_ip), a.sender_mac, true);
        if a.op == arp::REQUEST
            && a.target_ip == vip
            && ether::is_unicast(a.sender_mac)
            && a.sender_mac != self.cfg.cluster_mac
        {
            let reply = arp::Arp {
                op: arp::REPLY,
                sender_mac: self.cfg.cluster_mac,
                sender_ip: vip,
                target_mac: a.sender_mac,
                target_ip: a.sender_ip,
            };
            self.stats.arp_answered += 1;
            self.push(a.sender_mac, ether::ARP, &reply.emit());
            return Ok(Received::Handled);
        }
        Ok(if learned { Received::Handled } else { Received::Ignored })
    }

    /// An IPv4 packet: echo to the VIP is answered here, the rest goes to
    /// the node; an on-link sender is learned.
    fn ipv4<'a>(
        &mut self,
        now: Instant,
        src: Mac,
        payload: &'a [u8],
        owns: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Received<'a>, Malformed> {
        let (h, packet) = ip::parse(payload)?;
        if !h.src.is_ipv4() || !ip::ipv4_checksum_ok(&h, packet) {
            return Err(Malformed);
        }
        self.learn(now, h.src, src, true);
        let msg = packet.get(h.header_len..).unwrap_or_default();
        if h.dst == self.cfg.vip
            && h.protocol == ip::PROTO_ICMP
            && !h.fragment
            && msg.first() == Some(&icmp::ECHO_REQUEST)
        {
            return self.echo(now, &h, msg, owns);
        }
        Ok(Received::Ip(packet))
    }

    /// An IPv6 packet: ND is handled here (also when multicast), echo to
    /// the VIP is answered here, the rest of what is addressed to us goes
    /// to the node; an on-link sender is learned.
    fn ipv6<'a>(
        &mut self,
        now: Instant,
        src: Mac,
        to_us: bool,
        payload: &'a [u8],
        owns: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Received<'a>, Malformed> {
        let (h, packet) = ip::parse(payload)?;
        let (IpAddr::V6(s), IpAddr::V6(d)) = (h.src, h.dst) else { return Err(Malformed) };
        let msg = packet.get(h.header_len..).unwrap_or_default();
        let icmp_type = if h.protocol == ip::PROTO_ICMPV6 { msg.first().copied() } else { None };
        if let Some(nd::SOLICIT | nd::ADVERT) = icmp_type {
            let hops = packet.get(7).copied().unwrap_or_default();
            return Ok(self.nd(now, s, src, nd::parse(s, d, hops, msg)?));
        }
        if !to_us {
            return Ok(Received::Ignored);
        }
        self.learn(now, h.src, src, true);
        if h.dst == self.cfg.vip && icmp_type == Some(icmp::ECHO_REQUEST_V6) {
            return self.echo(now, &h, msg, owns);
        }
        Ok(Received::Ip(packet))
    }

    /// A validated solicitation or advertisement from `src` (at `mac`).
    fn nd(&mut self, now: Instant, src: Ipv6Addr, mac: Mac, m: Nd) -> Received<'static> {
        let IpAddr::V6(vip) = self.cfg.vip else { return Received::Ignored };
        let cluster = self.cfg.cluster_mac;
        match m {
            Nd::Solicit { source_mac, .. } if src == vip => {
                if source_mac.is_some_and(|m| m != cluster) {
                    self.stats.vip_conflicts += 1;
                }
                Received::Ignored
            }
            Nd::Solicit { target, source_mac } => {
                let learned = source_mac.is_some_and(|m| self.learn(now, IpAddr::V6(src), m, true));
                if target != vip {
                    return if learned { Received::Handled } else { Received::Ignored };
                }
                // Duplicate address detection for the VIP is answered to
                // all nodes, unsolicited (RFC 4861 section 7.2.4).
                let (dst, dst_mac, solicited) = if src.is_unspecified() {
                    (nd::ALL_NODES, ether::ipv6_multicast(nd::ALL_NODES), false)
                } else {
                    (src, source_mac.filter(|&m| ether::is_unicast(m)).unwrap_or(mac), true)
                };
                let Some(na) = nd::advert(vip, dst, solicited, cluster) else { return Received::Ignored };
                self.stats.nd_answered += 1;
                self.push(dst_mac, ether::IPV6, &na);
                Received::Handled
            }
            Nd::Advert { target, target_mac, .. } if target == vip => {
                if target_mac.is_some_and(|m| m != cluster) {
                    self.stats.vip_conflicts += 1;
                }
                Received::Ignored
            }
            Nd::Advert { target, overrides, target_mac } => match target_mac {
                Some(m) if self.learn(now, IpAddr::V6(target), m, overrides) => Received::Handled,
                _ => Received::Ignored,
            },
        }
    }

    /// An echo request `msg` to the VIP in the packet `h`: answered if this
    /// node owns the sender.
    fn echo(
        &mut self,
        now: Instant,
        h: &IpHeader,
        msg: &[u8],
        owns: &dyn Fn(IpAddr) -> bool,
    ) -> Result<Received<'static>, Malformed> {
        if !icmp::echo_request_ok(h.src, h.dst, msg) {
            return Err(Malformed);
        }
        if !ip::is_unicast_peer(h.src, self.cfg.vip) {
            return Ok(Received::Ignored);
        }
        if !owns(h.src) {
            self.stats.echo_left += 1;
            return Ok(Received::Handled);
        }
        let Some(reply) = icmp::echo_reply(self.cfg.vip, h.src, msg, self.ip_id) else {
            return Ok(Received::Ignored);
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        self.stats.echo_answered += 1;
        self.send_ip(now, &reply);
        Ok(Received::Handled)
    }
}
