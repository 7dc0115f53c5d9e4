//! `/openapi.json`: the OpenAPI 3.1 description of every endpoint, generated from the typed model
//! (`crate::model`, `utoipa::ToSchema`) and the handlers' `#[utoipa::path]` annotations. The answers that follow
//! from an operation's shape (401, 500, 503; 400 for a query; 400, 408, 413, 415 for a body; 403 for a write) are
//! added here once (`CommonErrors`). Unit tests check that the document lists exactly the router's routes,
//! that each documented operation reaches a handler, and that every status a route answers to five kinds of
//! request is documented with its content type.

use super::resources::ResourcePaths;
use super::AppState;
use crate::error::ErrorCode;
use crate::model::{Deleted, Entity, EntityList, ErrorBody, ErrorDetail};
use axum::extract::State;
use axum::Json;
use cfgledger_events::catalog::Catalog;
use serde_json::Value;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

/// This document, for this server's store.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(spec_for(state.ledger.catalog()))
}

/// The operations whose `namespace` names exactly one namespace; every other one also takes `*` (all).
const ONE_NAMESPACE: &[&str] = &["/admin/config/{key}", "/admin/config/render"];

/// The audit trail's `namespace` is a filter over the whole log, which may name a namespace the catalog no
/// longer has: any text.
const ANY_NAMESPACE: &[&str] = &["/admin/config/audit"];

/// The document for a store: the namespaces of its catalog are the values every `namespace` query
/// parameter and request field takes, and its categories those of `category` (a catalog file can add both,
/// so the generated part cannot list them).
pub fn spec_for(catalog: &Catalog) -> Value {
    let mut doc = generated();
    let names: Vec<&str> = catalog.namespaces().iter().map(|n| n.name.as_str()).collect();
    let with_all: Vec<&str> = names.iter().copied().chain(["*"]).collect();
    let mut categories: Vec<&str> = catalog.specs().iter().map(|s| s.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    for (path, item) in doc.paths.paths.iter_mut() {
        let allowed = match path.as_str() {
            p if ANY_NAMESPACE.contains(&p) => None,
            p if ONE_NAMESPACE.contains(&p) => Some(&names),
            _ => Some(&with_all),
        };
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in ops.into_iter().flatten() {
            for param in op.parameters.iter_mut().flatten() {
                if !matches!(param.parameter_in, ParameterIn::Query) {
                    continue;
                }
                match (param.name.as_str(), allowed) {
                    ("namespace", Some(allowed)) => param.schema = Some(one_of(allowed).into()),
                    // Every category of every namespace: which one a namespace has is the server's to say.
                    ("category", _) => param.schema = Some(one_of(&categories).into()),
                    _ => {}
                }
            }
        }
    }
    let nullable = OneOfBuilder::new().item(ObjectBuilder::new().schema_type(Type::Null)).item(one_of(&with_all));
    set_property(&mut doc, "RollbackBody", "namespace", nullable.into());
    set_property(&mut doc, "InstanceReport", "namespace", one_of(&names).into());
    finish(doc)
}

/// A string that is one of `words`.
fn one_of(words: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(words.iter().copied())).build()
}

/// Replaces the schema of `field` in the component `schema`, when both exist.
fn set_property(doc: &mut Document, schema: &str, field: &str, to: RefOr<Schema>) {
    let component = doc.components.as_mut().and_then(|c| c.schemas.get_mut(schema));
    if let Some(RefOr::T(Schema::Object(object))) = component {
        if let Some(property) = object.properties.get_mut(field) {
            *property = to;
        }
    }
}

/// The generated part of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cfgledger admin API",
        description = "Event-sourced configuration store. Every change is appended to a hash-chained log; sensitive values are never returned."
    ),
    paths(
        document,
        super::health::health,
        super::health::ready,
        super::metrics::render,
        super::login::login,
        super::instances::list,
        super::instances::heartbeat,
        super::watch::watch,
        super::config::list,
        super::config::get,
        super::config::put,
        super::config::delete,
        super::settings_transfer::export,
        super::settings_transfer::import,
        super::render::render,
        super::audit::audit,
        super::history::setting_history,
        super::history::diff,
        super::history::rollback,
        super::history::revert,
        super::history::verify,
        super::registry_transfer::export,
        super::registry_transfer::selective,
        super::registry_transfer::import,
        super::registry_transfer::statuses,
        super::registry_transfer::status,
        super::governance::list,
        super::governance::propose,
        super::governance::get,
        super::governance::edit,
        super::governance::approve,
        super::governance::reject,
        super::governance::withdraw,
        super::governance::policy,
        super::rollouts::start,
        super::rollouts::list,
        super::rollouts::status,
        super::rollouts::advance,
        super::rollouts::rollback,
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, Entity, EntityList, Deleted, crate::model::WatchProgress, crate::model::ChangeEvent)),
    // The resource routes first, so that the common errors are added to them too.
    modifiers(&ResourcePaths, &CommonErrors),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The answers that follow from an operation's shape, added here once instead of at every annotation (the
/// contract test checks each is really answered where it is listed, and that nothing else is):
/// - every operation: 500 and 503; 401 where a token is needed (an empty `security` list needs none);
/// - a query string: 400 for an unknown or malformed field;
/// - a request body: 400 (malformed, a duplicate key, a reason over 1 KB), 408 (too slow to arrive), 413 (over
///   `REQUEST_SIZE_LIMIT`), 415 (not `application/json`);
/// - a POST, PUT, PATCH or DELETE that needs a token: 403 for too small a role.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let get = item.get.as_mut().map(|op| (false, op));
            let writes = [item.put.as_mut(), item.post.as_mut(), item.delete.as_mut(), item.patch.as_mut()];
            for (write, op) in get.into_iter().chain(writes.into_iter().flatten().map(|op| (true, op))) {
                let public = op.security.as_ref().is_some_and(|s| s.is_empty());
                let queried = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let r = &mut op.responses;
                if queried {
                    add_error(r, "400", "an unknown or malformed query field");
                }
                if op.request_body.is_some() {
                    add_error(r, "400", "a malformed body, a JSON object with a duplicate key, or a reason over 1 KB");
                    add_error(r, "408", "the request body took too long to arrive");
                    add_error(r, "413", "a body larger than REQUEST_SIZE_LIMIT");
                    add_error(r, "415", "a Content-Type other than application/json");
                }
                if !public {
                    add_error(r, "401", "no token, or a bad or expired one (WWW-Authenticate: Bearer)");
                    if write {
                        add_error(r, "403", "the token's role may not do this");
                    }
                }
                add_error(r, "500", "an internal failure; the server's log has the cause");
                add_error(r, "503", "the store is unavailable or the request took too long (Retry-After)");
            }
        }
    }
}

/// Adds an error answer with the one error shape, unless the operation documents that status itself.
pub(crate) fn add_error(responses: &mut Responses, status: &str, description: &str) {
    responses.responses.entry(status.to_string()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    });
}

/// utoipa describes a `u64` as `int64` with a minimum of 0 (and a `u32` as `int32`), whose maximum is half
/// what the server parses: every such schema gets its type's real maximum instead of the signed format.
fn unsigned(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let non_negative = map.get("minimum").and_then(Value::as_u64) == Some(0);
            let max = match map.get("format").and_then(Value::as_str) {
                Some("int64") if non_negative => Some(u64::MAX),
                Some("int32") if non_negative => Some(u64::from(u32::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                map.remove("format");
                map.insert("maximum".into(), Value::from(max));
            }
            map.values_mut().for_each(unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(unsigned),
        _ => {}
    }
}

/// The whole document without what depends on a store (`spec_for`), for the tests of what is generated.
#[cfg(test)]
pub(crate) fn spec() -> Value {
    finish(generated())
}

/// The generated document, with what utoipa cannot say from the types added.
fn generated() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    // A selection names entities by kind: its keys are kinds (utoipa describes a map's keys as any text).
    let kinds: Vec<String> = cfgledger_events::ResourceKind::ALL.iter().map(ToString::to_string).collect();
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    let selection = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("names by kind: {\"tools\": [\"a\", \"b\"], \"servers\": [\"s\"]}"))
        .property_names(Some(one_of(&kinds)))
        .additional_properties(Some(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String))))
        .build();
    let body = doc.paths.paths.get_mut("/export/selective").and_then(|item| item.post.as_mut());
    let content = body.and_then(|op| op.request_body.as_mut()).and_then(|b| b.content.get_mut("application/json"));
    if let Some(content) = content {
        content.schema = Some(selection.clone().into());
    }
    let nullable = OneOfBuilder::new().item(ObjectBuilder::new().schema_type(Type::Null)).item(selection);
    set_property(&mut doc, "ImportBody", "selected_entities", nullable.into());
    doc
}

/// The document as JSON, with unsigned integers given their real maximum.
fn finish(doc: Document) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    unsigned(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{router, AppState, AuthConfig, WriteLimiter};
    use crate::auth::TokenKeys;
    use crate::ledger::{EnvFileChoice, Ledger, OpenOptions};
    use crate::store::StoreUrl;
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use std::sync::Arc;
    use std::time::Duration;
    use tower::ServiceExt;

    /// Every route the router serves. Adding a route means adding it here and to the document.
    const ROUTES: &[&str] = &[
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/auth/login",
        "/admin/config",
        "/admin/config/{key}",
        "/admin/config/export",
        "/admin/config/render",
        "/admin/config/import",
        "/admin/config/audit",
        "/admin/config/{key}/history",
        "/admin/config/diff",
        "/admin/config/rollback",
        "/admin/config/revert",
        "/admin/verify",
        "/admin/config/watch",
        "/admin/instances",
        "/admin/instances/heartbeat",
        "/export",
        "/export/selective",
        "/import",
        "/import/status",
        "/import/status/{id}",
        "/admin/rollouts",
        "/admin/rollouts/{id}",
        "/admin/rollouts/{id}/advance",
        "/admin/rollouts/{id}/rollback",
        "/gateways",
        "/gateways/{name}",
        "/gateways/{name}/history",
        "/servers",
        "/servers/{name}",
        "/servers/{name}/history",
        "/tools",
        "/tools/{name}",
        "/tools/{name}/history",
        "/prompts",
        "/prompts/{name}",
        "/prompts/{name}/history",
        "/resources",
        "/resources/{name}",
        "/resources/{name}/history",
        "/roots",
        "/roots/{name}",
        "/roots/{name}/history",
        "/admin/requests",
        "/admin/requests/{id}",
        "/admin/requests/{id}/approve",
        "/admin/requests/{id}/reject",
        "/admin/requests/{id}/withdraw",
        "/admin/policy",
    ];

    fn state() -> AppState {
        let mut opts = OpenOptions::new(StoreUrl::Memory, cfgledger_events::builtin::builtin());
        opts.env_file = EnvFileChoice::None;
        opts.process_env =
            [("CFGLEDGER_AUTH_ENCRYPTION_SECRET".to_string(), "openapi-test-secret-0123".to_string())].into();
        let (ledger, _) = Ledger::open(opts).expect("a memory store opens");
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "HS256").expect("keys");
        let beats = crate::instance::BeatRecorder::start(ledger.store().clone());
        AppState::new(crate::api::Shared {
            ledger,
            auth: Arc::new(AuthConfig {
                keys,
                ring: Default::default(),
                required: true,
                token_ttl_secs: 60,
                revoked: Default::default(),
            }),
            limiter: Arc::new(WriteLimiter::new()),
            login_limits: Arc::default(),
            metrics: None,
            closing: tokio::sync::watch::channel(false).1,
            sse_keepalive: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            instance: Arc::new(crate::instance::Instance::new("test".into(), cfgledger_events::Timestamp(0))),
            watch_hub: Arc::new(crate::api::watch_hub::Hub::new(crate::api::watch_hub::DEFAULT_CAPACITY)),
            beats,
        })
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let doc = spec();
        let mut documented: Vec<&str> = doc["paths"].as_object().expect("paths").keys().map(String::as_str).collect();
        let mut routes = ROUTES.to_vec();
        documented.sort_unstable();
        routes.sort_unstable();
        assert_eq!(documented, routes);
    }

    /// The statuses an operation documents.
    fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
        let responses = doc["paths"][path][method]["responses"].as_object();
        let mut out: Vec<String> = responses.into_iter().flat_map(|r| r.keys().cloned()).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn the_registry_is_generated_with_every_status_it_answers() {
        let doc = spec();
        let expect = |path: &str, method: &str, wanted: &[&str]| {
            let mut wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
            wanted.sort_unstable();
            assert_eq!(statuses(&doc, path, method), wanted, "{method} {path}");
        };
        let common = ["401", "500", "503"];
        let with = |own: &[&'static str]| [own, &common[..]].concat();
        expect("/export", "get", &with(&["200", "400", "403"]));
        expect("/export/selective", "post", &with(&["200", "400", "403", "404", "408", "413", "415"]));
        expect("/import", "post", &with(&["200", "400", "403", "409", "408", "413", "415", "422", "429"]));
        expect("/import/status", "get", &with(&["200", "403"]));
        expect("/import/status/{id}", "get", &with(&["200", "400", "403", "404"]));
        for kind in cfgledger_events::ResourceKind::ALL {
            let (all, one) = (format!("/{kind}"), format!("/{kind}/{{name}}"));
            expect(&all, "get", &with(&["200", "400"]));
            expect(&all, "post", &with(&["201", "400", "403", "409", "408", "413", "415", "422", "429"]));
            expect(&one, "get", &with(&["200", "400", "404"]));
            for method in ["put", "patch"] {
                expect(&one, method, &with(&["200", "400", "403", "404", "409", "408", "413", "415", "422", "429"]));
            }
            expect(&one, "delete", &with(&["200", "400", "403", "404", "409", "429"]));
            expect(&format!("{one}/history"), "get", &with(&["200", "400", "403"]));
            let params = doc["paths"][&all]["get"]["parameters"].as_array().map(Vec::len);
            assert_eq!(params, Some(3), "tags, include_inactive and as_of on GET {all}");
        }
        for schema in
            ["Entity", "EntityList", "Deleted", "ExportAnswer", "ExportDocument", "ImportBody", "ImportReport"]
        {
            assert!(doc["components"]["schemas"].get(schema).is_some(), "{schema} is in the components");
        }
    }

    #[tokio::test]
    async fn every_documented_operation_reaches_a_handler() {
        let app = router(state());
        let doc = spec();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                let uri = path.replace("{key}", "LOG_LEVEL").replace("{name}", "x").replace("{id}", "x");
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
                let request = Request::builder().method(method.clone()).uri(&uri).body(Body::empty()).expect("request");
                let response = app.clone().oneshot(request).await.expect("the router answers");
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
                let text = String::from_utf8_lossy(&body);
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && !text.contains("no such endpoint"),
                    "{method} {uri} is documented but not routed: {status} {text}"
                );
            }
        }
    }

    /// Sends `method uri` with an optional token and body and returns the status, the content type and the
    /// body (not read for a stream).
    async fn send(
        app: &axum::Router,
        method: &Method,
        uri: &str,
        token: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        if let Some((content_type, _)) = body {
            request = request.header("content-type", content_type);
        }
        let body = body.map(|(_, text)| text);
        let request = request.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default()).expect("request");
        let response = app.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
            .unwrap_or_default();
        if content_type == "text/event-stream" {
            return (status, content_type, String::new());
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.expect("body");
        (status, content_type, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// One kind of request: its name, its token, its query and its body (with its content type).
    type Case<'a> = (&'a str, Option<&'a str>, &'a str, Option<(&'a str, &'a str)>);

    /// The contract: every status an operation answers, for a caller without a token, with too small a
    /// role, with an unknown query field, with a malformed body, with an empty one and with a body that is
    /// not JSON, is documented for that operation, with the content type it is answered in.
    #[tokio::test]
    async fn every_status_a_route_answers_is_documented_with_its_content_type() {
        let state = state();
        let now = crate::auth::unix_seconds(state.ledger.now());
        let admin = state.auth.keys.issue("admin", crate::auth::Role::PlatformAdmin, now, 600).expect("a token");
        let viewer = state.auth.keys.issue("viewer", crate::auth::Role::Viewer, now, 600).expect("a token");
        let app = router(state);
        let doc = spec();
        let mut undocumented = Vec::new();
        let mut checked = 0;
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for (method, op) in ops.as_object().expect("operations") {
                let uri = path.replace("{key}", "LOG_LEVEL").replace("{name}", "x").replace("{id}", "x");
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
                let json = "application/json";
                let cases: [Case; 6] = [
                    ("no token", None, "", None),
                    ("a viewer", Some(&viewer), "", Some((json, "{}"))),
                    ("an unknown query field", Some(&admin), "?zzz_unknown=1", Some((json, "{}"))),
                    ("a malformed body", Some(&admin), "", Some((json, "{"))),
                    ("an empty object", Some(&admin), "", Some((json, "{}"))),
                    ("a body that is not JSON", Some(&admin), "", Some(("text/plain", "LOG_LEVEL=debug"))),
                ];
                for (case, token, query, body) in cases {
                    let (status, content_type, text) = send(&app, &method, &format!("{uri}{query}"), token, body).await;
                    checked += 1;
                    let documented = &op["responses"][status.as_str()];
                    if documented.is_null() {
                        undocumented.push(format!("{method} {path} with {case}: {status} {text}"));
                        continue;
                    }
                    let content = &documented["content"];
                    let declared = content.as_object().map(|c| c.contains_key(&content_type)).unwrap_or(false);
                    if !content_type.is_empty() && !declared {
                        undocumented.push(format!(
                            "{method} {path} with {case}: {status} answered as {content_type}, documented as {content}"
                        ));
                    }
                }
            }
        }
        assert!(checked > 360, "only {checked} answers were checked");
        assert!(undocumented.is_empty(), "{} undocumented answers:\n{}", undocumented.len(), undocumented.join("\n"));
    }

    /// What the served document adds for its store: the catalog's namespaces (with `*` where the operation
    /// takes all of them, and any text for the audit trail's filter) and its categories.
    #[test]
    fn the_served_document_lists_the_stores_namespaces_and_categories() {
        let state = state();
        let doc = spec_for(state.ledger.catalog());
        let schema = |path: &str, method: &str, name: &str| {
            let params = doc["paths"][path][method]["parameters"].as_array().cloned().unwrap_or_default();
            params.into_iter().find(|p| p["name"] == name).map(|p| p["schema"].clone()).unwrap_or(Value::Null)
        };
        let words = |schema: Value| -> Vec<String> {
            schema["enum"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
        };
        assert_eq!(words(schema("/admin/config/{key}", "get", "namespace")), ["mcpgateway", "cfgledger"]);
        assert_eq!(words(schema("/admin/config/render", "get", "namespace")), ["mcpgateway", "cfgledger"]);
        assert_eq!(words(schema("/admin/config", "get", "namespace")), ["mcpgateway", "cfgledger", "*"]);
        assert_eq!(schema("/admin/config/audit", "get", "namespace")["enum"], Value::Null, "a filter of the log");
        let categories = words(schema("/admin/config/watch", "get", "category"));
        assert!(categories.contains(&"logging".to_string()) && categories.contains(&"security".to_string()));
        let rollback = &doc["components"]["schemas"]["RollbackBody"]["properties"]["namespace"];
        assert!(rollback.to_string().contains("cfgledger"), "{rollback}");
    }

    /// Every operation with a JSON body documents 415, and no unsigned integer keeps utoipa's signed bound.
    #[test]
    fn bodies_document_415_and_unsigned_integers_their_real_maximum() {
        let doc = spec();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("operations") {
                if op.get("requestBody").is_some() {
                    assert!(op["responses"].get("415").is_some(), "{method} {path} documents no 415");
                }
            }
        }
        fn signed_bounds(node: &Value, at: &str, found: &mut Vec<String>) {
            match node {
                Value::Object(map) => {
                    let format = map.get("format").and_then(Value::as_str);
                    if matches!(format, Some("int64" | "int32"))
                        && map.get("minimum").and_then(Value::as_u64) == Some(0)
                    {
                        found.push(at.to_string());
                    }
                    map.iter().for_each(|(k, v)| signed_bounds(v, &format!("{at}/{k}"), found));
                }
                Value::Array(items) => items.iter().for_each(|v| signed_bounds(v, at, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        signed_bounds(&doc, "", &mut found);
        assert!(found.is_empty(), "unsigned integers with a signed format: {found:?}");
        let limit = &doc["components"]["schemas"]["InstanceReport"]["properties"]["applied_seq"];
        assert_eq!(limit["maximum"], Value::from(u64::MAX), "{limit}");
    }
}
