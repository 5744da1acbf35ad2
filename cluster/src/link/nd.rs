//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitations and
//! Advertisements with their link-layer address options.
//!
//! The link answers a solicitation for its VIP with the router, solicited
//! and override flags set and the cluster MAC as the target link-layer
//! address. Override is set because every node sends the same answer, so
//! overriding can only replace a stale mapping (say, from a host that held
//! the address before) with the cluster MAC; Router is set because Tandem
//! forwards between its ports, and a host routing through the VIP would
//! otherwise drop it from its default router list (RFC 4861 section 7.2.5).

use super::Malformed;
use super::ether::Mac;
use super::ip;
use core::net::Ipv6Addr;

/// ICMPv6 type of a Neighbor Solicitation.
pub(crate) const SOLICIT: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub(crate) const ADVERT: u8 = 136;
/// Hop limit of every ND message, checked on input (RFC 4861 section 7.1).
const HOPS: u8 = 255;
/// The all-nodes multicast address, destination of answers to duplicate
/// address detection.
pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Option types of the source and target link-layer addresses.
const SOURCE_LL: u8 = 1;
const TARGET_LL: u8 = 2;
/// Advertisement flags.
const ROUTER: u8 = 0x80;
const SOLICITED: u8 = 0x40;
const OVERRIDE: u8 = 0x20;

/// A validated solicitation or advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nd {
    /// "Who has `target`?"
    Solicit {
        /// The address asked about.
        target: Ipv6Addr,
        /// The asker's MAC, from its source link-layer address option.
        source_mac: Option<Mac>,
    },
    /// "`target` is at `target_mac`."
    Advert {
        /// The address answered for.
        target: Ipv6Addr,
        /// The override flag: replace a different cached MAC.
        overrides: bool,
        /// The target link-layer address option.
        target_mac: Option<Mac>,
    },
}

/// Validates the ND message `msg` of an IPv6 packet from `src` to `dst`
/// that arrived with hop limit `hops` (RFC 4861 sections 7.1.1, 7.1.2).
pub(crate) fn parse(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, msg: &[u8]) -> Result<Nd, Malformed> {
    let (&[ty, code, _, _, flags, _, _, _], rest) = msg.split_first_chunk::<8>().ok_or(Malformed)?;
    let (target, options) = rest.split_first_chunk::<16>().ok_or(Malformed)?;
    let target = Ipv6Addr::from(*target);
    if hops != HOPS || code != 0 || target.is_multicast() || !ip::icmpv6_checksum_ok(src, dst, msg) {
        return Err(Malformed);
    }
    match ty {
        SOLICIT => {
            let source_mac = link_layer_option(options, SOURCE_LL)?;
            if src.is_unspecified() && (!is_solicited_node(dst) || source_mac.is_some()) {
                return Err(Malformed);
            }
            Ok(Nd::Solicit { target, source_mac })
        }
        ADVERT => {
            if dst.is_multicast() && flags & SOLICITED != 0 {
                return Err(Malformed);
            }
            let target_mac = link_layer_option(options, TARGET_LL)?;
            Ok(Nd::Advert { target, overrides: flags & OVERRIDE != 0, target_mac })
        }
        _ => Err(Malformed),
    }
}

/// The first link-layer address option of type `kind` among `options`,
/// which must all have a non-zero length.
fn link_layer_option(mut options: &[u8], kind: u8) -> Result<Option<Mac>, Malformed> {
    let mut found = None;
    while let [ty, len, ..] = *options {
        let opt = options.get(..usize::from(len) * 8).filter(|o| !o.is_empty()).ok_or(Malformed)?;
        if ty == kind && found.is_none() {
            found = opt.get(2..8).and_then(|m| Mac::try_from(m).ok());
        }
        options = options.get(opt.len()..).unwrap_or_default();
    }
    if options.is_empty() { Ok(found) } else { Err(Malformed) }
}

/// Whether `a` is a solicited-node multicast address (ff02::1:ff00:0/104).
fn is_solicited_node(a: Ipv6Addr) -> bool {
    a.octets()[..13] == solicited_node(Ipv6Addr::UNSPECIFIED).octets()[..13]
}

/// The solicited-node multicast address of `target`.
pub(crate) fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let [.., a, b, c] = target.octets();
    Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, a, b, c])
}

/// Our solicitation for `target`, from `src` to the target's
/// solicited-node address, with `source_mac` as the source link-layer
/// address.
pub(crate) fn solicit(src: Ipv6Addr, target: Ipv6Addr, source_mac: Mac) -> Option<Vec<u8>> {
    let msg = message(SOLICIT, 0, target, SOURCE_LL, source_mac);
    ip::icmpv6(src, solicited_node(target), HOPS, msg)
}

/// Our advertisement of `target` at `target_mac`, from `target` to `dst`:
/// solicited unless it answers duplicate address detection.
pub(crate) fn advert(target: Ipv6Addr, dst: Ipv6Addr, solicited: bool, target_mac: Mac) -> Option<Vec<u8>> {
    let flags = ROUTER | OVERRIDE | if solicited { SOLICITED } else { 0 };
    ip::icmpv6(target, dst, HOPS, message(ADVERT, flags, target, TARGET_LL, target_mac))
}

fn message(ty: u8, flags: u8, target: Ipv6Addr, option: u8, mac: Mac) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(&[ty, 0, 0, 0, flags, 0, 0, 0]);
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[option, 1]);
    m.extend_from_slice(&mac);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [2, 0, 0, 0, 0, 9];

    fn a(s: &str) -> Ipv6Addr {
        s.parse().expect("address")
    }

    #[test]
    fn round_trips_solicitations_and_advertisements() {
        let (me, peer) = (a("2001:db8::1"), a("2001:db8::7"));
        let ns = solicit(me, peer, MAC).expect("fits");
        assert_eq!(&ns[24..40], &a("ff02::1:ff00:7").octets());
        let got = parse(me, solicited_node(peer), ns[7], &ns[40..]);
        assert_eq!(got, Ok(Nd::Solicit { target: peer, source_mac: Some(MAC) }));
        let na = advert(peer, me, true, MAC).expect("fits");
        assert_eq!(na[44], ROUTER | SOLICITED | OVERRIDE);
        let got = parse(peer, me, na[7], &na[40..]);
        assert_eq!(got, Ok(Nd::Advert { target: peer, overrides: true, target_mac: Some(MAC) }));
    }

    #[test]
    fn rejects_invalid_nd() {
        let (me, peer) = (a("2001:db8::1"), a("2001:db8::7"));
        let ns = solicit(me, peer, MAC).expect("fits");
        let dst = solicited_node(peer);
        assert_eq!(parse(me, dst, 254, &ns[40..]), Err(Malformed), "hop limit");
        assert_eq!(parse(me, dst, 255, &ns[40..63]), Err(Malformed), "truncated option");
        assert_eq!(parse(peer, dst, 255, &ns[40..]), Err(Malformed), "checksum");
        let mut zero_len = ns[40..].to_vec();
        zero_len[25] = 0;
        assert_eq!(parse(me, dst, 255, &zero_len), Err(Malformed), "zero-length option");
        // Duplicate address detection: unspecified source, no source option.
        let dad = ip::icmpv6(Ipv6Addr::UNSPECIFIED, dst, 255, ns[40..64].to_vec()).expect("fits");
        let got = parse(Ipv6Addr::UNSPECIFIED, dst, 255, &dad[40..]);
        assert_eq!(got, Ok(Nd::Solicit { target: peer, source_mac: None }));
        assert_eq!(parse(Ipv6Addr::UNSPECIFIED, peer, 255, &dad[40..]), Err(Malformed), "not solicited-node");
        let dad = ip::icmpv6(Ipv6Addr::UNSPECIFIED, dst, 255, ns[40..].to_vec()).expect("fits");
        assert_eq!(parse(Ipv6Addr::UNSPECIFIED, dst, 255, &dad[40..]), Err(Malformed), "DAD with option");
        let na = advert(peer, ALL_NODES, true, MAC).expect("fits");
        assert_eq!(parse(peer, ALL_NODES, 255, &na[40..]), Err(Malformed), "solicited to multicast");
    }
}
