//! The fault campaign of issue 17 that stays in the suite: the real `cfgledger serve` under concurrent
//! HTTP writers, each recording every write the server acknowledged, through faults a store must survive:
//! kill -9 of the server (SQLite and PostgreSQL), PostgreSQL itself stopped with `pg_ctl stop -m immediate`
//! (a private cluster the test starts), and a full disk (a tmpfs the test mounts; we run as root in CI, and
//! a test that cannot mount fails loudly). After each fault: not one acknowledged write lost (each is in
//! the log at the seq it was acknowledged with, with its value), the log gapless from seq 1 to the head, and
//! `cfgledger verify` passing. Cycles are few and short, so the file runs in about two minutes.

mod pg;
mod serving;
mod support;

use serde_json::Value;
use serving::Server;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");
const SECRET: &str = "faults-test-secret-0123456789abcdef";
/// Integer keys of the gateway's catalog without bounds: writer `i` owns `KEYS[i]` alone, so the values it
/// writes to it only grow.
const KEYS: [&str; 4] = ["MAX_TEAMS_PER_USER", "MAX_MEMBERS_PER_TEAM", "MAX_TEAM_MEMBER_SEEDS", "META_MAX_KEYS"];

/// One store, its `.env`, and how to run the binary on it.
struct Rig {
    dir: tempfile::TempDir,
    db: String,
}

impl Rig {
    /// A rig whose store is at `db` (`None`: `sqlite://c.db` in the rig's directory).
    fn new(db: Option<String>) -> Rig {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join(".env"),
            "CFGLEDGER_JWT_SECRET_KEY=faults-test-signing-key-0123456789abcdef\n\
             CFGLEDGER_CONFIG_WRITE_RATE_LIMIT=1000000\nCFGLEDGER_LOG_LEVEL=warn\n",
        )
        .expect("write .env");
        let db = db.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("c.db").display()));
        Rig { dir, db }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", SECRET)
            .args(["--db", &self.db, "--env-file", ".env", "--actor", "faults"]);
        c
    }

    /// Runs a command to its end; its exit code and output.
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.cmd().args(args).output().expect("the cfgledger binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn token(&self) -> String {
        let (code, out, err) = self.run(&["token", "issue", "--sub", "faults", "--role", "platform_admin"]);
        assert_eq!(code, Some(0), "token issue: {err}");
        out.trim().to_string()
    }

    /// `serve` on a port of its own, its log in `serve.log` of the rig's directory.
    fn serve(&self) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("serve.log opens");
        let child = self
            .cmd()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        Server::from_child(child)
    }

    fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The whole log, one JSON object per event, as `log --output json` prints it.
    fn log(&self) -> Vec<Value> {
        let (code, out, err) = self.run(&["log", "--output", "json"]);
        assert_eq!(code, Some(0), "log: {err}");
        out.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    /// Every acknowledged write in the log at its seq with its value, the log gapless, and `verify` passing;
    /// no write whose answer was a refusal in the log. The head.
    fn check(&self, acks: &[Ack], refused: &[(String, i64)]) -> u64 {
        let log = self.log();
        let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
        let head = seqs.len() as u64;
        assert_eq!(seqs, (1..=head).collect::<Vec<u64>>(), "the log is gapless from seq 1");
        let by_seq: BTreeMap<u64, &Value> = log.iter().map(|e| (e["seq"].as_u64().expect("seq"), e)).collect();
        for ack in acks {
            let event = by_seq.get(&ack.seq).unwrap_or_else(|| panic!("acknowledged {ack:?} is not in the log"));
            assert_eq!(event["kind"], "SettingChanged", "the event at {ack:?}");
            assert_eq!(event["payload"]["key"], format!("mcpgateway:{}", ack.key), "the event at {ack:?}");
            assert_eq!(event["payload"]["value"]["plain"], ack.value, "the event at {ack:?}");
        }
        let written: Vec<(String, i64)> = log
            .iter()
            .filter(|e| e["kind"] == "SettingChanged")
            .filter_map(|e| {
                let key = e["payload"]["key"].as_str()?.strip_prefix("mcpgateway:")?.to_string();
                Some((key, e["payload"]["value"]["plain"].as_i64()?))
            })
            .collect();
        for r in refused {
            assert!(!written.contains(r), "{r:?} was refused, yet it is in the log");
        }
        // A key's version is the seq of its last change: an acknowledged version names its own event.
        for ack in acks {
            assert_eq!(ack.version, ack.seq, "{ack:?}: the version is the change's seq");
        }
        let (code, out, err) = self.run(&["verify"]);
        assert_eq!(code, Some(0), "verify fails:\n{out}{err}");
        assert!(out.starts_with("ok:"), "verify says {out}");
        head
    }
}

/// A write the server acknowledged (200), as its answer gave it.
#[derive(Debug, Clone)]
struct Ack {
    key: String,
    value: i64,
    seq: u64,
    version: u64,
}

/// A write the server answered with an error.
#[derive(Debug, Clone)]
struct Refusal {
    status: u16,
    code: String,
    message: String,
    key: String,
    value: i64,
}

/// What the writers saw: acknowledged writes, refusals, and transport failures (the server was down).
#[derive(Default)]
struct Seen {
    acks: Vec<Ack>,
    refusals: Vec<Refusal>,
    unreachable: usize,
}

/// Concurrent writers over HTTP, one per key of [`KEYS`], following the server wherever it listens.
struct Load {
    url: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, token: &str) -> Load {
        let url = Arc::new(Mutex::new(url.to_string()));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let threads = KEYS
            .iter()
            .map(|key| {
                let (url, stop, seen, token, key) =
                    (url.clone(), stop.clone(), seen.clone(), token.to_string(), key.to_string());
                std::thread::spawn(move || write_loop(&url, &stop, &seen, &token, &key))
            })
            .collect();
        Load { url, stop, seen, threads }
    }

    fn follow(&self, url: &str) {
        *self.url.lock().expect("url") = url.to_string();
    }

    fn acks(&self) -> usize {
        self.seen.lock().expect("seen").acks.len()
    }

    fn refusals(&self) -> usize {
        self.seen.lock().expect("seen").refusals.len()
    }

    /// Waits until `more` writes beyond `from` were acknowledged; panics at the deadline.
    fn wait_acks(&self, from: usize, more: usize, deadline: Duration, what: &str) {
        let done = support::wait_for(deadline, || self.acks() >= from + more);
        assert!(done, "{what}: only {} of {more} writes acknowledged", self.acks() - from);
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().expect("a writer thread ends without panicking");
        }
        std::mem::take(&mut *self.seen.lock().expect("seen"))
    }
}

impl Drop for Load {
    /// A test that fails midway stops its writers too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn write_loop(url: &Mutex<String>, stop: &AtomicBool, seen: &Mutex<Seen>, token: &str, key: &str) {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let mut value = 0i64;
    while !stop.load(Ordering::SeqCst) {
        value += 1;
        let base = url.lock().expect("url").clone();
        let answer = agent
            .put(&format!("{base}/admin/config/{key}"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(serde_json::json!({ "value": value }));
        match answer {
            Ok(r) => {
                let item: Value = r.into_json().expect("a 200 answer is JSON");
                assert_eq!(item["value"], value, "the answer to {key}={value}");
                let ack = Ack {
                    key: key.to_string(),
                    value,
                    seq: item["seq"].as_u64().expect("the answer names the seq"),
                    version: item["version"].as_u64().expect("the answer names the version"),
                };
                seen.lock().expect("seen").acks.push(ack);
            }
            Err(ureq::Error::Status(status, r)) => {
                let body: Value = r.into_json().unwrap_or(Value::Null);
                let code = body["error"]["code"].as_str().unwrap_or("").to_string();
                let message = body["error"]["message"].as_str().unwrap_or("").to_string();
                let refusal = Refusal { status, code, message, key: key.to_string(), value };
                seen.lock().expect("seen").refusals.push(refusal);
                // Pacing, not a wait for a condition: a refused writer retries as a client would, not in a spin.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(ureq::Error::Transport(_)) => {
                seen.lock().expect("seen").unreachable += 1;
                // The server is down or restarting: retry soon, without spinning.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn get(server: &Server, token: &str, key: &str) -> Result<Value, String> {
    match ureq::get(&format!("{}/admin/config/{key}", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .timeout(Duration::from_secs(10))
        .call()
    {
        Ok(r) => Ok(r.into_json().expect("a 200 answer is JSON")),
        Err(e) => Err(e.to_string()),
    }
}

/// After a restart, the server itself shows at least the last acknowledged value and version of each key.
fn served_at_least(server: &Server, token: &str, acks: &[Ack]) {
    for key in KEYS {
        let Some(last) = acks.iter().filter(|a| a.key == key).max_by_key(|a| a.seq) else { continue };
        let item = get(server, token, key).unwrap_or_else(|e| panic!("GET {key} after restart: {e}"));
        assert!(item["value"].as_i64().expect("an int") >= last.value, "{key} went back: {item} after {last:?}");
        assert!(item["version"].as_u64().expect("a version") >= last.version, "{key}'s version went back");
    }
}

/// kill -9 cycles of `serve` under the writers; every cycle restarts and checks what the server shows.
fn kill_cycles(rig: &Rig, cycles: usize) {
    let token = rig.token();
    let mut server = rig.serve();
    let load = Load::start(&server.url, &token);
    for cycle in 0..cycles {
        load.wait_acks(load.acks(), 100, Duration::from_secs(60), &format!("cycle {cycle}"));
        server.child.kill().expect("kill -9 the server");
        server.child.wait().expect("the killed server is reaped");
        let acks = load.seen.lock().expect("seen").acks.clone();
        server = rig.serve();
        load.follow(&server.url);
        served_at_least(&server, &token, &acks);
    }
    load.wait_acks(load.acks(), 40, Duration::from_secs(60), "after the last restart");
    let seen = load.finish();
    drop(server);
    assert!(seen.refusals.is_empty(), "a write was refused by a running server: {:?}", &seen.refusals[..1]);
    let head = rig.check(&seen.acks, &[]);
    assert!(head >= seen.acks.len() as u64, "the head {head} holds every acknowledged write");
    eprintln!(
        "{cycles} kill -9 cycles: {} writes acknowledged, none lost; {} attempts found the server down; head {head}",
        seen.acks.len(),
        seen.unreachable
    );
}

#[test]
fn kill_9_of_serve_on_sqlite_loses_no_acknowledged_write() {
    kill_cycles(&Rig::new(None), 20);
}

#[test]
fn kill_9_of_serve_on_postgres_loses_no_acknowledged_write() {
    let db = pg::TestDb::new();
    kill_cycles(&Rig::new(Some(db.url())), 12);
}

#[test]
fn postgres_stopped_immediately_under_load_refuses_writes_cleanly_and_resumes() {
    let cluster = pg::Cluster::start_new().unwrap_or_else(|e| panic!("a private PostgreSQL cluster: {e}"));
    let db = pg::TestDb::on(&cluster.base_url());
    let rig = Rig::new(Some(db.url()));
    let token = rig.token();
    let server = rig.serve();
    let load = Load::start(&server.url, &token);
    for outage in 0..3 {
        load.wait_acks(load.acks(), 40, Duration::from_secs(60), &format!("before outage {outage}"));
        cluster.stop().expect("pg_ctl stop -m immediate");
        // While PostgreSQL is down, writes are refused with an answer (not a hang, not a dropped connection)...
        let refused = load.refusals();
        let done = support::wait_for(Duration::from_secs(60), || load.refusals() >= refused + 8);
        assert!(done, "outage {outage}: no write was refused while PostgreSQL was down");
        // ... and reads are still served, from memory.
        for key in KEYS {
            let item = get(&server, &token, key).unwrap_or_else(|e| panic!("outage {outage}: GET {key}: {e}"));
            assert!(item["value"].is_i64(), "GET {key} during the outage: {item}");
        }
        assert!(server.url.starts_with("http://"));
        cluster.start().expect("PostgreSQL starts again");
        load.wait_acks(load.acks(), 40, Duration::from_secs(90), &format!("after outage {outage}"));
    }
    let seen = load.finish();
    drop(server);
    for r in &seen.refusals {
        assert_eq!(r.status, 503, "a write during the outage answered {r:?}");
        assert!(!r.code.is_empty(), "a 503 without an error code: {r:?}");
        assert!(!r.message.contains("postgres://"), "a 503 leaks the database URL: {r:?}");
    }
    // A COMMIT that PostgreSQL made durable just before it stopped can lose its answer. The server looks it up
    // in the log once the database answers again, and says `outcome_unknown` only if it cannot: every other
    // refusal promises that nothing was written.
    let refused: Vec<(String, i64)> =
        seen.refusals.iter().filter(|r| r.code != "outcome_unknown").map(|r| (r.key.clone(), r.value)).collect();
    let head = rig.check(&seen.acks, &refused);
    eprintln!(
        "3 immediate stops of PostgreSQL: {} writes acknowledged, none lost; {} refused ({:?}); head {head}",
        seen.acks.len(),
        seen.refusals.len(),
        seen.refusals.first()
    );
    drop(db);
    drop(cluster);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it and needs root (or CAP_SYS_ADMIN) for that: mount said {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { path: path.to_path_buf() }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Fills the file system under `dir` with one file, until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler file");
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // The last partial chunk: byte by byte would be slow; 512-byte steps are enough to leave no block free.
    let small = [0u8; 512];
    while file.write(&small).is_ok_and(|n| n > 0) {}
    let _ = file.sync_all();
    path
}

#[test]
fn a_full_disk_refuses_writes_cleanly_keeps_reads_and_recovers() {
    let mnt = tempfile::tempdir().expect("a mount point");
    let tmpfs = Tmpfs::mount(mnt.path(), "8m");
    let mnt = mnt.path();
    let rig = Rig::new(Some(format!("sqlite://{}", mnt.join("c.db").display())));
    let token = rig.token();
    let server = rig.serve();
    // A free-space floor of 1 MiB, below this 8 MB file system's (the default, 64 MiB, is above it).
    let floor = ureq::put(&format!("{}/admin/config/cfgledger:READY_MIN_FREE_SPACE", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({ "value": 1 }));
    assert!(floor.is_ok(), "set READY_MIN_FREE_SPACE: {floor:?}");
    assert_eq!(ready(&server).0, 200, "ready before the disk is full: {:?}", ready(&server));
    let load = Load::start(&server.url, &token);
    load.wait_acks(0, 40, Duration::from_secs(60), "before the disk is full");
    let filler = fill(mnt);
    // Writes go on until the store needs a block it cannot have; then they are refused, with an answer.
    let refused = support::wait_for(Duration::from_secs(60), || load.refusals() >= 20 || !server_alive(&server));
    assert!(server_alive(&server), "the server died on a full disk:\n{}", rig.serve_log());
    assert!(refused, "no write was refused on a full disk ({} acknowledged)", load.acks());
    // Reads are still served, and the server still runs.
    for key in KEYS {
        let item = get(&server, &token, key).unwrap_or_else(|e| panic!("GET {key} on a full disk: {e}"));
        assert!(item["value"].is_i64(), "GET {key} on a full disk: {item}");
    }
    let health = ureq::get(&format!("{}/health", server.url)).call();
    assert!(health.is_ok(), "/health on a full disk: {health:?}");
    // A load balancer hears that this instance cannot take writes, and why.
    let (status, body) = ready(&server);
    assert_eq!(status, 503, "/ready on a full disk: {body}");
    assert!(body["status"] == "disk_full" || body["status"] == "writes_failing", "/ready on a full disk: {body}");
    // Space comes back: writes resume, and so does readiness.
    std::fs::remove_file(&filler).expect("free the space");
    load.wait_acks(load.acks(), 40, Duration::from_secs(60), "after space is freed");
    let ready_again = support::wait_for(Duration::from_secs(30), || ready(&server).0 == 200);
    assert!(ready_again, "not ready again after space was freed: {:?}", ready(&server));
    assert!(server_alive(&server), "the server died:\n{}", rig.serve_log());
    let seen = load.finish();
    drop(server);
    for r in &seen.refusals {
        assert!(
            r.status == 503 || r.status == 507,
            "a write on a full disk answered {r:?}\nserve's log:\n{}",
            rig.serve_log()
        );
        assert!(!r.code.is_empty() && r.code != "internal", "a {} without a clear code: {r:?}", r.status);
    }
    assert!(!rig.serve_log().contains("panicked"), "serve panicked:\n{}", rig.serve_log());
    // On a local disk a refused write was rolled back: none of them may be in the log.
    let refused: Vec<(String, i64)> = seen.refusals.iter().map(|r| (r.key.clone(), r.value)).collect();
    let head = rig.check(&seen.acks, &refused);
    eprintln!(
        "full disk: {} writes acknowledged, none lost; {} refused ({:?}); head {head}",
        seen.acks.len(),
        seen.refusals.len(),
        seen.refusals.first()
    );
    drop(rig);
    drop(tmpfs);
}

/// `GET /ready`: its status and body, whatever the status.
fn ready(server: &Server) -> (u16, serde_json::Value) {
    let (status, text) = match ureq::get(&format!("{}/ready", server.url)).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("/ready: {e}"),
    };
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn server_alive(server: &Server) -> bool {
    // `Server` owns its child; a shared reference cannot reap it, so ask the kernel whether it still runs.
    Path::new(&format!("/proc/{}", server.child.id())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}
