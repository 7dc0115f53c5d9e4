//! The resource registry's export and import at issue 5's scale, 10,000 entities spread over the six kinds
//! (mostly tools, a quarter of them with bearer credentials, gateways with basic credentials, resources,
//! prompts, roots, and servers that reference tools, resources and prompts):
//! - export (`registry::export::document`, target < 200 ms), alone and with its serialization to JSON;
//! - import dry run into a fresh empty store (`parse_import` + `plan_json`, target < 1 s);
//! - import apply into a fresh empty store (`parse_import` + `Ledger::execute` of one batch, target < 1 s),
//!   on SQLite in a temp dir on the real file system (the default) and on the in-memory store;
//! - the refusal of 5,000 tools whose last one is invalid, which must leave the store unchanged (asserted);
//! - the same registry in MCP Gateway's layout: its export (re-sealed under a gateway's secret) and its
//!   import dry run and apply (opened with that secret), next to cfgledger's layout in the same run.
//!
//! Every store is opened with the same `AUTH_ENCRYPTION_SECRET` but gets its own salt, so an import re-keys
//! the exported credentials (one Argon2id derivation for the source key, then open and seal each), as an
//! import from another store does. Setup (building the source store, opening fresh stores) is not timed, nor
//! is freeing what a timed step returns (a 10,000-entity `Value` takes tens of ms to drop): the export's
//! drop is timed apart and printed. After each apply the bench waits, untimed, for the background checkpoint
//! of the imported state (10,000 events pass `SNAPSHOT_INTERVAL`), so that one run's checkpoint does not take
//! a core from the next run's timing. Criterion reports each shape; a timed loop prints min, median and max
//! per shape to stdout, and the parts of the export and of the apply.

mod common;
use common::{actor, full_run};

use cfgledger::store::StoreUrl;
use cfgledger::usecase::registry::export::{self, ExportRequest, Filter, Format};
use cfgledger::usecase::registry::import as registry_import;
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions, Outcome, WriteContext};
use cfgledger_events::registry_import::ConflictStrategy;
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{Cause, ResourceKind};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "bench-secret-0123456789abcdef-0123456789";
/// The target gateway's AUTH_ENCRYPTION_SECRET for the exports in MCP Gateway's layout.
const GATEWAY_SECRET: &str = "gateway-bench-secret-9f8e7d6c5b4a3210";
/// Issue 5's scale, and what `cargo test --benches` runs instead so that it takes seconds.
const ENTITIES: (usize, usize) = (10_000, 200);
const REFUSED_TOOLS: (usize, usize) = (5_000, 100);

fn sized(full: bool, (big, small): (usize, usize)) -> usize {
    if full {
        big
    } else {
        small
    }
}

/// Where fresh stores go: a temp dir on the real file system, one store file per open.
struct Stores {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl Stores {
    fn new() -> Stores {
        Stores { dir: tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir"), next: AtomicUsize::new(0) }
    }

    /// A new empty SQLite store in a directory of its own, which [`Stores::discard`] removes.
    fn sqlite(&self) -> (Ledger, PathBuf) {
        let path = self.dir.path().join(format!("store-{}", self.next.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&path).expect("a store directory");
        (open(StoreUrl::Sqlite(path.join("registry.db"))), path)
    }

    /// Drops `ledger` and deletes its files, so that runs do not fill the disk.
    fn discard(&self, ledger: Ledger, path: &Path) {
        drop(ledger);
        std::fs::remove_dir_all(path).expect("a store directory is removed");
    }
}

fn open(url: StoreUrl) -> Ledger {
    let mut opts = OpenOptions::new(url, suite_catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    Ledger::open(opts).expect("the bench store opens").0
}

fn import_ctx(digest: &str) -> WriteContext {
    WriteContext {
        actor: actor(),
        cause: Cause::Import { digest: digest.into(), via: "import".into() },
        reason: None,
        bypass: false,
    }
}

/// How many entities of each kind a registry of `total` holds: mostly tools, as a gateway's registry is.
fn mix(total: usize) -> Vec<(ResourceKind, usize)> {
    let roots = (total / 1000).max(1);
    let gateways = (total * 9 / 1000).max(1);
    let resources = total * 8 / 100;
    let prompts = total * 8 / 100;
    let servers = (total * 4 / 100).max(1);
    let tools = total - roots - gateways - resources - prompts - servers;
    vec![
        (ResourceKind::Roots, roots),
        (ResourceKind::Gateways, gateways),
        (ResourceKind::Tools, tools),
        (ResourceKind::Resources, resources),
        (ResourceKind::Prompts, prompts),
        (ResourceKind::Servers, servers),
    ]
}

/// Tool `i`; every fourth carries bearer credentials, which the store seals.
fn tool(i: usize) -> Value {
    let mut tool = json!({
        "name": format!("tool-{i:05}"),
        "url": format!("https://api{}.example.com/v1/tools/{i}", i % 50),
        "integration_type": "REST",
        "request_type": "POST",
        "description": format!("Looks up the records of service {} matching a query (bench tool {i})", i % 50),
        "headers": {"X-Team": format!("team-{}", i % 20)},
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query"],
        },
        "annotations": {"readOnlyHint": i % 2 == 0},
        "tags": ["bench", format!("team-{}", i % 20)],
        "is_active": true,
    });
    if i % 4 == 0 {
        tool["auth_type"] = json!("bearer");
        tool["auth_token"] = json!(format!("bench-token-{i:05}-0123456789abcdef"));
    }
    tool
}

/// Entity `i` of `kind` in a registry with `tools` tools, `resources` resources and `prompts` prompts (what
/// servers reference).
fn entity(kind: ResourceKind, i: usize, (tools, resources, prompts): (usize, usize, usize)) -> Value {
    match kind {
        ResourceKind::Tools => tool(i),
        ResourceKind::Roots => json!({"uri": format!("file:///bench/root-{i}"), "name": format!("root {i}")}),
        ResourceKind::Gateways => {
            let mut gateway = json!({
                "name": format!("gateway-{i:03}"),
                "url": format!("https://gateway{i}.example.com/sse"),
                "description": format!("Upstream gateway {i}"),
                "transport": "SSE",
                "capabilities": {"tools": {"listChanged": true}},
                "tags": ["bench"],
                "is_active": true,
            });
            if i % 2 == 0 {
                gateway["auth_type"] = json!("basic");
                gateway["auth_username"] = json!(format!("user{i}"));
                gateway["auth_password"] = json!(format!("bench-password-{i}"));
            }
            gateway
        }
        ResourceKind::Resources => json!({
            "uri": format!("file:///bench/docs/{i:05}.md"),
            "name": format!("doc-{i:05}"),
            "description": format!("Runbook {i}"),
            "mime_type": "text/markdown",
            "content": format!("# Runbook {i}\n\nRestart the service, then check the dashboard for errors."),
            "tags": ["bench", "docs"],
            "is_active": true,
        }),
        ResourceKind::Prompts => json!({
            "name": format!("prompt-{i:05}"),
            "template": "Summarize the following text in {{ words }} words:\n\n{{ text }}",
            "description": format!("Summary prompt {i}"),
            "input_schema": {"type": "object", "properties": {"text": {"type": "string"}, "words": {"type": "integer"}}},
            "tags": ["bench"],
            "is_active": true,
        }),
        ResourceKind::Servers => json!({
            "name": format!("server-{i:04}"),
            "description": format!("Virtual server {i}"),
            "associated_tools": (0..20).map(|j| format!("tool-{:05}", (i * 20 + j) % tools)).collect::<Vec<_>>(),
            "associated_resources": (0..2)
                .map(|j| format!("file:///bench/docs/{:05}.md", (i * 2 + j) % resources.max(1)))
                .take(resources.min(2))
                .collect::<Vec<_>>(),
            "associated_prompts": (0..2)
                .map(|j| format!("prompt-{:05}", (i * 2 + j) % prompts.max(1)))
                .take(prompts.min(2))
                .collect::<Vec<_>>(),
            "tags": ["bench"],
            "is_active": true,
        }),
    }
}

/// An import document holding a registry of `total` entities with plaintext credentials, as an operator
/// would write it by hand (no encryption section: the importing store seals them).
fn registry_document(total: usize) -> Value {
    let counts = mix(total);
    let count = |kind| counts.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
    let sizes = (count(ResourceKind::Tools), count(ResourceKind::Resources), count(ResourceKind::Prompts));
    let entities: serde_json::Map<String, Value> = counts
        .iter()
        .map(|(kind, n)| (kind.as_str().to_string(), (0..*n).map(|i| entity(*kind, i, sizes)).collect()))
        .collect();
    with_digest(Value::Object(entities))
}

fn with_digest(entities: Value) -> Value {
    json!({"digest": export::digest(&entities, &Value::Null), "entities": entities})
}

/// The bench's documents carry settings and ask for them, as `--with-settings` does.
fn with_settings() -> registry_import::ImportOptions {
    registry_import::ImportOptions { with_settings: true, allow_edited: false, names: &registry_import::CLI_OPTIONS }
}

/// `parse_import` and the apply of its command, each timed.
fn import(ledger: &Ledger, doc: &Value) -> Result<(Outcome, Duration, Duration), Error> {
    let t0 = Instant::now();
    let parsed = registry_import::parse(ledger, doc, ConflictStrategy::Update, None, None, &with_settings())?;
    let parse = t0.elapsed();
    let ctx = import_ctx(&parsed.digest);
    let t1 = Instant::now();
    let outcome = ledger.execute(registry_import::command(parsed), ctx)?;
    Ok((outcome, parse, t1.elapsed()))
}

/// Waits, untimed, for the checkpoint a commit past `SNAPSHOT_INTERVAL` hands to the ledger's background
/// thread (a fresh store's first one comes at that seq), so that writing one run's 10,000-entity state does
/// not take a core from the next run's timing. Returns how long the checkpoint took to appear, `None` when
/// none was due or none appeared within 30 s.
fn settle(ledger: &Ledger, head: u64) -> Option<Duration> {
    let interval = ledger.settings().get_i64("cfgledger:SNAPSHOT_INTERVAL").and_then(|i| u64::try_from(i).ok())?;
    if interval == 0 || head < interval {
        return None;
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if ledger.store().snapshot_seqs().expect("the checkpoints list").last() >= Some(&head) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn entity_count(ledger: &Ledger) -> usize {
    let snap = ledger.snapshot();
    ResourceKind::ALL.into_iter().map(|k| snap.state.resources(k).count()).sum()
}

/// Entities of an export document that carry sealed credentials.
fn sealed_count(doc: &cfgledger::model::ExportDocument) -> usize {
    doc.entities.values().flatten().filter(|e| e.get("auth_value").is_some_and(Value::is_string)).count()
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One line of min, median and max over `runs`.
fn report(label: &str, mut runs: Vec<Duration>, target: &str) {
    runs.sort_unstable();
    println!(
        "registry {label}: {} runs; min {:.1} ms, median {:.1} ms, max {:.1} ms ({target})",
        runs.len(),
        ms(runs[0]),
        ms(quantile(&runs, 0.5)),
        ms(runs[runs.len() - 1]),
    );
}

/// Runs `f` `n` times and returns each run's time, without the drop of what it returns.
fn timed<T>(n: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t0 = Instant::now();
            let out = f();
            let took = t0.elapsed();
            drop(out);
            took
        })
        .collect()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort_unstable();
    quantile(&runs, 0.5)
}

/// Opens a fresh empty store, with the directory to remove after it when it has one.
type FreshStore<'a> = &'a dyn Fn() -> (Ledger, Option<PathBuf>);

/// Makes a valid tool invalid.
type Spoil = fn(&mut serde_json::Map<String, Value>);

/// One import into a fresh store: `parse_import`, `execute`, and how long after it the background
/// checkpoint appeared (untimed).
struct Applied {
    parse: Duration,
    execute: Duration,
    checkpoint: Option<Duration>,
}

/// Imports `doc` into a fresh store from `fresh` per iteration, timing only the import; checks each one
/// created `expected` entities.
fn apply_runs(n: u64, doc: &Value, expected: usize, fresh: FreshStore<'_>, stores: &Stores) -> Vec<Applied> {
    (0..n)
        .map(|_| {
            let (ledger, path) = fresh();
            let (outcome, parse, execute) = import(&ledger, doc).expect("the import applies");
            assert!(outcome.changed(), "the import appends a batch");
            assert_eq!(entity_count(&ledger), expected, "every entity is imported");
            let checkpoint = settle(&ledger, outcome.head.seq);
            match path {
                Some(path) => stores.discard(ledger, &path),
                None => drop(ledger),
            }
            Applied { parse, execute, checkpoint }
        })
        .collect()
}

fn registry_benches(c: &mut Criterion) {
    let full = full_run();
    let total = sized(full, ENTITIES);
    let stores = Stores::new();

    // The source store, filled with one import (sealing its credentials), and its export.
    let (source, _) = stores.sqlite();
    let t0 = Instant::now();
    let (outcome, _, _) = import(&source, &registry_document(total)).expect("the source registry imports");
    assert_eq!(entity_count(&source), total, "the source store holds every entity");
    settle(&source, outcome.head.seq);
    let doc = export::document(&source, &Filter::default(), "bench", source.now()).expect("the registry exports");
    let bytes = serde_json::to_string(&doc).expect("the export serializes").len();
    println!(
        "registry: source store of {total} entities ({}) built in {:.1} s; export of {:.1} MB, {} entities with \
         sealed credentials",
        mix(total).iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "),
        t0.elapsed().as_secs_f64(),
        bytes as f64 / 1e6,
        sealed_count(&doc),
    );
    assert!(sealed_count(&doc) > 0, "the export carries sealed credentials to re-key");
    // The importing side reads the document as a client sends it: JSON.
    let doc = serde_json::to_value(&doc).expect("the export is JSON");

    let mut group = c.benchmark_group("registry");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(if full { 10 } else { 1 }));

    // 1. Export: the document, and the document serialized as the API sends it (compact).
    let export_doc = || export::document(&source, &Filter::default(), "bench", source.now()).expect("exports");
    group.bench_function(format!("export/document/{total}"), |b| b.iter_with_large_drop(export_doc));
    group.bench_function(format!("export/document_and_json/{total}"), |b| {
        b.iter_with_large_drop(|| {
            let doc = export_doc();
            let text = serde_json::to_string(&doc).expect("serializes");
            (doc, text)
        })
    });
    let (mut build, mut serialize, mut pretty, mut free) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..if full { 20 } else { 2 } {
        let t0 = Instant::now();
        let doc = export_doc();
        let t1 = Instant::now();
        let text = serde_json::to_string(&doc).expect("serializes");
        let t2 = Instant::now();
        let text_pretty = serde_json::to_string_pretty(&doc).expect("serializes");
        let t3 = Instant::now();
        drop((doc, text, text_pretty));
        free.push(t3.elapsed());
        build.push(t1 - t0);
        serialize.push(t2 - t0);
        pretty.push(t3 - t2);
    }
    report(&format!("export/document {total} entities"), build, "target < 200 ms");
    report(
        &format!("export/document + serde_json::to_string {total} entities"),
        serialize,
        &format!(
            "target < 200 ms; to_string_pretty instead, as the CLI writes it, adds a median {:.1} ms; dropping the \
             document and its text takes a median {:.1} ms more",
            ms(median(pretty)),
            ms(median(free))
        ),
    );

    // 2. Dry run into a fresh empty store (another salt, so the credentials are re-keyed). A dry run changes
    // nothing, so one store serves every iteration.
    {
        let (target, _) = stores.sqlite();
        let head = target.snapshot().head;
        let dry_run = || {
            let parsed = registry_import::parse(&target, &doc, ConflictStrategy::Update, None, None, &with_settings())
                .expect("the import parses");
            let plan = registry_import::plan(&target, &parsed).expect("the import plans");
            (parsed, plan)
        };
        let (_, plan) = dry_run();
        assert_eq!(plan.counts.create, total, "a dry run into an empty store creates everything");
        group.bench_function(format!("import_dry_run/{total}"), |b| b.iter_with_large_drop(dry_run));
        report(
            &format!("import dry run (import::parse + import::plan) {total} entities"),
            timed(if full { 10 } else { 2 }, dry_run),
            "target < 1 s",
        );
        assert_eq!(target.snapshot().head, head, "a dry run changes nothing");
    }

    // 3. Apply into a fresh empty store, SQLite and in memory.
    let sqlite = || {
        let (ledger, path) = stores.sqlite();
        (ledger, Some(path))
    };
    let memory = || (open(StoreUrl::Memory), None);
    let shapes: [(&str, FreshStore<'_>); 2] = [("sqlite", &sqlite), ("memory", &memory)];
    for (name, fresh) in shapes {
        group.bench_function(format!("import_apply/{name}/{total}"), |b| {
            b.iter_custom(|iters| {
                apply_runs(iters, &doc, total, fresh, &stores).iter().map(|a| a.parse + a.execute).sum()
            })
        });
        let runs = apply_runs(if full { 10 } else { 2 }, &doc, total, fresh, &stores);
        let checkpoints: Vec<Duration> = runs.iter().filter_map(|a| a.checkpoint).collect();
        report(
            &format!("import apply {name} (parse_import + execute) {total} entities"),
            runs.iter().map(|a| a.parse + a.execute).collect(),
            &format!(
                "target < 1 s; median parse_import {:.1} ms, execute {:.1} ms; {}",
                ms(median(runs.iter().map(|a| a.parse).collect())),
                ms(median(runs.iter().map(|a| a.execute).collect())),
                if checkpoints.is_empty() {
                    "no checkpoint was due".to_string()
                } else {
                    format!(
                        "the background checkpoint of the imported state appeared a median {:.1} ms after the \
                         import returned, untimed",
                        ms(median(checkpoints))
                    )
                }
            ),
        );
    }

    // 4. An import whose last tool is invalid is refused whole and leaves the store as it was: once with the
    // identity missing (refused while the document is parsed) and once with a bad URL (refused by the plan
    // the writer makes, after the tools before it were planned).
    {
        let n = sized(full, REFUSED_TOOLS);
        let (target, _) = stores.sqlite();
        let refusals: [(&str, Spoil); 2] = [
            ("last tool without a name", |t| {
                t.remove("name");
            }),
            ("last tool with a bad url", |t| {
                t.insert("url".into(), json!("not a url"));
            }),
        ];
        for (label, spoil) in refusals {
            let mut tools: Vec<Value> = (0..n).map(tool).collect();
            spoil(tools.last_mut().and_then(Value::as_object_mut).expect("the last tool is an object"));
            let bad = with_digest(json!({ "tools": tools }));
            let head = target.store().head().expect("the head reads");
            let refuse = || {
                let Err(Error::Rejected(rejection)) = import(&target, &bad) else {
                    panic!("an import whose last tool is invalid must be refused");
                };
                assert!(
                    rejection.message.contains(&format!("entity {} in 'tools'", n - 1)),
                    "the refusal names the invalid entity: {}",
                    rejection.message
                );
                assert_eq!(target.store().head().expect("the head reads"), head, "the log is unchanged");
                assert_eq!(target.snapshot().head, head, "the published state is unchanged");
                assert_eq!(entity_count(&target), 0, "no entity was imported");
            };
            refuse();
            group.bench_function(format!("import_refused/{}/{n}", label.replace(' ', "_")), |b| b.iter(refuse));
            report(
                &format!("import refused, {label}, {n} tools (store unchanged, asserted)"),
                timed(if full { 10 } else { 2 }, refuse),
                "for reference",
            );
        }
    }

    // 5. MCP Gateway's own layout, beside cfgledger's: the export re-seals every credential under the target
    // gateway's secret (AES-256-GCM), and the import opens each with it and seals it again under the store's
    // key, reading the gateway's forms (tags as objects, tool_ids by name).
    {
        let request = ExportRequest {
            filter: Filter { include_dependencies: true, ..Filter::default() },
            format: Format::McpGateway,
            target_secret: Some(zeroize::Zeroizing::new(GATEWAY_SECRET.to_string())),
        };
        let gateway_export = || export::export(&source, &request, "bench", source.now()).expect("exports");
        group.bench_function(format!("export_mcpgateway/document_and_json/{total}"), |b| {
            b.iter_with_large_drop(|| {
                let answer = gateway_export();
                let text = serde_json::to_string(&answer).expect("serializes");
                (answer, text)
            })
        });
        report(
            &format!("export mcpgateway layout (document + re-seal + serde_json::to_string) {total} entities"),
            timed(if full { 10 } else { 2 }, || {
                let answer = gateway_export();
                let text = serde_json::to_string(&answer).expect("serializes");
                (answer, text)
            }),
            "target < 200 ms, as cfgledger's layout",
        );
        let gateway_doc = serde_json::to_value(gateway_export()).expect("the export is JSON");
        let options = registry_import::ImportOptions {
            with_settings: false,
            allow_edited: false,
            names: &registry_import::CLI_OPTIONS,
        };
        let (target, _) = stores.sqlite();
        let parse = |ledger: &Ledger| {
            registry_import::parse(ledger, &gateway_doc, ConflictStrategy::Update, None, Some(GATEWAY_SECRET), &options)
                .expect("the gateway's layout parses")
        };
        let dry_run = || {
            let parsed = parse(&target);
            let plan = registry_import::plan(&target, &parsed).expect("the import plans");
            (parsed, plan)
        };
        let (parsed, plan) = dry_run();
        assert_eq!(plan.counts.create, total, "a dry run into an empty store creates everything");
        assert!(parsed.rekeyed > 0, "the gateway's credentials are opened and sealed again");
        group.bench_function(format!("import_mcpgateway_dry_run/{total}"), |b| b.iter_with_large_drop(dry_run));
        report(
            &format!("import dry run mcpgateway layout {total} entities"),
            timed(if full { 10 } else { 2 }, dry_run),
            "target < 1 s, as cfgledger's layout",
        );
        let runs: Vec<Duration> = (0..if full { 10 } else { 2 })
            .map(|_| {
                let (ledger, path) = stores.sqlite();
                let t0 = Instant::now();
                let parsed = parse(&ledger);
                let ctx = import_ctx(&parsed.digest);
                let outcome = ledger.execute(registry_import::command(parsed), ctx).expect("the import applies");
                let took = t0.elapsed();
                assert_eq!(entity_count(&ledger), total, "every entity is imported");
                settle(&ledger, outcome.head.seq);
                stores.discard(ledger, &path);
                took
            })
            .collect();
        report(
            &format!("import apply sqlite mcpgateway layout {total} entities"),
            runs,
            "target < 1 s, as cfgledger's layout",
        );
    }
    group.finish();
}

criterion_group!(benches, registry_benches);
criterion_main!(benches);
