//! The rules for single settings: creating the store with its first `.env` seeding, seeding keys added to
//! `.env` later, set, reset, compare-and-set (`Expect`) and generated secrets.

use super::{protect, same_value, spec, store, Command, Context, EnvEntry, Rejection};
use crate::catalog::Catalog;
use crate::event::{
    EncryptionInfo, EnvSeeded, Event, SecretGenerated, SeededValue, SettingChanged, SettingReseeded, SettingReset,
    StoreCreated, StoredValue,
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
    let key = spec.id.clone();
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
    let key = spec.id.clone();
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
    let key = spec.id.clone();
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
    let key = spec.id.clone();
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
/// A line is placed in its namespace by its name (`CFGLEDGER_LOG_LEVEL` is cfgledger's own `LOG_LEVEL`,
/// `LOG_LEVEL` the application's). An empty value means unset, as the application reads it. Bootstrap keys
/// stay in the environment; unknown keys are reported in the event and skipped. Every line that does not
/// fit is reported at once, and then nothing is written.
fn seed(cx: &Context<'_>, env_file: String, entries: Vec<EnvEntry>, initial: bool) -> Result<Option<Event>, Rejection> {
    let (values, unknown) = seed_values(cx, &env_file, &entries)?;
    if values.is_empty() && !initial {
        return Ok(None);
    }
    let unknown_keys = if initial || !values.is_empty() { unknown } else { Vec::new() };
    Ok(Some(Event::EnvSeeded(EnvSeeded { file: env_file, initial, values, unknown_keys })))
}

/// The values a `.env` seeding would write and the unknown names it would skip, or every refused line.
fn seed_values(
    cx: &Context<'_>,
    env_file: &str,
    entries: &[EnvEntry],
) -> Result<(Vec<SeededValue>, Vec<String>), Rejection> {
    let mut values = Vec::new();
    let mut unknown = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut refused = Vec::new();
    // A later line for the same key wins, as in a shell: walk from the end and keep the first sighting.
    for entry in entries.iter().rev() {
        let Some(spec) = cx.catalog.by_env_name(&entry.key) else {
            unknown.insert(entry.key.clone());
            continue;
        };
        if !seen.insert(spec.id.as_str()) {
            continue;
        }
        if spec.bootstrap || cx.state.ever_held(&spec.id) || entry.value.is_empty() {
            continue;
        }
        match spec.parse(&Input::Text(entry.value.clone())) {
            Ok(parsed) => values.push(SeededValue {
                key: spec.id.clone(),
                value: store(spec.sensitive, &spec.id, &parsed, cx.sealer)?,
            }),
            Err(e) => refused
                .push((entry.line, format!("{env_file} line {} ({}): {}", entry.line, entry.key, e.without_value()))),
        }
    }
    if !refused.is_empty() {
        refused.sort();
        let lines: Vec<String> = refused.into_iter().map(|(_, m)| m).collect();
        let n = lines.len();
        let noun = if n == 1 { "line" } else { "lines" };
        return Err(Rejection::invalid(format!(
            "{n} {noun} of {env_file} refused; nothing was written:\n  {}",
            lines.join("\n  ")
        )));
    }
    values.reverse();
    Ok((values, unknown.into_iter().collect()))
}

/// Checks a new store's `.env` entries as its first start would seed them, before anything is created:
/// every refused line at once.
pub fn check_seed(catalog: &Catalog, env_file: &str, entries: &[EnvEntry]) -> Result<(), Rejection> {
    struct Empty;
    static NO_GOVERNANCE: crate::governance::Governance = crate::governance::Governance::EMPTY;
    impl super::SettingsLookup for Empty {
        fn governance(&self) -> &crate::governance::Governance {
            &NO_GOVERNANCE
        }
        fn current(&self, _: &str) -> Option<&StoredValue> {
            None
        }
        fn ever_held(&self, _: &str) -> bool {
            false
        }
        fn is_initialized(&self) -> bool {
            false
        }
        fn version(&self, _: &str) -> u64 {
            0
        }
        fn has_user(&self, _: &str) -> bool {
            false
        }
        fn user_role(&self, _: &str) -> Option<&str> {
            None
        }
        fn has_signing_key(&self, _: &str) -> bool {
            false
        }
        fn token_revoked(&self, _: &str) -> bool {
            false
        }
        fn head_seq(&self) -> u64 {
            0
        }
        fn resource(&self, _: crate::ResourceKind, _: &str) -> Option<&serde_json::Map<String, serde_json::Value>> {
            None
        }
        fn resource_version(&self, _: crate::ResourceKind, _: &str) -> Option<u64> {
            None
        }
        fn referrers(&self, _: crate::ResourceKind, _: &str) -> Vec<String> {
            Vec::new()
        }
        fn setting_keys(&self) -> Vec<String> {
            Vec::new()
        }
        fn resource_names(&self, _: crate::ResourceKind) -> Vec<String> {
            Vec::new()
        }
    }
    struct Check;
    impl super::Sealer for Check {
        fn seal(&self, _: &str, _: &[u8]) -> Result<String, String> {
            Ok(String::new())
        }
        fn open(&self, _: &str, _: &str) -> Result<Vec<u8>, String> {
            Err("a check opens nothing".into())
        }
    }
    let cx = Context { catalog, state: &Empty, sealer: &Check, enforce: false };
    seed_values(&cx, env_file, entries).map(|_| ())
}

/// Locked keys set again from the environment or `.env`: each value that fits and differs from the log's
/// becomes a `SettingReseeded`; every line that does not fit is reported at once and nothing is written.
pub(super) fn reseed(
    cx: &Context<'_>,
    entries: Vec<(String, EnvEntry)>,
    keys: Option<Vec<String>>,
) -> Result<Vec<Event>, Rejection> {
    let wanted: Option<Vec<&str>> = match &keys {
        Some(keys) => Some(
            keys.iter()
                .map(|k| {
                    let spec = spec(cx.catalog, k)?;
                    if !spec.locked || spec.bootstrap {
                        return Err(Rejection::invalid(format!(
                            "key {} is not a locked stored key: change it with set, not reseed",
                            crate::namespace::display(&spec.id)
                        )));
                    }
                    Ok(spec.id.as_str())
                })
                .collect::<Result<_, _>>()?,
        ),
        None => None,
    };
    let mut events = Vec::new();
    let mut refused = Vec::new();
    let mut seen = BTreeSet::new();
    for (from, entry) in entries.iter().rev() {
        let Some(spec) = cx.catalog.by_env_name(&entry.key) else { continue };
        if !spec.locked || spec.bootstrap || entry.value.is_empty() || !seen.insert(spec.id.as_str()) {
            continue;
        }
        if wanted.as_ref().is_some_and(|w| !w.contains(&spec.id.as_str())) {
            continue;
        }
        let parsed = match spec.parse(&Input::Text(entry.value.clone())) {
            Ok(v) => v,
            Err(e) => {
                let at = if entry.line > 0 { format!("{from} line {}", entry.line) } else { from.clone() };
                refused.push(format!("{at} ({}): {}", entry.key, e.without_value()));
                continue;
            }
        };
        let previous = cx.state.current(&spec.id).cloned();
        if previous.as_ref().is_some_and(|p| same_value(p, &parsed, &spec.id, cx.sealer)) {
            continue;
        }
        let previous = previous.map(|p| protect(spec.sensitive, &spec.id, p, cx.sealer)).transpose()?;
        let value = store(spec.sensitive, &spec.id, &parsed, cx.sealer)?;
        events.push(Event::SettingReseeded(SettingReseeded {
            key: spec.id.clone(),
            value,
            previous,
            from: from.clone(),
        }));
    }
    if !refused.is_empty() {
        refused.reverse();
        return Err(Rejection::invalid(format!(
            "{} refused; nothing was written:\n  {}",
            refused.len(),
            refused.join("\n  ")
        )));
    }
    if let Some(wanted) = &wanted {
        let named: Vec<&str> =
            wanted.iter().copied().filter(|k| !seen.contains(k)).map(crate::namespace::display).collect();
        if !named.is_empty() {
            return Err(Rejection::invalid(format!(
                "no value for {} in the environment or .env: a re-seed takes the value from there",
                named.join(", ")
            )));
        }
    }
    events.reverse();
    Ok(events)
}
