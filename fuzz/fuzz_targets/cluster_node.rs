//! A cluster node on arbitrary input: external packets (the outer packet
//! classifier, IKE and ESP), plaintext packets and sync datagrams, with
//! timers between them, never panic the node.
#![no_main]

use chacha20::ChaCha20Rng;
use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tandem_cluster::node::packet::classify;
use tandem_cluster::{Layout, Node, NodeConfig, NodeId, SegmentCount, TwoNodeRule};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Identity, IkeConfig};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn node(now: Instant, rng: &mut ChaCha20Rng) -> Option<Node> {
    let any = TrafficSelector::any(IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V4(Ipv4Addr::BROADCAST));
    let child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, "aes256gcm16").ok()?,
        vec![any.clone()],
        vec![any],
    );
    let ike = IkeConfig::new(
        parse_proposals(ProposalKind::Ike, "aes256gcm16-prfsha256-x25519").ok()?,
        Identity::fqdn("gateway"),
        SecretBytes::from_slice(b"fuzzing psk"),
        child,
    );
    let layout =
        Layout::new(&[NodeId(1), NodeId(2)], SegmentCount::new(4).ok()?, TwoNodeRule::default()).ok()?;
    let cfg = NodeConfig::new(NodeId(1), layout, 1, SecretBytes::from_slice(&[7; 32]), VIP);
    Node::new(cfg, ike, None, now, 0, rng).ok()
}

fuzz_target!(|data: &[u8]| {
    let _ = classify(data, VIP);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let Some(mut n) = node(now, &mut rng) else { return };
    // Let it become synced and own segments (alone, under the default
    // two-node rule), so IKE and ESP input reach the engines.
    for _ in 0..10 {
        now += Duration::from_millis(100);
        n.handle_timeout(now, &mut rng);
    }
    // Inputs: [kind, len_hi, len_lo, bytes...]*
    let mut rest = data;
    while let [kind, a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (mut input, next) = (tail[..len].to_vec(), &tail[len..]);
        match kind % 4 {
            0 => n.handle_external(now, &mut input, &mut rng),
            1 => n.handle_internal(now, &input, &mut rng),
            2 => n.handle_sync(now, NodeId(2), &mut input, &mut rng),
            _ => {
                now += Duration::from_millis(u64::from(*a));
                n.handle_timeout(now, &mut rng);
            }
        }
        while n.poll_output().is_some() {}
        while n.poll_event().is_some() {}
        rest = next;
    }
});
