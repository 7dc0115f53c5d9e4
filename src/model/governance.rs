//! Change requests and the change policy on the wire.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// One change of a request, as a caller gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeInput {
    /// A setting's new value as JSON (`value`) or as text parsed like the command line's (`text`); `key`
    /// may be `namespace:KEY`, or name `namespace` apart.
    Set {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Value)]
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// A setting's stored value removed: the environment or the default applies again.
    Reset {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
    },
    /// A new entity of the registry.
    Create {
        kind: String,
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
    },
    /// An entity's new state, whole (credentials omitted keep the stored ones).
    Replace {
        kind: String,
        name: String,
        #[schema(value_type = Object)]
        fields: Map<String, Value>,
    },
    /// Top-level fields merged into an entity (`null` removes one).
    Patch {
        kind: String,
        name: String,
        #[schema(value_type = Object)]
        patch: Map<String, Value>,
    },
    Delete {
        kind: String,
        name: String,
    },
    /// The change policy's new content.
    Policy {
        policy: PolicyDoc,
    },
}

/// A new change request, or an edit of one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub changes: Vec<ChangeInput>,
    /// When to apply it once approved (RFC 3339); absent: as soon as it is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<String>,
    /// Why: required for a proposal, recorded in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An approval, a rejection or a withdrawal, with an optional comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The change policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    /// Matched most specific first: `NAMESPACE:KEY`, then `NAMESPACE/CATEGORY`, then `NAMESPACE`, then `*`;
    /// for entities `registry/KIND`, then `registry`, then `*`.
    #[serde(default)]
    pub rules: Vec<PolicyRuleDoc>,
    /// The users who may use the emergency bypass.
    #[serde(default)]
    pub bypass: Vec<String>,
    /// The approvals a change of the policy itself needs; absent: the most any rule asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 10)]
    pub policy_approvals: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleDoc {
    pub scope: String,
    #[schema(maximum = 10)]
    pub approvals: u32,
}

/// The policy with the seq that last changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub policy: PolicyDoc,
    /// The seq of the event that last changed the policy (0: never changed).
    pub version: u64,
    /// The approvals a change of the policy needs now.
    pub policy_approvals: u32,
}

/// One change of a request as it is shown: secrets masked, entities by their fields' names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeView {
    /// `set`, `reset`, `create`, `update`, `delete` or `policy`.
    pub op: String,
    /// A qualified key, `KIND/NAME`, or `policy`.
    pub subject: String,
    /// The new value (a setting's, masked when sensitive; the policy's), if any.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Value)]
    pub value: Value,
    /// The value now, for comparison (masked when sensitive).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Value)]
    pub current: Value,
    /// An entity's fields (names only: values may hold credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The approvals this change needs under the current policy.
    pub approvals: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    pub by: String,
    pub seq: u64,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A subject that changed under a request since its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConflictView {
    pub subject: String,
    pub base_version: u64,
    pub current_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppliedView {
    pub seq: u64,
    pub batch: String,
    pub at: String,
    /// Seconds after its apply time, when it applied late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_secs: Option<u64>,
}

/// A change request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub id: u64,
    /// `open`, `scheduled`, `suspended`, `applied`, `rejected` or `withdrawn`.
    pub status: String,
    pub author: String,
    pub reason: String,
    pub changes: Vec<ChangeView>,
    pub required_approvals: u32,
    pub approvals: Vec<ApprovalView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<String>,
    pub proposed_at: String,
    pub proposed_seq: u64,
    pub revision: u32,
    /// Whether something it changes changed since its base (an open or scheduled request).
    pub stale: bool,
    /// What changed since its base: now (open, scheduled), or when it was suspended or applied.
    pub conflicts: Vec<ConflictView>,
    /// Why it was suspended, when its changes no longer held or the policy asks more approvals now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestListQuery {
    /// Only requests with this status.
    #[param(pattern = "^(open|scheduled|suspended|applied|rejected|withdrawn)$")]
    pub status: Option<String>,
}
