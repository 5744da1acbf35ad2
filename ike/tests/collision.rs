//! Exchange collisions (RFC 7296 sections 2.8.1, 2.8.2 and 2.25): both
//! peers rekeying the same CHILD_SA or the IKE SA at once, a rekey meeting
//! a Delete, and an IKE SA rekey meeting a CHILD_SA rekey, with every
//! order of the four crossing messages and with random orders, losses
//! and duplicates. After each, both sides must agree on one CHILD_SA pair
//! (or none, when a Delete won), report nothing as failed, and go on
//! working.

mod common;

use common::{Sim, To, count, failures, live_pairs, one_matching_pair, pair};
use tandem_ike::{Event, IkeSaId, Transmit};

/// The four messages of two crossing exchanges: the initiator's request
/// and its answer, the responder's request and its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    ReqI,
    RespI,
    ReqR,
    RespR,
}

/// Every order of the four in which an answer follows its request.
fn orders() -> Vec<[Msg; 4]> {
    use Msg::*;
    let all = [ReqI, RespI, ReqR, RespR];
    let mut out = Vec::new();
    for a in all {
        for b in all {
            for c in all {
                for d in all {
                    let o = [a, b, c, d];
                    let at = |m: Msg| o.iter().position(|x| *x == m);
                    let distinct = all.iter().all(|m| at(*m).is_some());
                    if distinct && at(ReqI) < at(RespI) && at(ReqR) < at(RespR) {
                        out.push(o);
                    }
                }
            }
        }
    }
    assert_eq!(out.len(), 6);
    out
}

/// Delivers the two requests in flight and their answers in `order`;
/// whatever else they cause (Deletes) stays in flight for later.
fn cross(s: &mut Sim, order: [Msg; 4]) {
    let mut flight = s.take_flight();
    assert_eq!(flight.len(), 2, "two crossing requests");
    let mut req_r = flight.pop().expect("responder's request");
    let mut req_i = flight.pop().expect("initiator's request");
    assert_eq!((req_i.0, req_r.0), (To::R, To::I));
    let mut resp_i: Option<(To, Transmit)> = None;
    let mut resp_r: Option<(To, Transmit)> = None;
    let mut later = Vec::new();
    for m in order {
        let (to, t) = match m {
            Msg::ReqI => std::mem::replace(&mut req_i, (To::R, empty())),
            Msg::ReqR => std::mem::replace(&mut req_r, (To::I, empty())),
            Msg::RespI => resp_i.take().expect("the answer to the initiator's request"),
            Msg::RespR => resp_r.take().expect("the answer to the responder's request"),
        };
        let mut produced = s.deliver(to, &t);
        s.flight.clear();
        match m {
            // A request produces exactly its answer.
            Msg::ReqI => resp_i = Some(only(&mut produced)),
            Msg::ReqR => resp_r = Some(only(&mut produced)),
            _ => later.append(&mut produced),
        }
    }
    s.flight = later;
}

fn empty() -> Transmit {
    Transmit { local: common::I_ADDR, remote: common::R_ADDR, data: Vec::new() }
}

fn only(produced: &mut Vec<(To, Transmit)>) -> (To, Transmit) {
    assert_eq!(produced.len(), 1, "one answer");
    produced.remove(0)
}

/// An established pair of endpoints and their CHILD_SA (inbound SPIs of
/// the initiator and the responder).
fn established(esp: &str, seed: u64) -> (Sim, (u32, u32)) {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", esp);
    let s = Sim::established(ic, rc, seed);
    let p = one_matching_pair(&s);
    (s, (p.inbound, p.outbound))
}

/// Both sides rekey the CHILD_SA at once.
fn rekey_child_both(s: &mut Sim, (child_i, child_r): (u32, u32)) {
    let (sa_i, sa_r) = s.sa_ids();
    s.i.rekey_child(s.now, &mut s.rng, sa_i, child_i).expect("initiator rekeys");
    s.r.rekey_child(s.now, &mut s.rng, sa_r, child_r).expect("responder rekeys");
    s.collect();
}

/// After a CHILD_SA rekey collision: one new matching pair, the old one
/// deleted once on each side, one IKE SA each; then another rekey works.
fn check_child_collision(s: &mut Sim, old: (u32, u32), what: &str) -> u32 {
    let pair = one_matching_pair(s);
    assert_ne!(pair.inbound, old.0, "{what}: the pair is new");
    for (events, old_in) in [(&s.i_events, old.0), (&s.r_events, old.1)] {
        let gone = count(
            events,
            |e| matches!(e, Event::ChildSaDeleted { inbound_spi, .. } if *inbound_spi == old_in),
        );
        assert_eq!(gone, 1, "{what}: the old pair is deleted once: {events:?}");
    }
    assert_eq!(s.ike_sas(), (1, 1), "{what}");
    // A later rekey, from the initiator, still works.
    let (sa_i, _) = s.sa_ids();
    s.i.rekey_child(s.now, &mut s.rng, sa_i, pair.inbound).expect("a later rekey");
    s.collect();
    s.settle();
    let next = one_matching_pair(s);
    assert_ne!(next.inbound, pair.inbound, "{what}: rekeyed again");
    // Which pair survived: the one the initiator reported first or second
    // in the collision.
    let reported: Vec<u32> = s
        .i_events
        .iter()
        .filter_map(|e| match e {
            Event::ChildSaRekeyed { new, .. } | Event::ChildSaEstablished(new) => Some(new.inbound_spi),
            _ => None,
        })
        .collect();
    reported.iter().position(|spi| *spi == pair.inbound).expect("the survivor was reported") as u32
}

#[test]
fn resolves_simultaneous_child_rekeys_in_every_order_with_and_without_pfs() {
    let mut survivors = std::collections::HashSet::new();
    for esp in ["aes256gcm16", "aes128gcm16-x25519"] {
        for (n, order) in orders().into_iter().enumerate() {
            // Several seeds, so either side may hold the lowest nonce.
            for seed in 0..6 {
                let (mut s, old) = established(esp, 100 + seed);
                rekey_child_both(&mut s, old);
                cross(&mut s, order);
                s.settle();
                let what = format!("{esp}, order {order:?}, seed {seed}");
                let survivor = check_child_collision(&mut s, old, &what);
                survivors.insert((n, survivor));
            }
        }
    }
    // In the orders where both sides answered before their own answer
    // came, each of the two new pairs survived for some seed.
    // (The initiator reported its first pair at index 0, then the two.)
    let mut full = 0;
    for (n, o) in orders().into_iter().enumerate() {
        let at = |m: Msg| o.iter().position(|x| *x == m);
        if at(Msg::ReqR) < at(Msg::RespI) && at(Msg::ReqI) < at(Msg::RespR) {
            full += 1;
            assert!(survivors.contains(&(n, 1)) && survivors.contains(&(n, 2)), "{o:?}: {survivors:?}");
        }
    }
    assert_eq!(full, 4);
}

#[test]
fn resolves_simultaneous_child_rekeys_under_random_orders_losses_and_duplicates() {
    for seed in 0..40 {
        let esp = if seed % 2 == 0 { "aes256gcm16" } else { "aes128-sha256-ecp256" };
        let (mut s, old) = established(esp, 200 + seed);
        rekey_child_both(&mut s, old);
        s.shuffle(seed);
        check_child_collision(&mut s, old, &format!("{esp}, shuffle seed {seed}"));
    }
}

/// Both sides rekey the IKE SA at once.
fn rekey_ike_both(s: &mut Sim) -> (IkeSaId, IkeSaId) {
    let (sa_i, sa_r) = s.sa_ids();
    s.i.rekey_ike(s.now, &mut s.rng, sa_i).expect("initiator rekeys");
    s.r.rekey_ike(s.now, &mut s.rng, sa_r).expect("responder rekeys");
    s.collect();
    (sa_i, sa_r)
}

/// After an IKE SA rekey collision: each side reports one rekey to the
/// IKE SA it keeps, the old one deleted, no CHILD_SA touched; the two
/// surviving IKE SAs talk to each other.
fn check_ike_collision(s: &mut Sim, old: (IkeSaId, IkeSaId), child: (u32, u32), what: &str) {
    let pair = one_matching_pair(s);
    assert_eq!((pair.inbound, pair.outbound), child, "{what}: the CHILD_SA stays");
    let (new_i, new_r) = s.sa_ids();
    for (events, old, new) in [(&s.i_events, old.0, new_i), (&s.r_events, old.1, new_r)] {
        let rekeys: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::IkeSaRekeyed { old, new } => Some((*old, *new)),
                _ => None,
            })
            .collect();
        assert_eq!(rekeys, vec![(old, new)], "{what}: one rekey, to the survivor: {events:?}");
        let deleted: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::IkeSaDeleted { sa, error } => Some((*sa, error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, vec![(old, None)], "{what}: the old IKE SA goes, and only it");
        assert_eq!(count(events, |e| matches!(e, Event::ChildSaDeleted { .. })), 0, "{what}");
    }
    // The survivors carry exchanges both ways: a CHILD_SA rekey from the
    // responder, then an IKE SA rekey from the initiator.
    s.r.rekey_child(s.now, &mut s.rng, new_r, child.1).expect("child rekey on the survivor");
    s.collect();
    s.settle();
    let next = one_matching_pair(s);
    assert_ne!(next.inbound, child.0, "{what}");
    let on_new = s.i_events.iter().any(|e| matches!(e, Event::ChildSaRekeyed { sa, .. } if *sa == new_i));
    assert!(on_new, "{what}: the rekey ran on the surviving IKE SA");
    s.i.rekey_ike(s.now, &mut s.rng, new_i).expect("IKE rekey of the survivor");
    s.collect();
    s.settle();
    assert_eq!(s.ike_sas(), (1, 1), "{what}");
    assert!(failures(&s.i_events).is_empty() && failures(&s.r_events).is_empty(), "{what}");
}

#[test]
fn resolves_simultaneous_ike_sa_rekeys_in_every_order() {
    for order in orders() {
        for seed in 0..6 {
            let (mut s, child) = established("aes256gcm16", 300 + seed);
            let old = rekey_ike_both(&mut s);
            cross(&mut s, order);
            s.settle();
            check_ike_collision(&mut s, old, child, &format!("order {order:?}, seed {seed}"));
        }
    }
}

#[test]
fn resolves_simultaneous_ike_sa_rekeys_under_random_orders_losses_and_duplicates() {
    for seed in 0..40 {
        let (mut s, child) = established("aes256gcm16", 400 + seed);
        let old = rekey_ike_both(&mut s);
        s.shuffle(seed);
        check_ike_collision(&mut s, old, child, &format!("shuffle seed {seed}"));
    }
}

/// The initiator rekeys the CHILD_SA while the responder deletes it.
fn rekey_meets_delete(s: &mut Sim, (child_i, child_r): (u32, u32)) {
    let (sa_i, sa_r) = s.sa_ids();
    s.i.rekey_child(s.now, &mut s.rng, sa_i, child_i).expect("initiator rekeys");
    s.r.delete_child(s.now, &mut s.rng, sa_r, child_r).expect("responder deletes");
    s.collect();
}

/// After a rekey met a Delete: the Delete wins (TEMPORARY_FAILURE or
/// CHILD_SA_NOT_FOUND for the rekey), no pair is left, nothing failed, and
/// the IKE SA still works.
fn check_rekey_meets_delete(s: &mut Sim, what: &str) {
    assert!(failures(&s.i_events).is_empty() && failures(&s.r_events).is_empty(), "{what}: {:?}", s.i_events);
    for events in [&s.i_events, &s.r_events] {
        let live = live_pairs(events).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(live.is_empty(), "{what}: the Delete wins: {events:?}");
        assert_eq!(count(events, |e| matches!(e, Event::ChildSaDeleted { .. })), 1, "{what}");
    }
    assert_eq!(s.ike_sas(), (1, 1), "{what}");
    let (sa_i, _) = s.sa_ids();
    s.i.check_liveness(s.now, &mut s.rng, sa_i).expect("liveness check");
    s.collect();
    s.settle();
    assert!(failures(&s.i_events).is_empty(), "{what}");
}

#[test]
fn refuses_a_rekey_of_a_child_sa_being_deleted_in_every_order() {
    for order in orders() {
        let (mut s, child) = established("aes256gcm16", 500);
        rekey_meets_delete(&mut s, child);
        cross(&mut s, order);
        s.settle();
        check_rekey_meets_delete(&mut s, &format!("order {order:?}"));
    }
    for seed in 0..20 {
        let (mut s, child) = established("aes128gcm16-x25519", 510 + seed);
        rekey_meets_delete(&mut s, child);
        s.shuffle(seed);
        check_rekey_meets_delete(&mut s, &format!("shuffle seed {seed}"));
    }
}

#[test]
fn answers_child_sa_not_found_to_a_rekey_of_a_deleted_child() {
    // The responder's Delete completes before the rekey arrives: the
    // rekey is answered CHILD_SA_NOT_FOUND.
    let (mut s, child) = established("aes256gcm16", 520);
    rekey_meets_delete(&mut s, child);
    let mut flight = s.take_flight();
    let (rekey, delete) = (flight.remove(0), flight.remove(0));
    let answer = s.deliver(delete.0, &delete.1);
    s.flight.clear();
    s.deliver(answer[0].0, &answer[0].1);
    s.flight.clear();
    let refusal = s.deliver(rekey.0, &rekey.1);
    assert_eq!(refusal.len(), 1);
    s.settle();
    check_rekey_meets_delete(&mut s, "delete first");
}

#[test]
fn retries_an_ike_sa_rekey_refused_while_a_child_sa_rekey_runs() {
    for order in orders() {
        let (mut s, (child_i, child_r)) = established("aes256gcm16", 600);
        let (sa_i, sa_r) = s.sa_ids();
        s.i.rekey_ike(s.now, &mut s.rng, sa_i).expect("initiator rekeys the IKE SA");
        s.r.rekey_child(s.now, &mut s.rng, sa_r, child_r).expect("responder rekeys the CHILD_SA");
        s.collect();
        cross(&mut s, order);
        s.settle();
        let what = format!("order {order:?}");
        let pair = one_matching_pair(&s);
        assert_ne!(pair.inbound, child_i, "{what}: the CHILD_SA was rekeyed");
        let rekeyed = |events: &[Event]| count(events, |e| matches!(e, Event::IkeSaRekeyed { .. }));
        assert_eq!(
            (rekeyed(&s.i_events), rekeyed(&s.r_events)),
            (1, 1),
            "{what}: the IKE SA rekey went through"
        );
        assert_eq!(s.ike_sas(), (1, 1), "{what}");
        let (new_i, _) = s.sa_ids();
        assert_ne!(new_i, sa_i, "{what}");
    }
}

#[test]
fn resolves_collisions_of_fragmented_messages() {
    for seed in 0..20 {
        let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes128gcm16-x25519");
        // Below every CREATE_CHILD_SA message's size: all go in fragments.
        (ic.fragment_size, rc.fragment_size) = (120, 120);
        let mut s = Sim::established(ic.clone(), rc.clone(), 700 + seed);
        let p = one_matching_pair(&s);
        rekey_child_both(&mut s, (p.inbound, p.outbound));
        s.shuffle(seed);
        check_child_collision(&mut s, (p.inbound, p.outbound), &format!("fragmented, seed {seed}"));
        let mut s = Sim::established(ic, rc, 720 + seed);
        let p = one_matching_pair(&s);
        let old = rekey_ike_both(&mut s);
        s.shuffle(seed);
        check_ike_collision(&mut s, old, (p.inbound, p.outbound), &format!("fragmented IKE, seed {seed}"));
    }
}
