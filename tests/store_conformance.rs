//! The conformance suite of the storage port: one set of checks, generic over [`EventStore`], that every
//! adapter must pass (the in-memory store and SQLite here; a PostgreSQL adapter joins with one line in
//! `conformance!` at the bottom). It pins the contract the ledger relies on: the empty head, appends that
//! are all or nothing under optimistic concurrency, refusal of records that do not continue the chain,
//! ordered and byte-exact reads, and a change token that notices other writers. SQLite-only checks follow:
//! the triggers that make the table append-only, and persistence across reopen.

mod pg;

use cfgledger::store::memory::MemoryStore;
use cfgledger::store::postgres::PgStore;
use cfgledger::store::sqlite::SqliteStore;
use cfgledger::store::{EventStore, StoreError};
use cfgledger_events::event::{EncryptionInfo, SettingChanged, SettingReset, StoreCreated};
use cfgledger_events::{
    build_batch, verify_link, Actor, Batch, Cause, Event, Hash, Head, Record, Source, StoredValue, Timestamp,
};
use serde_json::json;
use std::sync::Arc;

/// A fresh, empty store of one adapter.
struct Fixture {
    store: Arc<dyn EventStore>,
    /// Opens another handle on the same log, as a second process would (for SQLite a new connection set).
    other_handle: Box<dyn Fn() -> Arc<dyn EventStore>>,
    /// Keeps a temporary directory alive as long as the store.
    _dir: Option<tempfile::TempDir>,
    /// Keeps (then drops) a test database. Declared last: it is dropped after the store's connections.
    _db: Option<pg::TestDb>,
}

fn memory() -> Fixture {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let shared = store.clone();
    // A memory log lives in one process: another handle is the same store.
    Fixture { store, other_handle: Box::new(move || shared.clone()), _dir: None, _db: None }
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.db");
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).expect("the store opens"));
    let other_handle =
        Box::new(move || -> Arc<dyn EventStore> { Arc::new(SqliteStore::open(&path).expect("a second handle opens")) });
    Fixture { store, other_handle, _dir: Some(dir), _db: None }
}

fn postgres() -> Fixture {
    let db = pg::TestDb::new();
    let url = db.url();
    let store: Arc<dyn EventStore> = Arc::new(PgStore::open(&url).expect("the store opens"));
    let other_handle =
        Box::new(move || -> Arc<dyn EventStore> { Arc::new(PgStore::open(&url).expect("a second handle opens")) });
    Fixture { store, other_handle, _dir: None, _db: Some(db) }
}

fn actor() -> Actor {
    Actor { name: "conformance".into(), role: None, source: Source::Cli, address: None, request_id: None }
}

fn genesis() -> Event {
    Event::StoreCreated(StoreCreated {
        store_id: "conformance".into(),
        format: cfgledger_events::STORE_FORMAT.into(),
        encryption: EncryptionInfo {
            algorithm: "xchacha20poly1305".into(),
            kdf: "argon2id:m=19456,t=2,p=1".into(),
            salt: "00".into(),
            key_id: "0011223344556677".into(),
        },
    })
}

fn change(key: &str, value: serde_json::Value) -> Event {
    Event::SettingChanged(SettingChanged { key: key.into(), value: StoredValue::Plain(value), previous: None })
}

/// Records of one batch on top of `head`, stamped with a time derived from the head so each batch differs.
fn batch(head: Head, events: Vec<Event>) -> Vec<Record> {
    batch_at(head, Timestamp(1_800_000_000_000_000 + i64::try_from(head.seq).expect("a small seq") * 1_000), events)
}

fn batch_at(head: Head, at: Timestamp, events: Vec<Event>) -> Vec<Record> {
    let b =
        Batch { id: format!("batch-after-{}", head.seq), cause: Cause::Cli { command: "test".into() }, reason: None };
    build_batch(head, at, &actor(), &b, events).into_iter().map(|(_, r)| r).collect()
}

fn head_of(records: &[Record]) -> Head {
    records.last().map(|r| Head { seq: r.seq, hash: r.hash }).expect("at least one record")
}

/// Appends three batches (seven records, with and without keys, with text that needs escaping and a
/// time before 1970) and returns everything written.
fn seed(store: &dyn EventStore) -> Vec<Record> {
    let mut all = Vec::new();
    let first = batch(Head::EMPTY, vec![genesis(), change("LOG_LEVEL", json!("debug"))]);
    store.append(Head::EMPTY, &first).expect("the first batch appends");
    all.extend(first);
    let second = batch(
        head_of(&all),
        vec![
            change("GREETING", json!("ünïcode ✓ \"quoted\" \\ \n\u{0}")),
            change("NESTED", json!({"b": [1, 2.5, null], "a": {}})),
            Event::SettingReset(SettingReset { key: "LOG_LEVEL".into(), previous: None }),
        ],
    );
    store.append(head_of(&all), &second).expect("the second batch appends");
    all.extend(second);
    let before_1970 = Timestamp(-86_400_000_000);
    let third =
        batch_at(head_of(&all), before_1970, vec![change("MAX_WORKERS", json!(8)), change("MAX_WORKERS", json!(9))]);
    store.append(head_of(&all), &third).expect("the third batch appends");
    all.extend(third);
    all
}

/// The checks. Each takes a fresh fixture and panics with the adapter's description on failure.
mod checks {
    use super::*;

    pub fn empty_store_has_the_empty_head(f: Fixture) {
        assert_eq!(f.store.head().expect("a head"), Head::EMPTY, "{}", f.store.describe());
        assert!(f.store.read_after(0, 100).expect("a read").is_empty());
    }

    pub fn append_with_the_current_head_returns_the_new_head(f: Fixture) {
        let s = f.store.as_ref();
        let records = batch(Head::EMPTY, vec![genesis(), change("A", json!(1)), change("B", json!(2))]);
        let new_head = s.append(Head::EMPTY, &records).expect("the append succeeds");
        assert_eq!(new_head, head_of(&records));
        assert_eq!(s.head().expect("a head"), new_head);
        let more = batch(new_head, vec![change("A", json!(3))]);
        let newer = s.append(new_head, &more).expect("the next append succeeds");
        assert_eq!(newer, Head { seq: 4, hash: more[0].hash });
        assert_eq!(s.head().expect("a head"), newer);
    }

    pub fn an_empty_append_changes_nothing(f: Fixture) {
        let s = f.store.as_ref();
        assert_eq!(s.append(Head::EMPTY, &[]).expect("an empty append"), Head::EMPTY);
        let written = seed(s);
        let head = head_of(&written);
        assert_eq!(s.append(head, &[]).expect("an empty append"), head);
        assert_eq!(s.read_after(0, 100).expect("a read"), written);
    }

    pub fn a_stale_head_is_a_conflict_and_writes_nothing(f: Fixture) {
        let s = f.store.as_ref();
        let written = seed(s);
        let head = head_of(&written);
        let stale = Head { seq: written[1].seq, hash: written[1].hash };
        let forked = Head { seq: head.seq, hash: Hash([0xab; 32]) };
        let ahead = Head { seq: head.seq + 5, hash: head.hash };
        // Another writer read the head at `stale` and built its batch on it.
        let other = (f.other_handle)();
        for expected in [Head::EMPTY, stale, forked, ahead] {
            let records = batch(expected, vec![change("LATE", json!(true))]);
            match other.append(expected, &records) {
                Err(StoreError::Conflict { expected: e, actual }) => {
                    assert_eq!(e, expected);
                    assert_eq!(actual, head, "the conflict names the actual head");
                }
                other => panic!("{}: append on {expected:?} gave {other:?}", s.describe()),
            }
            assert_eq!(s.head().expect("a head"), head);
            assert_eq!(s.read_after(0, 100).expect("a read"), written, "a conflict writes nothing");
        }
    }

    pub fn records_that_do_not_continue_the_chain_are_refused_whole(f: Fixture) {
        let s = f.store.as_ref();
        let written = seed(s);
        let head = head_of(&written);
        let good = batch(head, vec![change("X", json!(1)), change("Y", json!(2)), change("Z", json!(3))]);

        let mut gap_first = good.clone();
        gap_first.remove(0);
        let mut gap_third = good.clone();
        gap_third[2].seq += 1;
        let mut bad_prev_first = good.clone();
        bad_prev_first[0].prev_hash = Hash([1; 32]);
        let mut bad_prev_third = good.clone();
        bad_prev_third[2].prev_hash = bad_prev_third[0].hash;
        let mut repeated_seq = good.clone();
        repeated_seq[2].seq = repeated_seq[1].seq;
        let foreign = batch(Head::EMPTY, vec![genesis(), change("Q", json!(0))]);
        // A record whose hash is not blake3(prev_hash || envelope) would fail verification on every read.
        let mut altered_envelope = good.clone();
        altered_envelope[1].envelope.push(b' ');

        for (what, records) in [
            ("a gap before the first record", gap_first),
            ("a gap before the third record", gap_third),
            ("a wrong prev_hash on the first record", bad_prev_first),
            ("a wrong prev_hash on the third record", bad_prev_third),
            ("a repeated seq on the third record", repeated_seq),
            ("records that start another log", foreign),
            ("an envelope that does not hash to its record's hash", altered_envelope),
        ] {
            match s.append(head, &records) {
                Ok(h) => panic!("{}: {what} was appended up to {h:?}", s.describe()),
                Err(StoreError::Conflict { .. }) => panic!("{}: {what} was reported as a conflict", s.describe()),
                Err(_) => {}
            }
            assert_eq!(s.head().expect("a head"), head, "{what}: the head did not move");
            assert_eq!(s.read_after(0, 100).expect("a read"), written, "{what}: nothing was written");
        }
        // The good batch still appends afterwards: a refusal leaves no half-open transaction behind.
        assert_eq!(s.append(head, &good).expect("the good batch appends"), head_of(&good));
    }

    pub fn read_after_returns_what_was_written_in_order(f: Fixture) {
        let s = f.store.as_ref();
        let written = seed(s);
        assert_eq!(written.len(), 7);
        assert_eq!(s.read_after(0, 100).expect("a read"), written, "byte for byte, every column");
        assert_eq!(s.read_after(0, 7).expect("a read"), written);
        assert_eq!(s.read_after(2, 3).expect("a read"), written[2..5].to_vec());
        assert_eq!(s.read_after(6, 100).expect("a read"), written[6..].to_vec());
        assert!(s.read_after(7, 100).expect("a read").is_empty());
        assert!(s.read_after(1_000, 100).expect("a read").is_empty());
        assert!(s.read_after(0, 0).expect("a read").is_empty());
        assert_eq!(s.read_after(0, usize::MAX).expect("a read"), written);
        // Paging through the log one record at a time meets every seq once.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = s.read_after(after, 2).expect("a read");
            let Some(last) = page.last() else { break };
            after = last.seq;
            paged.extend(page);
        }
        assert_eq!(paged, written);
        // What comes back verifies as a chain.
        let mut head = Head::EMPTY;
        for rec in &paged {
            verify_link(&head, rec).unwrap_or_else(|e| panic!("{}: a read record fails to verify: {e}", s.describe()));
            head = Head { seq: rec.seq, hash: rec.hash };
        }
    }

    pub fn another_handle_sees_appends_and_moves_the_change_token(f: Fixture) {
        let s = f.store.as_ref();
        let written = seed(s);
        let other = (f.other_handle)();
        assert_eq!(other.head().expect("a head"), head_of(&written));
        assert_eq!(other.read_after(0, 100).expect("a read"), written);

        let token = s.change_token().expect("a token");
        assert_eq!(s.change_token().expect("a token"), token, "no write, no change");
        let more = batch(head_of(&written), vec![change("FROM_ELSEWHERE", json!("yes"))]);
        other.append(head_of(&written), &more).expect("the other handle appends");
        assert_ne!(s.change_token().expect("a token"), token, "{}: the token noticed the other append", s.describe());
        assert_eq!(s.head().expect("a head"), head_of(&more));
        assert_eq!(s.read_after(7, 100).expect("a read"), more);
    }
}

/// Runs every check against each adapter, one test per check and adapter. A new adapter is one line:
/// `postgres => postgres_fixture();`.
macro_rules! conformance {
    ($($adapter:ident => $fixture:expr;)*) => {$(
        mod $adapter {
            use super::*;
            #[test]
            fn empty_store_has_the_empty_head() { checks::empty_store_has_the_empty_head($fixture) }
            #[test]
            fn append_with_the_current_head_returns_the_new_head() {
                checks::append_with_the_current_head_returns_the_new_head($fixture)
            }
            #[test]
            fn an_empty_append_changes_nothing() { checks::an_empty_append_changes_nothing($fixture) }
            #[test]
            fn a_stale_head_is_a_conflict_and_writes_nothing() {
                checks::a_stale_head_is_a_conflict_and_writes_nothing($fixture)
            }
            #[test]
            fn records_that_do_not_continue_the_chain_are_refused_whole() {
                checks::records_that_do_not_continue_the_chain_are_refused_whole($fixture)
            }
            #[test]
            fn read_after_returns_what_was_written_in_order() {
                checks::read_after_returns_what_was_written_in_order($fixture)
            }
            #[test]
            fn another_handle_sees_appends_and_moves_the_change_token() {
                checks::another_handle_sees_appends_and_moves_the_change_token($fixture)
            }
        }
    )*};
}

conformance! {
    memory_store => memory();
    sqlite_store => sqlite();
    postgres_store => postgres();
}

/// Checks that need PostgreSQL itself: its triggers, and appends racing from several connections.
mod postgres_only {
    use super::*;

    #[test]
    fn update_delete_and_truncate_are_refused_by_the_database() {
        let db = pg::TestDb::new();
        let store = PgStore::open(&db.url()).expect("the store opens");
        let written = seed(&store);
        let mut conn = db.client();
        for (sql, verb) in [
            ("UPDATE events SET actor = 'mallory' WHERE seq = 2", "UPDATE"),
            ("DELETE FROM events WHERE seq = 7", "DELETE"),
            ("DELETE FROM events", "DELETE"),
            ("TRUNCATE events", "TRUNCATE"),
        ] {
            let message = conn.batch_execute(sql).expect_err("the trigger refuses").to_string();
            let detail = format!("{message} {:?}", conn.batch_execute(sql).err());
            assert!(detail.contains("append-only"), "{sql}: {detail}");
            assert!(detail.contains(verb), "{sql}: {detail}");
        }
        assert_eq!(store.read_after(0, 100).expect("a read"), written, "the log is untouched");
    }

    #[test]
    fn envelopes_are_stored_as_exact_bytes() {
        let db = pg::TestDb::new();
        let store = PgStore::open(&db.url()).expect("the store opens");
        let written = seed(&store);
        let mut conn = db.client();
        let ty: String = conn
            .query_one("SELECT data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'envelope'", &[])
            .expect("the column")
            .get(0);
        assert_eq!(ty, "bytea");
        for rec in &written {
            let seq = i64::try_from(rec.seq).expect("a small seq");
            let bytes: Vec<u8> =
                conn.query_one("SELECT envelope FROM events WHERE seq = $1", &[&seq]).expect("the row").get(0);
            assert_eq!(bytes, rec.envelope, "seq {}", rec.seq);
        }
    }

    #[test]
    fn racing_appenders_on_separate_connections_stay_gapless() {
        let db = pg::TestDb::new();
        let url = db.url();
        let stores: Vec<Arc<PgStore>> =
            (0..4).map(|_| Arc::new(PgStore::open(&url).expect("a handle opens"))).collect();
        let genesis = batch(Head::EMPTY, vec![genesis()]);
        stores[0].append(Head::EMPTY, &genesis).expect("genesis");
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(w, store)| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut won = 0;
                    while won < 25 {
                        let head = store.head().expect("a head");
                        let records = batch(head, vec![change(&format!("W{w}"), json!(won))]);
                        match store.append(head, &records) {
                            Ok(_) => won += 1,
                            Err(StoreError::Conflict { .. }) => {}
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a writer thread");
        }
        let all = stores[0].read_after(0, 1000).expect("a read");
        assert_eq!(all.len(), 101);
        let mut head = Head::EMPTY;
        for rec in &all {
            verify_link(&head, rec).expect("every link verifies");
            head = Head { seq: rec.seq, hash: rec.hash };
        }
    }
}

/// Checks that only SQLite can make: the raw table, and a store closed and opened again.
mod sqlite_only {
    use super::*;

    fn raw(path: &std::path::Path) -> rusqlite::Connection {
        rusqlite::Connection::open(path).expect("a raw connection")
    }

    #[test]
    fn update_and_delete_are_refused_by_the_database() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path).expect("the store opens");
        let written = seed(&store);
        let conn = raw(&path);
        for (sql, verb) in [
            ("UPDATE events SET actor = 'mallory' WHERE seq = 2", "UPDATE"),
            ("UPDATE events SET envelope = x'7b7d' WHERE seq = 1", "UPDATE"),
            ("DELETE FROM events WHERE seq = 7", "DELETE"),
            ("DELETE FROM events", "DELETE"),
        ] {
            let err = conn.execute(sql, []).expect_err("the trigger refuses");
            let message = err.to_string();
            assert!(message.contains("the event log is append-only"), "{sql}: {message}");
            assert!(message.contains(verb), "{sql}: {message}");
        }
        assert_eq!(store.read_after(0, 100).expect("a read"), written, "the log is untouched");
    }

    #[test]
    fn the_log_survives_closing_and_opening_again() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("events.db");
        let written = {
            let store = SqliteStore::open(&path).expect("the store opens");
            seed(&store)
        };
        let store = SqliteStore::open(&path).expect("the store opens again");
        assert_eq!(store.head().expect("a head"), head_of(&written));
        assert_eq!(store.read_after(0, 100).expect("a read"), written);
        // And it keeps appending where it left off.
        let more = batch(head_of(&written), vec![change("AFTER_REOPEN", json!(1))]);
        assert_eq!(store.append(head_of(&written), &more).expect("appends"), head_of(&more));
    }
}
