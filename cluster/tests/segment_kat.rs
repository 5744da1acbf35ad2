//! Known answers for the CLUSTERIP `sourceip` segment hash and Tandem's
//! IPv6 rule.
//!
//! The table below is the verbatim output of `tests/data/clusterip_kat.c`,
//! an independent C model of the Linux (>= 4.1) `jhash_1word` / `jhash2`
//! helpers and of `clusterip_hashfn`'s multiply-shift, built with
//! `gcc -std=c99 -O2 -Wall -Wextra` and run by hand (see
//! `tests/data/README.md`). All hashes were also cross-checked with a
//! separate Python model of the same formulas.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tandem_cluster::segment::sourceip_hash;
use tandem_cluster::{SegmentCount, segment_of};

/// The segment counts of each row's segment list.
const COUNTS: [u32; 6] = [1, 2, 3, 4, 16, 64];

/// (address, hash, segment for each of `COUNTS`)
const KAT: &[(&str, u32, [u8; 6])] = &[
    // IPv4: (address, jhash_1word(ntohl(saddr), 0), segments)
    ("192.0.2.10", 0x63836eeb, [1, 1, 2, 2, 7, 25]),
    ("10.0.0.1", 0x3483bc84, [1, 1, 1, 1, 4, 14]),
    ("0.0.0.0", 0x049396b8, [1, 1, 1, 1, 1, 2]),
    ("255.255.255.255", 0x9b11c75b, [1, 2, 2, 3, 10, 39]),
    ("192.168.0.1", 0x141c753e, [1, 1, 1, 1, 2, 6]),
    ("198.51.100.7", 0x4ea226f1, [1, 1, 1, 2, 5, 20]),
    ("203.0.113.200", 0x26d91827, [1, 1, 1, 1, 3, 10]),
    ("172.16.1.2", 0x4afffda4, [1, 1, 1, 2, 5, 19]),
    ("127.0.0.1", 0xa6caec6b, [1, 2, 2, 3, 11, 42]),
    ("1.2.3.4", 0xec5b1971, [1, 2, 3, 4, 15, 60]),
    // IPv6: (address, jhash2(four big-endian words, 4, 0), segments)
    ("2001:db8::1", 0x66295424, [1, 1, 2, 2, 7, 26]),
    ("2001:db8::2", 0x26a64a81, [1, 1, 1, 1, 3, 10]),
    ("2001:db8:85a3::8a2e:370:7334", 0x4bb9228a, [1, 1, 1, 2, 5, 19]),
    ("fe80::211:22ff:fe33:4455", 0x111aab67, [1, 1, 1, 1, 2, 5]),
    ("::", 0xbaf9078c, [1, 2, 3, 3, 12, 47]),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0x9d82926f, [1, 2, 2, 3, 10, 40]),
];

#[test]
fn matches_the_c_model() {
    for (text, hash, segments) in KAT {
        let addr: IpAddr = text.parse().expect("valid address");
        assert_eq!(sourceip_hash(addr), *hash, "hash of {text}");
        for (count, want) in COUNTS.iter().zip(segments) {
            let count = SegmentCount::new(*count).expect("valid count");
            assert_eq!(segment_of(addr, count).get(), *want, "{text} over {count} segments");
        }
    }
}

#[test]
fn ipv4_mapped_ipv6_hashes_as_ipv4() {
    for (text, hash, _) in KAT.iter().filter(|(t, _, _)| !t.contains(':')) {
        let v4: Ipv4Addr = text.parse().expect("valid address");
        assert_eq!(sourceip_hash(IpAddr::V6(v4.to_ipv6_mapped())), *hash, "{text}");
    }
    // IPv4-compatible addresses (::a.b.c.d) are not mapped ones.
    let compat = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0xc000, 0x020a);
    assert_ne!(sourceip_hash(IpAddr::V6(compat)), 0x63836eeb);
}

#[test]
fn ipv6_peers_spread_over_segments() {
    // The seed's plugin puts every IPv6 peer in one segment; Tandem's rule
    // spreads 2001:db8::/64 hosts over all 16 segments.
    let count = SegmentCount::new(16).expect("valid count");
    let mut seen = [false; 16];
    for host in 1..=256u16 {
        let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, host));
        seen[usize::from(segment_of(addr, count).get() - 1)] = true;
    }
    assert!(seen.iter().all(|s| *s));
}
