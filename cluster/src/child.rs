//! A negotiated CHILD_SA as the ESP engine runs it: the one conversion from
//! what IKE agreed (`tandem_ike::ChildSa`) to ESP SAs and policy selectors
//! (`tandem_esp`), for a cluster node and the single gateway alike.

use crate::Error;
use rand_core::CryptoRng;
use tandem_crypto::proposal::EncrAlgorithm;
use tandem_esp::{InboundSa, OutboundSa, SaParams, Suite, TrafficSelector, UdpEncap};
use tandem_ike::ChildSa;

/// The ESP suite the CHILD_SA negotiated.
pub fn suite(c: &ChildSa) -> Result<Suite, Error> {
    match (c.encr, c.integ) {
        (EncrAlgorithm::Aead(a), _) => Ok(Suite::Aead(a)),
        (EncrAlgorithm::Cbc(cbc), Some(i)) => Ok(Suite::CbcHmac(cbc, i)),
        (EncrAlgorithm::Cbc(_), None) => Err(Error::Config("a CBC CHILD_SA without integrity")),
    }
}

/// An IKE traffic selector as an ESP one.
pub fn selector(ts: &tandem_ike::wire::TrafficSelector) -> TrafficSelector {
    TrafficSelector {
        start: ts.start_addr,
        end: ts.end_addr,
        protocol: ts.ip_protocol,
        start_port: ts.start_port,
        end_port: ts.end_port,
    }
}

/// Both ESP SAs of the CHILD_SA, keyed from its key material: the inbound
/// one checks its plaintext against the negotiated selectors; both are
/// UDP-encapsulated if the CHILD_SA is.
pub fn sas<R: CryptoRng + ?Sized>(c: &ChildSa, rng: &mut R) -> Result<(InboundSa, OutboundSa), Error> {
    let suite = suite(c)?;
    let encap = c.udp_encap.then_some(UdpEncap { local_port: c.local.port(), remote_port: c.remote.port() });
    let mut inp =
        SaParams::new(c.inbound_spi, suite, c.dangerous_inbound_keymat(), c.local.ip(), c.remote.ip());
    inp.esn = c.esn;
    inp.udp_encap = encap;
    let mut inbound = InboundSa::new(&inp)?;
    inbound
        .set_selectors(c.local_ts.iter().map(selector).collect(), c.remote_ts.iter().map(selector).collect());
    let mut outp =
        SaParams::new(c.outbound_spi, suite, c.dangerous_outbound_keymat(), c.local.ip(), c.remote.ip());
    outp.esn = c.esn;
    outp.udp_encap = encap;
    Ok((inbound, OutboundSa::new(&outp, rng)?))
}

/// The outbound policies' (local, remote) selectors: every pair of the
/// CHILD_SA's selectors of one address family.
pub fn policies(c: &ChildSa) -> impl Iterator<Item = (TrafficSelector, TrafficSelector)> + '_ {
    c.local_ts.iter().flat_map(move |l| {
        c.remote_ts
            .iter()
            .filter(move |r| l.start_addr.is_ipv4() == r.start_addr.is_ipv4())
            .map(move |r| (selector(l), selector(r)))
    })
}
