//! `wire::IpHeader::parse`, `wire::classify_udp_encap`, `wire::ports`, the
//! checksum helpers and `Spd::lookup` (with a few policies) on arbitrary
//! bytes: no panics, and what they return is consistent with the input.
#![no_main]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tandem_esp::wire::{self, IpHeader, UdpEncapKind};
use tandem_esp::{Policy, Spd, TrafficSelector};

fn spd() -> &'static Spd<u8> {
    static SPD: OnceLock<Spd<u8>> = OnceLock::new();
    SPD.get_or_init(|| {
        let net = |a: IpAddr, p: u8| TrafficSelector::subnet(a, p).expect("valid prefix");
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let mut spd = Spd::new();
        spd.insert(Policy { local: TrafficSelector::ANY_V4, remote: TrafficSelector::ANY_V4, target: 0 });
        spd.insert(Policy { local: net(v4(10, 1, 0, 0), 16), remote: net(v4(10, 2, 0, 0), 16), target: 1 });
        spd.insert(Policy {
            local: net(v4(10, 1, 0, 0), 24),
            remote: TrafficSelector {
                protocol: 17,
                start_port: 500,
                end_port: 4500,
                ..net(v4(10, 2, 0, 0), 24)
            },
            target: 2,
        });
        spd.insert(Policy { local: TrafficSelector::ANY_V6, remote: TrafficSelector::ANY_V6, target: 3 });
        spd.insert(Policy {
            local: net(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)), 48),
            remote: TrafficSelector {
                protocol: 6,
                start_port: 443,
                end_port: 443,
                ..net(IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0)), 64)
            },
            target: 4,
        });
        // A selector of mixed families never matches anything.
        spd.insert(Policy {
            local: TrafficSelector { end: IpAddr::V6(Ipv6Addr::LOCALHOST), ..TrafficSelector::ANY_V4 },
            remote: TrafficSelector::ANY_V4,
            target: 5,
        });
        spd
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = IpHeader::parse(data);
    if let Ok(h) = &parsed {
        assert!(h.header_len >= wire::IPV4_HEADER_LEN, "{h:?}");
        assert!(h.header_len <= h.total_len && h.total_len <= data.len(), "{h:?} of {} octets", data.len());
        assert_eq!(h.src.is_ipv4(), h.dst.is_ipv4(), "{h:?}");
        assert_eq!(h.src.is_ipv4(), data[0] >> 4 == 4, "{h:?}");
        let payload = &data[h.payload()];
        let _ = wire::ports(h.protocol, payload);
    }

    let looked_up = spd().lookup(data);
    assert_eq!(looked_up.is_ok(), parsed.is_ok(), "lookup and parse disagree: {looked_up:?} {parsed:?}");
    if let (Ok(Some(&target)), Ok(h)) = (looked_up, parsed) {
        assert_ne!(target, 5, "a mixed-family selector matched");
        match target {
            0..=2 => assert!(h.src.is_ipv4(), "IPv4 policy {target} matched {h:?}"),
            _ => assert!(h.src.is_ipv6(), "IPv6 policy {target} matched {h:?}"),
        }
    }

    match wire::classify_udp_encap(data) {
        Ok(UdpEncapKind::Ike(r)) => assert!(r.start == 4 && r.end == data.len(), "{r:?}"),
        Ok(UdpEncapKind::NatKeepalive) => assert_eq!(data, [0xff]),
        Ok(UdpEncapKind::Esp) => assert!(data.len() >= 8 && data[..4] != [0; 4]),
        Err(_) => {}
    }

    // Checksums fold to 16 bits; a buffer with its own checksum appended
    // (at an even offset) sums to zero.
    let acc = wire::checksum_add(0, data);
    assert!(acc <= 0xffff);
    let c = wire::checksum_finish(acc);
    if data.len().is_multiple_of(2) {
        assert_eq!(wire::checksum_finish(wire::checksum_add(acc, &c.to_be_bytes())), 0);
    }
});
