//! A Tandem cluster on real links: two `tandem run` nodes in their own
//! namespaces capture the frames sent to the cluster MACs from AF_PACKET
//! sockets on an external and an internal bridge (multicast snooping off),
//! and a real strongSwan road warrior (userspace ESP, kernel-libipsec)
//! connects to the external VIP. Traffic goes client <-> server through the
//! internal VIP. Then the node serving the client is killed with SIGKILL
//! under a TCP transfer and a 10 ms ping, and revived. Twenty Tandem
//! initiators from twenty addresses spread over the nodes by segment.
//! Three nodes survive a kill, a revival, a sync partition of the serving
//! node (which must fence itself) and its healing. A Tandem initiator with
//! the offloads on moves 32 MiB each way (UDP GSO batches, TCP
//! super-packets); IPv6 VIPs and TAP ports each carry a tunnel through a
//! failover. Last, the cluster itself brings a site-to-site tunnel up to a
//! Tandem gateway and keeps it through a failover.
//!
//! Needs root, `ip`, `ethtool`, iptables or nft, strongSwan and iperf3
//! (`.ci/install-interop.sh`); skips otherwise, or fails when
//! `TANDEM_NETNS_REQUIRED=1`.

mod netns;

use netns::iperf::iperf_server;
use netns::json::Json;
use netns::strongswan::{self, Auth, ChildConf, ConnConf, Secret, Strongswan, SwanctlConf};
use netns::tandem::Tandem;
use netns::{Cluster, Netns, Process, addr};
use std::time::{Duration, Instant};

const PSK: &str = "tandem-cluster-psk";
const T: Duration = Duration::from_secs(20);
const SEGMENTS: u32 = 4;

fn prerequisites() -> bool {
    netns::require(&["ping", "iperf3", "ss", "kill", "sysctl", "ethtool"]) && strongswan::available()
}

/// One cluster test at a time: each measures takeover gaps against a
/// 500 ms heartbeat timeout, which two busy CPUs shared by four clusters
/// (and twenty initiators) would stretch into spurious failovers.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn step(started: Instant, what: &str) {
    eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
}

/// Node `i`'s configuration: the same connection on every node, the sync
/// channels over the internal network's own addresses.
fn node_config(i: usize, nodes: usize) -> String {
    node_config_with(i, nodes, "")
}

/// [`node_config`] with `extra` lines in its `[cluster]` section.
fn node_config_with(i: usize, nodes: usize, extra: &str) -> String {
    let members: String = (1..=nodes)
        .map(|n| format!("[[cluster.nodes]]\nid = {n}\naddress = \"{}\"\n", addr::node_int(n)))
        .collect();
    format!(
        r#"
[[connections]]
name = "rw"
local_addrs = ["{gw}"]
proposals = ["aes256gcm16-prfsha256-x25519"]
dpd_delay = "2s"

[connections.local]
auth = "psk"
id = "{gw}"

[connections.remote]
auth = "psk"

[[connections.children]]
name = "net"
local_ts = ["{int}"]
remote_ts = ["dynamic"]
esp_proposals = ["aes256gcm16"]

[[secrets.ike]]
secret = "{PSK}"

[cluster]
node_id = {i}
segment_count = {SEGMENTS}
secret = "the cluster secret of the netns test"
heartbeat_delay = "100ms"
heartbeat_timeout = "500ms"
{extra}
{members}
[cluster.external]
interface = "ext0"
vip = "{gw}/24"

[cluster.internal]
interface = "int0"
vip = "{int_vip}/24"

[log]
level = "info"
"#,
        gw = addr::GATEWAY_EXT,
        int = addr::INT_NET,
        int_vip = addr::GATEWAY_INT,
    )
}

/// Offloads off: veth hands frames over with checksums left to the
/// hardware (which a raw socket then sees unfinished) and merges TCP
/// segments into super-packets; a wire would do neither.
fn offloads_off(ns: &Netns, ifname: &str) {
    ns.exec(&["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "off"])
        .unwrap_or_else(|e| panic!("ethtool in {}: {e}", ns.name()));
}

/// The cluster namespaces with offloads off everywhere Tandem or its peers
/// send from.
fn build(test: &str, nodes: usize) -> Cluster {
    let c = Cluster::build(test, nodes).expect("cluster topology");
    offloads_off(&c.client, "eth0");
    offloads_off(&c.server, "eth0");
    for n in &c.nodes {
        offloads_off(n, "ext0");
        offloads_off(n, "int0");
    }
    c
}

fn start_node(c: &Cluster, i: usize, nodes: usize) -> Tandem {
    Tandem::start_until(c.node(i), &node_config(i, nodes), "cluster node up")
}

/// `tandem status` of a node, its cluster part.
fn cluster_status(t: &Tandem) -> Json {
    t.ctl(&["status"]).get("cluster").cloned().expect("a cluster status")
}

fn segments_of(v: &Json) -> Vec<u64> {
    v.get("owned")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_u64).collect())
        .unwrap_or_default()
}

fn counter(status: &Json, name: &str) -> u64 {
    status
        .get("counters")
        .and_then(Json::as_array)
        .and_then(|a| {
            a.iter().find_map(|kv| {
                let pair = kv.as_array()?;
                (pair.first()?.as_str()? == name).then(|| pair.get(1)?.as_u64())?
            })
        })
        .unwrap_or(0)
}

/// Waits until every node is synced and every segment has one owner.
fn wait_converged(nodes: &[&Tandem]) {
    netns::wait_for("the cluster to converge", T, || {
        let statuses: Vec<Json> = nodes.iter().map(|t| cluster_status(t)).collect();
        let mut owned: Vec<u64> = statuses.iter().flat_map(segments_of).collect();
        owned.sort_unstable();
        statuses.iter().all(|s| s.get("synced").and_then(Json::as_bool) == Some(true))
            && owned == (1..=u64::from(SEGMENTS)).collect::<Vec<_>>()
    })
    .unwrap_or_else(|e| {
        let logs: Vec<String> = nodes.iter().map(|t| t.log()).collect();
        panic!("{e}\n{}", logs.join("\n-----\n"))
    });
}

/// `tandem segment-of ADDRESS --count SEGMENTS`.
fn segment_of(address: &str) -> u64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["segment-of", address, "--count", &SEGMENTS.to_string()])
        .output()
        .expect("tandem segment-of");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a segment number")
}

/// The id of the node whose status lists the client's segment.
fn serving_node(nodes: &[&Tandem]) -> usize {
    let seg = segment_of(addr::CLIENT);
    let owner = nodes
        .iter()
        .map(|t| cluster_status(t))
        .find(|s| segments_of(s).contains(&seg))
        .expect("an owner of the client's segment");
    owner.get("node").and_then(Json::as_u64).and_then(|n| usize::try_from(n).ok()).expect("a node id")
}

fn client(c: &Cluster) -> Strongswan {
    let ss = Strongswan::start(&c.client, "client").expect("start initiator");
    let mut conn = ConnConf::new("tdm", addr::CLIENT, addr::GATEWAY_EXT, "aes256gcm16-prfsha256-x25519")
        .child(ChildConf::new("net", "dynamic", addr::INT_NET, "aes256gcm16"));
    conn.dpd_delay = Some("2s".into());
    conn.local = Auth::psk(Some(addr::CLIENT));
    conn.remote = Auth::psk(Some(addr::GATEWAY_EXT));
    ss.load(&SwanctlConf { connections: vec![conn], secrets: vec![Secret::psk(PSK)], pools: vec![] })
        .expect("load initiator");
    ss
}

/// The running nodes.
fn live(nodes: &[Option<Tandem>]) -> Vec<&Tandem> {
    nodes.iter().flatten().collect()
}

/// The longest silence between two echo replies of `ping -D` output.
fn longest_gap(ping: &str) -> Duration {
    longest_gap_until(ping, None)
}

/// Like [`longest_gap`], the silence from the last reply to `end` (Unix
/// time in seconds) included.
fn longest_gap_until(ping: &str, end: Option<f64>) -> Duration {
    let mut stamps: Vec<f64> = ping
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    stamps.extend(end);
    let gap = stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Duration::from_secs_f64(gap)
}

/// The timestamps of the log lines past the first `skip` that contain
/// `what`. Tandem's lines start with an RFC 3339 UTC time with
/// microseconds, which sorts as a string.
fn log_stamps(log: &str, skip: usize, what: &str) -> Vec<String> {
    log.lines()
        .skip(skip)
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// "2026-01-02T03:04:05.678901Z" -> seconds since midnight.
fn seconds_of_day(stamp: &str) -> f64 {
    let time = stamp.split('T').nth(1).unwrap_or_default().trim_end_matches('Z');
    time.split(':').fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(0.0))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// An ICMP counter of a namespace's stack (`/proc/net/snmp`, e.g.
/// "InEchos").
fn icmp_counter(ns: &Netns, name: &str) -> u64 {
    let snmp = ns.exec(&["cat", "/proc/net/snmp"]).expect("/proc/net/snmp");
    let mut rows = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else { panic!("no Icmp rows:\n{snmp}") };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Icmp {name}:\n{snmp}"))
}

/// Echo requests the client sent and the server received, echo replies
/// the server sent and the client received.
fn echo_counters(c: &Cluster) -> [u64; 4] {
    [
        icmp_counter(&c.client, "OutEchos"),
        icmp_counter(&c.server, "InEchos"),
        icmp_counter(&c.server, "OutEchoReps"),
        icmp_counter(&c.client, "InEchoReps"),
    ]
}

/// A 10 ms ping from the client to the server that runs until
/// [`Pinger::stop`].
struct Pinger {
    process: Process,
    echoes: [u64; 4],
}

/// What a [`Pinger`] saw.
struct PingReport {
    /// The longest silence, the one before the stop included.
    gap: Duration,
    replies: usize,
    /// Replies that came twice: two nodes served the same packet.
    duplicates: Vec<String>,
    /// Echo requests sent by the client, received by the server; replies
    /// sent by the server, received by the client. A request decrypted
    /// twice shows as more requests in than out, a reply encrypted twice
    /// as more replies in than out.
    echoes: [u64; 4],
}

impl Pinger {
    fn start(c: &Cluster) -> Pinger {
        let echoes = echo_counters(c);
        let process =
            c.client.spawn(&["ping", "-D", "-n", "-i", "0.01", "-W", "1", addr::SERVER]).expect("ping");
        Pinger { process, echoes }
    }

    /// SIGINT (ping prints what it buffered), then the report.
    fn stop(mut self, c: &Cluster) -> PingReport {
        let end = unix_now();
        self.process.signal("INT").expect("SIGINT to ping");
        let _ = self.process.wait_timeout(Duration::from_secs(5));
        let log = self.process.log();
        let now = echo_counters(c);
        PingReport {
            gap: longest_gap_until(&log, Some(end)),
            replies: log.lines().filter(|l| l.contains("bytes from")).count(),
            duplicates: log.lines().filter(|l| l.contains("DUP!")).map(String::from).collect(),
            echoes: [0, 1, 2, 3].map(|i| now[i] - self.echoes[i]),
        }
    }
}

/// A TCP download of `secs` seconds and a 10 ms ping, both running.
fn load(c: &Cluster, secs: u32) -> (Process, Process) {
    let iperf = c
        .client
        .spawn(&["iperf3", "-c", addr::SERVER, "-t", &secs.to_string(), "-R", "-J"])
        .expect("iperf3 client");
    let count = (secs * 100 - 50).to_string();
    let ping = c
        .client
        .spawn(&["ping", "-D", "-n", "-i", "0.01", "-c", &count, "-W", "1", addr::SERVER])
        .expect("ping");
    (iperf, ping)
}

/// Waits for [`load`] to end: the bytes the transfer moved (it must have
/// ended well), the longest gap between echo replies and the echo
/// requests that got none.
fn finish(mut iperf: Process, mut ping: Process) -> (u64, Duration, u64) {
    let status = iperf.wait_timeout(Duration::from_secs(30)).expect("iperf3 ends");
    let out = iperf.log();
    let v = Json::parse(out.trim()).unwrap_or_else(|e| panic!("iperf3 output ({e}):\n{out}"));
    assert!(status.success() && v.get("error").is_none(), "the TCP transfer broke:\n{out}");
    let received = v.path("end.sum_received.bytes").and_then(Json::as_u64).unwrap_or(0);
    assert!(received > 0, "{out}");
    let _ = ping.wait_timeout(Duration::from_secs(30));
    let log = ping.log();
    (received, longest_gap(&log), lost_pings(&log))
}

/// The echo requests of a finished `ping` that got no reply (from its
/// summary line, "N packets transmitted, M received").
fn lost_pings(log: &str) -> u64 {
    let summary = log.lines().find(|l| l.contains("packets transmitted")).unwrap_or_default();
    let mut numbers = summary.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse::<u64>().ok());
    let sent = numbers.next().unwrap_or(0);
    assert!(sent > 0, "no ping summary in:\n{log}");
    sent.saturating_sub(numbers.next().unwrap_or(0))
}

/// (a) The tunnel comes up through the external VIP, ping and a TCP
/// transfer go through the internal VIP, and only the serving node
/// decrypts and encrypts while the other only counts. The nodes read
/// their ports with `recvmmsg` (`ring_mib = 0`).
#[test]
fn strongswan_client_through_a_two_node_cluster() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_a", 2);
    // Without the receive ring here (the other tests have it).
    let start =
        |i| Tandem::start_until(c.node(i), &node_config_with(i, 2, "ring_mib = 0"), "cluster node up");
    let n1 = start(1);
    let n2 = start(2);
    wait_converged(&[&n1, &n2]);
    step(started, "two nodes synced, every segment owned once");
    let ss = client(&c);
    if let Err(e) = ss.initiate("net") {
        panic!("initiate: {e}\n--- node 1:\n{}\n--- node 2:\n{}", n1.log(), n2.log());
    }
    let ike = ss.wait_ike_established("tdm", T).expect("IKE_SA");
    assert!(ike.child("net").is_some(), "CHILD_SA");
    c.client.wait_ping(addr::SERVER, T).unwrap_or_else(|e| panic!("ping: {e}\n{}\n{}", n1.log(), n2.log()));
    c.client.ping(addr::SERVER, 5).expect("5 pings through the cluster");
    c.client.ping(addr::GATEWAY_EXT, 2).expect("the external VIP answers ping");
    step(started, "tunnel up, pings through");

    let _srv = iperf_server(&c.server);
    let bytes = 8u64 << 20;
    let out = c
        .client
        .exec_timeout(
            &["iperf3", "-c", addr::SERVER, "-n", &bytes.to_string(), "-R", "-J"],
            Duration::from_secs(60),
        )
        .expect("iperf3");
    let v = Json::parse(&out).expect("iperf3 JSON");
    let received = v.path("end.sum_received.bytes").and_then(Json::as_u64).unwrap_or(0);
    assert!(received >= bytes, "client received {received} of {bytes} bytes");
    step(started, &format!("iperf3: {received} bytes down through the cluster"));

    let serving = serving_node(&[&n1, &n2]);
    let (owner, other) = if serving == 1 { (&n1, &n2) } else { (&n2, &n1) };
    let (s_owner, s_other) = (cluster_status(owner), cluster_status(other));
    assert!(counter(&s_owner, "decrypted") > 1000, "owner decrypts: {s_owner:?}");
    assert!(counter(&s_owner, "encrypted") > 5000, "owner encrypts: {s_owner:?}");
    assert_eq!(counter(&s_other, "decrypted"), 0, "the other node decrypts nothing: {s_other:?}");
    assert_eq!(counter(&s_other, "encrypted"), 0, "the other node encrypts nothing: {s_other:?}");
    assert!(counter(&s_other, "counted") > 5000, "the other node counts what it sees: {s_other:?}");
    assert!(counter(&s_other, "verified") > 0, "the other node samples inbound ESP: {s_other:?}");
    for s in [&s_owner, &s_other] {
        assert_eq!(counter(s, "replay_drops") + counter(s, "icv_drops"), 0, "{s:?}");
    }
    let errors = ss.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    step(started, &format!("node {serving} serves the client, the other only counts"));

    // `tandem reload`: the same file changes nothing; a changed [cluster]
    // section is refused (a restart's business).
    let same = owner.ctl(&["reload"]);
    let said = same.get("message").and_then(Json::as_str).unwrap_or_default().to_owned();
    assert!(said.contains(" 0 IKE SA(s)"), "{same:?}");
    let path = c.node(serving).dir().join("gateway.toml");
    let text = std::fs::read_to_string(&path).expect("the node's config");
    std::fs::write(&path, text.replace("heartbeat_delay = \"100ms\"", "heartbeat_delay = \"150ms\""))
        .expect("write the config");
    let refused = ctl_refused(owner, &["reload"]);
    assert!(refused.contains("restart the node"), "{refused}");
    std::fs::write(&path, text).expect("restore the config");
    assert!(ss.wait_child_installed("net", T).is_ok(), "the tunnel survived the reloads");

    // `tandem terminate`: refused by the other node, done by the owner;
    // every node drops the SA.
    let refused = ctl_refused(other, &["terminate", "rw"]);
    assert!(refused.contains("no IKE SA rw served here"), "{refused}");
    owner.ctl(&["terminate", "rw"]);
    ss.wait_no_sas(T).expect("the client's SAs deleted");
    netns::wait_for("every node to drop the SA", T, || {
        [&n1, &n2].iter().all(|t| t.ctl(&["status"]).get("ike_sas").and_then(Json::as_u64) == Some(0))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:?}\n{:?}", n1.ctl(&["status"]), n2.ctl(&["status"])));
    step(started, "the owner terminated the IKE SA, both nodes dropped it");
    n1.stop();
    n2.stop();
}

/// A control command that must fail: what it printed.
fn ctl_refused(t: &Tandem, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .args(["--socket", &t.socket])
        .output()
        .expect("the tandem CLI");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "tandem {args:?} succeeded: {text}");
    text
}

/// (b) and (c): SIGKILL of the serving node during a TCP transfer and a
/// 10 ms ping: the transfer survives, the gap stays under a second,
/// strongSwan sees no replay or ICV error and still rekeys; then the node
/// comes back, takes its segments back without a CHILD_SA rekey, and the
/// traffic goes on.
#[test]
fn serving_node_killed_and_reintegrated_under_load() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_b", 2);
    let mut nodes = vec![Some(start_node(&c, 1, 2)), Some(start_node(&c, 2, 2))];
    wait_converged(&live(&nodes));
    let ss = client(&c);
    ss.initiate("net").expect("initiate");
    c.client.wait_ping(addr::SERVER, T).expect("ping through the cluster");
    let serving = serving_node(&live(&nodes));
    step(started, &format!("tunnel up, node {serving} serves the client"));

    let _srv = iperf_server(&c.server);
    let (iperf, ping) = load(&c, 8);
    std::thread::sleep(Duration::from_secs(2));
    step(started, &format!("kill -9 node {serving}"));
    if let Some(mut t) = nodes[serving - 1].take() {
        t.process.kill();
    }
    let (received, gap, _) = finish(iperf, ping);
    step(started, &format!("TCP survived ({received} bytes), longest ping gap {gap:?}"));
    assert!(gap < Duration::from_secs(1), "failover gap {gap:?}");
    let errors = ss.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));

    // The survivor serves every segment, and the client's SAs still rekey.
    let (old, new) = ss.rekey_child_and_wait("net", T).expect("CHILD_SA rekey through the survivor");
    assert_ne!(old.spi_out(), new.spi_out());
    let (old, new) = ss.rekey_ike_and_wait("tdm", T).expect("IKE_SA rekey through the survivor");
    assert_ne!(old.spis(), new.spis());
    c.client.ping(addr::SERVER, 3).expect("ping after the rekeys");
    step(started, "the survivor rekeyed the client's CHILD_SA and IKE_SA");

    // (c) The node comes back during a transfer and takes its segments
    // back: no CHILD_SA rekey, no TCP loss.
    let child_now = ss.wait_child_installed("net", T).expect("CHILD_SA");
    let _srv = iperf_server(&c.server);
    let (iperf, ping) = load(&c, 6);
    std::thread::sleep(Duration::from_secs(1));
    nodes[serving - 1] = Some(start_node(&c, serving, 2));
    wait_converged(&live(&nodes));
    let back = serving_node(&live(&nodes));
    step(started, &format!("node {serving} reintegrated; node {back} serves the client"));
    // The survivor's handover mark let it serve its segments at once.
    let returned = cluster_status(nodes[serving - 1].as_ref().expect("node back"));
    assert!(counter(&returned, "handover_marks") >= 1, "no handover mark read: {returned:?}");
    let (received, gap, lost) = finish(iperf, ping);
    step(started, &format!("TCP went on ({received} bytes), longest ping gap {gap:?}, {lost} pings lost"));
    assert!(gap < Duration::from_secs(1), "reintegration gap {gap:?}");
    // The handover mark: no 50 ms wait across the handover (it lost 4-5
    // pings of 10 ms; with the mark 0-1, as the load loses anywhere).
    assert!(lost <= 3, "{lost} pings lost across the reintegration");
    let child_after = ss.wait_child_installed("net", T).expect("CHILD_SA");
    assert_eq!(child_now.spi_in(), child_after.spi_in(), "no CHILD_SA rekey on reintegration");
    let errors = ss.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}

/// Initiators of [`many_clients_spread_over_the_nodes`].
const CLIENTS: usize = 20;

/// Initiator `k`'s address: 192.0.2.100 and up.
fn client_addr(k: usize) -> String {
    format!("192.0.2.{}", 100 + k)
}

/// A Tandem initiator at `address` that brings its tunnel to the internal
/// network up through the external VIP as soon as it starts. ESP in UDP
/// forced: there is no NAT, and the cluster speaks only ESP in UDP.
fn initiator_config(address: &str) -> String {
    format!(
        r#"
[[connections]]
name = "cl"
local_addrs = ["{address}"]
remote_addrs = ["{gw}"]
proposals = ["aes256gcm16-prfsha256-x25519"]
encap = true

[connections.local]
auth = "psk"
id = "{address}"

[connections.remote]
auth = "psk"
id = "{gw}"

[[connections.children]]
name = "net"
local_ts = ["dynamic"]
remote_ts = ["{int}"]
esp_proposals = ["aes256gcm16"]
start_action = "start"

[[secrets.ike]]
secret = "{PSK}"

[log]
level = "info"
"#,
        gw = addr::GATEWAY_EXT,
        int = addr::INT_NET,
    )
}

/// An initiator's IKE SA (from `tandem sas`) once it has a CHILD_SA.
fn initiator_sa(t: &Tandem) -> Option<Json> {
    let sas = t.ctl(&["sas"]);
    let sa = sas.get("ike_sas")?.as_array()?.first()?.clone();
    sa.get("children")?.as_array()?.first()?;
    Some(sa)
}

fn hex_field(v: &Json, key: &str) -> u64 {
    let s = v.get(key).and_then(Json::as_str).unwrap_or_else(|| panic!("{key} in {v:?}"));
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{key} {s:?}: {e}"))
}

/// A number of the initiator's first CHILD_SA.
fn child_field(sa: &Json, key: &str) -> u64 {
    sa.path(&format!("children.0.{key}")).and_then(Json::as_u64).unwrap_or_else(|| panic!("{key} in {sa:?}"))
}

/// (d) Twenty Tandem initiators, each in its own namespace on the external
/// bridge, bring their tunnels up through a two-node cluster at once and
/// ping the server. Each IKE SA lands in its peer's segment (the top six
/// bits of the cluster's SPIs say so), each node handles the IKE messages
/// and decrypts the ESP of exactly the clients of its segments, both nodes
/// serve some, and every node holds every SA.
///
/// Tandem initiators rather than one charon with twenty connections: each
/// is a small process (two cores run them fine), the peers are then really
/// twenty hosts with their own routes and TUNs, and `tandem sas` gives
/// each one's SPIs and packet counts exactly.
#[test]
fn many_clients_spread_over_the_nodes() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_d", 2);
    let n1 = start_node(&c, 1, 2);
    let n2 = start_node(&c, 2, 2);
    wait_converged(&[&n1, &n2]);
    step(started, "two nodes synced, every segment owned once");
    let logs = || format!("--- node 1:\n{}\n--- node 2:\n{}", n1.log(), n2.log());

    let clients: Vec<(String, Netns)> = (0..CLIENTS)
        .map(|k| {
            let a = client_addr(k);
            let ns = c.attach("ext", &format!("c{k}"), &format!("{a}/24")).expect("a client namespace");
            offloads_off(&ns, "eth0");
            (a, ns)
        })
        .collect();
    step(started, &format!("{CLIENTS} client namespaces on the external bridge"));
    let initiators: Vec<Tandem> = std::thread::scope(|s| {
        let started: Vec<_> =
            clients.iter().map(|(a, ns)| s.spawn(move || Tandem::start(ns, &initiator_config(a)))).collect();
        started.into_iter().map(|h| h.join().expect("an initiator starts")).collect()
    });
    for (t, (a, _)) in initiators.iter().zip(&clients) {
        netns::wait_for_some(&format!("{a}'s CHILD_SA"), T, || initiator_sa(t))
            .unwrap_or_else(|e| panic!("{e}\n--- initiator {a}:\n{}\n{}", t.log(), logs()));
    }
    step(started, &format!("{CLIENTS} initiators up"));

    std::thread::scope(|s| {
        for (a, ns) in &clients {
            s.spawn(move || {
                ns.wait_ping(addr::SERVER, T).unwrap_or_else(|e| panic!("ping from {a}: {e}"));
                let out = ns.ping(addr::SERVER, 5).unwrap_or_else(|e| panic!("5 pings from {a}: {e}"));
                assert!(out.contains(" 5 received"), "pings from {a} lost:\n{out}");
            });
        }
    });
    step(started, "every client pings the server through the cluster");

    // Each IKE SA and CHILD_SA is in its peer's segment: the cluster's
    // SPIs carry `segment - 1` in their top six bits.
    let segments: Vec<u64> = clients.iter().map(|(a, _)| segment_of(a)).collect();
    let sas: Vec<Json> = initiators.iter().map(|t| initiator_sa(t).expect("the IKE SA")).collect();
    for ((sa, seg), (a, _)) in sas.iter().zip(&segments).zip(&clients) {
        assert_eq!(hex_field(sa, "spi_r") >> 58, seg - 1, "{a}'s IKE SA in segment {seg}: {sa:?}");
        let child = sa.path("children.0").expect("a CHILD_SA");
        assert_eq!(hex_field(child, "spi_out") >> 26, seg - 1, "{a}'s CHILD_SA in segment {seg}: {sa:?}");
        assert_eq!(child_field(sa, "replay_drops") + child_field(sa, "icv_drops"), 0, "{a}: {sa:?}");
    }

    // Every node holds every SA.
    netns::wait_for("every node to hold every IKE SA", T, || {
        [&n1, &n2]
            .iter()
            .all(|t| t.ctl(&["status"]).get("ike_sas").and_then(Json::as_u64) == Some(CLIENTS as u64))
    })
    .unwrap_or_else(|e| panic!("{e}\n{:?}\n{:?}", n1.ctl(&["status"]), n2.ctl(&["status"])));

    // Every node saw every IKE message and exactly one handled it. (Read
    // again should a DPD exchange fall between the two reads.)
    let ike_seen = |s: &Json| counter(s, "ike_handled") + counter(s, "ike_skipped");
    let mut statuses = [cluster_status(&n1), cluster_status(&n2)];
    let ike_total = |st: &[Json; 2]| -> u64 { st.iter().map(|s| counter(s, "ike_handled")).sum() };
    let _ = netns::wait_for("every node to see every IKE message once", Duration::from_secs(5), || {
        statuses = [cluster_status(&n1), cluster_status(&n2)];
        statuses.iter().all(|s| ike_seen(s) == ike_total(&statuses))
    });
    let ike_total = ike_total(&statuses);
    let mut served = Vec::new();
    for (i, s) in statuses.iter().enumerate() {
        let owned = segments_of(s);
        let mine: Vec<usize> = (0..CLIENTS).filter(|k| owned.contains(&segments[*k])).collect();
        let sent: u64 = mine.iter().map(|k| child_field(&sas[*k], "packets_out")).sum();
        let received: u64 = mine.iter().map(|k| child_field(&sas[*k], "packets_in")).sum();
        let node = i + 1;
        eprintln!(
            "node {node}: segments {owned:?}, {} clients, IKE {} handled / {} skipped, ESP {} decrypted / {} \
             encrypted / {} verified / {} skipped / {} counted",
            mine.len(),
            counter(s, "ike_handled"),
            counter(s, "ike_skipped"),
            counter(s, "decrypted"),
            counter(s, "encrypted"),
            counter(s, "verified"),
            counter(s, "skipped"),
            counter(s, "counted"),
        );
        assert_eq!(ike_seen(s), ike_total, "node {node} saw every IKE message, one node handled each: {s:?}");
        assert!(counter(s, "ike_handled") >= 2 * mine.len() as u64, "node {node}: {s:?}");
        // It decrypts exactly what its clients sent, and encrypts at
        // least what they received (a reply the link could not deliver
        // yet would count here and not there).
        assert_eq!(
            counter(s, "decrypted"),
            sent,
            "node {node} decrypts for its {} clients: {s:?}",
            mine.len()
        );
        assert!(counter(s, "encrypted") >= received, "node {node} encrypts for its clients: {s:?}");
        assert_eq!(counter(s, "replay_drops") + counter(s, "icv_drops"), 0, "node {node}: {s:?}");
        served.push(mine.len());
    }
    assert_eq!(served.iter().sum::<usize>(), CLIENTS, "each client's segment has one owner");
    assert!(served.iter().all(|n| *n > 0), "both nodes serve clients: {served:?}");
    step(started, &format!("clients per node {served:?}, each decrypted by the owner of its segment"));
    for t in initiators {
        t.stop();
    }
    n1.stop();
    n2.stop();
}

/// (e) Three nodes and a strongSwan client with a 10 ms ping: the serving
/// node is killed (the two others take its segments, gap < 1 s), revived,
/// then cut off the sync channel while it keeps seeing both networks: it
/// must fence itself (lost quorum) while the two others serve the client
/// (gap < 1 s, no reply twice); once healed all three converge again, and
/// the client never rekeyed nor saw an ESP error.
///
/// The partition drops UDP to the sync port (4510) in the isolated node's
/// namespace, both ways, rather than taking its internal link down: the
/// node still captures every frame of both networks, so a node that did
/// not fence would decrypt and encrypt alongside the new owner, and the
/// ping would show duplicates (and strongSwan replay errors).
#[test]
fn three_nodes_kill_then_partition() {
    if !prerequisites() || !netns::require_packet_filter() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_e", 3);
    let mut nodes: Vec<Option<Tandem>> = (1..=3).map(|i| Some(start_node(&c, i, 3))).collect();
    wait_converged(&live(&nodes));
    let ss = client(&c);
    ss.initiate("net").expect("initiate");
    c.client.wait_ping(addr::SERVER, T).expect("ping through the cluster");
    let child = ss.wait_child_installed("net", T).expect("CHILD_SA");
    let serving = serving_node(&live(&nodes));
    step(started, &format!("three nodes, tunnel up, node {serving} serves the client"));
    // A planned handover (revival, healing) must not serve a packet twice
    // (the new owner reads what was queued on its ports before it takes),
    // and an isolated node must stay fenced until it has resynced.
    let check_ping = |what: &str, r: &PingReport| {
        let [req_out, req_in, rep_out, rep_in] = r.echoes;
        let echoes = format!(
            "echo requests {req_out} sent, {req_in} received; replies {rep_out} sent, {rep_in} received"
        );
        step(
            started,
            &format!(
                "{what}: longest ping gap {:?}, {} replies, {} duplicates; {echoes}",
                r.gap,
                r.replies,
                r.duplicates.len()
            ),
        );
        assert!(r.gap < Duration::from_secs(1), "{what}: ping gap {:?}", r.gap);
        let duplicates = format!("{what}: duplicate replies ({echoes}):\n{}", r.duplicates.join("\n"));
        assert!(r.duplicates.is_empty(), "{duplicates}");
    };

    // 1) kill -9 of the serving node: the two others take its segments.
    let ping = Pinger::start(&c);
    std::thread::sleep(Duration::from_secs(1));
    step(started, &format!("kill -9 node {serving}"));
    if let Some(mut t) = nodes[serving - 1].take() {
        t.process.kill();
    }
    wait_converged(&live(&nodes));
    step(started, "the two survivors own every segment");
    std::thread::sleep(Duration::from_secs(1));
    check_ping("kill", &ping.stop(&c));

    // 2) it comes back and takes its segments back.
    let ping = Pinger::start(&c);
    std::thread::sleep(Duration::from_millis(500));
    nodes[serving - 1] = Some(start_node(&c, serving, 3));
    wait_converged(&live(&nodes));
    step(started, &format!("node {serving} revived, three nodes converged"));
    std::thread::sleep(Duration::from_secs(1));
    check_ping("revival", &ping.stop(&c));

    // 3) the serving node loses the sync channel: it fences itself, the
    // other two serve.
    let isolated = serving_node(&live(&nodes));
    let ping = Pinger::start(&c);
    std::thread::sleep(Duration::from_millis(500));
    step(started, &format!("partition: node {isolated} cut off the sync channel"));
    let lone = nodes[isolated - 1].as_ref().expect("the isolated node runs");
    let rest: Vec<&Tandem> =
        nodes.iter().enumerate().filter(|(i, _)| i + 1 != isolated).filter_map(|(_, t)| t.as_ref()).collect();
    let marks: Vec<usize> = rest.iter().map(|t| t.log().lines().count()).collect();
    let lone_mark = lone.log().lines().count();
    let cut = Instant::now();
    c.node(isolated).block_udp_port(4510).expect("block the sync port");
    let fenced =
        |s: &Json| s.get("synced").and_then(Json::as_bool) == Some(false) || segments_of(s).is_empty();
    netns::wait_for(&format!("node {isolated} to fence itself"), T, || fenced(&cluster_status(lone)))
        .unwrap_or_else(|e| panic!("{e}\n{:?}\n{}", cluster_status(lone), lone.log()));
    wait_converged(&rest);
    step(
        started,
        &format!("node {isolated} fenced, the other two own every segment after {:?}", cut.elapsed()),
    );
    // By the nodes' logs (one clock): the isolated node gave its segments
    // up before either of the others took one.
    let fence =
        log_stamps(&lone.log(), lone_mark, "lost quorum").into_iter().next().expect("a fence in the log");
    let takes: Vec<String> =
        rest.iter().zip(&marks).flat_map(|(t, m)| log_stamps(&t.log(), *m, "took segments")).collect();
    let first_take = takes.iter().min().expect("the others took the segments");
    let lead = (seconds_of_day(first_take) - seconds_of_day(&fence)) * 1000.0;
    step(
        started,
        &format!("node {isolated} fenced at {fence}, {lead:.1} ms before the first take at {first_take}"),
    );
    assert!(fence < *first_take, "node {isolated} fenced at {fence}, after a take at {first_take}");
    // While isolated it serves nothing.
    let before = cluster_status(lone);
    std::thread::sleep(Duration::from_secs(1));
    let after = cluster_status(lone);
    assert!(segments_of(&after).is_empty(), "the isolated node owns nothing: {after:?}");
    assert_eq!(after.get("synced").and_then(Json::as_bool), Some(false), "the isolated node: {after:?}");
    for k in ["decrypted", "encrypted", "ike_handled"] {
        assert_eq!(
            counter(&before, k),
            counter(&after, k),
            "the isolated node's {k} stands still: {after:?}"
        );
    }
    check_ping("partition", &ping.stop(&c));

    // 4) heal: all three converge, nothing rekeyed.
    let ping = Pinger::start(&c);
    std::thread::sleep(Duration::from_millis(500));
    // Isolated, it never called itself synced.
    let isolated_log: Vec<String> = lone.log().lines().skip(lone_mark).map(String::from).collect();
    let flaps = isolated_log.iter().filter(|l| l.contains("synced: eligible to serve")).count();
    if flaps > 0 {
        let shown: Vec<&str> = isolated_log
            .iter()
            .filter(|l| l.contains("quorum") || l.contains("synced"))
            .take(6)
            .map(|l| l.as_str())
            .collect();
        panic!(
            "node {isolated}, isolated, said \"synced: eligible to serve\" {flaps} times:\n{}\n...",
            shown.join("\n")
        );
    }
    let healed = Instant::now();
    c.node(isolated).unblock_udp_port(4510).expect("unblock the sync port");
    wait_converged(&live(&nodes));
    step(started, &format!("healed: three nodes converged after {:?}", healed.elapsed()));
    std::thread::sleep(Duration::from_secs(1));
    check_ping("healing", &ping.stop(&c));
    c.client.ping(addr::SERVER, 3).expect("ping after the healing");

    let now = ss.wait_child_installed("net", T).expect("CHILD_SA");
    assert_eq!((child.spi_in(), child.spi_out()), (now.spi_in(), now.spi_out()), "no CHILD_SA rekey");
    let errors = ss.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    for t in live(&nodes) {
        let s = cluster_status(t);
        assert_eq!(counter(&s, "replay_drops") + counter(&s, "icv_drops"), 0, "{s:?}");
    }
    step(started, "same CHILD_SA throughout, no ESP error");
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}

/// (f) Offloads on, as veth and most NICs have them: a Tandem initiator
/// sends its ESP in UDP GSO batches (super-packets on the external side,
/// which the standby passes over without cutting them up), the server
/// sends TCP super-packets (cut on the internal side), and the owner
/// hands decrypted TCP to the server coalesced, with a GSO header. 32 MiB
/// go each way; the owner decrypts and encrypts every ESP
/// packet of the tunnel, and the standby counts every one of them, most
/// of the inbound trimmed to their headers by its port filter. Then the
/// owner is killed under an upload, and the other node takes it over.
#[test]
fn bulk_both_ways_with_offloads_on() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = Cluster::build("cluster_f", 2).expect("cluster topology");
    let n1 = start_node(&c, 1, 2);
    let n2 = start_node(&c, 2, 2);
    wait_converged(&[&n1, &n2]);
    let logs = || format!("--- node 1:\n{}\n--- node 2:\n{}", n1.log(), n2.log());
    let initiator = Tandem::start(&c.client, &initiator_config(addr::CLIENT));
    netns::wait_for_some("the initiator's CHILD_SA", T, || initiator_sa(&initiator))
        .unwrap_or_else(|e| panic!("{e}\n--- initiator:\n{}\n{}", initiator.log(), logs()));
    c.client.wait_ping(addr::SERVER, T).unwrap_or_else(|e| panic!("ping: {e}\n{}", logs()));
    step(started, "Tandem initiator through the cluster, offloads on");

    let bytes = 32u64 << 20;
    for reverse in [false, true] {
        let _srv = iperf_server(&c.server);
        let n = bytes.to_string();
        let mut args = vec!["iperf3", "-c", addr::SERVER, "-n", &n, "-J"];
        if reverse {
            args.push("-R");
        }
        let out = c.client.exec_timeout(&args, Duration::from_secs(60)).expect("iperf3");
        let v = netns::iperf::parse_iperf(&out);
        // Sent up, the receiver's count stops when the sender is done,
        // with what is still in flight left out.
        let received = v.path("end.sum_received.bytes").and_then(Json::as_u64).unwrap_or(0);
        let want = if reverse { bytes } else { bytes * 3 / 4 };
        assert!(received >= want, "{received} of {bytes} bytes arrived (reverse: {reverse})");
    }
    step(started, "32 MiB up and 32 MiB down");

    let sa = initiator_sa(&initiator).expect("the IKE SA");
    let (sent, received) = (child_field(&sa, "packets_out"), child_field(&sa, "packets_in"));
    assert_eq!(child_field(&sa, "replay_drops") + child_field(&sa, "icv_drops"), 0, "initiator: {sa:?}");
    let serving = serving_node(&[&n1, &n2]);
    let (owner, standby) = if serving == 1 { (&n1, &n2) } else { (&n2, &n1) };
    let (o, s) = (cluster_status(owner), cluster_status(standby));
    eprintln!(
        "initiator: {sent} ESP packets out, {received} in; owner: {} decrypted, {} encrypted ({} \
         super-packets); standby: {} verified, {} skipped ({} passed over), {} counted; super-packets \
         external / internal: {} / {} ({} trimmed)",
        counter(&o, "decrypted"),
        counter(&o, "encrypted"),
        counter(&o, "ext_super_packets_sent"),
        counter(&s, "verified"),
        counter(&s, "skipped"),
        counter(&s, "passed_over"),
        counter(&s, "counted"),
        counter(&s, "ext_super_packets"),
        counter(&s, "int_super_packets"),
        counter(&s, "trimmed"),
    );
    assert!(sent > 20_000 && received > 20_000, "ESP both ways: {sa:?}");
    // A frame a busy receive ring had no room for is lost to one node,
    // and TCP sends it again: allow for a few.
    let close = |a: u64, b: u64| a.abs_diff(b) * 100 <= b;
    assert!(close(counter(&o, "decrypted"), sent), "the owner decrypts every packet: {o:?}");
    assert!(counter(&o, "encrypted") >= received, "the owner encrypts every packet: {o:?}");
    let seen = counter(&s, "verified") + counter(&s, "skipped");
    assert!(close(seen, sent), "the standby sees every inbound packet: {s:?}");
    // Super-packets are sampled at random by the standby's port filter,
    // one in 16 on average (each then verified whole), and frames that fit
    // the MTU one in 16 by a countdown: allow for chance.
    assert!(counter(&s, "verified") * 64 >= seen, "the standby verifies about one in 16: {s:?}");
    assert!(counter(&s, "counted") >= received, "the standby counts every outbound packet: {s:?}");
    assert_eq!(counter(&s, "decrypted") + counter(&s, "encrypted"), 0, "the standby only counts: {s:?}");
    // The batches really came as super-packets, and the standby passed
    // over most of their ESP uncut.
    for st in [&o, &s] {
        assert_eq!(counter(st, "replay_drops") + counter(st, "icv_drops"), 0, "{st:?}");
        assert!(counter(st, "ext_super_packets") > 100, "UDP GSO batches from the initiator: {st:?}");
        assert!(counter(st, "int_super_packets") > 100, "TCP super-packets from the server: {st:?}");
    }
    assert!(counter(&s, "passed_over") * 2 > counter(&s, "skipped"), "the standby's fast path: {s:?}");
    // Most of them the kernel never copied whole into the standby's ring.
    assert!(counter(&s, "trimmed") * 2 > counter(&s, "ext_super_packets"), "trimmed by the filter: {s:?}");
    assert_eq!(counter(&o, "passed_over") + counter(&o, "trimmed"), 0, "the owner decrypts all: {o:?}");
    // The server's super-packets reached the standby trimmed to their
    // headers by its internal port's filter (or, before the filter knew
    // the initiator's address, whole), and it counted them uncut; the
    // owner cut and encrypted each.
    let int_counted = counter(&s, "int_trimmed") + counter(&s, "int_counted_uncut");
    assert!(int_counted > 100, "counted uncut: {s:?}");
    assert!(counter(&s, "int_trimmed") * 2 > int_counted, "trimmed by the internal filter: {s:?}");
    for what in ["int_counted_uncut", "int_trimmed"] {
        assert_eq!(counter(&o, what), 0, "the owner encrypts all: {o:?}");
    }
    // The owner's ESP to the initiator left in UDP GSO super-packets.
    assert!(counter(&o, "ext_super_packets_sent") > 100, "UDP GSO batches to the initiator: {o:?}");
    assert_eq!(counter(&s, "ext_super_packets_sent"), 0, "the standby sends no ESP: {s:?}");
    step(started, &format!("node {serving} served {sent} packets in and {received} out, the other counted"));

    // A failover under an upload: the standby's port filter trimmed the
    // initiator's super-packets until it took the segment over, and
    // passes them whole from then on.
    let survivor = 3 - serving;
    let decrypted = counter(&s, "decrypted");
    let _srv = iperf_server(&c.server);
    let iperf = c.client.spawn(&["iperf3", "-c", addr::SERVER, "-t", "4", "-J"]).expect("iperf3 client");
    let ping = c
        .client
        .spawn(&["ping", "-D", "-n", "-i", "0.01", "-c", "350", "-W", "1", addr::SERVER])
        .expect("ping");
    std::thread::sleep(Duration::from_millis(1500));
    let mut nodes = [Some(n1), Some(n2)];
    if let Some(mut t) = nodes[serving - 1].take() {
        t.process.kill();
    }
    let (bytes, gap, _) = finish(iperf, ping);
    step(
        started,
        &format!("kill -9 node {serving} under an upload: {bytes} bytes, longest ping gap {gap:?}"),
    );
    let st = cluster_status(nodes[survivor - 1].as_ref().expect("the survivor"));
    assert!(gap < Duration::from_secs(1), "failover gap {gap:?}\n{}", node_logs(&nodes));
    assert!(counter(&st, "decrypted") > decrypted + 1000, "the survivor decrypts the upload: {st:?}");
    let sa = initiator_sa(&initiator).expect("the IKE SA");
    assert_eq!(child_field(&sa, "replay_drops") + child_field(&sa, "icv_drops"), 0, "initiator: {sa:?}");
    initiator.stop();
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}

/// The logs of the nodes still running, for a failure message.
fn node_logs(nodes: &[Option<Tandem>]) -> String {
    nodes.iter().flatten().map(|t| format!("--- node:\n{}\n", t.log())).collect()
}

/// A Tandem initiator in the client namespace with `config`, once its
/// CHILD_SA is up.
fn start_initiator(c: &Cluster, config: &str, nodes: &[Option<Tandem>]) -> Tandem {
    let initiator = Tandem::start(&c.client, config);
    netns::wait_for_some("the initiator's CHILD_SA", T, || initiator_sa(&initiator))
        .unwrap_or_else(|e| panic!("{e}\n--- initiator:\n{}\n{}", initiator.log(), node_logs(nodes)));
    initiator
}

/// SIGKILL of node `serving` under a 10 ms ping from the client to `dst`:
/// the longest gap between the echo replies.
fn kill_under_ping(c: &Cluster, dst: &str, nodes: &mut [Option<Tandem>], serving: usize) -> Duration {
    let mut ping =
        c.client.spawn(&["ping", "-D", "-n", "-i", "0.01", "-c", "250", "-W", "1", dst]).expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    if let Some(mut t) = nodes[serving - 1].take() {
        t.process.kill();
    }
    let _ = ping.wait_timeout(Duration::from_secs(20));
    longest_gap(&ping.log())
}

/// The IPv6 addresses of [`ipv6_vips_and_a_failover`]: the external and
/// internal networks and VIPs, the client and the server.
mod v6 {
    pub(super) const EXT_VIP: &str = "2001:db8:2::a:1";
    /// Its cluster MAC, derived: 33:33 and the low 32 bits.
    pub(super) const EXT_MAC: &str = "33:33:00:0a:00:01";
    pub(super) const INT_VIP: &str = "2001:db8:1::b:1";
    pub(super) const INT_NET: &str = "2001:db8:1::/64";
    pub(super) const CLIENT: &str = "2001:db8:2::10";
    pub(super) const SERVER: &str = "2001:db8:1::10";
}

/// `config` (a node's or an initiator's, as the IPv4 tests write them)
/// with IPv6 VIPs, networks and client address instead.
fn to_v6(config: &str) -> String {
    config
        .replace(&format!("\"{}/24\"", addr::GATEWAY_EXT), &format!("\"{}/64\"", v6::EXT_VIP))
        .replace(&format!("\"{}/24\"", addr::GATEWAY_INT), &format!("\"{}/64\"", v6::INT_VIP))
        .replace(&format!("\"{}\"", addr::INT_NET), &format!("\"{}\"", v6::INT_NET))
        .replace(&format!("\"{}\"", addr::GATEWAY_EXT), &format!("\"{}\"", v6::EXT_VIP))
        .replace(&format!("\"{}\"", addr::CLIENT), &format!("\"{}\"", v6::CLIENT))
}

/// (g) IPv6 VIPs on both ports (the sync channels stay on the nodes' IPv4
/// addresses): a Tandem initiator finds the external VIP by neighbour
/// discovery, brings its tunnel up over IPv6 and pings the server behind
/// the internal VIP (which the server, too, resolves by ND); only the
/// serving node decrypts. The serving node is killed under a 10 ms ping:
/// the other takes over within a second.
#[test]
fn ipv6_vips_and_a_failover() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_g", 2);
    // The harness turns IPv6 off; the nodes keep it off (their kernels
    // must not answer for the VIPs), client and server get it back,
    // without duplicate address detection holding the addresses back.
    for (ns, a) in [(&c.client, v6::CLIENT), (&c.server, v6::SERVER)] {
        ns.enable_ipv6().expect("IPv6 on");
        ns.sysctl("net.ipv6.conf.eth0.disable_ipv6", "0").expect("IPv6 on eth0");
        ns.ip(&["addr", "add", &format!("{a}/64"), "dev", "eth0", "nodad"]).expect("an IPv6 address");
    }
    c.server.default_route(v6::INT_VIP).expect("server IPv6 default route");
    let start = |i| Tandem::start_until(c.node(i), &to_v6(&node_config(i, 2)), "cluster node up");
    let mut nodes = [Some(start(1)), Some(start(2))];
    wait_converged(&live(&nodes));
    step(started, "two nodes with IPv6 VIPs synced");
    c.client
        .wait_ping(v6::EXT_VIP, T)
        .unwrap_or_else(|e| panic!("ping the external VIP: {e}\n{}", node_logs(&nodes)));
    let initiator = start_initiator(&c, &to_v6(&initiator_config(addr::CLIENT)), &nodes);
    c.client
        .wait_ping(v6::SERVER, T)
        .unwrap_or_else(|e| panic!("ping the server: {e}\n{}", node_logs(&nodes)));
    let out = c.client.ping(v6::SERVER, 5).expect("5 pings");
    assert!(out.contains(" 5 received"), "{out}");
    let neigh = c.client.ip(&["-6", "neigh", "show", v6::EXT_VIP]).expect("ip neigh");
    step(
        started,
        &format!("tunnel over IPv6, server pinged; the client's neighbour entry: {}", neigh.trim()),
    );
    assert!(neigh.contains(v6::EXT_MAC), "the VIP resolves to the cluster MAC: {neigh}");

    let seg = segment_of(v6::CLIENT);
    let statuses: Vec<Json> = live(&nodes).iter().map(|t| cluster_status(t)).collect();
    let serving = 1 + statuses.iter().position(|s| segments_of(s).contains(&seg)).expect("an owner");
    let (o, s) = (&statuses[serving - 1], &statuses[2 - serving]);
    assert!(counter(o, "decrypted") >= 5, "the owner decrypts: {o:?}");
    assert_eq!(counter(s, "decrypted") + counter(s, "encrypted"), 0, "the other only counts: {s:?}");

    let gap = kill_under_ping(&c, v6::SERVER, &mut nodes, serving);
    step(started, &format!("kill -9 node {serving}: longest ping gap {gap:?}"));
    assert!(gap < Duration::from_secs(1), "IPv6 failover gap {gap:?}\n{}", node_logs(&nodes));
    let sa = initiator_sa(&initiator).expect("the IKE SA");
    assert_eq!(child_field(&sa, "replay_drops") + child_field(&sa, "icv_drops"), 0, "initiator: {sa:?}");
    initiator.stop();
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}

/// (h) TAP ports: on each node the host bridges a persistent TAP device
/// (`tap = true`) with its link to the switch, as a VM host would; the
/// node reads and writes frames through the TAP instead of a packet
/// socket. A Tandem initiator pings the server through the cluster, only
/// the serving node decrypts, and the other takes over when it is killed.
#[test]
fn tap_ports() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_h", 2);
    for n in 1..=2 {
        let gw = c.node(n);
        for (side, link, net) in [("x", "ext0", addr::node_ext(n)), ("i", "int0", addr::node_int(n))] {
            let (tap, br) = (format!("tap{side}"), format!("br{side}"));
            gw.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"]).expect("a TAP device");
            gw.bridge(&br, &[]).expect("a bridge");
            gw.addr_del(link, &format!("{net}/24")).expect("move the node's address");
            gw.bridge_add_port(&br, link).expect("the link in the bridge");
            gw.bridge_add_port(&br, &tap).expect("the TAP in the bridge");
            gw.addr_add(&br, &format!("{net}/24")).expect("the node's address on the bridge");
            gw.link_up(&br).expect("bridge up");
        }
    }
    let config = |i| {
        node_config(i, 2)
            .replace("interface = \"ext0\"", "interface = \"tapx\"\ntap = true")
            .replace("interface = \"int0\"", "interface = \"tapi\"\ntap = true")
    };
    let start = |i| Tandem::start_until(c.node(i), &config(i), "cluster node up");
    let mut nodes = [Some(start(1)), Some(start(2))];
    wait_converged(&live(&nodes));
    step(started, "two nodes on TAP ports synced");
    let initiator = start_initiator(&c, &initiator_config(addr::CLIENT), &nodes);
    c.client.wait_ping(addr::SERVER, T).unwrap_or_else(|e| panic!("ping: {e}\n{}", node_logs(&nodes)));
    let out = c.client.ping(addr::SERVER, 5).expect("5 pings");
    assert!(out.contains(" 5 received"), "{out}");
    let serving = serving_node(&live(&nodes));
    let statuses: Vec<Json> = live(&nodes).iter().map(|t| cluster_status(t)).collect();
    let (o, s) = (&statuses[serving - 1], &statuses[2 - serving]);
    assert!(counter(o, "decrypted") >= 5, "the owner decrypts: {o:?}");
    assert_eq!(counter(s, "decrypted") + counter(s, "encrypted"), 0, "the other only counts: {s:?}");
    assert!(counter(s, "counted") >= 5, "the other counts what it sees: {s:?}");
    step(started, &format!("pings through TAP ports, node {serving} serves"));

    let gap = kill_under_ping(&c, addr::SERVER, &mut nodes, serving);
    step(started, &format!("kill -9 node {serving}: longest ping gap {gap:?}"));
    assert!(gap < Duration::from_secs(1), "failover gap on TAP ports {gap:?}\n{}", node_logs(&nodes));
    initiator.stop();
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}

/// `config` with its first `from` replaced by `to` (which must be there).
fn edit(config: String, from: &str, to: &str) -> String {
    assert!(config.contains(from), "{from:?} in the configuration");
    config.replacen(from, to, 1)
}

/// A node's configuration for (i): the cluster brings a site-to-site
/// tunnel to the client's gateway up itself (`start_action = "start"`),
/// its internal network against the client's address.
fn site_node_config(i: usize) -> String {
    let client = addr::CLIENT;
    let mut s = node_config(i, 2);
    s = edit(s, "name = \"rw\"", "name = \"site\"");
    s = edit(s, "proposals = ", &format!("remote_addrs = [\"{client}\"]\nencap = true\nproposals = "));
    s = edit(
        s,
        "[connections.remote]\nauth = \"psk\"",
        &format!("[connections.remote]\nauth = \"psk\"\nid = \"{client}\""),
    );
    edit(s, "remote_ts = [\"dynamic\"]", &format!("remote_ts = [\"{client}/32\"]\nstart_action = \"start\""))
}

/// The client's gateway for (i): the initiator of the other tests, but
/// waiting for the cluster, its own address against the internal network.
fn site_responder_config() -> String {
    let s = edit(initiator_config(addr::CLIENT), "encap = true\n", "");
    let s = edit(s, "start_action = \"start\"\n", "");
    edit(s, "local_ts = [\"dynamic\"]", &format!("local_ts = [\"{}/32\"]", addr::CLIENT))
}

/// (i) The cluster as initiator: with `start_action = "start"`, the node
/// serving the peer's segment (and only it) brings a site-to-site tunnel
/// to a Tandem gateway up from the external VIP; the IKE SA's SPI carries
/// that segment. `tandem initiate` on the other node is refused. Traffic
/// flows both ways; when the serving node is killed, the other takes the
/// tunnel over without a new IKE SA. A `tandem terminate` there keeps the
/// tunnel down until `tandem initiate`.
#[test]
fn the_cluster_initiates_a_site_to_site_tunnel() {
    if !prerequisites() {
        return;
    }
    let _serial = one_at_a_time();
    let started = Instant::now();
    let c = build("cluster_i", 2);
    let responder = Tandem::start_until(&c.client, &site_responder_config(), "data path up");
    let start = |i| Tandem::start_until(c.node(i), &site_node_config(i), "cluster node up");
    let mut nodes = [Some(start(1)), Some(start(2))];
    wait_converged(&live(&nodes));
    let sa = netns::wait_for_some("the tunnel the cluster started", T, || initiator_sa(&responder))
        .unwrap_or_else(|e| panic!("{e}\n--- responder:\n{}\n{}", responder.log(), node_logs(&nodes)));
    step(started, "the cluster brought the tunnel up");
    let seg = segment_of(addr::CLIENT);
    // The cluster initiated: its SPI is the initiator's, in the peer's segment.
    assert_eq!((hex_field(&sa, "spi_i") >> 58) + 1, seg, "the IKE SA's segment: {sa:?}");
    for (ns, dst) in [(&c.client, addr::SERVER), (&c.server, addr::CLIENT)] {
        ns.wait_ping(dst, T).unwrap_or_else(|e| {
            let sas = responder.ctl(&["sas"]);
            panic!("ping {dst}: {e}\n{}--- responder:\n{sas:?}\n{}", node_logs(&nodes), responder.log())
        });
    }
    step(started, "pings both ways");
    let serving = serving_node(&live(&nodes));
    let other = nodes[2 - serving].as_ref().expect("the other node");
    let refused = ctl_refused(other, &["initiate", "net"]);
    assert!(refused.contains("served by another node"), "{refused}");
    let ike_sas =
        |t: &Tandem| t.ctl(&["sas"]).get("ike_sas").and_then(Json::as_array).map_or(0, <[Json]>::len);
    assert_eq!(ike_sas(&responder), 1, "one IKE SA, from one node");

    let gap = kill_under_ping(&c, addr::SERVER, &mut nodes, serving);
    step(started, &format!("kill -9 node {serving}: longest ping gap {gap:?}"));
    assert!(gap < Duration::from_secs(1), "failover gap {gap:?}\n{}", node_logs(&nodes));
    // The node that took over found the SA mirrored and started none.
    std::thread::sleep(Duration::from_secs(2));
    let after = initiator_sa(&responder).expect("the IKE SA");
    assert_eq!(hex_field(&after, "spi_i"), hex_field(&sa, "spi_i"), "the same IKE SA");
    assert_eq!(ike_sas(&responder), 1, "no second IKE SA after the takeover");
    assert_eq!(child_field(&after, "replay_drops") + child_field(&after, "icv_drops"), 0, "{after:?}");

    // The operator's `tandem terminate` keeps the tunnel down (three
    // keep-up checks go by) until `tandem initiate` brings it back.
    let survivor = live(&nodes)[0];
    let done = survivor.ctl(&["terminate", "site"]);
    assert!(format!("{done:?}").contains("stays down"), "{done:?}");
    netns::wait_for("the terminated IKE SA gone", T, || ike_sas(&responder) == 0)
        .unwrap_or_else(|e| panic!("{e}\n{}", node_logs(&nodes)));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ike_sas(&responder), 0, "the tunnel came back by itself\n{}", node_logs(&nodes));
    survivor.ctl(&["initiate", "net"]);
    let again = netns::wait_for_some("the tunnel initiated again", T, || initiator_sa(&responder))
        .unwrap_or_else(|e| panic!("{e}\n{}", node_logs(&nodes)));
    assert_ne!(hex_field(&again, "spi_i"), hex_field(&sa, "spi_i"), "a new IKE SA");
    c.client.wait_ping(addr::SERVER, T).unwrap_or_else(|e| panic!("ping: {e}\n{}", node_logs(&nodes)));
    step(started, "terminate held the tunnel down until initiate brought it back");
    responder.stop();
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}
