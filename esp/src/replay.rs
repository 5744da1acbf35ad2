//! The anti-replay window (RFC 4303 section 3.4.3 and Appendix A).
//!
//! The window is a ring of 64-bit blocks in the style of RFC 6479: sliding
//! right clears whole blocks instead of shifting bits, so a jump costs at
//! most one pass over the ring. [`ReplayWindow::check`] runs before the ICV
//! is verified and changes nothing; [`ReplayWindow::accept`] runs after.
//!
//! With extended sequence numbers (RFC 4304) only the low 32 bits travel in
//! the packet; `check` infers the high half from the window's top `T` as
//! Appendix A2.2 describes. Recovery after losing more than 2^32 packets in
//! a row (Appendix A3) is not attempted: such a packet fails its ICV check
//! and is dropped.

use crate::Error;

/// Default window size in packets (Linux's default is 32; 1024 tolerates
/// the reordering of multi-queue senders).
pub const DEFAULT_WINDOW: u32 = 1024;
/// Largest supported window size in packets.
pub const MAX_WINDOW: u32 = 65536;

/// Anti-replay state of one inbound SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Window size `W` in packets.
    size: u64,
    /// Highest sequence number accepted so far (`T`); 0 before the first.
    top: u64,
    /// Ring of bitmap blocks; its length is a power of two.
    blocks: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of `size` packets (1 to [`MAX_WINDOW`]).
    pub fn new(size: u32) -> Result<Self, Error> {
        if size == 0 || size > MAX_WINDOW {
            return Err(Error::InvalidSa("replay window size must be 1..=65536"));
        }
        // One spare block so the oldest block of the window is never the one
        // being cleared for the newest.
        let n = (size as usize).div_ceil(64) + 1;
        Ok(Self { size: size.into(), top: 0, blocks: vec![0; n.next_power_of_two()].into_boxed_slice() })
    }

    /// The window size in packets.
    pub fn size(&self) -> u32 {
        // Constructed from a u32.
        self.size as u32
    }

    /// The highest sequence number accepted so far.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// The full 64-bit sequence number a packet carrying `seq_low` has,
    /// with `esn` whether the SA uses extended sequence numbers.
    ///
    /// Returns [`Error::TooOld`] when the number lies before the start of the
    /// sequence space.
    pub fn infer(&self, seq_low: u32, esn: bool) -> Result<u64, Error> {
        if !esn {
            return Ok(seq_low.into());
        }
        let w = self.size;
        let th = self.top >> 32;
        let tl = self.top & 0xffff_ffff;
        let seql = u64::from(seq_low);
        let seqh = if tl >= w - 1 {
            // Case A: the window lies within one subspace.
            // `tl + 1 - w`, not `tl - w + 1`: tl may equal w - 1.
            let bl = tl + 1 - w;
            if seql >= bl { th } else { th + 1 }
        } else {
            // Case B: the window spans two subspaces.
            let bl = (tl + (1 << 32) - w + 1) & 0xffff_ffff;
            if seql >= bl { th.checked_sub(1).ok_or(Error::TooOld)? } else { th }
        };
        // At the top of the 64-bit space, `th + 1` can only be reached after
        // 2^64 packets, which outbound refuses to send.
        seqh.checked_mul(1 << 32).map(|h| h | seql).ok_or(Error::TooOld)
    }

    /// Checks a packet's sequence number without changing the window;
    /// returns the full 64-bit number to pass to [`Self::accept`] once the
    /// ICV verified.
    pub fn check(&self, seq_low: u32, esn: bool) -> Result<u64, Error> {
        let seq = self.infer(seq_low, esn)?;
        if seq == 0 {
            // Sequence number 0 is never sent (RFC 4303 section 3.3.3).
            return Err(Error::TooOld);
        }
        if seq > self.top {
            return Ok(seq);
        }
        if self.top - seq >= self.size {
            return Err(Error::TooOld);
        }
        let (block, bit) = self.position(seq);
        if self.blocks[block] & bit != 0 { Err(Error::Replay) } else { Ok(seq) }
    }

    /// Records `seq` (from [`Self::check`], after the ICV verified), sliding
    /// the window right when it is new. Re-checks, so a packet verified twice
    /// concurrently is still accepted once.
    pub fn accept(&mut self, seq: u64) -> Result<(), Error> {
        if seq == 0 {
            return Err(Error::TooOld);
        }
        if seq > self.top {
            let mask = self.blocks.len() as u64 - 1;
            let old = self.top >> 6;
            let new = seq >> 6;
            let steps = (new - old).min(self.blocks.len() as u64);
            for i in 1..=steps {
                // Truncation is intended: the index is masked to the ring.
                self.blocks[((old + i) & mask) as usize] = 0;
            }
            self.top = seq;
        } else if self.top - seq >= self.size {
            return Err(Error::TooOld);
        }
        let (block, bit) = self.position(seq);
        if self.blocks[block] & bit != 0 {
            return Err(Error::Replay);
        }
        self.blocks[block] |= bit;
        Ok(())
    }

    /// The window as `(top, bitmap)` for a cluster peer: bit `i` of the
    /// bitmap (least significant bit of each octet first) is set when
    /// `top - i` was accepted. The bitmap holds `size` bits.
    pub fn snapshot(&self) -> (u64, Vec<u8>) {
        let mut bitmap = vec![0u8; (self.size as usize).div_ceil(8)];
        for i in 0..self.size.min(self.top) {
            let (block, bit) = self.position(self.top - i);
            if self.blocks[block] & bit != 0 {
                bitmap[(i / 8) as usize] |= 1 << (i % 8);
            }
        }
        (self.top, bitmap)
    }

    /// Marks as accepted every number a [`snapshot`](Self::snapshot) of
    /// another copy of this SA accepted, sliding right as needed. Marks are
    /// never removed, so merging is safe in any order and more than once;
    /// bits beyond this window's size are ignored.
    pub fn merge(&mut self, top: u64, bitmap: &[u8]) {
        let bits = (bitmap.len() as u64 * 8).min(self.size).min(top);
        for i in (0..bits).rev() {
            if bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0 {
                // Already marked or too old: nothing to add.
                let _ = self.accept(top - i);
            }
        }
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let mask = self.blocks.len() as u64 - 1;
        (((seq >> 6) & mask) as usize, 1 << (seq & 63))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(w: &mut ReplayWindow, seq_low: u32, esn: bool) -> Result<u64, Error> {
        let s = w.check(seq_low, esn)?;
        w.accept(s)?;
        Ok(s)
    }

    #[test]
    fn snapshot_and_merge_carry_the_accepted_numbers() {
        let mut a = ReplayWindow::new(128).expect("valid size");
        for s in [1u64, 2, 5, 90, 200, 201, 250] {
            a.accept(s).expect("fresh");
        }
        let (top, bitmap) = a.snapshot();
        assert_eq!((top, bitmap.len()), (250, 16));
        let mut b = ReplayWindow::new(128).expect("valid size");
        b.accept(240).expect("fresh");
        b.merge(top, &bitmap);
        assert_eq!(b.top(), 250);
        for s in [200u32, 201, 240, 250] {
            assert_eq!(b.check(s, false), Err(Error::Replay), "{s} merged or kept");
        }
        assert_eq!(b.check(90, false), Err(Error::TooOld));
        assert_eq!(b.check(202, false), Ok(202));
        assert_eq!(b.check(251, false), Ok(251));
        // Merging an older snapshot changes nothing; an empty one neither.
        let before = b.clone();
        b.merge(top, &bitmap);
        b.merge(0, &[]);
        assert_eq!(b, before);
    }

    #[test]
    fn rejects_zero_and_invalid_sizes() {
        assert!(ReplayWindow::new(0).is_err());
        assert!(ReplayWindow::new(MAX_WINDOW + 1).is_err());
        let w = ReplayWindow::new(32).expect("valid size");
        assert_eq!(w.check(0, false), Err(Error::TooOld));
    }

    #[test]
    fn accepts_in_order_and_rejects_duplicates() {
        for size in [32, 1024, 4096] {
            let mut w = ReplayWindow::new(size).expect("valid size");
            for s in 1..=10_000u32 {
                assert_eq!(recv(&mut w, s, false), Ok(s.into()));
                assert_eq!(w.check(s, false), Err(Error::Replay));
            }
        }
    }

    #[test]
    fn accepts_reordered_within_window_and_rejects_older() {
        for size in [32u32, 1024, 4096] {
            let mut w = ReplayWindow::new(size).expect("valid size");
            let top = 3 * size + 7;
            recv(&mut w, top, false).expect("new");
            // The oldest still in the window: top - size + 1.
            let oldest = top - size + 1;
            assert_eq!(recv(&mut w, oldest, false), Ok(oldest.into()));
            assert_eq!(w.check(oldest, false), Err(Error::Replay));
            assert_eq!(w.check(oldest - 1, false), Err(Error::TooOld));
            for s in (oldest + 1..top).rev() {
                assert_eq!(recv(&mut w, s, false), Ok(s.into()), "size {size} seq {s}");
            }
            for s in oldest..=top {
                assert_eq!(w.check(s, false), Err(Error::Replay));
            }
        }
    }

    #[test]
    fn slides_without_stale_bits() {
        // Jumps of every length must clear exactly the blocks that left.
        for size in [32u32, 1024, 4096] {
            let mut w = ReplayWindow::new(size).expect("valid size");
            let mut seq = 0u32;
            for jump in [1u32, 63, 64, 65, 127, 500, 1023, 1024, 1025, 4095, 4096, 9000, 1] {
                seq += jump;
                recv(&mut w, seq, false).expect("new");
                // Every number in the window but `seq` and earlier received
                // ones is either free or too old; none is a stale replay.
                for back in 1..size.min(seq) {
                    let s = seq - back;
                    match w.check(s, false) {
                        Ok(_) | Err(Error::Replay) => {}
                        Err(e) => panic!("size {size} seq {s}: {e}"),
                    }
                }
            }
            // A fresh number far in the future after all that is accepted.
            assert!(recv(&mut w, seq + 100_000, false).is_ok());
            for back in 1..size {
                assert!(w.check(seq + 100_000 - back, false).is_ok(), "stale bit at -{back}");
            }
        }
    }

    #[test]
    fn rejects_non_esn_wrap() {
        let mut w = ReplayWindow::new(64).expect("valid size");
        recv(&mut w, u32::MAX, false).expect("new");
        // Without ESN a small number after the top of the space is too old.
        assert_eq!(w.check(1, false), Err(Error::TooOld));
    }

    #[test]
    fn infers_esn_high_bits_across_wrap() {
        for size in [32u32, 1024, 4096] {
            let mut w = ReplayWindow::new(size).expect("valid size");
            let near = u32::MAX - size / 2;
            // From T = 0 the top of subspace 0 is unreachable (case B maps it
            // to subspace -1), so come closer first.
            assert_eq!(recv(&mut w, 1 << 31, true), Ok(1 << 31));
            assert_eq!(recv(&mut w, near, true), Ok(near.into()));
            // Low numbers now belong to the next subspace (case A).
            assert_eq!(recv(&mut w, 3, true), Ok((1 << 32) | 3));
            // Numbers just below the old top are still in subspace 0 (case B).
            assert_eq!(recv(&mut w, near - 1, true), Ok(u64::from(near - 1)));
            assert_eq!(w.check(near, true), Err(Error::Replay));
            // The wrap point itself: 0 in subspace 1 is 2^32, a valid number.
            assert_eq!(recv(&mut w, 0, true), Ok(1 << 32));
            assert_eq!(w.check(0, true), Err(Error::Replay));
            // Far behind the window in subspace 0 is too old or mapped forward.
            let s = w.check(near - size, true);
            assert!(matches!(s, Err(Error::TooOld)) || s == Ok((1 << 32) | u64::from(near - size)));
        }
    }

    #[test]
    fn esn_before_first_subspace_is_too_old() {
        let w = ReplayWindow::new(1024).expect("valid size");
        // With T = 0, a number at the very top of subspace 0 would be in
        // subspace -1 under case B.
        assert_eq!(w.check(u32::MAX, true), Err(Error::TooOld));
        assert_eq!(w.check(1, true), Ok(1));
    }

    #[test]
    fn esn_advances_through_many_subspaces() {
        let mut w = ReplayWindow::new(32).expect("valid size");
        let mut expect = 0u64;
        for _ in 0..5 {
            for low in [1u32 << 30, 2 << 30, 3 << 30, u32::MAX, 5] {
                let got = recv(&mut w, low, true).expect("new");
                assert!(got > expect, "{got:#x} after {expect:#x}");
                assert_eq!(got as u32, low);
                expect = got;
            }
        }
        assert_eq!(expect >> 32, 5);
    }

    #[test]
    fn infers_at_the_edge_of_case_a() {
        // T = W - 1 puts Bl at 0 (found by fuzzing: it used to underflow).
        let mut w = ReplayWindow::new(1).expect("valid size");
        assert_eq!(w.check(0, true), Err(Error::TooOld));
        assert_eq!(recv(&mut w, 1, true), Ok(1));
        let mut w = ReplayWindow::new(1024).expect("valid size");
        assert_eq!(recv(&mut w, 1023, true), Ok(1023));
        assert_eq!(w.check(1024, true), Ok(1024));
        // Bl = 0: a low number of 0 falls inside the window, in subspace 0.
        assert_eq!(w.check(0, true), Err(Error::TooOld));
    }

    #[test]
    fn accept_rechecks() {
        let mut w = ReplayWindow::new(32).expect("valid size");
        let s = w.check(5, false).expect("new");
        w.accept(s).expect("first");
        assert_eq!(w.accept(s), Err(Error::Replay));
    }
}
