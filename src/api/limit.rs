//! Per-principal rate limiting of writes (governor's keyed GCRA limiter): `CONFIG_WRITE_RATE_LIMIT`
//! writes per minute per token subject, with a burst of the same size. The setting is hot: when it
//! changes, the next write builds a limiter with the new quota (counts start afresh).

use super::ApiError;
use crate::live::Settings;
use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;

const DEFAULT_PER_MINUTE: u32 = 600;

struct Current {
    per_minute: u32,
    limiter: DefaultKeyedRateLimiter<String>,
}

pub struct WriteLimiter {
    current: ArcSwap<Current>,
    /// The hot setting that holds the quota, or `None` for a fixed one.
    setting: Option<&'static str>,
    default_per_minute: u32,
    /// What is counted, for the 429 message.
    what: &'static str,
}

impl Default for WriteLimiter {
    fn default() -> Self {
        WriteLimiter::new()
    }
}

impl WriteLimiter {
    /// Writes per principal, `CONFIG_WRITE_RATE_LIMIT` per minute.
    pub fn new() -> WriteLimiter {
        WriteLimiter {
            current: ArcSwap::from_pointee(build(DEFAULT_PER_MINUTE)),
            setting: Some(crate::setting_keys::CONFIG_WRITE_RATE_LIMIT.name),
            default_per_minute: DEFAULT_PER_MINUTE,
            what: "writes",
        }
    }

    /// A fixed quota per key (login attempts).
    pub fn fixed(per_minute: u32, what: &'static str) -> WriteLimiter {
        WriteLimiter {
            current: ArcSwap::from_pointee(build(per_minute)),
            setting: None,
            default_per_minute: per_minute,
            what,
        }
    }

    /// Counts one event for `principal`; 429 with `Retry-After` when it is over the limit.
    pub fn check(&self, principal: &str, settings: &Settings) -> Result<(), ApiError> {
        let wanted = self
            .setting
            .and_then(|key| settings.get_i64(key))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(self.default_per_minute);
        let mut current = self.current.load_full();
        if current.per_minute != wanted {
            self.current.store(Arc::new(build(wanted)));
            current = self.current.load_full();
        }
        // Keep the key map from growing without bound under many principals.
        if current.limiter.len() > 10_000 {
            current.limiter.retain_recent();
        }
        match current.limiter.check_key(&principal.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                metrics::counter!("cfgledger_rate_limited_total").increment(1);
                let mut e = ApiError::new(
                    crate::error::ErrorCode::RateLimited,
                    match self.setting {
                        Some(key) => {
                            format!("{principal} exceeded {key} ({wanted} {} per minute); retry in {secs}s", self.what)
                        }
                        None => format!("too many {} ({wanted} per minute); retry in {secs}s", self.what),
                    },
                );
                e.retry_after = Some(secs.max(1));
                Err(e)
            }
        }
    }
}

fn build(per_minute: u32) -> Current {
    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    Current { per_minute, limiter: RateLimiter::keyed(Quota::per_minute(n)) }
}
