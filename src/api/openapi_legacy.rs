//! The hand-written part of `/openapi.json`, for the operations not yet described by the typed model. Each
//! family of handlers moves into the generated document (`openapi.rs`, from `utoipa::path` annotations and
//! the `model` types) and leaves this file; the generated entry wins when both describe a path.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn key_param() -> Value {
    json!({"name": "key", "in": "path", "required": true, "schema": {"type": "string"}, "example": "LOG_LEVEL"})
}

pub(super) fn spec() -> Value {
    let item = json!({"$ref": "#/components/schemas/Item"});
    let plan = json!({"$ref": "#/components/schemas/ImportPlan"});
    let common = |mut responses: serde_json::Map<String, Value>| {
        responses.insert("401".into(), error_response("no token, or a bad or expired one"));
        responses.insert("503".into(), error_response("the store is unavailable (Retry-After)"));
        Value::Object(responses)
    };
    let map = |v: Value| v.as_object().cloned().unwrap_or_default();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cfgledger admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Event-sourced configuration store. Every change is appended to a hash-chained log; sensitive values are never returned."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/health": {"get": {"summary": "The process is alive", "security": [], "responses": {"200": json_response("alive", json!({"type": "object"}))}}},
            "/ready": {"get": {"summary": "The store answers and the projection has caught up (head, applied, lag)", "security": [],
                "responses": {"200": json_response("ready", json!({"type": "object"})), "503": json_response("degraded or catching up", json!({"type": "object"}))}}},
            "/metrics": {"get": {"summary": "Prometheus text format", "security": [], "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": json_response("OpenAPI 3.1", json!({"type": "object"}))}}},
            "/auth/login": {"post": {
                "summary": "Exchange a user name and password for a bearer token valid for TOKEN_EXPIRY", "security": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string", "format": "password"}}}}}},
                "responses": {"200": json_response("a token", json!({"type": "object", "properties": {"token": {"type": "string"}, "role": {"type": "string"}, "expires_at": {"type": "string"}}})),
                    "400": error_response("malformed body"), "401": error_response("invalid username or password"), "429": error_response("too many attempts")}}},
            "/admin/config": {"get": {
                "summary": "Every setting with its effective value and source (viewer)",
                "parameters": [{"name": "category", "in": "query", "schema": {"type": "string"}}, {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "search in keys and descriptions"},
                    {"name": "as_of", "in": "query", "schema": {"type": "string"}, "description": "a point of the log: RFC 3339, a duration before now (24h) or seq:N"}],
                "responses": common(map(json!({"200": json_response("items and head", json!({"type": "object", "properties": {"items": {"type": "array", "items": item}, "head": {"type": "integer"}}}))})))}},
            "/admin/config/{key}": {
                "get": {"summary": "One setting (viewer); ETag names its version", "parameters": [key_param(), {"name": "as_of", "in": "query", "schema": {"type": "string"}, "description": "a point of the log: RFC 3339, a duration before now (24h) or seq:N"}],
                    "responses": common(map(json!({"200": json_response("the item", item.clone()), "404": error_response("unknown key")})))},
                "put": {"summary": "Change a setting (platform_admin); If-Match makes it compare-and-set", "parameters": [key_param(),
                        {"name": "If-Match", "in": "header", "schema": {"type": "string"}, "description": "the ETag from GET"}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false,
                        "description": "exactly one of value (JSON) and text (parsed as on the command line)",
                        "properties": {"value": {}, "text": {"type": "string"}, "reason": {"type": "string"}}}}}},
                    "responses": common(map(json!({"200": json_response("the updated item", item.clone()), "400": error_response("malformed body or If-Match"),
                        "403": error_response("locked key (recorded in the audit trail) or insufficient role"), "404": error_response("unknown key"),
                        "409": error_response("the key changed since the If-Match version"), "413": error_response("body larger than REQUEST_SIZE_LIMIT"),
                        "422": error_response("the value does not fit the key's type or range"), "429": error_response("CONFIG_WRITE_RATE_LIMIT exceeded (Retry-After)")})))},
                "delete": {"summary": "Remove the store's value: the environment or the default applies again (platform_admin)", "parameters": [key_param(),
                        {"name": "If-Match", "in": "header", "schema": {"type": "string"}}, {"name": "reason", "in": "query", "schema": {"type": "string"}}],
                    "responses": common(map(json!({"200": json_response("the item", item.clone()), "403": error_response("locked key or insufficient role"),
                        "404": error_response("unknown key"), "409": error_response("compare-and-set conflict"), "429": error_response("rate limited")})))}
            },
            "/admin/config/export": {"get": {"summary": "Every non-sensitive setting with metadata and a digest (auditor)",
                "responses": common(map(json!({"200": json_response("the export document", json!({"$ref": "#/components/schemas/Export"})), "403": error_response("insufficient role")})))}},
            "/admin/config/import": {"post": {"summary": "Plan (dry_run=true) or apply an export document as one atomic batch (platform_admin)",
                "parameters": [{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}, {"name": "reason", "in": "query", "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Export"}}}},
                "responses": common(map(json!({"200": json_response("the plan, and whether it was applied", plan), "400": error_response("malformed body"),
                    "403": error_response("insufficient role"), "413": error_response("body too large"),
                    "422": error_response("an invalid entry or a damaged document: nothing applied, the plan in details"), "429": error_response("rate limited")})))}},
            "/admin/config/audit": {"get": {"summary": "The audit trail, newest first, from the log's indexes (auditor)",
                "parameters": [{"name": "key", "in": "query", "schema": {"type": "string"}, "description": "a key or KIND/NAME; a trailing * matches a prefix"},
                    {"name": "actor", "in": "query", "schema": {"type": "string"}}, {"name": "action", "in": "query", "schema": {"type": "string"}, "description": "comma-separated"},
                    {"name": "source", "in": "query", "schema": {"type": "string", "enum": ["cli", "api", "ui", "system"]}}, {"name": "batch", "in": "query", "schema": {"type": "string"}},
                    {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or a duration before now (24h)"}, {"name": "until", "in": "query", "schema": {"type": "string"}},
                    {"name": "rejected", "in": "query", "schema": {"type": "boolean"}}, {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}, {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "older form of cursor"},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "jsonl"]}}],
                "responses": common(map(json!({"200": json_response("entries", json!({"type": "object", "properties": {"entries": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}}})),
                    "400": error_response("a filter, cursor or format that does not parse"), "403": error_response("insufficient role")})))}},
            "/admin/config/{key}/history": {"get": {"summary": "Every value the key has had, newest first, with who, when, why and the batch (auditor)",
                "parameters": [key_param(), {"name": "cursor", "in": "query", "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": common(map(json!({"200": json_response("entries", json!({"type": "object"})), "400": error_response("bad cursor"), "404": error_response("unknown key")})))}},
            "/admin/config/diff": {"get": {"summary": "What changed between two points: added, removed and changed keys and entities, masked (auditor)",
                "parameters": [{"name": "from", "in": "query", "required": true, "schema": {"type": "string"}}, {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "now when left out"}],
                "responses": common(map(json!({"200": json_response("the difference", json!({"type": "object"})), "400": error_response("a point that does not parse or is not in the log")})))}},
            "/admin/config/rollback": {"post": {"summary": "Return settings and entities to a point as one batch of compensating events; dry_run gives the plan (platform_admin)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["to"], "additionalProperties": false,
                    "properties": {"to": {"type": "string"}, "keys": {"type": "array", "items": {"type": "string"}}, "dry_run": {"type": "boolean"}, "reason": {"type": "string"}, "expected_head": {"type": "integer"}}}}}},
                "responses": common(map(json!({"200": json_response("the plan, and the batch when applied", json!({"type": "object"})), "400": error_response("malformed body"),
                    "404": error_response("a key named in keys exists at neither point"), "409": error_response("the head moved since the plan, or the rollback would break a reference"),
                    "422": error_response("a point that does not parse, or a value the catalog no longer accepts"), "429": error_response("rate limited")})))}},
            "/admin/config/revert": {"post": {"summary": "Undo one batch; 409 naming later changes to the same keys unless force (platform_admin)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["batch"], "additionalProperties": false,
                    "properties": {"batch": {"type": "string"}, "force": {"type": "boolean"}, "dry_run": {"type": "boolean"}, "reason": {"type": "string"}}}}}},
                "responses": common(map(json!({"200": json_response("the plan, and the batch when applied", json!({"type": "object"})), "404": error_response("no such batch"),
                    "409": error_response("later changes touched the same keys"), "422": error_response("nothing revertible in the batch")})))}},
            "/admin/verify": {"get": {"summary": "The hash chain recomputed and the checkpoints compared with the replay; the head hash (auditor)",
                "responses": common(map(json!({"200": json_response("status, head and checkpoints", json!({"type": "object"})), "500": error_response("the chain is broken (details name the seq)")})))}},
            "/admin/instances": {"get": {"summary": "Live instances of this store with their applied seq and head hash, and whether they agree (viewer)",
                "responses": common(map(json!({"200": json_response("instances", json!({"type": "object", "properties": {
                    "instances": {"type": "array"}, "self": {"type": "string"}, "converged": {"type": "boolean"}, "head": {"type": "integer"}}}))})))}},
            "/admin/config/watch": {"get": {"summary": "Server-sent events: one per change, id = seq; resume with Last-Event-ID or ?after",
                "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer"}}, {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}}],
                "responses": common(map(json!({"200": {"description": "event stream", "content": {"text/event-stream": {}}}, "400": error_response("bad Last-Event-ID or query")})))}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}},
                "Item": {"type": "object", "properties": {
                    "key": {"type": "string"}, "value": {"description": "\"********\" when the key is sensitive"},
                    "source": {"type": "string", "enum": ["db", "env", "default", "unset"]}, "type": {"type": "string"}, "category": {"type": "string"},
                    "reload": {"type": "string", "enum": ["hot", "restart"]}, "locked": {"type": "boolean"}, "sensitive": {"type": "boolean"},
                    "pending_restart": {"type": "boolean"}, "updated_at": {"type": ["string", "null"]}, "updated_by": {"type": ["string", "null"]},
                    "seq": {"type": ["integer", "null"]}, "version": {"type": "integer"}, "description": {"type": "string"}}},
                "Export": {"type": "object", "required": ["settings"], "properties": {
                    "format": {"const": "cfgledger-settings"}, "schema_version": {"type": "integer"}, "exported_at": {"type": "string"},
                    "exported_by": {"type": "string"}, "source": {"type": "object"}, "digest": {"type": "string"},
                    "settings": {"type": "object"}, "sources": {"type": "object"}}},
                "ImportPlan": {"type": "object", "properties": {
                    "plan": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"},
                        "action": {"type": "string", "enum": ["create", "update", "unchanged", "locked", "invalid"]},
                        "current": {}, "value": {}, "message": {"type": "string"}}}},
                    "summary": {"type": "object"}, "conflicts": {"type": "array", "items": {"type": "string"}},
                    "dry_run": {"type": "boolean"}, "applied": {"type": "boolean"}, "batch": {"type": ["string", "null"]}, "head": {"type": "integer"}}}
            }
        }
    })
}
