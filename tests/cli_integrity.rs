//! The log's integrity as an auditor checks it: the append-only triggers, tampering behind the binary's back
//! with SQL on the database file (an altered envelope, an altered index column, a deleted row) and what
//! `cfgledger verify` and the other commands say about it, and paging through `cfgledger log`.

mod support;

use serde_json::Value;
use support::{kinds, parse_lines, seqs, Store};

/// A store of five events: genesis and seeding (1, 2), then `LOG_LEVEL=warn` (3), `MAX_WORKERS=8` (4) and
/// `CACHE_TTL=30s` (5).
fn five_events() -> Store {
    let s = Store::with_env("LOG_FORMAT=text\n");
    s.set("LOG_LEVEL", "warn");
    s.set("MAX_WORKERS", "8");
    s.set("CACHE_TTL", "30s");
    assert_eq!(seqs(&s.log()), [1, 2, 3, 4, 5]);
    s
}

const DROP_TRIGGERS: &str = "DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete;";

fn hash_of(log: &[Value], seq: u64) -> String {
    let e = log.iter().find(|e| e["seq"] == seq).unwrap_or_else(|| panic!("no seq {seq}"));
    e["hash"].as_str().expect("hash is a string").to_string()
}

#[test]
fn verify_passes_on_an_untouched_log_and_reports_the_head() {
    let s = five_events();
    let log = s.log();
    let out = s.ok(&["verify"]).stdout;
    assert_eq!(out, format!("ok: 5 events verified; head 5:{}\n", hash_of(&log, 5)));
}

#[test]
fn verify_and_log_refuse_a_missing_store_without_creating_one() {
    let s = Store::new();
    for args in [&["verify"][..], &["log"]] {
        let run = s.fails_with(3, args);
        assert_eq!(run.error_line(), format!("error: the store is unavailable: no store at {}", s.db_path().display()));
    }
    assert!(!s.db_path().exists());
}

#[test]
fn triggers_reject_update_and_delete() {
    let s = five_events();
    let before = s.log();
    let update = s.sqlite("UPDATE events SET kind = 'Forged' WHERE seq = 3;");
    assert_ne!(update.code, Some(0), "{update:?}");
    assert!(update.stderr.contains("the event log is append-only: UPDATE is not allowed"), "{}", update.stderr);
    let delete = s.sqlite("DELETE FROM events WHERE seq = 5;");
    assert_ne!(delete.code, Some(0), "{delete:?}");
    assert!(delete.stderr.contains("the event log is append-only: DELETE is not allowed"), "{}", delete.stderr);
    assert_eq!(s.log(), before);
    assert!(s.ok(&["verify"]).stdout.starts_with("ok: 5 events verified"));
}

#[test]
fn an_altered_envelope_is_named_by_verify() {
    let s = five_events();
    let tamper = s.sqlite(&format!(
        "{DROP_TRIGGERS} UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), 'warn', 'eror') AS BLOB) \
         WHERE seq = 3;"
    ));
    assert_eq!(tamper.code, Some(0), "{tamper:?}");
    let changed = s.sqlite("SELECT count(*) FROM events WHERE instr(CAST(envelope AS TEXT), 'eror') > 0;");
    assert_eq!(changed.stdout.trim(), "1", "the tampering took effect");

    let run = s.run(&["verify"]);
    assert_ne!(run.code, Some(0));
    assert_eq!(run.code, Some(4), "a broken chain is an integrity failure");
    let line = run.error_line();
    assert!(line.starts_with("error: the event log is broken at seq 3: stored hash "), "{line}");
    assert!(line.contains("but the envelope hashes to"), "{line}");

    // Every command that folds the log refuses it too, rather than serving the altered value.
    let get = s.fails_with(4, &["config", "get", "LOG_LEVEL"]);
    assert!(get.error_line().contains("the event log is broken at seq 3"), "{get:?}");
    assert_eq!(get.stdout, "");
    let log = s.fails_with(4, &["log", "--output", "json"]);
    assert!(log.error_line().contains("broken at seq 3"), "{log:?}");
    assert_eq!(seqs(&parse_lines(&log.stdout)), [1, 2], "the lines before the bad one are printed");
}

#[test]
fn an_altered_index_column_is_named_by_verify() {
    let s = five_events();
    let tamper = s.sqlite(&format!("{DROP_TRIGGERS} UPDATE events SET actor = 'mallory' WHERE seq = 4;"));
    assert_eq!(tamper.code, Some(0), "{tamper:?}");
    let run = s.fails_with(4, &["verify"]);
    let line = run.error_line();
    assert!(
        line.starts_with("error: the event log is broken at seq 4: indexed columns differ from the envelope"),
        "{line}"
    );
}

#[test]
fn an_overwritten_hash_is_named_by_verify() {
    let s = five_events();
    let tamper = s.sqlite(&format!("{DROP_TRIGGERS} UPDATE events SET hash = zeroblob(32) WHERE seq = 2;"));
    assert_eq!(tamper.code, Some(0), "{tamper:?}");
    let run = s.fails_with(4, &["verify"]);
    assert!(run.error_line().starts_with("error: the event log is broken at seq 2: stored hash "), "{run:?}");
}

#[test]
fn a_deleted_middle_row_is_named_by_verify() {
    let s = five_events();
    let tamper = s.sqlite(&format!("{DROP_TRIGGERS} DELETE FROM events WHERE seq = 3;"));
    assert_eq!(tamper.code, Some(0), "{tamper:?}");
    let run = s.fails_with(4, &["verify"]);
    let line = run.error_line();
    assert!(line.starts_with("error: the event log is broken at seq 3: expected seq 3 but found seq 4"), "{line}");
    let get = s.fails_with(4, &["config", "get", "MAX_WORKERS"]);
    assert!(get.error_line().contains("the event log is broken at seq 3"), "{get:?}");
}

/// Cutting events off the end leaves a log that is whole as far as the chain can tell: nothing inside the
/// database can prove the head, so plain `verify` accepts the shorter log. An anchor kept outside the
/// database (the head an earlier `verify` printed) catches it.
#[test]
fn a_deleted_last_row_verifies_as_shorter_unless_checked_against_an_anchor() {
    let s = five_events();
    let before = s.log();
    let anchor = format!("5:{}", hash_of(&before, 5));
    assert!(s.ok(&["verify", "--anchor", &anchor]).stdout.starts_with("ok: 5 events verified"));
    let tamper = s.sqlite(&format!("{DROP_TRIGGERS} DELETE FROM events WHERE seq = 5;"));
    assert_eq!(tamper.code, Some(0), "{tamper:?}");
    let cut = s.fails_with(4, &["verify", "--anchor", &anchor]);
    assert_eq!(
        cut.error_line(),
        "error: the event log is broken at seq 5: the log ends at seq 4 before the anchor: events were removed"
    );
    let wrong = format!("4:{}", hash_of(&before, 3));
    assert!(s.fails_with(4, &["verify", "--anchor", &wrong]).error_line().contains("the anchor says hash"));
    let out = s.ok(&["verify"]).stdout;
    assert_eq!(out, format!("ok: 4 events verified; head 4:{}\n", hash_of(&before, 4)));
    assert_eq!(s.log(), before[..4].to_vec());
    // The store goes on from there: the next append continues the chain from seq 4.
    let item = s.get_json("CACHE_TTL");
    assert_eq!((item["value"].as_str(), item["source"].as_str()), (Some("10m"), Some("default")));
    assert_eq!(s.set("CACHE_TTL", "1m").stdout, "CACHE_TTL = 1m (seq 5)\n");
    assert!(s.ok(&["verify"]).stdout.starts_with("ok: 5 events verified"));
}

#[test]
fn log_pages_with_after_and_limit() {
    let s = five_events();
    s.set("LOG_LEVEL", "error");
    s.set("MAX_WORKERS", "16");
    let all = s.log();
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6, 7]);

    let page = parse_lines(&s.ok(&["log", "--after", "2", "--limit", "3", "--output", "json"]).stdout);
    assert_eq!(seqs(&page), [3, 4, 5]);
    assert_eq!(page, all[2..5].to_vec(), "a page is a slice of the whole log");
    for e in &page {
        let obj = e.as_object().expect("an object per line");
        for field in ["seq", "occurred_at", "kind", "actor", "batch", "payload", "prev_hash", "hash"] {
            assert!(obj.contains_key(field), "{field} missing from {e}");
        }
        assert_eq!(e["kind"], "SettingChanged");
        assert_eq!(e["actor"]["name"], support::ACTOR);
        assert_eq!(e["actor"]["source"], "cli");
        assert_eq!(e["batch"]["cause"]["command"], "config set");
        assert_eq!(e["hash"].as_str().map(str::len), Some(64));
    }
    assert_eq!(page[0]["payload"]["key"], "mcpgateway:LOG_LEVEL", "the log holds the qualified key");
    assert_eq!(page[0]["payload"]["value"]["plain"], "warn");
    assert_eq!(all[5]["payload"]["previous"]["plain"], "warn", "a change records the value it replaced");

    // Every event links to the one before it, across page boundaries too.
    assert_eq!(all[0]["prev_hash"], "0".repeat(64));
    for pair in all.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "seq {}", pair[1]["seq"]);
    }
    assert_eq!(page[0]["prev_hash"], all[1]["hash"]);
    let times: Vec<&str> = all.iter().filter_map(|e| e["occurred_at"].as_str()).collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "time never goes backwards: {times:?}");

    let tail = parse_lines(&s.ok(&["log", "--after", "5", "--output", "json"]).stdout);
    assert_eq!(seqs(&tail), [6, 7]);
    let capped = parse_lines(&s.ok(&["log", "--limit", "2", "--output", "json"]).stdout);
    assert_eq!(seqs(&capped), [1, 2]);
    assert_eq!(s.ok(&["log", "--after", "7", "--output", "json"]).stdout, "");
    assert_eq!(s.ok(&["log", "--after", "100"]).stdout, "");
    assert_eq!(s.ok(&["log", "--limit", "0"]).stdout, "");

    let text = s.ok(&["log", "--after", "5"]).stdout;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0][0], "6");
    assert_eq!(lines[0][2..], ["SettingChanged", "mcpgateway:LOG_LEVEL", support::ACTOR, "(cli)"]);
    assert_eq!(kinds(&all)[..2], ["StoreCreated", "EnvSeeded"]);
}
