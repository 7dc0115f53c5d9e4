//! The store as it was: the projection at any earlier point of the log, read from the newest checkpoint at
//! or before that point plus the events after it, and the checkpoints themselves (written every
//! `SNAPSHOT_INTERVAL` events by the process that appended, checked against their digest and the log's
//! hash before use, dropped and rebuilt when bad).

use super::fold::{self, Position};
use super::Ledger;
use crate::error::Error;
use crate::live::Snapshot;
use crate::store::{EventStore, StoredSnapshot};
use cfgledger_events::{Head, Timestamp};
use cfgledger_projections::{snapshot, SettingsState};

/// The setting that says how many events pass between checkpoints, and its value when the catalog has none.
pub(crate) const INTERVAL_KEY: &str = crate::setting_keys::SNAPSHOT_INTERVAL.name;
pub(crate) const DEFAULT_INTERVAL: u64 = 1000;

/// The newest state handed to the checkpoint thread while it was still writing the one before: it writes
/// that one next, so the last hand-off of a burst is never lost (only the ones in between are skipped).
pub(crate) type Pending = std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<Snapshot>>>>;

/// Starts the thread that writes checkpoints handed to it, and returns its inbox. The thread ends when the
/// inbox is dropped (with the ledger's core).
pub(crate) fn spawn_checkpointer(
    store: std::sync::Arc<dyn EventStore>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    pending: Pending,
) -> std::sync::mpsc::SyncSender<std::sync::Arc<Snapshot>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::sync::Arc<Snapshot>>(1);
    let spawned = std::thread::Builder::new().name("cfgledger-checkpoint".into()).spawn(move || {
        for first in rx {
            let mut next = Some(first);
            while let Some(snap) = next {
                if let Err(e) = save_checkpoint(store.as_ref(), &snap, clock.now()) {
                    tracing::warn!(seq = snap.head.seq, "cannot write a snapshot: {e}");
                }
                next = pending.lock().ok().and_then(|mut p| p.take());
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the snapshot thread: {e}; snapshots are off");
    }
    tx
}

/// A point of the log, as `?as_of=`, `--to` and `--from` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// The state after this event.
    pub seq: u64,
}

/// A relative duration before now: `90s`, `15m`, `24h`, `7d`.
pub fn parse_ago(text: &str) -> Option<i64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let micros = match unit {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        "w" => 604_800_000_000,
        _ => return None,
    };
    n.checked_mul(micros)
}

/// A time as the filters take it: RFC 3339, or a duration before `now` (`24h`).
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp, Error> {
    let text = text.trim();
    if let Some(ago) = parse_ago(text) {
        return Ok(Timestamp(now.0.saturating_sub(ago)));
    }
    Timestamp::parse_rfc3339(text).map_err(|_| {
        Error::input(format!(
            "expected an RFC 3339 time (2026-11-21T18:00:00Z) or a duration before now (24h); got {text:?}"
        ))
    })
}

/// The checkpoint at or below `at_or_before` that checks out (its digest, the log's hash at its seq, its
/// decoding), with the position it stands at. A bad one is skipped, logged and counted, never dropped
/// silently: it stays for `verify` (and the background check) to report, until an operator drops it with
/// `cfgledger verify --drop-bad-snapshots`.
pub(crate) fn load_checkpoint(
    store: &dyn EventStore,
    at_or_before: u64,
) -> Result<Option<(SettingsState, Position)>, Error> {
    let mut below = at_or_before;
    while let Some(stored) = store.load_snapshot(below)? {
        match check(store, &stored) {
            Ok((state, time)) => {
                let pos = Position { head: Head { seq: stored.seq, hash: stored.head_hash }, head_time: time };
                return Ok(Some((state, pos)));
            }
            Err(_) if obsolete(&stored) => {
                // Written by an older build in an earlier format: a cache to rebuild, not evidence.
                tracing::info!(seq = stored.seq, "dropping a checkpoint in an older format");
                let _ = store.delete_snapshot(stored.seq);
            }
            Err(why) => {
                tracing::error!(seq = stored.seq, "a checkpoint does not check out and is not used: {why}");
                metrics::counter!("cfgledger_checkpoints_skipped_total").increment(1);
            }
        }
        if stored.seq == 0 {
            break;
        }
        below = stored.seq - 1;
    }
    Ok(None)
}

/// Whether `stored` is sound (its digest matches) but in a format an older build wrote.
pub(crate) fn obsolete(stored: &StoredSnapshot) -> bool {
    snapshot::digest(stored.seq, &stored.head_hash, &stored.state) == stored.digest
        && snapshot::is_older_format(&stored.state)
}

/// Why a stored checkpoint cannot be used, or its state and the time of its event.
pub(crate) fn check(store: &dyn EventStore, stored: &StoredSnapshot) -> Result<(SettingsState, Timestamp), String> {
    if snapshot::digest(stored.seq, &stored.head_hash, &stored.state) != stored.digest {
        return Err("its digest does not match its content".into());
    }
    let record = store
        .record_at(stored.seq)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the log has no event at seq {}", stored.seq))?;
    if record.hash != stored.head_hash {
        return Err(format!("the log's event at seq {} has another hash", stored.seq));
    }
    let state = snapshot::decode(&stored.state)?;
    if state.applied_seq != stored.seq {
        return Err(format!("it holds the state at seq {}, not {}", state.applied_seq, stored.seq));
    }
    Ok((state, record.occurred_at))
}

/// The position of an empty log, where a fold without a checkpoint starts.
pub(crate) fn start_position() -> Position {
    Position { head: Head::EMPTY, head_time: Timestamp::default() }
}

/// Folds the records of `store` after `pos` up to seq `until` into `state`, verifying each.
pub(crate) fn fold_to(
    store: &dyn EventStore,
    state: &mut SettingsState,
    pos: &mut Position,
    until: u64,
) -> Result<(), Error> {
    fold::fold_until(store, state, pos, until)
}

/// Writes a checkpoint of `snap`.
pub(crate) fn save_checkpoint(store: &dyn EventStore, snap: &Snapshot, now: Timestamp) -> Result<(), Error> {
    let state = snapshot::encode(&snap.state);
    let digest = snapshot::digest(snap.head.seq, &snap.head.hash, &state);
    store.save_snapshot(&StoredSnapshot {
        seq: snap.head.seq,
        head_hash: snap.head.hash,
        digest,
        state,
        created_at: now,
    })?;
    Ok(())
}

impl Ledger {
    /// The point `text` names: `seq:N`, an RFC 3339 time, or a duration before now (`24h`). A time before the
    /// store's first event and a seq beyond the head are refused.
    pub fn point(&self, text: &str) -> Result<Point, Error> {
        let head = self.snapshot().head.seq;
        let text = text.trim();
        if let Some(n) = text.strip_prefix("seq:") {
            let seq: u64 = n.parse().map_err(|_| Error::input(format!("seq:N expects a number; got {text:?}")))?;
            if seq == 0 || seq > head {
                return Err(Error::input(format!("seq:{seq} is not in the log, which holds seqs 1 to {head}")));
            }
            return Ok(Point { seq });
        }
        let time = parse_time(text, self.now()).map_err(|_| {
            Error::input(format!(
                "expected a point of the log: an RFC 3339 time (2026-11-21T18:00:00Z), a duration before now (24h) or seq:N; got {text:?}"
            ))
        })?;
        match self.store().seq_at(time)? {
            Some(seq) => Ok(Point { seq: seq.min(head) }),
            None => Err(Error::input(format!("{text} is before the store existed"))),
        }
    }

    /// The projection as it was after the event at `seq`: the current one when `seq` is the head, else the
    /// newest good checkpoint at or before `seq` and the events after it.
    pub fn state_at(&self, seq: u64) -> Result<SettingsState, Error> {
        self.state_at_checked(seq).map_err(|e| self.note(e))
    }

    fn state_at_checked(&self, seq: u64) -> Result<SettingsState, Error> {
        // The state at `seq` is the fold of every event up to it: damage there is part of it.
        self.integrity().check_range(1, seq)?;
        let snap = self.snapshot();
        if seq >= snap.head.seq {
            return Ok(snap.state.clone());
        }
        let store = self.store().as_ref();
        let (mut state, mut pos) = match load_checkpoint(store, seq)? {
            Some(found) => found,
            None => (SettingsState::new(), Position { head: Head::EMPTY, head_time: Timestamp::default() }),
        };
        fold::fold_until(store, &mut state, &mut pos, seq)?;
        Ok(state)
    }

    /// The published-state view of the store as it was after the event at `seq`, every key resolved (values
    /// the log did not hold then fall back to this process's environment and the defaults).
    pub fn snapshot_at(&self, seq: u64) -> Result<std::sync::Arc<Snapshot>, Error> {
        self.integrity().check_range(1, seq)?;
        let snap = self.snapshot();
        if seq >= snap.head.seq {
            // Built afresh, not the published snapshot: that one shows restart-required keys at the value
            // this process started with, and a point of the log shows what the log held.
            let state = snap.state.clone();
            return Ok(std::sync::Arc::new(Snapshot::build(
                &self.core.catalog,
                state,
                snap.head,
                snap.head_time,
                &self.core.env,
                None,
            )));
        }
        let state = self.state_at(seq)?;
        let rec = self.store().record_at(seq)?.ok_or_else(|| Error::input(format!("seq:{seq} is not in the log")))?;
        cfgledger_events::verify_record(&rec).map_err(|e| self.note(e.into()))?;
        let head = Head { seq, hash: rec.hash };
        Ok(std::sync::Arc::new(Snapshot::build(&self.core.catalog, state, head, rec.occurred_at, &self.core.env, None)))
    }
}
