//! The crate's error type.

use crate::ownership::NodeId;

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
}
