//! The master key's commands: rotating to a new key, recording one batch of values sealed again under it,
//! and retiring an old key. The crypto happens in the caller (which holds the keys); these rules check the
//! key ids against the log, so that a batch sealed under a key that is no longer current, or for a value
//! that changed since it was read, never lands, and a key still sealing something is never retired.

use super::{Context, Rejection};
use crate::event::{EncryptionInfo, Event};
use crate::master_key::{
    sealed_key_id, MasterKeyRetired, MasterKeyRotated, ResealedEntity, ResealedRequestValue, ResealedSetting,
    ResealedSigningKey, ResealedUser, SealedAt, SecretsResealed,
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
        if sealed_key_id(&item.new) != Some(key_id.as_str()) {
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
