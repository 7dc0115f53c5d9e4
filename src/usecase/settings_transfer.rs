//! Export and import of settings as a JSON document. An export holds every non-sensitive setting in force
//! with its source, who exported it, and where from (store id, seq, head hash), with a digest of the
//! settings so that an import notices a damaged file. An import is planned key by key
//! (`cfgledger_events::plan_import`) and applied as one atomic batch whose cause names the document's digest.

use crate::error::Error;
use crate::ledger::{Ledger, Outcome, WriteContext};
use crate::live::Snapshot;
use crate::model::{
    ExportSource, ImportPlan, ImportQuery, PlanAction, PlanEntry, PlanSummary, SettingsExport, SettingsImportReport,
    SettingsImportResult, ValueSource,
};
use cfgledger_events::{plan_import, Cause, Command, Event, ImportRequest, Timestamp};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The `format` of a settings export.
pub const FORMAT: &str = "cfgledger-settings";
pub const SCHEMA_VERSION: u64 = 1;

/// The refusal of an import that holds an invalid entry (422, with the plan in the error's details).
pub const INVALID_IMPORT: &str = "the import holds invalid entries; nothing was applied";

/// Every non-sensitive setting set in the store or the process environment, and where each came from: what
/// exports carry (a default is the catalog's, the same in every store, so it is not exported). A running
/// server keeps a restart-required key at its boot value; the export holds what is stored, the value the
/// next start uses. Taken from `snap`, so that a document's settings and its head agree.
///
/// Keys are named as a document names them: the default namespace's bare (`LOG_LEVEL`), every other one's
/// qualified (`cfgledger:LOG_LEVEL`). `namespaces` limits the document to some; `None` takes every one.
pub fn exportable_settings(
    ledger: &Ledger,
    snap: &Snapshot,
    namespaces: Option<&[&str]>,
) -> (Map<String, Value>, BTreeMap<String, ValueSource>) {
    let mut settings = Map::new();
    let mut sources = BTreeMap::new();
    for spec in ledger.catalog().specs() {
        if spec.sensitive || namespaces.is_some_and(|n| !n.contains(&spec.namespace.as_str())) {
            continue;
        }
        let Some(view) = snap.view(&spec.id) else { continue };
        let (value, source) = match &view.pending {
            Some((pending, source)) => (pending.as_ref(), *source),
            None => (view.value.as_ref(), view.source),
        };
        let Some(value) = value else { continue };
        if source == ValueSource::Default {
            continue;
        }
        let name = cfgledger_events::namespace::display(&spec.id).to_string();
        settings.insert(name.clone(), value.masked());
        sources.insert(name, source);
    }
    (settings, sources)
}

/// The export document of the store's current settings, of one namespace or (`None`) every one.
pub fn export(
    ledger: &Ledger,
    namespace: Option<&str>,
    exported_by: &str,
    now: Timestamp,
) -> Result<SettingsExport, Error> {
    let snap = ledger.snapshot();
    let wanted = match namespace {
        Some(_) => Some(super::settings::namespaces(ledger.catalog(), namespace)?),
        None => None,
    };
    let (settings, sources) = exportable_settings(ledger, &snap, wanted.as_deref());
    Ok(SettingsExport {
        format: FORMAT.to_string(),
        schema_version: SCHEMA_VERSION,
        exported_at: now.to_string(),
        exported_by: exported_by.to_string(),
        source: ExportSource {
            store_id: snap.state.store.as_ref().map(|s| s.store_id.clone()),
            seq: snap.head.seq,
            head_hash: snap.head.hash.to_hex(),
        },
        digest: digest(&settings),
        settings,
        sources,
    })
}

/// `blake3:` and the hex hash of the settings' compact JSON (object keys sorted).
pub fn digest(settings: &Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(settings).unwrap_or_default();
    format!("blake3:{}", blake3::hash(&bytes).to_hex())
}

/// Reads an import document: `{"settings": {KEY: value, ...}}`, with the export's metadata optional. A
/// `format` other than ours, a newer `schema_version` or a `digest` that does not match is refused.
///
/// Keys are named as exports name them: bare keys belong to `namespace` (the default one when `None`),
/// `namespace:KEY` to its namespace.
pub fn parse_document(doc: &Value, ledger: &Ledger, namespace: Option<&str>) -> Result<ImportRequest, Error> {
    if let Some(ns) = namespace {
        super::settings::namespaces(ledger.catalog(), Some(ns))?;
    }
    let Some(obj) = doc.as_object() else {
        return Err(Error::input("the import document expects a JSON object with a \"settings\" object"));
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
    let Some(settings) = obj.get("settings").and_then(Value::as_object) else {
        return Err(Error::input("the import document has no \"settings\" object"));
    };
    let digest = digest(settings);
    if let Some(claimed) = obj.get("digest") {
        if claimed.as_str() != Some(digest.as_str()) {
            return Err(Error::invalid(format!(
                "the document's digest does not match its settings (the file was changed or damaged): it says {claimed}, the settings hash to {digest:?}"
            )));
        }
    }
    let entries =
        settings.iter().map(|(k, v)| (cfgledger_events::namespace::qualify(namespace, k), v.clone())).collect();
    Ok(ImportRequest {
        digest,
        source: obj.get("source").cloned(),
        entries,
        expected_head: None,
        baseline: ledger.baseline(),
    })
}

/// What an import would do against the current state.
pub fn plan(ledger: &Ledger, req: &ImportRequest) -> ImportPlan {
    let snap = ledger.snapshot();
    let entries: Vec<PlanEntry> =
        plan_import(ledger.catalog(), &snap.state, ledger.secret_box(), req).into_iter().map(plan_entry).collect();
    let count = |a| entries.iter().filter(|p| p.action == a).count();
    let summary = PlanSummary {
        create: count(PlanAction::Create),
        update: count(PlanAction::Update),
        unchanged: count(PlanAction::Unchanged),
        locked: count(PlanAction::Locked),
        invalid: count(PlanAction::Invalid),
    };
    let conflicts = entries.iter().filter(|p| p.action == PlanAction::Update).map(|p| p.key.clone()).collect();
    ImportPlan { plan: entries, summary, conflicts }
}

fn plan_entry(p: cfgledger_events::PlanEntry) -> PlanEntry {
    PlanEntry {
        key: cfgledger_events::namespace::display(&p.key).to_string(),
        action: p.action,
        current: p.current,
        value: p.value,
        message: p.message,
    }
}

/// Plans `doc` and, unless `query.dry_run`, applies it as one batch (re-planned by the writer against the
/// state at append time). An invalid entry refuses the whole import with the plan in the error's details.
/// `via` names the caller in the batch's cause (`POST /admin/config/import`, `config import`).
pub async fn import(
    ledger: &Ledger,
    doc: &Value,
    query: &ImportQuery,
    mut ctx: WriteContext,
    via: &str,
) -> Result<SettingsImportReport, Error> {
    let mut req = parse_document(doc, ledger, query.namespace.as_deref())?;
    // An empty document is a mistake (a truncated file, the wrong file), not a request to do nothing: answering
    // `nothing_to_do` would hide it. The registry import shares `parse_document` and may carry no settings.
    if req.entries.is_empty() {
        return Err(Error::input("the import document's \"settings\" is empty: there is nothing to import"));
    }
    req.expected_head = query.expected_head;
    let plan = plan(ledger, &req);
    if plan.summary.invalid > 0 {
        return Err(Error::Coded {
            code: crate::error::ErrorCode::InvalidValue,
            message: INVALID_IMPORT.to_string(),
            details: serde_json::to_value(&plan).unwrap_or(Value::Null),
        });
    }
    if query.dry_run {
        let head = ledger.snapshot().head.seq;
        return Ok(SettingsImportReport { plan, dry_run: true, applied: false, head, result: None, batch: None });
    }
    ctx.cause = Cause::Import { digest: req.digest.clone(), via: via.to_string() };
    let outcome = ledger.execute_async(Command::Import(req), ctx).await?;
    Ok(SettingsImportReport {
        plan,
        dry_run: false,
        applied: outcome.changed(),
        head: outcome.head.seq,
        result: applied(&outcome),
        batch: outcome.batch_id,
    })
}

/// What an applied import did, from the `ImportApplied` event the writer appended. `None` when nothing
/// was appended.
pub fn applied(outcome: &Outcome) -> Option<SettingsImportResult> {
    outcome.find(|event| match event {
        Event::ImportApplied(e) => {
            let shown = |keys: &[String]| {
                keys.iter().map(|k| cfgledger_events::namespace::display(k).to_string()).collect::<Vec<_>>()
            };
            Some(SettingsImportResult {
                created: shown(&e.created),
                updated: shown(&e.updated),
                unchanged: e.unchanged,
                locked: shown(&e.locked),
            })
        }
        _ => None,
    })
}
