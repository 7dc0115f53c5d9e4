//! The agent's cost on one machine: how long a change takes to reach N agent render processes, and what
//! one idle agent holds (memory) and spends (CPU). The agent is the same code in both binaries:
//! `cfgledger agent` and `cfgledger-agent`, which links none of the server.
//!
//! One `cfgledger serve` (SQLite in a temp dir, `AUTH_REQUIRED=false`, write rate limit at its maximum so
//! that 100 agents' heartbeats never starve the bench's writes, its own `LOG_LEVEL=warn`) serves every part.
//!
//! Idle (first, on a server no earlier part has loaded): `cfgledger agent render --no-cache --format env`,
//! `cfgledger agent exec --no-cache -- sleep 1000` and `cfgledger-agent render ...` follow the default
//! namespace. After they have connected and
//! settled, the bench reads each agent's and the server's CPU at the start and the end of a window with no
//! change (`AGENT_IDLE_SECS`, default 10): utime + stime from `/proc/PID/stat`, and, finer than a clock
//! tick, the time on a CPU and the times scheduled in (wake-ups) from `/proc/PID/task/*/schedstat`. At its
//! end it reads `/proc/PID/status` (VmRSS, its anonymous and file-backed parts, threads), `smaps_rollup`
//! (Pss) and `smaps` (how much of the file-backed part is the cfgledger binary). Only the agent's own
//! process counts, never the child `exec` runs.
//!
//! Propagation, for N in `AGENT_COUNTS` (default 1, 10 and 100): N `cfgledger-agent render --no-cache
//! --format env --log-format json` processes follow the default namespace, each writing its JSON log to a file; beside
//! them the bench reads the same watch stream itself (`GET /admin/config/watch?namespace=mcpgateway&kind=
//! settings`, the query the agent sends) as the reference. The bench then sets `LOG_LEVEL` with
//! `PUT /admin/config/LOG_LEVEL`, alternating DEBUG and ERROR, `AGENT_CHANGES` times (default 30, after two
//! warm-up changes that are not counted). Each change is timed from the wall-clock moment just before the
//! PUT was sent to the `timestamp` of each agent's `rendered` log line for the seq the PUT answered, and to
//! the moment the reference stream delivered that seq: all on this machine's clock. The agents' `configuration
//! changed` line (logged once the follower has fetched the new render, before the file is written) splits
//! each sample in two. The next change is sent once the previous one has landed everywhere, after a pause
//! of `AGENT_PACE_MS` (default 200) plus a random extra of up to as much, so that changes fall at random
//! points of the agents' heartbeats. Every (agent, change) pair is one sample; the last agent of each change
//! gives the "all applied" figure. The CPU the agents and the server spent over the measured changes is
//! reported per change. With N = 100 the bench also measures the whole fleet idle (sum of RSS and Pss,
//! total CPU, the server's CPU serving 100 heartbeating agents) over one more window.
//!
//! Targets (the agent issue): p99 under 100 ms with 100 agents, and under 10 MiB RSS idle.
//!
//! Run: `cargo bench --bench agent` (cargo builds the release binary it starts). Environment:
//! `AGENT_COUNTS`, `AGENT_CHANGES`, `AGENT_PACE_MS`, `AGENT_IDLE_SECS`, `CFGLEDGER_BIN` (default the binary
//! cargo built), and two knobs for finding where the time goes: `AGENT_OUT_DIR` (where the render agents
//! write their files, e.g. a tmpfs, to take the file system's syncs out) and `AGENT_HEARTBEAT` (the
//! propagation agents' `--heartbeat`; `0s` sends none). Under `cargo test --benches` it runs 1 and 2 agents, three changes and
//! a one-second window, and judges no target. Every process it starts is stopped at the end, and killed by
//! pid if the bench fails or unwinds first.

#[path = "common/mod.rs"]
mod common;

use common::sse::SseParser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::Rng;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a change may take to reach every agent before the agents that lack it count as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long N agents may take to start and open their watch streams.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The targets.
const P99_TARGET_MS: f64 = 100.0;
const RSS_TARGET_KB: u64 = 10 * 1024;
/// The two values a change alternates between; neither is the key's default (INFO), so each PUT changes it.
const VALUES: [&str; 2] = ["DEBUG", "ERROR"];
const WATCH_QUERY: &str = "/admin/config/watch?namespace=mcpgateway&kind=settings";
const WATCH_ROUTE: &str = "route=\"/admin/config/watch\",method=\"GET\",status=\"200\"";

struct Params {
    /// Canonical, as `/proc/PID/smaps` names it.
    bin: PathBuf,
    /// `cfgledger-agent`, the agent alone (it links none of the server); canonical too.
    agent_bin: PathBuf,
    /// Where the agents write their files, when not in the run's temp dir (`AGENT_OUT_DIR`: a tmpfs there
    /// takes the file system's syncs out of the latency).
    out_dir: Option<PathBuf>,
    /// The propagation agents' `--heartbeat` (`AGENT_HEARTBEAT`; `0s` sends none), else the agent's default.
    heartbeat: Option<String>,
    counts: Vec<usize>,
    changes: usize,
    warmup: usize,
    pace: Duration,
    idle: Duration,
    full: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number; got {text:?}")),
        Err(_) => default,
    }
}

/// Microseconds since the Unix epoch on this machine's wall clock: the agents stamp their log lines with
/// it, so the bench's own moments must be read from the same clock (the workspace forbids reading it in
/// the product, where time is injected; a harness comparing against log timestamps has no other choice).
#[allow(clippy::disallowed_methods)]
fn wall_us() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since.as_micros()).expect("microseconds since 1970 fit in an i64")
}

fn ms(us: i64) -> f64 {
    us as f64 / 1e3
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// p50, p99 and max, or NaN without samples.
fn stats(samples: &[f64]) -> (f64, f64, f64) {
    let s = sorted(samples);
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (percentile(&s, 0.5), percentile(&s, 0.99), s[s.len() - 1])
}

fn summary(samples: &[f64]) -> String {
    let (p50, p99, max) = stats(samples);
    format!("p50 {p50:7.2} ms  p99 {p99:7.2} ms  max {max:7.2} ms  ({} samples)", samples.len())
}

// ---------------------------------------------------------------------------------------------------------
// Processes

/// A process's identity that survives pid reuse: its pid and its start time (field 22 of `stat`).
#[derive(Clone, Copy)]
struct Identity {
    pid: i32,
    start: u64,
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and parentheses).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn identity(pid: i32) -> Option<Identity> {
    // After the name: state (3), ppid (4), ... starttime (22).
    let start = stat_fields(pid)?.get(19)?.parse().ok()?;
    Some(Identity { pid, start })
}

/// The processes whose parent is `parent` (the child `agent exec` started).
fn children_of(parent: i32) -> Vec<Identity> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat_fields(pid).and_then(|f| f.get(1)?.parse::<i32>().ok()) == Some(parent))
        .filter_map(identity)
        .collect()
}

/// Kills `who` if it is still the process it was.
fn kill_if_same(who: Identity) {
    if identity(who.pid).is_some_and(|now| now.start == who.start) {
        let _ = kill(Pid::from_raw(who.pid), Signal::SIGKILL);
    }
}

fn raw_pid(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("a pid fits in an i32")
}

/// Every process the bench started (and the grandchildren it learned of): stopped with SIGTERM by
/// [`Procs::stop_all`], killed by pid when dropped first (a failure or a panic).
#[derive(Default)]
struct Procs {
    children: Vec<Child>,
    grandchildren: Vec<Identity>,
}

impl Procs {
    fn spawn(&mut self, command: &mut Command) -> Result<i32, String> {
        let child = command.spawn().map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let pid = raw_pid(&child);
        self.children.push(child);
        Ok(pid)
    }

    /// Sends SIGTERM to every process, waits up to 10 s for all, kills the rest; says how they ended.
    fn stop_all(&mut self) -> String {
        let total = self.children.len();
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = kill(Pid::from_raw(raw_pid(child)), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = 0;
        for mut child in self.children.drain(..) {
            loop {
                match child.try_wait() {
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                    Ok(None) | Err(_) => {
                        killed += 1;
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(Some(_)) => break,
                }
            }
        }
        for who in self.grandchildren.drain(..) {
            kill_if_same(who);
        }
        match killed {
            0 => format!("{total} stopped on SIGTERM"),
            k => format!("{} stopped on SIGTERM, {k} killed after 10 s", total - k),
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for who in self.grandchildren.drain(..) {
            kill_if_same(who);
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A command of the binary, with no ambient cfgledger settings.
fn cfgledger(bin: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command.current_dir(dir).stdin(Stdio::null());
    for name in [
        "CFGLEDGER_DB",
        "CFGLEDGER_SERVER",
        "CFGLEDGER_TOKEN",
        "CFGLEDGER_CACHE_KEY",
        "CFGLEDGER_CATALOG",
        "CFGLEDGER_LISTEN",
        "CFGLEDGER_NOTIFY",
        "XDG_CACHE_HOME",
    ] {
        command.env_remove(name);
    }
    command.env("CFGLEDGER_AUTH_REQUIRED", "false");
    command
}

/// Creates the store with the settings every part needs, starts `serve` and waits for its address.
fn start_server(bin: &Path, dir: &Path, procs: &mut Procs) -> Result<(i32, SocketAddr), String> {
    let db = format!("sqlite://{}", dir.join("s.db").display());
    for (key, value) in [("cfgledger:CONFIG_WRITE_RATE_LIMIT", "1000000"), ("cfgledger:LOG_LEVEL", "warn")] {
        let out = cfgledger(bin, dir)
            .args(["--db", &db, "config", "set", key, value, "--reason", "agent bench"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!("`config set {key}` failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    let log = dir.join("serve.log");
    let log_file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut command = cfgledger(bin, dir);
    command.args(["--db", &db, "serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(log_file);
    let pid = procs.spawn(&mut command)?;
    let stdout = procs.children.last_mut().and_then(|c| c.stdout.take()).expect("stdout was piped");
    let addr = common::serve::listen_address(stdout).map_err(|line| match line {
        None => format!("the server did not print its address; see {}", log.display()),
        Some(line) => format!("unexpected first line from the server: {line:?}"),
    })?;
    Ok((pid, addr))
}

/// Raises this process's soft open-file limit to its hard limit when N agents need more (the server and
/// the agents inherit it). `prlimit` on our own pid: the workspace forbids the unsafe `setrlimit` call.
fn ensure_fd_limit(needed: u64) -> String {
    let read = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |s: &str| if s == "unlimited" { Some(u64::MAX) } else { s.parse().ok() };
        Some((num(f.get(3)?)?, num(f.get(4)?)?))
    };
    let Some((soft, hard)) = read() else { return "open-file limit unknown".into() };
    if soft >= needed {
        return format!("open-file limit {soft} (at least {needed} needed)");
    }
    let target = if hard == u64::MAX { "unlimited".to_string() } else { hard.to_string() };
    let _ = Command::new("prlimit")
        .args([format!("--pid={}", std::process::id()), format!("--nofile={target}:{target}")])
        .status();
    match read() {
        Some((now, _)) if now >= needed => format!("open-file limit raised from {soft} to {now}"),
        Some((now, _)) => format!("open-file limit {now}, below the {needed} needed: starts may fail"),
        None => "open-file limit unknown".into(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// /proc readings

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let f = stat_fields(pid)?;
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Nanoseconds on a CPU and times scheduled in, summed over the process's threads
/// (`/proc/PID/task/*/schedstat`): finer than a clock tick, and the second counts wake-ups.
fn sched(pid: i32) -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = (0, 0);
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        let f: Vec<u64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if let (Some(&ns), Some(&runs)) = (f.first(), f.get(2)) {
            total.0 += ns;
            total.1 += runs;
        }
    }
    Some(total)
}

/// What `/proc/PID/status`, `smaps_rollup` and `smaps` say of a process's memory, in kB.
#[derive(Default, Clone, Copy)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    /// The file-backed part that is the cfgledger binary's own mappings.
    binary: u64,
    hwm: u64,
    pss: u64,
    threads: u64,
}

fn field_kb(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Rss of the mappings of `file` in `/proc/PID/smaps`, in kB.
fn mapped_kb(pid: i32, file: &Path) -> u64 {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else { return 0 };
    let file = file.to_string_lossy();
    let mut inside = false;
    let mut total = 0;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            // A mapping's header: `start-end perms offset dev inode [path]`.
            Some(range) if range.contains('-') && range.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') => {
                inside = words.nth(4).is_some_and(|path| path == file);
            }
            Some("Rss:") if inside => total += words.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0),
            _ => {}
        }
    }
    total
}

fn memory(pid: i32, bin: &Path) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some(Memory {
        rss: field_kb(&status, "VmRSS"),
        anon: field_kb(&status, "RssAnon"),
        file: field_kb(&status, "RssFile"),
        binary: mapped_kb(pid, bin),
        hwm: field_kb(&status, "VmHWM"),
        pss: field_kb(&rollup, "Pss"),
        threads: field_kb(&status, "Threads"),
    })
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// One process's CPU over a window.
#[derive(Clone, Copy)]
struct CpuUse {
    /// utime + stime, as % of one core (clock-tick resolution).
    ticks_pct: f64,
    /// Time on a CPU from schedstat, as % of one core.
    sched_pct: f64,
    /// Times its threads were scheduled in, per second.
    wakeups: f64,
}

/// CPU of each process over one quiet window.
fn idle_cpu(pids: &[i32], window: Duration) -> Vec<CpuUse> {
    let tick = clock_ticks();
    let before: Vec<_> = pids.iter().map(|&p| (cpu_ticks(p), sched(p))).collect();
    let started = Instant::now();
    std::thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(&p, (ticks, sch))| {
            let ticks_pct = match (ticks, cpu_ticks(p)) {
                (Some(b), Some(a)) => a.saturating_sub(b) as f64 / tick / elapsed * 100.0,
                _ => f64::NAN,
            };
            let (sched_pct, wakeups) = match (sch, sched(p)) {
                (Some(b), Some(a)) => {
                    (a.0.saturating_sub(b.0) as f64 / 1e9 / elapsed * 100.0, a.1.saturating_sub(b.1) as f64 / elapsed)
                }
                _ => (f64::NAN, f64::NAN),
            };
            CpuUse { ticks_pct, sched_pct, wakeups }
        })
        .collect()
}

/// Nanoseconds on a CPU of all of `pids`, from schedstat.
fn cpu_ns(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|&p| sched(p)).map(|(ns, _)| ns).sum()
}

// ---------------------------------------------------------------------------------------------------------
// HTTP: one keep-alive connection (Nagle off) for the PUTs and one for the reference watch stream

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

/// One event of the reference stream: its seq, and when (wall clock) the bytes that completed it arrived.
struct Arrival {
    seq: u64,
    at: i64,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let (sender, host) = crate::common::http::handshake(addr).await?;
        Ok(Conn { sender, host })
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("the request parts are valid")
    }

    async fn get(&mut self, path: &str) -> Result<String, String> {
        let request = self.request(Method::GET, path, Bytes::new());
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("GET {path}: {e}"))?;
        let body = response.into_body().collect().await.map_err(|e| format!("GET {path}: {e}"))?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `PUT /admin/config/LOG_LEVEL`; returns the wall-clock moment just before it was sent, and the seq
    /// the server answered.
    async fn put_level(&mut self, value: &str) -> Result<(i64, u64), String> {
        let body = Bytes::from(serde_json::json!({ "value": value, "reason": "agent bench" }).to_string());
        let request = self.request(Method::PUT, "/admin/config/LOG_LEVEL", body);
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let sent = wall_us();
        let response = self.sender.send_request(request).await.map_err(|e| format!("PUT LOG_LEVEL: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("PUT LOG_LEVEL: {e}"))?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("PUT LOG_LEVEL answered {status}: {}", String::from_utf8_lossy(&body).trim()));
        }
        let seq = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["seq"].as_u64())
            .ok_or_else(|| format!("PUT LOG_LEVEL answered without a seq: {}", String::from_utf8_lossy(&body)))?;
        Ok((sent, seq))
    }

    /// Opens the watch stream the agents read and returns its events as they arrive.
    async fn watch(mut self) -> Result<mpsc::UnboundedReceiver<Arrival>, String> {
        let mut request = self.request(Method::GET, WATCH_QUERY, Bytes::new());
        request.headers_mut().insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        self.sender.ready().await.map_err(|e| format!("connection lost: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("GET watch: {e}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET {WATCH_QUERY} answered {}", response.status()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _conn = self;
            let mut body = response.into_body();
            let mut sse = SseParser::default();
            while let Some(Ok(frame)) = body.frame().await {
                let at = wall_us();
                let Ok(data) = frame.into_data() else { continue };
                for seq in sse.push(&data).into_iter().filter_map(|json| json["seq"].as_u64()) {
                    if tx.send(Arrival { seq, at }).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// How many watch streams the server has opened since it started (its request counter).
async fn watch_streams(conn: &mut Conn) -> Result<u64, String> {
    let text = conn.get("/metrics").await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("cfgledger_http_requests_total{") && l.contains(WATCH_ROUTE))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

async fn wait_for_streams(conn: &mut Conn, at_least: u64) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let open = watch_streams(conn).await?;
        if open >= at_least {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("only {open} of {at_least} watch streams opened within {} s", START_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------------------
// The agents' logs

/// One agent's JSON log, read as it grows: the wall-clock timestamps of its `rendered` and `configuration
/// changed` lines, by seq.
struct AgentLog {
    path: PathBuf,
    file: File,
    partial: String,
    rendered: HashMap<u64, i64>,
    changed: HashMap<u64, i64>,
}

impl AgentLog {
    fn open(path: PathBuf) -> Result<AgentLog, String> {
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(AgentLog { path, file, partial: String::new(), rendered: HashMap::new(), changed: HashMap::new() })
    }

    /// Reads what was appended since the last call.
    fn poll(&mut self) {
        let mut fresh = String::new();
        if self.file.read_to_string(&mut fresh).is_err() || fresh.is_empty() {
            return;
        }
        self.partial.push_str(&fresh);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            let fields = &json["fields"];
            let (Some(seq), Some(at)) = (
                fields["seq"].as_u64(),
                json["timestamp"]
                    .as_str()
                    .and_then(|t| cfgledger_events::Timestamp::parse_rfc3339(t).ok())
                    .map(|t| t.as_micros()),
            ) else {
                continue;
            };
            match fields["message"].as_str() {
                Some("rendered") => {
                    self.rendered.insert(seq, at);
                }
                Some("configuration changed") => {
                    self.changed.insert(seq, at);
                }
                _ => {}
            }
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// Which binary runs an agent: `cfgledger agent` or `cfgledger-agent` (the same code, linked alone).
#[derive(Clone, Copy, PartialEq, Eq)]
enum AgentBinary {
    Whole,
    Alone,
}

/// `--server URL` and the agent's subcommand, for either binary.
fn agent_command(p: &Params, which: AgentBinary, dir: &Path, server: SocketAddr, sub: &str) -> Command {
    let (bin, prefix): (&Path, &[&str]) = match which {
        AgentBinary::Whole => (&p.bin, &["agent"]),
        AgentBinary::Alone => (&p.agent_bin, &[]),
    };
    let mut command = cfgledger(bin, dir);
    command.arg("--server").arg(format!("http://{server}")).args(prefix).arg(sub);
    command
}

/// Starts `render` writing `NAME.env` (in `AGENT_OUT_DIR` when set, else beside its log), with
/// `--heartbeat` when given.
fn spawn_render_agent(
    p: &Params,
    which: AgentBinary,
    dir: &Path,
    server: SocketAddr,
    name: &str,
    heartbeat: Option<&str>,
    procs: &mut Procs,
) -> Result<(i32, PathBuf), String> {
    let out_dir = p.out_dir.as_deref().unwrap_or(dir);
    let log = dir.join(format!("{name}.log"));
    let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    let mut command = agent_command(p, which, dir, server, "render");
    command
        .args(["--no-cache", "--format", "env", "--log-format", "json", "--out"])
        .arg(out_dir.join(format!("{name}.env")))
        .stdout(out)
        .stderr(err);
    if let Some(every) = heartbeat {
        command.args(["--heartbeat", every]);
    }
    Ok((procs.spawn(&mut command)?, log))
}

// ---------------------------------------------------------------------------------------------------------
// Propagation

/// The samples of one N, in milliseconds from the moment the PUT was sent.
struct Fleet {
    n: usize,
    /// Each agent's `rendered` of each change.
    agent: Vec<f64>,
    /// The slowest agent of each change.
    last: Vec<f64>,
    /// The reference stream's delivery of each change.
    reference: Vec<f64>,
    /// Each agent's `configuration changed` (the follower's render fetched, before the file is written).
    fetched: Vec<f64>,
    /// From `configuration changed` to `rendered` (the callback, then the file staged and renamed).
    written: Vec<f64>,
    /// The PUT's round trip.
    put: Vec<f64>,
    /// CPU time (schedstat) over the measured changes, heartbeats included: per agent per change, and the
    /// server's per change.
    agent_cpu_ms: f64,
    server_cpu_ms: f64,
    /// (agent, change) pairs that did not arrive within [`DELIVERY_TIMEOUT`].
    lost: usize,
    /// The whole fleet idle, with the server serving it (N = 100 only).
    idle: Option<FleetIdle>,
    stopped: String,
}

struct FleetIdle {
    rss_kb: u64,
    pss_kb: u64,
    /// % of one core (schedstat), all agents together.
    agents_cpu: f64,
    agents_wakeups: f64,
    server_cpu: f64,
    server_rss_kb: u64,
}

/// One change as the bench saw it: when its PUT was sent, its seq, the PUT's round trip, and when the
/// reference stream delivered it.
struct Change {
    sent: i64,
    seq: u64,
    put_us: i64,
    reference: Option<i64>,
}

/// Sends one change and waits until every agent and the reference have it (or the timeout).
async fn one_change(
    writer: &mut Conn,
    stream: &mut mpsc::UnboundedReceiver<Arrival>,
    logs: &mut [AgentLog],
    value: &str,
    poll: Duration,
) -> Result<Change, String> {
    let (sent, seq) = writer.put_level(value).await?;
    let put_us = wall_us() - sent;
    let mut reference = None;
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let mut waiting: Vec<usize> = (0..logs.len()).collect();
    loop {
        while let Ok(a) = stream.try_recv() {
            if a.seq >= seq && reference.is_none() {
                reference = Some(a.at);
            }
        }
        waiting.retain(|&i| {
            let log = &mut logs[i];
            log.poll();
            !log.rendered.contains_key(&seq)
        });
        if (waiting.is_empty() && reference.is_some()) || Instant::now() >= deadline {
            return Ok(Change { sent, seq, put_us, reference });
        }
        tokio::time::sleep(poll).await;
    }
}

async fn propagation(
    p: &Params,
    dir: &Path,
    server: (i32, SocketAddr),
    n: usize,
    value_index: &mut usize,
) -> Result<Fleet, String> {
    let (server_pid, addr) = server;
    let fleet_dir = dir.join(format!("fleet-{n}"));
    std::fs::create_dir_all(&fleet_dir).map_err(|e| format!("cannot create {}: {e}", fleet_dir.display()))?;
    let mut admin = Conn::open(addr).await?;
    let before = watch_streams(&mut admin).await?;
    let mut procs = Procs::default();
    let mut pids = Vec::new();
    let mut logs = Vec::new();
    let started = Instant::now();
    for i in 0..n {
        let (pid, log) = spawn_render_agent(
            p,
            AgentBinary::Alone,
            &fleet_dir,
            addr,
            &format!("agent-{i:03}"),
            p.heartbeat.as_deref(),
            &mut procs,
        )?;
        pids.push(pid);
        logs.push(AgentLog::open(log)?);
    }
    let stream = Conn::open(addr).await?.watch().await?;
    wait_for_streams(&mut admin, before + n as u64 + 1).await?;
    // Every agent has written its first render too.
    let deadline = Instant::now() + START_TIMEOUT;
    for log in &mut logs {
        while {
            log.poll();
            log.rendered.is_empty()
        } {
            if Instant::now() >= deadline {
                return Err(format!("{} wrote no first render; its log ends:\n{}", log.path.display(), log.tail()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "   {n} agent(s) started, first render written and watch streams open in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut stream = stream;
    let mut writer = Conn::open(addr).await?;
    // The harness polls the logs only to pace the changes (the latencies are the logs' own timestamps):
    // slower with many agents, so that it takes little of the CPU they share.
    let poll = if n > 10 { Duration::from_millis(20) } else { Duration::from_millis(5) };
    let mut fleet = Fleet {
        n,
        agent: Vec::new(),
        last: Vec::new(),
        reference: Vec::new(),
        fetched: Vec::new(),
        written: Vec::new(),
        put: Vec::new(),
        agent_cpu_ms: f64::NAN,
        server_cpu_ms: f64::NAN,
        lost: 0,
        idle: None,
        stopped: String::new(),
    };
    let mut rng = rand::thread_rng();
    let mut cpu_before = (0, 0);
    for i in 0..p.warmup + p.changes {
        if i == p.warmup {
            cpu_before = (cpu_ns(&pids), cpu_ns(&[server_pid]));
        }
        let value = VALUES[*value_index % VALUES.len()];
        *value_index += 1;
        let change = one_change(&mut writer, &mut stream, &mut logs, value, poll).await?;
        if i >= p.warmup {
            fleet.put.push(ms(change.put_us));
            match change.reference {
                Some(at) => fleet.reference.push(ms(at - change.sent)),
                None => println!("   the reference stream did not deliver seq {} in time", change.seq),
            }
            let mut slowest: Option<i64> = None;
            for log in &logs {
                match log.rendered.get(&change.seq) {
                    Some(&at) => {
                        fleet.agent.push(ms(at - change.sent));
                        slowest = Some(slowest.map_or(at, |s| s.max(at)));
                        if let Some(&fetched) = log.changed.get(&change.seq) {
                            fleet.fetched.push(ms(fetched - change.sent));
                            fleet.written.push(ms(at - fetched));
                        }
                    }
                    None => fleet.lost += 1,
                }
            }
            if let Some(s) = slowest {
                fleet.last.push(ms(s - change.sent));
            }
        }
        let extra = Duration::from_micros(rng.gen_range(0..p.pace.as_micros().max(1) as u64));
        tokio::time::sleep(p.pace + extra).await;
    }
    let per_change = |after: u64, before: u64, of: usize| after.saturating_sub(before) as f64 / 1e6 / of as f64;
    fleet.agent_cpu_ms = per_change(cpu_ns(&pids), cpu_before.0, n * p.changes);
    fleet.server_cpu_ms = per_change(cpu_ns(&[server_pid]), cpu_before.1, p.changes);
    if n >= 100 {
        let mut all = pids.clone();
        all.push(server_pid);
        let cpu = idle_cpu(&all, p.idle);
        let memories: Vec<Memory> = pids.iter().filter_map(|&pid| memory(pid, &p.bin)).collect();
        fleet.idle = Some(FleetIdle {
            rss_kb: memories.iter().map(|m| m.rss).sum(),
            pss_kb: memories.iter().map(|m| m.pss).sum(),
            agents_cpu: cpu[..n].iter().map(|c| c.sched_pct).sum(),
            agents_wakeups: cpu[..n].iter().map(|c| c.wakeups).sum(),
            server_cpu: cpu[n].sched_pct,
            server_rss_kb: memory(server_pid, &p.bin).map_or(0, |m| m.rss),
        });
    }
    fleet.stopped = procs.stop_all();
    Ok(fleet)
}

fn report_fleet(f: &Fleet) {
    println!("   agent rendered − PUT sent:              {}", summary(&f.agent));
    println!("   last agent of each change − PUT sent:   {}", summary(&f.last));
    println!("   raw watch stream − PUT sent:            {}", summary(&f.reference));
    println!("   follower's render fetched − PUT sent:   {}", summary(&f.fetched));
    println!("   file written − render fetched:          {}", summary(&f.written));
    println!("   PUT round trip:                         {}", summary(&f.put));
    println!(
        "   CPU per change (heartbeats included): {:.2} ms per agent ({:.0} ms for all {}), {:.2} ms in the server",
        f.agent_cpu_ms,
        f.agent_cpu_ms * f.n as f64,
        f.n,
        f.server_cpu_ms
    );
    if f.lost > 0 {
        println!("   {} (agent, change) pairs not applied within {} s", f.lost, DELIVERY_TIMEOUT.as_secs());
    }
    if let Some(idle) = &f.idle {
        println!(
            "   fleet idle: {} agents hold {:.1} MiB RSS in all ({:.1} MiB Pss, shared pages counted once), use \
             {:.2}% of one core and wake {:.0} times/s; the server serving them uses {:.2}% and holds {:.1} MiB RSS",
            f.n,
            mib(idle.rss_kb),
            mib(idle.pss_kb),
            idle.agents_cpu,
            idle.agents_wakeups,
            idle.server_cpu,
            mib(idle.server_rss_kb)
        );
    }
    println!("   agents: {}", f.stopped);
}

// ---------------------------------------------------------------------------------------------------------
// Idle

struct Idle {
    label: &'static str,
    memory: Memory,
    cpu: CpuUse,
    is_agent: bool,
}

fn idle_agents(p: &Params, dir: &Path, server: (i32, SocketAddr)) -> Result<Vec<Idle>, String> {
    let (server_pid, addr) = server;
    let idle_dir = dir.join("idle");
    std::fs::create_dir_all(&idle_dir).map_err(|e| format!("cannot create {}: {e}", idle_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let mut admin = runtime.block_on(Conn::open(addr))?;
    let before = runtime.block_on(watch_streams(&mut admin))?;
    let mut procs = Procs::default();
    let (render_pid, render_log) =
        spawn_render_agent(p, AgentBinary::Whole, &idle_dir, addr, "render", None, &mut procs)?;
    let (alone_pid, _) = spawn_render_agent(p, AgentBinary::Alone, &idle_dir, addr, "alone", None, &mut procs)?;
    let log = idle_dir.join("exec.log");
    let out = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    let mut command = agent_command(p, AgentBinary::Whole, &idle_dir, addr, "exec");
    command.args(["--no-cache", "--log-format", "json", "--", "sleep", "1000"]).stdout(out).stderr(err);
    let exec_pid = procs.spawn(&mut command)?;
    runtime.block_on(wait_for_streams(&mut admin, before + 3))?;
    let mut render = AgentLog::open(render_log)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while {
        render.poll();
        render.rendered.is_empty()
    } {
        if Instant::now() >= deadline {
            return Err(format!("the render agent wrote no first render; its log ends:\n{}", render.tail()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Settle: the first heartbeats are sent and the start-up allocations are behind.
    std::thread::sleep(if p.full { Duration::from_secs(3) } else { Duration::from_millis(500) });
    let grandchildren = children_of(exec_pid);
    if grandchildren.is_empty() {
        return Err(format!("`agent exec` started no child; its log is {}", log.display()));
    }
    procs.grandchildren.extend(grandchildren);
    let pids = [render_pid, exec_pid, alone_pid, server_pid];
    let cpu = idle_cpu(&pids, p.idle);
    let labels = [
        "cfgledger agent render",
        "cfgledger agent exec -- sleep 1000",
        "cfgledger-agent render",
        "server (reference)",
    ];
    let bins = [&p.bin, &p.bin, &p.agent_bin, &p.bin];
    let mut out = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        let memory = memory(pid, bins[i]).ok_or_else(|| format!("{} (pid {pid}) is gone", labels[i]))?;
        out.push(Idle { label: labels[i], memory, cpu: cpu[i], is_agent: i < 3 });
    }
    println!("   idle agents: {}", procs.stop_all());
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------

fn main() {
    let full = common::full_run();
    let bin =
        std::env::var_os("CFGLEDGER_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfgledger")), PathBuf::from);
    let counts = std::env::var("AGENT_COUNTS").unwrap_or_else(|_| "1,10,100".into());
    let bin = std::fs::canonicalize(&bin).unwrap_or_else(|e| {
        eprintln!("no binary at {}: {e}; run `cargo build --release` or set CFGLEDGER_BIN", bin.display());
        std::process::exit(1);
    });
    let agent_bin = std::fs::canonicalize(env!("CARGO_BIN_EXE_cfgledger-agent")).unwrap_or_else(|e| {
        eprintln!("no cfgledger-agent binary: {e}; run `cargo build --release`");
        std::process::exit(1);
    });
    let p = Params {
        bin,
        agent_bin,
        out_dir: std::env::var_os("AGENT_OUT_DIR").map(PathBuf::from),
        heartbeat: std::env::var("AGENT_HEARTBEAT").ok(),
        counts: if full {
            counts
                .split(',')
                .map(|n| {
                    n.trim().parse().unwrap_or_else(|_| panic!("AGENT_COUNTS lists whole numbers; got {counts:?}"))
                })
                .collect()
        } else {
            vec![1, 2]
        },
        changes: if full { env_number("AGENT_CHANGES", 30) as usize } else { 3 },
        warmup: if full { 2 } else { 1 },
        pace: Duration::from_millis(if full { env_number("AGENT_PACE_MS", 200) } else { 20 }),
        idle: Duration::from_secs(if full { env_number("AGENT_IDLE_SECS", 10) } else { 1 }),
        full,
    };
    println!("agent bench: cfgledger binary {}", p.bin.display());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let most = p.counts.iter().copied().max().unwrap_or(1) as u64;
    println!(
        "{cpus} CPUs, shared by the server, the agents and the bench; {}",
        // Per agent: the server holds its watch stream and a keep-alive connection, the bench its log.
        ensure_fd_limit(4 * most + 256)
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average before the run: {} (other work on the machine adds to every figure); the agents write in {}, \
         propagation agents' heartbeat {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        p.out_dir.as_deref().unwrap_or(dir.path()).display(),
        p.heartbeat.as_deref().unwrap_or("default (3s)")
    );
    let mut server_procs = Procs::default();
    let server = match start_server(&p.bin, dir.path(), &mut server_procs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the server: {e}");
            std::process::exit(1);
        }
    };
    println!("server pid {} at http://{}", server.0, server.1);

    let mut failed = false;
    println!(
        "\n== idle: `cfgledger agent render`, `cfgledger agent exec -- sleep 1000` and `cfgledger-agent render`, {} s without a change",
        p.idle.as_secs()
    );
    let idle = match idle_agents(&p, dir.path(), server) {
        Ok(idle) => idle,
        Err(e) => {
            println!("   FAILED: {e}");
            failed = true;
            Vec::new()
        }
    };
    for i in &idle {
        println!(
            "   {:<26} VmRSS {:6.2} MiB ({} kB: anon {} kB, file {} kB of which the cfgledger binary {} kB), Pss \
             {:.2} MiB, peak {:.2} MiB, {} threads; CPU {:.2}% of one core (utime+stime), {:.3}% on CPU \
             (schedstat), {:.1} wake-ups/s",
            i.label,
            mib(i.memory.rss),
            i.memory.rss,
            i.memory.anon,
            i.memory.file,
            i.memory.binary,
            mib(i.memory.pss),
            mib(i.memory.hwm),
            i.memory.threads,
            i.cpu.ticks_pct,
            i.cpu.sched_pct,
            i.cpu.wakeups
        );
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let mut fleets = Vec::new();
    let mut value_index = 0;
    for &n in &p.counts {
        println!(
            "\n== propagation to {n} agent(s): {} changes of LOG_LEVEL ({} warm-up first), {}–{} ms between one \
             landing everywhere and the next",
            p.changes,
            p.warmup,
            p.pace.as_millis(),
            2 * p.pace.as_millis()
        );
        match runtime.block_on(propagation(&p, dir.path(), server, n, &mut value_index)) {
            Ok(fleet) => {
                report_fleet(&fleet);
                fleets.push(fleet);
            }
            Err(e) => {
                println!("   FAILED: {e}");
                failed = true;
            }
        }
    }
    drop(runtime);
    println!("\nserver: {}", server_procs.stop_all());

    println!("\n| agents | changes | samples | agent p50 | agent p99 | all applied p99 | raw watch p50 | raw watch p99 | p50 ×raw | p99 ×raw | lost | target p99 < {P99_TARGET_MS:.0} ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for f in &fleets {
        let (a50, a99, _) = stats(&f.agent);
        let (_, l99, _) = stats(&f.last);
        let (r50, r99, _) = stats(&f.reference);
        let verdict = if !p.full {
            "not judged (short run)"
        } else if f.n < 100 {
            "-"
        } else if f.lost == 0 && a99 < P99_TARGET_MS {
            "met"
        } else {
            "**missed**"
        };
        println!(
            "| {} | {} | {} | {a50:.2} ms | {a99:.2} ms | {l99:.2} ms | {r50:.2} ms | {r99:.2} ms | {:.1}x | {:.1}x | {} | {verdict} |",
            f.n,
            f.last.len(),
            f.agent.len(),
            a50 / r50,
            a99 / r99,
            f.lost
        );
    }
    println!("(milliseconds from just before the PUT was sent to the agent's `rendered` log timestamp, or to the");
    println!(
        " bench's own watch-stream reader receiving the event; \"all applied\" is the slowest agent of each change,"
    );
    println!(" nearest-rank p99, which over {} changes is the slowest change)", p.changes);

    if !idle.is_empty() {
        let server_rss = idle.iter().find(|i| !i.is_agent).map_or(0, |i| i.memory.rss);
        println!(
            "\n| process (idle {} s) | VmRSS | anon | file-backed (binary) | Pss | threads | CPU % of one core (schedstat) | wake-ups/s | ×server RSS | target RSS < 10 MiB |",
            p.idle.as_secs()
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for i in &idle {
            let verdict = match (i.is_agent, p.full) {
                (false, _) => "-",
                (true, false) => "not judged (short run)",
                (true, true) if i.memory.rss < RSS_TARGET_KB => "met",
                (true, true) => "**missed**",
            };
            println!(
                "| {} | {:.2} MiB | {:.2} MiB | {:.2} MiB ({:.2}) | {:.2} MiB | {} | {:.2}% ({:.3}%) | {:.1} | {:.2} | {verdict} |",
                i.label,
                mib(i.memory.rss),
                mib(i.memory.anon),
                mib(i.memory.file),
                mib(i.memory.binary),
                mib(i.memory.pss),
                i.memory.threads,
                i.cpu.ticks_pct,
                i.cpu.sched_pct,
                i.cpu.wakeups,
                i.memory.rss as f64 / server_rss.max(1) as f64
            );
        }
        println!("(MiB = 1024 kB as /proc reports it; file-backed pages are mostly the cfgledger binary, shared with");
        println!(" every other process running it, which Pss divides among them)");
    }
    if failed {
        std::process::exit(1);
    }
}
