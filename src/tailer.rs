//! The tailer: one thread per process that notices appends made by other processes and folds them in.
//! With a backend that pushes notifications (PostgreSQL `LISTEN`), it waits on them, reconnecting with
//! backoff when the channel breaks and catching up after every reconnect; otherwise it polls the store's
//! change token (SQLite `PRAGMA data_version`, about a microsecond) at the live `CONFIG_POLL_INTERVAL`.
//! Either way it catches up unconditionally every `safety_interval` in case a wake-up was missed. It never
//! skips a seq: a wake-up only tells it to read the log after its last applied seq.

use crate::ledger::Ledger;
use crate::store::ChangeWatch;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Tailer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Tailer {
    /// Starts tailing `ledger`'s store.
    pub fn spawn(ledger: Ledger, safety_interval: Duration) -> Tailer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("cfgledger-tailer".into())
            .spawn(move || run(ledger, flag, safety_interval))
            .expect("the tailer thread starts");
        Tailer { stop, handle: Some(handle) }
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn run(ledger: Ledger, stop: Arc<AtomicBool>, safety_interval: Duration) {
    match ledger.store().watch() {
        Some(first) => listen(ledger, stop, safety_interval, first),
        None => poll(ledger, stop, safety_interval),
    }
}

/// The longest one wait on notifications lasts, so that a stop request is seen promptly.
const LISTEN_SLICE: Duration = Duration::from_millis(250);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Catches up and records the outcome; true when it succeeded.
fn catch_up(ledger: &Ledger) -> bool {
    metrics::counter!("cfgledger_catchup_reads_total").increment(1);
    let before = ledger.settings().applied_seq();
    match ledger.catch_up() {
        Ok(snap) => {
            if snap.head.seq != before {
                tracing::debug!(from = before, to = snap.head.seq, "applied events written by other processes");
            }
            true
        }
        Err(e) => {
            metrics::counter!("cfgledger_reload_failures_total").increment(1);
            tracing::warn!(error = %e, "tailer could not catch up; will retry");
            false
        }
    }
}

fn listen(
    ledger: Ledger,
    stop: Arc<AtomicBool>,
    safety_interval: Duration,
    first: Result<Box<dyn ChangeWatch>, crate::store::StoreError>,
) {
    let mut watch = match first {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for changes; will retry");
            None
        }
    };
    let mut backoff = Duration::from_millis(100);
    // Anything appended before the LISTEN started is caught up at once. `pending` stays set until a
    // catch-up succeeds: a failed one is retried at every wait slice, not left for the safety poll.
    let mut pending = true;
    let mut last_full = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if pending || last_full.elapsed() >= safety_interval {
            if catch_up(&ledger) {
                pending = false;
                last_full = Instant::now();
            } else {
                pending = true;
            }
        }
        let Some(w) = watch.as_mut() else {
            std::thread::park_timeout(backoff);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match ledger.store().watch() {
                Some(Ok(w)) => {
                    metrics::counter!("cfgledger_reconnects_total", "channel" => "listen").increment(1);
                    tracing::info!("listening for changes again; catching up");
                    watch = Some(w);
                    backoff = Duration::from_millis(100);
                    // Notifications sent while away are lost: read the log instead.
                    pending = true;
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "still cannot listen for changes");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                None => return,
            }
            continue;
        };
        match w.wait(LISTEN_SLICE) {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("cfgledger_notifications_received_total", "channel" => "listen")
                    .increment(u64::try_from(n).unwrap_or(u64::MAX));
                pending = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the change notification channel broke; reconnecting");
                watch = None;
                pending = true;
            }
        }
    }
}

fn poll(ledger: Ledger, stop: Arc<AtomicBool>, safety_interval: Duration) {
    let settings = ledger.settings();
    let mut last_token = ledger.store().change_token().ok();
    let mut last_full = Instant::now();
    let mut failures: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let poll = Duration::from_millis(crate::setting_keys::CONFIG_POLL_INTERVAL.get(&settings).0);
        // Back off while the store fails, up to 32 poll intervals.
        std::thread::park_timeout(poll * (1 << failures.min(5)));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let token = ledger.store().change_token();
        let due = last_full.elapsed() >= safety_interval;
        let changed = match (&token, &last_token) {
            (Ok(now), Some(before)) => now != before,
            _ => true,
        };
        if !(changed || due) {
            continue;
        }
        let before = settings.applied_seq();
        match ledger.catch_up() {
            Ok(snap) => {
                if snap.head.seq != before {
                    tracing::debug!(from = before, to = snap.head.seq, "applied events written by other processes");
                }
                failures = 0;
                last_token = token.ok();
                last_full = Instant::now();
            }
            Err(e) => {
                failures += 1;
                metrics::counter!("cfgledger_reload_failures_total").increment(1);
                tracing::warn!(error = %e, "tailer could not catch up; will retry");
            }
        }
    }
}
