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

/// The registry's paths, one pair per kind.
fn resource_paths() -> serde_json::Map<String, Value> {
    let mut paths = serde_json::Map::new();
    for kind in cfgledger_events::ResourceKind::ALL {
        let one = kind.singular();
        let entity = json!({"$ref": "#/components/schemas/Entity"});
        let written = |what: &str| {
            json!({"200": json_response(what, entity.clone()), "400": error_response("malformed body"),
                "401": error_response("no or bad token"), "403": error_response("insufficient role"),
                "404": error_response("no such entity"), "409": error_response("exists already, or referenced by others"),
                "422": error_response("a field of the wrong type, a missing reference or bad credentials"),
                "429": error_response("rate limited"), "503": error_response("the store is unavailable")})
        };
        let body = json!({"required": true, "content": {"application/json": {"schema": entity.clone()}}});
        let name = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"},
            "description": format!("the {one}'s {} (percent-encoded)", kind.id_field())}]);
        let name_param = name.clone();
        let mut name_as_of = name.clone();
        if let Some(list) = name_as_of.as_array_mut() {
            list.push(json!({"name": "as_of", "in": "query", "schema": {"type": "string"},
                "description": "a point of the log: RFC 3339, a duration before now (24h) or seq:N"}));
        }
        paths.insert(
            format!("/{kind}"),
            json!({
                "get": {"summary": format!("Every {one} (viewer)"), "parameters": [
                    {"name": "tags", "in": "query", "schema": {"type": "string"}, "description": "comma-separated; any matches"},
                    {"name": "include_inactive", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "as_of", "in": "query", "schema": {"type": "string"}, "description": "a point of the log: RFC 3339, a duration before now (24h) or seq:N"}],
                    "responses": {"200": json_response("items and head", json!({"type": "object"})), "400": error_response("a point that does not parse"), "401": error_response("no or bad token")}},
                "post": {"summary": format!("Create a {one} (platform_admin); 201 with Location"), "requestBody": body.clone(),
                    "responses": written("the created entity")}
            }),
        );
        paths.insert(
            format!("/{kind}/{{name}}"),
            json!({
                "get": {"summary": format!("One {one} (viewer); ETag names its version"), "parameters": name_as_of,
                    "responses": {"200": json_response("the entity", entity.clone()), "404": error_response("no such entity")}},
                "put": {"summary": format!("Replace a {one}; credentials omitted keep the stored ones"), "parameters": name.clone(),
                    "requestBody": body.clone(), "responses": written("the entity")},
                "patch": {"summary": format!("Merge fields into a {one}; null removes a field"), "parameters": name.clone(),
                    "requestBody": body, "responses": written("the entity")},
                "delete": {"summary": format!("Delete a {one}; 409 while referenced"), "parameters": name,
                    "responses": written("what was deleted")}
            }),
        );
        paths.insert(
            format!("/{kind}/{{name}}/history"),
            json!({"get": {"summary": format!("Every state the {one} has had, newest first (auditor)"), "parameters": name_param.clone(),
                "responses": {"200": json_response("entries", json!({"type": "object"})), "400": error_response("bad cursor"), "403": error_response("insufficient role")}}}),
        );
    }
    paths
}

pub(super) fn spec() -> Value {
    let mut doc = spec_without_resources();
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.extend(resource_paths());
    }
    doc
}

fn spec_without_resources() -> Value {
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
            "/export": {"get": {"summary": "The registry's portable export with the non-sensitive settings; credentials stay sealed (auditor)",
                "parameters": [{"name": "types", "in": "query", "schema": {"type": "string"}}, {"name": "exclude_types", "in": "query", "schema": {"type": "string"}},
                    {"name": "tags", "in": "query", "schema": {"type": "string"}}, {"name": "include_inactive", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "include_dependencies", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["cfgledger", "mcpgateway"]}}],
                "responses": common(map(json!({"200": json_response("the export document", json!({"type": "object"})), "400": error_response("an unknown entity type"),
                    "403": error_response("insufficient role")})))}},
            "/export/selective": {"post": {"summary": "Export named entities: {\"tools\": [names], ...} (auditor)",
                "parameters": [{"name": "include_dependencies", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": common(map(json!({"200": json_response("the export document", json!({"type": "object"})), "400": error_response("malformed selection"),
                    "403": error_response("insufficient role"), "404": error_response("a named entity does not exist")})))}},
            "/import": {"post": {"summary": "Import an export document as one atomic batch, or plan it with dry_run (platform_admin)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["import_data"], "properties": {
                    "import_data": {"type": "object"}, "conflict_strategy": {"type": "string", "enum": ["skip", "update", "rename", "fail"]},
                    "dry_run": {"type": "boolean"}, "selected_entities": {"type": "object"}, "reason": {"type": "string"}}}}}},
                "responses": common(map(json!({"200": json_response("the plan, and the import id and result when applied", json!({"type": "object"})),
                    "400": error_response("malformed body or strategy"), "403": error_response("insufficient role"),
                    "409": error_response("conflicts under the fail strategy: nothing applied"),
                    "422": error_response("an invalid entity, an unresolved reference or a damaged file: nothing applied")})))}},
            "/import/status": {"get": {"summary": "Recent imports, from the log (auditor)", "responses": common(map(json!({"200": json_response("imports", json!({"type": "object"}))})))}},
            "/import/status/{id}": {"get": {"summary": "One import by its id (auditor)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": common(map(json!({"200": json_response("the import", json!({"type": "object"})), "404": error_response("no such import")})))}},
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
                "Entity": {"type": "object", "additionalProperties": true, "description":
                    "An entity's fields (unknown fields are kept). Credentials go in as auth_type with auth_username/auth_password, auth_token or auth_header_key/auth_header_value/auth_headers; they come back only as auth_type and the sealed auth_value. created_at, updated_at and version are added on output and ignored on input."},
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
