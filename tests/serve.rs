//! `cfgledger serve` as a user meets it: the real binary on a random port, spoken to over HTTP, with a
//! second process changing settings in the same SQLite file.

mod serving;

use serde_json::Value;
use serving::Server;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--db", "sqlite://c.db", "--env-file", ".env"]);
    c
}

/// A platform-admin token for the store in `dir`, as automation gets one.
fn token(dir: &Path) -> String {
    let out = cmd(dir)
        .args(["token", "issue", "--sub", "tester", "--role", "platform_admin"])
        .output()
        .expect("token issue runs");
    assert!(out.status.success(), "token issue failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

fn start(dir: &Path) -> Server {
    let child = cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let server = Server::from_child(child);
    // Issued once the server runs: a store without a signing key gets one when serve starts.
    let token = token(dir);
    TOKEN.with(|t| *t.borrow_mut() = token);
    server
}

thread_local! {
    /// The token `get` sends: issued by the last `start` on this test's thread.
    static TOKEN: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn get(url: &str) -> (u16, Value) {
    let bearer = TOKEN.with(|t| format!("Bearer {}", t.borrow()));
    match ureq::get(url).set("Authorization", &bearer).call() {
        Ok(r) => (r.status(), r.into_json().expect("json")),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().expect("json error body")),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

fn set(dir: &Path, key: &str, value: &str) {
    let out = cmd(dir).args(["config", "set", key, value]).output().expect("config set runs");
    assert!(out.status.success(), "config set failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Polls `f` until it returns true or the deadline passes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        "LOG_LEVEL=debug\nCFGLEDGER_JWT_SECRET_KEY=0123456789abcdef0123456789abcdef-secret\n",
    )
    .expect("write .env");
    dir
}

#[test]
fn serves_health_ready_and_settings_with_secrets_masked() {
    let dir = setup();
    let server = start(dir.path());
    assert_eq!(get(&format!("{}/health", server.url)), (200, serde_json::json!({"status": "ok"})));
    let (status, ready) = get(&format!("{}/ready", server.url));
    assert_eq!(status, 200);
    assert_eq!(ready["lag"], 0);
    assert_eq!(ready["head"], 2, "genesis + EnvSeeded");

    let (status, item) = get(&format!("{}/admin/config/LOG_LEVEL", server.url));
    assert_eq!(status, 200);
    assert_eq!(item["value"], "debug");
    assert_eq!(item["source"], "db");

    let (status, list) = get(&format!("{}/admin/config?namespace=cfgledger&category=security", server.url));
    assert_eq!(status, 200);
    let body = list.to_string();
    assert!(!body.contains("0123456789abcdef"), "a secret leaked: {body}");
    let jwt = list["items"].as_array().unwrap().iter().find(|i| i["key"] == "JWT_SECRET_KEY").unwrap();
    assert_eq!(jwt["value"], "********");
    assert!(list["items"].as_array().unwrap().iter().all(|i| i["category"] == "security"));

    let (status, err) = get(&format!("{}/admin/config/NO_SUCH_KEY", server.url));
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "unknown_key");
    assert_eq!(err["error"]["message"], "unknown key NO_SUCH_KEY");
}

#[test]
fn another_process_change_becomes_visible_without_restart() {
    let dir = setup();
    let server = start(dir.path());
    set(dir.path(), "LOG_LEVEL", "warn");
    eventually("LOG_LEVEL=warn on the server", || {
        get(&format!("{}/admin/config/LOG_LEVEL", server.url)).1["value"] == "warn"
    });
    let (_, ready) = get(&format!("{}/ready", server.url));
    assert_eq!(ready["applied"], 3);
}

#[test]
fn restart_required_change_is_pending_on_a_running_server() {
    let dir = setup();
    std::fs::write(
        dir.path().join(".env"),
        "CFGLEDGER_TOKEN_EXPIRY=7d\nCFGLEDGER_JWT_SECRET_KEY=0123456789abcdef0123456789abcdef-secret\n",
    )
    .expect("write .env");
    let server = start(dir.path());
    // cfgledger's own restart-required key, corrected by a re-seed while the server runs: the server keeps the
    // value it started with and reports the new one as pending.
    std::fs::write(
        dir.path().join(".env"),
        "CFGLEDGER_TOKEN_EXPIRY=1d\nCFGLEDGER_JWT_SECRET_KEY=0123456789abcdef0123456789abcdef-secret\n",
    )
    .expect("write .env");
    let out = cmd(dir.path()).args(["config", "reseed", "cfgledger:TOKEN_EXPIRY"]).output().expect("reseed runs");
    assert!(out.status.success(), "reseed failed: {}", String::from_utf8_lossy(&out.stderr));
    let url = format!("{}/admin/config/cfgledger:TOKEN_EXPIRY", server.url);
    eventually("TOKEN_EXPIRY pending", || get(&url).1["pending_restart"] == true);
    let (_, item) = get(&url);
    assert_eq!(item["value"], "7d", "the running process keeps its boot value");
    assert_eq!(item["pending_value"], "1d");

    // An application's restart-required key takes effect when the application restarts, not this server:
    // the server shows the stored value, with nothing pending, as a one-shot command does.
    set(dir.path(), "PRIMARY_WORKER_LOCK_PATH", "/run/gateway/leader.lock");
    let app = format!("{}/admin/config/PRIMARY_WORKER_LOCK_PATH", server.url);
    eventually("the gateway's key applied", || get(&app).1["value"] == "/run/gateway/leader.lock");
    assert_eq!(get(&app).1["pending_restart"], false);

    drop(server);
    let restarted = start(dir.path());
    let (_, item) = get(&format!("{}/admin/config/cfgledger:TOKEN_EXPIRY", restarted.url));
    assert_eq!(item["value"], "1d");
    assert_eq!(item["pending_restart"], false);
}

/// Collects a child's stderr lines on a thread, so a test can wait for a line without blocking on the pipe.
fn collect_stderr(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    lines
}

/// Starts `serve` in `dir` with its stderr collected line by line.
fn start_logged(dir: &Path) -> (Server, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut child = cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let lines = collect_stderr(&mut child);
    (Server::from_child(child), lines)
}

#[test]
fn log_level_and_format_follow_the_store_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "CFGLEDGER_LOG_LEVEL=info\nCFGLEDGER_LOG_FORMAT=json\n")
        .expect("write .env");
    let (server, lines) = start_logged(dir.path());
    let token = token(dir.path());
    TOKEN.with(|t| *t.borrow_mut() = token);
    let has = |pred: &dyn Fn(&str) -> bool| lines.lock().expect("lock").iter().any(|l| pred(l));
    let value_is = |key: &str, v: i64| get(&format!("{}/admin/config/{key}", server.url)).1["value"] == v;

    // At info, applying another process's change logs nothing at debug level.
    set(dir.path(), "MAX_WORKERS", "5");
    eventually("MAX_WORKERS=5 applied", || value_is("MAX_WORKERS", 5));
    assert!(!has(&|l| l.contains("applied events written by other processes")), "a debug line at info");

    // The application's LOG_LEVEL is the gateway's: changing it leaves cfgledger's own log alone.
    set(dir.path(), "LOG_LEVEL", "debug");
    set(dir.path(), "MAX_WORKERS", "8");
    eventually("MAX_WORKERS=8 applied", || value_is("MAX_WORKERS", 8));
    assert!(!has(&|l| l.contains("log level changed")), "the gateway's LOG_LEVEL changed cfgledger's");
    assert!(!has(&|l| l.contains("applied events written by other processes")), "a debug line at info");

    set(dir.path(), "cfgledger:LOG_LEVEL", "debug");
    eventually("the level change is logged", || has(&|l| l.contains("log level changed")));
    set(dir.path(), "MAX_WORKERS", "6");
    eventually("a JSON debug line", || {
        has(&|l| l.contains("\"level\":\"DEBUG\"") && l.contains("applied events written by other processes"))
    });

    set(dir.path(), "cfgledger:LOG_FORMAT", "text");
    eventually("the format change is logged", || has(&|l| l.contains("log format changed")));
    set(dir.path(), "MAX_WORKERS", "7");
    eventually("a text debug line", || {
        has(&|l| !l.starts_with('{') && l.contains("DEBUG") && l.contains("applied events written by other processes"))
    });
}

#[test]
fn the_signing_key_is_generated_by_serve_only_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "LOG_LEVEL=warn\n").expect("write .env");
    // token issue never invents a key: a token signed with one nobody configured would be a surprise.
    let out = cmd(dir.path()).args(["token", "issue", "--sub", "t", "--role", "viewer"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "a missing or unusable key is the caller's configuration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET_KEY has no value"), "{stderr}");
    assert!(stderr.contains("cfgledger serve"), "says how to get one: {stderr}");

    // A key set in the environment but unusable stops serve instead of being replaced by a random one.
    let out = cmd(dir.path())
        .env("CFGLEDGER_JWT_SECRET_KEY", "too-short")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "a missing or unusable key is the caller's configuration");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET_KEY in the environment is not usable"), "{stderr}");
    assert!(!stderr.contains("too-short"), "the value is not echoed: {stderr}");

    // Then serve generates one at first start, and token issue signs with it.
    let server = start(dir.path());
    assert_eq!(get(&format!("{}/admin/config/LOG_LEVEL", server.url)).0, 200);
}

#[test]
fn a_start_names_the_keys_whose_env_line_differs_from_the_store_without_their_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".env"), "LOG_LEVEL=warn\nBASIC_AUTH_PASSWORD=first-secret-value-1\n")
        .expect("write .env");
    set(dir.path(), "MAX_WORKERS", "9");
    // The operator edits .env afterwards: the store's values stay in force, and the next start says so.
    std::fs::write(dir.path().join(".env"), "LOG_LEVEL=error\nBASIC_AUTH_PASSWORD=second-secret-value-2\n")
        .expect("write .env");
    let (_server, lines) = start_logged(dir.path());
    let has = |needle: &str| lines.lock().expect("lock").iter().any(|l| l.contains(needle));
    eventually("the drift lines", || has("drift: LOG_LEVEL") && has("drift: BASIC_AUTH_PASSWORD"));
    assert!(has("drift: LOG_LEVEL in .env line 1 differs from the store's value; the store's value is in force"));
    let all = lines.lock().expect("lock").join("\n");
    assert!(
        !all.contains("second-secret-value-2") && !all.contains("first-secret-value-1"),
        "no value is shown: {all}"
    );
}
