//! The time-travel endpoints over settings and entities: a key's history (`GET /admin/config/{key}/history`;
//! an entity's is under its own path), the difference between two points (`GET /admin/config/diff`),
//! rollback to a point (`POST /admin/config/rollback`), the undoing of one batch (`POST
//! /admin/config/revert`), and the verification of the chain and its checkpoints (`GET /admin/verify`).
//! Each handler checks the role, hands the typed request to its use case in `timetravel` on a blocking
//! worker, and answers the typed report.

use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Auditor, Caller};
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::error::Error;
use crate::model::{AuditPage, Diff, DiffQuery, ErrorBody, RevertBody, RollbackBody, RollbackReport, VerifyReport};
use crate::usecase::timetravel::{self, Via};
use axum::extract::State;
use axum::Json;

pub use crate::model::PageQuery;

/// A read (or a write that waits for the writer) on a blocking worker, off the async ones. A point, filter
/// or cursor that does not parse is the caller's `Error::Input`, which answers 400 by itself.
pub(crate) async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(crate::usecase::blocking(f).await?)
}

/// Every value the key has had, newest first.
#[utoipa::path(
    get,
    path = "/admin/config/{key}/history",
    tag = "time travel",
    summary = "Every value the key has had, newest first, with who, when, why and the batch (auditor)",
    params(("key" = String, Path, description = "a setting key", example = "LOG_LEVEL"), PageQuery),
    responses(
        (status = 200, description = "one page of entries", body = AuditPage),
        (status = 400, description = "a cursor or limit that does not parse", body = ErrorBody),
        (status = 403, description = "insufficient role", body = ErrorBody),
        (status = 404, description = "unknown key", body = ErrorBody),
    )
)]
pub async fn setting_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Role::Auditor)?;
    let ledger = state.ledger.clone();
    Ok(Json(read(move || timetravel::history(&ledger, &key, &query)).await?))
}

/// The history of a subject (a key, or `KIND/NAME`), for the registry's history routes.
pub async fn page(state: AppState, subject: String, query: PageQuery) -> Result<Json<AuditPage>, ApiError> {
    let ledger = state.ledger.clone();
    Ok(Json(read(move || timetravel::history(&ledger, &subject, &query)).await?))
}

/// `GET /admin/config/diff?from=&to=` (`to` defaults to now).
#[utoipa::path(
    get,
    path = "/admin/config/diff",
    tag = "time travel",
    summary = "What changed between two points: added, removed and changed keys and entities, masked (auditor)",
    params(DiffQuery),
    responses(
        (status = 200, description = "the difference", body = Diff),
        (status = 400, description = "no from, or a point that does not parse or is not in the log", body = ErrorBody),
        (status = 403, description = "insufficient role", body = ErrorBody),
    )
)]
pub async fn diff(
    State(state): State<AppState>,
    Auditor(_caller): Auditor,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<Diff>, ApiError> {
    let Some(from) = query.from else {
        return Err(ApiError::bad_request("diff needs from (an RFC 3339 time, a duration such as 24h, or seq:N)"));
    };
    let ledger = state.ledger.clone();
    let (to, namespace) = (query.to, query.namespace);
    Ok(Json(read(move || timetravel::diff(&ledger, &from, to.as_deref(), namespace.as_deref())).await?))
}

/// `POST /admin/config/rollback`: the plan (dry run) or one batch of compensating events.
#[utoipa::path(
    post,
    path = "/admin/config/rollback",
    tag = "time travel",
    summary = "Return settings and entities to a point as one batch of compensating events; dry_run gives the plan (platform_admin)",
    request_body = RollbackBody,
    responses(
        (status = 200, description = "the plan, and the batch when applied", body = RollbackReport),
        (status = 400, description = "a malformed body, or a point that does not parse", body = ErrorBody),
        (status = 404, description = "a key named in keys exists at neither point", body = ErrorBody),
        (status = 409, description = "the head moved since the plan, or the rollback would break a reference", body = ErrorBody),
        (status = 422, description = "a value the catalog no longer accepts", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<RollbackReport>, ApiError> {
    if !body.dry_run {
        state.limiter.check(&caller.name, &state.ledger.settings())?;
    }
    let (ledger, via, ctx) = (state.ledger.clone(), via(&caller), caller.context(body.reason.clone()));
    Ok(Json(read(move || timetravel::rollback(&ledger, &body, &via, ctx)).await?))
}

/// `POST /admin/config/revert`: undoes one batch; 409 naming the keys a later change touched, unless forced.
#[utoipa::path(
    post,
    path = "/admin/config/revert",
    tag = "time travel",
    summary = "Undo one batch, named by its id or by 4 or more of its first or last hex digits that name one batch; 409 naming later changes to the same keys unless force (platform_admin)",
    request_body = RevertBody,
    responses(
        (status = 200, description = "the plan, and the batch when applied", body = RollbackReport),
        (status = 400, description = "a malformed body, or a part of a batch id that is too short or ambiguous (the candidates named)", body = ErrorBody),
        (status = 404, description = "no such batch", body = ErrorBody),
        (status = 409, description = "later changes touched the same keys, or the revert would break a reference", body = ErrorBody),
        (status = 422, description = "nothing revertible in the batch", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    )
)]
pub async fn revert(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<RevertBody>,
) -> Result<Json<RollbackReport>, ApiError> {
    if !body.dry_run {
        state.limiter.check(&caller.name, &state.ledger.settings())?;
    }
    let (ledger, via, ctx) = (state.ledger.clone(), via(&caller), caller.context(body.reason.clone()));
    Ok(Json(read(move || timetravel::revert(&ledger, &body, &via, ctx)).await?))
}

fn via(caller: &Caller) -> Via {
    Via::Api(format!("{} {}", caller.method, caller.path))
}

/// `GET /admin/verify` (auditor): the chain recomputed from the stored bytes, the checkpoints compared
/// with the replay, and the head hash.
#[utoipa::path(
    get,
    path = "/admin/verify",
    tag = "time travel",
    summary = "The hash chain recomputed and the checkpoints compared with the replay; the head hash (auditor)",
    responses(
        (status = 200, description = "status, head and checkpoints", body = VerifyReport),
        (status = 403, description = "insufficient role", body = ErrorBody),
        (status = 500, description = "the chain is broken (details name the seq)", body = ErrorBody),
    )
)]
pub async fn verify(State(state): State<AppState>, Auditor(_caller): Auditor) -> Result<Json<VerifyReport>, ApiError> {
    let ledger = state.ledger.clone();
    Ok(Json(read(move || timetravel::verify(&ledger)).await?))
}
