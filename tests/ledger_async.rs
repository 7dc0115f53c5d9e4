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
