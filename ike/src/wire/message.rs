//! Whole IKE messages: the header and its payload chain.
//!
//! [`Message::parse`] decodes a datagram's header and every payload outside
//! the Encrypted payload, which it leaves encrypted: decrypting is the
//! `protect` module's job, which needs the SK body, the first inner
//! payload's type and the AAD (the octets from the IKE header through the SK
//! payload's generic header, and through Fragment Number and Total Fragments
//! for SKF). The IKE header's Length must equal the datagram's length: UDP
//! carries one message per datagram, and octets past Length would be neither
//! parsed nor covered by the ICV.
//!
//! [`MessageBuilder`] emits a message, filling every Next Payload and
//! Length field; [`MessageBuilder::build_prefix`] emits the part before an
//! SK payload for `protect` to seal.

use super::chain::{GENERIC_HEADER_LEN, PayloadIter, RawPayload};
use super::header::{HEADER_LEN, Header, IkePacket};
use super::payload::{Payload, chain_len, emit_chain};
use super::payloads::{Sk, Skf};
use super::registry::PayloadType;
use crate::Error;

/// A decoded IKE message; the Encrypted payload, if any, is still encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The IKE header.
    pub header: Header,
    /// The payloads in wire order, an SK or SKF payload last if present.
    pub payloads: Vec<Payload<'a>>,
    bytes: &'a [u8],
    /// Offset of the SK or SKF generic header and length of the AAD.
    encrypted: Option<(usize, usize)>,
}

impl<'a> Message<'a> {
    /// Decodes a whole datagram (see the [module docs](self) for the rules).
    pub fn parse(datagram: &'a [u8]) -> Result<Self, Error> {
        let header = Header::parse(datagram)?;
        if usize::try_from(header.length).ok() != Some(datagram.len()) {
            return Err(Error::InvalidSyntax("IKE header length is not the datagram length"));
        }
        let body = datagram.get(HEADER_LEN..).unwrap_or_default();
        let mut payloads = Vec::new();
        let mut encrypted = None;
        for raw in PayloadIter::new(header.next_payload, body) {
            let raw = raw?;
            if raw.ty.is_encrypted() {
                let offset = HEADER_LEN + raw.offset;
                let fixed = if raw.ty == PayloadType::SKF { Skf::FIXED_LEN } else { 0 };
                encrypted = Some((offset, offset + GENERIC_HEADER_LEN + fixed));
            }
            payloads.push(Payload::parse(&raw)?);
        }
        Ok(Self { header, payloads, bytes: datagram, encrypted })
    }

    /// The whole datagram.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payloads again, undecoded, with their offsets after the header
    /// and their bodies exactly as received (AUTH signs the ID body so).
    pub fn raw_payloads(&self) -> impl Iterator<Item = RawPayload<'a>> + use<'a> {
        let first = IkePacket::new_checked(self.bytes).map_or(PayloadType::NONE, |p| p.next_payload());
        let body = self.bytes.get(HEADER_LEN..).unwrap_or_default();
        // parse walked this chain without error, so no item fails now.
        PayloadIter::new(first, body).filter_map(Result::ok)
    }

    /// The SK payload, if the message has one.
    pub fn sk(&self) -> Option<&Sk<'a>> {
        match self.payloads.last() {
            Some(Payload::Sk(sk)) => Some(sk),
            _ => None,
        }
    }

    /// The SKF payload, if the message is a fragment.
    pub fn skf(&self) -> Option<&Skf<'a>> {
        match self.payloads.last() {
            Some(Payload::Skf(skf)) => Some(skf),
            _ => None,
        }
    }

    /// Offset in the datagram of the SK or SKF payload's generic header.
    pub fn sk_offset(&self) -> Option<usize> {
        self.encrypted.map(|(offset, _)| offset)
    }

    /// The octets the AEAD authenticates: from the IKE header through the
    /// SK generic header (through Total Fragments for SKF).
    pub fn aad(&self) -> Option<&'a [u8]> {
        let (_, aad_len) = self.encrypted?;
        self.bytes.get(..aad_len)
    }
}

/// Emits a message: a header and payloads, in order.
///
/// The header's `next_payload` and `length` are filled in; the rest of it is
/// sent as given. An SK or SKF payload must come last.
#[derive(Clone, Debug)]
pub struct MessageBuilder<'a> {
    header: Header,
    payloads: Vec<Payload<'a>>,
}

impl<'a> MessageBuilder<'a> {
    /// A message with this header and no payloads yet.
    pub fn new(header: Header) -> Self {
        Self { header, payloads: Vec::new() }
    }

    /// Appends a payload.
    #[must_use]
    pub fn payload(mut self, payload: Payload<'a>) -> Self {
        self.payloads.push(payload);
        self
    }

    /// Appends a payload in place.
    pub fn push(&mut self, payload: Payload<'a>) {
        self.payloads.push(payload);
    }

    /// The payloads so far.
    pub fn payloads(&self) -> &[Payload<'a>] {
        &self.payloads
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + chain_len(&self.payloads)
    }

    /// Emits the message.
    pub fn build(&self) -> Result<Vec<u8>, Error> {
        Self::emit(self.header, &self.payloads).map(|(out, _)| out)
    }

    /// Emits the header and payloads for an Encrypted payload to follow:
    /// the last Next Payload (the header's if there are no payloads) names
    /// `encrypted` (SK or SKF), and the header's Length counts what is
    /// emitted so far. `protect::SkCipher::seal` then appends the SK payload
    /// and fixes the Length; [`emit_inner`](super::emit_inner) produces its
    /// plaintext and the first inner type.
    pub fn build_prefix(&self, encrypted: PayloadType) -> Result<Vec<u8>, Error> {
        if !encrypted.is_encrypted() {
            return Err(Error::Unencodable("prefix for a payload other than SK or SKF"));
        }
        if self.payloads.iter().any(|p| p.ty().is_encrypted()) {
            return Err(Error::Unencodable("prefix already holding an Encrypted payload"));
        }
        let (mut out, last) = Self::emit(self.header, &self.payloads)?;
        match last.and_then(|at| out.get_mut(at)) {
            Some(next) => *next = encrypted.0,
            None => IkePacket::new_checked(&mut out[..])?.set_next_payload(encrypted),
        }
        Ok(out)
    }

    /// Emits header and payloads; returns the message and where its last
    /// generic header starts.
    fn emit(mut header: Header, payloads: &[Payload<'_>]) -> Result<(Vec<u8>, Option<usize>), Error> {
        header.next_payload = payloads.first().map_or(PayloadType::NONE, Payload::ty);
        let mut out = Vec::with_capacity(HEADER_LEN + chain_len(payloads));
        header.emit(&mut out)?;
        let last = emit_chain(payloads, &mut out)?;
        let length = u32::try_from(out.len()).map_err(|_| Error::Unencodable("message length"))?;
        IkePacket::new_checked(&mut out[..])?.set_length(length);
        Ok((out, last))
    }
}
