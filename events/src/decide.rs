//! `decide`: validates a command against the catalog and the current state and turns it into events, or
//! rejects it. It is the only place where validation happens; `apply` in the projections trusts the log.
//! Secrets are sealed through an injected [`Sealer`], so this stays free of randomness.

use crate::catalog::{Catalog, SettingSpec};
use crate::event::{
    ChangeRejected, EncryptionInfo, EnvSeeded, Event, ImportApplied, ResourceCreated, ResourceDeleted, ResourceUpdated,
    SecretGenerated, SeededValue, SettingChanged, SettingReset, StoreCreated, StoredValue, UserAdded, UserRemoved,
    MASK,
};
use crate::resource::{self, ResourceKind};
use crate::value::Input;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What `decide` needs to know of the current state.
pub trait SettingsLookup {
    /// The value the log holds for `key` now, if any.
    fn current(&self, key: &str) -> Option<&StoredValue>;
    /// Whether the log has ever held a value for `key` (set, seeded, then maybe reset).
    fn ever_held(&self, key: &str) -> bool;
    /// Whether the genesis event has been written.
    fn is_initialized(&self) -> bool;
    /// The seq of the last event that changed or reset `key` (0 if none): what an `If-Match` names.
    fn version(&self, key: &str) -> u64;
    /// Whether an admin API user of that name exists.
    fn has_user(&self, name: &str) -> bool;
    /// The seq of the last event folded in.
    fn head_seq(&self) -> u64;
    /// The stored fields of an entity of the resource registry.
    fn resource(&self, kind: ResourceKind, name: &str) -> Option<&Map<String, Value>>;
    /// The entities that reference `kind`/`name`, as `kind/name`.
    fn referrers(&self, kind: ResourceKind, name: &str) -> Vec<String>;
    /// Every key the log holds a value for now.
    fn setting_keys(&self) -> Vec<String>;
    /// The identities of every entity of `kind`.
    fn resource_names(&self, kind: ResourceKind) -> Vec<String>;
}

/// The name a user's sealed password hash is bound to (the associated data of its ciphertext).
pub fn user_secret_name(name: &str) -> String {
    format!("user:{name}:password_hash")
}

/// The roles of the admin API, from most to least powerful.
pub const ROLES: [&str; 3] = ["platform_admin", "auditor", "viewer"];

/// Encrypts and decrypts sensitive values. `key` is the setting key, bound into the ciphertext.
pub trait Sealer {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String>;
    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String>;
}

/// One `.env` line that set a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Write the genesis event and the first `.env` seeding, as one batch.
    CreateStore {
        store_id: String,
        encryption: EncryptionInfo,
        env_file: String,
        entries: Vec<EnvEntry>,
    },
    /// Seed keys from `.env` that the log has never held.
    SeedEnv {
        env_file: String,
        entries: Vec<EnvEntry>,
    },
    Set {
        key: String,
        value: Input,
    },
    Reset {
        key: String,
    },
    /// Compare-and-set: decide `then` only if `key` is still at `version`.
    Expect {
        key: String,
        version: u64,
        then: Box<Command>,
    },
    /// Store a generated secret for a sensitive key that has never held a value; a no-op otherwise.
    GenerateSecret {
        key: String,
        value: String,
    },
    AddUser {
        name: String,
        role: String,
        password_hash: String,
    },
    RemoveUser {
        name: String,
    },
    /// Apply an imported document's settings as one batch (see [`plan_import`]).
    Import(ImportRequest),
    /// A new entity (409 if its identity exists).
    CreateResource {
        kind: ResourceKind,
        fields: Map<String, Value>,
    },
    /// An entity's new state, whole (PUT): credentials omitted keep the stored ones.
    ReplaceResource {
        kind: ResourceKind,
        name: String,
        fields: Map<String, Value>,
    },
    /// Top-level fields merged into an entity (PATCH): `null` removes a field.
    PatchResource {
        kind: ResourceKind,
        name: String,
        patch: Map<String, Value>,
    },
    /// 409 while other entities reference it.
    DeleteResource {
        kind: ResourceKind,
        name: String,
    },
    /// Return settings and entities to how an earlier point held them, as one batch of compensating events
    /// (see [`crate::rollback`]); a revert is a rollback of one batch's subjects to just before it.
    Rollback(crate::rollback::RollbackRequest),
    /// A document's entities (and settings) as one batch (see [`crate::registry_import`]).
    ImportRegistry {
        digest: String,
        source: Option<Value>,
        registry: crate::registry_import::RegistryImport,
        settings: Option<ImportRequest>,
    },
}

/// The settings of an imported document, with what the caller knows beyond the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    /// blake3 of the document's settings, hex.
    pub digest: String,
    /// The exporting store as the document names it.
    pub source: Option<Value>,
    /// Key and value (from a JSON object, so in key order, each key once).
    pub entries: Vec<(String, Value)>,
    /// Apply only if the log's head is still this seq (the head a reviewed dry run showed).
    pub expected_head: Option<u64>,
    /// The value each key has when the log holds none (the process environment, else the default). It does
    /// not change while a process runs, so it can be computed outside the writer.
    pub baseline: BTreeMap<String, StoredValue>,
}

/// What an import does to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// The log holds no value for the key yet; the import writes one.
    Create,
    /// The log holds a different value; the import replaces it (a conflict to review).
    Update,
    /// The value in force already equals the document's.
    Unchanged,
    /// The key is locked and the document's value differs: skipped and reported.
    Locked,
    /// Unknown key or a value that does not fit: the whole import is refused.
    Invalid,
}

/// One line of an import plan. `current` and `value` are masked when the key is sensitive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanEntry {
    pub key: String,
    pub action: PlanAction,
    pub current: Value,
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The key is not in the catalog (404).
    UnknownKey,
    /// The value does not fit the key's type or constraints (422).
    Invalid,
    /// The key is locked (403); the attempt is recorded.
    Locked,
    /// The store already exists, or does not exist yet (409).
    State,
    /// A value could not be sealed (500: an infrastructure fault, not the user's).
    Sealing,
    /// The key changed since the version the caller expected (409).
    Conflict,
    /// The thing named does not exist (404).
    Missing,
}

/// A refused command. `audit` holds the events that record the attempt; the caller appends them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub message: String,
    pub audit: Vec<Event>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// A refusal that records nothing in the log.
    fn new(kind: RejectionKind, message: impl Into<String>) -> Rejection {
        Rejection { kind, message: message.into(), audit: Vec::new() }
    }

    /// A value or an entity that does not fit (422).
    pub fn invalid(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Invalid, message)
    }

    /// A key the catalog does not know (404), named in the message.
    pub fn unknown_key(key: &str) -> Rejection {
        Rejection::new(RejectionKind::UnknownKey, format!("unknown key {key}"))
    }

    /// An attempt on a locked key (403), with the `ChangeRejected` event that records it. `action` is what
    /// was attempted (`set`, `reset`, `import`); `attempted` the value, sealed when the key is sensitive,
    /// and `None` for a bootstrap key, which is never stored in any form.
    pub fn locked(key: &str, action: &str, bootstrap: bool, attempted: Option<StoredValue>) -> Rejection {
        let message = if bootstrap {
            format!("key {key} is locked: it is read from the process environment only and never stored")
        } else {
            format!("key {key} is locked: it can only be seeded from the environment")
        };
        let audit = vec![Event::ChangeRejected(ChangeRejected {
            key: key.to_string(),
            action: action.to_string(),
            reason: "locked".to_string(),
            message: message.clone(),
            attempted,
        })];
        Rejection { kind: RejectionKind::Locked, message, audit }
    }

    /// The thing named does not exist (404).
    pub fn missing(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Missing, message)
    }

    /// The state moved since the caller looked, or the change collides with what exists (409).
    pub fn conflict(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Conflict, message)
    }

    /// The store is in the wrong state for the command: initialized already or not yet, a user that exists (409).
    pub fn state(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::State, message)
    }

    /// A value could not be sealed (500: an infrastructure fault, not the user's).
    pub fn sealing(message: impl Into<String>) -> Rejection {
        Rejection::new(RejectionKind::Sealing, message)
    }
}

/// Validates `cmd` and returns the events to append; an empty vector means there is nothing to change.
pub fn decide(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    cmd: Command,
) -> Result<Vec<Event>, Rejection> {
    match cmd {
        Command::CreateStore { store_id, encryption, env_file, entries } => {
            if state.is_initialized() {
                return Err(Rejection::state("the store is already initialized"));
            }
            let genesis =
                Event::StoreCreated(StoreCreated { store_id, format: crate::STORE_FORMAT.into(), encryption });
            let seeded = seed(catalog, state, sealer, env_file, entries, true)?;
            Ok(std::iter::once(genesis).chain(seeded).collect())
        }
        Command::SeedEnv { env_file, entries } => {
            require_initialized(state)?;
            seed(catalog, state, sealer, env_file, entries, false).map(|e| e.into_iter().collect())
        }
        Command::Set { key, value } => {
            require_initialized(state)?;
            let spec = spec(catalog, &key)?;
            if spec.locked {
                // The attempted value is recorded only when it parses, and sealed when it is a secret.
                // A bootstrap secret is never stored in any form, not even sealed in an audit record.
                let attempted = (!spec.bootstrap)
                    .then(|| spec.parse(&value).ok())
                    .flatten()
                    .and_then(|v| store(spec.sensitive, &key, &v, sealer).ok());
                return Err(Rejection::locked(&key, "set", spec.bootstrap, attempted));
            }
            let parsed = spec.parse(&value).map_err(|e| Rejection::invalid(e.to_string()))?;
            let previous = state.current(&key).cloned();
            if previous.as_ref().is_some_and(|p| same_value(p, &parsed, &key, sealer)) {
                return Ok(Vec::new());
            }
            let previous = previous.map(|p| protect(spec.sensitive, &key, p, sealer)).transpose()?;
            let value = store(spec.sensitive, &key, &parsed, sealer)?;
            Ok(vec![Event::SettingChanged(SettingChanged { key, value, previous })])
        }
        Command::Reset { key } => {
            require_initialized(state)?;
            let spec = spec(catalog, &key)?;
            if spec.locked {
                return Err(Rejection::locked(&key, "reset", spec.bootstrap, None));
            }
            match state.current(&key) {
                None => Ok(Vec::new()),
                Some(previous) => {
                    let previous = protect(spec.sensitive, &key, previous.clone(), sealer)?;
                    Ok(vec![Event::SettingReset(SettingReset { key, previous: Some(previous) })])
                }
            }
        }
        Command::Expect { key, version, then } => {
            require_initialized(state)?;
            let spec = spec(catalog, &key)?;
            if spec.locked {
                // A locked key refuses whatever the version: the attempt is recorded either way.
                return decide(catalog, state, sealer, *then);
            }
            let now = state.version(&key);
            if now != version {
                return Err(Rejection::conflict(format!(
                    "key {key} changed since version {version}: it is at version {now}"
                )));
            }
            decide(catalog, state, sealer, *then)
        }
        Command::GenerateSecret { key, value } => {
            require_initialized(state)?;
            let spec = spec(catalog, &key)?;
            if !spec.sensitive || spec.bootstrap {
                return Err(Rejection::state(format!("key {key} is not a stored secret")));
            }
            if state.ever_held(&key) {
                return Ok(Vec::new());
            }
            let parsed = spec.parse(&Input::Text(value)).map_err(|e| Rejection::invalid(e.to_string()))?;
            let value = store(true, &key, &parsed, sealer)?;
            Ok(vec![Event::SecretGenerated(SecretGenerated { key, value })])
        }
        Command::AddUser { name, role, password_hash } => {
            require_initialized(state)?;
            check_user_name(&name)?;
            if !ROLES.contains(&role.as_str()) {
                return Err(Rejection::invalid(format!("role expects one of {}; got {role:?}", ROLES.join(", "))));
            }
            if !password_hash.starts_with("$argon2id$") {
                return Err(Rejection::invalid("password hash expects an argon2id PHC string"));
            }
            if state.has_user(&name) {
                return Err(Rejection::state(format!("user {name} already exists")));
            }
            // Sealed like a secret setting: a copy of the database does not hand out hashes to crack offline.
            let password_hash = sealer
                .seal(&user_secret_name(&name), password_hash.as_bytes())
                .map_err(|e| Rejection::sealing(format!("cannot encrypt the password hash: {e}")))?;
            Ok(vec![Event::UserAdded(UserAdded { name, role, password_hash })])
        }
        Command::RemoveUser { name } => {
            require_initialized(state)?;
            if !state.has_user(&name) {
                return Err(Rejection::missing(format!("no user {name}")));
            }
            Ok(vec![Event::UserRemoved(UserRemoved { name })])
        }
        Command::Import(req) => {
            require_initialized(state)?;
            decide_import(catalog, state, sealer, req)
        }
        Command::CreateResource { kind, fields } => {
            require_initialized(state)?;
            let stored = resource::normalize(kind, fields, None, sealer)?;
            let name = resource::identity(kind, &stored)?;
            if state.resource(kind, &name).is_some() {
                return Err(Rejection::conflict(format!("{} {name} already exists", kind.singular())));
            }
            check_references(state, kind, &name, &stored)?;
            Ok(vec![Event::ResourceCreated(ResourceCreated {
                kind: kind.as_str().into(),
                name,
                fields: Value::Object(stored),
            })])
        }
        Command::ReplaceResource { kind, name, mut fields } => {
            require_initialized(state)?;
            let existing = existing_resource(state, kind, &name)?;
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
            let stored = resource::normalize(kind, fields, Some(existing), sealer)?;
            updated(state, kind, name, existing, stored)
        }
        Command::PatchResource { kind, name, patch } => {
            require_initialized(state)?;
            let existing = existing_resource(state, kind, &name)?;
            let id = kind.id_field();
            if patch.get(id).is_some_and(|v| v.as_str() != Some(name.as_str())) {
                return Err(Rejection::invalid(format!("{} {name}: {id} cannot change", kind.singular())));
            }
            let mut merged = existing.clone();
            // The stored credentials are not input: they come back only if the patch gives none.
            merged.remove("auth_value");
            let keep_auth =
                !patch.keys().any(|k| k == "auth_type" || resource::CREDENTIAL_FIELDS.contains(&k.as_str()));
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
            let stored = resource::normalize(kind, merged, Some(existing), sealer)?;
            updated(state, kind, name, existing, stored)
        }
        Command::Rollback(req) => crate::rollback::decide(catalog, state, &req),
        Command::ImportRegistry { digest, source, registry, settings } => {
            require_initialized(state)?;
            let (plans, resource_events) = crate::registry_import::plan(state, sealer, &registry)?;
            crate::registry_import::refuse_conflicts(&plans)?;
            let settings_events = match settings {
                Some(req) => decide_import(catalog, state, sealer, req)?,
                None => Vec::new(),
            };
            if resource_events.is_empty() && settings_events.is_empty() {
                return Ok(Vec::new());
            }
            let label = |p: &crate::registry_import::EntityPlan| {
                format!("{}/{}", p.kind, p.renamed_to.as_deref().unwrap_or(&p.name))
            };
            let mut head = ImportApplied {
                digest,
                source,
                created: plans.iter().filter(|p| matches!(p.action, "create" | "rename")).map(label).collect(),
                updated: plans.iter().filter(|p| p.action == "update").map(label).collect(),
                unchanged: plans.iter().filter(|p| matches!(p.action, "unchanged" | "skip")).count(),
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
        Command::DeleteResource { kind, name } => {
            require_initialized(state)?;
            existing_resource(state, kind, &name)?;
            let referrers = state.referrers(kind, &name);
            if !referrers.is_empty() {
                return Err(Rejection::conflict(format!(
                    "{} {name} is referenced by {}",
                    kind.singular(),
                    referrers.join(", ")
                )));
            }
            Ok(vec![Event::ResourceDeleted(ResourceDeleted { kind: kind.as_str().into(), name })])
        }
    }
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
    let missing: Vec<String> = resource::referenced(kind, fields)
        .into_iter()
        .filter(|(target, n)| state.resource(*target, n).is_none())
        .map(|(target, n)| format!("{}/{n}", target.as_str()))
        .collect();
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
    let changed = crate::registry_import::diff(existing, &stored);
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Event::ResourceUpdated(ResourceUpdated {
        kind: kind.as_str().into(),
        name,
        fields: Value::Object(stored),
        changed,
    })])
}

fn check_user_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(format!("user name expects 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-', '@'; got {name:?}")))
    }
}

/// Parses each entry of an import and says what applying it would do, against the log's state and the
/// values in force where the log holds none. Pure, so a dry run and the apply agree.
pub fn plan_import(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    req: &ImportRequest,
) -> Vec<PlanEntry> {
    let mut seen = BTreeSet::new();
    req.entries
        .iter()
        .map(|(key, raw)| {
            let entry = |action, current, value, message: Option<String>| PlanEntry {
                key: key.clone(),
                action,
                current,
                value,
                message,
            };
            let Some(spec) = catalog.get(key) else {
                return entry(PlanAction::Invalid, Value::Null, raw.clone(), Some(format!("unknown key {key}")));
            };
            let shown = |v: &Value| if spec.sensitive { Value::String(MASK.into()) } else { v.clone() };
            let in_force = state.current(key).or_else(|| req.baseline.get(key));
            let current =
                in_force.map_or(Value::Null, |v| if spec.sensitive { Value::String(MASK.into()) } else { v.masked() });
            if !seen.insert(key.as_str()) {
                return entry(PlanAction::Invalid, current, shown(raw), Some(format!("key {key} appears twice")));
            }
            if spec.sensitive && raw.as_str() == Some(MASK) {
                let message =
                    format!("key {key} holds the mask {MASK:?}, not a value: a masked secret cannot be imported");
                return entry(PlanAction::Invalid, current, shown(raw), Some(message));
            }
            let parsed = match spec.parse(&Input::Json(raw.clone())) {
                Ok(v) => v,
                Err(e) => return entry(PlanAction::Invalid, current, shown(raw), Some(e.to_string())),
            };
            let locked = format!("key {key} is locked: it can only be seeded from the environment");
            if spec.locked && spec.sensitive {
                // Never compared: "unchanged" would tell the importer whether it guessed the secret.
                return entry(PlanAction::Locked, current, shown(&parsed), Some(locked));
            }
            // A secret is never compared either ("unchanged" would confirm a guess): it is always written.
            if !spec.sensitive && in_force.is_some_and(|v| same_value(v, &parsed, key, sealer)) {
                return entry(PlanAction::Unchanged, current, shown(&parsed), None);
            }
            if spec.locked {
                return entry(PlanAction::Locked, current, shown(&parsed), Some(locked));
            }
            let action = if state.current(key).is_some() { PlanAction::Update } else { PlanAction::Create };
            entry(action, current, shown(&parsed), None)
        })
        .collect()
}

fn decide_import(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    req: ImportRequest,
) -> Result<Vec<Event>, Rejection> {
    let plan = plan_import(catalog, state, sealer, &req);
    let invalid: Vec<String> = plan
        .iter()
        .filter(|p| p.action == PlanAction::Invalid)
        .map(|p| p.message.clone().unwrap_or_else(|| p.key.clone()))
        .collect();
    if !invalid.is_empty() {
        return Err(Rejection::invalid(format!("the import was refused: {}", invalid.join("; "))));
    }
    if let Some(expected) = req.expected_head {
        let head = state.head_seq();
        if head != expected {
            return Err(Rejection::conflict(format!(
                "the store changed since the plan was made: its head is seq {head}, the plan saw seq {expected}"
            )));
        }
    }
    let keys = |action| plan.iter().filter(|p| p.action == action).map(|p| p.key.clone()).collect::<Vec<_>>();
    let (created, updated, refused) = (keys(PlanAction::Create), keys(PlanAction::Update), keys(PlanAction::Locked));
    if created.is_empty() && updated.is_empty() && refused.is_empty() {
        // Nothing changes and nothing is refused: an import already in force appends nothing.
        return Ok(Vec::new());
    }
    let unchanged = plan.iter().filter(|p| p.action == PlanAction::Unchanged).count();
    let mut events = vec![Event::ImportApplied(ImportApplied {
        digest: req.digest,
        source: req.source,
        created: created.clone(),
        updated: updated.clone(),
        unchanged,
        locked: refused,
    })];
    for (key, raw) in &req.entries {
        if !created.contains(key) && !updated.contains(key) {
            continue;
        }
        let spec = spec(catalog, key)?;
        let parsed = spec.parse(&Input::Json(raw.clone())).map_err(|e| Rejection::invalid(e.to_string()))?;
        let previous = state.current(key).cloned().map(|p| protect(spec.sensitive, key, p, sealer)).transpose()?;
        let value = store(spec.sensitive, key, &parsed, sealer)?;
        events.push(Event::SettingChanged(SettingChanged { key: key.clone(), value, previous }));
    }
    // Each locked key the document tried to change is an attempt on a locked key: recorded as such.
    for entry in plan.iter().filter(|p| p.action == PlanAction::Locked) {
        let spec = spec(catalog, &entry.key)?;
        let raw = req.entries.iter().find(|(k, _)| k == &entry.key).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
        let attempted = (!spec.bootstrap)
            .then(|| spec.parse(&Input::Json(raw)).ok())
            .flatten()
            .and_then(|v| store(spec.sensitive, &entry.key, &v, sealer).ok());
        events.extend(Rejection::locked(&entry.key, "import", spec.bootstrap, attempted).audit);
    }
    Ok(events)
}

/// The catalog's entry for `key`: the one lookup every command on a key starts with.
fn spec<'c>(catalog: &'c Catalog, key: &str) -> Result<&'c SettingSpec, Rejection> {
    catalog.get(key).ok_or_else(|| Rejection::unknown_key(key))
}

fn require_initialized(state: &dyn SettingsLookup) -> Result<(), Rejection> {
    if state.is_initialized() {
        Ok(())
    } else {
        Err(Rejection::state("the store is not initialized"))
    }
}

fn store(sensitive: bool, key: &str, value: &Value, sealer: &dyn Sealer) -> Result<StoredValue, Rejection> {
    if !sensitive {
        return Ok(StoredValue::Plain(value.clone()));
    }
    let plaintext = serde_json::to_vec(value).map_err(|e| Rejection::sealing(e.to_string()))?;
    sealer
        .seal(key, &plaintext)
        .map(StoredValue::Sealed)
        .map_err(|e| Rejection::sealing(format!("cannot encrypt the value of {key}: {e}")))
}

/// A value copied from the state into a new event: sealed if the key is sensitive and the value is plain
/// (written before the key was declared sensitive, or upcast from an old event), so that no new event
/// carries a secret in plaintext.
fn protect(sensitive: bool, key: &str, value: StoredValue, sealer: &dyn Sealer) -> Result<StoredValue, Rejection> {
    match value {
        StoredValue::Plain(v) if sensitive => store(true, key, &v, sealer),
        other => Ok(other),
    }
}

/// Whether the stored value already equals `new`. A sealed value that cannot be opened (another key)
/// counts as different, so that setting it rewrites it under the current key.
fn same_value(stored: &StoredValue, new: &Value, key: &str, sealer: &dyn Sealer) -> bool {
    match stored {
        StoredValue::Plain(v) => v == new,
        StoredValue::Sealed(text) => sealer
            .open(key, text)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .is_some_and(|v| &v == new),
    }
}

/// The `.env` entries that become an `EnvSeeded` event: known keys the log has never held, validated.
/// Bootstrap keys stay in the environment; unknown keys are reported in the event and skipped.
fn seed(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    env_file: String,
    entries: Vec<EnvEntry>,
    initial: bool,
) -> Result<Option<Event>, Rejection> {
    let mut values = Vec::new();
    let mut unknown = BTreeSet::new();
    let mut seen = BTreeSet::new();
    // A later line for the same key wins, as in a shell: walk from the end and keep the first sighting.
    for entry in entries.iter().rev() {
        if !seen.insert(entry.key.as_str()) {
            continue;
        }
        let Some(spec) = catalog.get(&entry.key) else {
            unknown.insert(entry.key.clone());
            continue;
        };
        if spec.bootstrap || state.ever_held(&entry.key) {
            continue;
        }
        let parsed = spec
            .parse(&Input::Text(entry.value.clone()))
            .map_err(|e| Rejection::invalid(format!("{env_file} line {}: {e}", entry.line)))?;
        values.push(SeededValue { key: entry.key.clone(), value: store(spec.sensitive, &entry.key, &parsed, sealer)? });
    }
    values.reverse();
    if values.is_empty() && !initial {
        return Ok(None);
    }
    let unknown_keys = if initial || !values.is_empty() { unknown.into_iter().collect() } else { Vec::new() };
    Ok(Some(Event::EnvSeeded(EnvSeeded { file: env_file, initial, values, unknown_keys })))
}
