//! `/admin/config` and `/admin/config/{key}`: the list with `?category=` and `?q=` filters, one key with
//! an `ETag` naming its version, `PUT` (compare-and-set with `If-Match`) and `DELETE` (back to the
//! environment or the default). Thin callers of `usecase::settings`.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::model::{ConfigItem, ConfigList, ErrorBody, KeyQuery, ListQuery, NamespaceQuery, ResetQuery, SetRequest};
use crate::usecase::settings::{self, Change, Changed};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cfgledger_events::Input;

/// Every setting with its effective value and source (viewer).
#[utoipa::path(get, path = "/admin/config", tag = "settings", params(ListQuery),
    responses(
        (status = 200, description = "the items and the head they answer for", body = ConfigList),
        (status = 400, description = "an unknown category, a point that does not parse, or an unknown query field", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ConfigList>, ApiError> {
    Ok(Json(settings::list(&state.ledger, &query).await?))
}

/// One setting (viewer); the `ETag` names its version.
#[utoipa::path(get, path = "/admin/config/{key}", tag = "settings",
    params(("key" = String, Path, description = "the setting's key, or namespace:KEY", example = "LOG_LEVEL"), KeyQuery),
    responses(
        (status = 200, description = "the item", body = ConfigItem, headers(("ETag" = String, description = "the key's version"))),
        (status = 400, description = "a point that does not parse", body = ErrorBody),
        (status = 404, description = "unknown key", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<KeyQuery>,
) -> Result<Response, ApiError> {
    let key = settings::qualified_key(state.ledger.catalog(), query.namespace.as_deref(), &key)?;
    let item = settings::get(&state.ledger, &key, query.as_of.as_deref()).await?;
    Ok(match &item.as_of {
        Some(_) => Json(item).into_response(),
        None => with_etag(item),
    })
}

/// Changes a setting (platform_admin); `If-Match` makes it compare-and-set.
#[utoipa::path(put, path = "/admin/config/{key}", tag = "settings", request_body = SetRequest,
    params(("key" = String, Path, description = "the setting's key, or namespace:KEY", example = "LOG_LEVEL"), NamespaceQuery,
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag from GET: apply only at that version")),
    responses(
        (status = 200, description = "the updated item", body = ConfigItem),
        (status = 400, description = "a malformed body or If-Match", body = ErrorBody),
        (status = 403, description = "a locked key (the attempt is recorded in the audit trail) or an insufficient role", body = ErrorBody),
        (status = 404, description = "unknown key", body = ErrorBody),
        (status = 409, description = "the key changed since the If-Match version", body = ErrorBody),
        (status = 422, description = "the value does not fit the key's type or range", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<NamespaceQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SetRequest>,
) -> Result<Response, ApiError> {
    let key = settings::qualified_key(state.ledger.catalog(), query.namespace.as_deref(), &key)?;
    let expected = if_match(&headers)?;
    let value = match (body.value, body.text) {
        (Some(v), None) => Input::Json(v),
        (None, Some(t)) => Input::Text(t),
        (Some(_), Some(_)) => return Err(ApiError::bad_request("send either \"value\" or \"text\", not both")),
        (None, None) => return Err(ApiError::bad_request("the body expects a \"value\" field")),
    };
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let changed =
        settings::change(&state.ledger, &key, Change::Set(value), expected, caller.context(body.reason)).await?;
    log_change("set", &key, &caller, &changed);
    Ok(with_etag(changed.item))
}

/// Removes the store's value: the environment or the default applies again (platform_admin).
#[utoipa::path(delete, path = "/admin/config/{key}", tag = "settings",
    params(("key" = String, Path, description = "the setting's key, or namespace:KEY", example = "LOG_LEVEL"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#, description = "the ETag from GET: apply only at that version"), ResetQuery),
    responses(
        (status = 200, description = "the item", body = ConfigItem),
        (status = 400, description = "a malformed If-Match or query", body = ErrorBody),
        (status = 403, description = "a locked key or an insufficient role", body = ErrorBody),
        (status = 404, description = "unknown key", body = ErrorBody),
        (status = 409, description = "compare-and-set conflict", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(key): ApiPath<String>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ResetQuery>,
) -> Result<Response, ApiError> {
    let key = settings::qualified_key(state.ledger.catalog(), query.namespace.as_deref(), &key)?;
    let expected = if_match(&headers)?;
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let changed = settings::change(&state.ledger, &key, Change::Reset, expected, caller.context(query.reason)).await?;
    log_change("reset", &key, &caller, &changed);
    Ok(with_etag(changed.item))
}

/// The item with its `ETag`.
fn with_etag(item: ConfigItem) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", item.version)).ok();
    // One buffer that fits a typical item: `Json` starts at 128 bytes and grows it several times.
    let mut body = Vec::with_capacity(512);
    let mut response = match serde_json::to_writer(&mut body, &item) {
        Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(_) => Json(item).into_response(),
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// One log line per accepted write: what, who, at which seq. Never the value.
fn log_change(action: &str, key: &str, caller: &Caller, changed: &Changed) {
    match changed.seq {
        Some(seq) => {
            tracing::info!(action, key, actor = %caller.name, role = %caller.role, seq, "setting changed")
        }
        None => tracing::debug!(action, key, actor = %caller.name, "setting unchanged"),
    }
}

/// The version an `If-Match` header names: `"12"`, `W/"12"` or `12`; `*` (any version) checks nothing.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw.to_str().map_err(|_| ApiError::bad_request("If-Match is not text"))?.trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("If-Match expects an ETag such as \"12\" from GET; got {text}")))
}

/// The store as of `as_of` (the live state when none), for the registry's reads.
pub(crate) async fn snapshot_as_of(
    state: &AppState,
    as_of: Option<String>,
) -> Result<std::sync::Arc<crate::live::Snapshot>, ApiError> {
    Ok(settings::snapshot_as_of(&state.ledger, as_of.as_deref()).await?.0)
}
