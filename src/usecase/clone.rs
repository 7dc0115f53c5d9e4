//! Copying a store's log: a JSON-lines backup (`log export`) and its restore (`log import`), the verbatim
//! mirror of one store into another (`clone --mirror`: the target's head hash equals the source's), and
//! the replay clone (`clone`), which re-decides the source's state against the target and appends it as one
//! new batch whose cause names the source.
//!
//! Every record that enters a store is checked on the way in: its hash recomputed from its bytes, its link
//! to the one before. Copies go in chunks, each its own transaction, so an interrupted copy leaves the target
//! holding a prefix of the source, and running it again continues where it stopped; except a mirror into an
//! empty store that loads in bulk (PostgreSQL), which is one transaction: interrupted, it leaves the log
//! empty, and run again it starts over.

use crate::crypto::SecretBox;
use crate::error::Error;
use crate::ledger::history::load_checkpoint;
use crate::model::ClonePlan;
use crate::store::{EventStore, LogChunks, StoreError};
use cfgledger_events::chain::ChainVerifier;
use cfgledger_events::{ChainError, Envelope, Hash, Head, Record, Rejection, RejectionKind};
use cfgledger_projections::SettingsState;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{BufRead, Write};

/// Records per read and per target transaction: the log reader's chunk, under the name copies know it by.
pub use crate::store::READ_CHUNK as CHUNK;

fn conflict(message: String) -> Error {
    Error::Rejected(Rejection { kind: RejectionKind::Conflict, message, audit: Vec::new() })
}

/// What a copy did, for the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Records written by this run.
    pub copied: u64,
    /// Records the target already held (a resumed copy).
    pub already: u64,
    pub head: Head,
}

/// Called after each chunk with the records written so far by this run and the number to write in all.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Appends `records` (which continue the target's log at `head`) in one transaction.
fn append_chunk(target: &dyn EventStore, head: Head, records: &[Record]) -> Result<Head, Error> {
    target.append(head, records).map_err(copy_failed)
}

/// A store's error during a copy: a moved head means someone else wrote to the target meanwhile.
fn copy_failed(e: StoreError) -> Error {
    match e {
        StoreError::Conflict { actual, .. } => conflict(format!(
            "the target changed during the copy: its head moved to seq {} (another writer?)",
            actual.seq
        )),
        e => e.into(),
    }
}

/// The first seq at or below `up_to` where the two logs hold different records.
fn first_difference(a: &dyn EventStore, b: &dyn EventStore, up_to: u64) -> Result<u64, Error> {
    let mut agreed = 0;
    for (x, y) in LogChunks::after(a, 0).until(up_to).zip(LogChunks::after(b, 0).until(up_to)) {
        let (x, y) = (x?, y?);
        for (r, s) in x.iter().zip(&y) {
            if r.seq != agreed + 1 || s.seq != agreed + 1 || r.hash != s.hash {
                return Ok(agreed + 1);
            }
            agreed += 1;
        }
        if x.len() != y.len() {
            return Ok(agreed + 1);
        }
    }
    Ok((agreed + 1).min(up_to))
}

/// Copies the source's log verbatim into the target, up to `until` (the head when `None`). The target must
/// be empty or hold a prefix of the source's log (an interrupted mirror): it then continues from its head.
pub fn mirror(
    source: &dyn EventStore,
    target: &dyn EventStore,
    until: Option<u64>,
    progress: Progress<'_>,
) -> Result<CopyReport, Error> {
    let source_head = source.head()?;
    let until = until.unwrap_or(source_head.seq).min(source_head.seq);
    let start = target.head()?;
    if start.seq > 0 {
        match source.record_at(start.seq)? {
            Some(rec) if rec.hash == start.hash => {}
            Some(_) => {
                return Err(conflict(format!(
                    "the target's log is not a prefix of the source's: they differ at seq {} (a mirror needs an empty target or an interrupted mirror of this source)",
                    first_difference(source, target, start.seq)?
                )))
            }
            None => {
                return Err(conflict(format!(
                    "the target's log (head seq {}) is longer than the source's (head seq {})",
                    start.seq, source_head.seq
                )))
            }
        }
        if start.seq > until {
            return Err(conflict(format!(
                "the target already holds seq {} and beyond, past --until seq {until}",
                start.seq
            )));
        }
    }
    // The data keys first, so that no ciphertext the target holds lacks its key (a key shredded in the
    // source is not there to copy). Wrapped by the master key, as the source holds them.
    target.put_data_keys(&source.data_keys()?)?;
    let total = until - start.seq;
    if start.seq == 0 {
        if let Some(load) = target.bulk_load() {
            return mirror_into_empty(source, load?, until, progress);
        }
    }
    let mut head = start;
    let mut chain = ChainVerifier::new(start);
    // Read the next chunk while this one is written.
    std::thread::scope(|s| -> Result<CopyReport, Error> {
        for chunk in LogChunks::after(source, start.seq).until(until).read_ahead(s) {
            let records = chunk?;
            for rec in &records {
                chain.push(rec)?;
            }
            head = append_chunk(target, head, &records)?;
            progress(head.seq - start.seq, total);
        }
        Ok(CopyReport { copied: head.seq - start.seq, already: start.seq, head })
    })
}

/// The mirror into an empty target that loads in bulk: every record checked as in [`mirror`], all of them
/// written in one transaction, so that an interrupted run leaves the target empty rather than holding a
/// prefix (run again, it starts over).
fn mirror_into_empty(
    source: &dyn EventStore,
    mut load: Box<dyn crate::store::BulkLoad + '_>,
    until: u64,
    progress: Progress<'_>,
) -> Result<CopyReport, Error> {
    let mut chain = ChainVerifier::new(Head::EMPTY);
    std::thread::scope(|s| -> Result<(), Error> {
        for chunk in LogChunks::after(source, 0).until(until).read_ahead(s) {
            let records = chunk?;
            for rec in &records {
                chain.push(rec)?;
            }
            load.write(records).map_err(copy_failed)?;
            progress(chain.head().seq, until);
        }
        Ok(())
    })?;
    let head = load.finish().map_err(copy_failed)?;
    if head != chain.head() {
        return Err(Error::Integrity(format!(
            "the bulk load ended at seq {} but the source was read up to seq {}",
            head.seq,
            chain.head().seq
        )));
    }
    Ok(CopyReport { copied: head.seq, already: 0, head })
}

/// Checks a whole log: every hash recomputed from its bytes and linked to the one before, the two halves of
/// the log read and checked on two threads. Returns the head.
pub fn verify_chain(store: &dyn EventStore) -> Result<Head, Error> {
    let head = store.head()?;
    let middle = head.seq / 2;
    // The second half starts from the record at `middle` as stored; the first half checks that record's hash.
    let second_start = match store.record_at(middle)? {
        Some(rec) => Head { seq: rec.seq, hash: rec.hash },
        None if middle == 0 => Head::EMPTY,
        None => return Err(ChainError { seq: middle, reason: "the copy ends early".into() }.into()),
    };
    // Each half checked from its start to `to`: the head it reaches.
    let half = |start: Head, to: u64| -> Result<Head, Error> {
        let mut chain = ChainVerifier::new(start);
        for chunk in LogChunks::after(store, start.seq).until(to) {
            for rec in &chunk? {
                chain.push(rec)?;
            }
        }
        if chain.head().seq < to {
            return Err(ChainError { seq: chain.head().seq + 1, reason: "the copy ends early".into() }.into());
        }
        Ok(chain.head())
    };
    let (first, second) = std::thread::scope(|s| {
        let other = s.spawn(|| half(Head::EMPTY, middle));
        let mine = half(second_start, head.seq);
        (other.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), mine)
    });
    if first? != second_start {
        let reason = format!("it does not continue the log at seq {middle}");
        return Err(ChainError { seq: middle + 1, reason }.into());
    }
    second
}

/// A mirror of a whole SQLite store into a new file: the database copied page by page (`VACUUM INTO`, no row
/// re-inserted, no index rebuilt row by row) to a file beside the target, its chain checked on two threads,
/// the source's instance heartbeats dropped, synced, and renamed into place. A failure leaves no target.
pub fn mirror_file(from: &std::path::Path, to: &std::path::Path) -> Result<Head, Error> {
    use crate::store::sqlite::SqliteStore;
    let partial = to.with_extension("partial");
    let leftovers = || {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = partial.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(name));
        }
    };
    leftovers();
    let result = (|| -> Result<Head, Error> {
        let source = SqliteStore::open(from)?;
        source.copy_to(&partial)?;
        drop(source);
        let copy = SqliteStore::open(&partial)?;
        let head = verify_chain(&copy)?;
        copy.forget_all_instances()?;
        drop(copy);
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("cannot sync {}", partial.display()), e))?;
        std::fs::rename(&partial, to).map_err(|e| Error::io(format!("cannot create {}", to.display()), e))?;
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(head)
    })();
    if result.is_err() {
        leftovers();
    }
    result
}

/// One line of a JSON-lines backup: the record's place and hashes, and the envelope's exact bytes (which
/// are JSON, so they are written as they are).
#[derive(Deserialize)]
struct Line<'a> {
    seq: u64,
    prev_hash: String,
    hash: String,
    #[serde(borrow)]
    envelope: &'a RawValue,
}

/// A data key's line of a JSON-lines backup.
#[derive(serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataKeyLine {
    data_key: crate::store::DataKeyRow,
}

/// A JSON-lines backup as read: its records (verified) and its data keys.
#[derive(Debug, Default)]
pub struct Backup {
    pub records: Vec<Record>,
    pub data_keys: Vec<crate::store::DataKeyRow>,
}

/// Writes the log up to `until` as JSON lines: `{"seq", "prev_hash", "hash", "envelope"}`, the envelope
/// byte for byte. Secrets stay sealed, as the log holds them.
pub fn export_jsonl(
    source: &dyn EventStore,
    until: Option<u64>,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Head, Error> {
    let source_head = source.head()?;
    let until = until.unwrap_or(source_head.seq).min(source_head.seq);
    let mut chain = ChainVerifier::new(Head::EMPTY);
    let io = |e: std::io::Error| Error::io("cannot write the backup", e);
    for chunk in LogChunks::after(source, 0).until(until) {
        for rec in &chunk? {
            chain.push(rec)?;
            write!(
                out,
                "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"envelope\":",
                rec.seq, rec.prev_hash, rec.hash
            )
            .map_err(io)?;
            out.write_all(&rec.envelope).map_err(io)?;
            out.write_all(b"}\n").map_err(io)?;
        }
        progress(chain.head().seq, until);
    }
    // Then the data keys, wrapped as the store holds them, one line each: without them a restored store
    // could not open its own secrets. A key shredded since is not there; one shredded after this backup was
    // taken stays in the file, which is the backup's to destroy.
    for row in source.data_keys()? {
        let line = serde_json::to_string(&DataKeyLine { data_key: row })
            .map_err(|e| Error::internal("cannot encode a data key line", Box::new(e) as crate::error::Source))?;
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(chain.head())
}

/// Reads a JSON-lines backup into records, checking every hash and link; refuses the file at the first
/// line that does not verify, naming its seq (or its line when it has none).
pub fn read_jsonl(input: &mut dyn BufRead) -> Result<Backup, Error> {
    let mut out = Vec::new();
    let mut data_keys = Vec::new();
    let mut chain = ChainVerifier::new(Head::EMPTY);
    let mut text = String::new();
    let mut number = 0usize;
    loop {
        text.clear();
        number += 1;
        let n = input.read_line(&mut text).map_err(|e| Error::io("cannot read the backup", e))?;
        if n == 0 {
            break;
        }
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with("{\"data_key\":") {
            let line: DataKeyLine = serde_json::from_str(trimmed)
                .map_err(|e| Error::input(format!("line {number} is not a data key of a log backup: {e}")))?;
            data_keys.push(line.data_key);
            continue;
        }
        let line: Line = serde_json::from_str(trimmed)
            .map_err(|e| Error::input(format!("line {number} is not a record of a log backup: {e}")))?;
        let seq = line.seq;
        let bad = |reason: String| Error::from(ChainError { seq, reason });
        let prev_hash = Hash::from_hex(&line.prev_hash).map_err(|e| bad(format!("prev_hash: {e}")))?;
        let hash = Hash::from_hex(&line.hash).map_err(|e| bad(format!("hash: {e}")))?;
        let envelope = line.envelope.get().as_bytes().to_vec();
        let env = Envelope::decode(&envelope).map_err(|e| bad(format!("the envelope does not decode: {e}")))?;
        if env.seq != seq {
            return Err(bad(format!("the envelope says seq {}", env.seq)));
        }
        let rec = Record {
            seq,
            occurred_at: env.occurred_at,
            kind: env.event.kind().to_string(),
            actor: env.actor.name.clone(),
            batch_id: env.batch.id.clone(),
            key: env.event.subject(),
            envelope,
            prev_hash,
            hash,
        };
        chain.push(&rec)?;
        out.push(rec);
    }
    Ok(Backup { records: out, data_keys })
}

/// Restores verified backup records into a target that is empty or holds a prefix of them (an interrupted
/// restore), in chunks.
pub fn restore(target: &dyn EventStore, backup: &Backup, progress: Progress<'_>) -> Result<CopyReport, Error> {
    let records = &backup.records;
    let start = target.head()?;
    if start.seq > 0 {
        let held = records.get(usize::try_from(start.seq - 1).unwrap_or(usize::MAX));
        if held.is_none_or(|r| r.hash != start.hash) {
            return Err(conflict(format!(
                "the target is not empty and its log is not a prefix of the file's (its head is seq {}): restore into an empty store",
                start.seq
            )));
        }
    }
    target.put_data_keys(&backup.data_keys)?;
    let rest = &records[usize::try_from(start.seq).unwrap_or(usize::MAX).min(records.len())..];
    let total = rest.len() as u64;
    let mut head = start;
    for chunk in rest.chunks(CHUNK) {
        head = append_chunk(target, head, chunk)?;
        progress(head.seq - start.seq, total);
    }
    Ok(CopyReport { copied: head.seq - start.seq, already: start.seq, head })
}

/// The state of `source` at `seq`, from its newest good checkpoint and the events after it.
pub fn source_state(source: &dyn EventStore, seq: u64) -> Result<cfgledger_projections::SettingsState, Error> {
    let (mut state, mut pos) = match load_checkpoint(source, seq)? {
        Some(found) => found,
        None => (cfgledger_projections::SettingsState::new(), crate::ledger::history::start_position()),
    };
    crate::ledger::history::fold_to(source, &mut state, &mut pos, seq)?;
    Ok(state)
}

/// The key that opens the source's secrets.
pub fn source_box(state: &cfgledger_projections::SettingsState, secret: &str) -> Result<SecretBox, Error> {
    let info =
        &state.store.as_ref().ok_or_else(|| Error::invalid("the source store holds no genesis event"))?.encryption;
    let sb = SecretBox::derive(secret.as_bytes(), info)?;
    if sb.key_id() != info.key_id {
        return Err(Error::Secret(format!(
            "the source secret does not open the source's secrets: it derives key {} but the source was created with key {}",
            sb.key_id(),
            info.key_id
        )));
    }
    Ok(sb)
}

/// What a replay clone takes beyond the two stores.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The source's seq to clone the state of (its head when `None`).
    pub until: Option<u64>,
    /// Keys (or `KIND/NAME`) left out; a trailing `*` matches a prefix.
    pub exclude: Vec<String>,
    /// Values for the target that replace the source's (`DATABASE_URL`, ...), as command-line text.
    pub overrides: Vec<(String, String)>,
    /// The secret the source's key derives from; the target's own secret when `None`.
    pub source_secret: Option<zeroize::Zeroizing<String>>,
    /// Apply only if the target's head is still this seq (the head a reviewed dry run showed).
    pub expected_head: Option<u64>,
}

/// Where a replay clone came from: what its batch's cause records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub store_id: String,
    pub seq: u64,
    pub head_hash: Hash,
}

fn excluded(patterns: &[String], subject: &str) -> bool {
    // A setting is named as people name it: `KEY` in the default namespace, `namespace:KEY` elsewhere.
    let shown = cfgledger_events::namespace::display(subject);
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => shown.starts_with(prefix) || subject.starts_with(prefix),
        None => p == shown || p == subject,
    })
}

/// The plan of a replay clone of `source` into `target`: the source's settings and entities as of the
/// point, secrets opened with the source's key and sealed again under the target's, exclusions and
/// overrides applied, compared with what the target holds. The target keeps what the source does not have.
/// Returns the request (applied as one batch by [`cfgledger_events::Command::Rollback`] with a clone cause),
/// the plan as JSON (conflicts, the subjects the target holds with another value, listed first) and the
/// provenance.
pub fn replay_plan(
    source: &dyn EventStore,
    target: &crate::ledger::Ledger,
    opts: &ReplayOptions,
) -> Result<(cfgledger_events::rollback::RollbackRequest, ClonePlan, Provenance), Error> {
    use crate::model::ExportSource;
    use std::collections::BTreeSet;

    let source_head = source.head()?;
    if source_head.seq == 0 {
        return Err(Error::invalid("the source store is empty: there is nothing to clone"));
    }
    let seq = opts.until.unwrap_or(source_head.seq);
    if seq == 0 || seq > source_head.seq {
        return Err(Error::invalid(format!(
            "seq:{seq} is not in the source's log, which holds seqs 1 to {}",
            source_head.seq
        )));
    }
    let state = source_state(source, seq)?;
    let head_hash = source.record_at(seq)?.map(|r| r.hash).unwrap_or(Hash::ZERO);
    let store_id = state.store.as_ref().map(|s| s.store_id.clone()).unwrap_or_default();
    let secret = opts.source_secret.as_ref().map_or(target.own_secret(), |s| s.as_str());
    // The source's key is derived (an Argon2id run) only when something sealed is cloned.
    let source_key = if sealed_anywhere(&state, opts) { Some(source_box(&state, secret)?) } else { None };
    let snap = target.snapshot();
    let resealer =
        Resealer { source_key: source_key.as_ref(), source, target: target.secret_box(), current: &snap.state };
    let mut settings = cloned_settings(&state, opts, &resealer)?;
    overridden_settings(target, opts, &resealer, &mut settings)?;
    let resources = cloned_resources(&state, opts, &resealer)?;
    let mut only: BTreeSet<String> = settings.keys().cloned().collect();
    for (kind, entities) in &resources {
        only.extend(entities.keys().map(|n| format!("{kind}/{n}")));
    }
    let req = cfgledger_events::rollback::RollbackRequest {
        to_seq: seq,
        settings,
        resources,
        only: Some(only),
        expected_head: opts.expected_head,
    };
    let plan = crate::usecase::timetravel::plan(target, &req)?;
    let conflicts = plan
        .steps
        .iter()
        .filter(|s| !s.current.is_null() || s.action == cfgledger_events::rollback::StepAction::Update)
        .map(|s| s.subject.clone())
        .collect();
    let source = ExportSource { store_id: Some(store_id.clone()), seq, head_hash: head_hash.to_hex() };
    Ok((req, ClonePlan { plan, conflicts, source }, Provenance { store_id, seq, head_hash }))
}

/// Whether anything the clone copies is sealed (so the source's key must be derived).
fn sealed_anywhere(state: &SettingsState, opts: &ReplayOptions) -> bool {
    use cfgledger_events::event::StoredValue;
    use cfgledger_events::ResourceKind;
    state.entries().any(|(k, e)| matches!(e.value, StoredValue::Sealed(_)) && !excluded(&opts.exclude, k))
        || ResourceKind::ALL.into_iter().any(|kind| {
            state
                .resources(kind)
                .any(|(n, e)| e.fields.get("auth_value").is_some() && !excluded(&opts.exclude, &format!("{kind}/{n}")))
        })
}

/// Moves secrets from the source's key to the target's. When the target already holds the same secret, its
/// ciphertext is kept, so that cloning again changes nothing.
struct Resealer<'a> {
    source_key: Option<&'a SecretBox>,
    /// The source, for the data keys its values are sealed under.
    source: &'a dyn EventStore,
    target: &'a crate::keyring::Keyring,
    /// The target's state, for the ciphertexts it already holds.
    current: &'a SettingsState,
}

impl Resealer<'_> {
    /// `sealed` (by the source, under `binding`) sealed under the target's key.
    fn reseal(&self, binding: &str, sealed: &str, current: Option<&str>) -> Result<String, Error> {
        use cfgledger_events::Sealer;
        let source_box = self.source_key.ok_or_else(|| Error::Internal {
            context: "a sealed value was met but the source's key was not derived".into(),
            source: None,
        })?;
        let cannot = || {
            Error::invalid(format!(
                "cannot decrypt {binding} from the source (sealed with key {}): nothing was written; give the source's secret with --source-secret-env",
                source_box.key_id()
            ))
        };
        let plaintext = match cfgledger_events::master_key::sealed_data_key(sealed) {
            // Under one of the source's data keys, which its key wraps.
            Some(id) => {
                let row = self.source.data_key(id)?.ok_or_else(|| {
                    Error::invalid(format!(
                        "cannot decrypt {binding} from the source: its data key {id} is not in the source (shredded?); nothing was written"
                    ))
                })?;
                let bytes = source_box
                    .open(&crate::crypto::data_key_aad(&row.id, &row.subject), &row.wrapped)
                    .map_err(|_| cannot())?;
                let key = crate::crypto::DataKey::from_bytes(id, &bytes)?;
                crate::crypto::open_setting(&key, binding, sealed).map_err(|_| cannot())?
            }
            None => zeroize::Zeroizing::new(Sealer::open(source_box, binding, sealed).map_err(|_| cannot())?),
        };
        self.seal(binding, &plaintext, current)
    }

    /// `plaintext` sealed under the target's key, or the target's `current` ciphertext if it holds the same.
    fn seal(&self, binding: &str, plaintext: &[u8], current: Option<&str>) -> Result<String, Error> {
        use cfgledger_events::Sealer;
        if let Some(current) = current {
            if Sealer::open(self.target, binding, current).is_ok_and(|p| p == plaintext) {
                return Ok(current.to_string());
            }
        }
        Sealer::seal(self.target, binding, plaintext)
            .map_err(|e| Error::Internal { context: format!("cannot encrypt {binding}: {e}"), source: None })
    }

    /// The ciphertext the target holds for `key`, if any.
    fn current_setting(&self, key: &str) -> Option<&str> {
        use cfgledger_events::event::StoredValue;
        use cfgledger_events::SettingsLookup;
        match self.current.current(key) {
            Some(StoredValue::Sealed(c)) => Some(c.as_str()),
            _ => None,
        }
    }
}

/// The source's settings that the clone copies, secrets sealed under the target's key.
fn cloned_settings(
    state: &SettingsState,
    opts: &ReplayOptions,
    resealer: &Resealer<'_>,
) -> Result<std::collections::BTreeMap<String, cfgledger_events::event::StoredValue>, Error> {
    use cfgledger_events::event::StoredValue;
    let mut settings = std::collections::BTreeMap::new();
    for (key, entry) in state.entries() {
        if excluded(&opts.exclude, key) {
            continue;
        }
        let value = match &entry.value {
            StoredValue::Plain(v) => StoredValue::Plain(v.clone()),
            StoredValue::Sealed(text) => {
                StoredValue::Sealed(resealer.reseal(key, text, resealer.current_setting(key))?)
            }
        };
        settings.insert(key.clone(), value);
    }
    Ok(settings)
}

/// The `--set KEY=VALUE` overrides, checked against the target's catalog, added to `settings`.
fn overridden_settings(
    target: &crate::ledger::Ledger,
    opts: &ReplayOptions,
    resealer: &Resealer<'_>,
    settings: &mut std::collections::BTreeMap<String, cfgledger_events::event::StoredValue>,
) -> Result<(), Error> {
    use cfgledger_events::event::StoredValue;
    for (key, text) in &opts.overrides {
        let spec =
            target.catalog().get(key).ok_or_else(|| Error::invalid(format!("--set {key}: unknown key {key}")))?;
        if spec.locked {
            return Err(Error::invalid(format!(
                "--set {key}: the key is locked; only the target's environment (.env) seeds it"
            )));
        }
        let parsed = spec
            .parse(&cfgledger_events::Input::Text(text.clone()))
            .map_err(|e| Error::invalid(format!("--set {key}: {e}")))?;
        let key = &spec.id;
        let value = if spec.sensitive {
            let plaintext = zeroize::Zeroizing::new(serde_json::to_vec(&parsed).unwrap_or_default());
            StoredValue::Sealed(resealer.seal(key, &plaintext, resealer.current_setting(key))?)
        } else {
            StoredValue::Plain(parsed)
        };
        settings.insert(key.clone(), value);
    }
    Ok(())
}

type Entities = std::collections::BTreeMap<
    cfgledger_events::ResourceKind,
    std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
>;

/// The source's entities that the clone copies, credentials sealed under the target's key.
fn cloned_resources(state: &SettingsState, opts: &ReplayOptions, resealer: &Resealer<'_>) -> Result<Entities, Error> {
    use cfgledger_events::{resource, ResourceKind};
    use serde_json::Value;
    let mut resources = Entities::new();
    for kind in ResourceKind::ALL {
        for (name, entry) in state.resources(kind) {
            if excluded(&opts.exclude, &format!("{kind}/{name}")) {
                continue;
            }
            let mut fields = entry.fields.clone();
            if let Some(Value::String(sealed)) = fields.get("auth_value").cloned() {
                let binding = resource::auth_binding(kind, name);
                let current = resealer
                    .current
                    .resource_entry(kind, name)
                    .and_then(|e| e.fields.get("auth_value"))
                    .and_then(Value::as_str);
                fields.insert("auth_value".into(), Value::String(resealer.reseal(&binding, &sealed, current)?));
            }
            resources.entry(kind).or_default().insert(name.clone(), fields);
        }
    }
    Ok(resources)
}
