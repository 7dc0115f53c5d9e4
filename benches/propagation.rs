//! Write-to-visible propagation between two instances on one store: how long after a write through
//! instance A the change arrives on instance B's `/admin/config/watch` stream. Two `cfgledger serve`
//! processes (A and B, `--listen 127.0.0.1:0`) run on the same store, prepared with the CLI (write rate limit
//! at its maximum, `LOG_LEVEL=warn`, one `platform_admin` token valid on both). The bench opens B's watch
//! stream, then writes `TOOL_RATE_LIMIT` through A with `PUT /admin/config/TOOL_RATE_LIMIT`, one distinct
//! value at a time; after each write it waits for the event of the seq A's response named, then pauses
//! `PROP_PACE_MS` plus a random extra of up to the poll interval (at least the pace), so that writes fall
//! at random points of B's poll cycle instead of locking onto one phase of it. Each change gets two
//! latencies: from the moment A's response was read (the change is committed by then; an event can arrive
//! before it, which counts as a negative latency) and from the moment the PUT was sent.
//!
//! Backends, each on a fresh store: PostgreSQL (a throwaway database on the local server, see
//! `propagation/pg.rs`; B is woken by `LISTEN/NOTIFY`; target p99 < 10 ms), and SQLite in a temp dir, polled
//! with `PRAGMA data_version` at the default `CONFIG_POLL_INTERVAL` (50ms) and at 10ms (target p99 < the
//! interval + 5 ms).
//!
//! Run: `cargo bench --bench propagation` (cargo builds the release binary it starts). Environment:
//! `PROP_WRITES` (measured writes per backend, default 1000), `PROP_WARMUP` (writes first, not counted,
//! default 20), `PROP_PACE_MS` (default 20), `PROP_BACKENDS` (any of `postgres,sqlite,sqlite-10ms`, default
//! all three), `CFGLEDGER_BIN` (default the binary cargo built), `CFGLEDGER_BENCH_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432`). Under `cargo test --benches` it does three writes per backend and
//! skips PostgreSQL when no server answers.

#[path = "common/mod.rs"]
mod common;
#[path = "propagation/http.rs"]
mod http;
#[path = "propagation/pg.rs"]
mod pg;
#[path = "propagation/server.rs"]
mod server;

use http::{Arrival, Conn};
use rand::Rng;
use server::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const PUT_PATH: &str = "/admin/config/TOOL_RATE_LIMIT";
/// How long a change may take to reach B before it counts as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// PostgreSQL's target: etcd's watch delivers in about 1 ms on this machine.
const PG_TARGET: Duration = Duration::from_millis(10);
/// SQLite's target is the poll interval plus this.
const POLL_SLACK: Duration = Duration::from_millis(5);

struct Params {
    writes: usize,
    warmup: usize,
    pace: Duration,
    bin: PathBuf,
    full: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number; got {text:?}")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Postgres,
    /// SQLite with the default poll interval, or with the one given.
    Sqlite(Option<&'static str>),
}

impl Backend {
    fn id(self) -> String {
        match self {
            Backend::Postgres => "postgres".into(),
            Backend::Sqlite(None) => "sqlite".into(),
            Backend::Sqlite(Some(poll)) => format!("sqlite-{poll}"),
        }
    }
}

/// The latencies of one backend, in milliseconds.
struct Samples {
    label: String,
    /// Event on B minus A's response: the primary figure (negative when the event came first).
    from_ack: Vec<f64>,
    /// Event on B minus the moment the PUT was sent.
    from_sent: Vec<f64>,
    /// A's PUT round trip.
    put: Vec<f64>,
    lost: usize,
    target: Duration,
    target_text: String,
    /// How the two servers ended.
    stopped: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `later - earlier` in milliseconds, negative when `later` is before `earlier`.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(d) => ms(d),
        None => -ms(earlier - later),
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(samples: &[f64]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return "no samples".into();
    }
    format!(
        "p50 {:6.2} ms  p90 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1]
    )
}

fn p99(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        f64::INFINITY
    } else {
        percentile(&sorted, 0.99)
    }
}

/// "50ms", "1s", "1m" as the CLI prints a duration setting.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(n) = text.strip_suffix("ms") {
        return n.parse().ok().map(Duration::from_millis);
    }
    if let Some(n) = text.strip_suffix('s') {
        return n.parse().ok().map(Duration::from_secs);
    }
    text.strip_suffix('m').and_then(|n| n.parse::<u64>().ok()).map(|m| Duration::from_secs(m * 60))
}

/// Waits for the event of `seq` on B's stream; `None` if it did not come within [`DELIVERY_TIMEOUT`].
async fn arrival_of(events: &mut UnboundedReceiver<Arrival>, seq: u64) -> Result<Option<Instant>, String> {
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err("B's watch stream ended".into()),
            // A change that came after its timeout, or one of the store's preparation.
            Ok(Some(a)) if a.seq < seq => continue,
            Ok(Some(a)) if a.seq == seq => return Ok(Some(a.at)),
            Ok(Some(a)) => return Err(format!("B's watch stream went from before seq {seq} to seq {}", a.seq)),
        }
    }
}

/// Writes through A and times each change's arrival on B.
async fn measure(
    a: SocketAddr,
    b: SocketAddr,
    token: &str,
    p: &Params,
    jitter: Duration,
    s: &mut Samples,
) -> Result<(), String> {
    let mut events = Conn::open(b, token).await?.watch().await?;
    let mut writer = Conn::open(a, token).await?;
    let mut rng = rand::thread_rng();
    let mut last_seq = 0;
    for i in 0..p.warmup + p.writes {
        // Each differs from the one before and from the key's default (100), within its 1..=1,000,000.
        let value = 1000 + i64::try_from(i % 999_000).expect("below a million");
        let sent = Instant::now();
        let seq = writer.put(PUT_PATH, value).await?;
        let acked = Instant::now();
        if seq <= last_seq {
            return Err(format!("PUT of a new value answered seq {seq}, not after {last_seq}: nothing was written"));
        }
        last_seq = seq;
        let arrived = arrival_of(&mut events, seq).await?;
        if i >= p.warmup {
            s.put.push(ms(acked - sent));
            match arrived {
                Some(at) => {
                    s.from_ack.push(signed_ms(at, acked));
                    s.from_sent.push(signed_ms(at, sent));
                }
                None => s.lost += 1,
            }
        }
        let extra = Duration::from_micros(rng.gen_range(0..jitter.as_micros().max(1) as u64));
        tokio::time::sleep(p.pace + extra).await;
    }
    Ok(())
}

/// Prepares a fresh store for `backend`, runs A and B on it, measures, and stops them.
fn run(backend: Backend, p: &Params) -> Result<Samples, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let db = match backend {
        Backend::Postgres => Some(pg::FreshDb::create()?),
        Backend::Sqlite(_) => None,
    };
    let url = match &db {
        Some(db) => db.url(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let store = Store::new(&p.bin, url, dir.path());
    let poll = match backend {
        Backend::Postgres => None,
        Backend::Sqlite(poll) => Some(poll),
    };
    store.prepare(poll.flatten())?;
    let token = store.token()?;
    let (label, target, target_text, jitter) = match poll {
        None => {
            let label = "postgres (LISTEN/NOTIFY)".to_string();
            (label, PG_TARGET, format!("p99 < {} ms", PG_TARGET.as_millis()), p.pace)
        }
        Some(given) => {
            let shown = store.cli(&["config", "get", "cfgledger:CONFIG_POLL_INTERVAL"])?;
            let interval = parse_duration(&shown)
                .ok_or_else(|| format!("CONFIG_POLL_INTERVAL reads {shown:?}, not a duration"))?;
            let how = if given.is_some() { "set" } else { "default" };
            let label = format!("sqlite (data_version polling, CONFIG_POLL_INTERVAL={shown}, {how})");
            let target = interval + POLL_SLACK;
            let text = format!("p99 < {} ms (poll interval + {} ms)", target.as_millis(), POLL_SLACK.as_millis());
            (label, target, text, interval.max(p.pace))
        }
    };
    let mut samples = Samples {
        label,
        from_ack: Vec::new(),
        from_sent: Vec::new(),
        put: Vec::new(),
        lost: 0,
        target,
        target_text,
        stopped: String::new(),
    };
    println!(
        "\n== {}: {} writes through A, B watching; {} warm-up write(s) first, not counted; {:.0}–{:.0} ms between a \
         delivery and the next write",
        samples.label,
        p.writes,
        p.warmup,
        ms(p.pace),
        ms(p.pace + jitter)
    );
    let mut a = store.serve("A")?;
    let mut b = store.serve("B")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let measured = runtime.block_on(measure(a.addr, b.addr, &token, p, jitter, &mut samples));
    drop(runtime);
    samples.stopped = [a.stop(), b.stop()].join("; ");
    drop(db);
    measured.map(|()| samples)
}

fn report(s: &Samples, full: bool) -> bool {
    let early = s.from_ack.iter().filter(|&&v| v < 0.0).count();
    println!("   event on B − PUT response on A: {}", summary(&s.from_ack));
    println!(
        "     ({early} of {} events arrived before A's response was read: counted as negative latencies)",
        s.from_ack.len()
    );
    println!("   event on B − PUT sent to A:     {}", summary(&s.from_sent));
    println!("   PUT round trip on A:            {}", summary(&s.put));
    if s.lost > 0 {
        println!(
            "   {} changes did not arrive within {} s (not in the percentiles)",
            s.lost,
            DELIVERY_TIMEOUT.as_secs()
        );
    }
    println!("   ({})", s.stopped);
    if !full {
        println!("   (a short run under `cargo test`: the target is not judged)");
        return true;
    }
    let limit = ms(s.target);
    let met = s.lost == 0 && p99(&s.from_ack) < limit;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "   target {}: {} (from the response p99 {:.2} ms; from the send p99 {:.2} ms, {})",
        s.target_text,
        verdict(met),
        p99(&s.from_ack),
        p99(&s.from_sent),
        verdict(s.lost == 0 && p99(&s.from_sent) < limit)
    );
    met
}

fn main() {
    let full = common::full_run();
    let bin =
        std::env::var_os("CFGLEDGER_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfgledger")), PathBuf::from);
    let p = Params {
        writes: if full { env_number("PROP_WRITES", 1000) as usize } else { 3 },
        warmup: if full { env_number("PROP_WARMUP", 20) as usize } else { 1 },
        pace: Duration::from_millis(if full { env_number("PROP_PACE_MS", 20) } else { 5 }),
        bin,
        full,
    };
    let wanted = std::env::var("PROP_BACKENDS").unwrap_or_else(|_| "postgres,sqlite,sqlite-10ms".into());
    let backends: Vec<Backend> = [Backend::Postgres, Backend::Sqlite(None), Backend::Sqlite(Some("10ms"))]
        .into_iter()
        .filter(|b| wanted.split(',').any(|w| w.trim() == b.id()))
        .collect();
    println!("propagation bench: cfgledger binary {}", p.bin.display());
    if !Path::new(&p.bin).is_file() {
        eprintln!("no binary at {}: run `cargo build --release` or set CFGLEDGER_BIN", p.bin.display());
        std::process::exit(1);
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("{cpus} CPUs; client, both instances and PostgreSQL share them");
    if backends.contains(&Backend::Postgres) {
        match (pg::show("server_version"), pg::show("synchronous_commit")) {
            (Ok(v), Ok(sc)) => println!("PostgreSQL {v} at {}, synchronous_commit={sc}", pg::server_url()),
            (Err(e), _) | (_, Err(e)) => println!("PostgreSQL: {e}"),
        }
    }

    let mut failed = false;
    let mut results = Vec::new();
    for backend in backends {
        match run(backend, &p) {
            Ok(samples) => {
                let met = report(&samples, p.full);
                results.push((samples, met));
            }
            // Without a server, the short run of `cargo test --benches` skips PostgreSQL; a real run fails.
            Err(e) if backend == Backend::Postgres && !full => println!("postgres skipped: {e}"),
            Err(e) => {
                println!("{}: FAILED: {e}", backend.id());
                failed = true;
            }
        }
    }
    if full && !results.is_empty() {
        println!("\n| backend | writes | p50 | p90 | p99 | max | target | |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        for (s, met) in &results {
            let mut sorted = s.from_ack.clone();
            sorted.sort_by(f64::total_cmp);
            if sorted.is_empty() {
                continue;
            }
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} |",
                s.label,
                s.from_ack.len(),
                percentile(&sorted, 0.5),
                percentile(&sorted, 0.9),
                percentile(&sorted, 0.99),
                sorted[sorted.len() - 1],
                s.target_text,
                if *met { "met" } else { "**missed**" }
            );
        }
        println!("(latencies from A's PUT response to the event on B's watch stream)");
    }
    if failed {
        std::process::exit(1);
    }
}
