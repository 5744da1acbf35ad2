//! Segments: which slice of the peers a node serves, chosen the way Linux
//! CLUSTERIP's `sourceip` hash mode chooses them.
//!
//! # The IPv4 rule (CLUSTERIP compatible)
//!
//! A peer's segment is a number in `1..=count`. For an IPv4 source address
//! the kernel's `clusterip_hashfn` (Linux >= 4.1, hash init value 0, the
//! default and what strongSwan's HA plugin requires) computes
//!
//! ```text
//! hash    = jhash_1word(a, 0)        a = ntohl(saddr): 192.0.2.10 -> 0xc000020a
//! segment = ((hash as u64 * count) >> 32) + 1
//! ```
//!
//! where `jhash_1word(a, 0)` is Bob Jenkins' lookup3 final mix of
//! `(a + s, s, s)` with `s = 0xdeadbeef + (1 << 2)` (the init value plus
//! four times the word count, as `__jhash_nwords` adds it since Linux 4.1),
//! returning `c`. The segment is a multiply-shift of the hash, not a modulo.
//! Tandem therefore splits IPv4 peers exactly as kernel CLUSTERIP nodes and
//! strongSwan HA nodes on the same LAN do.
//!
//! # The IPv6 rule (Tandem's own)
//!
//! CLUSTERIP is IPv4 only, and strongSwan's HA plugin hashes every IPv6
//! peer as if its address were `0.0.0.0`, so all IPv6 peers land in one
//! segment (that of `0.0.0.0`: segment 1 for counts up to 55) and on one
//! node.
//! Tandem spreads them instead: the hash of an IPv6 address is the kernel's
//! `jhash2(k, 4, 0)` over its four 32-bit words, each read big-endian
//! (`k[0] = 0x20010db8` for `2001:db8::`), and the segment follows from the
//! hash by the same multiply-shift. `jhash2` of a single word is exactly
//! `jhash_1word`, so both families are "jhash2 over the address words in
//! network order, init value 0". An IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.10`) is hashed as the IPv4 address it maps, so a peer
//! gets the same segment whether a driver reports it in IPv4 or in mapped
//! form.
//!
//! Only new IKE SAs are placed by address: once an SA exists its segment
//! travels in the SPIs Tandem allocated (see [`crate::spi`]).

use crate::Error;
use core::fmt;
use core::net::IpAddr;

/// The largest segment count: segments are bits of a `u64` in
/// [`SegmentSet`], and six bits of every Tandem SPI carry one.
pub const MAX_SEGMENTS: u8 = 64;

/// How many segments the peers are split into: `1..=64`, the same on every
/// node (strongSwan's `segment_count`, CLUSTERIP's `--total-nodes`).
///
/// The count is the unit of load balancing and failover: a node owns whole
/// segments, so more segments than nodes lets the survivors of a failure
/// share the dead node's load. 64 is the most a [`SegmentSet`] bitmask and
/// the six segment bits of an SPI can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentCount(u8);

impl SegmentCount {
    /// The largest count, 64.
    pub const MAX: Self = Self(MAX_SEGMENTS);

    /// A count of `n` segments; rejects 0 and anything above 64.
    pub fn new(n: u32) -> Result<Self, Error> {
        match u8::try_from(n) {
            Ok(v) if (1..=MAX_SEGMENTS).contains(&v) => Ok(Self(v)),
            _ => Err(Error::SegmentCount(n)),
        }
    }

    /// The number of segments.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Segment `n` of this count; rejects 0 and anything above the count.
    pub fn segment(self, n: u32) -> Result<Segment, Error> {
        match u8::try_from(n) {
            Ok(v) if (1..=self.0).contains(&v) => Ok(Segment(v)),
            _ => Err(Error::Segment { segment: n, count: self.0 }),
        }
    }

    /// Whether `segment` is one of this count's segments.
    pub const fn contains(self, segment: Segment) -> bool {
        segment.0 <= self.0
    }

    /// Every segment, `1..=count`, in order.
    pub fn segments(self) -> impl Iterator<Item = Segment> + Clone {
        (1..=self.0).map(Segment)
    }

    /// The segment of a hash: `((hash * count) >> 32) + 1`, as CLUSTERIP
    /// scales its hash to a node number.
    pub fn segment_of_hash(self, hash: u32) -> Segment {
        // hash < 2^32, so the product shifted right by 32 is below count <= 64.
        let scaled = (u64::from(hash) * u64::from(self.0)) >> 32;
        Segment(scaled as u8 + 1)
    }
}

impl fmt::Display for SegmentCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One segment, numbered from 1 like CLUSTERIP's node numbers; never above
/// 64. Made by [`SegmentCount::segment`], [`SegmentCount::segments`],
/// [`segment_of`] or from an SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment(u8);

impl Segment {
    /// The segment's number, `1..=64`.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The segment whose zero-based index is `index`, if below 64.
    pub(crate) fn from_index(index: u32) -> Option<Self> {
        match u8::try_from(index) {
            Ok(i) if i < MAX_SEGMENTS => Some(Self(i + 1)),
            _ => None,
        }
    }

    /// The zero-based index, `0..=63`.
    pub(crate) const fn index(self) -> u32 {
        self.0 as u32 - 1
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of segments as a 64-bit mask, bit `n - 1` for segment `n`: what a
/// node owns, takes or drops, and what STATUS, SEGMENT_TAKE and
/// SEGMENT_DROP messages carry.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SegmentSet(u64);

impl SegmentSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Every segment of `count`.
    pub const fn all(count: SegmentCount) -> Self {
        Self(u64::MAX >> (64 - count.0 as u32))
    }

    /// The set whose mask is `bits` (bit `n - 1` for segment `n`); every
    /// mask is a valid set.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The mask, bit `n - 1` for segment `n`.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Adds `segment`; returns whether it was new.
    pub fn insert(&mut self, segment: Segment) -> bool {
        let bit = 1 << segment.index();
        let new = self.0 & bit == 0;
        self.0 |= bit;
        new
    }

    /// Removes `segment`; returns whether it was present.
    pub fn remove(&mut self, segment: Segment) -> bool {
        let bit = 1 << segment.index();
        let present = self.0 & bit != 0;
        self.0 &= !bit;
        present
    }

    /// Whether `segment` is in the set.
    pub const fn contains(self, segment: Segment) -> bool {
        self.0 & (1 << segment.index()) != 0
    }

    /// The number of segments in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Segments in either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Segments in both sets.
    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Segments in `self` but not in `other`.
    #[must_use]
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The segments in ascending order.
    pub fn iter(self) -> impl Iterator<Item = Segment> + Clone {
        (0..64).filter(move |i| self.0 & (1 << i) != 0).filter_map(Segment::from_index)
    }
}

impl fmt::Debug for SegmentSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Segment::get)).finish()
    }
}

impl FromIterator<Segment> for SegmentSet {
    fn from_iter<I: IntoIterator<Item = Segment>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// The segment of a new IKE SA from `peer`, its source address: the
/// CLUSTERIP `sourceip` rule for IPv4 (and IPv4-mapped IPv6), Tandem's
/// `jhash2` rule for other IPv6 addresses (see the module docs).
pub fn segment_of(peer: IpAddr, count: SegmentCount) -> Segment {
    count.segment_of_hash(sourceip_hash(peer))
}

/// The 32-bit hash [`segment_of`] scales to a segment: CLUSTERIP's
/// `jhash_1word(ntohl(saddr), 0)` for IPv4 and IPv4-mapped IPv6, `jhash2`
/// over the four big-endian words for other IPv6 addresses.
pub fn sourceip_hash(peer: IpAddr) -> u32 {
    match peer {
        IpAddr::V4(v4) => jhash2(&[u32::from(v4)]),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => jhash2(&[u32::from(v4)]),
            None => {
                let o = v6.octets();
                let word = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
                jhash2(&[word(0), word(4), word(8), word(12)])
            }
        },
    }
}

/// The Linux kernel's `jhash2(k, k.len(), 0)` (lookup3 over 32-bit words,
/// init value 0, as in Linux >= 4.1). For one word it equals
/// `jhash_1word(k[0], 0)`.
pub(crate) fn jhash2(k: &[u32]) -> u32 {
    // At most a handful of words here, so the length fits in a u32.
    let init = 0xdead_beef_u32.wrapping_add((k.len() as u32) << 2);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = k;
    while let [k0, k1, k2, tail @ ..] = rest {
        if tail.is_empty() {
            break;
        }
        a = a.wrapping_add(*k0);
        b = b.wrapping_add(*k1);
        c = c.wrapping_add(*k2);
        mix(&mut a, &mut b, &mut c);
        rest = tail;
    }
    match rest {
        [] => return c,
        [k0] => a = a.wrapping_add(*k0),
        [k0, k1] => {
            a = a.wrapping_add(*k0);
            b = b.wrapping_add(*k1);
        }
        [k0, k1, k2, ..] => {
            a = a.wrapping_add(*k0);
            b = b.wrapping_add(*k1);
            c = c.wrapping_add(*k2);
        }
    }
    final_mix(a, b, c)
}

/// lookup3's `mix()`, run between blocks of three words.
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c) ^ c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c) ^ c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a) ^ a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b) ^ b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

/// lookup3's `final()`, the kernel's `__jhash_final`; returns `c`.
fn final_mix(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    c = (c ^ b).wrapping_sub(b.rotate_left(14));
    a = (a ^ c).wrapping_sub(c.rotate_left(11));
    b = (b ^ a).wrapping_sub(a.rotate_left(25));
    c = (c ^ b).wrapping_sub(b.rotate_left(16));
    a = (a ^ c).wrapping_sub(c.rotate_left(4));
    b = (b ^ a).wrapping_sub(a.rotate_left(14));
    (c ^ b).wrapping_sub(b.rotate_left(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `jhash_1word(a, 0)` written out as the kernel's `__jhash_nwords`.
    fn jhash_1word(a: u32) -> u32 {
        let s = 0xdead_beef_u32.wrapping_add(1 << 2);
        final_mix(a.wrapping_add(s), s, s)
    }

    #[test]
    fn jhash2_of_one_word_is_jhash_1word() {
        for a in [0, 1, 0xc000_020a, 0xffff_ffff, 0x8000_0000, 0x0a00_0001] {
            assert_eq!(jhash2(&[a]), jhash_1word(a));
        }
    }

    #[test]
    fn jhash2_of_no_words_is_the_init_value() {
        assert_eq!(jhash2(&[]), 0xdead_beef);
    }

    #[test]
    fn segment_of_hash_spans_one_to_count() {
        for n in 1..=64 {
            let count = SegmentCount::new(n).expect("1..=64 is a valid count");
            assert_eq!(count.segment_of_hash(0).get(), 1);
            assert_eq!(u32::from(count.segment_of_hash(u32::MAX).get()), n);
        }
    }
}
