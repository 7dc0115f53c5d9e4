//! Integrity while serving, against a real `cfgledger serve` on SQLite and on PostgreSQL: a log tampered with
//! behind the binary's back (before its newest checkpoint, where the open's replay never looks) is found by
//! the integrity check at start, and damage made while the server runs is found by its background passes
//! or by the first read that meets it. Either way `/ready`, `/admin/verify`, the metrics and the log name
//! the first bad seq; writes are refused and nothing is appended; audit, history, diff and as-of answers
//! that would include the damage fail with `chain_broken` (never a partial answer or a bare 500), while
//! answers from before it and the current settings are still served. A corrupt checkpoint is reported,
//! never dropped silently. `/ready` tolerates a lag and says `disk_full` below the free-space floor. And
//! the documented recovery works: a backup (`log export`) or a mirror checked with `verify --anchor`.

mod instances_support;
mod pg;
#[path = "support/sql.rs"]
mod sql;

use instances_support::{eventually, Deployment, Instance, Reply};
use serde_json::json;
use std::time::Duration;

const KEY: &str = "MAX_WORKERS";

/// Where a deployment's store lives, and SQL run on it behind the binary's back.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(pg::TestDb),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    fn postgres() -> Backend {
        Backend::Postgres(pg::TestDb::new())
    }

    fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite://{}", dir.path().join("c.db").display()),
            Backend::Postgres(db) => db.url(),
        }
    }

    /// Runs `statements` and returns the rows, one line each with `|` between columns.
    fn sql(&self, statements: &str) -> String {
        match self {
            Backend::Sqlite(dir) => sql::run(&dir.path().join("c.db"), Duration::from_secs(10), statements)
                .unwrap_or_else(|e| panic!("{statements}: {e}")),
            Backend::Postgres(db) => {
                let mut client = db.client();
                let mut out = String::new();
                for message in client.simple_query(statements).unwrap_or_else(|e| panic!("{statements}: {e}")) {
                    if let postgres::SimpleQueryMessage::Row(row) = message {
                        let cells: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap_or_default()).collect();
                        out.push_str(&cells.join("|"));
                        out.push('\n');
                    }
                }
                out
            }
        }
    }

    /// Runs `change` on the events table with its append-only triggers out of the way.
    fn tamper(&self, change: &str) {
        match self {
            Backend::Sqlite(_) => {
                self.sql(&format!("DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete; {change}"));
            }
            Backend::Postgres(_) => {
                self.sql(&format!(
                    "ALTER TABLE events DISABLE TRIGGER USER; {change} ALTER TABLE events ENABLE TRIGGER USER;"
                ));
            }
        }
    }

    /// A bytes literal of `hex` in this dialect.
    fn bytes(&self, hex: &str) -> String {
        match self {
            Backend::Sqlite(_) => format!("X'{hex}'"),
            Backend::Postgres(_) => format!("decode('{hex}', 'hex')"),
        }
    }

    /// The hash stored at `seq`, in hex.
    fn hash_hex(&self, seq: u64) -> String {
        let query = match self {
            Backend::Sqlite(_) => format!("SELECT lower(hex(hash)) FROM events WHERE seq = {seq};"),
            Backend::Postgres(_) => format!("SELECT encode(hash, 'hex') FROM events WHERE seq = {seq};"),
        };
        self.sql(&query).trim().to_string()
    }

    fn count(&self, table: &str) -> u64 {
        self.sql(&format!("SELECT count(*) FROM {table};")).trim().parse().expect("a count")
    }
}

/// A store with at least twenty changes of `KEY` (from seq `first` on) and checkpoints every five events, one
/// of them above the tenth change, written by a server that is stopped again: the log, the admin token and
/// the seq of the first change.
fn store_with_checkpoints(backend: &Backend, dotenv: &str) -> (Deployment, String, u64) {
    let dep = Deployment::new(&backend.url(), &format!("CFGLEDGER_SNAPSHOT_INTERVAL=5\n{dotenv}"));
    let token = dep.admin_token();
    let server = serve(&dep);
    let mut first = 0;
    for i in 1..=20 {
        let reply = server.put(KEY, &token, json!(i));
        assert_eq!(reply.status, 200, "{}", reply.body);
        if i == 1 {
            first = reply.json()["seq"].as_u64().expect("a seq");
        }
    }
    // A checkpoint is skipped while the thread is still writing the one before, so keep changing the key
    // until one stands above the tenth change.
    let mut value = 20;
    eventually("a checkpoint above the tenth change", || {
        let newest: u64 = backend.sql("SELECT coalesce(max(seq), 0) FROM snapshots;").trim().parse().unwrap_or(0);
        if newest >= first + 10 {
            return Ok(());
        }
        value += 1;
        assert_eq!(server.put(KEY, &token, json!(value)).status, 200);
        Err(format!("the newest checkpoint is at seq {newest}"))
    });
    drop(server);
    (dep, token, first)
}

fn serve(dep: &Deployment) -> Instance {
    dep.serve_many(1, &[]).pop().expect("one instance")
}

fn get(server: &Instance, path: &str, token: &str) -> Reply {
    server.call("GET", path, Some(token), None)
}

/// Asserts `reply` is the integrity error that names `seq`.
fn names_damage(reply: &Reply, seq: u64, what: &str) {
    assert_eq!(reply.status, 500, "{what}: {}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "chain_broken", "{what}: {body}");
    assert_eq!(body["error"]["details"]["seq"], seq, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("seq {seq}")), "{what}: {message}");
}

/// The store's head as `/ready` reports it.
fn head(server: &Instance) -> u64 {
    server.ready().json()["head"].as_u64().expect("a head in /ready")
}

/// Everything a server on a log damaged at `bad` must do: say so, refuse writes without appending, fail
/// every answer that includes the damage, and still answer what does not.
fn assert_damaged(backend: &Backend, server: &Instance, token: &str, bad: u64, what: &str) {
    eventually(&format!("/ready to report the damage ({what})"), || {
        let ready = server.ready();
        if ready.json()["status"] == "damaged" {
            Ok(())
        } else {
            Err(format!("{} {}", ready.status, ready.body))
        }
    });
    let ready = server.ready();
    assert_eq!(ready.status, 503, "{what}: {}", ready.body);
    let body = ready.json();
    assert_eq!(body["integrity"]["state"], "damaged", "{what}: {body}");
    assert_eq!(body["integrity"]["first_bad_seq"], bad, "{what}: {body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains(&format!("seq {bad}"))), "{what}: {body}");

    let rows = backend.count("events");
    let before = head(server);
    let refused = server.put(KEY, token, json!(99));
    names_damage(&refused, bad, &format!("a write ({what})"));
    assert!(refused.body.contains("writes are refused"), "{what}: {}", refused.body);
    assert_eq!(backend.count("events"), rows, "{what}: a refused write appended");
    assert_eq!(head(server), before, "{what}: a refused write moved the head");

    names_damage(&get(server, &format!("/admin/config/audit?key={KEY}"), token), bad, &format!("audit ({what})"));
    names_damage(&get(server, "/admin/config/audit", token), bad, &format!("the whole audit trail ({what})"));
    names_damage(&get(server, &format!("/admin/config/{KEY}/history"), token), bad, &format!("history ({what})"));
    names_damage(
        &get(server, &format!("/admin/config/{KEY}?as_of=seq:{}", bad + 2), token),
        bad,
        &format!("as_of after the damage ({what})"),
    );
    names_damage(&get(server, "/admin/config/diff?from=seq:1", token), bad, &format!("diff ({what})"));
    names_damage(&get(server, "/admin/verify", token), bad, &format!("/admin/verify ({what})"));

    // What does not include the damage is still answered.
    let earlier = get(server, &format!("/admin/config/{KEY}?as_of=seq:{}", bad - 1), token);
    assert_eq!(earlier.status, 200, "as_of before the damage ({what}): {}", earlier.body);
    let current = get(server, &format!("/admin/config/{KEY}"), token);
    assert_eq!(current.status, 200, "the current value ({what}): {}", current.body);
    // Nothing after the first break is verified: a page above it fails too, rather than risk being short.
    let later = get(server, &format!("/admin/config/audit?key={KEY}&limit=2"), token);
    names_damage(&later, bad, &format!("the newest audit page, above the damage ({what})"));

    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(metrics.contains("cfgledger_integrity_damaged 1"), "{what}: {metrics}");
    assert!(metrics.contains(&format!("cfgledger_integrity_first_bad_seq {bad}")), "{what}: {metrics}");
    assert!(
        server.stderr().iter().any(|l| l.contains("the event log is damaged") && l.contains(&format!("\"seq\":{bad}"))),
        "{what}: no error log names seq {bad}\n{}",
        server.stderr_tail()
    );
    server.assert_alive();
}

/// Starts a server on a log damaged at `bad` by `tamper`, before the newest checkpoint, and checks it all.
fn damage_before_the_checkpoint_is_found_at_start(backend: Backend, tamper: impl Fn(&Backend, u64), what: &str) {
    let (dep, token, first) = store_with_checkpoints(&backend, "");
    let bad = first + 4;
    tamper(&backend, bad);
    let server = serve(&dep);
    assert_damaged(&backend, &server, &token, bad, what);
    // `cfgledger verify` agrees, with the integrity exit code.
    let out = dep.cmd().arg("verify").output().expect("verify runs");
    assert_eq!(out.status.code(), Some(4), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("at seq {bad}")), "{what}");
}

fn alter_envelope(b: &Backend, seq: u64) {
    let change = match b {
        Backend::Sqlite(_) => format!(
            "UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '\"plain\":5', '\"plain\":7') AS BLOB) WHERE seq = {seq};"
        ),
        Backend::Postgres(_) => format!(
            "UPDATE events SET envelope = convert_to(replace(convert_from(envelope, 'UTF8'), '\"plain\":5', '\"plain\":7'), 'UTF8') WHERE seq = {seq};"
        ),
    };
    b.tamper(&change);
}

fn delete_row(b: &Backend, seq: u64) {
    b.tamper(&format!("DELETE FROM events WHERE seq = {seq};"));
}

fn swap_hashes(b: &Backend, seq: u64) {
    let (mine, next) = (b.hash_hex(seq), b.hash_hex(seq + 1));
    b.tamper(&format!(
        "UPDATE events SET hash = {} WHERE seq = {seq}; UPDATE events SET hash = {} WHERE seq = {};",
        b.bytes(&next),
        b.bytes(&mine),
        seq + 1
    ));
}

fn edit_index_columns(b: &Backend, seq: u64) {
    b.tamper(&format!("UPDATE events SET key = 'mcpgateway:LOG_LEVEL', actor = 'mallory' WHERE seq = {seq};"));
}

#[test]
fn sqlite_an_altered_envelope_before_the_checkpoint_is_found_at_start() {
    let tamper = |b: &Backend, seq| {
        alter_envelope(b, seq);
        assert_eq!(
            b.sql(&format!(
                "SELECT count(*) FROM events WHERE seq = {seq} AND instr(CAST(envelope AS TEXT), '\"plain\":7') > 0;"
            ))
            .trim(),
            "1",
            "the tampering took effect"
        );
    };
    damage_before_the_checkpoint_is_found_at_start(Backend::sqlite(), tamper, "an altered envelope byte");
}

#[test]
fn sqlite_a_deleted_middle_row_is_found_at_start() {
    damage_before_the_checkpoint_is_found_at_start(Backend::sqlite(), delete_row, "a deleted middle row");
}

#[test]
fn sqlite_swapped_hashes_are_found_at_start() {
    damage_before_the_checkpoint_is_found_at_start(Backend::sqlite(), swap_hashes, "two swapped hashes");
}

#[test]
fn sqlite_edited_index_columns_are_found_at_start() {
    damage_before_the_checkpoint_is_found_at_start(
        Backend::sqlite(),
        edit_index_columns,
        "edited key and actor columns",
    );
}

#[test]
fn postgres_a_row_deleted_with_the_triggers_disabled_is_found_at_start() {
    damage_before_the_checkpoint_is_found_at_start(Backend::postgres(), delete_row, "a deleted row (PostgreSQL)");
}

#[test]
fn postgres_an_altered_envelope_is_found_at_start() {
    damage_before_the_checkpoint_is_found_at_start(
        Backend::postgres(),
        alter_envelope,
        "an altered envelope (PostgreSQL)",
    );
}

#[test]
fn damage_made_while_serving_is_found_by_the_background_check() {
    let backend = Backend::sqlite();
    let (dep, token, first) =
        store_with_checkpoints(&backend, "CFGLEDGER_INTEGRITY_CHECK_PAUSE=1s\nCFGLEDGER_INTEGRITY_CHECK_RATE=1000000");
    let server = serve(&dep);
    let ready = server.ready();
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["integrity"]["state"], "verified", "{}", ready.body);
    assert_eq!(server.put(KEY, &token, json!(42)).status, 200, "writes are taken on a verified log");
    let bad = first + 3;
    delete_row(&backend, bad);
    assert_damaged(&backend, &server, &token, bad, "a row deleted under a running server");
    let passes = server.ready().json()["integrity"]["passes"].as_u64().expect("passes");
    assert!(passes >= 1, "the first pass completed before the damage");
}

#[test]
fn a_record_that_fails_its_check_on_read_is_reported_at_once() {
    let backend = Backend::sqlite();
    // Background passes off: only the read can find it.
    let (dep, token, first) = store_with_checkpoints(&backend, "CFGLEDGER_INTEGRITY_CHECK_RATE=0");
    let server = serve(&dep);
    assert_eq!(server.ready().status, 200);
    let bad = first + 6;
    edit_index_columns(&backend, bad);
    // The row now claims another key: the audit of that key meets it, and refuses the page.
    let audit = get(&server, "/admin/config/audit?key=LOG_LEVEL", &token);
    names_damage(&audit, bad, "an audit page holding a record whose columns disagree with its envelope");
    assert_damaged(&backend, &server, &token, bad, "a record that failed its check on read");
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_kept_never_dropped_silently() {
    let backend = Backend::sqlite();
    let (dep, token, _) = store_with_checkpoints(&backend, "");
    let checkpoints = backend.count("snapshots");
    let bad: u64 = backend.sql("SELECT max(seq) FROM snapshots;").trim().parse().expect("a seq");
    backend.sql(&format!("UPDATE snapshots SET state = CAST('garbage' AS BLOB) WHERE seq = {bad};"));
    let server = serve(&dep);
    let ready = server.ready();
    assert_eq!(ready.status, 200, "a bad checkpoint does not stop a server: {}", ready.body);
    let body = ready.json();
    assert_eq!(body["integrity"]["state"], "verified", "{body}");
    assert_eq!(body["integrity"]["bad_checkpoints"][0]["seq"], bad, "{body}");
    let report = get(&server, "/admin/verify", &token);
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert_eq!(report["status"], "snapshots_bad", "{report}");
    assert_eq!(report["snapshots"]["bad"][0]["seq"], bad, "{report}");
    assert_eq!(report["background"]["bad_checkpoints"][0]["seq"], bad, "{report}");
    let metrics = server.call("GET", "/metrics", None, None).body;
    assert!(metrics.contains("cfgledger_integrity_bad_checkpoints 1"), "{metrics}");
    assert!(
        server.stderr().iter().any(|l| l.contains("checkpoint") && l.contains("\"ERROR\"")),
        "no error log about the checkpoint\n{}",
        server.stderr_tail()
    );
    assert_eq!(backend.count("snapshots"), checkpoints, "the bad checkpoint is still there for the operator");
    // The operator drops it; the report clears.
    drop(server);
    dep.ok(&["verify", "--drop-bad-snapshots"]);
    assert_eq!(backend.count("snapshots"), checkpoints - 1);
    let server = serve(&dep);
    let report = get(&server, "/admin/verify", &token).json();
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(server.ready().json()["integrity"].get("bad_checkpoints"), None);
}

#[test]
fn ready_tolerates_a_normal_lag_and_says_why_it_is_not_ready() {
    let backend = Backend::sqlite();
    // A server that notices other processes' writes only once a minute, and tolerates two events of lag.
    let dep = Deployment::new(
        &backend.url(),
        "CFGLEDGER_CONFIG_POLL_INTERVAL=1m\nCFGLEDGER_READY_MAX_LAG=2\nCFGLEDGER_READY_MAX_LAG_TIME=1h",
    );
    dep.admin_token();
    let server = dep.serve_many(1, &["--safety-poll", "1h"]).pop().expect("one instance");
    let ready = server.ready();
    assert_eq!((ready.status, ready.json()["status"].clone()), (200, json!("ready")), "{}", ready.body);
    dep.ok(&["config", "set", KEY, "3"]);
    let ready = server.ready();
    let body = ready.json();
    assert_eq!((ready.status, body["lag"].clone()), (200, json!(1)), "one event behind is ready: {body}");
    assert!(body["lag_ms"].as_u64().is_some(), "{body}");
    dep.ok(&["config", "set", KEY, "4"]);
    dep.ok(&["config", "set", KEY, "5"]);
    let ready = server.ready();
    let body = ready.json();
    assert_eq!(ready.status, 503, "{body}");
    assert_eq!(body["status"], "catching_up", "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("3 events behind")), "{body}");
}

#[test]
fn ready_says_disk_full_below_the_free_space_floor() {
    let backend = Backend::sqlite();
    let dep = Deployment::new(&backend.url(), "CFGLEDGER_READY_MIN_FREE_SPACE=0");
    let token = dep.admin_token();
    let server = serve(&dep);
    let ready = server.ready();
    let body = ready.json();
    assert_eq!(ready.status, 200, "{body}");
    let free = body["free_space_mb"].as_u64().unwrap_or_else(|| panic!("free space in /ready: {body}"));
    // A floor a gibibyte above what this machine's disk has free (the setting is hot).
    let floor = free + 1024;
    let reply = server.put("cfgledger:READY_MIN_FREE_SPACE", &token, json!(floor));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ready = server.ready();
    let body = ready.json();
    assert_eq!(ready.status, 503, "{body}");
    assert_eq!(body["status"], "disk_full", "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("READY_MIN_FREE_SPACE")), "{body}");
}

#[test]
fn a_checkpoint_row_with_malformed_hashes_is_reported_not_fatal() {
    let backend = Backend::sqlite();
    let (dep, token, _) = store_with_checkpoints(&backend, "");
    let bad: u64 = backend.sql("SELECT max(seq) FROM snapshots;").trim().parse().expect("a seq");
    // The table's CHECK constraints keep the program from writing such a row; someone else's connection can.
    backend.sql(&format!(
        "PRAGMA ignore_check_constraints = ON; UPDATE snapshots SET head_hash = X'00', digest = X'0102' WHERE seq = {bad};"
    ));
    let server = serve(&dep);
    let ready = server.ready();
    assert_eq!(ready.status, 200, "a malformed checkpoint does not stop a server: {}", ready.body);
    assert_eq!(ready.json()["integrity"]["bad_checkpoints"][0]["seq"], bad, "{}", ready.body);
    assert_eq!(server.put(KEY, &token, json!(3)).status, 200, "writes go on");
    drop(server);
    dep.ok(&["verify", "--drop-bad-snapshots"]);
    assert_eq!(backend.sql(&format!("SELECT count(*) FROM snapshots WHERE seq = {bad};")).trim(), "0");
}

#[test]
fn a_damaged_store_is_recovered_from_a_backup_or_a_mirror_checked_with_verify_anchor() {
    let backend = Backend::sqlite();
    let (dep, token, first) = store_with_checkpoints(&backend, "");
    // What an operator keeps: the head as `verify` printed it (the anchor), a backup and a mirror.
    let verified = dep.verify();
    let first_line = verified.lines().next().unwrap_or_default();
    let anchor = first_line.split("head ").nth(1).expect("verify prints the head").trim().to_string();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backup = dir.path().join("backup.jsonl");
    dep.ok(&["log", "export", "--out", backup.to_str().expect("utf-8")]);
    let mirror = format!("sqlite://{}", dir.path().join("mirror.db").display());
    dep.ok(&["clone", "--mirror", "--from", &backend.url(), "--to", &mirror]);

    let bad = first + 2;
    delete_row(&backend, bad);
    let out = dep.cmd().args(["verify", "--anchor", &anchor]).output().expect("verify runs");
    assert_eq!(out.status.code(), Some(4), "the damaged store fails against its anchor");

    // Restore the backup into a new store, and check it against the anchor.
    let restored = Deployment::new(&format!("sqlite://{}", dir.path().join("restored.db").display()), "");
    restored.ok(&["log", "import", backup.to_str().expect("utf-8")]);
    let ok = restored.ok(&["verify", "--anchor", &anchor]);
    assert!(ok.contains(&format!("head {anchor}")), "{ok}");
    let server = serve(&restored);
    let ready = server.ready();
    assert_eq!(ready.status, 200, "the restored store serves: {}", ready.body);
    assert_eq!(server.put(KEY, &token, json!(77)).status, 200, "and takes writes again");
    drop(server);

    // The mirror verifies against the same anchor.
    let mirrored = Deployment::new(&mirror, "");
    let ok = mirrored.ok(&["verify", "--anchor", &anchor]);
    assert!(ok.contains(&format!("head {anchor}")), "{ok}");
}
