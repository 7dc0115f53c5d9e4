//! Fixed-duration load phases and what they yield. Every simulated client is a task that loops on its own
//! connection for a warm-up and then a measured window; requests that start and finish inside the window
//! are timed into an HDR histogram, and every failure (any non-200, any broken connection), warm-up
//! included, is counted and a few are kept to print.

use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long each phase warms up and then measures.
#[derive(Clone, Copy, Debug)]
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

/// A latency distribution in microseconds, 3 significant digits, up to a minute.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

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
#[derive(Default)]
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
        println!("    !!! ERRORS: {} failed {what}; the figures of this phase are not clean. First ones:", self.count);
        for s in &self.samples {
            println!("    !!!   {s}");
        }
    }
}

/// What a throughput phase measured.
pub struct Phase {
    pub clients: usize,
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
        println!(
            "  {label:<44} {:>10.0} req/s  ({} ok in {:.1} s, {} clients)",
            self.rate(),
            self.ok,
            self.secs,
            self.clients
        );
        println!("  {:<44} {}", "", self.latency.summary());
        self.errors.print("requests");
    }
}

/// Runs every worker on its own task for the warm-up and the measured window, and gathers what they saw.
pub async fn run<W: Worker>(workers: Vec<W>, window: Window) -> Phase {
    let clients = workers.len();
    let start = Instant::now();
    let measure_from = start + window.warmup;
    let end = measure_from + window.measured;
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
    phase
}

/// What a change-delivery phase measured: each change timed from just before its write was sent, and from
/// its acknowledgement, to the moment the watcher received it.
pub struct Delivery {
    pub from_send: Latencies,
    pub from_ack: Latencies,
    /// Changes whose event reached the watcher before the write's own acknowledgement reached the writer
    /// (counted as 0 in `from_ack`).
    pub before_ack: u64,
    pub errors: Errors,
}

impl Delivery {
    pub fn new() -> Delivery {
        Delivery { from_send: Latencies::new(), from_ack: Latencies::new(), before_ack: 0, errors: Errors::default() }
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
        println!("  {label:<44} {} changes delivered", self.from_send.len());
        println!("  {:<44} send→event  {}", "", self.from_send.summary());
        println!("  {:<44} ack→event   {}", "", self.from_ack.summary());
        if self.before_ack > 0 {
            println!("  {:<44} ({} events arrived before the write's own acknowledgement)", "", self.before_ack);
        }
        self.errors.print("changes");
    }
}
