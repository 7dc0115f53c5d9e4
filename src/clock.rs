//! The injected clock: the system clock in production, a fixed or stepping one in tests. This is the only
//! module that reads the wall clock (clippy.toml's `disallowed-methods` enforces it).

use cfgledger_events::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    // The one read of the wall clock: clippy.toml forbids `SystemTime::now` everywhere else, so that every
    // time the program records or compares comes through the injected `Clock` and tests can fix it.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or_default();
        Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }
}

/// A clock that starts at a given time and advances one microsecond per reading: deterministic in tests.
pub struct SteppingClock(AtomicI64);

impl SteppingClock {
    pub fn new(start: Timestamp) -> Self {
        SteppingClock(AtomicI64::new(start.as_micros()))
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.fetch_add(1, Ordering::Relaxed))
    }
}
