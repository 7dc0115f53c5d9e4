//! Issue 19, part 1: one `cfgledger serve` (release, SQLite in a temp dir) holding thousands of watch streams.
//! For each size (1,000 then 10,000 watchers by default), the harness opens that many `GET
//! /admin/config/watch?kind=settings` streams on loopback from one tokio process, waits until each has caught
//! up (its first event), then measures:
//! - the server's resident memory per watcher: (RSS with the watchers - RSS before them) / watchers;
//! - the server's CPU while idle (5 s with every stream open and nothing changing), as a share of one core;
//! - for each of `FLEET_CHANGES` changes (`PUT /admin/config/TOOL_RATE_LIMIT`, a distinct value each): the time from
//!   the moment the `PUT` is sent to the moment the last watcher received the event (p50 and p99 over the
//!   changes), and the server's CPU per change;
//! - that every watcher received every change exactly once (a missing or duplicate event fails the run).
//!
//! The reference in the same run is the same server with one watcher: the time from the `PUT` to that one
//! watcher (a change's cost with no fan-out). etcd is measured the same way at the same sizes when it is on the
//! machine (Debian's `etcd-server`; the etcd peer, `benches/etcd-peer`, needs `protoc` to build): one watch per
//! client connection through etcd's own client, so that etcd holds as many streams as cfgledger did.
//!
//! Then part 2 (`fleet/balancer.rs`): throughput and propagation with one server reached directly, one server
//! behind HAProxy, and three servers on one PostgreSQL behind HAProxy (`FLEET_BALANCER=off` skips it; it needs
//! the local PostgreSQL, and installs Debian's haproxy when missing).
//!
//! Then part 3 (`fleet/heartbeats.rs`): 10,000 agents' heartbeats, what one server stores, and what they cost
//! config writes (`FLEET_HEARTBEATS=off` skips it; `BEAT_AGENTS` 10000, `BEAT_CLIENTS` 1000, `BEAT_SECS` 10).
//!
//! Run: `cargo bench --bench fleet`. Environment: `FLEET_WATCHERS` (comma-separated sizes, default
//! `1000,10000`), `FLEET_CHANGES` (default 20), `CFGLEDGER_BIN` (default the binary cargo built), and for part 2 `BALANCER_CLIENTS` (16), `BALANCER_SECS`
//! (10), `BALANCER_WATCHERS` (300), `BALANCER_CHANGES` (200). The client's
//! file limit must allow the largest size (this harness checks it; raise it with `ulimit -n`, not in the
//! product). Under `cargo test --benches` it runs 50 watchers and 3 changes.

#[path = "fleet/balancer.rs"]
mod balancer;
#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)] // the fan-out phase only
#[path = "load/etcd.rs"]
mod etcd;
#[path = "../tests/haproxy/mod.rs"]
mod haproxy;
#[path = "fleet/heartbeats.rs"]
mod heartbeats;
#[allow(dead_code)] // the types the etcd peer's replies carry
#[path = "load/measure.rs"]
mod measure;
#[path = "propagation/pg.rs"]
mod pg;
#[path = "load/procfs.rs"]
mod procfs;
#[path = "propagation/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "load/wire.rs"]
mod wire;

use common::sse::SseParser;
use procfs::{cpu_ticks, rss_kib, TICKS_PER_SEC};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the watchers saw of each change: how many received it, and when the last one did (nanoseconds since
/// the harness's epoch).
struct Seen {
    count: Vec<AtomicUsize>,
    last: Vec<AtomicU64>,
    /// Watchers that have caught up (received their first event).
    ready: AtomicUsize,
    /// Events received twice, or for a value no change set.
    strays: AtomicUsize,
}

impl Seen {
    /// Nothing seen yet of `changes` changes.
    fn new(changes: usize) -> Seen {
        Seen {
            count: (0..changes).map(|_| AtomicUsize::new(0)).collect(),
            last: (0..changes).map(|_| AtomicU64::new(0)).collect(),
            ready: AtomicUsize::new(0),
            strays: AtomicUsize::new(0),
        }
    }
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|n| n.trim().parse().ok()).collect()
}

/// One watcher: opens the stream, then counts each change's event by its value (`base + index`).
async fn watcher(addr: std::net::SocketAddr, token: Arc<String>, base: i64, seen: Arc<Seen>, epoch: Instant) {
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        seen.strays.fetch_add(1_000_000, Ordering::Relaxed);
        return;
    };
    let request = format!(
        "GET /admin/config/watch?kind=settings HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if socket.write_all(request.as_bytes()).await.is_err() {
        seen.strays.fetch_add(1_000_000, Ordering::Relaxed);
        return;
    }
    let mut parser = SseParser::default();
    let mut buffer = vec![0u8; 8192];
    let mut headers_done = false;
    let mut first = true;
    let mut got = vec![false; seen.count.len()];
    loop {
        let n = match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut chunk = &buffer[..n];
        if !headers_done {
            let mut held = Vec::from(chunk);
            match held.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => {
                    headers_done = true;
                    held.drain(..end + 4);
                    // HTTP/1.0: no chunked framing, the events follow the headers as they are.
                    for event in parser.push(&held) {
                        count(&event, base, &seen, &mut got, &mut first, epoch);
                    }
                }
                None => continue,
            }
            chunk = &[];
        }
        for event in parser.push(chunk) {
            count(&event, base, &seen, &mut got, &mut first, epoch);
        }
    }
}

fn count(event: &serde_json::Value, base: i64, seen: &Seen, got: &mut [bool], first: &mut bool, epoch: Instant) {
    if std::mem::take(first) {
        seen.ready.fetch_add(1, Ordering::Relaxed);
    }
    if event["key"] != "TOOL_RATE_LIMIT" {
        return;
    }
    let Some(index) = event["value"].as_i64().and_then(|v| usize::try_from(v - base).ok()) else { return };
    match got.get_mut(index) {
        Some(g) if !*g => {
            *g = true;
            let at = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            seen.last[index].fetch_max(at, Ordering::Relaxed);
            seen.count[index].fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            seen.strays.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Figures {
    watchers: usize,
    rss_per_watcher_kib: f64,
    idle_cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_per_change_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run(bin: &std::path::Path, watchers: usize, changes: usize) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = server::Store::new(bin, format!("sqlite://{}", dir.path().join("fleet.db").display()), dir.path());
    store.prepare(None)?;
    let token = Arc::new(store.token()?);
    let mut instance = store.serve("fleet")?;
    let addr = instance.addr;
    let pid = instance_pid(&instance)?;
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let put = |value: i64| -> Result<(), String> {
        agent
            .put(&format!("http://{addr}/admin/config/TOOL_RATE_LIMIT"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({ "value": value }))
            .map(|_| ())
            .map_err(|e| format!("PUT TOOL_RATE_LIMIT: {e}"))
    };
    put(1)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(pid);

    let base = 1000;
    let seen = Arc::new(Seen::new(changes));
    let epoch = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for _ in 0..watchers {
        runtime.spawn(watcher(addr, token.clone(), base, seen.clone(), epoch));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.ready.load(Ordering::Relaxed) < watchers {
        if Instant::now() > deadline || seen.strays.load(Ordering::Relaxed) >= 1_000_000 {
            return Err(format!(
                "only {} of {watchers} watchers caught up (a connection failed: is the file limit high enough?)",
                seen.ready.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss_with = rss_kib(pid);
    let idle_from = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu = (cpu_ticks(pid) - idle_from) as f64 / TICKS_PER_SEC / 5.0;

    let mut latencies = Vec::with_capacity(changes);
    let busy_from = cpu_ticks(pid);
    for i in 0..changes {
        let sent = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
        put(base + i as i64)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.count[i].load(Ordering::Relaxed) < watchers {
            if Instant::now() > deadline {
                return Err(format!(
                    "change {i} reached {} of {watchers} watchers in 60 s",
                    seen.count[i].load(Ordering::Relaxed)
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let last = seen.last[i].load(Ordering::Relaxed);
        latencies.push(last.saturating_sub(sent) as f64 / 1e6);
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy = (cpu_ticks(pid) - busy_from) as f64 / TICKS_PER_SEC;
    let strays = seen.strays.load(Ordering::Relaxed);
    if strays > 0 {
        return Err(format!("{strays} event(s) arrived twice or for no change"));
    }
    drop(runtime);
    instance.stop();
    latencies.sort_by(f64::total_cmp);
    Ok(Figures {
        watchers,
        rss_per_watcher_kib: rss_with.saturating_sub(rss_before) as f64 / watchers as f64,
        idle_cpu,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        // The pause after each change is idle time, at the idle rate measured above.
        cpu_per_change_ms: ((busy - idle_cpu * 0.05 * changes as f64).max(0.0) / changes as f64) * 1e3,
    })
}

/// The pid of the running `serve`, from the port it listens on (`/proc/net/tcp` would do; `ss` is simpler).
fn instance_pid(instance: &server::Server) -> Result<u32, String> {
    instance.pid().ok_or_else(|| "the server is not running".to_string())
}

fn main() {
    let full = common::full_run();
    let bin =
        std::env::var_os("CFGLEDGER_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfgledger")), PathBuf::from);
    let sizes = if full { env_list("FLEET_WATCHERS", "1000,10000") } else { vec![50] };
    let changes = if full { env_list("FLEET_CHANGES", "20").first().copied().unwrap_or(20) } else { 3 };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("fleet bench: {} ({cpus} CPUs shared by the server and every watcher)", bin.display());
    let mut rows = Vec::new();
    for watchers in std::iter::once(1).chain(sizes) {
        match run(&bin, watchers, changes) {
            Ok(f) => {
                println!(
                    "  {:>6} watchers: PUT sent -> last watcher p50 {:.2} ms, p99 {:.2} ms; server RSS {:.1} KiB per watcher; idle CPU {:.1}% of a core; CPU per change {:.2} ms",
                    f.watchers,
                    f.p50_ms,
                    f.p99_ms,
                    f.rss_per_watcher_kib,
                    f.idle_cpu * 100.0,
                    f.cpu_per_change_ms
                );
                rows.push(f);
            }
            Err(e) => {
                eprintln!("  {watchers} watchers: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(one) = rows.first() {
        for f in rows.iter().skip(1) {
            println!(
                "  ratio to one watcher ({} watchers): p50 {:.1}x, p99 {:.1}x",
                f.watchers,
                f.p50_ms / one.p50_ms,
                f.p99_ms / one.p99_ms
            );
        }
    }
    etcd_fanout(&rows, changes);
    if !std::env::var("FLEET_HEARTBEATS").is_ok_and(|v| v == "off") {
        beating(&bin, full);
    }
    if std::env::var("FLEET_BALANCER").is_ok_and(|v| v == "off") {
        return;
    }
    balanced(&bin, full);
}

/// Part 3 (`fleet/heartbeats.rs`): the agents' heartbeats, and what they cost config writes.
fn beating(bin: &std::path::Path, full: bool) {
    let number = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let plan = if full {
        heartbeats::Plan {
            agents: number("BEAT_AGENTS", 10_000.0) as usize,
            clients: number("BEAT_CLIENTS", 1_000.0) as usize,
            seconds: number("BEAT_SECS", 10.0),
        }
    } else {
        heartbeats::Plan { agents: 100, clients: 10, seconds: 1.0 }
    };
    println!(
        "heartbeats: {} agents, {} connections back to back, {} s per phase",
        plan.agents, plan.clients, plan.seconds
    );
    match heartbeats::run(bin, &plan) {
        Ok(f) => {
            println!(
                "  capacity: {:.0} beats/s, p99 {:.2} ms; the store alone, one beat per transaction: {:.0}/s ({:.2}x); \
                 so {:.0} agents beating every 3 s",
                f.beats_per_s,
                f.beat_p99_ms,
                f.store_alone_per_s,
                f.beats_per_s / f.store_alone_per_s,
                f.beats_per_s * 3.0
            );
            println!(
                "  durable PUT, 16 connections: alone {:.0}/s p99 {:.2} ms; while {} agents beat every 3 s ({:.0} beats/s \
                 reached): {:.0}/s p99 {:.2} ms ({:.2}x the rate alone)",
                f.put_alone_per_s,
                f.put_alone_p99_ms,
                plan.agents,
                f.paced_beats_per_s,
                f.put_beating_per_s,
                f.put_beating_p99_ms,
                f.put_beating_per_s / f.put_alone_per_s
            );
        }
        Err(e) => {
            eprintln!("  heartbeats: {e}");
            std::process::exit(1);
        }
    }
}

/// etcd's watchers in the same run, at the sizes cfgledger was measured at (beyond the one-watcher reference),
/// through the etcd peer (benches/etcd-peer, which the load bench's code builds); the ratios are etcd's time
/// over cfgledger's, so above 1 means cfgledger is ahead. Without etcd on the machine, says so.
fn etcd_fanout(rows: &[Figures], changes: usize) {
    let Some(etcd_bin) = etcd::locate() else {
        println!("  etcd: not found, so not measured (Debian: apt-get install etcd-server protobuf-compiler libprotobuf-dev)");
        return;
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut peer = match etcd::Etcd::start(&etcd_bin, dir.path()).await {
            Ok(peer) => peer,
            Err(e) => {
                eprintln!("  etcd: {e}");
                std::process::exit(1);
            }
        };
        println!("  etcd {} (one client connection per watcher):", peer.version);
        for f in rows.iter().skip(1).chain(rows.first().filter(|_| rows.len() == 1)) {
            match peer.fanout(f.watchers, changes).await {
                Ok(e) => println!(
                    "  {:>6} etcd watchers: put sent -> last watcher p50 {:.2} ms, p99 {:.2} ms; etcd RSS {:.1} KiB per watcher; idle CPU {:.1}% of a core; CPU per change {:.2} ms | cfgledger ahead by p50 {:.2}x, p99 {:.2}x",
                    f.watchers,
                    e.p50_ms,
                    e.p99_ms,
                    e.rss_per_watcher_kib,
                    e.idle_cpu * 100.0,
                    e.cpu_per_change_ms,
                    e.p50_ms / f.p50_ms,
                    e.p99_ms / f.p99_ms
                ),
                Err(e) => {
                    eprintln!("  etcd, {} watchers: {e}", f.watchers);
                    std::process::exit(1);
                }
            }
        }
        println!("  etcd: {}", peer.stop().await);
    });
}

/// Part 2's figures: one server reached directly (the reference), then one and three servers on one
/// PostgreSQL behind HAProxy.
fn balanced(bin: &std::path::Path, full: bool) {
    let number = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let plan = if full {
        balancer::Plan {
            clients: number("BALANCER_CLIENTS", 16.0) as usize,
            seconds: number("BALANCER_SECS", 10.0),
            watchers: number("BALANCER_WATCHERS", 300.0) as usize,
            changes: number("BALANCER_CHANGES", 200.0) as usize,
        }
    } else {
        balancer::Plan { clients: 4, seconds: 1.0, watchers: 6, changes: 3 }
    };
    println!(
        "balancer: PostgreSQL {}; {} clients for {} s per load phase; {} watchers and {} paced changes",
        pg::show("server_version").unwrap_or_else(|e| e),
        plan.clients,
        plan.seconds,
        plan.watchers,
        plan.changes
    );
    let mut rows: Vec<balancer::Figures> = Vec::new();
    for (servers, balanced) in [(1, false), (1, true), (3, true)] {
        match balancer::run(bin, servers, balanced, &plan) {
            Ok(f) => {
                println!(
                    "  {:<26} PUT {:>7.0}/s p99 {:>6.2} ms | GET {:>7.0}/s p99 {:>6.2} ms | PUT sent -> last watcher p50 {:.2} ms, p99 {:.2} ms",
                    f.label, f.put_per_s, f.put_p99_ms, f.get_per_s, f.get_p99_ms, f.prop_p50_ms, f.prop_p99_ms
                );
                rows.push(f);
            }
            Err(e) => {
                eprintln!("  {servers} server(s), balanced {balanced}: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(direct) = rows.first() {
        for f in rows.iter().skip(1) {
            println!(
                "  {} against 1 server direct: PUT {:.2}x, GET {:.2}x, propagation p99 {:.2}x",
                f.label,
                f.put_per_s / direct.put_per_s,
                f.get_per_s / direct.get_per_s,
                f.prop_p99_ms / direct.prop_p99_ms
            );
        }
    }
}
