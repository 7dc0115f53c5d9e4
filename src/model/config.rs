//! The settings messages: one key's item, the list, the write body, and the settings export document and
//! import report of `/admin/config/export` and `/admin/config/import`.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// Where a value in force came from: the log, the process environment, or the catalog's default.
pub use cfgledger_projections::ValueSource;

/// The point of the log a past read answers for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AsOf {
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
}

/// One setting: its effective value (masked when sensitive), where it came from, and its catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigItem {
    /// The application the key belongs to: `mcpgateway` (the default), `cfgledger` (the store's own), or
    /// one added by a catalog file.
    pub namespace: String,
    pub key: String,
    /// The value in force (JSON in the key's canonical form); `"********"` when the key is sensitive.
    #[schema(value_type = Value)]
    pub value: Value,
    /// `db`, `env`, `default` or `unset`.
    #[schema(value_type = String, example = "db")]
    pub source: ValueSource,
    /// `string`, `int`, `float`, `bool`, `enum`, `duration`, `url`, `json` or `list`.
    #[serde(rename = "type")]
    pub ty: String,
    pub category: String,
    /// `hot` or `restart`.
    pub reload: String,
    pub locked: bool,
    pub sensitive: bool,
    /// A restart-required key whose stored value differs from the one this process started with.
    pub pending_restart: bool,
    /// The value the next start uses, when `pending_restart`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub pending_value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub pending_source: Option<ValueSource>,
    /// When the log's value was written (RFC 3339), if the log holds one.
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
    /// The seq of the log's value, if the log holds one.
    pub seq: Option<u64>,
    /// The key's version, which `ETag` and `If-Match` name: the seq of the last change or reset.
    pub version: u64,
    pub description: String,
    /// Why the value the store holds was passed over: it no longer fits the key's type (written under an
    /// older catalog); set it again in the key's form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_error: Option<String>,
    /// Set when the item answers for a past point (`as_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOf>,
}

impl ConfigItem {
    /// The value a change just stored: a running server still shows a restart-required key's boot value,
    /// and the stored one as pending.
    pub fn stored_value(&self) -> &Value {
        match (&self.pending_value, self.pending_restart) {
            (Some(pending), true) => pending,
            _ => &self.value,
        }
    }
}

/// `GET /admin/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigList {
    pub items: Vec<ConfigItem>,
    /// The store's live head (a past read names its point in `as_of`).
    pub head: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOf>,
}

/// The query of `GET /admin/config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The namespace: `mcpgateway` (the default), `cfgledger`, another application's, or `*` for all.
    pub namespace: Option<String>,
    /// Only the keys of this category.
    pub category: Option<String>,
    /// Only the keys whose name or description holds this text (case-insensitive).
    pub q: Option<String>,
    /// A point of the log: an RFC 3339 time, a duration before now (`24h`) or `seq:N`.
    #[param(min_length = 1)]
    pub as_of: Option<String>,
}

/// The query of a read that can answer for a past point: `GET /admin/config/{key}`, `GET /{kind}/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// A point of the log: an RFC 3339 time, a duration before now (`24h`) or `seq:N`.
    #[param(min_length = 1)]
    pub as_of: Option<String>,
}

/// The query of `DELETE /admin/config/{key}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResetQuery {
    /// The key's namespace (default `mcpgateway`); a key may also be written `namespace:KEY`.
    pub namespace: Option<String>,
    /// Why: recorded in the audit trail.
    pub reason: Option<String>,
}

/// The query of `GET /admin/config/{key}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// The key's namespace (default `mcpgateway`); a key may also be written `namespace:KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A point of the log: an RFC 3339 time, a duration before now (`24h`) or `seq:N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub as_of: Option<String>,
}

/// The query of `GET /admin/config/render`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// `env` (the default), `json` or `yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::render_format)]
    pub format: Option<String>,
    /// The namespace (default `mcpgateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Render sensitive keys in plaintext (platform_admin or config_reader; recorded in the audit trail).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_secrets: bool,
    /// Also render keys at their catalog default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_defaults: bool,
    /// Why: recorded in the audit trail with a render that includes secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The id of the instance asking (an agent's or client's): an active rollout's values replace the main
    /// ones for the instances it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The asking instance's labels, as a JSON object of strings (`{"zone":"eu"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
}

/// The query of `PUT /admin/config/{key}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NamespaceQuery {
    /// The key's namespace (default `mcpgateway`); a key may also be written `namespace:KEY`.
    pub namespace: Option<String>,
}

/// The body of `PUT /admin/config/{key}`: exactly one of `value` (JSON) and `text` (parsed as the command
/// line and `.env` parse it, which `config set --server` sends).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    /// `Some(Null)` for an explicit `null`, which the key's type then refuses (422); `None` when absent.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value, required = true)]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why: recorded in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Where an export was taken: the store, the seq and the head hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportSource {
    pub store_id: Option<String>,
    pub seq: u64,
    pub head_hash: String,
}

/// `GET /admin/config/export`: every non-sensitive setting in force, with its source and a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettingsExport {
    /// `cfgledger-settings`.
    #[schema(pattern = "^cfgledger-settings$")]
    pub format: String,
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u64,
    pub exported_at: String,
    pub exported_by: String,
    pub source: ExportSource,
    /// `blake3:` and the hex hash of the settings' compact JSON (keys sorted).
    pub digest: String,
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub sources: std::collections::BTreeMap<String, ValueSource>,
}

/// The query of `POST /admin/config/import`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The namespace of the document's bare keys (default `mcpgateway`); `namespace:KEY` keys name their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Plan only; apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Why: recorded in the audit trail.
    pub reason: Option<String>,
    /// Apply only if the store's head is still this seq (the `head` of a reviewed dry run): 409 otherwise.
    pub expected_head: Option<u64>,
}

/// What an import does to one key: the pure core's `PlanAction`.
pub use cfgledger_events::PlanAction;

/// One line of an import plan; `current` and `value` are masked when the key is sensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanEntry {
    pub key: String,
    /// `create`, `update`, `unchanged`, `locked` or `invalid`.
    #[schema(value_type = String, example = "update")]
    pub action: PlanAction,
    #[schema(value_type = Value)]
    pub current: Value,
    #[schema(value_type = Value)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How many keys each action touches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanSummary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub locked: usize,
    pub invalid: usize,
}

/// A settings import's plan: the entries, the counts, and the keys in conflict (an update replaces a value
/// the store holds). A refused import (422) carries this in its error's `details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ImportPlan {
    pub plan: Vec<PlanEntry>,
    pub summary: PlanSummary,
    pub conflicts: Vec<String>,
}

/// What an applied import did, as its batch's `ImportApplied` event records it (the writer plans again at
/// append time, so this, not the plan made before, is the truth).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettingsImportResult {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub locked: Vec<String>,
}

/// `POST /admin/config/import`: the plan, and whether and how it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettingsImportReport {
    #[serde(flatten)]
    pub plan: ImportPlan,
    pub dry_run: bool,
    pub applied: bool,
    /// The head after the import (or, for a dry run, the head the plan was made against).
    pub head: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SettingsImportResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// A key whose `.env` line or environment variable differs from the store's value (`config drift`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DriftEntry {
    pub namespace: String,
    pub key: String,
    /// `.env line N` or `environment`.
    pub source: String,
}
