//! What the load harness (benches/load.rs) and the etcd peer (benches/etcd-peer) say to each other: one
//! JSON request per line on the peer's stdin, one JSON reply per line on its stdout. The peer answers
//! `Ready` (or `Failed`) once etcd is up, then one reply per request, and `Stopped` last.

use crate::measure::{Delivery, Phase, Window};
use serde::{Deserialize, Serialize};

/// A phase for the peer to run on etcd, or the end of the run.
#[derive(Serialize, Deserialize)]
pub enum Request {
    /// Ranges of the read key, `serializable` or etcd's default linearizable read.
    Get { clients: usize, serializable: bool, window: Window },
    /// Durable puts to the write key.
    Put { clients: usize, window: Window },
    /// Change-to-watch delivery, one change at a time.
    Watch { changes: usize },
    /// Fan-out (benches/fleet.rs): `watchers` watch streams on the write key, one connection each, then
    /// `changes` paced puts, each timed to its arrival at the last watcher.
    Fanout { watchers: usize, changes: usize },
    /// Stop etcd and exit.
    Stop,
}

/// The peer's answer.
#[derive(Serialize, Deserialize)]
pub enum Reply {
    /// etcd answers; its process id, for the CPU figures.
    Ready {
        pid: u32,
        version: String,
    },
    Phase(Phase),
    Delivery(Delivery),
    Fanout(Fanout),
    /// How etcd stopped.
    Stopped(String),
    /// Why etcd could not start or a phase could not run.
    Failed(String),
}

/// What a fan-out phase measured on etcd, the same figures benches/fleet.rs takes of cfgledger.
#[derive(Serialize, Deserialize)]
pub struct Fanout {
    /// From the put being sent to the last watcher receiving it: p50 and p99 over the changes, in ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// etcd's resident memory with the watchers open, less before them, per watcher.
    pub rss_per_watcher_kib: f64,
    /// etcd's CPU over 5 s with every watch open and nothing changing, as a share of one core.
    pub idle_cpu: f64,
    /// etcd's CPU per change, in ms.
    pub cpu_per_change_ms: f64,
}
