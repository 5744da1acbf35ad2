//! Segment counts, segments and segment sets.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use tandem_cluster::{Error, SegmentCount, SegmentSet, segment_of};

#[test]
fn rejects_segment_counts_outside_1_to_64() {
    for n in [0, 65, 256, 1000, u32::MAX] {
        assert_eq!(SegmentCount::new(n), Err(Error::SegmentCount(n)));
    }
    assert_eq!(SegmentCount::new(64).map(SegmentCount::get), Ok(64));
    assert_eq!(SegmentCount::new(1).map(SegmentCount::get), Ok(1));
    assert_eq!(SegmentCount::MAX.get(), 64);
}

#[test]
fn rejects_segments_outside_the_count() {
    let c = SegmentCount::new(5).expect("valid");
    for n in [0, 6, 64, 300] {
        assert_eq!(c.segment(n), Err(Error::Segment { segment: n, count: 5 }));
    }
    assert_eq!(c.segment(5).map(|s| s.get()), Ok(5));
    assert_eq!(c.segments().map(|s| s.get()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

#[test]
fn segment_sets_work_as_bitmasks() {
    let c = SegmentCount::MAX;
    let mut s = SegmentSet::EMPTY;
    assert!(s.is_empty());
    let (one, sixty_four) = (c.segment(1).expect("valid"), c.segment(64).expect("valid"));
    assert!(s.insert(one) && s.insert(sixty_four) && !s.insert(one));
    assert_eq!(s.bits(), 1 | 1 << 63);
    assert_eq!(s.len(), 2);
    assert_eq!(format!("{s:?}"), "{1, 64}");
    assert!(s.remove(one) && !s.remove(one));
    assert_eq!(SegmentSet::all(c).bits(), u64::MAX);
    assert_eq!(SegmentSet::all(SegmentCount::new(3).expect("valid")).bits(), 0b111);
}

proptest! {
    #[test]
    fn round_trips_segment_sets(bits in any::<u64>()) {
        let s = SegmentSet::from_bits(bits);
        prop_assert_eq!(s.iter().collect::<SegmentSet>(), s);
        prop_assert_eq!(s.iter().count() as u32, s.len());
        prop_assert!(s.iter().all(|x| s.contains(x)));
    }

    #[test]
    fn segments_are_within_the_count(v4 in any::<u32>(), v6 in any::<u128>(), n in 1u32..=64) {
        let c = SegmentCount::new(n).expect("valid");
        for addr in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(Ipv6Addr::from(v6))] {
            let s = segment_of(addr, c);
            prop_assert!(c.contains(s));
            prop_assert!((1..=n).contains(&u32::from(s.get())));
        }
    }
}
