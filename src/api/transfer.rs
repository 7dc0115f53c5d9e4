//! `GET /admin/config/export` (auditor) and `POST /admin/config/import` (platform admin, `?dry_run=true`
//! for the plan alone). An import with any invalid entry is 422 with the plan in `details`, and appends
//! nothing; otherwise it is one atomic batch, locked keys skipped and reported.

use super::extract::{Admin, ApiJson, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::transfer;
use axum::extract::State;
use axum::Json;
use cfgledger_events::Cause;
use serde::Deserialize;
use serde_json::Value;

pub async fn export(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Auditor)?;
    Ok(Json(transfer::export_document(&state.ledger, &caller.name, state.ledger.now())))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: bool,
    reason: Option<String>,
    /// Apply only if the store's head is still this seq (the `head` of a reviewed dry run): 409 otherwise.
    expected_head: Option<u64>,
}

pub async fn import(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(query): ApiQuery<ImportQuery>,
    ApiJson(doc): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut req = transfer::parse_document(&doc, &state.ledger)?;
    req.expected_head = query.expected_head;
    let plan = transfer::plan(&state.ledger, &req);
    let mut body = transfer::plan_json(&plan);
    if transfer::has_invalid(&plan) {
        metrics::counter!("cfgledger_rejected_writes_total", "reason" => "invalid_value").increment(1);
        return Err(ApiError::new(
            crate::error::ErrorCode::InvalidValue,
            "the import holds invalid entries; nothing was applied",
        )
        .with_details(body));
    }
    body["dry_run"] = Value::Bool(query.dry_run);
    if query.dry_run {
        body["applied"] = Value::Bool(false);
        body["head"] = state.ledger.snapshot().head.seq.into();
        return Ok(Json(body));
    }
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let mut ctx = caller.context(query.reason);
    ctx.cause = Cause::Import { digest: req.digest.clone(), via: format!("{} {}", caller.method, caller.path) };
    let outcome = transfer::apply(&state.ledger, req, ctx).await?;
    body["applied"] = Value::Bool(outcome.changed());
    // The plan above was made before the write; this is what the write did.
    body["result"] = transfer::applied_summary(&outcome).unwrap_or(Value::Null);
    body["batch"] = outcome.batch_id.map_or(Value::Null, Value::String);
    body["head"] = outcome.head.seq.into();
    Ok(Json(body))
}
