//! Which live node owns which segment, and when a partition may serve.
//!
//! Every node computes the same [`Assignment`] from the same inputs: the
//! configured nodes and segment count (a [`Layout`]) and the set of nodes
//! it believes live. No state, no history, no election: the assignment is
//! a pure function of the live set, so nodes that agree on who is live
//! agree on who owns what, and a node that rejoins gets back exactly the
//! segments it had.
//!
//! # Minimal movement: preference lists
//!
//! Each segment has a fixed preference list over the configured nodes; its
//! owner is the first live node on the list (rendezvous hashing has the
//! same shape, with lists sorted by a hash). So when a node leaves, only
//! its own segments move, each to the next live node on its list, and when
//! it comes back exactly those segments return to it. Any stateless rule
//! with that property has this shape: if removing a node that does not own
//! a segment never moves it, the owner is always the best live node by a
//! fixed per-segment order.
//!
//! # Balance: dealt lists, not hashed ones
//!
//! With lists sorted by a hash (plain rendezvous hashing) each node's share
//! is left to chance: in a trial with 64 segments the spread between the
//! most and the least loaded live node was 3 to 10 segments with everyone
//! up and up to 15 after failures. Tandem deals the lists instead, segment
//! by segment and position by position: each position goes to the node
//! that ends up least above its fair share over the live sets in which
//! that position decides the owner (those where every node before it on
//! the list is down). Candidates are compared first on the all-live set,
//! so first positions go round robin, then on the worst live set with one
//! node down, then on the worst of all quorate live sets, then on the sum;
//! remaining ties by a fixed hash. Only live sets that can serve count, so
//! a list is dealt only as deep as the largest quorate failure reaches.
//!
//! The lists are dealt over node ranks (the k-th smallest configured id is
//! rank k), so they depend only on the number of nodes and the segment
//! count. Dealing takes up to about 0.2 s in a release build and 0.5 s
//! in a debug build (16 nodes, 64 segments), once per [`Layout`]; build a
//! layout once and clone or share it.
//!
//! Measured over every quorate live set of every cluster of 2 to 16 nodes
//! and every segment count from 1 to 64 (the `balance_table` test, run
//! with `--ignored`), the spread between the most and the least loaded
//! live node is at most:
//!
//! | nodes down | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 |
//! |------------|---|---|---|---|---|---|---|---|
//! | max - min  | 1 | 2 | 4 | 5 | 7 | 7 | 8 | 9 |
//!
//! (five or more down needs 11 or more nodes). The spread with everyone up
//! is at most 1 by construction; the other bounds are measurements, not
//! theorems, and the tests re-check them.
//!
//! The lists, and so the assignment, are part of the cluster's contract:
//! every node must run the same dealing algorithm with the same node list
//! and segment count. Changing the configured nodes or the count re-deals
//! everything; the membership layer must not merge nodes whose layouts
//! differ.
//!
//! # Quorum and split brain
//!
//! With three or more configured nodes, only a live set holding a strict
//! majority of the configured nodes serves; any smaller set (a minority
//! partition, or half of an even split) owns nothing. Two disjoint
//! partitions cannot both hold a majority, so they never both own a
//! segment.
//!
//! Two nodes have no majority to fall back on once they lose each other,
//! and a node cannot tell a dead peer from a cut link, so a
//! [`TwoNodeRule`] chooses between availability and safety.

use crate::Error;
use crate::segment::{Segment, SegmentCount, SegmentSet, jhash2};
use core::fmt;

/// The fewest nodes a cluster has.
pub const MIN_NODES: usize = 2;
/// The most nodes a cluster has.
pub const MAX_NODES: usize = 16;

/// A node's id (`node_id` in the `[cluster]` config); any value, unique
/// among the configured nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u8);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who serves in a two-node cluster when each node sees only itself.
///
/// With three or more nodes the majority rule decides; two nodes that lose
/// each other cannot know whether the other is dead or merely cut off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TwoNodeRule {
    /// Each node serves every segment when alone, as strongSwan's HA plugin
    /// and keepalived pairs do: either node survives the other's failure.
    ///
    /// The price is split brain when the nodes are cut off from each other
    /// but both still reach the peers (a broken sync link on a separate
    /// network, a switch dropping their multicast to each other): both
    /// answer new IKE_SA_INITs, both decrypt the same ESP packets and both
    /// encrypt outbound packets of every SA with counters that drift apart,
    /// which reuses ESP sequence numbers, and so AEAD nonces, under one key.
    /// Run the sync traffic over the same network and interfaces as the
    /// cluster traffic, so that a node that cannot hear its peer cannot
    /// reach the peers either, or use three nodes.
    #[default]
    BothServe,
    /// When alone, the node with the lower id serves everything and the
    /// other serves nothing: never split brain, but the cluster survives
    /// only the failure of the higher-id node; if the lower-id node dies,
    /// nothing is served until it returns or an operator intervenes.
    LowestIdServes,
}

/// The fixed part of the segment assignment: the configured nodes, the
/// segment count, the two-node rule and each segment's preference list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The configured nodes in ascending id order: rank k is `nodes[k]`.
    nodes: Vec<NodeId>,
    count: SegmentCount,
    two_node: TwoNodeRule,
    /// Per segment, the leading ranks of its preference list: as many as
    /// a quorate live set can need.
    prefs: Vec<Vec<u8>>,
}

impl Layout {
    /// The layout of a cluster of `nodes` (2 to 16, distinct, any order)
    /// split into `count` segments. `two_node` matters only when two nodes
    /// are configured.
    pub fn new(nodes: &[NodeId], count: SegmentCount, two_node: TwoNodeRule) -> Result<Self, Error> {
        if !(MIN_NODES..=MAX_NODES).contains(&nodes.len()) {
            return Err(Error::NodeCount(nodes.len()));
        }
        let mut sorted = nodes.to_vec();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateNode(w[0]));
        }
        let prefs = deal(sorted.len(), usize::from(count.get()));
        Ok(Self { nodes: sorted, count, two_node, prefs })
    }

    /// The configured nodes, in ascending id order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// The segment count.
    pub const fn segment_count(&self) -> SegmentCount {
        self.count
    }

    /// The two-node rule.
    pub const fn two_node_rule(&self) -> TwoNodeRule {
        self.two_node
    }

    /// Whether a partition whose live nodes are `live` serves: a strict
    /// majority of the configured nodes, or for two nodes the
    /// [`TwoNodeRule`]. Rejects ids that are not configured.
    pub fn is_quorate(&self, live: &[NodeId]) -> Result<bool, Error> {
        Ok(self.serves(self.mask(live)?))
    }

    /// Who owns each segment when the live nodes are `live` (this node
    /// included; duplicates are ignored). A live set without quorum owns
    /// nothing. Rejects ids that are not configured.
    pub fn assign(&self, live: &[NodeId]) -> Result<Assignment, Error> {
        let live = self.mask(live)?;
        let mut out = Assignment::unserved(self.count);
        if self.serves(live) {
            for (owner, prefs) in out.owners.iter_mut().zip(&self.prefs) {
                *owner = prefs
                    .iter()
                    .find(|&&k| live & (1 << k) != 0)
                    .and_then(|&k| self.nodes.get(usize::from(k)).copied());
            }
        }
        Ok(out)
    }

    /// The live set as a bitmask over ranks.
    fn mask(&self, live: &[NodeId]) -> Result<u32, Error> {
        live.iter().try_fold(0u32, |mask, id| match self.nodes.binary_search(id) {
            Ok(k) => Ok(mask | 1 << k),
            Err(_) => Err(Error::UnknownNode(*id)),
        })
    }

    fn serves(&self, live: u32) -> bool {
        let up = live.count_ones() as usize;
        match (self.nodes.len(), self.two_node) {
            (2, TwoNodeRule::BothServe) => up >= 1,
            (2, TwoNodeRule::LowestIdServes) => live & 1 != 0,
            (n, _) => 2 * up > n,
        }
    }
}

/// Who owns each segment under one live set: every segment exactly one
/// live owner when the live set is quorate, none otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assignment {
    count: SegmentCount,
    /// Owner of segment `s` at index `s - 1`; entries past the count stay
    /// `None`.
    owners: [Option<NodeId>; SegmentCount::MAX.get() as usize],
}

impl Assignment {
    /// An assignment in which nobody owns anything: a node's state before
    /// it has heard from enough of the cluster.
    pub const fn unserved(count: SegmentCount) -> Self {
        Self { count, owners: [None; SegmentCount::MAX.get() as usize] }
    }

    /// The segment count.
    pub const fn segment_count(&self) -> SegmentCount {
        self.count
    }

    /// The owner of `segment`, if any.
    pub fn owner(&self, segment: Segment) -> Option<NodeId> {
        self.owners.get(segment.index() as usize).copied().flatten()
    }

    /// Whether anything is served (the live set had quorum).
    pub fn is_serving(&self) -> bool {
        self.owners.iter().any(Option::is_some)
    }

    /// The segments `node` owns.
    pub fn segments_of(&self, node: NodeId) -> SegmentSet {
        self.count.segments().filter(|s| self.owner(*s) == Some(node)).collect()
    }

    /// What `node` must announce when the assignment changes from `self`
    /// to `next`: the segments it takes and those it drops.
    pub fn changes_for(&self, node: NodeId, next: &Self) -> SegmentChanges {
        let (old, new) = (self.segments_of(node), next.segments_of(node));
        SegmentChanges { take: new.difference(old), drop: old.difference(new) }
    }
}

/// A node's segment changes between two assignments: the SEGMENT_TAKE and
/// SEGMENT_DROP it announces. Apply and announce the drops first, so that
/// two nodes never serve a segment at once during a handover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SegmentChanges {
    /// Segments the node starts to serve.
    pub take: SegmentSet,
    /// Segments the node stops serving.
    pub drop: SegmentSet,
}

impl SegmentChanges {
    /// Whether nothing changes.
    pub const fn is_empty(&self) -> bool {
        self.take.is_empty() && self.drop.is_empty()
    }
}

/// Deals the preference lists of `count` segments over `n` node ranks, each
/// list as deep as a quorate live set can need.
///
/// `load[live * n + k]` is how many of the segments dealt so far rank `k`
/// owns when exactly the ranks in the bitmask `live` are up; only live sets
/// that can serve are tracked. Each position of a list goes to the
/// candidate that, after taking the segment, stays least above the fair
/// share over the live sets in which that position decides the owner.
fn deal(n: usize, count: usize) -> Vec<Vec<u8>> {
    // Live sets that can serve: a strict majority from three nodes up; for
    // two nodes either single node may (under `TwoNodeRule::BothServe`).
    let min_live = if n >= 3 { n / 2 + 1 } else { 1 };
    let depth = n + 1 - min_live;
    let full: u32 = (1 << n) - 1;
    let mut load = vec![0u8; n << n];
    let mut lists = Vec::with_capacity(count);
    for seg in 0..count {
        // Fair share of a live set of `size` nodes after this segment:
        // `dealt / size` segments each; `size * load - dealt` is a load's
        // excess over it, scaled by `size`, which also weighs the larger
        // live sets (fewer nodes down, more likely) more.
        let dealt = seg as i64 + 1;
        // Ranks already on this segment's list.
        let mut before = 0u32;
        let mut list = Vec::with_capacity(depth);
        for _ in 0..depth {
            let mut best: Option<(Score, usize)> = None;
            for k in (0..n).filter(|k| before & (1 << k) == 0) {
                let (mut all_up, mut one_down, mut worst, mut sum) = (0, i64::MIN, i64::MIN, 0);
                for_each_live_set(full & !before, k, min_live, |live| {
                    let size = live.count_ones();
                    let excess = i64::from(size) * (i64::from(load[live as usize * n + k]) + 1) - dealt;
                    if size as usize == n {
                        all_up = excess;
                    } else if size as usize + 1 == n {
                        one_down = one_down.max(excess);
                    }
                    worst = worst.max(excess);
                    sum += excess;
                });
                let score = (all_up, one_down, worst, sum, jhash2(&[seg as u32, k as u32]));
                if best.is_none_or(|(b, _)| score < b) {
                    best = Some((score, k));
                }
            }
            let Some((_, k)) = best else { break };
            for_each_live_set(full & !before, k, min_live, |live| load[live as usize * n + k] += 1);
            list.push(k as u8);
            before |= 1 << k;
        }
        lists.push(list);
    }
    lists
}

/// How a candidate rank for a list position compares, lowest first: its
/// excess over the fair share on the all-live set, on the worst live set
/// with one node down, on the worst quorate live set, and summed over all
/// of them; then a fixed hash of (segment, rank).
type Score = (i64, i64, i64, i64, u32);

/// Calls `f` with every live set within `avail` that contains rank `k` and
/// has at least `min_live` members: the live sets in which a list position
/// holding `k`, after positions holding the ranks outside `avail`, decides
/// the owner.
fn for_each_live_set(avail: u32, k: usize, min_live: usize, mut f: impl FnMut(u32)) {
    let others = avail & !(1 << k);
    let mut sub = others;
    loop {
        let live = sub | 1 << k;
        if live.count_ones() as usize >= min_live {
            f(live);
        }
        if sub == 0 {
            break;
        }
        sub = (sub - 1) & others;
    }
}
