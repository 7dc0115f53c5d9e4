//! `POST /auth/login {"username", "password"}`: checks the password against the user's argon2id hash and
//! answers `{"token", "expires_at", "role"}`, a token valid for `TOKEN_EXPIRY`. Unknown users and wrong
//! passwords get the same 401 after the same work, and attempts per client address and user name are rate limited.

use super::extract::{ApiJson, ClientAddr};
use super::{ApiError, AppState};
use crate::auth;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    // Attempts are counted per client address and user name, apart from writes, so that neither a token
    // subject nor another client can use up a user's attempts.
    let client = client.unwrap_or_else(|| "-".to_string());
    state.login_limiter.check(&format!("{client} {}", body.username), &state.ledger.settings())?;
    let user = state.ledger.snapshot().state.user(&body.username).cloned();
    let hash = user.as_ref().map_or_else(|| auth::decoy_hash().to_string(), |u| u.password_hash.clone());
    let password = Zeroizing::new(body.password);
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
        .await
        .map_err(|_| ApiError::from(crate::error::Error::Closed))?;
    let role = match (user, matches) {
        (Some(u), true) => {
            u.role.parse::<auth::Role>().map_err(|_| ApiError::unauthorized("invalid username or password"))?
        }
        _ => {
            tracing::info!(user = %body.username, "login refused");
            return Err(ApiError::unauthorized("invalid username or password"));
        }
    };
    let now = auth::unix_now();
    let token = state
        .auth
        .keys
        .issue(&body.username, role, now, state.auth.token_ttl_secs)
        .map_err(|e| ApiError::from(crate::error::Error::Io(e.to_string())))?;
    let expires_at = cfgledger_events::Timestamp::from_micros(
        i64::try_from(now.saturating_add(state.auth.token_ttl_secs)).unwrap_or(i64::MAX).saturating_mul(1_000_000),
    );
    tracing::info!(user = %body.username, role = %role, "login");
    Ok(Json(json!({"token": token, "role": role.as_str(), "expires_at": expires_at.to_string()})))
}
