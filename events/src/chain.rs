//! The hash chain: building a batch of records on top of a head, and checking one stored record against
//! its predecessor. `hash = blake3(prev_hash || envelope)`; the genesis event's `prev_hash` is zero.

use crate::envelope::{Actor, Batch, Envelope};
use crate::event::Event;
use crate::hash::Hash;
use crate::time::Timestamp;
use std::fmt;

/// The end of the log: the last seq and its hash (seq 0 and the zero hash for an empty log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

impl Head {
    pub const EMPTY: Head = Head { seq: 0, hash: Hash::ZERO };
}

/// One row of the `events` table. The queryable columns are copies of envelope fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub occurred_at: Timestamp,
    pub kind: String,
    pub actor: String,
    pub batch_id: String,
    /// The key the event is about, if any: a copy for the audit index.
    pub key: Option<String>,
    /// The exact bytes that were hashed.
    pub envelope: Vec<u8>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Whether the indexed `key` column holds the event's subject. Entity events written before their subject
/// was indexed (the registry's first release) carry none, and stay valid.
fn subject_matches(event: &Event, column: Option<&str>) -> bool {
    match (event.subject(), column) {
        (Some(subject), Some(column)) => subject == column,
        (None, None) => true,
        (Some(_), None) => event.key().is_none(),
        (None, Some(_)) => false,
    }
}

/// A record that does not belong where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub seq: u64,
    pub reason: String,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for ChainError {}

/// Builds the records of one batch on top of `head`: consecutive seqs, each linked to the one before.
/// Returns each envelope with its record, so that the caller can fold what it is about to append.
pub fn build_batch(
    head: Head,
    occurred_at: Timestamp,
    actor: &Actor,
    batch: &Batch,
    events: Vec<Event>,
) -> Vec<(Envelope, Record)> {
    let mut prev = head;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let seq = prev.seq + 1;
        let key = event.subject();
        let kind = event.kind().to_string();
        let env = Envelope { seq, occurred_at, actor: actor.clone(), batch: batch.clone(), event };
        let bytes = env.encode();
        let hash = Hash::link(&prev.hash, &bytes);
        let record = Record {
            seq,
            occurred_at,
            kind,
            actor: actor.name.clone(),
            batch_id: batch.id.clone(),
            key,
            envelope: bytes,
            prev_hash: prev.hash,
            hash,
        };
        out.push((env, record));
        prev = Head { seq, hash };
    }
    out
}

/// Checks `rec` against the head before it and decodes it: the seq follows, `prev_hash` matches, the hash
/// is recomputed from the stored bytes, and the column copies agree with the envelope.
pub fn verify_link(prev: &Head, rec: &Record) -> Result<Envelope, ChainError> {
    check_follows(prev, rec)?;
    verify_record(rec)
}

/// The sequential half of [`verify_link`]: `rec` comes right after `prev` and points at its hash.
pub fn check_follows(prev: &Head, rec: &Record) -> Result<(), ChainError> {
    if rec.seq != prev.seq + 1 {
        return Err(ChainError {
            seq: prev.seq + 1,
            reason: format!("expected seq {} but found seq {}", prev.seq + 1, rec.seq),
        });
    }
    if rec.prev_hash != prev.hash {
        return Err(ChainError {
            seq: rec.seq,
            reason: format!("prev_hash {} does not match the hash of seq {}", rec.prev_hash, prev.seq),
        });
    }
    Ok(())
}

/// The half of [`verify_link`] that needs no neighbour, so it can run on many records in parallel: the
/// hash recomputed from `prev_hash` and the stored bytes, the decode, and the column copies.
pub fn verify_record(rec: &Record) -> Result<Envelope, ChainError> {
    let fail = |reason: String| ChainError { seq: rec.seq, reason };
    let computed = Hash::link(&rec.prev_hash, &rec.envelope);
    if computed != rec.hash {
        return Err(fail(format!("stored hash {} but the envelope hashes to {computed}", rec.hash)));
    }
    let env = Envelope::decode(&rec.envelope).map_err(|e| fail(e.to_string()))?;
    if env.seq != rec.seq {
        return Err(fail(format!("envelope says seq {}", env.seq)));
    }
    if env.event.kind() != rec.kind
        || env.actor.name != rec.actor
        || env.batch.id != rec.batch_id
        || env.occurred_at != rec.occurred_at
        || !subject_matches(&env.event, rec.key.as_deref())
    {
        return Err(fail("indexed columns differ from the envelope".to_string()));
    }
    Ok(env)
}
