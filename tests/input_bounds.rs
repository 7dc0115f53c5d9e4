//! Bounded and normalised input, and a terminal that input cannot drive (issue 17, item 3): the real
//! `cfgledger serve` and the real CLI on their own SQLite store per test. A reason over 1 KB or holding a
//! control character, an entity name that is a path or hides characters, a tag with NUL, a body naming a
//! key twice or not declared as JSON, an enum with a trailing newline and a log file path with ESC are each
//! refused with their own status (or exit code) and message, and leave the log head where it was. Values
//! and reasons holding ESC, NUL, bell and a right-to-left override come out of every text command escaped.

mod api_support;

use api_support::{perform, Server, Store};
use serde_json::{json, Value};
use std::process::Output;

const ADMIN: &str = "platform_admin";

/// Asserts that the log head is still `head`: the refused request `what` wrote nothing.
fn unchanged(server: &Server, head: u64, what: &str) {
    assert_eq!(server.head(), head, "{what} moved the log head");
}

fn run(store: &Store, args: &[&str]) -> Output {
    store.cmd().args(args).output().expect("the cfgledger binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The hidden characters (controls but the line ends, bidi formatting) in `text`, as code points.
fn hidden(text: &str) -> Vec<String> {
    text.chars()
        .filter(|&c| c != '\n' && cfgledger_events::text::is_hidden(c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect()
}

#[test]
fn reasons_are_capped_at_one_kilobyte_and_refuse_control_characters_in_the_api_and_the_cli() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let put = |reason: &str| {
        server.send_json("PUT", "/admin/config/MAX_WORKERS", Some(&admin), &json!({"value": 5, "reason": reason}))
    };

    let message = put(&"r".repeat(500_000)).error_message(400, "bad_request");
    assert_eq!(message, "reason is 500000 bytes long; at most 1024 bytes are accepted");
    unchanged(&server, head, "a 500 KB reason");
    put(&"r".repeat(1025)).error(400, "bad_request");
    unchanged(&server, head, "a reason one byte over");
    for (what, reason, code) in [
        ("ESC", "clear\u{1b}[2J", "U+001B"),
        ("NUL", "a\0b", "U+0000"),
        ("bell", "ding\u{7}", "U+0007"),
        ("RLO", "x\u{202e}y", "U+202E"),
    ] {
        let message = put(reason).error_message(400, "bad_request");
        assert!(message.contains(code) && message.starts_with("reason holds"), "{what}: {message}");
        unchanged(&server, head, what);
    }
    // The rule is the ledger's, so it holds for every write, not only settings.
    let rollback = server.send_json(
        "POST",
        "/admin/config/rollback",
        Some(&admin),
        &json!({"to": "seq:1", "reason": "undo\u{1b}[1A"}),
    );
    rollback.error(400, "bad_request");
    unchanged(&server, head, "a rollback with ESC in its reason");

    // A reason of exactly 1 KB, and one on several lines, are kept.
    put(&"r".repeat(1024)).ok_json();
    server
        .send_json(
            "PUT",
            "/admin/config/MAX_WORKERS",
            Some(&admin),
            &json!({"value": 6, "reason": "two lines:\n\tthe why"}),
        )
        .ok_json();
    assert_eq!(server.head(), head + 2);
    let head = head + 2;

    // The CLI refuses the same, locally (exit 2, bad input) and through the server.
    let local = run(&store, &["config", "set", "MAX_WORKERS", "7", "--reason", "\u{1b}]0;owned\u{7}"]);
    assert_eq!(local.status.code(), Some(2), "{}", stderr(&local));
    assert!(
        stderr(&local).contains("reason holds the control or bidirectional character U+001B"),
        "{}",
        stderr(&local)
    );
    assert!(hidden(&stderr(&local)).is_empty(), "the error itself is escaped: {:?}", stderr(&local));
    let long = "r".repeat(2000);
    let remote = run(
        &store,
        &["--server", &server.url, "--token", &admin, "config", "set", "MAX_WORKERS", "7", "--reason", &long],
    );
    assert_eq!(remote.status.code(), Some(2), "{}", stderr(&remote));
    assert!(stderr(&remote).contains("at most 1024 bytes"), "{}", stderr(&remote));
    unchanged(&server, head, "the CLI's refused reasons");

    // Who made a change is shown beside the reason, so the actor's name is held to the same characters.
    // `Store::cmd` names its own actor; this command is the same but for the name.
    let out = std::process::Command::new(api_support::BIN)
        .current_dir(store.dir())
        .env_clear()
        .env("CFGLEDGER_CATALOG", cfgledger_events::testing::SUITE_CATALOG_PATH)
        .env("HOME", store.dir())
        .env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", api_support::ENCRYPTION_SECRET)
        .args([
            "--db",
            "sqlite://c.db",
            "--env-file",
            ".env",
            "--actor",
            "eve\u{1b}[8m",
            "config",
            "set",
            "MAX_WORKERS",
            "7",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the actor name holds the control or bidirectional character U+001B"),
        "{}",
        stderr(&out)
    );
    unchanged(&server, head, "an actor name with ESC");
}

#[test]
fn entity_names_and_tags_follow_the_documented_pattern() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();
    let tool = |name: &str, tags: Value| json!({"name": name, "url": "http://127.0.0.1:9/x", "integration_type": "REST", "request_type": "GET", "tags": tags});

    for (name, why) in [
        ("..", "is a path segment"),
        (".", "is a path segment"),
        ("../../etc/passwd", "holds '/'"),
        ("/", "holds '/'"),
        ("bell\u{7}", "U+0007"),
        ("nul\0", "U+0000"),
        ("\u{202e}gpj.exe", "U+202E"),
        (" padded", "begins or ends with a space"),
        ("", "is empty"),
    ] {
        let reply = server.send_json("POST", "/tools", Some(&admin), &tool(name, json!([])));
        let message = reply.error_message(422, "invalid_value");
        assert!(message.contains(why) && message.contains("a name is 1 to 255 characters"), "{name:?}: {message}");
        assert!(hidden(&message).is_empty(), "the message escapes the name: {message:?}");
        unchanged(&server, head, name);
    }
    let long = "n".repeat(256);
    server.send_json("POST", "/tools", Some(&admin), &tool(&long, json!([]))).error(422, "invalid_value");
    for tag in [json!("nul\u{0}"), json!({"id": "x", "label": "esc\u{1b}[31m"}), json!(""), json!("t".repeat(101))] {
        let message = server
            .send_json("POST", "/tools", Some(&admin), &tool("ok-name", json!([tag])))
            .error_message(422, "invalid_value");
        assert!(message.contains("a tag is 1 to 100 characters"), "{tag}: {message}");
    }
    let root = json!({"uri": "file:///srv/\u{202e}txt", "name": "r"});
    server.send_json("POST", "/roots", Some(&admin), &root).error(422, "invalid_value");
    unchanged(&server, head, "refused entities");

    // Names such as MCP Gateway's (dots, dashes, underscores, spaces inside, any script) are fine.
    for name in ["gw-basic.echo_text", "a..b", "Réglages système", "..."] {
        server
            .send_json(
                "POST",
                "/tools",
                Some(&admin),
                &tool(name, json!(["team-a", {"id": "x", "label": "auth-basic"}])),
            )
            .ok_json();
    }
    server.send_json("POST", "/roots", Some(&admin), &json!({"uri": "file:///srv/data", "name": "data"})).ok_json();
    assert_eq!(server.head(), head + 5);
}

#[test]
fn a_body_naming_a_key_twice_or_not_sent_as_json_is_refused() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    let twice = server.send("PUT", "/admin/config/MAX_WORKERS", Some(&admin), br#"{"value": 5, "value": 64}"#);
    let message = twice.error_message(400, "bad_request");
    assert!(message.contains("duplicate key \"value\""), "{message}");
    let nested = br#"{"name": "t", "url": "http://127.0.0.1:9/x", "integration_type": "REST", "request_type": "GET",
                      "headers": {"X-A": "1", "X-A": "2"}}"#;
    let message = server.send("POST", "/tools", Some(&admin), nested).error_message(400, "bad_request");
    assert!(message.contains("duplicate key \"X-A\""), "{message}");
    unchanged(&server, head, "duplicate keys");

    let body: &[u8] = br#"{"value": 5}"#;
    let with_type = |content_type: Option<&str>| {
        let req = server.request("PUT", "/admin/config/MAX_WORKERS", Some(&admin));
        // `perform` declares JSON unless the request says otherwise: "none" is an explicit empty type.
        perform(req.set("Content-Type", content_type.unwrap_or("")), Some(body))
    };
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("text/json"), None] {
        let message = with_type(content_type).error_message(415, "unsupported_media_type");
        assert!(message.contains("Content-Type: application/json"), "{content_type:?}: {message}");
    }
    unchanged(&server, head, "bodies not declared as JSON");
    with_type(Some("application/json; charset=utf-8")).ok_json();
    assert_eq!(server.head(), head + 1);

    // The CLI reads import documents as strictly.
    let doc = store.dir().join("twice.json");
    std::fs::write(&doc, r#"{"settings": {"MAX_WORKERS": 5, "MAX_WORKERS": 9}}"#).expect("write the document");
    let out = run(&store, &["config", "import", doc.to_str().expect("a path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("duplicate key \"MAX_WORKERS\""), "{}", stderr(&out));
    let out = run(&store, &["import", doc.to_str().expect("a path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("duplicate key"), "{}", stderr(&out));
    unchanged(&server, head + 1, "documents with duplicate keys");
}

#[test]
fn enums_are_stored_in_their_canonical_form_and_refuse_anything_else() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    for bad in ["debug\n", " info", "debug\u{0}", "verbose"] {
        let message = server.put("LOG_LEVEL", &admin, json!(bad)).error_message(422, "invalid_value");
        assert!(message.starts_with("key LOG_LEVEL expects one of trace, debug, info, warn, error; got"), "{message}");
        assert!(hidden(&message).is_empty(), "{message:?}");
    }
    unchanged(&server, head, "bad enum values");
    // MCP Gateway reads its log level in any case; the store keeps the catalog's spelling (the suite's
    // catalog spells it in lower case).
    assert_eq!(server.put("LOG_LEVEL", &admin, json!("DEBUG")).ok_json()["value"], "debug");
    let out = run(&store, &["config", "set", "LOG_LEVEL", "info "]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(server.head(), head + 1);
}

#[test]
fn file_path_settings_refuse_nul_newlines_and_escape_sequences() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    for bad in ["mcpgateway.log\0.txt", "gateway.log\nLOG_LEVEL=DEBUG", "\u{1b}[31mred.log", "gol\u{202e}.exe"] {
        let message = server.put("LOG_FILE", &admin, json!(bad)).error_message(422, "invalid_value");
        assert!(message.contains("a file path without control characters"), "{message}");
        unchanged(&server, head, bad);
    }
    let out = run(&store, &["config", "set", "LOG_FOLDER", "/var/log/\u{1b}[2J"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("key LOG_FOLDER expects"), "{}", stderr(&out));
    unchanged(&server, head, "the CLI's bad path");
    assert_eq!(
        server.put("LOG_FILE", &admin, json!("/var/log/mcp gateway.log")).ok_json()["value"],
        "/var/log/mcp gateway.log"
    );
}

#[test]
fn text_output_escapes_control_and_bidi_characters_in_values_and_reasons() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let before = server.head();
    let evil = "ok\u{1b}[2J\u{1b}[1A\0\u{7}\u{202e}txt.exe";
    server
        .send_json(
            "PUT",
            "/admin/config/APP_NAME",
            Some(&admin),
            &json!({"value": evil, "reason": "first line\n\u{9}second line"}),
        )
        .ok_json();
    let tool = json!({"name": "t1", "url": "http://127.0.0.1:9/x", "integration_type": "REST", "request_type": "GET",
                      "description": evil});
    server.send_json("POST", "/tools", Some(&admin), &tool).ok_json();
    let after = server.head();
    drop(server);

    let from = format!("seq:{before}");
    // A target as the source was before the change, so that the clone's dry run prints the change line by line.
    let target_url = format!("sqlite://{}", store.dir().join("d.db").display());
    let out = run(&store, &["clone", "--from", "sqlite://c.db", "--to", &target_url, "--until", &from]);
    assert!(out.status.success(), "{}", stderr(&out));
    let commands: Vec<Vec<&str>> = vec![
        vec!["audit"],
        vec!["config", "list"],
        vec!["diff", "--from", &from],
        vec!["rollback", "--to", &from, "--dry-run"],
        vec!["history", "APP_NAME"],
        vec!["clone", "--from", "sqlite://c.db", "--to", &target_url, "--dry-run"],
        vec!["log"],
    ];
    for args in commands {
        let out = run(&store, &args);
        let text = String::from_utf8(out.stdout.clone()).expect("utf-8 output");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(hidden(&text).is_empty(), "{args:?} printed {:?} raw:\n{text}", hidden(&text));
        assert!(hidden(&stderr(&out)).is_empty(), "{args:?} printed hidden characters on stderr");
        let shown = matches!(args[0], "audit" | "config" | "diff" | "rollback" | "history" | "clone");
        if shown {
            assert!(
                text.contains("ok\\u{1b}[2J\\u{1b}[1A\\u{0}\\u{7}\\u{202e}txt.exe"),
                "{args:?} shows the value escaped:\n{text}"
            );
        }
        if args[0] == "audit" {
            assert!(text.contains("first line\\n\\tsecond line"), "the reason is escaped:\n{text}");
        }
    }
    // JSON output is the encoder's, and decodes back to the very value.
    let out = run(&store, &["audit", "--output", "json"]);
    let page: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let text = page.to_string();
    assert!(text.contains(r"ok\u001b[2J"), "{text}");
    assert!(page["entries"].as_array().expect("entries").iter().any(|e| e["reason"] == "first line\n\tsecond line"));
    // What a program reads from a pipe is the value itself.
    let out = run(&store, &["config", "get", "APP_NAME", "--output", "text"]);
    assert_eq!(String::from_utf8(out.stdout).expect("utf-8").trim_end_matches('\n'), evil);
    assert_eq!(u64::try_from(store.log().len()).ok(), Some(after), "reading wrote nothing");
}

#[test]
fn text_logs_to_a_pipe_carry_no_escape_codes() {
    let store = Store::new("CFGLEDGER_LOG_FORMAT=text\nCFGLEDGER_LOG_LEVEL=debug");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    server.put("MAX_WORKERS", &admin, json!(5)).ok_json();
    // A refused write whose input holds ESC: what is logged about it must not carry the byte either.
    server.put("LOG_FILE", &admin, json!("\u{1b}[31mred.log")).error(422, "invalid_value");
    server.call("GET", "/admin/config/%1B%5B2J", Some(&admin));
    let lines = server.stderr();
    assert!(lines.iter().any(|l| l.contains("INFO") || l.contains("DEBUG")), "text log lines: {lines:?}");
    let raw: Vec<&String> = lines.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(raw.is_empty(), "escape codes in a log written to a pipe: {raw:?}");
}

#[test]
fn an_import_file_naming_an_entity_outside_the_pattern_is_refused_whole() {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let tool = json!({"name": "gw-basic-echo-text", "url": "http://127.0.0.1:9/x", "integration_type": "REST",
                      "request_type": "GET", "tags": ["team-a"]});
    server.send_json("POST", "/tools", Some(&admin), &tool).ok_json();
    let file = store.dir().join("export.json");
    let out = run(&store, &["export", "--types", "tools", "--out", file.to_str().expect("a path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).expect("the export");
    assert!(text.contains("gw-basic-echo-text"), "{text}");
    let head = server.head();

    // The same document with the tool renamed to a path, then with a tag holding NUL.
    for (from, to, why) in [
        ("\"gw-basic-echo-text\"", "\"../../etc/passwd\"", "holds '/'"),
        ("\"team-a\"", "\"team\\u0000a\"", "holds the control or bidirectional character U+0000"),
    ] {
        let edited = store.dir().join("edited.json");
        std::fs::write(&edited, text.replace(from, to)).expect("write the edited export");
        for remote in [false, true] {
            let mut args = vec!["import", "--allow-edited", edited.to_str().expect("a path")];
            if remote {
                args.splice(0..0, ["--server", server.url.as_str(), "--token", admin.as_str()]);
            }
            let out = run(&store, &args);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
            assert!(hidden(&stderr(&out)).is_empty(), "{:?}", stderr(&out));
            unchanged(&server, head, to);
        }
    }
}
