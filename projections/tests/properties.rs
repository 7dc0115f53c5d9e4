//! Properties of the settings fold and of resolution over random logs: folding is deterministic, a state
//! saved after a prefix and continued with the tail equals the full replay (what snapshots rely on),
//! folding the decoded log equals folding the events the writer built (what every other instance does),
//! and `resolve` gives each key its value by the precedence DB > process environment > catalog default,
//! with restart-required keys held at their boot value and the new one reported as pending.

use cfgledger_events::event::{ChangeRejected, EncryptionInfo, EnvSeeded, SettingChanged, SettingReset, StoreCreated};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    build_batch, Actor, Batch, Catalog, Cause, Envelope, Event, Head, Input, Reload, SeededValue, Source, StoredValue,
    Timestamp,
};
use cfgledger_projections::{boot_values, resolve, SettingsState, ValueSource};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A few keys, qualified as events carry them, so that events in a random log keep touching the same ones.
/// Some are in the catalog (one locked, one bootstrap, one restart-required), one is not.
const KEYS: &[&str] = &[
    "mcpgateway:LOG_LEVEL",
    "mcpgateway:MAX_WORKERS",
    "mcpgateway:JWT_SECRET_KEY",
    "cfgledger:AUTH_ENCRYPTION_SECRET",
    "mcpgateway:LOG_FILE",
    "mcpgateway:NOT_IN_CATALOG",
];

/// The same keys as the process environment names them.
const ENV_NAMES: &[&str] =
    &["LOG_LEVEL", "MAX_WORKERS", "JWT_SECRET_KEY", "CFGLEDGER_AUTH_ENCRYPTION_SECRET", "LOG_FILE", "NOT_IN_CATALOG"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_string)
}

fn stored_value() -> impl Strategy<Value = StoredValue> {
    prop_oneof![
        prop_oneof![
            Just(json!("debug")),
            Just(json!("warn")),
            Just(json!(8)),
            Just(json!(null)),
            Just(json!(["a", "b"])),
            Just(json!({"b": 1, "a": [true, 2.5]})),
            "[a-z]{0,6}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
        ]
        .prop_map(StoredValue::Plain),
        "cfgl1:00112233aabbccdd:[A-Za-z0-9_-]{24}".prop_map(StoredValue::Sealed),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        1 => "[a-f0-9]{8}".prop_map(|store_id| Event::StoreCreated(StoreCreated {
            store_id,
            format: cfgledger_events::STORE_FORMAT.into(),
            encryption: EncryptionInfo {
                algorithm: "xchacha20poly1305".into(),
                kdf: "argon2id:m=19456,t=2,p=1".into(),
                salt: "00".into(),
                key_id: "00112233aabbccdd".into(),
            },
        })),
        2 => (any::<bool>(), prop::collection::vec((key(), stored_value()), 0..3)).prop_map(|(initial, values)| {
            Event::EnvSeeded(EnvSeeded {
                file: ".env".into(),
                initial,
                values: values.into_iter().map(|(key, value)| SeededValue { key, value }).collect(),
                unknown_keys: vec![],
            })
        }),
        6 => (key(), stored_value(), prop::option::of(stored_value()))
            .prop_map(|(key, value, previous)| Event::SettingChanged(SettingChanged { key, value, previous })),
        3 => (key(), prop::option::of(stored_value()))
            .prop_map(|(key, previous)| Event::SettingReset(SettingReset { key, previous })),
        1 => key().prop_map(|key| Event::ChangeRejected(ChangeRejected {
            key,
            action: "set".into(),
            reason: "locked".into(),
            message: "locked".into(),
            attempted: None,
        })),
    ]
}

fn actor() -> impl Strategy<Value = Actor> {
    (
        prop::sample::select(&["alice", "bob", "cfgledger"][..]),
        prop_oneof![Just(Source::Cli), Just(Source::Api), Just(Source::System)],
    )
        .prop_map(|(name, source)| Actor {
            name: name.into(),
            role: None,
            source,
            address: None,
            request_id: None,
        })
}

/// A random log as the writer would build it: batches of events with non-decreasing times.
fn log() -> impl Strategy<Value = Vec<Envelope>> {
    prop::collection::vec((0i64..5_000_000, actor(), prop::collection::vec(event(), 1..4)), 0..12).prop_map(|batches| {
        let mut head = Head::EMPTY;
        let mut now = 1_800_000_000_000_000i64;
        let mut out = Vec::new();
        for (i, (step, actor, events)) in batches.into_iter().enumerate() {
            now += step;
            let batch = Batch { id: format!("batch-{i}"), cause: Cause::Cli { command: "test".into() }, reason: None };
            for (env, rec) in build_batch(head, Timestamp(now), &actor, &batch, events) {
                head = Head { seq: rec.seq, hash: rec.hash };
                out.push(env);
            }
        }
        out
    })
}

fn fold<'a>(start: SettingsState, events: impl IntoIterator<Item = &'a Envelope>) -> SettingsState {
    let mut state = start;
    for env in events {
        state.apply(env);
    }
    state
}

/// Raw process-environment text for a key: valid for some keys, invalid for others.
fn env_text() -> impl Strategy<Value = String> {
    prop::sample::select(
        &["info", "error", "loud", "8", "0", "300", "-1", "", "some-file.log", "0123456789abcdef0123456789abcdef"][..],
    )
    .prop_map(str::to_string)
}

fn env_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(prop::sample::select(ENV_NAMES).prop_map(str::to_string), env_text(), 0..KEYS.len())
}

/// What a key should resolve to, by the precedence rule, ignoring boot values.
fn expected(
    catalog: &Catalog,
    state: &SettingsState,
    env: &BTreeMap<String, String>,
    key: &str,
) -> (Option<StoredValue>, ValueSource) {
    let spec = catalog.get(key).expect("a catalog key");
    // A stored value that no longer fits the key's type is passed over (`stored_error`).
    let fits = |v: &StoredValue| match v {
        StoredValue::Plain(p) => spec.parse(&Input::Json(p.clone())).is_ok(),
        StoredValue::Sealed(_) => true,
    };
    if let Some(entry) = state.get(key).filter(|e| !spec.bootstrap && fits(&e.value)) {
        return (Some(entry.value.clone()), ValueSource::Db);
    }
    // The environment names the key with its namespace's prefix; an empty value is unset.
    let raw = env.get(&spec.env_name).filter(|raw| !raw.is_empty());
    if let Some(v) = raw.and_then(|raw| spec.parse(&Input::Text(raw.clone())).ok()) {
        return (Some(StoredValue::Plain(v)), ValueSource::Env);
    }
    match &spec.default {
        Some(d) => (Some(StoredValue::Plain(d.clone())), ValueSource::Default),
        None => (None, ValueSource::Unset),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replay_is_deterministic(log in log()) {
        let a = fold(SettingsState::new(), &log);
        let b = fold(SettingsState::new(), &log);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.applied_seq, log.last().map_or(0, |e| e.seq));
    }

    #[test]
    fn snapshot_then_tail_equals_full_replay(log in log(), cut in any::<prop::sample::Index>()) {
        let k = cut.index(log.len() + 1);
        let snapshot = fold(SettingsState::new(), &log[..k]);
        let resumed = fold(snapshot.clone(), &log[k..]);
        prop_assert_eq!(resumed, fold(SettingsState::new(), &log));
    }

    #[test]
    fn folding_the_decoded_log_equals_folding_what_was_built(log in log()) {
        let decoded: Vec<Envelope> =
            log.iter().map(|e| Envelope::decode(&e.encode()).expect("a built envelope decodes")).collect();
        prop_assert_eq!(fold(SettingsState::new(), &decoded), fold(SettingsState::new(), &log));
    }

    #[test]
    fn the_fold_keeps_the_last_value_per_key(log in log()) {
        let state = fold(SettingsState::new(), &log);
        for key in KEYS {
            // The model: walk the log and remember the last set, seed or reset of each key.
            let mut last: Option<(StoredValue, u64)> = None;
            let mut version = 0;
            for env in &log {
                match &env.event {
                    Event::SettingChanged(e) if e.key == *key => {
                        last = Some((e.value.clone(), env.seq));
                        version = env.seq;
                    }
                    Event::SettingReset(e) if e.key == *key => {
                        last = None;
                        version = env.seq;
                    }
                    Event::EnvSeeded(e) => {
                        if let Some(v) = e.values.iter().rev().find(|v| v.key == *key) {
                            last = Some((v.value.clone(), env.seq));
                            version = env.seq;
                        }
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(state.get(key).map(|e| (e.value.clone(), e.seq)), last, "{}", key);
            prop_assert_eq!(state.version(key), version, "{}", key);
        }
    }

    #[test]
    fn resolve_prefers_db_then_env_then_default(log in log(), env in env_map()) {
        let catalog = suite_catalog();
        let state = fold(SettingsState::new(), &log);
        let views = resolve(&catalog, &state, &env, None);
        prop_assert_eq!(views.len(), catalog.len());
        for (view, spec) in views.iter().zip(catalog.specs()) {
            prop_assert_eq!(&view.key, &spec.id);
            let (value, source) = expected(&catalog, &state, &env, &spec.id);
            prop_assert_eq!(&view.value, &value, "{}", spec.id);
            prop_assert_eq!(view.source, source, "{}", spec.id);
            prop_assert_eq!(&view.pending, &None, "{}", spec.id);
            let bad_env = env
                .get(&spec.env_name)
                .is_some_and(|raw| !raw.is_empty() && spec.parse(&Input::Text(raw.clone())).is_err());
            prop_assert_eq!(view.env_error.is_some(), bad_env, "{}", spec.id);
        }
    }

    #[test]
    fn restart_keys_keep_their_boot_value_and_report_the_new_one_as_pending(
        boot_log in log(),
        later in prop::collection::vec(event(), 0..6),
        env in env_map(),
    ) {
        let catalog = suite_catalog();
        let at_boot = fold(SettingsState::new(), &boot_log);
        let boot = boot_values(&catalog, &resolve(&catalog, &at_boot, &env, None));
        // Only the seq matters to the fold; the tail continues the boot log.
        let head = Head { seq: boot_log.last().map_or(0, |e| e.seq), hash: cfgledger_events::Hash::ZERO };
        let batch = Batch { id: "later".into(), cause: Cause::Cli { command: "test".into() }, reason: None };
        let tail: Vec<Envelope> = build_batch(head, Timestamp(1_900_000_000_000_000), &Actor::system(), &batch, later)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        let now = fold(at_boot, &tail);
        let fresh = resolve(&catalog, &now, &env, None);
        let pinned = resolve(&catalog, &now, &env, Some(&boot));
        for ((p, f), spec) in pinned.iter().zip(&fresh).zip(catalog.specs()) {
            match (spec.reload, boot.get(&spec.id)) {
                (Reload::Restart, Some((boot_value, boot_source))) if *boot_value != f.value => {
                    prop_assert_eq!(&p.value, boot_value, "{}", spec.key);
                    prop_assert_eq!(p.source, *boot_source, "{}", spec.key);
                    prop_assert_eq!(&p.pending, &Some((f.value.clone(), f.source)), "{}", spec.key);
                }
                (Reload::Restart, None) => prop_assert!(false, "boot values miss restart key {}", spec.key),
                _ => prop_assert_eq!(p, f, "{}", spec.key),
            }
        }
    }
}

#[test]
fn a_bootstrap_key_never_resolves_from_the_log() {
    // AUTH_ENCRYPTION_SECRET lives in the process environment only, even if a log holds a value for it.
    let catalog = suite_catalog();
    let batch = Batch { id: "b".into(), cause: Cause::Cli { command: "test".into() }, reason: None };
    let events = vec![Event::SettingChanged(SettingChanged {
        key: "cfgledger:AUTH_ENCRYPTION_SECRET".into(),
        value: StoredValue::Plain(json!("from-the-log-0123456789")),
        previous: None,
    })];
    let state = fold(
        SettingsState::new(),
        &build_batch(Head::EMPTY, Timestamp(0), &Actor::system(), &batch, events)
            .into_iter()
            .map(|(e, _)| e)
            .collect::<Vec<_>>(),
    );
    let env = BTreeMap::from([("CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(), "from-the-environment".to_string())]);
    let views = resolve(&catalog, &state, &env, None);
    let view = views.iter().find(|v| v.key == "cfgledger:AUTH_ENCRYPTION_SECRET").expect("a catalog key");
    assert_eq!(view.source, ValueSource::Env);
    assert_eq!(view.value, Some(StoredValue::Plain(json!("from-the-environment"))));
}
