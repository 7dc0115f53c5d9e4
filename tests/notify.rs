//! `serve --notify redis://...`: Redis Pub/Sub as an extra wake-up channel. Two servers share one SQLite
//! file whose poll interval is a minute and whose safety poll is an hour, so only a notification can make
//! the second see the first's change promptly; without `--notify` it does not. Uses the Redis server on
//! 127.0.0.1:6379 (started before the session and in CI); a missing Redis fails the test.

mod serving;

use serde_json::Value;
use serving::Server;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");
const REDIS: &str = "redis://127.0.0.1:6379";

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "notify-test-secret-0123456789")
        .args(["--db", "sqlite://c.db", "--env-file", ".env"]);
    c
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let child = cmd(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--safety-poll", "1h"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    Server::from_child(child)
}

fn token(dir: &Path) -> String {
    let out = cmd(dir).args(["token", "issue", "--sub", "t", "--role", "platform_admin"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

fn value(server: &Server, token: &str, key: &str) -> Value {
    let r = ureq::get(&format!("{}/admin/config/{key}", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("GET answers");
    r.into_json::<Value>().expect("json")["value"].clone()
}

fn put(server: &Server, token: &str, key: &str, v: Value) {
    ureq::put(&format!("{}/admin/config/{key}", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({ "value": v }))
        .expect("PUT is accepted");
}

fn setup() -> tempfile::TempDir {
    assert!(
        std::net::TcpStream::connect("127.0.0.1:6379").is_ok(),
        "these tests need the Redis server on 127.0.0.1:6379"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        "CFGLEDGER_CONFIG_POLL_INTERVAL=1m\nLOG_LEVEL=warn\nCFGLEDGER_JWT_SECRET_KEY=notify-test-signing-key-0123456789abcdef\n",
    )
    .expect(".env");
    dir
}

#[test]
fn a_redis_notification_wakes_another_instance_long_before_its_poll() {
    let dir = setup();
    let token = token(dir.path());
    let a = start(dir.path(), &["--notify", REDIS]);
    let b = start(dir.path(), &["--notify", REDIS]);
    // Both subscribed: a change now reaches b through Redis. Retry the PUT until the subscription is up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 1;
    loop {
        put(&a, &token, "MAX_WORKERS", serde_json::json!(n));
        let seen = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            value(&b, &token, "MAX_WORKERS") == n
        });
        if seen {
            break;
        }
        assert!(Instant::now() < deadline, "b never saw a's change; its poll is a minute away, so Redis failed");
        n += 1;
    }
    // And the other way round.
    put(&b, &token, "LOG_LEVEL", serde_json::json!("error"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while value(&a, &token, "LOG_LEVEL") != "error" {
        assert!(Instant::now() < deadline, "a never saw b's change");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_notify_the_same_change_waits_for_the_poll() {
    let dir = setup();
    let token = token(dir.path());
    let a = start(dir.path(), &[]);
    let b = start(dir.path(), &[]);
    put(&a, &token, "MAX_WORKERS", serde_json::json!(7));
    // Nothing wakes b for a minute: after two seconds it still has the old value. (The control for the test
    // above: it shows that the prompt update there came from Redis.)
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(value(&b, &token, "MAX_WORKERS"), 7);
    assert_eq!(value(&a, &token, "MAX_WORKERS"), 7);
}
