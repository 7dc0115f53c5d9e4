//! The settings projection: the value the log holds for each key, who set it and when, and which keys
//! the log has ever held (so that `.env` seeding never overwrites them).

use cfgledger_events::decide::{SettingsLookup, StateFork};
use cfgledger_events::event::{EncryptionInfo, Event, StoredValue};
use cfgledger_events::governance::Governance;
use cfgledger_events::namespace;
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::rollout::{self, Rollout};
use cfgledger_events::{Envelope, EventAt, Source, Timestamp};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The genesis facts of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    pub store_id: String,
    pub format: String,
    pub encryption: EncryptionInfo,
    pub created_at: Timestamp,
}

/// The log's value of one key, with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: StoredValue,
    pub seq: u64,
    pub updated_at: Timestamp,
    pub updated_by: String,
    pub source: Source,
}

/// An admin API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub role: String,
    /// The argon2id PHC string, sealed (open it with the store's key under
    /// `cfgledger_events::decide::user_secret_name`).
    pub password_hash: String,
    pub added_at: Timestamp,
    /// The seq of the event that last set the user's password or role (or added it): the credential
    /// version a token issued to the user carries, so that a change refuses every token issued before it.
    pub credentials_seq: u64,
}

/// A token signing key recorded by a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    /// Sealed under `cfgledger_events::decide::signing_key_secret_name(kid)`.
    pub sealed_key: String,
    /// The seq of the rotation that introduced it.
    pub seq: u64,
    pub rotated_at: Timestamp,
    /// When a later rotation's grace ends for it; `None` while it is the signing key.
    pub retires_at: Option<Timestamp>,
}

/// The token signing keys the log has rotated in, oldest first, and when the store's own
/// `JWT_SECRET_KEY` (the key before the first rotation) stops verifying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigningKeys {
    pub rotated: Vec<SigningKey>,
    pub base_retires_at: Option<Timestamp>,
}

impl SigningKeys {
    /// The seq of the last rotation (0 before any): what a cached key ring is built from.
    pub fn version(&self) -> u64 {
        self.rotated.last().map_or(0, |k| k.seq)
    }
}

/// One entity of the resource registry, with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceEntry {
    pub fields: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The seq of the event that last wrote it.
    pub version: u64,
}

/// Current settings, admin API users and the resource registry as of `applied_seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsState {
    pub store: Option<StoreInfo>,
    /// The seq of the last event applied.
    pub applied_seq: u64,
    pub(crate) values: HashMap<String, Entry>,
    held: HashSet<String>,
    /// Where the key was last changed (set, seeded, generated or reset): the version an `ETag` names.
    pub(crate) touched: HashMap<String, u64>,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) resources: BTreeMap<ResourceKind, BTreeMap<String, ResourceEntry>>,
    pub(crate) signing_keys: SigningKeys,
    /// Tokens revoked before they expire (logouts), by the blake3 hash of the token (hex), with their expiry
    /// (Unix seconds); forgotten once expired, when a later revocation is folded.
    revoked_tokens: BTreeMap<String, u64>,
    /// The change policy and every change request; shared between copies until a governance event changes
    /// it, so that the writer's copy of the state per group does not copy every request ever made.
    pub(crate) governance: std::sync::Arc<Governance>,
    /// The master keys the log has named, the last one current (`master_keys.rs`).
    pub(crate) master_keys: cfgledger_events::master_key::MasterKeys,
    /// Gradual rollouts by id, active and ended (`cfgledger_events::rollout`).
    pub(crate) rollouts: BTreeMap<String, Rollout>,
}

impl SettingsState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` as the value of the qualified `key`, set by the event `env`: the key is then held and
    /// touched there. The key is copied only when the state first meets it, and the actor's name only when
    /// it differs from the last writer's, since a replay sets the same few keys over and over, mostly by
    /// the same few actors.
    fn set_value(&mut self, key: &str, value: &StoredValue, env: EventAt<'_>) {
        if !self.held.contains(key) {
            self.held.insert(key.to_string());
        }
        self.touch(key, env.seq);
        match self.values.get_mut(key) {
            Some(entry) => {
                entry.value = value.clone();
                entry.seq = env.seq;
                entry.updated_at = env.occurred_at;
                if entry.updated_by != env.actor {
                    entry.updated_by.clear();
                    entry.updated_by.push_str(env.actor);
                }
                entry.source = env.source;
            }
            None => {
                let entry = Entry {
                    value: value.clone(),
                    seq: env.seq,
                    updated_at: env.occurred_at,
                    updated_by: env.actor.to_owned(),
                    source: env.source,
                };
                self.values.insert(key.to_string(), entry);
            }
        }
    }

    /// Records that the qualified `key` was last changed by the event at `seq`.
    fn touch(&mut self, key: &str, seq: u64) {
        match self.touched.get_mut(key) {
            Some(at) => *at = seq,
            None => {
                self.touched.insert(key.to_string(), seq);
            }
        }
    }

    /// Folds one event in. Total: validation happened in `decide`, so an event that cannot apply is a bug
    /// in the writer, not a user error. The invariants below are asserted in debug builds (tests, property
    /// runs) and trusted in release, where the fold keeps going rather than refuse a verified log:
    ///
    /// - **Invariant:** events arrive in seq order with no gap: each seq is the last applied plus one (the
    ///   log is gapless, and every reader folds it from a checkpoint or from the start).
    /// - **Invariant:** an entity is created only under an identity the registry does not hold, and updated or
    ///   deleted only while it exists (`decide`, the import planner and the rollback planner check both).
    /// - **Invariant:** an entity's fields are a JSON object (`normalize` builds them as one).
    pub fn apply(&mut self, env: &Envelope) {
        self.apply_at(env.at());
    }

    /// [`SettingsState::apply`] of an event read without its whole envelope (a rebuild's fold, which takes
    /// the actor and batch from the record's checked columns).
    pub fn apply_at(&mut self, env: EventAt<'_>) {
        debug_assert_eq!(env.seq, self.applied_seq + 1, "event {} applied after {}", env.seq, self.applied_seq);
        self.applied_seq = env.seq;
        match env.event {
            Event::StoreCreated(e) => {
                self.store = Some(StoreInfo {
                    store_id: e.store_id.clone(),
                    format: e.format.clone(),
                    encryption: e.encryption.clone(),
                    created_at: env.occurred_at,
                });
                self.master_key_created(env.seq, &e.encryption.key_id);
            }
            // Keys are kept qualified (`namespace:KEY`); a bare key of a pre-namespace log is placed by
            // `namespace::from_log`, so an old store reads as if it had been written with namespaces.
            Event::EnvSeeded(e) => {
                for v in &e.values {
                    self.set_value(&namespace::from_log(&v.key), &v.value, env);
                }
            }
            Event::SettingChanged(e) => self.set_value(&namespace::from_log(&e.key), &e.value, env),
            Event::SettingReset(e) => {
                let key = namespace::from_log(&e.key);
                self.touch(&key, env.seq);
                self.values.remove(key.as_ref());
            }
            Event::SettingReseeded(e) => self.set_value(&namespace::from_log(&e.key), &e.value, env),
            Event::SecretGenerated(e) => self.set_value(&namespace::from_log(&e.key), &e.value, env),
            Event::UserAdded(e) => {
                let user = User {
                    role: e.role.clone(),
                    password_hash: e.password_hash.clone(),
                    added_at: env.occurred_at,
                    credentials_seq: env.seq,
                };
                self.users.insert(e.name.clone(), user);
            }
            Event::UserRemoved(e) => {
                self.users.remove(&e.name);
            }
            Event::UserPasswordChanged(e) => {
                let user = self.users.get_mut(&e.name);
                debug_assert!(user.is_some(), "seq {} changes the password of {}, who does not exist", env.seq, e.name);
                if let Some(user) = user {
                    user.password_hash = e.password_hash.clone();
                    user.credentials_seq = env.seq;
                }
            }
            Event::UserRoleChanged(e) => {
                let user = self.users.get_mut(&e.name);
                debug_assert!(user.is_some(), "seq {} changes the role of {}, who does not exist", env.seq, e.name);
                if let Some(user) = user {
                    user.role = e.role.clone();
                    user.credentials_seq = env.seq;
                }
            }
            Event::TokenRevoked(e) => {
                // Deterministic pruning: by the event's own time, never a clock.
                let now_secs = u64::try_from(env.occurred_at.0.div_euclid(1_000_000)).unwrap_or(0);
                self.revoked_tokens.retain(|_, exp| *exp >= now_secs);
                self.revoked_tokens.insert(e.token_hash.clone(), e.expires_at);
            }
            Event::SigningKeyRotated(e) => {
                let grace = i64::try_from(e.grace_secs).unwrap_or(i64::MAX).saturating_mul(1_000_000);
                let until = Timestamp(env.occurred_at.0.saturating_add(grace));
                // A rotation shortens an earlier key's life to its grace, never lengthens it.
                let sooner = |t: Option<Timestamp>| Some(t.map_or(until, |t| t.min(until)));
                self.signing_keys.base_retires_at = sooner(self.signing_keys.base_retires_at);
                for key in &mut self.signing_keys.rotated {
                    key.retires_at = sooner(key.retires_at);
                }
                self.signing_keys.rotated.push(SigningKey {
                    kid: e.kid.clone(),
                    sealed_key: e.sealed_key.clone(),
                    seq: env.seq,
                    rotated_at: env.occurred_at,
                    retires_at: None,
                });
            }
            Event::ResourceCreated(e) => self.resource_created(env, e.kind, &e.name, &e.fields),
            Event::ResourceUpdated(e) => self.resource_updated(env, e.kind, &e.name, &e.fields),
            Event::ResourceDeleted(e) => {
                let removed = self.resources.get_mut(&e.kind).and_then(|entries| entries.remove(&e.name));
                debug_assert!(removed.is_some(), "seq {} deletes {}/{}, which does not exist", env.seq, e.kind, e.name);
            }
            Event::ChangeRequestProposed(_)
            | Event::ChangeRequestEdited(_)
            | Event::ChangeRequestApproved(_)
            | Event::ChangeRequestRejected(_)
            | Event::ChangeRequestWithdrawn(_)
            | Event::ChangeRequestSuspended(_)
            | Event::ChangeRequestApplied(_)
            | Event::PolicyChanged(_) => {
                std::sync::Arc::make_mut(&mut self.governance).apply(env.seq, env.occurred_at, env.batch, env.event)
            }
            Event::ChangeRejected(_)
            | Event::ImportApplied(_)
            | Event::SecretsRendered(_)
            | Event::EmergencyBypassUsed(_) => {}
            Event::MasterKeyRotated(e) => self.master_key_rotated(env.seq, e),
            Event::SecretsResealed(e) => self.secrets_resealed(env.seq, e),
            Event::MasterKeyRetired(e) => self.master_key_retired(env.seq, &e.key_id),
            Event::SecretShredded(e) => self.secret_shredded(env.seq, e),
            Event::RolloutStarted(_)
            | Event::RolloutAdvanced(_)
            | Event::RolloutRolledBack(_)
            | Event::RolloutCompleted(_) => {
                debug_assert!(
                    matches!(env.event, Event::RolloutStarted(_))
                        || rollout::id_of(env.event).is_some_and(|id| self.rollouts.contains_key(id)),
                    "seq {} moves a rollout that was never started",
                    env.seq
                );
                rollout::apply(&mut self.rollouts, env.event, env.seq, env.occurred_at, env.actor);
            }
        }
    }

    fn resource_created(&mut self, env: EventAt<'_>, kind: ResourceKind, name: &str, fields: &Value) {
        let Value::Object(fields) = fields else {
            debug_assert!(false, "seq {} creates {kind}/{name} with fields that are not an object", env.seq);
            return;
        };
        let entry = ResourceEntry {
            fields: fields.clone(),
            created_at: env.occurred_at,
            updated_at: env.occurred_at,
            version: env.seq,
        };
        let previous = self.resources.entry(kind).or_default().insert(name.to_string(), entry);
        debug_assert!(previous.is_none(), "seq {} creates {kind}/{name}, which already exists", env.seq);
    }

    fn resource_updated(&mut self, env: EventAt<'_>, kind: ResourceKind, name: &str, fields: &Value) {
        let Value::Object(fields) = fields else {
            debug_assert!(false, "seq {} updates {kind}/{name} with fields that are not an object", env.seq);
            return;
        };
        let entries = self.resources.entry(kind).or_default();
        let old = entries.get(name);
        debug_assert!(old.is_some(), "seq {} updates {kind}/{name}, which does not exist", env.seq);
        let created_at = old.map_or(env.occurred_at, |old| old.created_at);
        let entry = ResourceEntry { fields: fields.clone(), created_at, updated_at: env.occurred_at, version: env.seq };
        entries.insert(name.to_string(), entry);
    }

    /// The private parts, for the snapshot codec.
    #[allow(clippy::type_complexity)]
    pub(crate) fn parts(
        &self,
    ) -> (
        &HashMap<String, Entry>,
        &HashSet<String>,
        &HashMap<String, u64>,
        &BTreeMap<String, User>,
        &BTreeMap<ResourceKind, BTreeMap<String, ResourceEntry>>,
        &SigningKeys,
        &BTreeMap<String, u64>,
    ) {
        (
            &self.values,
            &self.held,
            &self.touched,
            &self.users,
            &self.resources,
            &self.signing_keys,
            &self.revoked_tokens,
        )
    }

    /// A state from its parts, as the snapshot codec reads them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        applied_seq: u64,
        store: Option<StoreInfo>,
        values: HashMap<String, Entry>,
        held: HashSet<String>,
        touched: HashMap<String, u64>,
        users: BTreeMap<String, User>,
        resources: BTreeMap<ResourceKind, BTreeMap<String, ResourceEntry>>,
        signing_keys: SigningKeys,
        revoked_tokens: BTreeMap<String, u64>,
        governance: Governance,
    ) -> SettingsState {
        SettingsState {
            store,
            applied_seq,
            values,
            held,
            touched,
            users,
            resources,
            signing_keys,
            revoked_tokens,
            governance: std::sync::Arc::new(governance),
            master_keys: Default::default(),
            rollouts: BTreeMap::new(),
        }
    }

    /// The change policy and the change requests.
    pub fn governance(&self) -> &Governance {
        &self.governance
    }

    /// Every rollout, by id.
    pub fn rollouts(&self) -> &BTreeMap<String, Rollout> {
        &self.rollouts
    }

    /// The rollouts, as the snapshot codec reads them.
    pub(crate) fn set_rollouts(&mut self, rollouts: BTreeMap<String, Rollout>) {
        self.rollouts = rollouts;
    }

    /// The log's value of a key: `namespace:KEY`, or a bare key of the default namespace (as the catalog and
    /// the live snapshot read one).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.values.get(qualified(key).as_ref())
    }

    /// The qualified keys changed or reset by an event after `seq`: what a snapshot built at `seq` must
    /// resolve again.
    pub fn touched_after(&self, seq: u64) -> impl Iterator<Item = &str> {
        self.touched.iter().filter(move |(_, &v)| v > seq).map(|(k, _)| k.as_str())
    }

    /// The seq of the last event that changed or reset `key` (0 if none): the key's version.
    pub fn version(&self, key: &str) -> u64 {
        self.touched.get(qualified(key).as_ref()).copied().unwrap_or(0)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.values.iter()
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// One entity of the registry.
    pub fn resource_entry(&self, kind: ResourceKind, name: &str) -> Option<&ResourceEntry> {
        self.resources.get(&kind)?.get(name)
    }

    /// Every entity of a kind, by identity.
    pub fn resources(&self, kind: ResourceKind) -> impl Iterator<Item = (&String, &ResourceEntry)> {
        self.resources.get(&kind).into_iter().flatten()
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = (&String, &User)> {
        self.users.iter()
    }

    /// The token signing keys of the log's rotations.
    pub fn signing_keys(&self) -> &SigningKeys {
        &self.signing_keys
    }

    /// Whether the token whose blake3 hash (hex) this is was revoked (a logout). An expired revocation may
    /// still be listed until the next one is folded; the token itself has expired by then.
    pub fn token_revoked(&self, token_hash: &str) -> bool {
        self.revoked_tokens.contains_key(token_hash)
    }
}

/// A key as the state is keyed: a bare key names the default namespace.
fn qualified(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(namespace::SEP) {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(namespace::join(namespace::DEFAULT, key))
    }
}

impl SettingsLookup for SettingsState {
    fn current(&self, key: &str) -> Option<&StoredValue> {
        self.get(key).map(|e| &e.value)
    }

    fn ever_held(&self, key: &str) -> bool {
        self.held.contains(qualified(key).as_ref())
    }

    fn is_initialized(&self) -> bool {
        self.store.is_some()
    }

    fn version(&self, key: &str) -> u64 {
        SettingsState::version(self, key)
    }

    fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    fn user_role(&self, name: &str) -> Option<&str> {
        self.users.get(name).map(|u| u.role.as_str())
    }

    fn has_signing_key(&self, kid: &str) -> bool {
        self.signing_keys.rotated.iter().any(|k| k.kid == kid)
    }

    fn token_revoked(&self, token_hash: &str) -> bool {
        SettingsState::token_revoked(self, token_hash)
    }

    fn head_seq(&self) -> u64 {
        self.applied_seq
    }

    fn resource(&self, kind: ResourceKind, name: &str) -> Option<&Map<String, Value>> {
        self.resource_entry(kind, name).map(|e| &e.fields)
    }

    fn resource_version(&self, kind: ResourceKind, name: &str) -> Option<u64> {
        self.resource_entry(kind, name).map(|e| e.version)
    }

    fn setting_keys(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }

    fn resource_names(&self, kind: ResourceKind) -> Vec<String> {
        self.resources(kind).map(|(name, _)| name.clone()).collect()
    }

    fn governance(&self) -> &Governance {
        &self.governance
    }

    fn fork(&self) -> Option<Box<dyn StateFork>> {
        Some(Box::new(self.clone()))
    }

    fn master_keys(&self) -> Option<&cfgledger_events::master_key::MasterKeys> {
        Some(&self.master_keys)
    }

    fn sealed_values(&self) -> Vec<(cfgledger_events::master_key::SealedAt, &str)> {
        SettingsState::sealed_values(self)
    }

    fn rollout(&self, id: &str) -> Option<&Rollout> {
        self.rollouts.get(id)
    }

    fn active_rollouts(&self) -> Vec<&Rollout> {
        self.rollouts.values().filter(|r| r.is_active()).collect()
    }

    fn referrers(&self, kind: ResourceKind, name: &str) -> Vec<String> {
        ResourceKind::ALL
            .into_iter()
            .filter(|k| k.references().iter().any(|(_, target)| *target == kind))
            .flat_map(|k| {
                self.resources(k)
                    .filter(|(_, e)| resource::referenced(k, &e.fields).iter().any(|(t, n)| *t == kind && n == name))
                    .map(move |(n, _)| format!("{}/{n}", k.as_str()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl StateFork for SettingsState {
    /// Folds decided events in as the next seqs, at this state's time, with no actor: enough for deciding
    /// the next step of a request against them, which reads only values, versions and entities.
    fn fold(&mut self, events: &[Event]) {
        for event in events {
            let env = Envelope {
                seq: self.applied_seq + 1,
                occurred_at: Timestamp(0),
                actor: cfgledger_events::Actor::system(),
                batch: cfgledger_events::Batch {
                    id: String::new(),
                    cause: cfgledger_events::Cause::Open { env_file: None },
                    reason: None,
                },
                event: event.clone(),
            };
            self.apply(&env);
        }
    }

    fn as_lookup(&self) -> &dyn SettingsLookup {
        self
    }
}
