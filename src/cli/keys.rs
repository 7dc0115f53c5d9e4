//! `cfgledger key list|verify|rotate|retire|shred`: the master key's lifecycle, on the store itself (a rotation
//! needs the secrets, which the operator holds; `--server` is refused). `rotate` prints a line per committed
//! batch on standard error and can be killed and run again at any point: the rerun finishes the job.
//! `--generate` adds a new random secret to a SQLite store's key file first; elsewhere the operator gives the
//! new secret in `CFGLEDGER_AUTH_ENCRYPTION_SECRET` and the old one in
//! `CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS` (docs/keys.md has the fleet's order of steps).

use super::{emit, emit_data, Globals, Output};
use crate::error::Error;
use crate::model::KeyStatusReport;
use crate::usecase::keys;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// The master keys: which seals new values, which still open old ones, what each seals now.
    List(StatusArgs),
    /// Fail unless every sealed value of the current state is under the current key and opens.
    Verify(StatusArgs),
    /// Seal new values under a new master key and every current value again under it (resumable).
    Rotate(RotateArgs),
    /// Stop using an old master key that seals nothing of the current state.
    Retire(RetireArgs),
    /// Forget one secret for good: destroy its data keys, so that no key can open its current or past
    /// ciphertexts (the chain still verifies; the audit still shows every change).
    Shred(ShredArgs),
}

#[derive(Debug, Args)]
pub struct ShredArgs {
    /// A setting (`ns:KEY`; a bare key names the default namespace) or an entity's credentials (`KIND/NAME`).
    subject: String,
    /// Why (required: it is what the audit keeps instead of the value).
    #[arg(long)]
    reason: String,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key id to move to (one of this process's secrets the store has not used); needed only when there
    /// are several.
    #[arg(long)]
    to: Option<String>,
    /// Add a new random secret to the SQLite store's key file first, and rotate to it.
    #[arg(long)]
    generate: bool,
    /// Values sealed again per batch (each batch is one event).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: u32,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The key id to retire, as `key list` shows it.
    key_id: String,
    /// Why (recorded in the audit trail).
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(g: &Globals, cmd: KeyCommand) -> Result<(), Error> {
    match cmd {
        KeyCommand::List(args) => {
            let report = keys::status(&g.open_existing_ledger()?)?;
            show(&report, args.output)
        }
        KeyCommand::Verify(args) => {
            let ledger = g.open_existing_ledger()?;
            match keys::verify(&ledger) {
                Ok(report) => {
                    show(&report, args.output)?;
                    if args.output == Output::Table {
                        emit(format!(
                            "ok: {} sealed value(s), all under the current key {}",
                            report.values, report.current
                        ))?;
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        KeyCommand::Rotate(args) => rotate(g, args),
        KeyCommand::Retire(args) => retire(g, args),
        KeyCommand::Shred(args) => shred(g, args),
    }
}

fn shred(g: &Globals, args: ShredArgs) -> Result<(), Error> {
    let ledger = g.open_existing_ledger()?;
    let ctx = g.context("key shred", Some(args.reason.clone()));
    let report = keys::shred(&ledger, &args.subject, &args.reason, ctx)?;
    if args.output == Output::Json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::internal("cannot encode the shred report", Box::new(e) as crate::error::Source))?;
        return emit_data(json);
    }
    let current = if report.removed_current { "its current secret removed, " } else { "" };
    emit(format!(
        "shredded {} (seq {}): {current}{} data key(s) destroyed; no key can open its values sealed under them",
        report.subject,
        report.seq,
        report.data_keys.len()
    ))?;
    if !report.still_readable.is_empty() {
        let seqs: Vec<String> = report.still_readable.iter().map(u64::to_string).collect();
        emit(format!(
            "warning: seq {} hold(s) a value of {} sealed under a master key directly (written before data keys): readable while that key is kept; rotate, retire it and destroy its secret to close them",
            seqs.join(", "),
            report.subject
        ))?;
    }
    Ok(())
}

fn show(report: &KeyStatusReport, output: Output) -> Result<(), Error> {
    if output == Output::Json {
        let json = serde_json::to_string_pretty(report)
            .map_err(|e| Error::internal("cannot encode the key report", Box::new(e) as crate::error::Source))?;
        return emit_data(json);
    }
    emit(format!(
        "{:<18} {:<10} {:>8} {:>8} {:>8} {:>9}  secret held",
        "KEY", "STATE", "SINCE", "RETIRED", "VALUES", "DATA KEYS"
    ))?;
    for k in &report.keys {
        let seq = |s: Option<u64>| s.map_or("-".to_string(), |s| s.to_string());
        emit(format!(
            "{:<18} {:<10} {:>8} {:>8} {:>8} {:>9}  {}",
            k.key_id,
            k.state,
            seq(k.since_seq),
            seq(k.retired_seq),
            k.values,
            k.data_keys,
            if k.in_ring { "yes" } else { "no" }
        ))?;
    }
    for s in &report.shredded {
        emit(format!("shredded: {} ({} data key(s), seq {})", s.subject, s.data_keys, s.seq))?;
    }
    Ok(())
}

fn rotate(g: &Globals, args: RotateArgs) -> Result<(), Error> {
    if args.generate {
        let path = g
            .db
            .sqlite_path()
            .map(crate::ledger::open::key_file_path)
            .filter(|p| p.exists() && std::env::var_os(crate::ledger::open::SECRET_KEY).is_none())
            .ok_or_else(|| {
                Error::input(
                    "--generate needs a SQLite store whose secrets are in its key file; otherwise give the new secret in CFGLEDGER_AUTH_ENCRYPTION_SECRET and the old one in CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS",
                )
            })?;
        // The store must open with the key file as it is before a secret is added to it.
        drop(g.open_existing_ledger()?);
        crate::keyring::add_to_key_file(&path)?;
    }
    let ledger = g.open_existing_ledger()?;
    let ctx = g.context("key rotate", args.reason);
    let opts = keys::RotateOptions { to: args.to, batch: usize::try_from(args.batch).unwrap_or(keys::DEFAULT_BATCH) };
    let report = keys::rotate(&ledger, &opts, ctx, &mut |p| {
        eprintln!(
            "{}",
            crate::present::terminal(&format!(
                "{} data key(s) wrapped and {} value(s) sealed again under key {} so far (seq {}); {} left",
                p.rewrapped, p.resealed, p.key_id, p.seq, p.remaining
            ))
        );
    })?;
    let how = if report.rotated { "rotated to" } else { "resumed the rotation to" };
    match (report.rotated, report.resealed + report.rewrapped) {
        (false, 0) => emit(format!(
            "nothing to do: every sealed value is under the current key {}; to rotate, give this process a new secret (or --generate)",
            report.key_id
        )),
        _ => emit(format!(
            "{how} key {} (from {}): {} data key(s) wrapped again, {} value(s) sealed again in {} batch(es); nothing is left under another key",
            report.key_id,
            report.previous.as_deref().unwrap_or("-"),
            report.rewrapped,
            report.resealed,
            report.batches
        )),
    }
}

fn retire(g: &Globals, args: RetireArgs) -> Result<(), Error> {
    let ledger = g.open_existing_ledger()?;
    let secret = ledger.secret_box().get(&args.key_id).map(|k| k.secret.clone());
    let ctx = g.context("key retire", args.reason);
    let report = keys::retire(&ledger, &args.key_id, ctx)?;
    emit(format!("retired key {} (seq {}): nothing opens under it from now on", report.key_id, report.seq))?;
    let key_file = g.db.sqlite_path().map(crate::ledger::open::key_file_path).filter(|p| p.exists());
    if let (Some(path), Some(secret)) = (key_file, secret) {
        if crate::keyring::remove_from_key_file(&path, &secret)? {
            emit(format!("removed its secret from {}", path.display()))?;
        }
    }
    emit("remove its secret from every instance's CFGLEDGER_AUTH_ENCRYPTION_PREVIOUS_SECRETS too")
}
