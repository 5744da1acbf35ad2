//! Frame-level tests of a port: every input frame is built by hand here and
//! every checksum checked by an independent computation.

use super::*;
use core::net::Ipv6Addr;
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::Duration;

const OWN: Mac = [0x02, 0, 0, 0, 0, 0x01];
const CLUSTER: Mac = [0x01, 0x00, 0x5e, 0x7f, 0, 0x01];
const PEER_MAC: Mac = [0x02, 0xaa, 0, 0, 0, 0x07];
/// Another node of the cluster.
const NODE_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const GW4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const FAR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
const ARP_T: [u8; 2] = [0x08, 0x06];
const IPV4_T: [u8; 2] = [0x08, 0x00];
const IPV6_T: [u8; 2] = [0x86, 0xdd];

#[allow(clippy::disallowed_methods)] // the tests' origin: every other time is an offset from it
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// The test time `d` after the origin.
pub(super) fn at(d: Duration) -> Instant {
    base() + d
}

/// `n` seconds.
pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn link4() -> Link {
    Link::new(LinkConfig::new(OWN, CLUSTER, VIP4.into(), 24))
}

fn link6() -> Link {
    Link::new(LinkConfig::new(OWN, CLUSTER, VIP6.into(), 64))
}

fn mine(_: IpAddr) -> bool {
    true
}

fn theirs(_: IpAddr) -> bool {
    false
}

fn drain(l: &mut Link) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| l.poll_frame()).collect()
}

/// RFC 1071, written out apart from the code under test.
fn inet_sum(parts: &[&[u8]]) -> u16 {
    let bytes = parts.concat();
    let mut s: u64 = 0;
    for pair in bytes.chunks(2) {
        s += u64::from(pair[0]) << 8 | u64::from(pair.get(1).copied().unwrap_or(0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Checks the ICMPv6 checksum of `msg` (in place) by recomputing it.
fn assert_icmpv6_sum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) {
    let mut zeroed = msg.to_vec();
    zeroed[2..4].fill(0);
    let len = u32::try_from(msg.len()).expect("fits").to_be_bytes();
    let want = inet_sum(&[&src.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &zeroed]);
    assert_eq!(msg[2..4], want.to_be_bytes(), "ICMPv6 checksum");
}

/// Checks a checksum over `data` (field at `at`) by recomputing it.
fn assert_sum(data: &[u8], at: usize) {
    let mut zeroed = data.to_vec();
    zeroed[at..at + 2].fill(0);
    assert_eq!(data[at..at + 2], inet_sum(&[&zeroed]).to_be_bytes(), "checksum");
}

fn eth(dst: Mac, src: Mac, ty: [u8; 2], payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ty, payload].concat()
}

fn arp(op: u8, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    [&[0, 1, 8, 0, 6, 4, 0, op][..], &sha, &spa.octets(), &tha, &tpa.octets()].concat()
}

/// A request from the peer for `target`, broadcast and padded.
fn who_has(target: Ipv4Addr) -> Vec<u8> {
    let mut f = eth([0xff; 6], PEER_MAC, ARP_T, &arp(1, PEER_MAC, PEER4, [0; 6], target));
    f.resize(60, 0);
    f
}

/// An IPv4 packet with `frag` as flags and offset, TTL 64.
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let [t0, t1] = u16::try_from(20 + payload.len()).expect("fits").to_be_bytes();
    let [f0, f1] = frag.to_be_bytes();
    let mut h =
        [&[0x45, 0, t0, t1, 0, 1, f0, f1, 64, proto, 0, 0][..], &src.octets(), &dst.octets()].concat();
    let c = inet_sum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    [h, payload.to_vec()].concat()
}

const DF: u16 = 0x4000;

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, body: usize) -> Vec<u8> {
    let [l0, l1] = u16::try_from(8 + body).expect("fits").to_be_bytes();
    let udp = [&[0x11, 0x94, 0x11, 0x94, l0, l1, 0, 0][..], &vec![0x5a; body]].concat();
    ipv4(src, dst, 17, DF, &udp)
}

fn icmp4(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, frag: u16, rest: &[u8]) -> Vec<u8> {
    let mut m = [&[ty, 0, 0, 0][..], rest].concat();
    let c = inet_sum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(src, dst, 1, frag, &m)
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hops: u8, payload: &[u8]) -> Vec<u8> {
    let [l0, l1] = u16::try_from(payload.len()).expect("fits").to_be_bytes();
    [&[0x60, 0, 0, 0, l0, l1, next, hops][..], &src.octets(), &dst.octets(), payload].concat()
}

fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[2..4].fill(0);
    let len = u32::try_from(m.len()).expect("fits").to_be_bytes();
    let c = inet_sum(&[&src.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ipv6(src, dst, 58, hops, &m)
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, body: usize) -> Vec<u8> {
    let [l0, l1] = u16::try_from(8 + body).expect("fits").to_be_bytes();
    ipv6(src, dst, 17, 64, &[&[0x11, 0x94, 0x11, 0x94, l0, l1, 0, 0][..], &vec![0x5a; body]].concat())
}

fn solicited(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]])
}

/// A solicitation for `target` from the peer with its MAC option.
fn ns_frame(target: Ipv6Addr, hops: u8) -> Vec<u8> {
    let msg = [&[135, 0, 0, 0, 0, 0, 0, 0][..], &target.octets(), &[1, 1], &PEER_MAC].concat();
    let [.., a, b, c] = target.octets();
    eth([0x33, 0x33, 0xff, a, b, c], PEER_MAC, IPV6_T, &icmp6(PEER6, solicited(target), hops, &msg))
}

/// An advertisement of `target` at `mac`, to the VIP at the cluster MAC.
fn na_frame(target: Ipv6Addr, flags: u8, mac: Mac) -> Vec<u8> {
    let msg = [&[136, 0, 0, 0, flags, 0, 0, 0][..], &target.octets(), &[2, 1], &mac].concat();
    eth(CLUSTER, PEER_MAC, IPV6_T, &icmp6(target, VIP6, 255, &msg))
}

/// Checks the IPv4 header of a frame this port sent and returns its payload.
fn ipv4_payload(f: &[u8], dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> &[u8] {
    assert_eq!((&f[..6], &f[6..12], &f[12..14]), (&dst_mac[..], &OWN[..], &IPV4_T[..]));
    let p = &f[14..];
    let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
    assert_eq!((p[0], p[8], p[9]), (0x45, 64, proto), "version, IHL, TTL, protocol");
    assert_eq!((&p[12..16], &p[16..20]), (&src.octets()[..], &dst.octets()[..]));
    assert_sum(&p[..20], 10);
    &p[20..len]
}

#[test]
fn answers_arp_for_the_vip_with_the_cluster_mac() {
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(VIP4), &mine), Received::Handled);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(f.len(), 60, "padded to the Ethernet minimum");
    assert_eq!(f[0..6], PEER_MAC, "Ethernet destination: the requester");
    assert_eq!(f[6..12], OWN, "Ethernet source: our own MAC");
    assert_eq!(f[12..14], ARP_T);
    assert_eq!(f[14..16], [0, 1], "hardware type Ethernet");
    assert_eq!(f[16..18], [8, 0], "protocol type IPv4");
    assert_eq!(f[18..20], [6, 4], "address lengths");
    assert_eq!(f[20..22], [0, 2], "reply");
    assert_eq!(f[22..28], CLUSTER, "the VIP is at the cluster MAC");
    assert_eq!(f[28..32], VIP4.octets());
    assert_eq!(f[32..38], PEER_MAC);
    assert_eq!(f[38..42], PEER4.octets());
    assert!(f[42..].iter().all(|&b| b == 0), "zero padding");
    // Unicast to the cluster MAC or our own (a cache refresh): answered too.
    for dst in [CLUSTER, OWN] {
        let mut f = who_has(VIP4);
        f[..6].copy_from_slice(&dst);
        assert_eq!(l.handle_frame(at(secs(1)), &f, &mine), Received::Handled);
    }
    let s = l.stats();
    assert_eq!((s.arp_answered, s.handled, s.frames_out), (3, 3, 3));
    assert_eq!(l.neighbours().collect::<Vec<_>>(), [(IpAddr::V4(PEER4), PEER_MAC)]);
}

#[test]
fn does_not_answer_arp_for_other_addresses() {
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(GW4), &mine), Received::Handled, "learned the asker");
    let off_link = eth([0xff; 6], PEER_MAC, ARP_T, &arp(1, PEER_MAC, FAR4, [0; 6], GW4));
    assert_eq!(l.handle_frame(at(secs(0)), &off_link, &mine), Received::Ignored);
    let mut unicast_elsewhere = who_has(VIP4);
    unicast_elsewhere[..6].copy_from_slice(&NODE_MAC);
    assert_eq!(l.handle_frame(at(secs(0)), &unicast_elsewhere, &mine), Received::Ignored);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.stats().arp_answered, 0);
    // An IPv6 port has no ARP.
    let mut l = link6();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(VIP4), &mine), Received::Ignored);
    assert!(drain(&mut l).is_empty());
}

#[test]
fn resolves_with_a_queue_and_flushes_on_the_reply() {
    let mut l = link4();
    let packets: Vec<_> = (0..3).map(|n| udp4(VIP4, PEER4, 40 + n)).collect();
    for p in &packets {
        l.send_ip(at(secs(0)), p);
    }
    let out = drain(&mut l);
    assert_eq!(out.len(), 1, "one request for three packets");
    let r = &out[0];
    assert_eq!((&r[..6], &r[6..12], &r[12..14]), (&[0xff; 6][..], &OWN[..], &ARP_T[..]));
    assert_eq!(r[14..42], arp(1, CLUSTER, VIP4, [0; 6], PEER4)[..], "sender: the VIP at the cluster MAC");
    assert_eq!(l.stats().queued, 3);
    assert_eq!(l.poll_timeout(), Some(at(secs(1))));
    // The reply comes to the cluster MAC (every node learns it).
    let reply = eth(CLUSTER, PEER_MAC, ARP_T, &arp(2, PEER_MAC, PEER4, CLUSTER, VIP4));
    assert_eq!(l.handle_frame(at(ms(20)), &reply, &mine), Received::Handled);
    let out = drain(&mut l);
    assert_eq!(out.len(), 3);
    for (f, p) in out.iter().zip(&packets) {
        assert_eq!(&f[14..], &p[..], "in order, unchanged");
        assert_eq!(ipv4_payload(f, PEER_MAC, VIP4, PEER4, 17), &p[20..]);
    }
    assert_eq!(l.poll_timeout(), Some(at(ms(20) + secs(60))), "only the ageing is left");
    // Resolved: the next packet goes at once.
    l.send_ip(at(secs(1)), &packets[0]);
    assert_eq!(drain(&mut l).len(), 1);
    assert_eq!(l.stats().arp_requests, 1);
}

#[test]
fn queues_at_most_sixteen_packets_per_next_hop() {
    let mut l = link4();
    for _ in 0..20 {
        l.send_ip(at(secs(0)), &udp4(VIP4, PEER4, 10));
    }
    let s = l.stats();
    assert_eq!((s.queued, s.unresolved_drops, s.arp_requests), (16, 4, 1));
}

#[test]
fn retries_every_second_then_gives_up() {
    let mut l = link4();
    l.send_ip(at(secs(0)), &udp4(VIP4, PEER4, 10));
    l.send_ip(at(secs(0)), &udp4(VIP4, PEER4, 10));
    assert_eq!(drain(&mut l).len(), 1);
    l.handle_timeout(at(ms(999)));
    assert!(drain(&mut l).is_empty(), "not yet");
    for n in 1..=3 {
        assert_eq!(l.poll_timeout(), Some(at(secs(n))));
        l.handle_timeout(at(secs(n)));
        let out = drain(&mut l);
        assert_eq!(out.len(), 1, "retry {n}");
        assert_eq!(out[0][38..42], PEER4.octets());
    }
    assert_eq!(l.poll_timeout(), Some(at(secs(4))));
    l.handle_timeout(at(secs(4)));
    assert!(drain(&mut l).is_empty(), "gave up");
    let s = l.stats();
    assert_eq!((s.arp_requests, s.queued, s.unresolved_drops), (4, 2, 2));
    assert_eq!(l.poll_timeout(), None);
    // A later packet starts over.
    l.send_ip(at(secs(5)), &udp4(VIP4, PEER4, 10));
    assert_eq!(drain(&mut l).len(), 1);
}

#[test]
fn reasks_stale_entries_and_ages_them_out() {
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(GW4), &mine), Received::Handled);
    let p = udp4(VIP4, PEER4, 40);
    let send = |l: &mut Link, t: Duration| {
        l.send_ip(at(t), &p);
        drain(l).iter().map(|f| u16::from_be_bytes([f[12], f[13]])).collect::<Vec<_>>()
    };
    assert_eq!(send(&mut l, secs(10)), [0x0800], "fresh");
    assert_eq!(send(&mut l, secs(31)), [0x0800, 0x0806], "stale: used, and asked again");
    assert_eq!(send(&mut l, ms(31_500)), [0x0800], "once a second at most");
    assert_eq!(send(&mut l, secs(32)), [0x0800, 0x0806]);
    assert_eq!(l.poll_timeout(), Some(at(secs(60))));
    l.handle_timeout(at(secs(60)));
    assert_eq!(l.neighbours().count(), 0, "aged out");
    assert_eq!(send(&mut l, secs(61)), [0x0806], "queued, asked for");
    assert_eq!(l.stats().arp_requests, 3);
    // An answer to the stale probe refreshes the entry.
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(GW4), &mine), Received::Handled);
    assert_eq!(send(&mut l, secs(40)), [0x0800, 0x0806]);
    let reply = eth(CLUSTER, PEER_MAC, ARP_T, &arp(2, PEER_MAC, PEER4, CLUSTER, VIP4));
    assert_eq!(l.handle_frame(at(secs(40)), &reply, &mine), Received::Handled);
    assert_eq!(send(&mut l, secs(50)), [0x0800]);
    assert_eq!(l.poll_timeout(), Some(at(secs(100))));
}

#[test]
fn learns_only_unicast_macs_of_on_link_stations() {
    let mut l = link4();
    let t = at(secs(0));
    // Whether an ARP request from `sha`, `spa` was taken in.
    let taken = |l: &mut Link, sha: Mac, spa: Ipv4Addr| {
        let f = eth([0xff; 6], PEER_MAC, ARP_T, &arp(1, sha, spa, [0; 6], GW4));
        l.handle_frame(t, &f, &mine) != Received::Ignored
    };
    assert!(!taken(&mut l, CLUSTER, PEER4), "the cluster MAC");
    assert!(!taken(&mut l, [0x01, 0, 0x5e, 0, 0, 9], PEER4), "a multicast MAC");
    assert!(!taken(&mut l, [0xff; 6], PEER4), "broadcast");
    assert!(!taken(&mut l, OWN, PEER4), "our own MAC");
    assert!(!taken(&mut l, PEER_MAC, FAR4), "off-link");
    assert!(!taken(&mut l, PEER_MAC, Ipv4Addr::UNSPECIFIED), "an ARP probe");
    assert!(!taken(&mut l, PEER_MAC, Ipv4Addr::new(192, 0, 2, 255)), "the subnet broadcast");
    assert!(!taken(&mut l, PEER_MAC, Ipv4Addr::new(192, 0, 2, 0)), "the network address");
    assert_eq!(l.neighbours().count(), 0);
    // Passing traffic from an on-link station teaches its MAC; from afar, not.
    let from_far = eth(CLUSTER, NODE_MAC, IPV4_T, &udp4(FAR4, VIP4, 10));
    assert!(matches!(l.handle_frame(t, &from_far, &mine), Received::Ip(_)));
    let from_peer = eth(CLUSTER, PEER_MAC, IPV4_T, &udp4(PEER4, VIP4, 10));
    assert!(matches!(l.handle_frame(t, &from_peer, &mine), Received::Ip(_)));
    assert_eq!(l.neighbours().collect::<Vec<_>>(), [(IpAddr::V4(PEER4), PEER_MAC)]);
    // A group MAC is never a source.
    let bad = eth(CLUSTER, [0x03, 0, 0, 0, 0, 1], IPV4_T, &udp4(GW4, VIP4, 10));
    assert_eq!(l.handle_frame(t, &bad, &mine), Received::Ignored);
    assert_eq!(l.stats().malformed, 1);
    assert_eq!(l.neighbours().count(), 1);
}

#[test]
fn gratuitous_arp_for_the_vip_is_a_conflict() {
    let mut l = link4();
    let t = at(secs(0));
    let garp = eth([0xff; 6], PEER_MAC, ARP_T, &arp(1, PEER_MAC, VIP4, [0; 6], VIP4));
    assert_eq!(l.handle_frame(t, &garp, &mine), Received::Ignored);
    assert_eq!(l.stats().vip_conflicts, 1);
    // Another node's request names the VIP at the cluster MAC: no conflict.
    let theirs_req = eth([0xff; 6], NODE_MAC, ARP_T, &arp(1, CLUSTER, VIP4, [0; 6], PEER4));
    assert_eq!(l.handle_frame(t, &theirs_req, &mine), Received::Ignored);
    assert_eq!(l.stats().vip_conflicts, 1);
    // ... and the answer to it teaches every node.
    let reply = eth(CLUSTER, PEER_MAC, ARP_T, &arp(2, PEER_MAC, PEER4, CLUSTER, VIP4));
    assert_eq!(l.handle_frame(t, &reply, &mine), Received::Handled);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.neighbours().collect::<Vec<_>>(), [(IpAddr::V4(PEER4), PEER_MAC)]);
}

#[test]
fn answers_neighbor_solicitations_for_the_vip() {
    let mut l = link6();
    assert_eq!(l.handle_frame(at(secs(0)), &ns_frame(VIP6, 255), &mine), Received::Handled);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!((&f[..6], &f[6..12], &f[12..14]), (&PEER_MAC[..], &OWN[..], &IPV6_T[..]));
    let p = &f[14..];
    assert_eq!(p[..8], [0x60, 0, 0, 0, 0, 32, 58, 255], "version, length 32, ICMPv6, hop limit 255");
    assert_eq!((&p[8..24], &p[24..40]), (&VIP6.octets()[..], &PEER6.octets()[..]));
    let m = &p[40..];
    assert_eq!(m[..2], [136, 0]);
    assert_eq!(m[4..8], [0xe0, 0, 0, 0], "router, solicited, override");
    assert_eq!(m[8..24], VIP6.octets());
    assert_eq!(m[24..26], [2, 1], "target link-layer address option");
    assert_eq!(m[26..32], CLUSTER);
    assert_icmpv6_sum(VIP6, PEER6, m);
    assert_eq!(l.neighbours().collect::<Vec<_>>(), [(IpAddr::V6(PEER6), PEER_MAC)]);
    assert_eq!(l.stats().nd_answered, 1);
    // Not for the VIP: learned from, not answered.
    assert_eq!(l.handle_frame(at(secs(0)), &ns_frame(PEER6, 255), &mine), Received::Handled);
    assert!(drain(&mut l).is_empty());
    // Duplicate address detection of the VIP: defended to all nodes.
    let msg = [&[135, 0, 0, 0, 0, 0, 0, 0][..], &VIP6.octets()].concat();
    let dad = icmp6(Ipv6Addr::UNSPECIFIED, solicited(VIP6), 255, &msg);
    let dad = eth([0x33, 0x33, 0xff, 0, 0, 1], PEER_MAC, IPV6_T, &dad);
    assert_eq!(l.handle_frame(at(secs(0)), &dad, &mine), Received::Handled);
    let out = drain(&mut l);
    let f = &out[0];
    assert_eq!(f[..6], [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(f[14 + 24..14 + 40], nd::ALL_NODES.octets());
    assert_eq!(f[14 + 44], 0xa0, "router and override, not solicited");
    assert_icmpv6_sum(VIP6, nd::ALL_NODES, &f[14 + 40..]);
}

#[test]
fn rejects_nd_below_hop_limit_255() {
    let mut l = link6();
    assert_eq!(l.handle_frame(at(secs(0)), &ns_frame(VIP6, 254), &mine), Received::Ignored);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.neighbours().count(), 0);
    assert_eq!(l.stats().malformed, 1);
}

#[test]
fn resolves_ipv6_by_solicitation() {
    let mut l = link6();
    let p = udp6(VIP6, PEER6, 40);
    l.send_ip(at(secs(0)), &p);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!((&f[..6], &f[6..12]), (&[0x33, 0x33, 0xff, 0, 0, 7][..], &OWN[..]), "solicited-node MAC");
    let ns = &f[14..];
    assert_eq!(ns[..8], [0x60, 0, 0, 0, 0, 32, 58, 255]);
    assert_eq!((&ns[8..24], &ns[24..40]), (&VIP6.octets()[..], &solicited(PEER6).octets()[..]));
    let m = &ns[40..];
    assert_eq!((m[0], m[1], &m[4..8]), (135, 0, &[0; 4][..]));
    assert_eq!(m[8..24], PEER6.octets());
    assert_eq!((&m[24..26], &m[26..32]), (&[1, 1][..], &CLUSTER[..]), "source link-layer: the cluster MAC");
    assert_icmpv6_sum(VIP6, solicited(PEER6), m);
    assert_eq!(l.stats().nd_solicits, 1);
    // The advertisement comes to the cluster MAC.
    assert_eq!(l.handle_frame(at(ms(5)), &na_frame(PEER6, 0x60, PEER_MAC), &mine), Received::Handled);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    assert_eq!((&out[0][..6], &out[0][12..14], &out[0][14..]), (&PEER_MAC[..], &IPV6_T[..], &p[..]));
    // Without override, an advertisement does not move a resolved address.
    let other = [0x02, 0xbb, 0, 0, 0, 7];
    assert_eq!(l.handle_frame(at(secs(2)), &na_frame(PEER6, 0x40, other), &mine), Received::Ignored);
    assert_eq!(l.neighbours().collect::<Vec<_>>(), [(IpAddr::V6(PEER6), PEER_MAC)]);
    // Someone advertising the VIP elsewhere conflicts; another node does not.
    assert_eq!(l.handle_frame(at(secs(2)), &na_frame(VIP6, 0x20, other), &mine), Received::Ignored);
    assert_eq!(l.handle_frame(at(secs(2)), &na_frame(VIP6, 0x20, CLUSTER), &mine), Received::Ignored);
    assert_eq!(l.stats().vip_conflicts, 1);
}

#[test]
fn answers_echo_only_when_it_owns_the_sender() {
    let mut l = link4();
    let req =
        eth(CLUSTER, PEER_MAC, IPV4_T, &icmp4(PEER4, VIP4, 8, 0, &[0x12, 0x34, 0, 1, b'p', b'i', b'n']));
    assert_eq!(l.handle_frame(at(secs(0)), &req, &theirs), Received::Handled);
    assert!(drain(&mut l).is_empty(), "another node answers");
    assert_eq!(l.stats().echo_left, 1);
    let owner = |a: IpAddr| a == IpAddr::V4(PEER4);
    assert_eq!(l.handle_frame(at(secs(0)), &req, &owner), Received::Handled);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1, "the sender was learned from the request");
    let m = ipv4_payload(&out[0], PEER_MAC, VIP4, PEER4, 1);
    assert_eq!(m[..2], [0, 0], "echo reply");
    assert_eq!(m[4..], [0x12, 0x34, 0, 1, b'p', b'i', b'n'], "identifier, sequence, data");
    assert_sum(m, 2);
    assert_eq!(l.stats().echo_answered, 1);
    // A corrupted request is malformed; an echo to another address is the node's.
    let mut bad = req.clone();
    bad[14 + 20 + 6] ^= 0xff;
    assert_eq!(l.handle_frame(at(secs(0)), &bad, &mine), Received::Ignored);
    assert_eq!(l.stats().malformed, 1);
    let elsewhere = eth(CLUSTER, PEER_MAC, IPV4_T, &icmp4(PEER4, FAR4, 8, 0, &[0; 4]));
    assert!(matches!(l.handle_frame(at(secs(0)), &elsewhere, &mine), Received::Ip(_)));

    let mut l = link6();
    let msg = [&[128, 0, 0, 0, 0xab, 0xcd, 0, 9][..], b"ping6"].concat();
    let req = eth(CLUSTER, PEER_MAC, IPV6_T, &icmp6(PEER6, VIP6, 60, &msg));
    assert_eq!(l.handle_frame(at(secs(0)), &req, &theirs), Received::Handled);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.handle_frame(at(secs(0)), &req, &mine), Received::Handled);
    let out = drain(&mut l);
    let p = &out[0][14..];
    assert_eq!(out[0][..6], PEER_MAC);
    assert_eq!(p[..8], [0x60, 0, 0, 0, 0, 13, 58, 64], "hop limit 64");
    assert_eq!((&p[8..24], &p[24..40]), (&VIP6.octets()[..], &PEER6.octets()[..]));
    assert_eq!((p[40], p[41], &p[44..]), (129, 0, &msg[4..]));
    assert_icmpv6_sum(VIP6, PEER6, &p[40..]);
}

#[test]
fn frag_needed_quotes_the_header_and_eight_octets() {
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(GW4), &mine), Received::Handled);
    let big = udp4(PEER4, FAR4, 1472);
    l.too_big(at(secs(0)), &big, 1400);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let m = ipv4_payload(&out[0], PEER_MAC, VIP4, PEER4, 1);
    assert_eq!(m[..2], [3, 4], "destination unreachable, fragmentation needed");
    assert_eq!(m[4..8], [0, 0, 0x05, 0x78], "next-hop MTU 1400");
    assert_eq!(&m[8..], &big[..28], "IP header and 8 octets");
    assert_sum(m, 2);
    // Never without DF, for a later fragment, an ICMP error, from the VIP.
    let no_df = ipv4(PEER4, FAR4, 17, 0, &[0; 100]);
    let later = ipv4(PEER4, FAR4, 17, DF | 185, &[0; 100]);
    let error = icmp4(PEER4, FAR4, 3, DF, &[0; 100]);
    let ours = udp4(VIP4, FAR4, 100);
    for p in [&no_df, &later, &error, &ours] {
        l.too_big(at(secs(0)), p, 1400);
    }
    assert!(drain(&mut l).is_empty());
    // An echo request is no error; a tiny MTU is raised to 68.
    l.too_big(at(secs(0)), &icmp4(PEER4, FAR4, 8, DF, &[0; 100]), 20);
    let out = drain(&mut l);
    assert_eq!(ipv4_payload(&out[0], PEER_MAC, VIP4, PEER4, 1)[6..8], [0, 68]);
    assert_eq!(l.stats().too_big_sent, 2);
}

#[test]
fn packet_too_big_quotes_up_to_1280_octets() {
    let mut l = link6();
    assert_eq!(l.handle_frame(at(secs(0)), &ns_frame(PEER6, 255), &mine), Received::Handled);
    let big = udp6(PEER6, "2001:db8:9::1".parse().expect("address"), 1452);
    l.too_big(at(secs(0)), &big, 1400);
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let p = &out[0][14..];
    assert_eq!(p.len(), 1280, "fits the minimum MTU");
    assert_eq!(p[..8], [0x60, 0, 0, 0, 0x04, 0xd8, 58, 64], "payload 1240");
    assert_eq!((&p[8..24], &p[24..40]), (&VIP6.octets()[..], &PEER6.octets()[..]));
    let m = &p[40..];
    assert_eq!(m[..2], [2, 0]);
    assert_eq!(m[4..8], 1400u32.to_be_bytes());
    assert_eq!(&m[8..], &big[..1232]);
    assert_icmpv6_sum(VIP6, PEER6, m);
    // A small packet is quoted whole, and the MTU raised to 1280.
    let small = udp6(PEER6, "2001:db8:9::1".parse().expect("address"), 100);
    l.too_big(at(secs(0)), &small, 1000);
    let out = drain(&mut l);
    assert_eq!(out[0][14 + 44..14 + 48], 1280u32.to_be_bytes());
    assert_eq!(&out[0][14 + 48..], &small[..]);
    // Never about an ICMPv6 error, or from the VIP.
    let error = icmp6(PEER6, VIP6, 64, &[1, 4, 0, 0, 0, 0, 0, 0]);
    l.too_big(at(secs(0)), &error, 1400);
    l.too_big(at(secs(0)), &udp6(VIP6, PEER6, 100), 1400);
    assert!(drain(&mut l).is_empty());
    // On an IPv4 port, an IPv6 packet has no source to report from.
    let mut l4 = link4();
    l4.too_big(at(secs(0)), &big, 1400);
    assert_eq!(l4.stats().too_big_sent, 0);
}

#[test]
fn too_big_is_rate_limited() {
    let mut l = link4();
    assert_eq!(l.handle_frame(at(secs(0)), &who_has(GW4), &mine), Received::Handled);
    let big = udp4(PEER4, FAR4, 1472);
    for n in 0..150 {
        l.too_big(at(ms(n)), &big, 1400);
    }
    assert_eq!((l.stats().too_big_sent, l.stats().too_big_limited), (100, 50));
    l.too_big(at(ms(1000)), &big, 1400);
    assert_eq!(l.stats().too_big_sent, 101);
}

#[test]
fn trims_ethernet_padding() {
    let mut l = link4();
    let p = udp4(PEER4, VIP4, 4);
    let mut f = eth(CLUSTER, PEER_MAC, IPV4_T, &p);
    f.resize(60, 0);
    assert_eq!(l.handle_frame(at(secs(0)), &f, &mine), Received::Ip(&p));
    let mut l = link6();
    let p = udp6(PEER6, VIP6, 0);
    let mut f = eth(CLUSTER, PEER_MAC, IPV6_T, &p);
    f.resize(70, 0xee);
    assert_eq!(l.handle_frame(at(secs(0)), &f, &mine), Received::Ip(&p));
    assert_eq!(l.stats().delivered, 1);
}

#[test]
fn rejects_bad_ip_lengths_and_headers() {
    let mut l = link4();
    let good = udp4(PEER4, VIP4, 20);
    let mut long = good.clone();
    long[3] += 1;
    let mut short_ihl = good.clone();
    short_ihl[0] = 0x44;
    let mut bad_sum = good.clone();
    bad_sum[10] ^= 1;
    let v6_in_v4 = udp6(PEER6, VIP6, 20);
    for p in [&long, &short_ihl, &bad_sum, &v6_in_v4, &good[..19].to_vec()] {
        assert_eq!(l.handle_frame(at(secs(0)), &eth(CLUSTER, PEER_MAC, IPV4_T, p), &mine), Received::Ignored);
    }
    let mut l6 = link6();
    let mut long6 = udp6(PEER6, VIP6, 20);
    long6[5] += 1;
    assert_eq!(
        l6.handle_frame(at(secs(0)), &eth(CLUSTER, PEER_MAC, IPV6_T, &long6), &mine),
        Received::Ignored
    );
    assert_eq!((l.stats().malformed, l6.stats().malformed), (5, 1));
}

#[test]
fn ignores_tagged_own_and_foreign_frames() {
    let mut l = link4();
    let t = at(secs(0));
    let tagged = eth(CLUSTER, PEER_MAC, [0x81, 0], &[&[0, 5, 8, 0][..], &udp4(PEER4, VIP4, 10)].concat());
    assert_eq!(l.handle_frame(t, &tagged, &mine), Received::Ignored);
    assert_eq!(l.stats().tagged, 1);
    // Our own request, captured on its way out: no answer, nothing learned.
    let mut own = who_has(VIP4);
    own[6..12].copy_from_slice(&OWN);
    assert_eq!(l.handle_frame(t, &own, &mine), Received::Ignored);
    let own_ip = eth(PEER_MAC, OWN, IPV4_T, &udp4(VIP4, PEER4, 10));
    assert_eq!(l.handle_frame(t, &own_ip, &mine), Received::Ignored);
    // Another station's unicast, and IP on broadcast.
    let foreign = eth(NODE_MAC, PEER_MAC, IPV4_T, &udp4(PEER4, VIP4, 10));
    assert_eq!(l.handle_frame(t, &foreign, &mine), Received::Ignored);
    let bcast = eth([0xff; 6], PEER_MAC, IPV4_T, &udp4(PEER4, VIP4, 10));
    assert_eq!(l.handle_frame(t, &bcast, &mine), Received::Ignored);
    assert_eq!(l.handle_frame(t, &[0; 13], &mine), Received::Ignored);
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.neighbours().count(), 0);
    let s = l.stats();
    assert_eq!((s.frames_in, s.ignored, s.malformed), (6, 5, 1));
    // Multicast IPv6 other than ND is not for the node.
    let mut l = link6();
    let mld = eth([0x33, 0x33, 0, 0, 0, 1], PEER_MAC, IPV6_T, &udp6(PEER6, nd::ALL_NODES, 4));
    assert_eq!(l.handle_frame(t, &mld, &mine), Received::Ignored);
}

#[test]
fn routes_off_link_via_the_gateway() {
    let mut cfg = LinkConfig::new(OWN, CLUSTER, VIP4.into(), 32);
    cfg.gateway = Some(GW4.into());
    let mut l = Link::new(cfg);
    let p = udp4(VIP4, FAR4, 40);
    l.send_ip(at(secs(0)), &p);
    let out = drain(&mut l);
    assert_eq!(out[0][14..42], arp(1, CLUSTER, VIP4, [0; 6], GW4)[..], "asks for the gateway");
    // The gateway is on-link although outside the /32.
    let reply = eth(CLUSTER, PEER_MAC, ARP_T, &arp(2, PEER_MAC, GW4, CLUSTER, VIP4));
    assert_eq!(l.handle_frame(at(ms(1)), &reply, &mine), Received::Handled);
    let out = drain(&mut l);
    assert_eq!((&out[0][..6], &out[0][14..]), (&PEER_MAC[..], &p[..]));
}

#[test]
fn drops_what_it_cannot_route() {
    let mut l = link4();
    l.send_ip(at(secs(0)), &udp4(VIP4, FAR4, 10));
    l.send_ip(at(secs(0)), &udp4(PEER4, VIP4, 10));
    l.send_ip(at(secs(0)), &udp6(VIP6, PEER6, 10));
    l.send_ip(at(secs(0)), &udp4(VIP4, Ipv4Addr::new(192, 0, 2, 0), 10));
    assert_eq!(l.stats().unreachable, 4, "off-link, the VIP, IPv6, the network address");
    l.send_ip(at(secs(0)), &udp4(VIP4, PEER4, 1473));
    assert_eq!(l.stats().oversize, 1);
    l.send_ip(at(secs(0)), b"not a packet");
    assert_eq!(l.stats().invalid, 1);
    assert!(drain(&mut l).is_empty());
    // Broadcast and multicast need no resolution.
    for (dst, mac) in [
        (Ipv4Addr::BROADCAST, [0xff; 6]),
        (Ipv4Addr::new(192, 0, 2, 255), [0xff; 6]),
        (Ipv4Addr::new(239, 129, 2, 3), [1, 0, 0x5e, 1, 2, 3]),
    ] {
        l.send_ip(at(secs(0)), &udp4(VIP4, dst, 10));
        assert_eq!(drain(&mut l).iter().map(|f| &f[..6]).collect::<Vec<_>>(), [&mac[..]]);
    }
    assert_eq!(l.stats().arp_requests, 0);
}

#[test]
fn frames_in_place_what_send_ip_would_queue() {
    let mut l = link4();
    let small = udp4(VIP4, PEER4, 4); // 32 octets: padded to 60
    let big = udp4(VIP4, PEER4, 1000);
    let mut buf = vec![0xee; 2000];
    let place = |buf: &mut Vec<u8>, p: &[u8]| {
        buf.fill(0xee);
        buf[100..100 + p.len()].copy_from_slice(p);
        100..100 + p.len()
    };
    // Unresolved: queued as a copy, the request goes out, nothing in place.
    let r = place(&mut buf, &big);
    assert_eq!(l.send_ip_in_place(at(secs(0)), &mut buf, r), None);
    assert_eq!((l.stats().queued, drain(&mut l).len()), (1, 1));
    let reply = eth(CLUSTER, PEER_MAC, ARP_T, &arp(2, PEER_MAC, PEER4, CLUSTER, VIP4));
    assert_eq!(l.handle_frame(at(ms(1)), &reply, &mine), Received::Handled);
    let queued = drain(&mut l);
    // Resolved: the same frame as send_ip's, built where the packet lies.
    for p in [&big, &small] {
        l.send_ip(at(ms(2)), p);
        let want = drain(&mut l).remove(0);
        let r = place(&mut buf, p);
        let f = l.send_ip_in_place(at(ms(2)), &mut buf, r).expect("in place");
        assert_eq!(f.start, 86);
        assert_eq!(&buf[f], &want[..]);
        assert!(drain(&mut l).is_empty());
    }
    assert_eq!(&queued[0][14..], &big[..]);
    // No room in front or behind: as send_ip, a copy.
    let r = place(&mut buf, &small);
    assert_eq!(l.send_ip_in_place(at(ms(3)), &mut buf[90..140], r.start - 90..r.end - 90), None);
    assert_eq!(drain(&mut l).len(), 1);
    let r = place(&mut buf, &big);
    assert_eq!(l.send_ip_in_place(at(ms(3)), &mut buf[..r.end], r.clone()).map(|f| f.len()), Some(1042));
    drain(&mut l);
    // What send_ip drops, this drops too.
    let far = udp4(VIP4, FAR4, 10);
    let r = place(&mut buf, &far);
    assert_eq!(l.send_ip_in_place(at(ms(4)), &mut buf, r), None);
    assert_eq!(l.stats().unreachable, 1);
    assert_eq!(l.send_ip_in_place(at(ms(4)), &mut buf, 100..110), None);
    assert_eq!(l.stats().invalid, 1);
    assert!(drain(&mut l).is_empty());
}

fn frame_for_us() -> impl Strategy<Value = Vec<u8>> {
    let ty = prop_oneof![Just(ARP_T), Just(IPV4_T), Just(IPV6_T), Just([0x81, 0]), any::<[u8; 2]>()];
    let dst = prop_oneof![Just(CLUSTER), Just(OWN), Just([0xff; 6]), Just([0x33, 0x33, 0xff, 0, 0, 1])];
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        // Enough structure to get past the IP header checks now and then.
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(b, rest)| {
            let p = if b & 1 == 0 { udp4(PEER4, VIP4, 8) } else { udp6(PEER6, VIP6, 8) };
            let cut = usize::from(b) % p.len();
            [&p[..cut], &rest].concat()
        }),
    ];
    (dst, ty, payload).prop_map(|(dst, ty, payload)| eth(dst, PEER_MAC, ty, &payload))
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_frames(
        frames in proptest::collection::vec(
            prop_oneof![proptest::collection::vec(any::<u8>(), 0..100), frame_for_us()], 1..20),
        owned: bool,
        steps in proptest::collection::vec(0u64..3000, 20),
    ) {
        for mut l in [link4(), link6()] {
            let mut t = Duration::ZERO;
            for (f, step) in frames.iter().zip(&steps) {
                t += Duration::from_millis(*step);
                let _ = l.handle_frame(at(t), f, &|_| owned);
                l.send_ip(at(t), f.get(14..).unwrap_or_default());
                l.too_big(at(t), f.get(14..).unwrap_or_default(), 1300);
                l.handle_timeout(at(t));
                while l.poll_frame().is_some() {}
            }
            let s = l.stats();
            prop_assert_eq!(s.frames_in, frames.len() as u64);
            prop_assert_eq!(s.frames_in, s.delivered + s.handled + s.ignored + s.malformed);
        }
    }
}

#[test]
fn carries_handover_marks_between_nodes_on_the_cluster_mac() {
    let mut sender = Link::new(LinkConfig::new(NODE_MAC, CLUSTER, VIP4.into(), 24));
    sender.send_mark(b"mark");
    let frame = sender.poll_frame().expect("a frame");
    assert_eq!(frame.len(), ether::MIN_FRAME, "padded");
    assert_eq!(
        (&frame[..6], &frame[6..12], &frame[12..14]),
        (&CLUSTER[..], &NODE_MAC[..], &[0x88, 0xb5][..])
    );
    let mut l = link4();
    let t = at(secs(1));
    match l.handle_frame(t, &frame, &mine) {
        Received::Mark(m) => assert!(m.starts_with(b"mark") && m.len() == ether::MIN_FRAME - 14),
        other => panic!("not a mark: {other:?}"),
    }
    // Only to the cluster MAC.
    let mut to_us = frame.clone();
    to_us[..6].copy_from_slice(&OWN);
    assert!(matches!(l.handle_frame(t, &to_us, &mine), Received::Ignored));
}
