//! Shared helpers of the ESP integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use rand_core::{Rng, SeedableRng};
use tandem_esp::{HEADROOM, InboundSa, Mode, OutboundSa, Provider, SaParams, Suite, TAILROOM, UdpEncap};

pub const SPI: u32 = 0x1234_5678;

pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

/// Tunnel endpoints of one family.
pub fn endpoints(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        )
    } else {
        (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)))
    }
}

/// Options of an SA pair.
#[derive(Clone, Copy, Debug)]
pub struct PairOpts {
    pub suite: Suite,
    pub provider: Provider,
    pub mode: Mode,
    pub esn: bool,
    pub outer_v6: bool,
    pub udp: bool,
    pub window: u32,
}

impl PairOpts {
    pub fn new(suite: Suite) -> Self {
        Self {
            suite,
            provider: Provider::preferred(),
            mode: Mode::Tunnel,
            esn: false,
            outer_v6: false,
            udp: false,
            window: 1024,
        }
    }
}

/// An outbound SA and the inbound SA of the peer that receives from it.
pub fn pair(o: PairOpts, seed: u64) -> (OutboundSa, InboundSa) {
    let mut r = rng(seed);
    let mut keymat = vec![0u8; o.suite.keymat_len()];
    r.fill_bytes(&mut keymat);
    let (a, b) = endpoints(o.outer_v6);
    let mut p = SaParams::new(SPI, o.suite, &keymat, a, b);
    p.provider = o.provider;
    p.mode = o.mode;
    p.esn = o.esn;
    p.replay_window = o.window;
    p.udp_encap = o.udp.then_some(UdpEncap { local_port: 4500, remote_port: 4500 });
    let out = OutboundSa::new(&p, &mut r).expect("valid outbound SA");
    let mut q = p;
    q.local = b;
    q.remote = a;
    let inb = InboundSa::new(&q).expect("valid inbound SA");
    (out, inb)
}

/// A UDP-in-IP packet of `payload_len` payload octets with patterned content.
pub fn inner_packet(v6: bool, payload_len: usize, fill: u8) -> Vec<u8> {
    let udp_len = 8 + payload_len;
    let mut p = Vec::new();
    if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(udp_len as u16).to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        p.extend_from_slice(&Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5).octets());
        p.extend_from_slice(&Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 7).octets());
    } else {
        let total = (20 + udp_len) as u16;
        p.extend_from_slice(&[0x45, 0x10]);
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7]);
        let c = !checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(&1234u16.to_be_bytes());
    p.extend_from_slice(&5678u16.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(fill)));
    p
}

fn checksum(d: &[u8]) -> u16 {
    let mut s: u32 =
        d.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// `packet` placed in a buffer with full head- and tailroom.
pub fn framed(packet: &[u8]) -> (Vec<u8>, core::ops::Range<usize>) {
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    (buf, HEADROOM..HEADROOM + packet.len())
}
