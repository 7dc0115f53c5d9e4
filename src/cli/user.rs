//! `cfgledger user add|list|remove`: admin API users, kept in the log as events. The password is read from
//! standard input (one line; a terminal, a pipe or a file) and only its argon2id hash is stored.

use super::{emit, Globals};
use crate::auth;
use crate::error::Error;
use crate::usecase::{access, block_on};
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

pub fn run(g: &Globals, cmd: UserCommand) -> Result<(), Error> {
    match cmd {
        UserCommand::Add(args) => {
            let role: auth::Role = args.role.parse().map_err(|e: String| Error::input(e))?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Error::io("cannot read the password from standard input", e))?;
            let password = zeroize::Zeroizing::new(auth::password_from_line(&line).to_string());
            zeroize::Zeroize::zeroize(&mut line);
            if password.chars().count() < access::MIN_PASSWORD {
                // Checked before the store is opened, so a short password creates nothing.
                return Err(Error::input(format!(
                    "the password (read from standard input) must have at least {} characters",
                    access::MIN_PASSWORD
                )));
            }
            let ledger = g.open()?;
            let seq = block_on(access::add_user(&ledger, &args.name, role, password, g.context("user add", None)))?;
            emit(format!("added user {} with role {role} (seq {seq})", args.name))
        }
        UserCommand::List => {
            for user in access::users(&g.open_existing_ledger()?) {
                emit(format!("{}  {}  added {}", user.name, user.role, user.added_at))?;
            }
            Ok(())
        }
        UserCommand::Remove(args) => {
            let ledger = g.open_existing_ledger()?;
            let seq = block_on(access::remove_user(&ledger, &args.name, g.context("user remove", None)))?;
            emit(format!("removed user {} (seq {seq})", args.name))
        }
    }
}
