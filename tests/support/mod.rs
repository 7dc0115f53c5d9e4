//! Shared helpers for the CLI integration tests (`cli_settings`, `cli_integrity`, `cli_concurrency`): a fresh
//! temporary directory per test holding one SQLite store, and a way to run the real `cfgledger` binary against
//! it with a scrubbed environment, so that neither the developer's shell nor the repository's `./.env` leaks in.

// Each test crate includes this module and uses a different subset of it.
#![allow(dead_code)]

pub mod gateway;
pub mod sql;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_cfgledger");

/// Polls `done` until it holds or `deadline` passes; whether it held. For a condition nothing announces (a
/// process's health, its exit): the poll is short, so a wait lasts about as long as the condition takes.
pub fn wait_for(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + deadline;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The actor every command runs as unless a test says otherwise.
pub const ACTOR: &str = "tester";

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics unless the command exited with `code`.
    pub fn expect_code(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The single `error: ...` line a failed command prints.
    pub fn error_line(&self) -> &str {
        self.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line in {self:?}"))
    }
}

/// A temporary directory with a store at `c.db` and an `.env` file (empty unless a test writes one).
pub struct Store {
    dir: tempfile::TempDir,
    /// Run with the built-in catalog as it ships, not the suite's fixture (`cfgledger_events::testing`).
    builtin: bool,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(".env"), "").expect("write an empty .env");
        Store { dir, builtin: false }
    }

    /// A store on the built-in catalog as it ships (MCP Gateway's and cfgledger's own namespaces), whose
    /// `.env` holds `text`.
    pub fn with_builtin_catalog(text: &str) -> Store {
        let s = Store { builtin: true, ..Store::new() };
        s.write_env(text);
        s
    }

    /// A store whose `.env` holds `text` before the first command runs.
    pub fn with_env(text: &str) -> Store {
        let s = Store::new();
        s.write_env(text);
        s
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir().join("c.db")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir().join("c.db.key")
    }

    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.db_path().display())
    }

    pub fn write_env(&self, text: &str) {
        std::fs::write(self.dir().join(".env"), text).expect("write .env");
    }

    /// The binary with a clean environment (PATH and HOME only), run in the temporary directory, on this
    /// store, with `.env` of the temporary directory and a fixed actor.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir())
            .args(["--db", &self.db_url(), "--env-file", ".env", "--actor", ACTOR]);
        if !self.builtin {
            c.env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH);
        }
        c
    }

    /// Runs `args` and returns what happened.
    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args))
    }

    /// Runs `args` and panics unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0, &args.join(" "))
    }

    /// Runs `args` and panics unless it exits 1 (rejected).
    pub fn fails(&self, args: &[&str]) -> Run {
        self.fails_with(1, args)
    }

    /// Runs `args` and panics unless it exits `code` (2 bad input, 3 unavailable, 4 integrity).
    pub fn fails_with(&self, code: i32, args: &[&str]) -> Run {
        self.run(args).expect_code(code, &args.join(" "))
    }

    /// `config set KEY VALUE`, which must succeed.
    pub fn set(&self, key: &str, value: &str) -> Run {
        self.ok(&["config", "set", key, value])
    }

    /// `config get KEY --output json`.
    pub fn get_json(&self, key: &str) -> Value {
        parse_json(&self.ok(&["config", "get", key, "--output", "json"]).stdout)
    }

    /// The whole log as `log --output json` prints it, one object per event.
    pub fn log(&self) -> Vec<Value> {
        parse_lines(&self.ok(&["log", "--output", "json"]).stdout)
    }

    /// The seq of the last event.
    pub fn head(&self) -> u64 {
        self.log().last().map_or(0, |e| e["seq"].as_u64().expect("seq is a number"))
    }

    /// Runs SQL on the store's file behind the binary's back, as the `sqlite3` shell would: the rows on
    /// stdout, and a failure as exit 1 with `Error: ...` on stderr.
    pub fn sqlite(&self, sql: &str) -> Run {
        match sql::run(&self.db_path(), Duration::from_secs(5), sql) {
            Ok(stdout) => Run { code: Some(0), stdout, stderr: String::new() },
            Err(e) => Run { code: Some(1), stdout: String::new(), stderr: format!("Error: {e}\n") },
        }
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
}

/// Runs a prepared command to completion.
pub fn run(cmd: &mut Command) -> Run {
    Run::from_output(cmd.output().expect("the cfgledger binary runs"))
}

pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// One JSON value per non-empty line.
pub fn parse_lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(parse_json).collect()
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The kinds of a log, in order.
pub fn kinds(log: &[Value]) -> Vec<&str> {
    log.iter().map(|e| e["kind"].as_str().expect("kind is a string")).collect()
}

/// The seqs of a log, in order.
pub fn seqs(log: &[Value]) -> Vec<u64> {
    log.iter().map(|e| e["seq"].as_u64().expect("seq is a number")).collect()
}
