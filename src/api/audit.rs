//! `GET /admin/config/audit` (auditor): the recent changes and rejected attempts, newest first, with old
//! and new values (masked when sensitive), actor, role, source, reason, request id, batch and time.
//! `?limit=` (default 50, at most 1000) and `?before=SEQ` page backwards (`next_before` names the next page). Richer, indexed queries come with
//! the time-travel issue; this reads the log's tail.

use super::extract::{ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::present;
use axum::extract::State;
use axum::Json;
use cfgledger_events::verify_record;
use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
/// Records read per step backwards.
const WINDOW: u64 = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<usize>,
    before: Option<u64>,
}

pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Auditor)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit expects 1 to {MAX_LIMIT}; got {limit}")));
    }
    let ledger = state.ledger.clone();
    let head = ledger.snapshot().head.seq;
    let before = query.before.unwrap_or(head + 1).min(head + 1);
    let (entries, next) = tokio::task::spawn_blocking(move || -> Result<(Vec<Value>, Option<u64>), ApiError> {
        let catalog = ledger.catalog();
        let mut entries = Vec::new();
        let mut next = None;
        crate::store::walk_back(ledger.store().as_ref(), before, WINDOW, |rec| -> Result<bool, ApiError> {
            let env = verify_record(rec).map_err(crate::error::Error::from)?;
            // An event's entries stay on one page, so a page may run a few entries past the limit.
            entries.extend(present::audit_entries(&env, catalog).into_iter().rev());
            if entries.len() >= limit {
                next = (rec.seq > 1).then_some(rec.seq);
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok((entries, next))
    })
    .await
    .map_err(|_| ApiError::from(crate::error::Error::Closed))??;
    Ok(Json(json!({"entries": entries, "next_before": next, "head": head})))
}
