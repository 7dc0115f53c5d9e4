//! The rollout driver of `cfgledger serve`: every tick it looks at each active rollout and
//! - while the current stage bakes, watches its health signal (the check URL: a GET whose answer is not
//!   2xx, or that does not come within the rollout's timeout, fails; the instances' reports: a live agent
//!   or client the rollout serves, that has applied the stage and says `healthy: false`, fails), and rolls
//!   the rollout back at the first failure, naming the signal;
//! - once the bake has ended (checked by the same signal one last time), advances it to the next stage, or
//!   completes it from the last one, which merges its values.
//!
//! Every server of a store runs one. They need no leader: each transition is a command naming the stage it
//! expects (`AdvanceRollout { from_stage }`) or an active rollout (`RollBackRollout`), decided under the
//! log's write lock against the head read under it, and `decide` makes it a no-op once another server made
//! it, so exactly one event is appended per transition. The time a bake is judged by is this server's
//! clock, passed in the command; `decide` reads none.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use cfgledger_events::rollout::Rollout;
use cfgledger_events::{Actor, Cause, Command, Source};
use std::time::Duration;

/// How often the driver looks, unless `serve --rollout-tick` says otherwise.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// Runs the driver until `closing` is set.
pub fn spawn(
    ledger: Ledger,
    instance: String,
    tick: Duration,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let active: Vec<Rollout> =
                ledger.snapshot().state.rollouts().values().filter(|r| r.is_active()).cloned().collect();
            for rollout in active {
                if let Err(e) = drive(&ledger, &instance, &rollout).await {
                    tracing::warn!(rollout = %rollout.id(), error = %e, "the rollout driver could not act");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = closing.changed() => {}
            }
            if *closing.borrow() {
                break;
            }
        }
    })
}

/// One look at one rollout: roll it back on a failed signal, else advance it once its bake has ended.
async fn drive(ledger: &Ledger, instance: &str, rollout: &Rollout) -> Result<(), Error> {
    let ctx = || WriteContext {
        actor: Actor {
            name: "rollout-driver".to_string(),
            role: None,
            source: Source::System,
            address: None,
            request_id: None,
        },
        cause: Cause::RolloutDriver { id: rollout.id().to_string(), instance: instance.to_string() },
        reason: None,
        bypass: false,
    };
    if let Some(signal) = failed_signal(ledger, rollout).await? {
        let cmd = Command::RollBackRollout {
            id: rollout.id().to_string(),
            reason: format!("the health signal failed during the bake of stage {}", rollout.stage),
            signal: Some(signal.clone()),
        };
        let outcome = ledger.execute_async(cmd, ctx()).await?;
        if outcome.changed() {
            metrics::counter!("cfgledger_rollout_rollbacks_total").increment(1);
            tracing::warn!(rollout = %rollout.id(), stage = rollout.stage, %signal, "rollout rolled back: its health signal failed");
        }
        return Ok(());
    }
    let now = ledger.now();
    if now < rollout.bake_ends() {
        return Ok(());
    }
    let cmd = Command::AdvanceRollout { id: rollout.id().to_string(), from_stage: rollout.stage, now, manual: false };
    match ledger.execute_async(cmd, ctx()).await {
        Ok(outcome) => {
            if outcome.changed() {
                tracing::info!(rollout = %rollout.id(), from_stage = rollout.stage, "rollout advanced");
            }
            Ok(())
        }
        // The merge at the end was refused (a key locked since, a value its key no longer accepts): the
        // rollout cannot finish, so it is rolled back, saying why, rather than retried forever.
        // A value this instance cannot open (its key ring lacks a key) is not a verdict on the rollout: retried.
        Err(Error::Rejected(r))
            if rollout.stage == rollout.last_stage() && r.kind != cfgledger_events::RejectionKind::Sealing =>
        {
            let cmd = Command::RollBackRollout {
                id: rollout.id().to_string(),
                reason: format!("the merge of its values was refused: {}", r.message),
                signal: None,
            };
            ledger.execute_async(cmd, ctx()).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// The health signal that fails now, described, or `None` when all is well.
async fn failed_signal(ledger: &Ledger, rollout: &Rollout) -> Result<Option<String>, Error> {
    let check = &rollout.started.check;
    if let Some(url) = &check.url {
        let (url, timeout) = (url.clone(), Duration::from_millis(check.timeout_ms));
        let failure = tokio::task::spawn_blocking(move || check_url(&url, timeout)).await.map_err(|_| Error::Closed)?;
        if let Some(why) = failure {
            return Ok(Some(why));
        }
    }
    if check.instance_reports {
        let followers = crate::usecase::rollout::live_followers(ledger).await?;
        for (full, bare, info) in followers {
            let in_namespace = info.namespace.as_deref() == Some(rollout.started.namespace.as_str());
            if in_namespace
                && info.healthy == Some(false)
                && info.applied_seq >= rollout.stage_seq
                && rollout.serves(Some(&bare), &info.labels)
            {
                return Ok(Some(format!("instance {full} reported healthy: false")));
            }
        }
    }
    Ok(None)
}

/// `None` when `url` answers 2xx within `timeout`; otherwise what went wrong.
fn check_url(url: &str, timeout: Duration) -> Option<String> {
    let agent = ureq::AgentBuilder::new().timeout(timeout).redirects(0).build();
    match agent.get(url).call() {
        Ok(resp) if (200..300).contains(&resp.status()) => None,
        Ok(resp) => Some(format!("check_url {url} answered {}", resp.status())),
        Err(ureq::Error::Status(code, _)) => Some(format!("check_url {url} answered {code}")),
        Err(ureq::Error::Transport(t)) => Some(format!("check_url {url} did not answer: {t}")),
    }
}
