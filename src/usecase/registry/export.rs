//! The registry's export, one use case ([`export`]) shared by `GET /export`, `POST /export/selective` and
//! `cfgledger export`: filters or an exact selection, what the chosen entities reference, and the document in
//! cfgledger's layout or MCP Gateway's. Entities are exported as stored: credentials stay sealed (`auth_type`
//! and the encrypted `auth_value`), and the document names the encryption (algorithm, KDF, salt, key id) so
//! that an import elsewhere knows which secret opens them. A digest over the content lets an import notice a
//! damaged file. MCP Gateway's layout re-seals each credential the way that gateway does.

use super::mcpgateway;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::model::{
    EntitiesByKind, EntityFields, ExportAnswer, ExportDocument, ExportEncryption, ExportMetadata, ExportQuery,
    ExportSource, GatewayExportDocument, GatewayExportMetadata, GatewayExportOptions, Selection,
};
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::Timestamp;
use serde_json::{Map, Value};
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

impl Filter {
    /// The filter `GET /export`'s query (and `cfgledger export`'s flags) describe.
    pub fn from_query(query: &ExportQuery) -> Result<Filter, Error> {
        Ok(Filter {
            types: query.types.as_deref().map(super::parse_kinds).transpose()?,
            exclude_types: query.exclude_types.as_deref().map(super::parse_kinds).transpose()?.unwrap_or_default(),
            tags: query.tags.as_deref().map(super::split_list).unwrap_or_default(),
            include_inactive: query.include_inactive,
            include_dependencies: query.include_dependencies,
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
/// (MCP Gateway's layout re-seals every credential): async callers run it off their workers.
pub fn export(
    ledger: &Ledger,
    request: &ExportRequest,
    exported_by: &str,
    now: Timestamp,
) -> Result<ExportAnswer, Error> {
    let doc = document(ledger, &request.filter, exported_by, now)?;
    Ok(match request.format {
        Format::Cfgledger => ExportAnswer::Cfgledger(Box::new(doc)),
        Format::McpGateway => ExportAnswer::McpGateway(Box::new(to_mcpgateway(
            ledger,
            doc,
            request.target_secret.as_ref().map(|s| s.as_str()),
        )?)),
    })
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

/// The export document of the store as it is now.
pub fn document(ledger: &Ledger, filter: &Filter, exported_by: &str, now: Timestamp) -> Result<ExportDocument, Error> {
    let snap = ledger.snapshot();
    let state = &snap.state;
    let mut chosen = choose(state, filter)?;
    // What the chosen entities reference, whether or not it was chosen.
    let mut dependencies = BTreeMap::new();
    let mut brought: Vec<(ResourceKind, String)> = Vec::new();
    for (kind, names) in &chosen {
        for name in names {
            let Some(entry) = state.resource_entry(*kind, name) else { continue };
            let refs = resource::referenced(*kind, &entry.fields);
            if refs.is_empty() {
                continue;
            }
            dependencies.insert(format!("{kind}/{name}"), refs.iter().map(|(k, n)| format!("{k}/{n}")).collect());
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
    let mut entities = EntitiesByKind::new();
    let mut counts = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let list: Vec<EntityFields> = chosen
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|name| state.resource_entry(kind, name))
            .map(|e| e.fields.clone())
            .collect();
        counts.insert(kind.as_str().to_string(), list.len());
        entities.insert(kind.as_str().to_string(), list);
    }
    let settings = crate::usecase::settings_transfer::exportable_settings(ledger, &snap, None).0;
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
        digest: digest(&entities, &settings),
        entities,
        settings,
        metadata: ExportMetadata {
            entity_counts: counts,
            dependencies,
            include_dependencies: filter.include_dependencies,
        },
    })
}

/// The export `doc` rewritten in MCP Gateway's own layout (`source_gateway`, `"encryption_method":
/// "AES-256-GCM"`, `entities` by kind, `metadata`), for going back to MCP Gateway. Each `auth_value` is
/// opened with this store's key and sealed again as MCP Gateway seals it: a JSON object of auth headers under
/// SHA-256 of `target_secret`, or of this store's own secret when none is given. Settings are left out (MCP
/// Gateway's files carry none). Fails whole, naming the entity, if a value does not open.
pub fn to_mcpgateway(
    ledger: &Ledger,
    doc: ExportDocument,
    target_secret: Option<&str>,
) -> Result<GatewayExportDocument, Error> {
    let secret = target_secret.unwrap_or(ledger.own_secret());
    let mut entities = EntitiesByKind::new();
    for (kind_name, list) in doc.entities {
        let kind: ResourceKind = kind_name.parse().map_err(|e: String| Error::Integrity(e))?;
        let list = list.into_iter().map(|entity| reseal(ledger, kind, entity, secret)).collect::<Result<_, _>>()?;
        entities.insert(kind_name, list);
    }
    Ok(GatewayExportDocument {
        version: VERSION.into(),
        exported_at: doc.exported_at,
        exported_by: doc.exported_by,
        source_gateway: doc.source.store_id.map(|id| format!("cfgledger:{id}")),
        encryption_method: mcpgateway::METHOD.into(),
        entities,
        metadata: GatewayExportMetadata {
            entity_counts: doc.metadata.entity_counts,
            dependencies: doc.metadata.dependencies,
            export_options: GatewayExportOptions { include_dependencies: doc.metadata.include_dependencies },
        },
    })
}

/// One entity's credentials opened with this store's key and sealed as MCP Gateway seals them.
fn reseal(ledger: &Ledger, kind: ResourceKind, mut entity: EntityFields, secret: &str) -> Result<EntityFields, Error> {
    let Some(Value::String(sealed)) = entity.remove("auth_value") else { return Ok(entity) };
    let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
    let cannot = |why: String| {
        Error::Integrity(format!("cannot re-encrypt the credentials of {kind}/{name} for MCP Gateway: {why}"))
    };
    let plaintext = zeroize::Zeroizing::new(
        cfgledger_events::Sealer::open(ledger.secret_box(), &resource::auth_binding(kind, &name), &sealed)
            .map_err(|e| cannot(e.to_string()))?,
    );
    let credentials: Map<String, Value> =
        serde_json::from_slice(&plaintext).map_err(|_| cannot("they are not a JSON object".into()))?;
    let headers = mcpgateway::headers(&credentials);
    entity.insert("auth_value".into(), Value::String(mcpgateway::seal(secret, &headers).map_err(cannot)?));
    let ours = entity.get("auth_type").and_then(Value::as_str).unwrap_or("headers").to_string();
    entity.insert("auth_type".into(), Value::String(mcpgateway::auth_type(&ours).to_string()));
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
