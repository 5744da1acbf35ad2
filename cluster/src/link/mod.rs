//! One port of a cluster node, sans-IO: the Ethernet frames of one
//! interface in and out, with ARP, IPv6 Neighbor Discovery and ICMP echo
//! for the port's VIP answered here and the IP packets for the node handed
//! up.
//!
//! Every node receives every frame sent to the port's cluster MAC (a
//! multicast MAC, the CLUSTERIP way, or a unicast MAC that is never a
//! source, which switches flood). So the VIP resolves to the cluster MAC:
//! every node answers ARP and ND for it with that MAC (the answers are
//! identical), and the requests a node sends name the cluster MAC as their
//! sender, so the answers reach, and teach, every node. ICMP echo to the
//! VIP is answered by the one node that owns the sender's segment. Frames
//! go out with the interface's own MAC as their source, never the cluster
//! MAC, so switches never learn the cluster MAC on one port.
//!
//! The neighbour table holds 4096 entries (the least recently confirmed is
//! evicted first), of which 256 at most are next hops being resolved, each
//! with a queue of 16 packets.
//!
//! A [`Link`] serves one address family, its VIP's. Drive it like the other
//! engines: feed every frame read from the interface to
//! [`Link::handle_frame`] (it returns the IP packets for the node), hand
//! every packet the node sends out of this port to [`Link::send_ip`], call
//! [`Link::handle_timeout`] at [`Link::poll_timeout`], and after each of
//! those write every frame [`Link::poll_frame`] gives.

mod arp;
mod ether;
mod icmp;
mod input;
mod ip;
mod nd;
mod neighbours;

use core::net::{IpAddr, Ipv4Addr};
use core::ops::Range;
use ether::Mac;
use neighbours::{Neighbours, Next};
use std::collections::VecDeque;
use std::time::Instant;

/// Neighbour entries at most.
const NEIGHBOURS: usize = 4096;
/// Unresolved next hops (each with its queue) at most.
const PENDING: usize = 256;

/// An input that does not parse: the frame is dropped and counted.
#[derive(Debug, PartialEq, Eq)]
struct Malformed;

/// How a port is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// The interface's own MAC: the source of every frame sent.
    pub own_mac: [u8; 6],
    /// The MAC all nodes receive: multicast (01:00:5e:..) by default, or a
    /// unicast MAC that is never a source.
    pub cluster_mac: [u8; 6],
    /// The virtual IP of this port.
    pub vip: IpAddr,
    /// The VIP's on-link prefix length (clamped to the family's width).
    pub prefix_len: u8,
    /// The next hop for destinations off that prefix (ignored unless a
    /// unicast address of the VIP's family); `None`: off-link destinations
    /// are unreachable (dropped, counted).
    pub gateway: Option<IpAddr>,
    /// The port's IP MTU: larger packets are dropped (default 1500).
    pub mtu: usize,
}

impl LinkConfig {
    /// A port without a gateway and with an MTU of 1500.
    pub fn new(own_mac: [u8; 6], cluster_mac: [u8; 6], vip: IpAddr, prefix_len: u8) -> Self {
        Self { own_mac, cluster_mac, vip, prefix_len, gateway: None, mtu: 1500 }
    }
}

/// What a received frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// An IP packet for the node: the frame from octet 14 (the Ethernet
    /// header's end; tagged frames are ignored), trimmed to the IP length
    /// so that padding is removed.
    Ip(&'a [u8]),
    /// ARP, ND or ICMP echo, answered or learned from here.
    Handled,
    /// A handover mark from another node to the cluster MAC (see
    /// [`Link::send_mark`]): the frame's payload, padding included.
    Mark(&'a [u8]),
    /// Not for this node, or malformed (counted).
    Ignored,
}

/// A port's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames received: `delivered + handled + ignored + malformed`.
    pub frames_in: u64,
    /// Frames whose IP packet went to the node.
    pub delivered: u64,
    /// Frames handled here.
    pub handled: u64,
    /// Frames not for this node (other MACs or ethertypes, our own frames).
    pub ignored: u64,
    /// Frames that do not parse (lengths, checksums, ND hop limit).
    pub malformed: u64,
    /// Of the ignored frames, those with an 802.1Q or 802.1ad tag.
    pub tagged: u64,
    /// Of the ignored frames, ARP or ND in which another station claims the
    /// VIP (gratuitous ARP, an advertisement with another MAC).
    pub vip_conflicts: u64,
    /// ARP requests for the VIP answered.
    pub arp_answered: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// Neighbor Solicitations for the VIP answered.
    pub nd_answered: u64,
    /// Neighbor Solicitations sent.
    pub nd_solicits: u64,
    /// Echo requests to the VIP answered (this node owns the sender).
    pub echo_answered: u64,
    /// Echo requests to the VIP left to the node owning the sender.
    pub echo_left: u64,
    /// Frames queued for writing.
    pub frames_out: u64,
    /// Packets queued while their next hop resolves.
    pub queued: u64,
    /// Packets dropped unresolved: queue full, too many unresolved next
    /// hops, or no answer after the retries.
    pub unresolved_drops: u64,
    /// Packets dropped for want of a route: off-link without a gateway,
    /// another family, or to the VIP itself.
    pub unreachable: u64,
    /// Packets dropped as larger than the MTU.
    pub oversize: u64,
    /// Packets from the node that do not parse as IP (dropped).
    pub invalid: u64,
    /// "Too big" errors sent.
    pub too_big_sent: u64,
    /// "Too big" errors not sent for the rate limit.
    pub too_big_limited: u64,
}

/// One port: see the [module docs](self) for how to drive it.
pub struct Link {
    cfg: LinkConfig,
    neighbours: Neighbours,
    out: VecDeque<Vec<u8>>,
    stats: LinkStats,
    /// IPv4 identification of the next packet this port originates.
    ip_id: u16,
    too_big: icmp::RateLimit,
}

/// Where an outgoing packet goes.
enum Route {
    /// Straight to this MAC (broadcast, multicast).
    Mac(Mac),
    /// To this on-link neighbour (the destination or the gateway).
    Via(IpAddr),
    /// Nowhere.
    Unreachable,
}

impl Link {
    /// A port with an empty neighbour table.
    pub fn new(cfg: LinkConfig) -> Self {
        let mut cfg = cfg;
        let width = if cfg.vip.is_ipv4() { 32 } else { 128 };
        cfg.prefix_len = cfg.prefix_len.min(width);
        cfg.gateway =
            cfg.gateway.filter(|&g| g.is_ipv4() == cfg.vip.is_ipv4() && ip::is_unicast_peer(g, cfg.vip));
        Self {
            cfg,
            neighbours: Neighbours::new(NEIGHBOURS, PENDING),
            out: VecDeque::new(),
            stats: LinkStats::default(),
            ip_id: 0,
            too_big: icmp::RateLimit::default(),
        }
    }

    /// One frame read from the interface. `owns(addr)` says whether this
    /// node serves the peer `addr` (owns its segment); it decides which
    /// node answers an echo request, so that exactly one does.
    #[must_use]
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        frame: &'a [u8],
        owns: &dyn Fn(IpAddr) -> bool,
    ) -> Received<'a> {
        self.stats.frames_in += 1;
        let r = self.input(now, frame, owns);
        let counter = match r {
            Ok(Received::Ip(_) | Received::Mark(_)) => &mut self.stats.delivered,
            Ok(Received::Handled) => &mut self.stats.handled,
            Ok(Received::Ignored) => &mut self.stats.ignored,
            Err(Malformed) => &mut self.stats.malformed,
        };
        *counter += 1;
        r.unwrap_or(Received::Ignored)
    }

    /// Sends the IP packet `packet` (either family; trimmed to its IP
    /// length) to its on-link destination or the gateway. If the next
    /// hop's MAC is unknown the packet is copied into its queue (16 at
    /// most; more are dropped) and a request goes out; it leaves when the
    /// answer comes.
    pub fn send_ip(&mut self, now: Instant, packet: &[u8]) {
        let Ok((h, packet)) = ip::parse(packet) else {
            self.stats.invalid += 1;
            return;
        };
        if packet.len() > self.cfg.mtu {
            self.stats.oversize += 1;
            return;
        }
        let hop = match self.route(h.dst) {
            Route::Mac(mac) => return self.push_ip(mac, packet),
            Route::Via(hop) => hop,
            Route::Unreachable => {
                self.stats.unreachable += 1;
                return;
            }
        };
        match self.neighbours.next_hop(now, hop, packet) {
            Next::Mac { mac, probe } => {
                self.push_ip(mac, packet);
                if probe {
                    self.request(hop);
                }
            }
            Next::Queued { request } => {
                self.stats.queued += 1;
                if request {
                    self.request(hop);
                }
            }
            Next::Dropped => self.stats.unresolved_drops += 1,
        }
    }

    /// [`Self::send_ip`] for the IP packet at `buf[packet]`, framed in
    /// place: when its next hop's MAC is known, the Ethernet header is
    /// written into the 14 octets before the packet (and a frame shorter
    /// than the Ethernet minimum is padded with zeros after it) and the
    /// frame's range in `buf` is returned, to be written as it is. Without
    /// that room, or when the next hop is unknown or unreachable, this
    /// does exactly what [`Self::send_ip`] does (queue a copy, ask, count)
    /// and returns `None`.
    pub fn send_ip_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Option<Range<usize>> {
        let Some(p) = buf.get(packet.clone()) else {
            self.stats.invalid += 1;
            return None;
        };
        let Ok((h, trimmed)) = ip::parse(p) else {
            self.stats.invalid += 1;
            return None;
        };
        let len = trimmed.len();
        let room = packet
            .start
            .checked_sub(ether::HEADER_LEN)
            .map(|start| (start, (packet.start + len).max(start + ether::MIN_FRAME)))
            .filter(|&(_, end)| end <= buf.len() && len <= self.cfg.mtu);
        let Some((start, end)) = room else {
            self.send_ip(now, &buf[packet]);
            return None;
        };
        let mac = match self.route(h.dst) {
            Route::Mac(mac) => mac,
            Route::Via(hop) => match self.neighbours.next_hop(now, hop, trimmed) {
                Next::Mac { mac, probe } => {
                    if probe {
                        self.request(hop);
                    }
                    mac
                }
                Next::Queued { request } => {
                    self.stats.queued += 1;
                    if request {
                        self.request(hop);
                    }
                    return None;
                }
                Next::Dropped => {
                    self.stats.unresolved_drops += 1;
                    return None;
                }
            },
            Route::Unreachable => {
                self.stats.unreachable += 1;
                return None;
            }
        };
        let ty = if trimmed.first().is_some_and(|b| b >> 4 == 6) { ether::IPV6 } else { ether::IPV4 };
        buf[packet.start + len..end].fill(0);
        ether::write_header(&mut buf[start..packet.start], mac, self.cfg.own_mac, ty);
        self.stats.frames_out += 1;
        Some(start..end)
    }

    /// Reports that `packet` (an IP packet that came in on this port) is
    /// too big for the next hop's `mtu`: an ICMP "fragmentation needed"
    /// (for IPv4 with DF set) or ICMPv6 "packet too big" from the VIP to
    /// the packet's source, quoting the IPv4 header and 8 octets, or as
    /// much of an IPv6 packet as fits in 1280 octets. None is sent about an
    /// ICMP error, a non-initial fragment, an IPv4 packet to a broadcast or
    /// multicast address, a packet from the VIP or from no single station,
    /// or one of the other family; at most 100 go per second (the rest are
    /// counted).
    pub fn too_big(&mut self, now: Instant, packet: &[u8], mtu: u16) {
        let Some(error) = icmp::too_big(self.cfg.vip, packet, mtu, self.ip_id) else { return };
        if !self.too_big.allow(now) {
            self.stats.too_big_limited += 1;
            return;
        }
        self.ip_id = self.ip_id.wrapping_add(1);
        self.stats.too_big_sent += 1;
        self.send_ip(now, &error);
    }

    /// Queues a handover mark (`crate::Output::Mark`) to every node: a
    /// frame to the cluster MAC.
    pub fn send_mark(&mut self, mark: &[u8]) {
        self.out.push_back(ether::frame(self.cfg.cluster_mac, self.cfg.own_mac, ether::MARK, mark));
        self.stats.frames_out += 1;
    }

    /// The next frame to write.
    #[must_use]
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.neighbours.poll_timeout()
    }

    /// Timers: requests repeated for unresolved next hops (and their
    /// queues dropped after the last), neighbour entries aged out.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut again = Vec::new();
        self.stats.unresolved_drops += self.neighbours.handle_timeout(now, &mut |ip| again.push(ip));
        for ip in again {
            self.request(ip);
        }
    }

    /// The port's counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// The resolved neighbours, by address.
    pub fn neighbours(&self) -> impl Iterator<Item = (IpAddr, [u8; 6])> {
        self.neighbours.iter()
    }

    /// Where a packet to `dst` goes.
    fn route(&self, dst: IpAddr) -> Route {
        match dst {
            IpAddr::V4(d) if d.is_broadcast() || self.is_subnet_broadcast(d) => Route::Mac(ether::BROADCAST),
            IpAddr::V4(d) if d.is_multicast() => Route::Mac(ether::ipv4_multicast(d)),
            IpAddr::V6(d) if d.is_multicast() => Route::Mac(ether::ipv6_multicast(d)),
            _ if self.on_link(dst) => Route::Via(dst),
            _ if dst.is_ipv4() != self.cfg.vip.is_ipv4() || !ip::is_unicast_peer(dst, self.cfg.vip) => {
                Route::Unreachable
            }
            _ => self.cfg.gateway.map_or(Route::Unreachable, Route::Via),
        }
    }

    /// Whether `a` is a station on this port's link: in the VIP's prefix
    /// (or IPv6 link-local) or the gateway, and one station other than the
    /// VIP.
    fn on_link(&self, a: IpAddr) -> bool {
        if !ip::is_unicast_peer(a, self.cfg.vip) {
            return false;
        }
        if Some(a) == self.cfg.gateway {
            return true;
        }
        let len = u32::from(self.cfg.prefix_len);
        match (self.cfg.vip, a) {
            (IpAddr::V4(v), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                let host = u32::from(a) & !mask;
                u32::from(v) & mask == u32::from(a) & mask
                    && self.host_mask().is_none_or(|all| host != 0 && host != all)
            }
            (IpAddr::V6(v), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                u128::from(v) & mask == u128::from(a) & mask || a.is_unicast_link_local()
            }
            _ => false,
        }
    }

    /// The host bits of the VIP's IPv4 subnet if it has network and
    /// broadcast addresses (/30 and wider; /31 and /32 have none, RFC
    /// 3021).
    fn host_mask(&self) -> Option<u32> {
        (self.cfg.vip.is_ipv4() && self.cfg.prefix_len <= 30).then(|| u32::MAX >> self.cfg.prefix_len)
    }

    /// Whether `a` is the broadcast address of the VIP's IPv4 subnet.
    fn is_subnet_broadcast(&self, a: Ipv4Addr) -> bool {
        let (IpAddr::V4(v), Some(host)) = (self.cfg.vip, self.host_mask()) else { return false };
        let (a, v) = (u32::from(a), u32::from(v));
        a & !host == v & !host && a & host == host
    }

    /// `ip` was seen at `mac`: learn it if it is an on-link station at a
    /// unicast MAC other than ours, and send what waited for it. Whether it
    /// was learned.
    fn learn(&mut self, now: Instant, ip: IpAddr, mac: Mac, overrides: bool) -> bool {
        let c = &self.cfg;
        if !self.on_link(ip) || !ether::is_unicast(mac) || mac == c.cluster_mac || mac == c.own_mac {
            return false;
        }
        let Some(queue) = self.neighbours.learn(now, ip, mac, overrides) else { return false };
        for p in queue {
            self.push_ip(mac, &p);
        }
        true
    }

    /// Asks for the MAC of `ip`: a broadcast ARP request, or a Neighbor
    /// Solicitation to its solicited-node address, naming the cluster MAC
    /// so that the answer reaches every node.
    fn request(&mut self, ip: IpAddr) {
        match (self.cfg.vip, ip) {
            (IpAddr::V4(vip), IpAddr::V4(target)) => {
                let a = arp::Arp {
                    op: arp::REQUEST,
                    sender_mac: self.cfg.cluster_mac,
                    sender_ip: vip,
                    target_mac: [0; 6],
                    target_ip: target,
                };
                self.stats.arp_requests += 1;
                self.push(ether::BROADCAST, ether::ARP, &a.emit());
            }
            (IpAddr::V6(vip), IpAddr::V6(target)) => {
                if let Some(ns) = nd::solicit(vip, target, self.cfg.cluster_mac) {
                    self.stats.nd_solicits += 1;
                    self.push(ether::ipv6_multicast(nd::solicited_node(target)), ether::IPV6, &ns);
                }
            }
            _ => {}
        }
    }

    /// Queues the IP packet `packet` in a frame to `dst`.
    fn push_ip(&mut self, dst: Mac, packet: &[u8]) {
        let ty = if packet.first().is_some_and(|b| b >> 4 == 6) { ether::IPV6 } else { ether::IPV4 };
        self.push(dst, ty, packet);
    }

    /// Queues a frame to `dst`, from the interface's own MAC.
    fn push(&mut self, dst: Mac, ethertype: u16, payload: &[u8]) {
        self.stats.frames_out += 1;
        self.out.push_back(ether::frame(dst, self.cfg.own_mac, ethertype, payload));
    }
}

#[cfg(test)]
mod tests;
