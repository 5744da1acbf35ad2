//! A cluster standby rebuilds IKE SAs from sync events alone, holds them
//! PASSIVE, and takes over: it answers the peer's next requests, answers a
//! retransmission from the synced last response, rekeys, and the CHILD_SA
//! keys it mirrored decrypt the peer's ESP traffic. The same holds when
//! the state crosses the sync channel as octets, to a node whose clock has
//! another origin; every CHILD_SA reaches the stream with its keys, after
//! its IKE SA's state; and a node that (re)joins takes over from a
//! snapshot.

mod common;

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use rand_core::SeedableRng;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};
use tandem_crypto::proposal::{EncrAlgorithm, ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::config::Lifetime;
use tandem_ike::sync::{IkeSaState, SyncEvent, TimeBase, decode_child, encode_child};
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Error, Event, Identity, IkeConfig, IkeSaId, Transmit};

const I_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500);
const VIP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

#[allow(clippy::disallowed_methods)] // an origin for the virtual clock
fn origin() -> Instant {
    Instant::now()
}

fn config(id: &str, local: [u8; 4], remote: [u8; 4], sync: bool) -> IkeConfig {
    let ts =
        |a: [u8; 4]| TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4([a[0], a[1], a[2], 255].into()));
    let mut child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, "aes256gcm16").expect("ESP"),
        vec![ts(local)],
        vec![ts(remote)],
    );
    child.lifetime = None;
    let mut c = IkeConfig::new(
        parse_proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519").expect("IKE"),
        Identity::fqdn(id),
        SecretBytes::from_slice(b"cluster psk"),
        child,
    );
    c.dpd_delay = None;
    c.lifetime = None;
    c.sync = sync;
    c
}

/// The client, the owning gateway node and its standby.
struct Cluster {
    client: Endpoint,
    owner: Endpoint,
    standby: Endpoint,
    rng: ChaCha20Rng,
    now: Instant,
    client_events: Vec<Event>,
    standby_events: Vec<Event>,
    /// The last request the client sent and the owner's answer.
    last: Option<(Transmit, Vec<u8>)>,
    /// How far the standby's clock runs ahead of the others'.
    skew: Duration,
    /// The owner's and the standby's time bases, when sync events cross
    /// as octets.
    bases: Option<(TimeBase, TimeBase)>,
}

impl Cluster {
    fn new() -> Self {
        let mut c = Cluster {
            client: Endpoint::new(config("client", [10, 1, 0, 0], [198, 51, 100, 0], false)),
            owner: Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)),
            standby: Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)),
            rng: ChaCha20Rng::from_seed([3; 32]),
            now: origin(),
            client_events: Vec::new(),
            standby_events: Vec::new(),
            last: None,
            skew: Duration::ZERO,
            bases: None,
        };
        c.client.initiate(c.now, &mut c.rng, I_ADDR, VIP).expect("initiate");
        c
    }

    /// Runs client <-> `to` until quiet, mirroring the owner to the standby.
    fn run(&mut self, to_standby: bool) {
        for _ in 0..20 {
            let mut moved = false;
            let gw_now = if to_standby { self.standby_now() } else { self.now };
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                let gw = if to_standby { &mut self.standby } else { &mut self.owner };
                let _ = gw.handle_datagram(gw_now, &mut self.rng, t.remote, t.local, &t.data);
                if let Some(answer) = gw.poll_transmit() {
                    self.last = Some((t.clone(), answer.data.clone()));
                    let _ = self.client.handle_datagram(
                        self.now,
                        &mut self.rng,
                        answer.remote,
                        answer.local,
                        &answer.data,
                    );
                }
                while let Some(a) = gw.poll_transmit() {
                    let _ = self.client.handle_datagram(self.now, &mut self.rng, a.remote, a.local, &a.data);
                }
            }
            // Requests of the gateway side.
            let gw = if to_standby { &mut self.standby } else { &mut self.owner };
            while let Some(t) = gw.poll_transmit() {
                moved = true;
                let _ = self.client.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.standby.poll_event() {
                self.standby_events.push(e);
            }
            while self.owner.poll_event().is_some() {}
            // The sync channel.
            self.sync();
            if !moved {
                return;
            }
        }
    }

    /// The standby's clock.
    fn standby_now(&self) -> Instant {
        self.now + self.skew
    }

    /// Applies the owner's sync events to the standby.
    fn sync(&mut self) {
        while let Some(s) = self.owner.poll_sync() {
            let s = self.relay(s);
            self.standby.apply_sync(self.standby_now(), &s).expect("standby applies every sync event");
        }
    }

    /// With `bases`, passes the state and CHILD_SAs of `e` through their
    /// octets, from the owner's clock to the standby's.
    fn relay(&self, e: SyncEvent) -> SyncEvent {
        let Some((a, b)) = self.bases else { return e };
        match e {
            SyncEvent::IkeSa(state) => {
                let bytes = state.encode(&a);
                let back = IkeSaState::decode(bytes.expose(), &b).expect("the state decodes");
                assert_eq!(back.encode(&b), bytes, "the same state on the standby's clock");
                SyncEvent::IkeSa(Box::new(back))
            }
            SyncEvent::ChildAdded { sa, child, rekey_at, expire_at } => {
                let bytes = encode_child(&child, rekey_at, expire_at, &a);
                let (back, rekey_at, expire_at) =
                    decode_child(bytes.expose(), &b).expect("the CHILD_SA decodes");
                assert_eq!(back.ike_sa, sa);
                assert_eq!(back.dangerous_inbound_keymat(), child.dangerous_inbound_keymat());
                assert_eq!(back.dangerous_outbound_keymat(), child.dangerous_outbound_keymat());
                SyncEvent::ChildAdded { sa, child: Box::new(back), rekey_at, expire_at }
            }
            other => other,
        }
    }
}

/// The cluster-wide time the tests' time bases share, in milliseconds.
const WALL_MS: u64 = 1_780_272_000_000;

/// `now` on the shared base.
fn time_base(now: Instant) -> TimeBase {
    TimeBase { now, now_ms: WALL_MS }
}

/// The gateway's configuration with IKE and CHILD_SA lifetimes.
fn with_lifetimes(mut c: IkeConfig) -> IkeConfig {
    c.lifetime = Some(Lifetime::IKE_DEFAULT);
    c.child.lifetime = Some(Lifetime::CHILD_DEFAULT);
    c
}

#[test]
fn a_standby_takes_over_from_sync_events_alone() {
    take_over(Cluster::new());
}

#[test]
fn a_standby_on_its_own_clock_takes_over_from_encoded_sync_events() {
    let mut c = Cluster::new();
    // Lifetimes give the state deadlines to carry.
    c.owner = Endpoint::new(with_lifetimes(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)));
    c.standby = Endpoint::new(with_lifetimes(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)));
    // Another process, another origin: the same moment is another Instant.
    c.skew = Duration::from_secs(86_400) + Duration::from_micros(1_234_567);
    c.bases = Some((time_base(c.now), time_base(c.standby_now())));
    take_over(c);
}

/// Establishes an IKE SA with the owner, mirrors it, and lets the standby
/// take over: it answers a retransmission from the synced response, then
/// new requests, rekeys a CHILD_SA for the client and the IKE SA itself.
fn take_over(mut c: Cluster) {
    c.run(false);
    let ike = c.client.sa_ids().next().expect("client SA");
    let child = c
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::ChildSaEstablished(ch) => Some(ch.clone()),
            _ => None,
        })
        .expect("CHILD_SA up");
    // The standby mirrors the SA but stays silent while passive.
    let gw_sa = c.standby.sa_ids().next().expect("mirrored IKE SA");
    c.client.check_liveness(c.now, &mut c.rng, ike).expect("DPD");
    let probe = c.client.poll_transmit().expect("DPD request");
    assert_eq!(
        c.standby.handle_datagram(c.standby_now(), &mut c.rng, probe.remote, probe.local, &probe.data),
        Err(Error::Passive)
    );
    assert!(c.standby.poll_transmit().is_none());
    // The owner answers that one; its progress syncs to the standby.
    c.owner
        .handle_datagram(c.now, &mut c.rng, probe.remote, probe.local, &probe.data)
        .expect("owner answers");
    let answer = c.owner.poll_transmit().expect("answer");
    c.client.handle_datagram(c.now, &mut c.rng, answer.remote, answer.local, &answer.data).expect("accepted");
    c.last = Some((probe, answer.data));
    c.sync();

    // The mirror holds the owner's state, deadlines included, each on its
    // own clock.
    let (a, b) = c.bases.unwrap_or((time_base(c.now), time_base(c.now)));
    let live = c.owner.snapshot(gw_sa).expect("the owner's state");
    let mirror = c.standby.snapshot(gw_sa).expect("the standby's state");
    assert_eq!(mirror.encode(&b), live.encode(&a), "the mirror is the owner's SA");
    assert_eq!(mirror.children.len(), 1);
    if c.bases.is_some() {
        let deadline = mirror.children[0].rekey_at.expect("a CHILD_SA lifetime");
        let ahead = deadline - c.standby_now();
        let owner_ahead = live.children[0].rekey_at.expect("a CHILD_SA lifetime") - c.now;
        assert!(owner_ahead.abs_diff(ahead) < Duration::from_millis(1), "{ahead:?} vs {owner_ahead:?}");
        assert!(mirror.rekey_at.expect("an IKE SA lifetime") > c.standby_now() + Duration::from_secs(3600));
    }

    // The owner dies; the standby takes the SA over.
    c.standby.activate(c.standby_now(), gw_sa).expect("activate");
    let (owner_next, standby_next) = (c.owner.poll_timeout(), c.standby.poll_timeout());
    assert_eq!(owner_next.is_some(), c.bases.is_some(), "timers only with lifetimes");
    if let (Some(o), Some(s)) = (owner_next, standby_next) {
        let (o, s) = (o - c.now, s - c.standby_now());
        assert!(o.abs_diff(s) < Duration::from_millis(1), "the same timers: {o:?} vs {s:?}");
    }
    // A retransmission of the last request gets the owner's very answer.
    let (request, old_answer) = c.last.clone().expect("an exchange happened");
    c.standby
        .handle_datagram(c.standby_now(), &mut c.rng, request.remote, request.local, &request.data)
        .expect("handled");
    assert_eq!(
        c.standby.poll_transmit().map(|t| t.data),
        Some(old_answer),
        "answered from the synced response"
    );

    // New requests from the client: a liveness check and a CHILD_SA rekey.
    c.client.check_liveness(c.now, &mut c.rng, ike).expect("DPD");
    c.run(true);
    c.client.rekey_child(c.now, &mut c.rng, ike, child.inbound_spi).expect("rekey");
    c.run(true);
    let rekeyed = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ChildSaRekeyed { new, .. } => Some((new.inbound_spi, new.outbound_spi)),
            _ => None,
        })
    };
    let (ci, si) =
        (rekeyed(&c.client_events).expect("client rekeyed"), rekeyed(&c.standby_events).expect("standby"));
    assert_eq!(ci, (si.1, si.0));
    // The new owner rekeys the IKE SA.
    c.standby.rekey_ike(c.standby_now(), &mut c.rng, gw_sa).expect("rekey the IKE SA");
    c.run(true);
    let rekeyed_ike = |events: &[Event]| events.iter().any(|e| matches!(e, Event::IkeSaRekeyed { .. }));
    assert!(rekeyed_ike(&c.client_events) && rekeyed_ike(&c.standby_events), "{:?}", c.client_events);
    assert_eq!(c.standby.sa_ids().count(), 1, "the old IKE SA is gone");
    assert_eq!(c.client.sa_ids().count(), 1);
    assert!(common::failures(&c.client_events).is_empty(), "{:?}", c.client_events);
    assert!(common::failures(&c.standby_events).is_empty(), "{:?}", c.standby_events);
}

#[test]
fn a_node_that_rejoins_takes_over_from_a_snapshot() {
    let mut c = Cluster::new();
    c.run(false);
    let ike = c.client.sa_ids().next().expect("client SA");
    let gw_sa = c.owner.sa_ids().next().expect("owner SA");
    assert!(c.owner.snapshot(IkeSaId(gw_sa.0 ^ 1)).is_none(), "no such SA");
    // A half-open SA has no state to share.
    let mut other = Endpoint::new(config("client", [10, 1, 0, 0], [198, 51, 100, 0], false));
    other.initiate(c.now, &mut c.rng, I_ADDR, VIP).expect("initiate");
    let init = other.poll_transmit().expect("IKE_SA_INIT");
    let mut gw = Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true));
    gw.handle_datagram(c.now, &mut c.rng, init.remote, init.local, &init.data).expect("answered");
    let half_open = gw.sa_ids().next().expect("half-open SA");
    assert!(gw.snapshot(half_open).is_none(), "half-open");

    // The rejoining node's clock has its own origin.
    let (a, b) = (time_base(c.now), time_base(c.now + Duration::from_secs(777)));
    let bytes = c.owner.snapshot(gw_sa).expect("established").encode(&a);
    let mut node = Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true));
    let state = IkeSaState::decode(bytes.expose(), &b).expect("decodes");
    assert_eq!(node.install_passive(b.now, state).expect("installed"), gw_sa);
    assert_eq!(node.snapshot(gw_sa).expect("passive").encode(&b), bytes, "the same state");
    node.activate(b.now, gw_sa).expect("activate");
    c.client.check_liveness(c.now, &mut c.rng, ike).expect("DPD");
    let probe = c.client.poll_transmit().expect("DPD request");
    node.handle_datagram(b.now, &mut c.rng, probe.remote, probe.local, &probe.data).expect("answered");
    let answer = node.poll_transmit().expect("an answer");
    c.client
        .handle_datagram(c.now, &mut c.rng, answer.remote, answer.local, &answer.data)
        .expect("the client accepts the new owner's answer");
}

/// Every CHILD_SA the gateway makes (in IKE_AUTH, by CHILD_SA rekeys of
/// either side, before and after IKE SA rekeys) reaches the sync stream
/// with its keys, after the state of its IKE SA, so a standby applying
/// the stream in order installs every one; its mirror ends with the
/// gateway's CHILD_SAs.
fn every_child_sa_is_synced_after_its_ike_sa(gateway_initiates: bool) {
    let (mut ic, mut rc) = common::pair("aes128-sha256-prfsha256-x25519", "aes128-sha256");
    let gw_config = if gateway_initiates { &mut ic } else { &mut rc };
    gw_config.sync = true;
    let mut standby = Endpoint::new(gw_config.clone());
    let mut s = common::Sim::established(ic, rc, 21);
    let steps: [(bool, bool); 6] =
        [(true, false), (false, false), (true, true), (true, false), (false, true), (false, false)];
    for (gateway, ike) in steps {
        let (i_sa, r_sa) = s.sa_ids();
        let by_initiator = gateway == gateway_initiates;
        let (ep, sa, events) =
            if by_initiator { (&mut s.i, i_sa, &s.i_events) } else { (&mut s.r, r_sa, &s.r_events) };
        if ike {
            ep.rekey_ike(s.now, &mut s.rng, sa).expect("rekey the IKE SA");
        } else {
            let live = common::live_pairs(events).expect("consistent");
            let inbound = *live.keys().next().expect("a CHILD_SA");
            ep.rekey_child(s.now, &mut s.rng, sa, inbound).expect("rekey the CHILD_SA");
        }
        s.collect();
        s.settle();
    }
    let (i_sa, r_sa) = s.sa_ids();
    let (gw, gw_sa, events) =
        if gateway_initiates { (&mut s.i, i_sa, &s.i_events) } else { (&mut s.r, r_sa, &s.r_events) };
    assert!(common::failures(events).is_empty(), "{events:?}");
    let syncs: Vec<SyncEvent> = std::iter::from_fn(|| gw.poll_sync()).collect();
    let mut states = HashSet::new();
    let mut keys = HashMap::new();
    for e in &syncs {
        match e {
            SyncEvent::IkeSa(state) => {
                states.insert(state.id);
            }
            SyncEvent::ChildAdded { sa, child, .. } => {
                assert!(
                    states.contains(sa),
                    "{:#x}: ChildAdded before its IKE SA's state",
                    child.inbound_spi
                );
                assert_eq!(child.ike_sa, *sa);
                let k =
                    (child.dangerous_inbound_keymat().to_vec(), child.dangerous_outbound_keymat().to_vec());
                assert!(keys.insert(child.inbound_spi, (child.outbound_spi, k)).is_none(), "synced once");
            }
            _ => {}
        }
        standby.apply_sync(s.now, e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
    }
    let made: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaEstablished(c) | Event::ChildSaRekeyed { new: c, .. } => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(made.len(), 5, "IKE_AUTH and four CHILD_SA rekeys");
    for c in made {
        let k = (c.dangerous_inbound_keymat().to_vec(), c.dangerous_outbound_keymat().to_vec());
        assert_eq!(keys.get(&c.inbound_spi), Some(&(c.outbound_spi, k)), "{c:?} synced with its keys");
    }
    let live: BTreeSet<u32> = common::live_pairs(events).expect("consistent").into_keys().collect();
    let mirror = standby.snapshot(gw_sa).expect("the standby mirrors the surviving IKE SA");
    let mirrored: BTreeSet<u32> = mirror.children.iter().map(|c| c.inbound_spi).collect();
    assert_eq!(mirrored, live);
    assert_eq!(standby.sa_ids().collect::<Vec<_>>(), [gw_sa], "the old IKE SAs are gone");
}

#[test]
fn every_child_sa_of_a_responding_gateway_is_synced_after_its_ike_sa() {
    every_child_sa_is_synced_after_its_ike_sa(false);
}

#[test]
fn every_child_sa_of_an_initiating_gateway_is_synced_after_its_ike_sa() {
    every_child_sa_is_synced_after_its_ike_sa(true);
}

#[test]
fn mirrored_child_keys_decrypt_the_peers_traffic() {
    use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundSa, SaParams, Suite, TAILROOM};
    let mut c = Cluster::new();
    // Capture the sync stream instead of applying it.
    c.owner = Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true));
    let mut syncs = Vec::new();
    for _ in 0..10 {
        while let Some(t) = c.client.poll_transmit() {
            let _ = c.owner.handle_datagram(c.now, &mut c.rng, t.remote, t.local, &t.data);
        }
        while let Some(t) = c.owner.poll_transmit() {
            let _ = c.client.handle_datagram(c.now, &mut c.rng, t.remote, t.local, &t.data);
        }
        while let Some(s) = c.owner.poll_sync() {
            syncs.push(s);
        }
    }
    let client_child = std::iter::from_fn(|| c.client.poll_event())
        .find_map(|e| match e {
            Event::ChildSaEstablished(ch) => Some(ch),
            _ => None,
        })
        .expect("client CHILD_SA");
    assert!(matches!(syncs.first(), Some(SyncEvent::IkeSa(_))), "the full state comes first");
    let mirrored = syncs
        .iter()
        .find_map(|s| match s {
            SyncEvent::ChildAdded { child, .. } => Some(child.clone()),
            _ => None,
        })
        .expect("CHILD_SA in the sync stream");
    let EncrAlgorithm::Aead(alg) = mirrored.encr else { panic!("AEAD") };
    let suite = Suite::Aead(alg);
    let (a, b) = (I_ADDR.ip(), VIP.ip());
    let out = SaParams::new(client_child.outbound_spi, suite, client_child.dangerous_outbound_keymat(), a, b);
    let mut tx = OutboundSa::new(&out, &mut c.rng).expect("client's outbound SA");
    let inp = SaParams::new(mirrored.inbound_spi, suite, mirrored.dangerous_inbound_keymat(), b, a);
    let mut rx = InboundSa::new(&inp).expect("standby's inbound SA");
    let packet = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 59, 0, 0, 10, 1, 0, 5, 198, 51, 100, 10];
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
    let esp = tx.encapsulate(&mut buf, HEADROOM..HEADROOM + packet.len(), Framing::Esp).expect("encap");
    let d = rx.decapsulate(&mut buf, esp).expect("the standby's copy decrypts the client's ESP");
    assert_eq!(&buf[d.range], &packet[..]);
}
