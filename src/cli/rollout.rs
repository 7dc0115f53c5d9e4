//! `cfgledger rollout start|list|status|advance|rollback`: gradual rollouts by instance label, on the store
//! or through `--server`, with the same output and exit codes either way. The timed transitions are made
//! by `serve`'s driver; these are a person's.

use super::remote::segment;
use super::{emit, emit_data, Globals, Output};
use crate::error::Error;
use crate::model::{RolloutActionBody, RolloutChangeBody, RolloutList, RolloutOutcome, RolloutView, StartRolloutBody};
use crate::usecase::{block_on, rollout};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout: the selector's instances first, then each percentage step after a bake.
    Start(StartArgs),
    /// Every rollout, newest first.
    List(ListArgs),
    /// One rollout: its stages so far and every live agent and client of its namespace.
    Status(IdArgs),
    /// Move a rollout to its next stage now, skipping the rest of the bake (from the last: complete it).
    Advance(IdArgs),
    /// Roll a rollout back (abort it): every instance returns to the main values.
    #[command(alias = "abort")]
    Rollback(IdArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The rollout's id (made up when absent).
    #[arg(long)]
    id: Option<String>,
    /// The namespace (default mcpgateway).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// A change (repeatable): KEY=VALUE, the value as `config set` takes it.
    #[arg(long = "set", value_name = "KEY=VALUE", required = true)]
    set: Vec<String>,
    /// A label the first stage's instances carry (repeatable, all must match): role=canary.
    #[arg(long = "selector", value_name = "K=V")]
    selector: Vec<String>,
    /// The percentage steps after the label stage, ending at 100.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    steps: Vec<u8>,
    /// How long each stage bakes: 500ms, 30s, 10m.
    #[arg(long, default_value = "5m", value_parser = super::serve::parse_duration)]
    bake: std::time::Duration,
    /// A URL that must answer 2xx to a GET during each bake, or the rollout rolls back.
    #[arg(long, value_name = "URL")]
    check_url: Option<String>,
    /// How long the check URL may take.
    #[arg(long, value_parser = super::serve::parse_duration)]
    check_timeout: Option<std::time::Duration>,
    /// Roll back when an instance running the new values reports healthy: false in its heartbeat.
    #[arg(long)]
    instance_reports: bool,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The rollout's id.
    id: String,
    /// Why: recorded in the audit trail (advance, rollback).
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn run(g: &Globals, cmd: RolloutCommand) -> Result<(), Error> {
    match cmd {
        RolloutCommand::Start(args) => start(g, args),
        RolloutCommand::List(args) => {
            let list: RolloutList = match &g.server {
                Some(server) => server.get_json("/admin/rollouts", &BTreeMap::<String, String>::new())?,
                None => rollout::list(&g.open_existing_ledger()?),
            };
            if args.output == Output::Json {
                return emit_json(&list);
            }
            if list.rollouts.is_empty() {
                return emit("no rollouts");
            }
            emit(format!("{:<24} {:<12} {:<12} {:>5} {:>7}  KEYS", "ID", "NAMESPACE", "STATUS", "STAGE", "PERCENT"))?;
            for r in &list.rollouts {
                let keys: Vec<&str> = r.changes.iter().map(|c| c.key.as_str()).collect();
                emit(format!(
                    "{:<24} {:<12} {:<12} {:>5} {:>6}%  {}",
                    r.id,
                    r.namespace,
                    r.status,
                    r.stage,
                    r.percent,
                    keys.join(",")
                ))?;
            }
            Ok(())
        }
        RolloutCommand::Status(args) => {
            let view: RolloutView = match &g.server {
                Some(server) => server
                    .get_json(&format!("/admin/rollouts/{}", segment(&args.id)), &BTreeMap::<String, String>::new())?,
                None => block_on(rollout::status(&g.open_existing_ledger()?, &args.id))?,
            };
            if args.output == Output::Json {
                return emit_json(&view);
            }
            print_view(&view, true)
        }
        RolloutCommand::Advance(args) => {
            let body = RolloutActionBody { reason: args.reason.clone() };
            let outcome: RolloutOutcome = match &g.server {
                Some(server) => server.post_json(&format!("/admin/rollouts/{}/advance", segment(&args.id)), &body)?,
                None => {
                    let ctx = g.context("rollout advance", body.reason.clone());
                    block_on(rollout::advance(&g.open_existing_ledger()?, &args.id, ctx))?
                }
            };
            print_outcome(&outcome, args.output)
        }
        RolloutCommand::Rollback(args) => {
            let body = RolloutActionBody { reason: args.reason.clone() };
            let outcome: RolloutOutcome = match &g.server {
                Some(server) => server.post_json(&format!("/admin/rollouts/{}/rollback", segment(&args.id)), &body)?,
                None => {
                    let ctx = g.context("rollout rollback", body.reason.clone());
                    block_on(rollout::roll_back(&g.open_existing_ledger()?, &args.id, body, ctx))?
                }
            };
            print_outcome(&outcome, args.output)
        }
    }
}

fn start(g: &Globals, args: StartArgs) -> Result<(), Error> {
    let pair = |flag: &str, text: &str| -> Result<(String, String), Error> {
        text.split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .ok_or_else(|| Error::input(format!("--{flag} expects NAME=VALUE; got {text:?}")))
    };
    let mut changes = Vec::new();
    for s in &args.set {
        let (key, text) = pair("set", s)?;
        changes.push(RolloutChangeBody { key, value: None, text: Some(text) });
    }
    let mut selector = BTreeMap::new();
    for s in &args.selector {
        let (k, v) = pair("selector", s)?;
        selector.insert(k, v);
    }
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let body = StartRolloutBody {
        id: args.id,
        namespace: args.namespace,
        changes,
        selector,
        steps: args.steps,
        bake_ms: millis(args.bake),
        check_url: args.check_url,
        check_timeout_ms: args.check_timeout.map(millis),
        instance_reports: args.instance_reports,
        reason: args.reason,
    };
    let outcome: RolloutOutcome = match &g.server {
        Some(server) => server.post_json("/admin/rollouts", &body)?,
        None => {
            let ctx = g.context("rollout start", body.reason.clone());
            block_on(rollout::start(&g.open_existing_ledger()?, body, ctx))?
        }
    };
    print_outcome(&outcome, args.output)
}

fn emit_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::internal("the answer as JSON", e))?;
    emit_data(text)
}

fn print_outcome(outcome: &RolloutOutcome, output: Output) -> Result<(), Error> {
    if output == Output::Json {
        return emit_json(outcome);
    }
    if !outcome.changed {
        emit(format!("rollout {}: nothing to do (another server made this transition)", outcome.rollout.id))?;
    } else if let Some(batch) = &outcome.batch {
        emit(format!("batch {batch}"))?;
    }
    print_view(&outcome.rollout, false)
}

fn print_view(r: &RolloutView, instances: bool) -> Result<(), Error> {
    emit(format!(
        "rollout {} ({}): {} at stage {} ({}% of instances{})",
        r.id,
        r.namespace,
        r.status.replace('_', " "),
        r.stage,
        r.percent,
        if r.selector.is_empty() { String::new() } else { format!(" and those labelled {}", labels(&r.selector)) }
    ))?;
    let steps: Vec<String> = r.steps.iter().map(|p| format!("{p}%")).collect();
    emit(format!("  steps {}, bake {} ms each", steps.join(" → "), r.bake_ms))?;
    if let Some(at) = &r.bake_ends_at {
        emit(format!("  this stage bakes until {at}"))?;
    }
    if let Some(url) = &r.check_url {
        emit(format!("  check {url} (timeout {} ms)", r.check_timeout_ms))?;
    }
    if r.instance_reports {
        emit("  instance reports count (healthy: false rolls back)")?;
    }
    for c in &r.changes {
        emit(format!("  {} = {}", c.key, cfgledger_events::value::to_text(&c.value)))?;
    }
    for t in &r.transitions {
        emit(format!(
            "  seq {:<6} {}  {:<11} stage {} ({}%) by {}{}",
            t.seq,
            t.at,
            t.what,
            t.stage,
            t.percent,
            t.actor,
            t.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default()
        ))?;
    }
    if instances {
        if r.instances.is_empty() {
            emit("  no live agent or client follows its namespace")?;
        }
        for i in &r.instances {
            emit(format!(
                "  {:<32} bucket {:>2}  {:<14} {}{}{}",
                i.instance,
                i.bucket,
                if i.new_values { "new values" } else { "main values" },
                if i.new_values { format!("(by {}) ", i.via) } else { String::new() },
                if i.applied { "applied" } else { "not applied yet" },
                match i.healthy {
                    Some(false) => ", reports unhealthy",
                    _ => "",
                }
            ))?;
        }
    }
    Ok(())
}

fn labels(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}
