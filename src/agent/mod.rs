//! `cfgledger agent`: an application's side of the store. `exec` runs the application with its settings
//! as environment and restarts or signals it when they change; `render` keeps a file in the application's
//! own form, checked before it replaces the old one. Both follow through `cfgledger_client` (the watch
//! stream, the sealed last-known-good cache, the fail-open policy and the heartbeats), so an agent behaves
//! exactly as a linked client does, and neither ever exits because the server is down.

pub mod exec;
pub mod render;

use crate::error::{Error, ErrorCode};
use cfgledger_client::StartError;

/// A client that did not start, as the CLI's error: refused (exit 1), unavailable (exit 3), a cache that
/// cannot be used (exit 4), or options that cannot work (exit 2).
pub fn start_error(e: StartError) -> Error {
    let (code, message) = match e {
        StartError::Refused(m) => (ErrorCode::Forbidden, m),
        StartError::Unavailable(m) => (ErrorCode::Unavailable, m),
        StartError::Cache(m) => (ErrorCode::Integrity, m),
        StartError::Config(m) => return Error::input(m),
    };
    Error::Coded { code, message, details: serde_json::Value::Null }
}

/// Says on stderr where the configuration came from, once at start.
pub fn announce(client: &cfgledger_client::Client, what: &str) {
    let snap = client.snapshot();
    let status = client.status();
    match snap.origin {
        cfgledger_client::Origin::Server => {
            tracing::info!(namespace = %snap.namespace, seq = snap.seq, keys = snap.values.len(), "{what} with the server's configuration");
        }
        cfgledger_client::Origin::Cache => {
            eprintln!(
                "cfgledger agent: the configuration could not be fetched from the server ({}); {what} with the last-known-good cache of {} at seq {}",
                status.error.as_deref().unwrap_or("unknown error"),
                snap.namespace,
                snap.seq
            );
        }
    }
}
