//! cfgledger: an event-sourced configuration store. This crate is the IO edge around the pure core
//! (`cfgledger-events` decides, `cfgledger-projections` folds).
//!
//! A tour, in the order a request travels:
//! - [`cli`] parses the command line and [`api`] serves HTTP; both are thin callers.
//! - [`usecase`] holds one function per operation (set, import, rollback, ...), taking typed input and a
//!   [`WriteContext`] and returning a typed report from [`model`], the messages every client shares.
//! - [`ledger`] is the service: the group-commit writer decides each command against the current state and
//!   appends its events as one batch; the [`tailer`] folds what other processes append.
//! - [`store`] is the storage port (SQLite, PostgreSQL, memory), the only place that speaks SQL.
//! - [`live`] publishes the folded state behind an atomic pointer for lock-free reads; [`present`] is where
//!   values leave the process, with secrets masked; [`crypto`] seals them.
//! - [`error`] is the one error type with its wire codes and exit codes.

pub mod agent;
pub mod api;
pub mod auth;
pub mod catalog_file;
pub mod cli;
pub mod clock;
pub mod crypto;
pub mod datakeys;
pub mod docs;
pub mod envfile;
pub mod error;
pub mod instance;
pub mod integrity;
pub mod json;
pub mod keyring;
pub mod ledger;
pub mod live;
pub mod logging;
pub mod model;
pub mod notify;
pub mod present;
pub mod rollout_driver;
pub mod setting_keys;
pub mod store;
pub mod tailer;
pub mod ui;
pub mod usecase;

pub use error::Error;
pub use ledger::{EnvFileChoice, Ledger, OpenOptions, OpenReport, Outcome, WriteContext};
pub use live::{Settings, Snapshot};

/// A count (a seq, a lag) as a metrics gauge value. Prometheus values are f64; above 2^53 the gauge rounds,
/// which no log reaches.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn gauge(n: u64) -> f64 {
    n as f64
}
