//! `cfgledger log`: the raw event log, one line per event, secrets masked; `log export` and `log import` are
//! the backup and restore (`clone.rs`).

use super::{emit, emit_data, open_existing, Globals};
use crate::error::Error;
use crate::present;
use cfgledger_events::{ChainError, Envelope, Hash};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogOutput {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    #[command(subcommand)]
    command: Option<LogCommand>,
    /// Only events after this seq.
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// At most this many events.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value_t)]
    output: LogOutput,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Write the log as JSON lines (each envelope byte for byte, with its hashes): a backup.
    Export(super::clone::LogExportArgs),
    /// Restore a `log export` file into an empty store, checking every hash on the way in.
    Import(super::clone::LogImportArgs),
}

pub fn run(g: &Globals, args: LogArgs) -> Result<(), Error> {
    match args.command {
        Some(LogCommand::Export(a)) => return super::clone::log_export(g, a),
        Some(LogCommand::Import(a)) => return super::clone::log_import(g, a),
        None => {}
    }
    let catalog = crate::catalog_file::load(&g.catalog)?;
    let store = open_existing(g)?;
    let mut after = args.after;
    let mut left = args.limit.unwrap_or(usize::MAX);
    while left > 0 {
        let records = store.read_after(after, left.min(1000))?;
        if records.is_empty() {
            break;
        }
        for rec in &records {
            // Each line is checked against its own link; `verify` checks the whole chain.
            if Hash::link(&rec.prev_hash, &rec.envelope) != rec.hash {
                return Err(Error::Chain(ChainError {
                    seq: rec.seq,
                    reason: "the envelope does not match its hash".into(),
                }));
            }
            let env =
                Envelope::decode(&rec.envelope).map_err(|e| ChainError { seq: rec.seq, reason: e.to_string() })?;
            match args.output {
                LogOutput::Json => emit_data(
                    serde_json::to_string(&present::record(rec, &env, &catalog))
                        .map_err(|e| Error::internal("cannot encode a log record", e))?,
                )?,
                LogOutput::Text => {
                    let subject = env.event.subject().unwrap_or_else(|| "-".into());
                    emit(format!(
                        "{:>6}  {}  {:<15} {:<24} {} ({})",
                        rec.seq,
                        rec.occurred_at,
                        rec.kind,
                        subject,
                        rec.actor,
                        env.actor.source.as_str()
                    ))?;
                }
            }
            after = rec.seq;
        }
        left = left.saturating_sub(records.len());
    }
    Ok(())
}
