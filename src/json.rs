//! Strict JSON: the one parse of JSON that people send (request bodies, import documents, catalog files),
//! which refuses an object that names a key twice. serde_json keeps the last of two equal keys without a word,
//! so `{"value": "a", "value": "b"}` would mean one thing to cfgledger and possibly another to a proxy or
//! a reviewer that kept the first. The check is a `Deserialize` visitor over serde_json's own parser, so it
//! costs no second pass and reports the line and column of the repeated key.

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses `bytes` as one JSON value, refusing a repeated key in any object at any depth.
pub fn value_from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = de.deserialize_any(StrictVisitor)?;
    de.end()?;
    Ok(value)
}

/// Parses `bytes` as a `T`, refusing a repeated key in any object at any depth.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_value(value_from_slice(bytes)?)
}

struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let shown = crate::present::terminal(&key).into_owned();
                return Err(de::Error::custom(format!("duplicate key \"{shown}\"")));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        let e = value_from_slice(br#"{"value": "a", "value": "b"}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate key \"value\" at line 1"), "{e}");
        let e = value_from_slice(br#"{"a": [{"x": 1, "y": {"k": 1, "k": 2}}]}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate key \"k\""), "{e}");
        // Keys equal after JSON's escapes are the same key.
        assert!(value_from_slice(br#"{"k": 1, "\u006b": 2}"#).is_err());
    }

    #[test]
    fn anything_else_parses_as_serde_json_does() {
        let text = br#"{"a": [1, -2, 3.5, 1e300, true, null, "s\u00e9"], "b": {"a": {}}, "c": 18446744073709551615}"#;
        assert_eq!(value_from_slice(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
        assert!(value_from_slice(b"{} trailing").is_err());
        assert!(value_from_slice(b"{").is_err());
    }
}
