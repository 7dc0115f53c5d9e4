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
    /// `cfgledger` (default) or `mcpgateway`: MCP Gateway's own layout, credentials as AES-256-GCM under
    /// SHA-256 of this store's AUTH_ENCRYPTION_SECRET (or of --target-secret-env's), settings left out.
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
    let (doc, now) = match &g.server {
        Some(server) => {
            let mut query: Vec<(&str, &str)> = vec![("format", args.format.as_str())];
            for (name, value) in [("types", &args.types), ("exclude_types", &args.exclude_types), ("tags", &args.tags)]
            {
                if let Some(v) = value {
                    query.push((name, v.as_str()));
                }
            }
            if args.include_inactive {
                query.push(("include_inactive", "true"));
            }
            if args.include_dependencies {
                query.push(("include_dependencies", "true"));
            }
            let doc = server.get("/export", &query)?;
            let now = doc["exported_at"].as_str().unwrap_or_default().to_string();
            (doc, now)
        }
        None => {
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
            let mut doc = export::document(&ledger, &filter, &g.actor, now)?;
            if args.format == "mcpgateway" {
                doc = export::to_mcpgateway(&ledger, &doc, target_secret.as_ref().map(|s| s.as_str()))?;
            }
            (doc, now.to_string())
        }
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::internal("cannot encode the export", e))?;
    if args.out.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return emit(text);
    }
    let path = args.out.unwrap_or_else(|| PathBuf::from(default_name(&now)));
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    match doc["source"]["seq"].as_u64() {
        Some(seq) => emit(format!("exported {} to {} (seq {seq})", export::counts_line(&doc), path.display())),
        None => emit(format!("exported {} to {} (MCP Gateway layout)", export::counts_line(&doc), path.display())),
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
    /// this store's AUTH_ENCRYPTION_SECRET.
    #[arg(long, value_name = "VAR")]
    source_secret_env: Option<String>,
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
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::input(format!("{} is not a JSON document: {e}", args.file.display())))?;
    let strategy: cfgledger_events::registry_import::ConflictStrategy =
        args.conflict_strategy.parse().map_err(|e: String| Error::input(e))?;
    let selection = args.include.as_deref().map(parse_include).transpose()?;
    let source_secret = match &args.source_secret_env {
        Some(var) => Some(zeroize::Zeroizing::new(
            std::env::var(var)
                .map_err(|_| Error::input(format!("--source-secret-env {var}: the variable is not set")))?,
        )),
        None => None,
    };
    if let Some(server) = &g.server {
        return import_remote(server, doc, &args, selection, source_secret);
    }
    let ledger = g.open()?;
    let parsed =
        export::parse_import(&ledger, &doc, strategy, selection.as_ref(), source_secret.as_ref().map(|s| s.as_str()))?;
    let plan = export::plan_json(&ledger, &parsed)?;
    print_plan(&plan)?;
    if args.dry_run {
        return emit("dry run: nothing applied");
    }
    let mut ctx = g.context("import", args.reason);
    ctx.cause = cfgledger_events::Cause::Import { digest: parsed.digest.clone(), via: "import".into() };
    let outcome = ledger.execute(export::import_command(parsed), ctx)?;
    match (outcome.batch_id, outcome.seqs) {
        (Some(batch), Some((_, last))) => emit(format!("imported as batch {batch} (seq {last})")),
        _ => emit(NOTHING_TO_IMPORT),
    }
}

const NOTHING_TO_IMPORT: &str = "nothing to import: the store already holds this document";

/// `POST /import` on a server, printing what the local mode prints.
fn import_remote(
    server: &super::remote::Server,
    doc: serde_json::Value,
    args: &ImportArgs,
    selection: Option<std::collections::BTreeMap<cfgledger_events::ResourceKind, Vec<String>>>,
    source_secret: Option<zeroize::Zeroizing<String>>,
) -> Result<(), Error> {
    let mut body = serde_json::json!({
        "import_data": doc,
        "conflict_strategy": args.conflict_strategy,
        "dry_run": args.dry_run,
    });
    if let Some(selection) = selection {
        body["selected_entities"] = serde_json::to_value(
            selection
                .into_iter()
                .map(|(k, names)| (k.as_str().to_string(), names))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .map_err(|e| Error::internal("cannot encode the selection", e))?;
    }
    if let Some(secret) = &source_secret {
        body["source_secret"] = serde_json::Value::String(secret.as_str().to_string());
    }
    if let Some(reason) = &args.reason {
        body["reason"] = serde_json::Value::String(reason.clone());
    }
    let answer = server.post("/import", &[], &body)?;
    // The request body held the secret: drop it now, not at the end of the call.
    drop(body);
    let plan = match answer {
        Ok(plan) => plan,
        Err(failure) => {
            if let Some(plan) = failure.details.get("plan") {
                print_plan(plan)?;
            }
            return Err(server.error(failure));
        }
    };
    print_plan(&plan)?;
    if args.dry_run {
        return emit("dry run: nothing applied");
    }
    match (plan["import_id"].as_str(), plan["head"].as_u64()) {
        (Some(batch), Some(last)) => emit(format!("imported as batch {batch} (seq {last})")),
        _ => emit(NOTHING_TO_IMPORT),
    }
}

/// One line per entity (action, kind/name, a rename's new name, an update's changed fields) and the counts.
fn print_plan(plan: &serde_json::Value) -> Result<(), Error> {
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
    ))
}

fn text_of(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
