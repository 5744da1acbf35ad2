//! The generic payload header and payload chains (RFC 7296 section 3.2).
//!
//! ```text
//!  0      Next Payload
//!  1      C (0x80) | RESERVED (ignored on receipt, sent as zero)
//!  2..4   Payload Length, this header included
//! ```
//!
//! [`PayloadIter`] walks a chain and enforces:
//! - every Payload Length is at least 4 and fits in what is left;
//! - a payload of a type this crate does not know is yielded (to be
//!   skipped) when its critical bit is clear and fails with
//!   [`Error::UnsupportedCriticalPayload`] when it is set; the critical bit of
//!   known types is ignored, as RFC 7296 requires;
//! - an Encrypted (SK) or Encrypted Fragment (SKF) payload ends the chain:
//!   its Next Payload names its first inner payload, and no octet may follow
//!   it; inside decrypted plaintext neither may appear at all;
//! - after the last payload (Next Payload 0) no octet may follow.

use super::Reader;
use super::registry::PayloadType;
use crate::Error;

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;

/// The critical bit in the generic payload header's second octet.
const CRITICAL: u8 = 0x80;

/// One payload of a chain, not decoded yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// This payload's type (from the previous Next Payload field).
    pub ty: PayloadType,
    /// The Next Payload field of this payload's own header: the following
    /// payload's type or, for SK and SKF, the first inner payload's.
    pub next: PayloadType,
    /// The critical bit.
    pub critical: bool,
    /// The body, after the generic header.
    pub body: &'a [u8],
    /// Offset of the generic header from the start of the walked bytes.
    pub offset: usize,
}

/// An iterator over a payload chain; see the [module docs](self) for the
/// rules. It yields at most one error, then stops.
#[derive(Clone, Debug)]
pub struct PayloadIter<'a> {
    buf: &'a [u8],
    pos: usize,
    next: PayloadType,
    inner: bool,
    done: bool,
}

impl<'a> PayloadIter<'a> {
    /// Walks the payloads of a message: `first` is the header's Next Payload
    /// and `bytes` everything after the header.
    pub fn new(first: PayloadType, bytes: &'a [u8]) -> Self {
        Self { buf: bytes, pos: 0, next: first, inner: false, done: false }
    }

    /// Walks decrypted SK plaintext: `first` is the SK payload's Next
    /// Payload; SK and SKF payloads are rejected inside.
    pub fn new_inner(first: PayloadType, bytes: &'a [u8]) -> Self {
        Self { inner: true, ..Self::new(first, bytes) }
    }

    fn step(&mut self) -> Result<Option<RawPayload<'a>>, Error> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if self.next == PayloadType::NONE {
            self.done = true;
            return if rest.is_empty() {
                Ok(None)
            } else {
                Err(Error::InvalidSyntax("data after the last payload"))
            };
        }
        let mut r = Reader::new(rest, "generic payload header");
        let next = PayloadType(r.u8()?);
        let critical = r.u8()? & CRITICAL != 0;
        let len = usize::from(r.u16()?);
        if len < GENERIC_HEADER_LEN {
            return Err(Error::InvalidSyntax("payload length below 4"));
        }
        let body = rest.get(GENERIC_HEADER_LEN..len).ok_or(Error::Truncated("payload"))?;
        let ty = self.next;
        let offset = self.pos;
        if !ty.is_known() && critical {
            return Err(Error::UnsupportedCriticalPayload(ty.0));
        }
        self.pos = self.pos.saturating_add(len);
        self.next = next;
        if ty.is_encrypted() {
            if self.inner {
                return Err(Error::InvalidSyntax("Encrypted payload inside an Encrypted payload"));
            }
            if self.pos != self.buf.len() {
                return Err(Error::InvalidSyntax("payload after the Encrypted payload"));
            }
            self.done = true;
        }
        Ok(Some(RawPayload { ty, next, critical, body, offset }))
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = Result<RawPayload<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for PayloadIter<'_> {}

/// Appends a generic payload header with a zero length placeholder; returns
/// where the payload starts, for [`finish_generic_header`].
pub(crate) fn start_generic_header(out: &mut Vec<u8>, next: PayloadType, critical: bool) -> usize {
    let start = out.len();
    out.extend_from_slice(&[next.0, if critical { CRITICAL } else { 0 }, 0, 0]);
    start
}

/// Fills the Payload Length of the payload that starts at `start`.
pub(crate) fn finish_generic_header(out: &mut [u8], start: usize) -> Result<(), Error> {
    super::patch_len16(out, start.saturating_add(2), start, "payload length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_offsets_next_types_and_bodies() {
        // Nonce-like payload (next: Notify) then a Notify (next: none).
        let bytes = [41, 0, 0, 6, 0xaa, 0xbb, 0, 0x80, 0, 5, 0xcc];
        let items: Vec<_> = PayloadIter::new(PayloadType::NONCE, &bytes).collect();
        let want = [
            RawPayload {
                ty: PayloadType::NONCE,
                next: PayloadType::NOTIFY,
                critical: false,
                body: &[0xaa, 0xbb],
                offset: 0,
            },
            RawPayload {
                ty: PayloadType::NOTIFY,
                next: PayloadType::NONE,
                critical: true,
                body: &[0xcc],
                offset: 6,
            },
        ];
        assert_eq!(items, want.map(Ok));
    }

    #[test]
    fn stops_after_the_first_error() {
        let bytes = [0, 0, 0, 3, 0, 0, 0, 4];
        let mut it = PayloadIter::new(PayloadType::NONCE, &bytes);
        assert_eq!(it.next(), Some(Err(Error::InvalidSyntax("payload length below 4"))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn empty_chain_yields_nothing() {
        assert_eq!(PayloadIter::new(PayloadType::NONE, &[]).count(), 0);
    }

    #[test]
    fn emits_generic_header_with_patched_length() {
        let mut out = vec![0xee];
        let start = start_generic_header(&mut out, PayloadType::SA, true);
        out.extend_from_slice(&[1, 2, 3]);
        assert_eq!(finish_generic_header(&mut out, start), Ok(()));
        assert_eq!(out, [0xee, 33, 0x80, 0, 7, 1, 2, 3]);
    }
}
