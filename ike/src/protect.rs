//! The Encrypted (SK) payload: protection of whole IKE messages (RFC 7296
//! section 3.14, RFC 5282, RFC 7634).
//!
//! An SK payload is always the last payload of a message:
//!
//! ```text
//! IKE header (28) | unencrypted payloads | SK generic header (4) | IV |
//!     E(inner payloads | padding | pad length) | ICV
//! ```
//!
//! Two kinds of suite protect it:
//!
//! - **AEAD** (AES-GCM-16, ChaCha20-Poly1305; RFC 5282, RFC 7634): an
//!   8-octet explicit IV, nonce `salt | IV`, a 16-octet ICV (the tag), and
//!   associated data = the message from the first octet of the IKE header
//!   through the last octet of the SK generic header, with both length
//!   fields already final. No padding is needed; the sender sends a Pad
//!   Length of 0.
//! - **AES-CBC + HMAC-SHA2** (RFC 3602, RFC 4868): a random 16-octet IV,
//!   padding to the block size, and the truncated HMAC over the whole
//!   message from the IKE header up to (not including) the ICV.
//!
//! Offsets are raw: the IKE header is [`IKE_HEADER_LEN`] octets with its
//! total Length at [`IKE_LENGTH_OFFSET`]; a generic payload header is
//! [`GENERIC_HEADER_LEN`] octets with its Payload Length at offset 2.
//!
//! # AEAD IVs
//!
//! An AEAD's explicit IV must never repeat under one key. [`SkCipher`] takes
//! it from a 64-bit counter it owns, starting at 0 and incremented by every
//! [`SkCipher::seal`]; it is not taken from the RNG. A counter makes
//! uniqueness a property of the code rather than of probability, and stays
//! unique when every RNG in a simulation or cluster replay is seeded alike,
//! where two seeded RNGs would hand out the same IVs. The message ID cannot
//! serve: one key protects both the requests and the responses its side
//! sends, and they use two independent message ID sequences.
//!
//! A cluster standby taking over an SA must resume above every IV the
//! failed node may have used: it restores the counter with
//! [`SkCipher::advance_iv_counter`] to the last synced value plus a margin
//! larger than the number of messages that can go unsynced.
//!
//! CBC IVs come from the caller's RNG, as RFC 7296 requires them to be
//! unpredictable, not merely unique.

use crate::Error;
use crate::wire::Skf;
use rand_core::CryptoRng;
use tandem_crypto::aead::{self, AeadAlgorithm, Provider, SaltedAead};
use tandem_crypto::cbc_hmac::{self, AesCbc, CbcAlgorithm, IntegAlgorithm, Integrity};
use tandem_crypto::proposal::EncrAlgorithm;

/// Length of the fixed IKE header in octets.
pub const IKE_HEADER_LEN: usize = 28;
/// Offset of the IKE header's 32-bit total Length field.
pub const IKE_LENGTH_OFFSET: usize = 24;
/// Length of a generic payload header in octets.
pub const GENERIC_HEADER_LEN: usize = 4;
/// Offset of the Payload Length field within a generic payload header.
const PAYLOAD_LENGTH_OFFSET: usize = 2;
/// Largest IV of any suite.
pub const MAX_IV_LEN: usize = cbc_hmac::BLOCK_LEN;
/// Largest ICV of any suite.
pub const MAX_ICV_LEN: usize = cbc_hmac::MAX_ICV_LEN;

/// A cipher suite that protects SK payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkSuite {
    /// AES-GCM-16 or ChaCha20-Poly1305 (RFC 5282, RFC 7634).
    Aead(AeadAlgorithm),
    /// AES-CBC (RFC 3602) with HMAC-SHA2 integrity (RFC 4868).
    CbcHmac(CbcAlgorithm, IntegAlgorithm),
}

impl SkSuite {
    /// Every suite Tandem supports.
    pub const ALL: [SkSuite; 9] = [
        SkSuite::Aead(AeadAlgorithm::Aes128Gcm16),
        SkSuite::Aead(AeadAlgorithm::Aes256Gcm16),
        SkSuite::Aead(AeadAlgorithm::ChaCha20Poly1305),
        SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128),
        SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha384_192),
        SkSuite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha512_256),
        SkSuite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha256_128),
        SkSuite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha384_192),
        SkSuite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha512_256),
    ];

    /// The suite of a negotiated encryption and integrity transform: an
    /// AEAD must come without integrity, AES-CBC with it.
    pub fn new(encr: EncrAlgorithm, integ: Option<IntegAlgorithm>) -> Result<Self, Error> {
        match (encr, integ) {
            (EncrAlgorithm::Aead(a), None) => Ok(Self::Aead(a)),
            (EncrAlgorithm::Cbc(c), Some(i)) => Ok(Self::CbcHmac(c, i)),
            (EncrAlgorithm::Aead(_), Some(_)) => {
                Err(Error::InvalidSuite("an AEAD cipher takes no integrity algorithm"))
            }
            (EncrAlgorithm::Cbc(_), None) => Err(Error::InvalidSuite("AES-CBC needs an integrity algorithm")),
        }
    }

    /// Encryption key material of one direction (`SK_ei`/`SK_er`): the
    /// cipher key, plus the 4-octet salt for an AEAD.
    pub const fn encr_keymat_len(self) -> usize {
        match self {
            Self::Aead(a) => a.keymat_len(),
            Self::CbcHmac(c, _) => c.key_len(),
        }
    }

    /// Integrity key length (`SK_ai`/`SK_ar`): 0 for an AEAD.
    pub const fn integ_key_len(self) -> usize {
        match self {
            Self::Aead(_) => 0,
            Self::CbcHmac(_, i) => i.key_len(),
        }
    }

    /// Length of the explicit IV in octets.
    pub const fn iv_len(self) -> usize {
        match self {
            Self::Aead(_) => aead::IV_LEN,
            Self::CbcHmac(..) => cbc_hmac::BLOCK_LEN,
        }
    }

    /// Length of the ICV in octets.
    pub const fn icv_len(self) -> usize {
        match self {
            Self::Aead(_) => aead::TAG_LEN,
            Self::CbcHmac(_, i) => i.icv_len(),
        }
    }

    /// Length of a whole SK payload (generic header included) carrying
    /// `inner_len` octets of inner payloads, as [`SkCipher::seal`] emits it.
    pub const fn sk_payload_len(self, inner_len: usize) -> usize {
        GENERIC_HEADER_LEN + self.iv_len() + self.padded_len(inner_len) + self.icv_len()
    }

    /// Plaintext length after padding: inner payloads, padding, Pad Length.
    const fn padded_len(self, inner_len: usize) -> usize {
        match self {
            Self::Aead(_) => inner_len + 1,
            Self::CbcHmac(..) => (inner_len / cbc_hmac::BLOCK_LEN + 1) * cbc_hmac::BLOCK_LEN,
        }
    }

    /// The suite's name in strongSwan syntax (`aes128gcm16`, `aes256-sha384`).
    pub fn name(self) -> String {
        match self {
            Self::Aead(a) => a.name().to_owned(),
            Self::CbcHmac(c, i) => format!("{}-{}", c.name(), i.name()),
        }
    }
}

enum Keyed {
    Aead(SaltedAead),
    CbcHmac(Box<(AesCbc, Integrity)>),
}

/// One direction's SK payload protection, keyed with `SK_ei`/`SK_ai` or
/// `SK_er`/`SK_ar`.
///
/// An IKE SA holds two: one to [`seal`](Self::seal) what it sends, one to
/// [`open`](Self::open) what it receives. `Debug` never shows key material.
pub struct SkCipher {
    suite: SkSuite,
    keyed: Keyed,
    next_iv: u64,
}

impl SkCipher {
    /// Keys `suite` with the preferred AEAD provider.
    ///
    /// `encr_keymat` is `SK_e*` (with the salt at its end for an AEAD),
    /// `integ_key` is `SK_a*` (empty for an AEAD).
    pub fn new(suite: SkSuite, encr_keymat: &[u8], integ_key: &[u8]) -> Result<Self, Error> {
        Self::with_provider(Provider::preferred(), suite, encr_keymat, integ_key)
    }

    /// Keys `suite` with the given AEAD `provider` (unused for AES-CBC).
    pub fn with_provider(
        provider: Provider,
        suite: SkSuite,
        encr_keymat: &[u8],
        integ_key: &[u8],
    ) -> Result<Self, Error> {
        let keyed = match suite {
            SkSuite::Aead(a) => {
                if !integ_key.is_empty() {
                    return Err(Error::InvalidSuite("an AEAD cipher takes no integrity key"));
                }
                Keyed::Aead(SaltedAead::new(provider, a, encr_keymat)?)
            }
            SkSuite::CbcHmac(c, i) => {
                Keyed::CbcHmac(Box::new((AesCbc::new(c, encr_keymat)?, Integrity::new(i, integ_key)?)))
            }
        };
        Ok(Self { suite, keyed, next_iv: 0 })
    }

    /// The suite this cipher was keyed for.
    pub fn suite(&self) -> SkSuite {
        self.suite
    }

    /// The AEAD IV counter: the explicit IV the next [`seal`](Self::seal)
    /// uses. A cluster mirrors it with the SA.
    pub fn iv_counter(&self) -> u64 {
        self.next_iv
    }

    /// Moves the AEAD IV counter forward to `at_least`; never moves it back,
    /// so no IV can be handed out twice.
    pub fn advance_iv_counter(&mut self, at_least: u64) {
        self.next_iv = self.next_iv.max(at_least);
    }

    /// Appends an SK payload protecting `inner` to `message`.
    ///
    /// `message` holds the IKE header and any unencrypted payloads, the last
    /// of which (or the header) must already name the Encrypted payload (46)
    /// as its next payload: the SK payload starts at `message.len()`.
    /// `next_payload` is the type of the first inner payload. Seal appends
    /// the SK generic header, IV, ciphertext (inner payloads, padding, Pad
    /// Length) and ICV, and sets the SK Payload Length and the IKE header's
    /// total Length before computing the ICV. On error `message` is left as
    /// it was.
    pub fn seal<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &mut Vec<u8>,
        next_payload: u8,
        inner: &[u8],
    ) -> Result<(), Error> {
        self.seal_payload(rng, message, next_payload, &[], inner)
    }

    /// [`seal`](Self::seal) with `fixed` (an SKF's Fragment Number and Total
    /// Fragments) between the generic header and the IV.
    fn seal_payload<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &mut Vec<u8>,
        next_payload: u8,
        fixed: &[u8],
        inner: &[u8],
    ) -> Result<(), Error> {
        if message.len() < IKE_HEADER_LEN {
            return Err(Error::Unencodable("an SK payload into a message shorter than the IKE header"));
        }
        let sk_offset = message.len();
        let suite = self.suite;
        let sk_len = u16::try_from(suite.sk_payload_len(inner.len()).saturating_add(fixed.len()))
            .map_err(|_| Error::Unencodable("an SK payload over 65535 octets"))?;
        let total = u32::try_from(sk_offset + usize::from(sk_len))
            .map_err(|_| Error::Unencodable("an IKE message over 2^32 - 1 octets"))?;
        let aead_iv = match self.keyed {
            Keyed::Aead(_) => {
                let iv = self.next_iv;
                self.next_iv = iv
                    .checked_add(1)
                    .ok_or(Error::Unencodable("an SK payload: AEAD IV counter exhausted, rekey the SA"))?;
                iv
            }
            Keyed::CbcHmac(_) => 0,
        };
        let mut old_length = [0; 4];
        old_length.copy_from_slice(&message[IKE_LENGTH_OFFSET..IKE_LENGTH_OFFSET + 4]);

        // Generic header and lengths first: both are authenticated.
        message.reserve(usize::from(sk_len));
        message.extend_from_slice(&[next_payload, 0]);
        message.extend_from_slice(&sk_len.to_be_bytes());
        message.extend_from_slice(fixed);
        message[IKE_LENGTH_OFFSET..IKE_LENGTH_OFFSET + 4].copy_from_slice(&total.to_be_bytes());
        let iv_start = message.len();
        let pt_start = iv_start + suite.iv_len();
        let pt_len = suite.padded_len(inner.len());

        let result = match &self.keyed {
            Keyed::Aead(cipher) => {
                let iv = aead_iv.to_be_bytes();
                message.extend_from_slice(&iv);
                push_plaintext(message, inner, pt_len);
                let (head, tail) = message.split_at_mut(pt_start);
                let aad = &head[..iv_start];
                cipher.seal(&iv, aad, &mut tail[..pt_len]).map(|tag| message.extend_from_slice(&tag))
            }
            Keyed::CbcHmac(keys) => {
                let (cbc, integ) = &**keys;
                let mut iv = [0; cbc_hmac::BLOCK_LEN];
                rng.fill_bytes(&mut iv);
                message.extend_from_slice(&iv);
                push_plaintext(message, inner, pt_len);
                cbc.encrypt(&iv, &mut message[pt_start..pt_start + pt_len]).map(|()| {
                    let icv = integ.compute(&[message]);
                    message.extend_from_slice(&icv[..suite.icv_len()]);
                })
            }
        };
        if let Err(e) = result {
            message.truncate(sk_offset);
            message[IKE_LENGTH_OFFSET..IKE_LENGTH_OFFSET + 4].copy_from_slice(&old_length);
            return Err(e.into());
        }
        debug_assert_eq!(message.len(), total as usize, "seal emitted the length it announced");
        Ok(())
    }

    /// Verifies and decrypts the SK payload at `sk_offset` of `message`;
    /// returns the inner payloads (without padding).
    ///
    /// `message` is the whole IKE message: its header Length must match its
    /// size and the SK payload must end it. Failures are:
    /// [`Error::Truncated`] or [`Error::InvalidSyntax`] for framing that
    /// cannot be right, [`Error::IntegrityCheckFailed`] when the ICV does not
    /// verify (checked in constant time, before anything is decrypted or
    /// the padding looked at), and [`Error::InvalidSyntax`] for a Pad Length
    /// longer than the authenticated plaintext. Never panics.
    pub fn open(&self, message: &[u8], sk_offset: usize) -> Result<Vec<u8>, Error> {
        self.open_payload(message, sk_offset, 0)
    }

    /// [`open`](Self::open) with `fixed_len` octets (an SKF's Fragment Number
    /// and Total Fragments) between the generic header and the IV.
    fn open_payload(&self, message: &[u8], sk_offset: usize, fixed_len: usize) -> Result<Vec<u8>, Error> {
        let suite = self.suite;
        let header = message.get(..IKE_HEADER_LEN).ok_or(Error::Truncated("IKE header"))?;
        let declared = u32::from_be_bytes([header[24], header[25], header[26], header[27]]);
        if usize::try_from(declared).ok() != Some(message.len()) {
            return Err(Error::InvalidSyntax("IKE header length does not match the message"));
        }
        if sk_offset < IKE_HEADER_LEN {
            return Err(Error::InvalidSyntax("Encrypted payload inside the IKE header"));
        }
        let body_start = sk_offset
            .checked_add(GENERIC_HEADER_LEN + fixed_len)
            .ok_or(Error::Truncated("Encrypted payload"))?;
        let generic =
            message.get(sk_offset..body_start).ok_or(Error::Truncated("Encrypted payload header"))?;
        let sk_len = usize::from(u16::from_be_bytes([
            generic[PAYLOAD_LENGTH_OFFSET],
            generic[PAYLOAD_LENGTH_OFFSET + 1],
        ]));
        if sk_offset + sk_len != message.len() {
            return Err(Error::InvalidSyntax("Encrypted payload is not the last payload"));
        }
        let body = &message[body_start..];
        let (iv_len, icv_len) = (suite.iv_len(), suite.icv_len());
        // At least the Pad Length octet (a whole block for CBC).
        let min_ct = match suite {
            SkSuite::Aead(_) => 1,
            SkSuite::CbcHmac(..) => cbc_hmac::BLOCK_LEN,
        };
        if body.len() < iv_len + min_ct + icv_len {
            return Err(Error::Truncated("Encrypted payload"));
        }
        let ct_end = body.len() - icv_len;
        let (iv, ciphertext, icv) = (&body[..iv_len], &body[iv_len..ct_end], &body[ct_end..]);

        let plaintext = match &self.keyed {
            Keyed::Aead(cipher) => {
                let mut iv_arr = [0; aead::IV_LEN];
                iv_arr.copy_from_slice(iv);
                let mut tag = [0; aead::TAG_LEN];
                tag.copy_from_slice(icv);
                let mut pt = ciphertext.to_vec();
                cipher
                    .open(&iv_arr, &message[..body_start], &mut pt, &tag)
                    .map_err(|_| Error::IntegrityCheckFailed)?;
                pt
            }
            Keyed::CbcHmac(keys) => {
                let (cbc, integ) = &**keys;
                if ciphertext.len() % cbc_hmac::BLOCK_LEN != 0 {
                    return Err(Error::InvalidSyntax("Encrypted payload is not a whole number of blocks"));
                }
                integ
                    .verify(&[&message[..message.len() - icv_len]], icv)
                    .map_err(|_| Error::IntegrityCheckFailed)?;
                let mut iv_arr = [0; cbc_hmac::BLOCK_LEN];
                iv_arr.copy_from_slice(iv);
                let mut pt = ciphertext.to_vec();
                cbc.decrypt(&iv_arr, &mut pt)?;
                pt
            }
        };
        strip_padding(plaintext)
    }

    /// Appends an Encrypted Fragment (SKF) payload protecting `chunk`, one
    /// piece of a message's SK plaintext, to `message` (RFC 7383 section 2.5).
    ///
    /// As [`seal`](Self::seal), but Fragment Number and Total Fragments
    /// follow the generic header, inside the AEAD's associated data and the
    /// HMAC's coverage; `message` must already name the Encrypted Fragment
    /// payload (53) as its next payload. `next_payload` is the first inner
    /// payload's type in fragment 1 and zero in the others. Fails with
    /// [`Error::Unencodable`] unless `1 <= fragment_number <= total_fragments`.
    pub fn seal_fragment<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        message: &mut Vec<u8>,
        next_payload: u8,
        fragment_number: u16,
        total_fragments: u16,
        chunk: &[u8],
    ) -> Result<(), Error> {
        if fragment_number == 0 || fragment_number > total_fragments {
            return Err(Error::Unencodable("an SKF payload numbered 0 or above its total"));
        }
        let mut fixed = [0; Skf::FIXED_LEN];
        fixed[..2].copy_from_slice(&fragment_number.to_be_bytes());
        fixed[2..].copy_from_slice(&total_fragments.to_be_bytes());
        self.seal_payload(rng, message, next_payload, &fixed, chunk)
    }

    /// Verifies and decrypts the SKF payload at `skf_offset` of `message`;
    /// returns its plaintext chunk (without padding).
    ///
    /// As [`open`](Self::open), with the associated data running through
    /// Total Fragments (RFC 7383 section 2.5). The fragment numbers are
    /// authenticated here, not range-checked: [`Skf::parse`] does that.
    pub fn open_fragment(&self, message: &[u8], skf_offset: usize) -> Result<Vec<u8>, Error> {
        self.open_payload(message, skf_offset, Skf::FIXED_LEN)
    }
}

impl core::fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkCipher")
            .field("suite", &self.suite)
            .field("iv_counter", &self.next_iv)
            .finish_non_exhaustive()
    }
}

/// Appends `inner`, zero padding and the Pad Length octet, `pt_len` octets
/// in all (`pt_len > inner.len()`, the padding shorter than 256 octets).
fn push_plaintext(message: &mut Vec<u8>, inner: &[u8], pt_len: usize) {
    let pad = pt_len - inner.len() - 1;
    message.extend_from_slice(inner);
    message.resize(message.len() + pad, 0);
    // The padding is at most one block: it fits the Pad Length octet.
    message.push(pad as u8);
}

/// Removes the padding and Pad Length octet: any Pad Length that fits is
/// accepted (RFC 7296 section 3.14), the padding's content is not checked.
fn strip_padding(mut plaintext: Vec<u8>) -> Result<Vec<u8>, Error> {
    let pad = match plaintext.last() {
        Some(&p) => usize::from(p),
        None => return Err(Error::Truncated("Encrypted payload plaintext")),
    };
    let inner_len = plaintext
        .len()
        .checked_sub(pad + 1)
        .ok_or(Error::InvalidSyntax("Pad Length exceeds the Encrypted payload"))?;
    plaintext.truncate(inner_len);
    Ok(plaintext)
}
