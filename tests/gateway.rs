//! The real MCP Gateway 1.1.0 boots from a hand-written `.env` file and reports the values it was given: the
//! smoke test of the harness (`support::gateway`) that the rendered `.env` will be checked with.

mod support;

use rand::distributions::{Alphanumeric, DistString};
use rand::seq::SliceRandom;
use support::gateway::Gateway;

const ADMIN_EMAIL: &str = "platform-admin@cfgledger.test";

/// `len` random letters and digits: about 5.95 bits per character, far above the gateway's 3.5 floor.
fn secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

/// A strong password: random letters and digits plus one each of upper, lower, digit and a special character
/// that needs no quoting in a `.env` file (no `$`, which python-dotenv would expand, no `#`, no quotes).
fn password() -> String {
    let mut chars: Vec<char> = format!("{}Aa7-!", secret(27)).chars().collect();
    chars.shuffle(&mut rand::thread_rng());
    chars.into_iter().collect()
}

#[test]
fn gateway_boots_from_a_hand_written_env_file() {
    let jwt_secret = secret(48);
    // Values that differ from the gateway's defaults, so that seeing them proves the file was read: APP_NAME
    // (default ContextForge), PORT (4444), TOKEN_EXPIRY (20), LOG_LEVEL (ERROR), CACHE_TYPE (database),
    // MCPGATEWAY_ADMIN_API_ENABLED (false), MCPGATEWAY_A2A_ENABLED (true) and ALLOWED_ORIGINS. The origins are
    // not the default pair: in development the gateway replaces exactly that pair with its own list (see the
    // harness's module doc).
    let env = format!(
        "\
# MCP Gateway settings, written by hand for the harness smoke test
APP_NAME=cfgledger-smoke-gateway
ENVIRONMENT=development
HOST=127.0.0.1
PORT=4545
DATABASE_URL=sqlite:///./mcp.db
CACHE_TYPE=memory
JWT_SECRET_KEY={jwt_secret}
AUTH_ENCRYPTION_SECRET={encryption}
AUTH_REQUIRED=true
TOKEN_EXPIRY=45
PLATFORM_ADMIN_EMAIL={ADMIN_EMAIL}
PLATFORM_ADMIN_PASSWORD={admin_password}
DEFAULT_USER_PASSWORD={default_password}
BASIC_AUTH_USER=gateway-operator
BASIC_AUTH_PASSWORD={basic_password}
ALLOWED_ORIGINS='[\"http://localhost\",\"http://localhost:4444\",\"https://console.cfgledger.test\"]'
LOG_LEVEL=WARNING
MCPGATEWAY_UI_ENABLED=false
MCPGATEWAY_ADMIN_API_ENABLED=true
MCPGATEWAY_A2A_ENABLED=false
",
        encryption = secret(48),
        admin_password = password(),
        default_password = password(),
        basic_password = password(),
    );
    let file = tempfile::NamedTempFile::new().expect("a temporary .env file");
    std::fs::write(file.path(), env).expect("write the .env file");

    let gw = Gateway::boot(file.path());

    // Without a token: the root names the app while the UI is off, the admin endpoints refuse.
    let (status, root) = gw.get("/", None);
    assert_eq!((status, &root["name"]), (200, &"cfgledger-smoke-gateway".into()), "{root}");
    let (status, body) = gw.get("/admin/config/settings", None);
    assert_eq!(status, 401, "the admin API answers only with a token: {body}");

    let token = gw.token(&jwt_secret, ADMIN_EMAIL);
    let version = gw.version(&token);
    assert_eq!(version["app"]["version"], "1.1.0", "{version}");
    assert_eq!(version["app"]["name"], "cfgledger-smoke-gateway", "{version}");
    assert_eq!(version["database"]["dialect"], "sqlite", "{version}");
    assert_eq!(version["settings"]["cache_type"], "memory", "{version}");
    assert_eq!(version["settings"]["mcpgateway_admin_api_enabled"], true, "{version}");
    assert_eq!(version["settings"]["mcpgateway_ui_enabled"], false, "{version}");
    // The SQLite file is where the relative URL says: the gateway's working directory.
    assert!(gw.dir().join("mcp.db").is_file(), "no mcp.db in the gateway's directory");

    let settings = gw.config_settings(&token);
    let groups = &settings["groups"];
    assert_eq!(groups["Basic Settings"]["app_name"], "cfgledger-smoke-gateway", "{settings}");
    // A number, read from the file although uvicorn listens on the harness's port.
    assert_eq!(groups["Basic Settings"]["port"], 4545, "{settings}");
    assert_eq!(groups["Authentication & Security"]["token_expiry"], 45, "{settings}");
    assert_eq!(groups["Authentication & Security"]["basic_auth_user"], "gateway-operator", "{settings}");
    assert_eq!(groups["Authentication & Security"]["jwt_secret_key"], "*****", "secrets are masked");
    assert_eq!(groups["Email Authentication"]["platform_admin_email"], ADMIN_EMAIL, "{settings}");
    assert_eq!(groups["Logging"]["log_level"], "WARNING", "{settings}");
    assert_eq!(groups["Feature Flags"]["mcpgateway_a2a_enabled"], false, "{settings}");
    assert_eq!(groups["Feature Flags"]["mcpgateway_admin_api_enabled"], true, "{settings}");
    // A list: a set inside the gateway, so compare without order.
    let origins = gw.setting(&token, "allowed_origins");
    let mut origins = strings(&origins);
    origins.sort_unstable();
    assert_eq!(origins, ["http://localhost", "http://localhost:4444", "https://console.cfgledger.test"]);
    assert_eq!(settings["security_status"]["secure_secrets"], true, "{settings}");

    // And the list in effect, not only reported: CORS allows a listed origin and no other.
    assert_eq!(
        gw.preflight("/health", "https://console.cfgledger.test").as_deref(),
        Some("https://console.cfgledger.test")
    );
    assert_eq!(gw.preflight("/health", "https://elsewhere.example").as_deref(), None);
}

fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}
