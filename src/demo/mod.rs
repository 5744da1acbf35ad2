//! `tandem demo`: what Tandem does, in one process, without root or a
//! network. By default a three-node cluster in the deterministic
//! simulation (see `tandem::sim`): road warriors connect, the node serving
//! one of them is killed mid-stream and later revived, and the timeline
//! shows who owns which segment, what each node decrypted and the gap
//! each client saw. `tandem demo esp` runs the userspace ESP data path
//! alone.

mod esp;

use clap::{Args, Subcommand};
use std::fmt::Write as _;
use std::time::Duration;
use tandem::sim::scenario::{self, Scenario};

/// Errors of the demo, as text for the terminal.
type DemoResult<T> = Result<T, String>;

/// Options of `tandem demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Seed of the simulation (a run is reproducible from it).
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Cluster nodes (2 to 16).
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    /// Road warriors.
    #[arg(long, default_value_t = 6)]
    clients: u16,
    #[command(subcommand)]
    what: Option<Demo>,
}

#[derive(Debug, Subcommand)]
enum Demo {
    /// The ESP data path alone: a key exchange, ESP SAs both ways, a
    /// batch of packets, a replayed and a forged one.
    Esp(esp::EspArgs),
}

pub(crate) fn run(args: &DemoArgs) -> DemoResult<()> {
    match &args.what {
        Some(Demo::Esp(a)) => esp::run(a),
        None => cluster(args),
    }
}

fn cluster(args: &DemoArgs) -> DemoResult<()> {
    if !(2..=16).contains(&args.nodes) || args.clients == 0 {
        return Err("--nodes must be 2 to 16 and --clients at least 1".into());
    }
    println!(
        "tandem demo: a {}-node cluster and {} road warriors in the deterministic simulation (seed {})",
        args.nodes, args.clients, args.seed
    );
    println!("  real IKE, ESP and cluster engines; an in-memory LAN; a virtual clock (no root, no network)");
    println!("  each client sends a UDP probe every 10 ms through its tunnel to a server that echoes it;");
    println!("  at 3 s the node serving client 0 is killed (kill -9), at 6 s it starts again.\n");
    let out = scenario::run(Scenario::Reintegrate, args.seed, args.nodes, args.clients)?;
    println!("timeline (virtual time):");
    print!("{}", scenario::timeline(&out.world));
    println!();
    print!("{}", out.report);
    println!("\n{}", summary(&out.world));
    if out.violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{} promise(s) broken, see above", out.violations.len()))
    }
}

/// One line per client: what the failover cost it.
fn summary(w: &tandem::sim::World) -> String {
    let mut o = String::from("what the clients saw:\n");
    for c in &w.clients {
        let worst = c.stats.gaps.iter().map(|g| g.1).max().unwrap_or(Duration::ZERO);
        let lost = c.stats.sent.saturating_sub(c.stats.echoed);
        let _ = writeln!(
            o,
            "  client {} (virtual IP {}): {} probes, {} unanswered, longest interruption {} ms, same IP throughout: {}",
            c.id,
            c.vip().map_or("-".into(), |a| a.to_string()),
            c.stats.sent,
            lost,
            worst.as_millis(),
            if c.stats.vips.len() == 1 { "yes" } else { "no" },
        );
    }
    o
}
