//! The operational messages: liveness and readiness, login, the live instances, and the watch stream's
//! change events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `GET /health`: the process answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /ready`: 200 when a load balancer may send this instance traffic, reads and writes; 503 otherwise,
/// with `reason` saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`, `catching_up` (further behind the head than `READY_MAX_LAG` allows), `verifying` (the
    /// integrity check at start has not reached the head yet; reads are served), `damaged` (the log failed
    /// its integrity check: writes are refused), `disk_full`, `writes_failing` or `degraded` (the store is
    /// unreachable: reads are served from memory).
    pub status: String,
    /// Why the instance is not ready, in words; absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The log's head, when the store answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<u64>,
    /// The seq this instance has applied.
    pub applied: u64,
    /// Events in the log this instance has not applied yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// How long ago the oldest event this instance has not applied was appended, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    /// The hash of the applied head.
    pub head_hash: String,
    /// This instance's id.
    pub instance: String,
    /// The background integrity check's findings.
    pub integrity: IntegrityStatus,
    /// Free space on the SQLite store's file system, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_space_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What this instance's background integrity check has found: every record of the chain from the first
/// on, each envelope against its hash and its index columns, and every checkpoint against the replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntegrityStatus {
    /// `off` (this process runs no check), `verifying` (the first pass has not reached the head),
    /// `verified` (a pass reached the head and found nothing wrong) or `damaged`.
    pub state: String,
    /// The seq the running pass (or the last one) has verified up to.
    pub verified_seq: u64,
    /// Completed passes since this instance started.
    pub passes: u64,
    /// When the last complete pass ended (RFC 3339), the head it reached and how long it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_head: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pass_ms: Option<u64>,
    /// The first seq that does not verify, once damage was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong at `first_bad_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// When the damage was found (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged_at: Option<String>,
    /// Checkpoints that do not match the log (never used, never silently dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_checkpoints: Vec<super::BadSnapshot>,
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

/// What an instance reports in its heartbeat: a cfgledger server (`kind` `server`), or an agent or client
/// that follows one (`agent`, `client`), which reports its namespace, labels, staleness and child too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceInfo {
    /// `server`, `agent` or `client` (`server` in a heartbeat of an older version).
    #[serde(default = "server_kind")]
    pub kind: String,
    pub host: String,
    pub pid: u32,
    /// The URL a server serves; empty for an agent or client.
    #[serde(default)]
    pub listen: String,
    pub version: String,
    pub started_at: String,
    pub applied_seq: u64,
    pub head_hash: String,
    /// The namespace an agent or client follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// An agent's or client's labels (`--label k=v`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Whether an agent or client knows its configuration may be out of date (it cannot reach the server,
    /// or it started from its cache).
    #[serde(default)]
    pub stale: bool,
    /// Seconds since the configuration was last known to be current (0 while it follows the stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_secs: Option<f64>,
    /// Where the configuration in force came from: `server` or `cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// An agent's child process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<cfgledger_client::wire::ChildReport>,
    /// The last problem an agent or client met (a refused token, an unreachable server, a failed check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who sent the heartbeat of an agent or client (its token's subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_by: Option<String>,
    /// What an agent or client says of its own health (`false` counts against a rollout it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Whatever else another version of cfgledger reports, kept as it came.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, Value>,
}

fn server_kind() -> String {
    "server".to_string()
}

/// One live instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceEntry {
    /// A server's id, or `agent/ID` and `client/ID`.
    pub id: String,
    #[serde(flatten)]
    pub info: InstanceInfo,
    /// The last heartbeat (RFC 3339).
    pub last_seen: String,
    /// Seconds since the last heartbeat.
    pub age_secs: f64,
    /// Whether this is the instance that answered.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// How many events the log holds past its applied seq.
    pub lag: u64,
    /// Whether its head hash is the log's hash at its applied seq (`null` when the seq is past this
    /// server's head, so it cannot be told yet).
    pub matches_log: Option<bool>,
    /// `converged` (at the head, hash matching), `behind` (lagging), `stale` (it says it cannot follow),
    /// or `diverged` (its hash is not the log's: it runs a configuration this log never held).
    pub status: String,
    /// The active rollouts of an agent's or client's namespace, and whether it is meant to run their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<super::InstanceRollout>,
}

/// `GET /admin/instances`: the instances with a heartbeat in the last few seconds: cfgledger servers,
/// agents and clients side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceList {
    pub instances: Vec<InstanceEntry>,
    /// The id of the instance that answered.
    #[serde(rename = "self")]
    pub self_id: String,
    /// Whether every instance has applied the same seq and head hash.
    pub converged: bool,
    /// The head of the instance that answered.
    pub head: u64,
    /// The log's hash at `head`.
    pub head_hash: String,
    /// How many instances are in each status (`converged`, `behind`, `stale`, `ahead`, `diverged`), of every
    /// live instance whatever the filter.
    pub by_status: BTreeMap<String, usize>,
    /// How many instances are live, whatever the filter.
    pub total: usize,
    /// How many the filter kept, before `limit`.
    pub matched: usize,
    /// Whether `limit` left some of them out.
    pub truncated: bool,
}

/// The query of `GET /admin/instances`. With thousands of agents, the few that need a look: every filter
/// narrows `instances`, while `by_status`, `total` and `converged` still count every live instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceFilter {
    /// Only instances in these statuses, comma-separated (`behind,stale,ahead,diverged`: every one not
    /// converged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only `server`, `agent` or `client` instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// At most this many, in the list's order (servers first, then by id); 0 gives the counts alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The query of `GET /admin/config/watch`. Every filter narrows the stream; resuming with `Last-Event-ID`
/// (or `after`) stays exact under any of them, because the server scans the log from that seq again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WatchQuery {
    /// Resume after this seq (`Last-Event-ID` wins when both are sent); default: the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::seq)]
    pub after: Option<u64>,
    /// Only events of this namespace (settings, and renders of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only events whose key or subject starts with this: a bare key (`LOG_`), a qualified one
    /// (`mcpgateway:LOG_`) or an entity's (`tools/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only settings of this catalog category (`logging`, `security`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Only these kinds, comma-separated: event kinds (`SettingChanged`) or groups (`settings`, `registry`,
    /// `access`, `rejections`, `store`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Send a `progress` event (its `id` the seq scanned up to) when the stream has caught up past events
    /// the filters left out, so a client's `Last-Event-ID` keeps up with the log. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<bool>,
}

/// One key of a change that sets several (`.env` seeding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyValue {
    pub namespace: String,
    pub key: String,
    #[schema(value_type = Value)]
    pub value: Value,
}

/// One event of the watch stream as it travels (`text/event-stream`), the way OpenAPI describes an event
/// stream: its fields, with `data` as text. Only the documentation uses it; the server writes the fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WatchStreamEvent {
    /// Absent (`message`) for a change; `progress` (the seq scanned up to) or `end` (the server ends the stream: why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(message|progress|end)$")]
    pub event: Option<String>,
    /// The seq, for a change or a progress event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]+$")]
    pub id: Option<String>,
    /// A change's `ChangeEvent` as JSON, a progress event's `WatchProgress` as JSON, or an end's reason as text.
    pub data: String,
}

/// The `data` of one watch-stream event (`id` is its seq): a setting's new value, masked when sensitive, or
/// for any other kind of event its audit entries (secrets masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEvent {
    pub seq: u64,
    /// The event kind (`SettingChanged`, `SettingReset`, `EnvSeeded`, `ResourceUpdated`, ...).
    pub kind: String,
    /// The key's namespace, or `null` when the event sets several (see `changes`) or is about no setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The key (bare), an entity's `KIND/NAME`, or `null` when the event sets several (see `changes`).
    pub key: Option<String>,
    /// The value now in force (for a reset, the environment's or the default it falls back to); `null` for
    /// an event that sets no value.
    #[schema(value_type = Value)]
    pub value: Value,
    /// Whether a key it sets takes effect only at an application's restart.
    #[serde(default)]
    pub restart_required: bool,
    /// `cli`, `api`, `ui` or `system`.
    pub source: String,
    pub actor: String,
    pub time: String,
    pub batch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<KeyValue>>,
    /// For an event that sets no setting's value (an entity, a user, a render, a refused change): its audit
    /// entries, secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<crate::model::AuditEntry>>,
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
