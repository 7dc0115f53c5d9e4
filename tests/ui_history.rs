//! The audit, time-travel and rollback pages of the web UI in a real browser (chromium through the
//! browser harness): an audit row's JSON diff that shows only the changed path, filters that narrow the
//! trail, the CSV download, a rollback previewed then applied, a revert that a later change blocks until it
//! is forced with an explicit confirmation, a key's and an entity's history, the store as of a point, the
//! diff between two points, and roles that see no control they cannot use. Every page is screenshot at
//! 1280 and 390 px and checked by axe-core (`check_page`).

mod api_support;
mod browser_support;

use api_support::{eventually, Server, Store};
use browser_support::Browser;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "ada-password-123";

/// A store with an admin (ada), an auditor (aud) and a viewer (vic), served.
fn served() -> (Store, Server, String) {
    let store = Store::new("LOG_LEVEL=info");
    store.add_user("ada", "platform_admin", ADMIN_PASSWORD);
    store.add_user("aud", "auditor", "aud-password-123");
    store.add_user("vic", "viewer", "vic-password-123");
    let token = store.token("ada", "platform_admin");
    let server = store.serve(&[]);
    (store, server, token)
}

/// A change made by another client (an API token of `actor`), with a reason; its seq.
fn set(server: &Server, token: &str, key: &str, value: Value, reason: &str) -> u64 {
    let reply = server.send_json(
        "PUT",
        &format!("/admin/config/{key}"),
        Some(token),
        &json!({ "value": value, "reason": reason }),
    );
    assert_eq!(reply.status, 200, "set {key}: {}", reply.body);
    server.head()
}

fn value_of(server: &Server, token: &str, key: &str) -> Value {
    server.get(&format!("/admin/config/{key}"), token).ok_json()["value"].clone()
}

/// The batch of the newest audit entry of `key`, through the API.
fn last_batch(server: &Server, token: &str, key: &str) -> String {
    let page = server.get(&format!("/admin/config/audit?key={key}&limit=1"), token).ok_json();
    page["entries"][0]["batch"].as_str().expect("an entry with a batch").to_string()
}

#[test]
fn the_audit_shows_only_the_changed_json_path_and_its_filters_narrow_the_trail() {
    let (store, server, _admin) = served();
    let bob = store.token("bob", "platform_admin");
    let carol = store.token("carol", "platform_admin");
    let first = json!([{"name": "siem", "url": "http://a.example", "level": "info"}, {"name": "backup"}]);
    let second = json!([{"name": "siem", "url": "http://z.example", "level": "info"}, {"name": "backup"}]);
    set(&server, &bob, "SIEM_DESTINATIONS", first, "add the SIEM");
    let seq = set(&server, &bob, "SIEM_DESTINATIONS", second, "move the SIEM");
    set(&server, &carol, "LOG_LEVEL", json!("debug"), "debugging");
    // A locked key refuses the change, and the refusal is audited.
    let refused = server.send_json(
        "PUT",
        "/admin/config/SSO_KEYCLOAK_ROLE_MAPPINGS",
        Some(&carol),
        &json!({"value": {"admins": "platform_admin"}}),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    let b = Browser::start(&server.url, "audit_diff_and_filters");
    b.login("ada", ADMIN_PASSWORD);
    b.goto("/ui/audit");
    b.wait("table#audit");
    b.check_page("audit");

    // The second change of the JSON list: one path, old and new, nothing that stayed.
    let row = format!("tr[data-seq=\"{seq}\"]");
    let diff = b.text(&format!("{row} ul.jsondiff"));
    assert!(diff.contains("$[0].url"), "{diff}");
    assert!(diff.contains("http://a.example") && diff.contains("http://z.example"), "{diff}");
    assert!(!diff.contains("backup") && !diff.contains("level"), "only what changed is shown: {diff}");
    assert!(b.text(&row).contains("move the SIEM"), "the reason is shown");
    assert!(b.exists(&format!("{row} a[href^=\"/ui/rollback?revert=\"]")), "an admin may revert the batch");

    // Filter by actor: only carol's entries.
    b.fill("#a-actor", "carol");
    b.click("form.filters button[type=submit]");
    b.wait("p.count");
    eventually("the actor filter applied", || {
        b.js("return location.search", vec![]).to_string().contains("actor=carol")
    });
    let actors: Vec<String> = serde_json::from_value(
        b.js("return Array.from(document.querySelectorAll('#audit td.who .actor')).map(e => e.textContent)", vec![]),
    )
    .unwrap_or_default();
    assert!(!actors.is_empty() && actors.iter().all(|a| a == "carol"), "{actors:?}");

    // "Rejected only" (audit.js submits on change): the locked key's refusal alone.
    b.click("#a-rejected");
    eventually("the rejected filter applied", || {
        b.js("return location.search", vec![]).to_string().contains("rejected=1")
    });
    b.wait("table#audit");
    assert_eq!(b.count("#audit tbody tr"), 1);
    assert_eq!(b.count("#audit tbody tr[data-action=\"rejected\"]"), 1);
    assert!(b.text("#audit").contains("SSO_KEYCLOAK_ROLE_MAPPINGS"));
    b.check_page("audit-rejected");

    // The CSV download is the API's answer for the same filter.
    b.goto("/ui/audit?key=SIEM_DESTINATIONS");
    let href = b.attr("a[download=\"audit.csv\"]", "href").expect("a CSV link");
    assert!(href.contains("format=csv") && href.contains("key=SIEM_DESTINATIONS"), "{href}");
    let (status, csv) = b.fetch(&href);
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,time,action,key,previous,value,actor"), "{csv}");
    assert_eq!(lines.len(), 3, "a header and the two changes: {csv}");
    assert!(lines[1].starts_with(&format!("{seq},")) && lines[1].contains("move the SIEM"), "{csv}");
    let (status, jsonl) = b.fetch(&b.attr("a[download=\"audit.jsonl\"]", "href").expect("a JSON lines link"));
    assert_eq!(status, 200);
    assert_eq!(jsonl.lines().count(), 2, "{jsonl}");

    // The newest page says when the log moves on, without a reload.
    b.goto("/ui/audit");
    b.wait("table#audit");
    set(&server, &carol, "LOG_LEVEL", json!("warn"), "elsewhere");
    b.wait_text("#audit-new", "1 new change");
    b.click("#audit-new a");
    b.wait_text("#audit tbody tr:first-child", "elsewhere");

    // A bad filter says what is wrong beside the form.
    b.goto("/ui/audit?since=yesterday");
    assert!(b.text("p.error[role=alert]").contains("yesterday"));
    b.check_page("audit-bad-filter");
}

#[test]
fn a_rollback_is_previewed_then_applied_with_a_reason() {
    let (_store, server, admin) = served();
    let good = set(&server, &admin, "LOG_LEVEL", json!("debug"), "good");
    set(&server, &admin, "LOG_LEVEL", json!("error"), "bad deploy");
    set(&server, &admin, "MAX_WORKERS", json!(12), "unrelated");

    let b = Browser::start(&server.url, "rollback_preview_apply");
    b.login("ada", ADMIN_PASSWORD);
    // Before a point is chosen, the page offers the newest changes as points.
    b.goto("/ui/rollback");
    b.wait("#recent");
    assert!(b.text("#recent").contains("MAX_WORKERS") && b.text("#recent").contains("bad deploy"));
    assert!(b.exists(&format!("#recent a[href=\"/ui/rollback?to=seq:{}\"]", good)), "before the bad deploy");
    b.check_page("rollback-start");
    // From the audit row of the good change.
    b.goto("/ui/audit?key=LOG_LEVEL");
    b.click(&format!("tr[data-seq=\"{good}\"] a[href=\"/ui/rollback?to=seq:{good}\"]"));
    b.wait("#apply");
    b.check_page("rollback-preview");
    // Everything changed since: LOG_LEVEL back to debug, MAX_WORKERS reset.
    assert!(b.text("section.plan-group.set").contains("LOG_LEVEL"));
    assert!(b.text("section.plan-group.set tr[data-subject=\"LOG_LEVEL\"]").contains("error"));
    assert!(b.text("section.plan-group.reset").contains("MAX_WORKERS"));

    // Only LOG_LEVEL: uncheck MAX_WORKERS in the narrowing form.
    b.click("details.narrow summary");
    b.click("details.narrow input[value=\"MAX_WORKERS\"]");
    b.click("details.narrow button[type=submit]");
    b.wait_js(
        "the narrowed preview",
        "return location.search.includes('key=LOG_LEVEL') && document.readyState === 'complete'",
    );
    b.wait("#apply");
    assert!(!b.exists("section.plan-group.reset"), "MAX_WORKERS is left out");
    assert_eq!(b.attr("#apply", "data-keys").as_deref(), Some("[\"LOG_LEVEL\"]"));

    // No reason: refused in the page, nothing sent.
    b.click("#apply-btn");
    b.wait_text("#apply-error", "reason");
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), json!("error"));

    b.fill("#reason", "undo the bad deploy");
    b.click("#apply-btn");
    b.wait_text("#apply-result", "applied");
    b.check_page("rollback-applied");
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), json!("debug"));
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), json!(12), "left out of the rollback");
    let page = server.get("/admin/config/audit?key=LOG_LEVEL&limit=1", &admin).ok_json();
    assert_eq!(page["entries"][0]["reason"], json!("undo the bad deploy"), "{page}");
    // The audit names the rollback the change was part of.
    b.goto("/ui/audit?key=LOG_LEVEL");
    let newest = b.text("#audit tbody tr:first-child td.change");
    assert!(
        newest.contains(&format!("Part of a rollback to seq {good}")) && newest.contains("undo the bad deploy"),
        "{newest}"
    );
}

#[test]
fn a_rollback_whose_head_moved_since_the_preview_is_refused() {
    let (_store, server, admin) = served();
    let point = set(&server, &admin, "LOG_LEVEL", json!("debug"), "good");
    set(&server, &admin, "LOG_LEVEL", json!("error"), "bad");
    let b = Browser::start(&server.url, "rollback_head_moved");
    b.login("ada", ADMIN_PASSWORD);
    // A point that does not parse: the API's message beside the form, no plan.
    b.goto("/ui/rollback?to=banana");
    assert!(b.text("p.error[role=alert]").contains("banana"));
    assert!(!b.exists("#apply"));
    b.check_page("rollback-bad-point");
    b.goto(&format!("/ui/rollback?to=seq:{point}"));
    b.wait("#apply");
    set(&server, &admin, "LOG_LEVEL", json!("warn"), "meanwhile");
    b.fill("#reason", "undo");
    b.click("#apply-btn");
    b.wait_text("#apply-error", "preview again");
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), json!("warn"), "nothing applied");
}

#[test]
fn a_revert_blocked_by_a_later_change_needs_a_confirmed_force() {
    let (store, server, admin) = served();
    set(&server, &admin, "MAX_WORKERS", json!(8), "more workers");
    let batch = last_batch(&server, &admin, "MAX_WORKERS");

    let b = Browser::start(&server.url, "revert_conflict");
    b.login("ada", ADMIN_PASSWORD);
    // From the audit row's control.
    b.goto("/ui/audit?key=MAX_WORKERS");
    b.click(&format!("a[href=\"/ui/rollback?revert={batch}\"]"));
    b.wait("#apply");
    b.check_page("revert-preview");
    assert!(b.text("section.plan-group.reset").contains("MAX_WORKERS"));
    assert!(b.js("return document.getElementById('force-panel').hidden", vec![]) == json!(true));

    // Another client changes the key after the preview: the revert is refused with 409.
    let other = store.token("carol", "platform_admin");
    let later = set(&server, &other, "MAX_WORKERS", json!(9), "even more");
    b.fill("#reason", "undo the worker change");
    b.click("#apply-btn");
    b.wait_text("#apply-error", "later changes");
    eventually("the later changes shown", || {
        b.js("return document.getElementById('force-panel').hidden", vec![]) == json!(false)
    });
    let table = b.text("#later");
    assert!(table.contains("MAX_WORKERS") && table.contains(&later.to_string()) && table.contains("carol"), "{table}");
    assert!(b.text("#confirm-label").contains("1 later change"));
    assert!(!b.displayed("#apply-btn"), "the unforced revert is gone once it was refused");
    b.check_page("revert-conflict");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), json!(9), "nothing reverted yet");

    // Force needs the confirmation first.
    assert!(b.attr("#force-btn", "disabled").is_some(), "Force revert is disabled until confirmed");
    b.click("#confirm-force");
    assert!(b.attr("#force-btn", "disabled").is_none());
    b.click("#force-btn");
    b.wait_text("#apply-result", "Forced revert applied");
    b.check_page("revert-forced");
    assert_eq!(value_of(&server, &admin, "MAX_WORKERS"), json!(4), "back to the default");
    let page = server.get("/admin/config/audit?key=MAX_WORKERS&limit=1", &admin).ok_json();
    assert_eq!(page["entries"][0]["action"], json!("reset"), "{page}");
    assert_eq!(page["entries"][0]["reason"], json!("undo the worker change"), "{page}");
}

#[test]
fn a_revert_already_blocked_shows_its_later_changes_before_anyone_tries() {
    let (store, server, admin) = served();
    set(&server, &admin, "LOG_LEVEL", json!("debug"), "first");
    let batch = last_batch(&server, &admin, "LOG_LEVEL");
    set(&server, &store.token("carol", "platform_admin"), "LOG_LEVEL", json!("warn"), "second");
    let b = Browser::start(&server.url, "revert_blocked");
    b.login("ada", ADMIN_PASSWORD);
    b.goto(&format!("/ui/rollback?revert={}", &batch[batch.len() - 8..]));
    b.wait("#force-panel");
    assert!(b.js("return document.getElementById('force-panel').hidden", vec![]) == json!(false));
    assert!(b.js("return document.getElementById('plain').hidden", vec![]) == json!(true));
    assert!(b.text("#later").contains("carol"));
    b.check_page("revert-blocked");
    b.fill("#reason", "back");
    b.click("#confirm-force");
    b.click("#force-btn");
    b.wait_text("#apply-result", "applied");
    assert_eq!(value_of(&server, &admin, "LOG_LEVEL"), json!("info"), "the .env's value again");
}

#[test]
fn history_as_of_and_the_diff_between_two_points() {
    let (_store, server, admin) = served();
    let first = json!({"retries": 3, "targets": {"a": "http://a", "b": "http://b"}});
    let second = json!({"retries": 3, "targets": {"a": "http://a", "b": "http://b2"}});
    let p1 = set(&server, &admin, "SIEM_DESTINATIONS", first, "one");
    let p2 = set(&server, &admin, "SIEM_DESTINATIONS", second, "two");
    let created = server.send_json(
        "POST",
        "/tools",
        Some(&admin),
        &json!({"name": "search", "url": "http://x/search", "description": "find", "tags": ["a"]}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let patched = server.send_json("PATCH", "/tools/search", Some(&admin), &json!({"description": "find things"}));
    assert_eq!(patched.status, 200, "{}", patched.body);

    let b = Browser::start(&server.url, "history_asof_diff");
    b.login("ada", ADMIN_PASSWORD);

    // The settings page links to a key's history.
    b.goto("/ui/settings?q=SIEM_DESTINATIONS");
    b.click("a[href=\"/ui/timetravel?key=mcpgateway:SIEM_DESTINATIONS\"]");
    b.wait("#history-table");
    b.check_page("history-key");
    let newest = b.text(&format!("#history-table tr[data-seq=\"{p2}\"] td.change"));
    assert!(newest.contains("$.targets.b") && newest.contains("http://b2"), "{newest}");
    assert!(!newest.contains("retries"), "only the changed path: {newest}");
    assert!(b.exists(&format!("a[href=\"/ui/rollback?to=seq:{p2}&keys=mcpgateway%3ASIEM_DESTINATIONS\"]")));

    // An entity's history: each version compared with the one before.
    b.goto("/ui/timetravel?key=tools/search");
    b.wait("#history-table");
    let update = b.text("#history-table tbody tr:first-child td.change");
    assert!(update.contains("$.description") && update.contains("find things"), "{update}");
    assert!(!update.contains("http://x/search"), "{update}");
    b.check_page("history-entity");
    // The audit row of the update says what it changed too.
    b.goto("/ui/audit?key=tools/search");
    let row = b.text("#audit tr[data-action=\"resource_updated\"] td.change");
    assert!(row.contains("$.description") && row.contains("find things") && !row.contains("http://x"), "{row}");

    // The store as of the first change: the value then, and no tool yet.
    b.goto(&format!("/ui/timetravel?as_of=seq:{p1}"));
    b.wait("#asof-settings");
    assert!(b.text("#asof-settings tr[data-key=\"mcpgateway:SIEM_DESTINATIONS\"]").contains("http://b\""));
    assert!(b.text("#asof").contains("held no entity"));
    b.check_page("as-of");

    // The diff from the first change to now: the changed path, and the tool added.
    b.goto(&format!("/ui/timetravel?from=seq:{p1}"));
    b.wait("#diff-changed");
    let changed = b.text("#diff tr[data-key=\"SIEM_DESTINATIONS\"]");
    assert!(changed.contains("$.targets.b") && !changed.contains("retries"), "{changed}");
    assert!(b.text("#diff").contains("tools/search"));
    b.check_page("diff");

    // Rolling back to before the tool existed deletes it; its update is an entity's field diff.
    b.goto(&format!("/ui/rollback?to=seq:{p2}"));
    b.wait("#apply");
    assert!(b.text("section.plan-group.delete").contains("tools/search"));
    b.goto(&format!("/ui/rollback?to=seq:{}&keys=tools/search", p2 + 1));
    b.wait("#apply");
    let update = b.text("section.plan-group.update");
    assert!(
        update.contains("$.description") && update.contains("find things") && !update.contains("http://x"),
        "{update}"
    );
    b.check_page("rollback-entity");
}

#[test]
fn a_viewer_and_an_auditor_see_no_control_they_cannot_use() {
    let (_store, server, admin) = served();
    set(&server, &admin, "LOG_LEVEL", json!("debug"), "a change");

    let viewer = Browser::start(&server.url, "history_viewer");
    viewer.login("vic", "vic-password-123");
    viewer.goto("/ui/audit");
    assert!(viewer.text("main").contains("auditor"), "the 403 page says which role it needs");
    assert!(!viewer.exists("table#audit"));
    viewer.check_page("audit-viewer-refused");
    viewer.goto("/ui/rollback?to=seq:1");
    assert!(viewer.text("main").contains("platform_admin"));
    assert!(!viewer.exists("#apply"));
    // The as-of view is a read any role may make; history and diff are not offered.
    viewer.goto("/ui/timetravel?as_of=seq:2");
    viewer.wait("#asof");
    assert!(!viewer.exists("#t-key") && !viewer.exists("#t-from"));
    assert!(viewer.text("#asof-settings").contains("LOG_LEVEL"));
    assert_eq!(viewer.count("main a[href^=\"/ui/timetravel?\"]"), 0, "no link to a history the viewer may not read");
    viewer.check_page("timetravel-viewer");
    // A forged revert from the viewer's session is refused by the API.
    let forged = viewer.js(
        "return cfg.api('POST', '/admin/config/revert', {batch: 'abcd', dry_run: true}).then(r => r.status)",
        vec![],
    );
    assert_eq!(forged, json!(403), "{forged}");

    let auditor = Browser::start(&server.url, "history_auditor");
    auditor.login("aud", "aud-password-123");
    auditor.goto("/ui/audit");
    auditor.wait("table#audit");
    assert_eq!(auditor.count("main a[href^=\"/ui/rollback\"]"), 0, "no revert or rollback control");
    auditor.goto("/ui/timetravel?key=LOG_LEVEL");
    auditor.wait("#history-table");
    assert_eq!(auditor.count("main a[href^=\"/ui/rollback\"]"), 0);
    auditor.check_page("history-auditor");
    auditor.goto("/ui/timetravel?as_of=seq:2&from=seq:2");
    auditor.wait("#diff-changed");
    assert_eq!(auditor.count("main a[href^=\"/ui/rollback\"]"), 0, "no rollback link under as-of or diff");
}
