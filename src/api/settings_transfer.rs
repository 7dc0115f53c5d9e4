//! `GET /admin/config/export` (auditor) and `POST /admin/config/import` (platform admin, `?dry_run=true`
//! for the plan alone). Thin callers of `usecase::settings_transfer`. An import with any invalid entry is 422
//! with the plan in `details`, and appends nothing; otherwise it is one atomic batch, locked keys skipped
//! and reported.

use super::extract::{Admin, ApiJson, ApiQuery, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::model::{ErrorBody, ImportQuery, NamespaceQuery, SettingsExport, SettingsImportReport};
use crate::usecase::settings_transfer;
use axum::extract::State;
use axum::Json;
use serde_json::Value;

/// Every non-sensitive setting with metadata and a digest (auditor).
#[utoipa::path(get, path = "/admin/config/export", tag = "settings", params(NamespaceQuery),
    responses(
        (status = 200, description = "the export document", body = SettingsExport),
        (status = 400, description = "an unknown namespace or query field", body = ErrorBody),
        (status = 403, description = "an insufficient role", body = ErrorBody),
    ))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<NamespaceQuery>,
) -> Result<Json<SettingsExport>, ApiError> {
    caller.require(Role::Auditor)?;
    let doc = settings_transfer::export(&state.ledger, query.namespace.as_deref(), &caller.name, state.ledger.now())?;
    Ok(Json(doc))
}

/// Plans (`dry_run=true`) or applies an export document as one atomic batch (platform_admin).
#[utoipa::path(post, path = "/admin/config/import", tag = "settings", params(ImportQuery),
    request_body(content = SettingsExport, description = "a settings document; only `settings` is required"),
    responses(
        (status = 200, description = "the plan, and whether and how it was applied", body = SettingsImportReport),
        (status = 400, description = "a malformed body or query", body = ErrorBody),
        (status = 409, description = "the head moved past expected_head", body = ErrorBody),
        (status = 422, description = "an invalid entry or a damaged document: nothing applied; an invalid entry puts the plan in details", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(query): ApiQuery<ImportQuery>,
    ApiJson(doc): ApiJson<Value>,
) -> Result<Json<SettingsImportReport>, ApiError> {
    if !query.dry_run {
        state.limiter.check(&caller.name, &state.ledger.settings())?;
    }
    let via = format!("{} {}", caller.method, caller.path);
    let ctx = caller.context(query.reason.clone());
    Ok(Json(settings_transfer::import(&state.ledger, &doc, &query, ctx, &via).await?))
}
