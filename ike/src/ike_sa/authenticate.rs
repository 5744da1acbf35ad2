//! The AUTH exchange's proofs (RFC 7296 section 2.15): making ours with a
//! pre-shared key or a private key, and checking the peer's against a
//! pre-shared key or its certificate chain (RFC 7427, RFC 4754, RFC 5280).

use crate::Error;
use crate::auth::{psk_auth, verify_psk_auth};
use crate::config::{Identity, LocalAuth, RemoteAuth};
use crate::pubkey::{Certificate, HashAlgorithm, certreq_data, matches_identity, verify_auth, verify_chain};
use crate::wire::{Auth, AuthMethod, Cert, CertEncoding, CertReq, Id, Payload};
use rand_core::CryptoRng;
use tandem_crypto::prf::PrfAlgorithm;

/// Our AUTH payload's method and data over `signed` octets. Signatures use
/// RFC 7427 with a hash the peer announced (`peer_hashes`), else the
/// RFC 4754 ECDSA methods.
pub(super) fn sign<R: CryptoRng + ?Sized>(
    local: &LocalAuth,
    prf: PrfAlgorithm,
    signed: &[u8],
    peer_hashes: &[HashAlgorithm],
    rng: &mut R,
) -> Result<(AuthMethod, Vec<u8>), Error> {
    match local {
        LocalAuth::Psk(psk) => Ok((AuthMethod::SHARED_KEY_MIC, psk_auth(prf, psk.expose(), signed))),
        LocalAuth::PubKey(creds) => match creds.key.choose_scheme(peer_hashes) {
            Some(scheme) => Ok((AuthMethod::DIGITAL_SIGNATURE, creds.key.sign_auth(scheme, signed, rng)?)),
            None => creds.key.sign_auth_legacy(signed, rng),
        },
    }
}

/// The CERT payloads we send along with our AUTH payload.
pub(super) fn cert_payloads(local: &LocalAuth) -> Vec<Payload<'_>> {
    match local {
        LocalAuth::Psk(_) => Vec::new(),
        LocalAuth::PubKey(creds) => creds
            .chain
            .iter()
            .map(|c| Payload::Cert(Cert { encoding: CertEncoding::X509_SIGNATURE, data: c.der() }))
            .collect(),
    }
}

/// The CERTREQ data naming the CAs we trust, if the peer signs.
pub(super) fn certreq(remote: &RemoteAuth) -> Option<Vec<u8>> {
    match remote {
        RemoteAuth::Psk(_) => None,
        RemoteAuth::PubKey { cas } => Some(certreq_data(cas)),
    }
}

/// A CERTREQ payload over `data`.
pub(super) fn certreq_payload(data: &[u8]) -> Payload<'_> {
    Payload::CertReq(CertReq { encoding: CertEncoding::X509_SIGNATURE, data })
}

/// What the peer sent to prove its identity.
pub(super) struct PeerProof<'a> {
    pub(super) id: &'a Id<'a>,
    pub(super) auth: &'a Auth<'a>,
    /// The data of its X.509 CERT payloads, end entity first.
    pub(super) certs: Vec<&'a [u8]>,
}

/// Checks the peer's identity and AUTH payload over its `signed` octets.
/// `unix_now` (seconds) dates certificate validity; without it,
/// certificates cannot be checked and signature authentication fails.
pub(super) fn verify(
    remote: &RemoteAuth,
    remote_id: Option<&Identity>,
    prf: PrfAlgorithm,
    proof: &PeerProof<'_>,
    signed: &[u8],
    unix_now: Option<u64>,
) -> Result<(), Error> {
    if remote_id.is_some_and(|r| !r.matches(proof.id)) {
        return Err(Error::AuthenticationFailed);
    }
    match remote {
        RemoteAuth::Psk(psk) => {
            if proof.auth.method != AuthMethod::SHARED_KEY_MIC {
                return Err(Error::AuthenticationFailed);
            }
            verify_psk_auth(prf, psk.expose(), signed, proof.auth.data).map(|_| ())
        }
        RemoteAuth::PubKey { cas } => {
            let now = unix_now.ok_or(Error::CertificateInvalid("no wall clock to check validity"))?;
            let mut certs = proof.certs.iter().map(|der| Certificate::from_der(der));
            let end_entity = certs.next().ok_or(Error::Untrusted)??;
            let intermediates = certs.collect::<Result<Vec<_>, _>>()?;
            let _chain = verify_chain(&end_entity, &intermediates, cas, now)?;
            if !matches_identity(&end_entity, proof.id.ty, proof.id.data) {
                return Err(Error::AuthenticationFailed);
            }
            verify_auth(end_entity.public_key()?, proof.auth.method, proof.auth.data, signed).map(|_| ())
        }
    }
}
