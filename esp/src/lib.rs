//! tandem-esp: Tandem's userspace ESP data path (RFC 4303).
//!
//! Layering: built on `tandem-crypto`'s transforms; knows nothing of IKE or
//! clustering. The IKE engine installs SAs from negotiated KEYMAT; the
//! cluster reads counters and moves sequence numbers through public APIs.
//!
//! How to drive it:
//! - Install SAs: [`OutboundSa::new`] / [`InboundSa::new`] from
//!   [`SaParams`]; put them in a [`Sad`] (inbound keyed by SPI, outbound
//!   behind an [`OutboundId`]) and point [`Spd`] policies at the outbound
//!   handles.
//! - Send: [`Spd::lookup`] finds the SA for a plaintext packet, then
//!   [`OutboundSa::encapsulate`] turns it into ESP in place. The packet must
//!   sit in a buffer with [`HEADROOM`] free octets before and [`TAILROOM`]
//!   after it.
//! - Receive: [`Sad::receive`] takes a whole outer IP packet (raw ports),
//!   [`Sad::decapsulate`] an ESP packet from a UDP/4500 socket. Both check
//!   the replay window before decrypting and move it only after the ICV
//!   verified.
//! - Drops are typed ([`Error`]) and counted per SA ([`SaStats::drops`]);
//!   lifetime events are drained with `poll_event`.
//!
//! Nothing here allocates per packet, reads a clock or panics on input.
#![forbid(unsafe_code)]

mod cipher;
mod error;
pub mod replay;
mod sa;
mod sad;
mod spd;
pub mod wire;

#[cfg(test)]
mod kat;

pub use cipher::{ESP_HEADER_LEN, MAX_ICV_LEN, MAX_IV_LEN, Suite};
pub use error::{DropCounters, Error};
pub use replay::ReplayWindow;
pub use sa::{
    Decapsulated, Framing, HEADROOM, InboundSa, Lifetimes, Limits, Mode, OutboundSa, SaEvent, SaParams,
    SaStats, TAILROOM, UdpEncap,
};
pub use sad::{OutboundId, Received, Sad, SpiHashBuilder, SpiHasher};
pub use spd::{Policy, PolicyId, Spd, TrafficSelector};
pub use tandem_crypto::aead::{AeadAlgorithm, Provider};
pub use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
