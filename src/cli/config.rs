//! `cfgledger config list|get|set|reset|export|import`, on the store (the default) or, with `--server URL`,
//! through a running server's admin API (`remote.rs`). Both modes produce the same JSON shapes (the API's
//! items, list body, export document and import plan), and one set of functions below prints them, so a
//! command prints the same lines and exits with the same code whichever way it ran.

use super::remote::{segment, Server};
use super::{emit, emit_data, Globals, Output};
use crate::error::Error;
use crate::ledger::Ledger;
use crate::model::{
    AsOfQuery, ConfigItem, ConfigList, DriftEntry, ImportPlan, ImportQuery, ListQuery, NamespaceQuery, ResetQuery,
    SetRequest, SettingsExport, SettingsImportReport,
};
use crate::usecase::settings::{self, Change, Changed};
use crate::usecase::{block_on, settings_transfer};
use cfgledger_events::value::to_text;
use cfgledger_events::Input;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
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
    /// Set locked keys again from the environment or .env: the audited correction of a locked key seeded
    /// wrong (recorded as `reseeded`). Runs on the store itself.
    Reseed(ReseedArgs),
    /// List the keys whose .env line or environment variable differs from the store's value (the store's
    /// value is in force). Runs on the store itself.
    Drift(DriftArgs),
}

#[derive(Debug, Args)]
pub struct ReseedArgs {
    /// The locked keys to re-seed (KEY or namespace:KEY); without any, every locked key that .env (and,
    /// with --from-env, the environment) gives a value.
    keys: Vec<String>,
    /// Also take values from this process's environment (which wins over .env): off by default, so that a
    /// variable set in the shell for another reason is never written into the store by accident.
    #[arg(long)]
    from_env: bool,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only this namespace's keys.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Exit 1 when any key drifts (for scripts and CI).
    #[arg(long)]
    check: bool,
    /// `table` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), another
    /// namespace added by a catalog file, or `*` for every one. A key may also be written `namespace:KEY`.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Only the keys of this category (security, database, performance, features, limits, logging, ...).
    #[arg(long)]
    category: Option<String>,
    /// The settings as they were at a point: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    as_of: Option<String>,
    /// `table` for people, `json` for programs (the API's list).
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
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), another
    /// namespace added by a catalog file. A key may also be written `namespace:KEY`.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The setting's key, such as LOG_LEVEL.
    key: String,
    /// The key as it was at a point: an RFC 3339 time, a duration before now (24h) or seq:N.
    #[arg(long, value_name = "POINT")]
    as_of: Option<String>,
    /// `text` prints the value alone; `json` the whole item (source, type, flags, version).
    #[arg(long, value_enum, default_value_t)]
    output: GetOutput,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), another
    /// namespace added by a catalog file. A key may also be written `namespace:KEY`.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The setting's key, such as LOG_LEVEL.
    key: String,
    /// The new value, written as in a .env file (durations such as 15m, lists as JSON or comma-separated).
    value: String,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), another
    /// namespace added by a catalog file. A key may also be written `namespace:KEY`.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The setting's key, such as LOG_LEVEL.
    key: String,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), or another
    /// namespace added by a catalog file. Without it, every namespace (keys outside the default one are written `namespace:KEY`).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Write the document to FILE (and print a one-line summary) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The application: `mcpgateway` (the default), `cfgledger` (the store's own settings), or another
    /// namespace added by a catalog file. The namespace of the document's bare keys; `namespace:KEY` keys name their own.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// The document to import (`-` for standard input).
    file: PathBuf,
    /// Print the plan and apply nothing.
    #[arg(long)]
    dry_run: bool,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(g: &Globals, cmd: ConfigCommand) -> Result<(), Error> {
    match cmd {
        ConfigCommand::Reseed(args) => reseed(g, args),
        ConfigCommand::Drift(args) => drift(g, args),
        other => run_via(g, other),
    }
}

fn reseed(g: &Globals, args: ReseedArgs) -> Result<(), Error> {
    g.refuse_server("config reseed")?;
    let env = g.env_file_entries()?;
    let ledger = g.open_existing_ledger()?;
    let keys = (!args.keys.is_empty()).then_some(args.keys);
    let process_env: std::collections::BTreeMap<String, String> =
        if args.from_env { std::env::vars().collect() } else { std::collections::BTreeMap::new() };
    let env = env.as_ref().map(|(p, e)| (p.as_path(), e.clone()));
    let done = block_on(crate::usecase::seed::reseed(
        &ledger,
        keys,
        env,
        &process_env,
        g.context("config reseed", args.reason),
    ))?;
    if done.changed.is_empty() {
        return emit("nothing to re-seed: every locked key already holds the value the environment and .env give");
    }
    for (key, from) in &done.changed {
        emit(format!("reseeded {key} from {from}"))?;
    }
    emit(format!("{} key(s) re-seeded (seq {})", done.changed.len(), done.seq.unwrap_or_default()))
}

fn drift(g: &Globals, args: DriftArgs) -> Result<(), Error> {
    g.refuse_server("config drift")?;
    let env = g.env_file_entries()?;
    let ledger = g.open_existing_ledger()?;
    let process_env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let env = env.as_ref().map(|(p, e)| (p.as_path(), e.clone()));
    let mut found = crate::usecase::seed::drift(&ledger, env, &process_env);
    if let Some(ns) = &args.namespace {
        settings::namespaces(ledger.catalog(), Some(ns))?;
        found.retain(|d| cfgledger_events::namespace::split(&d.key).0 == ns);
    }
    let drifted = !found.is_empty();
    let shown = match args.output {
        Output::Json => {
            let rows: Vec<DriftEntry> = found
                .iter()
                .map(|d| {
                    let (ns, key) = cfgledger_events::namespace::split(&d.key);
                    DriftEntry { namespace: ns.to_string(), key: key.to_string(), source: d.source.clone() }
                })
                .collect();
            emit_data(to_json(&rows)?)
        }
        Output::Table if found.is_empty() => emit("no drift: the environment and .env agree with the store"),
        Output::Table => found.iter().try_for_each(|d| {
            emit(format!(
                "{}: {} differs from the store's value (the store's value is in force)",
                cfgledger_events::namespace::display(&d.key),
                d.source
            ))
        }),
    };
    shown?;
    if args.check && drifted {
        let n = found.len();
        return Err(Error::rejected(
            cfgledger_events::RejectionKind::Conflict,
            format!("{n} key(s) drift from the store (--check)"),
        ));
    }
    Ok(())
}

fn run_via(g: &Globals, cmd: ConfigCommand) -> Result<(), Error> {
    // An import reads its document before the store is opened (or created): a missing file changes nothing.
    let doc = match &cmd {
        ConfigCommand::Import(args) => Some(read_document(&args.file)?),
        _ => None,
    };
    let via = match &g.server {
        Some(server) => Via::Remote(server),
        None => Via::Local(g.open()?, g),
    };
    match cmd {
        ConfigCommand::List(args) => {
            let query = ListQuery { namespace: args.namespace, category: args.category, q: None, as_of: args.as_of };
            show_list(&via.list(&query)?, args.output)
        }
        ConfigCommand::Get(args) => {
            let key = via.key(args.namespace.as_deref(), &args.key)?;
            show_item(&via.get(&key, args.as_of)?, args.output)
        }
        ConfigCommand::Set(args) => {
            let key = via.key(args.namespace.as_deref(), &args.key)?;
            let changed = via.change(&key, Change::Set(Input::Text(args.value)), args.reason)?;
            report_change(&args.key, &changed)
        }
        ConfigCommand::Reset(args) => {
            let key = via.key(args.namespace.as_deref(), &args.key)?;
            report_change(&args.key, &via.change(&key, Change::Reset, args.reason)?)
        }
        ConfigCommand::Export(args) => show_export(&via.export(args.namespace)?, args.out.as_deref()),
        ConfigCommand::Import(args) => {
            let query = ImportQuery {
                namespace: args.namespace,
                dry_run: args.dry_run,
                reason: args.reason,
                expected_head: None,
            };
            match via.import(&doc.unwrap_or_default(), &query) {
                Ok(report) => show_import(&report),
                Err(e) => {
                    // A refused import carries its plan: show it, then the refusal.
                    if let Error::Coded { details, .. } = &e {
                        if let Ok(plan) = serde_json::from_value::<ImportPlan>(details.clone()) {
                            show_plan(&plan)?;
                        }
                    }
                    Err(e)
                }
            }
        }
        // `run` sends these before opening anything; they never run through `via`.
        ConfigCommand::Reseed(args) => reseed(g, args),
        ConfigCommand::Drift(args) => drift(g, args),
    }
}

/// Where a `config` command runs: on the store itself, or through a server's admin API. Both answer with
/// the same typed messages, which one set of printers shows.
enum Via<'a> {
    Local(Ledger, &'a Globals),
    Remote(&'a Server),
}

impl Via<'_> {
    /// The key a command names: qualified and checked against the store's namespaces locally; through a
    /// server, written `namespace:KEY` for the server to check.
    fn key(&self, namespace: Option<&str>, key: &str) -> Result<String, Error> {
        match self {
            Via::Local(ledger, _) => settings::qualified_key(ledger.catalog(), namespace, key),
            Via::Remote(_) if namespace.is_none() => Ok(key.to_string()),
            Via::Remote(_) => Ok(cfgledger_events::namespace::qualify(namespace, key)),
        }
    }

    fn list(&self, query: &ListQuery) -> Result<ConfigList, Error> {
        match self {
            Via::Local(ledger, _) => block_on(settings::list(ledger, query)),
            Via::Remote(server) => server.get_json("/admin/config", query),
        }
    }

    fn get(&self, key: &str, as_of: Option<String>) -> Result<ConfigItem, Error> {
        match self {
            Via::Local(ledger, _) => block_on(settings::get(ledger, key, as_of.as_deref())),
            Via::Remote(server) => server.get_json(&key_path(key), &AsOfQuery { as_of }),
        }
    }

    fn change(&self, key: &str, change: Change, reason: Option<String>) -> Result<Changed, Error> {
        match self {
            Via::Local(ledger, g) => {
                let command = if matches!(change, Change::Reset) { "config reset" } else { "config set" };
                block_on(settings::change(ledger, key, change, None, g.context(command, reason)))
            }
            Via::Remote(server) => {
                let before: ConfigItem = server.get_json(&key_path(key), &AsOfQuery::default())?;
                let after: ConfigItem = match change {
                    // Sent as text, so that the server parses it exactly as the local mode does.
                    Change::Set(Input::Text(text)) => {
                        server.put_json(&key_path(key), &SetRequest { value: None, text: Some(text), reason })?
                    }
                    Change::Set(Input::Json(value)) => {
                        server.put_json(&key_path(key), &SetRequest { value: Some(value), text: None, reason })?
                    }
                    Change::Reset => server.delete_json(&key_path(key), &ResetQuery { namespace: None, reason })?,
                };
                // The key's new version when the write changed it: the seq of the event that did.
                let seq = Some(after.version).filter(|v| *v != before.version);
                Ok(Changed { item: after, seq })
            }
        }
    }

    fn export(&self, namespace: Option<String>) -> Result<SettingsExport, Error> {
        match self {
            Via::Local(ledger, g) => settings_transfer::export(ledger, namespace.as_deref(), &g.actor, ledger.now()),
            Via::Remote(server) => server.get_json("/admin/config/export", &NamespaceQuery { namespace }),
        }
    }

    fn import(&self, doc: &Value, query: &ImportQuery) -> Result<SettingsImportReport, Error> {
        match self {
            Via::Local(ledger, g) => {
                let ctx = g.context("config import", query.reason.clone());
                block_on(settings_transfer::import(ledger, doc, query, ctx, "config import"))
            }
            Via::Remote(server) => server.post_query_json("/admin/config/import", query, doc),
        }
    }
}

fn key_path(key: &str) -> String {
    format!("/admin/config/{}", segment(key))
}

fn show_list(list: &ConfigList, output: Output) -> Result<(), Error> {
    match output {
        Output::Json => emit_data(to_json(list)?),
        Output::Table => print_settings(&list.items),
    }
}

fn show_item(item: &ConfigItem, output: GetOutput) -> Result<(), Error> {
    match output {
        GetOutput::Json => emit_data(to_json(item)?),
        // A program reading the value gets it as stored; a terminal gets its control characters escaped.
        GetOutput::Text if std::io::IsTerminal::is_terminal(&std::io::stdout()) => emit(text_of(&item.value)),
        GetOutput::Text => emit_data(text_of(&item.value)),
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal("cannot encode the answer", e))
}

/// `KEY = VALUE (seq N)` after a change, `KEY unchanged: it is already VALUE` when nothing was appended.
/// The value is the one just stored: a running server still shows a restart-required key's boot value, and
/// the stored one as pending.
fn report_change(key: &str, changed: &Changed) -> Result<(), Error> {
    let shown = text_of(changed.item.stored_value());
    match changed.seq {
        Some(seq) => emit(format!("{key} = {shown} (seq {seq})")),
        None => emit(format!("{key} unchanged: it is already {shown}")),
    }
}

/// The document on standard output, or written to `out` with `exported N settings to FILE (seq S)`.
fn show_export(doc: &SettingsExport, out: Option<&Path>) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(doc).map_err(|e| Error::internal("cannot encode the export", e))?;
    let Some(path) = out else {
        return emit_data(text);
    };
    std::fs::write(path, format!("{text}\n")).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    emit(format!("exported {} settings to {} (seq {})", doc.settings.len(), path.display(), doc.source.seq))
}

/// The import document in `file` (`-`: standard input), which must be JSON.
fn read_document(file: &Path) -> Result<Value, Error> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("cannot read standard input", e))?
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::input_from(format!("cannot read {}", file.display()), e))?
    };
    crate::json::value_from_slice(text.as_bytes())
        .map_err(|e| Error::input(format!("{} is not a JSON document: {e}", file.display())))
}

/// The plan, its summary, and what happened: `dry run: nothing applied`, `applied as batch B (seq N)`,
/// `nothing to apply; N locked key(s) refused, recorded as batch B (seq N)` or `nothing to apply`. What
/// happened is read from the write's own record (`result`), not from the plan made before it.
fn show_import(report: &SettingsImportReport) -> Result<(), Error> {
    show_plan(&report.plan)?;
    let result = report.result.clone().unwrap_or_default();
    let batch = report.batch.as_deref().unwrap_or_default();
    if report.dry_run {
        emit("dry run: nothing applied")
    } else if report.applied && result.created.len() + result.updated.len() > 0 {
        emit(format!("applied as batch {batch} (seq {})", report.head))
    } else if report.applied {
        emit(format!(
            "nothing to apply; {} locked key(s) refused, recorded as batch {batch} (seq {})",
            result.locked.len(),
            report.head
        ))
    } else {
        let locked = report.plan.summary.locked;
        if locked > 0 {
            // Attempts on locked keys are recorded with a batch that changes something; alone, they append
            // nothing, so that importing a file twice appends nothing.
            emit(format!("nothing to apply; {locked} locked key(s) left as they are, nothing recorded"))
        } else {
            emit("nothing to apply")
        }
    }
}

/// The plan as a table (KEY, ACTION, CURRENT, NEW, NOTE) and a line of counts and conflicts.
fn show_plan(plan: &ImportPlan) -> Result<(), Error> {
    let cell = |v: &Value| if v.is_null() { "-".to_string() } else { text_of(v) };
    let rows: Vec<Vec<String>> = plan
        .plan
        .iter()
        .map(|p| {
            let action = serde_json::to_value(p.action).map(|a| text_of(&a)).unwrap_or_default();
            vec![p.key.clone(), action, cell(&p.current), cell(&p.value), p.message.clone().unwrap_or_default()]
        })
        .collect();
    print_table(&["KEY", "ACTION", "CURRENT", "NEW", "NOTE"], &rows)?;
    let s = &plan.summary;
    let counts = format!(
        "{} create, {} update, {} unchanged, {} locked, {} invalid",
        s.create, s.update, s.unchanged, s.locked, s.invalid
    );
    let conflicts = if plan.conflicts.is_empty() { "none".to_string() } else { plan.conflicts.join(", ") };
    emit(format!("plan: {counts}; conflicts: {conflicts}"))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => to_text(other),
    }
}

fn print_settings(items: &[ConfigItem]) -> Result<(), Error> {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            let flags: String = [(i.locked, 'L'), (i.sensitive, 'S'), (i.pending_restart, 'P')]
                .iter()
                .map(|&(set, letter)| if set { letter } else { '-' })
                .collect();
            vec![
                cfgledger_events::namespace::named(&i.namespace, &i.key),
                text_of(&i.value),
                i.source.as_str().to_string(),
                format!("{}/{}", i.ty, i.reload),
                i.category.clone(),
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
