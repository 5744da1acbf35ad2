//! `tandem demo esp`: two endpoints in one process agree on keys and pass
//! traffic through userspace ESP, then a replayed and a forged packet are
//! refused and the counters printed.

use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;
use tandem_crypto::kex::KeyExchange;
use tandem_crypto::proposal::{EncrAlgorithm, ProposalKind, parse_proposals};
use tandem_esp::{
    Framing, HEADROOM, InboundSa, OutboundSa, Policy, Provider, Received, SaParams, SaStats, Sad, Spd, Suite,
    TAILROOM, TrafficSelector,
};

/// Options of `tandem demo esp`.
#[derive(Debug, Args)]
pub(crate) struct EspArgs {
    /// IKE proposal in strongSwan syntax: its PRF and key exchange are used.
    #[arg(long, default_value = "aes256gcm16-prfsha256-x25519")]
    ike_proposal: String,
    /// ESP proposal in strongSwan syntax.
    #[arg(long, default_value = "aes128gcm16")]
    esp_proposal: String,
    /// Packets to send through the tunnel.
    #[arg(long, default_value_t = 200_000)]
    packets: u64,
    /// Inner packet size in octets (28..=65000).
    #[arg(long, default_value_t = 1400)]
    size: usize,
}

use super::DemoResult;

pub(crate) fn run(args: &EspArgs) -> DemoResult<()> {
    if !(28..=65_000).contains(&args.size) {
        return Err(format!("--size {} is outside 28..=65000", args.size));
    }
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    println!("tandem demo: userspace ESP in one process (no root, no network)\n");

    // 1. Proposals, as an operator writes them.
    let ike = first(parse_proposals(ProposalKind::Ike, &args.ike_proposal).map_err(|e| e.to_string())?)?;
    let esp = first(parse_proposals(ProposalKind::Esp, &args.esp_proposal).map_err(|e| e.to_string())?)?;
    let (Some(&prf), Some(&group), Some(&encr)) = (ike.prf.first(), ike.dh.first(), esp.encr.first()) else {
        return Err("proposals lack a PRF, a key exchange or an ESP cipher".into());
    };
    let suite = match encr {
        EncrAlgorithm::Aead(a) => Suite::Aead(a),
        EncrAlgorithm::Cbc(c) => {
            let i = *esp.integ.first().ok_or("a CBC proposal needs integrity")?;
            Suite::CbcHmac(c, i)
        }
    };
    println!("  IKE proposal   {ike}\n  ESP proposal   {esp}");

    // 2. Key exchange between initiator and responder, then SKEYSEED,
    //    SK_d and KEYMAT as RFC 7296 sections 2.14 and 2.17 derive them.
    let (i, r) = (KeyExchange::generate(group, &mut rng), KeyExchange::generate(group, &mut rng));
    let gir = i.shared_secret(r.public_value()).map_err(|e| e.to_string())?;
    if gir != r.shared_secret(i.public_value()).map_err(|e| e.to_string())? {
        return Err("the two sides derived different shared secrets".into());
    }
    let mut nonces = [0u8; 64];
    rand_core::Rng::fill_bytes(&mut rng, &mut nonces);
    let skeyseed = prf.prf(&nonces, &[gir.expose()]);
    let sk_d = prf.prf_plus(skeyseed.expose(), &nonces, prf.output_len()).map_err(|e| e.to_string())?;
    let keymat = prf.prf_plus(sk_d.expose(), &nonces, 2 * suite.keymat_len()).map_err(|e| e.to_string())?;
    // The first half keys initiator-to-responder, the one this demo sends.
    let (k_i2r, _k_r2i) = keymat.expose().split_at(suite.keymat_len());
    println!(
        "  key exchange   {} ({}-octet public values), shared secret agreed",
        group.name(),
        group.public_len()
    );
    println!("  CHILD_SA       {} tunnel, KEYMAT {} octets per direction", suite.name(), suite.keymat_len());

    // 3. SAs: the initiator's outbound is the responder's inbound.
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let gateway = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let spi = 0xc1a0_0001;
    let mut out_p = SaParams::new(spi, suite, k_i2r, client, gateway);
    out_p.udp_encap = Some(tandem_esp::UdpEncap { local_port: 4500, remote_port: 4500 });
    let mut outbound = OutboundSa::new(&out_p, &mut rng).map_err(|e| e.to_string())?;
    let mut in_p = SaParams::new(spi, suite, k_i2r, gateway, client);
    in_p.udp_encap = out_p.udp_encap;
    let mut sad = Sad::new(rand_core::Rng::next_u64(&mut rng));
    sad.insert_inbound(InboundSa::new(&in_p).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut spd = Spd::new();
    let remote_net =
        TrafficSelector::subnet(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)), 24).map_err(|e| e.to_string())?;
    spd.insert(Policy { local: TrafficSelector::ANY_V4, remote: remote_net, target: () });
    println!(
        "  SAs            SPI {spi:#010x} client -> gateway, UDP-encapsulated (RFC 3948), provider {}",
        Provider::preferred().name()
    );

    // 4. Traffic: a packet from 10.1.0.5 to 198.51.100.10 matches the policy,
    //    is encapsulated into a whole IPv4/UDP/ESP packet, and decapsulated.
    let mut buf = vec![0u8; HEADROOM + args.size + TAILROOM];
    let packet = HEADROOM..HEADROOM + args.size;
    let inner = inner_packet(args.size);
    let started = Instant::now();
    let mut last = Vec::new();
    for n in 0..args.packets {
        buf[packet.clone()].copy_from_slice(&inner);
        if spd.lookup(&buf[packet.clone()]).map_err(|e| e.to_string())?.is_none() {
            return Err("the policy did not match the demo packet".into());
        }
        let wire = outbound.encapsulate(&mut buf, packet.clone(), Framing::Ip).map_err(|e| e.to_string())?;
        if n + 1 == args.packets {
            last = buf[wire.clone()].to_vec();
        }
        match sad.receive(&mut buf, wire).map_err(|e| e.to_string())? {
            Received::Plaintext(d) if buf[d.range.clone()] == inner[..] => {}
            other => return Err(format!("packet {n} did not come back intact: {other:?}")),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let pps = args.packets as f64 / secs;
    println!(
        "\n  {} packets of {} octets: encapsulated, decapsulated and compared in {:.2} s",
        args.packets, args.size, secs
    );
    println!(
        "  = {:.2} Mpps, {:.2} Gbit/s of inner traffic on one core (both directions of work)",
        pps / 1e6,
        pps * args.size as f64 * 8.0 / 1e9
    );

    // 5. Attacks: the last packet again (replay), and a new packet with one
    //    bit of its ciphertext flipped (forgery).
    let mut replay = last;
    let n = replay.len();
    let verdict_replay = sad.receive(&mut replay, 0..n).err().map(|e| e.to_string());
    buf[packet.clone()].copy_from_slice(&inner);
    let wire = outbound.encapsulate(&mut buf, packet, Framing::Ip).map_err(|e| e.to_string())?;
    buf[wire.end - 20] ^= 1;
    let verdict_forged = sad.receive(&mut buf, wire).err().map(|e| e.to_string());
    println!("\n  replayed packet: {}", verdict_replay.as_deref().unwrap_or("ACCEPTED (bug)"));
    println!("  forged packet:   {}", verdict_forged.as_deref().unwrap_or("ACCEPTED (bug)"));

    let inb = sad.inbound(spi).ok_or("inbound SA vanished")?;
    println!();
    print_stats("out", spi, outbound.stats());
    print_stats("in ", spi, inb.stats());
    if verdict_replay.is_none() || verdict_forged.is_none() {
        return Err("an attack packet was accepted".into());
    }
    Ok(())
}

fn first<T>(mut v: Vec<T>) -> DemoResult<T> {
    if v.is_empty() { Err("empty proposal list".into()) } else { Ok(v.swap_remove(0)) }
}

fn print_stats(dir: &str, spi: u32, s: &SaStats) {
    let d = &s.drops;
    println!(
        "  SA {dir} {spi:#010x}: {} packets, {} bytes; drops: replay {}, too old {}, bad ICV {}, padding {}, other {}",
        s.packets,
        s.bytes,
        d.replay,
        d.too_old,
        d.bad_icv,
        d.bad_padding,
        d.total() - d.replay - d.too_old - d.bad_icv - d.bad_padding
    );
}

/// An IPv4/UDP packet of `size` octets from 10.1.0.5 to 198.51.100.10.
fn inner_packet(size: usize) -> Vec<u8> {
    let mut p = vec![0u8; size];
    p[..20].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 5, 198, 51, 100, 10]);
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    let sum = tandem_esp::wire::checksum_finish(tandem_esp::wire::checksum_add(0, &p[..20]));
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..26].copy_from_slice(&((size - 20) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}
