//! The ledger from async code: `execute_async` awaits the writer without blocking the runtime, and the
//! blocking `execute` called from inside a runtime still completes instead of panicking (the writer is
//! its own thread, and the blocking reply channel is a std one).

use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{Actor, Cause, Command, Input, Source};

fn ctx() -> WriteContext {
    WriteContext {
        actor: Actor { name: "async".into(), role: None, source: Source::Api, address: None, request_id: None },
        cause: Cause::Api { method: "PUT".into(), path: "/admin/config/LOG_LEVEL".into() },
        reason: None,
        bypass: false,
    }
}

fn memory_ledger() -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Memory, suite_catalog());
    opts.env_file = EnvFileChoice::None;
    Ledger::open(opts).expect("open").0
}

#[tokio::test]
async fn execute_async_and_blocking_execute_both_work_inside_a_runtime() {
    let ledger = memory_ledger();
    let set = |v: &str| Command::Set { key: "LOG_LEVEL".into(), value: Input::Text(v.into()) };
    let a = ledger.execute_async(set("warn"), ctx()).await.expect("async set");
    assert_eq!(a.seqs, Some((3, 3)));
    let b = ledger.execute(set("error"), ctx()).expect("blocking set inside a runtime");
    assert_eq!(b.seqs, Some((4, 4)));
    assert_eq!(ledger.settings().get_string("LOG_LEVEL").as_deref(), Some("error"));
    let rejected = ledger.execute_async(set("loud"), ctx()).await.expect_err("an invalid value");
    assert!(rejected.is_rejection());
    assert_eq!(ledger.snapshot().head.seq, 4, "the rejection appended nothing");
}

/// The records a process appended are kept in memory for the watch streams, byte for byte what the store
/// holds; once another process appends, the gap is never papered over: those seqs come from the store.
#[test]
fn recent_records_are_the_stored_ones_and_never_span_another_process_append() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let open = || {
        let mut opts = OpenOptions::new(StoreUrl::Sqlite(dir.path().join("c.db")), suite_catalog());
        opts.env_file = EnvFileChoice::None;
        opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), "recent-records-secret".into());
        Ledger::open(opts).expect("open").0
    };
    // b opens first, so the store's first records (its seeding) are b's, not a's.
    let b = open();
    let a = open();
    let set = |v: &str| Command::Set { key: "LOG_LEVEL".into(), value: Input::Text(v.into()) };
    let start = a.snapshot().head.seq;
    a.execute(set("warn"), ctx()).expect("a set");
    a.execute(set("error"), ctx()).expect("a set");
    let head = a.snapshot().head.seq;
    let recent = a.recent_after(start, head, 10).expect("both appends are in memory");
    let stored = a.store().read_after(start, 10).expect("the store reads");
    assert_eq!(recent.len(), 2);
    for (mem, disk) in recent.iter().zip(&stored) {
        assert_eq!(
            (mem.seq, &mem.envelope, mem.hash, mem.prev_hash),
            (disk.seq, &disk.envelope, disk.hash, disk.prev_hash)
        );
    }
    assert_eq!(a.recent_after(start, head, 1).expect("a limit").len(), 1, "the limit holds");
    assert!(start > 0, "the store was seeded");
    assert!(a.recent_after(start - 1, head, 10).is_none(), "seqs a did not append come from the store");

    // Another process appends; this one's next append does not continue what it holds.
    b.execute(set("info"), ctx()).expect("b's set");
    a.execute(set("debug"), ctx()).expect("a's set after b's");
    let now = a.snapshot().head.seq;
    assert!(a.recent_after(head, now, 10).is_none(), "b's record is not in a's memory");
    let last = a.recent_after(now - 1, now, 10).expect("a's own last append");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].hash, a.store().read_after(now - 1, 1).expect("reads")[0].hash);
}
