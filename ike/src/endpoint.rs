//! The IKE endpoint: demultiplexes datagrams to IKE SAs by SPI, allocates
//! SPIs, and queues what the SAs send and report.
//!
//! Drive it like every Tandem core (sans-IO): feed received datagrams with
//! [`Endpoint::handle_datagram`] (IKE messages only: the driver strips the
//! non-ESP marker on port 4500), call [`Endpoint::handle_timeout`] when
//! [`Endpoint::poll_timeout`]'s deadline passes, and after each call drain
//! [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`].

use crate::config::IkeConfig;
use crate::event::{Event, IkeSaId};
use crate::ike_sa::IkeSa;
use crate::pool::AddressPool;
use crate::sync::{IkeSaState, SyncEvent};
use crate::wire::{
    ExchangeType, Flags, Header, Message, MessageBuilder, Notify, NotifyType, Payload, PayloadType,
};
use crate::{Error, rules};
use core::net::IpAddr;
use tandem_crypto::hash::sha256;
use tandem_crypto::secret::ct_eq;

/// First octet of Tandem's cookies: the version of the secret (one so far).
const COOKIE_VERSION: u8 = 1;
use core::net::SocketAddr;
use rand_core::CryptoRng;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// Chooses SPIs: the cluster encodes a segment in them. The endpoint draws
/// the randomness and retries on a collision; each method sees what the SA
/// is for, so an allocator can place it (by peer address, or beside the SA
/// it belongs to or replaces).
pub trait SpiAllocator {
    /// Our IKE SPI (never 0) from 64 random bits, for a new IKE SA with the
    /// peer at `peer`, as initiator or responder.
    fn ike_spi(&mut self, random: u64, peer: IpAddr) -> u64;

    /// Our IKE SPI (never 0) from 64 random bits for the IKE SA that
    /// replaces `old` (our SPI) in a rekey (RFC 7296 section 2.18), as
    /// initiator or responder. The CHILD_SAs of `old` move to the new SA
    /// with their SPIs, so an allocator that places SAs keeps the new one
    /// where `old` is (its peer's address may have changed since, behind a
    /// NAT) and must override this. By default the SPI is random, as from
    /// [`RandomSpis`].
    fn rekeyed_ike_spi(&mut self, random: u64, old: IkeSaId) -> u64 {
        let _ = old;
        random.max(1)
    }

    /// Our inbound ESP SPI (at least 256) from 32 random bits, for a
    /// CHILD_SA of the IKE SA `ike_sa` (our SPI).
    fn child_spi(&mut self, random: u32, ike_sa: IkeSaId) -> u32;
}

/// SPIs straight from the RNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSpis;

impl SpiAllocator for RandomSpis {
    fn ike_spi(&mut self, random: u64, _peer: IpAddr) -> u64 {
        random.max(1)
    }
    fn child_spi(&mut self, random: u32, _ike_sa: IkeSaId) -> u32 {
        random.max(256)
    }
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The IKE message.
    pub data: Vec<u8>,
}

/// What SAs produce while handling input.
#[derive(Default)]
pub(crate) struct Output {
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// IKE SAs born of a rekey, for the endpoint to adopt.
    spawned: Vec<IkeSa>,
    /// Whether to record sync events, and those recorded.
    sync_on: bool,
    syncs: VecDeque<SyncEvent>,
    /// Inbound ESP SPIs reserved for CHILD_SAs that never came to be.
    released: Vec<u32>,
}

impl Output {
    pub(crate) fn spawn(&mut self, sa: IkeSa) {
        self.spawned.push(sa);
    }

    /// Gives back an inbound SPI reserved for a CHILD_SA that was not made.
    pub(crate) fn release_child_spi(&mut self, spi: u32) {
        self.released.push(spi);
    }

    pub(crate) fn sync(&mut self, e: SyncEvent) {
        if self.sync_on {
            self.syncs.push_back(e);
        }
    }

    pub(crate) fn transmit(&mut self, local: SocketAddr, remote: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit { local, remote, data });
    }
    pub(crate) fn event(&mut self, e: Event) {
        // Endings and rekeys are mirrored as they are reported.
        match &e {
            Event::ChildSaDeleted { sa, inbound_spi, .. } => {
                self.sync(SyncEvent::ChildDeleted { sa: *sa, inbound_spi: *inbound_spi })
            }
            Event::IkeSaRekeyed { old, new } => self.sync(SyncEvent::Rekeyed { old: *old, new: *new }),
            Event::IkeSaDeleted { sa, .. } => self.sync(SyncEvent::Deleted { sa: *sa }),
            _ => {}
        }
        self.events.push_back(e);
    }
}

/// What the endpoint lends an SA while it handles input: unused SPIs, the
/// wall clock and the address pool.
pub(crate) struct Allocator<'a> {
    spis: &'a mut dyn SpiAllocator,
    child_spis: &'a mut HashSet<u32>,
    ike_spis: &'a HashMap<u64, IkeSa>,
    /// The SPI of the SA being handled, out of the map meanwhile.
    lent: u64,
    /// The Unix time in seconds, if the driver set the wall clock.
    pub(crate) unix_now: Option<u64>,
    /// Where virtual addresses come from, if anywhere.
    pub(crate) pool: Option<&'a mut (dyn AddressPool + 'static)>,
}

impl Allocator<'_> {
    /// A fresh inbound ESP SPI for a CHILD_SA of `ike_sa`.
    pub(crate) fn child_spi<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, ike_sa: IkeSaId) -> u32 {
        loop {
            let spi = self.spis.child_spi(rng.next_u32(), ike_sa);
            if self.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// A fresh IKE SPI of ours for the IKE SA replacing `old`.
    pub(crate) fn rekeyed_ike_spi<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, old: IkeSaId) -> u64 {
        loop {
            let spi = self.spis.rekeyed_ike_spi(rng.next_u64(), old);
            if spi != 0 && spi != self.lent && !self.ike_spis.contains_key(&spi) {
                return spi;
            }
        }
    }
}

/// An IKEv2 endpoint for one connection configuration.
pub struct Endpoint {
    config: IkeConfig,
    spis: Box<dyn SpiAllocator>,
    sas: HashMap<u64, IkeSa>,
    /// Responder SAs by the initiator's SPI and address, so a retransmitted
    /// IKE_SA_INIT request finds its SA.
    by_initiator: HashMap<(u64, SocketAddr), u64>,
    child_spis: HashSet<u32>,
    /// Responder SAs waiting for IKE_AUTH.
    half_open: HashSet<u64>,
    /// Keys the COOKIE hash; drawn on first use.
    cookie_secret: Option<[u8; 32]>,
    /// An instant and the Unix time (seconds) at it, to date certificates.
    wall_clock: Option<(Instant, u64)>,
    pool: Option<Box<dyn AddressPool>>,
    out: Output,
}

impl Endpoint {
    /// An endpoint with random SPIs.
    pub fn new(config: IkeConfig) -> Self {
        Self::with_spi_allocator(config, Box::new(RandomSpis))
    }

    /// An endpoint whose SPIs come from `spis`.
    pub fn with_spi_allocator(config: IkeConfig, spis: Box<dyn SpiAllocator>) -> Self {
        let out = Output { sync_on: config.sync, ..Output::default() };
        Self {
            config,
            spis,
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            child_spis: HashSet::new(),
            half_open: HashSet::new(),
            cookie_secret: None,
            wall_clock: None,
            pool: None,
            out,
        }
    }

    /// Replaces the configuration (a reload). Established SAs stay and
    /// follow the new settings from their next exchange on: rekeys,
    /// liveness checks, lifetimes of new SAs; the driver deletes those it
    /// no longer wants.
    pub fn set_config(&mut self, config: IkeConfig) {
        self.out.sync_on = config.sync;
        self.config = config;
    }

    /// Leases virtual addresses from `pool` to peers that ask for one in a
    /// CP payload (RFC 7296 section 2.19). Without a pool such requests
    /// are answered with INTERNAL_ADDRESS_FAILURE and get no CHILD_SA.
    pub fn set_address_pool(&mut self, pool: Box<dyn AddressPool>) {
        self.pool = Some(pool);
    }

    /// Tells the endpoint the wall-clock time: `unix_secs` seconds since
    /// the Unix epoch at `now`. Certificate validity is checked against it
    /// (later instants are counted on from it), and until it is set, peers
    /// authenticating with certificates are refused. Call it again now and
    /// then if the host's clock is stepped.
    pub fn set_wall_clock(&mut self, now: Instant, unix_secs: u64) {
        self.wall_clock = Some((now, unix_secs));
    }

    /// Starts an IKE SA towards `remote`; its IKE_SA_INIT request is queued.
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<IkeSaId, Error> {
        let spi = self.new_ike_spi(rng, remote.ip());
        let sa = IkeSa::initiate(&self.config, rng, now, spi, local, remote, &mut self.out)?;
        self.sas.insert(spi, sa);
        Ok(IkeSaId(spi))
    }

    /// Handles one received IKE message. Malformed or unexpected messages
    /// are dropped (returned as the error, for logging); answers and events
    /// are queued. An authentic request whose payloads break the rules of
    /// [`rules`] is answered with INVALID_SYNTAX and ends its IKE SA (RFC
    /// 7296 section 2.21.3). IKE fragments (RFC 7383) are collected per IKE
    /// SA and handled once their message is whole.
    pub fn handle_datagram<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), Error> {
        let msg = Message::parse(data)?;
        let h = msg.header;
        if h.exchange_type == ExchangeType::IKE_SA_INIT {
            // Encrypted exchanges are checked once decrypted, by their SA.
            rules::check(h.exchange_type, h.flags.response(), &rules::types(&msg.payloads), &[])?;
        }
        // The original initiator sets the I flag: our SPI is then SPIr.
        let ours = if h.flags.initiator() { h.spi_r } else { h.spi_i };
        if ours == 0 {
            if h.exchange_type != ExchangeType::IKE_SA_INIT || h.flags.response() || h.message_id != 0 {
                return Err(Error::InvalidSyntax("no responder SPI outside an IKE_SA_INIT request"));
            }
            if let Some(spi) = self.by_initiator.get(&(h.spi_i, remote)).copied() {
                // A retransmitted IKE_SA_INIT request.
                return self.with_sa(now, spi, |sa, config, alloc, out| {
                    sa.handle(config, rng, now, alloc, (local, remote), &msg, out)
                });
            }
            if self.half_open.len() >= self.config.cookie_threshold
                && !self.cookie_ok(rng, &msg, (local, remote))?
            {
                return Ok(());
            }
            let spi_r = self.new_ike_spi(rng, remote.ip());
            if let Some(sa) =
                IkeSa::respond(&self.config, rng, now, spi_r, local, remote, &msg, &mut self.out)?
            {
                self.by_initiator.insert((h.spi_i, remote), spi_r);
                self.half_open.insert(spi_r);
                self.sas.insert(spi_r, sa);
            }
            return Ok(());
        }
        if !self.sas.contains_key(&ours) {
            return Err(Error::InvalidSyntax("unknown IKE SPI"));
        }
        self.with_sa(now, ours, |sa, config, alloc, out| {
            sa.handle(config, rng, now, alloc, (local, remote), &msg, out)
        })
    }

    /// Lends the SA with SPI `spi` out of the map to `f`, with an SPI
    /// allocator, then puts it back and adopts any SA it spawned.
    fn with_sa<T>(
        &mut self,
        now: Instant,
        spi: u64,
        f: impl FnOnce(&mut IkeSa, &IkeConfig, &mut Allocator<'_>, &mut Output) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut sa = self.sas.remove(&spi).ok_or(Error::UnknownSa)?;
        let mut alloc = Allocator {
            spis: self.spis.as_mut(),
            child_spis: &mut self.child_spis,
            ike_spis: &self.sas,
            lent: spi,
            unix_now: self
                .wall_clock
                .map(|(at, unix)| unix.saturating_add(now.saturating_duration_since(at).as_secs())),
            pool: self.pool.as_deref_mut(),
        };
        let before = self.out.events.len();
        let progress = sa.progress();
        let r = f(&mut sa, &self.config, &mut alloc, &mut self.out);
        if let Some((next_message_id, expected_request, iv_counter)) =
            sa.progress().filter(|p| Some(*p) != progress)
        {
            self.out.sync(SyncEvent::Progress { sa: sa.id(), next_message_id, expected_request, iv_counter });
        }
        // Deleted CHILD_SAs give their SPIs back, as do failed attempts.
        for e in self.out.events.iter().skip(before) {
            if let Event::ChildSaDeleted { inbound_spi, .. } = e {
                self.child_spis.remove(inbound_spi);
            }
        }
        for spi in self.out.released.drain(..) {
            self.child_spis.remove(&spi);
        }
        if !sa.is_half_open() {
            self.half_open.remove(&spi);
        }
        if sa.is_deleted() {
            if let Some(key) = sa.init_key() {
                self.by_initiator.remove(&key);
            }
            if let Some(pool) = self.pool.as_deref_mut() {
                for addr in sa.take_virtual_ips() {
                    pool.release(addr);
                }
            }
        } else {
            self.sas.insert(spi, sa);
        }
        for new in self.out.spawned.drain(..) {
            self.sas.insert(new.id().0, new);
        }
        r
    }

    /// Retransmits overdue requests, gives up on silent peers, sends
    /// liveness checks, rekeys SAs whose time came and ends expired ones.
    pub fn handle_timeout<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        let due: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, sa)| sa.poll_timeout(&self.config).is_some_and(|t| t <= now))
            .map(|(spi, _)| *spi)
            .collect();
        for spi in due {
            let _ = self.with_sa(now, spi, |sa, config, alloc, out| {
                sa.handle_timeout(config, rng, now, alloc, out);
                Ok(())
            });
        }
    }

    /// The earliest retransmission or liveness-check deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sas.values().filter_map(|sa| sa.poll_timeout(&self.config)).min()
    }

    /// Sends a liveness check on an established IKE SA now.
    pub fn check_liveness<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
    ) -> Result<(), Error> {
        let s = self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?;
        s.send_informational(&self.config, rng, now, &[], &mut self.out)
    }

    /// Rekeys IKE SA `sa` (RFC 7296 section 2.18): [`Event::IkeSaRekeyed`]
    /// follows, then the old IKE SA is deleted.
    ///
    /// If the peer rekeys the same IKE SA at the same time, both requests
    /// are answered and, once both exchanges are done, the new IKE SA made
    /// with the lowest of the four nonces is deleted by the side that
    /// requested it (section 2.8.2). Each side reports one
    /// [`Event::IkeSaRekeyed`], naming the surviving IKE SA, which holds
    /// the CHILD_SAs; the redundant one is never reported (standbys see its
    /// state and its deletion as sync events only).
    pub fn rekey_ike<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
    ) -> Result<(), Error> {
        self.with_sa(now, sa.0, |s, config, alloc, out| s.rekey_ike(config, rng, now, alloc, out))
    }

    /// Rekeys the CHILD_SA with inbound SPI `inbound_spi` of IKE SA `sa`
    /// (RFC 7296 section 1.3.3): [`Event::ChildSaRekeyed`] follows, then
    /// the old pair is deleted.
    ///
    /// If the peer rekeys the same pair at the same time (section 2.8.1),
    /// both requests are answered and each new pair is reported as it is
    /// made ([`Event::ChildSaRekeyed`], or [`Event::ChildSaEstablished`] if
    /// the old pair is already gone by then). Once both exchanges are
    /// done, the pair made with the lowest of the four nonces is redundant:
    /// the side that requested it deletes it, the other side deletes the
    /// old pair, and each ends with one [`Event::ChildSaDeleted`] for each.
    /// A peer that finished its own rekey first refuses ours with
    /// TEMPORARY_FAILURE or CHILD_SA_NOT_FOUND (section 2.25.1); that ends
    /// our attempt quietly, its new pair replacing the old one.
    pub fn rekey_child<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
        inbound_spi: u32,
    ) -> Result<(), Error> {
        self.with_sa(now, sa.0, |s, config, alloc, out| {
            s.rekey_child(config, rng, now, alloc, inbound_spi, out)
        })
    }

    /// Deletes the CHILD_SA with inbound SPI `inbound_spi` of IKE SA `sa`
    /// (RFC 7296 section 1.4.1); [`Event::ChildSaDeleted`] follows when the
    /// peer answers (or sooner, if the peer deletes it too).
    pub fn delete_child<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
        inbound_spi: u32,
    ) -> Result<(), Error> {
        let s = self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?;
        s.delete_child(&self.config, rng, now, inbound_spi, &mut self.out)
    }

    /// Deletes an established IKE SA and its CHILD_SAs (RFC 7296 section
    /// 1.4.1); [`Event::IkeSaDeleted`] follows when the peer answers.
    pub fn delete<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        sa: IkeSaId,
    ) -> Result<(), Error> {
        let s = self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?;
        s.delete(&self.config, rng, now, &mut self.out)
    }

    /// Forgets IKE SA `sa` if it is still being set up (as initiator or
    /// responder), sending nothing: for a cluster node whose segment moved
    /// while the exchange was under way (the new owner, which never saw
    /// it, starts its own). `Ok(false)` if the SA is up or ended.
    pub fn abandon(&mut self, now: Instant, sa: IkeSaId) -> Result<bool, Error> {
        self.with_sa(now, sa.0, |s, _, _, out| Ok(s.abandon(out)))
    }

    /// Under load, an IKE_SA_INIT request must start with the COOKIE this
    /// endpoint computes from its nonce, the peer's address and SPI and a
    /// secret (RFC 7296 section 2.6); otherwise the COOKIE is sent back
    /// without keeping any state, and `false` returned.
    fn cookie_ok<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        msg: &Message<'_>,
        (local, remote): (SocketAddr, SocketAddr),
    ) -> Result<bool, Error> {
        let secret = *self.cookie_secret.get_or_insert_with(|| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        });
        let nonce = msg.payloads.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.data),
            _ => None,
        });
        let ip = match remote.ip() {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let h = msg.header;
        let mut cookie = vec![COOKIE_VERSION];
        cookie.extend_from_slice(&sha256(&[nonce.unwrap_or_default(), &ip, &h.spi_i.to_be_bytes(), &secret]));
        let offered = match msg.payloads.first() {
            Some(Payload::Notify(n)) if n.ty == NotifyType::COOKIE => n.data,
            _ => &[],
        };
        if ct_eq(offered, &cookie) {
            return Ok(true);
        }
        let reply = MessageBuilder::new(Header {
            spi_i: h.spi_i,
            spi_r: 0,
            next_payload: PayloadType::NONE,
            minor_version: 0,
            exchange_type: ExchangeType::IKE_SA_INIT,
            flags: Flags::new(false, true),
            message_id: 0,
            length: 0,
        })
        .payload(Payload::Notify(Notify::new(NotifyType::COOKIE, &cookie)))
        .build()?;
        self.out.transmit(local, remote, reply);
        Ok(false)
    }

    /// The next sync event for cluster standbys (with `IkeConfig::sync`).
    #[must_use]
    pub fn poll_sync(&mut self) -> Option<SyncEvent> {
        self.out.syncs.pop_front()
    }

    /// Installs a PASSIVE mirror of another node's IKE SA (replacing an
    /// older mirror of it).
    pub fn install_passive(&mut self, now: Instant, state: IkeSaState) -> Result<IkeSaId, Error> {
        if self.sas.get(&state.id.0).is_some_and(|sa| !sa.is_passive()) {
            return Err(Error::InvalidSyntax("a live IKE SA has that SPI here"));
        }
        for c in &state.children {
            self.child_spis.insert(c.inbound_spi);
        }
        let sa = IkeSa::from_snapshot(state, now)?;
        let id = sa.id();
        self.sas.insert(id.0, sa);
        Ok(id)
    }

    /// Applies a sync event from the node that owns the SA to our mirror.
    pub fn apply_sync(&mut self, now: Instant, e: &SyncEvent) -> Result<(), Error> {
        let sa = match e {
            SyncEvent::IkeSa(state) => return self.install_passive(now, (**state).clone()).map(|_| ()),
            SyncEvent::Deleted { sa } => {
                if self.sas.get(&sa.0).is_some_and(IkeSa::is_passive) {
                    self.sas.remove(&sa.0);
                }
                return Ok(());
            }
            SyncEvent::ChildAdded { sa, child, .. } => {
                self.child_spis.insert(child.inbound_spi);
                sa
            }
            SyncEvent::ChildDeleted { sa, inbound_spi } => {
                self.child_spis.remove(inbound_spi);
                sa
            }
            SyncEvent::Progress { sa, .. } | SyncEvent::LastExchange { sa, .. } => sa,
            SyncEvent::Rekeyed { old, .. } => old,
        };
        self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?.apply(e);
        Ok(())
    }

    /// The current state of IKE SA `sa`, live or PASSIVE, for a bulk resync
    /// of a node that (re)joins the cluster (its CHILD_SAs' keys travel
    /// apart, as with [`SyncEvent::ChildAdded`]); `None` if the SA is
    /// unknown or not established (half-open, failed).
    #[must_use]
    pub fn snapshot(&self, sa: IkeSaId) -> Option<IkeSaState> {
        self.sas.get(&sa.0).and_then(IkeSa::established_snapshot)
    }

    /// Whether an established IKE SA (or a PASSIVE mirror) with the peer
    /// at `peer` exists.
    pub fn has_sa_with(&self, peer: IpAddr) -> bool {
        self.sas.values().any(|sa| sa.is_up_with(peer))
    }

    /// Takes over a PASSIVE mirror: it goes live and answers from now on.
    pub fn activate(&mut self, now: Instant, sa: IkeSaId) -> Result<(), Error> {
        self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?.activate(now);
        Ok(())
    }

    /// Hands a live SA back to PASSIVE (another node took its segment).
    pub fn deactivate(&mut self, sa: IkeSaId) -> Result<(), Error> {
        self.sas.get_mut(&sa.0).ok_or(Error::UnknownSa)?.deactivate();
        Ok(())
    }

    /// The next datagram to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The IKE SAs by our SPI.
    pub fn sa_ids(&self) -> impl Iterator<Item = IkeSaId> + '_ {
        self.sas.values().map(IkeSa::id)
    }

    fn new_ike_spi<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, peer: IpAddr) -> u64 {
        loop {
            let spi = self.spis.ike_spi(rng.next_u64(), peer);
            if spi != 0 && !self.sas.contains_key(&spi) {
                return spi;
            }
        }
    }
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint").field("sas", &self.sas.len()).finish_non_exhaustive()
    }
}
