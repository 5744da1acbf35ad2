//! The outbound policy lookup: selectors by address range, protocol and
//! port range, most specific first, fragments and malformed packets.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tandem_esp::{Error, Policy, Spd, TrafficSelector};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// An IPv4 packet with the given addresses, protocol and ports.
fn pkt(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16, frag_offset: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0];
    p[6..8].copy_from_slice(&frag_offset.to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 8, 0, 0]);
    p
}

fn subnet(a: IpAddr, prefix: u8) -> TrafficSelector {
    TrafficSelector::subnet(a, prefix).expect("valid prefix")
}

#[test]
fn matches_by_address_protocol_and_port() {
    let mut spd = Spd::new();
    let mut web = subnet(v4(198, 51, 100, 0), 24);
    web.protocol = 6;
    web.start_port = 443;
    web.end_port = 443;
    spd.insert(Policy { local: subnet(v4(10, 1, 0, 0), 16), remote: web, target: "web" });
    spd.insert(Policy {
        local: subnet(v4(10, 1, 0, 0), 16),
        remote: subnet(v4(198, 51, 100, 0), 24),
        target: "net",
    });

    let look = |p: &[u8]| spd.lookup(p).expect("parses").copied();
    assert_eq!(look(&pkt([10, 1, 2, 3], [198, 51, 100, 7], 6, 40000, 443, 0)), Some("web"));
    assert_eq!(look(&pkt([10, 1, 2, 3], [198, 51, 100, 7], 6, 40000, 80, 0)), Some("net"));
    assert_eq!(look(&pkt([10, 1, 2, 3], [198, 51, 100, 7], 17, 40000, 443, 0)), Some("net"));
    assert_eq!(look(&pkt([10, 2, 0, 1], [198, 51, 100, 7], 6, 40000, 443, 0)), None, "source outside");
    assert_eq!(look(&pkt([10, 1, 2, 3], [198, 51, 101, 7], 6, 40000, 443, 0)), None, "destination outside");
}

#[test]
fn prefers_the_narrower_policy_whatever_the_insertion_order() {
    let mut spd = Spd::new();
    spd.insert(Policy { local: TrafficSelector::ANY_V4, remote: TrafficSelector::ANY_V4, target: 1 });
    let host = spd.insert(Policy {
        local: TrafficSelector::ANY_V4,
        remote: subnet(v4(203, 0, 113, 9), 32),
        target: 2,
    });
    let p = pkt([10, 0, 0, 1], [203, 0, 113, 9], 17, 1, 2, 0);
    assert_eq!(spd.lookup(&p).expect("parses"), Some(&2));
    spd.get_mut(host).expect("present").target = 3;
    assert_eq!(spd.lookup(&p).expect("parses"), Some(&3));
    assert_eq!(spd.remove(host).map(|p| p.target), Some(3));
    assert_eq!(spd.lookup(&p).expect("parses"), Some(&1));
    assert_eq!(spd.iter().count(), 1);
}

#[test]
fn non_initial_fragments_match_only_port_wildcards() {
    let mut spd = Spd::new();
    let mut ssh = TrafficSelector::ANY_V4;
    ssh.start_port = 22;
    ssh.end_port = 22;
    spd.insert(Policy { local: TrafficSelector::ANY_V4, remote: ssh, target: "ssh" });
    let first = pkt([10, 0, 0, 1], [10, 0, 0, 2], 6, 5000, 22, 0x2000); // MF, offset 0
    let later = pkt([10, 0, 0, 1], [10, 0, 0, 2], 6, 5000, 22, 0x0010); // offset 16
    assert_eq!(spd.lookup(&first).expect("parses"), Some(&"ssh"));
    assert_eq!(spd.lookup(&later).expect("parses"), None);
    spd.insert(Policy { local: TrafficSelector::ANY_V4, remote: TrafficSelector::ANY_V4, target: "any" });
    assert_eq!(spd.lookup(&later).expect("parses"), Some(&"any"));
}

#[test]
fn keeps_address_families_apart() {
    let mut spd = Spd::new();
    spd.insert(Policy { local: TrafficSelector::ANY_V6, remote: TrafficSelector::ANY_V6, target: 6 });
    assert_eq!(spd.lookup(&pkt([10, 0, 0, 1], [10, 0, 0, 2], 17, 1, 2, 0)).expect("parses"), None);
    let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1));
    let ts = subnet(a, 48);
    assert!(ts.matches(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0xffff, 0, 0, 0, 0)), 17, 1));
    assert!(!ts.matches(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0)), 17, 1));
    assert!(!ts.matches(v4(10, 0, 0, 1), 17, 1));
}

#[test]
fn computes_subnet_bounds_and_rejects_long_prefixes() {
    let ts = subnet(v4(192, 168, 7, 200), 22);
    assert_eq!((ts.start, ts.end), (v4(192, 168, 4, 0), v4(192, 168, 7, 255)));
    assert_eq!(subnet(v4(1, 2, 3, 4), 0), TrafficSelector::ANY_V4);
    assert_eq!(subnet(v4(1, 2, 3, 4), 32).end, v4(1, 2, 3, 4));
    assert!(TrafficSelector::subnet(v4(1, 2, 3, 4), 33).is_err());
    assert!(TrafficSelector::subnet(IpAddr::V6(Ipv6Addr::LOCALHOST), 129).is_err());
}

#[test]
fn rejects_malformed_packets() {
    let spd: Spd<()> = Spd::new();
    assert_eq!(spd.lookup(&[]), Err(Error::ShortPacket));
    assert!(spd.lookup(&[0x45, 0, 0, 99, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]).is_err());
}
