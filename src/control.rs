//! The control socket's protocol and the CLI that speaks it.
//!
//! `tandem run` listens on a Unix socket (`[control] socket`, mode 0600);
//! each connection carries one request and one reply, each a line of
//! JSON. `tandem status`, `sas`, `initiate`, `terminate` and `reload` send
//! a request and print the reply for people, or as the JSON itself with
//! `--json`.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The largest request or reply line accepted.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// What the CLI asks of a running gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) enum Request {
    /// The node's state in brief.
    Status,
    /// Every IKE SA with its CHILD_SAs and counters.
    Sas,
    /// Bring a child (and its IKE SA) up.
    Initiate {
        /// The child's name.
        child: String,
    },
    /// Delete an IKE SA (by connection name, or by SA id in hex).
    Terminate {
        /// Connection name or IKE SA id.
        ike: String,
    },
    /// Re-read the configuration file.
    Reload,
    /// Act on this cluster node's segments.
    Segments {
        /// What to do.
        action: SegmentAction,
        /// The segments (1-based).
        segments: Vec<u32>,
    },
}

/// What `tandem segments` does on a cluster node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SegmentAction {
    /// Serve the segments again (refused while a live peer claims one).
    Take,
    /// Stop serving them here (no other node steps in while this one lives).
    Drop,
    /// Ask the other nodes again for their state.
    Resync,
}

/// A gateway's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub(crate) enum Reply {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::Sas`].
    Sas {
        /// The IKE SAs.
        ike_sas: Vec<IkeSaView>,
    },
    /// The request was carried out.
    Done {
        /// What happened.
        message: String,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// `tandem status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Status {
    /// Tandem's version.
    pub(crate) version: String,
    /// Seconds since `tandem run` started.
    pub(crate) uptime_secs: u64,
    /// The configuration file.
    pub(crate) config: String,
    /// The served connection.
    pub(crate) connection: String,
    /// The TUN device.
    pub(crate) tun: String,
    /// Established IKE SAs.
    pub(crate) ike_sas: usize,
    /// Installed CHILD_SAs.
    pub(crate) child_sas: usize,
    /// Plaintext packets no CHILD_SA covered.
    pub(crate) no_policy_drops: u64,
    /// ESP packets for unknown SPIs.
    pub(crate) unknown_spi_drops: u64,
    /// The cluster, when this node is one of a cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cluster: Option<ClusterStatus>,
}

/// A cluster node's view of its cluster, in `tandem status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ClusterStatus {
    /// This node's id.
    pub(crate) node: u8,
    /// The number of segments.
    pub(crate) segment_count: u32,
    /// This node holds the full state and may serve.
    pub(crate) synced: bool,
    /// The segments this node serves.
    pub(crate) owned: Vec<u32>,
    /// The other nodes.
    pub(crate) members: Vec<MemberView>,
    /// Sync messages sent and not yet acknowledged.
    pub(crate) sync_backlog: usize,
    /// Counters of the node engine, by name.
    pub(crate) counters: Vec<(String, u64)>,
}

/// Another node in [`ClusterStatus`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MemberView {
    /// Its id.
    pub(crate) id: u8,
    /// It is heard.
    pub(crate) live: bool,
    /// It holds the full state.
    pub(crate) synced: bool,
    /// The segments it serves.
    pub(crate) owned: Vec<u32>,
    /// Milliseconds since it was last heard, if ever.
    #[serde(default)]
    pub(crate) heard_ms_ago: Option<u64>,
    /// Sync messages to it not yet acknowledged.
    #[serde(default)]
    pub(crate) unacked: usize,
}

/// One IKE SA in `tandem sas`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct IkeSaView {
    /// Our SPI, in hex: the id `tandem terminate` takes.
    pub(crate) id: String,
    /// The connection.
    pub(crate) connection: String,
    /// Our address and port.
    pub(crate) local: String,
    /// The peer's address and port.
    pub(crate) remote: String,
    /// Initiator's and responder's SPIs, in hex.
    pub(crate) spi_i: String,
    /// See `spi_i`.
    pub(crate) spi_r: String,
    /// Whether a NAT was detected (either side).
    pub(crate) nat: bool,
    /// Virtual addresses (leased to the peer, or ours).
    pub(crate) virtual_ips: Vec<String>,
    /// Seconds since it was established.
    pub(crate) established_secs: u64,
    /// On a cluster node: the SA's segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) segment: Option<u32>,
    /// On a cluster node: this node serves it (else it holds a mirror).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) served: Option<bool>,
    /// Its CHILD_SAs.
    pub(crate) children: Vec<ChildSaView>,
}

/// One CHILD_SA in `tandem sas`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ChildSaView {
    /// The child's name.
    pub(crate) name: String,
    /// Our inbound SPI, in hex.
    pub(crate) spi_in: String,
    /// Our outbound SPI, in hex.
    pub(crate) spi_out: String,
    /// The ESP suite in strongSwan syntax.
    pub(crate) algorithms: String,
    /// Our traffic selectors.
    pub(crate) local_ts: Vec<String>,
    /// The peer's traffic selectors.
    pub(crate) remote_ts: Vec<String>,
    /// Octets and packets received and decrypted.
    pub(crate) bytes_in: u64,
    /// See `bytes_in`.
    pub(crate) packets_in: u64,
    /// Octets and packets encrypted and sent.
    pub(crate) bytes_out: u64,
    /// See `bytes_out`.
    pub(crate) packets_out: u64,
    /// Inbound packets dropped as replays (or too old for the window).
    pub(crate) replay_drops: u64,
    /// Inbound packets whose ICV did not verify.
    pub(crate) icv_drops: u64,
    /// Other inbound and outbound drops.
    pub(crate) other_drops: u64,
}

/// Sends `request` to the gateway at `socket` and returns its reply.
pub(crate) fn call(socket: &Path, request: &Request) -> Result<Reply, String> {
    let fail = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", socket.display());
    let mut stream = UnixStream::connect(socket).map_err(|e| fail("connecting (is tandem running?)", e))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail("setting a timeout", e))?;
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|e| fail("sending", e))?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(stream, MAX_LINE as u64))
        .read_line(&mut reply)
        .map_err(|e| fail("reading the reply", e))?;
    serde_json::from_str(&reply).map_err(|e| format!("{}: unreadable reply: {e}", socket.display()))
}

/// The reply as people read it.
pub(crate) fn render(reply: &Reply) -> String {
    let mut out = String::new();
    match reply {
        Reply::Status(s) => {
            let _ = writeln!(out, "tandem {} up {}s, config {}", s.version, s.uptime_secs, s.config);
            let _ = writeln!(out, "connection {} on {}", s.connection, s.tun);
            let _ = writeln!(out, "IKE SAs: {}, CHILD_SAs: {}", s.ike_sas, s.child_sas);
            let _ = writeln!(
                out,
                "drops: {} without policy, {} unknown SPI",
                s.no_policy_drops, s.unknown_spi_drops
            );
            if let Some(c) = &s.cluster {
                render_cluster(&mut out, c);
            }
        }
        Reply::Sas { ike_sas } if ike_sas.is_empty() => out.push_str("no IKE SAs\n"),
        Reply::Sas { ike_sas } => {
            for sa in ike_sas {
                let nat = if sa.nat { ", NAT" } else { "" };
                let _ = writeln!(
                    out,
                    "{}: #{} ESTABLISHED {}s, {} <-> {}{nat}",
                    sa.connection, sa.id, sa.established_secs, sa.local, sa.remote
                );
                let _ = writeln!(out, "  spis {}_i {}_r", sa.spi_i, sa.spi_r);
                if let (Some(segment), Some(served)) = (sa.segment, sa.served) {
                    let role = if served { "served here" } else { "mirrored" };
                    let _ = writeln!(out, "  segment {segment}, {role}");
                }
                if !sa.virtual_ips.is_empty() {
                    let _ = writeln!(out, "  virtual IPs {}", sa.virtual_ips.join(", "));
                }
                for c in &sa.children {
                    let _ = writeln!(out, "  {}: INSTALLED, TUNNEL, {}", c.name, c.algorithms);
                    let _ =
                        writeln!(out, "    in  {}, {} bytes, {} packets", c.spi_in, c.bytes_in, c.packets_in);
                    let _ = writeln!(
                        out,
                        "    out {}, {} bytes, {} packets",
                        c.spi_out, c.bytes_out, c.packets_out
                    );
                    let _ = writeln!(
                        out,
                        "    drops: {} replay, {} ICV, {} other",
                        c.replay_drops, c.icv_drops, c.other_drops
                    );
                    let _ = writeln!(out, "    local  {}", c.local_ts.join(" "));
                    let _ = writeln!(out, "    remote {}", c.remote_ts.join(" "));
                }
            }
        }
        Reply::Done { message } => {
            let _ = writeln!(out, "{message}");
        }
        Reply::Error { message } => {
            let _ = writeln!(out, "error: {message}");
        }
    }
    out
}

/// The cluster part of `tandem status`.
fn render_cluster(out: &mut String, c: &ClusterStatus) {
    let list = |v: &[u32]| {
        if v.is_empty() { "-".to_owned() } else { v.iter().map(u32::to_string).collect::<Vec<_>>().join(",") }
    };
    let state = |synced: bool| if synced { "synced" } else { "syncing" };
    let _ = writeln!(out, "cluster: node {} ({}), {} segments", c.node, state(c.synced), c.segment_count);
    let _ =
        writeln!(out, "  node {:>2}  this node  {:<8} segments {}", c.node, state(c.synced), list(&c.owned));
    for m in &c.members {
        let live = if m.live { state(m.synced) } else { "dead" };
        let heard =
            m.heard_ms_ago.map_or_else(|| "never heard".to_owned(), |ms| format!("heard {ms} ms ago"));
        let _ = writeln!(
            out,
            "  node {:>2}  peer       {:<8} segments {}  ({heard}, {} unacked)",
            m.id,
            live,
            list(&m.owned),
            m.unacked
        );
    }
    let _ = writeln!(out, "  sync backlog {}", c.sync_backlog);
    let counters: Vec<String> = c.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  {}", counters.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_one_json_line() {
        for r in [
            Request::Status,
            Request::Sas,
            Request::Initiate { child: "net".into() },
            Request::Terminate { ike: "rw".into() },
            Request::Reload,
            Request::Segments { action: SegmentAction::Drop, segments: vec![1, 3] },
        ] {
            let line = serde_json::to_string(&r).expect("encode");
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Request>(&line).expect("decode"), r);
        }
        assert_eq!(serde_json::to_string(&Request::Sas).expect("encode"), r#"{"cmd":"sas"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"rm -rf"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"initiate"}"#).is_err(), "missing child");
        assert!(serde_json::from_str::<Request>("not json").is_err());
    }

    #[test]
    fn renders_sas_like_swanctl() {
        let child = ChildSaView {
            name: "net".into(),
            spi_in: "c1234567".into(),
            spi_out: "0abcdef0".into(),
            algorithms: "aes256gcm16".into(),
            local_ts: vec!["198.51.100.0/24".into()],
            remote_ts: vec!["192.0.2.10/32".into()],
            bytes_in: 84,
            packets_in: 1,
            bytes_out: 84,
            packets_out: 1,
            replay_drops: 0,
            icv_drops: 2,
            other_drops: 0,
        };
        let sa = IkeSaView {
            id: "1f".into(),
            connection: "rw".into(),
            local: "192.0.2.1:4500".into(),
            remote: "192.0.2.10:4500".into(),
            spi_i: "01".into(),
            spi_r: "1f".into(),
            nat: true,
            virtual_ips: vec![],
            established_secs: 3,
            segment: None,
            served: None,
            children: vec![child],
        };
        let text = render(&Reply::Sas { ike_sas: vec![sa] });
        assert!(
            text.starts_with("rw: #1f ESTABLISHED 3s, 192.0.2.1:4500 <-> 192.0.2.10:4500, NAT\n"),
            "{text}"
        );
        assert!(text.contains("drops: 0 replay, 2 ICV, 0 other"), "{text}");
        assert_eq!(render(&Reply::Sas { ike_sas: vec![] }), "no IKE SAs\n");
    }
}
