//! tandem-cluster: Tandem's sans-IO active/active cluster engine.
//!
//! The crate will hold everything that makes several Tandem nodes one
//! gateway: segment selection, membership and failure detection, the
//! authenticated sync protocol and the mirrored IKE/ESP state that lets a
//! node take over another's segments. Like the other core crates it does
//! no I/O, reads no clock and draws randomness only from RNGs its caller
//! passes in.
//!
//! Bottom up:
//!
//! - [`segment`]: the peers are split into `1..=64` segments
//!   ([`SegmentCount`]). A new IKE SA's segment comes from its peer's
//!   address by Linux CLUSTERIP's `sourceip` hash ([`segment_of`]), so
//!   Tandem splits IPv4 peers exactly like kernel CLUSTERIP and strongSwan
//!   HA nodes; IPv6 peers are spread by the same hash over all four address
//!   words. [`SegmentSet`] is the bitmask that STATUS and take/drop
//!   announcements carry.
//! - [`spi`]: once an SA exists, its segment rides in the top six bits of
//!   the SPIs Tandem allocates ([`SegmentSpis`]), so address changes (NAT
//!   rebinding, MOBIKE) never move it.
//! - [`ownership`]: a [`Layout`] (configured nodes, segment count, two-node
//!   rule) maps each live set to an [`Assignment`], one live owner per
//!   segment, by balanced per-segment preference lists: a node that leaves
//!   moves only its own segments and gets them back when it returns. Only a
//!   strict majority of the configured nodes serves (a [`TwoNodeRule`]
//!   decides for two), so partitions never both own a segment.
//!   [`Assignment::changes_for`] gives the take/drop a node announces.
//! - [`sync`]: the sync protocol's lower layers: versioned TLV messages,
//!   sealed with an AEAD keyed from the cluster secret per sender, over a
//!   reliable, ordered, replay-protected channel per peer.
//! - [`pool`]: HA address pools split by segment.
//! - [`node`]: a cluster node: the IKE and ESP engines wired to
//!   membership (heartbeats, quorum, self-fencing), mirroring, resync,
//!   takeover and reintegration, and the ESP counter and replay sharing.
//!   docs/cluster.md describes the whole.
//!
//! A gateway drives a [`Node`]. Underneath, the node does this: build a [`Layout`]; whenever
//! the membership view changes, compute the new [`Assignment`], apply and
//! announce [`Assignment::changes_for`] this node (drops before takes);
//! place new IKE SAs with [`segment_of`] and allocate their SPIs with
//! [`SegmentSpis`]; on every packet of an existing SA, ask the assignment
//! about the segment its SPI carries.
#![forbid(unsafe_code)]

pub mod child;
mod error;
pub mod link;
pub mod node;
pub mod ownership;
pub mod pool;
pub mod segment;
pub mod spi;
pub mod sync;

pub use error::Error;
pub use node::{ChildSaReport, IkeSaReport, InPlace, Member, Node, NodeConfig, NodeEvent, NodeStats, Output};
pub use ownership::{Assignment, Layout, NodeId, SegmentChanges, TwoNodeRule};
pub use pool::HaPool;
pub use segment::{Segment, SegmentCount, SegmentSet, segment_of};
pub use spi::SegmentSpis;
