//! What the integrity check costs on a SQLite store of 1,000,000 events over the built-in catalog (built
//! through the ledger with the time-travel bench's workload):
//!
//! 1. the check at start: one pass over the whole log at full speed (every hash, link, decode, index column
//!    and checkpoint), beside opening the store (the replay from the newest checkpoint: the store alone) as
//!    the reference measured in the same run;
//! 2. the background check at the default pace (`INTEGRITY_CHECK_RATE` 20,000 events/s): the process's CPU
//!    share over a window while it runs, against the share the pass at full speed would predict;
//! 3. the per-record checks on read: the hash, decode and index check of an audit page's records, as a share
//!    of the whole `GET /admin/config/audit` answer over HTTP (target: at most 10%);
//! 4. write throughput over HTTP (`PUT` of one key by 8 clients) with the background check running at its
//!    default pace, against the same without it.
//!
//! Timings are reported, never asserted; what is asserted is that the checks find the log intact.
//! `cargo bench --bench integrity` runs it at full size; `cargo test --benches` on a store of 5,000 events.

mod common;

use cfgledger::auth::{Role, TokenKeys};
use cfgledger::integrity::Checker;
use cfgledger::store::LogQuery;
use cfgledger::usecase::verify::verify_paced;
use cfgledger::{Ledger, WriteContext};
use cfgledger_events::{Cause, Command, Input};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SECRET: &str = "integrity-bench-secret-0123456789abcdef-01234";
const JWT: &[u8] = b"integrity-bench-signing-key-0123456789abcdef";

fn open(db: &std::path::Path) -> Ledger {
    common::workload::open_builtin(db, SECRET)
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn set(ledger: &Ledger, key: &str, value: serde_json::Value) {
    let ctx = WriteContext {
        actor: common::actor(),
        cause: Cause::Cli { command: "bench".into() },
        reason: None,
        bypass: false,
    };
    ledger.execute(Command::Set { key: key.into(), value: Input::Json(value) }, ctx).expect("a bench setting");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50 of `n` runs of `f`.
fn p50(n: usize, f: impl FnMut()) -> Duration {
    let samples = common::sorted_samples(n, f);
    samples[samples.len() / 2]
}

/// `PUT`s of one key by `clients` threads for `window`; acknowledged writes per second.
fn put_throughput(url: &str, token: &str, clients: usize, window: Duration) -> f64 {
    let until = Instant::now() + window;
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    let mut n = 0;
                    while Instant::now() < until {
                        let value = 1 + (n + c * 7) % 60;
                        let reply = agent
                            .put(&format!("{url}/admin/config/cfgledger:CONFIG_WRITE_RATE_LIMIT"))
                            .set("Authorization", &format!("Bearer {token}"))
                            .send_json(serde_json::json!({ "value": 600_000 + value }));
                        assert!(reply.is_ok(), "a PUT is acknowledged: {reply:?}");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a client")).sum()
    });
    done as f64 / window.as_secs_f64()
}

fn main() {
    let full = common::full_run();
    let (events, wave, n, window) =
        if full { (1_000_000, 2048, 200, Duration::from_secs(20)) } else { (5_000, 256, 5, Duration::from_secs(1)) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("integrity.db");
    let ledger = open(&db);
    let (_, took) = common::workload::fill(&rt, &ledger, events, wave);
    let head = ledger.snapshot().head;
    println!("integrity: built a store of {} events in {:.1} s", head.seq, took.as_secs_f64());
    // Let the checkpoint thread finish the newest checkpoint, then reopen as a server starts.
    drop(ledger);
    std::thread::sleep(Duration::from_secs(1));

    // 1. Opening (the reference), then the whole pass at start.
    let started = Instant::now();
    let ledger = open(&db);
    let open_time = started.elapsed();
    assert_eq!(ledger.snapshot().head, head, "the reopened store is at the same head");
    let cpu = cpu_seconds();
    let started = Instant::now();
    let report = verify_paced(ledger.store().as_ref(), Some(head), &mut |_| true)
        .expect("the log verifies")
        .expect("an unpaced pass runs to the end");
    let check_time = started.elapsed();
    let check_cpu = cpu_seconds() - cpu;
    assert_eq!(report.head, head);
    assert!(report.snapshots_bad.is_empty(), "every checkpoint matches: {:?}", report.snapshots_bad);
    let capacity = head.seq as f64 / check_time.as_secs_f64();

    // 2. The background pace: passes at the default rate, a second apart, over a window.
    // The workload writes every writable key, these among them: back to the default rate, and a short pause.
    set(&ledger, "cfgledger:INTEGRITY_CHECK_RATE", serde_json::json!(20_000));
    set(&ledger, "cfgledger:INTEGRITY_CHECK_PAUSE", serde_json::json!("1s"));
    let rate = cfgledger::setting_keys::INTEGRITY_CHECK_RATE.get(&ledger.settings());
    let checker = Checker::spawn(ledger.clone()).expect("the checker starts");
    assert!(ledger.integrity().wait_first_pass(Duration::from_secs(600)), "the first pass ends");
    let before = ledger.integrity().status();
    let (cpu, started) = (cpu_seconds(), Instant::now());
    std::thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    let share = (cpu_seconds() - cpu) / elapsed;
    let status = ledger.integrity().status();
    assert_eq!(status.state, "verified", "{status:?}");
    // Events verified in the window: the rest of the pass it started in, whole passes, and the running one.
    let head_seq = ledger.snapshot().head.seq;
    let progressed = match status.passes - before.passes {
        0 if status.verified_seq >= before.verified_seq => status.verified_seq - before.verified_seq,
        // The window began at the end of a pass (the count moves when the pass ends) and the next one started.
        k => (head_seq - before.verified_seq) + k.saturating_sub(1) * head_seq + status.verified_seq,
    };
    let measured_rate = progressed as f64 / elapsed;

    // 3. The per-record checks of an audit page against the whole answer over HTTP.
    let keys = TokenKeys::new(JWT, "HS256").expect("keys");
    let now = cfgledger::auth::unix_seconds(ledger.now());
    let token = keys.issue("bench", Role::PlatformAdmin, now, 3600).expect("a token");
    let (url, closing) = common::in_process::serve(&rt, ledger.clone(), keys, Duration::from_secs(30));
    let agent = ureq::AgentBuilder::new().build();
    let audit_url = format!("{url}/admin/config/audit?limit=50");
    let http = p50(n, || {
        let reply = agent.get(&audit_url).set("Authorization", &format!("Bearer {token}")).call();
        black_box(reply.expect("an audit page").into_string().expect("a body"));
    });
    let records = ledger.store().query(&LogQuery { limit: 50, ..LogQuery::default() }).expect("a page of records");
    assert_eq!(records.len(), 50.min(head.seq as usize));
    let checks = p50(n, || {
        for rec in &records {
            black_box(cfgledger_events::verify_record(rec).expect("a sound record"));
        }
    });
    // What the answer needs without the checks: the decode alone. The checks cost the difference.
    let decode = p50(n, || {
        for rec in &records {
            black_box(cfgledger_events::Envelope::decode(&rec.envelope).expect("an envelope"));
        }
    });
    let added = checks.saturating_sub(decode);

    // 4. Writes with the background check at its default pace, and without it: alternating windows, so that
    // a change in the machine's load is spread over both.
    let (mut with_check, mut without_check) = (0.0, 0.0);
    let mut checker = Some(checker);
    for round in 0..4 {
        if round % 2 == 0 {
            if checker.is_none() {
                checker = Some(Checker::spawn(ledger.clone()).expect("the checker starts"));
                ledger.integrity().wait_first_pass(Duration::from_secs(600));
            }
            with_check += put_throughput(&url, &token, 8, window / 2) / 2.0;
        } else {
            drop(checker.take());
            without_check += put_throughput(&url, &token, 8, window / 2) / 2.0;
        }
    }
    let _ = closing.send(true);

    println!("\nintegrity bench: {} events, load average {}", head.seq, loadavg());
    println!("| what | measured | reference | ratio | target |\n| --- | --- | --- | --- | --- |");
    println!(
        "| check at start (whole chain, full speed) | {:.2} s ({capacity:.0} events/s, {:.2} CPU s) | open (replay from the newest checkpoint) {:.2} s | {:.1}× | |",
        check_time.as_secs_f64(),
        check_cpu,
        open_time.as_secs_f64(),
        check_time.as_secs_f64() / open_time.as_secs_f64()
    );
    println!(
        "| background check at {rate} events/s | {measured_rate:.0} events/s, {:.1}% of one core | {:.1}% predicted from the full-speed pass | {:.2}× | |",
        share * 100.0,
        rate as f64 / capacity * 100.0,
        share / (rate as f64 / capacity)
    );
    println!(
        "| per-record checks of an audit page (50 records: hash, index columns; {:.3} ms with the decode the answer needs anyway) | {:.3} ms | GET /admin/config/audit?limit=50 {:.3} ms | {:.1}% | ≤ 10% |",
        ms(checks),
        ms(added),
        ms(http),
        ms(added) / ms(http) * 100.0
    );
    println!(
        "| PUT throughput, background check running | {with_check:.0} writes/s | without it {without_check:.0} writes/s | {:.2}× | |",
        with_check / without_check
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
