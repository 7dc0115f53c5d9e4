//! The operational messages: liveness and readiness, login, the live instances, and the watch stream's
//! change events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// `GET /health`: the process answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /ready`: 200 when the store answers and this instance has applied its head; 503 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`, `catching_up` or `degraded` (the store is unreachable: reads are served from memory).
    pub status: String,
    /// The log's head, when the store answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// The seq this instance has applied.
    pub applied: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// The hash of the applied head.
    pub head_hash: String,
    /// This instance's id.
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /auth/login`. Its `Debug` form leaves the password out.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    #[schema(format = Password)]
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A bearer token valid for `TOKEN_EXPIRY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// `platform_admin`, `auditor` or `viewer`.
    pub role: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// What an instance reports in its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceInfo {
    pub host: String,
    pub pid: u32,
    pub listen: String,
    pub version: String,
    pub started_at: String,
    pub applied_seq: u64,
    pub head_hash: String,
    /// Whatever else another version of cfgledger reports, kept as it came.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, Value>,
}

/// One live instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceEntry {
    pub id: String,
    #[serde(flatten)]
    pub info: InstanceInfo,
    /// The last heartbeat (RFC 3339).
    pub last_seen: String,
    /// Whether this is the instance that answered.
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// `GET /admin/instances`: the instances with a heartbeat in the last few seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceList {
    pub instances: Vec<InstanceEntry>,
    /// The id of the instance that answered.
    #[serde(rename = "self")]
    pub self_id: String,
    /// Whether every instance has applied the same seq and head hash.
    pub converged: bool,
    /// The head of the instance that answered.
    pub head: u64,
}

/// The query of `GET /admin/config/watch`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// Resume after this seq (`Last-Event-ID` wins when both are sent); default: the head.
    pub after: Option<u64>,
}

/// One key of a change that sets several (`.env` seeding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyValue {
    pub namespace: String,
    pub key: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The `data` of one watch-stream event (`id` is its seq): a setting's new value, masked when sensitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEvent {
    pub seq: u64,
    /// The event kind (`SettingChanged`, `SettingReset`, `EnvSeeded`, ...).
    pub kind: String,
    /// The key's namespace, or `null` when the event sets several (see `changes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The key, or `null` when the event sets several (see `changes`).
    pub key: Option<String>,
    /// The value now in force (for a reset, the environment's or the default it falls back to).
    #[schema(value_type = Object)]
    pub value: Value,
    /// `cli`, `api`, `ui` or `system`.
    pub source: String,
    pub actor: String,
    pub time: String,
    pub batch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<KeyValue>>,
}

/// One record of the log as `cfgledger log --output json` prints it, secrets masked. A CLI message only: the
/// API serves the log through the audit trail, never raw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub seq: u64,
    pub occurred_at: String,
    pub kind: String,
    pub version: u32,
    pub actor: cfgledger_events::Actor,
    pub batch: cfgledger_events::Batch,
    pub payload: Value,
    pub prev_hash: String,
    pub hash: String,
}
