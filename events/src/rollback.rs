//! Rollback and revert: the compensating events that bring settings and entities back to how an earlier
//! point of the log held them. History is never rewritten: a rollback is one more batch, whose cause names
//! the point it returns to, and it can itself be rolled back.
//!
//! The caller folds the log up to the target point and passes what it held ([`RollbackRequest`]); the plan
//! compares that with the current state, key by key and entity by entity. It is pure, so the dry run and
//! the apply (re-planned by the writer under the log's lock) agree. Locked keys are reported and left
//! alone; a value the current catalog no longer accepts, or a partial rollback that would leave an entity
//! naming one that does not exist, refuses the whole rollback.

use crate::catalog::{Catalog, Reload};
use crate::decide::{Rejection, SettingsLookup};
use crate::event::{
    Event, ResourceCreated, ResourceDeleted, ResourceUpdated, SettingChanged, SettingReset, StoredValue, MASK,
};
use crate::resource::{self, ResourceKind};
use crate::value::Input;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What the log held at the point to return to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RollbackRequest {
    /// The seq of the point (the state after that event).
    pub to_seq: u64,
    /// The log's value of each key then; a key absent had no value in the log (environment or default).
    pub settings: BTreeMap<String, StoredValue>,
    /// The entities then, by kind and identity.
    pub resources: BTreeMap<ResourceKind, BTreeMap<String, Map<String, Value>>>,
    /// Only these subjects (setting keys, or `KIND/NAME` for entities); everything when `None`.
    pub only: Option<BTreeSet<String>>,
    /// Apply only if the log's head is still this seq (the head a reviewed dry run showed).
    pub expected_head: Option<u64>,
}

/// Entities by kind and identity.
type Entities = BTreeMap<ResourceKind, BTreeMap<String, Map<String, Value>>>;

/// What a rollback does to one key or entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// The key gets back the value it had.
    Set,
    /// The key had no value in the log then: its value is removed (environment or default again).
    Reset,
    /// The entity did not exist now and is created as it was.
    Create,
    /// The entity takes back the fields it had.
    Update,
    /// The entity did not exist then and is deleted.
    Delete,
    /// The key is locked: reported, never changed.
    Locked,
    /// The old value does not fit the current catalog: the rollback is refused.
    Invalid,
}

impl StepAction {
    /// The name it is serialized as (`set`, `update`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::Set => "set",
            StepAction::Reset => "reset",
            StepAction::Create => "create",
            StepAction::Update => "update",
            StepAction::Delete => "delete",
            StepAction::Locked => "locked",
            StepAction::Invalid => "invalid",
        }
    }
}

/// One line of a rollback plan. Values are masked when the key is sensitive; entities are shown by the
/// names of the fields that change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The setting key, or `KIND/NAME`.
    pub subject: String,
    pub action: StepAction,
    /// The value now (settings), masked when sensitive.
    pub current: Value,
    /// The value it returns to (settings), masked when sensitive.
    pub value: Value,
    /// The fields that change (entities updated).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// The key applies at the next start of each process, not live.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restart_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The plan of a rollback, and the events that carry it out.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub events: Vec<Event>,
}

fn wanted(only: &Option<BTreeSet<String>>, subject: &str) -> bool {
    only.as_ref().is_none_or(|o| o.contains(subject))
}

fn shown(value: Option<&StoredValue>, sensitive: bool) -> Value {
    match value {
        None => Value::Null,
        Some(_) if sensitive => Value::String(MASK.into()),
        Some(v) => v.masked(),
    }
}

/// Compares the state at the target point with `state` and says what returning to it changes. Refuses
/// (with the plan's words) a subject that does not exist at either point, a value the catalog no longer
/// accepts, and a partial rollback that would break a reference.
pub fn plan(catalog: &Catalog, state: &dyn SettingsLookup, req: &RollbackRequest) -> Result<Plan, Rejection> {
    let mut plan = Plan { steps: Vec::new(), events: Vec::new() };
    plan_settings(catalog, state, req, &mut plan);
    refuse_unknown_subjects(catalog, state, req)?;
    let result = plan_entities(state, req, &mut plan);
    refuse_broken_references(&result)?;
    Ok(plan)
}

/// The settings' steps and events, key by key in key order.
fn plan_settings(catalog: &Catalog, state: &dyn SettingsLookup, req: &RollbackRequest, plan: &mut Plan) {
    let Plan { steps, events } = plan;
    let mut keys: BTreeSet<String> = req.settings.keys().cloned().collect();
    keys.extend(state.setting_keys());
    for key in keys.iter().filter(|k| wanted(&req.only, k)) {
        let (then, now) = (req.settings.get(key), state.current(key));
        if then == now {
            continue;
        }
        let spec = catalog.get(key);
        let sensitive = spec.is_some_and(|s| s.sensitive);
        let step = |action, message: Option<String>| Step {
            subject: key.clone(),
            action,
            current: shown(now, sensitive),
            value: shown(then, sensitive),
            changed: Vec::new(),
            restart_required: spec.is_some_and(|s| s.reload == Reload::Restart),
            message,
        };
        let Some(spec) = spec else {
            steps.push(step(StepAction::Invalid, Some(format!("unknown key {key}: the catalog no longer has it"))));
            continue;
        };
        if spec.locked {
            let message = format!("key {key} is locked: only the environment seeds it, so it is left alone");
            steps.push(step(StepAction::Locked, Some(message)));
            continue;
        }
        match then {
            Some(value) => {
                if let StoredValue::Plain(plain) = value {
                    if let Err(e) = spec.parse(&Input::Json(plain.clone())) {
                        let message = format!("the value it had no longer fits: {e}");
                        steps.push(step(StepAction::Invalid, Some(message)));
                        continue;
                    }
                }
                steps.push(step(StepAction::Set, None));
                events.push(Event::SettingChanged(SettingChanged {
                    key: key.clone(),
                    value: value.clone(),
                    previous: now.cloned(),
                }));
            }
            None => {
                steps.push(step(StepAction::Reset, None));
                events.push(Event::SettingReset(SettingReset { key: key.clone(), previous: now.cloned() }));
            }
        }
    }
}

/// Refuses a subject of `only` that exists at neither point.
fn refuse_unknown_subjects(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    req: &RollbackRequest,
) -> Result<(), Rejection> {
    if let Some(only) = &req.only {
        let unknown: Vec<&String> = only
            .iter()
            .filter(|s| match s.split_once('/').and_then(|(k, n)| Some((k.parse::<ResourceKind>().ok()?, n))) {
                Some((kind, name)) => {
                    state.resource(kind, name).is_none()
                        && !req.resources.get(&kind).is_some_and(|m| m.contains_key(name))
                }
                None => catalog.get(s).is_none() && !req.settings.contains_key(*s) && state.current(s).is_none(),
            })
            .collect();
        if !unknown.is_empty() {
            let names: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            return Err(Rejection::missing(format!("nothing to roll back by that name: {}", names.join(", "))));
        }
    }
    Ok(())
}

/// The entities' steps and events, and every entity as the rollback leaves it (for the reference check).
fn plan_entities(state: &dyn SettingsLookup, req: &RollbackRequest, plan: &mut Plan) -> Entities {
    let Plan { steps, events } = plan;
    // Entities: creates and updates in dependency order (what a server names exists before it), then
    // deletes in the reverse order (a server goes before what it names).
    let mut deletes = Vec::new();
    let mut result: Entities = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let empty = BTreeMap::new();
        let then_all = req.resources.get(&kind).unwrap_or(&empty);
        let mut names: BTreeSet<String> = then_all.keys().cloned().collect();
        names.extend(state.resource_names(kind));
        for name in names {
            let subject = format!("{kind}/{name}");
            let (then, now) = (then_all.get(&name), state.resource(kind, &name));
            let chosen = wanted(&req.only, &subject);
            let after = if chosen { then } else { now };
            if let Some(fields) = after {
                result.entry(kind).or_default().insert(name.clone(), fields.clone());
            }
            if !chosen || then == now {
                continue;
            }
            let step = |action, changed| Step {
                subject: subject.clone(),
                action,
                current: Value::Null,
                value: Value::Null,
                changed,
                restart_required: false,
                message: None,
            };
            match (then, now) {
                (Some(fields), None) => {
                    steps.push(step(StepAction::Create, Vec::new()));
                    events.push(Event::ResourceCreated(ResourceCreated {
                        kind,
                        name: name.clone(),
                        fields: Value::Object(fields.clone()),
                    }));
                }
                (Some(fields), Some(old)) => {
                    let changed = crate::registry_import::diff(old, fields);
                    steps.push(step(StepAction::Update, changed.clone()));
                    events.push(Event::ResourceUpdated(ResourceUpdated {
                        kind,
                        name: name.clone(),
                        fields: Value::Object(fields.clone()),
                        changed,
                    }));
                }
                (None, Some(_)) => {
                    steps.push(step(StepAction::Delete, Vec::new()));
                    deletes.push(Event::ResourceDeleted(ResourceDeleted { kind, name }));
                }
                (None, None) => {}
            }
        }
    }
    deletes.reverse();
    events.extend(deletes);
    result
}

/// Refuses a partial rollback that would leave an entity naming one that would not exist.
fn refuse_broken_references(
    result: &BTreeMap<ResourceKind, BTreeMap<String, Map<String, Value>>>,
) -> Result<(), Rejection> {
    let mut broken = Vec::new();
    for (kind, entities) in result {
        for (name, fields) in entities {
            for (target, target_name) in resource::referenced(*kind, fields) {
                if !result.get(&target).is_some_and(|m| m.contains_key(&target_name)) {
                    broken.push(format!("{kind}/{name} would name {target}/{target_name}, which would not exist"));
                }
            }
        }
    }
    if !broken.is_empty() {
        return Err(Rejection::conflict(format!(
            "the rollback would break references: {}; include them in the rollback",
            broken.join("; ")
        )));
    }
    Ok(())
}

/// The events of a rollback, refused whole if any step is invalid or the head moved since the dry run.
pub fn decide(catalog: &Catalog, state: &dyn SettingsLookup, req: &RollbackRequest) -> Result<Vec<Event>, Rejection> {
    if let Some(expected) = req.expected_head {
        let head = state.head_seq();
        if head != expected {
            return Err(Rejection::conflict(format!(
                "the store changed since the plan was made: its head is seq {head}, the plan saw seq {expected}"
            )));
        }
    }
    let plan = plan(catalog, state, req)?;
    let invalid: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action == StepAction::Invalid)
        .map(|s| format!("{}: {}", s.subject, s.message.as_deref().unwrap_or("invalid")))
        .collect();
    if !invalid.is_empty() {
        return Err(Rejection::invalid(format!(
            "the rollback was refused: {}; leave those keys out with --keys",
            invalid.join("; ")
        )));
    }
    Ok(plan.events)
}
