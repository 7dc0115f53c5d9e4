//! Opening a SQLite store that holds 1,000,000 events: `Ledger::open` migrates, reads the whole log,
//! verifies every link (blake3 + JSON decode), folds it into the projection and derives the encryption key
//! (target < 1 s). The file is built once per run: the store is created through `Ledger::open` (so the
//! genesis event exists), then a million `SettingChanged` records, one per batch as `config set` writes
//! them, are appended straight to the store in large transactions.
//!
//! An open of a long log without checkpoints writes one in the background, and every later open starts
//! from it; so before each timed open every checkpoint is deleted (untimed), and the full replay is what is
//! measured. The opens from the checkpoint are timed after that, then the replay is broken down into its
//! parts (SQLite reads, verification, fold, key derivation) and printed.

mod common;
use common::full_run;

use cfgledger::crypto::SecretBox;
use cfgledger::store::{self, StoreUrl};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions};
use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    build_batch, verify_link, Actor, Batch, Cause, Envelope, Event, Head, Record, Source, Timestamp,
};
use cfgledger_projections::SettingsState;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::path::Path;
use std::time::{Duration, Instant};

/// The CPU time this process has used so far, user and system, across all its threads (from
/// `/proc/self/stat`, in the kernel's 100 Hz ticks).
fn cpu_time() -> Duration {
    cpu_time_of("/proc/self/stat")
}

/// The CPU time of the calling thread alone (which folds, while other threads read and verify).
fn thread_cpu_time() -> Duration {
    cpu_time_of("/proc/thread-self/stat")
}

fn cpu_time_of(path: &str) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces): utime and stime are
    // the 12th and 13th of them.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

/// Deletes every checkpoint of the store at `db`, so that the next open replays the whole log.
fn delete_checkpoints(db: &Path) {
    let store = store::open(&StoreUrl::Sqlite(db.to_path_buf())).expect("the store opens");
    for seq in store.snapshot_seqs().expect("the checkpoints are listed") {
        store.delete_snapshot(seq).expect("a checkpoint is deleted");
    }
}

/// Waits until the checkpoint that an open queued for the background has been written (or 60 s have
/// passed), so that it is not written into the next timed open.
fn await_checkpoint(db: &Path) {
    let store = store::open(&StoreUrl::Sqlite(db.to_path_buf())).expect("the store opens");
    let until = Instant::now() + Duration::from_secs(60);
    while store.snapshot_seqs().expect("the checkpoints are listed").is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";
/// Int keys and the range of values each accepts.
const KEYS: [(&str, i64, i64); 5] = [
    ("MAX_WORKERS", 1, 256),
    ("TOOL_RATE_LIMIT", 1, 1_000_000),
    ("MAX_PROMPT_SIZE", 1, 10_485_760),
    ("cfgledger:CONFIG_WRITE_RATE_LIMIT", 1, 1_000_000),
    ("CFGLEDGER_REQUEST_SIZE_LIMIT", 1024, 104_857_600),
];
/// How many records one append transaction takes while the file is built.
const BUILD_CHUNK: u64 = 50_000;
/// The page size of the breakdown's reads, as the ledger's replay uses.
const READ_CHUNK: usize = 10_000;

fn options(db: &Path) -> OpenOptions {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(db.to_path_buf()), suite_catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    opts
}

/// Creates the store at `db` and appends `events` `SettingChanged` records after the genesis batch.
fn build_store(db: &Path, events: u64) -> u64 {
    let started = Instant::now();
    drop(Ledger::open(options(db)).expect("the store is created"));
    let store = store::open(&StoreUrl::Sqlite(db.to_path_buf())).expect("the store opens");
    let mut head = store.head().expect("head");
    let actor = Actor {
        name: "bench".into(),
        role: Some("admin".into()),
        source: Source::Api,
        address: Some("127.0.0.1".into()),
        request_id: None,
    };
    let start_time = 1_790_000_000_000_000_i64;
    let mut written = 0;
    while written < events {
        let n = BUILD_CHUNK.min(events - written);
        let mut records: Vec<Record> = Vec::with_capacity(n as usize);
        let mut tail = head;
        for i in written..written + n {
            let (key, lo, hi) = KEYS[(i % KEYS.len() as u64) as usize];
            let value = |j: u64| StoredValue::Plain((lo + (j as i64) % (hi - lo)).into());
            let event = Event::SettingChanged(SettingChanged {
                key: key.into(),
                value: value(i),
                previous: Some(value(i.saturating_sub(KEYS.len() as u64))),
            });
            let batch = Batch {
                id: format!("{i:032x}"),
                cause: Cause::Api { method: "PUT".into(), path: format!("/admin/config/{key}") },
                reason: None,
            };
            let at = Timestamp::from_micros(start_time + i as i64);
            for (_, rec) in build_batch(tail, at, &actor, &batch, vec![event]) {
                tail = Head { seq: rec.seq, hash: rec.hash };
                records.push(rec);
            }
        }
        head = store.append(head, &records).expect("the chunk appends");
        written += n;
    }
    println!("rebuild: built a store of {} events in {:.1} s", head.seq, started.elapsed().as_secs_f64());
    head.seq
}

/// Times the parts of an open separately, chunk by chunk as the ledger's replay goes: reading the records
/// from SQLite (lent in place, as the replay's lanes read them, and copied out into `Record`s, as the
/// other parts here take them), the blake3 link alone, `verify_link` (link + JSON decode + column checks),
/// the fold, and the key derivation.
fn breakdown(db: &Path) {
    let store = store::open(&StoreUrl::Sqlite(db.to_path_buf())).expect("the store opens");
    let (mut read, mut hash, mut verify, mut fold) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut lent = Duration::ZERO;
    let (mut count, mut bytes) = (0usize, 0usize);
    let mut head = Head::EMPTY;
    let mut state = SettingsState::new();
    loop {
        let t = Instant::now();
        store
            .visit_after(head.seq, READ_CHUNK, &mut |rec| {
                std::hint::black_box(rec);
            })
            .expect("reads");
        lent += t.elapsed();

        let t = Instant::now();
        let records = store.read_after(head.seq, READ_CHUNK).expect("reads");
        read += t.elapsed();

        let t = Instant::now();
        for rec in &records {
            std::hint::black_box(cfgledger_events::Hash::link(&rec.prev_hash, &rec.envelope));
        }
        hash += t.elapsed();

        let t = Instant::now();
        let mut envelopes: Vec<Envelope> = Vec::with_capacity(records.len());
        for rec in &records {
            envelopes.push(verify_link(&head, rec).expect("the chain verifies"));
            head = Head { seq: rec.seq, hash: rec.hash };
        }
        verify += t.elapsed();

        let t = Instant::now();
        for env in &envelopes {
            state.apply(env);
        }
        fold += t.elapsed();

        count += records.len();
        bytes += records.iter().map(|r| r.envelope.len()).sum::<usize>();
        if records.len() < READ_CHUNK {
            break;
        }
    }

    let info = state.store.as_ref().expect("the genesis event is in the log").encryption.clone();
    let t = Instant::now();
    SecretBox::derive(SECRET.as_bytes(), &info).expect("the key derives");
    let derive = t.elapsed();

    println!(
        "rebuild breakdown for {count} records ({:.0} MB of envelopes, {} bytes mean): SQLite visit_after (rows \
         lent in place, as the replay reads them) {:.0} ms, read_after (copied into Records) {:.0} ms, \
         verify_link {:.0} ms (blake3 alone {:.0} ms, so decode + checks ~{:.0} ms), apply {:.0} ms, key \
         derivation {:.0} ms; sum of read_after to key derivation {:.0} ms",
        bytes as f64 / 1e6,
        bytes / count.max(1),
        ms(lent),
        ms(read),
        ms(verify),
        ms(hash),
        ms(verify.saturating_sub(hash)),
        ms(fold),
        ms(derive),
        ms(read + verify + fold + derive),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rebuild_benches(c: &mut Criterion) {
    let full = full_run();
    let events = if full { 1_000_000 } else { 2_000 };
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");
    let db = dir.path().join("rebuild.db");
    let last_seq = build_store(&db, events);

    let mut group = c.benchmark_group("rebuild");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(if full { 20 } else { 1 }));
    // The full replay: every checkpoint deleted before the open, and the one it queues awaited after it.
    // Returns the wall-clock time of the open and the CPU time the process used meanwhile.
    let replay = |db: &Path| {
        delete_checkpoints(db);
        let (t0, cpu0, own0) = (Instant::now(), cpu_time(), thread_cpu_time());
        let (ledger, _) = Ledger::open(options(db)).expect("the store opens");
        let (took, cpu, own) = (t0.elapsed(), cpu_time().saturating_sub(cpu0), thread_cpu_time().saturating_sub(own0));
        assert_eq!(ledger.snapshot().head.seq, last_seq, "the whole log is folded");
        drop(ledger);
        await_checkpoint(db);
        (took, cpu, own)
    };
    group.bench_function(format!("ledger_open_without_checkpoints/{events}_events"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| replay(&db).0).sum())
    });
    group.finish();

    for run in 1..=3 {
        let (took, cpu, own) = replay(&db);
        println!(
            "rebuild: Ledger::open #{run} of {last_seq} events without checkpoints took {:.0} ms ({:.2} CPU-seconds, \
             {:.2} of them on the opening thread)",
            ms(took),
            cpu.as_secs_f64(),
            own.as_secs_f64()
        );
    }
    for run in 1..=3 {
        let t0 = Instant::now();
        let (ledger, _) = Ledger::open(options(&db)).expect("the store opens");
        let took = t0.elapsed();
        assert_eq!(ledger.snapshot().head.seq, last_seq, "the whole log is folded");
        println!(
            "rebuild: Ledger::open #{run} of {last_seq} events from the newest checkpoint took {:.0} ms",
            ms(took)
        );
    }
    breakdown(&db);
}

criterion_group!(benches, rebuild_benches);
criterion_main!(benches);
