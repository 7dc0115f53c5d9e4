//! The time-travel endpoints over settings and entities: a key's history (`GET /admin/config/{key}/history`;
//! an entity's is under its own path), the difference between two points (`GET /admin/config/diff`),
//! rollback to a point (`POST /admin/config/rollback`), the undoing of one batch (`POST
//! /admin/config/revert`), and the verification of the chain and its checkpoints (`GET /admin/verify`).
//! Rollback and revert append one batch of compensating events whose cause names what they return to.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Auditor, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::error::Error;
use crate::timetravel;
use axum::extract::State;
use axum::Json;
use cfgledger_events::{Cause, Command};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::from(Error::Closed))??)
}

/// A read on a blocking worker. A point, filter or cursor that does not parse is the caller's `Error::Input`,
/// which answers 400 by itself.
pub(crate) async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(f).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `GET /admin/config/{key}/history`: every value the key has had, newest first.
pub async fn setting_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Auditor)?;
    page(state, key, query).await
}

/// The history of a subject (a key, or `KIND/NAME`).
pub async fn page(state: AppState, subject: String, query: PageQuery) -> Result<Json<Value>, ApiError> {
    let ledger = state.ledger.clone();
    let page = read(move || timetravel::history(&ledger, &subject, query.cursor.as_deref(), query.limit)).await?;
    Ok(Json(json!({"entries": page.entries, "next_cursor": page.next_cursor, "head": page.head})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/config/diff?from=&to=` (`to` defaults to now).
pub async fn diff(
    State(state): State<AppState>,
    Auditor(_caller): Auditor,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    let Some(from) = query.from else {
        return Err(ApiError::bad_request("diff needs from (an RFC 3339 time, a duration such as 24h, or seq:N)"));
    };
    let ledger = state.ledger.clone();
    Ok(Json(read(move || timetravel::diff(&ledger, &from, query.to.as_deref())).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    to: String,
    #[serde(default)]
    keys: Option<Vec<String>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    reason: Option<String>,
    /// Apply only if the log's head is still this seq (the `head` of a reviewed dry run).
    #[serde(default)]
    expected_head: Option<u64>,
}

/// `POST /admin/config/rollback`: the plan (dry run) or one batch of compensating events.
pub async fn rollback(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<Value>, ApiError> {
    let ledger = state.ledger.clone();
    let to = body.to.clone();
    let only = body.keys.clone().map(|k| k.into_iter().collect::<BTreeSet<String>>());
    let expected = body.expected_head;
    let (req, plan) = blocking(move || {
        let point = ledger.point(&to)?;
        let req = timetravel::rollback_request(&ledger, point.seq, only, expected)?;
        let plan = timetravel::plan_json(&ledger, &req)?;
        Ok((req, plan))
    })
    .await?;
    let cause =
        Cause::Rollback { to_seq: req.to_seq, to: body.to.clone(), via: format!("{} {}", caller.method, caller.path) };
    apply(&state, &caller, Command::Rollback(req), plan, body.dry_run, body.reason, cause).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    batch: String,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/config/revert`: undoes one batch; 409 naming the keys a later change touched, unless forced.
pub async fn revert(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<RevertBody>,
) -> Result<Json<Value>, ApiError> {
    let ledger = state.ledger.clone();
    let batch = body.batch.clone();
    let force = body.force;
    let (req, plan) = blocking(move || timetravel::revert_request(&ledger, &batch, force)).await?;
    let cause = Cause::Revert { batch: body.batch.clone(), via: format!("{} {}", caller.method, caller.path) };
    apply(&state, &caller, Command::Rollback(req), plan, body.dry_run, body.reason, cause).await
}

async fn apply(
    state: &AppState,
    caller: &Caller,
    cmd: Command,
    mut plan: Value,
    dry_run: bool,
    reason: Option<String>,
    cause: Cause,
) -> Result<Json<Value>, ApiError> {
    plan["dry_run"] = Value::Bool(dry_run);
    if dry_run {
        return Ok(Json(plan));
    }
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let mut ctx = caller.context(reason);
    ctx.cause = cause;
    let outcome = state.ledger.execute_async(cmd, ctx).await?;
    plan["batch"] = outcome.batch_id.clone().map_or(Value::Null, Value::String);
    plan["status"] = Value::String(if outcome.changed() { "completed" } else { "nothing_to_do" }.into());
    plan["head"] = outcome.head.seq.into();
    Ok(Json(plan))
}

/// `GET /admin/verify` (auditor): the chain recomputed from the stored bytes, the checkpoints compared
/// with the replay, and the head hash.
pub async fn verify(State(state): State<AppState>, Auditor(_caller): Auditor) -> Result<Json<Value>, ApiError> {
    let store = state.ledger.store().clone();
    let outcome = tokio::task::spawn_blocking(move || crate::verify::verify(store.as_ref(), None))
        .await
        .map_err(|_| ApiError::from(Error::Closed))?;
    match outcome {
        Ok(report) => Ok(Json(json!({
            "status": if report.ok() { "ok" } else { "snapshots_bad" },
            "head": {"seq": report.head.seq, "hash": report.head.hash.to_hex()},
            "snapshots": {
                "ok": report.snapshots_ok,
                "bad": report.snapshots_bad.iter().map(|(s, why)| json!({"seq": s, "problem": why})).collect::<Vec<_>>(),
            },
        }))),
        Err(e) => Err(e.into()),
    }
}
