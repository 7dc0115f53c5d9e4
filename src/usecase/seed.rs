//! Seeding after the first start: the audited re-seed of locked keys (the one way to correct a locked key
//! seeded wrong without a new store), and drift (keys whose `.env` line or environment variable says
//! something other than the store). Both read the environment and `.env` of the process that runs them,
//! so they run on the store itself, never through a server.

use crate::error::Error;
use crate::ledger::{Drift, Ledger, WriteContext};
use cfgledger_events::decide::EnvEntry;
use cfgledger_events::{namespace, Command, Event};
use std::collections::BTreeMap;
use std::path::Path;

/// What a re-seed changed: each key with where its new value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reseeded {
    /// `KEY` (default namespace) or `namespace:KEY`, with where the value came from.
    pub changed: Vec<(String, String)>,
    pub seq: Option<u64>,
}

/// Sets the locked keys named in `keys` (every locked key with a value there, when `None`) to their value
/// in the process environment or `.env` (the environment wins, as the application reads them). Every value
/// that does not fit is reported at once and nothing is written.
pub async fn reseed(
    ledger: &Ledger,
    keys: Option<Vec<String>>,
    env_file: Option<(&Path, Vec<EnvEntry>)>,
    process_env: &BTreeMap<String, String>,
    ctx: WriteContext,
) -> Result<Reseeded, Error> {
    // In a store written before namespaces, bare names that were cfgledger's own are re-seeded only when
    // named: `config reseed` alone must not copy the store's old signing key into the gateway's namespace.
    let snap = ledger.snapshot();
    let legacy = snap.state.store.as_ref().is_some_and(|s| s.format == cfgledger_events::LEGACY_STORE_FORMAT);
    let set_aside = |name: &str| legacy && keys.is_none() && namespace::legacy_own_name(name);
    let mut entries: Vec<(String, EnvEntry)> = Vec::new();
    if let Some((path, lines)) = env_file {
        let from = path.display().to_string();
        entries.extend(lines.into_iter().filter(|e| !set_aside(&e.key)).map(|e| (from.clone(), e)));
    }
    let catalog = ledger.catalog();
    for (name, value) in process_env {
        if catalog.by_env_name(name).is_some_and(|s| s.locked) && !set_aside(name) {
            entries.push(("environment".into(), EnvEntry { key: name.clone(), value: value.clone(), line: 0 }));
        }
    }
    let keys = keys
        .map(|k| k.iter().map(|k| super::settings::qualified_key(catalog, None, k)).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let outcome = ledger.execute_async(Command::Reseed { entries, keys }, ctx).await?;
    let changed = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SettingReseeded(r) => Some((namespace::display(&r.key).to_string(), r.from.clone())),
            _ => None,
        })
        .collect();
    Ok(Reseeded { changed, seq: outcome.seqs.map(|(_, last)| last) })
}

/// The keys the store holds whose `.env` line or process environment variable differs from its value.
pub fn drift(
    ledger: &Ledger,
    env_file: Option<(&Path, Vec<EnvEntry>)>,
    process_env: &BTreeMap<String, String>,
) -> Vec<Drift> {
    let (path, entries) = match env_file {
        Some((p, e)) => (Some(p), e),
        None => (None, Vec::new()),
    };
    crate::ledger::drift(ledger, path, &entries, process_env)
}
