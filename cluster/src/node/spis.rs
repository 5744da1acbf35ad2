//! The IKE engine's SPI allocator on a cluster node: every SPI carries the
//! segment of its IKE SA.

use crate::segment::{Segment, segment_of};
use crate::spi::SegmentSpis;
use core::net::IpAddr;
use tandem_ike::{IkeSaId, SpiAllocator};

/// Allocates SPIs in the segment of the peer's address (new IKE SAs) or
/// of the IKE SA they belong to (CHILD_SAs, rekeyed IKE SAs), so an SA
/// never changes segment, whatever its peer's address does later.
#[derive(Clone, Copy, Debug)]
pub struct ClusterSpis {
    spis: SegmentSpis,
}

impl ClusterSpis {
    /// An allocator for `spis`' segment count.
    pub fn new(spis: SegmentSpis) -> Self {
        Self { spis }
    }

    fn segment_of_sa(&self, sa: IkeSaId) -> Segment {
        // Our IKE SPIs all carry a segment; segment 1 is only a fallback.
        self.spis.segment_of_ike_spi(sa.0).unwrap_or(self.spis.count().segment_of_hash(0))
    }
}

impl SpiAllocator for ClusterSpis {
    fn ike_spi(&mut self, random: u64, peer: IpAddr) -> u64 {
        self.spis.ike_spi_from_bits(segment_of(peer, self.spis.count()), random)
    }

    fn child_spi(&mut self, random: u32, ike_sa: IkeSaId) -> u32 {
        self.spis.esp_spi_from_bits(self.segment_of_sa(ike_sa), random)
    }

    fn rekeyed_ike_spi(&mut self, random: u64, old: IkeSaId) -> u64 {
        self.spis.ike_spi_from_bits(self.segment_of_sa(old), random)
    }
}
