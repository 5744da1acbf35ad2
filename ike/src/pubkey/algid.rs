//! Signature schemes and their ASN.1 AlgorithmIdentifiers (RFC 7427
//! section 3 and Appendix A, RFC 8420, RFC 4055), with the small DER reader
//! the rest of the module uses to find raw fields in certificates.

use super::HashAlgorithm;
use crate::Error;

/// A signature algorithm Tandem signs and verifies with: the key type, the
/// padding (for RSA) and the hash.
///
/// ECDSA works with either supported curve and any of the three hashes
/// (RFC 7427 unties the hash from the curve); RSA-PSS uses MGF1 with the
/// same hash and, when Tandem signs, a salt as long as the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// ECDSA with SHA-256 (`ecdsa-with-SHA256`).
    EcdsaSha256,
    /// ECDSA with SHA-384 (`ecdsa-with-SHA384`).
    EcdsaSha384,
    /// ECDSA with SHA-512 (`ecdsa-with-SHA512`).
    EcdsaSha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-octet salt.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-octet salt.
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-octet salt.
    RsaPssSha512,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`sha256WithRSAEncryption`).
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (`sha384WithRSAEncryption`).
    RsaPkcs1Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (`sha512WithRSAEncryption`).
    RsaPkcs1Sha512,
    /// PureEdDSA over edwards25519 (RFC 8032, RFC 8420).
    Ed25519,
}

/// `ecdsa-with-SHA256`, no parameters (RFC 7427 A.3.2).
const ECDSA_SHA256: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// `ecdsa-with-SHA384`, no parameters (RFC 7427 A.3.3).
const ECDSA_SHA384: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// `ecdsa-with-SHA512`, no parameters (RFC 7427 A.3.4).
const ECDSA_SHA512: &[u8] = &[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
/// `sha256WithRSAEncryption`, NULL parameters (RFC 7427 A.1.2).
const RSA_PKCS1_SHA256: &[u8] =
    &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00];
/// `sha384WithRSAEncryption`, NULL parameters (RFC 7427 A.1.3).
const RSA_PKCS1_SHA384: &[u8] =
    &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00];
/// `sha512WithRSAEncryption`, NULL parameters (RFC 7427 A.1.4).
const RSA_PKCS1_SHA512: &[u8] =
    &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00];
/// `id-RSASSA-PSS` with SHA-256, MGF1-SHA-256, salt 32 (RFC 7427 A.4.3).
const RSA_PSS_SHA256: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c,
    0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
];
/// The same shape as [`RSA_PSS_SHA256`] with SHA-384 and salt 48.
const RSA_PSS_SHA384: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa1, 0x1c,
    0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x30,
];
/// The same shape as [`RSA_PSS_SHA256`] with SHA-512 and salt 64.
const RSA_PSS_SHA512: &[u8] = &[
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34, 0xa0, 0x0f,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0xa1, 0x1c,
    0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09,
    0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x40,
];
/// `id-Ed25519`, parameters absent (RFC 8410 section 3, used by RFC 8420).
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

// Object identifier contents (the octets after the OID tag and length).
/// 1.2.840.10045.4.3.2
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 1.2.840.10045.4.3.3
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// 1.2.840.10045.4.3.4
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
/// 1.2.840.113549.1.1.11
const OID_RSA_PKCS1_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// 1.2.840.113549.1.1.12
const OID_RSA_PKCS1_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// 1.2.840.113549.1.1.13
const OID_RSA_PKCS1_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// 1.2.840.113549.1.1.10 (id-RSASSA-PSS)
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// 1.2.840.113549.1.1.8 (id-mgf1)
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// 2.16.840.1.101.3.4.2.1
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// 2.16.840.1.101.3.4.2.2
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// 2.16.840.1.101.3.4.2.3
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
/// 1.3.101.112
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// DER tags used here.
pub(crate) mod tag {
    /// INTEGER.
    pub(crate) const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub(crate) const BIT_STRING: u8 = 0x03;
    /// NULL.
    pub(crate) const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub(crate) const OID: u8 = 0x06;
    /// SEQUENCE (constructed).
    pub(crate) const SEQUENCE: u8 = 0x30;
    /// `[n]` context-specific, constructed.
    pub(crate) const fn context(n: u8) -> u8 {
        0xa0 | n
    }
}

impl SignatureScheme {
    /// Every scheme, in no particular order.
    pub const ALL: [SignatureScheme; 10] = [
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::RsaPkcs1Sha256,
        Self::RsaPkcs1Sha384,
        Self::RsaPkcs1Sha512,
        Self::Ed25519,
    ];

    /// The hash this scheme signs with, as announced in
    /// SIGNATURE_HASH_ALGORITHMS (`IDENTITY` for Ed25519, RFC 8420).
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::EcdsaSha256 | Self::RsaPssSha256 | Self::RsaPkcs1Sha256 => HashAlgorithm::SHA2_256,
            Self::EcdsaSha384 | Self::RsaPssSha384 | Self::RsaPkcs1Sha384 => HashAlgorithm::SHA2_384,
            Self::EcdsaSha512 | Self::RsaPssSha512 | Self::RsaPkcs1Sha512 => HashAlgorithm::SHA2_512,
            Self::Ed25519 => HashAlgorithm::IDENTITY,
        }
    }

    /// The DER AlgorithmIdentifier Tandem puts in AUTH data (RFC 7427
    /// Appendix A encodings; RSA-PSS with SHA-384/512 follows A.4.3's shape).
    pub const fn algorithm_identifier(self) -> &'static [u8] {
        match self {
            Self::EcdsaSha256 => ECDSA_SHA256,
            Self::EcdsaSha384 => ECDSA_SHA384,
            Self::EcdsaSha512 => ECDSA_SHA512,
            Self::RsaPssSha256 => RSA_PSS_SHA256,
            Self::RsaPssSha384 => RSA_PSS_SHA384,
            Self::RsaPssSha512 => RSA_PSS_SHA512,
            Self::RsaPkcs1Sha256 => RSA_PKCS1_SHA256,
            Self::RsaPkcs1Sha384 => RSA_PKCS1_SHA384,
            Self::RsaPkcs1Sha512 => RSA_PKCS1_SHA512,
            Self::Ed25519 => ED25519,
        }
    }

    /// The salt length Tandem signs RSA-PSS with: the hash length.
    pub(crate) const fn default_salt_len(self) -> usize {
        match self.hash() {
            HashAlgorithm::SHA2_384 => 48,
            HashAlgorithm::SHA2_512 => 64,
            _ => 32,
        }
    }
}

/// A signature algorithm as received: the scheme and, for RSA-PSS, the salt
/// length the signer declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignatureAlgorithm {
    /// The scheme.
    pub(crate) scheme: SignatureScheme,
    /// The RSA-PSS salt length; unused by other schemes.
    pub(crate) salt_len: usize,
}

impl SignatureAlgorithm {
    /// The algorithm Tandem signs `scheme` with.
    pub(crate) const fn ours(scheme: SignatureScheme) -> Self {
        Self { scheme, salt_len: scheme.default_salt_len() }
    }

    /// Parses a DER AlgorithmIdentifier (all of `der`) naming a supported
    /// signature algorithm. Accepts what RFC 4055 and RFC 5758 allow
    /// (absent or NULL hash parameters, any PSS salt length); fails with
    /// [`Error::UnsupportedKey`] for well-formed but unsupported algorithms
    /// (SHA-1, DSA, an MGF1 hash other than the message hash...) and
    /// [`Error::InvalidSyntax`] for malformed DER.
    pub(crate) fn parse(der: &[u8]) -> Result<Self, Error> {
        let mut outer = Der::new(der);
        let mut alg = Der::new(outer.expect(tag::SEQUENCE)?);
        outer.finish()?;
        let oid = alg.expect(tag::OID)?;
        let simple = |scheme| Ok(Self::ours(scheme));
        match oid {
            OID_ECDSA_SHA256 | OID_ECDSA_SHA384 | OID_ECDSA_SHA512 | OID_ED25519 => {
                // RFC 5758 section 3.2, RFC 8410 section 3: parameters absent.
                alg.finish()?;
                simple(match oid {
                    OID_ECDSA_SHA256 => SignatureScheme::EcdsaSha256,
                    OID_ECDSA_SHA384 => SignatureScheme::EcdsaSha384,
                    OID_ECDSA_SHA512 => SignatureScheme::EcdsaSha512,
                    _ => SignatureScheme::Ed25519,
                })
            }
            OID_RSA_PKCS1_SHA256 | OID_RSA_PKCS1_SHA384 | OID_RSA_PKCS1_SHA512 => {
                // RFC 4055 section 5: NULL, but absent must be accepted too.
                alg.null_or_absent()?;
                simple(match oid {
                    OID_RSA_PKCS1_SHA256 => SignatureScheme::RsaPkcs1Sha256,
                    OID_RSA_PKCS1_SHA384 => SignatureScheme::RsaPkcs1Sha384,
                    _ => SignatureScheme::RsaPkcs1Sha512,
                })
            }
            OID_RSA_PSS => {
                let params = alg.expect(tag::SEQUENCE)?;
                alg.finish()?;
                parse_pss_params(params)
            }
            _ => Err(Error::UnsupportedKey("signature algorithm")),
        }
    }
}

/// RSASSA-PSS-params (RFC 4055 section 3.1): every field has a DEFAULT, the
/// defaults name SHA-1, which Tandem does not accept, so the hash and mask
/// generation function must be present; the MGF1 hash must be the hash.
fn parse_pss_params(params: &[u8]) -> Result<SignatureAlgorithm, Error> {
    let mut p = Der::new(params);
    let hash = match p.optional(tag::context(0))? {
        Some(body) => {
            let mut body = Der::new(body);
            let hash = parse_hash_algorithm(body.expect(tag::SEQUENCE)?)?;
            body.finish()?;
            hash
        }
        None => return Err(Error::UnsupportedKey("RSA-PSS with SHA-1")),
    };
    match p.optional(tag::context(1))? {
        Some(body) => {
            let mut body = Der::new(body);
            let mut mgf = Der::new(body.expect(tag::SEQUENCE)?);
            body.finish()?;
            if mgf.expect(tag::OID)? != OID_MGF1 {
                return Err(Error::UnsupportedKey("RSA-PSS mask generation function"));
            }
            let mgf_hash = parse_hash_algorithm(mgf.expect(tag::SEQUENCE)?)?;
            mgf.finish()?;
            if mgf_hash != hash {
                return Err(Error::UnsupportedKey("RSA-PSS with an MGF1 hash unlike the hash"));
            }
        }
        None => return Err(Error::UnsupportedKey("RSA-PSS with MGF1-SHA-1")),
    }
    let salt_len = match p.optional(tag::context(2))? {
        Some(body) => {
            let mut body = Der::new(body);
            let salt = body.small_uint()?;
            body.finish()?;
            salt
        }
        None => 20,
    };
    if let Some(body) = p.optional(tag::context(3))? {
        // trailerFieldBC(1) is the only value defined.
        let mut body = Der::new(body);
        if body.small_uint()? != 1 {
            return Err(Error::UnsupportedKey("RSA-PSS trailer field"));
        }
        body.finish()?;
    }
    p.finish()?;
    let scheme = match hash {
        HashAlgorithm::SHA2_256 => SignatureScheme::RsaPssSha256,
        HashAlgorithm::SHA2_384 => SignatureScheme::RsaPssSha384,
        _ => SignatureScheme::RsaPssSha512,
    };
    Ok(SignatureAlgorithm { scheme, salt_len })
}

/// A hash AlgorithmIdentifier's contents (OID, then NULL or nothing).
fn parse_hash_algorithm(body: &[u8]) -> Result<HashAlgorithm, Error> {
    let mut body = Der::new(body);
    let hash = match body.expect(tag::OID)? {
        OID_SHA256 => HashAlgorithm::SHA2_256,
        OID_SHA384 => HashAlgorithm::SHA2_384,
        OID_SHA512 => HashAlgorithm::SHA2_512,
        _ => return Err(Error::UnsupportedKey("hash algorithm")),
    };
    body.null_or_absent()?;
    Ok(hash)
}

/// A strict reader of DER TLVs over untrusted bytes: single-octet tags,
/// definite minimal lengths. Every failure is `InvalidSyntax`.
#[derive(Clone, Copy)]
pub(crate) struct Der<'a> {
    buf: &'a [u8],
}

/// The error of every malformed DER structure.
const MALFORMED: Error = Error::InvalidSyntax("malformed DER");

impl<'a> Der<'a> {
    /// A reader over `buf`.
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The next TLV: its tag, its contents and the whole TLV.
    pub(crate) fn next(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), Error> {
        let whole = self.buf;
        let (&tag, rest) = whole.split_first().ok_or(MALFORMED)?;
        if tag & 0x1f == 0x1f {
            return Err(MALFORMED); // high tag numbers: none used here
        }
        let (&first, mut rest) = rest.split_first().ok_or(MALFORMED)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(MALFORMED); // indefinite, or absurdly long
            }
            let (octets, tail) = rest.split_at_checked(n).ok_or(MALFORMED)?;
            rest = tail;
            let len = octets.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // Minimal: no leading zero octet, long form only from 128.
            if octets.first() == Some(&0) || len < 0x80 {
                return Err(MALFORMED);
            }
            len
        };
        let (contents, tail) = rest.split_at_checked(len).ok_or(MALFORMED)?;
        let header_len = whole.len() - rest.len();
        self.buf = tail;
        Ok((tag, contents, &whole[..header_len + len]))
    }

    /// The contents of the next TLV, which must have tag `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], Error> {
        self.expect_tlv(tag).map(|(contents, _)| contents)
    }

    /// The contents and whole TLV of the next TLV, which must have `tag`.
    pub(crate) fn expect_tlv(&mut self, tag: u8) -> Result<(&'a [u8], &'a [u8]), Error> {
        match self.next()? {
            (t, contents, whole) if t == tag => Ok((contents, whole)),
            _ => Err(MALFORMED),
        }
    }

    /// The contents of the next TLV if it has tag `tag`.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Error> {
        if self.buf.first() == Some(&tag) { self.expect(tag).map(Some) } else { Ok(None) }
    }

    /// Consumes an optional NULL, which must then be the last element.
    fn null_or_absent(&mut self) -> Result<(), Error> {
        match self.optional(tag::NULL)? {
            Some([]) | None => self.finish(),
            Some(_) => Err(MALFORMED),
        }
    }

    /// A non-negative INTEGER below 2^16.
    fn small_uint(&mut self) -> Result<usize, Error> {
        let int = self.expect(tag::INTEGER)?;
        let minimal = match int {
            [] => false,
            [0, next, ..] => *next >= 0x80,
            [first, ..] => *first < 0x80,
        };
        let value = int.iter().fold(0usize, |acc, &b| acc.saturating_mul(256).saturating_add(usize::from(b)));
        if !minimal || value > 0xffff {
            return Err(MALFORMED);
        }
        Ok(value)
    }

    /// Fails unless every octet was read.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() { Ok(()) } else { Err(MALFORMED) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_emitted_algorithm_identifier() {
        for scheme in SignatureScheme::ALL {
            let alg = SignatureAlgorithm::parse(scheme.algorithm_identifier());
            assert_eq!(alg, Ok(SignatureAlgorithm::ours(scheme)), "{scheme:?}");
        }
    }

    #[test]
    fn accepts_pkcs1_without_null_and_pss_hashes_without_null() {
        let absent = [0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        assert_eq!(SignatureAlgorithm::parse(&absent).map(|a| a.scheme), Ok(SignatureScheme::RsaPkcs1Sha256));
        // RSASSA-PSS, SHA-384 and MGF1-SHA-384 with absent parameters, salt 20.
        let pss: &[u8] = &[
            0x30, 0x38, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x2b, 0xa0,
            0x0d, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0xa1, 0x1a,
            0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0b, 0x06,
            0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        ];
        assert_eq!(
            SignatureAlgorithm::parse(pss),
            Ok(SignatureAlgorithm { scheme: SignatureScheme::RsaPssSha384, salt_len: 20 })
        );
    }

    #[test]
    fn rejects_unsupported_algorithms() {
        // sha1WithRSAEncryption (RFC 7427 A.1.1), ecdsa-with-SHA1 (A.3.1),
        // dsa-with-sha256 (A.2.2), RSASSA-PSS with empty parameters (SHA-1).
        let sha1_rsa =
            [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00];
        let sha1_ecdsa = [0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
        let dsa = [0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02];
        let pss_empty =
            [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x00];
        for der in [&sha1_rsa[..], &sha1_ecdsa, &dsa, &pss_empty] {
            assert!(matches!(SignatureAlgorithm::parse(der), Err(Error::UnsupportedKey(_))), "{der:02x?}");
        }
        // PSS with MGF1-SHA-512 under SHA-256.
        let mut mixed = RSA_PSS_SHA256.to_vec();
        mixed[59] = 0x03;
        assert!(matches!(SignatureAlgorithm::parse(&mixed), Err(Error::UnsupportedKey(_))));
    }

    #[test]
    fn rejects_malformed_der() {
        let mut trailing = ECDSA_SHA256.to_vec();
        trailing.push(0);
        let mut params = ECDSA_SHA256.to_vec();
        params[1] += 2;
        params.extend_from_slice(&[0x05, 0x00]);
        // A long-form length where the short form fits.
        let long_form = [0x30, 0x81, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
        for der in [&ECDSA_SHA256[..11], &trailing, &params, &long_form, &[], &[0x30], &[0x30, 0x80]] {
            assert_eq!(SignatureAlgorithm::parse(der), Err(MALFORMED), "{der:02x?}");
        }
    }
}
