//! `cfgledger export [--out FILE] [--types ...] [--exclude-types ...] [--tags ...] [--include-inactive]
//! [--include-dependencies]`: the registry's portable export to a file (default
//! `cfgledger-export-YYYYMMDD-HHMMSS.json`), with a line of counts per kind.

use super::{emit, Globals};
use crate::error::Error;
use crate::export;
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
    #[arg(long)]
    include_inactive: bool,
    /// Bring what selected servers reference.
    #[arg(long)]
    include_dependencies: bool,
}

pub fn run(g: &Globals, args: ExportArgs) -> Result<(), Error> {
    let filter = export::Filter {
        types: args.types.as_deref().map(export::parse_kinds).transpose()?,
        exclude_types: args.exclude_types.as_deref().map(export::parse_kinds).transpose()?.unwrap_or_default(),
        tags: args
            .tags
            .as_deref()
            .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        include_inactive: args.include_inactive,
        include_dependencies: args.include_dependencies,
        selected: None,
    };
    let ledger = g.open()?;
    let now = ledger.now();
    let doc = export::document(&ledger, &filter, &g.actor, now)?;
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Io(e.to_string()))?;
    if args.out.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return emit(text);
    }
    let path = args.out.unwrap_or_else(|| PathBuf::from(default_name(&now.to_string())));
    std::fs::write(&path, text + "\n").map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    emit(format!("exported {} to {} (seq {})", export::counts_line(&doc), path.display(), doc["source"]["seq"]))
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
    /// this store's AUTH_ENCRYPTION_SECRET.
    #[arg(long, value_name = "VAR")]
    source_secret_env: Option<String>,
    #[arg(long)]
    reason: Option<String>,
}

fn rejected(message: String) -> Error {
    Error::Rejected(cfgledger_events::Rejection {
        kind: cfgledger_events::RejectionKind::Invalid,
        message,
        audit: vec![],
    })
}

/// `--include "tools:a,b;servers:s"`.
fn parse_include(text: &str) -> Result<std::collections::BTreeMap<cfgledger_events::ResourceKind, Vec<String>>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, names) =
            part.split_once(':').ok_or_else(|| rejected(format!("--include expects KIND:NAME,NAME; got {part:?}")))?;
        let kind: cfgledger_events::ResourceKind = kind.trim().parse().map_err(rejected)?;
        out.insert(kind, names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect());
    }
    Ok(out)
}

pub fn run_import(g: &Globals, args: ImportArgs) -> Result<(), Error> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| Error::Io(format!("cannot read standard input: {e}")))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", args.file.display())))?
    };
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| rejected(format!("{} is not a JSON document: {e}", args.file.display())))?;
    let strategy = args.conflict_strategy.parse().map_err(rejected)?;
    let selection = args.include.as_deref().map(parse_include).transpose()?;
    let ledger = g.open()?;
    let source_secret = match &args.source_secret_env {
        Some(var) => Some(zeroize::Zeroizing::new(
            std::env::var(var).map_err(|_| rejected(format!("--source-secret-env {var}: the variable is not set")))?,
        )),
        None => None,
    };
    let parsed =
        export::parse_import(&ledger, &doc, strategy, selection.as_ref(), source_secret.as_ref().map(|s| s.as_str()))?;
    let plan = export::plan_json(&ledger, &parsed)?;
    for p in plan["entities"].as_array().into_iter().flatten() {
        let mut line =
            format!("{:<10} {}/{}", p["action"].as_str().unwrap_or(""), text_of(&p["kind"]), text_of(&p["name"]));
        if let Some(new) = p["renamed_to"].as_str() {
            line.push_str(&format!(" -> {new}"));
        }
        if let Some(changed) = p["changed"].as_array() {
            let fields: Vec<&str> = changed.iter().filter_map(|c| c.as_str()).collect();
            line.push_str(&format!("  ({})", fields.join(", ")));
        }
        emit(line)?;
    }
    let counts = &plan["counts"];
    emit(format!(
        "plan: {} create, {} update, {} unchanged, {} skip, {} rename, {} conflict",
        counts["create"], counts["update"], counts["unchanged"], counts["skip"], counts["rename"], counts["conflict"]
    ))?;
    if args.dry_run {
        return emit("dry run: nothing applied");
    }
    let mut ctx = g.context("import", args.reason);
    ctx.cause = cfgledger_events::Cause::Import { digest: parsed.digest.clone(), via: "import".into() };
    let outcome = ledger.execute(export::import_command(parsed), ctx)?;
    match (outcome.batch_id, outcome.seqs) {
        (Some(batch), Some((_, last))) => emit(format!("imported as batch {batch} (seq {last})")),
        _ => emit("nothing to import: the store already holds this document"),
    }
}

fn text_of(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
