//! `tandem`: the gateway binary.
//!
//! Today it carries `tandem demo`, an in-process run of the data path that
//! needs no root: a key exchange, KEYMAT derivation, ESP SAs in both
//! directions, and a batch of packets through them with the drop counters
//! shown. The gateway runtime (`tandem run`) arrives with the IKE engine.

mod demo;

use clap::{Parser, Subcommand};
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
    /// Run the ESP data path in process: no root, no network.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem: {e}");
            ExitCode::FAILURE
        }
    }
}
