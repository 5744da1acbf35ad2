//! The file as serde reads it: every key spelled out (unknown keys are
//! errors), spans kept for the values that later checks may reject.

use super::addr::{IfAddr, IpRange, MacAddr, PeerAddr, TsSpec};
use super::ident::IdSpec;
use super::model::{AuthMethod, Fragmentation, LogLevel, Mode};
use super::value::{List, Millis, RawSecret, Secs};
use core::net::IpAddr;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) secrets_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) connections: Vec<Spanned<RawConnection>>,
    #[serde(default)]
    pub(super) secrets: RawSecrets,
    #[serde(default)]
    pub(super) pools: BTreeMap<Spanned<String>, Spanned<RawPool>>,
    pub(super) dataplane: Option<Spanned<RawDataplane>>,
    #[serde(default)]
    pub(super) control: RawControl,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) cluster: Option<Spanned<RawCluster>>,
}

/// The secrets file: only `[[secrets.ike]]`, `[[secrets.private]]` and
/// `[secrets.cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecretsFile {
    #[serde(default)]
    pub(super) secrets: RawSecrets,
}

/// `[secrets]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecrets {
    #[serde(default)]
    pub(super) ike: Vec<Spanned<RawIkeSecret>>,
    #[serde(default)]
    pub(super) private: Vec<Spanned<RawPrivateKey>>,
    pub(super) cluster: Option<Spanned<RawClusterSecret>>,
}

/// `[secrets.cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClusterSecret {
    pub(super) secret: Spanned<RawSecret>,
}

/// `[[secrets.ike]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIkeSecret {
    pub(super) id: Option<List<IdSpec>>,
    pub(super) secret: Spanned<RawSecret>,
}

/// `[[secrets.private]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivateKey {
    pub(super) file: Spanned<String>,
}

/// `[[connections]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    pub(super) name: Spanned<String>,
    pub(super) version: Option<Spanned<i64>>,
    pub(super) local_addrs: Option<List<PeerAddr>>,
    pub(super) remote_addrs: Option<List<PeerAddr>>,
    pub(super) proposals: Option<List<String>>,
    pub(super) vips: Option<List<IpAddr>>,
    pub(super) local: Spanned<RawLocal>,
    pub(super) remote: Spanned<RawRemote>,
    pub(super) pools: Option<List<String>>,
    pub(super) dpd_delay: Option<Spanned<Secs>>,
    pub(super) rekey_time: Option<Spanned<Secs>>,
    pub(super) over_time: Option<Spanned<Secs>>,
    pub(super) rand_time: Option<Spanned<Secs>>,
    pub(super) fragmentation: Option<Fragmentation>,
    pub(super) send_certreq: Option<bool>,
    pub(super) encap: Option<bool>,
    pub(super) mobike: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) children: Vec<Spanned<RawChild>>,
}

/// `[connections.local]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocal {
    pub(super) auth: Spanned<AuthMethod>,
    pub(super) id: Option<Spanned<IdSpec>>,
    pub(super) certs: Option<List<String>>,
}

/// `[connections.remote]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    pub(super) auth: Spanned<AuthMethod>,
    pub(super) id: Option<Spanned<IdSpec>>,
    pub(super) certs: Option<List<String>>,
    pub(super) cacerts: Option<List<String>>,
}

/// `[[connections.children]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChild {
    pub(super) name: Spanned<String>,
    pub(super) local_ts: Option<List<TsSpec>>,
    pub(super) remote_ts: Option<List<TsSpec>>,
    pub(super) esp_proposals: Option<List<String>>,
    pub(super) rekey_time: Option<Spanned<Secs>>,
    pub(super) life_time: Option<Spanned<Secs>>,
    pub(super) rand_time: Option<Spanned<Secs>>,
    pub(super) mode: Option<Mode>,
    pub(super) start_action: Option<Spanned<RawStartAction>>,
    pub(super) dpd_action: Option<Spanned<RawDpdAction>>,
}

/// `start_action`, including what is refused later.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawStartAction {
    None,
    Start,
    Trap,
}

/// `dpd_action`, including what is refused later.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawDpdAction {
    Clear,
    Restart,
    Trap,
}

/// `[pools.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) addrs: Spanned<IpRange>,
    pub(super) dns: Option<List<IpAddr>>,
}

/// `[dataplane]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDataplane {
    pub(super) tun_name: Option<Spanned<String>>,
    pub(super) mtu: Option<Spanned<i64>>,
}

/// `[control]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    pub(super) socket: Option<Spanned<String>>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) level: Option<LogLevel>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) node_id: Spanned<i64>,
    pub(super) segment_count: Option<Spanned<i64>>,
    pub(super) cluster_id: Option<Spanned<i64>>,
    pub(super) secret: Option<Spanned<RawSecret>>,
    pub(super) heartbeat_delay: Option<Spanned<Millis>>,
    pub(super) heartbeat_timeout: Option<Spanned<Millis>>,
    pub(super) sync_port: Option<Spanned<i64>>,
    pub(super) two_node: Option<Spanned<RawTwoNode>>,
    pub(super) ring_mib: Option<Spanned<i64>>,
    pub(super) sample_every: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) nodes: Vec<Spanned<RawClusterNode>>,
    pub(super) external: Spanned<RawClusterPort>,
    pub(super) internal: Spanned<RawClusterPort>,
}

/// `two_node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawTwoNode {
    BothServe,
    LowestIdServes,
}

/// `[[cluster.nodes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClusterNode {
    pub(super) id: Spanned<i64>,
    pub(super) address: Spanned<IpAddr>,
}

/// `[cluster.external]` and `[cluster.internal]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClusterPort {
    pub(super) interface: Spanned<String>,
    pub(super) vip: Spanned<IfAddr>,
    pub(super) mac: Option<Spanned<MacAddr>>,
    pub(super) gateway: Option<Spanned<IpAddr>>,
    #[serde(default)]
    pub(super) tap: bool,
}
