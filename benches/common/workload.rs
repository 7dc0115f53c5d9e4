//! The settings workload of the benches that need a big store (time travel, the web UI): `config set`s
//! spread over the catalog's writable keys and 200 actors (both skewed: a few hot, a long cold tail), through
//! the API, the CLI and the UI, with occasional resets and whole-catalog imports, counting the events each
//! command will append.

use cfgledger::WriteContext;
use cfgledger_events::{Actor, Catalog, Cause, Command, ImportRequest, Input, Source, ValueType};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;

/// Actors of the workload.
pub const ACTORS: usize = 200;

/// A writable key and values it accepts, as CLI text and as the canonical JSON an import sends.
pub struct KeyPool {
    pub key: String,
    pub values: Vec<(String, Value)>,
    pub next: usize,
    /// Whether the log holds a value for the key now (a reset of a key without one appends nothing).
    pub held: bool,
}

/// Text values to try for a type; the catalog's own parser keeps the ones that fit.
pub fn candidates(ty: &ValueType) -> Vec<String> {
    let spread = |lo: i64, hi: i64| -> Vec<String> {
        let hi = hi.min(lo.saturating_add(100_000));
        (0..16).map(|i| (lo + (hi - lo) * i / 15).to_string()).collect()
    };
    match ty {
        ValueType::Int { min, max } => {
            let lo = min.unwrap_or(0);
            spread(lo, max.unwrap_or(lo + 10_000))
        }
        ValueType::Float { min, max } => {
            let lo = min.unwrap_or(0.0);
            let hi = max.unwrap_or(lo + 100.0);
            (0..16).map(|i| format!("{}", lo + (hi - lo) * f64::from(i) / 15.0)).collect()
        }
        ValueType::Bool => vec!["true".into(), "false".into()],
        ValueType::Enum { values } => values.clone(),
        ValueType::Duration { .. } => {
            ["100ms", "500ms", "1s", "2s", "5s", "10s", "15s", "30s", "45s", "1m", "2m", "5m", "10m", "30m", "1h"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        }
        ValueType::String { .. } => (0..16).map(|i| format!("bench-value-{i:02}-of-this-key")).collect(),
        ValueType::List { values } if values.is_empty() => (0..16).map(|i| format!("alpha,beta,gamma-{i}")).collect(),
        ValueType::List { values } => (1..=values.len()).map(|n| values[..n].join(",")).collect(),
        ValueType::Url { .. } | ValueType::Json => Vec::new(),
    }
}

/// The catalog's keys the API accepts changes to, with at least two values each. `SNAPSHOT_INTERVAL` is
/// left alone: it decides how often checkpoints are written.
pub fn writable_keys(catalog: &Catalog) -> Vec<KeyPool> {
    catalog
        .specs()
        .iter()
        .filter(|s| !s.locked && !s.sensitive && !s.bootstrap && s.id != "cfgledger:SNAPSHOT_INTERVAL")
        .filter_map(|spec| {
            let mut values: Vec<(String, Value)> = Vec::new();
            for text in candidates(&spec.ty) {
                if let Ok(parsed) = spec.parse(&Input::Text(text.clone())) {
                    if !values.iter().any(|(_, v)| *v == parsed) {
                        values.push((text, parsed));
                    }
                }
            }
            (values.len() >= 2).then(|| KeyPool { key: spec.id.clone(), values, next: 0, held: false })
        })
        .collect()
}

/// Zipf-like weights: the first item is the hottest.
pub fn skewed(n: usize, s: f64) -> WeightedIndex<f64> {
    WeightedIndex::new((0..n).map(|i| 1.0 / ((i + 1) as f64).powf(s))).expect("weights")
}

/// Settings commands spread over keys, actors and sources, and the events each will append.
pub struct Workload {
    pub rng: StdRng,
    pub keys: Vec<KeyPool>,
    pub key_pick: WeightedIndex<f64>,
    pub actors: Vec<String>,
    pub actor_pick: WeightedIndex<f64>,
    /// Events the commands generated so far will append, per key, per actor and per source.
    pub key_events: Vec<u64>,
    pub actor_events: Vec<u64>,
    pub source_events: BTreeMap<&'static str, u64>,
    pub events: u64,
    pub imports: u64,
    pub resets: u64,
}

impl Workload {
    pub fn new(catalog: &Catalog, seed: u64) -> Workload {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut keys = writable_keys(catalog);
        keys.shuffle(&mut rng);
        let mut actors: Vec<String> = (0..ACTORS)
            .map(|i| match i % 4 {
                0 => format!("svc-deployer-{i:03}"),
                1 => format!("alice-{i:03}"),
                2 => format!("ops-bot-{i:03}"),
                _ => format!("bob-{i:03}"),
            })
            .collect();
        actors.shuffle(&mut rng);
        Workload {
            key_pick: skewed(keys.len(), 1.0),
            actor_pick: skewed(actors.len(), 1.0),
            key_events: vec![0; keys.len()],
            actor_events: vec![0; actors.len()],
            source_events: BTreeMap::new(),
            keys,
            actors,
            rng,
            events: 0,
            imports: 0,
            resets: 0,
        }
    }

    pub fn actor(&mut self) -> (usize, Actor) {
        let i = self.actor_pick.sample(&mut self.rng);
        let roll: f64 = self.rng.gen();
        let source = if roll < 0.70 {
            Source::Api
        } else if roll < 0.97 {
            Source::Cli
        } else {
            Source::Ui
        };
        let actor = Actor {
            name: self.actors[i].clone(),
            role: Some(if i % 3 == 0 { "editor" } else { "admin" }.into()),
            source,
            address: Some(format!("10.0.{}.{}", i / 250, i % 250)),
            request_id: (source != Source::Cli).then(|| format!("req-{:016x}", self.rng.gen::<u64>())),
        };
        (i, actor)
    }

    fn count(&mut self, actor: usize, source: Source, events: u64) {
        self.actor_events[actor] += events;
        *self.source_events.entry(source.as_str()).or_default() += events;
        self.events += events;
    }

    /// The next command: mostly a `config set` of one key, sometimes a reset, now and then an import of
    /// every key (one batch of one event per key plus the import's own).
    pub fn job(&mut self) -> (Command, WriteContext) {
        let (ai, actor) = self.actor();
        let source = actor.source;
        let via_cli = source == Source::Cli;
        let roll: f64 = self.rng.gen();
        if roll < 0.002 {
            let digest = format!("{:016x}{:016x}", self.rng.gen::<u64>(), self.rng.gen::<u64>());
            let mut entries: Vec<(String, Value)> = Vec::with_capacity(self.keys.len());
            for (k, pool) in self.keys.iter_mut().enumerate() {
                let (_, value) = pool.values[pool.next % pool.values.len()].clone();
                pool.next += 1;
                pool.held = true;
                self.key_events[k] += 1;
                entries.push((pool.key.clone(), value));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let n = entries.len() as u64;
            self.count(ai, source, n + 1);
            self.imports += 1;
            let via = if via_cli { "config import" } else { "POST /admin/config/import" };
            let cmd = Command::Import(ImportRequest {
                digest: digest.clone(),
                source: None,
                entries,
                expected_head: None,
                baseline: BTreeMap::new(),
            });
            let ctx =
                WriteContext { actor, cause: Cause::Import { digest, via: via.into() }, reason: None, bypass: false };
            return (cmd, ctx);
        }
        let k = self.key_pick.sample(&mut self.rng);
        let key = self.keys[k].key.clone();
        self.key_events[k] += 1;
        self.count(ai, source, 1);
        let reason = (self.rng.gen::<f64>() < 0.1).then(|| format!("ticket OPS-{}", self.rng.gen_range(1000..9999)));
        if roll < 0.03 && self.keys[k].held {
            self.keys[k].held = false;
            self.resets += 1;
            let cause = if via_cli {
                Cause::Cli { command: "config reset".into() }
            } else {
                Cause::Api { method: "DELETE".into(), path: format!("/admin/config/{key}") }
            };
            return (Command::Reset { key }, WriteContext { actor, cause, reason, bypass: false });
        }
        let pool = &mut self.keys[k];
        let (text, _) = pool.values[pool.next % pool.values.len()].clone();
        pool.next += 1;
        pool.held = true;
        let cause = if via_cli {
            Cause::Cli { command: "config set".into() }
        } else {
            Cause::Api { method: "PUT".into(), path: format!("/admin/config/{key}") }
        };
        (Command::Set { key, value: Input::Text(text) }, WriteContext { actor, cause, reason, bypass: false })
    }
}

/// Appends the workload's commands in waves of `wave` (the writer groups each wave into few commits) until
/// `ledger`'s log holds `events`; returns the workload (its keys and actors) and how long it took.
pub fn fill(
    rt: &tokio::runtime::Runtime,
    ledger: &cfgledger::Ledger,
    events: u64,
    wave: usize,
) -> (Workload, std::time::Duration) {
    let mut work = Workload::new(ledger.catalog(), 16);
    let started = std::time::Instant::now();
    while ledger.snapshot().head.seq < events {
        let jobs: Vec<_> = (0..wave).map(|_| work.job()).collect();
        let pending = jobs.into_iter().map(|(cmd, ctx)| ledger.execute_async(cmd, ctx));
        for result in rt.block_on(futures_util::future::join_all(pending)) {
            result.expect("the bench's command is accepted");
        }
    }
    (work, started.elapsed())
}

/// A SQLite store at `db` over the built-in catalog, with no `.env`, its secrets sealed under a key derived from
/// `secret`: the big store the workload fills.
pub fn open_builtin(db: &std::path::Path, secret: &str) -> cfgledger::Ledger {
    let url = cfgledger::store::StoreUrl::Sqlite(db.to_path_buf());
    let mut opts = cfgledger::OpenOptions::new(url, cfgledger_events::builtin::builtin());
    opts.env_file = cfgledger::EnvFileChoice::None;
    opts.process_env.insert("CFGLEDGER_AUTH_ENCRYPTION_SECRET".into(), secret.into());
    cfgledger::Ledger::open(opts).expect("the bench store opens").0
}
