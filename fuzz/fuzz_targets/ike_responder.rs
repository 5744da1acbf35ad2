//! A responder `Endpoint` fed arbitrary datagrams: the input is split into
//! datagrams (a two-octet length before each), delivered from two peer
//! addresses, with timers fired between them. The first datagram may be
//! replaced by a valid IKE_SA_INIT request (when the input's first octet is
//! odd), so later datagrams reach an SA with keys. Never panics, and the
//! endpoint never holds more SAs than it was sent IKE_SA_INIT requests.
#![no_main]

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use std::time::{Duration, Instant};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Identity, IkeConfig};

fn config(id: &str) -> IkeConfig {
    let any = TrafficSelector::any(IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V4(Ipv4Addr::BROADCAST));
    let esp = parse_proposals(ProposalKind::Esp, "aes128gcm16,aes128-sha256").expect("valid");
    let child = ChildConfig::new(esp, vec![any], vec![any]);
    let ike = parse_proposals(ProposalKind::Ike, "aes128gcm16-prfsha256-x25519,aes128-sha256-modp2048");
    IkeConfig::new(ike.expect("valid"), Identity::fqdn(id), SecretBytes::from_slice(b"fuzz"), child)
}

fuzz_target!(|data: &[u8]| {
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    #[allow(clippy::disallowed_methods)] // only an origin for the virtual clock
    let mut now = Instant::now();
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);
    let peers = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 500),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)), 4500),
    ];
    let mut responder = Endpoint::new(config("gw"));
    let mut inits = 0usize;

    // Optionally start with a genuine IKE_SA_INIT from a real initiator.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let mut initiator = Endpoint::new(config("client"));
        if initiator.initiate(now, &mut rng, peers[0], local).is_ok() {
            while let Some(t) = initiator.poll_transmit() {
                inits += 1;
                let _ = responder.handle_datagram(now, &mut rng, local, peers[0], &t.data);
            }
        }
    }
    let mut rest = data.get(1..).unwrap_or_default();
    let mut n = 0usize;
    while rest.len() >= 2 && n < 16 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % 2048;
        let end = (2 + len).min(rest.len());
        let datagram = &rest[2..end];
        rest = &rest[end..];
        // Any well-formed IKE_SA_INIT request may create an SA.
        if datagram.get(18) == Some(&34) && datagram.get(19).is_some_and(|f| f & 0x20 == 0) {
            inits += 1;
        }
        let _ = responder.handle_datagram(now, &mut rng, local, peers[n % 2], datagram);
        while responder.poll_transmit().is_some() {}
        while responder.poll_event().is_some() {}
        now += Duration::from_secs(u64::from(datagram.first().copied().unwrap_or(0)));
        responder.handle_timeout(now, &mut rng);
        n += 1;
    }
    assert!(responder.sa_ids().count() <= inits, "more SAs than IKE_SA_INIT requests");
});
