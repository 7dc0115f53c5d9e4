//! Opening a store whose log is longer than one read chunk exercises the pipelined fold (lanes that each
//! read and verify every other chunk, folded in order). It must give exactly the state of a plain
//! sequential fold, and a record altered deep in the log, or missing where two chunks meet, must still stop
//! the open, naming the first bad seq whichever lane read it.

use cfgledger::clock::SteppingClock;
use cfgledger::store::{sqlite::SqliteStore, EventStore, StoreUrl};
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions};
use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{build_batch, verify_link, Actor, Batch, Cause, ChainError, Event, Hash, Head, Timestamp};
use cfgledger_projections::SettingsState;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const EVENTS: u64 = 25_000;

fn options(path: &Path) -> OpenOptions {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), suite_catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env = BTreeMap::from([(
        "CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(),
        "rebuild-test-secret-0123456789".to_string(),
    )]);
    opts.clock = Arc::new(SteppingClock::new(Timestamp::from_micros(1_700_000_000_000_000)));
    opts
}

/// A store created through the ledger, then grown by `EVENTS` changes appended directly in big batches.
fn big_store(path: &Path) {
    drop(Ledger::open(options(path)).expect("create"));
    let store = SqliteStore::open(path).expect("reopen");
    let actor = Actor {
        name: "loader".into(),
        role: None,
        source: cfgledger_events::Source::Cli,
        address: None,
        request_id: None,
    };
    let keys = ["MAX_WORKERS", "TOOL_RATE_LIMIT", "TOOL_CONCURRENT_LIMIT", "MAX_PROMPT_SIZE"];
    let mut head = store.head().expect("head");
    let mut i = 0u64;
    while i < EVENTS {
        let batch = Batch { id: format!("b{i}"), cause: Cause::Cli { command: "load".into() }, reason: None };
        let events: Vec<Event> = (i..(i + 5_000).min(EVENTS))
            .map(|n| {
                let key = keys[usize::try_from(n % 4).expect("small")];
                Event::SettingChanged(SettingChanged {
                    key: key.into(),
                    value: StoredValue::Plain(json!(1 + (n % 200))),
                    previous: None,
                })
            })
            .collect();
        i += u64::try_from(events.len()).expect("small");
        let at = Timestamp::from_micros(1_800_000_000_000_000 + i64::try_from(i).expect("small"));
        let records: Vec<_> = build_batch(head, at, &actor, &batch, events).into_iter().map(|(_, r)| r).collect();
        head = store.append(head, &records).expect("append");
    }
}

#[test]
fn a_long_log_rebuilds_to_the_sequential_fold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.db");
    big_store(&path);

    let store = SqliteStore::open(&path).expect("open");
    let mut expected = SettingsState::new();
    let mut head = Head::EMPTY;
    for rec in store.read_after(0, usize::MAX).expect("read") {
        expected.apply(&verify_link(&head, &rec).expect("verifies"));
        head = Head { seq: rec.seq, hash: rec.hash };
    }
    assert!(head.seq > EVENTS, "more than two read chunks");

    let (ledger, _) = Ledger::open(options(&path)).expect("open");
    let snap = ledger.snapshot();
    assert_eq!(snap.head, head);
    assert_eq!(snap.state, expected);
    assert_eq!(
        ledger.settings().get_i64("MAX_WORKERS"),
        expected.get("MAX_WORKERS").and_then(|e| e.value.masked().as_i64())
    );
}

#[test]
fn an_altered_record_deep_in_a_long_log_stops_the_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.db");
    big_store(&path);
    let conn = rusqlite::Connection::open(&path).expect("raw connection");
    conn.execute_batch(
        "DROP TRIGGER events_reject_update; \
         UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), 'loader', 'l0ader') AS BLOB) \
         WHERE seq = 17003;",
    )
    .expect("tamper");
    drop(conn);
    match Ledger::open(options(&path)) {
        Err(Error::Chain(e)) => assert_eq!(e.seq, 17003, "{e}"),
        Err(other) => panic!("expected a chain error, got {other}"),
        Ok(_) => panic!("a tampered log opened"),
    }
}

/// Opens the store at `path` after running `sql` on it (its triggers dropped first), and returns the seq
/// of the chain error the open stops at.
fn open_after(path: &Path, sql: &str) -> u64 {
    match open_error_after(path, sql) {
        Error::Chain(e) => e.seq,
        other => panic!("expected a chain error, got {other}"),
    }
}

/// Runs `sql` on the store at `path` (its triggers dropped first), opens it, and returns the error the
/// open stops at.
fn open_error_after(path: &Path, sql: &str) -> Error {
    let conn = rusqlite::Connection::open(path).expect("raw connection");
    conn.execute_batch(&format!("DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete; {sql}"))
        .expect("tamper");
    drop(conn);
    match Ledger::open(options(path)) {
        Err(e) => e,
        Ok(_) => panic!("a damaged log opened"),
    }
}

#[test]
fn a_record_missing_where_two_chunks_meet_stops_the_open_at_the_gap() {
    // The first chunk (seqs 1 to 10,000) is folded inline; the lanes then read after seq 10,000 and after
    // seq 20,000. Without seq 20,000 the first lane's chunk runs on to 20,001, and the chain check must
    // refuse it there, as one walk would.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.db");
    big_store(&path);
    assert_eq!(open_after(&path, "DELETE FROM events WHERE seq = 20000;"), 20000);
}

#[test]
fn damage_in_two_lanes_chunks_is_named_at_the_first_bad_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.db");
    big_store(&path);
    let alter = |seq: u64| {
        format!(
            "UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), 'loader', 'l0ader') AS BLOB) \
             WHERE seq = {seq};"
        )
    };
    // Seq 23,456 is in the second lane's chunk, which may well be verified first; 12,345 is in the first's.
    assert_eq!(open_after(&path, &format!("{} {}", alter(23456), alter(12345))), 12345);
}

/// The first record of the store at `path` that does not verify, as the owned path finds it: every record
/// copied out ([`EventStore::read_after`]) and checked by the one verifier, decode and columns included.
fn first_bad_owned(path: &Path) -> ChainError {
    let store = SqliteStore::open(path).expect("open");
    let mut chain = ChainVerifier::new(Head::EMPTY);
    for rec in store.read_after(0, usize::MAX).expect("read") {
        if let Err(e) = chain.push_decoded(&rec) {
            return e;
        }
    }
    panic!("the owned path found nothing wrong")
}

/// The lanes of a rebuild verify each row where SQLite holds it, without copying it into a `Record`. Each
/// kind of damage in a lane's chunk (a stored hash, a link, an indexed column, an envelope that hashes
/// right but does not decode) must stop the open at its seq, with the very error the owned path gives.
#[test]
fn the_lanes_borrowed_rows_are_checked_as_the_owned_records_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pristine = dir.path().join("big.db");
    big_store(&pristine);

    // An envelope that is no longer one, given the hash of its new bytes (and the next record its link),
    // so that only the decode can find it.
    let undecodable = {
        let store = SqliteStore::open(&pristine).expect("open");
        let rec = store.read_after(15_004, 1).expect("read").remove(0);
        let bytes =
            String::from_utf8(rec.envelope).expect("UTF-8").replace("\"SettingChanged\"", "\"SettingChangedX\"");
        let hash = Hash::link(&rec.prev_hash, bytes.as_bytes());
        format!(
            "UPDATE events SET envelope = CAST('{}' AS BLOB), hash = x'{}' WHERE seq = 15005; \
             UPDATE events SET prev_hash = x'{}' WHERE seq = 15006;",
            bytes.replace('\'', "''"),
            hash.to_hex(),
            hash.to_hex()
        )
    };
    let cases = [
        ("a stored hash", 15_001, "UPDATE events SET hash = zeroblob(32) WHERE seq = 15001;".to_string()),
        ("a link", 15_002, "UPDATE events SET prev_hash = zeroblob(32) WHERE seq = 15002;".to_string()),
        ("the actor column", 15_003, "UPDATE events SET actor = 'someone' WHERE seq = 15003;".to_string()),
        ("the key column", 15_004, "UPDATE events SET key = 'OTHER_KEY' WHERE seq = 15004;".to_string()),
        ("the envelope", 15_005, undecodable),
    ];
    for (what, seq, sql) in cases {
        let path = dir.path().join(format!("damaged-{seq}.db"));
        SqliteStore::open(&pristine).expect("open").copy_to(&path).expect("a copy of the store");
        let found = match open_error_after(&path, &sql) {
            Error::Chain(e) => e,
            other => panic!("{what}: expected a chain error, got {other}"),
        };
        assert_eq!(found.seq, seq, "{what}: {found}");
        assert_eq!(found, first_bad_owned(&path), "{what}: the borrowed and the owned path disagree");
    }
}

/// A row the borrowed path cannot read as a record (a hash that is not 32 bytes, a column of another
/// type) stops the open, naming the row, as the owned path's read does.
#[test]
fn a_malformed_row_in_a_lane_s_chunk_stops_the_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pristine = dir.path().join("big.db");
    big_store(&pristine);
    let cases = [
        (
            "a short hash",
            "PRAGMA ignore_check_constraints = ON; UPDATE events SET hash = x'00' WHERE seq = 16001;",
            "seq 16001: a hash is not 32 bytes",
        ),
        ("a kind that is not text", "UPDATE events SET kind = x'00' WHERE seq = 16001;", "seq 16001: column 3"),
    ];
    for (i, (what, sql, message)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("damaged-{i}.db"));
        SqliteStore::open(&pristine).expect("open").copy_to(&path).expect("a copy of the store");
        let opened = open_error_after(&path, sql);
        assert!(matches!(opened, Error::Store(_)), "{what}: expected a store error, got {opened}");
        assert!(opened.to_string().contains(message), "{what}: {opened}");
        let owned = SqliteStore::open(&path).expect("open").read_after(16_000, 1).expect_err("the row is refused");
        assert!(owned.to_string().contains(message), "{what}: {owned}");
    }
}
