//! Checkpoints of the projection, through the real ledger on memory, SQLite and PostgreSQL stores: they are
//! written in the background every `SNAPSHOT_INTERVAL` events; `state_at` gives exactly what a full replay
//! of the log gives at every seq, with or without them; reopening starts from the newest good one; a bad
//! one (digest, bytes, head hash, format, seq) is ignored by reads and by the open alike, and kept for
//! `verify` to report; one with a valid digest over a wrong state is trusted by reads, and caught by
//! `verify`.
//!
//! Checkpoints are written by a thread of their own. Nothing here assumes how soon: a test that needs
//! one polls the store for it (with a generous deadline), and a test that tampers with them first turns
//! them off (`SNAPSHOT_INTERVAL=0`) and touches only seqs above that point, or closes the ledger and waits
//! until its threads let go of the store.

mod pg;

use cfgledger::clock::SteppingClock;
use cfgledger::store::{self, EventStore, StoreUrl, StoredSnapshot};
use cfgledger::usecase::verify::verify;
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions, WriteContext};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{verify_link, Actor, Cause, Command, Hash, Head, Input, ResourceKind, Source, Timestamp};
use cfgledger_projections::snapshot;
use cfgledger_projections::SettingsState;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECRET: &str = "snapshot-test-secret-0123456789abcdef";
/// A key no catalog has, planted in doctored checkpoints: whoever reads it started from that checkpoint.
const MARKER: &str = "mcpgateway:PLANTED_BY_A_CHECKPOINT";

/// Where a test's store lives. A memory store lives and dies with its one ledger; the others reopen.
struct World {
    url: StoreUrl,
    _dir: Option<tempfile::TempDir>,
    _db: Option<pg::TestDb>,
}

impl World {
    fn memory() -> World {
        World { url: StoreUrl::Memory, _dir: None, _db: None }
    }

    fn sqlite() -> World {
        let dir = tempfile::tempdir().expect("a temp dir");
        World { url: StoreUrl::Sqlite(dir.path().join("snapshots.db")), _dir: Some(dir), _db: None }
    }

    fn postgres() -> World {
        let db = pg::TestDb::new();
        World { url: StoreUrl::Postgres(db.url()), _dir: None, _db: Some(db) }
    }

    fn open(&self) -> Ledger {
        let mut opts = OpenOptions::new(self.url.clone(), suite_catalog());
        opts.env_file = EnvFileChoice::None;
        opts.process_env = BTreeMap::from([("CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(), SECRET.to_string())]);
        opts.clock = Arc::new(SteppingClock::new(Timestamp(1_800_000_000_000_000)));
        Ledger::open(opts).expect("the ledger opens").0
    }

    /// A handle on the store with no ledger around it (SQLite and PostgreSQL only).
    fn raw_store(&self) -> Arc<dyn EventStore> {
        assert!(self.url != StoreUrl::Memory, "a memory store has no second handle");
        store::open(&self.url).expect("the store opens")
    }
}

/// Waits for `cond`, failing after a deadline far beyond what it should take.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Drops the ledger and waits until its writer and checkpoint threads have let go of its store: after
/// this, nothing of it writes any more. The caller must hold no clone of `ledger.store()`.
fn close(ledger: Ledger) {
    let store = Arc::downgrade(ledger.store());
    drop(ledger);
    wait_until("the closed ledger's threads to release the store", || store.strong_count() == 0);
}

fn ctx(i: u64) -> WriteContext {
    let name = ["alice", "bob", "carol"][usize::try_from(i % 3).expect("small")];
    WriteContext {
        actor: Actor { name: name.into(), role: None, source: Source::Api, address: None, request_id: None },
        cause: Cause::Cli { command: "test".into() },
        reason: None,
        bypass: false,
    }
}

fn set(ledger: &Ledger, key: &str, value: &str) -> cfgledger::Outcome {
    ledger
        .execute(Command::Set { key: key.into(), value: Input::Text(value.into()) }, ctx(0))
        .unwrap_or_else(|e| panic!("set {key}={value}: {e}"))
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A deterministic stream of commands that all succeed (but one kind, a locked key, which is refused with a
/// `ChangeRejected` event): settings set (plain and sealed) and reset, tools created (some with sealed
/// credentials), patched, replaced and deleted, servers that reference tools created and deleted, users
/// added, given new passwords and roles, and removed, token signing keys rotated and tokens revoked. It keeps just enough of a model to only delete what exists and is not referenced.
#[derive(Default)]
struct Script {
    i: u64,
    tools: Vec<String>,
    /// Each server with the tool it references.
    servers: Vec<(String, String)>,
    users: Vec<String>,
}

impl Script {
    fn next_command(&mut self) -> (Command, bool) {
        let i = self.i;
        self.i += 1;
        let round = usize::try_from(i / 12).expect("small");
        let set = |key: &str, value: String| Command::Set { key: key.into(), value: Input::Text(value) };
        let fallback = set("CACHE_TTL", ["90s", "5m", "1h", "10m"][round % 4].into());
        let command = match i % 12 {
            0 => set("LOG_LEVEL", ["debug", "warn", "error", "trace", "info"][round % 5].into()),
            1 => set("MAX_WORKERS", (1 + (i * 7) % 200).to_string()),
            2 => set("WEBHOOK_SECRET", format!("hook-{i}")),
            3 => Command::Reset { key: ["LOG_LEVEL", "MAX_WORKERS", "CACHE_TTL", "WEBHOOK_SECRET"][round % 4].into() },
            4 => {
                let name = format!("tool-{i}-ü");
                let mut f = fields(json!({
                    "name": name,
                    "url": format!("https://tools.example/{i}"),
                    "description": format!("tool number {i}"),
                    "input_schema": {"type": "object", "properties": {"x": {"maximum": 0.1 + (i as f64) / 3.0}}},
                    "tags": ["a", "ü"],
                    "custom": {"nested": [1, 2.5, null, "text"]},
                }));
                if round % 2 == 0 {
                    f.insert("auth_type".into(), json!("bearer"));
                    f.insert("auth_token".into(), json!(format!("token-{i}")));
                }
                self.tools.push(name);
                Command::CreateResource { kind: ResourceKind::Tools, fields: f }
            }
            5 => match self.tools.first() {
                Some(name) => Command::PatchResource {
                    kind: ResourceKind::Tools,
                    name: name.clone(),
                    patch: fields(json!({"description": format!("patched at {i}"), "custom": null})),
                },
                None => fallback,
            },
            6 => match self.tools.last() {
                Some(name) => Command::ReplaceResource {
                    kind: ResourceKind::Tools,
                    name: name.clone(),
                    fields: fields(json!({
                        "name": name,
                        "url": format!("https://replaced.example/{i}"),
                        "is_active": i % 2 == 0,
                    })),
                },
                None => fallback,
            },
            7 => match self.tools.get(round % self.tools.len().max(1)) {
                Some(tool) => {
                    let name = format!("srv-{i}");
                    self.servers.push((name.clone(), tool.clone()));
                    Command::CreateResource {
                        kind: ResourceKind::Servers,
                        fields: fields(json!({"name": name, "associated_tools": [tool]})),
                    }
                }
                None => fallback,
            },
            8 if !self.servers.is_empty() && round % 3 != 0 => {
                let (name, _) = self.servers.remove(0);
                Command::DeleteResource { kind: ResourceKind::Servers, name }
            }
            9 => match self.tools.iter().position(|t| self.servers.iter().all(|(_, used)| used != t)) {
                Some(at) => Command::DeleteResource { kind: ResourceKind::Tools, name: self.tools.remove(at) },
                None => set("FEDERATION_PEERS", format!("peer-{i}, peer-b")),
            },
            10 if round % 2 == 0 => return (set("JWT_ALGORITHM", "HS512".into()), true),
            10 if round % 4 == 3 => Command::RevokeToken {
                token_hash: blake3::hash(format!("token {i}").as_bytes()).to_hex().to_string(),
                // Some already expired when the next revocation is folded (the stepping clock starts later).
                expires_at: 1_799_999_000 + 600 * u64::try_from(round).expect("small"),
            },
            10 if round % 4 == 1 => Command::RotateSigningKey {
                key: format!("rotated-signing-key-number-{i:08}"),
                grace_secs: 60 * u64::try_from(round).expect("small"),
            },
            11 if round % 3 == 2 && !self.users.is_empty() => Command::RemoveUser { name: self.users.remove(0) },
            11 if round % 3 == 1 && round % 2 == 0 && !self.users.is_empty() => Command::ChangePassword {
                name: self.users[0].clone(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into(),
            },
            11 if round % 3 == 1 && !self.users.is_empty() => {
                Command::ChangeRole { name: self.users[0].clone(), role: ["auditor", "viewer"][round % 4 / 2].into() }
            }
            11 => {
                let name = format!("user{i}");
                self.users.push(name.clone());
                Command::AddUser {
                    name,
                    role: "viewer".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
                }
            }
            _ => fallback,
        };
        (command, false)
    }

    /// Runs `n` commands through the ledger.
    fn run(&mut self, ledger: &Ledger, n: u64) {
        for _ in 0..n {
            let (command, refused) = self.next_command();
            let what = format!("{command:?}");
            match (ledger.execute(command, ctx(self.i)), refused) {
                (Ok(_), false) | (Err(Error::Rejected(_)), true) => {}
                (other, _) => panic!("command {} ({what}) gave {other:?}", self.i - 1),
            }
        }
    }
}

/// The state after every seq by a full replay: `states[seq]`, from an empty state applying each verified
/// envelope in order (`states[0]` is the empty state).
fn replay(store: &dyn EventStore) -> Vec<SettingsState> {
    let mut state = SettingsState::new();
    let mut states = vec![state.clone()];
    let mut head = Head::EMPTY;
    for rec in store.read_after(0, usize::MAX).expect("the log reads") {
        state.apply(&verify_link(&head, &rec).expect("the log verifies"));
        head = Head { seq: rec.seq, hash: rec.hash };
        states.push(state.clone());
    }
    states
}

fn head_seq(states: &[SettingsState]) -> u64 {
    u64::try_from(states.len() - 1).expect("small")
}

fn at(states: &[SettingsState], seq: u64) -> &SettingsState {
    &states[usize::try_from(seq).expect("small")]
}

/// `state_at` for every seq from 0 to the head equals the replay.
fn assert_state_at_everywhere(ledger: &Ledger, states: &[SettingsState], what: &str) {
    for seq in 0..=head_seq(states) {
        let got = ledger.state_at(seq).unwrap_or_else(|e| panic!("{what}: state_at({seq}): {e}"));
        assert!(got == *at(states, seq), "{what}: state_at({seq}) differs from the replay");
    }
}

/// The hash of the log's event at `seq`.
fn hash_at(store: &dyn EventStore, seq: u64) -> Hash {
    let rec = store.read_after(seq - 1, 1).expect("a read").pop().expect("an event at the seq");
    assert_eq!(rec.seq, seq);
    rec.hash
}

/// A checkpoint as the ledger writes one, with `state` bytes and `head_hash` as given and a digest that
/// matches them.
fn sealed(seq: u64, head_hash: Hash, state: Vec<u8>) -> StoredSnapshot {
    let digest = snapshot::digest(seq, &head_hash, &state);
    StoredSnapshot { seq, head_hash, digest, state, created_at: Timestamp(1_900_000_000_000_000) }
}

/// `bytes` (an encoded state) with a value planted under `MARKER`: a wrong state, but well formed.
fn planted(bytes: &[u8]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(bytes).expect("a snapshot is JSON");
    let values = doc["values"].as_object_mut().expect("a values map");
    let mut entry = values.values().next().expect("the state holds a value").clone();
    entry["value"] = json!({"plain": "from a doctored checkpoint"});
    values.insert(MARKER.into(), entry);
    serde_json::to_vec(&doc).expect("encodes")
}

/// Turns checkpoints on at `every` events and runs `n` commands.
fn grow(ledger: &Ledger, script: &mut Script, every: u64, n: u64) {
    set(ledger, "cfgledger:SNAPSHOT_INTERVAL", &every.to_string());
    script.run(ledger, n);
}

/// Turns checkpoints off: returns the seq of that change. Checkpoints still on their way are of seqs at
/// or below it.
fn stop_checkpoints(ledger: &Ledger) -> u64 {
    set(ledger, "cfgledger:SNAPSHOT_INTERVAL", "0").head.seq
}

fn wait_for_checkpoints(store: &dyn EventStore, at_least: usize) {
    wait_until(&format!("{at_least} checkpoints"), || store.snapshot_seqs().expect("seqs").len() >= at_least);
}

// (a) Checkpoints are written as the log grows.

fn checkpoints_are_written_as_the_log_grows(world: World) {
    let ledger = world.open();
    let mut script = Script::default();
    if world.url != StoreUrl::Memory {
        // The default interval (1000) writes none for a short log: known for sure once the ledger is closed.
        script.run(&ledger, 12);
        close(ledger);
        assert!(
            world.raw_store().snapshot_seqs().expect("seqs").is_empty(),
            "no checkpoint below the default interval"
        );
        let reopened = world.open();
        return checkpoints_are_written_as_the_log_grows_on(reopened, script);
    }
    checkpoints_are_written_as_the_log_grows_on(ledger, script)
}

fn checkpoints_are_written_as_the_log_grows_on(ledger: Ledger, mut script: Script) {
    let store = ledger.store().clone();
    grow(&ledger, &mut script, 5, 20);
    let first_head = ledger.snapshot().head.seq;
    wait_for_checkpoints(store.as_ref(), 1);
    script.run(&ledger, 30);
    wait_until("a checkpoint of the grown log", || {
        store.snapshot_seqs().expect("seqs").last().is_some_and(|last| *last > first_head)
    });

    let head = ledger.snapshot().head.seq;
    let states = replay(store.as_ref());
    let seqs = store.snapshot_seqs().expect("seqs");
    assert!(seqs.len() >= 2, "checkpoints {seqs:?}");
    for pair in seqs.windows(2) {
        assert!(pair[1] >= pair[0] + 5, "checkpoints {seqs:?} come at most every 5 events");
    }
    for &seq in &seqs {
        assert!(seq <= head, "checkpoint {seq} beyond the head {head}");
        let stored = store.load_snapshot(seq).expect("load").expect("the checkpoint");
        assert_eq!(stored.seq, seq);
        assert_eq!(stored.head_hash, hash_at(store.as_ref(), seq), "checkpoint {seq} names the log's hash");
        assert_eq!(stored.digest, snapshot::digest(seq, &stored.head_hash, &stored.state));
        let state = snapshot::decode(&stored.state).expect("a checkpoint decodes");
        assert!(state == *at(&states, seq), "checkpoint {seq} holds the replay's state");
    }
    let report = verify(store.as_ref(), None).expect("the store verifies");
    assert!(report.snapshots_bad.is_empty(), "{:?}", report.snapshots_bad);
    for seq in &seqs {
        assert!(report.snapshots_ok.contains(seq), "verify checked checkpoint {seq}: {report:?}");
    }
}

#[test]
fn memory_checkpoints_are_written_as_the_log_grows() {
    checkpoints_are_written_as_the_log_grows(World::memory())
}

#[test]
fn sqlite_checkpoints_are_written_as_the_log_grows() {
    checkpoints_are_written_as_the_log_grows(World::sqlite())
}

// (b) `state_at` is a full replay at every seq.

fn state_at_every_seq_equals_a_full_replay(world: World) {
    let ledger = world.open();
    let store = ledger.store().clone();
    let mut script = Script::default();
    grow(&ledger, &mut script, 16, 320);
    wait_for_checkpoints(store.as_ref(), 3);
    let states = replay(store.as_ref());
    let head = head_seq(&states);
    assert!(head >= 250, "a log of a few hundred events, got {head}");
    assert_eq!(ledger.snapshot().head.seq, head);
    // The log holds every kind of change the script makes.
    let kinds: std::collections::BTreeSet<String> =
        store.read_after(0, usize::MAX).expect("a read").into_iter().map(|r| r.kind).collect();
    for kind in [
        "SettingChanged",
        "SettingReset",
        "ChangeRejected",
        "ResourceCreated",
        "ResourceUpdated",
        "ResourceDeleted",
        "UserAdded",
        "UserRemoved",
        "UserPasswordChanged",
        "UserRoleChanged",
        "SigningKeyRotated",
        "TokenRevoked",
    ] {
        assert!(kinds.contains(kind), "the log holds a {kind}: {kinds:?}");
    }
    assert_state_at_everywhere(&ledger, &states, &store.describe());
    assert!(ledger.state_at(head + 10).expect("state_at beyond the head") == *at(&states, head));
    // And the reads used checkpoints: none was found bad and dropped on the way.
    let seqs = store.snapshot_seqs().expect("seqs");
    assert!(seqs.len() >= 3, "{seqs:?}");
    assert!(verify(store.as_ref(), None).expect("verifies").snapshots_bad.is_empty());
}

#[test]
fn memory_state_at_every_seq_equals_a_full_replay() {
    state_at_every_seq_equals_a_full_replay(World::memory())
}

#[test]
fn sqlite_state_at_every_seq_equals_a_full_replay() {
    state_at_every_seq_equals_a_full_replay(World::sqlite())
}

#[test]
fn postgres_state_at_every_seq_equals_a_full_replay() {
    state_at_every_seq_equals_a_full_replay(World::postgres())
}

// (c) Reopening starts from the checkpoint and reaches the same state.

fn reopening_starts_from_the_checkpoint_and_gives_the_same_state(world: World) {
    let ledger = world.open();
    let mut script = Script::default();
    grow(&ledger, &mut script, 16, 200);
    wait_for_checkpoints(ledger.store().as_ref(), 2);
    stop_checkpoints(&ledger);
    script.run(&ledger, 7);
    let before = ledger.snapshot();
    close(ledger);

    let store = world.raw_store();
    let states = replay(store.as_ref());
    assert!(before.state == *at(&states, before.head.seq), "the published state was the replay's");
    let newest = store.load_snapshot(u64::MAX).expect("load").expect("a checkpoint");
    assert!(newest.seq < before.head.seq, "events follow the newest checkpoint");

    let reopened = world.open();
    assert_eq!(reopened.snapshot().head, before.head);
    assert!(reopened.snapshot().state == before.state, "the reopened state is the one before closing");
    assert!(reopened.snapshot().views == before.views, "every key resolves as before");
    assert_eq!(reopened.snapshot().head_time, before.head_time, "new events are stamped no earlier than before");
    assert_state_at_everywhere(&reopened, &states, "after reopening");
    close(reopened);

    // The open started from that checkpoint, not from the genesis: plant a value in it (with a digest that
    // matches) and the reopened state has it.
    store.save_snapshot(&sealed(newest.seq, newest.head_hash, planted(&newest.state))).expect("save");
    let trusting = world.open();
    assert!(trusting.snapshot().state.get(MARKER).is_some(), "the open read the newest checkpoint");
    assert_eq!(trusting.snapshot().head, before.head, "and folded the events after it");
    close(trusting);

    // With the checkpoint as the ledger wrote it, the open is faithful again.
    store.save_snapshot(&newest).expect("restore");
    let reopened = world.open();
    assert!(reopened.snapshot().state == before.state);
    assert_eq!(verify(store.as_ref(), None).expect("verifies").snapshots_bad, Vec::new());
}

#[test]
fn sqlite_reopening_starts_from_the_checkpoint_and_gives_the_same_state() {
    reopening_starts_from_the_checkpoint_and_gives_the_same_state(World::sqlite())
}

#[test]
fn postgres_reopening_starts_from_the_checkpoint_and_gives_the_same_state() {
    reopening_starts_from_the_checkpoint_and_gives_the_same_state(World::postgres())
}

// (d) Bad checkpoints are ignored and kept for verify to report: never dropped silently.

/// Checkpoints at `base`, `base + 2`, ... that must each be refused, with what is wrong with them.
fn bad_checkpoints(store: &dyn EventStore, states: &[SettingsState], base: u64) -> Vec<(StoredSnapshot, &'static str)> {
    let seq = |k: u64| base + 2 * k;
    let good = |s: u64| sealed(s, hash_at(store, s), snapshot::encode(at(states, s)));
    let mut digest_altered = good(seq(0));
    digest_altered.digest.0[0] ^= 0x01;
    let mut bytes_altered = good(seq(1));
    let middle = bytes_altered.state.len() / 2;
    bytes_altered.state[middle] ^= 0x01;
    let mut truncated = good(seq(2));
    truncated.state.truncate(truncated.state.len() - 1);
    let s = seq(6);
    let mut other_format: Value = serde_json::from_slice(&snapshot::encode(at(states, s))).expect("JSON");
    other_format["format"] = json!(99);
    vec![
        (digest_altered, "its digest altered"),
        (bytes_altered, "a byte of its state altered"),
        (truncated, "its state cut short"),
        (
            sealed(seq(3), Hash([7; 32]), snapshot::encode(at(states, seq(3)))),
            "a head hash not the log's (digest matching)",
        ),
        (
            sealed(seq(4), hash_at(store, seq(4)), b"not a snapshot".to_vec()),
            "a state that does not decode (digest matching)",
        ),
        (
            sealed(seq(5), hash_at(store, seq(5)), snapshot::encode(at(states, seq(5) - 1))),
            "the state of the seq before it (digest matching)",
        ),
        (
            sealed(s, hash_at(store, s), serde_json::to_vec(&other_format).expect("JSON")),
            "another snapshot format (digest matching)",
        ),
    ]
}

fn bad_checkpoints_are_ignored_and_reported(world: World) {
    let ledger = world.open();
    let store = ledger.store().clone();
    let mut script = Script::default();
    grow(&ledger, &mut script, 8, 100);
    wait_for_checkpoints(store.as_ref(), 2);
    let stopped = stop_checkpoints(&ledger);
    script.run(&ledger, 30);
    let states = replay(store.as_ref());
    let head = head_seq(&states);
    let bad = bad_checkpoints(store.as_ref(), &states, stopped + 1);
    assert!(bad.last().expect("some").0.seq < head);

    // Reads: each bad checkpoint is the newest at or below its seq, is refused but kept (so that verify and
    // the background check keep reporting it), and the state is still the replay's (from a good checkpoint
    // below it).
    for (snap, _) in &bad {
        store.save_snapshot(snap).expect("save");
    }
    let report = verify(store.as_ref(), None).expect("the log itself verifies");
    let flagged: Vec<u64> = report.snapshots_bad.iter().map(|(s, _)| *s).collect();
    assert_eq!(flagged, bad.iter().map(|(s, _)| s.seq).collect::<Vec<_>>(), "verify names each bad one: {report:?}");
    for (snap, why) in &bad {
        assert!(store.snapshot_seqs().expect("seqs").contains(&snap.seq));
        for seq in [snap.seq, snap.seq + 1] {
            let got = ledger.state_at(seq).unwrap_or_else(|e| panic!("state_at({seq}) with {why}: {e}"));
            assert!(got == *at(&states, seq), "state_at({seq}) with a checkpoint with {why}");
        }
        assert!(store.snapshot_seqs().expect("seqs").contains(&snap.seq), "the checkpoint with {why} was kept");
    }
    assert_state_at_everywhere(&ledger, &states, "after the bad checkpoints");
    let again = verify(store.as_ref(), None).expect("verifies").snapshots_bad;
    assert_eq!(again.len(), bad.len(), "verify still reports every bad one after the reads: {again:?}");
    // What `cfgledger verify --drop-bad-snapshots` does: the good ones stay, and verify is clean.
    for (seq, _) in &again {
        store.delete_snapshot(*seq).expect("drop");
    }
    assert!(store.snapshot_seqs().expect("seqs").iter().all(|s| *s <= stopped), "the good ones are kept");
    assert!(verify(store.as_ref(), None).expect("verifies").snapshots_bad.is_empty());
    if world.url == StoreUrl::Memory {
        return;
    }

    // Opening: the same bad ones, and one beyond the head, stand above every good one. The open refuses
    // each on its way down (keeping them), and reaches the replay's state at the head.
    drop(store);
    close(ledger);
    let store = world.raw_store();
    let beyond = sealed(head + 5, Hash([9; 32]), snapshot::encode(at(&states, head)));
    for (snap, _) in &bad {
        store.save_snapshot(snap).expect("save");
    }
    store.save_snapshot(&beyond).expect("save");
    let reopened = world.open();
    assert_eq!(reopened.snapshot().head.seq, head);
    assert!(reopened.snapshot().state == *at(&states, head), "the reopened state is the replay's");
    let left = store.snapshot_seqs().expect("seqs");
    for snap in bad.iter().map(|(s, _)| s).chain([&beyond]) {
        assert!(left.contains(&snap.seq), "the bad one at {} is kept for verify to report: {left:?}", snap.seq);
    }
    assert_state_at_everywhere(&reopened, &states, "after reopening past bad checkpoints");
}

#[test]
fn memory_bad_checkpoints_are_ignored_and_reported() {
    bad_checkpoints_are_ignored_and_reported(World::memory())
}

#[test]
fn sqlite_bad_checkpoints_are_ignored_by_reads_and_by_the_open_and_reported() {
    bad_checkpoints_are_ignored_and_reported(World::sqlite())
}

/// A checkpoint an older build wrote (an earlier format, its digest sound) is a cache to rebuild, not
/// evidence: reads drop it quietly and verify does not report it.
#[test]
fn a_checkpoint_an_older_build_wrote_is_dropped_quietly_not_reported() {
    let world = World::memory();
    let ledger = world.open();
    let store = ledger.store().clone();
    let mut script = Script::default();
    grow(&ledger, &mut script, 8, 40);
    let stopped = stop_checkpoints(&ledger);
    script.run(&ledger, 20);
    let states = replay(store.as_ref());
    let seq = stopped + 5;
    let mut old: Value = serde_json::from_slice(&snapshot::encode(at(&states, seq))).expect("JSON");
    old["format"] = json!(snapshot::FORMAT - 1);
    store
        .save_snapshot(&sealed(seq, hash_at(store.as_ref(), seq), serde_json::to_vec(&old).expect("JSON")))
        .expect("save");
    let report = verify(store.as_ref(), None).expect("the log verifies");
    assert!(report.snapshots_bad.is_empty(), "an older build's checkpoint is not reported: {report:?}");
    assert!(ledger.state_at(seq).expect("state_at") == *at(&states, seq));
    assert!(!store.snapshot_seqs().expect("seqs").contains(&seq), "the read dropped it");
}

// (e) A valid digest over a wrong state: trusted by reads, caught by verify.

fn a_wrong_state_under_a_valid_digest_is_caught_by_verify(world: World) {
    let ledger = world.open();
    let store = ledger.store().clone();
    let mut script = Script::default();
    grow(&ledger, &mut script, 8, 80);
    wait_for_checkpoints(store.as_ref(), 2);
    let stopped = stop_checkpoints(&ledger);
    script.run(&ledger, 20);
    let states = replay(store.as_ref());
    let seq = stopped + 5;
    let forged = sealed(seq, hash_at(store.as_ref(), seq), planted(&snapshot::encode(at(&states, seq))));
    store.save_snapshot(&forged).expect("save");

    // Reads check the digest and the log's hash, both of which pass: they trust it.
    let read = ledger.state_at(seq).expect("state_at");
    assert!(read != *at(&states, seq) && read.get(MARKER).is_some(), "reads start from the forged checkpoint");
    assert!(ledger.state_at(seq + 3).expect("state_at").get(MARKER).is_some(), "and fold on from it");
    assert!(store.snapshot_seqs().expect("seqs").contains(&seq), "it passed the read's checks, so it stays");

    // Verify replays the log and compares: it names the forged one, and only it.
    let report = verify(store.as_ref(), None).expect("the log itself verifies");
    assert!(!report.ok());
    assert_eq!(report.snapshots_bad.len(), 1, "{report:?}");
    assert_eq!(report.snapshots_bad[0].0, seq, "{report:?}");
    assert!(report.snapshots_bad[0].1.contains("differs from the replay"), "{report:?}");
    assert!(!report.snapshots_ok.is_empty() && report.snapshots_ok.iter().all(|s| *s <= stopped), "{report:?}");

    // Once it is deleted, reads are the replay again.
    store.delete_snapshot(seq).expect("delete");
    assert_state_at_everywhere(&ledger, &states, "after deleting the forged checkpoint");
    assert!(verify(store.as_ref(), None).expect("verifies").ok());
}

#[test]
fn memory_a_wrong_state_under_a_valid_digest_is_caught_by_verify() {
    a_wrong_state_under_a_valid_digest_is_caught_by_verify(World::memory())
}

#[test]
fn sqlite_a_wrong_state_under_a_valid_digest_is_caught_by_verify() {
    a_wrong_state_under_a_valid_digest_is_caught_by_verify(World::sqlite())
}

// (f) Checkpoints are a cache: deleting them all changes no read.

fn deleting_every_checkpoint_changes_no_state_at(world: World) {
    let mut ledger = world.open();
    let mut script = Script::default();
    grow(&ledger, &mut script, 8, 120);
    wait_for_checkpoints(ledger.store().as_ref(), 3);
    stop_checkpoints(&ledger);
    script.run(&ledger, 10);
    if world.url != StoreUrl::Memory {
        // Closed and reopened with checkpoints off: nothing writes one behind the test's back.
        close(ledger);
        ledger = world.open();
    }
    let store = ledger.store().clone();
    let states = replay(store.as_ref());
    let head = head_seq(&states);
    let with: Vec<SettingsState> = (0..=head).map(|s| ledger.state_at(s).expect("state_at")).collect();
    assert!(with == states, "with checkpoints, state_at is the replay");
    let seqs = store.snapshot_seqs().expect("seqs");
    assert!(seqs.len() >= 3, "{seqs:?}");
    for seq in seqs {
        store.delete_snapshot(seq).expect("delete");
    }
    if world.url != StoreUrl::Memory {
        assert!(store.snapshot_seqs().expect("seqs").is_empty());
    }
    let without: Vec<SettingsState> = (0..=head).map(|s| ledger.state_at(s).expect("state_at")).collect();
    assert!(without == with, "deleting every checkpoint changed a state_at result");
    if world.url != StoreUrl::Memory {
        drop(store);
        close(ledger);
        let reopened = world.open();
        assert!(reopened.snapshot().state == *at(&states, head), "and a full replay opens the same state");
    }
}

#[test]
fn memory_deleting_every_checkpoint_changes_no_state_at() {
    deleting_every_checkpoint_changes_no_state_at(World::memory())
}

#[test]
fn sqlite_deleting_every_checkpoint_changes_no_state_at() {
    deleting_every_checkpoint_changes_no_state_at(World::sqlite())
}
