//! The registry's export and import over HTTP, thin callers of `crate::usecase::registry`: `GET /export` (filters:
//! `types`, `exclude_types`, `tags`, `include_inactive`, `include_dependencies`; `format=mcpgateway` for MCP
//! Gateway's own layout) and `POST /export/selective` (`{"tools": [names], ...}`) for auditors; `POST /import`
//! (platform_admin; `dry_run` gives the exact plan) and `GET /import/status[/{id}]` (auditor). The use cases
//! run on blocking threads: re-sealing credentials, Argon2id for a foreign key, the writer's acknowledgement
//! and log reads stay off the async workers.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Auditor};
use super::{ApiError, AppState};
use crate::error::{Error, ErrorCode};
use crate::model::{
    ExportAnswer, ExportDocument, ExportQuery, ImportBody, ImportReport, ImportStatus, ImportStatuses, Selection,
    SelectiveQuery,
};
use crate::usecase::registry::export::{self, ExportRequest, Filter};
use crate::usecase::registry::import::{self, ImportInput};
use axum::extract::State;
use axum::Json;

use crate::usecase::blocking;

/// The registry's portable export (auditor).
#[utoipa::path(
    get,
    path = "/export",
    tag = "registry",
    params(ExportQuery),
    responses(
        (status = 200, description = "the export document, in cfgledger's layout or MCP Gateway's", body = ExportAnswer),
        (status = 400, description = "a query that does not parse: an unknown kind, parameter or format", body = crate::model::ErrorBody),
        (status = 403, description = "insufficient role (auditor needed)", body = crate::model::ErrorBody),
        (status = 500, description = "a credential that does not open under this store's key", body = crate::model::ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportAnswer>, ApiError> {
    let request = ExportRequest::from_query(&query)?;
    let ledger = state.ledger.clone();
    let answer = blocking(move || export::export(&ledger, &request, &caller.name, ledger.now())).await?;
    Ok(Json(answer))
}

/// Exactly the named entities, and with `include_dependencies` what they reference (auditor).
#[utoipa::path(
    post,
    path = "/export/selective",
    tag = "registry",
    params(SelectiveQuery),
    request_body(content = Selection, description = "names by kind: {\"tools\": [\"a\"], \"servers\": [\"s\"]}"),
    responses(
        (status = 200, description = "the export document", body = ExportDocument),
        (status = 400, description = "a malformed selection or query, or an unknown kind", body = crate::model::ErrorBody),
        (status = 403, description = "insufficient role (auditor needed)", body = crate::model::ErrorBody),
        (status = 404, description = "a named entity does not exist", body = crate::model::ErrorBody),
        (status = 413, description = "the body exceeds REQUEST_SIZE_LIMIT", body = crate::model::ErrorBody),
    )
)]
pub async fn selective(
    State(state): State<AppState>,
    Auditor(caller): Auditor,
    ApiQuery(query): ApiQuery<SelectiveQuery>,
    ApiJson(selection): ApiJson<Selection>,
) -> Result<Json<ExportDocument>, ApiError> {
    let filter = Filter::selection(&selection, query.include_dependencies.unwrap_or(true))?;
    let ledger = state.ledger.clone();
    let doc = blocking(move || export::document(&ledger, &filter, &caller.name, ledger.now())).await?;
    Ok(Json(doc))
}

/// The registry's (and settings') import, one atomic batch; `dry_run` gives the exact plan (platform_admin).
#[utoipa::path(
    post,
    path = "/import",
    tag = "registry",
    request_body = ImportBody,
    responses(
        (status = 200, description = "the plan, and for an apply the import id, status and result", body = ImportReport),
        (status = 400, description = "a malformed body, strategy or selection", body = crate::model::ErrorBody),
        (status = 403, description = "insufficient role (platform_admin needed)", body = crate::model::ErrorBody),
        (status = 409, description = "conflicts under the fail strategy (details.plan says which): nothing applied", body = crate::model::ErrorBody),
        (status = 413, description = "the body exceeds REQUEST_SIZE_LIMIT", body = crate::model::ErrorBody),
        (status = 422, description = "an invalid entity, an unresolved reference, credentials that do not open or a damaged file: nothing applied", body = crate::model::ErrorBody),
        (status = 429, description = "the caller's write rate limit is reached (Retry-After)", body = crate::model::ErrorBody),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<ImportReport>, ApiError> {
    let reason = body.reason.clone();
    let input = ImportInput::from_body(body, "POST /import")?;
    if !input.dry_run {
        state.limiter.check(&caller.name, &state.ledger.settings())?;
    }
    let ledger = state.ledger.clone();
    let ctx = caller.context(reason);
    let answer = tokio::task::spawn_blocking(move || import::import(&ledger, input, ctx))
        .await
        .map_err(|_| ApiError::from(Error::Closed))?;
    answer.map(Json).map_err(|refusal| {
        let error = ApiError::from(refusal.error);
        match refusal.plan {
            Some(plan) => error.with_details(PlanDetails { plan: *plan }),
            None => error,
        }
    })
}

/// The details of an import refused at apply time.
#[derive(serde::Serialize)]
struct PlanDetails {
    plan: ImportReport,
}

/// Recent imports, from the log: they survive restarts (auditor).
#[utoipa::path(
    get,
    path = "/import/status",
    tag = "registry",
    responses(
        (status = 200, description = "the 50 newest imports, newest first", body = ImportStatuses),
        (status = 403, description = "insufficient role (auditor needed)", body = crate::model::ErrorBody),
    )
)]
pub async fn statuses(
    State(state): State<AppState>,
    Auditor(_caller): Auditor,
) -> Result<Json<ImportStatuses>, ApiError> {
    let ledger = state.ledger.clone();
    let imports = blocking(move || import::statuses(&ledger, None, 50)).await?;
    Ok(Json(ImportStatuses { imports }))
}

/// One import, by its batch id (auditor).
#[utoipa::path(
    get,
    path = "/import/status/{id}",
    tag = "registry",
    params(("id" = String, Path, description = "the import's batch id")),
    responses(
        (status = 200, description = "the import", body = ImportStatus),
        (status = 400, description = "an id that is not valid UTF-8", body = crate::model::ErrorBody),
        (status = 403, description = "insufficient role (auditor needed)", body = crate::model::ErrorBody),
        (status = 404, description = "no such import in the log", body = crate::model::ErrorBody),
    )
)]
pub async fn status(
    State(state): State<AppState>,
    Auditor(_caller): Auditor,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ImportStatus>, ApiError> {
    let ledger = state.ledger.clone();
    let wanted = id.clone();
    let mut found = blocking(move || import::statuses(&ledger, Some(&wanted), 1)).await?;
    found.pop().map(Json).ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no import {id} in the log")))
}
