//! Reading and changing settings: the list (filtered, or as of a past point), one key, `set` and `reset`
//! (compare-and-set when the caller names the version it read). Values leave as [`ConfigItem`]s, with
//! sensitive ones masked by `present`.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::live::Snapshot;
use crate::model::{AsOf, ConfigItem, ConfigList, ListQuery};
use crate::present;
use cfgledger_events::catalog::SettingSpec;
use cfgledger_events::{Command, Input, RejectionKind};
use cfgledger_projections::SettingView;
use std::sync::Arc;

/// The item of one key as `view` resolves it; `as_of` marks an answer about a past point.
pub fn item(spec: &SettingSpec, view: &SettingView, as_of: Option<&AsOf>) -> ConfigItem {
    ConfigItem {
        key: spec.key.clone(),
        value: present::shown_value(spec, view.value.as_ref()),
        source: view.source,
        ty: spec.ty.name().to_string(),
        category: spec.category.clone(),
        reload: spec.reload.as_str().to_string(),
        locked: spec.locked,
        sensitive: spec.sensitive,
        pending_restart: view.pending.is_some(),
        pending_value: view.pending.as_ref().map(|(value, _)| present::shown_value(spec, value.as_ref())),
        pending_source: view.pending.as_ref().map(|(_, source)| *source),
        updated_at: view.updated_at.map(|t| t.to_string()),
        updated_by: view.updated_by.clone(),
        seq: view.seq,
        version: view.version,
        description: spec.description.clone(),
        as_of: as_of.cloned(),
    }
}

/// The state at `as_of` (a point as `Ledger::point` reads it), or the live one; the point is reported when
/// one was asked for.
pub async fn snapshot_as_of(ledger: &Ledger, as_of: Option<&str>) -> Result<(Arc<Snapshot>, Option<AsOf>), Error> {
    let Some(point) = as_of.map(str::to_string) else {
        return Ok((ledger.snapshot(), None));
    };
    let l = ledger.clone();
    let snap = super::blocking(move || {
        let seq = l.point(&point)?.seq;
        l.snapshot_at(seq)
    })
    .await?;
    let at = AsOf { seq: snap.head.seq, time: snap.head_time.to_string() };
    Ok((snap, Some(at)))
}

/// Every key (of a category, or matching a search), as of now or a past point. An unknown category is
/// refused, naming the known ones.
pub async fn list(ledger: &Ledger, query: &ListQuery) -> Result<ConfigList, Error> {
    let catalog = ledger.catalog();
    if let Some(category) = &query.category {
        let mut known: Vec<&str> = catalog.specs().iter().map(|s| s.category.as_str()).collect();
        if !known.contains(&category.as_str()) {
            known.dedup();
            return Err(Error::input(format!("unknown category {category}; categories are {}", known.join(", "))));
        }
    }
    let (snap, as_of) = snapshot_as_of(ledger, query.as_of.as_deref()).await?;
    let needle = query.q.as_deref().map(str::to_ascii_lowercase);
    let items = catalog
        .specs()
        .iter()
        .filter(|s| query.category.as_ref().is_none_or(|c| &s.category == c))
        .filter(|s| {
            needle.as_ref().is_none_or(|n| {
                s.key.to_ascii_lowercase().contains(n) || s.description.to_ascii_lowercase().contains(n)
            })
        })
        .filter_map(|s| snap.view(&s.key).map(|v| item(s, v, as_of.as_ref())))
        .collect();
    // `head` is the live head, as the API has always answered; `as_of` names the point read.
    Ok(ConfigList { items, head: ledger.snapshot().head.seq, as_of })
}

/// One key, as of now or a past point.
pub async fn get(ledger: &Ledger, key: &str, as_of: Option<&str>) -> Result<ConfigItem, Error> {
    if ledger.catalog().get(key).is_none() {
        return Err(unknown_key(key));
    }
    let (snap, as_of) = snapshot_as_of(ledger, as_of).await?;
    current(ledger, &snap, key, as_of.as_ref())
}

fn current(ledger: &Ledger, snap: &Snapshot, key: &str, as_of: Option<&AsOf>) -> Result<ConfigItem, Error> {
    match (ledger.catalog().get(key), snap.view(key)) {
        (Some(spec), Some(view)) => Ok(item(spec, view, as_of)),
        _ => Err(unknown_key(key)),
    }
}

fn unknown_key(key: &str) -> Error {
    Error::rejected(RejectionKind::UnknownKey, format!("unknown key {key}"))
}

/// What a `set` or `reset` did: the key as it is now, and the seq of the event that changed it (`None` when
/// the value was already in force and nothing was appended).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub item: ConfigItem,
    pub seq: Option<u64>,
}

/// A change to one key: a new value, or back to the environment or the default.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Set(Input),
    Reset,
}

/// Sets or resets `key`. With `expected_version` (an `If-Match`), the change applies only if the key is
/// still at that version (409 otherwise). A locked key is refused (403) and the attempt recorded.
pub async fn change(
    ledger: &Ledger,
    key: &str,
    change: Change,
    expected_version: Option<u64>,
    ctx: WriteContext,
) -> Result<Changed, Error> {
    let cmd = match change {
        Change::Set(value) => Command::Set { key: key.to_string(), value },
        Change::Reset => Command::Reset { key: key.to_string() },
    };
    let cmd = match expected_version {
        Some(version) => Command::Expect { key: key.to_string(), version, then: Box::new(cmd) },
        None => cmd,
    };
    let outcome = ledger.execute_async(cmd, ctx).await?;
    let item = current(ledger, &ledger.snapshot(), key, None)?;
    Ok(Changed { item, seq: outcome.seqs.map(|(_, last)| last) })
}
