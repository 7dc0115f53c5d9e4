//! The time-travel messages besides the audit trail: a history page's query, the difference between two
//! points, rollback and revert requests with the plan and report they answer, and the verification report.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The paging of a key's or an entity's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Rows per page, 1 to 1000 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(schema_with = super::constraints::page_limit)]
    pub limit: Option<usize>,
}

/// The two points of a diff.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// RFC 3339, a duration before now (`24h`) or `seq:N`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub from: Option<String>,
    /// The same forms; now when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(min_length = 1)]
    pub to: Option<String>,
    /// Only this namespace's settings (`mcpgateway`, `cfgledger`, ...); every namespace and the registry when
    /// left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A point of the log, by the seq whose state it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PointRef {
    pub seq: u64,
}

/// What changed between two points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Diff {
    pub from: PointRef,
    pub to: PointRef,
    pub added: Vec<DiffLine>,
    pub removed: Vec<DiffLine>,
    pub changed: Vec<DiffLine>,
}

/// One key or entity that differs: its old and new value (masked when sensitive; an entity's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiffLine {
    pub key: String,
    #[schema(value_type = Value)]
    pub old: Value,
    #[schema(value_type = Value)]
    pub new: Value,
    /// The fields that differ (an entity present at both points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
}

/// `POST /admin/config/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The point to return to: RFC 3339, a duration before now (`24h`) or `seq:N`.
    #[schema(min_length = 1)]
    pub to: String,
    /// Only these keys and entities (`KIND/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Only this namespace's settings; with `keys`, the namespace of their bare keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Answer the plan; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Apply only if the log's head is still this seq (the `head` of a reviewed dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_head: Option<u64>,
}

/// `POST /admin/config/revert`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertBody {
    /// The batch to undo: its id, or at least 4 of its first or last hex digits that name one batch.
    pub batch: String,
    /// Undo it even though later changes touched the same subjects (they are undone too).
    #[serde(default)]
    pub force: bool,
    /// Answer the plan; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One line of a rollback plan (the typed form of `cfgledger_events::rollback::Step`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanStep {
    /// The setting key, or `KIND/NAME`.
    pub subject: String,
    /// `set`, `reset`, `create`, `update`, `delete`, `locked` or `invalid` (the pure core's `StepAction`).
    #[schema(value_type = String, example = "set")]
    pub action: cfgledger_events::rollback::StepAction,
    /// The value now (settings), masked when sensitive.
    #[schema(value_type = Value)]
    pub current: Value,
    /// The value it returns to (settings), masked when sensitive.
    #[schema(value_type = Value)]
    pub value: Value,
    /// The fields that change (entities updated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How many steps of each action a plan has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanCounts {
    pub set: usize,
    pub reset: usize,
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub locked: usize,
    pub invalid: usize,
}

/// Whether an applied rollback changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    Completed,
    NothingToDo,
}

/// A later change to a subject a revert would undo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LaterChange {
    pub key: String,
    pub seq: u64,
    pub batch: String,
    pub actor: String,
}

/// The batch a revert undoes: its full id, its first and last seq, and the later changes it also undoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevertOf {
    pub batch: String,
    pub seqs: [u64; 2],
    pub later_changes: Vec<LaterChange>,
}

/// A rollback's or a revert's plan, and, when applied, what was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RollbackReport {
    pub to: PointRef,
    pub steps: Vec<PlanStep>,
    pub counts: PlanCounts,
    /// The subjects that apply at the next start of each process.
    pub restart_required: Vec<String>,
    /// The head the plan was made at (send it back as `expected_head`), or the head after the batch.
    pub head: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<RevertOf>,
    #[serde(default)]
    pub dry_run: bool,
    /// The batch appended (when applied and something changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplyStatus>,
}

/// A replay clone's plan: the rollback plan of the target to the source's state, the subjects the target
/// holds with another value (listed first), and where the state comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClonePlan {
    pub plan: RollbackReport,
    pub conflicts: Vec<String>,
    pub source: super::ExportSource,
}

/// `GET /admin/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// `ok`, or `snapshots_bad` when a checkpoint differs from the replay.
    pub status: String,
    pub head: VerifiedHead,
    pub snapshots: VerifiedSnapshots,
    /// What this server's background integrity check has found (`/admin/verify` only; absent from the CLI's
    /// local `verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<super::IntegrityStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifiedHead {
    pub seq: u64,
    /// The head's hash, hex.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifiedSnapshots {
    /// The seqs of the checkpoints that match the replay.
    pub ok: Vec<u64>,
    pub bad: Vec<BadSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BadSnapshot {
    pub seq: u64,
    pub problem: String,
}
