//! The in-memory adapter: the log in a vector behind a mutex. For tests and for `memory:` stores that
//! need no persistence; it follows the same contract as the durable adapters.

use super::{
    AppendGuard, ClaimedBeat, DataKeyRow, EventStore, InstanceBeat, LogQuery, StoreError, StoredSnapshot, SubjectMatch,
};
use cfgledger_events::{Head, Record, Timestamp};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    log: Mutex<Vec<Record>>,
    /// The write lock: held by an [`AppendGuard`] while reads go on under `log`'s own lock.
    writing: Mutex<()>,
    instances: Mutex<BTreeMap<String, InstanceBeat>>,
    snapshots: Mutex<BTreeMap<u64, StoredSnapshot>>,
    data_keys: Mutex<BTreeMap<String, DataKeyRow>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn log(&self) -> Result<std::sync::MutexGuard<'_, Vec<Record>>, StoreError> {
        self.log.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    fn keys(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, DataKeyRow>>, StoreError> {
        self.data_keys.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }

    fn snapshots(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<u64, StoredSnapshot>>, StoreError> {
        self.snapshots.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

/// Whether `rec` is one of those `q` selects (every filter but the limit and order).
pub(crate) fn selects(q: &LogQuery, rec: &Record) -> bool {
    let subject = match &q.subject {
        None => true,
        Some(SubjectMatch::Exact(k)) => rec.key.as_deref() == Some(k.as_str()),
        Some(SubjectMatch::Prefix(p)) => rec.key.as_deref().is_some_and(|k| k.starts_with(p.as_str())),
        Some(SubjectMatch::AnyOf(keys)) => rec.key.as_ref().is_some_and(|k| keys.contains(k)),
    };
    subject
        && rec.seq > q.after
        && q.before.is_none_or(|b| rec.seq < b)
        && q.actor.as_ref().is_none_or(|a| &rec.actor == a)
        && (q.kinds.is_empty() || q.kinds.iter().any(|k| k == &rec.kind))
        && q.batch.as_ref().is_none_or(|b| &rec.batch_id == b)
        && q.since.is_none_or(|t| rec.occurred_at >= t)
        && q.until.is_none_or(|t| rec.occurred_at <= t)
}

/// Keeps `beat` unless the stored beat of its id is newer.
fn upsert_beat(all: &mut BTreeMap<String, InstanceBeat>, beat: &InstanceBeat) {
    match all.get_mut(&beat.id) {
        Some(stored) if stored.last_seen > beat.last_seen => {}
        Some(stored) => *stored = beat.clone(),
        None => {
            all.insert(beat.id.clone(), beat.clone());
        }
    }
}

struct MemoryGuard<'a> {
    store: &'a MemoryStore,
    head: Head,
    _writing: std::sync::MutexGuard<'a, ()>,
    put: Vec<DataKeyRow>,
    destroy: Vec<String>,
}

impl AppendGuard for MemoryGuard<'_> {
    fn head(&self) -> Head {
        self.head
    }

    fn commit(self: Box<Self>, records: &[Record]) -> Result<Head, StoreError> {
        super::check_continues(self.head, records)?;
        let mut log = self.store.log()?;
        let mut keys = self.store.keys()?;
        for row in &self.put {
            keys.entry(row.id.clone()).or_insert_with(|| row.clone());
        }
        for id in &self.destroy {
            keys.remove(id);
        }
        log.extend_from_slice(records);
        Ok(head_of(&log))
    }

    fn data_key_ids(&mut self, subject: &str) -> Result<Vec<String>, StoreError> {
        let keys = self.store.keys()?;
        let staged = self.put.iter().filter(|r| r.subject == subject).map(|r| r.id.clone());
        let mut ids: Vec<String> = keys.values().filter(|r| r.subject == subject).map(|r| r.id.clone()).collect();
        ids.extend(staged);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn stage_data_keys(&mut self, put: &[DataKeyRow], destroy: &[String]) -> Result<(), StoreError> {
        self.put.extend_from_slice(put);
        self.destroy.extend_from_slice(destroy);
        Ok(())
    }
}

fn head_of(log: &[Record]) -> Head {
    log.last().map_or(Head::EMPTY, |r| Head { seq: r.seq, hash: r.hash })
}

impl EventStore for MemoryStore {
    fn head(&self) -> Result<Head, StoreError> {
        Ok(head_of(&self.log()?))
    }

    fn lock(&self) -> Result<Box<dyn AppendGuard + '_>, StoreError> {
        let writing = self.writing.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        let head = head_of(&self.log()?);
        Ok(Box::new(MemoryGuard { store: self, head, _writing: writing, put: Vec::new(), destroy: Vec::new() }))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let log = self.log()?;
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        Ok(log[start..].iter().take(limit).cloned().collect())
    }

    fn query(&self, q: &LogQuery) -> Result<Vec<Record>, StoreError> {
        let log = self.log()?;
        let picked = log.iter().filter(|r| selects(q, r)).cloned();
        Ok(if q.ascending {
            picked.take(q.limit).collect()
        } else {
            let mut all: Vec<Record> = picked.collect();
            all.reverse();
            all.truncate(q.limit);
            all
        })
    }

    fn seq_at(&self, time: Timestamp) -> Result<Option<u64>, StoreError> {
        Ok(self.log()?.iter().rev().find(|r| r.occurred_at <= time).map(|r| r.seq))
    }

    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        self.snapshots()?.insert(snapshot.seq, snapshot.clone());
        Ok(())
    }

    fn load_snapshot(&self, at_or_before: u64) -> Result<Option<StoredSnapshot>, StoreError> {
        Ok(self.snapshots()?.range(..=at_or_before).next_back().map(|(_, s)| s.clone()))
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        Ok(self.snapshots()?.keys().copied().collect())
    }

    fn delete_snapshot(&self, seq: u64) -> Result<(), StoreError> {
        self.snapshots()?.remove(&seq);
        Ok(())
    }

    fn change_token(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.seq)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn heartbeats(&self, beats: &[InstanceBeat], forget_before: Option<i64>) -> Result<(), StoreError> {
        let mut all =
            self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        if let Some(before) = forget_before {
            all.retain(|_, b| b.last_seen >= before);
        }
        for beat in beats {
            upsert_beat(&mut all, beat);
        }
        Ok(())
    }

    fn claim_heartbeats(&self, claims: &[ClaimedBeat]) -> Result<Vec<bool>, StoreError> {
        let mut all =
            self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        let admitted = super::admit(claims, |id| {
            Ok::<_, StoreError>(all.get(id).map(|b| (super::reporter(&b.info).map(str::to_string), b.last_seen)))
        })?;
        for (claim, _) in claims.iter().zip(&admitted).filter(|(_, ok)| **ok) {
            upsert_beat(&mut all, &claim.beat);
        }
        Ok(admitted)
    }

    fn instances(&self, since: i64) -> Result<Vec<InstanceBeat>, StoreError> {
        let all = self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        Ok(all.values().filter(|b| b.last_seen >= since).cloned().collect())
    }

    fn instance(&self, id: &str, since: i64) -> Result<Option<InstanceBeat>, StoreError> {
        let all = self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        Ok(all.get(id).filter(|b| b.last_seen >= since).cloned())
    }

    fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        let mut all =
            self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        all.remove(id);
        Ok(())
    }

    fn put_data_keys(&self, rows: &[DataKeyRow]) -> Result<(), StoreError> {
        let mut keys = self.keys()?;
        for row in rows {
            keys.entry(row.id.clone()).or_insert_with(|| row.clone());
        }
        Ok(())
    }

    fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>, StoreError> {
        Ok(self.keys()?.get(id).cloned())
    }

    fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError> {
        Ok(self.keys()?.values().cloned().collect())
    }

    fn rewrap_data_keys(&self, rows: &[DataKeyRow]) -> Result<usize, StoreError> {
        let mut keys = self.keys()?;
        let mut done = 0;
        for row in rows {
            if let Some(held) = keys.get_mut(&row.id) {
                held.master_key = row.master_key.clone();
                held.wrapped = row.wrapped.clone();
                done += 1;
            }
        }
        Ok(done)
    }
}
