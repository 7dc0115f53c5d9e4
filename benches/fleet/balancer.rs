//! Issue 19, part 2's figures: `cfgledger serve` processes on one PostgreSQL database (a fresh one on the local
//! server, `propagation/pg.rs`) behind Debian's HAProxy (`tests/haproxy`, the config `docs/deployment.md`
//! recommends), with one server reached directly as the reference for what the balancer costs. For each
//! setup the harness measures, on the same 2 cores as the servers, the balancer and itself:
//! - durable `PUT` throughput and p99 with `BALANCER_CLIENTS` keep-alive connections (hyper) for
//!   `BALANCER_SECS` seconds;
//! - `GET` of one key, the same way;
//! - propagation: `BALANCER_WATCHERS` watch streams opened through the entry point (spread over the servers
//!   by round robin), then paced changes; for each, the time from the `PUT` being sent to the last watcher
//!   receiving it. Every watcher must get every change once, or the run fails.

use super::common::http::{exchange, handshake};
use super::pg::FreshDb;
use super::{haproxy, percentile, server, watcher, Seen};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Request;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One setup's figures.
pub struct Figures {
    pub label: String,
    pub put_per_s: f64,
    pub put_p99_ms: f64,
    pub get_per_s: f64,
    pub get_p99_ms: f64,
    pub prop_p50_ms: f64,
    pub prop_p99_ms: f64,
}

pub struct Plan {
    pub clients: usize,
    pub seconds: f64,
    pub watchers: usize,
    pub changes: usize,
}

/// `servers` instances; through HAProxy when `balanced`, else straight to the one server.
pub fn run(bin: &Path, servers: usize, balanced: bool, plan: &Plan) -> Result<Figures, String> {
    let db = FreshDb::create()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = server::Store::new(bin, db.url(), dir.path());
    store.prepare(None)?;
    let token = Arc::new(store.token()?);
    let names = ["a", "b", "c", "d", "e"];
    let instances: Vec<server::Server> =
        names.iter().take(servers).map(|name| store.serve(name)).collect::<Result<_, _>>()?;
    let backends: Vec<String> = instances.iter().map(|i| i.addr.to_string()).collect();
    let balancer = if balanced { Some(haproxy::Balancer::start(&backends)?) } else { None };
    let entry = balancer.as_ref().map_or(instances[0].addr, |b| b.addr);
    let label = match (servers, balanced) {
        (1, false) => "1 server, direct".to_string(),
        (n, true) => format!("{n} server{} behind HAProxy", if n == 1 { "" } else { "s" }),
        (n, false) => format!("{n} servers, direct to the first"),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (put_per_s, put_p99_ms) = runtime.block_on(load(entry, token.clone(), "PUT", plan))?;
    let (get_per_s, get_p99_ms) = runtime.block_on(load(entry, token.clone(), "GET", plan))?;
    drop(runtime);
    // Every server applies the last load write before the watchers start at its head.
    std::thread::sleep(Duration::from_secs(1));
    let (prop_p50_ms, prop_p99_ms) = propagation(entry, token, plan)?;
    drop(balancer);
    drop(instances);
    Ok(Figures { label, put_per_s, put_p99_ms, get_per_s, get_p99_ms, prop_p50_ms, prop_p99_ms })
}

/// `plan.clients` connections, each sending `method` on `TOOL_RATE_LIMIT` back to back for `plan.seconds`;
/// returns requests per second and the p99 latency in ms. Any answer but 200 fails the run.
pub async fn load(
    entry: SocketAddr,
    token: Arc<String>,
    method: &'static str,
    plan: &Plan,
) -> Result<(f64, f64), String> {
    let deadline = Instant::now() + Duration::from_secs_f64(plan.seconds);
    let next = Arc::new(AtomicU64::new(10_000_000));
    let tasks: Vec<_> = (0..plan.clients)
        .map(|_| {
            let (token, next) = (token.clone(), next.clone());
            tokio::spawn(async move {
                let (mut sender, host) = handshake(entry).await?;
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let body = if method == "PUT" {
                        format!("{{\"value\":{}}}", next.fetch_add(1, Ordering::Relaxed))
                    } else {
                        String::new()
                    };
                    let request = Request::builder()
                        .method(method)
                        .uri("/admin/config/TOOL_RATE_LIMIT")
                        .header("host", host.clone())
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .map_err(|e| e.to_string())?;
                    let started = Instant::now();
                    let (status, body) = exchange(&mut sender, request).await.map_err(|e| format!("{method}: {e}"))?;
                    if status != 200 {
                        return Err(format!("{method} answered {status}: {body:?}"));
                    }
                    latencies.push(started.elapsed().as_secs_f64() * 1e3);
                }
                Ok::<Vec<f64>, String>(latencies)
            })
        })
        .collect();
    let all = joined(tasks).await?;
    Ok((all.len() as f64 / plan.seconds, percentile(&all, 99.0)))
}

/// Every latency the connection tasks measured, sorted; the first error of any fails the run.
pub async fn joined(tasks: Vec<tokio::task::JoinHandle<Result<Vec<f64>, String>>>) -> Result<Vec<f64>, String> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// Watchers through `entry`, then `plan.changes` paced `PUT`s through it; p50 and p99 (ms) from a `PUT` being
/// sent to the last watcher receiving it.
fn propagation(entry: SocketAddr, token: Arc<String>, plan: &Plan) -> Result<(f64, f64), String> {
    let base = 1000;
    let seen = Arc::new(Seen::new(plan.changes));
    let epoch = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    for _ in 0..plan.watchers {
        runtime.spawn(watcher(entry, token.clone(), base, seen.clone(), epoch));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.ready.load(Ordering::Relaxed) < plan.watchers {
        if Instant::now() > deadline {
            return Err(format!("only {} of {} watchers caught up", seen.ready.load(Ordering::Relaxed), plan.watchers));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let mut latencies = Vec::with_capacity(plan.changes);
    for i in 0..plan.changes {
        let sent = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
        agent
            .put(&format!("http://{entry}/admin/config/TOOL_RATE_LIMIT"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({ "value": base + i as i64 }))
            .map_err(|e| format!("PUT TOOL_RATE_LIMIT: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.count[i].load(Ordering::Relaxed) < plan.watchers {
            if Instant::now() > deadline {
                return Err(format!(
                    "change {i} reached {} of {} watchers in 30 s",
                    seen.count[i].load(Ordering::Relaxed),
                    plan.watchers
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        latencies.push(seen.last[i].load(Ordering::Relaxed).saturating_sub(sent) as f64 / 1e6);
        std::thread::sleep(Duration::from_millis(20));
    }
    let strays = seen.strays.load(Ordering::Relaxed);
    if strays > 0 {
        return Err(format!("{strays} event(s) arrived twice or for no change"));
    }
    latencies.sort_by(f64::total_cmp);
    Ok((percentile(&latencies, 50.0), percentile(&latencies, 99.0)))
}
