//! The reference a durable `PUT` is held to: the same change (`TOOL_RATE_LIMIT` to a fresh value, each
//! acknowledged after its group commit's fsync) made by `clients` threads straight through `Ledger::execute`
//! on a SQLite store in a temp dir, with no HTTP, in this process, for the same measured window as the HTTP
//! phases. It is what `cargo bench --bench append` measures, taken in the same run as the HTTP figures.

use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::{Cause, Command, Input};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Changes per second and their p99 (ms) with `clients` writer threads, after `warmup`, over `measured`.
pub fn group_commit(dir: &std::path::Path, clients: usize, warmup: Duration, measured: Duration) -> (f64, f64) {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(dir.join("store-only.db")), cfgledger_events::builtin::builtin());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), "load-bench-store-only-secret".into());
    let ledger = Ledger::open(opts).expect("the reference store opens").0;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let value = crate::measure::next_value();
                    let t0 = Instant::now();
                    let ctx = WriteContext {
                        actor: crate::common::actor(),
                        cause: Cause::Api { method: "PUT".into(), path: "/admin/config/TOOL_RATE_LIMIT".into() },
                        reason: None,
                        bypass: false,
                    };
                    ledger
                        .execute(Command::Set { key: "TOOL_RATE_LIMIT".into(), value: Input::Json(value.into()) }, ctx)
                        .expect("the set is accepted");
                    let done = t0.elapsed();
                    if t0.duration_since(started) >= warmup {
                        latencies.push(done.as_secs_f64() * 1e3);
                    }
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(warmup + measured);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<f64> = threads.into_iter().flat_map(|t| t.join().expect("a writer thread")).collect();
    all.sort_by(f64::total_cmp);
    let p99 = all.get(((all.len() as f64 * 0.99) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0.0);
    (all.len() as f64 / measured.as_secs_f64(), p99)
}
