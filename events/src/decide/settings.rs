//! The rules for single settings: creating the store with its first `.env` seeding, seeding keys added to
//! `.env` later, set, reset, compare-and-set (`Expect`) and generated secrets.

use super::{protect, same_value, spec, store, Command, Context, EnvEntry, Rejection};
use crate::event::{
    EncryptionInfo, EnvSeeded, Event, SecretGenerated, SeededValue, SettingChanged, SettingReset, StoreCreated,
};
use crate::value::Input;
use std::collections::BTreeSet;

pub(super) fn create_store(
    cx: &Context<'_>,
    store_id: String,
    encryption: EncryptionInfo,
    env_file: String,
    entries: Vec<EnvEntry>,
) -> Result<Vec<Event>, Rejection> {
    if cx.state.is_initialized() {
        return Err(Rejection::state("the store is already initialized"));
    }
    let genesis = Event::StoreCreated(StoreCreated { store_id, format: crate::STORE_FORMAT.into(), encryption });
    let seeded = seed(cx, env_file, entries, true)?;
    Ok(std::iter::once(genesis).chain(seeded).collect())
}

pub(super) fn seed_env(cx: &Context<'_>, env_file: String, entries: Vec<EnvEntry>) -> Result<Vec<Event>, Rejection> {
    Ok(seed(cx, env_file, entries, false)?.into_iter().collect())
}

pub(super) fn set(cx: &Context<'_>, key: String, value: Input) -> Result<Vec<Event>, Rejection> {
    let spec = spec(cx.catalog, &key)?;
    if spec.locked {
        // The attempted value is recorded only when it parses, and sealed when it is a secret.
        // A bootstrap secret is never stored in any form, not even sealed in an audit record.
        let attempted = (!spec.bootstrap)
            .then(|| spec.parse(&value).ok())
            .flatten()
            .and_then(|v| store(spec.sensitive, &key, &v, cx.sealer).ok());
        return Err(Rejection::locked(&key, "set", spec.bootstrap, attempted));
    }
    let parsed = spec.parse(&value).map_err(|e| Rejection::invalid(e.to_string()))?;
    let previous = cx.state.current(&key).cloned();
    if previous.as_ref().is_some_and(|p| same_value(p, &parsed, &key, cx.sealer)) {
        return Ok(Vec::new());
    }
    let previous = previous.map(|p| protect(spec.sensitive, &key, p, cx.sealer)).transpose()?;
    let value = store(spec.sensitive, &key, &parsed, cx.sealer)?;
    Ok(vec![Event::SettingChanged(SettingChanged { key, value, previous })])
}

pub(super) fn reset(cx: &Context<'_>, key: String) -> Result<Vec<Event>, Rejection> {
    let spec = spec(cx.catalog, &key)?;
    if spec.locked {
        return Err(Rejection::locked(&key, "reset", spec.bootstrap, None));
    }
    match cx.state.current(&key) {
        None => Ok(Vec::new()),
        Some(previous) => {
            let previous = protect(spec.sensitive, &key, previous.clone(), cx.sealer)?;
            Ok(vec![Event::SettingReset(SettingReset { key, previous: Some(previous) })])
        }
    }
}

/// Compare-and-set: `then` is decided only if `key` is still at `version`.
pub(super) fn expect(cx: &Context<'_>, key: String, version: u64, then: Command) -> Result<Vec<Event>, Rejection> {
    let spec = spec(cx.catalog, &key)?;
    if spec.locked {
        // A locked key refuses whatever the version: the attempt is recorded either way.
        return super::dispatch(cx, then);
    }
    let now = cx.state.version(&key);
    if now != version {
        return Err(Rejection::conflict(format!("key {key} changed since version {version}: it is at version {now}")));
    }
    super::dispatch(cx, then)
}

pub(super) fn generate_secret(cx: &Context<'_>, key: String, value: String) -> Result<Vec<Event>, Rejection> {
    let spec = spec(cx.catalog, &key)?;
    if !spec.sensitive || spec.bootstrap {
        return Err(Rejection::state(format!("key {key} is not a stored secret")));
    }
    if cx.state.ever_held(&key) {
        return Ok(Vec::new());
    }
    let parsed = spec.parse(&Input::Text(value)).map_err(|e| Rejection::invalid(e.to_string()))?;
    let value = store(true, &key, &parsed, cx.sealer)?;
    Ok(vec![Event::SecretGenerated(SecretGenerated { key, value })])
}

/// The `.env` entries that become an `EnvSeeded` event: known keys the log has never held, validated.
/// Bootstrap keys stay in the environment; unknown keys are reported in the event and skipped.
fn seed(cx: &Context<'_>, env_file: String, entries: Vec<EnvEntry>, initial: bool) -> Result<Option<Event>, Rejection> {
    let mut values = Vec::new();
    let mut unknown = BTreeSet::new();
    let mut seen = BTreeSet::new();
    // A later line for the same key wins, as in a shell: walk from the end and keep the first sighting.
    for entry in entries.iter().rev() {
        if !seen.insert(entry.key.as_str()) {
            continue;
        }
        let Some(spec) = cx.catalog.get(&entry.key) else {
            unknown.insert(entry.key.clone());
            continue;
        };
        if spec.bootstrap || cx.state.ever_held(&entry.key) {
            continue;
        }
        let parsed = spec
            .parse(&Input::Text(entry.value.clone()))
            .map_err(|e| Rejection::invalid(format!("{env_file} line {}: {e}", entry.line)))?;
        values.push(SeededValue {
            key: entry.key.clone(),
            value: store(spec.sensitive, &entry.key, &parsed, cx.sealer)?,
        });
    }
    values.reverse();
    if values.is_empty() && !initial {
        return Ok(None);
    }
    let unknown_keys = if initial || !values.is_empty() { unknown.into_iter().collect() } else { Vec::new() };
    Ok(Some(Event::EnvSeeded(EnvSeeded { file: env_file, initial, values, unknown_keys })))
}
