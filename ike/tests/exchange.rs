//! IKE_SA_INIT + IKE_AUTH between two in-process endpoints: success, the
//! refusals of RFC 7296 (wrong PSK, no proposal, wrong KE group, selectors),
//! lost and duplicated messages, and ESP keyed from the result.

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use rand_core::SeedableRng;
use std::time::{Duration, Instant};
use tandem_crypto::proposal::{EncrAlgorithm, ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::config::{Credentials, LocalAuth, RemoteAuth};
use tandem_ike::pool::{AddressPool, RangePool};
use tandem_ike::pubkey::{Certificate, PrivateKey};
use tandem_ike::wire::{IdType, TrafficSelector};
use tandem_ike::{ChildConfig, ChildSa, Endpoint, Error, Event, Identity, IkeConfig, Transmit};

const I_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500);
const R_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

fn ts(a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
    TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4(b.into()))
}

fn config(
    ike: &str,
    esp: &str,
    id: &str,
    psk: &str,
    local: TrafficSelector,
    remote: TrafficSelector,
) -> IkeConfig {
    let mut child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, esp).expect("ESP proposal"),
        vec![local],
        vec![remote],
    );
    child.lifetime = None;
    let mut c = IkeConfig::new(
        parse_proposals(ProposalKind::Ike, ike).expect("IKE proposal"),
        Identity::fqdn(id),
        SecretBytes::from_slice(psk.as_bytes()),
        child,
    );
    // The harness runs timers until quiet: liveness checks and rekeys
    // would never be.
    c.dpd_delay = None;
    c.lifetime = None;
    c
}

fn client_net() -> TrafficSelector {
    ts([10, 1, 0, 0], [10, 1, 255, 255])
}
fn server_net() -> TrafficSelector {
    ts([198, 51, 100, 0], [198, 51, 100, 255])
}

/// Initiator and responder with the same proposals and PSK.
fn pair(ike: &str, esp: &str) -> (IkeConfig, IkeConfig) {
    (
        config(ike, esp, "client.example", "s3cret", client_net(), server_net()),
        config(ike, esp, "gw.example", "s3cret", server_net(), client_net()),
    )
}

/// The wall-clock time the endpoints are told (2026-06-01), within the
/// test certificates' validity.
const UNIX_NOW: u64 = 1_780_272_000;

/// The virtual clock's origin: any instant will do, the test only adds to it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

struct Net {
    i: Endpoint,
    r: Endpoint,
    rng: ChaCha20Rng,
    now: Instant,
    i_events: Vec<Event>,
    r_events: Vec<Event>,
    /// Messages the test chose to drop, by direction and index.
    delivered: usize,
}

impl Net {
    fn new(ic: IkeConfig, rc: IkeConfig, seed: u8) -> Self {
        let mut n = Net {
            i: Endpoint::new(ic),
            r: Endpoint::new(rc),
            rng: ChaCha20Rng::from_seed([seed; 32]),
            now: origin(),
            i_events: Vec::new(),
            r_events: Vec::new(),
            delivered: 0,
        };
        n.i.set_wall_clock(n.now, UNIX_NOW);
        n.r.set_wall_clock(n.now, UNIX_NOW);
        n.i.initiate(n.now, &mut n.rng, I_ADDR, R_ADDR).expect("initiate");
        n
    }

    /// Delivers queued datagrams both ways until quiet; `keep` decides per
    /// datagram (in order) whether it arrives.
    fn run(&mut self, keep: &mut dyn FnMut(usize, &Transmit) -> bool) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.i.poll_transmit() {
                moved = true;
                self.delivered += 1;
                if keep(self.delivered, &t) {
                    let _ = self.r.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
                }
            }
            while let Some(t) = self.r.poll_transmit() {
                moved = true;
                self.delivered += 1;
                if keep(self.delivered, &t) {
                    let _ = self.i.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
                }
            }
            while let Some(e) = self.i.poll_event() {
                self.i_events.push(e);
            }
            while let Some(e) = self.r.poll_event() {
                self.r_events.push(e);
            }
            if !moved {
                // Jump the clock to the next timer, as a driver would.
                let next = [self.i.poll_timeout(), self.r.poll_timeout()].into_iter().flatten().min();
                match next {
                    Some(t) if t > self.now => {
                        self.now = t;
                        self.i.handle_timeout(self.now, &mut self.rng);
                        self.r.handle_timeout(self.now, &mut self.rng);
                    }
                    _ => return,
                }
            }
        }
    }
}

fn children(events: &[Event]) -> Vec<&ChildSa> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaEstablished(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn established(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::IkeSaEstablished { .. })).count()
}

fn failure(events: &[Event]) -> Option<&Error> {
    events.iter().find_map(|e| match e {
        Event::IkeSaFailed { error, .. } | Event::ChildSaFailed { error, .. } => Some(error),
        _ => None,
    })
}

#[test]
fn establishes_ike_and_child_sa_with_psk() {
    for (ike, esp) in [
        ("aes256gcm16-prfsha256-x25519", "aes256gcm16"),
        ("chacha20poly1305-prfsha384-ecp384", "chacha20poly1305"),
        ("aes128-sha256-modp2048", "aes128-sha256"),
        ("aes256-sha512-prfsha512-ecp256", "aes128gcm16-esn"),
    ] {
        let (ic, rc) = pair(ike, esp);
        let mut n = Net::new(ic, rc, 1);
        n.run(&mut |_, _| true);
        assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1), "{ike}: {:?}", n.i_events);
        let (ci, cr) = (children(&n.i_events), children(&n.r_events));
        assert_eq!((ci.len(), cr.len()), (1, 1), "{ike}");
        let (ci, cr) = (ci[0], cr[0]);
        assert_eq!((ci.inbound_spi, ci.outbound_spi), (cr.outbound_spi, cr.inbound_spi));
        assert_eq!(ci.dangerous_outbound_keymat(), cr.dangerous_inbound_keymat());
        assert_eq!(ci.dangerous_inbound_keymat(), cr.dangerous_outbound_keymat());
        assert_ne!(ci.dangerous_inbound_keymat(), ci.dangerous_outbound_keymat());
        assert_eq!((ci.local_ts.clone(), ci.remote_ts.clone()), (vec![client_net()], vec![server_net()]));
        assert_eq!((cr.local_ts.clone(), cr.remote_ts.clone()), (vec![server_net()], vec![client_net()]));
        assert_eq!(ci.esn, esp.ends_with("-esn"));
        assert_eq!(n.delivered, 4, "{ike}: two exchanges, no retransmission");
    }
}

#[test]
fn keys_esp_that_carries_traffic_between_the_peers() {
    use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundSa, SaParams, Suite, TAILROOM};
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes128gcm16");
    let mut n = Net::new(ic, rc, 2);
    n.run(&mut |_, _| true);
    let (ci, cr) = (children(&n.i_events)[0], children(&n.r_events)[0]);
    let EncrAlgorithm::Aead(alg) = ci.encr else { panic!("AEAD negotiated") };
    let suite = Suite::Aead(alg);
    let (a, b) = (I_ADDR.ip(), R_ADDR.ip());
    let out = SaParams::new(ci.outbound_spi, suite, ci.dangerous_outbound_keymat(), a, b);
    let mut tx = OutboundSa::new(&out, &mut n.rng).expect("outbound SA");
    let inp = SaParams::new(cr.inbound_spi, suite, cr.dangerous_inbound_keymat(), b, a);
    let mut rx = InboundSa::new(&inp).expect("inbound SA");
    let mut packet = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 5, 198, 51, 100, 10];
    packet.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51, 0, 8, 0, 0]);
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
    let esp = tx.encapsulate(&mut buf, HEADROOM..HEADROOM + packet.len(), Framing::Esp).expect("encap");
    let d = rx.decapsulate(&mut buf, esp).expect("the responder decrypts what the initiator sent");
    assert_eq!(&buf[d.range], &packet[..]);
}

#[test]
fn rejects_a_wrong_psk_with_authentication_failed() {
    let (ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    rc.remote_auth = RemoteAuth::Psk(SecretBytes::from_slice(b"another secret"));
    let mut n = Net::new(ic, rc, 3);
    n.run(&mut |_, _| true);
    assert_eq!(failure(&n.r_events), Some(&Error::AuthenticationFailed));
    assert_eq!(failure(&n.i_events), Some(&Error::Refused(24)), "AUTHENTICATION_FAILED notify");
    assert_eq!(established(&n.i_events) + established(&n.r_events), 0);
    assert!(children(&n.i_events).is_empty() && children(&n.r_events).is_empty());
}

#[test]
fn rejects_a_responder_with_an_unexpected_identity() {
    // The responder authenticates correctly but as another identity than
    // the one the initiator requires.
    let (mut ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    ic.remote_id = Some(Identity::fqdn("someone-else.example"));
    let mut n = Net::new(ic, rc, 4);
    n.run(&mut |_, _| true);
    assert_eq!(established(&n.r_events), 1);
    assert_eq!(failure(&n.i_events), Some(&Error::AuthenticationFailed));
    assert_eq!(established(&n.i_events), 0);
}

#[test]
fn answers_no_proposal_chosen() {
    let (ic, _) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let (_, rc) = pair("aes128-sha256-modp2048", "aes256gcm16");
    let mut n = Net::new(ic, rc, 5);
    n.run(&mut |_, _| true);
    assert_eq!(failure(&n.i_events), Some(&Error::Refused(14)));
    assert!(n.r.sa_ids().next().is_none(), "no state kept for a refused IKE_SA_INIT");
}

#[test]
fn retries_with_the_group_the_responder_asks_for() {
    let (ic, _) = pair("aes256gcm16-prfsha256-ecp256-x25519", "aes256gcm16");
    let (_, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 6);
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
    assert_eq!(n.delivered, 6, "INVALID_KE_PAYLOAD round trip, then both exchanges");
}

#[test]
fn refuses_the_child_sa_on_disjoint_selectors_but_keeps_the_ike_sa() {
    let (ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    rc.child.remote_ts = vec![ts([172, 16, 0, 0], [172, 16, 0, 255])];
    let mut n = Net::new(ic, rc, 7);
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
    assert!(children(&n.i_events).is_empty() && children(&n.r_events).is_empty());
    assert_eq!(failure(&n.i_events), Some(&Error::Refused(38)), "TS_UNACCEPTABLE");
}

#[test]
fn narrows_the_initiators_selectors() {
    let (mut ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    ic.child.remote_ts =
        vec![TrafficSelector::any(IpAddr::V4([0, 0, 0, 0].into()), IpAddr::V4([255; 4].into()))];
    let mut n = Net::new(ic, rc, 8);
    n.run(&mut |_, _| true);
    let ci = children(&n.i_events)[0];
    assert_eq!(ci.remote_ts, vec![server_net()], "narrowed to the responder's network");
}

#[test]
fn survives_lost_and_duplicated_messages() {
    // Lose the first IKE_AUTH request and the first IKE_AUTH response.
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 9);
    let mut lost = 0;
    n.run(&mut |_, t| {
        let auth = t.data.get(18) == Some(&35);
        if auth && lost < 2 {
            lost += 1;
            return false;
        }
        true
    });
    assert_eq!(lost, 2);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
    assert_eq!((children(&n.i_events).len(), children(&n.r_events).len()), (1, 1));

    // Duplicate every message: still exactly one SA each side.
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 10);
    let mut copies: Vec<Transmit> = Vec::new();
    n.run(&mut |_, t| {
        copies.push(t.clone());
        true
    });
    for t in &copies {
        // Received at t.remote (our local address) from t.local.
        let ep = if t.remote == R_ADDR { &mut n.r } else { &mut n.i };
        let _ = ep.handle_datagram(n.now, &mut n.rng, t.remote, t.local, &t.data);
    }
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
    assert_eq!((children(&n.i_events).len(), children(&n.r_events).len()), (1, 1));
    assert_eq!(n.r.sa_ids().count(), 1, "a retransmitted IKE_SA_INIT makes no second SA");
}

#[test]
fn gives_up_after_the_last_retransmission() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let tries = ic.retransmit_tries;
    let start = origin();
    let mut n = Net::new(ic, rc, 11);
    n.now = start;
    let mut sent = 0;
    n.run(&mut |_, _| {
        sent += 1;
        false
    });
    assert_eq!(sent, 1 + tries as usize, "the request and its retransmissions");
    assert_eq!(failure(&n.i_events), Some(&Error::Timeout));
    // 4 s doubling five times: 4 + 8 + 16 + 32 + 64 + 128 s.
    assert!(n.now.duration_since(start) >= Duration::from_secs(252));
}

fn deleted(events: &[Event]) -> Vec<Option<Error>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaDeleted { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

fn child_deletes(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::ChildSaDeleted { .. })).count()
}

#[test]
fn deletes_the_ike_sa_and_its_children_from_either_side() {
    for responder_deletes in [false, true] {
        let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        let mut n = Net::new(ic, rc, 12);
        n.run(&mut |_, _| true);
        let (i_sa, r_sa) =
            (n.i.sa_ids().next().expect("initiator SA"), n.r.sa_ids().next().expect("responder SA"));
        if responder_deletes {
            n.r.delete(n.now, &mut n.rng, r_sa).expect("delete");
        } else {
            n.i.delete(n.now, &mut n.rng, i_sa).expect("delete");
        }
        n.run(&mut |_, _| true);
        assert_eq!(deleted(&n.i_events), vec![None], "initiator, responder_deletes={responder_deletes}");
        assert_eq!(deleted(&n.r_events), vec![None], "responder, responder_deletes={responder_deletes}");
        assert_eq!((child_deletes(&n.i_events), child_deletes(&n.r_events)), (1, 1));
        assert_eq!((n.i.sa_ids().count(), n.r.sa_ids().count()), (0, 0), "both endpoints forgot the SA");
        assert_eq!(n.i.delete(n.now, &mut n.rng, i_sa), Err(Error::UnknownSa));
    }
}

#[test]
fn checks_liveness_after_silence_and_detects_a_dead_peer() {
    let (mut ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    ic.dpd_delay = Some(Duration::from_secs(10));
    let mut n = Net::new(ic, rc, 13);
    n.run(&mut |_, _| true);
    let established_at = n.now;
    // A live peer answers the liveness checks: advance through a few.
    let mut checks = 0;
    for _ in 0..3 {
        let due = n.i.poll_timeout().expect("a DPD deadline");
        assert_eq!(due, n.now + Duration::from_secs(10));
        n.now = due;
        n.i.handle_timeout(n.now, &mut n.rng);
        while let Some(t) = n.i.poll_transmit() {
            checks += 1;
            n.r.handle_datagram(n.now, &mut n.rng, t.remote, t.local, &t.data).expect("responder answers");
        }
        while let Some(t) = n.r.poll_transmit() {
            n.i.handle_datagram(n.now, &mut n.rng, t.remote, t.local, &t.data).expect("initiator accepts");
        }
    }
    assert_eq!(checks, 3);
    assert!(deleted(&n.i_events).is_empty());
    // Then the peer dies: retransmissions run out and the SA goes.
    n.run(&mut |_, t| t.remote != R_ADDR);
    while let Some(e) = n.i.poll_event() {
        n.i_events.push(e);
    }
    assert_eq!(deleted(&n.i_events), vec![Some(Error::Timeout)]);
    assert_eq!(child_deletes(&n.i_events), 1);
    assert!(n.now > established_at + Duration::from_secs(30 + 252));
}

#[test]
fn refuses_a_second_request_while_one_is_outstanding() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 14);
    n.run(&mut |_, _| true);
    let sa = n.i.sa_ids().next().expect("initiator SA");
    n.i.check_liveness(n.now, &mut n.rng, sa).expect("first request");
    assert_eq!(n.i.check_liveness(n.now, &mut n.rng, sa), Err(Error::Busy));
    n.run(&mut |_, _| true);
    n.i.check_liveness(n.now, &mut n.rng, sa).expect("window free again after the answer");
}

#[test]
fn detects_a_nat_and_floats_to_port_4500() {
    // The initiator sits at 10.0.0.5 behind a NAT that maps it to
    // 203.0.113.7, port 500 -> 40000 and port 4500 -> 40001.
    let private = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), port);
    let public = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)), port);
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut rng = ChaCha20Rng::from_seed([15; 32]);
    let now = origin();
    let (mut i, mut r) = (Endpoint::new(ic), Endpoint::new(rc));
    i.initiate(now, &mut rng, private(500), R_ADDR).expect("initiate");
    let mut ports_used = Vec::new();
    for _ in 0..10 {
        while let Some(t) = i.poll_transmit() {
            ports_used.push((t.local.port(), t.remote.port()));
            let mapped = public(if t.local.port() == 500 { 40000 } else { 40001 });
            let _ = r.handle_datagram(now, &mut rng, t.remote, mapped, &t.data);
        }
        while let Some(t) = r.poll_transmit() {
            let back = private(if t.remote.port() == 40000 { 500 } else { 4500 });
            let _ = i.handle_datagram(now, &mut rng, back, t.local, &t.data);
        }
    }
    assert_eq!(ports_used, vec![(500, 500), (4500, 4500)], "IKE_AUTH moved to 4500");
    let i_events: Vec<Event> = std::iter::from_fn(|| i.poll_event()).collect();
    let r_events: Vec<Event> = std::iter::from_fn(|| r.poll_event()).collect();
    let nat_of = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::IkeSaEstablished { nat, .. } => Some(*nat),
            _ => None,
        })
    };
    let (ni, nr) = (nat_of(&i_events).expect("initiator up"), nat_of(&r_events).expect("responder up"));
    assert!(ni.local_behind_nat && !ni.remote_behind_nat, "{ni:?}");
    assert!(nr.remote_behind_nat && !nr.local_behind_nat, "{nr:?}");
    let (ci, cr) = (children(&i_events)[0], children(&r_events)[0]);
    assert!(ci.udp_encap && cr.udp_encap);
    assert_eq!((ci.local, ci.remote), (private(4500), SocketAddr::new(R_ADDR.ip(), 4500)));
    assert_eq!((cr.local, cr.remote), (SocketAddr::new(R_ADDR.ip(), 4500), public(40001)));

    // Without a NAT nothing moves and ESP is not encapsulated.
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 16);
    n.run(&mut |_, _| true);
    let ci = children(&n.i_events)[0];
    assert!(!ci.udp_encap);
    assert_eq!(ci.remote, R_ADDR);
}

#[test]
fn demands_a_cookie_under_load_and_keeps_no_state_until_it_returns() {
    let (ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    rc.cookie_threshold = 0; // always under load
    let mut n = Net::new(ic, rc, 17);
    // The first request gets only a COOKIE back.
    let first = n.i.poll_transmit().expect("IKE_SA_INIT request");
    n.r.handle_datagram(n.now, &mut n.rng, first.remote, first.local, &first.data).expect("handled");
    assert_eq!(n.r.sa_ids().count(), 0, "no state for a request without a cookie");
    let answer = n.r.poll_transmit().expect("COOKIE answer");
    let msg = tandem_ike::wire::Message::parse(&answer.data).expect("valid message");
    assert!(matches!(
        msg.payloads.as_slice(),
        [tandem_ike::wire::Payload::Notify(n)] if n.ty == tandem_ike::wire::NotifyType::COOKIE
    ));
    // A replay of the cookie-less request still gets no state.
    n.r.handle_datagram(n.now, &mut n.rng, first.remote, first.local, &first.data).expect("handled");
    assert_eq!(n.r.sa_ids().count(), 0);
    let _ = n.r.poll_transmit();
    // The initiator retries with the cookie and the SA comes up.
    n.i.handle_datagram(n.now, &mut n.rng, answer.remote, answer.local, &answer.data).expect("cookie taken");
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
}

#[test]
fn forgets_half_open_sas_when_ike_auth_never_comes() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let half_open = rc.half_open_timeout;
    let mut n = Net::new(ic, rc, 18);
    let start = n.now;
    // Every IKE_AUTH request is lost.
    n.run(&mut |_, t| t.data.get(18) != Some(&35));
    assert_eq!(n.r.sa_ids().count(), 0, "half-open SA dropped");
    assert!(matches!(failure(&n.r_events), Some(Error::Timeout)));
    assert!(n.now >= start + half_open);
}

/// One ChildSaRekeyed event: old inbound and outbound SPIs, new inbound
/// and outbound SPIs, new inbound and outbound KEYMAT.
type Rekey = (u32, u32, u32, u32, Vec<u8>, Vec<u8>);

/// The ChildSaRekeyed events.
fn rekeys(events: &[Event]) -> Vec<Rekey> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaRekeyed { old_inbound_spi, old_outbound_spi, new, .. } => Some((
                *old_inbound_spi,
                *old_outbound_spi,
                new.inbound_spi,
                new.outbound_spi,
                new.dangerous_inbound_keymat().to_vec(),
                new.dangerous_outbound_keymat().to_vec(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn rekeys_the_child_sa_from_either_side_with_and_without_pfs() {
    for (esp, gateway_rekeys) in [
        ("aes256gcm16", false),
        ("aes256gcm16", true),
        ("aes128gcm16-x25519", false),
        ("aes128-sha256-ecp256", true),
    ] {
        let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", esp);
        let mut n = Net::new(ic, rc, 19);
        n.run(&mut |_, _| true);
        let (first_i, first_r) = (children(&n.i_events)[0], children(&n.r_events)[0]);
        let (old_i, old_r) =
            ((first_i.inbound_spi, first_i.outbound_spi), (first_r.inbound_spi, first_r.outbound_spi));
        let old_key = first_i.dangerous_inbound_keymat().to_vec();
        if gateway_rekeys {
            let sa = n.r.sa_ids().next().expect("responder SA");
            n.r.rekey_child(n.now, &mut n.rng, sa, old_r.0).expect("rekey");
        } else {
            let sa = n.i.sa_ids().next().expect("initiator SA");
            n.i.rekey_child(n.now, &mut n.rng, sa, old_i.0).expect("rekey");
        }
        n.run(&mut |_, _| true);
        let (ri, rr) = (rekeys(&n.i_events), rekeys(&n.r_events));
        assert_eq!((ri.len(), rr.len()), (1, 1), "{esp}, gateway rekeys: {gateway_rekeys}: {:?}", n.i_events);
        let (ri, rr) = (&ri[0], &rr[0]);
        assert_eq!((ri.0, ri.1), old_i, "the initiator's old pair");
        assert_eq!((rr.0, rr.1), old_r, "the responder's old pair");
        assert_eq!((ri.2, ri.3), (rr.3, rr.2), "new SPIs pair up");
        assert_eq!((&ri.4, &ri.5), (&rr.5, &rr.4), "new keys pair up");
        assert_ne!(ri.4, old_key, "new keys");
        // The old pair is deleted on both sides, and only it.
        let old_deleted = |events: &[Event], old: (u32, u32)| {
            events.iter().any(|e| {
                matches!(e, Event::ChildSaDeleted { inbound_spi, outbound_spi, .. } if (*inbound_spi, *outbound_spi) == old)
            })
        };
        assert!(old_deleted(&n.i_events, old_i) && old_deleted(&n.r_events, old_r), "{esp}");
        assert_eq!((child_deletes(&n.i_events), child_deletes(&n.r_events)), (1, 1));
        // And the IKE SA still works: a liveness check gets through.
        let sa = n.i.sa_ids().next().expect("initiator SA");
        n.i.check_liveness(n.now, &mut n.rng, sa).expect("liveness");
        n.run(&mut |_, _| true);
        assert!(deleted(&n.i_events).is_empty());
    }
}

#[test]
fn rekeys_the_ike_sa_and_keeps_its_children() {
    for gateway_rekeys in [false, true] {
        let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        let mut n = Net::new(ic, rc, 20);
        n.run(&mut |_, _| true);
        let (old_i, old_r) = (n.i.sa_ids().next().expect("SA"), n.r.sa_ids().next().expect("SA"));
        if gateway_rekeys {
            n.r.rekey_ike(n.now, &mut n.rng, old_r).expect("rekey");
        } else {
            n.i.rekey_ike(n.now, &mut n.rng, old_i).expect("rekey");
        }
        n.run(&mut |_, _| true);
        let rekeyed = |events: &[Event]| {
            events.iter().find_map(|e| match e {
                Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
                _ => None,
            })
        };
        let (ri, rr) =
            (rekeyed(&n.i_events).expect("initiator rekeyed"), rekeyed(&n.r_events).expect("responder"));
        assert_eq!((ri.0, rr.0), (old_i, old_r));
        assert_eq!(deleted(&n.i_events), vec![None], "the old IKE SA is deleted");
        assert_eq!(deleted(&n.r_events), vec![None]);
        assert_eq!(
            (child_deletes(&n.i_events), child_deletes(&n.r_events)),
            (0, 0),
            "children moved, not deleted"
        );
        assert_eq!(n.i.sa_ids().collect::<Vec<_>>(), vec![ri.1]);
        assert_eq!(n.r.sa_ids().collect::<Vec<_>>(), vec![rr.1]);
        // The new IKE SA carries the next exchanges: rekey its child.
        let child = children(&n.i_events)[0].inbound_spi;
        n.i.rekey_child(n.now, &mut n.rng, ri.1, child).expect("rekey on the new SA");
        n.run(&mut |_, _| true);
        assert_eq!((rekeys(&n.i_events).len(), rekeys(&n.r_events).len()), (1, 1));
    }
}

#[test]
fn refuses_a_rekey_of_an_unknown_child() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut n = Net::new(ic, rc, 21);
    n.run(&mut |_, _| true);
    let sa = n.i.sa_ids().next().expect("SA");
    assert_eq!(n.i.rekey_child(n.now, &mut n.rng, sa, 0xdead_beef), Err(Error::UnknownChild));
}

#[test]
fn rekeys_children_when_their_lifetime_comes() {
    use tandem_ike::config::Lifetime;
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let life = Lifetime {
        rekey_time: Duration::from_secs(100),
        rand_time: Duration::from_secs(10),
        over_time: Duration::from_secs(10),
    };
    ic.child.lifetime = Some(life);
    rc.child.lifetime = Some(life);
    let mut n = Net::new(ic, rc, 22);
    let start = n.now;
    // Deliver only the handshake, then look at the timers.
    n.run(&mut |_, _| true);
    let (ri, rr) = (rekeys(&n.i_events), rekeys(&n.r_events));
    // The harness ran the clock on: every CHILD_SA was rekeyed in time, by
    // whichever side's jittered timer came first, and none expired.
    assert!(!ri.is_empty() && ri.len() == rr.len(), "{} / {}", ri.len(), rr.len());
    for (a, b) in ri.iter().zip(&rr) {
        assert_eq!((a.2, a.3), (b.3, b.2), "new pairs line up");
        assert_eq!((&a.4, &a.5), (&b.5, &b.4));
    }
    // Each old pair is deleted once (the harness may stop mid-exchange,
    // before the last Delete).
    let d = child_deletes(&n.i_events);
    assert!(d == ri.len() || d + 1 == ri.len(), "{d} deletes for {} rekeys", ri.len());
    assert!(failure(&n.i_events).is_none() && failure(&n.r_events).is_none());
    let per_rekey = n.now.duration_since(start).as_secs() / ri.len() as u64;
    assert!((90..=100).contains(&per_rekey), "about one rekey per 90-100 s, got {per_rekey}");
}

/// A file of the test PKI (ike/tests/data/pubkey, see its README).
fn pki(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/pubkey/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem(&pki(name)).expect("test certificate")
}

/// Credentials of a test leaf: its key and chain (leaf first).
fn creds(key: &str, chain: &[&str]) -> LocalAuth {
    let key = PrivateKey::from_pkcs8_pem(&pki(key)).expect("test key");
    LocalAuth::PubKey(Credentials { key, chain: chain.iter().map(|c| cert(c)).collect() }.into())
}

fn trusting(cas: &[&str]) -> RemoteAuth {
    RemoteAuth::PubKey { cas: cas.iter().map(|c| cert(c)).collect() }
}

/// An initiator `ed.example.test` (Ed25519 by the P-384 intermediate) and
/// a responder `gw.example.test` (P-256 by the same), both trusting the EC
/// root only, so each must send the intermediate.
fn cert_pair() -> (IkeConfig, IkeConfig) {
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha384-ecp384", "aes256gcm16");
    ic.local_id = Identity::fqdn("ed.example.test");
    ic.local_auth = creds("leaf-ed.key", &["leaf-ed.pem", "int-ec.pem"]);
    ic.remote_auth = trusting(&["root-ec.pem"]);
    ic.remote_id = Some(Identity::fqdn("gw.example.test"));
    rc.local_id = Identity::fqdn("gw.example.test");
    rc.local_auth = creds("leaf-ec.key", &["leaf-ec.pem", "int-ec.pem"]);
    rc.remote_auth = trusting(&["root-ec.pem"]);
    (ic, rc)
}

#[test]
fn establishes_with_certificates_and_digital_signatures() {
    let (ic, rc) = cert_pair();
    let mut n = Net::new(ic, rc, 30);
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
    assert_eq!((children(&n.i_events).len(), children(&n.r_events).len()), (1, 1));
    assert!(failure(&n.i_events).is_none() && failure(&n.r_events).is_none());
}

#[test]
fn establishes_with_rsa_and_p384_certificates() {
    let (mut ic, mut rc) = pair("aes128-sha256-modp2048", "aes128-sha256");
    ic.local_id = Identity::fqdn("rsa.example.test");
    ic.local_auth = creds("leaf-rsa.key", &["leaf-rsa-pss-sha256.pem"]);
    ic.remote_auth = trusting(&["root-rsa.pem"]);
    // Its certificate names rsa.example.test and rsa@example.test.
    rc.local_id = Identity { ty: IdType::ID_RFC822_ADDR, data: b"rsa@example.test".to_vec() };
    rc.local_auth = creds("leaf-p384.key", &["leaf-p384.pem"]);
    rc.remote_auth = trusting(&["root-rsa.pem"]);
    let mut n = Net::new(ic, rc, 31);
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
}

#[test]
fn mixes_a_psk_initiator_with_a_certificate_responder() {
    let (mut ic, mut rc) = cert_pair();
    let psk = SecretBytes::from_slice(b"client psk");
    ic.local_auth = LocalAuth::Psk(psk.clone());
    rc.remote_auth = RemoteAuth::Psk(psk);
    ic.local_id = Identity::fqdn("client.example");
    let mut n = Net::new(ic, rc, 32);
    n.run(&mut |_, _| true);
    assert_eq!((established(&n.i_events), established(&n.r_events)), (1, 1));
}

/// Runs a certificate handshake after `tweak` and returns both sides'
/// failures.
fn cert_failure(
    seed: u8,
    tweak: impl FnOnce(&mut IkeConfig, &mut IkeConfig),
) -> (Option<Error>, Option<Error>) {
    let (mut ic, mut rc) = cert_pair();
    tweak(&mut ic, &mut rc);
    let mut n = Net::new(ic, rc, seed);
    n.run(&mut |_, _| true);
    assert_eq!(established(&n.i_events), 0, "the initiator must not be established");
    (failure(&n.i_events).cloned(), failure(&n.r_events).cloned())
}

#[test]
fn refuses_a_certificate_from_an_untrusted_ca() {
    let (i, r) = cert_failure(33, |_, rc| rc.remote_auth = trusting(&["root-rsa.pem", "root-other.pem"]));
    assert_eq!(r, Some(Error::Untrusted));
    assert_eq!(i, Some(Error::Refused(24)), "AUTHENTICATION_FAILED");
}

#[test]
fn refuses_an_initiator_whose_certificate_does_not_name_its_id() {
    let (i, r) = cert_failure(34, |ic, _| ic.local_id = Identity::fqdn("gw.example.test"));
    assert_eq!(r, Some(Error::AuthenticationFailed));
    assert_eq!(i, Some(Error::Refused(24)));
}

#[test]
fn refuses_a_responder_whose_certificate_is_untrusted() {
    // The responder accepts the initiator, which then refuses the answer.
    let (i, r) = cert_failure(35, |ic, _| ic.remote_auth = trusting(&["root-rsa.pem"]));
    assert_eq!(i, Some(Error::Untrusted));
    assert_eq!(r, None);
}

#[test]
fn refuses_an_expired_certificate() {
    let (ic, rc) = cert_pair();
    let mut n = Net::new(ic, rc, 36);
    // 2031-01-01: the leaves expired on 2030-02-01.
    n.r.set_wall_clock(n.now, 1_924_992_000);
    n.run(&mut |_, _| true);
    assert_eq!(failure(&n.r_events), Some(&Error::CertificateExpired));
    assert_eq!(established(&n.i_events), 0);
}

#[test]
fn refuses_certificates_without_a_wall_clock() {
    let (ic, rc) = cert_pair();
    let mut n = Net::new(ic, rc, 37);
    n.r = Endpoint::new(cert_pair().1);
    n.run(&mut |_, _| true);
    assert!(matches!(failure(&n.r_events), Some(Error::CertificateInvalid(_))), "{:?}", n.r_events);
}

#[test]
fn refuses_a_psk_where_a_signature_is_required() {
    let (i, r) = cert_failure(38, |ic, _| ic.local_auth = LocalAuth::Psk(SecretBytes::from_slice(b"guess")));
    assert!(r.is_some(), "the responder refuses");
    assert_eq!(i, Some(Error::Refused(24)));
}

/// A pool the test can look into while the endpoint owns it.
struct SharedPool(std::rc::Rc<std::cell::RefCell<RangePool>>);

impl AddressPool for SharedPool {
    fn lease(&mut self, peer: &Identity, ipv6: bool) -> Option<IpAddr> {
        self.0.borrow_mut().lease(peer, ipv6)
    }
    fn release(&mut self, addr: IpAddr) {
        self.0.borrow_mut().release(addr);
    }
}

/// A road warrior asking for a virtual address, and a gateway leasing
/// from 10.3.0.1-10.3.0.9 with a DNS server.
fn road_warrior(seed: u8) -> (Net, std::rc::Rc<std::cell::RefCell<RangePool>>) {
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let anywhere = ts([0, 0, 0, 0], [255, 255, 255, 255]);
    ic.request_virtual_ip = true;
    ic.child.local_ts = vec![anywhere];
    rc.child.remote_ts = vec![ts([10, 3, 0, 0], [10, 3, 255, 255])];
    rc.dns = vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53))];
    let mut n = Net::new(ic, rc, seed);
    let pool = RangePool::new([10, 3, 0, 1].into(), [10, 3, 0, 9].into()).expect("range");
    let pool = std::rc::Rc::new(std::cell::RefCell::new(pool));
    n.r.set_address_pool(Box::new(SharedPool(pool.clone())));
    (n, pool)
}

fn virtual_ips(events: &[Event]) -> Option<(Vec<IpAddr>, Vec<IpAddr>)> {
    events.iter().find_map(|e| match e {
        Event::IkeSaEstablished { virtual_ips, dns, .. } => Some((virtual_ips.clone(), dns.clone())),
        _ => None,
    })
}

#[test]
fn leases_a_virtual_ip_and_narrows_the_child_to_it() {
    let (mut n, pool) = road_warrior(40);
    n.run(&mut |_, _| true);
    let vip = IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1));
    let dns = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));
    assert_eq!(virtual_ips(&n.i_events), Some((vec![vip], vec![dns])));
    assert_eq!(virtual_ips(&n.r_events), Some((vec![vip], vec![])));
    let (ci, cr) = (children(&n.i_events)[0], children(&n.r_events)[0]);
    assert_eq!(ci.local_ts, vec![TrafficSelector::any(vip, vip)], "the client's side is its VIP");
    assert_eq!(cr.remote_ts, ci.local_ts);
    assert_eq!(pool.borrow().leased(), 1);

    // The gateway rekeys the CHILD_SA: the client accepts its VIP as its side.
    let r_sa = n.r.sa_ids().next().expect("SA");
    n.r.rekey_child(n.now, &mut n.rng, r_sa, cr.inbound_spi).expect("rekey");
    n.run(&mut |_, _| true);
    assert_eq!(rekeys(&n.i_events).len(), 1, "rekeyed: {:?}", failure(&n.i_events));

    // An IKE SA rekey keeps the lease; the delete gives it back.
    let sa = n.i.sa_ids().next().expect("SA");
    n.i.rekey_ike(n.now, &mut n.rng, sa).expect("rekey");
    n.run(&mut |_, _| true);
    assert_eq!(deleted(&n.r_events).len(), 1, "the old IKE SA went");
    assert_eq!(pool.borrow().leased(), 1, "the new IKE SA holds the address");
    let sa = n.i.sa_ids().next().expect("SA");
    n.i.delete(n.now, &mut n.rng, sa).expect("delete");
    n.run(&mut |_, _| true);
    assert_eq!(pool.borrow().leased(), 0);
}

#[test]
fn answers_internal_address_failure_without_an_address() {
    let (mut n, pool) = road_warrior(41);
    // An exhausted pool.
    for i in 0..9 {
        pool.borrow_mut().lease(&Identity::fqdn(&format!("other{i}")), false).expect("free address");
    }
    n.run(&mut |_, _| true);
    assert_eq!(established(&n.i_events), 1, "the IKE SA stands");
    assert_eq!(failure(&n.i_events), Some(&Error::Refused(36)), "INTERNAL_ADDRESS_FAILURE");
    assert!(children(&n.r_events).is_empty());
}

#[test]
fn forces_udp_encapsulation_without_a_nat_when_either_side_asks() {
    for (force_i, force_r) in [(true, false), (false, true), (true, true)] {
        let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        (ic.force_encap, rc.force_encap) = (force_i, force_r);
        let mut n = Net::new(ic, rc, 50);
        n.run(&mut |_, _| true);
        let (ci, cr) = (children(&n.i_events)[0], children(&n.r_events)[0]);
        assert!(ci.udp_encap && cr.udp_encap, "forced by {force_i}/{force_r}");
        assert_eq!((ci.remote.port(), cr.remote.port()), (4500, 4500), "IKE and ESP moved to 4500");
    }
}
