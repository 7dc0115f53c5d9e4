//! The storage port: the one narrow interface through which the event log is read and appended, with its
//! adapters (SQLite, PostgreSQL, in-memory; the two SQL ones share their statements and row codec through
//! `sql`). Only this module speaks SQL. Every adapter passes the same conformance suite
//! (`tests/store_conformance.rs`). Here too: the one chunked walk through the log ([`LogChunks`]) and the
//! chain check every append makes.

pub mod memory;
pub mod postgres;
mod sql;
pub mod sqlite;

use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::{Hash, Head, Record, RecordRef, Timestamp};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The head moved since the caller read it: re-read, re-decide, retry.
    #[error("the log head moved: expected seq {} but it is at seq {}", expected.seq, actual.seq)]
    Conflict { expected: Head, actual: Head },
    /// The database cannot be reached or refused the operation; retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database stopped answering while an append was being committed, and could not be asked afterwards
    /// whether it was: the change may or may not be in the log.
    #[error("the outcome of the change is unknown: {0}")]
    OutcomeUnknown(String),
    /// The database holds something the log contract forbids (a malformed row).
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// The URL names no backend this build has.
    #[error("{0}")]
    Url(String),
}

/// How an audit query matches the indexed subject (`key` column): a setting key or `KIND/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectMatch {
    Exact(String),
    Prefix(String),
    /// Any of these exact subjects: a qualified key and the bare key a pre-namespace log indexed it under.
    AnyOf(Vec<String>),
}

/// Which records an audit query wants. Every filter is served by an index of the log; no envelope is read
/// to filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub subject: Option<SubjectMatch>,
    pub actor: Option<String>,
    /// Event kinds (`SettingChanged`, ...); any when empty.
    pub kinds: Vec<String>,
    pub batch: Option<String>,
    /// Events at or after this time.
    pub since: Option<Timestamp>,
    /// Events at or before this time.
    pub until: Option<Timestamp>,
    /// Only seqs below this one (the cursor of the next page, newest first).
    pub before: Option<u64>,
    /// Only seqs above this one.
    pub after: u64,
    pub limit: usize,
    /// Oldest first instead of newest first.
    pub ascending: bool,
}

/// A checkpoint of the projection as the store keeps it (see `cfgledger_projections::snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub seq: u64,
    /// The hash of the log's event at `seq`.
    pub head_hash: Hash,
    pub digest: Hash,
    pub state: Vec<u8>,
    pub created_at: Timestamp,
}

/// The exclusive upper bound of the texts that start with `prefix`, bytewise: the prefix with its last
/// character replaced by the next one (UTF-8 keeps code point order). `None` when there is none (a prefix
/// of U+10FFFF only, or empty): every text from `prefix` on then qualifies.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// At most this many distinct subjects under a prefix are queried one by one (each through the key index,
/// newest first, merged); more than that and the adapter reads the whole prefix range in one query.
pub(crate) const PREFIX_SPLIT: usize = 64;

/// Runs `q` once per subject in `subjects` (exact matches) and merges the pages: the newest (or oldest)
/// `q.limit` records of them all. A prefix shared by a few keys is then a few index lookups, not a sort of
/// every record under it.
pub(crate) fn query_each_subject(
    subjects: Vec<String>,
    q: &LogQuery,
    mut one: impl FnMut(&LogQuery) -> Result<Vec<Record>, StoreError>,
) -> Result<Vec<Record>, StoreError> {
    let mut all = Vec::new();
    for subject in subjects {
        all.extend(one(&LogQuery { subject: Some(SubjectMatch::Exact(subject)), ..q.clone() })?);
    }
    if q.ascending {
        all.sort_by_key(|r| r.seq);
    } else {
        all.sort_by_key(|r| std::cmp::Reverse(r.seq));
    }
    all.truncate(q.limit);
    Ok(all)
}

/// A seq bound as the SQL adapters store it: beyond the largest SQL integer there is nothing either way.
pub(crate) fn clamp_seq(seq: u64) -> u64 {
    seq.min(i64::MAX as u64)
}

#[cfg(test)]
mod prefix_tests {
    use super::prefix_end;

    #[test]
    fn the_end_of_a_prefix_is_the_next_text_that_does_not_start_with_it() {
        assert_eq!(prefix_end("LOG_").as_deref(), Some("LOG`"));
        assert_eq!(prefix_end("tools/a").as_deref(), Some("tools/b"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"), "surrogates are skipped");
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        for key in ["tools/a", "tools/a\u{10FFFF}b", "tools/a\u{10FFFF}", "tools/az"] {
            assert!(key >= "tools/a" && key < prefix_end("tools/a").unwrap().as_str(), "{key:?}");
        }
        assert!("tools/b" >= prefix_end("tools/a").unwrap().as_str());
    }
}

/// The event log as a storage backend offers it.
pub trait EventStore: Send + Sync {
    /// The last seq and its hash.
    fn head(&self) -> Result<Head, StoreError>;

    /// Takes the log's write lock (across processes and machines) and reads the head under it: until the
    /// guard commits or is dropped, no one else can append, so whatever is decided against that head
    /// cannot conflict. The group-commit writer appends this way.
    fn lock(&self) -> Result<Box<dyn AppendGuard + '_>, StoreError>;

    /// Appends `records` in one transaction if the head is still `expected`: all or nothing, durable when
    /// it returns. The records must continue the chain from `expected`.
    fn append(&self, expected: Head, records: &[Record]) -> Result<Head, StoreError> {
        let guard = self.lock()?;
        let actual = guard.head();
        if actual != expected {
            return Err(StoreError::Conflict { expected, actual });
        }
        guard.commit(records)
    }

    /// Up to `limit` records with seq greater than `after`, in seq order.
    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// The record at `seq`, if the log holds one (none at seq 0).
    fn record_at(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        if seq == 0 {
            return Ok(None);
        }
        Ok(self.read_after(seq - 1, 1)?.into_iter().next().filter(|r| r.seq == seq))
    }

    /// The records [`EventStore::read_after`] reads, each lent to `visit` in seq order rather than copied
    /// out; returns how many there were. A rebuild reads every record once and keeps little of it: SQLite
    /// lends each row's bytes where it holds them, and the other adapters lend the records they read.
    fn visit_after(&self, after: u64, limit: usize, visit: &mut dyn FnMut(RecordRef<'_>)) -> Result<usize, StoreError> {
        let records = self.read_after(after, limit)?;
        records.iter().for_each(|rec| visit(rec.borrowed()));
        Ok(records.len())
    }

    /// The records `q` selects, newest first (oldest first when `q.ascending`), at most `q.limit`.
    fn query(&self, q: &LogQuery) -> Result<Vec<Record>, StoreError>;

    /// The newest seq stamped at or before `time`, or `None` when the log holds nothing that old.
    fn seq_at(&self, time: Timestamp) -> Result<Option<u64>, StoreError>;

    /// Keeps a checkpoint (replacing one at the same seq).
    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError>;

    /// The newest checkpoint at or before `seq`, skipping none: the caller checks it and asks again below
    /// it if it is bad.
    fn load_snapshot(&self, at_or_before: u64) -> Result<Option<StoredSnapshot>, StoreError>;

    /// The seqs of every checkpoint, oldest first.
    fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError>;

    /// Drops the checkpoint at `seq`, if any (a bad one, before it is rebuilt).
    fn delete_snapshot(&self, seq: u64) -> Result<(), StoreError>;

    /// A cheap number that changes when another connection or process may have appended (SQLite's
    /// `PRAGMA data_version`). Adapters that cannot tell return a constant and rely on other wake-ups.
    fn change_token(&self) -> Result<u64, StoreError>;

    /// What the store is, for messages: `sqlite:///path`, `memory`, `postgres://user@host/db` (never a
    /// password).
    fn describe(&self) -> String;

    /// Records (or refreshes) the heartbeats of running instances, all in one transaction (of the beats of
    /// one id, the newest wins, and a beat older than the one stored changes nothing), and, given
    /// `forget_before` (microseconds since the epoch), forgets the instances silent since before it. Outside
    /// the event log: this is operational state.
    fn heartbeats(&self, beats: &[InstanceBeat], forget_before: Option<i64>) -> Result<(), StoreError>;

    /// Records the beats of `claims` whose ids are theirs to report, all in one transaction, under a lock
    /// that every handle on the store takes, so that two servers cannot hand one id to two subjects at
    /// once. An id belongs to the subject that reports it (`info.reported_by`) while its stored beat is
    /// live; each claim, in order, is checked against the stored beat of its id and the claims before it
    /// ([`admit`]). Returns whether each was admitted; an admitted beat is recorded as
    /// [`EventStore::heartbeats`] records one, and a refused one changes nothing.
    fn claim_heartbeats(&self, claims: &[ClaimedBeat]) -> Result<Vec<bool>, StoreError>;

    /// Every instance whose last heartbeat is at or after `since` (microseconds since the epoch).
    fn instances(&self, since: i64) -> Result<Vec<InstanceBeat>, StoreError>;

    /// One instance's heartbeat, if it is at or after `since`, without reading every other.
    fn instance(&self, id: &str, since: i64) -> Result<Option<InstanceBeat>, StoreError>;

    /// Removes an instance's heartbeat (it stopped).
    fn forget_instance(&self, id: &str) -> Result<(), StoreError>;

    /// Stores data keys made outside the writer (a rotation's, an import's), each before any ciphertext under
    /// it is appended; a key already there is left as it is. Never called while holding [`EventStore::lock`]:
    /// the writer stages its own through [`AppendGuard::stage_data_keys`].
    fn put_data_keys(&self, rows: &[DataKeyRow]) -> Result<(), StoreError>;

    /// The data key of that id, if the store holds it (a shredded one it does not).
    fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>, StoreError>;

    /// Every data key the store holds, by id.
    fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError>;

    /// Replaces the wrapping of existing data keys (a rotation's re-wrap); a key deleted meanwhile (shredded)
    /// stays deleted. Returns how many it replaced.
    fn rewrap_data_keys(&self, rows: &[DataKeyRow]) -> Result<usize, StoreError>;

    /// Bytes free for the store's files, where the backend keeps them on this machine (SQLite); `None` when
    /// it cannot tell (a database server's disk is its own).
    fn free_space(&self) -> Option<u64> {
        None
    }

    /// A push notification of appends made anywhere (PostgreSQL `LISTEN`), if the backend has one; `None`
    /// means the tailer polls [`EventStore::change_token`].
    fn watch(&self) -> Option<Result<Box<dyn ChangeWatch>, StoreError>> {
        None
    }

    /// A loader that fills an empty log in one transaction, faster than appends, if the backend has one
    /// (PostgreSQL: one `COPY`, the log's indexes built once at the end). `None` means the caller appends.
    fn bulk_load(&self) -> Option<Result<Box<dyn BulkLoad + '_>, StoreError>> {
        None
    }
}

/// An empty log being filled in one transaction (see [`EventStore::bulk_load`]): nothing is visible to
/// anyone until [`BulkLoad::finish`] commits, and a loader dropped before that leaves the log empty.
pub trait BulkLoad {
    /// Adds `records`, which continue the ones before (checked; the first must be seq 1). The caller has
    /// checked their hashes and links, as it would before an append.
    fn write(&mut self, records: Vec<Record>) -> Result<(), StoreError>;

    /// Builds what the load deferred and commits: all or nothing, durable when it returns. Fails with a
    /// conflict, changing nothing, if the log was not empty when the load took the write lock.
    fn finish(self: Box<Self>) -> Result<Head, StoreError>;
}

/// The log's write lock, held. Dropping it without [`AppendGuard::commit`] rolls back and releases it.
pub trait AppendGuard {
    /// The head as read under the lock.
    fn head(&self) -> Head;

    /// Appends `records`, which must continue [`AppendGuard::head`] (checked), and commits: all or nothing,
    /// durable when it returns.
    fn commit(self: Box<Self>, records: &[Record]) -> Result<Head, StoreError>;

    /// The ids of every data key held for `subject`, read under the lock.
    fn data_key_ids(&mut self, subject: &str) -> Result<Vec<String>, StoreError>;

    /// Data keys to insert and data keys to destroy (by id) in the transaction [`AppendGuard::commit`] ends:
    /// a key made while deciding lands with the first ciphertext under it, and a shred's keys are gone
    /// exactly when its event is in the log.
    fn stage_data_keys(&mut self, put: &[DataKeyRow], destroy: &[String]) -> Result<(), StoreError>;
}

/// A data key as the store keeps it: wrapped by a master key, never in plaintext.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataKeyRow {
    pub id: String,
    /// A qualified setting key, or `KIND/NAME`.
    pub subject: String,
    /// The id of the master key that wraps it.
    pub master_key: String,
    /// `cfgl1:<master key>:...`, bound to the id and the subject.
    pub wrapped: String,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
}

/// One instance's heartbeat: who it is and what it has applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceBeat {
    pub id: String,
    /// Host name, process id, listen address, version, start time, applied seq and head hash, as JSON.
    pub info: serde_json::Value,
    pub last_seen: i64,
}

/// An agent's or client's heartbeat, with what decides whether its id is free for it.
#[derive(Debug, Clone)]
pub struct ClaimedBeat {
    pub beat: InstanceBeat,
    /// The oldest `last_seen` of a live instance: a stored beat older than this no longer holds its id.
    pub live_since: i64,
    /// The sender may report an id another subject reports (an admin, clearing an entry).
    pub may_take_over: bool,
}

/// Who reports a heartbeat.
pub fn reporter(info: &serde_json::Value) -> Option<&str> {
    info.get("reported_by").and_then(serde_json::Value::as_str)
}

/// Who reports a stored heartbeat, from its info as the store keeps it (JSON text).
fn reporter_in(info: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(info).ok().as_ref().and_then(reporter).map(str::to_string)
}

/// Which of `claims` may be recorded, in order: a claim is refused when its id's beat, as the store holds it
/// or as an earlier admitted claim of the group left it, is live and reported by another subject, unless the
/// claim may take it over. `stored` gives an id's stored reporter and `last_seen`; it is asked once per id.
pub fn admit<E>(
    claims: &[ClaimedBeat],
    mut stored: impl FnMut(&str) -> Result<Option<(Option<String>, i64)>, E>,
) -> Result<Vec<bool>, E> {
    let mut owners: std::collections::HashMap<&str, (Option<String>, i64)> = std::collections::HashMap::new();
    let mut admitted = Vec::with_capacity(claims.len());
    for claim in claims {
        let id = claim.beat.id.as_str();
        let (owner, seen) = match owners.get(id) {
            Some(known) => known.clone(),
            None => stored(id)?.unwrap_or((None, i64::MIN)),
        };
        let by = reporter(&claim.beat.info).map(str::to_string);
        let live_owner = owner.as_ref().filter(|_| seen >= claim.live_since);
        if live_owner.is_some_and(|o| Some(o) != by.as_ref()) && !claim.may_take_over {
            admitted.push(false);
            owners.insert(id, (owner, seen));
            continue;
        }
        admitted.push(true);
        owners.insert(id, (by, claim.beat.last_seen.max(seen)));
    }
    Ok(admitted)
}

/// Wakes a tailer when the log may have grown. A wake-up only says "read the log": it never carries events,
/// so a lost one costs latency (the safety poll catches up), never an event.
pub trait ChangeWatch: Send {
    /// Waits up to `timeout`; the number of notifications received (0 when the time ran out). An error
    /// means the channel broke: the tailer asks the store for a new one.
    fn wait(&mut self, timeout: std::time::Duration) -> Result<usize, StoreError>;
}

/// A parsed `--db` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Memory,
    /// The URL as given, password included: shown only through `describe`-style redaction.
    Postgres(String),
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            StoreUrl::Memory => f.write_str("Memory"),
            StoreUrl::Postgres(_) => f.write_str("Postgres(…)"),
        }
    }
}

impl StoreUrl {
    /// Accepts `sqlite://PATH` (relative or absolute: `sqlite://./a.db`, `sqlite:///var/a.db`), a bare path,
    /// and `memory:`.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        if url == "memory:" || url == "memory://" {
            return Ok(StoreUrl::Memory);
        }
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(StoreError::Url(format!("database URL {url:?} names no file: use sqlite://PATH")));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        if url.contains("://") {
            let scheme = url.split("://").next().unwrap_or_default();
            return Err(StoreError::Url(format!(
                "database URL {scheme}://… has an unknown scheme: use sqlite://PATH, postgres://USER@HOST/DB or memory:"
            )));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(url)))
    }

    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match self {
            StoreUrl::Sqlite(p) => Some(p),
            StoreUrl::Memory | StoreUrl::Postgres(_) => None,
        }
    }
}

/// Opens the store a URL names, applying migrations.
pub fn open(url: &StoreUrl) -> Result<Arc<dyn EventStore>, StoreError> {
    match url {
        StoreUrl::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path)?)),
        StoreUrl::Memory => Ok(Arc::new(memory::MemoryStore::new())),
        StoreUrl::Postgres(url) => Ok(Arc::new(postgres::PgStore::open(url)?)),
    }
}

/// Walks the log backwards from seq `before` (exclusive), newest record first, reading windows of `window`
/// records, until `visit` returns `false` or the log's start is reached. The audit trail and the import
/// status read recent history this way, without replaying the log.
pub fn walk_back<E: From<StoreError>>(
    store: &dyn EventStore,
    before: u64,
    window: u64,
    mut visit: impl FnMut(&Record) -> Result<bool, E>,
) -> Result<(), E> {
    let mut end = before;
    while end > 1 {
        let start = end.saturating_sub(window.max(1)).max(1);
        let records = store.read_after(start - 1, usize::try_from(end - start).unwrap_or(usize::MAX))?;
        for rec in records.iter().rev() {
            if !visit(rec)? {
                return Ok(());
            }
        }
        end = start;
    }
    Ok(())
}

/// Refuses records that do not continue the chain from `head`: consecutive seqs, linked hashes, and each
/// hash recomputed from its envelope ([`ChainVerifier`]). The adapters call it inside their append, so that
/// no caller can write a gap, a broken link or a record that would fail verification.
pub(crate) fn check_continues(head: Head, records: &[Record]) -> Result<(), StoreError> {
    let mut chain = ChainVerifier::new(head);
    for r in records {
        chain.push(r).map_err(|e| StoreError::Corrupt(format!("append refused: {e}")))?;
    }
    Ok(())
}

/// Records per read of a walk through the log, and per transaction of a copy: large enough that a read's
/// round trip is small beside the work on its records, small enough to hold a few chunks in memory.
pub const READ_CHUNK: usize = 10_000;

/// The one walk through the log in seq order: the records after a seq, up to an inclusive bound, read
/// [`READ_CHUNK`] at a time. It ends at the bound, at the log's end (an empty or short read), or after
/// yielding an error. Verification, copies, the fold and point-in-time reads all read the log this way.
pub struct LogChunks<'a> {
    store: &'a dyn EventStore,
    after: u64,
    until: u64,
    done: bool,
}

impl<'a> LogChunks<'a> {
    /// The records after seq `after` up to the log's end.
    pub fn after(store: &'a dyn EventStore, after: u64) -> LogChunks<'a> {
        LogChunks { store, after, until: u64::MAX, done: false }
    }

    /// Stops at seq `until` (inclusive).
    pub fn until(self, until: u64) -> LogChunks<'a> {
        LogChunks { until, ..self }
    }

    /// Reads the chunks on a thread of `scope`, up to two ahead of the receiver, so that reading the next
    /// chunk overlaps the work on this one. The thread stops when the receiver is dropped.
    pub fn read_ahead<'scope>(
        self,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> std::sync::mpsc::Receiver<Result<Vec<Record>, StoreError>>
    where
        'a: 'scope,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        scope.spawn(move || {
            for chunk in self {
                if tx.send(chunk).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Reads the chunks on `lanes` threads of `scope` (chunk `i` on lane `i % lanes`) and yields, in log
    /// order, what each lane made of them: a chunk of `n` records starts as `start(n)`, and each record is
    /// lent to `add` as the store holds it ([`EventStore::visit_after`]), on the thread that read it.
    /// Reading and the work on the records then both spread over the cores, where
    /// [`LogChunks::read_ahead`] reads on one thread only, and from a store that lends its rows (SQLite)
    /// no record is copied unless `add` copies it. A chunk's first seq follows from its place (`after + i * READ_CHUNK`), which holds
    /// because the log is gapless; in a damaged log with a gap the chunks overlap, and the chain check of
    /// the records refuses the gap where it stands, as it would in one walk. The walk ends after a short
    /// chunk (which may be empty) or an error, even when a later lane, reading a newer state of the log,
    /// found more. Each lane holds at most one finished chunk while the receiver waits for another lane's;
    /// the lanes stop when the walk ends or the iterator is dropped. A result the caller is done with can
    /// be handed back ([`Striped::give_back`]) to be dropped on the lane that made it: freeing memory on the
    /// thread that allocated it keeps the caller's thread, which has the sequential part of the work, from
    /// contending for the lanes' allocator arenas.
    pub fn read_striped<'scope, T, S, A>(
        self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        lanes: usize,
        start: S,
        add: A,
    ) -> Striped<T>
    where
        'a: 'scope,
        T: Send + 'scope,
        S: Fn(usize) -> T + Send + Sync + 'scope,
        A: Fn(&mut T, RecordRef<'_>) + Send + Sync + 'scope,
    {
        let LogChunks { store, after, until, done } = self;
        let lanes = lanes.max(1);
        let work = Arc::new((start, add));
        let mut handles = Vec::with_capacity(lanes);
        for lane in 0..lanes {
            let (tx, results) = std::sync::mpsc::sync_channel(1);
            let (spent, given_back) = std::sync::mpsc::channel::<T>();
            handles.push(Lane { results, spent });
            if done {
                continue;
            }
            let work = work.clone();
            scope.spawn(move || {
                let (start, add) = &*work;
                // Whatever the caller handed back is dropped here, on the thread that allocated it, before
                // each read and once the walk is over.
                let _drop_at_the_end = DropAll(&given_back);
                // Chunk `index` starts after seq `after + index * READ_CHUNK`; this lane reads every `lanes`th.
                let start_of = |index: usize| {
                    let offset = u64::try_from(index.checked_mul(READ_CHUNK)?).ok()?;
                    after.checked_add(offset)
                };
                let mut index = lane;
                while let Some(first) = start_of(index).filter(|&s| s < until) {
                    given_back.try_iter().for_each(drop);
                    let want = usize::try_from(until - first).unwrap_or(usize::MAX).min(READ_CHUNK);
                    let mut out = start(want);
                    let chunk = store.visit_after(first, want, &mut |rec| add(&mut out, rec)).map(|n| (n < want, out));
                    let last = !matches!(chunk, Ok((false, _)));
                    if tx.send(chunk).is_err() || last {
                        return;
                    }
                    index += lanes;
                }
            });
        }
        Striped { lanes: handles, next: 0, done }
    }
}

/// Drops everything its channel holds when it goes out of scope (a lane's results handed back).
struct DropAll<'r, T>(&'r std::sync::mpsc::Receiver<T>);

impl<T> Drop for DropAll<'_, T> {
    fn drop(&mut self) {
        self.0.try_iter().for_each(drop);
    }
}

/// The results of [`LogChunks::read_striped`], in log order.
pub struct Striped<T> {
    lanes: Vec<Lane<T>>,
    next: usize,
    done: bool,
}

/// One lane of a [`Striped`] walk: its results, and the way back for the ones the caller is done with.
struct Lane<T> {
    results: std::sync::mpsc::Receiver<Result<(bool, T), StoreError>>,
    spent: std::sync::mpsc::Sender<T>,
}

impl<T> Striped<T> {
    /// Hands `spent`, the result [`Iterator::next`] yielded last, back to its lane to be dropped there
    /// (dropped here if the lane has ended).
    pub fn give_back(&self, spent: T) {
        let Some(lane) = self.next.checked_sub(1).and_then(|last| self.lanes.get(last % self.lanes.len())) else {
            return;
        };
        let _ = lane.spent.send(spent);
    }
}

impl<T> Iterator for Striped<T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let lane = self.lanes.get(self.next % self.lanes.len().max(1))?;
        self.next += 1;
        match lane.results.recv() {
            // The lane passed the bound (or panicked, which the scope raises again when it ends).
            Err(_) => {
                self.done = true;
                None
            }
            Ok(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(Ok((short, value))) => {
                self.done = short;
                Some(Ok(value))
            }
        }
    }
}

impl Iterator for LogChunks<'_> {
    type Item = Result<Vec<Record>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.after >= self.until {
            return None;
        }
        let want = usize::try_from(self.until - self.after).unwrap_or(usize::MAX).min(READ_CHUNK);
        match self.store.read_after(self.after, want) {
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(records) => {
                let Some(last) = records.last().map(|r| r.seq) else {
                    self.done = true;
                    return None;
                };
                self.done = records.len() < want;
                self.after = last;
                Some(Ok(records))
            }
        }
    }
}

#[cfg(test)]
mod striped_tests {
    use super::{memory::MemoryStore, EventStore, LogChunks, READ_CHUNK};
    use cfgledger_events::event::{SettingChanged, StoredValue};
    use cfgledger_events::{build_batch, Actor, Batch, Cause, Event, Head, Record, Timestamp};

    /// A memory store holding `n` records.
    fn store_of(n: usize) -> MemoryStore {
        let store = MemoryStore::new();
        let actor = Actor::system();
        let batch = Batch { id: "b".into(), cause: Cause::Cli { command: "test".into() }, reason: None };
        let events = (0..n)
            .map(|i| {
                Event::SettingChanged(SettingChanged {
                    key: format!("K{}", i % 7),
                    value: StoredValue::Plain(serde_json::Value::from(i)),
                    previous: None,
                })
            })
            .collect();
        let records: Vec<Record> =
            build_batch(Head::EMPTY, Timestamp(0), &actor, &batch, events).into_iter().map(|(_, r)| r).collect();
        store.append(Head::EMPTY, &records).expect("the records append");
        store
    }

    fn striped_seqs(chunks: LogChunks<'_>, lanes: usize) -> Vec<u64> {
        std::thread::scope(|s| {
            let mut striped = chunks.read_striped(s, lanes, Vec::with_capacity, |seqs, rec| seqs.push(rec.seq));
            let mut seqs = Vec::new();
            while let Some(chunk) = striped.next() {
                let chunk = chunk.expect("the chunk reads");
                seqs.extend_from_slice(&chunk);
                striped.give_back(chunk);
            }
            seqs
        })
    }

    #[test]
    fn a_striped_walk_yields_every_record_in_order_up_to_its_bound_on_any_number_of_lanes() {
        let n = 3 * READ_CHUNK + 17;
        let store = store_of(n);
        let all: Vec<u64> = (1..=u64::try_from(n).expect("small")).collect();
        for lanes in [1, 2, 3, 5] {
            assert_eq!(striped_seqs(LogChunks::after(&store, 0), lanes), all, "{lanes} lanes");
            assert_eq!(striped_seqs(LogChunks::after(&store, 5).until(23_456), lanes), all[5..23_456], "{lanes} lanes");
            let whole_chunks = u64::try_from(2 * READ_CHUNK).expect("small");
            assert_eq!(striped_seqs(LogChunks::after(&store, 0).until(whole_chunks), lanes).len(), 2 * READ_CHUNK);
        }
        assert!(striped_seqs(LogChunks::after(&store, u64::try_from(n).expect("small")), 2).is_empty());
        assert!(striped_seqs(LogChunks::after(&MemoryStore::new(), 0), 2).is_empty());
    }
}
