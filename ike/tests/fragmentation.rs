//! IKE fragmentation (RFC 7383) in the exchanges: negotiated in
//! IKE_SA_INIT, SKF fragments for encrypted messages over the configured
//! size (IKE_AUTH with certificates above all), reassembly with lost,
//! duplicated and reordered fragments, retransmissions of whole fragment
//! sets, and whole messages for a peer that does not take fragments.

mod common;

use common::{Sim, To, one_matching_pair, pair};
use std::collections::HashSet;
use tandem_ike::config::{Credentials, DEFAULT_FRAGMENT_SIZE, LocalAuth, RemoteAuth};
use tandem_ike::pubkey::{Certificate, PrivateKey};
use tandem_ike::wire::{Message, NotifyType, Payload};
use tandem_ike::{Event, Identity, IkeConfig, Transmit};

/// Header octets: Next Payload (16) and Exchange Type (18).
const NEXT_PAYLOAD: usize = 16;
const EXCHANGE: usize = 18;
const SKF: u8 = 53;
const IKE_AUTH: u8 = 35;

/// A size below that of a PSK IKE_AUTH message (about 200 octets).
const PSK_SIZE: usize = 160;

fn is_fragment(t: &Transmit) -> bool {
    t.data.get(NEXT_PAYLOAD) == Some(&SKF)
}

fn pki(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/pubkey/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem(&pki(name)).expect("test certificate")
}

fn creds(key: &str, chain: &[&str]) -> LocalAuth {
    let key = PrivateKey::from_pkcs8_pem(&pki(key)).expect("test key");
    LocalAuth::PubKey(Credentials { key, chain: chain.iter().map(|c| cert(c)).collect() }.into())
}

fn trusting(cas: &[&str]) -> RemoteAuth {
    RemoteAuth::PubKey { cas: cas.iter().map(|c| cert(c)).collect() }
}

/// An RSA-PSS initiator and a P-384 responder under the RSA root, and an
/// Ed25519 initiator and a P-256 responder each sending the intermediate.
fn cert_pairs() -> Vec<(IkeConfig, IkeConfig)> {
    let (mut ic, mut rc) = pair("aes128-sha256-modp2048", "aes128-sha256");
    ic.local_id = Identity::fqdn("rsa.example.test");
    ic.local_auth = creds("leaf-rsa.key", &["leaf-rsa-pss-sha256.pem"]);
    ic.remote_auth = trusting(&["root-rsa.pem"]);
    rc.local_id =
        Identity { ty: tandem_ike::wire::IdType::ID_RFC822_ADDR, data: b"rsa@example.test".to_vec() };
    rc.local_auth = creds("leaf-p384.key", &["leaf-p384.pem"]);
    rc.remote_auth = trusting(&["root-rsa.pem"]);
    let rsa = (ic, rc);
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha384-ecp384", "aes256gcm16");
    ic.local_id = Identity::fqdn("ed.example.test");
    ic.local_auth = creds("leaf-ed.key", &["leaf-ed.pem", "int-ec.pem"]);
    ic.remote_auth = trusting(&["root-ec.pem"]);
    rc.local_id = Identity::fqdn("gw.example.test");
    rc.local_auth = creds("leaf-ec.key", &["leaf-ec.pem", "int-ec.pem"]);
    rc.remote_auth = trusting(&["root-ec.pem"]);
    vec![rsa, (ic, rc)]
}

/// Runs the handshake, recording every datagram sent.
fn handshake(ic: IkeConfig, rc: IkeConfig, seed: u64) -> (Sim, Vec<(To, Transmit)>) {
    let mut s = Sim::new(ic, rc, seed);
    let mut sent = Vec::new();
    s.settle_with(&mut |to, t| {
        sent.push((to, t.clone()));
        true
    });
    (s, sent)
}

fn established(s: &Sim) -> (usize, usize) {
    let up = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::IkeSaEstablished { .. })).count();
    (up(&s.i_events), up(&s.r_events))
}

#[test]
fn announces_fragmentation_in_ike_sa_init_both_ways() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    assert!(ic.fragmentation, "on by default");
    assert_eq!(ic.fragment_size, DEFAULT_FRAGMENT_SIZE);
    assert_eq!(DEFAULT_FRAGMENT_SIZE, 1232);
    let (_, sent) = handshake(ic, rc, 1);
    let announces = |t: &Transmit| {
        let msg = Message::parse(&t.data).expect("IKE_SA_INIT");
        msg.payloads
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED))
    };
    assert!(announces(&sent[0].1), "in the request");
    assert!(announces(&sent[1].1), "in the response");
}

#[test]
fn fragments_ike_auth_with_certificates() {
    // At the default size, the RSA initiator's request and the P-256
    // responder's answer (two certificates) need fragments; at 500 octets,
    // every IKE_AUTH message does.
    for (k, (ic, rc)) in cert_pairs().into_iter().enumerate() {
        for size in [DEFAULT_FRAGMENT_SIZE, 500] {
            let (mut ic, mut rc) = (ic.clone(), rc.clone());
            (ic.fragment_size, rc.fragment_size) = (size, size);
            let (s, sent) = handshake(ic, rc, 10 + k as u64);
            assert_eq!(established(&s), (1, 1), "pair {k}, size {size}: {:?}", s.r_events);
            one_matching_pair(&s);
            let auth: Vec<_> = sent.iter().filter(|(_, t)| t.data.get(EXCHANGE) == Some(&IKE_AUTH)).collect();
            assert!(auth.iter().all(|(_, t)| t.data.len() <= size), "pair {k}, size {size}: fragments fit");
            let fragments = |to: To| auth.iter().filter(|(d, t)| *d == to && is_fragment(t)).count();
            let (request, response) = match (size, k) {
                (500, _) => (true, true),
                (_, 0) => (true, false),
                _ => (false, true),
            };
            for (to, fragmented) in [(To::R, request), (To::I, response)] {
                if fragmented {
                    assert!(fragments(to) >= 2, "pair {k}, size {size}: {to:?}-bound message in fragments");
                } else {
                    assert_eq!(fragments(to), 0, "pair {k}, size {size}: {to:?}-bound message whole");
                }
            }
        }
    }
}

#[test]
fn fragments_psk_ike_auth_and_later_exchanges_below_their_size() {
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    (ic.fragment_size, rc.fragment_size) = (PSK_SIZE, PSK_SIZE);
    let (mut s, sent) = handshake(ic, rc, 20);
    assert_eq!(established(&s), (1, 1));
    let first = one_matching_pair(&s);
    assert!(sent.iter().any(|(_, t)| is_fragment(t)), "IKE_AUTH fragmented");
    assert!(sent.iter().all(|(_, t)| t.data.len() <= PSK_SIZE || !is_fragment(t)));
    // CREATE_CHILD_SA and a rekeyed IKE SA fragment too (it inherits the
    // negotiated fragmentation).
    let (sa_i, _) = s.sa_ids();
    s.i.rekey_ike(s.now, &mut s.rng, sa_i).expect("IKE rekey");
    s.collect();
    let mut later = Vec::new();
    s.settle_with(&mut |_, t| {
        later.push(t.clone());
        true
    });
    let (sa_i, _) = s.sa_ids();
    s.i.rekey_child(s.now, &mut s.rng, sa_i, first.inbound).expect("child rekey on the new IKE SA");
    s.collect();
    s.settle_with(&mut |_, t| {
        later.push(t.clone());
        true
    });
    let second = one_matching_pair(&s);
    assert_ne!(second.inbound, first.inbound);
    assert!(later.iter().filter(|t| is_fragment(t)).count() >= 4, "rekeys fragmented");
    assert!(later.iter().all(|t| t.data.len() <= PSK_SIZE));
}

#[test]
fn recovers_lost_fragments_by_retransmitting_every_fragment() {
    for lose in [To::R, To::I] {
        let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        (ic.fragment_size, rc.fragment_size) = (PSK_SIZE, PSK_SIZE);
        let mut s = Sim::new(ic, rc, 30);
        // Lose the last fragment of the first IKE_AUTH message going `lose`,
        // once; count the fragments of each direction.
        let mut seen: Vec<(To, Vec<u8>)> = Vec::new();
        let mut lost = false;
        s.settle_with(&mut |to, t| {
            if !is_fragment(t) {
                return true;
            }
            seen.push((to, t.data.clone()));
            let msg = Message::parse(&t.data).expect("fragment");
            let skf = msg.skf().expect("SKF");
            if to == lose && !lost && skf.fragment_number == skf.total_fragments {
                lost = true;
                return false;
            }
            true
        });
        assert!(lost, "{lose:?}");
        assert_eq!(established(&s), (1, 1), "losing towards {lose:?}: {:?}", s.i_events);
        one_matching_pair(&s);
        // Every fragment of the request went again (and, for a lost
        // response fragment, every fragment of the cached response).
        let distinct: HashSet<_> = seen.iter().map(|(_, d)| d.clone()).collect();
        assert!(seen.len() > distinct.len(), "{lose:?}: retransmitted fragments are byte-identical");
        let resent = |to: To| seen.iter().filter(|(d, _)| *d == to).count();
        let once = |to: To| distinct.iter().filter(|d| seen.iter().any(|(t, x)| *t == to && x == *d)).count();
        assert_eq!(resent(To::R), 2 * once(To::R), "{lose:?}: the request's set went twice");
        if lose == To::I {
            assert_eq!(resent(To::I), 2 * once(To::I), "the cached response's set went twice");
        }
    }
}

#[test]
fn reassembles_duplicated_and_reordered_fragments() {
    for seed in 0..30 {
        let (ic, rc) = cert_pairs().swap_remove((seed % 2) as usize);
        let (mut ic, mut rc) = (ic, rc);
        (ic.fragment_size, rc.fragment_size) = (400, 400);
        let mut s = Sim::new(ic, rc, 40 + seed);
        s.shuffle(seed);
        assert_eq!(established(&s), (1, 1), "seed {seed}: {:?} / {:?}", s.i_events, s.r_events);
        one_matching_pair(&s);
        assert_eq!(s.ike_sas(), (1, 1));
    }
}

#[test]
fn sends_whole_messages_to_a_peer_that_takes_no_fragments() {
    for initiator_takes in [false, true] {
        let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        (ic.fragment_size, rc.fragment_size) = (PSK_SIZE, PSK_SIZE);
        if initiator_takes {
            rc.fragmentation = false;
        } else {
            ic.fragmentation = false;
        }
        let (s, sent) = handshake(ic, rc, 50);
        assert_eq!(established(&s), (1, 1), "initiator takes fragments: {initiator_takes}");
        one_matching_pair(&s);
        assert!(sent.iter().all(|(_, t)| !is_fragment(t)), "no fragments either way");
        let auth = sent.iter().filter(|(_, t)| t.data.get(EXCHANGE) == Some(&IKE_AUTH));
        assert!(auth.clone().count() == 2 && auth.clone().all(|(_, t)| t.data.len() > PSK_SIZE), "whole");
        // The responder does not announce what it does not do, nor
        // answer an announcement it did not get.
        let msg = Message::parse(&sent[1].1.data).expect("IKE_SA_INIT response");
        let announced = msg
            .payloads
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.ty == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        assert!(!announced);
    }
}

#[test]
fn ignores_fragments_when_fragmentation_was_not_negotiated() {
    // Two runs from one seed draw the same SPIs, nonces and keys; in the
    // second the responder does not take fragments. The first run's
    // fragmented IKE_AUTH request is authentic for the second responder's
    // SA, which must still drop it unanswered.
    let run = |responder_takes: bool| {
        let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
        (ic.fragment_size, rc.fragment_size) = (PSK_SIZE, PSK_SIZE);
        rc.fragmentation = responder_takes;
        let mut s = Sim::new(ic, rc, 60);
        let init = s.take_flight().remove(0);
        let answer = s.deliver(init.0, &init.1);
        s.flight.clear();
        (s, answer)
    };
    let (mut fragmenting, answer) = run(true);
    let auth = fragmenting.deliver(answer[0].0, &answer[0].1);
    assert!(auth.len() > 1 && auth.iter().all(|(_, t)| is_fragment(t)));
    let (mut whole, _) = run(false);
    for (_, t) in &auth {
        let r = whole.r.handle_datagram(whole.now, &mut whole.rng, t.remote, t.local, &t.data);
        assert!(matches!(r, Err(tandem_ike::Error::InvalidSyntax(_))), "{r:?}");
    }
    assert!(whole.r.poll_transmit().is_none(), "no answer");
    // The same fragments complete the request where it was negotiated.
    for (_, t) in &auth {
        fragmenting
            .r
            .handle_datagram(fragmenting.now, &mut fragmenting.rng, t.remote, t.local, &t.data)
            .expect("taken");
    }
    assert!(fragmenting.r.poll_transmit().is_some(), "answered");
}
