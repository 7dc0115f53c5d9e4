//! A store as `decide` and the fold see it, for the pure-core tests: a built-in catalog, a reversible sealer
//! bound to its name (like the real one, opening under another name fails), and commands decided and folded
//! batch by batch.
#![allow(dead_code)]

use cfgledger_events::event::{EncryptionInfo, StoredValue};
use cfgledger_events::testing::suite_catalog;
use cfgledger_events::{
    build_batch, decide, Actor, Batch, Catalog, Cause, Command, Event, Head, Input, Rejection, Sealer, Timestamp,
};
use cfgledger_projections::SettingsState;
use serde_json::Value;

pub struct TestSealer;

impl Sealer for TestSealer {
    fn seal(&self, key: &str, plaintext: &[u8]) -> Result<String, String> {
        let hex: String = plaintext.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("sealed:{key}:{hex}"))
    }

    fn open(&self, key: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let hex = sealed.strip_prefix(&format!("sealed:{key}:")).ok_or("not sealed for this name")?;
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| "not hex".to_string())
            })
            .collect()
    }
}

pub struct World {
    pub catalog: Catalog,
    pub state: SettingsState,
    pub head: Head,
}

impl World {
    /// A created store with the built-in catalog.
    pub fn new() -> World {
        let mut w = World { catalog: suite_catalog(), state: SettingsState::new(), head: Head::EMPTY };
        w.run(Command::CreateStore {
            store_id: "test".into(),
            encryption: EncryptionInfo {
                algorithm: "xchacha20poly1305".into(),
                kdf: "argon2id:m=19456,t=2,p=1".into(),
                salt: "00".into(),
                key_id: "0011223344556677".into(),
            },
            env_file: ".env".into(),
            entries: vec![],
        })
        .expect("the store is created");
        w
    }

    pub fn decide(&self, cmd: Command) -> Result<Vec<Event>, Rejection> {
        decide(&self.catalog, &self.state, &TestSealer, cmd)
    }

    /// Decides and folds `cmd` as one batch; returns the events appended.
    pub fn run(&mut self, cmd: Command) -> Result<Vec<Event>, Rejection> {
        let events = self.decide(cmd)?;
        self.append(events.clone());
        Ok(events)
    }

    /// Folds `events` as one batch.
    pub fn append(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let batch =
            Batch { id: format!("b{}", self.head.seq), cause: Cause::Cli { command: "test".into() }, reason: None };
        for (env, rec) in build_batch(self.head, Timestamp(1_800_000_000_000_000), &Actor::system(), &batch, events) {
            self.state.apply(&env);
            self.head = Head { seq: rec.seq, hash: rec.hash };
        }
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.run(Command::Set { key: key.into(), value: Input::Json(value) }).expect("the set is accepted");
    }

    /// The value the log holds for a setting, opened if sealed.
    pub fn plain(&self, key: &str) -> Option<Value> {
        match self.state.get(key).map(|e| &e.value) {
            Some(StoredValue::Plain(v)) => Some(v.clone()),
            Some(StoredValue::Sealed(s)) => {
                // Sealed under the qualified key, as every value is.
                let id = self.catalog.get(key).map_or_else(|| key.to_string(), |spec| spec.id.clone());
                TestSealer.open(&id, s).ok().and_then(|b| serde_json::from_slice(&b).ok())
            }
            None => None,
        }
    }
}
