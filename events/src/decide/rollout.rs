//! The rules of a gradual rollout (see [`crate::rollout`]): start one, advance it a stage (or complete it
//! from its last stage, merging its values by the ordinary settings rule in the same batch), and roll it
//! back. Advancing and rolling back name the stage or state they expect and are no-ops otherwise, so that
//! when several servers' drivers race for the same transition under the log's write lock, exactly one
//! makes it and the others append nothing.

use super::{settings, spec, store, Context, Rejection};
use crate::event::{Event, StoredValue};
use crate::rollout::{
    secret_name, valid_id, RolloutAdvanced, RolloutChange, RolloutCheck, RolloutCompleted, RolloutRolledBack,
    RolloutStarted,
};
use crate::time::Timestamp;
use crate::value::Input;
use std::collections::{BTreeMap, BTreeSet};

/// At most this many changes, steps and selector labels in one rollout.
const MAX_CHANGES: usize = 100;
const MAX_STEPS: usize = 20;
const MAX_SELECTOR: usize = 32;
/// The longest bake: a week.
const MAX_BAKE_MS: u64 = 7 * 24 * 3600 * 1000;
const MAX_CHECK_TIMEOUT_MS: u64 = 60_000;

/// A rollout to start, as a use case hands it to `decide`.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRollout {
    pub id: String,
    pub namespace: String,
    /// Keys (bare in the namespace, or qualified) and their new values.
    pub changes: Vec<(String, Input)>,
    pub selector: BTreeMap<String, String>,
    pub steps: Vec<u8>,
    pub bake_ms: u64,
    pub check: RolloutCheck,
}

pub(super) fn start(cx: &Context<'_>, req: StartRollout) -> Result<Vec<Event>, Rejection> {
    if !valid_id(&req.id) {
        return Err(Rejection::invalid(format!(
            "a rollout id is 1 to 64 of A-Z a-z 0-9 . _ -; got {:?}",
            req.id.chars().take(80).collect::<String>()
        )));
    }
    if cx.state.rollout(&req.id).is_some() {
        return Err(Rejection::conflict(format!("a rollout named {} exists already; choose another id", req.id)));
    }
    let ns = req.namespace.clone();
    if cx.catalog.namespace(&ns).is_none() {
        return Err(Rejection::invalid(format!("unknown namespace {:?}", ns.chars().take(80).collect::<String>())));
    }
    check_steps(&req.steps)?;
    if req.bake_ms > MAX_BAKE_MS {
        return Err(Rejection::invalid(format!("bake expects at most 7 days; got {} ms", req.bake_ms)));
    }
    check_selector(&req.selector)?;
    check_check(&req.check)?;
    if req.changes.is_empty() {
        return Err(Rejection::invalid("a rollout changes at least one key"));
    }
    if req.changes.len() > MAX_CHANGES {
        return Err(Rejection::invalid(format!("a rollout changes at most {MAX_CHANGES} keys")));
    }
    let busy: BTreeMap<&str, &str> =
        cx.state.active_rollouts().into_iter().flat_map(|r| r.keys().map(move |k| (k, r.id()))).collect();
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for (key, value) in req.changes {
        let qualified = if key.contains(crate::namespace::SEP) { key } else { crate::namespace::join(&ns, &key) };
        let spec = spec(cx.catalog, &qualified)?;
        if spec.namespace != ns {
            return Err(Rejection::invalid(format!(
                "key {} is not in namespace {ns}: a rollout changes keys of one namespace",
                spec.id
            )));
        }
        let key = spec.id.clone();
        if spec.locked {
            return Err(Rejection::locked(&key, "rollout", spec.bootstrap, None));
        }
        if !seen.insert(key.clone()) {
            return Err(Rejection::invalid(format!("key {key} is named twice")));
        }
        if let Some(other) = busy.get(key.as_str()) {
            return Err(Rejection::conflict(format!(
                "key {key} is already rolling out in rollout {other}: finish or roll that back first"
            )));
        }
        let parsed = spec.parse(&value).map_err(|e| Rejection::invalid(e.to_string()))?;
        let value = store(spec.sensitive, &secret_name(&req.id, &key), &parsed, cx.sealer)?;
        changes.push(RolloutChange { key, value });
    }
    let started = RolloutStarted {
        id: req.id.clone(),
        namespace: ns.clone(),
        changes,
        selector: req.selector,
        steps: req.steps,
        bake_ms: req.bake_ms,
        check: req.check,
    };
    let first = started.steps.first().copied().unwrap_or(100);
    let keys: Vec<String> = started.changes.iter().map(|c| c.key.clone()).collect();
    let no_label_stage = started.selector.is_empty();
    let mut events = vec![Event::RolloutStarted(started)];
    // Without a selector there is no label stage to bake: the first percentage step starts at once.
    if no_label_stage {
        events.push(Event::RolloutAdvanced(RolloutAdvanced {
            id: req.id,
            namespace: ns,
            keys,
            stage: 1,
            percent: first,
            manual: false,
        }));
    }
    Ok(events)
}

fn check_steps(steps: &[u8]) -> Result<(), Rejection> {
    let shown = || steps.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(Rejection::invalid(format!("steps expects 1 to {MAX_STEPS} percentages ending at 100")));
    }
    if steps.iter().any(|&p| p == 0 || p > 100) || steps.windows(2).any(|w| w[0] >= w[1]) || steps.last() != Some(&100)
    {
        return Err(Rejection::invalid(format!(
            "steps expects strictly increasing percentages from 1 to 100, ending at 100; got {}",
            shown()
        )));
    }
    Ok(())
}

fn check_selector(selector: &BTreeMap<String, String>) -> Result<(), Rejection> {
    if selector.len() > MAX_SELECTOR {
        return Err(Rejection::invalid(format!("a selector has at most {MAX_SELECTOR} labels")));
    }
    for (k, v) in selector {
        if !valid_id(k) || v.len() > 128 || v.chars().any(char::is_control) {
            return Err(Rejection::invalid(
                "a selector label is NAME=VALUE with a NAME of A-Z a-z 0-9 . _ - and a printable VALUE of at most 128 bytes",
            ));
        }
    }
    Ok(())
}

fn check_check(check: &RolloutCheck) -> Result<(), Rejection> {
    if let Some(url) = &check.url {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !scheme_ok || url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Rejection::invalid(format!(
                "check_url expects an http:// or https:// URL of at most 2048 bytes; got {:?}",
                url.chars().take(80).collect::<String>()
            )));
        }
    }
    if check.timeout_ms == 0 || check.timeout_ms > MAX_CHECK_TIMEOUT_MS {
        return Err(Rejection::invalid(format!("check_timeout expects 1 ms to 60 s; got {} ms", check.timeout_ms)));
    }
    Ok(())
}

/// Moves the rollout from `from_stage` to the next stage, or completes it from its last one. A no-op when
/// it has ended or is no longer at `from_stage` (another server made the transition). Unless `manual`,
/// refused before the stage's bake has ended at `now`.
pub(super) fn advance(
    cx: &Context<'_>,
    id: String,
    from_stage: u32,
    now: Timestamp,
    manual: bool,
) -> Result<Vec<Event>, Rejection> {
    let rollout = cx.state.rollout(&id).ok_or_else(|| Rejection::missing(format!("no rollout named {id}")))?;
    if !rollout.is_active() || rollout.stage != from_stage {
        return Ok(Vec::new());
    }
    if !manual && now < rollout.bake_ends() {
        return Err(Rejection::state(format!(
            "rollout {id} bakes stage {from_stage} until {}; advance it by hand to skip the bake",
            rollout.bake_ends()
        )));
    }
    let namespace = rollout.started.namespace.clone();
    let keys: Vec<String> = rollout.keys().map(str::to_string).collect();
    if from_stage < rollout.last_stage() {
        let stage = from_stage + 1;
        let percent = rollout.percent_at(stage);
        return Ok(vec![Event::RolloutAdvanced(RolloutAdvanced { id, namespace, keys, stage, percent, manual })]);
    }
    // The last stage baked: the completion and the merge of every value, as one batch.
    let mut events =
        vec![Event::RolloutCompleted(RolloutCompleted { id: id.clone(), namespace, keys, stage: from_stage, manual })];
    for change in &rollout.started.changes {
        let value = match &change.value {
            StoredValue::Plain(v) => v.clone(),
            StoredValue::Sealed(text) => {
                let bytes = cx.sealer.open(&secret_name(&id, &change.key), text).map_err(|e| {
                    Rejection::sealing(format!("cannot open rollout {id}'s value of {}: {e}", change.key))
                })?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    Rejection::sealing(format!("rollout {id}'s value of {} does not decode: {e}", change.key))
                })?
            }
        };
        events.extend(settings::set(cx, change.key.clone(), Input::Json(value))?);
    }
    Ok(events)
}

/// Ends the rollout without merging. A no-op when it has ended already.
pub(super) fn roll_back(
    cx: &Context<'_>,
    id: String,
    reason: String,
    signal: Option<String>,
) -> Result<Vec<Event>, Rejection> {
    crate::text::check_free_text("reason", &reason).map_err(Rejection::invalid)?;
    if let Some(signal) = &signal {
        crate::text::check_free_text("signal", signal).map_err(Rejection::invalid)?;
    }
    let rollout = cx.state.rollout(&id).ok_or_else(|| Rejection::missing(format!("no rollout named {id}")))?;
    if !rollout.is_active() {
        return Ok(Vec::new());
    }
    let namespace = rollout.started.namespace.clone();
    let keys = rollout.keys().map(str::to_string).collect();
    Ok(vec![Event::RolloutRolledBack(RolloutRolledBack { id, namespace, keys, stage: rollout.stage, reason, signal })])
}
