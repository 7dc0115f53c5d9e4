//! How settings and events are shown to people and programs: the JSON item of a key (shared by the CLI
//! and, later, the REST API) and the JSON line of a log record. Secrets are masked here, at the one
//! place where values leave the process.

use cfgledger_events::catalog::{Catalog, SettingSpec};
use cfgledger_events::event::{StoredValue, MASK};
use cfgledger_events::{Envelope, Record};
use cfgledger_projections::SettingView;
use serde_json::{json, Map, Value};

/// A value as it may be shown: masked when the key is sensitive, whatever layer it came from.
pub fn shown_value(spec: &SettingSpec, value: Option<&StoredValue>) -> Value {
    match value {
        None => Value::Null,
        Some(_) if spec.sensitive => Value::String(MASK.to_string()),
        Some(v) => v.masked(),
    }
}

/// The JSON item of one key.
pub fn item(spec: &SettingSpec, view: &SettingView) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), json!(spec.key));
    m.insert("value".into(), shown_value(spec, view.value.as_ref()));
    m.insert("source".into(), json!(view.source.as_str()));
    m.insert("type".into(), json!(spec.ty.name()));
    m.insert("category".into(), json!(spec.category));
    m.insert("reload".into(), json!(spec.reload.as_str()));
    m.insert("locked".into(), json!(spec.locked));
    m.insert("sensitive".into(), json!(spec.sensitive));
    m.insert("pending_restart".into(), json!(view.pending.is_some()));
    if let Some((pending, source)) = &view.pending {
        m.insert("pending_value".into(), shown_value(spec, pending.as_ref()));
        m.insert("pending_source".into(), json!(source.as_str()));
    }
    m.insert("updated_at".into(), json!(view.updated_at.map(|t| t.to_string())));
    m.insert("updated_by".into(), json!(view.updated_by));
    m.insert("seq".into(), json!(view.seq));
    m.insert("version".into(), json!(view.version));
    m.insert("description".into(), json!(spec.description));
    Value::Object(m)
}

/// Replaces every `{"sealed": "..."}` inside a payload by the mask.
pub fn mask_payload(v: &mut Value) {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("sealed").is_some_and(Value::is_string) => {
            *v = Value::String(MASK.to_string());
        }
        Value::Object(m) => m.values_mut().for_each(mask_payload),
        Value::Array(a) => a.iter_mut().for_each(mask_payload),
        _ => {}
    }
}

/// Masks the values of every object in a payload that names a sensitive key (or a key the catalog no
/// longer knows, whose sensitivity cannot be told): `value`, `previous` and `attempted` become the mask,
/// whether they were sealed or, from an older catalog, plain.
fn mask_sensitive(v: &mut Value, catalog: &Catalog) {
    match v {
        Value::Object(m) => {
            let secret =
                m.get("key").and_then(Value::as_str).is_some_and(|k| catalog.get(k).is_none_or(|spec| spec.sensitive));
            for (field, inner) in m.iter_mut() {
                if secret && matches!(field.as_str(), "value" | "previous" | "attempted") && !inner.is_null() {
                    *inner = Value::String(MASK.to_string());
                } else {
                    mask_sensitive(inner, catalog);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_sensitive(x, catalog)),
        _ => {}
    }
}

/// One log record as a JSON object, secrets masked.
pub fn record(rec: &Record, env: &Envelope, catalog: &Catalog) -> Value {
    let mut payload = env.event.payload_value();
    mask_payload(&mut payload);
    mask_sensitive(&mut payload, catalog);
    json!({
        "seq": rec.seq,
        "occurred_at": rec.occurred_at.to_string(),
        "kind": rec.kind,
        "version": env.event.version(),
        "actor": env.actor,
        "batch": env.batch,
        "payload": payload,
        "prev_hash": rec.prev_hash.to_hex(),
        "hash": rec.hash.to_hex(),
    })
}
