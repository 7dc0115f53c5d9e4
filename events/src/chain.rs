//! The hash chain: building a batch of records on top of a head, and checking stored records against their
//! predecessors. `hash = blake3(prev_hash || envelope)`; the genesis event's `prev_hash` is zero.
//! [`ChainVerifier`] is the one checker of a run of records: every reader and writer of the log that checks
//! the chain (verify, clone, the fold, the append guard) feeds it record by record.

use crate::envelope::{Actor, Batch, Envelope, EventAt, Source};
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
    match (event.subject_text(), column) {
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

/// The one checker of a run of stored records, fed one record at a time in seq order from the head it
/// starts after. Each record must take the next seq, link to the hash of the one before, and carry the hash
/// of its own stored bytes (`blake3(prev_hash || envelope)`; nothing is re-serialized).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainVerifier {
    head: Head,
}

impl ChainVerifier {
    /// A verifier of the records that follow `after` (`Head::EMPTY` for a whole log: the first record then
    /// links to the zero hash).
    pub fn new(after: Head) -> ChainVerifier {
        ChainVerifier { head: after }
    }

    /// The last record accepted (or the head it started after).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Checks `rec`'s place and its hash, without decoding it, and moves past it.
    pub fn push(&mut self, rec: &Record) -> Result<(), ChainError> {
        check_follows(&self.head, rec)?;
        check_hash(rec)?;
        self.advance(rec);
        Ok(())
    }

    /// Checks `rec` as [`ChainVerifier::push`] does, then decodes it and compares the column copies with
    /// the envelope ([`verify_record`]).
    pub fn push_decoded(&mut self, rec: &Record) -> Result<Envelope, ChainError> {
        check_follows(&self.head, rec)?;
        let env = verify_record(rec)?;
        self.advance(rec);
        Ok(env)
    }

    /// The sequential half of [`ChainVerifier::push_decoded`], for a record whose own checks
    /// ([`verify_record`], which needs no neighbour) already ran, on another thread: its place is checked
    /// first, then the outcome of those checks is taken (the envelope, or a reference to it).
    pub fn push_verified<E>(&mut self, rec: &Record, verified: Result<E, ChainError>) -> Result<E, ChainError> {
        check_follows(&self.head, rec)?;
        let env = verified?;
        self.advance(rec);
        Ok(env)
    }

    fn advance(&mut self, rec: &Record) {
        self.head = Head { seq: rec.seq, hash: rec.hash };
    }
}

/// Checks `rec` against the head before it and decodes it: the seq follows, `prev_hash` matches, the hash
/// is recomputed from the stored bytes, and the column copies agree with the envelope.
pub fn verify_link(prev: &Head, rec: &Record) -> Result<Envelope, ChainError> {
    ChainVerifier::new(*prev).push_decoded(rec)
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

/// `rec.hash` is the hash of its stored bytes linked to its `prev_hash`.
fn check_hash(rec: &Record) -> Result<(), ChainError> {
    let computed = Hash::link(&rec.prev_hash, &rec.envelope);
    if computed != rec.hash {
        return Err(ChainError {
            seq: rec.seq,
            reason: format!(
                "stored hash {} but the envelope hashes to {computed}: its hash does not match its bytes",
                rec.hash
            ),
        });
    }
    Ok(())
}

/// The half of [`verify_link`] that needs no neighbour, so it can run on many records in parallel: the
/// hash recomputed from `prev_hash` and the stored bytes, the decode, and the column copies.
pub fn verify_record(rec: &Record) -> Result<Envelope, ChainError> {
    check_hash(rec)?;
    let env = Envelope::decode(&rec.envelope).map_err(|e| ChainError { seq: rec.seq, reason: e.to_string() })?;
    check_columns(rec, env.at())?;
    Ok(env)
}

/// What [`verify_record_event`] leaves of a record beside its columns: the seq, the time, the actor's name
/// and the batch's id are the columns' (checked equal to the envelope's), so only the rest is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    pub source: Source,
    pub event: Event,
}

impl VerifiedEvent {
    /// The event at its place, from `rec`, the record it was verified from.
    pub fn at<'a>(&'a self, rec: &'a Record) -> EventAt<'a> {
        EventAt {
            seq: rec.seq,
            occurred_at: rec.occurred_at,
            actor: &rec.actor,
            source: self.source,
            batch: &rec.batch_id,
            event: &self.event,
        }
    }
}

/// [`verify_record`] for a fold: every check it makes (hash, decode, columns), without copying out the
/// header fields the columns already hold ([`Envelope::decode_ref`]).
pub fn verify_record_event(rec: &Record) -> Result<VerifiedEvent, ChainError> {
    check_hash(rec)?;
    let env = Envelope::decode_ref(&rec.envelope).map_err(|e| ChainError { seq: rec.seq, reason: e.to_string() })?;
    check_columns(rec, env.at())?;
    Ok(VerifiedEvent { source: env.source, event: env.event })
}

/// The envelope's seq is the record's, and the indexed columns are copies of its fields.
fn check_columns(rec: &Record, env: EventAt<'_>) -> Result<(), ChainError> {
    let fail = |reason: String| ChainError { seq: rec.seq, reason };
    if env.seq != rec.seq {
        return Err(fail(format!("envelope says seq {}", env.seq)));
    }
    if env.event.kind() != rec.kind
        || env.actor != rec.actor
        || env.batch != rec.batch_id
        || env.occurred_at != rec.occurred_at
        || !subject_matches(env.event, rec.key.as_deref())
    {
        return Err(fail("indexed columns differ from the envelope".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Cause, Source};
    use crate::event::{SettingChanged, StoredValue};

    fn records(after: Head, n: usize) -> Vec<Record> {
        let actor = Actor { name: "t".into(), role: None, source: Source::Cli, address: None, request_id: None };
        let batch = Batch { id: "b".into(), cause: Cause::Cli { command: "set".into() }, reason: None };
        let events = (0..n)
            .map(|i| {
                Event::SettingChanged(SettingChanged {
                    key: format!("K{i}"),
                    value: StoredValue::Plain(serde_json::Value::from(i)),
                    previous: None,
                })
            })
            .collect();
        build_batch(after, Timestamp(0), &actor, &batch, events).into_iter().map(|(_, r)| r).collect()
    }

    #[test]
    fn a_built_chain_is_accepted_record_by_record_from_any_head() {
        let all = records(Head::EMPTY, 4);
        let mut whole = ChainVerifier::new(Head::EMPTY);
        for rec in &all {
            assert_eq!(whole.push_decoded(rec).map(|e| e.seq), Ok(rec.seq));
        }
        assert_eq!(whole.head(), Head { seq: 4, hash: all[3].hash });
        let mut tail = ChainVerifier::new(Head { seq: 2, hash: all[1].hash });
        assert_eq!(tail.push(&all[2]), Ok(()));
        assert_eq!(tail.push(&all[3]), Ok(()));
        assert_eq!(tail.head(), whole.head());
    }

    #[test]
    fn a_gap_a_broken_link_and_altered_bytes_are_named_and_not_passed() {
        let all = records(Head::EMPTY, 3);
        let mut v = ChainVerifier::new(Head::EMPTY);
        let gap = v.push(&all[1]).unwrap_err();
        assert_eq!((gap.seq, gap.reason.as_str()), (1, "expected seq 1 but found seq 2"));
        assert_eq!(v.head(), Head::EMPTY, "a refused record moves nothing");

        let mut foreign = all[0].clone();
        foreign.prev_hash = Hash([7; 32]);
        let link = v.push(&foreign).unwrap_err();
        assert_eq!(link.seq, 1);
        assert!(link.reason.ends_with("does not match the hash of seq 0"), "{link}");

        let mut altered = all[0].clone();
        altered.envelope.push(b' ');
        let bytes = v.push(&altered).unwrap_err();
        assert!(bytes.reason.starts_with("stored hash "), "{bytes}");
        assert!(bytes.reason.ends_with("its hash does not match its bytes"), "{bytes}");
        assert_eq!(v.push_decoded(&altered).unwrap_err(), bytes, "one message whichever way it is fed");

        let decoded = verify_record(&all[0]);
        assert!(v.push_verified(&all[1], verify_record(&all[1])).is_err(), "the place is checked first");
        assert_eq!(v.push_verified(&all[0], decoded).map(|e| e.seq), Ok(1));
        assert_eq!(v.head(), Head { seq: 1, hash: all[0].hash });
    }
}
