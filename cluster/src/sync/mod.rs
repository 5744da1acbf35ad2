//! The sync protocol's lower layers: the datagram framing ([`wire`]), its
//! AEAD protection ([`seal`]) and a reliable per-peer channel ([`channel`]).
//!
//! A node draws one epoch per start ([`new_epoch`]), builds [`SyncKeys`]
//! from the cluster secret, and runs one [`Channel`] per peer: the engine
//! sends [`Message`]s into it and takes delivered ones out, and the driver
//! moves the channel's datagrams over UDP.

pub mod channel;
pub mod seal;
pub mod wire;

pub use channel::{Channel, ChannelConfig, ChannelEvent};
pub use seal::{DirectionKey, SyncKeys, new_epoch};
pub use wire::{Ack, Header, Kind, Message};
