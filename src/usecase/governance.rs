//! Change requests and the change policy: propose, edit, approve, reject, withdraw, list, show, and the
//! scheduler's apply of a request whose time has come. The rules are `decide`'s (`events/src/decide/
//! governance.rs`); this turns typed input into commands and the state into typed views.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{
    AppliedView, ApprovalView, ChangeInput, ChangeView, ConflictView, PolicyDoc, PolicyRuleDoc, PolicyView,
    ProposeRequest, RequestList, RequestView, ReviewRequest,
};
use crate::present;
use cfgledger_events::decide::{conflicts, ProposedChange};
use cfgledger_events::governance::{ChangeRequest, Policy, PolicyRule, RequestChange, RequestStatus, Subject};
use cfgledger_events::{Actor, Catalog, Cause, Command, Event, Input, ResourceKind, SettingsLookup, Timestamp};
use serde_json::Value;

/// The policy as the log holds it, from its wire form.
pub fn policy_of(doc: PolicyDoc) -> Policy {
    Policy {
        rules: doc.rules.into_iter().map(|r| PolicyRule { scope: r.scope, approvals: r.approvals }).collect(),
        bypass: doc.bypass,
        policy_approvals: doc.policy_approvals,
    }
}

pub fn policy_doc(policy: &Policy) -> PolicyDoc {
    PolicyDoc {
        rules: policy.rules.iter().map(|r| PolicyRuleDoc { scope: r.scope.clone(), approvals: r.approvals }).collect(),
        bypass: policy.bypass.clone(),
        policy_approvals: policy.policy_approvals,
    }
}

fn kind(text: &str) -> Result<ResourceKind, Error> {
    text.parse::<ResourceKind>().map_err(|_| {
        let kinds: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
        Error::input(format!("unknown entity kind {text:?}; expected one of {}", kinds.join(", ")))
    })
}

fn proposed(catalog: &Catalog, changes: Vec<ChangeInput>) -> Result<Vec<ProposedChange>, Error> {
    changes
        .into_iter()
        .map(|c| {
            Ok(match c {
                ChangeInput::Set { key, namespace, value, text } => ProposedChange::Set {
                    value: match (value, text) {
                        (Some(v), None) => Input::Json(v),
                        (None, Some(t)) => Input::Text(t),
                        (Some(_), Some(_)) => {
                            return Err(Error::input(format!("set {key}: give either \"value\" or \"text\", not both")))
                        }
                        (None, None) => {
                            return Err(Error::input(format!("set {key}: \"value\" or \"text\" is required")))
                        }
                    },
                    key: super::settings::qualified_key(catalog, namespace.as_deref(), &key)?,
                },
                ChangeInput::Reset { key, namespace } => {
                    ProposedChange::Reset { key: super::settings::qualified_key(catalog, namespace.as_deref(), &key)? }
                }
                ChangeInput::Create { kind: k, fields } => ProposedChange::Create { kind: kind(&k)?, fields },
                ChangeInput::Replace { kind: k, name, fields } => {
                    ProposedChange::Replace { kind: kind(&k)?, name, fields }
                }
                ChangeInput::Patch { kind: k, name, patch } => ProposedChange::Patch { kind: kind(&k)?, name, patch },
                ChangeInput::Delete { kind: k, name } => ProposedChange::Delete { kind: kind(&k)?, name },
                ChangeInput::Policy { policy } => ProposedChange::Policy(policy_of(policy)),
            })
        })
        .collect()
}

fn apply_at(text: Option<&str>) -> Result<Option<Timestamp>, Error> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).map_err(|e| Error::input(format!("apply_at {t:?} is not an RFC 3339 time: {e}")))
    })
    .transpose()
}

/// The id of the request an outcome's events are about.
fn request_id(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::ChangeRequestProposed(p) => Some(p.id),
        Event::ChangeRequestEdited(p) => Some(p.id),
        _ => None,
    })
}

/// Proposes a change request; the reason (the write context's) is required. A request the policy asks no
/// approval for, without an apply time, is applied at once.
pub async fn propose(ledger: &Ledger, body: ProposeRequest, mut ctx: WriteContext) -> Result<RequestView, Error> {
    if ctx.reason.is_none() {
        ctx.reason = body.reason.clone().filter(|r| !r.trim().is_empty());
    }
    let Some(reason) = ctx.reason.clone() else {
        return Err(Error::input("a change request needs a reason (--reason, or \"reason\" in the body)"));
    };
    let cmd = Command::ProposeRequest {
        author: ctx.actor.name.clone(),
        reason,
        changes: proposed(ledger.catalog(), body.changes)?,
        apply_at: apply_at(body.apply_at.as_deref())?,
        now: ledger.now(),
    };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    let id = request_id(&outcome.events).ok_or_else(|| Error::input("nothing was proposed"))?;
    get(ledger, id)
}

/// The author's new version of an open, scheduled or suspended request: based again, its approvals withdrawn.
pub async fn edit(ledger: &Ledger, id: u64, body: ProposeRequest, mut ctx: WriteContext) -> Result<RequestView, Error> {
    if ctx.reason.is_none() {
        ctx.reason = body.reason.clone().filter(|r| !r.trim().is_empty());
    }
    let cmd = Command::EditRequest {
        id,
        by: ctx.actor.name.clone(),
        changes: proposed(ledger.catalog(), body.changes)?,
        apply_at: apply_at(body.apply_at.as_deref())?,
        now: ledger.now(),
    };
    ledger.execute_async(cmd, ctx).await?;
    get(ledger, id)
}

/// What a reviewer does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Approve,
    Reject,
    Withdraw,
}

/// Approves (the last approval needed applies it, unless it waits for its time), rejects or withdraws.
pub async fn review(
    ledger: &Ledger,
    id: u64,
    review: Review,
    body: ReviewRequest,
    mut ctx: WriteContext,
) -> Result<RequestView, Error> {
    let by = ctx.actor.name.clone();
    let comment = body.comment.filter(|c| !c.trim().is_empty());
    if let Some(c) = &comment {
        cfgledger_events::text::check_free_text("comment", c).map_err(Error::input)?;
    }
    if ctx.reason.is_none() {
        ctx.reason = comment.clone();
    }
    let cmd = match review {
        Review::Approve => Command::ApproveRequest { id, approver: by, comment, now: ledger.now() },
        Review::Reject => Command::RejectRequest { id, by, comment },
        Review::Withdraw => Command::WithdrawRequest { id, by, comment },
    };
    ledger.execute_async(cmd, ctx).await?;
    get(ledger, id)
}

/// Every request, newest first, or those with one status.
pub fn list(ledger: &Ledger, status: Option<&str>) -> Result<RequestList, Error> {
    let status = status.map(parse_status).transpose()?;
    let snap = ledger.snapshot();
    let requests = snap
        .state
        .governance()
        .requests
        .values()
        .rev()
        .filter(|r| status.is_none_or(|s| r.status == s))
        .map(|r| view(ledger.catalog(), &snap.state, r))
        .collect();
    Ok(RequestList { requests })
}

fn parse_status(text: &str) -> Result<RequestStatus, Error> {
    serde_json::from_value(Value::String(text.to_string())).map_err(|_| {
        Error::input(format!(
            "unknown status {text:?}; expected open, scheduled, suspended, applied, rejected or withdrawn"
        ))
    })
}

pub fn get(ledger: &Ledger, id: u64) -> Result<RequestView, Error> {
    let snap = ledger.snapshot();
    let request =
        snap.state.governance().request(id).ok_or_else(|| Error::missing(format!("no change request {id}")))?;
    Ok(view(ledger.catalog(), &snap.state, request))
}

pub fn policy(ledger: &Ledger) -> PolicyView {
    let snap = ledger.snapshot();
    let g = snap.state.governance();
    PolicyView {
        policy: policy_doc(&g.policy),
        version: g.policy_version,
        policy_approvals: g.policy.required(&Subject::Policy),
    }
}

fn view(catalog: &Catalog, state: &dyn SettingsLookup, r: &ChangeRequest) -> RequestView {
    let policy = &state.governance().policy;
    let live = matches!(r.status, RequestStatus::Open | RequestStatus::Scheduled);
    let now_conflicts = if live { conflicts(state, r) } else { Vec::new() };
    let shown_conflicts = if live { &now_conflicts } else { &r.conflicts };
    let changes = r
        .changes
        .iter()
        .map(|c| {
            let subject = c.subject();
            let (op, value, current, fields, approvals) = match c {
                RequestChange::Set { key, value } => (
                    "set",
                    present::shown_value_for(catalog, key, Some(value)),
                    present::shown_value_for(catalog, key, state.current(key)),
                    Vec::new(),
                    policy.required_for_key(catalog, key),
                ),
                RequestChange::Reset { key } => (
                    "reset",
                    Value::Null,
                    present::shown_value_for(catalog, key, state.current(key)),
                    Vec::new(),
                    policy.required_for_key(catalog, key),
                ),
                RequestChange::Create { kind, fields, .. } | RequestChange::Update { kind, fields, .. } => (
                    if matches!(c, RequestChange::Create { .. }) { "create" } else { "update" },
                    Value::Null,
                    Value::Null,
                    fields.keys().cloned().collect(),
                    policy.required(&Subject::Entity { kind: *kind }),
                ),
                RequestChange::Delete { kind, .. } => {
                    ("delete", Value::Null, Value::Null, Vec::new(), policy.required(&Subject::Entity { kind: *kind }))
                }
                RequestChange::Policy { policy: p } => (
                    "policy",
                    serde_json::to_value(policy_doc(p)).unwrap_or(Value::Null),
                    serde_json::to_value(policy_doc(policy)).unwrap_or(Value::Null),
                    Vec::new(),
                    policy.required(&Subject::Policy),
                ),
            };
            ChangeView { op: op.to_string(), subject, value, current, fields, approvals }
        })
        .collect();
    RequestView {
        id: r.id,
        status: r.status.as_str().to_string(),
        author: r.author.clone(),
        reason: r.reason.clone(),
        changes,
        required_approvals: r.required_approvals,
        approvals: r
            .approvals
            .iter()
            .map(|a| ApprovalView { by: a.by.clone(), seq: a.seq, at: a.at.to_string(), comment: a.comment.clone() })
            .collect(),
        apply_at: r.apply_at.map(|t| t.to_string()),
        proposed_at: r.proposed_at.to_string(),
        proposed_seq: r.proposed_seq,
        revision: r.revision,
        stale: live && !now_conflicts.is_empty(),
        conflicts: shown_conflicts
            .iter()
            .map(|c| ConflictView {
                subject: c.subject.clone(),
                base_version: c.base_version,
                current_version: c.current_version,
            })
            .collect(),
        suspended_reason: r.suspended_reason.clone(),
        applied: r.applied.as_ref().map(|a| AppliedView {
            seq: a.seq,
            batch: a.batch.clone(),
            at: a.at.to_string(),
            late_secs: a.late_secs,
        }),
        closed_by: r.closed_by.clone(),
        closed_comment: r.closed_comment.clone(),
    }
}

/// Applies (or suspends) every scheduled request whose time has come, as the server's scheduler does each
/// tick. Every instance may call it at once: the write lock and `decide` (a request applied or suspended
/// already is left alone) make each apply happen once. Returns the ids it acted on.
pub async fn apply_due(ledger: &Ledger) -> Result<Vec<u64>, Error> {
    let now = ledger.now();
    let late_after_secs = crate::setting_keys::SCHEDULE_LATE_AFTER.get(&ledger.settings()).0 / 1000;
    let due = ledger.snapshot().state.governance().due(now);
    let mut acted = Vec::new();
    for id in due {
        let ctx = WriteContext {
            actor: Actor::system(),
            cause: Cause::Scheduled { request: id },
            reason: Some(format!("change request {id} reached its apply time")),
            bypass: false,
        };
        let outcome = ledger.execute_async(Command::ApplyDueRequest { id, now, late_after_secs }, ctx).await?;
        if !outcome.events.is_empty() {
            acted.push(id);
        }
    }
    Ok(acted)
}

/// The scheduler of `serve`: applies due requests about every second until `closing` is set. A failure (the
/// store down) is logged and retried at the next tick.
pub async fn run_scheduler(ledger: Ledger, mut closing: tokio::sync::watch::Receiver<bool>) {
    const TICK: std::time::Duration = std::time::Duration::from_secs(1);
    // A failure is logged when it starts or changes, not at every tick of an outage.
    let mut last_failure: Option<String> = None;
    loop {
        match apply_due(&ledger).await {
            Ok(_) if last_failure.is_some() => {
                tracing::info!(target: "cfgledger::governance", "the scheduled change requests apply again");
                last_failure = None;
            }
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                if last_failure.as_deref() != Some(text.as_str()) {
                    tracing::warn!(target: "cfgledger::governance", error = %text, "cannot apply the scheduled change requests; retrying every second");
                    last_failure = Some(text);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = closing.changed() => break,
        }
        if *closing.borrow() {
            break;
        }
    }
}
