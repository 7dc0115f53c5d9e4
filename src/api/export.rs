//! `GET /export` (filters: `types`, `exclude_types`, `tags`, `include_inactive`, `include_dependencies`;
//! `format=mcpgateway` for MCP Gateway's own layout)
//! and `POST /export/selective` (`{"tools": [names], ...}`): the registry's portable export (auditor).

use super::extract::{ApiJson, ApiQuery, Auditor};
use super::{ApiError, AppState};
use crate::export;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    types: Option<String>,
    exclude_types: Option<String>,
    tags: Option<String>,
    #[serde(default)]
    include_inactive: bool,
    #[serde(default)]
    include_dependencies: bool,
    /// `cfgledger` (default) or `mcpgateway` (MCP Gateway's layout, under SHA-256 of this store's secret).
    format: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = export::Filter {
        types: query.types.as_deref().map(export::parse_kinds).transpose()?,
        exclude_types: query.exclude_types.as_deref().map(export::parse_kinds).transpose()?.unwrap_or_default(),
        tags: query.tags.as_deref().map(split).unwrap_or_default(),
        include_inactive: query.include_inactive,
        include_dependencies: query.include_dependencies,
        selected: None,
    };
    let doc = export::document(&state.ledger, &filter, &caller.name, state.ledger.now())?;
    match query.format.as_deref().unwrap_or("cfgledger") {
        "cfgledger" => Ok(Json(doc)),
        "mcpgateway" => Ok(Json(export::to_mcpgateway(&state.ledger, &doc, None)?)),
        other => Err(ApiError::bad_request(format!("format expects cfgledger or mcpgateway; got {other:?}"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectiveQuery {
    #[serde(default)]
    include_dependencies: bool,
}

pub async fn selective(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<SelectiveQuery>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let filter = export::Filter {
        selected: Some(export::parse_selection(&body)?),
        include_dependencies: query.include_dependencies,
        include_inactive: true,
        ..export::Filter::default()
    };
    Ok(Json(export::document(&state.ledger, &filter, &caller.name, state.ledger.now())?))
}

fn split(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    import_data: Value,
    #[serde(default)]
    conflict_strategy: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    source_secret: Option<String>,
    #[serde(default)]
    selected_entities: Option<Map<String, Value>>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /import`: the registry's (and settings') import, one atomic batch; `dry_run` gives the exact plan.
pub async fn import(
    State(state): State<AppState>,
    super::extract::Admin(caller): super::extract::Admin,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<Value>, ApiError> {
    let strategy = body
        .conflict_strategy
        .as_deref()
        .unwrap_or("update")
        .parse::<cfgledger_events::registry_import::ConflictStrategy>()
        .map_err(ApiError::bad_request)?;
    let selection = body.selected_entities.as_ref().map(export::parse_selection).transpose()?;
    let source_secret = body.source_secret.map(zeroize::Zeroizing::new);
    let parsed = export::parse_import(
        &state.ledger,
        &body.import_data,
        strategy,
        selection.as_ref(),
        source_secret.as_ref().map(|s| s.as_str()),
    )?;
    let mut plan = export::plan_json(&state.ledger, &parsed)?;
    plan["dry_run"] = Value::Bool(body.dry_run);
    if body.dry_run {
        return Ok(Json(plan));
    }
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let mut ctx = caller.context(body.reason);
    ctx.cause = cfgledger_events::Cause::Import { digest: parsed.digest.clone(), via: "POST /import".into() };
    // A refusal at apply time (a `fail` conflict) carries the plan, so that a client can show what clashed.
    let outcome = match state.ledger.execute_async(export::import_command(parsed), ctx).await {
        Ok(outcome) => outcome,
        Err(e) => return Err(ApiError::from(e).with_details(serde_json::json!({"plan": plan}))),
    };
    plan["import_id"] = outcome.batch_id.clone().map_or(Value::Null, Value::String);
    plan["status"] = Value::String(if outcome.changed() { "completed" } else { "nothing_to_do" }.into());
    plan["result"] = crate::transfer::applied_summary(&outcome).unwrap_or(Value::Null);
    plan["head"] = outcome.head.seq.into();
    Ok(Json(plan))
}

/// The imports in the log, newest first (at most `limit`), read from their `ImportApplied` records.
fn imports(state: &AppState, only: Option<&str>, limit: usize) -> Result<Vec<Value>, ApiError> {
    let ledger = &state.ledger;
    let mut found = Vec::new();
    let head = ledger.snapshot().head.seq;
    crate::store::walk_back(ledger.store().as_ref(), head + 1, 1024, |rec| -> Result<bool, ApiError> {
        if rec.kind != "ImportApplied" || only.is_some_and(|id| id != rec.batch_id) {
            return Ok(true);
        }
        let env = cfgledger_events::verify_record(rec).map_err(crate::error::Error::from)?;
        if let cfgledger_events::Event::ImportApplied(e) = env.event {
            found.push(serde_json::json!({
                "import_id": env.batch.id, "status": "completed", "seq": env.seq,
                "time": env.occurred_at.to_string(), "actor": env.actor.name, "source": env.actor.source.as_str(),
                "digest": e.digest, "created": e.created, "updated": e.updated, "unchanged": e.unchanged,
                "locked": e.locked, "reason": env.batch.reason,
            }));
        }
        Ok(found.len() < limit)
    })?;
    Ok(found)
}

/// `GET /import/status`: recent imports, from the log (they survive restarts).
pub async fn statuses(State(state): State<AppState>, Auditor(_caller): Auditor) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let list = tokio::task::spawn_blocking(move || imports(&s, None, 50))
        .await
        .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    Ok(Json(serde_json::json!({"imports": list})))
}

/// `GET /import/status/{id}`: one import, by its batch id.
pub async fn status(
    State(state): State<AppState>,
    Auditor(_caller): Auditor,
    super::extract::ApiPath(id): super::extract::ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let s = state.clone();
    let wanted = id.clone();
    let mut list = tokio::task::spawn_blocking(move || imports(&s, Some(&wanted), 1))
        .await
        .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    list.pop()
        .map(Json)
        .ok_or_else(|| ApiError::new(crate::error::ErrorCode::NotFound, format!("no import {id} in the log")))
}
