//! Three real MCP Gateway 1.1.0 instances, each the child of its own `cfgledger agent exec`, follow one real
//! `cfgledger serve` (a SQLite store in a temporary directory, on a free port). Each gateway gets its whole
//! configuration from the agent's environment (its working directory has no `.env`), and the test shows:
//! - a change of a restart-required key (APP_NAME) restarts every gateway, and each reports the new value
//!   through its own API within 30 s of the write; so does a hot key (TOOL_RATE_LIMIT) under the default
//!   `--on-change restart`; the times are measured and printed;
//! - with the server killed, the gateways keep serving; an agent stopped and started again while the server
//!   is down starts its gateway from the sealed cache with the latest values; a change written into the
//!   store meanwhile reaches every gateway once the server is back on the same port and store, and
//!   `GET /admin/instances` lists the server and the three agents, all converged;
//! - the gateways' secrets appear in no agent's output (which includes the gateway's own) and in no cache,
//!   and the caches and their keys are mode 0600.
//!
//! Everything runs in one test: the three first boots (migrations on an empty database) are the expensive
//! part, and every later step builds on the state the one before left.

mod support;

use serde_json::{json, Value};
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::gateway::{self, free_port, password, process_group_alive, secret, signal_process_group};
use support::{parse_json, wait_for, Store, BIN};

const ADMIN_EMAIL: &str = "platform-admin@cfgledger.test";
/// How many gateways follow the store.
const GATEWAYS: usize = 3;
/// The bound under test: a change is visible in every gateway's API within this of the write.
const CHANGE_BOUND: Duration = Duration::from_secs(30);
/// How long a change is watched for, past the bound, so that a miss reports the time it really took.
const OBSERVE: Duration = Duration::from_secs(90);
/// Three first boots at once (each migrates an empty database) on two cores, or one boot from the cache.
const BOOT_DEADLINE: Duration = Duration::from_secs(240);
/// Every other condition: a server up, an agent gone, the instance list converged.
const DEADLINE: Duration = Duration::from_secs(30);
/// Short heartbeats and backoff keep the test quick; the gateway stops within a second of SIGTERM, and the
/// harness gives it the same 10 s (`support::gateway`) before a kill.
const AGENT_FLAGS: &[&str] = &["--heartbeat", "1s", "--max-backoff", "2s", "--kill-timeout", "10s"];
/// The restart-required key the test changes, and the hot one (the test first checks that the catalog says so).
const RESTART_KEY: &str = "APP_NAME";
const HOT_KEY: &str = "TOOL_RATE_LIMIT";

/// The gateway's settings seeded into the store, and which of them are secrets.
struct Settings {
    pairs: Vec<(String, String)>,
    secrets: Vec<(&'static str, String)>,
    jwt_secret: String,
}

impl Settings {
    fn new() -> Settings {
        let jwt_secret = secret(48);
        let secrets = vec![
            ("JWT_SECRET_KEY", jwt_secret.clone()),
            ("AUTH_ENCRYPTION_SECRET", secret(48)),
            ("PLATFORM_ADMIN_PASSWORD", password()),
            ("DEFAULT_USER_PASSWORD", password()),
            ("BASIC_AUTH_PASSWORD", password()),
        ];
        // A gateway on SQLite in its working directory and an in-memory cache needs no other service; the UI
        // off makes `GET /` name the app, and the admin API on makes `/admin/config/settings` show the rest.
        let plain = [
            (RESTART_KEY, "agent-gateway-initial"),
            ("ENVIRONMENT", "development"),
            ("HOST", "127.0.0.1"),
            ("DATABASE_URL", "sqlite:///./mcp.db"),
            ("CACHE_TYPE", "memory"),
            ("AUTH_REQUIRED", "true"),
            ("PLATFORM_ADMIN_EMAIL", ADMIN_EMAIL),
            ("BASIC_AUTH_USER", "gateway-operator"),
            ("MCPGATEWAY_UI_ENABLED", "false"),
            ("MCPGATEWAY_ADMIN_API_ENABLED", "true"),
            // Features the test does not use, off: each adds routers to build at every (re)start, and a
            // restart is what the test times.
            ("LLMCHAT_ENABLED", "false"),
            ("MCPGATEWAY_A2A_ENABLED", "false"),
            ("MCPGATEWAY_CATALOG_ENABLED", "false"),
        ];
        let pairs = plain
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(secrets.iter().map(|(k, v)| (k.to_string(), v.clone())))
            .collect();
        Settings { pairs, secrets, jwt_secret }
    }

    /// The store's `.env`: the gateway's settings and cfgledger's own token key.
    fn env_file(&self) -> String {
        let mut text = format!("CFGLEDGER_JWT_SECRET_KEY={}\n", secret(48));
        for (k, v) in &self.pairs {
            text.push_str(&format!("{k}={v}\n"));
        }
        text
    }
}

/// A blocking HTTP client whose requests end within seconds, so that polling keeps to its deadlines.
fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .max_idle_connections(0)
        .build()
}

/// `METHOD url` with an optional bearer token and JSON body: the status and the JSON body (a body that is
/// not JSON as a JSON string); `Err` when no answer came.
fn call(method: &str, url: &str, bearer: Option<&str>, body: Option<&Value>) -> Result<(u16, Value), String> {
    let mut req = http().request(method, url);
    if let Some(token) = bearer {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(&b.to_string()),
        None => req.call(),
    };
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            let text = r.into_string().map_err(|e| format!("{method} {url}: the body did not arrive: {e}"))?;
            Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
        }
        Err(e) => Err(format!("{method} {url}: {e}")),
    }
}

/// `GET url` that must answer 200; its body.
fn get_ok(url: &str, bearer: Option<&str>) -> Result<Value, String> {
    match call("GET", url, bearer, None)? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("GET {url}: {status} {body}")),
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The processes whose parent is `pid`, from `/proc/*/stat`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == pid && state != "Z").then_some(child)
        })
        .collect()
}

/// The environment of a running process, as NAME=VALUE strings.
fn environ(pid: u32) -> Vec<String> {
    let bytes = fs::read(format!("/proc/{pid}/environ")).unwrap_or_else(|e| panic!("read the environ of {pid}: {e}"));
    bytes.split(|b| *b == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
}

/// A `cfgledger serve` on the store, in its own process group, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts the server on `port` and waits until `/health` answers; its output goes to
    /// `serve.RUN.stdout` and `.stderr` in the store's directory.
    fn start(store: &Store, port: u16, run: usize) -> Server {
        let out = |ext: &str| {
            let path = store.dir().join(format!("serve.{run}.{ext}"));
            File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
        };
        let child = store
            .cmd()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(out("stdout"))
            .stderr(out("stderr"))
            .process_group(0)
            .spawn()
            .expect("cfgledger serve starts");
        let mut server = Server { child, port };
        let mut exited = None;
        let up = wait_for(DEADLINE, || {
            if let Ok(Some(status)) = server.child.try_wait() {
                exited = Some(status);
                return true;
            }
            matches!(call("GET", &format!("{}/health", server.url()), None, None), Ok((200, _)))
        });
        let output = || fs::read_to_string(store.dir().join(format!("serve.{run}.stderr"))).unwrap_or_default();
        assert!(exited.is_none(), "cfgledger serve exited ({exited:?}):\n{}", tail(&output(), 40));
        assert!(up, "cfgledger serve did not answer /health on port {port} within {DEADLINE:?}:\n{}", output());
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no graceful shutdown, no last heartbeat.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One gateway and its agent: the agent's own directory (its cache and output) and, inside it, the
/// gateway's working directory (its database, HOME and TMPDIR). Drop stops the agent and kills every
/// gateway process group it ever ran.
struct Member {
    n: usize,
    dir: PathBuf,
    work: PathBuf,
    port: u16,
    agent: Option<Child>,
    /// How many times the agent was started; each run writes `agent.RUN.stdout` and `.stderr`.
    runs: usize,
    /// Every gateway process group seen, killed on drop in case its agent did not take it along.
    groups: Vec<u32>,
}

impl Member {
    fn new(root: &Path, n: usize) -> Member {
        let dir = root.join(format!("agent-{n}"));
        let work = dir.join("gateway");
        fs::create_dir_all(&work).unwrap_or_else(|e| panic!("create {}: {e}", work.display()));
        Member { n, dir, work, port: free_port(), agent: None, runs: 0, groups: Vec::new() }
    }

    fn id(&self) -> String {
        format!("gw-{}", self.n)
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache.json")
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `cfgledger --server URL agent exec --include-secrets --cache DIR/cache.json --label gw=N ... --
    /// mcpgateway --host 127.0.0.1 --port PORT`, in the gateway's working directory, with the gateway's bare
    /// environment (PATH, HOME, TMPDIR) and the reader token: every setting the gateway sees comes from the
    /// agent.
    fn start(&mut self, server_url: &str, token: &str) {
        assert!(self.agent.is_none(), "gw={} is already running", self.n);
        self.runs += 1;
        let out = |ext: &str| {
            let path = self.dir.join(format!("agent.{}.{ext}", self.runs));
            File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
        };
        let child = Command::new(BIN)
            .current_dir(&self.work)
            .env_clear()
            .envs(gateway::base_environment(&self.work))
            .env("CFGLEDGER_TOKEN", token)
            .args(["--server", server_url, "agent", "exec", "--include-secrets", "--cache"])
            .arg(self.cache())
            .args(["--label", &format!("gw={}", self.n), "--id", &self.id()])
            .args(AGENT_FLAGS)
            .arg("--")
            .args(gateway::serve_command_line(self.port))
            .stdin(Stdio::null())
            .stdout(out("stdout"))
            .stderr(out("stderr"))
            .process_group(0)
            .spawn()
            .expect("cfgledger agent exec starts");
        self.agent = Some(child);
    }

    fn agent_pid(&self) -> u32 {
        self.agent.as_ref().unwrap_or_else(|| panic!("gw={} has no agent", self.n)).id()
    }

    /// The gateway's pid (the leader of its process group), if the agent runs one; remembered for drop.
    fn gateway_pid(&mut self) -> Option<u32> {
        let pid = children(self.agent_pid()).into_iter().next()?;
        if !self.groups.contains(&pid) {
            self.groups.push(pid);
        }
        Some(pid)
    }

    fn agent_exited(&mut self) -> Option<ExitStatus> {
        self.agent.as_mut().and_then(|c| c.try_wait().expect("try_wait on the agent"))
    }

    /// What a poller on another thread needs to ask the gateway.
    fn target(&self) -> Target {
        Target { n: self.n, url: self.url() }
    }

    fn healthy(&self) -> bool {
        self.target().healthy()
    }

    fn app_name(&self) -> Result<String, String> {
        self.target().app_name()
    }

    fn setting(&self, token: &str, name: &str) -> Result<Value, String> {
        self.target().setting(token, name)
    }

    /// Waits until the gateway answers `/health` healthy; panics with the agent's output when the agent
    /// exits first or the deadline passes. The time it took.
    fn wait_healthy(&mut self, deadline: Duration) -> Duration {
        let started = Instant::now();
        let mut exited = None;
        let healthy = wait_for(deadline, || {
            exited = self.agent_exited();
            exited.is_some() || self.healthy()
        });
        assert!(exited.is_none(), "the agent of gw={} exited ({exited:?}):\n{}", self.n, self.output_tail());
        assert!(healthy, "gw={} was not healthy within {deadline:?}:\n{}", self.n, self.output_tail());
        self.gateway_pid();
        started.elapsed()
    }

    /// SIGTERM to the agent alone: it passes the signal to the gateway's group and exits once the gateway
    /// has. Waits for both; the agent's exit status.
    fn stop(&mut self) -> ExitStatus {
        let gateway = self.gateway_pid().unwrap_or_else(|| panic!("gw={} runs no gateway", self.n));
        let agent = self.agent_pid();
        let status = Command::new("kill").args(["-TERM", &agent.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {agent}");
        let mut exited = None;
        wait_for(DEADLINE, || {
            exited = self.agent_exited();
            exited.is_some()
        });
        let exited = exited.unwrap_or_else(|| {
            panic!("the agent of gw={} did not exit within {DEADLINE:?} of SIGTERM:\n{}", self.n, self.output_tail())
        });
        assert!(
            wait_for(DEADLINE, || !process_group_alive(gateway)),
            "the gateway of gw={} (process group {gateway}) outlived its agent",
            self.n
        );
        self.agent = None;
        exited
    }

    /// What run `run` of the agent wrote to stdout and stderr (the gateway's output included: it inherits
    /// both).
    fn run_output(&self, run: usize) -> String {
        ["stdout", "stderr"]
            .iter()
            .map(|ext| fs::read_to_string(self.dir.join(format!("agent.{run}.{ext}"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything every run of the agent wrote.
    fn output(&self) -> String {
        (1..=self.runs).map(|run| self.run_output(run)).collect::<Vec<_>>().join("\n")
    }

    fn output_tail(&self) -> String {
        format!(
            "--- last lines of agent gw={} (run {}) ---\n{}",
            self.n,
            self.runs,
            tail(&self.run_output(self.runs), 60)
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            if let Some(pid) = children(agent.id()).into_iter().next() {
                self.groups.push(pid);
            }
            // A graceful stop first, so that the agent takes its gateway along; then whatever is left.
            let _ = Command::new("kill").args(["-TERM", &agent.id().to_string()]).stderr(Stdio::null()).status();
            wait_for(Duration::from_secs(15), || agent.try_wait().ok().flatten().is_some());
            if process_group_alive(agent.id()) {
                signal_process_group("KILL", agent.id());
            }
            let _ = agent.wait();
        }
        for &group in &self.groups {
            if process_group_alive(group) {
                signal_process_group("KILL", group);
            }
        }
        wait_for(Duration::from_secs(5), || self.groups.iter().all(|&g| !process_group_alive(g)));
    }
}

/// A gateway's address, to ask it from any thread.
#[derive(Clone)]
struct Target {
    n: usize,
    url: String,
}

impl Target {
    fn healthy(&self) -> bool {
        get_ok(&format!("{}/health", self.url), None).is_ok_and(|b| b["status"] == "healthy")
    }

    /// The app name the gateway reports at `GET /` (no token needed while its UI is off).
    fn app_name(&self) -> Result<String, String> {
        let body = get_ok(&format!("{}/", self.url), None)?;
        body["name"].as_str().map(str::to_string).ok_or_else(|| format!("no name in {body}"))
    }

    /// One setting from the gateway's `/admin/config/settings`, by its lower-case name.
    fn setting(&self, token: &str, name: &str) -> Result<Value, String> {
        let all = get_ok(&format!("{}/admin/config/settings", self.url), Some(token))?;
        let groups = all["groups"].as_object().ok_or_else(|| format!("no groups in {all}"))?;
        groups.values().find_map(|g| g.get(name).cloned()).ok_or_else(|| format!("no setting {name} in {all}"))
    }

    /// `Ok` once the gateway's app name is `want`.
    fn named(&self, want: &str) -> Result<(), String> {
        match self.app_name()? {
            name if name == want => Ok(()),
            name => Err(format!("gw={} is named {name:?}", self.n)),
        }
    }
}

/// Waits for every gateway at once until `check` holds for it: the time each took from `since`. Panics,
/// naming the last thing seen, for one that did not within [`OBSERVE`].
fn time_until(
    members: &[Member],
    since: Instant,
    what: &str,
    check: impl Fn(&Target) -> Result<(), String> + Sync,
) -> Vec<Duration> {
    let targets: Vec<Target> = members.iter().map(Member::target).collect();
    let results: Vec<Result<Duration, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let check = &check;
                s.spawn(move || {
                    let mut last = String::from("nothing yet");
                    let done = wait_for(OBSERVE.saturating_sub(since.elapsed()), || match check(t) {
                        Ok(()) => true,
                        Err(e) => {
                            last = e;
                            false
                        }
                    });
                    if done {
                        Ok(since.elapsed())
                    } else {
                        Err(last)
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a poller thread")).collect()
    });
    results
        .into_iter()
        .zip(members)
        .map(|(r, m)| {
            r.unwrap_or_else(|last| {
                panic!("gw={}: {what} not seen within {OBSERVE:?}; last: {last}\n{}", m.n, m.output_tail())
            })
        })
        .collect()
}

/// Prints the measured times and asserts that each is within [`CHANGE_BOUND`].
fn report(what: &str, times: &[Duration]) {
    let each: Vec<String> =
        times.iter().enumerate().map(|(i, t)| format!("gw={} {:.1} s", i + 1, t.as_secs_f64())).collect();
    println!("{what}: {}", each.join(", "));
    for (i, t) in times.iter().enumerate() {
        assert!(*t <= CHANGE_BOUND, "{what}: gw={} took {t:.1?}, over the {CHANGE_BOUND:?} bound", i + 1);
    }
}

/// `GET /admin/instances`.
fn instances(server: &Server, token: &str) -> Result<Value, String> {
    get_ok(&format!("{}/admin/instances", server.url()), Some(token))
}

/// The entry of agent gw=N in an instance list.
fn agent_entry(list: &Value, n: usize) -> Option<&Value> {
    list["instances"].as_array()?.iter().find(|i| i["id"] == format!("agent/gw-{n}"))
}

/// Waits until the instance list shows agent gw=N's child restarted `restarts[N-1]` times and running a
/// configuration at or after `seq`.
fn wait_for_restarts(server: &Server, token: &str, restarts: &[u64], seq: u64) {
    let mut last = Value::Null;
    let done = wait_for(DEADLINE, || {
        let Ok(list) = instances(server, token) else { return false };
        let ok = (1..=GATEWAYS).all(|n| {
            agent_entry(&list, n).is_some_and(|a| {
                let child = &a["child"];
                child["state"] == "running"
                    && child["restarts"] == restarts[n - 1]
                    && child["config_seq"].as_u64().is_some_and(|s| s >= seq)
            })
        });
        last = list;
        ok
    });
    assert!(done, "the agents did not report {restarts:?} restarts with config seq >= {seq}: {last:#}");
}

/// `PUT /admin/config/KEY`; the seq of the change.
fn put(server: &Server, token: &str, key: &str, value: Value) -> u64 {
    let url = format!("{}/admin/config/{key}", server.url());
    let (status, body) =
        call("PUT", &url, Some(token), Some(&json!({ "value": value }))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "PUT {key}: {body}");
    body["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {body}"))
}

#[test]
fn three_gateways_under_agents_follow_changes_and_outlive_the_server() {
    let started = Instant::now();
    // Installs the gateway on first use, failing loudly when it cannot.
    gateway::python();
    let settings = Settings::new();
    let store = Store::with_builtin_catalog(&settings.env_file());

    // The premise: which of the two keys the gateway reads only at start, as the catalog says.
    let list = parse_json(&store.ok(&["config", "list", "--output", "json"]).stdout);
    let reload = |key: &str| {
        let items = list["items"].as_array().expect("items");
        let item = items.iter().find(|i| i["namespace"] == "mcpgateway" && i["key"] == key);
        item.unwrap_or_else(|| panic!("no {key} in the list")).get("reload").cloned().unwrap_or_default()
    };
    assert_eq!(reload(RESTART_KEY), "restart");
    assert_eq!(reload(HOT_KEY), "hot");

    let issue = |sub: &str, role: &str| {
        store.ok(&["token", "issue", "--sub", sub, "--role", role, "--ttl", "1h"]).stdout.trim().to_string()
    };
    let reader = issue("gateway-agent", "config_reader");
    let admin = issue("operator", "platform_admin");
    let port = free_port();
    let server = Server::start(&store, port, 1);

    // 1. Three gateways, each the child of its own agent, booted in parallel.
    let root = tempfile::tempdir().expect("a temporary directory");
    let mut members: Vec<Member> = (1..=GATEWAYS).map(|n| Member::new(root.path(), n)).collect();
    for m in &mut members {
        m.start(&server.url(), &reader);
    }
    for m in &mut members {
        let took = m.wait_healthy(BOOT_DEADLINE);
        println!(
            "gw={} healthy {:.1} s after the agents started ({:.1} s waited for it)",
            m.n,
            started.elapsed().as_secs_f64(),
            took.as_secs_f64()
        );
    }
    let initial = "agent-gateway-initial";
    for m in &mut members {
        assert!(!m.work.join(".env").exists(), "gw={}: its configuration must come from the agent alone", m.n);
        assert_eq!(m.app_name().as_deref(), Ok(initial), "gw={}", m.n);
        // The settings arrived in the gateway's process environment; the agent's token did not.
        let env = environ(m.gateway_pid().expect("a gateway"));
        assert!(env.contains(&format!("{RESTART_KEY}={initial}")), "gw={}: {RESTART_KEY} not in its environment", m.n);
        assert!(env.contains(&format!("JWT_SECRET_KEY={}", settings.jwt_secret)), "gw={}: no JWT_SECRET_KEY", m.n);
        assert!(!env.iter().any(|v| v.starts_with("CFGLEDGER_TOKEN=")), "gw={}: the agent's token leaked to it", m.n);
        assert!(m.run_output(1).contains("with the server's configuration"), "{}", m.output_tail());
    }
    let token_dir = root.path().join("token");
    fs::create_dir_all(&token_dir).expect("create the token directory");
    let token = gateway::mint_token(&token_dir, &settings.pairs, &settings.jwt_secret, ADMIN_EMAIL);
    for m in &members {
        assert_eq!(m.setting(&token, "tool_rate_limit"), Ok(json!(100)), "gw={}: the default", m.n);
        assert_eq!(m.setting(&token, "basic_auth_user"), Ok(json!("gateway-operator")), "gw={}", m.n);
    }
    wait_for_restarts(&server, &admin, &[0, 0, 0], 0);

    // 2. A restart-required key: every gateway restarts and shows the new value.
    let renamed = "agent-gateway-renamed";
    let t0 = Instant::now();
    let seq = put(&server, &admin, RESTART_KEY, json!(renamed));
    let times = time_until(&members, t0, &format!("{RESTART_KEY}={renamed}"), |t| t.named(renamed));
    report(&format!("restart-required {RESTART_KEY}: PUT to the new value in each gateway's GET /"), &times);
    wait_for_restarts(&server, &admin, &[1, 1, 1], seq);

    // 3. A hot key under the default `--on-change restart`: the same.
    let t0 = Instant::now();
    let seq = put(&server, &admin, HOT_KEY, json!(250));
    let times =
        time_until(&members, t0, &format!("{HOT_KEY}=250"), |t| match t.setting(&token, "tool_rate_limit")? {
            v if v == 250 => Ok(()),
            v => Err(format!("gw={} says {v}", t.n)),
        });
    report(&format!("hot {HOT_KEY} (--on-change restart): PUT to the new value in /admin/config/settings"), &times);
    wait_for_restarts(&server, &admin, &[2, 2, 2], seq);

    // 4. The server killed: the gateways keep serving, and their agents know they may be stale.
    let pids: Vec<Option<u32>> = members.iter_mut().map(Member::gateway_pid).collect();
    server.kill();
    for m in &mut members {
        let stale = wait_for(DEADLINE, || m.run_output(1).contains("configuration may be stale"));
        assert!(stale, "gw={}: the agent did not notice the server is gone\n{}", m.n, m.output_tail());
    }
    for (m, pid) in members.iter_mut().zip(&pids) {
        assert!(m.agent_exited().is_none(), "gw={}: the agent exited with the server\n{}", m.n, m.output_tail());
        assert!(m.healthy(), "gw={}: not healthy with the server down\n{}", m.n, m.output_tail());
        assert_eq!(m.app_name().as_deref(), Ok(renamed), "gw={}", m.n);
        assert_eq!(m.gateway_pid(), *pid, "gw={}: the gateway was not left alone", m.n);
    }

    // One agent stopped (its gateway goes with it) and started again while the server is down: from the cache.
    let first = &mut members[0];
    let status = first.stop();
    println!("gw=1's agent stopped with {status}");
    first.start(&format!("http://127.0.0.1:{port}"), &reader);
    let took = first.wait_healthy(BOOT_DEADLINE);
    println!("gw=1 healthy {:.1} s after its agent started again from the cache", took.as_secs_f64());
    let second_run = first.run_output(2);
    assert!(
        second_run.contains("with the last-known-good cache of mcpgateway"),
        "the agent does not say it started from the cache:\n{}",
        first.output_tail()
    );
    assert!(!first.run_output(1).contains("last-known-good cache of"), "the first run started from the server");
    assert_eq!(first.app_name().as_deref(), Ok(renamed), "gw=1 from the cache: the latest {RESTART_KEY}");
    assert_eq!(first.setting(&token, "tool_rate_limit"), Ok(json!(250)), "gw=1 from the cache: the latest {HOT_KEY}");

    // A change written straight into the store while no server runs, which the agents learn when it is back.
    let offline = "agent-gateway-offline";
    store.set(RESTART_KEY, offline);
    let t0 = Instant::now();
    let server = Server::start(&store, port, 2);
    let up = t0.elapsed();
    let times = time_until(&members, t0, &format!("{RESTART_KEY}={offline}"), |t| t.named(offline));
    println!("server back and answering /health after {:.1} s", up.as_secs_f64());
    report(&format!("{RESTART_KEY} written while the server was down: server start to the new value"), &times);

    // The instance list: the server and the three agents, all converged, each agent on the server's
    // configuration again with its gateway running.
    let mut last = Value::Null;
    let converged = wait_for(DEADLINE, || {
        let Ok(list) = instances(&server, &admin) else { return false };
        let agents_ok = (1..=GATEWAYS).all(|n| {
            agent_entry(&list, n).is_some_and(|a| {
                a["kind"] == "agent"
                    && a["status"] == "converged"
                    && a["matches_log"] == true
                    && a["stale"] == false
                    && a["origin"] == "server"
                    && a["labels"]["gw"] == format!("{n}").as_str()
                    && a["child"]["state"] == "running"
            })
        });
        let entries = list["instances"].as_array().cloned().unwrap_or_default();
        let server_ok = entries.iter().any(|i| i["kind"] == "server" && i["status"] == "converged");
        let ok = agents_ok && server_ok && list["converged"] == true && list["by_status"] == json!({ "converged": 4 });
        last = list;
        ok
    });
    assert!(converged, "the instance list did not converge: {last:#}");
    // gw=1's new agent restarted its gateway once (for the change made offline), the others three times.
    wait_for_restarts(&server, &admin, &[1, 3, 3], 0);
    for m in &members {
        assert!(!m.work.join(".env").exists(), "gw={}: no .env appeared", m.n);
    }

    // 5. No secret in plaintext in any agent's output (the gateway's included) or cache; caches are 0600.
    for m in &members {
        let output = m.output();
        assert!(output.contains("configuration changed"), "gw={}: the output checked is the agent's", m.n);
        for (name, value) in &settings.secrets {
            assert!(!output.contains(value.as_str()), "gw={}: the agent's output holds {name} in plaintext", m.n);
        }
        for path in [m.cache(), key_path(&m.cache())] {
            let mode = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} is mode {:o}", path.display(), mode & 0o777);
        }
        let cache = fs::read(m.cache()).expect("read the cache");
        for (name, value) in &settings.secrets {
            assert!(!support::contains_bytes(&cache, value.as_bytes()), "gw={}: the cache holds {name}", m.n);
        }
        assert!(!support::contains_bytes(&cache, offline.as_bytes()), "gw={}: the cache's values are sealed", m.n);
    }
    for run in 1..=2 {
        let log = fs::read_to_string(store.dir().join(format!("serve.{run}.stderr"))).unwrap_or_default();
        for (name, value) in &settings.secrets {
            assert!(!log.contains(value.as_str()), "the server's output (run {run}) holds {name}");
        }
    }
    println!("the whole test took {:.1} s", started.elapsed().as_secs_f64());
}

/// The cache's key file: the cache's path with `.key` appended.
fn key_path(cache: &Path) -> PathBuf {
    let mut name = cache.as_os_str().to_os_string();
    name.push(".key");
    PathBuf::from(name)
}
