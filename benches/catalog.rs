//! The cost of the gateway's whole catalog (about 860 keys in two namespaces) against a 35-key catalog (the
//! size of the built-in catalog before namespaces), measured in the same run, in-process and over HTTP:
//!
//! - one read of an integer key through `Settings` (target: median < 100 ns);
//! - `config list` of the default namespace, the use case the CLI and the API call;
//! - `GET /admin/config` over HTTP/1.1 keep-alive on loopback, with a bearer token (target: p99 < 5 ms),
//!   beside `GET /health` on the same server as the bare reference;
//! - a render of the default namespace as `.env`, every key included (target: < 2 ms).
//!
//! Run: `cargo bench --bench catalog`. Prints one table; `cargo test --benches` runs every loop briefly.

mod common;

use cfgledger::auth::{Role, TokenKeys};
use cfgledger::model::ListQuery;
use cfgledger::store::StoreUrl;
use cfgledger::usecase::render::{self, RenderFormat, RenderRequest};
use cfgledger::usecase::settings;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::{builtin, gateway_file, own_namespace, own_specs};
use cfgledger_events::catalog::{Catalog, Namespace};
use cfgledger_events::{Cause, Command, Input};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SECRET: &str = "catalog-bench-secret-0123456789abcdef";
const JWT: &[u8] = b"catalog-bench-signing-key-0123456789abcdef";

/// 24 of the gateway's keys and cfgledger's own: about the size of the built-in catalog before namespaces.
fn small_catalog() -> Catalog {
    let file = gateway_file();
    let gateway = Namespace::new("mcpgateway", "MCP Gateway", file.version.as_deref(), "");
    let keep: Vec<_> = file.settings.into_iter().take(24).collect();
    Catalog::compose(vec![(gateway, keep), (own_namespace(), own_specs())]).expect("a valid catalog")
}

fn ctx() -> WriteContext {
    WriteContext { actor: common::actor(), cause: Cause::Cli { command: "bench".into() }, reason: None, bypass: false }
}

fn open(catalog: Catalog) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Memory, catalog);
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    let (ledger, _) = Ledger::open(opts).expect("the bench store opens");
    // A few values in the store, as a real one holds: the list and the render then read the log's values too.
    let key = ledger.catalog().specs().iter().find(|s| s.namespace == "mcpgateway" && !s.locked).map(|s| s.id.clone());
    if let Some(key) = key {
        let spec = ledger.catalog().get(&key).expect("the key").clone();
        if let Some(default) = spec.default.clone() {
            let _ = ledger.execute(Command::Set { key, value: Input::Json(default) }, ctx());
        }
    }
    ledger
}

/// Percentiles of `samples` (sorted in place), in the samples' unit.
fn pct(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// The median cost of one read, in nanoseconds: batches of reads timed together, so the clock's own cost
/// is spread over the batch.
fn read_ns(ledger: &Ledger, key: &str, batches: usize) -> f64 {
    let s = ledger.settings();
    assert!(s.get_i64(key).is_some(), "{key} reads as an integer");
    const BATCH: usize = 2_000;
    let mut per_read: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..BATCH {
                black_box(s.get_i64(black_box(key)));
            }
            t.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .collect();
    pct(&mut per_read, 0.5)
}

/// p50 and p99 of `f`, in microseconds.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    (pct(&mut samples, 0.5), pct(&mut samples, 0.99))
}

/// Serves `ledger` on a loopback port with authentication on; returns the base URL and a token.
fn serve(rt: &tokio::runtime::Runtime, ledger: Ledger) -> (String, String, tokio::sync::watch::Sender<bool>) {
    let keys = TokenKeys::new(JWT, "HS256").expect("keys");
    let token = keys.issue("bench", Role::Viewer, cfgledger::auth::unix_seconds(ledger.now()), 3600).expect("a token");
    let (url, closing) = common::in_process::serve(rt, ledger, keys, Duration::from_secs(5));
    (url, token, closing)
}

fn http(agent: &ureq::Agent, url: &str, token: &str, n: usize) -> (f64, f64, usize) {
    let mut bytes = 0;
    let (p50, p99) = timed(n, || {
        let body = agent
            .get(url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("200")
            .into_string()
            .expect("a body");
        bytes = body.len();
    });
    (p50, p99, bytes)
}

struct Row {
    what: &'static str,
    small: String,
    full: String,
    ratio: f64,
    target: &'static str,
}

fn main() {
    let full_run = common::full_run();
    let (batches, n) = if full_run { (2_000, 2_000) } else { (20, 20) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let agent = ureq::AgentBuilder::new().build();
    let mut rows = Vec::new();
    let mut measured = Vec::new();
    for catalog in [small_catalog(), builtin()] {
        let keys = catalog.len();
        let ledger = open(catalog);
        let read = read_ns(&ledger, "PORT", batches);
        let query = ListQuery::default();
        let list = timed(n, || {
            black_box(rt.block_on(settings::list(&ledger, &query)).expect("a list"));
        });
        let req = RenderRequest { include_defaults: true, format: RenderFormat::Env, ..RenderRequest::default() };
        let rendered = timed(n, || {
            black_box(rt.block_on(render::render(&ledger, &req, ctx())).expect("a render"));
        });
        let (url, token, closing) = serve(&rt, ledger.clone());
        let health = http(&agent, &format!("{url}/health"), &token, n);
        let listed = http(&agent, &format!("{url}/admin/config"), &token, n);
        let _ = closing.send(true);
        measured.push((keys, read, list, rendered, health, listed));
    }
    let (small, full) = (&measured[0], &measured[1]);
    let us = |(p50, p99): (f64, f64)| format!("p50 {p50:.1} µs, p99 {p99:.1} µs");
    rows.push(Row {
        what: "read one key (Settings::get_i64), median",
        small: format!("{:.1} ns", small.1),
        full: format!("{:.1} ns", full.1),
        ratio: full.1 / small.1,
        target: "< 100 ns",
    });
    rows.push(Row {
        what: "config list (use case, default namespace)",
        small: us(small.2),
        full: us(full.2),
        ratio: full.2 .1 / small.2 .1,
        target: "",
    });
    rows.push(Row {
        what: "render env, every key (use case)",
        small: us(small.3),
        full: us(full.3),
        ratio: full.3 .1 / small.3 .1,
        target: "< 2 ms",
    });
    rows.push(Row {
        what: "GET /health over HTTP (reference)",
        small: us((small.4 .0, small.4 .1)),
        full: us((full.4 .0, full.4 .1)),
        ratio: full.4 .1 / small.4 .1,
        target: "",
    });
    rows.push(Row {
        what: "GET /admin/config over HTTP",
        small: format!("{}, {} KB", us((small.5 .0, small.5 .1)), small.5 .2 / 1024),
        full: format!("{}, {} KB", us((full.5 .0, full.5 .1)), full.5 .2 / 1024),
        ratio: full.5 .1 / small.5 .1,
        target: "p99 < 5 ms",
    });
    println!("\ncatalog bench: {} keys against {} keys, {n} runs each", full.0, small.0);
    println!("| what | {} keys | {} keys | p99 (or median) ratio | target |", small.0, full.0);
    println!("| --- | --- | --- | --- | --- |");
    for r in &rows {
        println!("| {} | {} | {} | {:.2}× | {} |", r.what, r.small, r.full, r.ratio, r.target);
    }
    println!(
        "GET /admin/config against GET /health on the same server, {} keys: p99 {:.2}×",
        full.0,
        full.5 .1 / full.4 .1
    );
}
