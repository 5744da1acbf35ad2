//! The Configuration payload (RFC 7296 section 3.15).
//!
//! ```text
//! Payload:   CFG Type | RESERVED (3) | Configuration Attributes
//! Attribute: R (1 bit) | Attribute Type (15 bits) | Length (2) | Value
//! ```
//!
//! Rules: every attribute's length fits in the payload. The R bit is
//! ignored on receipt and sent as zero. Values are kept raw: their sizes
//! (0 in a request, 4 or 17 octets in a reply...) are checked by whoever
//! interprets them, since a request legitimately sends empty values.

use super::registry::{CfgAttrType, CfgType};
use super::{Reader, atomic, fit_u16};
use crate::Error;

/// The reserved R bit above the 15-bit attribute type.
const R_BIT: u16 = 0x8000;

/// A CP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cp {
    /// Request, reply, set or acknowledgement.
    pub cfg_type: CfgType,
    /// The attributes, in wire order.
    pub attributes: Vec<CfgAttribute>,
}

/// One configuration attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CfgAttribute {
    /// The attribute type (15 bits).
    pub ty: CfgAttrType,
    /// The raw value (empty in most requests).
    pub value: Vec<u8>,
}

impl CfgAttribute {
    /// An attribute with a value.
    pub fn new(ty: CfgAttrType, value: impl Into<Vec<u8>>) -> Self {
        Self { ty, value: value.into() }
    }
}

impl Cp {
    /// Decodes a CP payload body.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(body, "CP payload");
        let cfg_type = CfgType(r.u8()?);
        r.skip(3)?;
        let mut attributes = Vec::new();
        while !r.is_empty() {
            let ty = CfgAttrType(r.u16()? & !R_BIT);
            let len = usize::from(r.u16()?);
            let value = r.take(len)?.to_vec();
            attributes.push(CfgAttribute { ty, value });
        }
        Ok(Self { cfg_type, attributes })
    }

    /// Length of the emitted body.
    pub fn buffer_len(&self) -> usize {
        4 + self.attributes.iter().map(|a| 4 + a.value.len()).sum::<usize>()
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        atomic(out, |out| {
            out.extend_from_slice(&[self.cfg_type.0, 0, 0, 0]);
            for a in &self.attributes {
                if a.ty.0 & R_BIT != 0 {
                    return Err(Error::Unencodable("configuration attribute type above 15 bits"));
                }
                out.extend_from_slice(&a.ty.0.to_be_bytes());
                out.extend_from_slice(
                    &fit_u16(a.value.len(), "configuration attribute length")?.to_be_bytes(),
                );
                out.extend_from_slice(&a.value);
            }
            Ok(())
        })
    }
}
