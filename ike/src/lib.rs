//! tandem-ike: Tandem's sans-IO IKEv2 engine (RFC 7296).
//!
//! Layering, bottom up:
//! - [`wire`]: zero-copy views and typed builders for the IKEv2 header and
//!   every payload (RFC 7296 section 3), with the IANA registries as open
//!   newtypes.
//! - [`keys`]: SKEYSEED and the SK_* keys (section 2.14), CHILD_SA KEYMAT
//!   (section 2.17) and IKE SA rekeying (section 2.18).
//! - [`protect`]: the Encrypted (SK) payload: AEAD (RFC 5282) and
//!   AES-CBC + HMAC (section 3.14) protection of whole messages.
//! - [`natd`]: NAT detection hashes (section 2.23).
//! - [`select`]: proposal selection by the configured preference.
//! - [`auth`]: the AUTH payload's signed octets and PSK authentication
//!   (section 2.15).
//!
//! The exchanges themselves (IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
//! INFORMATIONAL) are being built on these: like every core crate, the
//! engine takes datagrams, `now` and an RNG and returns datagrams, timers
//! and events; it does no I/O.
#![forbid(unsafe_code)]

pub mod auth;
mod error;
pub mod keys;
pub mod natd;
pub mod protect;
pub mod select;
pub mod wire;

pub use error::Error;
