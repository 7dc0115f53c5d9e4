//! The web UI's session and settings page in a real browser (Debian's chromium): login and logout, filters
//! and search, inline edits (accepted, refused with 422, a compare-and-set conflict from a second client),
//! a locked key, the JSON editor's parse errors, a live update from another client, and a viewer who sees
//! no edit control and whose forged write is refused. Every page is screenshotted and checked by axe-core.
//! The HTTP-only rules (UI_ENABLED, CSP, a cross-site login) are checked without a browser.

mod api_support;
mod browser_support;

use api_support::{eventually, Store};
use browser_support::Browser;
use serde_json::{json, Value};

const ADA: (&str, &str) = ("ada", "ada-password-123");
const VIC: (&str, &str) = ("vic", "vic-password-123");

fn store() -> Store {
    let store = Store::new("LOG_LEVEL=info\nMAX_WORKERS=6");
    store.add_user(ADA.0, "platform_admin", ADA.1);
    store.add_user(VIC.0, "viewer", VIC.1);
    store
}

fn csrf(b: &Browser) -> String {
    b.attr("meta[name=csrf-token]", "content").expect("the page carries the session's CSRF token")
}

#[test]
fn login_logout_and_the_session_cookie() {
    let store = store();
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "login_logout_and_the_session_cookie");

    // Any page sends a signed-out user to the login form, which brings them back afterwards.
    b.goto("/ui/settings?q=LOG");
    b.wait("form[action='/ui/login']");
    b.check_page("login");
    b.fill("#username", ADA.0);
    b.fill("#password", "wrong-password");
    b.click("form[action='/ui/login'] button[type=submit]");
    let refused = b.wait_text("#login-error", "Invalid username or password");
    assert!(refused.contains("try again"), "the error says what to do next: {refused}");
    b.check_page("login-refused");
    b.fill("#password", ADA.1);
    b.click("form[action='/ui/login'] button[type=submit]");
    b.wait("table#settings");
    assert!(b.url().ends_with("/ui/settings?q=LOG"), "back where the user was going: {}", b.url());

    // The cookie is HttpOnly and SameSite=Strict: scripts cannot read it.
    let cookies = b.block_on(b.client().get_all_cookies()).expect("cookies");
    let session = cookies.iter().find(|c| c.name() == "cfgledger_session").expect("a session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.same_site(), Some(cookie::SameSite::Strict));
    assert_eq!(b.js("return document.cookie", vec![]), json!(""));
    let token = session.value().to_string();
    let with_cookie = |path: &str| {
        ureq::get(&format!("{}{path}", server.url))
            .set("Cookie", &format!("cfgledger_session={token}"))
            .call()
            .map_err(Box::new)
    };
    assert_eq!(
        with_cookie("/admin/config/LOG_LEVEL").map(|r| r.status()).ok(),
        Some(200),
        "the cookie works for the API"
    );

    b.click("form[action='/ui/logout'] button");
    b.wait_text("p.notice", "You are logged out");
    // The logged-out token no longer opens a page or the API, even if replayed.
    b.goto("/ui/settings");
    b.wait("form[action='/ui/login']");
    match with_cookie("/admin/config/LOG_LEVEL") {
        Err(e) if matches!(*e, ureq::Error::Status(401, _)) => {
            let r = e.into_response().expect("a 401 answer");
            assert!(r.into_string().unwrap_or_default().contains("logged out"), "the 401 says why")
        }
        other => panic!("a logged-out session must get 401, got {other:?}"),
    }
}

#[test]
fn filters_and_search_narrow_the_list_instantly() {
    let store = store();
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "filters_and_search_narrow_the_list_instantly");
    b.login(ADA.0, ADA.1);
    let all = b.text("#count");
    let total: usize = all.split(" of ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(total > 800, "the gateway catalog has about 850 keys: {all}");
    b.check_page("settings");

    b.fill("#f-q", "max_workers");
    b.wait_text("#count", "1 of");
    assert!(b.displayed("tr[data-key='mcpgateway:MAX_WORKERS']"));
    assert!(!b.displayed("tr[data-key='mcpgateway:LOG_LEVEL']"));
    assert!(b.url().contains("q=max_workers"), "the filter is kept in the address: {}", b.url());

    // Source: the .env seeded MAX_WORKERS and LOG_LEVEL into the log.
    b.fill("#f-q", "");
    b.select("#f-source", "db");
    eventually("the db filter applies", || b.count("tr[data-source]:not([data-source='db']):not([hidden])") == 0);
    assert!(b.displayed("tr[data-key='mcpgateway:MAX_WORKERS']"));
    let db = b.count("tr[data-source='db']");
    assert!(db >= 2, "MAX_WORKERS and LOG_LEVEL at least");
    b.wait_text("#count", &format!("{db} of"));
    b.select("#f-source", "");
    b.click("#f-locked");
    eventually("only locked keys", || b.count("tr[data-locked='false']:not([hidden])") == 0);
    assert!(b.count("tr[data-locked='true']:not([hidden])") > 0);
    b.check_page("settings-locked-only");

    // A category is applied by the server (a reload keeps the other filters).
    b.click("#f-locked");
    b.select("#f-category", "logging");
    b.wait_js("the category reload", "return location.search.includes('category=logging')");
    b.wait("table#settings");
    assert!(b.exists("tr[data-key='mcpgateway:LOG_LEVEL']"));
    assert!(!b.exists("tr[data-key='mcpgateway:MAX_WORKERS']"));
}

fn api_value(server: &api_support::Server, token: &str, key: &str) -> Value {
    server.get(&format!("/admin/config/{key}"), token).ok_json()["value"].clone()
}

#[test]
fn an_inline_edit_saves_and_a_refused_one_shows_the_servers_message() {
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "an_inline_edit_saves_and_a_refused_one_shows_the_servers_message");
    b.login(ADA.0, ADA.1);
    b.fill("#f-q", "MAX_WORKERS");
    let row = "tr[data-key='mcpgateway:MAX_WORKERS']";
    b.click(&format!("{row} button.edit"));
    let field = "#edit-mcpgateway_MAX_WORKERS";
    b.wait(field);
    assert_eq!(b.js("return document.querySelector(arguments[0]).value", vec![json!(field)]), json!("6"));
    b.fill(field, "12");
    b.fill("#edit-mcpgateway_MAX_WORKERS-reason", "more load");
    b.check_page("settings-editing");
    b.click("form.editor button[type=submit]");
    b.wait_text(&format!("{row} .val"), "12");
    assert!(!b.exists("form.editor"), "the editor closes after a save");
    assert_eq!(api_value(&server, &admin, "MAX_WORKERS"), json!(12));
    let audit = server.get("/admin/config/audit?key=mcpgateway:MAX_WORKERS&limit=1", &admin).ok_json();
    let entry = &audit["entries"][0];
    assert_eq!((entry["actor"].as_str(), entry["source"].as_str()), (Some("ada"), Some("ui")), "{entry}");
    assert_eq!(entry["reason"], json!("more load"));

    // A value the key's type refuses: the 422's own message beside the field, nothing written.
    let head = server.head();
    b.click(&format!("{row} button.edit"));
    b.fill(field, "many");
    b.click("form.editor button[type=submit]");
    let message = b.wait_text("form.editor p.error", "MAX_WORKERS");
    assert!(message.contains("many") && message.contains("Correct the value"), "{message}");
    assert_eq!(b.attr(field, "aria-invalid").as_deref(), Some("true"));
    b.check_page("settings-refused-422");
    assert_eq!(server.head(), head, "a refused value writes nothing");
    assert_eq!(api_value(&server, &admin, "MAX_WORKERS"), json!(12));

    // Reset to default: the log's value goes, the catalog's default (4) applies again.
    b.click("form.editor button[type=button]:not(.reset)");
    b.click(&format!("{row} button.edit"));
    b.fill("#edit-mcpgateway_MAX_WORKERS-reason", "back to normal");
    b.click("form.editor button.reset");
    b.wait_text(&format!("{row} .badge"), "default");
    assert_eq!(b.text(&format!("{row} .val")), "4");
    let item = server.get("/admin/config/MAX_WORKERS", &admin).ok_json();
    assert_eq!((item["value"].clone(), item["source"].clone()), (json!(4), json!("default")), "{item}");
}

#[test]
fn the_page_works_from_the_keyboard() {
    use fantoccini::key::Key;
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "the_page_works_from_the_keyboard");
    b.login(ADA.0, ADA.1);
    b.goto("/ui/settings?q=MAX_WORKERS");
    b.wait("table#settings");
    // The first Tab reaches the skip link, which jumps over the navigation.
    b.press(Key::Tab);
    assert!(b.focused().contains("Skip to content"), "{}", b.focused());
    b.press(Key::Enter);
    eventually("the main region has the focus", || b.focused().starts_with("main#main"));

    // Edit opens with the focus in the field; Escape closes it and gives the focus back to Edit.
    let edit = "tr[data-key='mcpgateway:MAX_WORKERS'] button.edit";
    b.js("document.querySelector(arguments[0]).focus()", vec![json!(edit)]);
    b.press(Key::Enter);
    b.wait("form.editor");
    eventually("the field has the focus", || b.focused().starts_with("input#edit-mcpgateway_MAX_WORKERS"));
    b.press(Key::Escape);
    eventually("the editor closes", || !b.exists("form.editor"));
    assert!(b.focused().contains("Edit"), "{}", b.focused());

    // And a whole edit without the mouse: Enter on Edit, type, Enter saves.
    b.press(Key::Enter);
    eventually("the field has the focus", || b.focused().starts_with("input#edit-mcpgateway_MAX_WORKERS"));
    b.js("document.activeElement.select()", vec![]);
    for c in "16".chars() {
        b.press_char(c);
    }
    b.press(Key::Enter);
    b.wait_text("tr[data-key='mcpgateway:MAX_WORKERS'] .val", "16");
    assert_eq!(api_value(&server, &admin, "MAX_WORKERS"), json!(16));
}

#[test]
fn a_conflict_from_a_second_client_shows_both_values_and_who() {
    let store = store();
    let bob = store.token("bob", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "a_conflict_from_a_second_client_shows_both_values_and_who");
    b.login(ADA.0, ADA.1);
    b.fill("#f-q", "MAX_WORKERS");
    let row = "tr[data-key='mcpgateway:MAX_WORKERS']";
    b.click(&format!("{row} button.edit"));
    let field = "#edit-mcpgateway_MAX_WORKERS";
    b.fill(field, "20");

    // Another client changes the key meanwhile: the open editor gets a notice, not its value overwritten.
    server.put("MAX_WORKERS", &bob, json!(30)).ok_json();
    b.wait_text("form.editor .notice", "bob changed this key while you were editing it");
    assert_eq!(b.js("return document.querySelector(arguments[0]).value", vec![json!(field)]), json!("20"));

    b.click("form.editor button[type=submit]");
    let conflict = b.wait_text("form.editor p.error", "Conflict");
    assert!(conflict.contains("by bob"), "who changed it: {conflict}");
    assert_eq!(b.text("form.editor code.theirs"), "30");
    assert_eq!(b.text("form.editor code.mine"), "20");
    b.check_page("settings-conflict");
    assert_eq!(api_value(&server, &bob, "MAX_WORKERS"), json!(30), "a conflict writes nothing");
    b.click("form.editor p.error button.primary");
    b.wait_text(&format!("{row} .val"), "20");
    assert_eq!(api_value(&server, &bob, "MAX_WORKERS"), json!(20));
}

#[test]
fn a_locked_key_says_why_and_a_forged_write_is_refused_and_audited() {
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "a_locked_key_says_why_and_a_forged_write_is_refused_and_audited");
    b.login(ADA.0, ADA.1);
    b.fill("#f-q", "JWT_SECRET_KEY");
    let row = "tr[data-key='mcpgateway:JWT_SECRET_KEY']";
    b.wait(row);
    assert!(!b.exists(&format!("{row} button.edit")), "a locked key offers no edit");
    assert!(b.text(&format!("{row} .locked-why")).contains("cfgledger config reseed"));
    assert!(b.text(&format!("{row} .badge.locked")).contains("locked"));
    b.check_page("settings-locked");

    let headers = json!({"Content-Type": "application/json", "X-CSRF-Token": csrf(&b)});
    let (status, body) = b.request(
        "PUT",
        "/admin/config/mcpgateway:JWT_SECRET_KEY",
        Some(r#"{"value": "forged-value-0123456789abcdef0123"}"#),
        headers,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("locked"), "{body}");
    let rejected = server.get("/admin/config/audit?rejected=true&key=mcpgateway:JWT_SECRET_KEY", &admin).ok_json();
    let entry = &rejected["entries"][0];
    assert_eq!((entry["actor"].as_str(), entry["source"].as_str()), (Some("ada"), Some("ui")), "{rejected}");
}

#[test]
fn the_json_editor_reports_a_parse_error_then_saves_the_fix() {
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "the_json_editor_reports_a_parse_error_then_saves_the_fix");
    b.login(ADA.0, ADA.1);
    b.fill("#f-q", "FEDERATION_PEERS");
    let row = "tr[data-key='mcpgateway:FEDERATION_PEERS']";
    b.click(&format!("{row} button.edit"));
    let area = "textarea.json";
    b.wait(area);
    assert!(b.exists(".json-box .gutter"), "line numbers");
    let head = server.head();
    b.fill(area, "[\n  \"https://a.example\",\n  \"https://b.example\"\n  \"https://c.example\"\n]");
    let error = b.wait_text("p.parse.bad", "line 4");
    assert!(error.contains("column"), "line and column: {error}");
    assert_eq!(b.js("return document.querySelector('form.editor button[type=submit]').disabled", vec![]), json!(true));
    b.check_page("settings-json-error");
    assert_eq!(server.head(), head, "nothing is sent while the JSON does not parse");

    b.fill(area, "[\"https://a.example\",\"https://b.example\"]");
    b.wait_text("p.parse.ok", "Valid JSON");
    b.click("form.editor .json-tools button");
    eventually("pretty-printed", || {
        b.js("return document.querySelector('textarea.json').value", vec![])
            .as_str()
            .is_some_and(|v| v.contains("\n  \""))
    });
    b.click("form.editor button[type=submit]");
    b.wait_text(&format!("{row} .val"), "b.example");
    assert_eq!(api_value(&server, &admin, "FEDERATION_PEERS"), json!(["https://a.example", "https://b.example"]));
}

#[test]
fn a_change_made_elsewhere_appears_without_a_reload() {
    let store = store();
    let bob = store.token("bob", "platform_admin");
    let server = store.serve(&["--sse-keepalive", "200ms"]);
    let b = Browser::start(&server.url, "a_change_made_elsewhere_appears_without_a_reload");
    b.login(ADA.0, ADA.1);
    b.js("window.__sameDocument = true", vec![]);
    // The page follows the watch stream; wait until it is connected before changing anything.
    b.wait_js("the watch stream", "return document.documentElement.dataset.live === 'on'");
    assert_eq!(b.text("#live-indicator"), "Live");
    server.put("LOG_LEVEL", &bob, json!("debug")).ok_json();
    b.wait_text("tr[data-key='mcpgateway:LOG_LEVEL'] .val", "debug");
    assert_eq!(b.js("return window.__sameDocument === true", vec![]), json!(true), "no reload");
    b.wait_text("#live-status", "LOG_LEVEL changed by bob");
    assert!(b.text("tr[data-key='mcpgateway:LOG_LEVEL'] td.updated").contains("bob"));
}

#[test]
fn a_viewer_sees_no_edit_control_and_forged_writes_are_refused() {
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let b = Browser::start(&server.url, "a_viewer_sees_no_edit_control_and_forged_writes_are_refused");
    b.login(VIC.0, VIC.1);
    assert_eq!(b.count("button.edit"), 0, "a viewer gets no edit button");
    assert!(b.text("main").contains("can read settings but not change them"));
    b.check_page("settings-viewer");
    let head = server.head();
    let headers = json!({"Content-Type": "application/json", "X-CSRF-Token": csrf(&b)});
    let (status, body) = b.request("PUT", "/admin/config/MAX_WORKERS", Some(r#"{"value": 99}"#), headers);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("role viewer may not do this"), "{body}");
    assert_eq!(server.head(), head, "nothing was written");

    // An admin's session without the CSRF token (what another site's form would send) is refused too.
    b.click("form[action='/ui/logout'] button");
    b.login(ADA.0, ADA.1);
    // The logout recorded its revocation (`TokenRevoked`), and nothing after it may write.
    let head = server.head();
    let (status, body) = b.request(
        "PUT",
        "/admin/config/MAX_WORKERS",
        Some(r#"{"value": 99}"#),
        json!({"Content-Type": "application/json"}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (status, _) = b.request(
        "PUT",
        "/admin/config/MAX_WORKERS",
        Some(r#"{"value": 99}"#),
        json!({"Content-Type": "application/json", "X-CSRF-Token": "0".repeat(64)}),
    );
    assert_eq!(status, 403, "a wrong token is refused");
    assert_eq!(server.head(), head, "nothing was written");
    assert_eq!(api_value(&server, &admin, "MAX_WORKERS"), json!(6));
}

#[test]
fn the_ui_can_be_turned_off_and_answers_with_strict_headers() {
    let store = store();
    let admin = store.token("root", "platform_admin");
    let server = store.serve(&[]);
    let page = ureq::get(&format!("{}/ui/login", server.url)).call().expect("the login page");
    let csp = page.header("content-security-policy").unwrap_or_default().to_string();
    for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // A login form posted from another site is refused before any password check.
    let cross = ureq::post(&format!("{}/ui/login", server.url))
        .set("Origin", "https://evil.example")
        .send_form(&[("username", ADA.0), ("password", ADA.1)]);
    match cross {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("a cross-site login must be refused, got {other:?}"),
    }

    server.put("cfgledger:UI_ENABLED", &admin, json!(false)).ok_json();
    eventually("the UI turns off", || {
        matches!(ureq::get(&format!("{}/ui/login", server.url)).call(), Err(ureq::Error::Status(404, _)))
    });
    // The REST API is not affected.
    assert_eq!(api_value(&server, &admin, "LOG_LEVEL"), json!("info"));
}

/// Logs in through the form without a browser: the session cookie (`name=value`) and the page's CSRF token.
fn form_login(server: &api_support::Server, user: (&str, &str)) -> (String, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let answer = agent
        .post(&format!("{}/ui/login", server.url))
        .send_form(&[("username", user.0), ("password", user.1), ("next", "/ui/settings")])
        .expect("a login answer");
    assert_eq!(answer.status(), 303);
    let cookie = answer.header("set-cookie").and_then(|c| c.split(';').next()).expect("a session cookie").to_string();
    let page = agent.get(&format!("{}/ui/settings", server.url)).set("Cookie", &cookie).call().expect("the page");
    let html = page.into_string().expect("the page's text");
    let csrf =
        html.split("name=\"csrf-token\" content=\"").nth(1).and_then(|t| t.split('"').next()).expect("the token");
    (cookie, csrf.to_string())
}

fn status(r: Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("no answer: {e}"),
    }
}

#[test]
fn a_session_ends_when_its_role_changes_and_a_logged_out_token_is_refused_however_sent() {
    let store = store();
    let server = store.serve(&[]);
    let get = |cookie: &str| {
        status(ureq::get(&format!("{}/admin/config/LOG_LEVEL", server.url)).set("Cookie", cookie).call())
    };
    let (cookie, csrf) = form_login(&server, ADA);
    assert_eq!(get(&cookie), 200);

    // A request another site's page made (the browser says so) is refused even with the cookie.
    let cross = ureq::get(&format!("{}/admin/config/LOG_LEVEL", server.url))
        .set("Cookie", &cookie)
        .set("Sec-Fetch-Site", "same-site")
        .call();
    assert_eq!(status(cross), 403);

    // Logout revokes the token: as a cookie and as a bearer token alike.
    let token = cookie.split_once('=').map(|(_, t)| t.to_string()).expect("name=value");
    let out = ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&format!("{}/ui/logout", server.url))
        .set("Cookie", &cookie)
        .send_form(&[("csrf", &csrf)]);
    assert_eq!(status(out), 303);
    assert_eq!(get(&cookie), 401);
    let bearer = ureq::get(&format!("{}/admin/config/LOG_LEVEL", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .call();
    assert_eq!(status(bearer), 401);

    // A user whose role changed since login: the old session no longer carries the old role.
    let (cookie, _) = form_login(&server, VIC);
    assert_eq!(get(&cookie), 200);
    store.ok(&["user", "remove", VIC.0]);
    store.add_user(VIC.0, "platform_admin", VIC.1);
    // The server folds the removal, then the new user in: the old session then ends because of its role.
    let refusal = || match ureq::get(&format!("{}/admin/config/LOG_LEVEL", server.url)).set("Cookie", &cookie).call() {
        Err(ureq::Error::Status(401, r)) => r.into_string().unwrap_or_default(),
        other => format!("{other:?}"),
    };
    eventually("the old session ends for its role", || refusal().contains("role of user vic changed since"));
    let (cookie, _) = form_login(&server, VIC);
    assert_eq!(get(&cookie), 200, "a new login carries the new role");
}
