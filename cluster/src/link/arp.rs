//! ARP for IPv4 over Ethernet (RFC 826): the 28-octet packet.

use super::Malformed;
use super::ether::Mac;
use core::net::Ipv4Addr;

/// Operation of a request ("who-has").
pub(crate) const REQUEST: u16 = 1;
/// Operation of a reply ("is-at").
pub(crate) const REPLY: u16 = 2;
/// Octets of an Ethernet/IPv4 ARP packet.
const LEN: usize = 28;
/// Hardware type, protocol type, hardware and protocol address lengths of
/// Ethernet/IPv4 ARP.
const PREFIX: [u8; 6] = [0, 1, 0x08, 0x00, 6, 4];

/// An Ethernet/IPv4 ARP request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arp {
    /// [`REQUEST`] or [`REPLY`].
    pub(crate) op: u16,
    /// The sender's MAC.
    pub(crate) sender_mac: Mac,
    /// The sender's address.
    pub(crate) sender_ip: Ipv4Addr,
    /// The target's MAC (zero in requests).
    pub(crate) target_mac: Mac,
    /// The address asked about (requests) or answered to (replies).
    pub(crate) target_ip: Ipv4Addr,
}

impl Arp {
    /// Parses the ARP packet at the start of `p` (Ethernet padding may
    /// follow). Other hardware or protocol types and other operations are
    /// malformed here: this port speaks Ethernet/IPv4 ARP only.
    pub(crate) fn parse(p: &[u8]) -> Result<Self, Malformed> {
        let (prefix, rest) = p.split_first_chunk::<6>().ok_or(Malformed)?;
        let (op, rest) = rest.split_first_chunk::<2>().ok_or(Malformed)?;
        let (sender_mac, rest) = rest.split_first_chunk::<6>().ok_or(Malformed)?;
        let (sender_ip, rest) = rest.split_first_chunk::<4>().ok_or(Malformed)?;
        let (target_mac, rest) = rest.split_first_chunk::<6>().ok_or(Malformed)?;
        let (target_ip, _) = rest.split_first_chunk::<4>().ok_or(Malformed)?;
        let op = u16::from_be_bytes(*op);
        if *prefix != PREFIX || !matches!(op, REQUEST | REPLY) {
            return Err(Malformed);
        }
        Ok(Self {
            op,
            sender_mac: *sender_mac,
            sender_ip: Ipv4Addr::from(*sender_ip),
            target_mac: *target_mac,
            target_ip: Ipv4Addr::from(*target_ip),
        })
    }

    /// The packet's 28 octets.
    pub(crate) fn emit(&self) -> [u8; LEN] {
        let mut p = [0; LEN];
        p[..6].copy_from_slice(&PREFIX);
        p[6..8].copy_from_slice(&self.op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sender_mac);
        p[14..18].copy_from_slice(&self.sender_ip.octets());
        p[18..24].copy_from_slice(&self.target_mac);
        p[24..28].copy_from_slice(&self.target_ip.octets());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_other_hardware_protocols_and_operations() {
        let a = Arp {
            op: REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 7],
            sender_ip: Ipv4Addr::new(192, 0, 2, 7),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(192, 0, 2, 1),
        };
        let p = a.emit();
        for (i, bad) in [(1, 6), (2, 0x86), (4, 16), (5, 16), (7, 3)] {
            let mut q = p;
            q[i] = bad;
            assert_eq!(Arp::parse(&q), Err(Malformed), "octet {i}");
        }
        assert_eq!(Arp::parse(&p[..27]), Err(Malformed));
    }

    proptest! {
        #[test]
        fn round_trips(op in 1u16..=2, sm: [u8; 6], si: [u8; 4], tm: [u8; 6], ti: [u8; 4], pad: Vec<u8>) {
            let a = Arp {
                op,
                sender_mac: sm,
                sender_ip: si.into(),
                target_mac: tm,
                target_ip: ti.into(),
            };
            let mut p = a.emit().to_vec();
            p.extend_from_slice(&pad);
            prop_assert_eq!(Arp::parse(&p), Ok(a));
        }
    }
}
