//! The whole-cluster simulation: every scenario for fixed seeds and one
//! random seed (printed, so a failure can be replayed with
//! `TANDEM_SIM_SEED=<seed> cargo test --test cluster_sim`).

use tandem::sim::scenario::{self, Scenario};

/// Fixed seeds, plus the seed from `TANDEM_SIM_SEED` or a random one.
fn seeds() -> Vec<u64> {
    let extra = std::env::var("TANDEM_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("random seed");
        u64::from_le_bytes(b)
    });
    println!("random seed of this run: {extra}");
    vec![1, 2, extra]
}

fn check(s: Scenario, nodes: u8, clients: u16) {
    for seed in seeds() {
        let out = scenario::run(s, seed, nodes, clients).expect("the site builds");
        println!("{}", out.report);
        assert!(out.violations.is_empty(), "{} failed with seed {seed}:\n{}", s.name(), out.report);
    }
}

#[test]
fn steady_state_shares_the_traffic() {
    check(Scenario::Steady, 3, 6);
}

#[test]
fn the_owner_of_a_client_dies_mid_stream() {
    check(Scenario::KillOwner, 3, 6);
}

#[test]
fn four_nodes_survive_the_death_of_an_owner() {
    check(Scenario::KillOwner, 4, 8);
}

#[test]
fn a_revived_node_reintegrates_without_rekeys() {
    check(Scenario::Reintegrate, 3, 6);
}

#[test]
fn a_partitioned_sync_link_heals() {
    check(Scenario::PartitionSync, 3, 6);
}

#[test]
fn one_percent_loss_on_the_sync_link() {
    check(Scenario::LossySync, 3, 6);
}

#[test]
fn a_rekey_during_failover_completes() {
    check(Scenario::RekeyDuringFailover, 3, 6);
}

#[test]
fn rolling_restart_of_every_node() {
    check(Scenario::RollingRestart, 3, 6);
}

#[test]
fn two_nodes_fail_over_and_reintegrate() {
    check(Scenario::Reintegrate, 2, 4);
}

#[test]
fn an_operator_drops_takes_and_resyncs_a_segment() {
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};
    use tandem_cluster::{NodeId, SegmentSet};

    let mut w = World::new(SimConfig::new(5, 3, 6)).expect("site");
    w.run_until(Duration::from_secs(3));
    let seg = w.client_segment(0).expect("segment");
    let mut set = SegmentSet::EMPTY;
    set.insert(seg);
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let other = (owner + 1) % 3;
    w.operate(owner, |n, now| n.drop_segments(now, set));
    w.run_until(Duration::from_secs(4));
    assert_eq!(scenario::owner_of_client(&w, 0), None, "dropped by hand, and nobody steps in");
    let echoed = w.clients[0].stats.echoed;
    w.run_until(Duration::from_millis(4500));
    assert_eq!(w.clients[0].stats.echoed, echoed, "client 0 is not served");
    // The owner takes it back; another node is refused while it claims it.
    let r = w.operate(owner, |n, now| n.take_segments(now, set)).expect("alive");
    assert_eq!(r, Ok(()));
    w.run_until(Duration::from_secs(5));
    assert_eq!(scenario::owner_of_client(&w, 0), Some(owner));
    let r = w.operate(other, |n, now| n.take_segments(now, set)).expect("alive");
    assert_eq!(r, Err(NodeId(owner + 1)), "refused: the owner claims it");
    let applied = w.node(other).expect("alive").stats().sync_applied;
    w.operate(other, |n, now| n.resync_segments(now, set));
    w.run_until(Duration::from_secs(6));
    assert!(w.node(other).expect("alive").stats().sync_applied > applied + 1, "the resync arrived");
    assert!(w.clients[0].stats.echoed > echoed + 50, "client 0 is served again");
}

#[test]
fn a_leaving_node_hands_over_without_a_gap() {
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};

    let mut w = World::new(SimConfig::new(9, 3, 6)).expect("site");
    w.run_until(Duration::from_secs(3));
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let echoed = w.clients[0].stats.echoed;
    // A planned shutdown: leave, keep running for two heartbeats, exit.
    w.operate(owner, |n, now| n.leave(now));
    w.run_until(Duration::from_millis(3200));
    w.kill(owner);
    let next = scenario::owner_of_client(&w, 0).expect("taken over at once");
    assert_ne!(next, owner);
    w.run_until(Duration::from_millis(3500));
    // 50 probes of 10 ms went out in these 500 ms: a timeout-driven
    // takeover would have lost most of them.
    let got = w.clients[0].stats.echoed - echoed;
    assert!(got >= 50, "client 0 got {got} of 50 echoes across the handover");
}

#[test]
fn standbys_verify_one_esp_packet_in_sixteen_and_every_few_ms() {
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};

    // The world passes ESP over with `Node::pass_over_esp` before it
    // hands a packet to the node, as the runtime does in a batch: the
    // sampling must come out the same. Probes 0.25 ms apart: every 16th
    // (the default) is sooner than the 5 ms floor; 10 ms apart: the floor
    // samples each.
    for (interval, n) in [(Duration::from_micros(250), 16), (Duration::from_millis(10), 1)] {
        let mut cfg = SimConfig::new(11, 3, 6);
        cfg.interval = interval;
        let mut w = World::new(cfg).expect("site");
        w.run_until(Duration::from_secs(3));
        for i in 0..3 {
            let s = w.node(i).expect("alive").stats();
            let seen = s.verified + s.skipped;
            let shown = format!("node {i}, probes {interval:?} apart: {} verified of {seen}", s.verified);
            assert!(seen > 100, "{shown}");
            // One in n, within 10%.
            assert!(s.verified * n * 10 >= seen * 9, "{shown}");
            assert!(s.verified * n * 9 <= seen * 10, "{shown}");
        }
    }
}

#[test]
fn a_standby_verifies_every_packet_a_port_filter_picked() {
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};

    // A port's filter passes one super-packet in n whole; the runtime then
    // has the standby verify each of its packets (`sample_next_esp`)
    // instead of one in n of them again.
    let interval = Duration::from_micros(250);
    let mut cfg = SimConfig::new(17, 3, 1);
    cfg.interval = interval;
    let mut w = World::new(cfg).expect("site");
    let mut t = Duration::from_secs(3);
    w.run_until(t);
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let standby = (owner + 1) % 3;
    let addr = w.clients[0].addr;
    let sas = w.node(standby).expect("alive").sas();
    let sa = sas.iter().find(|r| r.remote.ip() == addr).expect("the client's SA");
    let spi = sa.children.first().expect("a CHILD_SA").inbound_spi;
    let before = w.node(standby).expect("alive").stats();
    for _ in 0..200 {
        w.operate(standby, |n, _| n.sample_next_esp(spi)).expect("alive");
        t += interval;
        w.run_until(t);
    }
    let after = w.node(standby).expect("alive").stats();
    let verified = after.verified - before.verified;
    let seen = verified + after.skipped - before.skipped;
    assert!(seen >= 150, "{seen} packets seen");
    assert!(verified * 10 >= seen * 9, "{verified} of {seen} verified");
    let o = w.node(owner).expect("alive").stats();
    assert_eq!(o.verified, 0, "the owner decrypts: {o:?}");
}

#[test]
fn the_serving_node_terminates_an_ike_sa() {
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};
    use tandem_cluster::Error;

    let mut w = World::new(SimConfig::new(13, 3, 6)).expect("site");
    w.run_until(Duration::from_secs(3));
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let other = (owner + 1) % 3;
    let addr = w.clients[0].addr;
    let sa = w.node(owner).expect("alive").sas().into_iter().find(|r| r.remote.ip() == addr).expect("its SA");
    assert!(sa.served);
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let segment = sa.segment.expect("a segment");
    let refused = w.operate(other, |n, now| n.terminate(now, &mut rng, sa.id)).expect("alive");
    assert_eq!(refused, Err(Error::NotServedHere(segment)), "only the owner terminates");
    // Likewise only the owner of a peer's segment initiates to it.
    let to = std::net::SocketAddr::new(addr, 500);
    let refused = w.operate(other, |n, now| n.initiate(now, &mut rng, to)).expect("alive");
    assert_eq!(refused, Err(Error::NotServedHere(segment)), "only the owner initiates");
    let deleted = w.clients[0].stats.ike_deleted;
    w.operate(owner, |n, now| n.terminate(now, &mut rng, sa.id)).expect("alive").expect("deleted");
    w.run_until(Duration::from_millis(3500));
    assert_eq!(w.clients[0].stats.ike_deleted, deleted + 1, "the client saw the delete");
    for i in 0..3 {
        let held = w.node(i).expect("alive").sas().iter().any(|r| r.id == sa.id);
        assert!(!held, "node {i} dropped its copy of the SA");
    }
}

#[test]
fn a_reload_deletes_the_served_sas_outside_the_new_selectors() {
    use chacha20::ChaCha20Rng;
    use core::net::{IpAddr, Ipv4Addr};
    use rand_core::SeedableRng;
    use std::time::Duration;
    use tandem::sim::{SimConfig, World, gateway_config};
    use tandem_ike::wire::TrafficSelector;

    let mut w = World::new(SimConfig::new(17, 3, 6)).expect("site");
    w.run_until(Duration::from_secs(3));
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let served: Vec<_> =
        w.node(owner).expect("alive").sas().into_iter().filter(|r| r.served).map(|r| r.id).collect();
    assert!(!served.is_empty());
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    // The same settings again: nothing to delete.
    let same = gateway_config().expect("config");
    let none = w.operate(owner, |n, now| n.reconfigure(now, &mut rng, same)).expect("alive");
    assert!(none.is_empty(), "{none:?}");
    // Half the protected network: every CHILD_SA (10.0.0.0/24) is outside.
    let mut narrower = gateway_config().expect("config");
    let half = |b| IpAddr::V4(Ipv4Addr::new(10, 0, 0, b));
    narrower.child.local_ts = vec![TrafficSelector::any(half(0), half(127))];
    let mut deleted = w.operate(owner, |n, now| n.reconfigure(now, &mut rng, narrower)).expect("alive");
    deleted.sort();
    assert_eq!(deleted, served, "the SAs it serves, and only those");
    w.run_until(Duration::from_millis(3500));
    for i in 0..3 {
        let left: Vec<_> = w.node(i).expect("alive").sas().into_iter().map(|r| r.id).collect();
        assert!(served.iter().all(|id| !left.contains(id)), "node {i} dropped them");
    }
}

#[test]
fn each_node_names_the_hosts_of_the_segments_it_does_not_own() {
    use std::collections::BTreeSet;
    use std::net::IpAddr;
    use std::time::Duration;
    use tandem::sim::{SimConfig, World};

    // What the internal port's filter trims: the peers' single-address
    // selectors of the CHILD_SAs a node does not serve, and only those.
    let hosts = |w: &World, i: u8, served: bool| -> BTreeSet<IpAddr> {
        let sas = w.node(i).expect("alive").sas();
        sas.iter()
            .filter(|r| r.served == served)
            .flat_map(|r| r.children.iter().flat_map(|c| c.remote_ts.iter()))
            .filter(|ts| ts.start_addr == ts.end_addr)
            .map(|ts| ts.start_addr)
            .collect()
    };
    let foreign = |w: &World, i: u8| -> BTreeSet<IpAddr> {
        w.node(i).expect("alive").foreign_hosts().into_iter().collect()
    };
    let mut w = World::new(SimConfig::new(19, 3, 6)).expect("site");
    w.run_until(Duration::from_secs(3));
    for i in 0..3 {
        let (theirs, ours) = (hosts(&w, i, false), hosts(&w, i, true));
        assert!(!theirs.is_empty() && !ours.is_empty(), "node {i} serves some clients and mirrors others");
        assert_eq!(foreign(&w, i), &theirs - &ours, "node {i}");
    }
    // The owner of client 0 dies: its heir no longer names the client's
    // host, and the third node still does.
    let owner = scenario::owner_of_client(&w, 0).expect("an owner");
    let host = hosts(&w, owner, true);
    let generation = w.node(owner).expect("alive").sa_generation();
    assert!(generation > 0, "SAs were installed");
    w.kill(owner);
    w.run_until(Duration::from_secs(5));
    let heir = scenario::owner_of_client(&w, 0).expect("a new owner");
    assert_ne!(heir, owner);
    let third = (0..3).find(|&i| i != owner && i != heir).expect("a third node");
    assert!(foreign(&w, heir).is_disjoint(&host), "the heir serves them now");
    let still = foreign(&w, third);
    let theirs = hosts(&w, third, false);
    assert_eq!(still, &theirs - &hosts(&w, third, true), "the third node");
}
