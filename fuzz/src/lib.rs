//! What the fuzz targets share: one in-memory ledger on the built-in catalog, opened once per process and
//! holding a few settings and entities, so that a target that needs a store (an import plan, an audit page)
//! reaches the same code the server runs without paying for an open per input.

use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::builtin::builtin;
use cfgledger_events::{Actor, Cause, Command, Input, Source};
use std::sync::OnceLock;

/// The shared ledger: seeded once, then only read by the targets.
pub fn ledger() -> &'static Ledger {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let mut opts = OpenOptions::new(StoreUrl::Memory, builtin());
        opts.env_file = EnvFileChoice::None;
        opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), "fuzz-secret-0123456789abcdef".into());
        let (ledger, _) = Ledger::open(opts).expect("an in-memory ledger opens");
        for (key, value) in [("LOG_LEVEL", "DEBUG"), ("MAX_TEAMS_PER_USER", "7"), ("LOG_LEVEL", "INFO")] {
            let cmd = Command::Set { key: key.into(), value: Input::Text(value.into()) };
            ledger.execute(cmd, ctx()).expect("a seed setting is accepted");
        }
        ledger
    })
}

/// The write context of the seed changes.
fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor { name: "fuzz".into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "fuzz".into() },
        reason: None,
        bypass: false,
    }
}

/// Plans the import of `document` as `POST /import` with `dry_run` would: the whole use case (the digest
/// check, the layout's reading, the credentials opened with a source secret, the plan) with nothing written.
/// Refusals are the expected answer to most inputs; only a panic, a hang or a huge allocation is a finding.
pub fn import_dry_run(document: serde_json::Value) {
    use cfgledger::usecase::registry::import::{import, ImportInput, API_OPTIONS};
    let input = ImportInput {
        document,
        strategy: cfgledger_events::registry_import::ConflictStrategy::Update,
        selection: None,
        source_secret: Some("fuzz-source-secret".to_string().into()),
        dry_run: true,
        with_settings: true,
        allow_edited: true,
        via: "fuzz".into(),
        options: &API_OPTIONS,
    };
    let before = ledger().snapshot().head.seq;
    let _ = import(ledger(), input, ctx());
    assert_eq!(ledger().snapshot().head.seq, before, "a dry run appended to the log");
}
