//! Several `cfgledger serve` processes on one store, as a multi-instance deployment runs them: a change
//! made through one instance reaches the others (over GET and the SSE watch) on PostgreSQL (LISTEN/NOTIFY)
//! and on SQLite (`PRAGMA data_version` polling); instances whose database connections are killed, or whose
//! PostgreSQL server stops and starts again, keep serving reads, refuse writes cleanly, reconnect and catch
//! up with no gap; and four processes writing at once leave a gapless, verifying log holding every
//! acknowledged write. Real processes on a real PostgreSQL (see `tests/pg`), never skipped.
//!
//! Every instance runs with the tailer's unconditional catch-up pushed out of reach (`--safety-poll 1h`),
//! so that what these tests see is the wake-up path itself (a notification, a reconnect, or the SQLite
//! poll), not the safety net hiding a broken one.

mod instances_support;
mod pg;

use instances_support::{assert_gapless, changes, eventually, Deployment, Http, Instance, Reply, Watch, DEADLINE};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// `serve` flags of every instance: the safety net out of reach, frequent keep-alives on watch streams.
const SERVE_ARGS: &[&str] = &["--safety-poll", "1h", "--sse-keepalive", "1s"];
/// A hot integer key the tests write.
const KEY: &str = "TOOL_RATE_LIMIT";

/// The `seq` of a successful `PUT`'s item.
fn seq_of(item: &Value) -> u64 {
    item["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {item}"))
}

/// Waits until `instance` answers `GET KEY` with `value` at `seq`.
fn wait_until_seen(instance: &Instance, token: &str, key: &str, value: &Value, seq: u64) {
    eventually(&format!("{} to show {key}={value} at seq {seq}", instance.name), || {
        let reply = instance.get(key, token);
        let item = reply.json();
        if reply.status == 200 && item["value"] == *value && item["seq"] == seq {
            Ok(())
        } else {
            Err(format!("{} {}\n{}", reply.status, reply.body, instance.warnings()))
        }
    });
}

/// Waits until every instance is ready at `head` (`/ready`: 200, head and applied equal to it, lag 0) and
/// they all report the same head hash.
fn wait_until_converged(instances: &[Instance], head: u64) {
    eventually(&format!("every instance to be ready at head {head}"), || {
        let mut hashes = BTreeSet::new();
        for instance in instances {
            let reply = instance.ready();
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            if reply.status != 200 || body["head"] != head || body["applied"] != head || body["lag"] != 0 {
                return Err(format!("{}: {} {}\n{}", instance.name, reply.status, reply.body, instance.warnings()));
            }
            hashes.insert(body["head_hash"].as_str().unwrap_or_default().to_string());
        }
        match hashes.len() {
            1 => Ok(()),
            _ => Err(format!("different head hashes at seq {head}: {hashes:?}")),
        }
    })
}

/// Eight concurrent `/ready` probes on each instance, three rounds: each probe reads the store's head on
/// a read connection, so the instance ends with several connections in its read pool.
fn probe_concurrently(instances: &[Instance]) {
    std::thread::scope(|scope| {
        for instance in instances {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..3 {
                        assert_eq!(instance.ready().status, 200, "{} is ready before the test", instance.name);
                    }
                });
            }
        }
    });
}

/// The store's head as one instance's `/ready` reports it.
fn store_head(instance: &Instance) -> u64 {
    let reply = instance.ready();
    reply.json()["head"].as_u64().unwrap_or_else(|| panic!("no head in /ready of {}: {}", instance.name, reply.body))
}

/// PUTs `value` until it is accepted. Every refusal on the way must be a clean 503 `unavailable` with
/// `Retry-After` (the instance lost its write connection); returns the accepted item and the refusals.
fn put_until_accepted(instance: &Instance, token: &str, key: &str, value: Value) -> (Value, Vec<Reply>) {
    let deadline = Instant::now() + DEADLINE;
    let mut refusals = Vec::new();
    loop {
        let reply = instance.put(key, token, value.clone());
        if reply.status == 200 {
            return (reply.json(), refusals);
        }
        let what = format!("PUT {key}={value} on {} while it recovers", instance.name);
        let code = reply.assert_clean_5xx(&what);
        assert_eq!((reply.status, code.as_str()), (503, "unavailable"), "{what}: {}", reply.body);
        refusals.push(reply);
        assert!(
            Instant::now() < deadline,
            "{what}: still refused after {DEADLINE:?}: {:?}\n{}",
            refusals.iter().map(|r| &r.body).collect::<Vec<_>>(),
            instance.warnings()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Asserts that a watch stream opened after `from` delivered exactly the log's setting changes after
/// `from` up to `to` (no gap, no duplicate, in order), each with the key and value the log holds.
fn assert_stream_matches_log(watch: &mut Watch, log: &[Value], from: u64, to: u64, name: &str) {
    watch.wait_for_seq(to);
    let expected: Vec<(u64, String, Value)> =
        changes(log).into_iter().filter(|(seq, _, _)| *seq > from && *seq <= to).collect();
    let delivered: Vec<(u64, String, Value)> = watch
        .seen
        .iter()
        .filter(|e| e.id <= to)
        .map(|e| (e.id, e.data["key"].as_str().unwrap_or_default().to_string(), e.data["value"].clone()))
        .collect();
    assert_eq!(delivered, expected, "the watch stream of {name} after seq {from} against the log");
}

/// Three instances on `deployment`: a PUT on each is visible on the other two over GET and over the
/// watch stream, with the seq the writer acknowledged.
fn assert_changes_visible_everywhere(deployment: &Deployment) {
    let token = deployment.admin_token();
    let instances = deployment.serve_many(3, SERVE_ARGS);
    let start = store_head(&instances[0]);
    wait_until_converged(&instances, start);
    let mut watches: Vec<Watch> = instances.iter().map(|i| i.watch(&token, start)).collect();

    let mut written = Vec::new();
    for (w, writer) in instances.iter().enumerate() {
        let value = json!(1000 + w);
        let item = writer.put(KEY, &token, value.clone()).ok_json(&format!("PUT {KEY} on {}", writer.name));
        let seq = seq_of(&item);
        assert_eq!(item["value"], value, "the PUT answers the value it wrote");
        for (r, reader) in instances.iter().enumerate().filter(|(r, _)| *r != w) {
            wait_until_seen(reader, &token, KEY, &value, seq);
            let event = watches[r].wait_for_seq(seq).iter().find(|e| e.id == seq).cloned();
            let event =
                event.unwrap_or_else(|| panic!("{} streamed no event {seq}: {:?}", reader.name, watches[r].ids()));
            assert_eq!(
                (event.data["key"].as_str(), &event.data["value"]),
                (Some(KEY), &value),
                "the event {seq} streamed by {}",
                reader.name
            );
        }
        written.push(seq);
    }

    let head = *written.last().expect("three writes");
    wait_until_converged(&instances, head);
    for (instance, watch) in instances.iter().zip(&mut watches) {
        watch.wait_for_seq(head);
        assert_eq!(watch.ids(), written, "{} streamed each write once, in order", instance.name);
        instance.assert_alive();
    }
}

/// Test 1: three instances on one PostgreSQL database see each other's writes.
#[test]
fn postgres_instances_see_each_others_writes() {
    let db = pg::TestDb::new();
    let deployment = Deployment::new(&db.url(), "");
    assert_changes_visible_everywhere(&deployment);
}

/// Test 5: three instances on one SQLite file see each other's writes by polling.
#[test]
fn sqlite_instances_see_each_others_writes() {
    let deployment = Deployment::new("sqlite://c.db", "");
    assert_changes_visible_everywhere(&deployment);
}

/// Test 2: every backend of the database is terminated under three running instances; a write through one
/// of them then succeeds (after at most a clean 503), and every instance reconnects and catches up with
/// that write and the next, with no gap on its watch stream.
#[test]
fn postgres_instances_recover_from_terminated_connections() {
    let db = pg::TestDb::new();
    let deployment = Deployment::new(&db.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(3, SERVE_ARGS);
    let item = instances[0].put(KEY, &token, json!(111)).ok_json("the first PUT");
    let before = seq_of(&item);
    wait_until_converged(&instances, before);
    let mut watches: Vec<Watch> = instances.iter().map(|i| i.watch(&token, before)).collect();
    // A busy instance keeps several read connections in its pool; concurrent readiness probes (a load
    // balancer's) put them there, so that they are killed too.
    probe_concurrently(&instances);

    // application_name is `cfgledger` for every instance, so they cannot be told apart: terminate them all.
    let mut admin = db.client();
    let terminated: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
            &[],
        )
        .expect("pg_terminate_backend runs")
        .get(0);
    assert!(terminated >= 6, "each instance held at least its write and LISTEN connections; terminated {terminated}");

    let (item, refusals) = put_until_accepted(&instances[1], &token, KEY, json!(222));
    let first = seq_of(&item);
    assert!(refusals.len() <= 1, "a lost write connection costs at most one refused write; got {refusals:?}");
    for instance in &instances {
        wait_until_seen(instance, &token, KEY, &json!(222), first);
    }
    let (item, refusals) = put_until_accepted(&instances[2], &token, KEY, json!(333));
    let second = seq_of(&item);
    assert!(refusals.len() <= 1, "a lost write connection costs at most one refused write; got {refusals:?}");
    for instance in &instances {
        wait_until_seen(instance, &token, KEY, &json!(333), second);
    }

    let head = store_head(&instances[0]);
    wait_until_converged(&instances, head);
    let log = deployment.log();
    assert_eq!(assert_gapless(&log), head, "the log ends at the head every instance reports");
    for (instance, watch) in instances.iter().zip(&mut watches) {
        assert_stream_matches_log(watch, &log, before, head, &instance.name);
        instance.assert_alive();
    }
    deployment.verify();
}

/// Test 3: a private PostgreSQL cluster stops under three running instances. Meanwhile reads answer from
/// memory, writes fail with a clean 503 and `/ready` says degraded; once the cluster is back, writes
/// succeed, every instance converges, and nothing refused while it was down is in the log.
#[test]
fn postgres_instances_survive_a_database_restart() {
    let cluster = pg::Cluster::start_new().expect("a private PostgreSQL cluster starts");
    let db = pg::TestDb::on(&cluster.base_url());
    let deployment = Deployment::new(&db.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(3, SERVE_ARGS);
    let item = instances[0].put(KEY, &token, json!(111)).ok_json("the first PUT");
    let before = seq_of(&item);
    wait_until_converged(&instances, before);
    let mut watches: Vec<Watch> = instances.iter().map(|i| i.watch(&token, before)).collect();
    probe_concurrently(&instances);

    cluster.stop().expect("the cluster stops");
    let refused_values: Vec<Value> = (0..instances.len()).map(|i| json!(900 + i)).collect();
    for (instance, value) in instances.iter().zip(&refused_values) {
        let item =
            instance.get(KEY, &token).ok_json(&format!("GET {KEY} on {} while the database is down", instance.name));
        assert_eq!((&item["value"], seq_of(&item)), (&json!(111), before), "{} answers from memory", instance.name);

        let reply = instance.put(KEY, &token, value.clone());
        let what = format!("PUT {KEY} on {} while the database is down", instance.name);
        reply.assert_clean_5xx(&what);
        assert_eq!(reply.status, 503, "{what}: {}", reply.body);

        let ready = instance.ready();
        assert_eq!(ready.status, 503, "/ready of {} while the database is down: {}", instance.name, ready.body);
        assert_eq!(ready.json()["status"], "degraded", "/ready of {} while the database is down", instance.name);
    }
    for (instance, watch) in instances.iter().zip(&mut watches) {
        assert!(watch.is_open(), "the watch stream of {} stays open while the database is down", instance.name);
        instance.assert_alive();
    }

    cluster.start().expect("the cluster starts again");
    let mut accepted = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let value = json!(2000 + i);
        let (item, _refusals) = put_until_accepted(instance, &token, KEY, value.clone());
        accepted.push((seq_of(&item), value));
    }
    let (last_seq, last_value) = accepted.last().cloned().expect("three writes");
    for instance in &instances {
        wait_until_seen(instance, &token, KEY, &last_value, last_seq);
    }
    let head = store_head(&instances[0]);
    wait_until_converged(&instances, head);

    let log = deployment.log();
    assert_eq!(assert_gapless(&log), head, "the log ends at the head every instance reports");
    let logged: Vec<(u64, Value)> = changes(&log).into_iter().map(|(seq, _, v)| (seq, v)).collect();
    for value in &refused_values {
        assert!(!logged.iter().any(|(_, v)| v == value), "{value} was refused while down but is in the log");
    }
    for (seq, value) in &accepted {
        assert!(logged.contains(&(*seq, value.clone())), "the accepted write {value} at seq {seq} is in the log");
    }
    for (instance, watch) in instances.iter().zip(&mut watches) {
        assert_stream_matches_log(watch, &log, before, head, &instance.name);
        instance.assert_alive();
    }
    deployment.verify();
}

/// What one PUT of the four writers got: the value, the status, and the item's seq or the error body.
type Outcome = (u64, u16, Result<u64, String>);

/// Test 4: four instances on one database, each taking 500 PUTs from its own client thread at once (one
/// key per thread, distinct values, so every PUT appends and its answer's seq is its own event). The log
/// is then gapless and verifies, and holds every acknowledged write at its seq with its value, once.
#[test]
fn postgres_four_writers_leave_a_gapless_log_with_every_acknowledged_write() {
    const WRITES: u64 = 500;
    /// One key per writer, with a base far from every default so that each value is a change.
    const PLAN: [(&str, u64); 4] = [
        ("TOOL_RATE_LIMIT", 100_000),
        ("MAX_PROMPT_SIZE", 1_000_000),
        ("TOOL_CONCURRENT_LIMIT", 1_000),
        ("cfgledger:REQUEST_SIZE_LIMIT", 2_000_000),
    ];
    let db = pg::TestDb::new();
    let deployment = Deployment::new(&db.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(PLAN.len(), SERVE_ARGS);
    let start = store_head(&instances[0]);

    let outcomes: Vec<Vec<Outcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = instances
            .iter()
            .zip(PLAN)
            .map(|(instance, (key, base))| {
                let token = &token;
                scope.spawn(move || {
                    let http = Http::new(true);
                    let url = format!("{}/admin/config/{key}", instance.url);
                    (1..=WRITES)
                        .map(|n| {
                            let value = base + n;
                            let reply = http
                                .call("PUT", &url, Some(token), Some(&json!({ "value": value })))
                                .unwrap_or_else(|e| panic!("PUT {key}={value} on {}: {e}", instance.name));
                            let seq = if reply.status == 200 {
                                let item = reply.json();
                                assert_eq!(item["value"], value, "the PUT on {} answers its value", instance.name);
                                Ok(seq_of(&item))
                            } else {
                                Err(reply.body)
                            };
                            (value, reply.status, seq)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a writer thread")).collect()
    });

    // The log first: whatever was refused, it must be gapless, verify, and hold exactly the acknowledged
    // writes, each at the seq its answer named.
    let log = deployment.log();
    let head = assert_gapless(&log);
    let report = deployment.verify();
    assert!(report.starts_with(&format!("ok: {head} events verified")), "verify: {report}");
    let by_seq: BTreeMap<u64, (String, Value)> = changes(&log).into_iter().map(|(s, k, v)| (s, (k, v))).collect();
    let mut acknowledged = 0u64;
    let mut refused = Vec::new();
    for (outcome, (key, _)) in outcomes.iter().zip(PLAN) {
        let mut last = start;
        for (value, status, seq) in outcome {
            let entry = (key.to_string(), json!(value));
            match seq {
                Ok(seq) => {
                    acknowledged += 1;
                    assert!(*seq > last, "the acknowledged seqs of {key} increase: {seq} after {last}");
                    last = *seq;
                    assert_eq!(by_seq.get(seq), Some(&entry), "the acknowledged write {key}={value} is at seq {seq}");
                }
                Err(body) => {
                    assert!(!by_seq.values().any(|e| *e == entry), "the refused write {key}={value} is in the log");
                    refused.push(format!("{key}={value}: {status} {body}"));
                }
            }
        }
    }
    let written = u64::try_from(by_seq.range(start + 1..).count()).expect("a count");
    assert_eq!(written, acknowledged, "the log holds each acknowledged write once and nothing else");
    assert_eq!(head, start + acknowledged, "the log ends right after the last write");

    wait_until_converged(&instances, head);
    for instance in &instances {
        instance.assert_alive();
    }
    // Then every write: four writers on a healthy database are no reason to refuse one.
    assert!(
        refused.is_empty(),
        "{} of {} PUTs were refused on a healthy database, first ones: {:?}\n{}",
        refused.len(),
        4 * WRITES,
        &refused[..refused.len().min(5)],
        instances.iter().map(Instance::warnings).collect::<Vec<_>>().join("\n")
    );
}

/// `GET /admin/instances` lists every running instance with its applied seq and head hash, says whether they
/// agree, and forgets an instance that stopped.
#[test]
fn postgres_instances_are_listed_with_their_heads_and_leave_the_list_when_stopped() {
    let db = pg::TestDb::new();
    let deployment = Deployment::new(&db.url(), "");
    let token = deployment.admin_token();
    let mut instances = deployment.serve_many(3, SERVE_ARGS);
    let seq = seq_of(&instances[1].put(KEY, &token, json!(4242)).ok_json("a PUT"));
    let list = eventually("three converged instances at the new head", || {
        let body = instances[0].call("GET", "/admin/instances", Some(&token), None).ok_json("instances");
        let items = body["instances"].as_array().cloned().unwrap_or_default();
        let at_head = items.iter().filter(|i| i["applied_seq"].as_u64() == Some(seq)).count();
        if items.len() == 3 && at_head == 3 && body["converged"] == true {
            Ok(body)
        } else {
            Err(format!("{body}"))
        }
    });
    let me = list["self"].as_str().expect("self").to_string();
    let items = list["instances"].as_array().expect("instances");
    assert_eq!(items.iter().filter(|i| i["self"] == true).count(), 1);
    assert!(items.iter().any(|i| i["id"] == me.as_str()));
    let hashes: std::collections::BTreeSet<&str> = items.iter().filter_map(|i| i["head_hash"].as_str()).collect();
    assert_eq!(hashes.len(), 1, "one head hash: {list}");
    for i in items {
        assert!(i["listen"].as_str().is_some_and(|l| l.starts_with("http://127.0.0.1:")), "{i}");
        assert!(i["pid"].as_u64().is_some() && i["host"].is_string() && i["version"].is_string(), "{i}");
    }

    // A stopped instance removes its heartbeat on the way out (a killed one would age out in 10 s).
    instances.pop().expect("a third instance").terminate();
    eventually("two instances listed", || {
        let body = instances[0].call("GET", "/admin/instances", Some(&token), None).ok_json("instances");
        match body["instances"].as_array().map(Vec::len) {
            Some(2) => Ok(()),
            _ => Err(format!("{body}")),
        }
    });
}
