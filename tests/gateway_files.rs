//! MCP Gateway's export files as 1.1.0 (and 1.0.x) really write them, without a gateway: documents shaped
//! exactly like the ones a real 1.1.0 wrote when we filled it with every kind and auth type (tags as
//! `{"id", "label"}`, server links as slugs in a full export and database ids in a selective one, headers
//! masked as `*****`, `auth_value: null`, query-parameter credentials, sealed secret headers, `required` in
//! any order), imported into a real `cfgledger serve` over HTTP and through the CLI, and exported back in
//! the gateway's layout. `tests/gateway_transfer.rs` does the same against real gateways.

mod api_support;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use api_support::{Server, Store};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const ADMIN: &str = "platform_admin";
const GATEWAY_A: &str = "aE4$uV8wX1yZ2bC3dF5gH6jK7mN9pQ0r";
const GATEWAY_B: &str = "Bz9@tY7uI6oP5aS4dF3gH2jK1lZ0xC8v";

/// MCP Gateway's `encode_auth`: base64url(nonce || AES-256-GCM) under SHA-256 of the secret.
fn seal(secret: &str, plaintext: &Value) -> String {
    let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(secret.as_bytes())).expect("a key");
    let nonce: [u8; 12] = rand::random();
    let mut out = nonce.to_vec();
    out.extend(cipher.encrypt(Nonce::from_slice(&nonce), plaintext.to_string().as_bytes()).expect("sealed"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

/// MCP Gateway's `decode_auth`.
fn open(secret: &str, sealed: &str) -> Value {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sealed).expect("base64url");
    let cipher = Aes256Gcm::new_from_slice(&Sha256::digest(secret.as_bytes())).expect("a key");
    let plain = cipher.decrypt(Nonce::from_slice(&raw[..12]), &raw[12..]).expect("opens under this secret");
    serde_json::from_slice(&plain).expect("json")
}

fn tags(labels: &[&str]) -> Value {
    Value::Array(labels.iter().map(|l| json!({"id": l.to_lowercase(), "label": l})).collect())
}

/// A full export (`GET /export?include_inactive=true`) of gateway 1.1.0 as it writes it: tool credentials
/// `null`, every tool header masked, server links by slug, derived fields, and no OAuth or query-parameter
/// credentials at all.
fn full_export() -> Value {
    json!({
        "version": "2025-11-25",
        "exported_at": "2026-12-03T10:00:00Z",
        "exported_by": "admin@example.com",
        "source_gateway": "http://127.0.0.1:4444",
        "encryption_method": "AES-256-GCM",
        "entities": {
            "tools": [
                {"name": "weather_api", "displayName": "Weather", "url": "http://127.0.0.1:9/weather",
                 "integration_type": "REST", "request_type": "GET", "description": "weather",
                 "original_description": "weather", "headers": {"X-Tenant": "*****", "X-Api-Key": "*****"},
                 "input_schema": {"type": "object", "properties": {"q": {"type": "string"}, "d": {"type": "string"}},
                                  "required": ["q", "d"]},
                 "output_schema": null, "annotations": {"readOnlyHint": true}, "jsonpath_filter": "",
                 "tags": tags(&["team-a", "Rest"]), "rate_limit": null, "timeout": null, "is_active": true,
                 "created_at": "2026-12-01T00:00:00", "updated_at": "2026-12-01T00:00:00",
                 "auth_type": "basic", "auth_value": null},
                {"name": "rest-plain", "url": "http://127.0.0.1:9/plain", "integration_type": "REST",
                 "request_type": "GET", "headers": {}, "tags": tags(&["team-c"]), "is_active": false}
            ],
            "gateways": [
                {"name": "gw-bearer", "url": "http://localhost:7001/mcp", "transport": "STREAMABLEHTTP",
                 "capabilities": {"tools": {}}, "health_check": {"url": "http://localhost:7001/mcp/health",
                 "interval": 30, "timeout": 10, "retries": 3}, "is_active": true, "tags": tags(&["team-a"]),
                 "passthrough_headers": [], "auth_type": "bearer",
                 "auth_value": seal(GATEWAY_A, &json!({"Authorization": "Bearer gw-bearer-token-1"}))},
                {"name": "gw-oauth", "url": "http://localhost:7002/mcp", "transport": "STREAMABLEHTTP",
                 "is_active": true, "tags": [], "passthrough_headers": []}
            ],
            "servers": [
                {"name": "srv-main", "description": "main", "tool_ids": ["weather-api", "rest-plain"],
                 "sse_endpoint": "/servers/0a1b/sse", "websocket_endpoint": "/servers/0a1b/ws",
                 "jsonrpc_endpoint": "/servers/0a1b/jsonrpc",
                 "capabilities": {"tools": {"list_changed": true}, "prompts": {"list_changed": true}},
                 "is_active": true, "tags": tags(&["srv"])}
            ],
            "prompts": [
                {"name": "greet", "original_name": "greet", "custom_name": "greet", "display_name": "greet",
                 "template": "Hello {{ name }} from {{ place }}!", "description": "greeting",
                 "input_schema": {"type": "object", "properties": {
                     "name": {"type": "string", "description": "who"},
                     "place": {"type": "string", "description": "where"}}, "required": ["place", "name"]},
                 "tags": tags(&["team-a"]), "is_active": true}
            ],
            "resources": [
                {"name": "readme", "uri": "cfg://docs/readme", "description": "the readme", "mime_type": "text/plain",
                 "tags": ["docs"], "is_active": true, "last_modified": "2026-12-01T00:00:00"}
            ],
            "roots": [{"uri": "file:///srv/data", "name": "data"}]
        },
        "metadata": {
            "entity_counts": {"tools": 2, "gateways": 2, "servers": 1, "prompts": 1, "resources": 1, "roots": 1},
            "dependencies": {"servers_to_tools": {"srv-main": ["weather-api", "rest-plain"]},
                             "servers_to_resources": {}, "servers_to_prompts": {}},
            "export_options": {"include_inactive": true, "include_dependencies": true}
        }
    })
}

/// The same tool and server in a selective export (`POST /export/selective`): the stored credentials, the
/// secret header in the gateway's sealed form, server links by database id, and a query-parameter gateway.
fn selective_export() -> Value {
    json!({
        "version": "2025-11-25",
        "exported_at": "2026-12-03T10:05:00Z",
        "exported_by": "admin@example.com",
        "source_gateway": "http://127.0.0.1:4444",
        "encryption_method": "AES-256-GCM",
        "entities": {
            "tools": [
                {"name": "weather_api", "displayName": "Weather", "url": "http://127.0.0.1:9/weather",
                 "integration_type": "REST", "request_type": "GET", "description": "weather",
                 "headers": {"X-Tenant": "acme",
                             "X-Api-Key": {"_mcpgateway_encrypted_header_value_v1":
                                           seal(GATEWAY_A, &json!({"data": "hdr-secret-1"}))}},
                 "input_schema": {"type": "object", "properties": {"q": {"type": "string"}, "d": {"type": "string"}},
                                  "required": ["d", "q"]},
                 "output_schema": null, "annotations": {"readOnlyHint": true}, "jsonpath_filter": "",
                 "tags": tags(&["team-a", "Rest"]), "is_active": true,
                 "auth_type": "basic",
                 "auth_value": seal(GATEWAY_A, &json!({"Authorization": "Basic dG9vbHVzZXI6dG9vbC1wYXNz"}))}
            ],
            "gateways": [
                {"name": "gw-query", "url": "http://localhost:7003/mcp", "transport": "STREAMABLEHTTP",
                 "is_active": true, "tags": [], "passthrough_headers": [], "auth_type": "query_param",
                 "auth_query_params": {"api_key": seal(GATEWAY_A, &json!({"api_key": "gw-query-key-1"}))}},
                {"name": "gw-oauth", "url": "http://localhost:7002/mcp", "transport": "STREAMABLEHTTP",
                 "is_active": true, "tags": [], "passthrough_headers": [], "auth_type": "oauth"}
            ],
            "servers": [
                {"name": "srv-main", "description": "main", "tool_ids": ["410a348e9c", "b4915460aa"],
                 "is_active": true, "tags": tags(&["srv"])}
            ]
        },
        "metadata": {"entity_counts": {}, "dependencies": {}, "export_options": {"selective": true}}
    })
}

/// `cfgledger export` in MCP Gateway's layout under gateway B's secret (`GW_B`), to standard output.
const FOR_B: [&str; 7] = ["export", "--format", "mcpgateway", "--target-secret-env", "GW_B", "--out", "-"];
/// The same with the inactive entities.
const FOR_B_WITH_INACTIVE: [&str; 8] =
    ["export", "--format", "mcpgateway", "--target-secret-env", "GW_B", "--include-inactive", "--out", "-"];

/// A fresh store, an admin's token and its server.
fn served() -> (Store, String, Server) {
    let store = Store::new("");
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    (store, admin, server)
}

fn import(server: &Server, token: &str, body: Value) -> Value {
    server.send_json("POST", "/import", Some(token), &body).ok_json()
}

fn notes(plan: &Value, kind: &str, name: &str) -> String {
    plan["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .find(|e| e["kind"] == kind && e["name"] == name)
        .map(|e| e["notes"].to_string())
        .unwrap_or_default()
}

#[test]
fn a_real_full_and_selective_export_import_with_nothing_lost_and_every_loss_named() {
    let store = Store::with_process_env("", &[("GW_B", GATEWAY_B)]);
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    let head = server.head();

    // Without the gateway's secret, nothing is written, and the message names the API's field.
    let refused = server.send_json("POST", "/import", Some(&admin), &json!({"import_data": full_export()}));
    let msg = refused.error_message(422, "invalid_value");
    assert!(msg.contains("gateways/gw-bearer") && msg.contains("with source_secret"), "{msg}");
    assert_eq!(server.head(), head);

    // The full export: every entity, tags as labels, server links resolved from the slug, losses noted.
    let full = json!({"import_data": full_export(), "source_secret": GATEWAY_A});
    let plan = import(
        &server,
        &admin,
        json!({"import_data": full["import_data"], "source_secret": GATEWAY_A, "dry_run": true}),
    );
    assert_eq!(plan["layout"], "mcpgateway");
    assert_eq!(plan["counts"]["create"], 8, "{plan}");
    let tool_notes = notes(&plan, "tools", "weather_api");
    assert!(
        tool_notes.contains("header X-Tenant is masked in the file and the store has no value for it: left out"),
        "{tool_notes}"
    );
    assert!(tool_notes.contains("credential not in file (auth_type basic): imported without it"), "{tool_notes}");
    let applied = import(&server, &admin, full.clone());
    assert_eq!(applied["status"], "completed", "{applied}");
    assert_eq!(applied["rekeyed"], 1, "gw-bearer's credential opened with the gateway's secret");

    let tool = server.get("/tools/weather_api", &admin).ok_json();
    assert_eq!(tool["tags"], json!(["team-a", "Rest"]));
    assert_eq!(tool["input_schema"]["required"], json!(["d", "q"]), "required is a set, kept sorted");
    assert_eq!(tool["headers"], json!({}), "masked headers are not stored as *****");
    let srv = server.get("/servers/srv-main", &admin).ok_json();
    assert_eq!(srv["associated_tools"], json!(["rest-plain", "weather_api"]), "{srv}"); // a set, in name order
    assert!(srv.get("tool_ids").is_none() && srv.get("sse_endpoint").is_none(), "{srv}");
    assert_eq!(server.get("/tools/rest-plain", &admin).ok_json()["is_active"], false);
    // The links are references now: deleting a linked tool is refused.
    server.send_json("DELETE", "/tools/weather_api", Some(&admin), &Value::Null).error(409, "conflict");

    // The same file again plans nothing and appends nothing, although `required` came in another order.
    let after = server.head();
    let mut reordered = full_export();
    reordered["entities"]["prompts"][0]["input_schema"]["required"] = json!(["name", "place"]);
    let again = import(&server, &admin, json!({"import_data": reordered, "source_secret": GATEWAY_A}));
    assert_eq!(again["status"], "nothing_to_do", "{again}");
    assert_eq!(again["counts"]["unchanged"], 8);
    assert_eq!(server.head(), after, "importing twice appends nothing");

    // The selective export fills in what the full one could not carry: the tool's credentials and its real
    // headers (the secret one sealed), and the query-parameter gateway. Its server links are database ids:
    // they name nothing here, so the stored links stay, and the plan says so.
    let selective = import(&server, &admin, json!({"import_data": selective_export(), "source_secret": GATEWAY_A}));
    assert_eq!(selective["status"], "completed", "{selective}");
    assert_eq!(selective["rekeyed"], 3, "auth_value, the sealed header and the query parameter");
    let srv_notes = notes(&selective, "servers", "srv-main");
    assert!(
        srv_notes.contains(r#"tool_ids entry \"410a348e9c\" names no entity in the file or the store"#),
        "{srv_notes}"
    );
    assert!(srv_notes.contains("the store's links are kept"), "{srv_notes}");
    assert!(notes(&selective, "gateways", "gw-oauth").contains("credential not in file (auth_type oauth)"));
    let srv = server.get("/servers/srv-main", &admin).ok_json();
    assert_eq!(srv["associated_tools"], json!(["rest-plain", "weather_api"]));
    let tool = server.get("/tools/weather_api", &admin).ok_json();
    assert_eq!(tool["headers"]["X-Tenant"], "acme");
    assert!(tool["headers"]["X-Api-Key"]["cfgledger_sealed"].is_string(), "{tool}");
    assert!(tool["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl2:")));

    // The full export again (update): its masked headers keep the stored values, its null credential keeps
    // the stored one. Nothing is lost to "*****".
    let third = import(&server, &admin, full);
    let tool_notes = notes(&third, "tools", "weather_api");
    assert!(tool_notes.contains("header X-Tenant is masked in the file: the stored value is kept"), "{tool_notes}");
    assert!(tool_notes.contains("credential not in file (auth_type basic): the stored one is kept"), "{tool_notes}");
    let tool = server.get("/tools/weather_api", &admin).ok_json();
    assert_eq!(tool["headers"]["X-Tenant"], "acme");
    assert!(tool["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl2:")));

    // No secret in the log, in plaintext or under the gateway's key.
    let bytes = String::from_utf8_lossy(&store.database_bytes()).to_string();
    for secret in [
        "hdr-secret-1",
        "gw-query-key-1",
        "gw-bearer-token-1",
        "dG9vbHVzZXI6dG9vbC1wYXNz",
        "tool-pass",
        "_mcpgateway_encrypted",
    ] {
        assert!(!bytes.contains(secret), "{secret} in the database");
    }

    // Back in the gateway's layout, under gateway B's secret: what B's /import reads.
    let out = store.ok(&FOR_B_WITH_INACTIVE);
    let doc: Value = serde_json::from_str(&out).expect("the export is JSON");
    assert_eq!(doc["version"], "2025-11-25");
    for secret in ["hdr-secret-1", "gw-query-key-1", "gw-bearer-token-1", "tool-pass", "dG9vbHVzZXI6dG9vbC1wYXNz"] {
        assert!(!out.contains(secret), "{secret} in plaintext in the export");
    }
    let by_name = |kind: &str, name: &str| -> Map<String, Value> {
        doc["entities"][kind]
            .as_array()
            .expect("a list")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| panic!("{kind}/{name} in {doc}"))
    };
    let tool = by_name("tools", "weather_api");
    assert_eq!(tool["tags"], json!([{"id": "team-a", "label": "team-a"}, {"id": "rest", "label": "Rest"}]));
    assert_eq!(tool["headers"], json!({"X-Tenant": "acme"}), "the secret header left the plain headers");
    assert_eq!(
        open(GATEWAY_B, tool["auth_value"].as_str().expect("sealed")),
        json!({"Authorization": "Basic dG9vbHVzZXI6dG9vbC1wYXNz", "X-Api-Key": "hdr-secret-1"}),
        "basic auth and the secret header, sealed under B's secret"
    );
    let query = by_name("gateways", "gw-query");
    assert_eq!(query["auth_type"], "query_param");
    assert_eq!(
        open(GATEWAY_B, query["auth_query_params"]["api_key"].as_str().expect("sealed")),
        json!({"api_key": "gw-query-key-1"})
    );
    let bearer = by_name("gateways", "gw-bearer");
    assert_eq!(
        open(GATEWAY_B, bearer["auth_value"].as_str().expect("sealed")),
        json!({"Authorization": "Bearer gw-bearer-token-1"})
    );
    let srv = by_name("servers", "srv-main");
    assert_eq!(srv["tool_ids"], json!(["rest-plain", "weather_api"]), "by the names the gateway resolves");
    assert_eq!(doc["metadata"]["dependencies"]["servers_to_tools"]["srv-main"], json!(["rest-plain", "weather_api"]));
    let warnings = doc["metadata"]["warnings"].to_string();
    assert!(warnings.contains("tools/rest-plain is inactive here and arrives active"), "{warnings}");
    assert!(warnings.contains("secret header(s) X-Api-Key travel sealed in its auth headers"), "{warnings}");
    // That file, read back into a fresh store with B's secret, holds everything it held: the secret header
    // travelled in the sealed auth headers and is not lost on the way back.
    let back = Store::with_process_env("", &[("GW_B", GATEWAY_B)]);
    std::fs::write(back.dir().join("for-b.json"), &out).expect("write");
    let plan = back.ok(&["import", "for-b.json", "--source-secret-env", "GW_B"]);
    assert!(plan.contains("plan: 9 create"), "{plan}");
    let again = back.ok(&FOR_B_WITH_INACTIVE);
    let again: Value = serde_json::from_str(&again).expect("json");
    let weather =
        again["entities"]["tools"].as_array().expect("tools").iter().find(|t| t["name"] == "weather_api").cloned();
    let weather = weather.expect("weather_api");
    assert_eq!(
        open(GATEWAY_B, weather["auth_value"].as_str().expect("sealed")),
        json!({"Authorization": "Basic dG9vbHVzZXI6dG9vbC1wYXNz", "X-Api-Key": "hdr-secret-1"}),
        "nothing lost on the way back"
    );
    // Without --include-inactive the inactive tool stays behind; the server that links it brings it along,
    // and says so.
    let out = store.ok(&FOR_B);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert!(
        doc["metadata"]["warnings"]
            .to_string()
            .contains("tools/rest-plain brought along although inactive: servers/srv-main links it"),
        "{doc}"
    );
    // The CLI says it on stderr, keeping stdout for the document.
    let run = store.cmd().args(FOR_B).output().expect("runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("warning: tools/rest-plain brought along although inactive"), "{stderr}");
    serde_json::from_slice::<Value>(&run.stdout).expect("stdout is the document alone");
}

#[test]
fn prompts_leave_in_the_gateways_input_schema_and_unresolvable_links_are_reported() {
    let (store, admin, server) = served();
    let post = |kind: &str, body: Value| server.send_json("POST", &format!("/{kind}"), Some(&admin), &body).ok_json();
    post(
        "prompts",
        json!({"name": "summarize", "template": "{{text}}", "arguments": [
        {"name": "text", "description": "what to summarize", "required": true},
        {"name": "tone", "required": false}]}),
    );
    post("tools", json!({"name": "t", "url": "https://x/t", "tags": ["ok!", "machine learning"]}));
    post("servers", json!({"name": "s", "associated_tools": ["t"], "associated_prompts": ["summarize"]}));
    let out = store.ok(&["export", "--format", "mcpgateway", "--out", "-"]);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        doc["entities"]["prompts"][0]["input_schema"],
        json!({"type": "object", "properties": {
            "text": {"type": "string", "description": "what to summarize"},
            "tone": {"type": "string", "description": ""}}, "required": ["text"]})
    );
    assert!(doc["entities"]["prompts"][0].get("arguments").is_none());
    let warnings = doc["metadata"]["warnings"].to_string();
    assert!(warnings.contains("servers/s: MCP Gateway's import does not link a server's prompts"), "{warnings}");
    assert!(warnings.contains(r#"MCP Gateway drops the tag \"ok!\""#), "{warnings}");
    assert!(!warnings.contains("machine learning"), "the gateway keeps it as machine-learning: {warnings}");
    assert_eq!(doc["metadata"]["dependencies"]["servers_to_prompts"]["s"], json!(["summarize"]));

    // A 1.0.x file: tags as strings, links in associated_tools, one of them unknown. The unknown link is
    // left out and named in the plan; the file still imports.
    let target = Store::new("");
    let admin_t = target.token("bo", ADMIN);
    let t = target.serve(&[]);
    let old = json!({"version": "2025-03-26", "exported_at": "x", "exported_by": "a", "source_gateway": "gw",
        "encryption_method": "AES-256-GCM", "entities": {
            "tools": [{"name": "Weather Tool", "url": "https://w/x", "integration_type": "REST", "tags": ["prod"]}],
            "servers": [{"name": "s", "associated_tools": ["weather-tool", "ghost"], "tags": ["prod"]}]}});
    let plan = import(&t, &admin_t, json!({"import_data": old}));
    assert_eq!(plan["counts"]["create"], 2, "{plan}");
    assert!(notes(&plan, "servers", "s").contains(r#"associated_tools entry \"ghost\" names no entity in the file or the store (a gateway database id?): the link to it is left out"#), "{plan}");
    assert_eq!(t.get("/servers/s", &admin_t).ok_json()["associated_tools"], json!(["Weather Tool"]));
    // A rename follows the links: the renamed tool's server points at the new name.
    let mut changed = old.clone();
    changed["entities"]["tools"][0]["description"] = json!("changed");
    changed["entities"]["servers"][0]["description"] = json!("changed");
    let renamed = import(&t, &admin_t, json!({"import_data": changed, "conflict_strategy": "rename"}));
    assert_eq!(renamed["counts"]["rename"], 2, "{renamed}");
    assert_eq!(t.get("/servers/s_imported", &admin_t).ok_json()["associated_tools"], json!(["Weather Tool_imported"]));
}

#[test]
fn the_cli_names_its_own_options_and_metrics_count_imports_and_exports() {
    let store = Store::with_process_env("", &[("GW_A", GATEWAY_A)]);
    std::fs::write(store.dir().join("gw.json"), full_export().to_string()).expect("write");
    let refused = store.cmd().args(["import", "gw.json"]).output().expect("runs");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("with --source-secret-env VAR") && !stderr.contains("source_secret"), "{stderr}");
    let out = store.ok(&["import", "gw.json", "--source-secret-env", "GW_A", "--dry-run"]);
    assert!(out.contains("note: header X-Tenant is masked in the file"), "{out}");
    assert!(out.contains("plan: 8 create"), "{out}");

    // Over HTTP, /metrics counts them by layout and outcome, with durations and entities.
    let admin = store.token("ada", ADMIN);
    let server = store.serve(&[]);
    import(
        &server,
        &admin,
        json!({"import_data": full_export(), "source_secret": GATEWAY_A, "conflict_strategy": "update"}),
    );
    server.get("/export?format=mcpgateway", &admin).ok_json();
    let metrics = server.call("GET", "/metrics", None).body;
    for line in [
        r#"cfgledger_imports_total{layout="mcpgateway",outcome="applied"} 1"#,
        r#"cfgledger_import_entities_total{layout="mcpgateway",kind="tools",action="create"} 2"#,
        r#"cfgledger_credentials_rekeyed_total{direction="import",layout="mcpgateway"} 1"#,
        r#"cfgledger_exports_total{layout="mcpgateway",outcome="ok"} 1"#,
        r#"cfgledger_export_entities_total{layout="mcpgateway",kind="tools"} 2"#,
        "cfgledger_import_duration_seconds_count{layout=\"mcpgateway\"} 1",
        "cfgledger_export_duration_seconds_count{layout=\"mcpgateway\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    // One structured log line per import and export, with no secret in it (read on another thread: wait).
    api_support::eventually("both are logged", || {
        server.logged(|l| l.contains("import finished")) && server.logged(|l| l.contains("export finished"))
    });
    let log = server.stderr().join("\n");
    assert!(!log.contains("gw-bearer-token-1"));
}

/// An OAuth client secret as the real gateway seals it (`v2:`, Argon2id and Fernet; this bundle was written by
/// 1.1.0's `EncryptionService` under the secret below) is opened with the source's secret and sealed again
/// under the store's key: nothing stays under the gateway's key, and a wrong secret imports nothing.
#[test]
fn an_oauth_secret_sealed_by_the_gateway_is_sealed_again_under_the_stores_key() {
    let source = "test-gateway-secret-for-v2-bundles-0123";
    let bundle = r#"v2:{"version":"v2","kdf":"argon2id","t":2,"m":8192,"p":1,"salt":"6u6q/xn0CkpClbFWFDlmqQ==","token":"gAAAAABrEbgYbkTx_J01erI3tx329WBRc6rEpZLZk-1SXT6MafYjVgRW0Ed9I-SGQXtyApRz--UNXzk0v0pXzcYZKNgBf1FBxjUQfd99Oft6NPdjkODptFI="}"#;
    let file = json!({"version": "2025-11-25", "exported_at": "x", "exported_by": "a", "source_gateway": "gw",
        "encryption_method": "AES-256-GCM", "entities": {"gateways": [
            {"name": "gw-oauth", "url": "https://o.example/mcp", "auth_type": "oauth",
             "oauth_config": {"grant_type": "client_credentials", "client_id": "cid", "client_secret": bundle,
                              "token_url": "https://o.example/token"}}]}});
    let (store, admin, server) = served();
    let head = server.head();
    let wrong =
        server.send_json("POST", "/import", Some(&admin), &json!({"import_data": file, "source_secret": "nope"}));
    assert!(wrong
        .error_message(422, "invalid_value")
        .contains("cannot decrypt oauth_config.client_secret of gateways/gw-oauth"));
    assert_eq!(server.head(), head, "nothing written");
    let applied = import(&server, &admin, json!({"import_data": file, "source_secret": source}));
    assert_eq!((applied["status"].as_str(), applied["rekeyed"].as_u64()), (Some("completed"), Some(1)), "{applied}");
    let gw = server.get("/gateways/gw-oauth", &admin).ok_json();
    assert_eq!(
        gw["oauth_config"],
        json!({"grant_type": "client_credentials", "client_id": "cid", "token_url": "https://o.example/token"})
    );
    assert!(gw["auth_value"].as_str().is_some_and(|v| v.starts_with("cfgl2:")), "{gw}");
    let bytes = String::from_utf8_lossy(&store.database_bytes()).to_string();
    assert!(
        !bytes.contains("oauth-client-secret-1") && !bytes.contains("gAAAAABrEbgY"),
        "nothing plain or under the gateway's key"
    );
}

/// A server's link in a gateway's file is about the file: when the store holds another tool whose exact name
/// is the file tool's slug, the link still goes to the file's tool.
#[test]
fn a_link_names_the_files_own_tool_before_one_the_store_holds() {
    let (_store, admin, server) = served();
    server
        .send_json("POST", "/tools", Some(&admin), &json!({"name": "weather-api", "url": "https://other/x"}))
        .ok_json();
    let file = json!({"version": "2025-11-25", "exported_at": "x", "exported_by": "a", "source_gateway": "gw",
        "encryption_method": "AES-256-GCM", "entities": {
            "tools": [{"name": "weather_api", "url": "https://w/x", "integration_type": "REST"}],
            "servers": [{"name": "s", "tool_ids": ["weather-api"]}]}});
    let applied = import(&server, &admin, json!({"import_data": file}));
    assert_eq!(applied["status"], "completed", "{applied}");
    assert_eq!(server.get("/servers/s", &admin).ok_json()["associated_tools"], json!(["weather_api"]));
}

/// A value given in the wrong shape is named, never echoed: it may be a secret.
#[test]
fn a_refused_entity_never_echoes_a_value_that_may_be_secret() {
    let (_store, admin, server) = served();
    let file = json!({"entities": {"tools": [{"name": "t", "url": "https://t/x",
        "headers": [{"key": "Authorization", "value": "Bearer SUPERSECRET-123"}],
        "oauth_config": "client_secret=ALSO-SECRET-456"}]}});
    let refused = server.send_json("POST", "/import", Some(&admin), &json!({"import_data": file}));
    let msg = refused.error_message(422, "invalid_value");
    assert!(msg.contains("field headers expects a JSON object; got a list"), "{msg}");
    let direct = server.send_json(
        "POST",
        "/tools",
        Some(&admin),
        &json!({"name": "u", "oauth_config": "client_secret=ALSO-SECRET-456"}),
    );
    assert!(direct.error_message(422, "invalid_value").contains("got a string"));
    // The log line is written as the answer goes out, and read on another thread: wait for it.
    api_support::eventually("the refusal is logged", || server.logged(|l| l.contains("import refused")));
    let log = server.stderr().join("\n");
    for secret in ["SUPERSECRET-123", "ALSO-SECRET-456"] {
        assert!(
            !refused.body.contains(secret) && !direct.body.contains(secret) && !log.contains(secret),
            "{secret} echoed"
        );
    }
}
