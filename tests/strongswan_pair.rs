//! Keeps the network-namespace harness (tests/netns/) honest with two
//! strongSwan peers, both on the userspace ESP plugin kernel-libipsec: an
//! initiator in the client namespace, a responder in the gateway namespace
//! (later the responder is Tandem). Traffic goes client <-> server through
//! the tunnel: ping, iperf3 transfers with their byte counts checked, CHILD_SA
//! and IKE_SA rekeys while a transfer runs, and a clean delete.
//!
//! Needs root, `ip`, strongSwan (swanctl, charon, kernel-libipsec) and iperf3
//! (`.ci/install-interop.sh`); skips otherwise, or fails when
//! `TANDEM_NETNS_REQUIRED=1`.

mod netns;

use netns::iperf::{iperf_server, parse_iperf};
use netns::json::Json;
use netns::strongswan::{
    self, Auth, ChildConf, ConnConf, Cred, Pki, PoolConf, Secret, Strongswan, SwanctlConf,
};
use netns::{Netns, Process, Topology, TopologyOptions, addr};
use std::time::{Duration, Instant};

const PSK: &str = "tandem-interop-psk";
const T: Duration = Duration::from_secs(20);

fn prerequisites() -> bool {
    netns::require(&["ping", "iperf3", "ss", "kill", "sysctl"]) && strongswan::available()
}

fn end_bytes(v: &Json, which: &str) -> u64 {
    v.path(&format!("end.{which}.bytes"))
        .and_then(Json::as_u64)
        .unwrap_or_else(|| panic!("no end.{which}.bytes"))
}

/// iperf3 TCP transfers of `bytes` through the tunnel, both ways, each with
/// its byte count checked; returns (upload sent, download received).
///
/// iperf3 ends a `-n` test when the *sender* has written the bytes, so in the
/// upload the receiver's count misses what is still in flight (esnet/iperf
/// #382; libipsec queues deeply). In reverse mode (`-R`) the client is the
/// receiver and ends the test once it has *received* `bytes`: that is the
/// exact end-to-end check.
fn iperf_both_ways(client: &Netns, server: &Netns, bytes: u64) -> (u64, u64) {
    let n = bytes.to_string();
    let limit = Duration::from_secs(60);

    let _srv = iperf_server(server);
    let up = parse_iperf(
        &client.exec_timeout(&["iperf3", "-c", addr::SERVER, "-n", &n, "-J"], limit).expect("iperf3"),
    );
    let (sent, received) = (end_bytes(&up, "sum_sent"), end_bytes(&up, "sum_received"));
    assert!(sent >= bytes, "upload: iperf3 sent {sent} bytes, asked for {bytes}");
    assert!(received > 0 && received <= sent, "upload: receiver got {received} of {sent} bytes");

    let _srv = iperf_server(server);
    let down = parse_iperf(
        &client.exec_timeout(&["iperf3", "-c", addr::SERVER, "-n", &n, "-R", "-J"], limit).expect("iperf3"),
    );
    let (sent_r, received_r) = (end_bytes(&down, "sum_sent"), end_bytes(&down, "sum_received"));
    assert!(received_r >= bytes, "download: client received {received_r} bytes, expected {bytes}");
    assert!(sent_r >= received_r, "download: server sent {sent_r} < received {received_r}");
    (sent, received_r)
}

/// Starts `iperf3 -R -t secs -i 0.5 -J` in the background (one-shot server
/// included); see [`check_steady`].
fn iperf_background(client: &Netns, server: &Netns, secs: u32) -> (Process, Process) {
    let srv = iperf_server(server);
    let t = secs.to_string();
    let cli =
        client.spawn(&["iperf3", "-c", addr::SERVER, "-R", "-t", &t, "-i", "0.5", "-J"]).expect("iperf3");
    (srv, cli)
}

/// Waits for a background iperf3 and checks that the TCP session survived:
/// no error, and every 0.5 s interval moved data (no stall).
fn check_steady(mut cli: Process, secs: u32) -> u64 {
    let status = cli.wait_timeout(Duration::from_secs(u64::from(secs) + 20)).expect("iperf3 to finish");
    let out = cli.log();
    assert!(status.success(), "iperf3 failed ({status}):\n{out}");
    let v = parse_iperf(&out);
    let intervals = v.get("intervals").and_then(Json::as_array).expect("intervals");
    assert!(intervals.len() >= 2 * secs as usize - 1, "only {} intervals", intervals.len());
    for (i, iv) in intervals.iter().enumerate() {
        let b = iv.path("sum.bytes").and_then(Json::as_u64).unwrap_or(0);
        assert!(b > 0, "iperf3 interval {i} moved no data (TCP stalled):\n{out}");
    }
    end_bytes(&v, "sum_received")
}

/// Prints a timestamped progress line (elapsed since the test started).
fn step(started: Instant, what: &str) {
    eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
}

fn assert_clean_logs(peers: &[&Strongswan]) {
    for ss in peers {
        let errors = ss.datapath_errors();
        assert!(errors.is_empty(), "{}: ESP data path errors:\n{}", ss.name(), errors.join("\n"));
    }
}

/// (a) PSK, aes256gcm16-prfsha256-x25519 / aes256gcm16, no NAT.
#[test]
fn strongswan_pair_psk_gcm() {
    if !prerequisites() {
        return;
    }
    let started = Instant::now();
    const IKE: &str = "aes256gcm16-prfsha256-x25519";
    const ESP: &str = "aes256gcm16";
    let topo = Topology::client_gateway_server("ss_pair_psk").expect("topology");
    let client_ts = format!("{}/32", addr::CLIENT);

    // no plain route: the client reaches the server only through the tunnel
    assert!(!topo.client.succeeds(&["ping", "-c", "1", "-W", "1", addr::SERVER], Duration::from_secs(3)));

    step(started, "topology up");
    let gw = Strongswan::start(&topo.gateway, "gw").expect("start responder");
    let mut rw = ConnConf::new("rw", addr::GATEWAY_EXT, "%any", IKE).child(ChildConf::new(
        "net",
        addr::INT_NET,
        &client_ts,
        ESP,
    ));
    rw.mobike = false;
    rw.local = Auth::psk(Some(addr::GATEWAY_EXT));
    gw.load(&SwanctlConf { connections: vec![rw], secrets: vec![Secret::psk(PSK)], pools: vec![] })
        .expect("load responder");

    let client = Strongswan::start(&topo.client, "client").expect("start initiator");
    let mut conn = ConnConf::new("tdm", addr::CLIENT, addr::GATEWAY_EXT, IKE).child(ChildConf::new(
        "net",
        &client_ts,
        addr::INT_NET,
        ESP,
    ));
    conn.local = Auth::psk(Some(addr::CLIENT));
    conn.remote = Auth::psk(Some(addr::GATEWAY_EXT));
    client
        .load(&SwanctlConf { connections: vec![conn], secrets: vec![Secret::psk(PSK)], pools: vec![] })
        .expect("load initiator");
    step(started, "both charons up and loaded");
    client.initiate("net").expect("initiate");
    step(started, "CHILD_SA up");

    let sas = client.sas().expect("list-sas");
    let ike = sas.iter().find(|s| s.name == "tdm").expect("IKE_SA tdm");
    assert!(ike.established());
    assert_eq!(ike.get("encr-alg"), Some("AES_GCM_16"));
    assert_eq!(ike.get("encr-keysize"), Some("256"));
    assert_eq!(ike.get("prf-alg"), Some("PRF_HMAC_SHA2_256"));
    assert_eq!(ike.get("dh-group"), Some("CURVE_25519"));
    // libipsec fakes a NAT to force UDP encapsulation: IKE moves to 4500
    assert_eq!(ike.remote_port(), Some(4500));
    let child = ike.child("net").expect("CHILD_SA net");
    assert!(child.installed());
    assert!(child.encap(), "kernel-libipsec always encapsulates ESP in UDP");
    assert_eq!(child.get("encr-alg"), Some("AES_GCM_16"));
    assert_eq!(child.local_ts(), std::slice::from_ref(&client_ts));
    assert_eq!(child.remote_ts(), [addr::INT_NET.to_string()]);
    let gw_child = gw.wait_child_installed("net", T).expect("responder CHILD_SA");
    assert_eq!(gw_child.spi_in(), child.spi_out());

    topo.client.wait_ping(addr::SERVER, T).expect("ping through the tunnel");
    topo.client.ping(addr::SERVER, 5).expect("5 pings through the tunnel");
    step(started, "pings through the tunnel");

    let (up, down) = iperf_both_ways(&topo.client, &topo.server, 20 << 20);
    step(started, &format!("iperf3 through the tunnel: {up} bytes up, {down} bytes down"));

    // rekeys while a TCP transfer runs: the session must not stall
    let (_srv, cli) = iperf_background(&topo.client, &topo.server, 3);
    std::thread::sleep(Duration::from_millis(700));
    let (old, new) = client.rekey_child_and_wait("net", T).expect("rekey CHILD_SA");
    assert_ne!(old.spi_out(), new.spi_out());
    let (old, new) = client.rekey_ike_and_wait("tdm", T).expect("rekey IKE_SA");
    assert_ne!(old.spis(), new.spis());
    step(started, "CHILD_SA and IKE_SA rekeyed");
    let during = check_steady(cli, 3);
    step(started, &format!("iperf3 across CHILD_SA and IKE_SA rekeys: {during} bytes, no stall"));
    let child = client.wait_child_installed("net", T).expect("CHILD_SA after rekeys");
    gw.wait_child_installed("net", T).expect("responder CHILD_SA after rekeys");
    topo.client.ping(addr::SERVER, 3).expect("ping after the rekeys");
    assert!(child.bytes_in() > 0 && child.packets_out() > 0, "new CHILD_SA carries the traffic");

    client.terminate("tdm").expect("terminate");
    client.wait_no_sas(T).expect("initiator SAs gone");
    gw.wait_no_sas(T).expect("responder SAs gone");
    assert!(!topo.client.succeeds(&["ping", "-c", "1", "-W", "1", addr::SERVER], Duration::from_secs(3)));
    assert_clean_logs(&[&client, &gw]);
    step(started, "deleted; strongswan_pair_psk_gcm done");
}

/// Client behind a NAT (random source ports), ECDSA P-384 certificates,
/// chacha20poly1305-prfsha384-ecp384 / chacha20poly1305, a virtual IP from
/// the responder's pool; the responder deletes the IKE_SA.
#[test]
fn strongswan_pair_nat_vip_ecdsa() {
    if !prerequisites() || !netns::require_tool("openssl") || !netns::require_nat() {
        return;
    }
    let started = Instant::now();
    const IKE: &str = "chacha20poly1305-prfsha384-ecp384";
    const ESP: &str = "chacha20poly1305";
    const POOL: &str = "10.3.0.0/28";
    let opts = TopologyOptions { nat: true, nat_random_ports: true, ..TopologyOptions::default() };
    let topo = Topology::build("ss_pair_nat", &opts).expect("topology");

    step(started, "topology up");
    let pki = Pki::new(&topo.gateway.dir().join("pki")).expect("CA");
    let (gw_crt, gw_key) =
        pki.issue("gateway", "gateway.tandem.test", "DNS:gateway.tandem.test").expect("gw cert");
    let (cl_crt, cl_key) =
        pki.issue("client", "client.tandem.test", "DNS:client.tandem.test").expect("client cert");

    let gw = Strongswan::start(&topo.gateway, "gw").expect("start responder");
    gw.copy_cred(Cred::X509, &gw_crt).expect("cred");
    gw.copy_cred(Cred::Private, &gw_key).expect("cred");
    gw.copy_cred(Cred::X509Ca, &pki.ca_cert()).expect("cred");
    let mut rw = ConnConf::new("rw", addr::GATEWAY_EXT, "%any", IKE).child(ChildConf::new(
        "net",
        addr::INT_NET,
        "dynamic",
        ESP,
    ));
    rw.mobike = false;
    rw.pools = vec!["vips".into()];
    rw.local = Auth::cert(Some("gateway.tandem.test"), "gateway.crt");
    rw.remote = Auth::cert_from_ca(None, "ca.crt");
    let pool = PoolConf { name: "vips".into(), addrs: POOL.into(), dns: vec![] };
    gw.load(&SwanctlConf { connections: vec![rw], secrets: vec![], pools: vec![pool] })
        .expect("load responder");

    let client = Strongswan::start(&topo.client, "client").expect("start initiator");
    client.copy_cred(Cred::X509, &cl_crt).expect("cred");
    client.copy_cred(Cred::Private, &cl_key).expect("cred");
    client.copy_cred(Cred::X509Ca, &pki.ca_cert()).expect("cred");
    let mut conn = ConnConf::new("tdm", addr::NAT_CLIENT, addr::GATEWAY_EXT, IKE).child(ChildConf::new(
        "net",
        "dynamic",
        addr::INT_NET,
        ESP,
    ));
    conn.vips = vec!["0.0.0.0".into()];
    conn.dpd_delay = Some("2s".into());
    conn.local = Auth::cert(Some("client.tandem.test"), "client.crt");
    conn.remote = Auth::cert_from_ca(Some("gateway.tandem.test"), "ca.crt");
    client
        .load(&SwanctlConf { connections: vec![conn], secrets: vec![], pools: vec![] })
        .expect("load initiator");
    step(started, "PKI made, both charons up and loaded");
    client.initiate("net").expect("initiate");
    step(started, "CHILD_SA up");

    let ike = client.wait_ike_established("tdm", T).expect("IKE_SA");
    assert_eq!(ike.get("encr-alg"), Some("CHACHA20_POLY1305"));
    assert_eq!(ike.get("dh-group"), Some("ECP_384"));
    assert_eq!(ike.get("nat-local"), Some("yes"), "client must see itself behind the NAT");
    let vip = ike.fields.list("local-vips").first().cloned().expect("a virtual IP");
    assert!(vip.starts_with("10.3.0."), "virtual IP {vip} from the pool {POOL}");
    let child = ike.child("net").expect("CHILD_SA");
    assert_eq!(child.local_ts(), [format!("{vip}/32")]);

    let gw_ike = gw.wait_ike_established("rw", T).expect("responder IKE_SA");
    assert_eq!(gw_ike.get("remote-host"), Some(addr::NAT_OUTSIDE));
    assert_eq!(gw_ike.get("nat-remote"), Some("yes"));
    assert_eq!(gw_ike.get("remote-id"), Some("client.tandem.test"));
    let remote_port = gw_ike.remote_port().expect("remote port");
    eprintln!("responder sees the client at {}:{remote_port}", addr::NAT_OUTSIDE);

    // the VIP sits on the client's ipsec0 TUN device, and is the source
    let ipsec0 = topo.client.ip(&["-br", "addr", "show", "dev", "ipsec0"]).expect("ipsec0");
    assert!(ipsec0.contains(&vip), "VIP {vip} on ipsec0: {ipsec0}");
    topo.client.wait_ping(addr::SERVER, T).expect("ping through the tunnel");
    topo.server
        .exec(&["ping", "-n", "-q", "-c", "2", "-W", "1", &vip])
        .expect("server pings the client's VIP");

    let (up, down) = iperf_both_ways(&topo.client, &topo.server, 8 << 20);
    step(started, &format!("iperf3 through NAT + tunnel: {up} bytes up, {down} bytes down"));

    gw.terminate("rw").expect("responder deletes the IKE_SA");
    client.wait_no_sas(T).expect("initiator SAs gone");
    gw.wait_no_sas(T).expect("responder SAs gone");
    assert_clean_logs(&[&client, &gw]);
    step(started, "deleted by the responder; strongswan_pair_nat_vip_ecdsa done");
}
