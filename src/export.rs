//! The portable export of the resource registry (with the non-sensitive settings), shared by `GET /export`,
//! `POST /export/selective` and `cfgledger export`. Entities are exported as stored: credentials stay
//! sealed (`auth_type` and the encrypted `auth_value`), and the document names the encryption (algorithm,
//! KDF, salt, key id) so that an import elsewhere knows which secret opens them. A digest over the content
//! lets an import notice a damaged file.

use crate::error::Error;
use crate::ledger::Ledger;
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::{Rejection, RejectionKind, Timestamp};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The `version` of the document: the MCP protocol revision MCP Gateway's exports carry.
pub const VERSION: &str = "2025-03-26";
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
    /// A selected server brings the tools, resources and prompts it references.
    pub include_dependencies: bool,
    /// Exactly these entities, by kind and identity (`POST /export/selective`); the other filters apply to
    /// nothing then.
    pub selected: Option<BTreeMap<ResourceKind, Vec<String>>>,
}

/// A comma-separated list of kinds, as `?types=` and `--types` take it.
pub fn parse_kinds(text: &str) -> Result<BTreeSet<ResourceKind>, Error> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|e: String| Error::input(e)))
        .collect()
}

/// `{"tools": ["a", "b"], ...}`, as `POST /export/selective` takes it.
pub fn parse_selection(body: &Map<String, Value>) -> Result<BTreeMap<ResourceKind, Vec<String>>, Error> {
    let mut out = BTreeMap::new();
    for (kind, names) in body {
        let kind: ResourceKind = kind.parse().map_err(|e: String| Error::input(e))?;
        let names = names
            .as_array()
            .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
            .ok_or_else(|| Error::input(format!("selection of {kind} expects a list of names")))?;
        out.insert(kind, names);
    }
    Ok(out)
}

/// The export document of the store as it is now.
pub fn document(ledger: &Ledger, filter: &Filter, exported_by: &str, now: Timestamp) -> Result<Value, Error> {
    let snap = ledger.snapshot();
    let state = &snap.state;
    let mut chosen: BTreeMap<ResourceKind, BTreeSet<String>> = BTreeMap::new();
    match &filter.selected {
        Some(selection) => {
            for (kind, names) in selection {
                for name in names {
                    if state.resource_entry(*kind, name).is_none() {
                        return Err(Error::Rejected(Rejection {
                            kind: RejectionKind::Missing,
                            message: format!("no {} {name} to export", kind.singular()),
                            audit: Vec::new(),
                        }));
                    }
                    chosen.entry(*kind).or_default().insert(name.clone());
                }
            }
        }
        None => {
            for kind in ResourceKind::ALL {
                let wanted =
                    filter.types.as_ref().is_none_or(|t| t.contains(&kind)) && !filter.exclude_types.contains(&kind);
                if !wanted {
                    continue;
                }
                for (name, entry) in state.resources(kind) {
                    let active = entry.fields.get("is_active") != Some(&Value::Bool(false));
                    let tagged = filter.tags.is_empty()
                        || entry.fields.get("tags").and_then(Value::as_array).is_some_and(|tags| {
                            tags.iter().any(|t| t.as_str().is_some_and(|t| filter.tags.iter().any(|w| w == t)))
                        });
                    if (active || filter.include_inactive) && tagged {
                        chosen.entry(kind).or_default().insert(name.clone());
                    }
                }
            }
        }
    }
    // What the chosen entities reference, whether or not it was chosen.
    let mut dependencies = Map::new();
    let mut brought: Vec<(ResourceKind, String)> = Vec::new();
    for (kind, names) in &chosen {
        for name in names {
            let Some(entry) = state.resource_entry(*kind, name) else { continue };
            let refs = resource::referenced(*kind, &entry.fields);
            if refs.is_empty() {
                continue;
            }
            dependencies.insert(
                format!("{kind}/{name}"),
                Value::Array(refs.iter().map(|(k, n)| Value::String(format!("{k}/{n}"))).collect()),
            );
            brought.extend(refs);
        }
    }
    if filter.include_dependencies {
        for (kind, name) in brought {
            if state.resource_entry(kind, &name).is_some() {
                chosen.entry(kind).or_default().insert(name);
            }
        }
    }
    let mut entities = Map::new();
    let mut counts = Map::new();
    for kind in ResourceKind::ALL {
        let list: Vec<Value> = chosen
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|name| state.resource_entry(kind, name))
            .map(|e| Value::Object(e.fields.clone()))
            .collect();
        counts.insert(kind.as_str().into(), json!(list.len()));
        entities.insert(kind.as_str().into(), Value::Array(list));
    }
    let settings = Value::Object(crate::transfer::exportable_settings(ledger, &snap).0);
    let entities = Value::Object(entities);
    let encryption = state.store.as_ref().map(|s| &s.encryption);
    Ok(json!({
        "version": VERSION,
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "exported_at": now.to_string(),
        "exported_by": exported_by,
        "source": {
            "store_id": state.store.as_ref().map(|s| s.store_id.clone()),
            "seq": snap.head.seq,
            "head_hash": snap.head.hash.to_hex(),
        },
        "encryption": encryption.map(|e| json!({
            "algorithm": e.algorithm, "kdf": e.kdf, "salt": e.salt, "key_id": e.key_id,
        })),
        "digest": digest(&entities, &settings),
        "entities": entities,
        "settings": settings,
        "metadata": {
            "entity_counts": counts,
            "dependencies": dependencies,
            "include_dependencies": filter.include_dependencies,
        },
    }))
}

/// The export `doc` rewritten in MCP Gateway's own layout (`source_gateway`, `"encryption_method":
/// "AES-256-GCM"`, `entities` by kind, `metadata`), for going back to MCP Gateway. Each `auth_value` is
/// opened with this store's key and sealed again as MCP Gateway seals it: a JSON object of auth headers under
/// SHA-256 of `target_secret`, or of this store's own secret when none is given. Settings are left out (MCP
/// Gateway's files carry none). Fails whole, naming the entity, if a value does not open.
pub fn to_mcpgateway(ledger: &Ledger, doc: &Value, target_secret: Option<&str>) -> Result<Value, Error> {
    let secret = target_secret.unwrap_or(ledger.own_secret());
    let mut entities = Map::new();
    for kind in ResourceKind::ALL {
        let mut list = Vec::new();
        for entity in doc["entities"][kind.as_str()].as_array().into_iter().flatten() {
            let Some(mut entity) = entity.as_object().cloned() else { continue };
            if let Some(Value::String(sealed)) = entity.remove("auth_value") {
                let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
                let cannot = |why: String| {
                    Error::Integrity(format!(
                        "cannot re-encrypt the credentials of {kind}/{name} for MCP Gateway: {why}"
                    ))
                };
                let plaintext = zeroize::Zeroizing::new(
                    cfgledger_events::Sealer::open(ledger.secret_box(), &resource::auth_binding(kind, &name), &sealed)
                        .map_err(|e| cannot(e.to_string()))?,
                );
                let credentials: Map<String, Value> =
                    serde_json::from_slice(&plaintext).map_err(|_| cannot("they are not a JSON object".into()))?;
                let headers = crate::mcpgateway::headers(&credentials);
                entity.insert(
                    "auth_value".into(),
                    Value::String(crate::mcpgateway::seal(secret, &headers).map_err(cannot)?),
                );
                let ours = entity.get("auth_type").and_then(Value::as_str).unwrap_or("headers").to_string();
                entity.insert("auth_type".into(), Value::String(crate::mcpgateway::auth_type(&ours).to_string()));
            }
            list.push(Value::Object(entity));
        }
        entities.insert(kind.as_str().into(), Value::Array(list));
    }
    Ok(json!({
        "version": VERSION,
        "exported_at": doc["exported_at"],
        "exported_by": doc["exported_by"],
        "source_gateway": doc["source"]["store_id"].as_str().map(|id| format!("cfgledger:{id}")),
        "encryption_method": crate::mcpgateway::METHOD,
        "entities": entities,
        "metadata": {
            "entity_counts": doc["metadata"]["entity_counts"],
            "dependencies": doc["metadata"]["dependencies"],
            "export_options": {"include_dependencies": doc["metadata"]["include_dependencies"]},
        },
    }))
}

/// `blake3:` and the hex hash of the entities and settings, as compact JSON (object keys sorted).
pub fn digest(entities: &Value, settings: &Value) -> String {
    // The same bytes as serializing {"entities": ..., "settings": ...} (keys in sorted order), streamed into
    // the hasher by reference: no copy of the document, no buffer of its text.
    #[derive(serde::Serialize)]
    struct Content<'a> {
        entities: &'a Value,
        settings: &'a Value,
    }
    let mut hasher = blake3::Hasher::new();
    let _ = serde_json::to_writer(&mut hasher, &Content { entities, settings });
    format!("blake3:{}", hasher.finalize().to_hex())
}

/// The counts per kind of a document, for a one-line summary.
pub fn counts_line(doc: &Value) -> String {
    ResourceKind::ALL
        .into_iter()
        .map(|k| format!("{} {k}", doc["metadata"]["entity_counts"][k.as_str()].as_u64().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An import document, parsed: the entities (optionally narrowed to a selection), the settings, and what
/// identifies the document.
pub struct ParsedImport {
    pub digest: String,
    pub source: Option<Value>,
    pub registry: cfgledger_events::registry_import::RegistryImport,
    pub settings: Option<cfgledger_events::ImportRequest>,
}

/// Reads an export document for import. A `digest` that does not match the content is refused (a damaged
/// or edited file); `selected` keeps only the named entities.
pub fn parse_import(
    ledger: &Ledger,
    doc: &Value,
    strategy: cfgledger_events::registry_import::ConflictStrategy,
    selected: Option<&BTreeMap<ResourceKind, Vec<String>>>,
    source_secret: Option<&str>,
) -> Result<ParsedImport, Error> {
    let Some(obj) = doc.as_object() else {
        return Err(Error::invalid("the import document expects a JSON object with \"entities\""));
    };
    let entities = obj.get("entities").cloned().unwrap_or_else(|| json!({}));
    let settings = obj.get("settings").cloned().unwrap_or(Value::Null);
    let digest = digest(&entities, &settings);
    if let Some(claimed) = obj.get("digest") {
        if claimed.as_str() != Some(digest.as_str()) {
            return Err(Error::invalid(format!(
                "the document's digest does not match its content (the file was changed or damaged): it says {claimed}, the content hashes to {digest:?}"
            )));
        }
    }
    let mut by_kind = cfgledger_events::registry_import::parse_entities(&entities).map_err(Error::Rejected)?;
    if let Some(selection) = selected {
        for (kind, list) in by_kind.iter_mut() {
            let wanted = selection.get(kind);
            list.retain(|e| {
                let id = e.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default();
                wanted.is_some_and(|names| names.iter().any(|n| n == id))
            });
        }
    }
    if obj.get("encryption_method").and_then(Value::as_str) == Some(crate::mcpgateway::METHOD) {
        open_gateway_credentials(&mut by_kind, source_secret)?;
    } else {
        rekey(ledger, obj.get("encryption"), &mut by_kind, source_secret)?;
    }
    let settings = match settings {
        Value::Object(_) => {
            let mut req = crate::transfer::parse_document(&json!({ "settings": settings }), ledger)?;
            req.digest = digest.clone();
            Some(req)
        }
        Value::Null => None,
        _ => return Err(Error::invalid("settings expects an object")),
    };
    Ok(ParsedImport {
        digest,
        source: obj.get("source").cloned(),
        registry: cfgledger_events::registry_import::RegistryImport { entities: by_kind, strategy },
        settings,
    })
}

/// Opens the credentials of an MCP Gateway export (AES-256-GCM under SHA-256 of its secret, which must be
/// given) and puts them back as credential fields for this store to seal. Fails whole, naming the entity.
fn open_gateway_credentials(
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
) -> Result<(), Error> {
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let Some(Value::String(sealed)) = entity.get("auth_value").cloned() else { continue };
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            let Some(secret) = source_secret else {
                return Err(Error::invalid(format!(
                    "{kind}/{name} carries MCP Gateway credentials (AES-256-GCM): give the gateway's secret as source_secret"
                )));
            };
            let headers = crate::mcpgateway::open(secret, &sealed).map_err(|why| {
                Error::invalid(format!("cannot decrypt the credentials of {kind}/{name}: {why}; nothing was imported"))
            })?;
            let auth_type = entity.get("auth_type").and_then(Value::as_str).unwrap_or("headers").to_string();
            let auth_type = if matches!(auth_type.as_str(), "basic" | "bearer") { auth_type } else { "headers".into() };
            entity.remove("auth_value");
            entity.insert("auth_type".into(), Value::String(auth_type.clone()));
            entity.extend(crate::mcpgateway::credentials(&auth_type, headers));
        }
    }
    Ok(())
}

/// Opens the credentials of entities sealed by another store (another salt, perhaps another secret) and puts
/// them back as plaintext credential fields, which the import seals again under this store's key, bound to
/// the entity. Fails whole, naming the entity and key id, if any value does not open: nothing is written.
fn rekey(
    ledger: &Ledger,
    encryption: Option<&Value>,
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
) -> Result<(), Error> {
    let sealed_anywhere = entities.values().flatten().any(|e| e.get("auth_value").is_some_and(Value::is_string));
    if !sealed_anywhere {
        return Ok(());
    }
    let Some(info) = encryption.filter(|e| !e.is_null()) else {
        return Err(Error::invalid("the document carries sealed credentials but no \"encryption\" section saying how"));
    };
    let info: cfgledger_events::event::EncryptionInfo = serde_json::from_value(info.clone())
        .map_err(|e| Error::invalid(format!("the document's encryption section does not parse: {e}")))?;
    let own = ledger.snapshot().state.store.as_ref().map(|s| s.encryption.key_id.clone());
    if own.as_deref() == Some(info.key_id.as_str()) && source_secret.is_none() {
        return Ok(());
    }
    let foreign = ledger.foreign_box(&info, source_secret)?;
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let Some(Value::String(sealed)) = entity.get("auth_value").cloned() else { continue };
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            let opened = cfgledger_events::Sealer::open(&foreign, &resource::auth_binding(*kind, &name), &sealed)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "cannot decrypt the credentials of {kind}/{name} (sealed with key {}): nothing was imported",
                        info.key_id
                    ))
                })?;
            entity.remove("auth_value");
            entity.extend(opened);
        }
    }
    Ok(())
}

/// The plan of an import against the current state, as JSON: each entity's action, the settings plan, and
/// counts per action. Refuses what the apply would refuse (invalid entities, unresolved references).
pub fn plan_json(ledger: &Ledger, parsed: &ParsedImport) -> Result<Value, Error> {
    let snap = ledger.snapshot();
    let (plans, _) = cfgledger_events::registry_import::plan(&snap.state, ledger.secret_box(), &parsed.registry)
        .map_err(Error::Rejected)?;
    let mut counts = Map::new();
    for action in cfgledger_events::registry_import::EntityAction::ALL {
        counts.insert(action.as_str().into(), json!(plans.iter().filter(|p| p.action == action).count()));
    }
    let settings = parsed.settings.as_ref().map(|req| crate::transfer::plan_json(&crate::transfer::plan(ledger, req)));
    Ok(json!({"entities": plans, "counts": counts, "settings": settings, "head": snap.head.seq}))
}

/// The command that applies a parsed import as one batch.
pub fn import_command(parsed: ParsedImport) -> cfgledger_events::Command {
    cfgledger_events::Command::ImportRegistry {
        digest: parsed.digest,
        source: parsed.source,
        registry: parsed.registry,
        settings: parsed.settings,
    }
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
}
