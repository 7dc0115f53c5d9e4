//! The master key's lifecycle through the real binary (issue 18, part 4): `key rotate` killed with SIGKILL
//! midway and run again to completion, with no plaintext in the store's files at any point; every credential
//! kind (basic auth, bearer, OAuth client secrets, query-parameter values, secret tool headers) and a secret
//! setting sealed under the new key afterwards; an export after a rotation imported into another store; a
//! rollback across a rotation; retirement; and the refusals of bad input with nothing appended. SQLite files
//! in a temporary directory, and a PostgreSQL database of its own (`tests/pg`) for the fleet's case, where the
//! secrets come from the environment.

mod pg;
mod serving;
mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use support::{contains_bytes, parse_json, parse_lines, run, Run, ACTOR, BIN};

/// Entities per credential kind in the kill test: enough batches of 5 that a kill lands midway.
const PER_KIND: usize = 60;
const HOOK: &str = "hook-plaintext-5d41402abc4b2a76";

/// A temporary directory with an empty `.env`, from which the binary runs with a scrubbed environment.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(".env"), "").expect("an empty .env");
        Ws { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sqlite(&self, name: &str) -> Db<'_> {
        Db { ws: self, url: format!("sqlite://{}", self.path(name).display()), env: Vec::new() }
    }
}

/// A store as the CLI sees it: its URL and the environment its commands run with.
struct Db<'a> {
    ws: &'a Ws,
    url: String,
    env: Vec<(String, String)>,
}

impl Db<'_> {
    fn with_env(&self, env: &[(&str, &str)]) -> Db<'_> {
        Db {
            ws: self.ws,
            url: self.url.clone(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.ws.dir.path())
            .env_clear()
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.ws.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["--db", &self.url, "--env-file", ".env", "--actor", ACTOR]);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args))
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0, &args.join(" "))
    }

    fn fails_with(&self, code: i32, args: &[&str]) -> Run {
        self.run(args).expect_code(code, &args.join(" "))
    }

    /// `import FILE` of a document written outside the store's directory (its credentials are plaintext).
    fn import(&self, doc: &Value) -> Run {
        let outside = tempfile::tempdir().expect("a temporary directory");
        let file = outside.path().join("registry.json");
        std::fs::write(&file, doc.to_string()).expect("write the document");
        self.ok(&["import", &file.display().to_string()])
    }

    fn head(&self) -> u64 {
        parse_lines(&self.ok(&["log", "--output", "json"]).stdout)
            .last()
            .and_then(|e| e["seq"].as_u64())
            .expect("a head")
    }

    fn status(&self) -> Value {
        parse_json(&self.ok(&["key", "list", "--output", "json"]).stdout)
    }

    /// The registry as `export` writes it: credentials sealed, as the store holds them.
    fn export(&self) -> Value {
        parse_json(&self.ok(&["export", "--out", "-", "--include-inactive"]).stdout)
    }
}

/// Every plaintext the fixture stores, so that the store's bytes can be searched for each.
fn fixture() -> (Value, Vec<String>) {
    let mut secrets = vec![HOOK.to_string()];
    let mut gateways = Vec::new();
    let mut tools = Vec::new();
    for i in 0..PER_KIND {
        let (pw, oauth, query, token, header) = (
            format!("basic-pw-plaintext-{i:04}"),
            format!("oauth-secret-plaintext-{i:04}"),
            format!("query-value-plaintext-{i:04}"),
            format!("bearer-plaintext-{i:04}"),
            format!("header-plaintext-{i:04}"),
        );
        gateways.push(json!({"name": format!("basic-{i}"), "url": format!("http://127.0.0.1:9/b{i}"),
            "auth_type": "basic", "auth_username": "svc", "auth_password": pw}));
        gateways.push(json!({"name": format!("oauth-{i}"), "url": format!("http://127.0.0.1:9/o{i}"),
            "auth_type": "oauth", "oauth_config": {"grant_type": "client_credentials", "client_id": "c",
            "client_secret": oauth, "token_url": "http://127.0.0.1:9/token"}}));
        gateways.push(json!({"name": format!("query-{i}"), "url": format!("http://127.0.0.1:9/q{i}"),
            "auth_type": "query_param", "auth_query_param_key": "api_key", "auth_query_param_value": query}));
        tools.push(json!({"name": format!("tool-{i}"), "url": format!("http://127.0.0.1:9/t{i}"),
            "integration_type": "REST", "request_type": "GET", "auth_type": "bearer", "auth_token": token,
            "headers": {"X-Api-Key": header, "X-Tenant": "acme"}}));
        secrets.extend([pw, oauth, query, token, header]);
    }
    (json!({"entities": {"gateways": gateways, "tools": tools}}), secrets)
}

/// Fails naming the first plaintext found in `bytes`.
fn assert_no_plaintext(bytes: &[u8], secrets: &[String], when: &str) {
    assert!(bytes.len() > 4096, "{when}: the store's bytes were read ({} bytes)", bytes.len());
    for s in secrets {
        assert!(!contains_bytes(bytes, s.as_bytes()), "{when}: {s} is in the store's files in plaintext");
    }
}

/// Every byte SQLite holds for the store at `path`: the database, its write-ahead log and shared memory.
fn sqlite_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

/// Every sealed value the export shows (credentials and sealed headers), as (where, ciphertext).
fn sealed_in_export(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, list) in doc["entities"].as_object().expect("entities by kind") {
        for e in list.as_array().expect("a list") {
            let name = e["name"].as_str().or_else(|| e["uri"].as_str()).unwrap_or("?");
            if let Some(v) = e["auth_value"].as_str() {
                out.push((format!("{kind}/{name} auth_value"), v.to_string()));
            }
            if let Some(h) = e["headers"].as_object() {
                for (header, v) in h {
                    if let Some(s) = v["cfgledger_sealed"].as_str() {
                        out.push((format!("{kind}/{name} header {header}"), s.to_string()));
                    }
                }
            }
        }
    }
    out
}

fn key_of(sealed: &str) -> &str {
    assert!(sealed.starts_with("cfgl1:"), "sealed under a master key: {sealed}");
    sealed.split(':').nth(1).expect("cfgl1:<key id>:<body>")
}

/// The data keys a SQLite store holds, by id, read from its table.
fn data_keys(path: &std::path::Path) -> std::collections::BTreeMap<String, cfgledger::store::DataKeyRow> {
    use cfgledger::store::EventStore;
    let store = cfgledger::store::sqlite::SqliteStore::open(path).expect("the store opens");
    store.data_keys().expect("the data keys read").into_iter().map(|r| (r.id.clone(), r)).collect()
}

/// Starts `key rotate` and SIGKILLs it once it has committed `batches` batches (as its progress lines say).
fn rotate_and_kill(db: &Db<'_>, args: &[&str], batches: usize) -> Vec<String> {
    let mut child = db.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("rotate starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("a progress line");
        let progress = line.contains("sealed again under key");
        seen.push(line);
        if progress && seen.iter().filter(|l| l.contains("sealed again under key")).count() >= batches {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    let status = child.wait().expect("the rotation ends");
    assert!(!status.success(), "the rotation was killed, not finished: {seen:?}");
    seen
}

#[test]
fn a_rotation_killed_midway_resumes_to_completion_with_no_plaintext_at_rest() {
    let ws = Ws::new();
    let db = ws.sqlite("c.db");
    let (doc, secrets) = fixture();
    db.import(&doc);
    db.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let old = db.status()["current"].as_str().expect("a current key").to_string();
    let total = db.status()["values"].as_u64().expect("a count");
    // Four credentials per index, one header, the setting, and the generated signing key of a new store.
    assert!(total >= (PER_KIND * 5 + 1) as u64, "{total} sealed values");
    assert_no_plaintext(&sqlite_bytes(&ws.path("c.db")), &secrets, "before the rotation");

    let progress = rotate_and_kill(&db, &["key", "rotate", "--generate", "--batch", "5", "--reason", "yearly"], 3);
    assert!(progress.iter().any(|l| l.contains("left")), "{progress:?}");
    let midway = db.status();
    let new = midway["current"].as_str().expect("a current key").to_string();
    assert_ne!(new, old, "the new key was recorded before the batches");
    let behind = midway["behind"].as_u64().expect("behind");
    assert!(behind > 0 && behind < total, "killed midway: {behind} of {total} values still under {old}");
    assert_no_plaintext(&sqlite_bytes(&ws.path("c.db")), &secrets, "after the kill");
    let key_file = std::fs::read_to_string(ws.path("c.db.key")).expect("the key file");
    assert_eq!(key_file.lines().count(), 2, "the new secret was added above the old one");

    // Midway: verify refuses, and the old key cannot be retired while it seals something.
    let refused = db.fails_with(1, &["key", "verify"]);
    assert!(refused.stderr.contains("run cfgledger key rotate"), "{}", refused.stderr);
    let head = db.head();
    let refused = db.fails_with(1, &["key", "retire", &old]);
    assert!(
        refused.stderr.contains("still seals") && refused.stderr.contains("finish the rotation"),
        "{}",
        refused.stderr
    );
    assert_eq!(db.head(), head, "a refused retirement appends nothing");

    // The rerun finishes the job; nothing is left under the old key.
    let resumed = db.ok(&["key", "rotate", "--batch", "50"]);
    assert!(resumed.stdout.contains(&format!("resumed the rotation to key {new}")), "{}", resumed.stdout);
    let done = db.ok(&["key", "verify", "--output", "json"]);
    let done = parse_json(&done.stdout);
    assert_eq!(done["behind"], 0, "{done}");
    assert_eq!(done["values"].as_u64(), Some(total), "{done}");
    assert_no_plaintext(&sqlite_bytes(&ws.path("c.db")), &secrets, "after the rotation");

    // Every credential kind, and every sealed header, is stored under a data key (one per entity), and
    // every data key is wrapped under the new key (the rows of the store's table, read directly); `key
    // verify` above opened each value. The export seals them under the new key itself.
    let rows = data_keys(&ws.path("c.db"));
    assert!(rows.len() > PER_KIND * 4, "{} data keys", rows.len());
    for row in rows.values() {
        assert_eq!(row.master_key, new, "data key {} of {} is wrapped under the new key", row.id, row.subject);
        assert_eq!(key_of(&row.wrapped), new, "data key {}'s wrapping names the new key", row.id);
    }
    let export = db.export();
    let sealed = sealed_in_export(&export);
    assert_eq!(sealed.len(), PER_KIND * 5, "{} sealed values in the export", sealed.len());
    for (place, text) in &sealed {
        assert_eq!(key_of(text), new, "{place} is under the new key");
    }
    assert_eq!(export["encryption"]["key_id"], new.as_str(), "the export names the key its values are under");

    // The values still open: the secret setting renders, and the log's resealed events hold no plaintext.
    let rendered =
        db.ok(&["render", "--namespace", "mcpgateway", "--include-secrets", "--reason", "check the rotation"]);
    assert!(rendered.stdout.contains(HOOK), "the secret setting opens under the new key");
    let log = db.ok(&["log", "--output", "json"]).stdout;
    // The rotation is one event; the values under data keys moved with their keys' new wrapping.
    assert!(log.contains("MasterKeyRotated"));

    // Retiring the old key: it leaves the key file, and the chain still verifies.
    db.ok(&["key", "retire", &old, "--reason", "rotation done"]);
    let key_file = std::fs::read_to_string(ws.path("c.db.key")).expect("the key file");
    assert_eq!(key_file.lines().count(), 1, "the retired key's secret left the key file");
    let status = db.status();
    let states: Vec<(&str, &str)> = status["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["key_id"].as_str().expect("id"), k["state"].as_str().expect("state")))
        .collect();
    assert_eq!(states, vec![(old.as_str(), "retired"), (new.as_str(), "current")]);
    db.ok(&["verify"]);
    db.ok(&["key", "verify"]);
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_appended() {
    let ws = Ws::new();
    let db = ws.sqlite("c.db");
    db.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let current = db.status()["current"].as_str().expect("a current key").to_string();
    let head = db.head();

    let unknown = db.fails_with(1, &["key", "retire", "0123456789abcdef"]);
    assert!(unknown.stderr.contains("no master key 0123456789abcdef"), "{}", unknown.stderr);
    let current_refused = db.fails_with(1, &["key", "retire", &current]);
    assert!(current_refused.stderr.contains("is the current key"), "{}", current_refused.stderr);
    let no_such = db.fails_with(2, &["key", "rotate", "--to", "feedfacefeedface"]);
    assert!(no_such.stderr.contains("holds no secret for key feedfacefeedface"), "{}", no_such.stderr);
    let nothing = db.ok(&["key", "rotate"]);
    assert!(nothing.stdout.contains("nothing to do"), "{}", nothing.stdout);
    let remote = db.fails_with(2, &["--server", "http://127.0.0.1:9", "key", "list"]);
    assert!(remote.stderr.contains("key"), "{}", remote.stderr);
    let generate = db.with_env(&[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "a-secret-given-in-the-environment-0123")]);
    let refused = generate.run(&["key", "rotate", "--generate"]);
    assert_ne!(refused.code, Some(0), "--generate is for a key file: {refused:?}");
    assert_eq!(db.head(), head, "nothing was appended");
    assert_eq!(db.status()["current"].as_str(), Some(current.as_str()));

    // A retired key can never be rotated back to.
    db.ok(&["key", "rotate", "--generate"]);
    db.ok(&["key", "retire", &current]);
    let head = db.head();
    let back = db.fails_with(1, &["key", "retire", &current]);
    assert!(back.stderr.contains("retired already"), "{}", back.stderr);
    assert_eq!(db.head(), head);
}

#[test]
fn an_export_after_a_rotation_imports_into_another_store_and_a_rollback_crosses_it() {
    let ws = Ws::new();
    let a = ws.sqlite("a.db");
    let doc = json!({"entities": {"gateways": [
        {"name": "gw-oauth", "url": "http://127.0.0.1:9/o", "auth_type": "oauth",
         "oauth_config": {"grant_type": "client_credentials", "client_id": "c",
                          "client_secret": "oauth-plaintext-export", "token_url": "http://127.0.0.1:9/token"}},
        {"name": "gw-query", "url": "http://127.0.0.1:9/q", "auth_type": "query_param",
         "auth_query_param_key": "api_key", "auth_query_param_value": "query-plaintext-export"}]}});
    a.import(&doc);
    a.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let before = a.head();
    let old_file = ws.path("before-rotation.json");
    a.ok(&["export", "--out", &old_file.display().to_string()]);
    a.ok(&["key", "rotate", "--generate"]);
    // A file this store exported before the rotation names its old key, which its ring still holds.
    a.ok(&["import", &old_file.display().to_string()]);
    a.ok(&["key", "verify"]);
    let new = a.status()["current"].as_str().expect("a current key").to_string();

    // The export names the new key; another store imports it with A's (new) secret.
    let file = ws.path("export.json");
    a.ok(&["export", "--out", &file.display().to_string()]);
    let secret_a = std::fs::read_to_string(ws.path("a.db.key")).expect("A's key file");
    let secret_a = secret_a.lines().next().expect("the newest secret").to_string();
    let b_store = ws.sqlite("b.db");
    let b = b_store.with_env(&[("SOURCE_SECRET", &secret_a)]);
    b.ok(&["import", &file.display().to_string(), "--source-secret-env", "SOURCE_SECRET"]);
    let exported_b = b.export();
    let sealed_b = sealed_in_export(&exported_b);
    assert_eq!(sealed_b.len(), 2);
    let b_key = b.status()["current"].as_str().expect("B's key").to_string();
    assert!(sealed_b.iter().all(|(_, s)| key_of(s) == b_key), "B seals under its own key: {sealed_b:?}");
    assert!(data_keys(&ws.path("b.db")).values().all(|r| r.master_key == b_key), "B's data keys are its own");
    b.ok(&["key", "verify"]);

    // A rollback to before the rotation brings the old ciphertexts forward: no step for an unchanged
    // value, nothing left under the old key.
    a.ok(&["config", "set", "WEBHOOK_SECRET", "a-newer-webhook-secret"]);
    a.ok(&["rollback", "--to", &format!("seq:{before}"), "--reason", "undo"]);
    a.ok(&["key", "verify"]);
    let rendered = a.ok(&["render", "--namespace", "mcpgateway", "--include-secrets", "--reason", "check"]);
    assert!(rendered.stdout.contains(HOOK), "the rolled-back value opens under key {new}");
}

#[test]
fn a_postgresql_fleet_rotates_with_secrets_from_the_environment() {
    let pgdb = pg::TestDb::new();
    let ws = Ws::new();
    let old_secret = "pg-old-master-secret-0f1e2d3c4b5a6978";
    let new_secret = "pg-new-master-secret-8796a5b4c3d2e1f0";
    let base = Db { ws: &ws, url: pgdb.url(), env: Vec::new() };
    let old = base.with_env(&[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", old_secret)]);
    let (doc, secrets) = fixture();
    old.import(&doc);
    old.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let old_key = old.status()["current"].as_str().expect("a key").to_string();

    // Step 1: every instance gets the new secret, the old one as previous; the log still seals with the old.
    let both = base.with_env(&[
        ("CFGLEDGER_AUTH_ENCRYPTION_SECRET", new_secret),
        ("CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS", old_secret),
    ]);
    let status = both.status();
    assert_eq!(status["current"].as_str(), Some(old_key.as_str()));
    assert!(status["keys"].as_array().expect("keys").iter().any(|k| k["state"] == "candidate"), "{status}");

    // Step 2: the rotation, killed midway and resumed.
    rotate_and_kill(&both, &["key", "rotate", "--batch", "5"], 2);
    both.ok(&["key", "rotate", "--batch", "100"]);
    both.ok(&["key", "verify"]);
    let new_key = both.status()["current"].as_str().expect("a key").to_string();
    assert_ne!(new_key, old_key);
    let wrapped_by: std::collections::BTreeMap<String, String> = pgdb
        .client()
        .query("SELECT id, master_key FROM data_keys", &[])
        .expect("the data keys")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(wrapped_by.len() > PER_KIND * 4, "{} data keys", wrapped_by.len());
    assert!(wrapped_by.values().all(|k| k == &new_key), "every data key is wrapped under the new key");
    for (place, text) in sealed_in_export(&both.export()) {
        assert_eq!(key_of(&text), new_key, "{place}");
    }

    // An instance still configured with the old secret only is refused, naming the key it lacks.
    let stale = old.fails_with(2, &["config", "get", "WEBHOOK_SECRET"]);
    assert!(stale.stderr.contains(&new_key), "{}", stale.stderr);

    // Step 3: retire; the chain verifies, and no row holds a plaintext.
    both.ok(&["key", "retire", &old_key]);
    both.ok(&["verify"]);
    let mut client = pgdb.client();
    let mut bytes = Vec::new();
    for row in client.query("SELECT envelope FROM events", &[]).expect("events") {
        bytes.extend(row.get::<_, Vec<u8>>(0));
    }
    for row in client.query("SELECT state FROM snapshots", &[]).unwrap_or_default() {
        bytes.extend(row.try_get::<_, Vec<u8>>(0).unwrap_or_default());
    }
    assert_no_plaintext(&bytes, &secrets, "in PostgreSQL's rows");
}

#[test]
fn a_running_server_follows_a_rotation_made_by_the_cli() {
    let ws = Ws::new();
    let old_secret = "serve-old-master-secret-0f1e2d3c4b5a6978";
    let new_secret = "serve-new-master-secret-8796a5b4c3d2e1f0";
    let store = ws.sqlite("c.db");
    let old = store.with_env(&[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", old_secret)]);
    old.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let old_key = old.status()["current"].as_str().expect("a key").to_string();

    // The server runs with the ring (new secret, old one as previous) before the rotation.
    let ring = store.with_env(&[
        ("CFGLEDGER_AUTH_ENCRYPTION_SECRET", new_secret),
        ("CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS", old_secret),
    ]);
    let child = ring
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let server = serving::Server::from_child(child);
    let token = ring.ok(&["token", "issue", "--sub", "ops", "--role", "platform_admin"]).stdout.trim().to_string();
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", server.url.as_str(), "--token", token.as_str()];
        all.extend_from_slice(args);
        ring.ok(&all)
    };
    // Before the rotation the log names the old key: the server seals under it.
    remote(&["config", "set", "WEBHOOK_SECRET", "set-through-the-server-before"]);
    assert_eq!(ring.status()["current"].as_str(), Some(old_key.as_str()));
    ring.ok(&["key", "verify"]);

    ring.ok(&["key", "rotate"]);
    let new_key = ring.status()["current"].as_str().expect("a key").to_string();
    assert_ne!(new_key, old_key);

    // The server follows the log: it opens the resealed value, and seals its next write under the new key.
    let rendered = remote(&["render", "--namespace", "mcpgateway", "--include-secrets", "--reason", "check"]);
    assert!(rendered.stdout.contains("set-through-the-server-before"), "{}", rendered.stdout);
    let wrote = support::wait_for(std::time::Duration::from_secs(10), || {
        ring.run(&["--server", &server.url, "--token", &token, "config", "set", "WEBHOOK_SECRET", "after"]).code
            == Some(0)
    });
    assert!(wrote, "the server takes a write of a secret after the rotation");
    let status = ring.ok(&["key", "verify", "--output", "json"]);
    assert_eq!(parse_json(&status.stdout)["behind"], 0, "{}", status.stdout);
    ring.ok(&["key", "retire", &old_key]);
    let rendered = remote(&["render", "--namespace", "mcpgateway", "--include-secrets", "--reason", "check"]);
    assert!(rendered.stdout.contains("after"), "{}", rendered.stdout);
}

/// The ciphertexts the log holds for `subject` (its events' envelopes), with the data keys they name.
fn logged_data_keys(path: &std::path::Path, subject: &str) -> Vec<String> {
    use cfgledger::store::{EventStore, LogQuery, SubjectMatch};
    let store = cfgledger::store::sqlite::SqliteStore::open(path).expect("the store opens");
    let q = LogQuery { subject: Some(SubjectMatch::Exact(subject.to_string())), limit: 1000, ..Default::default() };
    let mut ids: Vec<String> = store
        .query(&q)
        .expect("the log reads")
        .iter()
        .flat_map(|r| {
            let text = String::from_utf8_lossy(&r.envelope).to_string();
            text.split("cfgl2:").skip(1).filter_map(|t| t.split(':').next().map(str::to_string)).collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn a_shredded_secret_is_unreadable_everywhere_while_the_chain_verifies_and_the_audit_keeps_every_change() {
    let ws = Ws::new();
    let db = ws.sqlite("c.db");
    let doc = json!({"entities": {"gateways": [
        {"name": "gw-leaked", "url": "http://127.0.0.1:9/l", "auth_type": "bearer", "auth_token": "leaked-bearer-plaintext"},
        {"name": "gw-kept", "url": "http://127.0.0.1:9/k", "auth_type": "bearer", "auth_token": "kept-bearer-plaintext"}]}});
    db.import(&doc);
    db.ok(&["config", "set", "WEBHOOK_SECRET", "first-hook-plaintext"]);
    let before = db.head();
    db.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    let hook_keys = logged_data_keys(&ws.path("c.db"), "mcpgateway:WEBHOOK_SECRET");
    assert!(!hook_keys.is_empty(), "the hook's values are sealed under data keys");
    let held = data_keys(&ws.path("c.db"));
    assert!(hook_keys.iter().all(|id| held.contains_key(id)), "the store holds them before the shred");

    // Refusals first: each clear, each appending nothing.
    let head = db.head();
    let no_reason = db.fails_with(2, &["key", "shred", "mcpgateway:WEBHOOK_SECRET"]);
    assert!(no_reason.stderr.contains("--reason"), "{}", no_reason.stderr);
    let unknown = db.fails_with(1, &["key", "shred", "NO_SUCH_KEY", "--reason", "x"]);
    assert!(unknown.stderr.contains("NO_SUCH_KEY"), "{}", unknown.stderr);
    let kind = db.fails_with(2, &["key", "shred", "widgets/x", "--reason", "x"]);
    assert!(kind.stderr.contains("not an entity kind"), "{}", kind.stderr);
    let nothing = db.fails_with(1, &["key", "shred", "LOG_LEVEL", "--reason", "x"]);
    assert!(nothing.stderr.contains("nothing sealed for mcpgateway:LOG_LEVEL"), "{}", nothing.stderr);
    let blank = db.fails_with(2, &["key", "shred", "WEBHOOK_SECRET", "--reason", " "]);
    assert!(blank.stderr.contains("needs a reason"), "{}", blank.stderr);
    assert_eq!(db.head(), head, "a refused shred appends nothing");

    // The shred: the current value is gone, and every data key of the subject with it.
    let shred = db.ok(&["key", "shred", "WEBHOOK_SECRET", "--reason", "leaked in a ticket", "--output", "json"]);
    let report = parse_json(&shred.stdout);
    assert_eq!(report["subject"], "mcpgateway:WEBHOOK_SECRET", "{report}");
    assert_eq!(report["removed_current"], true, "{report}");
    let destroyed: Vec<String> =
        report["data_keys"].as_array().expect("ids").iter().map(|v| v.as_str().expect("an id").to_string()).collect();
    assert_eq!(destroyed, hook_keys, "every data key the hook's history names was destroyed");
    assert_eq!(report["still_readable"], json!([]), "nothing of its history is under a master key directly");
    let held = data_keys(&ws.path("c.db"));
    assert!(hook_keys.iter().all(|id| !held.contains_key(id)), "no row of them is left");
    assert!(!held.is_empty(), "the other subjects' data keys stay");

    // The chain still verifies; the key check passes; the ciphertexts are still in the log, unopened.
    db.ok(&["verify"]);
    db.ok(&["key", "verify"]);
    assert_eq!(logged_data_keys(&ws.path("c.db"), "mcpgateway:WEBHOOK_SECRET"), hook_keys);
    let rendered = db.ok(&["render", "--include-secrets", "--reason", "after the shred"]);
    assert!(!rendered.stdout.contains(HOOK) && !rendered.stdout.contains("first-hook"), "{}", rendered.stdout);
    let listed = db.status();
    let shredded = listed["shredded"].as_array().expect("shredded subjects");
    assert_eq!(shredded.len(), 1, "{listed}");
    assert_eq!(shredded[0]["subject"], "mcpgateway:WEBHOOK_SECRET");

    // No path can open the past values: a rollback to before the shred is refused, naming why.
    let head = db.head();
    let back = db.fails_with(1, &["rollback", "--to", &format!("seq:{before}"), "--reason", "bring it back"]);
    assert!(back.stderr.contains("shredded"), "{}", back.stderr);
    assert_eq!(db.head(), head, "the refused rollback appended nothing");

    // The audit still shows each change, and the shred itself, with its reason and never a value.
    let audit = parse_json(&db.ok(&["audit", "--key", "WEBHOOK_SECRET", "--output", "json"]).stdout);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect();
    assert_eq!(actions, ["shredded", "reset", "set", "set"], "{audit}");
    let text = audit.to_string();
    assert!(text.contains("leaked in a ticket") && !text.contains(HOOK), "{audit}");

    // An entity's credentials: gone from the current state and from the history, the other gateway kept.
    db.ok(&["key", "shred", "gateways/gw-leaked", "--reason", "token leaked"]);
    let export = db.export();
    let gateways = export["entities"]["gateways"].as_array().expect("gateways");
    let leaked = gateways.iter().find(|g| g["name"] == "gw-leaked").expect("the entity stays");
    assert!(leaked.get("auth_value").is_none() && leaked.get("auth_type").is_none(), "{leaked}");
    let kept = gateways.iter().find(|g| g["name"] == "gw-kept").expect("the other gateway");
    assert!(kept["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl1:")), "{kept}");
    for id in logged_data_keys(&ws.path("c.db"), "gateways/gw-leaked") {
        assert!(!data_keys(&ws.path("c.db")).contains_key(&id), "gw-leaked's data key {id} is destroyed");
    }
    let refused = db.fails_with(1, &["rollback", "--to", &format!("seq:{before}"), "--keys", "gateways/gw-leaked"]);
    assert!(refused.stderr.contains("shredded"), "{}", refused.stderr);
    // What is left opens: the kept gateway's credentials through a plaintext export.
    db.ok(&["key", "verify"]);

    // A backup taken now carries the data keys that are left, not the destroyed ones; restored, the store
    // opens what is left and verifies.
    db.ok(&["log", "export", "--out", "backup.jsonl"]);
    let backup = std::fs::read_to_string(ws.path("backup.jsonl")).expect("the backup");
    assert!(hook_keys.iter().all(|id| !backup.contains(&format!("\"id\":\"{id}\""))), "no destroyed key in it");
    let restored = ws.sqlite("restored.db");
    restored.ok(&["log", "import", "backup.jsonl"]);
    std::fs::copy(ws.path("c.db.key"), ws.path("restored.db.key")).expect("copy the key file");
    restored.ok(&["verify"]);
    restored.ok(&["key", "verify"]);
    // A rotation after the shreds moves what is left, and the shredded subjects stay shredded.
    db.ok(&["key", "rotate", "--generate"]);
    db.ok(&["key", "verify"]);
    assert_eq!(db.status()["shredded"].as_array().map(Vec::len), Some(2));
    // The subject can hold a secret again, under a new data key.
    db.ok(&["config", "set", "WEBHOOK_SECRET", "a-new-hook-after-the-shred"]);
    let rendered = db.ok(&["render", "--include-secrets", "--reason", "the new value"]);
    assert!(rendered.stdout.contains("a-new-hook-after-the-shred"), "{}", rendered.stdout);
    let now = logged_data_keys(&ws.path("c.db"), "mcpgateway:WEBHOOK_SECRET");
    assert_eq!(now.len(), hook_keys.len() + 1, "one new data key: {now:?}");
    assert_no_plaintext(&sqlite_bytes(&ws.path("c.db")), &[HOOK.to_string()], "after the shred");
}

#[test]
fn a_shred_is_refused_while_a_pending_request_holds_the_secret() {
    let ws = Ws::new();
    let db = ws.sqlite("c.db");
    db.ok(&["config", "set", "WEBHOOK_SECRET", HOOK]);
    // Scheduled far ahead, it stays pending with its sealed value.
    let at = "2099-01-01T00:00:00Z";
    db.ok(&["request", "propose", "--set", "WEBHOOK_SECRET=a-proposed-hook", "--at", at, "--reason", "new hook"]);
    let head = db.head();
    let refused = db.fails_with(1, &["key", "shred", "WEBHOOK_SECRET", "--reason", "leaked"]);
    assert!(refused.stderr.contains("change request 1"), "{}", refused.stderr);
    assert_eq!(db.head(), head, "nothing appended");
    db.ok(&["request", "withdraw", "1"]);
    db.ok(&["key", "shred", "WEBHOOK_SECRET", "--reason", "leaked"]);
    db.ok(&["verify"]);
}

#[test]
fn a_shred_by_one_instance_closes_the_history_for_another_that_had_opened_it() {
    use cfgledger::store::StoreUrl;
    use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
    use cfgledger_events::{Actor, Cause, Source};
    let ctx = || WriteContext {
        actor: Actor { name: "fleet-test".into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "test".into() },
        reason: None,
        bypass: false,
    };
    let pgdb = pg::TestDb::new();
    let open = || {
        let mut opts =
            OpenOptions::new(StoreUrl::parse(&pgdb.url()).expect("a URL"), cfgledger_events::testing::suite_catalog());
        opts.env_file = EnvFileChoice::None;
        opts.process_env = std::collections::BTreeMap::from([(
            "CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(),
            "shred-fleet-secret-5f4dcc3b5aa765d6".to_string(),
        )]);
        Ledger::open(opts).expect("the store opens").0
    };
    let a = open();
    let b = open();
    let set = |l: &Ledger, v: &str| {
        let cmd = cfgledger_events::Command::Set {
            key: "mcpgateway:WEBHOOK_SECRET".into(),
            value: cfgledger_events::Input::Text(v.into()),
        };
        l.execute(cmd, ctx()).expect("the set commits")
    };
    set(&a, "fleet-hook-plaintext-1");
    let old = a.snapshot().state.get("mcpgateway:WEBHOOK_SECRET").map(|e| e.value.clone()).expect("a value");
    let cfgledger_events::event::StoredValue::Sealed(old) = old else { panic!("sealed: {old:?}") };
    // B reads the value, so its process holds the data key unwrapped.
    b.catch_up().expect("B catches up");
    assert_eq!(
        b.reveal("WEBHOOK_SECRET").expect("B opens it").as_deref().map(String::as_str),
        Some("fleet-hook-plaintext-1")
    );
    let open_with = |l: &Ledger, text: &str| {
        cfgledger_events::Sealer::open(l.secret_box(), "mcpgateway:WEBHOOK_SECRET", text).map(|p| p.to_vec())
    };
    assert!(open_with(&b, &old).is_ok());

    // A shreds it; B, once it has read the log, cannot open the old ciphertext either.
    cfgledger::usecase::keys::shred(&a, "WEBHOOK_SECRET", "leaked", ctx()).expect("shred");
    b.catch_up().expect("B catches up");
    let e = open_with(&b, &old).expect_err("the old value no longer opens on B");
    assert!(e.contains("shredded"), "{e}");
    let e = open_with(&a, &old).expect_err("nor on A");
    assert!(e.contains("shredded"), "{e}");
    // B writes the subject again: under a new data key, which A opens.
    set(&b, "fleet-hook-plaintext-2");
    a.catch_up().expect("A catches up");
    assert_eq!(
        a.reveal("WEBHOOK_SECRET").expect("A opens it").as_deref().map(String::as_str),
        Some("fleet-hook-plaintext-2")
    );
    cfgledger::usecase::verify::verify(a.store().as_ref(), None).expect("the chain verifies");
}
