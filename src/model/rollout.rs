//! The messages of gradual rollouts (`/admin/rollouts...`): starting one, its status with each stage and
//! each instance, and the answers of advance and rollback.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// One setting change of a rollout: exactly one of `value` (JSON) and `text` (parsed as the command line
/// parses it, which `rollout start --server` sends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutChangeBody {
    /// The key, bare in the rollout's namespace or qualified (`namespace:KEY`).
    pub key: String,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The body of `POST /admin/rollouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRolloutBody {
    /// The rollout's id (1 to 64 of `A-Z a-z 0-9 . _ -`); one is made up when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: Option<String>,
    /// The namespace (default `mcpgateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub changes: Vec<RolloutChangeBody>,
    /// Labels an instance must all carry to get the new values from the first stage; empty: none, and the
    /// rollout starts at its first percentage step.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Percentages of all instances, strictly increasing, ending at 100 (e.g. `[10, 50, 100]`).
    pub steps: Vec<u8>,
    /// How long each stage bakes before the next, in milliseconds.
    #[schema(maximum = 604800000)]
    pub bake_ms: u64,
    /// A URL checked with a GET during each bake: not 2xx, or no answer within `check_timeout_ms`, rolls
    /// the rollout back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_url: Option<String>,
    /// How long the check URL may take (default 2000 ms, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 60000)]
    pub check_timeout_ms: Option<u64>,
    /// Roll back when an instance that runs the new values reports `healthy: false` in its heartbeat.
    #[serde(default)]
    pub instance_reports: bool,
    /// Why: recorded in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The body of `POST /admin/rollouts/{id}/advance` and `/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutActionBody {
    /// Why: recorded in the audit trail (and, for a rollback, in the rollback's event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rollout's value of one key (a secret masked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutValue {
    pub key: String,
    #[schema(value_type = Value)]
    pub value: Value,
    pub sensitive: bool,
}

/// One transition of a rollout, as its event recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutStep {
    pub seq: u64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    /// `started`, `advanced`, `completed` or `rolled_back`.
    pub what: String,
    pub stage: u32,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where one live agent or client stands in a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutInstance {
    /// `agent/ID` or `client/ID`.
    pub instance: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Its place in the percentage order, 0 to 99: it gets the new values once the percentage passes it.
    pub bucket: u8,
    /// Whether it is meant to run the new values now, and why: `selector`, `percent`, or `none`.
    pub new_values: bool,
    pub via: String,
    /// Whether it has applied the current stage (its applied seq is at or past the stage's event).
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
}

/// A rollout's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    pub id: String,
    pub namespace: String,
    /// `active`, `completed` or `rolled_back`.
    pub status: String,
    /// 0: the selector's instances only; n: `steps[n-1]` percent of all instances too.
    pub stage: u32,
    pub percent: u8,
    pub steps: Vec<u8>,
    pub selector: BTreeMap<String, String>,
    pub bake_ms: u64,
    /// When the current stage's bake ends (RFC 3339), while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_ends_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_url: Option<String>,
    pub check_timeout_ms: u64,
    pub instance_reports: bool,
    pub changes: Vec<RolloutValue>,
    pub transitions: Vec<RolloutStep>,
    /// The live agents and clients of its namespace (in `GET /admin/rollouts/{id}` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<RolloutInstance>,
}

/// `GET /admin/rollouts`: every rollout, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutList {
    pub rollouts: Vec<RolloutView>,
}

/// The answer of a start, an advance or a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RolloutOutcome {
    /// Whether the command appended anything (false: another server made the transition first, or the
    /// rollout had ended).
    pub changed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    pub rollout: RolloutView,
}

/// A rollout as one instance sees it, in `GET /admin/instances`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InstanceRollout {
    pub id: String,
    pub stage: u32,
    pub percent: u8,
    /// Whether the instance is meant to run the rollout's values now.
    pub new_values: bool,
}

/// A rollout's transition in the audit trail (`rollout_started`, `rollout_advanced`, `rollout_completed`,
/// `rollout_rolled_back`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRollout {
    pub id: String,
    pub stage: u32,
    pub percent: u8,
    /// The label selector (on start).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The percentage steps (on start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<u8>,
    /// Why it was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The health signal that failed, for an automatic rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Advanced or completed by hand before the bake ended.
    #[serde(default)]
    pub manual: bool,
}
