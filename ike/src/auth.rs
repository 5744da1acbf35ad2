//! The AUTH payload's signed octets and shared-key authentication (RFC 7296
//! section 2.15).
//!
//! ```text
//! InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//! MACedIDForI           = prf(SK_pi, RestOfInitIDPayload)
//! ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//! MACedIDForR           = prf(SK_pr, RestOfRespIDPayload)
//! AUTH (shared key)     = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//! ```
//!
//! `RealMessage1`/`RealMessage2` are the IKE_SA_INIT messages exactly as sent
//! (header included); `NonceRData`/`NonceIData` the peer's Nonce payload
//! data (without its generic header); `RestOf*IDPayload` the ID payload body
//! after its generic header: `ID Type | RESERVED (3) | Identification Data`.
//!
//! The same computation with the EAP MSK in place of the shared secret gives
//! the AUTH of an EAP exchange (section 2.16).

use crate::Error;
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::secret::ct_eq;

/// The fixed pad of shared-key authentication: 17 ASCII octets, no NUL.
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// Proof that a peer's AUTH payload verified; only this module makes one,
/// so code that requires it cannot skip the check.
#[must_use = "an AUTH verification result must be acted upon"]
#[derive(Debug)]
pub struct AuthVerified {
    _private: (),
}

/// `MACedIDFor* = prf(SK_p*, RestOf*IDPayload)`: `sk_p` is `SK_pi` for the
/// initiator and `SK_pr` for the responder; `id_body` is the ID payload body.
pub fn maced_id(prf: PrfAlgorithm, sk_p: &[u8], id_body: &[u8]) -> Vec<u8> {
    prf.prf(sk_p, &[id_body]).expose().to_vec()
}

/// `InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI`.
pub fn initiator_signed_octets(
    prf: PrfAlgorithm,
    real_message1: &[u8],
    nonce_r: &[u8],
    sk_pi: &[u8],
    id_i_body: &[u8],
) -> Vec<u8> {
    signed_octets(prf, real_message1, nonce_r, sk_pi, id_i_body)
}

/// `ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR`.
pub fn responder_signed_octets(
    prf: PrfAlgorithm,
    real_message2: &[u8],
    nonce_i: &[u8],
    sk_pr: &[u8],
    id_r_body: &[u8],
) -> Vec<u8> {
    signed_octets(prf, real_message2, nonce_i, sk_pr, id_r_body)
}

fn signed_octets(
    prf: PrfAlgorithm,
    message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced = maced_id(prf, sk_p, id_body);
    let mut out = Vec::with_capacity(message.len() + peer_nonce.len() + maced.len());
    out.extend_from_slice(message);
    out.extend_from_slice(peer_nonce);
    out.extend_from_slice(&maced);
    out
}

/// The AUTH data of shared-key authentication (Auth Method 2):
/// `prf(prf(psk, "Key Pad for IKEv2"), signed_octets)`.
pub fn psk_auth(prf: PrfAlgorithm, psk: &[u8], signed_octets: &[u8]) -> Vec<u8> {
    let padded_key = prf.prf(psk, &[KEY_PAD]);
    prf.prf(padded_key.expose(), &[signed_octets]).expose().to_vec()
}

/// Verifies a peer's shared-key AUTH data over its signed octets, comparing
/// in constant time. Fails with [`Error::AuthenticationFailed`], to be
/// answered with AUTHENTICATION_FAILED.
pub fn verify_psk_auth(
    prf: PrfAlgorithm,
    psk: &[u8],
    signed_octets: &[u8],
    auth_data: &[u8],
) -> Result<AuthVerified, Error> {
    let padded_key = prf.prf(psk, &[KEY_PAD]);
    let expected = prf.prf(padded_key.expose(), &[signed_octets]);
    if ct_eq(expected.expose(), auth_data) {
        Ok(AuthVerified { _private: () })
    } else {
        Err(Error::AuthenticationFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test vector is valid hex"))
            .collect()
    }

    // Fixed inputs; the expected values were computed independently with
    // Python 3's hmac and hashlib modules (see each constant).
    const MESSAGE1: &[u8] = b"stand-in for the initiator's IKE_SA_INIT request, header included";
    const NONCE_R: &[u8] = &[0xa5; 32];
    const SK_PI: &[u8] = &[0x11; 32];
    /// ID_FQDN (2), RESERVED, "initiator.example".
    const ID_I_BODY: &[u8] = b"\x02\x00\x00\x00initiator.example";
    const PSK: &[u8] = b"correct horse battery staple";

    /// hmac.new(SK_PI, ID_I_BODY, sha256).hexdigest()
    const MACED_ID_I_SHA256: &str = "3e467275df50c964e97c167e1b3d35f83f72ac497ed8bc549e31007aaa7b2bd2";
    /// hmac.new(hmac.new(PSK, b"Key Pad for IKEv2", sha256).digest(),
    ///          MESSAGE1 + NONCE_R + MACED_ID_I_SHA256, sha256).hexdigest()
    const AUTH_I_SHA256: &str = "e1745a0a07f5efd7461bd5c00feafc6c047316a1ab97a2ae68b03672fcd6d635";
    /// The same with SHA-384 throughout (SK_pi of 48 octets of 0x11).
    const AUTH_I_SHA384: &str =
        "7b14985e7ba03a6441104d7508c6e953d2dcc68152f9add29e96e1ddcba3db856a0de9314e115865928d2e2527e4b29d";
    /// The same with SHA-512 throughout (SK_pi of 64 octets of 0x11).
    const AUTH_I_SHA512: &str = "70a2805816eaf7f5be627a24026d602597f870cde37a0390f6791b8077b3a56ea6948130d675d2b84ddb3463453ae37dc059025f73438c6e46f41456e2f73f48";

    #[test]
    fn matches_python_hmac_for_maced_id() {
        assert_eq!(maced_id(PrfAlgorithm::HmacSha256, SK_PI, ID_I_BODY), h(MACED_ID_I_SHA256));
    }

    #[test]
    fn signed_octets_are_message_nonce_and_maced_id() {
        let octets = initiator_signed_octets(PrfAlgorithm::HmacSha256, MESSAGE1, NONCE_R, SK_PI, ID_I_BODY);
        let mut want = MESSAGE1.to_vec();
        want.extend_from_slice(NONCE_R);
        want.extend_from_slice(&h(MACED_ID_I_SHA256));
        assert_eq!(octets, want);
        let resp = responder_signed_octets(PrfAlgorithm::HmacSha256, MESSAGE1, NONCE_R, SK_PI, ID_I_BODY);
        assert_eq!(resp, want, "both sides use the same construction");
    }

    #[test]
    fn matches_python_hmac_for_psk_auth() {
        for (prf, want) in [
            (PrfAlgorithm::HmacSha256, AUTH_I_SHA256),
            (PrfAlgorithm::HmacSha384, AUTH_I_SHA384),
            (PrfAlgorithm::HmacSha512, AUTH_I_SHA512),
        ] {
            let sk_pi = vec![0x11; prf.output_len()];
            let octets = initiator_signed_octets(prf, MESSAGE1, NONCE_R, &sk_pi, ID_I_BODY);
            let auth = psk_auth(prf, PSK, &octets);
            assert_eq!(auth, h(want), "{}", prf.name());
            assert!(verify_psk_auth(prf, PSK, &octets, &auth).is_ok());
        }
    }

    #[test]
    fn rejects_a_wrong_psk() {
        let prf = PrfAlgorithm::HmacSha256;
        let octets = initiator_signed_octets(prf, MESSAGE1, NONCE_R, SK_PI, ID_I_BODY);
        let auth = psk_auth(prf, PSK, &octets);
        let err = verify_psk_auth(prf, b"correct horse battery stapler", &octets, &auth);
        assert_eq!(err.map(|_| ()), Err(Error::AuthenticationFailed));
    }

    #[test]
    fn rejects_changed_signed_octets() {
        let prf = PrfAlgorithm::HmacSha256;
        let octets = initiator_signed_octets(prf, MESSAGE1, NONCE_R, SK_PI, ID_I_BODY);
        let auth = psk_auth(prf, PSK, &octets);
        // Another identity, another SK_pi, another nonce: each changes AUTH.
        let other_id =
            initiator_signed_octets(prf, MESSAGE1, NONCE_R, SK_PI, b"\x02\x00\x00\x00mallory.example");
        let other_key = initiator_signed_octets(prf, MESSAGE1, NONCE_R, &[0x12; 32], ID_I_BODY);
        let other_nonce = initiator_signed_octets(prf, MESSAGE1, &[0xa6; 32], SK_PI, ID_I_BODY);
        for changed in [other_id, other_key, other_nonce] {
            assert_eq!(
                verify_psk_auth(prf, PSK, &changed, &auth).map(|_| ()),
                Err(Error::AuthenticationFailed)
            );
        }
    }

    #[test]
    fn rejects_truncated_or_empty_auth_data() {
        let prf = PrfAlgorithm::HmacSha256;
        let octets = initiator_signed_octets(prf, MESSAGE1, NONCE_R, SK_PI, ID_I_BODY);
        let auth = psk_auth(prf, PSK, &octets);
        for bad in [&auth[..31], &[][..]] {
            assert_eq!(verify_psk_auth(prf, PSK, &octets, bad).map(|_| ()), Err(Error::AuthenticationFailed));
        }
    }
}
