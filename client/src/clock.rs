//! The client's one reading of the wall clock (the workspace's lint allows it only in such a module):
//! staleness and the cache's `written_at` are about real time on the application's machine.

use std::time::{Duration, SystemTime};

#[allow(clippy::disallowed_methods)]
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// The time since `t` (zero if `t` is in the future).
pub fn since(t: SystemTime) -> Duration {
    now().duration_since(t).unwrap_or_default()
}

/// Now as RFC 3339.
pub fn now_rfc3339() -> String {
    let us = now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    cfgledger_events::Timestamp::from_micros(i64::try_from(us).unwrap_or(i64::MAX)).to_string()
}
