//! Payload-rule violations in encrypted exchanges (RFC 7296 sections 2.5,
//! 2.21.3 and 3.10.1): an authentic request that breaks the rules gets an
//! encrypted INVALID_SYNTAX answer, which ends the IKE SA on both sides; an
//! unknown critical payload gets UNSUPPORTED_CRITICAL_PAYLOAD and nothing
//! ends; an unauthenticated one gets nothing; and INFORMATIONAL responses
//! are checked too. The test forges messages with the keys a cluster
//! standby receives (sync events).

mod common;

use common::{I_ADDR, R_ADDR, Sim, To, one_matching_pair, pair};
use tandem_ike::protect::{SkCipher, SkSuite};
use tandem_ike::sync::{IkeSaState, SyncEvent};
use tandem_ike::wire::{
    ExchangeType, Flags, Header, Id, IdType, Message, MessageBuilder, Notify, NotifyType, Payload,
    PayloadType, emit_inner, parse_inner,
};
use tandem_ike::{Error, Event, Transmit};

/// An established pair whose endpoints sync, and the initiator's state.
fn established(seed: u64) -> (Sim, IkeSaState) {
    let (mut ic, mut rc) = pair("aes256gcm16-prfsha256-x25519", "aes256gcm16");
    (ic.sync, rc.sync) = (true, true);
    let mut s = Sim::established(ic, rc, seed);
    one_matching_pair(&s);
    let state = std::iter::from_fn(|| s.i.poll_sync())
        .find_map(|e| match e {
            SyncEvent::IkeSa(state) => Some(*state),
            _ => None,
        })
        .expect("the initiator's IKE SA state");
    while s.r.poll_sync().is_some() {}
    (s, state)
}

/// The SK cipher of one direction: the initiator's (i to r) or the
/// responder's.
fn cipher(state: &IkeSaState, from_initiator: bool) -> SkCipher {
    let suite = SkSuite::new(state.encr, state.integ).expect("suite");
    let k = state.dangerous_keys();
    let (e, a) = if from_initiator { (k.sk_ei(), k.sk_ai()) } else { (k.sk_er(), k.sk_ar()) };
    SkCipher::new(suite, e.expose(), a.expose()).expect("cipher")
}

/// A message of the SA sealed as the initiator (requests) or responder
/// (responses) would send it; `inner` overrides the emitted plaintext.
fn forge(
    s: &mut Sim,
    state: &IkeSaState,
    (exchange, response, message_id): (ExchangeType, bool, u32),
    payloads: &[Payload<'_>],
    inner: Option<(PayloadType, Vec<u8>)>,
) -> Vec<u8> {
    let from_initiator = !response;
    let h = Header {
        spi_i: state.spi_i,
        spi_r: state.spi_r,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange_type: exchange,
        flags: Flags::new(from_initiator, response),
        message_id,
        length: 0,
    };
    let mut bytes = MessageBuilder::new(h).build_prefix(PayloadType::SK).expect("header");
    let (first, plain) = inner.unwrap_or_else(|| {
        let mut plain = Vec::new();
        (emit_inner(payloads, &mut plain).expect("payloads"), plain)
    });
    cipher(state, from_initiator).seal(&mut s.rng, &mut bytes, first.0, &plain).expect("seal");
    bytes
}

/// Opens an answer of the responder and returns its Notify types.
fn notifies(state: &IkeSaState, t: &Transmit) -> Vec<(NotifyType, Vec<u8>)> {
    let msg = Message::parse(&t.data).expect("answer");
    assert!(msg.header.flags.response());
    let plain = cipher(state, false).open(&t.data, msg.sk_offset().expect("SK")).expect("authentic");
    let first = msg.sk().expect("SK").next_payload;
    parse_inner(first, &plain)
        .expect("inner")
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) => Some((n.ty, n.data.to_vec())),
            _ => None,
        })
        .collect()
}

fn to_responder(s: &mut Sim, data: &[u8]) -> Result<Vec<Transmit>, Error> {
    let r = s.r.handle_datagram(s.now, &mut s.rng, R_ADDR, I_ADDR, data);
    let sent = std::iter::from_fn(|| s.r.poll_transmit()).collect();
    s.r_events.extend(std::iter::from_fn(|| s.r.poll_event()));
    r.map(|_| sent)
}

fn ike_deleted(events: &[Event]) -> Vec<Option<Error>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaDeleted { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn answers_an_authentic_request_breaking_the_payload_rules_with_invalid_syntax() {
    let idi = Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"client.example" });
    let lone_notify = Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, &[]));
    let cases = [
        (ExchangeType::INFORMATIONAL, idi, "INFORMATIONAL request with unexpected IDi"),
        (ExchangeType::CREATE_CHILD_SA, lone_notify, "CREATE_CHILD_SA request without SA"),
    ];
    for (k, (exchange, payload, rule)) in cases.into_iter().enumerate() {
        let (mut s, state) = established(1 + k as u64);
        // The initiator's next request (ID 2) is lost; a forged one with
        // its message ID breaks the rules.
        let (sa_i, _) = s.sa_ids();
        s.i.check_liveness(s.now, &mut s.rng, sa_i).expect("liveness check");
        assert!(s.i.poll_transmit().is_some());
        let bad = forge(&mut s, &state, (exchange, false, state.next_message_id), &[payload], None);
        let answer = to_responder(&mut s, &bad).expect("handled");
        assert_eq!(answer.len(), 1, "{rule}: one encrypted answer");
        assert_eq!(Message::parse(&answer[0].data).expect("answer").header.exchange_type, exchange);
        assert_eq!(notifies(&state, &answer[0]), vec![(NotifyType::INVALID_SYNTAX, Vec::new())], "{rule}");
        // Fatal on both sides (section 2.21.3), without a Delete exchange.
        assert_eq!(ike_deleted(&s.r_events), vec![Some(Error::InvalidSyntax(rule))]);
        assert_eq!(s.r.sa_ids().count(), 0);
        s.deliver(To::I, &answer[0]);
        assert_eq!(ike_deleted(&s.i_events), vec![Some(Error::Refused(NotifyType::INVALID_SYNTAX.0))]);
        assert_eq!(s.i.sa_ids().count(), 0);
        assert!(s.flight.is_empty(), "no Delete exchange");
    }
}

#[test]
fn drops_an_unauthenticated_request_breaking_the_payload_rules_silently() {
    let (mut s, state) = established(10);
    let idi = Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"client.example" });
    let mut bad =
        forge(&mut s, &state, (ExchangeType::INFORMATIONAL, false, state.next_message_id), &[idi], None);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(to_responder(&mut s, &bad), Err(Error::IntegrityCheckFailed));
    assert!(ike_deleted(&s.r_events).is_empty());
    // The SA goes on.
    let (sa_i, _) = s.sa_ids();
    s.i.check_liveness(s.now, &mut s.rng, sa_i).expect("liveness check");
    s.collect();
    s.settle();
    assert_eq!(s.ike_sas(), (1, 1));
    assert!(ike_deleted(&s.i_events).is_empty());
}

#[test]
fn answers_an_unknown_critical_payload_with_unsupported_critical_payload() {
    let (mut s, state) = established(20);
    // One payload of unknown type 200, critical, empty.
    let inner = (PayloadType(200), vec![0, 0x80, 0, 4]);
    let bad =
        forge(&mut s, &state, (ExchangeType::INFORMATIONAL, false, state.next_message_id), &[], Some(inner));
    let answer = to_responder(&mut s, &bad).expect("handled");
    assert_eq!(answer.len(), 1);
    assert_eq!(notifies(&state, &answer[0]), vec![(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![200])]);
    assert!(ike_deleted(&s.r_events).is_empty(), "not fatal");
    // A retransmission gets the same answer.
    assert_eq!(to_responder(&mut s, &bad).expect("handled"), answer);
    assert_eq!(s.r.sa_ids().count(), 1);
}

#[test]
fn drops_an_informational_response_breaking_the_payload_rules() {
    let (mut s, state) = established(30);
    let (sa_i, _) = s.sa_ids();
    s.i.check_liveness(s.now, &mut s.rng, sa_i).expect("liveness check");
    s.collect();
    let request = s.take_flight().remove(0);
    // A forged answer with an IDr payload, which no INFORMATIONAL message
    // carries, is dropped...
    let idr = Payload::IdR(Id { ty: IdType::ID_FQDN, data: b"gw.example" });
    let bad = forge(&mut s, &state, (ExchangeType::INFORMATIONAL, true, state.next_message_id), &[idr], None);
    let r = s.i.handle_datagram(s.now, &mut s.rng, I_ADDR, R_ADDR, &bad);
    assert_eq!(r, Err(Error::InvalidSyntax("INFORMATIONAL response with unexpected IDr")));
    s.collect();
    assert!(s.i_events.iter().all(|e| !matches!(e, Event::IkeSaDeleted { .. })));
    // ... and the real one still completes the exchange.
    s.deliver(request.0, &request.1);
    s.settle();
    assert_eq!(s.ike_sas(), (1, 1));
    assert!(ike_deleted(&s.i_events).is_empty());
    s.i.check_liveness(s.now, &mut s.rng, sa_i).expect("the window is free again");
}
