//! The published state: a [`Snapshot`] of the projection with every key resolved, swapped in atomically
//! (arc-swap), and [`Settings`], the lock-free read handle an application keeps. A read is a pointer load
//! and a hash lookup; readers never block the tailer and the tailer never blocks readers.

use arc_swap::ArcSwap;
use cfgledger_events::catalog::Catalog;
use cfgledger_events::event::StoredValue;
use cfgledger_events::{Head, Timestamp};
use cfgledger_projections::{resolve, resolve_key, BootValues, SettingView, SettingsState};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The state at one head, with every catalog key resolved.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: SettingsState,
    pub head: Head,
    /// The time of the newest event: new events are never stamped earlier.
    pub head_time: Timestamp,
    /// Every catalog key, in catalog order. Shared with the snapshots before it where the key did not change.
    pub views: Vec<Arc<SettingView>>,
    /// Positions in `views` by qualified key (and by bare key in the default namespace): the catalog's own.
    index: Arc<HashMap<String, usize>>,
}

impl Snapshot {
    pub fn build(
        catalog: &Catalog,
        state: SettingsState,
        head: Head,
        head_time: Timestamp,
        env: &BTreeMap<String, String>,
        boot: Option<&BootValues>,
    ) -> Snapshot {
        let views: Vec<Arc<SettingView>> = resolve(catalog, &state, env, boot).into_iter().map(Arc::new).collect();
        // Views are in catalog order: the catalog's positions (qualified keys, and bare ones in the default
        // namespace, so that `LOG_LEVEL` costs one lookup as `mcpgateway:LOG_LEVEL` does) index them.
        Snapshot { state, head, head_time, views, index: catalog.positions() }
    }

    /// The snapshot that follows this one with `state`, built by the same process (same catalog,
    /// environment and boot values): a key whose log value did not change keeps its resolved view, so a
    /// commit costs what it changed, not the size of the catalog.
    pub fn next(
        &self,
        catalog: &Catalog,
        state: SettingsState,
        head: Head,
        head_time: Timestamp,
        env: &BTreeMap<String, String>,
        boot: Option<&BootValues>,
    ) -> Snapshot {
        let mut views = self.views.clone();
        let specs = catalog.specs();
        // Only the keys an event after this snapshot changed or reset resolve again (a key the catalog does
        // not declare has no view).
        for key in state.touched_after(self.state.applied_seq) {
            if let Some(&i) = self.index.get(key) {
                views[i] = Arc::new(resolve_key(&specs[i], &state, env, boot));
            }
        }
        Snapshot { state, head, head_time, views, index: self.index.clone() }
    }

    pub fn view(&self, key: &str) -> Option<&SettingView> {
        self.index.get(key).map(|&i| self.views[i].as_ref())
    }
}

/// A cheap, cloneable, lock-free read handle on the live settings.
#[derive(Clone)]
pub struct Settings {
    live: Arc<ArcSwap<Snapshot>>,
}

impl Settings {
    pub(crate) fn new(live: Arc<ArcSwap<Snapshot>>) -> Self {
        Settings { live }
    }

    /// Calls `f` with the value in force for `key`, if it has one. A sensitive value held by the log is
    /// sealed and gives `None` (open it with the ledger's secret box); one from the process environment or
    /// a default arrives as given, since it never left the process.
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&Value) -> R) -> Option<R> {
        let snap = self.live.load();
        match snap.view(key)?.value.as_ref()? {
            StoredValue::Plain(v) => Some(f(v)),
            StoredValue::Sealed(_) => None,
        }
    }

    /// The value in force for `key` (non-sensitive keys), cloned.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.with(key, Value::clone)
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.with(key, Value::as_i64).flatten()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.with(key, Value::as_bool).flatten()
    }

    pub fn get_string(&self, key: &str) -> Option<String> {
        self.with(key, |v| v.as_str().map(str::to_string)).flatten()
    }

    /// A duration key in milliseconds.
    pub fn get_duration_ms(&self, key: &str) -> Option<u64> {
        self.with(key, |v| v.as_str().and_then(cfgledger_events::value::parse_duration_ms)).flatten()
    }

    /// The seq the live state has applied.
    pub fn applied_seq(&self) -> u64 {
        self.live.load().head.seq
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.live.load_full()
    }
}
