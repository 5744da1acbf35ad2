//! The fixed IKE header (RFC 7296 section 3.1).
//!
//! ```text
//!  0..8    IKE SA Initiator's SPI
//!  8..16   IKE SA Responder's SPI
//!  16      Next Payload
//!  17      MjVer (high nibble) | MnVer (low nibble)
//!  18      Exchange Type
//!  19      Flags: R (0x20), V (0x10), I (0x08); other bits ignored
//!  20..24  Message ID
//!  24..28  Length of the whole message, header included
//! ```
//!
//! Rules: the major version must be 2 ([`Error::InvalidMajorVersion`]
//! otherwise, carrying the version so the caller can tell IKEv1 from a
//! future version); the minor version is kept but not checked ("MUST ignore
//! the minor version" on receipt); unknown flag bits are ignored on receipt
//! and sent as zero. [`Header::parse`] requires `28 <= Length <= buffer
//! length`, so it also works on a prefix of a stream;
//! [`Message::parse`](super::Message::parse) requires `Length` to equal the
//! datagram length exactly.

use super::registry::{ExchangeType, PayloadType};
use super::{Reader, atomic};
use crate::Error;
use core::ops::Range;

/// Length of the fixed IKE header.
pub const HEADER_LEN: usize = 28;

/// The only IKE major version this crate speaks.
const MAJOR_VERSION: u8 = 2;

/// Byte ranges of the header fields.
mod field {
    use core::ops::Range;

    pub(super) const SPI_I: Range<usize> = 0..8;
    pub(super) const SPI_R: Range<usize> = 8..16;
    pub(super) const NEXT_PAYLOAD: usize = 16;
    pub(super) const VERSION: usize = 17;
    pub(super) const EXCHANGE_TYPE: usize = 18;
    pub(super) const FLAGS: usize = 19;
    pub(super) const MESSAGE_ID: Range<usize> = 20..24;
    pub(super) const LENGTH: Range<usize> = 24..28;
}

/// The header flags: Initiator, Version and Response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// The Initiator bit: set by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// The Version bit: the sender could speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// The Response bit: this message is a response.
    pub const RESPONSE: u8 = 0x20;
    /// Every bit this crate knows; the others are ignored and sent as zero.
    const KNOWN: u8 = Self::INITIATOR | Self::VERSION | Self::RESPONSE;

    /// Flags from the wire octet; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits & Self::KNOWN)
    }

    /// Flags with the given Initiator and Response bits (Version clear).
    pub const fn new(initiator: bool, response: bool) -> Self {
        let i = if initiator { Self::INITIATOR } else { 0 };
        let r = if response { Self::RESPONSE } else { 0 };
        Self(i | r)
    }

    /// The wire octet.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the Initiator bit is set.
    pub const fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// Whether the Version bit is set.
    pub const fn version(self) -> bool {
        self.0 & Self::VERSION != 0
    }

    /// Whether the Response bit is set.
    pub const fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// These flags with the Initiator bit set to `on`.
    #[must_use]
    pub const fn with_initiator(self, on: bool) -> Self {
        self.with(Self::INITIATOR, on)
    }

    /// These flags with the Version bit set to `on`.
    #[must_use]
    pub const fn with_version(self, on: bool) -> Self {
        self.with(Self::VERSION, on)
    }

    /// These flags with the Response bit set to `on`.
    #[must_use]
    pub const fn with_response(self, on: bool) -> Self {
        self.with(Self::RESPONSE, on)
    }

    const fn with(self, bit: u8, on: bool) -> Self {
        if on { Self(self.0 | bit) } else { Self(self.0 & !bit) }
    }
}

/// The IKE header, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The IKE SA initiator's SPI.
    pub spi_i: u64,
    /// The IKE SA responder's SPI (zero in the first IKE_SA_INIT request).
    pub spi_r: u64,
    /// The type of the first payload.
    pub next_payload: PayloadType,
    /// The minor version (sent as 0, ignored on receipt); the major is 2.
    pub minor_version: u8,
    /// The exchange type.
    pub exchange_type: ExchangeType,
    /// The Initiator, Version and Response flags.
    pub flags: Flags,
    /// The message ID.
    pub message_id: u32,
    /// The length of the whole message in octets, header included.
    pub length: u32,
}

impl Header {
    /// Decodes the header at the start of `buf`; `Length` must be at least
    /// the header length and at most `buf.len()`.
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(buf, "IKE header");
        let spi_i = r.u64()?;
        let spi_r = r.u64()?;
        let next_payload = PayloadType(r.u8()?);
        let version = r.u8()?;
        let exchange_type = ExchangeType(r.u8()?);
        let flags = Flags::from_bits(r.u8()?);
        let message_id = r.u32()?;
        let length = r.u32()?;
        let major = version >> 4;
        if major != MAJOR_VERSION {
            return Err(Error::InvalidMajorVersion(major));
        }
        let len = usize::try_from(length).map_err(|_| Error::Truncated("IKE message"))?;
        if len < HEADER_LEN {
            return Err(Error::InvalidSyntax("IKE header length below 28"));
        }
        if len > buf.len() {
            return Err(Error::Truncated("IKE message"));
        }
        Ok(Self {
            spi_i,
            spi_r,
            next_payload,
            minor_version: version & 0x0f,
            exchange_type,
            flags,
            message_id,
            length,
        })
    }

    /// Length of the emitted header.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Appends the header as it is (the [`MessageBuilder`](super::MessageBuilder)
    /// fills `next_payload` and `length`); the minor version must fit 4 bits.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.minor_version > 0x0f {
            return Err(Error::Unencodable("minor version"));
        }
        atomic(out, |out| {
            out.extend_from_slice(&self.spi_i.to_be_bytes());
            out.extend_from_slice(&self.spi_r.to_be_bytes());
            out.push(self.next_payload.0);
            out.push(MAJOR_VERSION << 4 | self.minor_version);
            out.push(self.exchange_type.0);
            out.push(self.flags.bits());
            out.extend_from_slice(&self.message_id.to_be_bytes());
            out.extend_from_slice(&self.length.to_be_bytes());
            Ok(())
        })
    }
}

/// A zero-copy view of the IKE header at the start of a buffer, with setters
/// when the buffer is mutable (to patch a message after building it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IkePacket<T> {
    /// Wraps `buffer` if it holds at least a whole header; no field is checked.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated("IKE header"));
        }
        Ok(Self { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes<const N: usize>(&self, range: Range<usize>) -> [u8; N] {
        // new_checked guarantees HEADER_LEN octets; every range lies inside.
        let mut a = [0; N];
        if let Some(s) = self.buffer.as_ref().get(range) {
            a.copy_from_slice(s);
        }
        a
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// The initiator's SPI.
    pub fn spi_i(&self) -> u64 {
        u64::from_be_bytes(self.bytes(field::SPI_I))
    }

    /// The responder's SPI.
    pub fn spi_r(&self) -> u64 {
        u64::from_be_bytes(self.bytes(field::SPI_R))
    }

    /// The first payload's type.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.byte(field::NEXT_PAYLOAD))
    }

    /// The major version (high nibble of the version octet).
    pub fn major_version(&self) -> u8 {
        self.byte(field::VERSION) >> 4
    }

    /// The exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.byte(field::EXCHANGE_TYPE))
    }

    /// The known flags.
    pub fn flags(&self) -> Flags {
        Flags::from_bits(self.byte(field::FLAGS))
    }

    /// The message ID.
    pub fn message_id(&self) -> u32 {
        u32::from_be_bytes(self.bytes(field::MESSAGE_ID))
    }

    /// The Length field.
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.bytes(field::LENGTH))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IkePacket<T> {
    fn set(&mut self, range: Range<usize>, value: &[u8]) {
        if let Some(s) = self.buffer.as_mut().get_mut(range) {
            s.copy_from_slice(value);
        }
    }

    /// Sets the first payload's type.
    pub fn set_next_payload(&mut self, ty: PayloadType) {
        self.set(field::NEXT_PAYLOAD..field::NEXT_PAYLOAD + 1, &[ty.0]);
    }

    /// Sets the flags octet.
    pub fn set_flags(&mut self, flags: Flags) {
        self.set(field::FLAGS..field::FLAGS + 1, &[flags.bits()]);
    }

    /// Sets the message ID.
    pub fn set_message_id(&mut self, id: u32) {
        self.set(field::MESSAGE_ID, &id.to_be_bytes());
    }

    /// Sets the Length field.
    pub fn set_length(&mut self, length: u32) {
        self.set(field::LENGTH, &length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accessors_read_their_bits() {
        let f = Flags::from_bits(0xff);
        assert_eq!(f.bits(), 0x38);
        assert!(f.initiator() && f.version() && f.response());
        let f = Flags::new(true, false);
        assert_eq!(f.bits(), 0x08);
        assert!(!f.with_initiator(false).initiator());
        assert!(f.with_response(true).response());
        assert!(f.with_version(true).version());
    }

    #[test]
    fn packet_view_reads_and_patches_fields() {
        let mut buf = [0u8; HEADER_LEN];
        buf[..8].copy_from_slice(&7u64.to_be_bytes());
        buf[17] = 0x20;
        buf[18] = 34;
        buf[19] = 0x28;
        let mut p = IkePacket::new_checked(&mut buf[..]).expect("28 octets");
        assert_eq!(p.spi_i(), 7);
        assert_eq!(p.spi_r(), 0);
        assert_eq!(p.major_version(), 2);
        assert_eq!(p.exchange_type(), ExchangeType::IKE_SA_INIT);
        assert!(p.flags().initiator() && p.flags().response());
        p.set_length(300);
        p.set_message_id(5);
        p.set_next_payload(PayloadType::SK);
        p.set_flags(Flags::new(false, true));
        assert_eq!((p.length(), p.message_id(), p.next_payload()), (300, 5, PayloadType::SK));
        assert_eq!(p.flags(), Flags::new(false, true));
        assert_eq!(IkePacket::new_checked(&buf[..27]), Err(Error::Truncated("IKE header")));
    }

    #[test]
    fn rejects_minor_version_above_four_bits_on_emit() {
        let h = Header {
            spi_i: 1,
            spi_r: 0,
            next_payload: PayloadType::NONE,
            minor_version: 16,
            exchange_type: ExchangeType::INFORMATIONAL,
            flags: Flags::default(),
            message_id: 0,
            length: 28,
        };
        let mut out = Vec::new();
        assert_eq!(h.emit(&mut out), Err(Error::Unencodable("minor version")));
        assert!(out.is_empty());
    }
}
