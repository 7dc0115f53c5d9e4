//! `/openapi.json`: the OpenAPI 3.1 description of every endpoint, generated from the typed model
//! (`crate::model`, `utoipa::ToSchema`) and the handlers' `#[utoipa::path]` annotations. Every operation also
//! answers the errors every route can answer (401 without a token where one is needed, 500, 503), added here
//! once. Operations not yet annotated come from `openapi_legacy.rs`. Unit tests check that the document lists
//! exactly the router's routes and that each documented operation reaches a handler; `tests/openapi.rs`
//! checks that every status a route answers is documented.

use super::resources::ResourcePaths;
use crate::error::ErrorCode;
use crate::model::{Deleted, Entity, EntityList, ErrorBody, ErrorDetail};
use axum::Json;
use serde_json::Value;
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

pub async fn document() -> Json<Value> {
    Json(spec())
}

/// The generated part of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cfgledger admin API",
        description = "Event-sourced configuration store. Every change is appended to a hash-chained log; sensitive values are never returned."
    ),
    paths(
        super::registry_transfer::export,
        super::registry_transfer::selective,
        super::registry_transfer::import,
        super::registry_transfer::statuses,
        super::registry_transfer::status,
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, Entity, EntityList, Deleted)),
    // The resource routes first, so that the common errors are added to them too.
    modifiers(&ResourcePaths, &CommonErrors),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The answers that any operation can give, added to each operation once instead of at every annotation:
/// 401 where a token is needed (an operation with an empty `security` list needs none), 500 and 503.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            for op in
                [item.get.as_mut(), item.put.as_mut(), item.post.as_mut(), item.delete.as_mut(), item.patch.as_mut()]
                    .into_iter()
                    .flatten()
            {
                let public = op.security.as_ref().is_some_and(|s| s.is_empty());
                if !public {
                    add_error(&mut op.responses, "401", "no token, or a bad or expired one (WWW-Authenticate: Bearer)");
                }
                add_error(&mut op.responses, "500", "an internal failure; the server's log has the cause");
                add_error(
                    &mut op.responses,
                    "503",
                    "the store is unavailable or the request took too long (Retry-After)",
                );
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

/// The whole document: the generated operations, then the hand-written ones for paths not generated yet.
pub fn spec() -> Value {
    let mut generated = ApiDoc::openapi();
    generated.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut doc = serde_json::to_value(generated).unwrap_or(Value::Null);
    let legacy = super::openapi_legacy::spec();
    if let (Some(paths), Some(old)) =
        (doc.pointer_mut("/paths").and_then(Value::as_object_mut), legacy["paths"].as_object())
    {
        for (path, item) in old {
            paths.entry(path.clone()).or_insert_with(|| item.clone());
        }
    }
    if let (Some(schemas), Some(old)) = (
        doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut),
        legacy.pointer("/components/schemas").and_then(Value::as_object),
    ) {
        for (name, schema) in old {
            schemas.entry(name.clone()).or_insert_with(|| schema.clone());
        }
    }
    if let (Some(schemes), Some(old)) =
        (doc.pointer_mut("/components").and_then(Value::as_object_mut), legacy.pointer("/components/securitySchemes"))
    {
        schemes.entry("securitySchemes").or_insert_with(|| old.clone());
    }
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
        "/admin/config/import",
        "/admin/config/audit",
        "/admin/config/{key}/history",
        "/admin/config/diff",
        "/admin/config/rollback",
        "/admin/config/revert",
        "/admin/verify",
        "/admin/config/watch",
        "/admin/instances",
        "/export",
        "/export/selective",
        "/import",
        "/import/status",
        "/import/status/{id}",
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
    ];

    fn state() -> AppState {
        let mut opts = OpenOptions::new(StoreUrl::Memory, cfgledger_events::builtin::builtin());
        opts.env_file = EnvFileChoice::None;
        opts.process_env = [("AUTH_ENCRYPTION_SECRET".to_string(), "openapi-test-secret-0123".to_string())].into();
        let (ledger, _) = Ledger::open(opts).expect("a memory store opens");
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", "HS256").expect("keys");
        AppState {
            ledger,
            auth: Arc::new(AuthConfig { keys, required: true, token_ttl_secs: 60 }),
            limiter: Arc::new(WriteLimiter::new()),
            login_limits: Arc::default(),
            metrics: None,
            closing: tokio::sync::watch::channel(false).1,
            sse_keepalive: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            instance: Arc::new(crate::instance::Instance::new("test".into())),
        }
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
        let legacy = super::super::openapi_legacy::spec();
        for path in ["/export", "/export/selective", "/import", "/import/status", "/import/status/{id}", "/tools"] {
            assert!(legacy["paths"].get(path).is_none(), "{path} is still hand-written");
        }
        let expect = |path: &str, method: &str, wanted: &[&str]| {
            let mut wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
            wanted.sort_unstable();
            assert_eq!(statuses(&doc, path, method), wanted, "{method} {path}");
        };
        let common = ["401", "500", "503"];
        let with = |own: &[&'static str]| [own, &common[..]].concat();
        expect("/export", "get", &with(&["200", "400", "403"]));
        expect("/export/selective", "post", &with(&["200", "400", "403", "404", "413"]));
        expect("/import", "post", &with(&["200", "400", "403", "409", "413", "422", "429"]));
        expect("/import/status", "get", &with(&["200", "403"]));
        expect("/import/status/{id}", "get", &with(&["200", "400", "403", "404"]));
        for kind in cfgledger_events::ResourceKind::ALL {
            let (all, one) = (format!("/{kind}"), format!("/{kind}/{{name}}"));
            expect(&all, "get", &with(&["200", "400"]));
            expect(&all, "post", &with(&["201", "400", "403", "409", "413", "422", "429"]));
            expect(&one, "get", &with(&["200", "400", "404"]));
            for method in ["put", "patch"] {
                expect(&one, method, &with(&["200", "400", "403", "404", "409", "413", "422", "429"]));
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
}
