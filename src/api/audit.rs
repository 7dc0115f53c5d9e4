//! `GET /admin/config/audit` (auditor): the audit trail, newest first, from the log's indexes. Filters:
//! `key` (exact, or a prefix ending in `*`; entities as `KIND/NAME`), `actor`, `action`, `source`, `batch`,
//! `since`/`until` (RFC 3339 or a duration before now such as `24h`) and `rejected=true`; `limit` (rows) and
//! `cursor` page (`next_cursor` names the next page). `format=csv` or `format=jsonl` for export. Each entry
//! shows seq, time, actor, role, source, reason, request id, batch and old and new values, masked when
//! sensitive. The filter is [`AuditFilter`], the one the CLI sends and `timetravel::audit` runs.

use super::extract::{ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::model::{AuditFilter, AuditPage, ErrorBody};
use crate::timetravel;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The audit trail, one page.
#[utoipa::path(
    get,
    path = "/admin/config/audit",
    tag = "time travel",
    summary = "The audit trail, newest first, from the log's indexes (auditor)",
    params(AuditFilter),
    responses(
        (status = 200, description = "one page of entries (the next page's cursor also in X-Next-Cursor for csv and jsonl)",
            content(
                (AuditPage = "application/json"),
                (String = "text/csv"),
                (String = "application/x-ndjson"),
            )),
        (status = 400, description = "a filter, cursor, limit or format that does not parse", body = ErrorBody),
        (status = 403, description = "insufficient role", body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Response, ApiError> {
    caller.require(Role::Auditor)?;
    let format = filter.format.clone().unwrap_or_else(|| "json".into());
    if !["json", "csv", "jsonl"].contains(&format.as_str()) {
        return Err(ApiError::bad_request(format!("format expects json, csv or jsonl; got {format:?}")));
    }
    let ledger = state.ledger.clone();
    let page = super::history::read(move || timetravel::audit(&ledger, &filter)).await?;
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
            let mut body = String::new();
            for entry in &page.entries {
                let line =
                    serde_json::to_string(entry).map_err(|e| crate::error::Error::internal("an audit entry", e))?;
                body.push_str(&line);
                body.push('\n');
            }
            with_cursor(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        _ => Json(page).into_response(),
    })
}
