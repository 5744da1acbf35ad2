//! `tandem run`: the gateway runtime. One tokio task per node drives the
//! IKE engine and the ESP data path, exactly as their docs say: IKE on
//! UDP 500 and 4500 (behind the non-ESP marker), ESP in UDP on 4500
//! (RFC 3948), plaintext through a TUN device, routes and a policy rule
//! through rtnetlink. The kernel's XFRM is never used. With a `[cluster]`
//! section the node runs instead between two AF_PACKET ports and its sync
//! socket (see `cluster`).

mod afpacket;
mod cluster;
mod control;
mod dataplane;
mod driver;
mod frames;
mod netlink;
mod plan;
mod trim;
mod tun;
mod udp;
mod udp_gso;

pub(crate) use driver::{Plan, run};

use std::io;

/// Every failure of the gateway runtime.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GatewayError {
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// The ESP data path refused an SA or a packet.
    #[error("ESP: {0}")]
    Esp(#[from] tandem_esp::Error),
    /// The IKE engine refused a request.
    #[error("IKE: {0}")]
    Ike(#[from] tandem_ike::Error),
    /// A negotiated CHILD_SA could not become ESP SAs.
    #[error("CHILD_SA: {0}")]
    Child(#[from] tandem_cluster::Error),
    /// The configuration asks for something the runtime cannot do.
    #[error("configuration: {0}")]
    Config(String),
    /// A netlink request failed.
    #[error("netlink: {0}")]
    Netlink(String),
    /// A plaintext packet matched no CHILD_SA's selectors.
    #[error("no CHILD_SA covers the packet")]
    NoPolicy,
    /// Something Tandem does not do (yet).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl GatewayError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}
