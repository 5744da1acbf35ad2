//! The host side of the gateway, through rtnetlink: the TUN link brought
//! up, routes for the peers' traffic selectors into it, and a policy rule
//! so Tandem's own IKE and ESP-in-UDP packets bypass those routes.
//!
//! Routes go to a table of their own, looked up by a rule for every packet
//! that does not carry Tandem's firewall mark (its sockets set it). So a
//! peer whose traffic selector covers its own address (a road warrior's
//! `dynamic` selector) still gets its ESP packets over the real link.
//! Everything added is removed by [`Netlink::cleanup`]; routes also vanish
//! with the TUN device.

use super::GatewayError;
use super::dataplane::prefixes;
use core::net::IpAddr;
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::packet_route::rule::{RuleAction, RuleFlags, RuleMessage};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use std::collections::HashMap;
use tandem_ike::wire::TrafficSelector;

/// Priority of Tandem's routing rule (strongSwan uses 220 with table 220).
const RULE_PRIORITY: u32 = 219;

/// The host's routing state that Tandem manages.
pub(crate) struct Netlink {
    handle: Handle,
    tun_index: u32,
    table: u32,
    /// Installed routes with the number of CHILD_SAs that need each.
    routes: HashMap<(IpAddr, u8), usize>,
    rules: Vec<RuleMessage>,
    /// Our virtual addresses (one per family), the source of what we route
    /// into the tunnel.
    virtual_ips: Vec<IpAddr>,
}

fn nl(context: &'static str) -> impl Fn(rtnetlink::Error) -> GatewayError {
    move |e| GatewayError::Netlink(format!("{context}: {e}"))
}

impl Netlink {
    /// Brings the TUN device `tun_index` up with `mtu` and adds the rules
    /// (IPv4 and IPv6) sending unmarked packets to `table`.
    pub(crate) async fn new(tun_index: u32, mtu: u32, table: u32, fwmark: u32) -> Result<Self, GatewayError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| GatewayError::io("opening a netlink socket", e))?;
        tokio::spawn(conn);
        handle
            .link()
            .set(LinkUnspec::new_with_index(tun_index).up().mtu(mtu).build())
            .execute()
            .await
            .map_err(nl("bringing the TUN device up"))?;
        let mut me = Self {
            handle,
            tun_index,
            table,
            routes: HashMap::new(),
            rules: Vec::new(),
            virtual_ips: Vec::new(),
        };
        // `not fwmark FWMARK lookup TABLE`, for IPv4 and for IPv6.
        let add = || me.handle.rule().add().table_id(table).fw_mark(fwmark).priority(RULE_PRIORITY);
        let invert = |msg: &mut RuleMessage| {
            msg.header.action = RuleAction::ToTable;
            msg.header.flags = RuleFlags::Invert;
            msg.clone()
        };
        let mut v4 = add().v4().replace();
        let rule4 = invert(v4.message_mut());
        let mut v6 = add().v6().replace();
        let rule6 = invert(v6.message_mut());
        v4.execute().await.map_err(nl("adding the IPv4 routing rule"))?;
        me.rules.push(rule4);
        v6.execute().await.map_err(nl("adding the IPv6 routing rule"))?;
        me.rules.push(rule6);
        Ok(me)
    }

    fn route(&self, addr: IpAddr, len: u8) -> Result<RouteMessage, GatewayError> {
        let invalid = |e| GatewayError::Netlink(format!("route {addr}/{len}: {e:?}"));
        let mut b = RouteMessageBuilder::<IpAddr>::new().destination_prefix(addr, len).map_err(invalid)?;
        if let Some(src) = self.virtual_ips.iter().find(|v| v.is_ipv4() == addr.is_ipv4()) {
            b = b.pref_source(*src).map_err(invalid)?;
        }
        Ok(b.output_interface(self.tun_index).table_id(self.table).build())
    }

    /// Puts a virtual address the peer assigned us on the TUN device; the
    /// routes added from now on use it as their source.
    pub(crate) async fn add_virtual_ip(&mut self, ip: IpAddr) -> Result<(), GatewayError> {
        if self.virtual_ips.contains(&ip) {
            return Ok(());
        }
        let len = if ip.is_ipv4() { 32 } else { 128 };
        self.handle
            .address()
            .add(self.tun_index, ip, len)
            .replace()
            .execute()
            .await
            .map_err(nl("adding the virtual IP"))?;
        self.virtual_ips.retain(|v| v.is_ipv4() != ip.is_ipv4());
        self.virtual_ips.push(ip);
        Ok(())
    }

    /// Routes the selectors' addresses into the TUN device.
    pub(crate) async fn add_routes(&mut self, selectors: &[TrafficSelector]) -> Result<(), GatewayError> {
        for ts in selectors {
            for p in prefixes(ts.start_addr, ts.end_addr) {
                let count = self.routes.entry(p).or_insert(0);
                *count += 1;
                if *count == 1 {
                    let msg = self.route(p.0, p.1)?;
                    self.handle.route().add(msg).replace().execute().await.map_err(nl("adding a route"))?;
                }
            }
        }
        Ok(())
    }

    /// Drops the routes of the selectors no other CHILD_SA needs.
    pub(crate) async fn remove_routes(&mut self, selectors: &[TrafficSelector]) -> Result<(), GatewayError> {
        for ts in selectors {
            for p in prefixes(ts.start_addr, ts.end_addr) {
                let Some(count) = self.routes.get_mut(&p) else { continue };
                *count -= 1;
                if *count == 0 {
                    self.routes.remove(&p);
                    let msg = self.route(p.0, p.1)?;
                    self.handle.route().del(msg).execute().await.map_err(nl("removing a route"))?;
                }
            }
        }
        Ok(())
    }

    /// Removes every route and rule Tandem added.
    pub(crate) async fn cleanup(&mut self) -> Result<(), GatewayError> {
        let routes: Vec<_> = self.routes.drain().map(|(p, _)| p).collect();
        for (addr, len) in routes {
            let msg = self.route(addr, len)?;
            // Gone already if the TUN device went first.
            let _ = self.handle.route().del(msg).execute().await;
        }
        for rule in self.rules.drain(..) {
            self.handle.rule().del(rule).execute().await.map_err(nl("removing the routing rule"))?;
        }
        Ok(())
    }
}
