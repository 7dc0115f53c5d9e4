//! Data keys: what makes one secret forgettable. Every value with a shred subject (a setting's, an entity's
//! credentials and sealed headers, and their copies in change requests and rollouts) is sealed under a data
//! key of its subject (`cfgl2:<data key id>:...`), and the data key is kept wrapped by the master key in the
//! store's `data_keys` table, outside the log. Shredding deletes the subject's rows in the transaction that
//! appends its `SecretShredded` event: from then on no key can open those ciphertexts, in the current state
//! or anywhere in the history, while the chain still verifies and the audit still shows every change.
//!
//! A data key reaches the store no later than the first ciphertext under it reaches the log: the writer
//! stages, in the append's own transaction, the keys it made while deciding (a [`Pending`]) and every key
//! made outside it (a rotation's, an import's, a clone's: the unsaved list), which only this process's
//! writer appends. This process caches unwrapped keys; a shred anywhere
//! evicts them here when the log shows it ([`DataKeys::forget`], from every publish), and the writer refuses a
//! batch that names a destroyed key (one sealed outside the writer just before the shred).

use crate::clock::Clock;
use crate::crypto::{data_key_aad, CryptoError, DataKey};
use crate::keyring::Keyring;
use crate::store::{DataKeyRow, EventStore};
use cfgledger_events::master_key::{ShreddedKey, DATA_KEY_FORM};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use zeroize::Zeroizing;

/// The store's data keys as this process knows them.
pub struct DataKeys {
    store: Arc<dyn EventStore>,
    /// When a key is made (`created_at`).
    clock: Arc<dyn Clock>,
    /// Unwrapped keys by id.
    cache: RwLock<HashMap<String, Arc<DataKey>>>,
    /// The key this process seals each subject's new values under.
    live: RwLock<HashMap<String, String>>,
    /// Keys the log says were destroyed.
    shredded: RwLock<HashSet<String>>,
    /// Keys made outside the writer (an import's, a rotation's, a clone's), not stored yet: the writer stages
    /// them all in its next append, so each lands with (or before) the first ciphertext under it, in one
    /// transaction however many there are, and a dry run that made some writes nothing.
    unsaved: Mutex<Vec<DataKeyRow>>,
}

/// The data keys made while the writer decides one group, stored by that group's append (and only then
/// cached), or dropped with it.
#[derive(Default)]
pub struct Pending {
    made: Mutex<Vec<(DataKeyRow, Arc<DataKey>)>>,
}

impl Pending {
    fn for_subject(&self, subject: &str) -> Option<Arc<DataKey>> {
        let made = self.made.lock().ok()?;
        made.iter().rev().find(|(row, _)| row.subject == subject).map(|(_, k)| k.clone())
    }

    fn by_id(&self, id: &str) -> Option<Arc<DataKey>> {
        let made = self.made.lock().ok()?;
        made.iter().find(|(row, _)| row.id == id).map(|(_, k)| k.clone())
    }

    /// The rows to store with the append.
    pub fn rows(&self) -> Vec<DataKeyRow> {
        self.made.lock().map(|m| m.iter().map(|(row, _)| row.clone()).collect()).unwrap_or_default()
    }

    /// The ids made for `subject` in this group (a shred in the same group destroys them too).
    pub fn ids_for(&self, subject: &str) -> Vec<String> {
        self.made
            .lock()
            .map(|m| m.iter().filter(|(row, _)| row.subject == subject).map(|(row, _)| row.id.clone()).collect())
            .unwrap_or_default()
    }
}

impl DataKeys {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> DataKeys {
        DataKeys {
            store,
            clock,
            cache: RwLock::new(HashMap::new()),
            live: RwLock::new(HashMap::new()),
            shredded: RwLock::new(HashSet::new()),
            unsaved: Mutex::new(Vec::new()),
        }
    }

    fn is_shredded(&self, id: &str, logged: Option<&BTreeMap<String, ShreddedKey>>) -> bool {
        logged.is_some_and(|s| s.contains_key(id)) || self.shredded.read().is_ok_and(|s| s.contains(id))
    }

    /// The data key to seal `subject`'s new value under: the one this process uses for it, else a new one,
    /// wrapped under `master`, for the writer's next append (`pending` while it decides, else the unsaved
    /// list it takes from).
    pub fn sealing_key(
        &self,
        ring: &Keyring,
        subject: &str,
        master: &str,
        pending: Option<&Pending>,
        logged_shreds: Option<&BTreeMap<String, ShreddedKey>>,
    ) -> Result<Arc<DataKey>, String> {
        if let Some(key) = pending.and_then(|p| p.for_subject(subject)) {
            if !self.is_shredded(key.id(), logged_shreds) {
                return Ok(key);
            }
        }
        let live = self.live.read().ok().and_then(|l| l.get(subject).cloned());
        if let Some(id) = live.filter(|id| !self.is_shredded(id, logged_shreds)) {
            if let Some(key) = self.cache.read().ok().and_then(|c| c.get(&id).cloned()) {
                return Ok(key);
            }
        }
        let key = Arc::new(DataKey::generate());
        let wrapped = ring.seal_under(master, &data_key_aad(key.id(), subject), key.bytes())?;
        let row = DataKeyRow {
            id: key.id().to_string(),
            subject: subject.to_string(),
            master_key: master.to_string(),
            wrapped,
            created_at: self.clock.now().as_micros(),
        };
        match pending {
            Some(p) => {
                p.made.lock().map_err(|_| "the data key list is poisoned".to_string())?.push((row, key.clone()));
            }
            None => {
                self.unsaved.lock().map_err(|_| "the data key list is poisoned".to_string())?.push(row);
                self.adopt(subject, key.clone());
            }
        }
        Ok(key)
    }

    fn adopt(&self, subject: &str, key: Arc<DataKey>) {
        if let Ok(mut live) = self.live.write() {
            live.insert(subject.to_string(), key.id().to_string());
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key.id().to_string(), key);
        }
    }

    /// The keys made outside the writer and not stored yet, for the writer to stage in its append.
    pub fn take_unsaved(&self) -> Vec<DataKeyRow> {
        self.unsaved.lock().map(|mut u| std::mem::take(&mut *u)).unwrap_or_default()
    }

    /// Gives back keys [`DataKeys::take_unsaved`] took, when the append did not commit.
    pub fn restore_unsaved(&self, rows: Vec<DataKeyRow>) {
        if let Ok(mut unsaved) = self.unsaved.lock() {
            unsaved.extend(rows);
        }
    }

    /// The ids of keys made for `subject` and not stored yet (a shred destroys them too).
    pub fn unsaved_ids_for(&self, subject: &str) -> Vec<String> {
        self.unsaved
            .lock()
            .map(|u| u.iter().filter(|r| r.subject == subject).map(|r| r.id.clone()).collect())
            .unwrap_or_default()
    }

    /// After the group's append committed: its new keys are the ones to seal with from now on.
    pub fn committed(&self, pending: Pending) {
        let made = pending.made.into_inner().unwrap_or_default();
        for (row, key) in made {
            if !self.is_shredded(&row.id, None) {
                self.adopt(&row.subject, key);
            }
        }
    }

    /// The store's row of key `id`. Opening a value is otherwise CPU only and happens in async code too (a
    /// handler, the CLI's `block_on`), where a blocking store client must not run: there, the one read of a
    /// key this process has not opened yet goes to a thread of its own.
    fn read(&self, id: &str) -> Result<Option<DataKeyRow>, crate::store::StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.store.data_key(id);
        }
        std::thread::scope(|s| s.spawn(|| self.store.data_key(id)).join()).unwrap_or_else(|_| {
            Err(crate::store::StoreError::Unavailable(format!("the read of data key {id} panicked")))
        })
    }

    /// Forgets destroyed keys: called with the log's list on every publish (it only grows).
    pub fn forget<'a>(&self, ids: impl Iterator<Item = &'a String>) {
        let Ok(mut shredded) = self.shredded.write() else { return };
        let mut gone = Vec::new();
        for id in ids {
            if shredded.insert(id.clone()) {
                gone.push(id.clone());
            }
        }
        drop(shredded);
        if gone.is_empty() {
            return;
        }
        if let Ok(mut cache) = self.cache.write() {
            for id in &gone {
                cache.remove(id);
            }
        }
        if let Ok(mut live) = self.live.write() {
            live.retain(|_, id| !gone.contains(id));
        }
    }

    /// How many destroyed keys this process knows of (to skip a publish's `forget` when nothing is new).
    pub fn known_shredded(&self) -> usize {
        self.shredded.read().map_or(0, |s| s.len())
    }

    /// The key of `id`, unwrapped with the ring: from the cache, the writer's pending keys, or the store.
    pub fn opening_key(
        &self,
        ring: &Keyring,
        id: &str,
        what: &str,
        pending: Option<&Pending>,
    ) -> Result<Arc<DataKey>, CryptoError> {
        let gone = || CryptoError::DataKeyGone { what: what.to_string(), data_key: id.to_string() };
        if self.is_shredded(id, None) {
            return Err(gone());
        }
        if let Some(key) = self.cache.read().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(key);
        }
        if let Some(key) = pending.and_then(|p| p.by_id(id)) {
            return Ok(key);
        }
        let row = self
            .read(id)
            .map_err(|e| CryptoError::DataKeyUnavailable {
                what: what.to_string(),
                data_key: id.to_string(),
                message: e.to_string(),
            })?
            .ok_or_else(gone)?;
        let key = Arc::new(unwrap(ring, &row)?);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(id.to_string(), key.clone());
        }
        Ok(key)
    }
}

/// A stored data key opened with the master key that wraps it.
pub fn unwrap(ring: &Keyring, row: &DataKeyRow) -> Result<DataKey, CryptoError> {
    let bytes: Zeroizing<Vec<u8>> = ring.open_master(&data_key_aad(&row.id, &row.subject), &row.wrapped)?;
    DataKey::from_bytes(&row.id, &bytes)
}

/// The first destroyed data key a stored envelope names, if any: what the writer refuses to append (a
/// value sealed outside the writer just before its subject was shredded).
pub fn names_shredded(envelope: &[u8], shredded: &BTreeMap<String, ShreddedKey>) -> Option<String> {
    if shredded.is_empty() {
        return None;
    }
    let marker = format!("{DATA_KEY_FORM}:");
    let marker = marker.as_bytes();
    let mut rest = envelope;
    while let Some(at) = rest.windows(marker.len()).position(|w| w == marker) {
        let after = &rest[at + marker.len()..];
        let end = after.iter().position(|b| *b == b':').unwrap_or(after.len());
        if let Some(id) = std::str::from_utf8(&after[..end]).ok().filter(|id| shredded.contains_key(*id)) {
            return Some(id.to_string());
        }
        rest = after;
    }
    None
}
