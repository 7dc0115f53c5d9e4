//! The projection's state as bytes, for checkpoints: a point-in-time read or a start loads the newest
//! snapshot at or before the point it wants and folds only the events after it. The encoding is JSON with
//! every map sorted, so equal states encode to equal bytes, and it is versioned so that a snapshot written
//! by another build is ignored (and rebuilt), never misread. A snapshot is a cache: deleting every one
//! changes nothing but speed.

use crate::settings::{Entry, ResourceEntry, SettingsState, SigningKey, SigningKeys, StoreInfo, User};
use cfgledger_events::event::{EncryptionInfo, StoredValue};
use cfgledger_events::governance::Governance;
use cfgledger_events::{Hash, ResourceKind, Source, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The snapshot format this build writes and reads (3: users' credential versions, the signing keys and the
/// revoked tokens; 4: the change policy and the change requests, the master keys and the rollouts; 5: the
/// destroyed data keys).
pub const FORMAT: u32 = 5;

#[derive(Serialize, Deserialize)]
struct Doc {
    format: u32,
    applied_seq: u64,
    store: Option<StoreDoc>,
    values: BTreeMap<String, EntryDoc>,
    held: BTreeSet<String>,
    touched: BTreeMap<String, u64>,
    users: BTreeMap<String, UserDoc>,
    resources: BTreeMap<String, BTreeMap<String, ResourceDoc>>,
    signing_keys: Vec<SigningKeyDoc>,
    base_key_retires_at: Option<i64>,
    revoked_tokens: BTreeMap<String, u64>,
    governance: Governance,
    #[serde(default)]
    master_keys: cfgledger_events::master_key::MasterKeys,
    #[serde(default)]
    rollouts: BTreeMap<String, cfgledger_events::rollout::Rollout>,
}

#[derive(Serialize, Deserialize)]
struct SigningKeyDoc {
    kid: String,
    sealed_key: String,
    seq: u64,
    rotated_at: i64,
    retires_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct StoreDoc {
    store_id: String,
    format: String,
    encryption: EncryptionInfo,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct EntryDoc {
    value: StoredValue,
    seq: u64,
    updated_at: i64,
    updated_by: String,
    source: Source,
}

#[derive(Serialize, Deserialize)]
struct UserDoc {
    role: String,
    password_hash: String,
    added_at: i64,
    credentials_seq: u64,
}

#[derive(Serialize, Deserialize)]
struct ResourceDoc {
    fields: Map<String, Value>,
    created_at: i64,
    updated_at: i64,
    version: u64,
}

/// The state as snapshot bytes.
pub fn encode(state: &SettingsState) -> Vec<u8> {
    let (values, held, touched, users, resources, signing_keys, revoked_tokens) = state.parts();
    let doc = Doc {
        format: FORMAT,
        applied_seq: state.applied_seq,
        store: state.store.as_ref().map(|s| StoreDoc {
            store_id: s.store_id.clone(),
            format: s.format.clone(),
            encryption: s.encryption.clone(),
            created_at: s.created_at.0,
        }),
        values: values
            .iter()
            .map(|(k, e)| {
                let doc = EntryDoc {
                    value: e.value.clone(),
                    seq: e.seq,
                    updated_at: e.updated_at.0,
                    updated_by: e.updated_by.clone(),
                    source: e.source,
                };
                (k.clone(), doc)
            })
            .collect(),
        held: held.iter().cloned().collect(),
        touched: touched.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        users: users
            .iter()
            .map(|(n, u)| {
                let doc = UserDoc {
                    role: u.role.clone(),
                    password_hash: u.password_hash.clone(),
                    added_at: u.added_at.0,
                    credentials_seq: u.credentials_seq,
                };
                (n.clone(), doc)
            })
            .collect(),
        resources: resources
            .iter()
            .map(|(kind, entities)| {
                let docs = entities
                    .iter()
                    .map(|(name, e)| {
                        let doc = ResourceDoc {
                            fields: e.fields.clone(),
                            created_at: e.created_at.0,
                            updated_at: e.updated_at.0,
                            version: e.version,
                        };
                        (name.clone(), doc)
                    })
                    .collect();
                (kind.as_str().to_string(), docs)
            })
            .collect(),
        signing_keys: signing_keys
            .rotated
            .iter()
            .map(|k| SigningKeyDoc {
                kid: k.kid.clone(),
                sealed_key: k.sealed_key.clone(),
                seq: k.seq,
                rotated_at: k.rotated_at.0,
                retires_at: k.retires_at.map(|t| t.0),
            })
            .collect(),
        base_key_retires_at: signing_keys.base_retires_at.map(|t| t.0),
        revoked_tokens: revoked_tokens.clone(),
        governance: state.governance().clone(),
        master_keys: state.master_keys().clone(),
        rollouts: state.rollouts().clone(),
    };
    // Every part is a plain value: encoding cannot fail.
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Whether `bytes` are a snapshot an older build wrote in an earlier format: a cache this build cannot use
/// but nothing to report, unlike damage or a format no build of this program has written yet.
pub fn is_older_format(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Format {
        format: u32,
    }
    serde_json::from_slice::<Format>(bytes).is_ok_and(|f| f.format < FORMAT)
}

/// The state from snapshot bytes, or why they cannot be read (another format, damage).
pub fn decode(bytes: &[u8]) -> Result<SettingsState, String> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| format!("the snapshot does not decode: {e}"))?;
    if doc.format != FORMAT {
        return Err(format!("snapshot format {} is not this build's ({FORMAT})", doc.format));
    }
    let mut resources = BTreeMap::new();
    for (kind, entities) in doc.resources {
        let kind: ResourceKind = kind.parse()?;
        let entries = entities
            .into_iter()
            .map(|(name, e)| {
                let entry = ResourceEntry {
                    fields: e.fields,
                    created_at: Timestamp(e.created_at),
                    updated_at: Timestamp(e.updated_at),
                    version: e.version,
                };
                (name, entry)
            })
            .collect();
        resources.insert(kind, entries);
    }
    let master_keys = doc.master_keys;
    let rollouts = doc.rollouts;
    let mut state = SettingsState::from_parts(
        doc.applied_seq,
        doc.store.map(|s| StoreInfo {
            store_id: s.store_id,
            format: s.format,
            encryption: s.encryption,
            created_at: Timestamp(s.created_at),
        }),
        doc.values
            .into_iter()
            .map(|(k, e)| {
                let entry = Entry {
                    value: e.value,
                    seq: e.seq,
                    updated_at: Timestamp(e.updated_at),
                    updated_by: e.updated_by,
                    source: e.source,
                };
                (k, entry)
            })
            .collect(),
        doc.held.into_iter().collect(),
        doc.touched.into_iter().collect(),
        doc.users
            .into_iter()
            .map(|(n, u)| {
                let user = User {
                    role: u.role,
                    password_hash: u.password_hash,
                    added_at: Timestamp(u.added_at),
                    credentials_seq: u.credentials_seq,
                };
                (n, user)
            })
            .collect(),
        resources,
        SigningKeys {
            rotated: doc
                .signing_keys
                .into_iter()
                .map(|k| SigningKey {
                    kid: k.kid,
                    sealed_key: k.sealed_key,
                    seq: k.seq,
                    rotated_at: Timestamp(k.rotated_at),
                    retires_at: k.retires_at.map(Timestamp),
                })
                .collect(),
            base_retires_at: doc.base_key_retires_at.map(Timestamp),
        },
        doc.revoked_tokens,
        doc.governance,
    );
    state.set_master_keys(master_keys);
    state.set_rollouts(rollouts);
    Ok(state)
}

/// What a stored snapshot's digest covers: its seq, the hash of the log's event at that seq, and its
/// bytes. A snapshot whose digest does not match, or whose head hash is not the log's, is not used.
pub fn digest(seq: u64, head_hash: &Hash, state: &[u8]) -> Hash {
    // The chain's own hash (blake3 of what precedes, then the bytes), over a domain tag, the seq and the
    // state: no other hash function, and no dependency beyond the events crate.
    let mut bytes = Vec::with_capacity(state.len() + 32);
    bytes.extend_from_slice(b"cfgledger-snapshot-v1\0");
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(state);
    Hash::link(head_hash, &bytes)
}
