//! cfgledger: an event-sourced configuration store. This crate holds the IO edge around the pure core
//! (`cfgledger-events`, `cfgledger-projections`): storage adapters, encryption, `.env` reading, the
//! ledger service with its group-commit writer and tailer, and the CLI.

pub mod api;
pub mod auth;
pub mod catalog_file;
pub mod cli;
pub mod clock;
pub mod clone;
pub mod crypto;
pub mod docs;
pub mod envfile;
pub mod error;
pub mod instance;
pub mod ledger;
pub mod live;
pub mod logging;
pub mod model;
pub mod notify;
pub mod present;
pub mod registry;
pub mod store;
pub mod tailer;
pub mod timetravel;
pub mod transfer;
pub mod verify;

pub use error::Error;
pub use ledger::{EnvFileChoice, Ledger, OpenOptions, OpenReport, Outcome, WriteContext};
pub use live::{Settings, Snapshot};
