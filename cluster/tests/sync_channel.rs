//! The sync channel: handshake by epochs, in-order exactly-once delivery
//! over a lossy, duplicating, reordering link, replay and forgery
//! rejection, back-pressure, peer restarts.

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use tandem_cluster::sync::{Channel, ChannelConfig, ChannelEvent, Message, SyncKeys, new_epoch};
use tandem_cluster::{Error, NodeId, SegmentSet};
use tandem_crypto::aead::AeadAlgorithm;

#[allow(clippy::disallowed_methods)] // an origin for the virtual clock
fn origin() -> Instant {
    Instant::now()
}

fn keys() -> SyncKeys {
    SyncKeys::new(b"a cluster secret of decent length", 1, AeadAlgorithm::Aes256Gcm16).expect("valid")
}

fn pair(config: ChannelConfig, seed: u64) -> (Channel, Channel) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let k = keys();
    let a = Channel::new(config, &k, NodeId(1), NodeId(2), new_epoch(&mut rng)).expect("a");
    let b = Channel::new(config, &k, NodeId(2), NodeId(1), new_epoch(&mut rng)).expect("b");
    (a, b)
}

fn msg(i: u64) -> Message {
    Message::IkeSaDeleted { sa: i }
}

fn drain(c: &mut Channel, now: Instant) -> Vec<Vec<u8>> {
    core::iter::from_fn(|| c.poll_transmit(now)).collect()
}

fn messages(c: &mut Channel) -> Vec<Message> {
    core::iter::from_fn(|| c.poll_event())
        .filter_map(|e| match e {
            ChannelEvent::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Delivers everything both ways on a perfect link until both are quiet.
fn settle(a: &mut Channel, b: &mut Channel, mut now: Instant) -> Instant {
    for _ in 0..100 {
        let (da, db) = (drain(a, now), drain(b, now));
        if da.is_empty() && db.is_empty() {
            match [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min() {
                Some(t) => now = now.max(t),
                None => return now,
            }
            continue;
        }
        for mut d in da {
            b.handle_datagram(now, &mut d).expect("a's datagram is good");
        }
        for mut d in db {
            a.handle_datagram(now, &mut d).expect("b's datagram is good");
        }
    }
    panic!("did not settle");
}

/// Exchanges heartbeats so both sides know each other's epoch.
fn connect(a: &mut Channel, b: &mut Channel) -> Instant {
    let hb = Message::Heartbeat { segments: SegmentSet::EMPTY, synced: true };
    let now = origin();
    a.send(now, &hb).expect("room");
    b.send(now, &hb).expect("room");
    let now = settle(a, b, now);
    assert_eq!(messages(a), vec![hb.clone()]);
    assert_eq!(messages(b), vec![hb]);
    now
}

#[test]
fn delivers_in_order_after_epoch_handshake() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 1);
    let now = origin();
    for i in 0..10 {
        a.send(now, &msg(i)).expect("room");
    }
    b.send(now, &Message::Heartbeat { segments: SegmentSet::from_bits(1), synced: true }).expect("room");
    settle(&mut a, &mut b, now);
    let got: Vec<_> = core::iter::from_fn(|| b.poll_event()).collect();
    assert_eq!(got[0], ChannelEvent::PeerEpoch(a.epoch()));
    assert_eq!(got[1..], (0..10).map(|i| ChannelEvent::Message(msg(i))).collect::<Vec<_>>()[..]);
    assert_eq!(
        messages(&mut a),
        vec![Message::Heartbeat { segments: SegmentSet::from_bits(1), synced: true }]
    );
    assert_eq!((a.unacked(), b.unacked()), (0, 0));
    assert_eq!((a.peer_epoch(), b.peer_epoch()), (Some(b.epoch()), Some(a.epoch())));
}

#[test]
fn rejects_replayed_datagrams() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 2);
    let now = connect(&mut a, &mut b);
    a.send(now, &msg(1)).expect("room");
    let d = a.poll_transmit(now).expect("a message");
    b.handle_datagram(now, &mut d.clone()).expect("first copy");
    assert!(matches!(b.handle_datagram(now, &mut d.clone()), Err(Error::SyncReplay(_))));
    assert_eq!(messages(&mut b), vec![msg(1)]);
}

#[test]
fn rejects_forged_and_tampered_datagrams() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 3);
    let now = connect(&mut a, &mut b);
    a.send(now, &msg(1)).expect("room");
    let d = a.poll_transmit(now).expect("a message");
    let mut t = d.clone();
    let last = t.len() - 1;
    t[last] ^= 0x80;
    assert_eq!(b.handle_datagram(now, &mut t), Err(Error::SyncAuth));
    let mut t = d.clone();
    t[33] ^= 1; // the message sequence number
    assert_eq!(b.handle_datagram(now, &mut t), Err(Error::SyncAuth));
    // Sealed with another secret.
    let mallory =
        SyncKeys::new(b"not the cluster secret at all!!", 1, AeadAlgorithm::Aes256Gcm16).expect("ok");
    let mut m = Channel::new(ChannelConfig::default(), &mallory, NodeId(1), NodeId(2), a.epoch()).expect("m");
    m.send(now, &msg(666)).expect("room");
    let mut f = m.poll_transmit(now).expect("forgery");
    assert_eq!(b.handle_datagram(now, &mut f), Err(Error::SyncAuth));
    // Addressed elsewhere.
    let mut c = Channel::new(ChannelConfig::default(), &keys(), NodeId(3), NodeId(2), 5).expect("c");
    assert_eq!(c.handle_datagram(now, &mut d.clone()), Err(Error::SyncMisaddressed));
    // The genuine one still goes through, once.
    b.handle_datagram(now, &mut d.clone()).expect("genuine");
    assert_eq!(messages(&mut b), vec![msg(1)]);
}

#[test]
fn reorders_into_sequence() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 4);
    let now = connect(&mut a, &mut b);
    for i in 0..5 {
        a.send(now, &msg(i)).expect("room");
    }
    let mut ds = drain(&mut a, now);
    ds.reverse();
    for (n, d) in ds.iter_mut().enumerate() {
        b.handle_datagram(now, d).expect("good");
        let got = messages(&mut b);
        if n < 4 {
            assert!(got.is_empty(), "delivered ahead of message 0");
        } else {
            assert_eq!(got, (0..5).map(msg).collect::<Vec<_>>());
        }
    }
    // Selective acks free the sender even before the cumulative one.
    for mut d in drain(&mut b, now + Duration::from_secs(1)) {
        a.handle_datagram(now, &mut d).expect("ack");
    }
    assert_eq!(a.unacked(), 0);
}

#[test]
fn back_pressure_when_window_and_queue_fill() {
    let config = ChannelConfig { max_in_flight: 4, max_queued: 3, ..ChannelConfig::default() };
    let (mut a, mut b) = pair(config, 5);
    let now = connect(&mut a, &mut b);
    for i in 0..7 {
        a.send(now, &msg(i)).expect("room");
    }
    assert!(!a.is_writable());
    assert_eq!(a.send(now, &msg(7)), Err(Error::SyncWouldBlock));
    assert_eq!(drain(&mut a, now).len(), 4, "only the in-flight window goes out");
    let now = settle(&mut a, &mut b, now);
    assert_eq!(messages(&mut b), (0..7).map(msg).collect::<Vec<_>>());
    assert!(a.is_writable());
    a.send(now, &msg(7)).expect("room again");
}

#[test]
fn retransmits_with_backoff() {
    let config = ChannelConfig {
        initial_rto: Duration::from_millis(10),
        max_rto: Duration::from_millis(40),
        ..ChannelConfig::default()
    };
    let (mut a, mut b) = pair(config, 6);
    let t0 = connect(&mut a, &mut b);
    a.send(t0, &msg(1)).expect("room");
    let mut times = vec![];
    let mut now = t0;
    for _ in 0..5 {
        assert!(a.poll_transmit(now).is_some());
        assert!(a.poll_transmit(now).is_none());
        now = a.poll_timeout().expect("armed");
        times.push((now - t0).as_millis());
    }
    assert_eq!(times, [10, 30, 70, 110, 150]);
}

#[test]
fn peer_restart_renumbers_and_refuses_old_epoch() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 7);
    let now = connect(&mut a, &mut b);
    a.send(now, &msg(1)).expect("room");
    let recorded = a.poll_transmit(now).expect("old-epoch datagram");
    // b restarts: new epoch, fresh state; a's message 1 was never acked.
    let mut b2 = Channel::new(ChannelConfig::default(), &keys(), NodeId(2), NodeId(1), 0xb2).expect("b2");
    b2.send(now, &Message::Heartbeat { segments: SegmentSet::EMPTY, synced: true }).expect("room");
    settle(&mut a, &mut b2, now);
    let ev: Vec<_> = core::iter::from_fn(|| a.poll_event()).collect();
    assert!(ev.contains(&ChannelEvent::PeerEpoch(0xb2)));
    assert_eq!(messages(&mut b2), vec![msg(1)], "resent to the new incarnation");
    // Traffic recorded before b2 started is not delivered to it.
    let _ = b2.handle_datagram(now, &mut recorded.clone());
    assert!(messages(&mut b2).is_empty());
    // And a, which saw b's old epoch end, refuses it.
    b.send(now, &msg(9)).expect("room");
    let mut d = b.poll_transmit(now).expect("old incarnation's datagram");
    assert_eq!(a.handle_datagram(now, &mut d), Err(Error::SyncStaleEpoch));
}

#[test]
fn replayed_unknown_epoch_does_not_stall_the_stream() {
    let (mut a, mut b) = pair(ChannelConfig::default(), 8);
    let now = connect(&mut a, &mut b);
    // An authentic datagram from an incarnation of b that a never proved.
    let mut ghost = Channel::new(ChannelConfig::default(), &keys(), NodeId(2), NodeId(1), 0x6057).expect("g");
    ghost.send(now, &msg(666)).expect("room");
    let recorded = ghost.poll_transmit(now).expect("ghost datagram");
    for i in 0..5 {
        a.handle_datagram(now, &mut recorded.clone()).expect("authentic, unproven");
        a.send(now, &msg(i)).expect("room");
        b.send(now, &msg(100 + i)).expect("room");
        settle(&mut a, &mut b, now);
    }
    assert_eq!(messages(&mut b), (0..5).map(msg).collect::<Vec<_>>());
    assert_eq!(messages(&mut a), (100..105).map(msg).collect::<Vec<_>>());
    assert_eq!(a.peer_epoch(), Some(b.epoch()));
}

#[test]
fn rejects_oversized_message() {
    let (mut a, _) = pair(ChannelConfig::default(), 10);
    let big = Message::LastResponse { sa: 1, request: vec![0; 60_000], response: vec![vec![0; 60_000]] };
    assert!(matches!(a.send(origin(), &big), Err(Error::SyncTooLarge(_))));
    assert_eq!(a.unacked(), 0);
}

/// Two channels over a link that drops, duplicates, delays and reorders:
/// every message arrives exactly once, in order.
fn lossy_run(seed: u64) {
    let config = ChannelConfig { max_in_flight: 16, max_queued: 64, ..ChannelConfig::default() };
    let (mut a, mut b) = pair(config, seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let start = origin();
    let mut now = start;
    const N: u64 = 300;
    let (mut sent_a, mut sent_b) = (0, 0);
    let (mut got_a, mut got_b) = (vec![], vec![]);
    // (deliver at, to b?, datagram)
    let mut wire: Vec<(Instant, bool, Vec<u8>)> = vec![];
    for _ in 0..200_000 {
        while sent_a < N && a.is_writable() {
            a.send(now, &msg(sent_a)).expect("writable");
            sent_a += 1;
        }
        while sent_b < N && b.is_writable() {
            b.send(now, &msg(1_000 + sent_b)).expect("writable");
            sent_b += 1;
        }
        for (to_b, c) in [(true, &mut a), (false, &mut b)] {
            while let Some(d) = c.poll_transmit(now) {
                let copies = match rng.next_u32() % 10 {
                    0 | 1 => 0, // 20% loss
                    2 => 2,     // 10% duplicated
                    _ => 1,
                };
                for _ in 0..copies {
                    let delay = Duration::from_micros(u64::from(rng.next_u32() % 8_000));
                    wire.push((now + delay, to_b, d.clone()));
                }
            }
        }
        got_a.extend(messages(&mut a));
        got_b.extend(messages(&mut b));
        if got_a.len() as u64 == N && got_b.len() as u64 == N && a.unacked() == 0 && b.unacked() == 0 {
            let expect_b: Vec<_> = (0..N).map(msg).collect();
            let expect_a: Vec<_> = (0..N).map(|i| msg(1_000 + i)).collect();
            assert_eq!(got_b, expect_b, "seed {seed}");
            assert_eq!(got_a, expect_a, "seed {seed}");
            return;
        }
        let next_wire = wire.iter().map(|w| w.0).min();
        let next = [next_wire, a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
        now = now.max(next.unwrap_or_else(|| panic!("seed {seed}: stalled")));
        let (due, rest): (Vec<_>, Vec<_>) = wire.into_iter().partition(|w| w.0 <= now);
        wire = rest;
        for (_, to_b, mut d) in due {
            let c = if to_b { &mut b } else { &mut a };
            let _ = c.handle_datagram(now, &mut d);
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    panic!("seed {seed}: no convergence; a got {}, b got {}", got_a.len(), got_b.len());
}

#[test]
fn delivers_exactly_once_over_lossy_link() {
    for seed in 0..8 {
        lossy_run(seed);
    }
}

proptest! {
    #[test]
    fn never_panics_on_random_datagrams(mut d in proptest::collection::vec(any::<u8>(), 0..300), header in any::<bool>()) {
        let (_, mut b) = pair(ChannelConfig::default(), 9);
        if header && d.len() > 8 {
            d[..4].copy_from_slice(b"TSYN");
            d[4] = 1;
            d[5] = 64;
            d[6] = 1;
            d[7] = 2;
        }
        let _ = b.handle_datagram(origin(), &mut d);
    }
}
