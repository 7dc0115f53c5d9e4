//! The settings catalog: which keys exist, their types and constraints, defaults, category, reload mode,
//! and whether they are locked, sensitive or bootstrap-only. The built-in catalog lives in [`crate::builtin`];
//! a catalog file (parsed by the binary) has the same serde shape as [`CatalogFile`].

use crate::value::{self, Input, ValueError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// A value type and its constraints. In a catalog file: `type = "int"`, `min = 1`, `max = 64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ValueType {
    String {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_len: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
    },
    Int {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    Float {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    Bool,
    Enum {
        values: Vec<String>,
    },
    Duration {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<String>,
    },
    Url {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        schemes: Vec<String>,
    },
    Json,
    List {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<String>,
    },
}

impl ValueType {
    /// The type's name as catalog files and the API spell it.
    pub fn name(&self) -> &'static str {
        match self {
            ValueType::String { .. } => "string",
            ValueType::Int { .. } => "int",
            ValueType::Float { .. } => "float",
            ValueType::Bool => "bool",
            ValueType::Enum { .. } => "enum",
            ValueType::Duration { .. } => "duration",
            ValueType::Url { .. } => "url",
            ValueType::Json => "json",
            ValueType::List { .. } => "list",
        }
    }

    /// What the type accepts, in words, for error messages and generated docs.
    pub fn describe(&self) -> String {
        fn range<T: fmt::Display>(what: &str, min: &Option<T>, max: &Option<T>) -> String {
            match (min, max) {
                (Some(a), Some(b)) => format!("{what} from {a} to {b}"),
                (Some(a), None) => format!("{what} of at least {a}"),
                (None, Some(b)) => format!("{what} of at most {b}"),
                (None, None) => what.to_string(),
            }
        }
        match self {
            ValueType::String { min_len, max_len } => match (min_len, max_len) {
                (None, None) => "a string".to_string(),
                (Some(a), None) => format!("a string of at least {a} characters"),
                (None, Some(b)) => format!("a string of at most {b} characters"),
                (Some(a), Some(b)) => format!("a string of {a} to {b} characters"),
            },
            ValueType::Int { min, max } => range("an integer", min, max),
            ValueType::Float { min, max } => range("a number", min, max),
            ValueType::Bool => "a boolean (true or false)".to_string(),
            ValueType::Enum { values } => format!("one of {}", values.join(", ")),
            ValueType::Duration { min, max } => {
                range("a duration such as 30s, 5m or 1h30m", min, max).replacen(" from ", ", from ", 1)
            }
            ValueType::Url { schemes } if schemes.is_empty() => "a URL such as https://host:port/path".to_string(),
            ValueType::Url { schemes } => format!("a URL with scheme {}", schemes.join(" or ")),
            ValueType::Json => "a JSON document".to_string(),
            ValueType::List { values } if values.is_empty() => "a comma-separated list".to_string(),
            ValueType::List { values } => format!("a comma-separated list of {}", values.join(", ")),
        }
    }
}

/// When a new value takes effect in a running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reload {
    /// Applied live by every instance.
    Hot,
    /// Stored at once, applied at the next start; reported as pending until then.
    Restart,
}

impl Reload {
    pub fn as_str(self) -> &'static str {
        match self {
            Reload::Hot => "hot",
            Reload::Restart => "restart",
        }
    }
}

/// A category name such as `security` or `logging`: free text, so that a custom catalog may add its own.
pub type Category = String;

/// One key of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingSpec {
    pub key: String,
    #[serde(flatten)]
    pub ty: ValueType,
    /// The default when neither the log nor the process environment gives a value; `None` means unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub category: Category,
    pub reload: Reload,
    /// Never changed through the API, UI, import or CLI: only seeded from the environment.
    #[serde(default)]
    pub locked: bool,
    /// Encrypted in the log, masked in every output, never exported in plaintext.
    #[serde(default)]
    pub sensitive: bool,
    /// Read from the process environment or `.env` at start and never written to the log: the store's own
    /// bootstrap secrets (the encryption secret cannot be kept encrypted under itself).
    #[serde(default)]
    pub bootstrap: bool,
    #[serde(default)]
    pub description: String,
}

impl SettingSpec {
    pub fn parse(&self, input: &Input) -> Result<Value, ValueError> {
        value::parse(&self.key, &self.ty, input, self.sensitive)
    }
}

/// The serde shape of a catalog file (TOML or JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogFile {
    /// `replace` (the default) uses the file alone; `extend` adds its keys to the built-in catalog and lets
    /// them override built-in keys of the same name.
    #[serde(default)]
    pub mode: CatalogMode,
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogMode {
    #[default]
    Replace,
    Extend,
}

/// A validated catalog: keys are unique, defaults fit their types.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    specs: Vec<SettingSpec>,
    index: HashMap<String, usize>,
}

/// A catalog that cannot be used, with the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError(pub String);

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CatalogError {}

impl Catalog {
    /// Validates `specs`: key syntax, uniqueness, constraint sanity, and that every default fits its type.
    pub fn new(specs: Vec<SettingSpec>) -> Result<Catalog, CatalogError> {
        let mut index = HashMap::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let key = &spec.key;
            let valid_key = !key.is_empty()
                && key.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !valid_key {
                return Err(CatalogError(format!(
                    "setting {key:?}: keys are upper-case letters, digits and underscores, starting with a letter"
                )));
            }
            if index.insert(key.clone(), i).is_some() {
                return Err(CatalogError(format!("setting {key}: declared twice")));
            }
            check_constraints(spec)?;
            if let Some(default) = &spec.default {
                let parsed = spec
                    .parse(&Input::Json(default.clone()))
                    .map_err(|e| CatalogError(format!("setting {key}: default does not fit its type: {e}")))?;
                if &parsed != default && !matches!(spec.ty, ValueType::Duration { .. } | ValueType::Float { .. }) {
                    // Defaults are stored as written; a non-canonical spelling would make "reset" and
                    // "set to the default" look different.
                    return Err(CatalogError(format!(
                        "setting {key}: default {default} should be written as {parsed}"
                    )));
                }
            }
        }
        Ok(Catalog { specs, index })
    }

    /// The built-in catalog overlaid by a catalog file according to its mode.
    pub fn from_file(builtin: Catalog, file: CatalogFile) -> Result<Catalog, CatalogError> {
        match file.mode {
            CatalogMode::Replace => Catalog::new(file.settings),
            CatalogMode::Extend => {
                // The file itself must declare each key once, as in replace mode; it may override built-ins.
                let mut seen = std::collections::HashSet::new();
                if let Some(dup) = file.settings.iter().find(|s| !seen.insert(s.key.as_str())) {
                    return Err(CatalogError(format!("setting {}: declared twice", dup.key)));
                }
                let mut specs = builtin.specs;
                for spec in file.settings {
                    match specs.iter_mut().find(|s| s.key == spec.key) {
                        Some(slot) => *slot = spec,
                        None => specs.push(spec),
                    }
                }
                Catalog::new(specs)
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&SettingSpec> {
        self.index.get(key).map(|&i| &self.specs[i])
    }

    pub fn specs(&self) -> &[SettingSpec] {
        &self.specs
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

fn check_constraints(spec: &SettingSpec) -> Result<(), CatalogError> {
    let key = &spec.key;
    let err = |what: &str| Err(CatalogError(format!("setting {key}: {what}")));
    match &spec.ty {
        ValueType::Int { min: Some(a), max: Some(b) } if a > b => err("min is greater than max"),
        ValueType::Float { min: Some(a), max: Some(b) } if a > b => err("min is greater than max"),
        ValueType::String { min_len: Some(a), max_len: Some(b) } if a > b => err("min_len is greater than max_len"),
        ValueType::Enum { values } if values.is_empty() => err("an enum needs at least one value"),
        ValueType::Duration { min, max } => {
            for bound in [min, max].into_iter().flatten() {
                if value::parse_duration_ms(bound).is_none() {
                    return err(&format!("duration bound {bound:?} is not a duration such as 30s or 5m"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(key: &str, ty: ValueType, default: Option<Value>) -> SettingSpec {
        SettingSpec {
            key: key.into(),
            ty,
            default,
            category: "test".into(),
            reload: Reload::Hot,
            locked: false,
            sensitive: false,
            bootstrap: false,
            description: String::new(),
        }
    }

    #[test]
    fn rejects_bad_catalogs_with_the_key_named() {
        let dup = vec![spec("A", ValueType::Bool, None), spec("A", ValueType::Bool, None)];
        assert_eq!(Catalog::new(dup).unwrap_err().to_string(), "setting A: declared twice");
        let bad_default = vec![spec("N", ValueType::Int { min: Some(1), max: None }, Some(json!(0)))];
        let e = Catalog::new(bad_default).unwrap_err().to_string();
        assert!(e.starts_with("setting N: default does not fit its type"), "{e}");
        let lower = vec![spec("lower", ValueType::Bool, None)];
        assert!(Catalog::new(lower).is_err());
        let range = vec![spec("R", ValueType::Int { min: Some(5), max: Some(1) }, None)];
        assert_eq!(Catalog::new(range).unwrap_err().to_string(), "setting R: min is greater than max");
    }

    #[test]
    fn extend_overrides_and_adds() {
        let base = Catalog::new(vec![spec("A", ValueType::Bool, Some(json!(true)))]).unwrap();
        let file = CatalogFile {
            mode: CatalogMode::Extend,
            settings: vec![spec("A", ValueType::Bool, Some(json!(false))), spec("B", ValueType::Json, None)],
        };
        let merged = Catalog::from_file(base, file).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.get("A").unwrap().default, Some(json!(false)));
    }
}
