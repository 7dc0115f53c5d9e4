//! Reading the log into the projection: every record after the published head is verified (its hash
//! recomputed from the stored bytes, its link to the one before) and folded in seq order. A short tail —
//! the usual catch-up after a write — is folded inline. A long one (opening a big store) is read by one
//! lane per core, each of which also verifies and decodes the chunks it read, while this thread checks the
//! links and folds them in order: reading and decoding, not the fold, are what a rebuild spends its time on.

use crate::error::Error;
use crate::store::{EventStore, LogChunks, StoreError, READ_CHUNK};
use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::{
    verify_record_event, ChainError, EventAt, Head, Link, Record, RecordRef, Timestamp, VerifiedEvent,
};
use cfgledger_projections::SettingsState;
use std::ops::Range;

/// The position a fold has reached.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    pub head: Head,
    /// The newest event time seen: new events are never stamped earlier.
    pub head_time: Timestamp,
}

/// Folds every record after `pos.head` into the state that `state` lazily provides (called once, only if
/// there is anything to fold). Returns the state if anything was folded.
pub(crate) fn fold_log(
    store: &dyn EventStore,
    pos: &mut Position,
    state: impl FnOnce() -> SettingsState,
) -> Result<Option<SettingsState>, Error> {
    let mut chunks = LogChunks::after(store, pos.head.seq);
    let Some(first) = chunks.next() else {
        return Ok(None);
    };
    let first = first?;
    let mut st = state();
    let more = first.len() == READ_CHUNK;
    for part in decode_all(&first) {
        fold_chunk(&mut st, pos, &part)?;
    }
    if more {
        fold_pipelined(chunks, &mut st, pos)?;
    }
    Ok(Some(st))
}

/// Records verified apart from their neighbours ([`verify_record_event`]), as the fold takes them: each
/// one's place, time and event (or what is wrong with it). The actors' and batches' names are kept in one
/// text for the whole chunk, rather than two strings per record, and a name the record before had is not
/// kept twice.
#[derive(Debug, Default)]
struct VerifiedChunk {
    names: String,
    rows: Vec<VerifiedRow>,
}

#[derive(Debug)]
struct VerifiedRow {
    link: Link,
    occurred_at: Timestamp,
    /// The actor's name and the batch's id: the record's columns, checked equal to its envelope's.
    actor: Range<usize>,
    batch: Range<usize>,
    verified: Result<VerifiedEvent, ChainError>,
}

impl VerifiedChunk {
    fn with_capacity(records: usize) -> VerifiedChunk {
        // Room for a batch id (a UUID) per record and an actor now and then.
        VerifiedChunk { names: String::with_capacity(records.saturating_mul(40)), rows: Vec::with_capacity(records) }
    }

    /// Verifies `rec` (hash, decode, columns) and keeps what the fold needs of it.
    fn push(&mut self, rec: RecordRef<'_>) {
        let verified = verify_record_event(rec);
        let last = self.rows.last().map(|row| (row.actor.clone(), row.batch.clone()));
        let (actor, batch) = match last {
            Some((actor, batch)) => (self.name(rec.actor, actor), self.name(rec.batch_id, batch)),
            None => (self.name(rec.actor, 0..0), self.name(rec.batch_id, 0..0)),
        };
        self.rows.push(VerifiedRow { link: rec.link(), occurred_at: rec.occurred_at, actor, batch, verified });
    }

    /// Where `name` is in `names`: at `previous` if the record before had the same one, else added.
    fn name(&mut self, name: &str, previous: Range<usize>) -> Range<usize> {
        if self.names.get(previous.clone()) == Some(name) {
            return previous;
        }
        let start = self.names.len();
        self.names.push_str(name);
        start..self.names.len()
    }
}

/// Checks each record's place and folds it, in seq order, stopping at the first that does not verify.
fn fold_chunk(state: &mut SettingsState, pos: &mut Position, chunk: &VerifiedChunk) -> Result<(), Error> {
    let mut chain = ChainVerifier::new(pos.head);
    for row in &chunk.rows {
        let verified = chain.push_verified(row.link, row.verified.as_ref().map_err(Clone::clone))?;
        let name = |range: &Range<usize>| chunk.names.get(range.clone()).unwrap_or_default();
        state.apply_at(EventAt {
            seq: row.link.seq,
            occurred_at: row.occurred_at,
            actor: name(&row.actor),
            source: verified.source,
            batch: name(&row.batch),
            event: &verified.event,
        });
        pos.head = chain.head();
        pos.head_time = pos.head_time.max(row.occurred_at);
    }
    Ok(())
}

/// Verifies and decodes a chunk, in parts to fold in order; big chunks are split across two threads.
fn decode_all(records: &[Record]) -> Vec<VerifiedChunk> {
    let verify = |records: &[Record]| {
        let mut chunk = VerifiedChunk::with_capacity(records.len());
        records.iter().for_each(|rec| chunk.push(rec.borrowed()));
        chunk
    };
    if records.len() < 1_000 {
        return vec![verify(records)];
    }
    let (front, back) = records.split_at(records.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| verify(front));
        let mine = verify(back);
        // A panic in verification would be a bug; surface it rather than fold a partial chunk.
        let front = other.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        vec![front, mine]
    })
}

/// At most this many lanes read and verify a long log, however many cores there are: each holds up to
/// two chunks of verified records.
const MAX_LANES: usize = 4;

/// Reads and verifies the rest of the log on one lane per core (at least two, so that reading overlaps
/// the fold even on one core) while this thread checks each record's place and folds it. The lanes verify
/// each row where the store holds it ([`EventStore::visit_after`]): nothing of a record is copied but what
/// the fold takes.
fn fold_pipelined(chunks: LogChunks<'_>, state: &mut SettingsState, pos: &mut Position) -> Result<(), Error> {
    let lanes = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, MAX_LANES);
    std::thread::scope(|s| {
        let mut striped = chunks.read_striped(s, lanes, VerifiedChunk::with_capacity, VerifiedChunk::push);
        while let Some(chunk) = striped.next() {
            let chunk = chunk?;
            fold_chunk(state, pos, &chunk)?;
            // Freed on the lane that allocated it: this thread's frees were what held the lanes back.
            striped.give_back(chunk);
        }
        Ok(())
    })
}

/// Folds the records after `pos.head` up to and including seq `until` into `state`: a point-in-time read
/// from a checkpoint. Every record is verified and must continue the chain, as in a full replay.
pub(crate) fn fold_until(
    store: &dyn EventStore,
    state: &mut SettingsState,
    pos: &mut Position,
    until: u64,
) -> Result<(), Error> {
    for chunk in LogChunks::after(store, pos.head.seq).until(until) {
        for part in decode_all(&chunk?) {
            fold_chunk(state, pos, &part)?;
        }
    }
    if pos.head.seq < until {
        return Err(Error::Store(StoreError::Corrupt(format!(
            "the log ends at seq {} but seq {until} was asked for",
            pos.head.seq
        ))));
    }
    Ok(())
}
