//! Writes the checked-in seed corpus under `fuzz/seeds/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`.
//!
//! The ESP seeds are valid packets for the fuzz fixtures' SAs (see
//! `src/lib.rs`), so the fuzzer starts from packets that authenticate and
//! mutates the parts the ICV does not cover. The output is deterministic.

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, SocketAddr};
use rand_core::SeedableRng;
use std::fs;
use std::path::Path;
use std::time::Instant;
use tandem_crypto::kex::{DhGroup, KeyExchange};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_esp::{Framing, HEADROOM, Mode, TAILROOM};
use tandem_fuzz::{RECEIVE_FIXTURE, outbound_sa, udp_packet};
use tandem_ike::config::Lifetime;
use tandem_ike::sync::{SyncEvent, TimeBase, encode_child};
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Identity, IkeConfig};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).expect("create seed dir");
    fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    // Clear only the targets written here; other targets' seeds (such as
    // ike_message's) are kept.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for target in
        ["esp_receive", "esp_roundtrip", "ip_header", "kex_peer_value", "proposal", "ike_sync_state"]
    {
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

    // ike_sync_state: the IKE SA and CHILD_SA states a gateway syncs, for
    // an AEAD and a CBC + HMAC suite, with and without lifetimes.
    for (n, (ike, esp, lifetimes)) in [
        ("aes256gcm16-prfsha256-x25519", "aes256gcm16", true),
        ("aes128-sha384-prfsha384-ecp256", "aes128-sha256", false),
    ]
    .into_iter()
    .enumerate()
    {
        for (kind, state) in sync_states(ike, esp, lifetimes).into_iter().enumerate() {
            write("ike_sync_state", &format!("suite{n}-{kind}"), &state);
        }
    }
}

/// Runs IKE_SA_INIT and IKE_AUTH between two endpoints, the responder
/// syncing, and returns its IKE SA state and CHILD_SA as encoded.
fn sync_states(ike: &str, esp: &str, lifetimes: bool) -> Vec<Vec<u8>> {
    let config = |id: &str, local: [u8; 4], remote: [u8; 4]| {
        let ts = |a: [u8; 4]| {
            TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4([a[0], a[1], a[2], 255].into()))
        };
        let proposals = parse_proposals(ProposalKind::Esp, esp).expect("ESP proposal");
        let mut child = ChildConfig::new(proposals, vec![ts(local)], vec![ts(remote)]);
        child.lifetime = lifetimes.then_some(Lifetime::CHILD_DEFAULT);
        let proposals = parse_proposals(ProposalKind::Ike, ike).expect("IKE proposal");
        let mut c = IkeConfig::new(proposals, Identity::fqdn(id), SecretBytes::from_slice(b"seed"), child);
        c.lifetime = lifetimes.then_some(Lifetime::IKE_DEFAULT);
        c.sync = true;
        c
    };
    let (i_addr, r_addr) =
        (SocketAddr::from(([192, 0, 2, 10], 500)), SocketAddr::from(([192, 0, 2, 1], 500)));
    let mut client = Endpoint::new(config("client", [10, 1, 0, 0], [198, 51, 100, 0]));
    let mut gateway = Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0]));
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    // Deadlines are encoded relative to `now`: the seeds do not depend on it.
    let now = Instant::now();
    let base = TimeBase { now, now_ms: 1_780_272_000_000 };
    client.initiate(now, &mut rng, i_addr, r_addr).expect("initiate");
    for _ in 0..4 {
        while let Some(t) = client.poll_transmit() {
            let _ = gateway.handle_datagram(now, &mut rng, t.remote, t.local, &t.data);
        }
        while let Some(t) = gateway.poll_transmit() {
            let _ = client.handle_datagram(now, &mut rng, t.remote, t.local, &t.data);
        }
    }
    let mut out = Vec::new();
    while let Some(e) = gateway.poll_sync() {
        match e {
            SyncEvent::IkeSa(state) => out.push(state.encode(&base).expose().to_vec()),
            SyncEvent::ChildAdded { child, rekey_at, expire_at, .. } => {
                out.push(encode_child(&child, rekey_at, expire_at, &base).expose().to_vec())
            }
            _ => {}
        }
    }
    // The state as of now, with the last exchange.
    let sa = gateway.sa_ids().next().expect("an IKE SA");
    out.push(gateway.snapshot(sa).expect("established").encode(&base).expose().to_vec());
    assert_eq!(out.len(), 3, "the state at IKE_AUTH, the CHILD_SA, the state now");
    out
}
