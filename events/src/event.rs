//! The event kinds: past-tense facts with a version. Each kind has a payload struct; the wire form is
//! `{"kind": ..., "v": ..., "payload": ...}` inside the envelope. Old versions are decoded forever by
//! upcasting them to the current payload at decode time ([`Event::decode_payload`]).

use crate::envelope::DecodeError;
use crate::resource::ResourceKind;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// A setting value as the log keeps it: plain canonical JSON, or ciphertext for a sensitive key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredValue {
    Plain(Value),
    /// The text form of an XChaCha20-Poly1305 ciphertext (`cfgl1:<key id>:<base64url>`), whose
    /// plaintext is the canonical JSON of the value.
    Sealed(String),
}

/// What every output shows in place of a sensitive value.
pub const MASK: &str = "********";

impl StoredValue {
    /// The value with any secret replaced by [`MASK`]: the only form that leaves the process.
    pub fn masked(&self) -> Value {
        match self {
            StoredValue::Plain(v) => v.clone(),
            StoredValue::Sealed(_) => Value::String(MASK.to_string()),
        }
    }
}

/// Which encryption a store uses: recorded in the genesis event so that every instance derives the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionInfo {
    /// `xchacha20poly1305`.
    pub algorithm: String,
    /// `argon2id` with its parameters, e.g. `argon2id:m=19456,t=2,p=1`.
    pub kdf: String,
    /// The KDF salt, hex.
    pub salt: String,
    /// Identifies the derived key: hex of the first 8 bytes of blake3(key).
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCreated {
    pub store_id: String,
    pub format: String,
    pub encryption: EncryptionInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeededValue {
    pub key: String,
    pub value: StoredValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvSeeded {
    /// The `.env` file the values came from.
    pub file: String,
    /// True for the seeding that initialized the store; false for keys added to `.env` later.
    pub initial: bool,
    pub values: Vec<SeededValue>,
    /// Keys in the file that the catalog does not know: reported and skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingChanged {
    pub key: String,
    pub value: StoredValue,
    /// The value the log held before, if any: lets the audit trail show old and new without a replay.
    pub previous: Option<StoredValue>,
}

/// `SettingChanged` as pre-release builds wrote it (version 1): a plain value and no previous value.
#[derive(Debug, Clone, Deserialize)]
struct SettingChangedV1 {
    key: String,
    value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingReset {
    pub key: String,
    pub previous: Option<StoredValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRejected {
    pub key: String,
    /// `set` or `reset`.
    pub action: String,
    /// A short code: `locked`.
    pub reason: String,
    pub message: String,
    /// The value that was attempted (sealed when the key is sensitive).
    pub attempted: Option<StoredValue>,
}

/// A value the store generated for a sensitive key that had none (the token signing key of a new store),
/// so that a fresh install is secure without an operator inventing a secret first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretGenerated {
    pub key: String,
    /// Always sealed.
    pub value: StoredValue,
}

/// A locked key set again from the environment or `.env` by an explicit, audited re-seed: the one way a
/// locked key seeded wrong is corrected without a new store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingReseeded {
    pub key: String,
    pub value: StoredValue,
    pub previous: Option<StoredValue>,
    /// Where the value came from: `environment`, or the `.env` file's path.
    pub from: String,
}

/// A render of a namespace that included its secrets in plaintext: who asked is in the envelope, which keys
/// left the store is here, never their values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretsRendered {
    pub namespace: String,
    /// `env`, `json` or `yaml`.
    pub format: String,
    /// The qualified keys whose plaintext was rendered.
    pub keys: Vec<String>,
}

/// An admin API user. The password is kept only as an argon2id hash (PHC string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdded {
    pub name: String,
    pub role: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRemoved {
    pub name: String,
}

/// A user's new password, as an argon2id hash (sealed). Every token issued to the user before it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPasswordChanged {
    pub name: String,
    pub password_hash: String,
}

/// A user's new role. Every token issued to the user before it (carrying the old role) is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRoleChanged {
    pub name: String,
    pub role: String,
    pub previous: String,
}

/// A token ended before it expires (a web UI logout), named by the blake3 hash of the token (hex), never by
/// the token itself. Every instance refuses it until `expires_at` (Unix seconds), after which it has expired
/// anyway and the fold forgets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub token_hash: String,
    pub expires_at: u64,
}

/// A new key signs the admin API's tokens from this event on. Every earlier key (the store's
/// `JWT_SECRET_KEY` and the keys of earlier rotations) still verifies the tokens it signed for `grace_secs`
/// after this event, and none after: a rotation never lengthens an earlier key's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRotated {
    /// The key's id, as tokens name it in their `kid` header (`decide::signing_key_id`).
    pub kid: String,
    /// The key, sealed (bound to `decide::signing_key_secret_name(kid)`).
    pub sealed_key: String,
    pub grace_secs: u64,
}

/// The head of an import batch: what the document was and what the plan did. The batch's
/// `SettingChanged` events follow it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportApplied {
    /// blake3 of the imported document's settings, hex.
    pub digest: String,
    /// The exporting store, as the document names it (store id, seq, head hash), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    /// Keys the document held with the value already in force.
    pub unchanged: usize,
    /// Locked keys the document tried to change: skipped, recorded here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<String>,
}

/// A new entity of the resource registry. `fields` is the whole entity as stored (credentials sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceCreated {
    /// Written as `gateways`, `servers`, `tools`, `prompts`, `resources` or `roots`; any other name fails to decode.
    pub kind: ResourceKind,
    pub name: String,
    pub fields: Value,
}

/// An entity's new state, whole, with the fields that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUpdated {
    pub kind: ResourceKind,
    pub name: String,
    pub fields: Value,
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDeleted {
    pub kind: ResourceKind,
    pub name: String,
}

/// Every fact the log can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StoreCreated(StoreCreated),
    EnvSeeded(EnvSeeded),
    SettingChanged(SettingChanged),
    SettingReset(SettingReset),
    ChangeRejected(ChangeRejected),
    SecretGenerated(SecretGenerated),
    UserAdded(UserAdded),
    UserRemoved(UserRemoved),
    UserPasswordChanged(UserPasswordChanged),
    UserRoleChanged(UserRoleChanged),
    SigningKeyRotated(SigningKeyRotated),
    TokenRevoked(TokenRevoked),
    ImportApplied(ImportApplied),
    ResourceCreated(ResourceCreated),
    ResourceUpdated(ResourceUpdated),
    ResourceDeleted(ResourceDeleted),
    SettingReseeded(SettingReseeded),
    SecretsRendered(SecretsRendered),
    ChangeRequestProposed(crate::governance::ChangeRequestProposed),
    ChangeRequestEdited(crate::governance::ChangeRequestEdited),
    ChangeRequestApproved(crate::governance::ChangeRequestApproved),
    ChangeRequestRejected(crate::governance::ChangeRequestRejected),
    ChangeRequestWithdrawn(crate::governance::ChangeRequestWithdrawn),
    ChangeRequestSuspended(crate::governance::ChangeRequestSuspended),
    ChangeRequestApplied(crate::governance::ChangeRequestApplied),
    PolicyChanged(crate::governance::PolicyChanged),
    EmergencyBypassUsed(crate::governance::EmergencyBypassUsed),
    MasterKeyRotated(crate::master_key::MasterKeyRotated),
    SecretsResealed(crate::master_key::SecretsResealed),
    MasterKeyRetired(crate::master_key::MasterKeyRetired),
    SecretShredded(crate::master_key::SecretShredded),
    RolloutStarted(crate::rollout::RolloutStarted),
    RolloutAdvanced(crate::rollout::RolloutAdvanced),
    RolloutRolledBack(crate::rollout::RolloutRolledBack),
    RolloutCompleted(crate::rollout::RolloutCompleted),
}

impl Event {
    /// The kind name, as stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::StoreCreated(_) => "StoreCreated",
            Event::EnvSeeded(_) => "EnvSeeded",
            Event::SettingChanged(_) => "SettingChanged",
            Event::SettingReset(_) => "SettingReset",
            Event::ChangeRejected(_) => "ChangeRejected",
            Event::SecretGenerated(_) => "SecretGenerated",
            Event::UserAdded(_) => "UserAdded",
            Event::UserRemoved(_) => "UserRemoved",
            Event::UserPasswordChanged(_) => "UserPasswordChanged",
            Event::UserRoleChanged(_) => "UserRoleChanged",
            Event::SigningKeyRotated(_) => "SigningKeyRotated",
            Event::TokenRevoked(_) => "TokenRevoked",
            Event::ImportApplied(_) => "ImportApplied",
            Event::ResourceCreated(_) => "ResourceCreated",
            Event::ResourceUpdated(_) => "ResourceUpdated",
            Event::ResourceDeleted(_) => "ResourceDeleted",
            Event::SettingReseeded(_) => "SettingReseeded",
            Event::SecretsRendered(_) => "SecretsRendered",
            Event::ChangeRequestProposed(_) => "ChangeRequestProposed",
            Event::ChangeRequestEdited(_) => "ChangeRequestEdited",
            Event::ChangeRequestApproved(_) => "ChangeRequestApproved",
            Event::ChangeRequestRejected(_) => "ChangeRequestRejected",
            Event::ChangeRequestWithdrawn(_) => "ChangeRequestWithdrawn",
            Event::ChangeRequestSuspended(_) => "ChangeRequestSuspended",
            Event::ChangeRequestApplied(_) => "ChangeRequestApplied",
            Event::PolicyChanged(_) => "PolicyChanged",
            Event::EmergencyBypassUsed(_) => "EmergencyBypassUsed",
            Event::MasterKeyRotated(_) => "MasterKeyRotated",
            Event::SecretsResealed(_) => "SecretsResealed",
            Event::MasterKeyRetired(_) => "MasterKeyRetired",
            Event::SecretShredded(_) => "SecretShredded",
            Event::RolloutStarted(_) => "RolloutStarted",
            Event::RolloutAdvanced(_) => "RolloutAdvanced",
            Event::RolloutRolledBack(_) => "RolloutRolledBack",
            Event::RolloutCompleted(_) => "RolloutCompleted",
        }
    }

    /// The version this build writes for the event's kind.
    pub fn version(&self) -> u32 {
        match self {
            Event::SettingChanged(_) => 2,
            _ => 1,
        }
    }

    /// What the event is about, as the log's `key` column indexes it for audit queries and history: the
    /// qualified setting key (`mcpgateway:LOG_LEVEL`; a bare key in a pre-namespace log), or `KIND/NAME` for
    /// an entity of the registry (`tools/search`).
    pub fn subject(&self) -> Option<String> {
        self.subject_text().map(Cow::into_owned)
    }

    /// [`Event::subject`], borrowed where the event holds it whole (a setting's key, a shredded subject):
    /// reading the log compares every record's `key` column with it.
    pub(crate) fn subject_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Event::ResourceCreated(e) => Some(Cow::Owned(format!("{}/{}", e.kind, e.name))),
            Event::ResourceUpdated(e) => Some(Cow::Owned(format!("{}/{}", e.kind, e.name))),
            Event::ResourceDeleted(e) => Some(Cow::Owned(format!("{}/{}", e.kind, e.name))),
            // Indexed under its namespace's prefix (`mcpgateway:`), so that an audit of a namespace finds it.
            Event::SecretsRendered(e) => Some(Cow::Owned(format!("{}{}", e.namespace, crate::namespace::SEP))),
            Event::SecretShredded(e) => Some(Cow::Borrowed(&e.subject)),
            // Indexed under its namespace's prefix, like a render.
            Event::RolloutStarted(_)
            | Event::RolloutAdvanced(_)
            | Event::RolloutRolledBack(_)
            | Event::RolloutCompleted(_) => {
                crate::rollout::namespace_of(self).map(|ns| Cow::Owned(format!("{ns}{}", crate::namespace::SEP)))
            }
            other => other.key().map(Cow::Borrowed),
        }
    }

    /// The setting key the event is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Event::SettingChanged(e) => Some(&e.key),
            Event::SettingReset(e) => Some(&e.key),
            Event::ChangeRejected(e) => Some(&e.key),
            Event::SecretGenerated(e) => Some(&e.key),
            Event::SettingReseeded(e) => Some(&e.key),
            Event::StoreCreated(_)
            | Event::SecretsRendered(_)
            | Event::EnvSeeded(_)
            | Event::UserAdded(_)
            | Event::UserRemoved(_)
            | Event::UserPasswordChanged(_)
            | Event::UserRoleChanged(_)
            | Event::SigningKeyRotated(_)
            | Event::TokenRevoked(_)
            | Event::ImportApplied(_)
            | Event::ResourceCreated(_)
            | Event::ResourceUpdated(_)
            | Event::ResourceDeleted(_)
            | Event::ChangeRequestProposed(_)
            | Event::ChangeRequestEdited(_)
            | Event::ChangeRequestApproved(_)
            | Event::ChangeRequestRejected(_)
            | Event::ChangeRequestWithdrawn(_)
            | Event::ChangeRequestSuspended(_)
            | Event::ChangeRequestApplied(_)
            | Event::PolicyChanged(_)
            | Event::EmergencyBypassUsed(_)
            | Event::MasterKeyRotated(_)
            | Event::SecretsResealed(_)
            | Event::MasterKeyRetired(_)
            | Event::SecretShredded(_)
            | Event::RolloutStarted(_)
            | Event::RolloutAdvanced(_)
            | Event::RolloutRolledBack(_)
            | Event::RolloutCompleted(_) => None,
        }
    }

    /// The payload as JSON, as it is written inside the envelope.
    pub fn payload_value(&self) -> Value {
        self.payload_json().ok().and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or(Value::Null)
    }

    pub(crate) fn payload_json(&self) -> Result<Box<RawValue>, serde_json::Error> {
        match self {
            Event::StoreCreated(p) => serde_json::value::to_raw_value(p),
            Event::EnvSeeded(p) => serde_json::value::to_raw_value(p),
            Event::SettingChanged(p) => serde_json::value::to_raw_value(p),
            Event::SettingReset(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRejected(p) => serde_json::value::to_raw_value(p),
            Event::SecretGenerated(p) => serde_json::value::to_raw_value(p),
            Event::UserAdded(p) => serde_json::value::to_raw_value(p),
            Event::UserRemoved(p) => serde_json::value::to_raw_value(p),
            Event::UserPasswordChanged(p) => serde_json::value::to_raw_value(p),
            Event::UserRoleChanged(p) => serde_json::value::to_raw_value(p),
            Event::SigningKeyRotated(p) => serde_json::value::to_raw_value(p),
            Event::TokenRevoked(p) => serde_json::value::to_raw_value(p),
            Event::ImportApplied(p) => serde_json::value::to_raw_value(p),
            Event::ResourceCreated(p) => serde_json::value::to_raw_value(p),
            Event::ResourceUpdated(p) => serde_json::value::to_raw_value(p),
            Event::ResourceDeleted(p) => serde_json::value::to_raw_value(p),
            Event::SettingReseeded(p) => serde_json::value::to_raw_value(p),
            Event::SecretsRendered(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestProposed(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestEdited(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestApproved(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestRejected(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestWithdrawn(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestSuspended(p) => serde_json::value::to_raw_value(p),
            Event::ChangeRequestApplied(p) => serde_json::value::to_raw_value(p),
            Event::PolicyChanged(p) => serde_json::value::to_raw_value(p),
            Event::EmergencyBypassUsed(p) => serde_json::value::to_raw_value(p),
            Event::MasterKeyRotated(p) => serde_json::value::to_raw_value(p),
            Event::SecretsResealed(p) => serde_json::value::to_raw_value(p),
            Event::MasterKeyRetired(p) => serde_json::value::to_raw_value(p),
            Event::SecretShredded(p) => serde_json::value::to_raw_value(p),
            Event::RolloutStarted(p) => serde_json::value::to_raw_value(p),
            Event::RolloutAdvanced(p) => serde_json::value::to_raw_value(p),
            Event::RolloutRolledBack(p) => serde_json::value::to_raw_value(p),
            Event::RolloutCompleted(p) => serde_json::value::to_raw_value(p),
        }
    }

    /// Decodes a payload of any version this build knows, upcasting old versions to the current shape.
    pub fn decode_payload(kind: &str, v: u32, payload: &str) -> Result<Event, DecodeError> {
        fn de<'a, T: Deserialize<'a>>(kind: &str, v: u32, s: &'a str) -> Result<T, DecodeError> {
            serde_json::from_str(s).map_err(|e| DecodeError::Payload {
                kind: kind.to_string(),
                version: v,
                message: e.to_string(),
            })
        }
        Ok(match (kind, v) {
            ("StoreCreated", 1) => Event::StoreCreated(de(kind, v, payload)?),
            ("EnvSeeded", 1) => Event::EnvSeeded(de(kind, v, payload)?),
            ("SettingChanged", 1) => {
                let old: SettingChangedV1 = de(kind, v, payload)?;
                Event::SettingChanged(SettingChanged {
                    key: old.key,
                    value: StoredValue::Plain(old.value),
                    previous: None,
                })
            }
            ("SettingChanged", 2) => Event::SettingChanged(de(kind, v, payload)?),
            ("SettingReset", 1) => Event::SettingReset(de(kind, v, payload)?),
            ("ChangeRejected", 1) => Event::ChangeRejected(de(kind, v, payload)?),
            ("SecretGenerated", 1) => Event::SecretGenerated(de(kind, v, payload)?),
            ("UserAdded", 1) => Event::UserAdded(de(kind, v, payload)?),
            ("UserRemoved", 1) => Event::UserRemoved(de(kind, v, payload)?),
            ("UserPasswordChanged", 1) => Event::UserPasswordChanged(de(kind, v, payload)?),
            ("UserRoleChanged", 1) => Event::UserRoleChanged(de(kind, v, payload)?),
            ("SigningKeyRotated", 1) => Event::SigningKeyRotated(de(kind, v, payload)?),
            ("TokenRevoked", 1) => Event::TokenRevoked(de(kind, v, payload)?),
            ("ImportApplied", 1) => Event::ImportApplied(de(kind, v, payload)?),
            ("ResourceCreated", 1) => Event::ResourceCreated(de(kind, v, payload)?),
            ("ResourceUpdated", 1) => Event::ResourceUpdated(de(kind, v, payload)?),
            ("ResourceDeleted", 1) => Event::ResourceDeleted(de(kind, v, payload)?),
            ("SettingReseeded", 1) => Event::SettingReseeded(de(kind, v, payload)?),
            ("SecretsRendered", 1) => Event::SecretsRendered(de(kind, v, payload)?),
            ("ChangeRequestProposed", 1) => Event::ChangeRequestProposed(de(kind, v, payload)?),
            ("ChangeRequestEdited", 1) => Event::ChangeRequestEdited(de(kind, v, payload)?),
            ("ChangeRequestApproved", 1) => Event::ChangeRequestApproved(de(kind, v, payload)?),
            ("ChangeRequestRejected", 1) => Event::ChangeRequestRejected(de(kind, v, payload)?),
            ("ChangeRequestWithdrawn", 1) => Event::ChangeRequestWithdrawn(de(kind, v, payload)?),
            ("ChangeRequestSuspended", 1) => Event::ChangeRequestSuspended(de(kind, v, payload)?),
            ("ChangeRequestApplied", 1) => Event::ChangeRequestApplied(de(kind, v, payload)?),
            ("PolicyChanged", 1) => Event::PolicyChanged(de(kind, v, payload)?),
            ("EmergencyBypassUsed", 1) => Event::EmergencyBypassUsed(de(kind, v, payload)?),
            ("MasterKeyRotated", 1) => Event::MasterKeyRotated(de(kind, v, payload)?),
            ("SecretsResealed", 1) => Event::SecretsResealed(de(kind, v, payload)?),
            ("MasterKeyRetired", 1) => Event::MasterKeyRetired(de(kind, v, payload)?),
            ("SecretShredded", 1) => Event::SecretShredded(de(kind, v, payload)?),
            ("RolloutStarted", 1) => Event::RolloutStarted(de(kind, v, payload)?),
            ("RolloutAdvanced", 1) => Event::RolloutAdvanced(de(kind, v, payload)?),
            ("RolloutRolledBack", 1) => Event::RolloutRolledBack(de(kind, v, payload)?),
            ("RolloutCompleted", 1) => Event::RolloutCompleted(de(kind, v, payload)?),
            (
                "StoreCreated"
                | "EnvSeeded"
                | "SettingChanged"
                | "SettingReset"
                | "ChangeRejected"
                | "SecretGenerated"
                | "UserAdded"
                | "UserRemoved"
                | "UserPasswordChanged"
                | "UserRoleChanged"
                | "SigningKeyRotated"
                | "TokenRevoked"
                | "ImportApplied"
                | "ResourceCreated"
                | "ResourceUpdated"
                | "ResourceDeleted"
                | "SettingReseeded"
                | "SecretsRendered"
                | "ChangeRequestProposed"
                | "ChangeRequestEdited"
                | "ChangeRequestApproved"
                | "ChangeRequestRejected"
                | "ChangeRequestWithdrawn"
                | "ChangeRequestSuspended"
                | "ChangeRequestApplied"
                | "PolicyChanged"
                | "EmergencyBypassUsed"
                | "MasterKeyRotated"
                | "SecretsResealed"
                | "MasterKeyRetired"
                | "SecretShredded"
                | "RolloutStarted"
                | "RolloutAdvanced"
                | "RolloutRolledBack"
                | "RolloutCompleted",
                _,
            ) => return Err(DecodeError::UnsupportedVersion { kind: kind.to_string(), version: v }),
            _ => return Err(DecodeError::UnknownKind(kind.to_string())),
        })
    }
}
