//! One namespace's configuration as a follower holds it: the values of the render (each key's name in the
//! application's environment, with its typed value), the seq and head hash it answers for, and where it
//! came from. Immutable; a new one replaces it whole.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::time::SystemTime;

/// Where a snapshot came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Rendered by the server.
    Server,
    /// Read from the last-known-good cache, because the server could not be reached.
    Cache,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Server => "server",
            Origin::Cache => "cache",
        }
    }
}

/// A namespace's configuration at one seq. Its `Debug` form names the keys, never the values (secrets).
#[derive(Clone, PartialEq)]
pub struct Snapshot {
    pub namespace: String,
    /// The log's seq the values answer for.
    pub seq: u64,
    /// The log's hash at `seq`.
    pub head_hash: String,
    /// Each key, by its name in the application's environment, with its typed value.
    pub values: Map<String, Value>,
    pub origin: Origin,
    /// When the server rendered it (for a cached one: when the cache was written).
    pub received_at: SystemTime,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("namespace", &self.namespace)
            .field("seq", &self.seq)
            .field("head_hash", &self.head_hash)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// A value that is not of the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for TypeMismatch {}

impl Snapshot {
    /// The raw value of `key`.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The value of `key` as `T`; `Ok(None)` when the key is not set.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TypeMismatch> {
        match self.values.get(key) {
            None => Ok(None),
            Some(v) => {
                T::deserialize(v).map(Some).map_err(|e| TypeMismatch { key: key.to_string(), message: e.to_string() })
            }
        }
    }

    /// A string value; `None` when unset or not a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(Value::as_str)
    }

    /// An integer value; `None` when unset or not an integer.
    pub fn i64(&self, key: &str) -> Option<i64> {
        self.values.get(key).and_then(Value::as_i64)
    }

    /// A boolean value; `None` when unset or not a boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.values.get(key).and_then(Value::as_bool)
    }

    /// The value as the text an environment variable holds (strings as they are; numbers, booleans,
    /// lists and objects as JSON), the form `cfgledger agent exec` gives its child.
    pub fn text(&self, key: &str) -> Option<String> {
        self.values.get(key).map(cfgledger_events::value::to_text)
    }

    /// Every key as environment text.
    pub fn env(&self) -> Vec<(String, String)> {
        self.values.iter().map(|(k, v)| (k.clone(), cfgledger_events::value::to_text(v))).collect()
    }

    /// The keys whose values differ between `self` and `other` (set in one only, or to another value).
    pub fn changed_keys(&self, other: &Snapshot) -> Vec<String> {
        let mut keys: Vec<String> = self
            .values
            .iter()
            .filter(|(k, v)| other.values.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .chain(other.values.keys().filter(|k| !self.values.contains_key(*k)).cloned())
            .collect();
        keys.sort();
        keys
    }
}
