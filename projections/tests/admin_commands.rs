//! `decide` and the fold for the admin API's commands, on the real settings projection: compare-and-set
//! (`Expect`), imports (the plan, one batch, nothing for an import already in force), users and generated
//! secrets. Properties: an applied import makes every importable key hold the document's value, importing
//! the same document again writes nothing but secrets (which a plan never compares), and the plan of a dry
//! run names exactly the keys the apply writes.

use cfgledger_events::event::StoredValue;
use cfgledger_events::{plan_import, Catalog, Command, Event, ImportRequest, Input, PlanAction, RejectionKind};
use proptest::prelude::*;
mod common;

use common::{TestSealer, World};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn import(entries: &[(&str, Value)], baseline: BTreeMap<String, StoredValue>) -> ImportRequest {
    ImportRequest {
        digest: "blake3:test".into(),
        source: None,
        entries: entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        expected_head: None,
        baseline,
    }
}

/// The default of every key that has one: what `Ledger::baseline` gives with an empty environment.
fn defaults(catalog: &Catalog) -> BTreeMap<String, StoredValue> {
    catalog.specs().iter().filter_map(|s| s.default.clone().map(|d| (s.id.clone(), StoredValue::Plain(d)))).collect()
}

#[test]
fn expect_applies_at_the_current_version_and_conflicts_after_a_change() {
    let mut w = World::new();
    w.set("LOG_LEVEL", json!("debug"));
    let version = w.state.version("LOG_LEVEL");
    let guarded = |value: &str, version| Command::Expect {
        key: "LOG_LEVEL".into(),
        version,
        then: Box::new(Command::Set { key: "LOG_LEVEL".into(), value: Input::Json(json!(value)) }),
    };
    w.run(guarded("warn", version)).expect("the version is current");
    assert_eq!(w.plain("LOG_LEVEL"), Some(json!("warn")));
    let stale = w.decide(guarded("error", version)).expect_err("the key moved on");
    assert_eq!(stale.kind, RejectionKind::Conflict);
    assert!(stale.message.contains(&format!("changed since version {version}")), "{}", stale.message);
    assert!(stale.audit.is_empty(), "a conflict records nothing");
    let unknown = w
        .decide(Command::Expect {
            key: "NOPE".into(),
            version: 0,
            then: Box::new(Command::Reset { key: "NOPE".into() }),
        })
        .expect_err("unknown key");
    assert_eq!(unknown.kind, RejectionKind::UnknownKey);
}

#[test]
fn an_import_is_planned_key_by_key_and_applied_as_one_batch() {
    let mut w = World::new();
    w.set("MAX_WORKERS", json!(4));
    let req = import(
        &[
            ("MAX_WORKERS", json!(16)),      // the log holds 4: update
            ("CACHE_TTL", json!("5m")),      // the log holds nothing: create
            ("LOG_LEVEL", json!("info")),    // the default already: unchanged
            ("AUTH_REQUIRED", json!(false)), // locked, differs from the default: locked
            ("JWT_SECRET_KEY", json!("Zq8vN3kLp0XwR7tY2mB5cF9hJ4gD6sA1eU3iO7pQ")), // locked and sensitive: locked
        ],
        defaults(&w.catalog),
    );
    let plan = plan_import(&w.catalog, &w.state, &TestSealer, &req);
    let actions: Vec<(&str, PlanAction)> = plan.iter().map(|p| (p.key.as_str(), p.action)).collect();
    assert_eq!(
        actions,
        [
            ("MAX_WORKERS", PlanAction::Update),
            ("CACHE_TTL", PlanAction::Create),
            ("LOG_LEVEL", PlanAction::Unchanged),
            ("AUTH_REQUIRED", PlanAction::Locked),
            ("JWT_SECRET_KEY", PlanAction::Locked),
        ]
    );
    assert_eq!(plan[0].current, json!(4));
    assert_eq!(plan[4].value, json!("********"), "a sensitive value is masked in the plan");

    let events = w.run(Command::Import(req.clone())).expect("the import applies");
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["ImportApplied", "SettingChanged", "SettingChanged", "ChangeRejected", "ChangeRejected"]);
    let Event::ImportApplied(head) = &events[0] else { unreachable!("checked above") };
    // The event records qualified keys.
    let (created, updated) = (vec!["mcpgateway:CACHE_TTL".to_string()], vec!["mcpgateway:MAX_WORKERS".to_string()]);
    assert_eq!((head.created.clone(), head.updated.clone()), (created, updated));
    assert_eq!(head.locked, ["mcpgateway:AUTH_REQUIRED", "mcpgateway:JWT_SECRET_KEY"]);
    assert_eq!(head.unchanged, 1);
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(16)));
    assert_eq!(w.plain("AUTH_REQUIRED"), None, "a locked key is never written by an import");

    // Importing again changes nothing and appends nothing: the locked keys it names were recorded with the
    // batch that applied it, and the plan still reports them as locked.
    assert_eq!(w.decide(Command::Import(req.clone())).expect("decides"), Vec::<Event>::new(), "importing twice");
    let plan = plan_import(&w.catalog, &w.state, &TestSealer, &req);
    assert_eq!(plan.iter().filter(|p| p.action == PlanAction::Locked).count(), 2);
    let without_locked = import(&[("MAX_WORKERS", json!(16)), ("CACHE_TTL", json!("5m"))], defaults(&w.catalog));
    assert_eq!(w.decide(Command::Import(without_locked)).expect("decides"), Vec::<Event>::new(), "nothing at all");
}

#[test]
fn an_import_reviewed_at_one_head_is_refused_at_another() {
    let mut w = World::new();
    let mut req = import(&[("MAX_WORKERS", json!(12))], defaults(&w.catalog));
    req.expected_head = Some(w.head.seq);
    w.set("LOG_LEVEL", json!("warn"));
    let stale = w.decide(Command::Import(req.clone())).expect_err("the head moved");
    assert_eq!(stale.kind, RejectionKind::Conflict);
    req.expected_head = Some(w.head.seq);
    assert!(w.run(Command::Import(req)).is_ok());
    assert_eq!(w.plain("MAX_WORKERS"), Some(json!(12)));
}

#[test]
fn secrets_are_never_reported_unchanged_by_a_plan() {
    let mut w = World::new();
    w.set("WEBHOOK_SECRET", json!("right-guess"));
    for guess in ["right-guess", "wrong-guess"] {
        let req = import(&[("WEBHOOK_SECRET", json!(guess))], BTreeMap::new());
        let plan = plan_import(&w.catalog, &w.state, &TestSealer, &req);
        assert_eq!(plan[0].action, PlanAction::Update, "{guess}: a plan must not confirm a secret");
    }
}

#[test]
fn an_import_with_one_invalid_entry_is_refused_whole() {
    let w = World::new();
    for bad in [
        vec![("MAX_WORKERS", json!(16)), ("LOG_LEVEL", json!("loud"))],
        vec![("MAX_WORKERS", json!(16)), ("NO_SUCH_KEY", json!(1))],
        vec![("MAX_WORKERS", json!(16)), ("MAX_WORKERS", json!(8))],
        vec![("WEBHOOK_SECRET", json!("********"))],
    ] {
        let req = import(&bad, defaults(&w.catalog));
        let plan = plan_import(&w.catalog, &w.state, &TestSealer, &req);
        assert!(plan.iter().any(|p| p.action == PlanAction::Invalid), "{bad:?}");
        let refused = w.decide(Command::Import(req)).expect_err("refused");
        assert_eq!(refused.kind, RejectionKind::Invalid);
        assert!(refused.audit.is_empty());
    }
    let loud =
        plan_import(&w.catalog, &w.state, &TestSealer, &import(&[("LOG_LEVEL", json!("loud"))], BTreeMap::new()));
    assert!(loud[0].message.as_deref().is_some_and(|m| m.contains("one of trace, debug, info, warn, error")));
}

#[test]
fn a_sensitive_import_value_is_sealed_in_the_log() {
    let mut w = World::new();
    let events =
        w.run(Command::Import(import(&[("WEBHOOK_SECRET", json!("hush-hush"))], BTreeMap::new()))).expect("ok");
    let Event::SettingChanged(change) = &events[1] else { panic!("a SettingChanged follows the head: {events:?}") };
    assert!(matches!(change.value, StoredValue::Sealed(_)));
    assert_eq!(w.plain("WEBHOOK_SECRET"), Some(json!("hush-hush")));
}

#[test]
fn users_are_added_once_validated_and_removed() {
    let mut w = World::new();
    let add = |name: &str, role: &str, hash: &str| Command::AddUser {
        name: name.into(),
        role: role.into(),
        password_hash: hash.into(),
    };
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    w.run(add("dana", "auditor", hash)).expect("added");
    assert_eq!(w.state.user("dana").map(|u| u.role.as_str()), Some("auditor"));
    assert_eq!(w.decide(add("dana", "viewer", hash)).expect_err("twice").kind, RejectionKind::State);
    assert_eq!(w.decide(add("erin", "root", hash)).expect_err("role").kind, RejectionKind::Invalid);
    assert_eq!(w.decide(add("erin", "viewer", "plaintext")).expect_err("hash").kind, RejectionKind::Invalid);
    assert_eq!(w.decide(add("bad name", "viewer", hash)).expect_err("name").kind, RejectionKind::Invalid);
    assert_eq!(w.decide(Command::RemoveUser { name: "erin".into() }).expect_err("absent").kind, RejectionKind::Missing);
    w.run(Command::RemoveUser { name: "dana".into() }).expect("removed");
    assert!(w.state.user("dana").is_none());
}

#[test]
fn a_password_or_role_change_moves_the_users_credential_version() {
    let mut w = World::new();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    w.run(Command::AddUser { name: "dana".into(), role: "auditor".into(), password_hash: hash.into() }).expect("added");
    let added = w.state.user("dana").expect("dana").credentials_seq;
    assert_eq!(added, w.state.applied_seq);
    let password = |name: &str, hash: &str| Command::ChangePassword { name: name.into(), password_hash: hash.into() };
    let events = w.run(password("dana", hash)).expect("changed");
    assert!(matches!(&events[..], [Event::UserPasswordChanged(e)] if e.password_hash != hash), "sealed: {events:?}");
    let changed = w.state.user("dana").expect("dana").credentials_seq;
    assert!(changed > added);
    assert_eq!(w.decide(password("erin", hash)).expect_err("absent").kind, RejectionKind::Missing);
    assert_eq!(w.decide(password("dana", "plaintext")).expect_err("hash").kind, RejectionKind::Invalid);
    let role = |name: &str, role: &str| Command::ChangeRole { name: name.into(), role: role.into() };
    assert_eq!(w.run(role("dana", "auditor")).expect("same role"), Vec::new(), "nothing to change");
    assert_eq!(w.decide(role("dana", "root")).expect_err("role").kind, RejectionKind::Invalid);
    assert_eq!(w.decide(role("erin", "viewer")).expect_err("absent").kind, RejectionKind::Missing);
    w.run(role("dana", "viewer")).expect("changed");
    let user = w.state.user("dana").expect("dana");
    assert_eq!(user.role, "viewer");
    assert!(user.credentials_seq > changed);
}

#[test]
fn a_revoked_token_is_named_by_its_hash_once_and_forgotten_after_it_expires() {
    let mut w = World::new();
    let revoke = |hash: &str, expires_at| Command::RevokeToken { token_hash: hash.into(), expires_at };
    let first = "a".repeat(64);
    // The fixture's batches are folded at 1,800,000,000 s: one expiring before that is forgotten at the next.
    w.run(revoke(&first, 1_799_999_999)).expect("revoked");
    assert!(w.state.token_revoked(&first));
    assert_eq!(w.run(revoke(&first, 1_799_999_999)).expect("twice"), Vec::new(), "nothing to change");
    let second = "b".repeat(64);
    w.run(revoke(&second, 1_800_000_600)).expect("revoked");
    assert!(!w.state.token_revoked(&first) && w.state.token_revoked(&second));
    for bad in ["not a hash".to_string(), "A".repeat(64), "a".repeat(63)] {
        assert_eq!(w.decide(revoke(&bad, 1)).expect_err("a hash").kind, RejectionKind::Invalid, "{bad}");
    }
}

#[test]
fn a_rotation_seals_its_key_and_shortens_every_earlier_keys_life_never_lengthens_it() {
    let mut w = World::new();
    let rotate = |key: &str, grace_secs| Command::RotateSigningKey { key: key.into(), grace_secs };
    let first = "the first rotated signing key, 0001";
    let events = w.run(rotate(first, 3600)).expect("rotated");
    let [Event::SigningKeyRotated(e)] = &events[..] else { panic!("{events:?}") };
    assert_eq!(e.kid, cfgledger_events::decide::signing_key_id(first.as_bytes()));
    assert!(!e.sealed_key.contains(first), "the key is sealed in the log");
    let t = |secs: i64| cfgledger_events::Timestamp(1_800_000_000_000_000 + secs * 1_000_000);
    assert_eq!(w.state.signing_keys().base_retires_at, Some(t(3600)));
    w.run(rotate("the second rotated signing key, 0002", 60)).expect("rotated");
    w.run(rotate("the third rotated signing key, 00003", 600)).expect("rotated");
    let keys = w.state.signing_keys();
    assert_eq!(keys.base_retires_at, Some(t(60)), "a later, longer grace does not revive the base key");
    let lives: Vec<_> = keys.rotated.iter().map(|k| k.retires_at).collect();
    assert_eq!(lives, [Some(t(60)), Some(t(600)), None]);
    assert_eq!(keys.version(), w.state.applied_seq);
    assert_eq!(w.decide(rotate(first, 60)).expect_err("reused").kind, RejectionKind::State);
    assert_eq!(w.decide(rotate("too short", 60)).expect_err("short").kind, RejectionKind::Invalid);
}

#[test]
fn a_secret_is_generated_once_and_only_for_stored_secrets() {
    let mut w = World::new();
    // A generated secret passes the gateway's own rules for it (length, entropy), as a random one does.
    let strong = "Zq8vN3kLp0XwR7tY2mB5cF9hJ4gD6sA1eU3iO7pQ";
    let generate = |key: &str| Command::GenerateSecret { key: key.into(), value: strong.into() };
    let events = w.run(generate("JWT_SECRET_KEY")).expect("generated");
    assert!(matches!(&events[..], [Event::SecretGenerated(e)] if matches!(e.value, StoredValue::Sealed(_))));
    assert_eq!(w.plain("JWT_SECRET_KEY"), Some(json!(strong)));
    assert_eq!(w.run(generate("JWT_SECRET_KEY")).expect("no-op"), Vec::<Event>::new(), "never regenerated");
    assert_eq!(w.decide(generate("LOG_LEVEL")).expect_err("not a secret").kind, RejectionKind::State);
    let bootstrap = generate("cfgledger:AUTH_ENCRYPTION_SECRET");
    assert_eq!(w.decide(bootstrap).expect_err("bootstrap").kind, RejectionKind::State);
}

/// Keys an import may write, with valid values for each.
fn importable() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let entry = prop_oneof![
        prop::sample::select(&["trace", "debug", "info", "warn", "error"][..]).prop_map(|v| ("LOG_LEVEL", json!(v))),
        (1i64..=64).prop_map(|n| ("MAX_WORKERS", json!(n))),
        prop::sample::select(&["1m", "5m", "10m"][..]).prop_map(|v| ("CACHE_TTL", json!(v))),
        any::<bool>().prop_map(|b| ("FEDERATION_ENABLED", json!(b))),
        "[a-z]{1,8}".prop_map(|s| ("WEBHOOK_SECRET", json!(s))),
        any::<bool>().prop_map(|b| ("AUTH_REQUIRED", json!(b))),
    ];
    prop::collection::btree_map(any::<u8>(), entry, 0..6).prop_map(|m| {
        let mut seen = std::collections::BTreeSet::new();
        m.into_values().filter(|(k, _)| seen.insert(*k)).collect()
    })
}

proptest! {
    #[test]
    fn an_applied_import_holds_the_document_and_a_second_one_writes_only_secrets(
        before in importable(),
        doc in importable(),
    ) {
        let mut w = World::new();
        for (key, value) in &before {
            if !w.catalog.get(key).is_some_and(|s| s.locked) {
                w.set(key, value.clone());
            }
        }
        let req = import(&doc, defaults(&w.catalog));
        let plan = plan_import(&w.catalog, &w.state, &TestSealer, &req);
        let events = w.run(Command::Import(req.clone())).expect("valid entries apply");
        let written: Vec<&str> = events.iter().filter_map(|e| match e {
            Event::SettingChanged(c) => Some(cfgledger_events::namespace::display(&c.key)),
            _ => None,
        }).collect();
        let planned: Vec<&str> = plan
            .iter()
            .filter(|p| matches!(p.action, PlanAction::Create | PlanAction::Update))
            .map(|p| p.key.as_str())
            .collect();
        prop_assert_eq!(written, planned, "the dry run names exactly what the apply writes");
        for (key, value) in &doc {
            let locked = w.catalog.get(key).is_some_and(|s| s.locked);
            if !locked {
                let held = w.plain(key).or_else(|| w.catalog.get(key).and_then(|s| s.default.clone()));
                prop_assert_eq!(held.as_ref(), Some(value), "{} holds the imported value", key);
            }
        }
        // A second import appends nothing at all: secrets are compared too, and locked keys it cannot
        // change were recorded with the first.
        let again = w.decide(Command::Import(req)).expect("decides");
        prop_assert_eq!(again, Vec::<Event>::new(), "importing twice appends nothing");
    }
}
