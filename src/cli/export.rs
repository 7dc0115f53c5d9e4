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
