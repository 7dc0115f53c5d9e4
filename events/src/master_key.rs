//! The master key's lifecycle as data: the events of a rotation (a new key id, the current state's
//! ciphertexts sealed again under it in batches, an old key retired), the keys a store has used, and where
//! each sealed value of the current state lives. No key and no plaintext is ever here: the events name key
//! ids and carry ciphertexts only, and the crypto itself happens outside this crate.

use crate::event::EncryptionInfo;
use crate::resource::{self, ResourceKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// From this event on, new values are sealed under `encryption.key_id`. Every earlier key still opens the
/// ciphertexts it sealed until it is retired; the values of the current state are moved by
/// [`SecretsResealed`] events that follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyRotated {
    /// The new key: derived from the new secret with the store's salt and key derivation.
    pub encryption: EncryptionInfo,
    /// The key that sealed new values before this event.
    pub previous: String,
}

/// One batch of a rotation: values of the current state, sealed again under `key_id`. Each replaces the
/// ciphertext its place holds; the plaintext is the same, so nothing else about the setting or entity
/// changes (its version for `If-Match` included, for entities).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsResealed {
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<ResealedSetting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResealedEntity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<ResealedUser>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<ResealedSigningKey>,
    /// Values held by pending change requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<ResealedRequestValue>,
    /// Values of active rollouts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<ResealedRolloutValue>,
}

/// An active rollout's sensitive value sealed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedRolloutValue {
    pub id: String,
    pub key: String,
    pub value: String,
}

/// A pending change request's value sealed again: change `index`'s setting value, or its entity's
/// `auth_value` (no `header`) or sealed header `header`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedRequestValue {
    pub id: u64,
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    pub value: String,
}

impl SecretsResealed {
    /// How many ciphertexts the batch replaces.
    pub fn count(&self) -> usize {
        self.settings.len()
            + self.resources.iter().map(|r| usize::from(r.auth_value.is_some()) + r.headers.len()).sum::<usize>()
            + self.users.len()
            + self.signing_keys.len()
            + self.requests.len()
            + self.rollouts.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedSetting {
    /// The qualified key.
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedEntity {
    pub kind: ResourceKind,
    pub name: String,
    /// The entity's sealed credentials (`auth_value`: the auth fields, OAuth secrets and query-parameter
    /// values together), when they moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_value: Option<String>,
    /// A tool's sealed header values, by header.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedUser {
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedSigningKey {
    pub kid: String,
    pub sealed_key: String,
}

/// An old key is no longer used: this build opens nothing under it from this event on, even when its
/// secret is still configured, and a rotation can never return to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeyRetired {
    pub key_id: String,
}

/// One master key the log has named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKey {
    pub key_id: String,
    /// The seq of the genesis event or of the rotation that introduced it.
    pub since_seq: u64,
    /// The seq of the event that retired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_seq: Option<u64>,
}

/// The master keys of a store, oldest first; the last one seals new values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeys {
    pub keys: Vec<MasterKey>,
    /// Every data key a [`SecretShredded`] destroyed, by id: nothing may be sealed under one again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub shredded: BTreeMap<String, ShreddedKey>,
}

/// A secret forgotten for good: the data keys its ciphertexts were sealed under were destroyed in the same
/// transaction that appended this event, so no key can open them again, in the current state or anywhere in
/// the history. The event names the subject and the key ids, never a value: the chain still verifies and the
/// audit still shows every change that happened. The same batch removes the subject's current secret (the
/// setting is reset; the entity loses its credentials and sealed headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretShredded {
    /// A qualified setting key, or `KIND/NAME` for an entity's credentials.
    pub subject: String,
    /// The data keys destroyed (every one the store held for the subject).
    pub data_keys: Vec<String>,
    pub reason: String,
}

/// A destroyed data key: whose it was and the seq of the [`SecretShredded`] that destroyed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShreddedKey {
    pub subject: String,
    pub seq: u64,
}

impl MasterKeys {
    /// The key that seals new values (empty before the genesis event).
    pub fn current(&self) -> &str {
        self.keys.last().map_or("", |k| k.key_id.as_str())
    }

    pub fn get(&self, key_id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    pub fn is_retired(&self, key_id: &str) -> bool {
        self.get(key_id).is_some_and(|k| k.retired_seq.is_some())
    }
}

/// The key id a ciphertext's text form names (`cfgl1:<key id>:<body>`), if it has that form.
pub fn sealed_key_id(text: &str) -> Option<&str> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("cfgl1"), Some(id), Some(_)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// The text form of a value sealed under a data key: `cfgl2:<data key id>:<body>`.
pub const DATA_KEY_FORM: &str = "cfgl2";

/// The data key a ciphertext's text form names (`cfgl2:<data key id>:<body>`), if it has that form.
pub fn sealed_data_key(text: &str) -> Option<&str> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(DATA_KEY_FORM), Some(id), Some(_)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// What a value sealed under `binding` can be shredded as, if anything: a setting's qualified key (its
/// value, or its value in a change request or a rollout), or `KIND/NAME` for an entity's credentials and
/// sealed headers. The store's own secrets (password hashes, token signing keys) have none: they are sealed
/// under the master key directly.
pub fn shred_subject(binding: &str) -> Option<String> {
    if let Some(rest) = binding.strip_prefix("resource:") {
        let (kind, rest) = rest.split_once(':')?;
        let name = match rest.strip_suffix(":auth_value") {
            Some(name) => name,
            None => rest.rsplit_once(":header:")?.0,
        };
        return Some(format!("{kind}/{name}"));
    }
    if let Some(rest) = binding.strip_prefix("rollout/") {
        return rest.split_once('/').map(|(_, key)| key.to_string());
    }
    // A setting's binding is its qualified key: one separator, never a `/`.
    (binding.matches(crate::namespace::SEP).count() == 1 && !binding.contains('/')).then(|| binding.to_string())
}

/// Where a sealed value of the current state lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SealedAt {
    /// A sensitive setting's value (qualified key).
    Setting { key: String },
    /// An entity's `auth_value`.
    Credentials { kind: ResourceKind, name: String },
    /// A tool's sealed header value.
    Header { kind: ResourceKind, name: String, header: String },
    /// An admin API user's password hash.
    UserPassword { name: String },
    /// A token signing key of a rotation.
    SigningKey { kid: String },
    /// A sensitive setting's value in change `index` of a pending change request.
    RequestSetting { id: u64, index: usize, key: String },
    /// An entity's `auth_value` in change `index` of a pending change request.
    RequestCredentials { id: u64, index: usize, kind: ResourceKind, name: String },
    /// A tool's sealed header in change `index` of a pending change request.
    RequestHeader { id: u64, index: usize, kind: ResourceKind, name: String, header: String },
    /// A sensitive value of an active rollout.
    RolloutValue { id: String, key: String },
}

impl SealedAt {
    /// The name the value is bound to: what [`crate::Sealer`] takes to open and seal it.
    pub fn binding(&self) -> String {
        match self {
            SealedAt::Setting { key } => key.clone(),
            SealedAt::Credentials { kind, name } => resource::auth_binding(*kind, name),
            SealedAt::Header { kind, name, header } => resource::header_binding(*kind, name, header),
            SealedAt::UserPassword { name } => crate::decide::user_secret_name(name),
            SealedAt::SigningKey { kid } => crate::decide::signing_key_secret_name(kid),
            // A request's values are bound to where they will live once it applies.
            SealedAt::RequestSetting { key, .. } => key.clone(),
            SealedAt::RequestCredentials { kind, name, .. } => resource::auth_binding(*kind, name),
            SealedAt::RequestHeader { kind, name, header, .. } => resource::header_binding(*kind, name, header),
            SealedAt::RolloutValue { id, key } => crate::rollout::secret_name(id, key),
        }
    }
}

impl fmt::Display for SealedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealedAt::Setting { key } => write!(f, "setting {key}"),
            SealedAt::Credentials { kind, name } => write!(f, "{kind}/{name} credentials"),
            SealedAt::Header { kind, name, header } => write!(f, "{kind}/{name} header {header}"),
            SealedAt::UserPassword { name } => write!(f, "user {name} password hash"),
            SealedAt::SigningKey { kid } => write!(f, "token signing key {kid}"),
            SealedAt::RequestSetting { id, key, .. } => write!(f, "change request {id}'s value of {key}"),
            SealedAt::RequestCredentials { id, kind, name, .. } => {
                write!(f, "change request {id}'s {kind}/{name} credentials")
            }
            SealedAt::RequestHeader { id, kind, name, header, .. } => {
                write!(f, "change request {id}'s {kind}/{name} header {header}")
            }
            SealedAt::RolloutValue { id, key } => write!(f, "rollout {id}'s value of {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_of_the_text_form() {
        assert_eq!(sealed_key_id("cfgl1:0123abcd:AAAA"), Some("0123abcd"));
        assert_eq!(sealed_key_id("cfgl1::AAAA"), None);
        assert_eq!(sealed_key_id("cfgl2:x:AAAA"), None);
        assert_eq!(sealed_key_id("plain"), None);
    }

    #[test]
    fn data_key_forms_and_shred_subjects() {
        assert_eq!(sealed_data_key("cfgl2:00ff:AAAA"), Some("00ff"));
        assert_eq!(sealed_data_key("cfgl1:00ff:AAAA"), None);
        assert_eq!(sealed_data_key("cfgl2::AAAA"), None);
        assert_eq!(shred_subject("mcpgateway:JWT_SECRET_KEY").as_deref(), Some("mcpgateway:JWT_SECRET_KEY"));
        let auth = resource::auth_binding(ResourceKind::Gateways, "a:b");
        assert_eq!(shred_subject(&auth).as_deref(), Some("gateways/a:b"));
        let header = resource::header_binding(ResourceKind::Tools, "t", "X-Api-Key");
        assert_eq!(shred_subject(&header).as_deref(), Some("tools/t"));
        assert_eq!(shred_subject(&crate::rollout::secret_name("r1", "ns:K")).as_deref(), Some("ns:K"));
        assert_eq!(shred_subject(&crate::decide::user_secret_name("alice")), None);
        assert_eq!(shred_subject(&crate::decide::signing_key_secret_name("k1")), None);
        assert_eq!(shred_subject("BARE"), None);
    }

    #[test]
    fn the_last_key_is_current() {
        let mut keys = MasterKeys::default();
        assert_eq!(keys.current(), "");
        keys.keys.push(MasterKey { key_id: "a".into(), since_seq: 1, retired_seq: None });
        keys.keys.push(MasterKey { key_id: "b".into(), since_seq: 9, retired_seq: None });
        assert_eq!(keys.current(), "b");
        keys.keys[0].retired_seq = Some(12);
        assert!(keys.is_retired("a") && !keys.is_retired("b") && !keys.is_retired("c"));
    }
}
