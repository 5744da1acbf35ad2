//! The crate's error type.

use crate::ownership::NodeId;
use crate::segment::Segment;

/// What can go wrong configuring or driving the cluster engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A segment count outside `1..=64`.
    #[error("segment count {0} is outside 1..=64")]
    SegmentCount(u32),
    /// A segment number outside `1..=count`.
    #[error("segment {segment} is outside 1..={count}")]
    Segment {
        /// The rejected number.
        segment: u32,
        /// The configured segment count.
        count: u8,
    },
    /// A cluster of fewer than 2 or more than 16 nodes.
    #[error("{0} nodes configured; a cluster has 2 to 16")]
    NodeCount(usize),
    /// The same node id configured twice.
    #[error("node {0} is configured twice")]
    DuplicateNode(NodeId),
    /// A node id that is not in the configuration.
    #[error("node {0} is not a configured node")]
    UnknownNode(NodeId),
    /// A sync datagram or message that does not parse.
    #[error("malformed sync datagram: {0}")]
    SyncMalformed(&'static str),
    /// A sync datagram of an unsupported protocol version.
    #[error("unsupported sync protocol version {0}")]
    SyncVersion(u8),
    /// A sync datagram for another cluster, another node, or from a node
    /// this channel does not talk to.
    #[error("sync datagram not addressed to this channel")]
    SyncMisaddressed,
    /// A sync datagram whose AEAD tag does not verify: forged, tampered
    /// with, or sealed under another cluster secret.
    #[error("sync datagram failed authentication")]
    SyncAuth,
    /// A sync datagram whose packet number was seen before or is too old.
    #[error("sync packet number {0} replayed or too old")]
    SyncReplay(u64),
    /// A sync datagram from a peer epoch this node has seen end.
    #[error("sync datagram from a retired peer epoch")]
    SyncStaleEpoch,
    /// The sync channel's send window and queue are full.
    #[error("sync channel full; retry after acks arrive")]
    SyncWouldBlock,
    /// A sync message too large for one datagram.
    #[error("sync message of {0} octets is too large")]
    SyncTooLarge(usize),
    /// The cluster secret is too short or the sync AEAD could not be keyed.
    #[error("sync key setup failed: {0}")]
    SyncKey(&'static str),
    /// An external packet this node does not handle: dropped.
    #[error("packet dropped: {0}")]
    Packet(&'static str),
    /// A sync message that names an SA this node does not hold.
    #[error("no such SA")]
    UnknownSa,

    /// An operation on an SA of a segment another node serves.
    #[error("segment {0} is served by another node")]
    NotServedHere(Segment),
    /// The IKE engine refused an input or a mirrored state.
    #[error("IKE: {0}")]
    Ike(#[from] tandem_ike::Error),
    /// The ESP engine refused a packet or an SA.
    #[error("ESP: {0}")]
    Esp(#[from] tandem_esp::Error),
    /// A setting out of range.
    #[error("invalid cluster setting: {0}")]
    Config(&'static str),
}
