//! ESP data-path benchmarks: encapsulation and decapsulation beside the raw
//! AEAD seal/open of the same buffer, for every AEAD and provider, at 64,
//! 576, 1400 and 9000 octets; plus AES-CBC+HMAC and the replay window.
//!
//! `cargo bench -p tandem-esp` prints criterion's figures and then a summary
//! table with packets/s, Gbit/s and the ESP/raw ratios (the targets of
//! BENCHMARKS.md). Pass `-- --quick` for a shorter run.
#![allow(missing_docs)]
// A benchmark measures wall-clock time; the sans-IO rule is for the library.
#![allow(clippy::disallowed_methods)]

use criterion::{BenchmarkId, Criterion, Throughput};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tandem_crypto::aead::{AeadAlgorithm, NONCE_LEN, Provider};
use tandem_crypto::cbc_hmac::{CbcAlgorithm, IntegAlgorithm};
use tandem_esp::{Framing, HEADROOM, InboundSa, OutboundSa, ReplayWindow, SaParams, Sad, Suite, TAILROOM};

const SIZES: [usize; 4] = [64, 576, 1400, 9000];
const BATCH: usize = 64;

/// (kind, suite, provider, size) of one measurement.
type Key = (String, String, &'static str, usize);

/// Nanoseconds per packet of every sample, by measurement.
static RESULTS: Mutex<BTreeMap<Key, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(key: (&str, &str, &'static str, usize), iters: u64, d: Duration) {
    let mut r = RESULTS.lock().expect("bench results lock");
    r.entry((key.0.to_owned(), key.1.to_owned(), key.2, key.3))
        .or_default()
        .push(d.as_nanos() as f64 / iters as f64);
}

struct Rng(u64);

impl rand_core::TryRng for Rng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Rng {}

fn sa_pair(suite: Suite, provider: Provider) -> (OutboundSa, Sad) {
    let keymat: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8).collect();
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let mut p = SaParams::new(0x1000_0001, suite, &keymat, a, b);
    p.provider = provider;
    let out = OutboundSa::new(&p, &mut rand_core::UnwrapErr(Rng(1))).expect("valid SA");
    let mut sad = Sad::new(7);
    sad.insert_inbound(InboundSa::new(&p).expect("valid SA")).expect("insert");
    (out, sad)
}

/// The first offset at or after `min` whose address is 64-octet aligned:
/// a driver places received packets on cache lines, and so does the bench.
fn aligned(buf: &[u8], min: usize) -> usize {
    min + (64 - (buf.as_ptr() as usize + min) % 64) % 64
}

/// An IPv4/UDP packet of `size` octets, cache-aligned after at least
/// HEADROOM octets, in a buffer with room; and its offset.
fn packet(size: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; HEADROOM + 64 + size + TAILROOM];
    let at = aligned(&buf, HEADROOM);
    let p = &mut buf[at..at + size];
    p[..20].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 1, 0, 5, 10, 2, 0, 7]);
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    (buf, at)
}

fn bench_aead(c: &mut Criterion) {
    for &provider in Provider::available() {
        for alg in AeadAlgorithm::ALL {
            let suite = Suite::Aead(alg);
            let name = alg.name();
            let mut g = c.benchmark_group(format!("{}/{}", provider.name(), name));
            for size in SIZES {
                g.throughput(Throughput::Bytes(size as u64));
                let key = vec![3u8; alg.key_len()];
                let cipher = provider.cipher(alg, &key).expect("key");
                let nonce = [9u8; NONCE_LEN];

                g.bench_with_input(BenchmarkId::new("raw_seal", size), &size, |b, &size| {
                    let mut whole = vec![0u8; size + 64];
                    let at = aligned(&whole, 0);
                    let buf = &mut whole[at..at + size];
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        for _ in 0..iters {
                            black_box(cipher.seal_in_place(&nonce, &[1; 8], buf).expect("seal"));
                        }
                        let d = t.elapsed();
                        record(("raw_seal", name, provider.name(), size), iters, d);
                        d
                    })
                });

                g.bench_with_input(BenchmarkId::new("esp_encap", size), &size, |b, &size| {
                    let (mut out, _) = sa_pair(suite, provider);
                    let (mut buf, at) = packet(size);
                    let header: Vec<u8> = buf[at..at + 20].to_vec();
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        for _ in 0..iters {
                            // A packet arrives: its header is back in place.
                            buf[at..at + 20].copy_from_slice(&header);
                            let r = out.encapsulate(&mut buf, at..at + size, Framing::Esp);
                            black_box(r.expect("encapsulate"));
                        }
                        let d = t.elapsed();
                        record(("esp_encap", name, provider.name(), size), iters, d);
                        d
                    })
                });

                g.bench_with_input(BenchmarkId::new("raw_open", size), &size, |b, &size| {
                    let mut sealed = vec![0u8; size];
                    let tag = cipher.seal_in_place(&nonce, &[1; 8], &mut sealed).expect("seal");
                    let mut bufs: Vec<(Vec<u8>, usize)> = (0..BATCH)
                        .map(|_| {
                            let b = vec![0u8; size + 64];
                            let o = aligned(&b, 0);
                            (b, o)
                        })
                        .collect();
                    b.iter_custom(|iters| {
                        let mut d = Duration::ZERO;
                        let mut left = iters;
                        while left > 0 {
                            let n = left.min(BATCH as u64) as usize;
                            for (buf, o) in &mut bufs[..n] {
                                buf[*o..*o + size].copy_from_slice(&sealed);
                            }
                            let t = Instant::now();
                            for (buf, o) in &mut bufs[..n] {
                                cipher
                                    .open_in_place(&nonce, &[1; 8], &mut buf[*o..*o + size], &tag)
                                    .expect("open");
                            }
                            d += t.elapsed();
                            left -= n as u64;
                        }
                        record(("raw_open", name, provider.name(), size), iters, d);
                        d
                    })
                });

                g.bench_with_input(BenchmarkId::new("esp_decap", size), &size, |b, &size| {
                    bench_decap(b, suite, provider, size, ("esp_decap", name, provider.name(), size));
                });
            }
            g.finish();
        }
    }
}

fn bench_decap(
    b: &mut criterion::Bencher<'_>,
    suite: Suite,
    provider: Provider,
    size: usize,
    key: (&str, &str, &'static str, usize),
) {
    let (mut out, mut sad) = sa_pair(suite, provider);
    let (template, at) = packet(size);
    // Each buffer gets the template's alignment.
    let mut bufs: Vec<(Vec<u8>, usize, core::ops::Range<usize>)> = (0..BATCH)
        .map(|_| {
            let b = vec![0u8; template.len() + 64];
            let o = aligned(&b, 0);
            (b, o, 0..0)
        })
        .collect();
    b.iter_custom(|iters| {
        let mut d = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            // Untimed: fresh packets with fresh sequence numbers.
            let n = left.min(BATCH as u64) as usize;
            for (buf, o, r) in &mut bufs[..n] {
                let buf = &mut buf[*o..*o + template.len()];
                buf.copy_from_slice(&template);
                *r = out.encapsulate(buf, at..at + size, Framing::Esp).expect("encapsulate");
            }
            let t = Instant::now();
            for (buf, o, r) in &mut bufs[..n] {
                let buf = &mut buf[*o..*o + template.len()];
                black_box(sad.decapsulate(buf, r.clone()).expect("decapsulate"));
            }
            d += t.elapsed();
            left -= n as u64;
        }
        record(key, iters, d);
        d
    })
}

fn bench_cbc(c: &mut Criterion) {
    let suite = Suite::CbcHmac(CbcAlgorithm::Aes128Cbc, IntegAlgorithm::HmacSha256_128);
    let provider = Provider::preferred();
    let mut g = c.benchmark_group("cbc/aes128-sha256");
    for size in [64, 1400] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("esp_encap", size), &size, |b, &size| {
            let (mut out, _) = sa_pair(suite, provider);
            let (mut buf, at) = packet(size);
            let header: Vec<u8> = buf[at..at + 20].to_vec();
            b.iter(|| {
                buf[at..at + 20].copy_from_slice(&header);
                black_box(out.encapsulate(&mut buf, at..at + size, Framing::Esp).expect("encap"))
            })
        });
        g.bench_with_input(BenchmarkId::new("esp_decap", size), &size, |b, &size| {
            bench_decap(b, suite, provider, size, ("esp_decap", "aes128-sha256", provider.name(), size));
        });
    }
    g.finish();
}

fn bench_replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    for size in [1024u32, 4096] {
        g.bench_with_input(BenchmarkId::new("check_accept_in_order", size), &size, |b, &size| {
            let mut w = ReplayWindow::new(size).expect("valid size");
            let mut seq = 0u32;
            b.iter(|| {
                seq = seq.wrapping_add(1).max(1);
                if let Ok(s) = w.check(seq, true) {
                    black_box(w.accept(s)).ok();
                }
            })
        });
    }
    g.finish();
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary() {
    let r = RESULTS.lock().expect("bench results lock");
    let get = |k: &str, s: &str, p: &'static str, n: usize| {
        r.get(&(k.to_owned(), s.to_owned(), p, n)).map(|v| median(v))
    };
    println!("\n=== ESP vs raw AEAD (medians of criterion's samples; same run) ===");
    println!(
        "{:<11} {:<17} {:>5} | {:>9} {:>9} {:>7} {:>6} | {:>9} {:>9} {:>7} {:>6}",
        "provider",
        "suite",
        "bytes",
        "seal Gb/s",
        "encap",
        "Mpps",
        "ratio",
        "open Gb/s",
        "decap",
        "Mpps",
        "ratio"
    );
    let gbps = |ns: f64, n: usize| n as f64 * 8.0 / ns;
    for &p in Provider::available() {
        for alg in AeadAlgorithm::ALL {
            for n in SIZES {
                let (Some(seal), Some(enc), Some(open), Some(dec)) = (
                    get("raw_seal", alg.name(), p.name(), n),
                    get("esp_encap", alg.name(), p.name(), n),
                    get("raw_open", alg.name(), p.name(), n),
                    get("esp_decap", alg.name(), p.name(), n),
                ) else {
                    continue;
                };
                println!(
                    "{:<11} {:<17} {:>5} | {:>9.2} {:>9.2} {:>7.2} {:>5.0}% | {:>9.2} {:>9.2} {:>7.2} {:>5.0}%",
                    p.name(),
                    alg.name(),
                    n,
                    gbps(seal, n),
                    gbps(enc, n),
                    1e3 / enc,
                    100.0 * seal / enc,
                    gbps(open, n),
                    gbps(dec, n),
                    1e3 / dec,
                    100.0 * open / dec,
                );
            }
        }
    }
    if let Some(dec) = get("esp_decap", "aes128-sha256", Provider::preferred().name(), 1400) {
        println!(
            "aes128-sha256 (CBC+HMAC) decap 1400 B: {:.2} Gbit/s, {:.2} Mpps",
            gbps(dec, 1400),
            1e3 / dec
        );
    }
    let p = Provider::preferred();
    if let Some(enc) = get("esp_encap", "aes128gcm16", p.name(), 1400) {
        println!(
            "target: default provider ({}) aes128gcm16 encap at 1400 B: {:.2} Mpps per core (target >= 3.00)",
            p.name(),
            1e3 / enc
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let args_are_tests = std::env::args().any(|a| a == "--test" || a == "--list");
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(if quick { 200 } else { 500 }))
        .measurement_time(Duration::from_millis(if quick { 400 } else { 1500 }))
        .configure_from_args();
    bench_aead(&mut c);
    bench_cbc(&mut c);
    bench_replay(&mut c);
    c.final_summary();
    if !args_are_tests {
        summary();
    }
}
