//! The writer decides against its published state and learns of other processes' writes only from the
//! append's head check. Two ledgers on one SQLite file, neither tailing, stand in for two processes: the
//! stale one must conflict, catch up, re-decide and append after the other's events, never over them.

use cfgledger::store::StoreUrl;
use cfgledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{verify_link, Actor, Cause, Command, Head, Input, Source};
use std::path::Path;

fn open(path: &Path) -> Ledger {
    let mut opts = OpenOptions::new(StoreUrl::Sqlite(path.to_path_buf()), suite_catalog());
    opts.env_file = EnvFileChoice::None;
    opts.process_env.insert("AUTH_ENCRYPTION_SECRET".into(), "conflict-test-secret-0123456789".into());
    Ledger::open(opts).expect("open").0
}

fn ctx(name: &str) -> WriteContext {
    WriteContext {
        actor: Actor { name: name.into(), role: None, source: Source::Cli, address: None, request_id: None },
        cause: Cause::Cli { command: "test".into() },
        reason: None,
        bypass: false,
    }
}

fn set(l: &Ledger, key: &str, value: &str, who: &str) -> cfgledger::Outcome {
    l.execute(Command::Set { key: key.into(), value: Input::Text(value.into()) }, ctx(who)).expect("set")
}

#[test]
fn a_stale_writer_catches_up_and_re_decides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    let a = open(&path);
    let b = open(&path);
    assert_eq!(a.snapshot().head, b.snapshot().head);

    let first = set(&a, "LOG_LEVEL", "warn", "a");
    assert_eq!(first.seqs, Some((3, 3)), "after the genesis and the (empty) first seeding");
    assert_eq!(b.snapshot().head.seq, 2, "b has not looked at the log since it opened");

    // b's append conflicts on the moved head; b catches up and appends after a's event.
    let second = set(&b, "MAX_WORKERS", "9", "b");
    assert_eq!(second.seqs, Some((4, 4)));
    assert_eq!(b.settings().get_string("LOG_LEVEL").as_deref(), Some("warn"), "b folded a's change");

    // Re-deciding uses the caught-up state: setting what a already set is a no-op for b too.
    let again = set(&a, "CACHE_TTL", "2m", "a");
    assert_eq!(again.seqs, Some((5, 5)));
    let noop = set(&b, "CACHE_TTL", "120s", "b");
    assert_eq!(noop.seqs, None, "b re-decided against a's value and found nothing to change");
    assert_eq!(noop.head.seq, 5);

    // The file holds one gapless chain with both writers' events.
    let records = a.store().read_after(0, 100).expect("read");
    let mut head = Head::EMPTY;
    let actors: Vec<String> = records
        .iter()
        .map(|r| {
            let env = verify_link(&head, r).expect("the chain verifies");
            head = Head { seq: r.seq, hash: r.hash };
            env.actor.name
        })
        .collect();
    assert_eq!(actors, ["cfgledger", "cfgledger", "a", "b", "a"]);
}

#[test]
fn a_stale_no_op_is_checked_against_the_log_before_it_is_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.db");
    let a = open(&path);
    set(&a, "LOG_LEVEL", "warn", "a");
    let b = open(&path);
    assert_eq!(b.settings().get_string("LOG_LEVEL").as_deref(), Some("warn"));
    set(&a, "LOG_LEVEL", "error", "a");

    // b still believes the log says warn; setting warn must not be acknowledged as "unchanged".
    let outcome = set(&b, "LOG_LEVEL", "warn", "b");
    assert!(outcome.changed(), "b acknowledged a no-op against a stale state: {outcome:?}");
    assert_eq!(b.settings().get_string("LOG_LEVEL").as_deref(), Some("warn"));
    a.catch_up().expect("catch up");
    assert_eq!(a.settings().get_string("LOG_LEVEL").as_deref(), Some("warn"), "the log holds b's change");

    // Likewise a reset that looks like nothing to do against a stale state.
    let c = open(&path);
    set(&a, "CACHE_TTL", "2m", "a");
    let reset = c.execute(Command::Reset { key: "CACHE_TTL".into() }, ctx("c")).expect("reset");
    assert!(reset.changed(), "c's reset was dropped against its stale state");
}
