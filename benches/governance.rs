//! What a change request costs over a direct `PUT`, through the REST API served in-process on a SQLite store
//! over the built-in catalog, measured in the same run:
//!
//! 1. the reference: `PUT /admin/config/KEY` of a key the policy asks no approval for;
//! 2. a request the policy asks no approval for: `POST /admin/requests` proposes and applies it in one batch;
//! 3. propose-to-applied with one approval: `POST /admin/requests` by one admin, then `POST .../approve` by
//!    another, which applies it (two requests, two batches);
//! 4. the direct write's refusal when the policy asks approvals (`403 approval_required`): what the policy
//!    check adds to a write that it stops.
//!
//! Every answer is checked (status and, for the requests, `applied`); timings are reported, never asserted.
//! `cargo bench --bench governance` runs 300 of each; `cargo test --benches` runs a few.

mod common;

use cfgledger::auth::{Role, TokenKeys};
use cfgledger::{Ledger, WriteContext};
use cfgledger_events::{Cause, Command};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "governance-bench-secret-0123456789abcdef-0123";
const JWT: &[u8] = b"governance-bench-signing-key-0123456789abcdef";

fn ctx() -> WriteContext {
    WriteContext { actor: common::actor(), cause: Cause::Cli { command: "bench".into() }, reason: None, bypass: false }
}

fn add_admin(ledger: &Ledger, name: &str) {
    let hash = cfgledger::auth::hash_password("bench-password-0123").expect("a password hash");
    let cmd = Command::AddUser { name: name.into(), role: "platform_admin".into(), password_hash: hash };
    ledger.execute(cmd, ctx()).expect("a bench user");
}

fn token(ledger: &Ledger, keys: &TokenKeys, name: &str) -> String {
    let now = cfgledger::auth::unix_seconds(ledger.now());
    let ver = cfgledger::auth::credential_version(&ledger.snapshot().state, name);
    keys.issue_versioned(name, Role::PlatformAdmin, ver, now, 3600).expect("a token")
}

/// One JSON request; returns the status and the body.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let answer = agent.request(method, url).set("Authorization", &format!("Bearer {token}")).send_json(body);
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    (status, response.into_json().unwrap_or(serde_json::Value::Null))
}

fn main() {
    let n = if common::full_run() { 300 } else { 5 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ledger = common::workload::open_builtin(&dir.path().join("governance.db"), SECRET);
    add_admin(&ledger, "alice");
    add_admin(&ledger, "bob");
    let keys = TokenKeys::new(JWT, "HS256").expect("keys");
    let (alice, bob) = (token(&ledger, &keys, "alice"), token(&ledger, &keys, "bob"));
    let (url, closing) = common::in_process::serve(&rt, ledger.clone(), keys, Duration::from_secs(30));
    let agent = ureq::AgentBuilder::new().redirects(0).build();

    // The policy: logging applies directly, limits need one approval. It applies at once: the empty policy
    // asks none.
    let policy = json!({"rules": [
        {"scope": "mcpgateway/logging", "approvals": 0},
        {"scope": "mcpgateway/limits", "approvals": 1}
    ]});
    let (status, answer) = send(
        &agent,
        "POST",
        &format!("{url}/admin/requests"),
        &alice,
        &json!({"changes": [{"op": "policy", "policy": policy}], "reason": "bench policy"}),
    );
    assert_eq!((status, answer["status"].as_str()), (201, Some("applied")), "{answer}");

    let mut i = 0u64;
    let mut next = || {
        i += 1;
        i
    };
    let direct = common::p50_p95_ms(n, || {
        let body = json!({"value": format!("bench-{}.log", next()), "reason": "direct"});
        let (status, answer) = send(&agent, "PUT", &format!("{url}/admin/config/LOG_FILE"), &alice, &body);
        assert_eq!(status, 200, "{answer}");
    });
    let immediate = common::p50_p95_ms(n, || {
        let body = json!({"changes": [{"op": "set", "key": "LOG_FILE", "value": format!("req-{}.log", next())}], "reason": "r"});
        let (status, answer) = send(&agent, "POST", &format!("{url}/admin/requests"), &alice, &body);
        assert_eq!((status, answer["status"].as_str()), (201, Some("applied")), "{answer}");
    });
    let approved = common::p50_p95_ms(n, || {
        let body =
            json!({"changes": [{"op": "set", "key": "MAX_PATH_DEPTH", "value": 10 + next() % 1000}], "reason": "r"});
        let (status, answer) = send(&agent, "POST", &format!("{url}/admin/requests"), &alice, &body);
        assert_eq!((status, answer["status"].as_str()), (201, Some("open")), "{answer}");
        let id = answer["id"].as_u64().expect("an id");
        let (status, answer) = send(&agent, "POST", &format!("{url}/admin/requests/{id}/approve"), &bob, &json!({}));
        assert_eq!((status, answer["status"].as_str()), (200, Some("applied")), "{answer}");
    });
    let refused = common::p50_p95_ms(n, || {
        let body = json!({"value": 10 + next() % 1000});
        let (status, answer) = send(&agent, "PUT", &format!("{url}/admin/config/MAX_PATH_DEPTH"), &alice, &body);
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("approval_required")), "{answer}");
    });
    let _ = closing.send(true);

    let requests = ledger.snapshot().state.governance().requests.len();
    println!(
        "governance: {n} of each over HTTP on SQLite (built-in catalog), {requests} requests in the store at the end"
    );
    println!("  direct PUT (reference)              p50 {:>7.3} ms  p95 {:>7.3} ms", direct.0, direct.1);
    println!(
        "  request, no approval (1 batch)      p50 {:>7.3} ms  p95 {:>7.3} ms  {:.2}x the direct PUT",
        immediate.0,
        immediate.1,
        immediate.0 / direct.0
    );
    println!(
        "  propose + 1 approval (2 batches)    p50 {:>7.3} ms  p95 {:>7.3} ms  {:.2}x the direct PUT",
        approved.0,
        approved.1,
        approved.0 / direct.0
    );
    println!(
        "  direct PUT refused by the policy    p50 {:>7.3} ms  p95 {:>7.3} ms  {:.2}x the direct PUT",
        refused.0,
        refused.1,
        refused.0 / direct.0
    );
}
