//! Traffic selector narrowing (RFC 7296 section 2.9): address range overlaps
//! in both families (disjoint, nested, partial), protocols, ports and
//! OPAQUE, family mismatches, `narrow` over several selectors, `covers`; and
//! proptests that `intersect` is commutative, that its result is covered by
//! both inputs, and that `covers(a, b)` is `intersect(a, b) == Some(b)`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use tandem_ike::narrow::{covers, intersect, narrow};
use tandem_ike::wire::TrafficSelector;

// ---------------------------------------------------------------- helpers

/// An IPv4 selector of every protocol and port, from dotted quads.
fn v4(start: &str, end: &str) -> TrafficSelector {
    let p = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().expect("IPv4 literal"));
    TrafficSelector::any(p(start), p(end))
}

/// An IPv6 selector of every protocol and port.
fn v6(start: &str, end: &str) -> TrafficSelector {
    let p = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().expect("IPv6 literal"));
    TrafficSelector::any(p(start), p(end))
}

/// `ts` restricted to a protocol and port range.
fn with(ts: TrafficSelector, ip_protocol: u8, start_port: u16, end_port: u16) -> TrafficSelector {
    TrafficSelector { ip_protocol, start_port, end_port, ..ts }
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// Asserts `intersect` gives `want` both ways round.
fn assert_intersect(a: &TrafficSelector, b: &TrafficSelector, want: Option<TrafficSelector>) {
    assert_eq!(intersect(a, b), want, "{a:?} & {b:?}");
    assert_eq!(intersect(b, a), want, "{b:?} & {a:?}");
}

// ------------------------------------------------------------- addresses

#[test]
fn rejects_disjoint_v4_ranges() {
    assert_intersect(&v4("10.0.0.0", "10.0.0.255"), &v4("10.0.1.0", "10.0.1.255"), None);
}

#[test]
fn accepts_adjacent_v4_ranges_sharing_one_address() {
    let one = v4("10.0.0.255", "10.0.0.255");
    assert_intersect(&v4("10.0.0.0", "10.0.0.255"), &v4("10.0.0.255", "10.0.1.255"), Some(one));
}

#[test]
fn nested_v4_range_gives_the_inner() {
    let outer = v4("10.0.0.0", "10.0.255.255");
    let inner = v4("10.0.7.0", "10.0.7.255");
    assert_intersect(&outer, &inner, Some(inner));
}

#[test]
fn partial_v4_overlap_gives_the_common_part() {
    assert_intersect(
        &v4("192.0.2.0", "192.0.2.127"),
        &v4("192.0.2.64", "192.0.2.255"),
        Some(v4("192.0.2.64", "192.0.2.127")),
    );
}

#[test]
fn rejects_disjoint_v6_ranges() {
    assert_intersect(&v6("2001:db8::", "2001:db8::ffff"), &v6("2001:db8:1::", "2001:db8:1::ffff"), None);
}

#[test]
fn nested_v6_range_gives_the_inner() {
    let inner = v6("2001:db8:0:5::", "2001:db8:0:5:ffff:ffff:ffff:ffff");
    assert_intersect(&v6("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), &inner, Some(inner));
}

#[test]
fn partial_v6_overlap_gives_the_common_part() {
    assert_intersect(
        &v6("2001:db8::", "2001:db8::8000"),
        &v6("2001:db8::4000", "2001:db8::ffff"),
        Some(v6("2001:db8::4000", "2001:db8::8000")),
    );
}

#[test]
fn rejects_family_mismatch() {
    let all4 = v4("0.0.0.0", "255.255.255.255");
    let all6 = v6("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_intersect(&all4, &all6, None);
    // Even where the numbers would overlap (::a00:0 is 10.0.0.0 as a u128).
    assert_intersect(&v4("10.0.0.0", "10.0.0.255"), &v6("::a00:0", "::a00:ff"), None);
    assert!(!covers(&all4, &v6("::", "::1")) && !covers(&all6, &v4("10.0.0.1", "10.0.0.1")));
    assert!(narrow(&[all4], &[all6]).is_empty());
}

#[test]
fn rejects_reversed_address_range() {
    let reversed = v4("10.0.0.9", "10.0.0.1");
    assert_intersect(&reversed, &v4("0.0.0.0", "255.255.255.255"), None);
    assert!(!covers(&v4("0.0.0.0", "255.255.255.255"), &reversed));
}

// ------------------------------------------------------ protocols, ports

#[test]
fn any_protocol_narrows_to_the_specific_one() {
    let net = v4("10.0.0.0", "10.0.0.255");
    assert_intersect(&net, &with(net, TCP, 0, 65535), Some(with(net, TCP, 0, 65535)));
    assert_intersect(&with(net, UDP, 0, 65535), &with(net, UDP, 0, 65535), Some(with(net, UDP, 0, 65535)));
}

#[test]
fn rejects_different_protocols() {
    let net = v4("10.0.0.0", "10.0.0.255");
    assert_intersect(&with(net, TCP, 0, 65535), &with(net, UDP, 0, 65535), None);
}

#[test]
fn port_ranges_overlap_or_not() {
    let net = v4("10.0.0.0", "10.0.0.255");
    // Any port against one port.
    assert_intersect(&net, &with(net, TCP, 443, 443), Some(with(net, TCP, 443, 443)));
    // Partial overlap, with the protocol narrowed too.
    assert_intersect(
        &with(net, 0, 1000, 2000),
        &with(net, UDP, 1500, 3000),
        Some(with(net, UDP, 1500, 2000)),
    );
    // Disjoint.
    assert_intersect(&with(net, TCP, 80, 80), &with(net, TCP, 443, 443), None);
}

#[test]
fn icmp_type_and_code_compare_as_ports() {
    // ICMP echo request (type 8, code 0) within "any type 8".
    let net = v4("10.0.0.0", "10.0.0.255");
    let echo = with(net, 1, 8 << 8, 8 << 8);
    assert_intersect(&with(net, 1, 8 << 8, (8 << 8) | 0xff), &echo, Some(echo));
    assert_intersect(&with(net, 1, 0, 0), &echo, None);
}

#[test]
fn opaque_ports_meet_only_any_port() {
    let net = v4("10.0.0.0", "10.0.0.255");
    let opaque = with(net, UDP, 65535, 0);
    assert_intersect(&net, &opaque, Some(opaque));
    assert_intersect(&opaque, &opaque, Some(opaque));
    assert_intersect(&with(net, 0, 0, 1023), &opaque, None);
    assert_intersect(&with(net, 0, 1, 65535), &opaque, None);
    assert!(covers(&net, &opaque));
    assert!(covers(&opaque, &opaque));
    assert!(!covers(&opaque, &with(net, UDP, 0, 65535)));
    assert!(!covers(&with(net, UDP, 53, 53), &opaque));
}

#[test]
fn rejects_reversed_port_range() {
    let net = v4("10.0.0.0", "10.0.0.255");
    assert_intersect(&net, &with(net, TCP, 90, 80), None);
}

// ---------------------------------------------------------------- narrow

#[test]
fn narrows_a_slash16_proposal_to_the_configured_slash24() {
    let proposed = [v4("10.1.0.0", "10.1.255.255")];
    let configured = [v4("10.1.2.0", "10.1.2.255")];
    assert_eq!(narrow(&proposed, &configured), configured);
}

#[test]
fn narrow_keeps_the_proposed_order_across_several_configured_selectors() {
    let configured = [
        v4("10.1.2.0", "10.1.2.255"),
        v4("10.9.0.0", "10.9.255.255"),
        v6("2001:db8::", "2001:db8::ffff:ffff"),
    ];
    let proposed = [
        // The packet that triggered the request (section 2.9) comes first.
        with(v4("10.9.3.4", "10.9.3.4"), TCP, 443, 443),
        v6("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"),
        v4("10.0.0.0", "10.255.255.255"),
        v4("172.16.0.0", "172.16.255.255"),
    ];
    assert_eq!(
        narrow(&proposed, &configured),
        [
            with(v4("10.9.3.4", "10.9.3.4"), TCP, 443, 443),
            v6("2001:db8::", "2001:db8::ffff:ffff"),
            v4("10.1.2.0", "10.1.2.255"),
            v4("10.9.0.0", "10.9.255.255"),
        ]
    );
}

#[test]
fn narrow_still_works_when_the_triggering_packet_is_refused() {
    let configured = [v4("10.1.0.0", "10.1.255.255")];
    let proposed = [v4("192.0.2.7", "192.0.2.7"), v4("10.0.0.0", "10.255.255.255")];
    assert_eq!(narrow(&proposed, &configured), configured);
}

#[test]
fn narrow_lists_each_result_once() {
    let configured = [v4("10.1.2.0", "10.1.2.255")];
    let proposed = [v4("10.1.0.0", "10.1.255.255"), v4("10.0.0.0", "10.255.255.255")];
    assert_eq!(narrow(&proposed, &configured), configured);
}

#[test]
fn narrow_to_nothing_means_ts_unacceptable() {
    let configured = [v4("10.1.2.0", "10.1.2.255"), with(v4("10.3.0.0", "10.3.0.255"), TCP, 22, 22)];
    let proposed = [v4("192.168.0.0", "192.168.255.255"), with(v4("10.3.0.0", "10.3.0.255"), UDP, 0, 65535)];
    assert!(narrow(&proposed, &configured).is_empty());
    assert!(narrow(&[], &configured).is_empty());
    assert!(narrow(&proposed, &[]).is_empty());
}

// ---------------------------------------------------------------- covers

#[test]
fn covers_accepts_subsets_and_rejects_the_rest() {
    let net16 = v4("10.1.0.0", "10.1.255.255");
    let net24 = v4("10.1.2.0", "10.1.2.255");
    assert!(covers(&net16, &net24));
    assert!(covers(&net16, &net16));
    assert!(!covers(&net24, &net16));
    // Partial overlap is not a subset.
    assert!(!covers(&net24, &v4("10.1.2.128", "10.1.3.127")));
    // A protocol or ports the outer does not restrict.
    assert!(covers(&net16, &with(net24, TCP, 80, 80)));
    assert!(!covers(&with(net16, TCP, 0, 65535), &net24));
    assert!(!covers(&with(net16, TCP, 0, 65535), &with(net24, UDP, 80, 80)));
    assert!(!covers(&with(net16, TCP, 80, 80), &with(net24, TCP, 80, 81)));
    assert!(covers(&with(net16, TCP, 80, 90), &with(net24, TCP, 85, 90)));
}

#[test]
fn every_narrowed_selector_is_covered_by_a_proposed_one() {
    let proposed = [v4("10.0.0.0", "10.0.255.255"), with(v4("10.2.0.0", "10.2.0.255"), UDP, 500, 4500)];
    let configured = [v4("10.0.4.0", "10.2.0.15"), with(v4("10.0.0.0", "10.255.255.255"), 0, 0, 1000)];
    let answer = narrow(&proposed, &configured);
    assert!(!answer.is_empty());
    for ts in &answer {
        assert!(proposed.iter().any(|p| covers(p, ts)), "{ts:?} not in the proposal");
        assert!(configured.iter().any(|c| covers(c, ts)), "{ts:?} not in the policy");
    }
}

// ------------------------------------------------------------- proptest

/// Addresses from a small range of one family, so that ranges often meet.
fn addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    (0u32..64).prop_map(move |n| {
        if v6 {
            IpAddr::V6(Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(n)))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
        }
    })
}

/// Ports from a few interesting values: any, OPAQUE, one port, ranges,
/// reversed.
fn port_pair() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        Just((0, 65535)),
        Just((65535, 0)),
        Just((1, 65535)),
        (0u16..8, 0u16..8),
        (any::<u16>(), any::<u16>()),
    ]
}

/// A selector, usually IPv4, sometimes IPv6 or mixing families.
fn selector() -> impl Strategy<Value = TrafficSelector> {
    let fam = prop_oneof![6 => Just((false, false)), 3 => Just((true, true)), 1 => Just((false, true))];
    (fam, prop_oneof![Just(0u8), Just(6u8), Just(17u8), any::<u8>()], port_pair()).prop_flat_map(
        |((s6, e6), ip_protocol, (start_port, end_port))| {
            (addr(s6), addr(e6)).prop_map(move |(start_addr, end_addr)| TrafficSelector {
                ip_protocol,
                start_port,
                end_port,
                start_addr,
                end_addr,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn intersect_is_commutative(a in selector(), b in selector()) {
        prop_assert_eq!(intersect(&a, &b), intersect(&b, &a));
    }

    #[test]
    fn intersection_is_covered_by_both_inputs(a in selector(), b in selector()) {
        if let Some(x) = intersect(&a, &b) {
            prop_assert!(covers(&a, &x), "{:?} does not cover {:?}", a, x);
            prop_assert!(covers(&b, &x), "{:?} does not cover {:?}", b, x);
            prop_assert_eq!(intersect(&x, &x), Some(x));
        }
    }

    #[test]
    fn covers_is_intersect_giving_the_inner(a in selector(), b in selector()) {
        prop_assert_eq!(covers(&a, &b), intersect(&a, &b) == Some(b));
    }

    #[test]
    fn narrow_answers_a_subset_of_both_lists(
        proposed in proptest::collection::vec(selector(), 0..6),
        configured in proptest::collection::vec(selector(), 0..4),
    ) {
        let answer = narrow(&proposed, &configured);
        for (i, ts) in answer.iter().enumerate() {
            prop_assert!(proposed.iter().any(|p| covers(p, ts)));
            prop_assert!(configured.iter().any(|c| covers(c, ts)));
            prop_assert!(!answer[..i].contains(ts), "duplicate {:?}", ts);
        }
        let pairs = proposed.iter().flat_map(|p| configured.iter().map(move |c| (p, c)));
        for (p, c) in pairs {
            if let Some(x) = intersect(p, c) {
                prop_assert!(answer.contains(&x));
            }
        }
    }
}
