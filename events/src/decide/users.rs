//! The admin API's users: adding one (a valid name, a known role, an argon2id hash, sealed before it reaches
//! the log) and removing one.

use super::{Context, Rejection};
use crate::event::{Event, UserAdded, UserRemoved};

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
    if !ROLES.contains(&role.as_str()) {
        return Err(Rejection::invalid(format!("role expects one of {}; got {role:?}", ROLES.join(", "))));
    }
    if !password_hash.starts_with("$argon2id$") {
        return Err(Rejection::invalid("password hash expects an argon2id PHC string"));
    }
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
