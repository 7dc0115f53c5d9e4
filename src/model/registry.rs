//! The registry's messages: an entity as shown (its open fields plus provenance), a kind's list, a delete's
//! answer, the portable export document (in cfgledger's layout and in MCP Gateway's), the export query and
//! selection, and the import's body, plan, report and status. Entity bodies stay JSON maps because their
//! fields are open (unknown fields are kept); everything around them is typed. Field names and values are
//! those the API has always answered.

use super::config::ImportPlan;
pub use super::config::{AsOf, ExportSource};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An entity's fields as stored (credentials sealed: `auth_type` and the opaque `auth_value`).
pub type EntityFields = Map<String, Value>;

/// Entities by kind (`tools`, `servers`, ...), as export documents carry them.
pub type EntitiesByKind = BTreeMap<String, Vec<EntityFields>>;

/// Names by kind: `{"tools": ["a", "b"], "servers": ["s"]}`. `POST /export/selective`'s body and an import's
/// `selected_entities`.
pub type Selection = BTreeMap<String, Vec<String>>;

/// One entity as `GET /{kind}/{name}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entity {
    /// Its fields (unknown fields are kept). Credentials go in as `auth_type` with `auth_username` and
    /// `auth_password`, `auth_token` or `auth_header_key`/`auth_header_value`/`auth_headers`; they come back
    /// only as `auth_type` and the sealed `auth_value`.
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub fields: EntityFields,
    pub created_at: String,
    pub updated_at: String,
    /// The seq of the event that last wrote it; the `ETag`.
    pub version: u64,
    /// Set when the entity was read at a past point (`?as_of=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOf>,
}

/// `GET /{kind}`: the entities, the log's head, and the point read when it is not now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityList {
    pub items: Vec<Entity>,
    pub head: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOf>,
}

/// `GET /{kind}`'s query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntityListQuery {
    /// Comma-separated: an entity matches when it has any of them.
    pub tags: Option<String>,
    /// Inactive entities (`is_active: false`) are listed too unless this is false.
    pub include_inactive: Option<bool>,
    /// The registry as it was at a point of the log: RFC 3339, a duration before now (`24h`) or `seq:N`.
    #[param(min_length = 1)]
    pub as_of: Option<String>,
}

/// `DELETE /{kind}/{name}`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Deleted {
    pub kind: String,
    pub name: String,
    pub deleted: bool,
    /// The seq of the delete.
    pub seq: Option<u64>,
}

/// `GET /export`'s query (and what `cfgledger export` sends to a server).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only these kinds, comma-separated (gateways, servers, tools, prompts, resources, roots).
    #[param(schema_with = super::constraints::kinds)]
    pub types: Option<String>,
    /// Not these kinds, comma-separated.
    #[param(schema_with = super::constraints::kinds)]
    pub exclude_types: Option<String>,
    /// Only entities with any of these tags, comma-separated.
    pub tags: Option<String>,
    #[serde(default)]
    pub include_inactive: bool,
    /// An exported server brings the tools, resources and prompts it references (the default). With
    /// `false`, a server whose references are not exported is left out, and the export says so.
    pub include_dependencies: Option<bool>,
    /// `cfgledger` (default) or `mcpgateway` (MCP Gateway's layout, under SHA-256 of this store's secret).
    #[param(schema_with = super::constraints::export_format)]
    pub format: Option<String>,
}

impl ExportQuery {
    /// The query as `name=value` pairs, for a client that sends it (only what differs from the defaults).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(format) = &self.format {
            out.push(("format", format.clone()));
        }
        for (name, value) in [("types", &self.types), ("exclude_types", &self.exclude_types), ("tags", &self.tags)] {
            if let Some(v) = value {
                out.push((name, v.clone()));
            }
        }
        if self.include_inactive {
            out.push(("include_inactive", "true".into()));
        }
        if let Some(deps) = self.include_dependencies {
            out.push(("include_dependencies", deps.to_string()));
        }
        out
    }
}

/// `POST /export/selective`'s query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SelectiveQuery {
    /// A selected server brings the tools, resources and prompts it references (the default); with `false`
    /// a server whose references are not selected is left out, and the export says so.
    pub include_dependencies: Option<bool>,
}

/// How the document's credentials are sealed: what an import elsewhere needs to open them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportEncryption {
    pub algorithm: String,
    pub kdf: String,
    pub salt: String,
    pub key_id: String,
}

/// What the export holds and what its entities reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportMetadata {
    /// Entities per kind.
    pub entity_counts: BTreeMap<String, usize>,
    /// `KIND/NAME` of each exported entity that references others, and the `KIND/NAME`s it references.
    pub dependencies: BTreeMap<String, Vec<String>>,
    pub include_dependencies: bool,
    /// Where the settings come from: always `db`, the values the source store holds. Defaults and the
    /// source's environment are not exported, so an import never turns them into stored values elsewhere.
    #[serde(default)]
    pub settings_source: String,
    /// The id of this export, as its log line names it.
    #[serde(default)]
    pub export_id: String,
    /// What the export did beyond the filter: entities brought along because an exported one references
    /// them, or left out because what they reference is not exported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The registry's portable export (`format: "cfgledger-export"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportDocument {
    /// The MCP protocol revision MCP Gateway's exports carry.
    pub version: String,
    pub format: String,
    pub schema_version: u64,
    /// RFC 3339.
    pub exported_at: String,
    pub exported_by: String,
    pub source: ExportSource,
    /// `null` for a store that has sealed nothing yet.
    pub encryption: Option<ExportEncryption>,
    /// `blake3:` and the hex hash of `{"entities": ..., "settings": ...}` as compact JSON.
    pub digest: String,
    #[schema(value_type = Object)]
    pub entities: EntitiesByKind,
    /// Every non-sensitive setting with a value.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    pub metadata: ExportMetadata,
}

/// `export_options` of an MCP Gateway export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayExportOptions {
    pub include_dependencies: bool,
    #[serde(default)]
    pub include_inactive: bool,
}

/// `metadata.dependencies` as MCP Gateway 1.1.0 writes it: each server's name and the names it links.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayDependencies {
    pub servers_to_tools: BTreeMap<String, Vec<String>>,
    pub servers_to_resources: BTreeMap<String, Vec<String>>,
    pub servers_to_prompts: BTreeMap<String, Vec<String>>,
}

/// The metadata of an MCP Gateway export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayExportMetadata {
    pub entity_counts: BTreeMap<String, usize>,
    pub dependencies: GatewayDependencies,
    pub export_options: GatewayExportOptions,
    /// The id of this export, as its log line names it.
    #[serde(default)]
    pub export_id: String,
    /// What a gateway importing this file cannot hold or will change (OAuth settings, server links to
    /// resources and prompts, inactive entities that arrive active, tags it drops), and what the export
    /// brought along or left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The export in MCP Gateway's own layout (`?format=mcpgateway`): credentials as AES-256-GCM under SHA-256 of a
/// gateway's secret, no settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayExportDocument {
    pub version: String,
    pub exported_at: String,
    pub exported_by: String,
    /// `cfgledger:STORE_ID`.
    pub source_gateway: Option<String>,
    /// `AES-256-GCM`.
    pub encryption_method: String,
    #[schema(value_type = Object)]
    pub entities: EntitiesByKind,
    pub metadata: GatewayExportMetadata,
}

/// `GET /export`'s answer: one layout or the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ExportAnswer {
    Cfgledger(Box<ExportDocument>),
    McpGateway(Box<GatewayExportDocument>),
}

impl ExportAnswer {
    /// Entities per kind.
    pub fn entity_counts(&self) -> &BTreeMap<String, usize> {
        match self {
            ExportAnswer::Cfgledger(d) => &d.metadata.entity_counts,
            ExportAnswer::McpGateway(d) => &d.metadata.entity_counts,
        }
    }

    /// The seq exported (MCP Gateway's layout does not say).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ExportAnswer::Cfgledger(d) => Some(d.source.seq),
            ExportAnswer::McpGateway(_) => None,
        }
    }

    pub fn exported_at(&self) -> &str {
        match self {
            ExportAnswer::Cfgledger(d) => &d.exported_at,
            ExportAnswer::McpGateway(d) => &d.exported_at,
        }
    }
}

/// `POST /import`'s body.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// An export document: cfgledger's (`GET /export`) or MCP Gateway's, with `entities`, `settings` or both.
    #[schema(schema_with = super::constraints::import_document)]
    pub import_data: Value,
    /// What to do with an entity that exists with other content: `skip`, `update` (default), `rename`, `fail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_strategy: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// The secret the document's credentials were sealed under, when it is not this store's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_secret: Option<String>,
    /// Only these entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_entities: Option<Selection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Apply the document's settings too. Without it a document's settings are listed as left out and
    /// nothing of them is planned or applied.
    #[serde(default)]
    pub with_settings: bool,
    /// Import a document whose `digest` does not match its content (a file edited on purpose).
    #[serde(default)]
    pub allow_edited: bool,
}

/// The `Debug` form leaves the document and the source secret out.
impl std::fmt::Debug for ImportBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportBody")
            .field("conflict_strategy", &self.conflict_strategy)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// One entity of an import plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityPlan {
    #[schema(value_type = String, example = "tools")]
    pub kind: cfgledger_events::ResourceKind,
    pub name: String,
    /// `create`, `update`, `unchanged`, `skip`, `rename` or `conflict` (the pure core's `EntityAction`).
    #[schema(value_type = String, example = "create")]
    pub action: cfgledger_events::registry_import::EntityAction,
    /// For an update or a conflict: the fields that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// For a rename: the name it is imported under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    /// What the import could not take as the file gives it: a masked value kept from the store, a
    /// credential the file left out, a reference that resolves to nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl From<cfgledger_events::registry_import::EntityPlan> for EntityPlan {
    fn from(p: cfgledger_events::registry_import::EntityPlan) -> Self {
        EntityPlan {
            kind: p.kind,
            name: p.name,
            action: p.action,
            changed: p.changed,
            renamed_to: p.renamed_to,
            notes: p.notes,
        }
    }
}

/// Entities per action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntityCounts {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub skip: usize,
    pub rename: usize,
    pub conflict: usize,
}

/// Whether an applied import changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatusKind {
    Completed,
    NothingToDo,
}

/// What an applied import did, as its `ImportApplied` event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// `KIND/NAME`s and setting keys created.
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    /// Locked keys the document tried to change: skipped.
    pub locked: Vec<String>,
}

/// `POST /import`'s answer: the plan, and for an apply what was appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub entities: Vec<EntityPlan>,
    pub counts: EntityCounts,
    /// `null` when the document carries no settings.
    pub settings: Option<ImportPlan>,
    /// The log's head: the one planned against, or after the apply.
    pub head: u64,
    pub dry_run: bool,
    /// The batch appended (an apply that appended something).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    /// Set by an apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ImportStatusKind>,
    /// Set by an apply that appended something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ImportResult>,
    /// `cfgledger` or `mcpgateway`: the layout the document was read as.
    #[serde(default)]
    pub layout: String,
    /// What the import did not take as the document gives it, beyond single entities: settings left out, an
    /// edited document imported knowingly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The document's digest, as the audit cause names it.
    #[serde(default)]
    pub digest: String,
    /// Sealed credentials opened with the source's key, to be sealed again under this store's.
    #[serde(default)]
    pub rekeyed: usize,
}

/// One import of the log (`GET /import/status/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportStatus {
    pub import_id: String,
    pub status: ImportStatusKind,
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    pub actor: String,
    /// `cli`, `api`, ...
    pub source: String,
    pub digest: String,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub locked: Vec<String>,
    pub reason: Option<String>,
}

/// `GET /import/status`: recent imports, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportStatuses {
    pub imports: Vec<ImportStatus>,
}
