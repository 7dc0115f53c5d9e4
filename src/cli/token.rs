//! `cfgledger token issue --sub NAME --role ROLE [--ttl 1h]`: prints a bearer token signed with the store's
//! effective `JWT_SECRET_KEY`, for automation. Only someone who can open the store (and its encryption key)
//! can issue one. It never creates a signing key: that is `serve`'s job at first start, or the operator's.

use super::{emit, Globals};
use crate::auth;
use crate::error::Error;
use cfgledger_events::{Rejection, RejectionKind};
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
    /// platform_admin, auditor or viewer.
    #[arg(long)]
    role: String,
    /// Lifetime, e.g. 15m, 1h, 30d.
    #[arg(long, default_value = "1h")]
    ttl: String,
}

fn invalid(message: String) -> Error {
    Error::Rejected(Rejection { kind: RejectionKind::Invalid, message, audit: vec![] })
}

pub fn run(g: &Globals, cmd: TokenCommand) -> Result<(), Error> {
    let TokenCommand::Issue(args) = cmd;
    let role: auth::Role = args.role.parse().map_err(invalid)?;
    if args.sub.trim().is_empty() {
        return Err(invalid("--sub expects a name; got an empty one".into()));
    }
    let ttl_ms = cfgledger_events::value::parse_duration_ms(&args.ttl).filter(|&ms| ms >= 1000).ok_or_else(|| {
        invalid(format!("--ttl expects a duration of at least 1s such as 15m, 1h or 30d; got {:?}", args.ttl))
    })?;
    let ledger = g.open()?;
    let keys = super::serve::token_keys(&ledger)?;
    let token = keys
        .issue(&args.sub, role, auth::unix_seconds(ledger.now()), ttl_ms / 1000)
        .map_err(|e| Error::Io(e.to_string()))?;
    emit(token)
}
