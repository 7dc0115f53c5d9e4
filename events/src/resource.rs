//! The resource registry's shapes: the six kinds an MCP gateway configures (gateways, servers, tools,
//! prompts, resources, roots), each entity's identity field, the types of the fields the store knows, the
//! references between kinds, and how input with plaintext credentials becomes a stored entity whose
//! credentials are sealed. Fields the store does not know are kept as given.

use crate::decide::{Rejection, Sealer};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A kind of entity, in dependency order: each kind may reference only kinds before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Roots,
    Gateways,
    Tools,
    Resources,
    Prompts,
    Servers,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 6] = [
        ResourceKind::Roots,
        ResourceKind::Gateways,
        ResourceKind::Tools,
        ResourceKind::Resources,
        ResourceKind::Prompts,
        ResourceKind::Servers,
    ];

    /// The plural name used in URLs, documents and events.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Roots => "roots",
            ResourceKind::Gateways => "gateways",
            ResourceKind::Tools => "tools",
            ResourceKind::Resources => "resources",
            ResourceKind::Prompts => "prompts",
            ResourceKind::Servers => "servers",
        }
    }

    /// One entity of the kind, for messages.
    pub fn singular(self) -> &'static str {
        match self {
            ResourceKind::Roots => "root",
            ResourceKind::Gateways => "gateway",
            ResourceKind::Tools => "tool",
            ResourceKind::Resources => "resource",
            ResourceKind::Prompts => "prompt",
            ResourceKind::Servers => "server",
        }
    }

    /// The field that names an entity: its identity.
    pub fn id_field(self) -> &'static str {
        match self {
            ResourceKind::Resources | ResourceKind::Roots => "uri",
            _ => "name",
        }
    }

    /// Whether entities of this kind carry credentials (`auth_type` and the sealed `auth_value`).
    pub fn has_auth(self) -> bool {
        matches!(self, ResourceKind::Tools | ResourceKind::Gateways)
    }

    /// The fields the store knows, with their types. Others are kept as given.
    fn fields(self) -> &'static [(&'static str, FieldType)] {
        use FieldType::*;
        match self {
            ResourceKind::Tools => &[
                ("name", Text),
                ("url", Url),
                ("integration_type", Text),
                ("request_type", Text),
                ("description", Text),
                ("headers", Object),
                ("input_schema", Object),
                ("output_schema", Object),
                ("annotations", Object),
                ("tags", Names),
                ("is_active", Flag),
            ],
            ResourceKind::Gateways => &[
                ("name", Text),
                ("url", Url),
                ("description", Text),
                ("transport", Text),
                ("capabilities", Object),
                ("passthrough_headers", Names),
                ("tags", Names),
                ("is_active", Flag),
            ],
            ResourceKind::Servers => &[
                ("name", Text),
                ("description", Text),
                ("associated_tools", Names),
                ("associated_resources", Names),
                ("associated_prompts", Names),
                ("tags", Names),
                ("is_active", Flag),
            ],
            ResourceKind::Prompts => &[
                ("name", Text),
                ("template", Text),
                ("description", Text),
                ("input_schema", Object),
                ("tags", Names),
                ("is_active", Flag),
            ],
            ResourceKind::Resources => &[
                ("uri", Text),
                ("name", Text),
                ("description", Text),
                ("mime_type", Text),
                ("content", Text),
                ("tags", Names),
                ("is_active", Flag),
            ],
            ResourceKind::Roots => &[("uri", Text), ("name", Text)],
        }
    }

    /// The fields of this kind that name entities of another kind.
    pub fn references(self) -> &'static [(&'static str, ResourceKind)] {
        match self {
            ResourceKind::Servers => &[
                ("associated_tools", ResourceKind::Tools),
                ("associated_resources", ResourceKind::Resources),
                ("associated_prompts", ResourceKind::Prompts),
            ],
            _ => &[],
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On the wire (events, documents) a kind is its plural name, as [`ResourceKind::as_str`] spells it.
impl Serialize for ResourceKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A name that is not one of the six kinds fails to decode (`unknown entity type: ...`), so an event with a
/// bad kind is refused when the log is read instead of being skipped by the fold.
impl<'de> Deserialize<'de> for ResourceKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(de::Error::custom)
    }
}

impl FromStr for ResourceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ResourceKind, String> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown entity type: {s}"))
    }
}

#[derive(Debug, Clone, Copy)]
enum FieldType {
    Text,
    Url,
    Flag,
    Object,
    /// A list of strings.
    Names,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            FieldType::Text => "a string",
            FieldType::Url => "a URL such as https://host/path",
            FieldType::Flag => "true or false",
            FieldType::Object => "a JSON object",
            FieldType::Names => "a list of strings",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            FieldType::Text => v.is_string(),
            FieldType::Url => v.as_str().is_some_and(|s| {
                s.split_once("://").is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                        && !rest.is_empty()
                })
            }),
            FieldType::Flag => v.is_boolean(),
            FieldType::Object => v.is_object(),
            FieldType::Names => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        }
    }
}

/// Input fields that carry plaintext credentials (MCP Gateway's names). They are sealed into `auth_value`
/// and never stored or returned as given.
pub const CREDENTIAL_FIELDS: [&str; 6] =
    ["auth_username", "auth_password", "auth_token", "auth_header_key", "auth_header_value", "auth_headers"];

/// Fields a response adds (`created_at`, `updated_at`, `version`): ignored on input, so that what a GET
/// returned can be sent back with PUT.
pub const READ_ONLY_FIELDS: [&str; 3] = ["created_at", "updated_at", "version"];

/// The name an entity's sealed credentials are bound to (the associated data of the ciphertext): kind, name
/// and field, so that a ciphertext cannot be moved to another entity.
pub fn auth_binding(kind: ResourceKind, name: &str) -> String {
    format!("resource:{kind}:{name}:auth_value")
}

/// The identity of `fields` for `kind`, checked: a non-empty string without control characters.
pub fn identity(kind: ResourceKind, fields: &Map<String, Value>) -> Result<String, Rejection> {
    let field = kind.id_field();
    match fields.get(field) {
        None | Some(Value::Null) => {
            Err(Rejection::invalid(format!("{} missing required field: {field}", kind.singular())))
        }
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 512 && !s.chars().any(char::is_control) => {
            Ok(s.clone())
        }
        Some(_) => Err(Rejection::invalid(format!(
            "{} field {field} expects a non-empty string of at most 512 characters",
            kind.singular()
        ))),
    }
}

/// Turns input into the entity the log stores: identity and known fields checked, read-only fields
/// dropped, plaintext credentials sealed into `auth_value` (bound to kind and name), and, when the input
/// carries no credentials, the stored ones of `existing` kept.
pub fn normalize(
    kind: ResourceKind,
    mut input: Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    sealer: &dyn Sealer,
) -> Result<Map<String, Value>, Rejection> {
    for field in READ_ONLY_FIELDS {
        input.remove(field);
    }
    let name = identity(kind, &input)?;
    for (field, ty) in kind.fields() {
        if let Some(v) = input.get(*field) {
            if !v.is_null() && !ty.accepts(v) {
                return Err(Rejection::invalid(format!(
                    "{} {name}: field {field} expects {}; got {v}",
                    kind.singular(),
                    ty.describe()
                )));
            }
        }
    }
    let credentials: Map<String, Value> =
        CREDENTIAL_FIELDS.iter().filter_map(|f| input.remove(*f).map(|v| (f.to_string(), v))).collect();
    let given_type = input.get("auth_type").cloned();
    let given_value = input.remove("auth_value");
    if !kind.has_auth() {
        if !credentials.is_empty() || given_type.is_some() || given_value.is_some() {
            return Err(Rejection::invalid(format!("{} entities carry no credentials", kind.singular())));
        }
        return Ok(input);
    }
    if !credentials.is_empty() {
        let auth_type = given_type.as_ref().and_then(Value::as_str).ok_or_else(|| {
            Rejection::invalid(format!(
                "{} {name}: credentials need an auth_type (basic, bearer or headers)",
                kind.singular()
            ))
        })?;
        check_credentials(kind, &name, auth_type, &credentials)?;
        let plaintext = serde_json::to_vec(&Value::Object(credentials))
            .map_err(|e| Rejection::invalid(format!("{} {name}: credentials do not encode: {e}", kind.singular())))?;
        let sealed = sealer.seal(&auth_binding(kind, &name), &plaintext).map_err(|e| {
            Rejection::sealing(format!("cannot encrypt the credentials of {} {name}: {e}", kind.singular()))
        })?;
        input.insert("auth_value".into(), Value::String(sealed));
        return Ok(input);
    }
    match (given_type, given_value, existing) {
        // An opaque value already sealed for this entity (a GET sent back): kept if it opens here.
        (Some(t), Some(Value::String(sealed)), _) if !t.is_null() => {
            sealer.open(&auth_binding(kind, &name), &sealed).map_err(|_| {
                Rejection::invalid(format!(
                    "{} {name}: auth_value is not sealed for this entity under this store's key",
                    kind.singular()
                ))
            })?;
            input.insert("auth_value".into(), Value::String(sealed));
        }
        (Some(Value::Null), _, _) => {
            // auth_type: null removes the credentials.
            input.remove("auth_type");
        }
        (_, _, Some(old)) => {
            // No credentials given: the stored ones stay.
            if let (Some(t), Some(v)) = (old.get("auth_type"), old.get("auth_value")) {
                input.insert("auth_type".into(), t.clone());
                input.insert("auth_value".into(), v.clone());
            }
        }
        (Some(t), None, None) => {
            return Err(Rejection::invalid(format!(
            "{} {name}: auth_type {t} needs its credentials (auth_username/auth_password, auth_token or auth_headers)",
            kind.singular()
        )))
        }
        _ => {}
    }
    Ok(input)
}

fn check_credentials(
    kind: ResourceKind,
    name: &str,
    auth_type: &str,
    credentials: &Map<String, Value>,
) -> Result<(), Rejection> {
    let text = |f: &str| credentials.get(f).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    let ok = match auth_type {
        "basic" => text("auth_username") && text("auth_password"),
        "bearer" => text("auth_token"),
        "headers" | "authheaders" => {
            (text("auth_header_key") && text("auth_header_value"))
                || credentials.get("auth_headers").is_some_and(|h| h.is_object() || h.is_array())
        }
        other => {
            return Err(Rejection::invalid(format!(
                "{} {name}: auth_type expects basic, bearer or headers; got {other:?}",
                kind.singular()
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(format!(
            "{} {name}: auth_type {auth_type} expects {}",
            kind.singular(),
            match auth_type {
                "basic" => "auth_username and auth_password",
                "bearer" => "auth_token",
                _ => "auth_header_key and auth_header_value, or auth_headers",
            }
        )))
    }
}

/// The names `fields` references, per referenced kind (a server's tools, resources and prompts).
pub fn referenced(kind: ResourceKind, fields: &Map<String, Value>) -> Vec<(ResourceKind, String)> {
    kind.references()
        .iter()
        .flat_map(|(field, target)| {
            fields
                .get(*field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |n| (*target, n.to_string()))
        })
        .collect()
}
