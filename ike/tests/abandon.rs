//! `Endpoint::abandon`: a cluster node forgets the exchanges still
//! setting an SA up in a segment it hands over (as initiator or
//! responder), sending nothing, and leaves established SAs alone.

mod common;

use common::{Sim, To, pair};

#[test]
fn abandons_an_exchange_under_way_silently() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut s = Sim::new(ic, rc, 5);
    // The responder answers IKE_SA_INIT: both sides hold a half-open SA.
    let init = s.take_flight();
    assert_eq!(init.len(), 1, "one IKE_SA_INIT request");
    let answer = s.deliver(init[0].0, &init[0].1);
    assert!(answer.iter().all(|(to, _)| *to == To::I), "the answer goes to the initiator");
    assert_eq!(s.ike_sas(), (1, 1));
    let (i, r) = s.sa_ids();
    let (now, flying) = (s.now, s.flight.len());
    assert_eq!(s.i.abandon(now, i), Ok(true));
    assert_eq!(s.r.abandon(now, r), Ok(true));
    assert_eq!(s.ike_sas(), (0, 0), "both forgotten");
    assert_eq!((s.i.poll_timeout(), s.r.poll_timeout()), (None, None), "nothing to retransmit");
    assert_eq!(s.collect().len(), 0, "nothing sent");
    assert_eq!(s.flight.len(), flying);
    assert!(s.i_events.is_empty() && s.r_events.is_empty(), "{:?} / {:?}", s.i_events, s.r_events);
    // The answer now finds no SA: the initiator drops it.
    let late = s.take_flight();
    s.deliver(late[0].0, &late[0].1);
    assert_eq!(s.ike_sas(), (0, 0));
    assert_eq!(s.take_flight().len(), 0, "the late answer is not answered");
}

#[test]
fn abandons_an_ike_auth_in_flight_and_gives_its_child_spi_back() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut s = Sim::new(ic, rc, 7);
    // IKE_SA_INIT both ways: the initiator sends IKE_AUTH, unanswered.
    let init = s.take_flight();
    s.deliver(init[0].0, &init[0].1);
    let answer = s.take_flight();
    let auth = s.deliver(answer[0].0, &answer[0].1);
    assert!(auth.iter().any(|(to, _)| *to == To::R), "IKE_AUTH sent");
    let (i, _) = s.sa_ids();
    assert_eq!(s.i.abandon(s.now, i), Ok(true));
    assert_eq!(s.ike_sas().0, 0);
    assert_eq!(s.i.poll_timeout(), None);
}

#[test]
fn leaves_an_established_sa_alone() {
    let (ic, rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    let mut s = Sim::established(ic, rc, 9);
    let (i, r) = s.sa_ids();
    assert_eq!(s.i.abandon(s.now, i), Ok(false));
    assert_eq!(s.r.abandon(s.now, r), Ok(false));
    assert_eq!(s.ike_sas(), (1, 1));
}
