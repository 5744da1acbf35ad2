//! A deterministic whole-cluster simulation: real IKE, ESP and cluster
//! engines on an in-memory LAN with a virtual clock.
//!
//! [`World`] builds the site: N nodes, M road warriors (Tandem's own IKE
//! initiator asking for a virtual IP, sending a UDP probe every 10 ms that
//! a server behind the cluster echoes), three switches (external,
//! internal, sync) that flood the cluster's multicast MACs to every node
//! and learn unicast ones, with seeded loss, delay, jitter and partitions.
//! Time jumps from one deadline to the next, and every RNG is seeded from
//! one number, so a run is reproducible from its seed. [`scenario`] holds
//! the scripted failures and the checks the tests and `tandem demo` run.

mod client;
pub mod lan;
pub mod scenario;
mod world;

pub use client::{Client, ClientStats};
pub use scenario::{Outcome, Scenario};
pub use world::{Lan, SERVER, SimConfig, Trace, VIP, World, gateway_config};
