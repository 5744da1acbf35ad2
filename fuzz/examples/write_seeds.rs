//! Writes the checked-in seed corpus under `fuzz/seeds/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`.
//!
//! The ESP seeds are valid packets for the fuzz fixtures' SAs (see
//! `src/lib.rs`), so the fuzzer starts from packets that authenticate and
//! mutates the parts the ICV does not cover. The output is deterministic.

use std::fs;
use std::path::Path;
use tandem_crypto::kex::{DhGroup, KeyExchange};
use tandem_esp::{Framing, HEADROOM, Mode, TAILROOM};
use tandem_fuzz::{RECEIVE_FIXTURE, outbound_sa, udp_packet};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    // Clear only the targets written here; other targets' seeds (such as
    // ike_message's) are kept.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for target in ["esp_receive", "esp_roundtrip", "ip_header", "kex_peer_value", "proposal"] {
        let dir = seeds.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("clear old seeds");
        }
    }

    // esp_receive: one packet per fixture SA and framing, plus IKE and a
    // NAT-keepalive.
    for (i, s) in RECEIVE_FIXTURE.iter().enumerate() {
        // Transport mode needs an inner packet of the SA's family.
        let v6 = if s.mode == Mode::Transport { s.v6 } else { i % 2 == 0 };
        let inner = udp_packet(v6, 1024 + i as u16, 53, 20 + 7 * i);
        for (udp, framing, name) in
            [(false, Framing::Ip, "ip"), (true, Framing::Ip, "udp"), (false, Framing::Esp, "esp")]
        {
            let mut out = outbound_sa(s, udp);
            let mut buf = vec![0u8; HEADROOM + inner.len() + TAILROOM];
            buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(&inner);
            let r =
                out.encapsulate(&mut buf, HEADROOM..HEADROOM + inner.len(), framing).expect("encapsulates");
            write("esp_receive", &format!("sa{i}-{name}"), &buf[r]);
        }
    }
    let ike = [0x11u8; 28];
    let with_udp = |v6: bool, dport: u16, body: &[u8]| {
        let mut p = udp_packet(v6, 4500, dport, body.len());
        let start = p.len() - body.len();
        p[start..].copy_from_slice(body);
        p
    };
    write("esp_receive", "ike500", &with_udp(false, 500, &ike));
    let mut marked = vec![0u8; 4];
    marked.extend_from_slice(&ike);
    write("esp_receive", "ike4500", &with_udp(true, 4500, &marked));
    write("esp_receive", "keepalive", &with_udp(false, 4500, &[0xff]));

    // esp_roundtrip: config, plan, jumps, inner packet.
    let cases: [(u8, u8, &[u32], bool); 6] = [
        (0x00, 0x00, &[], false),
        (0x23, 0x12, &[0x7fff_ffff, 0x7fff_ffff], true),
        (0x52, 0x04, &[], true),
        (0x85, 0x2d, &[1000], false),
        (0xb8, 0x3b, &[5, 0x7000_0000, 0x7fff_0000], false),
        (0x21, 0x01, &[16], false),
    ];
    for (i, (config, plan, jumps, v6)) in cases.into_iter().enumerate() {
        let mut seed = vec![config, plan];
        for j in jumps {
            seed.extend_from_slice(&j.to_le_bytes());
        }
        seed.extend_from_slice(&udp_packet(v6, 4000, 4001, 13 * i));
        write("esp_roundtrip", &format!("case{i}"), &seed);
    }

    // ip_header: IPv4 and IPv6 packets, a fragment, UDP/4500 payloads.
    write("ip_header", "v4", &udp_packet(false, 4500, 500, 12));
    write("ip_header", "v6", &udp_packet(true, 1, 443, 3));
    let mut frag = udp_packet(false, 1, 2, 8);
    frag[6] = 0x20;
    frag[7] = 0x08;
    write("ip_header", "v4-fragment", &frag);
    write("ip_header", "ike-marker", &marked);

    // proposal: typical strings.
    for (i, s) in [
        "aes256gcm16-prfsha256-x25519",
        "aes128-sha256-modp2048,aes256gcm16-ecp384",
        "aes256-sha512-sha384-prfsha512-ecp256-modp3072",
        "chacha20poly1305-esn-noesn, aes128gcm-x25519",
        "aes-sha2_256-curve25519",
    ]
    .iter()
    .enumerate()
    {
        write("proposal", &format!("p{i}"), s.as_bytes());
    }

    // kex_peer_value: a valid public value of every group.
    let mut rng = tandem_fuzz::rng(99);
    for g in DhGroup::ALL {
        write("kex_peer_value", g.name(), KeyExchange::generate(g, &mut rng).public_value());
    }
}
