//! The cfgledger half: a fresh SQLite store in a temp dir, prepared with the CLI (write rate limit at its
//! maximum, request logs off, one token per client), `cfgledger serve` on a free loopback port as a child
//! process, and the workers that drive it: `GET /admin/config/LOG_LEVEL`, durable
//! `PUT /admin/config/TOOL_RATE_LIMIT`, and the `/admin/config/watch` server-sent-events stream.

use crate::common::sse::SseParser;
use crate::http::Conn;
use crate::measure::{next_value, Events, Failure, Worker, Writer};
use crate::process::Child;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use tokio::sync::mpsc;

/// The encryption secret every invocation gets, so the store needs no key file.
const SECRET: &str = "load-bench-secret-0123456789abcdef";
/// The token signing key every invocation gets, so `token issue` and `serve` agree on it.
const JWT_SECRET: &str = "load-bench-jwt-signing-key-0123456789abcdef";
/// The key the write and watch phases change: an int that takes 1..=1,000,000.
pub const WRITE_KEY: &str = "TOOL_RATE_LIMIT";
const GET_PATH: &str = "/admin/config/LOG_LEVEL";
const PUT_PATH: &str = "/admin/config/TOOL_RATE_LIMIT";

/// A prepared store and the running server on it.
pub struct Cfgledger {
    bin: PathBuf,
    dir: PathBuf,
    server: Option<Child>,
    pub addr: SocketAddr,
    /// One token per client connection (subjects `bench-0`, `bench-1`, …), or none with authentication off.
    tokens: Vec<Option<String>>,
    watch_token: Option<String>,
}

impl Cfgledger {
    /// Prepares a store in `dir` and starts `serve` on it. With `auth` off (development only) the server
    /// runs with `CFGLEDGER_AUTH_REQUIRED=false` and requests carry no token.
    pub fn start(bin: &Path, dir: &Path, clients: usize, auth: bool) -> Result<Cfgledger, String> {
        let mut me = Cfgledger {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            server: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec![None; clients],
            watch_token: None,
        };
        me.cli(&["config", "set", "cfgledger:CONFIG_WRITE_RATE_LIMIT", "1000000", "--reason", "load bench"])?;
        me.cli(&["config", "set", "cfgledger:LOG_LEVEL", "warn", "--reason", "load bench: no request logs"])?;
        if auth {
            // Distinct subjects: the write rate limit counts per principal.
            me.tokens = (0..clients).map(|i| me.token(&format!("bench-{i}")).map(Some)).collect::<Result<_, _>>()?;
            me.watch_token = Some(me.token("bench-watch")?);
        }
        let log = dir.join("serve.log");
        let mut command = me.command();
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if !auth {
            command.env("CFGLEDGER_AUTH_REQUIRED", "false");
        }
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        command.stdout(Stdio::piped()).stderr(log_file);
        let mut child = Child::spawn("cfgledger serve", &mut command)?;
        let stdout = child.take_stdout().expect("stdout was piped");
        let addr = crate::common::serve::listen_address(stdout).map_err(|line| match line {
            None => {
                let tail = crate::process::tail(&log);
                format!("cfgledger serve did not print its address; its log ends with:\n{tail}")
            }
            Some(line) => format!("unexpected first line from cfgledger serve: {line:?}"),
        })?;
        me.addr = addr;
        me.server = Some(child);
        Ok(me)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--db")
            .arg(format!("sqlite://{}", self.dir.join("bench.db").display()))
            // The temp dir holds no .env, so nothing is seeded from wherever the bench was started.
            .current_dir(&self.dir)
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", SECRET)
            .env("CFGLEDGER_JWT_SECRET_KEY", JWT_SECRET)
            .env_remove("CFGLEDGER_DB")
            .env_remove("CFGLEDGER_CATALOG")
            .env_remove("CFGLEDGER_LISTEN")
            .env_remove("CFGLEDGER_AUTH_REQUIRED")
            .stdin(Stdio::null());
        command
    }

    /// Runs one CLI command to completion and returns its standard output.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output =
            self.command().args(args).output().map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        if !output.status.success() {
            return Err(format!(
                "`cfgledger {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn token(&self, subject: &str) -> Result<String, String> {
        let token = self.cli(&["token", "issue", "--sub", subject, "--role", "platform_admin", "--ttl", "1h"])?;
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(format!("`cfgledger token issue` printed something other than one token: {token:?}"));
        }
        Ok(token)
    }

    async fn conn(&self, token: Option<&String>) -> Result<Conn, String> {
        Conn::open(self.addr, token.map(String::as_str)).await
    }

    /// One GET worker per client, each on its own connection with its own token.
    pub async fn getters(&self, clients: usize) -> Result<Vec<Get>, String> {
        let mut workers = Vec::with_capacity(clients);
        for token in self.tokens.iter().take(clients) {
            workers.push(Get { conn: self.conn(token.as_ref()).await? });
        }
        Ok(workers)
    }

    /// One PUT worker per client, each on its own connection with its own token.
    pub async fn putters(&self, clients: usize) -> Result<Vec<Put>, String> {
        let mut workers = Vec::with_capacity(clients);
        for token in self.tokens.iter().take(clients) {
            workers.push(Put { conn: self.conn(token.as_ref()).await? });
        }
        Ok(workers)
    }

    /// The item `GET /admin/config/LOG_LEVEL` answers, as text: the document the bare reference serves.
    pub async fn get_item(&self) -> Result<String, String> {
        let reply =
            self.conn(self.tokens.first().and_then(Option::as_ref)).await?.call(Method::GET, GET_PATH, None).await?;
        if reply.status != StatusCode::OK {
            return Err(format!("GET {GET_PATH} answered {}: {}", reply.status, reply.snippet()));
        }
        String::from_utf8(reply.body.to_vec()).map_err(|e| format!("GET {GET_PATH} answered something not UTF-8: {e}"))
    }

    /// Confirms that the server enforces authentication: a request without a token must be refused.
    pub async fn check_auth(&self) -> Result<StatusCode, String> {
        let reply = self.conn(None).await?.call(Method::GET, GET_PATH, None).await?;
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(reply.status),
            other => Err(format!("GET {GET_PATH} without a token answered {other}, so authentication is off")),
        }
    }

    /// Checks that a PUT is served before a phase relies on it.
    pub async fn probe_put(&self) -> Result<(), String> {
        let mut put = Put { conn: self.conn(self.tokens.first().and_then(Option::as_ref)).await? };
        match put.call().await {
            Ok(()) => Ok(()),
            Err(Failure::Rejected(m) | Failure::Broken(m)) => Err(m),
        }
    }

    /// Opens the change stream after the current head and returns the writer to change the key with and
    /// the events the stream delivers.
    pub async fn watch(&self) -> Result<(Put, Events), String> {
        let mut conn = self.conn(self.watch_token.as_ref()).await?;
        let ready = conn.call(Method::GET, "/ready", None).await?;
        let head = serde_json::from_slice::<serde_json::Value>(&ready.body)
            .ok()
            .and_then(|v| v["head"].as_u64())
            .ok_or_else(|| format!("/ready answered {} without a head: {}", ready.status, ready.snippet()))?;
        let response = conn.stream(&format!("/admin/config/watch?after={head}")).await?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(format!(
                "GET /admin/config/watch answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _conn = conn; // the stream's connection lives as long as this task
            let mut body = response.into_body();
            let mut sse = SseParser::default();
            while let Some(Ok(frame)) = body.frame().await {
                let arrived = Instant::now();
                let Ok(data) = frame.into_data() else { continue };
                for value in write_key_values(&mut sse, &data) {
                    if tx.send((value, arrived)).is_err() {
                        return;
                    }
                }
            }
        });
        let writer = Put { conn: self.conn(self.watch_token.as_ref()).await? };
        Ok((writer, rx))
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.as_ref().map_or(0, Child::pid)
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and says how that went.
    pub fn stop(&mut self) -> String {
        match self.server.take() {
            Some(child) => child.terminate(),
            None => "not running".into(),
        }
    }
}

/// `GET /admin/config/LOG_LEVEL`, expecting 200.
pub struct Get {
    conn: Conn,
}

impl Get {
    /// The same worker on another server's connection (the bare reference, `bare.rs`).
    pub fn on(conn: Conn) -> Get {
        Get { conn }
    }
}

impl Worker for Get {
    async fn call(&mut self) -> Result<(), Failure> {
        let reply = self.conn.call(Method::GET, GET_PATH, None).await.map_err(Failure::Broken)?;
        if reply.status != StatusCode::OK {
            return Err(Failure::Rejected(format!("GET {GET_PATH} answered {}: {}", reply.status, reply.snippet())));
        }
        Ok(())
    }
}

/// `PUT /admin/config/TOOL_RATE_LIMIT` with a value no recent write used, expecting 200.
pub struct Put {
    conn: Conn,
}

impl Put {
    async fn put(&mut self, value: i64) -> Result<(), Failure> {
        let body = Bytes::from(serde_json::json!({"value": value, "reason": "bench"}).to_string());
        let reply = self.conn.call(Method::PUT, PUT_PATH, Some(body)).await.map_err(Failure::Broken)?;
        if reply.status != StatusCode::OK {
            return Err(Failure::Rejected(format!("PUT {PUT_PATH} answered {}: {}", reply.status, reply.snippet())));
        }
        Ok(())
    }
}

impl Worker for Put {
    async fn call(&mut self) -> Result<(), Failure> {
        self.put(next_value()).await
    }
}

impl Writer for Put {
    async fn write(&mut self, value: i64) -> Result<(), Failure> {
        self.put(value).await
    }
}

/// The values of the write key's changes among the events a chunk of the stream completed.
fn write_key_values(parser: &mut SseParser, chunk: &[u8]) -> Vec<i64> {
    parser
        .push(chunk)
        .into_iter()
        .filter(|json| json["key"] == WRITE_KEY)
        .filter_map(|json| {
            let value = &json["value"];
            value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        })
        .collect()
}
