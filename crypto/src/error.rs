use thiserror::Error;

/// Every failure of `tandem-crypto`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key of the wrong length for the algorithm.
    #[error("key is {got} octets, {alg} needs {want}")]
    KeyLength {
        /// The algorithm's name.
        alg: &'static str,
        /// Required key length in octets.
        want: usize,
        /// Key length given.
        got: usize,
    },
    /// Authentication failed: the ICV or tag did not verify.
    #[error("integrity check failed")]
    BadTag,
    /// An input buffer is too short or not a multiple of the block size.
    #[error("bad input length {0}")]
    BadLength(usize),
    /// The algorithm was not compiled in (its provider feature is off).
    #[error("algorithm {0} is not available in this build")]
    Unavailable(&'static str),
    /// A peer's key-exchange public value is invalid.
    #[error("invalid {group} public value: {reason}")]
    InvalidPublicValue {
        /// The group's keyword.
        group: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key exchange produced an all-zero or otherwise degenerate secret.
    #[error("key exchange produced a degenerate shared secret")]
    DegenerateSecret,
    /// A proposal string could not be parsed.
    #[error("proposal {proposal:?}: {reason}")]
    Proposal {
        /// The offending proposal (one comma-separated item).
        proposal: String,
        /// Why it was rejected; unknown keywords are named here.
        reason: String,
    },
    /// `prf+` was asked for more output than RFC 7296 allows (255 blocks).
    #[error("prf+ output of {0} octets exceeds 255 blocks")]
    PrfPlusTooLong(usize),
}
