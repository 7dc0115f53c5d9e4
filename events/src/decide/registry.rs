//! The rules of the resource registry: create, replace (PUT), patch (PATCH) and delete one entity, and apply
//! an imported document's entities (planned by [`crate::registry_import`]) with its settings as one batch.

use super::import::import_settings;
use super::{Command, Context, ImportRequest, Rejection, SettingsLookup};
use crate::event::{Event, ImportApplied, ResourceCreated, ResourceDeleted, ResourceUpdated};
use crate::registry_import::{self, EntityAction, EntityPlan, RegistryImport};
use crate::resource::{self, ResourceKind};
use serde_json::{Map, Value};

pub(super) fn create(
    cx: &Context<'_>,
    kind: ResourceKind,
    fields: Map<String, Value>,
) -> Result<Vec<Event>, Rejection> {
    let stored = resource::normalize(kind, fields, None, cx.sealer)?;
    let name = resource::identity(kind, &stored)?;
    if cx.state.resource(kind, &name).is_some() {
        return Err(Rejection::conflict(format!("{} {name} already exists", kind.singular())));
    }
    check_references(cx.state, kind, &name, &stored)?;
    Ok(vec![Event::ResourceCreated(ResourceCreated { kind, name, fields: Value::Object(stored) })])
}

/// An entity's new state, whole: credentials omitted keep the stored ones; the identity cannot change.
pub(super) fn replace(
    cx: &Context<'_>,
    kind: ResourceKind,
    name: String,
    mut fields: Map<String, Value>,
) -> Result<Vec<Event>, Rejection> {
    let existing = existing_resource(cx.state, kind, &name)?;
    let id = kind.id_field();
    match fields.get(id) {
        None => {
            fields.insert(id.into(), Value::String(name.clone()));
        }
        Some(Value::String(given)) if given == &name => {}
        Some(other) => {
            return Err(Rejection::invalid(format!(
                "{} {name}: {id} cannot change (got {other}); create a new one and delete this one",
                kind.singular()
            )))
        }
    }
    let stored = resource::normalize(kind, fields, Some(existing), cx.sealer)?;
    updated(cx.state, kind, name, existing, stored)
}

/// Top-level fields merged into an entity: `null` removes a field.
pub(super) fn patch(
    cx: &Context<'_>,
    kind: ResourceKind,
    name: String,
    patch: Map<String, Value>,
) -> Result<Vec<Event>, Rejection> {
    let existing = existing_resource(cx.state, kind, &name)?;
    let id = kind.id_field();
    if patch.get(id).is_some_and(|v| v.as_str() != Some(name.as_str())) {
        return Err(Rejection::invalid(format!("{} {name}: {id} cannot change", kind.singular())));
    }
    let mut merged = existing.clone();
    // The stored credentials are not input: they come back only if the patch gives none.
    merged.remove("auth_value");
    let keep_auth = !patch.keys().any(|k| k == "auth_type" || resource::CREDENTIAL_FIELDS.contains(&k.as_str()));
    if !keep_auth {
        merged.remove("auth_type");
    }
    for (k, v) in patch {
        if v.is_null() && k != "auth_type" {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    let stored = resource::normalize(kind, merged, Some(existing), cx.sealer)?;
    updated(cx.state, kind, name, existing, stored)
}

/// Refused while other entities reference it.
pub(super) fn delete(cx: &Context<'_>, kind: ResourceKind, name: String) -> Result<Vec<Event>, Rejection> {
    existing_resource(cx.state, kind, &name)?;
    let referrers = cx.state.referrers(kind, &name);
    if !referrers.is_empty() {
        return Err(Rejection::conflict(format!(
            "{} {name} is referenced by {}",
            kind.singular(),
            referrers.join(", ")
        )));
    }
    Ok(vec![Event::ResourceDeleted(ResourceDeleted { kind, name })])
}

/// A document's entities and settings as one batch, headed by one `ImportApplied` that counts both.
pub(super) fn import_registry(
    cx: &Context<'_>,
    digest: String,
    source: Option<Value>,
    registry: RegistryImport,
    settings: Option<ImportRequest>,
) -> Result<Vec<Event>, Rejection> {
    let (plans, resource_events) = registry_import::plan(cx.state, cx.sealer, &registry)?;
    registry_import::refuse_conflicts(&plans)?;
    let settings_events = match settings {
        Some(req) => import_settings(cx, req)?,
        None => Vec::new(),
    };
    if resource_events.is_empty() && settings_events.is_empty() {
        return Ok(Vec::new());
    }
    let label = |p: &EntityPlan| format!("{}/{}", p.kind, p.renamed_to.as_deref().unwrap_or(&p.name));
    let mut head = ImportApplied {
        digest,
        source,
        created: plans
            .iter()
            .filter(|p| matches!(p.action, EntityAction::Create | EntityAction::Rename))
            .map(label)
            .collect(),
        updated: plans.iter().filter(|p| p.action == EntityAction::Update).map(label).collect(),
        unchanged: plans.iter().filter(|p| matches!(p.action, EntityAction::Unchanged | EntityAction::Skip)).count(),
        locked: Vec::new(),
    };
    let mut rest = Vec::new();
    for e in settings_events {
        match e {
            Event::ImportApplied(s) => {
                head.created.extend(s.created);
                head.updated.extend(s.updated);
                head.unchanged += s.unchanged;
                head.locked = s.locked;
            }
            other => rest.push(other),
        }
    }
    Ok(std::iter::once(Event::ImportApplied(head)).chain(resource_events).chain(rest).collect())
}

fn existing_resource<'a>(
    state: &'a dyn SettingsLookup,
    kind: ResourceKind,
    name: &str,
) -> Result<&'a Map<String, Value>, Rejection> {
    state.resource(kind, name).ok_or_else(|| Rejection::missing(format!("no {} {name}", kind.singular())))
}

/// Refuses an entity that names entities that do not exist (a server's missing tool).
fn check_references(
    state: &dyn SettingsLookup,
    kind: ResourceKind,
    name: &str,
    fields: &Map<String, Value>,
) -> Result<(), Rejection> {
    let missing = registry_import::dangling(state, &registry_import::Pending::new(), kind, fields);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Rejection::invalid(format!(
            "{} {name} references what does not exist: {}",
            kind.singular(),
            missing.join(", ")
        )))
    }
}

/// The event of an entity's new state, or nothing when it is the stored one.
fn updated(
    state: &dyn SettingsLookup,
    kind: ResourceKind,
    name: String,
    existing: &Map<String, Value>,
    stored: Map<String, Value>,
) -> Result<Vec<Event>, Rejection> {
    check_references(state, kind, &name, &stored)?;
    let changed = registry_import::diff(existing, &stored);
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ResourceUpdated(ResourceUpdated { kind, name, fields: Value::Object(stored), changed })])
}

/// Compare-and-set for an entity: `then` is decided only while `KIND/NAME` is at `version` (an absent entity
/// is left to `then`, which names it).
pub(super) fn expect(
    cx: &Context<'_>,
    kind: ResourceKind,
    name: &str,
    version: u64,
    then: Command,
) -> Result<Vec<Event>, Rejection> {
    match cx.state.resource_version(kind, name) {
        Some(now) if now != version => Err(Rejection::conflict(format!(
            "{} {name} changed since version {version}: it is at version {now}",
            kind.singular()
        ))),
        _ => super::dispatch(cx, then),
    }
}
