//! The built-in catalog: every key of the gateway's configuration categories (security, database,
//! performance, features, limits, logging) and the store's own keys. `--catalog FILE` replaces or extends it.
//! Security and database keys are locked and restart-required, as the seed's categories table says.

use crate::catalog::{Catalog, Reload, SettingSpec, ValueType};
use serde_json::{json, Value};

struct Flags {
    locked: bool,
    sensitive: bool,
    bootstrap: bool,
}

const PLAIN: Flags = Flags { locked: false, sensitive: false, bootstrap: false };
const LOCKED: Flags = Flags { locked: true, sensitive: false, bootstrap: false };
const SECRET: Flags = Flags { locked: true, sensitive: true, bootstrap: false };
const BOOTSTRAP: Flags = Flags { locked: true, sensitive: true, bootstrap: true };
const OPEN_SECRET: Flags = Flags { locked: false, sensitive: true, bootstrap: false };

fn spec(
    key: &str,
    ty: ValueType,
    default: Option<Value>,
    category: &str,
    reload: Reload,
    f: Flags,
    description: &str,
) -> SettingSpec {
    SettingSpec {
        key: key.to_string(),
        ty,
        default,
        category: category.to_string(),
        reload,
        locked: f.locked,
        sensitive: f.sensitive,
        bootstrap: f.bootstrap,
        description: description.to_string(),
    }
}

fn int(min: i64, max: i64) -> ValueType {
    ValueType::Int { min: Some(min), max: Some(max) }
}

fn dur(min: &str, max: &str) -> ValueType {
    ValueType::Duration { min: Some(min.to_string()), max: Some(max.to_string()) }
}

fn one_of(values: &[&str]) -> ValueType {
    ValueType::Enum { values: values.iter().map(|s| s.to_string()).collect() }
}

fn url(schemes: &[&str]) -> ValueType {
    ValueType::Url { schemes: schemes.iter().map(|s| s.to_string()).collect() }
}

const STRING: ValueType = ValueType::String { min_len: None, max_len: None };

/// The specs of the built-in catalog, in documentation order.
pub fn builtin_specs() -> Vec<SettingSpec> {
    use Reload::{Hot, Restart};
    vec![
        // Security
        spec("JWT_SECRET_KEY", ValueType::String { min_len: Some(32), max_len: None }, None, "security", Restart, SECRET,
            "HS256 key that signs and verifies admin API bearer tokens; at least 32 characters"),
        spec("JWT_ALGORITHM", one_of(&["HS256", "HS384", "HS512"]), Some(json!("HS256")), "security", Restart, LOCKED,
            "Signature algorithm of admin API tokens"),
        spec("TOKEN_EXPIRY", dur("1m", "365d"), Some(json!("7d")), "security", Restart, LOCKED,
            "Lifetime of tokens issued by POST /auth/login"),
        spec("AUTH_REQUIRED", ValueType::Bool, Some(json!(true)), "security", Restart, LOCKED,
            "Require a bearer token on every admin endpoint; false is for local development only"),
        spec("AUTH_ENCRYPTION_SECRET", ValueType::String { min_len: Some(16), max_len: None }, None, "security", Restart, BOOTSTRAP,
            "Secret from which the key that encrypts sensitive values is derived; read from the environment only, never stored"),
        spec("BASIC_AUTH_USER", STRING, Some(json!("admin")), "security", Restart, LOCKED,
            "User name of the gateway's basic-auth fallback"),
        spec("BASIC_AUTH_PASSWORD", STRING, None, "security", Restart, SECRET,
            "Password of the gateway's basic-auth fallback"),
        spec("CORS_ENABLED", ValueType::Bool, Some(json!(true)), "security", Restart, LOCKED,
            "Send CORS headers on the gateway's HTTP endpoints"),
        spec("ALLOWED_ORIGINS", ValueType::List { values: vec![] }, Some(json!(["http://localhost"])), "security", Restart, LOCKED,
            "Origins allowed by CORS, comma-separated"),
        // Database
        spec("DATABASE_URL", url(&["sqlite", "postgres", "postgresql", "mysql", "mariadb"]), Some(json!("sqlite:///./mcp.db")), "database", Restart, SECRET,
            "Connection URL of the gateway's database; may embed a password, so it is treated as a secret"),
        spec("REDIS_URL", url(&["redis", "rediss"]), Some(json!("redis://localhost:6379/0")), "database", Restart, SECRET,
            "Connection URL of Redis, used for caching and pub/sub"),
        spec("DB_POOL_SIZE", int(1, 1000), Some(json!(200)), "database", Restart, LOCKED,
            "Connections kept in the database pool"),
        spec("CACHE_TYPE", one_of(&["none", "memory", "redis", "database"]), Some(json!("database")), "database", Restart, LOCKED,
            "Where the gateway caches sessions and messages"),
        // Performance
        spec("MAX_WORKERS", int(1, 256), Some(json!(4)), "performance", Hot, PLAIN,
            "Worker tasks that serve tool invocations"),
        spec("CACHE_TTL", dur("0s", "7d"), Some(json!("10m")), "performance", Hot, PLAIN,
            "How long cached responses stay valid"),
        spec("HEALTH_CHECK_INTERVAL", dur("1s", "1h"), Some(json!("1m")), "performance", Hot, PLAIN,
            "Interval between health checks of federated gateways"),
        spec("CONFIG_POLL_INTERVAL", dur("10ms", "1m"), Some(json!("50ms")), "performance", Hot, PLAIN,
            "How often each instance checks a SQLite store for changes made by other processes"),
        spec("SNAPSHOT_INTERVAL", int(0, 10_000_000), Some(json!(1000)), "performance", Hot, PLAIN,
            "Events between checkpoints of the store's state, which make starts and point-in-time reads replay only the events since the last one; 0 writes none"),
        // Features
        spec("UI_ENABLED", ValueType::Bool, Some(json!(true)), "features", Hot, PLAIN,
            "Serve the admin web UI"),
        spec("ADMIN_API_ENABLED", ValueType::Bool, Some(json!(true)), "features", Hot, PLAIN,
            "Serve the admin REST API"),
        spec("FEDERATION_ENABLED", ValueType::Bool, Some(json!(true)), "features", Hot, PLAIN,
            "Federate with peer gateways"),
        spec("FEDERATION_DISCOVERY", ValueType::Bool, Some(json!(false)), "features", Hot, PLAIN,
            "Discover peer gateways by mDNS"),
        spec("FEDERATION_PEERS", ValueType::List { values: vec![] }, Some(json!([])), "features", Hot, PLAIN,
            "Peer gateway URLs, comma-separated"),
        spec("PLUGINS_ENABLED", ValueType::Bool, Some(json!(false)), "features", Hot, PLAIN,
            "Load gateway plugins"),
        // Limits
        spec("MAX_TOOL_TIMEOUT", dur("1s", "1h"), Some(json!("1m")), "limits", Hot, PLAIN,
            "Longest a tool invocation may run"),
        spec("REQUEST_SIZE_LIMIT", int(1024, 104_857_600), Some(json!(1_048_576)), "limits", Hot, PLAIN,
            "Largest accepted request body, in bytes"),
        spec("TOOL_RATE_LIMIT", int(1, 1_000_000), Some(json!(100)), "limits", Hot, PLAIN,
            "Tool invocations allowed per minute per client"),
        spec("TOOL_CONCURRENT_LIMIT", int(1, 10_000), Some(json!(10)), "limits", Hot, PLAIN,
            "Tool invocations allowed at once per tool"),
        spec("MAX_PROMPT_SIZE", int(1, 10_485_760), Some(json!(102_400)), "limits", Hot, PLAIN,
            "Largest prompt template, in bytes"),
        spec("CONFIG_WRITE_RATE_LIMIT", int(1, 1_000_000), Some(json!(600)), "limits", Hot, PLAIN,
            "Configuration writes allowed per minute per principal through the admin API"),
        spec("WEBHOOK_SECRET", STRING, None, "limits", Hot, OPEN_SECRET,
            "Shared secret that signs outgoing change notifications; a secret that operators may rotate at runtime"),
        // Logging
        spec("LOG_LEVEL", one_of(&["trace", "debug", "info", "warn", "error"]), Some(json!("info")), "logging", Hot, PLAIN,
            "Least severe log level written"),
        spec("LOG_FORMAT", one_of(&["json", "text"]), Some(json!("json")), "logging", Hot, PLAIN,
            "Log line format"),
        spec("LOG_FILE", STRING, None, "logging", Restart, PLAIN,
            "Also write logs to this file; unset writes to standard error only"),
        spec("LOG_REQUESTS", ValueType::Bool, Some(json!(false)), "logging", Hot, PLAIN,
            "Log every HTTP request with its latency"),
    ]
}

/// The built-in catalog, validated.
pub fn builtin() -> Catalog {
    // The built-in specs are fixed data checked by a test; failing here would be a bug in this file.
    Catalog::new(builtin_specs()).expect("the built-in catalog is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid_and_covers_the_seed_table() {
        let c = builtin();
        let seed = [
            ("JWT_SECRET_KEY", "security", true),
            ("AUTH_REQUIRED", "security", true),
            ("DATABASE_URL", "database", true),
            ("REDIS_URL", "database", true),
            ("MAX_WORKERS", "performance", false),
            ("CACHE_TTL", "performance", false),
            ("UI_ENABLED", "features", false),
            ("FEDERATION_ENABLED", "features", false),
            ("MAX_TOOL_TIMEOUT", "limits", false),
            ("REQUEST_SIZE_LIMIT", "limits", false),
            ("LOG_LEVEL", "logging", false),
            ("LOG_FORMAT", "logging", false),
        ];
        for (key, category, locked) in seed {
            let s = c.get(key).unwrap_or_else(|| panic!("{key} missing"));
            assert_eq!(s.category, category, "{key}");
            assert_eq!(s.locked, locked, "{key}");
            let expected_reload = if locked { Reload::Restart } else { Reload::Hot };
            assert_eq!(s.reload, expected_reload, "{key}");
        }
        assert!(c.specs().iter().all(|s| !s.bootstrap || (s.locked && s.sensitive)));
        assert!(c.specs().iter().all(|s| !s.description.is_empty()));
    }
}
