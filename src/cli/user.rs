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
    /// Remove a user: their password no longer logs in, and every token issued to them is refused.
    Remove(RemoveArgs),
    /// Set a user's password (read from standard input); every token issued to them before is refused.
    Passwd(RemoveArgs),
    /// Set a user's role; every token issued to them before (carrying the old role) is refused.
    Role(AddArgs),
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
            let password = read_password()?;
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
        UserCommand::Passwd(args) => {
            let password = read_password()?;
            let ledger = g.open_existing_ledger()?;
            let ctx = g.context("user passwd", None);
            let seq = block_on(access::change_password(&ledger, &args.name, password, ctx))?;
            emit(format!("changed the password of user {} (seq {seq}); earlier tokens are refused", args.name))
        }
        UserCommand::Role(args) => {
            let role: auth::Role = args.role.parse().map_err(|e: String| Error::input(e))?;
            let ledger = g.open_existing_ledger()?;
            match block_on(access::change_role(&ledger, &args.name, role, g.context("user role", None)))? {
                Some(seq) => {
                    emit(format!("user {} now has role {role} (seq {seq}); earlier tokens are refused", args.name))
                }
                None => emit(format!("user {} already has role {role}; nothing changed", args.name)),
            }
        }
    }
}

/// One line of standard input as a password, checked for length before any store is opened (so a short
/// password creates nothing).
fn read_password() -> Result<zeroize::Zeroizing<String>, Error> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("cannot read the password from standard input", e))?;
    let password = zeroize::Zeroizing::new(auth::password_from_line(&line).to_string());
    zeroize::Zeroize::zeroize(&mut line);
    if password.chars().count() < access::MIN_PASSWORD {
        return Err(Error::input(format!(
            "the password (read from standard input) must have at least {} characters",
            access::MIN_PASSWORD
        )));
    }
    Ok(password)
}
