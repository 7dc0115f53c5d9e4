//! The library's error type. Domain rejections (the user's input or the state forbids the change) are kept
//! apart from infrastructure failures (the database, the disk, a broken chain), because they map to
//! different exit codes and HTTP statuses.

use crate::crypto::CryptoError;
use crate::envfile::EnvFileError;
use crate::store::StoreError;
use cfgledger_events::catalog::CatalogError;
use cfgledger_events::{ChainError, Rejection};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `decide` refused the command; nothing but an audit record (for locked keys) was appended.
    #[error("{0}")]
    Rejected(Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log does not verify: an event was altered or is missing.
    #[error("the event log is broken at {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    EnvFile(#[from] EnvFileError),
    #[error("catalog {path}: {message}")]
    Catalog { path: String, message: String },
    /// The encryption secret is missing or does not match the store.
    #[error("{0}")]
    Secret(String),
    /// Other writers kept moving the head; the change was not applied.
    #[error("the change was not applied: the log kept changing under it after {0} attempts; retry")]
    Contention(usize),
    /// An operating failure outside the store: a socket, standard output, the async runtime.
    #[error("{0}")]
    Io(String),
    /// Standard output was closed by the reader (`| head`): not a failure.
    #[error("standard output closed")]
    BrokenPipe,
    /// The ledger's writer has stopped (the process is shutting down).
    #[error("the ledger is shutting down")]
    Closed,
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        Error::Catalog { path: "built-in".into(), message: e.to_string() }
    }
}

impl Error {
    /// True when the user's input or the state refused the change (as opposed to an operating failure).
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }
}
