//! A port's link layer on arbitrary input: received frames (the Ethernet
//! filter, ARP, ND, ICMP echo, passive learning), packets sent through the
//! neighbour table and its queues, "too big" errors, and timers between
//! them, on an IPv4 and an IPv6 port, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};
use tandem_cluster::link::{Link, LinkConfig};

const OWN: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLUSTER: [u8; 6] = [0x01, 0x00, 0x5e, 0x7f, 0, 0x01];

fn port(vip: IpAddr, prefix_len: u8, gateway: IpAddr) -> Link {
    let mut cfg = LinkConfig::new(OWN, CLUSTER, vip, prefix_len);
    cfg.gateway = Some(gateway);
    Link::new(cfg)
}

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut v4 = port(Ipv4Addr::new(192, 0, 2, 1).into(), 24, Ipv4Addr::new(192, 0, 2, 254).into());
    let mut v6 = port(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
        64,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into(),
    );
    // Inputs: [kind, hi, lo, bytes...]*; kind: bit 0 the port (IPv4,
    // IPv6), bit 1 whether this node owns every peer, the rest the
    // operation. A timer's hi and lo are milliseconds and it has no bytes;
    // for the others they are the length of the bytes.
    let mut rest = data;
    while let [kind, hi, lo, tail @ ..] = rest {
        let link = if kind & 1 == 0 { &mut v4 } else { &mut v6 };
        let owned = kind & 2 != 0;
        let n = u16::from_be_bytes([*hi, *lo]);
        let (input, next) = match (kind >> 2) % 5 {
            3 => (&[][..], tail),
            _ => tail.split_at(usize::from(n).min(tail.len())),
        };
        match (kind >> 2) % 5 {
            0 => {
                let _ = link.handle_frame(now, input, &|_| owned);
            }
            1 => link.send_ip(now, input),
            2 => match input {
                [m0, m1, packet @ ..] => link.too_big(now, packet, u16::from_be_bytes([*m0, *m1])),
                _ => link.too_big(now, input, 1280),
            },
            3 => {
                now += Duration::from_millis(u64::from(n));
                link.handle_timeout(now);
            }
            _ => {
                if let Some(t) = link.poll_timeout() {
                    now = now.max(t);
                    link.handle_timeout(now);
                }
            }
        }
        while link.poll_frame().is_some() {}
        let _ = link.neighbours().count();
        let _ = link.stats();
        rest = next;
    }
});
