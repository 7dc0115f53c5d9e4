//! Who may use the admin API: users (added with an argon2id password hash, sealed in the log; their
//! password or role changed; listed; removed) and bearer tokens, signed by the store's key ring: its
//! effective `JWT_SECRET_KEY` until the first rotation, then the newest key a rotation recorded in the log.

use crate::auth::{self, KeyRing, Role, TokenKeys};
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
    let hash = password_hash(password).await?;
    let cmd = Command::AddUser { name: name.to_string(), role: role.as_str().to_string(), password_hash: hash };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq))
}

/// Hashes a password off the async workers, after checking its length.
async fn password_hash(password: Zeroizing<String>) -> Result<String, Error> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::input(format!(
            "the password (read from standard input) must have at least {MIN_PASSWORD} characters"
        )));
    }
    super::blocking(move || auth::hash_password(&password).map_err(|e| Error::internal("cannot hash the password", e)))
        .await
}

/// Sets a user's password; returns the seq of the event. Every token issued to the user before is refused
/// from then on, on every instance that has applied the event.
pub async fn change_password(
    ledger: &Ledger,
    name: &str,
    password: Zeroizing<String>,
    ctx: WriteContext,
) -> Result<u64, Error> {
    let password_hash = password_hash(password).await?;
    let outcome = ledger.execute_async(Command::ChangePassword { name: name.to_string(), password_hash }, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq))
}

/// Sets a user's role; returns the seq of the event, or `None` when it already had that role. Every token
/// issued to the user before (carrying the old role) is refused from then on.
pub async fn change_role(ledger: &Ledger, name: &str, role: Role, ctx: WriteContext) -> Result<Option<u64>, Error> {
    let cmd = Command::ChangeRole { name: name.to_string(), role: role.as_str().to_string() };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last))
}

/// Removes a user; returns the seq of the event. Every token issued to the user is refused from then on.
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

/// The store's key ring: `base` (the effective `JWT_SECRET_KEY`, see [`token_keys`]) and every key the
/// log's rotations recorded, opened with the store's encryption key, each with its retirement.
pub fn key_ring(ledger: &Ledger, base: &TokenKeys) -> Result<KeyRing, Error> {
    let snap = ledger.snapshot();
    let keys = snap.state.signing_keys();
    let mut ring = KeyRing::new(base.clone(), keys.base_retires_at.map(|t| t.as_micros()));
    for key in &keys.rotated {
        let name = cfgledger_events::decide::signing_key_secret_name(&key.kid);
        let secret = cfgledger_events::Sealer::open(ledger.secret_box(), &name, &key.sealed_key)
            .map(Zeroizing::new)
            .map_err(|e| {
                Error::Integrity(format!(
                    "signing key {} (seq {}) does not open with this store's key: {e}",
                    key.kid, key.seq
                ))
            })?;
        ring.add(base.sibling(&secret), key.retires_at.map(|t| t.as_micros()), key.seq);
    }
    Ok(ring)
}

/// A token for `sub` with `role`, valid for `ttl_secs` from now, signed by the ring's newest key. When `sub`
/// is a user, the token carries its credential version and must carry its role.
pub fn issue_token(ledger: &Ledger, sub: &str, role: Role, ttl_secs: u64) -> Result<String, Error> {
    if sub.trim().is_empty() {
        return Err(Error::input("--sub expects a name; got an empty one"));
    }
    let ring = key_ring(ledger, &token_keys(ledger)?)?;
    let snap = ledger.snapshot();
    if let Some(user) = snap.state.user(sub) {
        if user.role != role.as_str() {
            return Err(Error::input(format!(
                "--role {role} is not the role of user {sub} ({}); a token for a user carries the user's role",
                user.role
            )));
        }
    }
    let ver = auth::credential_version(&snap.state, sub);
    ring.signing()
        .issue_versioned(sub, role, ver, auth::unix_seconds(ledger.now()), ttl_secs)
        .map_err(|e| Error::internal("cannot sign the token", e))
}

/// Ends `token` (which expires at `expires_at`, Unix seconds) before it expires, for every instance: the log
/// records the blake3 hash of the token, never the token. Returns the seq of the event, or `None` when it was
/// ended already.
pub async fn revoke_token(
    ledger: &Ledger,
    token: &str,
    expires_at: u64,
    ctx: WriteContext,
) -> Result<Option<u64>, Error> {
    let token_hash = blake3::hash(token.as_bytes()).to_hex().to_string();
    let outcome = ledger.execute_async(Command::RevokeToken { token_hash, expires_at }, ctx).await?;
    Ok(outcome.seqs.map(|(_, last)| last))
}

/// What a key rotation recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub seq: u64,
    /// The new signing key's id (the `kid` of the tokens it signs).
    pub kid: String,
    /// How long the earlier keys still verify after the rotation.
    pub grace_secs: u64,
}

/// Rotates the token signing key: a new random key, sealed in the log (`SigningKeyRotated`), signs from
/// then on on every instance that applies the event; every earlier key verifies the tokens it signed for
/// `grace_secs` more, then none. A reason is required: a rotation ends sessions and is audited.
pub async fn rotate_signing_key(ledger: &Ledger, grace_secs: u64, ctx: WriteContext) -> Result<Rotation, Error> {
    if ctx.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::input("a key rotation needs a reason (--reason TEXT): it is audited"));
    }
    // The ring must open before anything is written: a rotation on a store whose keys do not open would
    // leave a ring no instance can use.
    key_ring(ledger, &token_keys(ledger)?)?;
    let key = crate::crypto::random_secret();
    let cmd = Command::RotateSigningKey { key: key.to_string(), grace_secs };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    let kid = outcome.find(|event| match event {
        cfgledger_events::Event::SigningKeyRotated(e) => Some(e.kid.clone()),
        _ => None,
    });
    match (kid, outcome.seqs) {
        (Some(kid), Some((_, seq))) => Ok(Rotation { seq, kid, grace_secs }),
        _ => Err(Error::invalid("the rotation recorded no key")),
    }
}
