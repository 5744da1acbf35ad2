//! The event loop: sockets, the TUN device, timers and signals in, the IKE
//! engine and the data path in between, datagrams, packets and routes out.

use super::GatewayError;
use super::control::{self, Call, ControlSocket};
use super::dataplane::{Dataplane, prefixes};
use super::netlink::Netlink;
use super::tun::Tun;
use super::udp::{self, NattSocket};
use crate::control::{ChildSaView, IkeSaView, Reply, Request, Status};
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use rand_core::UnwrapErr;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tandem_cluster::child;
use tandem_ike::IkeSaId;
use tandem_ike::pool::RangePool;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{Endpoint, Event, IkeConfig};
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

mod datapath;
use datapath::Batches;

/// How long a shutdown waits for peers to acknowledge the Deletes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How often a node behind a NAT sends NAT-keepalives (RFC 3948 section 4).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// The largest packet read from the TUN device or a socket.
const MAX_PACKET: usize = 65_535;

/// What `tandem run` runs: one connection, resolved from the config file.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The IKE engine's configuration.
    pub(crate) ike: IkeConfig,
    /// The address to listen on (and to initiate from).
    pub(crate) local: IpAddr,
    /// The peer to initiate to when `initiate` is set.
    pub(crate) remote: Option<IpAddr>,
    /// Bring the connection up at start (`start_action = "start"`).
    pub(crate) initiate: bool,
    /// The TUN device's name.
    pub(crate) tun_name: String,
    /// The TUN device's MTU.
    pub(crate) mtu: u32,
    /// Virtual addresses for road warriors: the pool's first and last.
    pub(crate) pool: Option<(IpAddr, IpAddr)>,
    /// The firewall mark of Tandem's own sockets.
    pub(crate) fwmark: u32,
    /// The routing table for the tunnels' routes.
    pub(crate) table: u32,
    /// UDP ports for IKE and for NAT-T (500 and 4500).
    pub(crate) ports: (u16, u16),
    /// The configuration file, the connection's and its child's names.
    pub(crate) config_path: PathBuf,
    /// See `config_path`.
    pub(crate) connection: String,
    /// See `config_path`.
    pub(crate) child: String,
    /// The control socket's path.
    pub(crate) control_socket: PathBuf,
    /// Run as a node of this cluster instead (AF_PACKET ports, no TUN).
    pub(crate) cluster: Option<super::cluster::ClusterPlan>,
}

/// What the runtime knows of an established IKE SA, for `tandem sas`.
struct SaInfo {
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    spi_r: u64,
    nat: bool,
    /// We are behind a NAT (or pretend to be): we keep the mapping alive.
    behind_nat: bool,
    virtual_ips: Vec<IpAddr>,
    since: Instant,
}

/// Runs the gateway until SIGTERM or SIGINT.
pub(crate) fn run(mut plan: Plan) -> Result<(), GatewayError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GatewayError::io("starting the runtime", e))?;
    if let Some(cluster) = plan.cluster.take() {
        return rt.block_on(super::cluster::serve(plan, cluster));
    }
    rt.block_on(async move {
        let mut gw = Gateway::start(plan).await?;
        let result = gw.serve().await;
        if let Err(e) = gw.net.cleanup().await {
            warn!("cleanup: {e}");
        }
        result
    })
}

/// The runtime's clock (the cores take time as an input).
#[allow(clippy::disallowed_methods)] // the runtime owns the clock
pub(super) fn now() -> Instant {
    Instant::now()
}

struct Gateway {
    plan: Plan,
    ep: Endpoint,
    dp: Dataplane,
    net: Netlink,
    tun: Tun,
    ike: UdpSocket,
    natt: NattSocket,
    rng: UnwrapErr<getrandom::SysRng>,
    sas: HashMap<IkeSaId, SaInfo>,
    started: Instant,
    calls: mpsc::Receiver<Call>,
    _control: ControlSocket,
}

impl Gateway {
    async fn start(mut plan: Plan) -> Result<Self, GatewayError> {
        let mut rng = UnwrapErr(getrandom::SysRng);
        let ike = udp::bind(SocketAddr::new(plan.local, plan.ports.0), plan.fwmark)?;
        let natt = NattSocket::bind(SocketAddr::new(plan.local, plan.ports.1), plan.fwmark)?;
        let tun = Tun::open(&plan.tun_name)?;
        let net = Netlink::new(tun.index(), plan.mtu, plan.table, plan.fwmark).await?;
        info!(tun = tun.name(), mtu = plan.mtu, offloads = tun.offloads(), "data path up");
        let mut ep = Endpoint::new(plan.ike.clone());
        #[allow(clippy::disallowed_methods)]
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        ep.set_wall_clock(now(), unix);
        if let Some(pool) = plan.pool.take().and_then(|(first, last)| RangePool::new(first, last)) {
            ep.set_address_pool(Box::new(pool));
        }
        let dp = Dataplane::new(rand_core::Rng::next_u64(&mut rng));
        let (control, calls) = control::listen(&plan.control_socket)?;
        let mut gw = Self {
            plan,
            ep,
            dp,
            net,
            tun,
            ike,
            natt,
            rng,
            sas: HashMap::new(),
            started: now(),
            calls,
            _control: control,
        };
        if gw.plan.initiate {
            let remote =
                gw.plan.remote.ok_or(GatewayError::Unsupported("initiating without a remote address"))?;
            let (local, remote) =
                (SocketAddr::new(gw.plan.local, gw.plan.ports.0), SocketAddr::new(remote, gw.plan.ports.0));
            gw.ep.initiate(now(), &mut gw.rng, local, remote)?;
            info!(%remote, "initiating");
        }
        Ok(gw)
    }

    async fn serve(&mut self) -> Result<(), GatewayError> {
        let mut term = signal(SignalKind::terminate()).map_err(|e| GatewayError::io("SIGTERM handler", e))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| GatewayError::io("SIGINT handler", e))?;
        let mut hup = signal(SignalKind::hangup()).map_err(|e| GatewayError::io("SIGHUP handler", e))?;
        let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ike_buf = vec![0u8; MAX_PACKET];
        let mut batches = Batches::new();
        let mut shutdown: Option<Instant> = None;
        let (ike_local, natt_local) = (
            SocketAddr::new(self.plan.local, self.plan.ports.0),
            SocketAddr::new(self.plan.local, self.plan.ports.1),
        );
        loop {
            let far = now() + Duration::from_secs(3600);
            let deadline = [self.ep.poll_timeout(), shutdown].into_iter().flatten().min().unwrap_or(far);
            tokio::select! {
                r = self.ike.recv_from(&mut ike_buf) => {
                    let (n, from) = r.map_err(|e| GatewayError::io("receiving on UDP 500", e))?;
                    self.ike_datagram(ike_local, from, &ike_buf[..n]);
                }
                r = self.natt.readable() => {
                    r.map_err(|e| GatewayError::io("receiving on UDP 4500", e))?;
                    self.drain_network(natt_local, &mut batches).await?;
                }
                r = self.tun.readable() => {
                    r.map_err(|e| GatewayError::io("reading the TUN device", e))?;
                    self.drain_tun(&mut batches).await?;
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.ep.handle_timeout(now(), &mut self.rng);
                }
                Some((request, reply)) = self.calls.recv() => {
                    let _ = reply.send(self.answer(request));
                }
                _ = hup.recv() => match self.reload() {
                    Ok(what) => info!("SIGHUP: {what}"),
                    Err(e) => warn!("SIGHUP: reload refused: {e}"),
                },
                _ = keepalive.tick() => self.keepalives().await,
                _ = term.recv() => shutdown = shutdown.or_else(|| self.begin_shutdown()),
                _ = int.recv() => shutdown = shutdown.or_else(|| self.begin_shutdown()),
            }
            self.flush().await;
            if let Some(until) = shutdown {
                if self.ep.sa_ids().next().is_none() || now() >= until {
                    self.log_counters();
                    info!("stopped");
                    return Ok(());
                }
            }
        }
    }

    /// Answers a control request.
    fn answer(&mut self, request: Request) -> Reply {
        match request {
            Request::Status => {
                let (no_policy, unknown_spi) = self.dp.global_drops();
                Reply::Status(Status {
                    version: env!("CARGO_PKG_VERSION").into(),
                    uptime_secs: now().duration_since(self.started).as_secs(),
                    config: self.plan.config_path.display().to_string(),
                    connection: self.plan.connection.clone(),
                    tun: self.tun.name().into(),
                    ike_sas: self.sas.len(),
                    child_sas: self.dp.status().len(),
                    no_policy_drops: no_policy,
                    unknown_spi_drops: unknown_spi,
                    cluster: None,
                })
            }
            Request::Sas => Reply::Sas { ike_sas: self.sa_views() },
            Request::Initiate { child } if child == self.plan.child => {
                let Some(remote) = self.plan.remote else {
                    return Reply::Error { message: format!("{}: no remote address to initiate to", child) };
                };
                let local = SocketAddr::new(self.plan.local, self.plan.ports.0);
                match self.ep.initiate(
                    now(),
                    &mut self.rng,
                    local,
                    SocketAddr::new(remote, self.plan.ports.0),
                ) {
                    Ok(sa) => {
                        Reply::Done { message: format!("initiating {child} to {remote} (IKE SA {:x})", sa.0) }
                    }
                    Err(e) => Reply::Error { message: e.to_string() },
                }
            }
            Request::Initiate { child } => Reply::Error { message: format!("no child named {child}") },
            Request::Terminate { ike } => {
                let ids: Vec<IkeSaId> = if ike == self.plan.connection {
                    self.sas.keys().copied().collect()
                } else {
                    u64::from_str_radix(&ike, 16)
                        .ok()
                        .map(IkeSaId)
                        .filter(|id| self.sas.contains_key(id))
                        .into_iter()
                        .collect()
                };
                if ids.is_empty() {
                    return Reply::Error { message: format!("no IKE SA {ike}") };
                }
                for sa in &ids {
                    if let Err(e) = self.ep.delete(now(), &mut self.rng, *sa) {
                        return Reply::Error { message: format!("{:x}: {e}", sa.0) };
                    }
                }
                Reply::Done { message: format!("deleting {} IKE SA(s)", ids.len()) }
            }
            Request::Reload => match self.reload() {
                Ok(message) => Reply::Done { message },
                Err(message) => Reply::Error { message },
            },
            Request::Segments { .. } => {
                Reply::Error { message: "this gateway is no cluster node (no [cluster] section)".into() }
            }
        }
    }

    /// Re-reads the configuration file: the IKE engine takes the new
    /// settings, established SAs whose CHILD_SAs still fall within the new
    /// selectors stay, the others are deleted. Addresses, ports, the TUN
    /// device and the control socket need a restart; the pool keeps its
    /// leases (a changed pool range applies after a restart).
    fn reload(&mut self) -> Result<String, String> {
        let cfg = crate::config::load(&self.plan.config_path).map_err(|e| e.to_string())?;
        let plan = Plan::from_config(&cfg).map_err(|e| e.to_string())?;
        let p = &self.plan;
        if (plan.local, plan.ports, &plan.tun_name, plan.mtu, &plan.control_socket)
            != (p.local, p.ports, &p.tun_name, p.mtu, &p.control_socket)
        {
            return Err(
                "addresses, ports, the TUN device or the control socket changed: restart tandem".into()
            );
        }
        let within = |ours: &[TrafficSelector], got: &[TrafficSelector]| {
            got.iter().all(|g| ours.iter().any(|o| tandem_ike::narrow::covers(o, g)))
        };
        let (local_ts, remote_ts) = (&plan.ike.child.local_ts, &plan.ike.child.remote_ts);
        let mut stale: Vec<IkeSaId> = self
            .dp
            .status()
            .iter()
            .filter(|c| !within(local_ts, &c.child.local_ts) || !within(remote_ts, &c.child.remote_ts))
            .map(|c| c.child.ike_sa)
            .collect();
        stale.sort();
        stale.dedup();
        self.ep.set_config(plan.ike.clone());
        for sa in &stale {
            if let Err(e) = self.ep.delete(now(), &mut self.rng, *sa) {
                warn!(?sa, "reload: not deleted: {e}");
            }
        }
        let Plan { connection, child, remote, initiate, .. } = plan;
        (self.plan.connection, self.plan.child, self.plan.remote, self.plan.initiate) =
            (connection, child, remote, initiate);
        Ok(format!(
            "reloaded {}; {} IKE SA(s) no longer match and are deleted",
            cfg.path.display(),
            stale.len()
        ))
    }

    /// Sends a NAT-keepalive (one 0xff octet) to each peer of an IKE SA
    /// for which we are behind a NAT (or force encapsulation).
    async fn keepalives(&mut self) {
        let peers: Vec<SocketAddr> = self.sas.values().filter(|s| s.behind_nat).map(|s| s.remote).collect();
        for peer in peers {
            if let Err(e) = self.natt.send_to(&[0xff], peer).await {
                debug!(%peer, "NAT-keepalive: {e}");
            }
        }
    }

    /// Every IKE SA with its CHILD_SAs, for `tandem sas`.
    fn sa_views(&self) -> Vec<IkeSaView> {
        let children = self.dp.status();
        let mut views: Vec<IkeSaView> = self
            .sas
            .iter()
            .map(|(id, info)| IkeSaView {
                id: format!("{:x}", id.0),
                connection: self.plan.connection.clone(),
                local: info.local.to_string(),
                remote: info.remote.to_string(),
                spi_i: format!("{:016x}", info.spi_i),
                spi_r: format!("{:016x}", info.spi_r),
                nat: info.nat,
                virtual_ips: info.virtual_ips.iter().map(ToString::to_string).collect(),
                established_secs: now().duration_since(info.since).as_secs(),
                segment: None,
                served: None,
                children: children
                    .iter()
                    .filter(|c| c.child.ike_sa == *id)
                    .map(|c| {
                        let d = (&c.inbound.drops, &c.outbound.drops);
                        let all = |x: &tandem_esp::DropCounters| {
                            x.bad_icv
                                + x.replay
                                + x.too_old
                                + x.short_packet
                                + x.bad_padding
                                + x.lifetime_expired
                                + x.sequence_exhausted
                                + x.dummy
                                + x.malformed
                                + x.policy
                                + x.no_room
                        };
                        let (replay, icv) = (d.0.replay + d.0.too_old, d.0.bad_icv);
                        ChildSaView {
                            name: self.plan.child.clone(),
                            spi_in: format!("{:08x}", c.child.inbound_spi),
                            spi_out: format!("{:08x}", c.child.outbound_spi),
                            algorithms: child::suite(&c.child).map(|s| s.name()).unwrap_or_default(),
                            local_ts: c.child.local_ts.iter().map(ts_text).collect(),
                            remote_ts: c.child.remote_ts.iter().map(ts_text).collect(),
                            bytes_in: c.inbound.bytes,
                            packets_in: c.inbound.packets,
                            bytes_out: c.outbound.bytes,
                            packets_out: c.outbound.packets,
                            replay_drops: replay,
                            icv_drops: icv,
                            other_drops: all(d.0) + all(d.1) - replay - icv,
                        }
                    })
                    .collect(),
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        views
    }

    /// Logs what the data path carried and dropped.
    fn log_counters(&self) {
        for row in self.dp.status() {
            info!(
                inbound = format_args!("{:#010x}", row.child.inbound_spi),
                packets_in = row.inbound.packets,
                bytes_in = row.inbound.bytes,
                packets_out = row.outbound.packets,
                bytes_out = row.outbound.bytes,
                drops_in = ?row.inbound.drops,
                "CHILD_SA counters"
            );
        }
        let (no_policy, unknown_spi) = self.dp.global_drops();
        info!(no_policy, unknown_spi, "data path drops");
    }

    /// Deletes every IKE SA (the peers are told); returns when to give up
    /// waiting for their answers.
    fn begin_shutdown(&mut self) -> Option<Instant> {
        info!("shutting down: deleting SAs");
        let ids: Vec<_> = self.ep.sa_ids().collect();
        for sa in ids {
            if let Err(e) = self.ep.delete(now(), &mut self.rng, sa) {
                debug!(?sa, "not deleted: {e}");
            }
        }
        Some(now() + SHUTDOWN_GRACE)
    }

    fn ike_datagram(&mut self, local: SocketAddr, from: SocketAddr, data: &[u8]) {
        if let Err(e) = self.ep.handle_datagram(now(), &mut self.rng, local, from, data) {
            debug!(%from, "IKE message dropped: {e}");
        }
    }

    /// Sends what the IKE engine queued and acts on its events.
    async fn flush(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            let r = if t.local.port() == self.plan.ports.1 {
                let mut framed = Vec::with_capacity(4 + t.data.len());
                framed.extend_from_slice(&[0; 4]);
                framed.extend_from_slice(&t.data);
                self.natt.send_to(&framed, t.remote).await
            } else {
                self.ike.send_to(&t.data, t.remote).await.map(|_| ())
            };
            if let Err(e) = r {
                warn!(remote = %t.remote, "sending IKE: {e}");
            }
        }
        while let Some(e) = self.ep.poll_event() {
            self.event(e).await;
        }
    }

    async fn event(&mut self, e: Event) {
        match e {
            Event::IkeSaEstablished { sa, spi_i, spi_r, remote, nat, virtual_ips, .. } => {
                info!(?sa, %remote, ?nat, ?virtual_ips, "IKE SA established");
                if self.plan.ike.request_virtual_ip {
                    for ip in &virtual_ips {
                        if let Err(e) = self.net.add_virtual_ip(*ip).await {
                            warn!("{e}");
                        }
                    }
                }
                let local = SocketAddr::new(
                    self.plan.local,
                    if nat.detected() { self.plan.ports.1 } else { self.plan.ports.0 },
                );
                let info = SaInfo {
                    local,
                    remote,
                    spi_i,
                    spi_r,
                    nat: nat.detected(),
                    behind_nat: nat.local_behind_nat,
                    virtual_ips,
                    since: now(),
                };
                self.sas.insert(sa, info);
            }
            Event::ChildSaEstablished(c) => self.install(c, "CHILD_SA established").await,
            Event::ChildSaRekeyed { new, old_inbound_spi, .. } => {
                info!(old = format_args!("{old_inbound_spi:#010x}"), "CHILD_SA rekeyed");
                self.install(new, "CHILD_SA installed after rekey").await;
            }
            Event::ChildSaDeleted { sa, inbound_spi, .. } => {
                if let Some(c) = self.dp.remove(inbound_spi) {
                    if let Err(e) = self.net.remove_routes(&c.remote_ts).await {
                        warn!("{e}");
                    }
                }
                info!(?sa, spi = format_args!("{inbound_spi:#010x}"), "CHILD_SA deleted");
            }
            Event::IkeSaRekeyed { old, new } => {
                self.dp.move_children(old, new);
                if let Some(mut info) = self.sas.remove(&old) {
                    info.since = now();
                    // The new SA's SPIs are ours (`new`) and the peer's; the
                    // engine reports only ours.
                    if info.spi_i == old.0 {
                        info.spi_i = new.0;
                    } else {
                        info.spi_r = new.0;
                    }
                    self.sas.insert(new, info);
                }
                info!(?old, ?new, "IKE SA rekeyed");
            }
            Event::IkeSaDeleted { sa, error } => {
                self.sas.remove(&sa);
                for spi in self.dp.children_of(sa) {
                    if let Some(c) = self.dp.remove(spi) {
                        let _ = self.net.remove_routes(&c.remote_ts).await;
                    }
                }
                match error {
                    None => info!(?sa, "IKE SA deleted"),
                    Some(e) => warn!(?sa, "IKE SA ended: {e}"),
                }
            }
            Event::IkeSaFailed { sa, error } => warn!(?sa, "IKE SA failed: {error}"),
            Event::ChildSaFailed { sa, error } => warn!(?sa, "CHILD_SA failed: {error}"),
        }
    }

    async fn install(&mut self, c: tandem_ike::ChildSa, what: &str) {
        if let Err(e) = self.dp.install(&c, &mut self.rng) {
            warn!(spi = format_args!("{:#010x}", c.inbound_spi), "CHILD_SA not installed: {e}");
            return;
        }
        if let Err(e) = self.net.add_routes(&c.remote_ts).await {
            warn!("{e}");
        }
        info!(
            inbound = format_args!("{:#010x}", c.inbound_spi),
            outbound = format_args!("{:#010x}", c.outbound_spi),
            local_ts = ?c.local_ts,
            remote_ts = ?c.remote_ts,
            "{what}"
        );
    }
}

/// A traffic selector as swanctl prints it: `10.1.0.0/16`, a range when
/// it is no single prefix, and `[proto/ports]` when not all.
pub(super) fn ts_text(ts: &TrafficSelector) -> String {
    let addrs = match prefixes(ts.start_addr, ts.end_addr).as_slice() {
        [(addr, len)] => format!("{addr}/{len}"),
        _ => format!("{}-{}", ts.start_addr, ts.end_addr),
    };
    let all_ports = ts.start_port == 0 && ts.end_port == u16::MAX;
    match (ts.ip_protocol, all_ports) {
        (0, true) => addrs,
        (p, true) => format!("{addrs}[{p}]"),
        (p, false) if ts.start_port == ts.end_port => format!("{addrs}[{p}/{}]", ts.start_port),
        (p, false) => format!("{addrs}[{p}/{}-{}]", ts.start_port, ts.end_port),
    }
}
