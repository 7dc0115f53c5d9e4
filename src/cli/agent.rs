//! `cfgledger agent exec|render`: the flags, validated before anything starts, turned into the agent's
//! options (`crate::agent`). The token comes from `CFGLEDGER_TOKEN` or `--token-file`, never from the
//! command line, where every user of the machine could read it.

use super::serve::parse_duration;
use super::Globals;
use crate::agent::exec::{self, ExecOptions, OnChange};
use crate::agent::render::{self, RenderOptions};
use crate::error::Error;
use crate::logging::Logging;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run a command with the namespace's settings as its environment; restart or signal it when they change.
    Exec(ExecArgs),
    /// Keep a file of the namespace's settings (env, json, yaml), checked before it replaces the old one.
    Render(RenderArgs),
}

/// How an agent follows the store (both subcommands).
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// The namespace to follow.
    #[arg(long, short = 'n', value_name = "NS", default_value = cfgledger_events::namespace::DEFAULT)]
    namespace: String,
    /// Include sensitive keys in plaintext (each render is recorded in the audit trail); needs a
    /// config_reader or platform_admin token.
    #[arg(long)]
    include_secrets: bool,
    /// Also include keys at their catalog default.
    #[arg(long)]
    include_defaults: bool,
    /// A file holding the bearer token (read again at every connection); else CFGLEDGER_TOKEN.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The last-known-good cache (default: $XDG_CACHE_HOME/cfgledger/NS-ID.cache.json, else under
    /// ~/.cache, ID naming the server and the options); its values are sealed under CFGLEDGER_CACHE_KEY or
    /// the key file. Give each agent its own.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
    /// Keep no cache (the agent then cannot start while the server is down).
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
    /// The cache's key file (default: the cache's path with .key appended; created 0600 on first use).
    #[arg(long, value_name = "FILE")]
    cache_key_file: Option<PathBuf>,
    /// Refuse to start from the cache: without the server, fail.
    #[arg(long)]
    require_fresh: bool,
    /// A label reported in heartbeats (repeatable): role=canary.
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// The id heartbeats report (default: a random one per start).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// How often to report to the server.
    #[arg(long, default_value = "3s", value_parser = parse_duration, value_name = "DURATION")]
    heartbeat: Duration,
    /// The longest wait between reconnection attempts (they start at 250ms and double).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    max_backoff: Duration,
    /// Recorded in the audit trail with each render that includes secrets.
    #[arg(long)]
    reason: Option<String>,
    /// Render, then stop: do not follow.
    #[arg(long)]
    once: bool,
    /// The agent's own log level (error, warn, info, debug).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    follow: FollowArgs,
    /// What a change of a hot key does: restart, signal:NAME (signal:HUP), or none. A restart-required key
    /// always restarts.
    #[arg(long, default_value = "restart", value_name = "ACTION")]
    on_change: String,
    /// Wait a random time up to this before a restart, so that a fleet does not restart at once.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    splay: Duration,
    /// The signal that asks the child to stop before a restart.
    #[arg(long, default_value = "TERM", value_name = "SIGNAL")]
    kill_signal: String,
    /// How long the child has to stop before it is killed.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    kill_timeout: Duration,
    /// Give the child only the rendered settings, not the agent's own environment.
    #[arg(long)]
    pristine: bool,
    /// A child restarted for a change that fails within this time runs again with its previous
    /// configuration until the next change (0s: never; the agent then exits with the child's code).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    rollback_window: Duration,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    follow: FollowArgs,
    /// env (python-dotenv's KEY='value'), json or yaml.
    #[arg(long, default_value = "env")]
    format: String,
    /// The file to keep (written atomically, mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Run on the staged file before it replaces FILE (`{}` and $CFGLEDGER_RENDERED name it); a non-zero
    /// exit keeps the old file.
    #[arg(long, value_name = "CMD")]
    check_cmd: Option<String>,
    /// Run after FILE is replaced.
    #[arg(long, value_name = "CMD")]
    reload_cmd: Option<String>,
    /// How long a check or reload command may run.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    command_timeout: Duration,
}

/// `cfgledger-agent`: the agent as a binary of its own, which links none of the server (half the memory of
/// `cfgledger agent`, which it otherwise equals).
#[derive(Debug, clap::Parser)]
#[command(
    name = "cfgledger-agent",
    version,
    about = "Follow a cfgledger namespace for an application: run it with its settings (exec), or keep a file of them (render)"
)]
pub struct AgentCli {
    /// The cfgledger server to follow (http://HOST:PORT).
    #[arg(long, global = true, env = "CFGLEDGER_SERVER", value_name = "URL")]
    server: Option<String>,
    /// A PEM file of CA certificates trusted beside the system's roots, for an https:// server whose
    /// certificate a private CA signed.
    #[arg(long, global = true, env = "CFGLEDGER_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: AgentCommand,
}

/// Runs `cfgledger-agent`.
pub fn run_alone(cli: AgentCli) -> Result<(), Error> {
    // The same check of the URL as `--server` gets in `cfgledger`.
    let server =
        cli.server.as_deref().map(|url| super::remote::Server::new(url, None, cli.ca_file.as_deref())).transpose()?;
    run_on(server.as_ref(), cli.command)
}

pub(crate) fn run(g: &Globals, cmd: AgentCommand) -> Result<(), Error> {
    run_on(g.server.as_ref(), cmd)
}

/// The agent on the server at `server` (`--server`, checked): what `cfgledger agent` and the slim
/// `cfgledger-agent` binary both run.
pub(crate) fn run_on(server: Option<&super::remote::Server>, cmd: AgentCommand) -> Result<(), Error> {
    // A token on the command line is readable by every user of the machine (ps, /proc): refused. Only the
    // agent's own arguments count, not the child's after `--`.
    if std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--token" || a.to_string_lossy().starts_with("--token="))
    {
        return Err(Error::input(
            "the agent takes its token from CFGLEDGER_TOKEN or --token-file, never from the command line",
        ));
    }
    match cmd {
        AgentCommand::Exec(args) => {
            let on_change: OnChange = args.on_change.parse()?;
            let kill_signal = exec::parse_signal(&args.kill_signal)?;
            let follow = follow_options(server, &args.follow, "agent")?;
            init_logging(&args.follow)?;
            exec::run(ExecOptions {
                follow,
                command: args.command,
                once: args.follow.once,
                on_change,
                splay: args.splay,
                kill_signal,
                kill_timeout: args.kill_timeout,
                pristine: args.pristine,
                rollback_window: args.rollback_window,
            })
        }
        AgentCommand::Render(args) => {
            let format = args.format.parse()?;
            let follow = follow_options(server, &args.follow, "agent")?;
            init_logging(&args.follow)?;
            render::run(RenderOptions {
                follow,
                format,
                out: args.out,
                check_cmd: args.check_cmd.filter(|c| !c.trim().is_empty()),
                reload_cmd: args.reload_cmd.filter(|c| !c.trim().is_empty()),
                once: args.follow.once,
                command_timeout: args.command_timeout,
            })
        }
    }
}

fn init_logging(args: &FollowArgs) -> Result<(), Error> {
    if !matches!(args.log_format.as_str(), "text" | "json") {
        return Err(Error::input(format!("--log-format expects text or json; got {:?}", args.log_format)));
    }
    if !matches!(args.log_level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
        return Err(Error::input(format!(
            "--log-level expects error, warn, info, debug or trace; got {:?}",
            args.log_level
        )));
    }
    // The handle is not kept: an agent's log level does not change while it runs.
    let _ = Logging::init(&args.log_level, &args.log_format);
    Ok(())
}

/// The default cache of a follower: $XDG_CACHE_HOME/cfgledger/NS-ID.cache.json (else under ~/.cache), where
/// ID names the server and what it asks for, so that two agents of one machine never share a cache (one
/// with secrets, one without).
fn default_cache(namespace: &str, server: &str, profile: &str) -> Result<PathBuf, Error> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            Error::input("no --cache given and neither XDG_CACHE_HOME nor HOME is set; give --cache FILE or --no-cache")
        })?;
    let dir = base.join("cfgledger");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("cannot create the cache directory {}", dir.display()), e))?;
    let id = blake3::hash(format!("{server}\n{profile}").as_bytes()).to_hex();
    Ok(dir.join(format!("{namespace}-{}.cache.json", &id[..12])))
}

use std::os::unix::fs::DirBuilderExt;

fn follow_options(
    server: Option<&super::remote::Server>,
    args: &FollowArgs,
    kind: &str,
) -> Result<cfgledger_client::Options, Error> {
    let remote =
        server.ok_or_else(|| Error::input("the agent follows a server: give --server URL (or CFGLEDGER_SERVER)"))?;
    let server = remote.base();
    let mut opts = cfgledger_client::Options::new(server, &args.namespace);
    opts.ca_file = remote.ca_file().map(Path::to_path_buf);
    opts.kind = kind.to_string();
    opts.token = match &args.token_file {
        Some(path) => cfgledger_client::TokenSource::File(path.clone()),
        None if std::env::var("CFGLEDGER_TOKEN").is_ok_and(|t| !t.trim().is_empty()) => {
            cfgledger_client::TokenSource::Env("CFGLEDGER_TOKEN".into())
        }
        None => cfgledger_client::TokenSource::None,
    };
    opts.cache_key_file = args.cache_key_file.clone();
    opts.include_secrets = args.include_secrets;
    opts.include_defaults = args.include_defaults;
    opts.cache = match (&args.cache, args.no_cache) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(default_cache(&args.namespace, server, &opts.profile())?),
    };
    opts.require_fresh = args.require_fresh;
    for label in &args.labels {
        let (k, v) = label
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| Error::input(format!("--label expects NAME=VALUE; got {label:?}")))?;
        opts.labels.insert(k.to_string(), v.to_string());
    }
    opts.instance_id = args.id.clone();
    if args.heartbeat > crate::instance::LIVE_WINDOW / 2 {
        return Err(Error::input(format!(
            "--heartbeat expects at most {} s: an instance silent for {} s leaves GET /admin/instances",
            crate::instance::LIVE_WINDOW.as_secs() / 2,
            crate::instance::LIVE_WINDOW.as_secs()
        )));
    }
    opts.heartbeat = (!args.once).then_some(args.heartbeat).filter(|d| !d.is_zero());
    opts.backoff_max = args.max_backoff.max(opts.backoff_min);
    opts.reason = args.reason.clone();
    Ok(opts)
}
