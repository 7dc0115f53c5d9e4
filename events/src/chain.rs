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

impl Record {
    /// The record's fields, borrowed ([`RecordRef`]).
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            seq: self.seq,
            occurred_at: self.occurred_at,
            kind: &self.kind,
            actor: &self.actor,
            batch_id: &self.batch_id,
            key: self.key.as_deref(),
            envelope: &self.envelope,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// A [`Record`] whose text and bytes are borrowed from wherever the reader holds them (a SQLite row, an
/// owned `Record`). A rebuild checks every row of the log and keeps little of it, so the replay lanes
/// verify rows in place rather than copy five columns of each into a `Record` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub seq: u64,
    pub occurred_at: Timestamp,
    pub kind: &'a str,
    pub actor: &'a str,
    pub batch_id: &'a str,
    pub key: Option<&'a str>,
    /// The exact bytes that were hashed.
    pub envelope: &'a [u8],
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl RecordRef<'_> {
    /// The record, owned.
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            occurred_at: self.occurred_at,
            kind: self.kind.to_owned(),
            actor: self.actor.to_owned(),
            batch_id: self.batch_id.to_owned(),
            key: self.key.map(str::to_owned),
            envelope: self.envelope.to_vec(),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }

    /// Where the record stands in the chain.
    pub fn link(&self) -> Link {
        Link { seq: self.seq, prev_hash: self.prev_hash, hash: self.hash }
    }
}

impl<'a> From<&'a Record> for RecordRef<'a> {
    fn from(rec: &'a Record) -> RecordRef<'a> {
        rec.borrowed()
    }
}

/// A record's place in the chain: its seq, the hash it links to, and its own hash. It is all the
/// sequential half of the verification needs ([`ChainVerifier::push_verified`]), once a record's own
/// checks ran elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl From<&Record> for Link {
    fn from(rec: &Record) -> Link {
        rec.borrowed().link()
    }
}

impl From<RecordRef<'_>> for Link {
    fn from(rec: RecordRef<'_>) -> Link {
        rec.link()
    }
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
    pub fn push<'r>(&mut self, rec: impl Into<RecordRef<'r>>) -> Result<(), ChainError> {
        let rec = rec.into();
        check_follows(&self.head, rec.link())?;
        check_hash(rec)?;
        self.advance(rec.link());
        Ok(())
    }

    /// Checks `rec` as [`ChainVerifier::push`] does, then decodes it and compares the column copies with
    /// the envelope ([`verify_record`]).
    pub fn push_decoded<'r>(&mut self, rec: impl Into<RecordRef<'r>>) -> Result<Envelope, ChainError> {
        let rec = rec.into();
        check_follows(&self.head, rec.link())?;
        let env = verify_record(rec)?;
        self.advance(rec.link());
        Ok(env)
    }

    /// The sequential half of [`ChainVerifier::push_decoded`], for a record whose own checks
    /// ([`verify_record`] or [`verify_record_event`], which need no neighbour) already ran, on another
    /// thread: its place is checked first, then the outcome of those checks is taken (the envelope, or a
    /// reference to it).
    pub fn push_verified<E>(&mut self, rec: impl Into<Link>, verified: Result<E, ChainError>) -> Result<E, ChainError> {
        let link = rec.into();
        check_follows(&self.head, link)?;
        let env = verified?;
        self.advance(link);
        Ok(env)
    }

    fn advance(&mut self, link: Link) {
        self.head = Head { seq: link.seq, hash: link.hash };
    }
}

/// Checks `rec` against the head before it and decodes it: the seq follows, `prev_hash` matches, the hash
/// is recomputed from the stored bytes, and the column copies agree with the envelope.
pub fn verify_link<'r>(prev: &Head, rec: impl Into<RecordRef<'r>>) -> Result<Envelope, ChainError> {
    ChainVerifier::new(*prev).push_decoded(rec)
}

/// The sequential half of [`verify_link`]: `rec` comes right after `prev` and points at its hash.
pub fn check_follows(prev: &Head, rec: impl Into<Link>) -> Result<(), ChainError> {
    let rec = rec.into();
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
fn check_hash(rec: RecordRef<'_>) -> Result<(), ChainError> {
    let computed = Hash::link(&rec.prev_hash, rec.envelope);
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
pub fn verify_record<'r>(rec: impl Into<RecordRef<'r>>) -> Result<Envelope, ChainError> {
    let rec = rec.into();
    check_hash(rec)?;
    let env = Envelope::decode(rec.envelope).map_err(|e| ChainError { seq: rec.seq, reason: e.to_string() })?;
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
pub fn verify_record_event<'r>(rec: impl Into<RecordRef<'r>>) -> Result<VerifiedEvent, ChainError> {
    let rec = rec.into();
    check_hash(rec)?;
    let env = Envelope::decode_ref(rec.envelope).map_err(|e| ChainError { seq: rec.seq, reason: e.to_string() })?;
    check_columns(rec, env.at())?;
    Ok(VerifiedEvent { source: env.source, event: env.event })
}

/// The envelope's seq is the record's, and the indexed columns are copies of its fields.
fn check_columns(rec: RecordRef<'_>, env: EventAt<'_>) -> Result<(), ChainError> {
    let fail = |reason: String| ChainError { seq: rec.seq, reason };
    if env.seq != rec.seq {
        return Err(fail(format!("envelope says seq {}", env.seq)));
    }
    if env.event.kind() != rec.kind
        || env.actor != rec.actor
        || env.batch != rec.batch_id
        || env.occurred_at != rec.occurred_at
        || !subject_matches(env.event, rec.key)
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

    #[test]
    fn a_borrowed_record_is_checked_as_its_owned_copy() {
        let all = records(Head::EMPTY, 2);
        let mut column = all[1].clone();
        column.actor = "someone".into();
        let mut bytes = all[1].clone();
        bytes.envelope.push(b' ');
        for rec in [&all[0], &all[1], &column, &bytes] {
            assert_eq!(rec.borrowed().to_record(), *rec);
            assert_eq!(verify_record(rec.borrowed()), verify_record(rec));
            assert_eq!(verify_record_event(rec.borrowed()), verify_record_event(rec));
        }
        let refused = verify_record_event(column.borrowed()).unwrap_err();
        assert_eq!((refused.seq, refused.reason.as_str()), (2, "indexed columns differ from the envelope"));
        assert!(verify_record_event(bytes.borrowed())
            .unwrap_err()
            .reason
            .ends_with("its hash does not match its bytes"));

        let mut v = ChainVerifier::new(Head::EMPTY);
        assert!(v.push_verified(all[1].borrowed().link(), verify_record_event(&all[1])).is_err(), "place first");
        assert!(v.push_verified(&all[0], verify_record_event(all[0].borrowed())).is_ok());
        assert_eq!(v.push_verified(column.borrowed(), verify_record_event(&column)), Err(refused));
        assert_eq!(v.head(), Head { seq: 1, hash: all[0].hash }, "a refused record moves nothing");
        assert_eq!(v.push(all[1].borrowed()), Ok(()));
    }
}
