//! `GET /admin/config/audit` (auditor): the audit trail, newest first, from the log's indexes. Filters:
//! `key` (exact, or a prefix ending in `*`; entities as `KIND/NAME`), `actor`, `action`, `source`, `batch`,
//! `since`/`until` (RFC 3339 or a duration before now such as `24h`) and `rejected=true`; `limit` and
//! `cursor` page (`next_cursor` names the next page). `format=csv` or `format=jsonl` for export. Each entry
//! shows seq, time, actor, role, source, reason, request id, batch and old and new values, masked when
//! sensitive.

use super::extract::{ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::timetravel::{self, AuditFilter};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    key: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    source: Option<String>,
    batch: Option<String>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    rejected: bool,
    cursor: Option<String>,
    /// The older form of `cursor`: entries below this seq.
    before: Option<u64>,
    limit: Option<usize>,
    format: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Auditor)?;
    let format = query.format.clone().unwrap_or_else(|| "json".into());
    if !["json", "csv", "jsonl"].contains(&format.as_str()) {
        return Err(ApiError::bad_request(format!("format expects json, csv or jsonl; got {format:?}")));
    }
    let filter = AuditFilter {
        key: query.key,
        actor: query.actor,
        action: query.action,
        source: query.source,
        batch: query.batch,
        since: query.since,
        until: query.until,
        rejected: query.rejected,
        cursor: query.cursor.or(query.before.map(|b| format!("s{b}"))),
        limit: query.limit,
    };
    let ledger = state.ledger.clone();
    let page = super::history::read(move || timetravel::audit(&ledger, &filter)).await?;
    let next_before = page.next_cursor.as_deref().and_then(|c| c.strip_prefix('s')).and_then(|n| n.parse::<u64>().ok());
    let with_cursor = |mut response: Response| {
        if let Some(c) = page.next_cursor.as_deref().and_then(|c| header::HeaderValue::from_str(c).ok()) {
            response.headers_mut().insert("x-next-cursor", c);
        }
        response
    };
    Ok(match format.as_str() {
        "csv" => with_cursor(
            ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], timetravel::csv(&page.entries)).into_response(),
        ),
        "jsonl" => {
            let body: String = page.entries.iter().map(|e| format!("{e}\n")).collect();
            with_cursor(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        _ => Json(json!({
            "entries": page.entries,
            "next_cursor": page.next_cursor,
            "next_before": next_before,
            "head": page.head,
        }))
        .into_response(),
    })
}
