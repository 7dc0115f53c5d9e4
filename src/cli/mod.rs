//! The command line (clap). `main` parses, [`run`] turns the raw flags into validated options before any
//! IO and dispatches to one file per command family. Errors come back to `main`, which maps them to exit
//! codes in one place: 0 success, 1 rejected or failed, 2 usage (clap's own).

pub mod agent;
mod clone;
mod config;
mod history;
mod keys;
mod log;
mod registry_transfer;
mod remote;
mod render;
mod request;
mod rollout;
mod serve;
mod token;
mod user;
mod verify;

use crate::catalog_file;
use crate::error::Error;
use crate::ledger::{EnvFileChoice, Ledger, OpenOptions, WriteContext};
use crate::store::StoreUrl;
use cfgledger_events::{Actor, Cause, Source};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "cfgledger", version, about = "Event-sourced configuration store with a hash-chained audit log")]
pub struct Cli {
    /// The store: sqlite://PATH (the default, ./cfgledger.db), postgres://USER@HOST:PORT/DB (a fleet's
    /// shared log) or memory: (tests).
    #[arg(long, global = true, env = "CFGLEDGER_DB", default_value = "sqlite://./cfgledger.db")]
    pub db: String,
    /// The .env file seeded into a new store (default: ./.env when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
    /// A catalog file (TOML or JSON) that replaces or extends the default namespace's catalog, or adds an
    /// application's namespace; repeatable (in the environment, comma-separated).
    #[arg(long, global = true, env = "CFGLEDGER_CATALOG", value_name = "FILE", value_delimiter = ',')]
    pub catalog: Vec<PathBuf>,
    /// Who is making the change (default: the OS user). Given before the command (`cfgledger --actor NAME
    /// config set ...`): not global, so that it never shadows a command's own `--actor` (`audit --actor`
    /// filters the trail).
    #[arg(long, env = "CFGLEDGER_ACTOR")]
    pub actor: Option<String>,
    /// Run commands against a running server (http://HOST:PORT) instead of opening the store; commands
    /// that only work on the store itself (serve, log, verify, clone, user, token) refuse it.
    #[arg(long, global = true, env = "CFGLEDGER_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The bearer token sent to --server (see `token issue`); prefer the environment variable, since other
    /// users of the machine can read a process's arguments.
    #[arg(long, global = true, env = "CFGLEDGER_TOKEN", hide_env_values = true)]
    pub token: Option<remote::Token>,
    /// A PEM file of CA certificates trusted beside the system's roots, for an https:// --server whose
    /// certificate a private CA signed.
    #[arg(long, global = true, env = "CFGLEDGER_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Apply a change without the approvals the change policy asks for: only for a user the policy's
    /// bypass list names, and every use is recorded in the log, counted and logged as a warning.
    #[arg(long, global = true)]
    pub emergency_bypass: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API on the store, tailing changes made by other processes.
    Serve(serve::ServeArgs),
    /// Read and change settings.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print the event log.
    Log(log::LogArgs),
    /// Recompute the hash chain and name the first bad seq.
    Verify(verify::VerifyArgs),
    /// Print a namespace's effective configuration as the file its application reads (env, json, yaml).
    Render(render::RenderArgs),
    /// Query the audit trail (filters, pages, CSV and JSON lines).
    Audit(history::AuditArgs),
    /// Every value a key (or an entity, as KIND/NAME) has had: when, by whom, why, in which batch.
    History(history::HistoryArgs),
    /// What changed between two points of the log.
    Diff(history::DiffArgs),
    /// Return settings and entities to how they were at a point, as one new batch (--dry-run for the plan).
    Rollback(history::RollbackArgs),
    /// Undo one batch (refused when later changes touched the same keys, unless --force).
    Revert(history::RevertArgs),
    /// Clone a store into another: replay its state as one new batch, or --mirror its log verbatim.
    Clone(clone::CloneArgs),
    /// Export the resource registry (and the non-sensitive settings) to a file.
    Export(registry_transfer::ExportArgs),
    /// Import an export document as one batch (or plan it with --dry-run).
    Import(registry_transfer::ImportArgs),
    /// Manage admin API users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Issue bearer tokens for automation.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Follow a namespace for an application: run it with its settings (exec), or keep a file of them (render).
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Change requests: propose changes for approval, review them, and see where they stand.
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// The change policy: how many approvals a change needs, and who may bypass them.
    #[command(subcommand)]
    Policy(request::PolicyCommand),
    /// The master key: list, verify, rotate (resumable), retire.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Roll setting changes out gradually: to labelled instances first, then by percentage steps with a bake.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
}

impl Command {
    /// The commands that work on the store itself and have no API to run through (`None`: the command
    /// works through `--server` too). They refuse `--server` instead of silently opening a local store.
    fn store_only(&self) -> Option<&'static str> {
        match self {
            Command::Serve(_) => Some("serve"),
            Command::Log(_) => Some("log"),
            Command::Verify(_) => Some("verify"),
            Command::Clone(_) => Some("clone"),
            Command::User(_) => Some("user"),
            Command::Token(token::TokenCommand::Issue(_)) => Some("token issue"),
            Command::Token(token::TokenCommand::RotateKey(_)) => Some("token rotate-key"),
            Command::Key(_) => Some("key"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// Global flags, validated.
pub(crate) struct Globals {
    pub db: StoreUrl,
    pub env_file: EnvFileChoice,
    pub catalog: Vec<PathBuf>,
    pub actor: String,
    /// The server `config` commands talk to instead of the store, with its token.
    pub server: Option<remote::Server>,
    /// `--emergency-bypass`: the write contexts ask for the bypass of the change policy.
    pub bypass: bool,
}

impl Globals {
    fn from_cli(cli: &Cli) -> Result<Globals, Error> {
        let db = StoreUrl::parse(&cli.db)?;
        let actor = cli
            .actor
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or_else(os_user)
            .unwrap_or_else(|| "unknown".to_string());
        let env_file = match &cli.env_file {
            Some(p) => EnvFileChoice::Path(p.clone()),
            None => EnvFileChoice::Default,
        };
        let server = match cli.server.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) => {
                let mut server = remote::Server::new(url, cli.token.clone(), cli.ca_file.as_deref())?;
                server.bypass = cli.emergency_bypass;
                Some(server)
            }
            None => None,
        };
        Ok(Globals { db, env_file, catalog: cli.catalog.clone(), actor, server, bypass: cli.emergency_bypass })
    }

    /// Opens the ledger as a one-shot command does, printing what opening did to stderr.
    pub fn open(&self) -> Result<Ledger, Error> {
        self.open_with(false, &[])
    }

    /// Opens the ledger; `pin_restart_keys` for a long-running process that reports restart-required
    /// changes as pending; `generate` names secrets to create when they have no value.
    pub fn open_with(&self, pin_restart_keys: bool, generate: &[&str]) -> Result<Ledger, Error> {
        let catalog = catalog_file::load(&self.catalog)?;
        let mut opts = OpenOptions::new(self.db.clone(), catalog);
        opts.pin_restart_keys = pin_restart_keys;
        opts.generate_secrets = generate.iter().map(|k| k.to_string()).collect();
        opts.env_file = self.env_file.clone();
        opts.process_env = std::env::vars().collect();
        let (ledger, report) = Ledger::open(opts)?;
        if let Some(path) = &report.key_file_created {
            eprintln!(
                "created encryption key file {} (mode 0600); back it up with the database: without it the store's secrets cannot be read",
                path.display()
            );
        }
        if !report.seeded.is_empty() {
            let file = report.env_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            let keys: Vec<&str> = report.seeded.iter().map(|k| cfgledger_events::namespace::display(k)).collect();
            eprintln!("seeded {} key(s) from {file}: {}", keys.len(), keys.join(", "));
        }
        if !report.unknown_env_keys.is_empty() {
            eprintln!(
                "skipped unknown key(s) in the .env file: {}",
                crate::present::terminal(&report.unknown_env_keys.join(", "))
            );
        }
        for e in &report.env_errors {
            eprintln!("ignored a process environment value: {}", crate::present::terminal(&e.to_string()));
        }
        if let Some(refused) = &report.seed_refused {
            eprintln!("warning: nothing new was seeded from .env: {refused}");
        }
        if !report.legacy_names.is_empty() {
            eprintln!(
                "set aside {} from .env and the environment: in this store, created before namespaces, they were cfgledger's own; give cfgledger's as CFGLEDGER_<NAME>, and the gateway's with `config reseed KEY` or `config set`",
                report.legacy_names.join(", ")
            );
        }
        // A server says at start which of its keys `.env` or the environment would set otherwise
        // (`config drift` lists the same on demand); never with the values.
        if pin_restart_keys {
            for d in &report.drift {
                eprintln!(
                    "drift: {} in {} differs from the store's value; the store's value is in force (see `cfgledger config drift`, `config reseed`)",
                    cfgledger_events::namespace::display(&d.key),
                    d.source
                );
            }
        }
        Ok(ledger)
    }

    /// The `.env` file this command reads (`--env-file`, else `./.env` when it exists) and its entries.
    pub fn env_file_entries(&self) -> Result<Option<(PathBuf, Vec<cfgledger_events::decide::EnvEntry>)>, Error> {
        let path = match &self.env_file {
            EnvFileChoice::Default => Some(PathBuf::from(".env")).filter(|p| p.is_file()),
            EnvFileChoice::Path(p) => Some(p.clone()),
            EnvFileChoice::None => None,
        };
        match path {
            Some(p) => Ok(Some((p.clone(), crate::envfile::read(&p)?))),
            None => Ok(None),
        }
    }

    /// Refuses `--server` for a command that only works on the store itself.
    pub(crate) fn refuse_server(&self, what: &str) -> Result<(), Error> {
        match &self.server {
            Some(_) => Err(Error::input(format!(
                "{what} works on the store itself (--db); it cannot run through --server: run it where the store is"
            ))),
            None => Ok(()),
        }
    }

    /// Opens a store that must exist already: inspection commands (`user list`) never create one, nor its
    /// key file.
    pub fn open_existing_ledger(&self) -> Result<Ledger, Error> {
        if let Some(path) = self.db.sqlite_path() {
            if !path.exists() {
                return Err(Error::Store(crate::store::StoreError::Unavailable(format!(
                    "no store at {}",
                    path.display()
                ))));
            }
        }
        self.open()
    }

    pub fn context(&self, command: &str, reason: Option<String>) -> WriteContext {
        WriteContext {
            actor: Actor {
                name: self.actor.clone(),
                role: None,
                source: Source::Cli,
                address: hostname(),
                request_id: None,
            },
            cause: Cause::Cli { command: command.to_string() },
            reason,
            bypass: self.bypass,
        }
    }
}

/// Writes one line of text to standard output, with every control or bidirectional character in it shown
/// as a visible escape (`present::terminal`): a value or a reason cannot drive the reader's terminal. A
/// closed pipe (`cfgledger log | head`) ends the command quietly.
pub(crate) fn emit(line: impl std::fmt::Display) -> Result<(), Error> {
    emit_data(crate::present::terminal(&line.to_string()))
}

/// Writes data to standard output as it is, for formats that escape by their own rules (JSON, JSON lines,
/// CSV, a document) or that a program reads (`config get --output text` into a pipe).
pub(crate) fn emit_data(line: impl std::fmt::Display) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::BrokenPipe),
        Err(e) => Err(Error::io("cannot write to standard output", e)),
        Ok(()) => Ok(()),
    }
}

/// The OS user name: `$USER`, `$LOGNAME`, else the password-file entry of the process's uid.
fn os_user() -> Option<String> {
    if let Some(u) =
        std::env::var("USER").ok().or_else(|| std::env::var("LOGNAME").ok()).filter(|u| !u.trim().is_empty())
    {
        return Some(u);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let globals = Globals::from_cli(&cli)?;
    if let Some(what) = cli.command.store_only() {
        globals.refuse_server(what)?;
    }
    match cli.command {
        Command::Serve(args) => serve::run(&globals, args),
        Command::Config(cmd) => config::run(&globals, cmd),
        Command::Log(args) => log::run(&globals, args),
        Command::Verify(args) => verify::run(&globals, args),
        Command::Audit(args) => history::audit(&globals, args),
        Command::Render(args) => render::run(&globals, args),
        Command::History(args) => history::history(&globals, args),
        Command::Diff(args) => history::diff(&globals, args),
        Command::Rollback(args) => history::rollback(&globals, args),
        Command::Revert(args) => history::revert(&globals, args),
        Command::Clone(args) => clone::run(&globals, args),
        Command::Export(args) => registry_transfer::run(&globals, args),
        Command::Import(args) => registry_transfer::run_import(&globals, args),
        Command::User(cmd) => user::run(&globals, cmd),
        Command::Token(cmd) => token::run(&globals, cmd),
        Command::Agent(cmd) => agent::run(&globals, cmd),
        Command::Request(cmd) => request::run(&globals, cmd),
        Command::Policy(cmd) => request::run_policy(&globals, cmd),
        Command::Key(cmd) => keys::run(&globals, cmd),
        Command::Rollout(cmd) => rollout::run(&globals, cmd),
    }
}

/// Opens the store for reading without creating or seeding it: `log` and `verify` inspect what is there.
pub(crate) fn open_existing(g: &Globals) -> Result<std::sync::Arc<dyn crate::store::EventStore>, Error> {
    if let Some(path) = g.db.sqlite_path() {
        if !path.exists() {
            return Err(Error::Store(crate::store::StoreError::Unavailable(format!("no store at {}", path.display()))));
        }
    }
    Ok(crate::store::open(&g.db)?)
}
