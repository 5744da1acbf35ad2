//! The checked configuration: what [`load`](super::load) returns. Every
//! default is filled in; every name refers to something that exists.

use super::addr::IpRange;
use super::addr::{PeerAddr, TsSpec};
use super::error::Diagnostic;
use super::ident::IdSpec;
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use serde::Deserialize;
use std::path::PathBuf;
use tandem_crypto::proposal::Proposal;
use tandem_crypto::secret::SecretBytes;

/// A whole gateway configuration.
#[derive(Debug)]
pub(crate) struct GatewayConfig {
    /// The file it was read from, as named.
    pub(crate) path: PathBuf,
    /// `[[connections]]`, in file order.
    pub(crate) connections: Vec<Connection>,
    /// `[pools.NAME]`, sorted by name.
    pub(crate) pools: Vec<Pool>,
    /// `[[secrets.ike]]` of the configuration file, then of the secrets file.
    pub(crate) ike_secrets: Vec<IkeSecret>,
    /// `[[secrets.private]]`, likewise.
    pub(crate) private_keys: Vec<PrivateKeyFile>,
    /// `[dataplane]`.
    pub(crate) dataplane: Dataplane,
    /// `[control]`.
    pub(crate) control: Control,
    /// `[log]`.
    pub(crate) log: Log,
    /// `[cluster]`: `None` runs a single gateway on the TUN `dataplane`.
    pub(crate) cluster: Option<Cluster>,
    /// Things that are allowed but probably not meant; `tandem check`
    /// prints them, `tandem run` should log them.
    pub(crate) warnings: Vec<Diagnostic>,
}

impl GatewayConfig {
    /// The pool named `name`.
    pub(crate) fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The pre-shared key for an IKE SA between `local` and `remote` (see
    /// [`find_psk`]).
    pub(crate) fn psk(&self, local: &[IdSpec], remote: &IdSpec) -> Option<&SecretBytes> {
        find_psk(&self.ike_secrets, local, remote).map(|s| &s.secret)
    }
}

/// The best secret for identities `local` (ours; several when ours is not
/// configured and one of our addresses is used) and `remote`, as strongSwan
/// chooses: a secret naming one of them beats a secret without ids (or
/// with `%any`), which matches every pair.
pub(crate) fn find_psk<'a>(
    secrets: &'a [IkeSecret],
    local: &[IdSpec],
    remote: &IdSpec,
) -> Option<&'a IkeSecret> {
    let named = |id: &IdSpec| *id != IdSpec::Any;
    let names = |s: &IkeSecret, id: &IdSpec| named(id) && s.ids.iter().any(|i| named(i) && i.matches(id));
    let exact = secrets.iter().find(|s| local.iter().chain([remote]).any(|id| names(s, id)));
    exact.or_else(|| secrets.iter().find(|s| s.ids.is_empty() || s.ids.contains(&IdSpec::Any)))
}

/// One `[[connections]]`: an IKE SA's parameters and its CHILD_SAs.
#[derive(Debug)]
pub(crate) struct Connection {
    /// Unique name.
    pub(crate) name: String,
    /// Our addresses (`%any` by default).
    pub(crate) local_addrs: Vec<PeerAddr>,
    /// Peer addresses accepted, the first single address or name is where
    /// an initiator sends to (`%any` by default).
    pub(crate) remote_addrs: Vec<PeerAddr>,
    /// IKE proposals, most preferred first.
    pub(crate) proposals: Vec<Proposal>,
    /// Virtual IPs to request as initiator (`0.0.0.0` or `::` for any).
    pub(crate) vips: Vec<IpAddr>,
    /// How we authenticate.
    pub(crate) local: LocalAuth,
    /// How the peer must authenticate.
    pub(crate) remote: RemoteAuth,
    /// Pools to hand out virtual IPs from, by name (all defined).
    pub(crate) pools: Vec<String>,
    /// Liveness check after this much silence; `None` is off.
    pub(crate) dpd_delay: Option<Duration>,
    /// Rekey the IKE SA this long after it was made; zero never rekeys.
    pub(crate) rekey_time: Duration,
    /// Delete the IKE SA this long after `rekey_time` if it was not rekeyed.
    pub(crate) over_time: Duration,
    /// Rekey up to this much earlier than `rekey_time`, at random.
    pub(crate) rand_time: Duration,
    /// IKE fragmentation (RFC 7383).
    pub(crate) fragmentation: Fragmentation,
    /// Send CERTREQ payloads naming our CAs.
    pub(crate) send_certreq: bool,
    /// Force UDP encapsulation of ESP (RFC 3948) even without a NAT, by
    /// announcing a NAT to the peer (strongSwan's `encap`).
    pub(crate) encap: bool,
    /// `[[connections.children]]`.
    pub(crate) children: Vec<Child>,
}

impl Connection {
    /// The identities we may use: `local.id`, or if it is not set the
    /// identities of our single addresses in `local_addrs`.
    pub(crate) fn local_ids(&self) -> Vec<IdSpec> {
        local_ids(self.local.id.as_ref(), &self.local_addrs)
    }
}

/// See [`Connection::local_ids`].
pub(crate) fn local_ids(id: Option<&IdSpec>, local_addrs: &[PeerAddr]) -> Vec<IdSpec> {
    match id {
        Some(id) => vec![id.clone()],
        None => local_addrs
            .iter()
            .filter_map(|a| match a {
                PeerAddr::Addr(ip) => Some(IdSpec::from_ip(*ip)),
                _ => None,
            })
            .collect(),
    }
}

/// Authentication methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMethod {
    /// Pre-shared key (RFC 7296 section 2.15).
    Psk,
    /// Signatures with a certificate's key (RFC 7427).
    Pubkey,
}

impl AuthMethod {
    /// The configuration keyword.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Psk => "psk",
            Self::Pubkey => "pubkey",
        }
    }
}

/// The `local` block of a connection.
#[derive(Debug)]
pub(crate) struct LocalAuth {
    /// How we authenticate.
    pub(crate) auth: AuthMethod,
    /// Our identity; `None` uses our IP address.
    pub(crate) id: Option<IdSpec>,
    /// Our certificate, then intermediate CAs to send.
    pub(crate) certs: Vec<PemFile>,
}

/// The `remote` block of a connection.
#[derive(Debug)]
pub(crate) struct RemoteAuth {
    /// How the peer must authenticate.
    pub(crate) auth: AuthMethod,
    /// The identity the peer must have; [`IdSpec::Any`] accepts any.
    pub(crate) id: IdSpec,
    /// Peer certificates accepted as they are (pinned).
    pub(crate) certs: Vec<PemFile>,
    /// Trusted CA certificates.
    pub(crate) cacerts: Vec<PemFile>,
}

/// `fragmentation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Fragmentation {
    /// `true` or `"yes"`: announce support and fragment large messages if
    /// the peer supports it too.
    Yes,
    /// `"accept"`: announce support and reassemble, never send fragments.
    Accept,
    /// `false` or `"no"`: no support announced, fragments ignored.
    No,
}

impl Fragmentation {
    /// The configuration keyword.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::Accept => "accept",
            Self::No => "no",
        }
    }
}

impl<'de> Deserialize<'de> for Fragmentation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Visitor};
        struct V;
        impl Visitor<'_> for V {
            type Value = Fragmentation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"true, false, "yes", "no" or "accept""#)
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Fragmentation, E> {
                Ok(if v { Fragmentation::Yes } else { Fragmentation::No })
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Fragmentation, E> {
                match v {
                    "yes" => Ok(Fragmentation::Yes),
                    "accept" => Ok(Fragmentation::Accept),
                    "no" => Ok(Fragmentation::No),
                    _ => Err(E::custom(format!(
                        r#"fragmentation {v:?} is not one of true, false, "yes", "no", "accept""#
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[connections.children]]`: a CHILD_SA.
#[derive(Debug)]
pub(crate) struct Child {
    /// Unique name (across all connections).
    pub(crate) name: String,
    /// Our traffic selectors.
    pub(crate) local_ts: Vec<TsSpec>,
    /// The peer's traffic selectors.
    pub(crate) remote_ts: Vec<TsSpec>,
    /// ESP proposals, most preferred first.
    pub(crate) esp_proposals: Vec<Proposal>,
    /// Rekey this long after the CHILD_SA was made; zero never rekeys.
    pub(crate) rekey_time: Duration,
    /// Delete the CHILD_SA this long after it was made (greater than
    /// `rekey_time` when rekeying); zero never expires.
    pub(crate) life_time: Duration,
    /// Rekey up to this much earlier than `rekey_time`, at random.
    pub(crate) rand_time: Duration,
    /// Tunnel or transport mode.
    pub(crate) mode: Mode,
    /// What to do when the configuration is loaded.
    pub(crate) start_action: StartAction,
    /// What to do when DPD finds the peer dead.
    pub(crate) dpd_action: DpdAction,
}

/// `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Tunnel mode (the default).
    Tunnel,
    /// Transport mode.
    Transport,
}

/// `start_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum StartAction {
    /// Wait for the peer (the default).
    None,
    /// Initiate the CHILD_SA (and its IKE SA) at once.
    Start,
}

/// `dpd_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DpdAction {
    /// Close the CHILD_SA (the default).
    Clear,
    /// Initiate it again at once.
    Restart,
}

/// One `[pools.NAME]`: virtual IPs for remote-access clients.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The name connections refer to.
    pub(crate) name: String,
    /// The addresses as configured.
    pub(crate) addrs: IpRange,
    /// The addresses handed out: `addrs` without the network and broadcast
    /// addresses of a CIDR block.
    pub(crate) leasable: IpRange,
    /// DNS servers sent with the address (INTERNAL_IP4_DNS/INTERNAL_IP6_DNS).
    pub(crate) dns: Vec<IpAddr>,
}

/// One `[[secrets.ike]]`: a pre-shared key.
#[derive(Debug)]
pub(crate) struct IkeSecret {
    /// The identities it is for; empty (or `%any`) for every identity.
    pub(crate) ids: Vec<IdSpec>,
    /// The key; `Debug` prints only its length.
    pub(crate) secret: SecretBytes,
    /// The file it was read from.
    pub(crate) origin: PathBuf,
}

/// A PEM file named in the configuration, read and checked to hold a PEM
/// block (X.509 parsing is left to tandem-ike).
#[derive(Clone)]
pub(crate) struct PemFile {
    /// Where it was read from, resolved against the configuration's directory.
    pub(crate) path: PathBuf,
    /// Its text.
    pub(crate) pem: String,
}

impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

/// One `[[secrets.private]]`: a private key file (mode 0600 or stricter).
#[derive(Debug)]
pub(crate) struct PrivateKeyFile {
    /// Where it was read from.
    pub(crate) path: PathBuf,
    /// Its PEM text, zeroized when dropped.
    pub(crate) pem: SecretBytes,
}

/// `[cluster]`: this gateway is one node of an active/active cluster that
/// shares a virtual IP on each of its two ports.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// This node's id, one of `nodes`.
    pub(crate) node_id: u8,
    /// Every node of the cluster, this one included, sorted by id: 2 to 16,
    /// with unique ids (1 to 16) and unique addresses of one family.
    pub(crate) nodes: Vec<ClusterNode>,
    /// How many segments the IKE SAs are split into: 1 to 64, at least the
    /// number of nodes.
    pub(crate) segment_count: u32,
    /// Identifies the cluster on the sync channel; its nodes agree on it.
    pub(crate) cluster_id: u32,
    /// The key the sync channel is derived from (16 octets or more);
    /// `Debug` prints only its length.
    pub(crate) secret: SecretBytes,
    /// The file the secret was read from.
    pub(crate) secret_origin: PathBuf,
    /// How often a node sends a heartbeat to each other node.
    pub(crate) heartbeat_delay: Duration,
    /// A node is dead this long after its last heartbeat (at least twice
    /// `heartbeat_delay`).
    pub(crate) heartbeat_timeout: Duration,
    /// The UDP port of the sync channel, on every node.
    pub(crate) sync_port: u16,
    /// With two nodes that lose each other, only the lower id serves
    /// (`two_node = "lowest-id-serves"`) instead of both.
    pub(crate) two_node_lowest_serves: bool,
    /// Each port's receive ring in MiB (blocks of 1 MiB); 0 for no ring
    /// (`recvmmsg`).
    pub(crate) ring_mib: u32,
    /// A standby verifies every n-th ESP packet of an SA it does not serve
    /// (and the first after 5 ms without one).
    pub(crate) sample_every: u32,
    /// `[cluster.external]`: the port towards the peers (IKE and ESP).
    pub(crate) external: ClusterPort,
    /// `[cluster.internal]`: the port towards the protected networks.
    pub(crate) internal: ClusterPort,
}

impl Cluster {
    /// This node's sync address, where its sync socket binds.
    pub(crate) fn sync_address(&self) -> IpAddr {
        self.nodes
            .iter()
            .find(|n| n.id == self.node_id)
            .map(|n| n.address)
            .expect("node_id is one of the nodes (checked when the configuration was built)")
    }
}

/// One `[[cluster.nodes]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClusterNode {
    /// Its id, 1 to 16.
    pub(crate) id: u8,
    /// Its sync address.
    pub(crate) address: IpAddr,
}

/// `[cluster.external]` or `[cluster.internal]`: an Ethernet port on which
/// every node answers for the shared virtual IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClusterPort {
    /// The Linux interface name.
    pub(crate) interface: String,
    /// The virtual IP; not configured on the host, Tandem answers ARP and
    /// neighbor discovery for it.
    pub(crate) vip: IpAddr,
    /// The length of the VIP's on-link prefix.
    pub(crate) prefix_len: u8,
    /// The cluster MAC the VIP resolves to (by default the multicast MAC
    /// derived from the VIP).
    pub(crate) mac: [u8; 6],
    /// The next hop for destinations outside the on-link prefix.
    pub(crate) gateway: Option<IpAddr>,
    /// `interface` is a TAP device the node opens (the host bridges it)
    /// rather than an interface it captures with a packet socket.
    pub(crate) tap: bool,
}

/// `[dataplane]`.
#[derive(Debug)]
pub(crate) struct Dataplane {
    /// Name of the TUN device.
    pub(crate) tun_name: String,
    /// MTU of the TUN device.
    pub(crate) mtu: u16,
}

/// `[control]`.
#[derive(Debug)]
pub(crate) struct Control {
    /// Path of the control socket.
    pub(crate) socket: PathBuf,
}

/// `[log]`.
#[derive(Debug)]
pub(crate) struct Log {
    /// The most verbose level logged.
    pub(crate) level: LogLevel,
}

/// Log levels, from the quietest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    /// Errors only.
    Error,
    /// And warnings.
    Warn,
    /// And state changes (the default).
    Info,
    /// And protocol details.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The configuration keyword (also a `tracing` level name).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}
