//! ESP round trips, tamper and replay rejection, padding, lifetimes, ESN,
//! the SAD receive path and the SPD.

mod common;

use common::*;
use proptest::prelude::*;
use tandem_esp::{
    AeadAlgorithm, CbcAlgorithm, Error, Framing, InboundSa, IntegAlgorithm, Lifetimes, Limits, Mode,
    Provider, Received, SaEvent, SaParams, Sad, Suite,
};

fn all_opts() -> Vec<PairOpts> {
    let mut v = Vec::new();
    for suite in Suite::ALL {
        let providers: &[Provider] =
            if matches!(suite, Suite::Aead(_)) { Provider::available() } else { &Provider::available()[..1] };
        for &provider in providers {
            for mode in [Mode::Tunnel, Mode::Transport] {
                for esn in [false, true] {
                    for outer_v6 in [false, true] {
                        for udp in [false, true] {
                            v.push(PairOpts { suite, provider, mode, esn, outer_v6, udp, window: 1024 });
                        }
                    }
                }
            }
        }
    }
    v
}

/// Encapsulates `inner` and decapsulates it again through the SAD, with
/// the given framing; returns the plaintext.
fn round_trip(o: PairOpts, inner: &[u8], framing: Framing, seed: u64) -> Result<Vec<u8>, Error> {
    let (mut out, inb) = pair(o, seed);
    let mut sad = Sad::new(seed);
    sad.insert_inbound(inb)?;
    let (mut buf, r) = framed(inner);
    let wire = out.encapsulate(&mut buf, r, framing)?;
    assert_eq!(wire.len(), inner_len_for(&out, inner, framing, o), "overhead() matches");
    match framing {
        Framing::Ip => match sad.receive(&mut buf, wire)? {
            Received::Plaintext(d) => Ok(buf[d.range].to_vec()),
            other => panic!("not plaintext: {other:?}"),
        },
        Framing::Esp => {
            let d = sad.decapsulate(&mut buf, wire)?;
            Ok(buf[d.range].to_vec())
        }
    }
}

fn inner_len_for(out: &tandem_esp::OutboundSa, inner: &[u8], framing: Framing, o: PairOpts) -> usize {
    let hl = if inner[0] >> 4 == 4 { 20 } else { 40 };
    match (o.mode, framing) {
        (Mode::Tunnel, _) => inner.len() + out.overhead(inner.len(), framing),
        (Mode::Transport, Framing::Ip) => inner.len() + out.overhead(inner.len() - hl, framing),
        (Mode::Transport, Framing::Esp) => inner.len() - hl + out.overhead(inner.len() - hl, framing),
    }
}

#[test]
fn round_trips_every_suite_mode_and_family() {
    let mut n = 0;
    for o in all_opts() {
        for inner_v6 in [false, true] {
            if o.mode == Mode::Transport && inner_v6 != o.outer_v6 {
                continue;
            }
            for len in [0, 1, 2, 3, 13, 100, 1400] {
                let inner = inner_packet(inner_v6, len, 7);
                let got =
                    round_trip(o, &inner, Framing::Ip, n).unwrap_or_else(|e| panic!("{o:?} {len}: {e}"));
                assert_eq!(got, inner, "{o:?} len {len}");
                if o.mode == Mode::Tunnel {
                    let got = round_trip(o, &inner, Framing::Esp, n).expect("ESP framing");
                    assert_eq!(got, inner, "{o:?} len {len} ESP framing");
                }
                n += 1;
            }
        }
    }
    assert!(n > 500, "covered {n} cases");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips_random_packets(
        opt in 0usize..10_000, len in 0usize..2000, inner_v6: bool, fill: u8, seed: u64,
    ) {
        let all = all_opts();
        let o = all[opt % all.len()];
        let inner_v6 = if o.mode == Mode::Transport { o.outer_v6 } else { inner_v6 };
        let inner = inner_packet(inner_v6, len, fill);
        prop_assert_eq!(round_trip(o, &inner, Framing::Ip, seed).expect("round trip"), inner);
    }

    #[test]
    fn rejects_any_tampered_byte(
        opt in 0usize..10_000, len in 0usize..300, pos in any::<prop::sample::Index>(), flip in 1u8..=255, seed: u64,
    ) {
        let all = all_opts();
        let o = all[opt % all.len()];
        let (mut out, inb) = pair(o, seed);
        let mut sad = Sad::new(seed);
        sad.insert_inbound(inb).expect("insert");
        let inner = inner_packet(o.outer_v6, len, 3);
        let (mut buf, r) = framed(&inner);
        let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
        let at = esp.start + pos.index(esp.len());
        buf[at] ^= flip;
        let res = sad.decapsulate(&mut buf, esp);
        prop_assert!(res.is_err(), "tampered byte {} accepted", at);
    }

    #[test]
    fn never_panics_on_arbitrary_input(data in prop::collection::vec(any::<u8>(), 0..200), opt in 0usize..10_000) {
        let all = all_opts();
        let o = all[opt % all.len()];
        let (_, inb) = pair(o, 1);
        let mut sad = Sad::new(1);
        sad.insert_inbound(inb).expect("insert");
        let mut buf = data.clone();
        let n = buf.len();
        let _ = sad.receive(&mut buf, 0..n);
        let mut buf = data.clone();
        // Give arbitrary data our SPI so it reaches the SA.
        if buf.len() >= 4 {
            buf[..4].copy_from_slice(&SPI.to_be_bytes());
        }
        let _ = sad.decapsulate(&mut buf, 0..n);
    }
}

#[test]
fn rejects_replayed_packet_and_counts_it() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, inb) = pair(o, 9);
    let mut sad = Sad::new(0);
    sad.insert_inbound(inb).expect("insert");
    let (mut buf, r) = framed(&inner_packet(false, 64, 1));
    let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
    let copy = buf.clone();
    sad.decapsulate(&mut buf, esp.clone()).expect("first copy accepted");
    let mut buf = copy;
    assert_eq!(sad.decapsulate(&mut buf, esp), Err(Error::Replay));
    let stats = sad.inbound(SPI).expect("installed").stats();
    assert_eq!((stats.packets, stats.drops.replay), (1, 1));
}

#[test]
fn already_seen_asks_the_window_without_counting() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, inb) = pair(o, 11);
    let mut sad = Sad::new(0);
    sad.insert_inbound(inb).expect("insert");
    let (mut buf, r) = framed(&inner_packet(false, 64, 1));
    let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
    let sa = |sad: &Sad| sad.inbound(SPI).expect("installed").already_seen(&buf[esp.clone()]);
    assert!(!sa(&sad), "a new number");
    assert!(!sad.inbound(SPI).expect("installed").already_seen(&[0; 7]), "too short to say");
    // A peer's window that already took number 1.
    sad.inbound_mut(SPI).expect("installed").merge_replay(1, &[1]);
    assert!(sa(&sad), "merged from a peer");
    let stats = sad.inbound(SPI).expect("installed").stats();
    assert_eq!((stats.packets, stats.drops.replay), (0, 0), "nothing counted");
}

#[test]
fn replay_window_moves_only_after_icv_verified() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::ChaCha20Poly1305));
    let (mut out, inb) = pair(o, 10);
    let mut sad = Sad::new(0);
    sad.insert_inbound(inb).expect("insert");
    // A forged packet with a huge sequence number must not move the window.
    let (mut buf, r) = framed(&inner_packet(false, 64, 1));
    let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
    let mut forged = buf.clone();
    forged[esp.start + 4..esp.start + 8].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
    assert_eq!(sad.decapsulate(&mut forged, esp.clone()), Err(Error::BadIcv));
    assert_eq!(sad.inbound(SPI).expect("installed").replay_window().top(), 0);
    sad.decapsulate(&mut buf, esp).expect("genuine packet still accepted");
    let s = sad.inbound(SPI).expect("installed").stats();
    assert_eq!((s.packets, s.drops.bad_icv), (1, 1));
}

#[test]
fn accepts_reordering_within_window_and_rejects_too_old() {
    let mut o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes256Gcm16));
    o.window = 32;
    let (mut out, inb) = pair(o, 11);
    let mut sad = Sad::new(0);
    sad.insert_inbound(inb).expect("insert");
    let pkts: Vec<_> = (0..40)
        .map(|i| {
            let (mut buf, r) = framed(&inner_packet(false, 10, i));
            let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
            (buf, esp)
        })
        .collect();
    // Deliver 40 first, then 9..=39 backwards (in the window), then 8 (too old).
    let (mut b, r) = pkts[39].clone();
    sad.decapsulate(&mut b, r).expect("newest");
    for i in (8..39).rev() {
        let (mut b, r) = pkts[i].clone();
        sad.decapsulate(&mut b, r).unwrap_or_else(|e| panic!("seq {}: {e}", i + 1));
    }
    let (mut b, r) = pkts[7].clone();
    assert_eq!(sad.decapsulate(&mut b, r), Err(Error::TooOld));
}

#[test]
fn carries_esn_across_the_32_bit_boundary() {
    for suite in [
        Suite::Aead(AeadAlgorithm::Aes128Gcm16),
        Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128),
    ] {
        let mut o = PairOpts::new(suite);
        o.esn = true;
        let (mut out, inb) = pair(o, 12);
        let mut sad = Sad::new(0);
        sad.insert_inbound(inb).expect("insert");
        let send = |out: &mut tandem_esp::OutboundSa, sad: &mut Sad| {
            let inner = inner_packet(false, 20, 2);
            let (mut buf, r) = framed(&inner);
            let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
            let d = sad.decapsulate(&mut buf, esp).expect("decapsulate");
            assert_eq!(buf[d.range].to_vec(), inner);
        };
        send(&mut out, &mut sad);
        for jump in [1u64 << 31, (1 << 32) - 3] {
            out.advance_seq_to(jump);
            send(&mut out, &mut sad);
        }
        for _ in 0..6 {
            send(&mut out, &mut sad);
        }
        let top = sad.inbound(SPI).expect("installed").replay_window().top();
        assert_eq!(top, (1 << 32) + 3, "high bits inferred");
        assert_eq!(out.next_seq(), (1 << 32) + 4);
    }
}

#[test]
fn stops_at_the_end_of_32_bit_sequence_space() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, _) = pair(o, 13);
    out.advance_seq_to(u64::from(u32::MAX));
    let inner = inner_packet(false, 20, 2);
    let (mut buf, r) = framed(&inner);
    out.encapsulate(&mut buf, r, Framing::Esp).expect("last number");
    assert_eq!(out.poll_event(), Some(SaEvent::SoftLifetime));
    let (mut buf, r) = framed(&inner);
    assert_eq!(out.encapsulate(&mut buf, r, Framing::Esp), Err(Error::SequenceExhausted));
    assert_eq!(out.stats().drops.sequence_exhausted, 1);
    out.advance_seq_to(5);
    assert_eq!(out.next_seq(), u64::from(u32::MAX) + 1, "counter never moves back");
}

#[test]
fn raises_soft_then_enforces_hard_lifetime() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, _) = pair(o, 14);
    let mut keymat = vec![7u8; o.suite.keymat_len()];
    keymat[0] = 1;
    let (a, b) = endpoints(false);
    let mut p = SaParams::new(SPI, o.suite, &keymat, a, b);
    p.lifetimes = Lifetimes {
        soft: Limits { bytes: u64::MAX, packets: 2 },
        hard: Limits { bytes: u64::MAX, packets: 3 },
    };
    let mut out2 = tandem_esp::OutboundSa::new(&p, &mut rng(1)).expect("valid");
    let inner = inner_packet(false, 20, 2);
    for i in 1..=3 {
        let (mut buf, r) = framed(&inner);
        out2.encapsulate(&mut buf, r, Framing::Esp).expect("within hard lifetime");
        let ev = out2.poll_event();
        assert_eq!(ev, (i == 2).then_some(SaEvent::SoftLifetime), "packet {i}");
    }
    let (mut buf, r) = framed(&inner);
    assert_eq!(out2.encapsulate(&mut buf, r, Framing::Esp), Err(Error::LifetimeExpired));
    assert_eq!(out2.poll_event(), Some(SaEvent::HardLifetime));
    assert_eq!(out2.poll_event(), None);
    // Unrelated SA unaffected.
    let (mut buf, r) = framed(&inner);
    out.encapsulate(&mut buf, r, Framing::Esp).expect("no lifetimes");
}

/// Seals a hand-built ESP payload (plaintext including trailer) for the
/// inbound SA keyed like `pair(o, seed)` produces.
fn forge(seed: u64, o: PairOpts, plaintext: &[u8], seq: u32) -> Vec<u8> {
    use rand_core::Rng;
    use tandem_crypto::aead::SaltedAead;
    let Suite::Aead(alg) = o.suite else { panic!("AEAD only") };
    let mut r = rng(seed);
    let mut keymat = vec![0u8; o.suite.keymat_len()];
    r.fill_bytes(&mut keymat);
    let aead = SaltedAead::new(o.provider, alg, &keymat).expect("key");
    let iv = u64::from(seq).to_be_bytes();
    let mut aad = SPI.to_be_bytes().to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    let mut ct = plaintext.to_vec();
    let tag = aead.seal(&iv, &aad, &mut ct).expect("seal");
    let mut pkt = aad.clone();
    pkt.extend_from_slice(&iv);
    pkt.extend_from_slice(&ct);
    pkt.extend_from_slice(&tag);
    pkt
}

#[test]
fn rejects_bad_padding_and_drops_dummy_packets() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let inner = inner_packet(false, 4, 0); // 32 octets: with a 4-octet trailer, aligned
    let mut sad = Sad::new(0);
    sad.insert_inbound(pair(o, 15).1).expect("insert");
    let cases: [(&[u8], Error); 3] = [
        (&[1, 3, 2, 4], Error::BadPadding), // padding bytes not 1, 2
        (&[1, 2, 9, 4], Error::BadPadding), // pad length beyond the payload
        (&[1, 2, 2, 59], Error::Dummy),     // next header 59
    ];
    for (i, (trailer, want)) in cases.iter().enumerate() {
        let mut pt = inner.clone();
        pt.extend_from_slice(trailer);
        let mut pkt = forge(15, o, &pt, i as u32 + 1);
        let n = pkt.len();
        if trailer[2] == 9 {
            // A pad length longer than the whole plaintext.
            let mut pt = vec![0u8; 2];
            pt.extend_from_slice(&[40, 4]);
            pkt = forge(15, o, &pt, i as u32 + 1);
        }
        let n = n.min(pkt.len());
        assert_eq!(sad.decapsulate(&mut pkt, 0..n).err(), Some(want.clone()), "case {i}");
    }
    let s = sad.inbound(SPI).expect("installed").stats();
    assert_eq!((s.drops.bad_padding, s.drops.dummy, s.packets), (2, 1, 0));
    // A well-formed forged packet is accepted: the forging matches the SA.
    let mut pt = inner.clone();
    pt.extend_from_slice(&[1, 2, 2, 4]);
    let mut pkt = forge(15, o, &pt, 10);
    let n = pkt.len();
    let d = sad.decapsulate(&mut pkt, 0..n).expect("well-formed");
    assert_eq!(pkt[d.range].to_vec(), inner);
}

#[test]
fn strips_tfc_padding_after_the_inner_packet() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::ChaCha20Poly1305));
    let inner = inner_packet(false, 5, 0); // 33 octets
    let mut pt = inner.clone();
    pt.extend_from_slice(&[0xee; 11]); // TFC padding: 44 octets
    pt.extend_from_slice(&[1, 2, 2, 4]);
    let mut sad = Sad::new(0);
    sad.insert_inbound(pair(o, 16).1).expect("insert");
    let mut pkt = forge(16, o, &pt, 1);
    let n = pkt.len();
    let d = sad.decapsulate(&mut pkt, 0..n).expect("accepted");
    assert_eq!(pkt[d.range].to_vec(), inner);
}

#[test]
fn rejects_short_and_misaligned_packets() {
    for suite in [
        Suite::Aead(AeadAlgorithm::Aes128Gcm16),
        Suite::CbcHmac(CbcAlgorithm::Aes256Cbc, IntegAlgorithm::HmacSha512_256),
    ] {
        let mut sad = Sad::new(0);
        sad.insert_inbound(pair(PairOpts::new(suite), 17).1).expect("insert");
        for len in 0..(8 + suite.iv_len() + 2 + suite.icv_len()) {
            let mut b = vec![0u8; len];
            if len >= 4 {
                b[..4].copy_from_slice(&SPI.to_be_bytes());
            }
            assert!(matches!(sad.decapsulate(&mut b, 0..len), Err(Error::ShortPacket)), "{len}");
        }
        let mut b = vec![0u8; 8 + suite.iv_len() + suite.align() + 1 + suite.icv_len()];
        b[..4].copy_from_slice(&SPI.to_be_bytes());
        b[7] = 1;
        let n = b.len();
        assert_eq!(sad.decapsulate(&mut b, 0..n), Err(Error::BadPadding));
    }
}

#[test]
fn counts_unknown_spi_and_refuses_duplicates() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let mut sad = Sad::new(3);
    sad.insert_inbound(pair(o, 1).1).expect("insert");
    assert_eq!(sad.insert_inbound(pair(o, 2).1), Err(Error::DuplicateSpi(SPI)));
    let mut b = vec![0xabu8; 64];
    assert_eq!(sad.decapsulate(&mut b, 0..64), Err(Error::UnknownSpi(0xabab_abab)));
    assert_eq!(sad.unknown_spi_drops(), 1);
    assert!(sad.remove_inbound(SPI).is_some());
    assert!(sad.inbound(SPI).is_none());
}

#[test]
fn stale_outbound_handles_find_nothing() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let mut sad = Sad::new(3);
    let a = sad.insert_outbound(pair(o, 1).0);
    assert!(sad.remove_outbound(a).is_some());
    let b = sad.insert_outbound(pair(o, 2).0);
    assert_ne!(a, b);
    assert!(sad.outbound(a).is_none() && sad.remove_outbound(a).is_none());
    assert!(sad.outbound(b).is_some());
    assert_eq!(sad.outbound_sas().count(), 1);
}

#[test]
fn receive_recognises_keepalives_and_ike() {
    let mut sad = Sad::new(0);
    let mut udp = |dport: u16, body: &[u8]| {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 10, 192, 0, 2, 1];
        let total = (20 + 8 + body.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&4500u16.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(body);
        let n = p.len();
        sad.receive(&mut p, 0..n)
    };
    assert_eq!(udp(4500, &[0xff]), Ok(Received::NatKeepalive));
    assert_eq!(udp(4500, &[0, 0, 0, 0, 9, 9, 9]), Ok(Received::Ike(32..35)));
    assert_eq!(udp(500, &[1, 2, 3]), Ok(Received::Ike(28..31)));
    assert_eq!(udp(53, &[1, 2, 3]), Err(Error::Malformed("not ESP")));
    assert_eq!(udp(4500, &[1, 2, 3, 4, 5, 6, 7, 8, 9]), Err(Error::UnknownSpi(0x0102_0304)));
}

#[test]
fn rejects_invalid_sa_parameters() {
    let suite = Suite::Aead(AeadAlgorithm::Aes128Gcm16);
    let (a, b) = endpoints(false);
    let (_, b6) = endpoints(true);
    let k = vec![0u8; suite.keymat_len()];
    assert!(InboundSa::new(&SaParams::new(SPI, suite, &k[1..], a, b)).is_err(), "short KEYMAT");
    assert!(InboundSa::new(&SaParams::new(SPI, suite, &k, a, b6)).is_err(), "mixed families");
    let mut p = SaParams::new(SPI, suite, &k, a, b);
    p.replay_window = 0;
    assert!(InboundSa::new(&p).is_err(), "zero window");
    p.replay_window = 4096;
    assert!(InboundSa::new(&p).is_ok());
}

#[test]
fn refuses_buffers_without_room() {
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, _) = pair(o, 1);
    let inner = inner_packet(false, 30, 0);
    let mut buf = inner.clone();
    let n = buf.len();
    assert_eq!(out.encapsulate(&mut buf, 0..n, Framing::Esp), Err(Error::NoRoom));
    assert_eq!(out.next_seq(), 1, "no sequence number consumed");
    assert_eq!(out.stats().drops.no_room, 1);
}

#[test]
fn drops_inner_packets_outside_the_negotiated_selectors() {
    use core::net::{IpAddr, Ipv4Addr};
    use tandem_esp::TrafficSelector;
    let o = PairOpts::new(Suite::Aead(AeadAlgorithm::Aes128Gcm16));
    let (mut out, mut inb) = pair(o, 18);
    // inner_packet() sends 10.1.0.5 -> 10.2.0.7, UDP 1234 -> 5678.
    let ts =
        |a, b, c, d, p| TrafficSelector::subnet(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), p).expect("valid");
    inb.set_selectors(vec![ts(10, 2, 0, 0, 16)], vec![ts(10, 1, 0, 0, 16)]);
    let mut sad = Sad::new(0);
    sad.insert_inbound(inb).expect("insert");
    let mut send = |sad: &mut Sad| {
        let (mut buf, r) = framed(&inner_packet(false, 20, 1));
        let esp = out.encapsulate(&mut buf, r, Framing::Esp).expect("encapsulate");
        sad.decapsulate(&mut buf, esp).map(|_| ())
    };
    assert_eq!(send(&mut sad), Ok(()));
    let mut narrow = ts(10, 1, 0, 5, 32);
    narrow.protocol = 17;
    narrow.start_port = 1;
    narrow.end_port = 1000; // the source port 1234 is outside
    sad.inbound_mut(SPI).expect("installed").set_selectors(vec![ts(10, 2, 0, 0, 16)], vec![narrow]);
    assert_eq!(send(&mut sad), Err(Error::PolicyViolation));
    sad.inbound_mut(SPI).expect("installed").set_selectors(vec![ts(10, 3, 0, 0, 16)], vec![]);
    assert_eq!(send(&mut sad), Err(Error::PolicyViolation));
    assert_eq!(sad.inbound(SPI).expect("installed").stats().drops.policy, 2);
}
