//! The Rust client (`cfgledger-client`) against a real `cfgledger serve`: the first render, typed getters on
//! the lock-free snapshot, change callbacks with the restart flag, resume after the server comes back (the
//! changes made meanwhile arrive once), fail-open on the sealed cache with staleness reported, a token that
//! expires and a rotated token file, and the heartbeat in `GET /admin/instances`.

mod api_support;

use api_support::{eventually, Server, Store};
use cfgledger_client::{Change, Client, Origin, StartError};
use serde_json::json;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// A client of `server` following the default namespace with a config_reader token from a file.
fn builder(server: &Server, token_file: &Path) -> cfgledger_client::Builder {
    Client::builder(&server.url, "mcpgateway")
        .token_file(token_file)
        .include_secrets(true)
        .heartbeat(Some(Duration::from_millis(300)))
        .backoff(Duration::from_millis(50), Duration::from_millis(300))
        .read_timeout(Duration::from_secs(5))
}

fn token_file(store: &Store, ttl: &str) -> std::path::PathBuf {
    let path = store.dir().join(format!("token-{ttl}"));
    std::fs::write(&path, store.token_ttl("follower", "config_reader", ttl)).expect("write the token file");
    path
}

fn changes(client: &Client) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel();
    client.on_change(move |c| {
        let _ = tx.send(c.clone());
    });
    rx
}

fn next_change(rx: &mpsc::Receiver<Change>) -> Change {
    rx.recv_timeout(Duration::from_secs(10)).expect("a change arrives within 10 s")
}

#[test]
fn follows_changes_with_typed_getters_callbacks_and_the_restart_flag() {
    let store = Store::new("MAX_WORKERS=8\nLOG_LEVEL=info\nWEBHOOK_SECRET=whsec-planted-plaintext-1234");
    let server = store.serve(&[]);
    let admin = store.token("admin", "platform_admin");
    let client = builder(&server, &token_file(&store, "1h")).start().expect("the client starts");
    let snap = client.snapshot();
    assert_eq!(snap.origin, Origin::Server);
    assert_eq!(snap.i64("MAX_WORKERS"), Some(8));
    assert_eq!(snap.get::<u32>("MAX_WORKERS").unwrap(), Some(8));
    assert_eq!(snap.str("LOG_LEVEL"), Some("info"));
    assert_eq!(snap.str("WEBHOOK_SECRET"), Some("whsec-planted-plaintext-1234"), "secrets were asked for");
    assert!(snap.get::<bool>("MAX_WORKERS").is_err(), "a type mismatch is an error, not a default");
    assert_eq!(client.staleness(), None);
    let rx = changes(&client);

    // A hot key: the callback says which key, that no restart is needed, and the snapshot has it.
    server.put("MAX_WORKERS", &admin, json!(16)).ok_json();
    let c = next_change(&rx);
    assert_eq!((c.keys.clone(), c.restart_required), (vec!["MAX_WORKERS".to_string()], false));
    assert_eq!((c.previous.i64("MAX_WORKERS"), c.current.i64("MAX_WORKERS")), (Some(8), Some(16)));
    assert_eq!(client.snapshot().i64("MAX_WORKERS"), Some(16));
    // A restart-required key (LOG_FILE in the suite's catalog) says so.
    server.put("LOG_FILE", &admin, json!("/var/log/app.log")).ok_json();
    let c = next_change(&rx);
    assert_eq!((c.keys.clone(), c.restart_required), (vec!["LOG_FILE".to_string()], true));
    // The client reports the head it applied; renders with secrets move the head, and progress events
    // carry the client past them.
    eventually("the client's seq reaches the head", || client.status().seq == server.head());
    // The heartbeat lists it beside the server, converged.
    eventually("the client is listed as converged", || {
        let list = server.get("/admin/instances", &admin).ok_json();
        let me = format!("client/{}", client.instance_id());
        list["instances"].as_array().unwrap().iter().any(|i| {
            i["id"] == me && i["status"] == "converged" && i["kind"] == "client" && i["reported_by"] == "follower"
        })
    });
}

#[test]
fn catches_up_once_after_the_server_returns_and_fails_open_on_the_cache() {
    let store = Store::new("MAX_WORKERS=8");
    let server = store.serve(&[]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let cache = store.dir().join("cache.json");
    let tokens = token_file(&store, "1h");
    let client = builder(&server, &tokens).cache(&cache).start().expect("the client starts");
    let rx = changes(&client);
    let seq_before = client.snapshot().seq;
    eventually("the client follows the stream", || client.status().connected);
    drop(server);
    eventually("the client says it is stale", || client.staleness().is_some());
    assert_eq!(client.snapshot().i64("MAX_WORKERS"), Some(8), "the snapshot stays while the server is down");

    // A second client started now opens the cache and says so; a fresh-only one and a cacheless one refuse.
    let from_cache = Client::builder(&format!("http://{addr}"), "mcpgateway")
        .token_file(&tokens)
        .include_secrets(true)
        .cache(&cache)
        .heartbeat(None)
        .start()
        .expect("a client starts from the cache");
    let snap = from_cache.snapshot();
    assert_eq!((snap.origin, snap.seq, snap.i64("MAX_WORKERS")), (Origin::Cache, seq_before, Some(8)));
    assert!(from_cache.staleness().is_some(), "a client started from the cache is stale");
    let fresh = Client::builder(&format!("http://{addr}"), "mcpgateway").cache(&cache).require_fresh(true).start();
    assert!(matches!(&fresh, Err(StartError::Unavailable(m)) if m.contains("fresh")), "{fresh:?}");
    let none = Client::builder(&format!("http://{addr}"), "mcpgateway").start();
    assert!(matches!(&none, Err(StartError::Unavailable(m)) if m.contains("cannot reach")), "{none:?}");

    // Two changes while the server is down (the CLI writes the store itself), then the server returns on
    // the same address: the client resumes after the seq it had and applies both, in one change.
    store.ok(&["config", "set", "MAX_WORKERS", "32"]);
    store.ok(&["config", "set", "UI_ENABLED", "false"]);
    let server = store.serve_on(&addr, &[]);
    let c = next_change(&rx);
    let mut all_keys = c.keys.clone();
    while let Ok(more) = rx.recv_timeout(Duration::from_millis(500)) {
        all_keys.extend(more.keys);
    }
    all_keys.sort();
    assert_eq!(all_keys, vec!["MAX_WORKERS".to_string(), "UI_ENABLED".to_string()], "each change once");
    assert_eq!(client.snapshot().i64("MAX_WORKERS"), Some(32));
    assert_eq!(client.snapshot().bool("UI_ENABLED"), Some(false));
    eventually("the client is fresh again", || client.staleness().is_none());
    assert!(client.status().reconnects >= 1);
    // The client started from the cache catches up too, and its snapshot now comes from the server.
    eventually("the cached client catches up", || {
        let s = from_cache.snapshot();
        s.origin == Origin::Server && s.i64("MAX_WORKERS") == Some(32) && from_cache.staleness().is_none()
    });
    let cache_text = std::fs::read_to_string(&cache).unwrap();
    assert!(!cache_text.contains("32") || !cache_text.contains("MAX_WORKERS"), "values are sealed: {cache_text}");
    drop(server);
}

#[test]
fn an_expired_token_makes_the_client_stale_and_a_rotated_token_file_recovers_it() {
    let store = Store::new("MAX_WORKERS=8");
    let server = store.serve(&["--sse-keepalive", "500ms"]);
    let admin = store.token("admin", "platform_admin");
    let path = store.dir().join("token");
    std::fs::write(&path, store.token_ttl("follower", "config_reader", "2s")).unwrap();
    let client = builder(&server, &path).start().expect("the client starts");
    // The server ends the stream when the token expires; reconnecting is refused (401): stale, snapshot kept.
    eventually("the client goes stale after its token expires", || {
        client.status().error.is_some_and(|e| e.contains("401")) && client.staleness().is_some()
    });
    assert_eq!(client.snapshot().i64("MAX_WORKERS"), Some(8));
    server.put("MAX_WORKERS", &admin, json!(9)).ok_json();
    std::fs::write(&path, store.token_ttl("follower", "config_reader", "1h")).unwrap();
    eventually("a rotated token file brings the client back and it catches up", || {
        client.staleness().is_none() && client.snapshot().i64("MAX_WORKERS") == Some(9)
    });
}

#[test]
fn a_request_that_can_never_succeed_is_refused_at_start() {
    let store = Store::new("MAX_WORKERS=8");
    let server = store.serve(&[]);
    let viewer = store.dir().join("viewer-token");
    std::fs::write(&viewer, store.token("someone", "viewer")).unwrap();
    // A viewer may not read secrets: no retry would fix that.
    let err = builder(&server, &viewer).start().unwrap_err();
    assert!(matches!(&err, StartError::Refused(m) if m.contains("403")), "{err:?}");
    let err = Client::builder(&server.url, "no-such-namespace").token_file(&viewer).start().unwrap_err();
    assert!(matches!(&err, StartError::Refused(m) if m.contains("unknown namespace")), "{err:?}");
    // A token the server refuses, with no cache to fall back on: the operator's to fix, said at once.
    let forged = store.dir().join("forged-token");
    std::fs::write(&forged, "not-a-token").unwrap();
    let err = Client::builder(&server.url, "mcpgateway").token_file(&forged).start().unwrap_err();
    assert!(matches!(&err, StartError::Refused(m) if m.contains("401") && m.contains("config_reader")), "{err:?}");
}
