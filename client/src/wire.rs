//! The messages an agent or client exchanges with a cfgledger server, shared by both sides: the server's
//! model re-exports [`InstanceReport`] and [`ChildReport`], and [`ChangeNotice`] is the part of the watch
//! stream's `ChangeEvent` a follower needs (the server's tests pin that one decodes as the other).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /admin/instances/heartbeat`: what an agent or client has applied. Operational state, never an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InstanceReport {
    /// The reporter's own id: 1 to 64 of `A-Z a-z 0-9 . _ -`, stable for its life.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub id: String,
    /// `agent` or `client`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(agent|client)$"))]
    pub kind: String,
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The seq its configuration answers for.
    pub applied_seq: u64,
    /// The log's hash at `applied_seq`, as the server told it.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub head_hash: String,
    /// Whether it knows its configuration may be out of date.
    #[serde(default)]
    pub stale: bool,
    /// Seconds since its configuration was last known to be current (0 while it follows the stream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_secs: Option<f64>,
    /// Where its configuration came from: `server` or `cache`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(server|cache)$"))]
    pub origin: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The application's own word on its health, when it gives one (`Client::set_healthy`): `false` rolls
    /// back a rollout that watches instance reports and whose values this instance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
}

/// The state of an agent's child process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChildReport {
    /// `starting`, `running`, `restarting`, `stopping` or `exited`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(starting|running|restarting|stopping|exited)$"))]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How many times the agent restarted it for a change.
    #[serde(default)]
    pub restarts: u64,
    /// The seq of the configuration it runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_seq: Option<u64>,
    /// How its last run ended (`exit 0`, `signal 15`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

/// The `data` of a watch stream's `progress` event: every event up to `seq` was scanned, and those the
/// filters keep were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchProgress {
    pub seq: u64,
    /// The log's hash at `seq`.
    pub hash: String,
}

/// What a follower reads of a watch stream's change event (the server's `ChangeEvent` carries more).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChangeNotice {
    pub seq: u64,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub restart_required: bool,
}
