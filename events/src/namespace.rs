//! Namespaces: each application's settings live under their own name, with their own catalog. A setting's
//! identity is `namespace:KEY` (`mcpgateway:LOG_LEVEL`, `cfgledger:LOG_LEVEL`); that qualified key is what
//! events carry, what the log's `key` column indexes and what the projection is keyed by.
//!
//! Logs written before namespaces existed hold bare keys (`LOG_LEVEL`). They are never rewritten: a bare key
//! read from the log is placed by [`from_log`], which sends the keys cfgledger's own server followed to the
//! `cfgledger` namespace and every other key to the managed application's.

use std::borrow::Cow;

/// The managed application's namespace: MCP Gateway's settings. The seed's paths
/// (`/admin/config/{key}`, `config get KEY`) address it when no namespace is named.
pub const DEFAULT: &str = "mcpgateway";

/// cfgledger's own settings: its admin API's signing key and token lifetime, log level and format, poll
/// and snapshot intervals, write rate limit. Their environment variables carry [`OWN_ENV_PREFIX`].
pub const OWN: &str = "cfgledger";

/// The prefix of cfgledger's own settings in the process environment and in `.env`.
pub const OWN_ENV_PREFIX: &str = "CFGLEDGER_";

/// The separator between a namespace and a key.
pub const SEP: char = ':';

/// The bare keys of a pre-namespace log that cfgledger's own server read; every other bare key belongs to
/// the default namespace.
const LEGACY_OWN: [&str; 10] = [
    "JWT_SECRET_KEY",
    "JWT_ALGORITHM",
    "TOKEN_EXPIRY",
    "AUTH_REQUIRED",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "CONFIG_POLL_INTERVAL",
    "SNAPSHOT_INTERVAL",
    "CONFIG_WRITE_RATE_LIMIT",
    "REQUEST_SIZE_LIMIT",
];

/// Whether, in a store written before namespaces, the bare name `name` in `.env` or the environment was one
/// of cfgledger's own settings (or its encryption secret). Such a store's `.env` still holds them under those
/// names, which are now the gateway's: they must not be taken for the gateway's values.
pub fn legacy_own_name(name: &str) -> bool {
    LEGACY_OWN.contains(&name) || name == "AUTH_ENCRYPTION_SECRET"
}

/// The namespace a bare key of a pre-namespace log belongs to.
pub fn legacy_namespace(bare: &str) -> &'static str {
    if LEGACY_OWN.contains(&bare) {
        OWN
    } else {
        DEFAULT
    }
}

/// The qualified key for a key read from the log: a qualified key as it is, a bare (pre-namespace) key
/// placed by [`legacy_namespace`].
pub fn from_log(key: &str) -> Cow<'_, str> {
    if key.contains(SEP) {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(join(legacy_namespace(key), key))
    }
}

/// `namespace:KEY`.
pub fn join(namespace: &str, key: &str) -> String {
    let mut s = String::with_capacity(namespace.len() + 1 + key.len());
    s.push_str(namespace);
    s.push(SEP);
    s.push_str(key);
    s
}

/// The qualified key for a key a user named: `ns:KEY` as written, else `KEY` in `namespace` (the default
/// namespace when none is given).
pub fn qualify(namespace: Option<&str>, key: &str) -> String {
    if key.contains(SEP) {
        key.to_string()
    } else {
        join(namespace.unwrap_or(DEFAULT), key)
    }
}

/// How a qualified key is shown and named by people: bare in the default namespace (`LOG_LEVEL`), qualified
/// elsewhere (`cfgledger:LOG_LEVEL`); [`qualify`] reads it back. Anything else (`tools/search`) is itself.
pub fn display(key: &str) -> &str {
    match key.split_once(SEP) {
        Some((DEFAULT, bare)) => bare,
        _ => key,
    }
}

/// How a key of `namespace` is shown and named by people: [`display`] of `namespace:KEY`.
pub fn named(namespace: &str, key: &str) -> String {
    if namespace == DEFAULT {
        key.to_string()
    } else {
        join(namespace, key)
    }
}

/// A subject a person named: an entity's `KIND/NAME` as it is, a setting key qualified (see [`qualify`]).
pub fn subject(named: &str) -> String {
    if named.contains('/') {
        named.to_string()
    } else {
        qualify(None, named)
    }
}

/// The namespace and the bare key of a qualified key; a bare key is placed as a pre-namespace log places it.
pub fn split(key: &str) -> (&str, &str) {
    match key.split_once(SEP) {
        Some((ns, bare)) => (ns, bare),
        None => (legacy_namespace(key), key),
    }
}

/// The subjects under which the log may index a qualified key: the key itself, and its bare form when a
/// pre-namespace log would have placed the bare key in the same namespace.
pub fn log_subjects(qualified: &str) -> Vec<String> {
    let (ns, bare) = split(qualified);
    let mut out = vec![join(ns, bare)];
    if legacy_namespace(bare) == ns {
        out.push(bare.to_string());
    }
    out
}

/// Whether `name` is a valid namespace name: lower-case letters, digits, `-` and `_`, starting with a letter,
/// at most 63 characters.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keys_are_placed_by_who_read_them() {
        assert_eq!(from_log("LOG_LEVEL"), "cfgledger:LOG_LEVEL");
        assert_eq!(from_log("CACHE_TTL"), "mcpgateway:CACHE_TTL");
        assert_eq!(from_log("mcpgateway:LOG_LEVEL"), "mcpgateway:LOG_LEVEL");
        assert_eq!(split("cfgledger:TOKEN_EXPIRY"), ("cfgledger", "TOKEN_EXPIRY"));
        assert_eq!(split("DATABASE_URL"), ("mcpgateway", "DATABASE_URL"));
    }

    #[test]
    fn qualify_and_subjects() {
        assert_eq!(qualify(None, "LOG_LEVEL"), "mcpgateway:LOG_LEVEL");
        assert_eq!(qualify(Some("cfgledger"), "LOG_LEVEL"), "cfgledger:LOG_LEVEL");
        assert_eq!(qualify(Some("x"), "cfgledger:LOG_LEVEL"), "cfgledger:LOG_LEVEL");
        assert_eq!(log_subjects("cfgledger:LOG_LEVEL"), vec!["cfgledger:LOG_LEVEL", "LOG_LEVEL"]);
        assert_eq!(log_subjects("mcpgateway:LOG_LEVEL"), vec!["mcpgateway:LOG_LEVEL"]);
        assert_eq!(log_subjects("mcpgateway:CACHE_TTL"), vec!["mcpgateway:CACHE_TTL", "CACHE_TTL"]);
        assert!(valid_name("my-app") && !valid_name("MyApp") && !valid_name("") && !valid_name("a:b"));
    }
}
