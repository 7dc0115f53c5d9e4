//! `/admin/rollouts...`: gradual rollouts by instance label. Start (platform_admin), list and status with
//! every live agent and client of the namespace (viewer), advance and roll back by hand (platform_admin).
//! Thin callers of `usecase::rollout`; the timed transitions are `serve`'s driver's
//! ([`crate::rollout_driver`]).

use super::extract::{Admin, ApiJson, ApiPath, Caller};
use super::{ApiError, AppState};
use crate::model::{ErrorBody, RolloutActionBody, RolloutList, RolloutOutcome, RolloutView, StartRolloutBody};
use crate::usecase::rollout;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// Starts a rollout (platform_admin): its values reach the selector's instances first, then the
/// percentage steps, each after a bake.
#[utoipa::path(post, path = "/admin/rollouts", tag = "rollouts", request_body = StartRolloutBody,
    responses(
        (status = 201, description = "the rollout, started", body = RolloutOutcome),
        (status = 400, description = "a malformed body, a change without exactly one of value and text, or an unknown namespace", body = ErrorBody),
        (status = 403, description = "a locked key, or an insufficient role", body = ErrorBody),
        (status = 404, description = "an unknown key", body = ErrorBody),
        (status = 409, description = "the id is taken, or a key is already rolling out in another rollout", body = ErrorBody),
        (status = 422, description = "a value its key does not accept, steps that do not climb to 100, a bad id, selector, check URL or bake", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<StartRolloutBody>,
) -> Result<(StatusCode, Json<RolloutOutcome>), ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let ctx = caller.context(body.reason.clone());
    Ok((StatusCode::CREATED, Json(rollout::start(&state.ledger, body, ctx).await?)))
}

/// Every rollout, newest first (viewer).
#[utoipa::path(get, path = "/admin/rollouts", tag = "rollouts",
    responses((status = 200, description = "the rollouts", body = RolloutList)))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<RolloutList>, ApiError> {
    Ok(Json(rollout::list(&state.ledger)))
}

/// One rollout: its stages so far, and each live agent and client of its namespace with whether it is
/// meant to run the new values and whether it has applied them (viewer).
#[utoipa::path(get, path = "/admin/rollouts/{id}", tag = "rollouts",
    params(("id" = String, Path, description = "the rollout's id")),
    responses(
        (status = 200, description = "the rollout and its instances", body = RolloutView),
        (status = 404, description = "no such rollout", body = ErrorBody),
    ))]
pub async fn status(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RolloutView>, ApiError> {
    Ok(Json(rollout::status(&state.ledger, &id).await?))
}

/// Moves a rollout to its next stage now, without waiting for the bake, or completes it from its last
/// stage, merging its values (platform_admin).
#[utoipa::path(post, path = "/admin/rollouts/{id}/advance", tag = "rollouts", request_body = RolloutActionBody,
    params(("id" = String, Path, description = "the rollout's id")),
    responses(
        (status = 200, description = "the rollout after the advance", body = RolloutOutcome),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 403, description = "an insufficient role, or a merge into a key locked since the start", body = ErrorBody),
        (status = 404, description = "no such rollout", body = ErrorBody),
        (status = 409, description = "the rollout has ended", body = ErrorBody),
        (status = 422, description = "a merge its key no longer accepts", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn advance(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RolloutActionBody>,
) -> Result<Json<RolloutOutcome>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    Ok(Json(rollout::advance(&state.ledger, &id, caller.context(body.reason)).await?))
}

/// Rolls a rollout back (aborts it): every instance returns to the main values (platform_admin).
#[utoipa::path(post, path = "/admin/rollouts/{id}/rollback", tag = "rollouts", request_body = RolloutActionBody,
    params(("id" = String, Path, description = "the rollout's id")),
    responses(
        (status = 200, description = "the rollout, rolled back", body = RolloutOutcome),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 403, description = "an insufficient role", body = ErrorBody),
        (status = 404, description = "no such rollout", body = ErrorBody),
        (status = 409, description = "the rollout has ended", body = ErrorBody),
        (status = 429, description = "more writes than CONFIG_WRITE_RATE_LIMIT allows (Retry-After)", body = ErrorBody),
    ))]
pub async fn rollback(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RolloutActionBody>,
) -> Result<Json<RolloutOutcome>, ApiError> {
    state.limiter.check(&caller.name, &state.ledger.settings())?;
    let ctx = caller.context(body.reason.clone());
    Ok(Json(rollout::roll_back(&state.ledger, &id, body, ctx).await?))
}
