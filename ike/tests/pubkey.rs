//! Public-key authentication (`tandem_ike::pubkey`): RFC 7427 Appendix A
//! AlgorithmIdentifiers as known answers, AUTH signatures made by OpenSSL,
//! sign/verify round trips for every key type, certificate chains accepted
//! and refused, identity matching, CERTREQ hashes, and parsers that never
//! panic. The test PKI under `tests/data/pubkey` comes from its `gen.sh`.

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;
use tandem_ike::Error;
use tandem_ike::pubkey::*;
use tandem_ike::wire::{AuthMethod, IdType};

macro_rules! data {
    ($name:literal) => {
        include_bytes!(concat!("data/pubkey/", $name)).as_slice()
    };
}

fn cert(pem: &[u8]) -> Certificate {
    Certificate::from_pem(pem).expect("test certificate parses")
}

fn key(pem: &[u8]) -> PrivateKey {
    PrivateKey::from_pkcs8_pem(pem).expect("test key parses")
}

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("test vector is valid hex")
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([7; 32])
}

/// 2026-06-01T00:00:00Z: inside every test certificate's validity.
const NOW: u64 = 1_780_272_000;
/// 2025-02-01T00:00:00Z, the leaves' notBefore.
const LEAF_NOT_BEFORE: u64 = 1_738_368_000;
/// 2030-02-01T00:00:00Z, the leaves' notAfter.
const LEAF_NOT_AFTER: u64 = 1_896_134_400;

const OCTETS: &[u8] = data!("octets.bin");

/// RFC 7427 AUTH data: length octet, AlgorithmIdentifier, signature.
fn auth_data(alg_id: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(alg_id.len()).expect("short AlgorithmIdentifier")];
    out.extend_from_slice(alg_id);
    out.extend_from_slice(signature);
    out
}

// ------------------------------------------------ RFC 7427 known answers

/// RFC 7427 Appendix A (and RFC 8420 / RFC 8410 for Ed25519), as printed
/// there; PSS with SHA-384/512 is A.4.3 with the hash and salt changed.
const APPENDIX_A: &[(SignatureScheme, &str)] = &[
    // A.1.2 sha256WithRSAEncryption
    (SignatureScheme::RsaPkcs1Sha256, "300d 0609 2a86 4886 f70d 0101 0b05 00"),
    // A.1.3 sha384WithRSAEncryption
    (SignatureScheme::RsaPkcs1Sha384, "300d 0609 2a86 4886 f70d 0101 0c05 00"),
    // A.1.4 sha512WithRSAEncryption
    (SignatureScheme::RsaPkcs1Sha512, "300d 0609 2a86 4886 f70d 0101 0d05 00"),
    // A.3.2 ecdsa-with-sha256
    (SignatureScheme::EcdsaSha256, "300a 0608 2a86 48ce 3d04 0302"),
    // A.3.3 ecdsa-with-sha384
    (SignatureScheme::EcdsaSha384, "300a 0608 2a86 48ce 3d04 0303"),
    // A.3.4 ecdsa-with-sha512
    (SignatureScheme::EcdsaSha512, "300a 0608 2a86 48ce 3d04 0304"),
    // A.4.3 RSASSA-PSS with SHA-256
    (
        SignatureScheme::RsaPssSha256,
        "3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500
         a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203
         0201 20",
    ),
    (
        SignatureScheme::RsaPssSha384,
        "3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0202 0500
         a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0202 0500 a203
         0201 30",
    ),
    (
        SignatureScheme::RsaPssSha512,
        "3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0203 0500
         a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0203 0500 a203
         0201 40",
    ),
    // id-Ed25519, parameters absent.
    (SignatureScheme::Ed25519, "3005 0603 2b65 70"),
];

#[test]
fn emits_rfc7427_appendix_a_algorithm_identifiers() {
    for &(scheme, hex) in APPENDIX_A {
        assert_eq!(scheme.algorithm_identifier(), h(hex), "{scheme:?}");
    }
    assert_eq!(APPENDIX_A.len(), SignatureScheme::ALL.len(), "every scheme has a known answer");
}

#[test]
fn algorithm_identifiers_match_what_openssl_puts_in_certificates() {
    // Each certificate's signatureAlgorithm, as OpenSSL encoded it, equals ours.
    let cases: &[(&[u8], SignatureScheme)] = &[
        (data!("leaf-rsa-pkcs1-sha256.pem"), SignatureScheme::RsaPkcs1Sha256),
        (data!("leaf-rsa-pkcs1-sha384.pem"), SignatureScheme::RsaPkcs1Sha384),
        (data!("leaf-rsa-pkcs1-sha512.pem"), SignatureScheme::RsaPkcs1Sha512),
        (data!("leaf-rsa-pss-sha256.pem"), SignatureScheme::RsaPssSha256),
        (data!("leaf-rsa-pss-sha384.pem"), SignatureScheme::RsaPssSha384),
        (data!("leaf-rsa-pss-sha512.pem"), SignatureScheme::RsaPssSha512),
        (data!("int-ec.pem"), SignatureScheme::EcdsaSha256),
        (data!("leaf-ec.pem"), SignatureScheme::EcdsaSha384),
        (data!("leaf-by-ed.pem"), SignatureScheme::Ed25519),
    ];
    for &(pem, scheme) in cases {
        let der = cert(pem).der().to_vec();
        let alg = scheme.algorithm_identifier();
        let count = der.windows(alg.len()).filter(|w| *w == alg).count();
        assert_eq!(count, 2, "{scheme:?}: once in the TBS, once outside");
    }
}

#[test]
fn scheme_hashes_are_the_rfc7427_registry_values() {
    use SignatureScheme as S;
    for (scheme, hash) in [(S::EcdsaSha256, 2), (S::RsaPssSha384, 3), (S::RsaPkcs1Sha512, 4), (S::Ed25519, 5)]
    {
        assert_eq!(scheme.hash(), HashAlgorithm(hash));
    }
    assert!(SignatureScheme::ALL.iter().all(|s| SUPPORTED_HASH_ALGORITHMS.contains(&s.hash())));
}

// ------------------------------------------- AUTH data made by OpenSSL

#[test]
fn accepts_auth_signatures_made_by_openssl() {
    let leaf_ec = cert(data!("leaf-ec.pem"));
    let leaf_p384 = cert(data!("leaf-p384.pem"));
    let leaf_rsa = cert(data!("leaf-rsa-pss-sha256.pem"));
    let leaf_ed = cert(data!("leaf-ed.pem"));
    let cases: &[(&Certificate, SignatureScheme, &[u8])] = &[
        (&leaf_ec, SignatureScheme::EcdsaSha256, data!("octets.leaf-ec.ecdsa-sha256.sig")),
        (&leaf_p384, SignatureScheme::EcdsaSha384, data!("octets.leaf-p384.ecdsa-sha384.sig")),
        (&leaf_rsa, SignatureScheme::RsaPssSha256, data!("octets.leaf-rsa.pss-sha256.sig")),
        (&leaf_rsa, SignatureScheme::RsaPkcs1Sha512, data!("octets.leaf-rsa.pkcs1-sha512.sig")),
        (&leaf_ed, SignatureScheme::Ed25519, data!("octets.leaf-ed.ed25519.sig")),
    ];
    for &(cert, scheme, sig) in cases {
        let public = cert.public_key().expect("supported key");
        let auth = auth_data(scheme.algorithm_identifier(), sig);
        let verified = verify_auth(public, AuthMethod::DIGITAL_SIGNATURE, &auth, OCTETS)
            .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
        assert_eq!(verified.scheme(), Some(scheme));
        assert_eq!(verified.method(), AuthMethod::DIGITAL_SIGNATURE);
        let mut other = OCTETS.to_vec();
        other[0] ^= 1;
        assert_eq!(
            verify_auth(public, AuthMethod::DIGITAL_SIGNATURE, &auth, &other).map(|_| ()),
            Err(Error::AuthenticationFailed),
            "{scheme:?}"
        );
    }
}

#[test]
fn accepts_legacy_auth_methods_made_by_openssl() {
    // Method 10: ECDSA P-384 with SHA-384, r | s (OpenSSL writes DER).
    let leaf_p384 = cert(data!("leaf-p384.pem"));
    let der = p384::ecdsa::Signature::from_der(data!("octets.leaf-p384.ecdsa-sha384.sig")).expect("DER");
    let fixed = der.to_bytes();
    let public = leaf_p384.public_key().expect("P-384");
    let verified = verify_auth(public, AuthMethod::ECDSA_384, &fixed, OCTETS).expect("method 10");
    assert_eq!(verified.scheme(), Some(SignatureScheme::EcdsaSha384));
    // The same signature in DER is not method 10's format, nor is P-384 method 9.
    let err = verify_auth(public, AuthMethod::ECDSA_384, data!("octets.leaf-p384.ecdsa-sha384.sig"), OCTETS);
    assert_eq!(err.map(|_| ()), Err(Error::AuthenticationFailed));
    let err = verify_auth(public, AuthMethod::ECDSA_256, &fixed, OCTETS);
    assert_eq!(err.map(|_| ()), Err(Error::AuthenticationFailed));

    // Method 9: ECDSA P-256 with SHA-256.
    let leaf_ec = cert(data!("leaf-ec.pem"));
    let der = p256::ecdsa::Signature::from_der(data!("octets.leaf-ec.ecdsa-sha256.sig")).expect("DER");
    let public = leaf_ec.public_key().expect("P-256");
    assert!(verify_auth(public, AuthMethod::ECDSA_256, &der.to_bytes(), OCTETS).is_ok());

    // Method 1: RSASSA-PKCS1-v1_5 with SHA-1.
    let leaf_rsa = cert(data!("leaf-rsa-pss-sha256.pem"));
    let public = leaf_rsa.public_key().expect("RSA");
    let verified = verify_auth(public, AuthMethod::RSA, data!("octets.leaf-rsa.pkcs1-sha1.sig"), OCTETS)
        .expect("method 1");
    assert_eq!((verified.method(), verified.scheme()), (AuthMethod::RSA, None));
    let sha512 = data!("octets.leaf-rsa.pkcs1-sha512.sig");
    assert_eq!(
        verify_auth(public, AuthMethod::RSA, sha512, OCTETS).map(|_| ()),
        Err(Error::AuthenticationFailed)
    );
}

// ------------------------------------------------------ round trips

/// Every key file with its kind and certificate.
fn keys() -> Vec<(PrivateKey, KeyKind, Certificate)> {
    vec![
        (key(data!("leaf-ec.key")), KeyKind::EcdsaP256, cert(data!("leaf-ec.pem"))),
        (key(data!("leaf-p384.key")), KeyKind::EcdsaP384, cert(data!("leaf-p384.pem"))),
        (key(data!("leaf-ed.key")), KeyKind::Ed25519, cert(data!("leaf-ed.pem"))),
        (key(data!("leaf-rsa.key")), KeyKind::Rsa, cert(data!("leaf-rsa-pss-sha256.pem"))),
    ]
}

#[test]
fn round_trips_every_scheme_of_every_key_type() {
    let mut rng = rng();
    for (private, kind, cert) in keys() {
        assert_eq!(private.kind(), kind);
        let public = cert.public_key().expect("supported key");
        assert_eq!(private.public_key(), *public, "{kind:?}: the key matches its certificate");
        assert_eq!(public.kind(), kind);
        let schemes: Vec<_> = SignatureScheme::ALL.into_iter().filter(|s| kind.supports(*s)).collect();
        assert!(!schemes.is_empty());
        for scheme in schemes {
            let auth = private.sign_auth(scheme, OCTETS, &mut rng).expect("signs");
            assert_eq!(auth[0] as usize, scheme.algorithm_identifier().len());
            assert_eq!(&auth[1..=auth[0] as usize], scheme.algorithm_identifier());
            let verified = verify_auth(public, AuthMethod::DIGITAL_SIGNATURE, &auth, OCTETS)
                .unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
            assert_eq!(verified.scheme(), Some(scheme));
        }
    }
}

#[test]
fn signs_ecdsa_auth_as_der_ecdsa_sig_value() {
    let private = key(data!("leaf-ec.key"));
    let auth = private.sign_auth(SignatureScheme::EcdsaSha256, OCTETS, &mut rng()).expect("signs");
    let signature = &auth[1 + auth[0] as usize..];
    assert_eq!(signature[0], 0x30, "a DER SEQUENCE, not r | s");
    assert!(p256::ecdsa::Signature::from_der(signature).is_ok());
}

#[test]
fn round_trips_legacy_ecdsa_methods() {
    let mut rng = rng();
    for (private, kind, cert) in keys() {
        let public = cert.public_key().expect("supported key");
        match private.sign_auth_legacy(OCTETS, &mut rng) {
            Ok((method, auth)) => {
                let (want, len) = match kind {
                    KeyKind::EcdsaP256 => (AuthMethod::ECDSA_256, 64),
                    _ => (AuthMethod::ECDSA_384, 96),
                };
                assert_eq!((method, auth.len()), (want, len));
                assert!(verify_auth(public, method, &auth, OCTETS).is_ok());
            }
            Err(e) => {
                assert!(matches!(kind, KeyKind::Ed25519 | KeyKind::Rsa), "{kind:?}");
                assert!(matches!(e, Error::UnsupportedKey(_)));
            }
        }
    }
}

#[test]
fn rejects_tampered_signatures_and_other_signed_octets() {
    let mut rng = rng();
    for (private, kind, cert) in keys() {
        let public = cert.public_key().expect("supported key");
        let scheme = kind.preferred_schemes()[0];
        let auth = private.sign_auth(scheme, OCTETS, &mut rng).expect("signs");
        let mut tampered = auth.clone();
        *tampered.last_mut().expect("non-empty") ^= 0x01;
        let mut other = OCTETS.to_vec();
        other.push(0);
        let mut truncated = auth.clone();
        truncated.pop();
        for (data, octets) in [(&tampered, OCTETS), (&auth, &other[..]), (&truncated, OCTETS)] {
            let result = verify_auth(public, AuthMethod::DIGITAL_SIGNATURE, data, octets);
            assert_eq!(result.map(|_| ()), Err(Error::AuthenticationFailed), "{kind:?}");
        }
    }
}

#[test]
fn rejects_signatures_by_another_key_or_of_another_kind() {
    let mut rng = rng();
    let keys = keys();
    for (private, kind, _) in &keys {
        let auth = private.sign_auth(kind.preferred_schemes()[0], OCTETS, &mut rng).expect("signs");
        for (_, other_kind, other_cert) in &keys {
            if other_kind == kind {
                continue;
            }
            let public = other_cert.public_key().expect("supported key");
            let result = verify_auth(public, AuthMethod::DIGITAL_SIGNATURE, &auth, OCTETS);
            assert_eq!(result.map(|_| ()), Err(Error::AuthenticationFailed), "{kind:?} by {other_kind:?}");
        }
    }
    // The same kind, another key: P-256 leaf signature against the root's key.
    let auth = keys[0].0.sign_auth(SignatureScheme::EcdsaSha256, OCTETS, &mut rng).expect("signs");
    let root = cert(data!("root-ec.pem"));
    let result = verify_auth(root.public_key().expect("P-256"), AuthMethod::DIGITAL_SIGNATURE, &auth, OCTETS);
    assert_eq!(result.map(|_| ()), Err(Error::AuthenticationFailed));
}

#[test]
fn refuses_to_sign_with_a_scheme_unfit_for_the_key() {
    let private = key(data!("leaf-ed.key"));
    let result = private.sign_auth(SignatureScheme::EcdsaSha256, OCTETS, &mut rng());
    assert!(matches!(result, Err(Error::UnsupportedKey(_))));
}

#[test]
fn rejects_malformed_or_unsupported_auth_data() {
    let public = cert(data!("leaf-ec.pem")).public_key().expect("P-256").clone();
    let m = AuthMethod::DIGITAL_SIGNATURE;
    assert!(matches!(verify_auth(&public, m, &[], OCTETS), Err(Error::InvalidSyntax(_))));
    // The length octet points past the end.
    assert!(matches!(verify_auth(&public, m, &[12, 0x30, 0x0a], OCTETS), Err(Error::InvalidSyntax(_))));
    // ecdsa-with-SHA1 (RFC 7427 A.3.1) and sha1WithRSAEncryption (A.1.1).
    let sha1 = auth_data(&h("3009 0607 2a86 48ce 3d04 01"), &[0x30, 0]);
    assert!(matches!(verify_auth(&public, m, &sha1, OCTETS), Err(Error::UnsupportedKey(_))));
    let sha1 = auth_data(&h("300d 0609 2a86 4886 f70d 0101 0505 00"), &[0; 256]);
    assert!(matches!(verify_auth(&public, m, &sha1, OCTETS), Err(Error::UnsupportedKey(_))));
    // Methods Tandem does not verify.
    for method in [AuthMethod::SHARED_KEY_MIC, AuthMethod::DSS, AuthMethod::ECDSA_521, AuthMethod(200)] {
        assert!(matches!(verify_auth(&public, method, &[0; 64], OCTETS), Err(Error::UnsupportedKey(_))));
    }
}

// -------------------------------------------------------- private keys

#[test]
fn loads_pkcs8_from_pem_and_der_alike() {
    let from_pem = key(data!("leaf-ec.key"));
    let from_der = PrivateKey::from_pkcs8_der(data!("leaf-ec.key.der")).expect("DER key parses");
    assert_eq!(from_pem.public_key(), from_der.public_key());
    assert_eq!(from_pem.public_key().spki_der(), cert(data!("leaf-ec.pem")).spki_der());
}

#[test]
fn private_key_debug_shows_only_the_kind() {
    for (private, kind, _) in keys() {
        assert_eq!(format!("{private:?}"), format!("PrivateKey({kind:?})"));
    }
}

#[test]
fn rejects_malformed_private_keys() {
    assert!(matches!(PrivateKey::from_pkcs8_der(&[]), Err(Error::InvalidKey(_))));
    assert!(matches!(PrivateKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]), Err(Error::InvalidKey(_))));
    assert!(matches!(PrivateKey::from_pkcs8_pem(b"not PEM"), Err(Error::InvalidKey(_))));
    // A certificate is no private key.
    assert!(matches!(PrivateKey::from_pkcs8_pem(data!("root-ec.pem")), Err(Error::InvalidKey(_))));
    let mut der = data!("leaf-ec.key.der").to_vec();
    let last = der.len() - 1;
    der[last] ^= 0xff; // the embedded public key no longer matches, or no longer parses
    der.truncate(last - 4);
    assert!(PrivateKey::from_pkcs8_der(&der).is_err());
}

// -------------------------------------------------------- certificates

#[test]
fn parses_certificate_fields() {
    let leaf = cert(data!("leaf-ec.pem"));
    assert_eq!(leaf.subject(), "CN=gw.example.test,O=Tandem Test,C=ZZ");
    assert_eq!(leaf.not_before(), LEAF_NOT_BEFORE);
    assert_eq!(leaf.not_after(), LEAF_NOT_AFTER);
    assert_eq!(
        leaf.alt_names(),
        [
            AltName::Dns("gw.example.test".into()),
            AltName::Dns("VPN.Example.Test".into()),
            AltName::Email("admin@example.test".into()),
            AltName::Ip("192.0.2.1".parse().expect("IPv4")),
            AltName::Ip("2001:db8::1".parse().expect("IPv6")),
        ]
    );
    assert!(!leaf.is_ca());
    assert_eq!(leaf.public_key().map(PublicKey::kind), Ok(KeyKind::EcdsaP256));
    let int = cert(data!("int-ec.pem"));
    assert!(int.is_ca());
    assert_eq!(leaf.issuer_der(), int.subject_der());
    assert_eq!(int.public_key().map(PublicKey::kind), Ok(KeyKind::EcdsaP384));
    assert_eq!(cert(data!("root-rsa.pem")).public_key().map(PublicKey::kind), Ok(KeyKind::Rsa));
    assert_eq!(cert(data!("root-ed.pem")).public_key().map(PublicKey::kind), Ok(KeyKind::Ed25519));
    // DER in, DER out.
    assert_eq!(Certificate::from_der(leaf.der()).map(|c| c.der().to_vec()), Ok(leaf.der().to_vec()));
}

#[test]
fn parses_pem_bundles_and_refuses_several_where_one_is_wanted() {
    let mut bundle = data!("root-ec.pem").to_vec();
    bundle.extend_from_slice(b"# comment between blocks\n");
    bundle.extend_from_slice(data!("root-rsa.pem"));
    let all = Certificate::from_pem_bundle(&bundle).expect("bundle parses");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].subject(), "CN=Tandem Test Root RSA");
    assert!(matches!(Certificate::from_pem(&bundle), Err(Error::CertificateInvalid(_))));
    assert!(matches!(Certificate::from_pem(b""), Err(Error::CertificateInvalid(_))));
}

#[test]
fn verifies_self_signatures_of_every_root() {
    for pem in [data!("root-ec.pem"), data!("root-rsa.pem"), data!("root-ed.pem")] {
        let root = cert(pem);
        assert_eq!(root.verify_signature_by(&root), Ok(()), "{}", root.subject());
    }
}

#[test]
fn computes_certreq_hashes_as_openssl_does() {
    let want: Vec<(&str, Vec<u8>)> = include_str!("data/pubkey/certreq-sha1.txt")
        .lines()
        .map(|l| l.split_once(' ').map(|(name, hash)| (name, h(hash))).expect("name hash"))
        .collect();
    let cas = [
        cert(data!("root-ec.pem")),
        cert(data!("int-ec.pem")),
        cert(data!("root-rsa.pem")),
        cert(data!("root-ed.pem")),
    ];
    for ((name, hash), ca) in want.iter().zip(&cas) {
        assert_eq!(certreq_hash(ca).to_vec(), *hash, "{name}");
    }
    let data = certreq_data(&cas);
    assert_eq!(data.len(), 80);
    assert_eq!(parse_certreq_data(&data), Ok(cas.iter().map(certreq_hash).collect()));
}

// ------------------------------------------------------------- chains

struct Pki {
    root_ec: Certificate,
    int_ec: Certificate,
    root_rsa: Certificate,
    root_ed: Certificate,
}

fn pki() -> Pki {
    Pki {
        root_ec: cert(data!("root-ec.pem")),
        int_ec: cert(data!("int-ec.pem")),
        root_rsa: cert(data!("root-rsa.pem")),
        root_ed: cert(data!("root-ed.pem")),
    }
}

impl Pki {
    fn roots(&self) -> Vec<Certificate> {
        vec![self.root_rsa.clone(), self.root_ec.clone(), self.root_ed.clone()]
    }
}

#[test]
fn accepts_a_valid_chain() {
    let pki = pki();
    let leaf = cert(data!("leaf-ec.pem"));
    let verified = verify_chain(&leaf, std::slice::from_ref(&pki.int_ec), &pki.roots(), NOW).expect("valid");
    assert_eq!((verified.anchor(), verified.intermediates()), (1, 1));
    // Order and extra certificates do not matter.
    let noise = [cert(data!("leaf-rsa-pss-sha256.pem")), cert(data!("evil-int.pem")), pki.int_ec.clone()];
    assert!(verify_chain(&leaf, &noise, &pki.roots(), NOW).is_ok());
    // At the edges of the validity period.
    for now in [LEAF_NOT_BEFORE, LEAF_NOT_AFTER] {
        assert!(verify_chain(&leaf, std::slice::from_ref(&pki.int_ec), &pki.roots(), now).is_ok());
    }
}

#[test]
fn accepts_chains_signed_with_every_certificate_scheme() {
    let pki = pki();
    let int = std::slice::from_ref(&pki.int_ec);
    let cases: &[(&[u8], &[Certificate])] = &[
        (data!("leaf-ed.pem"), int),    // P-384 CA, ecdsa-with-SHA256
        (data!("leaf-by-ed.pem"), &[]), // Ed25519 CA
        (data!("leaf-p384.pem"), &[]),  // sha512WithRSAEncryption
        (data!("leaf-rsa-pkcs1-sha256.pem"), &[]),
        (data!("leaf-rsa-pkcs1-sha384.pem"), &[]),
        (data!("leaf-rsa-pkcs1-sha512.pem"), &[]),
        (data!("leaf-rsa-pss-sha256.pem"), &[]),
        (data!("leaf-rsa-pss-sha384.pem"), &[]),
        (data!("leaf-rsa-pss-sha512.pem"), &[]),
    ];
    for &(pem, intermediates) in cases {
        let leaf = cert(pem);
        let result = verify_chain(&leaf, intermediates, &pki.roots(), NOW);
        assert!(result.is_ok(), "{}: {result:?}", leaf.subject());
    }
}

#[test]
fn rejects_expired_and_not_yet_valid_certificates() {
    let pki = pki();
    let leaf = cert(data!("leaf-ec.pem"));
    let int = std::slice::from_ref(&pki.int_ec);
    assert_eq!(verify_chain(&leaf, int, &pki.roots(), LEAF_NOT_AFTER + 1), Err(Error::CertificateExpired));
    assert_eq!(
        verify_chain(&leaf, int, &pki.roots(), LEAF_NOT_BEFORE - 1),
        Err(Error::CertificateNotYetValid)
    );
    // A valid leaf below an intermediate that has expired.
    let outlives = cert(data!("leaf-outlives-ca.pem"));
    let short = [cert(data!("int-short.pem"))];
    assert_eq!(verify_chain(&outlives, &short, &pki.roots(), NOW), Err(Error::CertificateExpired));
    assert!(verify_chain(&outlives, &short, &pki.roots(), LEAF_NOT_BEFORE).is_ok());
    assert_eq!(
        verify_chain(&leaf, int, &pki.roots(), u64::MAX),
        Err(Error::CertificateExpired),
        "no overflow at the end of time"
    );
}

#[test]
fn rejects_chains_to_untrusted_cas() {
    let pki = pki();
    let leaf = cert(data!("leaf-ec.pem"));
    let int = std::slice::from_ref(&pki.int_ec);
    // Issued by another root.
    let other = cert(data!("leaf-other.pem"));
    let root_other = cert(data!("root-other.pem"));
    assert_eq!(verify_chain(&other, &[root_other], &pki.roots(), NOW), Err(Error::Untrusted));
    // The right intermediate, but its root is not trusted.
    assert_eq!(verify_chain(&leaf, int, std::slice::from_ref(&pki.root_rsa), NOW), Err(Error::Untrusted));
    // No intermediate sent; nothing trusted at all.
    assert_eq!(verify_chain(&leaf, &[], &pki.roots(), NOW), Err(Error::Untrusted));
    assert_eq!(verify_chain(&leaf, int, &[], NOW), Err(Error::Untrusted));
    // Whatever CA is configured as trusted is an anchor, intermediates too.
    assert!(verify_chain(&leaf, &[], int, NOW).is_ok());
}

#[test]
fn rejects_a_wrong_issuer_signature() {
    let pki = pki();
    // Issued in the intermediate's name by another key.
    let forged = cert(data!("leaf-forged.pem"));
    let int = std::slice::from_ref(&pki.int_ec);
    assert_eq!(verify_chain(&forged, int, &pki.roots(), NOW), Err(Error::SignatureInvalid));
    // With the look-alike intermediate that did sign it, its root is unknown.
    let both = [cert(data!("evil-int.pem")), pki.int_ec.clone()];
    assert!(verify_chain(&forged, &both, &pki.roots(), NOW).is_err());
    // A genuine certificate with one signature bit flipped.
    let leaf = cert(data!("leaf-ec.pem"));
    let mut der = leaf.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let tampered = Certificate::from_der(&der).expect("still well-formed");
    assert_eq!(verify_chain(&tampered, int, &pki.roots(), NOW), Err(Error::SignatureInvalid));
    // And a flipped bit in the signed part.
    let mut der = leaf.der().to_vec();
    let at = der.windows(15).position(|w| w == b"gw.example.test").expect("subject CN");
    der[at] = b'G';
    let tampered = Certificate::from_der(&der).expect("still well-formed");
    assert_eq!(verify_chain(&tampered, int, &pki.roots(), NOW), Err(Error::SignatureInvalid));
}

#[test]
fn rejects_a_leaf_used_as_ca() {
    let pki = pki();
    let below_leaf = cert(data!("leaf-as-ca.pem"));
    let chain = [cert(data!("leaf-ec.pem")), pki.int_ec.clone()];
    assert_eq!(
        verify_chain(&below_leaf, &chain, &pki.roots(), NOW),
        Err(Error::CertificateInvalid("issuer is not a CA"))
    );
}

#[test]
fn rejects_a_path_longer_than_path_len_constraint_allows() {
    let pki = pki();
    let deep = cert(data!("leaf-below-pathlen.pem"));
    let chain = [cert(data!("sub-ca.pem")), pki.int_ec.clone()];
    assert_eq!(
        verify_chain(&deep, &chain, &pki.roots(), NOW),
        Err(Error::CertificateInvalid("path length constraint exceeded"))
    );
}

#[test]
fn rejects_unknown_critical_extensions_and_unfit_key_usage() {
    let pki = pki();
    let int = std::slice::from_ref(&pki.int_ec);
    let critical = cert(data!("leaf-critical.pem"));
    assert_eq!(
        verify_chain(&critical, int, &pki.roots(), NOW),
        Err(Error::CertificateInvalid("unsupported critical extension"))
    );
    let encipher = cert(data!("leaf-encipher.pem"));
    assert_eq!(
        verify_chain(&encipher, int, &pki.roots(), NOW),
        Err(Error::CertificateInvalid("key usage forbids signatures"))
    );
}

#[test]
fn trusts_a_pinned_end_entity_certificate_directly() {
    let pki = pki();
    let other = cert(data!("leaf-other.pem"));
    let trusted = [pki.root_ec.clone(), other.clone()];
    let verified = verify_chain(&other, &[], &trusted, NOW).expect("pinned");
    assert_eq!((verified.anchor(), verified.intermediates()), (1, 0));
    // Pinning does not make it an issuer.
    let below = cert(data!("leaf-as-ca.pem"));
    assert!(verify_chain(&below, &[], &[other], NOW).is_err());
}

// ------------------------------------------------------------ identities

#[test]
fn matches_identities_against_subject_alt_names_and_the_dn() {
    let leaf = cert(data!("leaf-ec.pem"));
    let yes: &[(IdType, &[u8])] = &[
        (IdType::ID_FQDN, b"gw.example.test"),
        (IdType::ID_FQDN, b"GW.EXAMPLE.TEST"),
        (IdType::ID_FQDN, b"vpn.example.test"),
        (IdType::ID_RFC822_ADDR, b"admin@example.test"),
        (IdType::ID_RFC822_ADDR, b"admin@EXAMPLE.test"),
        (IdType::ID_IPV4_ADDR, &[192, 0, 2, 1]),
        (IdType::ID_IPV6_ADDR, &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        (IdType::ID_DER_ASN1_DN, leaf.subject_der()),
    ];
    for &(ty, data) in yes {
        assert!(matches_identity(&leaf, ty, data), "{ty:?} {}", String::from_utf8_lossy(data));
        assert!(leaf.matches_identity(ty, data));
    }
    let no: &[(IdType, &[u8])] = &[
        (IdType::ID_FQDN, b"other.example.test"),
        (IdType::ID_FQDN, b"gw.example.test."),
        (IdType::ID_FQDN, b"example.test"),
        (IdType::ID_FQDN, b""),
        (IdType::ID_RFC822_ADDR, b"Admin@example.test"),
        (IdType::ID_RFC822_ADDR, b"gw.example.test"),
        (IdType::ID_IPV4_ADDR, &[192, 0, 2, 2]),
        (IdType::ID_IPV4_ADDR, &[192, 0, 2]),
        (IdType::ID_IPV6_ADDR, &[192, 0, 2, 1]),
        (IdType::ID_DER_ASN1_DN, leaf.issuer_der()),
        (IdType::ID_DER_ASN1_DN, &[0x30, 0x00]),
        (IdType::ID_KEY_ID, b"gw.example.test"),
        (IdType::ID_DER_ASN1_GN, b"gw.example.test"),
    ];
    for &(ty, data) in no {
        assert!(!matches_identity(&leaf, ty, data), "{ty:?} {}", String::from_utf8_lossy(data));
    }
    // Never from the common name: CN=sub.example.test, SAN other.example.test.
    let cn_only = cert(data!("leaf-as-ca.pem"));
    assert!(!matches_identity(&cn_only, IdType::ID_FQDN, b"sub.example.test"));
    assert!(matches_identity(&cn_only, IdType::ID_FQDN, b"other.example.test"));
}

// ------------------------------------------------------- never panics

/// Every certificate of the test PKI, DER.
fn all_certificates() -> Vec<Vec<u8>> {
    [
        data!("root-ec.pem"),
        data!("int-ec.pem"),
        data!("leaf-ec.pem"),
        data!("leaf-ed.pem"),
        data!("root-rsa.pem"),
        data!("leaf-rsa-pss-sha384.pem"),
        data!("root-ed.pem"),
        data!("leaf-critical.pem"),
    ]
    .iter()
    .map(|pem| cert(pem).der().to_vec())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn from_der_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let _ = Certificate::from_der(&bytes);
        let _ = PublicKey::from_spki_der(&bytes);
        let _ = PrivateKey::from_pkcs8_der(&bytes);
    }

    #[test]
    fn from_der_never_panics_on_mutated_certificates(
        which in 0usize..8,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut der = all_certificates().swap_remove(which);
        for (at, byte, op) in edits {
            let i = at.index(der.len().max(1));
            match op {
                0 if i < der.len() => der[i] = byte,
                1 if i < der.len() => der[i] ^= 1 << (byte % 8),
                2 => der.insert(i.min(der.len()), byte),
                _ => der.truncate(i),
            }
        }
        if let Ok(cert) = Certificate::from_der(&der) {
            let pki = pki();
            let _ = verify_chain(&cert, std::slice::from_ref(&pki.int_ec), &pki.roots(), NOW);
            let _ = matches_identity(&cert, IdType::ID_FQDN, b"gw.example.test");
            let _ = certreq_hash(&cert);
        }
    }

    #[test]
    fn verify_auth_never_panics_on_arbitrary_auth_data(
        method in prop::sample::select(vec![1u8, 9, 10, 14]),
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        for pem in [data!("leaf-ec.pem"), data!("leaf-p384.pem"), data!("leaf-ed.pem"), data!("root-rsa.pem")] {
            let cert = cert(pem);
            let public = cert.public_key().expect("supported key");
            prop_assert!(verify_auth(public, AuthMethod(method), &data, OCTETS).is_err());
        }
    }

    #[test]
    fn round_trips_signature_hash_algorithms(hashes in proptest::collection::vec(any::<u16>(), 0..16)) {
        let hashes: Vec<_> = hashes.into_iter().map(HashAlgorithm).collect();
        let data = signature_hash_algorithms_data(&hashes);
        prop_assert_eq!(parse_signature_hash_algorithms(&data), Ok(hashes));
    }
}
