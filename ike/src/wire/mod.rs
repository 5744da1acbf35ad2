//! The IKEv2 wire codec (RFC 7296 section 3, RFC 7383 section 2.5).
//!
//! Layering, bottom up:
//! - [`registry`]: the IANA registries as open newtypes ([`PayloadType`],
//!   [`NotifyType`]...): unknown values round-trip.
//! - [`header`]: the fixed IKE header as a zero-copy view ([`IkePacket`]) and
//!   a typed [`Header`].
//! - [`chain`]: the generic payload header and the [`PayloadIter`] that walks
//!   a payload chain, enforcing lengths, the critical bit and "SK is last".
//! - [`sa`], [`ts`], [`cp`], [`payloads`]: one typed repr per payload body,
//!   each with `parse(body)`, `buffer_len()` and `emit(out)`.
//! - [`payload`]: the [`Payload`] enum over all of them.
//! - [`message`]: a whole [`Message`] (header and typed payloads, the SK
//!   payload left encrypted) and the [`MessageBuilder`] that emits one.
//!
//! Parsing borrows bulk data (KE data, nonces, certificates, the SK body)
//! from the datagram; small structured payloads (SA, TS, CP, Delete) are
//! decoded into owned values. Every parser takes untrusted bytes and returns
//! an [`Error`] instead of panicking. Emitters check every length and count
//! against its field and fail with [`Error::Unencodable`], leaving `out` as
//! it was; what an emitter accepts, the matching parser gives back
//! unchanged (save an unknown payload sent critical, which receivers refuse).
//!
//! Decryption is not done here: [`Message`] exposes the SK payload's body,
//! the type of its first inner payload and its offset, and
//! [`parse_inner`] parses the decrypted plaintext.

pub mod chain;
pub mod cp;
pub mod header;
pub mod message;
pub mod payload;
pub mod payloads;
pub mod registry;
pub mod sa;
pub mod ts;

pub use chain::{GENERIC_HEADER_LEN, PayloadIter, RawPayload};
pub use cp::{CfgAttribute, Cp};
pub use header::{Flags, HEADER_LEN, Header, IkePacket};
pub use message::{Message, MessageBuilder};
pub use payload::{Payload, emit_inner, parse_inner};
pub use payloads::{Auth, Cert, CertReq, Delete, Eap, Id, Ke, Nonce, Notify, Sk, Skf, VendorId};
pub use registry::{
    AuthMethod, CertEncoding, CfgAttrType, CfgType, ExchangeType, IdType, NotifyType, PayloadType,
    ProtocolId, TransformType, TsType,
};
pub use sa::{AttrValue, Attribute, Proposal, Sa, Transform};
pub use ts::{Selector, TrafficSelector, Ts};

use crate::Error;

/// A bounds-checked cursor over untrusted bytes; every read is a `Result`.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the structure in `Truncated` errors.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// The next `n` octets.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(Error::Truncated(self.what))?;
        self.buf = tail;
        Ok(head)
    }

    /// The next `N` octets as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let head = self.take(N)?;
        <[u8; N]>::try_from(head).map_err(|_| Error::Truncated(self.what))
    }

    /// The next octet.
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    /// The next big-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// The next big-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// The next big-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Skips `n` reserved octets (ignored on receipt, RFC 7296 section 3).
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.take(n).map(|_| ())
    }

    /// The `Truncated` error naming this reader's structure.
    pub(crate) fn truncated(&self) -> Error {
        Error::Truncated(self.what)
    }

    /// Whether every octet was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The octets not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.buf
    }
}

/// Runs an emitter; on error, truncates `out` back to where it started.
pub(crate) fn atomic(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    let result = f(out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// `n` as a `u8` field value, or `Unencodable(what)`.
pub(crate) fn fit_u8(n: usize, what: &'static str) -> Result<u8, Error> {
    u8::try_from(n).map_err(|_| Error::Unencodable(what))
}

/// `n` as a `u16` field value, or `Unencodable(what)`.
pub(crate) fn fit_u16(n: usize, what: &'static str) -> Result<u16, Error> {
    u16::try_from(n).map_err(|_| Error::Unencodable(what))
}

/// Overwrites the big-endian `u16` at `at` with the length of `out[start..]`.
///
/// The caller wrote a placeholder at `at` before; a failure means the
/// structure outgrew its 16-bit length field.
pub(crate) fn patch_len16(out: &mut [u8], at: usize, start: usize, what: &'static str) -> Result<(), Error> {
    let len = fit_u16(out.len().saturating_sub(start), what)?;
    let field = out.get_mut(at..at.saturating_add(2)).ok_or(Error::Unencodable(what))?;
    field.copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let mut r = Reader::new(&[1, 2, 3], "thing");
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(Error::Truncated("thing")));
        assert_eq!(r.take(usize::MAX), Err(Error::Truncated("thing")));
        assert_eq!(r.u8(), Ok(3));
        assert!(r.is_empty());
    }

    #[test]
    fn atomic_leaves_the_buffer_as_it_was_on_error() {
        let mut out = vec![9];
        let r = atomic(&mut out, |out| {
            out.extend_from_slice(&[1, 2, 3]);
            Err(Error::Unencodable("test"))
        });
        assert!(r.is_err());
        assert_eq!(out, [9]);
    }

    #[test]
    fn patch_len16_rejects_lengths_above_65535() {
        let mut out = vec![0; 70_000];
        assert_eq!(patch_len16(&mut out, 2, 0, "x"), Err(Error::Unencodable("x")));
        assert_eq!(patch_len16(&mut out, 2, 70_000 - 300, "x"), Ok(()));
        assert_eq!(out.get(2..4), Some(&[1, 44][..]));
    }
}
