//! Public and private keys, and the AUTH payload's signatures: RFC 7427
//! Digital Signature (method 14), RFC 4754 ECDSA (methods 9 and 10) and
//! RFC 7296 RSA Digital Signature (method 1, verification only).

use super::HashAlgorithm;
use super::algid::{Der, SignatureAlgorithm, SignatureScheme, tag};
use crate::Error;
use crate::wire::AuthMethod;
use core::fmt;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rand_core::CryptoRng;
use rsa::traits::PublicKeyParts;
use sha2::Digest;
use zeroize::Zeroizing;

/// The smallest RSA modulus Tandem accepts, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// 1.2.840.10045.2.1 (id-ecPublicKey)
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 (prime256v1)
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.3.132.0.34 (secp384r1)
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// 1.2.840.113549.1.1.1 (rsaEncryption)
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.3.101.112 (id-Ed25519)
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// DigestInfo prefixes of RSASSA-PKCS1-v1_5 (RFC 8017 section 9.2, note 1).
const DIGEST_INFO_SHA1: &[u8] =
    &[0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];
/// The SHA-256 DigestInfo prefix.
const DIGEST_INFO_SHA256: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];
/// The SHA-384 DigestInfo prefix.
const DIGEST_INFO_SHA384: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
    0x04, 0x30,
];
/// The SHA-512 DigestInfo prefix.
const DIGEST_INFO_SHA512: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
    0x04, 0x40,
];

/// The kind of a public or private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// ECDSA on NIST P-256 (secp256r1).
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA, at least [`MIN_RSA_BITS`] bits.
    Rsa,
}

impl KeyKind {
    /// Whether keys of this kind make signatures of `scheme`.
    pub const fn supports(self, scheme: SignatureScheme) -> bool {
        use SignatureScheme as S;
        match self {
            Self::EcdsaP256 | Self::EcdsaP384 => {
                matches!(scheme, S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512)
            }
            Self::Ed25519 => matches!(scheme, S::Ed25519),
            Self::Rsa => matches!(
                scheme,
                S::RsaPssSha256
                    | S::RsaPssSha384
                    | S::RsaPssSha512
                    | S::RsaPkcs1Sha256
                    | S::RsaPkcs1Sha384
                    | S::RsaPkcs1Sha512
            ),
        }
    }

    /// The schemes Tandem signs with for this kind, most preferred first:
    /// the hash matching the curve's strength first for ECDSA, RSA-PSS only
    /// for RSA (RFC 8247 makes PKCS#1 v1.5 a MAY).
    pub const fn preferred_schemes(self) -> &'static [SignatureScheme] {
        use SignatureScheme as S;
        match self {
            Self::EcdsaP256 => &[S::EcdsaSha256, S::EcdsaSha384, S::EcdsaSha512],
            Self::EcdsaP384 => &[S::EcdsaSha384, S::EcdsaSha512, S::EcdsaSha256],
            Self::Ed25519 => &[S::Ed25519],
            Self::Rsa => &[S::RsaPssSha256, S::RsaPssSha384, S::RsaPssSha512],
        }
    }
}

/// A public key: from a certificate's SubjectPublicKeyInfo or configured.
/// Two keys are equal when their key material is, however encoded.
#[derive(Clone)]
pub struct PublicKey {
    key: Verifier,
    spki: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq)]
enum Verifier {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::RsaPublicKey>),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7):
    /// id-ecPublicKey on P-256 or P-384, id-Ed25519 (RFC 8410) or
    /// rsaEncryption of at least [`MIN_RSA_BITS`] bits.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        Self::parse(der).map_err(|e| match e {
            Error::InvalidSyntax(_) => Error::CertificateInvalid("malformed public key"),
            e => e,
        })
    }

    fn parse(der: &[u8]) -> Result<Self, Error> {
        let mut outer = Der::new(der);
        let mut spki = Der::new(outer.expect(tag::SEQUENCE)?);
        outer.finish()?;
        let mut alg = Der::new(spki.expect(tag::SEQUENCE)?);
        let key = match alg.expect(tag::OID)? {
            OID_EC_PUBLIC_KEY => match alg.expect(tag::OID)? {
                OID_P256 => Verifier::P256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(malformed_public_key)?,
                ),
                OID_P384 => Verifier::P384(
                    p384::ecdsa::VerifyingKey::from_public_key_der(der).map_err(malformed_public_key)?,
                ),
                _ => return Err(Error::UnsupportedKey("elliptic curve")),
            },
            OID_ED25519 => Verifier::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(malformed_public_key)?,
            ),
            OID_RSA => {
                let key = rsa::RsaPublicKey::from_public_key_der(der).map_err(malformed_public_key)?;
                if key.size() * 8 < MIN_RSA_BITS {
                    return Err(Error::UnsupportedKey("RSA modulus below 2048 bits"));
                }
                Verifier::Rsa(Box::new(key))
            }
            _ => return Err(Error::UnsupportedKey("public key algorithm")),
        };
        Ok(Self { key, spki: der.to_vec() })
    }

    /// The kind of key.
    pub fn kind(&self) -> KeyKind {
        match self.key {
            Verifier::P256(_) => KeyKind::EcdsaP256,
            Verifier::P384(_) => KeyKind::EcdsaP384,
            Verifier::Ed25519(_) => KeyKind::Ed25519,
            Verifier::Rsa(_) => KeyKind::Rsa,
        }
    }

    /// The DER SubjectPublicKeyInfo this key was parsed from.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Verifies `signature` over `message`, ECDSA signatures encoded as
    /// `format` says. Any failure, a key unfit for the scheme included, is
    /// `Err(())`.
    pub(crate) fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        format: EcdsaFormat,
    ) -> Result<(), ()> {
        use SignatureScheme as S;
        match (&self.key, alg.scheme) {
            (Verifier::P256(key), S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512) => {
                let sig = if format == EcdsaFormat::Der {
                    p256::ecdsa::Signature::from_der(signature)
                } else {
                    p256::ecdsa::Signature::from_slice(signature)
                };
                ecdsa_verify(key, &digest(alg.scheme.hash(), message), &sig.map_err(|_| ())?)
            }
            (Verifier::P384(key), S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512) => {
                let sig = if format == EcdsaFormat::Der {
                    p384::ecdsa::Signature::from_der(signature)
                } else {
                    p384::ecdsa::Signature::from_slice(signature)
                };
                ecdsa_verify(key, &digest(alg.scheme.hash(), message), &sig.map_err(|_| ())?)
            }
            (Verifier::Ed25519(key), S::Ed25519) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| ())?;
                key.verify_strict(message, &sig).map_err(|_| ())
            }
            (Verifier::Rsa(key), S::RsaPkcs1Sha256 | S::RsaPkcs1Sha384 | S::RsaPkcs1Sha512) => {
                let hashed = digest(alg.scheme.hash(), message);
                key.verify(pkcs1(alg.scheme.hash()), &hashed, signature).map_err(|_| ())
            }
            (Verifier::Rsa(key), S::RsaPssSha256) => pss_verify::<sha2::Sha256>(key, alg, message, signature),
            (Verifier::Rsa(key), S::RsaPssSha384) => pss_verify::<sha2::Sha384>(key, alg, message, signature),
            (Verifier::Rsa(key), S::RsaPssSha512) => pss_verify::<sha2::Sha512>(key, alg, message, signature),
            _ => Err(()),
        }
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 (Auth Method 1, RFC 7296 section 3.8).
    fn verify_rsa_sha1(&self, message: &[u8], signature: &[u8]) -> Result<(), ()> {
        let Verifier::Rsa(key) = &self.key else { return Err(()) };
        let hashed = tandem_crypto::hash::sha1(&[message]);
        let scheme = rsa::Pkcs1v15Sign { hash_len: Some(20), prefix: DIGEST_INFO_SHA1.into() };
        key.verify(scheme, &hashed, signature).map_err(|_| ())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PublicKey {}

/// How an ECDSA signature is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EcdsaFormat {
    /// A DER `Ecdsa-Sig-Value` (certificates, RFC 7427).
    Der,
    /// Fixed-width `r | s` (RFC 4754).
    Fixed,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Verifier::Rsa(key) => write!(f, "PublicKey(Rsa, {} bits)", key.size() * 8),
            _ => write!(f, "PublicKey({:?})", self.kind()),
        }
    }
}

/// The error of a public key the key crates refuse.
fn malformed_public_key<E>(_: E) -> Error {
    Error::CertificateInvalid("malformed public key")
}

/// The error of a private key the key crates refuse.
fn malformed_private_key<E>(_: E) -> Error {
    Error::InvalidKey("malformed PKCS#8 private key")
}

/// The error of a signing operation that failed (an RNG failure, or an RSA
/// key too small for the hash).
fn signing_failed<E>(_: E) -> Error {
    Error::UnsupportedKey("signing failed")
}

fn ecdsa_verify<S, V: p256::ecdsa::signature::hazmat::PrehashVerifier<S>>(
    key: &V,
    prehash: &[u8],
    sig: &S,
) -> Result<(), ()> {
    key.verify_prehash(prehash, sig).map_err(|_| ())
}

fn pss_verify<D: Digest + sha2::digest::FixedOutputReset>(
    key: &rsa::RsaPublicKey,
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), ()> {
    let hashed = D::digest(message);
    let scheme = rsa::Pss::<D> { salt_len: Some(alg.salt_len), ..rsa::Pss::<D>::new() };
    key.verify(scheme, &hashed, signature).map_err(|_| ())
}

/// The RSASSA-PKCS1-v1_5 padding for a SHA-2 hash.
fn pkcs1(hash: HashAlgorithm) -> rsa::Pkcs1v15Sign {
    let (hash_len, prefix) = match hash {
        HashAlgorithm::SHA2_384 => (48, DIGEST_INFO_SHA384),
        HashAlgorithm::SHA2_512 => (64, DIGEST_INFO_SHA512),
        _ => (32, DIGEST_INFO_SHA256),
    };
    rsa::Pkcs1v15Sign { hash_len: Some(hash_len), prefix: prefix.into() }
}

/// `message` hashed with a SHA-2 `hash` (SHA-256 for any other value; the
/// schemes only carry SHA-2 hashes here).
fn digest(hash: HashAlgorithm, message: &[u8]) -> Vec<u8> {
    match hash {
        HashAlgorithm::SHA2_384 => sha2::Sha384::digest(message).to_vec(),
        HashAlgorithm::SHA2_512 => sha2::Sha512::digest(message).to_vec(),
        _ => sha2::Sha256::digest(message).to_vec(),
    }
}

/// A private key for signing AUTH payloads, loaded from PKCS#8.
///
/// The key material is zeroized on drop (each backing type implements
/// `ZeroizeOnDrop`), and `Debug` shows only the key's kind.
pub struct PrivateKey {
    key: Signer,
}

enum Signer {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl PrivateKey {
    /// Parses an unencrypted DER PKCS#8 `PrivateKeyInfo` (RFC 5208,
    /// RFC 5958) holding a P-256, P-384, Ed25519 or RSA key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let mut outer = Der::new(der);
        let mut info = Der::new(outer.expect(tag::SEQUENCE).map_err(malformed_private_key)?);
        info.expect(tag::INTEGER).map_err(malformed_private_key)?;
        let mut alg = Der::new(info.expect(tag::SEQUENCE).map_err(malformed_private_key)?);
        let key = match alg.expect(tag::OID).map_err(malformed_private_key)? {
            OID_EC_PUBLIC_KEY => match alg.expect(tag::OID).map_err(malformed_private_key)? {
                OID_P256 => {
                    Signer::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(malformed_private_key)?)
                }
                OID_P384 => {
                    Signer::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(malformed_private_key)?)
                }
                _ => return Err(Error::UnsupportedKey("elliptic curve")),
            },
            OID_ED25519 => Signer::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(malformed_private_key)?,
            ),
            OID_RSA => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(malformed_private_key)?;
                if key.size() * 8 < MIN_RSA_BITS {
                    return Err(Error::UnsupportedKey("RSA modulus below 2048 bits"));
                }
                Signer::Rsa(Box::new(key))
            }
            _ => return Err(Error::UnsupportedKey("private key algorithm")),
        };
        Ok(Self { key })
    }

    /// Parses a PEM `PRIVATE KEY` block (RFC 7468 section 10) holding an
    /// unencrypted PKCS#8 key; the decoded DER is zeroized after use.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, Error> {
        let (label, der) =
            x509_cert::der::pem::decode_vec(pem).map_err(|_| Error::InvalidKey("malformed PEM"))?;
        let der = Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(Error::InvalidKey("PEM label is not PRIVATE KEY"));
        }
        Self::from_pkcs8_der(&der)
    }

    /// The kind of key.
    pub fn kind(&self) -> KeyKind {
        match self.key {
            Signer::P256(_) => KeyKind::EcdsaP256,
            Signer::P384(_) => KeyKind::EcdsaP384,
            Signer::Ed25519(_) => KeyKind::Ed25519,
            Signer::Rsa(_) => KeyKind::Rsa,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        use p256::pkcs8::EncodePublicKey;
        let spki = match &self.key {
            Signer::P256(k) => k.verifying_key().to_public_key_der(),
            Signer::P384(k) => k.verifying_key().to_public_key_der(),
            Signer::Ed25519(k) => k.verifying_key().to_public_key_der(),
            Signer::Rsa(k) => k.to_public_key().to_public_key_der(),
        };
        let key = match &self.key {
            Signer::P256(k) => Verifier::P256(*k.verifying_key()),
            Signer::P384(k) => Verifier::P384(*k.verifying_key()),
            Signer::Ed25519(k) => Verifier::Ed25519(k.verifying_key()),
            Signer::Rsa(k) => Verifier::Rsa(Box::new(k.to_public_key())),
        };
        // Encoding a valid public key only fails on allocation limits.
        let spki = spki.map(|doc| doc.as_bytes().to_vec()).unwrap_or_default();
        PublicKey { key, spki }
    }

    /// The scheme to sign with given the hashes the peer announced in its
    /// SIGNATURE_HASH_ALGORITHMS notify: the first of
    /// [`KeyKind::preferred_schemes`] whose hash the peer supports. `None`
    /// means no common hash: fall back to [`PrivateKey::sign_auth_legacy`]
    /// or fail.
    pub fn choose_scheme(&self, peer_hashes: &[HashAlgorithm]) -> Option<SignatureScheme> {
        self.kind().preferred_schemes().iter().copied().find(|s| peer_hashes.contains(&s.hash()))
    }

    /// The AUTH data of Digital Signature authentication (Auth Method 14,
    /// RFC 7427 section 3): the AlgorithmIdentifier's length in one octet,
    /// the AlgorithmIdentifier, then the signature of `signed_octets`
    /// (RFC 7296 section 2.15). ECDSA signatures are DER `Ecdsa-Sig-Value`s;
    /// Ed25519 signs the octets themselves (RFC 8420). `rng` hedges ECDSA
    /// nonces (RFC 6979 with added entropy), blinds RSA and draws PSS salts.
    pub fn sign_auth<R: CryptoRng + ?Sized>(
        &self,
        scheme: SignatureScheme,
        signed_octets: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        if !self.kind().supports(scheme) {
            return Err(Error::UnsupportedKey("signature scheme does not fit the key"));
        }
        let signature = self.sign(scheme, signed_octets, rng, EcdsaFormat::Der)?;
        let alg_id = scheme.algorithm_identifier();
        let mut out = Vec::with_capacity(1 + alg_id.len() + signature.len());
        // Every emitted AlgorithmIdentifier is below 256 octets (67 at most).
        out.push(u8::try_from(alg_id.len()).map_err(|_| Error::Unencodable("AlgorithmIdentifier"))?);
        out.extend_from_slice(alg_id);
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// The AUTH method and data for a peer that did not announce RFC 7427
    /// support: ECDSA with SHA-256 on P-256 (method 9) or with SHA-384 on
    /// P-384 (method 10), signatures as fixed-width `r | s` (RFC 4754
    /// section 7). Other keys fail with [`Error::UnsupportedKey`]: Ed25519
    /// exists only with RFC 7427, and Tandem does not make SHA-1 RSA
    /// signatures (method 1).
    pub fn sign_auth_legacy<R: CryptoRng + ?Sized>(
        &self,
        signed_octets: &[u8],
        rng: &mut R,
    ) -> Result<(AuthMethod, Vec<u8>), Error> {
        let (method, scheme) = match self.key {
            Signer::P256(_) => (AuthMethod::ECDSA_256, SignatureScheme::EcdsaSha256),
            Signer::P384(_) => (AuthMethod::ECDSA_384, SignatureScheme::EcdsaSha384),
            _ => return Err(Error::UnsupportedKey("no pre-RFC 7427 Auth Method for this key")),
        };
        Ok((method, self.sign(scheme, signed_octets, rng, EcdsaFormat::Fixed)?))
    }

    /// Signs `message` with `scheme` (which the key supports).
    fn sign<R: CryptoRng + ?Sized>(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        rng: &mut R,
        format: EcdsaFormat,
    ) -> Result<Vec<u8>, Error> {
        use ed25519_dalek::Signer as _;
        use p256::ecdsa::signature::hazmat::RandomizedPrehashSigner;
        let hash = scheme.hash();
        Ok(match (&self.key, scheme) {
            (Signer::P256(key), _) => {
                let sig: p256::ecdsa::Signature =
                    key.sign_prehash_with_rng(rng, &digest(hash, message)).map_err(signing_failed)?;
                if format == EcdsaFormat::Der {
                    sig.to_der().as_bytes().to_vec()
                } else {
                    sig.to_bytes().to_vec()
                }
            }
            (Signer::P384(key), _) => {
                let sig: p384::ecdsa::Signature =
                    key.sign_prehash_with_rng(rng, &digest(hash, message)).map_err(signing_failed)?;
                if format == EcdsaFormat::Der {
                    sig.to_der().as_bytes().to_vec()
                } else {
                    sig.to_bytes().to_vec()
                }
            }
            (Signer::Ed25519(key), _) => key.sign(message).to_bytes().to_vec(),
            (Signer::Rsa(key), SignatureScheme::RsaPssSha256) => key
                .sign_with_rng(rng, rsa::Pss::<sha2::Sha256>::new(), &digest(hash, message))
                .map_err(signing_failed)?,
            (Signer::Rsa(key), SignatureScheme::RsaPssSha384) => key
                .sign_with_rng(rng, rsa::Pss::<sha2::Sha384>::new(), &digest(hash, message))
                .map_err(signing_failed)?,
            (Signer::Rsa(key), SignatureScheme::RsaPssSha512) => key
                .sign_with_rng(rng, rsa::Pss::<sha2::Sha512>::new(), &digest(hash, message))
                .map_err(signing_failed)?,
            (Signer::Rsa(key), _) => {
                key.sign_with_rng(rng, pkcs1(hash), &digest(hash, message)).map_err(signing_failed)?
            }
        })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?})", self.kind())
    }
}

/// Proof that a peer's signature AUTH payload verified; only
/// [`verify_auth`] makes one.
#[must_use = "an AUTH verification result must be acted upon"]
#[derive(Debug)]
pub struct SignatureVerified {
    method: AuthMethod,
    scheme: Option<SignatureScheme>,
}

impl SignatureVerified {
    /// The Auth Method the peer used.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The signature scheme the peer used; `None` for method 1, whose
    /// RSASSA-PKCS1-v1_5 with SHA-1 is no [`SignatureScheme`].
    pub fn scheme(&self) -> Option<SignatureScheme> {
        self.scheme
    }
}

/// Verifies a peer's AUTH payload made with `public` (from its verified
/// certificate or configured) over its `signed_octets` (RFC 7296
/// section 2.15).
///
/// `method` is the AUTH payload's Auth Method: 14 (RFC 7427: length octet,
/// AlgorithmIdentifier, signature), 9 or 10 (RFC 4754: ECDSA P-256/SHA-256
/// or P-384/SHA-384, `r | s`), or 1 (RSASSA-PKCS1-v1_5 with SHA-1, RFC 7296
/// section 3.8; refuse it by policy if SHA-1 is unwanted). Errors, each
/// to be answered with AUTHENTICATION_FAILED: [`Error::InvalidSyntax`] for
/// malformed AUTH data, [`Error::UnsupportedKey`] for a method or algorithm
/// Tandem does not verify, [`Error::AuthenticationFailed`] for a signature
/// that does not verify or does not fit the key. Signature verification
/// handles only public values, so it need not run in constant time.
pub fn verify_auth(
    public: &PublicKey,
    method: AuthMethod,
    auth_data: &[u8],
    signed_octets: &[u8],
) -> Result<SignatureVerified, Error> {
    let (scheme, verified) = match method {
        AuthMethod::DIGITAL_SIGNATURE => {
            let (&len, rest) = auth_data.split_first().ok_or(Error::InvalidSyntax("empty AUTH data"))?;
            let (alg_id, signature) = rest
                .split_at_checked(usize::from(len))
                .ok_or(Error::InvalidSyntax("AlgorithmIdentifier longer than AUTH data"))?;
            let alg = SignatureAlgorithm::parse(alg_id)?;
            (Some(alg.scheme), public.verify(alg, signed_octets, signature, EcdsaFormat::Der))
        }
        AuthMethod::ECDSA_256 | AuthMethod::ECDSA_384 => {
            let (kind, scheme) = if method == AuthMethod::ECDSA_256 {
                (KeyKind::EcdsaP256, SignatureScheme::EcdsaSha256)
            } else {
                (KeyKind::EcdsaP384, SignatureScheme::EcdsaSha384)
            };
            // RFC 4754 ties the hash to the curve: a key on the other curve fails.
            let fits = public.kind() == kind;
            let alg = SignatureAlgorithm::ours(scheme);
            (
                Some(scheme),
                if fits { public.verify(alg, signed_octets, auth_data, EcdsaFormat::Fixed) } else { Err(()) },
            )
        }
        AuthMethod::RSA => (None, public.verify_rsa_sha1(signed_octets, auth_data)),
        _ => return Err(Error::UnsupportedKey("Auth Method")),
    };
    verified.map_err(|()| Error::AuthenticationFailed)?;
    Ok(SignatureVerified { method, scheme })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn every_private_key_type_zeroizes_on_drop() {
        assert_zeroize_on_drop::<p256::ecdsa::SigningKey>();
        assert_zeroize_on_drop::<p384::ecdsa::SigningKey>();
        assert_zeroize_on_drop::<ed25519_dalek::SigningKey>();
        assert_zeroize_on_drop::<rsa::RsaPrivateKey>();
    }

    #[test]
    fn digest_info_prefixes_name_their_hash() {
        for (prefix, hash_oid_last, len) in
            [(DIGEST_INFO_SHA256, 1, 32), (DIGEST_INFO_SHA384, 2, 48), (DIGEST_INFO_SHA512, 3, 64)]
        {
            assert_eq!(prefix[14], hash_oid_last);
            assert_eq!(usize::from(prefix[18]), len);
            assert_eq!(usize::from(prefix[1]), prefix.len() - 2 + len);
        }
        assert_eq!(usize::from(DIGEST_INFO_SHA1[1]), DIGEST_INFO_SHA1.len() - 2 + 20);
    }
}
