//! The built-in catalog as it ships: MCP Gateway's settings in the default namespace, cfgledger's own in
//! `cfgledger`, a real gateway `.env` seeded in python-dotenv's syntax with every refused line named at
//! once, drift, the audited re-seed of a locked key, and renders in three formats.

mod support;

use serde_json::Value;
use support::Store;

const JWT: &str = "Zq8vN3kLp0XwR7tY2mB5cF9hJ4gD6sA1eU3iO7pQ";
const ENCRYPTION: &str = "Wm4nB8vC2xZ6lK0jH5gF9dS3aP7oI1uY4tR8eE2q";

fn gateway_env(extra: &str) -> String {
    format!(
        "JWT_SECRET_KEY={JWT}\nAUTH_ENCRYPTION_SECRET='{ENCRYPTION}'\nTOKEN_EXPIRY=30\nLOG_LEVEL=info\n\
         ALLOWED_ORIGINS='[\"http://localhost\", \"http://localhost:4444\"]'\n\
         DATABASE_URL=postgresql+psycopg://gw:pw@db.internal:5432/mcp\nREDIS_URL=\n{extra}"
    )
}

fn json(run: &support::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

#[test]
fn a_gateway_env_seeds_in_the_gateways_forms_and_cfgledgers_own_keys_stay_apart() {
    let s = Store::with_builtin_catalog(&gateway_env("CFGLEDGER_LOG_LEVEL=warn\n"));
    let get = |args: &[&str]| s.ok(args).stdout.trim().to_string();
    // Integers in the gateway's units, lists as the JSON arrays it parses, enums in its spelling.
    assert_eq!(get(&["config", "get", "TOKEN_EXPIRY"]), "30");
    assert_eq!(get(&["config", "get", "LOG_LEVEL"]), "INFO");
    let origins = json(&s.ok(&["config", "get", "ALLOWED_ORIGINS", "--output", "json"]));
    assert_eq!(origins["value"], serde_json::json!(["http://localhost", "http://localhost:4444"]));
    // A SQLAlchemy URL is accepted and, as it may hold a password, kept secret.
    let db = json(&s.ok(&["config", "get", "DATABASE_URL", "--output", "json"]));
    assert_eq!(
        (db["value"].as_str(), db["source"].as_str(), db["sensitive"].as_bool()),
        (Some("********"), Some("db"), Some(true))
    );
    // The gateway's AUTH_ENCRYPTION_SECRET is its own stored secret; cfgledger's is read from the environment only.
    let gw_secret = json(&s.ok(&["config", "get", "AUTH_ENCRYPTION_SECRET", "--output", "json"]));
    assert_eq!(gw_secret["source"], "db", "the gateway's secret is stored (sealed): {gw_secret}");
    let own_secret = json(&s.ok(&["config", "get", "cfgledger:AUTH_ENCRYPTION_SECRET", "--output", "json"]));
    assert_eq!(own_secret["source"], "unset", "the store's key comes from its key file here: {own_secret}");
    // Two LOG_LEVELs, one per application; changing the gateway's leaves cfgledger's own alone.
    assert_eq!(get(&["config", "get", "--namespace", "cfgledger", "LOG_LEVEL"]), "warn");
    s.ok(&["config", "set", "LOG_LEVEL", "debug"]);
    assert_eq!(get(&["config", "get", "LOG_LEVEL"]), "DEBUG");
    assert_eq!(get(&["config", "get", "cfgledger:LOG_LEVEL"]), "warn");
    let own_history = json(&s.ok(&["history", "-n", "cfgledger", "LOG_LEVEL", "--output", "json"]));
    let seen: Vec<&str> =
        own_history["entries"].as_array().expect("entries").iter().filter_map(|e| e["namespace"].as_str()).collect();
    assert!(!seen.is_empty() && seen.iter().all(|ns| *ns == "cfgledger"), "{own_history}");
    let own = json(&s.ok(&["config", "list", "--namespace", "cfgledger", "--output", "json"]));
    let keys: Vec<&str> = own["items"].as_array().expect("items").iter().filter_map(|i| i["key"].as_str()).collect();
    assert!(
        keys.contains(&"LOG_LEVEL") && keys.contains(&"TOKEN_EXPIRY") && !keys.contains(&"DATABASE_URL"),
        "{keys:?}"
    );
    let all = json(&s.ok(&["config", "list", "--output", "json"]));
    assert!(all["items"].as_array().expect("items").len() > 800, "the gateway's whole catalog");
    // An unknown namespace is named, with the known ones.
    let run = s.fails_with(2, &["config", "get", "--namespace", "nope", "LOG_LEVEL"]);
    assert!(run.stderr.contains("unknown namespace \"nope\"; namespaces are mcpgateway, cfgledger"), "{}", run.stderr);
    // The audit trail says which namespace each change was in.
    let trail = json(&s.ok(&["audit", "--key", "LOG_LEVEL", "--output", "json"]));
    let rows: Vec<(&str, &str)> = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["namespace"].as_str().unwrap_or(""), e["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(rows, vec![("mcpgateway", "set"), ("mcpgateway", "seeded")]);
}

#[test]
fn every_refused_env_line_is_named_at_once_and_a_refused_first_start_leaves_nothing_behind() {
    let placeholder = "__REPLACE_ME__run_init-secrets_before_starting";
    let syntax = Store::with_builtin_catalog("A=1\nno equals sign here\nB=\"unterminated hunter2-secret\n");
    let run = syntax.fails_with(2, &["config", "list"]);
    assert!(run.stderr.contains("2 lines of .env cannot be read; nothing was written"), "{}", run.stderr);
    assert!(run.stderr.contains(".env line 2 (no): expected = after the key"), "{}", run.stderr);
    assert!(run.stderr.contains(".env line 3 (B): unterminated double quote"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "a value is never echoed: {}", run.stderr);

    let values = Store::with_builtin_catalog(&format!(
        "JWT_SECRET_KEY={placeholder}\nTOKEN_EXPIRY=10080\nLOG_LEVEL=verbose\nALLOWED_ORIGINS='[\"a\",'\nPORT=4444\nAUTH_ENCRYPTION_SECRET=short\n"
    ));
    let run = values.fails_with(2, &["config", "list"]);
    let err = &run.stderr;
    assert!(err.contains("5 lines of .env refused; nothing was written"), "{err}");
    for named in [
        ".env line 1 (JWT_SECRET_KEY)",
        ".env line 2 (TOKEN_EXPIRY): key TOKEN_EXPIRY expects an integer from 5 to 1440",
        ".env line 3 (LOG_LEVEL): key LOG_LEVEL expects one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        ".env line 4 (ALLOWED_ORIGINS)",
        ".env line 6 (AUTH_ENCRYPTION_SECRET)",
    ] {
        assert!(err.contains(named), "{named} not in: {err}");
    }
    assert!(err.contains("placeholder"), "the gateway's own rule is named: {err}");
    assert!(!err.contains(placeholder) && !err.contains("short\""), "no secret is echoed: {err}");
    assert!(!err.contains("10080") && !err.contains("verbose"), "no value is echoed either: {err}");
    for store in [&syntax, &values] {
        let left: Vec<String> = std::fs::read_dir(store.dir())
            .expect("the directory")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n != ".env")
            .collect();
        assert!(left.is_empty(), "a refused first start leaves nothing behind: {left:?}");
    }
}

#[test]
fn drift_is_named_without_values_and_an_audited_reseed_corrects_a_locked_key() {
    let s = Store::with_builtin_catalog(&gateway_env("APP_NAME=first-name\n"));
    s.ok(&["config", "list"]);
    assert_eq!(s.ok(&["config", "drift"]).stdout.trim(), "no drift: the environment and .env agree with the store");
    s.ok(&["config", "drift", "--check"]);
    // The operator edits .env later: the store's values stay in force, and drift names the keys.
    s.write_env(&gateway_env("APP_NAME=second-name\n").replace("TOKEN_EXPIRY=30", "TOKEN_EXPIRY=45"));
    let drift = s.ok(&["config", "drift"]).stdout;
    assert!(drift.contains("APP_NAME: .env line 8 differs from the store's value"), "{drift}");
    assert!(drift.contains("TOKEN_EXPIRY: .env line 3 differs"), "{drift}");
    assert!(!drift.contains("second-name") && !drift.contains("45"), "no value is shown: {drift}");
    let checked = s.fails(&["config", "drift", "--check"]);
    assert!(checked.stderr.contains("2 key(s) drift from the store"), "{}", checked.stderr);
    assert_eq!(
        s.ok(&["config", "drift", "-n", "cfgledger"]).stdout.trim(),
        "no drift: the environment and .env agree with the store"
    );
    assert_eq!(s.ok(&["config", "get", "TOKEN_EXPIRY"]).stdout.trim(), "30");

    // A locked key cannot be set; the re-seed takes it from .env, audited as its own action.
    let refused = s.fails(&["config", "set", "TOKEN_EXPIRY", "45"]);
    assert!(refused.stderr.contains("locked"), "{}", refused.stderr);
    let done = s.ok(&["config", "reseed", "TOKEN_EXPIRY", "--reason", "seeded wrong"]).stdout;
    assert!(done.contains("reseeded TOKEN_EXPIRY from .env"), "{done}");
    assert_eq!(s.ok(&["config", "get", "TOKEN_EXPIRY"]).stdout.trim(), "45");
    let trail = json(&s.ok(&["audit", "--action", "reseeded", "--output", "json"]));
    let entry = &trail["entries"][0];
    assert_eq!(
        (entry["key"].as_str(), entry["reason"].as_str()),
        (Some("TOKEN_EXPIRY"), Some("seeded wrong")),
        "{trail}"
    );
    assert_eq!((entry["previous"].as_i64(), entry["value"].as_i64()), (Some(30), Some(45)), "{trail}");
    // A key that is not locked is changed with set; a re-seed of it is refused and writes nothing.
    let head = s.ok(&["log", "--output", "json"]).stdout.lines().count();
    let run = s.fails(&["config", "reseed", "APP_NAME"]);
    assert!(run.stderr.contains("is not a locked stored key"), "{}", run.stderr);
    assert_eq!(s.ok(&["log", "--output", "json"]).stdout.lines().count(), head);
    // The shell's environment counts only when asked for, and then wins over .env.
    let with_env = |args: &[&str]| support::run(s.cmd().env("TOKEN_EXPIRY", "60").args(args));
    let quiet = with_env(&["config", "reseed", "TOKEN_EXPIRY"]).expect_code(0, "reseed");
    assert!(quiet.stdout.starts_with("nothing to re-seed"), "{}", quiet.stdout);
    let loud = with_env(&["config", "reseed", "TOKEN_EXPIRY", "--from-env"]).expect_code(0, "reseed --from-env");
    assert!(loud.stdout.contains("reseeded TOKEN_EXPIRY from environment"), "{}", loud.stdout);
    assert_eq!(s.ok(&["config", "get", "TOKEN_EXPIRY"]).stdout.trim(), "60");
    s.write_env(&gateway_env("APP_NAME=second-name\n").replace("TOKEN_EXPIRY=30", "TOKEN_EXPIRY=60"));

    // A later .env line that does not fit a key the store never held is reported, and reads go on.
    let current = std::fs::read_to_string(s.dir().join(".env")).expect("read .env");
    s.write_env(&format!("{current}LOG_BACKUP_COUNT=notanumber\n"));
    let read = s.ok(&["config", "get", "TOKEN_EXPIRY"]);
    assert_eq!(read.stdout.trim(), "60");
    assert!(read.stderr.contains("warning: nothing new was seeded from .env"), "{}", read.stderr);
    assert!(read.stderr.contains("(LOG_BACKUP_COUNT)") && !read.stderr.contains("notanumber"), "{}", read.stderr);
    s.write_env(&current);

    // Drift about APP_NAME remains (it is not locked, and the store's value wins); TOKEN_EXPIRY's is gone.
    let drift = s.ok(&["config", "drift"]).stdout;
    assert!(drift.contains("APP_NAME") && !drift.contains("TOKEN_EXPIRY"), "{drift}");
}

#[test]
fn renders_in_three_formats_with_secrets_only_on_request() {
    let s = Store::with_builtin_catalog(&gateway_env("APP_NAME=\"it's \\\"quoted\\\"\"\n"));
    // A render reads a store; it never creates one.
    let run = s.fails_with(3, &["render"]);
    assert!(run.stderr.contains("no store at"), "{}", run.stderr);
    s.ok(&["config", "list"]);
    let env = s.ok(&["render"]).stdout;
    assert!(env.contains("TOKEN_EXPIRY='30'\n"), "{env}");
    assert!(env.contains("ALLOWED_ORIGINS='[\"http://localhost\",\"http://localhost:4444\"]'\n"), "{env}");
    assert!(env.contains("APP_NAME='it\\'s \"quoted\"'\n"), "{env}");
    assert!(!env.contains(JWT) && !env.contains("DATABASE_URL="), "{env}");
    assert!(!env.contains("REDIS_URL"), "an unset key is not rendered: {env}");
    // What we render, our own python-dotenv reader reads back as the values the store holds.
    let path = s.dir().join("rendered.env");
    std::fs::write(&path, &env).expect("write");
    let back = cfgledger::envfile::read(&path).expect("the render reads back");
    let app = back.iter().find(|e| e.key == "APP_NAME").expect("APP_NAME");
    assert_eq!(app.value, "it's \"quoted\"");

    // --out through a symbolic link replaces the file it names and keeps the link.
    std::fs::write(s.dir().join("target.env"), "old").expect("write");
    std::os::unix::fs::symlink("target.env", s.dir().join("link.env")).expect("a link");
    s.ok(&["render", "--out", "link.env"]);
    assert!(std::fs::symlink_metadata(s.dir().join("link.env")).expect("the link").file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(s.dir().join("target.env")).expect("the file"), env);

    let with = s.ok(&["render", "--format", "json", "--include-secrets"]).stdout;
    let doc: Value = serde_json::from_str(&with).expect("json");
    assert_eq!(doc["TOKEN_EXPIRY"], 30);
    assert_eq!(doc["JWT_SECRET_KEY"], JWT);
    assert_eq!(doc["DATABASE_URL"], "postgresql+psycopg://gw:pw@db.internal:5432/mcp");
    assert!(doc.get("CFGLEDGER_LOG_LEVEL").is_none() && doc.get("REDIS_URL").is_none(), "{doc}");

    let yaml = s.ok(&["render", "--format", "yaml", "--namespace", "cfgledger", "--include-defaults"]).stdout;
    assert!(yaml.contains("CFGLEDGER_TOKEN_EXPIRY: \"7d\"\n"), "{yaml}");
    assert!(!yaml.contains("AUTH_ENCRYPTION_SECRET"), "the bootstrap secret never leaves: {yaml}");

    // The render with secrets was recorded, once, without any value; the others were not.
    let trail = json(&s.ok(&["audit", "--action", "secrets_rendered", "--output", "json"]));
    let entries = trail["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{trail}");
    let keys = entries[0]["rendered"]["keys"].as_array().expect("keys");
    assert!(keys.iter().any(|k| k == "JWT_SECRET_KEY") && keys.iter().any(|k| k == "DATABASE_URL"), "{trail}");
    assert!(!trail.to_string().contains(JWT), "{trail}");
    // An audit of the namespace finds it too; another namespace's does not.
    let of = |ns: &str| {
        let page = json(&s.ok(&["audit", "-n", ns, "--action", "secrets_rendered", "--output", "json"]));
        page["entries"].as_array().map_or(0, Vec::len)
    };
    assert_eq!((of("mcpgateway"), of("cfgledger")), (1, 0));
    let bad = s.fails_with(2, &["render", "--format", "toml"]);
    assert!(bad.stderr.contains("format expects env, json or yaml"), "{}", bad.stderr);
}

#[test]
fn another_application_is_added_as_a_namespace_of_its_own() {
    let catalog = r#"
namespace = "billing"
application = "Billing service"
env_prefix = "BILLING_"

[[settings]]
key = "LOG_LEVEL"
type = "enum"
values = ["debug", "info"]
default = "info"
category = "logging"
reload = "hot"
description = "the billing service's own log level"
"#;
    let s = Store::with_builtin_catalog("BILLING_LOG_LEVEL=debug\nLOG_LEVEL=error\n");
    std::fs::write(s.dir().join("billing.toml"), catalog).expect("write the catalog");
    let with = |args: &[&str]| s.run(&[&["--catalog", "billing.toml"][..], args].concat());
    let get = |args: &[&str]| with(args).expect_code(0, &args.join(" ")).stdout.trim().to_string();
    // Three LOG_LEVELs, one per namespace, each seeded from its own name in the one .env.
    assert_eq!(get(&["config", "get", "billing:LOG_LEVEL"]), "debug");
    assert_eq!(get(&["config", "get", "LOG_LEVEL"]), "ERROR");
    assert_eq!(get(&["config", "get", "-n", "cfgledger", "LOG_LEVEL"]), "info");
    with(&["config", "set", "-n", "billing", "LOG_LEVEL", "info"]).expect_code(0, "set");
    assert_eq!(get(&["config", "get", "LOG_LEVEL"]), "ERROR", "the gateway's is untouched");
    let env = get(&["render", "-n", "billing"]);
    assert!(env.contains("BILLING_LOG_LEVEL='info'"), "{env}");
    let all = json(&with(&["config", "list", "-n", "*", "--output", "json"]).expect_code(0, "list"));
    let namespaces: std::collections::BTreeSet<&str> =
        all["items"].as_array().expect("items").iter().filter_map(|i| i["namespace"].as_str()).collect();
    assert_eq!(namespaces.into_iter().collect::<Vec<_>>(), ["billing", "cfgledger", "mcpgateway"]);
    // cfgledger's own namespace cannot be redefined by a file.
    std::fs::write(s.dir().join("own.toml"), "namespace = \"cfgledger\"\nmode = \"extend\"\n").expect("write");
    let run = s.fails_with(2, &["--catalog", "own.toml", "config", "list"]);
    assert!(run.stderr.contains("cfgledger's own settings are fixed"), "{}", run.stderr);
}

#[test]
fn diff_and_rollback_work_per_namespace_and_across_them() {
    let s = Store::with_builtin_catalog(&gateway_env(""));
    s.ok(&["config", "list"]);
    let head: u64 = json(&s.ok(&["config", "list", "--output", "json"]))["head"].as_u64().expect("a head");
    s.ok(&["config", "set", "LOG_LEVEL", "debug"]);
    s.ok(&["config", "set", "cfgledger:LOG_LEVEL", "warn"]);
    s.ok(&["config", "set", "APP_NAME", "renamed"]);
    let from = format!("seq:{head}");
    let keys = |out: &Value| -> Vec<String> {
        let mut keys: Vec<String> = out["changed"]
            .as_array()
            .into_iter()
            .chain(out["added"].as_array())
            .flatten()
            .filter_map(|l| l["key"].as_str().map(str::to_string))
            .collect();
        keys.sort();
        keys
    };
    let all = json(&s.ok(&["diff", "--from", &from, "--output", "json"]));
    assert_eq!(keys(&all), ["APP_NAME", "LOG_LEVEL", "cfgledger:LOG_LEVEL"], "{all}");
    let own = json(&s.ok(&["diff", "--from", &from, "-n", "cfgledger", "--output", "json"]));
    assert_eq!(keys(&own), ["cfgledger:LOG_LEVEL"], "{own}");

    // A rollback of the gateway's namespace leaves cfgledger's own change in place.
    s.ok(&["rollback", "--to", &from, "-n", "mcpgateway", "--reason", "undo the gateway's"]);
    assert_eq!(s.ok(&["config", "get", "LOG_LEVEL"]).stdout.trim(), "INFO");
    assert_eq!(s.ok(&["config", "get", "APP_NAME"]).stdout.trim(), "ContextForge");
    assert_eq!(s.ok(&["config", "get", "cfgledger:LOG_LEVEL"]).stdout.trim(), "warn");
    let bad = s.fails_with(2, &["diff", "--from", &from, "-n", "nope"]);
    assert!(bad.stderr.contains("unknown namespace"), "{}", bad.stderr);
}
