//! Child processes the harness starts (the cfgledger server, etcd): stopped with SIGTERM at the end, and
//! killed if the harness unwinds first, so no server outlives a run.

use std::path::Path;
use std::process::{ChildStdout, Command};
use std::time::{Duration, Instant};

pub struct Child {
    name: &'static str,
    inner: std::process::Child,
}

impl Child {
    pub fn spawn(name: &'static str, command: &mut Command) -> Result<Child, String> {
        let inner = command.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
        Ok(Child { name, inner })
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.inner.stdout.take()
    }

    /// Whether the process has exited, with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.inner.try_wait().ok().flatten()
    }

    /// Sends SIGTERM (through `kill`, to this child's pid only), waits up to 10 s, then kills; says which.
    pub fn terminate(mut self) -> String {
        if let Some(status) = self.exited() {
            return format!("{} had already exited ({status})", self.name);
        }
        let pid = self.inner.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().map(|s| s.success()).unwrap_or(false);
        if sent {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(status) = self.exited() {
                    return format!("{} stopped on SIGTERM ({status})", self.name);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.inner.kill();
        let _ = self.inner.wait();
        format!("{} did not stop on SIGTERM within 10 s and was killed", self.name)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

/// The last lines of a log file, for an error message.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
