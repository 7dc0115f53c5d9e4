//! Plumbing for `tests/api.rs`: a store in a temporary directory driven through the real `cfgledger`
//! binary (tokens, users, the raw log), a running `cfgledger serve` on a random port whose stderr is
//! collected line by line, a small HTTP client on top of ureq that turns every answer (2xx or not) into a
//! [`Reply`], and a reader of the watch stream's server-sent events.

// Shared by several test binaries, each using a part.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");

/// The token signing key every store is seeded with (`.env`): a secret that must never be shown.
pub const JWT_SECRET: &str = "jwt-plaintext-4f1c9a0e7b2d-never-shown-anywhere";
/// The bootstrap encryption secret, passed in the process environment of every command.
pub const ENCRYPTION_SECRET: &str = "encryption-plaintext-77d3e1-never-shown";

/// A store at `c.db` in a temporary directory, with an `.env` that seeds it at first start.
pub struct Store {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// The `--db` URL: the SQLite file `c.db` in the directory, unless [`Store::on_db`] names another.
    db: String,
}

impl Store {
    /// A store whose `.env` holds `JWT_SECRET_KEY` and the lines of `dotenv`.
    pub fn new(dotenv: &str) -> Store {
        Store::with_process_env(dotenv, &[])
    }

    /// Like [`Store::new`], with extra variables in the process environment of every command.
    pub fn with_process_env(dotenv: &str, env: &[(&str, &str)]) -> Store {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(".env"), format!("CFGLEDGER_JWT_SECRET_KEY={JWT_SECRET}\n{dotenv}\n"))
            .expect("write .env");
        Store {
            dir,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            db: "sqlite://c.db".into(),
        }
    }

    /// Like [`Store::new`], on the store at `db` (a PostgreSQL test database's URL).
    pub fn on_db(dotenv: &str, db: &str) -> Store {
        Store { db: db.to_string(), ..Store::new(dotenv) }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir().join("c.db")
    }

    /// The binary on this store, with a scrubbed environment (PATH, HOME, the encryption secret and the
    /// store's extra variables), so neither the developer's shell nor the repository's `.env` leaks in.
    pub fn cmd(&self) -> Command {
        self.cmd_as("tester")
    }

    /// [`Store::cmd`] with `actor` as `--actor`.
    pub fn cmd_as(&self, actor: &str) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir())
            .env_clear()
            .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir())
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", ENCRYPTION_SECRET)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["--db", &self.db, "--env-file", ".env", "--actor", actor]);
        c
    }

    /// Runs `args` and returns stdout, panicking unless the command succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("the cfgledger binary runs");
        assert!(out.status.success(), "cfgledger {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// A bearer token for `sub` with `role`, valid for an hour.
    pub fn token(&self, sub: &str, role: &str) -> String {
        self.token_ttl(sub, role, "1h")
    }

    pub fn token_ttl(&self, sub: &str, role: &str, ttl: &str) -> String {
        self.ok(&["token", "issue", "--sub", sub, "--role", role, "--ttl", ttl]).trim().to_string()
    }

    /// `user add NAME --role ROLE` with the password on standard input.
    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(["user", "add", name, "--role", role])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("user add starts");
        child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write the password");
        let out = child.wait_with_output().expect("user add ends");
        assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The whole log as `cfgledger log --output json` prints it (secrets masked).
    pub fn log(&self) -> Vec<Value> {
        self.ok(&["log", "--output", "json"])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// Every byte SQLite holds for the store: the database file, its write-ahead log and shared memory.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.db_path().into_os_string();
            name.push(suffix);
            if let Ok(b) = std::fs::read(PathBuf::from(name)) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty(), "the store has no database file");
        bytes
    }

    /// `cfgledger serve --listen 127.0.0.1:0 ARGS`, once it has printed its address.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_on("127.0.0.1:0", args)
    }

    /// `cfgledger serve --listen ADDR ARGS` (a server started again where its clients knew it).
    pub fn serve_on(&self, listen: &str, args: &[&str]) -> Server {
        let mut child = self
            .cmd()
            .args(["serve", "--listen", listen])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("a first line on stdout");
        let Some(url) = first.trim().strip_prefix("cfgledger listening on ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start: {first:?}\nstderr:\n{}", stderr.lock().expect("lock").join("\n"));
        };
        // No connection reuse: a server may close a connection after refusing a request whose body it
        // did not read, and a pooled connection closed under the client would fail the next request.
        let agent = ureq::AgentBuilder::new()
            .max_idle_connections(0)
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(60))
            .redirects(0)
            .build();
        Server { child: Mutex::new(child), _stdout: stdout, url, agent, stderr }
    }
}

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Mutex<Child>,
    /// Kept open so that the server's stdout never becomes a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    pub url: String,
    agent: ureq::Agent,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the server answered, whatever the status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// A reply whose body was not read (a stream).
    pub fn status_only(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new() }
    }

    pub fn from_response(r: ureq::Response) -> Reply {
        let status = r.status();
        let headers = r
            .headers_names()
            .into_iter()
            .filter_map(|name| r.header(&name).map(|v| (name.to_ascii_lowercase(), v.to_string())))
            .collect();
        let body = r.into_string().expect("a readable body");
        Reply { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts a 2xx answer and returns its JSON body.
    pub fn ok_json(&self) -> Value {
        assert!((200..300).contains(&self.status), "expected success, got {}: {}", self.status, self.body);
        self.json()
    }

    /// Asserts the error shape `{"error": {"code", "message", "details"}}` with `status` and `code`, a JSON
    /// content type and a non-empty message; returns the inner error object.
    pub fn error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status of {}", self.body);
        assert!(
            self.header("content-type").is_some_and(|c| c.starts_with("application/json")),
            "an error is JSON: {:?}",
            self.header("content-type")
        );
        let body = self.json();
        let outer = body.as_object().expect("an object");
        assert_eq!(outer.keys().collect::<Vec<_>>(), ["error"], "the error shape: {body}");
        let inner = body["error"].as_object().expect("error is an object");
        let mut keys: Vec<&str> = inner.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "details", "message"], "the error shape: {body}");
        assert_eq!(body["error"]["code"], code, "the error code: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {body}");
        body["error"].clone()
    }

    /// The error's message, after checking its shape.
    pub fn error_message(&self, status: u16, code: &str) -> String {
        self.error(status, code)["message"].as_str().expect("a message").to_string()
    }
}

/// `req` declaring a JSON body, unless it declares a type of its own.
fn json_typed(req: ureq::Request) -> ureq::Request {
    if req.header("Content-Type").is_some() {
        req
    } else {
        req.set("Content-Type", "application/json")
    }
}

/// Sends a prepared request (a body as JSON, unless it says otherwise) and reads the whole answer, whatever
/// its status.
pub fn perform(req: ureq::Request, body: Option<&[u8]>) -> Reply {
    let what = format!("{} {}", req.method(), req.url());
    let result = match body {
        Some(b) => json_typed(req).send_bytes(b),
        None => req.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from_response(r),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Sends `body` without a `Content-Length`, as `Transfer-Encoding: chunked`, and reads the answer.
pub fn perform_chunked(req: ureq::Request, body: &[u8]) -> Reply {
    let what = format!("{} {}", req.method(), req.url());
    match json_typed(req).send(std::io::Cursor::new(body.to_vec())) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Reply::from_response(r),
        Err(e) => panic!("{what}: {e}"),
    }
}

impl Server {
    /// A request on `path` with `Authorization: Bearer TOKEN` when a token is given.
    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> ureq::Request {
        let req = self.agent.request(method, &format!("{}{path}", self.url));
        match token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// A request without a body.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>) -> Reply {
        perform(self.request(method, path, token), None)
    }

    pub fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token))
    }

    /// A request with raw body bytes.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Reply {
        perform(self.request(method, path, token).set("Content-Type", "application/json"), Some(body))
    }

    /// A request with a JSON body.
    pub fn send_json(&self, method: &str, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(method, path, token, body.to_string().as_bytes())
    }

    /// `PUT /admin/config/KEY {"value": VALUE}`.
    pub fn put(&self, key: &str, token: &str, value: Value) -> Reply {
        self.send_json("PUT", &format!("/admin/config/{key}"), Some(token), &json!({ "value": value }))
    }

    /// The log's head in the store, as `/ready` reports it (whatever its status).
    pub fn head(&self) -> u64 {
        let reply = self.call("GET", "/ready", None);
        reply.json()["head"].as_u64().unwrap_or_else(|| panic!("no head in /ready: {}", reply.body))
    }

    /// Every line the server wrote to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lock").clone()
    }

    /// Whether any stderr line satisfies `pred`.
    pub fn logged(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.stderr.lock().expect("lock").iter().any(|l| pred(l))
    }

    /// The process is still running, answers `/health`, and has logged no panic.
    pub fn assert_alive(&self) {
        let status = self.child.lock().expect("lock").try_wait().expect("try_wait");
        assert!(status.is_none(), "the server exited: {status:?}\n{}", self.stderr().join("\n"));
        assert_eq!(self.call("GET", "/health", None).status, 200);
        assert!(!self.logged(|l| l.contains("panicked")), "the server panicked:\n{}", self.stderr().join("\n"));
    }

    /// Opens the watch stream (`path` may carry `?after=`) and returns it once the response head arrived.
    pub fn watch(&self, path_and_query: &str, token: &str, last_event_id: Option<&str>) -> Watch {
        let agent = ureq::AgentBuilder::new().timeout_read(Duration::from_secs(10)).build();
        let mut req = agent
            .get(&format!("{}{path_and_query}", self.url))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.set("Last-Event-ID", id);
        }
        let response = req.call().unwrap_or_else(|e| panic!("watch {path_and_query}: {e}"));
        assert_eq!(response.status(), 200);
        assert!(response.content_type().starts_with("text/event-stream"), "{}", response.content_type());
        Watch { lines: BufReader::new(response.into_reader()), comments: 0 }
    }
}

/// Polls `f` every 20 ms until it returns true; panics after a generous 10 s.
pub fn eventually(what: &str, f: impl FnMut() -> bool) {
    eventually_within(what, Duration::from_secs(10), f)
}

/// [`eventually`] with a deadline of the caller's, for conditions that come at a time (a scheduled apply).
pub fn eventually_within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: u64,
    pub data: Value,
}

/// An open watch stream. Dropping it closes the connection.
pub struct Watch {
    lines: BufReader<Box<dyn Read + Send + Sync + 'static>>,
    /// Keep-alive comment lines seen so far.
    pub comments: usize,
}

/// What the stream delivered next.
#[derive(Debug)]
pub enum Next {
    Event(Sse),
    Comment,
    /// A named event (`progress`, `end`): its type, id and data.
    Named(String, Option<u64>, String),
}

impl Watch {
    /// The next event or keep-alive comment. Every read is bounded by the agent's 10 s read timeout.
    pub fn next(&mut self) -> Next {
        let (mut id, mut data, mut named) = (None, None, None::<String>);
        loop {
            let mut line = String::new();
            let n = self.lines.read_line(&mut line).expect("the stream stays readable");
            assert!(n > 0, "the watch stream ended");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.starts_with(':') {
                self.comments += 1;
                return Next::Comment;
            } else if let Some(v) = line.strip_prefix("event:") {
                named = Some(v.trim().to_string()).filter(|t| t != "message");
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().parse::<u64>().expect("a numeric id"));
            } else if let Some(v) = line.strip_prefix("data:") {
                data = Some(v.trim().to_string());
            } else if line.is_empty() {
                if let Some(kind) = named.take() {
                    return Next::Named(kind, id.take(), data.take().unwrap_or_default());
                }
                if let (Some(id), Some(data)) = (id.take(), data.take()) {
                    let data = serde_json::from_str::<Value>(&data).expect("JSON data");
                    return Next::Event(Sse { id, data });
                }
            }
        }
    }

    /// The next `n` change events, skipping keep-alives and named events; panics if they do not come within 10 s.
    pub fn events(&mut self, n: usize) -> Vec<Sse> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} events arrived: {out:?}", out.len());
            if let Next::Event(e) = self.next() {
                out.push(e);
            }
        }
        out
    }

    /// Reads until `n` keep-alive comments in a row arrived, and returns any events seen meanwhile.
    pub fn until_quiet(&mut self, n: usize) -> Vec<Sse> {
        let mut seen = Vec::new();
        let mut quiet = 0;
        while quiet < n {
            match self.next() {
                Next::Comment => quiet += 1,
                Next::Event(e) => {
                    quiet = 0;
                    seen.push(e);
                }
                Next::Named(..) => {}
            }
        }
        seen
    }
}

/// The governance tests' change policy: limits need 2 approvals, logging none, the rest of the default
/// namespace and the registry 1; `bypass` may use the emergency bypass.
pub fn four_eyes_policy(bypass: &str) -> Value {
    serde_json::json!({
        "rules": [
            {"scope": "mcpgateway/limits", "approvals": 2},
            {"scope": "mcpgateway/logging", "approvals": 0},
            {"scope": "mcpgateway", "approvals": 1},
            {"scope": "registry", "approvals": 1}
        ],
        "bypass": [bypass]
    })
}

/// Proposes `policy` as a change request with `token`; it applies at once, the empty policy asking none.
pub fn install_policy(server: &Server, token: &str, policy: &Value) {
    let body = serde_json::json!({"changes": [{"op": "policy", "policy": policy}], "reason": "four eyes for limits"});
    let reply = server.send_json("POST", "/admin/requests", Some(token), &body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["status"], "applied", "the empty policy asks no approval: {}", reply.body);
}
