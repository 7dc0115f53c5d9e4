//! The Python recipe (`docs/recipes/cfgledger_follow.py`, explained in `docs/python-recipe.md`) against a real
//! `cfgledger serve`, run by a real Python 3.11+ with a `config_reader` token read from a file: the first render
//! lands in the file, a `config set` reaches it (and its reload command), the server is killed and a change is
//! made while it is down, and once the server is back on the same port and store, the follower resumes with
//! `Last-Event-ID` (the missed change arrives on the stream, once) and its heartbeat lists it as converged.
//!
//! A missing Python fails the test: a recipe that is not run is not tested.

mod instances_support;

use instances_support::{changes, eventually, Deployment, Http, BIN};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/recipes/cfgledger_follow.py");
/// The id the follower reports, and how `GET /admin/instances` lists it.
const CLIENT_ID: &str = "gateway-1";

/// The absolute path of a Python 3.11 or newer: `$CFGLEDGER_TEST_PYTHON`, `python3` on PATH, pyenv's
/// versions (newest first), or the system's. Panics when there is none.
fn python() -> PathBuf {
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("CFGLEDGER_TEST_PYTHON").map(PathBuf::from).into_iter().collect();
    candidates.push("python3".into());
    if let Some(home) = std::env::var_os("HOME") {
        let mut pyenv: Vec<PathBuf> = std::fs::read_dir(Path::new(&home).join(".pyenv/versions"))
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.path().join("bin/python3")).collect())
            .unwrap_or_default();
        pyenv.sort();
        candidates.extend(pyenv.into_iter().rev());
    }
    candidates.push("/usr/bin/python3".into());
    let probe = "import sys; print(sys.executable if sys.version_info >= (3, 11) else '')";
    for candidate in &candidates {
        let Ok(out) = Command::new(candidate).args(["-c", probe]).output() else { continue };
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !exe.is_empty() {
            return PathBuf::from(exe);
        }
    }
    panic!(
        "the Python recipe needs python3 >= 3.11, and none of these is one: {candidates:?}; install one \
         (`pyenv install 3.12`) or name it in CFGLEDGER_TEST_PYTHON"
    );
}

/// Lines read from a child's pipe on a thread of their own, for assertions and failure messages.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(pipe: impl std::io::Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let sink = lines.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("lock").push(line);
            }
        });
        lines
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    fn tail(&self) -> String {
        let all = self.all();
        all[all.len().saturating_sub(30)..].join("\n")
    }
}

/// A `cfgledger serve` on the deployment's store; dropping it kills the process (SIGKILL: no goodbye).
struct Server {
    child: Child,
    /// Kept open so that the server's stdout never becomes a closed pipe.
    _stdout: BufReader<ChildStdout>,
    url: String,
    stderr: Lines,
}

impl Server {
    fn start(d: &Deployment, listen: &str) -> Server {
        let mut child = d
            .cmd()
            .env_remove("CFGLEDGER_CATALOG")
            .args(["serve", "--listen", listen, "--sse-keepalive", "1s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = Lines::collect(child.stderr.take().expect("stderr piped"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let mut server = Server { child, _stdout: stdout, url: String::new(), stderr };
        match first.trim().strip_prefix("cfgledger listening on ") {
            Some(url) => server.url = url.to_string(),
            None => panic!("serve --listen {listen} did not start: {first:?}\n{}", server.stderr.tail()),
        }
        server
    }

    /// `127.0.0.1:PORT`, to start the next server on the same port.
    fn addr(&self) -> &str {
        self.url.strip_prefix("http://").expect("an http URL")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The recipe, following a server; dropping it kills the process.
struct Follower {
    child: Child,
    stderr: Lines,
}

impl Follower {
    /// `python3 cfgledger_follow.py ARGS`, in `work`, with a scrubbed environment whose only secret is the
    /// token file's path.
    fn start(python: &Path, work: &Path, args: &[&str]) -> Follower {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(SCRIPT)
            .args(args)
            .current_dir(work)
            .env_clear()
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", work)
            .env("CFGLEDGER_TOKEN_FILE", work.join("reader.token"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs the recipe");
        let stderr = Lines::collect(child.stderr.take().expect("stderr piped"));
        Follower { child, stderr }
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(status.is_none(), "the follower exited ({status:?}):\n{}", self.stderr.tail());
    }

    /// The seqs of the change events the follower logged (`change seq N: ...`), in order.
    fn changes_seen(&self) -> Vec<u64> {
        self.stderr
            .all()
            .iter()
            .filter_map(|l| l.split_once("change seq ")?.1.split_once(':')?.0.parse().ok())
            .collect()
    }

    fn count(&self, needle: &str) -> usize {
        self.stderr.all().iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cfgledger ARGS` on the deployment's store, with the built-in catalog as it ships (MCP Gateway's
/// `LOG_LEVEL` takes `DEBUG`, `INFO`, ...), not the suite's; panics unless it succeeds.
fn cli(d: &Deployment, args: &[&str]) -> String {
    let out = d.cmd().env_remove("CFGLEDGER_CATALOG").args(args).output().expect("the cfgledger binary runs");
    assert!(out.status.success(), "cfgledger {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `cfgledger --server URL config set KEY VALUE` with a bearer token from the environment.
fn config_set(url: &str, token: &str, key: &str, value: &str) {
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CFGLEDGER_TOKEN", token)
        .args(["--server", url, "config", "set", key, value])
        .output()
        .expect("the cfgledger binary runs");
    assert!(out.status.success(), "config set {key} {value}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Waits until the rendered file holds `line`, and returns the file.
fn wait_for_line(file: &Path, line: &str, follower: &Follower) -> String {
    eventually(&format!("{} to hold {line}", file.display()), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.lines().any(|l| l == line) {
            Ok(text)
        } else {
            Err(format!("the file:\n{text}\nthe follower:\n{}", follower.stderr.tail()))
        }
    })
}

/// Waits until `GET /admin/instances` lists the follower as converged at the log's head.
fn wait_converged(server: &Server, admin: &str, follower: &Follower) -> Value {
    let http = Http::new(false);
    let id = format!("client/{CLIENT_ID}");
    eventually(&format!("{id} converged"), || {
        let list = http.call("GET", &format!("{}/admin/instances", server.url), Some(admin), None)?.json();
        let entry = list["instances"].as_array().and_then(|all| all.iter().find(|i| i["id"] == id.as_str()));
        match entry {
            Some(e) if e["status"] == "converged" && e["applied_seq"] == list["head"] => Ok(e.clone()),
            _ => Err(format!("{list}\nthe follower:\n{}", follower.stderr.tail())),
        }
    })
}

#[test]
fn the_python_recipe_follows_renders_resumes_and_reports() {
    let python = python();
    let d = Deployment::new("sqlite://c.db", "LOG_LEVEL=INFO");
    let admin = cli(&d, &["token", "issue", "--sub", "admin", "--role", "platform_admin"]).trim().to_string();
    let reader = cli(&d, &["token", "issue", "--sub", "gateway-reader", "--role", "config_reader"]);
    let work = tempfile::tempdir().expect("a temporary directory");
    let token_file = work.path().join("reader.token");
    std::fs::write(&token_file, reader.trim()).expect("write the token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod the token file");
    let out = work.path().join("gateway.env");
    let reloads = work.path().join("reloads.log");
    // The reload command records what it found, and whether the token reached it (it must not).
    let reload_cmd =
        "grep '^LOG_LEVEL=' \"$CFGLEDGER_OUT\" >> reloads.log; env | grep '^CFGLEDGER_TOKEN' >> leaked.log; true";

    let server = Server::start(&d, "127.0.0.1:0");
    let out_arg = out.to_str().expect("a UTF-8 path");
    let args = [
        "--server",
        &server.url,
        "--out",
        out_arg,
        "--include-secrets",
        "--heartbeat-id",
        CLIENT_ID,
        "--max-backoff",
        "1",
        "--reload-cmd",
        reload_cmd,
    ];
    let mut follower = Follower::start(&python, work.path(), &args);

    // The first render, secrets included (a config_reader may), in a file only its owner reads.
    let first = wait_for_line(&out, "LOG_LEVEL='INFO'", &follower);
    assert!(first.lines().any(|l| l.starts_with("JWT_SECRET_KEY='")), "secrets are rendered:\n{first}");
    let mode = std::fs::metadata(&out).expect("the file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the rendered file is private");
    wait_converged(&server, &admin, &follower);

    // A change through the server reaches the file, and the reload command runs after the rename.
    config_set(&server.url, &admin, "LOG_LEVEL", "DEBUG");
    wait_for_line(&out, "LOG_LEVEL='DEBUG'", &follower);
    eventually("the reload command to run for each change", || {
        let text = std::fs::read_to_string(&reloads).unwrap_or_default();
        (text == "LOG_LEVEL='INFO'\nLOG_LEVEL='DEBUG'\n").then_some(()).ok_or(text)
    });

    // The server dies. The follower retries, keeps the last file, and does not exit.
    let addr = server.addr().to_string();
    let before = follower.count("cannot follow");
    drop(server);
    eventually("the follower to retry twice while the server is down", || {
        let failures = follower.count("cannot follow") - before;
        (failures >= 2).then_some(()).ok_or_else(|| follower.stderr.tail())
    });
    follower.assert_running();

    // A change made while the server is down, straight into the store.
    cli(&d, &["config", "set", "LOG_LEVEL", "WARNING"]);
    let log: Vec<Value> = cli(&d, &["log", "--output", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let (missed, _, _) = changes(&log).pop().expect("the change is in the log");
    assert!(std::fs::read_to_string(&out).expect("the file").contains("LOG_LEVEL='DEBUG'"), "the last file is kept");
    follower.assert_running();

    // Back on the same port and store: the follower resumes after the last seq it saw, so the change made
    // while the server was down arrives on the stream, exactly once, and lands in the file.
    let server = Server::start(&d, &addr);
    assert_eq!(server.addr(), addr, "the server is back on the same port");
    wait_for_line(&out, "LOG_LEVEL='WARNING'", &follower);
    eventually(&format!("the missed change (seq {missed}) on the resumed stream"), || {
        follower.changes_seen().contains(&missed).then_some(()).ok_or_else(|| follower.stderr.tail())
    });
    let resumed = follower.stderr.all().into_iter().filter(|l| l.contains("following http")).nth(1);
    let after: u64 = resumed
        .as_deref()
        .and_then(|l| l.rsplit_once("after seq ")?.1.trim().parse().ok())
        .unwrap_or_else(|| panic!("the reconnect sends Last-Event-ID: {resumed:?}\n{}", follower.stderr.tail()));
    assert!(after < missed, "resumed after seq {after}, before the missed seq {missed}");

    // And it keeps following the new server.
    config_set(&server.url, &admin, "LOG_LEVEL", "ERROR");
    wait_for_line(&out, "LOG_LEVEL='ERROR'", &follower);
    wait_converged(&server, &admin, &follower);
    let seen = follower.changes_seen();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "each change arrives once, in order: {seen:?}");
    follower.assert_running();
    assert_eq!(
        std::fs::read_to_string(&reloads).unwrap_or_default().lines().collect::<Vec<_>>(),
        ["LOG_LEVEL='INFO'", "LOG_LEVEL='DEBUG'", "LOG_LEVEL='WARNING'", "LOG_LEVEL='ERROR'"],
        "one reload per change of value"
    );
    assert_eq!(std::fs::read_to_string(work.path().join("leaked.log")).unwrap_or_default(), "", "no token to reload");

    // `--once` renders once and exits; JSON too.
    let json_out = work.path().join("gateway.json");
    let once = Command::new(&python)
        .arg(SCRIPT)
        .args(["--server", &server.url, "--out", json_out.to_str().expect("UTF-8"), "--format", "json", "--once"])
        .env_clear()
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CFGLEDGER_TOKEN_FILE", &token_file)
        .output()
        .expect("python3 runs the recipe");
    assert!(once.status.success(), "--once: {}", String::from_utf8_lossy(&once.stderr));
    let rendered: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_out).expect("the JSON file")).expect("JSON");
    assert_eq!(rendered["LOG_LEVEL"], "ERROR");
    assert!(rendered.get("JWT_SECRET_KEY").is_none(), "no secrets without --include-secrets: {rendered}");

    // Every staged file was renamed or removed.
    let staged: Vec<String> = std::fs::read_dir(work.path())
        .expect("the work directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".gateway."))
        .collect();
    assert!(staged.is_empty(), "staged files left behind: {staged:?}");
}
