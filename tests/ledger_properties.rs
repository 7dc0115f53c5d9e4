//! Properties of the ledger service over random command sequences, through the real writer and real
//! stores: a command that changes nothing appends nothing (setting a key to its current value, resetting
//! an unset key, an invalid or unknown key's value), a locked key appends exactly one `ChangeRejected` and
//! keeps its value, every accepted change appends exactly one event whose value is the parsed input, and
//! the published snapshot always equals a fresh replay of the stored log, also after the SQLite store is
//! closed and opened again.

use cfgledger::clock::SteppingClock;
use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions, WriteContext};
use cfgledger_events::decide::SettingsLookup;
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    verify_link, Actor, Cause, Command, Event, Head, Input, RejectionKind, Source, StoredValue, Timestamp,
};
use cfgledger_projections::SettingsState;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Keys of every interesting shape in the built-in catalog: hot and restart, plain and sensitive, locked,
/// locked and sensitive, and one the catalog does not know.
const KEYS: &[&str] = &[
    "LOG_LEVEL",
    "MAX_WORKERS",
    "CACHE_TTL",
    "FEDERATION_PEERS",
    "WEBHOOK_SECRET",
    "LOG_FILE",
    "JWT_ALGORITHM",
    "DATABASE_URL",
    "NO_SUCH_KEY",
];

/// Raw inputs that are valid for some keys and invalid for others, including non-canonical spellings of
/// the same value (`INFO` and `info`, `60s` and `1m`, ` 8 ` and `8`).
const TEXTS: &[&str] = &[
    "info",
    "INFO",
    "debug",
    "loud",
    "8",
    " 8 ",
    "0",
    "300",
    "1m",
    "60s",
    "90s",
    "8d",
    "a,b",
    "a, b",
    "",
    "hook-1",
    "hook-2",
    "HS512",
    "sqlite:///x.db",
];

#[derive(Debug, Clone)]
enum Op {
    Set(&'static str, &'static str),
    Reset(&'static str),
}

impl Op {
    fn key(&self) -> &'static str {
        match self {
            Op::Set(k, _) | Op::Reset(k) => k,
        }
    }

    fn command(&self) -> Command {
        match self {
            Op::Set(k, v) => Command::Set { key: k.to_string(), value: Input::Text(v.to_string()) },
            Op::Reset(k) => Command::Reset { key: k.to_string() },
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(KEYS);
    prop_oneof![
        3 => (key.clone(), prop::sample::select(TEXTS)).prop_map(|(k, v)| Op::Set(k, v)),
        1 => key.prop_map(Op::Reset),
    ]
}

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor {
            name: "prop".into(),
            role: Some("operator".into()),
            source: Source::Cli,
            address: None,
            request_id: None,
        },
        cause: Cause::Cli { command: "config set".into() },
        reason: None,
        bypass: false,
    }
}

fn options(db: StoreUrl) -> OpenOptions {
    OpenOptions {
        db,
        env_file: EnvFileChoice::None,
        catalog: suite_catalog(),
        process_env: BTreeMap::new(),
        pin_restart_keys: false,
        generate_secrets: Vec::new(),
        clock: Arc::new(SteppingClock::new(Timestamp(1_800_000_000_000_000))),
    }
}

fn open(db: StoreUrl) -> Ledger {
    Ledger::open(options(db)).expect("the ledger opens").0
}

/// The plaintext of the value the log holds for `key`, opening it if it is sealed.
fn plaintext(ledger: &Ledger, state: &SettingsState, key: &str) -> Option<Value> {
    state.current(key).map(|v| match v {
        StoredValue::Plain(v) => v.clone(),
        StoredValue::Sealed(text) => {
            let bytes = cfgledger::crypto::open_setting(ledger.secret_box(), key, text).expect("a sealed value opens");
            serde_json::from_slice(&bytes).expect("sealed plaintext is JSON")
        }
    })
}

/// Reads the whole stored log, verifies every link and folds it: what a new instance would see.
fn replay(ledger: &Ledger) -> (SettingsState, Head) {
    let mut state = SettingsState::new();
    let mut head = Head::EMPTY;
    for rec in ledger.store().read_after(0, usize::MAX).expect("the log reads") {
        let env = verify_link(&head, &rec).unwrap_or_else(|e| panic!("the stored log verifies: {e}"));
        state.apply(&env);
        head = Head { seq: rec.seq, hash: rec.hash };
    }
    (state, head)
}

fn new_events(ledger: &Ledger, after: u64) -> Vec<Event> {
    ledger
        .store()
        .read_after(after, 100)
        .expect("the log reads")
        .iter()
        .map(|r| cfgledger_events::Envelope::decode(&r.envelope).expect("a stored envelope decodes").event)
        .collect()
}

fn rejection_kind(result: &Result<cfgledger::Outcome, Error>) -> Option<RejectionKind> {
    match result {
        Err(Error::Rejected(r)) => Some(r.kind),
        _ => None,
    }
}

/// Runs one command and checks what it appended against the catalog's verdict on its input; returns a
/// failure message, if any.
fn run_and_check(ledger: &Ledger, op: &Op) -> Result<(), TestCaseError> {
    let catalog = ledger.catalog();
    let before = ledger.snapshot();
    let result = ledger.execute(op.command(), ctx());
    let after = ledger.snapshot();
    let appended = new_events(ledger, before.head.seq);
    prop_assert_eq!(ledger.store().head().expect("a head"), after.head, "the published head is the store's");
    prop_assert_eq!(u64::try_from(appended.len()).ok(), Some(after.head.seq - before.head.seq));

    let key = op.key();
    let Some(spec) = catalog.get(key) else {
        prop_assert_eq!(rejection_kind(&result), Some(RejectionKind::UnknownKey), "{:?}", op);
        prop_assert!(appended.is_empty(), "{:?} appended {:?}", op, appended);
        return Ok(());
    };
    let old = plaintext(ledger, &before.state, key);
    if spec.locked {
        prop_assert_eq!(rejection_kind(&result), Some(RejectionKind::Locked), "{:?}", op);
        prop_assert_eq!(appended.len(), 1, "{:?} appended {:?}", op, appended);
        match &appended[0] {
            Event::ChangeRejected(e) => {
                prop_assert_eq!(&e.key, &spec.id, "the event names the qualified key");
                prop_assert_eq!(&e.reason, "locked");
            }
            other => prop_assert!(false, "{:?} appended {:?}", op, other),
        }
        prop_assert_eq!(after.state.get(key), before.state.get(key), "a locked key keeps its value");
        return Ok(());
    }
    match op {
        Op::Set(_, text) => match spec.parse(&Input::Text(text.to_string())) {
            Err(_) => {
                prop_assert_eq!(rejection_kind(&result), Some(RejectionKind::Invalid), "{:?}", op);
                prop_assert!(appended.is_empty(), "{:?} appended {:?}", op, appended);
            }
            Ok(new) if old.as_ref() == Some(&new) => {
                let outcome = result.map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
                prop_assert!(!outcome.changed(), "{:?} reported a change", op);
                prop_assert!(appended.is_empty(), "setting {} to its current value appended {:?}", key, appended);
            }
            Ok(new) => {
                let outcome = result.map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
                prop_assert!(outcome.changed());
                prop_assert_eq!(outcome.seqs, Some((before.head.seq + 1, after.head.seq)));
                prop_assert_eq!(appended.len(), 1, "{:?} appended {:?}", op, appended);
                let Event::SettingChanged(e) = &appended[0] else {
                    return Err(TestCaseError::fail(format!("{op:?} appended {:?}", appended[0])));
                };
                prop_assert_eq!(matches!(e.value, StoredValue::Sealed(_)), spec.sensitive, "sealed iff sensitive");
                prop_assert_eq!(e.previous.as_ref(), before.state.current(key));
                prop_assert_eq!(plaintext(ledger, &after.state, key), Some(new));
            }
        },
        Op::Reset(_) => {
            let outcome = result.map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
            match old {
                None => {
                    prop_assert!(!outcome.changed());
                    prop_assert!(appended.is_empty(), "resetting unset {} appended {:?}", key, appended);
                }
                Some(_) => {
                    prop_assert_eq!(appended.len(), 1);
                    prop_assert!(matches!(&appended[0], Event::SettingReset(e) if e.key == spec.id), "{:?}", appended);
                    prop_assert_eq!(after.state.current(key), None);
                }
            }
        }
    }
    // Whatever happened to `key`, no other key moved.
    for other in KEYS.iter().filter(|k| **k != key) {
        prop_assert_eq!(after.state.get(other), before.state.get(other), "{} moved when {:?} ran", other, op);
    }
    Ok(())
}

fn run_all(ledger: &Ledger, ops: &[Op]) -> Result<(), TestCaseError> {
    for op in ops {
        run_and_check(ledger, op)?;
    }
    let (state, head) = replay(ledger);
    let snap = ledger.snapshot();
    prop_assert_eq!(head, snap.head);
    prop_assert_eq!(&state, &snap.state, "a replay of the stored log equals the live state");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn commands_append_exactly_what_they_decide_on_a_memory_store(ops in prop::collection::vec(op(), 1..40)) {
        let ledger = open(StoreUrl::Memory);
        run_all(&ledger, &ops)?;
    }

    #[test]
    fn a_reopened_sqlite_store_replays_to_the_same_state(ops in prop::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = StoreUrl::Sqlite(dir.path().join("ledger.db"));
        let first = open(url.clone());
        run_all(&first, &ops)?;
        let before = first.snapshot();
        drop(first);

        let again = open(url);
        let after = again.snapshot();
        prop_assert_eq!(after.head, before.head, "opening again appends nothing");
        prop_assert_eq!(&after.state, &before.state);
        prop_assert_eq!(&after.views, &before.views);
        // The key file beside the database derives the same key: sealed values still open, and setting
        // one to its current value is still recognised as a no-op.
        run_and_check(&again, &Op::Set("WEBHOOK_SECRET", "hook-1"))?;
        run_and_check(&again, &Op::Set("WEBHOOK_SECRET", "hook-1"))?;
    }
}

fn set(ledger: &Ledger, key: &str, value: &str) -> Result<cfgledger::Outcome, Error> {
    ledger.execute(Command::Set { key: key.into(), value: Input::Text(value.into()) }, ctx())
}

#[test]
fn setting_a_value_again_in_another_spelling_appends_nothing() {
    let ledger = open(StoreUrl::Memory);
    let genesis_head = ledger.snapshot().head;
    assert_eq!(genesis_head.seq, 2, "a new store holds its genesis and its (empty) first seeding");
    for (key, first, again) in
        [("LOG_LEVEL", "warn", "WARN"), ("CACHE_TTL", "90s", "1m30s"), ("MAX_WORKERS", "8", " 8 ")]
    {
        let changed = set(&ledger, key, first).expect("a valid value is accepted");
        assert!(changed.changed());
        let head = ledger.snapshot().head;
        let same = set(&ledger, key, again).expect("the same value is accepted");
        assert!(!same.changed(), "{key}: {first} then {again}");
        assert_eq!(same.head, head);
        assert_eq!(ledger.store().head().expect("a head"), head, "{key}: nothing was appended");
    }
    assert_eq!(ledger.settings().get("LOG_LEVEL"), Some(json!("warn")));
    assert_eq!(ledger.settings().get_duration_ms("CACHE_TTL"), Some(90_000));
}

#[test]
fn a_locked_key_records_the_attempt_and_keeps_its_value() {
    let ledger = open(StoreUrl::Memory);
    let before = ledger.snapshot();
    let err = set(&ledger, "JWT_ALGORITHM", "HS512").expect_err("a locked key refuses");
    assert!(matches!(&err, Error::Rejected(r) if r.kind == RejectionKind::Locked), "{err}");
    let appended = new_events(&ledger, before.head.seq);
    assert_eq!(appended.len(), 1);
    let Event::ChangeRejected(e) = &appended[0] else { panic!("appended {:?}", appended[0]) };
    assert_eq!((e.key.as_str(), e.action.as_str(), e.reason.as_str()), ("mcpgateway:JWT_ALGORITHM", "set", "locked"));
    assert_eq!(e.attempted, Some(StoredValue::Plain(json!("HS512"))));
    assert_eq!(ledger.settings().get("JWT_ALGORITHM"), Some(json!("HS256")), "the default still holds");
}

#[test]
fn an_invalid_value_appends_nothing_and_says_what_the_key_expects() {
    let ledger = open(StoreUrl::Memory);
    let head = ledger.snapshot().head;
    let err = set(&ledger, "LOG_LEVEL", "loud").expect_err("an invalid value refuses");
    assert_eq!(err.to_string(), r#"key LOG_LEVEL expects one of trace, debug, info, warn, error; got "loud""#);
    assert_eq!(ledger.store().head().expect("a head"), head);
}

#[test]
fn a_sqlite_store_keeps_its_log_across_reopen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("c.db");
    let url = StoreUrl::Sqlite(path.clone());
    let first = open(url.clone());
    set(&first, "LOG_LEVEL", "debug").expect("accepted");
    set(&first, "WEBHOOK_SECRET", "rotate-me").expect("accepted");
    let before = first.snapshot();
    drop(first);
    assert!(key_file(&path).is_file(), "the store's key file sits beside the database");

    let again = open(url);
    assert_eq!(again.snapshot().head, before.head);
    assert_eq!(again.snapshot().state, before.state);
    assert_eq!(again.settings().get("LOG_LEVEL"), Some(json!("debug")));
    assert_eq!(plaintext(&again, &again.snapshot().state, "WEBHOOK_SECRET"), Some(json!("rotate-me")));
    assert_eq!(replay(&again).0, before.state);
}

fn key_file(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    name.into()
}
