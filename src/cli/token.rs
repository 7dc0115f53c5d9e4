//! `cfgledger token issue --sub NAME --role ROLE [--ttl 1h]`: prints a bearer token signed with the store's
//! signing key (its effective `JWT_SECRET_KEY`, or the newest rotated key), for automation. Only someone who
//! can open the store (and its encryption key) can issue one. It never creates the first signing key: that is
//! `serve`'s job at first start, or the operator's.
//!
//! `cfgledger token rotate-key --grace 1h --reason TEXT`: a new random signing key, sealed in the log, signs
//! from then on on every instance; tokens signed by earlier keys verify for the grace period, then never.
//! Like `issue`, it works on the store itself: opening the store and its encryption key is what makes an
//! administrator here.

use super::{emit, Globals};
use crate::auth;
use crate::error::Error;
use crate::usecase::access;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token.
    Issue(IssueArgs),
    /// Rotate the signing key: a new key signs from now on; earlier keys verify for --grace, then never.
    RotateKey(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// How long tokens signed by earlier keys stay valid, e.g. 0s (end them now), 15m, 1h.
    #[arg(long)]
    grace: String,
    /// Why (required: a rotation ends sessions, and is audited).
    #[arg(long)]
    reason: String,
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
    let args = match cmd {
        TokenCommand::Issue(args) => args,
        TokenCommand::RotateKey(args) => return rotate(g, args),
    };
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

fn rotate(g: &Globals, args: RotateArgs) -> Result<(), Error> {
    let grace_ms = cfgledger_events::value::parse_duration_ms(&args.grace).ok_or_else(|| {
        Error::input(format!("--grace expects a duration such as 0s, 15m or 1h; got {:?}", args.grace))
    })?;
    if args.reason.trim().is_empty() {
        return Err(Error::input("--reason expects why the key is rotated; got an empty one"));
    }
    let ledger = g.open_existing_ledger()?;
    let ctx = g.context("token rotate-key", Some(args.reason));
    let rotation = crate::usecase::block_on(access::rotate_signing_key(&ledger, grace_ms / 1000, ctx))?;
    emit(format!(
        "rotated the signing key to {} (seq {}); earlier keys verify tokens for {}s more",
        rotation.kid, rotation.seq, rotation.grace_secs
    ))
}
