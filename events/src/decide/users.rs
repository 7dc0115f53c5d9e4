//! The admin API's users and its token signing keys: adding a user (a valid name, a known role, an argon2id
//! hash, sealed before it reaches the log), changing its password or role, removing it, and rotating the
//! signing key (sealed too, named by a key id that is a one-way function of it).

use super::{Context, Rejection};
use crate::event::{
    Event, SigningKeyRotated, TokenRevoked, UserAdded, UserPasswordChanged, UserRemoved, UserRoleChanged,
};

/// The shortest signing key a rotation accepts (bytes), as for `JWT_SECRET_KEY`.
pub const MIN_SIGNING_KEY: usize = 32;

/// The id of a token signing key, as tokens name it in their `kid` header: 16 hex digits of a blake3 key
/// derivation, so it names the key without helping anyone find it.
pub fn signing_key_id(secret: &[u8]) -> String {
    let derived = blake3::derive_key("cfgledger 2026-12 JWT signing key id", secret);
    derived[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a rotated signing key is sealed under (the associated data of its ciphertext).
pub fn signing_key_secret_name(kid: &str) -> String {
    format!("jwt:{kid}:signing_key")
}

/// The name a user's sealed password hash is bound to (the associated data of its ciphertext).
pub fn user_secret_name(name: &str) -> String {
    format!("user:{name}:password_hash")
}

/// The roles of the admin API, from most to least powerful.
pub const ROLES: [&str; 4] = ["platform_admin", "auditor", "viewer", "config_reader"];

pub(super) fn add(
    cx: &Context<'_>,
    name: String,
    role: String,
    password_hash: String,
) -> Result<Vec<Event>, Rejection> {
    check_user_name(&name)?;
    check_role(&role)?;
    check_hash(&password_hash)?;
    if cx.state.has_user(&name) {
        return Err(Rejection::state(format!("user {name} already exists")));
    }
    // Sealed like a secret setting: a copy of the database does not hand out hashes to crack offline.
    let password_hash = cx
        .sealer
        .seal(&user_secret_name(&name), password_hash.as_bytes())
        .map_err(|e| Rejection::sealing(format!("cannot encrypt the password hash: {e}")))?;
    Ok(vec![Event::UserAdded(UserAdded { name, role, password_hash })])
}

pub(super) fn remove(cx: &Context<'_>, name: String) -> Result<Vec<Event>, Rejection> {
    if !cx.state.has_user(&name) {
        return Err(Rejection::missing(format!("no user {name}")));
    }
    Ok(vec![Event::UserRemoved(UserRemoved { name })])
}

pub(super) fn change_password(cx: &Context<'_>, name: String, password_hash: String) -> Result<Vec<Event>, Rejection> {
    check_hash(&password_hash)?;
    if !cx.state.has_user(&name) {
        return Err(Rejection::missing(format!("no user {name}")));
    }
    let password_hash = cx
        .sealer
        .seal(&user_secret_name(&name), password_hash.as_bytes())
        .map_err(|e| Rejection::sealing(format!("cannot encrypt the password hash: {e}")))?;
    Ok(vec![Event::UserPasswordChanged(UserPasswordChanged { name, password_hash })])
}

pub(super) fn change_role(cx: &Context<'_>, name: String, role: String) -> Result<Vec<Event>, Rejection> {
    check_role(&role)?;
    let previous = cx.state.user_role(&name).ok_or_else(|| Rejection::missing(format!("no user {name}")))?;
    if previous == role {
        return Ok(Vec::new());
    }
    let previous = previous.to_string();
    Ok(vec![Event::UserRoleChanged(UserRoleChanged { name, role, previous })])
}

pub(super) fn rotate_signing_key(cx: &Context<'_>, key: String, grace_secs: u64) -> Result<Vec<Event>, Rejection> {
    if key.len() < MIN_SIGNING_KEY {
        return Err(Rejection::invalid(format!(
            "a signing key expects at least {MIN_SIGNING_KEY} bytes; got {}",
            key.len()
        )));
    }
    let kid = signing_key_id(key.as_bytes());
    if cx.state.has_signing_key(&kid) {
        return Err(Rejection::state(format!("signing key {kid} was used before; a rotation needs a new key")));
    }
    let sealed_key = cx
        .sealer
        .seal(&signing_key_secret_name(&kid), key.as_bytes())
        .map_err(|e| Rejection::sealing(format!("cannot encrypt the signing key: {e}")))?;
    Ok(vec![Event::SigningKeyRotated(SigningKeyRotated { kid, sealed_key, grace_secs })])
}

pub(super) fn revoke_token(cx: &Context<'_>, token_hash: String, expires_at: u64) -> Result<Vec<Event>, Rejection> {
    // A hash, never a token: 64 lowercase hex digits (blake3).
    if token_hash.len() != 64 || !token_hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Rejection::invalid("a revoked token is named by its blake3 hash: 64 lowercase hex digits"));
    }
    if cx.state.token_revoked(&token_hash) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::TokenRevoked(TokenRevoked { token_hash, expires_at })])
}

fn check_role(role: &str) -> Result<(), Rejection> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(Rejection::invalid(format!("role expects one of {}; got {role:?}", ROLES.join(", "))))
    }
}

fn check_hash(password_hash: &str) -> Result<(), Rejection> {
    if password_hash.starts_with("$argon2id$") {
        Ok(())
    } else {
        Err(Rejection::invalid("password hash expects an argon2id PHC string"))
    }
}

fn check_user_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(format!("user name expects 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-', '@'; got {name:?}")))
    }
}
