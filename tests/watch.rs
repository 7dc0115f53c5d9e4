//! The watch stream as agents and clients use it: every event kind, the filters, `progress` events that
//! let `Last-Event-ID` keep up under a filter, the `end` of a stream whose token expires, what a
//! `config_reader` may call, and the heartbeats of agents and clients in `GET /admin/instances`; then the
//! fleet's case (issue 19): two hundred watchers each getting every change once and in order, and a watcher
//! whose client stops reading, which holds no one back, is ended with a reason once it falls further behind
//! than the server's window, and resumes with `Last-Event-ID` with no gap and no duplicate.

mod api_support;

use api_support::{Next, Store};
use serde_json::{json, Value};

fn heartbeat(id: &str, seq: u64, hash: &str) -> Value {
    json!({"id": id, "kind": "agent", "namespace": "mcpgateway", "labels": {"zone": "a"}, "applied_seq": seq,
           "head_hash": hash, "stale": false, "staleness_secs": 0.0, "origin": "server", "host": "h", "pid": 1,
           "version": "0.1.0", "started_at": "2026-12-04T00:00:00Z"})
}

#[test]
fn the_stream_carries_every_kind_and_filters_by_namespace_prefix_category_and_kind() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let mut all = server.watch("/admin/config/watch", &admin, None);
    let mut logging = server.watch("/admin/config/watch?category=logging", &admin, None);
    let mut tools = server.watch("/admin/config/watch?kind=registry&prefix=tools/", &admin, None);
    let mut own = server.watch("/admin/config/watch?namespace=cfgledger", &admin, None);
    let mut max = server.watch("/admin/config/watch?prefix=mcpgateway:MAX_", &admin, None);

    let workers = server.put("MAX_WORKERS", &admin, json!(9)).ok_json()["seq"].as_u64().unwrap();
    let level = server.put("LOG_FILE", &admin, json!("/var/log/app.log")).ok_json()["seq"].as_u64().unwrap();
    let tool = json!({"name": "search", "url": "https://api.example/search", "auth_type": "bearer",
                      "auth_token": "tool-token-planted-77"});
    server.send_json("POST", "/tools", Some(&admin), &tool).ok_json();
    let own_key = server
        .send_json("PUT", "/admin/config/cfgledger:CONFIG_WRITE_RATE_LIMIT", Some(&admin), &json!({"value": 500}))
        .ok_json()["seq"]
        .as_u64()
        .unwrap();

    let got = all.events(4);
    let kinds: Vec<&str> = got.iter().map(|e| e.data["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SettingChanged", "SettingChanged", "ResourceCreated", "SettingChanged"]);
    let created = &got[2].data;
    assert_eq!((created["key"].as_str(), created["namespace"].as_str()), (Some("tools/search"), None));
    assert_eq!(created["detail"][0]["resource"]["name"], "search", "{created}");
    assert!(!created.to_string().contains("tool-token-planted-77"), "secrets never travel: {created}");
    assert_eq!(got[1].data["restart_required"], true, "LOG_FILE is restart-required in the suite's catalog");
    assert_eq!(got[0].data["restart_required"], false);

    assert_eq!(logging.events(1)[0].id, level);
    assert_eq!(tools.events(1)[0].data["key"], "tools/search");
    assert_eq!(own.events(1)[0].id, own_key);
    assert_eq!(max.events(1)[0].id, workers);
    for (name, stream) in [("logging", &mut logging), ("tools", &mut tools), ("own", &mut own), ("max", &mut max)] {
        assert!(stream.until_quiet(2).is_empty(), "{name}: nothing else passes its filter");
    }

    for (query, wrong) in [
        ("kind=Nope", "unknown kind"),
        ("category=nope", "unknown category"),
        ("namespace=nope", "unknown namespace"),
        ("namespace=*", "one namespace"),
    ] {
        let msg = server.get(&format!("/admin/config/watch?{query}"), &admin).error_message(400, "bad_request");
        assert!(msg.contains(wrong), "{query}: {msg}");
    }
}

#[test]
fn progress_events_carry_last_event_id_past_filtered_events_and_resume_stays_exact() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let mut stream = server.watch("/admin/config/watch?kind=settings&namespace=mcpgateway", &admin, None);
    // The first progress event says the stream has caught up, at the head.
    let head = server.head();
    let first = match stream.next() {
        Next::Named(kind, id, data) => (kind, id, data),
        other => panic!("a progress event first, got {other:?}"),
    };
    assert_eq!((first.0.as_str(), first.1), ("progress", Some(head)));
    // An event the filter leaves out (an entity) moves the cursor by a progress event, with the log's hash.
    server.send_json("POST", "/tools", Some(&admin), &json!({"name": "t", "url": "https://api.example/t"})).ok_json();
    let past = server.head();
    let progress = loop {
        if let Next::Named(kind, id, data) = stream.next() {
            assert_eq!(kind, "progress");
            if id == Some(past) {
                break serde_json::from_str::<Value>(&data).unwrap();
            }
        }
    };
    assert_eq!(progress["seq"], past);
    let verified = server.get("/admin/verify", &admin).ok_json();
    assert_eq!(progress["hash"], verified["head"]["hash"], "the hash is the log's: {verified}");
    drop(stream);

    // Resume from the progress id: the next setting change comes, nothing before it does.
    let next = server.put("MAX_WORKERS", &admin, json!(5)).ok_json()["seq"].as_u64().unwrap();
    let mut resumed =
        server.watch("/admin/config/watch?kind=settings&namespace=mcpgateway", &admin, Some(&past.to_string()));
    let got = resumed.events(1);
    assert_eq!(got[0].id, next);
    assert!(resumed.until_quiet(2).is_empty());
}

#[test]
fn a_stream_ends_when_its_token_expires_and_a_config_reader_may_watch_and_report() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", "platform_admin");
    let reader = store.token_ttl("agent-7", "config_reader", "2s");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let mut stream = server.watch("/admin/config/watch?progress=false", &reader, None);
    let ended = loop {
        match stream.next() {
            Next::Named(kind, _, data) if kind == "end" => break data,
            Next::Event(e) => panic!("no change was made: {e:?}"),
            _ => {}
        }
    };
    assert_eq!(ended, "the token expired");

    // A config_reader: render, watch and heartbeat; nothing else.
    let reader = store.token("agent-7", "config_reader");
    let head = server.head();
    let hash = server.get("/admin/verify", &admin).ok_json()["head"]["hash"].as_str().unwrap().to_string();
    let reply = server.send_json("POST", "/admin/instances/heartbeat", Some(&reader), &heartbeat("a1", head, &hash));
    assert_eq!(reply.status, 204, "{}", reply.body);
    let msg = server.get("/admin/config", &reader).error_message(403, "forbidden");
    assert!(msg.contains("may only read /admin/config/render and /admin/config/watch"), "{msg}");
    let listed = server.get("/admin/instances", &admin).ok_json();
    let agent = listed["instances"].as_array().unwrap().iter().find(|i| i["id"] == "agent/a1").expect("listed").clone();
    assert_eq!((agent["status"].as_str(), agent["reported_by"].as_str()), (Some("converged"), Some("agent-7")));
    assert_eq!((agent["lag"].as_u64(), agent["matches_log"].as_bool()), (Some(0), Some(true)));
    assert_eq!(agent["labels"]["zone"], "a");
}

#[test]
fn instances_show_a_behind_a_stale_and_a_diverged_agent_and_bad_heartbeats_are_refused() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&[]);
    server.put("MAX_WORKERS", &admin, json!(3)).ok_json();
    let log = store.log();
    let (old_seq, old_hash) = (log[1]["seq"].as_u64().unwrap(), log[1]["hash"].as_str().unwrap().to_string());
    let post = |body: &Value| server.send_json("POST", "/admin/instances/heartbeat", Some(&admin), body);
    assert_eq!(post(&heartbeat("behind", old_seq, &old_hash)).status, 204);
    let mut stale = heartbeat("stale", old_seq, &old_hash);
    stale["stale"] = json!(true);
    stale["origin"] = json!("cache");
    assert_eq!(post(&stale).status, 204);
    assert_eq!(post(&heartbeat("forked", old_seq, &"ab".repeat(32))).status, 204);
    let listed = server.get("/admin/instances", &admin).ok_json();
    let status =
        |id: &str| listed["instances"].as_array().unwrap().iter().find(|i| i["id"] == id).map(|i| i["status"].clone());
    assert_eq!(status("agent/behind"), Some(json!("behind")));
    assert_eq!(status("agent/stale"), Some(json!("stale")));
    assert_eq!(status("agent/forked"), Some(json!("diverged")));
    assert_eq!(listed["converged"], false);
    assert_eq!(listed["by_status"]["diverged"], 1);
    assert_eq!(
        (listed["total"].as_u64(), listed["matched"].as_u64(), listed["truncated"].as_bool()),
        (Some(4), Some(4), Some(false))
    );

    // Filters narrow the list; the counts stay those of every live instance.
    let ids = |query: &str| -> (Vec<String>, Value) {
        let list = server.get(&format!("/admin/instances?{query}"), &admin).ok_json();
        let ids = list["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        (ids, list)
    };
    // The server's own entry is what it has applied now, even before its next beat reports the change.
    server.put("MAX_WORKERS", &admin, json!(4)).ok_json();
    let (servers, list) = ids("kind=server");
    let own = &list["instances"][0];
    assert_eq!((servers.len(), own["self"].as_bool()), (1, Some(true)), "{own}");
    assert_eq!(
        (own["status"].as_str(), own["lag"].as_u64(), own["matches_log"].as_bool()),
        (Some("converged"), Some(0), Some(true)),
        "{own}"
    );
    assert_eq!(own["applied_seq"], store.log().last().unwrap()["seq"], "{own}");
    let (not_converged, list) = ids("status=behind,stale,ahead,diverged&kind=agent");
    assert_eq!(not_converged, ["agent/behind", "agent/forked", "agent/stale"]);
    assert_eq!((list["total"].as_u64(), list["matched"].as_u64()), (Some(4), Some(3)));
    let counted: u64 = list["by_status"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(counted, 4, "the counts are of every instance: {list}");
    let (stale, _) = ids("status=stale");
    assert_eq!(stale, ["agent/stale"]);
    let (servers, _) = ids("kind=server");
    assert_eq!(servers.len(), 1);
    assert!(!servers[0].starts_with("agent/"), "{servers:?}");
    let (first, list) = ids("kind=agent&limit=1");
    assert_eq!(first, ["agent/behind"]);
    assert_eq!((list["matched"].as_u64(), list["truncated"].as_bool()), (Some(3), Some(true)));
    let (none, list) = ids("limit=0");
    assert!(none.is_empty());
    assert_eq!((list["total"].as_u64(), list["by_status"]["stale"].as_u64()), (Some(4), Some(1)));
    for (query, says) in [
        ("status=behind,late", "status expects some of converged, behind, stale, ahead, diverged"),
        ("kind=robot", "kind expects one of server, agent, client"),
        ("limit=-1", "limit"),
        ("sort=id", "sort"),
    ] {
        let msg = server.get(&format!("/admin/instances?{query}"), &admin).error_message(400, "bad_request");
        assert!(msg.contains(says), "{query}: {msg}");
    }

    let head = store.log().len();
    for (field, value, says) in [
        ("id", json!("../../etc"), "id expects"),
        ("kind", json!("server"), "kind expects agent or client"),
        ("namespace", json!("nope"), "unknown namespace"),
        ("head_hash", json!("xyz"), "64 hex"),
        ("labels", json!({"a b": "c"}), "a label is NAME=VALUE"),
        ("staleness_secs", json!(-1.0), "staleness_secs"),
        ("origin", json!("disk"), "origin expects"),
    ] {
        let mut body = heartbeat("x", old_seq, &old_hash);
        body[field] = value;
        let msg = post(&body).error_message(400, "bad_request");
        assert!(msg.contains(says), "{field}: {msg}");
    }
    let mut unknown = heartbeat("x", old_seq, &old_hash);
    unknown["surprise"] = json!(1);
    post(&unknown).error(400, "bad_request");
    assert_eq!(store.log().len(), head, "heartbeats are never events");
}

/// Reads `stream` until it has `n` change events, returning their ids (progress events and comments pass).
fn ids_of(stream: &mut api_support::Watch, n: usize) -> Vec<u64> {
    stream.events(n).into_iter().map(|e| e.id).collect()
}

#[test]
fn two_hundred_watchers_each_receive_every_change_once_and_in_order() {
    const WATCHERS: usize = 200;
    const CHANGES: usize = 20;
    let store = Store::new("");
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let streams: Vec<_> = (0..WATCHERS).map(|_| server.watch("/admin/config/watch", &admin, None)).collect();
    assert_eq!(open_streams(&server), WATCHERS as f64, "every stream is counted while open");
    let readers: Vec<_> =
        streams.into_iter().map(|mut s| std::thread::spawn(move || ids_of(&mut s, CHANGES))).collect();
    let mut written = Vec::new();
    for i in 1..=CHANGES {
        let seq = server.put("MAX_WORKERS", &admin, json!(i)).ok_json()["seq"].as_u64().expect("a seq");
        written.push(seq);
    }
    for (n, reader) in readers.into_iter().enumerate() {
        let got = reader.join().expect("the watcher's thread");
        assert_eq!(got, written, "watcher {n} got every change once, in order");
    }
    // The readers are gone with their connections: the server sees each at its next keep-alive.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while open_streams(&server) > 0.0 {
        assert!(std::time::Instant::now() < deadline, "{} streams still counted as open", open_streams(&server));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The `cfgledger_watch_streams` gauge as `/metrics` shows it.
fn open_streams(server: &api_support::Server) -> f64 {
    metric(server, "cfgledger_watch_streams")
}

/// A series without labels, as `/metrics` shows it.
fn metric(server: &api_support::Server, name: &str) -> f64 {
    let metrics = server.call("GET", "/metrics", None).body;
    let line = metrics
        .lines()
        .find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {name} in /metrics"));
    line[name.len()..].trim().parse().expect("a number")
}

#[test]
fn an_id_belongs_to_the_subject_that_reports_it_even_when_two_race_for_it() {
    let store = Store::new("");
    let admin = store.token("ada", "platform_admin");
    let tokens = [store.token("fleet-a", "config_reader"), store.token("fleet-b", "config_reader")];
    let server = store.serve(&[]);
    let head = server.head();
    let hash = server.get("/admin/verify", &admin).ok_json()["head"]["hash"].as_str().unwrap().to_string();
    let post = |token: &str, id: &str| {
        server.send_json("POST", "/admin/instances/heartbeat", Some(token), &heartbeat(id, head, &hash))
    };
    let owner = |id: &str| {
        let listed = server.get("/admin/instances?kind=agent", &admin).ok_json();
        let entry = listed["instances"].as_array().unwrap().iter().find(|i| i["id"] == format!("agent/{id}")).cloned();
        entry.map(|e| e["reported_by"].as_str().unwrap_or("").to_string())
    };

    // One after the other: the first subject keeps the id; the second is refused and changes nothing; an
    // admin may take it over, to clear it.
    assert_eq!(post(&tokens[0], "gw-1").status, 204);
    let msg = post(&tokens[1], "gw-1").error_message(409, "conflict");
    assert!(msg.contains("instance agent/gw-1 is reported by another subject; choose another id"), "{msg}");
    assert_eq!(owner("gw-1").as_deref(), Some("fleet-a"));
    assert_eq!(post(&tokens[0], "gw-1").status, 204, "its own subject beats on");
    assert_eq!(post(&admin, "gw-1").status, 204);
    assert_eq!(owner("gw-1").as_deref(), Some("ada"));

    // At once, in one group or two: one subject takes the new id, every beat of the other is refused.
    let start = std::sync::Barrier::new(20);
    let answers: Vec<(usize, u16)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..20)
            .map(|n| {
                let (post, start, token) = (&post, &start, &tokens[n % 2]);
                s.spawn(move || {
                    start.wait();
                    (n % 2, post(token, "race").status)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a beat's thread")).collect()
    });
    let winners: std::collections::BTreeSet<usize> =
        answers.iter().filter(|(_, status)| *status == 204).map(|(who, _)| *who).collect();
    assert_eq!(winners.len(), 1, "exactly one subject took the id: {answers:?}");
    let winner = *winners.first().unwrap();
    assert!(
        answers.iter().all(|(who, status)| if *who == winner { *status == 204 } else { *status == 409 }),
        "{answers:?}"
    );
    assert_eq!(owner("race").as_deref(), Some(["fleet-a", "fleet-b"][winner]));
}

#[test]
fn heartbeats_sent_at_once_are_stored_in_groups_and_each_is_answered_once_stored() {
    const AGENTS: usize = 300;
    let store = Store::new("");
    let admin = store.token("ada", "platform_admin");
    let reader = store.token("fleet", "config_reader");
    let server = store.serve(&[]);
    let head = server.head();
    let hash = server.get("/admin/verify", &admin).ok_json()["head"]["hash"].as_str().unwrap().to_string();
    let start = std::sync::Barrier::new(AGENTS);
    std::thread::scope(|s| {
        for n in 0..AGENTS {
            let (server, reader, hash, start) = (&server, &reader, &hash, &start);
            s.spawn(move || {
                start.wait();
                let body = heartbeat(&format!("a{n}"), head, hash);
                let reply = server.send_json("POST", "/admin/instances/heartbeat", Some(reader), &body);
                assert_eq!(reply.status, 204, "agent {n}: {}", reply.body);
            });
        }
    });
    // Each was answered once stored: every one is listed at once, by this server and from the store.
    let listed = server.get("/admin/instances", &admin).ok_json();
    let agents: std::collections::BTreeSet<String> = listed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "agent")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(agents, (0..AGENTS).map(|n| format!("agent/a{n}")).collect());
    let file = rusqlite::Connection::open(store.db_path()).expect("the store's file opens");
    let rows: usize = file.query_row("SELECT count(*) FROM instances", [], |r| r.get(0)).expect("a count");
    assert_eq!(rows, AGENTS + 1, "in the file: the agents and the server itself");
    let (beats, groups) =
        (metric(&server, "cfgledger_heartbeats_total"), metric(&server, "cfgledger_heartbeat_groups_total"));
    assert_eq!(beats, AGENTS as f64);
    assert!(groups < beats, "{AGENTS} beats sent at once took {groups} transactions: none was grouped");
}

#[test]
fn a_watcher_that_stops_reading_holds_no_one_back_is_ended_with_a_reason_and_resumes_with_no_gap() {
    const CHANGES: usize = 80;
    let store = Store::new("");
    let admin = store.token("ada", "platform_admin");
    // A small window, and big events (each sets a 200 KB value), so that what the socket buffers hold is much
    // less than what the stopped watcher misses.
    let server = store.serve(&["--sse-keepalive", "200ms", "--watch-window", "16"]);
    let path = "/admin/config/watch?kind=settings";
    let mut stopped = server.watch(path, &admin, None);
    // It catches up (a progress event), then its client stops reading.
    while !matches!(stopped.next(), Next::Named(ref t, ..) if t == "progress") {}
    let mut reading = server.watch(path, &admin, None);
    let reader = std::thread::spawn(move || ids_of(&mut reading, CHANGES));
    let big = "n".repeat(200_000);
    let mut created = Vec::new();
    for i in 0..CHANGES {
        let reply = server.put("APP_NAME", &admin, json!(format!("{i}-{big}"))).ok_json();
        created.push(reply["seq"].as_u64().expect("a seq"));
    }
    // The watcher that kept reading got everything meanwhile.
    let got = reader.join().expect("the reader's thread");
    assert_eq!(got, created, "the reading watcher got every event, in order");

    // The stopped one reads again: what the sockets held, then the end, saying why.
    let mut first = Vec::new();
    let reason = loop {
        match stopped.next() {
            Next::Event(e) => first.push(e.id),
            Next::Named(t, _, data) if t == "end" => break data,
            Next::Named(..) => {}
            Next::Comment => assert!(first.len() < CHANGES, "it got all {CHANGES} events and was never ended"),
        }
    };
    assert!(reason.contains("fell behind") && reason.contains("Last-Event-ID"), "{reason}");
    assert!(first.len() < CHANGES, "it was ended before the end: {} of {CHANGES}", first.len());
    assert_eq!(first, created[..first.len()], "what it got before the end is a prefix, in order");
    let metrics = server.call("GET", "/metrics", None).body;
    assert!(metrics.contains("cfgledger_watch_streams_dropped_total"), "the drop is counted");

    // It resumes from its last event: the rest, with no gap and no duplicate.
    let last = first.last().map_or(created[0] - 1, |id| *id).to_string();
    let mut resumed = server.watch(path, &admin, Some(&last));
    let rest = ids_of(&mut resumed, CHANGES - first.len());
    let mut all = first.clone();
    all.extend(rest);
    assert_eq!(all, created, "resumed with Last-Event-ID: every event once, in order");
}

/// The answering server's own entry is checked against the store at the head it applied: a store that no
/// longer holds that record (a failover to a standby that never received it, say) shows the server diverged.
#[test]
fn the_server_lists_itself_diverged_when_the_store_lost_its_head() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&[]);
    server.put("MAX_WORKERS", &admin, json!(3)).ok_json();
    let own = |listed: &Value| listed["instances"][0].clone();
    let before = own(&server.get("/admin/instances?kind=server", &admin).ok_json());
    assert_eq!((before["self"].as_bool(), before["status"].as_str()), (Some(true), Some("converged")), "{before}");
    let head = before["applied_seq"].as_u64().expect("an applied seq");
    // Behind the server's back, the store loses its newest record.
    let db = rusqlite::Connection::open(store.db_path()).expect("open the database");
    db.execute_batch(&format!(
        "DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete; DELETE FROM events WHERE seq = {head};"
    ))
    .expect("delete the head");
    let after = own(&server.get("/admin/instances?kind=server", &admin).ok_json());
    assert_eq!(after["applied_seq"].as_u64(), Some(head), "{after}");
    assert_eq!((after["status"].as_str(), after["matches_log"].as_bool()), (Some("diverged"), Some(false)), "{after}");
}
