//! Governance as data: the approval policy, change requests and their fold.
//!
//! A change request is a set of changes to settings, entities and the policy, proposed with a reason,
//! validated against the state it was based on, approved by others than its author, and applied as one batch
//! (at once, or at its apply time). The policy says how many approvals a change needs, by the most specific
//! rule that matches what it touches (`NAMESPACE:KEY` over `NAMESPACE/CATEGORY` over `NAMESPACE` over `*`; for
//! entities `registry/KIND` over `registry` over `*`), and who may use the emergency bypass. The policy itself
//! changes only through a request.
//!
//! Everything here is pure: the fold ([`Governance::apply`]) reads nothing but the events it is given.

use crate::catalog::Catalog;
use crate::event::{Event, StoredValue};
use crate::namespace;
use crate::resource::ResourceKind;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most approvals a rule may ask for.
pub const MAX_APPROVALS: u32 = 10;
/// The most changes one request may hold.
pub const MAX_CHANGES: usize = 1000;
/// The subject that names the policy itself.
pub const POLICY_SUBJECT: &str = "policy";
/// The scope of entities of the resource registry.
pub const REGISTRY_SCOPE: &str = "registry";

/// How many approvals changes need, and who may bypass them in an emergency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules, matched most specific first.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// The users who may apply a change without its approvals (the emergency bypass), each use recorded.
    #[serde(default)]
    pub bypass: Vec<String>,
    /// The approvals a change of the policy itself needs; when absent, the most any rule asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_approvals: Option<u32>,
}

/// One rule: what it covers and how many approvals a change there needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// `*`, `NAMESPACE`, `NAMESPACE/CATEGORY`, `NAMESPACE:KEY`, `registry` or `registry/KIND`.
    pub scope: String,
    pub approvals: u32,
}

/// How specific a scope is, and whether it covers a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    All,
    Namespace(&'a str),
    Category(&'a str, &'a str),
    Key(&'a str),
    Registry,
    Kind(&'a str),
}

impl<'a> Scope<'a> {
    fn parse(scope: &'a str) -> Scope<'a> {
        if scope == "*" {
            Scope::All
        } else if scope == REGISTRY_SCOPE {
            Scope::Registry
        } else if let Some(kind) = scope.strip_prefix("registry/") {
            Scope::Kind(kind)
        } else if scope.contains(namespace::SEP) {
            Scope::Key(scope)
        } else if let Some((ns, category)) = scope.split_once('/') {
            Scope::Category(ns, category)
        } else {
            Scope::Namespace(scope)
        }
    }

    fn specificity(self) -> u8 {
        match self {
            Scope::All => 0,
            Scope::Namespace(_) | Scope::Registry => 1,
            Scope::Category(..) | Scope::Kind(_) => 2,
            Scope::Key(_) => 3,
        }
    }
}

/// What a change touches, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A qualified setting key with its namespace and category.
    Setting {
        key: &'a str,
        namespace: &'a str,
        category: &'a str,
    },
    Entity {
        kind: ResourceKind,
    },
    Policy,
}

impl Policy {
    /// Checks every rule against the catalog and the bounds; the message names the first that fails.
    pub fn check(&self, catalog: &Catalog) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for rule in &self.rules {
            if rule.approvals > MAX_APPROVALS {
                return Err(format!(
                    "policy rule {:?} asks for {} approvals; at most {MAX_APPROVALS}",
                    rule.scope, rule.approvals
                ));
            }
            if !seen.insert(rule.scope.as_str()) {
                return Err(format!("policy scope {:?} is named twice", rule.scope));
            }
            match Scope::parse(&rule.scope) {
                Scope::All | Scope::Registry => {}
                Scope::Kind(kind) => {
                    kind.parse::<ResourceKind>()
                        .map_err(|_| format!("policy scope {:?}: {kind:?} is not an entity kind", rule.scope))?;
                }
                Scope::Namespace(ns) => {
                    if catalog.namespace(ns).is_none() {
                        return Err(format!("policy scope {:?}: no namespace {ns:?}", rule.scope));
                    }
                }
                Scope::Category(ns, category) => {
                    if !catalog.specs().iter().any(|s| s.namespace == ns && s.category == category) {
                        return Err(format!(
                            "policy scope {:?}: namespace {ns:?} has no category {category:?}",
                            rule.scope
                        ));
                    }
                }
                Scope::Key(key) => {
                    if catalog.get(key).is_none() {
                        return Err(format!("policy scope {:?}: no such key", rule.scope));
                    }
                }
            }
        }
        if let Some(n) = self.policy_approvals {
            if n > MAX_APPROVALS {
                return Err(format!("policy_approvals is {n}; at most {MAX_APPROVALS}"));
            }
        }
        let mut users = std::collections::BTreeSet::new();
        for user in &self.bypass {
            if !users.insert(user.as_str()) {
                return Err(format!("bypass names user {user:?} twice"));
            }
        }
        Ok(())
    }

    /// The approvals a change of `subject` needs: the most specific matching rule's, 0 when none matches.
    pub fn required(&self, subject: &Subject<'_>) -> u32 {
        if let Subject::Policy = subject {
            return self.policy_approvals.unwrap_or_else(|| self.rules.iter().map(|r| r.approvals).max().unwrap_or(0));
        }
        self.rules
            .iter()
            .filter_map(|rule| {
                let scope = Scope::parse(&rule.scope);
                let covers = match (scope, subject) {
                    (Scope::All, _) => true,
                    (Scope::Namespace(ns), Subject::Setting { namespace, .. }) => ns == *namespace,
                    (Scope::Category(ns, c), Subject::Setting { namespace, category, .. }) => {
                        ns == *namespace && c == *category
                    }
                    (Scope::Key(k), Subject::Setting { key, .. }) => k == *key,
                    (Scope::Registry, Subject::Entity { .. }) => true,
                    (Scope::Kind(k), Subject::Entity { kind }) => k == kind.as_str(),
                    _ => false,
                };
                covers.then_some((scope.specificity(), rule.approvals))
            })
            .max_by_key(|(specificity, _)| *specificity)
            .map_or(0, |(_, approvals)| approvals)
    }

    /// The approvals a change of the setting `key` (qualified) needs, with its catalog entry's category.
    pub fn required_for_key(&self, catalog: &Catalog, key: &str) -> u32 {
        let (ns, _) = namespace::split(key);
        let category = catalog.get(key).map_or("", |s| s.category.as_str());
        self.required(&Subject::Setting { key, namespace: ns, category })
    }

    /// The approvals the change an event makes needs, and what it touches; `None` for an event that changes
    /// no setting, entity or the policy.
    pub fn required_for_event(&self, catalog: &Catalog, event: &Event) -> Option<(String, u32)> {
        match event {
            Event::SettingChanged(e) => Some((e.key.clone(), self.required_for_key(catalog, &e.key))),
            Event::SettingReset(e) => Some((e.key.clone(), self.required_for_key(catalog, &e.key))),
            Event::ResourceCreated(e) => {
                Some((format!("{}/{}", e.kind, e.name), self.required(&Subject::Entity { kind: e.kind })))
            }
            Event::ResourceUpdated(e) => {
                Some((format!("{}/{}", e.kind, e.name), self.required(&Subject::Entity { kind: e.kind })))
            }
            Event::ResourceDeleted(e) => {
                Some((format!("{}/{}", e.kind, e.name), self.required(&Subject::Entity { kind: e.kind })))
            }
            Event::PolicyChanged(_) => Some((POLICY_SUBJECT.into(), self.required(&Subject::Policy))),
            // A rollout ends by merging its values into the main ones: starting it is changing them.
            Event::RolloutStarted(e) => e
                .changes
                .iter()
                .map(|c| (c.key.clone(), self.required_for_key(catalog, &c.key)))
                .max_by_key(|(_, n)| *n),
            _ => None,
        }
    }
}

/// One change of a request, as the log keeps it: decided against the request's base, with secrets sealed
/// exactly as the change itself will store them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RequestChange {
    /// A setting's new value (sealed when the key is sensitive).
    Set {
        key: String,
        value: StoredValue,
    },
    Reset {
        key: String,
    },
    /// A new entity, in its stored form (credentials sealed).
    Create {
        kind: ResourceKind,
        name: String,
        fields: Map<String, Value>,
    },
    /// An entity's new state, whole, in its stored form.
    Update {
        kind: ResourceKind,
        name: String,
        fields: Map<String, Value>,
    },
    Delete {
        kind: ResourceKind,
        name: String,
    },
    /// The policy's new content.
    Policy {
        policy: Policy,
    },
}

impl RequestChange {
    /// What the change touches: a qualified key, `KIND/NAME`, or `policy`.
    pub fn subject(&self) -> String {
        match self {
            RequestChange::Set { key, .. } | RequestChange::Reset { key } => key.clone(),
            RequestChange::Create { kind, name, .. }
            | RequestChange::Update { kind, name, .. }
            | RequestChange::Delete { kind, name } => format!("{kind}/{name}"),
            RequestChange::Policy { .. } => POLICY_SUBJECT.into(),
        }
    }
}

/// The version of a subject that a request was decided against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseVersion {
    pub subject: String,
    /// The seq of the event that last changed it (0: it never existed, or an entity did not exist).
    pub version: u64,
}

/// A subject that changed after the request was based on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub subject: String,
    pub base_version: u64,
    pub current_version: u64,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Open,
    /// Approved and waiting for its apply time.
    Scheduled,
    /// Its base changed before its apply time: not applied; an edit bases it again.
    Suspended,
    Applied,
    Rejected,
    Withdrawn,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Scheduled => "scheduled",
            RequestStatus::Suspended => "suspended",
            RequestStatus::Applied => "applied",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Withdrawn => "withdrawn",
        }
    }

    /// Whether nothing can happen to the request any more.
    pub fn is_closed(self) -> bool {
        matches!(self, RequestStatus::Applied | RequestStatus::Rejected | RequestStatus::Withdrawn)
    }
}

/// An approval as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub seq: u64,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A change request as the log has made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequest {
    pub id: u64,
    pub author: String,
    pub reason: String,
    pub changes: Vec<RequestChange>,
    pub base: Vec<BaseVersion>,
    pub required_approvals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<Timestamp>,
    pub status: RequestStatus,
    /// The approvals that count now (an edit withdraws them).
    pub approvals: Vec<Approval>,
    pub proposed_seq: u64,
    pub proposed_at: Timestamp,
    /// The seq of the last event about the request.
    pub updated_seq: u64,
    /// How many times it was edited.
    pub revision: u32,
    /// The batch that applied it, with its seq and whether it was late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedInfo>,
    /// Who closed it (rejected or withdrew) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_comment: Option<String>,
    /// The conflicts found when it was suspended or applied stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    /// Why it was suspended when its changes no longer held (rather than because its base moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
}

/// How a request was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedInfo {
    pub seq: u64,
    pub batch: String,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_secs: Option<u64>,
}

/// The governance part of the state: the policy and every request ever proposed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Governance {
    pub policy: Policy,
    /// The seq of the event that last changed the policy (0: never).
    pub policy_version: u64,
    /// Each request behind its own `Arc`: a state copy (the writer's, a published snapshot's) shares them, and
    /// an event copies only the request it changes.
    pub requests: BTreeMap<u64, Arc<ChangeRequest>>,
    /// Which request each applying batch applied: what lets the audit show a change with its request.
    pub applied_batches: BTreeMap<String, u64>,
}

impl Governance {
    /// No policy and no request: what a new store starts with.
    pub const EMPTY: Governance = Governance {
        policy: Policy { rules: Vec::new(), bypass: Vec::new(), policy_approvals: None },
        policy_version: 0,
        requests: BTreeMap::new(),
        applied_batches: BTreeMap::new(),
    };

    /// The id the next proposal gets.
    pub fn next_id(&self) -> u64 {
        self.requests.keys().next_back().map_or(1, |id| id + 1)
    }

    pub fn request(&self, id: u64) -> Option<&ChangeRequest> {
        self.requests.get(&id).map(|r| &**r)
    }

    /// The request a batch applied, if it applied one.
    pub fn request_of_batch(&self, batch: &str) -> Option<&ChangeRequest> {
        self.applied_batches.get(batch).and_then(|id| self.requests.get(id)).map(|r| &**r)
    }

    /// Requests that are approved and whose apply time has come, oldest first.
    pub fn due(&self, now: Timestamp) -> Vec<u64> {
        self.requests
            .values()
            .filter(|r| r.status == RequestStatus::Scheduled && r.apply_at.is_some_and(|t| t <= now))
            .map(|r| r.id)
            .collect()
    }

    /// The earliest apply time of a scheduled request.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.requests.values().filter(|r| r.status == RequestStatus::Scheduled).filter_map(|r| r.apply_at).min()
    }

    /// Folds one event in (those that are not about governance are ignored). Total, like every fold.
    pub fn apply(&mut self, seq: u64, at: Timestamp, batch: &str, event: &Event) {
        match event {
            Event::ChangeRequestProposed(e) => {
                let request = ChangeRequest {
                    id: e.id,
                    author: e.author.clone(),
                    reason: e.reason.clone(),
                    changes: e.changes.clone(),
                    base: e.base.clone(),
                    required_approvals: e.required_approvals,
                    apply_at: e.apply_at,
                    status: if e.required_approvals == 0 && e.apply_at.is_some() {
                        RequestStatus::Scheduled
                    } else {
                        RequestStatus::Open
                    },
                    approvals: Vec::new(),
                    proposed_seq: seq,
                    proposed_at: at,
                    updated_seq: seq,
                    revision: 0,
                    applied: None,
                    closed_by: None,
                    closed_comment: None,
                    conflicts: Vec::new(),
                    suspended_reason: None,
                };
                self.requests.insert(e.id, Arc::new(request));
            }
            Event::ChangeRequestEdited(e) => {
                if let Some(r) = self.requests.get_mut(&e.id).map(Arc::make_mut) {
                    r.changes = e.changes.clone();
                    r.base = e.base.clone();
                    r.required_approvals = e.required_approvals;
                    r.apply_at = e.apply_at;
                    r.approvals.clear();
                    r.conflicts.clear();
                    r.suspended_reason = None;
                    r.status = if e.required_approvals == 0 && e.apply_at.is_some() {
                        RequestStatus::Scheduled
                    } else {
                        RequestStatus::Open
                    };
                    r.revision += 1;
                    r.updated_seq = seq;
                }
            }
            Event::ChangeRequestApproved(e) => {
                if let Some(r) = self.requests.get_mut(&e.id).map(Arc::make_mut) {
                    r.approvals.push(Approval { by: e.approver.clone(), seq, at, comment: e.comment.clone() });
                    if r.approvals.len() >= r.required_approvals as usize && r.apply_at.is_some() {
                        r.status = RequestStatus::Scheduled;
                    }
                    r.updated_seq = seq;
                }
            }
            Event::ChangeRequestRejected(e) => self.close(e.id, seq, RequestStatus::Rejected, &e.by, &e.comment),
            Event::ChangeRequestWithdrawn(e) => self.close(e.id, seq, RequestStatus::Withdrawn, &e.by, &e.comment),
            Event::ChangeRequestSuspended(e) => {
                if let Some(r) = self.requests.get_mut(&e.id).map(Arc::make_mut) {
                    r.status = RequestStatus::Suspended;
                    r.conflicts = e.conflicts.clone();
                    r.suspended_reason = e.invalid.clone();
                    r.updated_seq = seq;
                }
            }
            Event::ChangeRequestApplied(e) => {
                if let Some(r) = self.requests.get_mut(&e.id).map(Arc::make_mut) {
                    r.status = RequestStatus::Applied;
                    r.conflicts = e.conflicts.clone();
                    r.applied = Some(AppliedInfo { seq, batch: batch.to_string(), at, late_secs: e.late_secs });
                    r.updated_seq = seq;
                }
                self.applied_batches.insert(batch.to_string(), e.id);
            }
            Event::PolicyChanged(e) => {
                self.policy = e.policy.clone();
                self.policy_version = seq;
            }
            _ => {}
        }
    }

    fn close(&mut self, id: u64, seq: u64, status: RequestStatus, by: &str, comment: &Option<String>) {
        if let Some(r) = self.requests.get_mut(&id).map(Arc::make_mut) {
            r.status = status;
            r.closed_by = Some(by.to_string());
            r.closed_comment = comment.clone();
            r.updated_seq = seq;
        }
    }
}

/// A request was proposed: its changes were decided against the state at `base`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestProposed {
    pub id: u64,
    pub author: String,
    pub reason: String,
    pub changes: Vec<RequestChange>,
    pub base: Vec<BaseVersion>,
    pub required_approvals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<Timestamp>,
}

/// The author changed a request: its approvals are withdrawn (named here) and it is based again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRequestEdited {
    pub id: u64,
    pub by: String,
    pub changes: Vec<RequestChange>,
    pub base: Vec<BaseVersion>,
    pub required_approvals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn_approvals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestApproved {
    pub id: u64,
    pub approver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestRejected {
    pub id: u64,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestWithdrawn {
    pub id: u64,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A scheduled request whose base changed before its time: not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestSuspended {
    pub id: u64,
    pub conflicts: Vec<Conflict>,
    /// Why it could not apply, when its changes no longer hold against the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

/// A request applied: the batch holding this event holds its changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRequestApplied {
    pub id: u64,
    /// The approvals it was applied on (empty when the policy asked for none).
    pub approvers: Vec<String>,
    /// What changed under it since its base; it was valid against the current state nonetheless.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_at: Option<Timestamp>,
    /// Seconds after its apply time it applied, when that is more than the store's `SCHEDULE_LATE_AFTER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_secs: Option<u64>,
}

/// The policy's new content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChanged {
    pub policy: Policy,
    pub previous: Policy,
}

/// A change applied without the approvals its policy asks for: the emergency bypass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyBypassUsed {
    pub by: String,
    /// The subjects whose approvals were bypassed, with the approvals each needed.
    pub bypassed: Vec<BypassedSubject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassedSubject {
    pub subject: String,
    pub approvals: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            rules: vec![
                PolicyRule { scope: "*".into(), approvals: 1 },
                PolicyRule { scope: "app".into(), approvals: 1 },
                PolicyRule { scope: "app/security".into(), approvals: 2 },
                PolicyRule { scope: "app/logging".into(), approvals: 0 },
                PolicyRule { scope: "app:DEBUG_TOKEN".into(), approvals: 3 },
                PolicyRule { scope: "registry/tools".into(), approvals: 0 },
            ],
            bypass: vec![],
            policy_approvals: None,
        }
    }

    fn setting<'a>(key: &'a str, category: &'a str) -> Subject<'a> {
        Subject::Setting { key, namespace: "app", category }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let p = policy();
        assert_eq!(p.required(&setting("app:JWT", "security")), 2);
        assert_eq!(p.required(&setting("app:LOG_LEVEL", "logging")), 0);
        assert_eq!(p.required(&setting("app:DEBUG_TOKEN", "logging")), 3);
        assert_eq!(p.required(&setting("app:PORT", "server")), 1);
        assert_eq!(p.required(&Subject::Setting { key: "o:X", namespace: "o", category: "c" }), 1);
        assert_eq!(p.required(&Subject::Entity { kind: ResourceKind::Tools }), 0);
        assert_eq!(p.required(&Subject::Entity { kind: ResourceKind::Gateways }), 1);
        // The policy itself needs as many as the strictest rule, unless it says otherwise.
        assert_eq!(p.required(&Subject::Policy), 3);
        assert_eq!(Policy { policy_approvals: Some(2), ..p }.required(&Subject::Policy), 2);
        assert_eq!(Policy::default().required(&Subject::Policy), 0);
        assert_eq!(Policy::default().required(&setting("app:JWT", "security")), 0);
    }
}
