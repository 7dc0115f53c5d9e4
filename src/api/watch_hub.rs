//! What every watch stream of a server shares: a window of the log's newest records, each read from the store
//! and verified once, with its presentation (the change event and its JSON, with and without the audit
//! entries) built once. A change then costs one verification, and one store read when another process
//! appended it (this process's own appends are taken from memory, `Ledger::recent_after`), whatever the
//! number of watchers, and each stream only filters and sends.
//!
//! The window is contiguous and bounded (`capacity` records). A stream that resumes from further back reads
//! the store itself, as before; a stream that had caught up and then fell further behind than the window (a
//! stuck or too slow client) is ended with a reason, and resumes with `Last-Event-ID` like any other. A
//! stream holds records by reference (an `Arc` each), never a copy per stream, so a slow stream costs the
//! server a cursor, not a queue.

use crate::error::Error;
use crate::ledger::Ledger;
use crate::model::ChangeEvent;
use crate::present;
use cfgledger_events::{verify_record, Envelope, StoredValue};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};

/// How many of the newest records the window keeps, unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 4096;

/// One record of the log, verified, as every stream sees it.
pub struct HubRecord {
    pub seq: u64,
    pub hash: String,
    pub env: Envelope,
    /// The change event without (0) and with (1) its audit entries, and its JSON.
    presented: [OnceLock<Presented>; 2],
}

pub struct Presented {
    pub event: ChangeEvent,
    pub json: Arc<str>,
}

impl HubRecord {
    fn new(seq: u64, hash: String, env: Envelope) -> HubRecord {
        HubRecord { seq, hash, env, presented: [OnceLock::new(), OnceLock::new()] }
    }

    /// The record as a change event (with the audit entries when `detail`), built once for every stream.
    pub fn presented(
        &self,
        catalog: &cfgledger_events::catalog::Catalog,
        baseline: &BTreeMap<String, StoredValue>,
        detail: bool,
    ) -> &Presented {
        self.presented[usize::from(detail)].get_or_init(|| {
            let event = present::watch_event(&self.env, catalog, baseline, detail);
            let json: Arc<str> = serde_json::to_string(&event).unwrap_or_default().into();
            Presented { event, json }
        })
    }
}

/// Where a stream's next records come from.
pub enum Read {
    /// The records after the cursor, up to the limit (none when it is at the head).
    Records(Vec<Arc<HubRecord>>),
    /// The cursor is older than the window: the stream reads the store itself.
    Behind { oldest: u64 },
}

pub struct Hub {
    window: RwLock<VecDeque<Arc<HubRecord>>>,
    /// Each key's value when the log holds none (the value a reset falls back to): the same for every stream.
    baseline: OnceLock<BTreeMap<String, StoredValue>>,
    /// One stream at a time reads new records into the window; the others wait, then find them there.
    fill: tokio::sync::Mutex<()>,
    capacity: usize,
}

impl Hub {
    pub fn new(capacity: usize) -> Hub {
        Hub {
            window: RwLock::new(VecDeque::new()),
            baseline: OnceLock::new(),
            fill: tokio::sync::Mutex::new(()),
            capacity: capacity.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The values a reset falls back to (the ledger's baseline, computed once).
    pub fn baseline(&self, ledger: &Ledger) -> &BTreeMap<String, StoredValue> {
        self.baseline.get_or_init(|| ledger.baseline())
    }

    /// `rec` verified, for a stream that reads the store itself (further back than the window).
    pub fn record(ledger: &Ledger, rec: &cfgledger_events::Record) -> Result<Arc<HubRecord>, Error> {
        let env = verify_record(rec).map_err(|e| ledger.note(e.into()))?;
        Ok(Arc::new(HubRecord::new(rec.seq, rec.hash.to_hex(), env)))
    }

    /// The records after seq `after` up to `published` (at most `limit`), from the window; new ones are read
    /// into it first. [`Read::Behind`] when `after` is older than the window.
    pub async fn after(&self, ledger: &Ledger, after: u64, published: u64, limit: usize) -> Result<Read, Error> {
        if after >= published {
            return Ok(Read::Records(Vec::new()));
        }
        if let Some(read) = self.in_window(after, published, limit) {
            return Ok(read);
        }
        let _filling = self.fill.lock().await;
        if let Some(read) = self.in_window(after, published, limit) {
            return Ok(read);
        }
        // New records past the window's end (or an empty window): read them from where the window ends, or
        // from `after` when the window does not reach it, and append them.
        // The window grows from its end while the gap to the head fits in it, so that no stream waiting at
        // its end is left behind by another that started later.
        let end = match self.last_seq() {
            Some(last) if last >= after || published - last <= self.capacity as u64 => last,
            _ => after,
        };
        let want = usize::try_from(published - end).unwrap_or(usize::MAX).min(self.capacity);
        // What this process just appended is still in memory; another process's records are read back.
        let mut fresh = Vec::with_capacity(want);
        if let Some(recent) = ledger.recent_after(end, published, want) {
            for rec in &recent {
                fresh.push(Hub::record(ledger, rec)?);
            }
        } else {
            let store = ledger.store().clone();
            let records =
                tokio::task::spawn_blocking(move || store.read_after(end, want)).await.map_err(|_| Error::Closed)??;
            for rec in records.iter().filter(|r| r.seq <= published) {
                fresh.push(Hub::record(ledger, rec)?);
            }
        }
        if let Ok(mut window) = self.window.write() {
            if window.back().is_none_or(|last| last.seq != end) {
                // Not contiguous with what the window holds: it starts again here.
                window.clear();
            }
            window.extend(fresh.iter().cloned());
            while window.len() > self.capacity {
                window.pop_front();
            }
        }
        Ok(self
            .in_window(after, published, limit)
            .unwrap_or_else(|| Read::Records(fresh.into_iter().filter(|r| r.seq > after).take(limit).collect())))
    }

    fn last_seq(&self) -> Option<u64> {
        self.window.read().ok().and_then(|w| w.back().map(|r| r.seq))
    }

    /// What the window can answer for a cursor at `after`: `None` when it must read new records first.
    fn in_window(&self, after: u64, published: u64, limit: usize) -> Option<Read> {
        let window = self.window.read().ok()?;
        let (first, last) = (window.front()?.seq, window.back()?.seq);
        if after + 1 < first {
            return Some(Read::Behind { oldest: first });
        }
        if last <= after {
            return None;
        }
        let start = usize::try_from(after + 1 - first).ok()?;
        let records = window.iter().skip(start).take_while(|r| r.seq <= published).take(limit).cloned().collect();
        Some(Read::Records(records))
    }

    /// How many records the window holds, and the oldest.
    pub fn span(&self) -> (usize, Option<u64>) {
        self.window.read().map(|w| (w.len(), w.front().map(|r| r.seq))).unwrap_or((0, None))
    }
}
