//! A store written before namespaces existed (store format `cfgledger/1`: bare keys in its events, its
//! secrets sealed under bare keys, its encryption secret read as `AUTH_ENCRYPTION_SECRET`) opens, verifies
//! and keeps working: the upgrade places its keys (cfgledger's own keys in `cfgledger`, the rest in the
//! default namespace) without rewriting a byte of the log.

use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::event::{EnvSeeded, SeededValue, SettingChanged, StoreCreated, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{build_batch, Actor, Batch, Cause, Command, Event, Head, Input, Sealer, Source, Timestamp};
use serde_json::json;
use std::path::Path;

const SECRET: &str = "an-old-store-secret-0123456789abcdef";
const OLD_JWT: &str = "the-old-jwt-signing-key-0123456789abcdef";

/// Writes the log a pre-namespace build wrote: genesis, a `.env` seeding and two changes, bare keys.
fn write_old_store(path: &Path) -> Vec<u8> {
    let store = cfgledger::store::open(&StoreUrl::Sqlite(path.to_path_buf())).expect("a store");
    let (sealer, encryption) = cfgledger::crypto::SecretBox::create(SECRET.as_bytes()).expect("a key");
    let jwt = Sealer::seal(&sealer, "JWT_SECRET_KEY", json!(OLD_JWT).to_string().as_bytes()).expect("sealed");
    let events = vec![
        Event::StoreCreated(StoreCreated {
            store_id: "0ld5t0re-0000-4000-8000-000000000001".into(),
            format: cfgledger_events::LEGACY_STORE_FORMAT.into(),
            encryption,
        }),
        Event::EnvSeeded(EnvSeeded {
            file: ".env".into(),
            initial: true,
            values: vec![
                SeededValue { key: "LOG_LEVEL".into(), value: StoredValue::Plain(json!("warn")) },
                SeededValue { key: "MAX_WORKERS".into(), value: StoredValue::Plain(json!(8)) },
                SeededValue { key: "JWT_SECRET_KEY".into(), value: StoredValue::Sealed(jwt) },
            ],
            unknown_keys: vec![],
        }),
    ];
    let batch = |id: &str| Batch { id: id.into(), cause: Cause::Open { env_file: Some(".env".into()) }, reason: None };
    let actor = Actor::system();
    let first = build_batch(Head::EMPTY, Timestamp(1_700_000_000_000_000), &actor, &batch("b1"), events);
    let records: Vec<_> = first.into_iter().map(|(_, r)| r).collect();
    let head = store.append(Head::EMPTY, &records).expect("appended");
    let cli = Actor { name: "old-operator".into(), role: None, source: Source::Cli, address: None, request_id: None };
    let change = |key: &str, v: serde_json::Value| {
        Event::SettingChanged(SettingChanged { key: key.into(), value: StoredValue::Plain(v), previous: None })
    };
    let second = build_batch(
        head,
        Timestamp(1_700_000_001_000_000),
        &cli,
        &Batch { id: "b2".into(), cause: Cause::Cli { command: "config set".into() }, reason: None },
        vec![change("LOG_LEVEL", json!("error")), change("MAX_WORKERS", json!(16))],
    );
    let records: Vec<_> = second.into_iter().map(|(_, r)| r).collect();
    store.append(head, &records).expect("appended");
    std::fs::read(path).expect("the database file")
}

fn open(path: &Path, env: &[(&str, &str)]) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), suite_catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Ledger::open(opts).expect("the old store opens").0
}

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor { name: "t".into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "test".into() },
        reason: None,
        bypass: false,
    }
}

#[test]
fn a_pre_namespace_store_opens_verifies_and_places_its_keys_without_rewriting_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    write_old_store(&path);
    let before: Vec<_> = {
        let store = cfgledger::store::open(&StoreUrl::Sqlite(path.clone())).expect("a store");
        store.read_after(0, 100).expect("read").into_iter().map(|r| (r.seq, r.hash, r.envelope)).collect()
    };

    // The old store's secret is still read under the name it was created with; that name, and the other
    // bare names that were cfgledger's own, are not taken for the gateway's settings of the same name.
    let ledger = open(&path, &[("AUTH_ENCRYPTION_SECRET", SECRET), ("JWT_SECRET_KEY", OLD_JWT)]);
    for gateway_secret in ["mcpgateway:AUTH_ENCRYPTION_SECRET", "mcpgateway:JWT_SECRET_KEY"] {
        let view = ledger.snapshot().view(gateway_secret).cloned().expect("the gateway's key");
        assert_eq!(view.source, cfgledger_projections::ValueSource::Unset, "{gateway_secret}: {view:?}");
    }
    let snap = ledger.snapshot();
    let value = |key: &str| snap.view(key).and_then(|v| v.value.clone());
    // cfgledger read LOG_LEVEL and JWT_SECRET_KEY itself: they are its own now; MAX_WORKERS is the application's.
    assert_eq!(value("cfgledger:LOG_LEVEL"), Some(StoredValue::Plain(json!("error"))));
    assert_eq!(value("mcpgateway:MAX_WORKERS"), Some(StoredValue::Plain(json!(16))));
    assert_eq!(value("MAX_WORKERS"), Some(StoredValue::Plain(json!(16))), "a bare key reads the default namespace");
    let app_level = snap.view("mcpgateway:LOG_LEVEL").expect("the gateway's LOG_LEVEL");
    assert_eq!(app_level.source, cfgledger_projections::ValueSource::Default, "the application's LOG_LEVEL is its own");
    assert_eq!(cfgledger::setting_keys::LOG_LEVEL.get(&ledger.settings()), "error");
    // A secret sealed under its bare key opens under its qualified one.
    let jwt = ledger.reveal("cfgledger:JWT_SECRET_KEY").expect("opens").expect("a value");
    assert_eq!(jwt.as_str(), OLD_JWT);

    // The chain verifies, and the history of a key finds its pre-namespace events.
    let report = cfgledger::usecase::verify::verify(ledger.store().as_ref(), None).expect("verifies");
    assert!(report.ok());
    let filter = cfgledger::model::AuditFilter {
        namespace: Some("cfgledger".into()),
        key: Some("LOG_LEVEL".into()),
        ..Default::default()
    };
    let page = cfgledger::usecase::timetravel::audit(&ledger, &filter).expect("audit");
    let seen: Vec<(u64, Option<&str>)> = page.entries.iter().map(|e| (e.seq, e.namespace.as_deref())).collect();
    assert_eq!(seen, vec![(3, Some("cfgledger")), (2, Some("cfgledger"))]);

    // A namespace filter and a prefix filter find the pre-namespace rows too, placed as they are read.
    let rows = |filter: cfgledger::model::AuditFilter| -> Vec<(u64, String, String)> {
        let page = cfgledger::usecase::timetravel::audit(&ledger, &filter).expect("audit");
        page.entries
            .iter()
            .map(|e| (e.seq, e.namespace.clone().unwrap_or_default(), e.key.clone().unwrap_or_default()))
            .collect()
    };
    let own = rows(cfgledger::model::AuditFilter { namespace: Some("cfgledger".into()), ..Default::default() });
    let mut own_keys: Vec<(u64, &str)> = own.iter().map(|(seq, _, k)| (*seq, k.as_str())).collect();
    own_keys.sort();
    assert_eq!(own_keys, vec![(2, "JWT_SECRET_KEY"), (2, "LOG_LEVEL"), (3, "LOG_LEVEL")], "{own:?}");
    assert!(own.iter().all(|(_, ns, _)| ns == "cfgledger"), "{own:?}");
    let workers = rows(cfgledger::model::AuditFilter { key: Some("MAX_*".into()), ..Default::default() });
    let found: Vec<(u64, &str, &str)> = workers.iter().map(|(s, n, k)| (*s, n.as_str(), k.as_str())).collect();
    assert_eq!(found, vec![(4, "mcpgateway", "MAX_WORKERS"), (2, "mcpgateway", "MAX_WORKERS")]);

    // New writes are namespaced, and the application's LOG_LEVEL changes alone.
    ledger
        .execute(Command::Set { key: "LOG_LEVEL".into(), value: Input::Text("debug".into()) }, ctx())
        .expect("set the application's LOG_LEVEL");
    assert_eq!(cfgledger::setting_keys::LOG_LEVEL.get(&ledger.settings()), "error", "cfgledger's own is untouched");
    let last = ledger.store().read_after(4, 10).expect("read");
    assert_eq!(last.last().and_then(|r| r.key.as_deref()), Some("mcpgateway:LOG_LEVEL"));
    drop(ledger);

    // Not one byte of the old log changed.
    let store = cfgledger::store::open(&StoreUrl::Sqlite(path.clone())).expect("a store");
    let after: Vec<_> =
        store.read_after(0, 4).expect("read").into_iter().map(|r| (r.seq, r.hash, r.envelope)).collect();
    assert_eq!(after, before);

    // Reopened, the fold agrees; a new store would need the new name, an old one accepts both.
    let again = open(&path, &[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", SECRET)]);
    assert_eq!(
        again.snapshot().view("mcpgateway:LOG_LEVEL").and_then(|v| v.value.clone()),
        Some(StoredValue::Plain(json!("debug")))
    );
}
