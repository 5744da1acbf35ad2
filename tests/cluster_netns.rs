//! A Tandem cluster on real links: two `tandem run` nodes in their own
//! namespaces capture the frames sent to the cluster MACs from AF_PACKET
//! sockets on an external and an internal bridge (multicast snooping off),
//! and a real strongSwan road warrior (userspace ESP, kernel-libipsec)
//! connects to the external VIP. Traffic goes client <-> server through the
//! internal VIP. Then the node serving the client is killed with SIGKILL
//! under a TCP transfer and a 10 ms ping, and revived.
//!
//! Needs root, `ip`, `ethtool`, strongSwan and iperf3
//! (`.ci/install-interop.sh`); skips otherwise, or fails when
//! `TANDEM_NETNS_REQUIRED=1`.

mod netns;

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

fn step(started: Instant, what: &str) {
    eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
}

/// Node `i`'s configuration: the same connection on every node, the sync
/// channels over the internal network's own addresses.
fn node_config(i: usize, nodes: usize) -> String {
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

/// The node (1-based) whose status lists the client's segment.
fn serving_node(nodes: &[&Tandem]) -> usize {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["segment-of", addr::CLIENT, "--count", &SEGMENTS.to_string()])
        .output()
        .expect("tandem segment-of");
    let seg: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a segment number");
    nodes.iter().position(|t| segments_of(&cluster_status(t)).contains(&seg)).expect("an owner") + 1
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

fn iperf_server(server: &Netns) -> Process {
    let p = server.spawn(&["iperf3", "-s", "-1", "-B", addr::SERVER]).expect("start iperf3 server");
    netns::wait_for("iperf3 server listening on 5201", T, || {
        server.exec(&["ss", "-Hltn", "sport = :5201"]).map(|o| !o.trim().is_empty()).unwrap_or(false)
    })
    .expect("iperf3 server");
    p
}

/// The longest silence between two echo replies of `ping -D` output.
fn longest_gap(ping: &str) -> Duration {
    let stamps: Vec<f64> = ping
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect();
    let gap = stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Duration::from_secs_f64(gap)
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
/// ended well) and the longest gap between echo replies.
fn finish(mut iperf: Process, mut ping: Process) -> (u64, Duration) {
    let status = iperf.wait_timeout(Duration::from_secs(30)).expect("iperf3 ends");
    let out = iperf.log();
    let v = Json::parse(out.trim()).unwrap_or_else(|e| panic!("iperf3 output ({e}):\n{out}"));
    assert!(status.success() && v.get("error").is_none(), "the TCP transfer broke:\n{out}");
    let received = v.path("end.sum_received.bytes").and_then(Json::as_u64).unwrap_or(0);
    assert!(received > 0, "{out}");
    let _ = ping.wait_timeout(Duration::from_secs(30));
    (received, longest_gap(&ping.log()))
}

/// (a) The tunnel comes up through the external VIP, ping and a TCP
/// transfer go through the internal VIP, and only the serving node
/// decrypts and encrypts while the other only counts.
#[test]
fn strongswan_client_through_a_two_node_cluster() {
    if !prerequisites() {
        return;
    }
    let started = Instant::now();
    let c = build("cluster_a", 2);
    let n1 = start_node(&c, 1, 2);
    let n2 = start_node(&c, 2, 2);
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
    n1.stop();
    n2.stop();
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
    let (received, gap) = finish(iperf, ping);
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
    let (received, gap) = finish(iperf, ping);
    step(started, &format!("TCP went on ({received} bytes), longest ping gap {gap:?}"));
    assert!(gap < Duration::from_secs(1), "reintegration gap {gap:?}");
    let child_after = ss.wait_child_installed("net", T).expect("CHILD_SA");
    assert_eq!(child_now.spi_in(), child_after.spi_in(), "no CHILD_SA rekey on reintegration");
    let errors = ss.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    for t in nodes.into_iter().flatten() {
        t.stop();
    }
}
