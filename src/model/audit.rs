//! The audit trail's messages: the one filter (the API's query string, the CLI's flags, the use case's
//! input), one entry per key an event touched, and a page of entries with the cursor of the next one.

use cfgledger_events::Cause;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An audit query. The API deserializes it from the query string, the CLI builds it from its flags and sends
/// it as query pairs, and `timetravel::audit` checks and runs it. All text: the use case says what is wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// The namespace of the settings: `mcpgateway` (the default for a key), `cfgledger`, another one, or
    /// `*`. Without a key, only that namespace's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A key (or `namespace:KEY`) or KIND/NAME, exact, or a prefix ending in `*` (`LOG_*`, `tools/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Only changes made by this actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Actions, comma-separated (`set,reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `cli`, `api`, `ui` or `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::audit_source)]
    pub source: Option<String>,
    /// One batch, by its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// RFC 3339, or a duration before now (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub since: Option<String>,
    /// RFC 3339, or a duration before now (`24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub until: Option<String>,
    /// Only refused attempts (locked keys).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rejected: bool,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// The older form of `cursor`: entries below this seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::seq)]
    pub before: Option<u64>,
    /// Rows per page, 1 to 1000 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::page_limit)]
    pub limit: Option<usize>,
    /// How the API answers: `json` (the default), `csv` or `jsonl`. The use case ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::audit_format)]
    pub format: Option<String>,
}

/// One row of the audit trail: one key (or entity) an event touched, or the event itself when it is about
/// no key. Values are masked when sensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    /// `set`, `reset`, `seeded`, `resource_updated`, ...
    pub action: String,
    /// The event's kind (`SettingChanged`, ...).
    pub kind: String,
    /// The setting's namespace (`mcpgateway`, `cfgledger`, ...); `null` for an event about no setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The setting key (bare: its namespace is `namespace`), or `KIND/NAME`; `null` for an event about no key.
    pub key: Option<String>,
    /// The new value (masked when sensitive); an entity's fields in its history.
    #[schema(value_type = Value)]
    pub value: Value,
    /// The value before (masked when sensitive).
    #[schema(value_type = Value)]
    pub previous: Value,
    pub actor: String,
    pub role: Option<String>,
    /// `cli`, `api`, `ui` or `system`.
    pub source: String,
    /// The client address (API) or the host name (CLI).
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
    /// The batch id (32 hex).
    pub batch: String,
    /// What produced the batch (`{"type": "api", ...}`).
    #[schema(value_type = Object)]
    pub cause: Cause,
    /// The store's id (`store_created`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// A render that included secrets: the format and which keys' plaintext left the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<AuditRender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RejectedAttempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<AuditUser>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<AuditResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<AuditImport>,
    /// The change request the entry is about, or that applied the change: its id, author and approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request: Option<AuditRequest>,
    /// A rollout's transition: which rollout, which stage, and why it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<super::AuditRollout>,
}

/// A change request as an audit entry names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRequest {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The approvals the change was applied on (or, for an approval, the approver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// What changed under a request since its base, when it was applied or suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Seconds after its apply time a scheduled request applied, when it was late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_secs: Option<u64>,
}

/// A refused attempt (`rejected`): what was tried and why it was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedAttempt {
    pub action: String,
    pub reason: String,
    pub message: String,
}

/// The user an entry is about (`user_added`, `user_removed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditUser {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The entity an entry is about, and the names of the fields the event set (created) or changed (updated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditResource {
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
}

/// An applied import (`import`): the document's digest and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditImport {
    pub digest: String,
    #[schema(value_type = Value)]
    pub source: Option<Value>,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    pub locked: Vec<String>,
}

/// One page of the audit trail or of a history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts (send it back as `cursor`), if there may be one.
    pub next_cursor: Option<String>,
    /// The older form of `next_cursor` (the audit trail only): send it back as `before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
    /// The log's head when the page was read.
    pub head: u64,
}

/// What a render that included secrets rendered (never the values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRender {
    /// `env`, `json` or `yaml`.
    pub format: String,
    /// The keys whose plaintext was rendered.
    pub keys: Vec<String>,
}
