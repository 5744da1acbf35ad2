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
//! - [`fragment`]: IKE message fragmentation (RFC 7383): SKF fragments out, reassembly in.
//! - [`natd`]: NAT detection hashes (section 2.23).
//! - [`sync`]: what a cluster standby mirrors: sync events, IKE SA
//!   state snapshots and their octets (with CHILD_SAs'), PASSIVE SAs and
//!   their activation.
//! - [`select`]: proposal selection by the configured preference.
//! - [`narrow`]: traffic selector narrowing (section 2.9).
//! - [`auth`]: the AUTH payload's signed octets and PSK authentication
//!   (section 2.15).
//! - [`rules`]: which payloads each exchange's messages carry, how many, and where.
//! - [`pubkey`]: certificates, chain validation and signature AUTH (RFC 5280, 7427, 8420, 4754).
//! - [`pool`]: virtual addresses leased to remote-access clients (section 2.19).
//!
//! - [`endpoint`]: the engine. An [`Endpoint`] runs every exchange as
//!   initiator and responder: IKE_SA_INIT (cookies, INVALID_KE retry, NAT
//!   detection), IKE_AUTH (PSK or certificates, virtual addresses, the
//!   first CHILD_SA), CREATE_CHILD_SA (new and rekeyed CHILD_SAs, IKE SA
//!   rekey) and INFORMATIONAL (deletes, liveness), with retransmissions and
//!   lifetimes. Like every core crate it takes datagrams, `now` and an RNG
//!   and returns datagrams, a timer, [`Event`]s and sync events, and does
//!   no I/O.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod endpoint;
mod error;
pub mod event;
pub mod fragment;
mod ike_sa;
pub mod keys;
pub mod narrow;
pub mod natd;
pub mod pool;
pub mod protect;
pub mod pubkey;
pub mod rules;
pub mod select;
pub mod sync;
pub mod wire;

pub use config::{ChildConfig, Identity, IkeConfig};
pub use endpoint::{Endpoint, RandomSpis, SpiAllocator, Transmit};
pub use error::Error;
pub use event::{ChildSa, Event, IkeSaId, NatState};
