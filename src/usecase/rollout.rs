//! Gradual rollouts by instance label: start, list, status (with every live agent and client of the
//! namespace and whether it is meant to run the new values), advance and roll back by hand. The REST
//! handlers, the CLI in both modes and the UI page call these; the driver in `serve`
//! ([`crate::rollout_driver`]) makes the timed and health-driven transitions through the same commands.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{
    InstanceInfo, InstanceRollout, RolloutActionBody, RolloutInstance, RolloutList, RolloutOutcome, RolloutStep,
    RolloutValue, RolloutView, StartRolloutBody,
};
use cfgledger_events::decide::StartRollout;
use cfgledger_events::rollout::{bucket, Rollout, RolloutCheck};
use cfgledger_events::{namespace, Catalog, Command, Input, RejectionKind};
use cfgledger_projections::SettingsState;
use std::collections::BTreeMap;

/// Starts a rollout; its id is made up when the body names none.
pub async fn start(ledger: &Ledger, body: StartRolloutBody, ctx: WriteContext) -> Result<RolloutOutcome, Error> {
    let id = body.id.clone().unwrap_or_else(|| format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    let ns = super::settings::namespaces(ledger.catalog(), body.namespace.as_deref())?;
    let [ns] = ns.as_slice() else {
        return Err(Error::input("a rollout is of one namespace; name it, not *"));
    };
    let mut changes = Vec::new();
    for c in body.changes {
        let input = match (c.value, c.text) {
            (Some(v), None) => Input::Json(v),
            (None, Some(t)) => Input::Text(t),
            _ => {
                return Err(Error::input(format!(
                    "change of {} expects exactly one of value (JSON) and text",
                    c.key.chars().take(80).collect::<String>()
                )))
            }
        };
        changes.push((c.key, input));
    }
    let cmd = Command::StartRollout(StartRollout {
        id: id.clone(),
        namespace: ns.to_string(),
        changes,
        selector: body.selector,
        steps: body.steps,
        bake_ms: body.bake_ms,
        check: RolloutCheck {
            url: body.check_url,
            timeout_ms: body.check_timeout_ms.unwrap_or(2000),
            instance_reports: body.instance_reports,
        },
    });
    let outcome = ledger.execute_async(cmd, ctx).await?;
    let rollout = view_of(ledger, &id)?;
    Ok(RolloutOutcome { changed: outcome.changed(), batch: outcome.batch_id, rollout })
}

/// Every rollout, newest first.
pub fn list(ledger: &Ledger) -> RolloutList {
    let snap = ledger.snapshot();
    let mut rollouts: Vec<&Rollout> = snap.state.rollouts().values().collect();
    rollouts.sort_by_key(|r| std::cmp::Reverse(r.transitions.first().map_or(0, |t| t.seq)));
    RolloutList { rollouts: rollouts.into_iter().map(|r| view(ledger.catalog(), r)).collect() }
}

/// One rollout, with every live agent and client of its namespace and where each stands.
pub async fn status(ledger: &Ledger, id: &str) -> Result<RolloutView, Error> {
    let mut view = view_of(ledger, id)?;
    let snap = ledger.snapshot();
    let Some(rollout) = snap.state.rollouts().get(id) else { return Ok(view) };
    let beats = live_followers(ledger).await?;
    view.instances = beats
        .into_iter()
        .filter(|(_, _, info)| info.namespace.as_deref() == Some(rollout.started.namespace.as_str()))
        .map(|(full, bare, info)| {
            let selected = rollout.is_active() && rollout.selects(&info.labels);
            let new_values = rollout.serves(Some(&bare), &info.labels);
            let via = if !new_values {
                "none"
            } else if selected {
                "selector"
            } else {
                "percent"
            };
            RolloutInstance {
                instance: full,
                bucket: bucket(rollout.id(), &bare),
                new_values,
                via: via.to_string(),
                applied: info.applied_seq >= rollout.stage_seq,
                healthy: info.healthy,
                labels: info.labels,
            }
        })
        .collect();
    Ok(view)
}

/// Moves a rollout to its next stage now, without waiting for the bake (or completes it from its last).
/// (The body's reason is the audit context's, which the caller built.)
pub async fn advance(ledger: &Ledger, id: &str, ctx: WriteContext) -> Result<RolloutOutcome, Error> {
    let stage = active_stage(ledger, id, "advance")?;
    let cmd = Command::AdvanceRollout { id: id.to_string(), from_stage: stage, now: ledger.now(), manual: true };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    Ok(RolloutOutcome { changed: outcome.changed(), batch: outcome.batch_id, rollout: view_of(ledger, id)? })
}

/// Ends a rollout without merging (an abort): every instance returns to the main values.
pub async fn roll_back(
    ledger: &Ledger,
    id: &str,
    body: RolloutActionBody,
    ctx: WriteContext,
) -> Result<RolloutOutcome, Error> {
    active_stage(ledger, id, "roll back")?;
    let reason = body.reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "rolled back by hand".to_string());
    let cmd = Command::RollBackRollout { id: id.to_string(), reason, signal: None };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    Ok(RolloutOutcome { changed: outcome.changed(), batch: outcome.batch_id, rollout: view_of(ledger, id)? })
}

/// The stage of an active rollout, or why a person cannot move it (404, or 409 when it has ended).
fn active_stage(ledger: &Ledger, id: &str, what: &str) -> Result<u32, Error> {
    let snap = ledger.snapshot();
    let rollout = snap.state.rollouts().get(id).ok_or_else(|| Error::missing(format!("no rollout named {id}")))?;
    if !rollout.is_active() {
        return Err(Error::rejected(
            RejectionKind::State,
            format!("rollout {id} is {}: there is nothing to {what}", rollout.status.as_str().replace('_', " ")),
        ));
    }
    Ok(rollout.stage)
}

fn view_of(ledger: &Ledger, id: &str) -> Result<RolloutView, Error> {
    let snap = ledger.snapshot();
    let rollout = snap.state.rollouts().get(id).ok_or_else(|| Error::missing(format!("no rollout named {id}")))?;
    Ok(view(ledger.catalog(), rollout))
}

/// A rollout as the API shows it, secrets masked.
pub fn view(catalog: &Catalog, r: &Rollout) -> RolloutView {
    RolloutView {
        id: r.id().to_string(),
        namespace: r.started.namespace.clone(),
        status: r.status.as_str().to_string(),
        stage: r.stage,
        percent: r.percent(),
        steps: r.started.steps.clone(),
        selector: r.started.selector.clone(),
        bake_ms: r.started.bake_ms,
        bake_ends_at: r.is_active().then(|| r.bake_ends().to_string()),
        check_url: r.started.check.url.clone(),
        check_timeout_ms: r.started.check.timeout_ms,
        instance_reports: r.started.check.instance_reports,
        changes: r
            .started
            .changes
            .iter()
            .map(|c| RolloutValue {
                key: namespace::split(&c.key).1.to_string(),
                value: crate::present::shown_value_for(catalog, &c.key, Some(&c.value)),
                sensitive: catalog.get(&c.key).is_none_or(|s| s.sensitive),
            })
            .collect(),
        transitions: r
            .transitions
            .iter()
            .map(|t| RolloutStep {
                seq: t.seq,
                at: t.at.to_string(),
                actor: t.actor.clone(),
                what: t.what.clone(),
                stage: t.stage,
                percent: t.percent,
                note: t.note.clone(),
            })
            .collect(),
        instances: Vec::new(),
    }
}

/// The active rollouts of `namespace` and whether each is meant to serve an instance (by its bare id and
/// labels): what `GET /admin/instances` shows beside each agent and client.
pub fn for_instance(
    state: &SettingsState,
    ns: &str,
    id: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<InstanceRollout> {
    state
        .rollouts()
        .values()
        .filter(|r| r.is_active() && r.started.namespace == ns)
        .map(|r| InstanceRollout {
            id: r.id().to_string(),
            stage: r.stage,
            percent: r.percent(),
            new_values: r.serves(Some(id), labels),
        })
        .collect()
}

/// The live agents and clients: their listed id (`agent/ID`), their own id, and their last heartbeat.
pub async fn live_followers(ledger: &Ledger) -> Result<Vec<(String, String, InstanceInfo)>, Error> {
    let store = ledger.store().clone();
    let since = crate::instance::live_since(ledger.now());
    let beats = super::blocking(move || store.instances(since).map_err(Error::from)).await?;
    Ok(beats
        .into_iter()
        .filter_map(|b| {
            let info: InstanceInfo = serde_json::from_value(b.info).ok()?;
            let bare = b.id.split_once('/').map(|(_, id)| id.to_string())?;
            matches!(info.kind.as_str(), "agent" | "client").then_some((b.id, bare, info))
        })
        .collect())
}
