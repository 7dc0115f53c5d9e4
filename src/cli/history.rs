//! The time-travel commands: `audit` (the trail, filtered and paged), `history KEY` (every value a key or an
//! entity has had), `diff --from --to`, `rollback --to` and `revert BATCH`. Each works on the store or, with
//! `--server`, through the admin API, and prints the same either way: both modes produce the same typed
//! reports (`crate::model`), printed as JSON or as a table.

use super::remote::segment;
use super::{emit, emit_data, Globals};
use crate::error::Error;
use crate::model::{
    AuditEntry, AuditFilter, AuditPage, AuditResource, Diff, DiffLine, DiffQuery, PageQuery, PlanStep, RevertBody,
    RollbackBody, RollbackReport,
};
use crate::usecase::timetravel::{self, Via};
use cfgledger_events::event::MASK;
use clap::{Args, ValueEnum};
use serde_json::Value;

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
    /// The settings' namespace: mcpgateway (the default for a key), cfgledger, another one, or * for all.
    /// Without --key, only that namespace's settings.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// A key (or namespace:KEY), or KIND/NAME; a trailing * matches a prefix (LOG_*, tools/*).
    #[arg(long)]
    key: Option<String>,
    /// Only changes made by this actor (--by is the same flag). Who you are is `cfgledger --actor NAME`,
    /// before the command.
    #[arg(long = "actor", visible_alias = "by", value_name = "ACTOR")]
    actor: Option<String>,
    /// Actions, comma-separated: set, reset, seeded, rejected, generated, import, resource_created, ...
    #[arg(long)]
    action: Option<String>,
    /// cli, api, ui or system.
    #[arg(long)]
    source: Option<String>,
    /// Only the changes of this batch (its whole id, as the trail shows it).
    #[arg(long)]
    batch: Option<String>,
    /// RFC 3339, or a duration before now (24h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Only changes up to this point: RFC 3339, or a duration before now (24h, 7d).
    #[arg(long)]
    until: Option<String>,
    /// Only refused attempts (locked keys).
    #[arg(long)]
    rejected: bool,
    /// The next_cursor a previous page printed.
    #[arg(long)]
    cursor: Option<String>,
    /// Rows per page, 1 to 1000 (default 50).
    #[arg(long)]
    limit: Option<usize>,
    /// How to print the page: a table, JSON, CSV or JSON lines.
    #[arg(long, value_enum, default_value_t)]
    output: TrailOutput,
}

impl AuditArgs {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            namespace: self.namespace.clone(),
            key: self.key.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            source: self.source.clone(),
            batch: self.batch.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            rejected: self.rejected,
            cursor: self.cursor.clone(),
            before: None,
            limit: self.limit,
            format: None,
        }
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A setting key (or namespace:KEY), or KIND/NAME for an entity (tools/search).
    key: String,
    /// The key's namespace (default mcpgateway).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The next_cursor a previous page printed.
    #[arg(long)]
    cursor: Option<String>,
    /// Rows per page, 1 to 1000 (default 50).
    #[arg(long)]
    limit: Option<usize>,
    /// How to print the page: a table, JSON, CSV or JSON lines.
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
    /// Only this namespace's settings (mcpgateway, cfgledger, ...).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// How to print the difference: a table or JSON.
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
    /// Only this namespace's settings (with --keys: the namespace of their bare keys).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply only if the log's head is still this seq (the head a reviewed dry run printed).
    #[arg(long)]
    expected_head: Option<u64>,
    /// Why: recorded with the batch in the audit trail.
    #[arg(long)]
    reason: Option<String>,
    /// How to print the plan: a table or JSON.
    #[arg(long, value_enum, default_value_t)]
    output: super::Output,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// The batch to undo: its id as the audit trail shows it, or 4 or more of its first or last hex digits
    /// (the web UI shows its last 8), as long as they name one batch.
    batch: String,
    /// Undo it even though later changes touched the same keys (they are undone too).
    #[arg(long)]
    force: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Why: recorded with the batch in the audit trail.
    #[arg(long)]
    reason: Option<String>,
    /// How to print the plan: a table or JSON.
    #[arg(long, value_enum, default_value_t)]
    output: super::Output,
}

pub fn audit(g: &Globals, args: AuditArgs) -> Result<(), Error> {
    let filter = args.filter();
    let page = match &g.server {
        Some(server) => server.get_json("/admin/config/audit", &filter)?,
        None => timetravel::audit(&g.open()?, &filter)?,
    };
    print_trail(&page, args.output)
}

pub fn history(g: &Globals, mut args: HistoryArgs) -> Result<(), Error> {
    if let (Some(ns), false) = (&args.namespace, args.key.contains('/')) {
        args.key = cfgledger_events::namespace::qualify(Some(ns), &args.key);
    }
    let query = PageQuery { cursor: args.cursor.clone(), limit: args.limit };
    let page: AuditPage = match &g.server {
        Some(server) => {
            let path = match args.key.split_once('/') {
                Some((kind, name)) => format!("/{kind}/{}/history", segment(name)),
                None => format!("/admin/config/{}/history", segment(&args.key)),
            };
            server.get_json(&path, &query)?
        }
        None => timetravel::history(&g.open()?, &args.key, &query)?,
    };
    print_trail(&page, args.output)
}

/// A page of the trail: a table (seq, time, action, key, change, actor, source, batch, reason), JSON, CSV or
/// JSON lines. The next page's cursor goes to standard error, so the output stays one document.
fn print_trail(page: &AuditPage, output: TrailOutput) -> Result<(), Error> {
    match output {
        TrailOutput::Json => return emit_data(json_text(page)?),
        // CSV is data for a program; on a terminal, a person reads it, so its rows are escaped as text.
        TrailOutput::Csv if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            timetravel::csv(&page.entries).lines().try_for_each(emit)?
        }
        TrailOutput::Csv => emit_data(timetravel::csv(&page.entries).trim_end())?,
        TrailOutput::Jsonl => {
            for e in &page.entries {
                emit_data(serde_json::to_string(e).map_err(|e| Error::internal("an audit entry as JSON", e))?)?;
            }
        }
        TrailOutput::Table => {
            let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
            emit(format!(
                "{:<6} {:<27} {:<17} {:<28} {:<30} {:<12} {:<7} {:<32} REASON",
                "SEQ", "TIME", "ACTION", "KEY", "CHANGE", "ACTOR", "SOURCE", "BATCH"
            ))?;
            for e in &page.entries {
                // A setting is shown as it is named (`namespace:KEY` outside the default namespace).
                let key = match (&e.namespace, &e.key) {
                    (Some(ns), Some(key)) => Some(cfgledger_events::namespace::named(ns, key)),
                    _ => e.key.clone(),
                };
                emit(format!(
                    "{:<6} {:<27} {:<17} {:<28} {:<30} {:<12} {:<7} {:<32} {}",
                    e.seq,
                    e.time,
                    e.action,
                    opt(&key),
                    change(e),
                    e.actor,
                    e.source,
                    e.batch,
                    opt(&e.reason),
                ))?;
            }
        }
    }
    if let Some(cursor) = &page.next_cursor {
        eprintln!("more: --cursor {cursor}");
    }
    Ok(())
}

fn json_text(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal("a report as JSON", e))
}

/// A value as a cell: text as it is, `-` for none, other JSON as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What an entry changed: `old -> new` for a setting, the fields an entity event set for an entity.
fn change(e: &AuditEntry) -> String {
    match &e.resource {
        Some(resource) => entity_change(&e.value, resource),
        None if e.previous.is_null() && e.value.is_null() => "-".to_string(),
        None => format!("{} -> {}", text(&e.previous), text(&e.value)),
    }
}

/// The fields an entity event set: `name=value` when the entry carries the entity's state (its history),
/// else the field names; credentials masked.
fn entity_change(state: &Value, resource: &AuditResource) -> String {
    let Some(fields) = &resource.changed else {
        return "(deleted)".to_string();
    };
    let shown: Vec<String> = match state.as_object() {
        Some(state) => fields
            .iter()
            .map(|f| match state.get(f) {
                Some(v) => format!("{f}={}", masked_field(f, v)),
                None => format!("{f} removed"),
            })
            .collect(),
        None => fields.clone(),
    };
    if shown.is_empty() {
        "-".to_string()
    } else {
        shown.join(", ")
    }
}

/// An entity's field as it may be printed: credentials (sealed values, `auth_*` secrets) as the mask.
fn masked_field(name: &str, v: &Value) -> String {
    let sealed = match v {
        Value::String(s) => s.starts_with("cfgl1:") || s.starts_with("cfgl2:"),
        Value::Object(m) => m.contains_key("sealed"),
        _ => false,
    };
    if sealed || matches!(name, "auth_value" | "auth_password" | "auth_token" | "auth_header_value" | "auth_headers") {
        MASK.to_string()
    } else {
        text(v)
    }
}

pub fn diff(g: &Globals, args: DiffArgs) -> Result<(), Error> {
    let diff: Diff = match &g.server {
        Some(server) => {
            let query =
                DiffQuery { from: Some(args.from.clone()), to: args.to.clone(), namespace: args.namespace.clone() };
            server.get_json("/admin/config/diff", &query)?
        }
        None => timetravel::diff(&g.open()?, &args.from, args.to.as_deref(), args.namespace.as_deref())?,
    };
    if args.output == super::Output::Json {
        return emit_data(json_text(&diff)?);
    }
    emit(format!("diff seq {} -> seq {}", diff.from.seq, diff.to.seq))?;
    for (mark, lines) in [("+", &diff.added), ("-", &diff.removed), ("~", &diff.changed)] {
        for line in lines {
            emit(format!("{mark} {} {}", line.key, diff_change(mark, line)))?;
        }
    }
    Ok(())
}

fn diff_change(mark: &str, line: &DiffLine) -> String {
    match (&line.changed, mark) {
        (Some(fields), _) => format!("fields {}", fields.join(", ")),
        (None, "+") => text(&line.new),
        (None, "-") => text(&line.old),
        (None, _) => format!("{} -> {}", text(&line.old), text(&line.new)),
    }
}

pub fn rollback(g: &Globals, args: RollbackArgs) -> Result<(), Error> {
    let body = RollbackBody {
        to: args.to,
        keys: args.keys,
        namespace: args.namespace,
        dry_run: args.dry_run,
        reason: args.reason,
        expected_head: args.expected_head,
    };
    let report = match &g.server {
        Some(server) => server.post_json("/admin/config/rollback", &body)?,
        None => {
            let ctx = g.context("rollback", body.reason.clone());
            timetravel::rollback(&g.open()?, &body, &Via::Cli, ctx)?
        }
    };
    print_plan(&report, args.output)
}

pub fn revert(g: &Globals, args: RevertArgs) -> Result<(), Error> {
    let body = RevertBody { batch: args.batch, force: args.force, dry_run: args.dry_run, reason: args.reason };
    let report = match &g.server {
        Some(server) => server.post_json("/admin/config/revert", &body).map_err(name_cli_flags)?,
        None => {
            let ctx = g.context("revert", body.reason.clone());
            timetravel::revert(&g.open()?, &body, &Via::Cli, ctx)?
        }
    };
    print_plan(&report, args.output)
}

/// The server's refusal names the API's field (`"force": true`); on the command line the flag is `--force`.
fn name_cli_flags(e: Error) -> Error {
    match e {
        Error::Coded { code, message, details } => {
            Error::Coded { code, message: message.replace("send \"force\": true", "revert with --force"), details }
        }
        other => other,
    }
}

/// One step of a plan: action, subject, the fields that change or current -> value it returns to, the
/// restart flag and the plan's message.
pub(super) fn plan_step_line(step: &PlanStep) -> String {
    let mut line = format!("{:<8} {}", step.action.as_str(), step.subject);
    if !step.changed.is_empty() {
        line.push_str(&format!("  ({})", step.changed.join(", ")));
    } else if !(step.current.is_null() && step.value.is_null()) {
        line.push_str(&format!("  {} -> {}", text(&step.current), text(&step.value)));
    }
    if step.restart_required {
        line.push_str("  [restart required]");
    }
    if let Some(m) = &step.message {
        line.push_str(&format!("  ({m})"));
    }
    line
}

/// A rollback's plan: one line per key or entity (action, subject, current -> value it returns to), the
/// locked keys left alone, the restart-required ones, and what was done.
fn print_plan(report: &RollbackReport, output: super::Output) -> Result<(), Error> {
    if output == super::Output::Json {
        return emit_data(json_text(report)?);
    }
    for step in &report.steps {
        emit(plan_step_line(step))?;
    }
    let c = &report.counts;
    emit(format!(
        "plan to seq {}: {} set, {} reset, {} create, {} update, {} delete, {} locked (left alone), {} invalid",
        report.to.seq, c.set, c.reset, c.create, c.update, c.delete, c.locked, c.invalid
    ))?;
    match (report.dry_run, &report.batch) {
        (true, _) => emit(format!("dry run at head {}: nothing applied", report.head)),
        (_, Some(batch)) => emit(format!("applied as batch {batch} (seq {})", report.head)),
        _ => emit("nothing to change: the store already holds that state"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cli;
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn every_argument_of_the_time_travel_commands_has_help() {
        let cli = Cli::command();
        for name in ["audit", "history", "diff", "rollback", "revert"] {
            let command = cli.find_subcommand(name).expect("a command");
            for arg in command.get_arguments().filter(|a| a.get_id() != "help") {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(!help.trim().is_empty(), "`{name} {}` has no help", arg.get_id());
            }
        }
    }

    /// `audit --actor NAME` is the filter (`--by` too); who makes changes is `--actor` before the command.
    #[test]
    fn audit_actor_is_the_filter_and_the_global_flag_does_not_shadow_it() {
        let filter = |argv: &[&str]| match Cli::try_parse_from(argv).map(|c| (c.actor, c.command)) {
            Ok((who, super::super::Command::Audit(args))) => (who, args.filter().actor),
            other => panic!("{argv:?}: {other:?}"),
        };
        assert_eq!(filter(&["cfgledger", "audit", "--actor", "me"]).1.as_deref(), Some("me"));
        assert_eq!(filter(&["cfgledger", "audit", "--by", "me"]).1.as_deref(), Some("me"));
        assert_eq!(filter(&["cfgledger", "--actor", "ops", "audit"]), (Some("ops".into()), None));
        // A write command has no `--actor` of its own: after it, the flag is refused, never silently taken.
        assert!(Cli::try_parse_from(["cfgledger", "config", "set", "LOG_LEVEL", "debug", "--actor", "me"]).is_err());
    }

    #[test]
    fn the_filter_travels_as_query_pairs() {
        let args = AuditArgs::try_parse_from_args(&["--key", "LOG_*", "--actor", "me", "--rejected", "--limit", "8"]);
        let pairs: std::collections::BTreeSet<(String, String)> =
            super::super::remote::query_pairs(&args.filter()).expect("pairs").into_iter().collect();
        let expected = [("key", "LOG_*"), ("actor", "me"), ("rejected", "true"), ("limit", "8")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())).into_iter().collect());
    }

    impl AuditArgs {
        fn try_parse_from_args(argv: &[&str]) -> AuditArgs {
            #[derive(Debug, Parser)]
            struct Wrap {
                #[command(flatten)]
                args: AuditArgs,
            }
            Wrap::try_parse_from(std::iter::once("audit").chain(argv.iter().copied())).expect("parses").args
        }
    }
}
