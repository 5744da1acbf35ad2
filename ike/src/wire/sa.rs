//! The Security Association payload (RFC 7296 section 3.3).
//!
//! ```text
//! Proposal:  Last Substruc (0 last, 2 more) | RESERVED | Proposal Length (2)
//!            Proposal Num | Protocol ID | SPI Size | Num Transforms
//!            SPI | Transforms
//! Transform: Last Substruc (0 last, 3 more) | RESERVED | Transform Length (2)
//!            Transform Type | RESERVED | Transform ID (2) | Attributes
//! Attribute: AF (1 bit) | Type (15 bits) | Value (TV) or Length + Value (TLV)
//! ```
//!
//! Rules enforced on parse and emit:
//! - at least one proposal; the Last Substruc octets are 0 on the last
//!   substructure and 2 (proposal) or 3 (transform) on every other;
//! - proposal numbering: several proposals are numbered 1, 2, 3...; a lone
//!   proposal may carry any number but 0, since an accepted proposal keeps
//!   the number it was offered with (section 3.3.1: the exchange layer
//!   checks that it was one it offered);
//! - SPI size 0 or 8 for IKE, 4 for AH and ESP (any for unknown protocols);
//! - Num Transforms equals the transforms present, and each length fits;
//! - the Key Length attribute (14) is fixed-size (TV) and appears at most
//!   once; other attributes are kept, in order, for the negotiation layer,
//!   which must refuse a transform carrying one it does not understand
//!   (section 3.3.6).

use super::registry::{ProtocolId, TransformType};
use super::{Reader, atomic, fit_u8, fit_u16, patch_len16};
use crate::Error;
use tandem_crypto::proposal::Transform as CryptoTransform;

/// Last Substruc value of a proposal followed by another.
const MORE_PROPOSALS: u8 = 2;
/// Last Substruc value of a transform followed by another.
const MORE_TRANSFORMS: u8 = 3;
/// Length of the proposal substructure's fixed part.
const PROPOSAL_FIXED_LEN: usize = 8;
/// Length of the transform substructure's fixed part.
const TRANSFORM_FIXED_LEN: usize = 8;
/// The Key Length attribute type (section 3.3.5).
const KEY_LENGTH: u16 = 14;
/// The Attribute Format bit: set for TV, clear for TLV.
const AF_TV: u16 = 0x8000;

/// The SA payload: proposals, most preferred first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sa {
    /// The proposals (one, when answering).
    pub proposals: Vec<Proposal>,
}

/// One proposal: a protocol, an SPI and the transforms to choose from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The proposal number (1, 2, 3... when offering).
    pub number: u8,
    /// The protocol the SA is for.
    pub protocol: ProtocolId,
    /// The sender's SPI: empty or 8 octets for IKE, 4 for AH and ESP.
    pub spi: Vec<u8>,
    /// The transforms offered.
    pub transforms: Vec<Transform>,
}

/// One transform with its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// The transform type.
    pub ty: TransformType,
    /// The transform ID within its type.
    pub id: u16,
    /// The Key Length attribute in bits, if present.
    pub key_length: Option<u16>,
    /// Every other attribute, in wire order.
    pub attributes: Vec<Attribute>,
}

/// A transform attribute other than Key Length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type (15 bits).
    pub ty: u16,
    /// The value, fixed-size or variable.
    pub value: AttrValue,
}

/// A transform attribute's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    /// Type/Value format (AF = 1): a 16-bit value.
    Tv(u16),
    /// Type/Length/Value format (AF = 0).
    Tlv(Vec<u8>),
}

impl Sa {
    /// Decodes an SA payload body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "SA payload");
        let mut proposals = Vec::new();
        while !r.is_empty() {
            let (proposal, more) = Proposal::parse(&mut r)?;
            proposals.push(proposal);
            match (more, r.is_empty()) {
                (true, true) => return Err(Error::InvalidSyntax("missing proposal after Last Substruc 2")),
                (false, false) => return Err(Error::InvalidSyntax("proposal after the last")),
                _ => {}
            }
        }
        check_numbering(&proposals).map_err(Error::InvalidSyntax)?;
        Ok(Self { proposals })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        self.proposals.iter().map(Proposal::buffer_len).sum()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        check_numbering(&self.proposals).map_err(Error::Unencodable)?;
        atomic(out, |out| {
            let count = self.proposals.len();
            for (i, p) in self.proposals.iter().enumerate() {
                p.emit(out, i + 1 < count)?;
            }
            Ok(())
        })
    }
}

/// Section 3.3.1's numbering: 1, 2, 3... or a lone non-zero number.
fn check_numbering(proposals: &[Proposal]) -> Result<(), &'static str> {
    match proposals {
        [] => Err("SA payload without proposals"),
        [only] if only.number == 0 => Err("proposal number 0"),
        [_] => Ok(()),
        many => {
            let in_order = many.iter().zip(1u16..).all(|(p, n)| u16::from(p.number) == n);
            if in_order { Ok(()) } else { Err("proposals not numbered 1, 2, 3...") }
        }
    }
}

/// Whether `size` is a valid SPI size for `protocol` (section 3.3.1).
fn spi_size_ok(protocol: ProtocolId, size: usize) -> bool {
    match protocol {
        ProtocolId::IKE => size == 0 || size == 8,
        ProtocolId::AH | ProtocolId::ESP => size == 4,
        _ => true,
    }
}

impl Proposal {
    /// Decodes one proposal substructure; the flag says whether more follow.
    fn parse(outer: &mut Reader<'_>) -> Result<(Self, bool), Error> {
        let mut head = Reader::new(outer.rest(), "proposal substructure");
        let last = head.u8()?;
        head.skip(1)?;
        let len = usize::from(head.u16()?);
        if len < PROPOSAL_FIXED_LEN {
            return Err(Error::InvalidSyntax("proposal length below 8"));
        }
        let more = match last {
            0 => false,
            MORE_PROPOSALS => true,
            _ => return Err(Error::InvalidSyntax("proposal Last Substruc not 0 or 2")),
        };
        let mut r = Reader::new(outer.take(len).map_err(|_| head.truncated())?, "proposal substructure");
        r.skip(4)?;
        let number = r.u8()?;
        let protocol = ProtocolId(r.u8()?);
        let spi_size = usize::from(r.u8()?);
        let num_transforms = usize::from(r.u8()?);
        if !spi_size_ok(protocol, spi_size) {
            return Err(Error::InvalidSyntax("SPI size wrong for the protocol"));
        }
        let spi = r.take(spi_size)?.to_vec();
        let mut transforms = Vec::with_capacity(num_transforms);
        for i in 0..num_transforms {
            let (transform, more_transforms) = Transform::parse(&mut r)?;
            if more_transforms != (i + 1 < num_transforms) {
                return Err(Error::InvalidSyntax("transform Last Substruc disagrees with Num Transforms"));
            }
            transforms.push(transform);
        }
        if !r.is_empty() {
            return Err(Error::InvalidSyntax("proposal longer than its transforms"));
        }
        Ok((Self { number, protocol, spi, transforms }, more))
    }

    /// Length of the emitted substructure.
    pub fn buffer_len(&self) -> usize {
        PROPOSAL_FIXED_LEN + self.spi.len() + self.transforms.iter().map(Transform::buffer_len).sum::<usize>()
    }

    fn emit(&self, out: &mut Vec<u8>, more: bool) -> Result<(), Error> {
        if !spi_size_ok(self.protocol, self.spi.len()) {
            return Err(Error::Unencodable("SPI size wrong for the protocol"));
        }
        let spi_size = fit_u8(self.spi.len(), "SPI size")?;
        let num_transforms = fit_u8(self.transforms.len(), "transform count")?;
        let start = out.len();
        out.extend_from_slice(&[if more { MORE_PROPOSALS } else { 0 }, 0, 0, 0]);
        out.extend_from_slice(&[self.number, self.protocol.0, spi_size, num_transforms]);
        out.extend_from_slice(&self.spi);
        let count = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            t.emit(out, i + 1 < count)?;
        }
        patch_len16(out, start + 2, start, "proposal length")
    }
}

impl Transform {
    /// A transform without attributes.
    pub const fn new(ty: TransformType, id: u16) -> Self {
        Self { ty, id, key_length: None, attributes: Vec::new() }
    }

    /// A transform with a Key Length attribute.
    pub const fn with_key_length(ty: TransformType, id: u16, bits: u16) -> Self {
        Self { ty, id, key_length: Some(bits), attributes: Vec::new() }
    }

    /// The algorithm this transform names, if Tandem implements it and the
    /// transform carries no attribute but Key Length.
    pub fn to_crypto(&self) -> Option<CryptoTransform> {
        if !self.attributes.is_empty() {
            return None;
        }
        CryptoTransform::from_iana(self.ty.0, self.id, self.key_length)
    }

    /// Decodes one transform substructure; the flag says whether more follow.
    fn parse(outer: &mut Reader<'_>) -> Result<(Self, bool), Error> {
        let mut head = Reader::new(outer.rest(), "transform substructure");
        let last = head.u8()?;
        head.skip(1)?;
        let len = usize::from(head.u16()?);
        if len < TRANSFORM_FIXED_LEN {
            return Err(Error::InvalidSyntax("transform length below 8"));
        }
        let more = match last {
            0 => false,
            MORE_TRANSFORMS => true,
            _ => return Err(Error::InvalidSyntax("transform Last Substruc not 0 or 3")),
        };
        let mut r = Reader::new(outer.take(len).map_err(|_| head.truncated())?, "transform substructure");
        r.skip(4)?;
        let ty = TransformType(r.u8()?);
        r.skip(1)?;
        let id = r.u16()?;
        let mut key_length = None;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let word = r.u16()?;
            let attr_ty = word & !AF_TV;
            let value = if word & AF_TV != 0 {
                AttrValue::Tv(r.u16()?)
            } else {
                let n = usize::from(r.u16()?);
                AttrValue::Tlv(r.take(n)?.to_vec())
            };
            match (attr_ty, value) {
                (KEY_LENGTH, AttrValue::Tv(bits)) => {
                    if key_length.replace(bits).is_some() {
                        return Err(Error::InvalidSyntax("Key Length attribute repeated"));
                    }
                }
                (KEY_LENGTH, AttrValue::Tlv(_)) => {
                    return Err(Error::InvalidSyntax("Key Length attribute in TLV format"));
                }
                (ty, value) => attributes.push(Attribute { ty, value }),
            }
        }
        Ok((Self { ty, id, key_length, attributes }, more))
    }

    /// Length of the emitted substructure.
    pub fn buffer_len(&self) -> usize {
        let key = if self.key_length.is_some() { 4 } else { 0 };
        TRANSFORM_FIXED_LEN + key + self.attributes.iter().map(Attribute::buffer_len).sum::<usize>()
    }

    fn emit(&self, out: &mut Vec<u8>, more: bool) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(&[if more { MORE_TRANSFORMS } else { 0 }, 0, 0, 0]);
        out.extend_from_slice(&[self.ty.0, 0]);
        out.extend_from_slice(&self.id.to_be_bytes());
        if let Some(bits) = self.key_length {
            out.extend_from_slice(&(AF_TV | KEY_LENGTH).to_be_bytes());
            out.extend_from_slice(&bits.to_be_bytes());
        }
        for a in &self.attributes {
            a.emit(out)?;
        }
        patch_len16(out, start + 2, start, "transform length")
    }
}

impl From<CryptoTransform> for Transform {
    fn from(t: CryptoTransform) -> Self {
        let (ty, id, key_length) = t.iana();
        Self { ty: TransformType(ty), id, key_length, attributes: Vec::new() }
    }
}

impl Attribute {
    /// Length of the emitted attribute.
    pub fn buffer_len(&self) -> usize {
        match &self.value {
            AttrValue::Tv(_) => 4,
            AttrValue::Tlv(v) => 4 + v.len(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.ty & AF_TV != 0 {
            return Err(Error::Unencodable("attribute type above 15 bits"));
        }
        if self.ty == KEY_LENGTH {
            return Err(Error::Unencodable("Key Length given as a generic attribute"));
        }
        match &self.value {
            AttrValue::Tv(v) => {
                out.extend_from_slice(&(AF_TV | self.ty).to_be_bytes());
                out.extend_from_slice(&v.to_be_bytes());
            }
            AttrValue::Tlv(v) => {
                let len = fit_u16(v.len(), "attribute length")?;
                out.extend_from_slice(&self.ty.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(v);
            }
        }
        Ok(())
    }
}
