//! The group-commit writer: one thread per process takes every command waiting in its queue, decides
//! each against the state left by the ones before it, and appends them all in one transaction, so that
//! N concurrent writers cost one sync instead of N. Each command keeps its own batch, and is acknowledged
//! only after the transaction that holds it is durable. The group is decided under the log's write lock
//! (`EventStore::lock`): when another process appended since the published state, the writer catches up
//! from the log first, so a decision is never invalidated by a race.

use super::{Core, Ledger, Outcome, WriteContext};
use crate::datakeys::{names_shredded, Pending};
use crate::error::Error;
use crate::store::{AppendGuard, StoreError};
use cfgledger_events::{build_batch, decide, Command, Event, Head, Record};
use std::sync::{mpsc, Arc};

/// The most commands one transaction takes: bounds the latency of the first one in a burst.
const MAX_GROUP: usize = 1024;
/// The longest the writer waits to fill a group when writers are concurrent.
const LINGER: std::time::Duration = std::time::Duration::from_micros(100);

pub(crate) struct Job {
    pub cmd: Command,
    pub ctx: WriteContext,
    pub reply: Reply,
}

/// Where a job's result goes: a blocked thread or an awaiting task.
pub(crate) enum Reply {
    Blocking(mpsc::SyncSender<Result<Outcome, Error>>),
    Async(tokio::sync::oneshot::Sender<Result<Outcome, Error>>),
}

impl Reply {
    /// Whether the caller has stopped waiting (only an async caller can tell).
    fn abandoned(&self) -> bool {
        match self {
            Reply::Blocking(_) => false,
            Reply::Async(tx) => tx.is_closed(),
        }
    }

    fn send(self, result: Result<Outcome, Error>) {
        // A caller that stopped waiting has nothing to be told.
        let _ = match self {
            Reply::Blocking(tx) => tx.send(result).map_err(|_| ()),
            Reply::Async(tx) => tx.send(result).map_err(|_| ()),
        };
    }
}

pub(crate) fn spawn(core: Arc<Core>) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("cfgledger-writer".into())
        .spawn(move || {
            let mut last_len = 0usize;
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                // Like PostgreSQL's commit_delay: when the last group showed several writers at once, wait
                // a moment for the ones just acknowledged to send their next change, so that one sync
                // serves them all. A lone writer never waits.
                let deadline = (last_len > 1).then(|| std::time::Instant::now() + LINGER);
                while group.len() < MAX_GROUP {
                    let next = match deadline {
                        Some(d) if group.len() < last_len => {
                            rx.recv_timeout(d.saturating_duration_since(std::time::Instant::now())).ok()
                        }
                        _ => rx.try_recv().ok(),
                    };
                    match next {
                        Some(job) => group.push(job),
                        None => break,
                    }
                }
                last_len = group.len();
                let results = commit_group(&core, &group);
                for (job, result) in group.into_iter().zip(results) {
                    job.reply.send(result);
                }
            }
        })
        .expect("the writer thread starts");
    tx
}

/// Decides and appends a group under the log's write lock; returns one result per job, in order.
fn commit_group(core: &Core, group: &[Job]) -> Vec<Result<Outcome, Error>> {
    // Nothing is ever appended onto a log that failed its integrity check, or before the check at start has
    // reached the head.
    if let Err(e) = core.integrity.write_gate() {
        return group.iter().map(|_| Err(copy(&e))).collect();
    }
    let Ok(_sync) = core.sync.lock() else {
        return group.iter().map(|_| Err(Error::Closed)).collect();
    };
    // Take the write lock first and decide against the head read under it: another process's append can
    // then only come before (read below), never between deciding and appending, so a writer that waited
    // for the lock never loses the race it waited for.
    let mut guard = match core.store.lock() {
        Ok(g) => g,
        Err(e) => return fail_all(group, &core.write_failed(e)),
    };
    let mut snap = core.live.load_full();
    if snap.head != guard.head() {
        // Committed by another process before we took the lock: fold it in (the readers see it).
        snap = match core.catch_up_locked() {
            Ok(s) => s,
            Err(e) => return fail_all(group, &core.note(e)),
        };
        if snap.head != guard.head() {
            let e = StoreError::Unavailable(format!(
                "the log's head under the write lock is seq {} but reading the log reached seq {}",
                guard.head().seq,
                snap.head.seq
            ));
            return fail_all(group, &Error::Store(e));
        }
    }
    let mut state = snap.state.clone();
    let mut head = snap.head;
    // Times never go backwards in the log, even if the wall clock does.
    let now = core.clock.now().max(snap.head_time);
    let mut records: Vec<Record> = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    // Data keys made while deciding: stored by this group's append, or dropped with it.
    let pending = Pending::default();
    let mut destroy: Vec<String> = Vec::new();
    for job in group {
        if job.reply.abandoned() {
            // The caller stopped waiting (an HTTP client went away) before anything was decided: its change
            // is dropped rather than applied behind its back.
            results.push(Err(Error::Closed));
            continue;
        }
        // The state names the key that seals (a rotation another instance appended is followed at once).
        // Before the genesis event the ring's own key (the one the store is being created with) seals.
        let ring_key = core.sealer.key_id();
        let sealing_key = match state.master_keys().current() {
            "" => ring_key.as_str(),
            logged => logged,
        };
        core.sealer.set_current(sealing_key);
        // A shred destroys every data key of its subject the store holds now, read under the lock.
        let cmd = match with_data_keys(guard.as_mut(), &pending, core.sealer.data_keys(), job.cmd.clone()) {
            Ok(cmd) => cmd,
            Err(e) => return fail_all(group, &core.write_failed(e)),
        };
        let sealer = core.sealer.for_writer(sealing_key, &pending, &state.master_keys().shredded);
        let decided = decide(&core.catalog, &state, &sealer, cmd);
        let (events, mut rejection): (Vec<Event>, _) = match decided {
            Ok(events) => (events, None),
            Err(mut rej) => (std::mem::take(&mut rej.audit), Some(rej)),
        };
        let mut outcome = Outcome { batch_id: None, seqs: None, head, events: Vec::new() };
        if !events.is_empty() {
            let batch = Ledger::new_batch(&job.ctx);
            let built = build_batch(head, now, &job.ctx.actor, &batch, events);
            // Nothing is ever sealed under a destroyed data key again (a value sealed outside the writer just
            // before its subject was shredded is refused here, to be sealed again by a retry).
            let shreds = &state.master_keys().shredded;
            if let Some(id) = built.iter().find_map(|(_, rec)| names_shredded(&rec.envelope, shreds)) {
                let message = format!(
                    "a value of this change is sealed under data key {id}, which was shredded meanwhile: nothing was written; run it again"
                );
                rejection = Some(cfgledger_events::Rejection::conflict(message));
            } else {
                let first = head.seq + 1;
                let mut appended = Vec::with_capacity(built.len());
                for (env, rec) in built {
                    debug_assert_eq!(rec.seq, head.seq + 1, "a batch continues the head it was built on");
                    if let Event::SecretShredded(e) = &env.event {
                        destroy.extend(e.data_keys.iter().cloned());
                    }
                    state.apply(&env);
                    head = Head { seq: rec.seq, hash: rec.hash };
                    records.push(rec);
                    appended.push(env.event);
                }
                outcome = Outcome { batch_id: Some(batch.id), seqs: Some((first, head.seq)), head, events: appended };
            }
        }
        results.push(match rejection {
            Some(rej) => Err(Error::Rejected(rej)),
            None => Ok(outcome),
        });
    }
    if records.is_empty() {
        // Nothing to append; the head these were decided against was read under the lock.
        return results;
    }
    // The keys made while deciding, and those made outside the writer that ciphertexts in this append (or a
    // later one) are sealed under: all land in this transaction, or go back to wait for the next.
    let unsaved = core.sealer.data_keys().map(|d| d.take_unsaved()).unwrap_or_default();
    let give_back = |rows: Vec<crate::store::DataKeyRow>| {
        if let Some(data) = core.sealer.data_keys() {
            data.restore_unsaved(rows);
        }
    };
    let mut put = pending.rows();
    put.extend(unsaved.iter().cloned());
    let staged = if put.is_empty() && destroy.is_empty() { Ok(()) } else { guard.stage_data_keys(&put, &destroy) };
    if let Err(e) = staged {
        give_back(unsaved);
        return fail_all(group, &core.write_failed(e));
    }
    let committed = guard.commit(&records);
    if committed.is_err() {
        give_back(unsaved);
    }
    match committed {
        Ok(_) => {
            if let Some(data) = core.sealer.data_keys() {
                data.forget(destroy.iter());
                data.committed(pending);
            }
            if let Ok(mut failure) = core.write_failure.lock() {
                *failure = None;
            }
            core.remember(records);
            let snap = core.publish(state, head, now);
            core.maybe_checkpoint(&snap);
            if let Some(hook) = core.commit_hook.get() {
                hook(head.seq);
            }
            for (job, result) in group.iter().zip(&results) {
                if let Ok(outcome) = result {
                    signal_governance(&job.ctx, outcome);
                }
            }
            results
        }
        Err(e) => fail_all(group, &core.write_failed(e)),
    }
}

/// `cmd` with a shred's data keys filled in: every one the store holds for its subject (read under the
/// write lock, so none made by another instance can slip between the read and the append), and any this
/// group made for it.
fn with_data_keys(
    guard: &mut dyn AppendGuard,
    pending: &Pending,
    unsaved: Option<&crate::datakeys::DataKeys>,
    cmd: Command,
) -> Result<Command, StoreError> {
    match cmd {
        Command::ShredSecret { subject, reason, .. } => {
            let mut data_keys = guard.data_key_ids(&subject)?;
            data_keys.extend(pending.ids_for(&subject));
            if let Some(data) = unsaved {
                data_keys.extend(data.unsaved_ids_for(&subject));
            }
            data_keys.sort();
            data_keys.dedup();
            Ok(Command::ShredSecret { subject, data_keys, reason })
        }
        Command::Bypass { by, then } => {
            Ok(Command::Bypass { by, then: Box::new(with_data_keys(guard, pending, unsaved, *then)?) })
        }
        other => Ok(other),
    }
}

/// What governance makes loud once committed: an emergency bypass (a warning and a counter, besides its
/// event), a request applied or suspended, and a scheduled one applied late.
fn signal_governance(ctx: &crate::ledger::WriteContext, outcome: &Outcome) {
    for event in &outcome.events {
        match event {
            Event::EmergencyBypassUsed(e) => {
                metrics::counter!("cfgledger_emergency_bypass_total").increment(1);
                let subjects: Vec<&str> = e.bypassed.iter().map(|b| b.subject.as_str()).collect();
                tracing::warn!(
                    target: "cfgledger::governance",
                    by = %e.by,
                    bypassed = %subjects.join(","),
                    reason = ctx.reason.as_deref().unwrap_or(""),
                    batch = outcome.batch_id.as_deref().unwrap_or(""),
                    "EMERGENCY BYPASS: a change was applied without the approvals the change policy asks for"
                );
            }
            Event::ChangeRequestApplied(e) => {
                metrics::counter!("cfgledger_change_requests_applied_total").increment(1);
                if let Some(late) = e.late_secs {
                    metrics::counter!("cfgledger_change_requests_late_total").increment(1);
                    tracing::warn!(target: "cfgledger::governance", id = e.id, late_secs = late,
                        "scheduled change request applied late, after an outage or a stop");
                } else {
                    tracing::info!(target: "cfgledger::governance", id = e.id, approvers = %e.approvers.join(","),
                        "change request applied");
                }
            }
            Event::ChangeRequestSuspended(e) => {
                metrics::counter!("cfgledger_change_requests_suspended_total").increment(1);
                let subjects: Vec<&str> = e.conflicts.iter().map(|c| c.subject.as_str()).collect();
                tracing::warn!(target: "cfgledger::governance", id = e.id, changed = %subjects.join(","),
                    invalid = e.invalid.as_deref().unwrap_or(""),
                    "scheduled change request suspended: its base changed before its apply time");
            }
            _ => {}
        }
    }
}

impl Core {
    /// Remembers an append the store refused, for `/ready`.
    fn write_failed(&self, e: StoreError) -> Error {
        if let (StoreError::Unavailable(why) | StoreError::OutcomeUnknown(why), Ok(mut failure)) =
            (&e, self.write_failure.lock())
        {
            *failure = Some((std::time::Instant::now(), why.clone()));
        }
        Error::Store(e)
    }
}

fn fail_all(group: &[Job], e: &Error) -> Vec<Result<Outcome, Error>> {
    group.iter().map(|_| Err(copy(e))).collect()
}

/// One more of `e`, for each job of a group that fails together.
fn copy(e: &Error) -> Error {
    match e {
        Error::Store(s) => Error::Store(s.clone()),
        Error::Chain(c) => Error::Chain(c.clone()),
        Error::Contention(n) => Error::Contention(*n),
        Error::Integrity(m) => Error::Integrity(m.clone()),
        Error::Coded { code, message, details } => {
            Error::Coded { code: *code, message: message.clone(), details: details.clone() }
        }
        // catch-up, the integrity gate and append fail only with the kinds above.
        other => Error::Internal { context: other.to_string(), source: None },
    }
}
