//! Time travel at issue 6's scale, on SQLite in a temp dir (the default backend):
//! 1. a point-in-time read at a random point of a store of 1,000,000 events (`Ledger::snapshot_at`, and
//!    `Ledger::state_at` alone; target p50 < 20 ms), with the checkpoints the product wrote while the store was
//!    built (counted and their spacing reported), without any, and with checkpoints backfilled by this bench
//!    every `SNAPSHOT_INTERVAL` events through the public store API (each figure labelled);
//! 2. the first page (50 entries) of audit queries (`timetravel::audit`; target < 10 ms): by key (a hot and a
//!    cold one), by key prefix (`LOG_*`), by actor (a hot and a cold one), and by source, which no index serves
//!    (a common, a rare and an absent-after-genesis source);
//! 3. the plan of a rollback over 10,000 subjects (`timetravel::rollback_request` + `timetravel::plan_json`;
//!    target < 100 ms), in two shapes: 10,000 tools created after the point on the 1,000,000-event store (a
//!    rollback deletes them), and 10,000 keys of a custom catalog changed or first set after the point;
//! 4. `Ledger::open` of the 1,000,000-event store with its checkpoints and with them deleted.
//!
//! The big store is built once per run through `Ledger::execute_async` (waves of commands that the group
//! commit writer takes up to 1,024 at a time, so commits are large), as settings changes spread over the
//! built-in catalog's writable keys and 200 actors (both skewed: a few hot, a long cold tail), through the
//! API, the CLI and the UI, with occasional resets and whole-catalog imports. Timings are reported, never
//! asserted; what is asserted is that each query answers what it should.
//!
//! `cargo bench --bench timetravel` runs it at full size; `cargo test --benches` on a store of 5,000 events.

mod common;
use common::full_run;
use common::workload::Workload;

use cfgledger::store::{self, EventStore, LogQuery, StoreUrl, StoredSnapshot, SubjectMatch};
use cfgledger::usecase::timetravel::{self, AuditFilter};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::catalog::{CatalogFile, CatalogMode};
use cfgledger_events::rollback;
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    Catalog, Cause, Command, ImportRequest, Reload, ResourceKind, SettingSpec, Timestamp, ValueType,
};
use cfgledger_projections::{snapshot, SettingsState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";
/// The interval the product checkpoints at by default (`SNAPSHOT_INTERVAL`), which the backfill follows.
const INTERVAL: u64 = 1000;

struct Sizes {
    events: u64,
    /// Commands submitted at once while building (the writer takes up to 1,024 per commit).
    wave: usize,
    /// Subjects that differ between the point and now in the rollback shapes.
    subjects: usize,
    point_reads: usize,
    queries: usize,
    /// Samples of what reads the whole log (a source absent from it, a read without checkpoints).
    slow: usize,
    opens: usize,
    rollbacks: usize,
    /// The longest one measurement may take before it stops with the samples it has (at least 3).
    budget: Duration,
}

impl Sizes {
    fn new(full: bool) -> Sizes {
        if full {
            Sizes {
                events: 1_000_000,
                wave: 2048,
                subjects: 10_000,
                point_reads: 200,
                queries: 50,
                slow: 5,
                opens: 3,
                rollbacks: 20,
                budget: Duration::from_secs(20),
            }
        } else {
            Sizes {
                events: 5_000,
                wave: 256,
                subjects: 200,
                point_reads: 10,
                queries: 3,
                slow: 2,
                opens: 1,
                rollbacks: 2,
                budget: Duration::from_secs(2),
            }
        }
    }
}

fn options(db: &Path, catalog: Catalog) -> OpenOptions {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(db.to_path_buf()), catalog);
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    opts
}

fn open(db: &Path, catalog: Catalog) -> Ledger {
    Ledger::open(options(db, catalog)).expect("the bench store opens").0
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// Submits every job at once (the writer groups them) and waits for all of them to be durable.
fn run_wave(rt: &tokio::runtime::Runtime, ledger: &Ledger, jobs: Vec<(Command, WriteContext)>) {
    let pending = jobs.into_iter().map(|(cmd, ctx)| ledger.execute_async(cmd, ctx));
    for result in rt.block_on(futures_util::future::join_all(pending)) {
        result.expect("the bench's command is accepted");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reporting

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One figure of the summary table.
struct Row {
    what: String,
    n: usize,
    min: Duration,
    p50: Duration,
    p95: Duration,
    max: Duration,
    /// The target on the median, if this figure has one.
    target: Option<Duration>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, what: &str, mut samples: Vec<Duration>, target: Option<Duration>) {
        samples.sort_unstable();
        let row = Row {
            what: what.to_string(),
            n: samples.len(),
            min: samples[0],
            p50: quantile(&samples, 0.5),
            p95: quantile(&samples, 0.95),
            max: samples[samples.len() - 1],
            target,
        };
        println!(
            "timetravel {what}: n={} min {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms{}",
            row.n,
            ms(row.min),
            ms(row.p50),
            ms(row.p95),
            ms(row.max),
            verdict(&row).map(|v| format!("; {v}")).unwrap_or_default()
        );
        self.rows.push(row);
    }

    fn print(&self) {
        println!("\n| what | n | min | p50 | p95 | max | target (p50) | |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        for r in &self.rows {
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |",
                r.what,
                r.n,
                ms(r.min),
                ms(r.p50),
                ms(r.p95),
                ms(r.max),
                r.target.map(|t| format!("< {:.0} ms", ms(t))).unwrap_or_else(|| "(report)".into()),
                match (r.target, verdict(r)) {
                    (Some(_), Some(v)) if v.starts_with("met") => "met",
                    (Some(_), _) => "**missed**",
                    (None, _) => "",
                }
            );
        }
    }
}

fn verdict(r: &Row) -> Option<String> {
    r.target.map(|t| {
        if r.p50 < t {
            format!("met (target p50 < {:.0} ms)", ms(t))
        } else {
            format!("MISSED (target p50 < {:.0} ms)", ms(t))
        }
    })
}

/// Runs `f` for each of `n` samples, or fewer (at least 3) once `budget` is spent; returns each run's time.
fn measure<T>(n: usize, budget: Duration, mut f: impl FnMut(usize) -> T) -> Vec<Duration> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i >= 3 && started.elapsed() > budget {
            println!("  (stopped after {i} of {n} samples: the {:.0} s budget was spent)", budget.as_secs_f64());
            break;
        }
        let t0 = Instant::now();
        let result = f(i);
        out.push(t0.elapsed());
        drop(std::hint::black_box(result));
    }
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

/// CPU time this process (all its threads) has used, from `/proc/self/stat` (utime + stime, in ticks of
/// 1/100 s, Linux's usual `CLK_TCK`); zero where that file does not exist.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Count, spacing and reach of checkpoints: how far a point-in-time read may have to fold.
fn describe_checkpoints(label: &str, seqs: &[u64], head: u64) {
    if seqs.is_empty() {
        println!("timetravel checkpoints ({label}): none for a log of {head} events");
        return;
    }
    // The stretches of log a point-in-time read may fold: from 0 to the first checkpoint, between two, and
    // after the last.
    let mut stretches: Vec<u64> = Vec::with_capacity(seqs.len() + 1);
    let mut prev = 0;
    for &s in seqs {
        stretches.push(s - prev);
        prev = s;
    }
    let tail = head - prev;
    let mut gaps = stretches[1..].to_vec();
    gaps.sort_unstable();
    stretches.push(tail);
    // A random point folds, on average, half of the stretch it falls in, weighted by the stretch's length.
    let mean_fold = stretches.iter().map(|g| (g * g) as f64 / 2.0).sum::<f64>() / head.max(1) as f64;
    let gap = |q: f64| gaps.get(((gaps.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    println!(
        "timetravel checkpoints ({label}): {} for a log of {head} events (first at seq {}, last at seq {}, {tail} \
         events after it); gap between two checkpoints min {}, median {}, p99 {}, max {} events; a random point \
         folds {:.0} events on average (the interval is {INTERVAL})",
        seqs.len(),
        seqs[0],
        prev,
        gap(0.0),
        gap(0.5),
        gap(0.99),
        gap(1.0),
        mean_fold
    );
}

fn fold_distance(seqs: &[u64], at: u64) -> u64 {
    let below = seqs.partition_point(|&s| s <= at);
    at - if below == 0 { 0 } else { seqs[below - 1] }
}

// ---------------------------------------------------------------------------------------------------------
// The measurements

/// Builds the big store through the ledger; returns the seqs of its commits.
fn build(ledger: &Ledger, work: &mut Workload, sizes: &Sizes) -> Vec<u64> {
    let commits = Arc::new(Mutex::new(Vec::new()));
    let seen = commits.clone();
    assert!(ledger.on_commit(move |seq| seen.lock().expect("the commit list").push(seq)), "one commit hook");
    let rt = runtime();
    let started = Instant::now();
    let first = ledger.snapshot().head.seq;
    while ledger.snapshot().head.seq < sizes.events {
        let jobs = (0..sizes.wave).map(|_| work.job()).collect();
        run_wave(&rt, ledger, jobs);
    }
    let head = ledger.snapshot().head.seq;
    assert_eq!(head - first, work.events, "every command appended the events the bench counted");
    let commits = commits.lock().expect("the commit list").clone();
    let mut sizes_of: Vec<u64> = commits.windows(2).map(|w| w[1] - w[0]).collect();
    sizes_of.sort_unstable();
    println!(
        "timetravel: built a store of {head} events in {:.1} s through Ledger::execute_async ({} commits, events \
         per commit median {}, max {}; {} imports, {} resets; {} keys, {} actors)",
        started.elapsed().as_secs_f64(),
        commits.len(),
        sizes_of.get(sizes_of.len() / 2).copied().unwrap_or(0),
        sizes_of.last().copied().unwrap_or(0),
        work.imports,
        work.resets,
        work.keys.len(),
        work.actors.len(),
    );
    commits
}

/// Waits until the checkpoint thread has written what it was handed (it writes off the commit path).
fn settle(store: &dyn EventStore) -> Vec<u64> {
    let mut last = store.snapshot_seqs().expect("the checkpoints list");
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = store.snapshot_seqs().expect("the checkpoints list");
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn point_reads(report: &mut Report, ledger: &Ledger, sizes: &Sizes, label: &str, n: usize, seed: u64) {
    let head = ledger.snapshot().head.seq;
    let mut rng = StdRng::seed_from_u64(seed);
    let points: Vec<u64> = (0..n).map(|_| rng.gen_range(1..head)).collect();
    let checkpoints = ledger.store().snapshot_seqs().expect("the checkpoints list");
    let mut folds: Vec<u64> = points.iter().map(|&p| fold_distance(&checkpoints, p)).collect();
    folds.sort_unstable();
    println!(
        "timetravel point reads {label}: {n} random seqs of 1..{head}; events folded after the checkpoint: median \
         {}, max {}",
        folds[folds.len() / 2],
        folds[folds.len() - 1]
    );
    let snaps = measure(n, sizes.budget, |i| {
        let snap = ledger.snapshot_at(points[i]).expect("the point reads");
        assert_eq!(snap.head.seq, points[i], "the snapshot stands at the point asked for");
        snap
    });
    report.add(&format!("snapshot_at(random seq), {label}"), snaps, Some(Duration::from_millis(20)));
    let states = measure(n, sizes.budget, |i| {
        let state = ledger.state_at(points[i]).expect("the point reads");
        assert_eq!(state.applied_seq, points[i], "the state stands at the point asked for");
        state
    });
    report.add(&format!("state_at(random seq), {label}"), states, Some(Duration::from_millis(20)));
}

fn audits(report: &mut Report, ledger: &Ledger, work: &Workload, sizes: &Sizes) {
    let head = ledger.snapshot().head.seq;
    let by_count = |counts: &[u64]| {
        // The coldest that appears at all.
        let mut order: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
        (order[0], order[order.len() - 1])
    };
    let (hot_key, cold_key) = by_count(&work.key_events);
    let (hot_actor, cold_actor) = by_count(&work.actor_events);
    let share = |n: u64| format!("{n} events, {:.2}% of the log", n as f64 * 100.0 / head as f64);
    let log_events: u64 =
        work.keys.iter().zip(&work.key_events).filter(|(p, _)| p.key.starts_with("LOG_")).map(|(_, n)| n).sum();
    let log_keys = work.keys.iter().filter(|p| p.key.starts_with("LOG_")).count();
    let source = |s: &str| work.source_events.get(s).copied().unwrap_or(0);
    let shapes: Vec<(String, AuditFilter, usize)> = vec![
        (
            format!("key={} (hottest key; {})", work.keys[hot_key].key, share(work.key_events[hot_key])),
            AuditFilter { key: Some(work.keys[hot_key].key.clone()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("key={} (coldest key; {})", work.keys[cold_key].key, share(work.key_events[cold_key])),
            AuditFilter { key: Some(work.keys[cold_key].key.clone()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("key=LOG_* ({log_keys} keys; {})", share(log_events)),
            AuditFilter { key: Some("LOG_*".into()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("actor={} (hottest actor; {})", work.actors[hot_actor], share(work.actor_events[hot_actor])),
            AuditFilter { actor: Some(work.actors[hot_actor].clone()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("actor={} (coldest actor; {})", work.actors[cold_actor], share(work.actor_events[cold_actor])),
            AuditFilter { actor: Some(work.actors[cold_actor].clone()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("source=cli (not indexed; {})", share(source("cli"))),
            AuditFilter { source: Some("cli".into()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            format!("source=ui (not indexed; {})", share(source("ui"))),
            AuditFilter { source: Some("ui".into()), ..AuditFilter::default() },
            sizes.queries,
        ),
        (
            "source=system (not indexed; only the genesis batch)".to_string(),
            AuditFilter { source: Some("system".into()), ..AuditFilter::default() },
            sizes.slow,
        ),
        ("no filter (newest 50)".to_string(), AuditFilter::default(), sizes.queries),
    ];
    for (label, mut filter, n) in shapes {
        filter.limit = Some(50);
        let page = timetravel::audit(ledger, &filter).expect("the audit query answers");
        assert!(!page.entries.is_empty(), "{label}: the query finds entries");
        assert!(page.entries.len() >= 50 || page.next_cursor.is_none(), "{label}: a short first page is the last one");
        println!(
            "timetravel audit {label}: first page holds {} entries (seqs {} .. {}), next_cursor {}",
            page.entries.len(),
            page.entries[0].seq,
            page.entries[page.entries.len() - 1].seq,
            page.next_cursor.as_deref().unwrap_or("none")
        );
        let last = page.entries[page.entries.len() - 1].seq;
        if filter.source.is_some() {
            println!("  (the page's entries span the newest {} events, every one read and verified)", head + 1 - last);
        }
        let runs = measure(n, sizes.budget, |_| timetravel::audit(ledger, &filter).expect("the audit query answers"));
        report.add(&format!("audit first page (limit 50), {label}"), runs, Some(Duration::from_millis(10)));
    }

    // The store queries `timetravel::audit` makes for a key filter, alone: the indexed one (256 records,
    // newest first), and the one for `.env` seeding events that a key filter adds (no index serves `kind`).
    let store = ledger.store();
    let page = |subject: Option<SubjectMatch>, kinds: Vec<String>| LogQuery {
        subject,
        kinds,
        limit: 256,
        ascending: false,
        ..LogQuery::default()
    };
    let parts = [
        (
            format!("key = {}", work.keys[hot_key].key),
            page(Some(SubjectMatch::Exact(work.keys[hot_key].key.clone())), vec![]),
        ),
        ("key LOG_* (prefix range)".to_string(), page(Some(SubjectMatch::Prefix("LOG_".into())), vec![])),
        ("kind IN (EnvSeeded), the seeding events a key filter adds".to_string(), page(None, vec!["EnvSeeded".into()])),
    ];
    for (label, query) in parts {
        let found = store.query(&query).expect("the store query answers").len();
        let runs = measure(sizes.queries.min(10), sizes.budget, |_| store.query(&query).expect("answers"));
        report.add(&format!("  part: store.query({label}; limit 256) -> {found} records"), runs, None);
    }
}

/// Opens the store `n` times; `before` runs (untimed) before each open.
fn opens(report: &mut Report, db: &Path, label: &str, n: usize, mut before: impl FnMut()) {
    let mut runs = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    let mut head = 0;
    for _ in 0..n {
        before();
        let (t0, c0) = (Instant::now(), cpu_time());
        let ledger = open(db, suite_catalog());
        runs.push(t0.elapsed());
        cpu.push(format!("{:.2}", (cpu_time().saturating_sub(c0)).as_secs_f64()));
        head = ledger.snapshot().head.seq;
    }
    println!("timetravel Ledger::open {label}: CPU seconds used by the process per open: {}", cpu.join(", "));
    report.add(&format!("Ledger::open of {head} events, {label}"), runs, None);
}

fn delete_checkpoints(store: &dyn EventStore) -> usize {
    // Each open writes one at the head on its checkpoint thread: delete until none comes back.
    let mut deleted = 0;
    loop {
        let seqs = store.snapshot_seqs().expect("the checkpoints list");
        if seqs.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
            if store.snapshot_seqs().expect("the checkpoints list").is_empty() {
                return deleted;
            }
            continue;
        }
        for seq in seqs {
            store.delete_snapshot(seq).expect("a checkpoint is deleted");
            deleted += 1;
        }
    }
}

/// Writes a checkpoint every `every` events, as the product would at its interval, by folding the log (every
/// record verified) and saving through the public store API. Returns how many it wrote.
fn backfill(store: &dyn EventStore, every: u64, now: Timestamp) -> usize {
    let mut state = SettingsState::new();
    let mut after = 0;
    let mut written = 0;
    loop {
        let records = store.read_after(after, 10_000).expect("the log reads");
        for rec in &records {
            let env = cfgledger_events::verify_record(rec).expect("the log verifies");
            state.apply(&env);
            if rec.seq % every == 0 {
                let bytes = snapshot::encode(&state);
                let digest = snapshot::digest(rec.seq, &rec.hash, &bytes);
                let stored =
                    StoredSnapshot { seq: rec.seq, head_hash: rec.hash, digest, state: bytes, created_at: now };
                store.save_snapshot(&stored).expect("a checkpoint is saved");
                written += 1;
            }
        }
        match records.last() {
            Some(last) if records.len() == 10_000 => after = last.seq,
            _ => return written,
        }
    }
}

fn tool(i: usize) -> serde_json::Map<String, Value> {
    let tool = json!({
        "name": format!("tool-{i:05}"),
        "url": format!("https://api{}.example.com/v1/tools/{i}", i % 50),
        "integration_type": "REST",
        "request_type": "POST",
        "description": format!("Looks up the records of service {} matching a query (bench tool {i})", i % 50),
        "headers": {"X-Team": format!("team-{}", i % 20)},
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        "tags": ["bench", format!("team-{}", i % 20)],
        "is_active": true,
    });
    tool.as_object().expect("a tool is an object").clone()
}

/// Times `rollback_request(to)` + `plan_json`, and each part alone; returns the plan's counts.
fn rollbacks(report: &mut Report, ledger: &Ledger, to: u64, label: &str, sizes: &Sizes) -> Value {
    let plan = |ledger: &Ledger| {
        let req = timetravel::rollback_request(ledger, to, None, None).expect("the rollback request builds");
        plan_json(ledger, &req).expect("the rollback plans")
    };
    let counts = plan(ledger)["counts"].clone();
    println!("timetravel rollback {label}: plan to seq {to} at head {}: counts {counts}", ledger.snapshot().head.seq);
    let runs = measure(sizes.rollbacks, sizes.budget, |_| plan(ledger));
    report.add(&format!("rollback_request + plan_json, {label}"), runs, Some(Duration::from_millis(100)));
    let runs = measure(sizes.rollbacks, sizes.budget, |_| {
        timetravel::rollback_request(ledger, to, None, None).expect("the rollback request builds")
    });
    report.add(&format!("  part: rollback_request alone, {label}"), runs, None);
    let runs = measure(sizes.rollbacks, sizes.budget, |_| ledger.state_at(to).expect("the point reads"));
    report.add(&format!("  part: state_at(point) (inside rollback_request), {label}"), runs, None);
    let req = timetravel::rollback_request(ledger, to, None, None).expect("the rollback request builds");
    let runs = measure(sizes.rollbacks, sizes.budget, |_| plan_json(ledger, &req).expect("plans"));
    report.add(&format!("  part: plan_json alone, {label}"), runs, None);
    let snap = ledger.snapshot();
    let runs = measure(sizes.rollbacks, sizes.budget, |_| {
        rollback::plan(ledger.catalog(), &snap.state, &req).expect("the rollback plans")
    });
    report.add(&format!("  part: rollback::plan (inside plan_json), {label}"), runs, None);
    counts
}

/// Rollback shape 1, on the big store: `subjects` tools created after the point (a rollback deletes them).
fn rollback_entities(report: &mut Report, ledger: &Ledger, work: &mut Workload, sizes: &Sizes) {
    let to = ledger.snapshot().head.seq;
    let rt = runtime();
    let started = Instant::now();
    let mut made = 0;
    while made < sizes.subjects {
        let n = sizes.wave.min(sizes.subjects - made);
        let jobs = (made..made + n)
            .map(|i| {
                let (_, actor) = work.actor();
                let cause = Cause::Api { method: "POST".into(), path: "/admin/tools".into() };
                let cmd = Command::CreateResource { kind: ResourceKind::Tools, fields: tool(i) };
                (cmd, WriteContext { actor, cause, reason: None, bypass: false })
            })
            .collect();
        run_wave(&rt, ledger, jobs);
        made += n;
    }
    println!(
        "timetravel rollback (entities): created {} tools after seq {to} in {:.1} s (head now {})",
        sizes.subjects,
        started.elapsed().as_secs_f64(),
        ledger.snapshot().head.seq
    );
    let label = format!("{} tools created after the point, store of {} events", sizes.subjects, to);
    let counts = rollbacks(report, ledger, to, &label, sizes);
    assert_eq!(counts["delete"], json!(sizes.subjects), "the rollback deletes every tool created since");
}

/// Rollback shape 2, on a store whose catalog has `subjects` more keys: half of them changed after the point,
/// half first set after it (a rollback sets the first back and resets the second).
fn rollback_keys(report: &mut Report, dir: &Path, sizes: &Sizes) {
    let n = sizes.subjects;
    let key = |i: usize| format!("BENCH_KEY_{i:05}");
    let extra: Vec<SettingSpec> = (0..n)
        .map(|i| SettingSpec {
            default: Some(json!(0)),
            ..SettingSpec::new(&key(i), ValueType::Int { min: Some(0), max: Some(1_000_000) }, "bench", Reload::Hot)
        })
        .collect();
    let file = CatalogFile { mode: CatalogMode::Extend, settings: extra, ..CatalogFile::default() };
    let catalog = suite_catalog().with_file(file).expect("the extended catalog is valid");
    let started = Instant::now();
    let ledger = open(&dir.join("keys.db"), catalog.clone());
    let rt = runtime();
    let import = |range: std::ops::Range<usize>, value: i64| {
        let entries: Vec<(String, Value)> = range.map(|i| (key(i), json!(value))).collect();
        let digest = format!("bench-{value}-{}", entries.len());
        let cmd = Command::Import(ImportRequest {
            digest: digest.clone(),
            source: None,
            entries,
            expected_head: None,
            baseline: BTreeMap::new(),
        });
        let ctx = WriteContext {
            actor: common::actor(),
            cause: Cause::Import { digest, via: "POST /admin/config/import".into() },
            reason: None,
            bypass: false,
        };
        ledger.execute(cmd, ctx).expect("the import applies");
    };
    // Before the point: the first half set, then ordinary traffic on the built-in keys, so that the point
    // falls between checkpoints.
    import(0..n / 2, 1);
    let mut work = Workload::new(&suite_catalog(), 7);
    for _ in 0..3 {
        let jobs = (0..sizes.wave.min(600)).map(|_| work.job()).collect();
        run_wave(&rt, &ledger, jobs);
    }
    let to = ledger.snapshot().head.seq;
    // After the point: the first half changed, the second half set for the first time.
    import(0..n / 2, 2);
    import(n / 2..n, 1);
    let head = ledger.snapshot().head.seq;
    let checkpoints = settle(ledger.store().as_ref());
    println!(
        "timetravel rollback (keys): store of {head} events with a catalog of {} keys built in {:.1} s; point at seq \
         {to}, {} events past the checkpoint below it ({} checkpoints)",
        catalog.len(),
        started.elapsed().as_secs_f64(),
        fold_distance(&checkpoints, to),
        checkpoints.len()
    );
    let label = format!("{n} custom-catalog keys changed or first set after the point, store of {head} events");
    let counts = rollbacks(report, &ledger, to, &label, sizes);
    assert_eq!(counts["set"], json!(n / 2), "the keys changed since are set back");
    assert_eq!(counts["reset"], json!(n - n / 2), "the keys first set since are reset");
}

fn main() {
    let full = full_run();
    let sizes = Sizes::new(full);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("timetravel bench: {cpus} CPUs; load average at start {}", loadavg());
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");
    let db = dir.path().join("timetravel.db");
    let mut report = Report::default();

    // The big store, built through the ledger; the checkpoints are the ones its checkpoint thread wrote.
    let ledger = open(&db, suite_catalog());
    let mut work = Workload::new(&suite_catalog(), 42);
    build(&ledger, &mut work, &sizes);
    let head = ledger.snapshot().head.seq;
    let recent = ledger.store().read_after(head.saturating_sub(10_000), 10_000).expect("the log reads");
    println!(
        "timetravel: the newest {} envelopes average {} bytes",
        recent.len(),
        recent.iter().map(|r| r.envelope.len()).sum::<usize>() / recent.len().max(1)
    );
    drop(recent);
    let written = settle(ledger.store().as_ref());
    describe_checkpoints("written by the product while building", &written, head);

    // 1. Point-in-time reads with the product's checkpoints.
    point_reads(&mut report, &ledger, &sizes, "product checkpoints", sizes.point_reads, 1);

    // 2. Audit queries.
    audits(&mut report, &ledger, &work, &sizes);
    drop(ledger);

    println!("timetravel: load average {}", loadavg());

    // 4. Opening, with the checkpoints and without.
    let store = store::open(&StoreUrl::Sqlite(db.clone())).expect("the store opens");
    settle(store.as_ref());
    opens(&mut report, &db, "product checkpoints present", sizes.opens, || {});
    let mut deleted = 0;
    opens(&mut report, &db, "every checkpoint deleted", sizes.opens, || deleted += delete_checkpoints(store.as_ref()));
    println!("timetravel: deleted {deleted} checkpoints across the opens without them");

    // 1 again, without checkpoints (the open just now wrote one at the head, which no earlier point can use).
    let ledger = open(&db, suite_catalog());
    deleted = delete_checkpoints(store.as_ref());
    println!("timetravel: deleted {deleted} more (the head checkpoint the open wrote)");
    point_reads(&mut report, &ledger, &sizes, "no checkpoints", sizes.slow, 2);

    // 1 again, with a checkpoint every INTERVAL events written by this bench (what the product's interval
    // promises; not what it wrote above).
    let t0 = Instant::now();
    let backfilled = backfill(store.as_ref(), INTERVAL, ledger.now());
    println!(
        "timetravel: backfilled {backfilled} checkpoints (one every {INTERVAL} events) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    describe_checkpoints("backfilled by the bench", &settle(store.as_ref()), head);
    point_reads(&mut report, &ledger, &sizes, "bench-backfilled checkpoints every 1000", sizes.point_reads, 1);
    drop(ledger);
    opens(&mut report, &db, "bench-backfilled checkpoints present", sizes.opens, || {});

    println!("timetravel: load average {}", loadavg());

    // 3. Rollback plans, both shapes.
    let ledger = open(&db, suite_catalog());
    rollback_entities(&mut report, &ledger, &mut work, &sizes);
    drop(ledger);
    rollback_keys(&mut report, dir.path(), &sizes);

    println!("timetravel bench: load average at end {}", loadavg());
    report.print();
}

/// The rollback plan as JSON, for assertions by field.
fn plan_json(
    ledger: &cfgledger::Ledger,
    req: &cfgledger_events::rollback::RollbackRequest,
) -> Result<serde_json::Value, cfgledger::Error> {
    timetravel::plan(ledger, req).map(|p| serde_json::to_value(p).unwrap_or_default())
}
