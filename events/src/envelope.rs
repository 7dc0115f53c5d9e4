//! The envelope: one event with its position, time, actor and batch. Its JSON encoding is the exact byte
//! string that is hashed and stored; field order is fixed by the struct declaration, so encoding is
//! canonical for a given envelope. Verification never re-encodes: it hashes the stored bytes.

use crate::event::Event;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Through which door a change came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Cli,
    Api,
    Ui,
    /// The store itself: genesis, `.env` seeding.
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Api => "api",
            Source::Ui => "ui",
            Source::System => "system",
        }
    }
}

/// Who made a change, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub source: Source,
    /// Client address for API calls, host name for the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { name: "cfgledger".into(), role: None, source: Source::System, address: None, request_id: None }
    }
}

/// Why a batch was appended: what the audit trail shows as its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Cause {
    /// A CLI command, e.g. `config set`.
    Cli { command: String },
    /// An HTTP request.
    Api { method: String, path: String },
    /// Store creation and `.env` seeding at open.
    Open { env_file: Option<String> },
    /// An imported document, named by the digest of its settings; `via` is the request or command.
    Import { digest: String, via: String },
    /// A rollback to the state after `to_seq` (`to` is the point as the caller named it: a time or
    /// `seq:N`); `via` is the request or command.
    Rollback { to_seq: u64, to: String, via: String },
    /// The undoing of one batch: its subjects returned to how they were just before it.
    Revert { batch: String, via: String },
    /// A replay clone: the state of another store (`source_store_id`) as of `source_seq`, whose event there
    /// hashes to `source_head_hash`.
    Clone { source_store_id: String, source_seq: u64, source_head_hash: String, via: String },
    /// A change request applied (or suspended) by a server's scheduler at its apply time.
    Scheduled { request: u64 },
    /// A transition of rollout `id` made by a server's rollout driver (`instance`): a bake that ended or a
    /// health signal that failed.
    RolloutDriver { id: String, instance: String },
}

/// The batch an event belongs to: every event of one append shares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One event at its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub seq: u64,
    pub occurred_at: Timestamp,
    pub actor: Actor,
    pub batch: Batch,
    pub event: Event,
}

#[derive(Serialize)]
struct WireOut<'a> {
    seq: u64,
    occurred_at: Timestamp,
    actor: &'a Actor,
    batch: &'a Batch,
    kind: &'static str,
    v: u32,
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct WireIn<'a> {
    seq: u64,
    occurred_at: Timestamp,
    actor: Actor,
    batch: Batch,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    v: u32,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Bytes that are not an envelope this build can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Envelope(String),
    UnknownKind(String),
    UnsupportedVersion { kind: String, version: u32 },
    Payload { kind: String, version: u32, message: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Envelope(m) => write!(f, "malformed envelope: {m}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown event kind {k:?}"),
            DecodeError::UnsupportedVersion { kind, version } => {
                write!(f, "event {kind} version {version} is newer than this build understands")
            }
            DecodeError::Payload { kind, version, message } => {
                write!(f, "malformed {kind} v{version} payload: {message}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Envelope {
    /// The canonical bytes: compact JSON, fields in declaration order, payload fields in struct order.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain structs of strings, numbers and `serde_json::Value` cannot fail.
        let payload = self.event.payload_json().expect("event payloads always serialize");
        let wire = WireOut {
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor: &self.actor,
            batch: &self.batch,
            kind: self.event.kind(),
            v: self.event.version(),
            payload: &payload,
        };
        serde_json::to_vec(&wire).expect("envelopes always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let wire: WireIn<'_> = serde_json::from_slice(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        let event = Event::decode_payload(&wire.kind, wire.v, wire.payload.get())?;
        Ok(Envelope { seq: wire.seq, occurred_at: wire.occurred_at, actor: wire.actor, batch: wire.batch, event })
    }
}
