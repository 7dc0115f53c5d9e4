//! The rules of change requests and the change policy: propose, edit, approve, reject, withdraw, apply at
//! the apply time, the emergency bypass, and the check that refuses a direct change the policy asks
//! approvals for.
//!
//! A request's changes are decided at proposal against the current state (each against the state the ones
//! before it leave, on a [`StateFork`]), and kept as the log will store them (secrets sealed). Applying a
//! request decides them again, as the commands they came from, against the state of the moment: a request
//! whose base changed applies only if its changes still hold, with the conflicts recorded.

use super::{dispatch, Command, Context, Rejection, RejectionKind, SettingsLookup, StateFork};
use crate::event::{Event, StoredValue};
use crate::governance::{
    BaseVersion, BypassedSubject, ChangeRequest, ChangeRequestApplied, ChangeRequestApproved, ChangeRequestEdited,
    ChangeRequestProposed, ChangeRequestRejected, ChangeRequestSuspended, ChangeRequestWithdrawn, Conflict,
    EmergencyBypassUsed, Policy, PolicyChanged, RequestChange, RequestStatus, MAX_CHANGES, POLICY_SUBJECT,
};
use crate::resource::{self, ResourceKind};
use crate::time::Timestamp;
use crate::value::Input;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The role whose users may approve a request.
pub const APPROVER_ROLE: &str = "platform_admin";

/// One change as a proposal gives it: the input of the command it stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposedChange {
    Set { key: String, value: Input },
    Reset { key: String },
    Create { kind: ResourceKind, fields: Map<String, Value> },
    Replace { kind: ResourceKind, name: String, fields: Map<String, Value> },
    Patch { kind: ResourceKind, name: String, patch: Map<String, Value> },
    Delete { kind: ResourceKind, name: String },
    Policy(Policy),
}

/// A request's changes as decided: what the log keeps, the events they make now, and their base.
struct Plan {
    changes: Vec<RequestChange>,
    events: Vec<Event>,
    base: Vec<BaseVersion>,
    required: u32,
}

fn fork(state: &dyn SettingsLookup) -> Result<Box<dyn StateFork>, Rejection> {
    state.fork().ok_or_else(|| Rejection::state("this state cannot decide a change request"))
}

/// Decides `cmd` against `state` without the policy check (a request is how the policy is met).
fn decide_on(cx: &Context<'_>, state: &dyn SettingsLookup, cmd: Command) -> Result<Vec<Event>, Rejection> {
    dispatch(&Context { state, enforce: false, ..*cx }, cmd)
}

fn policy_change(state: &dyn SettingsLookup, policy: &Policy) -> Vec<Event> {
    let previous = &state.governance().policy;
    if previous == policy {
        return Vec::new();
    }
    vec![Event::PolicyChanged(PolicyChanged { policy: policy.clone(), previous: previous.clone() })]
}

fn check_policy_content(cx: &Context<'_>, policy: &Policy) -> Result<(), Rejection> {
    policy.check(cx.catalog).map_err(Rejection::invalid)?;
    if let Some(user) = policy.bypass.iter().find(|u| !cx.state.has_user(u)) {
        return Err(Rejection::invalid(format!("policy bypass names user {user:?}, who does not exist")));
    }
    Ok(())
}

/// The version of a subject now: a qualified key, `KIND/NAME` or `policy`.
pub fn subject_version(state: &dyn SettingsLookup, subject: &str) -> u64 {
    if subject == POLICY_SUBJECT {
        return state.governance().policy_version;
    }
    if let Some((kind, name)) = subject.split_once('/') {
        if let Ok(kind) = kind.parse::<ResourceKind>() {
            return state.resource_version(kind, name).unwrap_or(0);
        }
    }
    state.version(subject)
}

/// The subjects of `request` that changed since its base.
pub fn conflicts(state: &dyn SettingsLookup, request: &ChangeRequest) -> Vec<Conflict> {
    request
        .base
        .iter()
        .filter_map(|b| {
            let now = subject_version(state, &b.subject);
            (now != b.version).then(|| Conflict {
                subject: b.subject.clone(),
                base_version: b.version,
                current_version: now,
            })
        })
        .collect()
}

fn plan(cx: &Context<'_>, changes: Vec<ProposedChange>) -> Result<Plan, Rejection> {
    if changes.is_empty() {
        return Err(Rejection::invalid("a change request needs at least one change"));
    }
    if changes.len() > MAX_CHANGES {
        return Err(Rejection::invalid(format!(
            "a change request holds at most {MAX_CHANGES} changes; got {}",
            changes.len()
        )));
    }
    let mut state = fork(cx.state)?;
    let mut plan = Plan { changes: Vec::new(), events: Vec::new(), base: Vec::new(), required: 0 };
    let mut subjects = BTreeSet::new();
    for change in changes {
        let events = match change {
            ProposedChange::Policy(policy) => {
                check_policy_content(cx, &policy)?;
                policy_change(state.as_lookup(), &policy)
            }
            other => decide_on(cx, state.as_lookup(), command_of(other))?,
        };
        for event in &events {
            let change = request_change(event)?;
            let subject = change.subject();
            if !subjects.insert(subject.clone()) {
                return Err(Rejection::invalid(format!("{subject} is changed twice in one request")));
            }
            plan.base.push(BaseVersion { version: subject_version(cx.state, &subject), subject });
            plan.changes.push(change);
        }
        state.fold(&events);
        plan.events.extend(events);
    }
    if plan.changes.is_empty() {
        return Err(Rejection::state("nothing to change: every change of the request already holds"));
    }
    plan.required = required(cx, &plan.events);
    Ok(plan)
}

/// The approvals a set of events needs: the most any of them needs under the current policy.
fn required(cx: &Context<'_>, events: &[Event]) -> u32 {
    let policy = &cx.state.governance().policy;
    events.iter().filter_map(|e| policy.required_for_event(cx.catalog, e)).map(|(_, n)| n).max().unwrap_or(0)
}

fn command_of(change: ProposedChange) -> Command {
    match change {
        ProposedChange::Set { key, value } => Command::Set { key, value },
        ProposedChange::Reset { key } => Command::Reset { key },
        ProposedChange::Create { kind, fields } => Command::CreateResource { kind, fields },
        ProposedChange::Replace { kind, name, fields } => Command::ReplaceResource { kind, name, fields },
        ProposedChange::Patch { kind, name, patch } => Command::PatchResource { kind, name, patch },
        ProposedChange::Delete { kind, name } => Command::DeleteResource { kind, name },
        ProposedChange::Policy(_) => unreachable!("a policy change is decided by the caller"),
    }
}

/// The change an event of a decided command makes, as a request keeps it.
fn request_change(event: &Event) -> Result<RequestChange, Rejection> {
    let fields = |v: &Value| match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(match event {
        Event::SettingChanged(e) => RequestChange::Set { key: e.key.clone(), value: e.value.clone() },
        Event::SettingReset(e) => RequestChange::Reset { key: e.key.clone() },
        Event::ResourceCreated(e) => {
            RequestChange::Create { kind: e.kind, name: e.name.clone(), fields: fields(&e.fields) }
        }
        Event::ResourceUpdated(e) => {
            RequestChange::Update { kind: e.kind, name: e.name.clone(), fields: fields(&e.fields) }
        }
        Event::ResourceDeleted(e) => RequestChange::Delete { kind: e.kind, name: e.name.clone() },
        Event::PolicyChanged(e) => RequestChange::Policy { policy: e.policy.clone() },
        other => {
            return Err(Rejection::invalid(format!("a change request cannot hold a {} event", other.kind())));
        }
    })
}

/// Decides a request's changes again, against the state now, as one batch's events.
fn apply_changes(cx: &Context<'_>, request: &ChangeRequest) -> Result<Vec<Event>, Rejection> {
    let mut state = fork(cx.state)?;
    let mut out = Vec::new();
    for change in &request.changes {
        let events = match change {
            RequestChange::Set { key, value } => {
                let value = match value {
                    StoredValue::Plain(v) => v.clone(),
                    StoredValue::Sealed(text) => {
                        let bytes = cx
                            .sealer
                            .open(key, text)
                            .map_err(|e| Rejection::sealing(format!("cannot open the value of {key}: {e}")))?;
                        serde_json::from_slice(&bytes)
                            .map_err(|e| Rejection::sealing(format!("the value of {key} is not JSON: {e}")))?
                    }
                };
                decide_on(cx, state.as_lookup(), Command::Set { key: key.clone(), value: Input::Json(value) })?
            }
            RequestChange::Reset { key } => decide_on(cx, state.as_lookup(), Command::Reset { key: key.clone() })?,
            RequestChange::Create { kind, name, fields } => {
                let fields = opened(cx, *kind, name, fields)?;
                decide_on(cx, state.as_lookup(), Command::CreateResource { kind: *kind, fields })?
            }
            RequestChange::Update { kind, name, fields } => {
                let fields = opened(cx, *kind, name, fields)?;
                let cmd = Command::ReplaceResource { kind: *kind, name: name.clone(), fields };
                decide_on(cx, state.as_lookup(), cmd)?
            }
            RequestChange::Delete { kind, name } => {
                decide_on(cx, state.as_lookup(), Command::DeleteResource { kind: *kind, name: name.clone() })?
            }
            RequestChange::Policy { policy } => {
                check_policy_content(&Context { state: state.as_lookup(), ..*cx }, policy)?;
                policy_change(state.as_lookup(), policy)
            }
        };
        state.fold(&events);
        out.extend(events);
    }
    Ok(out)
}

/// An entity's stored fields with its sealed credentials opened back into input, to be sealed again.
fn opened(
    cx: &Context<'_>,
    kind: ResourceKind,
    name: &str,
    fields: &Map<String, Value>,
) -> Result<Map<String, Value>, Rejection> {
    let mut fields = fields.clone();
    resource::unseal(kind, name, &mut fields, cx.sealer)
        .map_err(|field| Rejection::sealing(format!("cannot open {} {name}'s {field}", kind.singular())))?;
    Ok(fields)
}

fn request(state: &dyn SettingsLookup, id: u64) -> Result<&ChangeRequest, Rejection> {
    state.governance().request(id).ok_or_else(|| Rejection::missing(format!("no change request {id}")))
}

fn check_apply_at(apply_at: Option<Timestamp>, now: Timestamp) -> Result<(), Rejection> {
    match apply_at {
        Some(t) if t <= now => {
            Err(Rejection::invalid(format!("the apply time {} is not in the future (now {})", t, now)))
        }
        _ => Ok(()),
    }
}

/// The events that apply `request` now: its changes decided again, after its `ChangeRequestApplied`.
fn applying(
    cx: &Context<'_>,
    request: &ChangeRequest,
    approvers: Vec<String>,
    late_secs: Option<u64>,
) -> Result<Vec<Event>, Rejection> {
    let stale = conflicts(cx.state, request);
    // An entity's update and a policy carry a whole new state: applied over a subject that changed since,
    // they would silently undo that change (another field, a rotated credential). They must be based again.
    let lossy: Vec<&str> = stale
        .iter()
        .filter(|c| {
            request.changes.iter().any(|ch| {
                ch.subject() == c.subject && matches!(ch, RequestChange::Update { .. } | RequestChange::Policy { .. })
            })
        })
        .map(|c| c.subject.as_str())
        .collect();
    if !lossy.is_empty() {
        return Err(Rejection::conflict(format!(
            "change request {} replaces the whole of {} which changed since its base: edit it to base it again",
            request.id,
            lossy.join(", ")
        )));
    }
    let changes = apply_changes(cx, request).map_err(|rej| {
        let mut message = format!("change request {} no longer applies: {}", request.id, rej.message);
        if !stale.is_empty() {
            let names: Vec<_> = stale.iter().map(|c| c.subject.as_str()).collect();
            message.push_str(&format!(" (changed since its base: {}; edit it to base it again)", names.join(", ")));
        }
        Rejection { kind: rej.kind, message, audit: Vec::new() }
    })?;
    // The policy may have grown stricter since the proposal: the approvals must satisfy the one in force.
    let needed = required(cx, &changes);
    if approvers.len() < needed as usize {
        return Err(Rejection::forbidden(format!(
            "change request {} has {} approval(s) but the change policy now asks {needed} for its changes",
            request.id,
            approvers.len()
        )));
    }
    let mut events = vec![Event::ChangeRequestApplied(ChangeRequestApplied {
        id: request.id,
        approvers,
        conflicts: stale,
        apply_at: request.apply_at,
        late_secs,
    })];
    events.extend(changes);
    Ok(events)
}

pub(super) fn propose(
    cx: &Context<'_>,
    author: String,
    reason: String,
    changes: Vec<ProposedChange>,
    apply_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    if reason.trim().is_empty() {
        return Err(Rejection::invalid("a change request needs a reason"));
    }
    check_apply_at(apply_at, now)?;
    let plan = plan(cx, changes)?;
    let id = cx.state.governance().next_id();
    let proposed = ChangeRequestProposed {
        id,
        author,
        reason,
        changes: plan.changes,
        base: plan.base,
        required_approvals: plan.required,
        apply_at,
    };
    Ok(at_once(Event::ChangeRequestProposed(proposed), id, plan.required, apply_at, plan.events))
}

/// A proposal's or an edit's event, followed, when there is nothing to wait for (no approval, no apply
/// time), by the request applied in the same batch with the events decided against the same state.
fn at_once(first: Event, id: u64, required: u32, apply_at: Option<Timestamp>, changes: Vec<Event>) -> Vec<Event> {
    let mut events = vec![first];
    if required == 0 && apply_at.is_none() {
        events.push(Event::ChangeRequestApplied(ChangeRequestApplied {
            id,
            approvers: Vec::new(),
            conflicts: Vec::new(),
            apply_at: None,
            late_secs: None,
        }));
        events.extend(changes);
    }
    events
}

pub(super) fn edit(
    cx: &Context<'_>,
    id: u64,
    by: String,
    changes: Vec<ProposedChange>,
    apply_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let request = request(cx.state, id)?;
    if request.author != by {
        return Err(Rejection::forbidden(format!(
            "only the author of change request {id} ({}) can edit it; propose another one",
            request.author
        )));
    }
    if request.status.is_closed() {
        return Err(Rejection::state(format!("change request {id} is {}: it cannot change", request.status.as_str())));
    }
    check_apply_at(apply_at, now)?;
    let plan = plan(cx, changes)?;
    let edited = Event::ChangeRequestEdited(ChangeRequestEdited {
        id,
        by,
        changes: plan.changes,
        base: plan.base,
        required_approvals: plan.required,
        apply_at,
        withdrawn_approvals: request.approvals.iter().map(|a| a.by.clone()).collect(),
    });
    Ok(at_once(edited, id, plan.required, apply_at, plan.events))
}

pub(super) fn approve(
    cx: &Context<'_>,
    id: u64,
    approver: String,
    comment: Option<String>,
    now: Timestamp,
) -> Result<Vec<Event>, Rejection> {
    let request = request(cx.state, id)?;
    if request.status != RequestStatus::Open {
        return Err(Rejection::state(format!(
            "change request {id} is {}: only an open request takes approvals",
            request.status.as_str()
        )));
    }
    if request.author == approver {
        return Err(Rejection::forbidden(format!("{approver} wrote change request {id} and cannot approve it")));
    }
    if cx.state.user_role(&approver) != Some(APPROVER_ROLE) {
        return Err(Rejection::forbidden(format!(
            "approvals come from users with the {APPROVER_ROLE} role; {approver} is not one"
        )));
    }
    if request.approvals.iter().any(|a| a.by == approver) {
        return Err(Rejection::conflict(format!(
            "{approver} has approved change request {id} already; each approver counts once"
        )));
    }
    if let Some(at) = request.apply_at.filter(|at| *at <= now) {
        return Err(Rejection::conflict(format!(
            "change request {id} was to apply at {at}, which has passed: its author edits it with a new time"
        )));
    }
    let approved = Event::ChangeRequestApproved(ChangeRequestApproved { id, approver: approver.clone(), comment });
    let count = request.approvals.len() + 1;
    if count < request.required_approvals as usize || request.apply_at.is_some() {
        return Ok(vec![approved]);
    }
    let mut approvers: Vec<String> = request.approvals.iter().map(|a| a.by.clone()).collect();
    approvers.push(approver);
    let mut events = vec![approved];
    match applying(cx, request, approvers, None) {
        Ok(applied) => events.extend(applied),
        // A stricter policy since the proposal: the approval counts, and the request waits for more.
        Err(rej) if rej.kind == RejectionKind::Forbidden => {}
        Err(rej) => return Err(rej),
    }
    Ok(events)
}

pub(super) fn reject(cx: &Context<'_>, id: u64, by: String, comment: Option<String>) -> Result<Vec<Event>, Rejection> {
    let request = request(cx.state, id)?;
    if request.status.is_closed() {
        return Err(Rejection::state(format!("change request {id} is {} already", request.status.as_str())));
    }
    if request.author == by {
        return Err(Rejection::forbidden(format!(
            "{by} wrote change request {id}: its author withdraws it rather than rejects it"
        )));
    }
    Ok(vec![Event::ChangeRequestRejected(ChangeRequestRejected { id, by, comment })])
}

pub(super) fn withdraw(
    cx: &Context<'_>,
    id: u64,
    by: String,
    comment: Option<String>,
) -> Result<Vec<Event>, Rejection> {
    let request = request(cx.state, id)?;
    if request.status.is_closed() {
        return Err(Rejection::state(format!("change request {id} is {} already", request.status.as_str())));
    }
    if request.author != by {
        return Err(Rejection::forbidden(format!(
            "only the author of change request {id} ({}) can withdraw it; others reject it",
            request.author
        )));
    }
    Ok(vec![Event::ChangeRequestWithdrawn(ChangeRequestWithdrawn { id, by, comment })])
}

/// Applies a scheduled request whose time has come, once: a request already applied or suspended (by this
/// instance or another, before this one took the write lock) is left alone. A request whose base changed is
/// suspended, never applied blind; one applied more than `late_after_secs` after its time says so.
pub(super) fn apply_due(
    cx: &Context<'_>,
    id: u64,
    now: Timestamp,
    late_after_secs: u64,
) -> Result<Vec<Event>, Rejection> {
    let request = request(cx.state, id)?;
    let Some(apply_at) = request.apply_at else { return Ok(Vec::new()) };
    if request.status != RequestStatus::Scheduled || apply_at > now {
        return Ok(Vec::new());
    }
    let stale = conflicts(cx.state, request);
    if !stale.is_empty() {
        return Ok(vec![Event::ChangeRequestSuspended(ChangeRequestSuspended { id, conflicts: stale, invalid: None })]);
    }
    let late = u64::try_from((now.as_micros() - apply_at.as_micros()) / 1_000_000).unwrap_or(0);
    let late_secs = (late > late_after_secs).then_some(late);
    let approvers = request.approvals.iter().map(|a| a.by.clone()).collect();
    match applying(cx, request, approvers, late_secs) {
        Ok(events) => Ok(events),
        // A value this instance cannot open (its key ring lacks a key): another instance, or this one once
        // its ring is complete, can apply it; suspending it would be a verdict on the request, not on the ring.
        Err(rej) if rej.kind == RejectionKind::Sealing => Err(rej),
        Err(rej) => Ok(vec![Event::ChangeRequestSuspended(ChangeRequestSuspended {
            id,
            conflicts: Vec::new(),
            invalid: Some(rej.message),
        })]),
    }
}

/// A direct change made without the approvals the policy asks for, by a user the policy lets bypass them,
/// recorded with what was bypassed.
pub(super) fn bypass(cx: &Context<'_>, by: String, then: Command) -> Result<Vec<Event>, Rejection> {
    let policy = &cx.state.governance().policy;
    if !policy.bypass.contains(&by) {
        return Err(Rejection::forbidden(format!(
            "{by} may not use the emergency bypass: the change policy's bypass list names who may"
        )));
    }
    // The governance commands are how approvals are given: nothing of theirs is bypassed.
    if matches!(
        then,
        Command::ProposeRequest { .. }
            | Command::EditRequest { .. }
            | Command::ApproveRequest { .. }
            | Command::RejectRequest { .. }
            | Command::WithdrawRequest { .. }
            | Command::ApplyDueRequest { .. }
    ) {
        return dispatch(cx, then);
    }
    let events = decide_on(cx, cx.state, then)?;
    let bypassed: Vec<BypassedSubject> = events
        .iter()
        .filter_map(|e| policy.required_for_event(cx.catalog, e))
        .filter(|(_, n)| *n > 0)
        .map(|(subject, approvals)| BypassedSubject { subject, approvals })
        .collect();
    // Recorded only when it let through what the policy would have refused.
    if bypassed.is_empty() {
        return Ok(events);
    }
    let mut out = vec![Event::EmergencyBypassUsed(EmergencyBypassUsed { by, bypassed })];
    out.extend(events);
    Ok(out)
}

/// Refuses events that change something the policy asks approvals for, naming the first.
pub(super) fn check_policy(cx: &Context<'_>, events: &[Event]) -> Result<(), Rejection> {
    let policy = &cx.state.governance().policy;
    if policy.rules.is_empty() {
        return Ok(());
    }
    for event in events {
        if let Some((subject, n)) = policy.required_for_event(cx.catalog, event) {
            if n > 0 {
                return Err(Rejection::approval_required(format!(
                    "{subject} needs {n} approval{} under the change policy: propose it as a change request \
                     (cfgledger request propose), or use the emergency bypass if you may",
                    if n == 1 { "" } else { "s" }
                )));
            }
        }
    }
    Ok(())
}
