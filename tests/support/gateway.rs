//! The real MCP Context Forge gateway 1.1.0 as a test fixture: `python()` installs it once per build directory
//! into a Python 3.12 virtual environment, and `Gateway::boot` starts it from one `.env` file alone, on a free
//! loopback port, in a fresh temporary directory, and kills it on drop. A test that starts the gateway through
//! another process instead (`cfgledger agent exec`, in `tests/agent_gateway.rs`) takes its command line
//! (`serve_command_line`), its environment (`base_environment`) and its tokens (`mint_token`) from here.
//!
//! # What the gateway needs to boot on a bare machine
//! No network service: with `DATABASE_URL=sqlite:///./mcp.db` (relative to the working directory, which is the
//! temporary directory here) and `CACHE_TYPE=database` or `memory` it needs neither PostgreSQL nor Redis; it
//! logs that Redis is unreachable and falls back to memory. `Settings.validate_security_combinations` refuses to
//! start unless these are set to non-placeholder, non-weak values:
//! - `JWT_SECRET_KEY` and `AUTH_ENCRYPTION_SECRET`: at least 32 characters and Shannon entropy of at least 3.5
//!   bits per character, not `__REPLACE_ME__`/`replaceme...`, not one of the known weak values (`changeme`, ...);
//! - `PLATFORM_ADMIN_PASSWORD` *and* `DEFAULT_USER_PASSWORD` (while `EMAIL_AUTH_ENABLED`, the default): at least
//!   `PASSWORD_MIN_LENGTH_USER` (12) characters; the latter is easy to forget, its default `changeme` is refused;
//! - `BASIC_AUTH_PASSWORD` only while `API_ALLOW_BASIC_AUTH` or `DOCS_ALLOW_BASIC_AUTH` is on.
//!
//! `mcpgateway --validate-config FILE` runs the same checks without booting.
//! The first boot on an empty database runs the Alembic migrations and bootstraps the platform admin (about
//! 15 s on two cores); `/health` answers only after that.
//!
//! # Endpoints that reveal the settings in effect
//! - `GET /` (no auth, only while `MCPGATEWAY_UI_ENABLED=false`): `{"name": APP_NAME, ...}`.
//! - `GET /version` (platform admin token): `app.name` (APP_NAME), `database.dialect` and a sanitized
//!   `database.url` (DATABASE_URL), `redis.url` (REDIS_URL), and `settings`: `cache_type`,
//!   `mcpgateway_ui_enabled`, `mcpgateway_admin_api_enabled`, `metrics_retention_days`,
//!   `metrics_rollup_retention_days`, `metrics_cleanup_enabled`, `metrics_rollup_enabled`. Its `env` lists
//!   only `MCPGATEWAY_*`/`MCP_*` variables of the *process* environment, so it is empty here: what the `.env`
//!   file says does not show there.
//! - `GET /admin/config/settings` (only while `MCPGATEWAY_ADMIN_API_ENABLED=true`; an admin token whose `teams`
//!   claim is null, which `Gateway::token` mints): about 90 settings in `groups` by category, secrets masked as
//!   `*****`: app name, host, port, environment, app domain; auth (basic auth user, JWT algorithm, audience,
//!   issuer, `token_expiry`, ...); SSO switches; platform admin email; database URL, cache type, Redis URL, pool
//!   sizes; feature flags (UI, admin API, bulk import, A2A, catalog, plugins, well-known, direct proxy);
//!   timeouts; transport; logging (`log_level`, `log_format`, ...); tool and resource limits; CORS
//!   (`cors_enabled`, `allowed_origins`, `cors_allow_credentials`); security headers; observability; dev mode.
//!   Plus `security_status` (what `/health/security` summarises). `Gateway::setting` looks a key up in it.
//! - `GET /health/security` (admin): a security score, six checks (auth, secure secrets, SSL verification, debug
//!   off, CORS restricted, UI protected) and the warnings.
//! - `GET /api/metrics/config` (admin): metrics cleanup and rollup settings (enabled, retention days, intervals,
//!   batch size).
//! - Behaviour rather than a report: a CORS preflight (`Gateway::preflight`) shows whether an origin from
//!   ALLOWED_ORIGINS is really allowed.
//!
//! # Surprises a renderer must know
//! - `settings.port` is the `.env`'s PORT (default 4444) even though uvicorn listens on `--port`; the harness
//!   passes its own free port on the command line and leaves PORT to the file.
//! - In `ENVIRONMENT=development` (the default), an ALLOWED_ORIGINS equal to the default set
//!   `["http://localhost","http://localhost:4444"]` is replaced by seven development origins, because the
//!   gateway asks only the process environment (`os.environ`) whether ALLOWED_ORIGINS was set, not the `.env`
//!   file. Any other list is kept as written.
//! - The gateway forks worker processes, so the harness starts it in its own process group and signals the
//!   whole group.
//! - It keeps lock files in the temporary directory of the system (`TMPDIR`), one of them named after the
//!   `.env`'s PORT; the harness gives each gateway its own (see `gateway_command`).

use rand::distributions::{Alphanumeric, DistString};
use rand::seq::SliceRandom;
use serde_json::Value;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The one package, pinned: the settings catalog and the renderer are written against this version.
pub const REQUIREMENT: &str = "mcp-contextforge-gateway==1.1.0";

/// The first boot migrates an empty database; on two busy cores that can take a minute.
const BOOT_DEADLINE: Duration = Duration::from_secs(120);

/// After SIGTERM the gateway gets this long to shut down before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// How many lines of the gateway's stdout and stderr a failed boot shows.
const TAIL_LINES: usize = 60;

/// The directory that holds the installed virtual environment, under the cargo target directory:
/// `CARGO_TARGET_TMPDIR` is `<target>/tmp`, the same for every test binary of the build directory.
fn venv_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().expect("CARGO_TARGET_TMPDIR has a parent directory");
    target.join("gateway-venv-1.1.0")
}

/// The Python interpreter of a virtual environment with the gateway installed, made on first use per build
/// directory and reused afterwards. Panics, saying what to install, when it cannot be made.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install).clone()
}

/// The `bin` directory of the virtual environment (its `python`, `mcpgateway`, ...).
pub fn venv_bin() -> PathBuf {
    python().parent().expect("the venv's python is in a directory").to_path_buf()
}

fn install() -> PathBuf {
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    // The marker is written only after pip succeeded, so a venv without it is half made (an interrupted or
    // failed install) and is rebuilt from scratch.
    let marker = venv.join(".cfgledger-installed");
    let parent = venv.parent().expect("the venv directory has a parent");
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    // Several test binaries run at once; one installs while the others wait on the lock and then reuse it.
    let lock_path = parent.join("gateway-venv-1.1.0.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open the lock file {}: {e}", lock_path.display()));
    // `File::lock` serializes the install across test binaries. It is stable since Rust 1.89, above the
    // workspace's rust-version (1.85) but within the toolchain the tests run on; only a test target uses it.
    #[allow(clippy::incompatible_msrv)]
    let locked = lock.lock();
    locked.unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));

    if fs::read_to_string(&marker).is_ok_and(|m| m.trim() == REQUIREMENT) && python.exists() {
        return python;
    }
    let base = find_python312();
    if venv.exists() {
        fs::remove_dir_all(&venv).unwrap_or_else(|e| panic!("remove the half-made venv {}: {e}", venv.display()));
    }
    let started = Instant::now();
    let out = Command::new(&base)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| panic!("run {} -m venv: {e}", base.display()));
    if !out.status.success() {
        panic!(
            "could not create the gateway's virtual environment with {} -m venv {} ({}):\n{}\n\
             Install Python 3.12 with its venv module (Debian: apt-get install python3.12-venv; pyenv: \
             pyenv install 3.12) or point CFGLEDGER_PYTHON312 at a working python3.12.",
            base.display(),
            venv.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // pip keeps the caller's environment: the machine's index, certificate and proxy settings live there.
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q", REQUIREMENT])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} -m pip: {e}", python.display()));
    if !out.status.success() {
        panic!(
            "pip could not install {REQUIREMENT} into {} ({}); the gateway tests need it from PyPI.\n\
             pip's stderr:\n{}\n\
             Check the network access to PyPI (and PIP_INDEX_URL / pip.conf), then run the tests again; the \
             half-made venv is rebuilt.",
            venv.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::write(&marker, format!("{REQUIREMENT}\n")).unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
    eprintln!("installed {REQUIREMENT} into {} in {:.0?}", venv.display(), started.elapsed());
    python
}

/// `$CFGLEDGER_PYTHON312` if set, else `python3.12` on PATH, else the highest `~/.pyenv/versions/3.12*`.
/// Each candidate must run and say it is 3.12: a pyenv shim on PATH exists even when pyenv would refuse to
/// run it (the global version is another one), and then the pyenv install itself is taken.
pub fn find_python312() -> PathBuf {
    if let Some(explicit) = std::env::var_os("CFGLEDGER_PYTHON312") {
        let p = PathBuf::from(explicit);
        if let Err(why) = is_python312(&p) {
            panic!("CFGLEDGER_PYTHON312={} is not a working Python 3.12: {why}", p.display());
        }
        return p;
    }
    let mut tried = Vec::new();
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|d| d.join("python3.12")).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    let mut pyenv: Vec<PathBuf> = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".pyenv").join("versions"))
        .and_then(|dir| fs::read_dir(dir).ok())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("3.12"))
                .map(|e| e.path().join("bin").join("python3.12"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    // Highest first: 3.12.10 above 3.12.9, so compare the numeric parts.
    pyenv.sort_by_key(|p| std::cmp::Reverse(version_key(p)));
    for candidate in on_path.into_iter().chain(pyenv) {
        match is_python312(&candidate) {
            Ok(()) => return candidate,
            Err(why) => tried.push(format!("  {}: {why}", candidate.display())),
        }
    }
    panic!(
        "no Python 3.12 found for the MCP Gateway tests (they install mcp-contextforge-gateway 1.1.0, which \
         needs 3.12).\nTried $CFGLEDGER_PYTHON312 (unset), python3.12 on PATH and ~/.pyenv/versions/3.12*/bin:\n{}\n\
         Install it (Debian: apt-get install python3.12 python3.12-venv; pyenv: pyenv install 3.12) or set \
         CFGLEDGER_PYTHON312 to its path.",
        if tried.is_empty() { "  nothing found".to_string() } else { tried.join("\n") }
    );
}

/// The numbers of a `.../versions/3.12.N/bin/python3.12` path's version directory.
fn version_key(python: &Path) -> Vec<u32> {
    let dir = python.ancestors().nth(2).and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned());
    dir.unwrap_or_default().split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

fn is_python312(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("exits with {}: {}", out.status, err.lines().next().unwrap_or("")));
    }
    if version != "3.12" {
        return Err(format!("is Python {version}"));
    }
    Ok(())
}

/// A running gateway, killed with its whole process group on drop.
pub struct Gateway {
    child: Child,
    port: u16,
    // Declared last so that it is removed after the process is gone.
    dir: tempfile::TempDir,
}

impl Gateway {
    /// Boots the real gateway from `env_file` alone and waits until `/health` says healthy. Panics with the
    /// tail of its output when it exits or is not healthy within two minutes.
    pub fn boot(env_file: &Path) -> Gateway {
        let bin = venv_bin();
        let dir = tempfile::tempdir().expect("a temporary directory for the gateway");
        fs::copy(env_file, dir.path().join(".env"))
            .unwrap_or_else(|e| panic!("copy {} into the gateway's directory: {e}", env_file.display()));
        let port = free_port();
        let stdout = File::create(dir.path().join("gateway.stdout")).expect("create gateway.stdout");
        let stderr = File::create(dir.path().join("gateway.stderr")).expect("create gateway.stderr");
        // `mcpgateway` is the package's console script: uvicorn with `mcpgateway.main:app`, and `--host` and
        // `--port` passed through.
        let child = gateway_command(&bin.join("mcpgateway"), dir.path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: the gateway forks helpers, and drop signals all of them at once.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.join("mcpgateway").display()));
        let mut gw = Gateway { child, port, dir };
        gw.wait_healthy();
        gw
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway's working directory (its `.env`, `mcp.db` and the captured output).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `GET path` with an optional bearer token: the status and the body as JSON (a body that is not JSON
    /// comes back as a JSON string).
    pub fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut req = agent().get(&format!("{}{path}", self.url()));
        if let Some(token) = bearer {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                let text = r.into_string().unwrap_or_else(|e| panic!("read the body of GET {path}: {e}"));
                (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
            }
            Err(e) => panic!("GET {path} on the gateway failed: {e}\n{}", self.output_tail()),
        }
    }

    /// `GET path` that must answer 200; its JSON body.
    pub fn get_ok(&self, path: &str, bearer: Option<&str>) -> Value {
        let (status, body) = self.get(path, bearer);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A CORS preflight from `origin`: the `Access-Control-Allow-Origin` the gateway answers, if any.
    pub fn preflight(&self, path: &str, origin: &str) -> Option<String> {
        let req = agent()
            .request("OPTIONS", &format!("{}{path}", self.url()))
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "GET");
        match req.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r.header("access-control-allow-origin").map(str::to_string),
            Err(e) => panic!("OPTIONS {path} on the gateway failed: {e}"),
        }
    }

    /// A token the gateway accepts for `email`, minted by its own tool
    /// (`python -m mcpgateway.utils.create_jwt_token --username EMAIL --exp 10 --secret SECRET --admin`) in the
    /// gateway's directory and environment, so it reads the same `.env` (algorithm, audience, issuer, per-
    /// environment key derivation). `--admin` makes the `teams` claim null, which the admin endpoints require;
    /// admin rights themselves come from the gateway's database (the platform admin is one), not the claim.
    pub fn token(&self, jwt_secret: &str, email: &str) -> String {
        mint_token(self.dir(), &[], jwt_secret, email)
    }

    /// `/admin/config/settings` (needs MCPGATEWAY_ADMIN_API_ENABLED=true and an admin `token`).
    pub fn config_settings(&self, token: &str) -> Value {
        self.get_ok("/admin/config/settings", Some(token))
    }

    /// One setting from `/admin/config/settings` by its lower-case field name (`app_name`, `token_expiry`,
    /// `allowed_origins`, ...), whichever group holds it; panics when no group does.
    pub fn setting(&self, token: &str, name: &str) -> Value {
        let all = self.config_settings(token);
        let groups = all["groups"].as_object().unwrap_or_else(|| panic!("no groups in {all}"));
        groups
            .values()
            .find_map(|g| g.get(name).cloned())
            .unwrap_or_else(|| panic!("no setting {name} in /admin/config/settings: {all}"))
    }

    /// `/version`'s diagnostics (admin `token`).
    pub fn version(&self, token: &str) -> Value {
        self.get_ok("/version", Some(token))
    }

    /// The last lines of the gateway's stdout and stderr, for failure messages.
    pub fn output_tail(&self) -> String {
        let mut s = String::new();
        for name in ["gateway.stdout", "gateway.stderr"] {
            let text = fs::read(self.dir().join(name)).map(|b| String::from_utf8_lossy(&b).into_owned());
            let text = text.unwrap_or_else(|e| format!("(unreadable: {e})"));
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            s.push_str(&format!("--- last {} lines of {name} ---\n{}\n", tail.len(), tail.join("\n")));
        }
        s
    }

    fn wait_healthy(&mut self) {
        let started = Instant::now();
        let health = format!("{}/health", self.url());
        let probe = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        let mut exited = None;
        let healthy = super::wait_for(BOOT_DEADLINE, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                return true;
            }
            probe
                .get(&health)
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|body| body["status"] == "healthy")
        });
        if let Some(status) = exited {
            panic!("the gateway exited ({status}) before it was healthy\n{}", self.output_tail());
        }
        if !healthy {
            panic!("the gateway was not healthy after {BOOT_DEADLINE:?}\n{}", self.output_tail());
        }
        eprintln!("gateway healthy on port {} after {:.1?}", self.port, started.elapsed());
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop_group(&mut self.child, TERM_GRACE);
    }
}

/// Stops a child started in its own process group, and everything it forked: SIGTERM to the group, up to
/// `grace` for it to end, then SIGKILL to whatever is left, and the leader reaped.
pub fn stop_group(child: &mut Child, grace: Duration) {
    let pgid = child.id();
    signal_group("TERM", pgid);
    super::wait_for(grace, || !group_alive(pgid));
    // Whatever is left, the leader or a forked helper. The leader is not reaped yet (a zombie at worst), so
    // the group id cannot have been reused by another process.
    if group_alive(pgid) {
        signal_group("KILL", pgid);
    }
    let _ = child.wait();
}

/// A command in `dir` with the environment cleared down to what the gateway needs:
/// - PATH: the venv's `bin` first (so any `python` it starts is the venv's), then the caller's PATH for the
///   system tools; no other variable was needed to boot, mint tokens or answer requests;
/// - HOME: the temporary directory, so nothing of the developer's home (config files, caches) is read;
/// - TMPDIR: the temporary directory too. The gateway keeps its locks in `tempfile.gettempdir()`: the
///   migration lock, the leader-election file `gateway_service_leader.lock` and
///   `mcpgw_plugin_primary_{PORT}.lock` (keyed by the `.env`'s PORT, not the port it listens on). Shared `/tmp`
///   would make gateways of parallel tests wait for or defer to each other, and leave the files behind.
///
/// Everything else, in particular the settings, comes from `./.env`.
fn gateway_command(program: &Path, dir: &Path) -> Command {
    let bin = program.parent().expect("a program in a directory").to_path_buf();
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&inherited)))
        .expect("PATH entries without separators");
    let mut c = Command::new(program);
    c.current_dir(dir).env_clear().env("PATH", path).env("HOME", dir).env("TMPDIR", dir);
    c
}

/// The command line that runs the gateway on `port` of the loopback interface: the venv's `mcpgateway`
/// console script with `--host` and `--port`, as `Gateway::boot` runs it. For a test that starts the gateway
/// through something else (`cfgledger agent exec -- ...`) rather than booting it here.
pub fn serve_command_line(port: u16) -> Vec<OsString> {
    let program = venv_bin().join("mcpgateway");
    vec![program.into_os_string(), "--host".into(), "127.0.0.1".into(), "--port".into(), port.to_string().into()]
}

/// The environment `gateway_command` gives a gateway working in `dir` (PATH with the venv first, HOME and
/// TMPDIR set to `dir`), as name and value pairs, for a test that starts the gateway through another
/// process, which then hands it its settings as further variables.
pub fn base_environment(dir: &Path) -> Vec<(OsString, OsString)> {
    gateway_command(&venv_bin().join("mcpgateway"), dir)
        .get_envs()
        .filter_map(|(name, value)| value.map(|v| (name.to_os_string(), v.to_os_string())))
        .collect()
}

/// A token the gateway accepts for `email`, minted by its own tool in `dir` (see `Gateway::token`), with the
/// gateway's settings taken from `./.env` of `dir` if there is one and from `settings`, which are added to
/// the process environment (the same settings a gateway that gets them from its environment runs with).
pub fn mint_token(dir: &Path, settings: &[(String, String)], jwt_secret: &str, email: &str) -> String {
    let out = gateway_command(&venv_bin().join("python"), dir)
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .args(["-m", "mcpgateway.utils.create_jwt_token", "--username", email, "--exp", "10"])
        .args(["--secret", jwt_secret, "--admin"])
        .stdin(Stdio::null())
        .output()
        .expect("run mcpgateway.utils.create_jwt_token");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_string();
    assert!(
        out.status.success() && token.split('.').count() == 3,
        "create_jwt_token failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    token
}

/// Sends `signal` (`TERM`, `KILL`) to every process of group `pgid`.
pub fn signal_process_group(signal: &str, pgid: u32) {
    signal_group(signal, pgid);
}

/// Whether any process of group `pgid` is still running (zombies do not count).
pub fn process_group_alive(pgid: u32) -> bool {
    group_alive(pgid)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).redirects(0).build()
}

/// A loopback port that was free a moment ago: bind port 0, read the port, release it.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("the listener's address").port()
}

/// `kill -SIG -- -PGID`, through the system's `kill` because the crate forbids the `unsafe` of libc::kill.
fn signal_group(signal: &str, pgid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether any process of group `pgid` is still running (zombies do not count), from `/proc/*/stat`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else { return false };
    entries.filter_map(Result::ok).any(|e| {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else { return false };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { return false };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// `len` random letters and digits: about 5.95 bits per character, far above the gateway's 3.5 floor.
pub fn secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

/// A strong password: random letters and digits plus one each of upper, lower, digit and a special character
/// that needs no quoting in a `.env` file (no `$`, which python-dotenv would expand, no `#`, no quotes).
pub fn password() -> String {
    let mut chars: Vec<char> = format!("{}Aa7-!", secret(27)).chars().collect();
    chars.shuffle(&mut rand::thread_rng());
    chars.into_iter().collect()
}
