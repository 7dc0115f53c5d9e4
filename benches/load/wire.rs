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
    /// How etcd stopped.
    Stopped(String),
    /// Why etcd could not start or a phase could not run.
    Failed(String),
}
