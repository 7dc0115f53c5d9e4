//! `cfgledger token issue --sub NAME --role ROLE [--ttl 1h]`: prints a bearer token signed with the store's
//! effective `JWT_SECRET_KEY`, for automation. Only someone who can open the store (and its encryption key)
//! can issue one. It never creates a signing key: that is `serve`'s job at first start, or the operator's.

use super::{emit, Globals};
use crate::auth;
use crate::error::Error;
use crate::usecase::access;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token.
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The subject: who the token speaks for (recorded as the actor of every change made with it).
    #[arg(long)]
    sub: String,
    /// platform_admin, auditor, viewer, or config_reader (a machine reader: an agent's render, watch stream
    /// and heartbeat, nothing else).
    #[arg(long)]
    role: String,
    /// Lifetime, e.g. 15m, 1h, 30d.
    #[arg(long, default_value = "1h")]
    ttl: String,
}

pub fn run(g: &Globals, cmd: TokenCommand) -> Result<(), Error> {
    let TokenCommand::Issue(args) = cmd;
    let role: auth::Role = args.role.parse().map_err(|e: String| Error::input(e))?;
    let ttl_ms = cfgledger_events::value::parse_duration_ms(&args.ttl).filter(|&ms| ms >= 1000).ok_or_else(|| {
        Error::input(format!("--ttl expects a duration of at least 1s such as 15m, 1h or 30d; got {:?}", args.ttl))
    })?;
    if args.sub.trim().is_empty() {
        return Err(Error::input("--sub expects a name; got an empty one"));
    }
    // A store given its signing key in the environment may be created by its first token (automation's
    // bootstrap); `--server` is refused before this point, so no stray local store appears.
    let ledger = g.open()?;
    emit(access::issue_token(&ledger, &args.sub, role, ttl_ms / 1000)?)
}
