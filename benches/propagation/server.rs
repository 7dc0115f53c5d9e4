//! The cfgledger side of the propagation bench: a store prepared with the CLI (write rate limit at its
//! maximum, `LOG_LEVEL=warn` so requests are not logged, optionally `CONFIG_POLL_INTERVAL`), a token, and
//! `cfgledger serve --listen 127.0.0.1:0` instances on it as child processes. Every process gets the same
//! `AUTH_ENCRYPTION_SECRET` and `JWT_SECRET_KEY`, so a token issued once is valid on every instance. A server
//! is stopped with SIGTERM (sent with `kill` to its own pid) and killed if the bench unwinds first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "propagation-bench-secret-0123456789";
const JWT_KEY: &str = "propagation-bench-jwt-key-0123456789abcdef";

/// A store (`--db` URL) and the directory every process runs in (it holds no `.env`, and the servers' logs).
pub struct Store {
    bin: PathBuf,
    db: String,
    dir: PathBuf,
}

impl Store {
    pub fn new(bin: &Path, db: String, dir: &Path) -> Store {
        Store { bin: bin.to_path_buf(), db, dir: dir.to_path_buf() }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--db")
            .arg(&self.db)
            .current_dir(&self.dir)
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", SECRET)
            .env("CFGLEDGER_JWT_SECRET_KEY", JWT_KEY)
            .env_remove("CFGLEDGER_DB")
            .env_remove("CFGLEDGER_CATALOG")
            .env_remove("CFGLEDGER_LISTEN")
            .env_remove("CFGLEDGER_NOTIFY")
            .env_remove("CFGLEDGER_AUTH_REQUIRED")
            .stdin(Stdio::null());
        command
    }

    /// Runs one CLI command to completion and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
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

    /// Sets what every run needs, and the poll interval when one is given.
    pub fn prepare(&self, poll: Option<&str>) -> Result<(), String> {
        self.cli(&["config", "set", "cfgledger:CONFIG_WRITE_RATE_LIMIT", "1000000", "--reason", "propagation bench"])?;
        self.cli(&["config", "set", "cfgledger:LOG_LEVEL", "warn", "--reason", "propagation bench: no request logs"])?;
        if let Some(poll) = poll {
            self.cli(&["config", "set", "cfgledger:CONFIG_POLL_INTERVAL", poll, "--reason", "propagation bench"])?;
        }
        Ok(())
    }

    pub fn token(&self) -> Result<String, String> {
        let token = self.cli(&["token", "issue", "--sub", "bench", "--role", "platform_admin", "--ttl", "1h"])?;
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(format!("`cfgledger token issue` printed something other than one token: {token:?}"));
        }
        Ok(token)
    }

    /// Starts `serve` on a free loopback port and waits for it to print its address.
    pub fn serve(&self, name: &'static str) -> Result<Server, String> {
        let log = self.dir.join(format!("serve-{name}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut command = self.command();
        command.args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(log_file);
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut server = Server { name, child: Some(child), addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
        server.addr = crate::common::serve::listen_address(stdout).map_err(|line| match line {
            None => format!("instance {name} did not print its address; its log ends with:\n{}", tail(&log)),
            Some(line) => format!("unexpected first line from instance {name}: {line:?}"),
        })?;
        Ok(server)
    }
}

/// A running `cfgledger serve`.
pub struct Server {
    name: &'static str,
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Server {
    /// The server's process id, while it runs.
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM, waits up to 10 s, then kills; says which.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else { return format!("instance {} was not running", self.name) };
        if let Ok(Some(status)) = child.try_wait() {
            return format!("instance {} had already exited ({status})", self.name);
        }
        let pid = child.id().to_string();
        if Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    return format!("instance {} stopped on SIGTERM ({status})", self.name);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        format!("instance {} did not stop on SIGTERM within 10 s and was killed", self.name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last lines of a log file, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
