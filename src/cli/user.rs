//! `cfgledger user add|list|remove`: admin API users, kept in the log as events. The password is read from
//! standard input (one line; a terminal, a pipe or a file) and only its argon2id hash is stored.

use super::{emit, Globals};
use crate::auth;
use crate::error::Error;
use cfgledger_events::Command;
use clap::{Args, Subcommand};
use std::io::BufRead;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add(AddArgs),
    /// List users and their roles.
    List,
    /// Remove a user: their password no longer logs in (tokens already issued stay valid until they expire).
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    name: String,
    /// platform_admin, auditor or viewer.
    #[arg(long)]
    role: String,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    name: String,
}

/// The shortest password accepted.
const MIN_PASSWORD: usize = 8;

pub fn run(g: &Globals, cmd: UserCommand) -> Result<(), Error> {
    match cmd {
        UserCommand::Add(args) => {
            let role: auth::Role = args.role.parse().map_err(|e: String| Error::input(e))?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::io(format!("cannot read the password from standard input"), e))?;
            let password = auth::password_from_line(&line);
            zeroize::Zeroize::zeroize(&mut line);
            if password.chars().count() < MIN_PASSWORD {
                return Err(Error::input(format!(
                    "the password (read from standard input) must have at least {MIN_PASSWORD} characters"
                )));
            }
            let hash = auth::hash_password(&password).map_err(|e| Error::internal("cannot hash the password", e))?;
            let ledger = g.open()?;
            let cmd =
                Command::AddUser { name: args.name.clone(), role: role.as_str().to_string(), password_hash: hash };
            let outcome = ledger.execute(cmd, g.context("user add", None))?;
            let seq = outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq);
            emit(format!("added user {} with role {role} (seq {seq})", args.name))
        }
        UserCommand::List => {
            let ledger = g.open()?;
            let snap = ledger.snapshot();
            for (name, user) in snap.state.users() {
                emit(format!("{name}  {}  added {}", user.role, user.added_at))?;
            }
            Ok(())
        }
        UserCommand::Remove(args) => {
            let ledger = g.open()?;
            let outcome =
                ledger.execute(Command::RemoveUser { name: args.name.clone() }, g.context("user remove", None))?;
            let seq = outcome.seqs.map(|(_, last)| last).unwrap_or(outcome.head.seq);
            emit(format!("removed user {} (seq {seq})", args.name))
        }
    }
}
