//! `cfgledger --server URL --token T config ...` against the real `serve` binary on a random port, checked
//! command by command against the same command on a second store that started identically (same `.env`,
//! same seqs): the same standard output, the same `error: ...` line and the same exit code. Also: remote
//! changes are audited as made from the CLI, and a missing token, a refused token or an unreachable
//! server fail with a clear message.

mod serving;
mod support;

use serde_json::{json, Value};
use serving::Server;
use std::path::Path;
use std::process::{Command, Stdio};
use support::{kinds, parse_json, Run, Store, ACTOR, BIN};

const JWT: &str = "0123456789abcdef0123456789abcdef-remote-secret";

fn env_text() -> String {
    format!("LOG_LEVEL=warn\nMAX_WORKERS=8\nCFGLEDGER_JWT_SECRET_KEY={JWT}\n")
}

/// Two stores that started identically: `local`, driven by the binary on its file, and `served`, driven
/// through a server. Remote commands run in `client`, an empty directory with no store.
struct Pair {
    local: Store,
    served: Store,
    server: Server,
    token: String,
    client: tempfile::TempDir,
    /// Flags the local runs need that the server was started with (a catalog file).
    local_flags: Vec<String>,
}

fn token(store: &Store, sub: &str, role: &str) -> String {
    store.ok(&["token", "issue", "--sub", sub, "--role", role]).stdout.trim().to_string()
}

impl Pair {
    fn start() -> Pair {
        Pair::start_with_catalog(None)
    }

    /// Both stores opened with the catalog file `catalog` (TOML), when given.
    fn start_with_catalog(catalog: Option<&str>) -> Pair {
        let local = Store::with_env(&env_text());
        let served = Store::with_env(&env_text());
        let mut local_flags = Vec::new();
        if let Some(text) = catalog {
            for dir in [local.dir(), served.dir()] {
                std::fs::write(dir.join("extra.toml"), text).expect("write the catalog");
            }
            // The suite's catalog and the file on top of it (a `--catalog` flag replaces CFGLEDGER_CATALOG).
            let suite = cfgledger_events::testing::SUITE_CATALOG_PATH.to_string();
            local_flags = vec!["--catalog".to_string(), suite, "--catalog".to_string(), "extra.toml".to_string()];
        }
        // Both stores are created (genesis and seeding, seqs 1 and 2) before anything else happens.
        support::run(local.cmd().args(&local_flags).args(["config", "get", "LOG_LEVEL"])).expect_code(0, "create");
        let token = token(&served, ACTOR, "platform_admin");
        let child = served
            .cmd()
            .args(&local_flags)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let client = tempfile::tempdir().expect("a client directory");
        Pair { local, served, server: Server::from_child(child), token, client, local_flags }
    }

    /// The binary in the client directory, with a clean environment and no flag at all.
    fn bare(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.client.path())
            .env_clear()
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.client.path());
        c
    }

    /// `args` through the server, with the platform admin's token.
    fn remote(&self, args: &[&str]) -> Run {
        support::run(self.bare().args(["--server", &self.server.url, "--token", &self.token]).args(args))
    }

    /// `args` in both modes; panics unless both exit with `code` and print the same standard output (after
    /// `normalize`) and the same error line. Returns the local run.
    fn same_with(&self, code: i32, args: &[&str], normalize: fn(&str) -> String) -> Run {
        let what = args.join(" ");
        let local = support::run(self.local.cmd().args(&self.local_flags).args(args))
            .expect_code(code, &format!("local {what}"));
        let remote = self.remote(args).expect_code(code, &format!("remote {what}"));
        assert_eq!(normalize(&remote.stdout), normalize(&local.stdout), "{what}: remote stdout differs from local");
        let error = |r: &Run| r.stderr.lines().find(|l| l.starts_with("error: ")).map(str::to_string);
        assert_eq!(error(&remote), error(&local), "{what}: remote error line differs from local");
        local
    }

    fn same(&self, code: i32, args: &[&str]) -> Run {
        self.same_with(code, args, str::to_string)
    }

    /// The same JSON in both modes, apart from what legitimately differs between two stores.
    fn same_json(&self, args: &[&str]) -> Value {
        parse_json(&self.same_with(0, args, |s| normalized(&parse_json(s)).to_string()).stdout)
    }

    /// The logs of both stores as kind and payload: equal when both saw the same changes.
    fn same_logs(&self) {
        let changes = |s: &Store| {
            s.log()
                .iter()
                .skip(1)
                .map(|e| (e["seq"].clone(), e["kind"].clone(), e["payload"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(changes(&self.served), changes(&self.local), "the two logs recorded different changes");
    }
}

/// `v` without the fields that differ between two identical stores: timestamps, the store id, hashes.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "updated_at" | "exported_at" | "store_id" | "head_hash" | "export_id")
                })
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

/// An import's output with the batch id (random per store) blanked.
fn without_batch_id(text: &str) -> String {
    text.lines()
        .map(|l| match l.split_once("as batch ") {
            Some((head, rest)) => format!("{head}as batch B{}", rest.find(' ').map_or("", |i| &rest[i..])),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_json(dir: &Path, name: &str, doc: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(doc).expect("encode")).expect("write a document");
}

#[test]
fn every_read_prints_the_same_as_in_local_mode() {
    let p = Pair::start();
    let table = p.same(0, &["config", "list"]).stdout;
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["LOG_LEVEL", "warn", "db", "enum/hot", "logging", "---"]),
        "{table}"
    );
    p.same(0, &["config", "list", "--category", "logging"]);
    let security = p.same(0, &["config", "list", "--category", "security"]).stdout;
    assert!(!security.contains(JWT), "a secret leaked: {security}");
    let unknown = p.same(2, &["config", "list", "--category", "nope"]);
    assert!(unknown.error_line().starts_with("error: unknown category nope; categories are "), "{unknown:?}");

    let list = p.same_json(&["config", "list", "--output", "json"]);
    assert_eq!(list["head"], 2);
    assert!(list["items"]
        .as_array()
        .is_some_and(|i| i.iter().any(|i| i["key"] == "LOG_LEVEL" && i["value"] == "warn")));
    let limits = p.same_json(&["config", "list", "--category", "limits", "--output", "json"]);
    assert!(limits["items"].as_array().is_some_and(|i| !i.is_empty() && i.iter().all(|i| i["category"] == "limits")));

    assert_eq!(p.same(0, &["config", "get", "LOG_LEVEL"]).stdout, "warn\n");
    assert_eq!(p.same(0, &["config", "get", "cfgledger:JWT_SECRET_KEY"]).stdout, "********\n");
    let item = p.same_json(&["config", "get", "MAX_WORKERS", "--output", "json"]);
    assert_eq!((item["value"].clone(), item["source"].clone(), item["seq"].clone()), (json!(8), json!("db"), json!(2)));
    assert_eq!(p.same(1, &["config", "get", "NO_SUCH_KEY"]).error_line(), "error: unknown key NO_SUCH_KEY");

    let left: Vec<_> = std::fs::read_dir(p.client.path()).expect("read the client directory").collect();
    assert!(left.is_empty(), "the remote mode created files where it ran: {left:?}");
}

#[test]
fn every_write_prints_the_same_as_in_local_mode() {
    let p = Pair::start();
    assert_eq!(p.same(0, &["config", "set", "MAX_WORKERS", "12"]).stdout, "MAX_WORKERS = 12 (seq 3)\n");
    assert_eq!(
        p.same(0, &["config", "set", "MAX_WORKERS", " 12 "]).stdout,
        "MAX_WORKERS unchanged: it is already 12\n"
    );
    // Text is parsed by the key's type in both modes.
    assert_eq!(p.same(0, &["config", "set", "UI_ENABLED", "yes"]).stdout, "UI_ENABLED = true (seq 4)\n");
    assert_eq!(p.same(0, &["config", "set", "CACHE_TTL", "90s"]).stdout, "CACHE_TTL = 1m30s (seq 5)\n");
    assert_eq!(
        p.same(0, &["config", "set", "FEDERATION_PEERS", "http://a.example, http://b.example", "--reason", "two"])
            .stdout,
        "FEDERATION_PEERS = [\"http://a.example\",\"http://b.example\"] (seq 6)\n"
    );
    assert_eq!(p.same(0, &["config", "set", "LOG_LEVEL", "DEBUG"]).stdout, "LOG_LEVEL = debug (seq 7)\n");
    assert_eq!(
        p.same(0, &["config", "set", "WEBHOOK_SECRET", "hook-secret-1"]).stdout,
        "WEBHOOK_SECRET = ******** (seq 8)\n"
    );
    assert_eq!(
        p.same(0, &["config", "set", "WEBHOOK_SECRET", "hook-secret-1"]).stdout,
        "WEBHOOK_SECRET unchanged: it is already ********\n"
    );

    for (key, value, message) in [
        ("MAX_WORKERS", "lots", r#"key MAX_WORKERS expects an integer from 1 to 256; got "lots""#),
        ("LOG_LEVEL", "loud", r#"key LOG_LEVEL expects one of trace, debug, info, warn, error; got "loud""#),
        ("UI_ENABLED", "maybe", r#"key UI_ENABLED expects a boolean (true or false); got "maybe""#),
        ("NO_SUCH_KEY", "1", "unknown key NO_SUCH_KEY"),
        ("AUTH_REQUIRED", "false", "key AUTH_REQUIRED is locked: it can only be seeded from the environment"),
        (
            "cfgledger:JWT_SECRET_KEY",
            "another-secret-0123456789abcdef-0123",
            "key cfgledger:JWT_SECRET_KEY is locked: it can only be seeded from the environment",
        ),
    ] {
        let run = p.same(1, &["config", "set", key, value]);
        assert_eq!(run.error_line(), format!("error: {message}"), "{key}={value}");
        assert_eq!(run.stdout, "", "{key}={value}");
    }
    assert!(p.same(1, &["config", "reset", "AUTH_REQUIRED"]).error_line().contains("AUTH_REQUIRED is locked"));
    assert_eq!(p.same(1, &["config", "reset", "NO_SUCH_KEY"]).error_line(), "error: unknown key NO_SUCH_KEY");

    // Locked attempts are recorded (seqs 9 to 11); the resets follow.
    assert_eq!(p.same(0, &["config", "reset", "MAX_WORKERS"]).stdout, "MAX_WORKERS = 4 (seq 12)\n");
    assert_eq!(p.same(0, &["config", "reset", "MAX_WORKERS"]).stdout, "MAX_WORKERS unchanged: it is already 4\n");

    p.same(0, &["config", "list"]);
    p.same_json(&["config", "list", "--output", "json"]);
    p.same_logs();
    let log = p.served.log();
    let changes = ["SettingChanged"; 6].into_iter().chain(["ChangeRejected"; 3]).chain(["SettingReset"]);
    assert_eq!(kinds(&log)[2..], changes.collect::<Vec<_>>());
    assert_eq!(log[5]["batch"]["reason"], "two", "--reason reaches the audit trail");

    // An application's restart-required key: the line names the value just stored, and a server shows it as
    // a one-shot command does (the application, not cfgledger's server, applies it when it restarts).
    assert_eq!(
        p.same(0, &["config", "set", "PRIMARY_WORKER_LOCK_PATH", "/run/gateway/leader.lock"]).stdout,
        "PRIMARY_WORKER_LOCK_PATH = /run/gateway/leader.lock (seq 13)\n"
    );
    let item = p.same_json(&["config", "get", "PRIMARY_WORKER_LOCK_PATH", "--output", "json"]);
    assert_eq!(
        (item["value"].clone(), item["pending_restart"].clone()),
        (json!("/run/gateway/leader.lock"), json!(false))
    );
}

#[test]
fn a_json_key_parses_the_command_line_text_the_same_way() {
    let catalog = "mode = \"extend\"\n\n[[settings]]\nkey = \"ROUTES\"\ntype = \"json\"\ncategory = \"custom\"\n\
                   reload = \"hot\"\ndescription = \"a JSON document\"\n";
    let p = Pair::start_with_catalog(Some(catalog));
    assert_eq!(p.same(0, &["config", "set", "ROUTES", r#"{"a": [1, 2]}"#]).stdout, "ROUTES = {\"a\":[1,2]} (seq 3)\n");
    assert_eq!(
        p.same(0, &["config", "set", "ROUTES", r#"{"a":[1,2]}"#]).stdout,
        "ROUTES unchanged: it is already {\"a\":[1,2]}\n"
    );
    let run = p.same(1, &["config", "set", "ROUTES", "not json"]);
    assert_eq!(run.error_line(), r#"error: key ROUTES expects a JSON document; got "not json""#);
    let item = p.same_json(&["config", "get", "ROUTES", "--output", "json"]);
    assert_eq!(item["value"], json!({"a": [1, 2]}), "stored as a document, not as a string");
    assert_eq!(p.same(0, &["config", "set", "ROUTES", r#""text""#]).stdout, "ROUTES = text (seq 4)\n");
}

#[test]
fn export_and_import_print_the_same_as_in_local_mode() {
    let p = Pair::start();
    p.same(0, &["config", "set", "LOG_LEVEL", "debug"]);
    p.same(0, &["config", "set", "WEBHOOK_SECRET", "hook-secret-2"]);

    let doc = p.same_json(&["config", "export"]);
    assert_eq!((doc["format"].clone(), doc["exported_by"].clone()), (json!("cfgledger-settings"), json!(ACTOR)));
    assert_eq!(doc["source"]["seq"], 4);
    assert_eq!(doc["settings"]["LOG_LEVEL"], "debug");
    assert!(doc["settings"].get("WEBHOOK_SECRET").is_none() && doc["settings"].get("JWT_SECRET_KEY").is_none());
    let count = doc["settings"].as_object().map_or(0, |s| s.len());

    let summary = p.same(0, &["config", "export", "--out", "exported.json"]).stdout;
    assert_eq!(summary, format!("exported {count} settings to exported.json (seq 4)\n"));
    let read =
        |dir: &Path| normalized(&parse_json(&std::fs::read_to_string(dir.join("exported.json")).expect("the export")));
    assert_eq!(read(p.client.path()), read(p.local.dir()));
    assert_eq!(read(p.local.dir()), normalized(&doc));

    // A document for both: one update (a conflict), one create, one locked key, the rest unchanged.
    let mut import = doc.clone();
    import.as_object_mut().map(|d| d.remove("digest"));
    import["settings"]["LOG_LEVEL"] = json!("error");
    import["settings"]["CACHE_TTL"] = json!("90s");
    import["settings"]["AUTH_REQUIRED"] = json!(false);
    let mut invalid = import.clone();
    invalid["settings"]["MAX_WORKERS"] = json!("lots");
    invalid["settings"]["NO_SUCH_KEY"] = json!(1);
    let mut tampered = doc.clone();
    tampered["settings"]["LOG_LEVEL"] = json!("trace");
    for dir in [p.local.dir(), p.client.path()] {
        write_json(dir, "import.json", &import);
        write_json(dir, "invalid.json", &invalid);
        write_json(dir, "tampered.json", &tampered);
        std::fs::write(dir.join("not.json"), "LOG_LEVEL=debug\n").expect("write");
    }

    let dry = p.same(0, &["config", "import", "import.json", "--dry-run"]).stdout;
    let row = |out: &str, key: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        dry.lines().next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["KEY", "ACTION", "CURRENT", "NEW", "NOTE"])
    );
    assert_eq!(row(&dry, "LOG_LEVEL").as_deref(), Some("LOG_LEVEL update debug error"));
    assert_eq!(row(&dry, "CACHE_TTL").as_deref(), Some("CACHE_TTL create 10m 1m30s"));
    assert_eq!(row(&dry, "AUTH_REQUIRED").as_deref(), Some("AUTH_REQUIRED locked true false"));
    // The export holds what was set (LOG_LEVEL, MAX_WORKERS), not the defaults: all but LOG_LEVEL are unchanged.
    let unchanged = count - 1;
    assert!(
        dry.ends_with(&format!(
            "plan: 1 create, 1 update, {unchanged} unchanged, 1 locked, 0 invalid; conflicts: LOG_LEVEL\ndry run: nothing applied\n"
        )),
        "{dry}"
    );
    assert_eq!(p.served.head(), 4, "a dry run appends nothing");

    let applied = p.same_with(0, &["config", "import", "import.json", "--reason", "sync"], without_batch_id).stdout;
    assert!(
        applied.lines().last().is_some_and(|l| l.starts_with("applied as batch ") && l.ends_with(" (seq 8)")),
        "{applied}"
    );
    // Nothing changes again, and nothing is appended: the locked key the file still names was recorded with
    // the batch that applied it, and the plan still shows it locked.
    let again = p.same_with(0, &["config", "import", "import.json"], without_batch_id).stdout;
    let last = again.lines().last().unwrap_or_default();
    assert_eq!(last, "nothing to apply; 1 locked key(s) left as they are, nothing recorded", "{again}");
    assert_eq!(row(&again, "AUTH_REQUIRED").as_deref(), Some("AUTH_REQUIRED locked true false"));
    assert_eq!(p.served.head(), 8, "importing the same file twice appends nothing");

    let refused = p.same(1, &["config", "import", "invalid.json"]);
    assert_eq!(refused.error_line(), "error: the import holds invalid entries; nothing was applied");
    assert_eq!(row(&refused.stdout, "MAX_WORKERS").as_deref(), Some("MAX_WORKERS invalid 8 lots"));
    assert!(refused.stdout.contains("unknown key NO_SUCH_KEY"), "{}", refused.stdout);
    assert!(refused.stdout.ends_with("locked, 2 invalid; conflicts: none\n"), "{}", refused.stdout);
    assert!(p.same(1, &["config", "import", "tampered.json"]).error_line().contains("digest does not match"));
    assert!(p
        .same(2, &["config", "import", "not.json"])
        .error_line()
        .starts_with("error: not.json is not a JSON document: "));
    // The cause is printed on its own line after the error.
    let missing = p.same(2, &["config", "import", "missing.json"]);
    assert_eq!(missing.error_line(), "error: cannot read missing.json");
    assert!(missing.stderr.contains("\n  caused by: No such file or directory"), "{}", missing.stderr);
    p.same(2, &["config", "import"]);

    p.same_json(&["config", "list", "--output", "json"]);
    p.same_logs();
    let cause = |s: &Store| s.log().last().map(|e| e["batch"]["cause"].clone()).unwrap_or_default();
    let digest = cause(&p.local)["digest"].clone();
    assert_eq!(cause(&p.local), json!({"type": "import", "digest": digest, "via": "config import"}));
    assert_eq!(cause(&p.served), json!({"type": "import", "digest": digest, "via": "POST /admin/config/import"}));
}

/// `v` with each sealed credential and what depends on the key (the digest, the encryption section)
/// blanked: two stores seal the same credential differently.
fn without_ciphertexts(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "digest" | "encryption"))
                .map(|(k, v)| match (k.as_str(), v) {
                    ("auth_value", Value::String(_)) => (k.clone(), json!("SEALED")),
                    _ => (k.clone(), without_ciphertexts(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_ciphertexts).collect()),
        other => other.clone(),
    }
}

/// Opens an MCP Gateway `auth_value` (base64url of nonce and AES-256-GCM ciphertext, key SHA-256 of
/// `secret`) into its headers.
fn open_gateway_value(secret: &str, value: &str) -> Value {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).expect("base64url without padding");
    let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(secret.as_bytes())).expect("a key");
    let plaintext = cipher.decrypt(Nonce::from_slice(&raw[..12]), &raw[12..]).expect("the secret opens it");
    serde_json::from_slice(&plaintext).expect("a JSON object of headers")
}

#[test]
fn registry_export_and_import_print_the_same_as_in_local_mode() {
    let p = Pair::start();
    let token = "remote-bearer-token-5a6b";
    let registry = json!({"entities": {
        "servers": [{"name": "s", "associated_tools": ["t1", "t2"], "associated_prompts": ["p"]}],
        "tools": [
            {"name": "t1", "url": "https://t/1", "auth_type": "bearer", "auth_token": token, "tags": ["a"]},
            {"name": "t2", "url": "https://t/2", "tags": ["b"]},
            {"name": "old", "is_active": false},
        ],
        "prompts": [{"name": "p", "template": "hi {{name}}"}],
    }});
    let mut conflicting = registry.clone();
    conflicting["entities"]["tools"][1]["url"] = json!("https://t/2-elsewhere");
    let mut broken = registry.clone();
    broken["entities"]["tools"][2] = json!({"url": "https://no/name"});
    for dir in [p.local.dir(), p.client.path()] {
        write_json(dir, "registry.json", &registry);
        write_json(dir, "conflicting.json", &conflicting);
        write_json(dir, "broken.json", &broken);
    }

    // Servers are listed first in the file; the plan is in dependency order.
    let dry = p.same(0, &["import", "registry.json", "--dry-run"]).stdout;
    let actions: Vec<String> =
        dry.lines().map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        actions,
        [
            "create tools/t1",
            "create tools/t2",
            "create tools/old",
            "create prompts/p",
            "create servers/s",
            "plan: 5",
            "dry run:"
        ],
        "{dry}"
    );
    assert!(dry.contains("plan: 5 create, 0 update, 0 unchanged, 0 skip, 0 rename, 0 conflict\n"), "{dry}");
    assert_eq!(p.served.head(), 2, "a dry run appends nothing");

    let broken_run = p.same(1, &["import", "broken.json"]);
    assert!(broken_run.error_line().contains("entity 2 in 'tools' missing required field: name"), "{broken_run:?}");
    assert_eq!(p.served.head(), 2, "an invalid file appends nothing");

    let applied = p.same_with(0, &["import", "registry.json", "--reason", "seed"], without_batch_id).stdout;
    assert!(without_batch_id(&applied).ends_with("imported as batch B (seq 8)"), "{applied}");
    let again = p.same_with(0, &["import", "registry.json"], without_batch_id).stdout;
    assert!(again.ends_with("nothing to import: the store already holds this document\n"), "{again}");
    assert_eq!(p.served.head(), 8, "importing the same file again appends nothing");

    let conflict = p.same(1, &["import", "conflicting.json", "--conflict-strategy", "fail"]);
    assert!(conflict.error_line().contains("tools/t2"), "{conflict:?}");
    assert!(conflict.stdout.contains("conflict   tools/t2  (url)"), "{}", conflict.stdout);
    let picked = p.same(0, &["import", "conflicting.json", "--include", "tools:t2", "--dry-run"]).stdout;
    assert!(picked.starts_with("update     tools/t2  (url)\nplan: 0 create, 1 update,"), "{picked}");
    p.same(2, &["import", "conflicting.json", "--conflict-strategy", "merge"]);
    assert_eq!(p.served.head(), 8);

    // Exports: the same counts and the same document, apart from what each store's key sealed.
    let summary = p.same(0, &["export", "--out", "reg.json", "--include-inactive"]).stdout;
    assert_eq!(
        summary,
        "exported 0 roots, 0 gateways, 3 tools, 0 resources, 1 prompts, 1 servers to reg.json (seq 8)\n"
    );
    let read = |dir: &Path, name: &str| parse_json(&std::fs::read_to_string(dir.join(name)).expect("the export"));
    let (local_doc, remote_doc) = (read(p.local.dir(), "reg.json"), read(p.client.path(), "reg.json"));
    assert_eq!(without_ciphertexts(&normalized(&remote_doc)), without_ciphertexts(&normalized(&local_doc)));
    assert!(!remote_doc.to_string().contains(token) && !local_doc.to_string().contains(token));
    p.same(0, &["export", "--out", "tagged.json", "--tags", "b", "--types", "tools"]);
    assert_eq!(read(p.client.path(), "tagged.json")["metadata"]["entity_counts"]["tools"], 1);
    assert!(p.same(2, &["export", "--types", "widgets"]).error_line().contains("widgets"));

    // MCP Gateway's layout, each under its own store's secret (the key file beside the database).
    p.same(0, &["export", "--format", "mcpgateway", "--out", "gw.json"]);
    for (dir, store) in [(p.local.dir(), &p.local), (p.client.path(), &p.served)] {
        let doc = read(dir, "gw.json");
        assert_eq!(doc["encryption_method"], "AES-256-GCM");
        let t1 = &doc["entities"]["tools"][0];
        assert_eq!((t1["name"].as_str(), t1["auth_type"].as_str()), (Some("t1"), Some("bearer")));
        let secret = std::fs::read_to_string(store.key_path()).expect("the key file");
        let headers = open_gateway_value(secret.trim(), t1["auth_value"].as_str().expect("a sealed value"));
        assert_eq!(headers, json!({"Authorization": format!("Bearer {token}")}));
        assert!(!doc.to_string().contains(token));
    }
    let refused = p
        .remote(&["export", "--format", "mcpgateway", "--target-secret-env", "GW"])
        .expect_code(2, "a target secret over HTTP");
    assert!(refused.error_line().contains("cannot be sent to --server"), "{refused:?}");

    let changes = |s: &Store| {
        s.log()
            .iter()
            .skip(1)
            .map(|e| without_ciphertexts(&json!([e["seq"], e["kind"], e["payload"]])))
            .collect::<Vec<_>>()
    };
    assert_eq!(changes(&p.served), changes(&p.local), "the two logs recorded different changes");
    let cause = |s: &Store| s.log().last().map(|e| e["batch"]["cause"]["via"].clone()).unwrap_or_default();
    assert_eq!((cause(&p.local), cause(&p.served)), (json!("import"), json!("POST /import")));
}

#[test]
fn remote_changes_are_audited_as_made_from_the_cli() {
    let p = Pair::start();
    // The environment variables work as the flags do.
    let run = support::run(p.bare().env("CFGLEDGER_SERVER", &p.server.url).env("CFGLEDGER_TOKEN", &p.token).args([
        "config",
        "set",
        "LOG_LEVEL",
        "error",
        "--reason",
        "quieter",
    ]))
    .expect_code(0, "set through the environment variables");
    assert_eq!(run.stdout, "LOG_LEVEL = error (seq 3)\n");
    assert!(!format!("{}{}", run.stdout, run.stderr).contains(&p.token), "the token was printed");

    let log = p.served.log();
    let last = log.last().expect("an event");
    assert_eq!(last["kind"], "SettingChanged");
    assert_eq!(last["actor"]["source"], "cli");
    assert_eq!(last["actor"]["name"], ACTOR);
    assert_eq!(last["actor"]["role"], "platform_admin");
    assert_eq!(last["batch"]["reason"], "quieter");
    assert_eq!(last["batch"]["cause"], json!({"type": "api", "method": "PUT", "path": "/admin/config/LOG_LEVEL"}));
}

#[test]
fn a_missing_or_refused_token_fails_with_a_clear_message() {
    let p = Pair::start();
    let url = &p.server.url;
    let run = support::run(p.bare().args(["--server", url, "config", "list"])).expect_code(1, "no token");
    assert_eq!(
        run.error_line(),
        format!(
            "error: the server at {url} requires a token: pass --token or set CFGLEDGER_TOKEN (authentication required: send Authorization: Bearer TOKEN)"
        )
    );
    assert_eq!(run.stdout, "");

    let forged = format!("{}x", p.token);
    let run = support::run(p.bare().args(["--server", url, "--token", &forged, "config", "set", "LOG_LEVEL", "error"]))
        .expect_code(1, "a forged token");
    assert!(run.error_line().starts_with(&format!("error: the server at {url} refused the token: ")), "{run:?}");
    assert!(!run.stderr.contains(&forged), "the token was printed: {}", run.stderr);

    let viewer = token(&p.served, "viewer-1", "viewer");
    let run = support::run(p.bare().args(["--server", url, "--token", &viewer, "config", "set", "LOG_LEVEL", "error"]))
        .expect_code(1, "a viewer's write");
    assert_eq!(
        run.error_line(),
        format!("error: the server at {url} refused: role viewer may not do this: it needs platform_admin")
    );
    let run = support::run(p.bare().args(["--server", url, "--token", &viewer, "config", "get", "LOG_LEVEL"]))
        .expect_code(0, "a viewer's read");
    assert_eq!(run.stdout, "warn\n");
    assert_eq!(kinds(&p.served.log()), ["StoreCreated", "EnvSeeded"], "nothing was written");
}

#[test]
fn an_unreachable_or_malformed_server_url_fails_with_a_clear_message() {
    let client = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let url = format!("http://127.0.0.1:{port}");
    let run_with = |server: &str| {
        support::run(
            Command::new(BIN)
                .current_dir(client.path())
                .env_clear()
                .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .args(["--server", server, "--token", "some-token", "config", "get", "LOG_LEVEL"]),
        )
    };
    let run = run_with(&url).expect_code(3, "nothing listens");
    assert!(run.error_line().starts_with(&format!("error: cannot reach the server at {url}: ")), "{run:?}");
    assert!(!run.stderr.contains("some-token"));

    let run = run_with("localhost:4444").expect_code(2, "no scheme");
    assert_eq!(
        run.error_line(),
        r#"error: --server expects a URL such as http://127.0.0.1:4444; got "localhost:4444""#
    );
    let run = run_with("https://127.0.0.1:1").expect_code(3, "https, nothing listening");
    assert!(run.error_line().starts_with("error: cannot reach the server at https://127.0.0.1:1: "), "{run:?}");
    assert!(std::fs::read_dir(client.path()).expect("read").next().is_none(), "no store was created");
}
