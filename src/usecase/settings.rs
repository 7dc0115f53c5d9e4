//! Reading and changing settings: the list (filtered, or as of a past point), one key, `set` and `reset`
//! (compare-and-set when the caller names the version it read). Values leave as [`ConfigItem`]s, with
//! sensitive ones masked by `present`.

use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::live::Snapshot;
use crate::model::{AsOf, ConfigItem, ConfigList, ListQuery};
use crate::present;
use cfgledger_events::catalog::{Catalog, SettingSpec};
use cfgledger_events::namespace;
use cfgledger_events::{Command, Input, RejectionKind};
use cfgledger_projections::SettingView;
use std::sync::Arc;

/// The item of one key as `view` resolves it; `as_of` marks an answer about a past point.
pub fn item(spec: &SettingSpec, view: &SettingView, as_of: Option<&AsOf>) -> ConfigItem {
    ConfigItem {
        namespace: spec.namespace.clone(),
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
        stored_error: view.stored_error.clone(),
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

/// The namespaces a caller named: the default one when none, every one for `*`; an unknown one is refused,
/// naming the known ones.
pub fn namespaces<'c>(catalog: &'c Catalog, named: Option<&str>) -> Result<Vec<&'c str>, Error> {
    match named {
        Some("*") => Ok(catalog.namespaces().iter().map(|n| n.name.as_str()).collect()),
        Some(ns) => check_namespace(catalog, ns).map(|n| vec![n]),
        None => Ok(vec![namespace::DEFAULT]),
    }
}

fn check_namespace<'c>(catalog: &'c Catalog, ns: &str) -> Result<&'c str, Error> {
    match catalog.namespace(ns) {
        Some(n) => Ok(n.name.as_str()),
        None => {
            let known: Vec<&str> = catalog.namespaces().iter().map(|n| n.name.as_str()).collect();
            Err(Error::input(format!("unknown namespace {ns:?}; namespaces are {}", known.join(", "))))
        }
    }
}

/// The qualified key a caller named: `ns:KEY` as written, else `KEY` in `namespace` (the default one when
/// none). The namespace must exist; whether the key does is the operation's to say.
pub fn qualified_key(catalog: &Catalog, named_namespace: Option<&str>, key: &str) -> Result<String, Error> {
    let qualified = namespace::qualify(named_namespace, key);
    let (ns, bare) = namespace::split(&qualified);
    if let (Some(given), true) = (named_namespace, key.contains(namespace::SEP)) {
        if given != ns {
            return Err(Error::input(format!("key {key} names namespace {ns}, but the request names {given}")));
        }
    }
    check_namespace(catalog, ns)?;
    Ok(namespace::join(ns, bare))
}

/// Every key (of a namespace and category, or matching a search), as of now or a past point. An unknown
/// namespace or category is refused, naming the known ones.
pub async fn list(ledger: &Ledger, query: &ListQuery) -> Result<ConfigList, Error> {
    let catalog = ledger.catalog();
    let wanted = namespaces(catalog, query.namespace.as_deref())?;
    if let Some(category) = &query.category {
        // The namespaces' categories, in the order the catalog first names them.
        let mut known: Vec<&str> = Vec::new();
        for spec in catalog.specs().iter().filter(|s| wanted.contains(&s.namespace.as_str())) {
            if !known.contains(&spec.category.as_str()) {
                known.push(&spec.category);
            }
        }
        if !known.contains(&category.as_str()) {
            return Err(Error::input(format!("unknown category {category}; categories are {}", known.join(", "))));
        }
    }
    let (snap, as_of) = snapshot_as_of(ledger, query.as_of.as_deref()).await?;
    let needle = query.q.as_deref().map(str::to_ascii_lowercase);
    let items = catalog
        .specs()
        .iter()
        .filter(|s| wanted.contains(&s.namespace.as_str()))
        .filter(|s| query.category.as_ref().is_none_or(|c| &s.category == c))
        .filter(|s| {
            needle.as_ref().is_none_or(|n| {
                s.key.to_ascii_lowercase().contains(n) || s.description.to_ascii_lowercase().contains(n)
            })
        })
        .filter_map(|s| snap.view(&s.id).map(|v| item(s, v, as_of.as_ref())))
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
    Error::rejected(RejectionKind::UnknownKey, format!("unknown key {}", namespace::display(key)))
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
