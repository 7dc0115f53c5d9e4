//! The time-travel commands: `audit` (the trail, filtered and paged), `history KEY` (every value a key or an
//! entity has had), `diff --from --to`, `rollback --to` and `revert BATCH`. Each works on the store or, with
//! `--server`, through the admin API, and prints the same either way: both produce the API's JSON shapes,
//! which are printed as JSON or as a table.

use super::remote::{segment, Server};
use super::{emit, Globals};
use crate::error::Error;
use crate::timetravel::{self, AuditFilter};
use cfgledger_events::Cause;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TrailOutput {
    #[default]
    Table,
    Json,
    Csv,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// A key, or KIND/NAME; a trailing * matches a prefix (LOG_*, tools/*).
    #[arg(long)]
    key: Option<String>,
    /// Only changes made by this actor (the API's `actor` filter; the global --actor names who you are).
    #[arg(long = "by", value_name = "ACTOR")]
    by: Option<String>,
    /// Actions, comma-separated: set, reset, seeded, rejected, generated, import, resource_created, ...
    #[arg(long)]
    action: Option<String>,
    /// cli, api, ui or system.
    #[arg(long)]
    source: Option<String>,
    #[arg(long)]
    batch: Option<String>,
    /// RFC 3339, or a duration before now (24h, 7d).
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    /// Only refused attempts (locked keys).
    #[arg(long)]
    rejected: bool,
    /// The next_cursor a previous page printed.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    output: TrailOutput,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A setting key, or KIND/NAME for an entity (tools/search).
    key: String,
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    output: TrailOutput,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// RFC 3339, a duration before now (24h) or seq:N.
    #[arg(long)]
    from: String,
    /// The same forms; now when left out.
    #[arg(long)]
    to: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: super::Output,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The point to return to: RFC 3339, a duration before now (24h) or seq:N.
    #[arg(long)]
    to: String,
    /// Only these keys and entities (KIND/NAME), comma-separated.
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply only if the log's head is still this seq (the head a reviewed dry run printed).
    #[arg(long)]
    expected_head: Option<u64>,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: super::Output,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The batch id to undo (as the audit trail shows it).
    batch: String,
    /// Undo it even though later changes touched the same keys (they are undone too).
    #[arg(long)]
    force: bool,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: super::Output,
}

pub fn audit(g: &Globals, args: AuditArgs) -> Result<(), Error> {
    let body = match &g.server {
        Some(server) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            for (name, value) in [
                ("key", &args.key),
                ("actor", &args.by),
                ("action", &args.action),
                ("source", &args.source),
                ("batch", &args.batch),
                ("since", &args.since),
                ("until", &args.until),
                ("cursor", &args.cursor),
            ] {
                if let Some(v) = value {
                    query.push((name, v.clone()));
                }
            }
            if args.rejected {
                query.push(("rejected", "true".into()));
            }
            if let Some(limit) = args.limit {
                query.push(("limit", limit.to_string()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            server.get("/admin/config/audit", &query)?
        }
        None => {
            let ledger = g.open()?;
            let filter = AuditFilter {
                key: args.key,
                actor: args.by,
                action: args.action,
                source: args.source,
                batch: args.batch,
                since: args.since,
                until: args.until,
                rejected: args.rejected,
                cursor: args.cursor,
                limit: args.limit,
            };
            page_json(timetravel::audit(&ledger, &filter)?)
        }
    };
    print_trail(&body, args.output)
}

fn page_json(page: timetravel::AuditPage) -> Value {
    json!({"entries": page.entries, "next_cursor": page.next_cursor, "head": page.head})
}

pub fn history(g: &Globals, args: HistoryArgs) -> Result<(), Error> {
    let body = match &g.server {
        Some(server) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(c) = &args.cursor {
                query.push(("cursor", c.clone()));
            }
            if let Some(l) = args.limit {
                query.push(("limit", l.to_string()));
            }
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let path = match args.key.split_once('/') {
                Some((kind, name)) => format!("/{kind}/{}/history", segment(name)),
                None => format!("/admin/config/{}/history", segment(&args.key)),
            };
            server.get(&path, &query)?
        }
        None => {
            let ledger = g.open()?;
            page_json(timetravel::history(&ledger, &args.key, args.cursor.as_deref(), args.limit)?)
        }
    };
    print_trail(&body, args.output)
}

/// A page of the trail: a table (seq, time, action, key, old → new, actor, source, reason, batch), JSON, CSV
/// or JSON lines. The next page's cursor goes to standard error, so the output stays one document.
fn print_trail(body: &Value, output: TrailOutput) -> Result<(), Error> {
    let entries = body["entries"].as_array().cloned().unwrap_or_default();
    match output {
        TrailOutput::Json => return emit(body),
        TrailOutput::Csv => emit(timetravel::csv(&entries).trim_end())?,
        TrailOutput::Jsonl => {
            for e in &entries {
                emit(e)?;
            }
        }
        TrailOutput::Table => {
            let text = |v: &Value| match v {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            emit(format!(
                "{:<6} {:<27} {:<17} {:<28} {:<30} {:<12} {:<7} {:<32} REASON",
                "SEQ", "TIME", "ACTION", "KEY", "CHANGE", "ACTOR", "SOURCE", "BATCH"
            ))?;
            for e in &entries {
                let change = match (e["previous"].is_null(), e["value"].is_null()) {
                    (true, true) => "-".to_string(),
                    _ if e["value"].is_object() => "(entity)".to_string(),
                    _ => format!("{} -> {}", text(&e["previous"]), text(&e["value"])),
                };
                emit(format!(
                    "{:<6} {:<27} {:<17} {:<28} {:<30} {:<12} {:<7} {:<32} {}",
                    text(&e["seq"]),
                    text(&e["time"]),
                    text(&e["action"]),
                    text(&e["key"]),
                    change,
                    text(&e["actor"]),
                    text(&e["source"]),
                    text(&e["batch"]),
                    text(&e["reason"]),
                ))?;
            }
        }
    }
    if let Some(cursor) = body["next_cursor"].as_str() {
        eprintln!("more: --cursor {cursor}");
    }
    Ok(())
}

pub fn diff(g: &Globals, args: DiffArgs) -> Result<(), Error> {
    let body = match &g.server {
        Some(server) => {
            let mut query = vec![("from", args.from.as_str())];
            if let Some(to) = args.to.as_deref() {
                query.push(("to", to));
            }
            server.get("/admin/config/diff", &query)?
        }
        None => timetravel::diff(&g.open()?, &args.from, args.to.as_deref())?,
    };
    if args.output == super::Output::Json {
        return emit(body);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    emit(format!("diff seq {} -> seq {}", body["from"]["seq"], body["to"]["seq"]))?;
    for (mark, list) in [("+", "added"), ("-", "removed"), ("~", "changed")] {
        for line in body[list].as_array().into_iter().flatten() {
            let what = match (line["changed"].as_array(), mark) {
                (Some(fields), _) => format!("fields {}", fields.iter().map(text).collect::<Vec<_>>().join(", ")),
                (None, "+") => text(&line["new"]),
                (None, "-") => text(&line["old"]),
                (None, _) => format!("{} -> {}", text(&line["old"]), text(&line["new"])),
            };
            emit(format!("{mark} {} {what}", text(&line["key"])))?;
        }
    }
    Ok(())
}

pub fn rollback(g: &Globals, args: RollbackArgs) -> Result<(), Error> {
    let body = match &g.server {
        Some(server) => {
            let mut body = json!({"to": args.to, "dry_run": args.dry_run});
            if let Some(keys) = &args.keys {
                body["keys"] = json!(keys);
            }
            if let Some(h) = args.expected_head {
                body["expected_head"] = json!(h);
            }
            if let Some(r) = &args.reason {
                body["reason"] = json!(r);
            }
            post(server, "/admin/config/rollback", &body)?
        }
        None => {
            let ledger = g.open()?;
            let point = ledger.point(&args.to)?;
            let only = args.keys.clone().map(|k| k.into_iter().collect::<BTreeSet<_>>());
            let req = timetravel::rollback_request(&ledger, point.seq, only, args.expected_head)?;
            let plan = timetravel::plan_json(&ledger, &req)?;
            let mut ctx = g.context("rollback", args.reason.clone());
            ctx.cause = Cause::Rollback { to_seq: point.seq, to: args.to.clone(), via: "rollback".into() };
            apply_local(&ledger, cfgledger_events::Command::Rollback(req), plan, args.dry_run, ctx)?
        }
    };
    print_plan(&body, args.output)
}

pub fn revert(g: &Globals, args: RevertArgs) -> Result<(), Error> {
    let body = match &g.server {
        Some(server) => {
            let mut body = json!({"batch": args.batch, "force": args.force, "dry_run": args.dry_run});
            if let Some(r) = &args.reason {
                body["reason"] = json!(r);
            }
            post(server, "/admin/config/revert", &body)?
        }
        None => {
            let ledger = g.open()?;
            let (req, plan) = timetravel::revert_request(&ledger, &args.batch, args.force)?;
            let mut ctx = g.context("revert", args.reason.clone());
            ctx.cause = Cause::Revert { batch: args.batch.clone(), via: "revert".into() };
            apply_local(&ledger, cfgledger_events::Command::Rollback(req), plan, args.dry_run, ctx)?
        }
    };
    print_plan(&body, args.output)
}

fn post(server: &Server, path: &str, body: &Value) -> Result<Value, Error> {
    server.post(path, &[], body)?.map_err(|f| server.error(f))
}

fn apply_local(
    ledger: &crate::ledger::Ledger,
    cmd: cfgledger_events::Command,
    mut plan: Value,
    dry_run: bool,
    ctx: crate::ledger::WriteContext,
) -> Result<Value, Error> {
    plan["dry_run"] = Value::Bool(dry_run);
    if dry_run {
        return Ok(plan);
    }
    let outcome = ledger.execute(cmd, ctx)?;
    plan["batch"] = outcome.batch_id.clone().map_or(Value::Null, Value::String);
    plan["status"] = Value::String(if outcome.changed() { "completed" } else { "nothing_to_do" }.into());
    plan["head"] = outcome.head.seq.into();
    Ok(plan)
}

/// One step of a rollback or clone plan: action, subject, the fields that change or current -> value it
/// returns to, the restart flag and the plan's message.
pub(super) fn step_line(step: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut line = format!("{:<8} {}", text(&step["action"]), text(&step["subject"]));
    if let Some(fields) = step["changed"].as_array() {
        line.push_str(&format!("  ({})", fields.iter().map(text).collect::<Vec<_>>().join(", ")));
    } else if !(step["current"].is_null() && step["value"].is_null()) {
        line.push_str(&format!("  {} -> {}", text(&step["current"]), text(&step["value"])));
    }
    if step["restart_required"] == json!(true) {
        line.push_str("  [restart required]");
    }
    if let Some(m) = step["message"].as_str() {
        line.push_str(&format!("  ({m})"));
    }
    line
}

/// A rollback's plan: one line per key or entity (action, subject, current -> value it returns to), the
/// locked keys left alone, the restart-required ones, and what was done.
fn print_plan(body: &Value, output: super::Output) -> Result<(), Error> {
    if output == super::Output::Json {
        return emit(body);
    }
    for step in body["steps"].as_array().into_iter().flatten() {
        emit(step_line(step))?;
    }
    let c = &body["counts"];
    emit(format!(
        "plan to seq {}: {} set, {} reset, {} create, {} update, {} delete, {} locked (left alone), {} invalid",
        body["to"]["seq"], c["set"], c["reset"], c["create"], c["update"], c["delete"], c["locked"], c["invalid"]
    ))?;
    match (body["dry_run"].as_bool(), body["batch"].as_str()) {
        (Some(true), _) => emit(format!("dry run at head {}: nothing applied", body["head"])),
        (_, Some(batch)) => emit(format!("applied as batch {batch} (seq {})", body["head"])),
        _ => emit("nothing to change: the store already holds that state"),
    }
}
