//! From the file as read to a checked [`GatewayConfig`]: defaults filled
//! in, proposals parsed, references resolved, files read, and every problem
//! collected with its place.

use super::addr::{Family, IfAddr, MacAddr, PeerAddr, TsAddrs, TsSpec};
use super::error::{ConfigError, Diagnostic};
use super::files;
use super::ident::IdSpec;
use super::model::{
    AuthMethod, Child, Cluster, ClusterNode, ClusterPort, Connection, Control, Dataplane, DpdAction,
    Fragmentation, GatewayConfig, IkeSecret, LocalAuth, Log, LogLevel, Mode, PemFile, Pool, PrivateKeyFile,
    RemoteAuth, StartAction, find_psk, local_ids,
};
use super::raw::{
    RawChild, RawCluster, RawClusterPort, RawConfig, RawConnection, RawControl, RawDataplane, RawDpdAction,
    RawLocal, RawRemote, RawSecrets, RawStartAction, RawTwoNode,
};
use super::source::{Source, key_segment};
use super::value::{List, RawSecret, Secs, decode_secret, format_duration, format_duration_ms};
use core::net::IpAddr;
use core::ops::Range;
use core::time::Duration;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use tandem_crypto::proposal::{Proposal, ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use toml::Spanned;

/// IKE proposals when a connection names none (and what `"default"` stands for).
pub(crate) const DEFAULT_IKE_PROPOSALS: &str = "aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp3072-modp2048, \
     aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp3072-modp2048";
/// ESP proposals when a child names none (and what `"default"` stands for).
pub(crate) const DEFAULT_ESP_PROPOSALS: &str =
    "aes256gcm16-aes128gcm16-chacha20poly1305, aes256-aes128-sha256-sha384-sha512";
/// Default `dpd_delay`.
pub(crate) const DEFAULT_DPD_DELAY: Duration = Duration::from_secs(30);
/// Default IKE `rekey_time`.
pub(crate) const DEFAULT_IKE_REKEY: Duration = Duration::from_secs(4 * 3600);
/// Default CHILD `rekey_time`.
pub(crate) const DEFAULT_CHILD_REKEY: Duration = Duration::from_secs(3600);
/// Default TUN device name.
pub(crate) const DEFAULT_TUN_NAME: &str = "tandem0";
/// Default TUN MTU.
pub(crate) const DEFAULT_MTU: u16 = 1400;
/// Default control socket.
pub(crate) const DEFAULT_SOCKET: &str = "/run/tandem/tandem.sock";
/// Accepted MTUs.
const MTU_RANGE: core::ops::RangeInclusive<i64> = 576..=65535;
/// The longest Unix socket path (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The longest interface name (`IFNAMSIZ` less its NUL).
const MAX_IFNAME: usize = 15;
/// Pre-shared keys shorter than this draw a warning.
const SHORT_PSK: usize = 16;
/// Accepted cluster node ids.
const NODE_IDS: core::ops::RangeInclusive<i64> = 1..=16;
/// How many nodes a cluster may have.
const NODE_COUNT: core::ops::RangeInclusive<usize> = 2..=16;
/// Accepted segment counts.
const SEGMENT_COUNTS: core::ops::RangeInclusive<i64> = 1..=64;
/// Default `cluster_id`.
pub(crate) const DEFAULT_CLUSTER_ID: u32 = 1;
/// Default `heartbeat_delay`.
pub(crate) const DEFAULT_HEARTBEAT_DELAY: Duration = Duration::from_millis(100);
/// Default `heartbeat_timeout`.
pub(crate) const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default `ring_mib`, and its bounds (0 aside).
const DEFAULT_RING_MIB: u32 = 64;
const MIN_RING_MIB: u32 = 4;
const MAX_RING_MIB: u32 = 1024;
/// Default `sample_every`, and its bound.
const DEFAULT_SAMPLE_EVERY: u32 = 16;
const MAX_SAMPLE_EVERY: u32 = 1024;
/// Default `sync_port`.
pub(crate) const DEFAULT_SYNC_PORT: u16 = 4510;
/// The shortest cluster secret accepted (the sync channel's minimum).
const MIN_CLUSTER_SECRET: usize = 16;

/// The built-in proposals of `kind`.
fn default_proposals(kind: ProposalKind) -> Vec<Proposal> {
    let text = match kind {
        ProposalKind::Ike => DEFAULT_IKE_PROPOSALS,
        ProposalKind::Esp => DEFAULT_ESP_PROPOSALS,
    };
    parse_proposals(kind, text).expect("the built-in default proposals parse (a unit test checks)")
}

/// Collects problems while building.
struct Builder {
    /// The key of each IKE secret taken so far, for messages.
    secret_keys: Vec<String>,
    /// Whether a secret was rejected (so a missing PSK may be that one).
    broken_secrets: bool,
    /// Errors: any one makes the configuration invalid.
    errors: Vec<Diagnostic>,
    /// Warnings, handed out with the configuration.
    warnings: Vec<Diagnostic>,
}

/// The value of an optional spanned duration.
fn secs(v: &Option<Spanned<Secs>>) -> Option<Duration> {
    v.as_ref().map(|s| s.get_ref().0)
}

/// The span of an optional spanned value, or `or`.
fn span_or<T>(v: &Option<Spanned<T>>, or: Range<usize>) -> Range<usize> {
    v.as_ref().map_or(or, Spanned::span)
}

/// The address families a list limits itself to; `None` if any family.
fn families(addrs: &[PeerAddr]) -> Option<BTreeSet<Family>> {
    addrs.iter().map(PeerAddr::family).collect()
}

/// Names the families of a set, for messages.
fn family_names(set: &BTreeSet<Family>) -> String {
    set.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
}

/// Builds the configuration from the main file and, if there is one, the
/// secrets file; all problems found are returned together.
pub(super) fn build(
    raw: RawConfig,
    main: &Source<'_>,
    secrets_file: Option<(RawSecrets, &Source<'_>)>,
) -> Result<GatewayConfig, ConfigError> {
    let mut b =
        Builder { secret_keys: Vec::new(), broken_secrets: false, errors: Vec::new(), warnings: Vec::new() };

    let mut ike_secrets = Vec::new();
    let mut private_keys = Vec::new();
    b.secrets(main, &raw.secrets, &mut ike_secrets, &mut private_keys);
    if let Some((secrets, src)) = &secrets_file {
        b.secrets(src, secrets, &mut ike_secrets, &mut private_keys);
    }

    let pools = b.pools(main, &raw);
    let mut child_names = HashMap::new();
    let mut connection_names = HashMap::new();
    let mut connections = Vec::new();
    for (i, conn) in raw.connections.iter().enumerate() {
        let ctx = Refs {
            private_key_entries: !raw.secrets.private.is_empty()
                || secrets_file.as_ref().is_some_and(|(s, _)| !s.private.is_empty()),
            pools: &pools,
            ike_secrets: &ike_secrets,
        };
        let key = format!("connections[{i}]");
        let name = conn.get_ref().name.get_ref();
        if let Some(first) = connection_names.insert(name.clone(), key.clone()) {
            b.err(main, conn.get_ref().name.span(), &key, format!("{name:?} is already the name of {first}"));
        }
        connections.push(b.connection(main, &key, conn, &ctx, &mut child_names));
    }
    if connections.is_empty() {
        b.warnings.push(main.file_diag("connections", "no [[connections]]: the gateway will accept no peer"));
    }

    let no_dataplane = RawDataplane::default();
    let raw_dataplane = raw.dataplane.as_ref().map_or(&no_dataplane, Spanned::get_ref);
    let dataplane = b.dataplane(main, raw_dataplane, &connections, &pools);
    // `[secrets.cluster]` of each file.
    let cluster_secrets: Vec<SecretAt<'_>> = [(&raw.secrets, main)]
        .into_iter()
        .chain(secrets_file.as_ref().map(|(s, src)| (s, *src)))
        .filter_map(|(s, src)| {
            let secret = &s.cluster.as_ref()?.get_ref().secret;
            Some(SecretAt { src, key: "secrets.cluster.secret", secret })
        })
        .collect();
    let cluster = match &raw.cluster {
        None => {
            for s in &cluster_secrets {
                b.warn(s.src, s.secret.span(), s.key, "ignored: there is no [cluster] section");
            }
            None
        }
        Some(c) => {
            if let Some(dp) = &raw.dataplane {
                b.warn(
                    main,
                    dp.span(),
                    "dataplane",
                    "[dataplane] (the TUN device) does not apply in cluster mode and is ignored: traffic goes through [cluster.external] and [cluster.internal]",
                );
            }
            b.cluster_local_addrs(main, &raw, c.get_ref());
            let inline = c.get_ref().secret.as_ref().map(|secret| SecretAt {
                src: main,
                key: "cluster.secret",
                secret,
            });
            let candidates: Vec<SecretAt<'_>> = inline.into_iter().chain(cluster_secrets).collect();
            b.cluster(main, c, &candidates)
        }
    };
    let control = b.control(main, &raw.control);
    let log = Log { level: raw.log.level.unwrap_or(LogLevel::Info) };

    if !b.errors.is_empty() {
        b.errors.sort_by_key(|d| (d.file != main.path, d.position));
        return Err(ConfigError::Invalid(b.errors));
    }
    b.warnings.sort_by_key(|d| (d.file != main.path, d.position));
    Ok(GatewayConfig {
        path: main.path.to_path_buf(),
        connections,
        pools,
        ike_secrets,
        private_keys,
        dataplane,
        control,
        log,
        cluster,
        warnings: b.warnings,
    })
}

/// A cluster secret found in a file.
struct SecretAt<'a> {
    /// The file.
    src: &'a Source<'a>,
    /// Its key there.
    key: &'static str,
    /// The secret as written.
    secret: &'a Spanned<RawSecret>,
}

/// What connections refer to.
struct Refs<'a> {
    /// Whether `[[secrets.private]]` entries exist (read or not).
    private_key_entries: bool,
    pools: &'a [Pool],
    ike_secrets: &'a [IkeSecret],
}

impl Builder {
    /// Records an error at `span`.
    fn err(&mut self, src: &Source<'_>, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.errors.push(src.diag(span, key, message));
    }

    /// Records a warning at `span`.
    fn warn(&mut self, src: &Source<'_>, span: Range<usize>, key: &str, message: impl Into<String>) {
        self.warnings.push(src.diag(span, key, message));
    }

    /// Checks a connection, child or pool name.
    fn name(&mut self, src: &Source<'_>, span: Range<usize>, key: &str, name: &str) {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            self.err(
                src,
                span,
                key,
                format!("name {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
            );
        }
    }

    /// `[secrets]` of one file, appended to the lists.
    fn secrets(
        &mut self,
        src: &Source<'_>,
        raw: &RawSecrets,
        ike: &mut Vec<IkeSecret>,
        private: &mut Vec<PrivateKeyFile>,
    ) {
        for (i, s) in raw.ike.iter().enumerate() {
            let key = format!("secrets.ike[{i}]");
            let entry = s.get_ref();
            let ids = match &entry.id {
                None => Vec::new(),
                Some(list) if list.items.is_empty() => {
                    self.err(
                        src,
                        list.span.clone(),
                        &format!("{key}.id"),
                        "list at least one identity, or leave id out to match every peer",
                    );
                    Vec::new()
                }
                Some(list) => {
                    for id in &list.items {
                        let id_key = format!("{key}.id");
                        self.duplicate_secret(src, ike, &id_key, id.span(), Some(id.get_ref()));
                    }
                    list.items.iter().map(|id| id.get_ref().clone()).collect()
                }
            };
            if ids.is_empty() && entry.id.is_none() {
                self.duplicate_secret(src, ike, &key, s.span(), None);
            }
            let secret = match decode_secret(&entry.secret.get_ref().0) {
                Ok(secret) => secret,
                Err(reason) => {
                    self.err(src, entry.secret.span(), &format!("{key}.secret"), reason);
                    self.broken_secrets = true;
                    continue;
                }
            };
            if secret.len() < SHORT_PSK {
                self.warn(
                    src,
                    entry.secret.span(),
                    &format!("{key}.secret"),
                    format!(
                        "the pre-shared key is only {} octets; short keys can be guessed offline, use at least {SHORT_PSK} random octets",
                        secret.len()
                    ),
                );
            }
            ike.push(IkeSecret { ids, secret, origin: src.path.to_path_buf() });
            self.secret_keys.push(key);
        }
        for (i, p) in raw.private.iter().enumerate() {
            let key = format!("secrets.private[{i}].file");
            let file = &p.get_ref().file;
            let path = src.resolve(file.get_ref());
            match files::read_pem(&path, true) {
                Ok(text) if text.contains("PRIVATE KEY-----") => {
                    private.push(PrivateKeyFile { path, pem: SecretBytes::from_slice(text.as_bytes()) });
                }
                Ok(_) => self.err(
                    src,
                    file.span(),
                    &key,
                    format!(
                        "{}: no private key in it (no \"-----BEGIN ... PRIVATE KEY-----\" line)",
                        path.display()
                    ),
                ),
                Err(reason) => self.err(src, file.span(), &key, reason),
            }
        }
    }

    /// Refuses a second secret for `id` (`None`: for every identity).
    fn duplicate_secret(
        &mut self,
        src: &Source<'_>,
        earlier: &[IkeSecret],
        key: &str,
        span: Range<usize>,
        id: Option<&IdSpec>,
    ) {
        let wildcard = |s: &IkeSecret| s.ids.is_empty() || s.ids.contains(&IdSpec::Any);
        let clash = match id {
            None | Some(IdSpec::Any) => earlier.iter().position(wildcard),
            Some(id) => earlier.iter().position(|s| s.ids.iter().any(|i| *i != IdSpec::Any && i.matches(id))),
        };
        let Some(n) = clash else { return };
        let other = &earlier[n].origin;
        let first = self.secret_keys.get(n).map_or("", String::as_str);
        let also = if other == src.path { String::new() } else { format!(" in {}", other.display()) };
        let message = match id {
            None | Some(IdSpec::Any) => {
                format!("a second secret for every identity (the first is {first}{also})")
            }
            Some(id) => format!("{id:?} already has a secret ({first}{also})", id = id.to_string()),
        };
        self.err(src, span, key, message);
    }

    /// `[pools.NAME]`, by name.
    fn pools(&mut self, src: &Source<'_>, raw: &RawConfig) -> Vec<Pool> {
        let mut pools: Vec<Pool> = Vec::new();
        for (name, pool) in &raw.pools {
            let key = format!("pools{}", key_segment(name.get_ref(), false));
            self.name(src, name.span(), &key, name.get_ref());
            let p = pool.get_ref();
            let addrs = *p.addrs.get_ref();
            if let Some(other) = pools.iter().find(|o| o.addrs.overlaps(&addrs)) {
                self.err(
                    src,
                    p.addrs.span(),
                    &format!("{key}.addrs"),
                    format!(
                        "{addrs} overlaps pool {:?} ({}): an address could be leased twice",
                        other.name, other.addrs
                    ),
                );
            }
            let dns =
                p.dns.as_ref().map(|l| l.items.iter().map(|a| *a.get_ref()).collect()).unwrap_or_default();
            pools.push(Pool { name: name.get_ref().clone(), addrs, leasable: addrs.leasable(), dns });
        }
        pools
    }

    /// Proposals of `kind`, or the defaults; `"default"` stands for them.
    fn proposals(
        &mut self,
        src: &Source<'_>,
        list: Option<&List<String>>,
        kind: ProposalKind,
        key: &str,
    ) -> Vec<Proposal> {
        let Some(list) = list else { return default_proposals(kind) };
        if list.items.is_empty() {
            self.err(
                src,
                list.span.clone(),
                key,
                "list at least one proposal (or leave the key out for the defaults)",
            );
        }
        let mut out = Vec::new();
        for item in &list.items {
            let value = item.get_ref();
            let parts: Vec<(usize, &str)> = value
                .split(',')
                .scan(0, |offset, part| {
                    let at = *offset;
                    *offset += part.len() + 1;
                    Some((at, part))
                })
                .collect();
            for &(offset, part) in &parts {
                let trimmed = part.trim();
                let at = offset + (part.len() - part.trim_start().len());
                let span = value_span(src, item.span(), value, at);
                if trimmed.is_empty() {
                    self.err(src, span, key, "empty proposal (two commas in a row?)");
                    continue;
                }
                if trimmed == "default" {
                    out.extend(default_proposals(kind));
                    continue;
                }
                match parse_proposals(kind, trimmed) {
                    Ok(p) => out.extend(p),
                    Err(tandem_crypto::Error::Proposal { proposal, reason }) => {
                        let message = if parts.len() == 1 {
                            reason
                        } else {
                            format!("proposal {proposal:?}: {reason}")
                        };
                        self.err(src, span, key, message);
                    }
                    Err(e) => self.err(src, span, key, e.to_string()),
                }
            }
        }
        out
    }

    /// `local_addrs` or `remote_addrs`, `%any` by default.
    fn addrs(&mut self, src: &Source<'_>, list: Option<&List<PeerAddr>>, key: &str) -> Vec<PeerAddr> {
        match list {
            None => vec![PeerAddr::Any],
            Some(l) if l.items.is_empty() => {
                self.err(src, l.span.clone(), key, "list at least one address (\"%any\" for any)");
                vec![PeerAddr::Any]
            }
            Some(l) => l.items.iter().map(|a| a.get_ref().clone()).collect(),
        }
    }

    /// Certificate files: each read and checked to be PEM certificates.
    fn certs(&mut self, src: &Source<'_>, list: Option<&List<String>>, key: &str) -> Vec<PemFile> {
        let mut out = Vec::new();
        for item in list.map(|l| l.items.as_slice()).unwrap_or_default() {
            let path = src.resolve(item.get_ref());
            match files::read_pem(&path, false) {
                Ok(text) if text.contains("PRIVATE KEY-----") => self.err(
                    src,
                    item.span(),
                    key,
                    format!(
                        "{}: holds a private key; list certificates here and private keys in [[secrets.private]]",
                        path.display()
                    ),
                ),
                Ok(text) => out.push(PemFile { path, pem: String::clone(&text) }),
                Err(reason) => self.err(src, item.span(), key, reason),
            }
        }
        out
    }

    /// One `[[connections]]`.
    fn connection(
        &mut self,
        src: &Source<'_>,
        key: &str,
        conn: &Spanned<RawConnection>,
        refs: &Refs<'_>,
        child_names: &mut HashMap<String, String>,
    ) -> Connection {
        let c = conn.get_ref();
        self.name(src, c.name.span(), &format!("{key}.name"), c.name.get_ref());
        if let Some(v) = &c.version {
            if *v.get_ref() != 2 {
                let message = match v.get_ref() {
                    1 => "IKEv1 is not supported; version must be 2",
                    _ => "version must be 2 (IKEv2)",
                };
                self.err(src, v.span(), &format!("{key}.version"), message);
            }
        }
        let local_addrs = self.addrs(src, c.local_addrs.as_ref(), &format!("{key}.local_addrs"));
        let remote_addrs = self.addrs(src, c.remote_addrs.as_ref(), &format!("{key}.remote_addrs"));
        let mut addr_conflict = false;
        if let (Some(l), Some(r)) = (families(&local_addrs), families(&remote_addrs)) {
            if l.is_disjoint(&r) {
                addr_conflict = true;
                let span = c.remote_addrs.as_ref().map_or(conn.span(), |l| l.span.clone());
                self.err(
                    src,
                    span,
                    &format!("{key}.remote_addrs"),
                    format!(
                        "remote_addrs are {} only and local_addrs {} only: no IKE SA can be made",
                        family_names(&r),
                        family_names(&l)
                    ),
                );
            }
        }
        let proposals =
            self.proposals(src, c.proposals.as_ref(), ProposalKind::Ike, &format!("{key}.proposals"));
        let vips: Vec<IpAddr> =
            c.vips.as_ref().map(|l| l.items.iter().map(|a| *a.get_ref()).collect()).unwrap_or_default();

        let local = self.local_auth(src, &format!("{key}.local"), &c.local, refs);
        let remote = self.remote_auth(src, &format!("{key}.remote"), &c.remote);
        if (local.auth == AuthMethod::Psk || remote.auth == AuthMethod::Psk) && !self.broken_secrets {
            let local_ids = local_ids(local.id.as_ref(), &local_addrs);
            if find_psk(refs.ike_secrets, &local_ids, &remote.id).is_none() {
                let (span, k) = if local.auth == AuthMethod::Psk {
                    (c.local.get_ref().auth.span(), format!("{key}.local.auth"))
                } else {
                    (c.remote.get_ref().auth.span(), format!("{key}.remote.auth"))
                };
                let ids: Vec<String> = local_ids
                    .iter()
                    .chain([&remote.id])
                    .filter(|i| **i != IdSpec::Any)
                    .map(|i| format!("{:?}", i.to_string()))
                    .collect();
                let hint = if ids.is_empty() {
                    "add a [[secrets.ike]] without id (it matches every peer)".to_owned()
                } else {
                    format!("add a [[secrets.ike]] with id = {} or one without id", ids.join(" or "))
                };
                self.err(src, span, &k, format!("no pre-shared key for this connection: {hint}"));
            }
        }

        let mut pools = Vec::new();
        if let Some(list) = &c.pools {
            for item in &list.items {
                let name = item.get_ref();
                if !refs.pools.iter().any(|p| p.name == *name) {
                    self.err(
                        src,
                        item.span(),
                        &format!("{key}.pools"),
                        format!("pool {name:?} is not defined (no [pools.{name}])"),
                    );
                }
                pools.push(name.clone());
            }
        }

        let dpd_delay = secs(&c.dpd_delay).unwrap_or(DEFAULT_DPD_DELAY);
        let rekey_time = secs(&c.rekey_time).unwrap_or(DEFAULT_IKE_REKEY);
        let over_time = secs(&c.over_time).unwrap_or(rekey_time / 10);
        let rand_time = secs(&c.rand_time).unwrap_or(over_time.min(rekey_time / 2));
        if !rekey_time.is_zero() && rand_time >= rekey_time {
            let span = span_or(&c.rand_time, conn.span());
            self.err(
                src,
                span,
                &format!("{key}.rand_time"),
                format!(
                    "rand_time ({}) must be less than rekey_time ({})",
                    format_duration(rand_time),
                    format_duration(rekey_time)
                ),
            );
        }
        if let Some(m) = &c.mobike {
            if *m.get_ref() {
                self.warn(
                    src,
                    m.span(),
                    &format!("{key}.mobike"),
                    "MOBIKE is not supported yet; mobike = true is ignored",
                );
            }
        }

        let mut children = Vec::new();
        let sides = Sides {
            local_addrs: &local_addrs,
            remote_addrs: &remote_addrs,
            vips: &vips,
            pools: &pools,
            all_pools: refs.pools,
            addr_conflict,
        };
        for (j, child) in c.children.iter().enumerate() {
            let ckey = format!("{key}.children[{j}]");
            let name = child.get_ref().name.get_ref();
            if let Some(first) = child_names.insert(name.clone(), ckey.clone()) {
                self.err(
                    src,
                    child.get_ref().name.span(),
                    &format!("{ckey}.name"),
                    format!(
                        "{name:?} is already the name of {first}; child names are unique across connections"
                    ),
                );
            }
            children.push(self.child(src, &ckey, child, &sides));
        }
        if children.is_empty() {
            self.warn(
                src,
                c.name.span(),
                key,
                "no [[connections.children]]: the IKE SA would carry no traffic",
            );
        }

        Connection {
            name: c.name.get_ref().clone(),
            local_addrs,
            remote_addrs,
            proposals,
            vips,
            local,
            remote,
            pools,
            dpd_delay: (!dpd_delay.is_zero()).then_some(dpd_delay),
            rekey_time,
            over_time,
            rand_time,
            fragmentation: c.fragmentation.unwrap_or(Fragmentation::Yes),
            send_certreq: c.send_certreq.unwrap_or(true),
            encap: c.encap.unwrap_or(false),
            children,
        }
    }

    /// `[connections.local]`.
    fn local_auth(
        &mut self,
        src: &Source<'_>,
        key: &str,
        raw: &Spanned<RawLocal>,
        refs: &Refs<'_>,
    ) -> LocalAuth {
        let l = raw.get_ref();
        let auth = *l.auth.get_ref();
        let id = l.id.as_ref().map(|id| id.get_ref().clone());
        if let (Some(IdSpec::Any), Some(span)) = (&id, l.id.as_ref().map(Spanned::span)) {
            self.err(
                src,
                span,
                &format!("{key}.id"),
                "our identity cannot be %any; leave id out to use our IP address",
            );
        }
        let certs = self.certs(src, l.certs.as_ref(), &format!("{key}.certs"));
        match auth {
            AuthMethod::Pubkey => {
                if certs.is_empty() && l.certs.as_ref().is_none_or(|c| c.items.is_empty()) {
                    self.err(
                        src,
                        l.auth.span(),
                        &format!("{key}.auth"),
                        "auth = \"pubkey\" needs certs: our certificate (PEM)",
                    );
                }
                if !refs.private_key_entries {
                    self.err(
                        src,
                        l.auth.span(),
                        &format!("{key}.auth"),
                        "auth = \"pubkey\" needs a private key: add [[secrets.private]] with file = \"...\"",
                    );
                }
            }
            AuthMethod::Psk => {
                if let Some(list) = l.certs.as_ref().filter(|c| !c.items.is_empty()) {
                    self.warn(
                        src,
                        list.span.clone(),
                        &format!("{key}.certs"),
                        "certs are not used with auth = \"psk\"",
                    );
                }
            }
        }
        LocalAuth { auth, id, certs }
    }

    /// `[connections.remote]`.
    fn remote_auth(&mut self, src: &Source<'_>, key: &str, raw: &Spanned<RawRemote>) -> RemoteAuth {
        let r = raw.get_ref();
        let auth = *r.auth.get_ref();
        let id = r.id.as_ref().map_or(IdSpec::Any, |id| id.get_ref().clone());
        let certs = self.certs(src, r.certs.as_ref(), &format!("{key}.certs"));
        let cacerts = self.certs(src, r.cacerts.as_ref(), &format!("{key}.cacerts"));
        let listed = |l: &Option<List<String>>| l.as_ref().is_some_and(|l| !l.items.is_empty());
        match auth {
            AuthMethod::Pubkey if !listed(&r.certs) && !listed(&r.cacerts) => self.err(
                src,
                r.auth.span(),
                &format!("{key}.auth"),
                "auth = \"pubkey\" needs cacerts (the CAs that sign peer certificates) or certs (the peer's own)",
            ),
            AuthMethod::Psk if listed(&r.certs) || listed(&r.cacerts) => self.warn(
                src,
                r.auth.span(),
                &format!("{key}.auth"),
                "certs and cacerts are not used with auth = \"psk\"",
            ),
            _ => {}
        }
        RemoteAuth { auth, id, certs, cacerts }
    }

    /// Traffic selectors, `dynamic` by default.
    fn selectors(&mut self, src: &Source<'_>, list: Option<&List<TsSpec>>, key: &str) -> Vec<TsSpec> {
        let dynamic = TsSpec { addrs: TsAddrs::Dynamic, protocol: 0, start_port: 0, end_port: u16::MAX };
        match list {
            None => vec![dynamic],
            Some(l) if l.items.is_empty() => {
                self.err(
                    src,
                    l.span.clone(),
                    key,
                    "list at least one traffic selector (\"dynamic\" for our address)",
                );
                vec![dynamic]
            }
            Some(l) => l.items.iter().map(|t| *t.get_ref()).collect(),
        }
    }

    /// One `[[connections.children]]`.
    fn child(&mut self, src: &Source<'_>, key: &str, raw: &Spanned<RawChild>, sides: &Sides<'_>) -> Child {
        let c = raw.get_ref();
        self.name(src, c.name.span(), &format!("{key}.name"), c.name.get_ref());
        let local_ts = self.selectors(src, c.local_ts.as_ref(), &format!("{key}.local_ts"));
        let remote_ts = self.selectors(src, c.remote_ts.as_ref(), &format!("{key}.remote_ts"));
        let (lf, rf) = (sides.ts_families(&local_ts, true), sides.ts_families(&remote_ts, false));
        if let (Some(l), Some(r)) = (lf, rf) {
            if l.is_disjoint(&r) && !sides.addr_conflict {
                let span =
                    c.remote_ts.as_ref().or(c.local_ts.as_ref()).map_or(raw.span(), |l| l.span.clone());
                self.err(
                    src,
                    span,
                    &format!("{key}.remote_ts"),
                    format!(
                        "local_ts cover {} only and remote_ts {} only: no traffic can match",
                        family_names(&l),
                        family_names(&r)
                    ),
                );
            }
        }
        let esp_proposals =
            self.proposals(src, c.esp_proposals.as_ref(), ProposalKind::Esp, &format!("{key}.esp_proposals"));

        let rekey_time = secs(&c.rekey_time).unwrap_or(DEFAULT_CHILD_REKEY);
        let life_time = secs(&c.life_time).unwrap_or(rekey_time + rekey_time / 10);
        let rand_time =
            secs(&c.rand_time).unwrap_or(life_time.saturating_sub(rekey_time).min(rekey_time / 2));
        if !rekey_time.is_zero() && !life_time.is_zero() && life_time <= rekey_time {
            let span = span_or(&c.life_time, span_or(&c.rekey_time, raw.span()));
            self.err(src, span, &format!("{key}.life_time"), format!(
                "life_time ({}) must be longer than rekey_time ({}), or the CHILD_SA expires before it is rekeyed",
                format_duration(life_time),
                format_duration(rekey_time)
            ));
        }
        if !rekey_time.is_zero() && rand_time >= rekey_time {
            let span = span_or(&c.rand_time, raw.span());
            self.err(
                src,
                span,
                &format!("{key}.rand_time"),
                format!(
                    "rand_time ({}) must be less than rekey_time ({})",
                    format_duration(rand_time),
                    format_duration(rekey_time)
                ),
            );
        }

        let start_action = match c.start_action.as_ref().map(|s| (*s.get_ref(), s.span())) {
            None | Some((RawStartAction::None, _)) => StartAction::None,
            Some((RawStartAction::Start, span)) => {
                if !sides.remote_addrs.iter().any(|a| matches!(a, PeerAddr::Addr(_) | PeerAddr::Name(_))) {
                    self.err(src, span, &format!("{key}.start_action"), "start_action = \"start\" needs a remote_addrs entry with one address or host name to send to");
                }
                StartAction::Start
            }
            Some((RawStartAction::Trap, span)) => {
                self.err(src, span, &format!("{key}.start_action"), "start_action = \"trap\" is not supported (Tandem installs no trap policies); use \"start\" or \"none\"");
                StartAction::None
            }
        };
        let dpd_action = match c.dpd_action.as_ref().map(|s| (*s.get_ref(), s.span())) {
            None | Some((RawDpdAction::Clear, _)) => DpdAction::Clear,
            Some((RawDpdAction::Restart, _)) => DpdAction::Restart,
            Some((RawDpdAction::Trap, span)) => {
                self.err(
                    src,
                    span,
                    &format!("{key}.dpd_action"),
                    "dpd_action = \"trap\" is not supported; use \"clear\" or \"restart\"",
                );
                DpdAction::Clear
            }
        };

        Child {
            name: c.name.get_ref().clone(),
            local_ts,
            remote_ts,
            esp_proposals,
            rekey_time,
            life_time,
            rand_time,
            mode: c.mode.unwrap_or(Mode::Tunnel),
            start_action,
            dpd_action,
        }
    }

    /// `[dataplane]`.
    fn dataplane(
        &mut self,
        src: &Source<'_>,
        raw: &RawDataplane,
        connections: &[Connection],
        pools: &[Pool],
    ) -> Dataplane {
        let tun_name = match &raw.tun_name {
            None => DEFAULT_TUN_NAME.to_owned(),
            Some(name) => {
                let n = name.get_ref();
                let ok = (1..=MAX_IFNAME).contains(&n.len())
                    && n != "."
                    && n != ".."
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    self.err(src, name.span(), "dataplane.tun_name", format!(
                        "{n:?} is not a valid interface name: 1 to {MAX_IFNAME} letters, digits, '-', '_' or '.'"
                    ));
                }
                n.clone()
            }
        };
        let mtu = match &raw.mtu {
            None => DEFAULT_MTU,
            Some(m) => {
                match u16::try_from(*m.get_ref()).ok().filter(|v| MTU_RANGE.contains(&i64::from(*v))) {
                    Some(v) => {
                        let ipv6 = pools.iter().any(|p| p.addrs.family() == Family::V6)
                            || connections
                                .iter()
                                .flat_map(|c| &c.children)
                                .flat_map(|ch| ch.local_ts.iter().chain(&ch.remote_ts))
                                .any(|ts| matches!(ts.addrs, TsAddrs::Range(r) if r.family() == Family::V6));
                        if ipv6 && v < 1280 {
                            self.warn(src, m.span(), "dataplane.mtu", "IPv6 needs an MTU of at least 1280");
                        }
                        v
                    }
                    None => {
                        self.err(
                            src,
                            m.span(),
                            "dataplane.mtu",
                            format!(
                                "mtu {} is outside {}..={}",
                                m.get_ref(),
                                MTU_RANGE.start(),
                                MTU_RANGE.end()
                            ),
                        );
                        DEFAULT_MTU
                    }
                }
            }
        };
        Dataplane { tun_name, mtu }
    }

    /// `[cluster]`: `None` if something it needs was rejected (an error is
    /// recorded then). `secrets` are the cluster secrets found, in file
    /// order: only one is allowed.
    fn cluster(
        &mut self,
        src: &Source<'_>,
        raw: &Spanned<RawCluster>,
        secrets: &[SecretAt<'_>],
    ) -> Option<Cluster> {
        let c = raw.get_ref();
        let secret = self.cluster_secret(src, raw.span(), secrets);

        let mut nodes: Vec<ClusterNode> = Vec::new();
        let mut node_keys: Vec<String> = Vec::new();
        let (ext_vip, int_vip) =
            (c.external.get_ref().vip.get_ref().addr, c.internal.get_ref().vip.get_ref().addr);
        for (i, n) in c.nodes.iter().enumerate() {
            let key = format!("cluster.nodes[{i}]");
            let (id, address) = (&n.get_ref().id, &n.get_ref().address);
            let Some(valid_id) = self.node_id(src, id, &format!("{key}.id")) else { continue };
            if let Some(j) = nodes.iter().position(|o| o.id == valid_id) {
                let first = &node_keys[j];
                self.err(
                    src,
                    id.span(),
                    &format!("{key}.id"),
                    format!("id {valid_id} is already the id of {first}"),
                );
            }
            let addr = *address.get_ref();
            let akey = format!("{key}.address");
            if addr.is_unspecified() || addr.is_multicast() {
                self.err(src, address.span(), &akey, format!("{addr} cannot be a node's sync address"));
            } else if addr == ext_vip || addr == int_vip {
                self.err(
                    src,
                    address.span(),
                    &akey,
                    format!("{addr} is a cluster VIP; a node's sync address is an address of its own"),
                );
            } else if let Some(j) = nodes.iter().position(|o| o.address == addr) {
                let first = &node_keys[j];
                self.err(src, address.span(), &akey, format!("{addr} is already the address of {first}"));
            } else if let Some(first) = nodes.first().filter(|o| Family::of(o.address) != Family::of(addr)) {
                self.err(
                    src,
                    address.span(),
                    &akey,
                    format!(
                        "{addr} is {} and {} is {}: the sync addresses of all nodes must be of one family",
                        Family::of(addr),
                        node_keys[0],
                        Family::of(first.address)
                    ),
                );
            }
            nodes.push(ClusterNode { id: valid_id, address: addr });
            node_keys.push(key);
        }
        let count = c.nodes.len();
        if !NODE_COUNT.contains(&count) {
            let at =
                if count < *NODE_COUNT.start() { c.nodes.first() } else { c.nodes.get(*NODE_COUNT.end()) };
            let span = at.map_or(raw.span(), Spanned::span);
            let message = if count < *NODE_COUNT.start() {
                format!(
                    "a cluster needs at least {} [[cluster.nodes]], every node including this one; found {count}",
                    NODE_COUNT.start()
                )
            } else {
                format!("a cluster has at most {} nodes; found {count}", NODE_COUNT.end())
            };
            self.err(src, span, "cluster.nodes", message);
        }
        nodes.sort_by_key(|n| n.id);

        let node_id = self.node_id(src, &c.node_id, "cluster.node_id");
        if let Some(id) = node_id {
            if !nodes.iter().any(|n| n.id == id) {
                let ids = nodes.iter().map(|n| n.id.to_string()).collect::<Vec<_>>().join(", ");
                let listed = if ids.is_empty() { "none".to_owned() } else { ids };
                let message = format!(
                    "node_id {id} is not one of the [[cluster.nodes]] ids ({listed}); list this node there too"
                );
                self.err(src, c.node_id.span(), "cluster.node_id", message);
            }
        }

        let segment_count = match &c.segment_count {
            None => u32::try_from((2 * count).clamp(1, 64)).unwrap_or(1),
            Some(n) => {
                let valid =
                    u32::try_from(*n.get_ref()).ok().filter(|v| SEGMENT_COUNTS.contains(&i64::from(*v)));
                let message = match valid {
                    None => Some(format!(
                        "segment_count {} is outside {}..={}",
                        n.get_ref(),
                        SEGMENT_COUNTS.start(),
                        SEGMENT_COUNTS.end()
                    )),
                    Some(v) if (v as usize) < count => Some(format!(
                        "segment_count {v} is less than the {count} nodes: every node must be able to serve a segment"
                    )),
                    Some(_) => None,
                };
                if let Some(message) = message {
                    self.err(src, n.span(), "cluster.segment_count", message);
                }
                valid.unwrap_or(1)
            }
        };

        let cluster_id = match &c.cluster_id {
            None => DEFAULT_CLUSTER_ID,
            Some(v) => u32::try_from(*v.get_ref()).unwrap_or_else(|_| {
                self.err(
                    src,
                    v.span(),
                    "cluster.cluster_id",
                    format!("cluster_id {} is outside 0..={}", v.get_ref(), u32::MAX),
                );
                DEFAULT_CLUSTER_ID
            }),
        };

        let heartbeat_delay = c.heartbeat_delay.as_ref().map_or(DEFAULT_HEARTBEAT_DELAY, |d| d.get_ref().0);
        if heartbeat_delay.is_zero() {
            let span = span_or(&c.heartbeat_delay, raw.span());
            self.err(src, span, "cluster.heartbeat_delay", "heartbeat_delay must be longer than 0");
        }
        let heartbeat_timeout =
            c.heartbeat_timeout.as_ref().map_or(DEFAULT_HEARTBEAT_TIMEOUT, |d| d.get_ref().0);
        if heartbeat_timeout < heartbeat_delay.saturating_mul(2) {
            let span = span_or(&c.heartbeat_timeout, span_or(&c.heartbeat_delay, raw.span()));
            self.err(
                src,
                span,
                "cluster.heartbeat_timeout",
                format!(
                    "heartbeat_timeout ({}) must be at least twice heartbeat_delay ({}), or one late heartbeat declares a node dead",
                    format_duration_ms(heartbeat_timeout),
                    format_duration_ms(heartbeat_delay)
                ),
            );
        }

        let sync_port = match &c.sync_port {
            None => DEFAULT_SYNC_PORT,
            Some(p) => u16::try_from(*p.get_ref()).ok().filter(|p| *p != 0).unwrap_or_else(|| {
                self.err(
                    src,
                    p.span(),
                    "cluster.sync_port",
                    format!("sync_port {} is outside 1..=65535", p.get_ref()),
                );
                DEFAULT_SYNC_PORT
            }),
        };

        let ring_mib = match &c.ring_mib {
            None => DEFAULT_RING_MIB,
            Some(r) => u32::try_from(*r.get_ref())
                .ok()
                .filter(|m| *m == 0 || (MIN_RING_MIB..=MAX_RING_MIB).contains(m))
                .unwrap_or_else(|| {
                    self.err(
                        src,
                        r.span(),
                        "cluster.ring_mib",
                        format!(
                            "ring_mib {} is neither 0 (no ring: recvmmsg) nor within {MIN_RING_MIB}..={MAX_RING_MIB}",
                            r.get_ref()
                        ),
                    );
                    DEFAULT_RING_MIB
                }),
        };

        let sample_every = match &c.sample_every {
            None => DEFAULT_SAMPLE_EVERY,
            Some(n) => u32::try_from(*n.get_ref())
                .ok()
                .filter(|n| (1..=MAX_SAMPLE_EVERY).contains(n))
                .unwrap_or_else(|| {
                    self.err(
                        src,
                        n.span(),
                        "cluster.sample_every",
                        format!("sample_every {} is outside 1..={MAX_SAMPLE_EVERY}", n.get_ref()),
                    );
                    DEFAULT_SAMPLE_EVERY
                }),
        };

        let two_node = c.two_node.as_ref().map_or(RawTwoNode::BothServe, |t| *t.get_ref());
        if let Some(t) = &c.two_node {
            if count > 2 {
                self.warn(
                    src,
                    t.span(),
                    "cluster.two_node",
                    format!(
                        "two_node applies only to a cluster of two nodes; with {count} the majority decides"
                    ),
                );
            }
        }

        let external = self.cluster_port(src, "cluster.external", &c.external);
        let internal = self.cluster_port(src, "cluster.internal", &c.internal);
        let ri = c.internal.get_ref();
        if external.interface == internal.interface {
            self.err(
                src,
                ri.interface.span(),
                "cluster.internal.interface",
                format!(
                    "{:?} is also the external interface: the two ports need different interfaces",
                    internal.interface
                ),
            );
        }
        if external.mac == internal.mac {
            let derived = |p: &RawClusterPort| if p.mac.is_none() { " (derived from its vip)" } else { "" };
            let span = ri.mac.as_ref().map_or(ri.vip.span(), Spanned::span);
            self.err(
                src,
                span,
                "cluster.internal.mac",
                format!(
                    "{}{} is also the external port's MAC{}: the two ports need different MACs; set mac on one of them",
                    MacAddr(internal.mac),
                    derived(ri),
                    derived(c.external.get_ref()),
                ),
            );
        }

        Some(Cluster {
            node_id: node_id?,
            nodes,
            segment_count,
            cluster_id,
            secret: secret?,
            secret_origin: secrets.first()?.src.path.to_path_buf(),
            heartbeat_delay,
            heartbeat_timeout,
            sync_port,
            two_node_lowest_serves: two_node == RawTwoNode::LowestIdServes,
            ring_mib,
            sample_every,
            external,
            internal,
        })
    }

    /// A node id, checked to be in range.
    fn node_id(&mut self, src: &Source<'_>, id: &Spanned<i64>, key: &str) -> Option<u8> {
        let v = *id.get_ref();
        let valid = u8::try_from(v).ok().filter(|v| NODE_IDS.contains(&i64::from(*v)));
        if valid.is_none() {
            self.err(
                src,
                id.span(),
                key,
                format!("node id {v} is outside {}..={}", NODE_IDS.start(), NODE_IDS.end()),
            );
        }
        valid
    }

    /// The cluster secret: exactly one of `[cluster] secret` and
    /// `[secrets.cluster]` (in either file), 16 octets or more.
    fn cluster_secret(
        &mut self,
        src: &Source<'_>,
        cluster_span: Range<usize>,
        secrets: &[SecretAt<'_>],
    ) -> Option<SecretBytes> {
        let Some(first) = secrets.first() else {
            self.err(
                src,
                cluster_span,
                "cluster.secret",
                "no cluster secret: set secret in [cluster], or better secret in [secrets.cluster] of the secrets_file",
            );
            return None;
        };
        for other in &secrets[1..] {
            let also = if other.src.path == first.src.path {
                String::new()
            } else {
                format!(" in {}", first.src.path.display())
            };
            self.err(
                other.src,
                other.secret.span(),
                other.key,
                format!("a second cluster secret (the first is {}{also})", first.key),
            );
        }
        let secret = match decode_secret(&first.secret.get_ref().0) {
            Ok(s) => s,
            Err(reason) => {
                self.err(first.src, first.secret.span(), first.key, reason);
                return None;
            }
        };
        if secret.len() < MIN_CLUSTER_SECRET {
            self.err(
                first.src,
                first.secret.span(),
                first.key,
                format!(
                    "the cluster secret is only {} octets; use at least {MIN_CLUSTER_SECRET} random octets",
                    secret.len()
                ),
            );
            return None;
        }
        Some(secret)
    }

    /// `[cluster.external]` or `[cluster.internal]`.
    fn cluster_port(&mut self, src: &Source<'_>, key: &str, raw: &Spanned<RawClusterPort>) -> ClusterPort {
        let p = raw.get_ref();
        let name = p.interface.get_ref();
        let ok = (1..=MAX_IFNAME).contains(&name.len())
            && name != "."
            && name != ".."
            && !name.chars().any(|ch| ch == '/' || ch == ':' || ch.is_whitespace() || ch.is_control());
        if !ok {
            self.err(
                src,
                p.interface.span(),
                &format!("{key}.interface"),
                format!(
                    "{name:?} is not a valid interface name: 1 to {MAX_IFNAME} bytes without '/', ':' or white space"
                ),
            );
        }

        let vip: IfAddr = *p.vip.get_ref();
        let bad_vip = match vip.addr {
            a if a.is_unspecified() || a.is_loopback() || a.is_multicast() => {
                Some(format!("{a} cannot be a VIP: it is not a unicast address"))
            }
            IpAddr::V4(a) if a.is_broadcast() => {
                Some(format!("{a} cannot be a VIP: it is the broadcast address"))
            }
            _ if vip.is_v4_network_or_broadcast() => Some(format!(
                "{} is the network or broadcast address of its prefix /{}",
                vip.addr, vip.prefix_len
            )),
            _ => None,
        };
        if let Some(message) = bad_vip {
            self.err(src, p.vip.span(), &format!("{key}.vip"), message);
        }

        let mac = match &p.mac {
            None => {
                let mac = MacAddr::multicast_for(vip.addr);
                if mac.is_well_known_ipv6_group() {
                    let message = format!(
                        "the MAC derived from {}, {mac}, is also that of a well-known IPv6 group (ff02::1 is every node): every host on the link takes the VIP's frames; pick a VIP whose low 32 bits are 0x10000 or more (not 0xff......), or set mac",
                        vip.addr
                    );
                    self.warn(src, p.vip.span(), &format!("{key}.vip"), message);
                }
                mac
            }
            Some(m) => {
                let mac = *m.get_ref();
                let mkey = format!("{key}.mac");
                if mac.is_broadcast() || mac.is_zero() {
                    self.err(src, m.span(), &mkey, format!("{mac} cannot be a cluster MAC"));
                } else if !mac.is_multicast() && !mac.is_local() {
                    let message = format!(
                        "{mac} is a unicast MAC that is not locally administered: it may be a real device's address; use a multicast MAC (the default) or set bit 0x02 of the first octet (as in 02:00:5e:00:00:20)"
                    );
                    self.warn(src, m.span(), &mkey, message);
                }
                mac
            }
        };

        let gateway = p.gateway.as_ref().map(|g| {
            let addr = *g.get_ref();
            let gkey = format!("{key}.gateway");
            if Family::of(addr) != Family::of(vip.addr) {
                self.err(
                    src,
                    g.span(),
                    &gkey,
                    format!("{addr} is {} but the vip is {}", Family::of(addr), Family::of(vip.addr)),
                );
            } else if addr == vip.addr {
                self.err(src, g.span(), &gkey, format!("{addr} is the vip itself"));
            } else if !vip.on_link(addr) {
                self.err(src, g.span(), &gkey, format!("{addr} is not inside the vip's subnet {vip}"));
            }
            addr
        });

        ClusterPort {
            interface: name.clone(),
            vip: vip.addr,
            prefix_len: vip.prefix_len,
            mac: mac.0,
            gateway,
            tap: p.tap,
        }
    }

    /// In cluster mode every connection's `local_addrs` are `%any` or the
    /// external VIP.
    fn cluster_local_addrs(&mut self, src: &Source<'_>, raw: &RawConfig, cluster: &RawCluster) {
        let vip = cluster.external.get_ref().vip.get_ref().addr;
        for (i, conn) in raw.connections.iter().enumerate() {
            let Some(list) = &conn.get_ref().local_addrs else { continue };
            for item in &list.items {
                match item.get_ref() {
                    PeerAddr::Any => {}
                    PeerAddr::Addr(a) if *a == vip => {}
                    other => self.err(
                        src,
                        item.span(),
                        &format!("connections[{i}].local_addrs"),
                        format!(
                            "{other} is not the cluster's external VIP: in cluster mode IKE and ESP use only {vip}; write \"{vip}\" or \"%any\""
                        ),
                    ),
                }
            }
        }
    }

    /// `[control]`.
    fn control(&mut self, src: &Source<'_>, raw: &RawControl) -> Control {
        let socket = match &raw.socket {
            None => PathBuf::from(DEFAULT_SOCKET),
            Some(s) if s.get_ref().is_empty() => {
                self.err(src, s.span(), "control.socket", "the socket path cannot be empty");
                PathBuf::from(DEFAULT_SOCKET)
            }
            Some(s) => {
                let path = src.resolve(s.get_ref());
                let len = path.as_os_str().len();
                if len > MAX_SOCKET_PATH {
                    self.err(src, s.span(), "control.socket", format!(
                        "the socket path is {len} bytes long; Unix sockets allow at most {MAX_SOCKET_PATH}"
                    ));
                }
                path
            }
        };
        Control { socket }
    }
}

/// What `dynamic` stands for in a connection's children.
struct Sides<'a> {
    local_addrs: &'a [PeerAddr],
    remote_addrs: &'a [PeerAddr],
    vips: &'a [IpAddr],
    pools: &'a [String],
    all_pools: &'a [Pool],
    /// The addresses already cannot meet (reported once, there).
    addr_conflict: bool,
}

impl Sides<'_> {
    /// The families traffic selectors can match; `None` for any.
    ///
    /// `dynamic` is our virtual IP (if we request one) or our address on
    /// the local side, and the leased address (with pools) or the peer's
    /// address on the remote side.
    fn ts_families(&self, ts: &[TsSpec], local: bool) -> Option<BTreeSet<Family>> {
        let dynamic = if local {
            if self.vips.is_empty() {
                families(self.local_addrs)
            } else {
                Some(self.vips.iter().map(|a| Family::of(*a)).collect())
            }
        } else if self.pools.is_empty() {
            families(self.remote_addrs)
        } else {
            let named: BTreeSet<Family> = self
                .all_pools
                .iter()
                .filter(|p| self.pools.contains(&p.name))
                .map(|p| p.addrs.family())
                .collect();
            // Undefined pools are reported on their own.
            (!named.is_empty()).then_some(named)
        };
        let mut out = BTreeSet::new();
        for t in ts {
            match t.addrs {
                TsAddrs::Range(r) => {
                    out.insert(r.family());
                }
                TsAddrs::Dynamic => out.extend(dynamic.clone()?),
            }
        }
        Some(out)
    }
}

/// The span of the character at `offset` in a string value, if the value
/// is written without escapes (so offsets in it are offsets in the file);
/// else the value's span.
fn value_span(src: &Source<'_>, span: Range<usize>, value: &str, offset: usize) -> Range<usize> {
    let raw = src.text.get(span.clone()).unwrap_or_default();
    let unescaped = raw.len() == value.len() + 2 && raw.get(1..raw.len() - 1) == Some(value);
    if unescaped { span.start + 1 + offset..span.start + 1 + offset } else { span }
}
