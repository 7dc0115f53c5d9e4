//! The storage port: the one narrow interface through which the event log is read and appended, with its
//! adapters (SQLite, in-memory). Only this module speaks SQL. Every adapter passes the same conformance
//! suite (`tests/store_conformance.rs`).

pub mod memory;
pub mod sqlite;

use cfgledger_events::{Head, Record};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The head moved since the caller read it: re-read, re-decide, retry.
    #[error("the log head moved: expected seq {} but it is at seq {}", expected.seq, actual.seq)]
    Conflict { expected: Head, actual: Head },
    /// The database cannot be reached or refused the operation; retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database holds something the log contract forbids (a malformed row).
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The URL names no backend this build has.
    #[error("{0}")]
    Url(String),
}

/// The event log as a storage backend offers it.
pub trait EventStore: Send + Sync {
    /// The last seq and its hash.
    fn head(&self) -> Result<Head, StoreError>;

    /// Appends `records` in one transaction if the head is still `expected`: all or nothing, durable when
    /// it returns. The records must continue the chain from `expected`.
    fn append(&self, expected: Head, records: &[Record]) -> Result<Head, StoreError>;

    /// Up to `limit` records with seq greater than `after`, in seq order.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// A cheap number that changes when another connection or process may have appended (SQLite's
    /// `PRAGMA data_version`). Adapters that cannot tell return a constant and rely on other wake-ups.
    fn change_token(&self) -> Result<u64, StoreError>;

    /// What the store is, for messages: `sqlite:///path`, `memory`.
    fn describe(&self) -> String;
}

/// A parsed `--db` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Memory,
}

impl StoreUrl {
    /// Accepts `sqlite://PATH` (relative or absolute: `sqlite://./a.db`, `sqlite:///var/a.db`), a bare path,
    /// and `memory:`.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        if url == "memory:" || url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StoreError::Url(format!("database URL {url:?} names no file: use sqlite://PATH")));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(StoreError::Url(format!(
                "database URL {url:?}: the PostgreSQL backend is not available in this build yet"
            )));
        }
        if url.contains("://") {
            return Err(StoreError::Url(format!(
                "database URL {url:?} has an unknown scheme: use sqlite://PATH or memory:"
            )));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(url)))
    }

    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            StoreUrl::Sqlite(p) => Some(p),
            StoreUrl::Memory => None,
        }
    }
}

/// Opens the store a URL names, applying migrations.
pub fn open(url: &StoreUrl) -> Result<Arc<dyn EventStore>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path)?)),
        StoreUrl::Memory => Ok(Arc::new(memory::MemoryStore::new())),
    }
}

/// Refuses records that do not continue the chain from `head`: consecutive seqs, linked hashes, and each
/// hash recomputed from its envelope. The adapters call it inside their append, so that no caller can write
/// a gap, a broken link or a record that would fail verification.
pub(crate) fn check_continues(head: Head, records: &[Record]) -> Result<(), StoreError> {
    let mut prev = head;
    for r in records {
        if r.seq != prev.seq + 1 || r.prev_hash != prev.hash {
            return Err(StoreError::Corrupt(format!(
                "append refused: record seq {} does not continue the log at seq {}",
                r.seq, prev.seq
            )));
        }
        if cfgledger_events::Hash::link(&r.prev_hash, &r.envelope) != r.hash {
            return Err(StoreError::Corrupt(format!(
                "append refused: record seq {} has a hash that is not its own",
                r.seq
            )));
        }
        prev = Head { seq: r.seq, hash: r.hash };
    }
    Ok(())
}
