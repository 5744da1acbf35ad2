//! What a node holds, SA by SA, for an operator (`tandem sas`): no keys.

use crate::segment::Segment;
use core::net::{IpAddr, SocketAddr};
use tandem_esp::SaStats;
use tandem_ike::IkeSaId;
use tandem_ike::wire::TrafficSelector;

/// One IKE SA a node holds, served here or mirrored.
#[derive(Clone, Debug)]
pub struct IkeSaReport {
    /// The SA.
    pub id: IkeSaId,
    /// Its segment (from our SPI).
    pub segment: Option<Segment>,
    /// This node owns the segment: it answers the peer.
    pub served: bool,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// The initiator's SPI.
    pub spi_i: u64,
    /// The responder's SPI.
    pub spi_r: u64,
    /// A NAT was detected on the path.
    pub nat: bool,
    /// Addresses leased to the peer.
    pub virtual_ips: Vec<IpAddr>,
    /// Its CHILD_SAs.
    pub children: Vec<ChildSaReport>,
}

/// One CHILD_SA in an [`IkeSaReport`].
#[derive(Clone, Debug)]
pub struct ChildSaReport {
    /// Our inbound SPI.
    pub inbound_spi: u32,
    /// The peer's (outbound) SPI.
    pub outbound_spi: u32,
    /// The ESP suite in strongSwan syntax.
    pub algorithms: String,
    /// Our selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Inbound counters on this node (decrypted or verified samples).
    pub inbound: SaStats,
    /// Outbound counters on this node (encrypted here).
    pub outbound: SaStats,
}
