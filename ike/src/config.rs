//! What an IKE endpoint negotiates: proposals, identities, how each side
//! authenticates (pre-shared key or certificates) and the CHILD_SA it
//! brings up with the IKE SA.

use crate::pubkey::{Certificate, PrivateKey};
use crate::wire::{Id, IdType, TrafficSelector};
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;
use tandem_crypto::proposal::Proposal;
use tandem_crypto::secret::SecretBytes;

/// An IKE identity (RFC 7296 section 3.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// ID type.
    pub ty: IdType,
    /// ID data, as carried in the payload.
    pub data: Vec<u8>,
}

impl Identity {
    /// An ID_FQDN identity.
    pub fn fqdn(name: &str) -> Self {
        Self { ty: IdType::ID_FQDN, data: name.as_bytes().to_vec() }
    }

    /// Whether a received ID payload names this identity.
    pub fn matches(&self, id: &Id<'_>) -> bool {
        self.ty == id.ty && self.data == id.data
    }

    /// The ID payload body: type, three reserved octets, data.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut b = vec![self.ty.0, 0, 0, 0];
        b.extend_from_slice(&self.data);
        b
    }
}

/// When an SA is rekeyed and when it expires (strongSwan's `rekey_time`,
/// `over_time` and `rand_time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lifetime {
    /// Rekey this long after the SA was made...
    pub rekey_time: Duration,
    /// ...minus a random part of this, so both peers do not rekey at once.
    pub rand_time: Duration,
    /// Expire (delete) the SA this long after `rekey_time` if the rekey
    /// did not happen.
    pub over_time: Duration,
}

impl Lifetime {
    /// strongSwan's IKE SA defaults: rekey after 4 h, 10% jitter and grace.
    pub const IKE_DEFAULT: Lifetime = Lifetime::with_rekey(Duration::from_secs(4 * 3600));
    /// strongSwan's CHILD_SA defaults: rekey after 1 h, 10% jitter and grace.
    pub const CHILD_DEFAULT: Lifetime = Lifetime::with_rekey(Duration::from_secs(3600));

    /// Rekey after `rekey_time`, with 10% of it as jitter and as grace.
    pub const fn with_rekey(rekey_time: Duration) -> Self {
        let tenth = Duration::from_nanos((rekey_time.as_nanos() / 10) as u64);
        Self { rekey_time, rand_time: tenth, over_time: tenth }
    }

    /// The rekey and expiry instants of an SA made at `now`; `random`
    /// picks the jitter.
    pub(crate) fn deadlines(&self, now: Instant, random: u64) -> (Instant, Instant) {
        let jitter_ns = u64::try_from(self.rand_time.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(random.checked_rem(jitter_ns).unwrap_or(0));
        let rekey = now + self.rekey_time.saturating_sub(jitter);
        (rekey, now + self.rekey_time + self.over_time)
    }
}

/// The CHILD_SA negotiated in IKE_AUTH.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildConfig {
    /// ESP proposals, most preferred first.
    pub proposals: Vec<Proposal>,
    /// Our side's traffic selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side's traffic selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Rekeying and expiry; `None` keeps CHILD_SAs until deleted.
    pub lifetime: Option<Lifetime>,
}

impl ChildConfig {
    /// A CHILD_SA configuration with strongSwan's default lifetime.
    pub fn new(
        proposals: Vec<Proposal>,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) -> Self {
        Self { proposals, local_ts, remote_ts, lifetime: Some(Lifetime::CHILD_DEFAULT) }
    }
}

/// Our signing credentials: a private key and its certificate chain.
pub struct Credentials {
    /// The private key AUTH payloads are signed with.
    pub key: PrivateKey,
    /// Our certificate first, then intermediates the peer may need; each
    /// is sent in a CERT payload.
    pub chain: Vec<Certificate>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects: Vec<&str> = self.chain.iter().map(Certificate::subject).collect();
        f.debug_struct("Credentials").field("key", &self.key).field("chain", &subjects).finish()
    }
}

/// How we prove our identity (RFC 7296 section 2.15).
#[derive(Clone, Debug)]
pub enum LocalAuth {
    /// A pre-shared key (Auth Method 2).
    Psk(SecretBytes),
    /// A signature with our private key (RFC 7427 Auth Method 14, or the
    /// ECDSA methods of RFC 4754 for peers without RFC 7427), our
    /// certificates sent along.
    PubKey(Arc<Credentials>),
}

/// How the peer must prove its identity.
#[derive(Clone, Debug)]
pub enum RemoteAuth {
    /// A pre-shared key (Auth Method 2).
    Psk(SecretBytes),
    /// A signature made with the key of a certificate that chains to one
    /// of these CAs and names the peer's ID; the CAs are also announced in
    /// CERTREQ payloads.
    PubKey {
        /// The trusted CA certificates.
        cas: Arc<[Certificate]>,
    },
}

/// Configuration of an IKE endpoint: one connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IkeConfig {
    /// IKE proposals, most preferred first.
    pub proposals: Vec<Proposal>,
    /// Our identity.
    pub local_id: Identity,
    /// The identity the peer must prove, or any when `None`.
    pub remote_id: Option<Identity>,
    /// How we authenticate.
    pub local_auth: LocalAuth,
    /// How the peer must authenticate.
    pub remote_auth: RemoteAuth,
    /// As initiator, ask the responder for a virtual IPv4 address
    /// (INTERNAL_IP4_ADDRESS, RFC 7296 section 2.19).
    pub request_virtual_ip: bool,
    /// As responder, the DNS servers handed out with virtual addresses.
    pub dns: Vec<IpAddr>,
    /// The CHILD_SA to set up with the IKE SA.
    pub child: ChildConfig,
    /// First retransmission timeout; it doubles on each retry.
    pub retransmit_timeout: Duration,
    /// Retransmissions before giving up.
    pub retransmit_tries: u32,
    /// Send a liveness check when the peer has been silent this long
    /// (RFC 7296 section 2.4); `None` disables it.
    pub dpd_delay: Option<Duration>,
    /// Half-open responder SAs from which new IKE_SA_INIT requests must
    /// carry a COOKIE (RFC 7296 section 2.6).
    pub cookie_threshold: usize,
    /// How long a responder waits for IKE_AUTH after IKE_SA_INIT.
    pub half_open_timeout: Duration,
    /// Rekeying and expiry of IKE SAs; `None` keeps them until deleted.
    pub lifetime: Option<Lifetime>,
    /// Queue [`SyncEvent`](crate::sync::SyncEvent)s for cluster standbys.
    pub sync: bool,
    /// Force UDP encapsulation (RFC 3948) without a NAT: our
    /// NAT_DETECTION_SOURCE_IP hash names no real address, so the peer
    /// sees us behind a NAT, and we act as if we were (strongSwan's
    /// `encap`). For a data path that carries ESP only in UDP.
    pub force_encap: bool,
    /// Announce IKE fragmentation (RFC 7383) in IKE_SA_INIT; when both
    /// peers do, encrypted messages longer than `fragment_size` are sent
    /// as SKF fragments, and fragments are taken from the peer.
    pub fragmentation: bool,
    /// The largest IKE message (UDP payload) sent whole once fragmentation
    /// is negotiated, and the size of each fragment; on port 4500 the
    /// non-ESP marker's four octets come off it. Defaults to
    /// [`DEFAULT_FRAGMENT_SIZE`]; a path known to take more may set more.
    pub fragment_size: usize,
}

/// The default [`IkeConfig::fragment_size`]: 1232 octets, the IPv6
/// minimum MTU (1280) less the IPv6 (40) and UDP (8) headers, which RFC 7383
/// section 2.5.1 suggests as safe without knowledge of the path. (It is
/// more than IPv4's 576-octet minimum allows; such a path needs 548.)
pub const DEFAULT_FRAGMENT_SIZE: usize = 1280 - 40 - 8;

impl IkeConfig {
    /// A configuration where both sides authenticate with the pre-shared
    /// key `psk`, with strongSwan-like retransmission defaults (4 s, five
    /// retries, doubling), a liveness check after 30 s of silence, and IKE
    /// fragmentation offered with [`DEFAULT_FRAGMENT_SIZE`].
    pub fn new(proposals: Vec<Proposal>, local_id: Identity, psk: SecretBytes, child: ChildConfig) -> Self {
        Self {
            proposals,
            local_id,
            remote_id: None,
            local_auth: LocalAuth::Psk(psk.clone()),
            remote_auth: RemoteAuth::Psk(psk),
            request_virtual_ip: false,
            dns: Vec::new(),
            child,
            retransmit_timeout: Duration::from_secs(4),
            retransmit_tries: 5,
            dpd_delay: Some(Duration::from_secs(30)),
            cookie_threshold: 64,
            half_open_timeout: Duration::from_secs(30),
            lifetime: Some(Lifetime::IKE_DEFAULT),
            sync: false,
            force_encap: false,
            fragmentation: true,
            fragment_size: DEFAULT_FRAGMENT_SIZE,
        }
    }
}
