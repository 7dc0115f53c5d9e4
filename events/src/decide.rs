//! `decide`: validates a command against the catalog and the current state and turns it into events, or
//! rejects it. It is the only place where validation happens; `apply` in the projections trusts the log.
//! Secrets are sealed through an injected [`Sealer`], so this stays free of randomness.

use crate::catalog::Catalog;
use crate::event::{
    ChangeRejected, EncryptionInfo, EnvSeeded, Event, SeededValue, SettingChanged, SettingReset, StoreCreated,
    StoredValue,
};
use crate::value::Input;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// What `decide` needs to know of the current state.
pub trait SettingsLookup {
    /// The value the log holds for `key` now, if any.
    fn current(&self, key: &str) -> Option<&StoredValue>;
    /// Whether the log has ever held a value for `key` (set, seeded, then maybe reset).
    fn ever_held(&self, key: &str) -> bool;
    /// Whether the genesis event has been written.
    fn is_initialized(&self) -> bool;
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

fn reject(kind: RejectionKind, message: String) -> Rejection {
    Rejection { kind, message, audit: Vec::new() }
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
                return Err(reject(RejectionKind::State, "the store is already initialized".into()));
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
            let spec =
                catalog.get(&key).ok_or_else(|| reject(RejectionKind::UnknownKey, format!("unknown key {key}")))?;
            if spec.locked {
                // The attempted value is recorded only when it parses, and sealed when it is a secret.
                // A bootstrap secret is never stored in any form, not even sealed in an audit record.
                let attempted = (!spec.bootstrap)
                    .then(|| spec.parse(&value).ok())
                    .flatten()
                    .and_then(|v| store(spec.sensitive, &key, &v, sealer).ok());
                return Err(locked(&key, "set", spec.bootstrap, attempted));
            }
            let parsed = spec.parse(&value).map_err(|e| reject(RejectionKind::Invalid, e.to_string()))?;
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
            let spec =
                catalog.get(&key).ok_or_else(|| reject(RejectionKind::UnknownKey, format!("unknown key {key}")))?;
            if spec.locked {
                return Err(locked(&key, "reset", spec.bootstrap, None));
            }
            match state.current(&key) {
                None => Ok(Vec::new()),
                Some(previous) => {
                    let previous = protect(spec.sensitive, &key, previous.clone(), sealer)?;
                    Ok(vec![Event::SettingReset(SettingReset { key, previous: Some(previous) })])
                }
            }
        }
    }
}

fn require_initialized(state: &dyn SettingsLookup) -> Result<(), Rejection> {
    if state.is_initialized() {
        Ok(())
    } else {
        Err(reject(RejectionKind::State, "the store is not initialized".into()))
    }
}

fn locked(key: &str, action: &str, bootstrap: bool, attempted: Option<StoredValue>) -> Rejection {
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

fn store(sensitive: bool, key: &str, value: &Value, sealer: &dyn Sealer) -> Result<StoredValue, Rejection> {
    if !sensitive {
        return Ok(StoredValue::Plain(value.clone()));
    }
    let plaintext = serde_json::to_vec(value).map_err(|e| reject(RejectionKind::Sealing, e.to_string()))?;
    sealer
        .seal(key, &plaintext)
        .map(StoredValue::Sealed)
        .map_err(|e| reject(RejectionKind::Sealing, format!("cannot encrypt the value of {key}: {e}")))
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
            .map_err(|e| reject(RejectionKind::Invalid, format!("{env_file} line {}: {e}", entry.line)))?;
        values.push(SeededValue { key: entry.key.clone(), value: store(spec.sensitive, &entry.key, &parsed, sealer)? });
    }
    values.reverse();
    if values.is_empty() && !initial {
        return Ok(None);
    }
    let unknown_keys = if initial || !values.is_empty() { unknown.into_iter().collect() } else { Vec::new() };
    Ok(Some(Event::EnvSeeded(EnvSeeded { file: env_file, initial, values, unknown_keys })))
}
