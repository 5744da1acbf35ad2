//! A cluster standby rebuilds IKE SAs from sync events alone, holds them
//! PASSIVE, and takes over: it answers the peer's next requests, answers a
//! retransmission from the synced last response, rekeys, and the CHILD_SA
//! keys it mirrored decrypt the peer's ESP traffic.

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use rand_core::SeedableRng;
use std::time::Instant;
use tandem_crypto::proposal::{EncrAlgorithm, ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::sync::SyncEvent;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Error, Event, Identity, IkeConfig, Transmit};

const I_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500);
const VIP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

#[allow(clippy::disallowed_methods)] // an origin for the virtual clock
fn origin() -> Instant {
    Instant::now()
}

fn config(id: &str, local: [u8; 4], remote: [u8; 4], sync: bool) -> IkeConfig {
    let ts =
        |a: [u8; 4]| TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4([a[0], a[1], a[2], 255].into()));
    let mut child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, "aes256gcm16").expect("ESP"),
        vec![ts(local)],
        vec![ts(remote)],
    );
    child.lifetime = None;
    let mut c = IkeConfig::new(
        parse_proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519").expect("IKE"),
        Identity::fqdn(id),
        SecretBytes::from_slice(b"cluster psk"),
        child,
    );
    c.dpd_delay = None;
    c.lifetime = None;
    c.sync = sync;
    c
}

/// The client, the owning gateway node and its standby.
struct Cluster {
    client: Endpoint,
    owner: Endpoint,
    standby: Endpoint,
    rng: ChaCha20Rng,
    now: Instant,
    client_events: Vec<Event>,
    standby_events: Vec<Event>,
    /// The last request the client sent and the owner's answer.
    last: Option<(Transmit, Vec<u8>)>,
}

impl Cluster {
    fn new() -> Self {
        let mut c = Cluster {
            client: Endpoint::new(config("client", [10, 1, 0, 0], [198, 51, 100, 0], false)),
            owner: Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)),
            standby: Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true)),
            rng: ChaCha20Rng::from_seed([3; 32]),
            now: origin(),
            client_events: Vec::new(),
            standby_events: Vec::new(),
            last: None,
        };
        c.client.initiate(c.now, &mut c.rng, I_ADDR, VIP).expect("initiate");
        c
    }

    /// Runs client <-> `to` until quiet, mirroring the owner to the standby.
    fn run(&mut self, to_standby: bool) {
        for _ in 0..20 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                let gw = if to_standby { &mut self.standby } else { &mut self.owner };
                let _ = gw.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
                if let Some(answer) = gw.poll_transmit() {
                    self.last = Some((t.clone(), answer.data.clone()));
                    let _ = self.client.handle_datagram(
                        self.now,
                        &mut self.rng,
                        answer.remote,
                        answer.local,
                        &answer.data,
                    );
                }
                while let Some(a) = gw.poll_transmit() {
                    let _ = self.client.handle_datagram(self.now, &mut self.rng, a.remote, a.local, &a.data);
                }
            }
            // Requests of the gateway side.
            let gw = if to_standby { &mut self.standby } else { &mut self.owner };
            while let Some(t) = gw.poll_transmit() {
                moved = true;
                let _ = self.client.handle_datagram(self.now, &mut self.rng, t.remote, t.local, &t.data);
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.standby.poll_event() {
                self.standby_events.push(e);
            }
            while self.owner.poll_event().is_some() {}
            // The sync channel.
            while let Some(s) = self.owner.poll_sync() {
                self.standby.apply_sync(self.now, &s).expect("standby applies every sync event");
            }
            if !moved {
                return;
            }
        }
    }
}

#[test]
fn a_standby_takes_over_from_sync_events_alone() {
    let mut c = Cluster::new();
    c.run(false);
    let ike = c.client.sa_ids().next().expect("client SA");
    let child = c
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::ChildSaEstablished(ch) => Some(ch.clone()),
            _ => None,
        })
        .expect("CHILD_SA up");
    // The standby mirrors the SA but stays silent while passive.
    let gw_sa = c.standby.sa_ids().next().expect("mirrored IKE SA");
    c.client.check_liveness(c.now, &mut c.rng, ike).expect("DPD");
    let probe = c.client.poll_transmit().expect("DPD request");
    assert_eq!(
        c.standby.handle_datagram(c.now, &mut c.rng, probe.remote, probe.local, &probe.data),
        Err(Error::Passive)
    );
    assert!(c.standby.poll_transmit().is_none());
    // The owner answers that one; its progress syncs to the standby.
    c.owner
        .handle_datagram(c.now, &mut c.rng, probe.remote, probe.local, &probe.data)
        .expect("owner answers");
    let answer = c.owner.poll_transmit().expect("answer");
    c.client.handle_datagram(c.now, &mut c.rng, answer.remote, answer.local, &answer.data).expect("accepted");
    c.last = Some((probe, answer.data));
    while let Some(s) = c.owner.poll_sync() {
        c.standby.apply_sync(c.now, &s).expect("applied");
    }

    // The owner dies; the standby takes the SA over.
    c.standby.activate(c.now, gw_sa).expect("activate");
    // A retransmission of the last request gets the owner's very answer.
    let (request, old_answer) = c.last.clone().expect("an exchange happened");
    c.standby
        .handle_datagram(c.now, &mut c.rng, request.remote, request.local, &request.data)
        .expect("handled");
    assert_eq!(
        c.standby.poll_transmit().map(|t| t.data),
        Some(old_answer),
        "answered from the synced response"
    );

    // New requests from the client: a liveness check and a CHILD_SA rekey.
    c.client.check_liveness(c.now, &mut c.rng, ike).expect("DPD");
    c.run(true);
    c.client.rekey_child(c.now, &mut c.rng, ike, child.inbound_spi).expect("rekey");
    c.run(true);
    let rekeyed = |events: &[Event]| {
        events.iter().find_map(|e| match e {
            Event::ChildSaRekeyed { new, .. } => Some((new.inbound_spi, new.outbound_spi)),
            _ => None,
        })
    };
    let (ci, si) =
        (rekeyed(&c.client_events).expect("client rekeyed"), rekeyed(&c.standby_events).expect("standby"));
    assert_eq!(ci, (si.1, si.0));
    assert!(
        !c.client_events.iter().any(|e| matches!(e, Event::IkeSaDeleted { .. } | Event::IkeSaFailed { .. }))
    );
}

#[test]
fn mirrored_child_keys_decrypt_the_peers_traffic() {
    use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundSa, SaParams, Suite, TAILROOM};
    let mut c = Cluster::new();
    // Capture the sync stream instead of applying it.
    c.owner = Endpoint::new(config("gw", [198, 51, 100, 0], [10, 1, 0, 0], true));
    let mut syncs = Vec::new();
    for _ in 0..10 {
        while let Some(t) = c.client.poll_transmit() {
            let _ = c.owner.handle_datagram(c.now, &mut c.rng, t.remote, t.local, &t.data);
        }
        while let Some(t) = c.owner.poll_transmit() {
            let _ = c.client.handle_datagram(c.now, &mut c.rng, t.remote, t.local, &t.data);
        }
        while let Some(s) = c.owner.poll_sync() {
            syncs.push(s);
        }
    }
    let client_child = std::iter::from_fn(|| c.client.poll_event())
        .find_map(|e| match e {
            Event::ChildSaEstablished(ch) => Some(ch),
            _ => None,
        })
        .expect("client CHILD_SA");
    assert!(matches!(syncs.first(), Some(SyncEvent::IkeSa(_))), "the full state comes first");
    let mirrored = syncs
        .iter()
        .find_map(|s| match s {
            SyncEvent::ChildAdded { child, .. } => Some(child.clone()),
            _ => None,
        })
        .expect("CHILD_SA in the sync stream");
    let EncrAlgorithm::Aead(alg) = mirrored.encr else { panic!("AEAD") };
    let suite = Suite::Aead(alg);
    let (a, b) = (I_ADDR.ip(), VIP.ip());
    let out = SaParams::new(client_child.outbound_spi, suite, client_child.dangerous_outbound_keymat(), a, b);
    let mut tx = OutboundSa::new(&out, &mut c.rng).expect("client's outbound SA");
    let inp = SaParams::new(mirrored.inbound_spi, suite, mirrored.dangerous_inbound_keymat(), b, a);
    let mut rx = InboundSa::new(&inp).expect("standby's inbound SA");
    let packet = [0x45, 0, 0, 20, 0, 0, 0, 0, 64, 59, 0, 0, 10, 1, 0, 5, 198, 51, 100, 10];
    let mut buf = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
    let esp = tx.encapsulate(&mut buf, HEADROOM..HEADROOM + packet.len(), Framing::Esp).expect("encap");
    let d = rx.decapsulate(&mut buf, esp).expect("the standby's copy decrypts the client's ESP");
    assert_eq!(&buf[d.range], &packet[..]);
}
