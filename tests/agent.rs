//! `cfgledger agent exec` and `agent render` through the real binary against a real `cfgledger serve`:
//! the child's environment, restarts and signals, exit codes passed through, the server going away and
//! coming back, starting from the sealed cache, the render's check command, and where secrets may and may
//! not appear.

mod api_support;
mod support;

use api_support::{Server, Store, BIN, ENCRYPTION_SECRET};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec-planted-plaintext-9c1e77";
const DEADLINE: Duration = Duration::from_secs(20);

/// The child: writes its pid and environment to `env.<pid>` in its directory, fails at once (exit 3) when
/// its LOG_FILE holds `bad`, reports TERM and HUP there, and sleeps until told to stop.
const CHILD: &str = r#"#!/bin/sh
env > "env.$$"
echo "$$" >> pids
case "$LOG_FILE" in *bad*) exit 3 ;; esac
trap 'echo "TERM $$" >> signals; exit 0' TERM
trap 'echo "HUP $$" >> signals; env > "env.$$.hup"' HUP
while true; do sleep 0.05; done
"#;

/// A running agent: its stderr collected, killed with its process group on drop.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The threads reading its output, joined once it exited so that its last lines are in.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Agent {
    fn start(store: &Store, server_url: &str, args: &[&str], token: Option<&str>) -> Agent {
        let mut cmd = agent_cmd(store, server_url, token);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("the agent starts");
        let (stderr, err_reader) = collect(child.stderr.take().expect("stderr"));
        let (stdout, out_reader) = collect(child.stdout.take().expect("stdout"));
        Agent { child, stderr, stdout, readers: vec![err_reader, out_reader] }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn output(&self) -> String {
        format!("{}\n{}", self.stdout.lock().unwrap().join("\n"), self.stderr())
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    fn wait(&mut self) -> i32 {
        let mut status = None;
        let exited = support::wait_for(DEADLINE, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        assert!(exited, "the agent did not exit:\n{}", self.output());
        for reader in self.readers.drain(..) {
            reader.join().expect("the output reader");
        }
        status.and_then(|s| s.code()).unwrap_or(-1)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // TERM first: the agent passes it to its child's own process group and waits for it, so that no
        // child outlives the test; KILL whatever is left after a grace.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        support::wait_for(Duration::from_secs(5), || self.child.try_wait().ok().flatten().is_some());
        let pgid = format!("-{pid}");
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

fn collect(pipe: impl std::io::Read + Send + 'static) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

/// `cfgledger --server URL agent` in the store's directory, with a scrubbed environment and the token in
/// CFGLEDGER_TOKEN.
fn agent_cmd(store: &Store, server_url: &str, token: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(store.dir())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", store.dir())
        .args(["--server", server_url, "agent"]);
    if let Some(t) = token {
        c.env("CFGLEDGER_TOKEN", t);
    }
    c
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    assert!(support::wait_for(DEADLINE, &mut f), "timed out waiting for {what}");
}

/// The environment files the child wrote, by pid, in start order.
fn child_envs(dir: &Path) -> Vec<(String, String)> {
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
    pids.lines()
        .map(|pid| (pid.to_string(), std::fs::read_to_string(dir.join(format!("env.{pid}"))).unwrap_or_default()))
        .collect()
}

fn exec_dir(store: &Store) -> PathBuf {
    let script = store.dir().join("child.sh");
    std::fs::write(&script, CHILD).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    store.dir().to_path_buf()
}

fn instances(server: &Server, token: &str) -> Vec<Value> {
    server.get("/admin/instances", token).ok_json()["instances"].as_array().unwrap().clone()
}

#[test]
fn exec_gives_the_child_its_settings_restarts_it_for_a_restart_key_and_signals_it_for_a_hot_key() {
    let store = Store::new(&format!("LOG_LEVEL=info\nMAX_WORKERS=4\nWEBHOOK_SECRET={SECRET}"));
    let server = store.serve(&[]);
    let admin = store.token("admin", "platform_admin");
    let reader = store.token("agent", "config_reader");
    let dir = exec_dir(&store);
    let agent = Agent::start(
        &store,
        &server.url,
        &[
            "exec",
            "--include-secrets",
            "--on-change",
            "signal:HUP",
            "--heartbeat",
            "300ms",
            "--label",
            "tier=edge",
            "--kill-timeout",
            "5s",
            "--",
            "./child.sh",
        ],
        Some(&reader),
    );
    wait_for("the child starts", || child_envs(&dir).len() == 1);
    let (first_pid, env) = child_envs(&dir).remove(0);
    for line in ["LOG_LEVEL=info", "MAX_WORKERS=4", &format!("WEBHOOK_SECRET={SECRET}")] {
        assert!(env.lines().any(|l| l == line), "{line} in the child's environment:\n{env}");
    }
    assert!(!env.contains("CFGLEDGER_TOKEN"), "the agent's token never reaches the child");

    // A hot key with --on-change signal:HUP: the child gets HUP, no restart.
    server.put("MAX_WORKERS", &admin, json!(12)).ok_json();
    wait_for("the child is signalled", || {
        std::fs::read_to_string(dir.join("signals")).is_ok_and(|s| s.contains(&format!("HUP {first_pid}")))
    });
    assert_eq!(child_envs(&dir).len(), 1, "a hot key does not restart the child");

    // A restart-required key: TERM, then a new child with the new value.
    server.put("LOG_FILE", &admin, json!("/var/log/app.log")).ok_json();
    wait_for("the child restarts", || child_envs(&dir).len() == 2);
    let signals = std::fs::read_to_string(dir.join("signals")).unwrap();
    assert!(signals.contains(&format!("TERM {first_pid}")), "the old child was asked to stop: {signals}");
    let (_, env) = child_envs(&dir).remove(1);
    assert!(
        env.lines().any(|l| l == "LOG_FILE=/var/log/app.log") && env.lines().any(|l| l == "MAX_WORKERS=12"),
        "{env}"
    );

    // The heartbeat: labels, the child's state and restarts, converged.
    wait_for("the agent is listed converged with its restarted child", || {
        instances(&server, &admin).iter().any(|i| {
            i["kind"] == "agent"
                && i["labels"]["tier"] == "edge"
                && i["status"] == "converged"
                && i["child"]["restarts"] == 1
                && i["child"]["state"] == "running"
        })
    });
    assert!(!agent.output().contains(SECRET), "no secret in the agent's output:\n{}", agent.output());
    let caches: Vec<PathBuf> = std::fs::read_dir(store.dir().join(".cache/cfgledger"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cache.json"))
        .collect();
    assert_eq!(caches.len(), 1, "{caches:?}");
    let cache = std::fs::read_to_string(&caches[0]).unwrap();
    assert!(!cache.contains(SECRET) && !cache.contains("app.log"), "the cache is sealed: {cache}");
}

#[test]
fn exec_passes_the_exit_code_and_forwards_a_stop_signal() {
    let store = Store::new("LOG_LEVEL=info");
    let server = store.serve(&[]);
    let reader = store.token("agent", "config_reader");
    let mut once = Agent::start(&store, &server.url, &["exec", "--once", "--", "sh", "-c", "exit 7"], Some(&reader));
    assert_eq!(once.wait(), 7, "{}", once.output());
    let mut killed =
        Agent::start(&store, &server.url, &["exec", "--once", "--", "sh", "-c", "kill -KILL $$"], Some(&reader));
    assert_eq!(killed.wait(), 128 + 9, "a signal's death is 128 + N, as a shell says");

    let dir = exec_dir(&store);
    let mut agent = Agent::start(&store, &server.url, &["exec", "--", "./child.sh"], Some(&reader));
    wait_for("the child starts", || child_envs(&dir).len() == 1);
    let (pid, _) = child_envs(&dir).remove(0);
    agent.signal("TERM");
    assert_eq!(agent.wait(), 0, "the child trapped TERM and exited 0: {}", agent.output());
    assert!(std::fs::read_to_string(dir.join("signals")).unwrap().contains(&format!("TERM {pid}")));

    let mut missing = Agent::start(&store, &server.url, &["exec", "--once", "--", "./no-such-command"], Some(&reader));
    assert_eq!(missing.wait(), 127, "{}", missing.output());
    assert!(missing.stderr().contains("cannot start ./no-such-command"), "{}", missing.stderr());
}

#[test]
fn the_child_outlives_the_server_and_a_restarted_agent_starts_from_the_cache() {
    let store = Store::new("LOG_LEVEL=info");
    let server = store.serve(&[]);
    let addr = server.url.clone();
    let admin = store.token("admin", "platform_admin");
    let reader = store.token("agent", "config_reader");
    let dir = exec_dir(&store);
    let args = ["exec", "--heartbeat", "300ms", "--max-backoff", "500ms", "--", "./child.sh"];
    let mut agent = Agent::start(&store, &addr, &args, Some(&reader));
    wait_for("the child starts", || child_envs(&dir).len() == 1);
    server.put("LOG_LEVEL", &admin, json!("warn")).ok_json();
    wait_for("the child restarts with warn", || {
        child_envs(&dir).last().is_some_and(|(_, env)| env.contains("LOG_LEVEL=warn"))
    });
    let running = child_envs(&dir).len();
    let (pid, _) = child_envs(&dir).pop().unwrap();
    drop(server);
    wait_for("the agent says it may be stale", || agent.stderr().contains("may be stale"));
    assert!(agent.alive(), "the agent never exits because the server is down");
    assert_eq!(child_envs(&dir).len(), running, "no new child");
    assert!(Command::new("kill").args(["-0", &pid]).status().unwrap().success(), "the child keeps running");

    // A new agent while the server is down: its child starts from the cache, and it says so.
    agent.signal("TERM");
    agent.wait();
    let mut again = Agent::start(&store, &addr, &args, Some(&reader));
    wait_for("a child starts from the cache", || child_envs(&dir).len() == running + 1);
    assert!(child_envs(&dir).last().unwrap().1.contains("LOG_LEVEL=warn"), "the cached value");
    wait_for("the agent says where it started from", || again.stderr().contains("last-known-good cache"));

    // Without a cache and without a server: a clear failure, exit 3; --require-fresh refuses the cache.
    let mut bare = Agent::start(&store, &addr, &["exec", "--no-cache", "--", "true"], Some(&reader));
    assert_eq!(bare.wait(), 3);
    assert!(bare.stderr().contains("cannot reach the cfgledger server"), "{}", bare.stderr());
    let mut fresh = Agent::start(&store, &addr, &["exec", "--require-fresh", "--", "true"], Some(&reader));
    assert_eq!(fresh.wait(), 3);
    assert!(fresh.stderr().contains("fresh configuration is required"), "{}", fresh.stderr());
    // An agent that asks for secrets has a cache of its own: it never starts from one without them.
    let mut other = Agent::start(&store, &addr, &["exec", "--include-secrets", "--", "true"], Some(&reader));
    assert_eq!(other.wait(), 3);
    assert!(other.stderr().contains("no cache at"), "{}", other.stderr());

    // A change while the server is down, then the server back on the same address: the agent catches up,
    // restarts its child with the new value, and is listed converged.
    store.ok(&["config", "set", "LOG_LEVEL", "error"]);
    let server = store.serve_on(addr.trim_start_matches("http://"), &[]);
    wait_for("the child restarts with the change made while the server was down", || {
        child_envs(&dir).last().is_some_and(|(_, env)| env.contains("LOG_LEVEL=error"))
    });
    wait_for("the agent is converged", || {
        instances(&server, &admin)
            .iter()
            .any(|i| i["kind"] == "agent" && i["status"] == "converged" && i["stale"] == false)
    });
    assert!(again.alive());
}

#[test]
fn a_change_that_makes_the_child_fail_is_rolled_back_until_the_next_change() {
    let store = Store::new("LOG_FILE=/var/log/good.log");
    let server = store.serve(&[]);
    let admin = store.token("admin", "platform_admin");
    let reader = store.token("agent", "config_reader");
    let dir = exec_dir(&store);
    let mut agent =
        Agent::start(&store, &server.url, &["exec", "--heartbeat", "300ms", "--", "./child.sh"], Some(&reader));
    wait_for("the child starts", || child_envs(&dir).len() == 1);
    let good_seq = server.head();

    // The child cannot start with this value: it runs again with the one before, and the agent stays.
    server.put("LOG_FILE", &admin, json!("/var/log/bad.log")).ok_json();
    wait_for("the failed child is replaced by one on the last good configuration", || child_envs(&dir).len() == 3);
    let envs = child_envs(&dir);
    assert!(envs[1].1.contains("LOG_FILE=/var/log/bad.log"), "the change was tried");
    assert!(envs[2].1.contains("LOG_FILE=/var/log/good.log"), "and rolled back");
    assert!(agent.alive(), "a failed update never takes the service down");
    assert!(agent.stderr().contains("made the child fail (exit 3)"), "{}", agent.stderr());
    wait_for("the heartbeat shows the child behind, on the good seq, with why", || {
        instances(&server, &admin).iter().any(|i| {
            i["kind"] == "agent"
                && i["status"] == "behind"
                && i["child"]["config_seq"].as_u64().is_some_and(|s| s <= good_seq)
                && i["error"].as_str().is_some_and(|e| e.contains("made the child fail"))
        })
    });

    // The cache keeps what the child runs: an agent started while the server is down starts the good one.
    let addr = server.url.trim_start_matches("http://").to_string();
    drop(server);
    agent.signal("TERM");
    agent.wait();
    let children = child_envs(&dir).len();
    let mut again = Agent::start(
        &store,
        &format!("http://{addr}"),
        &["exec", "--heartbeat", "300ms", "--", "./child.sh"],
        Some(&reader),
    );
    wait_for("a child from the cache", || child_envs(&dir).len() == children + 1);
    assert!(child_envs(&dir).last().unwrap().1.contains("LOG_FILE=/var/log/good.log"), "the good configuration");
    assert!(again.alive());
    let server = store.serve_on(&addr, &[]);

    // The next change is tried.
    server.put("LOG_FILE", &admin, json!("/var/log/better.log")).ok_json();
    wait_for("the child runs the next change", || {
        child_envs(&dir).last().is_some_and(|(_, env)| env.contains("LOG_FILE=/var/log/better.log"))
    });
    wait_for("the agent is converged again", || {
        instances(&server, &admin)
            .iter()
            .any(|i| i["kind"] == "agent" && i["status"] == "converged" && i["error"].is_null())
    });
}

#[test]
fn render_replaces_the_file_only_when_its_check_passes_and_then_reloads() {
    let store = Store::new(&format!("LOG_FILE=/var/log/gw.log\nWEBHOOK_SECRET={SECRET}"));
    let server = store.serve(&[]);
    let admin = store.token("admin", "platform_admin");
    let reader = store.token("agent", "config_reader");
    let out = store.dir().join("conf").join("gateway.env");
    std::fs::create_dir(out.parent().unwrap()).unwrap();
    let out_s = out.to_string_lossy().to_string();
    let reloads = store.dir().join("reloads");
    let reload = format!("echo reloaded >> {}", reloads.display());
    let agent = Agent::start(
        &store,
        &server.url,
        &["render", "--format", "env", "--out", &out_s, "--check-cmd", "! grep -q BROKEN {}", "--reload-cmd", &reload],
        Some(&reader),
    );
    wait_for("the first render", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("LOG_FILE='/var/log/gw.log'"))
    });
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&out).unwrap().contains(SECRET), "no secrets unless asked for");
    wait_for("the first reload", || std::fs::read_to_string(&reloads).is_ok_and(|r| r.lines().count() == 1));

    // A value the check refuses: the old file stays, no staged file is left, no reload; the agent says why.
    server.put("LOG_FILE", &admin, json!("/BROKEN")).ok_json();
    wait_for("the agent reports the failed check", || agent.stderr().contains("left as it was"));
    assert!(std::fs::read_to_string(&out).unwrap().contains("LOG_FILE='/var/log/gw.log'"));
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the file itself: {leftovers:?}");
    assert_eq!(std::fs::read_to_string(&reloads).unwrap().lines().count(), 1);
    wait_for("the heartbeat carries the failure and the old seq", || {
        server.get("/admin/instances", &admin).ok_json()["instances"].as_array().unwrap().iter().any(|i| {
            i["kind"] == "agent" && i["error"].as_str().is_some_and(|e| e.contains("check")) && i["status"] == "behind"
        })
    });

    // A good value again: replaced and reloaded.
    server.put("LOG_FILE", &admin, json!("/var/log/gw2.log")).ok_json();
    wait_for("the fixed render", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("LOG_FILE='/var/log/gw2.log'"))
    });
    wait_for("the second reload", || std::fs::read_to_string(&reloads).is_ok_and(|r| r.lines().count() == 2));

    // --once with secrets: they are in the file that asked for them (0600), and the render is audited.
    let secret_out = store.dir().join("secret.json");
    let mut once = Agent::start(
        &store,
        &server.url,
        &["render", "--once", "--include-secrets", "--format", "json", "--out", secret_out.to_str().unwrap()],
        Some(&reader),
    );
    assert_eq!(once.wait(), 0, "{}", once.output());
    let rendered: Value = serde_json::from_str(&std::fs::read_to_string(&secret_out).unwrap()).unwrap();
    assert_eq!(rendered["WEBHOOK_SECRET"], SECRET);
    assert_eq!(std::fs::metadata(&secret_out).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!once.output().contains(SECRET));
    let audit = server.get("/admin/config/audit?action=secrets_rendered", &admin).ok_json();
    assert!(audit.to_string().contains("\"agent\""), "the render is recorded with the agent as actor: {audit}");
}

#[test]
fn a_child_that_ignores_the_stop_signal_is_killed_after_its_grace_and_signals_reach_it() {
    let store = Store::new("LOG_FILE=/var/log/a.log");
    let server = store.serve(&[]);
    let admin = store.token("admin", "platform_admin");
    let reader = store.token("agent", "config_reader");
    let dir = store.dir();
    let script = dir.join("stubborn.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nenv > \"env.$$\"\necho \"$$\" >> pids\ntrap '' TERM\ntrap 'echo \"USR1 $$\" >> signals' USR1\nwhile true; do sleep 0.05; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent =
        Agent::start(&store, &server.url, &["exec", "--kill-timeout", "1s", "--", "./stubborn.sh"], Some(&reader));
    wait_for("the child starts", || child_envs(dir).len() == 1);
    let (first, _) = child_envs(dir).remove(0);
    agent.signal("USR1");
    wait_for("the signal reaches the child", || {
        std::fs::read_to_string(dir.join("signals")).is_ok_and(|s| s.contains(&format!("USR1 {first}")))
    });
    server.put("LOG_FILE", &admin, json!("/var/log/b.log")).ok_json();
    wait_for("a new child after the old one was killed", || {
        child_envs(dir).last().is_some_and(|(_, env)| env.contains("LOG_FILE=/var/log/b.log"))
    });
    assert!(agent.stderr().contains("did not stop within its grace period"), "{}", agent.stderr());
    assert!(
        !Command::new("kill").args(["-0", &first]).stderr(Stdio::null()).status().unwrap().success(),
        "the old child is gone"
    );
}

#[test]
fn render_once_fails_with_the_check_and_says_so_once() {
    let store = Store::new("LOG_FILE=/var/log/a.log");
    let server = store.serve(&[]);
    let reader = store.token("agent", "config_reader");
    let out = store.dir().join("app.env");
    std::fs::write(&out, "OLD=1\n").unwrap();
    let mut once = Agent::start(
        &store,
        &server.url,
        &["render", "--once", "--out", out.to_str().unwrap(), "--check-cmd", "false"],
        Some(&reader),
    );
    assert_eq!(once.wait(), 1, "{}", once.output());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "OLD=1\n", "the old file stays");
    assert_eq!(once.stderr().matches("the check command failed").count(), 1, "{}", once.stderr());
}

#[test]
fn the_agent_alone_is_the_same_agent() {
    let store = Store::new("LOG_FILE=/var/log/alone.log");
    let server = store.serve(&[]);
    let reader = store.token("agent", "config_reader");
    let out = store.dir().join("alone.env");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cfgledger-agent"))
            .current_dir(store.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", store.dir())
            .env("CFGLEDGER_TOKEN", &reader)
            .args(["--server", &server.url])
            .args(args)
            .output()
            .expect("cfgledger-agent runs")
    };
    let rendered = run(&["render", "--once", "--out", out.to_str().unwrap()]);
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    assert!(std::fs::read_to_string(&out).unwrap().contains("LOG_FILE='/var/log/alone.log'"));
    let exec = run(&["exec", "--once", "--", "sh", "-c", "test \"$LOG_FILE\" = /var/log/alone.log && exit 5"]);
    assert_eq!(
        exec.status.code(),
        Some(5),
        "the child's environment and exit code: {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let bad = run(&["exec", "--on-change", "sometimes", "--", "true"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--on-change expects"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn a_token_on_the_command_line_is_refused() {
    let store = Store::new("");
    let out = Command::new(BIN)
        .current_dir(store.dir())
        .env_clear()
        .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", ENCRYPTION_SECRET)
        .args(["--server", "http://127.0.0.1:9", "--token", "abc", "agent", "render", "--out", "x.env"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("never from the command line"), "{stderr}");

    // The child's own arguments after `--` are its business.
    let server = store.serve(&[]);
    let reader = store.token("agent", "config_reader");
    let mut child_flag =
        Agent::start(&store, &server.url, &["exec", "--once", "--", "sh", "-c", "exit 0", "--token=x"], Some(&reader));
    assert_eq!(child_flag.wait(), 0, "{}", child_flag.output());
}
