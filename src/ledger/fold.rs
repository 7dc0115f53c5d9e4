//! Reading the log into the projection: every record after the published head is verified (its hash
//! recomputed from the stored bytes, its link to the one before) and folded in seq order. A short tail —
//! the usual catch-up after a write — is folded inline. A long one (opening a big store) is read by one
//! lane per core, each of which also verifies and decodes the chunks it read, while this thread checks the
//! links and folds them in order: reading and decoding, not the fold, are what a rebuild spends its time on.

use crate::error::Error;
use crate::store::{EventStore, LogChunks, StoreError, READ_CHUNK};
use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::{verify_record_event, ChainError, Head, Record, Timestamp, VerifiedEvent};
use cfgledger_projections::SettingsState;

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
    fold_chunk(&mut st, pos, &first, &decode_all(&first))?;
    if more {
        fold_pipelined(chunks, &mut st, pos)?;
    }
    Ok(Some(st))
}

fn fold_chunk(
    state: &mut SettingsState,
    pos: &mut Position,
    records: &[Record],
    decoded: &[Result<VerifiedEvent, ChainError>],
) -> Result<(), Error> {
    let mut chain = ChainVerifier::new(pos.head);
    for (rec, verified) in records.iter().zip(decoded) {
        let verified = chain.push_verified(rec, verified.as_ref().map_err(Clone::clone))?;
        state.apply_at(verified.at(rec));
        pos.head = chain.head();
        pos.head_time = pos.head_time.max(rec.occurred_at);
    }
    Ok(())
}

/// Verifies and decodes a chunk; big chunks are split across two threads.
fn decode_all(records: &[Record]) -> Vec<Result<VerifiedEvent, ChainError>> {
    if records.len() < 1_000 {
        return records.iter().map(verify_record_event).collect();
    }
    let (front, back) = records.split_at(records.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| front.iter().map(verify_record_event).collect::<Vec<_>>());
        let mine: Vec<_> = back.iter().map(verify_record_event).collect();
        // A panic in verification would be a bug; surface it rather than fold a partial chunk.
        let mut out = other.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        out.extend(mine);
        out
    })
}

/// At most this many lanes read and verify a long log, however many cores there are: each holds up to
/// two chunks of records and their envelopes.
const MAX_LANES: usize = 4;

/// Reads and verifies the rest of the log on one lane per core (at least two, so that reading overlaps
/// the fold even on one core) while this thread checks each record's place and folds it.
fn fold_pipelined(chunks: LogChunks<'_>, state: &mut SettingsState, pos: &mut Position) -> Result<(), Error> {
    let lanes = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, MAX_LANES);
    let verify_chunk = |records: Vec<Record>| {
        let decoded: Vec<_> = records.iter().map(verify_record_event).collect();
        (records, decoded)
    };
    std::thread::scope(|s| {
        let mut striped = chunks.read_striped(s, lanes, verify_chunk);
        while let Some(chunk) = striped.next() {
            let (records, decoded) = chunk?;
            fold_chunk(state, pos, &records, &decoded)?;
            // Freed on the lane that allocated them: this thread's frees were what held the lanes back.
            striped.give_back((records, decoded));
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
        let records = chunk?;
        let decoded = decode_all(&records);
        fold_chunk(state, pos, &records, &decoded)?;
    }
    if pos.head.seq < until {
        return Err(Error::Store(StoreError::Corrupt(format!(
            "the log ends at seq {} but seq {until} was asked for",
            pos.head.seq
        ))));
    }
    Ok(())
}
