//! A simulated road warrior: Tandem's own IKE initiator asking for a
//! virtual IP, its own ESP SAs, and a steady UDP stream to the server that
//! the server echoes, so the client sees every interruption.

use super::lan::Mac;
use chacha20::ChaCha20Rng;
use core::net::{IpAddr, SocketAddr};
use rand_core::SeedableRng;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tandem_cluster::node::packet::{Outer, classify, udp_packet};
use tandem_crypto::proposal::EncrAlgorithm;
use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundId, OutboundSa, SaParams, Sad, Suite, TAILROOM};
use tandem_ike::{ChildSa, Endpoint, Event, IkeConfig, IkeSaId};

/// The UDP port the server echoes on.
pub(super) const ECHO_PORT: u16 = 7;
/// The client's source port.
const CLIENT_PORT: u16 = 40_000;
/// First octet of the probe payload.
const PROBE: u8 = b'T';

/// What a client measured.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    /// Probes sent.
    pub sent: u64,
    /// Echoes received.
    pub echoed: u64,
    /// Echoes received twice.
    pub duplicate_echoes: u64,
    /// ESP packets from the cluster whose (SPI, sequence number) was seen
    /// before: an outbound sequence number reused by the cluster.
    pub seq_reused: u64,
    /// ESP packets the client's SAs dropped as replays.
    pub replay_drops: u64,
    /// ESP packets that failed their ICV.
    pub icv_drops: u64,
    /// Longest time between two echoes after the first.
    pub max_gap: Duration,
    /// Gaps longer than three probe intervals: (start, length).
    pub gaps: Vec<(Instant, Duration)>,
    /// IKE SAs established (1 unless it reconnected).
    pub ike_established: u32,
    /// IKE SAs that ended.
    pub ike_deleted: u32,
    /// CHILD_SAs rekeyed.
    pub child_rekeys: u32,
    /// Virtual IPs received, in order.
    pub vips: Vec<IpAddr>,
}

/// One road warrior.
pub struct Client {
    /// Index among the clients.
    pub id: u16,
    /// Its (outer) address.
    pub addr: IpAddr,
    /// Its MAC.
    pub mac: Mac,
    ep: Endpoint,
    rng: ChaCha20Rng,
    sad: Sad,
    /// Outbound SA of each CHILD_SA, by its inbound SPI.
    outbound: HashMap<u32, OutboundId>,
    /// The newest CHILD_SA (inbound SPI), which new packets use.
    current: Option<u32>,
    ike_sa: Option<IkeSaId>,
    vip: Option<IpAddr>,
    server: IpAddr,
    interval: Duration,
    next_send: Option<Instant>,
    seq: u64,
    echoes: HashSet<u64>,
    esp_seen: HashSet<(u32, u32)>,
    last_echo: Option<Instant>,
    out: VecDeque<Vec<u8>>,
    /// What it measured.
    pub stats: ClientStats,
}

impl Client {
    /// A client at `addr` that will talk to the cluster at `vip` and send a
    /// probe to `server` every `interval` once its tunnel is up.
    pub fn new(
        id: u16,
        addr: IpAddr,
        mac: Mac,
        config: IkeConfig,
        server: IpAddr,
        interval: Duration,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sad = Sad::new(rand_core::Rng::next_u64(&mut rng));
        Self {
            id,
            addr,
            mac,
            ep: Endpoint::new(config),
            rng,
            sad,
            outbound: HashMap::new(),
            current: None,
            ike_sa: None,
            vip: None,
            server,
            interval,
            next_send: None,
            seq: 0,
            echoes: HashSet::new(),
            esp_seen: HashSet::new(),
            last_echo: None,
            out: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// Starts IKE towards the cluster's address.
    pub fn connect(&mut self, now: Instant, cluster: IpAddr) {
        let local = SocketAddr::new(self.addr, 500);
        match self.ep.initiate(now, &mut self.rng, local, SocketAddr::new(cluster, 500)) {
            Ok(sa) => self.ike_sa = Some(sa),
            Err(e) => tracing::warn!(client = self.id, "initiate: {e}"),
        }
        self.drain(now);
    }

    /// The virtual IP the cluster gave it.
    pub fn vip(&self) -> Option<IpAddr> {
        self.vip
    }

    /// Whether its tunnel carries traffic.
    pub fn is_up(&self) -> bool {
        self.current.is_some() && self.vip.is_some()
    }

    /// Rekeys its newest CHILD_SA now.
    pub fn rekey_child(&mut self, now: Instant) {
        if let (Some(sa), Some(spi)) = (self.ike_sa, self.current) {
            let _ = self.ep.rekey_child(now, &mut self.rng, sa, spi);
        }
        self.drain(now);
    }

    /// Rekeys its IKE SA now.
    pub fn rekey_ike(&mut self, now: Instant) {
        if let Some(sa) = self.ike_sa {
            let _ = self.ep.rekey_ike(now, &mut self.rng, sa);
        }
        self.drain(now);
    }

    /// An IP packet addressed to it.
    pub fn handle(&mut self, now: Instant, mut p: Vec<u8>) {
        match classify(&p, self.addr) {
            Ok(Outer::Ike { local, remote, body }) => {
                let _ = self.ep.handle_datagram(now, &mut self.rng, local, remote, &p[body]);
            }
            Ok(Outer::Esp { spi, esp }) => {
                let seq = p
                    .get(esp.start + 4..esp.start + 8)
                    .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
                if !self.esp_seen.insert((spi, seq)) {
                    self.stats.seq_reused += 1;
                }
                if let Ok(d) = self.sad.decapsulate(&mut p, esp) {
                    self.echo(now, &p[d.range]);
                }
            }
            _ => {}
        }
        self.drain(now);
    }

    fn echo(&mut self, now: Instant, inner: &[u8]) {
        // IPv4 (20) + UDP (8) + probe.
        let Some(payload) = inner.get(28..) else { return };
        let [PROBE, a, b, rest @ ..] = payload else { return };
        if u16::from_be_bytes([*a, *b]) != self.id || rest.len() < 8 {
            return;
        }
        let seq = u64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
        if !self.echoes.insert(seq) {
            self.stats.duplicate_echoes += 1;
            return;
        }
        self.stats.echoed += 1;
        if let Some(last) = self.last_echo {
            let gap = now - last;
            self.stats.max_gap = self.stats.max_gap.max(gap);
            if gap > self.interval * 3 {
                self.stats.gaps.push((last, gap));
            }
        }
        self.last_echo = Some(now);
    }

    /// Timers: IKE and the next probe.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now, &mut self.rng);
        if self.next_send.is_some_and(|t| t <= now) {
            self.next_send = Some(now + self.interval);
            self.send_probe();
        }
        self.drain(now);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.ep.poll_timeout(), self.next_send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next IP packet to put on the wire.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    fn send_probe(&mut self) {
        let (Some(vip), Some(spi)) = (self.vip, self.current) else { return };
        let Some(&id) = self.outbound.get(&spi) else { return };
        self.seq += 1;
        let mut payload = vec![PROBE];
        payload.extend_from_slice(&self.id.to_be_bytes());
        payload.extend_from_slice(&self.seq.to_be_bytes());
        payload.resize(64, 0);
        let Some(inner) = udp_packet(
            SocketAddr::new(vip, CLIENT_PORT),
            SocketAddr::new(self.server, ECHO_PORT),
            &[&payload],
        ) else {
            return;
        };
        let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(&inner);
        let Some(sa) = self.sad.outbound_mut(id) else { return };
        if let Ok(r) = sa.encapsulate(&mut buf, HEADROOM..HEADROOM + inner.len(), Framing::Ip) {
            self.stats.sent += 1;
            self.out.push_back(buf[r].to_vec());
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(e) = self.ep.poll_event() {
            match e {
                Event::IkeSaEstablished { sa, virtual_ips, .. } => {
                    self.ike_sa = Some(sa);
                    self.stats.ike_established += 1;
                    self.vip = virtual_ips.first().copied();
                    self.stats.vips.extend(virtual_ips);
                }
                Event::IkeSaRekeyed { new, .. } => self.ike_sa = Some(new),
                Event::ChildSaEstablished(c) => self.install(&c),
                Event::ChildSaRekeyed { new, .. } => {
                    self.stats.child_rekeys += 1;
                    self.install(&new);
                }
                Event::ChildSaDeleted { inbound_spi, .. } => {
                    self.sad.remove_inbound(inbound_spi);
                    if let Some(id) = self.outbound.remove(&inbound_spi) {
                        self.sad.remove_outbound(id);
                    }
                    if self.current == Some(inbound_spi) {
                        self.current = self.outbound.keys().copied().max();
                    }
                }
                Event::IkeSaDeleted { .. } => self.stats.ike_deleted += 1,
                _ => {}
            }
        }
        if self.is_up() && self.next_send.is_none() {
            self.next_send = Some(now);
        }
        while let Some(t) = self.ep.poll_transmit() {
            let marker: &[u8] = if t.local.port() == 4500 { &[0, 0, 0, 0] } else { &[] };
            if let Some(p) = udp_packet(t.local, t.remote, &[marker, &t.data]) {
                self.out.push_back(p);
            }
        }
        // Counters of the SAs still installed.
        let (mut replay, mut icv) = (0, 0);
        for s in self.sad.inbound_sas() {
            replay += s.stats().drops.replay;
            icv += s.stats().drops.bad_icv;
        }
        self.stats.replay_drops = self.stats.replay_drops.max(replay);
        self.stats.icv_drops = self.stats.icv_drops.max(icv);
    }

    fn install(&mut self, c: &ChildSa) {
        let suite = match (c.encr, c.integ) {
            (EncrAlgorithm::Aead(a), _) => Suite::Aead(a),
            (EncrAlgorithm::Cbc(cbc), Some(i)) => Suite::CbcHmac(cbc, i),
            _ => return,
        };
        let (l, r) = (c.local.ip(), c.remote.ip());
        let inp = SaParams::new(c.inbound_spi, suite, c.dangerous_inbound_keymat(), l, r);
        let outp = SaParams::new(c.outbound_spi, suite, c.dangerous_outbound_keymat(), l, r);
        let (Ok(inbound), Ok(outbound)) = (InboundSa::new(&inp), OutboundSa::new(&outp, &mut self.rng))
        else {
            return;
        };
        if self.sad.insert_inbound(inbound).is_ok() {
            let id = self.sad.insert_outbound(outbound);
            self.outbound.insert(c.inbound_spi, id);
            self.current = Some(c.inbound_spi);
        }
    }
}
