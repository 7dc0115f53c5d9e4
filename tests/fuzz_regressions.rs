//! The fuzz campaign's entry points on the stable toolchain (issue 17, item 7). Every seed committed under
//! `fuzz/seeds/TARGET` goes through the function its `cargo fuzz` target calls, so the seeds stay valid
//! inputs as the formats move; and each finding of `scripts/fuzz.sh` is a named regression test here, with
//! the input that found it.

use cfgledger::model::AuditFilter;
use cfgledger::store::memory::MemoryStore;
use cfgledger::store::StoreUrl;
use cfgledger::usecase::registry::import::{import, ImportInput, API_OPTIONS};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::registry_import::ConflictStrategy;
use cfgledger_events::{Actor, Cause, Command, Envelope, Input, Source};
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a directory entry").path();
            (path.display().to_string(), std::fs::read(&path).expect("a seed reads"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor { name: "fuzz".into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "fuzz".into() },
        reason: None,
        bypass: false,
    }
}

/// The fuzz crate's ledger: in memory, the built-in catalog, a few changes.
fn ledger() -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Memory, builtin());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), "fuzz-secret-0123456789abcdef".into());
    let (ledger, _) = Ledger::open(opts).expect("an in-memory ledger opens");
    for (key, value) in [("LOG_LEVEL", "DEBUG"), ("MAX_TEAMS_PER_USER", "7"), ("LOG_LEVEL", "INFO")] {
        let cmd = Command::Set { key: key.into(), value: Input::Text(value.into()) };
        ledger.execute(cmd, ctx()).expect("a seed setting is accepted");
    }
    ledger
}

fn audit_query(ledger: &Ledger, query: &[u8]) -> Result<cfgledger::model::AuditPage, String> {
    let filter: AuditFilter = serde_urlencoded::from_bytes(query).map_err(|e| e.to_string())?;
    cfgledger::usecase::timetravel::audit(ledger, &filter).map_err(|e| e.to_string())
}

fn import_dry_run(ledger: &Ledger, document: serde_json::Value) -> Result<(), String> {
    let input = ImportInput {
        document,
        strategy: ConflictStrategy::Update,
        selection: None,
        source_secret: Some("fuzz-source-secret".to_string().into()),
        dry_run: true,
        with_settings: true,
        allow_edited: true,
        via: "fuzz".into(),
        options: &API_OPTIONS,
    };
    let before = ledger.snapshot().head.seq;
    let result = import(ledger, input, ctx()).map(drop).map_err(|e| format!("{e:?}"));
    assert_eq!(ledger.snapshot().head.seq, before, "a dry run appended to the log");
    result
}

#[test]
fn every_envelope_seed_decodes() {
    for (name, bytes) in seeds("envelope_decode") {
        let env = Envelope::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(env.seq >= 1, "{name}");
    }
}

#[test]
fn every_envfile_seed_parses() {
    for (name, bytes) in seeds("envfile") {
        let text = String::from_utf8(bytes).expect("UTF-8");
        let entries = cfgledger::envfile::parse(&name, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!entries.is_empty(), "{name}");
    }
}

#[test]
fn every_catalog_seed_loads() {
    let catalog = builtin();
    for (name, bytes) in seeds("catalog_file") {
        let (first, rest) = bytes.split_first().expect("a selector byte");
        let text = std::str::from_utf8(rest).expect("UTF-8");
        cfgledger::catalog_file::apply_text(&catalog, &name, text, first & 1 == 1)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_log_seed_reads_and_restores_into_an_empty_store() {
    for (name, bytes) in seeds("log_jsonl") {
        let backup = cfgledger::usecase::clone::read_jsonl(&mut &bytes[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let target = MemoryStore::new();
        let report = cfgledger::usecase::clone::restore(&target, &backup, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.copied, backup.records.len() as u64, "{name}");
    }
}

#[test]
fn every_audit_seed_is_a_query_the_server_answers() {
    let ledger = ledger();
    for (name, bytes) in seeds("audit_query") {
        audit_query(&ledger, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_import_seed_plans_in_its_layout() {
    let ledger = ledger();
    for target in ["import_cfgledger", "import_mcpgateway"] {
        for (name, bytes) in seeds(target) {
            let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON seed");
            // The seeds' credentials are sealed under another store's secret: refusing to open them is the
            // right answer, and it must name the entity rather than fail the whole document blindly.
            match import_dry_run(&ledger, doc) {
                Ok(()) => {}
                Err(e) => assert!(e.contains("gw1") || e.contains("secret"), "{name}: {e}"),
            }
        }
    }
}

/// A cursor naming the largest seq, inside an event (`-1`): the older `before` form adds one to the seq.
#[test]
fn an_audit_cursor_at_the_largest_seq_is_refused_or_answered_not_overflowed() {
    let ledger = ledger();
    for query in ["cursor=s18446744073709551615-1", "cursor=s18446744073709551615", "before=18446744073709551615"] {
        // A bound beyond the head bounds nothing: the answer is the newest page, as without it. An overflow
        // (a panic in a debug build, a wrap to 0 and an empty page in a release build) would fail here.
        let page = audit_query(&ledger, query.as_bytes()).unwrap_or_else(|e| panic!("{query}: {e}"));
        let newest = audit_query(&ledger, b"").expect("the newest page");
        assert!(!page.entries.is_empty(), "{query}: an empty page");
        assert_eq!(page.entries.first().map(|e| e.seq), Some(page.head), "{query}");
        assert_eq!(page.entries.len(), newest.entries.len(), "{query}");
    }
}
