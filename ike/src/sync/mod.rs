//! What a cluster standby needs to take an IKE SA over, and the API to
//! hold it PASSIVE and make it live (in the spirit of strongSwan's HA
//! plugin, which listens to the IKE daemon's key, message and state hooks).
//!
//! With [`IkeConfig::sync`](crate::IkeConfig) on, an [`Endpoint`](crate::Endpoint)
//! queues [`SyncEvent`]s (drained with `poll_sync`): a full [`IkeSaState`]
//! when an IKE SA is established or replaced by a rekey, then small deltas:
//! CHILD_SAs added and deleted, message IDs and the SK IV counter advanced,
//! the last request and response (so a new owner can answer a
//! retransmission), deletes. Another endpoint applies them to PASSIVE
//! copies (`install_passive`, `apply_sync`), which answer nothing and run
//! no timers, and turns a copy live with `activate` when its segment is
//! taken over. These carry key material: they must only travel over the
//! cluster's authenticated and encrypted sync channel.
//!
//! To cross that channel, [`IkeSaState::encode`] and [`encode_child`] turn
//! the state of an IKE SA and a CHILD_SA (keys included) into octets, and
//! [`IkeSaState::decode`] and [`decode_child`] take them back; deadlines
//! travel as milliseconds on a cluster-wide [`TimeBase`], as each node's
//! `Instant`s mean nothing to the others. An [`Endpoint`](crate::Endpoint)
//! hands out the state of any IKE SA it holds with `snapshot`, for a node
//! that (re)joins.

mod codec;

pub use codec::{
    MAX_ADDRESSES, MAX_CHILDREN, MAX_DATAGRAM, MAX_FRAGMENTS, MAX_KEY_LEN, MAX_SELECTORS,
    SYNC_FORMAT_VERSION, TimeBase, decode_child, encode_child,
};

use crate::event::{ChildSa, IkeSaId, NatState};
use crate::keys::IkeKeys;
use crate::wire::TrafficSelector;
use core::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tandem_crypto::cbc_hmac::IntegAlgorithm;
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::proposal::EncrAlgorithm;

/// IVs a new owner skips past the last synced SK IV counter, so it never
/// reuses an IV the old owner handed out after its last sync.
pub const IV_COUNTER_MARGIN: u64 = 1 << 20;

/// A CHILD_SA as the IKE SA tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildEntry {
    /// Our inbound SPI.
    pub inbound_spi: u32,
    /// Our outbound SPI.
    pub outbound_spi: u32,
    /// Our traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// When it is due for rekeying, if it has a lifetime.
    pub rekey_at: Option<Instant>,
    /// When it expires, if it has a lifetime.
    pub expire_at: Option<Instant>,
}

/// Everything needed to rebuild an established IKE SA elsewhere.
#[derive(Clone)]
pub struct IkeSaState {
    /// The SA (our SPI).
    pub id: IkeSaId,
    /// Whether we are the original initiator.
    pub initiator: bool,
    /// Initiator's SPI.
    pub spi_i: u64,
    /// Responder's SPI.
    pub spi_r: u64,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The negotiated PRF.
    pub prf: PrfAlgorithm,
    /// The negotiated encryption.
    pub encr: EncrAlgorithm,
    /// The negotiated integrity, for non-AEAD encryption.
    pub integ: Option<IntegAlgorithm>,
    /// What NAT detection found.
    pub nat: NatState,
    /// The ID of our next request.
    pub next_message_id: u32,
    /// The ID of the peer's next request.
    pub expected_request: u32,
    /// The SK IV counter of what we send.
    pub iv_counter: u64,
    /// The peer's last request (its last fragment, if fragmented) and our
    /// answer as sent (one datagram, or its fragments), for retransmissions.
    pub last_exchange: Option<(Vec<u8>, Vec<Vec<u8>>)>,
    /// With IKE fragmentation negotiated (RFC 7383): the largest IKE
    /// message sent whole.
    pub fragment_size: Option<usize>,
    /// The CHILD_SAs.
    pub children: Vec<ChildEntry>,
    /// Virtual addresses leased to the peer: a new
    /// owner's pool must hold them reserved.
    pub virtual_ips: Vec<IpAddr>,
    /// Virtual addresses the peer assigned to us.
    pub assigned_ips: Vec<IpAddr>,
    /// When the IKE SA is due for rekeying.
    pub rekey_at: Option<Instant>,
    /// When the IKE SA expires.
    pub expire_at: Option<Instant>,
    pub(crate) keys: IkeKeys,
}

impl IkeSaState {
    /// The SA's seven SK_* secrets: to be sent only over the cluster's
    /// protected sync channel.
    pub fn dangerous_keys(&self) -> &IkeKeys {
        &self.keys
    }
}

impl core::fmt::Debug for IkeSaState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IkeSaState")
            .field("id", &self.id)
            .field("spi_i", &format_args!("{:#018x}", self.spi_i))
            .field("spi_r", &format_args!("{:#018x}", self.spi_r))
            .field("remote", &self.remote)
            .field("next_message_id", &self.next_message_id)
            .field("expected_request", &self.expected_request)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

/// One change a standby mirrors.
#[derive(Clone, Debug)]
pub enum SyncEvent {
    /// An IKE SA was established (or made by a rekey): its full state.
    IkeSa(Box<IkeSaState>),
    /// A CHILD_SA was added, with its keys.
    ChildAdded {
        /// The IKE SA.
        sa: IkeSaId,
        /// The CHILD_SA.
        child: Box<ChildSa>,
        /// When it is due for rekeying.
        rekey_at: Option<Instant>,
        /// When it expires.
        expire_at: Option<Instant>,
    },
    /// A CHILD_SA was deleted.
    ChildDeleted {
        /// The IKE SA.
        sa: IkeSaId,
        /// Its inbound SPI.
        inbound_spi: u32,
    },
    /// Message IDs or the SK IV counter moved.
    Progress {
        /// The IKE SA.
        sa: IkeSaId,
        /// The ID of our next request.
        next_message_id: u32,
        /// The ID of the peer's next request.
        expected_request: u32,
        /// The SK IV counter of what we send.
        iv_counter: u64,
    },
    /// We answered a request: the request and the answer as sent.
    LastExchange {
        /// The IKE SA.
        sa: IkeSaId,
        /// The peer's request.
        request: Vec<u8>,
        /// Our response as sent: one datagram, or its fragments.
        response: Vec<Vec<u8>>,
    },
    /// The IKE SA `old` was replaced by `new` (whose state follows).
    Rekeyed {
        /// The old SA.
        old: IkeSaId,
        /// The new SA.
        new: IkeSaId,
    },
    /// The IKE SA ended.
    Deleted {
        /// The SA.
        sa: IkeSaId,
    },
}
