//! The master key's lifecycle: `rotate` (record a new key, then seal every value of the current state again
//! under it, in batches that each commit as one event, so that a crash loses at most the batch in flight and
//! a rerun finishes the job), `status` (which key seals what; `verify` fails on a value left behind or one
//! that does not open), `retire` (an old key that seals nothing current opens nothing from then on), and the
//! rollback's guard that brings a value sealed under an older key forward to the current one.
//!
//! Plaintext exists only inside this process, between the ring opening a value and sealing it again; the
//! writer checks each new ciphertext against the place it was read from, so a value changed meanwhile is
//! read again by the next batch rather than overwritten. These are synchronous: the CLI is their only caller
//! (a rotation needs the secrets, which live with the operator, not behind the API).

use crate::error::Error;
use crate::keyring::Keyring;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{
    KeyRetireReport, KeyRotateProgress, KeyRotateReport, KeyShredReport, KeyStatusReport, MasterKeyStatus,
    ShreddedSubject,
};
use crate::store::DataKeyRow;
use cfgledger_events::decide::Reseal;
use cfgledger_events::event::{EncryptionInfo, StoredValue};
use cfgledger_events::master_key::{sealed_data_key, sealed_key_id, SealedAt};
use cfgledger_events::{Command, Event, ResourceKind, Sealer};
use cfgledger_projections::SettingsState;
use serde_json::Value;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// How many values one batch of a rotation seals again, unless told otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// What a rotation is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RotateOptions {
    /// The key to move to (a key id of this process's ring); when `None`, the ring's one key the log has
    /// not named, if there is exactly one.
    pub to: Option<String>,
    /// Values per batch (at least 1).
    pub batch: usize,
}

/// Which key seals what in the current state, and what this process can open.
pub fn status(ledger: &Ledger) -> Result<KeyStatusReport, Error> {
    let snap = ledger.snapshot();
    let state = &snap.state;
    let ring = ledger.secret_box();
    let keys = state.master_keys();
    let current = keys.current().to_string();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut wraps: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let sealed = state.sealed_values();
    let mut behind = 0;
    let rows: BTreeMap<String, DataKeyRow> =
        ledger.store().data_keys()?.into_iter().map(|r| (r.id.clone(), r)).collect();
    for row in rows.values() {
        *wraps.entry(row.master_key.clone()).or_default() += 1;
        if row.master_key != current {
            behind += 1;
            problems.push(if keys.is_retired(&row.master_key) {
                format!("data key {} of {} is wrapped under retired key {}", row.id, row.subject, row.master_key)
            } else {
                format!(
                    "data key {} of {} is wrapped under key {}, not the current key {current}: run cfgledger key rotate",
                    row.id, row.subject, row.master_key
                )
            });
        }
    }
    for (at, text) in &sealed {
        if let Some(data_key) = sealed_data_key(text) {
            // Under the current key through its data key's wrapping (counted above); it must be there.
            match rows.get(data_key) {
                Some(row) => *counts.entry(row.master_key.clone()).or_default() += 1,
                None => {
                    problems.push(format!("{at} is sealed under data key {data_key}, which the store does not hold"));
                    continue;
                }
            }
            if let Err(e) = Sealer::open(ring, &at.binding(), text) {
                problems.push(format!("{at} does not open: {e}"));
            }
            continue;
        }
        let id = sealed_key_id(text).unwrap_or("");
        *counts.entry(id.to_string()).or_default() += 1;
        if id != current {
            behind += 1;
            let why = if keys.is_retired(id) {
                format!("{at} is sealed under retired key {id}")
            } else if id.is_empty() {
                format!("{at} is not in a sealed form this build knows")
            } else {
                format!("{at} is sealed under key {id}, not the current key {current}: run cfgledger key rotate")
            };
            problems.push(why);
            continue;
        }
        if Sealer::open(ring, &at.binding(), text).is_err() {
            problems.push(format!("{at} does not open under key {id}: the ciphertext was altered or moved"));
        }
    }
    let mut out: Vec<MasterKeyStatus> = keys
        .keys
        .iter()
        .map(|k| MasterKeyStatus {
            key_id: k.key_id.clone(),
            state: if k.retired_seq.is_some() {
                "retired"
            } else if k.key_id == current {
                "current"
            } else {
                "previous"
            }
            .to_string(),
            since_seq: Some(k.since_seq),
            retired_seq: k.retired_seq,
            in_ring: ring.get(&k.key_id).is_some(),
            values: counts.get(&k.key_id).copied().unwrap_or(0),
            data_keys: wraps.get(&k.key_id).copied().unwrap_or(0),
        })
        .collect();
    for id in ring.key_ids() {
        if keys.get(&id).is_none() {
            out.push(MasterKeyStatus {
                key_id: id,
                state: "candidate".into(),
                since_seq: None,
                retired_seq: None,
                in_ring: true,
                values: 0,
                data_keys: 0,
            });
        }
    }
    let mut shredded: BTreeMap<&str, ShreddedSubject> = BTreeMap::new();
    for k in keys.shredded.values() {
        let entry = shredded.entry(k.subject.as_str()).or_insert_with(|| ShreddedSubject {
            subject: k.subject.clone(),
            data_keys: 0,
            seq: k.seq,
        });
        entry.data_keys += 1;
        entry.seq = entry.seq.max(k.seq);
    }
    Ok(KeyStatusReport {
        current,
        keys: out,
        values: sealed.len(),
        behind,
        problems,
        data_keys: rows.len(),
        shredded: shredded.into_values().collect(),
    })
}

/// [`status`], failing when anything of the current state is not sealed under the current key or does not
/// open: a rotation left unfinished is a refusal to finish (exit 1), a value that does not open is damage
/// (exit 4).
pub fn verify(ledger: &Ledger) -> Result<KeyStatusReport, Error> {
    let report = status(ledger)?;
    if report.problems.is_empty() {
        return Ok(report);
    }
    let shown: Vec<&str> = report.problems.iter().take(5).map(String::as_str).collect();
    let more = report.problems.len().saturating_sub(shown.len());
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    let message = format!("{} problem(s): {}{more}", report.problems.len(), shown.join("; "));
    if report.problems.len() == report.behind && report.keys.iter().all(|k| k.state != "retired" || k.values == 0) {
        Err(Error::rejected(cfgledger_events::RejectionKind::State, message))
    } else {
        Err(Error::Integrity(message))
    }
}

/// Rotates to a new master key, or resumes a rotation a crash or a kill interrupted: records the new key
/// (when the ring holds one the log has not named), then seals the current state's values that are under
/// another key again, `opts.batch` at a time, calling `progress` after each committed batch.
pub fn rotate(
    ledger: &Ledger,
    opts: &RotateOptions,
    ctx: WriteContext,
    progress: &mut dyn FnMut(&KeyRotateProgress),
) -> Result<KeyRotateReport, Error> {
    let batch = opts.batch.max(1);
    let ring = ledger.secret_box();
    let snap = ledger.snapshot();
    let keys = snap.state.master_keys().clone();
    let current = keys.current().to_string();
    let candidates: Vec<String> = ring.key_ids().into_iter().filter(|id| keys.get(id).is_none()).collect();
    let target = match &opts.to {
        Some(to) if to == &current => None,
        Some(to) if ring.get(to).is_none() => {
            return Err(Error::input(format!(
                "--to {to}: this process holds no secret for key {to} (its keys: {})",
                ring.key_ids().join(", ")
            )))
        }
        Some(to) if keys.get(to).is_some() => {
            return Err(Error::rejected(
                cfgledger_events::RejectionKind::State,
                format!("--to {to}: key {to} sealed values before; a rotation moves to a key the store has never used"),
            ))
        }
        Some(to) => Some(to.clone()),
        None if candidates.len() > 1 => {
            return Err(Error::input(format!(
                "this process holds secrets for several keys the store has not used ({}): say which with --to",
                candidates.join(", ")
            )))
        }
        None => candidates.first().cloned(),
    };
    let mut report = KeyRotateReport {
        key_id: current.clone(),
        previous: None,
        rotated: false,
        resealed: 0,
        batches: 0,
        rewrapped: 0,
    };
    if let Some(to) = target {
        let info =
            snap.state.store.as_ref().map(|s| s.encryption.clone()).ok_or_else(|| {
                Error::rejected(cfgledger_events::RejectionKind::State, "the store is not initialized")
            })?;
        let encryption = EncryptionInfo { key_id: to.clone(), ..info };
        ledger.execute(Command::RotateMasterKey { encryption }, ctx.clone())?;
        report.rotated = true;
        report.previous = Some(current.clone());
        report.key_id = to;
    } else if let Some(previous) = keys.keys.iter().rev().nth(1) {
        report.previous = Some(previous.key_id.clone());
    }
    // The data keys first: each is wrapped again under the new key in place (outside the log; a rerun
    // finds what is left), which moves every value sealed under it at once.
    let key_id = ledger.snapshot().state.master_keys().current().to_string();
    report.rewrapped = rewrap(ledger, &key_id, batch, progress)?;
    // Each pass reads the state the last batch left, so a value another writer changed meanwhile (sealed
    // under the new key by then, or still under the old one) is taken as it is now.
    let mut idle = 0;
    loop {
        let snap = ledger.snapshot();
        let key_id = snap.state.master_keys().current().to_string();
        let behind: Vec<(SealedAt, &str)> = snap
            .state
            .sealed_values()
            .into_iter()
            .filter(|(_, t)| sealed_data_key(t).is_none() && sealed_key_id(t) != Some(key_id.as_str()))
            .collect();
        if behind.is_empty() {
            report.key_id = key_id;
            return Ok(report);
        }
        let total = behind.len();
        let items = behind
            .into_iter()
            .take(batch)
            .map(|(at, old)| reseal_one(ring, &key_id, at, old))
            .collect::<Result<Vec<Reseal>, Error>>()?;
        let count = items.len();
        let outcome = ledger.execute(Command::ResealSecrets { key_id: key_id.clone(), items }, ctx.clone())?;
        let resealed = outcome
            .find(|e| match e {
                Event::SecretsResealed(r) => Some(r.count()),
                _ => None,
            })
            .unwrap_or(0);
        if resealed == 0 {
            // Every value of the batch changed under it: read again, but never spin.
            idle += 1;
            if idle > 3 {
                return Err(Error::rejected(
                    cfgledger_events::RejectionKind::Conflict,
                    "the values to seal again keep changing under the rotation: run it again when writes calm down",
                ));
            }
            continue;
        }
        idle = 0;
        report.resealed += resealed;
        report.batches += 1;
        let seq = outcome.seqs.map_or(outcome.head.seq, |(_, last)| last);
        progress(&KeyRotateProgress {
            key_id: key_id.clone(),
            rewrapped: report.rewrapped,
            resealed: report.resealed,
            remaining: total.saturating_sub(count.min(resealed)),
            seq,
        });
    }
}

/// Wraps every data key not under `key_id` again under it, `batch` at a time; returns how many it moved.
/// The key bytes exist only inside this process, between the unwrap and the wrap.
fn rewrap(
    ledger: &Ledger,
    key_id: &str,
    batch: usize,
    progress: &mut dyn FnMut(&KeyRotateProgress),
) -> Result<usize, Error> {
    let ring = ledger.secret_box();
    let behind: Vec<DataKeyRow> = ledger.store().data_keys()?.into_iter().filter(|r| r.master_key != key_id).collect();
    let mut done = 0;
    for chunk in behind.chunks(batch) {
        let rows = chunk
            .iter()
            .map(|row| {
                let key = crate::datakeys::unwrap(ring, row).map_err(|e| {
                    Error::Integrity(format!(
                        "cannot open data key {} of {} (wrapped under key {}): {e}; the keys before it were wrapped again",
                        row.id, row.subject, row.master_key
                    ))
                })?;
                let aad = crate::crypto::data_key_aad(&row.id, &row.subject);
                let wrapped = ring.seal_under(key_id, &aad, key.bytes()).map_err(Error::Secret)?;
                Ok(DataKeyRow { master_key: key_id.to_string(), wrapped, ..row.clone() })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        done += ledger.store().rewrap_data_keys(&rows)?;
        progress(&KeyRotateProgress {
            key_id: key_id.to_string(),
            rewrapped: done,
            resealed: 0,
            remaining: behind.len().saturating_sub(done),
            seq: ledger.snapshot().head.seq,
        });
    }
    Ok(done)
}

/// One value opened with the key it names and sealed under `key_id`; fails closed, naming the place.
fn reseal_one(ring: &Keyring, key_id: &str, at: SealedAt, old: &str) -> Result<Reseal, Error> {
    let binding = at.binding();
    let plain = Zeroizing::new(Sealer::open(ring, &binding, old).map_err(|e| {
        Error::Integrity(format!(
            "cannot open {at} (sealed under key {}): {e}; nothing of this batch was written",
            sealed_key_id(old).unwrap_or("?")
        ))
    })?);
    let new = Sealer::seal(&ring.at(key_id), &binding, &plain).map_err(|e| Error::Secret(e.to_string()))?;
    Ok(Reseal { at, old: old.to_string(), new })
}

/// Retires an old master key: refused for the current key, an unknown one, and one that still seals a
/// value of the current state.
pub fn retire(ledger: &Ledger, key_id: &str, ctx: WriteContext) -> Result<KeyRetireReport, Error> {
    // The log's own refusals (the current key, an unknown one) come first; then the data keys it wraps.
    let current = ledger.snapshot().state.master_keys().current() == key_id;
    let wrapped = ledger.store().data_keys()?.into_iter().filter(|r| r.master_key == key_id).count();
    if wrapped > 0 && !current {
        return Err(Error::rejected(
            cfgledger_events::RejectionKind::State,
            format!(
                "key {key_id} still seals {wrapped} data key(s) (it wraps them): finish the rotation first (cfgledger key rotate)"
            ),
        ));
    }
    let outcome = ledger.execute(Command::RetireMasterKey { key_id: key_id.to_string() }, ctx)?;
    let seq = outcome.seqs.map_or(outcome.head.seq, |(_, last)| last);
    Ok(KeyRetireReport { key_id: key_id.to_string(), seq })
}

/// A rollback's values sealed under a key other than the current one, brought forward: the current
/// ciphertext when the state holds the same plaintext in the same place (so that a rotation is not seen as
/// a change to undo), else the value sealed again under the current key. Refused, naming it, when a value
/// cannot be opened (its key retired, or its secret not held here). Only the subjects of `only` (setting
/// keys and `KIND/NAME`) are looked at when it is given: the rest are not part of the rollback.
pub fn bring_forward(
    ledger: &Ledger,
    now: &SettingsState,
    only: Option<&std::collections::BTreeSet<String>>,
    settings: &mut BTreeMap<String, StoredValue>,
    resources: &mut BTreeMap<ResourceKind, BTreeMap<String, serde_json::Map<String, Value>>>,
) -> Result<(), Error> {
    let ring = ledger.secret_box();
    let current = now.master_keys().current().to_string();
    let here: BTreeMap<SealedAt, &str> = now.sealed_values().into_iter().collect();
    let forward = |at: SealedAt, text: &str| -> Result<Option<String>, Error> {
        if sealed_key_id(text) == Some(current.as_str()) {
            return Ok(None);
        }
        let binding = at.binding();
        if sealed_data_key(text).is_some() {
            // Its data key moves with the rotations: it stays as it is, if it still opens (not shredded).
            Sealer::open(ring, &binding, text)
                .map_err(|e| Error::invalid(format!("{at} cannot be brought back: {e}; nothing was written")))?;
            return Ok(None);
        }
        let plain = Zeroizing::new(Sealer::open(ring, &binding, text).map_err(|e| {
            Error::invalid(format!(
                "{at} was then sealed under key {}, which cannot open it now ({e}): nothing was written",
                sealed_key_id(text).unwrap_or("?")
            ))
        })?);
        if let Some(now_text) = here.get(&at) {
            if Sealer::open(ring, &binding, now_text).is_ok_and(|p| p == *plain) {
                return Ok(Some(now_text.to_string()));
            }
        }
        Sealer::seal(&ring.at(&current), &binding, &plain).map(Some).map_err(|e| Error::Secret(e.to_string()))
    };
    let wanted = |subject: &str| only.is_none_or(|o| o.contains(subject));
    for (key, value) in settings.iter_mut() {
        if !wanted(key) {
            continue;
        }
        if let StoredValue::Sealed(text) = value {
            if let Some(new) = forward(SealedAt::Setting { key: key.clone() }, text)? {
                *text = new;
            }
        }
    }
    for (kind, entities) in resources.iter_mut() {
        for (name, fields) in entities.iter_mut() {
            if !wanted(&format!("{kind}/{name}")) {
                continue;
            }
            if let Some(Value::String(text)) = fields.get_mut("auth_value") {
                if let Some(new) = forward(SealedAt::Credentials { kind: *kind, name: name.clone() }, text)? {
                    *text = new;
                }
            }
            if let Some(Value::Object(headers)) = fields.get_mut("headers") {
                for (header, value) in headers.iter_mut() {
                    let Some(Value::String(text)) =
                        value.as_object_mut().and_then(|o| o.get_mut(cfgledger_events::resource::SEALED_HEADER))
                    else {
                        continue;
                    };
                    let at = SealedAt::Header { kind: *kind, name: name.clone(), header: header.clone() };
                    if let Some(new) = forward(at, text)? {
                        *text = new;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Forgets `subject` for good (see [`cfgledger_events::master_key::SecretShredded`]): a qualified setting key
/// (a bare one names the default namespace) or `KIND/NAME`. Its current secret is removed and every data key
/// of it destroyed in the same transaction; the report names what stays readable (values sealed under a
/// master key directly, before data keys).
pub fn shred(ledger: &Ledger, subject: &str, reason: &str, ctx: WriteContext) -> Result<KeyShredReport, Error> {
    if reason.trim().is_empty() {
        return Err(Error::input("a shred needs a reason: it is what the audit keeps instead of the value"));
    }
    let subject = match subject.split_once('/') {
        Some((kind, name)) => {
            let kind: ResourceKind = kind.parse().map_err(|_| {
                Error::input(format!("{subject}: {kind:?} is not an entity kind (gateways, servers, tools, ...)"))
            })?;
            if name.is_empty() {
                return Err(Error::input(format!("{subject}: the entity's name is missing")));
            }
            format!("{kind}/{name}")
        }
        None => match ledger.catalog().get(subject) {
            Some(spec) => spec.id.clone(),
            None if subject.contains(cfgledger_events::namespace::SEP) => subject.to_string(),
            None => return Err(Error::Rejected(cfgledger_events::Rejection::unknown_key(subject))),
        },
    };
    let still_readable = readable_history(ledger, &subject)?;
    let cmd = Command::ShredSecret { subject: subject.clone(), data_keys: Vec::new(), reason: reason.to_string() };
    let outcome = ledger.execute(cmd, ctx)?;
    let data_keys = outcome
        .find(|e| match e {
            Event::SecretShredded(s) => Some(s.data_keys.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let removed_current =
        outcome.events.iter().any(|e| matches!(e, Event::SettingReset(_) | Event::ResourceUpdated(_)));
    let seq = outcome.seqs.map_or(outcome.head.seq, |(_, last)| last);
    Ok(KeyShredReport { subject, data_keys, removed_current, still_readable, seq })
}

/// The seqs of `subject`'s history holding a value sealed under a master key directly.
fn readable_history(ledger: &Ledger, subject: &str) -> Result<Vec<u64>, Error> {
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let q = crate::store::LogQuery {
            subject: Some(crate::store::SubjectMatch::Exact(subject.to_string())),
            after,
            limit: 1000,
            ascending: true,
            ..Default::default()
        };
        let records = ledger.store().query(&q)?;
        let Some(last) = records.last().map(|r| r.seq) else { break };
        let marker = b"\"cfgl1:";
        seqs.extend(records.iter().filter(|r| r.envelope.windows(marker.len()).any(|w| w == marker)).map(|r| r.seq));
        after = last;
    }
    Ok(seqs)
}
