//! The IKEv2 wire codec, tested three ways: encodings written out by hand
//! from the figures of RFC 7296 section 3 and RFC 7383 section 2.5;
//! construct/deconstruct and `rejects_*` cases for every length and count
//! rule; and proptest round trips (`parse(emit(x)) == x`) for every payload
//! type and whole messages, with "never panics" on arbitrary and mutated
//! input.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use proptest::collection::vec;
use proptest::prelude::*;
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_ike::Error;
use tandem_ike::wire::*;

// ---------------------------------------------------------------- helpers

/// A header of an IKE_SA_INIT request (lengths filled by the builder).
fn init_header() -> Header {
    Header {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange_type: ExchangeType::IKE_SA_INIT,
        flags: Flags::new(true, false),
        message_id: 0,
        length: 0,
    }
}

/// A datagram: an IKE header with version 2.0 and the right Length, whose
/// first payload is `first`, followed by `chain`.
fn datagram(first: u8, chain: &[u8]) -> Vec<u8> {
    let mut d = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, first, 0x20, 34, 0x08, 0, 0, 0, 0];
    let len = u32::try_from(28 + chain.len()).expect("small");
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(chain);
    d
}

/// A generic payload: header (next, critical, length) and body.
fn generic(next: u8, critical: bool, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + body.len()).expect("small");
    let mut p = vec![next, if critical { 0x80 } else { 0 }];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// The raw payload `ty` with `body`, as the chain iterator would yield it.
fn raw(ty: PayloadType, body: &[u8]) -> RawPayload<'_> {
    RawPayload { ty, next: PayloadType::NONE, critical: false, body, offset: 0 }
}

/// Emits one payload's body, checks `buffer_len`, and decodes it again by
/// its type into the same payload.
fn assert_body_round_trip(p: &Payload<'_>) {
    let mut body = Vec::new();
    p.emit(&mut body).expect("emit");
    assert_eq!(body.len(), p.buffer_len(), "buffer_len is the emitted length");
    let next = p.inner_next().unwrap_or(PayloadType::NONE);
    let parsed = Payload::parse(&RawPayload { next, ..raw(p.ty(), &body) }).expect("parse");
    assert_eq!(&parsed, p);
}

fn nonce32() -> [u8; 32] {
    core::array::from_fn(|i| i as u8)
}

// ------------------------------------------------------ RFC 7296 figures

#[test]
fn emits_the_ike_header_of_figure_4() {
    let h = Header {
        next_payload: PayloadType::SA,
        flags: Flags::new(true, false).with_version(true),
        message_id: 0x0a0b_0c0d,
        length: 0x0000_01f4,
        ..init_header()
    };
    let mut out = Vec::new();
    h.emit(&mut out).expect("emit");
    let want = [
        1, 2, 3, 4, 5, 6, 7, 8, // SPIi
        0, 0, 0, 0, 0, 0, 0, 0, // SPIr
        33, 0x20, 34, 0x18, // SA, 2.0, IKE_SA_INIT, I|V
        0x0a, 0x0b, 0x0c, 0x0d, // message ID
        0, 0, 0x01, 0xf4, // length 500
    ];
    assert_eq!(out, want);
    assert_eq!(out.len(), h.buffer_len());
}

#[test]
fn parses_the_ike_header_fields() {
    let mut d = datagram(41, &generic(0, false, &[0, 0, 0x40, 0x06]));
    d[19] = 0x20 | 0x80 | 0x01; // Response plus two unknown bits
    d[17] = 0x2f; // minor version 15
    let h = Header::parse(&d).expect("header");
    assert_eq!(h.spi_i, 0x0102_0304_0506_0708);
    assert_eq!(h.spi_r, 0);
    assert_eq!(h.next_payload, PayloadType::NOTIFY);
    assert_eq!(h.minor_version, 15);
    assert_eq!(h.exchange_type, ExchangeType::IKE_SA_INIT);
    assert!(h.flags.response() && !h.flags.initiator() && !h.flags.version());
    assert_eq!(h.flags.bits(), 0x20, "unknown flag bits are ignored");
    assert_eq!(h.length, 36);
}

#[test]
fn emits_an_ike_proposal_as_figures_7_and_8_lay_it_out() {
    // One IKE proposal: ENCR_AES_GCM_16 with Key Length 256, PRF_HMAC_SHA2_256,
    // DH group 31 (Curve25519).
    let sa = Sa {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: vec![],
            transforms: vec![
                Transform::with_key_length(TransformType::ENCR, 20, 256),
                Transform::new(TransformType::PRF, 5),
                Transform::new(TransformType::DH, 31),
            ],
        }],
    };
    let want = [
        0, 0, 0, 36, 1, 1, 0, 3, // last proposal, length 36, #1, IKE, SPI size 0, 3 transforms
        3, 0, 0, 12, 1, 0, 0, 20, 0x80, 14, 1, 0, // more, ENCR 20, Key Length (TV) 256
        3, 0, 0, 8, 2, 0, 0, 5, // more, PRF 5
        0, 0, 0, 8, 4, 0, 0, 31, // last, DH 31
    ];
    let mut out = Vec::new();
    sa.emit(&mut out).expect("emit");
    assert_eq!(out, want);
    assert_eq!(Sa::parse(&want), Ok(sa));
}

#[test]
fn converts_transforms_to_and_from_tandem_crypto() {
    let proposals = parse_proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519,aes128-sha256-modp2048")
        .expect("proposal strings");
    for p in &proposals {
        let wire: Vec<Transform> = p.transforms().map(Transform::from).collect();
        let back: Vec<_> = wire.iter().map(Transform::to_crypto).collect();
        assert_eq!(back, p.transforms().map(Some).collect::<Vec<_>>());
    }
    let mut t = Transform::new(TransformType::PRF, 5);
    t.attributes.push(Attribute { ty: 99, value: AttrValue::Tv(1) });
    assert_eq!(t.to_crypto(), None, "an unknown attribute makes the transform unusable");
}

#[test]
fn emits_an_esp_proposal_with_its_spi() {
    let p = Proposal {
        number: 1,
        protocol: ProtocolId::ESP,
        spi: vec![0xc0, 0xff, 0xee, 0x01],
        transforms: vec![Transform::new(TransformType::ESN, 0)],
    };
    let mut out = Vec::new();
    Sa { proposals: vec![p] }.emit(&mut out).expect("emit");
    assert_eq!(out, [0, 0, 0, 20, 1, 3, 4, 1, 0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 8, 5, 0, 0, 0][..]);
}

#[test]
fn emits_the_key_exchange_payload_of_figure_10() {
    let ke = Ke { group: 19, data: &[0xaa; 64] };
    let mut out = Vec::new();
    ke.emit(&mut out).expect("emit");
    assert_eq!(out[..4], [0, 19, 0, 0]);
    assert_eq!(out[4..], [0xaa; 64]);
    assert_eq!(Ke::parse(&out), Ok(ke));
}

#[test]
fn emits_the_identification_payload_of_figure_11() {
    let id = Id { ty: IdType::ID_FQDN, data: b"vpn.example.org" };
    let mut out = Vec::new();
    id.emit(&mut out).expect("emit");
    assert_eq!(out[..4], [2, 0, 0, 0]);
    assert_eq!(&out[4..], b"vpn.example.org");
    // RESERVED octets are ignored on receipt.
    out[1] = 0xff;
    assert_eq!(Id::parse(&out), Ok(id));
}

#[test]
fn emits_the_authentication_payload_of_figure_14() {
    let auth = Auth { method: AuthMethod::SHARED_KEY_MIC, data: &[7; 32] };
    let mut out = Vec::new();
    auth.emit(&mut out).expect("emit");
    assert_eq!(out[..4], [2, 0, 0, 0]);
    assert_eq!(Auth::parse(&out), Ok(auth));
}

#[test]
fn emits_a_nat_detection_notify_as_figure_16_lays_it_out() {
    let hash = [0x5a; 20];
    let n = Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, &hash);
    let mut out = Vec::new();
    n.emit(&mut out).expect("emit");
    assert_eq!(out[..4], [0, 0, 0x40, 0x04]);
    assert_eq!(out[4..], hash);
    assert_eq!(Notify::parse(&out), Ok(n));
}

#[test]
fn parses_a_rekey_sa_notify_with_an_esp_spi() {
    let body = [3, 4, 0x40, 0x09, 0xde, 0xad, 0xbe, 0xef];
    let n = Notify::parse(&body).expect("notify");
    assert_eq!(
        (n.protocol, n.spi, n.ty, n.data),
        (ProtocolId::ESP, &body[4..], NotifyType::REKEY_SA, &[][..])
    );
}

#[test]
fn emits_the_delete_payload_of_figure_17() {
    let d = Delete::child(ProtocolId::ESP, [0x0102_0304, 0x0a0b_0c0d]);
    let mut out = Vec::new();
    d.emit(&mut out).expect("emit");
    assert_eq!(out, [3, 4, 0, 2, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
    let parsed = Delete::parse(&out).expect("delete");
    assert_eq!(parsed.child_spis().collect::<Vec<_>>(), [0x0102_0304, 0x0a0b_0c0d]);
    let mut out = Vec::new();
    Delete::ike().emit(&mut out).expect("emit");
    assert_eq!(out, [1, 0, 0, 0]);
}

#[test]
fn emits_the_traffic_selectors_of_figures_19_and_20() {
    let v4 = TrafficSelector {
        ip_protocol: 17,
        start_port: 500,
        end_port: 4500,
        start_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)),
        end_addr: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 255)),
    };
    let v6 = TrafficSelector::any(IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::from([0xff; 16])));
    let ts = Ts::new([v4, v6]);
    let mut out = Vec::new();
    ts.emit(&mut out).expect("emit");
    let mut want = vec![2, 0, 0, 0];
    want.extend_from_slice(&[7, 17, 0, 16, 0x01, 0xf4, 0x11, 0x94, 192, 168, 0, 0, 192, 168, 0, 255]);
    want.extend_from_slice(&[8, 0, 0, 40, 0, 0, 0xff, 0xff]);
    want.extend_from_slice(&[0; 16]);
    want.extend_from_slice(&[0xff; 16]);
    assert_eq!(out, want);
    let parsed = Ts::parse(&want).expect("ts");
    assert_eq!(parsed.ranges().copied().collect::<Vec<_>>(), [v4, v6]);
    assert_eq!(v4.ts_type(), TsType::TS_IPV4_ADDR_RANGE);
    assert_eq!(v6.ts_type(), TsType::TS_IPV6_ADDR_RANGE);
}

#[test]
fn emits_the_configuration_payload_of_figures_22_and_23() {
    let cp = Cp {
        cfg_type: CfgType::CFG_REQUEST,
        attributes: vec![
            CfgAttribute::new(CfgAttrType::INTERNAL_IP4_ADDRESS, []),
            CfgAttribute::new(CfgAttrType::INTERNAL_IP4_DNS, [10, 0, 0, 53]),
        ],
    };
    let mut out = Vec::new();
    cp.emit(&mut out).expect("emit");
    assert_eq!(out, [1, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 4, 10, 0, 0, 53]);
    // The R bit is ignored on receipt.
    out[4] |= 0x80;
    assert_eq!(Cp::parse(&out), Ok(cp));
}

#[test]
fn emits_the_encrypted_fragment_payload_of_rfc_7383() {
    let skf = Skf { next_payload: PayloadType::IDi, fragment_number: 1, total_fragments: 3, body: &[9; 24] };
    let mut out = Vec::new();
    skf.emit(&mut out).expect("emit");
    assert_eq!(out[..4], [0, 1, 0, 3]);
    assert_eq!(Skf::parse(PayloadType::IDi, &out), Ok(skf));
}

#[test]
fn emits_an_ike_sa_init_request_byte_for_byte() {
    let sa = Sa {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: vec![],
            transforms: vec![Transform::new(TransformType::DH, 31)],
        }],
    };
    let nonce = [0x11; 16];
    let bytes = MessageBuilder::new(init_header())
        .payload(Payload::Sa(sa))
        .payload(Payload::Ke(Ke { group: 31, data: &[0x22; 32] }))
        .payload(Payload::Nonce(Nonce { data: &nonce }))
        .payload(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, &[])))
        .build()
        .expect("build");
    let mut want = datagram(33, &[]);
    want.truncate(24);
    want.extend_from_slice(&(28u32 + 20 + 40 + 20 + 8).to_be_bytes());
    want.extend_from_slice(&[34, 0, 0, 20, 0, 0, 0, 16, 1, 1, 0, 1, 0, 0, 0, 8, 4, 0, 0, 31]);
    want.extend_from_slice(&[40, 0, 0, 40, 0, 31, 0, 0]);
    want.extend_from_slice(&[0x22; 32]);
    want.extend_from_slice(&[41, 0, 0, 20]);
    want.extend_from_slice(&nonce);
    want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0x40, 0x2e]);
    assert_eq!(bytes, want);
    let m = Message::parse(&bytes).expect("parse");
    assert_eq!(
        m.payloads.iter().map(Payload::ty).collect::<Vec<_>>(),
        [PayloadType::SA, PayloadType::KE, PayloadType::NONCE, PayloadType::NOTIFY]
    );
    assert_eq!(m.sk(), None);
    assert_eq!(m.aad(), None);
}

// ------------------------------------------------- construct/deconstruct

#[test]
fn constructs_and_deconstructs_every_payload() {
    let nonce = nonce32();
    let payloads = [
        Payload::Sa(Sa {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::ESP,
                spi: vec![1, 2, 3, 4],
                transforms: vec![Transform {
                    ty: TransformType::ENCR,
                    id: 12,
                    key_length: Some(128),
                    attributes: vec![
                        Attribute { ty: 17, value: AttrValue::Tlv(vec![1, 2]) },
                        Attribute { ty: 18, value: AttrValue::Tv(3) },
                    ],
                }],
            }],
        }),
        Payload::Ke(Ke { group: 14, data: &[5; 256] }),
        Payload::IdI(Id { ty: IdType::ID_IPV4_ADDR, data: &[10, 0, 0, 1] }),
        Payload::IdR(Id { ty: IdType::ID_KEY_ID, data: b"key" }),
        Payload::Cert(Cert { encoding: CertEncoding::X509_SIGNATURE, data: &[0x30, 0x82] }),
        Payload::CertReq(CertReq { encoding: CertEncoding::X509_SIGNATURE, data: &[1; 40] }),
        Payload::Auth(Auth { method: AuthMethod::DIGITAL_SIGNATURE, data: &[3; 10] }),
        Payload::Nonce(Nonce { data: &nonce }),
        Payload::Notify(Notify {
            protocol: ProtocolId::ESP,
            spi: &[1, 2, 3, 4],
            ty: NotifyType(40001),
            data: b"x",
        }),
        Payload::Delete(Delete::child(ProtocolId::AH, [7])),
        Payload::VendorId(VendorId { data: b"tandem" }),
        Payload::TsI(Ts::new([TrafficSelector::any(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)),
        )])),
        Payload::TsR(Ts {
            selectors: vec![Selector::Other {
                ts_type: TsType::TS_SECLABEL,
                ip_protocol: 0,
                data: b"label".to_vec(),
            }],
        }),
        Payload::Sk(Sk { next_payload: PayloadType::IDi, body: &[0; 40] }),
        Payload::Skf(Skf {
            next_payload: PayloadType::NONE,
            fragment_number: 2,
            total_fragments: 2,
            body: &[1; 8],
        }),
        Payload::Cp(Cp { cfg_type: CfgType::CFG_REPLY, attributes: vec![] }),
        Payload::Eap(Eap { data: &[1, 2, 0, 4] }),
        Payload::Unknown { ty: PayloadType(200), critical: false, body: &[1] },
    ];
    payloads.iter().for_each(assert_body_round_trip);
    let cr = CertReq { encoding: CertEncoding::X509_SIGNATURE, data: &[1; 45] };
    assert_eq!(cr.ca_hashes().count(), 2);
}

#[test]
fn skips_a_non_critical_unknown_payload() {
    let chain = [generic(41, false, &[1, 2, 3]), generic(0, false, &[0, 0, 0x40, 0x00])].concat();
    let d = datagram(130, &chain);
    let m = Message::parse(&d).expect("parse");
    assert_eq!(m.payloads[0], Payload::Unknown { ty: PayloadType(130), critical: false, body: &[1, 2, 3] });
    assert_eq!(m.payloads[1], Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, &[])));
}

#[test]
fn ignores_the_critical_bit_of_known_payloads() {
    let d = datagram(41, &generic(0, true, &[0, 0, 0x40, 0x00]));
    assert!(Message::parse(&d).is_ok());
}

#[test]
fn exposes_the_sk_payload_its_offset_and_the_aad() {
    let nonce = nonce32();
    let body = [0xab; 48];
    let bytes = MessageBuilder::new(init_header())
        .payload(Payload::Nonce(Nonce { data: &nonce }))
        .payload(Payload::Sk(Sk { next_payload: PayloadType::IDi, body: &body }))
        .build()
        .expect("build");
    let m = Message::parse(&bytes).expect("parse");
    let offset = 28 + 4 + 32;
    assert_eq!(m.sk_offset(), Some(offset));
    assert_eq!(m.sk(), Some(&Sk { next_payload: PayloadType::IDi, body: &body }));
    assert_eq!(m.aad(), Some(&bytes[..offset + 4]));
    assert_eq!(bytes[offset], PayloadType::IDi.0, "the SK names its first inner payload");
    assert_eq!(bytes[28], PayloadType::SK.0, "the Nonce names the SK payload");
}

#[test]
fn the_skf_aad_covers_the_fragment_fields() {
    let body = [0xcd; 20];
    let skf = Skf { next_payload: PayloadType::NONE, fragment_number: 2, total_fragments: 5, body: &body };
    let bytes = MessageBuilder::new(init_header()).payload(Payload::Skf(skf)).build().expect("build");
    let m = Message::parse(&bytes).expect("parse");
    assert_eq!(m.sk_offset(), Some(28));
    assert_eq!(m.skf(), Some(&skf));
    assert_eq!(m.aad(), Some(&bytes[..28 + 8]));
}

#[test]
fn raw_payloads_give_the_bodies_as_received() {
    // An IDi with non-zero RESERVED octets: AUTH signs them as they came.
    let id_body = [2, 0xff, 0xee, 0xdd, b'a', b'b'];
    let d = datagram(35, &generic(0, false, &id_body));
    let m = Message::parse(&d).expect("parse");
    let raws: Vec<_> = m.raw_payloads().collect();
    assert_eq!(raws.len(), 1);
    assert_eq!(raws[0].body, id_body);
    assert_eq!(raws[0].offset, 0);
    assert_eq!(m.payloads[0], Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"ab" }));
    assert_eq!(m.bytes(), &d[..]);
}

#[test]
fn builds_the_prefix_that_names_the_sk_payload() {
    let nonce = nonce32();
    let b = MessageBuilder::new(init_header()).payload(Payload::Nonce(Nonce { data: &nonce }));
    let prefix = b.build_prefix(PayloadType::SK).expect("prefix");
    assert_eq!(prefix[16], PayloadType::NONCE.0);
    assert_eq!(prefix[28], PayloadType::SK.0);
    assert_eq!(prefix[24..28], 64u32.to_be_bytes());
    let empty = MessageBuilder::new(init_header()).build_prefix(PayloadType::SKF).expect("prefix");
    assert_eq!(empty[16], PayloadType::SKF.0);
    assert_eq!(
        MessageBuilder::new(init_header()).build_prefix(PayloadType::NONCE),
        Err(Error::Unencodable("prefix for a payload other than SK or SKF"))
    );
}

#[test]
fn round_trips_an_ike_auth_message_through_seal_and_open() {
    use chacha20::ChaCha20Rng;
    use chacha20::rand_core::SeedableRng;
    use tandem_ike::protect::{SkCipher, SkSuite};

    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let inner = [
        Payload::IdI(Id { ty: IdType::ID_FQDN, data: b"alice.example" }),
        Payload::Auth(Auth { method: AuthMethod::SHARED_KEY_MIC, data: &[4; 32] }),
        Payload::TsI(Ts::new([TrafficSelector::any(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::BROADCAST),
        )])),
    ];
    for suite in SkSuite::ALL {
        let mut cipher =
            SkCipher::new(suite, &vec![7; suite.encr_keymat_len()], &vec![9; suite.integ_key_len()])
                .expect("cipher");
        let mut plaintext = Vec::new();
        let first = emit_inner(&inner, &mut plaintext).expect("inner");
        let header = Header { exchange_type: ExchangeType::IKE_AUTH, message_id: 1, ..init_header() };
        let mut message = MessageBuilder::new(header).build_prefix(PayloadType::SK).expect("prefix");
        cipher.seal(&mut rng, &mut message, first.0, &plaintext).expect("seal");

        let m = Message::parse(&message).expect("parse");
        let sk = m.sk().expect("SK payload");
        let offset = m.sk_offset().expect("offset");
        assert_eq!(sk.next_payload, PayloadType::IDi);
        let opened = cipher.open(m.bytes(), offset).expect("open");
        assert_eq!(parse_inner(sk.next_payload, &opened).expect("inner"), inner);
    }
}

// ---------------------------------------------------------- rejections

#[test]
fn rejects_a_truncated_header() {
    let d = datagram(0, &[]);
    for n in 0..28 {
        assert_eq!(Header::parse(&d[..n]), Err(Error::Truncated("IKE header")), "{n} octets");
        assert!(Message::parse(&d[..n]).is_err());
    }
    assert!(Message::parse(&d).is_ok());
}

#[test]
fn rejects_a_header_length_below_28() {
    let mut d = datagram(0, &[]);
    d[24..28].copy_from_slice(&27u32.to_be_bytes());
    assert_eq!(Header::parse(&d), Err(Error::InvalidSyntax("IKE header length below 28")));
}

#[test]
fn rejects_a_header_length_beyond_the_datagram() {
    let mut d = datagram(0, &[]);
    d[24..28].copy_from_slice(&29u32.to_be_bytes());
    assert_eq!(Header::parse(&d), Err(Error::Truncated("IKE message")));
    assert_eq!(Message::parse(&d), Err(Error::Truncated("IKE message")));
    d[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Message::parse(&d), Err(Error::Truncated("IKE message")));
}

#[test]
fn rejects_octets_past_the_header_length() {
    let mut d = datagram(0, &[]);
    d.push(0);
    assert!(Header::parse(&d).is_ok(), "a header view may sit on a longer buffer");
    assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("IKE header length is not the datagram length")));
}

#[test]
fn rejects_a_wrong_major_version() {
    for (version, major) in [(0x10, 1), (0x30, 3), (0x00, 0), (0xf0, 15)] {
        let mut d = datagram(0, &[]);
        d[17] = version;
        assert_eq!(Header::parse(&d), Err(Error::InvalidMajorVersion(major)));
        assert_eq!(Message::parse(&d), Err(Error::InvalidMajorVersion(major)));
    }
}

#[test]
fn accepts_any_minor_version() {
    for minor in 0..16 {
        let mut d = datagram(0, &[]);
        d[17] = 0x20 | minor;
        assert_eq!(Message::parse(&d).expect("parse").header.minor_version, minor);
    }
}

#[test]
fn rejects_a_payload_length_below_4() {
    for len in 0..4u8 {
        let d = datagram(41, &[0, 0, 0, len]);
        assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("payload length below 4")));
    }
}

#[test]
fn rejects_a_payload_length_beyond_the_message() {
    let d = datagram(43, &[0, 0, 0, 9, 1, 2, 3, 4]);
    assert_eq!(Message::parse(&d), Err(Error::Truncated("payload")));
}

#[test]
fn rejects_a_truncated_generic_header() {
    let d = datagram(43, &[0, 0, 0]);
    assert_eq!(Message::parse(&d), Err(Error::Truncated("generic payload header")));
    // A next payload named but nothing left.
    let d = datagram(43, &generic(43, false, &[1]));
    assert_eq!(Message::parse(&d), Err(Error::Truncated("generic payload header")));
}

#[test]
fn rejects_octets_after_the_last_payload() {
    let chain = [generic(0, false, b"vid"), vec![0]].concat();
    let d = datagram(43, &chain);
    assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("data after the last payload")));
}

#[test]
fn rejects_a_critical_unknown_payload() {
    let chain = [generic(130, true, &[1, 2]), generic(0, false, b"v")].concat();
    let d = datagram(43, &[generic(130, false, b"vid"), chain].concat());
    assert_eq!(Message::parse(&d), Err(Error::UnsupportedCriticalPayload(130)));
    let d = datagram(49, &generic(0, true, &[]));
    assert_eq!(Message::parse(&d), Err(Error::UnsupportedCriticalPayload(49)));
    let d = datagram(1, &generic(0, true, &[]));
    assert_eq!(parse_inner(PayloadType(1), &d[28..]), Err(Error::UnsupportedCriticalPayload(1)));
}

#[test]
fn rejects_a_payload_after_sk() {
    let chain = [generic(35, false, &[0; 20]), generic(0, false, b"vid")].concat();
    let d = datagram(46, &chain);
    assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("payload after the Encrypted payload")));
    let chain = [generic(0, false, &[0, 1, 0, 1, 9]), vec![0; 4]].concat();
    let d = datagram(53, &chain);
    assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("payload after the Encrypted payload")));
}

#[test]
fn rejects_an_encrypted_payload_inside_sk_plaintext() {
    let plain = generic(35, false, &[0; 20]);
    assert_eq!(
        parse_inner(PayloadType::SK, &plain),
        Err(Error::InvalidSyntax("Encrypted payload inside an Encrypted payload"))
    );
    let sk = Payload::Sk(Sk { next_payload: PayloadType::IDi, body: &[] });
    assert_eq!(
        emit_inner(&[sk], &mut Vec::new()),
        Err(Error::Unencodable("Encrypted payload inside an Encrypted payload"))
    );
}

#[test]
fn rejects_building_a_payload_after_sk() {
    let b = MessageBuilder::new(init_header())
        .payload(Payload::Sk(Sk { next_payload: PayloadType::IDi, body: &[0; 20] }))
        .payload(Payload::VendorId(VendorId { data: b"v" }));
    assert_eq!(b.build(), Err(Error::Unencodable("payload after the Encrypted payload")));
}

/// A proposal substructure with one transform.
fn proposal_bytes(last: u8, number: u8, protocol: u8, spi: &[u8], transform: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + spi.len() + transform.len()).expect("small");
    let spi_size = u8::try_from(spi.len()).expect("small");
    let mut p = vec![last, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[number, protocol, spi_size, 1]);
    p.extend_from_slice(spi);
    p.extend_from_slice(transform);
    p
}

/// A transform substructure.
fn transform_bytes(last: u8, ty: u8, id: u16, attrs: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + attrs.len()).expect("small");
    let mut t = vec![last, 0];
    t.extend_from_slice(&len.to_be_bytes());
    t.extend_from_slice(&[ty, 0]);
    t.extend_from_slice(&id.to_be_bytes());
    t.extend_from_slice(attrs);
    t
}

#[test]
fn rejects_bad_proposal_numbering() {
    let t = || transform_bytes(0, 4, 31, &[]);
    let sa = |numbers: &[u8]| -> Vec<u8> {
        let n = numbers.len();
        numbers
            .iter()
            .enumerate()
            .flat_map(|(i, &num)| proposal_bytes(if i + 1 < n { 2 } else { 0 }, num, 1, &[], &t()))
            .collect()
    };
    let bad = Err(Error::InvalidSyntax("proposals not numbered 1, 2, 3..."));
    assert_eq!(Sa::parse(&sa(&[2, 3])), bad, "first is not 1");
    assert_eq!(Sa::parse(&sa(&[1, 3])), bad, "gap");
    assert_eq!(Sa::parse(&sa(&[1, 1])), bad, "repeat");
    assert_eq!(Sa::parse(&sa(&[0])), Err(Error::InvalidSyntax("proposal number 0")));
    assert!(Sa::parse(&sa(&[1, 2, 3])).is_ok());
}

#[test]
fn accepts_a_lone_proposal_with_the_number_it_was_offered_with() {
    let body = proposal_bytes(0, 7, 1, &[], &transform_bytes(0, 4, 31, &[]));
    assert_eq!(Sa::parse(&body).expect("sa").proposals[0].number, 7);
}

#[test]
fn rejects_an_sa_without_proposals() {
    assert_eq!(Sa::parse(&[]), Err(Error::InvalidSyntax("SA payload without proposals")));
    assert_eq!(
        Sa { proposals: vec![] }.emit(&mut Vec::new()),
        Err(Error::Unencodable("SA payload without proposals"))
    );
}

#[test]
fn rejects_bad_last_substruc_values() {
    let t = transform_bytes(0, 4, 31, &[]);
    let body = proposal_bytes(1, 1, 1, &[], &t);
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("proposal Last Substruc not 0 or 2")));
    let body = proposal_bytes(2, 1, 1, &[], &t);
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("missing proposal after Last Substruc 2")));
    let body = [proposal_bytes(0, 1, 1, &[], &t), proposal_bytes(0, 2, 1, &[], &t)].concat();
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("proposal after the last")));
    let body = proposal_bytes(0, 1, 1, &[], &transform_bytes(2, 4, 31, &[]));
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("transform Last Substruc not 0 or 3")));
    let body = proposal_bytes(0, 1, 1, &[], &transform_bytes(3, 4, 31, &[]));
    assert_eq!(
        Sa::parse(&body),
        Err(Error::InvalidSyntax("transform Last Substruc disagrees with Num Transforms"))
    );
}

#[test]
fn rejects_num_transforms_that_disagree_with_the_transforms() {
    let t = transform_bytes(0, 4, 31, &[]);
    let mut body = proposal_bytes(0, 1, 1, &[], &t);
    body[7] = 2;
    assert_eq!(
        Sa::parse(&body),
        Err(Error::InvalidSyntax("transform Last Substruc disagrees with Num Transforms"))
    );
    let mut two = proposal_bytes(0, 1, 1, &[], &transform_bytes(3, 4, 31, &[]));
    two[7] = 2;
    assert_eq!(Sa::parse(&two), Err(Error::Truncated("transform substructure")), "second transform missing");
    body[7] = 0;
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("proposal longer than its transforms")));
}

#[test]
fn rejects_substructure_lengths_that_do_not_fit() {
    let t = transform_bytes(0, 4, 31, &[]);
    let mut body = proposal_bytes(0, 1, 1, &[], &t);
    body[3] = 7;
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("proposal length below 8")));
    body[3] = 17;
    assert_eq!(Sa::parse(&body), Err(Error::Truncated("proposal substructure")));
    let mut body = proposal_bytes(0, 1, 1, &[], &t);
    body[8 + 3] = 7;
    assert_eq!(Sa::parse(&body), Err(Error::InvalidSyntax("transform length below 8")));
}

#[test]
fn rejects_an_spi_size_wrong_for_the_protocol() {
    let t = || transform_bytes(0, 5, 0, &[]);
    let wrong = Err(Error::InvalidSyntax("SPI size wrong for the protocol"));
    assert_eq!(Sa::parse(&proposal_bytes(0, 1, 3, &[1, 2, 3], &t())), wrong);
    assert_eq!(Sa::parse(&proposal_bytes(0, 1, 2, &[], &t())), wrong);
    assert_eq!(Sa::parse(&proposal_bytes(0, 1, 1, &[1, 2, 3, 4], &t())), wrong);
    assert!(Sa::parse(&proposal_bytes(0, 1, 1, &[8; 8], &t())).is_ok(), "IKE rekey carries an 8-octet SPI");
    assert!(Sa::parse(&proposal_bytes(0, 1, 9, &[1, 2, 3], &t())).is_ok(), "unknown protocols: any size");
    let p = Proposal { number: 1, protocol: ProtocolId::ESP, spi: vec![], transforms: vec![] };
    assert_eq!(
        Sa { proposals: vec![p] }.emit(&mut Vec::new()),
        Err(Error::Unencodable("SPI size wrong for the protocol"))
    );
}

#[test]
fn rejects_a_key_length_attribute_in_tlv_format_or_repeated() {
    let tlv = transform_bytes(0, 1, 12, &[0, 14, 0, 2, 1, 0]);
    assert_eq!(
        Sa::parse(&proposal_bytes(0, 1, 1, &[], &tlv)),
        Err(Error::InvalidSyntax("Key Length attribute in TLV format"))
    );
    let twice = transform_bytes(0, 1, 12, &[0x80, 14, 1, 0, 0x80, 14, 0, 128]);
    assert_eq!(
        Sa::parse(&proposal_bytes(0, 1, 1, &[], &twice)),
        Err(Error::InvalidSyntax("Key Length attribute repeated"))
    );
    let truncated = transform_bytes(0, 1, 12, &[0, 20, 0, 9, 1]);
    assert!(Sa::parse(&proposal_bytes(0, 1, 1, &[], &truncated)).is_err());
    let mut t = Transform::new(TransformType::ENCR, 12);
    t.attributes.push(Attribute { ty: 14, value: AttrValue::Tv(128) });
    let sa = Sa {
        proposals: vec![Proposal { number: 1, protocol: ProtocolId::IKE, spi: vec![], transforms: vec![t] }],
    };
    assert_eq!(sa.emit(&mut Vec::new()), Err(Error::Unencodable("Key Length given as a generic attribute")));
}

#[test]
fn keeps_unknown_transform_attributes_in_order() {
    let t = transform_bytes(0, 1, 12, &[0x80, 99, 0, 5, 0, 100, 0, 1, 0xaa, 0x80, 14, 1, 0]);
    let sa = Sa::parse(&proposal_bytes(0, 1, 1, &[], &t)).expect("sa");
    let t = &sa.proposals[0].transforms[0];
    assert_eq!(t.key_length, Some(256));
    assert_eq!(
        t.attributes,
        [
            Attribute { ty: 99, value: AttrValue::Tv(5) },
            Attribute { ty: 100, value: AttrValue::Tlv(vec![0xaa]) }
        ]
    );
}

#[test]
fn rejects_a_nonce_too_short_or_too_long() {
    let bad = Err(Error::InvalidSyntax("nonce not 16 to 256 octets"));
    assert_eq!(Nonce::parse(&[0; 15]), bad);
    assert_eq!(Nonce::parse(&[0; 257]), bad);
    assert_eq!(Nonce::parse(&[]), bad);
    assert!(Nonce::parse(&[0; 16]).is_ok());
    assert!(Nonce::parse(&[0; 256]).is_ok());
    assert_eq!(
        Nonce { data: &[0; 15] }.emit(&mut Vec::new()),
        Err(Error::Unencodable("nonce not 16 to 256 octets"))
    );
    let d = datagram(40, &generic(0, false, &[0; 15]));
    assert_eq!(Message::parse(&d), Err(Error::InvalidSyntax("nonce not 16 to 256 octets")));
}

#[test]
fn rejects_skf_fragment_number_zero_or_above_the_total() {
    assert_eq!(Skf::parse(PayloadType::NONE, &[0, 0, 0, 1]), Err(Error::InvalidSyntax("fragment number 0")));
    assert_eq!(Skf::parse(PayloadType::NONE, &[0, 1, 0, 0]), Err(Error::InvalidSyntax("total fragments 0")));
    assert_eq!(
        Skf::parse(PayloadType::NONE, &[0, 3, 0, 2]),
        Err(Error::InvalidSyntax("fragment number above total fragments"))
    );
    assert_eq!(Skf::parse(PayloadType::NONE, &[0, 1, 0]), Err(Error::Truncated("SKF payload")));
    assert!(Skf::parse(PayloadType::NONE, &[0, 2, 0, 2]).is_ok());
    let skf = Skf { next_payload: PayloadType::NONE, fragment_number: 0, total_fragments: 1, body: &[] };
    assert_eq!(skf.emit(&mut Vec::new()), Err(Error::Unencodable("fragment number 0")));
}

#[test]
fn rejects_traffic_selectors_of_the_wrong_length_or_count() {
    let v4 = [7, 0, 0, 16, 0, 0, 0xff, 0xff, 10, 0, 0, 0, 10, 0, 0, 255];
    let mut body = [&[1, 0, 0, 0][..], &v4].concat();
    assert!(Ts::parse(&body).is_ok());
    body[4 + 3] = 40;
    assert_eq!(Ts::parse(&body), Err(Error::Truncated("traffic selector")));
    body[4 + 3] = 3;
    assert_eq!(Ts::parse(&body), Err(Error::InvalidSyntax("traffic selector length below 4")));
    let mut v6_short = body.clone();
    v6_short[4] = 8;
    v6_short[4 + 3] = 16;
    assert_eq!(Ts::parse(&v6_short), Err(Error::InvalidSyntax("address range selector of the wrong length")));
    let two = [&[2, 0, 0, 0][..], &v4].concat();
    assert_eq!(Ts::parse(&two), Err(Error::Truncated("traffic selector")));
    let trailing = [&[1, 0, 0, 0][..], &v4, &[0]].concat();
    assert_eq!(Ts::parse(&trailing), Err(Error::InvalidSyntax("data after the last traffic selector")));
    let mixed = TrafficSelector::any(IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    assert_eq!(
        Ts::new([mixed]).emit(&mut Vec::new()),
        Err(Error::Unencodable("traffic selector mixing IPv4 and IPv6"))
    );
}

#[test]
fn accepts_opaque_ports_and_reversed_address_ranges() {
    let body = [1, 0, 0, 0, 7, 6, 0, 16, 0xff, 0xff, 0, 0, 10, 0, 0, 9, 10, 0, 0, 1];
    let ts = Ts::parse(&body).expect("ts");
    let sel = ts.ranges().next().expect("one range");
    assert_eq!((sel.start_port, sel.end_port), (65535, 0));
    assert!(sel.start_addr > sel.end_addr);
}

#[test]
fn rejects_delete_spis_that_do_not_fill_the_payload() {
    let bad = Err(Error::InvalidSyntax("Delete SPIs do not fill the payload"));
    assert_eq!(Delete::parse(&[3, 4, 0, 2, 1, 2, 3, 4]), bad);
    assert_eq!(Delete::parse(&[3, 4, 0, 1, 1, 2, 3, 4, 5]), bad);
    assert_eq!(
        Delete::parse(&[3, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
        Err(Error::InvalidSyntax("Delete SPI size wrong for the protocol"))
    );
    assert_eq!(Delete::parse(&[1, 0, 0, 0]), Ok(Delete::ike()));
    assert_eq!(Delete::parse(&[1, 0, 0, 3]), Ok(Delete::ike()), "Num of SPIs is moot with SPI size 0");
    let d = Delete { protocol: ProtocolId::ESP, spi_size: 4, spis: vec![vec![1, 2, 3]] };
    assert_eq!(d.emit(&mut Vec::new()), Err(Error::Unencodable("Delete SPI empty or not of the SPI size")));
}

#[test]
fn rejects_truncated_fixed_parts() {
    assert_eq!(Ke::parse(&[0, 19, 0]), Err(Error::Truncated("KE payload")));
    assert_eq!(Id::parse(&[1, 0, 0]), Err(Error::Truncated("ID payload")));
    assert_eq!(Auth::parse(&[2]), Err(Error::Truncated("AUTH payload")));
    assert_eq!(Cert::parse(&[]), Err(Error::Truncated("CERT payload")));
    assert_eq!(CertReq::parse(&[]), Err(Error::Truncated("CERTREQ payload")));
    assert_eq!(Notify::parse(&[0, 4, 0x40, 0x09, 1, 2, 3]), Err(Error::Truncated("Notify payload")));
    assert_eq!(Delete::parse(&[3, 4, 0]), Err(Error::Truncated("Delete payload")));
    assert_eq!(Ts::parse(&[1, 0, 0]), Err(Error::Truncated("TS payload")));
    assert_eq!(Cp::parse(&[1, 0, 0, 0, 0, 1, 0, 4, 10]), Err(Error::Truncated("CP payload")));
}

#[test]
fn rejects_a_payload_too_long_for_its_length_field() {
    let big = vec![0; 65_532];
    let b = MessageBuilder::new(init_header()).payload(Payload::VendorId(VendorId { data: &big }));
    assert_eq!(b.build(), Err(Error::Unencodable("payload length")));
    let fits = &big[..65_531];
    let b = MessageBuilder::new(init_header()).payload(Payload::VendorId(VendorId { data: fits }));
    assert_eq!(b.build().expect("build").len(), 28 + 65_535);
}

#[test]
fn rejects_emitting_an_unknown_payload_of_a_known_type() {
    let p = Payload::Unknown { ty: PayloadType::NONCE, critical: false, body: &[] };
    assert_eq!(p.emit(&mut Vec::new()), Err(Error::Unencodable("unknown payload of a known type")));
}

// ------------------------------------------------------------ proptest

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    let ty = (0u16..0x8000).prop_filter("Key Length has its own field", |t| *t != 14);
    let value = prop_oneof![any::<u16>().prop_map(AttrValue::Tv), bytes(8).prop_map(AttrValue::Tlv)];
    (ty, value).prop_map(|(ty, value)| Attribute { ty, value })
}

fn transform() -> impl Strategy<Value = Transform> {
    (any::<u8>(), any::<u16>(), any::<Option<u16>>(), vec(attribute(), 0..3)).prop_map(
        |(ty, id, key_length, attributes)| Transform { ty: TransformType(ty), id, key_length, attributes },
    )
}

fn protocol_and_spi() -> impl Strategy<Value = (ProtocolId, Vec<u8>)> {
    prop_oneof![
        prop_oneof![Just(vec![]), vec(any::<u8>(), 8)].prop_map(|spi| (ProtocolId::IKE, spi)),
        (prop_oneof![Just(ProtocolId::AH), Just(ProtocolId::ESP)], vec(any::<u8>(), 4)),
        (prop_oneof![Just(0u8), 4u8..=255].prop_map(ProtocolId), bytes(8)),
    ]
}

fn proposal(number: u8) -> impl Strategy<Value = Proposal> {
    (protocol_and_spi(), vec(transform(), 0..5)).prop_map(move |((protocol, spi), transforms)| Proposal {
        number,
        protocol,
        spi,
        transforms,
    })
}

fn sa() -> impl Strategy<Value = Sa> {
    prop_oneof![
        (1u8..=255).prop_flat_map(proposal).prop_map(|p| Sa { proposals: vec![p] }),
        (2usize..5)
            .prop_flat_map(|n| {
                (1..=n).map(|i| proposal(u8::try_from(i).expect("small"))).collect::<Vec<_>>()
            })
            .prop_map(|proposals| Sa { proposals }),
    ]
}

fn traffic_selector() -> impl Strategy<Value = TrafficSelector> {
    let v4 = (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b)));
    let v6 = (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b)));
    (any::<u8>(), any::<u16>(), any::<u16>(), prop_oneof![v4, v6]).prop_map(
        |(ip_protocol, start_port, end_port, (start_addr, end_addr))| TrafficSelector {
            ip_protocol,
            start_port,
            end_port,
            start_addr,
            end_addr,
        },
    )
}

fn ts() -> impl Strategy<Value = Ts> {
    let other =
        (any::<u8>().prop_filter("not an address range", |t| *t != 7 && *t != 8), any::<u8>(), bytes(16))
            .prop_map(|(t, ip_protocol, data)| Selector::Other { ts_type: TsType(t), ip_protocol, data });
    vec(prop_oneof![traffic_selector().prop_map(Selector::Range), other], 0..5)
        .prop_map(|selectors| Ts { selectors })
}

fn cp() -> impl Strategy<Value = Cp> {
    let attr = (0u16..0x8000, bytes(20)).prop_map(|(t, v)| CfgAttribute::new(CfgAttrType(t), v));
    (any::<u8>(), vec(attr, 0..5)).prop_map(|(t, attributes)| Cp { cfg_type: CfgType(t), attributes })
}

fn delete() -> impl Strategy<Value = Delete> {
    let unknown = prop_oneof![Just(0u8), 4u8..=255].prop_map(ProtocolId);
    prop_oneof![
        Just(Delete::ike()),
        (prop_oneof![Just(ProtocolId::AH), Just(ProtocolId::ESP)], vec(any::<u32>(), 0..5))
            .prop_map(|(p, spis)| Delete::child(p, spis)),
        (unknown.clone(), 1u8..=8).prop_flat_map(|(protocol, spi_size)| {
            vec(vec(any::<u8>(), usize::from(spi_size)), 0..4).prop_map(move |spis| Delete {
                protocol,
                spi_size,
                spis,
            })
        }),
        unknown.prop_map(|protocol| Delete { protocol, spi_size: 0, spis: vec![] }),
    ]
}

/// An owned payload that lends out a [`Payload`] view.
#[derive(Clone, Debug)]
enum Model {
    Sa(Sa),
    Ke(u16, Vec<u8>),
    IdI(u8, Vec<u8>),
    IdR(u8, Vec<u8>),
    Cert(u8, Vec<u8>),
    CertReq(u8, Vec<u8>),
    Auth(u8, Vec<u8>),
    Nonce(Vec<u8>),
    Notify(u8, Vec<u8>, u16, Vec<u8>),
    Delete(Delete),
    VendorId(Vec<u8>),
    TsI(Ts),
    TsR(Ts),
    Cp(Cp),
    Eap(Vec<u8>),
    Unknown(u8, Vec<u8>),
    Sk(u8, Vec<u8>),
    Skf(u8, u16, u16, Vec<u8>),
}

impl Model {
    fn view(&self) -> Payload<'_> {
        match self {
            Self::Sa(sa) => Payload::Sa(sa.clone()),
            Self::Ke(group, data) => Payload::Ke(Ke { group: *group, data }),
            Self::IdI(ty, data) => Payload::IdI(Id { ty: IdType(*ty), data }),
            Self::IdR(ty, data) => Payload::IdR(Id { ty: IdType(*ty), data }),
            Self::Cert(e, data) => Payload::Cert(Cert { encoding: CertEncoding(*e), data }),
            Self::CertReq(e, data) => Payload::CertReq(CertReq { encoding: CertEncoding(*e), data }),
            Self::Auth(m, data) => Payload::Auth(Auth { method: AuthMethod(*m), data }),
            Self::Nonce(data) => Payload::Nonce(Nonce { data }),
            Self::Notify(p, spi, ty, data) => {
                Payload::Notify(Notify { protocol: ProtocolId(*p), spi, ty: NotifyType(*ty), data })
            }
            Self::Delete(d) => Payload::Delete(d.clone()),
            Self::VendorId(data) => Payload::VendorId(VendorId { data }),
            Self::TsI(ts) => Payload::TsI(ts.clone()),
            Self::TsR(ts) => Payload::TsR(ts.clone()),
            Self::Cp(cp) => Payload::Cp(cp.clone()),
            Self::Eap(data) => Payload::Eap(Eap { data }),
            Self::Unknown(ty, body) => Payload::Unknown { ty: PayloadType(*ty), critical: false, body },
            Self::Sk(next, body) => Payload::Sk(Sk { next_payload: PayloadType(*next), body }),
            Self::Skf(next, n, t, body) => Payload::Skf(Skf {
                next_payload: PayloadType(*next),
                fragment_number: *n,
                total_fragments: *t,
                body,
            }),
        }
    }
}

/// Any payload that may sit in the clear or inside SK.
fn plain_model() -> impl Strategy<Value = Model> {
    let unknown_ty = any::<u8>().prop_filter("unknown type", |t| *t != 0 && !PayloadType(*t).is_known());
    prop_oneof![
        sa().prop_map(Model::Sa),
        (any::<u16>(), bytes(64)).prop_map(|(g, d)| Model::Ke(g, d)),
        (any::<u8>(), bytes(32)).prop_map(|(t, d)| Model::IdI(t, d)),
        (any::<u8>(), bytes(32)).prop_map(|(t, d)| Model::IdR(t, d)),
        (any::<u8>(), bytes(64)).prop_map(|(e, d)| Model::Cert(e, d)),
        (any::<u8>(), bytes(60)).prop_map(|(e, d)| Model::CertReq(e, d)),
        (any::<u8>(), bytes(64)).prop_map(|(m, d)| Model::Auth(m, d)),
        vec(any::<u8>(), 16..=256).prop_map(Model::Nonce),
        (any::<u8>(), bytes(16), any::<u16>(), bytes(32)).prop_map(|(p, s, t, d)| Model::Notify(p, s, t, d)),
        delete().prop_map(Model::Delete),
        bytes(32).prop_map(Model::VendorId),
        ts().prop_map(Model::TsI),
        ts().prop_map(Model::TsR),
        cp().prop_map(Model::Cp),
        bytes(32).prop_map(Model::Eap),
        (unknown_ty, bytes(16)).prop_map(|(t, b)| Model::Unknown(t, b)),
    ]
}

/// An SK or SKF payload, to end a message.
fn encrypted_model() -> impl Strategy<Value = Model> {
    let skf = (1u16..=u16::MAX)
        .prop_flat_map(|total| (any::<u8>(), 1..=total, Just(total), bytes(64)))
        .prop_map(|(next, n, t, body)| Model::Skf(next, n, t, body));
    prop_oneof![(any::<u8>(), bytes(64)).prop_map(|(n, b)| Model::Sk(n, b)), skf]
}

fn any_model() -> impl Strategy<Value = Model> {
    prop_oneof![plain_model(), encrypted_model()]
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u64>(), any::<u64>(), 0u8..16, any::<u8>(), any::<u8>(), any::<u32>()).prop_map(
        |(spi_i, spi_r, minor_version, exchange, flags, message_id)| Header {
            spi_i,
            spi_r,
            next_payload: PayloadType::NONE,
            minor_version,
            exchange_type: ExchangeType(exchange),
            flags: Flags::from_bits(flags),
            message_id,
            length: 0,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips_every_payload_body(m in any_model()) {
        assert_body_round_trip(&m.view());
    }

    #[test]
    fn round_trips_sa_payloads(sa in sa()) {
        let mut out = Vec::new();
        sa.emit(&mut out).expect("emit");
        prop_assert_eq!(out.len(), sa.buffer_len());
        prop_assert_eq!(Sa::parse(&out).expect("parse"), sa);
    }

    #[test]
    fn round_trips_ts_payloads(ts in ts()) {
        let mut out = Vec::new();
        ts.emit(&mut out).expect("emit");
        prop_assert_eq!(out.len(), ts.buffer_len());
        prop_assert_eq!(Ts::parse(&out).expect("parse"), ts);
    }

    #[test]
    fn round_trips_cp_payloads(cp in cp()) {
        let mut out = Vec::new();
        cp.emit(&mut out).expect("emit");
        prop_assert_eq!(out.len(), cp.buffer_len());
        prop_assert_eq!(Cp::parse(&out).expect("parse"), cp);
    }

    #[test]
    fn round_trips_delete_payloads(d in delete()) {
        let mut out = Vec::new();
        d.emit(&mut out).expect("emit");
        prop_assert_eq!(out.len(), d.buffer_len());
        prop_assert_eq!(Delete::parse(&out).expect("parse"), d);
    }

    #[test]
    fn round_trips_headers(h in header()) {
        let h = Header { length: 28, ..h };
        let mut out = Vec::new();
        h.emit(&mut out).expect("emit");
        prop_assert_eq!(Header::parse(&out).expect("parse"), h);
    }

    #[test]
    fn round_trips_whole_messages(
        h in header(),
        plain in vec(plain_model(), 0..6),
        tail in proptest::option::of(encrypted_model()),
    ) {
        let mut models = plain;
        models.extend(tail);
        let payloads: Vec<Payload<'_>> = models.iter().map(Model::view).collect();
        let mut b = MessageBuilder::new(h);
        payloads.iter().cloned().for_each(|p| b.push(p));
        let bytes = b.build().expect("build");
        prop_assert_eq!(bytes.len(), b.buffer_len());
        let m = Message::parse(&bytes).expect("parse");
        let length = u32::try_from(bytes.len()).expect("small");
        let first = payloads.first().map_or(PayloadType::NONE, Payload::ty);
        prop_assert_eq!(m.header, Header { next_payload: first, length, ..h });
        prop_assert_eq!(&m.payloads, &payloads);
        let offset = m.sk_offset();
        prop_assert_eq!(offset.is_some(), m.sk().is_some() || m.skf().is_some());
        if let Some(offset) = offset {
            let last = m.raw_payloads().last().expect("SK is a payload");
            prop_assert_eq!(last.offset + 28, offset);
            prop_assert_eq!(m.aad().map(<[u8]>::len), Some(offset + 4 + if m.skf().is_some() { 4 } else { 0 }));
        }
    }

    #[test]
    fn round_trips_sk_plaintext(plain in vec(plain_model(), 0..6)) {
        let payloads: Vec<Payload<'_>> = plain.iter().map(Model::view).collect();
        let mut out = Vec::new();
        let first = emit_inner(&payloads, &mut out).expect("emit");
        prop_assert_eq!(parse_inner(first, &out).expect("parse"), payloads);
    }

    #[test]
    fn message_parse_never_panics_on_arbitrary_bytes(bytes in bytes(600)) {
        let _ = Message::parse(&bytes);
        let _ = Header::parse(&bytes);
        let _ = parse_inner(PayloadType(bytes.first().copied().unwrap_or(0)), &bytes);
    }

    #[test]
    fn message_parse_never_panics_behind_a_valid_header(first: u8, chain in bytes(600)) {
        let d = datagram(first, &chain);
        let _ = Message::parse(&d);
        if let Ok(m) = Message::parse(&d) {
            let _ = m.aad();
            let _ = m.raw_payloads().count();
        }
    }

    #[test]
    fn message_parse_never_panics_on_mutated_messages(
        plain in vec(plain_model(), 1..5),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let payloads: Vec<Payload<'_>> = plain.iter().map(Model::view).collect();
        let mut b = MessageBuilder::new(init_header());
        payloads.into_iter().for_each(|p| b.push(p));
        let mut bytes = b.build().expect("build");
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x.max(1);
        }
        let _ = Message::parse(&bytes);
    }

    #[test]
    fn payload_parsers_never_panic(ty: u8, next: u8, body in bytes(300)) {
        let raw = RawPayload { ty: PayloadType(ty), next: PayloadType(next), critical: ty % 2 == 0, body: &body, offset: 0 };
        let _ = Payload::parse(&raw);
        let _ = Sa::parse(&body);
        let _ = Ts::parse(&body);
        let _ = Cp::parse(&body);
        let _ = Delete::parse(&body);
        let _ = Notify::parse(&body);
        let _ = Skf::parse(PayloadType(next), &body);
    }
}
