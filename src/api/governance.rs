//! Change requests and the change policy: `/admin/requests` and `/admin/policy`.

use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath, ApiQuery, Caller, MaybeJson};
use super::AppState;
use crate::model::{ErrorBody, PolicyView, ProposeRequest, RequestList, RequestListQuery, RequestView, ReviewRequest};
use crate::usecase::governance::{self, Review};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// Every change request, newest first (any reading role).
#[utoipa::path(get, path = "/admin/requests", tag = "governance", params(RequestListQuery),
    responses(
        (status = 200, description = "the requests", body = RequestList),
        (status = 400, description = "an unknown status", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(query): ApiQuery<RequestListQuery>,
) -> Result<Json<RequestList>, ApiError> {
    Ok(Json(governance::list(&state.ledger, query.status.as_deref())?))
}

/// Proposes a change request (platform_admin); the reason is required. Applied at once when the policy asks
/// no approval and no apply time is given.
#[utoipa::path(post, path = "/admin/requests", tag = "governance", request_body = ProposeRequest,
    responses(
        (status = 201, description = "the request (applied already when it needed no approval)", body = RequestView),
        (status = 400, description = "a malformed body, no reason, an unknown kind or a bad apply time", body = ErrorBody),
        (status = 403, description = "a locked key, or an insufficient role", body = ErrorBody),
        (status = 404, description = "an unknown key or entity", body = ErrorBody),
        (status = 409, description = "nothing to change, or an entity that exists already", body = ErrorBody),
        (status = 422, description = "a change that does not validate against the current state", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn propose(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<ProposeRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let reason = body.reason.clone();
    let view = governance::propose(&state.ledger, body, caller.context(reason)).await?;
    tracing::info!(target: "cfgledger::governance", id = view.id, actor = %caller.name, status = %view.status, "change request proposed");
    Ok((StatusCode::CREATED, Json(view)))
}

/// One change request, with whether its base changed (any reading role).
#[utoipa::path(get, path = "/admin/requests/{id}", tag = "governance",
    params(("id" = u64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 400, description = "an id that is not a number", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(governance::get(&state.ledger, id)?))
}

/// The author's new version of a request (platform_admin): based again on the current state; its approvals
/// are withdrawn.
#[utoipa::path(put, path = "/admin/requests/{id}", tag = "governance", request_body = ProposeRequest,
    params(("id" = u64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 400, description = "a malformed body or apply time", body = ErrorBody),
        (status = 403, description = "not its author, a locked key, or an insufficient role", body = ErrorBody),
        (status = 404, description = "no such request, key or entity", body = ErrorBody),
        (status = 409, description = "a request that is closed, or nothing to change", body = ErrorBody),
        (status = 422, description = "a change that does not validate", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<u64>,
    ApiJson(body): ApiJson<ProposeRequest>,
) -> Result<Json<RequestView>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let reason = body.reason.clone();
    Ok(Json(governance::edit(&state.ledger, id, body, caller.context(reason)).await?))
}

async fn review(
    state: AppState,
    caller: Caller,
    id: u64,
    review: Review,
    body: ReviewRequest,
) -> Result<Json<RequestView>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let view = governance::review(&state.ledger, id, review, body, caller.context(None)).await?;
    tracing::info!(target: "cfgledger::governance", id, actor = %caller.name, status = %view.status, action = ?review, "change request reviewed");
    Ok(Json(view))
}

/// Approves a request (platform_admin, not its author, once each); the last approval needed applies it
/// unless it waits for its apply time.
#[utoipa::path(post, path = "/admin/requests/{id}/approve", tag = "governance", request_body(content = Option<ReviewRequest>),
    params(("id" = u64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request, applied when this was the last approval needed", body = RequestView),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 403, description = "its author, a user who may not approve, or an insufficient role", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "approved by this user already, closed, or stale and no longer valid", body = ErrorBody),
        (status = 422, description = "its changes no longer validate", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<u64>,
    MaybeJson(body): MaybeJson<ReviewRequest>,
) -> Result<Json<RequestView>, ApiError> {
    review(state, caller, id, Review::Approve, body).await
}

/// Rejects a request (platform_admin, not its author).
#[utoipa::path(post, path = "/admin/requests/{id}/reject", tag = "governance", request_body(content = Option<ReviewRequest>),
    params(("id" = u64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 403, description = "its author, or an insufficient role", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "closed already", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn reject(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<u64>,
    MaybeJson(body): MaybeJson<ReviewRequest>,
) -> Result<Json<RequestView>, ApiError> {
    review(state, caller, id, Review::Reject, body).await
}

/// Withdraws a request (its author).
#[utoipa::path(post, path = "/admin/requests/{id}/withdraw", tag = "governance", request_body(content = Option<ReviewRequest>),
    params(("id" = u64, Path, description = "the request's id")),
    responses(
        (status = 200, description = "the request", body = RequestView),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 403, description = "not its author, or an insufficient role", body = ErrorBody),
        (status = 404, description = "no such request", body = ErrorBody),
        (status = 409, description = "closed already", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn withdraw(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<u64>,
    MaybeJson(body): MaybeJson<ReviewRequest>,
) -> Result<Json<RequestView>, ApiError> {
    review(state, caller, id, Review::Withdraw, body).await
}

/// The change policy (any reading role); it changes only through an approved change request.
#[utoipa::path(get, path = "/admin/policy", tag = "governance",
    responses((status = 200, description = "the policy", body = PolicyView)))]
pub async fn policy(State(state): State<AppState>, _caller: Caller) -> Json<PolicyView> {
    Json(governance::policy(&state.ledger))
}
