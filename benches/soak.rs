//! Soak harness (issue 17, item 7): a real `cfgledger serve` on a SQLite file under minutes of mixed load:
//! writers (PUT of integer keys), readers (GET of one key, and now and then the whole list), audit queries
//! (by key, newest page, and by actor), and watch streams that follow every change (reopened when one
//! ends). Every few seconds it samples the server's resident memory (VmRSS from /proc). At the end it
//! prints ops/s and errors per kind, the changes the watchers received, RSS at start, peak and end, and
//! the RSS of the first and last fifths of the run (a leak shows as a rising tail), then stops the server
//! and checks the log: gapless, every acknowledged write at its seq, `cfgledger verify` passing. Any error
//! makes it exit 1.
//!
//! Run: `cargo bench --bench soak -- --minutes 10` (cargo builds the release binary it starts). Options:
//! `--minutes M` (default 10), `--sample-secs S` (default 5), `--writers N` (default 4), `--readers N`
//! (default 4), `--auditors N` (default 2), `--watchers N` (default 4), `--preload EVENTS` (default 0: an
//! empty store; `--preload 1000000` writes that many events over the gateway's whole catalog through the
//! ledger first, as issue 19 asks). `CFGLEDGER_BIN` names another
//! binary. Under `cargo test --benches` it runs for five seconds, as a smoke test.

#[path = "common/mod.rs"]
mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Integer keys of the gateway's catalog without bounds; writer `i` owns `KEYS[i % KEYS.len()]`'s values
/// `i, i + writers, ...`, so every acknowledged value names its write.
const KEYS: [&str; 4] = ["MAX_TEAMS_PER_USER", "MAX_MEMBERS_PER_TEAM", "MAX_TEAM_MEMBER_SEEDS", "META_MAX_KEYS"];

struct Options {
    run: Duration,
    sample: Duration,
    writers: usize,
    readers: usize,
    auditors: usize,
    watchers: usize,
    /// Events written into the store before the server starts (the gateway's whole catalog, through the
    /// ledger): the store a long-lived fleet serves from.
    preload: u64,
    bin: PathBuf,
}

impl Options {
    fn parse() -> Options {
        let args: Vec<String> = std::env::args().collect();
        let value = |flag: &str, default: f64| -> f64 {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .map(|v| v.parse().unwrap_or_else(|_| fail(&format!("{flag} expects a number; got {v:?}"))))
                .unwrap_or(default)
        };
        let minutes = if common::full_run() { value("--minutes", 10.0) } else { 5.0 / 60.0 };
        let count = |flag: &str, default: f64| value(flag, default).max(0.0) as usize;
        Options {
            run: Duration::from_secs_f64(minutes * 60.0),
            sample: Duration::from_secs_f64(value("--sample-secs", 5.0).max(0.1)),
            writers: count("--writers", 4.0).max(1),
            readers: count("--readers", 4.0),
            auditors: count("--auditors", 2.0),
            watchers: count("--watchers", 4.0),
            preload: if common::full_run() { value("--preload", 0.0).max(0.0) as u64 } else { 0 },
            bin: std::env::var_os("CFGLEDGER_BIN")
                .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfgledger")), PathBuf::from),
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("soak: {message}");
    std::process::exit(1)
}

/// Counts of one kind of operation.
#[derive(Default)]
struct Counter {
    ok: AtomicU64,
    errors: AtomicU64,
    /// The first few errors, as they came.
    samples: Mutex<Vec<String>>,
}

impl Counter {
    fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock().expect("samples");
        if samples.len() < 5 {
            samples.push(what);
        }
    }
}

#[derive(Default)]
struct Stats {
    writes: Counter,
    reads: Counter,
    lists: Counter,
    audits: Counter,
    /// Streams opened (ok) and streams that failed to open or broke (errors).
    streams: Counter,
    /// Changes the watchers received.
    delivered: AtomicU64,
    /// Every acknowledged write: (seq, key, value).
    acks: Mutex<Vec<(u64, String, i64)>>,
}

fn cfgledger(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "soak-secret-0123456789abcdef")
        .args(["--db", "sqlite://soak.db", "--env-file", ".env", "--actor", "soak"]);
    c
}

/// A field of /proc/PID/status in KiB: `VmRSS` (all resident memory) or `RssAnon` (the heap and stacks,
/// without the file pages SQLite maps, which a leak would grow).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The sizes of the database file and its write-ahead log, in MiB.
fn store_mib(dir: &Path) -> (u64, u64) {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len() >> 20);
    (size("soak.db"), size("soak.db-wal"))
}

fn main() {
    let opts = Options::parse();
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("no temporary directory: {e}")));
    std::fs::write(
        dir.path().join(".env"),
        "CFGLEDGER_JWT_SECRET_KEY=soak-signing-key-0123456789abcdef0123\nCFGLEDGER_CONFIG_WRITE_RATE_LIMIT=1000000\n\
         CFGLEDGER_LOG_LEVEL=warn\n",
    )
    .unwrap_or_else(|e| fail(&format!("cannot write .env: {e}")));
    if opts.preload > 0 {
        let rt =
            tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| fail(&e.to_string()));
        let ledger = common::workload::open_builtin(&dir.path().join("soak.db"), "soak-secret-0123456789abcdef");
        let (_, took) = common::workload::fill(&rt, &ledger, opts.preload, 2000);
        // The workload sets cfgledger's own keys too (the write rate limit, the log level, ...): they go back
        // to their defaults, or the server would run on whatever values the preload left.
        for spec in ledger.catalog().namespace_specs("cfgledger") {
            let key = if spec.key.contains(':') { spec.key.clone() } else { format!("cfgledger:{}", spec.key) };
            let ctx = cfgledger::WriteContext {
                actor: common::actor(),
                cause: cfgledger_events::Cause::Api { method: "DELETE".into(), path: format!("/admin/config/{key}") },
                reason: Some("soak: back to the .env".into()),
                bypass: false,
            };
            let _ = ledger.execute(cfgledger_events::Command::Reset { key }, ctx);
        }
        // The store's value wins over the .env's once the store was written, so the two the soak relies on
        // are set outright.
        for (key, value) in [("cfgledger:CONFIG_WRITE_RATE_LIMIT", "1000000"), ("cfgledger:LOG_LEVEL", "warn")] {
            let ctx = cfgledger::WriteContext {
                actor: common::actor(),
                cause: cfgledger_events::Cause::Api { method: "PUT".into(), path: format!("/admin/config/{key}") },
                reason: Some("soak: as its .env says".into()),
                bypass: false,
            };
            let set =
                cfgledger_events::Command::Set { key: key.into(), value: cfgledger_events::Input::Text(value.into()) };
            ledger.execute(set, ctx).unwrap_or_else(|e| fail(&format!("set {key}: {e}")));
        }
        println!(
            "soak: preloaded {} events over the gateway's whole catalog ({} keys) in {:.0} s",
            ledger.snapshot().head.seq,
            ledger.catalog().len(),
            took.as_secs_f64()
        );
    }
    let out = cfgledger(&opts.bin, dir.path())
        .args(["token", "issue", "--sub", "soak", "--role", "platform_admin", "--ttl", "1d"])
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", opts.bin.display())));
    if !out.status.success() {
        fail(&format!("token issue: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap_or_else(|e| fail(&e.to_string()));
    let mut server: Child = cfgledger(&opts.bin, dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| fail(&format!("serve does not start: {e}")));
    let stdout = server.stdout.take().unwrap_or_else(|| fail("serve's stdout is not piped"));
    let addr = common::serve::listen_address(stdout).unwrap_or_else(|_| {
        let _ = server.kill();
        fail("serve printed no address; see its log")
    });
    let base = format!("http://{addr}");
    let pid = server.id();
    println!(
        "soak: {:.1} min against {} (pid {pid}): {} writers, {} readers, {} auditors, {} watchers; RSS every {:?}",
        opts.run.as_secs_f64() / 60.0,
        base,
        opts.writers,
        opts.readers,
        opts.auditors,
        opts.watchers,
        opts.sample
    );

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let spawn = |threads: &mut Vec<std::thread::JoinHandle<()>>, f: Box<dyn FnOnce() + Send>| {
        threads.push(std::thread::spawn(f));
    };
    for w in 0..opts.writers {
        let (stats, stop, base, token, writers) =
            (stats.clone(), stop.clone(), base.clone(), token.clone(), opts.writers);
        spawn(&mut threads, Box::new(move || writer(w, writers, &base, &token, &stats, &stop)));
    }
    for r in 0..opts.readers {
        let (stats, stop, base, token) = (stats.clone(), stop.clone(), base.clone(), token.clone());
        spawn(&mut threads, Box::new(move || reader(r, &base, &token, &stats, &stop)));
    }
    for a in 0..opts.auditors {
        let (stats, stop, base, token) = (stats.clone(), stop.clone(), base.clone(), token.clone());
        spawn(&mut threads, Box::new(move || auditor(a, &base, &token, &stats, &stop)));
    }
    for _ in 0..opts.watchers {
        let (stats, stop, base, token) = (stats.clone(), stop.clone(), base.clone(), token.clone());
        spawn(&mut threads, Box::new(move || watcher(&base, &token, &stats, &stop)));
    }

    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut last_ops = 0u64;
    while started.elapsed() < opts.run {
        let rss = rss_kib(pid).unwrap_or_else(|| fail("the server is gone (no /proc entry): see its log"));
        let anon = status_kib(pid, "RssAnon:").unwrap_or(0);
        samples.push((started.elapsed().as_secs_f64(), rss));
        let ops = total_ops(&stats);
        let (db, wal) = store_mib(dir.path());
        println!(
            "  t={:>6.1}s rss={:>7} KiB (anon {:>7}) db={db} MiB wal={wal} MiB ops={:>9} (+{}) errors={} delivered={}",
            started.elapsed().as_secs_f64(),
            rss,
            anon,
            ops,
            ops - last_ops,
            total_errors(&stats),
            stats.delivered.load(Ordering::Relaxed)
        );
        last_ops = ops;
        std::thread::sleep(opts.sample.min(opts.run.saturating_sub(started.elapsed())).max(Duration::from_millis(1)));
        if let Ok(Some(status)) = server.try_wait() {
            fail(&format!("the server exited during the soak ({status}); see its log"));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let end_rss = rss_kib(pid).unwrap_or_else(|| fail("the server is gone at the end"));
    let end_anon = status_kib(pid, "RssAnon:").unwrap_or(0);
    let (end_db, end_wal) = store_mib(dir.path());
    samples.push((elapsed, end_rss));
    // Watchers block on their stream; the server's end releases them.
    let _ = server.kill();
    let _ = server.wait();
    for t in threads {
        let _ = t.join();
    }

    let mut errors = total_errors(&stats);
    println!("\nsoak result after {elapsed:.0} s:");
    println!("| operation | ok | ops/s | errors |\n| --- | --- | --- | --- |");
    for (name, c) in [
        ("PUT /admin/config/{key}", &stats.writes),
        ("GET /admin/config/{key}", &stats.reads),
        ("GET /admin/config (list)", &stats.lists),
        ("GET /admin/config/audit", &stats.audits),
        ("watch streams opened", &stats.streams),
    ] {
        let ok = c.ok.load(Ordering::Relaxed);
        println!("| {name} | {ok} | {:.0} | {} |", ok as f64 / elapsed, c.errors.load(Ordering::Relaxed));
        for s in c.samples.lock().expect("samples").iter() {
            println!("    error: {s}");
        }
    }
    println!("changes delivered to watchers: {}", stats.delivered.load(Ordering::Relaxed));
    let rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let fifth = (rss.len() / 5).max(1);
    let mean = |xs: &[u64]| xs.iter().sum::<u64>() / xs.len().max(1) as u64;
    println!(
        "server RSS (KiB): start {}, peak {}, end {}; mean of the first fifth {}, of the last fifth {} ({} samples)",
        rss.first().copied().unwrap_or(0),
        rss.iter().max().copied().unwrap_or(0),
        end_rss,
        mean(&rss[..fifth]),
        mean(&rss[rss.len() - fifth..]),
        rss.len()
    );
    println!("at the end: RssAnon {end_anon} KiB; database {end_db} MiB, write-ahead log {end_wal} MiB");

    match check_log(&opts.bin, dir.path(), &stats) {
        Ok(summary) => println!("log: {summary}"),
        Err(e) => {
            println!("log check FAILED: {e}");
            errors += 1;
        }
    }
    if errors > 0 {
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("serve's log, last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        fail(&format!("{errors} error(s) during the soak"));
    }
}

fn total_ops(s: &Stats) -> u64 {
    [&s.writes, &s.reads, &s.lists, &s.audits].iter().map(|c| c.ok.load(Ordering::Relaxed)).sum()
}

fn total_errors(s: &Stats) -> u64 {
    [&s.writes, &s.reads, &s.lists, &s.audits, &s.streams].iter().map(|c| c.errors.load(Ordering::Relaxed)).sum()
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build()
}

fn writer(w: usize, writers: usize, base: &str, token: &str, stats: &Stats, stop: &AtomicBool) {
    let agent = agent();
    let key = KEYS[w % KEYS.len()];
    let mut value = w as i64;
    while !stop.load(Ordering::Relaxed) {
        value += writers as i64;
        let r = agent
            .put(&format!("{base}/admin/config/{key}"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({ "value": value }));
        match r.map_err(|e| e.to_string()).and_then(|r| r.into_json::<Value>().map_err(|e| e.to_string())) {
            Ok(item) => match item["seq"].as_u64() {
                Some(seq) => {
                    stats.acks.lock().expect("acks").push((seq, key.to_string(), value));
                    stats.writes.ok();
                }
                None => stats.writes.error(format!("an answer without a seq: {item}")),
            },
            Err(e) if stop.load(Ordering::Relaxed) => drop(e),
            Err(e) => stats.writes.error(e),
        }
    }
}

fn reader(r: usize, base: &str, token: &str, stats: &Stats, stop: &AtomicBool) {
    let agent = agent();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // One read in 200 is the whole list (about 870 keys); the rest read one key.
        let (url, counter) = if n % 200 == 0 {
            (format!("{base}/admin/config"), &stats.lists)
        } else {
            (format!("{base}/admin/config/{}", KEYS[(r + n) % KEYS.len()]), &stats.reads)
        };
        match agent.get(&url).set("Authorization", &format!("Bearer {token}")).call() {
            Ok(resp) => match resp.into_string() {
                Ok(_) => counter.ok(),
                Err(e) => counter.error(e.to_string()),
            },
            Err(e) if stop.load(Ordering::Relaxed) => drop(e),
            Err(e) => counter.error(e.to_string()),
        }
    }
}

fn auditor(a: usize, base: &str, token: &str, stats: &Stats, stop: &AtomicBool) {
    let agent = agent();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let query = match (a + n) % 3 {
            0 => format!("key={}&limit=50", KEYS[n % KEYS.len()]),
            1 => "limit=100".to_string(),
            _ => "actor=soak&action=set&limit=20".to_string(),
        };
        let url = format!("{base}/admin/config/audit?{query}");
        match agent.get(&url).set("Authorization", &format!("Bearer {token}")).call() {
            Ok(resp) => match resp.into_json::<Value>() {
                Ok(page) if page["entries"].is_array() => stats.audits.ok(),
                Ok(page) => stats.audits.error(format!("an audit page without entries: {page}")),
                Err(e) => stats.audits.error(e.to_string()),
            },
            Err(e) if stop.load(Ordering::Relaxed) => drop(e),
            Err(e) => stats.audits.error(e.to_string()),
        }
    }
}

/// Follows the watch stream, counting the changes it delivers; reopens it when it ends.
fn watcher(base: &str, token: &str, stats: &Stats, stop: &AtomicBool) {
    // No overall timeout: a stream is open for as long as the soak runs.
    let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).build();
    while !stop.load(Ordering::Relaxed) {
        let resp = match agent
            .get(&format!("{base}/admin/config/watch"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "text/event-stream")
            .call()
        {
            Ok(resp) => resp,
            Err(e) if stop.load(Ordering::Relaxed) => return drop(e),
            Err(e) => {
                stats.streams.error(e.to_string());
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        stats.streams.ok();
        // A change is an unnamed event with data; `progress` and `end` are named, keep-alives are comments.
        let (mut event, mut data) = (String::new(), false);
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_string();
            } else if line.starts_with("data:") {
                data = true;
            } else if line.is_empty() {
                if event.is_empty() && data {
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                (event, data) = (String::new(), false);
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

/// The log after the soak: gapless from seq 1, every acknowledged write at its seq, and `verify` passing.
fn check_log(bin: &Path, dir: &Path, stats: &Stats) -> Result<String, String> {
    let out = cfgledger(bin, dir).args(["log", "--output", "json"]).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("log: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut by_seq: BTreeMap<u64, Value> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        by_seq.insert(e["seq"].as_u64().ok_or("an event without a seq")?, e);
    }
    let head = by_seq.keys().next_back().copied().unwrap_or(0);
    if by_seq.len() as u64 != head || by_seq.keys().next().is_some_and(|s| *s != 1) {
        return Err(format!("the log has gaps: {} events up to seq {head}", by_seq.len()));
    }
    let acks = stats.acks.lock().expect("acks");
    for (seq, key, value) in acks.iter() {
        let e = by_seq.get(seq).ok_or(format!("acknowledged seq {seq} is not in the log"))?;
        if e["payload"]["key"] != format!("mcpgateway:{key}") || e["payload"]["value"]["plain"] != *value {
            return Err(format!("seq {seq} holds {e}, not the acknowledged {key}={value}"));
        }
    }
    let out = cfgledger(bin, dir).arg("verify").output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(format!(
        "{head} events, gapless; {} acknowledged writes all at their seq; {}",
        acks.len(),
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}
