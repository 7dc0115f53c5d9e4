//! `cfgledger request ...` and `cfgledger policy show`: change requests and the change policy, on the store
//! or through `--server`, with the same output and exit codes.

use super::{emit, emit_data, Globals, Output};
use crate::error::Error;
use crate::model::{ChangeInput, PolicyDoc, PolicyView, ProposeRequest, RequestList, RequestView, ReviewRequest};
use crate::usecase::block_on;
use crate::usecase::governance::{self, Review};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Propose changes for approval (applied at once when the policy asks none and no --at is given).
    Propose(ProposeArgs),
    /// Replace an open request's changes (its author only): its approvals are withdrawn.
    Edit(EditArgs),
    /// Approve a request (not its author; each approver counts once); the last approval needed applies it.
    Approve(ReviewArgs),
    /// Reject a request (not its author).
    Reject(ReviewArgs),
    /// Withdraw a request (its author).
    Withdraw(ReviewArgs),
    /// List requests, newest first.
    List(ListArgs),
    /// Show one request: its changes, approvals, and whether its base changed.
    Show(ShowArgs),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the change policy (it changes only through a request: `request propose --policy FILE`).
    Show(PolicyShowArgs),
}

/// The changes of a proposal or an edit.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// A setting's new value, as KEY=VALUE (KEY may be namespace:KEY); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A setting's stored value removed; repeatable.
    #[arg(long = "reset", value_name = "KEY")]
    reset: Vec<String>,
    /// An entity deleted, as KIND/NAME; repeatable.
    #[arg(long = "delete", value_name = "KIND/NAME")]
    delete: Vec<String>,
    /// A JSON file of changes: {"changes": [{"op": "set", "key": ..., "value": ...}, {"op": "create", "kind":
    /// ..., "fields": {...}}, ...]} as `POST /admin/requests` takes.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// A JSON file with the change policy's new content: {"rules": [{"scope": ..., "approvals": N}], "bypass": [...]}.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The namespace of bare keys.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Apply it at this time once approved (RFC 3339).
    #[arg(long = "at", value_name = "TIME")]
    apply_at: Option<String>,
    /// Why: required for a proposal, recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    changes: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    id: u64,
    #[command(flatten)]
    changes: ChangeArgs,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    id: u64,
    /// A comment, recorded with the review.
    #[arg(long)]
    comment: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only requests with this status: open, scheduled, suspended, applied, rejected, withdrawn.
    #[arg(long)]
    status: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    id: u64,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf, what: &str) -> Result<T, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {what} {}", path.display()), e))?;
    let value = crate::json::value_from_slice(&bytes)
        .map_err(|e| Error::input(format!("{what} {} is not JSON: {e}", path.display())))?;
    serde_json::from_value(value).map_err(|e| Error::input(format!("{what} {}: {e}", path.display())))
}

/// The body of a proposal or an edit, from the flags: files first, then `--set`, `--reset`, `--delete`.
fn body(args: ChangeArgs) -> Result<ProposeRequest, Error> {
    let mut changes = Vec::new();
    let mut apply_at = args.apply_at;
    if let Some(path) = &args.file {
        let doc: ProposeRequest = read_json(path, "change file")?;
        changes.extend(doc.changes);
        apply_at = apply_at.or(doc.apply_at);
    }
    if let Some(path) = &args.policy {
        let policy: PolicyDoc = read_json(path, "policy file")?;
        changes.push(ChangeInput::Policy { policy });
    }
    for pair in args.set {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            Error::input(format!("--set expects KEY=VALUE; got {:?}", crate::present::terminal(&pair)))
        })?;
        changes.push(ChangeInput::Set {
            key: key.to_string(),
            namespace: args.namespace.clone(),
            value: None,
            text: Some(value.to_string()),
        });
    }
    for key in args.reset {
        changes.push(ChangeInput::Reset { key, namespace: args.namespace.clone() });
    }
    for subject in args.delete {
        let (kind, name) = subject.split_once('/').ok_or_else(|| {
            Error::input(format!("--delete expects KIND/NAME; got {:?}", crate::present::terminal(&subject)))
        })?;
        changes.push(ChangeInput::Delete { kind: kind.to_string(), name: name.to_string() });
    }
    if changes.is_empty() {
        return Err(Error::input("no change given: use --set, --reset, --delete, --file or --policy"));
    }
    Ok(ProposeRequest { changes, apply_at, reason: args.reason })
}

pub fn run(g: &Globals, cmd: RequestCommand) -> Result<(), Error> {
    match cmd {
        RequestCommand::Propose(args) => {
            let output = args.changes.output;
            let body = body(args.changes)?;
            let view = match &g.server {
                Some(server) => server.post_json("/admin/requests", &body)?,
                None => {
                    let ledger = g.open_existing_ledger()?;
                    let ctx = g.context("request propose", body.reason.clone());
                    block_on(governance::propose(&ledger, body, ctx))?
                }
            };
            show(&view, output)
        }
        RequestCommand::Edit(args) => {
            let output = args.changes.output;
            let id = args.id;
            let body = body(args.changes)?;
            let view = match &g.server {
                Some(server) => server.put_json(&format!("/admin/requests/{id}"), &body)?,
                None => {
                    let ledger = g.open_existing_ledger()?;
                    let ctx = g.context("request edit", body.reason.clone());
                    block_on(governance::edit(&ledger, id, body, ctx))?
                }
            };
            show(&view, output)
        }
        RequestCommand::Approve(args) => review(g, args, Review::Approve, "approve"),
        RequestCommand::Reject(args) => review(g, args, Review::Reject, "reject"),
        RequestCommand::Withdraw(args) => review(g, args, Review::Withdraw, "withdraw"),
        RequestCommand::List(args) => {
            let list: RequestList = match &g.server {
                Some(server) => {
                    let query: Vec<(&str, &str)> = args.status.iter().map(|s| ("status", s.as_str())).collect();
                    server.get_pairs_json("/admin/requests", &query)?
                }
                None => governance::list(&g.open_existing_ledger()?, args.status.as_deref())?,
            };
            match args.output {
                Output::Json => emit_data(to_json(&list)?),
                Output::Table if list.requests.is_empty() => emit("no change requests"),
                Output::Table => list.requests.iter().try_for_each(|r| emit(summary(r))),
            }
        }
        RequestCommand::Show(args) => {
            let view: RequestView = match &g.server {
                Some(server) => server.get_pairs_json(&format!("/admin/requests/{}", args.id), &[])?,
                None => governance::get(&g.open_existing_ledger()?, args.id)?,
            };
            show(&view, args.output)
        }
    }
}

fn review(g: &Globals, args: ReviewArgs, review: Review, verb: &str) -> Result<(), Error> {
    let body = ReviewRequest { comment: args.comment };
    let view = match &g.server {
        Some(server) => server.post_json(&format!("/admin/requests/{}/{verb}", args.id), &body)?,
        None => {
            let ledger = g.open_existing_ledger()?;
            block_on(governance::review(&ledger, args.id, review, body, g.context(&format!("request {verb}"), None)))?
        }
    };
    show(&view, args.output)
}

pub fn run_policy(g: &Globals, cmd: PolicyCommand) -> Result<(), Error> {
    let PolicyCommand::Show(args) = cmd;
    let view: PolicyView = match &g.server {
        Some(server) => server.get_pairs_json("/admin/policy", &[])?,
        None => governance::policy(&g.open_existing_ledger()?),
    };
    match args.output {
        Output::Json => emit_data(to_json(&view)?),
        Output::Table => {
            if view.policy.rules.is_empty() {
                emit("no rules: every change applies directly")?;
            }
            for rule in &view.policy.rules {
                emit(format!("{:<40} {} approval(s)", rule.scope, rule.approvals))?;
            }
            let bypass =
                if view.policy.bypass.is_empty() { "nobody".to_string() } else { view.policy.bypass.join(", ") };
            emit(format!("emergency bypass: {bypass}"))?;
            emit(format!(
                "a change of the policy needs {} approval(s) (version {})",
                view.policy_approvals, view.version
            ))
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal("cannot encode the answer", e))
}

/// One line per request: id, status, approvals, author, reason.
fn summary(r: &RequestView) -> String {
    let stale = if r.stale { " STALE" } else { "" };
    format!(
        "#{} {}{stale} ({}/{} approvals) by {}: {} [{} change(s)]",
        r.id,
        r.status,
        r.approvals.len(),
        r.required_approvals,
        r.author,
        r.reason,
        r.changes.len()
    )
}

fn show(r: &RequestView, output: Output) -> Result<(), Error> {
    if output == Output::Json {
        return emit_data(to_json(r)?);
    }
    emit(format!(
        "change request {}: {} ({} of {} approvals)",
        r.id,
        r.status,
        r.approvals.len(),
        r.required_approvals
    ))?;
    emit(format!(
        "  author: {}, proposed {} (seq {}), revision {}",
        r.author, r.proposed_at, r.proposed_seq, r.revision
    ))?;
    emit(format!("  reason: {}", r.reason))?;
    if let Some(at) = &r.apply_at {
        emit(format!("  apply at: {at}"))?;
    }
    emit("  changes:")?;
    for c in &r.changes {
        let detail = match c.op.as_str() {
            "set" => format!("{} -> {}", c.current, c.value),
            "reset" => format!("{} -> (environment or default)", c.current),
            "create" | "update" => format!("fields {}", c.fields.join(", ")),
            "policy" => c.value.to_string(),
            _ => String::new(),
        };
        emit(format!("    {} {}: {detail} (needs {})", c.op, c.subject, c.approvals))?;
    }
    for a in &r.approvals {
        let comment = a.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
        emit(format!("  approved by {} at {} (seq {}){comment}", a.by, a.at, a.seq))?;
    }
    if !r.conflicts.is_empty() {
        let label = if r.stale { "STALE: changed since its base" } else { "changed since its base" };
        for c in &r.conflicts {
            emit(format!("  {label}: {} (version {} -> {})", c.subject, c.base_version, c.current_version))?;
        }
    }
    if let Some(why) = &r.suspended_reason {
        emit(format!("  suspended: {why}"))?;
    }
    if let Some(a) = &r.applied {
        let late = a.late_secs.map(|s| format!(", LATE by {s}s")).unwrap_or_default();
        emit(format!("  applied at {} (seq {}, batch {}){late}", a.at, a.seq, a.batch))?;
    }
    if let Some(by) = &r.closed_by {
        let comment = r.closed_comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
        emit(format!("  {} by {by}{comment}", r.status))?;
    }
    Ok(())
}
