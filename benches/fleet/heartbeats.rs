//! The agents' heartbeats, for a fleet of gateway instances: every agent posts `POST
//! /admin/instances/heartbeat` every 3 s (its default), so 10,000 agents on one server send it 3,333 beats a
//! second. Against one `serve` on SQLite (release, a temp dir), the harness measures:
//! - capacity: `clients` keep-alive connections posting beats back to back, the ids cycling over `agents`,
//!   for `seconds`: beats/s and p99. The reference in the same run is the store alone storing one beat per
//!   transaction from [`STORE_THREADS`] threads, as every beat was stored before the server grouped them;
//! - what the beats cost config writes: durable `PUT`s from 16 connections for `seconds`, first alone, then
//!   while `agents` agents beat every 3 s (paced, spread over the same `clients` connections, each carrying
//!   its share of the agents in turn); the ratio of the two `PUT` rates, and the beat rate reached.
//!
//! A beat is answered once its group is stored, up to 50 ms after it arrived, so a connection carries at most
//! about 20 beats a second: `clients` must be well above the beat rate / 20 (1,000 for 10,000 agents).
//!
//! Any answer but the expected one (204 for a beat, 200 for a `PUT`) fails the run.

use super::balancer::{joined, load, Plan as Writers};
use super::common::http::{exchange, handshake};
use super::{percentile, server};
use cfgledger::store::{EventStore, InstanceBeat};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Request;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An agent's beat interval (the agent's `--heartbeat` default).
const BEAT: Duration = Duration::from_secs(3);
/// Threads of the store-alone reference (its beats are serialized by the store's write lock anyway).
const STORE_THREADS: usize = 32;
/// Connections writing config.
const WRITERS: usize = 16;

pub struct Plan {
    pub agents: usize,
    pub clients: usize,
    pub seconds: f64,
}

pub struct Figures {
    pub beats_per_s: f64,
    pub beat_p99_ms: f64,
    pub store_alone_per_s: f64,
    pub put_alone_per_s: f64,
    pub put_alone_p99_ms: f64,
    pub put_beating_per_s: f64,
    pub put_beating_p99_ms: f64,
    pub paced_beats_per_s: f64,
}

pub fn run(bin: &Path, plan: &Plan) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = server::Store::new(bin, format!("sqlite://{}", dir.path().join("beats.db").display()), dir.path());
    store.prepare(None)?;
    let token = Arc::new(store.token()?);
    let instance = store.serve("beats")?;
    let head = head_hash(instance.addr, &token)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let until = |seconds: f64| Instant::now() + Duration::from_secs_f64(seconds);

    let (beats_per_s, beat_p99_ms) = {
        let deadline = until(plan.seconds);
        let latencies = runtime.block_on(beats(
            instance.addr,
            token.clone(),
            head.clone(),
            (plan.agents, plan.clients),
            deadline,
            None,
        ))?;
        (latencies.len() as f64 / plan.seconds, percentile(&latencies, 99.0))
    };
    let store_alone_per_s = store_alone(dir.path(), plan)?;

    let writers = Writers { clients: WRITERS, seconds: plan.seconds, watchers: 0, changes: 0 };
    let (put_alone_per_s, put_alone_p99_ms) = runtime.block_on(load(instance.addr, token.clone(), "PUT", &writers))?;
    let (put_beating_per_s, put_beating_p99_ms, paced_beats_per_s) = runtime.block_on(async {
        let deadline = until(plan.seconds);
        let agents = tokio::spawn(beats(
            instance.addr,
            token.clone(),
            head.clone(),
            (plan.agents, plan.clients),
            deadline,
            Some(BEAT),
        ));
        let (rate, p99) = load(instance.addr, token.clone(), "PUT", &writers).await?;
        let beat_latencies = agents.await.map_err(|e| e.to_string())??;
        Ok::<_, String>((rate, p99, beat_latencies.len() as f64 / plan.seconds))
    })?;
    drop(instance);
    Ok(Figures {
        beats_per_s,
        beat_p99_ms,
        store_alone_per_s,
        put_alone_per_s,
        put_alone_p99_ms,
        put_beating_per_s,
        put_beating_p99_ms,
        paced_beats_per_s,
    })
}

/// The log's head hash, which the beats report.
fn head_hash(addr: SocketAddr, token: &str) -> Result<String, String> {
    let verified: serde_json::Value = ureq::get(&format!("http://{addr}/admin/verify"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|e| format!("GET /admin/verify: {e}"))?
        .into_json()
        .map_err(|e| format!("GET /admin/verify: {e}"))?;
    verified["head"]["hash"].as_str().map(str::to_string).ok_or_else(|| format!("no head hash in {verified}"))
}

/// An agent's report, as `cfgledger agent` sends it.
fn report(id: usize, head: &str) -> String {
    serde_json::json!({
        "id": format!("gw-{id:05}"), "kind": "agent", "namespace": "mcpgateway", "labels": {"zone": "a"},
        "applied_seq": 1, "head_hash": head, "stale": false, "staleness_secs": 0.0, "origin": "server",
        "host": format!("gw-{id:05}.fleet"), "pid": 4242, "version": "0.1.0", "started_at": "2026-12-06T00:00:00Z"
    })
    .to_string()
}

/// Beats of `agents` agents until `deadline`, on `connections` connections: back to back when `every` is
/// `None`, else each agent once per `every`. Returns the latencies (ms).
async fn beats(
    addr: SocketAddr,
    token: Arc<String>,
    head: String,
    (agents, connections): (usize, usize),
    deadline: Instant,
    every: Option<Duration>,
) -> Result<Vec<f64>, String> {
    let connections = connections.clamp(1, agents.max(1));
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..agents).map(|id| Bytes::from(report(id, &head))).collect());
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (token, bodies) = (token.clone(), bodies.clone());
            tokio::spawn(async move {
                let (mut sender, host) = handshake(addr).await?;
                // Each connection carries the agents c, c + connections, ...; paced, each sends one beat per
                // `every` for each of its agents, evenly spaced.
                let mine = (agents - c).div_ceil(connections);
                // The connections start a period apart divided among them, so the beats do not come in
                // bursts.
                let mut ticks = every.map(|every| {
                    let period = every / u32::try_from(mine.max(1)).unwrap_or(u32::MAX);
                    let offset = period.mul_f64(c as f64 / connections as f64);
                    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let mut latencies = Vec::new();
                let mut agent = c;
                loop {
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = Request::builder()
                        .method("POST")
                        .uri("/admin/instances/heartbeat")
                        .header("host", host.clone())
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(Full::new(bodies[agent].clone()))
                        .map_err(|e| e.to_string())?;
                    let started = Instant::now();
                    let (status, body) = exchange(&mut sender, request).await.map_err(|e| format!("a beat: {e}"))?;
                    if status != 204 {
                        return Err(format!("a beat answered {status}: {body:?}"));
                    }
                    latencies.push(started.elapsed().as_secs_f64() * 1e3);
                    agent += connections;
                    if agent >= agents {
                        agent = c;
                    }
                }
                Ok::<Vec<f64>, String>(latencies)
            })
        })
        .collect();
    joined(tasks).await
}

/// The store alone (a SQLite file of its own), one beat per transaction with the forgetting of the silent,
/// from [`STORE_THREADS`] threads for `plan.seconds`: beats/s.
fn store_alone(dir: &Path, plan: &Plan) -> Result<f64, String> {
    let path = dir.join("alone.db");
    let store: Arc<dyn EventStore> =
        Arc::new(cfgledger::store::sqlite::SqliteStore::open(&path).map_err(|e| format!("the reference store: {e}"))?);
    let deadline = Instant::now() + Duration::from_secs_f64(plan.seconds);
    let stored = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..STORE_THREADS)
        .map(|c| {
            let (store, stored) = (store.clone(), stored.clone());
            let (agents, threads_n) = (plan.agents, STORE_THREADS);
            std::thread::spawn(move || -> Result<(), String> {
                let mut agent = c;
                while Instant::now() < deadline {
                    let beat = InstanceBeat {
                        id: format!("agent/gw-{agent:05}"),
                        info: serde_json::json!({"n": agent}),
                        last_seen: now_micros(),
                    };
                    store.heartbeats(&[beat], Some(0)).map_err(|e| format!("a beat: {e}"))?;
                    stored.fetch_add(1, Ordering::Relaxed);
                    agent = (agent + threads_n) % agents;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a reference thread panicked".to_string())??;
    }
    Ok(stored.load(Ordering::Relaxed) as f64 / plan.seconds)
}

fn now_micros() -> i64 {
    use cfgledger::clock::Clock;
    cfgledger::clock::SystemClock.now().as_micros()
}
