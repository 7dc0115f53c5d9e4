//! Follow one namespace of a cfgledger store from an application.
//!
//! A [`Client`] renders the namespace once, then tails the server's watch stream (resuming with
//! `Last-Event-ID`, so nothing is missed or seen twice) and renders again when a setting of the namespace
//! changes. Readers take the current [`Snapshot`] without a lock; callbacks hear of each change. The newest
//! configuration is kept in a sealed last-known-good cache, so that an application starts while the server
//! is unreachable, and the follower never gives up: it retries with backoff, says how stale it is, and
//! catches up when the server returns. It reports what it applied to the server in a heartbeat, which
//! `GET /admin/instances` lists beside the servers.
//!
//! ```no_run
//! let client = cfgledger_client::Client::builder("http://127.0.0.1:8080", "mcpgateway")
//!     .token_env("CFGLEDGER_TOKEN")
//!     .cache("/var/lib/app/cfgledger-cache.json")
//!     .start()?;
//! let level = client.snapshot().str("LOG_LEVEL").unwrap_or("INFO").to_string();
//! client.on_change(|change| println!("seq {}: {:?} changed", change.current.seq, change.keys));
//! # Ok::<(), cfgledger_client::StartError>(())
//! ```
//!
//! The follower runs on its own threads with blocking HTTP: an application needs no async runtime.

pub mod cache;
mod clock;
pub mod files;
mod follow;
pub mod snapshot;
pub mod sse;
pub mod tls;
pub mod wire;

pub use follow::{Change, Client, Status};
pub use snapshot::{Origin, Snapshot, TypeMismatch};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where the bearer token comes from. Never a command line: a token there is visible to every user of the
/// machine. It is read again at every connection, so a rotated file is picked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token (a server with `AUTH_REQUIRED=false`).
    None,
    /// An environment variable.
    Env(String),
    /// A file holding the token (surrounding white space is ignored).
    File(PathBuf),
}

impl TokenSource {
    /// The token now, or why there is none.
    pub fn read(&self) -> Result<Option<String>, String> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Env(name) => match std::env::var(name) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
                _ => Err(format!("the token variable {name} is not set")),
            },
            TokenSource::File(path) => match std::fs::read_to_string(path) {
                Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
                Ok(_) => Err(format!("the token file {} is empty", path.display())),
                Err(e) => Err(format!("cannot read the token file {}: {e}", path.display())),
            },
        }
    }
}

/// How a client follows; built with [`Client::builder`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's base URL (`http://host:port`).
    pub server: String,
    pub namespace: String,
    pub token: TokenSource,
    /// The last-known-good cache file; none when `None`.
    pub cache: Option<PathBuf>,
    /// The cache's key file (default: the cache's path with `.key` appended); `CFGLEDGER_CACHE_KEY` wins.
    pub cache_key_file: Option<PathBuf>,
    /// Render sensitive keys in plaintext (each such render is recorded in the store's audit trail). Needs a
    /// `config_reader` or `platform_admin` token.
    pub include_secrets: bool,
    /// Also receive keys at their catalog default.
    pub include_defaults: bool,
    /// Labels reported in heartbeats (`role=canary`).
    pub labels: BTreeMap<String, String>,
    /// `client` or `agent`, as heartbeats name it.
    pub kind: String,
    /// The id heartbeats report; a random one when `None`.
    pub instance_id: Option<String>,
    /// How often to send a heartbeat; `None` sends none.
    pub heartbeat: Option<Duration>,
    /// Refuse to start from the cache: without the server, [`Client::start`] fails.
    pub require_fresh: bool,
    /// The first retry's delay; it doubles up to `backoff_max`, with jitter.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A stream silent for longer is taken for dead (the server sends keep-alives every 15 s by default).
    pub read_timeout: Duration,
    /// How long a render may take.
    pub request_timeout: Duration,
    /// Recorded with each render that includes secrets.
    pub reason: Option<String>,
    /// A PEM file of CA certificates trusted beside the system's, for an `https://` server whose
    /// certificate a private CA signed.
    pub ca_file: Option<PathBuf>,
}

/// Builds [`Options`] and starts a [`Client`].
#[derive(Debug, Clone)]
pub struct Builder {
    options: Options,
}

impl Builder {
    pub fn token_env(mut self, name: &str) -> Self {
        self.options.token = TokenSource::Env(name.to_string());
        self
    }

    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.token = TokenSource::File(path.into());
        self
    }

    pub fn token(mut self, source: TokenSource) -> Self {
        self.options.token = source;
        self
    }

    pub fn cache(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.cache = Some(path.into());
        self
    }

    pub fn cache_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.cache_key_file = Some(path.into());
        self
    }

    pub fn include_secrets(mut self, yes: bool) -> Self {
        self.options.include_secrets = yes;
        self
    }

    pub fn include_defaults(mut self, yes: bool) -> Self {
        self.options.include_defaults = yes;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.options.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn instance_id(mut self, id: &str) -> Self {
        self.options.instance_id = Some(id.to_string());
        self
    }

    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.options.heartbeat = every;
        self
    }

    pub fn require_fresh(mut self, yes: bool) -> Self {
        self.options.require_fresh = yes;
        self
    }

    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.options.backoff_min = min;
        self.options.backoff_max = max.max(min);
        self
    }

    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.options.read_timeout = timeout;
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.options.reason = Some(reason.to_string());
        self
    }

    /// Trusts the CA certificates of this PEM file beside the system's (an `https://` server signed by a
    /// private CA).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.ca_file = Some(path.into());
        self
    }

    pub fn options(self) -> Options {
        self.options
    }

    /// Renders the namespace (or opens the cache when the server cannot be reached) and starts following.
    pub fn start(self) -> Result<Client, StartError> {
        Client::start(self.options)
    }
}

impl Options {
    /// What this follower asks the server for, as its cache records it: a cache is read only by a follower
    /// that asks for the same (one without secrets never starts from one with them, nor the reverse).
    pub fn profile(&self) -> String {
        format!("secrets={} defaults={}", self.include_secrets, self.include_defaults)
    }

    pub fn new(server: &str, namespace: &str) -> Options {
        Options {
            server: server.trim_end_matches('/').to_string(),
            namespace: namespace.to_string(),
            token: TokenSource::None,
            cache: None,
            cache_key_file: None,
            include_secrets: false,
            include_defaults: false,
            labels: BTreeMap::new(),
            kind: "client".to_string(),
            instance_id: None,
            heartbeat: Some(Duration::from_secs(3)),
            require_fresh: false,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            read_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(30),
            reason: None,
            ca_file: None,
        }
    }
}

/// Why a client did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// The server refused the request for a reason retrying will not fix (an unknown namespace, a role
    /// that may not read secrets).
    Refused(String),
    /// The server could not be reached and there is no cache to start from (or `require_fresh` is set).
    Unavailable(String),
    /// The cache or its key could not be used.
    Cache(String),
    /// The options cannot work, whatever the server does (an unreadable CA file).
    Config(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Refused(m) | StartError::Unavailable(m) | StartError::Cache(m) | StartError::Config(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for StartError {}
