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

use netns::iperf::{iperf_server, parse_iperf};
use netns::json::Json;
use netns::strongswan::{
    self, Auth, ChildConf, ConnConf, Cred, Pki, PoolConf, Secret, Strongswan, SwanctlConf,
};
use netns::tandem::Tandem;
use netns::{Netns, Topology, TopologyOptions, addr};
use std::path::Path;
use std::time::{Duration, Instant};

const PSK: &str = "tandem-interop-psk";
const T: Duration = Duration::from_secs(20);

fn prerequisites() -> bool {
    netns::require(&["ping", "iperf3", "ss", "kill", "sysctl"]) && strongswan::available()
}

fn step(started: Instant, what: &str) {
    eprintln!("[{:6.2}s] {what}", started.elapsed().as_secs_f64());
}

/// What a road-warrior scenario varies.
#[derive(Clone, Copy, Default)]
struct Scenario {
    ike: &'static str,
    esp: &'static str,
    /// The client sits behind a masquerading NAT (random ports).
    nat: bool,
    /// ECDSA certificates instead of the PSK.
    certs: bool,
    /// The client asks for a virtual IP from Tandem's pool.
    vip: bool,
}

/// Certificates from a throw-away CA: (CA, gateway cert, gateway key in
/// PKCS#8, client cert, client key).
struct Certs {
    ca: std::path::PathBuf,
    gw_crt: std::path::PathBuf,
    gw_key: std::path::PathBuf,
    cl_crt: std::path::PathBuf,
    cl_key: std::path::PathBuf,
}

fn certs(dir: &Path) -> Certs {
    let pki = Pki::new(dir).expect("CA");
    let (gw_crt, gw_sec1) =
        pki.issue("gateway", "gateway.tandem.test", "DNS:gateway.tandem.test").expect("cert");
    let (cl_crt, cl_key) = pki.issue("client", "client.tandem.test", "DNS:client.tandem.test").expect("cert");
    // Tandem reads PKCS#8 keys; the CA tool writes SEC1.
    let gw_key = dir.join("gateway.p8");
    let (src, dst) = (gw_sec1.to_str().expect("path"), gw_key.to_str().expect("path"));
    netns::host(&["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", src, "-out", dst]).expect("PKCS#8");
    let mut perm = std::fs::metadata(&gw_key).expect("key").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&gw_key, perm).expect("chmod");
    Certs { ca: pki.ca_cert(), gw_crt, gw_key, cl_crt, cl_key }
}

/// The gateway's TOML: one connection for road warriors, the server
/// network behind it.
fn gateway_config(sc: &Scenario, certs: Option<&Certs>) -> String {
    let (local, remote, secrets) = match certs {
        Some(c) => (
            format!("auth = \"pubkey\"\nid = \"gateway.tandem.test\"\ncerts = [{:?}]", c.gw_crt),
            format!("auth = \"pubkey\"\ncacerts = [{:?}]", c.ca),
            format!("[[secrets.private]]\nfile = {:?}", c.gw_key),
        ),
        None => (
            format!("auth = \"psk\"\nid = \"{}\"", addr::GATEWAY_EXT),
            "auth = \"psk\"".to_owned(),
            format!("[[secrets.ike]]\nsecret = \"{PSK}\""),
        ),
    };
    let (pools, pool) = if sc.vip {
        ("pools = [\"vips\"]", "[pools.vips]\naddrs = \"10.3.0.0/28\"\ndns = [\"198.51.100.53\"]")
    } else {
        ("", "")
    };
    format!(
        r#"
[[connections]]
name = "rw"
local_addrs = ["{gw}"]
proposals = ["{ike}"]
dpd_delay = "2s"
{pools}

[connections.local]
{local}

[connections.remote]
{remote}

[[connections.children]]
name = "net"
local_ts = ["{int}"]
remote_ts = ["dynamic"]
esp_proposals = ["{esp}"]

{secrets}

{pool}

[dataplane]
tun_name = "tandem0"
mtu = 1400

[log]
level = "debug"
"#,
        gw = addr::GATEWAY_EXT,
        int = addr::INT_NET,
        ike = sc.ike,
        esp = sc.esp,
    )
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

/// A strongSwan road warrior in the client namespace.
fn client(topo: &Topology, sc: &Scenario, certs: Option<&Certs>) -> Strongswan {
    let client = Strongswan::start(&topo.client, "client").expect("start initiator");
    let local_addr = if sc.nat { addr::NAT_CLIENT } else { addr::CLIENT };
    let mut conn = ConnConf::new("tdm", local_addr, addr::GATEWAY_EXT, sc.ike).child(ChildConf::new(
        "net",
        "dynamic",
        addr::INT_NET,
        sc.esp,
    ));
    conn.dpd_delay = Some("2s".into());
    if sc.vip {
        conn.vips = vec!["0.0.0.0".into()];
    }
    let secrets = match certs {
        Some(c) => {
            client.copy_cred(Cred::X509, &c.cl_crt).expect("cred");
            client.copy_cred(Cred::Private, &c.cl_key).expect("cred");
            client.copy_cred(Cred::X509Ca, &c.ca).expect("cred");
            conn.local = Auth::cert(Some("client.tandem.test"), "client.crt");
            conn.remote = Auth::cert_from_ca(Some("gateway.tandem.test"), "ca.crt");
            vec![]
        }
        None => {
            conn.local = Auth::psk(Some(local_addr));
            conn.remote = Auth::psk(Some(addr::GATEWAY_EXT));
            vec![Secret::psk(PSK)]
        }
    };
    client.load(&SwanctlConf { connections: vec![conn], secrets, pools: vec![] }).expect("load initiator");
    client
}

/// Runs one road-warrior scenario end to end: tunnel up, ping, a download
/// with its byte count checked, rekeys of the CHILD_SA and of the IKE SA
/// with traffic after each, DPD exchanges, and a clean delete.
fn road_warrior(test: &str, sc: Scenario) {
    if !prerequisites() || (sc.nat && !netns::require_nat()) || (sc.certs && !netns::require_tool("openssl"))
    {
        return;
    }
    let started = Instant::now();
    let opts = TopologyOptions { nat: sc.nat, nat_random_ports: sc.nat, ..TopologyOptions::default() };
    let topo = Topology::build(test, &opts).expect("topology");
    let certs = sc.certs.then(|| certs(&topo.gateway.dir().join("pki")));
    let gw = Tandem::start(&topo.gateway, &gateway_config(&sc, certs.as_ref()));
    step(started, "tandem up");
    let client = client(&topo, &sc, certs.as_ref());
    if let Err(e) = client.initiate("net") {
        panic!("initiate: {e}\n--- tandem:\n{}\n--- charon:\n{}", gw.log(), client.log_tail(60));
    }
    step(started, "CHILD_SA up");
    let ike = client.wait_ike_established("tdm", T).expect("IKE_SA");
    let child = ike.child("net").expect("CHILD_SA");
    assert!(child.encap());
    if sc.vip {
        let vip = ike.fields.list("local-vips").first().cloned().expect("a virtual IP");
        assert!(vip.starts_with("10.3.0."), "virtual IP {vip} from Tandem's pool");
        assert_eq!(child.local_ts(), [format!("{vip}/32")]);
        topo.client.wait_ping(addr::SERVER, T).expect("ping from the VIP");
        topo.server.exec(&["ping", "-n", "-q", "-c", "2", "-W", "1", &vip]).expect("server pings the VIP");
    }
    if let Err(e) = topo.client.wait_ping(addr::SERVER, T) {
        panic!("ping: {e}\n--- tandem:\n{}", gw.log());
    }
    topo.client.ping(addr::SERVER, 5).expect("5 pings through the tunnel");
    step(started, "pings through the tunnel");
    let down = iperf_download(&topo.client, &topo.server, 8 << 20);
    step(started, &format!("iperf3: {down} bytes down through Tandem"));
    // `tandem sas` shows the SA pair strongSwan shows, with the traffic.
    let sas = gw.ctl(&["sas"]);
    let sa = sas.path("ike_sas.0").expect("one IKE SA");
    let gw_child = sa.path("children.0").expect("one CHILD_SA");
    let field = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).unwrap_or_default().to_owned();
    assert_eq!(field(gw_child, "spi_in"), child.spi_out(), "{sas:?}");
    assert_eq!(field(gw_child, "spi_out"), child.spi_in());
    let bytes_out = gw_child.get("bytes_out").and_then(Json::as_u64).unwrap_or(0);
    assert!(bytes_out >= down, "Tandem counted {bytes_out} bytes out, iperf3 received {down}");
    assert_eq!(gw_child.get("replay_drops").and_then(Json::as_u64), Some(0));
    assert_eq!(gw_child.get("icv_drops").and_then(Json::as_u64), Some(0));
    assert_eq!(gw.ctl(&["status"]).get("ike_sas").and_then(Json::as_u64), Some(1));

    let (old, new) = client.rekey_child_and_wait("net", T).expect("rekey CHILD_SA");
    assert_ne!(old.spi_out(), new.spi_out());
    topo.client.ping(addr::SERVER, 3).expect("ping after the CHILD_SA rekey");
    let (old, new) = client.rekey_ike_and_wait("tdm", T).expect("rekey IKE_SA");
    assert_ne!(old.spis(), new.spis());
    topo.client.ping(addr::SERVER, 3).expect("ping after the IKE_SA rekey");
    step(started, "CHILD_SA and IKE_SA rekeyed, traffic flows");

    // A reload of the unchanged file keeps the SAs.
    let reloaded = gw.ctl(&["reload"]);
    let message = reloaded.get("message").and_then(Json::as_str).unwrap_or_default().to_owned();
    assert!(message.contains("0 IKE SA(s) no longer match"), "{message}");
    topo.client.ping(addr::SERVER, 2).expect("ping after a reload");

    // Both sides check liveness every 2 s of silence: after a quiet spell
    // the SAs are still up, and strongSwan logged its DPD exchanges.
    // (Only liveness checks make INFORMATIONAL exchanges while idle.)
    let before = client.log_lines_matching(&["INFORMATIONAL"]).len();
    std::thread::sleep(Duration::from_secs(5));
    client.wait_child_installed("net", T).expect("CHILD_SA alive after idle DPD");
    let after = client.log_lines_matching(&["INFORMATIONAL"]).len();
    assert!(after > before, "liveness checks while idle:\n{}", client.log_tail(40));
    topo.client.ping(addr::SERVER, 2).expect("ping after DPD");

    if sc.nat {
        // The gateway ends it: `tandem terminate` by connection name.
        gw.ctl(&["terminate", "rw"]);
    } else {
        client.terminate("tdm").expect("terminate");
    }
    client.wait_no_sas(T).expect("initiator SAs gone");
    assert!(!topo.client.succeeds(&["ping", "-c", "1", "-W", "1", addr::SERVER], Duration::from_secs(3)));
    assert_eq!(gw.ctl(&["status"]).get("ike_sas").and_then(Json::as_u64), Some(0));
    let errors = client.datapath_errors();
    assert!(errors.is_empty(), "strongSwan ESP errors:\n{}", errors.join("\n"));
    let log = gw.stop();
    assert!(log.contains("IKE SA deleted"), "tandem saw the delete:\n{log}");
    step(started, "deleted, tandem stopped cleanly");
}

/// (a) PSK with aes256gcm16-prfsha256-x25519 / aes256gcm16.
#[test]
fn strongswan_client_psk_aes_gcm() {
    road_warrior(
        "gw_psk_gcm",
        Scenario { ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", ..Scenario::default() },
    );
}

/// (b) ECDSA certificates with chacha20poly1305-prfsha384-ecp384.
#[test]
fn strongswan_client_ecdsa_chacha20() {
    let sc = Scenario {
        ike: "chacha20poly1305-prfsha384-ecp384",
        esp: "chacha20poly1305",
        certs: true,
        ..Scenario::default()
    };
    road_warrior("gw_ecdsa", sc);
}

/// (c) CBC + HMAC with a MODP group: aes128-sha256-modp2048 / aes128-sha256.
#[test]
fn strongswan_client_psk_aes_cbc_hmac() {
    road_warrior(
        "gw_psk_cbc",
        Scenario { ike: "aes128-sha256-modp2048", esp: "aes128-sha256", ..Scenario::default() },
    );
}

/// (d) The client behind a masquerading NAT with random ports.
#[test]
fn strongswan_client_behind_nat() {
    let sc = Scenario {
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        nat: true,
        ..Scenario::default()
    };
    road_warrior("gw_nat", sc);
}

/// (e) A virtual IP from Tandem's pool (with certificates, behind the NAT).
#[test]
fn strongswan_client_virtual_ip() {
    let sc = Scenario {
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        nat: true,
        certs: true,
        vip: true,
    };
    road_warrior("gw_vip", sc);
}

/// Tandem as the initiator (`start_action = "start"`), site to site,
/// towards a strongSwan responder: the tunnel comes up by itself, traffic
/// flows both ways, and SIGTERM deletes the SAs at the responder. With
/// `vip`, Tandem asks for a virtual IP, puts it on its TUN device and
/// sources the tunnel's traffic from it.
fn tandem_initiator(test: &str, vip: bool) {
    if !prerequisites() {
        return;
    }
    let started = Instant::now();
    const IKE: &str = "aes256gcm16-prfsha256-x25519";
    const ESP: &str = "aes256gcm16";
    let topo = Topology::client_gateway_server(test).expect("topology");
    let responder = Strongswan::start(&topo.gateway, "gw").expect("start responder");
    let client_ts = if vip { "dynamic".to_owned() } else { format!("{}/32", addr::CLIENT) };
    let mut rw = ConnConf::new("site", addr::GATEWAY_EXT, "%any", IKE).child(ChildConf::new(
        "net",
        addr::INT_NET,
        &client_ts,
        ESP,
    ));
    rw.mobike = false;
    rw.local = Auth::psk(Some(addr::GATEWAY_EXT));
    let pools = if vip {
        rw.pools = vec!["vips".into()];
        vec![PoolConf { name: "vips".into(), addrs: "10.4.0.0/28".into(), dns: vec![] }]
    } else {
        vec![]
    };
    responder
        .load(&SwanctlConf { connections: vec![rw], secrets: vec![Secret::psk(PSK)], pools })
        .expect("load responder");
    let vips = if vip { r#"vips = ["0.0.0.0"]"# } else { "" };
    let config = format!(
        r#"
[[connections]]
name = "site"
local_addrs = ["{client}"]
remote_addrs = ["{gw}"]
proposals = ["{IKE}"]
{vips}

[connections.local]
auth = "psk"
id = "{client}"

[connections.remote]
auth = "psk"
id = "{gw}"

[[connections.children]]
name = "net"
local_ts = ["dynamic"]
remote_ts = ["{int}"]
esp_proposals = ["{ESP}"]
start_action = "start"

[[secrets.ike]]
secret = "{PSK}"
"#,
        client = addr::CLIENT,
        gw = addr::GATEWAY_EXT,
        int = addr::INT_NET,
    );
    let tandem = Tandem::start(&topo.client, &config);
    let child = responder.wait_child_installed("net", T).unwrap_or_else(|e| {
        panic!("{e}\n--- tandem:\n{}\n--- charon:\n{}", tandem.log(), responder.log_tail(60))
    });
    assert!(child.encap());
    step(started, "Tandem brought the tunnel up");
    if vip {
        let leased = child.remote_ts().first().cloned().expect("the client's selector");
        assert!(leased.starts_with("10.4.0."), "selector narrowed to the VIP: {leased}");
        let vip = leased.trim_end_matches("/32");
        let tun = topo.client.ip(&["-br", "addr", "show", "dev", "tandem0"]).expect("tandem0");
        assert!(tun.contains(vip), "VIP {vip} on Tandem's TUN device: {tun}");
        topo.client.wait_ping(addr::SERVER, T).expect("ping from the VIP through the tunnel");
        topo.server.exec(&["ping", "-n", "-q", "-c", "2", "-W", "1", vip]).expect("server pings the VIP");
    }
    topo.client.wait_ping(addr::SERVER, T).expect("ping through the tunnel");
    let down = iperf_download(&topo.client, &topo.server, 8 << 20);
    step(started, &format!("iperf3: {down} bytes down to Tandem"));
    let (old, new) = responder.rekey_child_and_wait("net", T).expect("responder rekeys the CHILD_SA");
    assert_ne!(old.spi_out(), new.spi_out());
    topo.client.ping(addr::SERVER, 3).expect("ping after the rekey");
    tandem.stop();
    responder.wait_no_sas(T).expect("SIGTERM deleted the SAs at the responder");
    assert!(responder.datapath_errors().is_empty());
    step(started, "Tandem stopped and deleted its SAs");
}

#[test]
fn tandem_initiates_to_strongswan() {
    tandem_initiator("gw_initiator", false);
}

#[test]
fn tandem_initiates_and_takes_a_virtual_ip() {
    tandem_initiator("gw_init_vip", true);
}

/// Garbage on UDP 500 and 4500 (random datagrams, truncated and mutated
/// IKE messages, fake ESP) from the client's network while a real client
/// connects: Tandem keeps serving, logs the drops and never panics.
#[test]
fn survives_garbage_while_serving() {
    if !prerequisites() || !netns::require_tool("python3") {
        return;
    }
    let started = Instant::now();
    let sc = Scenario { ike: "aes256gcm16-prfsha256-x25519", esp: "aes256gcm16", ..Scenario::default() };
    let topo = Topology::client_gateway_server("gw_garbage").expect("topology");
    let gw = Tandem::start(&topo.gateway, &gateway_config(&sc, None));
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/ike_message");
    // Bounded: 3000 datagrams per port, as fast as Python sends them.
    let script = format!(
        r#"
import os, random, socket
random.seed(7)
seeds = [open(os.path.join({seeds:?}, f), "rb").read() for f in sorted(os.listdir({seeds:?}))]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def mutate(m):
    m = bytearray(m)
    for _ in range(random.randint(1, 8)):
        op = random.randint(0, 3)
        if op == 0 and m: m[random.randrange(len(m))] ^= 1 << random.randrange(8)
        elif op == 1: m = m[:random.randrange(len(m) + 1)]
        elif op == 2: m.insert(random.randrange(len(m) + 1), random.randrange(256))
        elif op == 3 and len(m) > 28: m[24:28] = random.randrange(1 << 32).to_bytes(4, "big")
    return bytes(m)
for i in range(3000):
    kind = i % 4
    if kind == 0: d = os.urandom(random.randint(0, 1500))
    elif kind == 1: d = mutate(random.choice(seeds))
    elif kind == 2: d = bytes(random.choice(seeds)[:random.randint(0, 60)])
    else: d = os.urandom(random.randint(8, 200))
    s.sendto(d, ({gw:?}, 500))
    s.sendto(b"\0\0\0\0" + d if kind != 3 else d, ({gw:?}, 4500))
"#,
        gw = addr::GATEWAY_EXT,
    );
    let flood = topo.client.spawn(&["python3", "-c", &script]).expect("garbage sender");
    let client = client(&topo, &sc, None);
    client.initiate("net").unwrap_or_else(|e| panic!("initiate under garbage: {e}\n{}", gw.log()));
    topo.client.wait_ping(addr::SERVER, T).expect("ping through the tunnel under garbage");
    let mut flood = flood;
    flood.wait_timeout(Duration::from_secs(60)).expect("garbage sender finishes");
    step(started, "a client connected while garbage flowed");
    topo.client.ping(addr::SERVER, 3).expect("ping after the garbage");
    assert_eq!(gw.ctl(&["status"]).get("ike_sas").and_then(Json::as_u64), Some(1), "only the real client");
    let log = gw.stop();
    assert!(log.contains("IKE message dropped"), "drops are logged");
    assert!(!log.contains("panicked"), "no panic:\n{log}");
}
