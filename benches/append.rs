//! Durable appends to a SQLite file in a temp dir on the real file system (WAL, `synchronous=FULL`: every
//! commit is fsynced). Three shapes:
//! - one writer doing `Ledger::execute(Command::Set)` in sequence (target ≥ 2,500 changes/s);
//! - 16 writer threads doing sets at once, which the ledger's group-commit writer gathers into shared
//!   transactions (target ≥ 20,000 changes/s, p99 latency per change < 5 ms);
//! - 1,000-event batches built with `build_batch` and written with `EventStore::append` directly.
//!
//! Every set writes a value the key does not hold, so no command is a no-op. Criterion reports the
//! throughput; a custom timed loop prints changes/s and per-change latency percentiles to stdout.

mod common;
use common::{actor, full_run};

use cfgledger::store::{self, EventStore, StoreUrl};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{build_batch, Batch, Cause, Command, Event, Head, Input, Record, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";
const WRITERS: usize = 16;
/// Int keys with wide ranges: each writer thread sets one of them.
const KEYS: [&str; 4] =
    ["TOOL_RATE_LIMIT", "MAX_PROMPT_SIZE", "cfgledger:CONFIG_WRITE_RATE_LIMIT", "cfgledger:REQUEST_SIZE_LIMIT"];

fn open_ledger(dir: &Path) -> Ledger {
    open_with(dir, suite_catalog())
}

/// The bench's keys and cfgledger's own, 13 in all: the reference a small catalog gives in the same run.
fn small_catalog() -> cfgledger_events::Catalog {
    let full = suite_catalog();
    let keep = |ns: &str| -> Vec<_> {
        full.namespace_specs(ns).into_iter().filter(|s| ns == "cfgledger" || KEYS.contains(&s.key.as_str())).collect()
    };
    let parts = full.namespaces().iter().map(|n| (n.clone(), keep(&n.name))).collect();
    cfgledger_events::Catalog::compose(parts).expect("a valid catalog")
}

fn open_with(dir: &Path, catalog: cfgledger_events::Catalog) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(dir.join("append.db")), catalog);
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    Ledger::open(opts).expect("the bench store opens").0
}

fn subdir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).expect("a bench directory");
    path
}

fn ctx() -> WriteContext {
    WriteContext {
        actor: actor(),
        cause: Cause::Api { method: "PUT".into(), path: "/admin/config".into() },
        reason: None,
        bypass: false,
    }
}

/// A value no recent set wrote (they repeat only after 998,000 calls), which every key of [`KEYS`] accepts
/// (they all take 1024..=1,000,000).
fn next_value() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    1024 + (COUNTER.fetch_add(1, Ordering::Relaxed) % 998_000) as i64
}

/// One set of `key` to a fresh value, returning its latency.
fn set(ledger: &Ledger, key: &str) -> Duration {
    let t0 = Instant::now();
    let outcome = ledger
        .execute(Command::Set { key: key.into(), value: Input::Json(next_value().into()) }, ctx())
        .expect("the set is accepted");
    let dt = t0.elapsed();
    assert!(outcome.changed(), "a bench write must change something");
    dt
}

/// Runs `total` sets spread over `threads` threads (thread `t` sets `KEYS[t % 4]`); returns the wall time
/// and every set's latency.
fn run_sets(ledger: &Ledger, threads: usize, total: u64) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ledger = ledger.clone();
            let n = total / threads as u64 + u64::from((t as u64) < total % threads as u64);
            std::thread::spawn(move || (0..n).map(|_| set(&ledger, KEYS[t % KEYS.len()])).collect::<Vec<_>>())
        })
        .collect();
    let latencies: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().expect("a writer finishes")).collect();
    (start.elapsed(), latencies)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `total` sets over `threads` threads and prints changes/s, latency percentiles and the mean number
/// of changes per transaction (the writer stamps one time on a whole group, so distinct times = commits).
fn timed_run(label: &str, ledger: &Ledger, threads: usize, total: u64) {
    let before = ledger.snapshot().head.seq;
    let (wall, mut latencies) = run_sets(ledger, threads, total);
    let records = ledger.store().read_after(before, usize::MAX).expect("the log reads");
    let mut times: Vec<i64> = records.iter().map(|r| r.occurred_at.as_micros()).collect();
    times.dedup();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label}: {} changes in {:.2} s = {:.0} changes/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {} commits, {:.1} changes per commit",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1]),
        times.len(),
        records.len() as f64 / times.len().max(1) as f64,
    );
}

/// Records of `batches` consecutive 1,000-event batches (one batch id each) continuing the chain at `head`.
fn chained_batches(head: Head, batches: u64, size: usize) -> Vec<Vec<Record>> {
    let actor = actor();
    let mut head = head;
    (0..batches)
        .map(|b| {
            let events: Vec<Event> = (0..size)
                .map(|i| {
                    Event::SettingChanged(SettingChanged {
                        key: KEYS[i % KEYS.len()].into(),
                        value: StoredValue::Plain(next_value().into()),
                        previous: Some(StoredValue::Plain(next_value().into())),
                    })
                })
                .collect();
            let batch = Batch {
                id: format!("{:032x}", head.seq + b),
                cause: Cause::Api { method: "POST".into(), path: "/admin/config/import".into() },
                reason: None,
            };
            let now = Timestamp::from_micros(1_790_000_000_000_000 + head.seq as i64);
            let records: Vec<Record> =
                build_batch(head, now, &actor, &batch, events).into_iter().map(|(_, r)| r).collect();
            let last = records.last().expect("a batch is not empty");
            head = Head { seq: last.seq, hash: last.hash };
            records
        })
        .collect()
}

fn append_benches(c: &mut Criterion) {
    let full = full_run();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");

    let mut group = c.benchmark_group("append");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));

    // One writer, one change per transaction.
    {
        let ledger = open_ledger(&subdir(dir.path(), "seq"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("set/1_writer", |b| b.iter_custom(|iters| run_sets(&ledger, 1, iters).0));
        timed_run("append set/1_writer", &ledger, 1, if full { 2_000 } else { 20 });
    }

    // Sixteen writers: group commit shares each fsync.
    {
        let ledger = open_ledger(&subdir(dir.path(), "concurrent"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("set/16_writers", |b| b.iter_custom(|iters| run_sets(&ledger, WRITERS, iters).0));
        timed_run("append set/16_writers", &ledger, WRITERS, if full { 40_000 } else { 160 });
    }

    // The same sixteen writers on a 13-key catalog, in the same run: what the catalog's size costs a commit.
    {
        let ledger = open_with(&subdir(dir.path(), "concurrent-small"), small_catalog());
        timed_run("append set/16_writers (13-key catalog)", &ledger, WRITERS, if full { 40_000 } else { 160 });
        let ledger = open_with(&subdir(dir.path(), "seq-small"), small_catalog());
        timed_run("append set/1_writer (13-key catalog)", &ledger, 1, if full { 2_000 } else { 20 });
    }

    // 1,000-event batches straight into the store.
    {
        const SIZE: usize = 1000;
        let url = StoreUrl::Sqlite(dir.path().join("batches.db"));
        let store: Arc<dyn EventStore> = store::open(&url).expect("the store opens");
        group.throughput(Throughput::Elements(SIZE as u64));
        group.bench_function("store_append/1000_event_batches", |b| {
            b.iter_custom(|iters| {
                let head = store.head().expect("head");
                let batches = chained_batches(head, iters, SIZE);
                let t0 = Instant::now();
                let mut head = head;
                for records in &batches {
                    head = store.append(head, records).expect("the batch appends");
                }
                t0.elapsed()
            })
        });
        let n = if full { 50 } else { 2 };
        let head = store.head().expect("head");
        let batches = chained_batches(head, n, SIZE);
        let mut head = head;
        let mut latencies = Vec::new();
        let t0 = Instant::now();
        for records in &batches {
            let t = Instant::now();
            head = store.append(head, records).expect("the batch appends");
            latencies.push(t.elapsed());
        }
        let wall = t0.elapsed();
        latencies.sort_unstable();
        println!(
            "append store_append/1000_event_batches: {n} batches in {:.2} s = {:.0} events/s; per batch p50 {:.1} ms, \
             max {:.1} ms",
            wall.as_secs_f64(),
            (n as usize * SIZE) as f64 / wall.as_secs_f64(),
            quantile(&latencies, 0.5).as_secs_f64() * 1e3,
            latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        );
    }
    group.finish();
}

criterion_group!(benches, append_benches);
criterion_main!(benches);
