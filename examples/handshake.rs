//! Two IKEv2 endpoints in one process: the initiator and the responder
//! negotiate an IKE SA and a CHILD_SA with a pre-shared key, then ESP SAs
//! keyed from the result carry a packet. Shows how a driver runs the
//! sans-IO cores: feed datagrams in, drain transmits and events, follow the
//! timer.
//!
//! Run with `cargo run --example handshake`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use tandem_crypto::proposal::{EncrAlgorithm, ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundSa, SaParams, Suite, TAILROOM};
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, ChildSa, Endpoint, Event, Identity, IkeConfig};

fn config(id: &str, local: [u8; 4], remote: [u8; 4]) -> Result<IkeConfig, String> {
    let net =
        |a: [u8; 4]| TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4([a[0], a[1], a[2], 255].into()));
    let esp = parse_proposals(ProposalKind::Esp, "aes256gcm16").map_err(|e| e.to_string())?;
    let ike =
        parse_proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519").map_err(|e| e.to_string())?;
    let child = ChildConfig::new(esp, vec![net(local)], vec![net(remote)]);
    Ok(IkeConfig::new(ike, Identity::fqdn(id), SecretBytes::from_slice(b"example psk"), child))
}

fn main() -> Result<(), String> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    // A real driver reads the clock; the cores only ever receive `now`.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let client = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500);
    let gateway = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
    let mut initiator = Endpoint::new(config("client.example", [10, 1, 0, 0], [198, 51, 100, 0])?);
    let mut responder = Endpoint::new(config("gw.example", [198, 51, 100, 0], [10, 1, 0, 0])?);

    initiator.initiate(now, &mut rng, client, gateway).map_err(|e| e.to_string())?;
    let mut children: Vec<(&str, ChildSa)> = Vec::new();
    // Deliver datagrams until both sides are quiet (a socket loop would do
    // the same, and call handle_timeout when poll_timeout's instant comes).
    loop {
        let mut moved = false;
        while let Some(t) = initiator.poll_transmit() {
            moved = true;
            println!("client  -> gateway  {} octets", t.data.len());
            responder
                .handle_datagram(now, &mut rng, t.remote, t.local, &t.data)
                .map_err(|e| e.to_string())?;
        }
        while let Some(t) = responder.poll_transmit() {
            moved = true;
            println!("gateway -> client   {} octets", t.data.len());
            initiator
                .handle_datagram(now, &mut rng, t.remote, t.local, &t.data)
                .map_err(|e| e.to_string())?;
        }
        for (who, ep) in [("client", &mut initiator), ("gateway", &mut responder)] {
            while let Some(e) = ep.poll_event() {
                match e {
                    Event::ChildSaEstablished(c) => {
                        println!("{who}: CHILD_SA in {:#010x} out {:#010x}", c.inbound_spi, c.outbound_spi);
                        children.push((who, c));
                    }
                    other => println!("{who}: {other:?}"),
                }
            }
        }
        if !moved {
            break;
        }
    }

    // ESP from the client's outbound SA to the gateway's inbound SA.
    let (Some((_, c)), Some((_, g))) =
        (children.iter().find(|(w, _)| *w == "client"), children.iter().find(|(w, _)| *w == "gateway"))
    else {
        return Err("the CHILD_SA did not come up".into());
    };
    let EncrAlgorithm::Aead(alg) = c.encr else { return Err("expected an AEAD".into()) };
    let suite = Suite::Aead(alg);
    let out = SaParams::new(c.outbound_spi, suite, c.dangerous_outbound_keymat(), client.ip(), gateway.ip());
    let mut tx = OutboundSa::new(&out, &mut rng).map_err(|e| e.to_string())?;
    let inp = SaParams::new(g.inbound_spi, suite, g.dangerous_inbound_keymat(), gateway.ip(), client.ip());
    let mut rx = InboundSa::new(&inp).map_err(|e| e.to_string())?;
    let packet = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 59, 0, 0, 10, 1, 0, 5, 198, 51, 100, 10];
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
    let esp = tx
        .encapsulate(&mut buf, HEADROOM..HEADROOM + packet.len(), Framing::Esp)
        .map_err(|e| e.to_string())?;
    println!("ESP packet of {} octets, SPI {:#010x}", esp.len(), c.outbound_spi);
    let d = rx.decapsulate(&mut buf, esp).map_err(|e| e.to_string())?;
    if buf[d.range] != packet[..] {
        return Err("the packet did not come back intact".into());
    }
    println!("the gateway decrypted the client's packet: the tunnel works");
    Ok(())
}
