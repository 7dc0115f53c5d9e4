//! Tokens that really end (issue 17, item 2), against the real binary on real SQLite stores: a token issued
//! before a password change, a role change or the removal of its user is refused (401) by the API and the web
//! UI, and ends a watch stream opened with it; a rotated signing key's old tokens verify during the grace
//! period and are refused after it; and two servers on one store both honour a rotation and a revocation,
//! because both read them from the log.

mod api_support;
mod pg;

use api_support::{eventually, Next, Server, Store, Watch};
use serde_json::json;
use std::io::Write;
use std::process::Stdio;

const ALICE: (&str, &str) = ("alice", "first-password-1");

/// Runs `cfgledger ARGS` with `stdin` on standard input; returns (success, stdout, stderr).
fn run_with_input(store: &Store, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = store
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("the command ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn passwd(store: &Store, name: &str, password: &str) {
    let (ok, _, err) = run_with_input(store, &["user", "passwd", name], &format!("{password}\n"));
    assert!(ok, "user passwd failed: {err}");
}

fn login(server: &Server, name: &str, password: &str) -> String {
    let reply = server.send_json("POST", "/auth/login", None, &json!({"username": name, "password": password}));
    reply.ok_json()["token"].as_str().expect("a token").to_string()
}

/// The status of `GET /admin/config/LOG_LEVEL` with `token`, and the error message if refused.
fn read_with(server: &Server, token: &str) -> (u16, String) {
    let reply = server.get("/admin/config/LOG_LEVEL", token);
    let message = if reply.status == 200 { String::new() } else { reply.error_message(reply.status, "unauthorized") };
    (reply.status, message)
}

/// Waits until `token` is refused with 401 and a message holding `why`.
fn refused_eventually(server: &Server, token: &str, why: &str) {
    let mut last = (0, String::new());
    eventually(&format!("a 401 saying {why:?}"), || {
        last = read_with(server, token);
        last.0 == 401 && last.1.contains(why)
    });
}

/// Reads the stream until its `end` event, and returns the reason; change events may come first.
fn end_of(stream: &mut Watch) -> String {
    loop {
        if let Next::Named(kind, _, data) = stream.next() {
            if kind == "end" {
                return data;
            }
        }
    }
}

/// The `kid` in a token's header.
fn kid(token: &str) -> String {
    use base64::Engine;
    let head = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON header");
    header["kid"].as_str().expect("a kid").to_string()
}

fn rotate(store: &Store, grace: &str) -> String {
    store.ok(&["token", "rotate-key", "--grace", grace, "--reason", "scheduled rotation"])
}

#[test]
fn a_password_change_a_role_change_and_a_removal_each_refuse_earlier_tokens_and_end_their_streams() {
    let store = Store::new("LOG_LEVEL=info");
    store.add_user(ALICE.0, "viewer", ALICE.1);
    let server = store.serve(&["--sse-keepalive", "200ms"]);

    // A password change: the login's token, a CLI-issued token for the user and a UI session all end.
    let token = login(&server, ALICE.0, ALICE.1);
    let issued = store.token(ALICE.0, "viewer");
    let cookie = ui_login(&server, ALICE.0, ALICE.1);
    assert_eq!(read_with(&server, &token).0, 200);
    assert_eq!(read_with(&server, &issued).0, 200);
    assert_eq!(ui_status(&server, &cookie), 200);
    let mut stream = server.watch("/admin/config/watch?progress=false", &token, None);
    passwd(&store, ALICE.0, "second-password-2");
    refused_eventually(&server, &token, "password or role of user alice changed");
    refused_eventually(&server, &issued, "password or role of user alice changed");
    assert_eq!(ui_status(&server, &cookie), 401, "the web UI's session ends with it");
    assert!(end_of(&mut stream).contains("password or role of user alice changed"));
    let refused = server.send_json("POST", "/auth/login", None, &json!({"username": "alice", "password": ALICE.1}));
    refused.error(401, "unauthorized");

    // A role change: the token carrying the old role ends; a new login carries the new one.
    let token = login(&server, ALICE.0, "second-password-2");
    assert_eq!(read_with(&server, &token).0, 200);
    let mut stream = server.watch("/admin/config/watch?progress=false", &token, None);
    assert!(store.ok(&["user", "role", "alice", "--role", "auditor"]).contains("now has role auditor"));
    refused_eventually(&server, &token, "password or role of user alice changed");
    assert!(end_of(&mut stream).contains("password or role of user alice changed"));
    let token = login(&server, ALICE.0, "second-password-2");
    assert_eq!(server.get("/admin/config/audit?limit=1", &token).status, 200, "the new role reads the trail");

    // A removal: refused, and the stream says so.
    let mut stream = server.watch("/admin/config/watch?progress=false", &token, None);
    store.ok(&["user", "remove", "alice"]);
    refused_eventually(&server, &token, "user alice was removed");
    assert_eq!(end_of(&mut stream), "the user was removed");
    // Added again under the same name: the old token does not come back.
    store.add_user(ALICE.0, "auditor", "third-password-3");
    eventually("the user is back", || {
        let reply = server.send_json(
            "POST",
            "/auth/login",
            None,
            &json!({"username": "alice", "password": "third-password-3"}),
        );
        reply.status == 200
    });
    assert_eq!(read_with(&server, &token).0, 401);

    // Every change is audited, and the password hash never leaves the store.
    let admin = store.token("ada", "platform_admin");
    let trail = server.get("/admin/config/audit?action=password_changed,role_changed", &admin).ok_json();
    let actions: Vec<&str> =
        trail["entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["role_changed", "password_changed"], "{trail}");
    assert!(!trail.to_string().contains("argon2"), "{trail}");
    server.assert_alive();
}

#[test]
fn user_and_token_commands_refuse_bad_input_and_change_nothing() {
    let store = Store::new("LOG_LEVEL=info");
    store.add_user(ALICE.0, "viewer", ALICE.1);
    let head = store.log().len();
    let (ok, _, err) = run_with_input(&store, &["user", "passwd", "nobody"], "long-enough-password\n");
    assert!(!ok && err.contains("no user nobody"), "{err}");
    let (ok, _, err) = run_with_input(&store, &["user", "passwd", "alice"], "short\n");
    assert!(!ok && err.contains("at least 8 characters"), "{err}");
    let (ok, _, err) = run_with_input(&store, &["user", "role", "alice", "--role", "root"], "");
    assert!(!ok && err.contains("role expects one of"), "{err}");
    assert!(store.ok(&["user", "role", "alice", "--role", "viewer"]).contains("already has role viewer"));
    let (ok, _, err) = run_with_input(&store, &["token", "issue", "--sub", "alice", "--role", "platform_admin"], "");
    assert!(!ok && err.contains("is not the role of user alice"), "{err}");
    let (ok, _, err) = run_with_input(&store, &["token", "rotate-key", "--grace", "soon", "--reason", "r"], "");
    assert!(!ok && err.contains("--grace expects a duration"), "{err}");
    let (ok, _, err) = run_with_input(&store, &["token", "rotate-key", "--grace", "1h", "--reason", " "], "");
    assert!(!ok && err.contains("--reason"), "{err}");
    let (ok, _, err) = run_with_input(
        &store,
        &["--server", "http://127.0.0.1:9", "token", "rotate-key", "--grace", "1h", "--reason", "r"],
        "",
    );
    assert!(!ok && err.contains("--server"), "{err}");
    assert_eq!(store.log().len(), head, "nothing was appended");

    // A rotation is audited with its reason, and its key is sealed: the log shows the mask, never the key.
    let out = rotate(&store, "1h");
    assert!(out.contains("rotated the signing key to"), "{out}");
    let last = store.log().pop().expect("a record");
    assert_eq!(last["kind"], "SigningKeyRotated");
    assert_eq!(last["batch"]["reason"], "scheduled rotation");
    assert_eq!(last["payload"]["sealed_key"], "********", "{last}");
    assert_eq!(last["payload"]["grace_secs"], 3600);
}

#[test]
fn a_rotated_keys_tokens_verify_during_the_grace_and_are_refused_after_it() {
    let store = Store::new("LOG_LEVEL=info");
    let base = store.token("deploy-bot", "viewer");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    assert_eq!(read_with(&server, &base).0, 200);

    // A rotation with a long grace: new tokens name the new key, and the old ones still verify.
    rotate(&store, "1h");
    let first = store.token("deploy-bot", "viewer");
    assert_ne!(kid(&first), kid(&base), "the new key signs");
    eventually("the server applies the rotation", || read_with(&server, &first).0 == 200);
    assert_eq!(read_with(&server, &base).0, 200, "within the grace the old key verifies");

    // A second rotation with a short grace ends both earlier keys' tokens when it runs out, and the
    // streams they opened.
    let mut stream = server.watch("/admin/config/watch?progress=false", &base, None);
    let mut first_stream = server.watch("/admin/config/watch?progress=false", &first, None);
    rotate(&store, "2s");
    let second = store.token("deploy-bot", "viewer");
    refused_eventually(&server, &base, "retired by a key rotation");
    refused_eventually(&server, &first, "retired by a key rotation");
    assert_eq!(end_of(&mut stream), "the token's signing key was retired by a key rotation");
    assert_eq!(end_of(&mut first_stream), "the token's signing key was retired by a key rotation");
    assert_eq!(read_with(&server, &second).0, 200);

    // A rotation without grace ends the previous key's tokens at once.
    let mut stream = server.watch("/admin/config/watch?progress=false", &second, None);
    rotate(&store, "0s");
    refused_eventually(&server, &second, "retired by a key rotation");
    assert_eq!(end_of(&mut stream), "the token's signing key was retired by a key rotation");
    let third = store.token("deploy-bot", "viewer");
    assert_eq!(read_with(&server, &third).0, 200);

    // A restarted server reads the ring from the log: the newest key signs its logins and verifies.
    drop(server);
    store.add_user("bob", "viewer", "bob-password-1");
    let server = store.serve(&[]);
    let token = login(&server, "bob", "bob-password-1");
    assert_eq!(kid(&token), kid(&third));
    assert_eq!(read_with(&server, &third).0, 200);
    assert_eq!(read_with(&server, &base).0, 401);
}

#[test]
fn two_servers_on_one_sqlite_store_both_honour_a_rotation_and_a_revocation() {
    two_servers_on_one_store_both_honour_a_rotation_and_a_revocation(&Store::new("LOG_LEVEL=info"));
}

#[test]
fn two_servers_on_one_postgresql_store_both_honour_a_rotation_and_a_revocation() {
    let db = pg::TestDb::new();
    two_servers_on_one_store_both_honour_a_rotation_and_a_revocation(&Store::on_db("LOG_LEVEL=info", &db.url()));
}

fn two_servers_on_one_store_both_honour_a_rotation_and_a_revocation(store: &Store) {
    store.add_user(ALICE.0, "viewer", ALICE.1);
    let one = store.serve(&["--sse-keepalive", "200ms"]);
    let two = store.serve(&["--sse-keepalive", "200ms"]);

    // A token from one server's login is valid on the other; a password change ends it on both.
    let token = login(&one, ALICE.0, ALICE.1);
    assert_eq!(read_with(&two, &token).0, 200);
    let mut stream = two.watch("/admin/config/watch?progress=false", &token, None);
    passwd(store, ALICE.0, "second-password-2");
    for server in [&one, &two] {
        refused_eventually(server, &token, "password or role of user alice changed");
    }
    assert!(end_of(&mut stream).contains("password or role of user alice changed"));

    // A rotation: both servers verify the new key's tokens, sign their logins with it, and refuse the old
    // key's tokens once its grace (none) is over.
    let old = store.token("deploy-bot", "viewer");
    assert_eq!(read_with(&one, &old).0, 200);
    rotate(store, "0s");
    let new = store.token("deploy-bot", "viewer");
    for server in [&one, &two] {
        eventually("the server applies the rotation", || read_with(server, &new).0 == 200);
        refused_eventually(server, &old, "retired by a key rotation");
        assert_eq!(kid(&login(server, ALICE.0, "second-password-2")), kid(&new));
    }

    // A web UI logout on one server ends the session on the other too, as a cookie, as a bearer token and
    // as the stream it opened; the log holds the token's hash, never the token.
    let cookie = ui_login(&one, ALICE.0, "second-password-2");
    let token = cookie.split_once('=').expect("name=value").1.to_string();
    assert_eq!(ui_status(&two, &cookie), 200);
    let mut stream = two.watch("/admin/config/watch?progress=false", &token, None);
    ui_logout(&one, &cookie);
    refused_eventually(&two, &token, "logged out");
    assert_eq!(ui_status(&two, &cookie), 401);
    assert_eq!(end_of(&mut stream), "the session was logged out");
    let last = store.log().pop().expect("a record");
    assert_eq!((last["kind"].as_str(), last["actor"]["name"].as_str()), (Some("TokenRevoked"), Some("alice")));
    let hash = last["payload"]["token_hash"].as_str().expect("a hash");
    assert_eq!(hash.len(), 64);
    assert!(!store.log().iter().any(|r| r.to_string().contains(&token)), "the token itself is never in the log");
    one.assert_alive();
    two.assert_alive();
}

/// Logs out of the web UI with the CSRF token its pages embed.
fn ui_logout(server: &Server, cookie: &str) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let page = agent.get(&format!("{}/ui/settings", server.url)).set("Cookie", cookie).call().expect("the page");
    let html = page.into_string().expect("the page's text");
    let csrf = html.split("name=\"csrf-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("csrf");
    let out = agent.post(&format!("{}/ui/logout", server.url)).set("Cookie", cookie).send_form(&[("csrf", csrf)]);
    assert_eq!(out.map(|r| r.status()).unwrap_or(0), 303);
}

/// Logs in through the web UI's form; returns the session cookie (`name=value`).
fn ui_login(server: &Server, name: &str, password: &str) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let answer = agent
        .post(&format!("{}/ui/login", server.url))
        .send_form(&[("username", name), ("password", password), ("next", "/ui/settings")])
        .expect("a login answer");
    assert_eq!(answer.status(), 303);
    answer.header("set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_string()
}

/// The status of a REST read authenticated by the web UI's session cookie.
fn ui_status(server: &Server, cookie: &str) -> u16 {
    match ureq::get(&format!("{}/admin/config/LOG_LEVEL", server.url)).set("Cookie", cookie).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("no answer: {e}"),
    }
}
