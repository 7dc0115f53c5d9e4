//! Copying a store of 1,000,000 events (issue 7), on SQLite in a temp dir and on the local PostgreSQL:
//! 1. `clone::mirror` SQLite → SQLite, into a fresh empty file, 3 runs (target ≥ 200,000 events/s);
//! 2. `clone::mirror` SQLite → PostgreSQL, into a fresh database, 3 runs (same target);
//! 3. the backup path: `clone::export_jsonl` to a file, then `clone::read_jsonl` + `clone::restore` into a
//!    fresh SQLite file, each timed;
//! 4. the replay clone as `cfgledger clone` runs it: a fresh SQLite target opened as a `Ledger`,
//!    `clone::replay_plan`, then `Command::Rollback` with a `Cause::Clone` context, once on the source as
//!    built (no checkpoint: the plan folds the whole log) and once after the source was opened as a `Ledger`
//!    (which writes a checkpoint at its head, as a store the product wrote always has one near its head);
//! 5. where a mirror's time goes: each stage timed alone (wall and on-CPU), chunk by chunk and without the
//!    pipeline: SQLite `read_after`, the chain check the mirror does, the store port's append, the same rows
//!    through bare rusqlite (the log's schema; with a 256 MiB page cache; without the secondary indexes, built
//!    after the load), a page copy (`VACUUM INTO`, then the copy's chain read back and checked); and on
//!    PostgreSQL the store's append alone, the same `unnest` INSERT into a table with its primary key only,
//!    and `COPY FROM STDIN BINARY` with the secondary indexes built after it, with the server's CPU.
//!
//! The source is built once per run: a `Ledger::open` creates it (genesis), then records made by
//! `cfgledger_events::build_batch` go straight to the store port in large transactions, each event its own
//! batch as the API writes them, until the log holds exactly 1,000,000 events. The catalog is the built-in
//! one plus 300 writable keys (ints, strings, bools; a few hot, a long tail) and 20 sensitive ones; the log
//! opens with 150 entities of every kind (half the tools and gateways with sealed credentials, servers naming
//! tools, resources and prompts), then mixes plain changes (~87%), sealed changes (~4%), resets (~1%) and
//! entity updates (~8%; a quarter of those to an entity with credentials seal new ones). Every record is also folded while it is
//! built, so the replayed target can be compared with the source's final state, secrets opened on both sides.
//!
//! Timings are printed, never asserted; what is asserted is that each copy ends at the source's head hash
//! and the replay reproduces the source's state. Each timed window also prints where the machine's CPU went
//! (this process, PostgreSQL, everything else), since the bench machine is shared.
//!
//! Run: `cargo bench --bench clone`. `CFGLEDGER_BENCH_PG_URL` names another PostgreSQL server (default
//! `postgres://postgres@127.0.0.1:5432`, trust auth); `CLONE_BENCH_EVENTS` another log length (at least 200).
//! Under `cargo test --benches` the log holds 5,000 events and the PostgreSQL part is skipped.

mod common;
#[path = "propagation/pg.rs"]
mod pg;

use cfgledger::crypto::SecretBox;
use cfgledger::store::{self, EventStore, LogChunks, StoreUrl};
use cfgledger::usecase::clone::{self, ReplayOptions, CHUNK};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::catalog::{CatalogFile, CatalogMode};
use cfgledger_events::event::{ResourceCreated, ResourceUpdated, SettingChanged, SettingReset};
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::{
    build_batch, Batch, Catalog, Cause, Command, Event, Hash, Head, Record, Reload, Sealer, SettingSpec,
    SettingsLookup, StoredValue, Timestamp, ValueType,
};
use cfgledger_projections::SettingsState;
use common::cpu::{self, Cpu};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SECRET: &str = "clone-bench-secret-0123456789abcdef";
/// Mirror throughput the issue asks for.
const TARGET: f64 = 200_000.0;
const PLAIN_KEYS: usize = 300;
/// The first keys, which take half of all plain changes.
const HOT_KEYS: usize = 30;
const SECRET_KEYS: usize = 20;
/// Records per append transaction while the source is built.
const BUILD_CHUNK: usize = 50_000;

fn plain_key(i: usize) -> String {
    format!("BENCH_KEY_{i:03}")
}

fn secret_key(i: usize) -> String {
    format!("BENCH_SECRET_{i:02}")
}

/// The built-in catalog plus the bench's keys: `BENCH_KEY_nnn` (int, string or bool by `nnn % 3`) and
/// `BENCH_SECRET_nn` (sensitive strings), all writable and hot.
fn catalog() -> Catalog {
    let spec = |key: String, ty: ValueType, sensitive: bool| SettingSpec {
        sensitive,
        description: "a key of the clone bench".into(),
        ..SettingSpec::new(&key, ty, "bench", Reload::Hot)
    };
    let mut specs = Vec::new();
    for i in 0..PLAIN_KEYS {
        let ty = match i % 3 {
            0 => ValueType::Int { min: Some(0), max: Some(1_000_000) },
            1 => ValueType::text(None, Some(200)),
            _ => ValueType::Bool,
        };
        specs.push(spec(plain_key(i), ty, false));
    }
    for i in 0..SECRET_KEYS {
        specs.push(spec(secret_key(i), ValueType::text(Some(16), None), true));
    }
    let file = CatalogFile { mode: CatalogMode::Extend, settings: specs, ..CatalogFile::default() };
    builtin().with_file(file).expect("the bench catalog is valid")
}

fn options(path: &Path) -> OpenOptions {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    opts
}

fn open_sqlite(path: &Path) -> std::sync::Arc<dyn EventStore> {
    store::open(&StoreUrl::Sqlite(path.to_path_buf())).expect("the SQLite store opens")
}

/// Removes a SQLite file and its WAL companions (the store must be closed).
fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn file_mb(path: &Path) -> f64 {
    let mut total = 0;
    for suffix in ["", "-wal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        total += std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len());
    }
    total as f64 / 1e6
}

fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The fields that differ between two states of an entity, as `ResourceUpdated.changed` lists them.
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// The time the calling thread has spent on a CPU (`/proc/thread-self/schedstat`, nanoseconds), so that a
/// stage's own cost shows apart from the time it waited for a CPU on a shared machine or for the disk.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall time and on-CPU time of the calling thread, summed over the calls of one stage.
#[derive(Default, Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Duration,
}

impl Spent {
    fn add<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (c, t) = (thread_cpu(), Instant::now());
        let out = f();
        self.wall += t.elapsed();
        self.cpu += thread_cpu().saturating_sub(c);
        out
    }

    fn plus(self, other: Spent) -> Spent {
        Spent { wall: self.wall + other.wall, cpu: self.cpu + other.cpu }
    }

    /// `wall W ms (N events/s), on-CPU C ms`.
    fn show(self, events: u64) -> String {
        let per_cpu = if self.cpu >= Duration::from_millis(10) {
            format!(" ({:.0} events/s per CPU)", rate(events, self.cpu))
        } else {
            " (the work is elsewhere)".to_string()
        };
        format!(
            "wall {:.0} ms ({:.0} events/s), on-CPU {:.0} ms{per_cpu}",
            ms(self.wall),
            rate(events, self.wall),
            ms(self.cpu)
        )
    }
}

/// Runs `f`, returning its result, its wall time, and where the CPU went meanwhile.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, String) {
    let cpu0 = Cpu::now();
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    let cpu1 = Cpu::now();
    (out, took, cpu::describe(&cpu0, &cpu1, "this process"))
}

// ---------------------------------------------------------------------------------------------------------
// The source store.

/// The source as built: where it is, its head, the state its log folds to (for checking the replay), and
/// the key that opens its secrets.
struct Source {
    path: PathBuf,
    head: Head,
    state: SettingsState,
    sealer: SecretBox,
}

/// The entities the log starts with, as API input (credentials in plaintext, sealed by `normalize`).
fn entity_inputs(rng: &mut StdRng) -> Vec<(ResourceKind, Map<String, Value>)> {
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    };
    let mut out = Vec::new();
    for i in 0..5 {
        out.push((
            ResourceKind::Roots,
            obj(json!({"uri": format!("file:///srv/root{i}"), "name": format!("root {i}")})),
        ));
    }
    for i in 0..10 {
        let mut g = obj(json!({
            "name": format!("gateway-{i:02}"),
            "url": format!("https://gw{i}.example.com/mcp"),
            "description": format!("upstream gateway {i}"),
            "transport": "SSE",
            "tags": ["bench", format!("zone{}", i % 3)],
            "is_active": true,
        }));
        if i % 2 == 0 {
            g.insert("auth_type".into(), json!("bearer"));
            g.insert("auth_token".into(), json!(format!("gw-token-{i}-{:016x}", rng.gen::<u64>())));
        }
        out.push((ResourceKind::Gateways, g));
    }
    for i in 0..60 {
        let mut t = obj(json!({
            "name": format!("tool-{i:03}"),
            "url": format!("https://tools.example.com/api/t{i}"),
            "integration_type": "REST",
            "request_type": "POST",
            "description": format!("tool number {i}"),
            "headers": {"X-Bench": "1"},
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}}},
            "tags": ["bench", format!("group{}", i % 5)],
            "is_active": true,
        }));
        match i % 4 {
            0 => {
                t.insert("auth_type".into(), json!("basic"));
                t.insert("auth_username".into(), json!(format!("svc-{i}")));
                t.insert("auth_password".into(), json!(format!("pw-{:016x}", rng.gen::<u64>())));
            }
            1 => {
                t.insert("auth_type".into(), json!("bearer"));
                t.insert("auth_token".into(), json!(format!("tok-{:016x}", rng.gen::<u64>())));
            }
            _ => {}
        }
        out.push((ResourceKind::Tools, t));
    }
    for i in 0..30 {
        out.push((
            ResourceKind::Resources,
            obj(json!({
                "uri": format!("res://bench/doc{i}"),
                "name": format!("document {i}"),
                "mime_type": "text/plain",
                "content": format!("content of document {i}"),
                "tags": ["bench"],
            })),
        ));
    }
    for i in 0..30 {
        out.push((
            ResourceKind::Prompts,
            obj(json!({
                "name": format!("prompt-{i:02}"),
                "template": format!("Summarise {{{{text}}}} in the style {i}"),
                "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
                "tags": ["bench"],
            })),
        ));
    }
    for i in 0..15 {
        let tools: Vec<String> = (0..4).map(|j| format!("tool-{:03}", (i * 4 + j) % 60)).collect();
        let resources: Vec<String> = (0..2).map(|j| format!("res://bench/doc{}", (i * 2 + j) % 30)).collect();
        let prompts: Vec<String> = (0..2).map(|j| format!("prompt-{:02}", (i * 2 + j) % 30)).collect();
        out.push((
            ResourceKind::Servers,
            obj(json!({
                "name": format!("server-{i:02}"),
                "description": format!("virtual server {i}"),
                "associated_tools": tools,
                "associated_resources": resources,
                "associated_prompts": prompts,
                "is_active": true,
            })),
        ));
    }
    out
}

/// The next event of the log: an entity creation while `creations` lasts, then the mix.
fn next_event(
    rng: &mut StdRng,
    n: u64,
    state: &SettingsState,
    sealer: &SecretBox,
    creations: &mut std::vec::IntoIter<(ResourceKind, Map<String, Value>)>,
    entities: &mut Vec<(ResourceKind, String)>,
) -> Event {
    if let Some((kind, input)) = creations.next() {
        let fields = resource::normalize(kind, input, None, sealer).expect("a bench entity normalizes");
        let name = resource::identity(kind, &fields).expect("a bench entity has an identity");
        entities.push((kind, name.clone()));
        return Event::ResourceCreated(ResourceCreated { kind, name, fields: Value::Object(fields) });
    }
    let roll = rng.gen_range(0..1000);
    if roll < 40 {
        let key = secret_key(rng.gen_range(0..SECRET_KEYS));
        let plaintext =
            serde_json::to_vec(&json!(format!("secret-{n:09}-{:016x}", rng.gen::<u64>()))).expect("a string encodes");
        let sealed = Sealer::seal(sealer, &key, &plaintext).expect("the value seals");
        let previous = state.current(&key).cloned();
        return Event::SettingChanged(SettingChanged { key, value: StoredValue::Sealed(sealed), previous });
    }
    if roll < 120 && !entities.is_empty() {
        let (kind, name) = entities[rng.gen_range(0..entities.len())].clone();
        let existing = state.resource(kind, &name).expect("a created entity exists").clone();
        let mut input = existing.clone();
        input.insert("description".into(), json!(format!("revision {n}")));
        if roll % 7 == 0 && input.contains_key("is_active") {
            let active = input.get("is_active").and_then(Value::as_bool).unwrap_or(true);
            input.insert("is_active".into(), json!(!active));
        }
        if kind.has_auth() && input.contains_key("auth_type") && rng.gen_range(0..4) == 0 {
            input.remove("auth_value");
            input.insert("auth_type".into(), json!("bearer"));
            input.insert("auth_token".into(), json!(format!("tok-{n:09}-{:016x}", rng.gen::<u64>())));
        }
        let fields = resource::normalize(kind, input, Some(&existing), sealer).expect("an update normalizes");
        let changed = diff(&existing, &fields);
        return Event::ResourceUpdated(ResourceUpdated { kind, name, fields: Value::Object(fields), changed });
    }
    let k = if rng.gen_bool(0.5) { rng.gen_range(0..HOT_KEYS) } else { rng.gen_range(0..PLAIN_KEYS) };
    let key = plain_key(k);
    let previous = state.current(&key).cloned();
    if roll < 130 && previous.is_some() {
        return Event::SettingReset(SettingReset { key, previous });
    }
    let value = match k % 3 {
        0 => {
            let mut v = rng.gen_range(0..=1_000_000_i64);
            if previous == Some(StoredValue::Plain(json!(v))) {
                v = (v + 1) % 1_000_001;
            }
            json!(v)
        }
        1 => json!(format!("value {n} of {key}")),
        _ => json!(previous != Some(StoredValue::Plain(json!(true)))),
    };
    Event::SettingChanged(SettingChanged { key, value: StoredValue::Plain(value), previous })
}

/// Creates the store at `path` and appends events until its log holds `events`.
fn build_source(path: &Path, events: u64) -> Source {
    let started = Instant::now();
    let (ledger, _) = Ledger::open(options(path)).expect("the source store is created");
    let snap = ledger.snapshot();
    let mut state = snap.state.clone();
    let mut head = snap.head;
    let genesis_time = snap.head_time;
    drop(snap);
    drop(ledger);
    let info = state.store.as_ref().expect("the genesis event is in the log").encryption.clone();
    let sealer = SecretBox::derive(SECRET.as_bytes(), &info).expect("the source key derives");
    let store = open_sqlite(path);
    let actor = common::actor();
    let mut rng = StdRng::seed_from_u64(7);
    let mut creations = entity_inputs(&mut rng).into_iter();
    let mut entities = Vec::new();
    let mut records: Vec<Record> = Vec::with_capacity(BUILD_CHUNK);
    let mut tail = head;
    let mut kinds: HashMap<&'static str, u64> = HashMap::new();
    while tail.seq < events {
        let n = tail.seq + 1;
        let event = next_event(&mut rng, n, &state, &sealer, &mut creations, &mut entities);
        *kinds.entry(event.kind()).or_default() += 1;
        let cause = if n % 3 == 0 {
            Cause::Cli { command: "config set".into() }
        } else {
            Cause::Api { method: "PUT".into(), path: "/admin/config".into() }
        };
        let batch = Batch { id: format!("{n:032x}"), cause, reason: None };
        let at = Timestamp::from_micros(genesis_time.as_micros() + n as i64);
        for (env, rec) in build_batch(tail, at, &actor, &batch, vec![event]) {
            state.apply(&env);
            tail = Head { seq: rec.seq, hash: rec.hash };
            records.push(rec);
        }
        if records.len() >= BUILD_CHUNK || tail.seq >= events {
            head = store.append(head, &records).expect("the chunk appends");
            records.clear();
        }
    }
    drop(store);
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let entity_count: usize = ResourceKind::ALL.into_iter().map(|k| state.resources(k).count()).sum();
    let sealed = state.entries().filter(|(_, e)| matches!(e.value, StoredValue::Sealed(_))).count();
    println!(
        "clone: built a source of {} events in {:.1} s ({:.0} MB): {}; final state: {} keys with a value ({sealed} \
         sealed), {entity_count} entities",
        head.seq,
        started.elapsed().as_secs_f64(),
        file_mb(path),
        kinds.join(", "),
        state.entries().count(),
    );
    Source { path: path.to_path_buf(), head, state, sealer }
}

// ---------------------------------------------------------------------------------------------------------
// 1 and 2: mirrors.

/// One `clone::mirror` into `target` (freshly opened and empty); its events/s.
fn mirror_once(label: &str, run: usize, source: &dyn EventStore, src: &Source, target: &dyn EventStore) -> f64 {
    assert_eq!(target.head().expect("the target's head").seq, 0, "the target starts empty");
    let (report, took, cpu) = timed(|| clone::mirror(source, target, None, &mut |_, _| {}).expect("the mirror runs"));
    assert_eq!(report.head, src.head, "the mirror ends at the source's head hash");
    assert_eq!(report.copied, src.head.seq);
    let r = rate(report.copied, took);
    println!(
        "clone mirror {label} #{run}: {} events in {:.2} s = {r:.0} events/s; {cpu}",
        report.copied,
        took.as_secs_f64()
    );
    r
}

fn mirror_sqlite(src: &Source, dir: &Path, run: usize) -> f64 {
    let source = open_sqlite(&src.path);
    let path = dir.join(format!("mirror-{run}.db"));
    let t = Instant::now();
    let target = open_sqlite(&path);
    let open = t.elapsed();
    println!("clone mirror sqlite->sqlite #{run}: opening the fresh target (migrations) took {:.0} ms", ms(open));
    let r = mirror_once("sqlite->sqlite", run, source.as_ref(), src, target.as_ref());
    drop(target);
    remove_sqlite(&path);
    r
}

/// One `clone::mirror_file` (the CLI's path for SQLite into a new file: a page copy, then the chain checked
/// on two threads); its events/s.
fn mirror_file_once(src: &Source, dir: &Path, run: usize) -> f64 {
    let path = dir.join(format!("pages-{run}.db"));
    let (head, took, cpu) = timed(|| clone::mirror_file(&src.path, &path).expect("the page mirror runs"));
    assert_eq!(head, src.head, "the page mirror ends at the source's head hash");
    let r = rate(head.seq, took);
    println!(
        "clone mirror sqlite->new sqlite file (page copy) #{run}: {} events in {:.2} s = {r:.0} events/s; {cpu}",
        head.seq,
        took.as_secs_f64()
    );
    remove_sqlite(&path);
    r
}

fn mirror_pg(src: &Source, run: usize) -> Result<f64, String> {
    let source = open_sqlite(&src.path);
    let db = pg::FreshDb::create()?;
    let t = Instant::now();
    let target = store::open(&StoreUrl::Postgres(db.url())).map_err(|e| format!("the PostgreSQL store: {e}"))?;
    println!(
        "clone mirror sqlite->postgres #{run}: opening the fresh database (migrations) took {:.0} ms",
        ms(t.elapsed())
    );
    let r = mirror_once("sqlite->postgres", run, source.as_ref(), src, target.as_ref());
    drop(target);
    drop(db);
    Ok(r)
}

// ---------------------------------------------------------------------------------------------------------
// 5: where a mirror's time goes.

/// What `clone::mirror` checks of each record before it writes it (its private `check_link`).
fn check_link(head: &Head, rec: &Record) {
    assert!(rec.seq == head.seq + 1 && rec.prev_hash == head.hash, "seq {} continues the log", rec.seq);
    assert!(Hash::link(&rec.prev_hash, &rec.envelope) == rec.hash, "seq {} hashes to its hash", rec.seq);
}

const EVENTS_TABLE: &str = "CREATE TABLE events (seq INTEGER PRIMARY KEY, occurred_at INTEGER NOT NULL, \
     kind TEXT NOT NULL, actor TEXT NOT NULL, batch_id TEXT NOT NULL, key TEXT, envelope BLOB NOT NULL, \
     prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32), hash BLOB NOT NULL CHECK (length(hash) = 32));";
const EVENTS_INDEXES: &str = "CREATE INDEX events_by_key ON events (key, seq) WHERE key IS NOT NULL; \
     CREATE INDEX events_by_actor ON events (actor, seq); \
     CREATE INDEX events_by_time ON events (occurred_at, seq); \
     CREATE INDEX events_by_batch ON events (batch_id, seq);";

/// A bare SQLite write path on a new file, set up as the store's write connection is (WAL,
/// `synchronous=FULL`, the same automatic checkpoint threshold), with the log's table; `indexes` says
/// whether its four secondary indexes exist during the load, `cache_mib` sets the page cache (SQLite's
/// default is 2 MiB).
struct Bare {
    label: &'static str,
    path: PathBuf,
    conn: rusqlite::Connection,
    insert: Spent,
    commit: Spent,
    /// The secondary indexes built after the load (the variant without them during it).
    index_after: Option<Spent>,
}

impl Bare {
    fn new(label: &'static str, path: PathBuf, indexes: bool, cache_mib: Option<u32>) -> Bare {
        let conn = rusqlite::Connection::open(&path).expect("a bare SQLite file opens");
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).expect("WAL");
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=65536;").expect("pragmas");
        if let Some(mib) = cache_mib {
            conn.execute_batch(&format!("PRAGMA cache_size=-{};", mib * 1024)).expect("cache_size");
        }
        conn.execute_batch(EVENTS_TABLE).expect("the table");
        if indexes {
            conn.execute_batch(EVENTS_INDEXES).expect("the indexes");
        }
        let index_after = if indexes { None } else { Some(Spent::default()) };
        Bare { label, path, conn, insert: Spent::default(), commit: Spent::default(), index_after }
    }

    /// Inserts one chunk in one transaction as the store's append does, INSERTs and COMMIT timed apart.
    fn load(&mut self, records: &[Record]) {
        let conn = &self.conn;
        self.insert.add(|| {
            conn.execute_batch("BEGIN IMMEDIATE").expect("BEGIN");
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO events (seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .expect("the insert prepares");
            for r in records {
                stmt.execute(rusqlite::params![
                    r.seq as i64,
                    r.occurred_at.as_micros(),
                    r.kind,
                    r.actor,
                    r.batch_id,
                    r.key,
                    r.envelope,
                    &r.prev_hash.0[..],
                    &r.hash.0[..],
                ])
                .expect("a row inserts");
            }
        });
        self.commit.add(|| conn.execute_batch("COMMIT").expect("COMMIT"));
    }

    fn finish(&mut self) {
        let conn = &self.conn;
        if let Some(spent) = self.index_after.as_mut() {
            spent.add(|| conn.execute_batch(&format!("BEGIN; {EVENTS_INDEXES} COMMIT;")).expect("the indexes build"));
        }
    }

    fn total(&self) -> Spent {
        self.insert.plus(self.commit).plus(self.index_after.unwrap_or_default())
    }
}

/// Each stage of a SQLite → SQLite mirror alone, chunk by chunk as the mirror goes, with nothing overlapped,
/// and the same rows through bare rusqlite in variants that show what the insert costs and what would cut it.
fn breakdown_sqlite(src: &Source, dir: &Path) {
    let source = open_sqlite(&src.path);
    let port_path = dir.join("stages-port.db");
    let target = open_sqlite(&port_path);
    let mut bares = [
        Bare::new("same schema and indexes", dir.join("stages-bare-idx.db"), true, None),
        Bare::new("same, with a 256 MiB page cache", dir.join("stages-bare-cache.db"), true, Some(256)),
        Bare::new("no secondary indexes during the load, built after it", dir.join("stages-bare-late.db"), false, None),
    ];
    let (mut read, mut check, mut append) = (Spent::default(), Spent::default(), Spent::default());
    let (mut count, mut bytes) = (0u64, 0usize);
    let mut head = Head::EMPTY;
    let mut target_head = Head::EMPTY;
    let cpu0 = Cpu::now();
    let started = Instant::now();
    loop {
        let records = read.add(|| source.read_after(head.seq, CHUNK).expect("the source reads"));
        if records.is_empty() {
            break;
        }
        let at = check.add(|| {
            let mut at = head;
            for rec in &records {
                check_link(&at, rec);
                at = Head { seq: rec.seq, hash: rec.hash };
            }
            at
        });
        target_head = append.add(|| target.append(target_head, &records).expect("the port appends"));
        for bare in &mut bares {
            bare.load(&records);
        }
        count += records.len() as u64;
        bytes += records.iter().map(|r| r.envelope.len()).sum::<usize>();
        head = at;
    }
    for bare in &mut bares {
        bare.finish();
    }
    let wall = started.elapsed();
    let cpu = cpu::describe(&cpu0, &Cpu::now(), "this process");
    assert_eq!(target_head, src.head);
    println!(
        "clone mirror stages, sqlite->sqlite, {count} records ({:.0} MB of envelopes), each stage alone on this \
         thread, no overlap:",
        bytes as f64 / 1e6
    );
    println!("    source read_after ({CHUNK} per call): {}", read.show(count));
    println!("    chain check (seq, link, blake3 of the envelope): {}", check.show(count));
    println!(
        "    store port append (its own blake3 re-check + a prepared INSERT per row + COMMIT with fsync): {}",
        append.show(count)
    );
    for bare in &bares {
        let late = bare.index_after.map_or(String::new(), |s| format!("; CREATE INDEX x4 after: {}", s.show(count)));
        println!(
            "    bare rusqlite, {}: INSERTs {}; COMMITs {}{late}; all: {}",
            bare.label,
            bare.insert.show(count),
            bare.commit.show(count),
            bare.total().show(count)
        );
    }
    let mainline = check.plus(append);
    println!(
        "    the mirror's threads: reader = read_after {}; writer = check + append {}; in series {:.0} ms \
         ({:.0} events/s); overlapped on two free cores max(reader, writer) = {:.0} ms ({:.0} events/s)",
        read.show(count),
        mainline.show(count),
        ms(read.wall + mainline.wall),
        rate(count, read.wall + mainline.wall),
        ms(read.wall.max(mainline.wall)),
        rate(count, read.wall.max(mainline.wall)),
    );
    println!("    (the whole breakdown pass took {:.1} s; {cpu})", wall.as_secs_f64());
    page_copy(src, dir, count);
    let sizes: Vec<String> = std::iter::once(format!("port {:.0} MB", file_mb(&port_path)))
        .chain(bares.iter().map(|b| format!("{} {:.0} MB", b.label, file_mb(&b.path))))
        .collect();
    println!("    target sizes (file + WAL): {}", sizes.join(", "));
    drop(target);
    remove_sqlite(&port_path);
    for bare in bares {
        let path = bare.path.clone();
        drop(bare);
        remove_sqlite(&path);
    }
}

/// A copy that moves pages instead of rows: `VACUUM INTO` a new file (synced), then the copy's chain read
/// back and checked as the mirror checks what it writes. Not what `clone::mirror` does; shown as the cost of
/// the alternative for an empty SQLite target.
fn page_copy(src: &Source, dir: &Path, count: u64) {
    let path = dir.join("stages-vacuum.db");
    let conn = rusqlite::Connection::open_with_flags(&src.path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("the source opens read-only");
    let mut vacuum = Spent::default();
    vacuum.add(|| {
        conn.execute_batch(&format!("VACUUM INTO '{}'", path.display())).expect("VACUUM INTO runs");
        std::fs::File::open(&path).and_then(|f| f.sync_all()).expect("the copy syncs");
    });
    drop(conn);
    let copy = open_sqlite(&path);
    let (mut read, mut check) = (Spent::default(), Spent::default());
    let mut head = Head::EMPTY;
    loop {
        let records = read.add(|| copy.read_after(head.seq, CHUNK).expect("the copy reads"));
        if records.is_empty() {
            break;
        }
        head = check.add(|| {
            let mut at = head;
            for rec in &records {
                check_link(&at, rec);
                at = Head { seq: rec.seq, hash: rec.hash };
            }
            at
        });
    }
    assert_eq!(head, src.head, "the page copy holds the source's log");
    println!(
        "    page copy instead (VACUUM INTO a new file + fsync): {}; then the copy's chain read back {} and \
         checked {}; all: {}",
        vacuum.show(count),
        read.show(count),
        check.show(count),
        vacuum.plus(read).plus(check).show(count)
    );
    drop(copy);
    remove_sqlite(&path);
}

/// The log's secondary indexes as migration V5 leaves them, on the table `{t}`.
const V5_INDEXES: &str = "CREATE INDEX ON {t} (key, seq) WHERE key IS NOT NULL; CREATE INDEX ON {t} (actor, seq); \
     CREATE INDEX ON {t} (occurred_at, seq); CREATE INDEX ON {t} (batch_id, seq); CREATE INDEX ON {t} (kind, seq);";

/// The same as migration V4 had them: besides, the expression index for bytewise prefixes.
fn v4_indexes() -> String {
    format!("{V5_INDEXES} CREATE INDEX ON {{t}} ((key COLLATE \"C\"), seq) WHERE key IS NOT NULL;")
}

/// The PostgreSQL append alone, chunk by chunk on records already read (the read is not timed), then the
/// same `unnest` INSERT into bare tables of the log's columns: with only the primary key (what the indexes
/// cost the server), with the indexes of migration V5 (bytewise text), and with those of V4 (text in the
/// database's collation, and the expression index for bytewise prefixes): what V5 saved each append.
fn breakdown_pg(src: &Source) -> Result<(), String> {
    const COLUMNS: &str = "seq BIGINT PRIMARY KEY, occurred_at BIGINT NOT NULL, kind TEXT {c} NOT NULL, \
         actor TEXT {c} NOT NULL, batch_id TEXT {c} NOT NULL, key TEXT {c}, envelope BYTEA NOT NULL, \
         prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL";
    let v4_indexes = v4_indexes();
    let bare_tables = [
        ("bare_key_only", "COLLATE \"C\"", "", "a table with its primary key only"),
        ("bare_v5", "COLLATE \"C\"", V5_INDEXES, "the same key and 5 indexes, text bytewise (V5, as the store's)"),
        (
            "bare_v4",
            "",
            v4_indexes.as_str(),
            "V4's key and 6 indexes: text in the database's collation, and the expression index",
        ),
    ];
    let source = open_sqlite(&src.path);
    let db = pg::FreshDb::create()?;
    let target = store::open(&StoreUrl::Postgres(db.url())).map_err(|e| format!("the PostgreSQL store: {e}"))?;
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).map_err(|e| format!("a connection: {e}"))?;
    let mut inserts = Vec::new();
    for (table, collate, indexes, _) in bare_tables {
        let ddl =
            format!("CREATE TABLE {table} ({}); {}", COLUMNS.replace("{c}", collate), indexes.replace("{t}", table));
        client.batch_execute(&ddl).map_err(|e| format!("the table {table}: {e}"))?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], \
                 $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::bytea[])"
            ))
            .map_err(|e| format!("the insert into {table}: {e}"))?;
        inserts.push((insert, Spent::default(), 0.0));
    }
    let (mut append, mut pg_append, mut count) = (Spent::default(), 0.0, 0u64);
    let mut head = Head::EMPTY;
    loop {
        let records = source.read_after(head.seq, CHUNK).expect("the source reads");
        if records.is_empty() {
            break;
        }
        let c0 = Cpu::now();
        head = append.add(|| target.append(head, &records)).map_err(|e| format!("the PostgreSQL append: {e}"))?;
        pg_append += cpu::postgres_secs(&c0, &Cpu::now());
        let seqs: Vec<i64> = records.iter().map(|r| r.seq as i64).collect();
        let times: Vec<i64> = records.iter().map(|r| r.occurred_at.as_micros()).collect();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
        let batches: Vec<&str> = records.iter().map(|r| r.batch_id.as_str()).collect();
        let keys: Vec<Option<&str>> = records.iter().map(|r| r.key.as_deref()).collect();
        let envelopes: Vec<&[u8]> = records.iter().map(|r| r.envelope.as_slice()).collect();
        let prevs: Vec<&[u8]> = records.iter().map(|r| &r.prev_hash.0[..]).collect();
        let hashes: Vec<&[u8]> = records.iter().map(|r| &r.hash.0[..]).collect();
        for (insert, spent, server) in &mut inserts {
            let c0 = Cpu::now();
            spent
                .add(|| -> Result<(), postgres::Error> {
                    let mut tx = client.transaction()?;
                    tx.execute(
                        &*insert,
                        &[&seqs, &times, &kinds, &actors, &batches, &keys, &envelopes, &prevs, &hashes],
                    )?;
                    tx.commit()
                })
                .map_err(|e| format!("the bare insert: {e}"))?;
            *server += cpu::postgres_secs(&c0, &Cpu::now());
        }
        count += records.len() as u64;
    }
    assert_eq!(head, src.head);
    println!("clone mirror stages, sqlite->postgres, {count} records, each {CHUNK}-record transaction alone:");
    println!(
        "    the store's append (blake3 re-check, one unnest INSERT + NOTIFY, COMMIT; primary key and 5 indexes): \
         {}; PostgreSQL server CPU {pg_append:.1} s",
        append.show(count)
    );
    for ((_, _, _, label), (_, spent, server)) in bare_tables.iter().zip(&inserts) {
        println!("    the same unnest INSERT into {label}: {}; PostgreSQL server CPU {server:.1} s", spent.show(count));
    }
    drop(client);
    drop(target);
    drop(db);
    Ok(())
}

/// Every record of the source, read into memory (untimed), chunk by chunk.
fn read_all(src: &Source) -> Vec<Vec<Record>> {
    let source = open_sqlite(&src.path);
    LogChunks::after(source.as_ref(), 0).map(|chunk| chunk.expect("the source reads")).collect()
}

/// The references a mirror into PostgreSQL is measured against in the same run, both fed records already
/// in memory (the read is not timed), and each into a fresh database:
/// - the store alone: [`EventStore::bulk_load`] as the mirror uses it, without reading the source or
///   checking its chain;
/// - PostgreSQL alone: the same rows through one `COPY` into a table with the log's columns and checks but no
///   key or index, then the same primary key and indexes built, in one transaction, with the same memory
///   for the builds; no cfgledger code at all.
///
/// Returns their events/s.
fn pg_references(src: &Source) -> Result<(f64, f64), String> {
    let chunks = read_all(src);
    let count: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let db = pg::FreshDb::create()?;
    let target = store::open(&StoreUrl::Postgres(db.url())).map_err(|e| format!("the PostgreSQL store: {e}"))?;
    let (head, took, cpu) = timed(|| -> Result<Head, cfgledger::store::StoreError> {
        let mut load = target.bulk_load().expect("PostgreSQL loads in bulk")?;
        for chunk in chunks {
            load.write(chunk)?;
        }
        load.finish()
    });
    let head = head.map_err(|e| format!("the bulk load: {e}"))?;
    assert_eq!(head, src.head);
    let store_alone = rate(count, took);
    println!(
        "clone reference, the store's bulk load alone (records in memory): {count} events in {:.2} s = \
         {store_alone:.0} events/s; {cpu}",
        took.as_secs_f64()
    );
    drop(target);
    drop(db);

    let chunks = read_all(src);
    let db = pg::FreshDb::create()?;
    drop(store::open(&StoreUrl::Postgres(db.url())).map_err(|e| format!("the PostgreSQL store: {e}"))?);
    let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).map_err(|e| format!("a connection: {e}"))?;
    let fail = |what: &'static str| move |e: postgres::Error| format!("PostgreSQL alone, {what}: {e}");
    client.batch_execute("CREATE TABLE events_alone (LIKE events INCLUDING CONSTRAINTS)").map_err(fail("the table"))?;
    // The log's own index definitions, moved to the new table under new names.
    let mut builds: Vec<String> = client
        .query(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'events'::regclass AND NOT indisprimary",
            &[],
        )
        .map_err(fail("the index definitions"))?
        .iter()
        .map(|r| {
            r.get::<_, String>(0).replacen("INDEX events_", "INDEX alone_", 1).replacen(
                " ON public.events ",
                " ON public.events_alone ",
                1,
            )
        })
        .collect();
    builds.insert(0, "ALTER TABLE events_alone ADD PRIMARY KEY (seq)".into());
    use postgres::types::Type;
    let types =
        [Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA, Type::BYTEA, Type::BYTEA];
    let (mut copy, mut build) = (Spent::default(), Spent::default());
    let pg0 = Cpu::now();
    let t = Instant::now();
    let mut tx = client.transaction().map_err(fail("BEGIN"))?;
    copy.add(|| -> Result<(), postgres::Error> {
        let sink = tx.copy_in(
            "COPY events_alone (seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash) \
             FROM STDIN BINARY",
        )?;
        let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        for r in chunks.iter().flatten() {
            writer.write(&[
                &(r.seq as i64),
                &r.occurred_at.as_micros(),
                &r.kind,
                &r.actor,
                &r.batch_id,
                &r.key,
                &r.envelope,
                &&r.prev_hash.0[..],
                &&r.hash.0[..],
            ])?;
        }
        writer.finish().map(|_| ())
    })
    .map_err(fail("the COPY"))?;
    let pg1 = Cpu::now();
    build
        .add(|| -> Result<(), postgres::Error> {
            tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")?;
            for statement in &builds {
                tx.batch_execute(statement)?;
            }
            tx.commit()
        })
        .map_err(fail("the key and indexes"))?;
    let took = t.elapsed();
    let pg2 = Cpu::now();
    let pg_alone = rate(count, took);
    println!(
        "clone reference, PostgreSQL alone (records in memory, one transaction): {count} events in {:.2} s = \
         {pg_alone:.0} events/s; the COPY into a table without key or index: {}, server CPU {:.1} s; then the \
         primary key and {} indexes: {}, server CPU {:.1} s",
        took.as_secs_f64(),
        copy.show(count),
        cpu::postgres_secs(&pg0, &pg1),
        builds.len() - 1,
        build.show(count),
        cpu::postgres_secs(&pg1, &pg2)
    );
    // The same builds as migration V4 left them: the text columns in the database's collation, and the
    // expression index for bytewise prefixes besides; what V5 saves a bulk load's index builds.
    client
        .batch_execute(
            "CREATE TABLE events_v4 (seq BIGINT, occurred_at BIGINT, kind TEXT COLLATE \"default\", \
             actor TEXT COLLATE \"default\", batch_id TEXT COLLATE \"default\", key TEXT COLLATE \"default\", \
             envelope BYTEA, prev_hash BYTEA, hash BYTEA); INSERT INTO events_v4 SELECT * FROM events_alone",
        )
        .map_err(fail("V4's table"))?;
    // Its rows' hint bits set before the builds, which the COPY's own transaction did not need.
    client.batch_execute("VACUUM events_v4").map_err(fail("VACUUM"))?;
    let v4 = format!("ALTER TABLE events_v4 ADD PRIMARY KEY (seq); {}", v4_indexes().replace("{t}", "events_v4"));
    let mut build_v4 = Spent::default();
    let pg3 = Cpu::now();
    build_v4
        .add(|| -> Result<(), postgres::Error> {
            let mut tx = client.transaction()?;
            tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")?;
            tx.batch_execute(&v4)?;
            tx.commit()
        })
        .map_err(fail("V4's key and indexes"))?;
    println!(
        "    the same rows' key and indexes as V4 had them (6, text in the database's collation): {}, server CPU \
         {:.1} s; V5's took {:.2}x the time",
        build_v4.show(count),
        cpu::postgres_secs(&pg3, &Cpu::now()),
        build.wall.as_secs_f64() / build_v4.wall.as_secs_f64()
    );
    drop(client);
    drop(db);
    Ok((store_alone, pg_alone))
}

// ---------------------------------------------------------------------------------------------------------
// 3: the JSON-lines backup and its restore.

fn backup(src: &Source, dir: &Path) {
    let source = open_sqlite(&src.path);
    let file = dir.join("log.jsonl");
    let (head, took, cpu) = timed(|| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("the backup file is created"));
        clone::export_jsonl(source.as_ref(), None, &mut out, &mut |_, _| {}).expect("the export runs")
    });
    assert_eq!(head, src.head);
    let size = std::fs::metadata(&file).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "clone export_jsonl: {} events in {:.2} s = {:.0} events/s ({size:.0} MB written); {cpu}",
        head.seq,
        took.as_secs_f64(),
        rate(head.seq, took)
    );
    let (backup, read_took, cpu) = timed(|| {
        let mut input = std::io::BufReader::new(std::fs::File::open(&file).expect("the backup opens"));
        clone::read_jsonl(&mut input).expect("the backup reads and verifies")
    });
    println!(
        "clone read_jsonl: {} records in {:.2} s = {:.0} events/s; {cpu}",
        backup.records.len(),
        read_took.as_secs_f64(),
        rate(backup.records.len() as u64, read_took)
    );
    let path = dir.join("restored.db");
    let target = open_sqlite(&path);
    let (report, restore_took, cpu) =
        timed(|| clone::restore(target.as_ref(), &backup, &mut |_, _| {}).expect("the restore runs"));
    assert_eq!(report.head, src.head, "the restore ends at the source's head hash");
    println!(
        "clone restore: {} events in {:.2} s = {:.0} events/s; {cpu}",
        report.copied,
        restore_took.as_secs_f64(),
        rate(report.copied, restore_took)
    );
    println!(
        "clone log import as a whole (read_jsonl + restore): {:.2} s = {:.0} events/s",
        (read_took + restore_took).as_secs_f64(),
        rate(report.copied, read_took + restore_took)
    );
    drop(backup);
    drop(target);
    remove_sqlite(&path);
    let _ = std::fs::remove_file(&file);
}

// ---------------------------------------------------------------------------------------------------------
// 4: the replay clone.

/// Checks that `target` holds the source's final settings and entities: plain values equal, secrets and
/// credentials opening to the same plaintext under each store's own key.
fn check_replay(src: &Source, target: &Ledger) {
    let snap = target.snapshot();
    let got = &snap.state;
    let mut keys = 0;
    for (key, entry) in src.state.entries() {
        // A locked key is the target's own (only its environment seeds it, and a new store generates the
        // secrets its catalog marks): a replay clone does not carry it.
        if target.catalog().get(key).is_some_and(|spec| spec.locked) {
            continue;
        }
        keys += 1;
        let theirs = got.current(key).unwrap_or_else(|| panic!("the target holds {key}"));
        match (&entry.value, theirs) {
            (StoredValue::Plain(a), StoredValue::Plain(b)) => assert_eq!(a, b, "{key}"),
            (StoredValue::Sealed(a), StoredValue::Sealed(b)) => {
                let mine = Sealer::open(&src.sealer, key, a).expect("the source's secret opens");
                let theirs = Sealer::open(target.secret_box(), key, b).expect("the target's secret opens");
                assert_eq!(mine, theirs, "{key} opens to the same plaintext");
            }
            _ => panic!("{key}: sealed on one side only"),
        }
    }
    let bench_keys = got.setting_keys().iter().filter(|k| k.starts_with("BENCH_")).count();
    let src_bench = src.state.setting_keys().iter().filter(|k| k.starts_with("BENCH_")).count();
    assert_eq!(bench_keys, src_bench, "the target holds no bench key the source does not");
    let mut entities = 0;
    for kind in ResourceKind::ALL {
        assert_eq!(got.resources(kind).count(), src.state.resources(kind).count(), "{kind}");
        for (name, entry) in src.state.resources(kind) {
            entities += 1;
            let theirs = got.resource(kind, name).unwrap_or_else(|| panic!("the target holds {kind}/{name}"));
            let strip = |m: &Map<String, Value>| {
                let mut m = m.clone();
                m.remove("auth_value");
                m
            };
            assert_eq!(strip(&entry.fields), strip(theirs), "{kind}/{name}");
            if let Some(Value::String(a)) = entry.fields.get("auth_value") {
                let binding = resource::auth_binding(kind, name);
                let b = theirs.get("auth_value").and_then(Value::as_str).expect("the credentials are cloned");
                let mine = Sealer::open(&src.sealer, &binding, a).expect("the source's credentials open");
                let theirs = Sealer::open(target.secret_box(), &binding, b).expect("the target's credentials open");
                assert_eq!(mine, theirs, "{kind}/{name} credentials");
            }
        }
    }
    println!("    checked: the target holds the source's {keys} settings and {entities} entities, secrets re-sealed");
}

/// A replay clone of the source into a fresh SQLite target, as `cfgledger clone` runs it; returns the source
/// events per second over plan + apply.
fn replay(src: &Source, dir: &Path, label: &str) -> f64 {
    let source = open_sqlite(&src.path);
    let checkpoints = source.snapshot_seqs().expect("the checkpoints list");
    let path = dir.join(format!("replay-{label}.db"));
    let t = Instant::now();
    let (target, _) = Ledger::open(options(&path)).expect("the target opens");
    let open = t.elapsed();
    let target_head = target.snapshot().head.seq;

    // The plan's parts, timed apart first (the plan below does them again).
    let t = Instant::now();
    let state = clone::source_state(source.as_ref(), src.head.seq).expect("the source state folds");
    let fold = t.elapsed();
    let t = Instant::now();
    drop(clone::source_box(&state, SECRET).expect("the source key derives"));
    let derive = t.elapsed();
    drop(state);

    let ((req, plan, provenance), plan_took, plan_cpu) =
        timed(|| clone::replay_plan(source.as_ref(), &target, &ReplayOptions::default()).expect("the replay plans"));
    let c = &plan.plan.counts;
    let ctx = WriteContext {
        actor: common::actor(),
        cause: Cause::Clone {
            source_store_id: provenance.store_id.clone(),
            source_seq: provenance.seq,
            source_head_hash: provenance.head_hash.to_hex(),
            via: "clone".into(),
        },
        reason: None,
        bypass: false,
    };
    let (outcome, exec_took, exec_cpu) =
        timed(|| target.execute(Command::Rollback(req), ctx).expect("the replay applies"));
    let (first, last) = outcome.seqs.expect("the replay appends a batch");
    let batch_events = last - first + 1;
    let total = plan_took + exec_took;
    let r = rate(src.head.seq, total);
    println!(
        "clone replay ({label}; source checkpoints at {:?}): {} source events -> one batch of {batch_events} events \
         (target seqs {first}..{last}) in {:.2} s = {r:.0} source events/s",
        checkpoints.iter().rev().take(3).collect::<Vec<_>>(),
        src.head.seq,
        total.as_secs_f64(),
    );
    println!(
        "    target open (new store: migrations, key derivation, genesis; head {target_head}) {:.0} ms, not counted",
        ms(open)
    );
    println!(
        "    replay_plan {:.0} ms ({plan_cpu}); of it, timed apart: source state (checkpoint + fold) {:.0} ms, \
         source key derivation {:.0} ms, so re-sealing + plan ~{:.0} ms",
        ms(plan_took),
        ms(fold),
        ms(derive),
        ms(plan_took.saturating_sub(fold + derive)),
    );
    println!(
        "    execute(Command::Rollback) {:.0} ms ({exec_cpu}); plan: {} set, {} create, {} update, {} locked, {} \
         invalid",
        ms(exec_took),
        c.set,
        c.create,
        c.update,
        c.locked,
        c.invalid
    );
    check_replay(src, &target);
    drop(target);
    remove_sqlite(&path);
    let _ = std::fs::remove_file(dir.join(format!("replay-{label}.db.key")));
    r
}

/// Opens the source as a `Ledger`, which writes a checkpoint at its head (as a store the product wrote has
/// one near its head), and waits for it.
fn checkpoint_source(src: &Source) {
    let (ledger, took, _) = timed(|| Ledger::open(options(&src.path)).expect("the source opens as a ledger").0);
    assert_eq!(ledger.snapshot().head, src.head, "the built source folds to its head");
    drop(ledger);
    let store = open_sqlite(&src.path);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !store.snapshot_seqs().expect("the checkpoints list").contains(&src.head.seq) {
        assert!(Instant::now() < deadline, "the checkpoint at the source's head was written");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "clone: opened the source as a Ledger (every hash verified, whole log folded) in {:.0} ms; it wrote a \
         checkpoint at seq {}",
        ms(took),
        src.head.seq
    );
}

// ---------------------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn verdict(label: &str, rates: &[f64]) {
    if rates.is_empty() {
        return;
    }
    let best = rates.iter().copied().fold(0.0, f64::max);
    let worst = rates.iter().copied().fold(f64::MAX, f64::min);
    let med = median(rates);
    let met = rates.iter().filter(|r| **r >= TARGET).count();
    let word = if med >= TARGET {
        "met".to_string()
    } else {
        format!("MISSED (median {:.0}% of the target)", med / TARGET * 100.0)
    };
    println!(
        "target: mirror {label} >= {TARGET:.0} events/s: {word}; runs {worst:.0}..{best:.0} events/s, median \
         {med:.0}, {met} of {} runs at or above",
        rates.len()
    );
}

fn main() {
    let full = common::full_run();
    let events: u64 = match std::env::var("CLONE_BENCH_EVENTS") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("CLONE_BENCH_EVENTS must be a number; got {text:?}")),
        Err(_) if full => 1_000_000,
        Err(_) => 5_000,
    };
    let pg_runs = if full { 3 } else { 0 };
    let pg_server = if full {
        match pg::show("server_version") {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("clone needs a PostgreSQL server for its sqlite->postgres mirror: {e}");
                std::process::exit(1);
            }
        }
    } else {
        println!("clone: a short run under `cargo test`: {events} events, the PostgreSQL part skipped");
        None
    };
    if let Some(v) = &pg_server {
        let settings: Vec<String> = ["synchronous_commit", "shared_buffers", "max_wal_size", "full_page_writes"]
            .iter()
            .map(|s| format!("{s}={}", pg::show(s).unwrap_or_else(|e| e)))
            .collect();
        println!("clone: PostgreSQL {v} at {} ({})", pg::server_url(), settings.join(", "));
    }
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("a temp dir");
    let src = build_source(&dir.path().join("source.db"), events);

    let sqlite_rates: Vec<f64> = (1..=3).map(|run| mirror_sqlite(&src, dir.path(), run)).collect();
    let file_rates: Vec<f64> = (1..=3).map(|run| mirror_file_once(&src, dir.path(), run)).collect();
    breakdown_sqlite(&src, dir.path());

    let mut pg_rates = Vec::new();
    for run in 1..=pg_runs {
        match mirror_pg(&src, run) {
            Ok(r) => pg_rates.push(r),
            Err(e) => {
                eprintln!("clone mirror sqlite->postgres #{run}: FAILED: {e}");
                std::process::exit(1);
            }
        }
    }
    let references = if pg_runs > 0 {
        match pg_references(&src) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("clone references, sqlite->postgres: FAILED: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    if pg_runs > 0 {
        if let Err(e) = breakdown_pg(&src) {
            eprintln!("clone mirror stages, sqlite->postgres: FAILED: {e}");
            std::process::exit(1);
        }
    }

    backup(&src, dir.path());

    let cold = replay(&src, dir.path(), "no checkpoint");
    checkpoint_source(&src);
    let warm = replay(&src, dir.path(), "checkpoint at head");

    println!("clone summary ({events} events):");
    println!(
        "    mirror sqlite->sqlite: {}",
        sqlite_rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "    mirror sqlite->new sqlite file (page copy): {}",
        file_rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
    );
    if pg_runs > 0 {
        println!(
            "    mirror sqlite->postgres: {}",
            pg_rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ")
        );
        if let Some((store_alone, pg_alone)) = references {
            let m = median(&pg_rates);
            println!(
                "    mirror sqlite->postgres, median {m:.0} events/s: {:.2}x the store's bulk load alone ({store_alone:.0}), \
                 {:.2}x PostgreSQL alone ({pg_alone:.0})",
                m / store_alone,
                m / pg_alone
            );
        }
    } else {
        println!("    mirror sqlite->postgres: skipped (short run)");
    }
    println!("    replay: {cold:.0} source events/s without a checkpoint, {warm:.0} with one at the head");
    if !full {
        println!("(a short run under `cargo test`: the target is not judged)");
        return;
    }
    verdict("sqlite->sqlite", &sqlite_rates);
    verdict("sqlite->postgres", &pg_rates);
}
