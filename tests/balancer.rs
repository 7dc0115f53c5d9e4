//! Issue 19, part 2: three `cfgledger serve` processes on one PostgreSQL behind a real HAProxy (Debian's,
//! started on loopback by `tests/haproxy`), with watchers and writers going through the balancer. One
//! server is killed (SIGKILL) under load:
//! - the watchers whose stream it held reconnect through the balancer with `Last-Event-ID` and resume, so
//!   that every watcher has every change once, in order, with no gap and no duplicate;
//! - writes see at most the errors `docs/deployment.md` documents (a `502` for a request that was in flight
//!   on the dead server, whose outcome is unknown; a `503` refused before anything was written), and every
//!   acknowledged write is in the log at the seq its answer named;
//! - `GET /admin/instances` stops listing the dead server.
//!
//! Never skipped: a missing haproxy is installed, and a PostgreSQL comes from `tests/pg`. Nothing here
//! asserts a time; deadlines only bound the waits.

mod haproxy;
mod instances_support;
mod pg;

use instances_support::{assert_gapless, changes, eventually, Deployment, Http, DEADLINE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `serve` flags of every instance: the tailer's safety net out of reach (a notification must do the work)
/// and frequent keep-alives on watch streams.
const SERVE_ARGS: &[&str] = &["--safety-poll", "1h", "--sse-keepalive", "1s"];
/// One key per writer, each with a base far from its default so that every value is a change.
const WRITERS: [(&str, u64); 3] =
    [("TOOL_RATE_LIMIT", 100_000), ("MAX_PROMPT_SIZE", 1_000_000), ("TOOL_CONCURRENT_LIMIT", 1_000)];
/// Watch streams opened through the balancer: two per server under round robin.
const WATCHERS: usize = 6;
/// Acknowledged writes to wait for before the kill, and again after it.
const WRITES_EACH_SIDE: u64 = 60;

/// What one PUT got: the value it wrote, the HTTP status, and the seq of an acknowledged write.
struct Outcome {
    value: u64,
    status: u16,
    seq: Option<u64>,
    body: String,
}

/// What a resuming watcher saw: every change event (seq, key, value), how many connections it made, and why
/// each connection but the last ended.
#[derive(Default)]
struct Watched {
    events: Vec<(u64, String, Value)>,
    connections: usize,
    ends: Vec<String>,
}

/// A watcher as a browser's `EventSource` behaves: it follows `GET /admin/config/watch?kind=settings` through
/// `url` and, whenever the stream ends or breaks, reconnects with `Last-Event-ID` set to the last id it saw
/// (a change's or a `progress` event's). It returns once it has seen an id at or past `until`.
fn resuming_watch(url: String, token: String, after: u64, until: Arc<AtomicU64>) -> std::thread::JoinHandle<Watched> {
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(30))
            .build();
        let mut watched = Watched::default();
        let mut last = after;
        let mut quiet_since = Instant::now();
        loop {
            if last >= until.load(Ordering::SeqCst) {
                return watched;
            }
            assert!(
                quiet_since.elapsed() < 2 * DEADLINE,
                "a watcher made no progress past seq {last} for {:?}; ends so far: {:?}",
                2 * DEADLINE,
                watched.ends
            );
            let response = agent
                .get(&format!("{url}/admin/config/watch?kind=settings"))
                .set("Authorization", &format!("Bearer {token}"))
                .set("Accept", "text/event-stream")
                .set("Last-Event-ID", &last.to_string())
                .call();
            let response = match response {
                Ok(r) if r.status() == 200 => r,
                Ok(r) => {
                    watched.ends.push(format!("reconnect answered {}", r.status()));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => {
                    watched.ends.push(format!("reconnect failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            watched.connections += 1;
            let mut lines = BufReader::new(response.into_reader());
            let (mut id, mut data, mut name) = (None::<u64>, None::<String>, None::<String>);
            let why = loop {
                let mut line = String::new();
                match lines.read_line(&mut line) {
                    Ok(0) => break "the stream ended".to_string(),
                    Err(e) => break format!("the stream broke: {e}"),
                    Ok(_) => {}
                }
                let line = line.trim_end_matches(['\r', '\n']);
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse().unwrap_or_else(|_| panic!("an SSE id that is a seq: {line:?}")));
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(v.trim().to_string());
                } else if line.is_empty() {
                    let (id, data, name) = (id.take(), data.take(), name.take());
                    match name.as_deref() {
                        None | Some("message") => {
                            let (Some(id), Some(data)) = (id, data) else { continue };
                            let change: Value = serde_json::from_str(&data).expect("an event's data is JSON");
                            assert!(id > last, "event {id} came after {last}: a duplicate or a step back");
                            let key = change["key"].as_str().unwrap_or_default().to_string();
                            watched.events.push((id, key, change["value"].clone()));
                            last = id;
                            quiet_since = Instant::now();
                        }
                        Some("end") => watched.ends.push(format!("end event: {}", data.unwrap_or_default())),
                        Some(_) => {
                            // `progress`: its id is the seq scanned up to, which `Last-Event-ID` carries on.
                            if let Some(id) = id {
                                last = last.max(id);
                            }
                        }
                    }
                }
                if last >= until.load(Ordering::SeqCst) {
                    return watched;
                }
            };
            watched.ends.push(why);
        }
    })
}

/// The head every reachable server reports through the balancer, once two answers in a row agree and say
/// they have applied it.
fn converged_head(http: &Http, url: &str) -> u64 {
    eventually("the servers behind the balancer to agree on the head", || {
        let mut heads = Vec::new();
        for _ in 0..4 {
            let reply = http.call("GET", &format!("{url}/ready"), None, None)?;
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            if reply.status != 200 || body["head"] != body["applied"] {
                return Err(format!("{} {}", reply.status, reply.body));
            }
            heads.push(body["head"].as_u64().ok_or("no head")?);
        }
        if heads.windows(2).all(|w| w[0] == w[1]) {
            Ok(heads[0])
        } else {
            Err(format!("heads differ: {heads:?}"))
        }
    })
}

#[test]
fn a_server_killed_behind_haproxy_loses_no_acknowledged_write_and_no_watcher_misses_a_change() {
    let db = pg::TestDb::new();
    let deployment = Deployment::new(&db.url(), "");
    let token = deployment.admin_token();
    let mut instances = deployment.serve_many(3, SERVE_ARGS);
    let urls: Vec<String> = instances.iter().map(|i| i.url.clone()).collect();
    let balancer = haproxy::Balancer::start(&urls).unwrap_or_else(|e| panic!("HAProxy in front of {urls:?}: {e}"));
    let lb = balancer.url.clone();
    let http = Http::new(false);
    let start = converged_head(&http, &lb);
    let victim = 1;
    let victim_id = instances[victim].call("GET", "/admin/instances", Some(&token), None).ok_json("instances")["self"]
        .as_str()
        .expect("an instance id")
        .to_string();

    let until = Arc::new(AtomicU64::new(u64::MAX));
    let watchers: Vec<_> =
        (0..WATCHERS).map(|_| resuming_watch(lb.clone(), token.clone(), start, until.clone())).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = WRITERS
        .iter()
        .map(|&(key, base)| {
            let (lb, token, stop, acknowledged) = (lb.clone(), token.clone(), stop.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let http = Http::new(true);
                let url = format!("{lb}/admin/config/{key}");
                let mut outcomes = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let value = base + n;
                    // No answer at all is documented too: HAProxy closes the client's connection when a request
                    // it sent over a reused server connection meets the server's death, as a browser expects.
                    let reply = match http.call("PUT", &url, Some(&token), Some(&json!({ "value": value }))) {
                        Ok(reply) => reply,
                        Err(e) => {
                            outcomes.push(Outcome { value, status: 0, seq: None, body: e });
                            continue;
                        }
                    };
                    let seq = (reply.status == 200).then(|| {
                        let item = reply.json();
                        assert_eq!(item["value"], value, "the PUT of {key} answers its value");
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                        item["seq"].as_u64().expect("an acknowledged PUT names its seq")
                    });
                    outcomes.push(Outcome { value, status: reply.status, seq, body: reply.body });
                }
                (key, outcomes)
            })
        })
        .collect();

    let wait_for_writes = |at_least: u64| {
        eventually(&format!("{at_least} acknowledged writes"), || {
            let n = acknowledged.load(Ordering::SeqCst);
            if n >= at_least {
                Ok(n)
            } else {
                Err(format!("{n} so far"))
            }
        })
    };
    let before_kill = wait_for_writes(WRITES_EACH_SIDE);
    drop(instances.remove(victim)); // SIGKILL, under load
    wait_for_writes(before_kill + WRITES_EACH_SIDE);
    stop.store(true, Ordering::SeqCst);
    let outcomes: Vec<(&str, Vec<Outcome>)> = writers.into_iter().map(|w| w.join().expect("a writer thread")).collect();

    let head = converged_head(&http, &lb);
    until.store(head, Ordering::SeqCst);
    let watched: Vec<Watched> = watchers.into_iter().map(|w| w.join().expect("a watcher thread")).collect();

    // The log: gapless, verifying, and holding every acknowledged write at its seq, once.
    let log = deployment.log();
    assert_eq!(assert_gapless(&log), head, "the log ends at the head the servers report");
    let report = deployment.verify();
    assert!(report.starts_with(&format!("ok: {head} events verified")), "verify: {report}");
    let logged: BTreeMap<u64, (String, Value)> = changes(&log).into_iter().map(|(s, k, v)| (s, (k, v))).collect();
    let mut unknown = 0;
    let mut refused = 0;
    let mut landed = 0;
    for (key, outcomes) in &outcomes {
        for o in outcomes {
            let entry = (key.to_string(), json!(o.value));
            let copies = logged.values().filter(|e| **e == entry).count();
            match (o.status, o.seq) {
                (200, Some(seq)) => {
                    assert_eq!(logged.get(&seq), Some(&entry), "the acknowledged write {key}={} at seq {seq}", o.value);
                    assert_eq!(copies, 1, "the acknowledged write {key}={} is in the log once", o.value);
                    landed += 1;
                }
                // In flight on the server that died (a 502, or the connection closed without an answer): the
                // outcome is unknown, so it is in the log at most once.
                (0 | 502, None) => {
                    assert!(copies <= 1, "{key}={} ({}: {}) is in the log {copies} times", o.value, o.status, o.body);
                    unknown += 1;
                }
                // A commit whose answer the server lost with its database connection: unknown too.
                (503, None) if o.body.contains("\"outcome_unknown\"") => {
                    assert!(copies <= 1, "{key}={} (outcome_unknown) is in the log {copies} times", o.value);
                    unknown += 1;
                }
                // Refused before anything was written (by cfgledger, or by the balancer with no server left).
                (503, None) => {
                    assert_eq!(copies, 0, "{key}={} was refused with 503 but is in the log: {}", o.value, o.body);
                    refused += 1;
                }
                (status, _) => panic!("PUT {key}={} through the balancer: undocumented {status}: {}", o.value, o.body),
            }
        }
    }
    let written_by_writers =
        logged.range(start + 1..).filter(|(_, (key, _))| WRITERS.iter().any(|(k, _)| k == key)).count();
    assert!(
        written_by_writers >= landed && written_by_writers <= landed + unknown,
        "the log holds {written_by_writers} writes: the {landed} acknowledged ones and at most the {unknown} unknown"
    );
    eprintln!("writes: {landed} acknowledged, {unknown} unknown (502 or no answer), {refused} refused (503)");

    // Every watcher: exactly the log's changes after `start`, in order, whichever server it ended on.
    let expected: Vec<(u64, String, Value)> = changes(&log).into_iter().filter(|(seq, _, _)| *seq > start).collect();
    for (i, w) in watched.iter().enumerate() {
        assert_eq!(
            w.events, expected,
            "watcher {i} (connections {}, ends {:?}) against the log",
            w.connections, w.ends
        );
    }
    let resumed = watched.iter().filter(|w| w.connections > 1).count();
    assert!(
        resumed >= 1,
        "the watchers the dead server held reconnected: {:?}",
        watched.iter().map(|w| (&w.connections, &w.ends)).collect::<Vec<_>>()
    );
    eprintln!("{resumed} of {WATCHERS} watchers resumed through the balancer after the kill");

    // The dead server leaves the fleet's list (a killed instance ages out; it cannot remove its heartbeat).
    eventually("the killed instance to leave /admin/instances", || {
        let reply = http.call("GET", &format!("{lb}/admin/instances"), Some(&token), None)?;
        let body = reply.json();
        let ids: Vec<&str> =
            body["instances"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str()).collect();
        if reply.status == 200 && ids.len() == 2 && !ids.contains(&victim_id.as_str()) {
            Ok(())
        } else {
            Err(format!("{} {}", reply.status, reply.body))
        }
    });
    for instance in &instances {
        instance.assert_alive();
    }
    drop(balancer);
}
