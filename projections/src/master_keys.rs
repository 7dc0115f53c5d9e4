//! The master keys in the projection: which keys the log has named (the genesis key, each rotation's, and
//! which are retired), the fold of a batch of re-sealed values, and every sealed value of the current state
//! with where it lives, which a rotation, `key verify` and a retirement walk.

use crate::settings::SettingsState;
use cfgledger_events::event::StoredValue;
use cfgledger_events::governance::RequestChange;
use cfgledger_events::master_key::{
    MasterKey, MasterKeyRotated, MasterKeys, SealedAt, SecretShredded, SecretsResealed, ShreddedKey,
};
use cfgledger_events::resource::{self, ResourceKind};
use serde_json::Value;

impl SettingsState {
    /// The master keys the log has named, the last one current.
    pub fn master_keys(&self) -> &MasterKeys {
        &self.master_keys
    }

    /// Sets the master keys, as the snapshot codec reads them.
    pub(crate) fn set_master_keys(&mut self, keys: MasterKeys) {
        self.master_keys = keys;
    }

    pub(crate) fn master_key_created(&mut self, seq: u64, key_id: &str) {
        self.master_keys.keys = vec![MasterKey { key_id: key_id.to_string(), since_seq: seq, retired_seq: None }];
    }

    /// The new key seals from now on, and the store's encryption names it (so that an export, a clone and
    /// an open derive the key that seals the current values).
    pub(crate) fn master_key_rotated(&mut self, seq: u64, e: &MasterKeyRotated) {
        debug_assert!(self.master_keys.get(&e.encryption.key_id).is_none(), "seq {seq} rotates to a used key");
        self.master_keys.keys.push(MasterKey {
            key_id: e.encryption.key_id.clone(),
            since_seq: seq,
            retired_seq: None,
        });
        if let Some(store) = self.store.as_mut() {
            store.encryption = e.encryption.clone();
        }
    }

    /// Remembers the destroyed data keys (the same batch removed the subject's current secret).
    pub(crate) fn secret_shredded(&mut self, seq: u64, e: &SecretShredded) {
        for id in &e.data_keys {
            self.master_keys.shredded.insert(id.clone(), ShreddedKey { subject: e.subject.clone(), seq });
        }
    }

    pub(crate) fn master_key_retired(&mut self, seq: u64, key_id: &str) {
        let key = self.master_keys.keys.iter_mut().find(|k| k.key_id == key_id);
        debug_assert!(key.is_some(), "seq {seq} retires key {key_id}, which the log never named");
        if let Some(key) = key {
            key.retired_seq = Some(seq);
        }
    }

    /// Puts each new ciphertext in its place. A setting is marked touched (so that its resolved view is
    /// rebuilt with the new ciphertext) but keeps who set it and when; an entity keeps its version.
    pub(crate) fn secrets_resealed(&mut self, seq: u64, e: &SecretsResealed) {
        for s in &e.settings {
            let entry = self.values.get_mut(&s.key);
            debug_assert!(entry.is_some(), "seq {seq} reseals setting {}, which holds no value", s.key);
            if let Some(entry) = entry {
                entry.value = StoredValue::Sealed(s.value.clone());
                self.touched.insert(s.key.clone(), seq);
            }
        }
        for r in &e.resources {
            let entity = self.resources.get_mut(&r.kind).and_then(|m| m.get_mut(&r.name));
            debug_assert!(entity.is_some(), "seq {seq} reseals {}/{}, which does not exist", r.kind, r.name);
            let Some(entity) = entity else { continue };
            if let Some(auth) = &r.auth_value {
                entity.fields.insert("auth_value".into(), Value::String(auth.clone()));
            }
            if let Some(Value::Object(headers)) = entity.fields.get_mut("headers") {
                for (header, sealed) in &r.headers {
                    let mut wrapped = serde_json::Map::new();
                    wrapped.insert(resource::SEALED_HEADER.into(), Value::String(sealed.clone()));
                    headers.insert(header.clone(), Value::Object(wrapped));
                }
            }
        }
        for u in &e.users {
            if let Some(user) = self.users.get_mut(&u.name) {
                user.password_hash = u.password_hash.clone();
            }
        }
        for k in &e.signing_keys {
            if let Some(key) = self.signing_keys.rotated.iter_mut().find(|r| r.kid == k.kid) {
                key.sealed_key = k.sealed_key.clone();
            }
        }
        for r in &e.rollouts {
            let change = self
                .rollouts
                .get_mut(&r.id)
                .and_then(|rollout| rollout.started.changes.iter_mut().find(|c| c.key == r.key));
            debug_assert!(change.is_some(), "seq {seq} reseals rollout {}'s {}, which it does not change", r.id, r.key);
            if let Some(change) = change {
                change.value = StoredValue::Sealed(r.value.clone());
            }
        }
        if !e.requests.is_empty() {
            let governance = std::sync::Arc::make_mut(&mut self.governance);
            for r in &e.requests {
                let change = governance
                    .requests
                    .get_mut(&r.id)
                    .and_then(|q| std::sync::Arc::make_mut(q).changes.get_mut(r.index));
                debug_assert!(
                    change.is_some(),
                    "seq {seq} reseals change {} of request {}, which is not there",
                    r.index,
                    r.id
                );
                match (change, &r.header) {
                    (Some(RequestChange::Set { value, .. }), None) => *value = StoredValue::Sealed(r.value.clone()),
                    (Some(RequestChange::Create { fields, .. } | RequestChange::Update { fields, .. }), None) => {
                        fields.insert("auth_value".into(), Value::String(r.value.clone()));
                    }
                    (Some(RequestChange::Create { fields, .. } | RequestChange::Update { fields, .. }), Some(h)) => {
                        if let Some(Value::Object(headers)) = fields.get_mut("headers") {
                            let mut wrapped = serde_json::Map::new();
                            wrapped.insert(resource::SEALED_HEADER.into(), Value::String(r.value.clone()));
                            headers.insert(h.clone(), Value::Object(wrapped));
                        }
                    }
                    _ => debug_assert!(
                        false,
                        "seq {seq} reseals change {} of request {}, which seals nothing",
                        r.index, r.id
                    ),
                }
            }
        }
    }

    /// Every sealed value of the current state, with where it lives: sensitive settings, each entity's
    /// credentials (`auth_value`, which holds OAuth secrets and query-parameter values too) and sealed
    /// headers, users' password hashes and rotated token signing keys.
    pub fn sealed_values(&self) -> Vec<(SealedAt, &str)> {
        let mut out = Vec::new();
        for (key, entry) in &self.values {
            if let StoredValue::Sealed(text) = &entry.value {
                out.push((SealedAt::Setting { key: key.clone() }, text.as_str()));
            }
        }
        for kind in ResourceKind::ALL {
            for (name, entity) in self.resources(kind) {
                if let Some(Value::String(text)) = entity.fields.get("auth_value") {
                    out.push((SealedAt::Credentials { kind, name: name.clone() }, text.as_str()));
                }
                if let Some(Value::Object(headers)) = entity.fields.get("headers") {
                    for (header, value) in headers {
                        if let Some(text) = resource::sealed_header(value) {
                            let at = SealedAt::Header { kind, name: name.clone(), header: header.clone() };
                            out.push((at, text));
                        }
                    }
                }
            }
        }
        for (name, user) in &self.users {
            out.push((SealedAt::UserPassword { name: name.clone() }, user.password_hash.as_str()));
        }
        for key in &self.signing_keys.rotated {
            out.push((SealedAt::SigningKey { kid: key.kid.clone() }, key.sealed_key.as_str()));
        }
        // An active rollout's values are served to instances and merged at its end: current state too.
        for rollout in self.rollouts.values().filter(|r| r.is_active()) {
            for change in &rollout.started.changes {
                if let StoredValue::Sealed(text) = &change.value {
                    let at = SealedAt::RolloutValue { id: rollout.started.id.clone(), key: change.key.clone() };
                    out.push((at, text.as_str()));
                }
            }
        }
        // A pending change request holds sealed values that will be applied: they are current state too. A
        // closed one's are history, like an old event's.
        for request in self.governance.requests.values().filter(|r| !r.status.is_closed()) {
            let id = request.id;
            for (index, change) in request.changes.iter().enumerate() {
                match change {
                    RequestChange::Set { key, value: StoredValue::Sealed(text) } => {
                        out.push((SealedAt::RequestSetting { id, index, key: key.clone() }, text.as_str()));
                    }
                    RequestChange::Create { kind, name, fields } | RequestChange::Update { kind, name, fields } => {
                        if let Some(Value::String(text)) = fields.get("auth_value") {
                            let at = SealedAt::RequestCredentials { id, index, kind: *kind, name: name.clone() };
                            out.push((at, text.as_str()));
                        }
                        if let Some(Value::Object(headers)) = fields.get("headers") {
                            for (header, value) in headers {
                                if let Some(text) = resource::sealed_header(value) {
                                    let at = SealedAt::RequestHeader {
                                        id,
                                        index,
                                        kind: *kind,
                                        name: name.clone(),
                                        header: header.clone(),
                                    };
                                    out.push((at, text));
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}
