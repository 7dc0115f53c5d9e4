//! Gradual rollout by instance label: the events, the state a rollout folds into, and the pure rule of who
//! gets a rollout's new values.
//!
//! A rollout carries a set of setting changes in one namespace. It starts at stage 0, where only the
//! instances whose labels match its selector get the new values; each later stage `n` (1-based) serves
//! the new values to `steps[n - 1]` percent of all instances as well, chosen by a stable hash of the
//! rollout id and the instance id ([`bucket`]), so an instance that is in at 10 % stays in at 50 %. The
//! last step is always 100 %; when its bake time has passed, the rollout completes and its values are
//! merged into the main values by the ordinary settings rule, in the same batch as `RolloutCompleted`.
//! A rollback (manual, or automatic when the health signal fails during a bake) ends it and every
//! instance returns to the main values.
//!
//! Times are data: a stage's start is its event's `occurred_at`, and the commands that advance carry the
//! time they were decided at; nothing here reads a clock.

use crate::event::StoredValue;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One setting change of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutChange {
    /// The qualified key (`namespace:KEY`).
    pub key: String,
    /// The new value: plain, or sealed under [`secret_name`] when the key is sensitive.
    pub value: StoredValue,
}

/// The health signal watched during each bake.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RolloutCheck {
    /// A URL answered with a GET during the bake: a status outside 2xx, or no answer within `timeout_ms`,
    /// is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How long the check URL may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Whether the instances' own heartbeats count: an instance that runs the new values and reports
    /// `healthy: false` is a failure.
    #[serde(default)]
    pub instance_reports: bool,
}

fn default_timeout_ms() -> u64 {
    2000
}

/// `RolloutStarted`: a rollout begins at stage 0 (its label selector's instances).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutStarted {
    pub id: String,
    pub namespace: String,
    pub changes: Vec<RolloutChange>,
    /// Labels an instance must all carry, with these values, to get the new values from stage 0.
    pub selector: BTreeMap<String, String>,
    /// The percentage of each later stage, strictly increasing, the last 100.
    pub steps: Vec<u8>,
    /// How long each stage bakes before the next, in milliseconds.
    pub bake_ms: u64,
    pub check: RolloutCheck,
}

/// `RolloutAdvanced`: the rollout moved to `stage` (1-based into `steps`), serving `percent` %.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutAdvanced {
    pub id: String,
    pub namespace: String,
    /// The keys the rollout changes: what a follower re-renders (and restarts for, if one needs it).
    pub keys: Vec<String>,
    pub stage: u32,
    pub percent: u8,
    /// Advanced by a person before the bake ended, rather than by the driver after it.
    pub manual: bool,
}

/// `RolloutRolledBack`: the rollout ended without merging; every instance returns to the main values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRolledBack {
    pub id: String,
    pub namespace: String,
    /// The keys the rollout changes: what a follower re-renders (and restarts for, if one needs it).
    pub keys: Vec<String>,
    /// The stage it was at.
    pub stage: u32,
    pub reason: String,
    /// The health signal that failed (`check_url: ...`, `instance agent/a1: ...`); `None` for an abort by
    /// a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// `RolloutCompleted`: the last stage baked; the batch's `SettingChanged` events that follow it merge the
/// values into the main ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutCompleted {
    pub id: String,
    pub namespace: String,
    /// The keys the rollout changes: what a follower re-renders (and restarts for, if one needs it).
    pub keys: Vec<String>,
    pub stage: u32,
    pub manual: bool,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Active,
    Completed,
    RolledBack,
}

impl RolloutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStatus::Active => "active",
            RolloutStatus::Completed => "completed",
            RolloutStatus::RolledBack => "rolled_back",
        }
    }
}

/// One transition, as the audit and the status show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutTransition {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    /// `started`, `advanced`, `completed` or `rolled_back`.
    pub what: String,
    pub stage: u32,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A rollout as the log has folded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub started: RolloutStarted,
    pub status: RolloutStatus,
    pub stage: u32,
    /// When the current stage began (its event's time).
    pub stage_since: Timestamp,
    /// The seq of the current stage's event: an instance that has applied it runs the stage's values.
    pub stage_seq: u64,
    pub transitions: Vec<RolloutTransition>,
}

impl Rollout {
    pub fn id(&self) -> &str {
        &self.started.id
    }

    pub fn is_active(&self) -> bool {
        self.status == RolloutStatus::Active
    }

    /// The percentage of all instances served at `stage` (0 at the label stage).
    pub fn percent_at(&self, stage: u32) -> u8 {
        match stage {
            0 => 0,
            n => usize::try_from(n - 1).ok().and_then(|i| self.started.steps.get(i)).copied().unwrap_or(100),
        }
    }

    pub fn percent(&self) -> u8 {
        self.percent_at(self.stage)
    }

    /// The last stage (the one at 100 %).
    pub fn last_stage(&self) -> u32 {
        u32::try_from(self.started.steps.len()).unwrap_or(u32::MAX)
    }

    /// When the current stage's bake ends.
    pub fn bake_ends(&self) -> Timestamp {
        let bake = i64::try_from(self.started.bake_ms).unwrap_or(i64::MAX).saturating_mul(1000);
        Timestamp(self.stage_since.0.saturating_add(bake))
    }

    /// Whether the instance matches the label selector (an empty selector matches none).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.started.selector.is_empty() && self.started.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Whether an instance (by its id, when it gave one, and its labels) gets the new values now: while
    /// the rollout is active, by its labels from stage 0 on, or by its [`bucket`] from the percentage
    /// steps on. A rollout that ended serves nobody (completed values are the main values by then).
    pub fn serves(&self, instance: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
        if !self.is_active() {
            return false;
        }
        if self.selects(labels) {
            return true;
        }
        instance.is_some_and(|id| bucket(self.id(), id) < self.percent())
    }

    /// The keys it changes.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.started.changes.iter().map(|c| c.key.as_str())
    }
}

/// An instance's place in a rollout's percentage order, 0 to 99: the first 8 bytes of
/// blake3(rollout id, NUL, instance id), modulo 100. Stable for the pair, independent across rollouts.
pub fn bucket(rollout: &str, instance: &str) -> u8 {
    let mut h = blake3::Hasher::new();
    h.update(rollout.as_bytes());
    h.update(&[0]);
    h.update(instance.as_bytes());
    let bytes = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    u8::try_from(u64::from_be_bytes(first) % 100).unwrap_or(0)
}

/// The name a rollout's sensitive value is sealed under: bound to the rollout and the key, so a rollout's
/// ciphertext cannot be passed off as the main value or another rollout's.
pub fn secret_name(id: &str, key: &str) -> String {
    format!("rollout/{id}/{key}")
}

/// An id a person gives a rollout: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a rollout event is about: its id and namespace, for the fold, the watch stream and the audit.
pub fn namespace_of(event: &crate::Event) -> Option<&str> {
    match event {
        crate::Event::RolloutStarted(e) => Some(&e.namespace),
        crate::Event::RolloutAdvanced(e) => Some(&e.namespace),
        crate::Event::RolloutRolledBack(e) => Some(&e.namespace),
        crate::Event::RolloutCompleted(e) => Some(&e.namespace),
        _ => None,
    }
}

/// The keys a rollout event moves, if it is one.
pub fn keys_of(event: &crate::Event) -> Vec<&str> {
    match event {
        crate::Event::RolloutStarted(e) => e.changes.iter().map(|c| c.key.as_str()).collect(),
        crate::Event::RolloutAdvanced(e) => e.keys.iter().map(String::as_str).collect(),
        crate::Event::RolloutRolledBack(e) => e.keys.iter().map(String::as_str).collect(),
        crate::Event::RolloutCompleted(e) => e.keys.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The rollout an event is about, if it is a rollout event.
pub fn id_of(event: &crate::Event) -> Option<&str> {
    match event {
        crate::Event::RolloutStarted(e) => Some(&e.id),
        crate::Event::RolloutAdvanced(e) => Some(&e.id),
        crate::Event::RolloutRolledBack(e) => Some(&e.id),
        crate::Event::RolloutCompleted(e) => Some(&e.id),
        _ => None,
    }
}

/// Folds one rollout event into the rollouts by id. Total: `decide` made sure the rollout exists and is
/// active for every event but `RolloutStarted`, which names a new id.
pub fn apply(rollouts: &mut BTreeMap<String, Rollout>, event: &crate::Event, seq: u64, at: Timestamp, actor: &str) {
    use crate::Event as E;
    let transition = |what: &str, stage: u32, percent: u8, note: Option<String>| RolloutTransition {
        seq,
        at,
        actor: actor.to_string(),
        what: what.to_string(),
        stage,
        percent,
        note,
    };
    match event {
        E::RolloutStarted(e) => {
            let rollout = Rollout {
                started: e.clone(),
                status: RolloutStatus::Active,
                stage: 0,
                stage_since: at,
                stage_seq: seq,
                transitions: vec![transition("started", 0, 0, None)],
            };
            rollouts.insert(e.id.clone(), rollout);
        }
        E::RolloutAdvanced(e) => {
            if let Some(r) = rollouts.get_mut(&e.id) {
                r.stage = e.stage;
                r.stage_since = at;
                r.stage_seq = seq;
                let note = e.manual.then(|| "advanced by hand before the bake ended".to_string());
                r.transitions.push(transition("advanced", e.stage, e.percent, note));
            }
        }
        E::RolloutRolledBack(e) => {
            if let Some(r) = rollouts.get_mut(&e.id) {
                r.status = RolloutStatus::RolledBack;
                r.stage_seq = seq;
                let note = match &e.signal {
                    Some(s) => format!("{} (signal: {s})", e.reason),
                    None => e.reason.clone(),
                };
                let percent = r.percent();
                r.transitions.push(transition("rolled_back", e.stage, percent, Some(note)));
            }
        }
        E::RolloutCompleted(e) => {
            if let Some(r) = rollouts.get_mut(&e.id) {
                r.status = RolloutStatus::Completed;
                r.stage_seq = seq;
                r.transitions.push(transition("completed", e.stage, 100, None));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_spread_and_independent_across_rollouts() {
        assert_eq!(bucket("r1", "a"), bucket("r1", "a"));
        let in_ten = (0..1000).filter(|i| bucket("r1", &format!("i{i}")) < 10).count();
        assert!((50..=150).contains(&in_ten), "about 10 % of 1000 instances in the first 10 %: {in_ten}");
        let differ = (0..100).filter(|i| bucket("r1", &format!("i{i}")) != bucket("r2", &format!("i{i}"))).count();
        assert!(differ > 80, "another rollout orders instances afresh: {differ}");
    }
}
