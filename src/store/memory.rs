//! The in-memory adapter: the log in a vector behind a mutex. For tests and for `memory:` stores that
//! need no persistence; it follows the same contract as the durable adapters.

use super::{EventStore, InstanceBeat, StoreError};
use cfgledger_events::{Head, Record};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    log: Mutex<Vec<Record>>,
    instances: Mutex<BTreeMap<String, InstanceBeat>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<Record>>, StoreError> {
        self.log.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

fn head_of(log: &[Record]) -> Head {
    log.last().map_or(Head::EMPTY, |r| Head { seq: r.seq, hash: r.hash })
}

impl EventStore for MemoryStore {
    fn head(&self) -> Result<Head, StoreError> {
        Ok(head_of(&self.lock()?))
    }

    fn append(&self, expected: Head, records: &[Record]) -> Result<Head, StoreError> {
        let mut log = self.lock()?;
        let actual = head_of(&log);
        if actual != expected {
            return Err(StoreError::Conflict { expected, actual });
        }
        super::check_continues(expected, records)?;
        log.extend_from_slice(records);
        Ok(head_of(&log))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let log = self.lock()?;
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
        Ok(log[start..].iter().take(limit).cloned().collect())
    }

    fn change_token(&self) -> Result<u64, StoreError> {
        Ok(self.head()?.seq)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn heartbeat(&self, instance: &InstanceBeat, forget_before: i64) -> Result<(), StoreError> {
        let mut all =
            self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        all.retain(|_, b| b.last_seen >= forget_before);
        all.insert(instance.id.clone(), instance.clone());
        Ok(())
    }

    fn instances(&self, since: i64) -> Result<Vec<InstanceBeat>, StoreError> {
        let all = self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        Ok(all.values().filter(|b| b.last_seen >= since).cloned().collect())
    }

    fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        let mut all =
            self.instances.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))?;
        all.remove(id);
        Ok(())
    }
}
