//! The simulated site: N cluster nodes, M road warriors and a server on
//! three in-memory switches (external, internal, sync), driven by a
//! virtual clock that jumps from one deadline to the next.

use super::client::{Client, ECHO_PORT};
use super::lan::{Frame, Impairments, Mac, Port, Switch};
use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use rand_core::SeedableRng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};
use tandem_cluster::node::packet::{Outer, classify, udp_packet};
use tandem_cluster::sync::seal::MARK_MAGIC;
use tandem_cluster::{
    HaPool, Layout, Node, NodeConfig, NodeEvent, NodeId, Output, SegmentCount, TwoNodeRule, segment_of,
};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Identity, IkeConfig};

/// The cluster's external address, which clients connect to.
pub const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// The server behind the cluster.
pub const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10));
const CLUSTER_EXT_MAC: Mac = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
const CLUSTER_INT_MAC: Mac = Mac([0x01, 0x00, 0x5e, 0x00, 0x00, 0x02]);
const SERVER_MAC: Mac = Mac([0x02, 0, 0, 2, 0, 1]);
const PSK: &[u8] = b"a simulation's pre-shared key";
/// Events processed per run at most: a bound on every loop.
const MAX_EVENTS: u64 = 200_000_000;

/// How the simulated site is built.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds every RNG of the run.
    pub seed: u64,
    /// Cluster nodes (2 to 16).
    pub nodes: u8,
    /// Road warriors.
    pub clients: u16,
    /// Segments.
    pub segment_count: u32,
    /// Heartbeat delay of the nodes.
    pub heartbeat: Duration,
    /// Heartbeat timeout of the nodes.
    pub timeout: Duration,
    /// Probe interval of the clients.
    pub interval: Duration,
    /// The two-node rule.
    pub two_node: TwoNodeRule,
}

impl SimConfig {
    /// `nodes` nodes and `clients` clients with the default timers (100 ms
    /// heartbeats, 500 ms timeout, a probe every 10 ms).
    pub fn new(seed: u64, nodes: u8, clients: u16) -> Self {
        Self {
            seed,
            nodes,
            clients,
            segment_count: u32::from(nodes) * 2,
            heartbeat: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            interval: Duration::from_millis(10),
            two_node: TwoNodeRule::default(),
        }
    }
}

/// Which switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lan {
    /// Clients and the nodes' external ports.
    External,
    /// The server and the nodes' internal ports.
    Internal,
    /// The nodes' sync ports.
    Sync,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    Deliver(Lan, Port, u64),
    WakeNode(u8),
    WakeClient(u16),
}

struct Slot {
    node: Node,
    rng: ChaCha20Rng,
    wake: Option<Instant>,
}

/// What the trace of the run showed, summed over it.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Probes and echoes delivered in plaintext, by (direction, client,
    /// sequence number): the node that decrypted each.
    pub decrypted_twice: u64,
    /// Plaintext delivered per node (decrypted by it).
    pub decrypted_by: BTreeMap<u8, u64>,
    /// Encrypted packets sent to clients per node.
    pub encrypted_by: BTreeMap<u8, u64>,
    /// Probes the server received.
    pub server_received: u64,
    /// Moments a segment had two live owners: (virtual time, segment).
    pub double_owners: Vec<(Duration, u8)>,
}

/// The simulated site.
pub struct World {
    /// How it was built.
    pub cfg: SimConfig,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64, What)>>,
    frames: HashMap<u64, Frame>,
    next_id: u64,
    lans: [Switch; 3],
    nodes: Vec<Option<Slot>>,
    incarnations: Vec<u64>,
    /// The clients.
    pub clients: Vec<Client>,
    client_wake: Vec<Option<Instant>>,
    delivered: HashMap<(u16, u64), u8>,
    /// What the run showed.
    pub trace: Trace,
    /// Node events with their virtual time.
    pub timeline: Vec<(Duration, u8, NodeEvent)>,
    events: u64,
}

impl World {
    /// Builds the site; the nodes start at once, the clients connect
    /// one after another from 1 s on.
    pub fn new(cfg: SimConfig) -> Result<Self, String> {
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let n = usize::from(cfg.nodes);
        let m = usize::from(cfg.clients);
        let mut w = Self {
            lans: [
                Switch::new(n + m, cfg.seed ^ 0x11),
                Switch::new(n + 1, cfg.seed ^ 0x22),
                Switch::new(n, cfg.seed ^ 0x33),
            ],
            cfg,
            start,
            now: start,
            queue: BinaryHeap::new(),
            frames: HashMap::new(),
            next_id: 0,
            nodes: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
            clients: Vec::new(),
            client_wake: vec![None; m],
            delivered: HashMap::new(),
            trace: Trace::default(),
            timeline: Vec::new(),
            events: 0,
        };
        for i in 0..w.cfg.nodes {
            w.start_node(i)?;
        }
        let count = SegmentCount::new(w.cfg.segment_count).map_err(|e| e.to_string())?;
        for j in 0..w.cfg.clients {
            let addr = client_addr(j, count);
            let seed = w.cfg.seed ^ (0xc0 + u64::from(j));
            let c = Client::new(j, addr, client_mac(j), client_config(j)?, SERVER, w.cfg.interval, seed);
            w.clients.push(c);
            let at = start + Duration::from_millis(1000 + 37 * u64::from(j));
            w.client_wake[usize::from(j)] = Some(at);
            w.push(at, What::WakeClient(j));
        }
        Ok(w)
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time from the start to `t`.
    pub fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// The segment of client `j`'s SAs (that of its address).
    pub fn client_segment(&self, j: u16) -> Option<tandem_cluster::Segment> {
        let c = self.clients.get(usize::from(j))?;
        Some(segment_of(c.addr, SegmentCount::new(self.cfg.segment_count).ok()?))
    }

    /// The live node `i`, if it runs.
    pub fn node(&self, i: u8) -> Option<&Node> {
        self.nodes.get(usize::from(i)).and_then(|s| s.as_ref()).map(|s| &s.node)
    }

    /// Acts on the live node `i` as an operator would (take, drop,
    /// resync); `None` if it is dead.
    pub fn operate<T>(&mut self, i: u8, f: impl FnOnce(&mut Node, Instant) -> T) -> Option<T> {
        let now = self.now;
        let r = f(&mut self.nodes.get_mut(usize::from(i))?.as_mut()?.node, now);
        self.after_node(i);
        Some(r)
    }

    /// A switch, to impair or partition.
    pub fn lan(&mut self, lan: Lan) -> &mut Switch {
        &mut self.lans[lan as usize]
    }

    fn start_node(&mut self, i: u8) -> Result<(), String> {
        let ids: Vec<NodeId> = (1..=self.cfg.nodes).map(NodeId).collect();
        let count = SegmentCount::new(self.cfg.segment_count).map_err(|e| e.to_string())?;
        let layout = Layout::new(&ids, count, self.cfg.two_node).map_err(|e| e.to_string())?;
        let mut nc = NodeConfig::new(
            NodeId(i + 1),
            layout,
            7,
            SecretBytes::from_slice(b"cluster secret, 32 octets long!!"),
            VIP,
        );
        nc.heartbeat_delay = self.cfg.heartbeat;
        nc.heartbeat_timeout = self.cfg.timeout;
        nc.esp_sync_interval = self.cfg.heartbeat;
        let pool = HaPool::new(
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 254)),
            count,
        );
        let inc = &mut self.incarnations[usize::from(i)];
        *inc += 1;
        let mut rng = ChaCha20Rng::seed_from_u64(self.cfg.seed ^ (u64::from(i) << 32) ^ (*inc << 48));
        let now_ms = 1_700_000_000_000 + (self.now - self.start).as_millis() as u64;
        let node =
            Node::new(nc, gateway_config()?, pool, self.now, now_ms, &mut rng).map_err(|e| e.to_string())?;
        for lan in &mut self.lans {
            lan.set_down(usize::from(i), false);
        }
        self.nodes[usize::from(i)] = Some(Slot { node, rng, wake: None });
        self.after_node(i);
        Ok(())
    }

    /// Kills node `i` (as `kill -9`: its state is gone).
    pub fn kill(&mut self, i: u8) {
        self.nodes[usize::from(i)] = None;
        for lan in &mut self.lans {
            lan.set_down(usize::from(i), true);
        }
    }

    /// Starts node `i` afresh.
    pub fn revive(&mut self, i: u8) -> Result<(), String> {
        self.start_node(i)
    }

    /// Runs the site until `elapsed() == until`.
    pub fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > end || self.events >= MAX_EVENTS {
                break;
            }
            let Some(Reverse((t, _, what))) = self.queue.pop() else { break };
            self.events += 1;
            self.now = self.now.max(t);
            self.dispatch(what);
        }
        self.now = self.now.max(end);
    }

    fn push(&mut self, at: Instant, what: What) {
        self.next_id += 1;
        self.queue.push(Reverse((at.max(self.now), self.next_id, what)));
    }

    fn dispatch(&mut self, what: What) {
        match what {
            What::Deliver(lan, port, frame) => {
                if let Some(f) = self.frames.remove(&frame) {
                    self.deliver(lan, port, f);
                }
            }
            What::WakeNode(i) => {
                let now = self.now;
                if let Some(s) = self.nodes[usize::from(i)].as_mut()
                    && s.wake.is_some_and(|w| w <= now)
                {
                    s.wake = None;
                    s.node.handle_timeout(now, &mut s.rng);
                    self.after_node(i);
                }
            }
            What::WakeClient(j) => {
                let now = self.now;
                if self.client_wake[usize::from(j)].is_none_or(|w| w > now) {
                    return;
                }
                self.client_wake[usize::from(j)] = None;
                let c = &mut self.clients[usize::from(j)];
                if c.stats.ike_established == 0 && c.poll_timeout().is_none() {
                    c.connect(now, VIP);
                } else {
                    c.handle_timeout(now);
                }
                self.after_client(j);
            }
        }
    }

    fn inject(&mut self, lan: Lan, ingress: Port, frame: Frame) {
        let outs = self.lans[lan as usize].forward(ingress, &frame);
        for (port, delay) in outs {
            self.next_id += 1;
            let fid = self.next_id;
            self.frames.insert(fid, frame.clone());
            self.push(self.now + delay, What::Deliver(lan, port, fid));
        }
    }

    fn deliver(&mut self, lan: Lan, port: Port, f: Frame) {
        let n = usize::from(self.cfg.nodes);
        let now = self.now;
        match lan {
            Lan::External if port < n => {
                if f.dst != CLUSTER_EXT_MAC {
                    return;
                }
                if let Some(s) = self.nodes[port].as_mut() {
                    let mut data = f.data;
                    // As the runtime does in a batch: ESP not ours and not
                    // sampled is passed over unread.
                    let passed = match classify(&data, VIP) {
                        Ok(Outer::Esp { spi, .. }) => s.node.pass_over_esp(now, spi),
                        _ => false,
                    };
                    if !passed {
                        s.node.handle_external(now, &mut data, &mut s.rng);
                    }
                    self.after_node(port as u8);
                }
            }
            Lan::External => {
                let j = (port - n) as u16;
                if let Some(c) = self.clients.get_mut(usize::from(j))
                    && f.dst == c.mac
                {
                    c.handle(now, f.data);
                    self.after_client(j);
                }
            }
            Lan::Internal if port < n => {
                if f.dst != CLUSTER_INT_MAC {
                    return;
                }
                if let Some(s) = self.nodes[port].as_mut() {
                    // A handover mark starts as no IP packet does.
                    if f.data.starts_with(&MARK_MAGIC) {
                        let _ = s.node.handover_mark(now, &f.data);
                    } else {
                        s.node.handle_internal(now, &f.data, &mut s.rng);
                    }
                    self.after_node(port as u8);
                }
            }
            Lan::Internal => {
                if f.dst == SERVER_MAC {
                    self.serve(&f.data);
                }
            }
            Lan::Sync => {
                let from = f.src.0[5];
                if let Some(s) = self.nodes[port].as_mut() {
                    let mut data = f.data;
                    s.node.handle_sync(now, NodeId(from), &mut data, &mut s.rng);
                    self.after_node(port as u8);
                }
            }
        }
    }

    /// The server: counts probes and echoes each back to its sender.
    fn serve(&mut self, p: &[u8]) {
        let Some((src, dst, payload)) = parse_udp4(p) else { return };
        if dst.port() != ECHO_PORT {
            return;
        }
        self.trace.server_received += 1;
        if let Some(echo) = udp_packet(dst, src, &[payload]) {
            let frame = Frame { dst: CLUSTER_INT_MAC, src: SERVER_MAC, data: echo };
            self.inject(Lan::Internal, usize::from(self.cfg.nodes), frame);
        }
    }

    fn after_node(&mut self, i: u8) {
        let n = usize::from(i);
        let mut outs = Vec::new();
        let mut events = Vec::new();
        let Some(s) = self.nodes[n].as_mut() else { return };
        while let Some(o) = s.node.poll_output() {
            outs.push(o);
        }
        while let Some(e) = s.node.poll_event() {
            events.push(e);
        }
        let mut wake = None;
        if let Some(t) = s.node.poll_timeout() {
            // A deadline already due runs at the next microsecond, so a
            // timer that stays due cannot spin the clock.
            let t = t.max(self.now + Duration::from_micros(1));
            if s.wake != Some(t) {
                s.wake = Some(t);
                wake = Some(t);
            }
        }
        let elapsed = self.elapsed();
        let took = events.iter().any(|e| matches!(e, NodeEvent::Took(_)));
        for e in events {
            self.timeline.push((elapsed, i + 1, e));
        }
        if took {
            self.check_owners();
        }
        if let Some(t) = wake {
            self.push(t, What::WakeNode(i));
        }
        for o in outs {
            match o {
                Output::External(p) => {
                    let Some(dst) = parse_dst(&p) else { continue };
                    let Some(c) = self.clients.iter().find(|c| c.addr == dst) else { continue };
                    if p.get(9) == Some(&50) {
                        *self.trace.encrypted_by.entry(i + 1).or_default() += 1;
                    }
                    let frame = Frame { dst: c.mac, src: node_mac(0, i), data: p };
                    self.inject(Lan::External, n, frame);
                }
                Output::Internal(p) => {
                    if let Some((src, _, payload)) = parse_udp4(&p)
                        && let [b'T', a, b, rest @ ..] = payload
                        && rest.len() >= 8
                    {
                        let client = u16::from_be_bytes([*a, *b]);
                        let seq = u64::from_be_bytes(rest[..8].try_into().unwrap_or_default());
                        *self.trace.decrypted_by.entry(i + 1).or_default() += 1;
                        if self.delivered.insert((client, seq), i + 1).is_some() {
                            self.trace.decrypted_twice += 1;
                        }
                        let _ = src;
                    }
                    let frame = Frame { dst: SERVER_MAC, src: node_mac(1, i), data: p };
                    self.inject(Lan::Internal, n, frame);
                }
                Output::Sync { to, datagram } => {
                    // The receiver knows the sender by its MAC's last octet.
                    let dst = node_mac(2, to.0.wrapping_sub(1));
                    self.inject(Lan::Sync, n, Frame { dst, src: node_mac(2, i), data: datagram });
                }
                Output::Mark(mark) => {
                    let frame = Frame { dst: CLUSTER_INT_MAC, src: node_mac(1, i), data: mark.to_vec() };
                    self.inject(Lan::Internal, n, frame);
                }
            }
        }
    }

    fn after_client(&mut self, j: u16) {
        let n = usize::from(self.cfg.nodes);
        let mut outs = Vec::new();
        let c = &mut self.clients[usize::from(j)];
        while let Some(p) = c.poll_output() {
            outs.push(p);
        }
        let next = c.poll_timeout();
        let mac = c.mac;
        if let Some(t) = next {
            let t = t.max(self.now + Duration::from_micros(1));
            let w = &mut self.client_wake[usize::from(j)];
            if *w != Some(t) {
                *w = Some(t);
                self.push(t, What::WakeClient(j));
            }
        }
        for p in outs {
            self.inject(Lan::External, n + usize::from(j), Frame { dst: CLUSTER_EXT_MAC, src: mac, data: p });
        }
    }

    /// Records every segment that has more than one live owner now.
    fn check_owners(&mut self) {
        let mut owners = [0u8; 65];
        for s in self.nodes.iter().flatten() {
            for g in s.node.owned().iter() {
                owners[usize::from(g.get())] += 1;
            }
        }
        let at = self.elapsed();
        for (g, &n) in owners.iter().enumerate() {
            if n > 1 {
                self.trace.double_owners.push((at, g as u8));
            }
        }
    }

    /// Sets the impairments of a switch.
    pub fn impair(&mut self, lan: Lan, imp: Impairments) {
        self.lans[lan as usize].impairments = imp;
    }

    /// Frames lost on each switch (impairments, partitions, dead links).
    pub fn lost(&self) -> [u64; 3] {
        [self.lans[0].lost, self.lans[1].lost, self.lans[2].lost]
    }
}

/// Node `i`'s MAC on switch `lan` (0 external, 1 internal, 2 sync).
fn node_mac(lan: u8, i: u8) -> Mac {
    Mac([0x02, 0, 0, 0, lan, i + 1])
}

fn client_mac(j: u16) -> Mac {
    let [a, b] = j.to_be_bytes();
    Mac([0x02, 0, 0, 1, a, b])
}

/// Client `j`'s address: the first of 198.18.0.0/15 in segment
/// `j mod count + 1`, past those of earlier clients, so the clients spread
/// evenly over the segments.
fn client_addr(j: u16, count: SegmentCount) -> IpAddr {
    let want = (u32::from(j) % u32::from(count.get())) + 1;
    let mut seen = 0;
    let round = u32::from(j) / u32::from(count.get());
    for k in 0u32..(1 << 17) {
        let a = IpAddr::V4(Ipv4Addr::from(0xc612_0000 + k + 10));
        if u32::from(segment_of(a, count).get()) == want {
            if seen == round {
                return a;
            }
            seen += 1;
        }
    }
    IpAddr::V4(Ipv4Addr::from(0xc612_0000 + u32::from(j)))
}

fn parse_dst(p: &[u8]) -> Option<IpAddr> {
    let d: [u8; 4] = p.get(16..20)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(d)))
}

/// Source, destination and payload of an IPv4 UDP packet.
fn parse_udp4(p: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])> {
    if p.first()? >> 4 != 4 || *p.get(9)? != 17 {
        return None;
    }
    let hl = usize::from(p[0] & 0x0f) * 4;
    let u = p.get(hl..)?;
    let port = |o: usize| Some(u16::from_be_bytes([*u.get(o)?, *u.get(o + 1)?]));
    let ip = |o: usize| -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(p.get(o..o + 4)?).ok()?)))
    };
    Some((SocketAddr::new(ip(12)?, port(0)?), SocketAddr::new(ip(16)?, port(2)?), u.get(8..)?))
}

fn ts(a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
    TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4(b.into()))
}

fn proposals(kind: ProposalKind, s: &str) -> Result<Vec<tandem_crypto::proposal::Proposal>, String> {
    parse_proposals(kind, s).map_err(|e| e.to_string())
}

/// The connection every node serves: PSK, a pool, the server's network.
/// The connection every simulated node serves: road warriors (virtual IPs
/// from 10.99.0.0/16) to 10.0.0.0/24, PSK.
pub fn gateway_config() -> Result<IkeConfig, String> {
    let child = ChildConfig::new(
        proposals(ProposalKind::Esp, "aes256gcm16")?,
        vec![ts([10, 0, 0, 0], [10, 0, 0, 255])],
        vec![ts([10, 99, 0, 0], [10, 99, 255, 255])],
    );
    let c = IkeConfig::new(
        proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519")?,
        Identity::fqdn("gateway.example"),
        SecretBytes::from_slice(PSK),
        child,
    );
    Ok(c)
}

fn client_config(j: u16) -> Result<IkeConfig, String> {
    let child = ChildConfig::new(
        proposals(ProposalKind::Esp, "aes256gcm16")?,
        vec![ts([0, 0, 0, 0], [255, 255, 255, 255])],
        vec![ts([10, 0, 0, 0], [10, 0, 0, 255])],
    );
    let mut c = IkeConfig::new(
        proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519")?,
        Identity::fqdn(&format!("client-{j}.example")),
        SecretBytes::from_slice(PSK),
        child,
    );
    c.request_virtual_ip = true;
    Ok(c)
}
