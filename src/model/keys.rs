//! The master key's reports: the keys a store has used and what each seals now (`key list`, `key verify`),
//! a rotation's progress and result (`key rotate`), and a retirement (`key retire`). They name key ids and
//! places, never a key or a value.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One master key: one the log named, or one this process holds a secret for that the log has not named yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MasterKeyStatus {
    pub key_id: String,
    /// `current` (seals new values), `previous` (opens what it sealed), `retired` (opens nothing), or
    /// `candidate` (this process holds its secret; the log has not named it: what a rotation moves to).
    pub state: String,
    /// The seq of the genesis event or of the rotation that introduced it.
    pub since_seq: Option<u64>,
    pub retired_seq: Option<u64>,
    /// Whether this process holds the key's secret.
    pub in_ring: bool,
    /// How many values of the current state it seals (directly, or through the data key they are under).
    pub values: usize,
    /// How many data keys it wraps.
    #[serde(default)]
    pub data_keys: usize,
}

/// `cfgledger key list` and `cfgledger key verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyStatusReport {
    /// The key that seals new values.
    pub current: String,
    pub keys: Vec<MasterKeyStatus>,
    /// Every sealed value of the current state.
    pub values: usize,
    /// Values under a key other than the current one (a rotation to finish).
    pub behind: usize,
    /// What `verify` fails on: a value under a key other than the current one, or one that does not open.
    pub problems: Vec<String>,
    /// The data keys the store holds (values with a shred subject are sealed under them).
    #[serde(default)]
    pub data_keys: usize,
    /// The subjects shredded so far, each with how many data keys went with it.
    #[serde(default)]
    pub shredded: Vec<ShreddedSubject>,
}

/// A subject whose data keys were destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShreddedSubject {
    pub subject: String,
    pub data_keys: usize,
    /// The seq of the (last) shred.
    pub seq: u64,
}

/// `cfgledger key shred`: what was forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyShredReport {
    /// A qualified setting key, or `KIND/NAME`.
    pub subject: String,
    /// The data keys destroyed: every ciphertext under them, current or in the history, is unreadable.
    pub data_keys: Vec<String>,
    /// Whether the subject's current secret was removed (the setting reset, the entity's credentials dropped).
    pub removed_current: bool,
    /// Seqs of the subject's history that hold a value sealed under a master key directly (written before
    /// data keys): those stay readable while that master key is kept (rotate, retire it and destroy its
    /// secret to close them).
    pub still_readable: Vec<u64>,
    pub seq: u64,
}

/// `cfgledger key rotate`: what this run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotateReport {
    /// The key every value of the current state is now sealed under.
    pub key_id: String,
    /// The key that sealed before this rotation (the run that recorded it, or the one it resumed).
    pub previous: Option<String>,
    /// Whether this run recorded the new key (false when it resumed a rotation already recorded).
    pub rotated: bool,
    /// The values this run sealed again.
    pub resealed: usize,
    /// The batches this run appended (one event each).
    pub batches: usize,
    /// The data keys this run wrapped again under the new key.
    #[serde(default)]
    pub rewrapped: usize,
}

/// One batch of a rotation, as it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotateProgress {
    pub key_id: String,
    /// Data keys wrapped again under the new key so far.
    #[serde(default)]
    pub rewrapped: usize,
    pub resealed: usize,
    /// Values still under another key after this batch.
    pub remaining: usize,
    pub seq: u64,
}

/// `cfgledger key retire`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRetireReport {
    pub key_id: String,
    pub seq: u64,
}
