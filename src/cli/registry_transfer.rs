//! `cfgledger export [--out FILE] [--types ...] [--exclude-types ...] [--tags ...] [--include-inactive]
//! [--include-dependencies] [--format cfgledger|mcpgateway]`: the registry's portable export to a file
//! (default `cfgledger-export-YYYYMMDD-HHMMSS.json`), with a line of counts per kind; and `cfgledger import
//! FILE`, which plans (and unless `--dry-run` applies) an export document. Both are thin callers of
//! `crate::usecase::registry` locally, or of `GET /export` and `POST /import` with `--server`: the same typed input,
//! the same typed report, the same lines printed.

use super::{emit, emit_data, Globals};
use crate::error::Error;
use crate::model::{ExportAnswer, ExportQuery, ImportBody, ImportReport};
use crate::usecase::registry::export::{self, ExportRequest};
use crate::usecase::registry::import::{self, ImportInput, ImportRefusal};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write (default: cfgledger-export-YYYYMMDD-HHMMSS.json in the current directory); `-` for
    /// standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these kinds, comma-separated (gateways, servers, tools, prompts, resources, roots).
    #[arg(long)]
    types: Option<String>,
    #[arg(long)]
    exclude_types: Option<String>,
    /// Only entities with any of these tags, comma-separated.
    #[arg(long)]
    tags: Option<String>,
    /// Inactive entities too. With --format mcpgateway they arrive active: the gateway's import ignores
    /// is_active (the export warns).
    #[arg(long)]
    include_inactive: bool,
    /// Bring what exported servers link (the default; the bare flag says the same); `--include-dependencies
    /// false` leaves a server whose links are not exported out, and says so.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    include_dependencies: bool,
    /// `cfgledger` (default) or `mcpgateway`: MCP Gateway's own layout, credentials as AES-256-GCM under
    /// SHA-256 of this store's CFGLEDGER_AUTH_ENCRYPTION_SECRET (or of --target-secret-env's), settings left out.
    #[arg(long, default_value = "cfgledger", value_parser = ["cfgledger", "mcpgateway"])]
    format: String,
    /// With --format mcpgateway: the environment variable holding the target gateway's AUTH_ENCRYPTION_SECRET.
    #[arg(long, value_name = "VAR")]
    target_secret_env: Option<String>,
}

pub fn run(g: &Globals, args: ExportArgs) -> Result<(), Error> {
    let target_secret = match (&args.target_secret_env, args.format.as_str()) {
        (Some(_), "cfgledger") => {
            return Err(Error::input("--target-secret-env applies to --format mcpgateway only"));
        }
        (Some(_), _) if g.server.is_some() => {
            return Err(Error::input(
                "--target-secret-env cannot be sent to --server: a server exports under its own secret; run the export where the store is",
            ));
        }
        (Some(var), _) => Some(zeroize::Zeroizing::new(
            std::env::var(var)
                .map_err(|_| Error::input(format!("--target-secret-env {var}: the variable is not set")))?,
        )),
        (None, _) => None,
    };
    let query = ExportQuery {
        types: args.types,
        exclude_types: args.exclude_types,
        tags: args.tags,
        include_inactive: args.include_inactive,
        include_dependencies: (!args.include_dependencies).then_some(false),
        format: Some(args.format),
    };
    let answer: ExportAnswer = match &g.server {
        Some(server) => {
            let pairs = query.pairs();
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(name, value)| (*name, value.as_str())).collect();
            server.get_pairs_json("/export", &pairs)?
        }
        None => {
            let request = ExportRequest { target_secret, ..ExportRequest::from_query(&query)? };
            let ledger = g.open()?;
            export::export(&ledger, &request, &g.actor, ledger.now())?
        }
    };
    // What the document says it did beyond the filter, and what a gateway cannot hold: on stderr, so that
    // `--out -` keeps stdout for the document.
    let said = match &answer {
        ExportAnswer::Cfgledger(d) => &d.metadata.notes,
        ExportAnswer::McpGateway(d) => &d.metadata.warnings,
    };
    for line in said {
        eprintln!("warning: {}", crate::present::terminal(line));
    }
    let text = serde_json::to_string_pretty(&answer).map_err(|e| Error::internal("cannot encode the export", e))?;
    if args.out.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return emit_data(text);
    }
    let path = args.out.unwrap_or_else(|| PathBuf::from(default_name(answer.exported_at())));
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    let counts = export::counts_line(answer.entity_counts());
    match answer.seq() {
        Some(seq) => emit(format!("exported {counts} to {} (seq {seq})", path.display())),
        None => emit(format!("exported {counts} to {} (MCP Gateway layout)", path.display())),
    }
}

/// `cfgledger-export-YYYYMMDD-HHMMSS.json` from an RFC 3339 time.
fn default_name(rfc3339: &str) -> String {
    let digits: String = rfc3339.chars().filter(char::is_ascii_digit).take(14).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("cfgledger-export-{date}-{time}.json")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_file_is_named_after_the_time() {
        assert_eq!(super::default_name("2026-11-21T18:22:07.123456Z"), "cfgledger-export-20261121-182207.json");
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An export document (`-` for standard input).
    file: PathBuf,
    /// What to do with an entity that exists with other content: skip, update, rename or fail.
    #[arg(long, default_value = "update")]
    conflict_strategy: String,
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Only these entities: "tools:a,b;servers:s".
    #[arg(long)]
    include: Option<String>,
    /// The environment variable holding the secret the file's credentials were sealed under, when it is not
    /// this store's: another store's CFGLEDGER_AUTH_ENCRYPTION_SECRET, or MCP Gateway's AUTH_ENCRYPTION_SECRET.
    #[arg(long, value_name = "VAR")]
    source_secret_env: Option<String>,
    /// Apply the document's settings too; without it they are listed as left out.
    #[arg(long)]
    with_settings: bool,
    /// Import a file whose digest does not match its content (edited on purpose).
    #[arg(long)]
    allow_edited: bool,
    #[arg(long)]
    reason: Option<String>,
}

/// `--include "tools:a,b;servers:s"`.
fn parse_include(text: &str) -> Result<std::collections::BTreeMap<cfgledger_events::ResourceKind, Vec<String>>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, names) = part
            .split_once(':')
            .ok_or_else(|| Error::input(format!("--include expects KIND:NAME,NAME; got {part:?}")))?;
        let kind: cfgledger_events::ResourceKind = kind.trim().parse().map_err(|e: String| Error::input(e))?;
        out.insert(kind, names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect());
    }
    Ok(out)
}

pub fn run_import(g: &Globals, args: ImportArgs) -> Result<(), Error> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::io("cannot read standard input", e))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| Error::input_from(format!("cannot read {}", args.file.display()), e))?
    };
    let document = crate::json::value_from_slice(text.as_bytes())
        .map_err(|e| Error::input(format!("{} is not a JSON document: {e}", args.file.display())))?;
    let strategy = import::parse_strategy(&args.conflict_strategy)?;
    let selection = args.include.as_deref().map(parse_include).transpose()?;
    let source_secret = match &args.source_secret_env {
        Some(var) => Some(zeroize::Zeroizing::new(
            std::env::var(var)
                .map_err(|_| Error::input(format!("--source-secret-env {var}: the variable is not set")))?,
        )),
        None => None,
    };
    let input = ImportInput {
        document,
        strategy,
        selection,
        source_secret,
        dry_run: args.dry_run,
        with_settings: args.with_settings,
        allow_edited: args.allow_edited,
        via: "import".into(),
        options: &import::CLI_OPTIONS,
    };
    let answer = match &g.server {
        Some(server) => {
            // What needs no store is checked here, so that a refusal names this command's flags.
            import::check_document(&input.document, &input.reading())?;
            import::check_gateway_secret(&input.document, input.source_secret.is_some(), &import::CLI_OPTIONS)?;
            import_remote(server, input, &args)?
        }
        None => {
            let ledger = g.open()?;
            import::import(&ledger, input, g.context("import", args.reason))
        }
    };
    let report = match answer {
        Ok(report) => report,
        Err(refusal) => {
            if let Some(plan) = &refusal.plan {
                print_plan(plan)?;
            }
            return Err(refusal.error);
        }
    };
    print_plan(&report)?;
    if report.dry_run {
        return emit("dry run: nothing applied");
    }
    match report.import_id {
        Some(batch) => emit(format!("imported as batch {batch} (seq {})", report.head)),
        None => emit(NOTHING_TO_IMPORT),
    }
}

const NOTHING_TO_IMPORT: &str = "nothing to import: the store already holds this document";

/// The details of an import the server refused at apply time.
#[derive(serde::Deserialize)]
struct PlanDetails {
    plan: ImportReport,
}

/// `POST /import` on a server: the same input, the same report (or refusal with its plan).
fn import_remote(
    server: &super::remote::Server,
    input: ImportInput,
    args: &ImportArgs,
) -> Result<Result<ImportReport, ImportRefusal>, Error> {
    let body = ImportBody {
        import_data: input.document,
        conflict_strategy: Some(args.conflict_strategy.clone()),
        dry_run: input.dry_run,
        source_secret: input.source_secret.as_ref().map(|s| s.as_str().to_string()),
        selected_entities: input
            .selection
            .map(|selection| selection.into_iter().map(|(kind, names)| (kind.as_str().to_string(), names)).collect()),
        reason: args.reason.clone(),
        with_settings: input.with_settings,
        allow_edited: input.allow_edited,
    };
    let answer = server.post_failable_json::<_, ImportReport>("/import", &[], &body);
    // The request body held the secret: drop it now, not at the end of the call.
    drop(body);
    Ok(answer?
        .map(|mut report| {
            for note in report.notes.iter_mut().chain(report.entities.iter_mut().flat_map(|e| e.notes.iter_mut())) {
                *note = cli_wording(note);
            }
            report
        })
        .map_err(|mut failure| {
            failure.message = cli_wording(&failure.message);
            let plan = serde_json::from_value::<PlanDetails>(failure.details.clone()).ok().map(|d| Box::new(d.plan));
            ImportRefusal { error: server.error(failure), plan }
        }))
}

/// A server's message with the API's option names replaced by this command's flags, so that what the CLI
/// prints through `--server` names what its user can type.
fn cli_wording(text: &str) -> String {
    let (api, cli) = (&import::API_OPTIONS, &import::CLI_OPTIONS);
    text.replace(api.with_settings, cli.with_settings)
        .replace(api.allow_edited, cli.allow_edited)
        .replace(&format!("with {}", api.source_secret), &format!("with {}", cli.source_secret))
}

/// One line per entity (action, kind/name, a rename's new name, an update's changed fields) with its notes
/// indented below, one line per setting the import would change, the document's notes, and the counts.
fn print_plan(plan: &ImportReport) -> Result<(), Error> {
    for p in &plan.entities {
        let mut line = format!("{:<10} {}/{}", p.action.as_str(), p.kind, p.name);
        if let Some(new) = &p.renamed_to {
            line.push_str(&format!(" -> {new}"));
        }
        if !p.changed.is_empty() {
            line.push_str(&format!("  ({})", p.changed.join(", ")));
        }
        emit(line)?;
        for note in &p.notes {
            emit(format!("           note: {}", note))?;
        }
    }
    if let Some(settings) = &plan.settings {
        for entry in settings.plan.iter().filter(|e| e.action != crate::model::PlanAction::Unchanged) {
            let action = serde_json::to_value(entry.action).ok().and_then(|v| v.as_str().map(str::to_string));
            let mut line = format!("{:<10} setting {}", action.unwrap_or_default(), entry.key);
            line.push_str(&format!("  {} -> {}", entry.current, entry.value));
            if let Some(message) = &entry.message {
                line.push_str(&format!("  ({message})"));
            }
            emit(line)?;
        }
    }
    for note in &plan.notes {
        emit(format!("note: {}", note))?;
    }
    let c = &plan.counts;
    let settings = plan.settings.as_ref().map_or(String::new(), |s| {
        let changed = s.plan.iter().filter(|e| e.action != crate::model::PlanAction::Unchanged).count();
        format!("; {changed} setting(s) to change")
    });
    emit(format!(
        "plan: {} create, {} update, {} unchanged, {} skip, {} rename, {} conflict{settings}",
        c.create, c.update, c.unchanged, c.skip, c.rename, c.conflict
    ))
}
