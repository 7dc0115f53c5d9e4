//! Properties of time travel over random histories, through the real ledger (memory store, and a SQLite
//! file with fewer cases): settings of every shape (enum, int, duration, list, a sensitive key that may be
//! rotated, a restart-required key) set and reset; tools, prompts and servers naming them created,
//! replaced and deleted; locked keys that only `.env` seeding gives a value (at open, and seeded again later
//! in the history), with attempts to change them; and rollbacks and reverts inside the history itself.
//!
//! 1. Rolling back to a point makes every setting and entity what it was then; locked keys keep their value
//!    and are reported as `locked` in the plan.
//! 2. Applying `diff(T1, T2)` to the state at T1 gives the state at T2 (sensitive values are masked: they are
//!    only checked to be listed exactly when they changed).
//! 3. A checkpoint plus the events after it equals a full replay, and the checkpoint codec round-trips.
//! 4. Reverting the latest batch plans and does exactly what rolling back to just before it does.
//! 5. A rollback can be rolled back: returning to the head before it restores the state at that head.

use cfgledger::clock::SteppingClock;
use cfgledger::store::StoreUrl;
use cfgledger::usecase::timetravel;
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions, WriteContext};
use cfgledger_events::decide::{EnvEntry, SettingsLookup};
use cfgledger_events::event::MASK;
use cfgledger_events::resource::referenced;
use cfgledger_events::rollback;
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    verify_link, Actor, Cause, Command, Envelope, Head, Input, RejectionKind, Reload, ResourceKind, Source,
    StoredValue, Timestamp,
};
use cfgledger_projections::{snapshot, SettingsState};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Non-locked keys and values each accepts: an enum, an int, a duration, a list, a sensitive key operators
/// may rotate, and a restart-required string.
const SETTINGS: &[(&str, &[&str])] = &[
    ("LOG_LEVEL", &["trace", "debug", "info", "warn", "error"]),
    ("MAX_WORKERS", &["1", "8", "16", "256"]),
    ("CACHE_TTL", &["0s", "90s", "10m", "2h", "7d"]),
    ("FEDERATION_PEERS", &["", "http://a", "http://a,http://b", "http://b, http://c"]),
    ("WEBHOOK_SECRET", &["hook-1", "hook-2", "hook-3"]),
    ("LOG_FILE", &["/tmp/a.log", "/var/log/b.log"]),
];

/// The `.env` of the first open: two locked keys and one plain key, seeded with the genesis.
const ENV_FILE: &str = "CFGLEDGER_JWT_ALGORITHM=HS384\nCFGLEDGER_AUTH_REQUIRED=false\nLOG_FORMAT=text\n";

/// A later seeding (as a later open with another `.env` would do): two locked keys (one of them sensitive)
/// and one plain key. Only keys the log never held are seeded, so it applies once.
const LATE_SEED: &[(&str, &str)] =
    &[("CFGLEDGER_TOKEN_EXPIRY", "1h"), ("BASIC_AUTH_PASSWORD", "seeded-basic-password"), ("LOG_REQUESTS", "true")];

/// Attempts to change locked keys: refused, recorded as `ChangeRejected`.
const LOCKED_ATTEMPTS: &[(&str, &str)] =
    &[("cfgledger:JWT_ALGORITHM", "HS512"), ("cfgledger:TOKEN_EXPIRY", "2h"), ("CORS_ENABLED", "false")];

const TOOLS: &[&str] = &["search", "fetch", "calc"];
const TOOL_URLS: &[&str] = &["https://tools.example/a", "https://tools.example/b"];
const TOKENS: &[&str] = &["token-one", "token-two"];
const PROMPTS: &[&str] = &["greet", "summarize"];
const TEMPLATES: &[&str] = &["Hello {{name}}", "Summarize {{text}}", "Bye"];
const SERVERS: &[&str] = &["alpha", "beta"];
const DESCRIPTIONS: &[&str] = &["first", "second"];

#[derive(Debug, Clone)]
enum Op {
    Set(usize, Index),
    Reset(usize),
    Locked(usize),
    LateSeed,
    /// Create the tool, or replace it when it exists. `auth`: 0 gives no credentials (a replace keeps the
    /// stored ones), 1 removes them (`auth_type: null`), 2.. gives a bearer token.
    PutTool {
        name: usize,
        url: usize,
        auth: usize,
    },
    DeleteTool(usize),
    PutPrompt {
        name: usize,
        template: usize,
    },
    DeletePrompt(usize),
    /// Create or replace a server naming the tools and prompts of the masks that exist at that moment.
    PutServer {
        name: usize,
        tools: u8,
        prompts: u8,
        description: usize,
    },
    DeleteServer(usize),
    /// A rollback inside the history, to a point of it.
    Rollback(Index),
    /// A revert of the latest batch, inside the history.
    RevertLatest,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SETTINGS.len(), any::<Index>()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => (0..SETTINGS.len()).prop_map(Op::Reset),
        1 => (0..LOCKED_ATTEMPTS.len()).prop_map(Op::Locked),
        1 => Just(Op::LateSeed),
        3 => (0..TOOLS.len(), 0..TOOL_URLS.len(), 0..TOKENS.len() + 2)
            .prop_map(|(name, url, auth)| Op::PutTool { name, url, auth }),
        1 => (0..TOOLS.len()).prop_map(Op::DeleteTool),
        2 => (0..PROMPTS.len(), 0..TEMPLATES.len()).prop_map(|(name, template)| Op::PutPrompt { name, template }),
        1 => (0..PROMPTS.len()).prop_map(Op::DeletePrompt),
        3 => (0..SERVERS.len(), 0u8..8, 0u8..4, 0..DESCRIPTIONS.len())
            .prop_map(|(name, tools, prompts, description)| Op::PutServer { name, tools, prompts, description }),
        1 => (0..SERVERS.len()).prop_map(Op::DeleteServer),
        1 => any::<Index>().prop_map(Op::Rollback),
        1 => Just(Op::RevertLatest),
    ]
}

fn history(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..max)
}

fn actor() -> Actor {
    Actor {
        name: "prop".into(),
        role: Some("platform_admin".into()),
        source: Source::Cli,
        address: None,
        request_id: None,
    }
}

fn ctx() -> WriteContext {
    WriteContext { actor: actor(), cause: Cause::Cli { command: "test".into() }, reason: None, bypass: false }
}

fn rollback_ctx(to_seq: u64) -> WriteContext {
    WriteContext {
        actor: actor(),
        cause: Cause::Rollback { to_seq, to: format!("seq:{to_seq}"), via: "property test".into() },
        reason: Some("time travel".into()),
        bypass: false,
    }
}

fn revert_ctx(batch: &str) -> WriteContext {
    WriteContext {
        actor: actor(),
        cause: Cause::Revert { batch: batch.into(), via: "property test".into() },
        reason: None,
        bypass: false,
    }
}

/// A store and the directory holding its `.env` (and its database, for SQLite).
struct World {
    ledger: Ledger,
    _dir: tempfile::TempDir,
}

fn open(sqlite: bool) -> World {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = dir.path().join("first.env");
    std::fs::write(&env, ENV_FILE).expect("the .env is written");
    let db = if sqlite { StoreUrl::Sqlite(dir.path().join("ledger.db")) } else { StoreUrl::Memory };
    let mut process_env = BTreeMap::new();
    process_env.insert("AUTH_ENCRYPTION_SECRET".to_string(), "timetravel-property-secret-0123456789".to_string());
    let opts = OpenOptions {
        db,
        env_file: EnvFileChoice::Path(env),
        catalog: suite_catalog(),
        process_env,
        pin_restart_keys: false,
        generate_secrets: Vec::new(),
        clock: Arc::new(SteppingClock::new(Timestamp(1_800_000_000_000_000))),
    };
    let (ledger, report) = Ledger::open(opts).expect("the ledger opens");
    assert!(report.created);
    assert_eq!(report.seeded.len(), 3, "{:?}", report.seeded);
    World { ledger, _dir: dir }
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

fn must<T>(what: &str, r: Result<T, Error>) -> Result<T, TestCaseError> {
    r.map_err(|e| fail(format!("{what}: {e}")))
}

fn head(ledger: &Ledger) -> u64 {
    ledger.snapshot().head.seq
}

/// A seq in `floor..=head` chosen by `idx`.
fn point(idx: &Index, floor: u64, head: u64) -> u64 {
    let span = usize::try_from(head - floor + 1).expect("a small log");
    floor + u64::try_from(idx.index(span)).expect("a small log")
}

/// What a run may not undo: rollbacks inside the history go no further back than `floor`, and batches
/// starting at or before `keep` are not reverted (property 3 keeps its `SNAPSHOT_INTERVAL`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    floor: u64,
    keep: u64,
}

const ANYTHING: Limits = Limits { floor: 1, keep: 0 };

/// What a command must do, decided from the state before it.
enum Expect {
    Ok,
    Rejected(RejectionKind),
}

fn existing(state: &SettingsState, kind: ResourceKind, name: &str) -> bool {
    state.resource_entry(kind, name).is_some()
}

fn put(state: &SettingsState, kind: ResourceKind, name: &str, fields: Map<String, Value>) -> Command {
    if existing(state, kind, name) {
        Command::ReplaceResource { kind, name: name.into(), fields }
    } else {
        Command::CreateResource { kind, fields }
    }
}

fn delete(state: &SettingsState, kind: ResourceKind, name: &str) -> (Command, Expect) {
    let expect = if !existing(state, kind, name) {
        Expect::Rejected(RejectionKind::Missing)
    } else if !state.referrers(kind, name).is_empty() {
        Expect::Rejected(RejectionKind::Conflict)
    } else {
        Expect::Ok
    };
    (Command::DeleteResource { kind, name: name.into() }, expect)
}

fn fields(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn picked(names: &[&str], mask: u8, state: &SettingsState, kind: ResourceKind) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter(|(i, n)| mask & (1 << i) != 0 && existing(state, kind, n))
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The latest batch of the log: its id and its first seq.
fn latest_batch(ledger: &Ledger) -> Result<(String, u64), TestCaseError> {
    let h = head(ledger);
    let last = must("read the head", ledger.store().read_after(h - 1, 1).map_err(Error::from))?;
    let id = last.first().ok_or_else(|| fail("the log has a head record"))?.batch_id.clone();
    let records = must("the batch's records", timetravel::batch_records(ledger, &id))?;
    prop_assert_eq!(records.last().map(|r| r.seq), Some(h), "the latest batch ends at the head");
    Ok((id, records[0].seq))
}

/// Runs one command of a history and checks that it was accepted or refused as it must be; a refusal
/// appends nothing (or only its `ChangeRejected` record, for a locked key).
fn exec(ledger: &Ledger, op: &Op, limits: Limits) -> Result<(), TestCaseError> {
    let before = ledger.snapshot();
    let state = &before.state;
    let (cmd, expect, wctx) = match op {
        Op::Set(k, v) => {
            let (key, values) = SETTINGS[*k];
            let value = values[v.index(values.len())];
            (Command::Set { key: key.into(), value: Input::Text(value.into()) }, Expect::Ok, ctx())
        }
        Op::Reset(k) => (Command::Reset { key: SETTINGS[*k].0.into() }, Expect::Ok, ctx()),
        Op::Locked(i) => {
            let (key, value) = LOCKED_ATTEMPTS[*i];
            let cmd = Command::Set { key: key.into(), value: Input::Text(value.into()) };
            (cmd, Expect::Rejected(RejectionKind::Locked), ctx())
        }
        Op::LateSeed => {
            let entries = LATE_SEED
                .iter()
                .enumerate()
                .map(|(i, (k, v))| EnvEntry { key: k.to_string(), value: v.to_string(), line: i + 1 })
                .collect();
            let wctx = WriteContext {
                actor: Actor::system(),
                cause: Cause::Open { env_file: Some("late.env".into()) },
                reason: None,
                bypass: false,
            };
            (Command::SeedEnv { env_file: "late.env".into(), entries }, Expect::Ok, wctx)
        }
        Op::PutTool { name, url, auth } => {
            let name = TOOLS[*name];
            let mut f = fields(json!({"name": name, "url": TOOL_URLS[*url], "description": format!("tool {name}")}));
            match auth {
                0 => {}
                1 => {
                    f.insert("auth_type".into(), Value::Null);
                }
                n => {
                    f.insert("auth_type".into(), json!("bearer"));
                    f.insert("auth_token".into(), json!(TOKENS[n - 2]));
                }
            }
            (put(state, ResourceKind::Tools, name, f), Expect::Ok, ctx())
        }
        Op::DeleteTool(i) => {
            let (cmd, expect) = delete(state, ResourceKind::Tools, TOOLS[*i]);
            (cmd, expect, ctx())
        }
        Op::PutPrompt { name, template } => {
            let name = PROMPTS[*name];
            let f = fields(json!({"name": name, "template": TEMPLATES[*template]}));
            (put(state, ResourceKind::Prompts, name, f), Expect::Ok, ctx())
        }
        Op::DeletePrompt(i) => {
            let (cmd, expect) = delete(state, ResourceKind::Prompts, PROMPTS[*i]);
            (cmd, expect, ctx())
        }
        Op::PutServer { name, tools, prompts, description } => {
            let name = SERVERS[*name];
            let f = fields(json!({
                "name": name,
                "description": DESCRIPTIONS[*description],
                "associated_tools": picked(TOOLS, *tools, state, ResourceKind::Tools),
                "associated_prompts": picked(PROMPTS, *prompts, state, ResourceKind::Prompts),
            }));
            (put(state, ResourceKind::Servers, name, f), Expect::Ok, ctx())
        }
        Op::DeleteServer(i) => {
            let (cmd, expect) = delete(state, ResourceKind::Servers, SERVERS[*i]);
            (cmd, expect, ctx())
        }
        Op::Rollback(idx) => {
            let t = point(idx, limits.floor.min(before.head.seq), before.head.seq);
            let req = must("a rollback request", timetravel::rollback_request(ledger, t, None, None))?;
            (Command::Rollback(req), Expect::Ok, rollback_ctx(t))
        }
        Op::RevertLatest => {
            let (id, first) = latest_batch(ledger)?;
            if first <= limits.keep {
                return Ok(());
            }
            let records = must("the batch's records", timetravel::batch_records(ledger, &id))?;
            let revertible = timetravel::touched(&records).is_ok_and(|s| !s.is_empty());
            match timetravel::revert_request(ledger, &id, false, &timetravel::Via::Cli) {
                Ok((req, _)) if revertible => (Command::Rollback(req), Expect::Ok, revert_ctx(&id)),
                Err(Error::Rejected(r)) if !revertible => {
                    // The genesis batch, or one that changed nothing (a refused attempt on a locked key).
                    prop_assert_eq!(r.kind, RejectionKind::Invalid, "{}", r.message);
                    return Ok(());
                }
                Ok(_) => return Err(fail(format!("batch {id} (from seq {first}) changed nothing but reverts"))),
                Err(e) => return Err(fail(format!("reverting the latest batch {id}: {e}"))),
            }
        }
    };
    let result = ledger.execute(cmd, wctx);
    let after = ledger.snapshot();
    match (expect, result) {
        (Expect::Ok, Ok(outcome)) => {
            prop_assert_eq!(outcome.head, after.head);
            prop_assert_eq!(outcome.changed(), after.head.seq > before.head.seq);
        }
        (Expect::Ok, Err(e)) => return Err(fail(format!("{op:?} was refused: {e}"))),
        (Expect::Rejected(kind), Err(Error::Rejected(r))) => {
            prop_assert_eq!(r.kind, kind, "{:?}: {}", op, r.message);
            let appended = if kind == RejectionKind::Locked { 1 } else { 0 };
            prop_assert_eq!(after.head.seq, before.head.seq + appended, "{:?} appended", op);
            prop_assert_eq!(settings_of(&after.state), settings_of(&before.state), "{:?} changed a setting", op);
            prop_assert_eq!(entities_of(&after.state), entities_of(&before.state), "{:?} changed an entity", op);
        }
        (Expect::Rejected(kind), other) => {
            return Err(fail(format!("{op:?} should be refused ({kind:?}), got {other:?}")));
        }
    }
    Ok(())
}

fn run(ledger: &Ledger, ops: &[Op], limits: Limits) -> Result<(), TestCaseError> {
    for op in ops {
        exec(ledger, op, limits)?;
    }
    Ok(())
}

/// Every value the log holds, by key.
fn settings_of(state: &SettingsState) -> BTreeMap<String, StoredValue> {
    state.entries().map(|(k, e)| (k.clone(), e.value.clone())).collect()
}

fn is_locked(ledger: &Ledger, key: &str) -> bool {
    ledger.catalog().get(key).is_some_and(|s| s.locked)
}

fn is_sensitive(ledger: &Ledger, key: &str) -> bool {
    ledger.catalog().get(key).is_none_or(|s| s.sensitive)
}

/// The values of keys that are not locked, and of those that are.
fn split(ledger: &Ledger, state: &SettingsState) -> (BTreeMap<String, StoredValue>, BTreeMap<String, StoredValue>) {
    settings_of(state).into_iter().partition(|(k, _)| !is_locked(ledger, k))
}

/// Every entity, as `KIND/NAME`.
fn entities_of(state: &SettingsState) -> BTreeMap<String, Map<String, Value>> {
    ResourceKind::ALL
        .into_iter()
        .flat_map(|kind| state.resources(kind).map(move |(n, e)| (format!("{kind}/{n}"), e.fields.clone())))
        .collect()
}

/// The references of `state` that name an entity it does not hold, as `KIND/NAME -> KIND/NAME`.
fn dangling(state: &SettingsState) -> Vec<String> {
    ResourceKind::ALL
        .into_iter()
        .flat_map(|kind| {
            state.resources(kind).flat_map(move |(name, e)| {
                referenced(kind, &e.fields)
                    .into_iter()
                    .filter(|(target, n)| state.resource_entry(*target, n).is_none())
                    .map(move |(target, n)| format!("{kind}/{name} -> {target}/{n}"))
            })
        })
        .collect()
}

/// Folds the events appended after `before` one by one: no state in between may leave a reference dangling
/// (creates and updates come in dependency order, deletes in reverse).
fn check_every_step_consistent(ledger: &Ledger, before: &SettingsState) -> Result<(), TestCaseError> {
    let mut state = before.clone();
    for env in envelopes_after(ledger, before.applied_seq)? {
        state.apply(&env);
        let broken = dangling(&state);
        prop_assert!(broken.is_empty(), "after seq {} ({:?}) references dangle: {:?}", env.seq, env.event, broken);
    }
    Ok(())
}

/// Reads the log up to `until`, verifies every link and folds it into a fresh state.
fn replay_to(ledger: &Ledger, until: u64) -> Result<SettingsState, TestCaseError> {
    let mut state = SettingsState::new();
    let mut head = Head::EMPTY;
    let limit = usize::try_from(until).expect("a small log");
    for rec in must("the log reads", ledger.store().read_after(0, limit).map_err(Error::from))? {
        let env = verify_link(&head, &rec).map_err(|e| fail(format!("the stored log verifies: {e}")))?;
        state.apply(&env);
        head = Head { seq: rec.seq, hash: rec.hash };
    }
    prop_assert_eq!(head.seq, until.min(ledger.snapshot().head.seq));
    Ok(state)
}

fn envelopes_after(ledger: &Ledger, after: u64) -> Result<Vec<Envelope>, TestCaseError> {
    let records = must("the log reads", ledger.store().read_after(after, usize::MAX >> 1).map_err(Error::from))?;
    records.iter().map(|r| Envelope::decode(&r.envelope).map_err(|e| fail(format!("decodes: {e}")))).collect()
}

/// The entity fields that differ, sorted: what a plan's `changed` names.
fn changed_fields(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    old.keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A value as the plan and the diff show it.
fn shown(ledger: &Ledger, key: &str, v: Option<&StoredValue>) -> Value {
    match v {
        None => Value::Null,
        Some(_) if is_sensitive(ledger, key) => json!(MASK),
        Some(v) => v.masked(),
    }
}

/// Property 1: the plan of a rollback to `t` lists exactly what differs (locked keys as `locked`), and
/// applying it leaves every unlocked setting and every entity as `state_at(t)` holds them and every locked
/// key as it was. Also checks the batch's cause and that the live state is a replay of the log.
fn check_rollback_to(ledger: &Ledger, t: u64) -> Result<(), TestCaseError> {
    let before = ledger.snapshot();
    let then = must("state_at", ledger.state_at(t))?;
    prop_assert_eq!(then.applied_seq, t);
    let (then_free, then_locked) = split(ledger, &then);
    let (now_free, now_locked) = split(ledger, &before.state);
    let (then_entities, now_entities) = (entities_of(&then), entities_of(&before.state));

    // What the plan must say, subject by subject.
    let mut expected: BTreeMap<String, (&str, Vec<String>)> = BTreeMap::new();
    for key in then_free.keys().chain(now_free.keys()) {
        if then_free.get(key) != now_free.get(key) {
            let action = if then_free.contains_key(key) { "set" } else { "reset" };
            expected.insert(key.clone(), (action, Vec::new()));
        }
    }
    let mut locked_differ = BTreeSet::new();
    for key in then_locked.keys().chain(now_locked.keys()) {
        if then_locked.get(key) != now_locked.get(key) {
            expected.insert(key.clone(), ("locked", Vec::new()));
            locked_differ.insert(key.clone());
        }
    }
    for subject in then_entities.keys().chain(now_entities.keys()) {
        match (then_entities.get(subject), now_entities.get(subject)) {
            (Some(a), Some(b)) if a != b => {
                expected.insert(subject.clone(), ("update", changed_fields(b, a)));
            }
            (Some(_), None) => {
                expected.insert(subject.clone(), ("create", Vec::new()));
            }
            (None, Some(_)) => {
                expected.insert(subject.clone(), ("delete", Vec::new()));
            }
            _ => {}
        }
    }

    let req = must("a rollback request", timetravel::rollback_request(ledger, t, None, None))?;
    prop_assert_eq!(req.to_seq, t);
    prop_assert_eq!(&req.settings, &settings_of(&then), "the request carries the log's values at the point");
    let plan = must("the plan", plan_json(ledger, &req))?;
    prop_assert_eq!(&plan["head"], &json!(before.head.seq));
    prop_assert_eq!(&plan["to"]["seq"], &json!(t));
    let steps = plan["steps"].as_array().ok_or_else(|| fail("steps is a list"))?;
    let mut got: BTreeMap<String, (&str, Vec<String>)> = BTreeMap::new();
    let mut restart = BTreeSet::new();
    for step in steps {
        // Shown as people name it (bare in the default namespace); the state is keyed by qualified keys.
        let subject = cfgledger_events::namespace::subject(step["subject"].as_str().ok_or_else(|| fail("a subject"))?);
        let action = step["action"].as_str().ok_or_else(|| fail("an action"))?;
        let changed: Vec<String> = serde_json::from_value(step.get("changed").cloned().unwrap_or(json!([])))
            .map_err(|e| fail(format!("changed is a list: {e}")))?;
        if subject.contains('/') {
            prop_assert_eq!(&step["current"], &Value::Null);
            prop_assert_eq!(&step["value"], &Value::Null);
        } else {
            // Values are shown as the log holds them, masked when sensitive: a sealed text never shows.
            let (now_v, then_v) = (before.state.current(&subject), then.current(&subject));
            prop_assert_eq!(&step["current"], &shown(ledger, &subject, now_v), "{}", subject);
            prop_assert_eq!(&step["value"], &shown(ledger, &subject, then_v), "{}", subject);
            let spec = ledger.catalog().get(&subject).ok_or_else(|| fail("a catalog key"))?;
            prop_assert_eq!(step.get("restart_required").is_some(), spec.reload == Reload::Restart);
            if spec.reload == Reload::Restart {
                restart.insert(subject.clone());
            }
        }
        prop_assert!(got.insert(subject.clone(), (action, changed)).is_none(), "{} planned twice", subject);
    }
    prop_assert_eq!(&got, &expected, "the plan of a rollback to seq {} lists what differs", t);
    prop_assert_eq!(&plan["counts"]["locked"], &json!(locked_differ.len()));
    prop_assert_eq!(&plan["counts"]["invalid"], &json!(0));
    let listed: BTreeSet<String> = serde_json::from_value::<Vec<String>>(plan["restart_required"].clone())
        .map_err(|e| fail(format!("restart_required is a list: {e}")))?
        .iter()
        .map(|s| cfgledger_events::namespace::subject(s))
        .collect();
    prop_assert_eq!(listed, restart);

    let outcome = must("the rollback", ledger.execute(Command::Rollback(req), rollback_ctx(t)))?;
    let changes = expected.values().filter(|(a, _)| *a != "locked").count();
    prop_assert_eq!(outcome.changed(), changes > 0, "a rollback appends iff something unlocked differs");
    let after = ledger.snapshot();
    let (after_free, after_locked) = split(ledger, &after.state);
    prop_assert_eq!(&after_free, &then_free, "unlocked settings are as they were at seq {}", t);
    prop_assert_eq!(&after_locked, &now_locked, "locked keys keep their value");
    prop_assert_eq!(&entities_of(&after.state), &then_entities, "entities are as they were at seq {}", t);

    // One batch of exactly the planned changes, caused by the rollback.
    let appended = envelopes_after(ledger, before.head.seq)?;
    prop_assert_eq!(appended.len(), changes);
    for env in &appended {
        prop_assert_eq!(Some(&env.batch.id), outcome.batch_id.as_ref());
        prop_assert_eq!(&env.batch.cause, &rollback_ctx(t).cause);
    }
    prop_assert_eq!(&replay_to(ledger, after.head.seq)?, &after.state, "the live state is a replay of the log");
    check_every_step_consistent(ledger, &before.state)?;

    // Nothing but locked keys differs between the point and now.
    let diff = json!(must("diff", timetravel::diff(ledger, &format!("seq:{t}"), None, None))?);
    let mut differ: BTreeSet<String> = BTreeSet::new();
    for part in ["added", "removed", "changed"] {
        for line in diff[part].as_array().ok_or_else(|| fail("a list"))? {
            differ.insert(cfgledger_events::namespace::subject(line["key"].as_str().unwrap_or_default()));
        }
    }
    prop_assert_eq!(differ, locked_differ, "after the rollback only locked keys differ from seq {}", t);
    Ok(())
}

/// Property 2: `diff(t1, t2)` applied to the state at `t1` gives the state at `t2`.
fn check_diff(ledger: &Ledger, t1: u64, t2: u64) -> Result<(), TestCaseError> {
    let d = json!(must("diff", timetravel::diff(ledger, &format!("seq:{t1}"), Some(&format!("seq:{t2}")), None))?);
    prop_assert_eq!(&d["from"]["seq"], &json!(t1));
    prop_assert_eq!(&d["to"]["seq"], &json!(t2));
    let (a, b) = (must("state_at", ledger.state_at(t1))?, must("state_at", ledger.state_at(t2))?);

    // Non-sensitive subjects as the diff shows them; sensitive keys only by whether they differ.
    let visible = |s: &SettingsState| -> BTreeMap<String, Value> {
        let mut m: BTreeMap<String, Value> = settings_of(s)
            .into_iter()
            .filter(|(k, _)| !is_sensitive(ledger, k))
            .map(|(k, v)| (k, v.masked()))
            .collect();
        m.extend(entities_of(s).into_iter().map(|(k, f)| (k, Value::Object(f))));
        m
    };
    let (sa, sb) = (settings_of(&a), settings_of(&b));
    let sensitive_differ: BTreeSet<String> =
        sa.keys().chain(sb.keys()).filter(|k| is_sensitive(ledger, k) && sa.get(*k) != sb.get(*k)).cloned().collect();

    let mut state = visible(&a);
    let mut listed = BTreeSet::new();
    let mut sensitive_listed = BTreeSet::new();
    for part in ["added", "removed", "changed"] {
        for line in d[part].as_array().ok_or_else(|| fail("a list"))? {
            let key = cfgledger_events::namespace::subject(line["key"].as_str().ok_or_else(|| fail("a key"))?);
            prop_assert!(listed.insert(key.clone()), "{} listed twice", key);
            let (old, new) = (&line["old"], &line["new"]);
            let entity = key.contains('/');
            if !entity && is_sensitive(ledger, &key) {
                let (o, n) = match part {
                    "added" => (Value::Null, json!(MASK)),
                    "removed" => (json!(MASK), Value::Null),
                    _ => (json!(MASK), json!(MASK)),
                };
                prop_assert_eq!((old, new), (&o, &n), "{} is masked", key);
                sensitive_listed.insert(key);
                continue;
            }
            match part {
                "added" => {
                    prop_assert_eq!(old, &Value::Null);
                    prop_assert!(state.insert(key.clone(), new.clone()).is_none(), "{} added but present", key);
                }
                "removed" => {
                    prop_assert_eq!(new, &Value::Null);
                    let gone = state.remove(&key);
                    prop_assert_eq!(gone.as_ref(), Some(old), "{} removed", key);
                }
                _ => {
                    prop_assert_eq!(state.get(&key), Some(old), "{} changed from what it was", key);
                    prop_assert_ne!(old, new);
                    if entity {
                        let (Value::Object(o), Value::Object(n)) = (old, new) else {
                            return Err(fail(format!("{key}: entities are objects")));
                        };
                        prop_assert_eq!(&line["changed"], &json!(changed_fields(o, n)), "{}", key);
                    }
                    state.insert(key.clone(), new.clone());
                }
            }
        }
    }
    prop_assert_eq!(&state, &visible(&b), "diff(seq:{}, seq:{}) applied to seq {} gives seq {}", t1, t2, t1, t2);
    prop_assert_eq!(sensitive_listed, sensitive_differ, "a sensitive key is listed iff its stored value changed");
    Ok(())
}

/// Sets `SNAPSHOT_INTERVAL` (1 to 3, so the set itself is checkpointed) and returns its seq.
fn set_interval(ledger: &Ledger, interval: u64) -> Result<u64, TestCaseError> {
    let cmd = Command::Set { key: "cfgledger:SNAPSHOT_INTERVAL".into(), value: Input::Text(interval.to_string()) };
    let outcome = must("set SNAPSHOT_INTERVAL", ledger.execute(cmd, ctx()))?;
    Ok(outcome.seqs.ok_or_else(|| fail("SNAPSHOT_INTERVAL changed"))?.1)
}

/// Waits (generously: the checkpoint thread runs on its own time) until the store holds a checkpoint.
fn wait_for_checkpoints(ledger: &Ledger) -> Result<Vec<u64>, TestCaseError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seqs = must("snapshot seqs", ledger.store().snapshot_seqs().map_err(Error::from))?;
        if !seqs.is_empty() {
            return Ok(seqs);
        }
        if Instant::now() > deadline {
            return Err(fail("no checkpoint was written within a minute"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn roundtrips(state: &SettingsState) -> Result<(), TestCaseError> {
    let decoded = snapshot::decode(&snapshot::encode(state)).map_err(fail)?;
    prop_assert_eq!(&decoded, state, "the checkpoint codec round-trips");
    Ok(())
}

/// Property 3: every stored checkpoint is the replay of the log up to its seq, and `state_at` (newest
/// checkpoint plus the tail) equals a full replay at each point asked.
fn check_checkpoints(ledger: &Ledger, points: &[Index]) -> Result<(), TestCaseError> {
    let seqs = wait_for_checkpoints(ledger)?;
    let h = head(ledger);
    for &seq in &seqs {
        let stored = must("load_snapshot", ledger.store().load_snapshot(seq).map_err(Error::from))?
            .ok_or_else(|| fail(format!("checkpoint {seq} loads")))?;
        prop_assert_eq!(stored.seq, seq);
        prop_assert_eq!(snapshot::digest(stored.seq, &stored.head_hash, &stored.state), stored.digest);
        let state = snapshot::decode(&stored.state).map_err(fail)?;
        prop_assert_eq!(&state, &replay_to(ledger, seq)?, "checkpoint {} is the replay up to it", seq);
        roundtrips(&state)?;
    }
    let mut asked: BTreeSet<u64> = points.iter().map(|i| point(i, 1, h)).collect();
    // Exactly at a checkpoint, just after it, and the head.
    asked.extend(seqs.iter().flat_map(|&s| [s, (s + 1).min(h)]));
    asked.insert(h);
    for t in asked {
        let at = must("state_at", ledger.state_at(t))?;
        prop_assert_eq!(&at, &replay_to(ledger, t)?, "state_at({}) equals a full replay", t);
        roundtrips(&at)?;
    }
    roundtrips(&ledger.snapshot().state)?;
    Ok(())
}

/// Property 4: reverting the latest batch plans exactly the steps and events of a rollback to just before
/// it, and applying it gives the state of just before it (locked keys aside).
fn check_revert_latest(ledger: &Ledger) -> Result<(), TestCaseError> {
    let (id, first) = latest_batch(ledger)?;
    let records = must("the batch", timetravel::batch_records(ledger, &id))?;
    let revertible = timetravel::touched(&records).is_ok_and(|s| !s.is_empty());
    let (req, plan) = match timetravel::revert_request(ledger, &id, false, &timetravel::Via::Cli) {
        Ok(found) if revertible => found,
        Err(Error::Rejected(r)) if !revertible => {
            prop_assert_eq!(r.kind, RejectionKind::Invalid, "{}", r.message);
            return Ok(());
        }
        other => return Err(fail(format!("revert of {id} (revertible: {revertible}): {:?}", other.map(|p| p.1)))),
    };
    let plan = json!(plan);
    prop_assert_eq!(req.to_seq, first - 1);
    prop_assert_eq!(&plan["revert"]["batch"], &json!(id));
    prop_assert_eq!(&plan["revert"]["later_changes"], &json!([]), "nothing follows the latest batch");

    let before = ledger.snapshot();
    let full = must("a rollback request", timetravel::rollback_request(ledger, first - 1, None, None))?;
    let catalog = ledger.catalog();
    let reverted = rollback::plan(catalog, &before.state, &req).map_err(|r| fail(r.message))?;
    let rolled = rollback::plan(catalog, &before.state, &full).map_err(|r| fail(r.message))?;
    prop_assert_eq!(&reverted.steps, &rolled.steps, "revert {} and rollback to seq {} plan alike", id, first - 1);
    prop_assert_eq!(&reverted.events, &rolled.events);
    let full_plan = must("the plan", plan_json(ledger, &full))?;
    prop_assert_eq!(&plan["steps"], &full_plan["steps"]);

    let then = must("state_at", ledger.state_at(first - 1))?;
    let outcome = must("the revert", ledger.execute(Command::Rollback(req), revert_ctx(&id)))?;
    prop_assert_eq!(outcome.changed(), !rolled.events.is_empty());
    let after = ledger.snapshot();
    let (after_free, after_locked) = split(ledger, &after.state);
    prop_assert_eq!(&after_free, &split(ledger, &then).0, "the revert returns to seq {}", first - 1);
    prop_assert_eq!(&after_locked, &split(ledger, &before.state).1, "locked keys keep their value");
    prop_assert_eq!(&entities_of(&after.state), &entities_of(&then));
    for env in envelopes_after(ledger, before.head.seq)? {
        prop_assert_eq!(&env.batch.cause, &revert_ctx(&id).cause);
    }
    check_every_step_consistent(ledger, &before.state)?;
    Ok(())
}

/// Property 5: after a rollback to `t` from head `h`, a rollback to `h` gives back the state at `h`: every
/// setting (locked ones never moved) and every entity.
fn check_rollback_undone(ledger: &Ledger, t: u64) -> Result<(), TestCaseError> {
    let h = head(ledger);
    let at_h = ledger.snapshot().state.clone();
    check_rollback_to(ledger, t)?;
    check_rollback_to(ledger, h)?;
    let now = ledger.snapshot();
    prop_assert_eq!(&settings_of(&now.state), &settings_of(&at_h), "every setting is back as at seq {}", h);
    prop_assert_eq!(&entities_of(&now.state), &entities_of(&at_h), "every entity is back as at seq {}", h);
    let stored = must("state_at", ledger.state_at(h))?;
    prop_assert_eq!(&stored, &at_h, "the state at seq {} is unchanged by what followed", h);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rolling_back_returns_every_unlocked_setting_and_entity_to_the_point(
        ops in history(40),
        to in any::<Index>(),
    ) {
        let w = open(false);
        run(&w.ledger, &ops, ANYTHING)?;
        let t = point(&to, 1, head(&w.ledger));
        check_rollback_to(&w.ledger, t)?;
    }

    #[test]
    fn a_diff_applied_to_the_earlier_state_gives_the_later_one(
        ops in history(40),
        from in any::<Index>(),
        to in any::<Index>(),
    ) {
        let w = open(false);
        run(&w.ledger, &ops, ANYTHING)?;
        let h = head(&w.ledger);
        let (t1, t2) = (point(&from, 1, h), point(&to, 1, h));
        check_diff(&w.ledger, t1, t2)?;
        check_diff(&w.ledger, t2, t1)?;
        check_diff(&w.ledger, t1, t1)?;
    }

    #[test]
    fn a_checkpoint_plus_its_tail_equals_a_full_replay(
        interval in 1u64..=3,
        ops in history(40),
        points in prop::collection::vec(any::<Index>(), 1..4),
    ) {
        let w = open(false);
        let set = set_interval(&w.ledger, interval)?;
        run(&w.ledger, &ops, Limits { floor: set, keep: set })?;
        check_checkpoints(&w.ledger, &points)?;
    }

    #[test]
    fn reverting_the_latest_batch_equals_rolling_back_to_just_before_it(ops in history(40)) {
        let w = open(false);
        run(&w.ledger, &ops, ANYTHING)?;
        check_revert_latest(&w.ledger)?;
    }

    #[test]
    fn a_rollback_can_itself_be_rolled_back(ops in history(40), to in any::<Index>()) {
        let w = open(false);
        run(&w.ledger, &ops, ANYTHING)?;
        let t = point(&to, 1, head(&w.ledger));
        check_rollback_undone(&w.ledger, t)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// All five properties on one SQLite file per case: its indexed batch queries, its checkpoint table.
    #[test]
    fn time_travel_holds_on_a_sqlite_store(
        interval in 1u64..=3,
        ops in history(30),
        to in any::<Index>(),
        from in any::<Index>(),
        points in prop::collection::vec(any::<Index>(), 1..3),
    ) {
        let w = open(true);
        let l = &w.ledger;
        let set = set_interval(l, interval)?;
        run(l, &ops, Limits { floor: set, keep: set })?;
        check_checkpoints(l, &points)?;
        let h = head(l);
        check_diff(l, point(&from, 1, h), point(&to, 1, h))?;
        check_revert_latest(l)?;
        let t = point(&to, 1, head(l));
        check_rollback_undone(l, t)?;
    }
}

/// The rollback plan as JSON, for assertions by field.
fn plan_json(
    ledger: &cfgledger::Ledger,
    req: &cfgledger_events::rollback::RollbackRequest,
) -> Result<serde_json::Value, cfgledger::Error> {
    timetravel::plan(ledger, req).map(|p| serde_json::to_value(p).unwrap_or_default())
}
