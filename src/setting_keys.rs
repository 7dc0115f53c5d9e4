//! The settings cfgledger itself reads, as typed keys of its own namespace (`cfgledger:LOG_LEVEL`, set in
//! the environment as `CFGLEDGER_LOG_LEVEL`): never the managed application's keys of the same name. A read
//! gives the value in force (log, then process environment, then the catalog default). Defaults live only in
//! the catalog, never restated at a call site; a unit test checks that every key here has a built-in
//! default of its type.

use crate::live::Settings;
use cfgledger_events::catalog::Catalog;
use serde_json::Value;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// A setting read by cfgledger, with the Rust type it is read as.
pub struct Key<T> {
    pub name: &'static str,
    _type: PhantomData<fn() -> T>,
}

/// How a setting's canonical JSON value reads as a Rust type.
pub trait Read: Sized {
    fn read(value: &Value) -> Option<Self>;
}

impl Read for bool {
    fn read(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl Read for i64 {
    fn read(value: &Value) -> Option<Self> {
        value.as_i64()
    }
}

impl Read for String {
    fn read(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

/// A duration setting, read as milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl Read for Millis {
    fn read(value: &Value) -> Option<Self> {
        value.as_str().and_then(cfgledger_events::value::parse_duration_ms).map(Millis)
    }
}

const fn key<T>(name: &'static str) -> Key<T> {
    Key { name, _type: PhantomData }
}

pub const AUTH_REQUIRED: Key<bool> = key("cfgledger:AUTH_REQUIRED");
pub const TOKEN_EXPIRY: Key<Millis> = key("cfgledger:TOKEN_EXPIRY");
pub const JWT_ALGORITHM: Key<String> = key("cfgledger:JWT_ALGORITHM");
pub const LOG_LEVEL: Key<String> = key("cfgledger:LOG_LEVEL");
pub const LOG_FORMAT: Key<String> = key("cfgledger:LOG_FORMAT");
pub const UI_ENABLED: Key<bool> = key("cfgledger:UI_ENABLED");
pub const REQUEST_SIZE_LIMIT: Key<i64> = key("cfgledger:REQUEST_SIZE_LIMIT");
pub const CONFIG_POLL_INTERVAL: Key<Millis> = key("cfgledger:CONFIG_POLL_INTERVAL");
pub const SNAPSHOT_INTERVAL: Key<i64> = key("cfgledger:SNAPSHOT_INTERVAL");
pub const CONFIG_WRITE_RATE_LIMIT: Key<i64> = key("cfgledger:CONFIG_WRITE_RATE_LIMIT");
pub const INTEGRITY_CHECK_RATE: Key<i64> = key("cfgledger:INTEGRITY_CHECK_RATE");
pub const INTEGRITY_CHECK_PAUSE: Key<Millis> = key("cfgledger:INTEGRITY_CHECK_PAUSE");
pub const READY_MAX_LAG: Key<i64> = key("cfgledger:READY_MAX_LAG");
pub const READY_MAX_LAG_TIME: Key<Millis> = key("cfgledger:READY_MAX_LAG_TIME");
pub const READY_MIN_FREE_SPACE: Key<i64> = key("cfgledger:READY_MIN_FREE_SPACE");
pub const SCHEDULE_LATE_AFTER: Key<Millis> = key("cfgledger:SCHEDULE_LATE_AFTER");
/// cfgledger's own admin API signing key (sensitive: read through the ledger's `reveal`).
pub const JWT_SECRET_KEY: &str = "cfgledger:JWT_SECRET_KEY";

fn builtin() -> &'static Catalog {
    static BUILTIN: OnceLock<Catalog> = OnceLock::new();
    BUILTIN.get_or_init(cfgledger_events::builtin::builtin)
}

impl<T: Read> Key<T> {
    /// The value in force, else the built-in catalog's default.
    pub fn get(&self, settings: &Settings) -> T {
        settings.with(self.name, T::read).flatten().unwrap_or_else(|| self.builtin_default())
    }

    /// The built-in default. Invariant: every key here has one of its type (`every_key_has_a_builtin_default`).
    fn builtin_default(&self) -> T {
        #[allow(clippy::expect_used)]
        builtin()
            .get(self.name)
            .and_then(|spec| spec.default.as_ref())
            .and_then(T::read)
            .expect("every key cfgledger reads has a built-in default of its type")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_builtin_default() {
        assert!(AUTH_REQUIRED.builtin_default());
        assert_eq!(TOKEN_EXPIRY.builtin_default(), Millis(7 * 86_400_000));
        assert!(!JWT_ALGORITHM.builtin_default().is_empty());
        assert!(!LOG_LEVEL.builtin_default().is_empty());
        assert!(!LOG_FORMAT.builtin_default().is_empty());
        assert!(REQUEST_SIZE_LIMIT.builtin_default() > 0);
        assert!(CONFIG_POLL_INTERVAL.builtin_default().0 > 0);
        assert!(SNAPSHOT_INTERVAL.builtin_default() > 0);
        assert!(CONFIG_WRITE_RATE_LIMIT.builtin_default() > 0);
        assert_eq!(INTEGRITY_CHECK_RATE.builtin_default(), 20_000);
        assert_eq!(INTEGRITY_CHECK_PAUSE.builtin_default(), Millis(60_000));
        assert_eq!(READY_MAX_LAG.builtin_default(), 1000);
        assert_eq!(READY_MAX_LAG_TIME.builtin_default(), Millis(5_000));
        assert_eq!(READY_MIN_FREE_SPACE.builtin_default(), 64);
        assert_eq!(SCHEDULE_LATE_AFTER.builtin_default(), Millis(60_000));
        assert!(builtin().get(JWT_SECRET_KEY).is_some_and(|s| s.sensitive && s.namespace == "cfgledger"));
    }
}
