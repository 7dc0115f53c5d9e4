//! Opening a store: migrations, the first-start seeding from `.env` (one `EnvSeeded` batch with the
//! genesis event, checked whole before anything is created), later seeding of keys the log has never held,
//! drift between `.env` or the environment and the store, and the encryption key: from
//! `CFGLEDGER_AUTH_ENCRYPTION_SECRET` (process environment, then `.env`; a pre-namespace store also takes
//! `AUTH_ENCRYPTION_SECRET`, the name it was created with), else a key file beside the SQLite database,
//! created with mode 0600 on first start.

use super::{writer, Core, Ledger, WriteContext};
use crate::clock::{Clock, SystemClock};
use crate::crypto::{self, SecretBox};
use crate::envfile;
use crate::error::Error;
use crate::keyring::{split_secrets, Keyring, RingKey};
use crate::live::Snapshot;
use crate::store::{self, StoreUrl};
use arc_swap::ArcSwap;
use cfgledger_events::decide::EnvEntry;
use cfgledger_events::{Actor, Catalog, Cause, Command, Head, RejectionKind, Timestamp};
use cfgledger_projections::{boot_values, resolve, SettingsState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use zeroize::Zeroizing;

/// The environment name of the bootstrap secret (cfgledger's own `AUTH_ENCRYPTION_SECRET`).
pub const SECRET_KEY: &str = "CFGLEDGER_AUTH_ENCRYPTION_SECRET";

/// The name a pre-namespace store's secret was read under; it is still read for such a store. In a new
/// store `AUTH_ENCRYPTION_SECRET` is the gateway's own setting, stored like any other secret.
pub const LEGACY_SECRET_KEY: &str = "AUTH_ENCRYPTION_SECRET";

/// Which `.env` file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileChoice {
    /// `./.env` when it exists.
    Default,
    /// This file, which must exist.
    Path(PathBuf),
    /// No `.env` file.
    None,
}

pub struct OpenOptions {
    pub db: StoreUrl,
    pub env_file: EnvFileChoice,
    pub catalog: Catalog,
    /// The process environment (only catalog keys matter).
    pub process_env: BTreeMap<String, String>,
    /// Keep restart-required keys at their boot value and report changes as pending (a server does; a
    /// one-shot CLI command does not).
    pub pin_restart_keys: bool,
    /// Sensitive keys that get a random value when they have none (a server's `JWT_SECRET_KEY`), before
    /// restart-required keys are pinned.
    pub generate_secrets: Vec<String>,
    pub clock: Arc<dyn Clock>,
}

impl OpenOptions {
    pub fn new(db: StoreUrl, catalog: Catalog) -> Self {
        OpenOptions {
            db,
            env_file: EnvFileChoice::Default,
            catalog,
            process_env: BTreeMap::new(),
            pin_restart_keys: false,
            generate_secrets: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What opening did, for the operator to read.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// The store was created by this open.
    pub created: bool,
    pub env_file: Option<PathBuf>,
    /// Keys seeded from `.env` by this open.
    pub seeded: Vec<String>,
    /// Keys in `.env` the catalog does not know (skipped).
    pub unknown_env_keys: Vec<String>,
    /// A key file this open created.
    pub key_file_created: Option<PathBuf>,
    /// Process environment values that do not fit their key (ignored).
    pub env_errors: Vec<String>,
    /// Keys the store holds whose `.env` line or environment variable says something else (the store wins).
    pub drift: Vec<Drift>,
    /// In a store written before namespaces: bare names in `.env` or the environment that were cfgledger's
    /// own settings there, set aside rather than taken for the gateway's.
    pub legacy_names: Vec<String>,
    /// Why a later `.env` seeded nothing (its refused lines), when it did not.
    pub seed_refused: Option<String>,
}

/// A key whose value in `.env` or the process environment differs from the store's: reported, never applied
/// (the store's value wins), and never with either value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The qualified key.
    pub key: String,
    /// `.env line N` or `environment`.
    pub source: String,
}

/// Where the encryption secret came from.
enum SecretSource {
    Given(Zeroizing<String>),
    KeyFile(PathBuf),
    Ephemeral,
}

pub(crate) fn key_file_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The newest secret of a key file (its first line).
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let mut all = read_key_file_all(path)?;
    Ok(all.swap_remove(0))
}

/// Every secret of a key file, one a line, newest first: a rotation adds a line at the top, and a line is
/// removed once its key is retired.
pub(crate) fn read_key_file_all(path: &Path) -> Result<Vec<Zeroizing<String>>, Error> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read key file {}", path.display()), e))?,
    );
    let secrets: Vec<Zeroizing<String>> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Zeroizing::new(l.to_string())).collect();
    if secrets.is_empty() || secrets.iter().any(|s| s.len() < 32) {
        return Err(Error::Integrity(format!("key file {} is truncated", path.display())));
    }
    Ok(secrets)
}

/// Creates the key file with mode 0600, or reads it when another process created it first. The secret is
/// written and synced under a temporary name and then hard-linked into place, so no process ever reads a
/// half-written key file, and a second creator finds the first one's file instead of replacing it.
fn create_key_file(path: &Path) -> Result<(Zeroizing<String>, bool), Error> {
    use std::io::Write;
    if path.exists() {
        return Ok((read_key_file(path)?, false));
    }
    let fail = |what: &str, e: std::io::Error| Error::io(format!("cannot {what} key file {}", path.display()), e);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = PathBuf::from(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let secret = crypto::random_secret();
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(secret.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The genesis event will record this key's id durably; the file's name must be durable first.
            #[cfg(unix)]
            if let Some(dir) = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| fail("sync the directory of the", e))?;
            }
            Ok((secret, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read_key_file(path)?, false)),
        Err(e) => Err(fail("create", e)),
    }
}

fn system_ctx(env_file: Option<&Path>) -> WriteContext {
    WriteContext {
        actor: Actor::system(),
        cause: Cause::Open { env_file: env_file.map(|p| p.display().to_string()) },
        reason: None,
        bypass: false,
    }
}

impl Ledger {
    /// Opens the store: migrates, replays the log into memory, creates and seeds it on first start, and
    /// seeds keys from `.env` that the log has never held.
    pub fn open(opts: OpenOptions) -> Result<(Ledger, OpenReport), Error> {
        // Two processes creating one store at once: the loser's genesis is refused, and it opens again
        // against the winner's store (its salt, its key id).
        let mut attempts = 0;
        loop {
            match open_once(&opts) {
                Err(OpenError::Raced) if attempts < 3 => attempts += 1,
                Err(OpenError::Raced) => return Err(Error::Contention(attempts)),
                Err(OpenError::Failed(e)) => return Err(e),
                Ok(done) => return Ok(done),
            }
        }
    }
}

enum OpenError {
    Raced,
    Failed(Error),
}

impl<E: Into<Error>> From<E> for OpenError {
    fn from(e: E) -> Self {
        OpenError::Failed(e.into())
    }
}

fn open_once(opts: &OpenOptions) -> Result<(Ledger, OpenReport), OpenError> {
    let mut report = OpenReport::default();
    let env_path = match &opts.env_file {
        EnvFileChoice::Default => Some(PathBuf::from(".env")).filter(|p| p.is_file()),
        EnvFileChoice::Path(p) => Some(p.clone()),
        EnvFileChoice::None => None,
    };
    // The `.env` file is read, and for a store about to be created checked whole, before the store is
    // opened: a refused first start leaves no database, WAL or key file behind.
    let entries: Vec<EnvEntry> = match &env_path {
        Some(p) => envfile::read(p)?,
        None => Vec::new(),
    };
    if let StoreUrl::Sqlite(path) = &opts.db {
        if !path.exists() {
            let shown = env_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            cfgledger_events::decide::check_seed(&opts.catalog, &shown, &entries)
                .map_err(|r| Error::input(r.message))?;
        }
    }
    report.env_file = env_path.clone();
    let store = store::open(&opts.db)?;

    // Replay the log once, with a placeholder key: nothing is decrypted while folding.
    let catalog = Arc::new(opts.catalog.clone());
    let initial = replay(store.as_ref())?;

    let (sealer, create_info, secret) =
        store_key(opts, &entries, initial.0.store.as_ref().map(|_| &initial.0), &mut report)?;

    // In a store written before namespaces, `.env` and the environment hold cfgledger's own settings and
    // encryption secret under bare names that are now the gateway's (`JWT_SECRET_KEY`,
    // `AUTH_ENCRYPTION_SECRET`): they were cfgledger's, and copying them into the gateway's namespace would
    // hand the store's own keys to whoever renders the gateway's secrets. They are set aside, and said so.
    let legacy = initial.0.store.as_ref().is_some_and(|s| s.format == cfgledger_events::LEGACY_STORE_FORMAT);
    let mut entries = entries;
    let mut process_env = opts.process_env.clone();
    if legacy {
        let own = cfgledger_events::namespace::legacy_own_name;
        let mut set_aside: Vec<String> = entries.iter().filter(|e| own(&e.key)).map(|e| e.key.clone()).collect();
        set_aside.extend(process_env.keys().filter(|k| own(k)).cloned());
        set_aside.sort();
        set_aside.dedup();
        entries.retain(|e| !own(&e.key));
        process_env.retain(|k, _| !own(k));
        report.legacy_names = set_aside;
    }

    // A bootstrap secret given in `.env` rather than the process environment is in use all the same: it
    // resolves (masked everywhere) through the environment layer, so that its source is reported truthfully.
    let mut env = process_env.clone();
    for spec in catalog.specs().iter().filter(|s| s.bootstrap) {
        if !env.contains_key(&spec.env_name) {
            if let Some(e) = entries.iter().rev().find(|e| e.key == spec.env_name && !e.value.is_empty()) {
                env.insert(spec.env_name.clone(), e.value.clone());
            }
        }
    }
    let (state, head, head_time) = initial;
    // Values with a shred subject are sealed under the store's data keys (see `crate::datakeys`).
    sealer.attach(store.clone(), opts.clock.clone()).map_err(|e| Error::Internal { context: e, source: None })?;
    if let Some(data) = sealer.data_keys() {
        data.forget(state.master_keys().shredded.keys());
    }
    let last_checkpoint = store.snapshot_seqs()?.last().copied().unwrap_or(0);
    let checkpoint_pending = super::history::Pending::default();
    let checkpointer =
        super::history::spawn_checkpointer(store.clone(), opts.clock.clone(), checkpoint_pending.clone());
    let core = Arc::new(Core {
        store,
        catalog: catalog.clone(),
        sealer,
        secret: Arc::new(secret),
        live: Arc::new(ArcSwap::from_pointee(Snapshot::build(&catalog, state, head, head_time, &env, None))),
        env,
        clock: opts.clock.clone(),
        boot: OnceLock::new(),
        published: tokio::sync::watch::channel(0).0,
        commit_hook: OnceLock::new(),
        sync: Mutex::new(()),
        checkpoints: Mutex::new(Some(checkpointer)),
        checkpoint_pending,
        last_checkpoint: std::sync::atomic::AtomicU64::new(last_checkpoint),
        integrity: Arc::new(crate::integrity::Integrity::new()),
        write_failure: Mutex::new(None),
        recent: Mutex::new(std::collections::VecDeque::new()),
    });
    // Another process may append after the replay: the writer's head check catches that at the first append.
    let ledger = Ledger { jobs: writer::spawn(core.clone()), core };

    let created = create_info.is_some();
    seed(&ledger, create_info, env_path.as_deref(), entries.clone(), &mut report)?;

    // A new store generates the secrets its catalog marks (the gateway's signing and encryption secrets,
    // cfgledger's own signing key) when seeding gave them none; a server also does so for an older store.
    let generated = catalog.specs().iter().filter(|s| created && s.generate).map(|s| s.id.clone());
    for key in generated.chain(opts.generate_secrets.iter().cloned()) {
        ledger.ensure_secret(&key)?;
    }
    // Drift is shown at a server's start (`config drift` asks for it itself): a one-shot command does not
    // open every secret `.env` names to compare it.
    if opts.pin_restart_keys {
        report.drift = drift(&ledger, env_path.as_deref(), &entries, &process_env);
    }

    // A log that grew long without checkpoints (an older build, snapshots turned off) gets one now.
    ledger.core.maybe_checkpoint(&ledger.snapshot());
    let snap = ledger.snapshot();
    report.env_errors = snap.views.iter().filter_map(|v| v.env_error.clone()).collect();
    if opts.pin_restart_keys {
        let views = resolve(&catalog, &snap.state, &ledger.core.env, None);
        // Only cfgledger's own keys are pinned: this process runs with them. An application's restart-required
        // key takes effect when the application restarts, which is not this process's start.
        let mut boot = boot_values(&catalog, &views);
        boot.retain(|key, _| cfgledger_events::namespace::split(key).0 == cfgledger_events::namespace::OWN);
        let _ = ledger.core.boot.set(boot);
        let _sync = ledger.core.sync.lock().map_err(|_| Error::Closed)?;
        let snap = ledger.snapshot();
        ledger.core.publish_full(snap.state.clone(), snap.head, snap.head_time);
    }
    Ok((ledger, report))
}

/// The store's key ring: derived from `AUTH_ENCRYPTION_SECRET` (the process environment, else `.env`) and
/// the previous secrets beside it, else from the SQLite store's key file (created for a new store), else a
/// random one for a memory store. For an existing store the ring must hold the key that seals its current
/// values (the genesis key, or the last rotation's). Returns the ring, the encryption info a new store
/// records in its genesis event, and the newest secret.
fn store_key(
    opts: &OpenOptions,
    entries: &[EnvEntry],
    existing: Option<&SettingsState>,
    report: &mut OpenReport,
) -> Result<(Keyring, Option<cfgledger_events::event::EncryptionInfo>, Zeroizing<String>), OpenError> {
    let named = |name: &str| {
        opts.process_env
            .get(name)
            .cloned()
            .or_else(|| entries.iter().rev().find(|e| e.key == name).map(|e| e.value.clone()))
            .filter(|s| !s.is_empty())
    };
    let info = existing.and_then(|s| s.store.as_ref());
    let legacy = info.is_some_and(|info| info.format == cfgledger_events::LEGACY_STORE_FORMAT);
    let given = named(SECRET_KEY).or_else(|| legacy.then(|| named(LEGACY_SECRET_KEY)).flatten()).map(Zeroizing::new);
    let source = match (given, &opts.db) {
        (Some(s), _) => SecretSource::Given(s),
        (None, StoreUrl::Sqlite(db)) => SecretSource::KeyFile(key_file_path(db)),
        (None, StoreUrl::Memory) => SecretSource::Ephemeral,
        // A shared store has no place for a key file that every instance could read.
        (None, StoreUrl::Postgres(_)) => {
            return Err(Error::Secret(
                "a PostgreSQL store needs CFGLEDGER_AUTH_ENCRYPTION_SECRET (in the environment or .env): every instance derives the store's key from it".into(),
            )
            .into())
        }
    };

    Ok(match (existing.zip(info), source) {
        (Some((state, info)), SecretSource::Given(secret)) => {
            let mut secrets = vec![secret.clone()];
            secrets.extend(named(crate::keyring::PREVIOUS_SECRETS).map_or_else(Vec::new, |l| split_secrets(&l)));
            (ring_for(secrets, &info.encryption, state.master_keys(), SECRET_KEY)?, None, secret)
        }
        (Some((state, info)), SecretSource::KeyFile(path)) => {
            if !path.exists() {
                return Err(Error::Secret(format!(
                    "this store's secrets need its key: set CFGLEDGER_AUTH_ENCRYPTION_SECRET or restore the key file {}",
                    path.display()
                ))
                .into());
            }
            let secrets = read_key_file_all(&path)?;
            let newest = secrets[0].clone();
            let what = format!("key file {}", path.display());
            (ring_for(secrets, &info.encryption, state.master_keys(), &what)?, None, newest)
        }
        (Some(_), SecretSource::Ephemeral) => {
            return Err(Error::Secret("this store's secrets need CFGLEDGER_AUTH_ENCRYPTION_SECRET".into()).into());
        }
        (None, source) => {
            let secret = match source {
                SecretSource::Given(s) => s,
                SecretSource::KeyFile(path) => {
                    let (secret, created) = create_key_file(&path)?;
                    if created {
                        report.key_file_created = Some(path);
                    }
                    secret
                }
                SecretSource::Ephemeral => crypto::random_secret(),
            };
            let (sealer, info) = SecretBox::create(secret.as_bytes())?;
            let ring = Keyring::new(vec![RingKey { sealer, secret: secret.clone() }], &info.key_id);
            (ring, Some(info), secret)
        }
    })
}

/// The ring of `secrets`, each derived as the store's encryption says (one salt and derivation for every
/// key of a store). A key the log retired is left out; the key that seals the current values must be there.
fn ring_for(
    secrets: Vec<Zeroizing<String>>,
    info: &cfgledger_events::event::EncryptionInfo,
    keys: &cfgledger_events::master_key::MasterKeys,
    what: &str,
) -> Result<Keyring, Error> {
    let mut ring: Vec<RingKey> = Vec::new();
    for secret in secrets {
        let sealer = SecretBox::derive(secret.as_bytes(), info)?;
        if keys.is_retired(sealer.key_id()) || ring.iter().any(|k| k.sealer.key_id() == sealer.key_id()) {
            continue;
        }
        ring.push(RingKey { sealer, secret });
    }
    let current = if keys.current().is_empty() { info.key_id.as_str() } else { keys.current() };
    if !ring.iter().any(|k| k.sealer.key_id() == current) {
        let ids: Vec<&str> = ring.iter().map(|k| k.sealer.key_id()).collect();
        return Err(Error::Secret(format!(
            "{what} does not match this store: it derives key {} but the store's values are sealed with key {current}",
            if ids.is_empty() { "(none)".to_string() } else { ids.join(", ") },
        )));
    }
    Ok(Keyring::new(ring, current))
}

/// A new store's genesis event with the `.env` seeding, or, for an existing store, the `.env` keys it does
/// not hold yet; both in one batch and reported.
fn seed(
    ledger: &Ledger,
    create_info: Option<cfgledger_events::event::EncryptionInfo>,
    env_path: Option<&std::path::Path>,
    entries: Vec<EnvEntry>,
    report: &mut OpenReport,
) -> Result<(), OpenError> {
    let env_file = env_path.map(|p| p.display().to_string()).unwrap_or_default();
    let ctx = system_ctx(env_path);
    if let Some(encryption) = create_info {
        let store_id = uuid::Uuid::new_v4().to_string();
        let cmd = Command::CreateStore { store_id, encryption, env_file: env_file.clone(), entries: entries.clone() };
        match ledger.execute(cmd, ctx.clone()) {
            Ok(outcome) => {
                report.created = true;
                seeded_by(&outcome, report);
            }
            // Another process created the store between our replay and our append.
            Err(Error::Rejected(r)) if r.kind == RejectionKind::State => return Err(OpenError::Raced),
            Err(e) => return Err(env_file_input(e).into()),
        }
    } else if env_path.is_some() {
        // A store that exists opens whatever a later `.env` holds: a line that does not fit a key the store
        // has never held is reported (and nothing of that file seeded), never a reason to refuse every read.
        match ledger.execute(Command::SeedEnv { env_file, entries }, ctx) {
            Ok(outcome) => seeded_by(&outcome, report),
            Err(Error::Rejected(r)) if r.kind == RejectionKind::Invalid => report.seed_refused = Some(r.message),
            Err(e) => return Err(e.into()),
        }
    }

    Ok(())
}

/// A `.env` value that does not fit its key is the operator's file at fault: bad input, not a refused change.
fn env_file_input(e: Error) -> Error {
    match e {
        Error::Rejected(r) if r.kind == RejectionKind::Invalid => Error::input(r.message),
        other => other,
    }
}

/// Fills the report with what an `EnvSeeded` event of `outcome` seeded and skipped.
fn seeded_by(outcome: &super::Outcome, report: &mut OpenReport) {
    for event in &outcome.events {
        if let cfgledger_events::Event::EnvSeeded(e) = event {
            report.seeded.extend(e.values.iter().map(|v| v.key.clone()));
            report.unknown_env_keys.extend(e.unknown_keys.iter().cloned());
        }
    }
}

/// Folds the whole log, verifying every link.
/// The state at the log's head: the newest good checkpoint and the events after it (all of them when there
/// is none).
fn replay(store: &dyn store::EventStore) -> Result<(SettingsState, Head, Timestamp), Error> {
    let (start, mut pos) = match super::history::load_checkpoint(store, u64::MAX)? {
        Some(found) => found,
        None => (SettingsState::new(), super::fold::Position { head: Head::EMPTY, head_time: Timestamp::default() }),
    };
    let mut start = Some(start);
    let folded = super::fold::fold_log(store, &mut pos, || start.take().unwrap_or_default())?;
    let state = folded.or(start).unwrap_or_default();
    Ok((state, pos.head, pos.head_time))
}

/// The keys the store holds whose `.env` line or process environment variable gives a different value.
/// Values that do not parse count as different; bootstrap keys are never in the log, so never drift.
pub fn drift(
    ledger: &Ledger,
    env_path: Option<&Path>,
    entries: &[EnvEntry],
    process_env: &BTreeMap<String, String>,
) -> Vec<Drift> {
    let snap = ledger.snapshot();
    let catalog = ledger.catalog();
    let file = env_path.map(|p| p.display().to_string()).unwrap_or_else(|| ".env".into());
    let mut out: Vec<Drift> = Vec::new();
    let mut check = |name: &str, raw: &str, source: String| {
        let Some(spec) = catalog.by_env_name(name) else { return };
        let Some(entry) = snap.state.get(&spec.id) else { return };
        if spec.bootstrap || raw.is_empty() {
            return;
        }
        let differs = match spec.parse(&cfgledger_events::Input::Text(raw.to_string())) {
            Ok(v) => !value_equals(ledger, &spec.id, &entry.value, &v),
            Err(_) => true,
        };
        if differs && !out.iter().any(|d| d.key == spec.id && d.source == source) {
            out.push(Drift { key: spec.id.clone(), source });
        }
    };
    // The last line for a name wins, as in seeding.
    let mut last: BTreeMap<&str, &EnvEntry> = BTreeMap::new();
    for e in entries {
        last.insert(e.key.as_str(), e);
    }
    for e in last.values() {
        check(&e.key, &e.value, format!("{file} line {}", e.line));
    }
    for (name, raw) in process_env {
        check(name, raw, "environment".to_string());
    }
    out.sort_by(|a, b| a.key.cmp(&b.key).then(a.source.cmp(&b.source)));
    out
}

fn value_equals(ledger: &Ledger, key: &str, stored: &cfgledger_events::StoredValue, v: &serde_json::Value) -> bool {
    match stored {
        cfgledger_events::StoredValue::Plain(p) => p == v,
        cfgledger_events::StoredValue::Sealed(text) => crate::crypto::open_setting(ledger.secret_box(), key, text)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|o| &o == v),
    }
}
