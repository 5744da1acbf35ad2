//! SPIs that carry their SA's segment.
//!
//! A peer is placed in a segment by its address only once, when its first
//! IKE SA is set up. From then on the segment travels in the SPIs Tandem
//! allocates (its own IKE SPI, the inbound ESP SPIs of the CHILD_SAs), so
//! any node can tell an SA's segment from a packet alone, and NAT rebinding
//! or MOBIKE, which change the peer's address, never move an SA to another
//! node. Rekeyed IKE and CHILD SAs get SPIs of their predecessor's segment;
//! outbound ESP follows its IKE SA's segment (its SPI is the peer's).
//!
//! # Encoding
//!
//! The top [`SEGMENT_BITS`] (6) bits of the SPI hold `segment - 1`; every
//! other bit is random:
//!
//! ```text
//! IKE SPI (u64, big-endian on the wire):  | segment - 1 : 6 | random : 58 |
//! ESP SPI (u32, big-endian on the wire):  | segment - 1 : 6 | random : 26 |
//! ```
//!
//! so the segment is the first octet on the wire shifted right by two,
//! plus one. Two values are patched after drawing: an IKE SPI that came out
//! 0 becomes 1, and an ESP SPI below 256 (reserved by IANA) gets bit 8 set;
//! both happen only in segment 1 and only when the random bits are (nearly)
//! all zero. The field does not depend on the segment count, so an SPI
//! decodes to the same segment on every node; a decoder still checks the
//! segment against the count, since an SPI from the wire may carry any
//! value. The encoding is part of the cluster's contract: every node must
//! use the same one.
//!
//! Six bits fit the 64 segments of [`SegmentCount::MAX`] and leave 26
//! random bits per ESP SPI, about 67 million per segment, so collisions
//! among a node's SAs stay rare (the allocator's caller retries on one).

use crate::segment::{Segment, SegmentCount};
use rand_core::CryptoRng;

/// Bits at the top of each SPI that carry the segment.
pub const SEGMENT_BITS: u32 = 6;

/// Allocates and decodes segment-carrying SPIs for one segment count.
///
/// Allocation draws from a caller-supplied RNG ([`SegmentSpis::ike_spi`],
/// [`SegmentSpis::esp_spi`]) or takes random bits the caller drew
/// ([`SegmentSpis::ike_spi_from_bits`], [`SegmentSpis::esp_spi_from_bits`]),
/// which is the shape of the IKE engine's SPI allocator hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpis {
    count: SegmentCount,
}

impl SegmentSpis {
    /// An allocator for a cluster of `count` segments.
    pub const fn new(count: SegmentCount) -> Self {
        Self { count }
    }

    /// The segment count SPIs are decoded against.
    pub const fn count(&self) -> SegmentCount {
        self.count
    }

    /// A fresh IKE SPI of `segment`: never 0.
    pub fn ike_spi<R: CryptoRng + ?Sized>(&self, segment: Segment, rng: &mut R) -> u64 {
        self.ike_spi_from_bits(segment, rng.next_u64())
    }

    /// A fresh inbound ESP SPI of `segment`: never below 256.
    pub fn esp_spi<R: CryptoRng + ?Sized>(&self, segment: Segment, rng: &mut R) -> u32 {
        self.esp_spi_from_bits(segment, rng.next_u32())
    }

    /// The IKE SPI of `segment` whose random part is the low 58 bits of
    /// `random`: never 0.
    pub fn ike_spi_from_bits(&self, segment: Segment, random: u64) -> u64 {
        const SHIFT: u32 = u64::BITS - SEGMENT_BITS;
        let spi = (u64::from(segment.index()) << SHIFT) | (random & ((1 << SHIFT) - 1));
        spi.max(1)
    }

    /// The ESP SPI of `segment` whose random part is the low 26 bits of
    /// `random`: never below 256.
    pub fn esp_spi_from_bits(&self, segment: Segment, random: u32) -> u32 {
        const SHIFT: u32 = u32::BITS - SEGMENT_BITS;
        let spi = (segment.index() << SHIFT) | (random & ((1 << SHIFT) - 1));
        if spi < 256 { spi | 0x100 } else { spi }
    }

    /// The segment an IKE SPI carries, or `None` when it names a segment
    /// above the count (not an SPI this cluster allocated).
    pub fn segment_of_ike_spi(&self, spi: u64) -> Option<Segment> {
        let index = spi >> (u64::BITS - SEGMENT_BITS);
        // The shift leaves six bits, so the index is below 64.
        self.checked(index as u32)
    }

    /// The segment an ESP SPI carries, or `None` when it names a segment
    /// above the count (not an SPI this cluster allocated).
    pub fn segment_of_esp_spi(&self, spi: u32) -> Option<Segment> {
        self.checked(spi >> (u32::BITS - SEGMENT_BITS))
    }

    fn checked(&self, index: u32) -> Option<Segment> {
        Segment::from_index(index).filter(|s| self.count.contains(*s))
    }
}
