//! The Configuration payload of IKE_AUTH (RFC 7296 sections 2.19 and
//! 3.15): a client's request for a virtual address, the responder's lease
//! from its pool, and the reply the client reads its address and DNS
//! servers from.

use crate::config::Identity;
use crate::pool::AddressPool;
use crate::wire::{CfgAttrType, CfgAttribute, CfgType, Cp, NotifyType};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The prefix length sent with an INTERNAL_IP6_ADDRESS: one address.
const IPV6_PREFIX: u8 = 128;

/// The CFG_REQUEST of a client that wants an IPv4 address and DNS servers.
pub(super) fn request() -> Cp {
    Cp {
        cfg_type: CfgType::CFG_REQUEST,
        attributes: vec![
            CfgAttribute::new(CfgAttrType::INTERNAL_IP4_ADDRESS, []),
            CfgAttribute::new(CfgAttrType::INTERNAL_IP4_DNS, []),
        ],
    }
}

/// Responder: leases the addresses a CFG_REQUEST asks for (at most one of
/// each family) and builds the CFG_REPLY, with the configured DNS servers
/// of the families leased. Fails with INTERNAL_ADDRESS_FAILURE when
/// nothing could be leased.
pub(super) fn lease(
    request: &Cp,
    peer: &Identity,
    mut pool: Option<&mut (dyn AddressPool + '_)>,
    dns: &[IpAddr],
) -> Result<(Vec<IpAddr>, Cp), NotifyType> {
    let asks = |ty| request.attributes.iter().any(|a| a.ty == ty);
    let mut leased = Vec::new();
    for (ty, ipv6) in [(CfgAttrType::INTERNAL_IP4_ADDRESS, false), (CfgAttrType::INTERNAL_IP6_ADDRESS, true)]
    {
        if asks(ty) {
            leased.extend(pool.as_deref_mut().and_then(|p| p.lease(peer, ipv6)));
        }
    }
    if leased.is_empty() {
        return Err(NotifyType::INTERNAL_ADDRESS_FAILURE);
    }
    let mut attributes = Vec::new();
    for addr in &leased {
        attributes.push(match addr {
            IpAddr::V4(a) => CfgAttribute::new(CfgAttrType::INTERNAL_IP4_ADDRESS, a.octets()),
            IpAddr::V6(a) => {
                let mut value = a.octets().to_vec();
                value.push(IPV6_PREFIX);
                CfgAttribute::new(CfgAttrType::INTERNAL_IP6_ADDRESS, value)
            }
        });
    }
    for server in dns.iter().filter(|d| leased.iter().any(|l| l.is_ipv6() == d.is_ipv6())) {
        attributes.push(match server {
            IpAddr::V4(a) => CfgAttribute::new(CfgAttrType::INTERNAL_IP4_DNS, a.octets()),
            IpAddr::V6(a) => CfgAttribute::new(CfgAttrType::INTERNAL_IP6_DNS, a.octets()),
        });
    }
    Ok((leased, Cp { cfg_type: CfgType::CFG_REPLY, attributes }))
}

/// Client: the addresses and DNS servers of a CFG_REPLY. Values of the
/// wrong size are skipped.
pub(super) fn parse_reply(reply: &Cp) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let (mut addrs, mut dns) = (Vec::new(), Vec::new());
    if reply.cfg_type != CfgType::CFG_REPLY {
        return (addrs, dns);
    }
    for a in &reply.attributes {
        let v4 = <[u8; 4]>::try_from(a.value.as_slice()).ok().map(|b| IpAddr::V4(Ipv4Addr::from(b)));
        let v6 = a
            .value
            .get(..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)));
        match a.ty {
            CfgAttrType::INTERNAL_IP4_ADDRESS => addrs.extend(v4),
            CfgAttrType::INTERNAL_IP6_ADDRESS if a.value.len() == 17 => addrs.extend(v6),
            CfgAttrType::INTERNAL_IP4_DNS => dns.extend(v4),
            CfgAttrType::INTERNAL_IP6_DNS if a.value.len() == 16 => dns.extend(v6),
            _ => {}
        }
    }
    (addrs, dns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::RangePool;

    #[test]
    fn leases_what_is_asked_and_reads_the_reply_back() {
        let mut pool = RangePool::new([10, 3, 0, 1].into(), [10, 3, 0, 9].into()).expect("range");
        let dns: [IpAddr; 2] = [[10, 0, 0, 53].into(), Ipv6Addr::LOCALHOST.into()];
        let peer = Identity::fqdn("client");
        let (leased, reply) = lease(&request(), &peer, Some(&mut pool), &dns).expect("leased");
        assert_eq!(leased, vec![IpAddr::from([10, 3, 0, 1])]);
        assert_eq!(parse_reply(&reply), (leased, vec![dns[0]]), "only DNS of the leased family");
        let v6_only = Cp {
            cfg_type: CfgType::CFG_REQUEST,
            attributes: vec![CfgAttribute::new(CfgAttrType::INTERNAL_IP6_ADDRESS, [])],
        };
        assert_eq!(lease(&v6_only, &peer, Some(&mut pool), &dns), Err(NotifyType::INTERNAL_ADDRESS_FAILURE));
        assert_eq!(lease(&request(), &peer, None, &dns), Err(NotifyType::INTERNAL_ADDRESS_FAILURE));
    }

    #[test]
    fn reads_ipv6_addresses_and_skips_malformed_values() {
        let mut v6 = Ipv6Addr::LOCALHOST.octets().to_vec();
        v6.push(64);
        let reply = Cp {
            cfg_type: CfgType::CFG_REPLY,
            attributes: vec![
                CfgAttribute::new(CfgAttrType::INTERNAL_IP6_ADDRESS, v6),
                CfgAttribute::new(CfgAttrType::INTERNAL_IP4_ADDRESS, [1, 2, 3]),
                CfgAttribute::new(CfgAttrType::INTERNAL_IP6_DNS, [0; 17]),
            ],
        };
        assert_eq!(parse_reply(&reply), (vec![IpAddr::V6(Ipv6Addr::LOCALHOST)], vec![]));
    }
}
