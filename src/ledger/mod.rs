//! The ledger: the service that owns a store, the catalog, the encryption key and the live projection.
//! Commands go in through [`Ledger::execute`] and are decided and appended by the group-commit writer
//! ([`writer`]); the projection is caught up from the log by whoever holds the sync lock (the writer after
//! an append, the [`crate::tailer`] when another process wrote). Reads go to the published [`Snapshot`].

mod fold;
pub mod history;
pub(crate) mod open;
mod writer;

pub use open::{drift, Drift, EnvFileChoice, OpenOptions, OpenReport, LEGACY_SECRET_KEY, SECRET_KEY};

use crate::clock::Clock;
use crate::crypto::SecretBox;
use crate::error::Error;
use crate::live::{Settings, Snapshot};
use crate::store::EventStore;
use arc_swap::ArcSwap;
use cfgledger_events::{Actor, Batch, Catalog, Cause, Command, Event, Head, Record};
use cfgledger_projections::{BootValues, SettingsState};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex, OnceLock};

/// Who asks for a change and why: the audit context of a command.
#[derive(Debug, Clone)]
pub struct WriteContext {
    pub actor: Actor,
    pub cause: Cause,
    pub reason: Option<String>,
    /// The emergency bypass: apply the change without the approvals the change policy asks for. Only a user
    /// the policy names may; every use is recorded (`EmergencyBypassUsed`), counted and logged.
    pub bypass: bool,
}

impl WriteContext {
    /// Refuses a reason that the log should not keep forever: longer than 1 KB, or holding a control or
    /// bidirectional character ([`cfgledger_events::text::check_free_text`]); and an actor name (`--actor`,
    /// a token's subject) holding one. Checked for every command, whichever client sent it, before anything
    /// is decided.
    pub fn check(&self) -> Result<(), Error> {
        use cfgledger_events::text;
        if let Some(c) = self.actor.name.chars().find(|&c| text::is_hidden(c)) {
            return Err(Error::input(format!(
                "the actor name holds the control or bidirectional character U+{:04X}",
                u32::from(c)
            )));
        }
        match &self.reason {
            Some(reason) => text::check_free_text("reason", reason).map_err(Error::input),
            None => Ok(()),
        }
    }

    /// The command to decide: wrapped in the emergency bypass when the caller asked for it.
    fn command(&self, cmd: Command) -> Command {
        if self.bypass {
            Command::Bypass { by: self.actor.name.clone(), then: Box::new(cmd) }
        } else {
            cmd
        }
    }
}

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The batch appended, or `None` when the command changed nothing.
    pub batch_id: Option<String>,
    /// The seqs of the appended events (first, last).
    pub seqs: Option<(u64, u64)>,
    /// The log's head after the command.
    pub head: Head,
    /// The events the writer appended for this command, in order: what callers report, so that nothing
    /// reads the log back to learn what was just written.
    pub events: Vec<Event>,
}

impl Outcome {
    pub fn changed(&self) -> bool {
        self.batch_id.is_some()
    }

    /// The first appended event that `pick` recognizes.
    pub fn find<T>(&self, pick: impl FnMut(&Event) -> Option<T>) -> Option<T> {
        self.events.iter().find_map(pick)
    }
}

/// Everything the writer and the tailer share.
pub(crate) struct Core {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) sealer: crate::keyring::Keyring,
    /// The secret the store's key is derived from, kept to open files exported by other stores under the
    /// same secret (each store salts its own key).
    pub(crate) secret: Arc<zeroize::Zeroizing<String>>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) live: Arc<ArcSwap<Snapshot>>,
    /// The applied seq of the last published snapshot, for tasks that react to changes.
    pub(crate) published: tokio::sync::watch::Sender<u64>,
    /// Called by the writer with the new head seq after each append it commits (an extra wake-up channel
    /// for other processes, such as Redis).
    pub(crate) commit_hook: OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
    pub(crate) boot: OnceLock<BootValues>,
    /// Held while the projection is advanced and published, so that a stale snapshot never replaces a
    /// newer one.
    pub(crate) sync: Mutex<()>,
    /// Hands published states to the checkpoint thread, which writes them off the commit path.
    pub(crate) checkpoints: Mutex<Option<mpsc::SyncSender<Arc<Snapshot>>>>,
    /// The newest state handed over while the checkpoint thread was busy, which it writes next.
    pub(crate) checkpoint_pending: history::Pending,
    /// The seq of the newest checkpoint this process knows of.
    pub(crate) last_checkpoint: std::sync::atomic::AtomicU64,
    /// What the integrity check has found: gates the writer and the time-travel reads.
    pub(crate) integrity: Arc<crate::integrity::Integrity>,
    /// The last append the store refused (a full disk, a database that went away), until one succeeds.
    pub(crate) write_failure: Mutex<Option<(std::time::Instant, String)>>,
    /// The records this process appended most recently, contiguous and in order, so that the watch streams
    /// take a new change from memory rather than reading back what was just written.
    pub(crate) recent: Mutex<VecDeque<Arc<Record>>>,
}

/// How many of its newest appended records a process keeps in [`Core::recent`].
const RECENT: usize = 1024;

impl Core {
    /// Reads the log after the published head, verifies each link, folds, and publishes. Must be called
    /// with `sync` held.
    pub(crate) fn catch_up_locked(&self) -> Result<Arc<Snapshot>, Error> {
        let snap = self.live.load_full();
        let mut pos = fold::Position { head: snap.head, head_time: snap.head_time };
        match fold::fold_log(self.store.as_ref(), &mut pos, || snap.state.clone())? {
            None => Ok(snap),
            Some(state) => Ok(self.publish(state, pos.head, pos.head_time)),
        }
    }

    /// Keeps `records`, just committed, as the newest of [`Core::recent`]; what was there is dropped unless
    /// these continue it (another process may have appended in between).
    pub(crate) fn remember(&self, records: Vec<Record>) {
        let Ok(mut recent) = self.recent.lock() else { return };
        let continues = match (recent.back(), records.first()) {
            (Some(last), Some(first)) => first.seq == last.seq + 1 && first.prev_hash == last.hash,
            _ => false,
        };
        if !continues {
            recent.clear();
        }
        recent.extend(records.into_iter().map(Arc::new));
        let excess = recent.len().saturating_sub(RECENT);
        recent.drain(..excess);
    }

    pub(crate) fn catch_up(&self) -> Result<Arc<Snapshot>, Error> {
        let _guard = self.sync.lock().map_err(|_| Error::Closed)?;
        self.catch_up_locked()
    }

    /// Records the damage `e` names, if any (a record met while folding that does not verify).
    pub(crate) fn note(&self, e: Error) -> Error {
        self.integrity.note(e, || self.clock.now().to_string())
    }

    /// Hands `snap` to the checkpoint thread when `SNAPSHOT_INTERVAL` events have passed since the last
    /// checkpoint. Never blocks: when the thread is still busy with the previous one, this one waits as the
    /// pending one, which a later commit's replaces.
    pub(crate) fn maybe_checkpoint(&self, snap: &Arc<Snapshot>) {
        use std::sync::atomic::Ordering;
        let every = snap
            .view(history::INTERVAL_KEY)
            .and_then(|v| v.value.as_ref())
            .and_then(|v| match v {
                cfgledger_events::StoredValue::Plain(p) => p.as_u64(),
                cfgledger_events::StoredValue::Sealed(_) => None,
            })
            .unwrap_or(history::DEFAULT_INTERVAL);
        let last = self.last_checkpoint.load(Ordering::Relaxed);
        if every == 0 || snap.head.seq < last.saturating_add(every) {
            return;
        }
        let Ok(slot) = self.checkpoints.lock() else { return };
        if let Some(tx) = slot.as_ref() {
            match tx.try_send(snap.clone()) {
                Ok(()) => {}
                // Busy with the one before: this one is written next, unless a newer one replaces it.
                Err(mpsc::TrySendError::Full(snap)) => match self.checkpoint_pending.lock() {
                    Ok(mut pending) => *pending = Some(snap),
                    Err(_) => return,
                },
                Err(mpsc::TrySendError::Disconnected(_)) => return,
            }
            self.last_checkpoint.store(snap.head.seq, Ordering::Relaxed);
        }
    }

    /// Publishes a snapshot resolved afresh: after the boot values are set, which change every
    /// restart-required key's view.
    pub(crate) fn publish_full(
        &self,
        state: SettingsState,
        head: Head,
        head_time: cfgledger_events::Timestamp,
    ) -> Arc<Snapshot> {
        self.forget_shredded(&state);
        let snap = Arc::new(Snapshot::build(&self.catalog, state, head, head_time, &self.env, self.boot.get()));
        self.live.store(snap.clone());
        self.published.send_replace(snap.head.seq);
        snap
    }

    /// Drops the data keys the log says were shredded from this process's cache, before a state that says so
    /// is published (a shred appended by another instance included).
    fn forget_shredded(&self, state: &SettingsState) {
        let shredded = &state.master_keys().shredded;
        if let Some(data) = self.sealer.data_keys() {
            if data.known_shredded() != shredded.len() {
                data.forget(shredded.keys());
            }
        }
    }

    pub(crate) fn publish(
        &self,
        state: SettingsState,
        head: Head,
        head_time: cfgledger_events::Timestamp,
    ) -> Arc<Snapshot> {
        self.forget_shredded(&state);
        let before = self.live.load_full();
        let snap = Arc::new(before.next(&self.catalog, state, head, head_time, &self.env, self.boot.get()));
        self.live.store(snap.clone());
        self.published.send_replace(snap.head.seq);
        snap
    }
}

/// A handle on an open store. Cloning is cheap; the writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct Ledger {
    core: Arc<Core>,
    jobs: mpsc::Sender<writer::Job>,
}

impl Ledger {
    /// Decides and appends `cmd`, waiting until it is durable. Blocking: async callers use
    /// [`Ledger::execute_async`].
    pub fn execute(&self, cmd: Command, ctx: WriteContext) -> Result<Outcome, Error> {
        ctx.check()?;
        let cmd = ctx.command(cmd);
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs.send(writer::Job { cmd, ctx, reply: writer::Reply::Blocking(tx) }).map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// [`Ledger::execute`] for async callers: the append happens on the writer thread.
    pub async fn execute_async(&self, cmd: Command, ctx: WriteContext) -> Result<Outcome, Error> {
        ctx.check()?;
        let cmd = ctx.command(cmd);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs.send(writer::Job { cmd, ctx, reply: writer::Reply::Async(tx) }).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The read handle for in-process lookups.
    pub fn settings(&self) -> Settings {
        Settings::new(self.core.live.clone())
    }

    /// A receiver that sees the applied seq each time a new state is published (after a write here or a
    /// catch-up with other processes' writes).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.core.published.subscribe()
    }

    /// Calls `hook` with the new head seq after every append this process commits. Only one hook can be
    /// set; false if one already was. The hook runs on the writer thread and must not block.
    pub fn on_commit(&self, hook: impl Fn(u64) + Send + Sync + 'static) -> bool {
        self.core.commit_hook.set(Box::new(hook)).is_ok()
    }

    /// The current published state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.core.live.load_full()
    }

    /// Applies whatever other processes appended since the last look.
    pub fn catch_up(&self) -> Result<Arc<Snapshot>, Error> {
        self.core.catch_up().map_err(|e| self.core.note(e))
    }

    /// The last append the store refused, how long ago, and why; `None` once an append succeeded since.
    pub fn write_failure(&self) -> Option<(std::time::Duration, String)> {
        let failure = self.core.write_failure.lock().ok()?;
        failure.as_ref().map(|(at, why)| (at.elapsed(), why.clone()))
    }

    /// What the integrity check has found about this store's log.
    pub fn integrity(&self) -> &Arc<crate::integrity::Integrity> {
        &self.core.integrity
    }

    /// Records the damage `e` names, if any, and hands it back: for reads that meet a record that does not
    /// verify.
    pub fn note(&self, e: Error) -> Error {
        self.core.note(e)
    }

    /// The records after seq `after` up to `upto` (at most `limit`), when this process appended all of them
    /// recently and still holds them; `None` when they must be read from the store.
    pub fn recent_after(&self, after: u64, upto: u64, limit: usize) -> Option<Vec<Arc<Record>>> {
        let recent = self.core.recent.lock().ok()?;
        let first = recent.front()?.seq;
        if after + 1 < first || recent.back()?.seq < upto.min(after + limit as u64) {
            return None;
        }
        let start = usize::try_from(after + 1 - first).ok()?;
        Some(recent.iter().skip(start).take_while(|r| r.seq <= upto).take(limit).cloned().collect())
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.core.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.core.catalog
    }

    /// A key for credentials exported by another store: derived as that store's `encryption` says, from
    /// `secret` or, when none is given, this store's own secret.
    pub fn foreign_box(
        &self,
        info: &cfgledger_events::event::EncryptionInfo,
        secret: Option<&str>,
    ) -> Result<SecretBox, Error> {
        // A file this store exported before a rotation names an earlier key of its own ring: its secret.
        let from_ring = self.core.sealer.get(&info.key_id).map(|k| k.secret.clone());
        let secret = secret.or(from_ring.as_ref().map(|s| s.as_str())).unwrap_or(self.core.secret.as_str());
        // Both failures are about the caller's input (the file, the secret given), not this store.
        let refuse = |message: String| {
            Error::Rejected(cfgledger_events::Rejection {
                kind: cfgledger_events::RejectionKind::Invalid,
                message,
                audit: Vec::new(),
            })
        };
        let sb = SecretBox::derive(secret.as_bytes(), info)
            .map_err(|e| refuse(format!("the file's encryption cannot be used: {e}")))?;
        if sb.key_id() != info.key_id {
            return Err(refuse(format!(
                "the source secret does not open the file's credentials: it derives key {} but they were sealed with key {}",
                sb.key_id(),
                info.key_id
            )));
        }
        Ok(sb)
    }

    /// The secret this store's key is derived from: only to seal an export for another system under a key
    /// derived from it (`export --format mcpgateway`), never for output.
    pub(crate) fn own_secret(&self) -> &str {
        self.core.secret.as_str()
    }

    /// The master keys that seal and open this store's secrets.
    pub fn secret_box(&self) -> &crate::keyring::Keyring {
        &self.core.sealer
    }

    /// The value in force for `key` as text, with a sealed value opened: for the process's own use of a
    /// secret (signing tokens), never for output. `None` when the key has no value.
    pub fn reveal(&self, key: &str) -> Result<Option<zeroize::Zeroizing<String>>, Error> {
        use cfgledger_events::event::StoredValue;
        let snap = self.snapshot();
        let Some((qualified, value)) = snap.view(key).and_then(|v| Some((v.key.as_str(), v.value.as_ref()?))) else {
            return Ok(None);
        };
        let json = match value {
            StoredValue::Plain(v) => zeroize::Zeroizing::new(serde_json::to_vec(v).unwrap_or_default()),
            StoredValue::Sealed(text) => crate::crypto::open_setting(&self.core.sealer, qualified, text)?,
        };
        let text = match serde_json::from_slice::<serde_json::Value>(&json) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => return Err(Error::Secret(format!("the value of {key} does not decode: {e}"))),
        };
        Ok(Some(zeroize::Zeroizing::new(text)))
    }

    /// Gives a sensitive key that has no value anywhere (log, environment, default) a random one, recorded
    /// as `SecretGenerated`: a new store gets its own token signing key. Does nothing when a value exists.
    pub fn ensure_secret(&self, key: &str) -> Result<(), Error> {
        let snap = self.snapshot();
        let Some(view) = snap.view(key) else {
            return Ok(());
        };
        if let Some(e) = &view.env_error {
            // An operator who set the key and got it wrong must hear so, not get a random key instead.
            return Err(Error::Secret(format!("{key} in the environment is not usable: {e}")));
        }
        if view.value.is_some() {
            return Ok(());
        }
        // A generated password also satisfies a password policy (an upper-case letter, a lower-case letter, a
        // digit and a special character), as the gateway asks of the passwords it checks.
        let mut value = crate::crypto::random_secret();
        if key.to_ascii_uppercase().contains("PASSWORD") {
            value.push_str("-Cfg1");
        }
        let ctx = WriteContext {
            actor: Actor::system(),
            cause: Cause::Open { env_file: None },
            reason: Some(format!("{key} had no value; generated one")),
            bypass: false,
        };
        self.execute(Command::GenerateSecret { key: key.to_string(), value: value.to_string() }, ctx)?;
        Ok(())
    }

    /// The ledger's clock (injected; tests fix it).
    pub fn now(&self) -> cfgledger_events::Timestamp {
        self.core.clock.now()
    }

    /// The value each key has when the log holds none: the process environment, else the default.
    pub fn baseline(&self) -> BTreeMap<String, cfgledger_events::StoredValue> {
        let empty = SettingsState::new();
        cfgledger_projections::resolve(&self.core.catalog, &empty, &self.core.env, None)
            .into_iter()
            .filter_map(|v| v.value.map(|value| (v.key, value)))
            .collect()
    }

    /// A new batch with a fresh id: a UUIDv7, whose leading bits are the time, so that consecutive batches'
    /// ids sort together and each append adds to the right edge of the log's batch index (`events_by_batch`)
    /// instead of a random page of it. With random ids every event of a group dirtied a page of that index
    /// of its own, each written to the WAL whole, and once the index outgrew SQLite's page cache each was
    /// read back from disk first.
    pub(crate) fn new_batch(ctx: &WriteContext) -> Batch {
        Batch { id: uuid::Uuid::now_v7().simple().to_string(), cause: ctx.cause.clone(), reason: ctx.reason.clone() }
    }
}
