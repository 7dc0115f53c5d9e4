//! The envelope: one event with its position, time, actor and batch. Its JSON encoding is the exact byte
//! string that is hashed and stored; field order is fixed by the struct declaration, so encoding is
//! canonical for a given envelope. Verification never re-encodes: it hashes the stored bytes.

use crate::event::Event;
use crate::time::Timestamp;
use serde::de::{self, value::MapAccessDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

mod canonical;

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

/// Why a batch was appended: what the audit trail shows as its cause. Its JSON is an object whose `type`
/// names the variant (written first), beside the variant's fields; see the `Deserialize` impl below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The variants of [`Cause`] by their `type`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CauseType {
    Cli,
    Api,
    Open,
    Import,
    Rollback,
    Revert,
    Clone,
    Scheduled,
    RolloutDriver,
}

/// The first key of a cause's object: its `type`, as the encoder writes it, or any other.
enum FirstKey {
    Type,
    Other(String),
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FirstKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FirstKey, E> {
                Ok(if key == "type" { FirstKey::Type } else { FirstKey::Other(key.to_string()) })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// The same as serde's derive for an internally tagged enum, without its detour: the derive buffers every
/// field of the object before it looks for the tag, and that was a sixth of decoding an envelope. The
/// encoder writes `type` first, so the fields are read straight into the variant's; an object with `type`
/// elsewhere (written by hand) is buffered and read the same way.
impl<'de> Deserialize<'de> for Cause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CauseVisitor;
        impl<'de> Visitor<'de> for CauseVisitor {
            type Value = Cause;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cause object with its type")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cause, A::Error> {
                let first = map.next_key::<FirstKey>()?;
                if let Some(FirstKey::Type) = first {
                    let kind: CauseType = map.next_value()?;
                    return Cause::fields(kind, MapAccessDeserializer::new(map));
                }
                let mut rest = serde_json::Map::new();
                if let Some(FirstKey::Other(key)) = first {
                    rest.insert(key, map.next_value()?);
                }
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    rest.insert(key, value);
                }
                let kind = rest.remove("type").ok_or_else(|| de::Error::missing_field("type"))?;
                let kind = CauseType::deserialize(kind).map_err(de::Error::custom)?;
                Cause::fields(kind, serde_json::Value::Object(rest)).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(CauseVisitor)
    }
}

impl Cause {
    /// The variant `kind` with the fields that `d` holds (the object without its `type`).
    fn fields<'de, D: Deserializer<'de>>(kind: CauseType, d: D) -> Result<Cause, D::Error> {
        #[derive(Deserialize)]
        struct Cli {
            command: String,
        }
        #[derive(Deserialize)]
        struct Api {
            method: String,
            path: String,
        }
        #[derive(Deserialize)]
        struct Open {
            env_file: Option<String>,
        }
        #[derive(Deserialize)]
        struct Import {
            digest: String,
            via: String,
        }
        #[derive(Deserialize)]
        struct Rollback {
            to_seq: u64,
            to: String,
            via: String,
        }
        #[derive(Deserialize)]
        struct Revert {
            batch: String,
            via: String,
        }
        #[derive(Deserialize)]
        struct CloneOf {
            source_store_id: String,
            source_seq: u64,
            source_head_hash: String,
            via: String,
        }
        #[derive(Deserialize)]
        struct Scheduled {
            request: u64,
        }
        #[derive(Deserialize)]
        struct RolloutDriver {
            id: String,
            instance: String,
        }
        Ok(match kind {
            CauseType::Cli => {
                let Cli { command } = Cli::deserialize(d)?;
                Cause::Cli { command }
            }
            CauseType::Api => {
                let Api { method, path } = Api::deserialize(d)?;
                Cause::Api { method, path }
            }
            CauseType::Open => {
                let Open { env_file } = Open::deserialize(d)?;
                Cause::Open { env_file }
            }
            CauseType::Import => {
                let Import { digest, via } = Import::deserialize(d)?;
                Cause::Import { digest, via }
            }
            CauseType::Rollback => {
                let Rollback { to_seq, to, via } = Rollback::deserialize(d)?;
                Cause::Rollback { to_seq, to, via }
            }
            CauseType::Revert => {
                let Revert { batch, via } = Revert::deserialize(d)?;
                Cause::Revert { batch, via }
            }
            CauseType::Clone => {
                let CloneOf { source_store_id, source_seq, source_head_hash, via } = CloneOf::deserialize(d)?;
                Cause::Clone { source_store_id, source_seq, source_head_hash, via }
            }
            CauseType::Scheduled => {
                let Scheduled { request } = Scheduled::deserialize(d)?;
                Cause::Scheduled { request }
            }
            CauseType::RolloutDriver => {
                let RolloutDriver { id, instance } = RolloutDriver::deserialize(d)?;
                Cause::RolloutDriver { id, instance }
            }
        })
    }
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

/// An event at its place in the log with who appended it and in which batch: what the projection's fold
/// reads of an envelope ([`Envelope::at`], [`EnvelopeRef::at`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventAt<'a> {
    pub seq: u64,
    pub occurred_at: Timestamp,
    /// The actor's name.
    pub actor: &'a str,
    /// The door the actor came in by.
    pub source: Source,
    /// The batch's id.
    pub batch: &'a str,
    pub event: &'a Event,
}

/// A stored envelope read for the fold ([`Envelope::decode_ref`]): every field read and checked, the event
/// decoded, and of the header only what the fold and the column checks use, borrowed from the stored bytes
/// where they hold it verbatim. A rebuild reads a million envelopes; copying out each one's actor and batch
/// (six strings) only to drop them again was a fifth of decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeRef<'a> {
    pub seq: u64,
    pub occurred_at: Timestamp,
    /// The actor's name.
    pub actor: Cow<'a, str>,
    pub source: Source,
    /// The batch's id.
    pub batch: Cow<'a, str>,
    pub event: Event,
}

impl EnvelopeRef<'_> {
    pub fn at(&self) -> EventAt<'_> {
        EventAt {
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor: &self.actor,
            source: self.source,
            batch: &self.batch,
            event: &self.event,
        }
    }
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

    /// Reads stored bytes: the canonical layout that [`Envelope::encode`] writes by the fast reader, and
    /// anything else by [`Envelope::decode_general`], whose answer (an envelope or an error) it always is.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        // One UTF-8 check of the whole envelope rather than one per string.
        if let Some(env) = std::str::from_utf8(bytes).ok().and_then(canonical::read) {
            return Ok(env);
        }
        Envelope::decode_general(bytes)
    }

    /// Reads stored bytes as [`Envelope::decode`] does (the same checks, the same errors), keeping only
    /// what the fold uses of the header ([`EnvelopeRef`]).
    pub fn decode_ref(bytes: &[u8]) -> Result<EnvelopeRef<'_>, DecodeError> {
        let fast = std::str::from_utf8(bytes).ok().and_then(|text| canonical::read_in_place(text, false));
        if let Some((head, event)) = fast {
            return Ok(EnvelopeRef {
                seq: head.seq,
                occurred_at: head.occurred_at,
                actor: Cow::Borrowed(head.actor.name),
                source: head.actor.source,
                batch: Cow::Borrowed(head.batch_id),
                event,
            });
        }
        let env = Envelope::decode_general(bytes)?;
        Ok(EnvelopeRef {
            seq: env.seq,
            occurred_at: env.occurred_at,
            actor: Cow::Owned(env.actor.name),
            source: env.actor.source,
            batch: Cow::Owned(env.batch.id),
            event: env.event,
        })
    }

    /// What the fold reads of this envelope.
    pub fn at(&self) -> EventAt<'_> {
        EventAt {
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor: &self.actor.name,
            source: self.actor.source,
            batch: &self.batch.id,
            event: &self.event,
        }
    }

    /// Reads an envelope in any JSON layout serde reads (fields in any order, whitespace, escapes, unknown
    /// fields skipped), and names what is wrong with bytes that are not one.
    pub fn decode_general(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let wire: WireIn<'_> = serde_json::from_slice(bytes).map_err(|e| DecodeError::Envelope(e.to_string()))?;
        let event = Event::decode_payload(&wire.kind, wire.v, wire.payload.get())?;
        Ok(Envelope { seq: wire.seq, occurred_at: wire.occurred_at, actor: wire.actor, batch: wire.batch, event })
    }
}

/// One cause of every variant, for the readers' tests.
#[cfg(test)]
pub(crate) fn every_cause() -> Vec<Cause> {
    vec![
        Cause::Cli { command: "config set".into() },
        Cause::Api { method: "PUT".into(), path: "/admin/config/LOG_LEVEL".into() },
        Cause::Open { env_file: Some(".env".into()) },
        Cause::Open { env_file: None },
        Cause::Import { digest: "ab".into(), via: "cli".into() },
        Cause::Rollback { to_seq: 7, to: "seq:7".into(), via: "api".into() },
        Cause::Revert { batch: "b1".into(), via: "cli".into() },
        Cause::Clone { source_store_id: "s".into(), source_seq: 9, source_head_hash: "00".into(), via: "cli".into() },
        Cause::Scheduled { request: 3 },
        Cause::RolloutDriver { id: "r1".into(), instance: "i1".into() },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_reads_back_as_written_and_with_its_type_anywhere() {
        for cause in every_cause() {
            let text = serde_json::to_string(&cause).unwrap();
            assert!(text.starts_with("{\"type\":"), "the encoder writes the type first: {text}");
            assert_eq!(serde_json::from_str::<Cause>(&text).unwrap(), cause, "{text}");
            // `type` last, as a hand-written object may have it.
            let serde_json::Value::Object(fields) = serde_json::to_value(&cause).unwrap() else {
                panic!("a cause is an object")
            };
            let mut last: Vec<String> =
                fields.iter().filter(|(k, _)| *k != "type").map(|(k, v)| format!("{k:?}:{v}")).collect();
            last.push(format!("\"type\":{}", fields["type"]));
            let text = format!("{{{}}}", last.join(","));
            assert_eq!(serde_json::from_str::<Cause>(&text).unwrap(), cause, "{text}");
        }
    }

    #[test]
    fn a_cause_without_a_known_type_or_a_field_is_refused_by_name() {
        let unknown = serde_json::from_str::<Cause>(r#"{"type":"fax","number":"1"}"#).unwrap_err().to_string();
        assert!(unknown.starts_with("unknown variant `fax`, expected one of `cli`, `api`"), "{unknown}");
        let untyped = serde_json::from_str::<Cause>(r#"{"command":"set"}"#).unwrap_err().to_string();
        assert!(untyped.starts_with("missing field `type`"), "{untyped}");
        let missing = serde_json::from_str::<Cause>(r#"{"type":"api","method":"PUT"}"#).unwrap_err().to_string();
        assert!(missing.starts_with("missing field `path`"), "{missing}");
        assert!(serde_json::from_str::<Cause>(r#""api""#).is_err(), "a cause is an object");
    }
}
