//! IKE message fragmentation (RFC 7383): an SK payload's plaintext split
//! into Encrypted Fragment (SKF) messages that each fit a datagram, and the
//! reassembly of received ones.
//!
//! Every fragment is a whole IKE message of its own:
//!
//! ```text
//! IKE header (28, Next Payload 53, own Length) | SKF generic header (4) |
//!     Fragment Number (2) | Total Fragments (2) | IV |
//!     E(chunk | padding | Pad Length) | ICV
//! ```
//!
//! Each chunk is padded, encrypted and authenticated on its own, with its
//! own IV; the AEAD's associated data (or the HMAC) covers the IKE header
//! through Total Fragments ([`SkCipher::seal_fragment`]). Only fragment 1
//! names the first inner payload in its SKF Next Payload; the others send 0.
//! The original message's unencrypted payloads have no place here: no
//! RFC 7296 exchange puts any beside an SK payload, so [`fragment`] emits
//! none and [`open`] refuses fragments that carry any.
//!
//! # Sending
//!
//! [`fragment`] takes the header, the first inner type and the plaintext
//! that [`emit_inner`](crate::wire::emit_inner) produces, and returns the
//! sealed fragments, numbered from 1, in order. `max_datagram` counts the
//! IKE message only: the caller subtracts the IP and UDP headers and, on
//! port 4500, the four-octet non-ESP marker (RFC 7383 section 2.5.1 suggests
//! staying within the 576-octet IPv4 and 1280-octet IPv6 minimum MTUs unless
//! the path is known to take more). Chunks are filled greedily: all but the
//! last carry [`max_chunk_len`] octets.
//!
//! # Receiving
//!
//! A [`Reassembler`], one per IKE SA, takes fragment datagrams with
//! [`Reassembler::add`] and hands back the plaintext once fragments
//! `1..=Total Fragments` of a message are all in, ready for
//! [`parse_inner`](crate::wire::parse_inner). It checks what needs no key
//! first (framing, fragment numbers, limits, staleness, duplicates) and
//! drops fragments that could not change anything without decrypting them;
//! anything that would change its state is verified first (RFC 7383 section
//! 2.6), so a forged fragment can neither enter a set nor discard one.
//!
//! # The caller's part
//!
//! - Negotiation: fragment only when both sides sent
//!   `IKEV2_FRAGMENTATION_SUPPORTED` in IKE_SA_INIT, and only messages with
//!   an SK payload that would not fit unfragmented.
//! - Retransmissions (RFC 7383 section 2.6.1): check the message ID before
//!   [`Reassembler::add`]. For an already answered request, only a fragment
//!   numbered 1 that passes [`open`] triggers resending the response; the
//!   other fragments are dropped.
//! - Timeout: if a message stays incomplete for long, drop its fragments
//!   with [`Reassembler::discard`] (this module has no clock).
//! - Path MTU discovery (RFC 7383 section 2.5.2): a message re-fragmented
//!   smaller must come out with a larger Total Fragments than before, since
//!   receivers tell the two sets apart by that number only; compare the
//!   counts [`fragment`] returns and shrink further if they are equal.

use crate::Error;
use crate::protect::{GENERIC_HEADER_LEN, SkCipher, SkSuite};
use crate::wire::{ExchangeType, HEADER_LEN, Header, Message, MessageBuilder, PayloadType, Skf};
use rand_core::CryptoRng;
use std::collections::BTreeMap;

/// Largest SKF payload: its Payload Length field is 16 bits.
const MAX_SKF_LEN: usize = u16::MAX as usize;

/// The largest chunk of SK plaintext that one fragment of at most
/// `max_datagram` octets can carry under `suite`; 0 when not even one fits.
pub fn max_chunk_len(suite: SkSuite, max_datagram: usize) -> usize {
    let fits = |chunk: usize| {
        let skf = suite.sk_payload_len(chunk) + Skf::FIXED_LEN;
        skf <= MAX_SKF_LEN && HEADER_LEN + skf <= max_datagram
    };
    // Padding adds at least one octet and at most one cipher block, so this
    // bound is at most a block above the answer: a few steps down find it.
    let overhead = HEADER_LEN + GENERIC_HEADER_LEN + Skf::FIXED_LEN + suite.iv_len() + suite.icv_len();
    let mut chunk = max_datagram.min(HEADER_LEN + MAX_SKF_LEN).saturating_sub(overhead);
    while chunk > 0 && !fits(chunk) {
        chunk -= 1;
    }
    chunk
}

/// Splits the SK plaintext `inner` into sealed IKE Fragment messages of at
/// most `max_datagram` octets each (RFC 7383 section 2.5).
///
/// `header` supplies the SPIs, exchange type, flags and message ID shared by
/// every fragment; its Next Payload and Length are set here. `inner_first`
/// is the type of the first inner payload (what `emit_inner` returns). The
/// fragments come back in order, numbered `1..=N` with Total Fragments `N`,
/// the least count that fits (one, carrying an empty chunk, for an empty
/// `inner`). Each consumes one AEAD IV of `cipher`. Fails with
/// [`Error::Unencodable`], before sealing anything, when `max_datagram`
/// leaves no room for a plaintext octet or `N` would exceed 65535.
pub fn fragment<R: CryptoRng + ?Sized>(
    header: Header,
    inner_first: PayloadType,
    inner: &[u8],
    cipher: &mut SkCipher,
    rng: &mut R,
    max_datagram: usize,
) -> Result<Vec<Vec<u8>>, Error> {
    let chunk_len = max_chunk_len(cipher.suite(), max_datagram);
    if chunk_len == 0 {
        return Err(Error::Unencodable("fragments: the datagram size leaves no room for plaintext"));
    }
    let total = u16::try_from(inner.len().div_ceil(chunk_len).max(1))
        .map_err(|_| Error::Unencodable("a message in more than 65535 fragments"))?;
    let prefix = MessageBuilder::new(header).build_prefix(PayloadType::SKF)?;
    let chunks: Vec<&[u8]> = if inner.is_empty() { vec![&[]] } else { inner.chunks(chunk_len).collect() };
    let mut out = Vec::with_capacity(chunks.len());
    for (number, chunk) in (1..=total).zip(chunks) {
        let next = if number == 1 { inner_first.0 } else { PayloadType::NONE.0 };
        let mut message = prefix.clone();
        cipher.seal_fragment(rng, &mut message, next, number, total, chunk)?;
        debug_assert!(message.len() <= max_datagram, "max_chunk_len keeps every fragment within the size");
        out.push(message);
    }
    Ok(out)
}

/// One IKE Fragment message, verified and decrypted by [`open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The fragment's IKE header (Next Payload SKF, Length of this fragment).
    pub header: Header,
    /// The SKF's Next Payload: the first inner payload's type in fragment 1.
    pub next_payload: PayloadType,
    /// Fragment Number, from 1 to `total`.
    pub number: u16,
    /// Total Fragments.
    pub total: u16,
    /// This fragment's piece of the SK plaintext, padding removed.
    pub chunk: Vec<u8>,
}

/// Verifies and decrypts one IKE Fragment message.
///
/// Fails with the wire errors of [`Message::parse`] (a Fragment Number of 0
/// or above Total Fragments is [`Error::InvalidSyntax`]), with
/// [`Error::InvalidSyntax`] for a message that is not made of one SKF
/// payload, and with the errors of [`SkCipher::open_fragment`]
/// ([`Error::IntegrityCheckFailed`] for a forged or corrupted one).
pub fn open(message: &[u8], cipher: &SkCipher) -> Result<Fragment, Error> {
    let parsed = Parsed::new(message)?;
    let chunk = cipher.open_fragment(message, parsed.offset)?;
    Ok(Fragment {
        header: parsed.header,
        next_payload: parsed.next_payload,
        number: parsed.number,
        total: parsed.total,
        chunk,
    })
}

/// The unverified fields of an IKE Fragment message.
struct Parsed {
    header: Header,
    next_payload: PayloadType,
    number: u16,
    total: u16,
    /// Offset of the SKF generic header.
    offset: usize,
}

impl Parsed {
    fn new(message: &[u8]) -> Result<Self, Error> {
        let msg = Message::parse(message)?;
        let (Some(skf), Some(offset)) = (msg.skf(), msg.sk_offset()) else {
            return Err(Error::InvalidSyntax("not an IKE Fragment message"));
        };
        if msg.payloads.len() != 1 {
            return Err(Error::InvalidSyntax("payloads beside the Encrypted Fragment payload"));
        }
        Ok(Self {
            header: msg.header,
            next_payload: skf.next_payload,
            number: skf.fragment_number,
            total: skf.total_fragments,
            offset,
        })
    }
}

/// Bounds on what a [`Reassembler`] holds, per message being reassembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest Total Fragments accepted; fragments of bigger sets are refused.
    pub max_fragments: u16,
    /// Largest reassembled plaintext, in octets; a set outgrowing it is dropped.
    pub max_size: usize,
}

impl Limits {
    /// The default limits: 64 fragments, 64 KiB of plaintext.
    pub const DEFAULT: Self = Self { max_fragments: 64, max_size: 64 * 1024 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Collects the verified fragments of the messages an IKE SA receives and
/// returns each message's plaintext once complete.
///
/// It keeps one message in progress per direction (requests from the peer,
/// responses to this side's requests), keyed by message ID, so it holds at
/// most twice [`Limits::max_size`] octets of plaintext. Per direction:
///
/// - a fragment of a newer message ID than the one in progress discards
///   that one and starts over; fragments of older message IDs, and of any
///   ID up to the last message completed, are stale and ignored;
/// - within a message, a fragment with a larger Total Fragments (the sender
///   re-fragmented it smaller) discards the fragments held and starts over
///   with it; one with a smaller Total Fragments is ignored (RFC 7383
///   section 2.6), as is a duplicate;
/// - fragments of one message must agree on the exchange type.
///
/// With IKE's window size of one, each side has at most one message in
/// flight per direction, which is all this holds.
pub struct Reassembler {
    limits: Limits,
    /// Index 0: requests; 1: responses (the header's Response flag).
    slots: [Slot; 2],
}

/// One direction's state.
#[derive(Default)]
struct Slot {
    /// The last message ID reassembled in this direction.
    completed: Option<u32>,
    /// The message being reassembled.
    pending: Option<Pending>,
}

/// The verified fragments of one message.
struct Pending {
    message_id: u32,
    exchange_type: ExchangeType,
    total: u16,
    /// The Next Payload of fragment 1, once it arrived.
    first: PayloadType,
    /// Plaintext chunks by Fragment Number.
    chunks: BTreeMap<u16, Vec<u8>>,
    /// Sum of the chunks' lengths.
    size: usize,
}

impl Reassembler {
    /// A reassembler with the [default limits](Limits::DEFAULT).
    pub fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// A reassembler with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self { limits, slots: Default::default() }
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes one fragment datagram, verified with `cipher` (the receiving
    /// direction's); returns the first inner payload's type and the whole
    /// SK plaintext when this fragment completes its message.
    ///
    /// The header of the reassembled message is that of `message`, save its
    /// Next Payload and Length. `Ok(None)` means the fragment was stored or
    /// ignored (stale, duplicate, superseded; see the [type docs](Self)).
    /// Errors leave the state unchanged, except the size limit, which drops
    /// the set it was hit on: the errors of [`open`], [`Error::InvalidSyntax`]
    /// for an exchange type differing from the message's other fragments,
    /// and [`Error::FragmentLimit`] for a Total Fragments or a reassembled
    /// size over the [`Limits`]. Never panics.
    pub fn add(
        &mut self,
        message: &[u8],
        cipher: &SkCipher,
    ) -> Result<Option<(PayloadType, Vec<u8>)>, Error> {
        let parsed = Parsed::new(message)?;
        if parsed.total > self.limits.max_fragments {
            return Err(Error::FragmentLimit("more fragments than the reassembly limit"));
        }
        let id = parsed.header.message_id;
        let slot = &mut self.slots[usize::from(parsed.header.flags.response())];
        if slot.completed.is_some_and(|done| id <= done) {
            return Ok(None);
        }
        if let Some(p) = &slot.pending {
            if id < p.message_id || (id == p.message_id && parsed.total < p.total) {
                return Ok(None);
            }
            if id == p.message_id && parsed.total == p.total {
                if p.chunks.contains_key(&parsed.number) {
                    return Ok(None);
                }
                if p.exchange_type != parsed.header.exchange_type {
                    return Err(Error::InvalidSyntax(
                        "fragments of one message with different exchange types",
                    ));
                }
            }
        }

        // Everything below changes the state: authenticate first.
        let chunk = cipher.open_fragment(message, parsed.offset)?;
        let same_set = slot.pending.as_ref().is_some_and(|p| p.message_id == id && p.total == parsed.total);
        if !same_set {
            slot.pending = None;
        }
        let p = slot.pending.get_or_insert_with(|| Pending {
            message_id: id,
            exchange_type: parsed.header.exchange_type,
            total: parsed.total,
            first: PayloadType::NONE,
            chunks: BTreeMap::new(),
            size: 0,
        });
        let size = p.size.saturating_add(chunk.len());
        if size > self.limits.max_size {
            slot.pending = None;
            return Err(Error::FragmentLimit("reassembled message over the size limit"));
        }
        p.size = size;
        if parsed.number == 1 {
            p.first = parsed.next_payload;
        }
        p.chunks.insert(parsed.number, chunk);
        // Numbers are unique and within 1..=total: a full map holds them all.
        if p.chunks.len() < usize::from(p.total) {
            return Ok(None);
        }
        let Some(done) = slot.pending.take() else { return Ok(None) };
        slot.completed = Some(id);
        let mut plaintext = Vec::with_capacity(done.size);
        done.chunks.into_values().for_each(|c| plaintext.extend_from_slice(&c));
        Ok(Some((done.first, plaintext)))
    }

    /// The message ID being reassembled in one direction (`response`: the
    /// peer's responses rather than its requests), if any.
    pub fn pending(&self, response: bool) -> Option<u32> {
        self.slots[usize::from(response)].pending.as_ref().map(|p| p.message_id)
    }

    /// Octets of plaintext held in both directions.
    pub fn buffered(&self) -> usize {
        self.slots.iter().filter_map(|s| s.pending.as_ref()).map(|p| p.size).sum()
    }

    /// Drops the fragments of the messages in progress (on the caller's
    /// reassembly timeout); which messages completed is remembered.
    pub fn discard(&mut self) {
        self.slots.iter_mut().for_each(|s| s.pending = None);
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Message IDs and counts only: the chunks are decrypted payloads.
        let slot = |s: &Slot| {
            (s.completed, s.pending.as_ref().map(|p| (p.message_id, p.chunks.len(), p.total, p.size)))
        };
        f.debug_struct("Reassembler")
            .field("limits", &self.limits)
            .field("requests", &slot(&self.slots[0]))
            .field("responses", &slot(&self.slots[1]))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crypto::aead::AeadAlgorithm;
    use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};

    const GCM: SkSuite = SkSuite::Aead(AeadAlgorithm::Aes128Gcm16);
    const CBC: SkSuite = SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);

    #[test]
    fn max_chunk_len_matches_the_layout() {
        // 28 + 8 (SKF headers) + 8 (IV) + chunk + 1 (Pad Length) + 16 (ICV).
        assert_eq!(max_chunk_len(GCM, 100), 100 - 28 - 8 - 8 - 1 - 16);
        assert_eq!(max_chunk_len(GCM, 62), 1);
        assert_eq!(max_chunk_len(GCM, 61), 0);
        // 28 + 8 + 16 (IV) + 16 (ICV) leave 32: two blocks, one octet of
        // which is the Pad Length.
        assert_eq!(max_chunk_len(CBC, 100), 31);
        assert_eq!(max_chunk_len(CBC, 115), 31);
        assert_eq!(max_chunk_len(CBC, 116), 47);
        assert_eq!(max_chunk_len(CBC, 84), 15);
        assert_eq!(max_chunk_len(CBC, 83), 0);
        assert_eq!(max_chunk_len(CBC, 0), 0);
    }

    #[test]
    fn max_chunk_len_stays_within_the_skf_length_field() {
        for suite in SkSuite::ALL {
            for max in [65_535, 65_563, 65_564, 100_000, usize::MAX] {
                let chunk = max_chunk_len(suite, max);
                let skf = |c: usize| suite.sk_payload_len(c) + Skf::FIXED_LEN;
                assert!(skf(chunk) <= MAX_SKF_LEN && HEADER_LEN + skf(chunk) <= max, "{suite:?} {max}");
                assert!(skf(chunk + 1) > MAX_SKF_LEN || HEADER_LEN + skf(chunk + 1) > max, "{suite:?} {max}");
            }
        }
    }

    #[test]
    fn limits_default_to_64_fragments_and_64_kib() {
        assert_eq!(Limits::default(), Limits { max_fragments: 64, max_size: 65_536 });
        assert_eq!(Reassembler::default().limits(), Limits::DEFAULT);
    }

    #[test]
    fn debug_shows_no_plaintext() {
        let r = Reassembler::new();
        let text = format!("{r:?}");
        assert!(text.starts_with("Reassembler"), "{text}");
    }
}
