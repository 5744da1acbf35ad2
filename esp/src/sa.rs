//! ESP security associations: encapsulation (outbound) and decapsulation
//! (inbound), in place in the caller's buffer.
//!
//! The buffer holds the packet at `packet` with at least [`HEADROOM`] octets
//! before it and [`TAILROOM`] after it; encapsulation writes headers into the
//! headroom and the trailer and ICV into the tailroom, so no packet is ever
//! copied or allocated. Every drop is counted per SA by its typed reason.
//! For speed, put packets at 64-octet-aligned addresses: tunnel-mode
//! encryption then starts on a cache line (about 10% faster at 1400 octets
//! with `ring`'s AES-GCM, see BENCHMARKS.md).

use crate::cipher::{Cipher, ESP_HEADER_LEN, MAX_ICV_LEN, MAX_IV_LEN, Suite};
use crate::replay::{DEFAULT_WINDOW, ReplayWindow};
use crate::wire::{
    self, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpHeader, PROTO_ESP, PROTO_IPV4, PROTO_IPV6, PROTO_NONE,
    PROTO_UDP, UDP_HEADER_LEN,
};
use crate::{DropCounters, Error, TrafficSelector};
use core::net::IpAddr;
use core::ops::Range;
use rand_core::CryptoRng;
use tandem_crypto::aead::Provider;
use tandem_crypto::cbc_hmac::BLOCK_LEN;

/// Octets an encapsulation may write before the packet: outer IPv6 header,
/// UDP header, ESP header and the largest IV.
pub const HEADROOM: usize = IPV6_HEADER_LEN + UDP_HEADER_LEN + ESP_HEADER_LEN + MAX_IV_LEN;
/// Octets an encapsulation may write after the packet: the largest padding,
/// pad length and next header, and the largest ICV.
pub const TAILROOM: usize = BLOCK_LEN - 1 + 2 + MAX_ICV_LEN;

/// IPsec mode (RFC 4301 section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The whole inner IP packet is protected and a new outer header added.
    Tunnel,
    /// The IP payload is protected; ESP is inserted after the IP header.
    /// With UDP encapsulation, inner TCP/UDP checksums are not fixed up for
    /// NAT (RFC 3948 section 3.1.2), so transport mode suits peers that are
    /// not behind a NAT.
    Transport,
}

/// UDP encapsulation of ESP (RFC 3948): the ports of the outer UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// Our port (usually 4500).
    pub local_port: u16,
    /// The peer's port (4500, or what its NAT mapped it to).
    pub remote_port: u16,
}

/// What the outer part of an encapsulated packet holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Only the ESP packet (SPI to ICV), for a UDP/4500 or raw ESP socket
    /// that adds its own headers. In transport mode the IP header is dropped.
    Esp,
    /// A whole IP packet: outer IP header, UDP header when UDP-encapsulated,
    /// then ESP; for raw L2/L3 ports.
    Ip,
}

/// Byte and packet limits of an SA's lifetime (RFC 4301 section 4.4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Octets of payload processed.
    pub bytes: u64,
    /// Packets processed.
    pub packets: u64,
}

impl Limits {
    /// No limit.
    pub const UNLIMITED: Limits = Limits { bytes: u64::MAX, packets: u64::MAX };
}

/// Soft and hard lifetimes: reaching the soft one raises
/// [`SaEvent::SoftLifetime`] (time to rekey), the hard one stops the SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lifetimes {
    /// Rekey threshold.
    pub soft: Limits,
    /// End of the SA.
    pub hard: Limits,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self { soft: Limits::UNLIMITED, hard: Limits::UNLIMITED }
    }
}

/// An SA's lifetime events, drained with `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaEvent {
    /// The soft lifetime was reached (raised once): rekey now.
    SoftLifetime,
    /// The hard lifetime was reached (raised once): the SA refuses packets.
    HardLifetime,
}

/// Traffic and drop counters of one SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaStats {
    /// Packets processed successfully.
    pub packets: u64,
    /// Payload octets processed successfully.
    pub bytes: u64,
    /// Drops by reason.
    pub drops: DropCounters,
}

/// Everything needed to install one direction of an ESP SA.
#[derive(Clone, Copy, Debug)]
pub struct SaParams<'a> {
    /// The SPI (the peer's for outbound, ours for inbound).
    pub spi: u32,
    /// The cipher suite.
    pub suite: Suite,
    /// The AEAD provider.
    pub provider: Provider,
    /// This direction's KEYMAT: encryption key (and salt), then integrity key.
    pub keymat: &'a [u8],
    /// Tunnel or transport mode.
    pub mode: Mode,
    /// Extended sequence numbers (RFC 4304).
    pub esn: bool,
    /// Our tunnel endpoint address.
    pub local: IpAddr,
    /// The peer's tunnel endpoint address.
    pub remote: IpAddr,
    /// UDP encapsulation, when a NAT was detected.
    pub udp_encap: Option<UdpEncap>,
    /// Byte and packet lifetimes.
    pub lifetimes: Lifetimes,
    /// Anti-replay window size in packets (inbound only).
    pub replay_window: u32,
}

impl<'a> SaParams<'a> {
    /// Parameters with defaults: tunnel mode, no ESN, the preferred
    /// provider, no UDP encapsulation, no lifetimes, a 1024-packet window.
    pub fn new(spi: u32, suite: Suite, keymat: &'a [u8], local: IpAddr, remote: IpAddr) -> Self {
        Self {
            spi,
            suite,
            provider: Provider::preferred(),
            keymat,
            mode: Mode::Tunnel,
            esn: false,
            local,
            remote,
            udp_encap: None,
            lifetimes: Lifetimes::default(),
            replay_window: DEFAULT_WINDOW,
        }
    }
}

/// State both directions share.
struct Common {
    spi: u32,
    suite: Suite,
    mode: Mode,
    esn: bool,
    local: IpAddr,
    remote: IpAddr,
    udp_encap: Option<UdpEncap>,
    lifetimes: Lifetimes,
    stats: SaStats,
    soft_raised: bool,
    hard_raised: bool,
    events: [Option<SaEvent>; 2],
    cipher: Cipher,
}

impl Common {
    fn new(p: &SaParams<'_>, cipher: Cipher) -> Result<Self, Error> {
        if p.local.is_ipv4() != p.remote.is_ipv4() {
            return Err(Error::InvalidSa("local and remote addresses of different families"));
        }
        Ok(Self {
            spi: p.spi,
            suite: p.suite,
            mode: p.mode,
            esn: p.esn,
            local: p.local,
            remote: p.remote,
            udp_encap: p.udp_encap,
            lifetimes: p.lifetimes,
            stats: SaStats::default(),
            soft_raised: false,
            hard_raised: false,
            events: [None; 2],
            cipher,
        })
    }

    fn check_hard(&mut self) -> Result<(), Error> {
        let s = &self.stats;
        if s.packets >= self.lifetimes.hard.packets || s.bytes >= self.lifetimes.hard.bytes {
            if !self.hard_raised {
                self.hard_raised = true;
                self.events[1] = Some(SaEvent::HardLifetime);
            }
            return Err(Error::LifetimeExpired);
        }
        Ok(())
    }

    fn count(&mut self, bytes: usize) {
        self.stats.packets += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(bytes as u64);
        let soft = self.lifetimes.soft;
        if !self.soft_raised && (self.stats.packets >= soft.packets || self.stats.bytes >= soft.bytes) {
            self.soft_raised = true;
            self.events[0] = Some(SaEvent::SoftLifetime);
        }
    }

    fn poll_event(&mut self) -> Option<SaEvent> {
        self.events.iter_mut().find_map(Option::take)
    }

    fn aad(&self, seq: u64) -> ([u8; 12], usize) {
        let mut aad = [0u8; 12];
        aad[..4].copy_from_slice(&self.spi.to_be_bytes());
        if self.esn {
            aad[4..].copy_from_slice(&seq.to_be_bytes());
            (aad, 12)
        } else {
            aad[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
            (aad, 8)
        }
    }
}

/// Sequence numbers from which a non-ESN SA asks to be rekeyed.
const SOFT_SEQ_NON_ESN: u64 = 0xf000_0000;

/// The outbound half of an ESP SA.
pub struct OutboundSa {
    c: Common,
    /// The next sequence number to send.
    next_seq: u64,
}

impl OutboundSa {
    /// Keys an outbound SA. The RNG seeds the CBC IV generator.
    pub fn new<R: CryptoRng + ?Sized>(p: &SaParams<'_>, rng: &mut R) -> Result<Self, Error> {
        let cipher = Cipher::new(p.suite, p.provider, p.keymat, Some(rng))?;
        Ok(Self { c: Common::new(p, cipher)?, next_seq: 1 })
    }

    /// The peer's SPI this SA sends with.
    pub fn spi(&self) -> u32 {
        self.c.spi
    }

    /// The cipher suite.
    pub fn suite(&self) -> Suite {
        self.c.suite
    }

    /// Counters.
    pub fn stats(&self) -> &SaStats {
        &self.c.stats
    }

    /// The sequence number the next packet will carry; 0 once the 64-bit
    /// space is used up.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Moves the sequence counter forward to `seq` if it is ahead; it never
    /// moves back, so no number is sent twice. (A cluster node taking over
    /// an SA jumps ahead by a safety margin.)
    pub fn advance_seq_to(&mut self, seq: u64) {
        if self.next_seq != 0 {
            self.next_seq = self.next_seq.max(seq);
        }
    }

    /// The next lifetime event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.c.poll_event()
    }

    /// Octets encapsulation adds to an inner packet of `len` octets with the
    /// given framing: for MTU and MSS calculations.
    pub fn overhead(&self, len: usize, framing: Framing) -> usize {
        let s = self.c.suite;
        let pad = pad_len(len, s.align());
        let mut o = ESP_HEADER_LEN + s.iv_len() + pad + 2 + s.icv_len();
        if framing == Framing::Ip {
            o += self.c.udp_encap.map_or(0, |_| UDP_HEADER_LEN);
            if self.c.mode == Mode::Tunnel {
                o += if self.c.remote.is_ipv4() { IPV4_HEADER_LEN } else { IPV6_HEADER_LEN };
            }
        }
        o
    }

    /// Encapsulates the plaintext IP packet at `buf[packet]` in place and
    /// returns the range of the result. Needs [`HEADROOM`] octets before and
    /// [`TAILROOM`] after `packet` (less for smaller suites). On error the
    /// drop is counted and `buf` outside `packet` may have been written.
    pub fn encapsulate(
        &mut self,
        buf: &mut [u8],
        packet: Range<usize>,
        framing: Framing,
    ) -> Result<Range<usize>, Error> {
        let r = self.encap(buf, packet, framing, None);
        if let Err(e) = &r {
            self.c.stats.drops.record(e);
        }
        r
    }

    /// Encapsulation proper; `aead_iv` replaces the sequence-number IV in
    /// known-answer tests only.
    pub(crate) fn encap(
        &mut self,
        buf: &mut [u8],
        packet: Range<usize>,
        framing: Framing,
        aead_iv: Option<[u8; 8]>,
    ) -> Result<Range<usize>, Error> {
        if packet.start > packet.end || packet.end > buf.len() {
            return Err(Error::NoRoom);
        }
        self.c.check_hard()?;
        let seq = self.next_seq;
        if seq == 0 || (!self.c.esn && seq > u64::from(u32::MAX)) {
            return Err(Error::SequenceExhausted);
        }
        let suite = self.c.suite;
        let inner = IpHeader::parse(&buf[packet.clone()])?;
        // What gets encrypted, and where the IP header (transport) lives.
        let (payload, next_header) = match self.c.mode {
            Mode::Tunnel => {
                let nh = if inner.src.is_ipv4() { PROTO_IPV4 } else { PROTO_IPV6 };
                (packet.start..packet.start + inner.total_len, nh)
            }
            Mode::Transport => {
                if inner.fragment {
                    return Err(Error::Malformed("transport-mode IP fragment"));
                }
                if inner.protocol == PROTO_NONE {
                    // It would arrive as a dummy packet and be dropped.
                    return Err(Error::Malformed("transport-mode next header 59"));
                }
                (packet.start + inner.header_len..packet.start + inner.total_len, inner.protocol)
            }
        };
        let plen = payload.len();
        let pad = pad_len(plen, suite.align());
        let trailer_end = payload.end + pad + 2;
        let icv_end = trailer_end + suite.icv_len();
        let esp_hdr = ESP_HEADER_LEN + suite.iv_len();
        let udp = if framing == Framing::Ip && self.c.udp_encap.is_some() { UDP_HEADER_LEN } else { 0 };
        let outer_ip = match (framing, self.c.mode) {
            (Framing::Esp, _) => 0,
            (Framing::Ip, Mode::Transport) => inner.header_len,
            (Framing::Ip, Mode::Tunnel) => {
                if self.c.remote.is_ipv4() {
                    IPV4_HEADER_LEN
                } else {
                    IPV6_HEADER_LEN
                }
            }
        };
        if self.c.mode == Mode::Transport && inner.src.is_ipv4() != self.c.remote.is_ipv4() {
            return Err(Error::Malformed("transport-mode address family"));
        }
        let esp_start = payload.start.checked_sub(esp_hdr).ok_or(Error::NoRoom)?;
        let start = esp_start.checked_sub(udp + outer_ip).ok_or(Error::NoRoom)?;
        if icv_end > buf.len() || icv_end - start > usize::from(u16::MAX) {
            return Err(Error::NoRoom);
        }
        // The transport-mode IP header moves left to make room for ESP
        // (and UDP); in ESP framing it is dropped.
        if self.c.mode == Mode::Transport && framing == Framing::Ip {
            buf.copy_within(packet.start..payload.start, start);
        }

        // Trailer: the RFC 4303 default padding 1, 2, 3... then pad length
        // and next header.
        for (i, b) in buf[payload.end..payload.end + pad].iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        buf[trailer_end - 2] = pad as u8;
        buf[trailer_end - 1] = next_header;
        buf[esp_start..esp_start + 4].copy_from_slice(&self.c.spi.to_be_bytes());
        buf[esp_start + 4..esp_start + 8].copy_from_slice(&(seq as u32).to_be_bytes());

        let ct = esp_start + esp_hdr..trailer_end;
        match &self.c.cipher {
            Cipher::Aead(a) => {
                // The IV is the 64-bit sequence number: unique per SA because
                // sequence numbers never repeat (RFC 4106 section 3.1).
                let iv = aead_iv.unwrap_or(seq.to_be_bytes());
                buf[esp_start + 8..esp_start + 16].copy_from_slice(&iv);
                let (aad, n) = self.c.aad(seq);
                let tag = a.seal(&iv, &aad[..n], &mut buf[ct.clone()])?;
                buf[trailer_end..icv_end].copy_from_slice(&tag);
            }
            Cipher::CbcHmac(k) => {
                let (cbc, integ, iv_gen) = (&k.cbc, &k.integ, &k.iv_gen);
                let mut iv = [0u8; BLOCK_LEN];
                iv[..8].copy_from_slice(&seq.to_be_bytes());
                iv[8..12].copy_from_slice(&self.c.spi.to_be_bytes());
                iv_gen
                    .as_ref()
                    .ok_or(Error::InvalidSa("outbound CBC SA without IV key"))?
                    .encrypt_block(&mut iv);
                buf[esp_start + 8..esp_start + 8 + BLOCK_LEN].copy_from_slice(&iv);
                cbc.encrypt(&iv, &mut buf[ct.clone()])?;
                let hi = ((seq >> 32) as u32).to_be_bytes();
                let esn: &[u8] = if self.c.esn { &hi } else { &[] };
                let icv = integ.compute(&[&buf[esp_start..trailer_end], esn]);
                let n = suite.icv_len();
                buf[trailer_end..icv_end].copy_from_slice(&icv[..n]);
            }
        }

        if udp != 0 {
            let u = self.c.udp_encap.ok_or(Error::InvalidSa("UDP framing without ports"))?;
            let s = start + outer_ip;
            wire::write_udp(&mut buf[s..icv_end], self.c.local, self.c.remote, u.local_port, u.remote_port)?;
        }
        let proto = if udp != 0 { PROTO_UDP } else { PROTO_ESP };
        match (framing, self.c.mode, self.c.local, self.c.remote) {
            (Framing::Esp, ..) => {}
            (Framing::Ip, Mode::Transport, ..) => {
                wire::rewrite_ip(&mut buf[start..icv_end], proto, icv_end - start)?
            }
            (Framing::Ip, Mode::Tunnel, IpAddr::V4(l), IpAddr::V4(r)) => {
                // Lengths were checked against u16::MAX above.
                let len = (icv_end - start) as u16;
                wire::write_ipv4(&mut buf[start..], l, r, proto, len, seq as u16, inner.tos);
            }
            (Framing::Ip, Mode::Tunnel, IpAddr::V6(l), IpAddr::V6(r)) => {
                let len = (icv_end - start - IPV6_HEADER_LEN) as u16;
                wire::write_ipv6(&mut buf[start..], l, r, proto, len, inner.tos);
            }
            _ => return Err(Error::InvalidSa("local and remote addresses of different families")),
        }

        // After 2^64 - 1 the counter wraps to 0, which marks it exhausted.
        self.next_seq = seq.wrapping_add(1);
        self.c.count(plen);
        if !self.c.esn && self.next_seq >= SOFT_SEQ_NON_ESN && !self.c.soft_raised {
            self.c.soft_raised = true;
            self.c.events[0] = Some(SaEvent::SoftLifetime);
        }
        Ok(start..icv_end)
    }
}

impl core::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &format_args!("{:#010x}", self.c.spi))
            .field("suite", &self.c.suite)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// A successfully decapsulated packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decapsulated {
    /// The inbound SA's SPI.
    pub spi: u32,
    /// The plaintext: the inner IP packet (tunnel mode), or the transport
    /// payload (transport mode, ESP-only input) or the rebuilt IP packet
    /// (transport mode, IP input).
    pub range: Range<usize>,
    /// The ESP next header: 4 or 41 in tunnel mode, the transport protocol
    /// otherwise.
    pub next_header: u8,
}

/// The inbound half of an ESP SA.
pub struct InboundSa {
    c: Common,
    pub(crate) replay: ReplayWindow,
    /// Tunnel mode: inner packets must come from one of `remote_ts` and go
    /// to one of `local_ts` (RFC 4301 section 5.2); empty lists allow all.
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
}

impl InboundSa {
    /// Keys an inbound SA.
    pub fn new(p: &SaParams<'_>) -> Result<Self, Error> {
        let cipher = Cipher::new::<dyn CryptoRng>(p.suite, p.provider, p.keymat, None)?;
        Ok(Self {
            c: Common::new(p, cipher)?,
            replay: ReplayWindow::new(p.replay_window)?,
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
        })
    }

    /// Restricts tunnel-mode inner packets to the SA's negotiated traffic
    /// selectors: sources in `remote_ts`, destinations in `local_ts`.
    /// Packets outside them are dropped as [`Error::PolicyViolation`].
    pub fn set_selectors(&mut self, local_ts: Vec<TrafficSelector>, remote_ts: Vec<TrafficSelector>) {
        self.local_ts = local_ts;
        self.remote_ts = remote_ts;
    }

    /// Our SPI, which the peer sends with.
    pub fn spi(&self) -> u32 {
        self.c.spi
    }

    /// The cipher suite.
    pub fn suite(&self) -> Suite {
        self.c.suite
    }

    /// The SA's mode.
    pub fn mode(&self) -> Mode {
        self.c.mode
    }

    /// Counters.
    pub fn stats(&self) -> &SaStats {
        &self.c.stats
    }

    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Whether the window already holds the sequence number of the ESP
    /// packet `esp` (SPI to ICV), or it lies before the window: what a
    /// cluster node that only samples an SA asks before verifying, since a
    /// peer's synced window may run ahead of its own receive queue.
    /// Changes nothing and counts nothing; short packets are not seen.
    pub fn already_seen(&self, esp: &[u8]) -> bool {
        match esp.get(4..8) {
            Some(&[a, b, c, d]) => self.replay.check(u32::from_be_bytes([a, b, c, d]), self.c.esn).is_err(),
            _ => false,
        }
    }

    /// Merges a cluster peer's [`ReplayWindow::snapshot`] of this SA
    /// into the window (see [`ReplayWindow::merge`]).
    pub fn merge_replay(&mut self, top: u64, bitmap: &[u8]) {
        self.replay.merge(top, bitmap);
    }

    /// The next lifetime event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.c.poll_event()
    }

    /// Counts a drop the SAD decided on this SA's behalf.
    pub(crate) fn record_drop(&mut self, e: &Error) {
        self.c.stats.drops.record(e);
    }

    /// Decapsulates the ESP packet at `buf[esp]` (SPI to ICV) in place, in
    /// two phases: replay pre-check, then ICV verification and decryption,
    /// then the window moves. Drops are counted by reason.
    pub fn decapsulate(&mut self, buf: &mut [u8], esp: Range<usize>) -> Result<Decapsulated, Error> {
        let r = self.decap(buf, esp);
        if let Err(e) = &r {
            self.c.stats.drops.record(e);
        }
        r
    }

    fn decap(&mut self, buf: &mut [u8], esp: Range<usize>) -> Result<Decapsulated, Error> {
        let suite = self.c.suite;
        let (iv_len, icv_len) = (suite.iv_len(), suite.icv_len());
        if esp.start > esp.end || esp.end > buf.len() {
            return Err(Error::ShortPacket);
        }
        if esp.len() < ESP_HEADER_LEN + iv_len + 2 + icv_len {
            return Err(Error::ShortPacket);
        }
        let p = &buf[esp.clone()];
        let spi = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        if spi != self.c.spi {
            return Err(Error::UnknownSpi(spi));
        }
        let ct = esp.start + ESP_HEADER_LEN + iv_len..esp.end - icv_len;
        if ct.len() % suite.align() != 0 {
            return Err(Error::BadPadding);
        }
        self.c.check_hard()?;
        let seq = self.replay.check(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), self.c.esn)?;

        match &self.c.cipher {
            Cipher::Aead(a) => {
                let mut iv = [0u8; 8];
                iv.copy_from_slice(&buf[esp.start + 8..esp.start + 16]);
                let mut tag = [0u8; 16];
                tag.copy_from_slice(&buf[ct.end..esp.end]);
                let (aad, n) = self.c.aad(seq);
                a.open(&iv, &aad[..n], &mut buf[ct.clone()], &tag).map_err(|_| Error::BadIcv)?;
            }
            Cipher::CbcHmac(k) => {
                let (cbc, integ) = (&k.cbc, &k.integ);
                let hi = ((seq >> 32) as u32).to_be_bytes();
                let esn: &[u8] = if self.c.esn { &hi } else { &[] };
                integ
                    .verify(&[&buf[esp.start..ct.end], esn], &buf[ct.end..esp.end])
                    .map_err(|_| Error::BadIcv)?;
                let mut iv = [0u8; BLOCK_LEN];
                iv.copy_from_slice(&buf[esp.start + 8..esp.start + 8 + BLOCK_LEN]);
                cbc.decrypt(&iv, &mut buf[ct.clone()])?;
            }
        }
        // Authentic from here on: the window moves even if the content is
        // then refused, so a verified packet is never accepted twice.
        self.replay.accept(seq)?;

        let pt = &buf[ct.clone()];
        let next_header = pt[pt.len() - 1];
        let pad = usize::from(pt[pt.len() - 2]);
        if pad + 2 > pt.len() {
            return Err(Error::BadPadding);
        }
        let payload_end = ct.end - 2 - pad;
        if buf[payload_end..payload_end + pad].iter().enumerate().any(|(i, &b)| usize::from(b) != i + 1) {
            return Err(Error::BadPadding);
        }
        if next_header == PROTO_NONE {
            return Err(Error::Dummy);
        }
        let mut range = ct.start..payload_end;
        if self.c.mode == Mode::Tunnel {
            let inner = IpHeader::parse(&buf[range.clone()]).map_err(|_| Error::Malformed("inner IP"))?;
            let version_ok = match next_header {
                PROTO_IPV4 => inner.src.is_ipv4(),
                PROTO_IPV6 => inner.src.is_ipv6(),
                _ => false,
            };
            if !version_ok {
                return Err(Error::Malformed("inner IP"));
            }
            // Drop TFC padding after the inner packet (RFC 4303 section 2.7).
            range.end = range.start + inner.total_len;
            if !self.allows(&inner, &buf[range.clone()]) {
                return Err(Error::PolicyViolation);
            }
        }
        self.c.count(range.len());
        Ok(Decapsulated { spi, range, next_header })
    }
}

impl InboundSa {
    fn allows(&self, inner: &IpHeader, packet: &[u8]) -> bool {
        if self.local_ts.is_empty() && self.remote_ts.is_empty() {
            return true;
        }
        let (sport, dport) = wire::ports(inner.protocol, packet.get(inner.payload()).unwrap_or(&[]));
        let any = |list: &[TrafficSelector], addr, port| {
            list.is_empty() || list.iter().any(|ts| ts.matches(addr, inner.protocol, port))
        };
        any(&self.remote_ts, inner.src, sport) && any(&self.local_ts, inner.dst, dport)
    }
}

impl core::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &format_args!("{:#010x}", self.c.spi))
            .field("suite", &self.c.suite)
            .field("replay_top", &self.replay.top())
            .finish_non_exhaustive()
    }
}

/// Padding so that payload, pad length and next header fill whole
/// `align`-octet blocks.
fn pad_len(payload: usize, align: usize) -> usize {
    (align - (payload + 2) % align) % align
}
