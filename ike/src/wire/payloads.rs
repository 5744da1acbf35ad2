//! The payloads with a small fixed part and opaque data (RFC 7296 sections
//! 3.4 to 3.12, 3.14 and 3.16; RFC 7383 section 2.5).
//!
//! Each type decodes a payload body (after the generic header) with
//! `parse`, borrowing the data, and appends one with `emit`. RESERVED octets
//! are ignored on receipt and sent as zero.
//!
//! Rules enforced: Nonce Data is 16 to 256 octets (section 3.9); a Delete's
//! SPIs fill its body exactly, with SPI size 0 for IKE and 4 for AH and ESP
//! (section 3.11); an SKF's Fragment Number and Total Fragments are not zero
//! and the number does not exceed the total (RFC 7383 section 2.5).
//!
//! Lenient on purpose: a Notify's Protocol ID is kept even when its SPI is
//! empty (section 3.10 says to ignore it then: the consumer does); an SKF
//! with Fragment Number above 1 and a non-zero Next Payload is accepted
//! (RFC 7383 only says to send zero there; reassembly reads fragment 1's);
//! a Delete with SPI size 0 decodes to no SPIs whatever its Num of SPIs
//! says; CERTREQ data is opaque (it should be 20-octet SHA-1 hashes, but some
//! peers send an empty one, which must not fail the exchange).

use super::registry::{AuthMethod, CertEncoding, IdType, NotifyType, PayloadType, ProtocolId};
use super::{Reader, atomic, fit_u8, fit_u16};
use crate::Error;

/// The Key Exchange payload (section 3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ke<'a> {
    /// The Diffie-Hellman group (a DH transform ID).
    pub group: u16,
    /// The public value.
    pub data: &'a [u8],
}

impl<'a> Ke<'a> {
    /// Decodes a KE payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "KE payload");
        let group = r.u16()?;
        r.skip(2)?;
        Ok(Self { group, data: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&self.group.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Identification payload, IDi or IDr (section 3.5).
///
/// AUTH signs the body as received, RESERVED octets included: take it from
/// [`RawPayload::body`](super::RawPayload::body), not from a re-emission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Id<'a> {
    /// The identity type.
    pub ty: IdType,
    /// The identity.
    pub data: &'a [u8],
}

impl<'a> Id<'a> {
    /// Decodes an ID payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "ID payload");
        let ty = IdType(r.u8()?);
        r.skip(3)?;
        Ok(Self { ty, data: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&[self.ty.0, 0, 0, 0]);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Certificate payload (section 3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cert<'a> {
    /// How the data is encoded.
    pub encoding: CertEncoding,
    /// The certificate or related data.
    pub data: &'a [u8],
}

impl<'a> Cert<'a> {
    /// Decodes a CERT payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "CERT payload");
        let encoding = CertEncoding(r.u8()?);
        Ok(Self { encoding, data: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        1 + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.encoding.0);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Certificate Request payload (section 3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertReq<'a> {
    /// The certificate encoding requested.
    pub encoding: CertEncoding,
    /// The certification authorities (for X.509: SHA-1 hashes of their
    /// public keys, 20 octets each).
    pub data: &'a [u8],
}

impl<'a> CertReq<'a> {
    /// Decodes a CERTREQ payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "CERTREQ payload");
        let encoding = CertEncoding(r.u8()?);
        Ok(Self { encoding, data: r.rest() })
    }

    /// The 20-octet SHA-1 key hashes of the data (a partial tail is dropped).
    pub fn ca_hashes(&self) -> impl Iterator<Item = &'a [u8]> {
        self.data.chunks_exact(20)
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        1 + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.push(self.encoding.0);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Authentication payload (section 3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    /// The authentication method.
    pub method: AuthMethod,
    /// The signature or MIC.
    pub data: &'a [u8],
}

impl<'a> Auth<'a> {
    /// Decodes an AUTH payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "AUTH payload");
        let method = AuthMethod(r.u8()?);
        r.skip(3)?;
        Ok(Self { method, data: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&[self.method.0, 0, 0, 0]);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Nonce payload, Ni or Nr (section 3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce<'a> {
    /// The nonce, 16 to 256 octets.
    pub data: &'a [u8],
}

impl<'a> Nonce<'a> {
    /// The shortest nonce allowed.
    pub const MIN_LEN: usize = 16;
    /// The longest nonce allowed.
    pub const MAX_LEN: usize = 256;

    fn len_ok(len: usize) -> bool {
        (Self::MIN_LEN..=Self::MAX_LEN).contains(&len)
    }

    /// Decodes a Nonce payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        if !Self::len_ok(body.len()) {
            return Err(Error::InvalidSyntax("nonce not 16 to 256 octets"));
        }
        Ok(Self { data: body })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if !Self::len_ok(self.data.len()) {
            return Err(Error::Unencodable("nonce not 16 to 256 octets"));
        }
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Notify payload (section 3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify<'a> {
    /// The protocol of the SA named by `spi` (meaningless when it is empty).
    pub protocol: ProtocolId,
    /// The SPI the notification is about, usually empty.
    pub spi: &'a [u8],
    /// The notification type.
    pub ty: NotifyType,
    /// The notification data.
    pub data: &'a [u8],
}

impl<'a> Notify<'a> {
    /// A notification about no particular SA.
    pub const fn new(ty: NotifyType, data: &'a [u8]) -> Self {
        Self { protocol: ProtocolId::NONE, spi: &[], ty, data }
    }

    /// Decodes a Notify payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "Notify payload");
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let ty = NotifyType(r.u16()?);
        let spi = r.take(spi_size)?;
        Ok(Self { protocol, spi, ty, data: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.spi.len() + self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let spi_size = fit_u8(self.spi.len(), "Notify SPI size")?;
        out.extend_from_slice(&[self.protocol.0, spi_size]);
        out.extend_from_slice(&self.ty.0.to_be_bytes());
        out.extend_from_slice(self.spi);
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Delete payload (section 3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// IKE (the SA the message travels on) or the Child SAs' protocol.
    pub protocol: ProtocolId,
    /// The size of each SPI: 0 for IKE, 4 for AH and ESP.
    pub spi_size: u8,
    /// The SPIs, each `spi_size` octets (inbound SPIs of the sender).
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    /// Deletes the IKE SA the message travels on.
    pub const fn ike() -> Self {
        Self { protocol: ProtocolId::IKE, spi_size: 0, spis: Vec::new() }
    }

    /// Deletes the AH or ESP SAs with these (sender's inbound) SPIs.
    pub fn child(protocol: ProtocolId, spis: impl IntoIterator<Item = u32>) -> Self {
        let spis = spis.into_iter().map(|s| s.to_be_bytes().to_vec()).collect();
        Self { protocol, spi_size: 4, spis }
    }

    /// The 4-octet SPIs as numbers (AH and ESP); other sizes are skipped.
    pub fn child_spis(&self) -> impl Iterator<Item = u32> + '_ {
        self.spis.iter().filter_map(|s| <[u8; 4]>::try_from(s.as_slice()).ok().map(u32::from_be_bytes))
    }

    fn spi_size_ok(protocol: ProtocolId, size: u8) -> bool {
        match protocol {
            ProtocolId::IKE => size == 0,
            ProtocolId::AH | ProtocolId::ESP => size == 4,
            _ => true,
        }
    }

    /// Decodes a Delete payload body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "Delete payload");
        let protocol = ProtocolId(r.u8()?);
        let spi_size = r.u8()?;
        let num = usize::from(r.u16()?);
        if !Self::spi_size_ok(protocol, spi_size) {
            return Err(Error::InvalidSyntax("Delete SPI size wrong for the protocol"));
        }
        let want = usize::from(spi_size).checked_mul(num).ok_or(Error::InvalidSyntax("Delete SPIs"))?;
        let rest = r.rest();
        if rest.len() != want {
            return Err(Error::InvalidSyntax("Delete SPIs do not fill the payload"));
        }
        // With SPI size 0 there is nothing to keep: Num of SPIs is ignored.
        let spis = match usize::from(spi_size) {
            0 => Vec::new(),
            size => rest.chunks_exact(size).map(<[u8]>::to_vec).collect(),
        };
        Ok(Self { protocol, spi_size, spis })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.spis.iter().map(Vec::len).sum::<usize>()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if !Self::spi_size_ok(self.protocol, self.spi_size) {
            return Err(Error::Unencodable("Delete SPI size wrong for the protocol"));
        }
        if self.spis.iter().any(|s| s.len() != usize::from(self.spi_size) || s.is_empty()) {
            return Err(Error::Unencodable("Delete SPI empty or not of the SPI size"));
        }
        let num = fit_u16(self.spis.len(), "Delete SPI count")?;
        atomic(out, |out| {
            out.extend_from_slice(&[self.protocol.0, self.spi_size]);
            out.extend_from_slice(&num.to_be_bytes());
            self.spis.iter().for_each(|s| out.extend_from_slice(s));
            Ok(())
        })
    }
}

/// The Vendor ID payload (section 3.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VendorId<'a> {
    /// The vendor's identifier.
    pub data: &'a [u8],
}

impl<'a> VendorId<'a> {
    /// Decodes a Vendor ID payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Ok(Self { data: body })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The EAP payload (section 3.16): one EAP message, opaque here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eap<'a> {
    /// The EAP message.
    pub data: &'a [u8],
}

impl<'a> Eap<'a> {
    /// Decodes an EAP payload body.
    pub fn parse(body: &'a [u8]) -> Result<Self, Error> {
        Ok(Self { data: body })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The Encrypted and Authenticated payload (section 3.14), still encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sk<'a> {
    /// The type of the first inner payload (the SK's Next Payload field).
    pub next_payload: PayloadType,
    /// IV, ciphertext (inner payloads, padding, pad length) and ICV.
    pub body: &'a [u8],
}

impl<'a> Sk<'a> {
    /// Decodes an SK payload body; `next_payload` is its header's field.
    pub fn parse(next_payload: PayloadType, body: &'a [u8]) -> Result<Self, Error> {
        Ok(Self { next_payload, body })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        self.body.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(self.body);
        Ok(())
    }
}

/// The Encrypted and Authenticated Fragment payload (RFC 7383 section 2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skf<'a> {
    /// The first inner payload's type in fragment 1, zero in the others.
    pub next_payload: PayloadType,
    /// This fragment's number, from 1.
    pub fragment_number: u16,
    /// How many fragments the message was split into.
    pub total_fragments: u16,
    /// IV, ciphertext and ICV of this fragment.
    pub body: &'a [u8],
}

impl<'a> Skf<'a> {
    /// Length of the fragment fields before the IV.
    pub const FIXED_LEN: usize = 4;

    fn check(number: u16, total: u16) -> Result<(), &'static str> {
        match (number, total) {
            (0, _) => Err("fragment number 0"),
            (_, 0) => Err("total fragments 0"),
            (n, t) if n > t => Err("fragment number above total fragments"),
            _ => Ok(()),
        }
    }

    /// Decodes an SKF payload body; `next_payload` is its header's field.
    pub fn parse(next_payload: PayloadType, body: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "SKF payload");
        let fragment_number = r.u16()?;
        let total_fragments = r.u16()?;
        Self::check(fragment_number, total_fragments).map_err(Error::InvalidSyntax)?;
        Ok(Self { next_payload, fragment_number, total_fragments, body: r.rest() })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        Self::FIXED_LEN + self.body.len()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        Self::check(self.fragment_number, self.total_fragments).map_err(Error::Unencodable)?;
        out.extend_from_slice(&self.fragment_number.to_be_bytes());
        out.extend_from_slice(&self.total_fragments.to_be_bytes());
        out.extend_from_slice(self.body);
        Ok(())
    }
}
