//! The admin REST API as a client meets it: the real `cfgledger serve` on a random port, each test on its
//! own SQLite store in a temporary directory, spoken to over HTTP. Every refusal is checked for its
//! status, its error code and the one error shape `{"error": {"code", "message", "details"}}`, and every
//! refused write for the log head it must leave alone (a locked key's attempt appends exactly one audit
//! event). Around that: the role matrix, secrets kept out of every body, log line and database byte, the
//! per-principal write limit, compare-and-set with `If-Match`, the watch stream resuming without gap or
//! duplicate, `LOG_LEVEL` applied live, export/import between two stores, login and the audit trail, and
//! what the store being unavailable looks like. Plumbing (processes, HTTP, SSE) is in `api_support`.

mod api_support;

use api_support::{eventually, perform, perform_chunked, Reply, Server, Store, ENCRYPTION_SECRET, JWT_SECRET};
use serde_json::{json, Value};

const ADMIN: &str = "platform_admin";
const AUDITOR: &str = "auditor";
const VIEWER: &str = "viewer";

/// Asserts that the log head is still `head`: the refused request `what` wrote nothing.
fn unchanged(server: &Server, head: u64, what: &str) {
    assert_eq!(server.head(), head, "{what} moved the log head");
}

/// The newest audit entries, as an auditor sees them.
fn audit(server: &Server, token: &str, limit: usize) -> Vec<Value> {
    let body = server.get(&format!("/admin/config/audit?limit={limit}"), token).ok_json();
    body["entries"].as_array().expect("entries").clone()
}

/// The value in force for `key`, as the API shows it.
fn value_of(server: &Server, token: &str, key: &str) -> Value {
    server.get(&format!("/admin/config/{key}"), token).ok_json()["value"].clone()
}

/// A connection of this test process (another process than the server, as an operator's `sqlite3` shell
/// would be) holding the store's write lock (`BEGIN IMMEDIATE`) until [`LockHolder::release`], or until it is
/// dropped: closing the connection rolls the transaction back.
struct LockHolder {
    conn: rusqlite::Connection,
}

impl LockHolder {
    fn hold(store: &Store) -> LockHolder {
        let conn = rusqlite::Connection::open(store.db_path()).expect("open the store's database");
        // The server writes too (heartbeats, checkpoints): wait for the lock rather than fail at once. Once
        // `BEGIN IMMEDIATE` returns, the lock is really held.
        conn.busy_timeout(std::time::Duration::from_secs(20)).expect("set a busy timeout");
        conn.execute_batch("BEGIN IMMEDIATE;").expect("take the store's write lock");
        LockHolder { conn }
    }

    fn release(self) {
        self.conn.execute_batch("ROLLBACK;").expect("release the store's write lock");
    }
}

// ---------------------------------------------------------------------------------------------------
// Status codes

#[test]
fn malformed_bodies_queries_and_headers_are_400_and_write_nothing() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let put = |body: &[u8]| server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), body);

    let cases: [(&str, &[u8], &str); 6] = [
        ("not JSON", b"max workers = 5", "malformed JSON body"),
        ("empty", b"", "empty"),
        ("an unknown field", br#"{"value": 5, "force": true}"#, "unknown field `force`"),
        ("no value", br#"{"reason": "x"}"#, "value"),
        ("a reason that is not a string", br#"{"value": 5, "reason": 7}"#, "malformed JSON body"),
        ("truncated JSON", br#"{"value": "#, "malformed JSON body"),
    ];
    for (what, body, needle) in cases {
        let message = put(body).error_message(400, "bad_request");
        assert!(message.contains(needle), "{what}: {message}");
        unchanged(&server, head, what);
    }

    let bad_if_match = perform(
        server.request("PUT", "/admin/config/MAX_WORKERS", Some(&admin)).set("If-Match", "\"version-two\""),
        Some(br#"{"value": 5}"#),
    );
    assert!(bad_if_match.error_message(400, "bad_request").contains("If-Match"));
    unchanged(&server, head, "a malformed If-Match");

    let delete = server.call("DELETE", "/admin/config/MAX_WORKERS?reason=x&force=1", Some(&admin));
    delete.error(400, "bad_request");
    unchanged(&server, head, "a DELETE with an unknown query parameter");

    for path in ["/admin/config/audit?limit=0", "/admin/config/audit?limit=many", "/admin/config/audit?since=3"] {
        server.get(path, &admin).error(400, "bad_request");
    }
    server.send("POST", "/admin/config/import", Some(&admin), b"settings: {}").error(400, "bad_request");
    unchanged(&server, head, "an import that is not JSON");
    server.send("POST", "/auth/login", None, b"{\"username\": \"ada\"}").error(400, "bad_request");
    server.send("POST", "/auth/login", None, b"").error(400, "bad_request");

    let watch = perform(server.request("GET", "/admin/config/watch", Some(&admin)).set("Last-Event-ID", "seven"), None);
    assert!(watch.error_message(400, "bad_request").contains("Last-Event-ID"));
    server.get("/admin/config/watch?after=-1", &admin).error(400, "bad_request");
    server.assert_alive();
}

/// A JSON array is not the object the endpoint documents, even when serde could read it positionally.
#[test]
fn a_json_array_body_is_400_not_read_as_positional_fields() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let reply = server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), b"[5]");
    let after = (server.head(), value_of(&server, &admin, "MAX_WORKERS"));
    assert_eq!(after, (head, json!(4)), "the JSON array body [5] set MAX_WORKERS (status {})", reply.status);
    reply.error(400, "bad_request");
    server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), b"[5, \"why\"]").error(400, "bad_request");
    server.send("POST", "/auth/login", None, b"[\"ada\", \"password\"]").error(400, "bad_request");
    server.send("POST", "/admin/config/import", Some(&admin), b"[{\"settings\": {}}]").error(400, "bad_request");
    unchanged(&server, head, "JSON array bodies");
    server.assert_alive();
}

#[test]
fn missing_bad_and_expired_tokens_are_401_with_a_bearer_challenge() {
    let store = Store::new("");
    let expired = store.token_ttl("old", ADMIN, "1s");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    let none = server.send_json("PUT", "/admin/config/MAX_WORKERS", None, &json!({"value": 5}));
    assert!(none.error_message(401, "unauthorized").contains("authentication required"));
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    unchanged(&server, head, "a PUT without a token");

    let basic = perform(
        server.request("PUT", "/admin/config/MAX_WORKERS", None).set("Authorization", "Basic YWRhOnB3"),
        Some(br#"{"value": 5}"#),
    );
    assert!(basic.error_message(401, "unauthorized").contains("Bearer"));
    server.put("MAX_WORKERS", "not.a.jwt", json!(5)).error(401, "unauthorized");
    // The same claims with a signature that no longer matches.
    let at = admin.rfind('.').expect("a JWT") + 1;
    let flipped = if admin[at..].starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &admin[..at], &admin[at + 1..]);
    server.put("MAX_WORKERS", &tampered, json!(5)).error(401, "unauthorized");
    unchanged(&server, head, "PUTs with bad tokens");

    eventually("the 1s token to expire", || server.get("/admin/config", &expired).status == 401);
    let message = server.put("MAX_WORKERS", &expired, json!(5)).error_message(401, "unauthorized");
    assert!(message.contains("expired"), "{message}");
    unchanged(&server, head, "a PUT with an expired token");
    server.assert_alive();
}

#[test]
fn locked_keys_are_403_and_each_attempt_appends_exactly_one_audit_event() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let auditor = store.token("aude", AUDITOR);
    let server = store.serve(&[]);
    let attempts: [(&str, &str, Option<Value>); 5] = [
        ("PUT", "JWT_SECRET_KEY", Some(json!("a-new-signing-key-that-is-long-enough-0123456789"))),
        ("PUT", "AUTH_REQUIRED", Some(json!(false))),
        ("PUT", "DATABASE_URL", Some(json!("postgres://u:p@db/prod"))),
        ("PUT", "AUTH_REQUIRED", Some(json!("not a boolean"))),
        ("DELETE", "JWT_ALGORITHM", None),
    ];
    for (method, key, value) in attempts {
        let head = server.head();
        let path = format!("/admin/config/{key}");
        let reply = match &value {
            Some(v) => server.send_json(method, &path, Some(&admin), &json!({"value": v, "reason": "try"})),
            None => server.call(method, &format!("{path}?reason=try"), Some(&admin)),
        };
        let message = reply.error_message(403, "locked");
        assert!(message.contains(key) && message.contains("locked"), "{message}");
        assert_eq!(server.head(), head + 1, "{method} {key}: exactly one audit event");
        let newest = &audit(&server, &auditor, 1)[0];
        assert_eq!(newest["seq"], head + 1);
        assert_eq!(newest["action"], "rejected", "{newest}");
        assert_eq!(newest["key"], key);
        assert_eq!(newest["rejected"]["reason"], "locked");
        assert_eq!(newest["actor"], "ada");
        assert_eq!(newest["reason"], "try");
        if key == "JWT_SECRET_KEY" || key == "DATABASE_URL" {
            assert_eq!(newest["value"], "********", "an attempted secret is masked: {newest}");
        }
    }
    assert_eq!(value_of(&server, &admin, "AUTH_REQUIRED"), true);
    assert_eq!(value_of(&server, &admin, "JWT_ALGORITHM"), "HS256");
    server.assert_alive();
}

#[test]
fn unknown_keys_endpoints_and_methods_are_404_and_405_in_the_error_shape() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    for (method, body) in [("GET", None), ("PUT", Some(json!({"value": 1}))), ("DELETE", None)] {
        let reply = match body {
            Some(b) => server.send_json(method, "/admin/config/NO_SUCH_KEY", Some(&admin), &b),
            None => server.call(method, "/admin/config/NO_SUCH_KEY", Some(&admin)),
        };
        assert_eq!(reply.error_message(404, "unknown_key"), "unknown key NO_SUCH_KEY", "{method}");
    }
    let cas = perform(
        server.request("PUT", "/admin/config/NO_SUCH_KEY", Some(&admin)).set("If-Match", "\"0\""),
        Some(br#"{"value": 1}"#),
    );
    cas.error(404, "unknown_key");
    unchanged(&server, head, "writes to an unknown key");

    for path in ["/nope", "/admin/config/LOG_LEVEL/nope", "/admin", "/admin/config/"] {
        server.get(path, &admin).error(404, "not_found");
        server.call("GET", path, None).error(404, "not_found");
    }
    for (method, path) in [
        ("POST", "/admin/config/LOG_LEVEL"),
        ("PATCH", "/admin/config/LOG_LEVEL"),
        ("PUT", "/health"),
        ("DELETE", "/admin/config"),
        ("GET", "/auth/login"),
        ("GET", "/admin/config/import"),
        ("POST", "/admin/config/export"),
    ] {
        server.call(method, path, Some(&admin)).error(405, "method_not_allowed");
    }
    unchanged(&server, head, "requests to unknown endpoints");
    server.assert_alive();
}

#[test]
fn bodies_over_request_size_limit_are_413_declared_or_chunked_and_the_limit_is_hot() {
    let store = Store::new("CFGLEDGER_REQUEST_SIZE_LIMIT=2048");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    // A body made big by JSON whitespace: a reason is capped at 1 KB whatever the body limit.
    let padded = |value: i64, size: usize| format!("{{\"value\": {value},{}\"reason\": \"sized\"}}", " ".repeat(size));
    let big = padded(5, 3000);

    let declared = server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), big.as_bytes());
    assert!(declared.error_message(413, "payload_too_large").contains("REQUEST_SIZE_LIMIT (2048 bytes)"));
    let chunked = perform_chunked(server.request("PUT", "/admin/config/MAX_WORKERS", Some(&admin)), big.as_bytes());
    chunked.error(413, "payload_too_large");
    let import = json!({"settings": {"MAX_WORKERS": 5}, "padding": "p".repeat(3000)}).to_string();
    server.send("POST", "/admin/config/import", Some(&admin), import.as_bytes()).error(413, "payload_too_large");
    let login = json!({"username": "ada", "password": "p".repeat(3000)}).to_string();
    server.send("POST", "/auth/login", None, login.as_bytes()).error(413, "payload_too_large");
    unchanged(&server, head, "oversized bodies");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 4);

    // Just under the limit is fine, and raising the limit (a hot setting) lets the big body through.
    let fits = padded(5, 1900);
    server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), fits.as_bytes()).ok_json();
    server.put("cfgledger:REQUEST_SIZE_LIMIT", &admin, json!(8192)).ok_json();
    let big = padded(6, 3000);
    let item =
        perform_chunked(server.request("PUT", "/admin/config/MAX_WORKERS", Some(&admin)), big.as_bytes()).ok_json();
    assert_eq!(item["value"], 6);
    server.assert_alive();
}

#[test]
fn values_of_the_wrong_type_or_range_are_422_naming_the_expected_format() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let cases = [
        ("MAX_WORKERS", json!("many"), "expects an integer from 1 to 256"),
        ("MAX_WORKERS", json!(0), "expects an integer from 1 to 256"),
        ("MAX_WORKERS", json!(257), "expects an integer from 1 to 256"),
        ("MAX_WORKERS", json!(2.5), "expects an integer"),
        ("MAX_WORKERS", json!([4]), "expects an integer"),
        ("LOG_LEVEL", json!("loud"), "expects one of trace, debug, info, warn, error"),
        ("LOG_LEVEL", json!(3), "expects one of trace, debug, info, warn, error"),
        ("CACHE_TTL", json!("soon"), "expects a duration"),
        ("CACHE_TTL", json!("30d"), "expects a duration"),
        ("UI_ENABLED", json!("maybe"), "expects a boolean"),
        ("cfgledger:REQUEST_SIZE_LIMIT", json!(10), "expects an integer from 1024"),
        ("WEBHOOK_SECRET", json!(12345), "expects a string"),
    ];
    for (key, value, expected) in cases {
        let message = server.put(key, &admin, value.clone()).error_message(422, "invalid_value");
        assert!(message.contains(key) && message.contains(expected), "{key}={value}: {message}");
        unchanged(&server, head, &format!("{key}={value}"));
    }
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), "info");
    server.assert_alive();
}

#[test]
fn compare_and_set_with_if_match_refuses_stale_versions_with_409() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let path = "/admin/config/MAX_WORKERS";
    let put_if = |etag: &str, value: i64| {
        let body = json!({"value": value}).to_string();
        perform(server.request("PUT", path, Some(&admin)).set("If-Match", etag), Some(body.as_bytes()))
    };

    let first = server.get(path, &admin);
    let e0 = first.header("etag").expect("an ETag").to_string();
    assert_eq!(e0, format!("\"{}\"", first.json()["version"]));
    let updated = put_if(&e0, 10);
    let e1 = updated.header("etag").expect("a new ETag").to_string();
    assert_ne!(e1, e0);
    assert_eq!(updated.json()["value"], 10);
    assert_eq!(e1, format!("\"{}\"", updated.json()["version"]));

    let head = server.head();
    let stale = put_if(&e0, 11);
    assert!(stale.error_message(409, "conflict").contains("changed since version"));
    unchanged(&server, head, "a stale If-Match");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 10);
    let stale_delete = perform(server.request("DELETE", path, Some(&admin)).set("If-Match", &e0), None);
    stale_delete.error(409, "conflict");
    unchanged(&server, head, "a stale If-Match on DELETE");
    put_if("\"not-a-version\"", 11).error(400, "bad_request");
    unchanged(&server, head, "a malformed If-Match");

    // The weak and bare forms name the same version; `*` matches any.
    let weak = put_if(&format!("W/{e1}"), 11);
    let e2 = weak.header("etag").expect("etag").to_string();
    assert_eq!(weak.json()["value"], 11);
    assert_eq!(put_if(e2.trim_matches('"'), 12).json()["value"], 12);
    assert_eq!(put_if("*", 13).json()["value"], 13);

    // Another process's change makes the ETag a client holds stale.
    let held = server.get(path, &admin).header("etag").expect("etag").to_string();
    store.ok(&["config", "set", "MAX_WORKERS", "20"]);
    eventually("the CLI's change to reach the server", || value_of(&server, &admin, "MAX_WORKERS") == 20);
    let head = server.head();
    put_if(&held, 14).error(409, "conflict");
    unchanged(&server, head, "a PUT behind another process's change");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 20);
    server.assert_alive();
}

#[test]
fn writes_over_config_write_rate_limit_are_429_per_subject_and_the_limit_is_hot() {
    let store = Store::new("CFGLEDGER_CONFIG_WRITE_RATE_LIMIT=3");
    let alice = store.token("alice", ADMIN);
    let bob = store.token("bob", ADMIN);
    let server = store.serve(&[]);

    // Login attempts have their own, fixed limit: 10 a minute per user name and client address, whatever
    // CONFIG_WRITE_RATE_LIMIT says; past it no password is checked.
    let guess = json!({"username": "mallory", "password": "guess-guess"});
    for _ in 0..10 {
        server.send_json("POST", "/auth/login", None, &guess).error(401, "unauthorized");
    }
    let limited = server.send_json("POST", "/auth/login", None, &guess);
    limited.error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // A name no user can have is refused at once, without counting against anyone.
    let odd = json!({"username": "not a user name!", "password": "x"});
    server.send_json("POST", "/auth/login", None, &odd).error(401, "unauthorized");

    for n in 5..8 {
        server.put("MAX_WORKERS", &alice, json!(n)).ok_json();
    }
    let head = server.head();
    let limited = server.put("MAX_WORKERS", &alice, json!(8));
    let message = limited.error_message(429, "rate_limited");
    assert!(
        message.contains("alice") && message.contains("CONFIG_WRITE_RATE_LIMIT (3 writes per minute)"),
        "{message}"
    );
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    server.call("DELETE", "/admin/config/MAX_WORKERS", Some(&alice)).error(429, "rate_limited");
    let import = json!({"settings": {"MAX_WORKERS": 9}});
    server.send_json("POST", "/admin/config/import", Some(&alice), &import).error(429, "rate_limited");
    unchanged(&server, head, "rate-limited writes");
    assert_eq!(value_of(&server, &alice, "MAX_WORKERS"), 7, "reads are not limited");
    let plan = server.send_json("POST", "/admin/config/import?dry_run=true", Some(&alice), &import).ok_json();
    assert_eq!(plan["applied"], false, "a dry run writes nothing and is not limited");

    // Another subject has its own budget; raising the limit applies to the next write.
    assert_eq!(server.put("MAX_WORKERS", &bob, json!(8)).ok_json()["value"], 8);
    server.put("cfgledger:CONFIG_WRITE_RATE_LIMIT", &bob, json!(5)).ok_json();
    for n in 10..15 {
        server.put("MAX_WORKERS", &alice, json!(n)).ok_json();
    }
    let message = server.put("MAX_WORKERS", &alice, json!(15)).error_message(429, "rate_limited");
    assert!(message.contains("(5 writes per minute)"), "{message}");
    assert_eq!(value_of(&server, &alice, "MAX_WORKERS"), 14);
    server.assert_alive();
}

/// Holds the store's write lock from another process for longer than the SQLite busy timeout (10 s):
/// a write waits, then is answered 503 with `Retry-After`, without internals; reads go on meanwhile.
#[test]
fn a_store_locked_by_another_process_answers_writes_503_and_recovers() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    let lock = LockHolder::hold(&store);
    let reply = std::thread::scope(|s| {
        let write = s.spawn(|| server.put("MAX_WORKERS", &admin, json!(9)));
        assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 4, "reads are served while the store is locked");
        assert_eq!(server.call("GET", "/ready", None).status, 200);
        write.join().expect("the write returns")
    });
    let message = reply.error_message(503, "unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(!message.contains("locked") && !reply.body.to_lowercase().contains("sqlite"), "no internals: {message}");
    lock.release();

    unchanged(&server, head, "a write refused with 503");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 4);
    assert!(server.logged(|l| l.contains("store unavailable")), "the cause is logged for the operator");
    assert_eq!(server.put("MAX_WORKERS", &admin, json!(9)).ok_json()["value"], 9, "writes work again");
    server.assert_alive();
}

/// A write that outlives `--request-timeout` is answered 503 ("retry"), so it must not be applied later;
/// a watch stream, whose body is never timed, stays open past the timeout.
#[test]
fn a_write_outlasting_the_request_timeout_is_answered_with_what_happened() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&["--request-timeout", "1s", "--sse-keepalive", "200ms"]);
    let head = server.head();

    // The timeout does not cut a watch stream: it is still open and live well past one second.
    let mut stream = server.watch("/admin/config/watch", &admin, None);
    assert!(stream.until_quiet(8).is_empty());
    let seq = server.put("CACHE_TTL", &admin, json!("6m")).ok_json()["seq"].as_u64();
    assert_eq!(Some(stream.events(1)[0].id), seq);
    drop(stream);
    let head = head + 1;

    // A write waiting for the store past the request timeout is not answered "timeout, retry" while it may
    // still commit: it waits for the store (up to its busy timeout) and says what happened.
    let lock = LockHolder::hold(&store);
    let reply = std::thread::scope(|s| {
        let put = s.spawn(|| server.put("MAX_WORKERS", &admin, json!(9)));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(server.head(), head, "nothing is written while the lock is held");
        lock.release();
        put.join().expect("the PUT thread")
    });
    assert_eq!(reply.ok_json()["value"], 9, "answered 200 once committed");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 9);
    assert_eq!(server.head(), head + 1);
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Roles

#[test]
fn each_role_reaches_exactly_its_endpoints() {
    let store = Store::new("");
    let expired = store.token_ttl("old", ADMIN, "1s");
    let tokens = [store.token("vic", VIEWER), store.token("aude", AUDITOR), store.token("ada", ADMIN)];
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    eventually("the 1s token to expire", || server.get("/admin/config", &expired).status == 401);

    let columns: [(&str, Option<&str>); 6] = [
        ("no token", None),
        ("garbage token", Some("garbage")),
        ("expired token", Some(&expired)),
        (VIEWER, Some(&tokens[0])),
        (AUDITOR, Some(&tokens[1])),
        (ADMIN, Some(&tokens[2])),
    ];
    const PUBLIC: [u16; 6] = [200; 6];
    const VIEW: [u16; 6] = [401, 401, 401, 200, 200, 200];
    const AUDIT: [u16; 6] = [401, 401, 401, 403, 200, 200];
    const WRITE: [u16; 6] = [401, 401, 401, 403, 403, 200];
    let doc = json!({"settings": {"MAX_WORKERS": 6}});
    let matrix: Vec<(&str, &str, Option<Value>, [u16; 6])> = vec![
        ("GET", "/health", None, PUBLIC),
        ("GET", "/ready", None, PUBLIC),
        ("GET", "/metrics", None, PUBLIC),
        ("GET", "/openapi.json", None, PUBLIC),
        ("GET", "/admin/config", None, VIEW),
        ("GET", "/admin/config?category=logging", None, VIEW),
        ("GET", "/admin/config/LOG_LEVEL", None, VIEW),
        ("GET", "/admin/config/watch", None, VIEW),
        ("GET", "/admin/config/audit", None, AUDIT),
        ("GET", "/admin/config/export", None, AUDIT),
        ("PUT", "/admin/config/MAX_WORKERS", Some(json!({"value": 5})), WRITE),
        ("DELETE", "/admin/config/MAX_WORKERS", None, WRITE),
        ("POST", "/admin/config/import?dry_run=true", Some(doc.clone()), WRITE),
        ("POST", "/admin/config/import", Some(doc), WRITE),
    ];
    for (method, path, body, expected) in &matrix {
        for ((who, token), want) in columns.iter().zip(expected) {
            let head = server.head();
            let what = format!("{method} {path} as {who}");
            let reply = if path.ends_with("/watch") {
                // A stream: only the status matters here; dropping the response closes it.
                match server.request(method, path, *token).call() {
                    Ok(r) => {
                        assert_eq!(r.content_type(), "text/event-stream", "{what}");
                        Reply::status_only(r.status())
                    }
                    Err(ureq::Error::Status(_, r)) => Reply::from_response(r),
                    Err(e) => panic!("{what}: {e}"),
                }
            } else {
                match body {
                    Some(b) => server.send_json(method, path, *token, b),
                    None => server.call(method, path, *token),
                }
            };
            assert_eq!(reply.status, *want, "{what}: {}", reply.body);
            match want {
                401 => {
                    reply.error(401, "unauthorized");
                }
                403 => {
                    assert!(reply.error_message(403, "forbidden").contains(&format!("role {who}")), "{what}");
                }
                _ => {}
            }
            if *want >= 400 {
                unchanged(&server, head, &what);
            }
        }
    }
    server.assert_alive();
}

/// `AUTH_REQUIRED=false` (process environment, read at start) lets requests without a token act as
/// `anonymous` with every right, and says so loudly on stderr; a token that is sent is still checked.
#[test]
fn auth_required_false_admits_anonymous_callers_and_warns() {
    let store = Store::with_process_env("", &[("CFGLEDGER_AUTH_REQUIRED", "false")]);
    let server = store.serve(&[]);
    eventually("the warning on stderr", || server.logged(|l| l.starts_with("WARNING: AUTH_REQUIRED=false")));

    let item =
        server.send_json("PUT", "/admin/config/MAX_WORKERS", None, &json!({"value": 6, "reason": "dev"})).ok_json();
    assert_eq!(item["value"], 6);
    assert_eq!(item["updated_by"], "anonymous");
    let newest = &server.call("GET", "/admin/config/audit?limit=1", None).ok_json()["entries"][0];
    assert_eq!((newest["actor"].as_str(), newest["role"].as_str()), (Some("anonymous"), Some(ADMIN)));
    let flag = server.call("GET", "/admin/config/cfgledger:AUTH_REQUIRED", None).ok_json();
    assert_eq!((flag["value"].as_bool(), flag["source"].as_str()), (Some(false), Some("env")));
    server.put("MAX_WORKERS", "garbage", json!(7)).error(401, "unauthorized");
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Secrets

#[test]
fn secret_values_appear_in_no_body_no_log_line_and_no_database_byte() {
    const SEEDED: &str = "basic-seeded-plaintext-5e0b1";
    const WEBHOOK: &str = "webhook-put-plaintext-9c4d27";
    const WEBHOOK_BAD: &str = "webhook-invalid-plaintext-31aa";
    const JWT_ATTEMPT: &str = "jwt-attempt-plaintext-8f3e2c-0123456789abcdef";
    const BOOT_ATTEMPT: &str = "bootstrap-attempt-plaintext-61b0";
    const IMPORTED: &str = "webhook-imported-plaintext-d2e8";
    const DRY_RUN: &str = "webhook-dry-run-plaintext-0a7c";
    const REFUSED_IMPORT: &str = "webhook-refused-import-plaintext-44f1";
    const PASSWORD: &str = "password-plaintext-c0ffee";
    const WRONG_PASSWORD: &str = "wrong-password-plaintext-bad";

    let store = Store::new(&format!("BASIC_AUTH_PASSWORD={SEEDED}"));
    let admin = store.token("ada", ADMIN);
    let auditor = store.token("aude", AUDITOR);
    store.add_user("sam", ADMIN, PASSWORD);
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    server.put("cfgledger:LOG_LEVEL", &admin, json!("debug")).ok_json();
    eventually("debug logging", || server.logged(|l| l.contains("log level changed")));

    let mut bodies: Vec<String> = Vec::new();
    let mut keep = |r: Reply| -> Reply {
        bodies.push(format!("{:?} {}", r.header("etag"), r.body));
        r
    };
    let webhook = |v: &str| json!({"value": v, "reason": "rotate"});
    let item = keep(server.send_json("PUT", "/admin/config/WEBHOOK_SECRET", Some(&admin), &webhook(WEBHOOK)));
    assert_eq!(item.ok_json()["value"], "********");
    keep(server.put("WEBHOOK_SECRET", &admin, json!({"nested": WEBHOOK_BAD}))).error(422, "invalid_value");
    keep(server.put("JWT_SECRET_KEY", &admin, json!(JWT_ATTEMPT))).error(403, "locked");
    keep(server.put("AUTH_ENCRYPTION_SECRET", &admin, json!(BOOT_ATTEMPT))).error(403, "locked");
    let good = keep(server.send_json("POST", "/auth/login", None, &json!({"username": "sam", "password": PASSWORD})));
    let sam = good.ok_json()["token"].as_str().expect("a token").to_string();
    let wrong = json!({"username": "sam", "password": WRONG_PASSWORD});
    keep(server.send_json("POST", "/auth/login", None, &wrong)).error(401, "unauthorized");

    let dry = json!({"settings": {"WEBHOOK_SECRET": DRY_RUN, "MAX_WORKERS": 5}});
    let plan = keep(server.send_json("POST", "/admin/config/import?dry_run=true", Some(&admin), &dry)).ok_json();
    assert_eq!(plan["summary"]["update"], 1, "the dry run sees the new secret: {plan}");
    let refused = json!({"settings": {"WEBHOOK_SECRET": REFUSED_IMPORT, "MAX_WORKERS": "many"}});
    keep(server.send_json("POST", "/admin/config/import", Some(&admin), &refused)).error(422, "invalid_value");
    let applied = json!({"settings": {"WEBHOOK_SECRET": IMPORTED}});
    assert_eq!(keep(server.send_json("POST", "/admin/config/import", Some(&sam), &applied)).ok_json()["applied"], true);
    keep(server.call("DELETE", "/admin/config/WEBHOOK_SECRET?reason=gone", Some(&admin))).ok_json();
    keep(server.send_json("PUT", "/admin/config/WEBHOOK_SECRET", Some(&admin), &webhook(WEBHOOK))).ok_json();

    for path in [
        "/admin/config",
        "/admin/config?q=secret",
        "/admin/config?category=security",
        "/admin/config/WEBHOOK_SECRET",
        "/admin/config/JWT_SECRET_KEY",
        "/admin/config/BASIC_AUTH_PASSWORD",
        "/admin/config/AUTH_ENCRYPTION_SECRET",
        "/admin/config/audit?limit=1000",
        "/admin/config/export",
        "/metrics",
        "/openapi.json",
        "/ready",
    ] {
        assert_eq!(keep(server.get(path, &auditor)).status, 200, "{path}");
    }
    let mut stream = server.watch("/admin/config/watch?after=0", &auditor, None);
    let events = stream.until_quiet(3);
    assert!(events.iter().any(|e| e.data["key"] == "WEBHOOK_SECRET"), "the stream carries the secret's changes");
    bodies.extend(events.iter().map(|e| e.data.to_string()));
    let audit_log = audit(&server, &auditor, 1000);
    assert!(
        audit_log.iter().any(|e| e["key"] == "WEBHOOK_SECRET" && e["action"] == "set" && e["value"] == "********"),
        "the audit shows the secret was set, masked"
    );
    let cli_log = store.ok(&["log", "--output", "json"]);
    // Every line of the requests above is on stderr once the line of a last, marked request is.
    perform(server.request("GET", "/health", None).set("X-Request-Id", "secrets-last-request"), None);
    eventually("the last request's log line", || server.logged(|l| l.contains("secrets-last-request")));

    let plaintexts = [
        SEEDED,
        WEBHOOK,
        WEBHOOK_BAD,
        JWT_ATTEMPT,
        BOOT_ATTEMPT,
        IMPORTED,
        DRY_RUN,
        REFUSED_IMPORT,
        PASSWORD,
        WRONG_PASSWORD,
        JWT_SECRET,
        ENCRYPTION_SECRET,
    ];
    let stderr = server.stderr();
    assert!(stderr.iter().any(|l| l.contains("request served")), "requests were logged at debug level");
    let database = store.database_bytes();
    for secret in plaintexts {
        for body in &bodies {
            assert!(!body.contains(secret), "{secret} leaked in a response: {body}");
        }
        for line in &stderr {
            assert!(!line.contains(secret), "{secret} leaked in a log line: {line}");
        }
        assert!(!cli_log.contains(secret), "{secret} leaked in `cfgledger log`");
        assert!(!contains_bytes(&database, secret.as_bytes()), "{secret} is in the database file in plaintext");
    }
    for token in [&admin, &auditor, &sam] {
        assert!(!stderr.iter().any(|l| l.contains(token.as_str())), "a bearer token leaked in a log line");
    }
    server.assert_alive();
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------------
// Watch

#[test]
fn the_watch_stream_resumes_exactly_after_the_last_event_id() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let viewer = store.token("vic", VIEWER);
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let set = |n: i64| server.put("MAX_WORKERS", &admin, json!(n)).ok_json()["seq"].as_u64().expect("seq");

    let mut live = server.watch("/admin/config/watch", &viewer, None);
    let seqs: Vec<u64> = (5..8).map(set).collect();
    let got = live.events(3);
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), seqs);
    for (e, n) in got.iter().zip(5..8) {
        assert_eq!(e.data["seq"], e.id);
        assert_eq!((e.data["key"].as_str(), e.data["value"].as_i64()), (Some("MAX_WORKERS"), Some(n)));
        assert_eq!((e.data["actor"].as_str(), e.data["source"].as_str()), (Some("ada"), Some("api")));
        assert!(e.data["batch"].is_string() && e.data["time"].is_string(), "{}", e.data);
    }
    assert!(live.until_quiet(2).is_empty(), "keep-alive comments flow while nothing changes");
    assert!(live.comments >= 2);
    let last = got.last().expect("events").id;
    drop(live);

    let missed: Vec<u64> = (8..10).map(set).collect();
    let mut resumed = server.watch("/admin/config/watch", &viewer, Some(&last.to_string()));
    let got = resumed.events(2);
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), missed);
    assert_eq!(got.iter().map(|e| e.data["value"].clone()).collect::<Vec<_>>(), [json!(8), json!(9)]);
    assert!(resumed.until_quiet(3).is_empty(), "nothing replayed twice");
    let next = set(10);
    assert_eq!(resumed.events(1)[0].id, next, "and live again after the replay");

    let mut by_query = server.watch(&format!("/admin/config/watch?after={last}"), &viewer, None);
    let ids: Vec<u64> = by_query.events(3).iter().map(|e| e.id).collect();
    assert_eq!(ids, [missed[0], missed[1], next]);
    assert!(by_query.until_quiet(3).is_empty());

    // Last-Event-ID, which a reconnecting browser sends, wins over the query of the original URL.
    let mut both = server.watch(&format!("/admin/config/watch?after={last}"), &viewer, Some(&missed[1].to_string()));
    assert_eq!(both.events(1)[0].id, next);

    // A locked-key attempt is audit, not a change of value: the whole stream carries it as a refused change,
    // with its audit entry under `detail` only for a role that may read the audit trail, and a stream of
    // settings only stays quiet.
    let mut values = server.watch("/admin/config/watch?kind=settings", &viewer, None);
    let mut audited = server.watch(&format!("/admin/config/watch?after={next}"), &admin, None);
    server.put("JWT_ALGORITHM", &admin, json!("HS512")).error(403, "locked");
    let refused = both.events(1).remove(0);
    assert_eq!(
        (refused.data["kind"].as_str(), refused.data["key"].as_str()),
        (Some("ChangeRejected"), Some("JWT_ALGORITHM"))
    );
    assert!(refused.data.get("detail").is_none(), "a viewer does not read the audit trail: {}", refused.data);
    let refused = audited.events(1).remove(0);
    assert_eq!(refused.data["detail"][0]["rejected"]["reason"], "locked", "{}", refused.data);
    assert!(values.until_quiet(3).is_empty());
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Logging

#[test]
fn log_level_changed_by_put_takes_effect_in_the_running_server() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let is_debug = |l: &str| l.contains("\"level\":\"DEBUG\"");
    let changed = |level: &'static str| {
        move |l: &str| l.contains("log level changed") && l.contains(&format!("\"level\":\"{level}\""))
    };

    let quiet_id = "before-the-change-1";
    perform(server.request("GET", "/admin/config/LOG_LEVEL", Some(&admin)).set("X-Request-Id", quiet_id), None);
    server.put("cfgledger:LOG_LEVEL", &admin, json!("debug")).ok_json();
    eventually("the level change to be logged", || server.logged(changed("debug")));
    let lines = server.stderr();
    let at = lines.iter().position(|l| changed("debug")(l)).expect("the change line");
    // The PUT that changes the level may finish (and log its completion at debug) after the new level is in
    // force but before the change is announced: that line is the change taking effect, not a leak.
    let leaked = |l: &&String| is_debug(l) && !l.contains("\"method\":\"PUT\"");
    assert!(!lines[..at].iter().any(|l| leaked(&l)), "a debug line at info:\n{}", lines[..at].join("\n"));

    let loud_id = "after-the-change-1";
    perform(server.request("GET", "/admin/config/LOG_LEVEL", Some(&admin)).set("X-Request-Id", loud_id), None);
    eventually("a debug line for the next request", || {
        server.logged(|l| is_debug(l) && l.contains("request served") && l.contains(loud_id))
    });

    // And back: after LOG_LEVEL=info, requests log nothing at debug again.
    server.put("cfgledger:LOG_LEVEL", &admin, json!("info")).ok_json();
    eventually("the change back to be logged", || server.logged(changed("info")));
    let hushed_id = "after-the-change-back-1";
    perform(server.request("GET", "/admin/config/LOG_LEVEL", Some(&admin)).set("X-Request-Id", hushed_id), None);
    // A second change to debug is logged after that request's line would have been.
    server.put("cfgledger:LOG_LEVEL", &admin, json!("debug")).ok_json();
    eventually("the second change to debug", || server.stderr().iter().filter(|l| changed("debug")(l)).count() == 2);
    assert!(!server.logged(|l| l.contains(hushed_id)), "a debug line after LOG_LEVEL=info");
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Export and import

#[test]
fn an_export_imports_into_a_fresh_store_as_one_batch_and_only_once() {
    let source = Store::new("");
    let source_admin = source.token("ada", ADMIN);
    let source_auditor = source.token("aude", AUDITOR);
    let first = source.serve(&[]);
    first.put("MAX_WORKERS", &source_admin, json!(12)).ok_json();
    first.put("CACHE_TTL", &source_admin, json!("5m")).ok_json();
    first.put("UI_ENABLED", &source_admin, json!(false)).ok_json();
    first.put("WEBHOOK_SECRET", &source_admin, json!("export-never-carries-this-one")).ok_json();
    let doc = first.get("/admin/config/export", &source_auditor).ok_json();
    assert_eq!((doc["format"].as_str(), doc["schema_version"].as_u64()), (Some("cfgledger-settings"), Some(1)));
    assert_eq!(doc["exported_by"], "aude");
    assert_eq!(doc["settings"]["MAX_WORKERS"], 12);
    assert_eq!(doc["sources"]["MAX_WORKERS"], "db");
    assert!(doc["digest"].as_str().is_some_and(|d| d.starts_with("blake3:")));
    assert!(doc["settings"].get("WEBHOOK_SECRET").is_none() && doc["settings"].get("JWT_SECRET_KEY").is_none());
    assert!(!doc.to_string().contains("export-never-carries-this-one"));

    let target = Store::new("");
    let admin = target.token("ada", ADMIN);
    let auditor = target.token("aude", AUDITOR);
    let server = target.serve(&[]);
    let head = server.head();
    let import = |query: &str, body: &Value| {
        server.send_json("POST", &format!("/admin/config/import{query}"), Some(&admin), body)
    };

    let plan = import("?dry_run=true", &doc).ok_json();
    assert_eq!((plan["dry_run"].as_bool(), plan["applied"].as_bool()), (Some(true), Some(false)));
    assert_eq!(plan["summary"]["create"], 3, "{plan}");
    assert_eq!((plan["summary"]["update"].as_u64(), plan["summary"]["invalid"].as_u64()), (Some(0), Some(0)));
    let created: Vec<&str> = plan["plan"]
        .as_array()
        .expect("plan")
        .iter()
        .filter(|p| p["action"] == "create")
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(created, ["CACHE_TTL", "MAX_WORKERS", "UI_ENABLED"]);
    unchanged(&server, head, "a dry run");

    let applied = import("?reason=copy%20from%20staging", &doc).ok_json();
    assert_eq!(applied["applied"], true);
    let batch = applied["batch"].as_str().expect("a batch id").to_string();
    assert_eq!(applied["head"], head + 4, "the import record and three changes");
    assert_eq!(server.head(), head + 4);
    let new_events: Vec<Value> = target.log().into_iter().filter(|e| e["seq"].as_u64() > Some(head)).collect();
    assert_eq!(new_events.len(), 4);
    assert!(new_events.iter().all(|e| e["batch"]["id"] == batch.as_str()), "one batch: {new_events:?}");
    assert_eq!(new_events[0]["kind"], "ImportApplied");
    let entries = audit(&server, &auditor, 4);
    assert!(entries.iter().all(|e| e["batch"] == batch.as_str() && e["reason"] == "copy from staging"));
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 12);
    assert_eq!(value_of(&server, &admin, "UI_ENABLED"), false);

    let again = import("", &doc).ok_json();
    assert_eq!((again["applied"].as_bool(), again["batch"].is_null()), (Some(false), true));
    assert_eq!(again["summary"]["create"], 0);
    unchanged(&server, head + 4, "importing the same document again");

    // One invalid entry refuses the whole document, with the plan in the details.
    let mut invalid = doc.clone();
    invalid["settings"]["MAX_WORKERS"] = json!("many");
    invalid["settings"]["LOG_LEVEL"] = json!("debug");
    invalid.as_object_mut().expect("object").remove("digest");
    for query in ["", "?dry_run=true"] {
        let error = import(query, &invalid).error(422, "invalid_value");
        let entry = error["details"]["plan"]
            .as_array()
            .expect("plan in details")
            .iter()
            .find(|p| p["key"] == "MAX_WORKERS")
            .cloned();
        let entry = entry.expect("MAX_WORKERS in the plan");
        assert_eq!(entry["action"], "invalid");
        assert!(entry["message"].as_str().is_some_and(|m| m.contains("expects an integer")), "{entry}");
        assert_eq!(error["details"]["summary"]["invalid"], 1);
        unchanged(&server, head + 4, "an import with an invalid entry");
    }
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), "info", "nothing of a refused import applies");
    for bad in [
        json!({"settings": {"NO_SUCH_KEY": 1}}),
        json!({"settings": {"WEBHOOK_SECRET": "********"}}),
        json!({"settings": {"MAX_WORKERS": 3}, "format": "something-else"}),
        json!({"settings": {"MAX_WORKERS": 3}, "schema_version": 2}),
    ] {
        import("", &bad).error(422, "invalid_value");
        unchanged(&server, head + 4, &format!("the import {bad}"));
    }

    // A document changed after export no longer matches its digest.
    let mut tampered = doc.clone();
    tampered["settings"]["MAX_WORKERS"] = json!(99);
    assert!(import("", &tampered).error_message(422, "invalid_value").contains("digest"));
    unchanged(&server, head + 4, "a tampered import");

    // A locked key with another value is reported and skipped; the rest applies.
    let mut locked = doc.clone();
    locked["settings"]["JWT_ALGORITHM"] = json!("HS512");
    locked["settings"]["MAX_WORKERS"] = json!(13);
    locked.as_object_mut().expect("object").remove("digest");
    let outcome = import("", &locked).ok_json();
    let action = |key: &str| {
        outcome["plan"].as_array().expect("plan").iter().find(|p| p["key"] == key).map(|p| p["action"].clone())
    };
    assert_eq!(action("JWT_ALGORITHM"), Some(json!("locked")));
    assert_eq!(action("MAX_WORKERS"), Some(json!("update")));
    assert_eq!(outcome["conflicts"], json!(["MAX_WORKERS"]));
    assert_eq!(outcome["result"]["updated"], json!(["MAX_WORKERS"]), "what the write did: {outcome}");
    assert_eq!(outcome["result"]["locked"], json!(["JWT_ALGORITHM"]));
    // ImportApplied, the change, and the refused attempt on the locked key, recorded like any other.
    assert_eq!(server.head(), head + 7);
    assert_eq!(value_of(&server, &admin, "JWT_ALGORITHM"), "HS256");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), 13);
    first.assert_alive();
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Login and the audit trail

#[test]
fn login_issues_working_tokens_and_the_audit_names_who_where_and_why() {
    let store = Store::new("");
    store.add_user("alice", ADMIN, "correct horse battery");
    store.add_user("vera", VIEWER, "vera's own password");
    let auditor = store.token("aude", AUDITOR);
    let server = store.serve(&[]);
    let login = |user: &str, password: &str| {
        server.send_json("POST", "/auth/login", None, &json!({"username": user, "password": password}))
    };

    let granted = login("alice", "correct horse battery").ok_json();
    assert_eq!(granted["role"], ADMIN);
    assert!(granted["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{granted}");
    let alice = granted["token"].as_str().expect("a token").to_string();

    let wrong = login("alice", "incorrect horse").error_message(401, "unauthorized");
    let unknown = login("mallory", "correct horse battery").error_message(401, "unauthorized");
    assert_eq!(wrong, unknown, "no user enumeration");
    let extra = json!({"username": "alice", "password": "correct horse battery", "otp": 1});
    server.send_json("POST", "/auth/login", None, &extra).error(400, "bad_request");

    let head = server.head();
    let body = json!({"value": 9, "reason": "scaling for the launch"});
    let put = perform(
        server.request("PUT", "/admin/config/MAX_WORKERS", Some(&alice)).set("X-Request-Id", "req-login-test-1"),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(put.ok_json()["updated_by"], "alice");
    assert_eq!(put.header("x-request-id"), Some("req-login-test-1"), "a client's request id is kept");
    assert_eq!(server.head(), head + 1);
    let entry = &audit(&server, &auditor, 1)[0];
    assert_eq!(entry["seq"], head + 1);
    assert_eq!(entry["action"], "set");
    assert_eq!((entry["key"].as_str(), entry["value"].as_i64()), (Some("MAX_WORKERS"), Some(9)));
    assert!(entry["previous"].is_null());
    assert_eq!((entry["actor"].as_str(), entry["role"].as_str()), (Some("alice"), Some(ADMIN)));
    assert_eq!((entry["source"].as_str(), entry["address"].as_str()), (Some("api"), Some("127.0.0.1")));
    assert_eq!(entry["request_id"], "req-login-test-1");
    assert_eq!(entry["reason"], "scaling for the launch");
    assert!(entry["batch"].as_str().is_some_and(|b| !b.is_empty()));

    // Without a usable X-Request-Id the server makes one up, and the audit records the same one.
    let reset = perform(
        server
            .request("DELETE", "/admin/config/MAX_WORKERS?reason=back%20to%20default", Some(&alice))
            .set("X-Request-Id", "has spaces"),
        None,
    );
    reset.ok_json();
    let generated = reset.header("x-request-id").expect("a request id").to_string();
    assert_ne!(generated, "has spaces");
    let entry = &audit(&server, &auditor, 1)[0];
    assert_eq!((entry["action"].as_str(), entry["previous"].as_i64()), (Some("reset"), Some(9)));
    assert_eq!(entry["request_id"], generated.as_str());
    assert_eq!(entry["reason"], "back to default");
    let paged = server.get(&format!("/admin/config/audit?limit=1&before={}", head + 2), &auditor).ok_json();
    assert_eq!(paged["entries"][0]["seq"], head + 1, "before= pages backwards");
    assert_eq!(paged["next_before"], head + 1);

    let vera = login("vera", "vera's own password").ok_json();
    assert_eq!(vera["role"], VIEWER);
    let vera = vera["token"].as_str().expect("a token").to_string();
    assert_eq!(value_of(&server, &vera, "MAX_WORKERS"), 4);
    server.put("MAX_WORKERS", &vera, json!(5)).error(403, "forbidden");
    unchanged(&server, head + 2, "a viewer's PUT");
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Metrics

#[test]
fn metrics_count_requests_by_route_refusals_rate_limits_and_the_log_head() {
    let store = Store::new("CFGLEDGER_CONFIG_WRITE_RATE_LIMIT=2");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    server.get("/admin/config/LOG_LEVEL", &admin).ok_json();
    server.put("JWT_ALGORITHM", &admin, json!("HS512")).error(403, "locked");
    server.put("MAX_WORKERS", &admin, json!(5)).ok_json();
    server.put("MAX_WORKERS", &admin, json!(6)).error(429, "rate_limited");
    server.call("GET", "/no/such/endpoint", None).error(404, "not_found");
    let head = server.head();

    let text = server.call("GET", "/metrics", None);
    assert_eq!(text.status, 200);
    assert!(text.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let lines: Vec<&str> = text.body.lines().collect();
    let has = |pred: &dyn Fn(&str) -> bool| lines.iter().any(|l| pred(l));
    assert!(has(&|l| l.starts_with("cfgledger_http_request_duration_seconds")
        && l.contains("route=\"/admin/config/{key}\"")
        && l.contains("method=\"PUT\"")
        && l.contains("status=\"429\"")));
    assert!(has(&|l| l.starts_with("cfgledger_http_requests_total") && l.contains("route=\"unmatched\"")));
    assert!(has(&|l| l == "cfgledger_rejected_writes_total{reason=\"locked\"} 1"), "{}", text.body);
    assert!(has(&|l| l == "cfgledger_rate_limited_total 1"), "{}", text.body);
    assert!(has(&|l| *l == format!("cfgledger_head_seq {head}")), "{}", text.body);
    assert!(has(&|l| l == "cfgledger_projection_lag 0"), "{}", text.body);
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// Review regressions: each of these once answered something other than what is asserted here.

#[test]
fn role_path_cursor_and_reviewed_import_checks_answer_before_anything_is_done() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let viewer = store.token("vic", VIEWER);
    let server = store.serve(&[]);
    let head = server.head();

    // A viewer's write is 403 whatever its body: the role is checked before the body is read.
    server.send("PUT", "/admin/config/MAX_WORKERS", Some(&viewer), b"{not json").error(403, "forbidden");
    server.send("POST", "/admin/config/import", Some(&viewer), b"[1,2]").error(403, "forbidden");

    // A key that is not UTF-8 in the path is a JSON 400, like every other error.
    server.get("/admin/config/%FF", &admin).error(400, "bad_request");

    // A watch cursor beyond the head is refused instead of waiting (or retrying) forever.
    let beyond = format!("/admin/config/watch?after={}", head + 1000);
    server.get(&beyond, &admin).error(400, "bad_request");
    server.get("/admin/config/watch?after=18446744073709551615", &admin).error(400, "bad_request");

    // A locked key with a stale If-Match is refused as locked, and the attempt is recorded.
    let stale = server.request("PUT", "/admin/config/JWT_ALGORITHM", Some(&admin)).set("If-Match", "\"999\"");
    perform(stale, Some(br#"{"value": "HS512"}"#)).error(403, "locked");
    assert_eq!(server.head(), head + 1, "one ChangeRejected");

    // An import reviewed at one head is refused once the store has moved on.
    let doc = json!({"settings": {"MAX_WORKERS": 11}});
    let plan = server.send_json("POST", "/admin/config/import?dry_run=true", Some(&admin), &doc).ok_json();
    let reviewed = plan["head"].as_u64().expect("the dry run names its head");
    server.put("CACHE_TTL", &admin, json!("3m")).ok_json();
    let path = format!("/admin/config/import?expected_head={reviewed}");
    server.send_json("POST", &path, Some(&admin), &doc).error(409, "conflict");
    let now = server.head();
    let path = format!("/admin/config/import?expected_head={now}");
    let applied = server.send_json("POST", &path, Some(&admin), &doc).ok_json();
    assert_eq!(
        applied["result"]["updated"].as_array().map(Vec::len).unwrap_or(0)
            + applied["result"]["created"].as_array().map(Vec::len).unwrap_or(0),
        1,
        "{applied}"
    );
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------------------
// The resource registry

#[test]
fn a_new_sqlite_store_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    server.put("LOG_LEVEL", &admin, json!("debug")).ok_json();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", store.db_path().display());
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600), "{path}");
    }
    drop(server);
    // A store an earlier build left readable by others is made private when it is opened again.
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", store.db_path().display());
        if std::path::Path::new(&path).exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
    let out = store.cmd().args(["config", "get", "LOG_LEVEL"]).output().expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is now 0600"), "a warning says so");
    let mode = std::fs::metadata(store.db_path()).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "the database is private again");
}

/// An empty or absent import document is a mistake (a truncated file, the wrong file): both imports refuse
/// it with 400 and write nothing, instead of reporting `nothing_to_do`.
#[test]
fn an_empty_or_absent_import_document_is_400_not_nothing_to_do() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    for (document, says) in [
        (json!({}), "no \"settings\" object"),
        (json!({"settings": {}}), "\"settings\" is empty"),
        (json!({"settings": null}), "no \"settings\" object"),
        (json!(null), "expects a JSON object"),
    ] {
        for dry_run in [true, false] {
            let path = format!("/admin/config/import?dry_run={dry_run}");
            let message = server.send_json("POST", &path, Some(&admin), &document).error_message(400, "bad_request");
            assert!(message.contains(says), "{document} (dry_run={dry_run}): {message}");
        }
    }
    for (import_data, says) in [
        (json!({}), "the import document is empty"),
        (json!({"entities": null, "settings": null}), "the import document is empty"),
        (json!({"digest": "blake3:00", "format": "cfgledger-export"}), "the import document is empty"),
        (json!(null), "expects a JSON object"),
        (json!([]), "expects a JSON object"),
    ] {
        for dry_run in [true, false] {
            let body = json!({"import_data": import_data, "dry_run": dry_run});
            let message = server.send_json("POST", "/import", Some(&admin), &body).error_message(400, "bad_request");
            assert!(message.contains(says), "{import_data} (dry_run={dry_run}): {message}");
        }
    }
    let absent = server.send_json("POST", "/import", Some(&admin), &json!({"dry_run": true}));
    assert!(absent.error_message(400, "bad_request").contains("import_data"), "an absent document names the field");
    unchanged(&server, head, "an empty import");
    // A document that holds something still imports.
    let applied =
        server.send_json("POST", "/admin/config/import", Some(&admin), &json!({"settings": {"MAX_WORKERS": 3}}));
    assert_eq!(applied.ok_json()["applied"], true);
}

#[test]
fn the_audit_csv_keeps_a_formula_as_text() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    server.put("LOG_FILE", &admin, json!("=HYPERLINK(\"http://evil.example\")")).ok_json();
    let csv = server.call("GET", "/admin/config/audit?key=LOG_FILE&format=csv", Some(&admin));
    assert_eq!(csv.status, 200);
    let text = csv.body;
    assert!(text.contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""), "{text}");
}

#[test]
fn entity_writes_with_if_match_are_compare_and_set() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let tool = json!({"name": "cas", "url": "https://api.example/cas"});
    assert_eq!(server.send_json("POST", "/tools", Some(&admin), &tool).status, 201);
    let read = server.call("GET", "/tools/cas", Some(&admin));
    let etag = read.header("etag").expect("an ETag").to_string();
    let mut changed = read.json();
    changed["description"] = json!("first");
    let put = |body: &Value, tag: &str| {
        let req = server.request("PUT", "/tools/cas", Some(&admin)).set("If-Match", tag);
        api_support::perform(req, Some(body.to_string().as_bytes()))
    };
    let first = put(&changed, &etag).ok_json();
    assert_eq!(first["description"], "first");
    // The same stale ETag again: someone else's write came in between.
    let head = server.head();
    changed["description"] = json!("second");
    let stale = put(&changed, &etag).error_message(409, "conflict");
    assert!(stale.contains("tool cas changed since version"), "{stale}");
    assert_eq!(server.head(), head, "a conflict writes nothing");
    let del = api_support::perform(server.request("DELETE", "/tools/cas", Some(&admin)).set("If-Match", &etag), None);
    del.error(409, "conflict");
    let fresh = format!("\"{}\"", first["version"]);
    assert_eq!(put(&changed, &fresh).ok_json()["description"], "second");
    put(&changed, "not-a-version").error(400, "bad_request");
}

#[test]
fn a_masked_secret_header_keeps_the_stored_one_and_is_never_taken_as_the_secret() {
    let store = Store::new("LOG_LEVEL=info");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    // A masked secret header (a read's `********`, MCP Gateway's `*****`) stands for the stored value, never
    // for a new secret; with nothing stored it is refused.
    let with_header =
        json!({"name": "hdr", "url": "https://api.example/h", "headers": {"X-Api-Key": "key-plain-51c3"}});
    let stored = server.send_json("POST", "/tools", Some(&admin), &with_header).json();
    let sealed = stored["headers"]["X-Api-Key"].clone();
    assert!(sealed.get("cfgledger_sealed").is_some(), "{stored}");
    for mask in ["*****", "********"] {
        let mut masked = stored.clone();
        masked["headers"]["X-Api-Key"] = json!(mask);
        let put = server.send_json("PUT", "/tools/hdr", Some(&admin), &masked).ok_json();
        assert_eq!(put["headers"]["X-Api-Key"], sealed, "{mask} keeps the stored header");
        assert_eq!(put["version"], stored["version"], "{mask} changes nothing");
    }
    let before = server.head();
    let fresh = json!({"name": "hdr2", "url": "https://api.example/h", "headers": {"X-Api-Key": "*****"}});
    let refused = server.send_json("POST", "/tools", Some(&admin), &fresh).error_message(422, "invalid_value");
    assert!(refused.contains("header X-Api-Key is masked"), "{refused}");
    assert_eq!(server.head(), before);
}

#[test]
fn resources_are_created_read_updated_and_deleted_with_credentials_never_returned() {
    let store = Store::new("LOG_LEVEL=debug");
    let admin = store.token("ada", ADMIN);
    let viewer = store.token("vic", VIEWER);
    let server = store.serve(&[]);
    let head = server.head();
    let secret = "bearer-token-9f8e7d6c";

    // Roles: a viewer reads, only an admin writes; bad input is a precise 4xx and writes nothing.
    let tool = json!({"name": "search", "url": "https://api.example/search", "tags": ["web"],
                      "auth_type": "bearer", "auth_token": secret, "vendor_field": {"kept": true}});
    server.send_json("POST", "/tools", Some(&viewer), &tool).error(403, "forbidden");
    server.send_json("POST", "/tools", None, &tool).error(401, "unauthorized");
    let missing = server.send_json("POST", "/tools", Some(&admin), &json!({"url": "https://x/y"}));
    assert!(missing.error_message(422, "invalid_value").contains("tool missing required field: name"));
    server
        .send_json("POST", "/servers", Some(&admin), &json!({"name": "s", "associated_tools": ["search"]}))
        .error(422, "invalid_value");
    assert_eq!(server.head(), head, "refused writes append nothing");

    let created = server.send_json("POST", "/tools", Some(&admin), &tool);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/tools/search"));
    let body = created.json();
    assert_eq!(body["auth_type"], "bearer");
    assert!(body["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl2:")), "{body}");
    assert_eq!(body["vendor_field"], json!({"kept": true}));
    server.send_json("POST", "/tools", Some(&admin), &tool).error(409, "conflict");

    // A server referencing it; the tool cannot go while referenced.
    let s = json!({"name": "edge", "associated_tools": ["search"], "tags": ["prod"]});
    assert_eq!(server.send_json("POST", "/servers", Some(&admin), &s).status, 201);
    let refused = server.call("DELETE", "/tools/search", Some(&admin));
    assert!(refused.error_message(409, "conflict").contains("servers/edge"));

    // Reads, filters, PATCH keeping the credentials, PUT of what GET returned, percent-encoded uris.
    assert_eq!(server.get("/tools/search", &viewer).ok_json()["name"], "search");
    assert_eq!(server.get("/tools?tags=web", &viewer).ok_json()["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(server.get("/tools?tags=other", &viewer).ok_json()["items"].as_array().map(Vec::len), Some(0));
    let patched = server.send_json("PATCH", "/tools/search", Some(&admin), &json!({"description": "finds"})).ok_json();
    assert_eq!(patched["auth_value"], body["auth_value"], "an update without auth keeps it");
    let same = server.send_json("PUT", "/tools/search", Some(&admin), &patched).ok_json();
    assert_eq!(same["version"], patched["version"], "sending back what GET returned changes nothing");
    let res = json!({"uri": "file:///srv/doc.md", "name": "doc", "mime_type": "text/markdown"});
    assert_eq!(server.send_json("POST", "/resources", Some(&admin), &res).status, 201);
    assert_eq!(server.get("/resources/file%3A%2F%2F%2Fsrv%2Fdoc.md", &viewer).ok_json()["name"], "doc");
    server.get("/tools/nope", &viewer).error(404, "not_found");

    // Deleting in order works, and every write is in the audit trail.
    assert_eq!(server.call("DELETE", "/servers/edge", Some(&admin)).ok_json()["deleted"], true);
    assert_eq!(server.call("DELETE", "/tools/search", Some(&admin)).ok_json()["deleted"], true);
    let audit = server.get("/admin/config/audit?limit=20", &admin).ok_json();
    let actions: Vec<&str> =
        audit["entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.starts_with(&["resource_deleted", "resource_deleted", "resource_created", "resource_updated"]),
        "{actions:?}"
    );

    // The credential is nowhere in plaintext: not in the log file, not in the server's debug log.
    assert!(!String::from_utf8_lossy(&store.database_bytes()).contains(secret));
    assert!(!server.logged(|l| l.contains(secret)));
    server.assert_alive();
}

#[test]
fn the_registry_exports_with_filters_dependencies_and_sealed_credentials() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let auditor = store.token("aude", AUDITOR);
    let viewer = store.token("vic", VIEWER);
    let server = store.serve(&[]);
    let secret = "p4ss-for-the-export";
    let post = |kind: &str, body: Value| {
        let r = server.send_json("POST", &format!("/{kind}"), Some(&admin), &body);
        assert_eq!(r.status, 201, "{}", r.body);
    };
    post(
        "tools",
        json!({"name": "a", "tags": ["x"], "auth_type": "basic", "auth_username": "u", "auth_password": secret}),
    );
    post("tools", json!({"name": "b", "tags": ["y"]}));
    post("tools", json!({"name": "old", "is_active": false}));
    post("prompts", json!({"name": "p", "template": "hi {{name}}"}));
    post("servers", json!({"name": "s", "tags": ["x"], "associated_tools": ["b"], "associated_prompts": ["p"]}));

    server.get("/export", &viewer).error(403, "forbidden");
    let all = server.get("/export", &auditor).ok_json();
    assert_eq!(all["version"], "2025-11-25");
    assert!(all["digest"].as_str().is_some_and(|d| d.starts_with("blake3:")));
    assert_eq!(all["encryption"]["algorithm"], "xchacha20poly1305");
    assert_eq!(all["metadata"]["entity_counts"]["tools"], 2, "inactive tools are left out by default");
    assert_eq!(all["metadata"]["dependencies"]["servers/s"], json!(["tools/b", "prompts/p"]));
    let a = &all["entities"]["tools"][0];
    assert_eq!((a["name"].as_str(), a["auth_type"].as_str()), (Some("a"), Some("basic")));
    assert!(a["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl1:")));
    assert!(!all.to_string().contains(secret) && !all.to_string().contains("auth_password"));

    let inactive = server.get("/export?types=tools&include_inactive=true", &auditor).ok_json();
    assert_eq!(inactive["metadata"]["entity_counts"]["tools"], 3);
    assert_eq!(inactive["metadata"]["entity_counts"]["servers"], 0);
    // An export always imports into an empty store: by default the server brings what it links, and says so.
    let tagged = server.get("/export?tags=x", &auditor).ok_json();
    assert_eq!(
        tagged["metadata"]["entity_counts"],
        json!({"roots": 0, "gateways": 0, "tools": 2, "resources": 0, "prompts": 1, "servers": 1})
    );
    assert_eq!(
        tagged["metadata"]["notes"],
        json!(["tools/b brought along: servers/s links it", "prompts/p brought along: servers/s links it"])
    );
    // Without dependencies, the server whose links are not exported is left out, and the export says so.
    let without = server.get("/export?tags=x&include_dependencies=false", &auditor).ok_json();
    assert_eq!(
        without["metadata"]["entity_counts"],
        json!({"roots": 0, "gateways": 0, "tools": 1, "resources": 0, "prompts": 0, "servers": 0})
    );
    assert!(without["metadata"]["notes"][0].as_str().is_some_and(|n| n.starts_with("servers/s left out: it links")));
    let excluded = server.get("/export?exclude_types=tools,prompts&include_dependencies=false", &auditor).ok_json();
    assert_eq!(excluded["metadata"]["entity_counts"]["tools"], 0);
    assert_eq!(excluded["metadata"]["entity_counts"]["servers"], 0, "s links tools it would not carry");
    server.get("/export?types=widgets", &auditor).error(400, "bad_request");

    let picked = server.send_json(
        "POST",
        "/export/selective?include_dependencies=true",
        Some(&auditor),
        &json!({"servers": ["s"]}),
    );
    let picked = picked.ok_json();
    assert_eq!(picked["metadata"]["entity_counts"]["servers"], 1);
    assert_eq!(picked["metadata"]["entity_counts"]["tools"], 1);
    server.send_json("POST", "/export/selective", Some(&auditor), &json!({"tools": ["ghost"]})).error(404, "not_found");
    server.send_json("POST", "/export/selective", Some(&viewer), &json!({"tools": ["a"]})).error(403, "forbidden");

    // The CLI writes the same document to a file and prints the counts.
    let out = store.ok(&["export", "--out", "reg.json", "--include-inactive"]);
    assert!(
        out.contains("exported 0 roots, 0 gateways, 3 tools, 0 resources, 1 prompts, 1 servers to reg.json"),
        "{out}"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(store.dir().join("reg.json")).expect("file")).expect("json");
    assert_eq!(file["entities"]["tools"].as_array().map(Vec::len), Some(3));
    assert!(!file.to_string().contains(secret));
}

#[test]
fn an_export_round_trips_through_import_with_each_conflict_strategy() {
    // Both stores share the encryption secret (ENCRYPTION_SECRET in the helpers), so sealed credentials open.
    let source = Store::new("");
    let admin = source.token("ada", ADMIN);
    let a = source.serve(&[]);
    let post =
        |kind: &str, body: Value| assert_eq!(a.send_json("POST", &format!("/{kind}"), Some(&admin), &body).status, 201);
    post("tools", json!({"name": "t1", "url": "https://x/1", "auth_type": "bearer", "auth_token": "tk-1"}));
    post("tools", json!({"name": "t2"}));
    post("servers", json!({"name": "s", "associated_tools": ["t1", "t2"]}));
    a.put("MAX_WORKERS", &admin, json!(12)).ok_json();
    let doc = a.get("/export", &admin).ok_json();

    let target = Store::new("");
    let admin_b = target.token("bea", ADMIN);
    let b = target.serve(&[]);
    let import = |body: Value| b.send_json("POST", "/import", Some(&admin_b), &body);
    let head = b.head();

    // Validation first: precise messages, nothing written.
    let mut broken = doc.clone();
    broken.as_object_mut().expect("object").remove("digest");
    broken["entities"]["tools"][1] = json!({"url": "https://no/name"});
    let msg = import(json!({"import_data": broken})).error_message(422, "invalid_value");
    assert!(msg.contains("entity 1 in 'tools' missing required field: name"), "{msg}");
    let mut widgets = doc.clone();
    widgets.as_object_mut().expect("object").remove("digest");
    widgets["entities"]["widgets"] = json!([]);
    assert!(import(json!({"import_data": widgets}))
        .error_message(422, "invalid_value")
        .contains("unknown entity type: widgets"));
    let mut tampered = doc.clone();
    tampered["entities"]["tools"][1]["name"] = json!("t9");
    let msg = import(json!({"import_data": tampered})).error_message(422, "invalid_value");
    assert!(msg.contains("digest does not match") && msg.contains(r#""allow_edited": true"#), "{msg}");
    // An edited file is imported knowingly, and the plan says so.
    let mut edited = doc.clone();
    edited["entities"]["tools"][1]["description"] = json!("edited by hand");
    import(json!({"import_data": edited, "dry_run": true})).error(422, "invalid_value");
    let edited = import(json!({"import_data": edited, "dry_run": true, "allow_edited": true})).ok_json();
    assert!(edited["notes"].to_string().contains("imported as an edited file"), "{edited}");
    import(json!({"import_data": doc, "conflict_strategy": "merge"})).error(400, "bad_request");
    assert_eq!(b.head(), head, "refused imports append nothing");

    // The export carries only what the store holds (MAX_WORKERS), and says so.
    assert_eq!(doc["settings"], json!({"MAX_WORKERS": 12}), "{doc}");
    assert_eq!(doc["metadata"]["settings_source"], "db");
    // Without with_settings, the settings are listed as left out and not planned.
    let dry = import(json!({"import_data": doc, "dry_run": true})).ok_json();
    assert_eq!(dry["settings"], Value::Null, "{dry}");
    assert!(
        dry["notes"]
            .to_string()
            .contains(r#"carries 1 setting(s); they are not applied: import with \"with_settings\": true"#),
        "{dry}"
    );

    // A dry run gives the plan; the apply does exactly that, in one batch; again appends nothing.
    let dry = import(json!({"import_data": doc, "dry_run": true, "with_settings": true})).ok_json();
    assert_eq!(dry["counts"]["create"], 3, "{dry}");
    assert_eq!(dry["settings"]["plan"][0]["key"], "MAX_WORKERS", "the dry run lists the setting it changes: {dry}");
    assert_eq!(b.head(), head);
    let applied = import(json!({"import_data": doc, "reason": "clone prod", "with_settings": true})).ok_json();
    assert_eq!(applied["status"], "completed");
    let id = applied["import_id"].as_str().expect("an import id").to_string();
    let status = b.get(&format!("/import/status/{id}"), &admin_b).ok_json();
    assert_eq!(status["created"].as_array().map(Vec::len), Some(4), "3 entities and MAX_WORKERS: {status}");
    assert_eq!(b.get("/import/status", &admin_b).ok_json()["imports"][0]["import_id"], id.as_str());
    let batch_ids: std::collections::BTreeSet<String> = target
        .log()
        .iter()
        .filter(|e| e["seq"].as_u64().is_some_and(|s| s > head))
        .filter_map(|e| e["batch"]["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(batch_ids.len(), 1, "one atomic batch");
    let after = b.head();
    assert_eq!(import(json!({"import_data": doc})).ok_json()["status"], "nothing_to_do");
    assert_eq!(
        import(json!({"import_data": doc, "with_settings": true})).ok_json()["status"],
        "nothing_to_do",
        "settings too"
    );
    assert_eq!(b.head(), after, "importing the same file again appends nothing");

    // The credentials arrived sealed and open under this store's key: the entity round-trips.
    // Exporting B gives A's entities back, apart from the ciphertexts (B sealed them again under its own key).
    let without_ciphertexts = |mut v: Value| {
        for list in v.as_object_mut().expect("by kind").values_mut() {
            for e in list.as_array_mut().expect("a list") {
                if let Some(sealed) = e.as_object_mut().and_then(|o| o.remove("auth_value")) {
                    assert!(sealed.as_str().is_some_and(|s| s.starts_with("cfgl1:")));
                }
            }
        }
        v
    };
    let exported_b = b.get("/export", &admin_b).ok_json();
    assert_eq!(without_ciphertexts(exported_b["entities"].clone()), without_ciphertexts(doc["entities"].clone()));
    assert_eq!(exported_b["settings"], doc["settings"]);

    // Strategies on a conflict: the target's t2 now differs from the file's.
    b.send_json("PATCH", "/tools/t2", Some(&admin_b), &json!({"description": "local edit"})).ok_json();
    let head = b.head();
    let refused = import(json!({"import_data": doc, "conflict_strategy": "fail"}));
    assert!(refused.error_message(409, "conflict").contains("tools/t2"));
    let dry_fail = import(json!({"import_data": doc, "conflict_strategy": "fail", "dry_run": true})).ok_json();
    assert_eq!(dry_fail["counts"]["conflict"], 1, "a dry run shows the conflict: {dry_fail}");
    assert_eq!(import(json!({"import_data": doc, "conflict_strategy": "skip"})).ok_json()["status"], "nothing_to_do");
    assert_eq!(b.head(), head);
    let renamed = import(json!({"import_data": doc, "conflict_strategy": "rename"})).ok_json();
    // t2 is imported as t2_imported, and the server that references it follows it under a new name too.
    assert_eq!(renamed["counts"]["rename"], 2, "{renamed}");
    assert_eq!(b.get("/tools/t2_imported", &admin_b).ok_json()["name"], "t2_imported");
    assert_eq!(b.get("/servers/s_imported", &admin_b).ok_json()["associated_tools"], json!(["t1", "t2_imported"]));
    assert_eq!(b.get("/tools/t2", &admin_b).ok_json()["description"], "local edit");
    let updated = import(json!({"import_data": doc, "conflict_strategy": "update"})).ok_json();
    assert_eq!(updated["counts"]["update"], 1, "{updated}");
    assert!(b.get("/tools/t2", &admin_b).ok_json().get("description").is_none());

    // Selection keeps only what is named.
    let fresh = Store::new("");
    let admin_c = fresh.token("cy", ADMIN);
    let c = fresh.serve(&[]);
    let picked = c.send_json(
        "POST",
        "/import",
        Some(&admin_c),
        &json!({"import_data": doc, "selected_entities": {"tools": ["t2"]}, "dry_run": true}),
    );
    assert_eq!(picked.ok_json()["counts"]["create"], 1);
}

#[test]
fn credentials_from_a_store_with_another_secret_import_only_with_that_secret() {
    let source = Store::new("");
    let admin = source.token("ada", ADMIN);
    let a = source.serve(&[]);
    let secret_credential = "gw-token-3c4d5e";
    let gw = json!({"name": "gw", "url": "https://gw/", "auth_type": "bearer", "auth_token": secret_credential});
    assert_eq!(a.send_json("POST", "/gateways", Some(&admin), &gw).status, 201);
    let doc = a.get("/export", &admin).ok_json();

    let other = Store::with_process_env("", &[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "a-different-secret-0123456789")]);
    let admin_o = other.token("ola", ADMIN);
    let o = other.serve(&[]);
    let head = o.head();
    let no_secret = o.send_json("POST", "/import", Some(&admin_o), &json!({"import_data": doc}));
    let message = no_secret.error_message(422, "invalid_value");
    assert!(message.contains("does not open"), "{message}");
    let wrong = o.send_json(
        "POST",
        "/import",
        Some(&admin_o),
        &json!({"import_data": doc, "source_secret": "wrong-secret-0123456789"}),
    );
    assert!(wrong.error_message(422, "invalid_value").contains("does not open"));
    assert_eq!(o.head(), head, "a wrong source secret writes nothing");
    assert!(!no_secret.body.contains(ENCRYPTION_SECRET) && !wrong.body.contains("wrong-secret"));

    let right = json!({"import_data": doc, "source_secret": ENCRYPTION_SECRET});
    assert_eq!(o.send_json("POST", "/import", Some(&admin_o), &right).ok_json()["status"], "completed");
    // Re-sealed under this store's key and bound to the entity: what GET returns goes back through PUT.
    let shown = o.get("/gateways/gw", &admin_o).ok_json();
    assert_ne!(shown["auth_value"], doc["entities"]["gateways"][0]["auth_value"]);
    o.send_json("PUT", "/gateways/gw", Some(&admin_o), &shown).ok_json();
    assert!(!String::from_utf8_lossy(&other.database_bytes()).contains(secret_credential));
    assert!(!o.logged(|l| l.contains(secret_credential) || l.contains(ENCRYPTION_SECRET)));
}

#[test]
fn an_mcp_gateway_export_imports_with_its_secret_and_its_credentials_are_sealed_again() {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let gateway_secret = "the-gateway-s-own-secret";
    let seal = |plaintext: &str, nonce: u8| {
        let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(gateway_secret.as_bytes())).expect("a key");
        let nonce = [nonce; 12];
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes()).expect("sealed"));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    };
    let file = json!({
        "version": "2025-03-26",
        "exported_by": "admin",
        "encryption_method": "AES-256-GCM",
        "entities": {
            "tools": [{"name": "weather", "url": "https://w.example/api", "integration_type": "REST",
                       "auth_type": "bearer", "auth_value": seal(r#"{"Authorization": "Bearer wx-77"}"#, 1)}],
            "gateways": [{"name": "peer", "url": "https://peer.example/sse", "transport": "SSE",
                          "auth_type": "basic", "auth_value": seal(r#"{"Authorization": "Basic dXNlcjpwdw=="}"#, 2)}]
        }
    });
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let without = server.send_json("POST", "/import", Some(&admin), &json!({"import_data": file}));
    assert!(without
        .error_message(422, "invalid_value")
        .contains("give the gateway's AUTH_ENCRYPTION_SECRET with source_secret"));
    let wrong =
        server.send_json("POST", "/import", Some(&admin), &json!({"import_data": file, "source_secret": "nope"}));
    assert!(wrong.error_message(422, "invalid_value").contains("does not open"));
    assert_eq!(server.head(), head, "nothing written");

    let body = json!({"import_data": file, "source_secret": gateway_secret});
    let applied = server.send_json("POST", "/import", Some(&admin), &body).ok_json();
    assert_eq!(applied["counts"]["create"], 2, "{applied}");
    let tool = server.get("/tools/weather", &admin).ok_json();
    assert_eq!(tool["auth_type"], "bearer");
    assert!(
        tool["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl2:")),
        "sealed again under this store: {tool}"
    );
    // Sealed under this store's key and bound to the entity: it goes back through PUT as it is.
    server.send_json("PUT", "/tools/weather", Some(&admin), &tool).ok_json();
    let log = store.log().iter().map(Value::to_string).collect::<String>();
    assert!(!log.contains("wx-77") && !log.contains("dXNlcjpwdw"), "no plaintext credential in the log");
    assert!(!String::from_utf8_lossy(&store.database_bytes()).contains("wx-77"));
}

#[test]
fn an_export_in_mcp_gateway_layout_opens_with_the_gateway_secret_and_imports_back() {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let open = |secret: &str, value: &Value| -> Value {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.as_str().expect("a sealed value"))
            .expect("base64url without padding");
        let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(secret.as_bytes())).expect("a key");
        let plaintext = cipher.decrypt(Nonce::from_slice(&raw[..12]), &raw[12..]).expect("the secret opens it");
        serde_json::from_slice(&plaintext).expect("a JSON object of headers")
    };
    let gateway_secret = "target-gateway-secret-9f8e";
    let source = Store::with_process_env("", &[("GW_SECRET", gateway_secret)]);
    let admin = source.token("ada", ADMIN);
    let a = source.serve(&[]);
    let (token, password, header) = ("tok-e1f2", "pw-a9b8", "hdr-c7d6");
    for (kind, body) in [
        ("tools", json!({"name": "bearer", "auth_type": "bearer", "auth_token": token, "tags": ["x"]})),
        ("tools", json!({"name": "plain", "url": "https://p/"})),
        (
            "gateways",
            json!({"name": "basic", "url": "https://g/", "auth_type": "basic", "auth_username": "ann", "auth_password": password}),
        ),
        (
            "gateways",
            json!({"name": "custom", "url": "https://c/", "auth_type": "headers", "auth_headers": {"X-Api-Key": header}}),
        ),
        ("servers", json!({"name": "s", "associated_tools": ["bearer", "plain"]})),
    ] {
        let r = a.send_json("POST", &format!("/{kind}"), Some(&admin), &body);
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // Over HTTP, under this store's own secret.
    let own = a.get("/export?format=mcpgateway", &admin).ok_json();
    assert_eq!(own["encryption_method"], "AES-256-GCM");
    assert!(own.get("settings").is_none() && own.get("encryption").is_none(), "MCP Gateway's layout: {own}");
    assert_eq!(
        open(ENCRYPTION_SECRET, &own["entities"]["tools"][0]["auth_value"]),
        json!({"Authorization": format!("Bearer {token}")})
    );
    a.get("/export?format=yaml", &admin).error(400, "bad_request");

    // From the CLI, under the target gateway's secret.
    let out = source.ok(&["export", "--format", "mcpgateway", "--target-secret-env", "GW_SECRET", "--out", "gw.json"]);
    assert!(out.contains("2 gateways, 2 tools, 0 resources, 0 prompts, 1 servers to gw.json"), "{out}");
    let text = std::fs::read_to_string(source.dir().join("gw.json")).expect("the file");
    for plaintext in [token, password, header, "ann"] {
        assert!(!text.contains(plaintext), "{plaintext} in the file");
    }
    let file: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(file["version"], "2025-11-25");
    assert_eq!(file["metadata"]["entity_counts"]["gateways"], 2);
    let gateways = &file["entities"]["gateways"];
    assert_eq!((gateways[0]["name"].as_str(), gateways[0]["auth_type"].as_str()), (Some("basic"), Some("basic")));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ann:{password}"));
    assert_eq!(open(gateway_secret, &gateways[0]["auth_value"]), json!({"Authorization": format!("Basic {basic}")}));
    assert_eq!(gateways[1]["auth_type"], "authheaders", "MCP Gateway's name for custom headers");
    assert_eq!(open(gateway_secret, &gateways[1]["auth_value"]), json!({"X-Api-Key": header}));
    let usage = source.cmd().args(["export", "--target-secret-env", "GW_SECRET"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--format mcpgateway only"));
    let unset = source.cmd().args(["export", "--format", "mcpgateway", "--target-secret-env", "NOPE"]).output();
    assert!(String::from_utf8_lossy(&unset.expect("runs").stderr).contains("NOPE: the variable is not set"));

    // Back into a store with another secret: the credentials are the same ones, sealed under its key.
    let target = Store::with_process_env(
        "",
        &[("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "another-store-secret-0123456789"), ("GW_SECRET", gateway_secret)],
    );
    std::fs::copy(source.dir().join("gw.json"), target.dir().join("gw.json")).expect("copy");
    target.ok(&["config", "get", "LOG_LEVEL"]);
    let head = target.log().len() as u64;
    let refused = target.cmd().args(["import", "gw.json"]).output().expect("runs");
    assert!(!refused.status.success());
    // The message names the CLI's own option, not the API's field.
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("give the gateway's AUTH_ENCRYPTION_SECRET with --source-secret-env VAR"), "{stderr}");
    assert!(!stderr.contains("source_secret"), "{stderr}");
    assert_eq!(target.log().len() as u64, head, "nothing written without the secret");
    let imported = target.ok(&["import", "gw.json", "--source-secret-env", "GW_SECRET"]);
    assert!(imported.contains("plan: 5 create"), "{imported}");
    target.ok(&["export", "--format", "mcpgateway", "--target-secret-env", "GW_SECRET", "--out", "back.json"]);
    let back: Value =
        serde_json::from_str(&std::fs::read_to_string(target.dir().join("back.json")).expect("file")).expect("json");
    for kind in ["tools", "gateways", "servers"] {
        let list = |doc: &Value| doc["entities"][kind].as_array().cloned().unwrap_or_default();
        assert_eq!(list(&back).len(), list(&file).len(), "{kind}");
        for (b, f) in list(&back).iter().zip(list(&file).iter()) {
            let strip = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().map(|o| o.remove("auth_value"));
                v
            };
            assert_eq!(strip(b), strip(f), "{kind}: the same entity came back");
            if f.get("auth_value").is_some() {
                assert_eq!(open(gateway_secret, &b["auth_value"]), open(gateway_secret, &f["auth_value"]));
            }
        }
    }
    let log = target.log().iter().map(Value::to_string).collect::<String>();
    assert!(![token, password, header].iter().any(|p| log.contains(p)), "no plaintext credential in the log");
}

#[test]
fn registry_answers_read_back_as_the_typed_model_with_their_wire_names() {
    use cfgledger::model::{
        Deleted, Entity, EntityList, ExportAnswer, ImportReport, ImportStatus, ImportStatusKind, ImportStatuses,
    };
    use cfgledger_events::registry_import::EntityAction;
    let typed = |v: Value| -> (Value, String) { (v.clone(), v.to_string()) };
    let source = Store::new("");
    let admin = source.token("ada", ADMIN);
    let a = source.serve(&[]);
    let before = a.head();
    let created = a.send_json(
        "POST",
        "/tools",
        Some(&admin),
        &json!({"name": "t", "tags": ["x"], "auth_type": "bearer", "auth_token": "tk-typed"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let entity: Entity = serde_json::from_value(created.json()).expect("an Entity");
    assert_eq!((entity.fields["name"].as_str(), entity.version, entity.as_of), (Some("t"), a.head(), None));
    assert!(!entity.fields.contains_key("version"), "provenance is not repeated among the fields");

    // Lists, now and as of a point of the log.
    let list: EntityList = serde_json::from_value(a.get("/tools", &admin).ok_json()).expect("an EntityList");
    assert_eq!((list.items.len(), list.head, list.as_of), (1, a.head(), None));
    let (raw, _) = typed(a.get(&format!("/tools?as_of=seq:{before}"), &admin).ok_json());
    let past: EntityList = serde_json::from_value(raw).expect("an EntityList");
    assert_eq!((past.items.len(), past.as_of.map(|p| p.seq)), (0, Some(before)));
    let shown: Entity =
        serde_json::from_value(a.get(&format!("/tools/t?as_of=seq:{}", a.head()), &admin).ok_json()).expect("Entity");
    assert_eq!(shown.as_of.map(|p| p.seq), Some(a.head()));

    // Both export layouts.
    let doc = a.get("/export", &admin).ok_json();
    match serde_json::from_value::<ExportAnswer>(doc.clone()).expect("an export") {
        ExportAnswer::Cfgledger(d) => {
            assert_eq!((d.format.as_str(), d.metadata.entity_counts["tools"]), ("cfgledger-export", 1));
            assert_eq!(d.source.seq, a.head());
        }
        other => panic!("cfgledger's layout expected: {other:?}"),
    }
    let gateway = a.get("/export?format=mcpgateway", &admin).ok_json();
    assert!(matches!(serde_json::from_value::<ExportAnswer>(gateway), Ok(ExportAnswer::McpGateway(_))));

    // An import: a dry run has no outcome fields; an apply has them; a second apply appends nothing.
    let target = Store::new("");
    let admin_b = target.token("bea", ADMIN);
    let b = target.serve(&[]);
    let (raw, text) =
        typed(b.send_json("POST", "/import", Some(&admin_b), &json!({"import_data": doc, "dry_run": true})).ok_json());
    assert!(!text.contains("import_id") && !text.contains("\"status\""), "{text}");
    let dry: ImportReport = serde_json::from_value(raw).expect("an ImportReport");
    assert!(dry.dry_run && dry.status.is_none() && dry.result.is_none());
    assert_eq!((dry.entities[0].action, dry.counts.create), (EntityAction::Create, 1));
    let applied: ImportReport =
        serde_json::from_value(b.send_json("POST", "/import", Some(&admin_b), &json!({"import_data": doc})).ok_json())
            .expect("an ImportReport");
    assert_eq!((applied.status, applied.head), (Some(ImportStatusKind::Completed), b.head()));
    let result = applied.result.expect("what the writer appended");
    assert_eq!(result.created, ["tools/t"]);
    let id = applied.import_id.expect("an import id");
    let again: ImportReport =
        serde_json::from_value(b.send_json("POST", "/import", Some(&admin_b), &json!({"import_data": doc})).ok_json())
            .expect("an ImportReport");
    assert_eq!((again.status, again.import_id, again.result), (Some(ImportStatusKind::NothingToDo), None, None));
    let one: ImportStatus =
        serde_json::from_value(b.get(&format!("/import/status/{id}"), &admin_b).ok_json()).expect("an ImportStatus");
    assert_eq!((one.import_id.as_str(), one.actor.as_str(), one.created.len()), (id.as_str(), "bea", 1));
    let all: ImportStatuses = serde_json::from_value(b.get("/import/status", &admin_b).ok_json()).expect("statuses");
    assert_eq!(all.imports, [one]);
    b.get("/import/status/no-such-batch", &admin_b).error(404, "not_found");

    // A refusal at apply time carries the plan in its details, as the model's report.
    b.send_json("PATCH", "/tools/t", Some(&admin_b), &json!({"description": "local"})).ok_json();
    let refused =
        b.send_json("POST", "/import", Some(&admin_b), &json!({"import_data": doc, "conflict_strategy": "fail"}));
    let error = refused.error(409, "conflict");
    let plan: ImportReport = serde_json::from_value(error["details"]["plan"].clone()).expect("the plan");
    assert_eq!((plan.counts.conflict, plan.entities[0].changed.clone()), (1, vec!["description".to_string()]));

    let deleted: Deleted =
        serde_json::from_value(a.call("DELETE", "/tools/t", Some(&admin)).ok_json()).expect("a Deleted");
    assert_eq!((deleted.kind.as_str(), deleted.deleted, deleted.seq), ("tools", true, Some(a.head())));
}

// ---------------------------------------------------------------------------------------------------
// Render

#[test]
fn the_render_gives_secrets_only_to_admins_and_config_readers_and_records_each() {
    const BASIC: &str = "basic-render-plaintext-7f1e2d";
    let store = Store::new(&format!("BASIC_AUTH_PASSWORD={BASIC}\nMAX_WORKERS=12\nLOG_LEVEL=warn\n"));
    let admin = store.token("ada", ADMIN);
    let viewer = store.token("vic", VIEWER);
    let reader = store.token("agent-7", "config_reader");
    let server = store.serve(&[]);
    let head = server.head();

    // Any reading role renders without secrets: the gateway's file, secrets named as left out.
    let plain = server.get("/admin/config/render", &viewer);
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(plain.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(plain.header("cache-control"), Some("no-store"));
    assert_eq!(plain.header("x-cfgledger-seq"), Some(head.to_string().as_str()));
    assert!(plain.body.contains("MAX_WORKERS='12'\n") && plain.body.contains("LOG_LEVEL='warn'\n"), "{}", plain.body);
    assert!(!plain.body.contains(BASIC) && plain.body.contains("BASIC_AUTH_PASSWORD"), "{}", plain.body);
    assert_eq!(server.head(), head, "a render without secrets records nothing");

    // Secrets: 403 for a viewer (nothing recorded), the plaintext for an admin and for a config reader.
    server.get("/admin/config/render?include_secrets=true", &viewer).error(403, "forbidden");
    assert_eq!(server.head(), head);
    let secret = server.get("/admin/config/render?include_secrets=true&format=json", &reader);
    assert_eq!(secret.status, 200, "{}", secret.body);
    assert_eq!(secret.json()["BASIC_AUTH_PASSWORD"], BASIC);
    let by_admin = server.get("/admin/config/render?include_secrets=true&format=yaml", &admin);
    assert!(by_admin.body.contains(&format!("BASIC_AUTH_PASSWORD: \"{BASIC}\"\n")), "{}", by_admin.body);
    assert_eq!(server.head(), head + 2, "each render with secrets is one event");

    // The trail names who rendered which keys, never a value.
    let trail = server.get("/admin/config/audit?action=secrets_rendered", &admin).ok_json();
    let who: Vec<(&str, &str)> = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["actor"].as_str().unwrap_or(""), e["rendered"]["format"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(who, [("ada", "yaml"), ("agent-7", "json")]);
    assert_eq!(trail["entries"][0]["rendered"]["keys"], json!(["BASIC_AUTH_PASSWORD"]));
    assert!(!trail.to_string().contains(BASIC));

    // cfgledger's own secrets (its signing key) never leave, whoever asks: a reader could mint tokens.
    for token in [&reader, &admin] {
        let own = server.get("/admin/config/render?namespace=cfgledger&include_secrets=true", token);
        assert!(own.error_message(403, "forbidden").contains("cfgledger's own secrets never leave"));
    }
    let own = server.get("/admin/config/render?namespace=cfgledger&format=json", &viewer).ok_json();
    assert!(own.get("CFGLEDGER_JWT_SECRET_KEY").is_none() && own.get("CFGLEDGER_AUTH_ENCRYPTION_SECRET").is_none());

    // A config reader may call nothing else; bad input is a precise 400.
    server.get("/admin/config", &reader).error(403, "forbidden");
    server.get("/admin/config/LOG_LEVEL", &reader).error(403, "forbidden");
    server.get("/admin/config/render?format=toml", &viewer).error(400, "bad_request");
    server.get("/admin/config/render?namespace=nope", &viewer).error(400, "bad_request");
    server.get("/admin/config/render?namespace=*", &viewer).error(400, "bad_request");
    assert_eq!(server.head(), head + 2, "refused renders record nothing");
    server.assert_alive();
}
