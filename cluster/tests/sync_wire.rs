//! The sync framing: header and message codecs, unknown fields and kinds,
//! malformed input.

use core::net::IpAddr;
use proptest::prelude::*;
use tandem_cluster::sync::wire::{
    Ack, BodyWriter, FieldType, Fields, HEADER_LEN, Header, Kind, MAGIC, Message, OutboundCounter,
    ReplaySnapshot, TAG_LEN, VERSION, parse_body,
};
use tandem_cluster::{Error, NodeId, SegmentSet};
use tandem_crypto::secret::SecretBytes;

fn every_kind() -> Vec<Message> {
    let segs = SegmentSet::from_bits(0b1011);
    vec![
        Message::Heartbeat { segments: segs, synced: true },
        Message::Heartbeat { segments: SegmentSet::EMPTY, synced: false },
        Message::ResyncDone { segments: segs },
        Message::IkeSaAdded { sa: 7, rekeyed_from: Some(3), state: SecretBytes::from_slice(b"ike state") },
        Message::IkeSaAdded { sa: 8, rekeyed_from: None, state: SecretBytes::from_slice(b"") },
        Message::IkeSaUpdated { sa: 7, state: SecretBytes::from_slice(b"newer") },
        Message::MessageIds { sa: 7, next_message_id: 4, expected_request: 9, iv_counter: 1 << 40 },
        Message::IkeSaDeleted { sa: 7 },
        Message::ChildSaAdded {
            sa: 7,
            inbound_spi: 0xc000_0001,
            outbound_spi: 0x1234_5678,
            state: SecretBytes::from_slice(&[9; 80]),
        },
        Message::ChildSaDeleted { sa: 7, inbound_spi: 0xc000_0001 },
        Message::SegmentTake { segments: segs },
        Message::SegmentDrop { segments: SegmentSet::EMPTY },
        Message::ResyncRequest { segments: SegmentSet::from_bits(u64::MAX) },
        Message::EspState {
            outbound: vec![OutboundCounter { spi: 1, seq: 2 }, OutboundCounter { spi: 3, seq: u64::MAX }],
            inbound: vec![ReplaySnapshot { spi: 5, top: 100, bitmap: vec![0xff; 16] }],
        },
        Message::EspState { outbound: vec![], inbound: vec![] },
        Message::LastResponse { sa: 7, request: b"req".to_vec(), response: vec![b"r1".to_vec(), vec![]] },
        Message::Deadlines {
            sa: 7,
            child: Some(0xc000_0001),
            rekey_at: Some(1_000),
            expire_at: Some(2_000),
            last_seen: None,
        },
        Message::Deadlines { sa: 7, child: None, rekey_at: None, expire_at: None, last_seen: Some(5) },
        Message::PoolLease {
            pool: b"rw".to_vec(),
            address: "10.3.0.7".parse().expect("literal"),
            sa: 7,
            released: false,
        },
        Message::PoolLease {
            pool: b"v6".to_vec(),
            address: "fd00::7".parse().expect("literal"),
            sa: 8,
            released: true,
        },
        Message::Unknown { kind: Kind(0x7777) },
    ]
}

fn encode(m: &Message) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut b).expect("encodes");
    b
}

#[test]
fn round_trips_every_kind() {
    for m in every_kind() {
        assert_eq!(Message::decode(&encode(&m)), Ok(m.clone()), "{m:?}");
    }
}

#[test]
fn skips_unknown_fields() {
    let m = Message::MessageIds { sa: 1, next_message_id: 2, expected_request: 3, iv_counter: 4 };
    let mut b = Vec::new();
    let mut w = BodyWriter::new(&mut b, Kind::MESSAGE_IDS);
    w.field(FieldType(0x4000), &[b"from the future"]).expect("fits");
    w.field(FieldType::SA, &[&1u64.to_be_bytes()]).expect("fits");
    w.field(FieldType::NEXT_MESSAGE_ID, &[&2u32.to_be_bytes()]).expect("fits");
    w.field(FieldType(0xffff), &[]).expect("fits");
    w.field(FieldType::EXPECTED_REQUEST, &[&3u32.to_be_bytes()]).expect("fits");
    w.field(FieldType::IV_COUNTER, &[&4u64.to_be_bytes()]).expect("fits");
    assert_eq!(Message::decode(&b), Ok(m));
}

#[test]
fn accepts_unknown_kind() {
    let mut b = Vec::new();
    BodyWriter::new(&mut b, Kind(999)).field(FieldType(1), &[b"x"]).expect("fits");
    assert_eq!(Message::decode(&b), Ok(Message::Unknown { kind: Kind(999) }));
}

#[test]
fn fields_borrow_the_input() {
    let b = encode(&Message::LastResponse { sa: 1, request: b"abc".to_vec(), response: vec![] });
    let (kind, fields) = parse_body(&b).expect("parses");
    assert_eq!(kind, Kind::LAST_RESPONSE);
    let fields: Vec<_> = fields.collect::<Result<_, _>>().expect("well formed");
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[1].ty, FieldType::REQUEST);
    assert!(core::ptr::eq(fields[1].value.as_ptr(), b[b.len() - 3..].as_ptr()));
}

#[test]
fn rejects_truncated_fields() {
    let b = encode(&Message::IkeSaDeleted { sa: 1 });
    for cut in 3..b.len() {
        assert!(matches!(Message::decode(&b[..cut]), Err(Error::SyncMalformed(_))), "cut at {cut}");
    }
    assert!(Message::decode(&b[..1]).is_err());
    assert_eq!(Fields::new(&[0, 1, 0]).count(), 1);
}

#[test]
fn rejects_missing_or_misshapen_fields() {
    let mut b = Vec::new();
    BodyWriter::new(&mut b, Kind::IKE_SA_DELETED);
    assert_eq!(Message::decode(&b), Err(Error::SyncMalformed("required field missing")));
    let mut b = Vec::new();
    BodyWriter::new(&mut b, Kind::IKE_SA_DELETED).field(FieldType::SA, &[&[1, 2, 3]]).expect("fits");
    assert!(matches!(Message::decode(&b), Err(Error::SyncMalformed(_))));
    let mut b = Vec::new();
    let mut w = BodyWriter::new(&mut b, Kind::POOL_LEASE);
    w.field(FieldType::ADDRESS, &[&[1, 2, 3, 4, 5]]).expect("fits");
    assert!(matches!(Message::decode(&b), Err(Error::SyncMalformed(_))));
}

#[test]
fn rejects_oversized_field() {
    let m = Message::IkeSaUpdated { sa: 1, state: SecretBytes::from_slice(&vec![0; 70_000]) };
    assert_eq!(m.encode(&mut Vec::new()), Err(Error::SyncTooLarge(70_000)));
}

fn header() -> Header {
    Header {
        version: VERSION,
        header_len: HEADER_LEN as u8,
        sender: NodeId(1),
        receiver: NodeId(2),
        flags: 0,
        cluster_id: 0xc1,
        epoch: 0x1122_3344_5566_7788,
        packet_number: 42,
        msg_seq: 7,
        ack: Some(Ack { epoch: 99, next: 5, bits: 0b101 }),
    }
}

#[test]
fn round_trips_header() {
    for h in [header(), Header { ack: None, msg_seq: 0, ..header() }] {
        let mut b = Vec::new();
        h.emit(&mut b);
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(b[..4], MAGIC);
        b.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(Header::parse(&b), Ok((h, HEADER_LEN)));
    }
}

#[test]
fn rejects_bad_headers() {
    let mut good = Vec::new();
    header().emit(&mut good);
    good.extend_from_slice(&[0; TAG_LEN]);
    let mut b = good.clone();
    b[0] ^= 1;
    assert_eq!(Header::parse(&b), Err(Error::SyncMalformed("bad magic")));
    let mut b = good.clone();
    b[4] = 0;
    assert_eq!(Header::parse(&b), Err(Error::SyncVersion(0)));
    let mut b = good.clone();
    b[5] = 63;
    assert!(Header::parse(&b).is_err());
    let mut b = good.clone();
    b[5] = 80;
    assert!(Header::parse(&b).is_err(), "header longer than the datagram");
    assert!(Header::parse(&good[..good.len() - 1]).is_err());
}

#[test]
fn ack_covers_cumulative_and_selective() {
    let a = Ack { epoch: 1, next: 10, bits: 0b101 };
    assert!(a.covers(1) && a.covers(9) && a.covers(11) && a.covers(13));
    assert!(!a.covers(10) && !a.covers(12) && !a.covers(75) && !a.covers(u64::MAX));
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<bool>())
            .prop_map(|(b, synced)| Message::Heartbeat { segments: SegmentSet::from_bits(b), synced }),
        (any::<u64>(), proptest::option::of(any::<u64>()), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(sa, r, s)| Message::IkeSaAdded { sa, rekeyed_from: r, state: SecretBytes::new(s) }),
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(sa, n, e, iv)| {
            Message::MessageIds { sa, next_message_id: n, expected_request: e, iv_counter: iv }
        }),
        (
            proptest::collection::vec((any::<u32>(), any::<u64>()), 0..8),
            proptest::collection::vec(
                (any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40)),
                0..4
            )
        )
            .prop_map(|(o, i)| Message::EspState {
                outbound: o.into_iter().map(|(spi, seq)| OutboundCounter { spi, seq }).collect(),
                inbound: i
                    .into_iter()
                    .map(|(spi, top, bitmap)| ReplaySnapshot { spi, top, bitmap })
                    .collect(),
            }),
        (
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..100),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4)
        )
            .prop_map(|(sa, request, response)| Message::LastResponse { sa, request, response }),
        (any::<u64>(), any::<[u8; 16]>(), any::<bool>()).prop_map(|(sa, a, released)| Message::PoolLease {
            pool: b"p".to_vec(),
            address: IpAddr::from(a),
            sa,
            released
        }),
    ]
}

proptest! {
    #[test]
    fn round_trips_arbitrary_messages(m in arb_message()) {
        prop_assert_eq!(Message::decode(&encode(&m)), Ok(m));
    }

    #[test]
    fn never_panics_on_random_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Header::parse(&b);
        let _ = Message::decode(&b);
        let mut prefixed = MAGIC.to_vec();
        prefixed.push(1);
        prefixed.extend_from_slice(&b);
        let _ = Header::parse(&prefixed);
    }
}
