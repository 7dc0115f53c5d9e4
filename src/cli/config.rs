//! `cfgledger config list|get|set|reset`.

use super::{emit, Globals, Output};
use crate::error::Error;
use crate::present;
use cfgledger_events::value::to_text;
use cfgledger_events::{Command, Input, Rejection, RejectionKind};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

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
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    category: Option<String>,
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

pub fn run(g: &Globals, cmd: ConfigCommand) -> Result<(), Error> {
    let ledger = g.open()?;
    let snap = ledger.snapshot();
    let catalog = ledger.catalog();
    let unknown = |key: &str| {
        Error::Rejected(Rejection {
            kind: RejectionKind::UnknownKey,
            message: format!("unknown key {key}"),
            audit: vec![],
        })
    };
    match cmd {
        ConfigCommand::List(args) => {
            if let Some(c) = &args.category {
                if !catalog.specs().iter().any(|s| &s.category == c) {
                    let mut known: Vec<_> = catalog.specs().iter().map(|s| s.category.as_str()).collect();
                    known.dedup();
                    return Err(Error::Rejected(Rejection {
                        kind: RejectionKind::Invalid,
                        message: format!("unknown category {c}; categories are {}", known.join(", ")),
                        audit: vec![],
                    }));
                }
            }
            let items: Vec<Value> = catalog
                .specs()
                .iter()
                .filter(|s| args.category.as_ref().is_none_or(|c| &s.category == c))
                .filter_map(|s| snap.view(&s.key).map(|v| present::item(s, v)))
                .collect();
            match args.output {
                Output::Json => emit(json!({"items": items, "head": snap.head.seq}))?,
                Output::Table => print_table(&items)?,
            }
        }
        ConfigCommand::Get(args) => {
            let spec = catalog.get(&args.key).ok_or_else(|| unknown(&args.key))?;
            let view = snap.view(&args.key).ok_or_else(|| unknown(&args.key))?;
            let item = present::item(spec, view);
            match args.output {
                GetOutput::Json => emit(&item)?,
                GetOutput::Text => emit(text_of(&item["value"]))?,
            }
        }
        ConfigCommand::Set(args) => {
            let ctx = g.context("config set", args.reason);
            let cmd = Command::Set { key: args.key.clone(), value: Input::Text(args.value) };
            let outcome = ledger.execute(cmd, ctx)?;
            report(&ledger, &args.key, &outcome)?;
        }
        ConfigCommand::Reset(args) => {
            let ctx = g.context("config reset", args.reason);
            let outcome = ledger.execute(Command::Reset { key: args.key.clone() }, ctx)?;
            report(&ledger, &args.key, &outcome)?;
        }
    }
    Ok(())
}

fn report(ledger: &crate::Ledger, key: &str, outcome: &crate::Outcome) -> Result<(), Error> {
    let snap = ledger.snapshot();
    let shown = match (ledger.catalog().get(key), snap.view(key)) {
        (Some(spec), Some(view)) => text_of(&present::shown_value(spec, view.value.as_ref())),
        _ => String::new(),
    };
    match outcome.seqs {
        Some((_, last)) => emit(format!("{key} = {shown} (seq {last})")),
        None => emit(format!("{key} unchanged: it is already {shown}")),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => to_text(other),
    }
}

fn print_table(items: &[Value]) -> Result<(), Error> {
    let rows: Vec<[String; 6]> = items
        .iter()
        .map(|i| {
            let mut flags = String::new();
            for (field, letter) in [("locked", 'L'), ("sensitive", 'S'), ("pending_restart", 'P')] {
                flags.push(if i[field].as_bool() == Some(true) { letter } else { '-' });
            }
            [
                text_of(&i["key"]),
                text_of(&i["value"]),
                text_of(&i["source"]),
                format!("{}/{}", text_of(&i["type"]), text_of(&i["reload"])),
                text_of(&i["category"]),
                flags,
            ]
        })
        .collect();
    let header = ["KEY", "VALUE", "SOURCE", "TYPE/RELOAD", "CATEGORY", "FLAGS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count().min(48));
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| {
                let c: String =
                    if c.chars().count() > 48 { c.chars().take(45).chain("...".chars()).collect() } else { c.clone() };
                format!("{c:<w$}")
            })
            .collect();
        emit(cells.join("  ").trim_end())?;
    }
    emit("(flags: L locked, S sensitive, P pending restart)")
}
