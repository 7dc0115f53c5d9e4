//! Opening a store whose log is longer than one read chunk exercises the pipelined fold (lanes that each
//! read and verify every other chunk, folded in order). It must give exactly the state of a plain
//! sequential fold, and a record altered deep in the log, or missing where two chunks meet, must still stop
//! the open, naming the first bad seq whichever lane read it.

use cfgledger::clock::SteppingClock;
use cfgledger::store::{sqlite::SqliteStore, EventStore, StoreUrl};
use cfgledger::{EnvFileChoice, Error, Ledger, OpenOptions};
use cfgledger_events::event::{SettingChanged, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{build_batch, verify_link, Actor, Batch, Cause, Event, Head, Timestamp};
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
    let conn = rusqlite::Connection::open(path).expect("raw connection");
    conn.execute_batch(&format!("DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete; {sql}"))
        .expect("tamper");
    drop(conn);
    match Ledger::open(options(path)) {
        Err(Error::Chain(e)) => e.seq,
        Err(other) => panic!("expected a chain error, got {other}"),
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
