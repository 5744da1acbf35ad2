//! Tests of configuration loading: the example, defaults, every kind of
//! error with its file:line:column and key, the secrets file checks, value
//! syntax, and that no input makes the parser panic.

use super::addr::{IpRange, MacAddr, PeerAddr, TsAddrs, TsSpec};
use super::build::{DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS};
use super::error::Position;
use super::ident::IdSpec;
use super::model::{AuthMethod, DpdAction, Fragmentation, LogLevel, Mode, StartAction};
use super::value::{format_duration, format_duration_ms, parse_duration, parse_duration_ms};
use super::*;
use core::net::IpAddr;
use core::time::Duration;
use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};

/// Parses `text` as if read from `gateway.toml` in the working directory.
fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    parse_str(text, Path::new("gateway.toml"))
}

/// Parses `text`, which must be valid.
fn parse_ok(text: &str) -> GatewayConfig {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid configuration, got:\n{e}"),
    }
}

/// The error lines `text` gives; it must be invalid.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) if e.diagnostics().is_empty() => vec![e.to_string()],
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

/// The one error line `text` gives.
fn one_error(text: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().unwrap_or_default()
}

/// A valid PSK configuration that tests extend.
const BASE: &str = r#"[[connections]]
name = "rw"
[connections.local]
auth = "psk"
id = "gw.example.com"
[connections.remote]
auth = "psk"
[[connections.children]]
name = "net"
local_ts = "10.1.0.0/16"
[[secrets.ike]]
id = "gw.example.com"
secret = "0123456789abcdef0123"
"#;

/// A temporary directory for file-based tests.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory can be made")
}

/// Writes `text` to `dir/name` with permission bits `mode`.
fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, text).expect("the file can be written");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("permissions can be set");
    path
}

/// A PEM file with one block of `label`.
fn pem(label: &str) -> String {
    format!("-----BEGIN {label}-----\nMIIBszCCAVmgAwIBAgIUJ0x1\n-----END {label}-----\n")
}

// --- The example and the defaults -------------------------------------------

#[test]
fn accepts_the_example_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway-psk.toml");
    let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.connections.len(), 1);
    let rw = &config.connections[0];
    assert_eq!(rw.name, "rw");
    assert_eq!(rw.local_addrs, [PeerAddr::Addr("192.0.2.1".parse().expect("an address"))]);
    assert_eq!(rw.proposals.len(), 2);
    assert_eq!(rw.proposals[0].to_string(), "aes256gcm16-prfsha256-x25519");
    assert_eq!(rw.pools, ["rw-v4"]);
    assert_eq!(rw.local.id, Some(IdSpec::Fqdn("gw.example.com".into())));
    assert_eq!(rw.remote.id, IdSpec::Any);
    let child = &rw.children[0];
    assert_eq!(child.name, "rw-net");
    assert_eq!(child.local_ts[0].to_string(), "10.1.0.0/16");
    assert_eq!(child.remote_ts[0].addrs, TsAddrs::Dynamic);
    assert_eq!(child.esp_proposals[0].to_string(), "aes256gcm16-noesn");
    let pool = config.pool("rw-v4").expect("the pool is defined");
    assert_eq!(pool.leasable.to_string(), "10.3.0.1-10.3.0.254");
    assert_eq!(pool.dns, ["10.1.0.53".parse::<IpAddr>().expect("an address")]);
    assert!(config.psk(&rw.local_ids(), &rw.remote.id).is_some());
}

#[test]
fn accepts_the_built_in_default_proposals() {
    assert!(parse_proposals(ProposalKind::Ike, DEFAULT_IKE_PROPOSALS).is_ok());
    assert!(parse_proposals(ProposalKind::Esp, DEFAULT_ESP_PROPOSALS).is_ok());
}

#[test]
fn fills_in_the_defaults() {
    let config = parse_ok(BASE);
    let c = &config.connections[0];
    assert_eq!(c.local_addrs, [PeerAddr::Any]);
    assert_eq!(c.remote_addrs, [PeerAddr::Any]);
    assert_eq!(
        c.proposals,
        parse_proposals(ProposalKind::Ike, DEFAULT_IKE_PROPOSALS).expect("defaults parse")
    );
    assert_eq!(c.dpd_delay, Some(Duration::from_secs(30)));
    assert_eq!(c.rekey_time, Duration::from_secs(4 * 3600));
    assert_eq!(c.over_time, Duration::from_secs(24 * 60));
    assert_eq!(c.rand_time, Duration::from_secs(24 * 60));
    assert_eq!(c.fragmentation, Fragmentation::Yes);
    assert!(c.send_certreq);
    assert!(c.vips.is_empty());
    assert_eq!(c.remote.auth, AuthMethod::Psk);
    let ch = &c.children[0];
    assert_eq!(ch.remote_ts[0].addrs, TsAddrs::Dynamic);
    assert_eq!(
        ch.esp_proposals,
        parse_proposals(ProposalKind::Esp, DEFAULT_ESP_PROPOSALS).expect("defaults parse")
    );
    assert_eq!(ch.rekey_time, Duration::from_secs(3600));
    assert_eq!(ch.life_time, Duration::from_secs(3960));
    assert_eq!(ch.rand_time, Duration::from_secs(360));
    assert_eq!(ch.mode, Mode::Tunnel);
    assert_eq!(ch.start_action, StartAction::None);
    assert_eq!(ch.dpd_action, DpdAction::Clear);
    assert_eq!(config.dataplane.tun_name, "tandem0");
    assert_eq!(config.dataplane.mtu, 1400);
    assert_eq!(config.control.socket, Path::new("/run/tandem/tandem.sock"));
    assert_eq!(config.log.level, LogLevel::Info);
    assert!(config.cluster.is_none());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn accepts_every_key_set() {
    let text = r#"[[connections]]
name = "s2s"
version = 2
local_addrs = ["192.0.2.1"]
remote_addrs = "vpn.example.net"
proposals = "aes256gcm16-prfsha256-x25519, default"
vips = ["0.0.0.0"]
dpd_delay = 0
rekey_time = "2h"
over_time = "10m"
rand_time = "5m"
fragmentation = "accept"
send_certreq = false
mobike = false
[connections.local]
auth = "psk"
[connections.remote]
auth = "psk"
id = "@#0a0b"
[[connections.children]]
name = "lan"
local_ts = ["10.1.0.0/16", "192.168.0.1-192.168.0.9[udp/53]"]
remote_ts = ["10.2.0.0/16[tcp/1000-2000]"]
esp_proposals = ["aes128-sha256-x25519-esn"]
rekey_time = 600
life_time = "11m"
rand_time = "30s"
mode = "transport"
start_action = "start"
dpd_action = "restart"
[[secrets.ike]]
id = ["192.0.2.1", "@#0a0b"]
secret = "0s c2VjcmV0IHNlY3JldCBzZWNyZXQ="
[dataplane]
tun_name = "ipsec-0"
mtu = 9000
[control]
socket = "/tmp/tandem.sock"
[log]
level = "debug"
"#;
    // The space in the base64 secret is invalid; fix it and parse again.
    assert!(one_error(text).contains("secrets.ike[0].secret: invalid base64"));
    let config = parse_ok(&text.replace("0s c2", "0sc2"));
    let c = &config.connections[0];
    assert_eq!(c.remote_addrs, [PeerAddr::Name("vpn.example.net".into())]);
    assert_eq!(c.proposals.len(), 3);
    assert_eq!(c.dpd_delay, None);
    assert_eq!(
        (c.rekey_time, c.over_time, c.rand_time),
        (Duration::from_secs(7200), Duration::from_secs(600), Duration::from_secs(300))
    );
    assert_eq!(c.fragmentation, Fragmentation::Accept);
    assert!(!c.send_certreq);
    assert_eq!(c.remote.id, IdSpec::KeyId(vec![10, 11]));
    let ch = &c.children[0];
    assert_eq!(ch.local_ts[1].to_string(), "192.168.0.1-192.168.0.9[udp/53]");
    assert_eq!(ch.remote_ts[0].to_string(), "10.2.0.0/16[tcp/1000-2000]");
    assert_eq!(ch.esp_proposals[0].to_string(), "aes128-sha256-x25519-esn");
    assert_eq!(ch.mode, Mode::Transport);
    assert_eq!(ch.start_action, StartAction::Start);
    assert_eq!(ch.dpd_action, DpdAction::Restart);
    assert_eq!(config.ike_secrets[0].secret.expose(), b"secret secret secret");
    assert_eq!(config.dataplane.tun_name, "ipsec-0");
    assert_eq!(config.dataplane.mtu, 9000);
    assert_eq!(config.log.level, LogLevel::Debug);
}

// --- Errors name file, line, column and key ---------------------------------

#[test]
fn rejects_an_unknown_esp_keyword_at_its_place() {
    let text = r#"[[connections]]
name = "rw"
[connections.local]
auth = "psk"
[connections.remote]
auth = "psk"
[[connections.children]]
name = "a"
[[connections.children]]
name = "b"
esp_proposals = ["aes256gcm16", "aes999"]
[[secrets.ike]]
secret = "0123456789abcdef0123"
"#;
    assert_eq!(
        one_error(text),
        r#"gateway.toml:11:34: connections[0].children[1].esp_proposals: unknown keyword "aes999""#
    );
}

#[test]
fn points_at_the_bad_proposal_within_a_string() {
    let text = BASE.replace(
        "name = \"rw\"\n",
        "name = \"rw\"\nproposals = \"aes256gcm16-prfsha256-x25519, aes128-x25519\"\n",
    );
    assert_eq!(
        one_error(&text),
        r#"gateway.toml:3:44: connections[0].proposals: proposal "aes128-x25519": non-AEAD encryption requires an integrity algorithm"#
    );
}

#[test]
fn rejects_ike_proposals_without_prf_or_key_exchange() {
    let no_dh = BASE.replace("name = \"rw\"\n", "name = \"rw\"\nproposals = \"aes256gcm16-prfsha256\"\n");
    assert!(
        one_error(&no_dh).ends_with(
            "connections[0].proposals: an IKE proposal requires a key exchange method (e.g. x25519)"
        )
    );
    let no_prf = BASE.replace("name = \"rw\"\n", "name = \"rw\"\nproposals = \"aes256gcm16-x25519\"\n");
    assert!(one_error(&no_prf).contains("requires a PRF"));
}

#[test]
fn rejects_a_prf_in_esp_proposals() {
    let text = BASE.replace("local_ts =", "esp_proposals = \"aes256gcm16-prfsha256\"\nlocal_ts =");
    assert_eq!(
        one_error(&text),
        "gateway.toml:10:18: connections[0].children[0].esp_proposals: a PRF applies to IKE, not to ESP proposals"
    );
}

#[test]
fn rejects_an_unknown_key_naming_it() {
    let text = BASE.replace("auth = \"psk\"\nid", "auth = \"psk\"\nmobiek = true\nid");
    let e = one_error(&text);
    assert!(e.starts_with("gateway.toml:5:1: connections[0].local.mobiek: unknown field `mobiek`"), "{e}");
    let top = format!("{BASE}[ha]\nnode_id = 1\n");
    assert!(one_error(&top).starts_with("gateway.toml:14:2: ha: unknown field `ha`"));
    let pool = format!("{BASE}[pools.p]\naddrs = \"10.9.0.0/24\"\nsize = 3\n");
    assert!(one_error(&pool).starts_with("gateway.toml:16:1: pools.p.size: unknown field `size`"));
}

#[test]
fn rejects_a_missing_key() {
    let text = BASE.replace("name = \"net\"\n", "");
    assert_eq!(one_error(&text), "gateway.toml:8:1: connections[0].children[0]: missing field `name`");
    let no_remote = BASE.replace("[connections.remote]\nauth = \"psk\"\n", "");
    assert!(one_error(&no_remote).ends_with("connections[0]: missing field `remote`"));
}

#[test]
fn rejects_a_value_of_the_wrong_type() {
    let text = BASE.replace("name = \"rw\"", "name = \"rw\"\nsend_certreq = \"yes\"");
    assert_eq!(
        one_error(&text),
        r#"gateway.toml:3:16: connections[0].send_certreq: invalid type: string "yes", expected a boolean"#
    );
    let auth = BASE.replacen("auth = \"psk\"", "auth = \"eap\"", 1);
    assert_eq!(
        one_error(&auth),
        "gateway.toml:4:8: connections[0].local.auth: unknown variant `eap`, expected `psk` or `pubkey`"
    );
}

#[test]
fn rejects_a_toml_syntax_error_naming_the_key() {
    let text = BASE.replace("name = \"net\"", "name = \"net");
    assert_eq!(
        one_error(&text),
        "gateway.toml:9:12: connections[0].children[0].name: invalid basic string, expected `\"`"
    );
}

#[test]
fn rejects_invalid_utf8_at_its_place() {
    let dir = tempdir();
    let path = dir.path().join("g.toml");
    fs::write(&path, b"[log]\nlevel = \"\xff\"\n").expect("writable");
    let e = load(&path).expect_err("invalid UTF-8");
    let ConfigError::Syntax(d) = &e else { panic!("{e:?}") };
    assert_eq!(d.position, Some(Position { line: 2, column: 10 }));
}

#[test]
fn counts_columns_in_characters() {
    let text = BASE.replace("name = \"net\"", "# näme ünïcode\nname = \"net\"\nmode = \"tünnel\"");
    assert!(
        one_error(&text)
            .starts_with("gateway.toml:11:8: connections[0].children[0].mode: unknown variant `tünnel`")
    );
    assert_eq!(source::position("äö\nü x", 7), Position { line: 2, column: 2 });
    assert_eq!(source::position("äö\nü x", 6), Position { line: 2, column: 1 });
    assert_eq!(source::position("äö", 1), Position { line: 1, column: 1 });
    assert_eq!(source::position("", 99), Position { line: 1, column: 1 });
}

#[test]
fn rejects_bad_durations() {
    let bad = |v: &str| BASE.replace("name = \"rw\"", &format!("name = \"rw\"\nrekey_time = {v}"));
    assert!(
        one_error(&bad("\"4x\""))
            .starts_with("gateway.toml:3:14: connections[0].rekey_time: invalid duration \"4x\"")
    );
    assert!(one_error(&bad("-5")).ends_with("a duration cannot be negative"));
    assert!(one_error(&bad("\"99999999999999999999d\"")).contains("longer than the maximum"));
    assert!(one_error(&bad("1.5")).contains("invalid type: floating point"));
}

#[test]
fn rejects_inconsistent_lifetimes() {
    let ike = BASE.replace("name = \"rw\"", "name = \"rw\"\nrekey_time = \"1h\"\nrand_time = \"1h\"");
    assert_eq!(
        one_error(&ike),
        "gateway.toml:4:13: connections[0].rand_time: rand_time (1h) must be less than rekey_time (1h)"
    );
    let child = BASE.replace("name = \"net\"", "name = \"net\"\nrekey_time = \"1h\"\nlife_time = \"1h\"");
    assert!(one_error(&child).starts_with(
        "gateway.toml:11:13: connections[0].children[0].life_time: life_time (1h) must be longer"
    ));
    // A long life_time does not make the default rand_time too long.
    let long = BASE.replace("name = \"net\"", "name = \"net\"\nrekey_time = \"1h\"\nlife_time = \"1d\"");
    assert_eq!(parse_ok(&long).connections[0].children[0].rand_time, Duration::from_secs(1800));
    // No rekeying at all is allowed.
    let never = BASE.replace("name = \"net\"", "name = \"net\"\nrekey_time = 0\nlife_time = 0");
    assert_eq!(parse_ok(&never).connections[0].children[0].life_time, Duration::ZERO);
}

#[test]
fn rejects_a_psk_connection_without_a_secret() {
    let text = BASE.replace("id = \"gw.example.com\"\nsecret", "id = \"other.example.com\"\nsecret");
    assert_eq!(
        one_error(&text),
        r#"gateway.toml:4:8: connections[0].local.auth: no pre-shared key for this connection: add a [[secrets.ike]] with id = "gw.example.com" or one without id"#
    );
}

#[test]
fn accepts_psks_by_remote_id_address_or_wildcard() {
    let by_remote = BASE
        .replace(
            "[connections.remote]\nauth = \"psk\"",
            "[connections.remote]\nauth = \"psk\"\nid = \"Client@Example.com\"",
        )
        .replace("id = \"gw.example.com\"\nsecret", "id = \"client@example.com\"\nsecret");
    parse_ok(&by_remote);
    let by_addr = BASE
        .replace("id = \"gw.example.com\"\n[connections.remote]", "[connections.remote]")
        .replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = \"192.0.2.1\"")
        .replace("id = \"gw.example.com\"\nsecret", "id = \"192.0.2.1\"\nsecret");
    parse_ok(&by_addr);
    let wildcard = BASE.replace("id = \"gw.example.com\"\nsecret", "secret");
    parse_ok(&wildcard);
    let any = BASE.replace("id = \"gw.example.com\"\nsecret", "id = \"%any\"\nsecret");
    parse_ok(&any);
}

#[test]
fn rejects_two_secrets_for_one_id() {
    let text = format!(
        "{BASE}[[secrets.ike]]\nid = [\"x.example\", \"GW.example.com\"]\nsecret = \"0123456789abcdef0123\"\n"
    );
    assert_eq!(
        one_error(&text),
        r#"gateway.toml:15:20: secrets.ike[1].id: "GW.example.com" already has a secret (secrets.ike[0])"#
    );
    let two_wild = format!(
        "{BASE}[[secrets.ike]]\nsecret = \"0123456789abcdef0123\"\n[[secrets.ike]]\nsecret = \"0123456789abcdef0123\"\n"
    );
    assert!(
        one_error(&two_wild)
            .ends_with("secrets.ike[2]: a second secret for every identity (the first is secrets.ike[1])")
    );
}

#[test]
fn rejects_undefined_pools_and_overlapping_pools() {
    let text = format!(
        "{}[pools.a]\naddrs = \"10.3.0.0/24\"\n[pools.b]\naddrs = \"10.3.0.200-10.3.1.10\"\n",
        BASE.replace("name = \"rw\"", "name = \"rw\"\npools = [\"a\", \"c\"]")
    );
    assert_eq!(
        errors(&text),
        [
            r#"gateway.toml:3:15: connections[0].pools: pool "c" is not defined (no [pools.c])"#,
            r#"gateway.toml:18:9: pools.b.addrs: 10.3.0.200-10.3.1.10 overlaps pool "a" (10.3.0.0/24): an address could be leased twice"#,
        ]
    );
}

#[test]
fn rejects_invalid_pool_ranges() {
    let pool = |addrs: &str| format!("{BASE}[pools.a]\naddrs = \"{addrs}\"\n");
    assert!(
        one_error(&pool("10.3.0.9-10.3.0.1")).starts_with(
            "gateway.toml:15:9: pools.a.addrs: range \"10.3.0.9-10.3.0.1\" ends before it starts"
        )
    );
    assert!(one_error(&pool("10.3.0.1-fd00::1")).contains("mixes IPv4 and IPv6"));
    assert!(one_error(&pool("10.3.0.0/33")).contains("prefix length 33"));
    assert!(one_error(&pool("10.3.0.0/x")).contains("invalid prefix length"));
    assert!(one_error(&pool("10.3.0.300")).contains("\"10.3.0.300\" is not an IP address"));
}

#[test]
fn rejects_invalid_traffic_selectors() {
    let ts = |v: &str| {
        BASE.replace("local_ts = \"10.1.0.0/16\"", &format!("local_ts = [\"10.1.0.0/16\", \"{v}\"]"))
    };
    assert_eq!(
        one_error(&ts("10.2.0.1/16")),
        r#"gateway.toml:10:28: connections[0].children[0].local_ts: "10.2.0.1/16" has host bits set; the network is 10.2.0.0/16"#
    );
    assert!(one_error(&ts("10.2.0.0/16[bogus]")).contains("unknown protocol \"bogus\""));
    assert!(one_error(&ts("10.2.0.0/16[/80]")).contains("a port needs a protocol"));
    assert!(one_error(&ts("10.2.0.0/16[tcp/9-1]")).contains("port range ends before it starts"));
    assert!(one_error(&ts("10.2.0.0/16[tcp")).contains("missing ']'"));
    let empty = BASE.replace("local_ts = \"10.1.0.0/16\"", "local_ts = []");
    assert!(one_error(&empty).contains("list at least one traffic selector"));
}

#[test]
fn rejects_address_families_that_cannot_meet() {
    let ts =
        BASE.replace("local_ts = \"10.1.0.0/16\"", "local_ts = \"10.1.0.0/16\"\nremote_ts = \"fd00::/64\"");
    assert_eq!(
        one_error(&ts),
        "gateway.toml:11:13: connections[0].children[0].remote_ts: local_ts cover IPv4 only and remote_ts IPv6 only: no traffic can match"
    );
    let addrs = BASE.replace(
        "name = \"rw\"",
        "name = \"rw\"\nlocal_addrs = \"192.0.2.1\"\nremote_addrs = [\"2001:db8::/32\"]",
    );
    assert!(
        one_error(&addrs)
            .starts_with("gateway.toml:4:16: connections[0].remote_addrs: remote_addrs are IPv6 only")
    );
    // A pool of the right family makes dynamic fit.
    let pool = format!(
        "{}[pools.v6]\naddrs = \"fd00::/120\"\n",
        ts.replace("name = \"rw\"", "name = \"rw\"\npools = \"v6\"")
            .replace("local_ts = \"10.1.0.0/16\"", "local_ts = \"fd01::/64\"")
            .replace("remote_ts = \"fd00::/64\"", "remote_ts = \"dynamic\"")
    );
    parse_ok(&pool);
}

#[test]
fn rejects_duplicate_names() {
    let conn = format!(
        "{BASE}[[connections]]\nname = \"rw\"\n[connections.local]\nauth = \"psk\"\nid = \"gw.example.com\"\n[connections.remote]\nauth = \"psk\"\n[[connections.children]]\nname = \"net\"\n"
    );
    assert_eq!(
        errors(&conn),
        [
            r#"gateway.toml:15:8: connections[1]: "rw" is already the name of connections[0]"#,
            r#"gateway.toml:22:8: connections[1].children[0].name: "net" is already the name of connections[0].children[0]; child names are unique across connections"#,
        ]
    );
    let bad = BASE.replace("name = \"net\"", "name = \"my net\"");
    assert!(one_error(&bad).contains("name \"my net\" must be 1 to 64 letters"));
}

#[test]
fn rejects_unsupported_actions_and_versions() {
    let trap = BASE.replace("name = \"net\"", "name = \"net\"\nstart_action = \"trap\"");
    assert!(one_error(&trap).starts_with("gateway.toml:10:16: connections[0].children[0].start_action: start_action = \"trap\" is not supported"));
    let dpd = BASE.replace("name = \"net\"", "name = \"net\"\ndpd_action = \"trap\"");
    assert!(one_error(&dpd).contains("dpd_action = \"trap\" is not supported"));
    let v1 = BASE.replace("name = \"rw\"", "name = \"rw\"\nversion = 1");
    assert_eq!(
        one_error(&v1),
        "gateway.toml:3:11: connections[0].version: IKEv1 is not supported; version must be 2"
    );
    let start = BASE.replace("name = \"net\"", "name = \"net\"\nstart_action = \"start\"");
    assert!(
        one_error(&start)
            .contains("start_action = \"start\" needs a remote_addrs entry with one address or host name")
    );
    let frag = BASE.replace("name = \"rw\"", "name = \"rw\"\nfragmentation = \"force\"");
    assert!(one_error(&frag).contains("fragmentation \"force\" is not one of"));
}

#[test]
fn warns_about_ignored_and_weak_settings() {
    let text = BASE
        .replace("name = \"rw\"", "name = \"rw\"\nmobike = true")
        .replace("0123456789abcdef0123", "short");
    let warnings: Vec<String> = parse_ok(&text).warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "gateway.toml:3:10: connections[0].mobike: MOBIKE is not supported yet; mobike = true is ignored",
            "gateway.toml:14:10: secrets.ike[0].secret: the pre-shared key is only 5 octets; short keys can be guessed offline, use at least 16 random octets",
        ]
    );
}

#[test]
fn rejects_bad_dataplane_and_control_values() {
    let dp = format!(
        "{BASE}[dataplane]\nmtu = 100\ntun_name = \"a/b\"\n[control]\nsocket = \"/{}\"\n",
        "x".repeat(120)
    );
    assert_eq!(
        errors(&dp),
        [
            "gateway.toml:15:7: dataplane.mtu: mtu 100 is outside 576..=65535",
            r#"gateway.toml:16:12: dataplane.tun_name: "a/b" is not a valid interface name: 1 to 15 letters, digits, '-', '_' or '.'"#,
            "gateway.toml:18:10: control.socket: the socket path is 121 bytes long; Unix sockets allow at most 107",
        ]
    );
    let level = format!("{BASE}[log]\nlevel = \"loud\"\n");
    assert!(one_error(&level).starts_with("gateway.toml:15:9: log.level: unknown variant `loud`"));
}

#[test]
fn sorts_all_errors_in_file_order() {
    let text = BASE
        .replace("local_ts = \"10.1.0.0/16\"", "local_ts = \"10.1.0.0/16\"\nesp_proposals = \"aes1\"")
        .replace("name = \"rw\"", "name = \"rw\"\nproposals = \"aes2\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2);
    assert!(errs[0].starts_with("gateway.toml:3:") && errs[1].starts_with("gateway.toml:12:"), "{errs:?}");
}

// --- Files: certificates, keys, the secrets file ----------------------------

/// A pubkey configuration naming files in `dir`.
fn pubkey_config(dir: &Path) -> String {
    format!(
        r#"[[connections]]
name = "rw"
[connections.local]
auth = "pubkey"
certs = "gw.pem"
[connections.remote]
auth = "pubkey"
cacerts = ["{}/ca.pem"]
[[connections.children]]
name = "net"
[[secrets.private]]
file = "gw.key"
"#,
        dir.display()
    )
}

#[test]
fn accepts_pem_certificates_and_keys() {
    let dir = tempdir();
    write(dir.path(), "gw.pem", &pem("CERTIFICATE"), 0o644);
    write(dir.path(), "ca.pem", &format!("{}{}", pem("CERTIFICATE"), pem("CERTIFICATE")), 0o644);
    write(dir.path(), "gw.key", &pem("EC PRIVATE KEY"), 0o600);
    let main = write(dir.path(), "gateway.toml", &pubkey_config(dir.path()), 0o644);
    let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let c = &config.connections[0];
    assert_eq!(c.local.certs[0].path, dir.path().join("gw.pem"));
    assert_eq!(c.remote.cacerts[0].pem.matches("-----BEGIN").count(), 2);
    assert_eq!(config.private_keys[0].path, dir.path().join("gw.key"));
    let debug = format!("{config:?}");
    assert!(!debug.contains("MIIB"), "Debug shows no file contents: {debug}");
}

#[test]
fn rejects_missing_and_non_pem_files() {
    let dir = tempdir();
    write(dir.path(), "gw.pem", "not pem", 0o644);
    write(dir.path(), "gw.key", &pem("PRIVATE KEY"), 0o644);
    let main = write(dir.path(), "gateway.toml", &pubkey_config(dir.path()), 0o644);
    let ConfigError::Invalid(errs) = load(&main).expect_err("invalid") else { panic!("not Invalid") };
    let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let m = main.display();
    let d = dir.path().display();
    assert_eq!(
        errs,
        [
            format!(
                "{m}:5:9: connections[0].local.certs: {d}/gw.pem: not a PEM file (no \"-----BEGIN\" line)"
            ),
            format!(
                "{m}:8:12: connections[0].remote.cacerts: {d}/ca.pem: No such file or directory (os error 2)"
            ),
            format!(
                "{m}:12:8: secrets.private[0].file: {d}/gw.key: mode 0644 lets group or others access it; run `chmod 600` on it"
            ),
        ]
    );
}

#[test]
fn rejects_a_private_key_among_certificates_and_pubkey_without_key() {
    let dir = tempdir();
    write(dir.path(), "gw.pem", &pem("PRIVATE KEY"), 0o600);
    write(dir.path(), "ca.pem", &pem("CERTIFICATE"), 0o644);
    let text = pubkey_config(dir.path()).replace("[[secrets.private]]\nfile = \"gw.key\"\n", "");
    let main = write(dir.path(), "gateway.toml", &text, 0o644);
    let ConfigError::Invalid(errs) = load(&main).expect_err("invalid") else { panic!("not Invalid") };
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].message.contains("needs a private key"), "{errs:?}");
    assert!(errs[1].message.contains("holds a private key; list certificates here"), "{errs:?}");
    let dev = pubkey_config(dir.path()).replace("certs = \"gw.pem\"", "certs = \"/dev/zero\"");
    let main = write(dir.path(), "gateway.toml", &dev, 0o644);
    let e = load(&main).expect_err("invalid").to_string();
    assert!(e.contains("/dev/zero: not a regular file"), "{e}");
}

#[test]
fn reads_secrets_from_a_private_secrets_file() {
    let dir = tempdir();
    let secrets =
        "[[secrets.ike]]\nid = \"gw.example.com\"\nsecret = \"0x00112233445566778899aabbccddeeff\"\n";
    write(dir.path(), "secrets.toml", secrets, 0o600);
    let text =
        BASE.replace("[[secrets.ike]]\nid = \"gw.example.com\"\nsecret = \"0123456789abcdef0123\"\n", "");
    let main = write(dir.path(), "gateway.toml", &format!("secrets_file = \"secrets.toml\"\n{text}"), 0o644);
    let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.ike_secrets.len(), 1);
    assert_eq!(config.ike_secrets[0].secret.expose(), (0u8..16).map(|i| i * 0x11).collect::<Vec<_>>());
    assert_eq!(config.ike_secrets[0].origin, dir.path().join("secrets.toml"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn rejects_a_secrets_file_others_can_read() {
    let dir = tempdir();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        let path =
            write(dir.path(), "secrets.toml", "[[secrets.ike]]\nsecret = \"0123456789abcdef0123\"\n", mode);
        let main =
            write(dir.path(), "gateway.toml", &format!("secrets_file = \"{}\"\n", path.display()), 0o600);
        let e = load(&main).expect_err("insecure");
        assert!(
            matches!(&e, ConfigError::InsecurePermissions { path: p, mode: m } if *p == path && *m == mode),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{p}: secrets file has mode {mode:04o}, which lets group or others access it; run `chmod 600 {p}`",
                p = path.display()
            )
        );
    }
    let missing = write(dir.path(), "gateway.toml", "secrets_file = \"nope.toml\"\n", 0o600);
    let e = load(&missing).expect_err("missing");
    assert!(matches!(&e, ConfigError::Read { path, .. } if *path == dir.path().join("nope.toml")), "{e:?}");
}

#[test]
fn rejects_special_files() {
    let dir = tempdir();
    let main = write(dir.path(), "g.toml", "secrets_file = \"/dev/zero\"\n", 0o600);
    let e = load(&main).expect_err("not a regular file");
    assert_eq!(e.to_string(), "/dev/zero: not a regular file");
    let e = load(dir.path()).expect_err("a directory");
    assert!(matches!(&e, ConfigError::Read { path, .. } if path == dir.path()), "{e:?}");
}

#[test]
fn locates_errors_in_the_secrets_file() {
    let dir = tempdir();
    let secrets =
        write(dir.path(), "s.toml", "[[secrets.ike]]\nsecret = \"0xzz\"\n[[secrets.private]]\n", 0o600);
    let main = write(dir.path(), "g.toml", &format!("secrets_file = \"s.toml\"\n{BASE}"), 0o600);
    let e = load(&main).expect_err("invalid");
    assert_eq!(e.to_string(), format!("{}:3:1: secrets.private[0]: missing field `file`", secrets.display()));
    fs::write(&secrets, "[[secrets.ike]]\nsecret = \"0xzz\"\n").expect("writable");
    let e = load(&main).expect_err("invalid").to_string();
    assert_eq!(e, format!("{}:2:10: secrets.ike[0].secret: invalid hex after \"0x\"", secrets.display()));
    fs::write(&secrets, "secrets_file = \"x\"\n").expect("writable");
    let e = load(&main).expect_err("invalid").to_string();
    assert!(
        e.starts_with(&format!("{}:1:1: secrets_file: unknown field `secrets_file`", secrets.display())),
        "{e}"
    );
}

#[test]
fn warns_about_secrets_in_a_readable_config() {
    let dir = tempdir();
    let main = write(dir.path(), "g.toml", BASE, 0o644);
    let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0].to_string().contains("holds pre-shared keys and has mode 0644"));
    fs::set_permissions(&main, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    assert!(load(&main).unwrap_or_else(|e| panic!("{e}")).warnings.is_empty());
}

#[test]
fn never_prints_secrets() {
    let text = BASE.replace("0123456789abcdef0123", "hunter2hunter2hunter2");
    let config = parse_ok(&text);
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!check::summary(&config, true).contains("hunter2"));
    for bad in ["secret = 12345678901234567", "secret = \"0xhunter2\"", "secret = \"0shunter2!\""] {
        let text = BASE.replace("secret = \"0123456789abcdef0123\"", bad);
        let e = one_error(&text);
        assert!(!e.contains("hunter2") && !e.contains("12345678901234567"), "{e}");
    }
}

// --- tandem check ------------------------------------------------------------

#[test]
fn check_summarizes_a_valid_file() {
    let dir = tempdir();
    let main = write(dir.path(), "g.toml", BASE, 0o600);
    let report = check(&main, false);
    assert!(report.ok);
    assert_eq!(
        report.stdout,
        format!("{}: OK: 1 connection, 1 child, 0 pools, 1 IKE secret, 0 private keys\n", main.display())
    );
    assert_eq!(report.stderr, "");
    let verbose = check(&main, true).stdout;
    assert!(verbose.contains("  child net: 10.1.0.0/16 === dynamic (tunnel)\n"), "{verbose}");
    assert!(
        verbose.contains("rekey_time 1h, life_time 66m, rand_time 6m, start_action none, dpd_action clear"),
        "{verbose}"
    );
}

#[test]
fn check_lists_every_error() {
    let dir = tempdir();
    let text = BASE.replace(
        "local_ts = \"10.1.0.0/16\"",
        "local_ts = \"10.1.0.0/16\"\nesp_proposals = \"aes999\"\nstart_action = \"trap\"",
    );
    let main = write(dir.path(), "g.toml", &text, 0o600);
    let report = check(&main, false);
    assert!(!report.ok);
    assert_eq!(report.stdout, "");
    let m = main.display();
    assert_eq!(
        report.stderr,
        format!(
            "error: {m}:11:18: connections[0].children[0].esp_proposals: unknown keyword \"aes999\"\n\
             error: {m}:12:16: connections[0].children[0].start_action: start_action = \"trap\" is not supported (Tandem installs no trap policies); use \"start\" or \"none\"\n\
             {m}: 2 errors found; the configuration was not loaded\n"
        )
    );
    let missing = check(&dir.path().join("none.toml"), false);
    assert!(!missing.ok);
    assert!(missing.stderr.starts_with(&format!("error: {}/none.toml: No such file", dir.path().display())));
}

// --- [cluster] ---------------------------------------------------------------

/// A minimal `[cluster]` section; appended to [`BASE`] it starts on line 14.
const CLUSTER: &str = r#"[cluster]
node_id = 1
secret = "a long passphrase for the sync channel"
[[cluster.nodes]]
id = 1
address = "10.9.0.1"
[[cluster.nodes]]
id = 2
address = "10.9.0.2"
[cluster.external]
interface = "ext0"
vip = "192.0.2.1/24"
[cluster.internal]
interface = "int0"
vip = "198.51.100.1/24"
"#;

/// [`BASE`] with [`CLUSTER`], with `from` replaced by `to` in the cluster.
fn clustered(from: &str, to: &str) -> String {
    assert!(from.is_empty() || CLUSTER.contains(from), "{from:?} is not in CLUSTER");
    format!("{BASE}{}", if from.is_empty() { CLUSTER.to_owned() } else { CLUSTER.replacen(from, to, 1) })
}

/// An IP address.
fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

#[test]
fn accepts_a_cluster_section_and_fills_in_its_defaults() {
    let config = parse_ok(&clustered("", ""));
    let c = config.cluster.as_ref().expect("a cluster");
    assert_eq!(c.node_id, 1);
    assert_eq!(
        c.nodes.iter().map(|n| (n.id, n.address)).collect::<Vec<_>>(),
        [(1, ip("10.9.0.1")), (2, ip("10.9.0.2"))]
    );
    assert_eq!(c.sync_address(), ip("10.9.0.1"));
    assert_eq!(c.segment_count, 4);
    assert_eq!(c.cluster_id, 1);
    assert_eq!(c.secret.expose(), b"a long passphrase for the sync channel");
    assert_eq!(c.secret_origin, Path::new("gateway.toml"));
    assert_eq!(
        (c.heartbeat_delay, c.heartbeat_timeout),
        (Duration::from_millis(100), Duration::from_millis(500))
    );
    assert_eq!((c.sync_port, c.ring_mib, c.sample_every), (4510, 64, 16));
    assert!(!c.two_node_lowest_serves);
    assert_eq!(c.external.interface, "ext0");
    assert_eq!((c.external.vip, c.external.prefix_len), (ip("192.0.2.1"), 24));
    assert_eq!(c.external.mac, [0x01, 0x00, 0x5e, 0x00, 0x02, 0x01]);
    assert_eq!(c.external.gateway, None);
    assert_eq!((c.internal.interface.as_str(), c.internal.vip), ("int0", ip("198.51.100.1")));
    assert_eq!(c.internal.mac, [0x01, 0x00, 0x5e, 0x33, 0x64, 0x01]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn accepts_every_cluster_key() {
    let text = BASE.replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = [\"192.0.2.1\", \"%any\"]")
        + r#"[cluster]
node_id = 3
segment_count = 5
cluster_id = 4000000000
secret = "0x00112233445566778899aabbccddeeff"
heartbeat_delay = "50ms"
heartbeat_timeout = "1s"
sync_port = 4600
two_node = "lowest-id-serves"
ring_mib = 0
sample_every = 1
[[cluster.nodes]]
id = 16
address = "fd00:9::10"
[[cluster.nodes]]
id = 3
address = "fd00:9::3"
[cluster.external]
interface = "ext0.100"
vip = "192.0.2.1/24"
mac = "01:00:5E:00:00:20"
gateway = "192.0.2.254"
[cluster.internal]
interface = "int0"
vip = "2001:db8:1::1/64"
mac = "02-00-00-00-00-21"
gateway = "2001:db8:1::fffe"
tap = true
"#;
    let config = parse_ok(&text);
    let c = config.cluster.as_ref().expect("a cluster");
    assert_eq!(c.node_id, 3);
    assert_eq!(c.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), [3, 16], "sorted by id");
    assert_eq!(c.sync_address(), ip("fd00:9::3"));
    assert_eq!(
        (c.segment_count, c.cluster_id, c.sync_port, c.ring_mib, c.sample_every),
        (5, 4_000_000_000, 4600, 0, 1)
    );
    assert_eq!(c.secret.expose(), (0u8..16).map(|i| i * 0x11).collect::<Vec<_>>());
    assert_eq!((c.heartbeat_delay, c.heartbeat_timeout), (Duration::from_millis(50), Duration::from_secs(1)));
    assert!(c.two_node_lowest_serves);
    assert_eq!(c.external.interface, "ext0.100");
    assert_eq!(c.external.mac, [0x01, 0x00, 0x5e, 0x00, 0x00, 0x20]);
    assert_eq!(c.external.gateway, Some(ip("192.0.2.254")));
    assert_eq!((c.internal.vip, c.internal.prefix_len), (ip("2001:db8:1::1"), 64));
    assert_eq!(c.internal.mac, [0x02, 0, 0, 0, 0, 0x21]);
    assert_eq!(c.internal.gateway, Some(ip("2001:db8:1::fffe")));
    assert!(c.internal.tap && !c.external.tap);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn derives_cluster_macs_from_the_vips() {
    assert_eq!(MacAddr::multicast_for(ip("10.200.3.4")).to_string(), "01:00:5e:48:03:04");
    assert_eq!(MacAddr::multicast_for(ip("fd00::ab:cdef:1234")).to_string(), "33:33:cd:ef:12:34");
    let text = clustered("vip = \"192.0.2.1/24\"", "vip = \"10.200.3.4/16\"")
        .replace("vip = \"198.51.100.1/24\"", "vip = \"fd00::ab:cdef:1234/64\"");
    let c = parse_ok(&text).cluster.expect("a cluster");
    assert_eq!(c.external.mac, [0x01, 0x00, 0x5e, 0x48, 0x03, 0x04]);
    assert_eq!(c.internal.mac, [0x33, 0x33, 0xcd, 0xef, 0x12, 0x34]);
    // A VIP whose MAC is a well-known group's draws a warning.
    for (vip, warned) in [("2001:db8::1", true), ("2001:db8::1:3", true), ("2001:db8::ff00:1", true)]
        .into_iter()
        .chain([("2001:db8::a:1", false), ("2001:db8::2:0", false)])
    {
        let text = clustered("vip = \"192.0.2.1/24\"", &format!("vip = \"{vip}/64\""));
        let warnings: Vec<String> = parse_ok(&text).warnings.iter().map(ToString::to_string).collect();
        let says = warnings.iter().any(|w| w.contains("well-known IPv6 group"));
        assert_eq!(says, warned, "{vip}: {warnings:?}");
    }
}

#[test]
fn parses_and_rejects_mac_addresses() {
    for (text, want) in
        [("01:00:5e:00:00:20", [1, 0, 0x5e, 0, 0, 0x20]), ("02-AB-cd-00-00-ff", [2, 0xab, 0xcd, 0, 0, 0xff])]
    {
        assert_eq!(text.parse::<MacAddr>(), Ok(MacAddr(want)), "{text}");
    }
    for bad in [
        "",
        "01:00:5e:00:00",
        "01:00:5e:00:00:20:01",
        "1:0:5e:0:0:20",
        "01:00:5e:00:00:+f",
        "01:00-5e:00:00:20",
    ] {
        assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
    }
    assert!(
        one_error(&clustered("vip = \"192.0.2.1/24\"", "vip = \"192.0.2.1/24\"\nmac = \"01:00:5e\""))
            .starts_with("gateway.toml:26:7: cluster.external.mac: \"01:00:5e\" is not a MAC address")
    );
}

#[test]
fn rejects_a_node_id_not_among_the_nodes() {
    assert_eq!(
        one_error(&clustered("node_id = 1", "node_id = 3")),
        "gateway.toml:15:11: cluster.node_id: node_id 3 is not one of the [[cluster.nodes]] ids (1, 2); list this node there too"
    );
    assert_eq!(
        one_error(&clustered("node_id = 1", "node_id = 17")),
        "gateway.toml:15:11: cluster.node_id: node id 17 is outside 1..=16"
    );
    assert_eq!(
        errors(&clustered("id = 2\n", "id = 0\n")),
        ["gateway.toml:21:6: cluster.nodes[1].id: node id 0 is outside 1..=16",]
    );
}

#[test]
fn rejects_duplicate_node_ids_and_addresses() {
    assert_eq!(
        one_error(&clustered("id = 2\n", "id = 1\n")),
        "gateway.toml:21:6: cluster.nodes[1].id: id 1 is already the id of cluster.nodes[0]"
    );
    assert_eq!(
        one_error(&clustered("\"10.9.0.2\"", "\"10.9.0.1\"")),
        "gateway.toml:22:11: cluster.nodes[1].address: 10.9.0.1 is already the address of cluster.nodes[0]"
    );
    assert_eq!(
        one_error(&clustered("\"10.9.0.2\"", "\"fd00::2\"")),
        "gateway.toml:22:11: cluster.nodes[1].address: fd00::2 is IPv6 and cluster.nodes[0] is IPv4: the sync addresses of all nodes must be of one family"
    );
    assert!(
        one_error(&clustered("\"10.9.0.2\"", "\"192.0.2.1\""))
            .starts_with("gateway.toml:22:11: cluster.nodes[1].address: 192.0.2.1 is a cluster VIP")
    );
}

#[test]
fn rejects_fewer_than_two_nodes() {
    let one = clustered("[[cluster.nodes]]\nid = 2\naddress = \"10.9.0.2\"\n", "");
    assert_eq!(
        one_error(&one),
        "gateway.toml:17:1: cluster.nodes: a cluster needs at least 2 [[cluster.nodes]], every node including this one; found 1"
    );
    let many: String =
        (3..=17).map(|i| format!("[[cluster.nodes]]\nid = {i}\naddress = \"10.9.0.{i}\"\n")).collect();
    let text = clustered("[cluster.external]", &format!("{many}[cluster.external]"));
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0], "gateway.toml:65:1: cluster.nodes: a cluster has at most 16 nodes; found 17");
    assert_eq!(errs[1], "gateway.toml:66:6: cluster.nodes[16].id: node id 17 is outside 1..=16");
}

#[test]
fn rejects_bad_segment_counts() {
    assert_eq!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nsegment_count = 1\n")),
        "gateway.toml:16:17: cluster.segment_count: segment_count 1 is less than the 2 nodes: every node must be able to serve a segment"
    );
    assert_eq!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nsegment_count = 65\n")),
        "gateway.toml:16:17: cluster.segment_count: segment_count 65 is outside 1..=64"
    );
    let three = clustered(
        "[cluster.external]",
        "[[cluster.nodes]]\nid = 3\naddress = \"10.9.0.3\"\n[cluster.external]",
    );
    assert_eq!(parse_ok(&three).cluster.expect("a cluster").segment_count, 6);
}

#[test]
fn rejects_ports_sharing_an_interface_or_a_mac() {
    assert_eq!(
        one_error(&clustered("\"int0\"", "\"ext0\"")),
        r#"gateway.toml:27:13: cluster.internal.interface: "ext0" is also the external interface: the two ports need different interfaces"#
    );
    // 10.128.2.1 and 192.0.2.1 share their low 23 bits.
    assert_eq!(
        one_error(&clustered("\"198.51.100.1/24\"", "\"10.128.2.1/24\"")),
        "gateway.toml:28:7: cluster.internal.mac: 01:00:5e:00:02:01 (derived from its vip) is also the external port's MAC (derived from its vip): the two ports need different MACs; set mac on one of them"
    );
    let explicit = clustered("\"198.51.100.1/24\"", "\"198.51.100.1/24\"\nmac = \"01:00:5e:00:02:01\"");
    assert!(
        one_error(&explicit).starts_with(
            "gateway.toml:29:7: cluster.internal.mac: 01:00:5e:00:02:01 is also the external port's MAC (derived from its vip)"
        )
    );
}

#[test]
fn rejects_bad_cluster_macs_and_warns_about_global_unicast() {
    let mac =
        |m: &str| clustered("vip = \"192.0.2.1/24\"", &format!("vip = \"192.0.2.1/24\"\nmac = \"{m}\""));
    assert_eq!(
        one_error(&mac("ff:ff:ff:ff:ff:ff")),
        "gateway.toml:26:7: cluster.external.mac: ff:ff:ff:ff:ff:ff cannot be a cluster MAC"
    );
    assert!(one_error(&mac("00:00:00:00:00:00")).ends_with("00:00:00:00:00:00 cannot be a cluster MAC"));
    let warnings: Vec<String> =
        parse_ok(&mac("00:16:3e:00:00:01")).warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "gateway.toml:26:7: cluster.external.mac: 00:16:3e:00:00:01 is a unicast MAC that is not locally administered"
        ),
        "{warnings:?}"
    );
    assert!(parse_ok(&mac("02:00:00:00:00:01")).warnings.is_empty(), "locally administered unicast");
}

#[test]
fn rejects_bad_interfaces_vips_and_gateways() {
    let iface = one_error(&clustered("\"ext0\"", "\"ext/0\""));
    assert_eq!(
        iface,
        r#"gateway.toml:24:13: cluster.external.interface: "ext/0" is not a valid interface name: 1 to 15 bytes without '/', ':' or white space"#
    );
    for bad in ["", "a b", "eth0:1", "abcdefghijklmnop", ".."] {
        let e = one_error(&clustered("\"ext0\"", &format!("{bad:?}")));
        assert!(e.contains("is not a valid interface name"), "{bad:?}: {e}");
    }
    assert!(
        one_error(&clustered("\"192.0.2.1/24\"", "\"192.0.2.1\""))
            .starts_with("gateway.toml:25:7: cluster.external.vip: \"192.0.2.1\" has no prefix length")
    );
    assert!(one_error(&clustered("\"192.0.2.1/24\"", "\"192.0.2.1/33\"")).contains("outside 1..=32"));
    assert!(one_error(&clustered("\"192.0.2.1/24\"", "\"192.0.2.0/24\"")).contains("network or broadcast"));
    assert!(one_error(&clustered("\"192.0.2.1/24\"", "\"224.0.0.1/24\"")).contains("not a unicast address"));
    let gw =
        |g: &str| clustered("vip = \"192.0.2.1/24\"", &format!("vip = \"192.0.2.1/24\"\ngateway = \"{g}\""));
    assert_eq!(
        one_error(&gw("192.0.3.254")),
        "gateway.toml:26:11: cluster.external.gateway: 192.0.3.254 is not inside the vip's subnet 192.0.2.1/24"
    );
    assert_eq!(
        one_error(&gw("2001:db8::1")),
        "gateway.toml:26:11: cluster.external.gateway: 2001:db8::1 is IPv6 but the vip is IPv4"
    );
    assert!(one_error(&gw("192.0.2.1")).ends_with("192.0.2.1 is the vip itself"));
}

#[test]
fn rejects_a_heartbeat_timeout_below_twice_the_delay() {
    assert_eq!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nheartbeat_delay = \"300ms\"\n")),
        "gateway.toml:16:19: cluster.heartbeat_timeout: heartbeat_timeout (500ms) must be at least twice heartbeat_delay (300ms), or one late heartbeat declares a node dead"
    );
    let both =
        clustered("node_id = 1\n", "node_id = 1\nheartbeat_delay = 1\nheartbeat_timeout = \"1999ms\"\n");
    assert!(
        one_error(&both)
            .starts_with("gateway.toml:17:21: cluster.heartbeat_timeout: heartbeat_timeout (1999ms)")
    );
    let exact = clustered("node_id = 1\n", "node_id = 1\nheartbeat_delay = \"1s\"\nheartbeat_timeout = 2\n");
    assert_eq!(parse_ok(&exact).cluster.expect("a cluster").heartbeat_timeout, Duration::from_secs(2));
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nheartbeat_delay = \"0ms\"\n")).starts_with(
            "gateway.toml:16:19: cluster.heartbeat_delay: heartbeat_delay must be longer than 0"
        )
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nheartbeat_delay = \"1.5s\"\n"))
            .starts_with("gateway.toml:16:19: cluster.heartbeat_delay: invalid duration \"1.5s\"")
    );
}

#[test]
fn rejects_bad_cluster_numbers_and_keywords() {
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nsample_every = 0\n"))
            .starts_with("gateway.toml:16:16: cluster.sample_every: sample_every 0 is outside 1..=1024")
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nring_mib = 2\n")).starts_with(
            "gateway.toml:16:12: cluster.ring_mib: ring_mib 2 is neither 0 (no ring: recvmmsg) nor within 4..=1024"
        )
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nsync_port = 0\n"))
            .starts_with("gateway.toml:16:13: cluster.sync_port: sync_port 0 is outside 1..=65535")
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\ncluster_id = -1\n"))
            .starts_with("gateway.toml:16:14: cluster.cluster_id: cluster_id -1 is outside 0..=4294967295")
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\ntwo_node = \"both\"\n"))
            .starts_with("gateway.toml:16:12: cluster.two_node: unknown variant `both`")
    );
    assert!(
        one_error(&clustered("node_id = 1\n", "node_id = 1\nnodeid = 1\n"))
            .starts_with("gateway.toml:16:1: cluster.nodeid: unknown field `nodeid`")
    );
    assert!(
        one_error(&clustered("[cluster.internal]\ninterface = \"int0\"\nvip = \"198.51.100.1/24\"\n", ""))
            .starts_with("gateway.toml:14:1: cluster: missing field `internal`")
    );
    let three = clustered("node_id = 1\n", "node_id = 1\ntwo_node = \"lowest-id-serves\"\n").replace(
        "[cluster.external]",
        "[[cluster.nodes]]\nid = 3\naddress = \"10.9.0.3\"\n[cluster.external]",
    );
    let warnings: Vec<String> = parse_ok(&three).warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "gateway.toml:16:12: cluster.two_node: two_node applies only to a cluster of two nodes; with 3 the majority decides"
        ]
    );
}

#[test]
fn rejects_missing_short_and_repeated_cluster_secrets() {
    let none = clustered("secret = \"a long passphrase for the sync channel\"\n", "");
    assert_eq!(
        one_error(&none),
        "gateway.toml:14:1: cluster.secret: no cluster secret: set secret in [cluster], or better secret in [secrets.cluster] of the secrets_file"
    );
    assert_eq!(
        one_error(&clustered("a long passphrase for the sync channel", "short secret")),
        "gateway.toml:16:10: cluster.secret: the cluster secret is only 12 octets; use at least 16 random octets"
    );
    assert_eq!(
        one_error(&clustered("a long passphrase for the sync channel", "0xzz")),
        "gateway.toml:16:10: cluster.secret: invalid hex after \"0x\""
    );
    let twice = format!("{}[secrets.cluster]\nsecret = \"another long passphrase\"\n", clustered("", ""));
    assert_eq!(
        one_error(&twice),
        "gateway.toml:30:10: secrets.cluster.secret: a second cluster secret (the first is cluster.secret)"
    );
    let in_main = format!("{none}[secrets.cluster]\nsecret = \"another long passphrase\"\n");
    assert_eq!(parse_ok(&in_main).cluster.expect("a cluster").secret.expose(), b"another long passphrase");
    let unused = format!("{BASE}[secrets.cluster]\nsecret = \"another long passphrase\"\n");
    let warnings: Vec<String> = parse_ok(&unused).warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["gateway.toml:15:10: secrets.cluster.secret: ignored: there is no [cluster] section"]
    );
}

#[test]
fn reads_the_cluster_secret_from_the_secrets_file() {
    let dir = tempdir();
    let secrets = write(
        dir.path(),
        "secrets.toml",
        "[[secrets.ike]]\nsecret = \"0123456789abcdef0123\"\n[secrets.cluster]\nsecret = \"0x000102030405060708090a0b0c0d0e0f10\"\n",
        0o600,
    );
    let text = clustered("secret = \"a long passphrase for the sync channel\"\n", "")
        .replace("[[secrets.ike]]\nid = \"gw.example.com\"\nsecret = \"0123456789abcdef0123\"\n", "");
    let main = write(dir.path(), "gateway.toml", &format!("secrets_file = \"secrets.toml\"\n{text}"), 0o644);
    let config = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let c = config.cluster.as_ref().expect("a cluster");
    assert_eq!(c.secret.expose(), (0u8..17).collect::<Vec<_>>());
    assert_eq!(c.secret_origin, secrets);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // Both files: the second one is refused where it is.
    let both = write(
        dir.path(),
        "gateway.toml",
        &format!("secrets_file = \"secrets.toml\"\n{}", clustered("", "")),
        0o600,
    );
    let e = load(&both).expect_err("two secrets").to_string();
    assert!(
        e.ends_with(&format!(
            "{}:4:10: secrets.cluster.secret: a second cluster secret (the first is cluster.secret in {})",
            secrets.display(),
            both.display()
        )),
        "{e}"
    );
}

#[test]
fn warns_about_a_cluster_secret_in_a_readable_config() {
    let dir = tempdir();
    let text = clustered("", "");
    let main = write(dir.path(), "g.toml", &text, 0o640);
    let warnings: Vec<String> =
        load(&main).unwrap_or_else(|e| panic!("{e}")).warnings.iter().map(|w| w.key.clone()).collect();
    assert_eq!(warnings, ["secrets.ike", "cluster"]);
    let only = write(dir.path(), "g.toml", &text, 0o600);
    assert!(load(&only).unwrap_or_else(|e| panic!("{e}")).warnings.is_empty());
}

#[test]
fn rejects_local_addrs_other_than_the_external_vip() {
    let text =
        clustered("", "").replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = [\"%any\", \"192.0.2.9\"]");
    assert_eq!(
        one_error(&text),
        r#"gateway.toml:3:24: connections[0].local_addrs: 192.0.2.9 is not the cluster's external VIP: in cluster mode IKE and ESP use only 192.0.2.1; write "192.0.2.1" or "%any""#
    );
    let range = clustered("", "").replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = \"192.0.2.0/24\"");
    assert!(
        one_error(&range).starts_with("gateway.toml:3:15: connections[0].local_addrs: 192.0.2.0/24 is not")
    );
    let vip = clustered("", "").replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = \"192.0.2.1\"");
    parse_ok(&vip);
    // Without [cluster] any address goes.
    parse_ok(&BASE.replace("name = \"rw\"", "name = \"rw\"\nlocal_addrs = \"192.0.2.9\""));
}

#[test]
fn warns_that_dataplane_is_ignored_in_cluster_mode() {
    let text = format!("{}[dataplane]\nmtu = 1500\n", clustered("", ""));
    let config = parse_ok(&text);
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "gateway.toml:29:1: dataplane: [dataplane] (the TUN device) does not apply in cluster mode and is ignored: traffic goes through [cluster.external] and [cluster.internal]"
        ]
    );
    assert!(parse_ok(&format!("{BASE}[dataplane]\nmtu = 1500\n")).warnings.is_empty());
}

#[test]
fn never_prints_the_cluster_secret() {
    let text = clustered("a long passphrase for the sync channel", "hunter2hunter2hunter2");
    let config = parse_ok(&text);
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{:?}", config.cluster).contains("hunter2"));
    let summary = check::summary(&config, true);
    assert!(!summary.contains("hunter2"), "{summary}");
    for bad in ["secret = 12345678901234567", "secret = \"0xhunter2\""] {
        let e = one_error(&clustered("secret = \"a long passphrase for the sync channel\"", bad));
        assert!(!e.contains("hunter2") && !e.contains("12345678901234567"), "{e}");
    }
}

#[test]
fn check_describes_the_cluster() {
    let dir = tempdir();
    let text = clustered("vip = \"192.0.2.1/24\"", "vip = \"192.0.2.1/24\"\ngateway = \"192.0.2.254\"");
    let main = write(dir.path(), "g.toml", &text, 0o600);
    let report = check(&main, true);
    assert!(report.ok, "{}", report.stderr);
    let want = format!(
        "dataplane: cluster ports (no TUN device)\n\
         cluster: node 1 of 2 nodes, cluster_id 1, sync 10.9.0.1 port 4510, 4 segments\n  \
         node 1: 10.9.0.1 (this node)\n  \
         node 2: 10.9.0.2\n  \
         heartbeat_delay 100ms, heartbeat_timeout 500ms, two_node both-serve\n  \
         receive rings of 64 MiB per port, standbys verify 1 ESP packet in 16\n  \
         secret: 38 octets, from {}\n  \
         external: ext0 VIP 192.0.2.1/24 MAC 01:00:5e:00:02:01 gateway 192.0.2.254\n  \
         internal: int0 VIP 198.51.100.1/24 MAC 01:00:5e:33:64:01 gateway none\n",
        main.display()
    );
    assert!(report.stdout.contains(&want), "{}", report.stdout);
    assert!(!report.stdout.contains("passphrase"));
}

// --- Values -----------------------------------------------------------------

#[test]
fn parses_durations() {
    let ok =
        [("0", 0), ("45", 45), ("30s", 30), ("10m", 600), ("4h", 14_400), ("1d", 86_400), (" 2h ", 7200)];
    for (text, secs) in ok {
        assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)), "{text}");
    }
    for text in ["", "s", "4 h", "-1s", "1.5h", "1w", "4H", "3651d", "18446744073709551615d"] {
        assert!(parse_duration(text).is_err(), "{text}");
    }
    for secs in [0, 1, 59, 60, 90, 3600, 3660, 86_400, 90_000] {
        let d = Duration::from_secs(secs);
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
    assert_eq!(format_duration(Duration::from_secs(3960)), "66m");
}

#[test]
fn parses_millisecond_durations() {
    let ok = [("100ms", 100), ("0ms", 0), ("2s", 2000), ("1m", 60_000), ("3", 3000), (" 5ms ", 5)];
    for (text, ms) in ok {
        assert_eq!(parse_duration_ms(text), Ok(Duration::from_millis(ms)), "{text}");
    }
    for text in ["ms", "1.5ms", "-1ms", "1 ms", "1MS", "1us", "315360000001ms"] {
        assert!(parse_duration_ms(text).is_err(), "{text}");
    }
    for ms in [1, 100, 999, 1000, 1500, 60_000] {
        let d = Duration::from_millis(ms);
        assert_eq!(parse_duration_ms(&format_duration_ms(d)), Ok(d));
    }
    assert_eq!(format_duration_ms(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration_ms(Duration::from_millis(2000)), "2s");
}

#[test]
fn accepts_integer_durations() {
    let text = BASE.replace("name = \"rw\"", "name = \"rw\"\ndpd_delay = 10\nrekey_time = 7200");
    let c = &parse_ok(&text).connections[0];
    assert_eq!((c.dpd_delay, c.rekey_time), (Some(Duration::from_secs(10)), Duration::from_secs(7200)));
}

#[test]
fn parses_fragmentation_as_bool_or_word() {
    for (v, want) in [
        ("true", Fragmentation::Yes),
        ("false", Fragmentation::No),
        ("\"yes\"", Fragmentation::Yes),
        ("\"no\"", Fragmentation::No),
        ("\"accept\"", Fragmentation::Accept),
    ] {
        let text = BASE.replace("name = \"rw\"", &format!("name = \"rw\"\nfragmentation = {v}"));
        assert_eq!(parse_ok(&text).connections[0].fragmentation, want, "{v}");
    }
}

#[test]
fn parses_identities_like_strongswan() {
    let cases = [
        ("%any", IdSpec::Any),
        ("gw.example.com", IdSpec::Fqdn("gw.example.com".into())),
        ("@gw", IdSpec::Fqdn("gw".into())),
        ("@192.0.2.1", IdSpec::Fqdn("192.0.2.1".into())),
        ("192.0.2.1", IdSpec::Ipv4("192.0.2.1".parse().expect("v4"))),
        ("2001:db8::1", IdSpec::Ipv6("2001:db8::1".parse().expect("v6"))),
        ("user@example.com", IdSpec::Email("user@example.com".into())),
        ("C=CH, O=Example, CN=gw", IdSpec::Dn("C=CH, O=Example, CN=gw".into())),
        ("@#01ff", IdSpec::KeyId(vec![1, 255])),
    ];
    for (text, want) in cases {
        let id: IdSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(id, want, "{text}");
        assert_eq!(id.to_string().parse::<IdSpec>().as_ref(), Ok(&want), "{text} round-trips");
    }
    for bad in ["", "@", "@#", "@#0", "@#zz", "=x", "C=CH, =x"] {
        assert!(bad.parse::<IdSpec>().is_err(), "{bad:?}");
    }
}

#[test]
fn parses_peer_addresses() {
    let parse = |s: &str| s.parse::<PeerAddr>();
    assert_eq!(parse("%any"), Ok(PeerAddr::Any));
    assert_eq!(parse("vpn-gw.example.com"), Ok(PeerAddr::Name("vpn-gw.example.com".into())));
    assert_eq!(parse("10.0.0.0/8").map(|a| a.to_string()), Ok("10.0.0.0/8".into()));
    assert_eq!(parse("10.0.0.1-10.0.0.5").map(|a| a.to_string()), Ok("10.0.0.1-10.0.0.5".into()));
    for bad in ["10.0.0.256", "-x", "a..b", "10.0.0.1-", "has space"] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn round_trips_traffic_selectors() {
    for text in [
        "dynamic",
        "10.0.0.0/8",
        "0.0.0.0/0",
        "::/0",
        "fd00::1",
        "10.0.0.1-10.0.0.7",
        "10.0.0.0/8[tcp]",
        "dynamic[udp/500]",
        "10.0.0.0/8[tcp/80-90]",
        "10.0.0.0/8[99]",
    ] {
        let ts: TsSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let shown = ts.to_string();
        let want = if text == "fd00::1" { "fd00::1/128" } else { text };
        assert_eq!(shown, want);
        assert_eq!(shown.parse::<TsSpec>(), Ok(ts));
    }
    let ts: TsSpec = "10.0.0.0/8[%any/%any]".parse().expect("any");
    assert_eq!((ts.protocol, ts.start_port, ts.end_port), (0, 0, u16::MAX));
}

#[test]
fn leases_without_network_and_broadcast() {
    let leasable = |s: &str| s.parse::<IpRange>().map(|r| r.leasable().to_string());
    assert_eq!(leasable("10.3.0.0/24"), Ok("10.3.0.1-10.3.0.254".into()));
    assert_eq!(leasable("10.3.0.0/30"), Ok("10.3.0.1-10.3.0.2".into()));
    assert_eq!(leasable("10.3.0.0/31"), Ok("10.3.0.0/31".into()));
    assert_eq!(leasable("10.3.0.5-10.3.0.9"), Ok("10.3.0.5-10.3.0.9".into()));
    assert_eq!(leasable("fd00::/120"), Ok("fd00::1-fd00::ff".into()));
    assert_eq!(leasable("0.0.0.0/0"), Ok("0.0.0.1-255.255.255.254".into()));
}

// --- No input panics ----------------------------------------------------------

/// Pieces of configuration text for the random documents below.
const FRAGMENTS: &[&str] = &[
    "[[connections]]\n",
    "[connections.local]\n",
    "[connections.remote]\n",
    "[[connections.children]]\n",
    "[[secrets.ike]]\n",
    "[[secrets.private]]\n",
    "[pools.p]\n",
    "[dataplane]\n",
    "[control]\n",
    "[log]\n",
    "name = \"a\"\n",
    "name = \"b\"\n",
    "auth = \"psk\"\n",
    "auth = \"pubkey\"\n",
    "id = \"gw\"\n",
    "id = [\"%any\", \"@#00\"]\n",
    "secret = \"0x00\"\n",
    "secret = \"0s\"\n",
    "proposals = \"aes128-sha256-x25519,,default\"\n",
    "esp_proposals = [\"aes256gcm16\", \"\"]\n",
    "local_ts = [\"dynamic[tcp/1-65535]\", \"::/0\"]\n",
    "remote_ts = \"10.0.0.0/8[udp/0-0]\"\n",
    "local_addrs = [\"0.0.0.0/0\"]\n",
    "remote_addrs = \"::1-::2\"\n",
    "pools = [\"p\", \"q\"]\n",
    "addrs = \"255.255.255.255/32\"\n",
    "addrs = \"::/0\"\n",
    "rekey_time = \"3650d\"\n",
    "life_time = 0\n",
    "rand_time = 9223372036854775807\n",
    "over_time = \"0s\"\n",
    "mtu = -1\n",
    "tun_name = \"\"\n",
    "socket = \"\"\n",
    "start_action = \"start\"\n",
    "certs = \"/dev/null\"\n",
    "file = \"\"\n",
    "= \"\n",
    "[[",
    "\"\\u00e9\" = 1\n",
    "[cluster]\n",
    "[[cluster.nodes]]\n",
    "[cluster.external]\n",
    "[cluster.internal]\n",
    "[secrets.cluster]\n",
    "node_id = 1\n",
    "id = 1\n",
    "id = 16\n",
    "address = \"::\"\n",
    "interface = \"e\"\n",
    "vip = \"0.0.0.0/32\"\n",
    "vip = \"::1/128\"\n",
    "mac = \"ff:ff:ff:ff:ff:ff\"\n",
    "gateway = \"255.255.255.255\"\n",
    "heartbeat_delay = \"18446744073709551615ms\"\n",
    "segment_count = 0\n",
    "secret = \"0123456789abcdef\"\n",
];

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in ".{0,400}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_random_documents(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)) {
        let _ = parse(&parts.concat());
    }

    #[test]
    fn never_panics_on_a_mutated_example(at in 0usize..2000, len in 0usize..8, insert in ".{0,4}") {
        let example = include_str!("../../examples/gateway-psk.toml");
        let mut text = example.to_owned();
        let start = at.min(text.len());
        let end = (start + len).min(text.len());
        if text.is_char_boundary(start) && text.is_char_boundary(end) {
            text.replace_range(start..end, &insert);
        }
        let _ = parse(&text);
    }
}
