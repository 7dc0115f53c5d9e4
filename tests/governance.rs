//! Governance (issue 18, parts 1 and 2) against the real binary: four-eyes change requests over the REST API
//! and the CLI (self-approval refused, each approver counted once, an edit withdrawing approvals, a stale
//! request re-validated, reject and withdraw, the policy changing only through a request, the emergency
//! bypass recorded as an event, a metric and a log line), and scheduled requests applied exactly once by two
//! servers racing on one PostgreSQL store, suspended when their base changed, and reported late when applied
//! after a stop.

mod api_support;
mod pg;

use api_support::{eventually, eventually_within, four_eyes_policy, install_policy, Reply, Server, Store};

/// How long a scheduled apply (1 s scheduler ticks) may take to show.
const MINUTE: Duration = Duration::from_secs(60);
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "webhook-plaintext-5be1c9-never-in-the-log";

/// Runs `cfgledger ARGS` on the store as `actor`; returns stdout, panicking unless it succeeds.
fn as_user(store: &Store, actor: &str, args: &[&str]) -> String {
    let out = store.cmd_as(actor).args(args).output().expect("the cfgledger binary runs");
    assert!(out.status.success(), "cfgledger {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// alice proposes the tests' policy through the CLI on the store (applied at once: the empty policy asks none).
fn propose_policy_cli(store: &Store) {
    let policy_file = store.dir().join("policy.json");
    std::fs::write(&policy_file, four_eyes_policy("carol").to_string()).expect("write the policy");
    let path = policy_file.to_str().expect("a path");
    as_user(store, "alice", &["request", "propose", "--policy", path, "--reason", "four eyes"]);
}

struct Team {
    alice: String,
    bob: String,
    carol: String,
    viewer: String,
}

fn team(store: &Store) -> Team {
    for name in ["alice", "bob", "carol"] {
        store.add_user(name, "platform_admin", &format!("{name}-password-123"));
    }
    store.add_user("vic", "viewer", "vic-password-123");
    Team {
        alice: store.token("alice", "platform_admin"),
        bob: store.token("bob", "platform_admin"),
        carol: store.token("carol", "platform_admin"),
        viewer: store.token("vic", "viewer"),
    }
}

fn propose(server: &Server, token: &str, changes: Value, reason: &str) -> Reply {
    server.send_json("POST", "/admin/requests", Some(token), &json!({"changes": changes, "reason": reason}))
}

fn review(server: &Server, token: &str, id: u64, verb: &str) -> Reply {
    server.send_json("POST", &format!("/admin/requests/{id}/{verb}"), Some(token), &json!({}))
}

fn request(server: &Server, token: &str, id: u64) -> Value {
    server.get(&format!("/admin/requests/{id}"), token).ok_json()
}

fn value_of(server: &Server, token: &str, key: &str) -> Value {
    server.get(&format!("/admin/config/{key}"), token).ok_json()["value"].clone()
}

fn count_kind(log: &[Value], kind: &str) -> usize {
    log.iter().filter(|e| e["kind"] == kind).count()
}

#[test]
fn four_eyes_over_the_api() {
    let store = Store::new("");
    let t = team(&store);
    let server = store.serve(&[]);
    install_policy(&server, &t.alice, &four_eyes_policy("carol"));
    let policy_view = server.get("/admin/policy", &t.viewer).ok_json();
    assert_eq!(policy_view["policy"]["bypass"], json!(["carol"]));
    assert_eq!(policy_view["policy_approvals"], 2, "a policy change needs as many as its strictest rule");

    // A direct change of a governed key is refused and appends nothing; a logging key applies directly.
    let head = server.head();
    let refused = server.put("MAX_TOOL_TIMEOUT", &t.alice, json!("90s"));
    assert!(refused.error_message(403, "approval_required").contains("needs 2 approvals"), "{}", refused.body);
    assert_eq!(server.head(), head, "a refused direct change appends nothing");
    assert_eq!(server.put("LOG_LEVEL", &t.alice, json!("DEBUG")).status, 200);

    // A request needs a reason, and validates against its base.
    let no_reason = server.send_json(
        "POST",
        "/admin/requests",
        Some(&t.alice),
        &json!({"changes": [{"op": "set", "key": "MAX_WORKERS", "value": 4}]}),
    );
    no_reason.error(400, "bad_request");
    let invalid = propose(&server, &t.alice, json!([{"op": "set", "key": "MAX_WORKERS", "value": "many"}]), "x");
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    let viewer = propose(&server, &t.viewer, json!([{"op": "set", "key": "MAX_WORKERS", "value": 4}]), "x");
    viewer.error(403, "forbidden");

    // alice proposes a secret and a limit: 2 approvals, the secret masked and never stored in plaintext.
    let reply = propose(
        &server,
        &t.alice,
        json!([
            {"op": "set", "key": "WEBHOOK_SECRET", "value": SECRET},
            {"op": "set", "key": "MAX_TOOL_TIMEOUT", "value": "90s"}
        ]),
        "longer tool calls",
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let r = reply.json();
    let id = r["id"].as_u64().expect("an id");
    assert_eq!((r["status"].as_str(), r["required_approvals"].as_u64()), (Some("open"), Some(2)));
    assert!(!reply.body.contains(SECRET), "the proposal's answer shows the secret: {}", reply.body);
    assert_eq!(r["changes"][0]["value"], "********");

    // The author cannot approve; a viewer cannot; bob can, once.
    review(&server, &t.alice, id, "approve").error(403, "forbidden");
    review(&server, &t.viewer, id, "approve").error(403, "forbidden");
    assert_eq!(review(&server, &t.bob, id, "approve").ok_json()["approvals"].as_array().map(Vec::len), Some(1));
    let twice = review(&server, &t.bob, id, "approve");
    assert!(twice.error_message(409, "conflict").contains("counts once"), "{}", twice.body);

    // Only the author edits; an edit withdraws the approvals and bases the request again.
    let edit_body = json!({"changes": [
        {"op": "set", "key": "WEBHOOK_SECRET", "value": SECRET},
        {"op": "set", "key": "MAX_TOOL_TIMEOUT", "value": "120s"}
    ], "reason": "even longer"});
    server.send_json("PUT", &format!("/admin/requests/{id}"), Some(&t.bob), &edit_body).error(403, "forbidden");
    let edited = server.send_json("PUT", &format!("/admin/requests/{id}"), Some(&t.alice), &edit_body).ok_json();
    assert_eq!((edited["revision"].as_u64(), edited["approvals"].as_array().map(Vec::len)), (Some(1), Some(0)));
    let log = store.log();
    let edit_event = log.iter().find(|e| e["kind"] == "ChangeRequestEdited").expect("an edit event");
    assert_eq!(edit_event["payload"]["withdrawn_approvals"], json!(["bob"]));

    // Two approvals apply it as one batch, with the request and its approvers in the audit trail.
    assert_eq!(review(&server, &t.bob, id, "approve").ok_json()["status"], "open");
    let applied = review(&server, &t.carol, id, "approve").ok_json();
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(value_of(&server, &t.alice, "MAX_TOOL_TIMEOUT"), "2m");
    assert_eq!(value_of(&server, &t.alice, "WEBHOOK_SECRET"), "********");
    let audit = server.get("/admin/config/audit?key=MAX_TOOL_TIMEOUT", &t.alice).ok_json();
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "set");
    assert_eq!(entry["change_request"]["id"], id);
    assert_eq!(entry["change_request"]["author"], "alice");
    assert_eq!(entry["change_request"]["approvers"], json!(["bob", "carol"]));
    let batch = applied["applied"]["batch"].as_str().expect("a batch");
    let log = store.log();
    let in_batch: Vec<&str> =
        log.iter().filter(|e| e["batch"]["id"] == batch).map(|e| e["kind"].as_str().unwrap_or_default()).collect();
    assert_eq!(in_batch, ["ChangeRequestApproved", "ChangeRequestApplied", "SettingChanged", "SettingChanged"]);
    let bytes = store.database_bytes();
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in the store in plaintext");

    // A request whose base changed under it is stale; it is re-validated and applies with the conflict shown.
    let stale_id = propose(&server, &t.alice, json!([{"op": "set", "key": "MAX_WORKERS", "value": 9}]), "more workers")
        .json()["id"]
        .as_u64()
        .expect("an id");
    // The emergency bypass: refused to a user the policy does not list, recorded loudly for one it does.
    let bypass_body = json!({"value": 7, "reason": "incident 42"});
    let refused = server
        .request("PUT", "/admin/config/MAX_WORKERS", Some(&t.alice))
        .set("X-Emergency-Bypass", "true")
        .send_json(&bypass_body);
    let refused = match refused {
        Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap_or_default()),
        other => panic!("alice's bypass was not refused: {other:?}"),
    };
    assert_eq!(refused.0, 403, "{}", refused.1);
    assert!(refused.1.contains("may not use the emergency bypass"), "{}", refused.1);
    let bypassed = server
        .request("PUT", "/admin/config/MAX_WORKERS", Some(&t.carol))
        .set("X-Emergency-Bypass", "true")
        .send_json(&bypass_body)
        .expect("carol's bypass applies");
    assert_eq!(bypassed.status(), 200);
    let log = store.log();
    let used = log.iter().find(|e| e["kind"] == "EmergencyBypassUsed").expect("the bypass is an event");
    assert_eq!(used["payload"]["by"], "carol");
    assert_eq!(used["payload"]["bypassed"][0]["subject"], "mcpgateway:MAX_WORKERS");
    assert_eq!(used["batch"]["reason"], "incident 42");
    eventually("the bypass's warning in the server's log", || server.logged(|l| l.contains("EMERGENCY BYPASS")));
    let metrics = server.call("GET", "/metrics", None).body;
    assert!(
        metrics.lines().any(|l| l.starts_with("cfgledger_emergency_bypass_total") && l.ends_with(" 1")),
        "no bypass metric:\n{metrics}"
    );
    let stale = request(&server, &t.alice, stale_id);
    assert_eq!(stale["stale"], true, "{stale}");
    assert_eq!(stale["conflicts"][0]["subject"], "mcpgateway:MAX_WORKERS");
    let applied = review(&server, &t.bob, stale_id, "approve").ok_json();
    assert_eq!(applied["status"], "applied");
    assert_eq!(applied["conflicts"][0]["subject"], "mcpgateway:MAX_WORKERS", "the conflict is kept: {applied}");
    assert_eq!(value_of(&server, &t.alice, "MAX_WORKERS"), 9);

    // A stale request that no longer holds is not applied: the approval is refused with the conflict.
    let tool = json!({"name": "search", "url": "http://127.0.0.1:9/search", "integration_type": "REST"});
    let create_id = propose(&server, &t.alice, json!([{"op": "create", "kind": "tools", "fields": tool}]), "a tool")
        .json()["id"]
        .as_u64()
        .expect("an id");
    let created = server
        .request("POST", "/tools", Some(&t.carol))
        .set("X-Emergency-Bypass", "true")
        .send_json(&tool)
        .expect("carol creates it with the bypass");
    assert_eq!(created.status(), 201);
    let head = server.head();
    let blocked = review(&server, &t.bob, create_id, "approve");
    let message = blocked.error_message(409, "conflict");
    assert!(message.contains("no longer applies") && message.contains("tools/search"), "{message}");
    assert_eq!(server.head(), head, "a refused approval appends nothing");
    assert_eq!(request(&server, &t.alice, create_id)["status"], "open");

    // Reject (not by the author) and withdraw (only by the author) close a request for good.
    review(&server, &t.alice, create_id, "reject").error(403, "forbidden");
    assert_eq!(review(&server, &t.carol, create_id, "reject").ok_json()["status"], "rejected");
    review(&server, &t.bob, create_id, "approve").error(409, "state");
    let other = propose(&server, &t.alice, json!([{"op": "set", "key": "MAX_WORKERS", "value": 3}]), "fewer").json()
        ["id"]
        .as_u64()
        .expect("an id");
    review(&server, &t.bob, other, "withdraw").error(403, "forbidden");
    assert_eq!(review(&server, &t.alice, other, "withdraw").ok_json()["status"], "withdrawn");

    // The policy itself changes only through an approved request: here it needs 2.
    let loosen = propose(&server, &t.alice, json!([{"op": "policy", "policy": {"rules": []}}]), "loosen");
    let loosen = loosen.json();
    assert_eq!((loosen["status"].as_str(), loosen["required_approvals"].as_u64()), (Some("open"), Some(2)));
    assert_eq!(server.get("/admin/policy", &t.alice).ok_json()["policy"]["rules"].as_array().map(Vec::len), Some(4));

    // Everything above is in the log, and the list filters by status.
    let log = store.log();
    for kind in [
        "ChangeRequestProposed",
        "ChangeRequestApproved",
        "ChangeRequestEdited",
        "ChangeRequestApplied",
        "ChangeRequestRejected",
        "ChangeRequestWithdrawn",
        "PolicyChanged",
        "EmergencyBypassUsed",
    ] {
        assert!(count_kind(&log, kind) > 0, "no {kind} in the log");
    }
    let open = server.get("/admin/requests?status=open", &t.viewer).ok_json();
    let ids: Vec<u64> = open["requests"].as_array().expect("a list").iter().filter_map(|r| r["id"].as_u64()).collect();
    assert_eq!(ids, [loosen["id"].as_u64().expect("an id")]);
    server.get("/admin/requests?status=maybe", &t.viewer).error(400, "bad_request");
    server.get("/admin/requests/999", &t.viewer).error(404, "not_found");
    store.ok(&["verify"]);
}

#[test]
fn the_cli_proposes_and_reviews_on_the_store_and_through_a_server_alike() {
    let store = Store::new("");
    let t = team(&store);
    propose_policy_cli(&store);
    assert!(store.ok(&["policy", "show"]).contains("mcpgateway/limits"));

    // Local mode: the same rules as the API, with exit code 1 for a refusal.
    let out = store.cmd_as("alice").args(["config", "set", "MAX_TOOL_TIMEOUT", "90s"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs 2 approvals"));
    let shown = as_user(
        &store,
        "alice",
        &["request", "propose", "--set", "MAX_TOOL_TIMEOUT=90s", "--reason", "longer", "--output", "json"],
    );
    let id = serde_json::from_str::<Value>(&shown).expect("JSON")["id"].as_u64().expect("an id");
    let own = store.cmd_as("alice").args(["request", "approve", &id.to_string()]).output().expect("runs");
    assert_eq!(own.status.code(), Some(1), "self-approval must be refused");
    as_user(&store, "bob", &["request", "approve", &id.to_string()]);

    // Through a server: the token's user is the actor; the same answers.
    let server = store.serve(&[]);
    let remote = |token: &str, args: &[&str]| {
        store.cmd().env("CFGLEDGER_TOKEN", token).args(["--server", &server.url]).args(args).output().expect("runs")
    };
    let again = remote(&t.bob, &["request", "approve", &id.to_string()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("counts once"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let done = remote(&t.carol, &["request", "approve", &id.to_string()]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stdout).contains("applied"));
    let list = remote(&t.viewer, &["request", "list", "--status", "applied", "--output", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).expect("a JSON list");
    assert_eq!(list["requests"].as_array().map(Vec::len), Some(2), "the policy's request and this one: {list}");
    // The bypass through a server asks with the header; a user not listed is refused with exit code 1.
    let refused = remote(&t.alice, &["--emergency-bypass", "config", "set", "MAX_WORKERS", "5"]);
    assert_eq!(refused.status.code(), Some(1));
    let allowed =
        remote(&t.carol, &["--emergency-bypass", "config", "set", "MAX_WORKERS", "5", "--reason", "incident"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert_eq!(count_kind(&store.log(), "EmergencyBypassUsed"), 1);
}

/// The time now, by the same clock the servers read.
fn now() -> cfgledger_events::Timestamp {
    cfgledger::clock::Clock::now(&cfgledger::clock::SystemClock)
}

/// An RFC 3339 time `secs` seconds from now.
fn in_secs(secs: i64) -> String {
    cfgledger_events::Timestamp(now().0 + secs * 1_000_000).to_string()
}

#[test]
fn scheduled_requests_apply_once_across_two_servers_on_postgres_and_suspend_when_their_base_moved() {
    let db = pg::TestDb::new();
    let store = Store::on_db("", &db.url());
    let t = team(&store);
    let a = store.serve(&[]);
    let b = store.serve(&[]);
    install_policy(&a, &t.alice, &four_eyes_policy("carol"));

    // Approved for a time a few seconds ahead: both servers' schedulers race for it; one applies it, once.
    let at = in_secs(3);
    let body =
        json!({"changes": [{"op": "set", "key": "MAX_WORKERS", "value": 12}], "apply_at": at, "reason": "at night"});
    let r = a.send_json("POST", "/admin/requests", Some(&t.alice), &body).ok_json();
    let id = r["id"].as_u64().expect("an id");
    assert_eq!(r["status"], "open");
    assert_eq!(review(&b, &t.bob, id, "approve").ok_json()["status"], "scheduled");
    assert_ne!(value_of(&a, &t.alice, "MAX_WORKERS"), 12, "nothing applies before its time");
    eventually_within("the scheduled request applied", MINUTE, || request(&a, &t.alice, id)["status"] == "applied");
    eventually("both servers see the value", || {
        value_of(&a, &t.alice, "MAX_WORKERS") == 12 && value_of(&b, &t.alice, "MAX_WORKERS") == 12
    });
    let log = store.log();
    let applied: Vec<&Value> =
        log.iter().filter(|e| e["kind"] == "ChangeRequestApplied" && e["payload"]["id"] == id).collect();
    assert_eq!(applied.len(), 1, "applied more than once: {applied:?}");
    assert_eq!(applied[0]["batch"]["cause"], json!({"type": "scheduled", "request": id}));
    assert!(applied[0]["payload"].get("late_secs").is_none(), "on time is not late: {}", applied[0]);
    let sets =
        log.iter().filter(|e| e["kind"] == "SettingChanged" && e["payload"]["key"] == "mcpgateway:MAX_WORKERS").count();
    assert_eq!(sets, 1);

    // A scheduled request whose key changed before its time is suspended, never applied blind.
    let body = json!({"changes": [{"op": "set", "key": "MAX_WORKERS", "value": 20}], "apply_at": in_secs(4), "reason": "later"});
    let id2 = a.send_json("POST", "/admin/requests", Some(&t.alice), &body).ok_json()["id"].as_u64().expect("an id");
    assert_eq!(review(&a, &t.bob, id2, "approve").ok_json()["status"], "scheduled");
    let bypassed = a
        .request("PUT", "/admin/config/MAX_WORKERS", Some(&t.carol))
        .set("X-Emergency-Bypass", "true")
        .send_json(json!({"value": 15, "reason": "incident"}))
        .expect("carol's bypass");
    assert_eq!(bypassed.status(), 200);
    eventually_within("the request suspended", MINUTE, || request(&b, &t.alice, id2)["status"] == "suspended");
    let suspended = request(&b, &t.alice, id2);
    assert_eq!(suspended["conflicts"][0]["subject"], "mcpgateway:MAX_WORKERS", "{suspended}");
    assert_eq!(value_of(&b, &t.alice, "MAX_WORKERS"), 15, "the suspended value was not applied");
    let log = store.log();
    assert_eq!(
        log.iter().filter(|e| e["kind"] == "ChangeRequestSuspended" && e["payload"]["id"] == id2).count(),
        1,
        "suspended once"
    );
    eventually("the suspension's warning", || {
        a.logged(|l| l.contains("suspended")) || b.logged(|l| l.contains("suspended"))
    });
    store.ok(&["verify"]);
}

#[test]
fn a_scheduled_request_applied_after_a_stop_is_reported_late() {
    let store = Store::new("CFGLEDGER_SCHEDULE_LATE_AFTER=1s");
    let t = team(&store);
    propose_policy_cli(&store);
    let at = in_secs(2);
    let shown = as_user(
        &store,
        "alice",
        &["request", "propose", "--set", "MAX_WORKERS=6", "--at", &at, "--reason", "tonight", "--output", "json"],
    );
    let id = serde_json::from_str::<Value>(&shown).expect("JSON")["id"].as_u64().expect("an id");
    as_user(&store, "bob", &["request", "approve", &id.to_string()]);
    // No server runs at the apply time: the outage. The apply time and the grace of 1 s pass first.
    let deadline = cfgledger_events::Timestamp(now().0 + 5_000_000);
    eventually_within("the apply time and its grace to pass", Duration::from_secs(10), || now() >= deadline);
    let server = store.serve(&[]);
    eventually_within("the late apply", MINUTE, || request(&server, &t.alice, id)["status"] == "applied");
    let shown = request(&server, &t.alice, id);
    let late = shown["applied"]["late_secs"].as_u64().expect("reported late");
    assert!(late >= 2, "late by {late}s");
    eventually("the late apply's warning", || server.logged(|l| l.contains("applied late")));
    let metrics = server.call("GET", "/metrics", None).body;
    assert!(metrics.contains("cfgledger_change_requests_late_total"), "no late metric");
    let log = store.log();
    let applied =
        log.iter().find(|e| e["kind"] == "ChangeRequestApplied" && e["payload"]["id"] == id).expect("applied");
    assert_eq!(applied["payload"]["late_secs"].as_u64(), Some(late));
}

#[test]
fn a_master_key_rotation_reseals_the_secrets_of_pending_requests() {
    const NEW_SECRET: &str = "rotated-encryption-secret-41c9-never-shown";
    let store = Store::new("");
    team(&store);
    propose_policy_cli(&store);
    let shown = as_user(
        &store,
        "alice",
        &[
            "request",
            "propose",
            "--set",
            &format!("WEBHOOK_SECRET={SECRET}"),
            "--reason",
            "new hook",
            "--output",
            "json",
        ],
    );
    let id = serde_json::from_str::<Value>(&shown).expect("JSON")["id"].as_u64().expect("an id");
    // The ring: the new secret first, the old one as previous.
    let rotated = |actor: &str, args: &[&str]| {
        let out = store
            .cmd_as(actor)
            .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", NEW_SECRET)
            .env("CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS", api_support::ENCRYPTION_SECRET)
            .args(args)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let before: Value = serde_json::from_str(&rotated("tester", &["key", "list", "--output", "json"])).expect("JSON");
    let old = before["keys"][0]["key_id"].as_str().expect("the first key").to_string();
    rotated("tester", &["key", "rotate", "--reason", "yearly"]);
    rotated("tester", &["key", "verify"]);
    // The request's secret is sealed under a data key of WEBHOOK_SECRET (named in its proposal), which the
    // rotation wrapped again under the new key: no data key is left under the old one.
    use cfgledger::store::EventStore;
    let db = cfgledger::store::sqlite::SqliteStore::open(&store.db_path()).expect("the store opens");
    let records = db.read_after(0, 10_000).expect("the log reads");
    let proposed = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.envelope).to_string())
        .find(|text| text.contains("ChangeRequestProposed") && text.contains("WEBHOOK_SECRET"))
        .expect("the proposal");
    let data_key = proposed.split("cfgl2:").nth(1).and_then(|rest| rest.split(':').next()).expect("a data key");
    let after: Value = serde_json::from_str(&rotated("tester", &["key", "list", "--output", "json"])).expect("JSON");
    let new = after["current"].as_str().expect("the current key").to_string();
    assert_ne!(new, old);
    let wrapped = |key: &str| {
        after["keys"].as_array().expect("keys").iter().find(|k| k["key_id"] == key).expect("the key")["data_keys"]
            .as_u64()
            .expect("a count")
    };
    assert!(wrapped(&new) >= 1 && wrapped(&old) == 0, "{after}");
    assert_eq!(after["data_keys"].as_u64(), Some(wrapped(&new)), "{after}");
    let held = db.data_key(data_key).expect("the table reads").expect("the request's data key is held");
    assert_eq!(held.master_key, new, "the request's data key is wrapped under the new key");
    // The old key retires: nothing of the current state, the request included, is under it any more.
    rotated("tester", &["key", "retire", &old, "--reason", "rotation done"]);
    // Only the new secret from here on: the request still applies, its secret opening under the new key.
    let only_new = |actor: &str, args: &[&str]| {
        let out =
            store.cmd_as(actor).env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", NEW_SECRET).args(args).output().expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    only_new("bob", &["request", "approve", &id.to_string()]);
    let applied = only_new("carol", &["request", "approve", &id.to_string(), "--output", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&applied).expect("JSON")["status"], "applied");
    let rendered = only_new("tester", &["render", "--include-secrets", "--format", "json"]);
    assert!(rendered.contains(SECRET), "the applied secret opens under the new key");
    let bytes = store.database_bytes();
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in the store in plaintext");
}
