//! The effective value of every key: the log's value, else the process environment's, else the catalog
//! default, with the source that won. Restart-required keys keep the value the process booted with and
//! report the newer stored value as pending.

use crate::settings::SettingsState;
use cfgledger_events::catalog::{Catalog, Reload, SettingSpec};
use cfgledger_events::event::StoredValue;
use cfgledger_events::{Input, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// Which layer gave a key its value; serialized as `db`, `env`, `default` or `unset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    Db,
    Env,
    Default,
    /// No layer has a value.
    Unset,
}

impl ValueSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueSource::Db => "db",
            ValueSource::Env => "env",
            ValueSource::Default => "default",
            ValueSource::Unset => "unset",
        }
    }
}

/// One key as a process sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingView {
    /// The qualified key, `namespace:KEY`.
    pub key: String,
    /// The value in force for this process (its boot value for a restart-required key).
    pub value: Option<StoredValue>,
    pub source: ValueSource,
    /// For a restart-required key whose resolved value changed since boot: the value the next start uses.
    pub pending: Option<(Option<StoredValue>, ValueSource)>,
    /// Provenance of the log's value, when the log holds one.
    pub seq: Option<u64>,
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<String>,
    /// The version of the key: the seq of the last event that changed or reset it.
    pub version: u64,
    /// An environment value that did not fit the key's type, and was therefore ignored.
    pub env_error: Option<String>,
    /// A value the log holds that no longer fits the key's type (written under an older catalog), and was
    /// therefore passed over for the environment or the default.
    pub stored_error: Option<String>,
}

/// The resolved values of restart-required keys when the process started.
pub type BootValues = HashMap<String, (Option<StoredValue>, ValueSource)>;

/// Resolves one key with precedence DB > process environment > catalog default.
fn resolve_one(spec: &SettingSpec, state: &SettingsState, env: &BTreeMap<String, String>) -> SettingView {
    let entry = state.get(&spec.id);
    let mut env_error = None;
    // The environment names the key with its namespace's prefix (`CFGLEDGER_LOG_LEVEL`); an empty value is
    // unset, as the application reads it.
    let env_value = env.get(&spec.env_name).filter(|raw| !raw.is_empty()).and_then(|raw| {
        match spec.parse(&Input::Text(raw.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                // Named without the value: the environment may hold secrets of other applications.
                env_error = Some(e.without_value());
                None
            }
        }
    });
    let stored_error = match entry.map(|e| &e.value) {
        Some(StoredValue::Plain(v)) => spec.parse(&Input::Json(v.clone())).err().map(|e| e.to_string()),
        _ => None,
    };
    let usable = entry.filter(|_| stored_error.is_none());
    let (value, source) = match (usable, env_value, &spec.default) {
        (Some(e), _, _) if !spec.bootstrap => (Some(e.value.clone()), ValueSource::Db),
        (_, Some(v), _) => (Some(StoredValue::Plain(v)), ValueSource::Env),
        (_, None, Some(d)) => (Some(StoredValue::Plain(d.clone())), ValueSource::Default),
        (_, None, None) => (None, ValueSource::Unset),
    };
    SettingView {
        key: spec.id.clone(),
        value,
        source,
        pending: None,
        seq: entry.map(|e| e.seq),
        updated_at: entry.map(|e| e.updated_at),
        updated_by: entry.map(|e| e.updated_by.clone()),
        version: state.version(&spec.id),
        env_error,
        stored_error,
    }
}

/// Every catalog key, resolved. With `boot`, restart-required keys keep their boot value and report the
/// new one as pending.
pub fn resolve(
    catalog: &Catalog,
    state: &SettingsState,
    env: &BTreeMap<String, String>,
    boot: Option<&BootValues>,
) -> Vec<SettingView> {
    catalog.specs().iter().map(|spec| resolve_key(spec, state, env, boot)).collect()
}

/// One key, resolved as [`resolve`] resolves it.
pub fn resolve_key(
    spec: &SettingSpec,
    state: &SettingsState,
    env: &BTreeMap<String, String>,
    boot: Option<&BootValues>,
) -> SettingView {
    let mut view = resolve_one(spec, state, env);
    if spec.reload == Reload::Restart {
        if let Some((boot_value, boot_source)) = boot.and_then(|b| b.get(&spec.id)) {
            if *boot_value != view.value {
                let now = (view.value.take(), view.source);
                view.value = boot_value.clone();
                view.source = *boot_source;
                view.pending = Some(now);
            }
        }
    }
    view
}

/// The boot values of restart-required keys, taken from a resolution made at start.
pub fn boot_values(catalog: &Catalog, views: &[SettingView]) -> BootValues {
    views
        .iter()
        .filter(|v| catalog.get(&v.key).is_some_and(|s| s.reload == Reload::Restart))
        .map(|v| (v.key.clone(), (v.value.clone(), v.source)))
        .collect()
}
