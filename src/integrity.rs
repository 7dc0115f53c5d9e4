//! Integrity while serving. A server does not trust the log because it opened: at start, and then again and
//! again in the background at the pace `INTEGRITY_CHECK_RATE` allows, it walks the whole chain from the
//! first event (each hash recomputed from the stored bytes, each link, each envelope decoded and compared
//! with its index columns, every checkpoint compared with the replay, and the head this instance applied
//! still in the log). [`Integrity`] is what the walk found, shared by the writer (which refuses to append
//! onto a damaged log, and waits for the first pass), the time-travel reads (which refuse an answer that
//! would include the damage), `/ready`, `/admin/verify` and the metrics.

use crate::error::{Error, ErrorCode};
use crate::ledger::Ledger;
use crate::model::{BadSnapshot, IntegrityStatus};
use crate::setting_keys;
use cfgledger_events::ChainError;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const OFF: u8 = 0;
const VERIFYING: u8 = 1;
const VERIFIED: u8 = 2;
const DAMAGED: u8 = 3;

/// How long a write waits for the first pass before it is refused as unavailable.
const FIRST_PASS_WAIT: Duration = Duration::from_secs(30);

/// What the integrity check has found, shared by every part of a process. Damage is sticky: once found, the
/// process refuses writes until it is restarted on a recovered store (docs/recovery.md).
#[derive(Debug, Default)]
pub struct Integrity {
    state: AtomicU8,
    status: Mutex<IntegrityStatus>,
    /// Signalled when the first pass ends (either way).
    settled: Condvar,
}

impl Integrity {
    /// A process that runs no check (the CLI on its own store): nothing is gated.
    pub fn new() -> Integrity {
        let integrity = Integrity::default();
        integrity.with(|s| s.state = "off".into());
        integrity
    }

    fn with<T>(&self, f: impl FnOnce(&mut IntegrityStatus) -> T) -> T {
        let mut guard = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// What has been found so far.
    pub fn status(&self) -> IntegrityStatus {
        self.with(|s| s.clone())
    }

    /// The first bad seq and what is wrong there, once damage was found.
    pub fn damage(&self) -> Option<ChainError> {
        if self.state.load(Ordering::Acquire) != DAMAGED {
            return None;
        }
        self.with(|s| Some(ChainError { seq: s.first_bad_seq?, reason: s.damage.clone()? }))
    }

    /// The first pass starts: writes wait for it.
    fn begin(&self) {
        if self.state.compare_exchange(OFF, VERIFYING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.with(|s| s.state = "verifying".into());
        }
    }

    fn progress(&self, seq: u64) {
        self.with(|s| s.verified_seq = seq);
        metrics::gauge!("cfgledger_integrity_verified_seq").set(crate::gauge(seq));
    }

    /// A pass reached the head without finding a broken link.
    fn pass_done(&self, head: u64, bad: Vec<BadSnapshot>, at: String, took: Duration) {
        let newly_bad: Vec<BadSnapshot> = self.with(|s| {
            let new = bad.iter().filter(|b| !s.bad_checkpoints.contains(b)).cloned().collect();
            s.passes += 1;
            s.verified_seq = head;
            s.last_pass_at = Some(at);
            s.last_pass_head = Some(head);
            s.last_pass_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
            s.bad_checkpoints = bad;
            new
        });
        for b in &newly_bad {
            tracing::error!(seq = b.seq, problem = %b.problem, "a checkpoint does not match the log; it is not used (drop it with `cfgledger verify --drop-bad-snapshots`)");
        }
        let bad_count = self.with(|s| s.bad_checkpoints.len());
        metrics::gauge!("cfgledger_integrity_bad_checkpoints").set(crate::gauge(bad_count as u64));
        metrics::counter!("cfgledger_integrity_passes_total").increment(1);
        self.with(|s| {
            if self.state.compare_exchange(VERIFYING, VERIFIED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                s.state = "verified".into();
                self.settled.notify_all();
            }
        });
    }

    /// Records damage at `err.seq` (the first one found is kept), logs it and raises the metric. Called by
    /// the background check, and by any read that meets a record that does not verify.
    pub fn damaged(&self, err: &ChainError, at: String) {
        // The state changes under the lock a waiting writer holds between its checks, so none misses the wake-up.
        let first = self.with(|s| {
            self.state.store(DAMAGED, Ordering::Release);
            self.settled.notify_all();
            if s.first_bad_seq.is_some_and(|seq| seq <= err.seq) {
                return false;
            }
            s.state = "damaged".into();
            s.first_bad_seq = Some(err.seq);
            s.damage = Some(err.reason.clone());
            s.damaged_at = Some(at);
            true
        });
        if first {
            tracing::error!(seq = err.seq, reason = %err.reason, "the event log is damaged: writes are refused, and answers that include seq {} fail; see docs/recovery.md", err.seq);
            metrics::gauge!("cfgledger_integrity_damaged").set(1.0);
            metrics::gauge!("cfgledger_integrity_first_bad_seq").set(crate::gauge(err.seq));
        }
    }

    /// Records the damage an error names, if it names any, and answers with the first damage known: a read
    /// that meets a record after the first bad one names the first.
    pub fn note(&self, e: Error, at: impl FnOnce() -> String) -> Error {
        let Error::Chain(c) = &e else {
            return e;
        };
        self.damaged(c, at());
        match self.damage() {
            Some(first) if first.seq < c.seq => Error::Chain(first),
            _ => e,
        }
    }

    /// Waits up to `timeout` for the first pass to end; true when it has (or none runs).
    pub fn wait_first_pass(&self, timeout: Duration) -> bool {
        if self.state.load(Ordering::Acquire) == VERIFYING {
            let guard = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (guard, _) = self
                .settled
                .wait_timeout_while(guard, timeout, |_| self.state.load(Ordering::Acquire) == VERIFYING)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            drop(guard);
        }
        self.state.load(Ordering::Acquire) != VERIFYING
    }

    /// Whether a write may be appended: refused on a damaged log, held while the first pass runs.
    pub fn write_gate(&self) -> Result<(), Error> {
        self.wait_first_pass(FIRST_PASS_WAIT);
        match self.state.load(Ordering::Acquire) {
            VERIFYING => Err(Error::Coded {
                code: ErrorCode::Unavailable,
                message: format!(
                    "writes wait for the integrity check of the log, which has verified up to seq {}; retry shortly",
                    self.with(|s| s.verified_seq)
                ),
                details: serde_json::Value::Null,
            }),
            DAMAGED => Err(self.refusal("writes are refused")),
            _ => Ok(()),
        }
    }

    /// Fails when an answer built from seqs `low..=high` would include the damage or anything after it: the
    /// check stops at the first break, so nothing after it is verified (a second deleted row or edited key
    /// column above it would leave a page short without a record that fails). `low` is kept for the callers'
    /// sake: a range wholly below the damage is answered.
    pub fn check_range(&self, low: u64, high: u64) -> Result<(), Error> {
        match self.damage() {
            Some(d) if d.seq <= high && low <= high => {
                Err(self.refusal("this answer would include it or what follows it"))
            }
            _ => Ok(()),
        }
    }

    fn refusal(&self, what: &str) -> Error {
        match self.damage() {
            Some(d) => Error::Chain(ChainError {
                seq: d.seq,
                reason: format!("{}; {what} until the store is recovered (docs/recovery.md)", d.reason),
            }),
            None => Error::Integrity(format!("the log is damaged; {what}")),
        }
    }
}

/// The background check of one server, stopped when dropped.
pub struct Checker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Checker {
    /// Starts checking `ledger`'s log: the first pass at once and at full speed (writes wait for it), then
    /// passes at the live `INTEGRITY_CHECK_RATE`, `INTEGRITY_CHECK_PAUSE` apart.
    pub fn spawn(ledger: Ledger) -> Result<Checker, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        ledger.integrity().begin();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("cfgledger-integrity".into())
            .spawn(move || run(&ledger, &flag))
            .map_err(|e| Error::io("cannot start the integrity check's thread", e))?;
        Ok(Checker { stop, handle: Some(handle) })
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn run(ledger: &Ledger, stop: &AtomicBool) {
    let integrity = ledger.integrity().clone();
    // Only a process's first pass runs at full speed (writes wait for it).
    let mut first = integrity.status().passes == 0;
    while !stop.load(Ordering::Relaxed) && integrity.damage().is_none() {
        let rate = if first { 0 } else { setting_keys::INTEGRITY_CHECK_RATE.get(&ledger.settings()) };
        if !first && rate == 0 {
            // Background passes are off; look again later.
            park(stop, Duration::from_secs(1));
            continue;
        }
        match pass(ledger, &integrity, stop, u64::try_from(rate).unwrap_or(0)) {
            Ok(()) => first = false,
            Err(Error::Store(e)) => {
                // The store cannot be read now (PostgreSQL down): not damage. Try again after a pause.
                tracing::warn!(error = %e, "the integrity check cannot read the log; will retry");
                park(stop, Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                tracing::error!(error = %crate::error::report(&e), "the integrity check failed");
                park(stop, Duration::from_secs(1));
                continue;
            }
        }
        let pause = setting_keys::INTEGRITY_CHECK_PAUSE.get(&ledger.settings());
        park(stop, Duration::from_millis(pause.0));
    }
}

/// Sleeps up to `d`, waking early when asked to stop.
fn park(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(250)));
    }
}

/// One pass over the whole log at `rate` events per second (0: as fast as it goes). Damage is recorded, not
/// returned; an error means the pass could not be made.
fn pass(ledger: &Ledger, integrity: &Integrity, stop: &AtomicBool, rate: u64) -> Result<(), Error> {
    let started = Instant::now();
    // The head this instance has applied must still be in the log, with the same hash.
    let anchor = ledger.snapshot().head;
    let mut pace = |seq: u64| {
        integrity.progress(seq);
        if rate > 0 {
            let due = Duration::from_secs_f64(crate::gauge(seq) / crate::gauge(rate));
            let ahead = due.saturating_sub(started.elapsed());
            park(stop, ahead);
        }
        !stop.load(Ordering::Relaxed)
    };
    let anchor = (anchor.seq > 0).then_some(anchor);
    match crate::usecase::verify::verify_paced(ledger.store().as_ref(), anchor, &mut pace) {
        Ok(Some(report)) => {
            let bad = report.snapshots_bad.into_iter().map(|(seq, problem)| BadSnapshot { seq, problem }).collect();
            integrity.pass_done(report.head.seq, bad, ledger.now().to_string(), started.elapsed());
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(Error::Chain(c)) => {
            integrity.damaged(&c, ledger.now().to_string());
            Ok(())
        }
        Err(Error::Store(crate::store::StoreError::Corrupt(why))) => {
            // A row that does not even read back (a hash of the wrong length): find which, one row at a time
            // from where the pass had got to.
            let store = ledger.store();
            let mut seq = integrity.status().verified_seq;
            let failed = loop {
                match store.read_after(seq, 1) {
                    Ok(rows) => match rows.first() {
                        Some(row) => seq = row.seq,
                        None => break false,
                    },
                    Err(_) => break true,
                }
            };
            if !failed {
                // Every row of the log reads back: the error came from elsewhere (a checkpoint row).
                return Err(Error::Store(crate::store::StoreError::Corrupt(why)));
            }
            integrity.damaged(&ChainError { seq: seq + 1, reason: why }, ledger.now().to_string());
            Ok(())
        }
        Err(e) => Err(e),
    }
}
