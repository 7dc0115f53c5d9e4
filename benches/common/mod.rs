//! Helpers shared by the benches: whether this is a full `cargo bench` run, and the actor they write as.

use cfgledger_events::{Actor, Source};

#[allow(dead_code)] // only the benches that load a database on the same cores use it
pub mod cpu;
#[allow(dead_code)] // only the benches that talk HTTP use it
pub mod http;
#[allow(dead_code)] // only the benches that serve in-process use it
pub mod in_process;
#[allow(dead_code)] // only the benches that start a server use it
pub mod serve;
#[allow(dead_code)] // only the benches that watch the change stream use it
pub mod sse;
#[allow(dead_code)] // only the benches that build a big store use it
pub mod workload;

/// `cargo bench` passes `--bench`; `cargo test --benches` does not, and then every loop runs briefly.
pub fn full_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

#[allow(dead_code)] // not every bench writes events
pub fn actor() -> Actor {
    Actor {
        name: "bench".into(),
        role: Some("admin".into()),
        source: Source::Api,
        address: Some("127.0.0.1".into()),
        request_id: None,
    }
}

/// `n` runs of `f`, each timed, sorted from fastest to slowest.
#[allow(dead_code)] // only the benches that take percentiles of a closure use it
pub fn sorted_samples(n: usize, mut f: impl FnMut()) -> Vec<std::time::Duration> {
    let mut samples: Vec<std::time::Duration> = (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples
}

/// p50 and p95 of `n` runs of `f`, in milliseconds.
#[allow(dead_code)] // only the benches that report a closure's p50 and p95 use it
pub fn p50_p95_ms(n: usize, f: impl FnMut()) -> (f64, f64) {
    let samples = sorted_samples(n, f);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.95))
}
