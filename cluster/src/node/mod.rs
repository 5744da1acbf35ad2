//! A cluster node, sans-IO: the IKE and ESP engines of one gateway wired
//! to the sync channels, the membership view and segment ownership.
//!
//! Every node sees every external packet (they arrive at the cluster's
//! shared MAC) and every plaintext packet for the clients (the internal
//! shared MAC). A node answers IKE and decrypts ESP only for the segments
//! it owns; for the others it keeps the state moving: it advances each
//! outbound SA's counter for every plaintext packet, and verifies a sample
//! of inbound packets to move their replay windows. The owner of an SA
//! syncs every change of it (IKE state, CHILD_SAs with keys, message IDs,
//! the last response, ESP counters and windows) to the other nodes, so any
//! of them can take its segment over.
//!
//! Drive it like the other engines: feed [`Node::handle_external`],
//! [`Node::handle_internal`], [`Node::handle_sync`] and
//! [`Node::handle_timeout`], then drain [`Node::poll_output`] and
//! [`Node::poll_event`] and re-arm a timer at [`Node::poll_timeout`].
//!
//! Membership: a peer is live while fresh authentic sync datagrams of its
//! current incarnation keep arriving (heartbeats every `heartbeat_delay`),
//! and dead `heartbeat_timeout` after the last. A node that starts, or
//! that lost quorum, first asks every live peer for the state of the
//! segments it owns (RESYNC_REQUEST, answered by the SAs and RESYNC_DONE),
//! and only then says it is synced and becomes eligible to own segments.
//! Segments go to the synced live nodes by the [`Layout`]; a node takes a
//! segment only once no live peer claims it any more (the old owner's
//! SEGMENT_DROP came), so in a healthy network no segment ever has two
//! owners, while a dead owner's segments are taken at once.

mod dataplane;
pub mod packet;
mod report;
mod spis;

use crate::Error;
use crate::ownership::{Assignment, Layout, NodeId};
use crate::pool::HaPool;
use crate::segment::{Segment, SegmentSet, segment_of};
use crate::spi::SegmentSpis;
use crate::sync::channel::{Channel, ChannelConfig, ChannelEvent};
use crate::sync::seal::{MARK_LEN, SyncKeys, new_epoch};
use crate::sync::wire::{Message, OutboundCounter, ReplaySnapshot};
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use dataplane::{Dataplane, Received, ReceivedInPlace, Screen, Sent, SentInPlace};
use packet::Outer;
use rand_core::CryptoRng;
pub use report::{ChildSaReport, IkeSaReport};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tandem_crypto::aead::AeadAlgorithm;
use tandem_crypto::secret::SecretBytes;
use tandem_ike::sync::{IkeSaState, SyncEvent, TimeBase, decode_child, encode_child};
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{Endpoint, Event, IkeConfig, IkeSaId};

pub use spis::ClusterSpis;

/// CHILD_SAs per ESP_STATE message.
const ESP_STATE_CHUNK: usize = 200;
/// Heartbeats queued to a silent peer at most (retransmissions of those
/// keep probing it).
const PROBES: usize = 8;

/// How a node runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node.
    pub node: NodeId,
    /// The configured nodes, segment count and two-node rule.
    pub layout: Layout,
    /// Names the cluster in every sync datagram.
    pub cluster_id: u32,
    /// The shared secret the sync keys derive from (at least 16 octets).
    pub secret: SecretBytes,
    /// The cluster's external address (the VIP peers talk to).
    pub vip: IpAddr,
    /// How often heartbeats go out (default 100 ms).
    pub heartbeat_delay: Duration,
    /// Silence after which a peer is dead (default 500 ms).
    pub heartbeat_timeout: Duration,
    /// How often the owner syncs ESP counters and windows (default 100 ms).
    pub esp_sync_interval: Duration,
    /// How far a new owner jumps each outbound counter (default 65536).
    pub seq_margin: u64,
    /// Standbys verify every n-th inbound packet of an SA (default 16),
    pub sample_every: u32,
    /// and the first after this long without a sample (default 5 ms).
    pub sample_gap: Duration,
    /// After taking a segment a live peer handed over, how long this node
    /// still only counts its packets at most (default 50 ms): frames the
    /// peer served just before its drop may still wait in this node's
    /// receive queue, and must not be served twice. The peer's handover
    /// mark ends the wait sooner (see [`Node::handover_mark`]).
    pub handover_settle: Duration,
}

impl NodeConfig {
    /// A configuration with the default timers.
    pub fn new(node: NodeId, layout: Layout, cluster_id: u32, secret: SecretBytes, vip: IpAddr) -> Self {
        Self {
            node,
            layout,
            cluster_id,
            secret,
            vip,
            heartbeat_delay: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_millis(500),
            esp_sync_interval: Duration::from_millis(100),
            seq_margin: 1 << 16,
            sample_every: 16,
            sample_gap: Duration::from_millis(5),
            handover_settle: Duration::from_millis(50),
        }
    }
}

/// Something to put on a wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// An IP packet for the external side (IKE or ESP, to a peer).
    External(Vec<u8>),
    /// A decrypted IP packet for the protected side.
    Internal(Vec<u8>),
    /// A sync datagram for another node.
    Sync {
        /// The node.
        to: NodeId,
        /// The datagram.
        datagram: Vec<u8>,
    },
    /// A handover mark for every node: this node dropped segments. It
    /// goes out by the port the plaintext comes in by, to its cluster MAC,
    /// so that it reaches each node behind the frames this node served
    /// (see [`Node::handover_mark`]).
    Mark([u8; MARK_LEN]),
}

/// What a data packet handled in place became (see
/// [`Node::handle_external_in_place`] and [`Node::handle_internal_in_place`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum InPlace {
    /// Nothing to send: counted, sampled, dropped, or handled like
    /// [`Node::handle_external`] (IKE; its output is at
    /// [`Node::poll_output`]).
    Done,
    /// Decrypted: the inner packet is at this range of the buffer, for the
    /// protected side.
    Internal(Range<usize>),
    /// Encrypted: the ESP packet is at this range of the buffer, for the
    /// external side.
    External(Range<usize>),
    /// Ours to encrypt, but the ESP packet would exceed the limit given:
    /// the plaintext is left as it was (for a "too big" error to its
    /// sender), the SA's counter moved on as if it had been sent.
    TooBig {
        /// Octets ESP would add to this packet.
        overhead: usize,
    },
}

/// What a node reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// This node took these segments.
    Took(SegmentSet),
    /// This node dropped these segments.
    Dropped(SegmentSet),
    /// A peer came up (first contact, a restart or the end of a partition).
    PeerUp(NodeId),
    /// A peer went silent.
    PeerDown(NodeId),
    /// This node holds the full state and may own segments.
    Synced,
    /// This node lost quorum: it owns nothing until it resyncs.
    Unsynced,
    /// An IKE SA was established here.
    IkeSaUp {
        /// The SA.
        sa: IkeSaId,
        /// Addresses leased to the peer.
        virtual_ips: Vec<IpAddr>,
    },
}

/// A node's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// IKE messages handled (segment owned).
    pub ike_handled: u64,
    /// IKE messages left to another node.
    pub ike_skipped: u64,
    /// ESP packets decrypted and delivered.
    pub decrypted: u64,
    /// ESP packets of other nodes' segments verified (samples).
    pub verified: u64,
    /// ESP packets of other nodes' segments not sampled.
    pub skipped: u64,
    /// Plaintext packets encrypted and sent.
    pub encrypted: u64,
    /// Plaintext packets of other nodes' segments counted only.
    pub counted: u64,
    /// Packets dropped (bad, unknown SPI, no policy, not for us).
    pub dropped: u64,
    /// Sync messages queued.
    pub sync_sent: u64,
    /// Sync messages received and applied.
    pub sync_applied: u64,
    /// Sync datagrams or messages refused.
    pub sync_rejected: u64,
    /// Sync messages that found a full channel (the peer gets a resync).
    pub sync_blocked: u64,
}

/// Another node of the cluster, as [`Node::members`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// It is heard (heartbeats within the timeout).
    pub live: bool,
    /// Its heartbeats say it holds the full state.
    pub synced: bool,
    /// The segments it claims.
    pub owns: SegmentSet,
    /// When it was last heard (a fresh authentic datagram).
    pub last_heard: Option<Instant>,
    /// Sync messages to it not yet acknowledged.
    pub unacked: usize,
}

/// One other node, as this node sees it.
struct Peer {
    channel: Channel,
    live: bool,
    /// Its heartbeat's flag.
    synced: bool,
    /// The segments it claims (heartbeats, take, drop).
    owns: SegmentSet,
    /// It answered our resync request since it came up.
    resync_done: bool,
    /// A message to it was lost to back-pressure: resend our state.
    behind: bool,
}

/// A cluster node.
pub struct Node {
    cfg: NodeConfig,
    spis: SegmentSpis,
    ike: Endpoint,
    dp: Dataplane,
    pool: Option<HaPool>,
    peers: BTreeMap<NodeId, Peer>,
    keys: SyncKeys,
    owned: SegmentSet,
    /// Operator overrides: segments dropped by hand.
    excluded: SegmentSet,
    /// Segments a live peer dropped (handed over) since we last took them.
    handed: SegmentSet,
    /// [`Self::leave`] was called: serve nothing, never sync again.
    leaving: bool,
    /// Segments taken by a handover that this node serves only from
    /// `settled_at` on (see [`NodeConfig::handover_settle`]).
    settling: SegmentSet,
    /// See `settling`.
    settled_at: Instant,
    /// Segments of the handover marks heard until `marked_until`: a drop
    /// that comes after its mark needs no settling.
    marked: SegmentSet,
    /// See `marked`.
    marked_until: Instant,
    /// We lost quorum: our state may be stale, so we ask the peers we
    /// hear again for theirs before we may serve.
    resync_needed: bool,
    synced: bool,
    /// When this node last became synced: it takes segments one
    /// heartbeat later, once its peers heard it and it heard theirs.
    synced_at: Instant,
    /// The latest `now` seen, to tell which deadlines are still ahead.
    last_now: Instant,
    started: Instant,
    /// The start-up grace (one heartbeat timeout to hear the peers) is over.
    grace_over: bool,
    clock: (Instant, u64),
    next_heartbeat: Instant,
    next_esp_sync: Instant,
    /// Addresses mirrored (or taken-over) SAs hold, reserved in the pool.
    reserved: HashMap<IkeSaId, Vec<IpAddr>>,
    out: VecDeque<Output>,
    events: VecDeque<NodeEvent>,
    stats: NodeStats,
}

impl Node {
    /// A node started at `now`, which is `now_ms` on the cluster's time
    /// base (milliseconds of a clock all nodes share, e.g. Unix time).
    /// `ike` is the connection every node serves; sync is forced on.
    pub fn new<R: CryptoRng + ?Sized>(
        cfg: NodeConfig,
        ike: IkeConfig,
        pool: Option<HaPool>,
        now: Instant,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Self, Error> {
        if !cfg.layout.nodes().contains(&cfg.node) {
            return Err(Error::UnknownNode(cfg.node));
        }
        if cfg.heartbeat_delay.is_zero() || cfg.heartbeat_timeout <= cfg.heartbeat_delay {
            return Err(Error::Config("heartbeat timeout must exceed a non-zero heartbeat delay"));
        }
        let keys = SyncKeys::new(cfg.secret.expose(), cfg.cluster_id, AeadAlgorithm::Aes256Gcm16)?;
        let epoch = new_epoch(rng);
        let mut peers = BTreeMap::new();
        for &n in cfg.layout.nodes().iter().filter(|&&n| n != cfg.node) {
            let channel = Channel::new(ChannelConfig::default(), &keys, cfg.node, n, epoch)?;
            peers.insert(
                n,
                Peer {
                    channel,
                    live: false,
                    synced: false,
                    owns: SegmentSet::EMPTY,
                    resync_done: false,
                    behind: false,
                },
            );
        }
        let spis = SegmentSpis::new(cfg.layout.segment_count());
        let mut ike = ike;
        ike.sync = true;
        let mut ep = Endpoint::with_spi_allocator(ike, Box::new(ClusterSpis::new(spis)));
        if let Some(p) = &pool {
            ep.set_address_pool(Box::new(p.clone()));
        }
        Ok(Self {
            dp: Dataplane::new(rng.next_u64(), cfg.sample_every, cfg.sample_gap),
            spis,
            ike: ep,
            pool,
            peers,
            keys,
            owned: SegmentSet::EMPTY,
            excluded: SegmentSet::EMPTY,
            handed: SegmentSet::EMPTY,
            leaving: false,
            settling: SegmentSet::EMPTY,
            settled_at: now,
            marked: SegmentSet::EMPTY,
            marked_until: now,
            resync_needed: false,
            synced: false,
            synced_at: now,
            last_now: now,
            started: now,
            grace_over: false,
            clock: (now, now_ms),
            next_heartbeat: now,
            next_esp_sync: now + cfg.esp_sync_interval,
            reserved: HashMap::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            cfg,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.node
    }

    /// The segments this node owns.
    pub fn owned(&self) -> SegmentSet {
        self.owned
    }

    /// A number that moves on whenever a CHILD_SA is installed or removed
    /// (so [`Self::foreign_hosts`] may have changed).
    pub fn sa_generation(&self) -> u64 {
        self.dp.generation()
    }

    /// The hosts on the protected side's far end (peers' single-address
    /// selectors) whose plaintext this node only counts, its segment
    /// owned elsewhere: a node may keep just the headers of their
    /// super-packets (see [`Self::count_internal`]).
    pub fn foreign_hosts(&self) -> Vec<IpAddr> {
        self.dp.foreign_hosts(self.owned)
    }

    /// Whether this node holds the full state and may own segments.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// The peers this node hears.
    pub fn live_peers(&self) -> Vec<NodeId> {
        self.peers.iter().filter(|(_, p)| p.live).map(|(&n, _)| n).collect()
    }

    /// Every IKE SA this node holds with its CHILD_SAs and their counters
    /// here, sorted by SA.
    pub fn sas(&self) -> Vec<IkeSaReport> {
        let mut out: Vec<IkeSaReport> = self
            .ike
            .sa_ids()
            .filter_map(|id| {
                let s = self.ike.snapshot(id)?;
                let segment = self.spis.segment_of_ike_spi(id.0);
                Some(IkeSaReport {
                    id,
                    segment,
                    served: segment.is_some_and(|g| self.owned.contains(g)),
                    local: s.local,
                    remote: s.remote,
                    spi_i: s.spi_i,
                    spi_r: s.spi_r,
                    nat: s.nat.detected(),
                    virtual_ips: s.virtual_ips.clone(),
                    children: self.dp.report(id),
                })
            })
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// Starts an IKE SA from the VIP to `remote` (a site-to-site tunnel
    /// the cluster brings up). The SA's SPIs carry the peer's segment
    /// (`segment_of(remote)`), as a responder's would, so only the node
    /// serving that segment may start it; the others refuse with
    /// [`Error::NotServedHere`]. The SA is synced once established, like
    /// any other.
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        remote: SocketAddr,
    ) -> Result<IkeSaId, Error> {
        let segment = segment_of(remote.ip(), self.spis.count());
        if !self.serving(now).contains(segment) {
            return Err(Error::NotServedHere(segment));
        }
        let sa = self.ike.initiate(now, rng, SocketAddr::new(self.cfg.vip, remote.port()), remote)?;
        self.drive(now, rng);
        Ok(sa)
    }

    /// Whether this node holds an established IKE SA (served or mirrored)
    /// with the peer at `peer`.
    pub fn has_ike_sa_with(&self, peer: IpAddr) -> bool {
        self.ike.has_sa_with(peer)
    }

    /// Whether IKE SA `sa` still exists here (established or being set up).
    pub fn holds_ike_sa(&self, sa: IkeSaId) -> bool {
        self.ike.sa_ids().any(|id| id == sa)
    }

    /// Deletes IKE SA `sa` and its CHILD_SAs with the peer (RFC 7296
    /// section 1.4.1), as an operator's `terminate`: only the node serving
    /// its segment may; the other nodes drop their copies when the
    /// deletion is synced.
    pub fn terminate<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
    ) -> Result<(), Error> {
        let segment = self.spis.segment_of_ike_spi(sa.0).ok_or(Error::UnknownSa)?;
        if !self.owned.contains(segment) {
            return Err(Error::NotServedHere(segment));
        }
        self.ike.delete(now, rng, sa)?;
        self.drive(now, rng);
        Ok(())
    }

    /// Takes new IKE settings (a reloaded configuration, which every node
    /// should take alike): new exchanges use them, and each IKE SA this
    /// node serves with a CHILD_SA outside the new selectors is deleted
    /// with its peer (the other nodes drop their copies as the deletion
    /// syncs). Returns the IKE SAs being deleted.
    pub fn reconfigure<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        mut ike: IkeConfig,
    ) -> Vec<IkeSaId> {
        ike.sync = true;
        let within = |ours: &[TrafficSelector], got: &[TrafficSelector]| {
            got.iter().all(|g| ours.iter().any(|o| tandem_ike::narrow::covers(o, g)))
        };
        let mut stale: Vec<IkeSaId> = self
            .ike
            .sa_ids()
            .filter(|id| self.spis.segment_of_ike_spi(id.0).is_some_and(|s| self.owned.contains(s)))
            .filter(|id| {
                self.dp.children_of(*id).any(|c| {
                    !within(&ike.child.local_ts, &c.local_ts) || !within(&ike.child.remote_ts, &c.remote_ts)
                })
            })
            .collect();
        self.ike.set_config(ike);
        stale.retain(|sa| self.ike.delete(now, rng, *sa).is_ok());
        self.drive(now, rng);
        stale
    }

    /// The other nodes as this node sees them.
    pub fn members(&self) -> Vec<Member> {
        self.peers
            .iter()
            .map(|(&id, p)| Member {
                id,
                live: p.live,
                synced: p.synced,
                owns: p.owns,
                last_heard: p.channel.last_heard(),
                unacked: p.channel.unacked(),
            })
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// IKE SAs held (live and mirrored) and CHILD_SAs installed.
    pub fn sa_counts(&self) -> (usize, usize) {
        (self.ike.sa_ids().count(), self.dp.len())
    }

    /// ESP totals: packets in (decrypted or verified), packets out
    /// (encrypted), replay drops, ICV drops.
    pub fn esp_totals(&self) -> (u64, u64, u64, u64) {
        self.dp.totals()
    }

    /// Sync messages not yet acknowledged, over all peers.
    pub fn sync_backlog(&self) -> usize {
        self.peers.values().map(|p| p.channel.unacked()).sum()
    }

    fn time_base(&self, now: Instant) -> TimeBase {
        let ms = u64::try_from(now.saturating_duration_since(self.clock.0).as_millis()).unwrap_or(u64::MAX);
        TimeBase { now, now_ms: self.clock.1.saturating_add(ms) }
    }

    /// An IP packet that arrived at the cluster's external address.
    pub fn handle_external<R: CryptoRng + ?Sized>(&mut self, now: Instant, packet: &mut [u8], rng: &mut R) {
        if self.external(now, packet, rng).is_err() {
            self.stats.dropped += 1;
        }
        self.drive(now, rng);
    }

    fn external<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        p: &mut [u8],
        rng: &mut R,
    ) -> Result<(), Error> {
        match packet::classify(p, self.cfg.vip)? {
            Outer::Keepalive => Ok(()),
            Outer::Ike { local, remote, body } => {
                let segment = self.ike_segment(&p[body.clone()], remote.ip())?;
                if !self.owned.contains(segment) {
                    self.stats.ike_skipped += 1;
                    return Ok(());
                }
                self.stats.ike_handled += 1;
                self.ike.handle_datagram(now, rng, local, remote, &p[body])?;
                Ok(())
            }
            Outer::Esp { spi, esp } => {
                match self.dp.receive(now, p, esp, spi, self.serving(now))? {
                    Received::Decrypted(inner) => {
                        self.stats.decrypted += 1;
                        self.out.push_back(Output::Internal(inner));
                    }
                    Received::Verified => self.stats.verified += 1,
                    Received::Skipped => self.stats.skipped += 1,
                }
                Ok(())
            }
        }
    }

    /// The segment of an IKE message: by our SPI once the SA exists, by
    /// the peer's address for a new one.
    fn ike_segment(&self, msg: &[u8], peer: IpAddr) -> Result<Segment, Error> {
        let h = msg.get(..20).ok_or(Error::Packet("short IKE header"))?;
        let spi = |o: usize| h[o..o + 8].iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        let (spi_i, spi_r) = (spi(0), spi(8));
        // The I flag: sent by the original initiator, so ours is SPI_r.
        let ours = if h[19] & 0x08 != 0 { spi_r } else { spi_i };
        if spi_r == 0 {
            return Ok(segment_of(peer, self.spis.count()));
        }
        self.spis.segment_of_ike_spi(ours).ok_or(Error::Packet("IKE SPI without a segment"))
    }

    /// [`Self::handle_external`] for the packet at `buf[packet]`, with ESP
    /// decrypted in place: no copy, no allocation. IKE and anything else
    /// not ESP goes the way of [`Self::handle_external`]. The data path
    /// runs no timers: drive [`Self::handle_timeout`] at
    /// [`Self::poll_timeout`] and drain [`Self::poll_output`] as always.
    pub fn handle_external_in_place<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
        rng: &mut R,
    ) -> InPlace {
        let Some(p) = buf.get(packet.clone()) else {
            self.stats.dropped += 1;
            return InPlace::Done;
        };
        let Ok(Outer::Esp { spi, esp }) = packet::classify(p, self.cfg.vip) else {
            self.handle_external(now, &mut buf[packet], rng);
            return InPlace::Done;
        };
        let esp = packet.start + esp.start..packet.start + esp.end;
        match self.dp.receive_in_place(now, buf, esp, spi, self.serving(now)) {
            Ok(ReceivedInPlace::Decrypted(inner)) => {
                self.stats.decrypted += 1;
                return InPlace::Internal(inner);
            }
            Ok(ReceivedInPlace::Verified) => self.stats.verified += 1,
            Ok(ReceivedInPlace::Skipped) => self.stats.skipped += 1,
            Err(_) => self.stats.dropped += 1,
        }
        InPlace::Done
    }

    /// Whether the next inbound ESP packet of SA `spi` can be passed over
    /// unread: true when this node neither serves the SA's segment nor
    /// samples this packet, and the packet is then counted as skipped,
    /// as [`Self::handle_external_in_place`] would count it. False for
    /// anything else (served, sampled, an unknown SPI): hand the packet
    /// to [`Self::handle_external_in_place`]. A driver with a batch of
    /// ESP packets to one VIP (a UDP super-packet) asks this before
    /// cutting each one out.
    pub fn pass_over_esp(&mut self, now: Instant, spi: u32) -> bool {
        let skip = matches!(self.dp.screen(now, spi, self.serving(now)), Ok(Screen::Skip));
        if skip {
            self.stats.skipped += 1;
        }
        skip
    }

    /// Has the next inbound ESP packet of SA `spi` verified, whatever the
    /// sampling countdown says, if this node does not serve its segment:
    /// for the packets of a super-packet that a port's filter let through
    /// whole as a sample (see [`Self::skipped_esp`]). Unknown SPIs are
    /// ignored.
    pub fn sample_next_esp(&mut self, spi: u32) {
        self.dp.sample_next(spi);
    }

    /// Counts `n` inbound ESP packets of segments this node does not serve
    /// that never reached it whole (a port's filter kept their headers
    /// only) as skipped, as [`Self::pass_over_esp`] would have.
    pub fn skipped_esp(&mut self, n: u64) {
        self.stats.skipped += n;
    }

    /// [`Self::handle_internal`] for the packet at `buf[packet]`, with ESP
    /// encrypted in place (it needs `tandem_esp::HEADROOM` octets before
    /// and `tandem_esp::TAILROOM` after the packet): no copy, no
    /// allocation. `max_len` is the longest ESP packet the external side
    /// takes; `finish` sees the plaintext just before it is encrypted (to
    /// complete a checksum left to the hardware, say), never a packet only
    /// counted. Timers as for [`Self::handle_external_in_place`].
    pub fn handle_internal_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        packet: Range<usize>,
        max_len: usize,
        finish: impl FnOnce(&mut [u8]),
    ) -> InPlace {
        match self.dp.send_in_place(buf, packet, self.serving(now), max_len, finish) {
            Ok(Some(SentInPlace::Encrypted(r))) => {
                self.stats.encrypted += 1;
                InPlace::External(r)
            }
            Ok(Some(SentInPlace::TooBig { overhead })) => {
                self.stats.encrypted += 1;
                InPlace::TooBig { overhead }
            }
            Ok(Some(SentInPlace::Counted)) => {
                self.stats.counted += 1;
                InPlace::Done
            }
            Ok(None) | Err(_) => {
                self.stats.dropped += 1;
                InPlace::Done
            }
        }
    }

    /// Counts `n` plaintext packets with the headers of `packet` (the
    /// segments of a super-packet from the protected side, uncut) if this
    /// node does not serve their SA's segment: as many calls of
    /// [`Self::handle_internal_in_place`] would, for none of which it
    /// encrypts. `false` (nothing counted) for anything else: served, no
    /// policy, unreadable; cut the super-packet then and hand each segment
    /// over.
    pub fn count_internal(&mut self, now: Instant, packet: &[u8], n: u64) -> bool {
        let counted = matches!(self.dp.count(packet, self.serving(now), n), Ok(true));
        if counted {
            self.stats.counted += n;
        }
        counted
    }

    /// A plaintext IP packet from the protected side, towards a peer.
    pub fn handle_internal<R: CryptoRng + ?Sized>(&mut self, now: Instant, packet: &[u8], rng: &mut R) {
        match self.dp.send(packet, self.serving(now)) {
            Ok(Some(Sent::Encrypted(p))) => {
                self.stats.encrypted += 1;
                self.out.push_back(Output::External(p));
            }
            Ok(Some(Sent::Counted)) => self.stats.counted += 1,
            Ok(None) | Err(_) => self.stats.dropped += 1,
        }
        self.drive(now, rng);
    }

    /// A sync datagram from node `from`.
    pub fn handle_sync<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: NodeId,
        datagram: &mut [u8],
        rng: &mut R,
    ) {
        match self.peers.get_mut(&from) {
            Some(p) => {
                if p.channel.handle_datagram(now, datagram).is_err() {
                    self.stats.sync_rejected += 1;
                }
            }
            None => self.stats.sync_rejected += 1,
        }
        self.drive(now, rng);
    }

    /// Timers: IKE retransmissions and lifetimes, heartbeats, ESP state
    /// syncs, peer timeouts, sync retransmissions.
    pub fn handle_timeout<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.ike.handle_timeout(now, rng);
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.cfg.heartbeat_delay;
            self.heartbeat(now);
        }
        if now >= self.next_esp_sync {
            self.next_esp_sync = now + self.cfg.esp_sync_interval;
            self.sync_esp_state(now);
        }
        self.drive(now, rng);
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_heartbeat.min(self.next_esp_sync);
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        at(self.ike.poll_timeout());
        for p in self.peers.values() {
            at(p.channel.poll_timeout());
            if p.live
                && let Some(h) = p.channel.last_heard()
            {
                let fence = self.cfg.heartbeat_timeout.saturating_sub(self.cfg.heartbeat_delay);
                let (f, d) = (h + fence, h + self.cfg.heartbeat_timeout);
                // The next of the two deadlines still ahead.
                at(Some(if f > self.last_now { f } else { d }));
            }
        }
        if !self.grace_over {
            at(Some(self.started + self.cfg.heartbeat_timeout));
        }
        Some(t)
    }

    /// The next thing to put on a wire.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// Operator: stop serving `segments` here (they stay unserved until
    /// taken back; other nodes do not step in while this node lives).
    pub fn drop_segments(&mut self, now: Instant, segments: SegmentSet) {
        self.excluded = self.excluded.union(segments);
        self.reassign(now);
        self.flush(now);
    }

    /// Operator: serve `segments` again after a [`Self::drop_segments`];
    /// refused while a live peer claims one of them.
    pub fn take_segments(&mut self, now: Instant, segments: SegmentSet) -> Result<(), NodeId> {
        if let Some((&n, _)) =
            self.peers.iter().find(|(_, p)| p.live && !p.owns.intersection(segments).is_empty())
        {
            return Err(n);
        }
        self.excluded = self.excluded.difference(segments);
        self.reassign(now);
        self.flush(now);
        Ok(())
    }

    /// Leaves the cluster for good (a planned shutdown): drops every
    /// segment and tells the peers at once that this node is no longer
    /// synced, so they take its segments now instead of after the timeout.
    /// Keep feeding the node sync datagrams and timers for a heartbeat or
    /// two so that the messages are delivered.
    pub fn leave(&mut self, now: Instant) {
        self.leaving = true;
        if self.synced {
            self.synced = false;
            self.events.push_back(NodeEvent::Unsynced);
        }
        self.handed = SegmentSet::EMPTY;
        self.reassign(now);
        self.broadcast(now, &Message::Heartbeat { segments: self.owned, synced: false });
        self.flush(now);
    }

    /// A handover mark (see [`Output::Mark`]) read from the port the
    /// plaintext comes in by: its sender served no frame of its segments
    /// that came after it. So this node serves the segments it took from
    /// that peer at once, without waiting out
    /// [`NodeConfig::handover_settle`]; a mark read before the drop it
    /// goes with counts for that long. Returns the mark's segments.
    pub fn handover_mark(&mut self, now: Instant, mark: &[u8]) -> Result<SegmentSet, Error> {
        let (from, segments) = self.keys.open_mark(mark)?;
        if !self.peers.contains_key(&from) {
            return Err(Error::UnknownNode(from));
        }
        self.settling = self.settling.difference(segments);
        let fresh = if now < self.marked_until { self.marked } else { SegmentSet::EMPTY };
        self.marked = fresh.union(segments);
        self.marked_until = now + self.cfg.handover_settle;
        Ok(segments)
    }

    /// Operator: ask every live peer again for the state of `segments`.
    pub fn resync_segments(&mut self, now: Instant, segments: SegmentSet) {
        let live: Vec<NodeId> = self.live_peers();
        for n in live {
            self.send(now, n, &Message::ResyncRequest { segments });
        }
        self.flush(now);
    }

    /// Processes everything the engines queued, then membership, then
    /// puts the sync datagrams out.
    fn drive<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        // Each round drains what the last one produced; applying sync
        // messages produces no new ones, so two or three rounds suffice.
        for _ in 0..16 {
            let mut busy = false;
            while let Some(e) = self.ike.poll_event() {
                busy = true;
                self.ike_event(e, rng);
            }
            while let Some(t) = self.ike.poll_transmit() {
                busy = true;
                match packet::ike_packet(t.local, t.remote, &t.data) {
                    Some(p) => self.out.push_back(Output::External(p)),
                    None => self.stats.dropped += 1,
                }
            }
            while let Some(s) = self.ike.poll_sync() {
                busy = true;
                self.publish(now, s);
            }
            let mut inbox = Vec::new();
            for (&n, p) in &mut self.peers {
                while let Some(e) = p.channel.poll_event() {
                    inbox.push((n, e));
                }
            }
            for (n, e) in inbox {
                busy = true;
                self.channel_event(now, n, e, rng);
            }
            if !busy {
                break;
            }
        }
        self.update_membership(now, rng);
        self.flush(now);
    }

    fn flush(&mut self, now: Instant) {
        for (&n, p) in &mut self.peers {
            while let Some(d) = p.channel.poll_transmit(now) {
                self.out.push_back(Output::Sync { to: n, datagram: d });
            }
        }
    }

    /// Acts on what the IKE engine reports: the data path follows it.
    fn ike_event<R: CryptoRng + ?Sized>(&mut self, e: Event, rng: &mut R) {
        match e {
            Event::ChildSaEstablished(c) | Event::ChildSaRekeyed { new: c, .. } => {
                let seg = self.child_segment(c.inbound_spi, c.ike_sa);
                if self.dp.install(&c, seg, rng).is_err() {
                    self.stats.dropped += 1;
                }
            }
            Event::ChildSaDeleted { inbound_spi, .. } => {
                self.dp.remove(inbound_spi);
            }
            Event::IkeSaRekeyed { old, new } => self.reparent(old, new),
            Event::IkeSaDeleted { sa, .. } => {
                self.dp.remove_ike(sa);
                self.unreserve(sa);
            }
            Event::IkeSaEstablished { sa, virtual_ips, .. } => {
                self.events.push_back(NodeEvent::IkeSaUp { sa, virtual_ips });
            }
            _ => {}
        }
    }

    fn reparent(&mut self, old: IkeSaId, new: IkeSaId) {
        let spis: Vec<u32> = self.dp.children_of(old).map(|c| c.inbound_spi).collect();
        for s in spis {
            self.dp.reparent(s, new);
        }
    }

    fn child_segment(&self, inbound_spi: u32, ike_sa: IkeSaId) -> Segment {
        self.spis
            .segment_of_esp_spi(inbound_spi)
            .or_else(|| self.spis.segment_of_ike_spi(ike_sa.0))
            .unwrap_or(self.spis.count().segment_of_hash(0))
    }

    fn unreserve(&mut self, sa: IkeSaId) {
        if let (Some(vips), Some(pool)) = (self.reserved.remove(&sa), &self.pool) {
            for a in vips {
                pool.unreserve(a);
            }
        }
    }

    /// Sends a change of one of our SAs to every live peer.
    fn publish(&mut self, now: Instant, s: SyncEvent) {
        let tb = self.time_base(now);
        let msg = match s {
            SyncEvent::IkeSa(state) => {
                Message::IkeSaAdded { sa: state.id.0, rekeyed_from: None, state: state.encode(&tb) }
            }
            SyncEvent::Rekeyed { old, new } => match self.ike.snapshot(new) {
                Some(state) => {
                    Message::IkeSaAdded { sa: new.0, rekeyed_from: Some(old.0), state: state.encode(&tb) }
                }
                None => return,
            },
            SyncEvent::ChildAdded { sa, child, rekey_at, expire_at } => Message::ChildSaAdded {
                sa: sa.0,
                inbound_spi: child.inbound_spi,
                outbound_spi: child.outbound_spi,
                state: encode_child(&child, rekey_at, expire_at, &tb),
            },
            SyncEvent::ChildDeleted { sa, inbound_spi } => Message::ChildSaDeleted { sa: sa.0, inbound_spi },
            SyncEvent::Progress { sa, next_message_id, expected_request, iv_counter } => {
                Message::MessageIds { sa: sa.0, next_message_id, expected_request, iv_counter }
            }
            SyncEvent::LastExchange { sa, request, response } => {
                Message::LastResponse { sa: sa.0, request, response }
            }
            SyncEvent::Deleted { sa } => Message::IkeSaDeleted { sa: sa.0 },
        };
        self.broadcast(now, &msg);
    }

    fn broadcast(&mut self, now: Instant, msg: &Message) {
        let live: Vec<NodeId> = self.live_peers();
        for n in live {
            self.send(now, n, msg);
        }
    }

    fn send(&mut self, now: Instant, to: NodeId, msg: &Message) {
        let Some(p) = self.peers.get_mut(&to) else { return };
        match p.channel.send(now, msg) {
            Ok(_) => self.stats.sync_sent += 1,
            Err(_) => {
                self.stats.sync_blocked += 1;
                p.behind = true;
            }
        }
    }

    fn channel_event<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: NodeId,
        e: ChannelEvent,
        rng: &mut R,
    ) {
        match e {
            ChannelEvent::Message(m) => {
                if self.apply(now, from, m, rng).is_ok() {
                    self.stats.sync_applied += 1;
                } else {
                    self.stats.sync_rejected += 1;
                }
            }
            ChannelEvent::Undecodable(_) => self.stats.sync_rejected += 1,
            ChannelEvent::PeerEpoch(_) => {
                // A new incarnation: whatever it claimed before is void.
                if let Some(p) = self.peers.get_mut(&from) {
                    p.live = false;
                    p.synced = false;
                    p.owns = SegmentSet::EMPTY;
                }
            }
        }
    }

    /// Applies a peer's message.
    fn apply<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        from: NodeId,
        m: Message,
        rng: &mut R,
    ) -> Result<(), Error> {
        let tb = self.time_base(now);
        match m {
            Message::Heartbeat { segments, synced } => {
                if let Some(p) = self.peers.get_mut(&from) {
                    p.owns = segments;
                    p.synced = synced;
                }
            }
            Message::SegmentTake { segments } => {
                if let Some(p) = self.peers.get_mut(&from) {
                    p.owns = p.owns.union(segments);
                }
            }
            Message::SegmentDrop { segments } => {
                if let Some(p) = self.peers.get_mut(&from) {
                    p.owns = p.owns.difference(segments);
                    self.handed = self.handed.union(segments);
                }
            }
            Message::ResyncRequest { segments } => {
                self.send_state(now, from, segments.intersection(self.owned))
            }
            Message::ResyncDone { .. } => {
                if let Some(p) = self.peers.get_mut(&from) {
                    p.resync_done = true;
                }
            }
            Message::IkeSaAdded { sa, rekeyed_from, state } => {
                let state = IkeSaState::decode(state.expose(), &tb)?;
                if state.id.0 != sa {
                    return Err(Error::SyncMalformed("state of another SA"));
                }
                self.mirror(now, rekeyed_from.map(IkeSaId), state)?;
            }
            Message::IkeSaUpdated { state, .. } => {
                let state = IkeSaState::decode(state.expose(), &tb)?;
                self.mirror(now, None, state)?;
            }
            Message::ChildSaAdded { sa, state, .. } => {
                let (child, rekey_at, expire_at) = decode_child(state.expose(), &tb)?;
                let seg = self.child_segment(child.inbound_spi, IkeSaId(sa));
                self.dp.install(&child, seg, rng)?;
                let e =
                    SyncEvent::ChildAdded { sa: IkeSaId(sa), child: Box::new(child), rekey_at, expire_at };
                self.ike.apply_sync(now, &e)?;
            }
            Message::ChildSaDeleted { sa, inbound_spi } => {
                self.dp.remove(inbound_spi);
                self.ike.apply_sync(now, &SyncEvent::ChildDeleted { sa: IkeSaId(sa), inbound_spi })?;
            }
            Message::MessageIds { sa, next_message_id, expected_request, iv_counter } => {
                let e =
                    SyncEvent::Progress { sa: IkeSaId(sa), next_message_id, expected_request, iv_counter };
                self.ike.apply_sync(now, &e)?;
            }
            Message::LastResponse { sa, request, response } => {
                self.ike.apply_sync(now, &SyncEvent::LastExchange { sa: IkeSaId(sa), request, response })?;
            }
            Message::IkeSaDeleted { sa } => {
                let sa = IkeSaId(sa);
                self.ike.apply_sync(now, &SyncEvent::Deleted { sa })?;
                self.dp.remove_ike(sa);
                self.unreserve(sa);
            }
            Message::EspState { outbound, inbound } => self.dp.apply_esp_state(&outbound, &inbound),
            // Deadlines and leases travel inside the IKE state.
            _ => {}
        }
        Ok(())
    }

    /// Installs (or refreshes) the PASSIVE mirror of a peer's IKE SA.
    fn mirror(
        &mut self,
        now: Instant,
        rekeyed_from: Option<IkeSaId>,
        state: IkeSaState,
    ) -> Result<(), Error> {
        let id = state.id;
        if let Some(old) = rekeyed_from {
            // Its CHILD_SAs move to the new SA; the old one is deleted next.
            let _ = self.ike.apply_sync(now, &SyncEvent::Rekeyed { old, new: id });
            self.reparent(old, id);
        }
        for c in &state.children {
            self.dp.reparent(c.inbound_spi, id);
        }
        let vips = state.virtual_ips.clone();
        self.ike.install_passive(now, state)?;
        self.unreserve(id);
        if let Some(pool) = &self.pool {
            for &a in &vips {
                pool.reserve(a);
            }
        }
        self.reserved.insert(id, vips);
        Ok(())
    }

    /// Sends a peer the full state of our SAs in `segments`, then
    /// RESYNC_DONE.
    fn send_state(&mut self, now: Instant, to: NodeId, segments: SegmentSet) {
        let tb = self.time_base(now);
        let ids: Vec<IkeSaId> = self
            .ike
            .sa_ids()
            .filter(|id| self.spis.segment_of_ike_spi(id.0).is_some_and(|s| segments.contains(s)))
            .collect();
        let mut msgs = Vec::new();
        for id in ids {
            let Some(state) = self.ike.snapshot(id) else { continue };
            let deadlines: HashMap<u32, _> =
                state.children.iter().map(|c| (c.inbound_spi, (c.rekey_at, c.expire_at))).collect();
            msgs.push(Message::IkeSaAdded { sa: id.0, rekeyed_from: None, state: state.encode(&tb) });
            for c in self.dp.children_of(id) {
                let (rekey_at, expire_at) = deadlines.get(&c.inbound_spi).copied().unwrap_or((None, None));
                msgs.push(Message::ChildSaAdded {
                    sa: id.0,
                    inbound_spi: c.inbound_spi,
                    outbound_spi: c.outbound_spi,
                    state: encode_child(c, rekey_at, expire_at, &tb),
                });
            }
        }
        msgs.extend(esp_messages(self.dp.esp_state(segments, false)));
        msgs.push(Message::ResyncDone { segments });
        for m in &msgs {
            self.send(now, to, m);
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        let msg = Message::Heartbeat { segments: self.owned, synced: self.synced };
        let targets: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.live || p.channel.unacked() < PROBES)
            .map(|(&n, _)| n)
            .collect();
        for n in targets {
            self.send(now, n, &msg);
        }
        // A peer that missed messages to back-pressure gets our state anew.
        let behind: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.live && p.behind && p.channel.unacked() == 0)
            .map(|(&n, _)| n)
            .collect();
        for n in behind {
            if let Some(p) = self.peers.get_mut(&n) {
                p.behind = false;
            }
            self.send_state(now, n, self.owned);
        }
    }

    fn sync_esp_state(&mut self, now: Instant) {
        if self.owned.is_empty() || self.live_peers().is_empty() {
            return;
        }
        for m in esp_messages(self.dp.esp_state(self.owned, true)) {
            self.broadcast(now, &m);
        }
    }

    /// Liveness of each peer, our synced state, then ownership.
    fn update_membership<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.last_now = now;
        let timeout = self.cfg.heartbeat_timeout;
        let mut ups = Vec::new();
        let (keys, me) = (&self.keys, self.cfg.node);
        for (&n, p) in &mut self.peers {
            let live = p.channel.last_heard().is_some_and(|t| now < t + timeout);
            if live && !p.live {
                p.live = true;
                p.resync_done = false;
                ups.push(n);
                self.events.push_back(NodeEvent::PeerUp(n));
            } else if !live && p.live {
                p.live = false;
                p.synced = false;
                p.owns = SegmentSet::EMPTY;
                // A fresh stream: what we queued for it is stale by the
                // time it hears us again, and the new epoch tells it to
                // forget our claims and resync.
                if let Ok(c) = Channel::new(ChannelConfig::default(), keys, me, n, new_epoch(rng)) {
                    p.channel = c;
                }
                self.events.push_back(NodeEvent::PeerDown(n));
            }
        }
        let all = SegmentSet::all(self.spis.count());
        for n in ups {
            self.send(now, n, &Message::ResyncRequest { segments: all });
            // Tell it at once who we are; the timer keeps the rhythm.
            self.send(now, n, &Message::Heartbeat { segments: self.owned, synced: self.synced });
            if !self.owned.is_empty() {
                self.dp.resend_esp_state();
            }
        }
        self.grace_over |= now >= self.started + timeout;
        if !self.synced && self.grace_over && !self.leaving {
            // Quorum counts the peers heard within the fencing window, as
            // the fence itself does, so that a node fenced a moment ago
            // does not rejoin on the strength of peers it no longer hears.
            let mut heard = self.heard_peers(now);
            heard.push(self.cfg.node);
            let quorate = self.cfg.layout.is_quorate(&heard).unwrap_or(false);
            if quorate && self.resync_needed {
                self.resync_needed = false;
                for n in self.live_peers() {
                    self.send(now, n, &Message::ResyncRequest { segments: all });
                }
            }
            let answered = self.peers.values().filter(|p| p.live).all(|p| p.resync_done);
            if answered && quorate {
                self.synced = true;
                self.synced_at = now;
                self.events.push_back(NodeEvent::Synced);
                self.broadcast(now, &Message::Heartbeat { segments: self.owned, synced: true });
            }
        }
        self.reassign(now);
    }

    /// Drops the segments the layout no longer gives us, takes those it
    /// gives us that no live peer claims any more; announces both.
    fn reassign(&mut self, now: Instant) {
        let mut ready: Vec<NodeId> =
            self.peers.iter().filter(|(_, p)| p.live && p.synced).map(|(&n, _)| n).collect();
        if self.synced {
            ready.push(self.cfg.node);
        }
        let count = self.spis.count();
        let assignment = self.cfg.layout.assign(&ready).unwrap_or(Assignment::unserved(count));
        // Self-fencing: a node that stops hearing a majority gives its
        // segments up one heartbeat before the majority takes them.
        let mut heard = self.heard_peers(now);
        heard.push(self.cfg.node);
        if self.synced && !self.cfg.layout.is_quorate(&heard).unwrap_or(false) {
            // Out of quorum: our mirrors may go stale from here on, so we
            // serve again only after a fresh resync.
            self.synced = false;
            self.handed = SegmentSet::EMPTY;
            self.resync_needed = true;
            for p in self.peers.values_mut() {
                p.resync_done = false;
            }
            self.events.push_back(NodeEvent::Unsynced);
        }
        let desired = if self.synced {
            assignment.segments_of(self.cfg.node).difference(self.excluded)
        } else {
            SegmentSet::EMPTY
        };
        let claimed =
            self.peers.values().filter(|p| p.live).fold(SegmentSet::EMPTY, |acc, p| acc.union(p.owns));
        let drop = self.owned.difference(desired);
        // Freshly synced, we may not know yet which peers are synced too
        // (at start-up all are at once): for a heartbeat we take only what
        // a peer handed over to us, so views agree before anyone takes an
        // unowned segment.
        let mut take = desired.difference(self.owned).difference(claimed);
        if now < self.synced_at + self.cfg.heartbeat_delay {
            take = take.intersection(self.handed);
        }
        let handed_over = take.intersection(self.handed);
        self.handed = self.handed.difference(take);
        if !handed_over.is_empty() {
            let still = if now < self.settled_at { self.settling } else { SegmentSet::EMPTY };
            let marked = if now < self.marked_until { self.marked } else { SegmentSet::EMPTY };
            self.settling = still.union(handed_over.difference(marked));
            self.settled_at = now + self.cfg.handover_settle;
        }
        if !drop.is_empty() {
            // The last counters and windows first (the channel keeps the
            // order): the next owner continues from them.
            for m in esp_messages(self.dp.esp_state(drop, false)) {
                self.broadcast(now, &m);
            }
            // Exchanges still setting an SA up end here: the peer's
            // answer goes to the next owner, which starts its own if the
            // SA was ours to start.
            for id in self.sas_in(drop) {
                if !matches!(self.ike.abandon(now, id), Ok(true)) {
                    let _ = self.ike.deactivate(id);
                }
            }
            self.owned = self.owned.difference(drop);
            self.broadcast(now, &Message::SegmentDrop { segments: drop });
            self.out.push_back(Output::Mark(self.keys.seal_mark(self.cfg.node, drop)));
            self.events.push_back(NodeEvent::Dropped(drop));
        }
        if !take.is_empty() {
            for id in self.sas_in(take) {
                let _ = self.ike.activate(now, id);
            }
            self.dp.jump(take, self.cfg.seq_margin);
            self.owned = self.owned.union(take);
            self.broadcast(now, &Message::SegmentTake { segments: take });
            self.events.push_back(NodeEvent::Took(take));
        }
        if let Some(p) = &self.pool {
            p.set_owned(self.owned);
        }
    }

    /// The segments whose ESP this node encrypts and decrypts now: those
    /// it owns, but for a handover's first moments.
    fn serving(&self, now: Instant) -> SegmentSet {
        if now < self.settled_at { self.owned.difference(self.settling) } else { self.owned }
    }

    /// The live peers heard within the fencing window (a heartbeat less
    /// than the timeout): a node that hears fewer than a quorum of nodes
    /// gives up its segments before the others take them.
    fn heard_peers(&self, now: Instant) -> Vec<NodeId> {
        let fence = self.cfg.heartbeat_timeout.saturating_sub(self.cfg.heartbeat_delay);
        self.peers
            .iter()
            .filter(|(_, p)| p.live && p.channel.last_heard().is_some_and(|t| now < t + fence))
            .map(|(&n, _)| n)
            .collect()
    }

    fn sas_in(&self, segments: SegmentSet) -> Vec<IkeSaId> {
        self.ike
            .sa_ids()
            .filter(|id| self.spis.segment_of_ike_spi(id.0).is_some_and(|s| segments.contains(s)))
            .collect()
    }
}

/// ESP_STATE messages of at most [`ESP_STATE_CHUNK`] SAs each.
fn esp_messages(state: Vec<(OutboundCounter, ReplaySnapshot)>) -> Vec<Message> {
    state
        .chunks(ESP_STATE_CHUNK)
        .map(|c| Message::EspState {
            outbound: c.iter().map(|(o, _)| *o).collect(),
            inbound: c.iter().map(|(_, i)| i.clone()).collect(),
        })
        .collect()
}
