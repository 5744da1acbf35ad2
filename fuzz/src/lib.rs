//! Fixtures shared by Tandem's fuzz targets and the seed writer
//! (`examples/write_seeds.rs`): deterministic SAs and keys, so checked-in
//! seed packets authenticate against the SAs the targets install, and small
//! packet builders.

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use rand_core::SeedableRng;
use tandem_esp::{
    AeadAlgorithm, CbcAlgorithm, InboundSa, IntegAlgorithm, Mode, OutboundSa, Provider, SaParams, Sad, Suite,
    UdpEncap,
};

/// A ChaCha20 RNG with a fixed seed.
pub fn rng(seed: u64) -> ChaCha20Rng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha20Rng::from_seed(s)
}

/// The AEAD provider number `i` (modulo the providers built in).
pub fn provider(i: usize) -> Provider {
    let all = Provider::available();
    all[i % all.len()]
}

/// One SA of the receive fixture.
#[derive(Clone, Copy, Debug)]
pub struct SaSpec {
    /// The SPI (`SPI_BASE + index`, so `spi % RECEIVE_SAS` is the index).
    pub spi: u32,
    /// Cipher suite.
    pub suite: Suite,
    /// Index of the AEAD provider (see [`provider`]).
    pub provider: usize,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Extended sequence numbers.
    pub esn: bool,
    /// IPv6 tunnel endpoints (IPv4 otherwise).
    pub v6: bool,
    /// Replay window size.
    pub window: u32,
}

/// SPI of the first receive-fixture SA; `0xc000_0000` is a multiple of
/// [`RECEIVE_SAS`], so any SPI maps to fixture SA `spi % RECEIVE_SAS`.
pub const SPI_BASE: u32 = 0xc000_0000;
/// Number of SAs in the receive fixture.
pub const RECEIVE_SAS: usize = 6;

const fn spec(i: u32, suite: Suite, provider: usize, mode: Mode, esn: bool, v6: bool, window: u32) -> SaSpec {
    SaSpec { spi: SPI_BASE + i, suite, provider, mode, esn, v6, window }
}

/// The inbound SAs `esp_receive` installs: AEAD and CBC suites, both
/// providers, tunnel and transport, ESN on and off, window sizes from 1 to
/// the largest.
pub const RECEIVE_FIXTURE: [SaSpec; RECEIVE_SAS] = [
    spec(0, Suite::Aead(AeadAlgorithm::Aes128Gcm16), 0, Mode::Tunnel, false, false, 1024),
    spec(1, Suite::Aead(AeadAlgorithm::ChaCha20Poly1305), 1, Mode::Transport, true, false, 64),
    spec(2, Suite::Aead(AeadAlgorithm::Aes256Gcm16), 1, Mode::Tunnel, true, true, 1),
    spec(
        3,
        Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128),
        0,
        Mode::Transport,
        false,
        true,
        1024,
    ),
    spec(
        4,
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha512_256),
        0,
        Mode::Tunnel,
        true,
        false,
        4096,
    ),
    spec(
        5,
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha384_192),
        0,
        Mode::Transport,
        true,
        false,
        65536,
    ),
];

/// Deterministic KEYMAT for an SA with this SPI and suite.
pub fn keymat(spi: u32, suite: Suite) -> Vec<u8> {
    let salt = spi.to_le_bytes();
    (0..suite.keymat_len()).map(|i| (i as u8).wrapping_mul(37) ^ salt[i % 4] ^ 0x5a).collect()
}

/// The tunnel endpoints `(sender, receiver)` of one address family.
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

/// Parameters of the sending (`outbound`) or receiving side of `s`.
pub fn params<'a>(s: &SaSpec, keymat: &'a [u8], outbound: bool, udp: bool) -> SaParams<'a> {
    let (sender, receiver) = endpoints(s.v6);
    let (local, remote) = if outbound { (sender, receiver) } else { (receiver, sender) };
    let mut p = SaParams::new(s.spi, s.suite, keymat, local, remote);
    p.provider = provider(s.provider);
    p.mode = s.mode;
    p.esn = s.esn;
    p.replay_window = s.window;
    p.udp_encap = udp.then_some(UdpEncap { local_port: 4500, remote_port: 4500 });
    p
}

/// The receiving SA of `s`.
pub fn inbound_sa(s: &SaSpec) -> InboundSa {
    let k = keymat(s.spi, s.suite);
    InboundSa::new(&params(s, &k, false, false)).expect("fixture inbound SA is valid")
}

/// The peer's sending SA of `s`, optionally UDP-encapsulating to port 4500.
pub fn outbound_sa(s: &SaSpec, udp: bool) -> OutboundSa {
    let k = keymat(s.spi, s.suite);
    OutboundSa::new(&params(s, &k, true, udp), &mut rng(u64::from(s.spi)))
        .expect("fixture outbound SA is valid")
}

/// A SAD holding every SA of [`RECEIVE_FIXTURE`].
pub fn receive_sad() -> Sad {
    let mut sad = Sad::new(0x7a4d_e5f0_0d15_ea5e);
    for s in &RECEIVE_FIXTURE {
        sad.insert_inbound(inbound_sa(s)).expect("fixture SPIs are distinct");
    }
    sad
}

/// The ones'-complement checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Appends an IPv4 header with `options` octets of NOP options (a multiple
/// of 4, at most 40) for a packet of `total_len` octets.
pub fn push_ipv4_header(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    total_len: u16,
    options: usize,
) {
    let start = out.len();
    let ihl = (20 + options) / 4;
    out.extend_from_slice(&[0x40 | ihl as u8, 0x10]);
    out.extend_from_slice(&total_len.to_be_bytes());
    out.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, protocol, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    out.resize(out.len() + options, 1);
    let c = checksum(&out[start..]);
    out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

/// Appends an IPv6 fixed header for a payload of `payload_len` octets.
pub fn push_ipv6_header(out: &mut Vec<u8>, src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: u16) {
    out.extend_from_slice(&[0x60, 0, 0, 0]);
    out.extend_from_slice(&payload_len.to_be_bytes());
    out.extend_from_slice(&[next, 64]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
}

/// Appends a UDP header (checksum zero) for a payload of `payload_len` octets.
pub fn push_udp_header(out: &mut Vec<u8>, sport: u16, dport: u16, payload_len: usize) {
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// A UDP-in-IP packet with `payload_len` patterned payload octets.
pub fn udp_packet(v6: bool, sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    let udp_len = 8 + payload_len;
    if v6 {
        let (s, d) = (Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5), Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 7));
        push_ipv6_header(&mut p, s, d, 17, udp_len as u16);
    } else {
        let (s, d) = (Ipv4Addr::new(10, 1, 0, 5), Ipv4Addr::new(10, 2, 0, 7));
        push_ipv4_header(&mut p, s, d, 17, (20 + udp_len) as u16, 0);
    }
    push_udp_header(&mut p, sport, dport, payload_len);
    p.extend((0..payload_len).map(|i| i as u8));
    p
}
