//! In-process reads through [`cfgledger::Settings`]: one key looked up in the published snapshot, while
//! two other threads read too and a writer keeps appending changes to a SQLite store (each append swaps in
//! a new snapshot, and a tailer polls beside it). Target: median < 100 ns and p99 < 1 µs per read. Criterion
//! gives the median and mean; the p50/p99 of single reads come from a custom loop that times every read
//! with `Instant` and subtracts the measured cost of the timer itself, printed to stdout.

mod common;
use common::full_run;

use cfgledger::store::StoreUrl;
use cfgledger::tailer::Tailer;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, Settings, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::{Actor, Cause, Command, Input, Source};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";

fn open_ledger(dir: &Path) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(dir.join("read.db")), builtin());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    Ledger::open(opts).expect("the bench store opens").0
}

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor {
            name: "bench".into(),
            role: Some("admin".into()),
            source: Source::Api,
            address: Some("127.0.0.1".into()),
            request_id: None,
        },
        cause: Cause::Api { method: "PUT".into(), path: "/admin/config".into() },
        reason: None,
        bypass: false,
    }
}

fn set(ledger: &Ledger, key: &str, value: Input) {
    let outcome = ledger.execute(Command::Set { key: key.into(), value }, ctx()).expect("the set is accepted");
    assert!(outcome.changed(), "a bench write must change something");
}

/// Two reader threads and a writer that alternates the gateway's `TOOL_RATE_LIMIT` between 108 and 109 until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    _tailer: Tailer,
}

impl Load {
    fn start(ledger: &Ledger) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for i in 0..2 {
            let settings = ledger.settings();
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if i == 0 {
                        black_box(settings.get_i64(black_box("TOOL_RATE_LIMIT")));
                    } else {
                        black_box(settings.with(black_box("LOG_LEVEL"), |v| v.as_str().map(str::len)));
                    }
                }
            }));
        }
        {
            let ledger = ledger.clone();
            let stop = stop.clone();
            let writes = writes.clone();
            threads.push(std::thread::spawn(move || {
                let mut n: i64 = 1; // TOOL_RATE_LIMIT starts at 108: the first write is 109
                while !stop.load(Ordering::Relaxed) {
                    set(&ledger, "TOOL_RATE_LIMIT", Input::Json((108 + n % 2).into()));
                    n += 1;
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let tailer = Tailer::spawn(ledger.clone(), Duration::from_secs(1));
        Load { stop, writes, threads, _tailer: tailer }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a load thread finishes");
        }
    }
}

/// The value at quantile `q` of sorted samples.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The nanoseconds of `n` empty `Instant` pairs: what every timed read pays for the timer.
fn timer_overhead(n: usize) -> Vec<u64> {
    let mut out: Vec<u64> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            black_box(());
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    out.sort_unstable();
    out
}

/// Times `n` single reads with `read`, each between two `Instant`s, and prints the distribution with the
/// timer's median cost subtracted. Also times the same reads in batches of 1000 (per-read average per
/// batch), which has no timer overhead but smears out single slow reads.
fn per_read_distribution(label: &str, n: usize, mut read: impl FnMut()) {
    let overhead = timer_overhead(n.min(1_000_000));
    let timer = quantile(&overhead, 0.5);
    let mut samples: Vec<u64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        read();
        samples.push((t0.elapsed().as_nanos() as u64).saturating_sub(timer));
    }
    samples.sort_unstable();

    const BATCH: usize = 1000;
    let mut batches: Vec<u64> = (0..(n / BATCH).max(1))
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..BATCH {
                read();
            }
            t0.elapsed().as_nanos() as u64 / BATCH as u64
        })
        .collect();
    batches.sort_unstable();

    println!(
        "{label}: {n} single reads (timer {timer} ns subtracted): p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, \
         max {} ns",
        quantile(&samples, 0.5),
        quantile(&samples, 0.9),
        quantile(&samples, 0.99),
        quantile(&samples, 0.999),
        samples[samples.len() - 1],
    );
    println!(
        "{label}: {} batches of {BATCH} (mean per read in a batch): p50 {} ns, p99 {} ns, max {} ns",
        batches.len(),
        quantile(&batches, 0.5),
        quantile(&batches, 0.99),
        batches[batches.len() - 1],
    );
}

fn read_benches(c: &mut Criterion) {
    let full = full_run();
    let dir = tempfile::tempdir().expect("a temp dir");
    let ledger = open_ledger(dir.path());
    set(&ledger, "TOOL_RATE_LIMIT", Input::Json(108.into()));
    set(&ledger, "LOG_LEVEL", Input::Text("DEBUG".into()));
    let settings: Settings = ledger.settings();
    assert_eq!(settings.get_i64("TOOL_RATE_LIMIT"), Some(108));

    let mut group = c.benchmark_group("read");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    group.bench_function("get_i64/idle", |b| b.iter(|| settings.get_i64(black_box("TOOL_RATE_LIMIT"))));

    let load = Load::start(&ledger);
    let seq_before = settings.applied_seq();
    let started = Instant::now();
    group.bench_function("get_i64/2_readers+writer", |b| b.iter(|| settings.get_i64(black_box("TOOL_RATE_LIMIT"))));
    group.bench_function("with_str/2_readers+writer", |b| {
        b.iter(|| settings.with(black_box("LOG_LEVEL"), |v| v.as_str().map(str::len)))
    });
    group.finish();

    let n = if full { 3_000_000 } else { 10_000 };
    per_read_distribution("read get_i64 under load", n, || {
        black_box(settings.get_i64(black_box("TOOL_RATE_LIMIT")));
    });
    per_read_distribution("read with(LOG_LEVEL) under load", n, || {
        black_box(settings.with(black_box("LOG_LEVEL"), |v| v.as_str().map(str::len)));
    });
    let secs = started.elapsed().as_secs_f64();
    let swaps = settings.applied_seq() - seq_before;
    let writes = load.writes.load(Ordering::Relaxed);
    load.stop();
    println!(
        "read: during the loaded runs the writer appended {writes} changes ({:.0}/s), {swaps} new snapshots published",
        writes as f64 / secs
    );
}

criterion_group!(benches, read_benches);
criterion_main!(benches);
