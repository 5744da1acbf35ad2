//! `tandem run` as a cluster node: the cluster engine ([`Node`]) between
//! two AF_PACKET ports that capture the frames sent to the cluster MACs
//! (external: IKE and ESP from peers; internal: plaintext from the
//! protected networks) and a UDP socket for the sealed sync channels. The
//! ports' [`Link`]s answer ARP/ND for the VIPs and resolve next hops; the
//! node decides what is this node's to handle. The kernel never sees the
//! VIPs.

use super::GatewayError;
use super::afpacket::{FRAME_AT, Messages, PacketPort, TAIL, TxBatch};
use super::control::{self, Call};
use super::driver::Plan;
use super::driver::{now, ts_text};
use super::frames::{Coalescer, ETH_LEN, Partial, Rx, finish_checksum, head_packet};
use super::trim::{self, TrimPlan};
use super::udp_gso;
use crate::control::{
    ChildSaView, ClusterStatus, IkeSaView, MemberView, Reply, Request, SegmentAction, Status,
};
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use core::time::Duration;
use rand_core::UnwrapErr;
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tandem_cluster::link::{Link, LinkConfig, Received};
use tandem_cluster::node::packet::{Outer, classify};
use tandem_cluster::sync::seal::MARK_LEN;
use tandem_cluster::{
    HaPool, InPlace, Node, NodeConfig, NodeEvent, NodeId, Output, SegmentCount, SegmentSet, SegmentSpis,
    segment_of,
};
use tandem_crypto::secret::ct_eq;
use tandem_ike::IkeSaId;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

/// The largest sync datagram read.
const MAX_DATAGRAM: usize = 65_536;
/// Frames written per system call.
const BATCH: usize = 64;
/// Batches (blocks of the receive ring, or `recvmmsg` reads) taken from
/// one port per wakeup before the others get a turn.
const ROUNDS: usize = 4;
/// Buffers for the segments of super-packets (see `frames`), each for a
/// frame of up to [`SEGMENT`] octets.
const SEGMENTS: usize = 128;
/// The longest segment of a super-packet kept (a jumbo frame).
const SEGMENT: usize = 9216 + 18;
/// Frames (or TCP super-packets) collected for the internal port before
/// they are written.
const COALESCE: usize = 64;
/// How often a node checks that a connection with `start_action =
/// "start"` is up.
const KEEP_UP_EVERY: Duration = Duration::from_secs(1);
/// The least time between two attempts to bring such a connection up.
const KEEP_UP_RETRY: Duration = Duration::from_secs(10);
/// The sync socket's buffers (a resync is a burst).
const SYNC_BUFFER: usize = 4 << 20;
/// The internal port's filter is rebuilt for new or removed CHILD_SAs at
/// most this often.
const HOST_TRIM_GAP: Duration = Duration::from_millis(20);

/// A cluster node's plan besides its connection.
#[derive(Debug)]
pub(crate) struct ClusterPlan {
    /// The engine's configuration.
    pub(crate) node: NodeConfig,
    /// The segment count (also in `node`'s layout).
    pub(crate) count: SegmentCount,
    /// Where this node's sync socket listens.
    pub(crate) sync_bind: SocketAddr,
    /// The other nodes' sync addresses.
    pub(crate) peers: Vec<(NodeId, SocketAddr)>,
    /// Each port's receive ring in MiB (0: none, `recvmmsg`).
    pub(crate) ring_mib: u32,
    /// The port towards the peers.
    pub(crate) external: PortPlan,
    /// The port towards the protected networks.
    pub(crate) internal: PortPlan,
}

/// One port of a cluster node.
#[derive(Debug)]
pub(crate) struct PortPlan {
    /// The interface.
    pub(crate) interface: String,
    /// The virtual IP on it and its on-link prefix.
    pub(crate) vip: IpAddr,
    /// See `vip`.
    pub(crate) prefix_len: u8,
    /// The cluster MAC.
    pub(crate) mac: [u8; 6],
    /// The next hop for off-link destinations.
    pub(crate) gateway: Option<IpAddr>,
    /// `interface` is a TAP device (else captured with a packet socket).
    pub(crate) tap: bool,
}

/// A port with its link layer.
struct Port {
    io: PacketPort,
    link: Link,
    tx: TxBatch,
    /// Frames the port refused to send (its queue full).
    send_drops: u64,
}

impl Port {
    fn open(p: &PortPlan, ring_mib: u32) -> Result<Self, GatewayError> {
        let io = if p.tap {
            PacketPort::open_tap(&p.interface)?
        } else {
            PacketPort::open(&p.interface, p.mac, usize::try_from(ring_mib).unwrap_or(0))?
        };
        let link = Link::new(LinkConfig {
            own_mac: io.mac(),
            cluster_mac: p.mac,
            vip: p.vip,
            prefix_len: p.prefix_len,
            gateway: p.gateway,
            mtu: io.mtu(),
        });
        if !io.offloads() {
            warn!(
                port = io.name(),
                "no offload headers (PACKET_VNET_HDR) on this kernel: turn checksum offload, TSO, GSO \
                 and GRO off on the senders of this link"
            );
        }
        Ok(Self { io, link, tx: TxBatch::new(BATCH), send_drops: 0 })
    }

    /// Writes what the link layer queued (ARP, ND, echo replies, packets
    /// that waited for their next hop).
    fn flush(&mut self) {
        let mut frames = Vec::new();
        while let Some(frame) = self.link.poll_frame() {
            frames.push(frame);
        }
        if !frames.is_empty() {
            let mut msgs = Messages::default();
            for f in &frames {
                msgs.push(&[], f);
            }
            self.send(&msgs);
        }
    }

    /// Writes `msgs` in batches.
    fn send(&mut self, msgs: &Messages<'_>) {
        let sent = self.io.send_batch(&mut self.tx, msgs);
        if sent.dropped > 0 {
            self.send_drops += sent.dropped as u64;
            debug!(port = self.io.name(), dropped = sent.dropped, "frames dropped on sending");
        }
    }
}

/// Where a frame to send lies: in the internal port's receive buffer (by
/// frame of the batch at hand), or in a segment buffer.
#[derive(Clone, Copy)]
enum Buf {
    Rx(usize),
    Segment(usize),
}

/// The buffers of the data path besides the ports' receive buffers. A
/// received frame is decrypted or encrypted where it lies: an encrypted
/// one is written from there, a decrypted one is copied into the internal
/// port's [`Coalescer`], which merges TCP segments into super-packets (as
/// GRO would) when that port takes offload headers.
struct Frames {
    /// Frames copied out of the receive buffer to be encrypted: segments
    /// of super-packets from the internal side (those from the external
    /// side are cut in place), frames without room after them. `used` of
    /// them are taken.
    segments: Vec<Box<[u8]>>,
    used: usize,
    /// Frames to write to the external port.
    to_ext: Vec<(Buf, Range<usize>)>,
    /// Frames to write to the internal port.
    to_int: Coalescer,
    /// Frames dropped as cut short, oversized or of an unknown offload.
    dropped: u64,
    /// Super-packets received from each side (external, internal).
    super_packets: [u64; 2],
    /// ESP packets of external super-packets counted by SPI alone, or
    /// by their headers (trimmed by the port's filter).
    passed_over: u64,
    /// External super-packets the port's filter trimmed to their headers.
    trimmed: u64,
    /// Internal super-packets counted whole, uncut (not served here).
    counted_uncut: u64,
    /// Internal super-packets the port's filter trimmed to their headers,
    /// counted by those (to hosts not served here).
    int_trimmed: u64,
    /// Handover marks from peers read on the ports.
    marks: u64,
    /// UDP GSO super-packets written to the external port (runs of ESP
    /// packets to one peer).
    udp_super_packets: u64,
}

impl Frames {
    /// Buffers for ports of which the internal one takes offload headers
    /// (or not).
    fn new(int_offloads: bool) -> Self {
        Self {
            segments: (0..SEGMENTS)
                .map(|_| vec![0u8; FRAME_AT + SEGMENT + TAIL].into_boxed_slice())
                .collect(),
            used: 0,
            to_ext: Vec::with_capacity(BATCH),
            to_int: Coalescer::new(COALESCE, int_offloads),
            dropped: 0,
            super_packets: [0; 2],
            passed_over: 0,
            trimmed: 0,
            counted_uncut: 0,
            int_trimmed: 0,
            marks: 0,
            udp_super_packets: 0,
        }
    }

    /// A free segment buffer, after writing what waits if there is none.
    fn segment(&mut self, ext: &mut Port, int: &mut Port) -> usize {
        if self.used == self.segments.len() {
            self.send(ext, int);
        }
        self.used += 1;
        self.used - 1
    }

    /// Writes the frames queued for both ports; the segment buffers are
    /// free again.
    fn send(&mut self, ext: &mut Port, int: &mut Port) {
        if !self.to_ext.is_empty() {
            let segments = &self.segments;
            let frames: Vec<&[u8]> = self
                .to_ext
                .iter()
                .map(|(b, r)| {
                    let buf: &[u8] = match *b {
                        Buf::Rx(i) => int.io.buf(i),
                        Buf::Segment(i) => &segments[i],
                    };
                    &buf[r.clone()]
                })
                .collect();
            // Runs of ESP packets to one peer go as UDP GSO super-packets
            // where the port takes offload headers.
            let runs = udp_gso::runs(&frames, ext.io.offloads());
            let mut msgs = Messages::default();
            for r in &runs {
                self.udp_super_packets += u64::from(r.count > 1);
                msgs.push_pieces(r.vnet(), r.pieces(&frames));
            }
            ext.send(&msgs);
            self.to_ext.clear();
        }
        send_coalesced(&mut self.to_int, int);
        self.used = 0;
    }
}

/// Writes what `c` collected to `port`.
fn send_coalesced(c: &mut Coalescer, port: &mut Port) {
    if c.is_empty() {
        return;
    }
    let frames = c.frames();
    let mut msgs = Messages::default();
    for (h, f) in &frames {
        msgs.push(h, f);
    }
    port.send(&msgs);
    c.clear();
}

/// Which port a frame came in on.
#[derive(Clone, Copy)]
enum Side {
    External = 0,
    Internal = 1,
}

struct Runtime {
    plan: Plan,
    cluster: ClusterPlan,
    node: Node,
    ext: Port,
    int: Port,
    sync: UdpSocket,
    rng: UnwrapErr<getrandom::SysRng>,
    started: Instant,
    frames: Frames,
    /// When each IKE SA came up here, or this process first listed it
    /// (mirrors), for `tandem sas`.
    seen: HashMap<IkeSaId, Instant>,
    /// The external port's filter (see `trim`), if it has one.
    trim: Option<Trim>,
    /// The internal port's filter, if it has one.
    host_trim: Option<HostTrim>,
    /// This node's attempts to bring the connection up.
    keep_up: KeepUp,
}

/// When a connection that starts by itself was last checked and tried.
#[derive(Default)]
struct KeepUp {
    next_check: Option<Instant>,
    /// The IKE SA of the last attempt and when it started.
    attempt: Option<(IkeSaId, Instant)>,
    /// `tandem terminate` took the connection down on this node: it stays
    /// down until `tandem initiate` or a reload.
    held_down: bool,
}

/// A filter that trims the ESP super-packets of segments not owned here.
struct Trim {
    plan: TrimPlan,
    /// The owned segments the attached filter passes whole (`None`: none
    /// attached yet).
    attached: Option<SegmentSet>,
}

/// A filter that trims the plaintext super-packets to hosts of segments
/// not owned here (see `trim::hosts_program`).
struct HostTrim {
    /// The longest frame that is not a super-packet.
    longest: u32,
    /// The owned segments and SA generation the attached filter was built
    /// for, and when (`None`: none attached yet).
    attached: Option<(SegmentSet, u64, Instant)>,
}

/// Runs a cluster node until SIGTERM or SIGINT.
pub(crate) async fn serve(plan: Plan, cluster: ClusterPlan) -> Result<(), GatewayError> {
    check_host(&cluster)?;
    let mut rng = UnwrapErr(getrandom::SysRng);
    let ext = Port::open(&cluster.external, cluster.ring_mib)?;
    let int = Port::open(&cluster.internal, cluster.ring_mib)?;
    let int_offloads = int.io.offloads();
    let sync = sync_socket(cluster.sync_bind)?;
    let pool = plan.pool.and_then(|(first, last)| HaPool::new(first, last, cluster.count));
    let started = now();
    #[allow(clippy::disallowed_methods)]
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let unix_ms = u64::try_from(unix_ms).unwrap_or(0);
    let node = Node::new(cluster.node.clone(), plan.ike.clone(), pool, started, unix_ms, &mut rng)
        .map_err(|e| GatewayError::Config(format!("[cluster]: {e}")))?;
    info!(
        node = cluster.node.node.0,
        external = ext.io.name(),
        internal = int.io.name(),
        sync = %cluster.sync_bind,
        "cluster node up"
    );
    let (control, calls) = control::listen(&plan.control_socket)?;
    // Sampling every packet wants every frame whole.
    let trim = (ext.io.can_trim() && cluster.node.sample_every > 1).then(|| Trim {
        plan: TrimPlan {
            mac: cluster.external.mac,
            vip: cluster.external.vip,
            longest: u32::try_from(ext.io.mtu() + 18).unwrap_or(u32::MAX),
            sample_every: cluster.node.sample_every,
        },
        attached: None,
    });
    let host_trim = int
        .io
        .can_trim()
        .then(|| HostTrim { longest: u32::try_from(int.io.mtu() + 18).unwrap_or(u32::MAX), attached: None });
    let mut rt = Runtime {
        plan,
        cluster,
        node,
        ext,
        int,
        sync,
        rng,
        started,
        frames: Frames::new(int_offloads),
        seen: HashMap::new(),
        trim,
        host_trim,
        keep_up: KeepUp::default(),
    };
    let r = rt.run(calls).await;
    drop(control);
    r
}

/// Refuses to run where the kernel itself would answer for a VIP: an
/// interface holding one would answer ARP with its own MAC and take the
/// traffic from the cluster.
fn check_host(c: &ClusterPlan) -> Result<(), GatewayError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| GatewayError::io("listing addresses", e.into()))?;
    for a in addrs {
        let ip = a.address.as_ref().and_then(|s| {
            s.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        });
        if let Some(ip) = ip
            && (ip == c.external.vip || ip == c.internal.vip)
        {
            return Err(GatewayError::Config(format!(
                "the VIP {ip} is configured on {}: remove it (ip addr del {ip}/.. dev {}); \
                 the cluster nodes answer for it, the kernel must not",
                a.interface_name, a.interface_name
            )));
        }
    }
    Ok(())
}

/// The sync socket, with room for resync bursts.
fn sync_socket(addr: SocketAddr) -> Result<UdpSocket, GatewayError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let ctx = |e| GatewayError::io(format!("binding the sync socket {addr}"), e);
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(ctx)?;
    let _ = s.set_recv_buffer_size(SYNC_BUFFER);
    let _ = s.set_send_buffer_size(SYNC_BUFFER);
    s.set_nonblocking(true).map_err(ctx)?;
    s.bind(&addr.into()).map_err(ctx)?;
    UdpSocket::from_std(s.into()).map_err(ctx)
}

impl Runtime {
    async fn run(&mut self, mut calls: tokio::sync::mpsc::Receiver<Call>) -> Result<(), GatewayError> {
        let sig = |k| signal(k).map_err(|e| GatewayError::io("installing a signal handler", e));
        let (mut term, mut int) = (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?);
        let mut hup = sig(SignalKind::hangup())?;
        let mut sync_buf = vec![0u8; MAX_DATAGRAM];
        let mut leaving: Option<Instant> = None;
        self.pump(now());
        loop {
            let t = now();
            let mut deadline = self.node.poll_timeout().unwrap_or(t + Duration::from_secs(1));
            for d in
                [self.ext.link.poll_timeout(), self.int.link.poll_timeout(), leaving].into_iter().flatten()
            {
                deadline = deadline.min(d);
            }
            tokio::select! {
                r = self.ext.io.readable() => {
                    r.map_err(|e| GatewayError::io("waiting on the external port", e))?;
                    self.drain(Side::External)?;
                }
                r = self.int.io.readable() => {
                    r.map_err(|e| GatewayError::io("waiting on the internal port", e))?;
                    self.drain(Side::Internal)?;
                }
                r = self.sync.recv_from(&mut sync_buf) => match r {
                    Ok((n, from)) => self.sync_datagram(from, &mut sync_buf[..n]),
                    Err(e) => debug!("sync socket: {e}"),
                },
                () = tokio::time::sleep_until(deadline.into()) => {
                    let t = now();
                    self.node.handle_timeout(t, &mut self.rng);
                    self.ext.link.handle_timeout(t);
                    self.int.link.handle_timeout(t);
                    self.keep_up(t);
                    self.pump(t);
                    if leaving.is_some_and(|l| t >= l) {
                        info!("left the cluster");
                        return Ok(());
                    }
                }
                Some((request, reply)) = calls.recv() => {
                    let _ = reply.send(self.answer(request));
                    self.pump(now());
                }
                _ = hup.recv() => match self.reload(now()) {
                    Ok(what) => info!("SIGHUP: {what}"),
                    Err(e) => warn!("SIGHUP: reload refused: {e}"),
                },
                _ = term.recv(), if leaving.is_none() => leaving = Some(self.leave()),
                _ = int.recv(), if leaving.is_none() => leaving = Some(self.leave()),
            }
        }
    }

    /// Hands this node's segments over and says when to exit: after two
    /// heartbeats, so the peers hear the drop and take the segments at
    /// once instead of waiting for the timeout.
    fn leave(&mut self) -> Instant {
        let t = now();
        info!("leaving the cluster: handing over segments {:?}", seg_list(self.node.owned()));
        self.node.leave(t);
        self.pump(t);
        t + 2 * self.cluster.node.heartbeat_delay
    }

    /// Takes what waits on a port, a batch (a block of the receive ring)
    /// at a time and at most [`ROUNDS`] of them, hands every frame to the
    /// link and the node, and writes what they make of each batch in one
    /// go before the batch's buffer goes back.
    fn drain(&mut self, side: Side) -> Result<(), GatewayError> {
        for _ in 0..ROUNDS {
            let port = match side {
                Side::External => &mut self.ext,
                Side::Internal => &mut self.int,
            };
            let n = match port.io.recv_batch() {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(GatewayError::io(format!("reading port {}", port.io.name()), e)),
            };
            let t = now();
            for i in 0..n {
                self.frame(t, side, i);
            }
            self.frames.send(&mut self.ext, &mut self.int);
        }
        self.pump(now());
        Ok(())
    }

    /// Frame `i` of the batch at hand: a frame as on a wire, or a
    /// super-packet cut into segments first (in place if it came from the
    /// external side, where each segment is done with before the next is
    /// made; into segment buffers from the internal side, where a segment
    /// is encrypted in place and written from there).
    fn frame(&mut self, t: Instant, side: Side, i: usize) {
        let port = match side {
            Side::External => &mut self.ext,
            Side::Internal => &mut self.int,
        };
        let (hdr, buf, at) = port.io.frame(i);
        let Some(at) = at else {
            // Cut short: by the external port's filter, ESP of a segment
            // not owned here; else for want of room.
            match port.io.trimmed(i) {
                Some((hdr, head, len)) if matches!(side, Side::External) && self.trim.is_some() => {
                    let n = hdr.packets(&port.io.buf(i)[head], len);
                    self.node.skipped_esp(n as u64);
                    self.frames.passed_over += n as u64;
                    self.frames.trimmed += 1;
                    self.frames.super_packets[side as usize] += u64::from(n > 1);
                }
                Some((hdr, head, len)) if matches!(side, Side::Internal) => {
                    let head = &port.io.buf(i)[head];
                    let n = hdr.packets(head, len);
                    let mut ip = [0u8; trim::HOST_HEAD as usize];
                    let counted = head
                        .get(ETH_LEN..)
                        .and_then(|h| head_packet(h, &mut ip))
                        .is_some_and(|p| self.node.count_internal(t, p, n as u64));
                    if counted {
                        self.frames.int_trimmed += 1;
                        self.frames.super_packets[side as usize] += u64::from(n > 1);
                    } else {
                        // Served here after all: the filter is about to
                        // change (a segment taken over), and the frame is
                        // lost, as to a switch.
                        self.frames.dropped += 1;
                    }
                }
                _ => self.frames.dropped += 1,
            }
            return;
        };
        let segments = match hdr.classify(&buf[at.clone()]) {
            // An encryption in place needs room after the frame.
            Rx::Frame(partial) if matches!(side, Side::External) || at.end + TAIL <= buf.len() => {
                return self.frame_in(t, side, Buf::Rx(i), at, partial);
            }
            Rx::Frame(partial) => {
                if at.len() > SEGMENT {
                    self.frames.dropped += 1;
                    return;
                }
                let j = self.frames.segment(&mut self.ext, &mut self.int);
                let (_, buf, _) = self.int.io.frame(i);
                self.frames.segments[j][FRAME_AT..FRAME_AT + at.len()].copy_from_slice(&buf[at.clone()]);
                return self.frame_in(t, side, Buf::Segment(j), FRAME_AT..FRAME_AT + at.len(), partial);
            }
            Rx::Segment(s) => {
                self.frames.super_packets[side as usize] += 1;
                if matches!(side, Side::Internal) && self.count_uncut(t, i, at.clone(), s.count()) {
                    return;
                }
                s
            }
            Rx::Unsupported => {
                self.frames.dropped += 1;
                return;
            }
        };
        // ESP in UDP to the VIP, as a peer's UDP GSO sends it: what is
        // not this node's and not sampled is counted without being cut
        // out or parsed. Where the port's filter passes such a
        // super-packet whole only as a sample, all of it is verified.
        let pass_over = matches!(side, Side::External)
            && !segments.is_tcp()
            && esp_to(&self.ext.io.frame(i).1[at.clone()], &self.cluster.external);
        let filtered = self.trim.as_ref().and_then(|f| f.attached);
        let spis = SegmentSpis::new(self.cluster.count);
        for k in 0..segments.count() {
            if pass_over {
                let p = segments.payload(k);
                let head = self.ext.io.frame(i).1.get(at.start + p.start..at.start + p.end);
                if let Some([a, b, c, d, ..]) = head {
                    let spi = u32::from_be_bytes([*a, *b, *c, *d]);
                    let sample = filtered.is_some_and(|owned| {
                        spis.segment_of_esp_spi(spi).is_some_and(|s| !owned.contains(s))
                    });
                    if sample {
                        self.node.sample_next_esp(spi);
                    } else if spi != 0 && self.node.pass_over_esp(t, spi) {
                        self.frames.passed_over += 1;
                        continue;
                    }
                }
            }
            let (buf, range) = match side {
                Side::External => {
                    let Some(r) = segments.in_place(self.ext.io.frame(i).1, at.start, k) else {
                        self.frames.dropped += 1;
                        return;
                    };
                    (Buf::Rx(i), r)
                }
                Side::Internal => {
                    if segments.max_frame() > SEGMENT {
                        self.frames.dropped += 1;
                        return;
                    }
                    let j = self.frames.segment(&mut self.ext, &mut self.int);
                    let f = &mut self.frames;
                    let n =
                        segments.write(&self.int.io.buf(i)[at.clone()], k, &mut f.segments[j][FRAME_AT..]);
                    (Buf::Segment(j), FRAME_AT..FRAME_AT + n)
                }
            };
            self.frame_in(t, side, buf, range, Some(segments.partial()));
        }
    }

    /// A handover mark read on a port (see [`Output::Mark`]).
    fn mark(&mut self, t: Instant, mark: &[u8]) {
        match self.node.handover_mark(t, mark) {
            Ok(s) => {
                self.frames.marks += 1;
                debug!(segments = ?seg_list(s), "handover mark");
            }
            Err(e) => {
                self.frames.dropped += 1;
                debug!("handover mark dropped: {e}");
            }
        }
    }

    /// Whether internal frame `i` at `at`, a super-packet of `n` segments
    /// to the cluster MAC, was counted whole: its SA's segment is not
    /// served here, so there is nothing to cut it for.
    fn count_uncut(&mut self, t: Instant, i: usize, at: Range<usize>, n: usize) -> bool {
        let frame = &self.int.io.buf(i)[at];
        if frame.get(..6) != Some(&self.cluster.internal.mac[..]) {
            return false;
        }
        let counted = frame.get(14..).is_some_and(|p| self.node.count_internal(t, p, n as u64));
        self.frames.counted_uncut += u64::from(counted);
        counted
    }

    /// One frame at `at` in `buf`, with its transport checksum `partial`
    /// left to finish: the link's, then the node's. An encrypted packet is
    /// framed in place and queued for the external port; a decrypted one
    /// is framed and copied to the internal port's coalescer.
    fn frame_in(&mut self, t: Instant, side: Side, buf: Buf, at: Range<usize>, partial: Option<Partial>) {
        let count = self.cluster.count;
        let owned = self.node.owned();
        let owns = |a: IpAddr| owned.contains(segment_of(a, count));
        let Frames { segments, to_ext, to_int, .. } = &mut self.frames;
        let (port, other) = match side {
            Side::External => (&mut self.ext, &mut self.int),
            Side::Internal => (&mut self.int, &mut self.ext),
        };
        let b: &mut [u8] = match buf {
            Buf::Rx(i) => port.io.frame(i).1,
            Buf::Segment(j) => &mut segments[j],
        };
        let len = match port.link.handle_frame(t, &b[at.clone()], &owns) {
            Received::Ip(p) => p.len(),
            Received::Mark(m) => {
                let mark: Option<[u8; MARK_LEN]> = m.get(..MARK_LEN).and_then(|m| m.try_into().ok());
                return self.mark(t, mark.as_ref().map_or(&[][..], |m| &m[..]));
            }
            Received::Handled | Received::Ignored => return,
        };
        // The IP packet follows the 14-octet Ethernet header.
        let packet = at.start + 14..at.start + 14 + len;
        let out = match side {
            Side::External => self.node.handle_external_in_place(t, b, packet.clone(), &mut self.rng),
            Side::Internal => {
                let mtu = other.io.mtu();
                let finish = |p: &mut [u8]| {
                    if let Some(c) = partial {
                        finish_checksum(p, c);
                    }
                };
                self.node.handle_internal_in_place(t, b, packet.clone(), mtu, finish)
            }
        };
        match out {
            InPlace::Internal(r) => {
                if let Some(frame) = other.link.send_ip_in_place(t, b, r)
                    && !to_int.push(&b[frame.clone()])
                {
                    send_coalesced(to_int, other);
                    let _ = to_int.push(&b[frame]);
                }
            }
            InPlace::External(r) => {
                if let Some(frame) = other.link.send_ip_in_place(t, b, r) {
                    to_ext.push((buf, frame));
                }
            }
            InPlace::TooBig { overhead } => {
                // The sender learns the size that fits: less this packet's
                // overhead and the padding a smaller one may need more (up
                // to a cipher block).
                let fits = other.io.mtu().saturating_sub(overhead + 15);
                port.link.too_big(t, &b[packet], u16::try_from(fits).unwrap_or(u16::MAX));
            }
            InPlace::Done => {}
        }
    }

    fn sync_datagram(&mut self, from: SocketAddr, datagram: &mut [u8]) {
        let Some(&(id, _)) = self.cluster.peers.iter().find(|(_, a)| a.ip() == from.ip()) else {
            debug!(%from, "sync datagram from no configured node");
            return;
        };
        // What the ports queued before this datagram arrived goes first. A
        // peer hands a segment over (SEGMENT_DROP) after it served every
        // frame it read; we read the same frames at about the same time,
        // so taking the segment before reading them would serve them twice.
        for side in [Side::External, Side::Internal] {
            if let Err(e) = self.drain(side) {
                warn!("reading a port before a sync datagram: {e}");
            }
        }
        let t = now();
        self.node.handle_sync(t, id, datagram, &mut self.rng);
        self.pump(t);
    }

    /// Moves the node's output onto the wires and logs its events. (The
    /// data path's packets do not come this way: see [`Self::frame_in`],
    /// which also answers an ESP packet too big for the external MTU.)
    fn pump(&mut self, t: Instant) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::External(p) => self.ext.link.send_ip(t, &p),
                Output::Internal(p) => self.int.link.send_ip(t, &p),
                Output::Sync { to, datagram } => {
                    if let Some(&(_, addr)) = self.cluster.peers.iter().find(|(id, _)| *id == to)
                        && let Err(e) = self.sync.try_send_to(&datagram, addr)
                    {
                        debug!(node = to.0, "sending sync: {e}");
                    }
                }
                // To every node, on the internal port, behind what this node
                // read from it (written with the link's frames below).
                Output::Mark(mark) => self.int.link.send_mark(&mark),
            }
        }
        while let Some(ev) = self.node.poll_event() {
            match ev {
                NodeEvent::Took(s) => info!("took segments {:?}", seg_list(s)),
                NodeEvent::Dropped(s) => info!("dropped segments {:?}", seg_list(s)),
                NodeEvent::PeerUp(n) => info!(node = n.0, "peer up"),
                NodeEvent::PeerDown(n) => warn!(node = n.0, "peer down"),
                NodeEvent::Synced => info!("synced: eligible to serve"),
                NodeEvent::Unsynced => warn!("lost quorum: serving nothing until resynced"),
                NodeEvent::IkeSaUp { sa, virtual_ips } => {
                    self.seen.insert(sa, t);
                    info!(sa = format_args!("{:x}", sa.0), ?virtual_ips, "IKE SA established")
                }
                other => debug!(?other, "node event"),
            }
        }
        self.ext.flush();
        self.int.flush();
        self.retrim(t);
    }

    /// Attaches a new filter to the external port if the owned segments
    /// changed since the last (the kernel swaps filters at once). A port
    /// that takes none gets none again, and keeps every frame whole.
    fn retrim(&mut self, t: Instant) {
        self.retrim_hosts(t);
        let Some(f) = &mut self.trim else { return };
        let owned = self.node.owned();
        if f.attached == Some(owned) {
            return;
        }
        let program = trim::program(&f.plan, owned);
        match self.ext.io.attach_filter(&trim::sock_filters(&program)) {
            Ok(()) => {
                debug!(owned = ?seg_list(owned), "external port filter attached");
                f.attached = Some(owned);
            }
            Err(e) => {
                warn!("the external port takes no filter, every frame stays whole: {e}");
                self.trim = None;
            }
        }
    }

    /// Attaches a new filter to the internal port if the owned segments
    /// changed since the last, or the CHILD_SAs did and the last is at
    /// least [`HOST_TRIM_GAP`] old (a burst of new SAs rebuilds it once).
    /// A filter a little behind only keeps more frames whole than it
    /// might.
    fn retrim_hosts(&mut self, t: Instant) {
        let Some(h) = &mut self.host_trim else { return };
        let (owned, generation) = (self.node.owned(), self.node.sa_generation());
        let due = match h.attached {
            None => true,
            Some((o, g, at)) => o != owned || (g != generation && t >= at + HOST_TRIM_GAP),
        };
        if !due {
            return;
        }
        let hosts = self.node.foreign_hosts();
        let program = trim::hosts_program(self.cluster.internal.mac, h.longest, &hosts);
        match self.int.io.attach_filter(&trim::sock_filters(&program)) {
            Ok(()) => {
                debug!(hosts = hosts.len(), "internal port filter attached");
                h.attached = Some((owned, generation, t));
            }
            Err(e) => {
                warn!("the internal port takes no filter, every frame stays whole: {e}");
                self.host_trim = None;
            }
        }
    }

    /// Answers a control request.
    fn answer(&mut self, request: Request) -> Reply {
        let t = now();
        match request {
            Request::Status => Reply::Status(self.status(t)),
            Request::Segments { action, segments } => {
                let mut set = SegmentSet::EMPTY;
                for n in &segments {
                    match self.cluster.count.segment(*n) {
                        Ok(s) => {
                            set.insert(s);
                        }
                        Err(e) => return Reply::Error { message: format!("segment {n}: {e}") },
                    }
                }
                match action {
                    SegmentAction::Drop => self.node.drop_segments(t, set),
                    SegmentAction::Take => {
                        if let Err(n) = self.node.take_segments(t, set) {
                            return Reply::Error {
                                message: format!("node {} serves one of these segments", n.0),
                            };
                        }
                    }
                    SegmentAction::Resync => self.node.resync_segments(t, set),
                }
                info!(?action, ?segments, "operator request");
                Reply::Done {
                    message: format!(
                        "{action:?} {segments:?}: now serving {:?}",
                        seg_list(self.node.owned())
                    ),
                }
            }
            Request::Sas => Reply::Sas { ike_sas: self.sa_views(t) },
            Request::Terminate { ike } => self.terminate(t, &ike),
            Request::Reload => match self.reload(t) {
                Ok(message) => Reply::Done { message },
                Err(message) => Reply::Error { message },
            },
            Request::Initiate { child } if child == self.plan.child => match self.initiate(t) {
                Ok((sa, remote)) => {
                    Reply::Done { message: format!("initiating {child} to {remote} (IKE SA {:x})", sa.0) }
                }
                Err(message) => Reply::Error { message },
            },
            Request::Initiate { child } => Reply::Error { message: format!("no child named {child}") },
        }
    }

    /// Starts the connection's IKE SA to its remote address from the VIP,
    /// if this node serves the peer's segment.
    fn initiate(&mut self, t: Instant) -> Result<(IkeSaId, SocketAddr), String> {
        let Some(peer) = self.plan.remote else {
            return Err(format!("{}: no remote address to initiate to", self.plan.child));
        };
        let remote = SocketAddr::new(peer, self.plan.ports.0);
        match self.node.initiate(t, &mut self.rng, remote) {
            Ok(sa) => {
                self.keep_up.attempt = Some((sa, t));
                self.keep_up.held_down = false;
                info!(%remote, sa = format_args!("{:x}", sa.0), "initiating");
                Ok((sa, remote))
            }
            Err(e @ tandem_cluster::Error::NotServedHere(_)) => {
                Err(format!("{e}: initiate on the node that serves it (tandem status shows which)"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// `start_action = "start"` on a cluster: the node serving the peer's
    /// segment brings the connection up whenever no node holds an IKE SA
    /// with the peer (at start, and again after the peer deleted it or an
    /// attempt failed), at most every [`KEEP_UP_RETRY`]. A node taking
    /// the segment over finds the mirrored SA and starts none. Not after
    /// an operator's `tandem terminate` here (see [`KeepUp::held_down`]).
    fn keep_up(&mut self, t: Instant) {
        let Some(peer) = self.plan.remote.filter(|_| self.plan.initiate && !self.keep_up.held_down) else {
            return;
        };
        if self.keep_up.next_check.is_some_and(|n| t < n) {
            return;
        }
        self.keep_up.next_check = Some(t + KEEP_UP_EVERY);
        if !self.node.is_synced() || !self.node.owned().contains(segment_of(peer, self.cluster.count)) {
            return;
        }
        if let Some((sa, at)) = self.keep_up.attempt
            && (self.node.holds_ike_sa(sa) || t < at + KEEP_UP_RETRY)
        {
            return;
        }
        if self.node.has_ike_sa_with(peer) {
            return;
        }
        if let Err(e) = self.initiate(t) {
            warn!("bringing the connection up: {e}");
        }
    }

    /// `tandem reload` (or SIGHUP): re-reads the configuration file. The
    /// connection's IKE and CHILD_SA settings take effect at once; the IKE
    /// SAs this node serves whose CHILD_SAs fall outside the new selectors
    /// are deleted. Anything of the cluster itself (nodes, segments,
    /// secret, ports, VIPs, timers), the pool or the control socket needs
    /// a restart: refused, nothing changed.
    fn reload(&mut self, t: Instant) -> Result<String, String> {
        let cfg = crate::config::load(&self.plan.config_path).map_err(|e| e.to_string())?;
        let mut plan = Plan::from_config(&cfg).map_err(|e| e.to_string())?;
        let cluster = plan.cluster.take().ok_or("the [cluster] section is gone: restart tandem")?;
        let same_cluster = format!("{cluster:?}") == format!("{:?}", self.cluster)
            && ct_eq(cluster.node.secret.expose(), self.cluster.node.secret.expose());
        let p = &self.plan;
        if !same_cluster
            || (plan.local, plan.pool, &plan.control_socket) != (p.local, p.pool, &p.control_socket)
        {
            return Err("the [cluster] section, the connection's address, the pool or the control socket \
                        changed: restart the node (the other nodes serve its segments meanwhile)"
                .into());
        }
        let deleted = self.node.reconfigure(t, &mut self.rng, plan.ike.clone());
        self.pump(t);
        let Plan { connection, child, .. } = plan;
        (self.plan.connection, self.plan.child) = (connection, child);
        self.keep_up.held_down = false;
        info!(deleted = deleted.len(), "configuration reloaded");
        Ok(format!(
            "reloaded {}; {} IKE SA(s) served here no longer match and are deleted",
            cfg.path.display(),
            deleted.len()
        ))
    }

    /// `tandem terminate`: the IKE SA with that id (hex), or every one of
    /// the connection this node serves; an SA another node serves is
    /// terminated there. The connection this node keeps up
    /// (`start_action = "start"`) stays down until `tandem initiate`.
    fn terminate(&mut self, t: Instant, ike: &str) -> Reply {
        let sas = self.node.sas();
        let ids: Vec<IkeSaId> = if ike == self.plan.connection {
            sas.iter().filter(|r| r.served).map(|r| r.id).collect()
        } else {
            u64::from_str_radix(ike, 16)
                .ok()
                .filter(|id| sas.iter().any(|r| r.id.0 == *id))
                .map(IkeSaId)
                .into_iter()
                .collect()
        };
        if ids.is_empty() {
            return Reply::Error { message: format!("no IKE SA {ike} served here") };
        }
        // The connection this node keeps up stays down.
        let peer = self.plan.remote.filter(|_| self.plan.initiate);
        let held = sas.iter().any(|r| ids.contains(&r.id) && Some(r.remote.ip()) == peer);
        for sa in &ids {
            if let Err(e) = self.node.terminate(t, &mut self.rng, *sa) {
                return Reply::Error { message: format!("{:x}: {e}", sa.0) };
            }
        }
        self.pump(t);
        self.keep_up.held_down |= held;
        let message = format!("deleting {} IKE SA(s)", ids.len());
        Reply::Done {
            message: if held {
                format!(
                    "{message}; {} stays down until `tandem initiate {}` or a reload",
                    self.plan.connection, self.plan.child
                )
            } else {
                message
            },
        }
    }

    /// `tandem sas`: every SA this node holds, served here or mirrored,
    /// with this node's counters.
    fn sa_views(&mut self, t: Instant) -> Vec<IkeSaView> {
        let reports = self.node.sas();
        self.seen.retain(|id, _| reports.iter().any(|r| r.id == *id));
        reports
            .into_iter()
            .map(|r| {
                let since = *self.seen.entry(r.id).or_insert(t);
                IkeSaView {
                    id: format!("{:x}", r.id.0),
                    connection: self.plan.connection.clone(),
                    local: r.local.to_string(),
                    remote: r.remote.to_string(),
                    spi_i: format!("{:016x}", r.spi_i),
                    spi_r: format!("{:016x}", r.spi_r),
                    nat: r.nat,
                    virtual_ips: r.virtual_ips.iter().map(ToString::to_string).collect(),
                    established_secs: t.duration_since(since).as_secs(),
                    segment: r.segment.map(|s| u32::from(s.get())),
                    served: Some(r.served),
                    children: r
                        .children
                        .iter()
                        .map(|c| {
                            let drops = |d: &tandem_esp::DropCounters| d.total();
                            let (replay, icv) =
                                (c.inbound.drops.replay + c.inbound.drops.too_old, c.inbound.drops.bad_icv);
                            ChildSaView {
                                name: self.plan.child.clone(),
                                spi_in: format!("{:08x}", c.inbound_spi),
                                spi_out: format!("{:08x}", c.outbound_spi),
                                algorithms: c.algorithms.clone(),
                                local_ts: c.local_ts.iter().map(ts_text).collect(),
                                remote_ts: c.remote_ts.iter().map(ts_text).collect(),
                                bytes_in: c.inbound.bytes,
                                packets_in: c.inbound.packets,
                                bytes_out: c.outbound.bytes,
                                packets_out: c.outbound.packets,
                                replay_drops: replay,
                                icv_drops: icv,
                                other_drops: (drops(&c.inbound.drops) + drops(&c.outbound.drops))
                                    .saturating_sub(replay + icv),
                            }
                        })
                        .collect(),
                }
            })
            .collect()
    }

    fn status(&self, t: Instant) -> Status {
        let st = self.node.stats();
        let (ike_sas, child_sas) = self.node.sa_counts();
        let (_, _, replay, icv) = self.node.esp_totals();
        let (ext, int) = (self.ext.link.stats(), self.int.link.stats());
        let counters = [
            ("ike_handled", st.ike_handled),
            ("ike_skipped", st.ike_skipped),
            ("decrypted", st.decrypted),
            ("verified", st.verified),
            ("skipped", st.skipped),
            ("encrypted", st.encrypted),
            ("counted", st.counted),
            ("dropped", st.dropped),
            ("replay_drops", replay),
            ("icv_drops", icv),
            ("sync_sent", st.sync_sent),
            ("sync_applied", st.sync_applied),
            ("sync_rejected", st.sync_rejected),
            ("ext_frames_ignored", ext.ignored),
            ("int_frames_ignored", int.ignored),
            ("unresolved_drops", ext.unresolved_drops + int.unresolved_drops),
            ("frames_dropped", self.frames.dropped),
            ("ring_drops", self.ext.io.ring_drops() + self.int.io.ring_drops()),
            ("send_drops", self.ext.send_drops + self.int.send_drops),
            ("ext_super_packets", self.frames.super_packets[Side::External as usize]),
            ("int_super_packets", self.frames.super_packets[Side::Internal as usize]),
            ("passed_over", self.frames.passed_over),
            ("trimmed", self.frames.trimmed),
            ("int_counted_uncut", self.frames.counted_uncut),
            ("int_trimmed", self.frames.int_trimmed),
            ("handover_marks", self.frames.marks),
            ("ext_super_packets_sent", self.frames.udp_super_packets),
        ];
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_secs: t.duration_since(self.started).as_secs(),
            config: self.plan.config_path.display().to_string(),
            connection: self.plan.connection.clone(),
            tun: format!("{} (external) / {} (internal)", self.ext.io.name(), self.int.io.name()),
            ike_sas,
            child_sas,
            no_policy_drops: 0,
            unknown_spi_drops: 0,
            cluster: Some(ClusterStatus {
                node: self.cluster.node.node.0,
                segment_count: u32::from(self.cluster.count.get()),
                synced: self.node.is_synced(),
                owned: seg_list(self.node.owned()),
                members: self
                    .node
                    .members()
                    .into_iter()
                    .map(|m| MemberView {
                        id: m.id.0,
                        live: m.live,
                        synced: m.synced,
                        owned: seg_list(m.owns),
                        heard_ms_ago: m.last_heard.map(|h| {
                            u64::try_from(t.saturating_duration_since(h).as_millis()).unwrap_or(u64::MAX)
                        }),
                        unacked: m.unacked,
                    })
                    .collect(),
                sync_backlog: self.node.sync_backlog(),
                counters: counters.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            }),
        }
    }
}

/// A segment set as numbers.
/// Whether `frame` goes to the cluster MAC and VIP of `port` and carries
/// ESP (raw or in UDP, its first packet's SPI not zero).
fn esp_to(frame: &[u8], port: &PortPlan) -> bool {
    frame.get(..6) == Some(&port.mac[..])
        && frame.get(14..).is_some_and(|ip| matches!(classify(ip, port.vip), Ok(Outer::Esp { .. })))
}

fn seg_list(s: SegmentSet) -> Vec<u32> {
    s.iter().map(|s| u32::from(s.get())).collect()
}
