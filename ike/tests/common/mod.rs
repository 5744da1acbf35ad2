//! What the scenario tests share: PSK configurations for two peers, and a
//! network between two in-process endpoints whose every datagram the test
//! may hold, reorder, duplicate or drop.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part; `pub` for them

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Error, Event, Identity, IkeConfig, IkeSaId, Transmit};

pub const I_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500);
pub const R_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

/// The wall-clock time the endpoints are told (2026-06-01).
pub const UNIX_NOW: u64 = 1_780_272_000;

pub fn ts(a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
    TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4(b.into()))
}

/// A PSK configuration without lifetimes or liveness checks, whose timers
/// would keep a run-until-quiet harness busy forever.
pub fn config(ike: &str, esp: &str, id: &str, local: TrafficSelector, remote: TrafficSelector) -> IkeConfig {
    let mut child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, esp).expect("ESP proposal"),
        vec![local],
        vec![remote],
    );
    child.lifetime = None;
    let mut c = IkeConfig::new(
        parse_proposals(ProposalKind::Ike, ike).expect("IKE proposal"),
        Identity::fqdn(id),
        SecretBytes::from_slice(b"s3cret"),
        child,
    );
    c.dpd_delay = None;
    c.lifetime = None;
    c
}

/// Initiator and responder with the same proposals and PSK.
pub fn pair(ike: &str, esp: &str) -> (IkeConfig, IkeConfig) {
    let client = ts([10, 1, 0, 0], [10, 1, 255, 255]);
    let server = ts([198, 51, 100, 0], [198, 51, 100, 255]);
    (config(ike, esp, "client.example", client, server), config(ike, esp, "gw.example", server, client))
}

/// The virtual clock's origin: any instant will do, the test only adds to it.
#[allow(clippy::disallowed_methods)]
pub fn origin() -> Instant {
    Instant::now()
}

/// Which endpoint a datagram is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    I,
    R,
}

/// Two endpoints and the datagrams in flight between them.
pub struct Sim {
    pub i: Endpoint,
    pub r: Endpoint,
    pub rng: ChaCha20Rng,
    pub now: Instant,
    pub i_events: Vec<Event>,
    pub r_events: Vec<Event>,
    /// Sent and not yet delivered, oldest first.
    pub flight: Vec<(To, Transmit)>,
    /// Every datagram delivered, in order.
    pub delivered: usize,
}

impl Sim {
    /// The initiator has queued its IKE_SA_INIT request (in `flight`).
    pub fn new(ic: IkeConfig, rc: IkeConfig, seed: u64) -> Self {
        Self::with_endpoints(Endpoint::new(ic), Endpoint::new(rc), seed)
    }

    /// Like [`Self::new`], with endpoints made by the test.
    pub fn with_endpoints(i: Endpoint, r: Endpoint, seed: u64) -> Self {
        let mut s = Sim {
            i,
            r,
            rng: ChaCha20Rng::seed_from_u64(seed),
            now: origin(),
            i_events: Vec::new(),
            r_events: Vec::new(),
            flight: Vec::new(),
            delivered: 0,
        };
        s.i.set_wall_clock(s.now, UNIX_NOW);
        s.r.set_wall_clock(s.now, UNIX_NOW);
        s.i.initiate(s.now, &mut s.rng, I_ADDR, R_ADDR).expect("initiate");
        s.collect();
        s
    }

    /// Runs IKE_SA_INIT and IKE_AUTH to the end.
    pub fn established(ic: IkeConfig, rc: IkeConfig, seed: u64) -> Self {
        let mut s = Self::new(ic, rc, seed);
        s.settle();
        assert_eq!(s.ike_sas(), (1, 1), "established: {:?} / {:?}", s.i_events, s.r_events);
        s
    }

    /// The only IKE SA of each side.
    pub fn sa_ids(&self) -> (IkeSaId, IkeSaId) {
        let one = |ep: &Endpoint| {
            let ids: Vec<_> = ep.sa_ids().collect();
            assert_eq!(ids.len(), 1, "one IKE SA: {ids:?}");
            ids[0]
        };
        (one(&self.i), one(&self.r))
    }

    /// How many IKE SAs each side holds.
    pub fn ike_sas(&self) -> (usize, usize) {
        (self.i.sa_ids().count(), self.r.sa_ids().count())
    }

    /// Moves what the endpoints queued into the flight and the event logs;
    /// returns the datagrams queued.
    pub fn collect(&mut self) -> Vec<(To, Transmit)> {
        let mut new = Vec::new();
        while let Some(t) = self.i.poll_transmit() {
            new.push((To::R, t));
        }
        while let Some(t) = self.r.poll_transmit() {
            new.push((To::I, t));
        }
        self.i_events.extend(std::iter::from_fn(|| self.i.poll_event()));
        self.r_events.extend(std::iter::from_fn(|| self.r.poll_event()));
        self.flight.extend(new.iter().cloned());
        new
    }

    /// Hands one datagram to its endpoint; returns what that queued (also
    /// put in flight).
    pub fn deliver(&mut self, to: To, t: &Transmit) -> Vec<(To, Transmit)> {
        self.delivered += 1;
        let ep = match to {
            To::I => &mut self.i,
            To::R => &mut self.r,
        };
        let _ = ep.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
        self.collect()
    }

    /// Takes the datagram at `index` out of the flight and delivers it.
    pub fn deliver_at(&mut self, index: usize) -> Vec<(To, Transmit)> {
        let (to, t) = self.flight.remove(index);
        self.deliver(to, &t)
    }

    /// Takes the datagrams of the flight out, oldest first.
    pub fn take_flight(&mut self) -> Vec<(To, Transmit)> {
        std::mem::take(&mut self.flight)
    }

    /// Runs the timers due next; returns false when none is pending.
    pub fn tick(&mut self) -> bool {
        let next = [self.i.poll_timeout(), self.r.poll_timeout()].into_iter().flatten().min();
        match next {
            Some(t) => {
                self.now = self.now.max(t);
                self.i.handle_timeout(self.now, &mut self.rng);
                self.r.handle_timeout(self.now, &mut self.rng);
                self.collect();
                true
            }
            None => false,
        }
    }

    /// Delivers everything in order, running timers when nothing is in
    /// flight, until both endpoints are quiet.
    pub fn settle(&mut self) {
        self.settle_with(&mut |_, _| true);
    }

    /// Like [`Self::settle`], but `keep` decides whether each datagram
    /// arrives.
    pub fn settle_with(&mut self, keep: &mut dyn FnMut(To, &Transmit) -> bool) {
        for _ in 0..10_000 {
            if self.flight.is_empty() {
                if !self.tick() {
                    return;
                }
                continue;
            }
            let (to, t) = self.flight.remove(0);
            if keep(to, &t) {
                self.deliver(to, &t);
            }
        }
        panic!("no quiet after 10000 steps");
    }

    /// Delivers in a random order drawn from `seed`: each step takes any
    /// datagram in flight, sometimes delivers it twice, and loses each
    /// distinct datagram at most once (so retransmissions get through).
    pub fn shuffle(&mut self, seed: u64) {
        let mut order = ChaCha20Rng::seed_from_u64(seed);
        let mut lost: HashSet<Vec<u8>> = HashSet::new();
        for _ in 0..10_000 {
            if self.flight.is_empty() {
                if !self.tick() {
                    return;
                }
                continue;
            }
            let k = order.next_u32() as usize % self.flight.len();
            let (to, t) = self.flight.remove(k);
            match order.next_u32() % 8 {
                0 if lost.insert(t.data.clone()) => {}
                1 => {
                    self.deliver(to, &t);
                    self.deliver(to, &t);
                }
                _ => {
                    self.deliver(to, &t);
                }
            }
        }
        panic!("no quiet after 10000 steps");
    }
}

/// A CHILD_SA pair as one side sees it: its SPIs and KEYMAT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub inbound: u32,
    pub outbound: u32,
    pub in_key: Vec<u8>,
    pub out_key: Vec<u8>,
}

/// Replays one side's CHILD_SA events and returns the pairs left, by
/// inbound SPI; fails on an inconsistent story (a pair added twice, a
/// rekey of or a delete for a pair not there).
pub fn live_pairs(events: &[Event]) -> Result<BTreeMap<u32, Pair>, String> {
    let mut live = BTreeMap::new();
    let add = |live: &mut BTreeMap<u32, Pair>, c: &tandem_ike::ChildSa| {
        let pair = Pair {
            inbound: c.inbound_spi,
            outbound: c.outbound_spi,
            in_key: c.dangerous_inbound_keymat().to_vec(),
            out_key: c.dangerous_outbound_keymat().to_vec(),
        };
        match live.insert(c.inbound_spi, pair) {
            Some(_) => Err(format!("pair {:#x} reported twice", c.inbound_spi)),
            None => Ok(()),
        }
    };
    for e in events {
        match e {
            Event::ChildSaEstablished(c) => add(&mut live, c)?,
            Event::ChildSaRekeyed { old_inbound_spi, old_outbound_spi, new, .. } => {
                match live.get(old_inbound_spi) {
                    Some(p) if p.outbound == *old_outbound_spi => {}
                    _ => return Err(format!("rekey of a pair not there: {old_inbound_spi:#x}")),
                }
                add(&mut live, new)?;
            }
            Event::ChildSaDeleted { inbound_spi, outbound_spi, .. } => match live.remove(inbound_spi) {
                Some(p) if p.outbound == *outbound_spi => {}
                _ => return Err(format!("delete of a pair not there: {inbound_spi:#x}")),
            },
            _ => {}
        }
    }
    Ok(live)
}

/// The failures reported, of IKE and CHILD SAs.
pub fn failures(events: &[Event]) -> Vec<&Error> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaFailed { error, .. } | Event::ChildSaFailed { error, .. } => Some(error),
            Event::IkeSaDeleted { error: Some(error), .. } => Some(error),
            _ => None,
        })
        .collect()
}

/// Checks that each side holds exactly one CHILD_SA pair, the two match
/// (SPIs and keys crosswise), and nothing failed; returns the initiator's.
pub fn one_matching_pair(s: &Sim) -> Pair {
    assert!(failures(&s.i_events).is_empty(), "initiator failures: {:?}", s.i_events);
    assert!(failures(&s.r_events).is_empty(), "responder failures: {:?}", s.r_events);
    let i = live_pairs(&s.i_events).unwrap_or_else(|e| panic!("initiator: {e}: {:?}", s.i_events));
    let r = live_pairs(&s.r_events).unwrap_or_else(|e| panic!("responder: {e}: {:?}", s.r_events));
    assert_eq!((i.len(), r.len()), (1, 1), "one pair each: {i:#x?} / {r:#x?}");
    let (pi, pr) = (i.values().next().cloned().expect("pair"), r.values().next().cloned().expect("pair"));
    assert_eq!((pi.inbound, pi.outbound), (pr.outbound, pr.inbound), "the pairs match");
    assert_eq!((&pi.in_key, &pi.out_key), (&pr.out_key, &pr.in_key), "the keys agree");
    assert_ne!(pi.in_key, pi.out_key);
    pi
}

/// The events of a kind, counted.
pub fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}
