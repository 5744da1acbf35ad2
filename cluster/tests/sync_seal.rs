//! Sealing sync datagrams: per-direction keys, header as AAD, tampering,
//! and a version+1 datagram with a header extension and a new field.

use tandem_cluster::sync::SyncKeys;
use tandem_cluster::sync::wire::{BodyWriter, FieldType, HEADER_LEN, Header, Kind, Message, VERSION};
use tandem_cluster::{Error, NodeId, SegmentSet};
use tandem_crypto::aead::AeadAlgorithm;

const SECRET: &[u8] = b"a cluster secret of decent length";

fn keys(alg: AeadAlgorithm) -> SyncKeys {
    SyncKeys::new(SECRET, 7, alg).expect("valid secret")
}

fn header(pn: u64) -> Header {
    Header {
        version: VERSION,
        header_len: HEADER_LEN as u8,
        sender: NodeId(1),
        receiver: NodeId(2),
        flags: 0,
        cluster_id: 7,
        epoch: 0xabcdef,
        packet_number: pn,
        msg_seq: 1,
        ack: None,
    }
}

fn body() -> Vec<u8> {
    let mut b = Vec::new();
    Message::Heartbeat { segments: SegmentSet::from_bits(3), synced: true }.encode(&mut b).expect("encodes");
    b
}

fn sealed(k: &SyncKeys, h: &Header) -> Vec<u8> {
    let mut hb = Vec::new();
    h.emit(&mut hb);
    k.direction(h.sender, h.receiver, h.epoch).expect("keys").seal(&hb, &body()).expect("seals")
}

fn open(k: &SyncKeys, d: &mut [u8]) -> Result<Vec<u8>, Error> {
    let (h, len) = Header::parse(d)?;
    let key = k.direction(NodeId(1), NodeId(2), 0xabcdef)?;
    key.open(&h, len, d).map(<[u8]>::to_vec)
}

#[test]
fn round_trips_with_both_aeads() {
    for alg in [AeadAlgorithm::Aes256Gcm16, AeadAlgorithm::ChaCha20Poly1305] {
        let k = keys(alg);
        let mut d = sealed(&k, &header(1));
        assert_ne!(d[HEADER_LEN..HEADER_LEN + body().len()], body()[..], "body is encrypted");
        assert_eq!(open(&k, &mut d), Ok(body()));
    }
}

#[test]
fn rejects_weak_setup() {
    assert!(SyncKeys::new(b"short", 7, AeadAlgorithm::Aes256Gcm16).is_err());
    assert!(SyncKeys::new(SECRET, 7, AeadAlgorithm::Aes128Gcm16).is_err());
}

#[test]
fn rejects_any_flipped_bit() {
    let k = keys(AeadAlgorithm::Aes256Gcm16);
    let d = sealed(&k, &header(1));
    for i in 0..d.len() {
        let mut t = d.clone();
        t[i] ^= 0x01;
        assert!(open(&k, &mut t).is_err(), "flip at octet {i} accepted");
    }
}

#[test]
fn rejects_other_secret_cluster_or_algorithm() {
    let d = sealed(&keys(AeadAlgorithm::Aes256Gcm16), &header(1));
    let other = SyncKeys::new(b"another cluster secret entirely", 7, AeadAlgorithm::Aes256Gcm16).expect("ok");
    assert_eq!(open(&other, &mut d.clone()), Err(Error::SyncAuth));
    assert_eq!(open(&keys(AeadAlgorithm::ChaCha20Poly1305), &mut d.clone()), Err(Error::SyncAuth));
    let other_cluster = SyncKeys::new(SECRET, 8, AeadAlgorithm::Aes256Gcm16).expect("ok");
    assert_eq!(open(&other_cluster, &mut d.clone()), Err(Error::SyncMisaddressed));
}

#[test]
fn keys_differ_per_sender_receiver_and_epoch() {
    let k = keys(AeadAlgorithm::Aes256Gcm16);
    let base = sealed(&k, &header(1));
    let variants = [
        Header { sender: NodeId(3), ..header(1) },
        Header { receiver: NodeId(3), ..header(1) },
        Header { epoch: 0xabcdee, ..header(1) },
    ];
    for h in variants {
        let d = sealed(&k, &h);
        assert_ne!(d[HEADER_LEN..], base[HEADER_LEN..], "{h:?} shares a keystream");
    }
    // The same key never seals another header than its own direction.
    let key = k.direction(NodeId(1), NodeId(2), 0xabcdef).expect("keys");
    let mut hb = Vec::new();
    Header { sender: NodeId(3), ..header(1) }.emit(&mut hb);
    assert_eq!(key.seal(&hb, &body()), Err(Error::SyncMisaddressed));
}

#[test]
fn accepts_next_version_with_header_extension_and_new_field() {
    let k = keys(AeadAlgorithm::ChaCha20Poly1305);
    let h = Header { version: VERSION + 1, header_len: HEADER_LEN as u8 + 8, ..header(5) };
    let mut hb = Vec::new();
    h.emit(&mut hb);
    hb.extend_from_slice(b"ext-v2!!");
    let mut b = Vec::new();
    let mut w = BodyWriter::new(&mut b, Kind::HEARTBEAT);
    w.field(FieldType(0x0100), &[b"v2 load figure"]).expect("fits");
    w.field(FieldType::SEGMENTS, &[&3u64.to_be_bytes()]).expect("fits");
    let key = k.direction(NodeId(1), NodeId(2), 0xabcdef).expect("keys");
    let mut d = key.seal(&hb, &b).expect("seals");
    let (parsed, len) = Header::parse(&d).expect("parses");
    assert_eq!((parsed.version, len), (VERSION + 1, HEADER_LEN + 8));
    let plain = key.open(&parsed, len, &mut d).expect("opens").to_vec();
    assert_eq!(
        Message::decode(&plain),
        Ok(Message::Heartbeat { segments: SegmentSet::from_bits(3), synced: true })
    );
    // The extension is authenticated too.
    let mut t = key.seal(&hb, &b).expect("seals");
    t[HEADER_LEN + 2] ^= 1;
    assert_eq!(key.open(&parsed, len, &mut t).map(|_| ()), Err(Error::SyncAuth));
}

#[test]
fn handover_marks_open_only_under_the_same_secret_and_cluster() {
    use tandem_cluster::sync::seal::MARK_LEN;
    let k = keys(AeadAlgorithm::Aes256Gcm16);
    let segments = SegmentSet::from_bits(0b1010);
    let mark = k.seal_mark(NodeId(3), segments);
    assert_eq!(k.open_mark(&mark), Ok((NodeId(3), segments)));
    // A frame's padding after the mark is no matter.
    let mut padded = mark.to_vec();
    padded.extend_from_slice(&[0; 20]);
    assert_eq!(k.open_mark(&padded), Ok((NodeId(3), segments)));
    assert_eq!(k.open_mark(&mark[..MARK_LEN - 1]), Err(Error::SyncMalformed("handover mark too short")));
    // Every octet is covered: the magic, the cluster id, the rest by the tag.
    for i in 0..MARK_LEN {
        let mut m = mark;
        m[i] ^= 1;
        let err = k.open_mark(&m).expect_err("a flipped bit");
        let want = match i {
            0..4 => Error::SyncMalformed("not a handover mark"),
            4..8 => Error::SyncMisaddressed,
            _ => Error::SyncAuth,
        };
        assert_eq!(err, want, "octet {i}");
    }
    let other_secret = SyncKeys::new(b"another secret, also long enough", 7, AeadAlgorithm::Aes256Gcm16);
    assert_eq!(other_secret.expect("valid").open_mark(&mark), Err(Error::SyncAuth));
    let other_cluster = SyncKeys::new(SECRET, 8, AeadAlgorithm::Aes256Gcm16).expect("valid");
    assert_eq!(other_cluster.open_mark(&mark), Err(Error::SyncMisaddressed));
}
