//! The registry's import, one use case ([`import`]) shared by `POST /import` and `cfgledger import`: read the
//! document (cfgledger's export or MCP Gateway's, as 1.1.0 and 1.0.x write it; a `digest` that does not match
//! is refused unless the caller says the file was edited on purpose), narrow it to a selection, read MCP
//! Gateway's layout into the store's (server links resolved to names, derived fields dropped), open every
//! sealed credential with the source's secret so that this store seals it again under its own key, plan
//! against the current state, and unless it is a dry run apply the entities (and, only when asked, the
//! settings) as one batch. The report says what the plan was, what could not be taken as given and, from the
//! writer's outcome, what was appended. Each import ends with its metrics and one log line.
//! [`statuses`] reads past imports back from the log (they survive restarts).

use super::export::digest;
use super::mcpgateway;
use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{EntityCounts, EntityPlan, ImportBody, ImportReport, ImportResult, ImportStatus, ImportStatusKind};
use cfgledger_events::registry_import::EntityAction;
use cfgledger_events::registry_import::{ConflictStrategy, RegistryImport};
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::{Cause, Command, ImportRequest};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use zeroize::Zeroizing;

/// An import to make.
pub struct ImportInput {
    /// The export document, as read.
    pub document: Value,
    pub strategy: ConflictStrategy,
    /// Only these entities (all when `None`).
    pub selection: Option<BTreeMap<ResourceKind, Vec<String>>>,
    /// The secret the document's credentials were sealed under, when it is not this store's.
    pub source_secret: Option<Zeroizing<String>>,
    /// Plan only: nothing is written.
    pub dry_run: bool,
    /// Apply the document's settings too (they are left out otherwise).
    pub with_settings: bool,
    /// Accept a document whose digest does not match its content.
    pub allow_edited: bool,
    /// How the import arrived (`POST /import`, `import`): the audit cause names it with the digest.
    pub via: String,
    /// How the caller spells the options, for messages that tell it what to do.
    pub options: &'static OptionNames,
}

/// The names of an import's options as one kind of caller gives them, so that a message names the option
/// the caller can actually use.
#[derive(Debug)]
pub struct OptionNames {
    pub source_secret: &'static str,
    pub allow_edited: &'static str,
    pub with_settings: &'static str,
}

/// `POST /import`'s body fields.
pub const API_OPTIONS: OptionNames = OptionNames {
    source_secret: "source_secret",
    allow_edited: "\"allow_edited\": true",
    with_settings: "\"with_settings\": true",
};

/// `cfgledger import`'s flags.
pub const CLI_OPTIONS: OptionNames = OptionNames {
    source_secret: "--source-secret-env VAR",
    allow_edited: "--allow-edited",
    with_settings: "--with-settings",
};

impl ImportInput {
    /// The input `POST /import`'s body describes.
    pub fn from_body(body: ImportBody, via: &str) -> Result<ImportInput, Error> {
        Ok(ImportInput {
            strategy: parse_strategy(body.conflict_strategy.as_deref().unwrap_or("update"))?,
            selection: body.selected_entities.as_ref().map(super::parse_selection).transpose()?,
            source_secret: body.source_secret.map(Zeroizing::new),
            document: body.import_data,
            dry_run: body.dry_run,
            with_settings: body.with_settings,
            allow_edited: body.allow_edited,
            via: via.to_string(),
            options: &API_OPTIONS,
        })
    }
}

impl ImportInput {
    /// How this import reads its document.
    pub fn reading(&self) -> ImportOptions {
        ImportOptions { with_settings: self.with_settings, allow_edited: self.allow_edited, names: self.options }
    }
}

/// The layout a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// cfgledger's own export (`format: "cfgledger-export"`), or a hand-written `{"entities": ...}`.
    Cfgledger,
    /// MCP Gateway's export (1.1.0 or 1.0.x): no `format`, a `source_gateway` or `encryption_method`.
    McpGateway,
}

impl Layout {
    /// The layout of `doc`.
    pub fn of(doc: &Map<String, Value>) -> Layout {
        let gateway_fields = doc.contains_key("encryption_method") || doc.contains_key("source_gateway");
        if !doc.contains_key("format") && gateway_fields {
            Layout::McpGateway
        } else {
            Layout::Cfgledger
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Cfgledger => "cfgledger",
            Layout::McpGateway => "mcpgateway",
        }
    }
}

/// `skip`, `update`, `rename` or `fail`.
pub fn parse_strategy(text: &str) -> Result<ConflictStrategy, Error> {
    text.parse().map_err(|e: String| Error::input(e))
}

/// A refused import, with the plan when the refusal came at apply time (a `fail` conflict), so that a client
/// can show what clashed.
#[derive(Debug)]
pub struct ImportRefusal {
    pub error: Error,
    pub plan: Option<Box<ImportReport>>,
}

impl From<Error> for ImportRefusal {
    fn from(error: Error) -> Self {
        ImportRefusal { error, plan: None }
    }
}

/// The use case. Blocking (Argon2id for foreign credentials, the writer's acknowledgement): async callers
/// run it on a blocking thread. The caller's admission checks (role, rate limit) come before.
pub fn import(ledger: &Ledger, input: ImportInput, ctx: WriteContext) -> Result<ImportReport, ImportRefusal> {
    let started = Instant::now();
    let layout = input.document.as_object().map_or(Layout::Cfgledger, Layout::of);
    let bytes = super::Measure::of(&input.document).bytes;
    let actor = ctx.actor.name.clone();
    let strategy = input.strategy;
    let result = run(ledger, input, ctx);
    observe(layout, strategy, &actor, bytes, started, &result);
    result
}

fn run(ledger: &Ledger, input: ImportInput, mut ctx: WriteContext) -> Result<ImportReport, ImportRefusal> {
    let options = input.reading();
    let parsed = parse(
        ledger,
        &input.document,
        input.strategy,
        input.selection.as_ref(),
        input.source_secret.as_ref().map(|s| s.as_str()),
        &options,
    )?;
    // The secret has done its work: drop it now, not at the end of the call.
    drop(input.source_secret);
    let mut report = plan(ledger, &parsed)?;
    report.dry_run = input.dry_run;
    if input.dry_run {
        return Ok(report);
    }
    ctx.cause = Cause::Import { digest: parsed.digest.clone(), via: input.via };
    let outcome = match ledger.execute(command(parsed), ctx) {
        Ok(outcome) => outcome,
        Err(error) => return Err(ImportRefusal { error, plan: Some(Box::new(report)) }),
    };
    report.status = Some(if outcome.changed() { ImportStatusKind::Completed } else { ImportStatusKind::NothingToDo });
    report.import_id = outcome.batch_id.clone();
    report.result = outcome.find(|event| match event {
        cfgledger_events::Event::ImportApplied(e) => Some(ImportResult {
            created: e.created.clone(),
            updated: e.updated.clone(),
            unchanged: e.unchanged,
            locked: e.locked.clone(),
        }),
        _ => None,
    });
    report.head = outcome.head.seq;
    Ok(report)
}

/// An import document, parsed: the entities (optionally narrowed to a selection), the settings, and what
/// identifies the document.
pub struct ParsedImport {
    pub digest: String,
    pub source: Option<Value>,
    pub registry: RegistryImport,
    pub settings: Option<ImportRequest>,
    pub layout: Layout,
    /// What the reading could not take as given, per entity (`KIND`, name): server links that resolve to
    /// nothing, for the plan.
    pub notes: BTreeMap<(ResourceKind, String), Vec<String>>,
    /// What it did to the document as a whole: settings left out, an edited file accepted.
    pub document_notes: Vec<String>,
    /// How many sealed values were opened with the source's key, to be sealed again under this store's.
    pub rekeyed: usize,
}

/// How an import reads its document, beyond the document itself.
pub struct ImportOptions {
    pub with_settings: bool,
    pub allow_edited: bool,
    pub names: &'static OptionNames,
}

/// What [`check_document`] found: the digest of the document's content, and the note of an edited file
/// accepted as such.
pub struct Checked {
    pub digest: String,
    pub edited: Option<String>,
}

/// The checks of a document that need no store: it is an object, and its digest matches (or the caller
/// accepts an edited file). The CLI runs them before sending a document to a server, so that their messages
/// name its own flags.
pub fn check_document(doc: &Value, options: &ImportOptions) -> Result<Checked, Error> {
    let Some(obj) = doc.as_object() else {
        return Err(Error::input("the import document expects a JSON object with \"entities\""));
    };
    // An empty document is a mistake (a truncated file, the wrong file), not a request to do nothing: answering
    // `nothing_to_do` would hide it.
    if ["entities", "settings"].iter().all(|field| obj.get(*field).is_none_or(Value::is_null)) {
        return Err(Error::input(
            "the import document is empty: it has neither \"entities\" nor \"settings\" (GET /export writes both)",
        ));
    }
    let empty = Value::Object(Map::new());
    let entities = obj.get("entities").unwrap_or(&empty);
    let settings = obj.get("settings").unwrap_or(&Value::Null);
    let digest = digest(entities, settings);
    let Some(claimed) = obj.get("digest") else { return Ok(Checked { digest, edited: None }) };
    if claimed.as_str() == Some(digest.as_str()) {
        return Ok(Checked { digest, edited: None });
    }
    if options.allow_edited {
        let edited = format!(
            "the document's digest does not match its content: imported as an edited file, as asked (it says {claimed}, the content hashes to {digest:?})"
        );
        return Ok(Checked { digest, edited: Some(edited) });
    }
    Err(Error::invalid(format!(
        "the document's digest does not match its content: it says {claimed}, the content hashes to {digest:?}. \
         The file was changed after it was exported, or damaged in transit. If you edited it on purpose, import it \
         with {} (or delete its \"digest\" field); otherwise export it again",
        options.names.allow_edited
    )))
}

/// Refuses, before anything is sent anywhere, an MCP Gateway document whose credentials need the gateway's
/// secret when none is given, naming the option the caller has.
pub fn check_gateway_secret(doc: &Value, secret_given: bool, names: &OptionNames) -> Result<(), Error> {
    let Some(obj) = doc.as_object() else { return Ok(()) };
    if secret_given || Layout::of(obj) != Layout::McpGateway {
        return Ok(());
    }
    let Some(by_kind) = obj.get("entities").and_then(Value::as_object) else { return Ok(()) };
    for (kind, list) in by_kind {
        for entity in list.as_array().into_iter().flatten().filter_map(Value::as_object) {
            if gateway_sealed(entity) {
                let name = entity.get("name").or_else(|| entity.get("uri")).and_then(Value::as_str).unwrap_or_default();
                return Err(missing_secret(kind, name, names));
            }
        }
    }
    Ok(())
}

/// Whether an entity of an MCP Gateway document holds anything sealed under the gateway's key: an
/// `auth_value`, query-parameter credentials, a sealed header, or an OAuth secret in the gateway's `v2:` form.
fn gateway_sealed(entity: &Map<String, Value>) -> bool {
    entity.get("auth_value").and_then(Value::as_str).is_some_and(|v| v != resource::GATEWAY_MASK)
        || entity.get("auth_query_params").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
        || !gateway_sealed_headers(entity).is_empty()
        || entity.get("oauth_config").and_then(Value::as_object).is_some_and(|c| c.values().any(is_v2))
}

/// An OAuth secret in MCP Gateway's `v2:` form.
fn is_v2(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with("v2:"))
}

/// The refusal of a document whose credentials need the gateway's secret when none is given.
fn missing_secret(kind: impl std::fmt::Display, name: &str, names: &OptionNames) -> Error {
    Error::invalid(format!(
        "{kind}/{name} carries credentials sealed by MCP Gateway: give the gateway's AUTH_ENCRYPTION_SECRET with {}; nothing was imported",
        names.source_secret
    ))
}

/// Reads an export document for import. A `digest` that does not match the content is refused (a damaged
/// or edited file) unless the options accept an edited file; `selected` keeps only the named entities.
pub fn parse(
    ledger: &Ledger,
    doc: &Value,
    strategy: ConflictStrategy,
    selected: Option<&BTreeMap<ResourceKind, Vec<String>>>,
    source_secret: Option<&str>,
    options: &ImportOptions,
) -> Result<ParsedImport, Error> {
    let Checked { digest, edited } = check_document(doc, options)?;
    let mut document_notes: Vec<String> = edited.into_iter().collect();
    let Some(obj) = doc.as_object() else {
        return Err(Error::invalid("the import document expects a JSON object with \"entities\""));
    };
    let layout = Layout::of(obj);
    let empty = Value::Object(Map::new());
    let entities = obj.get("entities").unwrap_or(&empty);
    let settings = obj.get("settings").unwrap_or(&Value::Null);
    let mut by_kind = cfgledger_events::registry_import::parse_entities(entities).map_err(Error::Rejected)?;
    if let Some(selection) = selected {
        for (kind, list) in by_kind.iter_mut() {
            let wanted = selection.get(kind);
            list.retain(|e| {
                let id = e.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default();
                wanted.is_some_and(|names| names.iter().any(|n| n == id))
            });
        }
    }
    let mut notes = BTreeMap::new();
    let rekeyed = match layout {
        Layout::McpGateway => {
            let snap = ledger.snapshot();
            read_gateway_layout(&snap.state, &mut by_kind, &mut notes);
            open_gateway_credentials(&mut by_kind, source_secret, options.names, ledger.secret_box())?
        }
        Layout::Cfgledger => rekey(ledger, obj.get("encryption"), &mut by_kind, source_secret)?,
    };
    let settings = match settings {
        Value::Object(settings) if !options.with_settings => {
            if !settings.is_empty() {
                document_notes.push(format!(
                    "the document carries {} setting(s); they are not applied: import with {} to apply them",
                    settings.len(),
                    options.names.with_settings
                ));
            }
            &Value::Null
        }
        other => other,
    };
    let settings = match settings {
        Value::Object(settings) => {
            let mut only_settings = Map::new();
            only_settings.insert("settings".into(), Value::Object(settings.clone()));
            let mut req =
                crate::usecase::settings_transfer::parse_document(&Value::Object(only_settings), ledger, None)?;
            req.digest = digest.clone();
            Some(req)
        }
        Value::Null => None,
        _ => return Err(Error::invalid("settings expects an object")),
    };
    Ok(ParsedImport {
        digest,
        source: obj.get("source").or_else(|| obj.get("source_gateway")).cloned(),
        registry: RegistryImport { entities: by_kind, strategy },
        settings,
        layout,
        notes,
        document_notes,
        rekeyed,
    })
}

/// MCP Gateway's layout read into the store's: derived fields and `null`s dropped, and each server's links
/// (`tool_ids` or `associated_tools`, `associated_resources`, `associated_prompts`) resolved to the names of
/// entities the file or the store holds. A link is matched by exact name (a resource also by URI), then by
/// the gateway's slug of a name; one that matches nothing (a database id of a selective export) or more than
/// one entity is left out and reported for the server.
fn read_gateway_layout(
    state: &cfgledger_projections::SettingsState,
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    notes: &mut BTreeMap<(ResourceKind, String), Vec<String>>,
) {
    for list in entities.values_mut() {
        for entity in list.iter_mut() {
            for field in mcpgateway::DERIVED_FIELDS {
                entity.remove(field);
            }
            entity.retain(|_, v| !v.is_null());
        }
    }
    // Each kind a server links, the fields MCP Gateway writes the links in, and the field the store keeps.
    let targets: [(ResourceKind, &[&str], &str); 3] = [
        (ResourceKind::Tools, &["tool_ids", "associated_tools"], "associated_tools"),
        (ResourceKind::Resources, &["associated_resources"], "associated_resources"),
        (ResourceKind::Prompts, &["associated_prompts"], "associated_prompts"),
    ];
    let resolvers: Vec<Resolver> = targets
        .iter()
        .map(|(kind, _, _)| Resolver::new(state, entities.get(kind).map(Vec::as_slice).unwrap_or(&[]), *kind))
        .collect();
    let Some(servers) = entities.get_mut(&ResourceKind::Servers) else { return };
    for server in servers.iter_mut() {
        let name = server.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        for ((_, fields, stored), resolver) in targets.iter().zip(&resolvers) {
            let mut given: Vec<(String, &str)> = Vec::new();
            for field in fields.iter() {
                if let Some(Value::Array(items)) = server.remove(*field) {
                    for item in items {
                        let text = match item {
                            Value::String(s) => s,
                            Value::Number(n) => n.to_string(),
                            other => other.to_string(),
                        };
                        given.push((text, field));
                    }
                }
            }
            if given.is_empty() {
                continue;
            }
            let mut names: Vec<Value> = Vec::new();
            let mut seen = BTreeSet::new();
            let mut unresolved = Vec::new();
            for (link, field) in given {
                match resolver.resolve(&link) {
                    Ok(found) => {
                        if seen.insert(found.clone()) {
                            names.push(Value::String(found));
                        }
                    }
                    Err(why) => unresolved.push(format!("{field} entry {link:?} {why}")),
                }
            }
            // The gateway keeps a server's links as a set and writes them in no stable order.
            names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            let server_notes = notes.entry((ResourceKind::Servers, name.clone())).or_default();
            // Links none of which names anything here (a selective export's database ids) are not in this
            // file, like a masked value: the links the store holds stay.
            let held = state.resource_entry(ResourceKind::Servers, &name).and_then(|s| s.fields.get(*stored)).cloned();
            match held {
                Some(held) if names.is_empty() && !unresolved.is_empty() => {
                    server_notes.extend(unresolved.into_iter().map(|u| format!("{u}: the store's links are kept")));
                    server.insert(stored.to_string(), held);
                }
                _ => {
                    server_notes.extend(unresolved.into_iter().map(|u| format!("{u}: the link to it is left out")));
                    server.insert(stored.to_string(), Value::Array(names));
                }
            }
        }
    }
}

/// Resolves MCP Gateway's links to one kind of entity into the names the store uses. The file's own entities
/// come first (a file's links are about the file), then the store's; within each, an exact name (or a
/// resource's URI) before the gateway's slug of a name.
struct Resolver {
    tiers: [Names; 2],
}

/// The names of one source of entities.
#[derive(Default)]
struct Names {
    /// Exact identities and names, to the identity.
    exact: BTreeMap<String, String>,
    /// The gateway's slug of each name, to the identities that have it.
    slugs: BTreeMap<String, BTreeSet<String>>,
}

impl Names {
    fn add(&mut self, kind: ResourceKind, fields: &Map<String, Value>) {
        let Some(id) = fields.get(kind.id_field()).and_then(Value::as_str) else { return };
        self.exact.insert(id.to_string(), id.to_string());
        if let Some(name) = fields.get("name").and_then(Value::as_str) {
            self.exact.entry(name.to_string()).or_insert_with(|| id.to_string());
            self.slugs.entry(mcpgateway::slug(name)).or_default().insert(id.to_string());
        }
    }
}

impl Resolver {
    fn new(state: &cfgledger_projections::SettingsState, file: &[Map<String, Value>], kind: ResourceKind) -> Resolver {
        let mut in_file = Names::default();
        file.iter().for_each(|fields| in_file.add(kind, fields));
        let mut in_store = Names::default();
        state.resources(kind).for_each(|(_, entry)| in_store.add(kind, &entry.fields));
        Resolver { tiers: [in_file, in_store] }
    }

    fn resolve(&self, link: &str) -> Result<String, String> {
        for names in &self.tiers {
            if let Some(id) = names.exact.get(link) {
                return Ok(id.clone());
            }
            match names.slugs.get(link).map(|ids| ids.iter().collect::<Vec<_>>()).as_deref() {
                Some([one]) => return Ok((*one).clone()),
                Some(many) if many.len() > 1 => {
                    return Err(format!(
                        "matches {} entities by the gateway's slug ({})",
                        many.len(),
                        many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                }
                _ => {}
            }
        }
        Err("names no entity in the file or the store (a gateway database id?)".into())
    }
}

/// The key of MCP Gateway's sealed tool header: `{"X-Api-Key": {"_mcpgateway_encrypted_header_value_v1":
/// "..."}}`, whose plaintext is `{"data": value}` under the same AES-256-GCM scheme as `auth_value`.
const GATEWAY_SEALED_HEADER: &str = "_mcpgateway_encrypted_header_value_v1";

/// The headers of an MCP Gateway entity that hold the gateway's sealed form.
fn gateway_sealed_headers(entity: &Map<String, Value>) -> Vec<String> {
    entity
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.iter().filter(|(_, v)| v.get(GATEWAY_SEALED_HEADER).is_some()).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

/// Opens every credential of an MCP Gateway export (AES-256-GCM under SHA-256 of its secret, which must be
/// given): `auth_value`, each value of `auth_query_params` and each sealed tool header, and the OAuth secrets
/// it seals with its other scheme (`v2:`, Argon2id and Fernet), and puts them back as input for this store to
/// seal under its own key. Fails whole, naming the entity: nothing stays under the source's key.
/// Returns how many sealed values it opened.
fn open_gateway_credentials(
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
    names: &OptionNames,
    sealer: &dyn cfgledger_events::Sealer,
) -> Result<usize, Error> {
    let v2_count = entities
        .values()
        .flatten()
        .filter_map(|e| e.get("oauth_config").and_then(Value::as_object))
        .flat_map(|c| c.values())
        .filter(|v| is_v2(v))
        .count();
    if v2_count > mcpgateway::V2_PER_DOCUMENT {
        return Err(Error::invalid(format!(
            "the document holds {v2_count} OAuth secrets sealed with MCP Gateway's v2 scheme; an import opens at most {} (each costs an Argon2id derivation): split the file; nothing was imported",
            mcpgateway::V2_PER_DOCUMENT
        )));
    }
    let mut opened = 0;
    let mut keys: Option<mcpgateway::GatewayKey> = None;
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            if !gateway_sealed(entity) {
                continue;
            }
            let Some(secret) = source_secret else { return Err(missing_secret(kind, &name, names)) };
            let sealed_value =
                entity.get("auth_value").and_then(Value::as_str).is_some_and(|v| v != resource::GATEWAY_MASK);
            let sealed_params =
                entity.get("auth_query_params").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
            if let Some(Value::Object(config)) = entity.get_mut("oauth_config") {
                let fields: Vec<String> = config
                    .iter()
                    .filter(|(k, v)| resource::OAUTH_SECRET_FIELDS.contains(&k.as_str()) && is_v2(v))
                    .map(|(k, _)| k.clone())
                    .collect();
                for field in fields {
                    let Some(bundle) = config.get(&field).and_then(Value::as_str) else { continue };
                    let plain = mcpgateway::open_v2(secret, bundle).map_err(|why| {
                        Error::invalid(format!(
                            "cannot decrypt oauth_config.{field} of {kind}/{name}: {why}; nothing was imported"
                        ))
                    })?;
                    config.insert(field, Value::String(plain.to_string()));
                    opened += 1;
                }
            }
            let sealed_headers = gateway_sealed_headers(entity);
            let key = keys.get_or_insert_with(|| mcpgateway::GatewayKey::new(secret));
            let cannot = |why: String| {
                Error::invalid(format!("cannot decrypt the credentials of {kind}/{name}: {why}; nothing was imported"))
            };
            if let Some(Value::Object(headers)) = entity.get_mut("headers") {
                for header in sealed_headers {
                    let Some(sealed) =
                        headers.get(&header).and_then(|v| v.get(GATEWAY_SEALED_HEADER)).and_then(Value::as_str)
                    else {
                        continue;
                    };
                    let opened_header = key.open(sealed).map_err(|why| cannot(format!("header {header}: {why}")))?;
                    opened += 1;
                    let plain = opened_header
                        .get("data")
                        .or_else(|| opened_header.get("value"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| cannot(format!("header {header}: its plaintext holds no \"data\" value")))?;
                    // What arrived sealed stays sealed, whether or not its name says secret.
                    let binding = resource::header_binding(*kind, &name, &header);
                    let sealed_here = cfgledger_events::Sealer::seal(sealer, &binding, plain.as_bytes())
                        .map_err(|e| Error::internal(format!("cannot encrypt header {header} of {kind}/{name}"), e))?;
                    let mut envelope = Map::new();
                    envelope.insert(resource::SEALED_HEADER.into(), Value::String(sealed_here));
                    headers.insert(header, Value::Object(envelope));
                }
            }
            if !sealed_value && !sealed_params {
                continue;
            }
            let given_type = entity.get("auth_type").and_then(Value::as_str).unwrap_or("authheaders").to_string();
            let auth_type = match given_type.as_str() {
                "authheaders" => "headers".to_string(),
                other => other.to_string(),
            };
            if let Some(Value::Object(params)) = entity.remove("auth_query_params") {
                let mut plain = Map::new();
                // A masked parameter is not in this file: left out, so the stored credential stays.
                for (param, sealed) in params.into_iter().filter(|(_, v)| v.as_str() != Some(resource::GATEWAY_MASK)) {
                    let sealed =
                        sealed.as_str().ok_or_else(|| cannot(format!("auth_query_params.{param} is not a string")))?;
                    let opened_param =
                        key.open(sealed).map_err(|why| cannot(format!("auth_query_params.{param}: {why}")))?;
                    opened += 1;
                    let value = opened_param.get(&param).cloned().unwrap_or(Value::String(String::new()));
                    plain.insert(param, value);
                }
                if !plain.is_empty() {
                    entity.insert("auth_query_params".into(), Value::Object(plain));
                }
            }
            if let Some(Value::String(sealed)) = entity.remove("auth_value") {
                if sealed != resource::GATEWAY_MASK {
                    let headers = key.open(&sealed).map_err(|why| cannot(why.to_string()))?;
                    opened += 1;
                    match auth_type.as_str() {
                        "basic" | "bearer" | "headers" => entity.extend(mcpgateway::credentials(&auth_type, headers)),
                        // Query parameters and OAuth keep their own fields; headers beside them stay headers.
                        _ if !headers.is_empty() => {
                            entity.insert("auth_headers".into(), Value::Object(headers));
                        }
                        _ => {}
                    }
                }
            }
            entity.insert("auth_type".into(), Value::String(auth_type));
        }
    }
    Ok(opened)
}

/// Opens the credentials of entities sealed by another store (another salt, perhaps another secret) and puts
/// them back as plaintext credential fields, which the import seals again under this store's key, bound to
/// the entity. Fails whole, naming the entity and key id, if any value does not open: nothing is written.
fn rekey(
    ledger: &Ledger,
    encryption: Option<&Value>,
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
) -> Result<usize, Error> {
    let sealed_anywhere = entities.values().flatten().any(|e| {
        e.get("auth_value").is_some_and(Value::is_string)
            || e.get("headers")
                .and_then(Value::as_object)
                .is_some_and(|h| h.values().any(|v| resource::sealed_header(v).is_some()))
    });
    if !sealed_anywhere {
        return Ok(0);
    }
    let Some(info) = encryption.filter(|e| !e.is_null()) else {
        return Err(Error::invalid("the document carries sealed credentials but no \"encryption\" section saying how"));
    };
    let info: cfgledger_events::event::EncryptionInfo = serde_json::from_value(info.clone())
        .map_err(|e| Error::invalid(format!("the document's encryption section does not parse: {e}")))?;
    let own = ledger.snapshot().state.store.as_ref().map(|s| s.encryption.key_id.clone());
    if own.as_deref() == Some(info.key_id.as_str()) && source_secret.is_none() {
        return Ok(0);
    }
    let foreign = ledger.foreign_box(&info, source_secret)?;
    let mut rekeyed = 0;
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            rekeyed += resource::unseal(*kind, &name, entity, &foreign).map_err(|field| {
                Error::invalid(format!(
                    "cannot decrypt {field} of {kind}/{name} (sealed with key {}): nothing was imported",
                    info.key_id
                ))
            })?;
        }
    }
    Ok(rekeyed)
}

/// The plan of an import against the current state: each entity's action, the settings plan, and counts
/// per action. Refuses what the apply would refuse (invalid entities, unresolved references).
pub fn plan(ledger: &Ledger, parsed: &ParsedImport) -> Result<ImportReport, Error> {
    let snap = ledger.snapshot();
    let (plans, _) = cfgledger_events::registry_import::plan(&snap.state, ledger.secret_box(), &parsed.registry)
        .map_err(Error::Rejected)?;
    let mut entities: Vec<EntityPlan> = plans.into_iter().map(EntityPlan::from).collect();
    for p in entities.iter_mut() {
        if let Some(found) = parsed.notes.get(&(p.kind, p.name.clone())) {
            p.notes.extend(found.iter().cloned());
        }
    }
    let mut counts = EntityCounts::default();
    for p in &entities {
        *match p.action {
            EntityAction::Create => &mut counts.create,
            EntityAction::Update => &mut counts.update,
            EntityAction::Unchanged => &mut counts.unchanged,
            EntityAction::Skip => &mut counts.skip,
            EntityAction::Rename => &mut counts.rename,
            EntityAction::Conflict => &mut counts.conflict,
        } += 1;
    }
    let settings = parsed.settings.as_ref().map(|req| crate::usecase::settings_transfer::plan(ledger, req));
    Ok(ImportReport {
        entities,
        counts,
        settings,
        head: snap.head.seq,
        dry_run: true,
        import_id: None,
        status: None,
        result: None,
        layout: parsed.layout.as_str().to_string(),
        notes: parsed.document_notes.clone(),
        digest: parsed.digest.clone(),
        rekeyed: parsed.rekeyed,
    })
}

/// An import's metrics and its one log line: outcome and duration by layout, entities by kind and action,
/// conflicts by strategy, credentials re-keyed.
fn observe(
    layout: Layout,
    strategy: ConflictStrategy,
    actor: &str,
    bytes: usize,
    started: Instant,
    result: &Result<ImportReport, ImportRefusal>,
) {
    let elapsed = started.elapsed();
    let layout_name = layout.as_str();
    let outcome = match result {
        Ok(r) if r.dry_run => "dry_run",
        Ok(r) if r.import_id.is_some() => "applied",
        Ok(_) => "nothing_to_do",
        Err(_) => "refused",
    };
    metrics::counter!("cfgledger_imports_total", "layout" => layout_name, "outcome" => outcome).increment(1);
    metrics::histogram!("cfgledger_import_duration_seconds", "layout" => layout_name).record(elapsed.as_secs_f64());
    let report = match result {
        Ok(report) => Some(report),
        Err(refusal) => refusal.plan.as_deref(),
    };
    let strategy_name = strategy_name(strategy);
    // Entities and conflicts are counted when an import is applied, so that a dry run before it (or a
    // refusal) does not count them twice.
    if let Some(report) = report.filter(|_| outcome == "applied") {
        let mut by: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for p in &report.entities {
            *by.entry((p.kind.as_str().to_string(), p.action.as_str())).or_default() += 1;
        }
        for ((kind, action), n) in by {
            metrics::counter!("cfgledger_import_entities_total", "layout" => layout_name, "kind" => kind, "action" => action)
                .increment(n);
        }
        let conflicts = report
            .entities
            .iter()
            .filter(|p| {
                matches!(
                    p.action,
                    EntityAction::Update | EntityAction::Skip | EntityAction::Rename | EntityAction::Conflict
                )
            })
            .count() as u64;
        if conflicts > 0 {
            metrics::counter!("cfgledger_import_conflicts_total", "strategy" => strategy_name).increment(conflicts);
        }
    }
    let c = report.map(|r| r.counts.clone()).unwrap_or_default();
    match result {
        Ok(report) => tracing::info!(
            target: "cfgledger::import",
            import_id = report.import_id.as_deref().unwrap_or("-"),
            actor,
            layout = layout_name,
            outcome,
            strategy = strategy_name,
            create = c.create,
            update = c.update,
            unchanged = c.unchanged,
            skip = c.skip,
            rename = c.rename,
            conflict = c.conflict,
            rekeyed = report.rekeyed,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            bytes,
            digest = report.digest.as_str(),
            "import finished"
        ),
        Err(refusal) => tracing::info!(
            target: "cfgledger::import",
            import_id = "-",
            actor,
            layout = layout_name,
            outcome,
            strategy = strategy_name,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            bytes,
            error = %refusal.error,
            "import refused"
        ),
    }
    if let Ok(report) = result {
        if report.rekeyed > 0 {
            metrics::counter!("cfgledger_credentials_rekeyed_total", "direction" => "import", "layout" => layout_name)
                .increment(report.rekeyed as u64);
        }
    }
}

fn strategy_name(strategy: ConflictStrategy) -> &'static str {
    match strategy {
        ConflictStrategy::Skip => "skip",
        ConflictStrategy::Update => "update",
        ConflictStrategy::Rename => "rename",
        ConflictStrategy::Fail => "fail",
    }
}

/// The command that applies a parsed import as one batch.
pub fn command(parsed: ParsedImport) -> Command {
    Command::ImportRegistry {
        digest: parsed.digest,
        source: parsed.source,
        registry: parsed.registry,
        settings: parsed.settings,
    }
}

/// The imports in the log, newest first (at most `limit`, only the batch `only` when given), read from their
/// `ImportApplied` records. Blocking: async callers run it on a blocking thread.
pub fn statuses(ledger: &Ledger, only: Option<&str>, limit: usize) -> Result<Vec<ImportStatus>, Error> {
    let mut found = Vec::new();
    let head = ledger.snapshot().head.seq;
    crate::store::walk_back(ledger.store().as_ref(), head + 1, 1024, |rec| -> Result<bool, Error> {
        if rec.kind != "ImportApplied" || only.is_some_and(|id| id != rec.batch_id) {
            return Ok(true);
        }
        let env = cfgledger_events::verify_record(rec)?;
        if let cfgledger_events::Event::ImportApplied(e) = env.event {
            found.push(ImportStatus {
                import_id: env.batch.id,
                status: ImportStatusKind::Completed,
                seq: env.seq,
                time: env.occurred_at.to_string(),
                actor: env.actor.name,
                source: env.actor.source.as_str().to_string(),
                digest: e.digest,
                created: e.created,
                updated: e.updated,
                unchanged: e.unchanged,
                locked: e.locked,
                reason: env.batch.reason,
            });
        }
        Ok(found.len() < limit)
    })?;
    Ok(found)
}
