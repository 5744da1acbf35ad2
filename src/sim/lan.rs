//! An in-memory Ethernet switch: it learns the source MAC of every frame,
//! forwards unicast frames to the learned port, and floods multicast and
//! unknown unicast frames to every other port, like a switch with IGMP
//! snooping off. Impairments (loss, delay with jitter, hence reordering,
//! and partitions between ports) come from a seeded RNG.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Duration;

/// A MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Whether this is a group (multicast or broadcast) address.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// An Ethernet frame: addresses and the payload (an IP packet, or a sync
/// datagram on the sync LAN).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Destination.
    pub dst: Mac,
    /// Source.
    pub src: Mac,
    /// Payload.
    pub data: Vec<u8>,
}

/// A port number on a switch.
pub type Port = usize;

/// What the switch does to frames.
#[derive(Clone, Copy, Debug)]
pub struct Impairments {
    /// Probability of losing a frame, per delivery.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..jitter` (reorders frames).
    pub jitter: Duration,
}

impl Default for Impairments {
    fn default() -> Self {
        Self { loss: 0.0, delay: Duration::from_micros(100), jitter: Duration::ZERO }
    }
}

/// The switch.
pub struct Switch {
    ports: usize,
    fdb: HashMap<Mac, Port>,
    /// Partition group of each port; frames cross only within a group.
    group: Vec<u32>,
    /// Ports whose link is down (a dead node).
    down: Vec<bool>,
    /// Current impairments.
    pub impairments: Impairments,
    rng: ChaCha20Rng,
    /// Frames lost to impairments, partitions or dead links.
    pub lost: u64,
}

impl Switch {
    /// A switch with `ports` ports and its own RNG seed.
    pub fn new(ports: usize, seed: u64) -> Self {
        Self {
            ports,
            fdb: HashMap::new(),
            group: vec![0; ports],
            down: vec![false; ports],
            impairments: Impairments::default(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            lost: 0,
        }
    }

    /// Puts ports in partition groups: frames pass only between ports of
    /// the same group. `None` heals the partition.
    pub fn partition(&mut self, groups: Option<&[&[Port]]>) {
        self.group = vec![0; self.ports];
        if let Some(gs) = groups {
            for (g, ports) in gs.iter().enumerate() {
                for &p in *ports {
                    if let Some(x) = self.group.get_mut(p) {
                        *x = g as u32 + 1;
                    }
                }
            }
        }
    }

    /// Takes a port's link down or up.
    pub fn set_down(&mut self, port: Port, down: bool) {
        if let Some(d) = self.down.get_mut(port) {
            *d = down;
        }
        if down {
            self.fdb.retain(|_, p| *p != port);
        }
    }

    /// Switches a frame that arrived on `ingress`: the ports it goes out
    /// of, each with its delay.
    pub fn forward(&mut self, ingress: Port, frame: &Frame) -> Vec<(Port, Duration)> {
        if self.down.get(ingress).copied().unwrap_or(true) {
            return Vec::new();
        }
        if !frame.src.is_multicast() {
            self.fdb.insert(frame.src, ingress);
        }
        let targets: Vec<Port> = match self.fdb.get(&frame.dst) {
            Some(&p) if !frame.dst.is_multicast() => vec![p],
            _ => (0..self.ports).filter(|&p| p != ingress).collect(),
        };
        let mut out = Vec::new();
        for p in targets {
            let blocked = self.down[p] || self.group[p] != self.group[ingress];
            if blocked || self.rng.next_u64() as f64 / (u64::MAX as f64) < self.impairments.loss {
                self.lost += 1;
                continue;
            }
            let j = self.impairments.jitter.as_nanos() as u64;
            let extra = if j == 0 { 0 } else { self.rng.next_u64() % j };
            out.push((p, self.impairments.delay + Duration::from_nanos(extra)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: u8, src: u8) -> Frame {
        Frame { dst: Mac([dst, 0, 0, 0, 0, 1]), src: Mac([src, 0, 0, 0, 0, 2]), data: Vec::new() }
    }

    #[test]
    fn floods_multicast_and_learns_unicast() {
        let mut s = Switch::new(4, 1);
        let ports = |v: Vec<(Port, Duration)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        // Multicast (odd first octet) floods; the source is learned.
        assert_eq!(ports(s.forward(0, &frame(1, 2))), vec![1, 2, 3]);
        // Unicast to the learned address goes to its port only.
        let to_port0 = Frame { dst: Mac([2, 0, 0, 0, 0, 2]), src: Mac([4, 0, 0, 0, 0, 9]), data: vec![] };
        assert_eq!(ports(s.forward(3, &to_port0)), vec![0]);
        // Unknown unicast floods.
        assert_eq!(ports(s.forward(1, &frame(6, 8))), vec![0, 2, 3]);
        // A partition and a dead link cut ports off.
        s.partition(Some(&[&[0, 1], &[2, 3]]));
        assert_eq!(ports(s.forward(0, &frame(1, 2))), vec![1]);
        s.partition(None);
        s.set_down(2, true);
        assert_eq!(ports(s.forward(0, &frame(1, 2))), vec![1, 3]);
        assert!(s.forward(2, &frame(1, 2)).is_empty(), "a dead port sends nothing");
    }
}
