//! Importing entities into the resource registry: the whole document is validated first, entities are
//! taken in dependency order (roots, gateways, tools, resources, prompts, servers), each is planned as
//! create, update (with the fields that differ), unchanged, skip, rename or conflict according to the
//! conflict strategy, references resolve against the store and the entities imported before them, and the
//! result is one batch: all or nothing. Pure, so the dry run and the apply make the same plan.

use crate::decide::{Rejection, Sealer, SettingsLookup};
use crate::event::{Event, ResourceCreated, ResourceUpdated};
use crate::resource::{self, MissingCredentials, ResourceKind, GATEWAY_MASK};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// What to do with an entity that exists with other content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    /// Keep the store's entity.
    Skip,
    /// Replace it with the imported one.
    Update,
    /// Import under a new name (`NAME_imported`, `NAME_imported2`, ...); references in the document follow.
    Rename,
    /// Refuse the whole import (409).
    Fail,
}

impl FromStr for ConflictStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(ConflictStrategy::Skip),
            "update" => Ok(ConflictStrategy::Update),
            "rename" => Ok(ConflictStrategy::Rename),
            "fail" => Ok(ConflictStrategy::Fail),
            other => Err(format!("conflict_strategy expects skip, update, rename or fail; got {other:?}")),
        }
    }
}

/// An import of entities, already parsed out of its document.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryImport {
    /// The document's entities by kind, in document order within a kind.
    pub entities: BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    pub strategy: ConflictStrategy,
}

/// What an import does to one entity; serialized as the snake-case name (`create`, `update`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityAction {
    /// The store has no entity of that identity: it is created.
    Create,
    /// The store's entity differs and the strategy is `update`: it is replaced.
    Update,
    /// The store's entity already equals the imported one.
    Unchanged,
    /// The store's entity differs and the strategy is `skip`: it is kept.
    Skip,
    /// The store's entity differs and the strategy is `rename`: the import is created under a new name.
    Rename,
    /// The store's entity differs and the strategy is `fail`: the whole import is refused.
    Conflict,
}

impl EntityAction {
    /// Every action, in the order a plan's counts list them.
    pub const ALL: [EntityAction; 6] = [
        EntityAction::Create,
        EntityAction::Update,
        EntityAction::Unchanged,
        EntityAction::Skip,
        EntityAction::Rename,
        EntityAction::Conflict,
    ];

    /// The name it is serialized as.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityAction::Create => "create",
            EntityAction::Update => "update",
            EntityAction::Unchanged => "unchanged",
            EntityAction::Skip => "skip",
            EntityAction::Rename => "rename",
            EntityAction::Conflict => "conflict",
        }
    }
}

impl std::fmt::Display for EntityAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the import does to one entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityPlan {
    pub kind: ResourceKind,
    pub name: String,
    pub action: EntityAction,
    /// For an update or a conflict: the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// For a rename: the name it is imported under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    /// What the import could not take as given: a masked value kept from the store, a credential the file
    /// left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Parses `entities` of a document: kinds known, each entry an object with its identity.
pub fn parse_entities(entities: &Value) -> Result<BTreeMap<ResourceKind, Vec<Map<String, Value>>>, Rejection> {
    let Some(by_kind) = entities.as_object() else {
        return Err(Rejection::invalid("entities expects an object of lists by entity type"));
    };
    let mut out = BTreeMap::new();
    for (kind, list) in by_kind {
        let kind: ResourceKind = kind.parse().map_err(Rejection::invalid)?;
        let Some(list) = list.as_array() else {
            return Err(Rejection::invalid(format!("entities '{kind}' expects a list")));
        };
        let mut parsed = Vec::with_capacity(list.len());
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, item) in list.iter().enumerate() {
            let Some(fields) = item.as_object() else {
                return Err(Rejection::invalid(format!("entity {i} in '{kind}' is not an object")));
            };
            let id = kind.id_field();
            let Some(value) = fields.get(id).and_then(Value::as_str).filter(|s| !s.trim().is_empty()) else {
                return Err(Rejection::invalid(format!("entity {i} in '{kind}' missing required field: {id}")));
            };
            if let Some(first) = seen.insert(value, i) {
                return Err(Rejection::invalid(format!(
                    "entity {i} in '{kind}' has the same {id} as entity {first}: {value:?} (each entity once)"
                )));
            }
            parsed.push(fields.clone());
        }
        out.insert(kind, parsed);
    }
    Ok(out)
}

/// The plan and the events of an import, against `state`. Any invalid entity or unresolved reference
/// refuses the whole import; conflicts (with `fail`) are in the plan, for [`refuse_conflicts`].
pub fn plan(
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    import: &RegistryImport,
) -> Result<(Vec<EntityPlan>, Vec<Event>), Rejection> {
    let mut plans = Vec::new();
    let mut events = Vec::new();
    let mut pending = Pending::new();
    let mut renames: BTreeMap<(ResourceKind, String), String> = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let in_file = file_names(import, kind);
        for (i, fields) in import.entities.get(&kind).into_iter().flatten().enumerate() {
            let mut fields = fields.clone();
            rewrite_references(kind, &mut fields, &renames);
            let name = resource::identity(kind, &fields)
                .map_err(|e| Rejection::invalid(format!("entity {i} in '{kind}': {}", e.message)))?;
            let existing = state.resource(kind, &name);
            let mut notes = unmask(&mut fields, existing);
            let mut stored =
                resource::normalize_with(kind, fields.clone(), existing, sealer, MissingCredentials::Allow)
                    .map_err(|e| Rejection::invalid(format!("entity {i} in '{kind}': {}", e.message)))?;
            keep_same_credentials(kind, &name, existing, &mut stored, sealer);
            notes.extend(credential_note(&fields, existing, &stored));
            let entry = |action, changed, renamed_to| EntityPlan {
                kind,
                name: name.clone(),
                action,
                changed,
                renamed_to,
                notes: notes.clone(),
            };
            let Some(existing) = existing else {
                check_references(state, &pending, kind, &name, &stored)?;
                pending.insert((kind, name.clone()), stored.clone());
                events.push(Event::ResourceCreated(ResourceCreated {
                    kind,
                    name: name.clone(),
                    fields: Value::Object(stored),
                }));
                plans.push(entry(EntityAction::Create, Vec::new(), None));
                continue;
            };
            let changed = diff(existing, &stored);
            if changed.is_empty() {
                plans.push(entry(EntityAction::Unchanged, Vec::new(), None));
                continue;
            }
            match import.strategy {
                ConflictStrategy::Skip => plans.push(entry(EntityAction::Skip, changed, None)),
                ConflictStrategy::Fail => plans.push(entry(EntityAction::Conflict, changed, None)),
                ConflictStrategy::Update => {
                    check_references(state, &pending, kind, &name, &stored)?;
                    pending.insert((kind, name.clone()), stored.clone());
                    events.push(Event::ResourceUpdated(ResourceUpdated {
                        kind,
                        name: name.clone(),
                        fields: Value::Object(stored),
                        changed: changed.clone(),
                    }));
                    plans.push(entry(EntityAction::Update, changed, None));
                }
                ConflictStrategy::Rename => {
                    // What is sealed for the old name is opened, to be sealed again for the new one; what does
                    // not open here is dropped.
                    if resource::unseal(kind, &name, &mut fields, sealer).is_err() {
                        fields.remove("auth_value");
                        fields.remove("auth_type");
                        if let Some(Value::Object(headers)) = fields.get_mut("headers") {
                            headers.retain(|_, v| resource::sealed_header(v).is_none());
                        }
                    }
                    let taken = |candidate: &str| {
                        pending.contains_key(&(kind, candidate.to_string())) || in_file.contains(candidate)
                    };
                    let at = format!("entity {i} in '{kind}'");
                    let (new_name, stored, already) = rename_target(state, sealer, kind, &name, &fields, taken, &at)?;
                    renames.insert((kind, name.clone()), new_name.clone());
                    if already {
                        plans.push(entry(EntityAction::Unchanged, Vec::new(), Some(new_name)));
                        continue;
                    }
                    check_references(state, &pending, kind, &new_name, &stored)?;
                    pending.insert((kind, new_name.clone()), stored.clone());
                    events.push(Event::ResourceCreated(ResourceCreated {
                        kind,
                        name: new_name.clone(),
                        fields: Value::Object(stored),
                    }));
                    plans.push(entry(EntityAction::Rename, changed, Some(new_name)));
                }
            }
        }
    }
    Ok((plans, events))
}

/// The first free name a renamed entity can take, its stored form under that name, and whether an earlier
/// import of the same file already made that copy. A name is free when neither the import (`taken`) nor the
/// store holds it, or when the store holds exactly this copy. `at` says which entity, for messages.
fn rename_target(
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    kind: ResourceKind,
    name: &str,
    fields: &Map<String, Value>,
    taken: impl Fn(&str) -> bool,
    at: &str,
) -> Result<(String, Map<String, Value>, bool), Rejection> {
    for candidate in rename_candidates(name) {
        if taken(&candidate) {
            continue;
        }
        let mut renamed = fields.clone();
        renamed.insert(kind.id_field().into(), Value::String(candidate.clone()));
        let held = state.resource(kind, &candidate);
        let mut stored = resource::normalize_with(kind, renamed, held, sealer, MissingCredentials::Allow)
            .map_err(|e| Rejection::invalid(format!("{at}: {}", e.message)))?;
        keep_same_credentials(kind, &candidate, held, &mut stored, sealer);
        match held {
            None => return Ok((candidate, stored, false)),
            // An earlier import of this file already made this copy: nothing to do again.
            Some(held) if diff(held, &stored).is_empty() => return Ok((candidate, stored, true)),
            Some(_) => {}
        }
    }
    Err(Rejection::invalid(format!("{kind}/{name}: no free name to import it under")))
}

/// Refuses a plan with conflicts (the `fail` strategy), naming them.
pub fn refuse_conflicts(plans: &[EntityPlan]) -> Result<(), Rejection> {
    let conflicts: Vec<String> =
        plans.iter().filter(|p| p.action == EntityAction::Conflict).map(|p| format!("{}/{}", p.kind, p.name)).collect();
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(Rejection::conflict(format!("the import conflicts with existing entities: {}", conflicts.join(", "))))
    }
}

/// Credentials sealed again are a new ciphertext of the same thing: when they open to what the stored entity
/// holds, the stored ciphertext is kept, so that importing a file twice changes nothing.
fn keep_same_credentials(
    kind: ResourceKind,
    name: &str,
    existing: Option<&Map<String, Value>>,
    stored: &mut Map<String, Value>,
    sealer: &dyn Sealer,
) {
    let (Some(old), Some(Value::String(new_sealed))) = (existing, stored.get("auth_value")) else { return };
    let Some(Value::String(old_sealed)) = old.get("auth_value") else { return };
    if old.get("auth_type") != stored.get("auth_type") || old_sealed == new_sealed {
        return;
    }
    let binding = resource::auth_binding(kind, name);
    if let (Ok(a), Ok(b)) = (sealer.open(&binding, old_sealed), sealer.open(&binding, new_sealed)) {
        if a == b {
            stored.insert("auth_value".into(), Value::String(old_sealed.clone()));
        }
    }
}

/// Values in a file that stand for a secret the file does not hold (MCP Gateway's `*****`): a masked
/// credential or `auth_value` is taken as absent, so the stored credentials stay (or, for a new entity, it is
/// imported without them); a masked header takes the stored header's value, or is left out. Returns what it
/// did, for the plan.
fn unmask(fields: &mut Map<String, Value>, existing: Option<&Map<String, Value>>) -> Vec<String> {
    let masked = |v: &Value| v.as_str() == Some(GATEWAY_MASK);
    let mut notes = Vec::new();
    if fields.get("auth_value").is_some_and(masked) {
        fields.remove("auth_value");
    }
    let credential_masked = resource::CREDENTIAL_FIELDS.iter().any(|f| match fields.get(*f) {
        Some(Value::String(s)) => s == GATEWAY_MASK,
        Some(Value::Array(items)) => items.iter().any(|i| i.get("value").is_some_and(masked)),
        Some(Value::Object(map)) => map.values().any(masked),
        _ => false,
    });
    if credential_masked {
        for f in resource::CREDENTIAL_FIELDS {
            fields.remove(f);
        }
    }
    if let Some(Value::Object(oauth)) = fields.get_mut("oauth_config") {
        oauth.retain(|k, v| !(resource::OAUTH_SECRET_FIELDS.contains(&k.as_str()) && masked(v)));
    }
    let stored_headers = existing.and_then(|e| e.get("headers")).and_then(Value::as_object);
    if let Some(Value::Object(headers)) = fields.get_mut("headers") {
        let masked_names: Vec<String> = headers.iter().filter(|(_, v)| masked(v)).map(|(k, _)| k.clone()).collect();
        for header in masked_names {
            match stored_headers.and_then(|h| h.get(&header)).filter(|v| !masked(v)) {
                Some(value) => {
                    headers.insert(header.clone(), value.clone());
                    notes.push(format!("header {header} is masked in the file: the stored value is kept"));
                }
                None => {
                    headers.remove(&header);
                    notes.push(format!(
                        "header {header} is masked in the file and the store has no value for it: left out"
                    ));
                }
            }
        }
    }
    notes
}

/// What the plan says of an entity whose file names an `auth_type` without its credential.
fn credential_note(
    file: &Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    stored: &Map<String, Value>,
) -> Option<String> {
    let oauth_secret = file
        .get("oauth_config")
        .and_then(Value::as_object)
        .is_some_and(|c| resource::OAUTH_SECRET_FIELDS.iter().any(|f| c.get(*f).is_some_and(|v| !v.is_null())));
    let given = resource::CREDENTIAL_FIELDS.iter().any(|f| file.contains_key(*f))
        || file.get("auth_value").is_some_and(Value::is_string)
        || oauth_secret;
    let auth_type = file.get("auth_type").and_then(Value::as_str)?;
    if given {
        return None;
    }
    let kept = existing.is_some_and(|e| e.get("auth_value").is_some()) && stored.get("auth_value").is_some();
    Some(if kept {
        format!("credential not in file (auth_type {auth_type}): the stored one is kept")
    } else if auth_type == "oauth" && file.get("oauth_config").is_some() {
        format!("credential not in file (auth_type {auth_type}): imported with its oauth_config and no secret")
    } else {
        format!("credential not in file (auth_type {auth_type}): imported without it; set it before use")
    })
}

/// The top-level fields that differ between two states of an entity, sorted. A JSON Schema's `required` is a
/// set: an entity stored before it was kept sorted compares equal to its sorted form.
pub(crate) fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let same = |k: &str, v: &Value| match old.get(k) {
        None => false,
        Some(o) if o == v => true,
        Some(o) if matches!(k, "input_schema" | "output_schema") => {
            let mut o = o.clone();
            resource::sort_required(&mut o);
            &o == v
        }
        Some(_) => false,
    };
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| !same(k, v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// Entities an import creates or changes, by kind and identity: visible to the references of later ones.
pub(crate) type Pending = BTreeMap<(ResourceKind, String), Map<String, Value>>;

/// The references of `fields` that name an entity neither `state` nor `pending` holds, as `KIND/NAME`.
pub(crate) fn dangling(
    state: &dyn SettingsLookup,
    pending: &Pending,
    kind: ResourceKind,
    fields: &Map<String, Value>,
) -> Vec<String> {
    resource::referenced(kind, fields)
        .into_iter()
        .filter(|(k, n)| state.resource(*k, n).is_none() && !pending.contains_key(&(*k, n.clone())))
        .map(|(k, n)| format!("{k}/{n}"))
        .collect()
}

fn check_references(
    state: &dyn SettingsLookup,
    pending: &Pending,
    kind: ResourceKind,
    name: &str,
    fields: &Map<String, Value>,
) -> Result<(), Rejection> {
    let missing = dangling(state, pending, kind, fields);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Rejection::invalid(format!(
            "{kind}/{name} references what neither the store nor the import has: {}",
            missing.join(", ")
        )))
    }
}

/// Points references at the names renamed entities were imported under.
fn rewrite_references(
    kind: ResourceKind,
    fields: &mut Map<String, Value>,
    renames: &BTreeMap<(ResourceKind, String), String>,
) {
    for (field, target) in kind.references() {
        if let Some(Value::Array(names)) = fields.get_mut(*field) {
            for n in names.iter_mut() {
                if let Some(new) = n.as_str().and_then(|s| renames.get(&(*target, s.to_string()))) {
                    *n = Value::String(new.clone());
                }
            }
        }
    }
}

/// The names a renamed entity may take, in order: `NAME_imported`, `NAME_imported2`, ...
fn rename_candidates(name: &str) -> impl Iterator<Item = String> + '_ {
    (1..10_000).map(move |i| if i == 1 { format!("{name}_imported") } else { format!("{name}_imported{i}") })
}

/// The identities the document gives entities of `kind`: a renamed entity must not take one of them.
fn file_names(import: &RegistryImport, kind: ResourceKind) -> BTreeSet<&str> {
    import
        .entities
        .get(&kind)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get(kind.id_field()).and_then(Value::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{EntityAction, EntityPlan};
    use crate::resource::ResourceKind;

    /// The plan's wire form is today's strings: the typed action must serialize exactly as they did.
    #[test]
    fn entity_actions_serialize_as_their_names() {
        let wire = serde_json::to_value(EntityAction::ALL).expect("actions serialize");
        assert_eq!(wire, serde_json::json!(["create", "update", "unchanged", "skip", "rename", "conflict"]));
        for action in EntityAction::ALL {
            assert_eq!(serde_json::to_value(action).expect("serializes"), action.as_str());
        }
    }

    /// A plan line keeps its JSON: the kind as its plural name, the action as its snake-case name.
    #[test]
    fn a_plan_line_serializes_as_before() {
        let line = EntityPlan {
            kind: ResourceKind::Servers,
            name: "s".into(),
            action: EntityAction::Rename,
            changed: vec!["associated_tools".into()],
            renamed_to: Some("s_imported".into()),
            notes: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&line).expect("a plan line serializes"),
            r#"{"kind":"servers","name":"s","action":"rename","changed":["associated_tools"],"renamed_to":"s_imported"}"#
        );
    }
}
