//! IKE SA and Child SA key derivation (RFC 7296 sections 2.13, 2.14, 2.17
//! and 2.18).
//!
//! Every quantity here is built from the negotiated PRF and its `prf+`
//! ([`PrfAlgorithm`]):
//!
//! ```text
//! SKEYSEED          = prf(Ni | Nr, g^ir)                          (2.14)
//! {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//!                   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)       (2.14)
//! KEYMAT            = prf+(SK_d, [g^ir (new) |] Ni | Nr)          (2.17)
//! SKEYSEED (rekey)  = prf(SK_d (old), g^ir (new) | Ni | Nr)       (2.18)
//! ```
//!
//! Nonces are passed without their payload headers and `g^ir` as the
//! key exchange produced it (big endian, left-padded to the modulus length
//! for MODP groups). Every secret comes back as [`SecretBytes`]: zeroized on
//! drop, compared in constant time, and shown by `Debug` as a length only.

use crate::Error;
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::secret::SecretBytes;
use zeroize::Zeroizing;

/// Length of an IKE SA SPI in octets (RFC 7296 section 3.1).
pub const IKE_SPI_LEN: usize = 8;

/// `SKEYSEED = prf(Ni | Nr, g^ir)` for a new IKE SA (RFC 7296 section 2.14).
///
/// The PRFs Tandem negotiates are HMACs, which take the whole `Ni | Nr` as
/// their key (the 64-bit truncation of section 2.14 only applies to the
/// AES-XCBC and AES-CMAC PRFs).
pub fn skeyseed(prf: PrfAlgorithm, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> SecretBytes {
    let key = concat(&[ni, nr]);
    prf.prf(&key, &[g_ir])
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` for an IKE SA rekeyed
/// with CREATE_CHILD_SA (RFC 7296 section 2.18).
///
/// `prf` must be the **old** IKE SA's PRF: the rekeying exchange belongs to
/// the old SA. The new SA's keys are then derived with
/// [`IkeKeys::derive`] under the **new** SA's PRF, with the new SPIs and the
/// nonces of the rekeying exchange.
pub fn rekey_skeyseed(
    prf: PrfAlgorithm,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> SecretBytes {
    prf.prf(old_sk_d, &[g_ir_new, ni, nr])
}

/// `KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr)`, `len` octets (RFC 7296
/// section 2.17).
///
/// `g_ir_new` is the shared secret of a CREATE_CHILD_SA exchange with a key
/// exchange (PFS), `None` for the first Child SA or one created without PFS.
/// For ESP the caller splits the result in this order: initiator-to-responder
/// encryption key (with the AEAD salt), its integrity key, then the
/// responder-to-initiator pair; [`child_sa_keys`] does that split.
pub fn child_keymat(
    prf: PrfAlgorithm,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Result<SecretBytes, Error> {
    let seed = concat(&[g_ir_new.unwrap_or_default(), ni, nr]);
    Ok(prf.prf_plus(sk_d, &seed, len)?)
}

/// Key material of one Child SA pair, each direction being the encryption
/// key (with salt for an AEAD) followed by the integrity key: the layout ESP
/// SAs are keyed from.
pub struct ChildKeys {
    initiator_to_responder: SecretBytes,
    responder_to_initiator: SecretBytes,
}

impl ChildKeys {
    /// Key material of the SA carrying traffic from the IKE initiator.
    pub fn initiator_to_responder(&self) -> &SecretBytes {
        &self.initiator_to_responder
    }

    /// Key material of the SA carrying traffic to the IKE initiator.
    pub fn responder_to_initiator(&self) -> &SecretBytes {
        &self.responder_to_initiator
    }
}

impl core::fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChildKeys")
            .field("initiator_to_responder", &self.initiator_to_responder)
            .field("responder_to_initiator", &self.responder_to_initiator)
            .finish()
    }
}

/// Derives the KEYMAT of one ESP Child SA pair and splits it (RFC 7296
/// section 2.17): the first `per_direction_len` octets key the
/// initiator-to-responder SA, the next `per_direction_len` the reverse one.
///
/// `per_direction_len` is the encryption key material plus integrity key
/// length of the negotiated ESP suite.
pub fn child_sa_keys(
    prf: PrfAlgorithm,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    per_direction_len: usize,
) -> Result<ChildKeys, Error> {
    let total =
        per_direction_len.checked_mul(2).ok_or(tandem_crypto::Error::PrfPlusTooLong(per_direction_len))?;
    let keymat = child_keymat(prf, sk_d, g_ir_new, ni, nr, total)?;
    let (i2r, r2i) = keymat.expose().split_at(per_direction_len);
    Ok(ChildKeys {
        initiator_to_responder: SecretBytes::from_slice(i2r),
        responder_to_initiator: SecretBytes::from_slice(r2i),
    })
}

/// The seven secrets of an IKE SA (RFC 7296 section 2.14).
///
/// `SK_d`, `SK_pi` and `SK_pr` are as long as the PRF's output; the
/// encryption keys carry the AEAD salt at their end; the integrity keys are
/// empty for an AEAD. `Debug` shows lengths only.
#[derive(Clone)]
pub struct IkeKeys {
    sk_d: SecretBytes,
    sk_ai: SecretBytes,
    sk_ar: SecretBytes,
    sk_ei: SecretBytes,
    sk_er: SecretBytes,
    sk_pi: SecretBytes,
    sk_pr: SecretBytes,
}

impl IkeKeys {
    /// Derives the keys from `prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)`, taken
    /// in the order `SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr`.
    ///
    /// `encr_keymat_len` is the encryption key material of one direction
    /// (cipher key plus the 4-octet salt for an AEAD) and `integ_key_len`
    /// the integrity key length (0 for an AEAD); see
    /// [`SkSuite`](crate::protect::SkSuite) for both. `prf` is the PRF of
    /// the SA being keyed: for a rekeyed IKE SA, the new one.
    #[allow(clippy::too_many_arguments)] // mirrors RFC 7296's formula term by term
    pub fn derive(
        prf: PrfAlgorithm,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; IKE_SPI_LEN],
        spi_r: &[u8; IKE_SPI_LEN],
        encr_keymat_len: usize,
        integ_key_len: usize,
    ) -> Result<Self, Error> {
        let prf_len = prf.output_len();
        let too_long = || tandem_crypto::Error::PrfPlusTooLong(usize::MAX);
        let total = encr_keymat_len
            .checked_add(integ_key_len)
            .and_then(|n| n.checked_mul(2))
            .and_then(|n| n.checked_add(3 * prf_len))
            .ok_or_else(too_long)?;
        let seed = concat(&[ni, nr, spi_i, spi_r]);
        let keymat = prf.prf_plus(skeyseed, &seed, total)?;
        let mut rest = keymat.expose();
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            SecretBytes::from_slice(head)
        };
        Ok(Self {
            sk_d: take(prf_len),
            sk_ai: take(integ_key_len),
            sk_ar: take(integ_key_len),
            sk_ei: take(encr_keymat_len),
            sk_er: take(encr_keymat_len),
            sk_pi: take(prf_len),
            sk_pr: take(prf_len),
        })
    }

    /// The seven keys in the order of [`Self::derive`]: `SK_d`, `SK_ai`,
    /// `SK_ar`, `SK_ei`, `SK_er`, `SK_pi`, `SK_pr`.
    pub(crate) fn parts(&self) -> [&SecretBytes; 7] {
        [&self.sk_d, &self.sk_ai, &self.sk_ar, &self.sk_ei, &self.sk_er, &self.sk_pi, &self.sk_pr]
    }

    /// The keys from their seven parts, in the order of [`Self::parts`].
    pub(crate) fn from_parts([sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr]: [SecretBytes; 7]) -> Self {
        Self { sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr }
    }

    /// `SK_d`: the key Child SA KEYMAT and a rekeyed IKE SA's SKEYSEED are
    /// derived from.
    pub fn sk_d(&self) -> &SecretBytes {
        &self.sk_d
    }

    /// `SK_ai`: integrity key of messages sent by the original initiator.
    pub fn sk_ai(&self) -> &SecretBytes {
        &self.sk_ai
    }

    /// `SK_ar`: integrity key of messages sent by the original responder.
    pub fn sk_ar(&self) -> &SecretBytes {
        &self.sk_ar
    }

    /// `SK_ei`: encryption key material of messages sent by the original
    /// initiator.
    pub fn sk_ei(&self) -> &SecretBytes {
        &self.sk_ei
    }

    /// `SK_er`: encryption key material of messages sent by the original
    /// responder.
    pub fn sk_er(&self) -> &SecretBytes {
        &self.sk_er
    }

    /// `SK_pi`: the initiator's key for `MACedIDForI` in its AUTH payload.
    pub fn sk_pi(&self) -> &SecretBytes {
        &self.sk_pi
    }

    /// `SK_pr`: the responder's key for `MACedIDForR` in its AUTH payload.
    pub fn sk_pr(&self) -> &SecretBytes {
        &self.sk_pr
    }
}

impl core::fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SecretBytes prints its length only.
        f.debug_struct("IkeKeys")
            .field("sk_d", &self.sk_d)
            .field("sk_ai", &self.sk_ai)
            .field("sk_ar", &self.sk_ar)
            .field("sk_ei", &self.sk_ei)
            .field("sk_er", &self.sk_er)
            .field("sk_pi", &self.sk_pi)
            .field("sk_pr", &self.sk_pr)
            .finish()
    }
}

/// The concatenation of `parts`, zeroized on drop (seeds may hold `g^ir`).
fn concat(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}
