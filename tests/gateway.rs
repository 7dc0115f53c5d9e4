//! The real MCP Gateway 1.1.0 boots from a `.env` file and reports the values it was given:
//! - from a hand-written file: the smoke test of the harness (`support::gateway`);
//! - from cfgledger's render alone: a realistic gateway `.env` (over 60 keys, every python-dotenv form) is
//!   seeded into a new store, changed through the CLI, rendered with its secrets, and the gateway booted
//!   from the rendered file shows the values through its own API.

mod support;

use support::gateway::{password, secret, Gateway};

const ADMIN_EMAIL: &str = "platform-admin@cfgledger.test";

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

/// Several lines per key in every form python-dotenv reads: `export`, quotes of both kinds, a multi-line
/// value, an inline comment, `${...}` interpolation, an empty value (unset), a JSON array, cfgledger's own
/// key beside the gateway's, and 40 cache TTLs and validation limits set one above their default.
fn realistic_gateway_env(jwt_secret: &str, encryption: &str, admin_password: &str, default_password: &str) -> String {
    let tuned = [
        ("EXTERNAL_IDENTITY_CACHE_TTL", 60),
        ("VAULT_TOKEN_CACHE_TTL", 300),
        ("DCR_METADATA_CACHE_TTL", 3600),
        ("MCPGATEWAY_CATALOG_CACHE_TTL", 3600),
        ("LLMCHAT_SESSION_TTL", 300),
        ("LLMCHAT_CHAT_HISTORY_TTL", 3600),
        ("AUTH_CACHE_USER_TTL", 60),
        ("AUTH_CACHE_REVOCATION_TTL", 30),
        ("AUTH_CACHE_TEAM_TTL", 60),
        ("AUTH_CACHE_ROLE_TTL", 60),
        ("AUTH_CACHE_TEAMS_TTL", 60),
        ("REGISTRY_CACHE_TOOLS_TTL", 20),
        ("REGISTRY_CACHE_PROMPTS_TTL", 15),
        ("REGISTRY_CACHE_RESOURCES_TTL", 15),
        ("REGISTRY_CACHE_AGENTS_TTL", 20),
        ("REGISTRY_CACHE_SERVERS_TTL", 20),
        ("REGISTRY_CACHE_GATEWAYS_TTL", 20),
        ("REGISTRY_CACHE_CATALOG_TTL", 300),
        ("TOOL_LOOKUP_CACHE_TTL_SECONDS", 60),
        ("TOOL_LOOKUP_CACHE_NEGATIVE_TTL_SECONDS", 10),
        ("ADMIN_STATS_CACHE_SYSTEM_TTL", 60),
        ("ADMIN_STATS_CACHE_OBSERVABILITY_TTL", 30),
        ("ADMIN_STATS_CACHE_TAGS_TTL", 120),
        ("ADMIN_STATS_CACHE_PLUGINS_TTL", 120),
        ("ADMIN_STATS_CACHE_PERFORMANCE_TTL", 60),
        ("TEAM_MEMBER_COUNT_CACHE_TTL", 300),
        ("RESOURCE_CACHE_TTL", 3600),
        ("SESSION_TTL", 3600),
        ("MESSAGE_TTL", 600),
        ("GLOBAL_CONFIG_CACHE_TTL", 60),
        ("A2A_STATS_CACHE_TTL", 30),
        ("STREAMABLE_HTTP_EVENT_TTL", 3600),
        ("VALIDATION_MAX_NAME_LENGTH", 255),
        ("VALIDATION_MAX_TOOL_NAME_LENGTH", 128),
        ("VALIDATION_MAX_DESCRIPTION_LENGTH", 8192),
        ("VALIDATION_MAX_TEMPLATE_LENGTH", 65536),
        ("VALIDATION_MAX_CONTENT_LENGTH", 1048576),
        ("VALIDATION_MAX_JSON_DEPTH", 30),
        ("VALIDATION_MAX_URL_LENGTH", 2048),
        ("VALIDATION_MAX_RPC_PARAM_SIZE", 262144),
    ];
    let mut env = format!(
        "\
# A gateway .env as an operator keeps it (python-dotenv syntax)
APP_NAME=cfgledger-rendered-gateway   # an inline comment
export ENVIRONMENT=development
HOST=127.0.0.1
PORT=4646
APP_DOMAIN=http://localhost:${{PORT}}/
DATABASE_URL=sqlite:///./mcp.db
CACHE_TYPE='memory'
REDIS_URL=
JWT_SECRET_KEY=\"{jwt_secret}\"
AUTH_ENCRYPTION_SECRET='{encryption}'
AUTH_REQUIRED=true
TOKEN_EXPIRY=45
PLATFORM_ADMIN_EMAIL={ADMIN_EMAIL}
PLATFORM_ADMIN_PASSWORD='{admin_password}'
DEFAULT_USER_PASSWORD=\"{default_password}\"
BASIC_AUTH_USER=gateway-operator
ALLOWED_ORIGINS='[\"http://localhost\", \"http://localhost:4444\", \"https://console.cfgledger.test\"]'
LOG_LEVEL=warning
MCPGATEWAY_UI_ENABLED=false
MCPGATEWAY_ADMIN_API_ENABLED=true
MCPGATEWAY_A2A_ENABLED=false
HEALTH_CHECK_INTERVAL=90
WELL_KNOWN_ROBOTS_TXT=\"User-agent: *
Disallow: /private
Allow: /\"
# cfgledger's own settings carry its prefix and never reach the gateway
CFGLEDGER_LOG_LEVEL=warn

"
    );
    for (key, default) in tuned {
        env.push_str(&format!("{key}={}\n", default + 1));
    }
    env
}

#[test]
fn gateway_boots_from_cfgledgers_render_alone() {
    let jwt_secret = secret(48);
    let env = realistic_gateway_env(&jwt_secret, &secret(48), &password(), &password());
    assert!(env.lines().filter(|l| l.contains('=') && !l.starts_with('#')).count() >= 60, "a realistic file");
    let store = support::Store::with_builtin_catalog(&env);

    // Seeding placed every line in its namespace; an empty value is unset, not an empty string.
    let got = |args: &[&str]| store.ok(args).stdout.trim().to_string();
    assert_eq!(got(&["config", "get", "TOKEN_EXPIRY"]), "45");
    assert_eq!(got(&["config", "get", "LOG_LEVEL"]), "WARNING");
    assert_eq!(got(&["config", "get", "--namespace", "cfgledger", "LOG_LEVEL"]), "warn");
    assert_eq!(got(&["config", "get", "APP_DOMAIN"]), "http://localhost:4646/");
    let redis: serde_json::Value =
        serde_json::from_str(&got(&["config", "get", "REDIS_URL", "--output", "json"])).expect("json");
    assert_eq!(redis["source"], "default", "an empty REDIS_URL= is unset: {redis}");
    // An operator changes two hot settings afterwards.
    store.ok(&["config", "set", "TOOL_RATE_LIMIT", "250", "--reason", "a busier fleet"]);
    store.ok(&["config", "set", "MCPGATEWAY_A2A_ENABLED", "true"]);

    // Without --include-secrets the secrets stay in the store, and the render says so.
    let plain = store.ok(&["render", "--format", "env"]).stdout;
    assert!(!plain.contains(&jwt_secret), "no secret without the flag");
    assert!(plain.contains("secrets left out"), "{plain}");
    assert!(!plain.contains("CFGLEDGER_"), "cfgledger's own settings are not the gateway's: {plain}");

    let out = store.dir().join("gateway.env");
    let done = store.ok(&["render", "--format", "env", "--include-secrets", "--out", "gateway.env"]);
    assert!(done.stdout.starts_with("rendered "), "{}", done.stdout);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).expect("the rendered file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the render holds secrets: only its owner reads it");
    // The render with secrets is in the audit trail: who, which namespace, which keys; never the values.
    let trail = store.ok(&["audit", "--action", "secrets_rendered", "--output", "json"]).stdout;
    assert!(trail.contains("JWT_SECRET_KEY") && trail.contains("mcpgateway"), "{trail}");
    assert!(!trail.contains(&jwt_secret), "{trail}");

    let gw = Gateway::boot(&out);
    let token = gw.token(&jwt_secret, ADMIN_EMAIL);
    let settings = gw.config_settings(&token);
    let groups = &settings["groups"];
    assert_eq!(groups["Basic Settings"]["app_name"], "cfgledger-rendered-gateway", "{settings}");
    assert_eq!(groups["Basic Settings"]["port"], 4646, "{settings}");
    assert_eq!(groups["Authentication & Security"]["token_expiry"], 45, "minutes, as the gateway reads them");
    assert_eq!(groups["Authentication & Security"]["basic_auth_user"], "gateway-operator", "{settings}");
    assert_eq!(groups["Logging"]["log_level"], "WARNING", "{settings}");
    assert_eq!(groups["Feature Flags"]["mcpgateway_a2a_enabled"], true, "the value set after seeding: {settings}");
    assert_eq!(settings["security_status"]["secure_secrets"], true, "{settings}");
    assert_eq!(gw.setting(&token, "tool_rate_limit"), 250, "the value set after seeding");
    assert_eq!(gw.setting(&token, "resource_cache_ttl"), 3601, "one of the 40 tuned keys");
    assert_eq!(gw.setting(&token, "app_domain"), "http://localhost:4646/", "${{PORT}} expanded at seeding");
    assert_eq!(gw.setting(&token, "cache_type"), "memory");
    let mut origins =
        strings(&gw.setting(&token, "allowed_origins")).into_iter().map(str::to_string).collect::<Vec<_>>();
    origins.sort_unstable();
    assert_eq!(origins, ["http://localhost", "http://localhost:4444", "https://console.cfgledger.test"]);
    assert_eq!(
        gw.preflight("/health", "https://console.cfgledger.test").as_deref(),
        Some("https://console.cfgledger.test")
    );
    let version = gw.version(&token);
    assert_eq!(version["settings"]["cache_type"], "memory", "{version}");
}

/// What cfgledger renders, python-dotenv (the gateway's reader, from its own venv) reads back unchanged:
/// quotes, backslashes, `$` and `${...}` (which python-dotenv expands even inside single quotes), `#`, and a
/// value over several lines.
#[test]
fn the_render_reads_back_unchanged_through_python_dotenv() {
    let tricky = [
        ("APP_NAME", "it's \"quoted\" with a \\ backslash"),
        ("APP_ROOT_PATH", "/${HOME}/$USER/${A:-b}/${unterminated"),
        ("MCPGATEWAY_CATALOG_FILE", "catalog.yml # not a comment"),
        ("WELL_KNOWN_ROBOTS_TXT", "User-agent: *\nDisallow: /private\n\n# end"),
    ];
    let s = support::Store::with_builtin_catalog("");
    s.ok(&["config", "list"]);
    for (key, value) in tricky {
        s.ok(&["config", "set", key, value]);
    }
    s.ok(&["render", "--out", "rendered.env"]);
    let out = std::process::Command::new(support::gateway::python())
        .args([
            "-c",
            "import json, sys; from dotenv import dotenv_values; print(json.dumps(dotenv_values(sys.argv[1])))",
        ])
        .arg(s.dir().join("rendered.env"))
        .env_clear()
        .output()
        .expect("python runs");
    assert!(out.status.success(), "python-dotenv failed: {}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for (key, value) in tricky {
        assert_eq!(read[key], value, "{key} as python-dotenv reads the render");
    }
}

/// A store created with no `.env` at all renders a file the gateway's own `Settings` accepts: the secrets
/// and passwords a gateway on its defaults insists on are generated, strong, by the new store.
#[test]
fn a_new_stores_render_passes_the_gateways_own_settings_checks() {
    let s = support::Store::with_builtin_catalog("");
    s.ok(&["config", "list"]);
    s.ok(&["render", "--include-secrets", "--out", "gateway.env"]);
    let check = "from mcpgateway.config import Settings; s = Settings(_env_file='gateway.env'); \
                 print(s.email_auth_enabled, len(s.platform_admin_password.get_secret_value()))";
    let out = std::process::Command::new(support::gateway::python())
        .args(["-c", check])
        .current_dir(s.dir())
        .env_clear()
        .env("HOME", s.dir())
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the gateway refused the render: {}", String::from_utf8_lossy(&out.stderr));
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"True"), "email login (which checks the passwords) is on: {stdout}");
    assert!(fields.get(1).and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n >= 12), "{stdout}");
}
