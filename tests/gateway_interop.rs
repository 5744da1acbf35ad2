//! `tandem run` against a real strongSwan: a strongSwan initiator (with its
//! userspace ESP plugin kernel-libipsec, as the kernel here has no ESP) in
//! the client namespace connects to Tandem in the gateway namespace, and
//! traffic goes client <-> server through the tunnel: ping, iperf3 with its
//! byte count checked, CHILD_SA and IKE_SA rekeys under a running TCP
//! transfer, and a clean delete. Tandem's ESP is its own, in userspace.
//!
//! Needs root, `ip`, strongSwan and iperf3 (`.ci/install-interop.sh`);
//! skips otherwise, or fails when `TANDEM_NETNS_REQUIRED=1`.

mod netns;

use netns::json::Json;
use netns::strongswan::{self, Auth, ChildConf, ConnConf, Secret, Strongswan, SwanctlConf};
use netns::{Netns, Process, Topology, addr};
use std::time::{Duration, Instant};

const PSK: &str = "tandem-interop-psk";
const T: Duration = Duration::from_secs(20);

fn prerequisites() -> bool {
    netns::require(&["ping", "iperf3", "ss", "kill", "sysctl"]) && strongswan::available()
}

fn step(started: Instant, what: &str) {
    eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
}

/// A Tandem gateway running in `ns` from the TOML `config`.
struct Tandem {
    process: Process,
}

impl Tandem {
    fn start(ns: &Netns, config: &str) -> Tandem {
        let path = ns.dir().join("gateway.toml");
        std::fs::write(&path, config).expect("write gateway.toml");
        let path = path.to_str().expect("UTF-8 path").to_owned();
        let bin = env!("CARGO_BIN_EXE_tandem");
        let check = ns.exec(&[bin, "check", "-c", &path]);
        assert!(check.is_ok(), "tandem check refused the config: {check:?}");
        let mut process =
            ns.spawn_env(&[bin, "run", "-c", &path], &[("RUST_LOG", "debug".as_ref())]).expect("tandem run");
        netns::wait_for("tandem's data path", T, || process.log().contains("data path up"))
            .unwrap_or_else(|e| panic!("{e}\n{}", process.log()));
        assert!(process.is_running(), "tandem exited:\n{}", process.log());
        Tandem { process }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// SIGTERM, then the exit status must be success.
    fn stop(mut self) -> String {
        self.process.signal("TERM").expect("SIGTERM");
        let status = self.process.wait_timeout(Duration::from_secs(10)).expect("tandem exits on SIGTERM");
        let log = self.process.log();
        assert!(status.success(), "tandem failed ({status}):\n{log}");
        log
    }
}

/// The gateway's TOML: one connection for road warriors authenticating
/// with the PSK, the server network behind it.
fn gateway_config(ike: &str, esp: &str, extra_conn: &str, extra: &str) -> String {
    format!(
        r#"
[[connections]]
name = "rw"
local_addrs = ["{gw}"]
proposals = ["{ike}"]
dpd_delay = "10s"
{extra_conn}

[connections.local]
auth = "psk"
id = "{gw}"

[connections.remote]
auth = "psk"

[[connections.children]]
name = "net"
local_ts = ["{int}"]
remote_ts = ["dynamic"]
esp_proposals = ["{esp}"]

[[secrets.ike]]
secret = "{PSK}"

[dataplane]
tun_name = "tandem0"
mtu = 1400

[log]
level = "debug"
{extra}
"#,
        gw = addr::GATEWAY_EXT,
        int = addr::INT_NET,
    )
}

fn parse_iperf(json: &str) -> Json {
    let v = Json::parse(json).unwrap_or_else(|e| panic!("iperf3 output is not JSON ({e}):\n{json}"));
    if let Some(e) = v.get("error").and_then(Json::as_str) {
        panic!("iperf3: {e}");
    }
    v
}

fn iperf_server(server: &Netns) -> Process {
    let p = server.spawn(&["iperf3", "-s", "-1", "-B", addr::SERVER]).expect("start iperf3 server");
    netns::wait_for("iperf3 server listening on 5201", T, || {
        server.exec(&["ss", "-Hltn", "sport = :5201"]).map(|o| !o.trim().is_empty()).unwrap_or(false)
    })
    .expect("iperf3 server");
    p
}

/// A download of exactly `bytes` through the tunnel (reverse mode: the
/// client receives and ends the test only once it has them all).
fn iperf_download(client: &Netns, server: &Netns, bytes: u64) -> u64 {
    let _srv = iperf_server(server);
    let n = bytes.to_string();
    let out = client
        .exec_timeout(&["iperf3", "-c", addr::SERVER, "-n", &n, "-R", "-J"], Duration::from_secs(60))
        .expect("iperf3");
    let v = parse_iperf(&out);
    let received = v.path("end.sum_received.bytes").and_then(Json::as_u64).expect("received bytes");
    assert!(received >= bytes, "client received {received} bytes, expected {bytes}");
    received
}

/// A strongSwan road warrior in the client namespace with a PSK.
fn client(topo: &Topology, ike: &str, esp: &str) -> Strongswan {
    let client = Strongswan::start(&topo.client, "client").expect("start initiator");
    let client_ts = format!("{}/32", addr::CLIENT);
    let mut conn = ConnConf::new("tdm", addr::CLIENT, addr::GATEWAY_EXT, ike).child(ChildConf::new(
        "net",
        &client_ts,
        addr::INT_NET,
        esp,
    ));
    conn.local = Auth::psk(Some(addr::CLIENT));
    conn.remote = Auth::psk(Some(addr::GATEWAY_EXT));
    client
        .load(&SwanctlConf { connections: vec![conn], secrets: vec![Secret::psk(PSK)], pools: vec![] })
        .expect("load initiator");
    client
}

/// Runs one road-warrior scenario end to end: tunnel up, ping, a download
/// with its byte count checked, rekeys of the CHILD_SA and of the IKE SA
/// with traffic after each, and a clean delete.
fn road_warrior(test: &str, ike: &str, esp: &str) {
    if !prerequisites() {
        return;
    }
    let started = Instant::now();
    let topo = Topology::client_gateway_server(test).expect("topology");
    let gw = Tandem::start(&topo.gateway, &gateway_config(ike, esp, "", ""));
    step(started, "tandem up");
    let client = client(&topo, ike, esp);
    if let Err(e) = client.initiate("net") {
        panic!("initiate: {e}\n--- tandem:\n{}\n--- charon:\n{}", gw.log(), client.log_tail(60));
    }
    step(started, "CHILD_SA up");
    let child = client.wait_child_installed("net", T).expect("CHILD_SA");
    assert!(child.encap());
    if let Err(e) = topo.client.wait_ping(addr::SERVER, T) {
        panic!("ping: {e}\n--- tandem:\n{}", gw.log());
    }
    topo.client.ping(addr::SERVER, 5).expect("5 pings through the tunnel");
    step(started, "pings through the tunnel");
    let down = iperf_download(&topo.client, &topo.server, 8 << 20);
    step(started, &format!("iperf3: {down} bytes down through Tandem"));

    let (old, new) = client.rekey_child_and_wait("net", T).expect("rekey CHILD_SA");
    assert_ne!(old.spi_out(), new.spi_out());
    topo.client.ping(addr::SERVER, 3).expect("ping after the CHILD_SA rekey");
    let (old, new) = client.rekey_ike_and_wait("tdm", T).expect("rekey IKE_SA");
    assert_ne!(old.spis(), new.spis());
    topo.client.ping(addr::SERVER, 3).expect("ping after the IKE_SA rekey");
    step(started, "CHILD_SA and IKE_SA rekeyed, traffic flows");

    client.terminate("tdm").expect("terminate");
    client.wait_no_sas(T).expect("initiator SAs gone");
    assert!(!topo.client.succeeds(&["ping", "-c", "1", "-W", "1", addr::SERVER], Duration::from_secs(3)));
    let errors = client.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    let log = gw.stop();
    assert!(log.contains("IKE SA deleted"), "tandem saw the delete:\n{log}");
    step(started, "deleted, tandem stopped cleanly");
}

/// (a) PSK with aes256gcm16-prfsha256-x25519 / aes256gcm16.
#[test]
fn strongswan_client_psk_aes_gcm() {
    road_warrior("gw_psk_gcm", "aes256gcm16-prfsha256-x25519", "aes256gcm16");
}

/// (c) CBC + HMAC with a MODP group: aes128-sha256-modp2048 / aes128-sha256.
#[test]
fn strongswan_client_psk_aes_cbc_hmac() {
    road_warrior("gw_psk_cbc", "aes128-sha256-modp2048", "aes128-sha256");
}
