use thiserror::Error;

/// Every failure of `tandem-esp`: set-up errors and the typed reason of
/// every dropped packet.
///
/// Data-path variants are `Copy`-cheap and carry no packet data, so a drop
/// costs nothing but a counter increment ([`DropCounters::record`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The ICV (integrity check value / AEAD tag) did not verify.
    #[error("ICV verification failed")]
    BadIcv,
    /// The sequence number was already received (RFC 4303 section 3.4.3).
    #[error("replayed sequence number")]
    Replay,
    /// The sequence number is left of the anti-replay window.
    #[error("sequence number too old for the replay window")]
    TooOld,
    /// The packet is shorter than its headers, IV, trailer and ICV.
    #[error("packet too short")]
    ShortPacket,
    /// The padding length, padding bytes or block alignment are wrong.
    #[error("bad ESP padding")]
    BadPadding,
    /// No inbound SA has this SPI.
    #[error("unknown SPI {0:#010x}")]
    UnknownSpi(u32),
    /// The SA reached its hard byte or packet lifetime.
    #[error("SA hard lifetime expired")]
    LifetimeExpired,
    /// The outbound sequence number space is used up (RFC 4303 section 3.3.3).
    #[error("outbound sequence numbers exhausted")]
    SequenceExhausted,
    /// A dummy packet (next header 59, RFC 4303 section 2.6): verified, then dropped.
    #[error("dummy packet")]
    Dummy,
    /// A header (outer or inner IP, UDP) is malformed or not what the SA expects.
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// The decrypted inner packet does not match the SA's traffic selectors.
    #[error("inner packet violates the SA's traffic selectors")]
    PolicyViolation,
    /// The caller's buffer lacks the head- or tailroom for the operation.
    #[error("buffer lacks head- or tailroom")]
    NoRoom,
    /// An SA parameter is invalid (wrong key length, address family mix...).
    #[error("invalid SA parameter: {0}")]
    InvalidSa(&'static str),
    /// An SA with this inbound SPI is already installed.
    #[error("SPI {0:#010x} already installed")]
    DuplicateSpi(u32),
    /// A cryptographic set-up failure.
    #[error(transparent)]
    Crypto(#[from] tandem_crypto::Error),
}

/// Per-SA drop counters, one per typed reason, as `ip -s xfrm state` shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters {
    /// Failed ICV checks.
    pub bad_icv: u64,
    /// Replayed sequence numbers.
    pub replay: u64,
    /// Sequence numbers left of the window.
    pub too_old: u64,
    /// Packets too short to be ESP for this SA.
    pub short_packet: u64,
    /// Bad padding.
    pub bad_padding: u64,
    /// Packets refused after the hard lifetime.
    pub lifetime_expired: u64,
    /// Outbound packets refused because the sequence space is used up.
    pub sequence_exhausted: u64,
    /// Dummy packets (counted, not an error).
    pub dummy: u64,
    /// Malformed inner packets.
    pub malformed: u64,
    /// Inner packets outside the SA's traffic selectors.
    pub policy: u64,
    /// Packets that did not fit the caller's buffer.
    pub no_room: u64,
}

impl DropCounters {
    /// Counts one drop for `e`.
    pub fn record(&mut self, e: &Error) {
        let c = match e {
            Error::BadIcv => &mut self.bad_icv,
            Error::Replay => &mut self.replay,
            Error::TooOld => &mut self.too_old,
            Error::ShortPacket => &mut self.short_packet,
            Error::BadPadding => &mut self.bad_padding,
            Error::LifetimeExpired => &mut self.lifetime_expired,
            Error::SequenceExhausted => &mut self.sequence_exhausted,
            Error::Dummy => &mut self.dummy,
            Error::PolicyViolation => &mut self.policy,
            Error::NoRoom => &mut self.no_room,
            _ => &mut self.malformed,
        };
        *c += 1;
    }

    /// Sum of all drops.
    pub fn total(&self) -> u64 {
        self.bad_icv
            + self.replay
            + self.too_old
            + self.short_packet
            + self.bad_padding
            + self.lifetime_expired
            + self.sequence_exhausted
            + self.dummy
            + self.malformed
            + self.policy
            + self.no_room
    }
}
