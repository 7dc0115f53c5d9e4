//! Export and import of settings as a JSON document, shared by the REST API and the CLI. An export holds
//! every non-sensitive setting in force with its source, who exported it, and where from (store id, seq,
//! head hash), with a digest of the settings so that an import notices a damaged file. An import is
//! planned key by key (`cfgledger_events::plan_import`) and applied as one atomic batch.

use crate::error::Error;
use crate::ledger::{Ledger, Outcome, WriteContext};
use cfgledger_events::{plan_import, Command, ImportRequest, PlanAction, PlanEntry, Timestamp};
use serde_json::{json, Map, Value};

/// The `format` of a settings export.
pub const FORMAT: &str = "cfgledger-settings";
pub const SCHEMA_VERSION: u64 = 1;

/// Every non-sensitive setting with a value, and where each came from: what exports carry. A running
/// server keeps a restart-required key at its boot value; the export holds what is stored, the value the
/// next start uses. Taken from `snap`, so that a document's settings and its head agree.
pub fn exportable_settings(ledger: &Ledger, snap: &crate::live::Snapshot) -> (Map<String, Value>, Map<String, Value>) {
    let mut settings = Map::new();
    let mut sources = Map::new();
    for spec in ledger.catalog().specs() {
        if spec.sensitive {
            continue;
        }
        let Some(view) = snap.view(&spec.key) else { continue };
        let (value, source) = match &view.pending {
            Some((pending, source)) => (pending.as_ref(), *source),
            None => (view.value.as_ref(), view.source),
        };
        let Some(value) = value else { continue };
        settings.insert(spec.key.clone(), value.masked());
        sources.insert(spec.key.clone(), json!(source.as_str()));
    }
    (settings, sources)
}

/// The export document of the store's current settings.
pub fn export_document(ledger: &Ledger, exported_by: &str, now: Timestamp) -> Value {
    let snap = ledger.snapshot();
    let (settings, sources) = exportable_settings(ledger, &snap);
    let settings = Value::Object(settings);
    json!({
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "exported_at": now.to_string(),
        "exported_by": exported_by,
        "source": {
            "store_id": snap.state.store.as_ref().map(|s| s.store_id.clone()),
            "seq": snap.head.seq,
            "head_hash": snap.head.hash.to_hex(),
        },
        "digest": digest(&settings),
        "settings": settings,
        "sources": sources,
    })
}

/// `blake3:` and the hex hash of the settings' compact JSON (object keys sorted).
pub fn digest(settings: &Value) -> String {
    let bytes = serde_json::to_vec(settings).unwrap_or_default();
    format!("blake3:{}", blake3::hash(&bytes).to_hex())
}

/// Reads an import document: `{"settings": {KEY: value, ...}}`, with the export's metadata optional. A
/// `format` other than ours, a newer `schema_version` or a `digest` that does not match is refused.
pub fn parse_document(doc: &Value, ledger: &Ledger) -> Result<ImportRequest, Error> {
    let Some(obj) = doc.as_object() else {
        return Err(Error::invalid("the import document expects a JSON object with a \"settings\" object"));
    };
    if let Some(format) = obj.get("format") {
        if format.as_str() != Some(FORMAT) {
            return Err(Error::invalid(format!("the import document's format expects {FORMAT:?}; got {format}")));
        }
    }
    if let Some(version) = obj.get("schema_version") {
        if !version.as_u64().is_some_and(|v| (1..=SCHEMA_VERSION).contains(&v)) {
            return Err(Error::invalid(format!("schema_version {version} is not supported (this build reads 1)")));
        }
    }
    let Some(settings) = obj.get("settings").filter(|s| s.is_object()) else {
        return Err(Error::invalid("the import document has no \"settings\" object"));
    };
    let digest = digest(settings);
    if let Some(claimed) = obj.get("digest") {
        if claimed.as_str() != Some(digest.as_str()) {
            return Err(Error::invalid(format!(
                "the document's digest does not match its settings (the file was changed or damaged): it says {claimed}, the settings hash to {digest:?}"
            )));
        }
    }
    let entries = settings.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(ImportRequest {
        digest,
        source: obj.get("source").cloned(),
        entries,
        expected_head: None,
        baseline: ledger.baseline(),
    })
}

/// What an import would do, against the current state.
pub fn plan(ledger: &Ledger, req: &ImportRequest) -> Vec<PlanEntry> {
    let snap = ledger.snapshot();
    plan_import(ledger.catalog(), &snap.state, ledger.secret_box(), req)
}

/// The plan as JSON: the entries, a count per action, and the keys in conflict (an update replaces a
/// value the store holds).
pub fn plan_json(plan: &[PlanEntry]) -> Value {
    let count = |a| plan.iter().filter(|p| p.action == a).count();
    json!({
        "plan": plan,
        "summary": {
            "create": count(PlanAction::Create),
            "update": count(PlanAction::Update),
            "unchanged": count(PlanAction::Unchanged),
            "locked": count(PlanAction::Locked),
            "invalid": count(PlanAction::Invalid),
        },
        "conflicts": plan.iter().filter(|p| p.action == PlanAction::Update).map(|p| p.key.clone()).collect::<Vec<_>>(),
    })
}

/// Whether any entry makes the whole import invalid.
pub fn has_invalid(plan: &[PlanEntry]) -> bool {
    plan.iter().any(|p| p.action == PlanAction::Invalid)
}

/// The import command with its audit cause.
pub fn command(req: ImportRequest) -> Command {
    Command::Import(req)
}

/// Applies an import through the writer: re-planned against the state at append time, one batch.
pub async fn apply(ledger: &Ledger, req: ImportRequest, ctx: WriteContext) -> Result<Outcome, Error> {
    ledger.execute_async(command(req), ctx).await
}

/// What an applied import actually did, as its batch's `ImportApplied` event records it (the writer plans
/// again at append time, so this, not a plan made before, is the truth): created, updated, unchanged count
/// and refused locked keys. `None` when nothing was appended.
pub fn applied_summary(outcome: &Outcome) -> Option<Value> {
    outcome.find(|event| match event {
        cfgledger_events::Event::ImportApplied(e) => Some(json!({
            "created": e.created, "updated": e.updated, "unchanged": e.unchanged, "locked": e.locked,
        })),
        _ => None,
    })
}
