//! Issue 19, part 3: PostgreSQL failover. A primary and a streaming standby, both private clusters started
//! here from the installed binaries, with synchronous replication (`synchronous_standby_names` names the
//! standby, `synchronous_commit = on`), so that a commit is acknowledged only once the standby has flushed
//! it. Two `cfgledger serve` instances connect with one multi-host URL, the primary first and the standby
//! second, with `target_session_attrs=read-write`.
//!
//! Under continuous writes the standby is promoted and the old primary stopped (`-m immediate`); the
//! instances, never restarted, must resume writing on the new primary by themselves. Nothing acknowledged
//! may be lost, a write refused as `unavailable` must not be in the log (a COMMIT whose answer the stop
//! took is settled by the server first; only `outcome_unknown` may go either way), the log must stay
//! gapless and verify (the CLI reading it through the same multi-host URL), and every watch stream must
//! deliver the log's changes with no gap and no duplicate. A second test loses a COMMIT's answer on purpose
//! and checks that the server answers what happened. No assertion is about time: deadlines only bound
//! waiting.

mod instances_support;
mod pg;

use instances_support::{assert_gapless, changes, eventually, Deployment, Http, Instance, Watch};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `serve` flags of every instance: the tailer's safety net out of reach (so that what resumes is the
/// reconnection itself), frequent keep-alives on watch streams.
const SERVE_ARGS: &[&str] = &["--safety-poll", "1h", "--sse-keepalive", "1s"];
/// The standby's name as the primary sees it (`cluster_name` becomes its walreceiver's application_name).
const STANDBY: &str = "cfgl_standby";
/// One key per writer, each with a base far from every default so that each value is a change. Writer `i`
/// writes through instance `i % 2`.
const PLAN: [(&str, u64); 4] = [
    ("TOOL_RATE_LIMIT", 100_000),
    ("MAX_PROMPT_SIZE", 1_000_000),
    ("TOOL_CONCURRENT_LIMIT", 1_000),
    ("cfgledger:REQUEST_SIZE_LIMIT", 2_000_000),
];
/// The key written once through each instance after the load, to see the other one follow.
const LAST_KEY: &str = "RETRY_MAX_ATTEMPTS";
/// Writes each writer has acknowledged before the failover, and again, sent after the old primary stopped.
const ACKS_PER_PHASE: usize = 25;
/// How long a phase of the load may take before the test fails (not a measurement: a bound on waiting).
const PHASE_DEADLINE: Duration = Duration::from_secs(120);

/// A primary with a synchronous streaming standby, and a database of the test's on them.
struct Pair {
    primary: pg::Cluster,
    standby: pg::Cluster,
    db: String,
}

impl Pair {
    /// Starts both clusters, waits until the primary reports the standby as streaming and synchronous, and
    /// creates the test's database (which the standby then holds too).
    fn start() -> Pair {
        let primary = pg::Cluster::start_new_with(
            &format!("synchronous_standby_names = '{STANDBY}'\nsynchronous_commit = on"),
            &[],
        )
        .unwrap_or_else(|e| panic!("the primary starts: {e}"));
        // The standby copies the primary's configuration; once promoted it has no standby of its own, so it
        // must not wait for one (a third node would be needed for that).
        let standby =
            pg::Cluster::standby_of(&primary, &format!("cluster_name = '{STANDBY}'\nsynchronous_standby_names = ''"))
                .unwrap_or_else(|e| panic!("the standby starts from pg_basebackup -R of the primary: {e}"));
        let pair = Pair { primary, standby, db: format!("cfgl_failover_{}", uuid::Uuid::new_v4().simple()) };
        pair.wait_until_synchronous();
        pair.admin(&pair.primary).batch_execute(&format!("CREATE DATABASE {}", pair.db)).expect("CREATE DATABASE");
        pair
    }

    fn admin(&self, cluster: &pg::Cluster) -> postgres::Client {
        postgres::Client::connect(&format!("{}/postgres", cluster.base_url()), postgres::NoTls)
            .expect("an admin connection opens")
    }

    /// Waits until the primary's `pg_stat_replication` shows the standby streaming as its synchronous one.
    fn wait_until_synchronous(&self) {
        eventually("the standby to stream synchronously", || {
            let rows = self
                .admin(&self.primary)
                .query("SELECT application_name, state, sync_state FROM pg_stat_replication", &[])
                .map_err(|e| e.to_string())?;
            let seen: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
            match seen.as_slice() {
                [(name, state, sync)] if name == STANDBY && state == "streaming" && sync == "sync" => Ok(()),
                _ => Err(format!("pg_stat_replication: {seen:?}")),
            }
        });
    }

    /// The backend of the append whose COMMIT waits for the (stopped) standby, once there is one. The
    /// heartbeats' autocommit writes wait too, but their last statement is not a COMMIT.
    fn commit_waiting_for_the_standby(&self) -> i32 {
        eventually("the append's COMMIT to wait for the synchronous standby", || {
            let rows = self
                .admin(&self.primary)
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'SyncRep' \
                     AND query = 'COMMIT'",
                    &[&self.db],
                )
                .map_err(|e| e.to_string())?;
            match rows.as_slice() {
                [row] => Ok(row.get(0)),
                _ => Err(format!("{} backends wait on SyncRep with a COMMIT", rows.len())),
            }
        })
    }

    /// The URL cfgledger is given: both hosts, the primary first, read-write sessions only.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{}?target_session_attrs=read-write",
            self.primary.port, self.standby.port, self.db
        )
    }
}

/// What one PUT got.
#[derive(Debug, Clone)]
struct Outcome {
    value: u64,
    /// When the request was sent.
    sent: Instant,
    /// When its answer arrived.
    answered: Instant,
    status: u16,
    /// The acknowledged seq, or the refusal's error code and body.
    result: Result<u64, (String, String)>,
}

/// Writers PUTting continuously, one thread and one key each, until stopped.
struct Load {
    stop: AtomicBool,
    acks: Vec<AtomicUsize>,
    outcomes: Vec<Mutex<Vec<Outcome>>>,
}

impl Load {
    fn new() -> Load {
        Load {
            stop: AtomicBool::new(false),
            acks: PLAN.iter().map(|_| AtomicUsize::new(0)).collect(),
            outcomes: PLAN.iter().map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Writer `w`'s loop: PUT `base + n` for n = 1, 2, ... through `instance`.
    fn write(&self, w: usize, instance: &Instance, token: &str) {
        let (key, base) = PLAN[w];
        let http = Http::new(false);
        let url = format!("{}/admin/config/{key}", instance.url);
        let mut n = 0;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let value = base + n;
            let sent = Instant::now();
            let reply = http.call("PUT", &url, Some(token), Some(&json!({ "value": value }))).unwrap_or_else(|e| {
                panic!("PUT {key}={value} on {} got no answer: {e}\n{}", instance.name, instance.warnings())
            });
            let answered = Instant::now();
            let result = if reply.status == 200 {
                let item = reply.json();
                assert_eq!(item["value"], value, "the PUT of {key} on {} answers its value", instance.name);
                Ok(item["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {item}")))
            } else {
                let code = reply.assert_clean_5xx(&format!("PUT {key}={value} on {}", instance.name));
                assert_eq!(reply.status, 503, "PUT {key}={value} on {}: {}", instance.name, reply.body);
                // A refused write waits a moment, as a client honouring Retry-After would (shortened).
                std::thread::sleep(Duration::from_millis(50));
                Err((code, reply.body))
            };
            if result.is_ok() {
                self.acks[w].fetch_add(1, Ordering::SeqCst);
            }
            self.outcomes[w].lock().expect("lock").push(Outcome {
                value,
                sent,
                answered,
                status: reply.status,
                result,
            });
        }
    }

    /// Waits until every writer has `n` acknowledged writes sent at or after `since`.
    fn wait_acks_since(&self, since: Instant, n: usize, what: &str, instances: &[Instance]) {
        let deadline = Instant::now() + PHASE_DEADLINE;
        loop {
            let counts: Vec<usize> = self
                .outcomes
                .iter()
                .map(|o| o.lock().expect("lock").iter().filter(|o| o.result.is_ok() && o.sent >= since).count())
                .collect();
            if counts.iter().all(|c| *c >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: acknowledged writes per writer {counts:?} after {PHASE_DEADLINE:?}, want {n} each\n{}",
                instances.iter().map(Instance::warnings).collect::<Vec<_>>().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Asserts that a watch stream opened after `from` delivered exactly the log's setting changes after `from`
/// up to `to`, in order, each once, with the key and value the log holds.
fn assert_stream_matches_log(watch: &mut Watch, log: &[Value], from: u64, to: u64, name: &str) {
    watch.wait_for_seq(to);
    let expected: Vec<(u64, String, Value)> =
        changes(log).into_iter().filter(|(seq, _, _)| *seq > from && *seq <= to).collect();
    let delivered: Vec<(u64, String, Value)> = watch
        .seen
        .iter()
        .filter(|e| e.id <= to)
        .map(|e| {
            let key = e.data["key"].as_str().unwrap_or_default();
            let key = cfgledger_events::namespace::named(e.data["namespace"].as_str().unwrap_or_default(), key);
            (e.id, key, e.data["value"].clone())
        })
        .collect();
    assert_eq!(delivered.len(), expected.len(), "the watch stream of {name}: as many events as the log's changes");
    assert_eq!(delivered, expected, "the watch stream of {name} after seq {from} against the log");
}

/// Waits until every instance is ready at `head` with the same head hash.
fn wait_until_converged(instances: &[Instance], head: u64) {
    eventually(&format!("every instance to be ready at head {head}"), || {
        let mut hashes = std::collections::BTreeSet::new();
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

fn store_head(instance: &Instance) -> u64 {
    let reply = instance.ready();
    reply.json()["head"].as_u64().unwrap_or_else(|| panic!("no head in /ready of {}: {}", instance.name, reply.body))
}

#[test]
fn postgres_failover_to_a_synchronous_standby_loses_no_acknowledged_write() {
    let pair = Pair::start();
    let deployment = Deployment::new(&pair.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(2, SERVE_ARGS);
    let start = store_head(&instances[0]);
    wait_until_converged(&instances, start);
    let mut watches: Vec<Watch> = instances.iter().map(|i| i.watch(&token, start)).collect();

    let load = Load::new();
    let began = Instant::now();
    let (promoting, promoted, stopped) = std::thread::scope(|scope| {
        for w in 0..PLAN.len() {
            let (load, instance, token) = (&load, &instances[w % instances.len()], &token);
            scope.spawn(move || load.write(w, instance, token));
        }
        load.wait_acks_since(began, ACKS_PER_PHASE, "before the failover", &instances);
        // The failover, under load: the standby becomes the primary, then the old primary goes away.
        let promoting = Instant::now();
        pair.standby.promote().unwrap_or_else(|e| panic!("pg_ctl promote of the standby: {e}"));
        let promoted = Instant::now();
        pair.primary.stop().unwrap_or_else(|e| panic!("pg_ctl stop -m immediate of the old primary: {e}"));
        let stopped = Instant::now();
        // Writes sent from now on can only be committed on the new primary.
        load.wait_acks_since(stopped, ACKS_PER_PHASE, "after the failover", &instances);
        load.stop.store(true, Ordering::SeqCst);
        (promoting, promoted, stopped)
    });
    let outcomes: Vec<Vec<Outcome>> = load.outcomes.into_iter().map(|o| o.into_inner().expect("lock")).collect();

    // Each instance's tailer follows the new primary too: a write through one reaches the other, which does not
    // write meanwhile, so only its LISTEN connection (reconnected to the new primary) can wake it; the safety
    // poll is out of reach.
    let mut final_writes = Vec::new();
    for (w, writer) in instances.iter().enumerate() {
        let value = json!(7_000 + w);
        let item = writer.put(LAST_KEY, &token, value.clone()).ok_json(&format!("PUT {LAST_KEY} on {}", writer.name));
        let seq = item["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {item}"));
        for reader in instances.iter().filter(|r| r.name != writer.name) {
            eventually(&format!("{} to show {LAST_KEY}={value} at seq {seq}", reader.name), || {
                let reply = reader.get(LAST_KEY, &token);
                let item: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                if reply.status == 200 && item["value"] == value && item["seq"] == seq {
                    Ok(())
                } else {
                    Err(format!("{} {}\n{}", reply.status, reply.body, reader.warnings()))
                }
            });
        }
        final_writes.push((seq, value));
    }

    // The failover happened: the old primary is gone and the standby now takes writes.
    assert!(
        postgres::Client::connect(&format!("{}/postgres?connect_timeout=2", pair.primary.base_url()), postgres::NoTls)
            .is_err(),
        "the old primary is down"
    );
    let in_recovery: bool =
        pair.admin(&pair.standby).query_one("SELECT pg_is_in_recovery()", &[]).expect("a query").get(0);
    assert!(!in_recovery, "the promoted standby is a primary");

    // The log, read by the CLI through the multi-host URL (so from the new primary): gapless, verifying,
    // holding every acknowledged write at the seq its answer named.
    let log = deployment.log();
    let head = assert_gapless(&log);
    let report = deployment.verify();
    assert!(report.starts_with(&format!("ok: {head} events verified")), "verify: {report}");
    let by_seq: BTreeMap<u64, (String, Value)> = changes(&log).into_iter().map(|(s, k, v)| (s, (k, v))).collect();
    let mut acknowledged = 0usize;
    let mut unknown_but_written = 0usize;
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (outcome, (key, _)) in outcomes.iter().zip(PLAN) {
        let mut last = start;
        for o in outcome {
            let entry = (key.to_string(), json!(o.value));
            match &o.result {
                Ok(seq) => {
                    acknowledged += 1;
                    assert!(*seq > last, "the acknowledged seqs of {key} increase: {seq} after {last}");
                    last = *seq;
                    assert_eq!(
                        by_seq.get(seq),
                        Some(&entry),
                        "the acknowledged write {key}={} is at seq {seq} on the new primary",
                        o.value
                    );
                }
                // `unavailable` promises that nothing was written (a COMMIT whose answer was lost is settled
                // first); `outcome_unknown` says the change may or may not be in the log.
                Err((code, body)) if code == "unavailable" => {
                    assert!(
                        !by_seq.values().any(|e| *e == entry),
                        "the write {key}={} was refused ({} {body}) but is in the log",
                        o.value,
                        o.status
                    );
                    refused.entry(code.clone()).or_default().push(body.clone());
                }
                Err((code, body)) => {
                    assert_eq!(code, "outcome_unknown", "a write answered {} during the failover: {body}", o.status);
                    if by_seq.values().any(|e| *e == entry) {
                        unknown_but_written += 1;
                    }
                    refused.entry(code.clone()).or_default().push(body.clone());
                }
            }
        }
    }
    for (seq, value) in &final_writes {
        assert_eq!(by_seq.get(seq), Some(&(LAST_KEY.to_string(), value.clone())), "the final write at seq {seq}");
    }
    let written = by_seq.range(start + 1..).count() - final_writes.len();
    assert_eq!(
        written,
        acknowledged + unknown_but_written,
        "the log holds each acknowledged write once, and nothing else but writes whose outcome was unknown"
    );
    let last = start + u64::try_from(written + final_writes.len()).expect("a count");
    assert_eq!(head, last, "the log ends right after the last write");

    // Each instance resumed by itself: its writers were acknowledged for writes sent after the stop.
    for (w, outcome) in outcomes.iter().enumerate() {
        let after = outcome.iter().filter(|o| o.result.is_ok() && o.sent >= stopped).count();
        assert!(
            after >= ACKS_PER_PHASE,
            "writer {w} on instance {}: {after} writes acknowledged after the stop",
            w % 2
        );
    }
    wait_until_converged(&instances, head);
    for (instance, watch) in instances.iter().zip(&mut watches) {
        assert!(watch.is_open(), "the watch stream of {} stayed open through the failover", instance.name);
        assert_stream_matches_log(watch, &log, start, head, &instance.name);
        instance.assert_alive();
    }

    // What clients saw, for the record (not asserted: times depend on the machine).
    let resumed: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.iter().find(|o| o.result.is_ok() && o.sent >= stopped).map(|o| o.answered - stopped))
        .collect();
    let slowest = outcomes.iter().flatten().map(|o| o.answered - o.sent).max().unwrap_or_default();
    // The servers log why they refused; a COMMIT whose answer the stop took, settled as absent, says so.
    let settled_absent: usize = instances
        .iter()
        .map(|i| i.stderr().iter().filter(|l| l.contains("the log shows that nothing was written")).count())
        .sum();
    eprintln!(
        "failover: {acknowledged} writes acknowledged, head {head}; promote took {:?}, stop {:?}; first \
         acknowledged write after the stop, per writer: {resumed:?}; slowest answer {slowest:?}; refused: {}; \
         lost COMMITs settled as not written: {settled_absent}",
        promoted - promoting,
        stopped - promoted,
        refused.iter().map(|(c, b)| format!("{} x {c} (first: {})", b.len(), b[0])).collect::<Vec<_>>().join("; ")
    );
}

/// A COMMIT that PostgreSQL made durable but whose answer never reached cfgledger: with the standby stopped,
/// the primary commits the append locally and waits for the standby's flush; the backend is then terminated
/// (PostgreSQL warns that the transaction "has already committed locally"), so cfgledger's connection dies
/// mid-COMMIT. The change is in the log, so the server must answer it as written, at its seq, rather than
/// tell the client that nothing was written.
#[test]
fn postgres_commit_whose_answer_is_lost_is_answered_as_it_ended() {
    const KEY: &str = "TOOL_RATE_LIMIT";
    let pair = Pair::start();
    let deployment = Deployment::new(&pair.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(1, SERVE_ARGS);
    let instance = &instances[0];
    let item = instance.put(KEY, &token, json!(111)).ok_json("the first PUT");
    let first = item["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {item}"));

    pair.standby.stop().unwrap_or_else(|e| panic!("the standby stops: {e}"));
    let reply = std::thread::scope(|scope| {
        let put = scope.spawn(|| instance.put(KEY, &token, json!(222)));
        let pid = pair.commit_waiting_for_the_standby();
        let ended: bool = pair
            .admin(&pair.primary)
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .expect("pg_terminate_backend runs")
            .get(0);
        assert!(ended, "the backend of the append was terminated");
        put.join().expect("the PUT thread")
    });

    // The standby back, so that the rest of the test can write.
    pair.standby.start().unwrap_or_else(|e| panic!("the standby starts again: {e}"));
    pair.wait_until_synchronous();
    let log = deployment.log();
    assert_gapless(&log);
    deployment.verify();
    let landed = changes(&log).contains(&(first + 1, KEY.to_string(), json!(222)));
    assert!(landed, "the commit was durable on the primary, so the change is in the log at seq {}", first + 1);
    let item = reply.ok_json("the PUT whose COMMIT answer was lost, though the change is in the log");
    assert_eq!((&item["value"], item["seq"].as_u64()), (&json!(222), Some(first + 1)), "{item}");

    let item = instance.put(KEY, &token, json!(333)).ok_json("the next PUT");
    assert_eq!(item["seq"].as_u64(), Some(first + 2), "the next write follows: {item}");
    instance.assert_alive();
}

/// The same lost answer, with the database then out of reach for longer than the server keeps asking: the
/// primary stops while the append's COMMIT, already flushed to its WAL, waits for the stopped standby. The
/// server cannot know whether the change was written, and must say so (503 `outcome_unknown`), not claim
/// that nothing was written: once the primary is back, the change is in the log, and the server shows it.
#[test]
fn postgres_commit_whose_answer_is_lost_while_the_database_stays_down_is_answered_outcome_unknown() {
    const KEY: &str = "TOOL_RATE_LIMIT";
    let pair = Pair::start();
    let deployment = Deployment::new(&pair.url(), "");
    let token = deployment.admin_token();
    let instances = deployment.serve_many(1, SERVE_ARGS);
    let instance = &instances[0];
    let item = instance.put(KEY, &token, json!(111)).ok_json("the first PUT");
    let first = item["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {item}"));

    pair.standby.stop().unwrap_or_else(|e| panic!("the standby stops: {e}"));
    let reply = std::thread::scope(|scope| {
        let put = scope.spawn(|| instance.put(KEY, &token, json!(222)));
        pair.commit_waiting_for_the_standby();
        pair.primary.stop().unwrap_or_else(|e| panic!("the primary stops: {e}"));
        put.join().expect("the PUT thread")
    });
    let code = reply.assert_clean_5xx("the PUT whose COMMIT answer was lost while the database stayed down");
    assert_eq!((reply.status, code.as_str()), (503, "outcome_unknown"), "{}", reply.body);
    let message = reply.json()["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("read it back before retrying"), "the answer says what to do: {message}");

    pair.primary.start().unwrap_or_else(|e| panic!("the primary starts again: {e}"));
    pair.standby.start().unwrap_or_else(|e| panic!("the standby starts again: {e}"));
    pair.wait_until_synchronous();
    let log = deployment.log();
    assert_gapless(&log);
    deployment.verify();
    assert!(
        changes(&log).contains(&(first + 1, KEY.to_string(), json!(222))),
        "the COMMIT was flushed on the primary before it waited, so the change is in the log at seq {}",
        first + 1
    );
    // Reading it back, as the answer asks, shows it: the instance caught up once it reconnected.
    eventually(&format!("{} to show {KEY}=222 at seq {}", instance.name, first + 1), || {
        let reply = instance.get(KEY, &token);
        let item: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        if reply.status == 200 && item["value"] == 222 && item["seq"] == first + 1 {
            Ok(())
        } else {
            Err(format!("{} {}\n{}", reply.status, reply.body, instance.warnings()))
        }
    });
    let item = instance.put(KEY, &token, json!(333)).ok_json("the next PUT");
    assert_eq!(item["seq"].as_u64(), Some(first + 2), "the next write follows: {item}");
    instance.assert_alive();
}
