//! The settings half of a registry import, as `export.rs` calls it: thin adapters over
//! `usecase::settings_transfer`, which holds the settings export and import themselves.

use crate::ledger::{Ledger, Outcome};
use cfgledger_events::ImportRequest;
use serde_json::{Map, Value};

pub use crate::usecase::settings_transfer::{digest, parse_document, FORMAT, SCHEMA_VERSION};

/// Every non-sensitive setting with a value, and where each came from.
pub fn exportable_settings(ledger: &Ledger, snap: &crate::live::Snapshot) -> (Map<String, Value>, Value) {
    let (settings, sources) = crate::usecase::settings_transfer::exportable_settings(ledger, snap);
    (settings, serde_json::to_value(sources).unwrap_or(Value::Null))
}

/// What an import would do against the current state.
pub fn plan(ledger: &Ledger, req: &ImportRequest) -> crate::model::ImportPlan {
    crate::usecase::settings_transfer::plan(ledger, req)
}

/// The plan as JSON.
pub fn plan_json(plan: &crate::model::ImportPlan) -> Value {
    serde_json::to_value(plan).unwrap_or(Value::Null)
}

/// What an applied import did, as JSON; `None` when nothing was appended.
pub fn applied_summary(outcome: &Outcome) -> Option<Value> {
    crate::usecase::settings_transfer::applied(outcome).and_then(|r| serde_json::to_value(r).ok())
}

/// Whether a settings plan refuses the whole import.
pub fn has_invalid(plan: &crate::model::ImportPlan) -> bool {
    plan.summary.invalid > 0
}
