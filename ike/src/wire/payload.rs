//! Every payload as one enum, and the emission of payload chains.

use super::chain::{PayloadIter, RawPayload, finish_generic_header, start_generic_header};
use super::cp::Cp;
use super::payloads::{Auth, Cert, CertReq, Delete, Eap, Id, Ke, Nonce, Notify, Sk, Skf, VendorId};
use super::registry::PayloadType;
use super::sa::Sa;
use super::ts::Ts;
use super::{GENERIC_HEADER_LEN, atomic};
use crate::Error;

/// A decoded payload of any type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Security Association.
    Sa(Sa),
    /// Key Exchange.
    Ke(Ke<'a>),
    /// Identification - Initiator.
    IdI(Id<'a>),
    /// Identification - Responder.
    IdR(Id<'a>),
    /// Certificate.
    Cert(Cert<'a>),
    /// Certificate Request.
    CertReq(CertReq<'a>),
    /// Authentication.
    Auth(Auth<'a>),
    /// Nonce.
    Nonce(Nonce<'a>),
    /// Notify.
    Notify(Notify<'a>),
    /// Delete.
    Delete(Delete),
    /// Vendor ID.
    VendorId(VendorId<'a>),
    /// Traffic Selector - Initiator.
    TsI(Ts),
    /// Traffic Selector - Responder.
    TsR(Ts),
    /// Encrypted and Authenticated, still encrypted.
    Sk(Sk<'a>),
    /// Encrypted and Authenticated Fragment, still encrypted.
    Skf(Skf<'a>),
    /// Configuration.
    Cp(Cp),
    /// Extensible Authentication.
    Eap(Eap<'a>),
    /// A non-critical payload of a type this crate does not know: to skip.
    Unknown {
        /// Its type.
        ty: PayloadType,
        /// Its critical bit (always clear when parsed: a set one is an error).
        critical: bool,
        /// Its body.
        body: &'a [u8],
    },
}

impl<'a> Payload<'a> {
    /// Decodes a payload of the chain by its type.
    pub fn parse(raw: &RawPayload<'a>) -> Result<Self, Error> {
        let body = raw.body;
        Ok(match raw.ty {
            PayloadType::SA => Self::Sa(Sa::parse(body)?),
            PayloadType::KE => Self::Ke(Ke::parse(body)?),
            PayloadType::IDi => Self::IdI(Id::parse(body)?),
            PayloadType::IDr => Self::IdR(Id::parse(body)?),
            PayloadType::CERT => Self::Cert(Cert::parse(body)?),
            PayloadType::CERTREQ => Self::CertReq(CertReq::parse(body)?),
            PayloadType::AUTH => Self::Auth(Auth::parse(body)?),
            PayloadType::NONCE => Self::Nonce(Nonce::parse(body)?),
            PayloadType::NOTIFY => Self::Notify(Notify::parse(body)?),
            PayloadType::DELETE => Self::Delete(Delete::parse(body)?),
            PayloadType::VENDOR_ID => Self::VendorId(VendorId::parse(body)?),
            PayloadType::TSi => Self::TsI(Ts::parse(body)?),
            PayloadType::TSr => Self::TsR(Ts::parse(body)?),
            PayloadType::SK => Self::Sk(Sk::parse(raw.next, body)?),
            PayloadType::SKF => Self::Skf(Skf::parse(raw.next, body)?),
            PayloadType::CP => Self::Cp(Cp::parse(body)?),
            PayloadType::EAP => Self::Eap(Eap::parse(body)?),
            ty if raw.critical => return Err(Error::UnsupportedCriticalPayload(ty.0)),
            ty => Self::Unknown { ty, critical: false, body },
        })
    }

    /// This payload's type.
    pub fn ty(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDi,
            Self::IdR(_) => PayloadType::IDr,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::TsI(_) => PayloadType::TSi,
            Self::TsR(_) => PayloadType::TSr,
            Self::Sk(_) => PayloadType::SK,
            Self::Skf(_) => PayloadType::SKF,
            Self::Cp(_) => PayloadType::CP,
            Self::Eap(_) => PayloadType::EAP,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    /// The critical bit to send: set only on an unknown payload that asks
    /// for it (RFC 7296 defines it as zero for its own types).
    pub fn critical(&self) -> bool {
        matches!(self, Self::Unknown { critical: true, .. })
    }

    /// For SK and SKF, the first inner payload's type (their Next Payload).
    pub fn inner_next(&self) -> Option<PayloadType> {
        match self {
            Self::Sk(sk) => Some(sk.next_payload),
            Self::Skf(skf) => Some(skf.next_payload),
            _ => None,
        }
    }

    /// Length of the emitted body (without the generic header).
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Sa(p) => p.buffer_len(),
            Self::Ke(p) => p.buffer_len(),
            Self::IdI(p) | Self::IdR(p) => p.buffer_len(),
            Self::Cert(p) => p.buffer_len(),
            Self::CertReq(p) => p.buffer_len(),
            Self::Auth(p) => p.buffer_len(),
            Self::Nonce(p) => p.buffer_len(),
            Self::Notify(p) => p.buffer_len(),
            Self::Delete(p) => p.buffer_len(),
            Self::VendorId(p) => p.buffer_len(),
            Self::TsI(p) | Self::TsR(p) => p.buffer_len(),
            Self::Sk(p) => p.buffer_len(),
            Self::Skf(p) => p.buffer_len(),
            Self::Cp(p) => p.buffer_len(),
            Self::Eap(p) => p.buffer_len(),
            Self::Unknown { body, .. } => body.len(),
        }
    }

    /// Appends the body (without the generic header).
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        atomic(out, |out| match self {
            Self::Sa(p) => p.emit(out),
            Self::Ke(p) => p.emit(out),
            Self::IdI(p) | Self::IdR(p) => p.emit(out),
            Self::Cert(p) => p.emit(out),
            Self::CertReq(p) => p.emit(out),
            Self::Auth(p) => p.emit(out),
            Self::Nonce(p) => p.emit(out),
            Self::Notify(p) => p.emit(out),
            Self::Delete(p) => p.emit(out),
            Self::VendorId(p) => p.emit(out),
            Self::TsI(p) | Self::TsR(p) => p.emit(out),
            Self::Sk(p) => p.emit(out),
            Self::Skf(p) => p.emit(out),
            Self::Cp(p) => p.emit(out),
            Self::Eap(p) => p.emit(out),
            Self::Unknown { ty, body, .. } => {
                if ty.is_known() || *ty == PayloadType::NONE {
                    return Err(Error::Unencodable("unknown payload of a known type"));
                }
                out.extend_from_slice(body);
                Ok(())
            }
        })
    }
}

/// Decodes decrypted SK plaintext (`first` is the SK's Next Payload); the
/// rules of [`PayloadIter`] apply, and SK or SKF inside is an error.
pub fn parse_inner(first: PayloadType, plaintext: &[u8]) -> Result<Vec<Payload<'_>>, Error> {
    PayloadIter::new_inner(first, plaintext).map(|raw| Payload::parse(&raw?)).collect()
}

/// Appends `payloads` as the plaintext of an SK payload, generic headers
/// included; returns the first payload's type, for the SK's Next Payload.
pub fn emit_inner(payloads: &[Payload<'_>], out: &mut Vec<u8>) -> Result<PayloadType, Error> {
    if payloads.iter().any(|p| p.ty().is_encrypted()) {
        return Err(Error::Unencodable("Encrypted payload inside an Encrypted payload"));
    }
    atomic(out, |out| emit_chain(payloads, out).map(|_| ()))?;
    Ok(payloads.first().map_or(PayloadType::NONE, Payload::ty))
}

/// Length of `payloads` emitted as a chain, generic headers included.
pub(crate) fn chain_len(payloads: &[Payload<'_>]) -> usize {
    payloads.iter().map(|p| GENERIC_HEADER_LEN + p.buffer_len()).sum()
}

/// Appends `payloads` with their generic headers, each naming the next; an
/// SK or SKF must come last and names its first inner payload instead.
/// Returns where the last generic header starts.
pub(crate) fn emit_chain(payloads: &[Payload<'_>], out: &mut Vec<u8>) -> Result<Option<usize>, Error> {
    let mut last = None;
    let mut iter = payloads.iter().peekable();
    while let Some(p) = iter.next() {
        let following = iter.peek().map(|n| n.ty());
        let next = match (p.inner_next(), following) {
            (Some(_), Some(_)) => return Err(Error::Unencodable("payload after the Encrypted payload")),
            (Some(inner), None) => inner,
            (None, following) => following.unwrap_or(PayloadType::NONE),
        };
        let start = start_generic_header(out, next, p.critical());
        p.emit(out)?;
        finish_generic_header(out, start)?;
        last = Some(start);
    }
    Ok(last)
}
