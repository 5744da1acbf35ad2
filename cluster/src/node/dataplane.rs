//! A node's ESP state: every CHILD_SA of the cluster installed (its own
//! and mirrored ones), each tagged with its segment, so a packet is
//! decrypted or encrypted only by the segment's owner while every node
//! keeps the counters moving.

use crate::Error;
use crate::child;
use crate::segment::{Segment, SegmentSet};
use crate::sync::wire::{OutboundCounter, ReplaySnapshot};
use core::net::IpAddr;
use core::ops::Range;
use core::time::Duration;
use rand_core::CryptoRng;
use std::collections::HashMap;
use std::time::Instant;
use tandem_esp::{
    Decapsulated, Framing, HEADROOM, InboundSa, OutboundId, Policy, PolicyId, Sad, Spd, SpiHashBuilder,
    TAILROOM,
};
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildSa, IkeSaId};

/// Where an outbound policy sends its packets.
#[derive(Clone, Copy, Debug)]
struct Target {
    sa: OutboundId,
    segment: Segment,
}

/// One installed CHILD_SA.
struct Child {
    /// As negotiated, keys included (a resync sends it on).
    sa: ChildSa,
    /// The IKE SA it belongs to now (a rekey of the IKE SA moves it).
    ike_sa: IkeSaId,
    segment: Segment,
    outbound: OutboundId,
    policies: Vec<PolicyId>,
    /// Packets to skip, while not owning it, before the next sample, and
    /// when the last was verified.
    until_sample: u64,
    sampled_at: Option<Instant>,
    /// The outbound counter and inbound window top last synced.
    synced: (u64, u64),
}

/// What happened to an outbound plaintext packet.
pub(crate) enum Sent {
    /// Encrypted: the whole outer packet.
    Encrypted(Vec<u8>),
    /// Not ours: its SA's counter moved on.
    Counted,
}

/// What happened to an inbound ESP packet.
pub(crate) enum Received {
    /// Decrypted: the inner packet.
    Decrypted(Vec<u8>),
    /// Not ours and sampled: verified, the window moved.
    Verified,
    /// Not ours and not sampled.
    Skipped,
}

/// What happened to an outbound plaintext packet handled in place.
pub(crate) enum SentInPlace {
    /// Encrypted in the caller's buffer: the outer packet's range.
    Encrypted(Range<usize>),
    /// Not ours: its SA's counter moved on.
    Counted,
    /// Ours, but its ESP packet would exceed the limit by this overhead:
    /// not encrypted (the plaintext is untouched), the counter moved on as
    /// if it had been.
    TooBig {
        /// Octets ESP would have added.
        overhead: usize,
    },
}

/// What happened to an inbound ESP packet handled in place.
pub(crate) enum ReceivedInPlace {
    /// Decrypted in the caller's buffer: the inner packet's range.
    Decrypted(Range<usize>),
    /// Not ours and sampled: verified, the window moved.
    Verified,
    /// Not ours and not sampled.
    Skipped,
}

/// What a node does with an inbound ESP packet, before looking at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    /// Its SA's segment is served here: decrypt.
    Serve,
    /// Not ours and due for a sample: verify.
    Sample,
    /// Not ours and not sampled: count it, nothing more.
    Skip,
}

/// All CHILD_SAs of the cluster on one node.
pub(crate) struct Dataplane {
    sad: Sad,
    spd: Spd<Target>,
    children: HashMap<u32, Child, SpiHashBuilder>,
    /// Moves on whenever a CHILD_SA comes or goes.
    generation: u64,
    /// Standbys verify every `sample_every`-th packet of an SA, and the
    /// first after `sample_gap` without a sample.
    sample_every: u64,
    sample_gap: Duration,
}

impl Dataplane {
    pub(crate) fn new(hash_seed: u64, sample_every: u32, sample_gap: Duration) -> Self {
        Self {
            sad: Sad::new(hash_seed),
            spd: Spd::new(),
            children: HashMap::with_hasher(SpiHashBuilder::new(hash_seed.rotate_left(32))),
            generation: 0,
            sample_every: u64::from(sample_every.max(1)),
            sample_gap,
        }
    }

    /// Installs a CHILD_SA in `segment` (replacing an older copy).
    pub(crate) fn install<R: CryptoRng + ?Sized>(
        &mut self,
        c: &ChildSa,
        segment: Segment,
        rng: &mut R,
    ) -> Result<(), Error> {
        self.remove(c.inbound_spi);
        let (inbound, outbound) = child::sas(c, rng)?;
        self.sad.insert_inbound(inbound)?;
        let id = self.sad.insert_outbound(outbound);
        let target = Target { sa: id, segment };
        let policies = child::policies(c)
            .map(|(local, remote)| self.spd.insert(Policy { local, remote, target }))
            .collect();
        let child = Child {
            sa: c.clone(),
            ike_sa: c.ike_sa,
            segment,
            outbound: id,
            policies,
            until_sample: 0,
            sampled_at: None,
            synced: (0, 0),
        };
        self.children.insert(c.inbound_spi, child);
        self.generation += 1;
        Ok(())
    }

    /// Removes the CHILD_SA with inbound SPI `spi`.
    pub(crate) fn remove(&mut self, spi: u32) -> bool {
        let Some(c) = self.children.remove(&spi) else { return false };
        self.generation += 1;
        self.sad.remove_inbound(spi);
        self.sad.remove_outbound(c.outbound);
        for p in c.policies {
            self.spd.remove(p);
        }
        true
    }

    /// Removes every CHILD_SA of an IKE SA.
    pub(crate) fn remove_ike(&mut self, ike_sa: IkeSaId) {
        let spis: Vec<u32> =
            self.children.iter().filter(|(_, c)| c.ike_sa == ike_sa).map(|(&s, _)| s).collect();
        for s in spis {
            self.remove(s);
        }
    }

    /// Moves a CHILD_SA to another IKE SA (the old one was rekeyed).
    pub(crate) fn reparent(&mut self, spi: u32, ike_sa: IkeSaId) {
        if let Some(c) = self.children.get_mut(&spi) {
            c.ike_sa = ike_sa;
        }
    }

    /// The CHILD_SAs of an IKE SA, keys included, with their inbound SPIs.
    pub(crate) fn children_of(&self, ike_sa: IkeSaId) -> impl Iterator<Item = &ChildSa> {
        self.children.values().filter(move |c| c.ike_sa == ike_sa).map(|c| &c.sa)
    }

    /// Number of installed CHILD_SAs.
    pub(crate) fn len(&self) -> usize {
        self.children.len()
    }

    /// A number that moves on whenever a CHILD_SA comes or goes.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The hosts whose plaintext this node only counts, in order: the
    /// single addresses that are a peer's whole selector on a CHILD_SA
    /// of a segment not in `owned`, unless the peer's selectors of a
    /// CHILD_SA in `owned` cover them too.
    pub(crate) fn foreign_hosts(&self, owned: SegmentSet) -> Vec<IpAddr> {
        let (served, others): (Vec<&Child>, Vec<&Child>) =
            self.children.values().partition(|c| owned.contains(c.segment));
        let mut hosts: Vec<IpAddr> = others
            .iter()
            .flat_map(|c| &c.sa.remote_ts)
            .filter(|ts| ts.start_addr == ts.end_addr)
            .map(|ts| ts.start_addr)
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        let (mut single, ranges): (Vec<&TrafficSelector>, Vec<&TrafficSelector>) =
            served.iter().flat_map(|c| &c.sa.remote_ts).partition(|ts| ts.start_addr == ts.end_addr);
        single.sort_unstable_by_key(|ts| ts.start_addr);
        let covered = |h: &IpAddr| {
            single.binary_search_by_key(h, |ts| ts.start_addr).is_ok()
                || ranges.iter().any(|ts| {
                    ts.start_addr.is_ipv4() == h.is_ipv4() && ts.start_addr <= *h && *h <= ts.end_addr
                })
        };
        hosts.retain(|h| !covered(h));
        hosts
    }

    /// An ESP packet at `buf[esp]`: decrypted when `owned` has its segment,
    /// else sampled. Unknown SPIs and bad packets are errors.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        esp: Range<usize>,
        spi: u32,
        owned: SegmentSet,
    ) -> Result<Received, Error> {
        Ok(match self.receive_in_place(now, buf, esp, spi, owned)? {
            ReceivedInPlace::Decrypted(range) => Received::Decrypted(buf[range].to_vec()),
            ReceivedInPlace::Verified => Received::Verified,
            ReceivedInPlace::Skipped => Received::Skipped,
        })
    }

    /// What to do with the next inbound ESP packet of SA `spi`: a skip is
    /// counted here (the sampling countdown moves), a sample is not until
    /// it is verified. Unknown SPIs are errors.
    pub(crate) fn screen(&mut self, now: Instant, spi: u32, owned: SegmentSet) -> Result<Screen, Error> {
        let c = self.children.get_mut(&spi).ok_or(Error::Packet("unknown SPI"))?;
        if owned.contains(c.segment) {
            return Ok(Screen::Serve);
        }
        let recent = c.sampled_at.is_some_and(|t| now < t + self.sample_gap);
        if c.until_sample > 0 && recent {
            c.until_sample -= 1;
            return Ok(Screen::Skip);
        }
        Ok(Screen::Sample)
    }

    /// Makes the next packet of SA `spi` a sample, unless it is served.
    pub(crate) fn sample_next(&mut self, spi: u32) {
        if let Some(c) = self.children.get_mut(&spi) {
            c.until_sample = 0;
            c.sampled_at = None;
        }
    }

    /// [`Self::receive`], decrypting in `buf` without a copy.
    pub(crate) fn receive_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        esp: Range<usize>,
        spi: u32,
        owned: SegmentSet,
    ) -> Result<ReceivedInPlace, Error> {
        match self.screen(now, spi, owned)? {
            Screen::Serve => {
                let Decapsulated { range, .. } = self.sad.decapsulate(buf, esp)?;
                Ok(ReceivedInPlace::Decrypted(range))
            }
            Screen::Skip => Ok(ReceivedInPlace::Skipped),
            Screen::Sample => {
                // The owner's synced window can run ahead of our receive
                // queue: a number it already took is no replay to count
                // here (and the next packet is sampled instead).
                let sa = self.sad.inbound(spi).ok_or(Error::UnknownSa)?;
                if buf.get(esp.clone()).is_some_and(|p| sa.already_seen(p)) {
                    return Ok(ReceivedInPlace::Skipped);
                }
                self.sad.decapsulate(buf, esp)?;
                if let Some(c) = self.children.get_mut(&spi) {
                    c.until_sample = self.sample_every - 1;
                    c.sampled_at = Some(now);
                }
                Ok(ReceivedInPlace::Verified)
            }
        }
    }

    /// A plaintext packet from the protected side: encrypted when `owned`
    /// has its SA's segment; otherwise only the SA's counter moves, as on
    /// the owner. `None` when no policy covers it.
    pub(crate) fn send(&mut self, packet: &[u8], owned: SegmentSet) -> Result<Option<Sent>, Error> {
        let Some(&t) = self.spd.lookup(packet)? else { return Ok(None) };
        let sa = self.sad.outbound_mut(t.sa).ok_or(Error::UnknownSa)?;
        if !owned.contains(t.segment) {
            sa.advance_seq_to(sa.next_seq().saturating_add(1));
            return Ok(Some(Sent::Counted));
        }
        let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
        let r = sa.encapsulate(&mut buf, HEADROOM..HEADROOM + packet.len(), Framing::Ip)?;
        buf.truncate(r.end);
        buf.drain(..r.start);
        Ok(Some(Sent::Encrypted(buf)))
    }

    /// [`Self::send`] for the packet at `buf[packet]`, encrypted in place
    /// (it needs [`HEADROOM`] octets before and [`TAILROOM`] after it) if
    /// the outer packet fits in `max_len` octets. `finish` sees the
    /// plaintext just before it is encrypted, never a packet only counted.
    pub(crate) fn send_in_place(
        &mut self,
        buf: &mut [u8],
        packet: Range<usize>,
        owned: SegmentSet,
        max_len: usize,
        finish: impl FnOnce(&mut [u8]),
    ) -> Result<Option<SentInPlace>, Error> {
        let p = buf.get(packet.clone()).ok_or(Error::Packet("packet outside its buffer"))?;
        let Some(&t) = self.spd.lookup(p)? else { return Ok(None) };
        let sa = self.sad.outbound_mut(t.sa).ok_or(Error::UnknownSa)?;
        if !owned.contains(t.segment) {
            sa.advance_seq_to(sa.next_seq().saturating_add(1));
            return Ok(Some(SentInPlace::Counted));
        }
        let overhead = sa.overhead(packet.len(), Framing::Ip);
        if packet.len() + overhead > max_len {
            sa.advance_seq_to(sa.next_seq().saturating_add(1));
            return Ok(Some(SentInPlace::TooBig { overhead }));
        }
        finish(&mut buf[packet.clone()]);
        let r = sa.encapsulate(buf, packet, Framing::Ip)?;
        Ok(Some(SentInPlace::Encrypted(r)))
    }

    /// Moves the counter of `packet`'s outbound SA by `n` if `owned` lacks
    /// its segment (`n` packets with its headers, only counted here);
    /// `false` for anything else: served, or no policy.
    pub(crate) fn count(&mut self, packet: &[u8], owned: SegmentSet, n: u64) -> Result<bool, Error> {
        let Some(&t) = self.spd.lookup(packet)? else { return Ok(false) };
        if owned.contains(t.segment) {
            return Ok(false);
        }
        let sa = self.sad.outbound_mut(t.sa).ok_or(Error::UnknownSa)?;
        sa.advance_seq_to(sa.next_seq().saturating_add(n));
        Ok(true)
    }

    /// Jumps the outbound counters of the SAs in `segments` forward by
    /// `margin`: numbers the old owner may have used since its last sync
    /// are never sent again.
    pub(crate) fn jump(&mut self, segments: SegmentSet, margin: u64) {
        for c in self.children.values().filter(|c| segments.contains(c.segment)) {
            if let Some(sa) = self.sad.outbound_mut(c.outbound) {
                sa.advance_seq_to(sa.next_seq().saturating_add(margin));
            }
        }
    }

    /// Counters and windows of the SAs in `segments`: with
    /// `changed_only`, those that moved since the last such call (which
    /// marks them synced), else all.
    pub(crate) fn esp_state(
        &mut self,
        segments: SegmentSet,
        changed_only: bool,
    ) -> Vec<(OutboundCounter, ReplaySnapshot)> {
        let mut v = Vec::new();
        for (&spi, c) in self.children.iter_mut().filter(|(_, c)| segments.contains(c.segment)) {
            let seq = self.sad.outbound(c.outbound).map_or(0, |s| s.next_seq().saturating_sub(1));
            let Some(win) = self.sad.inbound(spi).map(InboundSa::replay_window) else { continue };
            if changed_only {
                if (seq, win.top()) == c.synced {
                    continue;
                }
                c.synced = (seq, win.top());
            }
            let (top, bitmap) = win.snapshot();
            v.push((OutboundCounter { spi: c.sa.outbound_spi, seq }, ReplaySnapshot { spi, top, bitmap }));
        }
        v
    }

    /// Marks every SA as unsynced, so the next [`Self::esp_state`] sends all.
    pub(crate) fn resend_esp_state(&mut self) {
        for c in self.children.values_mut() {
            c.synced = (u64::MAX, u64::MAX);
        }
    }

    /// Applies a peer's counters and windows.
    pub(crate) fn apply_esp_state(&mut self, out: &[OutboundCounter], inb: &[ReplaySnapshot]) {
        for o in out {
            if let Some(c) = self.children.values().find(|c| c.sa.outbound_spi == o.spi)
                && let Some(sa) = self.sad.outbound_mut(c.outbound)
            {
                sa.advance_seq_to(o.seq.saturating_add(1));
            }
        }
        for r in inb {
            if let Some(sa) = self.sad.inbound_mut(r.spi) {
                sa.merge_replay(r.top, &r.bitmap);
            }
        }
    }

    /// Packet, replay and ICV counters over all SAs: (decrypted or verified
    /// packets in, encrypted packets out, replay drops, ICV drops).
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0);
        for s in self.sad.inbound_sas() {
            t.0 += s.stats().packets;
            t.2 += s.stats().drops.replay;
            t.3 += s.stats().drops.bad_icv;
        }
        for (_, s) in self.sad.outbound_sas() {
            t.1 += s.stats().packets;
        }
        t
    }
}

impl Dataplane {
    /// The CHILD_SAs of `ike_sa` with this node's counters.
    pub(crate) fn report(&self, ike_sa: IkeSaId) -> Vec<super::ChildSaReport> {
        let mut rows: Vec<super::ChildSaReport> = self
            .children
            .iter()
            .filter(|(_, c)| c.ike_sa == ike_sa)
            .map(|(&spi, c)| super::ChildSaReport {
                inbound_spi: spi,
                outbound_spi: c.sa.outbound_spi,
                algorithms: child::suite(&c.sa).map(|s| s.name()).unwrap_or_default(),
                local_ts: c.sa.local_ts.clone(),
                remote_ts: c.sa.remote_ts.clone(),
                inbound: self.sad.inbound(spi).map(|s| *s.stats()).unwrap_or_default(),
                outbound: self.sad.outbound(c.outbound).map(|s| *s.stats()).unwrap_or_default(),
            })
            .collect();
        rows.sort_by_key(|r| r.inbound_spi);
        rows
    }
}
