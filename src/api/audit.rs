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
use crate::usecase::timetravel;
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

#[cfg(test)]
mod tests {
    /// The time-travel operations come from their annotations, with every status and content type.
    #[test]
    fn the_time_travel_operations_are_generated_with_their_answers() {
        let doc = super::super::openapi::spec();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        let audit = op("/admin/config/audit", "get");
        let forms: Vec<&str> = audit["responses"]["200"]["content"]
            .as_object()
            .map(|c| c.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(forms, ["application/json", "application/x-ndjson", "text/csv"], "{audit}");
        let params: Vec<&str> =
            audit["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
        for name in [
            "key", "actor", "action", "source", "batch", "since", "until", "rejected", "cursor", "before", "limit",
            "format",
        ] {
            assert!(params.contains(&name), "{name} is not documented: {params:?}");
        }
        for (path, method, statuses) in [
            ("/admin/config/audit", "get", &["200", "400", "401", "403", "500", "503"][..]),
            ("/admin/config/{key}/history", "get", &["200", "400", "401", "403", "404", "500", "503"]),
            ("/admin/config/diff", "get", &["200", "400", "401", "403", "500", "503"]),
            (
                "/admin/config/rollback",
                "post",
                &["200", "400", "401", "403", "404", "408", "409", "413", "415", "422", "429", "500", "503"],
            ),
            (
                "/admin/config/revert",
                "post",
                &["200", "400", "401", "403", "404", "408", "409", "413", "415", "422", "429", "500", "503"],
            ),
            ("/admin/verify", "get", &["200", "401", "403", "500", "503"]),
        ] {
            let documented: Vec<&str> = doc["paths"][path][method]["responses"]
                .as_object()
                .map(|r| r.keys().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(documented, statuses, "{method} {path}");
        }
    }
}
