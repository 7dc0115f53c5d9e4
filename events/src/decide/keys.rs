//! The master key's commands: rotating to a new key, recording one batch of values sealed again under it,
//! and retiring an old key. The crypto happens in the caller (which holds the keys); these rules check the
//! key ids against the log, so that a batch sealed under a key that is no longer current, or for a value
//! that changed since it was read, never lands, and a key still sealing something is never retired.

use super::{Context, Rejection};
use crate::event::{EncryptionInfo, Event, ResourceUpdated, SettingReset};
use crate::master_key::{
    sealed_key_id, shred_subject, MasterKeyRetired, MasterKeyRotated, ResealedEntity, ResealedRequestValue,
    ResealedSetting, ResealedSigningKey, ResealedUser, SealedAt, SecretShredded, SecretsResealed,
};
use std::collections::{BTreeMap, HashMap};

/// One value of the current state sealed again: where it lives, the ciphertext read there, the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    pub at: SealedAt,
    pub old: String,
    pub new: String,
}

pub(super) fn rotate(cx: &Context<'_>, encryption: EncryptionInfo) -> Result<Vec<Event>, Rejection> {
    let keys = cx.state.master_keys().cloned().unwrap_or_default();
    let current = keys.current().to_string();
    if encryption.key_id.is_empty() || !encryption.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Rejection::invalid(format!("key id {:?} is not a key id", encryption.key_id)));
    }
    if encryption.key_id == current {
        return Err(Rejection::state(format!("key {current} is already the current key")));
    }
    if let Some(known) = keys.get(&encryption.key_id) {
        let how = if known.retired_seq.is_some() { "was retired" } else { "sealed values before" };
        return Err(Rejection::state(format!(
            "key {} {how} (seq {}): a rotation moves to a key the store has never used",
            encryption.key_id, known.since_seq
        )));
    }
    Ok(vec![Event::MasterKeyRotated(MasterKeyRotated { encryption, previous: current })])
}

/// Records the values of `items` that still hold the ciphertext they were read with; a value changed since
/// (by another writer) is left for the next batch, which reads it again. Nothing to record appends nothing.
pub(super) fn reseal(cx: &Context<'_>, key_id: String, items: Vec<Reseal>) -> Result<Vec<Event>, Rejection> {
    let current = cx.state.master_keys().map(|k| k.current().to_string()).unwrap_or_default();
    if key_id != current {
        return Err(Rejection::conflict(format!(
            "the values were sealed under key {key_id} but the current key is {current}: run the rotation again"
        )));
    }
    let now: HashMap<SealedAt, &str> = cx.state.sealed_values().into_iter().collect();
    let mut event = SecretsResealed { key_id: key_id.clone(), ..SecretsResealed::default() };
    let mut entities: BTreeMap<(crate::ResourceKind, String), ResealedEntity> = BTreeMap::new();
    for item in items {
        // A value sealed under a data key is under the current key through its wrapping (the caller
        // re-wraps the data keys); one sealed under a master key directly must name the current one.
        if crate::master_key::sealed_data_key(&item.new).is_none() && sealed_key_id(&item.new) != Some(key_id.as_str())
        {
            return Err(Rejection::invalid(format!("the new value of {} is not sealed under key {key_id}", item.at)));
        }
        if now.get(&item.at).copied() != Some(item.old.as_str()) {
            continue;
        }
        match item.at {
            SealedAt::Setting { key } => event.settings.push(ResealedSetting { key, value: item.new }),
            SealedAt::Credentials { kind, name } => {
                entities
                    .entry((kind, name.clone()))
                    .or_insert_with(|| ResealedEntity { kind, name, auth_value: None, headers: BTreeMap::new() })
                    .auth_value = Some(item.new);
            }
            SealedAt::Header { kind, name, header } => {
                entities
                    .entry((kind, name.clone()))
                    .or_insert_with(|| ResealedEntity { kind, name, auth_value: None, headers: BTreeMap::new() })
                    .headers
                    .insert(header, item.new);
            }
            SealedAt::UserPassword { name } => event.users.push(ResealedUser { name, password_hash: item.new }),
            SealedAt::SigningKey { kid } => {
                event.signing_keys.push(ResealedSigningKey { kid, sealed_key: item.new });
            }
            SealedAt::RequestSetting { id, index, .. } | SealedAt::RequestCredentials { id, index, .. } => {
                event.requests.push(ResealedRequestValue { id, index, header: None, value: item.new });
            }
            SealedAt::RequestHeader { id, index, header, .. } => {
                event.requests.push(ResealedRequestValue { id, index, header: Some(header), value: item.new });
            }
            SealedAt::RolloutValue { id, key } => {
                event.rollouts.push(crate::master_key::ResealedRolloutValue { id, key, value: item.new });
            }
        }
    }
    event.resources = entities.into_values().collect();
    if event.count() == 0 {
        return Ok(Vec::new());
    }
    Ok(vec![Event::SecretsResealed(event)])
}

/// How many values of the current state are still sealed under each key.
pub fn in_use(cx_state: &dyn super::SettingsLookup) -> BTreeMap<String, Vec<SealedAt>> {
    let mut by_key: BTreeMap<String, Vec<SealedAt>> = BTreeMap::new();
    for (at, text) in cx_state.sealed_values() {
        by_key.entry(sealed_key_id(text).unwrap_or("(unknown form)").to_string()).or_default().push(at);
    }
    by_key
}

pub(super) fn retire(cx: &Context<'_>, key_id: String) -> Result<Vec<Event>, Rejection> {
    let keys = cx.state.master_keys().cloned().unwrap_or_default();
    let Some(key) = keys.get(&key_id) else {
        let known: Vec<&str> = keys.keys.iter().map(|k| k.key_id.as_str()).collect();
        return Err(Rejection::missing(format!(
            "no master key {key_id} in this store (its keys: {})",
            known.join(", ")
        )));
    };
    if let Some(seq) = key.retired_seq {
        return Err(Rejection::state(format!("key {key_id} was retired already (seq {seq})")));
    }
    if keys.current() == key_id {
        return Err(Rejection::state(format!(
            "key {key_id} is the current key: rotate to a new key first (cfgledger key rotate)"
        )));
    }
    if let Some(places) = in_use(cx.state).remove(&key_id) {
        let shown: Vec<String> = places.iter().take(3).map(ToString::to_string).collect();
        let more = places.len().saturating_sub(shown.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        return Err(Rejection::state(format!(
            "key {key_id} still seals {} value(s) of the current state ({}{more}): finish the rotation first (cfgledger key rotate)",
            places.len(),
            shown.join(", ")
        )));
    }
    Ok(vec![Event::MasterKeyRetired(MasterKeyRetired { key_id })])
}

/// Forgets `subject` (a qualified setting key or `KIND/NAME`) for good: its current secret is removed (the
/// setting reset, the entity's credentials and sealed headers dropped) and a [`SecretShredded`] names the
/// data keys destroyed with it. The writer fills `data_keys` under the write lock with every data key the
/// store holds for the subject, and destroys them in the same transaction. Refused while a pending change
/// request or an active rollout holds a sealed value for the subject (their values would be lost with it),
/// and when there is nothing sealed to forget.
pub(super) fn shred(
    cx: &Context<'_>,
    subject: String,
    data_keys: Vec<String>,
    reason: String,
) -> Result<Vec<Event>, Rejection> {
    super::require_initialized(cx.state)?;
    if reason.trim().is_empty() {
        return Err(Rejection::invalid("a shred needs a reason: it is what the audit keeps instead of the value"));
    }
    let mut holders = Vec::new();
    let mut current = false;
    for (at, _) in cx.state.sealed_values() {
        if shred_subject(&at.binding()).as_deref() != Some(subject.as_str()) {
            continue;
        }
        match at {
            SealedAt::Setting { .. } | SealedAt::Credentials { .. } | SealedAt::Header { .. } => current = true,
            other => holders.push(other.to_string()),
        }
    }
    if !holders.is_empty() {
        holders.sort();
        holders.dedup();
        return Err(Rejection::conflict(format!(
            "{subject} cannot be shredded while {} hold(s) a sealed value for it: withdraw, reject or finish them first",
            holders.join(", ")
        )));
    }
    let mut events = Vec::new();
    if current {
        match subject.split_once('/') {
            None => events.push(Event::SettingReset(SettingReset { key: subject.clone(), previous: None })),
            Some((kind, name)) => {
                let kind: crate::ResourceKind = kind
                    .parse()
                    .map_err(|_| Rejection::invalid(format!("{subject}: {kind:?} is not an entity kind")))?;
                let mut fields = cx
                    .state
                    .resource(kind, name)
                    .cloned()
                    .ok_or_else(|| Rejection::missing(format!("no entity {subject}")))?;
                let mut changed = Vec::new();
                for field in ["auth_value", "auth_type"] {
                    if fields.remove(field).is_some() {
                        changed.push(field.to_string());
                    }
                }
                if let Some(serde_json::Value::Object(headers)) = fields.get_mut("headers") {
                    let before = headers.len();
                    headers.retain(|_, v| crate::resource::sealed_header(v).is_none());
                    if headers.len() != before {
                        changed.push("headers".to_string());
                    }
                }
                events.push(Event::ResourceUpdated(ResourceUpdated {
                    kind,
                    name: name.to_string(),
                    fields: serde_json::Value::Object(fields),
                    changed,
                }));
            }
        }
    }
    if events.is_empty() && data_keys.is_empty() {
        return Err(Rejection::missing(format!(
            "nothing sealed for {subject}: no current secret and no data key to destroy (a setting is named ns:KEY, an entity KIND/NAME)"
        )));
    }
    events.push(Event::SecretShredded(SecretShredded { subject, data_keys, reason }));
    Ok(events)
}
