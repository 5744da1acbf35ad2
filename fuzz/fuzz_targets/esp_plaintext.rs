//! Gets the fuzzer past the ICV: it chooses the suite, mode, ESN, window,
//! framing and, per packet, the sequence number, IV and plaintext (inner
//! bytes and trailer); the target seals each packet by hand with the key
//! material the inbound SA uses and feeds it to `Sad::decapsulate` (ESP
//! framing) or `Sad::receive` (outer IPv4/IPv6, raw or UDP/4500).
//!
//! Checks: no panic; an accepted packet's range lies within the buffer and
//! holds exactly the plaintext that was sealed; an accepted packet is a
//! replay the second time; a packet with any ESP octet flipped is refused.
#![no_main]

use core::net::IpAddr;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tandem_crypto::aead::SaltedAead;
use tandem_crypto::cbc_hmac::{AesCbc, Integrity};
use tandem_esp::wire::{IpHeader, PROTO_ESP, PROTO_IPV4, PROTO_IPV6, PROTO_UDP};
use tandem_esp::{Error, InboundSa, Mode, Received, Sad, Suite};
use tandem_fuzz::{SaSpec, endpoints, keymat, params, provider, push_ipv4_header, push_ipv6_header};

const SPI: u32 = 0x0bad_cafe;
/// Packets per input that are processed.
const MAX_PACKETS: usize = 8;

#[derive(Arbitrary, Debug)]
struct Input {
    suite: u8,
    transport: bool,
    esn: bool,
    window: u16,
    sa_provider: u8,
    seal_provider: u8,
    outer: Outer,
    packets: Vec<Packet>,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Outer {
    /// SPI to ICV, into `Sad::decapsulate`.
    Esp,
    /// Raw ESP in IPv4 with `options` (modulo 11) words of IP options.
    Ipv4 { options: u8 },
    /// Raw ESP in IPv6.
    Ipv6,
    /// UDP/4500-encapsulated ESP in IPv4.
    Udp4,
    /// UDP/4500-encapsulated ESP in IPv6.
    Udp6,
}

#[derive(Arbitrary, Debug)]
struct Packet {
    seq: u32,
    iv: [u8; 16],
    inner: Inner,
    payload: Vec<u8>,
    trailer: Trailer,
    /// Send a copy with `octet[at % len] ^= mask` first (mask 0: none).
    tamper: (u16, u8),
}

/// What goes before the payload: nothing, or an inner IP header (so tunnel
/// mode gets past its inner-header check) whose length field is the real
/// length plus `delta` (negative: TFC padding; positive: truncated).
#[derive(Arbitrary, Debug)]
enum Inner {
    None,
    Ipv4 { protocol: u8, delta: i8 },
    Ipv6 { protocol: u8, delta: i8 },
}

#[derive(Arbitrary, Debug)]
enum Trailer {
    /// The payload is the whole plaintext, trailer included; zeros are
    /// appended up to the suite's alignment when `align` is set.
    Raw { align: bool },
    /// RFC 4303 padding (1, 2, 3...) to the alignment plus `extra` blocks,
    /// then pad length and next header.
    Proper { next_header: u8, extra: u8 },
    /// As `Proper`, with the next header that fits the inner header: 4 or
    /// 41 after an IPv4 or IPv6 header, UDP after none.
    Matching { extra: u8 },
}

enum Sealer {
    Aead(SaltedAead),
    Cbc(Box<(AesCbc, Integrity)>),
}

fuzz_target!(|input: Input| run(input));

fn run(input: Input) {
    let suite = Suite::ALL[usize::from(input.suite) % Suite::ALL.len()];
    let v6 = matches!(input.outer, Outer::Ipv6 | Outer::Udp6);
    let spec = SaSpec {
        spi: SPI,
        suite,
        provider: usize::from(input.sa_provider),
        mode: if input.transport { Mode::Transport } else { Mode::Tunnel },
        esn: input.esn,
        v6,
        window: u32::from(input.window) + 1,
    };
    let km = keymat(SPI, suite);
    let Ok(sa) = InboundSa::new(&params(&spec, &km, false, false)) else {
        panic!("valid SA parameters refused: {spec:?}");
    };
    let mut sad = Sad::new(1);
    sad.insert_inbound(sa).expect("empty SAD");
    let sealer = match suite {
        Suite::Aead(a) => Sealer::Aead(
            SaltedAead::new(provider(usize::from(input.seal_provider)), a, &km).expect("AEAD keymat"),
        ),
        Suite::CbcHmac(c, i) => {
            let (ek, ik) = km.split_at(c.key_len());
            Sealer::Cbc(Box::new((
                AesCbc::new(c, ek).expect("CBC key"),
                Integrity::new(i, ik).expect("HMAC key"),
            )))
        }
    };

    for p in input.packets.iter().take(MAX_PACKETS) {
        let window = sad.inbound(SPI).expect("installed").replay_window();
        let seq = window.infer(p.seq, spec.esn).unwrap_or(u64::from(p.seq));
        let plaintext = plaintext(suite, p);
        let (packet, esp) = seal(&sealer, &spec, input.outer, seq, &p.iv, &plaintext);

        let (at, mask) = p.tamper;
        if mask != 0 {
            let mut forged = packet.clone();
            forged[esp.start + usize::from(at) % esp.len()] ^= mask;
            let r = feed(&mut sad, input.outer, &mut forged, esp.clone());
            assert!(r.is_err(), "forged packet accepted: {r:?}");
        }

        let mut buf = packet.clone();
        let r = feed(&mut sad, input.outer, &mut buf, esp.clone());
        let d = match r {
            Ok(Received::Plaintext(d)) => d,
            Ok(other) => panic!("ESP packet received as {other:?}"),
            Err(_) => continue,
        };
        assert_eq!(d.spi, SPI);
        assert!(d.range.start <= d.range.end && d.range.end <= buf.len(), "{d:?} outside the buffer");
        assert_eq!(Some(&d.next_header), plaintext.last(), "next header");
        let ct_start = esp.start + 8 + suite.iv_len();
        let got = &buf[d.range.clone()];
        if input.outer == Outer::Esp || spec.mode == Mode::Tunnel {
            assert_eq!(d.range.start, ct_start, "plaintext does not start after the IV");
            assert_eq!(got, &plaintext[..got.len()], "plaintext differs from what was sealed");
        } else {
            // Transport mode with an IP header: the outer header is moved up
            // to the plaintext and rewritten.
            let h = IpHeader::parse(got).expect("rebuilt IP header parses");
            assert_eq!(h.total_len, got.len(), "rebuilt IP length");
            assert_eq!(h.protocol, d.next_header, "rebuilt IP protocol");
            assert_eq!(d.range.end - ct_start, got.len() - h.header_len);
            assert_eq!(&got[h.header_len..], &plaintext[..got.len() - h.header_len], "payload differs");
        }
        if spec.mode == Mode::Tunnel {
            let h = IpHeader::parse(got).expect("tunnel-mode plaintext is an IP packet");
            assert_eq!(h.total_len, got.len(), "TFC padding not stripped");
        }

        let mut again = packet.clone();
        let r = feed(&mut sad, input.outer, &mut again, esp.clone());
        assert_eq!(r, Err(Error::Replay), "accepted twice");
    }
}

/// The plaintext of one packet: payload, padding, pad length, next header.
fn plaintext(suite: Suite, p: &Packet) -> Vec<u8> {
    let mut pt = Vec::new();
    let (src, dst) = endpoints(matches!(p.inner, Inner::Ipv6 { .. }));
    let len = |header: usize, delta: i8| {
        let len = (header + p.payload.len()).saturating_add_signed(delta.into());
        u16::try_from(len).unwrap_or(u16::MAX)
    };
    match (&p.inner, src, dst) {
        (Inner::None, ..) => {}
        (&Inner::Ipv4 { protocol, delta }, IpAddr::V4(s), IpAddr::V4(d)) => {
            push_ipv4_header(&mut pt, s, d, protocol, len(20, delta), 0)
        }
        (&Inner::Ipv6 { protocol, delta }, IpAddr::V6(s), IpAddr::V6(d)) => {
            push_ipv6_header(&mut pt, s, d, protocol, len(0, delta))
        }
        _ => unreachable!("endpoints follow the requested family"),
    }
    pt.extend_from_slice(&p.payload);
    let (next_header, extra) = match p.trailer {
        Trailer::Raw { align } => {
            if align {
                pt.resize(pt.len().div_ceil(suite.align()) * suite.align(), 0);
            }
            return pt;
        }
        Trailer::Proper { next_header, extra } => (next_header, extra),
        Trailer::Matching { extra } => match p.inner {
            Inner::Ipv4 { .. } => (PROTO_IPV4, extra),
            Inner::Ipv6 { .. } => (PROTO_IPV6, extra),
            Inner::None => (PROTO_UDP, extra),
        },
    };
    let align = suite.align();
    let base = (align - (pt.len() + 2) % align) % align;
    // The largest pad length that fits an octet and keeps the alignment.
    let max = 255 - (255 - base) % align;
    let pad = (base + usize::from(extra) * align).min(max);
    pt.extend((1..=pad).map(|i| i as u8));
    pt.extend_from_slice(&[pad as u8, next_header]);
    pt
}

/// Seals `plaintext` and frames it; returns the packet and the ESP range.
fn seal(
    sealer: &Sealer,
    spec: &SaSpec,
    outer: Outer,
    seq: u64,
    iv: &[u8; 16],
    plaintext: &[u8],
) -> (Vec<u8>, core::ops::Range<usize>) {
    let mut esp = Vec::new();
    esp.extend_from_slice(&SPI.to_be_bytes());
    esp.extend_from_slice(&(seq as u32).to_be_bytes());
    match sealer {
        Sealer::Aead(a) => {
            let iv: [u8; 8] = iv[..8].try_into().expect("8 octets");
            esp.extend_from_slice(&iv);
            let mut aad = SPI.to_be_bytes().to_vec();
            if spec.esn {
                aad.extend_from_slice(&seq.to_be_bytes());
            } else {
                aad.extend_from_slice(&(seq as u32).to_be_bytes());
            }
            let mut ct = plaintext.to_vec();
            let tag = a.seal(&iv, &aad, &mut ct).expect("AEAD seal");
            esp.extend_from_slice(&ct);
            esp.extend_from_slice(&tag);
        }
        Sealer::Cbc(k) => {
            let (cbc, integ) = &**k;
            esp.extend_from_slice(iv);
            let mut ct = plaintext.to_vec();
            // Unaligned plaintext stays as it is: the SA must refuse it.
            let _ = cbc.encrypt(iv, &mut ct);
            esp.extend_from_slice(&ct);
            let hi = ((seq >> 32) as u32).to_be_bytes();
            let esn: &[u8] = if spec.esn { &hi } else { &[] };
            let icv = integ.compute(&[&esp, esn]);
            esp.extend_from_slice(&icv[..spec.suite.icv_len()]);
        }
    }

    let (sender, receiver) = endpoints(spec.v6);
    let mut packet = Vec::new();
    let udp = matches!(outer, Outer::Udp4 | Outer::Udp6);
    let body = esp.len() + if udp { 8 } else { 0 };
    let proto = if udp { PROTO_UDP } else { PROTO_ESP };
    match (outer, sender, receiver) {
        (Outer::Esp, ..) => {}
        (Outer::Ipv4 { .. } | Outer::Udp4, IpAddr::V4(s), IpAddr::V4(d)) => {
            let options = match outer {
                Outer::Ipv4 { options } => usize::from(options % 11) * 4,
                _ => 0,
            };
            let total = u16::try_from(20 + options + body).unwrap_or(u16::MAX);
            push_ipv4_header(&mut packet, s, d, proto, total, options);
        }
        (Outer::Ipv6 | Outer::Udp6, IpAddr::V6(s), IpAddr::V6(d)) => {
            push_ipv6_header(&mut packet, s, d, proto, u16::try_from(body).unwrap_or(u16::MAX));
        }
        _ => unreachable!("endpoints follow the framing's family"),
    }
    if udp {
        tandem_fuzz::push_udp_header(&mut packet, 4500, 4500, esp.len());
    }
    let start = packet.len();
    packet.extend_from_slice(&esp);
    (packet, start..start + esp.len())
}

fn feed(
    sad: &mut Sad,
    outer: Outer,
    buf: &mut [u8],
    esp: core::ops::Range<usize>,
) -> Result<Received, Error> {
    if outer == Outer::Esp {
        sad.decapsulate(buf, esp).map(Received::Plaintext)
    } else {
        let len = buf.len();
        sad.receive(buf, 0..len)
    }
}
