//! The round trip through real MCP Context Forge gateways (1.1.0): gateway A is filled through its REST API
//! (gateways with every auth type, REST tools with credentials and headers, an inactive tool, prompts,
//! resources, roots, servers, tags), exported the three ways it offers (`GET /export`, `POST
//! /export/selective`, the `mcpgateway export` CLI), each file imported into a cfgledger store with A's
//! secret and compared entity by entity with what A holds; then the store is exported in the gateway's layout
//! under gateway B's secret, B imports it, and B's own export, the credentials B sends to the upstreams when
//! it registers the gateways, and tool calls through B show what arrived.
//!
//! Upstreams: a loopback echo server (a Rust thread) that answers REST tool calls with what it received and
//! plays an OAuth token endpoint, and small MCP servers (`tests/fixtures/gateway/mcp_upstream.py`, in the
//! gateway's venv), one port per gateway entity, which log the headers and query string of every request.
//!
//! What a gateway round trip loses, by the gateway's design (asserted or noted where it shows):
//! - a resource's `content`: no gateway export carries it, so B's resources are empty;
//! - `oauth_config`: no export carries it, so gw-oauth reaches cfgledger and B without OAuth;
//! - a server's links to resources and prompts: not exported (only `tool_ids`);
//! - tools discovered from MCP gateways: never exported (B discovers them again when it registers the
//!   gateways);
//! - credentials in the full export (`GET /export`, the CLI): tools carry `auth_value: null` and every header
//!   as `*****`, gateways with query-parameter or OAuth auth carry no auth at all; only the selective export
//!   carries them, and its server links are database ids that mean nothing elsewhere;
//! - `is_active`: the gateway's import ignores it, so cfgledger leaves inactive entities out of an export in
//!   the gateway's layout unless asked.

mod support;

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::gateway::{free_port, secret, venv_bin, Gateway};
use support::Store;

const ADMIN_EMAIL: &str = "platform-admin@cfgledger.test";

// What gateway A is given. Each credential is distinct, so that a value found anywhere names its origin.
const GW_BASIC: (&str, &str) = ("gwuser", "gw-basic-pass-1");
const GW_BEARER: &str = "gw-bearer-token-1";
const GW_HEADER_ONE: (&str, &str) = ("X-Upstream-Key", "gw-hdr-one-1");
const GW_HEADERS_MANY: [(&str, &str); 2] = [("X-Api-Key", "gw-hdr-a"), ("X-Client-Id", "gw-hdr-b")];
const GW_QUERY: (&str, &str) = ("api_key", "gw-query-key-1");
const OAUTH_TOKEN: &str = "oauth-access-token-from-echo";
const TOOL_BASIC: (&str, &str) = ("tooluser", "tool-basic-pass-1");
const TOOL_BEARER: &str = "tool-bearer-token-1";
const TOOL_HEADER_ONE: (&str, &str) = ("X-Tool-Key", "tool-hdr-1");
const TOOL_HEADERS_MANY: [(&str, &str); 2] = [("X-Tool-A", "tool-hdr-a"), ("X-Tool-B", "tool-hdr-b")];
const TOOL_API_KEY: &str = "hdr-secret-1";

fn basic(pair: (&str, &str)) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", pair.0, pair.1)))
}

/// A gateway's `.env`: loopback upstreams allowed (SSRF guard), query-parameter auth allowed, file roots
/// under /srv and /home allowed, the admin API on, the UI off.
fn gateway_env(jwt_secret: &str, encryption_secret: &str) -> String {
    format!(
        "\
JWT_SECRET_KEY={jwt_secret}
AUTH_ENCRYPTION_SECRET={encryption_secret}
PLATFORM_ADMIN_EMAIL={ADMIN_EMAIL}
PLATFORM_ADMIN_PASSWORD={admin}Aa7-!
DEFAULT_USER_PASSWORD={user}Aa7-!
DATABASE_URL=sqlite:///./mcp.db
CACHE_TYPE=memory
MCPGATEWAY_ADMIN_API_ENABLED=true
MCPGATEWAY_UI_ENABLED=false
SSRF_ALLOW_LOCALHOST=true
SSRF_ALLOW_PRIVATE_NETWORKS=true
INSECURE_ALLOW_QUERYPARAM_AUTH=true
ROOT_ALLOW_FILE_SCHEME=true
ROOT_ALLOWED_FILE_PREFIXES=[\"/srv\",\"/home\"]
ROOT_ALLOWED_SCHEMES=[\"https\"]
HOST=127.0.0.1
",
        admin = secret(24),
        user = secret(24),
    )
}

/// Boots a gateway whose `AUTH_ENCRYPTION_SECRET` is `encryption_secret`.
fn boot(jwt_secret: &str, encryption_secret: &str) -> Gateway {
    let file = tempfile::NamedTempFile::new().expect("a temporary .env file");
    std::fs::write(file.path(), gateway_env(jwt_secret, encryption_secret)).expect("write the .env file");
    Gateway::boot(file.path())
}

// ------------------------------------------------------------------------------------------------------
// The echo upstream: REST tools and the OAuth token endpoint
// ------------------------------------------------------------------------------------------------------

/// A loopback HTTP server that answers every request with its method, path, query and headers as JSON and
/// records it; `POST /oauth/token` answers as an OAuth2 token endpoint. Stops on drop.
struct Echo {
    port: u16,
    seen: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl Echo {
    fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo server");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let seen = seen2.clone();
                std::thread::spawn(move || echo_one(stream, &seen));
            }
        });
        Echo { port, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Value> {
        self.seen.lock().expect("the echo log").clone()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one HTTP/1.1 request, records it in `seen` and then answers it (closing the connection): whoever
/// got the answer finds the request recorded.
fn echo_one(stream: TcpStream, seen: &Mutex<Vec<Value>>) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Map::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.insert(k, Value::String(v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query_string) = target.split_once('?').unwrap_or((&target, ""));
    let mut query = Map::new();
    for pair in query_string.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query.insert(k.to_string(), Value::String(v.to_string()));
    }
    let record = json!({
        "method": method,
        "path": path,
        "query_string": query_string,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let answer = if path == "/oauth/token" {
        json!({"access_token": OAUTH_TOKEN, "token_type": "Bearer", "expires_in": 3600})
    } else {
        record.clone()
    };
    seen.lock().expect("the echo log").push(record);
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
    Some(())
}

// ------------------------------------------------------------------------------------------------------
// The MCP upstreams: one Python process serving one MCP server per port
// ------------------------------------------------------------------------------------------------------

/// The ports of the MCP upstreams, one per gateway entity of A (and of B, which registers the same).
const MCP_UPSTREAMS: [&str; 7] = ["basic", "bearer", "header-one", "header-many", "oauth", "query", "sse"];

struct McpUpstreams {
    child: Child,
    ports: BTreeMap<&'static str, u16>,
    dir: tempfile::TempDir,
}

impl McpUpstreams {
    fn start() -> McpUpstreams {
        let dir = tempfile::tempdir().expect("a directory for the MCP upstreams");
        let ports: BTreeMap<&'static str, u16> = MCP_UPSTREAMS.iter().map(|k| (*k, free_port())).collect();
        let args: Vec<String> =
            ports.iter().map(|(k, p)| if *k == "sse" { format!("sse:{p}") } else { p.to_string() }).collect();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateway/mcp_upstream.py");
        let child = Command::new(venv_bin().join("python"))
            .arg(&script)
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("MCP_LOG", dir.path().join("mcp-log.jsonl"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("mcp.stdout")).expect("mcp.stdout"))
            .stderr(std::fs::File::create(dir.path().join("mcp.stderr")).expect("mcp.stderr"))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        let mut up = McpUpstreams { child, ports, dir };
        for (name, port) in up.ports.clone() {
            let listening = support::wait_for(Duration::from_secs(60), || {
                if let Ok(Some(status)) = up.child.try_wait() {
                    panic!("the MCP upstreams exited ({status}):\n{}", up.stderr());
                }
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            assert!(listening, "MCP upstream {name} not listening on {port}:\n{}", up.stderr());
        }
        up
    }

    fn url(&self, name: &str) -> String {
        match name {
            "sse" => format!("http://127.0.0.1:{}/sse", self.ports[name]),
            _ => format!("http://127.0.0.1:{}/mcp", self.ports[name]),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mcp.stderr")).unwrap_or_default()
    }

    /// Every request the upstreams received, in order.
    fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join("mcp-log.jsonl")).unwrap_or_default();
        text.lines().filter(|l| !l.trim().is_empty()).map(support::parse_json).collect()
    }
}

impl Drop for McpUpstreams {
    fn drop(&mut self) {
        support::gateway::stop_group(&mut self.child, Duration::from_secs(5));
    }
}

// ------------------------------------------------------------------------------------------------------
// A gateway's REST API
// ------------------------------------------------------------------------------------------------------

struct Api {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(gw: &Gateway, jwt_secret: &str) -> Api {
        Api {
            url: gw.url(),
            token: gw.token(jwt_secret, ADMIN_EMAIL),
            // An import registers gateways live, connecting to each upstream: minutes on a busy machine.
            agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(300)).redirects(0).build(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let req = self
            .agent
            .request(method, &format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {}", self.token));
        let answer = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match answer {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                let text = r.into_string().unwrap_or_else(|e| panic!("read the body of {method} {path}: {e}"));
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => panic!("{method} {path} failed: {e}"),
        }
    }

    /// A request that must succeed (2xx); its body.
    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{method} {path} -> {status}: {answer}\nbody: {body:?}");
        answer
    }

    fn id_of(&self, method: &str, path: &str, body: Value) -> String {
        let answer = self.ok(method, path, Some(&body));
        answer["id"].as_str().unwrap_or_else(|| panic!("no id in the answer to {path}: {answer}")).to_string()
    }
}

/// What was created in A, by kind and name: the gateway's ids (URIs for resources and roots).
#[derive(Default)]
struct Created {
    ids: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl Created {
    fn add(&mut self, kind: &'static str, name: &str, id: String) {
        self.ids.entry(kind).or_default().insert(name.to_string(), id);
    }

    fn id(&self, kind: &str, name: &str) -> String {
        self.ids[kind][name].clone()
    }

    fn all(&self, kind: &str) -> Vec<String> {
        self.ids[kind].values().cloned().collect()
    }
}

/// Fills gateway A through its REST API.
fn fill(a: &Api, echo: &Echo, mcp: &McpUpstreams) -> Created {
    let mut created = Created::default();
    let e = echo.url();
    let gateways = [
        json!({"name": "gw-basic", "url": mcp.url("basic"), "transport": "STREAMABLEHTTP",
               "description": "basic auth upstream", "auth_type": "basic",
               "auth_username": GW_BASIC.0, "auth_password": GW_BASIC.1, "tags": ["team-a", "auth-basic"]}),
        json!({"name": "gw-bearer", "url": mcp.url("bearer"), "transport": "STREAMABLEHTTP",
               "description": "bearer upstream", "auth_type": "bearer", "auth_token": GW_BEARER,
               "tags": ["team-a", "auth-bearer"]}),
        json!({"name": "gw-header-one", "url": mcp.url("header-one"), "transport": "STREAMABLEHTTP",
               "description": "one custom header", "auth_type": "authheaders",
               "auth_header_key": GW_HEADER_ONE.0, "auth_header_value": GW_HEADER_ONE.1, "tags": ["team-b"]}),
        json!({"name": "gw-header-many", "url": mcp.url("header-many"), "transport": "STREAMABLEHTTP",
               "description": "several custom headers", "auth_type": "authheaders",
               "auth_headers": GW_HEADERS_MANY.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
               "passthrough_headers": ["X-Trace-Id"], "tags": ["team-b"]}),
        json!({"name": "gw-oauth", "url": mcp.url("oauth"), "transport": "STREAMABLEHTTP",
               "description": "oauth client credentials", "auth_type": "oauth",
               "oauth_config": {"grant_type": "client_credentials", "client_id": "cfg-client",
                                "client_secret": "oauth-client-secret-1", "token_url": format!("{e}/oauth/token"),
                                "scopes": ["read", "write"]},
               "tags": ["team-a", "auth-oauth"]}),
        json!({"name": "gw-query", "url": mcp.url("query"), "transport": "STREAMABLEHTTP",
               "description": "query param auth", "auth_type": "query_param",
               "auth_query_param_key": GW_QUERY.0, "auth_query_param_value": GW_QUERY.1, "tags": ["team-a"]}),
        json!({"name": "gw-sse-noauth", "url": mcp.url("sse"), "transport": "SSE",
               "description": "SSE, no auth", "tags": ["team-c"]}),
    ];
    for g in gateways {
        let name = g["name"].as_str().expect("a name").to_string();
        created.add("gateways", &name, a.id_of("POST", "/gateways", g));
    }

    let tools = [
        json!({"name": "rest-basic", "displayName": "REST basic", "url": format!("{e}/basic"),
               "integration_type": "REST", "request_type": "GET", "description": "echo with basic auth",
               "auth_type": "basic", "auth_username": TOOL_BASIC.0, "auth_password": TOOL_BASIC.1,
               "headers": {"X-Tenant": "acme", "X-Api-Key": TOOL_API_KEY},
               "input_schema": {"type": "object", "properties": {"q": {"type": "string", "description": "query"}},
                                "required": ["q"]},
               "annotations": {"readOnlyHint": true}, "tags": ["team-a", "rest"]}),
        json!({"name": "rest-bearer", "url": format!("{e}/bearer"), "integration_type": "REST",
               "request_type": "POST", "description": "echo with bearer", "auth_type": "bearer",
               "auth_token": TOOL_BEARER, "headers": {"X-Tenant": "globex"},
               "input_schema": {"type": "object", "properties": {"msg": {"type": "string"}}},
               "tags": ["team-b", "rest"]}),
        json!({"name": "rest-header-one", "url": format!("{e}/hdr1"), "integration_type": "REST",
               "request_type": "GET", "description": "echo with one custom auth header",
               "auth_type": "authheaders", "auth_header_key": TOOL_HEADER_ONE.0,
               "auth_header_value": TOOL_HEADER_ONE.1, "tags": ["team-a"]}),
        json!({"name": "rest-header-many", "url": format!("{e}/hdrN"), "integration_type": "REST",
               "request_type": "GET", "description": "echo with several custom auth headers",
               "auth_type": "authheaders",
               "auth_headers": TOOL_HEADERS_MANY.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
               "tags": ["team-b"]}),
        json!({"name": "rest-plain", "url": format!("{e}/plain"), "integration_type": "REST",
               "request_type": "GET", "description": "no auth, made inactive",
               "headers": {"X-Tenant": "initech", "Cookie": "c=1"}, "tags": ["team-c"]}),
    ];
    for t in tools {
        let name = t["name"].as_str().expect("a name").to_string();
        created.add("tools", &name, a.id_of("POST", "/tools", json!({ "tool": t })));
    }
    let plain = created.id("tools", "rest-plain");
    a.ok("POST", &format!("/tools/{plain}/state?activate=false"), None);

    for r in [
        json!({"uri": "cfg://docs/readme", "name": "readme", "description": "the readme", "mime_type": "text/plain",
               "content": "Hello from readme", "tags": ["team-a", "docs"]}),
        json!({"uri": "cfg://data/settings.json", "name": "settings", "description": "json settings",
               "mime_type": "application/json", "content": "{\"a\": 1}", "tags": ["team-b"]}),
    ] {
        let uri = r["uri"].as_str().expect("a uri").to_string();
        let id = a.id_of("POST", "/resources", json!({ "resource": r }));
        created.add("resource_ids", &uri, id);
        created.add("resources", &uri, uri.clone());
    }

    for p in [
        json!({"name": "greet", "description": "greeting prompt", "template": "Hello {{ name }} from {{ place }}!",
               "arguments": [{"name": "name", "description": "who to greet", "required": true},
                             {"name": "place", "description": "where from", "required": false}],
               "tags": ["team-a", "prompts"]}),
        json!({"name": "summarize", "description": "summarize text",
               "template": "Summarize in {{ words }} words: {{ text }}",
               "arguments": [{"name": "text", "description": "the text", "required": true},
                             {"name": "words", "description": "word budget", "required": true},
                             {"name": "tone", "description": "", "required": false}],
               "tags": ["team-b"]}),
    ] {
        let name = p["name"].as_str().expect("a name").to_string();
        created.add("prompts", &name, a.id_of("POST", "/prompts", json!({ "prompt": p })));
    }

    for r in [
        json!({"uri": "file:///srv/data", "name": "data"}),
        json!({"uri": "file:///home/user/projects", "name": "projects"}),
        json!({"uri": "https://example.com/docs", "name": "web-docs"}),
    ] {
        a.ok("POST", "/roots", Some(&r));
        let uri = r["uri"].as_str().expect("a uri").to_string();
        created.add("roots", &uri, uri.clone());
    }

    let servers = [
        json!({"name": "srv-main", "description": "main virtual server",
               "associated_tools": [created.id("tools", "rest-basic"), created.id("tools", "rest-bearer"), plain],
               "associated_resources": [created.id("resource_ids", "cfg://docs/readme")],
               "associated_prompts": [created.id("prompts", "greet")], "tags": ["team-a", "srv"]}),
        json!({"name": "srv-empty", "description": "no associations", "tags": ["team-c"]}),
    ];
    for s in servers {
        let name = s["name"].as_str().expect("a name").to_string();
        created.add("servers", &name, a.id_of("POST", "/servers", json!({ "server": s })));
    }
    created
}

/// `mcpgateway export` (the gateway's own CLI) against `gw`: it reads HOST and PORT from its settings, given
/// here as the environment (which wins over the `.env` beside it), and the token from MCPGATEWAY_BEARER_TOKEN.
fn cli_export(gw: &Gateway, token: &str, out: &Path) {
    let dir = tempfile::tempdir().expect("a directory for the export CLI");
    std::fs::copy(gw.dir().join(".env"), dir.path().join(".env")).expect("copy the gateway's .env");
    let bin = venv_bin();
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");
    let output = Command::new(bin.join("mcpgateway"))
        .args(["export", "--output"])
        .arg(out)
        .arg("--include-inactive")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", gw.port().to_string())
        .env("MCPGATEWAY_BEARER_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("run mcpgateway export");
    assert!(
        output.status.success() && out.is_file(),
        "mcpgateway export failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ------------------------------------------------------------------------------------------------------
// Documents: reading, normalizing, comparing
// ------------------------------------------------------------------------------------------------------

fn read_json(path: &Path) -> Value {
    support::parse_json(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

fn write_json(path: &Path, doc: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(doc).expect("JSON")).expect("write a document");
}

/// The entities of `kind` in a document, by identity (the URI for resources and roots).
fn by_name(doc: &Value, kind: &str) -> BTreeMap<String, Value> {
    let id = if matches!(kind, "resources" | "roots") { "uri" } else { "name" };
    doc["entities"][kind]
        .as_array()
        .map(|list| list.iter().map(|e| (e[id].as_str().expect("an identity").to_string(), e.clone())).collect())
        .unwrap_or_default()
}

fn names(doc: &Value, kind: &str) -> BTreeSet<String> {
    by_name(doc, kind).into_keys().collect()
}

/// A field's value in one comparable form: absent and `null` alike, tags as their labels, `authheaders` as
/// cfgledger's `headers`, a JSON Schema's `required` sorted, a server's tool links sorted (none as absent).
fn norm(field: &str, v: Option<&Value>) -> Value {
    let v = match v {
        None | Some(Value::Null) => return Value::Null,
        Some(v) => v.clone(),
    };
    match field {
        "tags" => Value::Array(
            v.as_array()
                .expect("tags are a list")
                .iter()
                .map(|t| match t {
                    Value::Object(o) => o["label"].clone(),
                    other => other.clone(),
                })
                .collect(),
        ),
        "auth_type" if v == "authheaders" => Value::String("headers".into()),
        "input_schema" | "output_schema" => {
            let mut v = v;
            if let Some(Value::Array(req)) = v.get_mut("required") {
                req.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            v
        }
        // No links at all: an empty list or none.
        "tool_ids" | "associated_tools" if v == json!([]) => Value::Null,
        "tool_ids" | "associated_tools" => {
            let mut list = v.as_array().expect("a list").clone();
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            Value::Array(list)
        }
        _ => v,
    }
}

/// The configuration fields compared per kind: (field in the gateway's file, field in the other document).
fn fields(kind: &str, other_is_gateway: bool) -> Vec<(&'static str, &'static str)> {
    let same = |list: &[&'static str]| list.iter().map(|f| (*f, *f)).collect::<Vec<_>>();
    match kind {
        "tools" => same(&[
            "name",
            "displayName",
            "url",
            "description",
            "integration_type",
            "request_type",
            "input_schema",
            "output_schema",
            "annotations",
            "jsonpath_filter",
            "tags",
            "is_active",
            "auth_type",
        ]),
        "gateways" => same(&[
            "name",
            "url",
            "description",
            "transport",
            "passthrough_headers",
            "capabilities",
            "tags",
            "is_active",
            "auth_type",
        ]),
        "servers" => {
            let mut f = same(&["name", "description", "tags", "is_active"]);
            f.push(("tool_ids", if other_is_gateway { "tool_ids" } else { "associated_tools" }));
            f
        }
        "prompts" => same(&["name", "description", "template", "input_schema", "tags", "is_active"]),
        "resources" => same(&["uri", "name", "description", "mime_type", "tags", "is_active"]),
        "roots" => same(&["uri", "name"]),
        other => panic!("no kind {other}"),
    }
}

const KINDS: [&str; 6] = ["gateways", "tools", "resources", "prompts", "servers", "roots"];

/// Compares every entity of the gateway's document `gw_doc` with the same entity of `other`, field by field
/// (`skip`: `KIND/FIELD`s not compared, each with its reason at the call). Returns the mismatches.
fn mismatches(gw_doc: &Value, other: &Value, other_is_gateway: bool, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in KINDS {
        let theirs = by_name(other, kind);
        for (name, a) in by_name(gw_doc, kind) {
            let Some(b) = theirs.get(&name) else {
                out.push(format!("{kind}/{name}: missing"));
                continue;
            };
            for (fa, fb) in fields(kind, other_is_gateway) {
                if skip.contains(&format!("{kind}/{fa}").as_str()) {
                    continue;
                }
                let (va, vb) = (norm(fa, a.get(fa)), norm(fb, b.get(fb)));
                if va != vb {
                    out.push(format!("{kind}/{name}.{fa}: gateway has {va}, the other {fb} = {vb}"));
                }
            }
        }
    }
    out
}

/// Opens an MCP Gateway sealed value: base64url of a 12-byte nonce and the AES-256-GCM ciphertext and tag,
/// under SHA-256 of the secret; the plaintext is JSON. Written here from the gateway's scheme, independently
/// of cfgledger's code.
fn open_sealed(secret: &str, value: &str) -> Value {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("not base64url ({e}): {value}"));
    assert!(raw.len() > 28, "too short to be sealed: {value}");
    let key = Sha256::digest(secret.as_bytes());
    let cipher = Aes256Gcm::new_from_slice(&key).expect("a 32-byte key");
    let (nonce, ciphertext) = raw.split_at(12);
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .unwrap_or_else(|_| panic!("the secret does not open {value}"));
    serde_json::from_slice(&plain).expect("the plaintext is JSON")
}

/// The auth headers sealed in `entity`'s `auth_value` (an empty object when it has none).
fn auth_headers(secret: &str, entity: &Value) -> Value {
    match entity.get("auth_value").and_then(Value::as_str) {
        Some(sealed) => open_sealed(secret, sealed),
        None => json!({}),
    }
}

/// What each credentialed entity must open to, as A was given it.
fn expected_credentials() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let many = |list: &[(&str, &str)]| Value::Object(list.iter().map(|(k, v)| (k.to_string(), json!(v))).collect());
    vec![
        ("gateways", "gw-basic", "basic", json!({"Authorization": basic(GW_BASIC)})),
        ("gateways", "gw-bearer", "bearer", json!({"Authorization": format!("Bearer {GW_BEARER}")})),
        ("gateways", "gw-header-one", "authheaders", json!({GW_HEADER_ONE.0: GW_HEADER_ONE.1})),
        ("gateways", "gw-header-many", "authheaders", many(&GW_HEADERS_MANY)),
        // The tool's secret header X-Api-Key travels in its sealed auth headers, beside its basic credential.
        ("tools", "rest-basic", "basic", json!({"Authorization": basic(TOOL_BASIC), "X-Api-Key": TOOL_API_KEY})),
        ("tools", "rest-bearer", "bearer", json!({"Authorization": format!("Bearer {TOOL_BEARER}")})),
        ("tools", "rest-header-one", "authheaders", json!({TOOL_HEADER_ONE.0: TOOL_HEADER_ONE.1})),
        ("tools", "rest-header-many", "authheaders", many(&TOOL_HEADERS_MANY)),
    ]
}

/// Checks every credential of a document in the gateway's layout, sealed under `secret`: each credentialed
/// entity's `auth_type` and opened `auth_value`, gw-query's `auth_query_params`, and the plaintext headers.
/// `with_tool_credentials`/`with_query`: whether the store had a file that carried them (the selective one).
fn check_gateway_layout_credentials(doc: &Value, secret: &str, with_tool_credentials: bool, with_query: bool) {
    for (kind, name, auth_type, want) in expected_credentials() {
        let entity = &by_name(doc, kind)[name];
        if kind == "tools" && !with_tool_credentials {
            assert_eq!(entity["auth_type"], auth_type, "{kind}/{name}: {entity}");
            assert!(entity.get("auth_value").is_none(), "{kind}/{name}: the file carried no credential: {entity}");
            continue;
        }
        assert_eq!(entity["auth_type"], auth_type, "{kind}/{name}: {entity}");
        assert_eq!(auth_headers(secret, entity), want, "{kind}/{name}: the credential, opened");
    }
    let query = &by_name(doc, "gateways")["gw-query"];
    if with_query {
        assert_eq!(query["auth_type"], "query_param", "{query}");
        let params = query["auth_query_params"].as_object().unwrap_or_else(|| panic!("no params: {query}"));
        assert_eq!(params.keys().collect::<Vec<_>>(), [GW_QUERY.0], "{query}");
        let opened = open_sealed(secret, params[GW_QUERY.0].as_str().expect("a sealed string"));
        assert_eq!(opened, json!({GW_QUERY.0: GW_QUERY.1}), "gw-query's parameter, opened");
    } else {
        // The full export carries no auth for a query-parameter gateway: it arrives without any.
        assert!(query.get("auth_type").is_none() && query.get("auth_query_params").is_none(), "{query}");
    }
    let tools = by_name(doc, "tools");
    let headers = |name: &str| tools[name].get("headers").cloned().unwrap_or(json!({}));
    if with_tool_credentials {
        // The non-secret headers stay plaintext, the secret one left them for the sealed auth headers.
        assert_eq!(headers("rest-basic"), json!({"X-Tenant": "acme"}));
        assert_eq!(headers("rest-bearer"), json!({"X-Tenant": "globex"}));
    }
    if let Some(plain) = tools.get("rest-plain") {
        if with_tool_credentials {
            assert_eq!(plain["headers"], json!({"X-Tenant": "initech"}), "{plain}");
            assert_eq!(plain["auth_type"], "authheaders", "{plain}");
            assert_eq!(auth_headers(secret, plain), json!({"Cookie": "c=1"}), "rest-plain's Cookie, opened");
        }
    }
}

// ------------------------------------------------------------------------------------------------------
// cfgledger
// ------------------------------------------------------------------------------------------------------

/// Runs cfgledger on `store` with `env` added; it must succeed. Its stdout.
fn cfgledger(store: &Store, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = store.cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::run(&mut cmd).expect_code(0, &format!("cfgledger {}", args.join(" "))).stdout
}

/// Imports `file` into `store` with A's secret; the plan's lines.
fn import(store: &Store, file: &Path, secret_a: &str) -> String {
    let out = cfgledger(
        store,
        &["import", file.to_str().expect("a UTF-8 path"), "--source-secret-env", "SOURCE_SECRET"],
        &[("SOURCE_SECRET", secret_a)],
    );
    eprintln!("--- cfgledger import {}\n{out}", file.display());
    out
}

/// The store's entities, as cfgledger's own export writes them (credentials sealed, inactive ones too).
fn store_doc(store: &Store) -> Value {
    cfgledger(store, &["export", "--include-inactive", "--out", "store.json"], &[]);
    read_json(&store.dir().join("store.json"))
}

/// The store exported in the gateway's layout under `secret`.
fn gateway_layout(store: &Store, secret: &str, include_inactive: bool) -> Value {
    let mut args = vec!["export", "--format", "mcpgateway", "--target-secret-env", "TARGET_SECRET"];
    if include_inactive {
        args.push("--include-inactive");
    }
    args.extend(["--out", "gateway-layout.json"]);
    cfgledger(store, &args, &[("TARGET_SECRET", secret)]);
    read_json(&store.dir().join("gateway-layout.json"))
}

/// The line of the plan for `kind/name` and the note lines below it.
fn plan_of(plan: &str, entity: &str) -> String {
    let mut lines = plan.lines().skip_while(|l| l.split_whitespace().nth(1) != Some(entity));
    let mut out = vec![lines.next().unwrap_or_else(|| panic!("no plan line for {entity} in:\n{plan}")).to_string()];
    out.extend(lines.take_while(|l| l.trim_start().starts_with("note:")).map(str::to_string));
    out.join("\n")
}

/// The requests each MCP upstream received since `since` (an index into its log), by upstream name.
fn upstream_requests(mcp: &McpUpstreams, since: usize) -> BTreeMap<&'static str, Vec<Value>> {
    let by_port: BTreeMap<u64, &'static str> = mcp.ports.iter().map(|(k, p)| (u64::from(*p), *k)).collect();
    let mut out: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    for r in mcp.log().into_iter().skip(since) {
        if let Some(name) = r["port"].as_u64().and_then(|p| by_port.get(&p)) {
            out.entry(name).or_default().push(r);
        }
    }
    out
}

/// Asserts that a gateway, registering its gateway entities, sent each upstream its credential. `oauth`: the
/// bearer token gw-oauth must have sent (`None`: it has no auth there).
fn check_upstream_credentials(seen: &BTreeMap<&'static str, Vec<Value>>, oauth: Option<&str>, who: &str) {
    let header = |up: &str, name: &str| -> BTreeSet<String> {
        seen.get(up)
            .unwrap_or_else(|| panic!("{who}: upstream {up} saw nothing: {seen:?}"))
            .iter()
            .filter_map(|r| r["headers"][name].as_str().map(str::to_string))
            .collect()
    };
    let only = |v: String| BTreeSet::from([v]);
    assert_eq!(header("basic", "authorization"), only(basic(GW_BASIC)), "{who}: gw-basic");
    assert_eq!(header("bearer", "authorization"), only(format!("Bearer {GW_BEARER}")), "{who}: gw-bearer");
    assert_eq!(header("header-one", "x-upstream-key"), only(GW_HEADER_ONE.1.into()), "{who}: gw-header-one");
    for (k, v) in GW_HEADERS_MANY {
        assert_eq!(header("header-many", &k.to_ascii_lowercase()), only(v.into()), "{who}: gw-header-many {k}");
    }
    let queries: BTreeSet<String> =
        seen["query"].iter().filter_map(|r| r["query_string"].as_str().map(str::to_string)).collect();
    assert!(
        queries.contains(&format!("{}={}", GW_QUERY.0, GW_QUERY.1)),
        "{who}: gw-query sends its parameter: {queries:?}"
    );
    match oauth {
        Some(token) => {
            assert_eq!(header("oauth", "authorization"), only(format!("Bearer {token}")), "{who}: gw-oauth")
        }
        None => assert!(header("oauth", "authorization").is_empty(), "{who}: gw-oauth sends no credential"),
    }
    assert!(header("sse", "authorization").is_empty(), "{who}: gw-sse-noauth sends no credential");
}

// ------------------------------------------------------------------------------------------------------
// The test
// ------------------------------------------------------------------------------------------------------

#[test]
fn a_gateways_export_round_trips_through_cfgledger_into_another_gateway() {
    let started = Instant::now();
    let jwt_secret = secret(48);
    let (secret_a, secret_b) = (secret(48), secret(48));
    let work = tempfile::tempdir().expect("a directory for the exported files");
    let echo = Echo::start();
    let mcp = McpUpstreams::start();

    // B boots while A is filled: nothing of B depends on A until the import.
    let boot_b = {
        let (jwt, sb) = (jwt_secret.clone(), secret_b.clone());
        std::thread::spawn(move || boot(&jwt, &sb))
    };
    let gw_a = boot(&jwt_secret, &secret_a);
    let a = Api::new(&gw_a, &jwt_secret);

    // 1. Fill A. Registering its gateways connects to each upstream with its credential (and gw-oauth
    //    fetches a token from the echo server first).
    let created = fill(&a, &echo, &mcp);
    check_upstream_credentials(&upstream_requests(&mcp, 0), Some(OAUTH_TOKEN), "A");
    assert!(
        echo.requests().iter().any(|r| r["path"] == "/oauth/token" && r["method"] == "POST"),
        "gw-oauth's client credentials grant reached the token endpoint"
    );

    // 2. Export A three ways.
    let full_path = work.path().join("a-full.json");
    let full = a.ok("GET", "/export?include_inactive=true", None);
    write_json(&full_path, &full);
    let selection = json!({
        "tools": created.all("tools"),
        "gateways": created.all("gateways"),
        "servers": created.all("servers"),
        "prompts": created.all("prompts"),
        "resources": created.all("resources"),
        "roots": created.all("roots"),
    });
    let selective_path = work.path().join("a-selective.json");
    let selective = a.ok("POST", "/export/selective", Some(&selection));
    write_json(&selective_path, &selective);
    let cli_path = work.path().join("a-cli.json");
    cli_export(&gw_a, &a.token, &cli_path);
    let cli = read_json(&cli_path);
    // A's work is done. Stopping it now also stops its health checks, which would otherwise reach the
    // upstreams with A's credentials while B's registrations are being checked below.
    drop(gw_a);

    // What A's files say, before anything reads them: the facts the imports below rest on.
    let all_tools: BTreeSet<String> = created.ids["tools"].keys().cloned().collect();
    for (what, doc) in [("full", &full), ("cli", &cli)] {
        assert_eq!(names(doc, "tools"), all_tools, "{what}: every REST tool, the inactive one too");
        assert_eq!(names(doc, "gateways").len(), 7, "{what}");
        assert_eq!(names(doc, "roots").len(), 3, "{what}");
        assert_eq!(by_name(doc, "tools")["rest-plain"]["is_active"], false, "{what}");
        // The gateway masks every header value and exports no tool credential in a full export.
        assert_eq!(by_name(doc, "tools")["rest-basic"]["headers"], json!({"X-Tenant": "*****", "X-Api-Key": "*****"}));
        assert!(by_name(doc, "tools")["rest-basic"]["auth_value"].is_null(), "{what}");
        // Full exports link a server's active tools by name.
        assert_eq!(
            norm("tool_ids", by_name(doc, "servers")["srv-main"].get("tool_ids")),
            json!(["rest-basic", "rest-bearer"])
        );
    }
    assert_eq!(names(&selective, "tools"), all_tools, "selective");
    assert!(
        by_name(&selective, "tools")["rest-basic"]["headers"]["X-Api-Key"]
            .get("_mcpgateway_encrypted_header_value_v1")
            .is_some(),
        "the selective export carries the sealed header: {}",
        by_name(&selective, "tools")["rest-basic"]
    );

    // 3a. The full export into a fresh store.
    let store = Store::with_builtin_catalog("");
    let plan = import(&store, &full_path, &secret_a);
    assert!(plan.contains("imported as batch"), "{plan}");
    assert!(
        plan.contains("plan: 21 create, 0 update"),
        "7 gateways, 5 tools, 2 resources, 2 prompts, 2 servers, 3 roots:\n{plan}"
    );
    let basic_plan = plan_of(&plan, "tools/rest-basic");
    assert!(
        basic_plan.contains("header X-Api-Key is masked in the file and the store has no value for it: left out"),
        "{basic_plan}"
    );
    assert!(
        basic_plan.contains("header X-Tenant is masked in the file and the store has no value for it: left out"),
        "{basic_plan}"
    );
    assert!(basic_plan.contains("credential not in file (auth_type basic): imported without it"), "{basic_plan}");
    let doc = store_doc(&store);
    let wrong = mismatches(&full, &doc, false, &[]);
    assert!(wrong.is_empty(), "the store differs from A's full export:\n{}", wrong.join("\n"));
    // And from what A was given: tags as labels, the links by name, the inactive tool inactive.
    let tools = by_name(&doc, "tools");
    assert_eq!(tools["rest-basic"]["tags"], json!(["team-a", "rest"]));
    assert_eq!(tools["rest-basic"]["url"], format!("{}/basic", echo.url()));
    assert_eq!(tools["rest-plain"]["is_active"], false);
    assert!(tools["rest-basic"].get("auth_value").is_none() && tools["rest-basic"]["headers"] == json!({}));
    assert_eq!(
        norm("associated_tools", by_name(&doc, "servers")["srv-main"].get("associated_tools")),
        json!(["rest-basic", "rest-bearer"])
    );
    let summarize = &by_name(&doc, "prompts")["summarize"]["input_schema"];
    assert_eq!(summarize["required"], json!(["text", "words"]), "tone stays optional: {summarize}");
    assert_eq!(summarize["properties"]["words"]["description"], "word budget", "{summarize}");
    // greet's `place` was created optional, but A itself reports every argument its template uses as
    // required (its export says so); the store holds what A reports.
    let greet = &by_name(&doc, "prompts")["greet"]["input_schema"];
    assert_eq!(greet["required"], json!(["name", "place"]), "{greet}");
    assert_eq!(greet["properties"]["name"]["description"], "who to greet", "{greet}");
    // Lost by the gateway's export, so never in the store: a resource's content, a server's links to
    // resources and prompts, and the MCP tools A discovered from its gateways (only the 5 REST tools).
    let readme = &by_name(&doc, "resources")["cfg://docs/readme"];
    assert!(readme.get("content").is_none(), "{readme}");
    let srv_main = &by_name(&doc, "servers")["srv-main"];
    assert!(srv_main.get("associated_resources").is_none() && srv_main.get("associated_prompts").is_none());
    assert_eq!(names(&doc, "tools"), all_tools);
    check_gateway_layout_credentials(
        &gateway_layout(&store, "any-target-secret", true),
        "any-target-secret",
        false,
        false,
    );

    // The same file again: nothing appended.
    let head = store.head();
    let again = import(&store, &full_path, &secret_a);
    assert!(again.contains("nothing to import: the store already holds this document"), "{again}");
    assert!(again.contains("plan: 0 create, 0 update, 21 unchanged"), "{again}");
    assert_eq!(store.head(), head, "a second import of the same file appends nothing");

    // 3b. The selective export after it fills in what the full one masked: tool credentials, real header
    //     values, the query parameter; its server links are database ids, so the stored links stay.
    let plan = import(&store, &selective_path, &secret_a);
    assert!(plan.contains("imported as batch"), "{plan}");
    let basic_plan = plan_of(&plan, "tools/rest-basic");
    assert!(
        basic_plan.starts_with("update") && basic_plan.contains("auth_value") && basic_plan.contains("headers"),
        "{basic_plan}"
    );
    let query_plan = plan_of(&plan, "gateways/gw-query");
    assert!(query_plan.starts_with("update") && query_plan.contains("auth_value"), "{query_plan}");
    let srv_plan = plan_of(&plan, "servers/srv-main");
    assert!(srv_plan.starts_with("unchanged") && srv_plan.contains("the store's links are kept"), "{srv_plan}");
    let doc = store_doc(&store);
    assert_eq!(
        norm("associated_tools", by_name(&doc, "servers")["srv-main"].get("associated_tools")),
        json!(["rest-basic", "rest-bearer"])
    );
    assert_eq!(by_name(&doc, "tools")["rest-basic"]["headers"]["X-Tenant"], "acme");
    assert!(by_name(&doc, "tools")["rest-basic"]["headers"]["X-Api-Key"].get("cfgledger_sealed").is_some());
    let wrong = mismatches(&selective, &doc, false, &["servers/tool_ids"]);
    assert!(wrong.is_empty(), "the store differs from A's selective export:\n{}", wrong.join("\n"));
    let secret_t = secret(40);
    let with_inactive = gateway_layout(&store, &secret_t, true);
    check_gateway_layout_credentials(&with_inactive, &secret_t, true, true);
    let warnings = with_inactive["metadata"]["warnings"].to_string();
    assert!(warnings.contains("tools/rest-plain is inactive here and arrives active"), "{warnings}");

    // 3c. The full export once more: its masks keep what the store now holds.
    let plan = import(&store, &full_path, &secret_a);
    let basic_plan = plan_of(&plan, "tools/rest-basic");
    assert!(basic_plan.contains("header X-Api-Key is masked in the file: the stored value is kept"), "{basic_plan}");
    assert!(basic_plan.contains("header X-Tenant is masked in the file: the stored value is kept"), "{basic_plan}");
    assert!(basic_plan.contains("credential not in file (auth_type basic): the stored one is kept"), "{basic_plan}");
    check_gateway_layout_credentials(&gateway_layout(&store, &secret_t, true), &secret_t, true, true);

    // 3d. The selective export alone, into a fresh store: everything but the server links, which are
    //     database ids here (left out, and the plan says so).
    let sel_store = Store::with_builtin_catalog("");
    let plan = import(&sel_store, &selective_path, &secret_a);
    let srv_plan = plan_of(&plan, "servers/srv-main");
    assert!(
        srv_plan.contains("names no entity in the file or the store") && srv_plan.contains("left out"),
        "{srv_plan}"
    );
    let sel_doc = store_doc(&sel_store);
    let wrong = mismatches(&selective, &sel_doc, false, &["servers/tool_ids"]);
    assert!(wrong.is_empty(), "the store differs from A's selective export:\n{}", wrong.join("\n"));
    let links = by_name(&sel_doc, "servers")["srv-main"].get("associated_tools").cloned();
    assert!(links.is_none() || links == Some(json!([])), "a selective export's links resolve to nothing: {links:?}");
    check_gateway_layout_credentials(&gateway_layout(&sel_store, &secret_t, true), &secret_t, true, true);

    // 3e. The CLI's export into a fresh store: the same as the full one.
    let cli_store = Store::with_builtin_catalog("");
    let plan = import(&cli_store, &cli_path, &secret_a);
    assert!(plan.contains("plan: 21 create, 0 update"), "{plan}");
    let wrong = mismatches(&cli, &store_doc(&cli_store), false, &[]);
    assert!(wrong.is_empty(), "the store differs from A's CLI export:\n{}", wrong.join("\n"));

    // 4. From the store (full, then selective, then full) to gateway B, under B's secret. The inactive
    //    rest-plain stays out: B's import would make it active.
    let for_b = gateway_layout(&store, &secret_b, false);
    write_json(&work.path().join("for-b.json"), &for_b);
    assert_eq!(for_b["version"], "2025-11-25");
    assert!(!names(&for_b, "tools").contains("rest-plain"), "inactive entities are left out by default");
    let warnings = for_b["metadata"]["warnings"].to_string();
    assert!(warnings.contains("X-Api-Key"), "the sealed secret header is named: {warnings}");
    check_gateway_layout_credentials(&for_b, &secret_b, true, true);

    let gw_b = boot_b.join().expect("gateway B booted");
    let b = Api::new(&gw_b, &jwt_secret);
    let mcp_mark = mcp.log().len();
    let result = b.ok("POST", "/import", Some(&json!({"import_data": for_b, "conflict_strategy": "update"})));
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["progress"]["failed"], 0, "B's import failed for some entities: {}", result["errors"]);
    eprintln!("B's import: {}", result["progress"]);

    // B registered the imported gateways with the credentials A was given (gw-oauth without any: OAuth never
    // leaves a gateway).
    check_upstream_credentials(&upstream_requests(&mcp, mcp_mark), None, "B");

    // B's own export against A's.
    let b_full = b.ok("GET", "/export?include_inactive=true", None);
    write_json(&work.path().join("b-full.json"), &b_full);
    let active_tools: BTreeSet<String> = all_tools.iter().filter(|t| *t != "rest-plain").cloned().collect();
    assert_eq!(names(&b_full, "tools"), active_tools);
    for kind in ["gateways", "servers", "prompts", "resources", "roots"] {
        assert_eq!(names(&b_full, kind), names(&full, kind), "{kind} in B and in A");
    }
    let mut a_active = full.clone();
    a_active["entities"]["tools"] =
        Value::Array(by_name(&full, "tools").into_iter().filter(|(n, _)| n != "rest-plain").map(|(_, t)| t).collect());
    // gw-oauth: A's full export names no auth type for it, and B has none.
    let wrong = mismatches(&a_active, &b_full, true, &[]);
    assert!(wrong.is_empty(), "B's export differs from A's:\n{}", wrong.join("\n"));
    // The gateways' credentials in B's export, opened with B's secret, are A's opened with A's.
    for name in ["gw-basic", "gw-bearer", "gw-header-one", "gw-header-many"] {
        let (ga, gb) = (&by_name(&full, "gateways")[name], &by_name(&b_full, "gateways")[name]);
        assert_eq!(auth_headers(&secret_b, gb), auth_headers(&secret_a, ga), "gateways/{name}");
    }
    // Headers: B holds the non-secret ones (masked in its export like A's); X-Api-Key moved into the auth.
    let header_names = |doc: &Value, tool: &str| -> BTreeSet<String> {
        by_name(doc, "tools")[tool]["headers"].as_object().map(|h| h.keys().cloned().collect()).unwrap_or_default()
    };
    assert_eq!(header_names(&b_full, "rest-basic"), BTreeSet::from(["X-Tenant".to_string()]));
    assert_eq!(header_names(&b_full, "rest-bearer"), BTreeSet::from(["X-Tenant".to_string()]));
    // Lost by design: OAuth (no export carries oauth_config).
    let b_gateways = b.ok("GET", "/gateways?include_inactive=true", None);
    let b_oauth = b_gateways
        .as_array()
        .and_then(|l| l.iter().find(|g| g["name"] == "gw-oauth"))
        .unwrap_or_else(|| panic!("no gw-oauth in B: {b_gateways}"));
    assert!(b_oauth["oauthConfig"].is_null(), "OAuth does not survive a gateway export: {b_oauth}");

    // 5. Tool calls through B: the echo upstream sees the credentials A was given.
    let call = |tool: &str, arguments: Value, path: &str| -> Value {
        let before = echo.requests().len();
        let answer = b.ok(
            "POST",
            "/rpc",
            Some(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": tool, "arguments": arguments}})),
        );
        assert!(answer.get("error").is_none() && answer["result"]["isError"] != true, "{tool}: {answer}");
        let seen: Vec<Value> = echo.requests().into_iter().skip(before).filter(|r| r["path"] == path).collect();
        assert_eq!(seen.len(), 1, "{tool}: one request to {path}: {seen:?}");
        seen[0].clone()
    };
    let seen = call("rest-basic", json!({"q": "hello"}), "/basic");
    assert_eq!(seen["method"], "GET", "{seen}");
    assert_eq!(seen["headers"]["authorization"], basic(TOOL_BASIC), "{seen}");
    assert_eq!(seen["headers"]["x-api-key"], TOOL_API_KEY, "{seen}");
    assert_eq!(seen["headers"]["x-tenant"], "acme", "{seen}");
    assert_eq!(seen["query"]["q"], "hello", "{seen}");
    let seen = call("rest-bearer", json!({"msg": "m"}), "/bearer");
    assert_eq!(seen["method"], "POST", "{seen}");
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {TOOL_BEARER}"), "{seen}");
    assert_eq!(seen["headers"]["x-tenant"], "globex", "{seen}");
    assert!(seen["headers"].get("x-api-key").is_none(), "{seen}");

    eprintln!("gateway round trip done in {:.0?}", started.elapsed());
}
