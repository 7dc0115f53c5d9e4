//! The registry's export, one use case ([`export`]) shared by `GET /export`, `POST /export/selective` and
//! `cfgledger export`: filters or an exact selection, what the chosen entities reference, and the document in
//! cfgledger's layout or MCP Gateway's. Entities are exported as stored: credentials stay sealed (`auth_type`
//! and the encrypted `auth_value`), and the document names the encryption (algorithm, KDF, salt, key id) so
//! that an import elsewhere knows which secret opens them. A digest over the content lets an import notice a
//! damaged file. MCP Gateway's layout re-seals each credential the way that gateway does.
//!
//! An export always imports into an empty store: what an exported server links is brought along (or, when
//! the caller declines dependencies, the server is left out), and the document says which. Its settings are
//! only the values the source store holds (source `db`). Each export ends with its metrics and a log line.

use super::mcpgateway;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::model::{
    EntitiesByKind, EntityFields, ExportAnswer, ExportDocument, ExportEncryption, ExportMetadata, ExportQuery,
    ExportSource, GatewayExportDocument, GatewayExportMetadata, GatewayExportOptions, Selection,
};
use crate::model::{GatewayDependencies, ValueSource};
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::Timestamp;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The `version` of the document: the MCP protocol revision MCP Gateway 1.1.0's exports carry.
pub const VERSION: &str = mcpgateway::VERSION;
pub const FORMAT: &str = "cfgledger-export";
pub const SCHEMA_VERSION: u64 = 1;

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these kinds (all when `None`).
    pub types: Option<BTreeSet<ResourceKind>>,
    pub exclude_types: BTreeSet<ResourceKind>,
    /// Entities with any of these tags (all when empty).
    pub tags: Vec<String>,
    pub include_inactive: bool,
    /// An exported server brings the tools, resources and prompts it references; without it, a server whose
    /// links are not exported is left out.
    pub include_dependencies: bool,
    /// Exactly these entities, by kind and identity (`POST /export/selective`); the other filters apply to
    /// nothing then.
    pub selected: Option<BTreeMap<ResourceKind, Vec<String>>>,
}

impl Filter {
    /// The filter `GET /export`'s query (and `cfgledger export`'s flags) describe.
    pub fn from_query(query: &ExportQuery) -> Result<Filter, Error> {
        Ok(Filter {
            types: query.types.as_deref().map(super::parse_kinds).transpose()?,
            exclude_types: query.exclude_types.as_deref().map(super::parse_kinds).transpose()?.unwrap_or_default(),
            tags: query.tags.as_deref().map(super::split_list).unwrap_or_default(),
            include_inactive: query.include_inactive,
            include_dependencies: query.include_dependencies.unwrap_or(true),
            selected: None,
        })
    }

    /// Exactly the named entities (inactive ones included), as `POST /export/selective` takes them.
    pub fn selection(selection: &Selection, include_dependencies: bool) -> Result<Filter, Error> {
        Ok(Filter {
            selected: Some(super::parse_selection(selection)?),
            include_dependencies,
            include_inactive: true,
            ..Filter::default()
        })
    }
}

/// The layout of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Cfgledger,
    /// MCP Gateway's own layout, for going back to MCP Gateway.
    McpGateway,
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format, Error> {
        match s {
            "cfgledger" => Ok(Format::Cfgledger),
            "mcpgateway" => Ok(Format::McpGateway),
            other => Err(Error::input(format!("format expects cfgledger or mcpgateway; got {other:?}"))),
        }
    }
}

/// An export to make.
#[derive(Default)]
pub struct ExportRequest {
    pub filter: Filter,
    pub format: Format,
    /// MCP Gateway's layout only: the target gateway's secret (this store's own when `None`).
    pub target_secret: Option<zeroize::Zeroizing<String>>,
}

impl ExportRequest {
    /// The request `GET /export`'s query describes (the server's own secret for MCP Gateway's layout).
    pub fn from_query(query: &ExportQuery) -> Result<ExportRequest, Error> {
        Ok(ExportRequest {
            filter: Filter::from_query(query)?,
            format: query.format.as_deref().map_or(Ok(Format::Cfgledger), str::parse)?,
            target_secret: None,
        })
    }
}

/// The use case: the export of the store as it is now, by `exported_by`, in the requested layout. CPU work
/// (MCP Gateway's layout re-seals every credential): async callers run it off their workers. Its metrics
/// and one log line are written when it ends.
pub fn export(
    ledger: &Ledger,
    request: &ExportRequest,
    exported_by: &str,
    now: Timestamp,
) -> Result<ExportAnswer, Error> {
    let started = Instant::now();
    let layout = match request.format {
        Format::Cfgledger => "cfgledger",
        Format::McpGateway => "mcpgateway",
    };
    let with_digest = request.format == Format::Cfgledger;
    let result = build(ledger, &request.filter, exported_by, now, with_digest).and_then(|doc| {
        Ok(match request.format {
            Format::Cfgledger => ExportAnswer::Cfgledger(Box::new(doc)),
            Format::McpGateway => ExportAnswer::McpGateway(Box::new(to_mcpgateway(
                ledger,
                doc,
                request.target_secret.as_ref().map(|s| s.as_str()),
                request.filter.include_inactive,
            )?)),
        })
    });
    observe(layout, exported_by, started, &result);
    result
}

/// An export's metrics and its one log line: outcome and duration by layout, entities by kind, credentials
/// re-keyed, and the id, size and digest of the document.
pub fn observe(layout: &'static str, actor: &str, started: Instant, result: &Result<ExportAnswer, Error>) {
    let elapsed = started.elapsed();
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    metrics::counter!("cfgledger_exports_total", "layout" => layout, "outcome" => outcome).increment(1);
    metrics::histogram!("cfgledger_export_duration_seconds", "layout" => layout).record(elapsed.as_secs_f64());
    let answer = match result {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(target: "cfgledger::export", actor, layout, outcome, duration_ms = elapsed.as_secs_f64() * 1000.0, error = %error, "export failed");
            return;
        }
    };
    for (kind, n) in answer.entity_counts() {
        metrics::counter!("cfgledger_export_entities_total", "layout" => layout, "kind" => kind.clone())
            .increment(*n as u64);
    }
    // One pass over the document's compact JSON gives its size and, for MCP Gateway's layout (which carries
    // no digest of its own), a digest of its bytes; nothing of the text is kept.
    let measure = super::Measure::of(answer);
    let (id, digest, rekeyed) = match answer {
        ExportAnswer::Cfgledger(d) => (d.metadata.export_id.as_str(), d.digest.clone(), 0),
        ExportAnswer::McpGateway(d) => (
            d.metadata.export_id.as_str(),
            format!("blake3:{}", measure.hasher.finalize().to_hex()),
            // Sealed values, as an import counts them: each auth_value and each query parameter.
            d.entities
                .values()
                .flatten()
                .map(|e| {
                    usize::from(e.contains_key("auth_value"))
                        + e.get("auth_query_params").and_then(Value::as_object).map_or(0, Map::len)
                })
                .sum(),
        ),
    };
    let bytes = measure.bytes;
    if rekeyed > 0 {
        metrics::counter!("cfgledger_credentials_rekeyed_total", "direction" => "export", "layout" => layout)
            .increment(rekeyed as u64);
    }
    tracing::info!(
        target: "cfgledger::export",
        export_id = id,
        actor,
        layout,
        outcome,
        entities = %counts_line(answer.entity_counts()),
        rekeyed,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        bytes,
        digest = digest.as_str(),
        "export finished"
    );
}

/// The names of each kind the filter chooses, before dependencies.
fn choose(
    state: &cfgledger_projections::SettingsState,
    filter: &Filter,
) -> Result<BTreeMap<ResourceKind, BTreeSet<String>>, Error> {
    let mut chosen: BTreeMap<ResourceKind, BTreeSet<String>> = BTreeMap::new();
    if let Some(selection) = &filter.selected {
        for (kind, names) in selection {
            for name in names {
                if state.resource_entry(*kind, name).is_none() {
                    return Err(Error::missing(format!("no {} {name} to export", kind.singular())));
                }
                chosen.entry(*kind).or_default().insert(name.clone());
            }
        }
        return Ok(chosen);
    }
    for kind in ResourceKind::ALL {
        let wanted = filter.types.as_ref().is_none_or(|t| t.contains(&kind)) && !filter.exclude_types.contains(&kind);
        if !wanted {
            continue;
        }
        for (name, entry) in state.resources(kind) {
            if (filter.include_inactive || super::active(&entry.fields)) && super::tagged(&entry.fields, &filter.tags) {
                chosen.entry(kind).or_default().insert(name.clone());
            }
        }
    }
    Ok(chosen)
}

/// Makes the chosen entities importable into an empty store: with dependencies, what they link is brought
/// along (whatever the filter said of it: another kind, another tag, inactive); without, an entity whose
/// links are not all chosen is left out. Returns what it did, one line each, for the document.
fn close_over_links(
    state: &cfgledger_projections::SettingsState,
    chosen: &mut BTreeMap<ResourceKind, BTreeSet<String>>,
    include_dependencies: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    // Links go from later kinds to earlier ones (servers to tools, ...): one pass in reverse dependency order
    // sees every link.
    for kind in ResourceKind::ALL.into_iter().rev() {
        let names: Vec<String> = chosen.get(&kind).into_iter().flatten().cloned().collect();
        for name in names {
            let Some(entry) = state.resource_entry(kind, &name) else { continue };
            let missing: Vec<(ResourceKind, String)> = resource::referenced(kind, &entry.fields)
                .into_iter()
                .filter(|(k, n)| !chosen.get(k).is_some_and(|c| c.contains(n)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let listed = missing.iter().map(|(k, n)| format!("{k}/{n}")).collect::<Vec<_>>().join(", ");
            if include_dependencies {
                for (k, n) in missing {
                    let inactive = state.resource_entry(k, &n).is_some_and(|e| !super::active(&e.fields));
                    notes.push(format!(
                        "{k}/{n} brought along{}: {kind}/{name} links it",
                        if inactive { " although inactive" } else { "" }
                    ));
                    chosen.entry(k).or_default().insert(n);
                }
            } else {
                chosen.entry(kind).or_default().remove(&name);
                notes.push(format!(
                    "{kind}/{name} left out: it links {listed}, which the export does not hold (export with dependencies to bring them)"
                ));
            }
        }
    }
    notes
}

/// The export document of the store as it is now.
pub fn document(ledger: &Ledger, filter: &Filter, exported_by: &str, now: Timestamp) -> Result<ExportDocument, Error> {
    build(ledger, filter, exported_by, now, true)
}

/// The export document; its digest (a pass over all of it) only when `with_digest`: MCP Gateway's layout,
/// rebuilt from it, carries none.
fn build(
    ledger: &Ledger,
    filter: &Filter,
    exported_by: &str,
    now: Timestamp,
    with_digest: bool,
) -> Result<ExportDocument, Error> {
    let snap = ledger.snapshot();
    let state = &snap.state;
    let (ring, current) = (ledger.secret_box(), state.master_keys().current());
    let mut chosen = choose(state, filter)?;
    let notes = close_over_links(state, &mut chosen, filter.include_dependencies);
    let mut dependencies = BTreeMap::new();
    let mut entities = EntitiesByKind::new();
    let mut counts = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let list: Vec<EntityFields> = chosen
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|name| state.resource_entry(kind, name))
            .map(|e| portable(ring, current, kind, e.fields.clone()))
            .collect::<Result<_, Error>>()?;
        for fields in &list {
            let refs = resource::referenced(kind, fields);
            if let (false, Ok(name)) = (refs.is_empty(), resource::identity(kind, fields)) {
                dependencies.insert(format!("{kind}/{name}"), refs.iter().map(|(k, n)| format!("{k}/{n}")).collect());
            }
        }
        counts.insert(kind.as_str().to_string(), list.len());
        entities.insert(kind.as_str().to_string(), list);
    }
    // Only what the store holds: a default or the source's environment must not become a stored value in
    // the store that imports this.
    let (mut settings, sources) = crate::usecase::settings_transfer::exportable_settings(ledger, &snap, None);
    settings.retain(|key, _| sources.get(key) == Some(&ValueSource::Db));
    let encryption = state.store.as_ref().map(|s| ExportEncryption {
        algorithm: s.encryption.algorithm.clone(),
        kdf: s.encryption.kdf.clone(),
        salt: s.encryption.salt.clone(),
        key_id: s.encryption.key_id.clone(),
    });
    Ok(ExportDocument {
        version: VERSION.into(),
        format: FORMAT.into(),
        schema_version: SCHEMA_VERSION,
        exported_at: now.to_string(),
        exported_by: exported_by.into(),
        source: ExportSource {
            store_id: state.store.as_ref().map(|s| s.store_id.clone()),
            seq: snap.head.seq,
            head_hash: snap.head.hash.to_hex(),
        },
        encryption,
        digest: if with_digest { digest(&entities, &settings) } else { String::new() },
        entities,
        settings,
        metadata: ExportMetadata {
            entity_counts: counts,
            dependencies,
            include_dependencies: filter.include_dependencies,
            settings_source: "db".into(),
            export_id: uuid::Uuid::new_v4().to_string(),
            notes,
        },
    })
}

/// An entity's fields with every value sealed under one of this store's data keys sealed again under its
/// master key directly, which the document's `encryption` describes: an export must open with the store's
/// secret alone, wherever it is imported, and never depend on the store's data keys (which a shred
/// destroys). Sealed with a synthetic nonce, so that an unchanged store exports the same file twice. The
/// plaintext exists only inside this process, between the two.
fn portable(
    ring: &crate::keyring::Keyring,
    current: &str,
    kind: ResourceKind,
    mut fields: EntityFields,
) -> Result<EntityFields, Error> {
    use cfgledger_events::master_key::sealed_data_key;
    let name = resource::identity(kind, &fields).unwrap_or_default();
    let again = |binding: String, text: &str| -> Result<String, Error> {
        let plain = zeroize::Zeroizing::new(
            cfgledger_events::Sealer::open(ring, &binding, text)
                .map_err(|e| Error::Integrity(format!("cannot export {kind}/{name}: {e}")))?,
        );
        ring.seal_stable_under(current, &crate::crypto::setting_aad(&binding), &plain).map_err(Error::Secret)
    };
    if let Some(Value::String(text)) = fields.get_mut("auth_value") {
        if sealed_data_key(text).is_some() {
            *text = again(resource::auth_binding(kind, &name), text)?;
        }
    }
    if let Some(Value::Object(headers)) = fields.get_mut("headers") {
        for (header, value) in headers.iter_mut() {
            let Some(Value::String(text)) = value.as_object_mut().and_then(|o| o.get_mut(resource::SEALED_HEADER))
            else {
                continue;
            };
            if sealed_data_key(text).is_some() {
                *text = again(resource::header_binding(kind, &name, header), text)?;
            }
        }
    }
    Ok(fields)
}

/// The export `doc` rewritten in MCP Gateway 1.1.0's own layout, for going back to MCP Gateway, so that a
/// gateway's `/import` keeps everything it can hold:
/// - each credential opened with this store's key and sealed as MCP Gateway seals it (a JSON object of auth
///   headers, AES-256-GCM under SHA-256 of `target_secret`, or of this store's own secret when none is
///   given), query-parameter credentials as its `auth_query_params`, and `headers` named `authheaders`;
/// - tags as `{"id", "label"}`, a prompt's `arguments` as its `input_schema`, a server's tools as `tool_ids`
///   by name (its import resolves names), `metadata.dependencies` as `servers_to_tools` and its kin;
/// - `metadata.warnings` naming what the gateway cannot hold: OAuth settings, a server's links to resources
///   and prompts, tags it drops, and inactive entities, which arrive active.
///
/// Settings are left out (MCP Gateway's files carry none). Fails whole, naming the entity, if a value does
/// not open.
pub fn to_mcpgateway(
    ledger: &Ledger,
    doc: ExportDocument,
    target_secret: Option<&str>,
    include_inactive: bool,
) -> Result<GatewayExportDocument, Error> {
    let key = mcpgateway::GatewayKey::new(target_secret.unwrap_or(ledger.own_secret()));
    let mut warnings = doc.metadata.notes.clone();
    let mut dependencies = GatewayDependencies::default();
    let mut entities = EntitiesByKind::new();
    for (kind_name, list) in doc.entities {
        let kind: ResourceKind = kind_name.parse().map_err(|e: String| Error::Integrity(e))?;
        let mut out = Vec::with_capacity(list.len());
        for entity in list {
            let name = resource::identity(kind, &entity).unwrap_or_default();
            if !super::active(&entity) {
                warnings.push(format!(
                    "{kind}/{name} is inactive here and arrives active: MCP Gateway's import ignores is_active"
                ));
            }
            let entity = reseal(ledger, kind, entity, &key, &mut warnings)?;
            out.push(gateway_entity(kind, &name, entity, &mut dependencies, &mut warnings));
        }
        entities.insert(kind_name, out);
    }
    Ok(GatewayExportDocument {
        version: mcpgateway::VERSION.into(),
        exported_at: doc.exported_at,
        exported_by: doc.exported_by,
        source_gateway: doc.source.store_id.map(|id| format!("cfgledger:{id}")),
        encryption_method: mcpgateway::METHOD.into(),
        entities,
        metadata: GatewayExportMetadata {
            entity_counts: doc.metadata.entity_counts,
            dependencies,
            export_options: GatewayExportOptions {
                include_dependencies: doc.metadata.include_dependencies,
                include_inactive,
            },
            export_id: doc.metadata.export_id,
            warnings,
        },
    })
}

/// One entity's fields in the form MCP Gateway's import reads.
fn gateway_entity(
    kind: ResourceKind,
    name: &str,
    mut entity: EntityFields,
    dependencies: &mut GatewayDependencies,
    warnings: &mut Vec<String>,
) -> EntityFields {
    if let Some(Value::Array(tags)) = entity.get_mut("tags") {
        for tag in tags.iter_mut() {
            if let Some(label) = tag.as_str().map(str::to_string) {
                if !mcpgateway::tag_kept(&label) {
                    warnings.push(format!(
                        "{kind}/{name}: MCP Gateway drops the tag {label:?} (it keeps 2 to 100 of a-z, 0-9, '-', ':' and '.')"
                    ));
                }
                *tag = mcpgateway::tag_object(&label);
            }
        }
    }
    if entity.contains_key("oauth_config") {
        warnings.push(format!(
            "{kind}/{name}: MCP Gateway's import does not read oauth_config; configure OAuth on the target gateway"
        ));
    }
    match kind {
        ResourceKind::Servers => {
            let names = |entity: &mut EntityFields, field: &str| -> Vec<String> {
                match entity.remove(field) {
                    Some(Value::Array(items)) => {
                        items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
                    }
                    _ => Vec::new(),
                }
            };
            let tools = names(&mut entity, "associated_tools");
            let resources = names(&mut entity, "associated_resources");
            let prompts = names(&mut entity, "associated_prompts");
            for (what, list) in [("resources", &resources), ("prompts", &prompts)] {
                if !list.is_empty() {
                    warnings.push(format!(
                        "servers/{name}: MCP Gateway's import does not link a server's {what}; link {} on the target gateway",
                        list.join(", ")
                    ));
                }
            }
            entity.insert("tool_ids".into(), Value::Array(tools.iter().cloned().map(Value::String).collect()));
            if !tools.is_empty() {
                dependencies.servers_to_tools.insert(name.to_string(), tools);
            }
            if !resources.is_empty() {
                dependencies.servers_to_resources.insert(name.to_string(), resources);
            }
            if !prompts.is_empty() {
                dependencies.servers_to_prompts.insert(name.to_string(), prompts);
            }
        }
        ResourceKind::Prompts => {
            if let Some(Value::Array(arguments)) = entity.remove("arguments") {
                if !entity.contains_key("input_schema") {
                    entity.insert("input_schema".into(), prompt_schema(&arguments));
                }
            }
        }
        _ => {}
    }
    entity
}

/// A prompt's `arguments` (`[{"name", "description", "required"}]`) as the `input_schema` MCP Gateway's
/// import turns back into arguments: each a string property with its description, the required ones in
/// `required`.
fn prompt_schema(arguments: &[Value]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for arg in arguments {
        let Some(name) = arg.get("name").and_then(Value::as_str) else { continue };
        let mut property = Map::new();
        property.insert("type".into(), Value::String("string".into()));
        property.insert(
            "description".into(),
            arg.get("description").cloned().filter(Value::is_string).unwrap_or(Value::String(String::new())),
        );
        properties.insert(name.to_string(), Value::Object(property));
        if arg.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(Value::String(name.to_string()));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), Value::String("object".into()));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(required));
    Value::Object(schema)
}

/// One entity's credentials opened with this store's key and sealed as MCP Gateway seals them: auth headers
/// in `auth_value`, query-parameter credentials in `auth_query_params` (each `{param: value}` sealed), and
/// OAuth secrets left out (the gateway's import does not read them). A tool's secret headers travel in the
/// sealed auth headers too: the gateway's import takes `headers` only as plaintext, and it sends every auth
/// header with the tool's requests.
fn reseal(
    ledger: &Ledger,
    kind: ResourceKind,
    mut entity: EntityFields,
    key: &mcpgateway::GatewayKey,
    warnings: &mut Vec<String>,
) -> Result<EntityFields, Error> {
    let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
    let cannot = |why: String| {
        Error::Integrity(format!("cannot re-encrypt the credentials of {kind}/{name} for MCP Gateway: {why}"))
    };
    resource::unseal(kind, &name, &mut entity, ledger.secret_box())
        .map_err(|field| cannot(format!("{field} does not open")))?;
    let mut secret_headers = Map::new();
    if let Some(Value::Object(headers)) = entity.get_mut("headers") {
        let names: Vec<String> = headers.keys().filter(|k| resource::secret_header(k)).cloned().collect();
        for header in names {
            if let Some(value) = headers.remove(&header) {
                secret_headers.insert(header, value);
            }
        }
    }
    let mut credentials: Map<String, Value> =
        resource::CREDENTIAL_FIELDS.iter().filter_map(|f| entity.remove(*f).map(|v| (f.to_string(), v))).collect();
    if let Some(Value::Object(oauth)) = entity.get_mut("oauth_config") {
        for field in resource::OAUTH_SECRET_FIELDS {
            oauth.remove(field);
        }
    }
    let mut params = Map::new();
    if let (Some(Value::String(k)), Some(v)) =
        (credentials.remove("auth_query_param_key"), credentials.remove("auth_query_param_value"))
    {
        params.insert(k, v);
    }
    if let Some(Value::Object(given)) = credentials.remove("auth_query_params") {
        params.extend(given);
    }
    if params.len() > 1 {
        warnings.push(format!(
            "{kind}/{name}: MCP Gateway's import reads only the first of its {} query-parameter credentials ({})",
            params.len(),
            params.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !params.is_empty() {
        let mut sealed_params = Map::new();
        for (param, value) in params {
            let mut one = Map::new();
            one.insert(param.clone(), value);
            sealed_params.insert(param, Value::String(key.seal(&one).map_err(cannot)?));
        }
        entity.insert("auth_query_params".into(), Value::Object(sealed_params));
    }
    let mut headers = mcpgateway::headers(&credentials);
    if !secret_headers.is_empty() {
        let listed = secret_headers.keys().cloned().collect::<Vec<_>>().join(", ");
        for (header, value) in secret_headers {
            if headers.keys().any(|k| k.eq_ignore_ascii_case(&header)) {
                warnings.push(format!(
                    "{kind}/{name}: its header {header} is replaced by its own auth (MCP Gateway sends one {header})"
                ));
                continue;
            }
            headers.insert(header, value);
        }
        if !entity.contains_key("auth_type") {
            entity.insert("auth_type".into(), Value::String("headers".into()));
        }
        warnings.push(format!(
            "{kind}/{name}: the secret header(s) {listed} travel sealed in its auth headers (MCP Gateway takes headers only in plaintext, and sends auth headers with every request)"
        ));
    }
    if !headers.is_empty() {
        entity.insert("auth_value".into(), Value::String(key.seal(&headers).map_err(cannot)?));
    }
    if let Some(ours) = entity.get("auth_type").and_then(Value::as_str).map(str::to_string) {
        entity.insert("auth_type".into(), Value::String(mcpgateway::auth_type(&ours).to_string()));
    }
    Ok(entity)
}

/// `blake3:` and the hex hash of the entities and settings, as compact JSON (object keys sorted).
pub fn digest<E: serde::Serialize + ?Sized, S: serde::Serialize + ?Sized>(entities: &E, settings: &S) -> String {
    // The same bytes as serializing {"entities": ..., "settings": ...} (keys in sorted order), streamed into
    // the hasher by reference: no copy of the document, no buffer of its text.
    #[derive(serde::Serialize)]
    struct Content<'a, E: ?Sized, S: ?Sized> {
        entities: &'a E,
        settings: &'a S,
    }
    let mut hasher = blake3::Hasher::new();
    let _ = serde_json::to_writer(&mut hasher, &Content { entities, settings });
    format!("blake3:{}", hasher.finalize().to_hex())
}

/// The counts per kind of an export, for a one-line summary.
pub fn counts_line(counts: &BTreeMap<String, usize>) -> String {
    ResourceKind::ALL
        .into_iter()
        .map(|k| format!("{} {k}", counts.get(k.as_str()).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_is_that_of_the_content_as_one_json_object() {
        let (entities, settings) =
            (serde_json::json!({"tools": [{"name": "t", "z": 1, "a": [2]}]}), serde_json::json!({"B": 1, "A": "x"}));
        let text = serde_json::to_vec(&serde_json::json!({"entities": entities, "settings": settings})).unwrap();
        assert_eq!(super::digest(&entities, &settings), format!("blake3:{}", blake3::hash(&text).to_hex()));
    }

    #[test]
    fn typed_entities_hash_like_the_document_they_are_read_back_as() {
        let mut entities = crate::model::EntitiesByKind::new();
        let tool = serde_json::json!({"name": "t", "z": 1, "a": [2]});
        entities.insert("tools".into(), vec![tool.as_object().cloned().unwrap_or_default()]);
        entities.insert("gateways".into(), Vec::new());
        let settings = serde_json::Map::new();
        let text = serde_json::to_string(&serde_json::json!({"entities": entities, "settings": settings})).unwrap();
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(super::digest(&entities, &settings), super::digest(&read["entities"], &read["settings"]));
    }
}
