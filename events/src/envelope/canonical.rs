//! The fast reader of an envelope in its canonical layout: the exact bytes [`Envelope::encode`] writes
//! (no whitespace, fields in declaration order, optional fields left out when empty, strings without
//! escapes). A rebuild reads every envelope of the log, and serde's general reader spent about 15,000
//! instructions on each (a UTF-8 check and a scan per string, an identifier match per key, the payload
//! scanned twice); this one walks the header once, byte by byte, and hands only the payload to serde.
//!
//! It never decides anything alone: it answers `None` at the first byte it does not expect (whitespace, an
//! escape, a field out of order or unknown, a `null`, a number that is not canonical or overflows, a payload
//! that does not decode), and the caller then reads the bytes with the general reader, which either accepts
//! them (the same envelope it would always have given) or names what is wrong with them. So what it
//! accepts, it reads as serde reads it: strings without escapes are their own text, canonical unsigned
//! integers their own value, the time goes through the same RFC 3339 parser, and the payload through the
//! same `Event::decode_payload`.

use super::{Actor, Batch, Cause, Envelope, Source};
use crate::event::{Event, SettingChanged, StoredValue};
use crate::time::Timestamp;
use serde_json::Value;

/// The envelope `text` holds, if it is in the canonical layout and decodes; `None` otherwise (the caller
/// then reads it with the general reader).
pub(super) fn read(text: &str) -> Option<Envelope> {
    let (head, event) = read_in_place(text, true)?;
    let Head { seq, occurred_at, actor, batch_id, cause, reason } = head;
    let actor = Actor {
        name: actor.name.to_owned(),
        role: actor.role.map(str::to_owned),
        source: actor.source,
        address: actor.address.map(str::to_owned),
        request_id: actor.request_id.map(str::to_owned),
    };
    let batch = Batch { id: batch_id.to_owned(), cause: cause?, reason: reason.map(str::to_owned) };
    Some(Envelope { seq, occurred_at, actor, batch, event })
}

/// An envelope's header as it stands in the text: its strings borrowed (they hold no escapes), its cause
/// copied out only when asked for.
pub(super) struct Head<'a> {
    pub seq: u64,
    pub occurred_at: Timestamp,
    pub actor: ActorText<'a>,
    pub batch_id: &'a str,
    pub cause: Option<Cause>,
    pub reason: Option<&'a str>,
}

pub(super) struct ActorText<'a> {
    pub name: &'a str,
    pub role: Option<&'a str>,
    pub source: Source,
    pub address: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// Reads the whole envelope: every field of the header is read and checked whether or not it is kept
/// (`keep_cause` copies the cause out), and the payload is decoded.
pub(super) fn read_in_place(text: &str, keep_cause: bool) -> Option<(Head<'_>, Event)> {
    let mut c = Cursor { text, at: 0 };
    c.lit("{\"seq\":")?;
    let seq = c.uint()?;
    c.lit(",\"occurred_at\":")?;
    let occurred_at = Timestamp::parse_rfc3339(c.string()?).ok()?;
    c.lit(",\"actor\":")?;
    let actor = actor(&mut c)?;
    c.lit(",\"batch\":{\"id\":")?;
    let batch_id = c.string()?;
    c.lit(",\"cause\":")?;
    let cause = cause(&mut c, keep_cause)?;
    let reason = c.optional(",\"reason\":")?;
    c.lit("}")?;
    c.lit(",\"kind\":")?;
    let kind = c.string()?;
    c.lit(",\"v\":")?;
    let v = u32::try_from(c.uint()?).ok()?;
    c.lit(",\"payload\":")?;
    // The payload is the rest up to the envelope's closing brace: `decode_payload` refuses anything that is
    // not exactly one JSON value there (a trailing field, say), and the general reader then takes over.
    let payload = text.get(c.at..)?.strip_suffix('}')?;
    let event = match (kind, v) {
        // Nearly every event of a long log: read here too, when canonical.
        ("SettingChanged", 2) => setting_changed(payload).map(Event::SettingChanged),
        _ => None,
    };
    let event = match event {
        Some(event) => event,
        None => Event::decode_payload(kind, v, payload).ok()?,
    };
    Some((Head { seq, occurred_at, actor, batch_id, cause, reason }, event))
}

fn actor<'a>(c: &mut Cursor<'a>) -> Option<ActorText<'a>> {
    c.lit("{\"name\":")?;
    let name = c.string()?;
    let role = c.optional(",\"role\":")?;
    c.lit(",\"source\":")?;
    let source = match c.string()? {
        "cli" => Source::Cli,
        "api" => Source::Api,
        "ui" => Source::Ui,
        "system" => Source::System,
        _ => return None,
    };
    let address = c.optional(",\"address\":")?;
    let request_id = c.optional(",\"request_id\":")?;
    c.lit("}")?;
    Some(ActorText { name, role, source, address, request_id })
}

/// A cause as the encoder writes it: `type` first, then the variant's fields in declaration order. Read
/// and checked whole either way; copied out only when `keep` (else `Some(None)`).
fn cause(c: &mut Cursor<'_>, keep: bool) -> Option<Option<Cause>> {
    c.lit("{\"type\":")?;
    let text = |c: &mut Cursor<'_>, key: &str| -> Option<String> {
        c.lit(key)?;
        let s = c.string()?;
        Some(if keep { s.to_owned() } else { String::new() })
    };
    let cause = match c.string()? {
        "cli" => Cause::Cli { command: text(c, ",\"command\":")? },
        "api" => Cause::Api { method: text(c, ",\"method\":")?, path: text(c, ",\"path\":")? },
        "open" => {
            c.lit(",\"env_file\":")?;
            // Written as `null` when absent (the field is not skipped).
            let env_file = if c.try_lit("null") {
                None
            } else {
                let s = c.string()?;
                Some(if keep { s.to_owned() } else { String::new() })
            };
            Cause::Open { env_file }
        }
        "import" => Cause::Import { digest: text(c, ",\"digest\":")?, via: text(c, ",\"via\":")? },
        "rollback" => {
            c.lit(",\"to_seq\":")?;
            let to_seq = c.uint()?;
            Cause::Rollback { to_seq, to: text(c, ",\"to\":")?, via: text(c, ",\"via\":")? }
        }
        "revert" => Cause::Revert { batch: text(c, ",\"batch\":")?, via: text(c, ",\"via\":")? },
        "clone" => {
            let source_store_id = text(c, ",\"source_store_id\":")?;
            c.lit(",\"source_seq\":")?;
            let source_seq = c.uint()?;
            Cause::Clone {
                source_store_id,
                source_seq,
                source_head_hash: text(c, ",\"source_head_hash\":")?,
                via: text(c, ",\"via\":")?,
            }
        }
        "scheduled" => {
            c.lit(",\"request\":")?;
            Cause::Scheduled { request: c.uint()? }
        }
        "rollout_driver" => Cause::RolloutDriver { id: text(c, ",\"id\":")?, instance: text(c, ",\"instance\":")? },
        _ => return None,
    };
    c.lit("}")?;
    Some(keep.then_some(cause))
}

/// A `SettingChanged` v2 payload whose values are simple (`null`, a boolean, a canonical unsigned integer,
/// a string without escapes, or sealed): `None` for any other, which `decode_payload` then reads.
fn setting_changed(payload: &str) -> Option<SettingChanged> {
    let mut c = Cursor { text: payload, at: 0 };
    c.lit("{\"key\":")?;
    let key = c.string()?.to_owned();
    c.lit(",\"value\":")?;
    let value = stored_value(&mut c)?;
    c.lit(",\"previous\":")?;
    let previous = if c.try_lit("null") { None } else { Some(stored_value(&mut c)?) };
    c.lit("}")?;
    (c.at == payload.len()).then_some(SettingChanged { key, value, previous })
}

/// `{"plain":V}` with a simple V, or `{"sealed":S}`.
fn stored_value(c: &mut Cursor<'_>) -> Option<StoredValue> {
    let value = if c.try_lit("{\"plain\":") {
        StoredValue::Plain(if c.try_lit("null") {
            Value::Null
        } else if c.try_lit("true") {
            Value::Bool(true)
        } else if c.try_lit("false") {
            Value::Bool(false)
        } else if c.text.as_bytes().get(c.at) == Some(&b'"') {
            Value::String(c.string()?.to_owned())
        } else {
            // serde_json reads a non-negative integer within u64 as one.
            Value::from(c.uint()?)
        })
    } else {
        c.lit("{\"sealed\":")?;
        StoredValue::Sealed(c.string()?.to_owned())
    };
    c.lit("}")?;
    Some(value)
}

/// A position in the envelope's text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `expected`, which must come next.
    fn lit(&mut self, expected: &str) -> Option<()> {
        self.try_lit(expected).then_some(())
    }

    /// Steps over `expected` if it comes next.
    fn try_lit(&mut self, expected: &str) -> bool {
        let next = self.text.as_bytes().get(self.at..).is_some_and(|rest| rest.starts_with(expected.as_bytes()));
        if next {
            self.at += expected.len();
        }
        next
    }

    /// A string without escapes, as its own text. A backslash, a control character (which JSON does not
    /// allow raw) or an unterminated string is left to the general reader.
    fn string(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let len = bytes.get(start..)?.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so they are character boundaries of the UTF-8 text.
        self.text.get(start..end)
    }

    /// The string field `key` (with its leading comma) if it comes next (an optional field the encoder
    /// leaves out when empty): `Some(None)` when it does not, `None` when it does but its value is not a
    /// plain string.
    fn optional(&mut self, key: &str) -> Option<Option<&'a str>> {
        if !self.try_lit(key) {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// An unsigned integer in canonical form: digits with no leading zero, no sign, fraction or exponent,
    /// within u64.
    fn uint(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let rest = bytes.get(self.at..)?;
        let digits = rest.iter().position(|b| !b.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        // A fraction or an exponent makes the number a float, which is not a seq or a version.
        if matches!(rest.get(digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut n: u64 = 0;
        for &d in &rest[..digits] {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.at += digits;
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast reader must actually take what the encoder writes (else every read silently takes the slow
    /// path); that it agrees with the general reader is a property in `tests/properties.rs`.
    #[test]
    fn every_envelope_the_encoder_writes_is_read_by_the_fast_reader() {
        let actors = [
            Actor::system(),
            Actor {
                name: "alice".into(),
                role: Some("admin".into()),
                source: Source::Api,
                address: Some("127.0.0.1".into()),
                request_id: Some("r-1".into()),
            },
        ];
        let causes = super::super::every_cause();
        for actor in &actors {
            for cause in &causes {
                for reason in [None, Some("because".to_string())] {
                    let env = Envelope {
                        seq: 18_446_744_073_709_551_615,
                        occurred_at: Timestamp(1_795_285_320_123_456),
                        actor: actor.clone(),
                        batch: Batch { id: "b".into(), cause: cause.clone(), reason },
                        event: Event::SettingChanged(SettingChanged {
                            key: "mcpgateway:LOG_LEVEL".into(),
                            value: StoredValue::Plain("debug".into()),
                            previous: None,
                        }),
                    };
                    let text = String::from_utf8(env.encode()).expect("JSON is UTF-8");
                    assert_eq!(read(&text), Some(env), "{text}");
                }
            }
        }
    }

    #[test]
    fn a_setting_change_with_a_simple_value_is_read_here_and_any_other_by_serde() {
        let simple = [
            StoredValue::Plain(Value::Null),
            StoredValue::Plain(true.into()),
            StoredValue::Plain(false.into()),
            StoredValue::Plain(0u64.into()),
            StoredValue::Plain(u64::MAX.into()),
            StoredValue::Plain("info".into()),
            StoredValue::Sealed("cfgl1:0011223344556677:abc".into()),
        ];
        for value in &simple {
            for previous in [None, Some(value.clone())] {
                let change = SettingChanged { key: "mcpgateway:LOG_LEVEL".into(), value: value.clone(), previous };
                let payload = serde_json::to_string(&change).expect("a payload serializes");
                assert_eq!(setting_changed(&payload), Some(change), "{payload}");
            }
        }
        for value in
            [Value::from(-1), Value::from(1.5), Value::from("a\"b"), serde_json::json!([1]), serde_json::json!({})]
        {
            let change = SettingChanged { key: "K".into(), value: StoredValue::Plain(value), previous: None };
            let payload = serde_json::to_string(&change).expect("a payload serializes");
            assert_eq!(setting_changed(&payload), None, "{payload}");
        }
    }

    #[test]
    fn what_is_not_canonical_is_left_to_the_general_reader() {
        let env = Envelope {
            seq: 1,
            occurred_at: Timestamp(0),
            actor: Actor::system(),
            batch: Batch { id: "b".into(), cause: Cause::Cli { command: "x".into() }, reason: None },
            event: Event::SettingChanged(SettingChanged {
                key: "K".into(),
                value: StoredValue::Plain(1.into()),
                previous: None,
            }),
        };
        let text = String::from_utf8(env.encode()).expect("JSON is UTF-8");
        assert!(read(&text).is_some());
        for (from, to) in [
            ("{\"seq\":1", "{ \"seq\":1"),
            ("{\"seq\":1", "{\"seq\":01"),
            ("{\"seq\":1", "{\"seq\":1.0"),
            ("{\"seq\":1", "{\"seq\":1e0"),
            ("{\"seq\":1", "{\"seq\":-1"),
            ("{\"seq\":1", "{\"seq\":18446744073709551616"),
            ("\"name\":\"cfgledger\"", "\"name\":\"cfg\\u006cedger\""),
            ("\"name\":\"cfgledger\"", "\"name\":\"cfgledger\",\"role\":null"),
            ("\"source\":\"system\"", "\"source\":\"System\""),
            ("\"v\":2", "\"v\":4294967296"),
        ] {
            let altered = text.replacen(from, to, 1);
            assert_ne!(altered, text, "{from} is in {text}");
            assert_eq!(read(&altered), None, "{altered}");
        }
        // A field after the payload: the payload is then not one value up to the closing brace.
        let trailing = format!("{},\"extra\":1}}", &text[..text.len() - 1]);
        assert_eq!(read(&trailing), None, "{trailing}");
        assert_eq!(Envelope::decode(trailing.as_bytes()), Ok(env), "the general reader skips an unknown field");
    }
}
