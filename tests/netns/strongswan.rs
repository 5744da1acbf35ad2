//! A strongSwan (charon) instance inside a [`Netns`], with the userspace ESP
//! plugin `kernel-libipsec` (this machine's kernel has no XFRM/ESP).
//!
//! Isolation, so that several instances run on one host:
//! * every instance has a private directory (`<netns dir>/ss-<name>/`) with
//!   `strongswan.conf`, `swanctl.conf`, `charon.log`, the vici socket
//!   `charon.vici` and the credential folders (`x509/`, `x509ca/`,
//!   `private/`, `ecdsa/`, `rsa/`, `pkcs8/`);
//! * `STRONGSWAN_CONF=<dir>/strongswan.conf` selects a self-contained config
//!   (explicit plugin list, vici socket path, file log; nothing from
//!   /etc/strongswan.d);
//! * `charon-systemd` writes no pid file and is preferred; with
//!   `/usr/lib/ipsec/charon` (pid file hard-coded to /var/run/charon.pid) the
//!   instance runs with a private `/run` (bind mount of `<dir>/run`);
//! * swanctl talks to it with `--uri unix://<dir>/charon.vici` (a path, so
//!   from any namespace) and `SWANCTL_DIR=<dir>`.
//!
//! Override the binary with `TANDEM_CHARON=/usr/lib/ipsec/charon` (or
//! [`StrongswanOptions::charon_bin`]).
#![allow(dead_code, unreachable_pub, missing_docs)]

use super::{Error, Netns, Process, Result, find_tool, run, wait_for, wait_for_some};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CHARON_SYSTEMD: &str = "/usr/sbin/charon-systemd";
pub const CHARON: &str = "/usr/lib/ipsec/charon";
pub const PLUGIN_DIR: &str = "/usr/lib/ipsec/plugins";

/// Log lines that mean the ESP data path dropped something.
pub const DATAPATH_ERRORS: &[&str] = &[
    "ESP sequence number verification failed",
    "ESP decryption or ICV verification failed",
    "parsing ESP payload failed",
    "failed to parse ESP header",
    "could not find an outbound IPsec SA",
    "discarding inbound IP packet",
];

/// The charon binary to use: `TANDEM_CHARON`, else charon-systemd, else
/// /usr/lib/ipsec/charon.
pub fn charon_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANDEM_CHARON") {
        return Some(PathBuf::from(p));
    }
    [CHARON_SYSTEMD, CHARON].iter().map(PathBuf::from).find(|p| p.exists())
}

/// True when swanctl, a charon binary and the kernel-libipsec plugin are
/// installed; otherwise prints "skipping: ..." (panics instead with
/// `TANDEM_NETNS_REQUIRED=1`).
pub fn available() -> bool {
    if !super::require_tool("swanctl") {
        return false;
    }
    if charon_binary().is_none() {
        return super::skip(&format!(
            "needs charon ({CHARON_SYSTEMD} or {CHARON}; install with .ci/install-interop.sh)"
        ));
    }
    let plugin = Path::new(PLUGIN_DIR).join("libstrongswan-kernel-libipsec.so");
    if !plugin.exists() {
        return super::skip(&format!(
            "needs strongSwan's kernel-libipsec plugin ({}, package libcharon-extra-plugins)",
            plugin.display()
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return super::skip("needs /dev/net/tun (kernel-libipsec uses a TUN device)");
    }
    true
}

/// strongswan.conf knobs.
#[derive(Clone, Debug)]
pub struct StrongswanOptions {
    /// Plugins, in order; kernel-libipsec must come before kernel-netlink.
    /// A trailing `!` marks a plugin critical (charon refuses to start
    /// without it). kernel-netlink must not be critical: its kernel-ipsec
    /// (XFRM) feature fails on this kernel, and a critical plugin with a
    /// failed feature aborts the start; its kernel-net part (routes,
    /// addresses, table 220) still loads.
    pub plugins: Vec<String>,
    /// Log level of every subsystem (-1..4).
    pub loglevel: i32,
    /// Log level of the `ike` subsystem (2 shows the message contents).
    pub ike_loglevel: i32,
    /// Mark on charon's own UDP packets (socket-default) that the table-220
    /// rule skips (kernel-netlink `fwmark = !mark`), so IKE and ESP-in-UDP
    /// to a peer inside the remote traffic selector do not loop into ipsec0.
    /// None leaves both unset.
    pub fwmark: Option<String>,
    /// kernel-libipsec `allow_peer_ts`: accept a remote TS that contains the
    /// IKE peer (needs `fwmark`).
    pub allow_peer_ts: bool,
    /// charon.install_virtual_ip (a VIP from the peer's pool goes on ipsec0).
    pub install_virtual_ip: bool,
    pub retransmit_tries: u32,
    pub retransmit_timeout: f64,
    pub retransmit_base: f64,
    /// Extra lines inside `charon { ... }`.
    pub extra: Vec<String>,
    /// Binary override (default: [`charon_binary`]).
    pub charon_bin: Option<PathBuf>,
    /// How long `start` waits for the vici socket.
    pub start_timeout: Duration,
}

impl Default for StrongswanOptions {
    fn default() -> Self {
        let plugins = "random! nonce! openssl! aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 x509 pubkey \
                       revocation constraints kernel-libipsec! kernel-netlink socket-default! vici!";
        StrongswanOptions {
            plugins: plugins.split_whitespace().map(String::from).collect(),
            loglevel: 1,
            ike_loglevel: 2,
            fwmark: Some("0x42".into()),
            allow_peer_ts: true,
            install_virtual_ip: true,
            retransmit_tries: 3,
            retransmit_timeout: 2.0,
            retransmit_base: 1.4,
            extra: Vec::new(),
            charon_bin: None,
            start_timeout: Duration::from_secs(10),
        }
    }
}

/// Renders the self-contained strongswan.conf of an instance in `dir`.
pub fn render_strongswan_conf(dir: &Path, o: &StrongswanOptions) -> String {
    let d = dir.display();
    let (sd_mark, kn_mark) = match &o.fwmark {
        Some(m) => (format!("fwmark = {m}"), format!("fwmark = !{m}")),
        None => (String::new(), String::new()),
    };
    let yn = |b: bool| if b { "yes" } else { "no" };
    let l = o.loglevel;
    let mut extra = String::new();
    for line in &o.extra {
        let _ = writeln!(extra, "    {line}");
    }
    format!(
        "# strongswan.conf of a test instance (tests/netns/strongswan.rs); self-contained:\n\
         # nothing from /etc/strongswan.d. Selected with STRONGSWAN_CONF.\n\
         charon {{\n\
         \x20   load = {plugins}\n\
         \x20   port = 500\n\
         \x20   port_nat_t = 4500\n\
         \x20   install_routes = yes\n\
         \x20   install_virtual_ip = {vip}\n\
         \x20   retransmit_tries = {rt}\n\
         \x20   retransmit_timeout = {rto}\n\
         \x20   retransmit_base = {rb}\n\
         \x20   make_before_break = yes\n\
         \x20   check_current_path = no\n\
         {extra}\
         \x20   plugins {{\n\
         \x20       vici {{\n\
         \x20           socket = unix://{d}/charon.vici\n\
         \x20       }}\n\
         \x20       kernel-libipsec {{\n\
         \x20           allow_peer_ts = {apt}\n\
         \x20       }}\n\
         \x20       kernel-netlink {{\n\
         \x20           receive_buffer_size = 8388608\n\
         \x20           {kn_mark}\n\
         \x20       }}\n\
         \x20       socket-default {{\n\
         \x20           use_ipv6 = no\n\
         \x20           {sd_mark}\n\
         \x20       }}\n\
         \x20   }}\n\
         \x20   filelog {{\n\
         \x20       tdm {{\n\
         \x20           path = {d}/charon.log\n\
         \x20           time_format = %H:%M:%S\n\
         \x20           ike_name = yes\n\
         \x20           append = yes\n\
         \x20           flush_line = yes\n\
         \x20           default = {l}\n\
         \x20           ike = {ike}\n\
         \x20           knl = {l}\n\
         \x20           cfg = {l}\n\
         \x20           net = {l}\n\
         \x20           esp = {l}\n\
         \x20       }}\n\
         \x20   }}\n\
         \x20   syslog {{\n\
         \x20       daemon {{\n\
         \x20           default = -1\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n\
         charon-systemd {{\n\
         \x20   journal {{\n\
         \x20       default = -1\n\
         \x20   }}\n\
         }}\n\
         swanctl {{\n\
         \x20   load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints\n\
         }}\n",
        plugins = o.plugins.join(" "),
        vip = yn(o.install_virtual_ip),
        rt = o.retransmit_tries,
        rto = o.retransmit_timeout,
        rb = o.retransmit_base,
        apt = yn(o.allow_peer_ts),
        ike = o.ike_loglevel,
    )
}

// ---------------------------------------------------------------------------
// swanctl.conf

/// Quotes a swanctl.conf value unless it is a plain token.
fn q(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/%@*+!=".contains(c))
        && !v.starts_with('"');
    if plain { v.to_string() } else { format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")) }
}

fn list(v: &[String]) -> String {
    v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
}

/// An authentication round (`local { }` / `remote { }`).
#[derive(Clone, Debug)]
pub struct Auth {
    /// "psk", "pubkey", ...
    pub auth: String,
    /// IKE identity (None: the IP address locally, %any remotely).
    pub id: Option<String>,
    /// Certificate files in `x509/` (local side).
    pub certs: Vec<String>,
    /// CA certificate files in `x509ca/` the peer must chain to (remote side).
    pub cacerts: Vec<String>,
    /// Extra `key = value` lines.
    pub extra: Vec<(String, String)>,
}

impl Auth {
    pub fn psk(id: Option<&str>) -> Auth {
        Auth { auth: "psk".into(), id: id.map(String::from), certs: vec![], cacerts: vec![], extra: vec![] }
    }

    /// Local side: authenticate with `cert` (a file in `x509/`; its key in
    /// `private/`, `ecdsa/` or `rsa/`).
    pub fn cert(id: Option<&str>, cert: &str) -> Auth {
        Auth { certs: vec![cert.into()], ..Auth::pubkey(id) }
    }

    /// Remote side: a certificate chaining to `cacert` (a file in `x509ca/`).
    pub fn cert_from_ca(id: Option<&str>, cacert: &str) -> Auth {
        Auth { cacerts: vec![cacert.into()], ..Auth::pubkey(id) }
    }

    pub fn pubkey(id: Option<&str>) -> Auth {
        Auth { auth: "pubkey".into(), ..Auth::psk(id) }
    }

    fn render(&self, section: &str, out: &mut String) {
        let _ = writeln!(out, "        {section} {{");
        let _ = writeln!(out, "            auth = {}", q(&self.auth));
        if let Some(id) = &self.id {
            let _ = writeln!(out, "            id = {}", q(id));
        }
        if !self.certs.is_empty() {
            let _ = writeln!(out, "            certs = {}", list(&self.certs));
        }
        if !self.cacerts.is_empty() {
            let _ = writeln!(out, "            cacerts = {}", list(&self.cacerts));
        }
        for (k, v) in &self.extra {
            let _ = writeln!(out, "            {k} = {}", q(v));
        }
        let _ = writeln!(out, "        }}");
    }
}

/// A CHILD_SA configuration (`children { NAME { } }`).
#[derive(Clone, Debug)]
pub struct ChildConf {
    pub name: String,
    /// "tunnel" or "transport".
    pub mode: String,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub esp_proposals: String,
    /// e.g. "1h"; None leaves strongSwan's default.
    pub rekey_time: Option<String>,
    pub life_time: Option<String>,
    pub rekey_bytes: Option<u64>,
    pub rekey_packets: Option<u64>,
    /// clear | trap | restart (DPD)
    pub dpd_action: Option<String>,
    /// none | trap | start
    pub start_action: Option<String>,
    /// none | trap | start
    pub close_action: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl ChildConf {
    pub fn new(name: &str, local_ts: &str, remote_ts: &str, esp_proposals: &str) -> ChildConf {
        ChildConf {
            name: name.into(),
            mode: "tunnel".into(),
            local_ts: vec![local_ts.into()],
            remote_ts: vec![remote_ts.into()],
            esp_proposals: esp_proposals.into(),
            rekey_time: None,
            life_time: None,
            rekey_bytes: None,
            rekey_packets: None,
            dpd_action: None,
            start_action: None,
            close_action: None,
            extra: vec![],
        }
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "            {} {{", self.name);
        let _ = writeln!(out, "                mode = {}", q(&self.mode));
        let _ = writeln!(out, "                local_ts = {}", list(&self.local_ts));
        let _ = writeln!(out, "                remote_ts = {}", list(&self.remote_ts));
        let _ = writeln!(out, "                esp_proposals = {}", q(&self.esp_proposals));
        let opts: [(&str, Option<String>); 7] = [
            ("rekey_time", self.rekey_time.clone()),
            ("life_time", self.life_time.clone()),
            ("rekey_bytes", self.rekey_bytes.map(|v| v.to_string())),
            ("rekey_packets", self.rekey_packets.map(|v| v.to_string())),
            ("dpd_action", self.dpd_action.clone()),
            ("start_action", self.start_action.clone()),
            ("close_action", self.close_action.clone()),
        ];
        for (k, v) in opts {
            if let Some(v) = v {
                let _ = writeln!(out, "                {k} = {}", q(&v));
            }
        }
        for (k, v) in &self.extra {
            let _ = writeln!(out, "                {k} = {}", q(v));
        }
        let _ = writeln!(out, "            }}");
    }
}

/// An IKE connection (`connections { NAME { } }`).
#[derive(Clone, Debug)]
pub struct ConnConf {
    pub name: String,
    pub local_addrs: Vec<String>,
    /// `%any` for a responder accepting anyone.
    pub remote_addrs: Vec<String>,
    pub local_port: Option<u16>,
    pub remote_port: Option<u16>,
    /// IKE proposals in strongSwan syntax, e.g. "aes256gcm16-prfsha256-x25519".
    pub proposals: String,
    /// Force UDP encapsulation of ESP (libipsec always encapsulates anyway).
    pub encap: bool,
    pub mobike: bool,
    /// yes | accept | force | no
    pub fragmentation: String,
    /// e.g. "2s"; None = off.
    pub dpd_delay: Option<String>,
    pub dpd_timeout: Option<String>,
    /// IKE_SA rekey time, e.g. "4h".
    pub rekey_time: Option<String>,
    pub reauth_time: Option<String>,
    pub keyingtries: u32,
    /// Virtual IPs to request (initiator), e.g. "0.0.0.0".
    pub vips: Vec<String>,
    /// Pools to assign from (responder).
    pub pools: Vec<String>,
    pub local: Auth,
    pub remote: Auth,
    pub children: Vec<ChildConf>,
    pub extra: Vec<(String, String)>,
}

impl ConnConf {
    /// An IKEv2 connection with PSK auth on both sides, MOBIKE on,
    /// fragmentation on, one keying try, no children yet.
    pub fn new(name: &str, local_addr: &str, remote_addr: &str, proposals: &str) -> ConnConf {
        ConnConf {
            name: name.into(),
            local_addrs: vec![local_addr.into()],
            remote_addrs: vec![remote_addr.into()],
            local_port: None,
            remote_port: None,
            proposals: proposals.into(),
            encap: false,
            mobike: true,
            fragmentation: "yes".into(),
            dpd_delay: None,
            dpd_timeout: None,
            rekey_time: None,
            reauth_time: None,
            keyingtries: 1,
            vips: vec![],
            pools: vec![],
            local: Auth::psk(None),
            remote: Auth::psk(None),
            children: vec![],
            extra: vec![],
        }
    }

    pub fn child(mut self, child: ChildConf) -> ConnConf {
        self.children.push(child);
        self
    }

    fn render(&self, out: &mut String) {
        let yn = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(out, "    {} {{", self.name);
        let _ = writeln!(out, "        version = 2");
        if !self.local_addrs.is_empty() {
            let _ = writeln!(out, "        local_addrs = {}", list(&self.local_addrs));
        }
        if !self.remote_addrs.is_empty() {
            let _ = writeln!(out, "        remote_addrs = {}", list(&self.remote_addrs));
        }
        if let Some(p) = self.local_port {
            let _ = writeln!(out, "        local_port = {p}");
        }
        if let Some(p) = self.remote_port {
            let _ = writeln!(out, "        remote_port = {p}");
        }
        let _ = writeln!(out, "        proposals = {}", q(&self.proposals));
        let _ = writeln!(out, "        encap = {}", yn(self.encap));
        let _ = writeln!(out, "        mobike = {}", yn(self.mobike));
        let _ = writeln!(out, "        fragmentation = {}", q(&self.fragmentation));
        let _ = writeln!(out, "        keyingtries = {}", self.keyingtries);
        let opts: [(&str, &Option<String>); 4] = [
            ("dpd_delay", &self.dpd_delay),
            ("dpd_timeout", &self.dpd_timeout),
            ("rekey_time", &self.rekey_time),
            ("reauth_time", &self.reauth_time),
        ];
        for (k, v) in opts {
            if let Some(v) = v {
                let _ = writeln!(out, "        {k} = {}", q(v));
            }
        }
        if !self.vips.is_empty() {
            let _ = writeln!(out, "        vips = {}", list(&self.vips));
        }
        if !self.pools.is_empty() {
            let _ = writeln!(out, "        pools = {}", list(&self.pools));
        }
        for (k, v) in &self.extra {
            let _ = writeln!(out, "        {k} = {}", q(v));
        }
        self.local.render("local", out);
        self.remote.render("remote", out);
        let _ = writeln!(out, "        children {{");
        for c in &self.children {
            c.render(out);
        }
        let _ = writeln!(out, "        }}");
        let _ = writeln!(out, "    }}");
    }
}

/// An entry of `secrets { }`.
#[derive(Clone, Debug)]
pub enum Secret {
    /// `ike-NAME { secret = ...; id-N = ... }`. A secret starting with `0x`
    /// (hex) or `0s` (base64) is written raw, anything else quoted. No ids:
    /// used for any peer.
    Ike { name: String, secret: String, ids: Vec<String> },
    /// `private-NAME { file = ...; secret = ... }` for an encrypted key in
    /// `private/`.
    Private { name: String, file: String, secret: Option<String> },
}

impl Secret {
    pub fn psk(secret: &str) -> Secret {
        Secret::Ike { name: "tdm".into(), secret: secret.into(), ids: vec![] }
    }
}

/// `pools { NAME { addrs = ...; dns = ... } }`.
#[derive(Clone, Debug)]
pub struct PoolConf {
    pub name: String,
    /// e.g. "10.3.0.0/24" or "10.3.0.10-10.3.0.20"
    pub addrs: String,
    pub dns: Vec<String>,
}

/// A whole swanctl.conf.
#[derive(Clone, Debug, Default)]
pub struct SwanctlConf {
    pub connections: Vec<ConnConf>,
    pub secrets: Vec<Secret>,
    pub pools: Vec<PoolConf>,
}

impl SwanctlConf {
    pub fn render(&self) -> String {
        let mut out = String::from("# rendered by tests/netns/strongswan.rs\nconnections {\n");
        for c in &self.connections {
            c.render(&mut out);
        }
        out.push_str("}\n\nsecrets {\n");
        for (i, s) in self.secrets.iter().enumerate() {
            match s {
                Secret::Ike { name, secret, ids } => {
                    let _ = writeln!(out, "    ike-{name}{i} {{");
                    let raw = secret.starts_with("0x") || secret.starts_with("0s");
                    let v = if raw { secret.clone() } else { format!("\"{}\"", secret.replace('"', "\\\"")) };
                    let _ = writeln!(out, "        secret = {v}");
                    for (n, id) in ids.iter().enumerate() {
                        let _ = writeln!(out, "        id-{n} = {}", q(id));
                    }
                    let _ = writeln!(out, "    }}");
                }
                Secret::Private { name, file, secret } => {
                    let _ = writeln!(out, "    private-{name}{i} {{");
                    let _ = writeln!(out, "        file = {}", q(file));
                    if let Some(s) = secret {
                        let _ = writeln!(out, "        secret = {}", q(s));
                    }
                    let _ = writeln!(out, "    }}");
                }
            }
        }
        out.push_str("}\n\npools {\n");
        for p in &self.pools {
            let _ = writeln!(out, "    {} {{", p.name);
            let _ = writeln!(out, "        addrs = {}", q(&p.addrs));
            if !p.dns.is_empty() {
                let _ = writeln!(out, "        dns = {}", list(&p.dns));
            }
            let _ = writeln!(out, "    }}");
        }
        out.push_str("}\n");
        out
    }
}

// ---------------------------------------------------------------------------
// Parsed `swanctl --list-sas --pretty`

/// A vici section: ordered `key = value`, `key [ items ]`, `key { ... }`.
#[derive(Clone, Debug, Default)]
pub struct Section {
    pub values: Vec<(String, String)>,
    pub lists: Vec<(String, Vec<String>)>,
    pub sections: Vec<(String, Section)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    pub fn list(&self, key: &str) -> &[String] {
        self.lists.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice()).unwrap_or(&[])
    }

    pub fn section(&self, key: &str) -> Option<&Section> {
        self.sections.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn push_value(stack: &mut [(String, Section)], k: &str, v: &str) {
    if let Some((_, top)) = stack.last_mut() {
        top.values.push((k.trim().to_string(), v.trim().to_string()));
    }
}

/// Parses swanctl's `--pretty` output (a sequence of `name {` blocks).
pub fn parse_pretty(text: &str) -> Result<Section> {
    let mut stack: Vec<(String, Section)> = vec![(String::new(), Section::default())];
    let mut in_list: Option<(String, Vec<String>)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((_, items)) = in_list.as_mut() {
            if line == "]" {
                let (k, items) = in_list.take().ok_or_else(|| Error::new("list"))?;
                if let Some((_, top)) = stack.last_mut() {
                    top.lists.push((k, items));
                }
            } else {
                items.push(line.to_string());
            }
            continue;
        }
        if line == "}" {
            if stack.len() < 2 {
                return Err(Error::new(format!("swanctl output line {}: unbalanced '}}'", n + 1)));
            }
            let (k, s) = stack.pop().ok_or_else(|| Error::new("stack"))?;
            if let Some((_, top)) = stack.last_mut() {
                top.sections.push((k, s));
            }
        } else if let Some(name) = line.strip_suffix(" {") {
            stack.push((name.trim().to_string(), Section::default()));
        } else if let Some(name) = line.strip_suffix(" [") {
            // "local-ts = [" (swanctl 5.9) or "local-ts [" (raw vici)
            let name = name.trim().trim_end_matches('=').trim_end();
            in_list = Some((name.to_string(), Vec::new()));
        } else if let Some((k, v)) = line.split_once(" = ") {
            push_value(&mut stack, k, v);
        } else if let Some(k) = line.strip_suffix(" =") {
            push_value(&mut stack, k, "");
        }
        // anything else (plugin warnings and the like) is ignored
    }
    if stack.len() != 1 {
        return Err(Error::new("swanctl output: unterminated section"));
    }
    Ok(stack.pop().map(|(_, s)| s).unwrap_or_default())
}

/// One IKE_SA of `--list-sas`.
#[derive(Clone, Debug)]
pub struct IkeSa {
    /// Connection name.
    pub name: String,
    pub fields: Section,
    pub children: Vec<ChildSa>,
}

impl IkeSa {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key)
    }

    pub fn uniqueid(&self) -> u64 {
        self.fields.get_u64("uniqueid").unwrap_or(0)
    }

    /// "ESTABLISHED", "CONNECTING", "REKEYING", "DELETING", ...
    pub fn state(&self) -> &str {
        self.get("state").unwrap_or("")
    }

    pub fn established(&self) -> bool {
        self.state() == "ESTABLISHED"
    }

    pub fn spis(&self) -> (String, String) {
        (self.get("initiator-spi").unwrap_or("").into(), self.get("responder-spi").unwrap_or("").into())
    }

    /// "yes" when this end saw a NAT (either side).
    pub fn nat_any(&self) -> bool {
        self.get("nat-any") == Some("yes")
    }

    pub fn remote_port(&self) -> Option<u16> {
        self.get("remote-port")?.parse().ok()
    }

    pub fn local_port(&self) -> Option<u16> {
        self.get("local-port")?.parse().ok()
    }

    pub fn child(&self, name: &str) -> Option<&ChildSa> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// One CHILD_SA of `--list-sas`.
#[derive(Clone, Debug)]
pub struct ChildSa {
    pub name: String,
    pub fields: Section,
}

impl ChildSa {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key)
    }

    pub fn uniqueid(&self) -> u64 {
        self.fields.get_u64("uniqueid").unwrap_or(0)
    }

    /// "INSTALLED", "REKEYING", "REKEYED", "DELETING", ...
    pub fn state(&self) -> &str {
        self.get("state").unwrap_or("")
    }

    pub fn installed(&self) -> bool {
        self.state() == "INSTALLED"
    }

    /// ESP in UDP (always, with kernel-libipsec).
    pub fn encap(&self) -> bool {
        self.get("encap") == Some("yes")
    }

    pub fn spi_in(&self) -> &str {
        self.get("spi-in").unwrap_or("")
    }

    pub fn spi_out(&self) -> &str {
        self.get("spi-out").unwrap_or("")
    }

    pub fn bytes_in(&self) -> u64 {
        self.fields.get_u64("bytes-in").unwrap_or(0)
    }

    pub fn bytes_out(&self) -> u64 {
        self.fields.get_u64("bytes-out").unwrap_or(0)
    }

    pub fn packets_in(&self) -> u64 {
        self.fields.get_u64("packets-in").unwrap_or(0)
    }

    pub fn packets_out(&self) -> u64 {
        self.fields.get_u64("packets-out").unwrap_or(0)
    }

    pub fn local_ts(&self) -> &[String] {
        self.fields.list("local-ts")
    }

    pub fn remote_ts(&self) -> &[String] {
        self.fields.list("remote-ts")
    }
}

fn ike_sas_from(root: &Section) -> Vec<IkeSa> {
    // root: one "list-sa event" section per IKE_SA, holding "<conn> { ... }"
    let mut out = Vec::new();
    for (_, ev) in &root.sections {
        for (name, ike) in &ev.sections {
            let children = ike
                .section("child-sas")
                .map(|cs| {
                    cs.sections
                        .iter()
                        .map(|(_, c)| ChildSa {
                            name: c.get("name").unwrap_or("").to_string(),
                            fields: c.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(IkeSa { name: name.clone(), fields: ike.clone(), children });
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The instance

/// A running charon. Dropping it stops charon (SIGTERM, then SIGKILL).
pub struct Strongswan {
    name: String,
    ns_name: String,
    dir: PathBuf,
    uri: String,
    process: Option<Process>,
}

/// Credential folders under the instance directory (`SWANCTL_DIR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cred {
    /// End-entity certificates (`certs = ...`).
    X509,
    /// CA certificates (`cacerts = ...`).
    X509Ca,
    /// Private keys of any type.
    Private,
    Ecdsa,
    Rsa,
    Pkcs8,
}

impl Cred {
    pub fn dir(self) -> &'static str {
        match self {
            Cred::X509 => "x509",
            Cred::X509Ca => "x509ca",
            Cred::Private => "private",
            Cred::Ecdsa => "ecdsa",
            Cred::Rsa => "rsa",
            Cred::Pkcs8 => "pkcs8",
        }
    }
}

const CRED_DIRS: &[&str] = &["x509", "x509ca", "private", "ecdsa", "rsa", "pkcs8", "pubkey", "x509crl"];

impl Strongswan {
    /// Starts charon in `ns` with default options.
    pub fn start(ns: &Netns, name: &str) -> Result<Strongswan> {
        Strongswan::start_with(ns, name, &StrongswanOptions::default())
    }

    /// Writes the instance directory and strongswan.conf, starts charon in
    /// `ns` and waits until its vici socket answers.
    pub fn start_with(ns: &Netns, name: &str, opts: &StrongswanOptions) -> Result<Strongswan> {
        let bin = opts
            .charon_bin
            .clone()
            .or_else(charon_binary)
            .ok_or_else(|| Error::new("no charon binary (install with .ci/install-interop.sh)"))?;
        let dir = ns.dir().join(format!("ss-{name}"));
        let socket = dir.join("charon.vici");
        if socket.as_os_str().len() > 100 {
            return Err(Error::new(format!("vici socket path too long for AF_UNIX: {}", socket.display())));
        }
        fs::create_dir_all(dir.join("run"))?;
        for d in CRED_DIRS {
            fs::create_dir_all(dir.join(d))?;
        }
        let conf = dir.join("strongswan.conf");
        fs::write(&conf, render_strongswan_conf(&dir, opts))?;
        fs::write(dir.join("charon.log"), "")?;
        let _ = fs::remove_file(&socket);
        let uri = format!("unix://{}", socket.display());

        let env: [(&str, &OsStr); 1] = [("STRONGSWAN_CONF", conf.as_os_str())];
        let bin_s = bin.to_string_lossy().into_owned();
        let run_dir = dir.join("run").to_string_lossy().into_owned();
        let process = if bin.file_name() == Some(OsStr::new("charon")) {
            // pid file hard-coded to /var/run/charon.pid: give it a private /run
            ns.spawn_env(
                &[
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    "mount --bind \"$0\" /run && exec \"$1\"",
                    &run_dir,
                    &bin_s,
                ],
                &env,
            )?
        } else {
            ns.spawn_env(&[&bin_s], &env)?
        };
        let mut ss =
            Strongswan { name: name.into(), ns_name: ns.name().into(), dir, uri, process: Some(process) };
        let up = wait_for(&format!("charon {name} to open {}", socket.display()), opts.start_timeout, || {
            if ss.process.as_mut().is_some_and(|p| !p.is_running()) {
                return true; // fail fast below
            }
            socket.exists() && ss.swanctl("--stats", &[]).is_ok()
        });
        let running = ss.process.as_mut().map(|p| p.is_running()).unwrap_or(false);
        if let Err(e) = up.and_then(|_| if running { Ok(()) } else { Err(Error::new("charon exited")) }) {
            let out = ss.process.as_ref().map(|p| p.log()).unwrap_or_default();
            return Err(Error::new(format!(
                "starting charon {name} ({}) in {}: {e}\n--- charon output:\n{out}\n--- charon.log (tail):\n{}",
                bin.display(),
                ns.name(),
                ss.log_tail(40)
            )));
        }
        Ok(ss)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `unix://<dir>/charon.vici`
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid())
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().map(|p| p.is_running()).unwrap_or(false)
    }

    /// Writes a credential file (certificate or key, PEM or DER) into the
    /// instance's `SWANCTL_DIR`; `load` picks it up.
    pub fn add_cred(&self, kind: Cred, file: &str, contents: &[u8]) -> Result<PathBuf> {
        let p = self.dir.join(kind.dir()).join(file);
        fs::write(&p, contents)?;
        Ok(p)
    }

    /// Copies a credential file into the instance's `SWANCTL_DIR`.
    pub fn copy_cred(&self, kind: Cred, src: &Path) -> Result<PathBuf> {
        let name = src.file_name().ok_or_else(|| Error::new("copy_cred: no file name"))?;
        let p = self.dir.join(kind.dir()).join(name);
        fs::copy(src, &p)
            .map_err(|e| Error::new(format!("copy {} -> {}: {e}", src.display(), p.display())))?;
        Ok(p)
    }

    /// `swanctl <command> --uri <ours> args...` (swanctl's options belong to
    /// the command, so `--uri` comes after it). 30 s limit. The error carries
    /// swanctl's output and the tail of the charon log.
    pub fn swanctl(&self, command: &str, args: &[&str]) -> Result<String> {
        self.swanctl_timeout(command, args, Duration::from_secs(30))
    }

    pub fn swanctl_timeout(&self, command: &str, args: &[&str], timeout: Duration) -> Result<String> {
        let swanctl = find_tool("swanctl").ok_or_else(|| Error::new("swanctl is not installed"))?;
        let mut cmd = Command::new(swanctl);
        cmd.arg(command)
            .arg("--uri")
            .arg(&self.uri)
            .args(args)
            .env("SWANCTL_DIR", &self.dir)
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"));
        let out = run(&mut cmd, timeout).map_err(|e| e.context(format!("charon {}", self.name)))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Renders `conf` to `<dir>/swanctl.conf` (mode 0600) and loads
    /// everything (credentials from the folders, pools, connections).
    pub fn load(&self, conf: &SwanctlConf) -> Result<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("swanctl.conf");
        fs::write(&path, conf.render())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        let file = path.to_string_lossy().into_owned();
        self.swanctl("--load-all", &["--noprompt", "--file", &file])
            .map_err(|e| e.context(format!("loading {file}")))
    }

    fn with_log(&self, e: Error) -> Error {
        Error::new(format!("{e}\n--- charon {} log (tail):\n{}", self.name, self.log_tail(40)))
    }

    /// Initiates CHILD_SA `child` (and its IKE_SA) and waits until it is up
    /// or failed (swanctl `--timeout 20`).
    pub fn initiate(&self, child: &str) -> Result<String> {
        self.swanctl_timeout("--initiate", &["--child", child, "--timeout", "20"], Duration::from_secs(25))
            .map_err(|e| self.with_log(e))
    }

    /// Initiates only the IKE_SA of connection `ike` (no CHILD_SA).
    pub fn initiate_ike(&self, ike: &str) -> Result<String> {
        self.swanctl_timeout("--initiate", &["--ike", ike, "--timeout", "20"], Duration::from_secs(25))
            .map_err(|e| self.with_log(e))
    }

    /// `swanctl --list-sas` as people read it.
    pub fn list_sas(&self) -> Result<String> {
        self.swanctl("--list-sas", &["--noblock"])
    }

    /// `swanctl --list-sas --pretty`, parsed.
    pub fn sas(&self) -> Result<Vec<IkeSa>> {
        let text = self.swanctl("--list-sas", &["--noblock", "--pretty"])?;
        Ok(ike_sas_from(&parse_pretty(&text)?))
    }

    /// Installed CHILD_SAs named `child`, over all IKE_SAs.
    pub fn installed_children(&self, child: &str) -> Result<Vec<ChildSa>> {
        Ok(self
            .sas()?
            .into_iter()
            .flat_map(|ike| ike.children)
            .filter(|c| c.name == child && c.installed())
            .collect())
    }

    /// Waits until exactly one CHILD_SA `child` is installed and returns it.
    pub fn wait_child_installed(&self, child: &str, timeout: Duration) -> Result<ChildSa> {
        let what = format!("CHILD_SA {child} installed on {}", self.name);
        wait_for_some(&what, timeout, || {
            let mut v = self.installed_children(child).ok()?;
            (v.len() == 1).then(|| v.remove(0))
        })
        .map_err(|e| self.with_log(e))
    }

    /// Waits until an established IKE_SA of connection `ike` exists.
    pub fn wait_ike_established(&self, ike: &str, timeout: Duration) -> Result<IkeSa> {
        let what = format!("IKE_SA {ike} established on {}", self.name);
        wait_for_some(&what, timeout, || {
            self.sas().ok()?.into_iter().find(|s| s.name == ike && s.established())
        })
        .map_err(|e| self.with_log(e))
    }

    /// Asks charon to rekey CHILD_SA `child` (returns once queued).
    pub fn rekey_child(&self, child: &str) -> Result<String> {
        self.swanctl("--rekey", &["--child", child])
    }

    /// Asks charon to rekey IKE_SA `ike` (returns once queued).
    pub fn rekey_ike(&self, ike: &str) -> Result<String> {
        self.swanctl("--rekey", &["--ike", ike])
    }

    /// Rekeys CHILD_SA `child` and waits until a new one (other unique id and
    /// SPIs) is the only one INSTALLED. Returns (old, new). The old one stays
    /// listed as REKEYED/DELETED for `charon.delete_rekeyed_delay` (5 s):
    /// strongSwan keeps its inbound SA that long for late packets.
    pub fn rekey_child_and_wait(&self, child: &str, timeout: Duration) -> Result<(ChildSa, ChildSa)> {
        let old = self.wait_child_installed(child, timeout)?;
        self.rekey_child(child)?;
        let what = format!("CHILD_SA {child} rekeyed on {}", self.name);
        let new = wait_for_some(&what, timeout, || {
            let mut v = self.installed_children(child).ok()?;
            match v.as_slice() {
                [c] if c.uniqueid() != old.uniqueid() && c.spi_in() != old.spi_in() => Some(v.remove(0)),
                _ => None,
            }
        })
        .map_err(|e| self.with_log(e))?;
        Ok((old, new))
    }

    /// Rekeys IKE_SA `ike` and waits until the established IKE_SA has new
    /// SPIs (and still carries its CHILD_SAs). Returns (old, new).
    pub fn rekey_ike_and_wait(&self, ike: &str, timeout: Duration) -> Result<(IkeSa, IkeSa)> {
        let old = self.wait_ike_established(ike, timeout)?;
        self.rekey_ike(ike)?;
        let what = format!("IKE_SA {ike} rekeyed on {}", self.name);
        let new = wait_for_some(&what, timeout, || {
            let sas = self.sas().ok()?;
            let mine: Vec<&IkeSa> = sas.iter().filter(|s| s.name == ike).collect();
            match mine.as_slice() {
                [s] if s.established() && s.spis() != old.spis() => Some((*s).clone()),
                _ => None,
            }
        })
        .map_err(|e| self.with_log(e))?;
        Ok((old, new))
    }

    /// Deletes IKE_SA `ike` (and its children), waiting for the peer's
    /// answer (swanctl `--timeout 10`).
    pub fn terminate(&self, ike: &str) -> Result<String> {
        self.swanctl_timeout("--terminate", &["--ike", ike, "--timeout", "10"], Duration::from_secs(15))
            .map_err(|e| self.with_log(e))
    }

    /// Deletes CHILD_SA `child` only.
    pub fn terminate_child(&self, child: &str) -> Result<String> {
        self.swanctl_timeout("--terminate", &["--child", child, "--timeout", "10"], Duration::from_secs(15))
            .map_err(|e| self.with_log(e))
    }

    /// Waits until no IKE_SA is left.
    pub fn wait_no_sas(&self, timeout: Duration) -> Result<()> {
        wait_for(&format!("no SAs left on {}", self.name), timeout, || {
            self.sas().map(|v| v.is_empty()).unwrap_or(false)
        })
        .map_err(|e| self.with_log(e))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("charon.log")
    }

    /// The charon log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let v: Vec<&str> = log.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    /// Log lines containing any of `patterns`.
    pub fn log_lines_matching(&self, patterns: &[&str]) -> Vec<String> {
        self.log().lines().filter(|l| patterns.iter().any(|p| l.contains(p))).map(String::from).collect()
    }

    /// Log lines that show ESP drops ([`DATAPATH_ERRORS`]: replay, ICV, ...).
    pub fn datapath_errors(&self) -> Vec<String> {
        self.log_lines_matching(DATAPATH_ERRORS)
    }

    /// Stops charon: SIGTERM (it deletes its SAs' routes and the ipsec0
    /// device), up to 5 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(5));
        }
    }
}

impl Drop for Strongswan {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// Test PKI (openssl CLI)

/// A throw-away ECDSA P-384 PKI made with the `openssl` command: a CA and
/// end-entity certificates with a subjectAltName, all PEM, in `dir`.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Creates `dir/ca.key` + `dir/ca.crt` ("CN=Tandem Test CA").
    pub fn new(dir: &Path) -> Result<Pki> {
        if find_tool("openssl").is_none() {
            return Err(Error::new("the test PKI needs the `openssl` command"));
        }
        fs::create_dir_all(dir)?;
        let pki = Pki { dir: dir.to_path_buf() };
        pki.openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "ca.key"])?;
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha384",
            "-days",
            "3",
            "-subj",
            "/O=Tandem Test/CN=Tandem Test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.crt",
        ])?;
        Ok(pki)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    fn openssl(&self, args: &[&str]) -> Result<String> {
        let openssl = find_tool("openssl").ok_or_else(|| Error::new("openssl missing"))?;
        let out = run(Command::new(openssl).args(args).current_dir(&self.dir), Duration::from_secs(30))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Issues `<name>.crt` / `<name>.key` (SEC1 EC key) for subject
    /// "CN=`cn`" with subjectAltName `san` (e.g. "DNS:gateway.test" or
    /// "IP:192.0.2.1"). Returns (cert path, key path).
    pub fn issue(&self, name: &str, cn: &str, san: &str) -> Result<(PathBuf, PathBuf)> {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext = format!("{name}.ext");
        fs::write(
            self.dir.join(&ext),
            format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}\n"
            ),
        )?;
        self.openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", &key])?;
        self.openssl(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/O=Tandem Test/CN={cn}"),
            "-out",
            &csr,
        ])?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha384",
            "-days",
            "3",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ])?;
        Ok((self.dir.join(crt), self.dir.join(key)))
    }
}
