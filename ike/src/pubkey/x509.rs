//! X.509 v3 certificates (RFC 5280) as IKEv2 uses them: parsing, chain
//! validation against trusted CAs, and matching the peer's ID payload
//! (RFC 4945 section 3.1).

use super::algid::{Der, SignatureAlgorithm, tag};
use super::sig::{EcdsaFormat, PublicKey};
use crate::Error;
use crate::wire::IdType;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ops::Range;
use x509_cert::der::Decode;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};

/// The most intermediate CAs [`verify_chain`] puts between an end-entity
/// certificate and a trusted CA.
pub const MAX_INTERMEDIATES: usize = 6;

/// The most signatures one [`verify_chain`] call checks while it searches
/// for a path, so that many look-alike intermediates cannot make it slow.
const MAX_SIGNATURE_CHECKS: usize = 32;

/// The most extensions a certificate may carry.
const MAX_EXTENSIONS: usize = 64;

/// A subjectAltName entry Tandem matches identities against; other name
/// forms are skipped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AltName {
    /// A dNSName.
    Dns(String),
    /// An rfc822Name (email address).
    Email(String),
    /// An iPAddress.
    Ip(IpAddr),
}

/// A parsed X.509 v3 certificate that owns its DER encoding.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    signature: Range<usize>,
    signature_algorithm: Option<SignatureAlgorithm>,
    subject_display: String,
    alt_names: Vec<AltName>,
    not_before: u64,
    not_after: u64,
    public_key: Result<PublicKey, Error>,
    spki: Range<usize>,
    basic_constraints: Option<Constraints>,
    key_usage: Option<Usage>,
    unknown_critical_extension: bool,
}

/// What basicConstraints says.
#[derive(Clone, Copy, Debug)]
struct Constraints {
    ca: bool,
    path_len: Option<u8>,
}

/// The keyUsage bits Tandem looks at.
#[derive(Clone, Copy, Debug)]
struct Usage {
    digital_signature: bool,
    non_repudiation: bool,
    key_cert_sign: bool,
}

/// Where `inner`, a subslice of `outer`, starts and ends in it.
fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    debug_assert!(start.checked_add(inner.len()).is_some_and(|end| end <= outer.len()));
    start..start + inner.len()
}

impl Certificate {
    /// The longest certificate accepted: what a CERT payload can carry.
    pub const MAX_LEN: usize = 65_535 - 5;

    /// Parses a DER certificate (all of `der`), as carried in a CERT payload
    /// with encoding "X.509 Certificate - Signature" (4, RFC 7296
    /// section 3.6). Fails with [`Error::CertificateInvalid`] on anything
    /// malformed; never panics. A public key Tandem does not support is
    /// reported by [`Certificate::public_key`], not here.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        if der.len() > Self::MAX_LEN {
            return Err(Error::CertificateInvalid("longer than a CERT payload"));
        }
        let parsed =
            x509_cert::Certificate::from_der(der).map_err(|_| Error::CertificateInvalid("malformed DER"))?;
        Self::build(der, &parsed).map_err(|e| match e {
            Error::InvalidSyntax(_) => Error::CertificateInvalid("malformed DER"),
            e => e,
        })
    }

    fn build(der: &[u8], parsed: &x509_cert::Certificate) -> Result<Self, Error> {
        // The raw fields, for signatures and DER comparisons.
        let mut outer = Der::new(der);
        let mut cert = Der::new(outer.expect(tag::SEQUENCE)?);
        outer.finish()?;
        let (tbs_body, tbs_whole) = cert.expect_tlv(tag::SEQUENCE)?;
        let (_, outer_alg) = cert.expect_tlv(tag::SEQUENCE)?;
        let bits = cert.expect(tag::BIT_STRING)?;
        cert.finish()?;
        let mut tbs = Der::new(tbs_body);
        tbs.optional(tag::context(0))?;
        tbs.expect(tag::INTEGER)?;
        let (_, tbs_alg) = tbs.expect_tlv(tag::SEQUENCE)?;
        let (_, issuer) = tbs.expect_tlv(tag::SEQUENCE)?;
        tbs.expect(tag::SEQUENCE)?;
        let (_, subject) = tbs.expect_tlv(tag::SEQUENCE)?;
        let (_, spki) = tbs.expect_tlv(tag::SEQUENCE)?;
        if tbs_alg != outer_alg {
            return Err(Error::CertificateInvalid("signature algorithms differ"));
        }
        let signature = match bits.split_first() {
            Some((0, signature)) => signature,
            _ => return Err(Error::CertificateInvalid("signature is not whole octets")),
        };

        let tbs_cert = parsed.tbs_certificate();
        let validity = tbs_cert.validity();
        let mut this = Self {
            der: der.to_vec(),
            tbs: range_in(der, tbs_whole),
            issuer: range_in(der, issuer),
            subject: range_in(der, subject),
            signature: range_in(der, signature),
            signature_algorithm: SignatureAlgorithm::parse(outer_alg).ok(),
            subject_display: tbs_cert.subject().to_string(),
            alt_names: Vec::new(),
            not_before: validity.not_before.to_unix_duration().as_secs(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            public_key: PublicKey::from_spki_der(spki),
            spki: range_in(der, spki),
            basic_constraints: None,
            key_usage: None,
            unknown_critical_extension: false,
        };
        let extensions = tbs_cert.extensions().map_or(&[][..], |e| e.as_slice());
        if extensions.len() > MAX_EXTENSIONS {
            return Err(Error::CertificateInvalid("too many extensions"));
        }
        let bad = |_| Error::CertificateInvalid("malformed extension");
        for (i, ext) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|e| e.extn_id == ext.extn_id) {
                return Err(Error::CertificateInvalid("duplicate extension"));
            }
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                SubjectAltName::OID => {
                    for name in SubjectAltName::from_der(value).map_err(bad)?.0 {
                        this.alt_names.push(match name {
                            GeneralName::DnsName(dns) => AltName::Dns(dns.to_string()),
                            GeneralName::Rfc822Name(email) => AltName::Email(email.to_string()),
                            GeneralName::IpAddress(ip) => AltName::Ip(match ip.as_bytes() {
                                &[a, b, c, d] => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                                octets => IpAddr::V6(Ipv6Addr::from(
                                    <[u8; 16]>::try_from(octets)
                                        .map_err(|_| Error::CertificateInvalid("iPAddress length"))?,
                                )),
                            }),
                            _ => continue,
                        });
                    }
                }
                BasicConstraints::OID => {
                    let bc = BasicConstraints::from_der(value).map_err(bad)?;
                    this.basic_constraints =
                        Some(Constraints { ca: bc.ca, path_len: bc.path_len_constraint });
                }
                KeyUsage::OID => {
                    let ku = KeyUsage::from_der(value).map_err(bad)?;
                    this.key_usage = Some(Usage {
                        digital_signature: ku.digital_signature(),
                        non_repudiation: ku.non_repudiation(),
                        key_cert_sign: ku.key_cert_sign(),
                    });
                }
                // Known, and nothing here depends on them.
                ExtendedKeyUsage::OID | SubjectKeyIdentifier::OID | AuthorityKeyIdentifier::OID => {}
                _ => this.unknown_critical_extension |= ext.critical,
            }
        }
        Ok(this)
    }

    /// Parses a PEM file holding exactly one `CERTIFICATE` block.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let mut all = Self::from_pem_bundle(pem)?;
        match (all.pop(), all.is_empty()) {
            (Some(cert), true) => Ok(cert),
            _ => Err(Error::CertificateInvalid("expected one PEM certificate")),
        }
    }

    /// Parses every `CERTIFICATE` block of a PEM file (a CA bundle); text
    /// around the blocks is ignored.
    pub fn from_pem_bundle(pem: &[u8]) -> Result<Vec<Self>, Error> {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let mut rest = pem;
        let mut out = Vec::new();
        while let Some(start) = find(rest, BEGIN) {
            let block = &rest[start..];
            let end =
                find(block, END).ok_or(Error::CertificateInvalid("unterminated PEM block"))? + END.len();
            let (label, der) = x509_cert::der::pem::decode_vec(&block[..end])
                .map_err(|_| Error::CertificateInvalid("malformed PEM"))?;
            debug_assert_eq!(label, "CERTIFICATE");
            out.push(Self::from_der(&der)?);
            rest = &block[end..];
        }
        Ok(out)
    }

    /// The DER encoding: the data of a CERT payload with encoding 4.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject's DER Name: the data of an ID_DER_ASN1_DN identity.
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }

    /// The issuer's DER Name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The subject as an RFC 4514 string, for logs.
    pub fn subject(&self) -> &str {
        &self.subject_display
    }

    /// The subjectAltName entries Tandem understands, in certificate order.
    pub fn alt_names(&self) -> &[AltName] {
        &self.alt_names
    }

    /// Start of the validity period, in seconds since the Unix epoch.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// End of the validity period (inclusive), in seconds since the epoch.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Fails unless `now_unix` lies within the validity period.
    pub fn check_validity(&self, now_unix: u64) -> Result<(), Error> {
        if now_unix < self.not_before {
            Err(Error::CertificateNotYetValid)
        } else if now_unix > self.not_after {
            Err(Error::CertificateExpired)
        } else {
            Ok(())
        }
    }

    /// The subject's public key, or [`Error::UnsupportedKey`] (or
    /// [`Error::CertificateInvalid`] if malformed) when Tandem cannot use it.
    pub fn public_key(&self) -> Result<&PublicKey, Error> {
        self.public_key.as_ref().map_err(Clone::clone)
    }

    /// The DER SubjectPublicKeyInfo, which CERTREQ hashes (RFC 7296
    /// section 3.7).
    pub fn spki_der(&self) -> &[u8] {
        &self.der[self.spki.clone()]
    }

    /// Whether basicConstraints marks the subject as a CA.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.ca)
    }

    /// Checks only that `issuer`'s key made this certificate's signature
    /// (names, validity and CA flags are [`verify_chain`]'s business).
    pub fn verify_signature_by(&self, issuer: &Certificate) -> Result<(), Error> {
        let alg = self.signature_algorithm.ok_or(Error::UnsupportedKey("certificate signature algorithm"))?;
        let key = issuer.public_key()?;
        let tbs = &self.der[self.tbs.clone()];
        key.verify(alg, tbs, &self.der[self.signature.clone()], EcdsaFormat::Der)
            .map_err(|()| Error::SignatureInvalid)
    }

    /// Whether this certificate names the identity of an ID payload; see
    /// [`matches_identity`].
    pub fn matches_identity(&self, id_type: IdType, id_data: &[u8]) -> bool {
        matches_identity(self, id_type, id_data)
    }

    /// Fails if the certificate carries a critical extension Tandem does
    /// not process (RFC 5280 section 4.2).
    fn check_extensions(&self) -> Result<(), Error> {
        if self.unknown_critical_extension {
            Err(Error::CertificateInvalid("unsupported critical extension"))
        } else {
            Ok(())
        }
    }

    /// Whether subject and issuer are the same name.
    fn is_self_issued(&self) -> bool {
        self.subject_der() == self.issuer_der()
    }

    /// Checks what makes this certificate fit to issue one more level of
    /// certificates, `below` non-self-issued CA certificates already
    /// standing between it and the end entity.
    fn check_issuer(&self, below: usize, now_unix: u64) -> Result<(), Error> {
        let Some(bc) = self.basic_constraints.filter(|bc| bc.ca) else {
            return Err(Error::CertificateInvalid("issuer is not a CA"));
        };
        if self.key_usage.is_some_and(|ku| !ku.key_cert_sign) {
            return Err(Error::CertificateInvalid("issuer key usage lacks keyCertSign"));
        }
        if bc.path_len.is_some_and(|max| below > usize::from(max)) {
            return Err(Error::CertificateInvalid("path length constraint exceeded"));
        }
        self.check_extensions()?;
        self.check_validity(now_unix)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_display)
            .field("alt_names", &self.alt_names)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("ca", &self.is_ca())
            .finish_non_exhaustive()
    }
}

/// Proof that [`verify_chain`] found a path from the end-entity certificate
/// to a trusted CA.
#[must_use = "a chain verification result must be acted upon"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainVerified {
    anchor: usize,
    intermediates: usize,
}

impl ChainVerified {
    /// The index, in `trusted_cas`, of the CA the path ends at (or the
    /// trusted certificate equal to the end entity itself).
    pub fn anchor(&self) -> usize {
        self.anchor
    }

    /// How many intermediate certificates the path used.
    pub fn intermediates(&self) -> usize {
        self.intermediates
    }
}

/// Validates `end_entity` at `now_unix` (seconds since the Unix epoch; the
/// caller reads the clock) against `trusted_cas`, using any of the
/// peer's `intermediates` in any order.
///
/// Checks, RFC 5280 section 6 in the subset IKE needs: each issuer's name
/// equals the issuer name of the certificate below it and its key made
/// that certificate's signature (ECDSA P-256/P-384 with SHA-256/384/512,
/// Ed25519, RSA PKCS#1 v1.5 and PSS with SHA-256/384/512); every
/// certificate, the trusted one included, is within its validity period;
/// every issuer has basicConstraints cA, keyCertSign if it has keyUsage,
/// and a pathLenConstraint that holds; no certificate has a critical
/// extension Tandem does not process; the end entity's keyUsage, if
/// present, allows digitalSignature or nonRepudiation (RFC 4945
/// section 5.1.3.2); at most [`MAX_INTERMEDIATES`] intermediates. A
/// trusted certificate byte-for-byte equal to the end entity is trusted
/// directly (pinned), without being a CA. Not checked: revocation, name
/// constraints (a CA carrying them critically is refused), policies and
/// extendedKeyUsage.
///
/// Errors: the end entity's own [`Error::CertificateExpired`],
/// [`Error::CertificateNotYetValid`] or [`Error::CertificateInvalid`];
/// otherwise, when no path works, the first failure of a candidate issuer
/// ([`Error::SignatureInvalid`], an issuer's validity or CA error), or
/// [`Error::Untrusted`] when no candidate issuer was found at all.
pub fn verify_chain(
    end_entity: &Certificate,
    intermediates: &[Certificate],
    trusted_cas: &[Certificate],
    now_unix: u64,
) -> Result<ChainVerified, Error> {
    end_entity.check_validity(now_unix)?;
    end_entity.check_extensions()?;
    if end_entity.key_usage.is_some_and(|ku| !ku.digital_signature && !ku.non_repudiation) {
        return Err(Error::CertificateInvalid("key usage forbids signatures"));
    }
    if let Some(anchor) = trusted_cas.iter().position(|ca| ca.der == end_entity.der) {
        return Ok(ChainVerified { anchor, intermediates: 0 });
    }
    let mut search = PathSearch { intermediates, trusted_cas, now_unix, checks: 0, path: Vec::new() };
    search.extend(end_entity, 0)
}

/// The depth-first search of [`verify_chain`].
struct PathSearch<'a> {
    intermediates: &'a [Certificate],
    trusted_cas: &'a [Certificate],
    now_unix: u64,
    checks: usize,
    /// Indices of the intermediates on the current path.
    path: Vec<usize>,
}

impl PathSearch<'_> {
    /// Finds an issuer of `cert` that leads to a trusted CA; `below`
    /// non-self-issued CA certificates stand between `cert` and the end
    /// entity (`cert` itself counted when it is one of them).
    fn extend(&mut self, cert: &Certificate, below: usize) -> Result<ChainVerified, Error> {
        let mut first_error = None;
        for (anchor, ca) in self.trusted_cas.iter().enumerate() {
            if ca.subject_der() != cert.issuer_der() {
                continue;
            }
            match self.issued_by(cert, ca, below) {
                Ok(()) => return Ok(ChainVerified { anchor, intermediates: self.path.len() }),
                Err(e) => note(&mut first_error, e),
            }
        }
        if self.path.len() < MAX_INTERMEDIATES {
            for (i, ca) in self.intermediates.iter().enumerate() {
                if ca.subject_der() != cert.issuer_der() || self.path.contains(&i) {
                    continue;
                }
                let result = self.issued_by(cert, ca, below).and_then(|()| {
                    self.path.push(i);
                    let next_below = below + usize::from(!ca.is_self_issued());
                    let result = self.extend(ca, next_below);
                    self.path.pop();
                    result
                });
                match result {
                    Ok(verified) => return Ok(verified),
                    Err(e) => note(&mut first_error, e),
                }
            }
        }
        Err(first_error.unwrap_or(Error::Untrusted))
    }

    /// Whether `ca` issued `cert` and may have.
    fn issued_by(&mut self, cert: &Certificate, ca: &Certificate, below: usize) -> Result<(), Error> {
        if self.checks >= MAX_SIGNATURE_CHECKS {
            return Err(Error::Untrusted);
        }
        self.checks += 1;
        cert.verify_signature_by(ca)?;
        ca.check_issuer(below, self.now_unix)
    }
}

/// Keeps `e` in `first` if it is the first failure other than `Untrusted`.
fn note(first: &mut Option<Error>, e: Error) {
    if first.is_none() && e != Error::Untrusted {
        *first = Some(e);
    }
}

/// Whether `cert` names the identity of an ID payload (RFC 4945
/// section 3.1): ID_FQDN against its dNSNames and ID_RFC822_ADDR against its
/// rfc822Names (both ignoring ASCII case; an address's local part
/// exactly), ID_IPV4_ADDR and ID_IPV6_ADDR against its iPAddresses, and
/// ID_DER_ASN1_DN against its subject (DER equality, non-empty). Never
/// from the subject's common name; other ID types never match.
pub fn matches_identity(cert: &Certificate, id_type: IdType, id_data: &[u8]) -> bool {
    let alt = |want: &dyn Fn(&AltName) -> bool| cert.alt_names.iter().any(want);
    match id_type {
        IdType::ID_FQDN => {
            alt(&|n| matches!(n, AltName::Dns(dns) if dns.as_bytes().eq_ignore_ascii_case(id_data)))
        }
        IdType::ID_RFC822_ADDR => alt(&|n| matches!(n, AltName::Email(email) if email_eq(email, id_data))),
        IdType::ID_IPV4_ADDR => {
            alt(&|n| matches!(n, AltName::Ip(IpAddr::V4(ip)) if ip.octets()[..] == *id_data))
        }
        IdType::ID_IPV6_ADDR => {
            alt(&|n| matches!(n, AltName::Ip(IpAddr::V6(ip)) if ip.octets()[..] == *id_data))
        }
        IdType::ID_DER_ASN1_DN => {
            // An empty Name (30 00) identifies nobody.
            cert.subject_der().len() > 2 && cert.subject_der() == id_data
        }
        _ => false,
    }
}

/// `local@domain` equality: the local part exactly, the domain without
/// ASCII case (RFC 5280 section 7.5).
fn email_eq(cert: &str, id: &[u8]) -> bool {
    fn split(s: &[u8]) -> Option<(&[u8], &[u8])> {
        s.iter().rposition(|&b| b == b'@').map(|at| s.split_at(at))
    }
    match (split(cert.as_bytes()), split(id)) {
        (Some((cl, cd)), Some((il, id))) => cl == il && cd.eq_ignore_ascii_case(id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_email_local_parts_exactly_and_domains_without_case() {
        assert!(email_eq("admin@Example.TEST", b"admin@example.test"));
        assert!(!email_eq("Admin@example.test", b"admin@example.test"));
        assert!(!email_eq("admin@example.test", b"admin@example.test.evil"));
        assert!(!email_eq("admin", b"admin"));
    }
}
