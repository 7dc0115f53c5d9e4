//! How settings and events are shown to people and programs: the JSON item of a key (shared by the CLI
//! and, later, the REST API) and the JSON line of a log record. Secrets are masked here, at the one
//! place where values leave the process.

use crate::model::{AuditEntry, AuditImport, AuditRender, AuditResource, AuditUser, RejectedAttempt};
use cfgledger_events::catalog::{Catalog, SettingSpec};
use cfgledger_events::event::{StoredValue, MASK};
use cfgledger_events::namespace;
use cfgledger_events::{Envelope, Record};
use serde_json::Value;

/// Text as a terminal may show it: every control or bidirectional character (ESC, NUL, bell, a newline, a
/// right-to-left override...) written as a visible escape such as `\u{1b}`, so that a value, a reason or a
/// name cannot move the cursor, erase lines or reorder what an auditor reads. Every text line the CLI
/// prints passes here; JSON output is left to its encoder.
pub fn terminal(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(cfgledger_events::text::is_hidden) {
        std::borrow::Cow::Owned(cfgledger_events::text::escaped(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// [`terminal`] for a text of several lines (an error message listing every bad line of a file): each line
/// escaped, the line breaks kept.
pub fn terminal_lines(text: &str) -> String {
    text.split('\n').map(terminal).collect::<Vec<_>>().join("\n")
}

/// A value as it may be shown: masked when the key is sensitive, whatever layer it came from.
pub fn shown_value(spec: &SettingSpec, value: Option<&StoredValue>) -> Value {
    match value {
        None => Value::Null,
        Some(_) if spec.sensitive => Value::String(MASK.to_string()),
        Some(v) => v.masked(),
    }
}

/// Replaces every `{"sealed": "..."}` inside a payload, and every password hash, by the mask.
pub fn mask_payload(v: &mut Value) {
    match v {
        Value::Object(m) if m.len() == 1 && m.get("sealed").is_some_and(Value::is_string) => {
            *v = Value::String(MASK.to_string());
        }
        Value::Object(m) => {
            for field in ["password_hash", "sealed_key"] {
                if let Some(secret) = m.get_mut(field) {
                    *secret = Value::String(MASK.to_string());
                }
            }
            m.values_mut().for_each(mask_payload)
        }
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
            let secret = m
                .get("key")
                .and_then(Value::as_str)
                .is_some_and(|k| catalog.get(&namespace::from_log(k)).is_none_or(|spec| spec.sensitive));
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
pub fn record(rec: &Record, env: &Envelope, catalog: &Catalog) -> crate::model::LogRecord {
    let mut payload = env.event.payload_value();
    mask_payload(&mut payload);
    mask_sensitive(&mut payload, catalog);
    crate::model::LogRecord {
        seq: rec.seq,
        occurred_at: rec.occurred_at.to_string(),
        kind: rec.kind.clone(),
        version: env.event.version(),
        actor: env.actor.clone(),
        batch: env.batch.clone(),
        payload,
        prev_hash: rec.prev_hash.to_hex(),
        hash: rec.hash.to_hex(),
    }
}

/// A value of `key` as it may be shown: masked when the key is sensitive, unknown to the catalog, or sealed.
pub fn shown_value_for(catalog: &Catalog, key: &str, value: Option<&StoredValue>) -> Value {
    shown_for(catalog, key, value)
}

fn shown_for(catalog: &Catalog, key: &str, value: Option<&StoredValue>) -> Value {
    match value {
        None => Value::Null,
        Some(_) if catalog.get(&namespace::from_log(key)).is_none_or(|s| s.sensitive) => {
            Value::String(MASK.to_string())
        }
        Some(v) => v.masked(),
    }
}

/// The audit entries of one event, newest-last within the event: one per key it touched (or one for an
/// event about no key), with who, from where, why and which batch. Secrets are masked.
pub fn audit_entries(env: &Envelope, catalog: &Catalog) -> Vec<AuditEntry> {
    use cfgledger_events::Event;
    let base = |action: &str, key: Option<String>, value: Value, previous: Value| AuditEntry {
        seq: env.seq,
        time: env.occurred_at.to_string(),
        action: action.to_string(),
        kind: env.event.kind().to_string(),
        namespace: None,
        key,
        value,
        previous,
        actor: env.actor.name.clone(),
        role: env.actor.role.clone(),
        source: env.actor.source.as_str().to_string(),
        address: env.actor.address.clone(),
        request_id: env.actor.request_id.clone(),
        reason: env.batch.reason.clone(),
        batch: env.batch.id.clone(),
        cause: env.batch.cause.clone(),
        store_id: None,
        rendered: None,
        rejected: None,
        user: None,
        resource: None,
        import: None,
        change_request: None,
        rollout: None,
    };
    let request = |action: &str, id: u64, author: Option<&str>, approvers: Vec<String>| AuditEntry {
        change_request: Some(crate::model::AuditRequest {
            id,
            author: author.map(str::to_string),
            approvers,
            conflicts: Vec::new(),
            late_secs: None,
        }),
        ..base(action, None, Value::Null, Value::Null)
    };
    // A setting's entry names its namespace and its bare key.
    let setting = |action: &str, key: &str, value: Value, previous: Value| {
        let (ns, bare) = namespace::split(key);
        AuditEntry { namespace: Some(ns.to_string()), ..base(action, Some(bare.to_string()), value, previous) }
    };
    let entity = |action: &str, kind: String, name: &str, changed: Option<Vec<String>>| AuditEntry {
        resource: Some(AuditResource { kind: kind.clone(), name: name.to_string(), changed }),
        ..base(action, Some(format!("{kind}/{name}")), Value::Null, Value::Null)
    };
    match &env.event {
        Event::StoreCreated(e) => {
            vec![AuditEntry {
                store_id: Some(e.store_id.clone()),
                ..base("store_created", None, Value::Null, Value::Null)
            }]
        }
        Event::EnvSeeded(e) => e
            .values
            .iter()
            .map(|s| setting("seeded", &s.key, shown_for(catalog, &s.key, Some(&s.value)), Value::Null))
            .collect(),
        Event::SettingChanged(e) => vec![setting(
            "set",
            &e.key,
            shown_for(catalog, &e.key, Some(&e.value)),
            shown_for(catalog, &e.key, e.previous.as_ref()),
        )],
        Event::SettingReseeded(e) => vec![setting(
            "reseeded",
            &e.key,
            shown_for(catalog, &e.key, Some(&e.value)),
            shown_for(catalog, &e.key, e.previous.as_ref()),
        )],
        Event::SettingReset(e) => {
            vec![setting("reset", &e.key, Value::Null, shown_for(catalog, &e.key, e.previous.as_ref()))]
        }
        Event::SecretsRendered(e) => vec![AuditEntry {
            namespace: Some(e.namespace.clone()),
            rendered: Some(AuditRender {
                format: e.format.clone(),
                keys: e.keys.iter().map(|k| namespace::split(k).1.to_string()).collect(),
            }),
            ..base("secrets_rendered", None, Value::Null, Value::Null)
        }],
        Event::ChangeRejected(e) => vec![AuditEntry {
            rejected: Some(RejectedAttempt {
                action: e.action.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
            }),
            ..setting("rejected", &e.key, shown_for(catalog, &e.key, e.attempted.as_ref()), Value::Null)
        }],
        Event::SecretGenerated(e) => vec![setting("generated", &e.key, Value::String(MASK.to_string()), Value::Null)],
        // The master key's lifecycle names key ids (never a key) and, for a batch of a rotation, the places
        // whose ciphertext moved to the new key: the value itself is the same, masked as ever.
        Event::MasterKeyRotated(e) => vec![base(
            "master_key_rotated",
            None,
            Value::String(e.encryption.key_id.clone()),
            Value::String(e.previous.clone()),
        )],
        Event::MasterKeyRetired(e) => {
            vec![base("master_key_retired", None, Value::Null, Value::String(e.key_id.clone()))]
        }
        // A shred names what was forgotten and how many data keys went with it: never a value.
        Event::SecretShredded(e) => {
            let what = Value::String(format!("{} data key(s) destroyed: {}", e.data_keys.len(), e.reason));
            match e.subject.split_once('/') {
                Some((kind, name)) => {
                    vec![AuditEntry { value: what, ..entity("shredded", kind.to_string(), name, None) }]
                }
                None => vec![setting("shredded", &e.subject, what, Value::Null)],
            }
        }
        Event::SecretsResealed(e) => {
            let mut entries: Vec<AuditEntry> = e
                .settings
                .iter()
                .map(|s| setting("resealed", &s.key, Value::String(MASK.to_string()), Value::Null))
                .collect();
            entries.extend(e.resources.iter().map(|r| {
                let mut changed: Vec<String> = r.auth_value.iter().map(|_| "auth_value".to_string()).collect();
                changed.extend(r.headers.keys().map(|h| format!("headers.{h}")));
                entity("resealed", r.kind.to_string(), &r.name, Some(changed))
            }));
            if !e.users.is_empty() || !e.signing_keys.is_empty() {
                let what = format!(
                    "{} user password hash(es) and {} token signing key(s) under key {}",
                    e.users.len(),
                    e.signing_keys.len(),
                    e.key_id
                );
                entries.push(base("resealed", None, Value::String(what), Value::Null));
            }
            entries
        }
        Event::UserAdded(e) => vec![AuditEntry {
            user: Some(AuditUser { name: e.name.clone(), role: Some(e.role.to_string()) }),
            ..base("user_added", None, Value::Null, Value::Null)
        }],
        Event::UserRemoved(e) => vec![AuditEntry {
            user: Some(AuditUser { name: e.name.clone(), role: None }),
            ..base("user_removed", None, Value::Null, Value::Null)
        }],
        // The hash never leaves the store, not even masked: the entry says that it changed.
        Event::UserPasswordChanged(e) => vec![AuditEntry {
            user: Some(AuditUser { name: e.name.clone(), role: None }),
            ..base("password_changed", None, Value::Null, Value::Null)
        }],
        Event::UserRoleChanged(e) => vec![AuditEntry {
            user: Some(AuditUser { name: e.name.clone(), role: Some(e.role.clone()) }),
            ..base("role_changed", None, Value::String(e.role.clone()), Value::String(e.previous.clone()))
        }],
        // A hash of the token, never the token: shown as the log holds it.
        Event::TokenRevoked(e) => {
            vec![base("token_revoked", None, Value::String(e.token_hash.clone()), Value::Null)]
        }
        // The new key's id and the old keys' grace; the key itself stays sealed in the log.
        Event::SigningKeyRotated(e) => {
            let mut shown = serde_json::Map::new();
            shown.insert("kid".into(), Value::String(e.kid.clone()));
            shown.insert("grace_secs".into(), Value::from(e.grace_secs));
            vec![base("signing_key_rotated", None, Value::Object(shown), Value::Null)]
        }
        // A created entity lists the fields it was created with, so that a reader sees what it holds.
        Event::ResourceCreated(e) => {
            let fields = e.fields.as_object().map(|f| f.keys().cloned().collect());
            vec![entity("resource_created", e.kind.to_string(), &e.name, fields)]
        }
        Event::ResourceUpdated(e) => {
            vec![entity("resource_updated", e.kind.to_string(), &e.name, Some(e.changed.clone()))]
        }
        Event::ResourceDeleted(e) => vec![entity("resource_deleted", e.kind.to_string(), &e.name, None)],
        Event::ImportApplied(e) => vec![AuditEntry {
            import: Some(AuditImport {
                digest: e.digest.clone(),
                source: e.source.clone(),
                created: e.created.iter().map(|k| namespace::display(k).to_string()).collect(),
                updated: e.updated.iter().map(|k| namespace::display(k).to_string()).collect(),
                unchanged: e.unchanged,
                locked: e.locked.iter().map(|k| namespace::display(k).to_string()).collect(),
            }),
            ..base("import", None, Value::Null, Value::Null)
        }],
        // A request's changes are listed by subject only: their values show when they are applied.
        Event::ChangeRequestProposed(e) => {
            let subjects: Vec<Value> = e.changes.iter().map(|c| Value::String(c.subject())).collect();
            vec![AuditEntry {
                value: Value::Array(subjects),
                ..request("request_proposed", e.id, Some(&e.author), Vec::new())
            }]
        }
        Event::ChangeRequestEdited(e) => {
            let subjects: Vec<Value> = e.changes.iter().map(|c| Value::String(c.subject())).collect();
            vec![AuditEntry {
                value: Value::Array(subjects),
                ..request("request_edited", e.id, Some(&e.by), Vec::new())
            }]
        }
        Event::ChangeRequestApproved(e) => vec![request("request_approved", e.id, None, vec![e.approver.clone()])],
        Event::ChangeRequestRejected(e) => vec![request("request_rejected", e.id, None, Vec::new())],
        Event::ChangeRequestWithdrawn(e) => vec![request("request_withdrawn", e.id, None, Vec::new())],
        Event::ChangeRequestSuspended(e) => {
            let mut entry = request("request_suspended", e.id, None, Vec::new());
            if let Some(r) = entry.change_request.as_mut() {
                r.conflicts = e.conflicts.iter().map(|c| c.subject.clone()).collect();
            }
            vec![entry]
        }
        Event::ChangeRequestApplied(e) => {
            let mut entry = request("request_applied", e.id, None, e.approvers.clone());
            if let Some(r) = entry.change_request.as_mut() {
                r.conflicts = e.conflicts.iter().map(|c| c.subject.clone()).collect();
                r.late_secs = e.late_secs;
            }
            vec![entry]
        }
        Event::PolicyChanged(e) => vec![base(
            "policy_changed",
            None,
            serde_json::to_value(&e.policy).unwrap_or(Value::Null),
            serde_json::to_value(&e.previous).unwrap_or(Value::Null),
        )],
        Event::EmergencyBypassUsed(e) => vec![AuditEntry {
            value: Value::Array(e.bypassed.iter().map(|b| Value::String(b.subject.clone())).collect()),
            ..base("emergency_bypass", None, Value::Null, Value::Null)
        }],
        Event::RolloutStarted(_)
        | Event::RolloutAdvanced(_)
        | Event::RolloutRolledBack(_)
        | Event::RolloutCompleted(_) => rollout_entries(env, catalog, &base),
    }
}

/// Builds one audit entry of the event being presented: action, key, value, previous.
type EntryFn<'a> = &'a dyn Fn(&str, Option<String>, Value, Value) -> AuditEntry;

/// A rollout event's audit entries: one per key it moves, each naming the rollout, its stage and
/// percentage (and on start, the key's new value, masked when sensitive).
fn rollout_entries(env: &Envelope, catalog: &Catalog, base: EntryFn<'_>) -> Vec<AuditEntry> {
    use cfgledger_events::Event;
    let empty = crate::model::AuditRollout {
        id: String::new(),
        stage: 0,
        percent: 0,
        selector: Default::default(),
        steps: Vec::new(),
        reason: None,
        signal: None,
        manual: false,
    };
    let (action, detail, values): (&str, crate::model::AuditRollout, Vec<(&str, Value)>) = match &env.event {
        Event::RolloutStarted(e) => (
            "rollout_started",
            crate::model::AuditRollout {
                id: e.id.clone(),
                selector: e.selector.clone(),
                steps: e.steps.clone(),
                ..empty
            },
            e.changes.iter().map(|c| (c.key.as_str(), shown_for(catalog, &c.key, Some(&c.value)))).collect(),
        ),
        Event::RolloutAdvanced(e) => (
            "rollout_advanced",
            crate::model::AuditRollout {
                id: e.id.clone(),
                stage: e.stage,
                percent: e.percent,
                manual: e.manual,
                ..empty
            },
            e.keys.iter().map(|k| (k.as_str(), Value::Null)).collect(),
        ),
        Event::RolloutRolledBack(e) => (
            "rollout_rolled_back",
            crate::model::AuditRollout {
                id: e.id.clone(),
                stage: e.stage,
                reason: Some(e.reason.clone()),
                signal: e.signal.clone(),
                ..empty
            },
            e.keys.iter().map(|k| (k.as_str(), Value::Null)).collect(),
        ),
        Event::RolloutCompleted(e) => (
            "rollout_completed",
            crate::model::AuditRollout { id: e.id.clone(), stage: e.stage, percent: 100, manual: e.manual, ..empty },
            e.keys.iter().map(|k| (k.as_str(), Value::Null)).collect(),
        ),
        _ => return Vec::new(),
    };
    values
        .into_iter()
        .map(|(key, value)| {
            let (ns, bare) = namespace::split(key);
            AuditEntry {
                namespace: Some(ns.to_string()),
                rollout: Some(detail.clone()),
                ..base(action, Some(bare.to_string()), value, Value::Null)
            }
        })
        .collect()
}

/// The watch-stream message of one event, if the event changes a setting's value: seq, key, the new value
/// (masked when sensitive; for a reset, the environment's or default value it falls back to), source, actor
/// and time. An event that sets several keys (`.env` seeding) lists them under `changes` with `key` null.
pub fn change(
    env: &Envelope,
    catalog: &Catalog,
    baseline: &std::collections::BTreeMap<String, StoredValue>,
) -> Option<crate::model::ChangeEvent> {
    use crate::model::{ChangeEvent, KeyValue};
    use cfgledger_events::Event;
    let (key, value, changes) = match &env.event {
        Event::SettingChanged(e) => (Some(e.key.as_str()), shown_for(catalog, &e.key, Some(&e.value)), None),
        Event::SettingReseeded(e) => (Some(e.key.as_str()), shown_for(catalog, &e.key, Some(&e.value)), None),
        // A reset hands the key back to the environment or the default: that is its value now.
        Event::SettingReset(e) => {
            let now = baseline.get(namespace::from_log(&e.key).as_ref());
            (Some(e.key.as_str()), shown_for(catalog, &e.key, now), None)
        }
        Event::SecretGenerated(e) => (Some(e.key.as_str()), Value::String(MASK.to_string()), None),
        Event::EnvSeeded(e) if !e.values.is_empty() => {
            let list = e
                .values
                .iter()
                .map(|s| {
                    let (ns, bare) = namespace::split(&s.key);
                    KeyValue {
                        namespace: ns.to_string(),
                        key: bare.to_string(),
                        value: shown_for(catalog, &s.key, Some(&s.value)),
                    }
                })
                .collect();
            (None, Value::Null, Some(list))
        }
        _ => return None,
    };
    let (ns, key) = match key.map(namespace::split) {
        Some((ns, bare)) => (Some(ns.to_string()), Some(bare.to_string())),
        None => (None, None),
    };
    let restart_required = match (&ns, &key) {
        (Some(ns), Some(key)) => restart_key(catalog, ns, key),
        _ => changes
            .as_ref()
            .is_some_and(|list: &Vec<KeyValue>| list.iter().any(|c| restart_key(catalog, &c.namespace, &c.key))),
    };
    Some(ChangeEvent {
        seq: env.seq,
        kind: env.event.kind().to_string(),
        namespace: ns,
        key,
        value,
        restart_required,
        source: env.actor.source.as_str().to_string(),
        actor: env.actor.name.clone(),
        time: env.occurred_at.to_string(),
        batch: env.batch.id.clone(),
        changes,
        detail: None,
    })
}

/// Whether a setting takes effect only at its application's restart.
pub fn restart_key(catalog: &Catalog, ns: &str, key: &str) -> bool {
    catalog.get(&namespace::join(ns, key)).is_some_and(|s| s.reload == cfgledger_events::catalog::Reload::Restart)
}

/// The watch-stream message of any event: [`change`]'s for an event that sets a setting's value; for any
/// other, its subject (a setting's namespace and bare key, an entity's `KIND/NAME`, a rendered namespace)
/// and, `with_detail`, its audit entries, secrets masked.
pub fn watch_event(
    env: &Envelope,
    catalog: &Catalog,
    baseline: &std::collections::BTreeMap<String, StoredValue>,
    with_detail: bool,
) -> crate::model::ChangeEvent {
    if let Some(change) = change(env, catalog, baseline) {
        return change;
    }
    let (ns, key) = match (&env.event, env.event.key()) {
        (_, Some(k)) => {
            let (ns, bare) = namespace::split(k);
            (Some(ns.to_string()), Some(bare.to_string()))
        }
        (cfgledger_events::Event::SecretsRendered(e), None) => (Some(e.namespace.clone()), None),
        // A rollout's transition: about its namespace, so that the namespace's followers re-render.
        (ev, None) if cfgledger_events::rollout::namespace_of(ev).is_some() => {
            (cfgledger_events::rollout::namespace_of(ev).map(str::to_string), None)
        }
        (_, None) => (None, env.event.subject()),
    };
    crate::model::ChangeEvent {
        seq: env.seq,
        kind: env.event.kind().to_string(),
        namespace: ns,
        restart_required: cfgledger_events::rollout::keys_of(&env.event).into_iter().any(|k| {
            let (ns, bare) = namespace::split(k);
            restart_key(catalog, ns, bare)
        }),
        key,
        value: Value::Null,
        source: env.actor.source.as_str().to_string(),
        actor: env.actor.name.clone(),
        time: env.occurred_at.to_string(),
        batch: env.batch.id.clone(),
        changes: None,
        detail: with_detail.then(|| audit_entries(env, catalog)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_shows_hidden_characters_as_escapes_and_keeps_plain_text_borrowed() {
        assert!(matches!(terminal("plain text, é, 日本"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(terminal("a\u{1b}[2Jb\0\u{7}\u{202e}c\nd"), "a\\u{1b}[2Jb\\u{0}\\u{7}\\u{202e}c\\nd");
        assert_eq!(terminal_lines("line one\u{1b}\nline two\t"), "line one\\u{1b}\nline two\\t");
    }
}
