//! Importing a document's settings: [`plan_import`], the pure plan that the dry run shows and the apply
//! follows, and the apply, one batch headed by `ImportApplied`.

use super::{protect, same_value, spec, store, Context, Rejection, Sealer, SettingsLookup};
use crate::catalog::Catalog;
use crate::event::{Event, ImportApplied, SettingChanged, StoredValue, MASK};
use crate::value::Input;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The settings of an imported document, with what the caller knows beyond the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    /// blake3 of the document's settings, hex.
    pub digest: String,
    /// The exporting store as the document names it.
    pub source: Option<Value>,
    /// Key and value (from a JSON object, so in key order, each key once).
    pub entries: Vec<(String, Value)>,
    /// Apply only if the log's head is still this seq (the head a reviewed dry run showed).
    pub expected_head: Option<u64>,
    /// The value each key has when the log holds none (the process environment, else the default). It does
    /// not change while a process runs, so it can be computed outside the writer.
    pub baseline: BTreeMap<String, StoredValue>,
}

/// What an import does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// The log holds no value for the key yet; the import writes one.
    Create,
    /// The log holds a different value; the import replaces it (a conflict to review).
    Update,
    /// The value in force already equals the document's.
    Unchanged,
    /// The key is locked and the document's value differs: skipped and reported.
    Locked,
    /// Unknown key or a value that does not fit: the whole import is refused.
    Invalid,
}

/// One line of an import plan. `current` and `value` are masked when the key is sensitive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanEntry {
    pub key: String,
    pub action: PlanAction,
    pub current: Value,
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Parses each entry of an import and says what applying it would do, against the log's state and the
/// values in force where the log holds none. Pure, so a dry run and the apply agree.
pub fn plan_import(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    req: &ImportRequest,
) -> Vec<PlanEntry> {
    let mut seen = BTreeSet::new();
    req.entries
        .iter()
        .map(|(named, raw)| {
            // A known key is planned under its canonical name (bare in the default namespace, `ns:KEY`
            // elsewhere), so that two spellings of one key are one key; the events carry its qualified key.
            let key = catalog.get(named).map_or(named.as_str(), |s| crate::namespace::display(&s.id));
            let entry = |action, current, value, message: Option<String>| PlanEntry {
                key: key.to_string(),
                action,
                current,
                value,
                message,
            };
            let Some(spec) = catalog.get(named) else {
                let shown = crate::namespace::display(named);
                return entry(PlanAction::Invalid, Value::Null, raw.clone(), Some(format!("unknown key {shown}")));
            };
            let id = spec.id.as_str();
            let shown = |v: &Value| if spec.sensitive { Value::String(MASK.into()) } else { v.clone() };
            let in_force = state.current(id).or_else(|| req.baseline.get(id));
            let current =
                in_force.map_or(Value::Null, |v| if spec.sensitive { Value::String(MASK.into()) } else { v.masked() });
            if !seen.insert(id) {
                return entry(PlanAction::Invalid, current, shown(raw), Some(format!("key {key} appears twice")));
            }
            if spec.sensitive && raw.as_str() == Some(MASK) {
                let message =
                    format!("key {key} holds the mask {MASK:?}, not a value: a masked secret cannot be imported");
                return entry(PlanAction::Invalid, current, shown(raw), Some(message));
            }
            let parsed = match spec.parse(&Input::Json(raw.clone())) {
                Ok(v) => v,
                Err(e) => return entry(PlanAction::Invalid, current, shown(raw), Some(e.to_string())),
            };
            let locked = format!("key {key} is locked: it can only be seeded from the environment");
            if spec.locked && spec.sensitive {
                // Never compared: "unchanged" would tell the importer whether it guessed the secret.
                return entry(PlanAction::Locked, current, shown(&parsed), Some(locked));
            }
            // A secret is never reported unchanged ("unchanged" would confirm a guess): the plan says update,
            // and the apply (`import_settings`) writes it only if it differs.
            if !spec.sensitive && in_force.is_some_and(|v| same_value(v, &parsed, id, sealer)) {
                return entry(PlanAction::Unchanged, current, shown(&parsed), None);
            }
            if spec.locked {
                return entry(PlanAction::Locked, current, shown(&parsed), Some(locked));
            }
            let action = if state.current(id).is_some() { PlanAction::Update } else { PlanAction::Create };
            entry(action, current, shown(&parsed), None)
        })
        .collect()
}

/// The events of a settings import: refused whole if any entry is invalid or the head moved since the dry
/// run; locked keys the document tried to change are recorded as attempts.
pub(super) fn import_settings(cx: &Context<'_>, req: ImportRequest) -> Result<Vec<Event>, Rejection> {
    let Context { catalog, state, sealer, .. } = *cx;
    let plan = plan_import(catalog, state, sealer, &req);
    let invalid: Vec<String> = plan
        .iter()
        .filter(|p| p.action == PlanAction::Invalid)
        .map(|p| p.message.clone().unwrap_or_else(|| p.key.clone()))
        .collect();
    if !invalid.is_empty() {
        return Err(Rejection::invalid(format!("the import was refused: {}", invalid.join("; "))));
    }
    if let Some(expected) = req.expected_head {
        let head = state.head_seq();
        if head != expected {
            return Err(Rejection::conflict(format!(
                "the store changed since the plan was made: its head is seq {head}, the plan saw seq {expected}"
            )));
        }
    }
    // The event records qualified keys, as every event does.
    let qualified = |key: &str| catalog.get(key).map_or_else(|| key.to_string(), |s| s.id.clone());
    let keys = |action| plan.iter().filter(|p| p.action == action).map(|p| qualified(&p.key)).collect::<Vec<_>>();
    let (created, mut updated, refused) =
        (keys(PlanAction::Create), keys(PlanAction::Update), keys(PlanAction::Locked));
    // A secret the plan could not call unchanged is compared here, privately: writing the value it already
    // holds would append a change that changes nothing, and importing a file twice must append nothing.
    updated.retain(|key| {
        let Some(spec) = catalog.get(key).filter(|s| s.sensitive) else { return true };
        let given = req.entries.iter().find(|(k, _)| catalog.get(k).is_some_and(|s| s.id == spec.id));
        let parsed = given.and_then(|(_, raw)| spec.parse(&Input::Json(raw.clone())).ok());
        !matches!((state.current(key), parsed), (Some(held), Some(new)) if same_value(held, &new, key, sealer))
    });
    if created.is_empty() && updated.is_empty() {
        // Nothing changes: an import already in force appends nothing, even when it names locked keys it
        // cannot change (the plan reports them), so that importing a file twice appends nothing.
        return Ok(Vec::new());
    }
    let unchanged = plan.iter().filter(|p| p.action == PlanAction::Unchanged).count();
    let mut events = vec![Event::ImportApplied(ImportApplied {
        digest: req.digest,
        source: req.source,
        created: created.clone(),
        updated: updated.clone(),
        unchanged,
        locked: refused,
    })];
    for (named, raw) in &req.entries {
        let spec = spec(catalog, named)?;
        let key = &spec.id;
        if !created.contains(key) && !updated.contains(key) {
            continue;
        }
        let parsed = spec.parse(&Input::Json(raw.clone())).map_err(|e| Rejection::invalid(e.to_string()))?;
        let previous = state.current(key).cloned().map(|p| protect(spec.sensitive, key, p, sealer)).transpose()?;
        let value = store(spec.sensitive, key, &parsed, sealer)?;
        events.push(Event::SettingChanged(SettingChanged { key: key.clone(), value, previous }));
    }
    // Each locked key the document tried to change is an attempt on a locked key: recorded as such.
    for entry in plan.iter().filter(|p| p.action == PlanAction::Locked) {
        let spec = spec(catalog, &entry.key)?;
        let raw = req
            .entries
            .iter()
            .find(|(k, _)| catalog.get(k).is_some_and(|s| s.id == spec.id))
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        let attempted = (!spec.bootstrap)
            .then(|| spec.parse(&Input::Json(raw)).ok())
            .flatten()
            .and_then(|v| store(spec.sensitive, &spec.id, &v, sealer).ok());
        events.extend(Rejection::locked(&spec.id, "import", spec.bootstrap, attempted).audit);
    }
    Ok(events)
}
