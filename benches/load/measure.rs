//! Fixed-duration load phases and what they yield. Every simulated client is a task that loops on its own
//! connection for a warm-up and then a measured window; requests that start and finish inside the window
//! are timed into an HDR histogram, and every failure (any non-200, any broken connection), warm-up
//! included, is counted and a few are kept to print. Change-delivery phases write one change at a time and
//! time its arrival at a watcher. The harness (benches/load.rs) measures cfgledger with this code, and the
//! etcd peer (benches/etcd-peer) measures etcd with the same file, sending what it measured back as JSON.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Between one delivered change and the next write of the watch phase, so that it measures one change at
/// a time rather than a backlog.
pub const WATCH_PACE: Duration = Duration::from_millis(2);
/// How long a change may take to reach the watcher before it counts as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A value for the write key that none of the last million writes of this process used (cfgledger appends
/// nothing for a write of the value the key already holds); within 1..=1,000,000, `TOOL_RATE_LIMIT`'s range.
pub fn next_value() -> i64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    1 + i64::try_from(n).expect("below a million")
}

/// What a watcher received: each value with the moment it arrived.
pub type Events = mpsc::UnboundedReceiver<(i64, Instant)>;

/// Writes a given value to the watched key and returns once the write is acknowledged.
pub trait Writer: Send {
    fn write(&mut self, value: i64) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// How long each phase warms up and then measures.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Window {
    pub warmup: Duration,
    pub measured: Duration,
}

/// Why a call did not count.
pub enum Failure {
    /// The server answered, but not with success: the client goes on.
    Rejected(String),
    /// The connection is unusable: this client stops.
    Broken(String),
}

/// One simulated client: one connection, one kind of request.
pub trait Worker: Send + 'static {
    fn call(&mut self) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// A latency distribution in microseconds, 3 significant digits, up to a minute. On the wire it is the
/// list of its non-empty buckets as (value, count), from which the same histogram is rebuilt.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "Vec<(u64, u64)>", from = "Vec<(u64, u64)>")]
pub struct Latencies(Histogram<u64>);

impl From<Latencies> for Vec<(u64, u64)> {
    fn from(latencies: Latencies) -> Self {
        latencies.0.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }
}

impl From<Vec<(u64, u64)>> for Latencies {
    fn from(buckets: Vec<(u64, u64)>) -> Self {
        let mut latencies = Latencies::new();
        for (value, count) in buckets {
            latencies.0.saturating_record_n(value, count);
        }
        latencies
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies(Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(micros);
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("histograms with the same bounds merge");
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// The latency at quantile `q` (0.99 for p99), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }

    /// `p50 0.412 ms  p99 1.210 ms  p99.9 2.301 ms  max 5.120 ms`.
    pub fn summary(&self) -> String {
        if self.len() == 0 {
            return "no samples".to_string();
        }
        format!(
            "p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            self.ms(0.50),
            self.ms(0.99),
            self.ms(0.999),
            self.max_ms()
        )
    }
}

/// Failures of a phase: how many, and the first few distinct messages.
#[derive(Default, Serialize, Deserialize)]
pub struct Errors {
    pub count: u64,
    pub samples: Vec<String>,
}

impl Errors {
    const KEPT: usize = 5;

    pub fn add(&mut self, message: String) {
        self.count += 1;
        if self.samples.len() < Self::KEPT && !self.samples.contains(&message) {
            self.samples.push(message);
        }
    }

    fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for s in other.samples {
            if self.samples.len() < Self::KEPT && !self.samples.contains(&s) {
                self.samples.push(s);
            }
        }
    }

    /// Prints the failures loudly, or nothing when there were none.
    pub fn print(&self, what: &str) {
        if self.count == 0 {
            return;
        }
        println!(
            "      !!! ERRORS: {} failed {what}; the figures of this phase are not clean. First ones:",
            self.count
        );
        for s in &self.samples {
            println!("      !!!   {s}");
        }
    }
}

/// What a throughput phase measured.
#[derive(Serialize, Deserialize)]
pub struct Phase {
    pub clients: usize,
    /// CPU the server and the process running the clients used over the measured window, in cores (1.0 =
    /// one core busy).
    pub cpu: Option<Cpu>,
    pub ok: u64,
    pub secs: f64,
    pub latency: Latencies,
    pub errors: Errors,
}

impl Phase {
    /// Successful requests per second over the measured window.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    pub fn print(&self, label: &str) {
        println!("  {label}");
        println!("      {:.0} req/s ({} ok in {:.1} s, {} clients)", self.rate(), self.ok, self.secs, self.clients);
        println!("      {}", self.latency.summary());
        if let Some(cpu) = &self.cpu {
            cpu.print();
        }
        self.errors.print("requests");
    }
}

/// CPU use over a window, in cores.
#[derive(Serialize, Deserialize)]
pub struct Cpu {
    pub server: f64,
    pub client: f64,
    /// Every other process on the machine (system-wide busy time less the two above).
    pub other: f64,
}

impl Cpu {
    /// Whether other processes used enough CPU to disturb the figures.
    pub fn disturbed(cpu: Option<&Cpu>) -> bool {
        cpu.is_some_and(|c| c.other > DISTURBED)
    }

    fn print(&self) {
        println!(
            "      cpu: server {:.2} cores, load client {:.2} cores, anything else {:.2} cores",
            self.server, self.client, self.other
        );
        if self.other > DISTURBED {
            println!(
                "      !!! other processes used {:.2} cores during this phase: these figures are disturbed",
                self.other
            );
        }
    }
}

/// Cores that other processes may use during a phase before its figures are called disturbed.
pub const DISTURBED: f64 = 0.1;

/// CPU time all processes of the machine have used so far: user, nice and system of the `cpu` line of
/// `/proc/stat`. Interrupt time is left out: under load it is mostly this run's own loopback traffic.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|t| t.parse().ok()).collect();
    let busy: u64 = ticks.iter().take(3).sum();
    Some(Duration::from_secs_f64(busy as f64 / clock_ticks()))
}

/// User plus system CPU time a process has used so far (from `/proc/PID/stat`), if this is Linux.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the
    // 12th and 13th of them, in clock ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// `getconf CLK_TCK`, else Linux's usual 100.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU times of the server, this process and the whole machine at one moment.
pub struct CpuMark {
    server: u32,
    at: Instant,
    times: [Duration; 3],
}

impl CpuMark {
    pub fn now(server: u32) -> Option<CpuMark> {
        let times = [cpu_time(&server.to_string())?, cpu_time("self")?, machine_busy()?];
        Some(CpuMark { server, at: Instant::now(), times })
    }

    /// What each used since this mark, in cores.
    pub fn since(&self) -> Option<Cpu> {
        let now = CpuMark::now(self.server)?;
        let secs = (now.at - self.at).as_secs_f64();
        let [server, client, machine] =
            [0, 1, 2].map(|i| now.times[i].saturating_sub(self.times[i]).as_secs_f64() / secs);
        Some(Cpu { server, client, other: (machine - server - client).max(0.0) })
    }
}

/// Samples CPU use over the measured window.
async fn sample_cpu(server: u32, from: Instant, to: Instant) -> Option<Cpu> {
    tokio::time::sleep_until(from.into()).await;
    let mark = CpuMark::now(server)?;
    tokio::time::sleep_until(to.into()).await;
    mark.since()
}

/// Runs every worker on its own task for the warm-up and the measured window, and gathers what they saw;
/// `server` is the server's pid, whose CPU use is sampled alongside the harness's own.
pub async fn run<W: Worker>(workers: Vec<W>, window: Window, server: u32) -> Phase {
    let clients = workers.len();
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let end = measure_from + window.measured;
    let cpu = tokio::spawn(sample_cpu(server, measure_from, end));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut latency = Latencies::new();
                let mut errors = Errors::default();
                let mut ok = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let result = worker.call().await;
                    let t1 = Instant::now();
                    match result {
                        Ok(()) if t0 >= measure_from && t1 <= end => {
                            ok += 1;
                            latency.record(t1 - t0);
                        }
                        Ok(()) => {}
                        Err(Failure::Rejected(message)) => errors.add(message),
                        Err(Failure::Broken(message)) => {
                            errors.add(message);
                            break;
                        }
                    }
                }
                (ok, latency, errors)
            })
        })
        .collect();
    let mut phase = Phase {
        clients,
        cpu: None,
        ok: 0,
        secs: window.measured.as_secs_f64(),
        latency: Latencies::new(),
        errors: Errors::default(),
    };
    for task in tasks {
        let (ok, latency, errors) = task.await.expect("a load task does not panic");
        phase.ok += ok;
        phase.latency.merge(&latency);
        phase.errors.merge(errors);
    }
    phase.cpu = cpu.await.expect("the CPU sampler does not panic");
    phase
}

/// What a change-delivery phase measured: each change timed from just before its write was sent, and from
/// its acknowledgement, to the moment the watcher received it.
#[derive(Serialize, Deserialize)]
pub struct Delivery {
    pub from_send: Latencies,
    pub from_ack: Latencies,
    /// Changes whose event reached the watcher before the write's own acknowledgement reached the writer
    /// (counted as 0 in `from_ack`).
    pub before_ack: u64,
    pub errors: Errors,
    pub cpu: Option<Cpu>,
}

impl Delivery {
    pub fn new() -> Delivery {
        Delivery {
            from_send: Latencies::new(),
            from_ack: Latencies::new(),
            before_ack: 0,
            errors: Errors::default(),
            cpu: None,
        }
    }

    /// Records one change: when its write was sent, when it was acknowledged, when its event arrived.
    pub fn record(&mut self, sent: Instant, acked: Instant, delivered: Instant) {
        self.from_send.record(delivered.saturating_duration_since(sent));
        if delivered < acked {
            self.before_ack += 1;
        }
        self.from_ack.record(delivered.saturating_duration_since(acked));
    }

    pub fn print(&self, label: &str) {
        println!("  {label}");
        println!("      {} changes delivered", self.from_send.len());
        println!("      send→event  {}", self.from_send.summary());
        println!("      ack→event   {}", self.from_ack.summary());
        if self.before_ack > 0 {
            println!("      ({} events arrived before the write's own acknowledgement)", self.before_ack);
        }
        if let Some(cpu) = &self.cpu {
            cpu.print();
        }
        self.errors.print("changes");
    }
}

/// Writes `changes` changes to a watched key one at a time, and times each one's arrival at the watcher;
/// `server` is the server's pid, whose CPU use is sampled alongside this process's own.
pub async fn delivery(mut writer: impl Writer, mut events: Events, changes: usize, server: u32) -> Delivery {
    let mut result = Delivery::new();
    let cpu = CpuMark::now(server);
    for _ in 0..changes {
        let value = next_value();
        let sent = Instant::now();
        let written = writer.write(value).await;
        let acked = Instant::now();
        match written {
            Ok(()) => {}
            Err(Failure::Rejected(message)) => {
                result.errors.add(message);
                tokio::time::sleep(WATCH_PACE).await;
                continue;
            }
            Err(Failure::Broken(message)) => {
                result.errors.add(message);
                break;
            }
        }
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some((v, arrived))) if v == value => {
                    result.record(sent, acked, arrived);
                    break;
                }
                Ok(Some(_)) => {} // a late event of an earlier change that already timed out
                Ok(None) => {
                    result.errors.add("the watch stream ended".into());
                    return result;
                }
                Err(_) => {
                    result.errors.add(format!("no event for value {value} within {DELIVERY_TIMEOUT:?}"));
                    break;
                }
            }
        }
        tokio::time::sleep(WATCH_PACE).await;
    }
    result.cpu = cpu.and_then(|mark| mark.since());
    result
}
