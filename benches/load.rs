//! Load harness: the cfgledger server and etcd side by side on this machine, clients and servers sharing its
//! cores. Both servers run for the whole measurement, and each kind of phase runs on one right after the
//! other: reads of one key at 64 connections, durable writes of one key at 16 and at 64 concurrent clients
//! (one connection each), and change-to-watch delivery latency (one change at a time, paced, timed from just
//! before the write is sent, and from its acknowledgement, to the moment the watcher receives it).
//! cfgledger is driven over HTTP/1.1 keep-alive connections with a bearer token per connection
//! (authentication on); etcd (Debian's `etcd-server`) through its native gRPC API with the `etcd-client`
//! crate, from the etcd peer: a program of its own (benches/etcd-peer, outside the workspace) because
//! etcd-client needs `protoc` to build, which the tests and the rest of the benches should not. The peer
//! runs each etcd phase with the same measuring code on request and sends back its figures. Each throughput
//! phase warms up, then measures for a fixed time; latencies go into HDR histograms,
//! and the CPU used by the server, by this harness and by anything else is sampled, so that a phase that
//! other processes disturbed says so. A table at the end gives both systems, their ratio (above 1 means
//! cfgledger is ahead) and the targets. A run with errors says so loudly and exits with 1.
//!
//! Run: `cargo bench --bench load` (cargo builds the release binary it starts). The etcd side needs etcd
//! (Debian: `apt-get install etcd-server`) and, to build the peer, `protoc` and its well-known types
//! (`apt-get install protobuf-compiler libprotobuf-dev`); when etcd is found, the harness builds the peer itself (`cargo build --release
//! --manifest-path benches/etcd-peer/Cargo.toml`, into target/etcd-peer). Without etcd it measures
//! cfgledger alone and says so; with etcd but no protoc the etcd side fails loudly. Environment: `LOAD_SECS`
//! (measured seconds per phase, default 10), `LOAD_WARMUP_SECS` (default 2), `LOAD_WATCH_CHANGES`
//! (default 2000), `ETCD_BIN` (default `etcd` on the `PATH`; without it only cfgledger is measured),
//! `ETCD_PEER_BIN` (a peer built beforehand; default: build it), `CFGLEDGER_BIN` (default the binary cargo
//! built), `LOAD_AUTH=off` (development only: serve with `AUTH_REQUIRED=false`; not the figures).

#[path = "load/bare.rs"]
mod bare;
#[path = "load/cfgledger.rs"]
mod cfgledger;
#[path = "common/mod.rs"]
mod common;
#[path = "load/etcd.rs"]
mod etcd;
#[path = "load/http.rs"]
mod http;
#[path = "load/measure.rs"]
mod measure;
#[path = "load/process.rs"]
mod process;
#[path = "load/report.rs"]
mod report;
#[path = "load/store_only.rs"]
mod store_only;
#[path = "load/wire.rs"]
mod wire;

use measure::{Delivery, Phase, Window};
use std::path::PathBuf;
use std::time::Duration;

/// Connections of the read phase.
const GET_CLIENTS: usize = 64;
/// Concurrent writers of the write phases.
const PUT_CLIENTS: [usize; 2] = [16, 64];
/// Between phases, so one phase's tail does not spill into the next.
const PAUSE: Duration = Duration::from_secs(1);

struct Settings {
    window: Window,
    watch_changes: usize,
    auth: bool,
    cfgledger_bin: PathBuf,
    etcd_bin: Option<PathBuf>,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number; got {text:?}")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let auth = match std::env::var("LOAD_AUTH").as_deref() {
            Err(_) | Ok("on") => true,
            Ok("off") => false,
            Ok(other) => panic!("LOAD_AUTH must be on or off; got {other:?}"),
        };
        Settings {
            window: Window {
                warmup: Duration::from_secs(env_number("LOAD_WARMUP_SECS", 2)),
                measured: Duration::from_secs(env_number("LOAD_SECS", 10).max(1)),
            },
            watch_changes: usize::try_from(env_number("LOAD_WATCH_CHANGES", 2000)).expect("a change count"),
            auth,
            cfgledger_bin: std::env::var_os("CFGLEDGER_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cfgledger"))),
            etcd_bin: etcd::locate(),
        }
    }
}

/// What one system yielded; a phase that could not run is `None`, and `failures` says why.
#[derive(Default)]
pub struct Results {
    pub get: Option<Phase>,
    /// The bare axum handler's reads of the same item cfgledger answers (in cfgledger's results: the
    /// reference it is held to).
    pub get_bare: Option<Phase>,
    /// The bare handler answering a 56-byte summary instead: the reference before, printed for comparison.
    pub get_bare_small: Option<Phase>,
    /// etcd only: the same reads with `serializable` (local state, no raft round).
    pub get_serializable: Option<Phase>,
    pub puts: Vec<(usize, Phase)>,
    /// The same changes straight through `Ledger::execute` (no HTTP), by client count: changes/s and p99 ms.
    pub store_only: Vec<(usize, f64, f64)>,
    pub watch: Option<Delivery>,
    pub failures: Vec<String>,
}

impl Results {
    fn failed(&mut self, what: &str, why: String) {
        println!("  !!! {what} not measured: {why}");
        self.failures.push(format!("{what}: {why}"));
    }

    pub fn put(&self, clients: usize) -> Option<&Phase> {
        self.puts.iter().find(|(c, _)| *c == clients).map(|(_, p)| p)
    }

    /// Phases during which other processes used enough CPU to disturb the figures.
    fn disturbed(&self) -> usize {
        let phases = self.get.iter().chain(&self.get_serializable).chain(self.puts.iter().map(|(_, p)| p));
        phases.filter(|p| measure::Cpu::disturbed(p.cpu.as_ref())).count()
            + self.watch.as_ref().map_or(0, |w| usize::from(measure::Cpu::disturbed(w.cpu.as_ref())))
    }

    fn error_count(&self) -> u64 {
        let phases = self.get.iter().chain(&self.get_serializable).chain(self.puts.iter().map(|(_, p)| p));
        phases.map(|p| p.errors.count).sum::<u64>()
            + self.watch.as_ref().map_or(0, |w| w.errors.count)
            + u64::try_from(self.failures.len()).expect("a small count")
    }
}

/// Runs one throughput phase on this process's own workers.
async fn measured<W: measure::Worker>(
    workers: Result<Vec<W>, String>,
    window: Window,
    server: u32,
) -> Result<Phase, String> {
    Ok(measure::run(workers?, window, server).await)
}

/// Prints a throughput phase, or records why it could not run; then pauses before the next one.
async fn phase(label: &str, measured: Result<Phase, String>, results: &mut Results) -> Option<Phase> {
    let measured = match measured {
        Ok(phase) => {
            phase.print(label);
            Some(phase)
        }
        Err(why) => {
            results.failed(label, why);
            None
        }
    };
    tokio::time::sleep(PAUSE).await;
    measured
}

/// Prints a change-delivery phase, or records why it could not run.
fn watch_phase(label: &str, measured: Result<Delivery, String>, results: &mut Results) {
    match measured {
        Ok(delivery) => {
            delivery.print(label);
            results.watch = Some(delivery);
        }
        Err(why) => results.failed(label, why),
    }
}

async fn start_cfgledger(settings: &Settings, dir: PathBuf, results: &mut Results) -> Option<cfgledger::Cfgledger> {
    println!("cfgledger: {}", settings.cfgledger_bin.display());
    if !settings.cfgledger_bin.is_file() {
        results.failed("cfgledger", format!("no binary at {}", settings.cfgledger_bin.display()));
        return None;
    }
    let clients = GET_CLIENTS.max(PUT_CLIENTS[1]);
    let bin = settings.cfgledger_bin.clone();
    let auth = settings.auth;
    let path = dir.clone();
    let started = tokio::task::spawn_blocking(move || cfgledger::Cfgledger::start(&bin, &path, clients, auth))
        .await
        .expect("the start task does not panic");
    match started {
        Ok(server) => {
            println!("  store sqlite://{}/bench.db, serving on {}", dir.display(), server.addr);
            if settings.auth {
                match server.check_auth().await {
                    Ok(status) => println!("  authentication checked: a request without a token answers {status}"),
                    Err(why) => results.failed("cfgledger with authentication", why),
                }
            }
            Some(server)
        }
        Err(why) => {
            results.failed("cfgledger", why);
            None
        }
    }
}

async fn start_etcd(settings: &Settings, dir: PathBuf, results: &mut Results) -> Option<etcd::Etcd> {
    let Some(bin) = &settings.etcd_bin else {
        println!(
            "etcd: not found (neither ETCD_BIN nor `etcd` on the PATH; Debian: `apt-get install etcd-server`): \
             measuring cfgledger only"
        );
        return None;
    };
    println!("etcd: {}", bin.display());
    match etcd::Etcd::start(bin, &dir).await {
        Ok(server) => {
            println!("  {} (pid {})", server.version, server.pid());
            println!(
                "  client: etcd's native gRPC API through the etcd-client crate, one client (HTTP/2 connection) each, \
                 run by the etcd peer (benches/etcd-peer)"
            );
            println!("  data in {}, default durability (WAL fsynced before a put is acknowledged)", dir.display());
            Some(server)
        }
        Err(why) => {
            results.failed("etcd", why);
            None
        }
    }
}

/// Both systems run during the whole measurement, and each kind of phase runs on one right after the
/// other, so that a disturbance of the shared machine tends to touch both sides of a comparison.
async fn run(settings: Settings) -> bool {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "cfgledger load harness: cfgledger and etcd side by side, clients and servers on this machine ({cores} cores)"
    );
    if settings.auth {
        println!("  authentication: ON (cfgledger: a platform_admin bearer token per connection, distinct subjects)");
    } else {
        println!(
            "  !!! authentication: OFF (LOAD_AUTH=off, AUTH_REQUIRED=false): development figures, not the issue's"
        );
    }
    println!(
        "  each throughput phase: {} s warm-up, then {} s measured; watch: {} changes one at a time, {} ms apart",
        settings.window.warmup.as_secs(),
        settings.window.measured.as_secs(),
        settings.watch_changes,
        measure::WATCH_PACE.as_millis()
    );
    let window = settings.window;
    let dirs = [(); 2].map(|_| tempfile::tempdir().expect("a temp dir for a store"));
    let (mut cfg, mut etcd) = (Results::default(), Results::default());
    let mut cfg_server = start_cfgledger(&settings, dirs[0].path().to_path_buf(), &mut cfg).await;
    let mut etcd_server = start_etcd(&settings, dirs[1].path().to_path_buf(), &mut etcd).await;

    println!("\n== reads of one key, {GET_CLIENTS} connections ==");
    if let Some(server) = &cfg_server {
        let label = "cfgledger GET /admin/config/LOG_LEVEL";
        let measured = measured(server.getters(GET_CLIENTS).await, window, server.pid()).await;
        cfg.get = phase(label, measured, &mut cfg).await;
    }
    // The reference serves the very document cfgledger answered, so that both send the same bytes.
    let item = match &cfg_server {
        Some(server) => match server.get_item().await {
            Ok(item) => Some(item),
            Err(why) => {
                cfg.failed("the bare axum reference", format!("cannot read the item it serves: {why}"));
                None
            }
        },
        None => None,
    };
    // The same-item reference runs only when the item was read; the 56-byte summary runs regardless.
    let same_item =
        item.as_deref().map(|body| (Some(body), "bare axum handler, a map lookup of the same item (the reference)"));
    let summary = (None, "bare axum handler, a map lookup of a 56-byte summary (the earlier reference)");
    for (body, label) in same_item.into_iter().chain([summary]) {
        match bare::Bare::start(body) {
            Ok(reference) => {
                let measured = measured(reference.getters(GET_CLIENTS).await, window, reference.pid()).await;
                let result = phase(label, measured, &mut cfg).await;
                match body {
                    Some(_) => cfg.get_bare = result,
                    None => cfg.get_bare_small = result,
                }
                reference.stop();
            }
            Err(why) => cfg.failed("the bare axum reference", why),
        }
    }
    if let Some(server) = etcd_server.as_mut() {
        let label = "etcd range, linearizable (its default)";
        etcd.get = phase(label, server.get(GET_CLIENTS, false, window).await, &mut etcd).await;
        let label = "etcd range, serializable";
        etcd.get_serializable = phase(label, server.get(GET_CLIENTS, true, window).await, &mut etcd).await;
    }

    println!("\n== durable writes of one key ==");
    let cfg_writes = match &cfg_server {
        Some(server) => match server.probe_put().await {
            Ok(()) => true,
            Err(why) => {
                cfg.failed("cfgledger PUT and watch", format!("a probe PUT failed: {why}"));
                false
            }
        },
        None => false,
    };
    for clients in PUT_CLIENTS {
        if let Some(server) = cfg_server.as_ref().filter(|_| cfg_writes) {
            let label = format!("cfgledger PUT /admin/config/TOOL_RATE_LIMIT, {clients} clients");
            let measured = measured(server.putters(clients).await, window, server.pid()).await;
            if let Some(p) = phase(&label, measured, &mut cfg).await {
                cfg.puts.push((clients, p));
            }
        }
        if cfg_writes {
            let dir = tempfile::tempdir().expect("a temp dir for the reference store");
            let (warmup, measured) = (window.warmup, window.measured);
            let path = dir.path().to_path_buf();
            let (rate, p99) =
                tokio::task::spawn_blocking(move || store_only::group_commit(&path, clients, warmup, measured))
                    .await
                    .expect("the reference run does not panic");
            println!("store alone (Ledger::execute, no HTTP), {clients} threads: {rate:.0} changes/s, p99 {p99:.2} ms");
            cfg.store_only.push((clients, rate, p99));
            tokio::time::sleep(PAUSE).await;
        }
        if let Some(server) = etcd_server.as_mut() {
            let label = format!("etcd put, {clients} clients");
            if let Some(p) = phase(&label, server.put(clients, window).await, &mut etcd).await {
                etcd.puts.push((clients, p));
            }
        }
    }

    println!("\n== change → watcher delivery, one change at a time ==");
    let changes = settings.watch_changes;
    if let Some(server) = cfg_server.as_ref().filter(|_| cfg_writes) {
        let label = "cfgledger PUT → /admin/config/watch (SSE)";
        let measured = match server.watch().await {
            Ok((writer, events)) => Ok(measure::delivery(writer, events, changes, server.pid()).await),
            Err(why) => Err(why),
        };
        watch_phase(label, measured, &mut cfg);
    }
    if let Some(server) = etcd_server.as_mut() {
        watch_phase("etcd put → watch", server.watch(changes).await, &mut etcd);
    }

    println!();
    if let Some(server) = cfg_server.as_mut() {
        println!("{}", server.stop());
    }
    if let Some(server) = etcd_server.as_mut() {
        println!("{}", server.stop().await);
    }
    report::table(&cfg, &etcd, settings.etcd_bin.is_some());
    let disturbed = cfg.disturbed() + etcd.disturbed();
    if disturbed > 0 {
        println!(
            "\n!!! other processes used more than {} cores during {disturbed} phase(s) (marked ~): rerun on a quiet machine",
            measure::DISTURBED
        );
    }
    let errors = cfg.error_count() + etcd.error_count();
    if errors > 0 {
        println!("\n!!! THIS RUN HAD {errors} ERRORS OR UNMEASURED PHASES (see the !!! lines above): its figures are not clean");
    }
    errors == 0
}

fn main() {
    bare::serve_if_asked();
    if !common::full_run() {
        println!("load: starts servers and runs for minutes; only under `cargo bench --bench load`");
        return;
    }
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the client runtime starts");
    let clean = runtime.block_on(run(settings));
    if !clean {
        std::process::exit(1);
    }
}
