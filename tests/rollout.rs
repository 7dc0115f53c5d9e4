//! Gradual rollout by instance label, end to end: real `cfgledger serve` processes, real followers (the
//! client crate and `cfgledger agent render`) with ids and labels, and the driver in `serve`:
//! - the selector's instances get the new values first, then each percentage step adds the instances whose
//!   bucket it passes, and the merge at the end makes them the main values in one batch;
//! - the driver advances after each bake; a check URL that starts answering 500, or an instance running the
//!   new values that reports itself unhealthy, rolls the rollout back during the bake;
//! - two servers on one PostgreSQL store make exactly one transition per step.
//!
//! No wall-clock assertion: every wait is a condition polled up to a deadline.

mod instances_support;
mod pg;

use cfgledger_client::{Client, Snapshot};
use cfgledger_events::rollout::bucket;
use instances_support::{eventually, Deployment, Instance};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "rolled-out-secret-5e0c1b7a";

/// A client of the default namespace with an id and labels, beating often.
fn follower(server: &Instance, token_file: &std::path::Path, id: &str, labels: &[(&str, &str)]) -> Client {
    let mut b = Client::builder(&server.url, "mcpgateway")
        .token_file(token_file)
        .include_secrets(true)
        .instance_id(id)
        .heartbeat(Some(Duration::from_millis(200)))
        .backoff(Duration::from_millis(50), Duration::from_millis(300))
        .read_timeout(Duration::from_secs(5));
    for (k, v) in labels {
        b = b.label(k, v);
    }
    b.start().unwrap_or_else(|e| panic!("client {id} starts: {e}"))
}

fn workers(c: &Client) -> Option<i64> {
    let snap: Arc<Snapshot> = c.snapshot();
    snap.i64("MAX_WORKERS")
}

fn reader_token(d: &Deployment) -> std::path::PathBuf {
    let token = d.ok(&["token", "issue", "--sub", "reader", "--role", "config_reader"]);
    let path = d.path("reader.token");
    std::fs::write(&path, token.trim()).expect("write the token file");
    path
}

fn rollout(server: &Instance, admin: &str, id: &str) -> Value {
    server.call("GET", &format!("/admin/rollouts/{id}"), Some(admin), None).ok_json("rollout status")
}

fn post(server: &Instance, admin: &str, path: &str, body: &Value) -> Value {
    let r = server.call("POST", path, Some(admin), Some(body));
    assert!(matches!(r.status, 200 | 201), "POST {path}: {} {}", r.status, r.body);
    r.json()
}

/// Waits until every client shows the value it is meant to.
fn wait_values(clients: &[(String, Client)], expect: impl Fn(&str) -> i64, what: &str) {
    eventually(what, || {
        let wrong: Vec<String> = clients
            .iter()
            .filter(|(id, c)| workers(c) != Some(expect(id)))
            .map(|(id, c)| format!("{id}={:?} (want {})", workers(c), expect(id)))
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join(", "))
        }
    });
}

fn events<'a>(log: &'a [Value], kind: &str) -> Vec<&'a Value> {
    log.iter().filter(|r| r["kind"] == kind).collect()
}

#[test]
fn labels_first_then_percentage_steps_then_one_merge_batch() {
    let d = Deployment::new("sqlite://c.db", "MAX_WORKERS=4");
    let admin = d.admin_token();
    let token_file = reader_token(&d);
    // The driver never advances on its own here: the bake is an hour; the steps are taken by hand.
    let servers = d.serve_many(1, &["--rollout-tick", "100ms"]);
    let server = &servers[0];
    let ids: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    let clients: Vec<(String, Client)> = ids
        .iter()
        .map(|id| {
            let labels: &[(&str, &str)] = if id == "c0" || id == "c1" { &[("role", "canary")] } else { &[] };
            (id.clone(), follower(server, &token_file, id, labels))
        })
        .collect();
    // A real agent too, labelled as a canary, keeping a file.
    let agent_file = d.path("agent.env");
    let mut agent = d
        .cmd()
        .env("CFGLEDGER_TOKEN", std::fs::read_to_string(&token_file).unwrap())
        .args(["--server", &server.url, "agent", "render", "--no-cache", "--include-secrets"])
        .args(["--label", "role=canary", "--id", "agent-1", "--heartbeat", "200ms"])
        .args(["--out", agent_file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the agent starts");
    wait_values(&clients, |_| 4, "every client starts on the main value");

    let started = post(
        server,
        &admin,
        "/admin/rollouts",
        &json!({
            "id": "workers-16",
            "changes": [{"key": "MAX_WORKERS", "value": 16}, {"key": "WEBHOOK_SECRET", "text": SECRET}],
            "selector": {"role": "canary"},
            "steps": [50, 100],
            "bake_ms": 3_600_000,
            "reason": "more workers",
        }),
    );
    assert_eq!(started["rollout"]["stage"], 0);
    assert_eq!(started["rollout"]["changes"][1]["value"], "********", "a rollout's secret is masked: {started}");
    let canary = |id: &str| id == "c0" || id == "c1";
    wait_values(&clients, |id| if canary(id) { 16 } else { 4 }, "stage 0: the canaries only");
    eventually("the canary agent's file has the new values", || {
        let text = std::fs::read_to_string(&agent_file).unwrap_or_default();
        (text.contains("MAX_WORKERS='16'") && text.contains(SECRET)).then_some(()).ok_or(text)
    });
    let secret_of = |c: &Client| c.snapshot().str("WEBHOOK_SECRET").map(str::to_string);
    assert_eq!(secret_of(&clients[0].1).as_deref(), Some(SECRET));
    assert_eq!(secret_of(&clients[5].1), None, "an instance outside the rollout keeps the main (unset) secret");

    // The instances view and the status say who has which value.
    eventually("the instances view shows each follower's rollout value", || {
        let list = server.call("GET", "/admin/instances", Some(&admin), None).ok_json("instances");
        let mut seen = 0;
        for i in list["instances"].as_array().unwrap() {
            let Some(id) = i["id"].as_str().and_then(|s| s.strip_prefix("client/")) else { continue };
            let r = &i["rollouts"][0];
            if r["id"] != "workers-16" || r["new_values"] != canary(id) || r["stage"] != 0 {
                return Err(format!("{id}: {r}"));
            }
            seen += 1;
        }
        (seen == clients.len()).then_some(()).ok_or(format!("{seen} clients listed"))
    });
    // The agent is listed from its first stored heartbeat, which need not have come before the clients'.
    eventually("the status lists the agent as selected", || {
        let status = rollout(server, &admin, "workers-16");
        let agent_row = status["instances"].as_array().unwrap().iter().find(|i| i["instance"] == "agent/agent-1");
        match agent_row.map(|a| (a["new_values"].clone(), a["via"].clone())) {
            Some(row) if row == (json!(true), json!("selector")) => Ok(()),
            other => Err(format!("{other:?} in {status}")),
        }
    });

    // Stage 1 (50 %): the canaries, and the instances whose bucket is under 50.
    let half = |id: &str| canary(id) || bucket("workers-16", id) < 50;
    assert!(ids.iter().any(|id| !half(id)) && ids.iter().any(|id| half(id) && !canary(id)), "16 ids split both ways");
    let advanced = post(server, &admin, "/admin/rollouts/workers-16/advance", &json!({"reason": "canaries fine"}));
    assert_eq!((advanced["rollout"]["stage"].clone(), advanced["rollout"]["percent"].clone()), (json!(1), json!(50)));
    wait_values(&clients, |id| if half(id) { 16 } else { 4 }, "stage 1: half of the instances");
    let status = rollout(server, &admin, "workers-16");
    for i in status["instances"].as_array().unwrap() {
        let Some(id) = i["instance"].as_str().and_then(|s| s.strip_prefix("client/")) else { continue };
        assert_eq!(i["new_values"], half(id), "{i}");
        assert_eq!(i["bucket"], bucket("workers-16", id), "{i}");
    }

    // Stage 2 (100 %), then the merge: one batch holding the completion and each key's SettingChanged.
    post(server, &admin, "/admin/rollouts/workers-16/advance", &json!({}));
    wait_values(&clients, |_| 16, "stage 2: every instance");
    let done = post(server, &admin, "/admin/rollouts/workers-16/advance", &json!({}));
    assert_eq!(done["rollout"]["status"], "completed");
    let main = server.call("GET", "/admin/config/MAX_WORKERS", Some(&admin), None).ok_json("the main value");
    assert_eq!(main["value"], 16, "{main}");
    wait_values(&clients, |_| 16, "after the merge: every instance, from the main value");
    assert_eq!(secret_of(&clients[9].1).as_deref(), Some(SECRET), "the merged secret reaches everyone");

    let log = d.log();
    let completed = events(&log, "RolloutCompleted");
    assert_eq!(completed.len(), 1);
    let batch = &completed[0]["batch"]["id"];
    let merged: Vec<&str> = log
        .iter()
        .filter(|r| &r["batch"]["id"] == batch && r["kind"] == "SettingChanged")
        .map(|r| r["payload"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(merged, ["mcpgateway:MAX_WORKERS", "mcpgateway:WEBHOOK_SECRET"]);
    assert_eq!(events(&log, "RolloutAdvanced").len(), 2);
    // The secret is sealed in the log, and its plaintext is nowhere in the store's file.
    let started_ev = events(&log, "RolloutStarted")[0];
    assert_eq!(started_ev["payload"]["changes"][1]["value"], "********", "{started_ev}");
    let bytes = std::fs::read(d.path("c.db")).expect("the store's file");
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "no plaintext secret at rest");
    assert!(!d.ok(&["log", "--output", "json"]).contains(SECRET));

    // The audit shows each step of the rollout.
    let audit = d.ok(&["audit", "--output", "jsonl", "--action", "rollout_started,rollout_advanced,rollout_completed"]);
    let actions: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["key"] == "MAX_WORKERS" && e["rollout"]["id"] == "workers-16")
        .map(|e| format!("{}:{}", e["action"].as_str().unwrap(), e["rollout"]["stage"]))
        .collect();
    assert!(
        ["rollout_started:0", "rollout_advanced:1", "rollout_advanced:2", "rollout_completed:2"]
            .iter()
            .all(|a| actions.iter().any(|x| x == a)),
        "{actions:?}\n{audit}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
}

/// A tiny HTTP server answering every GET with the status in `status`.
fn check_server() -> (String, Arc<AtomicU16>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the check server");
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let code = answer.load(Ordering::SeqCst);
            let _ = write!(stream, "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, status)
}

#[test]
fn a_check_url_that_fails_during_the_bake_rolls_back_and_the_canaries_return() {
    let d = Deployment::new("sqlite://c.db", "MAX_WORKERS=4");
    let admin = d.admin_token();
    let token_file = reader_token(&d);
    let servers = d.serve_many(1, &["--rollout-tick", "100ms"]);
    let server = &servers[0];
    let canary = follower(server, &token_file, "k1", &[("role", "canary")]);
    let other = follower(server, &token_file, "k2", &[("role", "main")]);
    let (url, status) = check_server();
    post(
        server,
        &admin,
        "/admin/rollouts",
        &json!({"id": "checked", "changes": [{"key": "MAX_WORKERS", "value": 32}], "selector": {"role": "canary"},
                "steps": [100], "bake_ms": 3_600_000, "check_url": url, "check_timeout_ms": 500}),
    );
    eventually("the canary runs the new value", || {
        (workers(&canary) == Some(32)).then_some(()).ok_or_else(|| format!("{:?}", workers(&canary)))
    });
    assert_eq!(workers(&other), Some(4));
    // The check passes while it answers 200 (the driver looks every 100 ms); then it fails.
    assert_eq!(rollout(server, &admin, "checked")["status"], "active");
    status.store(500, Ordering::SeqCst);
    let ended = eventually("the rollout rolls back", || {
        let r = rollout(server, &admin, "checked");
        (r["status"] == "rolled_back").then_some(r.clone()).ok_or_else(|| r.to_string())
    });
    let note = ended["transitions"].as_array().unwrap().last().unwrap()["note"].as_str().unwrap().to_string();
    assert!(note.contains("answered 500") && note.contains("/healthz"), "{note}");
    eventually("the canary returns to the main value", || {
        (workers(&canary) == Some(4)).then_some(()).ok_or_else(|| format!("{:?}", workers(&canary)))
    });
    let log = d.log();
    let rolled = events(&log, "RolloutRolledBack");
    assert_eq!(rolled.len(), 1);
    assert!(rolled[0]["payload"]["signal"].as_str().unwrap().contains("answered 500"), "{}", rolled[0]);
    assert_eq!(rolled[0]["batch"]["cause"]["type"], "rollout_driver", "{}", rolled[0]);
    assert!(events(&log, "SettingChanged").iter().all(|e| e["payload"]["key"] != "mcpgateway:MAX_WORKERS"));
    let main = server.call("GET", "/admin/config/MAX_WORKERS", Some(&admin), None).ok_json("the main value");
    assert_eq!(main["value"], 4, "nothing was merged: {main}");
    // A person cannot roll back or advance what has ended: 409, nothing appended.
    let head = log.len();
    let again = server.call("POST", "/admin/rollouts/checked/rollback", Some(&admin), Some(&json!({})));
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(d.log().len(), head);
}

#[test]
fn an_instance_that_reports_itself_unhealthy_rolls_back_the_rollout_it_runs() {
    let d = Deployment::new("sqlite://c.db", "MAX_WORKERS=4");
    let admin = d.admin_token();
    let token_file = reader_token(&d);
    let servers = d.serve_many(1, &["--rollout-tick", "100ms"]);
    let server = &servers[0];
    let canary = follower(server, &token_file, "h1", &[("role", "canary")]);
    post(
        server,
        &admin,
        "/admin/rollouts",
        &json!({"id": "reported", "changes": [{"key": "MAX_WORKERS", "value": 8}], "selector": {"role": "canary"},
                "steps": [100], "bake_ms": 3_600_000, "instance_reports": true}),
    );
    eventually("the canary runs the new value", || {
        (workers(&canary) == Some(8)).then_some(()).ok_or_else(|| format!("{:?}", workers(&canary)))
    });
    eventually("the canary has reported the stage applied", || {
        let r = rollout(server, &admin, "reported");
        let row = r["instances"].as_array().and_then(|a| a.iter().find(|i| i["instance"] == "client/h1").cloned());
        row.filter(|i| i["applied"] == true).map(|_| ()).ok_or_else(|| r.to_string())
    });
    assert_eq!(rollout(server, &admin, "reported")["status"], "active");
    canary.set_healthy(Some(false));
    let ended = eventually("the rollout rolls back", || {
        let r = rollout(server, &admin, "reported");
        (r["status"] == "rolled_back").then_some(r.clone()).ok_or_else(|| r.to_string())
    });
    let note = ended["transitions"].as_array().unwrap().last().unwrap()["note"].as_str().unwrap().to_string();
    assert!(note.contains("instance client/h1 reported healthy: false"), "{note}");
    eventually("the canary returns to the main value", || {
        (workers(&canary) == Some(4)).then_some(()).ok_or_else(|| format!("{:?}", workers(&canary)))
    });
}

#[test]
fn the_driver_advances_after_each_bake_and_merges_at_the_end() {
    let d = Deployment::new("sqlite://c.db", "MAX_WORKERS=4");
    let admin = d.admin_token();
    let servers = d.serve_many(1, &["--rollout-tick", "50ms"]);
    let server = &servers[0];
    post(
        server,
        &admin,
        "/admin/rollouts",
        &json!({"id": "baked", "changes": [{"key": "MAX_WORKERS", "value": 12}], "steps": [20, 60, 100], "bake_ms": 300}),
    );
    let done = eventually("the driver completes the rollout", || {
        let r = rollout(server, &admin, "baked");
        (r["status"] == "completed").then_some(r.clone()).ok_or_else(|| r.to_string())
    });
    let steps: Vec<(String, u64, u64)> = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["what"].as_str().unwrap().to_string(), t["stage"].as_u64().unwrap(), t["percent"].as_u64().unwrap())
        })
        .collect();
    let expected: Vec<(String, u64, u64)> =
        [("started", 0, 0), ("advanced", 1, 20), ("advanced", 2, 60), ("advanced", 3, 100), ("completed", 3, 100)]
            .iter()
            .map(|(w, s, p)| (w.to_string(), *s, *p))
            .collect();
    assert_eq!(steps, expected, "no selector: the first step starts with the rollout");
    // Each driver transition came after its stage's bake, by the log's own times.
    let log = d.log();
    let times: Vec<cfgledger_events::Timestamp> = log
        .iter()
        .filter(|r| r["kind"].as_str().is_some_and(|k| k.starts_with("Rollout")))
        .map(|r| cfgledger_events::Timestamp::parse_rfc3339(r["occurred_at"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(times.len(), 5);
    for pair in times[1..].windows(2) {
        assert!(pair[1].as_micros() - pair[0].as_micros() >= 300_000, "a stage baked 300 ms: {times:?}");
    }
    for r in log.iter().filter(|r| r["kind"] == "RolloutAdvanced").skip(1) {
        assert_eq!(r["actor"]["name"], "rollout-driver", "{r}");
        assert_eq!(r["payload"]["manual"], false, "{r}");
    }
    let main = server.call("GET", "/admin/config/MAX_WORKERS", Some(&admin), None).ok_json("the main value");
    assert_eq!(main["value"], 12, "{main}");
}

#[test]
fn two_servers_on_one_postgres_store_make_exactly_one_transition_per_step() {
    let db = pg::TestDb::new();
    let d = Deployment::new(&db.url(), "MAX_WORKERS=4");
    let admin = d.admin_token();
    // Both drivers look every 20 ms, so they race for every transition.
    let servers = d.serve_many(2, &["--rollout-tick", "20ms"]);
    post(
        &servers[0],
        &admin,
        "/admin/rollouts",
        &json!({"id": "raced", "changes": [{"key": "MAX_WORKERS", "value": 24}], "selector": {"zone": "a"},
                "steps": [10, 25, 50, 75, 100], "bake_ms": 150}),
    );
    for server in &servers {
        eventually("each server sees the rollout completed", || {
            let r = rollout(server, &admin, "raced");
            (r["status"] == "completed").then_some(()).ok_or_else(|| r.to_string())
        });
    }
    let log = d.log();
    let stages: Vec<u64> =
        events(&log, "RolloutAdvanced").iter().map(|r| r["payload"]["stage"].as_u64().unwrap()).collect();
    assert_eq!(stages, [1, 2, 3, 4, 5], "one advance per stage, in order");
    assert_eq!(events(&log, "RolloutCompleted").len(), 1);
    let merges =
        events(&log, "SettingChanged").iter().filter(|r| r["payload"]["key"] == "mcpgateway:MAX_WORKERS").count();
    assert_eq!(merges, 1, "one merge");
    let drivers: std::collections::BTreeSet<String> = log
        .iter()
        .filter(|r| r["batch"]["cause"]["type"] == "rollout_driver")
        .map(|r| r["batch"]["cause"]["instance"].as_str().unwrap().to_string())
        .collect();
    assert!(!drivers.is_empty(), "the drivers made the transitions");
    d.verify();
}

#[test]
fn the_cli_works_on_the_store_and_through_the_server_alike() {
    let d = Deployment::new("sqlite://c.db", "MAX_WORKERS=4");
    let admin = d.admin_token();
    // A server with its driver off, so the rollout stays where the commands put it.
    let servers = d.serve_many(1, &["--rollout-tick", "0s"]);
    let server = &servers[0];
    let remote = |args: &[&str]| {
        let out = d
            .cmd()
            .env("CFGLEDGER_TOKEN", &admin)
            .args(["--server", &server.url])
            .args(args)
            .output()
            .expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let local = |args: &[&str]| {
        let out = d.cmd().args(args).output().expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let start = [
        "rollout",
        "start",
        "--id",
        "cli-1",
        "--set",
        "MAX_WORKERS=6",
        "--selector",
        "role=canary",
        "--steps",
        "50,100",
        "--bake",
        "1h",
    ];
    let (code, out, err) = remote(&start);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("rollout cli-1 (mcpgateway): active at stage 0"), "{out}");
    // The same listing and status either way.
    assert_eq!(remote(&["rollout", "list"]), local(&["rollout", "list"]));
    assert_eq!(remote(&["rollout", "status", "cli-1"]), local(&["rollout", "status", "cli-1"]));
    // The same refusals and exit codes either way: an id taken (409), bad steps (422), an unknown rollout (404).
    let taken = remote(&start);
    let taken_local = local(&start);
    assert_eq!((taken.0, &taken.2), (taken_local.0, &taken_local.2));
    assert_ne!(taken.0, Some(0));
    assert!(taken.2.contains("exists already"), "{}", taken.2);
    let bad = ["rollout", "start", "--set", "MAX_WORKERS=6", "--steps", "50,40"];
    let (rc, lc) = (remote(&bad), local(&bad));
    assert_eq!((rc.0, &rc.2), (lc.0, &lc.2));
    assert!(rc.2.contains("strictly increasing"), "{}", rc.2);
    let (rc, lc) = (remote(&["rollout", "advance", "nope"]), local(&["rollout", "advance", "nope"]));
    assert_eq!((rc.0, &rc.2), (lc.0, &lc.2));
    assert!(rc.2.contains("no rollout named nope"), "{}", rc.2);
    // Advance locally, roll back through the server; then both refuse a second rollback alike.
    let (code, out, _) = local(&["rollout", "advance", "cli-1"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("active at stage 1 (50%"), "{out}");
    let (code, out, _) = remote(&["rollout", "abort", "cli-1", "--reason", "changed my mind"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("rolled back at stage 1") && out.contains("changed my mind"), "{out}");
    let (rc, lc) = (remote(&["rollout", "rollback", "cli-1"]), local(&["rollout", "rollback", "cli-1"]));
    assert_eq!((rc.0, &rc.2), (lc.0, &lc.2));
    assert!(rc.2.contains("is rolled back"), "{}", rc.2);
}
