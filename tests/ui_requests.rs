//! Browser tests of the change-request pages of the web UI (issue 18, part 1): alice proposes through the
//! form (rows added and removed, a reason required, the API's 422 shown), her own approval is refused with
//! the API's message, bob approves in his session and the page shows the request applied; bob's second
//! request (two approvals, a secret shown masked, an apply time sent as UTC) shows alice counted once (409)
//! and her rejection; the policy page; the audit trail linking the change to its request and approvers, and
//! the emergency bypass as a loud row; a stale request flagged; a viewer offered no control. Every page is
//! screenshotted and checked by axe-core (`check_page`).

mod api_support;
mod browser_support;

use api_support::{four_eyes_policy, install_policy, Server, Store};
use browser_support::Browser;
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("alice", "alice-password-123");
const BOB: (&str, &str) = ("bob", "bob-password-123");
const VIC: (&str, &str) = ("vic", "vic-password-123");
/// A secret proposed through the form: no page may ever show it.
const SECRET: &str = "webhook-plaintext-7c2e4a-never-shown";

fn value_of(server: &Server, token: &str, key: &str) -> Value {
    server.get(&format!("/admin/config/{key}"), token).ok_json()["value"].clone()
}

fn switch_user(b: &Browser, (user, password): (&str, &str)) {
    b.click("form[action='/ui/logout'] button");
    b.wait("#username");
    b.login(user, password);
}

/// Proposes the form's rows: `rows` as (key, value), the reason, and an apply time typed into the
/// datetime-local field (the browser's zone). Returns the new request's id, from the result's link.
fn propose(b: &Browser, rows: &[(&str, &str)], apply_at: Option<&str>, reason: &str) -> u64 {
    b.goto("/ui/requests");
    b.wait("#propose-form");
    for (i, (key, value)) in rows.iter().enumerate() {
        if i > 0 {
            b.click("#propose-add");
        }
        let n = b.count("#propose-rows .change-row");
        b.fill(&format!("#propose-rows .change-row:nth-child({n}) .change-key"), key);
        b.fill(&format!("#propose-rows .change-row:nth-child({n}) .change-value"), value);
    }
    if let Some(at) = apply_at {
        b.js("document.getElementById('propose-apply-at').value = arguments[0]; return 1", vec![json!(at)]);
    }
    b.fill("#propose-reason", reason);
    b.click("#propose-submit");
    b.wait("#propose-result a#propose-link");
    let href = b.attr("#propose-link", "href").expect("the link to the new request");
    href.rsplit('/').next().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no id in {href}"))
}

#[test]
fn a_change_request_is_proposed_refused_to_its_author_approved_and_audited() {
    let store = Store::new("");
    store.add_user(ALICE.0, "platform_admin", ALICE.1);
    store.add_user(BOB.0, "platform_admin", BOB.1);
    store.add_user(VIC.0, "viewer", VIC.1);
    let alice = store.token("alice", "platform_admin");
    let server = store.serve(&[]);
    install_policy(&server, &alice, &four_eyes_policy("alice"));

    let b = Browser::start(&server.url, "ui_requests");
    b.login(ALICE.0, ALICE.1);
    b.click("header.top nav a[href='/ui/requests']");
    b.wait("#propose-form");
    b.wait_text("#requests-count", "1 request");
    b.check_page("requests-list-policy-only");

    // The form refuses what the API would, before sending: no reason, a value without a key.
    b.fill("#propose-rows .change-row:nth-child(1) .change-key", "mcpgateway:MAX_WORKERS");
    b.fill("#propose-rows .change-row:nth-child(1) .change-value", "8");
    b.click("#propose-submit");
    b.wait_text("#propose-error", "needs a reason");
    // A row added then removed sends nothing.
    b.click("#propose-add");
    assert_eq!(b.count("#propose-rows .change-row"), 2);
    b.fill("#propose-rows .change-row:nth-child(2) .change-key", "mcpgateway:NOT_A_KEY");
    b.click("#propose-rows .change-row:nth-child(2) .remove-row");
    assert_eq!(b.count("#propose-rows .change-row"), 1);
    // The API's own refusal is shown: a value that does not validate (422).
    b.fill("#propose-rows .change-row:nth-child(1) .change-value", "many");
    b.fill("#propose-reason", "more workers for the launch");
    b.click("#propose-submit");
    b.wait_text("#propose-error", "Not proposed:");
    assert!(b.text("#propose-error").contains("MAX_WORKERS"), "{}", b.text("#propose-error"));
    b.check_page("requests-propose-refused");
    let before = server.get("/admin/requests", &alice).ok_json()["requests"].as_array().map(Vec::len);
    assert_eq!(before, Some(1), "a refused proposal appends nothing");

    // alice proposes a change that needs one approval.
    let id = propose(&b, &[("mcpgateway:MAX_WORKERS", "8")], None, "more workers for the launch");
    assert!(b.text("#propose-result").contains("open; it needs 1 approval"), "{}", b.text("#propose-result"));
    // The list shows it at once, before any reload.
    assert_eq!(b.attr("#requests tbody tr:first-child", "data-id"), Some(id.to_string()));
    assert_eq!(b.text("#requests-count"), "2 requests, newest first.");
    b.check_page("requests-proposed");
    let r = server.get(&format!("/admin/requests/{id}"), &alice).ok_json();
    assert_eq!((r["status"].as_str(), r["author"].as_str()), (Some("open"), Some("alice")), "{r}");
    assert_eq!(r["reason"], "more workers for the launch");

    // The list shows it, newest first, with its approvals.
    b.goto("/ui/requests");
    let first = b.attr("#requests tbody tr:first-child", "data-id");
    assert_eq!(first, Some(id.to_string()), "newest first");
    assert_eq!(b.text(&format!("#requests tr[data-id='{id}'] td.approvals")), "0 of 1");
    assert_eq!(b.text(&format!("#requests tr[data-id='{id}'] td.author")), "alice");
    b.select("#r-status", "applied");
    b.wait_text("#requests-count", "1 request");
    assert!(!b.exists(&format!("#requests tr[data-id='{id}']")), "the status filter applies");
    b.goto("/ui/requests");
    b.click(&format!("#requests tr[data-id='{id}'] a"));

    // Its author's approval is refused, with the API's message, in the page and in the live region.
    b.wait("#review-approve");
    b.check_page("request-open");
    b.click("#review-approve");
    b.wait_text("#review-error", "wrote change request");
    assert!(b.text("#review-error").contains("cannot approve it"), "{}", b.text("#review-error"));
    b.wait_text("#live-status", "cannot approve it");
    b.check_page("request-self-approval-refused");
    assert_eq!(value_of(&server, &alice, "MAX_WORKERS"), json!(4), "nothing applied");

    // bob approves in his own session: the request applies, and the page says so after its reload.
    switch_user(&b, BOB);
    b.goto(&format!("/ui/requests/{id}"));
    b.fill("#review-comment", "ok for the launch");
    b.click("#review-approve");
    b.wait("#request-applied");
    assert_eq!(b.attr("#request", "data-status").as_deref(), Some("applied"));
    b.wait_text("#live-status", "it is applied now");
    assert!(b.text("#request-approvals").contains("ok for the launch"), "{}", b.text("#request-approvals"));
    assert!(!b.exists("#review-form"), "an applied request offers no review");
    assert_eq!(b.text("#request-changes td.change"), "8", "an applied request shows the value it applied");
    b.check_page("request-applied");
    assert_eq!(value_of(&server, &alice, "MAX_WORKERS"), json!(8));
    let batch = server.get(&format!("/admin/requests/{id}"), &alice).ok_json()["applied"]["batch"]
        .as_str()
        .expect("the applied batch")
        .to_string();
    assert!(b.exists(&format!("#request-applied a[href='/ui/audit?batch={batch}']")), "the batch links to the audit");

    // A request needing two approvals, with a secret and an apply time (sent as UTC).
    let local = "2031-03-04T05:06";
    let id2 = propose(
        &b,
        &[("mcpgateway:MAX_TOOL_TIMEOUT", "90s"), ("mcpgateway:WEBHOOK_SECRET", SECRET)],
        Some(local),
        "longer tool calls",
    );
    let expected_utc =
        b.js("return new Date(arguments[0]).toISOString().replace(/\\.\\d{3}Z$/, 'Z')", vec![json!(local)]);
    let r2 = server.get(&format!("/admin/requests/{id2}"), &alice).ok_json();
    assert_eq!((r2["author"].as_str(), r2["required_approvals"].as_u64()), (Some("bob"), Some(2)), "{r2}");
    // The API writes times with microseconds; the form sends whole seconds.
    let expected_utc = expected_utc.as_str().expect("a time").replace('Z', ".000000Z");
    assert_eq!(r2["apply_at"].as_str(), Some(expected_utc.as_str()), "{r2}");
    b.click("#propose-link");
    b.wait("#request-changes");
    assert!(!b.source().contains(SECRET), "the secret is on the page");
    assert!(b.text("#request-changes tr[data-subject='mcpgateway:WEBHOOK_SECRET']").contains("********"));
    assert!(b.exists("#review-withdraw"), "its author may withdraw it");

    // alice approves once: 1 of 2; twice is refused (409, counted once); then she rejects it.
    switch_user(&b, ALICE);
    b.goto(&format!("/ui/requests/{id2}"));
    b.click("#review-approve");
    b.wait_text("#request .approvals", "1 of 2");
    b.click("#review-approve");
    b.wait_text("#review-error", "counts once");
    assert!(!b.exists("#review-withdraw"), "only its author may withdraw it");
    b.fill("#review-comment", "not this week");
    b.click("#review-reject");
    b.wait_text("#request-closed", "not this week");
    assert_eq!(b.attr("#request", "data-status").as_deref(), Some("rejected"));
    b.check_page("request-rejected");

    // The policy, read-only.
    b.goto("/ui/policy");
    b.wait("#policy-rules");
    assert_eq!(b.text("#policy-rules tr[data-scope='mcpgateway/limits'] td"), "2");
    assert!(b.text("#policy-bypass").contains("alice"));
    assert!(b.text("#policy-approvals").contains("needs 2 approvals"), "{}", b.text("#policy-approvals"));
    b.check_page("policy");

    // The audit trail: the change applied through the request names it, its author and approver; the
    // request's own events are listed too, and can be filtered by their action.
    b.goto(&format!("/ui/audit?batch={batch}"));
    b.wait("#audit");
    let set_row = "#audit tr[data-action='set']";
    assert!(b.exists(&format!("{set_row} a[href='/ui/requests/{id}']")), "{}", b.text("#audit"));
    assert!(b.text(set_row).contains("(alice, approved by bob)"), "{}", b.text(set_row));
    let applied_row = "#audit tr[data-action='request_applied']";
    assert!(b.text(applied_row).contains("approved by bob"), "{}", b.text(applied_row));
    assert!(b.exists(&format!("{applied_row} td.subject a[href='/ui/requests/{id}']")));
    b.check_page("audit-request-batch");
    b.goto("/ui/audit?action=request_proposed");
    b.wait("#audit");
    assert_eq!(b.count("#audit tr[data-action='request_proposed']"), 3, "{}", b.text("#audit"));
    assert!(b.exists(&format!("#audit a[href='/ui/requests/{id2}']")));

    // bob proposes a limit through the API; the emergency bypass then changes it under his request. The
    // bypass is recorded loudly: alice (named in the policy) changes the limit directly.
    let bob = store.token("bob", "platform_admin");
    let reply = server.send_json(
        "POST",
        "/admin/requests",
        Some(&bob),
        &json!({"changes": [{"op": "set", "key": "MAX_TOOL_TIMEOUT", "text": "5m"}], "reason": "slow upstream"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id4 = reply.json()["id"].as_u64().expect("an id");
    let reply = server
        .request("PUT", "/admin/config/MAX_TOOL_TIMEOUT", Some(&alice))
        .set("X-Emergency-Bypass", "true")
        .send_json(json!({"value": "2m", "reason": "incident 42"}))
        .expect("alice's bypass applies");
    assert_eq!(reply.status(), 200);
    b.goto("/ui/audit");
    b.wait("#audit tr.bypass");
    assert!(b.text("#audit tr.bypass").contains("Emergency bypass"), "{}", b.text("#audit tr.bypass"));
    b.check_page("audit-bypass");

    // bob's request is stale now: flagged in the list, its conflict highlighted on its page.
    b.goto("/ui/requests");
    b.wait(&format!("#requests tr.stale[data-id='{id4}'] .badge.stale"));
    b.click(&format!("#requests tr[data-id='{id4}'] a"));
    b.wait_text("#request-conflicts", "Changed since its base");
    assert!(b.text("#request-conflicts").contains("MAX_TOOL_TIMEOUT"), "{}", b.text("#request-conflicts"));
    assert!(b.exists("#request-changes tr.conflict[data-subject='mcpgateway:MAX_TOOL_TIMEOUT']"));
    b.check_page("request-stale");

    // A viewer reads the requests and the policy, and is offered no control.
    switch_user(&b, VIC);
    b.goto("/ui/requests");
    b.wait(&format!("#requests tr[data-id='{id4}']"));
    assert!(!b.exists("#propose-form"), "a viewer cannot propose");
    b.goto(&format!("/ui/requests/{id4}"));
    b.wait("#request-changes");
    assert!(!b.exists("#review-form"), "a viewer cannot review");
    let (status, _) = b.request(
        "POST",
        &format!("/admin/requests/{id4}/approve"),
        Some("{}"),
        json!({"Content-Type": "application/json", "X-CSRF-Token": b.attr("meta[name='csrf-token']", "content")}),
    );
    assert_eq!(status, 403, "the API refuses a viewer's approval anyway");
    b.check_page("request-viewer");
}
