//! From a checked configuration file to what the runtime runs: the IKE
//! engine's configuration, addresses, the pool and the data path settings.
//!
//! Today's runtime serves one connection with one child; more are refused
//! with a clear error rather than silently ignored. A `[cluster]` section
//! adds the cluster node's plan.

use super::GatewayError;
use super::cluster::{ClusterPlan, PortPlan};
use super::driver::Plan;
use crate::config::GatewayConfig;
use crate::config::addr::{PeerAddr, TsAddrs, TsSpec};
use crate::config::ident::IdSpec;
use crate::config::model::{AuthMethod, Connection, Fragmentation, Mode, StartAction};
use core::net::SocketAddr;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::sync::Arc;
use tandem_cluster::{Layout, NodeConfig, NodeId, SegmentCount, TwoNodeRule};
use tandem_ike::config::{Credentials, Lifetime, LocalAuth, RemoteAuth};
use tandem_ike::pubkey::{Certificate, PrivateKey};
use tandem_ike::wire::{IdType, TrafficSelector};
use tandem_ike::{ChildConfig, Identity, IkeConfig};

/// The firewall mark of Tandem's sockets, so its own IKE and ESP packets
/// bypass the tunnel routes (strongSwan's libipsec setups use 0x42 too).
const FWMARK: u32 = 0x7464;
/// The routing table of the tunnel routes.
const TABLE: u32 = 0x7464;

impl Plan {
    /// The runtime plan of `cfg`'s first connection.
    pub(crate) fn from_config(cfg: &GatewayConfig) -> Result<Self, GatewayError> {
        let conn = match cfg.connections.as_slice() {
            [conn] => conn,
            [] => return Err(GatewayError::Config("no connection configured".into())),
            _ => return Err(GatewayError::Config("tandem run serves one connection so far".into())),
        };
        let child = match conn.children.as_slice() {
            [child] => child,
            [] => return Err(GatewayError::Config(format!("connection {}: no child", conn.name))),
            _ => {
                return Err(GatewayError::Config(format!(
                    "connection {}: one child per connection so far",
                    conn.name
                )));
            }
        };
        if child.mode == Mode::Transport {
            return Err(GatewayError::Unsupported("transport mode in tandem run"));
        }
        let local = match conn.local_addrs.first() {
            Some(PeerAddr::Addr(a)) => *a,
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let remote = conn.remote_addrs.iter().find_map(|a| match a {
            PeerAddr::Addr(a) => Some(*a),
            _ => None,
        });
        // Asking for a virtual IP, our `dynamic` side is "any address":
        // the responder narrows it to the one it assigns.
        let ours = if conn.vips.is_empty() { local } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
        let local_ts = selectors(&child.local_ts, ours)?;
        let remote_ts = selectors(&child.remote_ts, remote.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))?;
        let mut child_config = ChildConfig::new(child.esp_proposals.clone(), local_ts, remote_ts);
        child_config.lifetime = (!child.rekey_time.is_zero()).then(|| Lifetime {
            rekey_time: child.rekey_time,
            rand_time: child.rand_time,
            over_time: child.life_time.saturating_sub(child.rekey_time).max(Duration::from_secs(1)),
        });

        let local_id = match conn.local_ids().first() {
            Some(id) => identity(id)?,
            None => identity(&IdSpec::from_ip(local))?,
        };
        let psk = || {
            cfg.psk(&conn.local_ids(), &conn.remote.id)
                .cloned()
                .ok_or_else(|| GatewayError::Config(format!("connection {}: no pre-shared key", conn.name)))
        };
        let mut ike = IkeConfig::new(conn.proposals.clone(), local_id, Default::default(), child_config);
        ike.local_auth = match conn.local.auth {
            AuthMethod::Psk => LocalAuth::Psk(psk()?),
            AuthMethod::Pubkey => LocalAuth::PubKey(Arc::new(credentials(cfg, conn)?)),
        };
        ike.remote_auth = match conn.remote.auth {
            AuthMethod::Psk => RemoteAuth::Psk(psk()?),
            AuthMethod::Pubkey => RemoteAuth::PubKey {
                cas: conn
                    .remote
                    .cacerts
                    .iter()
                    .map(|f| pem_certs(&f.pem, &f.path))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
            },
        };
        ike.remote_id = match &conn.remote.id {
            IdSpec::Any => None,
            id => Some(identity(id)?),
        };
        ike.dpd_delay = conn.dpd_delay;
        ike.lifetime = (!conn.rekey_time.is_zero()).then_some(Lifetime {
            rekey_time: conn.rekey_time,
            rand_time: conn.rand_time,
            over_time: conn.over_time,
        });
        ike.request_virtual_ip = !conn.vips.is_empty();
        ike.force_encap = conn.encap;
        ike.fragmentation = conn.fragmentation != Fragmentation::No;
        if conn.fragmentation == Fragmentation::Accept {
            // Announce and reassemble, but never split what we send.
            ike.fragment_size = usize::MAX;
        }
        let pool = match conn.pools.first() {
            Some(name) => {
                let p = cfg.pool(name).ok_or_else(|| {
                    GatewayError::Config(format!("connection {}: no pool {name}", conn.name))
                })?;
                ike.dns = p.dns.clone();
                Some((p.leasable.first(), p.leasable.last()))
            }
            None => None,
        };
        Ok(Plan {
            ike,
            local,
            remote,
            initiate: child.start_action == StartAction::Start,
            tun_name: cfg.dataplane.tun_name.clone(),
            mtu: u32::from(cfg.dataplane.mtu),
            pool,
            fwmark: FWMARK,
            table: TABLE,
            ports: (500, 4500),
            config_path: cfg.path.clone(),
            connection: conn.name.clone(),
            child: child.name.clone(),
            control_socket: cfg.control.socket.clone(),
            cluster: cfg.cluster.as_ref().map(cluster_plan).transpose()?,
        })
    }
}

/// What a cluster node runs besides the connection: its engine's
/// configuration, sync addresses and the two ports.
fn cluster_plan(c: &crate::config::model::Cluster) -> Result<ClusterPlan, GatewayError> {
    let err = |e: tandem_cluster::Error| GatewayError::Config(format!("[cluster]: {e}"));
    let ids: Vec<NodeId> = c.nodes.iter().map(|n| NodeId(n.id)).collect();
    let count = SegmentCount::new(c.segment_count).map_err(err)?;
    let rule = if c.two_node_lowest_serves { TwoNodeRule::LowestIdServes } else { TwoNodeRule::BothServe };
    let layout = Layout::new(&ids, count, rule).map_err(err)?;
    let mut node = NodeConfig::new(NodeId(c.node_id), layout, c.cluster_id, c.secret.clone(), c.external.vip);
    node.heartbeat_delay = c.heartbeat_delay;
    node.heartbeat_timeout = c.heartbeat_timeout;
    node.esp_sync_interval = c.heartbeat_delay;
    node.sample_every = c.sample_every;
    let sync = |a: IpAddr| SocketAddr::new(a, c.sync_port);
    let me = c
        .nodes
        .iter()
        .find(|n| n.id == c.node_id)
        .ok_or_else(|| GatewayError::Config(format!("[cluster]: node {} is not in nodes", c.node_id)))?;
    let port = |p: &crate::config::model::ClusterPort| PortPlan {
        interface: p.interface.clone(),
        vip: p.vip,
        prefix_len: p.prefix_len,
        mac: p.mac,
        gateway: p.gateway,
        tap: p.tap,
    };
    Ok(ClusterPlan {
        node,
        count,
        sync_bind: sync(me.address),
        peers: c
            .nodes
            .iter()
            .filter(|n| n.id != c.node_id)
            .map(|n| (NodeId(n.id), sync(n.address)))
            .collect(),
        ring_mib: c.ring_mib,
        external: port(&c.external),
        internal: port(&c.internal),
    })
}

/// The IKE identity of a configured ID.
fn identity(id: &IdSpec) -> Result<Identity, GatewayError> {
    let (ty, data) = match id {
        IdSpec::Any => return Err(GatewayError::Config("%any is no identity of ours".into())),
        IdSpec::Ipv4(a) => (IdType::ID_IPV4_ADDR, a.octets().to_vec()),
        IdSpec::Ipv6(a) => (IdType::ID_IPV6_ADDR, a.octets().to_vec()),
        IdSpec::Fqdn(n) => (IdType::ID_FQDN, n.as_bytes().to_vec()),
        IdSpec::Email(e) => (IdType::ID_RFC822_ADDR, e.as_bytes().to_vec()),
        IdSpec::KeyId(k) => (IdType::ID_KEY_ID, k.clone()),
        IdSpec::Dn(_) => {
            return Err(GatewayError::Unsupported("distinguished-name identities in tandem run"));
        }
    };
    Ok(Identity { ty, data })
}

/// Configured selectors with `dynamic` resolved: ours is our address, the
/// peer's is any address (narrowed to what it proposes, or to its virtual
/// address): of its family when `addr` names one, of either family when
/// `addr` is unspecified (a responder to any peer, or an initiator asking
/// for a virtual IP).
fn selectors(specs: &[TsSpec], addr: IpAddr) -> Result<Vec<TrafficSelector>, GatewayError> {
    let any4: (IpAddr, IpAddr) = (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::BROADCAST.into());
    let any6: (IpAddr, IpAddr) = (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::from_bits(u128::MAX).into());
    Ok(specs
        .iter()
        .flat_map(|s| {
            let ranges = match s.addrs {
                TsAddrs::Range(r) => vec![(r.first(), r.last())],
                TsAddrs::Dynamic if addr.is_unspecified() => vec![any4, any6],
                TsAddrs::Dynamic => vec![(addr, addr)],
            };
            ranges.into_iter().map(|(start, end)| TrafficSelector {
                ip_protocol: s.protocol,
                start_port: s.start_port,
                end_port: s.end_port,
                start_addr: start,
                end_addr: end,
            })
        })
        .collect())
}

fn pem_certs(pem: &str, path: &std::path::Path) -> Result<Vec<Certificate>, GatewayError> {
    Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))
}

/// Our certificate chain and the private key that matches its first
/// certificate.
fn credentials(cfg: &GatewayConfig, conn: &Connection) -> Result<Credentials, GatewayError> {
    let mut chain = Vec::new();
    for f in &conn.local.certs {
        chain.extend(pem_certs(&f.pem, &f.path)?);
    }
    let Some(leaf) = chain.first() else {
        return Err(GatewayError::Config(format!(
            "connection {}: pubkey auth without a certificate",
            conn.name
        )));
    };
    for k in &cfg.private_keys {
        let key = PrivateKey::from_pkcs8_pem(k.pem.expose())
            .map_err(|e| GatewayError::Config(format!("{}: {e} (PKCS#8 keys only)", k.path.display())))?;
        if key.public_key().spki_der() == leaf.spki_der() {
            return Ok(Credentials { key, chain });
        }
    }
    Err(GatewayError::Config(format!("connection {}: no private key matches {}", conn.name, leaf.subject())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> TsSpec {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn ranges(v: &[TrafficSelector]) -> Vec<(IpAddr, IpAddr)> {
        v.iter().map(|t| (t.start_addr, t.end_addr)).collect()
    }

    #[test]
    fn resolves_dynamic_selectors() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        let v6 = ip("2001:db8::10");
        let got = selectors(&[ts("dynamic")], v6).expect("selectors");
        assert_eq!(ranges(&got), [(v6, v6)], "our own address");
        // A responder to any peer: any address of either family, so an
        // IPv6 peer's selectors narrow as an IPv4 one's do.
        let any = selectors(&[ts("dynamic")], IpAddr::V4(Ipv4Addr::UNSPECIFIED)).expect("selectors");
        assert_eq!(
            ranges(&any),
            [
                (ip("0.0.0.0"), ip("255.255.255.255")),
                (ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
            ]
        );
        let net = selectors(&[ts("2001:db8:1::/64[tcp/443]")], v6).expect("selectors");
        assert_eq!(ranges(&net), [(ip("2001:db8:1::"), ip("2001:db8:1::ffff:ffff:ffff:ffff"))]);
        assert_eq!((net[0].ip_protocol, net[0].start_port, net[0].end_port), (6, 443, 443));
    }
}
