//! Secrets that could reach the log or an output in plaintext by a side door: a key that became sensitive
//! after plain values were stored, an attempt to set the bootstrap secret, and a catalog that tries to
//! change cfgledger's own settings or declare a key that is read from the environment only.

use cfgledger::store::StoreUrl;
use cfgledger::{present, EnvFileChoice, Error, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::catalog::{Catalog, CatalogFile, CatalogMode};
use cfgledger_events::event::StoredValue;
use cfgledger_events::{Actor, Cause, Command, Envelope, Event, Input, Source};
use std::path::Path;

const SECRET: &str = "secrets-test-secret-0123456789abcdef";

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor { name: "t".into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "test".into() },
        reason: None,
        bypass: false,
    }
}

fn catalog(user_sensitive: bool) -> Catalog {
    let mut spec = builtin().get("BASIC_AUTH_USER").cloned().expect("the gateway's BASIC_AUTH_USER");
    spec.locked = false;
    spec.sensitive = user_sensitive;
    let file = CatalogFile { mode: CatalogMode::Extend, settings: vec![spec], ..CatalogFile::default() };
    builtin().with_file(file).expect("valid catalog")
}

fn open(path: &Path, catalog: Catalog) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), catalog);
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), SECRET.into());
    Ledger::open(opts).expect("open").0
}

fn events(l: &Ledger) -> Vec<Envelope> {
    l.store()
        .read_after(0, 1000)
        .expect("read")
        .iter()
        .map(|r| Envelope::decode(&r.envelope).expect("decode"))
        .collect()
}

#[test]
fn a_key_made_sensitive_later_never_carries_its_old_plain_value_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    let before = open(&path, catalog(false));
    let set = |l: &Ledger, v: &str| {
        l.execute(Command::Set { key: "BASIC_AUTH_USER".into(), value: Input::Text(v.into()) }, ctx()).expect("set")
    };
    set(&before, "plain-old-name");
    drop(before);

    let after = open(&path, catalog(true));
    set(&after, "new-name");
    after.execute(Command::Reset { key: "BASIC_AUTH_USER".into() }, ctx()).expect("reset");
    let log = events(&after);
    match &log[log.len() - 2].event {
        Event::SettingChanged(e) => {
            assert!(matches!(e.value, StoredValue::Sealed(_)));
            assert!(matches!(e.previous, Some(StoredValue::Sealed(_))), "the old plain value was sealed: {e:?}");
        }
        other => panic!("expected SettingChanged, got {other:?}"),
    }
    assert!(
        matches!(&log[log.len() - 1].event, Event::SettingReset(r) if matches!(r.previous, Some(StoredValue::Sealed(_))))
    );

    // The log printout masks every value of a sensitive key, including the plain one stored before.
    let records = after.store().read_after(0, 1000).expect("read");
    for (rec, env) in records.iter().zip(&log) {
        let line = serde_json::to_string(&present::record(rec, env, after.catalog())).expect("a record as JSON");
        assert!(!line.contains("plain-old-name") && !line.contains("new-name"), "{line}");
    }
}

#[test]
fn an_attempt_to_set_the_bootstrap_secret_is_audited_without_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = open(&dir.path().join("c.db"), catalog(false));
    let cmd = Command::Set {
        key: "cfgledger:AUTH_ENCRYPTION_SECRET".into(),
        value: Input::Text("a-new-candidate-secret-xyz".into()),
    };
    assert!(matches!(l.execute(cmd, ctx()), Err(Error::Rejected(_))));
    match &events(&l).last().expect("an event").event {
        Event::ChangeRejected(r) => {
            assert_eq!(r.key, "cfgledger:AUTH_ENCRYPTION_SECRET");
            assert_eq!(r.attempted, None, "the bootstrap secret is never stored, not even sealed");
        }
        other => panic!("expected ChangeRejected, got {other:?}"),
    }
}

#[test]
fn a_catalog_file_cannot_change_cfgledgers_own_settings_or_declare_an_environment_only_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let own = dir.path().join("own.toml");
    std::fs::write(
        &own,
        "namespace = \"cfgledger\"\nmode = \"extend\"\n[[settings]]\nkey = \"AUTH_ENCRYPTION_SECRET\"\ntype = \"string\"\ncategory = \"security\"\nreload = \"restart\"\n",
    )
    .expect("write");
    let e = cfgledger::catalog_file::load(&[own]).expect_err("refused");
    assert!(e.to_string().contains("cfgledger's own settings are fixed"), "{e}");
    let bootstrap = dir.path().join("bootstrap.toml");
    std::fs::write(
        &bootstrap,
        "mode = \"extend\"\n[[settings]]\nkey = \"MY_SECRET\"\ntype = \"string\"\ncategory = \"security\"\nreload = \"restart\"\nlocked = true\nsensitive = true\nbootstrap = true\n",
    )
    .expect("write");
    let e = cfgledger::catalog_file::load(&[bootstrap]).expect_err("refused");
    assert!(e.to_string().contains("bootstrap keys are cfgledger's own"), "{e}");
}
