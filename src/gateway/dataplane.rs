//! The ESP side of the gateway: the CHILD_SAs IKE negotiated installed as
//! ESP SAs, the policies that send plaintext into them, and the packet
//! transforms between the TUN device and the UDP-encapsulated ESP socket
//! (RFC 3948). No I/O: the driver moves the buffers.

use super::GatewayError;
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use rand_core::CryptoRng;
use std::collections::HashMap;
use tandem_cluster::child;
use tandem_esp::{Decapsulated, Framing, OutboundId, Policy, PolicyId, SaStats, Sad, Spd};
use tandem_ike::{ChildSa, IkeSaId};

/// Where an outbound policy sends its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Target {
    sa: OutboundId,
    /// The peer's UDP-encapsulation address.
    remote: SocketAddr,
}

/// One installed CHILD_SA.
#[derive(Debug)]
struct Child {
    ike_sa: IkeSaId,
    outbound: OutboundId,
    policies: Vec<PolicyId>,
    child: ChildSa,
}

/// A row of `tandem sas`: one CHILD_SA with its counters.
#[derive(Clone, Debug)]
pub(crate) struct ChildStatus {
    /// The CHILD_SA as negotiated (keys are not shown).
    pub(crate) child: ChildSa,
    /// Inbound counters and drops.
    pub(crate) inbound: SaStats,
    /// Outbound counters and drops.
    pub(crate) outbound: SaStats,
}

/// The gateway's ESP state.
pub(crate) struct Dataplane {
    sad: Sad,
    spd: Spd<Target>,
    /// Installed CHILD_SAs by inbound SPI.
    children: HashMap<u32, Child>,
    /// Plaintext packets no policy covered.
    no_policy: u64,
}

impl Dataplane {
    /// An empty data path; `hash_seed` keys the SPI hash.
    pub(crate) fn new(hash_seed: u64) -> Self {
        Self { sad: Sad::new(hash_seed), spd: Spd::new(), children: HashMap::new(), no_policy: 0 }
    }

    /// Installs a negotiated CHILD_SA: both ESP SAs and its outbound
    /// policies. A rekeyed pair is installed beside the old one, whose
    /// policies keep precedence until it is removed.
    pub(crate) fn install<R: CryptoRng + ?Sized>(
        &mut self,
        c: &ChildSa,
        rng: &mut R,
    ) -> Result<(), GatewayError> {
        if !c.udp_encap {
            // RFC 3948 only: the kernel has no ESP and Tandem opens no raw
            // ESP socket, so peers must encapsulate (strongSwan: encap=yes,
            // which its libipsec backend forces).
            return Err(GatewayError::Unsupported("ESP without UDP encapsulation (set encap on the peer)"));
        }
        let (inbound, outbound) = child::sas(c, rng)?;
        self.sad.insert_inbound(inbound)?;
        let id = self.sad.insert_outbound(outbound);
        let target = Target { sa: id, remote: c.remote };
        let policies = child::policies(c)
            .map(|(local, remote)| self.spd.insert(Policy { local, remote, target }))
            .collect();
        self.children
            .insert(c.inbound_spi, Child { ike_sa: c.ike_sa, outbound: id, policies, child: c.clone() });
        Ok(())
    }

    /// Removes the CHILD_SA with inbound SPI `inbound_spi`; returns it.
    pub(crate) fn remove(&mut self, inbound_spi: u32) -> Option<ChildSa> {
        let child = self.children.remove(&inbound_spi)?;
        self.sad.remove_inbound(inbound_spi);
        self.sad.remove_outbound(child.outbound);
        for p in child.policies {
            self.spd.remove(p);
        }
        Some(child.child)
    }

    /// Encapsulates the plaintext packet at `buf[packet]` in place (with
    /// `HEADROOM` before and `TAILROOM` after it): the peer to send the ESP
    /// packet to over UDP, and where it is in `buf`.
    pub(crate) fn encrypt(
        &mut self,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Result<(SocketAddr, Range<usize>), GatewayError> {
        let target = match self.spd.lookup(&buf[packet.clone()])? {
            Some(t) => *t,
            None => {
                self.no_policy += 1;
                return Err(GatewayError::NoPolicy);
            }
        };
        let sa = self.sad.outbound_mut(target.sa).ok_or(GatewayError::NoPolicy)?;
        let esp = sa.encapsulate(buf, packet, Framing::Esp)?;
        Ok((target.remote, esp))
    }

    /// Decapsulates the ESP packet at `buf[esp]` (from the UDP/4500
    /// socket, after the non-ESP marker check) in place.
    pub(crate) fn decrypt(
        &mut self,
        buf: &mut [u8],
        esp: Range<usize>,
    ) -> Result<Decapsulated, GatewayError> {
        Ok(self.sad.decapsulate(buf, esp)?)
    }

    /// Every installed CHILD_SA with its counters.
    pub(crate) fn status(&self) -> Vec<ChildStatus> {
        let mut rows: Vec<ChildStatus> = self
            .children
            .iter()
            .map(|(spi, c)| ChildStatus {
                child: c.child.clone(),
                inbound: self.sad.inbound(*spi).map(|s| *s.stats()).unwrap_or_default(),
                outbound: self.sad.outbound(c.outbound).map(|s| *s.stats()).unwrap_or_default(),
            })
            .collect();
        rows.sort_by_key(|r| (r.child.ike_sa, r.child.inbound_spi));
        rows
    }

    /// The CHILD_SAs of IKE SA `sa` by inbound SPI.
    pub(crate) fn children_of(&self, sa: IkeSaId) -> Vec<u32> {
        self.children.iter().filter(|(_, c)| c.ike_sa == sa).map(|(spi, _)| *spi).collect()
    }

    /// Moves the CHILD_SAs of `old` to `new` after an IKE SA rekey.
    pub(crate) fn move_children(&mut self, old: IkeSaId, new: IkeSaId) {
        for c in self.children.values_mut().filter(|c| c.ike_sa == old) {
            c.ike_sa = new;
            c.child.ike_sa = new;
        }
    }

    /// Plaintext packets dropped because no policy covered them, and ESP
    /// packets with an unknown SPI.
    pub(crate) fn global_drops(&self) -> (u64, u64) {
        (self.no_policy, self.sad.unknown_spi_drops())
    }
}

/// The CIDR prefixes that exactly cover the address range `start..=end`
/// (both of one family), for routes.
pub(crate) fn prefixes(start: IpAddr, end: IpAddr) -> Vec<(IpAddr, u8)> {
    let (mut lo, hi, bits, v6) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32u32, false),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128, true),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    while lo <= hi {
        // The largest aligned block at `lo` that stays within `hi`.
        let mut size_log = if lo == 0 { bits } else { lo.trailing_zeros().min(bits) };
        let span = |log: u32| if log >= 128 { u128::MAX } else { (1u128 << log) - 1 };
        while size_log > 0 && lo.checked_add(span(size_log)).is_none_or(|last| last > hi) {
            size_log -= 1;
        }
        let addr =
            if v6 { IpAddr::V6(lo.into()) } else { IpAddr::V4(u32::try_from(lo).unwrap_or(u32::MAX).into()) };
        out.push((addr, u8::try_from(bits - size_log).unwrap_or(0)));
        let step = if size_log >= 128 { u128::MAX } else { 1u128 << size_log };
        match lo.checked_add(step) {
            Some(next) if size_log < bits => lo = next,
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn covers_ranges_with_exact_prefixes() {
        assert_eq!(prefixes(v4([0, 0, 0, 0]), v4([255, 255, 255, 255])), vec![(v4([0, 0, 0, 0]), 0)]);
        assert_eq!(prefixes(v4([10, 1, 0, 0]), v4([10, 1, 255, 255])), vec![(v4([10, 1, 0, 0]), 16)]);
        assert_eq!(prefixes(v4([192, 0, 2, 10]), v4([192, 0, 2, 10])), vec![(v4([192, 0, 2, 10]), 32)]);
        assert_eq!(
            prefixes(v4([10, 0, 0, 1]), v4([10, 0, 0, 6])),
            vec![
                (v4([10, 0, 0, 1]), 32),
                (v4([10, 0, 0, 2]), 31),
                (v4([10, 0, 0, 4]), 31),
                (v4([10, 0, 0, 6]), 32)
            ]
        );
        let all6 = prefixes(IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::from_bits(u128::MAX)));
        assert_eq!(all6, vec![(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)]);
        assert_eq!(prefixes(v4([10, 0, 0, 9]), v4([10, 0, 0, 1])), vec![]);
        assert_eq!(prefixes(v4([255, 255, 255, 255]), v4([255, 255, 255, 255])), vec![(v4([255; 4]), 32)]);
    }

    /// CHILD_SAs from a real in-process handshake; with `nat`, the
    /// initiator's datagrams reach the responder from another address, so
    /// NAT detection turns UDP encapsulation on.
    fn handshake(nat: bool) -> (ChildSa, ChildSa) {
        use tandem_crypto::proposal::{ProposalKind, parse_proposals};
        use tandem_crypto::secret::SecretBytes;
        use tandem_ike::{ChildConfig, Endpoint, Event, Identity, IkeConfig};
        let net = |a: [u8; 4], b: [u8; 4]| tandem_ike::wire::TrafficSelector::any(v4(a), v4(b));
        let config = |id: &str, local, remote| {
            let esp = parse_proposals(ProposalKind::Esp, "aes128gcm16").expect("ESP");
            let ike = parse_proposals(ProposalKind::Ike, "aes128gcm16-prfsha256-x25519").expect("IKE");
            let child = ChildConfig::new(esp, vec![local], vec![remote]);
            IkeConfig::new(ike, Identity::fqdn(id), SecretBytes::from_slice(b"psk"), child)
        };
        let client = net([10, 1, 0, 0], [10, 1, 0, 255]);
        let server = net([198, 51, 100, 0], [198, 51, 100, 255]);
        let mut i = Endpoint::new(config("i", client, server));
        let mut r = Endpoint::new(config("r", server, client));
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        #[allow(clippy::disallowed_methods)]
        let now = std::time::Instant::now();
        let (ia, ra) = (SocketAddr::new(v4([192, 0, 2, 10]), 500), SocketAddr::new(v4([192, 0, 2, 1]), 500));
        let seen_from =
            |a: SocketAddr| if nat { SocketAddr::new(v4([203, 0, 113, 7]), a.port() + 1000) } else { a };
        i.initiate(now, &mut rng, ia, ra).expect("initiate");
        for _ in 0..10 {
            while let Some(t) = i.poll_transmit() {
                let _ = r.handle_datagram(now, &mut rng, t.remote, seen_from(t.local), &t.data);
            }
            while let Some(t) = r.poll_transmit() {
                let local = if nat && t.remote.port() >= 1000 {
                    SocketAddr::new(ia.ip(), t.remote.port() - 1000)
                } else {
                    t.remote
                };
                let _ = i.handle_datagram(now, &mut rng, local, t.local, &t.data);
            }
        }
        let child = |ep: &mut Endpoint| {
            std::iter::from_fn(|| ep.poll_event())
                .find_map(|e| match e {
                    Event::ChildSaEstablished(c) => Some(c),
                    _ => None,
                })
                .expect("CHILD_SA")
        };
        (child(&mut i), child(&mut r))
    }

    fn ip_packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn carries_packets_both_ways_and_forgets_removed_children() {
        use tandem_esp::{HEADROOM, TAILROOM};
        let (ci, cr) = handshake(true);
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let (mut a, mut b) = (Dataplane::new(1), Dataplane::new(2));
        a.install(&ci, &mut rng).expect("install");
        b.install(&cr, &mut rng).expect("install");
        let packet = ip_packet([10, 1, 0, 5], [198, 51, 100, 10]);
        let mut buf = vec![0u8; HEADROOM + 1500 + TAILROOM];
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        let (to, esp) = a.encrypt(&mut buf, HEADROOM..HEADROOM + packet.len()).expect("policy");
        assert_eq!(to, ci.remote);
        let d = b.decrypt(&mut buf, esp).expect("decrypts");
        assert_eq!(&buf[d.range], &packet[..]);
        // No policy for other traffic, and a removed child takes its SAs.
        let stray = ip_packet([10, 9, 0, 5], [198, 51, 100, 10]);
        buf[HEADROOM..HEADROOM + stray.len()].copy_from_slice(&stray);
        assert!(matches!(a.encrypt(&mut buf, HEADROOM..HEADROOM + stray.len()), Err(GatewayError::NoPolicy)));
        assert_eq!(a.global_drops().0, 1);
        assert_eq!(a.status().len(), 1);
        assert_eq!(a.status()[0].outbound.packets, 1);
        assert!(a.remove(ci.inbound_spi).is_some());
        assert!(a.status().is_empty());
        buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(&packet);
        assert!(matches!(
            a.encrypt(&mut buf, HEADROOM..HEADROOM + packet.len()),
            Err(GatewayError::NoPolicy)
        ));
    }

    #[test]
    fn refuses_children_without_udp_encapsulation() {
        let (ci, _) = handshake(false);
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        assert!(matches!(Dataplane::new(1).install(&ci, &mut rng), Err(GatewayError::Unsupported(_))));
    }
}
