//! The cluster scenarios: each builds a site, scripts failures on the
//! virtual clock, then checks the run's counters and traces and prints a
//! summary table with the seed that reproduces it.

use super::lan::Impairments;
use super::world::{Lan, SimConfig, World};
use std::fmt::Write as _;
use std::time::Duration;
use tandem_cluster::{NodeEvent, SegmentSet, TwoNodeRule};

/// A scripted run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// N nodes share the clients' traffic; nothing fails.
    Steady,
    /// The node serving client 0 dies mid-stream.
    KillOwner,
    /// The dead node comes back and takes its segments back.
    Reintegrate,
    /// One node is cut off the sync link, then the link heals.
    PartitionSync,
    /// 1% loss and jitter on the sync link.
    LossySync,
    /// Client 0 rekeys its CHILD_SA as its node dies.
    RekeyDuringFailover,
    /// Every node is restarted in turn.
    RollingRestart,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 7] = [
        Scenario::Steady,
        Scenario::KillOwner,
        Scenario::Reintegrate,
        Scenario::PartitionSync,
        Scenario::LossySync,
        Scenario::RekeyDuringFailover,
        Scenario::RollingRestart,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::KillOwner => "kill-owner",
            Scenario::Reintegrate => "reintegrate",
            Scenario::PartitionSync => "partition-sync",
            Scenario::LossySync => "lossy-sync",
            Scenario::RekeyDuringFailover => "rekey-during-failover",
            Scenario::RollingRestart => "rolling-restart",
        }
    }
}

/// What a run found.
pub struct Outcome {
    /// The summary table.
    pub report: String,
    /// Broken promises; empty when the run passed.
    pub violations: Vec<String>,
    /// The world at the end, for further checks.
    pub world: World,
}

/// Runs `scenario` on a site of `nodes` nodes and `clients` clients.
pub fn run(scenario: Scenario, seed: u64, nodes: u8, clients: u16) -> Result<Outcome, String> {
    let mut w = World::new(SimConfig::new(seed, nodes, clients))?;
    let mut v = Vec::new();
    // Failovers: (when, node).
    let mut failovers = Vec::new();
    let settle = Duration::from_secs(3);
    w.run_until(settle);
    let up = w.clients.iter().filter(|c| c.is_up()).count();
    if up != usize::from(clients) {
        v.push(format!("only {up} of {clients} clients up after {settle:?}"));
    }
    match scenario {
        Scenario::Steady => w.run_until(Duration::from_secs(6)),
        Scenario::LossySync => {
            w.impair(
                Lan::Sync,
                Impairments {
                    loss: 0.01,
                    delay: Duration::from_micros(200),
                    jitter: Duration::from_millis(2),
                },
            );
            w.run_until(Duration::from_secs(9));
        }
        Scenario::KillOwner | Scenario::Reintegrate | Scenario::RekeyDuringFailover => {
            let victim = owner_of_client(&w, 0).ok_or("client 0 has no owner")?;
            if scenario == Scenario::RekeyDuringFailover {
                let now = w.now();
                w.clients[0].rekey_child(now);
            }
            w.kill(victim);
            failovers.push((w.elapsed(), victim));
            // strongSwan's and Tandem's first IKE retransmission comes
            // after 4 s: give the rekey time to be retransmitted.
            let end = if scenario == Scenario::RekeyDuringFailover { 10 } else { 6 };
            w.run_until(Duration::from_secs(end));
            if scenario == Scenario::Reintegrate {
                w.revive(victim)?;
                w.run_until(Duration::from_secs(10));
                if w.node(victim).is_none_or(|n| n.owned().is_empty()) {
                    v.push(format!("node {} did not take segments back", victim + 1));
                }
            }
            if scenario == Scenario::RekeyDuringFailover && w.clients[0].stats.child_rekeys == 0 {
                v.push("client 0's CHILD_SA rekey did not complete across the failover".into());
            }
        }
        Scenario::PartitionSync => {
            let cut = nodes - 1;
            let rest: Vec<usize> = (0..usize::from(cut)).collect();
            w.lan(Lan::Sync).partition(Some(&[&rest, &[usize::from(cut)]]));
            let cut_at = w.elapsed();
            failovers.push((cut_at, cut));
            w.run_until(Duration::from_secs(5));
            if nodes >= 3 && w.node(cut).is_some_and(|n| !n.owned().is_empty()) {
                v.push(format!("node {} serves in a minority partition", cut + 1));
            }
            // Fenced once, it stays out until the partition heals and it
            // has resynced: no flapping in between.
            let flaps = w
                .timeline
                .iter()
                .filter(|(at, n, e)| *n == cut + 1 && *at > cut_at && matches!(e, NodeEvent::Synced))
                .count();
            if nodes >= 3 && flaps > 0 {
                v.push(format!("node {} became synced {flaps} time(s) inside a minority partition", cut + 1));
            }
            w.lan(Lan::Sync).partition(None);
            w.run_until(Duration::from_secs(9));
        }
        Scenario::RollingRestart => {
            let mut t = settle;
            for i in 0..nodes {
                w.kill(i);
                failovers.push((w.elapsed(), i));
                t += Duration::from_secs(2);
                w.run_until(t);
                w.revive(i)?;
                t += Duration::from_secs(2);
                w.run_until(t);
            }
            t += Duration::from_secs(1);
            w.run_until(t);
        }
    }
    if scenario != Scenario::RekeyDuringFailover {
        for c in w.clients.iter().filter(|c| c.stats.child_rekeys > 0) {
            v.push(format!("client {}: {} CHILD_SA rekeys", c.id, c.stats.child_rekeys));
        }
    }
    check(&w, &failovers, &mut v);
    let report = report(&w, scenario, &failovers, &v);
    Ok(Outcome { report, violations: v, world: w })
}

/// The live node that owns client `j`'s segment.
pub fn owner_of_client(w: &World, j: u16) -> Option<u8> {
    let spi_seg = w.client_segment(j)?;
    (0..w.cfg.nodes).find(|&i| w.node(i).is_some_and(|n| n.owned().contains(spi_seg)))
}

fn check(w: &World, failovers: &[(Duration, u8)], v: &mut Vec<String>) {
    let count = w.cfg.segment_count;
    // One owner per segment among the live nodes.
    let mut owners = vec![0u32; count as usize + 1];
    for i in 0..w.cfg.nodes {
        if let Some(n) = w.node(i) {
            for s in n.owned().iter() {
                owners[usize::from(s.get())] += 1;
            }
        }
    }
    for (s, &o) in owners.iter().enumerate().skip(1) {
        if o != 1 {
            v.push(format!("segment {s} has {o} owners"));
        }
    }
    if w.cfg.nodes >= 3 || w.cfg.two_node == TwoNodeRule::LowestIdServes {
        for (at, g) in &w.trace.double_owners {
            v.push(format!("segment {g} had two owners at {:.3} s", at.as_secs_f64()));
        }
    }
    if w.trace.decrypted_twice > 0 {
        v.push(format!("{} packets decrypted by two nodes", w.trace.decrypted_twice));
    }
    let bound = w.cfg.timeout + w.cfg.heartbeat + w.cfg.interval;
    for c in &w.clients {
        let s = &c.stats;
        let name = format!("client {}", c.id);
        if s.seq_reused > 0 {
            v.push(format!("{name}: {} outbound sequence numbers reused", s.seq_reused));
        }
        if s.replay_drops > 0 || s.icv_drops > 0 {
            v.push(format!("{name}: {} replay and {} ICV drops", s.replay_drops, s.icv_drops));
        }
        if s.duplicate_echoes > 0 {
            v.push(format!("{name}: {} duplicate echoes", s.duplicate_echoes));
        }
        if s.ike_deleted > 0 || !c.is_up() {
            v.push(format!("{name}: lost its SA"));
        }
        if s.vips.len() != 1 {
            v.push(format!("{name}: virtual IPs {:?}", s.vips));
        }
        for &(at, gap) in &s.gaps {
            let near_failover = failovers.iter().any(|&(f, _)| {
                let since = w.since_start(at);
                since + gap >= f && since <= f + bound
            });
            if !near_failover || gap > bound {
                v.push(format!("{name}: {gap:?} without echoes from {:?}", w.since_start(at)));
            }
        }
    }
    // Every live node mirrors every client's SAs.
    let clients = w.clients.len();
    for i in 0..w.cfg.nodes {
        if let Some(n) = w.node(i) {
            let (ike, child) = n.sa_counts();
            if ike != clients || child != clients {
                v.push(format!("node {} holds {ike} IKE and {child} CHILD SAs for {clients} clients", i + 1));
            }
        }
    }
}

fn segments(s: SegmentSet) -> String {
    let v: Vec<String> = s.iter().map(|g| g.get().to_string()).collect();
    if v.is_empty() { "-".into() } else { v.join(",") }
}

/// The summary table.
pub fn report(w: &World, scenario: Scenario, failovers: &[(Duration, u8)], v: &[String]) -> String {
    let mut o = String::new();
    let cfg = &w.cfg;
    let _ = writeln!(
        o,
        "scenario {} (seed {}): {} nodes, {} clients, {} segments, heartbeat {:?}, timeout {:?}, {:?} of virtual time",
        scenario.name(),
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.segment_count,
        cfg.heartbeat,
        cfg.timeout,
        w.elapsed()
    );
    for (at, n) in failovers {
        let _ = writeln!(o, "  failure at {:>6.3} s: node {}", at.as_secs_f64(), n + 1);
    }
    let total: u64 = w.trace.decrypted_by.values().sum();
    let _ = writeln!(
        o,
        "  node  state    segments         decrypted  share  encrypted  verified   counted  IKE/CHILD SAs"
    );
    for i in 0..cfg.nodes {
        let dec = w.trace.decrypted_by.get(&(i + 1)).copied().unwrap_or(0);
        let enc = w.trace.encrypted_by.get(&(i + 1)).copied().unwrap_or(0);
        let share = if total == 0 { 0.0 } else { 100.0 * dec as f64 / total as f64 };
        match w.node(i) {
            Some(n) => {
                let st = n.stats();
                let (ike, child) = n.sa_counts();
                let _ = writeln!(
                    o,
                    "  {:>4}  {:<7}  {:<15}  {dec:>9}  {share:>4.0}%  {enc:>9}  {:>8}  {:>8}  {ike}/{child}",
                    i + 1,
                    if n.is_synced() { "synced" } else { "syncing" },
                    segments(n.owned()),
                    st.verified,
                    st.counted,
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  {:>4}  {:<7}  {:<15}  {dec:>9}  {share:>4.0}%  {enc:>9}",
                    i + 1,
                    "dead",
                    "-"
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "  client  address          VIP          sent  echoed  longest gap  replay/ICV drops  rekeys"
    );
    for c in &w.clients {
        let s = &c.stats;
        let _ = writeln!(
            o,
            "  {:>6}  {:<15}  {:<11}  {:>5}  {:>6}  {:>8.0} ms  {:>8}/{}  {:>6}",
            c.id,
            c.addr.to_string(),
            c.vip().map_or("-".into(), |a| a.to_string()),
            s.sent,
            s.echoed,
            s.max_gap.as_secs_f64() * 1000.0,
            s.replay_drops,
            s.icv_drops,
            s.child_rekeys,
        );
    }
    let lost = w.lost();
    let _ = writeln!(o, "  frames lost: external {}, internal {}, sync {}", lost[0], lost[1], lost[2]);
    if v.is_empty() {
        let _ = writeln!(o, "  result: PASS");
    } else {
        for x in v {
            let _ = writeln!(o, "  VIOLATION: {x}");
        }
    }
    o
}

/// The node events of a run as a readable timeline.
pub fn timeline(w: &World) -> String {
    let mut o = String::new();
    for (at, n, e) in &w.timeline {
        let what = match e {
            NodeEvent::Took(s) => format!("takes segments {}", segments(*s)),
            NodeEvent::Dropped(s) => format!("drops segments {}", segments(*s)),
            NodeEvent::PeerUp(p) => format!("hears node {p}"),
            NodeEvent::PeerDown(p) => format!("lost node {p}"),
            NodeEvent::Synced => "holds the full state (synced)".into(),
            NodeEvent::Unsynced => "lost quorum".into(),
            NodeEvent::IkeSaUp { virtual_ips, .. } => {
                let v: Vec<String> = virtual_ips.iter().map(ToString::to_string).collect();
                format!("IKE SA up, virtual IP {}", v.join(","))
            }
            _ => continue,
        };
        let _ = writeln!(o, "  {:>7.3} s  node {n}: {what}", at.as_secs_f64());
    }
    o
}
