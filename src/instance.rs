//! This process as one instance of a fleet: an id, where it runs, and a heartbeat that records its applied
//! seq and head hash in the store (outside the event log), so that `GET /admin/instances` shows whether
//! every instance runs the same configuration.

use crate::ledger::Ledger;
use crate::model::InstanceInfo;
use crate::store::{ClaimedBeat, EventStore, InstanceBeat, StoreError};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How often an instance refreshes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// An instance silent for longer is not listed as live.
pub const LIVE_WINDOW: Duration = Duration::from_secs(10);
/// The delay of a beat that reports a new head.
const PROMPT_BEAT: Duration = Duration::from_secs(1);
/// Heartbeats older than this are deleted.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The URL it serves, once known.
    pub listen: String,
    pub started_at: cfgledger_events::Timestamp,
}

impl Instance {
    /// This process, serving `listen`, started at `started_at` (the ledger's clock).
    pub fn new(listen: String, started_at: cfgledger_events::Timestamp) -> Instance {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Instance { id: uuid::Uuid::new_v4().simple().to_string(), host, pid: std::process::id(), listen, started_at }
    }

    /// The heartbeat as of now, by the ledger's clock.
    pub fn beat(&self, ledger: &Ledger) -> InstanceBeat {
        let snap = ledger.snapshot();
        let now = ledger.now();
        InstanceBeat {
            id: self.id.clone(),
            info: serde_json::to_value(InstanceInfo {
                kind: "server".to_string(),
                host: self.host.clone(),
                pid: self.pid,
                listen: self.listen.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                started_at: self.started_at.to_string(),
                applied_seq: snap.head.seq,
                head_hash: snap.head.hash.to_hex(),
                namespace: None,
                labels: Default::default(),
                stale: false,
                staleness_secs: None,
                origin: None,
                child: None,
                error: None,
                reported_by: None,
                healthy: None,
                extra: serde_json::Map::new(),
            })
            .unwrap_or(serde_json::Value::Null),
            last_seen: now.as_micros(),
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Heartbeats older than this at `now` are deleted.
pub fn forget_before(now: cfgledger_events::Timestamp) -> i64 {
    now.as_micros().saturating_sub(micros(FORGET_AFTER))
}

/// The oldest `last_seen` of an instance live at `now`.
pub fn live_since(now: cfgledger_events::Timestamp) -> i64 {
    now.as_micros().saturating_sub(micros(LIVE_WINDOW))
}

/// Beats every [`HEARTBEAT`] and within [`PROMPT_BEAT`] of a publication, until `closing`; then removes the
/// heartbeat, so a stopped instance leaves the list at once.
pub async fn run_heartbeat(ledger: Ledger, instance: Instance, mut closing: tokio::sync::watch::Receiver<bool>) {
    let mut published = ledger.subscribe();
    loop {
        let beat = instance.beat(&ledger);
        let store = ledger.store().clone();
        let forget_before = forget_before(cfgledger_events::Timestamp::from_micros(beat.last_seen));
        match tokio::task::spawn_blocking(move || store.heartbeats(&[beat], Some(forget_before))).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot record the heartbeat"),
            Err(_) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT) => {}
            changed = published.changed() => {
                if changed.is_err() {
                    break;
                }
                // A new head is reported within a second, not at every publication: under a stream of
                // writes a beat per change would cost the store a write (and a sync) per change.
                tokio::time::sleep(PROMPT_BEAT).await;
            }
            _ = closing.changed() => break,
        }
        if *closing.borrow() {
            break;
        }
    }
    let store = ledger.store().clone();
    let id = instance.id.clone();
    let _ = tokio::task::spawn_blocking(move || store.forget_instance(&id)).await;
}

/// The most beats one transaction takes.
const MAX_GROUP: usize = 4096;
/// How long a group stays open for more beats after its first: agents beat every few seconds, so a beat
/// stored this much later costs nothing, while beats arriving one by one would otherwise each be a
/// transaction (a sync, and the store's write lock taken from the log's writer).
const GROUP_WINDOW: Duration = Duration::from_millis(50);
/// The most beats waiting for a transaction; beyond it a beat is refused, to be sent again. 10,000 agents
/// beating every 3 s fill about 170 per group; the bound keeps the queue's memory under about 80 MB even at
/// the largest beat the API accepts (about 10 KB).
const MAX_WAITING: usize = 8_192;

/// One beat waiting for its group's transaction: whether its sender may take over an id another subject
/// reports (an admin may, to clear an entry), and who to tell.
struct Waiting {
    beat: InstanceBeat,
    may_take_over: bool,
    reply: tokio::sync::oneshot::Sender<Result<(), BeatError>>,
}

/// Records agents' and clients' heartbeats in groups: the beats that arrive within [`GROUP_WINDOW`] of a
/// group's first, or while the one before is being written, go into one transaction, so that ten thousand
/// agents beating every few seconds cost the store at most twenty transactions (and syncs) a second rather
/// than one per beat, and the log's writer waits for the store's write lock behind them at most that often
/// (on SQLite a group's owner lookups and writes both hold it). A beat is answered once the transaction
/// holding it is stored; `cfgledger_heartbeats_refused_total` counts those refused for their id.
///
/// An id belongs to the subject that reports it while it is live: each beat's id is checked against the
/// store and against the beats before it in the group, one after the other, in the transaction that stores
/// them and under a lock every server of the store takes, so two subjects sending the same id, to one
/// server or to several, cannot both take it.
pub struct BeatRecorder {
    queue: mpsc::SyncSender<Waiting>,
}

/// Why a beat was not recorded.
#[derive(Debug, Clone)]
pub enum BeatError {
    /// More beats are waiting than [`MAX_WAITING`]: send it again later.
    Busy,
    /// The recorder has stopped (the server is closing).
    Closed,
    /// The id is live and reported by another subject: what to say.
    Taken(String),
    Store(StoreError),
}

impl BeatRecorder {
    /// Starts the thread that writes the groups into `store`; it ends when the recorder is dropped.
    pub fn start(store: Arc<dyn EventStore>) -> BeatRecorder {
        let (queue, waiting) = mpsc::sync_channel::<Waiting>(MAX_WAITING);
        let spawned = std::thread::Builder::new().name("cfgledger-beats".into()).spawn(move || {
            while let Ok(first) = waiting.recv() {
                let closes = std::time::Instant::now() + GROUP_WINDOW;
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    let left = closes.saturating_duration_since(std::time::Instant::now());
                    match waiting.recv_timeout(left) {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                store_group(store.as_ref(), group);
            }
        });
        if let Err(e) = spawned {
            // Without the thread every beat is answered 503 (`Closed`), and the server's own beats go on.
            tracing::error!(error = %e, "cannot start the heartbeat thread: agents' heartbeats are refused");
        }
        BeatRecorder { queue }
    }

    /// Records `beat` with the others waiting; returns once it is stored. `may_take_over`: the sender may
    /// report an id another subject reports.
    pub async fn record(&self, beat: InstanceBeat, may_take_over: bool) -> Result<(), BeatError> {
        let (reply, stored) = tokio::sync::oneshot::channel();
        self.queue.try_send(Waiting { beat, may_take_over, reply }).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => BeatError::Busy,
            mpsc::TrySendError::Disconnected(_) => BeatError::Closed,
        })?;
        stored.await.map_err(|_| BeatError::Closed)?
    }
}

/// Stores the beats of `group` whose ids are theirs to report, in one transaction, and answers every beat:
/// the store checks each against the live owner of its id and the beats before it, under a lock every
/// server of the store takes ([`EventStore::claim_heartbeats`]).
fn store_group(store: &dyn EventStore, group: Vec<Waiting>) {
    let (claims, replies): (Vec<ClaimedBeat>, Vec<_>) = group
        .into_iter()
        .map(|w| {
            let since = live_since(cfgledger_events::Timestamp::from_micros(w.beat.last_seen));
            (ClaimedBeat { beat: w.beat, live_since: since, may_take_over: w.may_take_over }, w.reply)
        })
        .unzip();
    let answers: Vec<Result<(), BeatError>> = match store.claim_heartbeats(&claims) {
        Ok(admitted) => {
            let stored = admitted.iter().filter(|ok| **ok).count();
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            metrics::counter!("cfgledger_heartbeat_groups_total").increment(1);
            metrics::counter!("cfgledger_heartbeats_total").increment(count(stored));
            metrics::counter!("cfgledger_heartbeats_refused_total").increment(count(admitted.len() - stored));
            claims
                .iter()
                .zip(admitted)
                .map(|(claim, ok)| {
                    ok.then_some(()).ok_or_else(|| {
                        BeatError::Taken(format!(
                            "instance {} is reported by another subject; choose another id",
                            claim.beat.id
                        ))
                    })
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, beats = claims.len(), "cannot record a group of heartbeats");
            claims.iter().map(|_| Err(BeatError::Store(e.clone()))).collect()
        }
    };
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A caller that stopped waiting has nothing to be told.
        let _ = reply.send(answer);
    }
}
