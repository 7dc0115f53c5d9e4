//! The in-memory adapter: the log in a vector behind a mutex. For tests and for `memory:` stores that
//! need no persistence; it follows the same contract as the durable adapters.

use super::{EventStore, StoreError};
use cfgledger_events::{Head, Record};
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    log: Mutex<Vec<Record>>,
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
}
