use thiserror::Error;

/// Every failure of `tandem-ike`.
///
/// Protocol violations name what went wrong; the state machine maps them to
/// the Notify it sends (`INVALID_SYNTAX`, `UNSUPPORTED_CRITICAL_PAYLOAD`...).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The message or a payload is shorter than its fixed part or than its
    /// length field says.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A field has a value the RFC forbids (bad length, reserved value,
    /// inconsistent counts): answered with INVALID_SYNTAX.
    #[error("invalid syntax: {0}")]
    InvalidSyntax(&'static str),
    /// A payload of unknown type had its critical bit set: answered with
    /// UNSUPPORTED_CRITICAL_PAYLOAD carrying the type.
    #[error("unsupported critical payload type {0}")]
    UnsupportedCriticalPayload(u8),
    /// The IKE major version is not 2: answered with INVALID_MAJOR_VERSION.
    #[error("unsupported IKE major version {0}")]
    InvalidMajorVersion(u8),
    /// A value given to an emitter does not fit its wire field (too long, too
    /// many entries, mixed address families): a local bug, never sent.
    #[error("cannot encode {0}")]
    Unencodable(&'static str),
    /// The integrity check of an Encrypted payload failed: the message is
    /// dropped silently (RFC 7296 section 2.21.1).
    #[error("integrity check of the Encrypted payload failed")]
    IntegrityCheckFailed,
    /// The peer's AUTH payload did not verify: answered with
    /// AUTHENTICATION_FAILED.
    #[error("AUTH payload verification failed")]
    AuthenticationFailed,
    /// An encryption/integrity pair that cannot protect an Encrypted payload
    /// (an AEAD with integrity, AES-CBC without): a local misuse.
    #[error("invalid Encrypted payload suite: {0}")]
    InvalidSuite(&'static str),
    /// A fragmented message exceeds this side's reassembly limits (too many
    /// fragments or octets, RFC 7383): the fragment is dropped silently.
    #[error("fragment refused: {0}")]
    FragmentLimit(&'static str),
    /// Sync state octets of a format version this build does not know.
    #[error("unsupported sync state format version {0}")]
    SyncVersion(u8),
    /// Sync state octets that are truncated, too large or inconsistent.
    #[error("invalid sync state: {0}")]
    InvalidSyncState(&'static str),
    /// A cryptographic operation failed or was misused.
    #[error(transparent)]
    Crypto(#[from] tandem_crypto::Error),
    /// The peer answered with an error Notify (its type number).
    #[error("the peer refused with notify {0}")]
    Refused(u16),
    /// A request is already outstanding (IKE's window size is one).
    #[error("a request is already outstanding")]
    Busy,
    /// The IKE SA is not known to the endpoint.
    #[error("no such IKE SA")]
    UnknownSa,
    /// The CHILD_SA is not known to its IKE SA.
    #[error("no such CHILD_SA")]
    UnknownChild,
    /// The IKE SA is a PASSIVE mirror on this node: another node owns it.
    #[error("IKE SA is passive here")]
    Passive,
    /// The SA reached the end of its lifetime without being rekeyed.
    #[error("lifetime expired")]
    Expired,
    /// A request went unanswered through every retransmission.
    #[error("no answer after all retransmissions")]
    Timeout,
    /// A certificate is malformed or breaks a rule of RFC 5280 that Tandem
    /// enforces (issuer not a CA, path too long, unknown critical
    /// extension...): answered with AUTHENTICATION_FAILED.
    #[error("invalid certificate: {0}")]
    CertificateInvalid(&'static str),
    /// A certificate's validity period ended before the time given.
    #[error("certificate expired")]
    CertificateExpired,
    /// A certificate's validity period starts after the time given.
    #[error("certificate not yet valid")]
    CertificateNotYetValid,
    /// No chain leads from the peer's certificate to a trusted CA.
    #[error("certificate not issued by a trusted CA")]
    Untrusted,
    /// A certificate's signature did not verify with its issuer's key.
    #[error("certificate signature verification failed")]
    SignatureInvalid,
    /// A key type, curve or size, a signature algorithm or an Auth Method
    /// that Tandem does not support.
    #[error("unsupported: {0}")]
    UnsupportedKey(&'static str),
    /// A private key could not be loaded.
    #[error("invalid private key: {0}")]
    InvalidKey(&'static str),
}
