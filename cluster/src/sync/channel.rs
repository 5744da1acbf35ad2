//! A reliable, ordered, authenticated sync channel to one peer, sans-IO.
//!
//! Call order, as for every Tandem state machine: feed inputs
//! ([`Channel::send`], [`Channel::handle_datagram`],
//! [`Channel::handle_timeout`]), then drain [`Channel::poll_transmit`]
//! until it returns `None`, drain [`Channel::poll_event`], and re-arm a
//! timer at [`Channel::poll_timeout`].
//!
//! Two numbers travel in every datagram. The *packet number* counts
//! datagrams (new, retransmitted or ack-only): it is the AEAD nonce and
//! what the receiver's replay window slides over. The *message sequence
//! number* counts messages: a retransmission keeps it, so the receiver
//! drops duplicates, buffers out-of-order arrivals and delivers messages
//! in order, exactly once; acks (cumulative plus a 64-message bitmap)
//! name message sequence numbers.
//!
//! Incarnations: each node draws a random epoch at start. A message
//! stream is bound to the pair (sender epoch, receiver epoch): a datagram's
//! message is delivered only if its ack field names the receiver's current
//! epoch, which proves it was sealed after the receiver started, so traffic
//! recorded from earlier incarnations cannot be replayed into a new one.
//! A node learns a peer's new epoch from an authenticated datagram that
//! names its own epoch, then numbers its unacknowledged messages afresh
//! from 1 for that incarnation and reports [`ChannelEvent::PeerEpoch`] (the
//! engine then resyncs the peer). Epochs seen to end are remembered (up to
//! [`RETIRED_EPOCHS`]) and refused.
//!
//! Back-pressure: at most `max_in_flight` messages beyond the oldest
//! unacknowledged one are on the wire, and at most `max_in_flight +
//! max_queued` are held in all; beyond that [`Channel::send`] fails with
//! [`Error::SyncWouldBlock`].

use super::seal::{DirectionKey, SyncKeys};
use super::wire::{Ack, HEADER_LEN, Header, MAX_BODY, Message, VERSION};
use crate::{Error, NodeId};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How many messages past the next in-order one a receiver buffers, and
/// the largest `max_in_flight`.
pub const MAX_REORDER: u64 = 1024;
/// Packet numbers the replay window remembers below the highest seen.
pub const REPLAY_WINDOW: u64 = 1024;
/// How many ended peer epochs a channel remembers and refuses.
pub const RETIRED_EPOCHS: usize = 32;

/// Channel tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Messages on the wire at once, at most [`MAX_REORDER`].
    pub max_in_flight: usize,
    /// Messages waiting behind the in-flight window.
    pub max_queued: usize,
    /// First retransmission timeout.
    pub initial_rto: Duration,
    /// Longest retransmission timeout (the backoff doubles up to it).
    pub max_rto: Duration,
    /// How long an ack may wait for a message to ride on.
    pub ack_delay: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            max_queued: 4096,
            initial_rto: Duration::from_millis(20),
            max_rto: Duration::from_secs(1),
            ack_delay: Duration::from_millis(5),
        }
    }
}

/// What a channel reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The next message from the peer, in order.
    Message(Message),
    /// The next message authenticated but did not decode (a bug or a far
    /// newer peer): it is acknowledged and skipped.
    Undecodable(Error),
    /// The peer runs a new incarnation (first contact or a restart): send
    /// it the full state.
    PeerEpoch(u64),
}

#[derive(Debug)]
struct Outgoing {
    body: Vec<u8>,
    send_at: Instant,
    rto: Duration,
}

#[derive(Clone, Debug, Default)]
struct ReplayWindow {
    top: u64,
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    fn is_fresh(&self, pn: u64) -> bool {
        if pn > self.top {
            return true;
        }
        let back = self.top - pn;
        back < REPLAY_WINDOW && self.bits[(pn % REPLAY_WINDOW / 64) as usize] & (1 << (pn % 64)) == 0
    }

    fn mark(&mut self, pn: u64) {
        if pn > self.top {
            let shift = pn - self.top;
            if shift >= REPLAY_WINDOW {
                self.bits = Default::default();
            } else {
                for p in self.top + 1..pn {
                    self.bits[(p % REPLAY_WINDOW / 64) as usize] &= !(1 << (p % 64));
                }
            }
            self.top = pn;
        }
        self.bits[(pn % REPLAY_WINDOW / 64) as usize] |= 1 << (pn % 64);
    }
}

#[derive(Debug)]
struct Receive {
    key: DirectionKey,
    replay: ReplayWindow,
    next_deliver: u64,
    reorder: BTreeMap<u64, Vec<u8>>,
}

impl Receive {
    fn new(key: DirectionKey) -> Self {
        Self { key, replay: ReplayWindow::default(), next_deliver: 1, reorder: BTreeMap::new() }
    }

    fn ack(&self) -> Ack {
        let mut bits = 0u64;
        for (&s, _) in self.reorder.range(self.next_deliver + 1..self.next_deliver + 65) {
            bits |= 1 << (s - self.next_deliver - 1);
        }
        Ack { epoch: self.key.epoch(), next: self.next_deliver, bits }
    }
}

/// The sync channel from this node to one peer.
#[derive(Debug)]
pub struct Channel {
    config: ChannelConfig,
    keys: SyncKeys,
    local: NodeId,
    peer: NodeId,
    tx: DirectionKey,
    next_packet: u64,
    next_msg: u64,
    unacked: BTreeMap<u64, Outgoing>,
    rx: Option<Receive>,
    candidate: Option<DirectionKey>,
    retired: VecDeque<u64>,
    ack_due: Option<Instant>,
    last_heard: Option<Instant>,
    events: VecDeque<ChannelEvent>,
}

impl Channel {
    /// A channel from `local` (running as `epoch`, see
    /// [`new_epoch`](super::seal::new_epoch)) to `peer`.
    pub fn new(
        config: ChannelConfig,
        keys: &SyncKeys,
        local: NodeId,
        peer: NodeId,
        epoch: u64,
    ) -> Result<Self, Error> {
        if epoch == 0 {
            return Err(Error::SyncKey("epoch 0 is reserved"));
        }
        let mut config = config;
        config.max_in_flight = config.max_in_flight.clamp(1, MAX_REORDER as usize);
        Ok(Self {
            config,
            keys: keys.clone(),
            local,
            peer,
            tx: keys.direction(local, peer, epoch)?,
            next_packet: 1,
            next_msg: 1,
            unacked: BTreeMap::new(),
            rx: None,
            candidate: None,
            retired: VecDeque::new(),
            ack_due: None,
            last_heard: None,
            events: VecDeque::new(),
        })
    }

    /// This node's epoch.
    pub fn epoch(&self) -> u64 {
        self.tx.epoch()
    }

    /// The peer's current (proven) epoch, once known.
    pub fn peer_epoch(&self) -> Option<u64> {
        self.rx.as_ref().map(|r| r.key.epoch())
    }

    /// When the last fresh authentic datagram of the peer's proven
    /// incarnation arrived: the peer's liveness, which recorded traffic
    /// cannot fake.
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    /// Messages sent and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Whether [`send`](Self::send) would accept a message now.
    pub fn is_writable(&self) -> bool {
        self.unacked.len() < self.config.max_in_flight + self.config.max_queued
    }

    /// Queues `msg` for reliable delivery; returns its sequence number.
    /// Fails with [`Error::SyncWouldBlock`] when the window and queue are
    /// full, or [`Error::SyncTooLarge`] for a message beyond one datagram.
    pub fn send(&mut self, now: Instant, msg: &Message) -> Result<u64, Error> {
        if !self.is_writable() {
            return Err(Error::SyncWouldBlock);
        }
        let mut body = Vec::new();
        msg.encode(&mut body)?;
        if body.len() > MAX_BODY {
            return Err(Error::SyncTooLarge(body.len()));
        }
        let seq = self.next_msg;
        self.next_msg += 1;
        self.unacked.insert(seq, Outgoing { body, send_at: now, rto: self.config.initial_rto });
        Ok(seq)
    }

    fn window_end(&self) -> u64 {
        self.unacked.keys().next().map_or(self.next_msg, |&s| s + self.config.max_in_flight as u64)
    }

    /// The next datagram to put on the wire: a message due for (re)
    /// transmission, with the current ack riding on it, or an ack alone.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let end = self.window_end();
        let due = self.unacked.range(..end).find(|(_, o)| o.send_at <= now).map(|(&s, _)| s);
        let ack_only = due.is_none() && self.ack_due.is_some_and(|t| t <= now);
        if due.is_none() && !ack_only {
            return None;
        }
        // With a proven peer, always its real ack: an echo there would let a
        // replayed old datagram stall the stream. A restarted peer proves
        // itself anyway, by echoing our epoch from our datagrams.
        let ack = match (&self.rx, &self.candidate) {
            (Some(r), _) => Some(r.ack()),
            (None, Some(c)) => Some(Ack { epoch: c.epoch(), next: 0, bits: 0 }),
            (None, None) => None,
        };
        let header = Header {
            version: VERSION,
            header_len: HEADER_LEN as u8,
            sender: self.local,
            receiver: self.peer,
            flags: 0,
            cluster_id: self.keys.cluster_id(),
            epoch: self.tx.epoch(),
            packet_number: self.next_packet,
            msg_seq: due.unwrap_or(0),
            ack,
        };
        let mut hbytes = Vec::with_capacity(HEADER_LEN);
        header.emit(&mut hbytes);
        let body: &[u8] = match due {
            Some(s) => &self.unacked[&s].body,
            None => &[],
        };
        // Header and sizes are built here; sealing cannot fail for them.
        let datagram = self.tx.seal(&hbytes, body).ok()?;
        self.next_packet += 1;
        self.ack_due = None;
        if let Some(s) = due
            && let Some(o) = self.unacked.get_mut(&s)
        {
            o.send_at = now + o.rto;
            o.rto = (o.rto * 2).min(self.config.max_rto);
        }
        Some(datagram)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let end = self.window_end();
        let rtx = self.unacked.range(..end).map(|(_, o)| o.send_at).min();
        match (rtx, self.ack_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Timers fire; transmissions due now come out of
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// The next thing to report.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    /// Takes a datagram from the peer: parses the header, picks the key by
    /// the peer's epoch, pre-checks replay, authenticates and decrypts, then
    /// moves the replay window, processes the ack and buffers or delivers
    /// the message. Errors mean the datagram was dropped and nothing
    /// changed.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &mut [u8]) -> Result<(), Error> {
        let (h, hlen) = Header::parse(datagram)?;
        if h.cluster_id != self.keys.cluster_id() || h.receiver != self.local || h.sender != self.peer {
            return Err(Error::SyncMisaddressed);
        }
        let mine = self.tx.epoch();
        // Names our epoch: sealed after we started.
        let fresh = h.ack.is_some_and(|a| a.epoch == mine);
        // A real ack (not an echo): the sender numbers its messages for us.
        let ack = h.ack.filter(|a| a.epoch == mine && a.next != 0);
        if let Some(rx) = self.rx.as_mut()
            && rx.key.epoch() == h.epoch
        {
            if !rx.replay.is_fresh(h.packet_number) {
                return Err(Error::SyncReplay(h.packet_number));
            }
            let body = rx.key.open(&h, hlen, datagram)?.to_vec();
            rx.replay.mark(h.packet_number);
            self.last_heard = Some(now);
            if let Some(ack) = ack {
                self.apply_ack(&ack);
            }
            if h.msg_seq != 0 {
                self.ack_due.get_or_insert(now + self.config.ack_delay);
                if ack.is_some() {
                    self.accept(h.msg_seq, body);
                }
            }
            return Ok(());
        }
        if self.retired.contains(&h.epoch) {
            return Err(Error::SyncStaleEpoch);
        }
        // A new peer epoch: authenticate under its key first.
        let key = match self.candidate.take() {
            Some(c) if c.epoch() == h.epoch => c,
            other => {
                self.candidate = other;
                self.keys.direction(self.peer, self.local, h.epoch)?
            }
        };
        let body = match key.open(&h, hlen, datagram) {
            Ok(b) => b.to_vec(),
            Err(e) => {
                if self.candidate.is_none() {
                    self.candidate = Some(key);
                }
                return Err(e);
            }
        };
        if !fresh {
            // Authentic but maybe recorded long ago: echo its epoch so the
            // peer can prove itself, and deliver nothing.
            self.candidate = Some(key);
            self.ack_due.get_or_insert(now);
            return Ok(());
        }
        self.candidate = None;
        let mut rx = Receive::new(key);
        rx.replay.mark(h.packet_number);
        if let Some(old) = self.rx.replace(rx) {
            self.retired.push_back(old.key.epoch());
            if self.retired.len() > RETIRED_EPOCHS {
                self.retired.pop_front();
            }
        }
        self.renumber(now);
        self.last_heard = Some(now);
        self.events.push_back(ChannelEvent::PeerEpoch(h.epoch));
        self.ack_due = Some(now);
        // Its ack cannot name our renumbered messages, so it is skipped; its
        // message is numbered for us only if it carries a real ack.
        if h.msg_seq != 0 && ack.is_some() {
            self.accept(h.msg_seq, body);
        }
        Ok(())
    }

    /// A new peer incarnation received none of our messages: number the
    /// unacknowledged ones afresh from 1 and send them now.
    fn renumber(&mut self, now: Instant) {
        let old = core::mem::take(&mut self.unacked);
        self.next_msg = 1;
        for (_, mut o) in old {
            o.send_at = now;
            o.rto = self.config.initial_rto;
            self.unacked.insert(self.next_msg, o);
            self.next_msg += 1;
        }
    }

    fn apply_ack(&mut self, ack: &Ack) {
        let first = self.unacked.keys().next().copied();
        if first.is_some_and(|f| f < ack.next) {
            self.unacked = self.unacked.split_off(&ack.next);
        }
        if ack.bits != 0 {
            self.unacked.retain(|&s, _| !ack.covers(s));
        }
    }

    fn accept(&mut self, seq: u64, body: Vec<u8>) {
        let Some(rx) = self.rx.as_mut() else { return };
        if seq < rx.next_deliver || seq >= rx.next_deliver + MAX_REORDER {
            return;
        }
        rx.reorder.entry(seq).or_insert(body);
        while let Some(body) = rx.reorder.remove(&rx.next_deliver) {
            rx.next_deliver += 1;
            self.events.push_back(match Message::decode(&body) {
                Ok(m) => ChannelEvent::Message(m),
                Err(e) => ChannelEvent::Undecodable(e),
            });
        }
    }
}
