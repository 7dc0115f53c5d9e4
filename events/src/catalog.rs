//! The settings catalog: which keys exist in which namespace, their types and constraints, defaults,
//! category, reload mode, and whether they are locked, sensitive or bootstrap-only. The built-in catalog
//! lives in [`crate::builtin`]; a catalog file (parsed by the binary) has the same serde shape as
//! [`CatalogFile`], and so has the checked-in catalog of MCP Gateway.

use crate::namespace;
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
        /// The least Shannon entropy, in bits per character, that a secret must have (the gateway's rule).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_entropy: Option<f64>,
        /// Prefixes a value may not start with, compared case-insensitively (`__REPLACE_ME__` placeholders).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reject_prefixes: Vec<String>,
        /// Values refused outright, compared case-insensitively (known weak secrets).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reject_values: Vec<String>,
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
    /// A string of `min_len` to `max_len` characters, with no further rules.
    pub fn text(min_len: Option<usize>, max_len: Option<usize>) -> ValueType {
        ValueType::String {
            min_len,
            max_len,
            min_entropy: None,
            reject_prefixes: Vec::new(),
            reject_values: Vec::new(),
        }
    }

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
            ValueType::String { min_len, max_len, min_entropy, reject_prefixes, reject_values } => {
                let mut text = match (min_len, max_len) {
                    (None, None) => "a string".to_string(),
                    (Some(a), None) => format!("a string of at least {a} characters"),
                    (None, Some(b)) => format!("a string of at most {b} characters"),
                    (Some(a), Some(b)) => format!("a string of {a} to {b} characters"),
                };
                if let Some(e) = min_entropy {
                    text.push_str(&format!(" with an entropy of at least {e} bits per character"));
                }
                if !reject_prefixes.is_empty() {
                    text.push_str(", not a placeholder");
                }
                if !reject_values.is_empty() {
                    text.push_str(", not a known weak value");
                }
                text
            }
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
            ValueType::List { values } if values.is_empty() => {
                "a list: a JSON array of strings, or comma-separated".to_string()
            }
            ValueType::List { values } => {
                format!("a list of {}: a JSON array of strings, or comma-separated", values.join(", "))
            }
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
    /// A new store generates a random value for this secret when seeding gives it none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate: bool,
    /// Other environment names the application accepts for this key (its aliases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// The namespace the key belongs to; set when the catalog is built, never written in a catalog file.
    #[serde(skip)]
    pub namespace: String,
    /// `namespace:KEY`, the key's identity in the log; set when the catalog is built.
    #[serde(skip)]
    pub id: String,
    /// The name the key has in the process environment and in `.env`: the namespace's prefix and the key.
    #[serde(skip)]
    pub env_name: String,
}

impl SettingSpec {
    /// A spec with no default, not locked, sensitive or bootstrap, and no description: the rest is set by
    /// struct update (`SettingSpec { default: ..., ..SettingSpec::new(...) }`).
    pub fn new(key: &str, ty: ValueType, category: &str, reload: Reload) -> SettingSpec {
        SettingSpec {
            key: key.to_string(),
            ty,
            default: None,
            category: category.to_string(),
            reload,
            locked: false,
            sensitive: false,
            bootstrap: false,
            generate: false,
            aliases: Vec::new(),
            description: String::new(),
            namespace: String::new(),
            id: String::new(),
            env_name: String::new(),
        }
    }

    /// Parses a value for this key; an error names the key as people name it (`LOG_LEVEL` in the default
    /// namespace, `cfgledger:LOG_LEVEL` elsewhere).
    pub fn parse(&self, input: &Input) -> Result<Value, ValueError> {
        let name = if self.id.is_empty() { self.key.as_str() } else { namespace::display(&self.id) };
        value::parse(name, &self.ty, input, self.sensitive)
    }
}

/// One application's part of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespace {
    /// `mcpgateway`, `cfgledger`, or a name given by a catalog file.
    pub name: String,
    /// The application's name in words: `MCP Gateway`.
    pub application: String,
    /// The version of the application the catalog describes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the keys' names carry in the process environment and in `.env` (`CFGLEDGER_` for cfgledger's own).
    pub env_prefix: String,
}

impl Namespace {
    pub fn new(name: &str, application: &str, version: Option<&str>, env_prefix: &str) -> Namespace {
        Namespace {
            name: name.to_string(),
            application: application.to_string(),
            version: version.map(str::to_string),
            env_prefix: env_prefix.to_string(),
        }
    }

    /// The default namespace as a catalog without a header describes it.
    pub fn default_application() -> Namespace {
        Namespace::new(namespace::DEFAULT, "MCP Gateway", None, "")
    }
}

/// The serde shape of a catalog file (TOML or JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CatalogFile {
    /// The namespace the file describes; absent means the default (managed application's) namespace.
    /// A new name adds an application to the store. `cfgledger` is refused: the store's own keys are fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The application's name in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The application version the catalog describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The prefix of the keys in the process environment and `.env`; defaults to none for the default
    /// namespace and to `NAMESPACE_` (upper case) for another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_prefix: Option<String>,
    /// `replace` (the default) uses the file alone for its namespace; `extend` adds its keys to the
    /// namespace's built-in keys and lets them override built-in keys of the same name.
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

/// A validated catalog of one or more namespaces: keys are unique within a namespace, environment names
/// are unique across namespaces, defaults fit their types.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    namespaces: Vec<Namespace>,
    specs: Vec<SettingSpec>,
    /// By `namespace:KEY`, and by the bare key for the default namespace: positions in `specs`. Shared, so that
    /// every snapshot of a process finds a key's resolved view at the same position without an index of its own.
    index: std::sync::Arc<HashMap<String, usize>>,
    /// By environment name (prefix and key, and the prefixed aliases).
    env_index: HashMap<String, usize>,
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

fn valid_key(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Catalog {
    /// A catalog of the default namespace alone, from `specs`.
    pub fn new(specs: Vec<SettingSpec>) -> Result<Catalog, CatalogError> {
        Catalog::compose(vec![(Namespace::default_application(), specs)])
    }

    /// Validates each namespace's specs (key syntax, uniqueness, constraint sanity, defaults that fit their
    /// types) and the environment names across namespaces, and indexes them.
    pub fn compose(parts: Vec<(Namespace, Vec<SettingSpec>)>) -> Result<Catalog, CatalogError> {
        let mut namespaces = Vec::with_capacity(parts.len());
        let mut specs = Vec::new();
        let mut index = HashMap::new();
        let mut env_index: HashMap<String, usize> = HashMap::new();
        for (ns, ns_specs) in parts {
            if !namespace::valid_name(&ns.name) {
                return Err(CatalogError(format!(
                    "namespace {:?}: names are lower-case letters, digits, - and _, starting with a letter",
                    ns.name
                )));
            }
            if namespaces.iter().any(|n: &Namespace| n.name == ns.name) {
                return Err(CatalogError(format!("namespace {}: declared twice", ns.name)));
            }
            for mut spec in ns_specs {
                let key = spec.key.clone();
                if !valid_key(&key) {
                    return Err(CatalogError(format!(
                        "setting {key:?}: keys are upper-case letters, digits and underscores, starting with a letter"
                    )));
                }
                spec.namespace = ns.name.clone();
                spec.id = namespace::join(&ns.name, &key);
                spec.env_name = format!("{}{key}", ns.env_prefix);
                let i = specs.len();
                if index.insert(spec.id.clone(), i).is_some() {
                    return Err(CatalogError(format!("setting {key}: declared twice")));
                }
                if ns.name == namespace::DEFAULT {
                    index.insert(key.clone(), i);
                }
                check_constraints(&spec)?;
                check_default(&spec)?;
                if let Some(&other) = env_index.get(&spec.env_name) {
                    let other: &SettingSpec = &specs[other];
                    if other.env_name == spec.env_name {
                        return Err(CatalogError(format!(
                            "setting {}: its environment name {} is also {}'s",
                            spec.id, spec.env_name, other.id
                        )));
                    }
                }
                env_index.insert(spec.env_name.clone(), i);
                // An alias never takes a name that is another key's own (the application reads both keys
                // from such a name; its own key is the one a `.env` line seeds).
                for alias in &spec.aliases {
                    env_index.entry(format!("{}{alias}", ns.env_prefix)).or_insert(i);
                }
                specs.push(spec);
            }
            namespaces.push(ns);
        }
        Ok(Catalog { namespaces, specs, index: std::sync::Arc::new(index), env_index })
    }

    /// The namespace's specs overlaid by a catalog file according to its mode; `base` is empty for a new
    /// namespace.
    pub fn overlay(base: Vec<SettingSpec>, file: CatalogFile) -> Result<Vec<SettingSpec>, CatalogError> {
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = file.settings.iter().find(|s| !seen.insert(s.key.as_str())) {
            return Err(CatalogError(format!("setting {}: declared twice", dup.key)));
        }
        match file.mode {
            CatalogMode::Replace => Ok(file.settings),
            CatalogMode::Extend => {
                let mut specs = base;
                for spec in file.settings {
                    match specs.iter_mut().find(|s| s.key == spec.key) {
                        Some(slot) => *slot = spec,
                        None => specs.push(spec),
                    }
                }
                Ok(specs)
            }
        }
    }

    /// This catalog with a catalog file applied: a file without a namespace (or naming the default one)
    /// replaces or extends the default namespace; a file naming another namespace adds it, or replaces or
    /// extends it if it exists. The store's own namespace cannot be changed by a file.
    pub fn with_file(&self, file: CatalogFile) -> Result<Catalog, CatalogError> {
        let target = file.namespace.clone().unwrap_or_else(|| namespace::DEFAULT.to_string());
        if target == namespace::OWN {
            return Err(CatalogError(format!(
                "namespace {}: cfgledger's own settings are fixed; a catalog file describes an application",
                namespace::OWN
            )));
        }
        let mut parts: Vec<(Namespace, Vec<SettingSpec>)> =
            self.namespaces.iter().map(|ns| (ns.clone(), self.namespace_specs(&ns.name))).collect();
        let default_prefix = if target == namespace::DEFAULT {
            String::new()
        } else {
            format!("{}_", target.to_ascii_uppercase().replace('-', "_"))
        };
        let slot = match parts.iter().position(|(ns, _)| ns.name == target) {
            Some(i) => i,
            None => {
                parts.push((Namespace::new(&target, &target, None, &default_prefix), Vec::new()));
                parts.len() - 1
            }
        };
        let (ns, base) = &mut parts[slot];
        if let Some(application) = &file.application {
            ns.application = application.clone();
        }
        if file.version.is_some() {
            ns.version = file.version.clone();
        }
        if let Some(prefix) = &file.env_prefix {
            ns.env_prefix = prefix.clone();
        }
        *base = Catalog::overlay(std::mem::take(base), file)?;
        Catalog::compose(parts)
    }

    /// A spec by `namespace:KEY`, or by bare key in the default namespace.
    pub fn get(&self, key: &str) -> Option<&SettingSpec> {
        self.index.get(key).map(|&i| &self.specs[i])
    }

    /// Every key's position in [`Catalog::specs`], by `namespace:KEY` and, in the default namespace, by bare
    /// key: what a list in catalog order (a snapshot's views) is indexed by.
    pub fn positions(&self) -> std::sync::Arc<HashMap<String, usize>> {
        self.index.clone()
    }

    /// A spec by the name it has in the process environment or `.env` (prefixed key or alias).
    pub fn by_env_name(&self, name: &str) -> Option<&SettingSpec> {
        self.env_index.get(name).map(|&i| &self.specs[i])
    }

    pub fn specs(&self) -> &[SettingSpec] {
        &self.specs
    }

    /// The specs of one namespace, in catalog order.
    pub fn namespace_specs(&self, name: &str) -> Vec<SettingSpec> {
        self.specs.iter().filter(|s| s.namespace == name).cloned().collect()
    }

    pub fn namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.name == name)
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

fn check_default(spec: &SettingSpec) -> Result<(), CatalogError> {
    let Some(default) = &spec.default else { return Ok(()) };
    let key = &spec.key;
    let parsed = spec
        .parse(&Input::Json(default.clone()))
        .map_err(|e| CatalogError(format!("setting {key}: default does not fit its type: {e}")))?;
    if &parsed != default && !matches!(spec.ty, ValueType::Duration { .. } | ValueType::Float { .. }) {
        // Defaults are stored as written; a non-canonical spelling would make "reset" and
        // "set to the default" look different.
        return Err(CatalogError(format!("setting {key}: default {default} should be written as {parsed}")));
    }
    Ok(())
}

fn check_constraints(spec: &SettingSpec) -> Result<(), CatalogError> {
    let key = &spec.key;
    let err = |what: &str| Err(CatalogError(format!("setting {key}: {what}")));
    match &spec.ty {
        ValueType::Int { min: Some(a), max: Some(b) } if a > b => err("min is greater than max"),
        ValueType::Float { min: Some(a), max: Some(b) } if a > b => err("min is greater than max"),
        ValueType::String { min_len: Some(a), max_len: Some(b), .. } if a > b => err("min_len is greater than max_len"),
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
        SettingSpec { default, ..SettingSpec::new(key, ty, "test", Reload::Hot) }
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
            namespace: None,
            application: None,
            version: None,
            env_prefix: None,
            mode: CatalogMode::Extend,
            settings: vec![spec("A", ValueType::Bool, Some(json!(false))), spec("B", ValueType::Json, None)],
        };
        let merged = base.with_file(file).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.get("A").unwrap().default, Some(json!(false)));
    }
}
