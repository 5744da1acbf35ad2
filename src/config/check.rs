//! `tandem check`: load a configuration and describe it, or list what is
//! wrong with it.

use super::addr::MacAddr;
use super::addr::{PeerAddr, TsSpec};
use super::model::{
    AuthMethod, Child, Cluster, ClusterPort, Connection, DpdAction, Mode, PemFile, StartAction,
};
use super::value::{format_duration, format_duration_ms};
use super::{ConfigError, GatewayConfig, load};
use core::fmt::{Display, Write as _};
use std::path::Path;
use tandem_crypto::proposal::Proposal;

/// What `tandem check` prints, and whether the configuration is valid.
#[derive(Debug)]
pub(crate) struct CheckReport {
    /// The configuration loaded.
    pub(crate) ok: bool,
    /// The summary (for standard output).
    pub(crate) stdout: String,
    /// Errors and warnings (for standard error).
    pub(crate) stderr: String,
}

/// Loads `path` and reports: a one-line summary (every resolved value with
/// `verbose`) and the warnings, or the errors.
pub(crate) fn check(path: &Path, verbose: bool) -> CheckReport {
    match load(path) {
        Ok(config) => {
            let mut stderr = String::new();
            for w in &config.warnings {
                let _ = writeln!(stderr, "warning: {w}");
            }
            CheckReport { ok: true, stdout: summary(&config, verbose), stderr }
        }
        Err(e) => {
            let mut stderr = String::new();
            let diags = e.diagnostics();
            if diags.is_empty() {
                let _ = writeln!(stderr, "error: {e}");
            }
            for d in diags {
                let _ = writeln!(stderr, "error: {d}");
            }
            let n = diags.len().max(1);
            let _ = writeln!(
                stderr,
                "{}: {} found; the configuration was not loaded",
                path.display(),
                count(n, "error")
            );
            if let ConfigError::Syntax(_) = e {
                let _ = writeln!(stderr, "(checking stops at the first syntax error)");
            }
            CheckReport { ok: false, stdout: String::new(), stderr }
        }
    }
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    let plural = if thing == "child" { "children".to_owned() } else { format!("{thing}s") };
    if n == 1 { format!("1 {thing}") } else { format!("{n} {plural}") }
}

/// Joins displayable items with `sep`.
fn join<T: Display>(items: impl IntoIterator<Item = T>, sep: &str) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(sep)
}

/// Proposals in strongSwan syntax, comma-separated.
fn proposals(p: &[Proposal]) -> String {
    join(p, ", ")
}

/// Traffic selectors, comma-separated.
fn selectors(ts: &[TsSpec]) -> String {
    join(ts, ", ")
}

/// Addresses, comma-separated.
fn addrs(a: &[PeerAddr]) -> String {
    join(a, ", ")
}

/// File names with their count of PEM blocks.
fn pem_files(files: &[PemFile]) -> String {
    join(
        files.iter().map(|f| {
            format!("{} ({})", f.path.display(), count(f.pem.matches("-----BEGIN ").count(), "PEM block"))
        }),
        ", ",
    )
}

/// The summary of a loaded configuration.
pub(crate) fn summary(config: &GatewayConfig, verbose: bool) -> String {
    let children: usize = config.connections.iter().map(|c| c.children.len()).sum();
    let mut out = format!(
        "{}: OK: {}, {}, {}, {}, {}\n",
        config.path.display(),
        count(config.connections.len(), "connection"),
        count(children, "child"),
        count(config.pools.len(), "pool"),
        count(config.ike_secrets.len(), "IKE secret"),
        count(config.private_keys.len(), "private key"),
    );
    if !verbose {
        return out;
    }
    for c in &config.connections {
        connection(&mut out, config, c);
    }
    for p in &config.pools {
        let dns = if p.dns.is_empty() { String::new() } else { format!(", dns {}", join(&p.dns, ", ")) };
        let _ = writeln!(
            out,
            "pool {}: {} (leases {} to {}){dns}",
            p.name,
            p.addrs,
            p.leasable.first(),
            p.leasable.last()
        );
    }
    for s in &config.ike_secrets {
        let ids = if s.ids.is_empty() { "every identity".to_owned() } else { join(&s.ids, ", ") };
        let _ = writeln!(out, "IKE secret for {ids}: {} octets, from {}", s.secret.len(), s.origin.display());
    }
    for k in &config.private_keys {
        let _ = writeln!(out, "private key {} ({} octets)", k.path.display(), k.pem.len());
    }
    let d = &config.dataplane;
    match &config.cluster {
        None => {
            let _ = writeln!(out, "dataplane: TUN {} with MTU {}", d.tun_name, d.mtu);
        }
        Some(c) => {
            let _ = writeln!(out, "dataplane: cluster ports (no TUN device)");
            cluster(&mut out, c);
        }
    }
    let _ = writeln!(out, "control socket: {}", config.control.socket.display());
    let _ = writeln!(out, "log level: {}", config.log.level.name());
    out
}

/// Describes one connection.
fn connection(out: &mut String, config: &GatewayConfig, c: &Connection) {
    let _ = writeln!(out, "connection {}: {} === {}", c.name, addrs(&c.local_addrs), addrs(&c.remote_addrs));
    let _ = writeln!(out, "  proposals: {}", proposals(&c.proposals));
    let local_id = c.local.id.as_ref().map_or_else(|| "our IP address".to_owned(), ToString::to_string);
    let _ = writeln!(out, "  local: {} as {local_id}", c.local.auth.name());
    if !c.local.certs.is_empty() {
        let _ = writeln!(out, "    certs: {}", pem_files(&c.local.certs));
    }
    let _ = writeln!(out, "  remote: {} as {}", c.remote.auth.name(), c.remote.id);
    if !c.remote.certs.is_empty() {
        let _ = writeln!(out, "    certs: {}", pem_files(&c.remote.certs));
    }
    if !c.remote.cacerts.is_empty() {
        let _ = writeln!(out, "    cacerts: {}", pem_files(&c.remote.cacerts));
    }
    if c.local.auth == AuthMethod::Psk || c.remote.auth == AuthMethod::Psk {
        if let Some(key) = config.psk(&c.local_ids(), &c.remote.id) {
            let _ = writeln!(out, "    pre-shared key: {} octets", key.len());
        }
    }
    if !c.vips.is_empty() {
        let _ = writeln!(out, "  virtual IPs requested: {}", join(&c.vips, ", "));
    }
    if !c.pools.is_empty() {
        let pools = c.pools.iter().map(|name| match config.pool(name) {
            Some(p) => format!("{name} ({})", p.addrs),
            None => name.clone(),
        });
        let _ = writeln!(out, "  pools: {}", join(pools, ", "));
    }
    let dpd = c.dpd_delay.map_or_else(|| "off".to_owned(), format_duration);
    let _ = writeln!(
        out,
        "  dpd_delay {dpd}, rekey_time {}, over_time {}, rand_time {}, fragmentation {}, send_certreq {}",
        format_duration(c.rekey_time),
        format_duration(c.over_time),
        format_duration(c.rand_time),
        c.fragmentation.name(),
        if c.send_certreq { "yes" } else { "no" },
    );
    for child in &c.children {
        describe_child(out, child);
    }
}

/// Describes one child.
fn describe_child(out: &mut String, ch: &Child) {
    let mode = match ch.mode {
        Mode::Tunnel => "tunnel",
        Mode::Transport => "transport",
    };
    let _ = writeln!(
        out,
        "  child {}: {} === {} ({mode})",
        ch.name,
        selectors(&ch.local_ts),
        selectors(&ch.remote_ts)
    );
    let _ = writeln!(out, "    esp_proposals: {}", proposals(&ch.esp_proposals));
    let start = match ch.start_action {
        StartAction::None => "none",
        StartAction::Start => "start",
    };
    let dpd = match ch.dpd_action {
        DpdAction::Clear => "clear",
        DpdAction::Restart => "restart",
    };
    let _ = writeln!(
        out,
        "    rekey_time {}, life_time {}, rand_time {}, start_action {start}, dpd_action {dpd}",
        format_duration(ch.rekey_time),
        format_duration(ch.life_time),
        format_duration(ch.rand_time),
    );
}

/// Describes the `[cluster]` section; the secret only by its length.
fn cluster(out: &mut String, c: &Cluster) {
    let _ = writeln!(
        out,
        "cluster: node {} of {}, cluster_id {}, sync {} port {}, {}",
        c.node_id,
        count(c.nodes.len(), "node"),
        c.cluster_id,
        c.sync_address(),
        c.sync_port,
        count(usize::try_from(c.segment_count).unwrap_or(usize::MAX), "segment"),
    );
    for n in &c.nodes {
        let this = if n.id == c.node_id { " (this node)" } else { "" };
        let _ = writeln!(out, "  node {}: {}{this}", n.id, n.address);
    }
    let rule = if c.two_node_lowest_serves { "lowest-id-serves" } else { "both-serve" };
    let _ = writeln!(
        out,
        "  heartbeat_delay {}, heartbeat_timeout {}, two_node {rule}",
        format_duration_ms(c.heartbeat_delay),
        format_duration_ms(c.heartbeat_timeout),
    );
    let ring = match c.ring_mib {
        0 => "no receive ring (recvmmsg)".to_owned(),
        m => format!("receive rings of {m} MiB per port"),
    };
    let _ = writeln!(out, "  {ring}, standbys verify 1 ESP packet in {}", c.sample_every);
    let _ = writeln!(out, "  secret: {} octets, from {}", c.secret.len(), c.secret_origin.display());
    cluster_port(out, "external", &c.external);
    cluster_port(out, "internal", &c.internal);
}

/// Describes one cluster port.
fn cluster_port(out: &mut String, name: &str, p: &ClusterPort) {
    let gateway = p.gateway.map_or_else(|| "none".to_owned(), |g| g.to_string());
    let _ = writeln!(
        out,
        "  {name}: {}{} VIP {}/{} MAC {} gateway {gateway}",
        p.interface,
        if p.tap { " (TAP)" } else { "" },
        p.vip,
        p.prefix_len,
        MacAddr(p.mac),
    );
}
