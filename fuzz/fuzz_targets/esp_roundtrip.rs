//! Arbitrary bytes as an inner packet through `OutboundSa::encapsulate`
//! (IP framing) and back through `Sad::receive`: whatever encapsulates must
//! decapsulate to the same inner packet, once.
//!
//! Input: `config`, `plan`, then `packets - 1` little-endian u32 sequence
//! jumps, then the inner packet.
//! - `config`: bits 0-3 suite (modulo 9), bit 4 transport mode, bit 5 ESN,
//!   bit 6 IPv6 tunnel endpoints, bit 7 UDP encapsulation.
//! - `plan`: bits 0-1 packets - 1, bit 2 outbound provider, bit 3 inbound
//!   provider, bits 4-5 replay window (1, 32, 1024, 65536).
//!
//! The inner packet is sent `packets` times; before each resend the sender
//! jumps ahead by up to 2^31 - 1 sequence numbers, which an ESN receiver
//! can still place (several jumps cross into the next 2^32 subspace).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_esp::wire::{IpHeader, PROTO_IPV4, PROTO_IPV6, PROTO_NONE};
use tandem_esp::{Error, Framing, HEADROOM, Mode, Received, Sad, Suite, TAILROOM};
use tandem_fuzz::{SaSpec, inbound_sa, outbound_sa};

const SPI: u32 = 0x4500_4500;

fuzz_target!(|data: &[u8]| {
    let [config, plan, rest @ ..] = data else { return };
    let packets = 1 + usize::from(plan & 3);
    let spec = SaSpec {
        spi: SPI,
        suite: Suite::ALL[usize::from(config & 0x0f) % Suite::ALL.len()],
        provider: 0,
        mode: if config & 0x10 != 0 { Mode::Transport } else { Mode::Tunnel },
        esn: config & 0x20 != 0,
        v6: config & 0x40 != 0,
        window: [1, 32, 1024, 65536][usize::from(plan >> 4) & 3],
    };
    let udp = config & 0x80 != 0;
    let mut out = outbound_sa(&SaSpec { provider: usize::from(plan >> 2) & 1, ..spec }, udp);
    let mut sad = Sad::new(7);
    sad.insert_inbound(inbound_sa(&SaSpec { provider: usize::from(plan >> 3) & 1, ..spec }))
        .expect("empty SAD");

    let (jumps, inner) = rest.split_at((4 * (packets - 1)).min(rest.len()));
    let mut jumps = jumps.chunks_exact(4).map(|j| u32::from_le_bytes([j[0], j[1], j[2], j[3]]) & 0x7fff_ffff);
    for i in 0..packets {
        if i > 0 {
            let jump = jumps.next().unwrap_or(0);
            out.advance_seq_to(out.next_seq() + u64::from(jump));
        }
        let seq = out.next_seq();
        let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
        buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(inner);
        let enc = match out.encapsulate(&mut buf, HEADROOM..HEADROOM + inner.len(), Framing::Ip) {
            Ok(r) => r,
            Err(Error::NoRoom) => {
                assert!(
                    inner.len() > usize::from(u16::MAX) - HEADROOM - TAILROOM,
                    "NoRoom with full head/tailroom"
                );
                return;
            }
            Err(_) => return,
        };
        assert!(enc.start <= enc.end && enc.end <= buf.len(), "encapsulated {enc:?} outside the buffer");
        let h = IpHeader::parse(inner).expect("encapsulated, so the inner header parsed");
        let sent = buf[enc.clone()].to_vec();

        let r = sad.receive(&mut buf, enc.clone());
        let mut again = sent.clone();
        let len = again.len();
        let d = match r {
            Ok(Received::Plaintext(d)) => d,
            // A transport-mode packet whose protocol is "no next header"
            // goes out as a dummy packet, which the receiver drops.
            Err(Error::Dummy) if spec.mode == Mode::Transport && h.protocol == PROTO_NONE => {
                assert_eq!(sad.receive(&mut again, 0..len), Err(Error::Replay), "accepted twice");
                continue;
            }
            other => panic!(
                "packet {i} (seq {seq:#x}) of {spec:?} udp {udp}: encapsulated but received as {other:?}"
            ),
        };
        assert_eq!(d.spi, SPI);
        assert!(d.range.start <= d.range.end && d.range.end <= buf.len(), "{d:?} outside the buffer");
        let got = &buf[d.range.clone()];
        let want = &inner[..h.total_len];
        match spec.mode {
            Mode::Tunnel => {
                let nh = if h.src.is_ipv4() { PROTO_IPV4 } else { PROTO_IPV6 };
                assert_eq!(d.next_header, nh, "tunnel next header");
                assert_eq!(got, want, "tunnel-mode inner packet changed");
            }
            Mode::Transport => {
                assert_eq!(d.next_header, h.protocol, "transport next header");
                assert_eq!(got.len(), want.len(), "transport-mode packet length changed");
                // The receiver recomputes the IPv4 header checksum; every
                // other octet comes back as sent.
                let mut got = got.to_vec();
                if h.src.is_ipv4() {
                    got[10..12].copy_from_slice(&want[10..12]);
                }
                assert_eq!(got, want, "transport-mode packet changed");
            }
        }

        assert_eq!(sad.receive(&mut again, 0..len), Err(Error::Replay), "accepted twice");
    }
});
