//! The reference a GET through cfgledger's whole stack is held to: a bare axum handler serving a map
//! lookup, with no authentication, metrics, request id or timeout, on tokio's default multi-thread runtime,
//! as `cfgledger serve` runs. It is this same bench binary started again with `LOAD_BARE_SERVER=1`, so that it
//! runs as a process of its own (like the server it stands beside) and is built with the bench; the harness
//! drives it with the same GET workers over the same kind of connections.
//!
//! The map's value for `LOG_LEVEL` is, by default, the very item cfgledger answered for that key (its JSON,
//! 272 bytes), handed over in `LOAD_BARE_BODY`, so that the two servers send the same document and the
//! ratio measures the stack (authentication, metrics, request id, routing), not the length of the answer.
//! Without it the value is a 56-byte summary: the reference the bench used before, still printed beside.

use crate::http::Conn;
use crate::process::Child;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

const ROLE: &str = "LOAD_BARE_SERVER";
/// The JSON document the bare server answers for `LOG_LEVEL`, when given.
const BODY: &str = "LOAD_BARE_BODY";

/// When this process was started as the bare server, serves until killed and never returns.
pub fn serve_if_asked() {
    if std::env::var_os(ROLE).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let mut map: HashMap<String, serde_json::Value> = [("LOG_LEVEL", "warn"), ("TOOL_RATE_LIMIT", "100")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!({ "key": k, "value": v, "source": "db", "seq": 3 })))
            .collect();
        if let Some(body) = std::env::var_os(BODY) {
            let item = serde_json::from_str(&body.to_string_lossy()).expect("LOAD_BARE_BODY is a JSON document");
            map.insert("LOG_LEVEL".into(), item);
        }
        let app = Router::new().route("/admin/config/{key}", get(lookup)).with_state(Arc::new(map));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        println!("cfgledger listening on http://{addr}");
        axum::serve(listener, app).await.expect("serve");
    });
    std::process::exit(0);
}

async fn lookup(
    State(map): State<Arc<HashMap<String, serde_json::Value>>>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
    map.get(&key).cloned().map(Json).ok_or(axum::http::StatusCode::NOT_FOUND)
}

/// The bare server, running.
pub struct Bare {
    server: Child,
    pub addr: SocketAddr,
}

impl Bare {
    /// Starts the bare server; with `body`, it answers that JSON document for `LOG_LEVEL`.
    pub fn start(body: Option<&str>) -> Result<Bare, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this bench's binary: {e}"))?;
        let mut command = Command::new(exe);
        if let Some(body) = body {
            command.env(BODY, body);
        }
        command.env(ROLE, "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut server = Child::spawn("bare axum server", &mut command)?;
        let stdout = server.take_stdout().expect("stdout was piped");
        let addr = crate::common::serve::listen_address(stdout)
            .map_err(|line| format!("the bare server did not print its address: {line:?}"))?;
        Ok(Bare { server, addr })
    }

    /// One GET worker per client, each on its own connection (no token: the bare handler checks none).
    pub async fn getters(&self, clients: usize) -> Result<Vec<crate::cfgledger::Get>, String> {
        let mut workers = Vec::with_capacity(clients);
        for _ in 0..clients {
            workers.push(crate::cfgledger::Get::on(Conn::open(self.addr, None).await?));
        }
        Ok(workers)
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    pub fn stop(self) -> String {
        self.server.terminate()
    }
}
