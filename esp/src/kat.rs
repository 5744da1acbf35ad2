//! Known-answer tests of whole ESP packets, byte for byte:
//! draft-mcgrew-gcm-test-01 section 4 (AES-GCM) and RFC 7634 Appendix A
//! (ChaCha20-Poly1305). A unit test, because the vectors fix the explicit IV,
//! which the public API never lets a caller choose.

#[path = "../tests/vectors/mod.rs"]
mod vectors;

use crate::wire::{PROTO_IPV4, PROTO_IPV6};
use crate::{AeadAlgorithm, Framing, InboundSa, Mode, OutboundSa, Provider, SaParams, Sad, Suite};
use core::net::{IpAddr, Ipv4Addr};
use vectors::{ESP_VECTORS, EspVector};

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("vector hex is valid")
}

fn suite(v: &EspVector) -> Suite {
    Suite::Aead(match v.alg {
        "aes128gcm16" => AeadAlgorithm::Aes128Gcm16,
        "aes256gcm16" => AeadAlgorithm::Aes256Gcm16,
        "chacha20poly1305" => AeadAlgorithm::ChaCha20Poly1305,
        other => panic!("unknown vector algorithm {other}"),
    })
}

/// The vector's payload and next header: tunnel mode when the next header is
/// IP-in-IP, transport mode otherwise (the draft's packets say ICMP).
fn split(v: &EspVector) -> (Vec<u8>, u8, Mode) {
    let pt = hex(v.plaintext);
    let nh = pt[pt.len() - 1];
    let mode = if nh == PROTO_IPV4 || nh == PROTO_IPV6 { Mode::Tunnel } else { Mode::Transport };
    (pt[..v.inner_len].to_vec(), nh, mode)
}

fn params<'a>(v: &EspVector, keymat: &'a [u8], provider: Provider, mode: Mode) -> SaParams<'a> {
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let mut p = SaParams::new(v.spi, suite(v), keymat, a, b);
    p.provider = provider;
    p.mode = mode;
    p.esn = v.esn;
    p
}

#[test]
fn encapsulates_vectors_byte_for_byte() {
    for v in ESP_VECTORS {
        let keymat = [hex(v.key), hex(v.salt)].concat();
        let (payload, nh, mode) = split(v);
        let mut iv = [0u8; 8];
        iv.copy_from_slice(&hex(v.iv));
        for &provider in Provider::available() {
            let p = params(v, &keymat, provider, mode);
            let mut out = OutboundSa::new(&p, &mut rand_core::UnwrapErr(ZeroRng)).expect("valid SA");
            out.advance_seq_to(v.seq);
            // In transport mode the payload follows an IP header whose
            // protocol becomes the next header; ESP framing drops the header.
            let mut inner = Vec::new();
            if mode == Mode::Transport {
                let total = (20 + payload.len()) as u16;
                inner.extend_from_slice(&[
                    0x45, 0, 0, 0, 0, 0, 0, 0, 64, nh, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
                ]);
                inner[2..4].copy_from_slice(&total.to_be_bytes());
            }
            inner.extend_from_slice(&payload);
            let mut buf = vec![0u8; crate::HEADROOM + inner.len() + crate::TAILROOM];
            let r = crate::HEADROOM..crate::HEADROOM + inner.len();
            buf[r.clone()].copy_from_slice(&inner);
            let esp = out.encap(&mut buf, r, Framing::Esp, Some(iv)).expect("encapsulates");
            assert_eq!(hex::encode(&buf[esp]), v.packet, "{} ({})", v.name, provider.name());
        }
    }
}

#[test]
fn decapsulates_vectors() {
    for v in ESP_VECTORS {
        let keymat = [hex(v.key), hex(v.salt)].concat();
        let (payload, nh, mode) = split(v);
        for &provider in Provider::available() {
            let p = params(v, &keymat, provider, mode);
            let mut inb = InboundSa::new(&p).expect("valid SA");
            // Bring the window to just below the vector's number so the
            // high ESN bits are inferred as the vector has them.
            if v.seq > 1 {
                inb.replay.accept(v.seq - 1).expect("fresh window");
            }
            let mut sad = Sad::new(0);
            sad.insert_inbound(inb).expect("insert");
            let mut buf = hex(v.packet);
            let n = buf.len();
            let d = sad.decapsulate(&mut buf, 0..n).unwrap_or_else(|e| panic!("{}: {e}", v.name));
            assert_eq!(buf[d.range].to_vec(), payload, "{} ({})", v.name, provider.name());
            assert_eq!(d.next_header, nh);
            // The same packet again is a replay.
            let mut buf = hex(v.packet);
            assert_eq!(sad.decapsulate(&mut buf, 0..n), Err(crate::Error::Replay));
        }
    }
}

/// AEAD SAs never draw from the RNG; this one proves it by being useless.
struct ZeroRng;

impl rand_core::TryRng for ZeroRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ZeroRng {}
