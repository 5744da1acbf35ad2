//! SPIs that carry their segment.

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;
use tandem_cluster::{SegmentCount, SegmentSpis};

#[test]
fn encodes_the_segment_in_the_first_six_bits() {
    let spis = SegmentSpis::new(SegmentCount::MAX);
    let seg = |n| SegmentCount::MAX.segment(n).expect("valid");
    assert_eq!(spis.ike_spi_from_bits(seg(1), u64::MAX), u64::MAX >> 6);
    assert_eq!(spis.ike_spi_from_bits(seg(64), 0), 63 << 58);
    assert_eq!(spis.esp_spi_from_bits(seg(2), 0x1234_5678), 1 << 26 | 0x0234_5678);
    assert_eq!(spis.ike_spi_from_bits(seg(2), 0).to_be_bytes()[0] >> 2, 1);
}

#[test]
fn patches_reserved_values() {
    let spis = SegmentSpis::new(SegmentCount::MAX);
    let first = SegmentCount::MAX.segment(1).expect("valid");
    assert_eq!(spis.ike_spi_from_bits(first, 0), 1);
    assert_eq!(spis.ike_spi_from_bits(first, 63 << 58), 1);
    assert_eq!(spis.esp_spi_from_bits(first, 0), 256);
    assert_eq!(spis.esp_spi_from_bits(first, 255), 511);
    assert_eq!(spis.esp_spi_from_bits(first, 256), 256);
}

#[test]
fn rejects_segments_above_the_count() {
    let spis = SegmentSpis::new(SegmentCount::new(4).expect("valid"));
    assert_eq!(spis.segment_of_ike_spi(4 << 58), None);
    assert_eq!(spis.segment_of_esp_spi(u32::MAX), None);
    assert_eq!(spis.segment_of_esp_spi(3 << 26).map(|s| s.get()), Some(4));
}

proptest! {
    #[test]
    fn round_trips_every_segment(n in 1u32..=64, ike in any::<u64>(), esp in any::<u32>()) {
        let count = SegmentCount::new(n).expect("valid");
        let spis = SegmentSpis::new(count);
        for s in count.segments() {
            let (i, e) = (spis.ike_spi_from_bits(s, ike), spis.esp_spi_from_bits(s, esp));
            prop_assert_ne!(i, 0);
            prop_assert!(e >= 256);
            prop_assert_eq!(spis.segment_of_ike_spi(i), Some(s));
            prop_assert_eq!(spis.segment_of_esp_spi(e), Some(s));
        }
    }

    #[test]
    fn round_trips_spis_from_an_rng(n in 1u32..=64, seed in any::<u64>()) {
        let count = SegmentCount::new(n).expect("valid");
        let spis = SegmentSpis::new(count);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for s in count.segments() {
            let (i, e) = (spis.ike_spi(s, &mut rng), spis.esp_spi(s, &mut rng));
            prop_assert_ne!(i, 0);
            prop_assert!(e >= 256);
            prop_assert_eq!(spis.segment_of_ike_spi(i), Some(s));
            prop_assert_eq!(spis.segment_of_esp_spi(e), Some(s));
        }
    }

    #[test]
    fn decodes_any_spi_within_the_count(n in 1u32..=64, ike in any::<u64>(), esp in any::<u32>()) {
        let count = SegmentCount::new(n).expect("valid");
        let spis = SegmentSpis::new(count);
        for s in [spis.segment_of_ike_spi(ike), spis.segment_of_esp_spi(esp)].into_iter().flatten() {
            prop_assert!(count.contains(s));
        }
    }
}
