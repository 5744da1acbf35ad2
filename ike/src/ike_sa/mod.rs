//! One IKE SA through IKE_SA_INIT and IKE_AUTH (RFC 7296 sections 1.2,
//! 2.15 and 2.17), as initiator or responder, with PSK authentication and
//! the first CHILD_SA.
//!
//! Reliability follows section 2.1 with a window of one: the initiator keeps
//! its outstanding request and retransmits it with a doubling timeout until
//! it gives up; the responder keeps its last response and sends it again
//! when the request is retransmitted. Messages with an unexpected message ID
//! are dropped.
//!
//! With IKE fragmentation negotiated in IKE_SA_INIT (RFC 7383), encrypted
//! messages over the configured size go as SKF fragments: a request keeps
//! all of them for retransmission, a cached response all of its own. Fragments
//! received are checked (message ID, ICV), reassembled per message ID, and
//! the whole message is then handled like any other; an answered request's
//! first fragment, if authentic, gets the cached response again.
//!
//! Every encrypted message is checked against [`rules`] once opened. An
//! authentic request that breaks them is answered INVALID_SYNTAX, which
//! ends the IKE SA on both sides (section 2.21.3); an unknown critical
//! payload gets UNSUPPORTED_CRITICAL_PAYLOAD (section 2.5). A response that
//! breaks them is dropped, and one carrying INVALID_SYNTAX ends the IKE SA.

use crate::auth::{initiator_signed_octets, responder_signed_octets};
use crate::config::{Identity, IkeConfig};
use crate::event::{ChildSa, Event, IkeSaId, NatState};
use crate::keys::{IkeKeys, child_sa_keys, skeyseed};
use crate::narrow::{covers, narrow};
use crate::natd::{nat_detection_hash, nat_detection_matches};
use crate::pubkey::signature_hash_algorithms_data;
use crate::pubkey::{HashAlgorithm, SUPPORTED_HASH_ALGORITHMS, parse_signature_hash_algorithms};
use crate::sync::{ChildEntry, IV_COUNTER_MARGIN, IkeSaState, SyncEvent};
use authenticate::PeerProof;
use tandem_crypto::proposal::EncrAlgorithm;

mod authenticate;
mod create_child;
mod virtual_ip;

use crate::endpoint::{Allocator, Output};
use crate::fragment::{self, Reassembler};
use crate::protect::{SkCipher, SkSuite};
use crate::select::{Offer, Selected, select};
use crate::wire::{
    self, Auth, AuthMethod, CertEncoding, CfgType, Delete, ExchangeType, Flags, HEADER_LEN, Header, Id, Ke,
    Message, MessageBuilder, Nonce, Notify, NotifyType, Payload, PayloadIter, PayloadType, ProtocolId, Sa,
    Selector, TrafficSelector, Ts,
};
use crate::{Error, rules};
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use create_child::parts;
use rand_core::CryptoRng;
use std::time::Instant;
use tandem_crypto::kex::{DhGroup, KeyExchange};
use tandem_crypto::prf::PrfAlgorithm;
use tandem_crypto::proposal::{Proposal, ProposalKind};
use tandem_crypto::secret::SecretBytes;

/// Octets of the nonces Tandem sends (section 2.10: at least half the PRF's
/// key size, at least 16; 32 covers every PRF Tandem has).
const NONCE_LEN: usize = 32;

/// Which side of the IKE SA we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

enum State {
    /// Initiator: IKE_SA_INIT sent with this key exchange.
    InitSent { ke: Box<KeyExchange>, cookie: Option<Vec<u8>> },
    /// Initiator: IKE_AUTH sent, offering a CHILD_SA with this inbound SPI.
    AuthSent { child_spi: u32 },
    /// Responder: IKE_SA_INIT answered, waiting for IKE_AUTH.
    InitReplied,
    /// IKE_AUTH completed.
    Established,
    /// Deleted by either side, or its peer is dead; removed by the endpoint.
    Deleted,
    /// A standby's mirror of another node's SA: it follows sync events,
    /// answers nothing and runs no timers until activated.
    Passive,
    /// Refused or given up; kept only to answer retransmissions.
    Failed,
}

/// The negotiated IKE SA keys.
struct SaCrypto {
    prf: PrfAlgorithm,
    keys: IkeKeys,
    /// Protects what we send.
    out: SkCipher,
    /// Opens what the peer sends.
    inb: SkCipher,
}

/// A message as sent: one datagram, or its SKF fragments (RFC 7383).
type Datagrams = Vec<Vec<u8>>;

/// An outstanding request of ours.
struct Pending {
    message_id: u32,
    /// What a retransmission sends again: every fragment, if fragmented.
    bytes: Datagrams,
    retries: u32,
    timeout: Duration,
    deadline: Instant,
    /// What the request was for, to finish when the answer comes.
    context: Context,
}

/// What an outstanding request in an established IKE SA does.
enum Context {
    /// Nothing beyond what the SA's state says (IKE_SA_INIT, IKE_AUTH, a
    /// liveness check, a Delete of the IKE SA).
    Plain,
    /// Rekeying the CHILD_SA `old` (as it was when the request left) to a
    /// pair with our inbound SPI `spi`; `crossed` once we answered the
    /// peer's rekey of the same pair (section 2.8.1).
    RekeyChild {
        old: Box<ChildRecord>,
        spi: u32,
        ni: Vec<u8>,
        ke: Option<Box<KeyExchange>>,
        crossed: Option<CrossedChildRekey>,
    },
    /// Rekeying the IKE SA to the new SPI `spi` of ours; `crossed` once we
    /// answered the peer's rekey of this IKE SA (section 2.8.2).
    RekeyIke { spi: u64, ni: Vec<u8>, ke: Box<KeyExchange>, crossed: Option<Box<CrossedIkeRekey>> },
    /// Deleting the CHILD_SA with inbound SPI `old` (after its rekey, or
    /// on request).
    DeleteChild { old: u32 },
}

/// The peer's rekey of the CHILD_SA we are rekeying, which we answered:
/// the nonces of its exchange, to tell which new pair is redundant.
struct CrossedChildRekey {
    ni: Vec<u8>,
    nr: Vec<u8>,
}

/// The peer's rekey of the IKE SA we are rekeying, which we answered: the
/// new IKE SA it made, held out of the endpoint until our own exchange
/// ends and tells which of the two survives, and its exchange's nonces.
struct CrossedIkeRekey {
    sa: IkeSa,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

impl ChildRecord {
    fn entry(&self) -> ChildEntry {
        ChildEntry {
            inbound_spi: self.inbound,
            outbound_spi: self.outbound,
            local_ts: self.local_ts.clone(),
            remote_ts: self.remote_ts.clone(),
            rekey_at: self.rekey_at,
            expire_at: self.expire_at,
        }
    }

    fn from_entry(e: ChildEntry) -> Self {
        Self {
            inbound: e.inbound_spi,
            outbound: e.outbound_spi,
            local_ts: e.local_ts,
            remote_ts: e.remote_ts,
            rekey_at: e.rekey_at,
            expire_at: e.expire_at,
        }
    }
}

/// What the IKE SA remembers of each CHILD_SA.
#[derive(Clone, Debug)]
struct ChildRecord {
    inbound: u32,
    outbound: u32,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
    /// When to rekey it (cleared once a rekey started) and when it expires.
    rekey_at: Option<Instant>,
    expire_at: Option<Instant>,
}

/// One IKE SA.
pub(crate) struct IkeSa {
    id: IkeSaId,
    role: Role,
    state: State,
    spi_i: u64,
    spi_r: u64,
    local: SocketAddr,
    remote: SocketAddr,
    ni: Vec<u8>,
    nr: Vec<u8>,
    /// The IKE_SA_INIT request and response as sent (RealMessage1/2).
    msg1: Vec<u8>,
    msg2: Vec<u8>,
    /// The hashes the peer announced in SIGNATURE_HASH_ALGORITHMS.
    peer_hashes: Vec<HashAlgorithm>,
    /// Virtual addresses: leased to the peer (responder) or assigned to
    /// us (initiator).
    virtual_ips: Vec<IpAddr>,
    /// Virtual addresses the peer assigned to us (initiator).
    assigned_ips: Vec<IpAddr>,
    crypto: Option<SaCrypto>,
    next_message_id: u32,
    pending: Option<Pending>,
    /// Requests we answered: the next expected message ID and the last
    /// response, for retransmissions (the request as received: its last
    /// fragment, if fragmented).
    expected_request: u32,
    last_request: Vec<u8>,
    last_response: Option<Datagrams>,
    /// With IKE fragmentation negotiated (RFC 7383): the largest IKE
    /// message to send whole, as configured.
    fragment_size: Option<usize>,
    /// Fragments received and not yet whole, once any came.
    reassembler: Option<Box<Reassembler>>,
    /// A message just reassembled from fragments, for [`Self::open`]: its
    /// first inner payload type and SK plaintext.
    reassembled: Option<(PayloadType, Vec<u8>)>,
    /// The CHILD_SAs of this IKE SA.
    children: Vec<ChildRecord>,
    /// When the peer last sent an authentic message (for DPD).
    last_heard: Instant,
    /// We asked the peer to delete the IKE SA.
    deleting: bool,
    /// What NAT detection found in IKE_SA_INIT.
    nat: NatState,
    /// The (local, remote) path of the message being handled.
    arrived_on: (SocketAddr, SocketAddr),
    /// The peer's address when the SA was made.
    init_remote: SocketAddr,
    /// When to rekey the IKE SA (cleared once a rekey started) and when it
    /// expires.
    rekey_at: Option<Instant>,
    expire_at: Option<Instant>,
    /// A redundant IKE SA of a rekey collision (section 2.8.2): never
    /// reported, so its end is not reported either (only synced).
    quiet: bool,
    /// TEMPORARY_FAILURE answers to our rekeys in a row (section 2.25).
    temporary_failures: u32,
}

impl IkeSa {
    /// Starts an IKE SA as initiator: builds the IKE_SA_INIT request.
    pub(crate) fn initiate<R: CryptoRng + ?Sized>(
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        spi_i: u64,
        local: SocketAddr,
        remote: SocketAddr,
        out: &mut Output,
    ) -> Result<Self, Error> {
        let group =
            first_group(&config.proposals).ok_or(Error::InvalidSuite("IKE proposal without a group"))?;
        let mut ni = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut ni);
        let mut sa = Self {
            id: IkeSaId(spi_i),
            role: Role::Initiator,
            state: State::Failed,
            spi_i,
            spi_r: 0,
            local,
            remote,
            ni,
            nr: Vec::new(),
            msg1: Vec::new(),
            msg2: Vec::new(),
            peer_hashes: Vec::new(),
            virtual_ips: Vec::new(),
            assigned_ips: Vec::new(),
            crypto: None,
            next_message_id: 0,
            pending: None,
            expected_request: 0,
            last_request: Vec::new(),
            last_response: None,
            fragment_size: None,
            reassembler: None,
            reassembled: None,
            children: Vec::new(),
            last_heard: now,
            deleting: false,
            nat: NatState::default(),
            arrived_on: (local, remote),
            init_remote: remote,
            rekey_at: None,
            expire_at: None,
            quiet: false,
            temporary_failures: 0,
        };
        sa.send_init(config, rng, now, group, None, out)?;
        Ok(sa)
    }

    fn send_init<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        group: DhGroup,
        cookie: Option<Vec<u8>>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let ke = KeyExchange::generate(group, rng);
        let spi_i = self.spi_i.to_be_bytes();
        let src = nat_detection_hash(&spi_i, &[0; 8], source_for_natd(config, self.local));
        let dst = nat_detection_hash(&spi_i, &[0; 8], self.remote);
        let mut b = MessageBuilder::new(header(self.spi_i, 0, ExchangeType::IKE_SA_INIT, true, false, 0));
        if let Some(c) = &cookie {
            b.push(Payload::Notify(Notify::new(NotifyType::COOKIE, c)));
        }
        b.push(Payload::Sa(sa_payload(&config.proposals, ProtocolId::IKE, &[])?));
        b.push(Payload::Ke(Ke { group: group.iana_id(), data: ke.public_value() }));
        b.push(Payload::Nonce(Nonce { data: &self.ni }));
        b.push(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, &src)));
        b.push(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_DESTINATION_IP, &dst)));
        let hashes = signature_hash_algorithms_data(&SUPPORTED_HASH_ALGORITHMS);
        b.push(Payload::Notify(Notify::new(NotifyType::SIGNATURE_HASH_ALGORITHMS, &hashes)));
        if config.fragmentation {
            b.push(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[])));
        }
        let bytes = b.build()?;
        self.msg1 = bytes.clone();
        self.next_message_id = 0;
        self.send_request(config, now, vec![bytes], Context::Plain, out);
        self.state = State::InitSent { ke: Box::new(ke), cookie };
        Ok(())
    }

    /// Answers an IKE_SA_INIT request as responder. `Ok(None)` means the
    /// request was refused with a stateless answer already queued.
    #[allow(clippy::too_many_arguments)] // the inputs of a new SA
    pub(crate) fn respond<R: CryptoRng + ?Sized>(
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<Option<Self>, Error> {
        let h = msg.header;
        let p = parts(&msg.payloads);
        let (Some(sa_p), Some(ke_p), Some(ni)) = (p.sa, p.ke, p.nonce) else {
            return Err(Error::InvalidSyntax("IKE_SA_INIT request lacks SA, KE or Nonce"));
        };
        let refuse = |out: &mut Output, ty: NotifyType, data: &[u8]| -> Result<Option<Self>, Error> {
            let reply = MessageBuilder::new(header(h.spi_i, 0, ExchangeType::IKE_SA_INIT, false, true, 0))
                .payload(Payload::Notify(Notify::new(ty, data)))
                .build()?;
            out.transmit(local, remote, reply);
            Ok(None)
        };
        let Some(chosen) = select(ProposalKind::Ike, &config.proposals, &offers(sa_p, ProtocolId::IKE))
        else {
            return refuse(out, NotifyType::NO_PROPOSAL_CHOSEN, &[]);
        };
        let (Some(prf), Some(group)) = (chosen.prf, chosen.dh) else {
            return Err(Error::InvalidSuite("IKE selection without PRF or group"));
        };
        if ke_p.group != group.iana_id() {
            return refuse(out, NotifyType::INVALID_KE_PAYLOAD, &group.iana_id().to_be_bytes());
        }
        let ke = KeyExchange::generate(group, rng);
        let g_ir = ke.shared_secret(ke_p.data)?;
        let mut nr = vec![0u8; NONCE_LEN];
        rng.fill_bytes(&mut nr);
        let crypto = derive(prf, &chosen, ni, &nr, h.spi_i, spi_r, g_ir.expose(), Role::Responder)?;

        let (spi_i, spi_rb) = (h.spi_i.to_be_bytes(), spi_r.to_be_bytes());
        let src = nat_detection_hash(&spi_i, &spi_rb, source_for_natd(config, local));
        let dst = nat_detection_hash(&spi_i, &spi_rb, remote);
        let mut b = MessageBuilder::new(header(h.spi_i, spi_r, ExchangeType::IKE_SA_INIT, false, true, 0))
            .payload(Payload::Sa(
                sa_payload(&[chosen.to_proposal()], ProtocolId::IKE, &[])?.numbered(chosen.number),
            ))
            .payload(Payload::Ke(Ke { group: group.iana_id(), data: ke.public_value() }))
            .payload(Payload::Nonce(Nonce { data: &nr }))
            .payload(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, &src)))
            .payload(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_DESTINATION_IP, &dst)));
        let certreq = authenticate::certreq(&config.remote_auth);
        if let Some(data) = &certreq {
            b.push(authenticate::certreq_payload(data));
        }
        // Section 4 of RFC 7427: announced back only to a peer that did.
        let peer_hashes = peer_hashes(msg)?;
        let hashes = signature_hash_algorithms_data(&SUPPORTED_HASH_ALGORITHMS);
        if !peer_hashes.is_empty() {
            b.push(Payload::Notify(Notify::new(NotifyType::SIGNATURE_HASH_ALGORITHMS, &hashes)));
        }
        // RFC 7383 section 2.3: announced back only to a peer that did.
        let fragments = config.fragmentation && announces_fragmentation(msg);
        if fragments {
            b.push(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[])));
        }
        let reply = b.build()?;
        out.transmit(local, remote, reply.clone());
        Ok(Some(Self {
            id: IkeSaId(spi_r),
            role: Role::Responder,
            state: State::InitReplied,
            spi_i: h.spi_i,
            spi_r,
            local,
            remote,
            ni: ni.to_vec(),
            nr,
            msg1: msg.bytes().to_vec(),
            msg2: reply.clone(),
            peer_hashes,
            virtual_ips: Vec::new(),
            assigned_ips: Vec::new(),
            crypto: Some(crypto),
            next_message_id: 0,
            pending: None,
            expected_request: 1,
            last_request: msg.bytes().to_vec(),
            last_response: Some(vec![reply]),
            fragment_size: fragments.then_some(config.fragment_size),
            reassembler: None,
            reassembled: None,
            children: Vec::new(),
            last_heard: now,
            deleting: false,
            nat: forced(config, detect_nat(msg, h.spi_i, 0, local, remote)),
            arrived_on: (local, remote),
            init_remote: remote,
            rekey_at: None,
            expire_at: None,
            quiet: false,
            temporary_failures: 0,
        }))
    }

    /// Our SPI.
    pub(crate) fn id(&self) -> IkeSaId {
        self.id
    }

    /// For a responder SA: the initiator's SPI and address its IKE_SA_INIT
    /// came from, which the endpoint indexes it by.
    pub(crate) fn init_key(&self) -> Option<(u64, SocketAddr)> {
        (self.role == Role::Responder).then_some((self.spi_i, self.init_remote))
    }

    /// Drops what only IKE_AUTH needed (the IKE_SA_INIT messages and the
    /// nonces) once the SA is established: about half a KiB per SA.
    fn forget_handshake(&mut self) {
        if matches!(self.state, State::Established) && !self.msg1.is_empty() {
            self.msg1 = Vec::new();
            self.msg2 = Vec::new();
            self.peer_hashes = Vec::new();
            self.ni = Vec::new();
            self.nr = Vec::new();
        }
    }

    /// Hands over the SA's virtual addresses, for the pool to take back.
    pub(crate) fn take_virtual_ips(&mut self) -> Vec<IpAddr> {
        std::mem::take(&mut self.virtual_ips)
    }

    /// Whether the SA is a responder's, between IKE_SA_INIT and IKE_AUTH.
    pub(crate) fn is_half_open(&self) -> bool {
        matches!(self.state, State::InitReplied)
    }

    /// Whether the SA is deleted or failed and can be dropped.
    pub(crate) fn is_deleted(&self) -> bool {
        matches!(self.state, State::Deleted | State::Failed)
    }

    /// The next retransmission or liveness-check deadline.
    pub(crate) fn poll_timeout(&self, config: &IkeConfig) -> Option<Instant> {
        let protocol = match (&self.pending, &self.state, config.dpd_delay) {
            (Some(p), ..) => Some(p.deadline),
            (None, State::Established, Some(dpd)) => Some(self.last_heard + dpd),
            (None, State::InitReplied, _) => Some(self.last_heard + config.half_open_timeout),
            _ => None,
        };
        if !matches!(self.state, State::Established) {
            return protocol;
        }
        // Expiry always counts; rekeys only when a request could start.
        let idle = self.pending.is_none();
        let ike = [self.expire_at, self.rekey_at.filter(|_| idle)];
        let children = self.children.iter().flat_map(|c| [c.expire_at, c.rekey_at.filter(|_| idle)]);
        protocol.into_iter().chain(ike.into_iter().flatten()).chain(children.flatten()).min()
    }

    /// Retransmits an overdue request, gives up on a silent peer, or sends
    /// a liveness check (an empty INFORMATIONAL request) when the peer has
    /// been quiet for `dpd_delay`.
    pub(crate) fn handle_timeout<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        out: &mut Output,
    ) {
        if matches!(self.state, State::InitReplied) && now >= self.last_heard + config.half_open_timeout {
            // IKE_AUTH never came: forget the half-open SA.
            self.fail(Error::Timeout, out);
            return;
        }
        if matches!(self.state, State::Established) && self.expire(config, rng, now, out) {
            return;
        }
        let Some(p) = self.pending.as_mut() else {
            if matches!(self.state, State::Established) {
                self.start_due_request(config, rng, now, alloc, out);
            }
            return;
        };
        if now < p.deadline {
            return;
        }
        if p.retries >= config.retransmit_tries {
            self.pending = None;
            if matches!(self.state, State::Established) {
                // Our Delete of the IKE SA unanswered: the peer may have
                // forgotten the SA after answering (the answer was lost);
                // either way the SA ends as asked.
                let error = (!self.deleting).then_some(Error::Timeout);
                self.delete_local(error, out);
            } else {
                self.fail(Error::Timeout, out);
            }
            return;
        }
        p.retries += 1;
        p.timeout = p.timeout.saturating_mul(2);
        p.deadline = now + p.timeout;
        for d in &p.bytes {
            out.transmit(self.local, self.remote, d.clone());
        }
    }

    /// Handles a message for this SA (the endpoint matched its SPIs).
    #[allow(clippy::too_many_arguments)] // a datagram, its path, and the context
    pub(crate) fn handle<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        path: (SocketAddr, SocketAddr),
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let h = msg.header;
        if self.is_passive() {
            return Err(Error::Passive);
        }
        self.arrived_on = path;
        if msg.skf().is_some() {
            return self.handle_fragment(config, rng, now, alloc, msg, out);
        }
        if h.flags.response() {
            let Some(p) = &self.pending else { return Ok(()) };
            if p.message_id != h.message_id {
                return Err(Error::InvalidSyntax("response with an unexpected message ID"));
            }
        } else if h.message_id.wrapping_add(1) == self.expected_request {
            // A retransmission (the very same bytes) gets the cached answer.
            if msg.bytes() == self.last_request {
                self.resend_response(out);
            }
            return Ok(());
        } else if h.message_id != self.expected_request {
            return Err(Error::InvalidSyntax("request with an unexpected message ID"));
        }
        self.dispatch(config, rng, now, alloc, msg, out)
    }

    /// Handles an IKE Fragment message (RFC 7383): checks its message ID,
    /// collects it, and once its message is whole handles that.
    fn handle_fragment<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let h = msg.header;
        if self.fragment_size.is_none() {
            return Err(Error::InvalidSyntax("fragment without negotiated fragmentation"));
        }
        let crypto = self.crypto.as_ref().ok_or(Error::InvalidSyntax("fragment before keys"))?;
        if h.flags.response() {
            let Some(p) = &self.pending else { return Ok(()) };
            if p.message_id != h.message_id {
                return Err(Error::InvalidSyntax("response with an unexpected message ID"));
            }
        } else if h.message_id.wrapping_add(1) == self.expected_request {
            // RFC 7383 section 2.6.1: an answered request's first fragment,
            // if authentic, gets the answer again; the others are dropped.
            if fragment::open(msg.bytes(), &crypto.inb)?.number == 1 {
                self.resend_response(out);
            }
            return Ok(());
        } else if h.message_id != self.expected_request {
            return Err(Error::InvalidSyntax("request with an unexpected message ID"));
        }
        let reassembler = self.reassembler.get_or_insert_with(Box::default);
        let Some(whole) = reassembler.add(msg.bytes(), &crypto.inb)? else { return Ok(()) };
        self.reassembled = Some(whole);
        let r = self.dispatch(config, rng, now, alloc, msg, out);
        self.reassembled = None;
        r
    }

    /// Sends the cached answer to the last request again.
    fn resend_response(&self, out: &mut Output) {
        for d in self.last_response.iter().flatten() {
            out.transmit(self.local, self.remote, d.clone());
        }
    }

    /// Handles a whole message whose message ID was checked: opens an
    /// encrypted one (dropping it silently if it does not authenticate),
    /// deals with the errors of section 2.21.3, then runs the exchange.
    fn dispatch<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let h = msg.header;
        let answerable = matches!(
            (&self.state, h.exchange_type),
            (State::InitReplied, ExchangeType::IKE_AUTH)
                | (State::Established, ExchangeType::INFORMATIONAL | ExchangeType::CREATE_CHILD_SA)
        );
        if answerable {
            let (first, plain) = self.open(msg)?;
            if h.flags.response() {
                if carries_invalid_syntax(first, &plain) {
                    // Section 2.21.3: the peer found our request malformed,
                    // which ends the IKE SA on both sides.
                    self.heard(now);
                    self.delete_local(Some(Error::Refused(NotifyType::INVALID_SYNTAX.0)), out);
                    return Ok(());
                }
            } else {
                let checked = wire::parse_inner(first, &plain).and_then(|inner| {
                    rules::check(h.exchange_type, false, &rules::types(&msg.payloads), &rules::types(&inner))
                });
                if let Err(e) = checked {
                    self.heard(now);
                    self.reject(rng, msg, e, out)?;
                    self.last_request = msg.bytes().to_vec();
                    self.sync_last_exchange(out);
                    return Ok(());
                }
            }
            self.reassembled = Some((first, plain));
        }
        let r = self.dispatch_whole(config, rng, now, alloc, msg, out);
        self.reassembled = None;
        r
    }

    /// Answers an authentic request whose payloads break the rules
    /// (section 2.21.3): with UNSUPPORTED_CRITICAL_PAYLOAD for a critical
    /// payload we do not know (section 2.5), else with INVALID_SYNTAX,
    /// which also ends the IKE SA here, with no Delete exchange (the peer
    /// ends it when the answer comes).
    fn reject<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        msg: &Message<'_>,
        error: Error,
        out: &mut Output,
    ) -> Result<(), Error> {
        let h = msg.header;
        let (ty, data) = match error {
            Error::UnsupportedCriticalPayload(t) => (NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![t]),
            _ => (NotifyType::INVALID_SYNTAX, Vec::new()),
        };
        let n = [Payload::Notify(Notify::new(ty, &data))];
        let reply = self.encrypt(rng, h.exchange_type, true, h.message_id, &n)?;
        self.answer(h.message_id, reply, out);
        if ty == NotifyType::INVALID_SYNTAX {
            if matches!(self.state, State::Established) {
                self.delete_local(Some(error), out);
            } else {
                self.fail(error, out);
            }
        }
        Ok(())
    }

    /// Runs the exchange of a whole, authentic message.
    fn dispatch_whole<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let h = msg.header;
        if h.flags.response() {
            let r = self.handle_response(config, rng, now, alloc, msg, out);
            self.forget_handshake();
            return r;
        }
        let r = match (&self.state, h.exchange_type) {
            (State::InitReplied, ExchangeType::IKE_AUTH) => {
                self.respond_auth(config, rng, now, alloc, msg, out)
            }
            (State::Established, ExchangeType::INFORMATIONAL) => {
                self.respond_informational(config, rng, now, msg, out)
            }
            (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                self.respond_create_child(config, rng, now, alloc, msg, out)
            }
            _ => Err(Error::InvalidSyntax("request not expected in this state")),
        };
        self.forget_handshake();
        if r.is_ok() {
            self.last_request = msg.bytes().to_vec();
            self.sync_last_exchange(out);
        }
        r
    }

    /// Syncs the last request answered and its answer, once established.
    fn sync_last_exchange(&self, out: &mut Output) {
        if let (Some(response), State::Established) = (&self.last_response, &self.state) {
            out.sync(SyncEvent::LastExchange {
                sa: self.id,
                request: self.last_request.clone(),
                response: response.clone(),
            });
        }
    }

    fn handle_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        match (&self.state, msg.header.exchange_type) {
            (State::InitSent { .. }, ExchangeType::IKE_SA_INIT) => {
                self.init_response(config, rng, now, alloc, msg, out)
            }
            (State::AuthSent { .. }, ExchangeType::IKE_AUTH) => {
                self.auth_response(config, now, alloc.unix_now, msg, out)
            }
            (State::Established, ExchangeType::INFORMATIONAL) => {
                let (first, plain) = self.open(msg)?;
                inner_payloads(msg, first, &plain)?;
                self.heard(now);
                let context = self.pending.take().map(|p| p.context);
                self.next_message_id = self.next_message_id.wrapping_add(1);
                if let Some(Context::DeleteChild { old }) = context {
                    self.child_deleted(old, out);
                }
                if self.deleting {
                    self.delete_local(None, out);
                }
                Ok(())
            }
            (State::Established, ExchangeType::CREATE_CHILD_SA) => {
                self.create_child_response(config, rng, now, msg, out)
            }
            _ => Err(Error::InvalidSyntax("response not expected in this state")),
        }
    }

    /// Initiator: the IKE_SA_INIT response. Derives the keys and sends
    /// IKE_AUTH, or retries with the group or cookie the responder asked for.
    fn init_response<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let State::InitSent { ke, cookie } = &self.state else {
            return Err(Error::InvalidSyntax("IKE_SA_INIT response not expected"));
        };
        let (group, cookie) = (ke.group(), cookie.clone());
        for p in &msg.payloads {
            let Payload::Notify(n) = p else { continue };
            if n.ty == NotifyType::COOKIE && cookie.as_deref() != Some(n.data) {
                self.pending = None;
                return self.send_init(config, rng, now, group, Some(n.data.to_vec()), out);
            }
            if n.ty == NotifyType::INVALID_KE_PAYLOAD {
                let wanted = n.data.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]]));
                let ours = config.proposals.iter().flat_map(|p| p.dh.iter().copied());
                match wanted
                    .and_then(DhGroup::from_iana_id)
                    .filter(|g| *g != group && ours.clone().any(|o| o == *g))
                {
                    Some(g) => {
                        self.pending = None;
                        return self.send_init(config, rng, now, g, cookie, out);
                    }
                    None => {
                        self.fail(Error::Refused(n.ty.0), out);
                        return Ok(());
                    }
                }
            }
            if n.ty.is_error() {
                self.fail(Error::Refused(n.ty.0), out);
                return Ok(());
            }
        }
        let p = parts(&msg.payloads);
        let (Some(sa_p), Some(ke_p), Some(nr)) = (p.sa, p.ke, p.nonce) else {
            return Err(Error::InvalidSyntax("IKE_SA_INIT response lacks SA, KE or Nonce"));
        };
        let chosen = accepted(ProposalKind::Ike, &config.proposals, sa_p, ProtocolId::IKE)?;
        let (Some(prf), Some(g)) = (chosen.prf, chosen.dh) else {
            return Err(Error::InvalidSuite("IKE selection without PRF or group"));
        };
        if g != group || ke_p.group != group.iana_id() || msg.header.spi_r == 0 {
            return Err(Error::InvalidSyntax("IKE_SA_INIT response does not match the request"));
        }
        let State::InitSent { ke, .. } = &self.state else {
            return Err(Error::InvalidSyntax("IKE_SA_INIT response not expected"));
        };
        let g_ir = ke.shared_secret(ke_p.data)?;
        self.spi_r = msg.header.spi_r;
        self.nr = nr.to_vec();
        self.msg2 = msg.bytes().to_vec();
        self.peer_hashes = peer_hashes(msg)?;
        self.fragment_size =
            (config.fragmentation && announces_fragmentation(msg)).then_some(config.fragment_size);
        self.nat = forced(config, detect_nat(msg, self.spi_i, self.spi_r, self.local, self.remote));
        if self.nat.detected() {
            // Section 2.23: behind a NAT, IKE moves to port 4500 (with the
            // non-ESP marker, which the driver adds on that port).
            for a in [&mut self.local, &mut self.remote] {
                if a.port() == IKE_PORT {
                    a.set_port(NAT_T_PORT);
                }
            }
        }
        self.crypto =
            Some(derive(prf, &chosen, &self.ni, nr, self.spi_i, self.spi_r, g_ir.expose(), self.role)?);
        self.pending = None;

        // IKE_AUTH: IDi, [CERT...], [CERTREQ], AUTH, SAi2, TSi, TSr.
        let child_spi = alloc.child_spi(rng, self.id);
        let idi = config.local_id.body();
        let (method, auth) = self.our_auth(config, rng, &idi)?;
        let child_sa =
            sa_payload(&without_pfs(&config.child.proposals), ProtocolId::ESP, &child_spi.to_be_bytes())?;
        let certreq = authenticate::certreq(&config.remote_auth);
        let mut payloads = vec![Payload::IdI(Id { ty: config.local_id.ty, data: &config.local_id.data })];
        payloads.extend(authenticate::cert_payloads(&config.local_auth));
        payloads.extend(certreq.as_deref().map(authenticate::certreq_payload));
        payloads.push(Payload::Auth(Auth { method, data: &auth }));
        if config.request_virtual_ip {
            payloads.push(Payload::Cp(virtual_ip::request()));
        }
        payloads.extend([
            Payload::Sa(child_sa),
            Payload::TsI(ts_payload(&config.child.local_ts)),
            Payload::TsR(ts_payload(&config.child.remote_ts)),
        ]);
        self.next_message_id = 1;
        let bytes = self.encrypt(rng, ExchangeType::IKE_AUTH, false, 1, &payloads)?;
        self.send_request(config, now, bytes, Context::Plain, out);
        self.state = State::AuthSent { child_spi };
        Ok(())
    }

    /// Responder: the IKE_AUTH request.
    fn respond_auth<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (first, plain) = self.open(msg)?;
        self.heard(now);
        let payloads = inner_payloads(msg, first, &plain)?;
        let idi_body = raw_body(first, &plain, PayloadType::IDi)?;
        let (mut auth, mut idi, mut sa_p, mut tsi, mut tsr) = (None, None, None, None, None);
        let (mut certs, mut cp_request) = (Vec::new(), None);
        for p in &payloads {
            match p {
                Payload::IdI(i) => idi = Some(i),
                Payload::Cp(c) if c.cfg_type == CfgType::CFG_REQUEST => cp_request = Some(c),
                Payload::Auth(a) => auth = Some(a),
                Payload::Sa(s) => sa_p = Some(s),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                Payload::Cert(c) if c.encoding == CertEncoding::X509_SIGNATURE => certs.push(c.data),
                _ => {}
            }
        }
        let (Some(idi), Some(auth)) = (idi, auth) else {
            return Err(Error::InvalidSyntax("IKE_AUTH request lacks IDi or AUTH"));
        };
        let verified =
            self.verify_peer(config, &PeerProof { id: idi, auth, certs }, idi_body, alloc.unix_now);
        if let Err(e) = verified {
            let n = [Payload::Notify(Notify::new(NotifyType::AUTHENTICATION_FAILED, &[]))];
            let reply = self.encrypt(rng, ExchangeType::IKE_AUTH, true, msg.header.message_id, &n)?;
            self.answer(msg.header.message_id, reply, out);
            self.fail(e, out);
            return Ok(());
        }

        let idr = config.local_id.body();
        let (method, our_auth) = self.our_auth(config, rng, &idr)?;
        let mut reply = vec![Payload::IdR(Id { ty: config.local_id.ty, data: &config.local_id.data })];
        reply.extend(authenticate::cert_payloads(&config.local_auth));
        reply.push(Payload::Auth(Auth { method, data: &our_auth }));
        // A virtual address, if asked for: without one, no CHILD_SA.
        let cp_reply = match cp_request {
            Some(request) => {
                let peer = Identity { ty: idi.ty, data: idi.data.to_vec() };
                virtual_ip::lease(request, &peer, alloc.pool.as_deref_mut(), &config.dns).map(|(ips, cp)| {
                    self.virtual_ips = ips;
                    Some(cp)
                })
            }
            None => Ok(None),
        };
        if let Ok(Some(cp)) = &cp_reply {
            reply.push(Payload::Cp(cp.clone()));
        }
        // The CHILD_SA: its failure leaves the IKE SA up (section 1.2).
        let child = match (cp_reply, sa_p, tsi, tsr) {
            (Err(ty), ..) => Err(ty),
            (Ok(_), Some(sa_p), Some(tsi), Some(tsr)) => {
                self.negotiate_child(config, rng, alloc, sa_p, tsi, tsr, false)
            }
            _ => Err(NotifyType::INVALID_SYNTAX),
        };
        match &child {
            Ok((c, local_ts, remote_ts)) => {
                let sa = sa_payload(&[c.selected.to_proposal()], ProtocolId::ESP, &c.spi.to_be_bytes())?;
                reply.push(Payload::Sa(sa.numbered(c.selected.number)));
                // TSi is the initiator's side: the remote one for us.
                reply.push(Payload::TsI(ts_payload(remote_ts)));
                reply.push(Payload::TsR(ts_payload(local_ts)));
            }
            Err(ty) => reply.push(Payload::Notify(Notify::new(*ty, &[]))),
        }
        let bytes = self.encrypt(rng, ExchangeType::IKE_AUTH, true, msg.header.message_id, &reply)?;
        self.answer(msg.header.message_id, bytes, out);
        self.establish(config, now, out);
        out.event(Event::IkeSaEstablished {
            sa: self.id,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            remote: self.remote,
            nat: self.nat,
            virtual_ips: self.virtual_ips.clone(),
            dns: Vec::new(),
        });
        if let Ok((sa, local_ts, remote_ts)) = child {
            self.install_child(config, now, sa, local_ts, remote_ts, out)?;
        }
        Ok(())
    }

    /// Responder side of a CHILD_SA: proposal and selectors.
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn negotiate_child<R: CryptoRng + ?Sized>(
        &self,
        config: &IkeConfig,
        rng: &mut R,
        alloc: &mut Allocator<'_>,
        sa_p: &Sa,
        tsi: &Ts,
        tsr: &Ts,
        allow_pfs: bool,
    ) -> Result<(ChildOffer, Vec<TrafficSelector>, Vec<TrafficSelector>), NotifyType> {
        let offers = offers(sa_p, ProtocolId::ESP);
        // IKE_AUTH carries no KE payload: PFS only in CREATE_CHILD_SA.
        let ours =
            if allow_pfs { config.child.proposals.clone() } else { without_pfs(&config.child.proposals) };
        let selected = select(ProposalKind::Esp, &ours, &offers).ok_or(NotifyType::NO_PROPOSAL_CHOSEN)?;
        let peer_spi = sa_p
            .proposals
            .iter()
            .find(|p| p.number == selected.number && p.protocol == ProtocolId::ESP)
            .and_then(|p| <[u8; 4]>::try_from(p.spi.as_slice()).ok())
            .map(u32::from_be_bytes)
            .ok_or(NotifyType::INVALID_SYNTAX)?;
        // TSi is the initiator's side: the remote one for us; a peer with
        // virtual addresses gets only those.
        let remote_allowed = if self.virtual_ips.is_empty() {
            config.child.remote_ts.clone()
        } else {
            let vips: Vec<_> = self.virtual_ips.iter().map(|a| TrafficSelector::any(*a, *a)).collect();
            narrow(&vips, &config.child.remote_ts)
        };
        // Our side, when the peer assigned us addresses, is only those.
        let local_allowed = if self.assigned_ips.is_empty() {
            config.child.local_ts.clone()
        } else {
            let ours: Vec<_> = self.assigned_ips.iter().map(|a| TrafficSelector::any(*a, *a)).collect();
            narrow(&ours, &config.child.local_ts)
        };
        let remote_ts = narrow(&ranges(tsi), &remote_allowed);
        let local_ts = narrow(&ranges(tsr), &local_allowed);
        if remote_ts.is_empty() || local_ts.is_empty() {
            return Err(NotifyType::TS_UNACCEPTABLE);
        }
        Ok((ChildOffer { selected, spi: alloc.child_spi(rng, self.id), peer_spi }, local_ts, remote_ts))
    }

    /// Initiator: the IKE_AUTH response.
    fn auth_response(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        unix_now: Option<u64>,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let State::AuthSent { child_spi } = self.state else {
            return Err(Error::InvalidSyntax("IKE_AUTH response not expected"));
        };
        let (first, plain) = self.open(msg)?;
        self.heard(now);
        self.next_message_id = 2;
        let payloads = inner_payloads(msg, first, &plain)?;
        self.pending = None;
        let (mut auth, mut idr, mut sa_p, mut tsi, mut tsr, mut error) = (None, None, None, None, None, None);
        let (mut certs, mut cp_reply) = (Vec::new(), None);
        for p in &payloads {
            match p {
                Payload::IdR(i) => idr = Some(i),
                Payload::Cp(c) => cp_reply = Some(c),
                Payload::Auth(a) => auth = Some(a),
                Payload::Sa(s) => sa_p = Some(s),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                Payload::Notify(n) if n.ty.is_error() => error = Some(n.ty),
                Payload::Cert(c) if c.encoding == CertEncoding::X509_SIGNATURE => certs.push(c.data),
                _ => {}
            }
        }
        let (Some(idr), Some(auth)) = (idr, auth) else {
            let e = error
                .map_or(Error::InvalidSyntax("IKE_AUTH response lacks IDr or AUTH"), |t| Error::Refused(t.0));
            self.fail(e, out);
            return Ok(());
        };
        let idr_body = raw_body(first, &plain, PayloadType::IDr)?;
        let verified = self.verify_peer(config, &PeerProof { id: idr, auth, certs }, idr_body, unix_now);
        if let Err(e) = verified {
            self.fail(e, out);
            return Ok(());
        }
        let dns = match cp_reply.filter(|_| config.request_virtual_ip) {
            Some(cp) => {
                let (addrs, dns) = virtual_ip::parse_reply(cp);
                self.assigned_ips = addrs;
                dns
            }
            None => Vec::new(),
        };
        self.establish(config, now, out);
        out.event(Event::IkeSaEstablished {
            sa: self.id,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            remote: self.remote,
            nat: self.nat,
            virtual_ips: self.assigned_ips.clone(),
            dns,
        });

        let (Some(sa_p), Some(tsi), Some(tsr)) = (sa_p, tsi, tsr) else {
            let e = error.map_or(Error::InvalidSyntax("IKE_AUTH response lacks the CHILD_SA"), |t| {
                Error::Refused(t.0)
            });
            out.event(Event::ChildSaFailed { sa: self.id, error: e });
            return Ok(());
        };
        // The answer must be one of our proposals and within our selectors.
        let selected =
            match accepted(ProposalKind::Esp, &without_pfs(&config.child.proposals), sa_p, ProtocolId::ESP) {
                Ok(s) if s.dh.is_none() => s,
                _ => return Err(Error::InvalidSyntax("IKE_AUTH response chose no proposal of ours")),
            };
        let (peer_spi, local_ts, remote_ts) =
            answered_child(sa_p, (tsi, tsr), (&config.child.local_ts, &config.child.remote_ts))?;
        self.install_child(
            config,
            now,
            ChildOffer { selected, spi: child_spi, peer_spi },
            local_ts,
            remote_ts,
            out,
        )
    }

    /// Derives a CHILD_SA's keys and reports it.
    fn install_child(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        c: ChildOffer,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (ni, nr) = (self.ni.clone(), self.nr.clone());
        let requester = self.role == Role::Initiator;
        let child = self.new_child(config, now, c, local_ts, remote_ts, (&ni, &nr), None, requester, out)?;
        out.event(Event::ChildSaEstablished(child));
        Ok(())
    }

    /// Derives a CHILD_SA's KEYMAT from the nonces (and new key exchange) of
    /// the exchange that made it (section 2.17), records it, and returns
    /// it; `requester` says whether we initiated that exchange.
    #[allow(clippy::too_many_arguments)] // the terms of section 2.17 and the SA's context
    fn new_child(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        c: ChildOffer,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
        (ni, nr): (&[u8], &[u8]),
        g_ir: Option<&[u8]>,
        requester: bool,
        out: &mut Output,
    ) -> Result<ChildSa, Error> {
        let crypto = self.crypto.as_ref().ok_or(Error::InvalidSyntax("CHILD_SA before keys"))?;
        let suite = SkSuite::new(c.selected.encr, c.selected.integ)?;
        let len = suite.encr_keymat_len() + suite.integ_key_len();
        let keys = child_sa_keys(crypto.prf, crypto.keys.sk_d().expose(), g_ir, ni, nr, len)?;
        let (inbound, outbound) = if requester {
            (keys.responder_to_initiator(), keys.initiator_to_responder())
        } else {
            (keys.initiator_to_responder(), keys.responder_to_initiator())
        };
        // The SPI is random: it picks the rekey jitter too.
        let deadlines =
            config.child.lifetime.map(|l| l.deadlines(now, u64::from(c.spi).wrapping_mul(JITTER_MIX)));
        self.children.push(ChildRecord {
            inbound: c.spi,
            outbound: c.peer_spi,
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            rekey_at: deadlines.map(|d| d.0),
            expire_at: deadlines.map(|d| d.1),
        });
        let child = ChildSa {
            ike_sa: self.id,
            local: self.local,
            remote: self.remote,
            udp_encap: self.nat.detected(),
            inbound_spi: c.spi,
            outbound_spi: c.peer_spi,
            encr: c.selected.encr,
            integ: c.selected.integ,
            esn: c.selected.esn,
            local_ts,
            remote_ts,
            inbound_keymat: inbound.clone(),
            outbound_keymat: outbound.clone(),
        };
        out.sync(SyncEvent::ChildAdded {
            sa: self.id,
            child: Box::new(child.clone()),
            rekey_at: deadlines.map(|d| d.0),
            expire_at: deadlines.map(|d| d.1),
        });
        Ok(child)
    }

    /// Responder side of INFORMATIONAL (section 1.4): liveness checks are
    /// answered empty; Deletes of CHILD_SAs are answered with the Deletes
    /// of their partners; a Delete of the IKE SA ends it with its children.
    fn respond_informational<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        msg: &Message<'_>,
        out: &mut Output,
    ) -> Result<(), Error> {
        let (first, plain) = self.open(msg)?;
        self.heard(now);
        let payloads = inner_payloads(msg, first, &plain)?;
        let mut delete_ike = false;
        let mut ours = Vec::new();
        for p in &payloads {
            let Payload::Delete(d) = p else { continue };
            match d.protocol {
                ProtocolId::IKE => delete_ike = true,
                ProtocolId::ESP => {
                    for spi in d.child_spis() {
                        if let Some(i) = self.children.iter().position(|c| c.outbound == spi) {
                            let ChildRecord { inbound, outbound, .. } = self.children.remove(i);
                            ours.push(inbound);
                            out.event(Event::ChildSaDeleted {
                                sa: self.id,
                                inbound_spi: inbound,
                                outbound_spi: outbound,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        let reply: Vec<Payload<'_>> = if delete_ike || ours.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(Delete::child(ProtocolId::ESP, ours))]
        };
        let bytes = self.encrypt(rng, ExchangeType::INFORMATIONAL, true, msg.header.message_id, &reply)?;
        self.answer(msg.header.message_id, bytes, out);
        if delete_ike {
            // Our own rekey of this IKE SA crossed the peer's, whose new SA
            // survives: the peer deletes the old one only then (2.25.2).
            if let Some(Pending { context: Context::RekeyIke { crossed: Some(c), .. }, .. }) =
                self.pending.take()
            {
                self.adopt(config, now, c.sa, out);
            }
            self.delete_local(None, out);
        }
        Ok(())
    }

    /// Sends an INFORMATIONAL request (window size 1: only when nothing is
    /// outstanding).
    pub(crate) fn send_informational<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        payloads: &[Payload<'_>],
        out: &mut Output,
    ) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("INFORMATIONAL before the IKE SA is established"));
        }
        let bytes = self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, payloads)?;
        self.send_request(config, now, bytes, Context::Plain, out);
        Ok(())
    }

    /// Asks the peer to delete the IKE SA (and so its CHILD_SAs); the SA
    /// ends when the answer arrives or the peer is found dead.
    pub(crate) fn delete<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        out: &mut Output,
    ) -> Result<(), Error> {
        let d = [Payload::Delete(Delete { protocol: ProtocolId::IKE, spi_size: 0, spis: Vec::new() })];
        self.send_informational(config, rng, now, &d, out)?;
        self.deleting = true;
        Ok(())
    }

    /// Ends the SA here: its CHILD_SAs first, then the IKE SA itself.
    fn delete_local(&mut self, error: Option<Error>, out: &mut Output) {
        for ChildRecord { inbound, outbound, .. } in self.children.drain(..) {
            out.event(Event::ChildSaDeleted { sa: self.id, inbound_spi: inbound, outbound_spi: outbound });
        }
        self.state = State::Deleted;
        self.pending = None;
        if self.quiet {
            out.sync(SyncEvent::Deleted { sa: self.id });
        } else {
            out.event(Event::IkeSaDeleted { sa: self.id, error });
        }
    }

    /// Asks the peer to delete the CHILD_SA with inbound SPI `inbound`; it
    /// is reported deleted when the answer comes.
    pub(crate) fn delete_child<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        inbound: u32,
        out: &mut Output,
    ) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::Busy);
        }
        if !matches!(self.state, State::Established) {
            return Err(Error::InvalidSyntax("delete before the IKE SA is established"));
        }
        if !self.children.iter().any(|c| c.inbound == inbound) {
            return Err(Error::UnknownChild);
        }
        let d = [Payload::Delete(Delete::child(ProtocolId::ESP, [inbound]))];
        let bytes = self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, &d)?;
        self.send_request(config, now, bytes, Context::DeleteChild { old: inbound }, out);
        Ok(())
    }

    /// Ends what has expired: the whole IKE SA (told to the peer once,
    /// without waiting for an answer), or single CHILD_SAs (deleted with an
    /// INFORMATIONAL exchange when the window is free). Returns whether the
    /// IKE SA itself ended.
    fn expire<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        out: &mut Output,
    ) -> bool {
        if self.expire_at.is_some_and(|t| now >= t) {
            let d = [Payload::Delete(Delete { protocol: ProtocolId::IKE, spi_size: 0, spis: Vec::new() })];
            if let Ok(bytes) = self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, &d)
            {
                for d in bytes {
                    out.transmit(self.local, self.remote, d);
                }
            }
            self.delete_local(Some(Error::Expired), out);
            return true;
        }
        let expired: Vec<u32> = self
            .children
            .iter()
            .filter(|c| c.expire_at.is_some_and(|t| now >= t))
            .map(|c| c.inbound)
            .collect();
        for inbound in expired {
            if let Some(i) = self.children.iter().position(|c| c.inbound == inbound) {
                let c = self.children.remove(i);
                out.event(Event::ChildSaDeleted {
                    sa: self.id,
                    inbound_spi: c.inbound,
                    outbound_spi: c.outbound,
                });
                if self.pending.is_none() {
                    let d = [Payload::Delete(Delete::child(ProtocolId::ESP, [c.inbound]))];
                    if let Ok(bytes) =
                        self.encrypt(rng, ExchangeType::INFORMATIONAL, false, self.next_message_id, &d)
                    {
                        self.send_request(config, now, bytes, Context::Plain, out);
                    }
                }
            }
        }
        false
    }

    /// With the window free: rekeys the IKE SA or a CHILD_SA whose time
    /// came, or checks the peer's liveness after `dpd_delay` of silence.
    fn start_due_request<R: CryptoRng + ?Sized>(
        &mut self,
        config: &IkeConfig,
        rng: &mut R,
        now: Instant,
        alloc: &mut Allocator<'_>,
        out: &mut Output,
    ) {
        // Each rekey is tried once; if it fails, expiry ends the SA.
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            if self.rekey_ike(config, rng, now, alloc, out).is_ok() {
                return;
            }
        }
        if let Some(c) = self.children.iter_mut().find(|c| c.rekey_at.is_some_and(|t| now >= t)) {
            c.rekey_at = None;
            let inbound = c.inbound;
            if self.rekey_child(config, rng, now, alloc, inbound, out).is_ok() {
                return;
            }
        }
        if config.dpd_delay.is_some_and(|d| now >= self.last_heard + d) {
            // Cannot fail: established SAs have keys and nothing is pending.
            let _ = self.send_informational(config, rng, now, &[], out);
        }
    }

    /// Marks the IKE SA established at `now` and schedules its rekey.
    fn establish(&mut self, config: &IkeConfig, now: Instant, out: &mut Output) {
        self.state = State::Established;
        let deadlines = config.lifetime.map(|l| l.deadlines(now, self.id.0.wrapping_mul(JITTER_MIX)));
        self.rekey_at = deadlines.map(|d| d.0);
        self.expire_at = deadlines.map(|d| d.1);
        if let Some(state) = self.snapshot() {
            out.sync(SyncEvent::IkeSa(Box::new(state)));
        }
    }

    /// The SA's state for a standby, once it has keys.
    pub(crate) fn snapshot(&self) -> Option<IkeSaState> {
        let crypto = self.crypto.as_ref()?;
        let suite = crypto.out.suite();
        let (encr, integ) = match suite {
            SkSuite::Aead(a) => (EncrAlgorithm::Aead(a), None),
            SkSuite::CbcHmac(c, i) => (EncrAlgorithm::Cbc(c), Some(i)),
        };
        Some(IkeSaState {
            id: self.id,
            initiator: self.role == Role::Initiator,
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            local: self.local,
            remote: self.remote,
            prf: crypto.prf,
            encr,
            integ,
            nat: self.nat,
            next_message_id: self.next_message_id,
            expected_request: self.expected_request,
            iv_counter: crypto.out.iv_counter(),
            last_exchange: self.last_response.clone().map(|r| (self.last_request.clone(), r)),
            fragment_size: self.fragment_size,
            children: self.children.iter().map(ChildRecord::entry).collect(),
            virtual_ips: self.virtual_ips.clone(),
            assigned_ips: self.assigned_ips.clone(),
            rekey_at: self.rekey_at,
            expire_at: self.expire_at,
            keys: crypto.keys.clone(),
        })
    }

    /// Whether the SA is up (or mirrored) with the peer at `peer`.
    pub(crate) fn is_up_with(&self, peer: IpAddr) -> bool {
        matches!(self.state, State::Established | State::Passive) && self.remote.ip() == peer
    }

    /// The state of an established or PASSIVE SA, for a node that
    /// (re)joins the cluster; `None` for SAs not (or no longer) up.
    pub(crate) fn established_snapshot(&self) -> Option<IkeSaState> {
        matches!(self.state, State::Established | State::Passive).then(|| self.snapshot()).flatten()
    }

    /// A PASSIVE mirror of another node's SA, from its state.
    pub(crate) fn from_snapshot(s: IkeSaState, now: Instant) -> Result<Self, Error> {
        let suite = SkSuite::new(s.encr, s.integ)?;
        let k = &s.keys;
        let i2r = SkCipher::new(suite, k.sk_ei().expose(), k.sk_ai().expose())?;
        let r2i = SkCipher::new(suite, k.sk_er().expose(), k.sk_ar().expose())?;
        let (role, mut out, inb) =
            if s.initiator { (Role::Initiator, i2r, r2i) } else { (Role::Responder, r2i, i2r) };
        out.advance_iv_counter(s.iv_counter);
        let (last_request, last_response) = match s.last_exchange {
            Some((q, r)) => (q, Some(r)),
            None => (Vec::new(), None),
        };
        Ok(Self {
            id: s.id,
            role,
            state: State::Passive,
            spi_i: s.spi_i,
            spi_r: s.spi_r,
            local: s.local,
            remote: s.remote,
            ni: Vec::new(),
            nr: Vec::new(),
            msg1: Vec::new(),
            msg2: Vec::new(),
            peer_hashes: Vec::new(),
            virtual_ips: s.virtual_ips,
            assigned_ips: s.assigned_ips,
            crypto: Some(SaCrypto { prf: s.prf, keys: s.keys, out, inb }),
            next_message_id: s.next_message_id,
            pending: None,
            expected_request: s.expected_request,
            last_request,
            last_response,
            fragment_size: s.fragment_size,
            reassembler: None,
            reassembled: None,
            children: s.children.into_iter().map(ChildRecord::from_entry).collect(),
            last_heard: now,
            deleting: false,
            nat: s.nat,
            arrived_on: (s.local, s.remote),
            init_remote: s.remote,
            rekey_at: s.rekey_at,
            expire_at: s.expire_at,
            quiet: false,
            temporary_failures: 0,
        })
    }

    /// Whether this is a PASSIVE mirror.
    pub(crate) fn is_passive(&self) -> bool {
        matches!(self.state, State::Passive)
    }

    /// Message IDs and the SK IV counter, to sync when they move.
    pub(crate) fn progress(&self) -> Option<(u32, u32, u64)> {
        let c = self.crypto.as_ref()?;
        matches!(self.state, State::Established).then_some((
            self.next_message_id,
            self.expected_request,
            c.out.iv_counter(),
        ))
    }

    /// Applies a delta to a PASSIVE mirror.
    pub(crate) fn apply(&mut self, e: &SyncEvent) {
        if !self.is_passive() {
            return;
        }
        match e {
            SyncEvent::ChildAdded { child, rekey_at, expire_at, .. } => {
                self.children.retain(|c| c.inbound != child.inbound_spi);
                self.children.push(ChildRecord {
                    inbound: child.inbound_spi,
                    outbound: child.outbound_spi,
                    local_ts: child.local_ts.clone(),
                    remote_ts: child.remote_ts.clone(),
                    rekey_at: *rekey_at,
                    expire_at: *expire_at,
                });
            }
            SyncEvent::ChildDeleted { inbound_spi, .. } => {
                self.children.retain(|c| c.inbound != *inbound_spi)
            }
            SyncEvent::Progress { next_message_id, expected_request, iv_counter, .. } => {
                self.next_message_id = *next_message_id;
                self.expected_request = *expected_request;
                if let Some(c) = self.crypto.as_mut() {
                    c.out.advance_iv_counter(*iv_counter);
                }
            }
            SyncEvent::LastExchange { request, response, .. } => {
                self.last_request = request.clone();
                self.last_response = Some(response.clone());
            }
            SyncEvent::Rekeyed { .. } => self.children.clear(),
            SyncEvent::IkeSa(_) | SyncEvent::Deleted { .. } => {}
        }
    }

    /// Takes a PASSIVE mirror live: it answers, retransmits and runs its
    /// timers from now on. The SK IV counter jumps past anything the old
    /// owner may have used since its last sync.
    pub(crate) fn activate(&mut self, now: Instant) {
        if !self.is_passive() {
            return;
        }
        if let Some(c) = self.crypto.as_mut() {
            let at = c.out.iv_counter().saturating_add(IV_COUNTER_MARGIN);
            c.out.advance_iv_counter(at);
        }
        self.state = State::Established;
        self.last_heard = now;
    }

    /// Makes a live SA a PASSIVE mirror again (its segment moved away).
    pub(crate) fn deactivate(&mut self) {
        if matches!(self.state, State::Established) {
            self.state = State::Passive;
            self.pending = None;
        }
    }

    /// Records an authentic message from the peer. Behind a NAT, answers
    /// and requests follow the path it came on (section 2.23), so a NAT
    /// that rebinds the peer's port does not cut the SA off.
    fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        if self.nat.detected() && self.arrived_on.1.port() != 0 {
            (self.local, self.remote) = self.arrived_on;
        }
    }

    /// Checks the peer's identity and AUTH payload over its signed octets
    /// (section 2.15), `id_body` being its raw ID payload body.
    fn verify_peer(
        &self,
        config: &IkeConfig,
        proof: &PeerProof<'_>,
        id_body: &[u8],
        unix_now: Option<u64>,
    ) -> Result<(), Error> {
        let crypto = self.crypto.as_ref().ok_or(Error::InvalidSyntax("IKE_AUTH before keys"))?;
        let signed = match self.role {
            // The peer is the responder.
            Role::Initiator => responder_signed_octets(
                crypto.prf,
                &self.msg2,
                &self.ni,
                crypto.keys.sk_pr().expose(),
                id_body,
            ),
            Role::Responder => initiator_signed_octets(
                crypto.prf,
                &self.msg1,
                &self.nr,
                crypto.keys.sk_pi().expose(),
                id_body,
            ),
        };
        authenticate::verify(
            &config.remote_auth,
            config.remote_id.as_ref(),
            crypto.prf,
            proof,
            &signed,
            unix_now,
        )
    }

    /// Our AUTH payload's method and data over `id_body` (section 2.15).
    fn our_auth<R: CryptoRng + ?Sized>(
        &self,
        config: &IkeConfig,
        rng: &mut R,
        id_body: &[u8],
    ) -> Result<(AuthMethod, Vec<u8>), Error> {
        let crypto = self.crypto.as_ref().ok_or(Error::InvalidSyntax("AUTH before keys"))?;
        let signed = match self.role {
            Role::Initiator => initiator_signed_octets(
                crypto.prf,
                &self.msg1,
                &self.nr,
                crypto.keys.sk_pi().expose(),
                id_body,
            ),
            Role::Responder => responder_signed_octets(
                crypto.prf,
                &self.msg2,
                &self.ni,
                crypto.keys.sk_pr().expose(),
                id_body,
            ),
        };
        authenticate::sign(&config.local_auth, crypto.prf, &signed, &self.peer_hashes, rng)
    }

    /// Protects a message in an SK payload; with fragmentation negotiated,
    /// one too big for a datagram goes as SKF fragments instead.
    fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        exchange: ExchangeType,
        response: bool,
        message_id: u32,
        payloads: &[Payload<'_>],
    ) -> Result<Datagrams, Error> {
        let initiator = self.role == Role::Initiator;
        let h = header(self.spi_i, self.spi_r, exchange, initiator, response, message_id);
        let mut inner = Vec::new();
        let first = wire::emit_inner(payloads, &mut inner)?;
        // On port 4500 the non-ESP marker takes four octets of the datagram.
        let nat_t = [self.local, self.remote].iter().any(|a| a.port() == NAT_T_PORT);
        let limit =
            self.fragment_size.map(|size| size.saturating_sub(if nat_t { NON_ESP_MARKER_LEN } else { 0 }));
        let crypto = self.crypto.as_mut().ok_or(Error::InvalidSyntax("encryption before keys"))?;
        if let Some(limit) =
            limit.filter(|l| HEADER_LEN + crypto.out.suite().sk_payload_len(inner.len()) > *l)
        {
            return fragment::fragment(h, first, &inner, &mut crypto.out, rng, limit);
        }
        let mut bytes = MessageBuilder::new(h).build_prefix(PayloadType::SK)?;
        crypto.out.seal(rng, &mut bytes, first.0, &inner)?;
        Ok(vec![bytes])
    }

    /// The SK plaintext of a message and its first inner payload type,
    /// decrypted, or as reassembled from fragments.
    fn open(&mut self, msg: &Message<'_>) -> Result<(PayloadType, Vec<u8>), Error> {
        if let Some(whole) = self.reassembled.take() {
            return Ok(whole);
        }
        let crypto = self.crypto.as_ref().ok_or(Error::InvalidSyntax("encrypted message before keys"))?;
        let (Some(sk), Some(offset)) = (msg.sk(), msg.sk_offset()) else {
            return Err(Error::InvalidSyntax("message is not encrypted"));
        };
        Ok((sk.next_payload, crypto.inb.open(msg.bytes(), offset)?))
    }

    fn send_request(
        &mut self,
        config: &IkeConfig,
        now: Instant,
        bytes: Datagrams,
        context: Context,
        out: &mut Output,
    ) {
        for d in &bytes {
            out.transmit(self.local, self.remote, d.clone());
        }
        let timeout = config.retransmit_timeout;
        self.pending = Some(Pending {
            message_id: self.next_message_id,
            bytes,
            retries: 0,
            timeout,
            deadline: now + timeout,
            context,
        });
    }

    fn answer(&mut self, message_id: u32, bytes: Datagrams, out: &mut Output) {
        for d in &bytes {
            out.transmit(self.local, self.remote, d.clone());
        }
        self.expected_request = message_id.wrapping_add(1);
        self.last_response = Some(bytes);
    }

    /// Drops an exchange still setting the SA up (its IKE_SA_INIT or
    /// IKE_AUTH unanswered, or the peer's IKE_AUTH awaited) without a
    /// word to the peer: `true` if it was one, and the SA is then gone.
    pub(crate) fn abandon(&mut self, out: &mut Output) -> bool {
        match self.state {
            State::InitSent { .. } | State::InitReplied => {}
            State::AuthSent { child_spi } => out.release_child_spi(child_spi),
            State::Established | State::Deleted | State::Passive | State::Failed => return false,
        }
        self.state = State::Deleted;
        true
    }

    fn fail(&mut self, error: Error, out: &mut Output) {
        self.state = State::Failed;
        out.event(Event::IkeSaFailed { sa: self.id, error });
    }
}

/// Spreads SPI bits over the jitter range (an odd 64-bit constant).
const JITTER_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// IKE's own port, and the one it moves to behind a NAT.
const IKE_PORT: u16 = 500;
const NAT_T_PORT: u16 = 4500;

/// The four zero octets before an IKE message on port 4500 (RFC 3948).
const NON_ESP_MARKER_LEN: usize = 4;

/// Whether an SK plaintext carries an INVALID_SYNTAX notify.
fn carries_invalid_syntax(first: PayloadType, plain: &[u8]) -> bool {
    PayloadIter::new_inner(first, plain).filter_map(Result::ok).any(|p| {
        p.ty == PayloadType::NOTIFY
            && p.body.get(2..4) == Some(&NotifyType::INVALID_SYNTAX.0.to_be_bytes()[..])
    })
}

/// Whether an IKE_SA_INIT message announces IKE fragmentation (RFC 7383).
fn announces_fragmentation(msg: &Message<'_>) -> bool {
    msg.payloads
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED))
}

/// The hashes a peer announced in its IKE_SA_INIT message's
/// SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 section 4), if any.
fn peer_hashes(msg: &Message<'_>) -> Result<Vec<HashAlgorithm>, Error> {
    for p in &msg.payloads {
        if let Payload::Notify(n) = p {
            if n.ty == NotifyType::SIGNATURE_HASH_ALGORITHMS {
                return parse_signature_hash_algorithms(n.data);
            }
        }
    }
    Ok(Vec::new())
}

/// Compares an IKE_SA_INIT message's NAT detection hashes with the path it
/// came on (section 2.23). A peer that sends none gets no NAT traversal.
/// The address our NAT_DETECTION_SOURCE_IP hash covers: our own, or with
/// `force_encap` one no packet comes from, so the peer sees a NAT.
fn source_for_natd(config: &IkeConfig, local: SocketAddr) -> SocketAddr {
    if config.force_encap { SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0) } else { local }
}

/// What NAT detection found, with `force_encap` counting us as behind a
/// NAT (section 2.23: the side behind a NAT keeps the mapping alive).
fn forced(config: &IkeConfig, mut nat: NatState) -> NatState {
    nat.local_behind_nat |= config.force_encap;
    nat
}

/// The CHILD_SA the responder of an exchange answered with: its SPI (of
/// the one proposal an answer carries) and its selectors, which must be
/// narrowings of `proposed` (ours, theirs).
fn answered_child(
    sa_p: &Sa,
    (tsi, tsr): (&Ts, &Ts),
    proposed: (&[TrafficSelector], &[TrafficSelector]),
) -> Result<(u32, Vec<TrafficSelector>, Vec<TrafficSelector>), Error> {
    let peer_spi = sa_p
        .proposals
        .first()
        .and_then(|p| <[u8; 4]>::try_from(p.spi.as_slice()).ok())
        .map(u32::from_be_bytes)
        .ok_or(Error::InvalidSyntax("CHILD_SA SPI is not 4 octets"))?;
    let (local_ts, remote_ts) = (ranges(tsi), ranges(tsr));
    let within = |got: &[TrafficSelector], ours: &[TrafficSelector]| {
        !got.is_empty() && got.iter().all(|g| ours.iter().any(|o| covers(o, g)))
    };
    if !within(&local_ts, proposed.0) || !within(&remote_ts, proposed.1) {
        return Err(Error::InvalidSyntax("narrowed selectors outside the proposed ones"));
    }
    Ok((peer_spi, local_ts, remote_ts))
}

fn detect_nat(msg: &Message<'_>, spi_i: u64, spi_r: u64, local: SocketAddr, remote: SocketAddr) -> NatState {
    let (spi_i, spi_r) = (spi_i.to_be_bytes(), spi_r.to_be_bytes());
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for p in &msg.payloads {
        match p {
            Payload::Notify(n) if n.ty == NotifyType::NAT_DETECTION_SOURCE_IP => src.push(n.data),
            Payload::Notify(n) if n.ty == NotifyType::NAT_DETECTION_DESTINATION_IP => dst.push(n.data),
            _ => {}
        }
    }
    if src.is_empty() || dst.is_empty() {
        return NatState::default();
    }
    NatState {
        remote_behind_nat: !src.iter().any(|d| nat_detection_matches(d, &spi_i, &spi_r, remote)),
        local_behind_nat: !dst.iter().any(|d| nat_detection_matches(d, &spi_i, &spi_r, local)),
    }
}

/// A CHILD_SA agreed on: the selection, our inbound SPI and the peer's.
struct ChildOffer {
    selected: Selected,
    spi: u32,
    peer_spi: u32,
}

fn header(
    spi_i: u64,
    spi_r: u64,
    exchange: ExchangeType,
    initiator: bool,
    response: bool,
    mid: u32,
) -> Header {
    Header {
        spi_i,
        spi_r,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange_type: exchange,
        flags: Flags::new(initiator, response),
        message_id: mid,
        length: 0,
    }
}

/// ESP proposals as IKE_AUTH uses them: the first CHILD_SA is keyed from
/// the IKE SA's exchange, so its proposals carry no key exchange
/// (section 1.2), whatever PFS later rekeys use.
fn without_pfs(proposals: &[Proposal]) -> Vec<Proposal> {
    proposals.iter().cloned().map(|p| Proposal { dh: Vec::new(), ..p }).collect()
}

/// The first key-exchange group of the proposals: the one the KE carries.
fn first_group(proposals: &[Proposal]) -> Option<DhGroup> {
    proposals.iter().find_map(|p| p.dh.first().copied())
}

/// An SA payload offering `proposals` with `spi`.
fn sa_payload(proposals: &[Proposal], protocol: ProtocolId, spi: &[u8]) -> Result<Sa, Error> {
    let proposals = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let number = u8::try_from(i + 1).map_err(|_| Error::Unencodable("more than 255 proposals"))?;
            Ok(wire::Proposal {
                number,
                protocol,
                spi: spi.to_vec(),
                transforms: p.transforms().map(wire::Transform::from).collect(),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Sa { proposals })
}

impl Sa {
    /// The single-proposal answer carries the number of the offer chosen.
    fn numbered(mut self, number: u8) -> Self {
        if let Some(p) = self.proposals.first_mut() {
            p.number = number;
        }
        self
    }
}

/// The offers of an SA payload for `protocol`. Transforms with attributes
/// other than Key Length are not understood, so they never match.
fn offers(sa: &Sa, protocol: ProtocolId) -> Vec<Offer> {
    sa.proposals
        .iter()
        .filter(|p| p.protocol == protocol)
        .map(|p| {
            Offer::from_transforms(
                p.number,
                p.transforms.iter().map(|t| {
                    if t.attributes.is_empty() {
                        (t.ty.0, t.id, t.key_length)
                    } else {
                        (t.ty.0, u16::MAX, None)
                    }
                }),
            )
        })
        .collect()
}

/// Checks that a responder's single-proposal answer is acceptable to us.
fn accepted(kind: ProposalKind, ours: &[Proposal], sa: &Sa, protocol: ProtocolId) -> Result<Selected, Error> {
    if sa.proposals.len() != 1 {
        return Err(Error::InvalidSyntax("an answer must carry exactly one proposal"));
    }
    let offer = offers(sa, protocol);
    let chosen =
        select(kind, ours, &offer).ok_or(Error::InvalidSyntax("answer is not one of our proposals"))?;
    // One transform of each type: the answer must not leave a choice.
    let p = &sa.proposals[0];
    let mut seen = [0u8; 6];
    for t in &p.transforms {
        if let Some(n) = seen.get_mut(usize::from(t.ty.0)) {
            *n += 1;
        }
    }
    if seen.iter().any(|&n| n > 1) {
        return Err(Error::InvalidSyntax("answer offers more than one transform of a type"));
    }
    Ok(chosen)
}

/// Derives the IKE SA's keys and keys its SK ciphers for `role`.
#[allow(clippy::too_many_arguments)] // the terms of RFC 7296 section 2.14
fn derive(
    prf: PrfAlgorithm,
    chosen: &Selected,
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
    g_ir: &[u8],
    role: Role,
) -> Result<SaCrypto, Error> {
    derive_from_seed(prf, chosen, &skeyseed(prf, ni, nr, g_ir), ni, nr, (spi_i, spi_r), role)
}

/// The SK_* keys and SK ciphers from a SKEYSEED (section 2.14, and 2.18
/// for a rekeyed IKE SA, whose SKEYSEED comes from the old SA's SK_d).
fn derive_from_seed(
    prf: PrfAlgorithm,
    chosen: &Selected,
    seed: &SecretBytes,
    ni: &[u8],
    nr: &[u8],
    (spi_i, spi_r): (u64, u64),
    role: Role,
) -> Result<SaCrypto, Error> {
    let suite = SkSuite::new(chosen.encr, chosen.integ)?;
    let keys = IkeKeys::derive(
        prf,
        seed.expose(),
        ni,
        nr,
        &spi_i.to_be_bytes(),
        &spi_r.to_be_bytes(),
        suite.encr_keymat_len(),
        suite.integ_key_len(),
    )?;
    let i2r = SkCipher::new(suite, keys.sk_ei().expose(), keys.sk_ai().expose())?;
    let r2i = SkCipher::new(suite, keys.sk_er().expose(), keys.sk_ar().expose())?;
    let (out, inb) = match role {
        Role::Initiator => (i2r, r2i),
        Role::Responder => (r2i, i2r),
    };
    Ok(SaCrypto { prf, keys, out, inb })
}

/// Parses an SK plaintext and checks the message's payloads against the
/// exchange's rules (see [`crate::rules`]) before any state handling.
fn inner_payloads<'p>(
    msg: &Message<'_>,
    first: PayloadType,
    plain: &'p [u8],
) -> Result<Vec<Payload<'p>>, Error> {
    let inner = wire::parse_inner(first, plain)?;
    let h = msg.header;
    rules::check(h.exchange_type, h.flags.response(), &rules::types(&msg.payloads), &rules::types(&inner))?;
    Ok(inner)
}

/// The body of the first payload of type `ty` in an SK plaintext, as
/// received (AUTH covers the ID payload's reserved octets too).
fn raw_body(first: PayloadType, plain: &[u8], ty: PayloadType) -> Result<&[u8], Error> {
    PayloadIter::new_inner(first, plain)
        .filter_map(Result::ok)
        .find(|p| p.ty == ty)
        .map(|p| p.body)
        .ok_or(Error::InvalidSyntax("ID payload missing"))
}

fn ts_payload(selectors: &[TrafficSelector]) -> Ts {
    Ts { selectors: selectors.iter().copied().map(Selector::from).collect() }
}

/// The address-range selectors of a TS payload (others are not supported).
fn ranges(ts: &Ts) -> Vec<TrafficSelector> {
    ts.selectors
        .iter()
        .filter_map(|s| match s {
            Selector::Range(r) => Some(*r),
            Selector::Other { .. } => None,
        })
        .collect()
}
