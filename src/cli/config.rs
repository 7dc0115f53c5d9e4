//! `cfgledger config list|get|set|reset|export|import`, on the store (the default) or, with `--server URL`,
//! through a running server's admin API (`remote.rs`). Both modes produce the same JSON shapes (the API's
//! items, list body, export document and import plan), and one set of functions below prints them, so a
//! command prints the same lines and exits with the same code whichever way it ran.

use super::remote::{segment, Server};
use super::{emit, Globals, Output};
use crate::error::Error;
use crate::{present, transfer};
use cfgledger_events::value::to_text;
use cfgledger_events::{Cause, Command, Input, RejectionKind};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List every key with its effective value and where it came from.
    List(ListArgs),
    /// Show one key.
    Get(GetArgs),
    /// Change a key.
    Set(SetArgs),
    /// Remove the store's value of a key, so the environment or the default applies again.
    Reset(ResetArgs),
    /// Print the settings in force as a JSON document (sensitive keys left out), or write it to a file.
    Export(ExportArgs),
    /// Apply a settings document (from `export`) as one batch, after printing the plan.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    category: Option<String>,
    /// The settings as they were at a point: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    as_of: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GetOutput {
    /// The value alone.
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    key: String,
    /// The key as it was at a point: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    as_of: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: GetOutput,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    key: String,
    value: String,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    key: String,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write the document to FILE (and print a one-line summary) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The document to import (`-` for standard input).
    file: PathBuf,
    /// Print the plan and apply nothing.
    #[arg(long)]
    dry_run: bool,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

/// The refusal of an import that holds an invalid entry, in both modes (the API's 422 says the same).
const INVALID_IMPORT: &str = "the import holds invalid entries; nothing was applied";

pub fn run(g: &Globals, cmd: ConfigCommand) -> Result<(), Error> {
    match &g.server {
        Some(server) => remote(server, cmd),
        None => local(g, cmd),
    }
}

/// The commands on the store itself.
fn local(g: &Globals, cmd: ConfigCommand) -> Result<(), Error> {
    // An import reads its document before the store is opened (or created): a missing file changes nothing.
    let doc = match &cmd {
        ConfigCommand::Import(args) => Some(read_document(&args.file)?),
        _ => None,
    };
    let ledger = g.open()?;
    let as_of = match &cmd {
        ConfigCommand::List(ListArgs { as_of: Some(p), .. }) | ConfigCommand::Get(GetArgs { as_of: Some(p), .. }) => {
            Some(p.clone())
        }
        _ => None,
    };
    let snap = match &as_of {
        Some(point) => ledger.snapshot_at(ledger.point(point)?.seq)?,
        None => ledger.snapshot(),
    };
    let catalog = ledger.catalog();
    let item_of = |key: &str| {
        let current = if as_of.is_some() { snap.clone() } else { ledger.snapshot() };
        match (catalog.get(key), current.view(key)) {
            (Some(spec), Some(view)) => {
                let mut item = present::item(spec, view);
                if as_of.is_some() {
                    item["as_of"] = json!({"seq": current.head.seq, "time": current.head_time.to_string()});
                }
                Ok(item)
            }
            _ => Err(Error::rejected(RejectionKind::UnknownKey, format!("unknown key {key}"))),
        }
    };
    match cmd {
        ConfigCommand::List(args) => {
            if let Some(c) = &args.category {
                let known: Vec<&str> = catalog.specs().iter().map(|s| s.category.as_str()).collect();
                check_category(c, known)?;
            }
            let items: Vec<Value> = catalog
                .specs()
                .iter()
                .filter(|s| args.category.as_ref().is_none_or(|c| &s.category == c))
                .filter_map(|s| snap.view(&s.key).map(|v| present::item(s, v)))
                .collect();
            let mut body = json!({"items": items, "head": snap.head.seq});
            if as_of.is_some() {
                body["as_of"] = json!({"seq": snap.head.seq, "time": snap.head_time.to_string()});
            }
            show_list(&body, args.output)
        }
        ConfigCommand::Get(args) => show_item(&item_of(&args.key)?, args.output),
        ConfigCommand::Set(args) => {
            let ctx = g.context("config set", args.reason);
            let cmd = Command::Set { key: args.key.clone(), value: Input::Text(args.value) };
            let outcome = ledger.execute(cmd, ctx)?;
            report_change(&args.key, &item_of(&args.key)?, outcome.seqs.map(|(_, last)| last))
        }
        ConfigCommand::Reset(args) => {
            let ctx = g.context("config reset", args.reason);
            let outcome = ledger.execute(Command::Reset { key: args.key.clone() }, ctx)?;
            report_change(&args.key, &item_of(&args.key)?, outcome.seqs.map(|(_, last)| last))
        }
        ConfigCommand::Export(args) => {
            show_export(&transfer::export_document(&ledger, &g.actor, ledger.now()), args.out.as_deref())
        }
        ConfigCommand::Import(args) => {
            let req = transfer::parse_document(&doc.unwrap_or_default(), &ledger)?;
            let plan = transfer::plan(&ledger, &req);
            let mut body = transfer::plan_json(&plan);
            if transfer::has_invalid(&plan) {
                show_plan(&body)?;
                return Err(Error::rejected(RejectionKind::Invalid, INVALID_IMPORT.to_string()));
            }
            body["dry_run"] = Value::Bool(args.dry_run);
            if args.dry_run {
                body["applied"] = Value::Bool(false);
                body["head"] = snap.head.seq.into();
            } else {
                let mut ctx = g.context("config import", args.reason);
                ctx.cause = Cause::Import { digest: req.digest.clone(), via: "config import".to_string() };
                let outcome = ledger.execute(transfer::command(req), ctx)?;
                body["applied"] = Value::Bool(outcome.changed());
                body["result"] = transfer::applied_summary(&outcome).unwrap_or(Value::Null);
                body["batch"] = outcome.batch_id.map_or(Value::Null, Value::String);
                body["head"] = outcome.head.seq.into();
            }
            show_import(&body)
        }
    }
}

/// The same commands through a server's admin API.
fn remote(server: &Server, cmd: ConfigCommand) -> Result<(), Error> {
    let key_path = |key: &str| format!("/admin/config/{}", segment(key));
    match cmd {
        ConfigCommand::List(args) => {
            let mut query: Vec<(&str, &str)> = args.category.as_deref().map(|c| ("category", c)).into_iter().collect();
            if let Some(point) = args.as_of.as_deref() {
                query.push(("as_of", point));
            }
            let body = server.get("/admin/config", &query)?;
            if let Some(c) = &args.category {
                // The API answers an unknown category with an empty list; the local mode names the known ones.
                if body["items"].as_array().is_none_or(Vec::is_empty) {
                    let all = server.get("/admin/config", &[])?;
                    let items = all["items"].as_array().cloned().unwrap_or_default();
                    check_category(c, items.iter().filter_map(|i| i["category"].as_str()).collect())?;
                }
            }
            show_list(&body, args.output)
        }
        ConfigCommand::Get(args) => {
            let query: Vec<(&str, &str)> = args.as_of.as_deref().map(|p| ("as_of", p)).into_iter().collect();
            show_item(&server.get(&key_path(&args.key), &query)?, args.output)
        }
        ConfigCommand::Set(args) => {
            let before = server.get(&key_path(&args.key), &[])?;
            // Sent as text, so that the server parses it exactly as the local mode does.
            let mut body = json!({"text": args.value});
            if let Some(reason) = args.reason {
                body["reason"] = Value::String(reason);
            }
            let after = server.put(&key_path(&args.key), &body)?;
            report_change(&args.key, &after, changed_version(&before, &after))
        }
        ConfigCommand::Reset(args) => {
            let before = server.get(&key_path(&args.key), &[])?;
            let query: Vec<(&str, &str)> = args.reason.as_deref().map(|r| ("reason", r)).into_iter().collect();
            let after = server.delete(&key_path(&args.key), &query)?;
            report_change(&args.key, &after, changed_version(&before, &after))
        }
        ConfigCommand::Export(args) => show_export(&server.get("/admin/config/export", &[])?, args.out.as_deref()),
        ConfigCommand::Import(args) => {
            let doc = read_document(&args.file)?;
            let mut query = Vec::new();
            if args.dry_run {
                query.push(("dry_run", "true"));
            }
            if let Some(reason) = args.reason.as_deref() {
                query.push(("reason", reason));
            }
            match server.post("/admin/config/import", &query, &doc)? {
                Ok(body) => show_import(&body),
                Err(failure) => {
                    if failure.status == 422 && failure.details.get("plan").is_some() {
                        show_plan(&failure.details)?;
                    }
                    Err(server.error(failure))
                }
            }
        }
    }
}

/// The key's new version when a write changed it: the seq of the event that did, as the local mode reports.
fn changed_version(before: &Value, after: &Value) -> Option<u64> {
    after["version"].as_u64().filter(|v| Some(*v) != before["version"].as_u64())
}

/// Refuses a category the catalog does not have, naming the ones it has (in catalog order).
fn check_category(category: &str, mut known: Vec<&str>) -> Result<(), Error> {
    if known.contains(&category) {
        return Ok(());
    }
    known.dedup();
    Err(Error::rejected(
        RejectionKind::Invalid,
        format!("unknown category {category}; categories are {}", known.join(", ")),
    ))
}

fn show_list(body: &Value, output: Output) -> Result<(), Error> {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    match output {
        Output::Json => {
            let mut out = json!({"items": items, "head": body["head"]});
            if !body["as_of"].is_null() {
                out["as_of"] = body["as_of"].clone();
            }
            emit(out)
        }
        Output::Table => print_settings(items),
    }
}

fn show_item(item: &Value, output: GetOutput) -> Result<(), Error> {
    match output {
        GetOutput::Json => emit(item),
        GetOutput::Text => emit(text_of(&item["value"])),
    }
}

/// `KEY = VALUE (seq N)` after a change, `KEY unchanged: it is already VALUE` when nothing was appended.
/// The value is the one just stored: a running server still shows a restart-required key's boot value, and
/// the stored one as pending.
fn report_change(key: &str, item: &Value, seq: Option<u64>) -> Result<(), Error> {
    let stored = if item["pending_restart"] == true { &item["pending_value"] } else { &item["value"] };
    let shown = text_of(stored);
    match seq {
        Some(seq) => emit(format!("{key} = {shown} (seq {seq})")),
        None => emit(format!("{key} unchanged: it is already {shown}")),
    }
}

/// The document on standard output, or written to `out` with `exported N settings to FILE (seq S)`.
fn show_export(doc: &Value, out: Option<&Path>) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Error::internal("cannot encode the export", e))?;
    let Some(path) = out else {
        return emit(text);
    };
    std::fs::write(path, format!("{text}\n")).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    let count = doc["settings"].as_object().map_or(0, |s| s.len());
    emit(format!("exported {count} settings to {} (seq {})", path.display(), text_of(&doc["source"]["seq"])))
}

/// The import document in `file` (`-`: standard input), which must be JSON.
fn read_document(file: &Path) -> Result<Value, Error> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io(format!("cannot read standard input"), e))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::input_from(format!("cannot read {}", file.display()), e))?
    };
    serde_json::from_str(&text).map_err(|e| Error::input(format!("{} is not a JSON document: {e}", file.display())))
}

/// The plan, its summary, and what happened: `dry run: nothing applied`, `applied as batch B (seq N)`,
/// `nothing to apply; N locked key(s) refused, recorded as batch B (seq N)` or `nothing to apply`. What
/// happened is read from the write's own record (`result`), not from the plan made before it.
fn show_import(body: &Value) -> Result<(), Error> {
    show_plan(body)?;
    let count = |field: &str| body["result"][field].as_array().map_or(0, Vec::len);
    if body["dry_run"] == true {
        emit("dry run: nothing applied")
    } else if body["applied"] == true && count("created") + count("updated") > 0 {
        emit(format!("applied as batch {} (seq {})", text_of(&body["batch"]), text_of(&body["head"])))
    } else if body["applied"] == true {
        emit(format!(
            "nothing to apply; {} locked key(s) refused, recorded as batch {} (seq {})",
            count("locked"),
            text_of(&body["batch"]),
            text_of(&body["head"])
        ))
    } else {
        emit("nothing to apply")
    }
}

/// The plan as a table (KEY, ACTION, CURRENT, NEW, NOTE) and a line of counts and conflicts.
fn show_plan(body: &Value) -> Result<(), Error> {
    let cell = |v: &Value| if v.is_null() { "-".to_string() } else { text_of(v) };
    let rows: Vec<Vec<String>> = body["plan"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            vec![
                text_of(&p["key"]),
                text_of(&p["action"]),
                cell(&p["current"]),
                cell(&p["value"]),
                text_of(&p["message"]),
            ]
        })
        .collect();
    print_table(&["KEY", "ACTION", "CURRENT", "NEW", "NOTE"], &rows)?;
    let summary = &body["summary"];
    let counts: Vec<String> = ["create", "update", "unchanged", "locked", "invalid"]
        .iter()
        .map(|action| format!("{} {action}", summary[action].as_u64().unwrap_or(0)))
        .collect();
    let conflicts: Vec<String> = body["conflicts"].as_array().into_iter().flatten().map(text_of).collect();
    let conflicts = if conflicts.is_empty() { "none".to_string() } else { conflicts.join(", ") };
    emit(format!("plan: {}; conflicts: {conflicts}", counts.join(", ")))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => to_text(other),
    }
}

fn print_settings(items: &[Value]) -> Result<(), Error> {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            let mut flags = String::new();
            for (field, letter) in [("locked", 'L'), ("sensitive", 'S'), ("pending_restart", 'P')] {
                flags.push(if i[field].as_bool() == Some(true) { letter } else { '-' });
            }
            vec![
                text_of(&i["key"]),
                text_of(&i["value"]),
                text_of(&i["source"]),
                format!("{}/{}", text_of(&i["type"]), text_of(&i["reload"])),
                text_of(&i["category"]),
                flags,
            ]
        })
        .collect();
    print_table(&["KEY", "VALUE", "SOURCE", "TYPE/RELOAD", "CATEGORY", "FLAGS"], &rows)?;
    emit("(flags: L locked, S sensitive, P pending restart)")
}

/// Column cells longer than this are cut (with `...`), except in the last column, which holds notes.
const CELL_MAX: usize = 48;

/// Left-aligned columns two spaces apart, under a header row.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Error> {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count().min(CELL_MAX));
        }
    }
    let last = header.len().saturating_sub(1);
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(n, (c, &w))| {
                let c: String = if n < last && c.chars().count() > CELL_MAX {
                    c.chars().take(CELL_MAX - 3).chain("...".chars()).collect()
                } else {
                    c.clone()
                };
                format!("{c:<w$}")
            })
            .collect();
        emit(cells.join("  ").trim_end())?;
    }
    Ok(())
}
