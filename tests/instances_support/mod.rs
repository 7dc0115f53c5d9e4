//! Plumbing for `tests/instances.rs`: a deployment (one store URL, PostgreSQL or SQLite, with the
//! `.env` and the encryption secret every process shares) driven through the real `cfgledger` binary,
//! several `cfgledger serve` processes on it that are killed when dropped, an HTTP client whose every
//! request is bounded by a generous timeout (so a hang fails as a timeout instead of blocking the test),
//! and watch streams read on their own threads so that a test can wait for an event with a deadline.
//!
//! Unlike `tests/api_support`, whose store is always `sqlite://c.db`, everything here takes the store URL.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");

/// The token signing key, seeded from `.env` into the shared log, so that every instance accepts a token
/// issued by any process.
pub const JWT_SECRET: &str = "jwt-plaintext-4f1c9a0e7b2d-never-shown-anywhere";
/// The bootstrap encryption secret a PostgreSQL store requires, in the process environment of every command.
pub const ENCRYPTION_SECRET: &str = "encryption-plaintext-77d3e1-never-shown";
/// How long an "eventually" condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// The longest one HTTP request may take; longer counts as a hang.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// One store shared by several processes: a URL and a working directory holding the `.env`.
pub struct Deployment {
    dir: tempfile::TempDir,
    pub db: String,
}

impl Deployment {
    /// A deployment on `db` (`postgres://…` or `sqlite://c.db`, relative to the working directory) whose
    /// `.env` holds the token key, a write rate limit high enough never to interfere, and `dotenv`.
    pub fn new(db: &str, dotenv: &str) -> Deployment {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join(".env"),
            format!("CFGLEDGER_JWT_SECRET_KEY={JWT_SECRET}\nCFGLEDGER_CONFIG_WRITE_RATE_LIMIT=1000000\n{dotenv}\n"),
        )
        .expect("write .env");
        Deployment { dir, db: db.to_string() }
    }

    /// The binary on this store with a scrubbed environment, so neither the developer's shell nor the
    /// repository's `.env` leaks in.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", ENCRYPTION_SECRET)
            .args(["--db", &self.db, "--env-file", ".env", "--actor", "tester"]);
        c
    }

    /// Runs `args` and returns stdout, panicking unless the command succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("the cfgledger binary runs");
        assert!(out.status.success(), "cfgledger {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// A file of the deployment's working directory (where a SQLite store `sqlite://c.db` lives).
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A platform admin token (this also creates and seeds the store on first use).
    pub fn admin_token(&self) -> String {
        self.ok(&["token", "issue", "--sub", "x", "--role", "platform_admin"]).trim().to_string()
    }

    /// The whole log as `cfgledger log --output json` prints it.
    pub fn log(&self) -> Vec<Value> {
        self.ok(&["log", "--output", "json"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// `cfgledger verify`'s report, panicking unless the chain verifies.
    pub fn verify(&self) -> String {
        self.ok(&["verify"]).trim().to_string()
    }

    /// `n` `cfgledger serve --listen 127.0.0.1:0 ARGS` processes, started together, each returned once it
    /// has printed its address.
    pub fn serve_many(&self, n: usize, args: &[&str]) -> Vec<Instance> {
        let children: Vec<Child> = (0..n)
            .map(|_| {
                self.cmd()
                    .args(["serve", "--listen", "127.0.0.1:0"])
                    .args(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("serve starts")
            })
            .collect();
        children.into_iter().enumerate().map(|(i, child)| Instance::started(i, child)).collect()
    }
}

/// A running `cfgledger serve`. Dropping it kills the process.
pub struct Instance {
    pub name: String,
    child: Mutex<Child>,
    /// Kept open so that the server's stdout never becomes a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    pub url: String,
    http: Http,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    /// Stops the instance with SIGTERM (a graceful shutdown) and waits for it to exit.
    pub fn terminate(self) {
        if let Ok(mut child) = self.child.lock() {
            let pid = child.id().to_string();
            let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Instance {
    fn started(index: usize, mut child: Child) -> Instance {
        let name = format!("instance {index}");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().expect("stderr piped");
        let collector = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let Some(url) = first.trim().strip_prefix("cfgledger listening on ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            let _ = collector.join();
            panic!("{name} did not start: {first:?}\nstderr:\n{}", stderr.lock().expect("lock").join("\n"));
        };
        Instance { name, child: Mutex::new(child), _stdout: stdout, url, http: Http::new(false), stderr }
    }

    /// `METHOD PATH` with a bearer token and an optional JSON body, on this instance's unpooled client.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        self.http
            .call(method, &format!("{}{path}", self.url), token, body)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}\n{}", self.name, self.stderr_tail()))
    }

    pub fn get(&self, key: &str, token: &str) -> Reply {
        self.call("GET", &format!("/admin/config/{key}"), Some(token), None)
    }

    pub fn put(&self, key: &str, token: &str, value: Value) -> Reply {
        self.call("PUT", &format!("/admin/config/{key}"), Some(token), Some(&json!({ "value": value })))
    }

    /// `GET /ready`, whatever its status.
    pub fn ready(&self) -> Reply {
        self.call("GET", "/ready", None, None)
    }

    /// Opens `GET /admin/config/watch?after=AFTER` and reads it on a thread of its own.
    pub fn watch(&self, token: &str, after: u64) -> Watch {
        Watch::open(&self.name, &format!("{}/admin/config/watch?after={after}", self.url), token)
    }

    /// Every line the server wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lock").clone()
    }

    /// The last lines of stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr();
        let from = lines.len().saturating_sub(40);
        format!("last stderr lines of {}:\n{}", self.name, lines[from..].join("\n"))
    }

    /// The stderr lines at level WARN or ERROR (and any panic), for failure messages.
    pub fn warnings(&self) -> String {
        let lines: Vec<String> = self
            .stderr()
            .into_iter()
            .filter(|l| l.contains("\"WARN\"") || l.contains("\"ERROR\"") || l.contains("panicked"))
            .collect();
        format!("warnings and errors of {} ({} lines):\n{}", self.name, lines.len(), lines.join("\n"))
    }

    /// The process is still running, answers `/health`, and has logged no panic.
    pub fn assert_alive(&self) {
        let status = self.child.lock().expect("lock").try_wait().expect("try_wait");
        assert!(status.is_none(), "{} exited: {status:?}\n{}", self.name, self.stderr_tail());
        assert_eq!(self.call("GET", "/health", None, None).status, 200, "{} answers /health", self.name);
        let stderr = self.stderr();
        let panics: Vec<&String> = stderr.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "{} panicked: {panics:?}\n{}", self.name, self.stderr_tail());
    }
}

/// A blocking HTTP client whose every request ends within [`REQUEST_TIMEOUT`].
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    /// `pooled` keeps connections open between requests (for load); otherwise each request opens its own,
    /// so that a connection the server closed is never reused.
    pub fn new(pooled: bool) -> Http {
        let mut builder =
            ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(10)).timeout(REQUEST_TIMEOUT).redirects(0);
        if !pooled {
            builder = builder.max_idle_connections(0);
        }
        Http { agent: builder.build() }
    }

    /// Sends a request and reads the whole answer whatever its status; `Err` only when no answer came
    /// (refused, reset, or not within the timeout).
    pub fn call(&self, method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> Result<Reply, String> {
        let mut req = self.agent.request(method, url);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let started = Instant::now();
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b.to_string()),
            None => req.call(),
        };
        match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::read(r),
            Err(e) => Err(format!("no answer after {:?}: {e}", started.elapsed())),
        }
    }
}

/// What the server answered, whatever the status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn read(r: ureq::Response) -> Result<Reply, String> {
        let status = r.status();
        let headers = r
            .headers_names()
            .into_iter()
            .filter_map(|name| r.header(&name).map(|v| (name.to_ascii_lowercase(), v.to_string())))
            .collect();
        let body = r.into_string().map_err(|e| format!("status {status} but the body did not arrive: {e}"))?;
        Ok(Reply { status, headers, body })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a 200 answer and returns its JSON body.
    pub fn ok_json(&self, what: &str) -> Value {
        assert_eq!(self.status, 200, "{what}: expected 200, got {}: {}", self.status, self.body);
        self.json()
    }

    /// Asserts a clean server error: a 5xx with a JSON body `{"error": {"code", "message", "details"}}`, and a
    /// `Retry-After` when it is a 503. Returns the error code.
    pub fn assert_clean_5xx(&self, what: &str) -> String {
        assert!((500..600).contains(&self.status), "{what}: expected a 5xx, got {}: {}", self.status, self.body);
        assert!(
            self.header("content-type").is_some_and(|c| c.starts_with("application/json")),
            "{what}: a 5xx is JSON: content-type {:?}, body {:?}",
            self.header("content-type"),
            self.body
        );
        let body = self.json();
        let error = &body["error"];
        assert!(
            error["code"].is_string() && error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: the error shape: {body}"
        );
        if self.status == 503 {
            assert!(
                self.header("retry-after").is_some_and(|v| v.trim().parse::<u64>().is_ok()),
                "{what}: a 503 says when to retry: Retry-After {:?}",
                self.header("retry-after")
            );
        }
        error["code"].as_str().expect("a code").to_string()
    }
}

/// Polls `f` every 25 ms until it returns `Some`; panics with `what` and the last observation after
/// [`DEADLINE`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {DEADLINE:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

/// One server-sent event: `id` is the seq, `data` the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: u64,
    pub data: Value,
}

/// A watch stream read on its own thread; events arrive on a channel. The thread ends when the server
/// closes the stream (or is killed).
pub struct Watch {
    name: String,
    events: mpsc::Receiver<Result<Sse, String>>,
    /// Every event received so far, in order.
    pub seen: Vec<Sse>,
    ended: Option<String>,
}

impl Watch {
    fn open(name: &str, url: &str, token: &str) -> Watch {
        // Reads are bounded so that a stuck stream ends the thread; the servers send keep-alives far more
        // often (`--sse-keepalive`).
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(60))
            .build();
        let response = agent
            .get(url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "text/event-stream")
            .call()
            .unwrap_or_else(|e| panic!("watch on {name}: {e}"));
        assert_eq!(response.status(), 200, "watch on {name}");
        assert!(response.content_type().starts_with("text/event-stream"), "{}", response.content_type());
        let (tx, rx) = mpsc::channel();
        let mut lines = BufReader::new(response.into_reader());
        std::thread::spawn(move || {
            // A named event (`progress`, `end`) is not a change: it is skipped, as a browser's `onmessage` does.
            let (mut id, mut data, mut named) = (None, None, false);
            loop {
                let mut line = String::new();
                match lines.read_line(&mut line) {
                    Ok(0) => {
                        let _ = tx.send(Err("the stream ended".to_string()));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("the stream broke: {e}")));
                        return;
                    }
                    Ok(_) => {}
                }
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(v) = line.strip_prefix("event:") {
                    named = v.trim() != "message";
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(v.trim()).ok();
                } else if line.is_empty() {
                    if std::mem::take(&mut named) {
                        (id, data) = (None, None);
                        continue;
                    }
                    if let (Some(id), Some(data)) = (id.take(), data.take()) {
                        if tx.send(Ok(Sse { id, data })).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Watch { name: name.to_string(), events: rx, seen: Vec::new(), ended: None }
    }

    /// Waits until an event with `id >= seq` arrived; returns every event seen so far.
    pub fn wait_for_seq(&mut self, seq: u64) -> &[Sse] {
        let deadline = Instant::now() + DEADLINE;
        while self.seen.last().is_none_or(|e| e.id < seq) {
            if let Some(why) = &self.ended {
                panic!("the watch stream of {} ended before seq {seq} ({why}); seen: {:?}", self.name, self.ids());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok(e)) => self.seen.push(e),
                Ok(Err(why)) => self.ended = Some(why),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.ended = Some("the reader stopped".into()),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "the watch stream of {} did not deliver seq {seq} within {DEADLINE:?}; seen: {:?}",
                    self.name,
                    self.ids()
                ),
            }
        }
        &self.seen
    }

    /// The ids of the events seen so far.
    pub fn ids(&self) -> Vec<u64> {
        self.seen.iter().map(|e| e.id).collect()
    }

    /// Whether the stream is still open, reading whatever has arrived meanwhile.
    pub fn is_open(&mut self) -> bool {
        while self.ended.is_none() {
            match self.events.try_recv() {
                Ok(Ok(e)) => self.seen.push(e),
                Ok(Err(why)) => self.ended = Some(why),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => self.ended = Some("the reader stopped".into()),
            }
        }
        self.ended.is_none()
    }
}

/// The `SettingChanged` entries of a log printed by `cfgledger log --output json`, as (seq, key, value), the
/// key as people name it (the log holds it qualified: `mcpgateway:KEY`).
pub fn changes(log: &[Value]) -> Vec<(u64, String, Value)> {
    log.iter()
        .filter(|e| e["kind"] == "SettingChanged")
        .map(|e| {
            (
                e["seq"].as_u64().expect("a seq"),
                cfgledger_events::namespace::display(e["payload"]["key"].as_str().expect("a key")).to_string(),
                e["payload"]["value"]["plain"].clone(),
            )
        })
        .collect()
}

/// Asserts that the log's seqs are exactly 1..=N and returns N.
pub fn assert_gapless(log: &[Value]) -> u64 {
    let seqs: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().expect("a seq")).collect();
    let expected: Vec<u64> = (1..=u64::try_from(seqs.len()).expect("a length")).collect();
    if seqs != expected {
        let first_bad = seqs.iter().zip(&expected).position(|(a, b)| a != b);
        panic!("the log is not gapless 1..={}: first difference at index {first_bad:?}", expected.len());
    }
    expected.len().try_into().expect("a length")
}
