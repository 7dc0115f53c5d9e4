//! What the server enforces on a query parameter or a field and a JSON Schema can say, in one place, so that
//! the OpenAPI document refuses what the server refuses: closed sets of words as enums, and the patterns of
//! `If-Match`. The sets that depend on the store (its namespaces) are added when `/openapi.json` is served.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

fn one_of(words: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(words.iter().copied())).build()
}

/// `GET /admin/config/audit?format=`.
pub fn audit_format() -> Object {
    one_of(&["json", "csv", "jsonl"])
}

/// `GET /admin/config/render?format=`.
pub fn render_format() -> Object {
    one_of(&["env", "json", "yaml"])
}

/// `GET /export?format=`.
pub fn export_format() -> Object {
    one_of(&["cfgledger", "mcpgateway"])
}

/// An import document: an object that holds `entities`, `settings` or both (an empty one is refused).
pub fn import_document() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .min_properties(Some(1))
        .description(Some(
            "an export document: cfgledger's (`GET /export`) or MCP Gateway's, with `entities`, `settings` or both",
        ))
        .build()
}

/// `GET /admin/config/audit?source=`.
pub fn audit_source() -> Object {
    one_of(&["cli", "api", "ui", "system"])
}

/// Entity kinds, comma-separated (`tools,servers`), or none.
pub fn kinds() -> Object {
    let kind = cfgledger_events::ResourceKind::ALL.map(|k| k.to_string()).join("|");
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(format!("^(({kind})(,({kind}))*)?$"))).build()
}

/// A page's size: 1 to 1000 rows.
pub fn page_limit() -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(1000)).build()
}

/// A seq of the log as a query parameter: any unsigned 64-bit integer parses (utoipa would say `int64`,
/// whose bound is half as high).
pub fn seq() -> Object {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(u64::MAX)).build()
}

/// What `If-Match` accepts: `*`, or a version as an ETag (`"12"`, `W/"12"`) or bare (`12`).
pub const IF_MATCH: &str = r#"^(\*|(W/)?"?[0-9]{1,19}"?)$"#;
