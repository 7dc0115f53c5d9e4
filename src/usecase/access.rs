//! Who may use the admin API: users (added with an argon2id password hash, sealed in the log; listed;
//! removed) and bearer tokens signed with the store's effective `JWT_SECRET_KEY`.

use crate::auth::{self, Role, TokenKeys};
use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use cfgledger_events::{Command, Timestamp};
use zeroize::Zeroizing;

/// The shortest password a user may have.
pub const MIN_PASSWORD: usize = 8;

/// The signing key's setting.
pub const JWT_KEY: &str = crate::setting_keys::JWT_SECRET_KEY;

/// One user as `user list` shows it (never the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub role: String,
    pub added_at: Timestamp,
}

/// Adds a user. The password is hashed (argon2id: tens of milliseconds of CPU) off the async workers and
/// sealed in the log; returns the seq of the event.
pub async fn add_user(
    ledger: &Ledger,
    name: &str,
    role: Role,
    password: Zeroizing<String>,
    ctx: WriteContext,
) -> Result<u64, Error> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::input(format!(
            "the password (read from standard input) must have at least {MIN_PASSWORD} characters"
        )));
    }
    let hash = super::blocking(move || {
        auth::hash_password(&password).map_err(|e| Error::internal("cannot hash the password", e))
    })
    .await?;
    let cmd = Command::AddUser { name: name.to_string(), role: role.as_str().to_string(), password_hash: hash };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq))
}

/// Removes a user; returns the seq of the event. Tokens already issued stay valid until they expire.
pub async fn remove_user(ledger: &Ledger, name: &str, ctx: WriteContext) -> Result<u64, Error> {
    let outcome = ledger.execute_async(Command::RemoveUser { name: name.to_string() }, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq))
}

/// Every user, by name.
pub fn users(ledger: &Ledger) -> Vec<UserInfo> {
    let snap = ledger.snapshot();
    snap.state
        .users()
        .map(|(name, user)| UserInfo { name: name.clone(), role: user.role.clone(), added_at: user.added_at })
        .collect()
}

/// The token keys of the store: the effective `JWT_SECRET_KEY` (generated at the first `serve` when no one
/// set it) with `JWT_ALGORITHM`. Never generates a key.
pub fn token_keys(ledger: &Ledger) -> Result<TokenKeys, Error> {
    if let Some(e) = ledger.snapshot().view(JWT_KEY).and_then(|v| v.env_error.clone()) {
        return Err(Error::Secret(format!("CFGLEDGER_JWT_SECRET_KEY in the environment is not usable: {e}")));
    }
    let secret = ledger.reveal(JWT_KEY)?.ok_or_else(|| {
        Error::Secret(format!(
            "{JWT_KEY} has no value: set CFGLEDGER_JWT_SECRET_KEY (at least 32 characters) in the environment or .env, or start `cfgledger serve` once, which generates one"
        ))
    })?;
    let algorithm = crate::setting_keys::JWT_ALGORITHM.get(&ledger.settings());
    TokenKeys::new(secret.as_bytes(), &algorithm).map_err(|e| Error::Secret(e.to_string()))
}

/// A token for `sub` with `role`, valid for `ttl_secs` from now.
pub fn issue_token(ledger: &Ledger, sub: &str, role: Role, ttl_secs: u64) -> Result<String, Error> {
    if sub.trim().is_empty() {
        return Err(Error::input("--sub expects a name; got an empty one"));
    }
    let keys = token_keys(ledger)?;
    keys.issue(sub, role, auth::unix_seconds(ledger.now()), ttl_secs)
        .map_err(|e| Error::internal("cannot sign the token", e))
}
