//! The neighbour table: the MACs of on-link addresses, learned from ARP,
//! ND and passing traffic, and the packets waiting for an address to
//! resolve.
//!
//! A resolved entry is used for [`LIFETIME`] after its last confirmation;
//! past [`STALE`] each use also asks for a fresh answer (once per
//! [`RETRY`]). An unresolved address is asked for again every [`RETRY`],
//! [`RETRIES`] times, and then its queued packets are dropped. The table
//! holds a bounded number of entries and evicts the least recently
//! confirmed one to make room; unresolved addresses are bounded apart, so
//! a burst to many silent hosts cannot fill it.

use super::ether::Mac;
use core::net::IpAddr;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// An entry this long unconfirmed is stale: still used, but re-asked.
const STALE: Duration = Duration::from_secs(30);
/// An entry this long unconfirmed is gone.
const LIFETIME: Duration = Duration::from_secs(60);
/// Requests for one address are this far apart at least.
const RETRY: Duration = Duration::from_secs(1);
/// Requests repeated for an unresolved address before giving up.
const RETRIES: u8 = 3;
/// Packets queued per unresolved address.
const QUEUE: usize = 16;
/// Confirmations of the same MAC closer together than this are not
/// recorded, so passing traffic costs one lookup.
const REFRESH: Duration = Duration::from_secs(1);

struct Resolved {
    mac: Mac,
    confirmed: Instant,
    /// When a stale entry was last re-asked.
    probed: Option<Instant>,
}

struct Pending {
    /// When the next request, or giving up, is due.
    due: Instant,
    /// Requests sent so far.
    sent: u8,
    queue: VecDeque<Vec<u8>>,
}

/// Where a packet for a next hop goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// To this MAC; `probe`: the entry is stale, ask for the address again.
    Mac {
        /// The next hop's MAC.
        mac: Mac,
        /// Send a request for the next hop.
        probe: bool,
    },
    /// Queued until the address resolves; `request`: this is a new
    /// unresolved address, ask for it.
    Queued {
        /// Send a request for the next hop.
        request: bool,
    },
    /// Dropped: the address's queue or the unresolved addresses are full.
    Dropped,
}

/// The table.
pub(crate) struct Neighbours {
    resolved: BTreeMap<IpAddr, Resolved>,
    pending: BTreeMap<IpAddr, Pending>,
    /// Resolved entries by confirmation time.
    ages: BTreeSet<(Instant, IpAddr)>,
    /// Pending entries by due time.
    dues: BTreeSet<(Instant, IpAddr)>,
    capacity: usize,
    max_pending: usize,
    /// The entry confirmed last, with its confirmation time, while it is
    /// in the table unchanged: passing traffic from one station is
    /// confirmed without a lookup.
    last: Option<(IpAddr, Mac, Instant)>,
}

impl Neighbours {
    /// An empty table of `capacity` entries at most, `max_pending` of them
    /// unresolved.
    pub(crate) fn new(capacity: usize, max_pending: usize) -> Self {
        Self {
            resolved: BTreeMap::new(),
            pending: BTreeMap::new(),
            ages: BTreeSet::new(),
            dues: BTreeSet::new(),
            capacity,
            max_pending,
            last: None,
        }
    }

    /// Where `packet` for the next hop `ip` goes at `now`; a queued packet
    /// is copied.
    pub(crate) fn next_hop(&mut self, now: Instant, ip: IpAddr, packet: &[u8]) -> Next {
        if let Some(r) = self.resolved.get_mut(&ip) {
            let age = now.saturating_duration_since(r.confirmed);
            if age < LIFETIME {
                let probe =
                    age >= STALE && r.probed.is_none_or(|p| now.saturating_duration_since(p) >= RETRY);
                if probe {
                    r.probed = Some(now);
                }
                return Next::Mac { mac: r.mac, probe };
            }
            self.ages.remove(&(r.confirmed, ip));
            self.resolved.remove(&ip);
            self.last = None;
        }
        if let Some(p) = self.pending.get_mut(&ip) {
            if p.queue.len() >= QUEUE {
                return Next::Dropped;
            }
            p.queue.push_back(packet.to_vec());
            return Next::Queued { request: false };
        }
        if self.pending.len() >= self.max_pending || !self.make_room() {
            return Next::Dropped;
        }
        let due = now + RETRY;
        self.pending.insert(ip, Pending { due, sent: 1, queue: VecDeque::from([packet.to_vec()]) });
        self.dues.insert((due, ip));
        Next::Queued { request: true }
    }

    /// `ip` is at `mac` as of `now`. A resolved entry with another MAC is
    /// only replaced if `overrides`. Returns `None` if refused, else the
    /// packets that waited for `ip` (often none), now to be sent to `mac`.
    pub(crate) fn learn(
        &mut self,
        now: Instant,
        ip: IpAddr,
        mac: Mac,
        overrides: bool,
    ) -> Option<VecDeque<Vec<u8>>> {
        // What the lookup below would find and leave as it is.
        if let Some((l_ip, l_mac, confirmed)) = self.last
            && l_ip == ip
            && l_mac == mac
            && now.saturating_duration_since(confirmed) < REFRESH
        {
            return Some(VecDeque::new());
        }
        if let Some(r) = self.resolved.get_mut(&ip) {
            if r.mac != mac && !overrides {
                return None;
            }
            if r.mac != mac || now.saturating_duration_since(r.confirmed) >= REFRESH {
                self.ages.remove(&(r.confirmed, ip));
                self.ages.insert((now, ip));
                *r = Resolved { mac, confirmed: now, probed: None };
            }
            self.last = Some((ip, mac, r.confirmed));
            return Some(VecDeque::new());
        }
        let queue = match self.pending.remove(&ip) {
            Some(p) => {
                self.dues.remove(&(p.due, ip));
                p.queue
            }
            None if self.make_room() => VecDeque::new(),
            None => return None,
        };
        self.resolved.insert(ip, Resolved { mac, confirmed: now, probed: None });
        self.ages.insert((now, ip));
        self.last = Some((ip, mac, now));
        Some(queue)
    }

    /// Evicts the least recently confirmed entry if the table is full;
    /// `false` if it is full of unresolved addresses.
    fn make_room(&mut self) -> bool {
        if self.resolved.len() + self.pending.len() < self.capacity {
            return true;
        }
        match self.ages.pop_first() {
            Some((_, ip)) => {
                self.resolved.remove(&ip);
                self.last = None;
                true
            }
            None => false,
        }
    }

    /// When [`Self::handle_timeout`] is next due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let due = self.dues.first().map(|&(t, _)| t);
        let expiry = self.ages.first().map(|&(t, _)| t + LIFETIME);
        due.into_iter().chain(expiry).min()
    }

    /// Retries and expiries due at `now`: calls `request` for each address
    /// to ask for again; returns how many queued packets were given up.
    pub(crate) fn handle_timeout(&mut self, now: Instant, request: &mut dyn FnMut(IpAddr)) -> u64 {
        let mut dropped = 0;
        while let Some(&(due, ip)) = self.dues.first()
            && due <= now
        {
            self.dues.pop_first();
            let Some(p) = self.pending.get_mut(&ip) else { continue };
            if p.sent <= RETRIES {
                p.sent += 1;
                p.due = now + RETRY;
                self.dues.insert((p.due, ip));
                request(ip);
            } else {
                dropped += u64::try_from(p.queue.len()).unwrap_or(u64::MAX);
                self.pending.remove(&ip);
            }
        }
        while let Some(&(confirmed, ip)) = self.ages.first()
            && confirmed + LIFETIME <= now
        {
            self.ages.pop_first();
            self.resolved.remove(&ip);
            self.last = None;
        }
        dropped
    }

    /// The resolved entries, by address.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpAddr, Mac)> {
        self.resolved.iter().map(|(&ip, r)| (ip, r.mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::tests::{at, secs};

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    #[test]
    fn evicts_the_least_recently_confirmed_entry() {
        let mut t = Neighbours::new(3, 1);
        for n in 1..=3 {
            assert!(t.learn(at(secs(u64::from(n))), ip(n), mac(n), true).is_some());
        }
        // Confirming 1 again makes 2 the oldest.
        assert!(t.learn(at(secs(5)), ip(1), mac(1), true).is_some());
        assert!(t.learn(at(secs(6)), ip(4), mac(4), true).is_some());
        let left: Vec<_> = t.iter().map(|(a, _)| a).collect();
        assert_eq!(left, [ip(1), ip(3), ip(4)]);
        // A new unresolved address evicts too, but only `max_pending` wait.
        assert_eq!(t.next_hop(at(secs(7)), ip(5), b"p"), Next::Queued { request: true });
        assert_eq!(t.next_hop(at(secs(7)), ip(6), b"p"), Next::Dropped);
        assert_eq!(t.iter().count(), 2);
        // Full of unresolved addresses, nothing can be learned.
        let mut t = Neighbours::new(1, 1);
        assert_eq!(t.next_hop(at(secs(0)), ip(5), b"p"), Next::Queued { request: true });
        assert_eq!(t.learn(at(secs(0)), ip(6), mac(6), true), None);
        assert_eq!(t.learn(at(secs(0)), ip(5), mac(5), true).map(|q| q.len()), Some(1));
    }

    #[test]
    fn override_flag_guards_a_resolved_mac() {
        let mut t = Neighbours::new(8, 8);
        assert!(t.learn(at(secs(0)), ip(1), mac(1), false).is_some(), "new entries need no override");
        assert_eq!(t.learn(at(secs(2)), ip(1), mac(9), false), None);
        assert!(t.learn(at(secs(2)), ip(1), mac(1), false).is_some(), "same MAC confirms");
        assert!(t.learn(at(secs(3)), ip(1), mac(9), true).is_some());
        assert_eq!(t.iter().collect::<Vec<_>>(), [(ip(1), mac(9))]);
    }

    #[test]
    fn confirmations_within_a_second_are_not_recorded() {
        let mut t = Neighbours::new(8, 8);
        assert!(t.learn(at(secs(0)), ip(1), mac(1), true).is_some());
        assert!(t.learn(at(Duration::from_millis(900)), ip(1), mac(1), true).is_some());
        assert_eq!(t.poll_timeout(), Some(at(LIFETIME)));
        assert!(t.learn(at(secs(1)), ip(1), mac(1), true).is_some());
        assert_eq!(t.poll_timeout(), Some(at(LIFETIME + secs(1))));
    }
}
