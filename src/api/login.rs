//! `POST /auth/login {"username", "password"}`: checks the password against the user's argon2id hash (kept
//! sealed in the log) and answers `{"token", "expires_at", "role"}`, a token valid for `TOKEN_EXPIRY`.
//! Unknown users and wrong passwords get the same 401 after the same work. Attempts are limited per client
//! address and user name (10 a minute) and per address (60 a minute), and password checks run at most one
//! per core at a time, so logins cannot exhaust the server's memory or CPU.

use super::extract::{ApiJson, ClientAddr};
use super::{ApiError, AppState};
use crate::auth;
use crate::model::{ErrorBody, LoginRequest, LoginResponse};
use axum::extract::State;
use axum::Json;
use zeroize::Zeroizing;

/// Login attempts allowed per minute for one user name from one client address, and from one address in all.
const PER_USER_AND_CLIENT: u32 = 10;
pub const PER_CLIENT: u32 = 60;

/// Exchanges a user name and password for a bearer token valid for `TOKEN_EXPIRY`.
#[utoipa::path(post, path = "/auth/login", tag = "operations", security(()), request_body = LoginRequest,
    responses(
        (status = 200, description = "a token", body = LoginResponse),
        (status = 400, description = "a malformed body", body = ErrorBody),
        (status = 401, description = "an invalid user name or password", body = ErrorBody),
        (status = 429, description = "too many attempts from this address or for this user (Retry-After)", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    authenticate(&state, client, body).await.map(Json)
}

/// Checks a user name and password (within the login limits) and issues a token: `POST /auth/login` and
/// the web UI's login form.
pub async fn authenticate(
    state: &AppState,
    client: Option<String>,
    body: LoginRequest,
) -> Result<LoginResponse, ApiError> {
    let refused = || ApiError::unauthorized("invalid username or password");
    // A name no user can have is refused before any hashing (and before it can fill the limiter's table).
    if !auth::plausible_user_name(&body.username) {
        return Err(refused());
    }
    let client = client.unwrap_or_else(|| "-".to_string());
    let settings = state.ledger.settings();
    state.login_limits.per_client.check(&client, &settings)?;
    state.login_limits.per_user.check(&format!("{client} {}", body.username), &settings)?;
    // Each check costs ~19 MiB and tens of milliseconds of CPU: at most one per core at a time.
    let Ok(permit) = state.login_limits.slots.clone().try_acquire_owned() else {
        let mut e =
            ApiError::new(crate::error::ErrorCode::RateLimited, "too many logins in progress; retry in a second");
        e.retry_after = Some(1);
        return Err(e);
    };
    let user = state.ledger.snapshot().state.user(&body.username).cloned();
    let hash = user.as_ref().and_then(|u| {
        let sealed = &u.password_hash;
        let name = cfgledger_events::decide::user_secret_name(&body.username);
        match cfgledger_events::Sealer::open(state.ledger.secret_box(), &name, sealed) {
            Ok(bytes) => String::from_utf8(bytes).ok(),
            Err(e) => {
                // Answered as an unknown user (the same 401 after the same work), but never silently.
                tracing::error!(user = ?body.username, error = %e, "a stored password hash does not open: integrity failure");
                None
            }
        }
    });
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| auth::decoy_hash().to_string());
    let password = Zeroizing::new(body.password);
    let matches = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth::verify_password(&hash, &password)
    })
    .await
    .map_err(|_| ApiError::from(crate::error::Error::Closed))?;
    // The credential version the password was checked against: a change since refuses this token too.
    let ver = user.as_ref().map_or(0, |u| u.credentials_seq);
    let role = match (user, known && matches) {
        (Some(u), true) => u.role.parse::<auth::Role>().map_err(|_| refused())?,
        _ => {
            tracing::info!(user = ?body.username, "login refused");
            return Err(refused());
        }
    };
    let now = auth::unix_seconds(state.ledger.now());
    let token = state
        .key_ring()?
        .signing()
        .issue_versioned(&body.username, role, ver, now, state.auth.token_ttl_secs)
        .map_err(|e| ApiError::from(crate::error::Error::internal("cannot sign the token", e)))?;
    let expires_at = cfgledger_events::Timestamp::from_micros(
        i64::try_from(now.saturating_add(state.auth.token_ttl_secs)).unwrap_or(i64::MAX).saturating_mul(1_000_000),
    );
    tracing::info!(user = ?body.username, role = %role, "login");
    Ok(LoginResponse { token, role: role.as_str().to_string(), expires_at: expires_at.to_string() })
}

/// The limits on `POST /auth/login`.
pub struct LoginLimits {
    pub per_user: super::WriteLimiter,
    pub per_client: super::WriteLimiter,
    /// Password checks running at once.
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        LoginLimits {
            per_user: super::WriteLimiter::fixed(PER_USER_AND_CLIENT, "login attempts for this user"),
            per_client: super::WriteLimiter::fixed(PER_CLIENT, "login attempts from this address"),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }
}
