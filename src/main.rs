//! `tandem`: the gateway binary.
//!
//! - `tandem run -c FILE`: the gateway (IKE, ESP in UDP, a TUN device), or
//!   with a `[cluster]` section a cluster node (AF_PACKET ports).
//! - `tandem status|sas|initiate|terminate|reload|segments`: a running
//!   gateway's control socket.
//! - `tandem check -c FILE`: validates a gateway configuration (see
//!   docs/config.md).
//! - `tandem segment-of ADDR`: the cluster segment of a peer address.
//! - `tandem demo`: a three-node cluster in the deterministic simulation,
//!   with a node killed and revived; `tandem demo esp`: the ESP data path
//!   alone. Neither needs root.

mod config;
mod control;
mod demo;
mod gateway;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tandem: a userspace IPsec/IKEv2 gateway with active/active clustering.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (needs root: a TUN device, routes, UDP 500/4500).
    Run(RunArgs),
    /// Show a running gateway's state in brief.
    Status(ControlArgs),
    /// List a running gateway's IKE and CHILD SAs with their counters.
    Sas(ControlArgs),
    /// Bring a child (and its IKE SA) up.
    Initiate {
        /// The child's name.
        child: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Delete IKE SAs: all of a connection (by name) or one (by id).
    Terminate {
        /// A connection name, or an IKE SA id as `tandem sas` shows it.
        ike: String,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Re-read the configuration file of a running gateway.
    Reload(ControlArgs),
    /// Act on a running cluster node's segments (see `tandem status`).
    Segments {
        /// take: serve again; drop: stop serving here; resync: fetch the
        /// state again from the other nodes.
        action: control::SegmentAction,
        /// Segment numbers (1-based).
        #[arg(required = true, value_name = "N")]
        segments: Vec<u32>,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Print the cluster segment of a peer address (CLUSTERIP sourceip).
    SegmentOf(SegmentOfArgs),
    /// Validate a configuration file and summarize it; exit 1 on errors.
    Check(CheckArgs),
    /// Run the ESP data path in process: no root, no network.
    Demo(demo::DemoArgs),
}

/// Options of `tandem check`.
#[derive(Debug, Args)]
struct CheckArgs {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = "/etc/tandem/gateway.toml")]
    config: PathBuf,
    /// Print every connection, child and pool with its defaults filled in.
    #[arg(short, long)]
    verbose: bool,
}

/// Options of `tandem run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = "/etc/tandem/gateway.toml")]
    config: PathBuf,
}

/// How to reach a running gateway.
#[derive(Debug, Args)]
struct ControlArgs {
    /// The gateway's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/tandem/tandem.sock")]
    socket: PathBuf,
    /// Print the reply as JSON.
    #[arg(long)]
    json: bool,
}

/// Sends one control request and prints the reply.
fn control_call(args: &ControlArgs, request: &control::Request) -> ExitCode {
    match control::call(&args.socket, request) {
        Ok(reply) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&reply).unwrap_or_default());
            } else {
                print!("{}", control::render(&reply));
            }
            if matches!(reply, control::Reply::Error { .. }) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("tandem: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Options of `tandem segment-of`.
#[derive(Debug, Args)]
struct SegmentOfArgs {
    /// The peer's IPv4 or IPv6 address.
    addr: std::net::IpAddr,
    /// The cluster's segment count (1 to 64).
    #[arg(long, default_value_t = 2)]
    count: u32,
}

/// `tandem run`: load, check, plan, then serve until SIGTERM.
fn run(args: &RunArgs) -> Result<(), String> {
    let cfg = config::load(&args.config).map_err(|e| e.to_string())?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cfg.log.level.name()));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let plan = gateway::Plan::from_config(&cfg).map_err(|e| format!("{}: {e}", args.config.display()))?;
    gateway::run(plan).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tandem: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Status(args) => control_call(&args, &control::Request::Status),
        Command::Sas(args) => control_call(&args, &control::Request::Sas),
        Command::Initiate { child, control } => control_call(&control, &control::Request::Initiate { child }),
        Command::Terminate { ike, control } => control_call(&control, &control::Request::Terminate { ike }),
        Command::Reload(args) => control_call(&args, &control::Request::Reload),
        Command::Segments { action, segments, control } => {
            control_call(&control, &control::Request::Segments { action, segments })
        }
        Command::SegmentOf(args) => match tandem_cluster::SegmentCount::new(args.count) {
            Ok(count) => {
                println!("{}", tandem_cluster::segment_of(args.addr, count));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tandem: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => {
            let report = config::check(&args.config, args.verbose);
            eprint!("{}", report.stderr);
            print!("{}", report.stdout);
            if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Demo(args) => match demo::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tandem: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
