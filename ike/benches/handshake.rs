//! IKE handshake benchmarks: full IKE_SA_INIT + IKE_AUTH exchanges (PSK,
//! first CHILD_SA) between an initiator and a responder [`Endpoint`] in one
//! process, datagrams delivered by hand.
//!
//! For each IKE suite two measurements:
//! - `pair`: the whole handshake, both sides (initiate, the four messages,
//!   draining transmits and events) per iteration: pairs completed per
//!   second on one core.
//! - `responder`: only the responder's two `handle_datagram` calls (the
//!   IKE_SA_INIT request and the IKE_AUTH request), each timed on its own and
//!   summed with `iter_custom`; the initiator's work is excluded.
//!
//! The responder is long-lived and accumulates SAs, as a gateway does, but
//! is replaced (with its initiator) every [`ROTATE`] handshakes, outside the
//! timed region, so memory stays bounded and dropping SAs is not measured.
//! For the target suite, `responder_with_10000_sas` measures the same on a
//! responder that already holds [`LOADED_BASE`] SAs (established untimed),
//! to show how the cost per handshake grows with the SA count.
//!
//! `cargo bench -p tandem-ike` prints criterion's figures and then a
//! summary against the target of BENCHMARKS.md (responder <= 200 us per
//! handshake). Pass `-- --quick` for a shorter run.
#![allow(missing_docs)]
// A benchmark measures wall-clock time; the sans-IO rule is for the library.
#![allow(clippy::disallowed_methods)]

use chacha20::ChaCha20Rng;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use criterion::Criterion;
use rand_core::SeedableRng;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tandem_crypto::proposal::{ProposalKind, parse_proposals};
use tandem_crypto::secret::SecretBytes;
use tandem_ike::wire::TrafficSelector;
use tandem_ike::{ChildConfig, Endpoint, Event, Identity, IkeConfig};

/// A new initiator and responder every this many timed handshakes.
const ROTATE: u64 = 1_000;

/// The loaded variant: the responder already holds [`LOADED_BASE`] SAs
/// (established untimed whenever it is replaced) and takes
/// [`LOADED_ROTATE`] timed handshakes on top of them.
const LOADED_BASE: u64 = 10_000;
/// See [`LOADED_BASE`].
const LOADED_ROTATE: u64 = 5_000;

/// The responder's address.
const R_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500);

/// (IKE proposal, ESP proposal) of each variant. ESP stays the same: only
/// the IKE suite changes the cost.
const SUITES: [(&str, &str); 2] =
    [("aes256gcm16-prfsha256-x25519", "aes256gcm16"), ("aes128-sha256-modp2048", "aes256gcm16")];

/// The suite the target applies to.
const TARGET_SUITE: &str = "aes256gcm16-prfsha256-x25519";
/// Target: responder CPU time per handshake.
const TARGET_US: f64 = 200.0;

/// (measurement, suite) of one series.
type Key = (&'static str, &'static str);

/// (iterations, nanoseconds) of every call criterion made, warm-up
/// included, by measurement.
static RESULTS: Mutex<BTreeMap<Key, Vec<(u64, u128)>>> = Mutex::new(BTreeMap::new());

fn record(key: Key, iters: u64, d: Duration) {
    let mut r = RESULTS.lock().expect("bench results lock");
    r.entry(key).or_default().push((iters, d.as_nanos()));
}

/// Criterion's samples per measurement, by suite.
fn sample_size(ike: &str) -> usize {
    // Milliseconds per modp2048 handshake: fewer samples.
    if ike.contains("modp") { 10 } else { 20 }
}

fn ts(a: [u8; 4], b: [u8; 4]) -> TrafficSelector {
    TrafficSelector::any(IpAddr::V4(a.into()), IpAddr::V4(b.into()))
}

fn config(ike: &str, esp: &str, id: &str, local: TrafficSelector, remote: TrafficSelector) -> IkeConfig {
    // Default lifetimes and liveness checks, as a gateway runs: no timer
    // fires during the handshakes, but their state is part of each SA.
    let child = ChildConfig::new(
        parse_proposals(ProposalKind::Esp, esp).expect("ESP proposal"),
        vec![local],
        vec![remote],
    );
    IkeConfig::new(
        parse_proposals(ProposalKind::Ike, ike).expect("IKE proposal"),
        Identity::fqdn(id),
        SecretBytes::from_slice(b"a pre-shared key of the benchmark"),
        child,
    )
}

/// The initiator's address for handshake `n`: clients come from many
/// addresses (198.18.0.0/15, the benchmarking range).
fn client(n: u64) -> SocketAddr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(base + (n % (1 << 17)) as u32)), 500)
}

/// Where the responder's time went in one handshake.
#[derive(Default)]
struct Split {
    init: Duration,
    auth: Duration,
}

/// An initiator and a responder with a deterministic RNG each.
struct Harness {
    /// SAs established (untimed) on each new pair of endpoints.
    base: u64,
    /// Timed handshakes before the endpoints are replaced.
    rotate: u64,
    /// SAs on the current responder.
    sas: u64,
    ic: IkeConfig,
    rc: IkeConfig,
    i: Endpoint,
    r: Endpoint,
    i_rng: ChaCha20Rng,
    r_rng: ChaCha20Rng,
    /// The virtual clock: the handshakes never wait for a timer.
    now: Instant,
    done: u64,
}

impl Harness {
    fn new(ike: &str, esp: &str, base: u64, rotate: u64) -> Self {
        let ic =
            config(ike, esp, "client.example", ts([10, 1, 0, 0], [10, 1, 255, 255]), ts([0; 4], [255; 4]));
        let rc =
            config(ike, esp, "gw.example", ts([198, 51, 100, 0], [198, 51, 100, 255]), ts([0; 4], [255; 4]));
        let mut h = Self {
            base,
            rotate,
            sas: 0,
            i: Endpoint::new(ic.clone()),
            r: Endpoint::new(rc.clone()),
            ic,
            rc,
            i_rng: ChaCha20Rng::from_seed([1; 32]),
            r_rng: ChaCha20Rng::from_seed([2; 32]),
            now: Instant::now(),
            done: 0,
        };
        h.refill();
        h
    }

    /// New endpoints with `base` SAs. Untimed.
    fn refill(&mut self) {
        self.i = Endpoint::new(self.ic.clone());
        self.r = Endpoint::new(self.rc.clone());
        self.sas = 0;
        for _ in 0..self.base {
            self.handshake(&mut Split::default());
        }
    }

    /// Replaces both endpoints after `rotate` timed handshakes. Untimed.
    fn rotate(&mut self) {
        if self.sas >= self.base + self.rotate {
            self.refill();
        }
    }

    /// One full handshake; the responder's `handle_datagram` calls are
    /// timed one by one into `split`.
    fn handshake(&mut self, split: &mut Split) {
        let local = client(self.done);
        self.done += 1;
        self.sas += 1;
        self.i.initiate(self.now, &mut self.i_rng, local, R_ADDR).expect("initiate");
        // Each datagram arrives at its `remote` from its `local`.
        let msg1 = self.i.poll_transmit().expect("IKE_SA_INIT request");

        let t = Instant::now();
        let r = self.r.handle_datagram(self.now, &mut self.r_rng, msg1.remote, msg1.local, &msg1.data);
        split.init += t.elapsed();
        r.expect("responder takes IKE_SA_INIT");
        let msg2 = self.r.poll_transmit().expect("IKE_SA_INIT response");

        self.i
            .handle_datagram(self.now, &mut self.i_rng, msg2.remote, msg2.local, &msg2.data)
            .expect("initiator");
        let msg3 = self.i.poll_transmit().expect("IKE_AUTH request");

        let t = Instant::now();
        let r = self.r.handle_datagram(self.now, &mut self.r_rng, msg3.remote, msg3.local, &msg3.data);
        split.auth += t.elapsed();
        r.expect("responder takes IKE_AUTH");
        let msg4 = self.r.poll_transmit().expect("IKE_AUTH response");

        self.i
            .handle_datagram(self.now, &mut self.i_rng, msg4.remote, msg4.local, &msg4.data)
            .expect("initiator");
        assert!(self.i.poll_transmit().is_none() && self.r.poll_transmit().is_none());
        // Both sides must have the IKE SA and the CHILD_SA, or the figures
        // would measure something else.
        for ep in [&mut self.i, &mut self.r] {
            let mut up = (0, 0);
            while let Some(e) = ep.poll_event() {
                match e {
                    Event::IkeSaEstablished { .. } => up.0 += 1,
                    Event::ChildSaEstablished(_) => up.1 += 1,
                    e => panic!("unexpected event {e:?}"),
                }
            }
            assert_eq!(up, (1, 1), "IKE SA and CHILD_SA established");
        }
    }
}

/// `loaded_base`: the SAs of the loaded variant ([`LOADED_BASE`], or a few
/// when criterion only tests that each benchmark runs).
fn bench_suite(c: &mut Criterion, ike: &'static str, esp: &'static str, loaded_base: u64) {
    let mut g = c.benchmark_group(format!("handshake/{ike}"));
    g.sample_size(sample_size(ike));

    g.bench_function("pair", |b| {
        let mut h = Harness::new(ike, esp, 0, ROTATE);
        b.iter_custom(|iters| {
            let mut d = Duration::ZERO;
            let mut split = Split::default();
            for _ in 0..iters {
                h.rotate();
                let t = Instant::now();
                h.handshake(&mut split);
                d += t.elapsed();
            }
            record(("pair", ike), iters, d);
            d
        })
    });

    g.bench_function("responder", |b| bench_responder(b, ike, esp, 0, ROTATE, "responder"));
    if ike == TARGET_SUITE {
        g.bench_function(format!("responder_with_{LOADED_BASE}_sas"), |b| {
            bench_responder(b, ike, esp, loaded_base, LOADED_ROTATE, "loaded")
        });
    }
    g.finish();
}

/// Times only the responder's `handle_datagram` calls; records them as
/// `name`, and the two requests as `name_init` and `name_auth`.
fn bench_responder(
    b: &mut criterion::Bencher<'_>,
    ike: &'static str,
    esp: &'static str,
    base: u64,
    rotate: u64,
    name: &'static str,
) {
    let mut h = Harness::new(ike, esp, base, rotate);
    let (init, auth) = match name {
        "loaded" => ("loaded_init", "loaded_auth"),
        _ => ("responder_init", "responder_auth"),
    };
    b.iter_custom(|iters| {
        let mut split = Split::default();
        for _ in 0..iters {
            h.rotate();
            h.handshake(&mut split);
        }
        let d = split.init + split.auth;
        record((name, ike), iters, d);
        record((init, ike), iters, split.init);
        record((auth, ike), iters, split.auth);
        d
    })
}

/// Microseconds per handshake over criterion's measurement samples, which
/// are its last calls: `samples` of them, or the last two in `--quick` mode
/// (criterion doubles the iterations until two agree). Warm-up calls come
/// first and are left out.
fn mean_us(calls: &[(u64, u128)], samples: usize) -> f64 {
    let last = &calls[calls.len().saturating_sub(samples)..];
    let (iters, ns) = last.iter().fold((0u64, 0u128), |(i, n), &(ci, cn)| (i + ci, n + cn));
    ns as f64 / iters as f64 / 1e3
}

fn summary(quick: bool) {
    let r = RESULTS.lock().expect("bench results lock");
    let get = |m: &'static str, s: &'static str| {
        r.get(&(m, s)).map(|v| mean_us(v, if quick { 2 } else { sample_size(s) }))
    };
    println!(
        "\n=== IKE handshakes, PSK + first CHILD_SA (us per handshake: mean over criterion's \
         measurement samples; same run) ==="
    );
    println!(
        "{:<30} | {:>9} {:>9} {:>9} {:>10} | {:>9} {:>10}",
        "IKE suite", "resp init", "resp auth", "resp", "resp hs/s", "pair", "pair hs/s"
    );
    // A measurement left out by a filter shows as "-".
    let cell = |v: Option<f64>, width: usize, prec: usize| match v {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "-"),
    };
    for (ike, _) in SUITES {
        let resp = get("responder", ike);
        let pair = get("pair", ike);
        if resp.is_none() && pair.is_none() {
            continue;
        }
        println!(
            "{:<30} | {} {} {} {} | {} {}",
            ike,
            cell(get("responder_init", ike), 9, 1),
            cell(get("responder_auth", ike), 9, 1),
            cell(resp, 9, 1),
            cell(resp.map(|r| 1e6 / r), 10, 0),
            cell(pair, 9, 1),
            cell(pair.map(|p| 1e6 / p), 10, 0),
        );
    }
    if let Some(resp) = get("loaded", TARGET_SUITE) {
        println!(
            "{:<30} | {} {} {} {} |",
            format!("  with {LOADED_BASE}-{} SAs", LOADED_BASE + LOADED_ROTATE),
            cell(get("loaded_init", TARGET_SUITE), 9, 1),
            cell(get("loaded_auth", TARGET_SUITE), 9, 1),
            cell(Some(resp), 9, 1),
            cell(Some(1e6 / resp), 10, 0),
        );
    }
    if let Some(resp) = get("responder", TARGET_SUITE) {
        println!(
            "target: responder <= {TARGET_US:.0} us per handshake ({:.0}/s per core), {TARGET_SUITE}: \
             {resp:.1} us ({:.0}/s per core): {}",
            1e6 / TARGET_US,
            1e6 / resp,
            if resp <= TARGET_US { "met" } else { "NOT met" }
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // criterion runs each benchmark once as a test, and a summary of one
    // iteration in a debug build would mislead.
    let benching =
        std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a == "--test" || a == "--list");
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(if quick { 300 } else { 1000 }))
        .measurement_time(Duration::from_millis(if quick { 1000 } else { 4000 }))
        .configure_from_args();
    for (ike, esp) in SUITES {
        bench_suite(&mut c, ike, esp, if benching { LOADED_BASE } else { 100 });
    }
    c.final_summary();
    if benching {
        summary(quick);
    }
}
