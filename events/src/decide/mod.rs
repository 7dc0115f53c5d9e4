//! `decide`: validates a command against the catalog and the current state and turns it into events, or
//! rejects it. It is the only place where validation happens; `apply` in the projections trusts the log.
//! Secrets are sealed through an injected [`Sealer`], so this stays free of randomness.
//!
//! This module holds the commands, the dispatch and the helpers the rules share (the catalog lookup,
//! sealing); the rules live by command family in `settings`, `users`, `import` (a document's settings) and
//! `registry` (entities), one function per command. Rejections and their constructors are in `rejection`.

mod governance;
mod import;
pub mod keys;
mod registry;
mod rejection;
mod rollout;
mod settings;
mod users;

pub use governance::{conflicts, subject_version, ProposedChange, APPROVER_ROLE};
pub use import::{plan_import, ImportRequest, PlanAction, PlanEntry};
pub use keys::Reseal;
pub use rejection::{Rejection, RejectionKind};
pub use rollout::StartRollout;
pub use settings::check_seed;
pub use users::{signing_key_id, signing_key_secret_name, user_secret_name, MIN_SIGNING_KEY, ROLES};

use crate::catalog::{Catalog, SettingSpec};
use crate::event::{EncryptionInfo, Event, StoredValue};
use crate::resource::ResourceKind;
use crate::value::Input;
use serde_json::{Map, Value};

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
    /// The role of the user of that name, if it exists.
    fn user_role(&self, name: &str) -> Option<&str>;
    /// Whether a key rotation has used this key id already.
    fn has_signing_key(&self, kid: &str) -> bool;
    /// Whether the token whose blake3 hash (hex) this is was revoked and has not yet been forgotten.
    fn token_revoked(&self, token_hash: &str) -> bool;
    /// The seq of the last event folded in.
    fn head_seq(&self) -> u64;
    /// The stored fields of an entity of the resource registry.
    fn resource(&self, kind: ResourceKind, name: &str) -> Option<&Map<String, Value>>;
    /// The seq of the last event that created or updated an entity (what its `ETag` names), if it exists.
    fn resource_version(&self, kind: ResourceKind, name: &str) -> Option<u64>;
    /// The entities that reference `kind`/`name`, as `kind/name`.
    fn referrers(&self, kind: ResourceKind, name: &str) -> Vec<String>;
    /// Every key the log holds a value for now.
    fn setting_keys(&self) -> Vec<String>;
    /// The identities of every entity of `kind`.
    fn resource_names(&self, kind: ResourceKind) -> Vec<String>;
    /// The change policy and the change requests.
    fn governance(&self) -> &crate::governance::Governance;
    /// A copy that events can be folded into: lets a command made of steps (a change request) decide each
    /// step against the state the ones before it leave. `None` where the state cannot be copied.
    fn fork(&self) -> Option<Box<dyn StateFork>> {
        None
    }
    /// The master keys the log has named (`None` for a lookup that does not keep them).
    fn master_keys(&self) -> Option<&crate::master_key::MasterKeys> {
        None
    }
    /// Every sealed value of the current state, with where it lives.
    fn sealed_values(&self) -> Vec<(crate::master_key::SealedAt, &str)> {
        Vec::new()
    }
    /// A rollout by id, whatever its status.
    fn rollout(&self, _id: &str) -> Option<&crate::rollout::Rollout> {
        None
    }
    /// The rollouts that are still active.
    fn active_rollouts(&self) -> Vec<&crate::rollout::Rollout> {
        Vec::new()
    }
}

/// A state that decided events can be folded into (see [`SettingsLookup::fork`]).
pub trait StateFork: SettingsLookup {
    /// Folds events decided against this state in, as the next seqs.
    fn fold(&mut self, events: &[Event]);
    fn as_lookup(&self) -> &dyn SettingsLookup;
}

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
    /// A user's new password (an argon2id PHC string, sealed by the rule).
    ChangePassword {
        name: String,
        password_hash: String,
    },
    /// A user's new role; nothing to change when it is the current one.
    ChangeRole {
        name: String,
        role: String,
    },
    /// End a token before it expires (a logout), by the blake3 hash of the token (hex); nothing to change
    /// when it is ended already.
    RevokeToken {
        token_hash: String,
        expires_at: u64,
    },
    /// A new token signing key (plaintext here, sealed by the rule); earlier keys verify for `grace_secs`.
    RotateSigningKey {
        key: String,
        grace_secs: u64,
    },
    /// Set locked keys again from the environment or `.env` (only those named in `keys`, when given): the
    /// audited correction of a locked key seeded wrong. Entries are named as in the environment.
    Reseed {
        /// Each entry with where it came from (`environment`, or the `.env` file's path); a later entry for
        /// the same key wins.
        entries: Vec<(String, EnvEntry)>,
        keys: Option<Vec<String>>,
    },
    /// Record that a namespace's secrets were rendered in plaintext, and which.
    RecordSecretsRendered {
        namespace: String,
        format: String,
        keys: Vec<String>,
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
    /// Compare-and-set for an entity: decide `then` only if `KIND/NAME` is still at `version`.
    ExpectResource {
        kind: ResourceKind,
        name: String,
        version: u64,
        then: Box<Command>,
    },
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
    /// A change request: its changes decided against the current state and kept; applied at once when the
    /// policy asks no approval and no apply time is given. `now` checks the apply time.
    ProposeRequest {
        author: String,
        reason: String,
        changes: Vec<ProposedChange>,
        apply_at: Option<crate::time::Timestamp>,
        now: crate::time::Timestamp,
    },
    /// The author's new version of a request: based again on the current state, its approvals withdrawn.
    EditRequest {
        id: u64,
        by: String,
        changes: Vec<ProposedChange>,
        apply_at: Option<crate::time::Timestamp>,
        now: crate::time::Timestamp,
    },
    /// An approval; the last one needed applies the request (unless it waits for its apply time).
    ApproveRequest {
        id: u64,
        approver: String,
        comment: Option<String>,
        /// Refuses the approval of a request whose apply time has passed.
        now: crate::time::Timestamp,
    },
    RejectRequest {
        id: u64,
        by: String,
        comment: Option<String>,
    },
    WithdrawRequest {
        id: u64,
        by: String,
        comment: Option<String>,
    },
    /// Apply a scheduled request whose time has come; nothing when it was applied or suspended already.
    ApplyDueRequest {
        id: u64,
        now: crate::time::Timestamp,
        /// Seconds after its apply time past which an apply is reported as late.
        late_after_secs: u64,
    },
    /// `then` without the approvals the policy asks for, by a user the policy lets bypass them: recorded.
    Bypass {
        by: String,
        then: Box<Command>,
    },
    /// Seal new values under a new master key from now on.
    RotateMasterKey {
        encryption: EncryptionInfo,
    },
    /// Record values of the current state sealed again under the current master key (one batch).
    ResealSecrets {
        key_id: String,
        items: Vec<keys::Reseal>,
    },
    /// Stop using an old master key that seals nothing of the current state.
    RetireMasterKey {
        key_id: String,
    },
    /// Forget a secret for good (see [`crate::master_key::SecretShredded`]): `subject` is a qualified setting
    /// key or `KIND/NAME`; `data_keys` is filled by the writer under the write lock.
    ShredSecret {
        subject: String,
        data_keys: Vec<String>,
        reason: String,
    },
    /// Start a gradual rollout (see [`crate::rollout`]).
    StartRollout(StartRollout),
    /// Move a rollout from `from_stage` to the next stage, or complete it from its last one (merging its
    /// values); a no-op when it is no longer at `from_stage`. Refused before the bake ends unless `manual`.
    AdvanceRollout {
        id: String,
        from_stage: u32,
        now: crate::time::Timestamp,
        manual: bool,
    },
    /// End a rollout without merging; a no-op when it has ended. `signal` names the failed health signal
    /// of an automatic rollback.
    RollBackRollout {
        id: String,
        reason: String,
        signal: Option<String>,
    },
}

/// What every rule reads: the catalog, the state the command is decided against, and the sealer.
#[derive(Clone, Copy)]
struct Context<'a> {
    catalog: &'a Catalog,
    state: &'a dyn SettingsLookup,
    sealer: &'a dyn Sealer,
    /// Whether changes the policy asks approvals for are refused (not while a request is applied).
    enforce: bool,
}

/// Validates `cmd` and returns the events to append; an empty vector means there is nothing to change.
pub fn decide(
    catalog: &Catalog,
    state: &dyn SettingsLookup,
    sealer: &dyn Sealer,
    cmd: Command,
) -> Result<Vec<Event>, Rejection> {
    dispatch(&Context { catalog, state, sealer, enforce: true }, cmd)
}

/// One rule per command, and the change policy over what the direct changes make. Every command but the
/// genesis and a rollback needs a store that exists.
fn dispatch(cx: &Context<'_>, cmd: Command) -> Result<Vec<Event>, Rejection> {
    if !matches!(cmd, Command::CreateStore { .. } | Command::Rollback(_)) {
        require_initialized(cx.state)?;
    }
    let governed = cx.enforce && governed(&cmd);
    let events = rule(cx, cmd)?;
    if governed {
        governance::check_policy(cx, &events)?;
    }
    Ok(events)
}

/// The commands that change settings and entities directly: what the change policy covers. Seeding and the
/// store's own secrets are the store's bootstrap; users and tokens are access, not configuration.
fn governed(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Set { .. }
            | Command::Reset { .. }
            | Command::Expect { .. }
            | Command::Import(_)
            | Command::CreateResource { .. }
            | Command::ReplaceResource { .. }
            | Command::PatchResource { .. }
            | Command::ExpectResource { .. }
            | Command::DeleteResource { .. }
            | Command::Rollback(_)
            | Command::ImportRegistry { .. }
            | Command::StartRollout(_)
    )
}

fn rule(cx: &Context<'_>, cmd: Command) -> Result<Vec<Event>, Rejection> {
    match cmd {
        Command::CreateStore { store_id, encryption, env_file, entries } => {
            settings::create_store(cx, store_id, encryption, env_file, entries)
        }
        Command::SeedEnv { env_file, entries } => settings::seed_env(cx, env_file, entries),
        Command::Set { key, value } => settings::set(cx, key, value),
        Command::Reset { key } => settings::reset(cx, key),
        Command::Expect { key, version, then } => settings::expect(cx, key, version, *then),
        Command::GenerateSecret { key, value } => settings::generate_secret(cx, key, value),
        Command::Reseed { entries, keys } => settings::reseed(cx, entries, keys),
        Command::RecordSecretsRendered { namespace, format, keys } => {
            Ok(vec![Event::SecretsRendered(crate::event::SecretsRendered { namespace, format, keys })])
        }
        Command::AddUser { name, role, password_hash } => users::add(cx, name, role, password_hash),
        Command::RemoveUser { name } => users::remove(cx, name),
        Command::ChangePassword { name, password_hash } => users::change_password(cx, name, password_hash),
        Command::ChangeRole { name, role } => users::change_role(cx, name, role),
        Command::RotateSigningKey { key, grace_secs } => users::rotate_signing_key(cx, key, grace_secs),
        Command::RevokeToken { token_hash, expires_at } => users::revoke_token(cx, token_hash, expires_at),
        Command::Import(req) => import::import_settings(cx, req),
        Command::CreateResource { kind, fields } => registry::create(cx, kind, fields),
        Command::ReplaceResource { kind, name, fields } => registry::replace(cx, kind, name, fields),
        Command::PatchResource { kind, name, patch } => registry::patch(cx, kind, name, patch),
        Command::DeleteResource { kind, name } => registry::delete(cx, kind, name),
        Command::ExpectResource { kind, name, version, then } => registry::expect(cx, kind, &name, version, *then),
        Command::Rollback(req) => crate::rollback::decide(cx.catalog, cx.state, &req),
        Command::ImportRegistry { digest, source, registry, settings } => {
            registry::import_registry(cx, digest, source, registry, settings)
        }
        Command::ProposeRequest { author, reason, changes, apply_at, now } => {
            governance::propose(cx, author, reason, changes, apply_at, now)
        }
        Command::EditRequest { id, by, changes, apply_at, now } => governance::edit(cx, id, by, changes, apply_at, now),
        Command::ApproveRequest { id, approver, comment, now } => governance::approve(cx, id, approver, comment, now),
        Command::RejectRequest { id, by, comment } => governance::reject(cx, id, by, comment),
        Command::WithdrawRequest { id, by, comment } => governance::withdraw(cx, id, by, comment),
        Command::ApplyDueRequest { id, now, late_after_secs } => governance::apply_due(cx, id, now, late_after_secs),
        Command::Bypass { by, then } => governance::bypass(cx, by, *then),
        Command::RotateMasterKey { encryption } => keys::rotate(cx, encryption),
        Command::ResealSecrets { key_id, items } => keys::reseal(cx, key_id, items),
        Command::RetireMasterKey { key_id } => keys::retire(cx, key_id),
        Command::ShredSecret { subject, data_keys, reason } => keys::shred(cx, subject, data_keys, reason),
        Command::StartRollout(req) => rollout::start(cx, req),
        Command::AdvanceRollout { id, from_stage, now, manual } => rollout::advance(cx, id, from_stage, now, manual),
        Command::RollBackRollout { id, reason, signal } => rollout::roll_back(cx, id, reason, signal),
    }
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
