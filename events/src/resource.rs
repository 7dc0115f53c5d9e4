//! The resource registry's shapes: the six kinds an MCP gateway configures (gateways, servers, tools,
//! prompts, resources, roots), each entity's identity field, the types of the fields the store knows, the
//! references between kinds, and how input with plaintext credentials becomes a stored entity whose
//! credentials are sealed. Fields the store does not know are kept as given.

use crate::decide::{Rejection, Sealer};
use crate::text;
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
                ("oauth_config", Object),
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
                ("oauth_config", Object),
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
pub const CREDENTIAL_FIELDS: [&str; 9] = [
    "auth_username",
    "auth_password",
    "auth_token",
    "auth_header_key",
    "auth_header_value",
    "auth_headers",
    "auth_query_param_key",
    "auth_query_param_value",
    "auth_query_params",
];

/// The fields of an `oauth_config` that are secrets (MCP Gateway's names). They are sealed with the
/// entity's other credentials, under `oauth_config` in the sealed object, and never stored as given.
pub const OAUTH_SECRET_FIELDS: [&str; 4] = ["client_secret", "password", "refresh_token", "access_token"];

/// The auth types an entity may carry: MCP Gateway's, with its `authheaders` stored as `headers`.
pub const AUTH_TYPES: [&str; 5] = ["basic", "bearer", "headers", "oauth", "query_param"];

/// What MCP Gateway writes in place of a secret it does not export (`settings.masked_auth_value`).
pub const GATEWAY_MASK: &str = "*****";

/// Whether an input with an `auth_type` and no credentials is refused (an entity created by hand) or kept as
/// an auth type whose credential is not known yet (an import of a file that left it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingCredentials {
    Refuse,
    Allow,
}

/// Fields a response adds (`created_at`, `updated_at`, `version`): ignored on input, so that what a GET
/// returned can be sent back with PUT.
pub const READ_ONLY_FIELDS: [&str; 3] = ["created_at", "updated_at", "version"];

/// The key of the object that holds a sealed header value in a tool's `headers`: `{"X-Api-Key":
/// {"cfgledger_sealed": "..."}}`, the way MCP Gateway keeps its own (`_mcpgateway_encrypted_header_value_v1`).
pub const SEALED_HEADER: &str = "cfgledger_sealed";

/// Whether a tool header carries a secret, by MCP Gateway's own list (`_SENSITIVE_TOOL_HEADER_PATTERNS`,
/// without the protocol headers it also guards): `Authorization`, `Proxy-Authorization`, `Cookie`,
/// `Set-Cookie`, `X-Api-Key`, `Api-Key`, `ApiKey`, and `[X-](auth|api|access|refresh|client|bearer|session|
/// security)[-_](token|secret|key)`, in any case. Such a value is sealed, never stored as given.
pub fn secret_header(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key" | "api-key" | "apikey"
    ) {
        return true;
    }
    let rest = lower.strip_prefix("x-").unwrap_or(&lower);
    ["auth", "api", "access", "refresh", "client", "bearer", "session", "security"].iter().any(|head| {
        rest.strip_prefix(head).is_some_and(|tail| {
            let tail = tail.strip_prefix(['-', '_']).unwrap_or(tail);
            matches!(tail, "token" | "secret" | "key")
        })
    })
}

/// The name a sealed header value is bound to: kind, entity and header, so that it cannot be moved.
pub fn header_binding(kind: ResourceKind, name: &str, header: &str) -> String {
    format!("resource:{kind}:{name}:header:{}", header.to_ascii_lowercase())
}

/// The sealed value in a header's `{"cfgledger_sealed": ...}` object, if it is one.
pub fn sealed_header(value: &Value) -> Option<&str> {
    value.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(SEALED_HEADER)).and_then(Value::as_str)
}

/// Seals each secret header of a tool's `headers` (see [`secret_header`]) into `{"cfgledger_sealed": ...}`,
/// bound to the tool and header; a value that is already sealed must open here. When `existing` holds the same
/// plaintext, its ciphertext is kept, so that writing the same tool twice changes nothing.
fn seal_headers(
    kind: ResourceKind,
    name: &str,
    input: &mut Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    sealer: &dyn Sealer,
) -> Result<(), Rejection> {
    let Some(Value::Object(headers)) = input.get_mut("headers") else { return Ok(()) };
    let stored = existing.and_then(|e| e.get("headers")).and_then(Value::as_object);
    for (header, value) in headers.iter_mut() {
        let binding = header_binding(kind, name, header);
        let same_as_stored = |plain: &[u8]| {
            stored
                .and_then(|h| h.get(header))
                .and_then(sealed_header)
                .filter(|old| sealer.open(&binding, old).is_ok_and(|bytes| bytes == plain))
        };
        if let Some(sealed) = sealed_header(value) {
            let plain = sealer.open(&binding, sealed).map_err(|_| {
                Rejection::invalid(format!(
                    "{} {name}: header {header} is sealed, but not for this tool under this store's key",
                    kind.singular()
                ))
            })?;
            // Sealed again elsewhere (an import), the same value keeps its stored ciphertext.
            if let Some(old) = same_as_stored(&plain) {
                let mut envelope = Map::new();
                envelope.insert(SEALED_HEADER.into(), Value::String(old.to_string()));
                *value = Value::Object(envelope);
            }
            continue;
        }
        let Some(plain) = value.as_str().filter(|_| secret_header(header)) else { continue };
        // A masked value (what a read shows, or MCP Gateway's `*****`) stands for the stored one: it is never
        // taken as the secret itself.
        if plain == GATEWAY_MASK || plain == crate::event::MASK {
            match stored.and_then(|h| h.get(header)).filter(|v| sealed_header(v).is_some()) {
                Some(old) => {
                    *value = old.clone();
                    continue;
                }
                None => {
                    return Err(Rejection::invalid(format!(
                        "{} {name}: header {header} is masked ({plain}) but no value is stored for it; send its value",
                        kind.singular()
                    )))
                }
            }
        }
        let sealed = match same_as_stored(plain.as_bytes()) {
            Some(old) => old.to_string(),
            None => sealer.seal(&binding, plain.as_bytes()).map_err(|e| {
                Rejection::sealing(format!("cannot encrypt header {header} of {} {name}: {e}", kind.singular()))
            })?,
        };
        let mut envelope = Map::new();
        envelope.insert(SEALED_HEADER.into(), Value::String(sealed));
        *value = Value::Object(envelope);
    }
    Ok(())
}

/// Opens what an entity holds sealed for `name` (its `auth_value` and sealed headers) back into input fields,
/// so that it can be sealed again for another name or key. Fails, naming the field, if a value does not open.
pub fn unseal(
    kind: ResourceKind,
    name: &str,
    fields: &mut Map<String, Value>,
    sealer: &dyn Sealer,
) -> Result<usize, String> {
    let mut opened = 0;
    if let Some(Value::Object(headers)) = fields.get_mut("headers") {
        for (header, value) in headers.iter_mut() {
            let Some(sealed) = sealed_header(value) else { continue };
            let bytes =
                sealer.open(&header_binding(kind, name, header), sealed).map_err(|_| format!("header {header}"))?;
            *value = Value::String(String::from_utf8(bytes).map_err(|_| format!("header {header} is not text"))?);
            opened += 1;
        }
    }
    if let Some(Value::String(sealed)) = fields.get("auth_value").cloned() {
        let bytes = sealer.open(&auth_binding(kind, name), &sealed).map_err(|_| "auth_value".to_string())?;
        let credentials: Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| "auth_value is not a JSON object".to_string())?;
        fields.remove("auth_value");
        restore_credentials(fields, credentials);
        opened += 1;
    }
    Ok(opened)
}

/// The name an entity's sealed credentials are bound to (the associated data of the ciphertext): kind, name
/// and field, so that a ciphertext cannot be moved to another entity.
pub fn auth_binding(kind: ResourceKind, name: &str) -> String {
    format!("resource:{kind}:{name}:auth_value")
}

/// The identity of `fields` for `kind`, checked: a name that follows [`text::check_name`] (no `/`, not `.`
/// or `..`, no control or bidirectional character), or for resources and roots a URI that follows
/// [`text::check_uri`].
pub fn identity(kind: ResourceKind, fields: &Map<String, Value>) -> Result<String, Rejection> {
    let field = kind.id_field();
    let what = format!("{} {field}", kind.singular());
    match fields.get(field) {
        None | Some(Value::Null) => {
            Err(Rejection::invalid(format!("{} missing required field: {field}", kind.singular())))
        }
        Some(Value::String(s)) => {
            let checked = if field == "uri" { text::check_uri(&what, s) } else { text::check_name(&what, s) };
            checked.map_err(Rejection::invalid)?;
            Ok(s.clone())
        }
        Some(other) => Err(Rejection::invalid(format!("{what} expects a string; got {other}"))),
    }
}

/// Turns input into the entity the log stores: identity and known fields checked, read-only fields
/// dropped, plaintext credentials sealed into `auth_value` (bound to kind and name), and, when the input
/// carries no credentials, the stored ones of `existing` kept.
pub fn normalize(
    kind: ResourceKind,
    input: Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    sealer: &dyn Sealer,
) -> Result<Map<String, Value>, Rejection> {
    normalize_with(kind, input, existing, sealer, MissingCredentials::Refuse)
}

/// [`normalize`], saying what an `auth_type` without credentials means. Besides sealing, it puts input into
/// its one stored form: tags given as MCP Gateway's `{"id", "label"}` objects become their labels, the auth
/// type `authheaders` becomes `headers`, and every JSON Schema `required` list is sorted (it is a set), so
/// that the same entity written twice is stored the same.
pub fn normalize_with(
    kind: ResourceKind,
    mut input: Map<String, Value>,
    existing: Option<&Map<String, Value>>,
    sealer: &dyn Sealer,
    missing: MissingCredentials,
) -> Result<Map<String, Value>, Rejection> {
    for field in READ_ONLY_FIELDS {
        input.remove(field);
    }
    let name = identity(kind, &input)?;
    canonical_tags(kind, &name, &mut input)?;
    for field in SCHEMA_FIELDS {
        if let Some(schema) = input.get_mut(field) {
            sort_required(schema);
        }
    }
    if let Some(Value::String(t)) = input.get_mut("auth_type") {
        if t == "authheaders" {
            *t = "headers".into();
        }
    }
    if kind == ResourceKind::Tools {
        seal_headers(kind, &name, &mut input, existing, sealer)?;
    }
    for (field, ty) in kind.fields() {
        if let Some(v) = input.get(*field) {
            if !v.is_null() && !ty.accepts(v) {
                // A text value is shown (a bad URL is easier to fix when seen); a list or an object is only
                // named, since it may hold a secret (a header, an OAuth client secret) given in the wrong shape.
                let got = match (ty, v) {
                    (
                        FieldType::Text | FieldType::Url | FieldType::Flag,
                        Value::String(_) | Value::Bool(_) | Value::Number(_),
                    ) => v.to_string(),
                    (_, Value::Array(_)) => "a list".into(),
                    (_, Value::Object(_)) => "an object".into(),
                    (_, Value::String(_)) => "a string".into(),
                    (_, Value::Number(_)) => "a number".into(),
                    (_, _) => "true or false".into(),
                };
                return Err(Rejection::invalid(format!(
                    "{} {name}: field {field} expects {}; got {got}",
                    kind.singular(),
                    ty.describe()
                )));
            }
        }
    }
    let mut credentials: Map<String, Value> =
        CREDENTIAL_FIELDS.iter().filter_map(|f| input.remove(*f).map(|v| (f.to_string(), v))).collect();
    if let Some(Value::Object(oauth)) = input.get_mut("oauth_config") {
        let secrets: Map<String, Value> = OAUTH_SECRET_FIELDS
            .iter()
            .filter_map(|f| oauth.remove(*f).filter(|v| !v.is_null()).map(|v| (f.to_string(), v)))
            .collect();
        if !secrets.is_empty() {
            credentials.insert("oauth_config".into(), Value::Object(secrets));
        }
    }
    let given_type = input.get("auth_type").cloned();
    let given_value = input.remove("auth_value").filter(|v| !v.is_null());
    if !kind.has_auth() {
        if !credentials.is_empty() || given_type.is_some() || given_value.is_some() {
            return Err(Rejection::invalid(format!("{} entities carry no credentials", kind.singular())));
        }
        return Ok(input);
    }
    if !credentials.is_empty() {
        let auth_type = given_type.as_ref().and_then(Value::as_str).ok_or_else(|| {
            Rejection::invalid(format!(
                "{} {name}: credentials need an auth_type ({})",
                kind.singular(),
                AUTH_TYPES.join(", ")
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
            // No credentials given: the stored ones stay, with their auth type (an OAuth client may hold no
            // secret) and the OAuth settings they belong to.
            if let Some(t) = old.get("auth_type") {
                input.insert("auth_type".into(), t.clone());
                if let Some(v) = old.get("auth_value") {
                    input.insert("auth_value".into(), v.clone());
                }
                if let (Some(config), false) = (old.get("oauth_config"), input.contains_key("oauth_config")) {
                    input.insert("oauth_config".into(), config.clone());
                }
            }
        }
        (Some(t), None, None) => {
            let auth_type = t.as_str().unwrap_or_default();
            if !AUTH_TYPES.contains(&auth_type) {
                return Err(unknown_auth_type(kind, &name, &t.to_string()));
            }
            // OAuth may hold no secret (a public client); an import may name a type whose credential the
            // file left out. Anything else made by hand needs its credentials.
            if auth_type != "oauth" && missing == MissingCredentials::Refuse {
                return Err(Rejection::invalid(format!(
                    "{} {name}: auth_type {t} needs its credentials ({})",
                    kind.singular(),
                    expected_credentials(auth_type)
                )));
            }
        }
        _ => {}
    }
    Ok(input)
}

/// The fields of an entity that hold JSON Schemas.
const SCHEMA_FIELDS: [&str; 2] = ["input_schema", "output_schema"];

/// Sorts and deduplicates every `required` list of strings in a JSON Schema, at any depth: the keyword is a
/// set, and MCP Gateway writes it in no stable order.
pub fn sort_required(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                // Instance values, not schemas: left as given.
                if matches!(key.as_str(), "default" | "examples" | "enum" | "const") {
                    continue;
                }
                if key == "required" {
                    if let Value::Array(list) = value {
                        if list.iter().all(Value::is_string) {
                            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                            list.dedup();
                            continue;
                        }
                    }
                }
                sort_required(value);
            }
        }
        Value::Array(list) => list.iter_mut().for_each(sort_required),
        _ => {}
    }
}

/// Tags as they are stored: a list of strings. MCP Gateway 1.1.0 writes each tag as `{"id", "label"}`; the
/// label is kept (the id when there is no label).
fn canonical_tags(kind: ResourceKind, name: &str, input: &mut Map<String, Value>) -> Result<(), Rejection> {
    let Some(Value::Array(tags)) = input.get_mut("tags") else { return Ok(()) };
    for tag in tags.iter_mut() {
        let label = match tag {
            Value::String(label) => {
                text::check_tag(label).map_err(|e| Rejection::invalid(format!("{} {name}: {e}", kind.singular())))?;
                continue;
            }
            Value::Object(obj) => obj
                .get("label")
                .and_then(Value::as_str)
                .filter(|l| !l.trim().is_empty())
                .or_else(|| obj.get("id").and_then(Value::as_str))
                .map(str::to_string),
            _ => None,
        };
        match label {
            Some(label) => {
                text::check_tag(&label).map_err(|e| Rejection::invalid(format!("{} {name}: {e}", kind.singular())))?;
                *tag = Value::String(label)
            }
            None => {
                return Err(Rejection::invalid(format!(
                    "{} {name}: field tags expects a list of strings or of {{\"id\", \"label\"}} objects; got {tag}",
                    kind.singular()
                )))
            }
        }
    }
    Ok(())
}

fn unknown_auth_type(kind: ResourceKind, name: &str, given: &str) -> Rejection {
    Rejection::invalid(format!(
        "{} {name}: auth_type expects {} (or authheaders); got {given}",
        kind.singular(),
        AUTH_TYPES.join(", ")
    ))
}

fn expected_credentials(auth_type: &str) -> &'static str {
    match auth_type {
        "basic" => "auth_username and auth_password",
        "bearer" => "auth_token",
        "query_param" => "auth_query_param_key and auth_query_param_value, or auth_query_params",
        "oauth" => "oauth_config with its client_secret",
        _ => "auth_header_key and auth_header_value, or auth_headers",
    }
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
        "headers" => {
            (text("auth_header_key") && text("auth_header_value"))
                || credentials.get("auth_headers").is_some_and(|h| h.is_object() || h.is_array())
        }
        "query_param" => {
            (text("auth_query_param_key") && text("auth_query_param_value"))
                || credentials.get("auth_query_params").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
        }
        "oauth" => credentials.get("oauth_config").is_some_and(Value::is_object),
        other => return Err(unknown_auth_type(kind, name, &format!("{other:?}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::invalid(format!(
            "{} {name}: auth_type {auth_type} expects {}",
            kind.singular(),
            expected_credentials(auth_type)
        )))
    }
}

/// Puts opened credentials (the sealed object of [`normalize`]) back into an entity as input fields: the
/// credential fields at the top, the OAuth secrets into its `oauth_config`. The inverse of sealing, for an
/// import that seals them again under another key.
pub fn restore_credentials(entity: &mut Map<String, Value>, mut opened: Map<String, Value>) {
    if let Some(Value::Object(secrets)) = opened.remove("oauth_config") {
        let config = entity.entry("oauth_config").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(config) = config {
            config.extend(secrets);
        }
    }
    entity.extend(opened);
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
