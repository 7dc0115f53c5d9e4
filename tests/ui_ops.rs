//! Browser tests of the operations pages of the web UI: the registry's tabs (create, edit, a delete refused
//! while a server links the tool, then allowed), write-only credentials, the export links and their files,
//! an import previewed then applied (settings and registry), the instances page with a fake agent's
//! heartbeat and the chain's verification, and a viewer who sees none of the controls. Each page is
//! screenshotted and checked by axe-core (`check_page`).

mod api_support;
mod browser_support;

use api_support::{eventually, Server, Store};
use browser_support::{Browser, FakeAgent};
use serde_json::{json, Value};

const ADA: (&str, &str) = ("ada", "ada-password-123");
const VIC: (&str, &str) = ("vic", "vic-password-123");
/// A credential planted through the UI: no page may ever show it.
const PLANTED: &str = "planted-credential-5d1e9c";

struct World {
    store: Store,
    admin: String,
    server: Server,
}

fn world() -> World {
    let store = Store::new("LOG_LEVEL=info");
    store.add_user(ADA.0, "platform_admin", ADA.1);
    store.add_user(VIC.0, "viewer", VIC.1);
    let admin = store.token("ada", "platform_admin");
    let server = store.serve(&[]);
    World { store, admin, server }
}

fn admin_browser(w: &World, name: &str) -> Browser {
    let b = Browser::start(&w.server.url, name);
    b.login(ADA.0, ADA.1);
    b
}

/// Puts `text` in the page's file input as a chosen file named `name` (what a user's pick does).
fn choose_file(b: &Browser, name: &str, text: &str) {
    b.js(
        "const dt = new DataTransfer(); \
         dt.items.add(new File([arguments[0]], arguments[1], {type: 'application/json'})); \
         const input = document.getElementById('i-file'); input.files = dt.files; \
         input.dispatchEvent(new Event('change', {bubbles: true})); return true;",
        vec![json!(text), json!(name)],
    );
}

/// A field's current value (the property, which typing and scripts change; not the markup's attribute).
fn value(b: &Browser, css: &str) -> String {
    b.wait(css);
    b.js("return document.querySelector(arguments[0]).value", vec![json!(css)]).as_str().unwrap_or_default().to_string()
}

fn page_source(b: &Browser) -> String {
    b.source()
}

#[test]
fn a_registry_entity_is_created_edited_and_deleted_once_its_referrer_is_gone() {
    let w = world();
    let b = admin_browser(&w, "registry_crud");
    b.goto("/ui/registry/tools");
    b.wait("nav.tabs a[aria-current='page'][href='/ui/registry/tools']");
    b.check_page("registry-tools-empty");

    // Create through the form: the JSON body follows the fields.
    b.click("a[href='/ui/registry/tools/new']");
    b.wait("#entity-form");
    b.fill("#e-name", "search");
    // The server's 422 is shown beside the form, with what to do next.
    b.fill("#e-url", "not a url");
    b.click("#e-save");
    b.wait_text("#entity-error", "expects a URL");
    assert!(b.text("#entity-error").contains("Correct the fields"), "{}", b.text("#entity-error"));
    b.fill("#e-url", "https://api.example/search");
    b.fill("#e-tags", "web, prod");
    b.select("#c-type", "bearer");
    b.fill("#c-secret", PLANTED);
    let body: Value = serde_json::from_str(&value(&b, "#e-json")).unwrap();
    assert_eq!(body["tags"], json!(["web", "prod"]), "{body}");
    assert!(!body.to_string().contains(PLANTED), "the credential is not in the body: {body}");
    b.check_page("registry-tool-new");
    b.click("#e-save");
    b.wait("tr[data-name='search']");
    b.wait_text("main .notice", "Saved tool search");
    b.check_page("registry-tools");
    // Filter by tag: the GET form, and the chips of the tags in use.
    b.fill("#f-tags", "nothing-has-this");
    b.click("form.filters button[type=submit]");
    b.wait_text("main", "No tools match these filters");
    b.click("nav.tag-chips a[href='/ui/registry/tools?tags=prod']");
    b.wait("tr[data-name='search']");
    assert_eq!(b.text("nav.tag-chips a[aria-current='true']"), "prod");
    let tool = w.server.get("/tools/search", &w.admin).ok_json();
    assert_eq!((tool["auth_type"].as_str(), tool["tags"].clone()), (Some("bearer"), json!(["web", "prod"])));

    // A server links it (another client).
    w.server
        .send_json("POST", "/servers", Some(&w.admin), &json!({"name": "edge", "associated_tools": ["search"]}))
        .ok_json();

    // Edit: the stored credential is never on the page, a JSON error is caught before sending, the
    // credential is kept when its field is left empty.
    b.goto("/ui/registry/tools/item?name=search");
    b.wait("#entity-form");
    let source = page_source(&b);
    let sealed = tool["auth_value"].as_str().unwrap();
    assert!(!source.contains(PLANTED) && !source.contains(sealed), "a credential is on the page");
    let (status, raw) = b.fetch("/ui/registry/tools/item?name=search");
    assert_eq!(status, 200);
    assert!(!raw.contains(PLANTED) && !raw.contains(sealed), "a credential is in the page's source");
    assert!(b.exists("ul.referrers a[href='/ui/registry/servers/item?name=edge']"), "the page names its referrer");
    b.fill("#e-description", "Web search");
    assert!(value(&b, "#e-json").contains("\"description\": \"Web search\""), "the JSON follows the form");
    b.js("const a = document.getElementById('e-json'); a.value = '{\"name\": \"search\",'; a.dispatchEvent(new Event('input')); return 1", vec![]);
    b.wait_text("#e-json-parse", "JSON error at line");
    b.click("#e-save");
    b.wait_text("#entity-error", "Fix the JSON body first");
    b.check_page("registry-tool-edit-json-error");
    let fixed = json!({"name": "search", "url": "https://api.example/search", "description": "Web search",
                       "tags": ["web"], "auth_type": "bearer"});
    b.js(
        "const a = document.getElementById('e-json'); a.value = arguments[0]; a.dispatchEvent(new Event('input')); return 1",
        vec![json!(serde_json::to_string_pretty(&fixed).unwrap())],
    );
    b.wait_text("#e-json-parse", "Valid JSON");
    assert_eq!(value(&b, "#e-tags"), "web", "the form follows the JSON");
    b.click("#e-save");
    b.wait_text("main .notice", "Saved tool search");
    let edited = w.server.get("/tools/search", &w.admin).ok_json();
    assert_eq!((edited["description"].as_str(), edited["tags"].clone()), (Some("Web search"), json!(["web"])));
    assert_eq!(edited["auth_value"], tool["auth_value"], "the credential was kept");

    // Compare-and-set: a change made by another client while the form is open is not overwritten silently.
    b.goto("/ui/registry/tools/item?name=search");
    b.wait("#entity-form");
    b.fill("#e-description", "Mine");
    w.server.send_json("PATCH", "/tools/search", Some(&w.admin), &json!({"description": "Theirs"})).ok_json();
    b.wait_text("#registry-live", "Changed while you were here");
    b.click("#e-save");
    b.wait_text("#entity-notice", "Changed meanwhile");
    assert!(b.text("#entity-notice").contains("Nothing was saved"));
    assert_eq!(w.server.get("/tools/search", &w.admin).ok_json()["description"], "Theirs");
    b.check_page("registry-tool-conflict");
    b.click("#entity-notice button.primary");
    b.wait_text("main .notice", "Saved tool search");
    assert_eq!(w.server.get("/tools/search", &w.admin).ok_json()["description"], "Mine");

    // Delete: refused while the server links it, and the refusal names the server as a link.
    b.goto("/ui/registry/tools");
    b.click("tr[data-name='search'] button.delete");
    b.click("tr[data-name='search'] button.confirm-delete");
    b.wait_text("#registry-error", "referenced by");
    assert!(b.exists("#registry-error a[href='/ui/registry/servers/item?name=edge']"), "{}", b.text("#registry-error"));
    b.check_page("registry-delete-refused");
    assert_eq!(w.server.get("/tools/search", &w.admin).status, 200);

    // Delete the server first, then the tool.
    b.click("#registry-error a[href='/ui/registry/servers/item?name=edge']");
    b.wait("#e-delete");
    b.check_page("registry-server-edit");
    b.click("#e-delete");
    b.wait_text("#e-delete", "Confirm");
    b.click("#e-delete");
    b.wait("nav.tabs a[aria-current='page'][href='/ui/registry/servers']");
    assert_eq!(w.server.get("/servers/edge", &w.admin).status, 404);
    b.goto("/ui/registry/tools");
    b.click("tr[data-name='search'] button.delete");
    b.click("tr[data-name='search'] button.confirm-delete");
    eventually("the row leaves the list", || !b.exists("tr[data-name='search']"));
    assert_eq!(w.server.get("/tools/search", &w.admin).status, 404);
}

#[test]
fn a_replaced_credential_is_written_and_never_shown() {
    let w = world();
    let tool = json!({"name": "vault", "url": "https://v.example", "auth_type": "bearer", "auth_token": PLANTED});
    let before = w.server.send_json("POST", "/tools", Some(&w.admin), &tool).ok_json();
    let b = admin_browser(&w, "registry_credential");
    b.goto("/ui/registry/tools/item?name=vault");
    b.wait("#c-secret");
    assert_eq!(b.attr("#c-secret", "type").as_deref(), Some("password"));
    assert_eq!(value(&b, "#c-secret"), "", "the field starts empty");
    assert!(!page_source(&b).contains(PLANTED));
    b.select("#c-type", "basic");
    b.fill("#c-secret", "a-new-password-1");
    b.click("#e-save");
    b.wait_text("#entity-error", "user name");
    b.fill("#c-user", "svc");
    b.click("#e-save");
    b.wait_text("main .notice", "Saved tool vault");
    let after = w.server.get("/tools/vault", &w.admin).ok_json();
    assert_eq!(after["auth_type"], "basic");
    assert_ne!(after["auth_value"], before["auth_value"]);
    let source = page_source(&b);
    assert!(!source.contains(PLANTED) && !source.contains("a-new-password-1"), "no credential on the list");
}

#[test]
fn the_export_links_download_files_that_hold_what_the_store_holds() {
    let w = world();
    w.server.put("MAX_WORKERS", &w.admin, json!(9)).ok_json();
    let tool = json!({"name": "lookup", "url": "https://l.example", "tags": ["prod"]});
    w.server.send_json("POST", "/tools", Some(&w.admin), &tool).ok_json();
    w.server
        .send_json("POST", "/prompts", Some(&w.admin), &json!({"name": "greet", "template": "hi", "tags": ["dev"]}))
        .ok_json();
    let b = admin_browser(&w, "transfer_export");
    b.goto("/ui/transfer");
    b.wait("#export-registry");
    b.check_page("transfer");

    let href = b.attr("#export-registry", "href").unwrap();
    let (status, text) = b.fetch(&href);
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "cfgledger-export");
    assert_eq!(doc["entities"]["tools"][0]["name"], "lookup");
    assert_eq!(doc["entities"]["prompts"][0]["name"], "greet");

    // Filters: tools only, tag prod, in MCP Gateway's layout.
    for kind in ["gateways", "servers", "prompts", "resources", "roots"] {
        b.click(&format!("#x-{kind}"));
    }
    b.fill("#x-tags", "prod");
    b.select("#x-format", "mcpgateway");
    let href = b.attr("#export-registry", "href").unwrap();
    assert!(b.attr("#export-registry", "download").unwrap_or_default().starts_with("cfgledger-registry-mcpgateway-"));
    assert!(href.contains("format=mcpgateway") && href.contains("types=tools") && href.contains("tags=prod"), "{href}");
    let (status, text) = b.fetch(&href);
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc.get("format").is_none() && doc["encryption_method"] == "AES-256-GCM", "{doc}");
    assert_eq!(doc["entities"]["tools"].as_array().map(Vec::len), Some(1));
    assert!(doc["entities"].get("prompts").is_none_or(|p| p.as_array().is_some_and(Vec::is_empty)), "{doc}");

    let (status, text) = b.fetch(&b.attr("#export-settings", "href").unwrap());
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "cfgledger-settings");
    assert_eq!(doc["settings"]["MAX_WORKERS"], 9, "{doc}");
    assert_eq!(b.attr("#export-settings", "download").as_deref().map(|d| d.ends_with(".json")), Some(true));
}

#[test]
fn an_import_is_previewed_then_applied_for_settings_and_for_the_registry() {
    let w = world();
    w.server.put("MAX_WORKERS", &w.admin, json!(9)).ok_json();
    let b = admin_browser(&w, "transfer_import");
    b.goto("/ui/transfer");
    b.wait("#import-form");

    // Settings: the preview lists the plan and changes nothing; apply changes the store.
    let settings = json!({"format": "cfgledger-settings", "settings": {"MAX_WORKERS": 12}});
    choose_file(&b, "settings.json", &settings.to_string());
    b.wait_text("#i-file-info", "cfgledger-settings");
    assert_eq!(b.js("return document.getElementById('i-settings').checked", vec![]), json!(true));
    b.click("#i-preview");
    b.wait_text("#import-result", "MAX_WORKERS");
    assert!(b.text("#import-result").contains("update"), "{}", b.text("#import-result"));
    b.check_page("transfer-settings-preview");
    assert_eq!(w.server.get("/admin/config/MAX_WORKERS", &w.admin).ok_json()["value"], 9);
    b.click("#i-apply");
    b.wait_text("#import-status", "Import completed");
    assert_eq!(w.server.get("/admin/config/MAX_WORKERS", &w.admin).ok_json()["value"], 12);

    // Registry: a hand-written document.
    let registry = json!({"entities": {"tools": [{"name": "imported-tool", "url": "https://i.example/t", "tags": ["new"]}],
                                       "servers": [{"name": "imported-server", "associated_tools": ["imported-tool"]}]}});
    choose_file(&b, "registry.json", &registry.to_string());
    b.wait_text("#i-file-info", "1 tools");
    assert_eq!(b.js("return document.getElementById('i-registry').checked", vec![]), json!(true));
    b.select("#i-strategy", "fail");
    b.fill("#i-secret", "not-the-secret-but-never-shown");
    // Only some of the file's entities: the preview plans those alone; ticking again needs a new preview.
    b.click("#i-pick input[data-name='imported-server']");
    b.click("#i-preview");
    b.wait_text("#import-result", "imported-tool");
    assert!(!b.text("#import-result").contains("imported-server"), "{}", b.text("#import-result"));
    b.click("#i-pick input[data-name='imported-server']");
    b.wait_text("#import-error", "preview again");
    b.click("#i-preview");
    b.wait_text("#import-result", "imported-server");
    let plan = b.text("#import-result");
    assert!(plan.contains("imported-server") && plan.contains("create"), "{plan}");
    assert!(!page_source(&b).contains("not-the-secret-but-never-shown"), "the source secret is not echoed");
    b.check_page("transfer-registry-preview");
    assert_eq!(w.server.get("/tools/imported-tool", &w.admin).status, 404, "a preview applies nothing");
    b.click("#i-apply");
    b.wait_text("#import-status", "Import completed");
    assert_eq!(value(&b, "#i-secret"), "", "the secret is cleared after the apply");
    b.check_page("transfer-registry-applied");
    assert_eq!(w.server.get("/tools/imported-tool", &w.admin).ok_json()["tags"], json!(["new"]));
    assert_eq!(w.server.get("/servers/imported-server", &w.admin).status, 200);
    b.wait_text("table.imports", "ada");

    // The same file changed, under the fail strategy: the preview shows the conflict, the apply is refused
    // with what to do next, and nothing changes.
    let changed = json!({"entities": {"tools": [{"name": "imported-tool", "url": "https://elsewhere.example/t"}]}});
    choose_file(&b, "changed.json", &changed.to_string());
    b.wait_text("#i-file-info", "changed.json");
    b.select("#i-strategy", "fail");
    b.click("#i-preview");
    b.wait_text("#import-result", "conflict");
    b.click("#i-apply");
    b.wait_text("#import-error", "Nothing was applied");
    assert!(b.text("#import-error").contains("conflict strategy"), "{}", b.text("#import-error"));
    b.check_page("transfer-conflict-refused");
    assert_eq!(w.server.get("/tools/imported-tool", &w.admin).ok_json()["url"], "https://i.example/t");
}

fn heartbeat(id: &str, seq: u64, hash: &str, stale: bool) -> Value {
    json!({"id": id, "kind": "agent", "namespace": "mcpgateway", "labels": {"zone": "a"}, "applied_seq": seq,
           "head_hash": hash, "stale": stale, "staleness_secs": if stale { 30.0 } else { 0.0 }, "origin": "server",
           "host": "h", "pid": 1, "version": "0.1.0", "started_at": "2026-12-04T00:00:00Z"})
}

#[test]
fn the_instances_page_shows_the_server_a_diverged_and_a_stale_agent_and_verifies_the_chain() {
    let w = world();
    let verified = w.server.get("/admin/verify", &w.admin).ok_json();
    let (head, hash) =
        (verified["head"]["seq"].as_u64().unwrap(), verified["head"]["hash"].as_str().unwrap().to_string());
    let _diverged = FakeAgent::start(&w.server.url, &w.admin, heartbeat("edge-1", head, &"ab".repeat(32), false));
    let _stale = FakeAgent::start(&w.server.url, &w.admin, heartbeat("edge-2", head, &hash, true));
    let b = admin_browser(&w, "instances");
    b.goto("/ui/instances");
    b.wait_text("#instances", "agent/edge-1");
    b.wait_text("#instances", "agent/edge-2");
    b.wait_text("tr[data-id='agent/edge-1']", "diverged");
    assert!(
        b.text("tr[data-id='agent/edge-1']").contains("hash is not the log's"),
        "{}",
        b.text("tr[data-id='agent/edge-1']")
    );
    b.wait_text("tr[data-id='agent/edge-2']", "stale");
    assert!(b.text("#instances tr.status-converged").contains("this server"));
    assert_eq!(b.attr("tr[data-id='agent/edge-1'] td code", "title").as_deref(), Some("ab".repeat(32).as_str()));
    b.wait_text("#inst-summary", "Not all converged");
    b.check_page("instances");

    // With thousands of agents, the filter finds the few that need a look; the counts stay whole.
    b.select("#inst-show", "diverged");
    b.wait_text("#inst-summary", "Showing 1: diverged.");
    assert_eq!(b.count("#instances tbody tr"), 1);
    assert!(b.text("#instances tbody").contains("agent/edge-1"), "{}", b.text("#instances tbody"));
    assert!(b.text("#inst-summary").starts_with("3 instances"), "{}", b.text("#inst-summary"));
    b.check_page("instances-diverged-only");
    b.select("#inst-show", "ahead");
    b.wait_text("#instances tbody", "No instance is ahead.");
    b.select("#inst-show", "");
    b.wait_text("#instances", "agent/edge-2");

    // The list follows without a reload: a change of the store shows up as lag of the agents.
    let marker: Value = b.js("window.__marker = 1; return 1", vec![]);
    assert_eq!(marker, json!(1));
    w.server.put("MAX_WORKERS", &w.admin, json!(3)).ok_json();
    b.wait_text("#log-head", &(head + 1).to_string());
    assert_eq!(b.js("return window.__marker", vec![]), json!(1), "no reload");

    b.click("#verify");
    b.wait_text("#verify-status", "OK: the chain is intact");
    assert_eq!(b.text("#verify-seq"), (head + 1).to_string());
    b.check_page("instances-verified");
}

#[test]
fn a_viewer_sees_no_control_it_cannot_use() {
    let w = world();
    w.server.send_json("POST", "/tools", Some(&w.admin), &json!({"name": "t1", "url": "https://t.example"})).ok_json();
    let b = Browser::start(&w.server.url, "ops_viewer");
    b.login(VIC.0, VIC.1);
    b.goto("/ui/registry/tools");
    b.wait("tr[data-name='t1']");
    assert!(!b.exists("button.delete") && !b.exists("a[href='/ui/registry/tools/new']"));
    b.check_page("viewer-registry");
    b.goto("/ui/registry/tools/item?name=t1");
    b.wait("pre.json-view");
    assert!(!b.exists("#entity-form") && !b.exists("#e-delete") && !b.exists("#c-secret"));
    b.goto("/ui/registry/tools/new");
    b.wait_text("main", "cannot");
    assert!(!b.exists("#entity-form"));
    b.goto("/ui/transfer");
    b.wait_text("main", "cannot import");
    assert!(!b.exists("#import-form") && !b.exists("#export-form"));
    b.check_page("viewer-transfer");
    b.goto("/ui/instances");
    b.wait_text("#instances", "this server");
    assert!(!b.exists("#verify"));
    b.check_page("viewer-instances");
    // The API still refuses a forged delete from this session.
    let csrf = b.attr("meta[name=csrf-token]", "content").unwrap_or_default();
    let (status, body) = b.request("DELETE", "/tools/t1", None, json!({"X-CSRF-Token": csrf}));
    assert_eq!(status, 403, "{body}");
    assert_eq!(w.server.get("/tools/t1", &w.admin).status, 200);
    let _ = &w.store;
}

#[test]
fn verifying_a_tampered_log_names_the_first_bad_seq() {
    let w = world();
    w.server.put("MAX_WORKERS", &w.admin, json!(7)).ok_json();
    w.server.put("MAX_WORKERS", &w.admin, json!(8)).ok_json();
    let head = w.server.head();
    // Behind the binary's back, as an attacker with the database file would.
    let db = rusqlite::Connection::open(w.store.db_path()).unwrap();
    db.execute_batch(&format!(
        "DROP TRIGGER events_reject_update; DROP TRIGGER events_reject_delete; \
         UPDATE events SET actor = 'mallory' WHERE seq = {};",
        head - 1
    ))
    .unwrap();
    let b = admin_browser(&w, "instances_tampered");
    b.goto("/ui/instances");
    b.click("#verify");
    b.wait_text("#verify-status", &format!("Broken at seq {}", head - 1));
    assert!(b.text("#verify-status").contains("restore"), "says what to do: {}", b.text("#verify-status"));
    b.check_page("instances-broken-chain");
}

#[test]
fn an_auditor_exports_and_verifies_but_changes_nothing() {
    let w = world();
    w.store.add_user("aud", "auditor", "aud-password-123");
    let doc = json!({"import_data": {"entities": {"tools": [{"name": "t9", "url": "https://t.example"}]}}});
    w.server.send_json("POST", "/import", Some(&w.admin), &doc).ok_json();
    let b = Browser::start(&w.server.url, "ops_auditor");
    b.login("aud", "aud-password-123");
    b.goto("/ui/transfer");
    b.wait("#export-registry");
    b.wait_text("table.imports", "ada");
    assert!(!b.exists("#import-form"), "no import for an auditor");
    b.check_page("auditor-transfer");
    b.goto("/ui/registry/tools");
    b.wait("tr[data-name='t9']");
    assert!(!b.exists("button.delete") && !b.exists("a[href='/ui/registry/tools/new']"));
    b.goto("/ui/instances");
    b.click("#verify");
    b.wait_text("#verify-status", "OK");
}

#[test]
fn the_registry_works_from_the_keyboard() {
    use fantoccini::key::Key;
    let w = world();
    for name in ["alpha", "beta"] {
        w.server
            .send_json("POST", "/tools", Some(&w.admin), &json!({"name": name, "url": "https://k.example"}))
            .ok_json();
    }
    let b = admin_browser(&w, "registry_keyboard");
    b.goto("/ui/registry/tools");
    let delete = "tr[data-name='alpha'] button.delete";
    b.js("document.querySelector(arguments[0]).focus()", vec![json!(delete)]);
    // Enter asks for a confirmation with the focus on it; Escape gives the focus back to Delete.
    b.press(Key::Enter);
    eventually("the confirmation has the focus", || b.focused().contains("confirm-delete"));
    b.press(Key::Escape);
    eventually("the confirmation closes", || !b.exists(".confirm"));
    assert!(b.focused().contains("Delete"), "{}", b.focused());
    // Enter, Enter deletes; the focus stays in the list, on the next row.
    b.press(Key::Enter);
    eventually("the confirmation has the focus", || b.focused().contains("confirm-delete"));
    b.press(Key::Enter);
    eventually("the row leaves the list", || !b.exists("tr[data-name='alpha']"));
    eventually("the focus is on the next row", || b.focused().contains("beta"));
    assert_eq!(w.server.get("/tools/alpha", &w.admin).status, 404);
}
