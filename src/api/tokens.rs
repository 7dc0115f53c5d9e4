//! Whether a token stands, asked of the log rather than of this process: its key must be in the store's key
//! ring and not retired (`SigningKeyRotated`), its subject's credential version and role must be the ones it
//! was issued with (`auth::check_standing`), and it must not be logged out (`TokenRevoked`). Bearer tokens (`Caller`), web UI sessions
//! (`ui::session::check`) and open watch streams all ask here, so every instance of a fleet that has applied
//! the same log gives the same answer.

use super::{ApiError, AppState};
use crate::auth::{check_standing, AuthError, Claims, KeyRing, Presented};
use crate::error::ErrorCode;
use std::sync::Arc;

impl AppState {
    /// The key ring as of the last rotation this instance applied: cached, and rebuilt (opening the sealed
    /// keys) when the projection holds a newer rotation.
    pub fn key_ring(&self) -> Result<Arc<KeyRing>, ApiError> {
        let version = self.ledger.snapshot().state.signing_keys().version();
        if let Some(ring) = self.auth.ring.load_full().filter(|r| r.version == version) {
            return Ok(ring);
        }
        let ring = Arc::new(crate::usecase::access::key_ring(&self.ledger, &self.auth.keys)?);
        self.auth.ring.store(Some(ring.clone()));
        Ok(ring)
    }
}

/// The answer to a token that does not stand: 401, or 503 when this instance has not yet read the change
/// the token was issued after (another instance of the fleet is ahead).
pub fn refused(e: AuthError) -> ApiError {
    match e {
        AuthError::Ahead(_) => {
            let mut err = ApiError::new(ErrorCode::Unavailable, e.to_string());
            err.retry_after = Some(1);
            err
        }
        other => ApiError::unauthorized(other.to_string()),
    }
}

/// The claims of `token` if it stands now: signed by a key of the ring that is not retired, not expired,
/// its subject's credentials unchanged since it was issued, and not logged out.
pub fn authenticate(state: &AppState, token: &str) -> Result<Claims, ApiError> {
    presented(state, token).map(|p| p.claims)
}

/// [`authenticate`], keeping the token's blake3 hash with its claims, so that a request hashes its token once.
pub fn presented(state: &AppState, token: &str) -> Result<crate::auth::Presented, ApiError> {
    let ring = state.key_ring()?;
    let id = blake3::hash(token.as_bytes());
    let claims = ring.verify_known(token, &id, state.ledger.now()).map_err(refused)?;
    let snap = state.ledger.snapshot();
    check_standing(&claims, &snap.state).map_err(refused)?;
    // A logged-out session's token is refused however it is sent, on every instance.
    if state.auth.revoked.contains_id(&id) || snap.state.token_revoked(&id.to_hex()) {
        return Err(ApiError::unauthorized("this token's session was logged out; log in again"));
    }
    Ok(crate::auth::Presented { claims, id })
}

/// Why a token that stood when a stream opened no longer does, if it does not: what the stream's `end`
/// event says.
pub fn ended(state: &AppState, token: &Presented) -> Option<String> {
    let now = state.ledger.now();
    if token.claims.exp < crate::auth::unix_seconds(now) {
        return Some("the token expired".into());
    }
    match state.key_ring() {
        Ok(ring) if ring.retired(token.claims.kid.as_deref(), now) => {
            return Some("the token's signing key was retired by a key rotation".into())
        }
        Ok(_) => {}
        // The ring cannot be rebuilt (a key does not open): nothing can be told to stand.
        Err(e) => return Some(format!("the token cannot be checked: {}", e.message)),
    }
    let snap = state.ledger.snapshot();
    if snap.state.user(&token.claims.sub).is_none() && token.claims.ver != 0 {
        return Some("the user was removed".into());
    }
    if let Err(e) = check_standing(&token.claims, &snap.state) {
        return Some(e.to_string());
    }
    if state.auth.revoked.contains_id(&token.id) || snap.state.token_revoked(&token.id.to_hex()) {
        return Some("the session was logged out".into());
    }
    None
}

/// When a token held by a stream stops standing by time alone (its expiry, or its key's retirement), as
/// Unix microseconds.
pub fn deadline(state: &AppState, token: &Presented) -> i64 {
    let exp = i64::try_from(token.claims.exp).unwrap_or(i64::MAX).saturating_add(1).saturating_mul(1_000_000);
    let retires = state.key_ring().ok().and_then(|ring| ring.retires_at(token.claims.kid.as_deref()));
    retires.map_or(exp, |t| t.min(exp))
}
