//! Cloning a store (issue 7) through the real binary: the replay clone (`clone`: the source's state as of a
//! point, secrets sealed again under the target's key, exclusions and overrides, one batch whose cause names
//! the source), the verbatim mirror (`clone --mirror`: chunked, resumable after a SIGKILL, refusing what is
//! not a prefix), the JSON-lines backup (`log export` / `log import`), and the refusals of bad input. Stores
//! are SQLite files in a temporary directory and, where the brief asks for it, PostgreSQL databases of their
//! own (`tests/pg`).

mod pg;
mod support;

use cfgledger::store::{sqlite::SqliteStore, EventStore, StoreUrl};
use cfgledger::{EnvFileChoice, Ledger, OpenOptions};
use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::{build_batch, Actor, Batch, Cause, Event, Head};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{contains_bytes, parse_json, parse_lines, run, Run, ACTOR, BIN};

/// A bearer token and a webhook secret: plaintexts that must never be written anywhere.
const TOKEN: &str = "tok-plaintext-2b7e151628aed2a6";
const HOOK: &str = "hook-plaintext-abf7158809cf4f3c";
/// The secret of PostgreSQL targets (a store there has no key file).
const PG_SECRET: &str = "pg-target-secret-762e5a1f03c94b8d";

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

    /// A SQLite store in this directory, opened by its key file.
    fn sqlite(&self, name: &str) -> Db<'_> {
        Db { ws: self, url: format!("sqlite://{}", self.path(name).display()), env: Vec::new() }
    }

    /// A PostgreSQL store, opened with `secret`.
    fn pg(&self, db: &pg::TestDb, secret: &str) -> Db<'_> {
        Db { ws: self, url: db.url(), env: vec![("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), secret.into())] }
    }

    /// The binary with PATH and HOME only, plus `env`.
    fn cmd(&self, env: &[(String, String)]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["--env-file", ".env", "--actor", ACTOR]);
        c
    }

    fn run(&self, env: &[(String, String)], args: &[&str]) -> Run {
        run(self.cmd(env).args(args))
    }

    /// `clone --from FROM --to TO EXTRA...`, in the environment of the target.
    fn clone(&self, from: &Db, to: &Db, extra: &[&str]) -> Run {
        self.clone_with(&to.env, from, to, extra)
    }

    fn clone_with(&self, env: &[(String, String)], from: &Db, to: &Db, extra: &[&str]) -> Run {
        let mut args = vec!["clone", "--from", from.url.as_str(), "--to", to.url.as_str()];
        args.extend_from_slice(extra);
        self.run(env, &args)
    }

    /// Every byte of every file under the directory.
    fn all_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).expect("read the directory").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write a file");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read a file")
    }
}

/// A store as the CLI sees it: its URL and the environment its commands need.
struct Db<'a> {
    ws: &'a Ws,
    url: String,
    env: Vec<(String, String)>,
}

impl Db<'_> {
    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.ws.cmd(&self.env).arg("--db").arg(&self.url).args(args))
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0, &format!("{} {}", self.url, args.join(" ")))
    }

    fn set(&self, key: &str, value: &str) {
        self.ok(&["config", "set", key, value]);
    }

    /// `import FILE` of a registry document written to a directory outside the stores' one (its
    /// credentials are plaintext).
    fn import(&self, doc: &Value) -> Run {
        let outside = tempfile::tempdir().expect("a temporary directory");
        let file = outside.path().join("registry.json");
        std::fs::write(&file, doc.to_string()).expect("write the document");
        self.ok(&["import", &file.display().to_string()])
    }

    fn log(&self) -> Vec<Value> {
        parse_lines(&self.ok(&["log", "--output", "json"]).stdout)
    }

    /// The head as `verify` prints it (`SEQ:HASH`), after checking that it passes.
    fn verified_head(&self) -> String {
        let out = self.ok(&["verify"]).stdout;
        assert!(out.starts_with("ok: "), "{out}");
        out.trim().rsplit(' ').next().expect("a head").to_string()
    }

    /// `config list --output json EXTRA...` as key -> (value, source).
    fn values(&self, extra: &[&str]) -> BTreeMap<String, (Value, Value)> {
        let mut args = vec!["config", "list", "--output", "json"];
        args.extend_from_slice(extra);
        let list = parse_json(&self.ok(&args).stdout);
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| (i["key"].as_str().expect("key").to_string(), (i["value"].clone(), i["source"].clone())))
            .collect()
    }

    /// The registry's export document (inactive entities too).
    fn export(&self) -> Value {
        parse_json(&self.ok(&["export", "--out", "-", "--include-inactive"]).stdout)
    }

    /// The entities of the export, each sealed credential replaced by a marker: ciphertexts differ between
    /// stores, their presence must not.
    fn entities(&self) -> Value {
        let mut entities = self.export()["entities"].clone();
        for list in entities.as_object_mut().expect("kinds").values_mut() {
            for entity in list.as_array_mut().expect("a list") {
                if let Some(v) = entity.get_mut("auth_value") {
                    assert!(v.as_str().is_some_and(|s| s.starts_with("cfgl1:")), "sealed: {v}");
                    *v = json!("<sealed>");
                }
            }
        }
        entities
    }
}

/// Panics unless `r` is a refusal (exit 1, one `error:` line) whose message holds every `needle`.
fn refused(r: &Run, what: &str, needles: &[&str]) {
    refused_with(1, r, what, needles)
}

/// Panics unless `r` failed with exit `code` (2 bad input, 4 integrity) and one `error:` line holding every
/// `needle`.
fn refused_with(code: i32, r: &Run, what: &str, needles: &[&str]) {
    assert_eq!(r.code, Some(code), "{what}: expected exit {code}: {r:?}");
    let line = r.error_line();
    for needle in needles {
        assert!(line.contains(needle), "{what}: {needle:?} not in {line:?}");
    }
}

/// The registry of the sources: a bearer tool, an inactive tool, a prompt and a server using both.
fn registry() -> Value {
    json!({"entities": {
        "tools": [
            {"name": "t1", "url": "https://t/1", "auth_type": "bearer", "auth_token": TOKEN, "tags": ["a"]},
            {"name": "old", "is_active": false},
        ],
        "prompts": [{"name": "p", "template": "hi {{name}}"}],
        "servers": [{"name": "s", "associated_tools": ["t1"], "associated_prompts": ["p"]}],
    }})
}

/// A source store at seq 11: four settings (one sensitive) and the registry.
fn fill_source(src: &Db) {
    src.set("LOG_LEVEL", "debug");
    src.set("WEBHOOK_SECRET", HOOK);
    src.set("CACHE_TTL", "5m");
    src.set("MAX_WORKERS", "7");
    src.import(&registry());
}

/// The `mirrored|exported|imported N events ...; head SEQ:HASH` summary line: (N, SEQ:HASH).
fn summary(out: &str, what: &str) -> (u64, String) {
    let line = out.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what} line in {out}"));
    let n = line[what.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(line.contains(" events/s); head "), "{line}");
    (n, line.rsplit(' ').next().expect("a head").to_string())
}

/// Opens a credential of an MCP Gateway export: AES-256-GCM under SHA-256 of `secret`.
fn open_gateway(secret: &str, sealed: &Value) -> Value {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sealed.as_str().expect("a sealed value"))
        .expect("base64url without padding");
    let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(secret.as_bytes())).expect("a key");
    let plaintext = cipher.decrypt(Nonce::from_slice(&raw[..12]), &raw[12..]).expect("the secret opens it");
    serde_json::from_slice(&plaintext).expect("a JSON object of headers")
}

/// The bearer credential of tool `t1` in `db`, exported in MCP Gateway's layout under a known secret and
/// opened here.
fn bearer_of_t1(db: &Db, name: &str) -> Value {
    let gw = "gateway-secret-for-the-test-1f2e3d";
    let file = db.ws.path(name).display().to_string();
    let env_db = Db { ws: db.ws, url: db.url.clone(), env: db.env.clone() }.with_env("GW_SECRET", gw);
    env_db.ok(&["export", "--format", "mcpgateway", "--target-secret-env", "GW_SECRET", "--out", &file]);
    let doc = parse_json(&db.ws.read(name));
    let tool = doc["entities"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "t1")
        .expect("t1 is exported")
        .clone();
    open_gateway(gw, &tool["auth_value"])
}

/// `WEBHOOK_SECRET` as the store's own key opens it, in process.
fn reveal_hook(url: &str, secret: Option<&str>) -> Option<String> {
    let mut opts = OpenOptions::new(StoreUrl::parse(url).expect("a URL"), cfgledger_events::testing::suite_catalog());
    opts.env_file = EnvFileChoice::None;
    if let Some(s) = secret {
        opts.process_env = BTreeMap::from([("CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(), s.to_string())]);
    }
    let (ledger, _) = Ledger::open(opts).expect("the store opens");
    ledger.reveal("WEBHOOK_SECRET").expect("the target's key opens it").map(|s| s.to_string())
}

// ---------------------------------------------------------------------------------------------------------
// 1. The replay clone.

#[test]
fn a_replay_clone_until_a_point_holds_the_sources_state_then_in_one_batch_naming_the_source() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    fill_source(&src);
    let log = src.log();
    let n = log.len() as u64;
    assert_eq!(n, 11);
    let store_id = log[0]["payload"]["store_id"].as_str().expect("the store id").to_string();
    let hash_n = log[usize::try_from(n - 1).expect("small")]["hash"].as_str().expect("a hash").to_string();
    // What happens after the point must not reach the clone.
    src.set("LOG_LEVEL", "error");
    src.set("MAX_WORKERS", "9");
    src.import(&json!({"entities": {"tools": [
        {"name": "late", "url": "https://late/"},
        {"name": "t1", "url": "https://t/1-moved", "auth_type": "bearer", "auth_token": TOKEN},
    ]}}));
    let as_of = src.values(&["--as-of", &format!("seq:{n}")]);
    assert_eq!(as_of["LOG_LEVEL"], (json!("debug"), json!("db")));
    assert_eq!(as_of["CACHE_TTL"], (json!("5m"), json!("db")));
    assert_eq!(as_of["WEBHOOK_SECRET"], (json!("********"), json!("db")));
    // The source's registry as of the point: a mirror of its log up to there.
    let at = ws.sqlite("at.db");
    ws.clone(&src, &at, &["--mirror", "--until", &format!("seq:{n}")]).expect_code(0, "mirror until");
    assert_eq!(at.values(&[]), as_of, "a mirror up to the point holds the state as of the point");
    let entities_at = at.entities();
    assert_eq!(entities_at["tools"].as_array().map(Vec::len), Some(2), "{entities_at}");
    assert_ne!(src.entities(), entities_at, "the source changed after the point");
    // A point given as a time is the last seq at or before it.
    let time_n = log[usize::try_from(n - 1).expect("small")]["occurred_at"].as_str().expect("a time").to_string();
    let by_time = ws.clone(&src, &at, &["--until", &time_n, "--dry-run"]).expect_code(0, "until a time");
    assert!(by_time.stdout.contains(&format!("plan from {store_id} seq {n}: ")), "{}", by_time.stdout);

    // A dry run against an existing target writes nothing.
    let fresh = ws.sqlite("fresh.db");
    fresh.ok(&["config", "list"]);
    let before = fresh.log();
    let opts = ["--until", &format!("seq:{n}"), "--exclude-keys", "CACHE_*,tools/old", "--set", "LOG_FORMAT=text"];
    let dry = ws.clone(&src, &fresh, &[&opts[..], &["--dry-run"]].concat()).expect_code(0, "dry run");
    assert!(dry.stdout.contains("set      LOG_LEVEL  - -> debug\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("set      WEBHOOK_SECRET  - -> ********\n"), "{}", dry.stdout);
    assert!(dry.stdout.contains("create   tools/t1\n") && !dry.stdout.contains("tools/old"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("CACHE_TTL") && !dry.stdout.contains("tools/late"), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("plan from {store_id} seq {n}: 4 set, 3 create, 0 update")), "{}", dry.stdout);
    assert!(dry.stdout.contains("; 0 conflict(s)\n") && !dry.stdout.contains("conflicts:"), "{}", dry.stdout);
    assert!(dry.stdout.ends_with("dry run at the target's head 2: nothing applied\n"), "{}", dry.stdout);
    assert_eq!(fresh.log(), before, "a dry run appends nothing");

    let applied = ws.clone(&src, &fresh, &[&opts[..], &["--reason", "staging from prod"]].concat());
    let applied = applied.expect_code(0, "clone");
    assert!(applied.stdout.contains(&format!("cloned seq {n} of {store_id} as 7 events")), "{}", applied.stdout);

    // The settings: the source's as of the point, overrides and exclusions aside.
    let mut expected = as_of.clone();
    expected.insert("LOG_FORMAT".into(), (json!("text"), json!("db")));
    expected.insert("CACHE_TTL".into(), (json!("10m"), json!("default")));
    assert_eq!(fresh.values(&[]), expected);
    // The entities: the source's as of the point, tools/old excluded, credentials present (sealed anew).
    let mut expected_entities = entities_at.clone();
    expected_entities["tools"].as_array_mut().expect("tools").retain(|t| t["name"] != "old");
    assert_eq!(fresh.entities(), expected_entities);
    assert_eq!(fresh.entities()["tools"][0]["url"], "https://t/1", "the state before t1 moved");
    assert_eq!(bearer_of_t1(&fresh, "gw.json"), json!({"Authorization": format!("Bearer {TOKEN}")}));
    assert_eq!(reveal_hook(&fresh.url, None).as_deref(), Some(HOOK));

    // One batch, whose cause names the source store, the seq and its hash.
    let after = fresh.log();
    let batch: Vec<&Value> = after.iter().skip(before.len()).collect();
    assert_eq!(batch.len(), 7);
    for event in &batch {
        assert_eq!(event["batch"]["id"], batch[0]["batch"]["id"], "one batch");
        assert_eq!(
            event["batch"]["cause"],
            json!({"type": "clone", "source_store_id": store_id, "source_seq": n, "source_head_hash": hash_n, "via": "clone"})
        );
        assert_eq!(event["batch"]["reason"], "staging from prod");
    }
    assert!(applied.stdout.trim_end().ends_with(&format!("batch {}", batch[0]["batch"]["id"].as_str().unwrap_or("?"))));
    fresh.verified_head();

    // Cloning again appends nothing.
    let again = ws.clone(&src, &fresh, &opts).expect_code(0, "clone again");
    assert!(
        again
            .stdout
            .ends_with(&format!("nothing to change: the target already holds the source's state as of seq {n}\n")),
        "{}",
        again.stdout
    );
    assert_eq!(fresh.log(), after, "cloning again appends nothing");
}

#[test]
fn a_replay_clone_lists_the_targets_conflicting_values_first_and_keeps_what_the_source_does_not_hold() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    fill_source(&src);
    let busy = ws.sqlite("busy.db");
    busy.set("LOG_LEVEL", "warn");
    busy.set("MAX_WORKERS", "7");
    busy.set("HEALTH_CHECK_INTERVAL", "30");
    busy.import(&json!({"entities": {"tools": [
        {"name": "t1", "url": "https://elsewhere/"},
        {"name": "mine", "url": "https://mine/"},
    ]}}));
    let before = busy.log();

    let dry = ws.clone(&src, &busy, &["--dry-run"]).expect_code(0, "dry run");
    let lines: Vec<&str> = dry.stdout.lines().collect();
    assert_eq!(lines[0], "conflicts: the target holds 2 of these with another value", "{}", dry.stdout);
    let subject = |l: &str| l.split_whitespace().nth(1).unwrap_or_default().to_string();
    let mut first: Vec<String> = lines[1..3].iter().map(|l| subject(l)).collect();
    first.sort();
    assert_eq!(first, ["LOG_LEVEL", "tools/t1"], "{}", dry.stdout);
    assert!(lines[1..3].iter().any(|l| l.contains("warn -> debug")), "{}", dry.stdout);
    assert!(lines[1..3].iter().any(|l| l.starts_with("update   tools/t1") && l.contains("url")), "{}", dry.stdout);
    let rest: Vec<String> = lines[3..].iter().map(|l| subject(l)).collect();
    assert!(!rest.contains(&"LOG_LEVEL".into()) && !rest.contains(&"tools/t1".into()), "{}", dry.stdout);
    for kept in ["MAX_WORKERS", "HEALTH_CHECK_INTERVAL", "tools/mine"] {
        assert!(!dry.stdout.contains(kept), "{kept} needs no step: {}", dry.stdout);
    }
    assert!(dry.stdout.contains("; 2 conflict(s)\n"), "{}", dry.stdout);
    assert_eq!(busy.log(), before, "a dry run appends nothing");

    ws.clone(&src, &busy, &[]).expect_code(0, "clone");
    let values = busy.values(&[]);
    assert_eq!(values["LOG_LEVEL"].0, "debug", "the source's value wins a conflict");
    assert_eq!(values["HEALTH_CHECK_INTERVAL"].0, 30, "what the source does not hold is kept");
    assert_eq!(values["CACHE_TTL"].0, "5m");
    let entities = busy.entities();
    let tools: Vec<&Value> = entities["tools"].as_array().expect("tools").iter().collect();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["mine", "old", "t1"], "{entities}");
    let t1 = tools.iter().find(|t| t["name"] == "t1").expect("t1");
    assert_eq!((t1["url"].as_str(), t1["auth_value"].as_str()), (Some("https://t/1"), Some("<sealed>")));
    assert_eq!(bearer_of_t1(&busy, "gw.json"), json!({"Authorization": format!("Bearer {TOKEN}")}));
}

// ---------------------------------------------------------------------------------------------------------
// 2. Secrets re-keyed.

#[test]
fn secrets_are_sealed_again_under_the_targets_key_and_never_written_in_plaintext() {
    let ws = Ws::new();
    let pgdb = pg::TestDb::new();
    let mut outputs = String::new();
    let mut keep = |r: Run| -> Run {
        outputs.push_str(&r.stdout);
        outputs.push_str(&r.stderr);
        r
    };
    // The source: SQLite, with the key file it creates.
    let src = ws.sqlite("src.db");
    fill_source(&src);
    let source_secret = std::fs::read_to_string(ws.path("src.db.key")).expect("the source's key file");
    let source_key_id = src.export()["encryption"]["key_id"].as_str().expect("a key id").to_string();
    // The target: PostgreSQL, with another secret.
    let target = ws.pg(&pgdb, PG_SECRET);
    keep(target.ok(&["config", "list"]));
    let before = target.log();
    let target_key_id = target.export()["encryption"]["key_id"].as_str().expect("a key id").to_string();
    assert_ne!(source_key_id, target_key_id);

    // A wrong source secret, or an unset variable: refused, nothing written.
    let wrong_env = [target.env.clone(), vec![("WRONG".into(), "not-the-source-secret-0123456789".into())]].concat();
    let wrong = keep(ws.clone_with(&wrong_env, &src, &target, &["--source-secret-env", "WRONG"]));
    refused_with(
        2,
        &wrong,
        "a wrong source secret",
        &["the source secret does not open the source's secrets", &source_key_id],
    );
    let unset = keep(ws.clone(&src, &target, &["--source-secret-env", "NOT_SET"]));
    refused_with(2, &unset, "an unset variable", &["--source-secret-env NOT_SET: the variable is not set"]);
    assert_eq!(target.log(), before, "nothing written");

    // The source's key file opens its secrets; the target seals them under its own key.
    let cloned = keep(ws.clone(&src, &target, &[]).expect_code(0, "clone into PostgreSQL"));
    assert!(cloned.stdout.contains("set      WEBHOOK_SECRET  - -> ********"), "{}", cloned.stdout);
    assert_eq!(reveal_hook(&target.url, Some(PG_SECRET)).as_deref(), Some(HOOK));
    assert_eq!(bearer_of_t1(&target, "gw-pg.json"), json!({"Authorization": format!("Bearer {TOKEN}")}));
    let t1 = target.export()["entities"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "t1")
        .cloned()
        .expect("t1");
    // Exported under the target's key; stored under data keys of the target's, which its own key wraps.
    assert!(t1["auth_value"].as_str().is_some_and(|v| v.starts_with(&format!("cfgl1:{target_key_id}:"))), "{t1}");
    let keys = parse_json(&target.ok(&["key", "list", "--output", "json"]).stdout);
    assert_eq!(keys["current"], json!(target_key_id), "{keys}");
    assert!(keys["data_keys"].as_u64().is_some_and(|n| n >= 2), "{keys}");
    let wrapping: Vec<&Value> = keys["keys"].as_array().expect("keys").iter().filter(|k| k["data_keys"] != 0).collect();
    assert!(wrapping.len() == 1 && wrapping[0]["key_id"] == json!(target_key_id), "{keys}");
    target.ok(&["key", "verify"]);
    let again = keep(ws.clone(&src, &target, &[]).expect_code(0, "clone again"));
    assert!(again.stdout.contains("nothing to change"), "{}", again.stdout);

    // Back from PostgreSQL into a new SQLite store with a key file of its own: the PostgreSQL secret is not
    // that store's, so without --source-secret-env the clone is refused and writes nothing.
    let back = ws.sqlite("back.db");
    keep(back.ok(&["config", "list"]));
    let back_before = back.log();
    let no_secret = keep(ws.clone_with(&[], &target, &back, &[]));
    refused_with(2, &no_secret, "the target's own secret", &["the source secret does not open the source's secrets"]);
    assert_eq!(back.log(), back_before, "nothing written");
    let env = vec![("PG_SECRET".to_string(), PG_SECRET.to_string())];
    keep(ws.clone_with(&env, &target, &back, &["--source-secret-env", "PG_SECRET"]).expect_code(0, "clone back"));
    assert_eq!(reveal_hook(&back.url, None).as_deref(), Some(HOOK));
    assert_eq!(bearer_of_t1(&back, "gw-back.json"), json!({"Authorization": format!("Bearer {TOKEN}")}));

    // Backups of both ends hold sealed values only.
    keep(src.ok(&["log", "export", "--out", &ws.path("src.jsonl").display().to_string()]));
    keep(target.ok(&["log", "export", "--out", &ws.path("pg.jsonl").display().to_string()]));
    keep(back.ok(&["log", "export", "--out", &ws.path("back.jsonl").display().to_string()]));
    for args in [&["log", "--output", "json"][..], &["config", "list", "--output", "json"], &["export", "--out", "-"]] {
        keep(src.ok(args));
        keep(target.ok(args));
        keep(back.ok(args));
    }

    // Neither plaintext anywhere: files (databases, WAL, key files, backups, exports), PostgreSQL's tables,
    // what the commands printed.
    let files = ws.all_bytes();
    assert!(files.iter().any(|(p, _)| p.ends_with("pg.jsonl")) && files.len() >= 10, "{}", files.len());
    let mut client = pgdb.client();
    let mut pg_bytes: Vec<u8> = Vec::new();
    for sql in ["SELECT envelope FROM events", "SELECT state FROM snapshots", "SELECT info::bytea FROM instances"] {
        for row in client.query(sql, &[]).expect("query") {
            pg_bytes.extend(row.get::<_, Vec<u8>>(0));
        }
    }
    assert!(contains_bytes(&pg_bytes, b"WEBHOOK_SECRET"), "the PostgreSQL log was read");
    let read_log = |name: &str| files.iter().any(|(p, b)| p.ends_with(name) && contains_bytes(b, b"WEBHOOK_SECRET"));
    assert!(read_log("src.db-wal") || read_log("src.db"), "the SQLite log was read");
    for plaintext in [TOKEN, HOOK] {
        for (path, bytes) in &files {
            assert!(!contains_bytes(bytes, plaintext.as_bytes()), "{plaintext} in {}", path.display());
        }
        assert!(!contains_bytes(&pg_bytes, plaintext.as_bytes()), "{plaintext} in PostgreSQL");
        assert!(!outputs.contains(plaintext), "{plaintext} printed");
    }
    assert!(!outputs.contains(PG_SECRET) && !outputs.contains(source_secret.trim()), "a store secret printed");
}

// ---------------------------------------------------------------------------------------------------------
// 3. Mirror SQLite -> PostgreSQL -> SQLite.

#[test]
fn a_mirror_from_sqlite_to_postgresql_and_back_keeps_the_head_hash_and_the_state() {
    let ws = Ws::new();
    let pgdb = pg::TestDb::new();
    let src = ws.sqlite("src.db");
    fill_source(&src);
    src.set("LOG_LEVEL", "warn");
    let secret = std::fs::read_to_string(ws.path("src.db.key")).expect("the key file").trim().to_string();
    // Every store read with the same secret in the environment, so that even AUTH_ENCRYPTION_SECRET's line
    // of `config list` is the same.
    let src = ws.sqlite("src.db").with_env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", &secret);
    // A mirror keeps the source's key: the PostgreSQL copy and the SQLite copy of it open with its secret.
    let mid = ws.pg(&pgdb, &secret);
    let last = ws.sqlite("last.db").with_env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", &secret);

    let first = ws.clone(&src, &mid, &["--mirror"]).expect_code(0, "mirror to PostgreSQL");
    let (copied, head) = summary(&first.stdout, "mirrored ");
    assert_eq!(copied, 12);
    assert!(
        first.stderr.contains("the target opens with the source's CFGLEDGER_AUTH_ENCRYPTION_SECRET"),
        "{}",
        first.stderr
    );
    assert!(!first.stderr.contains("ETA") && !first.stderr.contains('\r'), "no progress bar off a terminal");
    let second = ws.clone(&mid, &last, &["--mirror"]).expect_code(0, "mirror to SQLite");
    assert_eq!(summary(&second.stdout, "mirrored "), (12, head.clone()));

    for db in [&src, &mid, &last] {
        assert_eq!(db.verified_head(), head, "{}", db.url);
    }
    let list = src.ok(&["config", "list", "--output", "json"]).stdout;
    let log = src.log();
    let registry = src.export();
    for db in [&mid, &last] {
        assert_eq!(db.ok(&["config", "list", "--output", "json"]).stdout, list, "{}", db.url);
        assert_eq!(db.log(), log, "{}", db.url);
        let copy = db.export();
        for part in ["entities", "settings", "encryption", "source"] {
            assert_eq!(copy[part], registry[part], "{part} of {}", db.url);
        }
    }
    assert_eq!(reveal_hook(&last.url, Some(&secret)).as_deref(), Some(HOOK));

    // Mirroring again copies nothing.
    let again = ws.clone(&src, &mid, &["--mirror"]).expect_code(0, "mirror again");
    assert!(again.stdout.starts_with("mirrored 0 events (the target already held 12)"), "{}", again.stdout);
    assert_eq!(mid.verified_head(), head);

    // SQLite to a new SQLite file is copied page by page, checked, and put in place whole.
    let pages = ws.sqlite("pages.db");
    let copied = ws.clone(&src, &pages, &["--mirror"]).expect_code(0, "mirror to a new SQLite file");
    assert_eq!(summary(&copied.stdout, "mirrored "), (12, head.clone()));
    assert_eq!(pages.verified_head(), head);
    assert!(!ws.path("pages.partial").exists(), "no partial copy is left behind");
    let conn = rusqlite::Connection::open(ws.path("pages.db")).expect("open the copy");
    let instances: i64 = conn.query_row("SELECT count(*) FROM instances", [], |r| r.get(0)).expect("count");
    assert_eq!(instances, 0, "the source's instance heartbeats are not copied");
}

// ---------------------------------------------------------------------------------------------------------
// 4. A mirror killed midway.

/// `events` changes appended straight to the SQLite store at `path` in batches of 10,000.
fn grow(path: &Path, events: u64) -> Head {
    let store = SqliteStore::open(path).expect("open the store");
    let actor = Actor {
        name: "loader".into(),
        role: None,
        source: cfgledger_events::Source::Cli,
        address: None,
        request_id: None,
    };
    let keys = ["MAX_WORKERS", "TOOL_RATE_LIMIT", "TOOL_CONCURRENT_LIMIT", "MAX_PROMPT_SIZE"];
    let mut head = store.head().expect("head");
    let end = head.seq + events;
    while head.seq < end {
        let from = head.seq;
        let to = (from + 10_000).min(end);
        let batch = Batch { id: format!("load-{from}"), cause: Cause::Cli { command: "load".into() }, reason: None };
        let batch_events: Vec<Event> = (from..to)
            .map(|n| {
                Event::SettingChanged(SettingChanged {
                    key: keys[usize::try_from(n % 4).expect("small")].into(),
                    value: StoredValue::Plain(json!(1 + (n % 200))),
                    previous: None,
                })
            })
            .collect();
        let at = cfgledger::clock::Clock::now(&cfgledger::clock::SystemClock);
        let records: Vec<_> = build_batch(head, at, &actor, &batch, batch_events).into_iter().map(|(_, r)| r).collect();
        head = store.append(head, &records).expect("append");
    }
    head
}

/// The highest seq a SQLite store holds, read behind the binary's back (0 while it has no log).
fn held(path: &Path) -> u64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// Every (seq, hash) of a SQLite store, and how many rows hold each seq.
fn chain(path: &Path) -> (Vec<(i64, Vec<u8>)>, i64) {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT seq, hash FROM events ORDER BY seq").expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").map(|r| r.expect("row")).collect();
    let distinct = conn.query_row("SELECT count(DISTINCT seq) FROM events", [], |r| r.get(0)).expect("count");
    (rows, distinct)
}

/// Runs `clone --mirror` from `from` to `to` (in the target's environment) and SIGKILLs it as soon as `midway`
/// says so. Whether it was caught: false when it finished first.
fn kill_mirror_midway(ws: &Ws, from: &Db, to: &Db, mut midway: impl FnMut() -> bool) -> bool {
    let mut child = ws
        .cmd(&to.env)
        .args(["clone", "--from", &from.url, "--to", &to.url, "--mirror"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the mirror");
    let deadline = Instant::now() + Duration::from_secs(60);
    let caught = loop {
        if child.try_wait().expect("poll the child").is_some() {
            break false;
        }
        if midway() {
            child.kill().expect("SIGKILL the mirror");
            break true;
        }
        assert!(Instant::now() < deadline, "the mirror neither reached the point to kill it at nor ended");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().expect("reap the child");
    caught
}

/// A new SQLite store at `path` (with its key file) holding 60,000 changes after its genesis; its head.
fn long_source(path: &Path) -> Head {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), cfgledger_events::testing::suite_catalog());
    opts.env_file = EnvFileChoice::None;
    drop(Ledger::open(opts).expect("create the source, with a key file"));
    grow(path, 60_000)
}

#[test]
fn a_mirror_killed_midway_resumes_without_a_duplicate_and_refuses_what_is_not_a_prefix() {
    let ws = Ws::new();
    let src_path = ws.path("src.db");
    let mut source_head = long_source(&src_path);
    let src = ws.sqlite("src.db");

    // Start the mirror and kill it once the target holds some of the log but not all of it. When the copy
    // finishes before it is caught, a bigger source and a new target are tried.
    let mut attempt = 0;
    let (dst, dst_path, at_kill) = loop {
        attempt += 1;
        let name = format!("dst{attempt}.db");
        let dst_path = ws.path(&name);
        let dst = ws.sqlite(&name);
        // An existing (empty) target takes the row-by-row path, chunk by chunk, which resumes; a new file
        // would be copied page by page and appear only once complete.
        drop(cfgledger::store::sqlite::SqliteStore::open(&dst_path).expect("an empty target store"));
        let caught = kill_mirror_midway(&ws, &src, &dst, || {
            let n = held(&dst_path);
            n > 0 && n < source_head.seq
        });
        let n = held(&dst_path);
        if caught && n < source_head.seq {
            break (dst, dst_path, n);
        }
        assert!(attempt < 4, "the mirror of {} events always finished before it could be killed", source_head.seq);
        source_head = grow(&src_path, 60_000);
    };
    let total = source_head.seq;
    eprintln!("the mirror was killed holding {at_kill} of {total} events (attempt {attempt})");
    assert!(at_kill > 0 && at_kill < total, "{at_kill} of {total}");
    assert_eq!(at_kill % 10_000, 0, "each chunk of 10,000 is its own transaction: {at_kill}");
    let key = |p: &Path| {
        let mut name = p.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    };
    assert!(!key(&dst_path).exists(), "the key file is copied once the log is");

    // --until before what the target already holds: refused, nothing written.
    let behind = ws.clone(&src, &dst, &["--mirror", "--until", &format!("seq:{}", at_kill - 1)]);
    refused(
        &behind,
        "--until behind the target",
        &[&format!("holds seq {at_kill} and beyond, past --until seq {}", at_kill - 1)],
    );
    assert_eq!(held(&dst_path), at_kill);
    // A resumed mirror may stop at a point, and resume again.
    let step = ws.clone(&src, &dst, &["--mirror", "--until", &format!("seq:{}", at_kill + 5)]).expect_code(0, "resume");
    assert!(
        step.stdout.starts_with(&format!("mirrored 5 events (the target already held {at_kill})")),
        "{}",
        step.stdout
    );
    let rest = ws.clone(&src, &dst, &["--mirror"]).expect_code(0, "resume to the end");
    let (copied, head) = summary(&rest.stdout, "mirrored ");
    assert_eq!(copied, total - at_kill - 5, "{}", rest.stdout);
    assert!(rest.stdout.contains(&format!("(the target already held {})", at_kill + 5)), "{}", rest.stdout);
    assert_eq!(head, format!("{}:{}", source_head.seq, source_head.hash));
    // Off a terminal, no progress bar: standard error holds only the line of the key file, copied by the
    // first run that finished.
    assert_eq!(step.stderr, format!("copied the source's key file to {} (mode 0600)\n", key(&dst_path).display()));
    assert_eq!(rest.stderr, "");

    // The same log: every seq once, every hash the source's.
    let (source_chain, _) = chain(&src_path);
    let (target_chain, distinct) = chain(&dst_path);
    assert_eq!(target_chain.len() as u64, total);
    assert_eq!(distinct, i64::try_from(total).expect("small"), "no duplicate");
    assert!(target_chain == source_chain, "the target's log differs from the source's");
    assert_eq!(dst.verified_head(), head);
    assert_eq!(std::fs::read(key(&dst_path)).ok(), std::fs::read(key(&src_path)).ok(), "the key file is copied");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key(&dst_path)).expect("the key file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A target that is another store is not a prefix: refused, naming the seq, and left as it was.
    let other = ws.sqlite("other.db");
    other.set("LOG_LEVEL", "debug");
    let other_key = std::fs::read(ws.path("other.db.key")).expect("its key file");
    let not_prefix = ws.clone(&src, &other, &["--mirror"]);
    // Two unrelated stores differ from their genesis events on.
    refused(&not_prefix, "another store", &["not a prefix of the source's", "differ at seq 1"]);
    assert_eq!(held(&ws.path("other.db")), 3);
    assert_eq!(std::fs::read(ws.path("other.db.key")).expect("its key file"), other_key);
    // A target longer than the source: refused too.
    let longer = ws.clone(&other, &dst, &["--mirror"]);
    refused(&longer, "a longer target", &[&format!("(head seq {total}) is longer than the source's (head seq 3)")]);
    assert_eq!(held(&dst_path), total);
}

/// The log table's indexes and constraints as PostgreSQL describes them.
fn pg_schema(conn: &mut postgres::Client) -> Vec<String> {
    let mut out: Vec<String> = conn
        .query(
            "SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE tablename = 'events' \
             UNION ALL SELECT conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = 'events'::regclass",
            &[],
        )
        .expect("the schema")
        .iter()
        .map(|r| r.get(0))
        .collect();
    out.sort();
    out
}

/// Whether a backend of database `name` is running the bulk load's `COPY`.
fn copying(admin: &mut postgres::Client, name: &str) -> bool {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY events%' AND state = 'active'",
            &[&name],
        )
        .map(|r| r.get::<_, i64>(0) > 0)
        .unwrap_or(false)
}

/// Into an empty PostgreSQL database the whole log goes in one transaction: a mirror killed while it
/// copies leaves nothing behind (not a prefix, and every index still there), and run again it copies all.
#[test]
fn a_mirror_into_empty_postgresql_killed_midway_leaves_it_empty_and_run_again_copies_everything() {
    let ws = Ws::new();
    let src_path = ws.path("src.db");
    let mut source_head = long_source(&src_path);
    let src = ws.sqlite("src.db");
    let secret = std::fs::read_to_string(ws.path("src.db.key")).expect("the key file").trim().to_string();
    let reference = pg::TestDb::new();
    drop(cfgledger::store::postgres::PgStore::open(&reference.url()).expect("a migrated database"));
    let migrated = pg_schema(&mut reference.client());

    let mut attempt = 0;
    let (db, target) = loop {
        attempt += 1;
        let db = pg::TestDb::new();
        let target = ws.pg(&db, &secret);
        let mut admin = db.client();
        let caught = kill_mirror_midway(&ws, &src, &target, || copying(&mut admin, &db.name));
        if caught {
            // The server ends the killed client's transaction once it sees the connection gone.
            let deadline = Instant::now() + Duration::from_secs(30);
            while copying(&mut admin, &db.name) {
                assert!(Instant::now() < deadline, "the killed mirror's COPY is still running");
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(admin);
            break (db, target);
        }
        assert!(attempt < 4, "the mirror of {} events always finished before it could be killed", source_head.seq);
        source_head = grow(&src_path, 60_000);
    };
    let mut conn = db.client();
    let rows: i64 = conn.query_one("SELECT count(*) FROM events", &[]).expect("a count").get(0);
    assert_eq!(rows, 0, "a killed bulk load leaves no prefix behind");
    assert_eq!(pg_schema(&mut conn), migrated, "every index and constraint is still there");

    let done = ws.clone(&src, &target, &["--mirror"]).expect_code(0, "mirror again");
    let (copied, head) = summary(&done.stdout, "mirrored ");
    assert_eq!(copied, source_head.seq, "{}", done.stdout);
    assert_eq!(head, format!("{}:{}", source_head.seq, source_head.hash));
    assert_eq!(pg_schema(&mut conn), migrated, "the indexes are built again, as migrated");
    let (source_chain, _) = chain(&src_path);
    let target_chain: Vec<(i64, Vec<u8>)> = conn
        .query("SELECT seq, hash FROM events ORDER BY seq", &[])
        .expect("the target's chain")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(target_chain == source_chain, "the target's log differs from the source's");
    assert_eq!(target.verified_head(), head);
}

// ---------------------------------------------------------------------------------------------------------
// 5. Backup and restore as JSON lines.

#[test]
fn a_log_export_restores_to_the_same_head_and_a_bad_file_is_refused_before_anything_is_written() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    fill_source(&src);
    src.set("LOG_LEVEL", "warn");
    let head = src.verified_head();
    let out = src.ok(&["log", "export", "--out", "backup.jsonl"]);
    assert_eq!(summary(&out.stdout, "exported "), (12, head.clone()));
    let text = ws.read("backup.jsonl");
    // The records, then the data keys the store's secrets are sealed under (wrapped, never plaintext).
    let is_key = |l: &&str| l.starts_with("{\"data_key\":");
    let (key_lines, lines): (Vec<&str>, Vec<&str>) = text.lines().partition(is_key);
    assert_eq!(lines.len(), 12);
    assert_eq!(key_lines.len(), 2, "one data key per sealed subject (the hook secret, t1's credentials)");
    assert!(text.lines().skip(12).all(|l| is_key(&l)), "the data keys follow the records");
    for line in &key_lines {
        let row = &parse_json(line)["data_key"];
        assert!(row["wrapped"].as_str().is_some_and(|w| w.starts_with("cfgl1:")), "{line}");
    }
    let to_stdout = src.ok(&["log", "export", "--out", "-"]);
    assert_eq!(to_stdout.stdout, text, "the same lines on standard output");
    assert!(to_stdout.stderr.contains(&format!("head {head}")), "{}", to_stdout.stderr);
    // Each line: seq, hashes and the envelope exactly as the log holds it.
    let log = src.log();
    for (line, event) in lines.iter().zip(&log) {
        let v = parse_json(line);
        assert_eq!((&v["seq"], &v["hash"], &v["prev_hash"]), (&event["seq"], &event["hash"], &event["prev_hash"]));
        assert_eq!(v["envelope"]["seq"], event["seq"]);
    }
    let until = src.ok(&["log", "export", "--until", "seq:5", "--out", "-"]).stdout;
    let until: String = until.lines().filter(|l| !is_key(l)).map(|l| format!("{l}\n")).collect();
    assert_eq!(until, lines[..5].iter().map(|l| format!("{l}\n")).collect::<String>());

    // Into an empty store: the same head; with the key file beside it, the same state.
    let restored = ws.sqlite("restored.db");
    let imported = restored.ok(&["log", "import", "backup.jsonl"]);
    assert_eq!(summary(&imported.stdout, "imported "), (12, head.clone()));
    assert_eq!(restored.verified_head(), head);
    std::fs::copy(ws.path("src.db.key"), ws.path("restored.db.key")).expect("copy the key file");
    assert_eq!(restored.values(&[]), src.values(&[]));
    assert_eq!(restored.export()["entities"], src.export()["entities"]);
    let again = restored.ok(&["log", "import", "backup.jsonl"]);
    assert!(again.stdout.starts_with("imported 0 events (the target already held 12)"), "{}", again.stdout);
    // Into a store holding a prefix of the file: the rest.
    ws.write("first3.jsonl", &lines[..3].iter().map(|l| format!("{l}\n")).collect::<String>());
    let partial = ws.sqlite("partial.db");
    partial.ok(&["log", "import", "first3.jsonl"]);
    assert_eq!(held(&ws.path("partial.db")), 3);

    // One altered byte inside an envelope (a value): refused naming its seq, nothing written, not even the
    // lines before it.
    let target_line = lines.iter().position(|l| l.contains(r#""plain":"5m""#)).expect("the CACHE_TTL change");
    let seq = target_line + 1;
    assert!(seq > 3);
    let mut altered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    altered[target_line] = altered[target_line].replacen(r#""plain":"5m""#, r#""plain":"6m""#, 1);
    ws.write("altered.jsonl", &(altered.join("\n") + "\n"));
    for (db, name) in [(&partial, "partial"), (&ws.sqlite("empty.db"), "empty")] {
        let r = db.run(&["log", "import", "altered.jsonl"]);
        refused_with(4, &r, name, &[&format!("seq {seq}"), "its hash does not match its bytes"]);
    }
    assert_eq!(held(&ws.path("partial.db")), 3, "nothing written");
    assert!(!ws.path("empty.db").exists(), "no store created");
    // A malformed line: refused naming the line.
    let mut malformed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    malformed[6] = malformed[6][..40].to_string();
    ws.write("malformed.jsonl", &(malformed.join("\n") + "\n"));
    let r = partial.run(&["log", "import", "malformed.jsonl"]);
    refused_with(2, &r, "a malformed line", &["line 7 is not a record of a log backup"]);
    assert_eq!(held(&ws.path("partial.db")), 3, "nothing written");
    // A hash that is not the line's: refused naming the seq.
    let mut rehashed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let hash = parse_json(lines[7])["hash"].as_str().expect("a hash").to_string();
    let zero_last = format!("{}0", &hash[..63]);
    let other_hash = if zero_last == hash { format!("{}1", &hash[..63]) } else { zero_last };
    rehashed[7] = rehashed[7].replacen(&hash, &other_hash, 1);
    ws.write("rehashed.jsonl", &(rehashed.join("\n") + "\n"));
    refused_with(4, &partial.run(&["log", "import", "rehashed.jsonl"]), "a wrong hash", &["seq 8"]);
    assert_eq!(held(&ws.path("partial.db")), 3, "nothing written");

    // Into another store: refused, left as it was.
    let other = ws.sqlite("other.db");
    other.ok(&["config", "list"]);
    let other_log = other.log();
    let r = other.run(&["log", "import", "backup.jsonl"]);
    refused(&r, "an unrelated store", &["the target is not empty and its log is not a prefix of the file's"]);
    assert_eq!(other.log(), other_log);

    // The prefix continues with the good file.
    let rest = partial.ok(&["log", "import", "backup.jsonl"]);
    assert!(rest.stdout.starts_with("imported 9 events (the target already held 3)"), "{}", rest.stdout);
    assert_eq!(partial.verified_head(), head);
}

// ---------------------------------------------------------------------------------------------------------
// 6. Bad input.

#[test]
fn bad_clone_input_is_refused_and_changes_no_store() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    src.set("LOG_LEVEL", "debug");
    let target = ws.sqlite("target.db");
    target.ok(&["config", "list"]);
    let src_log = src.log();
    let target_log = target.log();
    let new = ws.sqlite("new.db");

    let cases: Vec<(&str, Run, Vec<&str>)> = vec![
        (
            "a missing source",
            ws.clone(&ws.sqlite("missing.db"), &new, &[]),
            vec!["no store at", "missing.db"],
        ),
        ("the same store", ws.clone(&src, &src, &[]), vec!["--from and --to name the same store"]),
        ("the same store, mirror", ws.clone(&src, &src, &["--mirror"]), vec!["--from and --to name the same store"]),
        ("--set without =", ws.clone(&src, &new, &["--set", "LOG_LEVEL"]), vec![r#"--set expects KEY=VALUE; got "LOG_LEVEL""#]),
        ("--until seq:0", ws.clone(&src, &new, &["--until", "seq:0"]), vec!["--until seq:0 is not in the source's log, which holds seqs 1 to 3"]),
        ("--until past the head", ws.clone(&src, &new, &["--until", "seq:4"]), vec!["--until seq:4 is not in the source's log"]),
        ("--until seq:x", ws.clone(&src, &new, &["--until", "seq:x"]), vec!["--until seq:N expects a number"]),
        (
            "--until before the source",
            ws.clone(&src, &new, &["--until", "2000-01-01T00:00:00Z"]),
            vec!["--until 2000-01-01T00:00:00Z is before the source existed"],
        ),
        (
            "--mirror with --set",
            ws.clone(&src, &new, &["--mirror", "--set", "LOG_LEVEL=warn"]),
            vec!["--mirror copies the log verbatim: --set, --exclude-keys and --source-secret-env apply to a replay clone"],
        ),
        (
            "--mirror with --exclude-keys",
            ws.clone(&src, &new, &["--mirror", "--exclude-keys", "LOG_LEVEL"]),
            vec!["--mirror copies the log verbatim"],
        ),
    ];
    // Every case is a flag or a point the caller got wrong: bad input, exit 2.
    for (what, r, needles) in &cases {
        refused_with(2, r, what, needles);
    }
    assert!(!ws.path("new.db").exists() && !ws.path("new.db.key").exists(), "refused before the target is touched");
    assert!(!ws.path("missing.db").exists(), "a missing source is not created");

    // Refusals found once the target is open leave it as it was.
    for (what, extra, needles) in [
        ("--set UNKNOWN_KEY=1", &["--set", "UNKNOWN_KEY=1"][..], &["--set UNKNOWN_KEY: unknown key UNKNOWN_KEY"][..]),
        ("--set a bad value", &["--set", "MAX_WORKERS=9999"], &["--set MAX_WORKERS:", "9999"]),
        (
            "--expected-head behind",
            &["--expected-head", "1"],
            &["the store changed since the plan was made: its head is seq 2, the plan saw seq 1"],
        ),
    ] {
        let r = ws.clone(&src, &target, extra);
        refused(&r, what, needles);
    }
    assert_eq!(target.log(), target_log, "the target is unchanged");
    assert_eq!(src.log(), src_log, "the source is unchanged");
    // Usage errors are clap's: exit 2.
    let usage = ws.run(&[], &["clone", "--from", &src.url]);
    assert_eq!(usage.code, Some(2), "{usage:?}");
}

// ---------------------------------------------------------------------------------------------------------
// Bugs found while writing these tests.

#[test]
fn a_refused_or_dry_run_replay_clone_leaves_no_new_target_behind() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    fill_source(&src);
    let wrong = vec![("WRONG".to_string(), "not-the-source-secret-0123456789".to_string())];
    for (name, env, extra, code) in [
        ("dry.db", vec![], &["--dry-run"][..], 0),
        ("unknown.db", vec![], &["--set", "UNKNOWN_KEY=1"], 1),
        ("secret.db", wrong, &["--source-secret-env", "WRONG"], 2),
    ] {
        let r = ws.clone_with(&env, &src, &ws.sqlite(name), extra);
        assert_eq!(r.code, Some(code), "{r:?}");
        assert!(!ws.path(name).exists(), "{name}: a store was created by {extra:?}: {}", r.stderr);
        assert!(!ws.path(&format!("{name}.key")).exists(), "{name}: a key file was created by {extra:?}");
    }
}

#[test]
fn the_same_store_spelled_two_ways_is_refused() {
    let ws = Ws::new();
    let src = ws.sqlite("src.db");
    src.set("LOG_LEVEL", "debug");
    src.set("LOG_LEVEL", "warn");
    let before = src.log();
    let alias = Db { ws: &ws, url: format!("sqlite://{}/./src.db", ws.path("").display()), env: Vec::new() };
    let r = ws.clone(&src, &alias, &["--until", "seq:3"]);
    assert_eq!(src.log(), before, "the store was changed by cloning it into itself: {r:?}");
    refused_with(2, &r, "the same store", &["same store"]);
}
