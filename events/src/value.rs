//! Typed setting values: parsing raw input (text from the CLI or a `.env` file, JSON from the API) into the
//! canonical JSON form that the log stores, and the precise messages for input that does not fit.
//! Canonical means one spelling per value, so that "set to what it already is" is a plain equality test.

use crate::catalog::ValueType;
use serde_json::Value;
use std::fmt;

/// A value as a user supplied it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Text from the command line, a `.env` file or the process environment.
    Text(String),
    /// A JSON value from the REST API or an import file.
    Json(Value),
}

impl Input {
    fn shown(&self) -> String {
        match self {
            Input::Text(t) => format!("{t:?}"),
            Input::Json(Value::String(s)) => format!("{s:?}"),
            Input::Json(v) => v.to_string(),
        }
    }

    /// The input as text when it is text or a JSON string: the form scalar parsers read.
    fn as_text(&self) -> Option<&str> {
        match self {
            Input::Text(t) => Some(t),
            Input::Json(Value::String(s)) => Some(s),
            Input::Json(_) => None,
        }
    }
}

/// An input that does not fit its key's type or constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub key: String,
    /// What the key accepts, in words: `one of debug, info, warn, error`.
    pub expected: String,
    /// The offending input, quoted as the user gave it (never a sensitive value).
    pub got: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {} expects {}; got {}", self.key, self.expected, self.got)
    }
}

impl std::error::Error for ValueError {}

impl ValueError {
    /// The message without the value given: for values read from `.env` or the environment, which are
    /// reported by file and line (or by name) and never echoed, secret or not.
    pub fn without_value(&self) -> String {
        format!("key {} expects {}", self.key, self.expected)
    }
}

/// Parses `input` for `key` of type `ty` into its canonical JSON value. `sensitive` hides the input from
/// the error message.
pub fn parse(key: &str, ty: &ValueType, input: &Input, sensitive: bool) -> Result<Value, ValueError> {
    let fail = |expected: String| ValueError {
        key: key.to_string(),
        expected,
        got: if sensitive { "a value (hidden: sensitive key)".to_string() } else { input.shown() },
    };
    match ty {
        ValueType::String { min_len, max_len, min_entropy, reject_prefixes, reject_values } => {
            let s = input.as_text().ok_or_else(|| fail(ty.describe()))?;
            // The most telling reason first: a placeholder is refused as one, whatever its length.
            let lower = s.to_lowercase();
            if reject_prefixes.iter().any(|p| lower.starts_with(&p.to_lowercase())) {
                return Err(fail(format!("{}; this is a placeholder", ty.describe())));
            }
            if reject_values.iter().any(|v| v.to_lowercase() == lower) {
                return Err(fail(format!("{}; this is a known weak value", ty.describe())));
            }
            let n = s.chars().count();
            if min_len.is_some_and(|m| n < m) || max_len.is_some_and(|m| n > m) {
                return Err(fail(ty.describe()));
            }
            if min_entropy.is_some_and(|m| entropy(s) < m) {
                return Err(fail(format!("{}; this one has too little entropy", ty.describe())));
            }
            if is_path_key(key) && s.chars().any(crate::text::is_hidden) {
                return Err(fail(format!(
                    "{}, a file path without control characters (NUL, newline, ESC) or bidirectional ones",
                    ty.describe()
                )));
            }
            Ok(Value::String(s.to_string()))
        }
        ValueType::Int { min, max } => {
            let n = match input {
                Input::Json(Value::Number(n)) => n.as_i64(),
                other => other.as_text().and_then(|t| t.trim().parse::<i64>().ok()),
            }
            .ok_or_else(|| fail(ty.describe()))?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(fail(ty.describe()));
            }
            Ok(Value::from(n))
        }
        ValueType::Float { min, max } => {
            let x = match input {
                Input::Json(Value::Number(n)) => n.as_f64(),
                other => other.as_text().and_then(|t| t.trim().parse::<f64>().ok()),
            }
            .filter(|x| x.is_finite())
            .ok_or_else(|| fail(ty.describe()))?;
            if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
                return Err(fail(ty.describe()));
            }
            serde_json::Number::from_f64(x).map(Value::Number).ok_or_else(|| fail(ty.describe()))
        }
        ValueType::Bool => match input {
            Input::Json(Value::Bool(b)) => Ok(Value::Bool(*b)),
            other => match other.as_text().map(|t| t.trim().to_ascii_lowercase()).as_deref() {
                Some("true" | "1" | "yes" | "on") => Ok(Value::Bool(true)),
                Some("false" | "0" | "no" | "off") => Ok(Value::Bool(false)),
                _ => Err(fail(ty.describe())),
            },
        },
        ValueType::Enum { values } => {
            // Case is forgiven, as MCP Gateway's settings forgive it, and the catalog's spelling is stored;
            // anything else (a space, a newline) is not part of any choice and is refused.
            let s = input.as_text().ok_or_else(|| fail(ty.describe()))?;
            values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(s))
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| fail(ty.describe()))
        }
        ValueType::Duration { min, max } => {
            // A JSON number is a count of seconds, as a bare number in text is.
            let ms = match input {
                Input::Json(Value::Number(n)) => n.as_u64().and_then(|s| s.checked_mul(1_000)),
                other => other.as_text().and_then(parse_duration_ms),
            }
            .ok_or_else(|| fail(ty.describe()))?;
            let lo = min.as_deref().and_then(parse_duration_ms);
            let hi = max.as_deref().and_then(parse_duration_ms);
            if lo.is_some_and(|m| ms < m) || hi.is_some_and(|m| ms > m) {
                return Err(fail(ty.describe()));
            }
            Ok(Value::String(format_duration_ms(ms)))
        }
        ValueType::Url { schemes } => {
            let s = input.as_text().ok_or_else(|| fail(ty.describe()))?.trim();
            let scheme = url_scheme(s).ok_or_else(|| fail(ty.describe()))?;
            if !schemes.is_empty() && !schemes.iter().any(|x| x.eq_ignore_ascii_case(scheme)) {
                return Err(fail(ty.describe()));
            }
            Ok(Value::String(s.to_string()))
        }
        ValueType::Json => match input {
            Input::Json(v) => Ok(v.clone()),
            Input::Text(t) => serde_json::from_str(t).map_err(|_| fail(ty.describe())),
        },
        ValueType::List { values } => {
            let items: Vec<String> = match input {
                Input::Json(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| fail(ty.describe()))?,
                other => {
                    let text = other.as_text().ok_or_else(|| fail(ty.describe()))?.trim();
                    if text.starts_with('[') {
                        // The form the application parses itself: a JSON array of strings.
                        serde_json::from_str::<Vec<String>>(text).map_err(|_| fail(ty.describe()))?
                    } else {
                        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
                    }
                }
            };
            if !values.is_empty() && !items.iter().all(|i| values.contains(i)) {
                return Err(fail(ty.describe()));
            }
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
    }
}

/// Whether a key names a file or directory path by its name (`LOG_FILE`, `LOG_FOLDER`, `TEMPLATES_DIR`,
/// `JWT_PUBLIC_KEY_PATH`, `REDIS_SSL_CERTFILE`): its value is refused when it holds a control or
/// bidirectional character, which no path an operator means holds and which would break the log file or the
/// terminal of whoever reads it. The namespace, if any, is not part of the name.
pub fn is_path_key(key: &str) -> bool {
    let name = key.rsplit(':').next().unwrap_or(key).to_ascii_uppercase();
    ["_FILE", "_PATH", "_DIR", "_FOLDER", "CERTFILE", "KEYFILE"].iter().any(|suffix| name.ends_with(suffix))
}

/// A canonical value as plain text: what `.env`, the CLI's table and the process environment use. Strings
/// are themselves; everything else (numbers, booleans, lists, JSON) is its JSON text, which is how the
/// application's settings parser reads a list.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Shannon entropy in bits per character, as MCP Gateway computes it for its secrets.
pub fn entropy(text: &str) -> f64 {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let mut counts: std::collections::HashMap<char, usize> = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_default() += 1;
    }
    let n = chars.len() as f64;
    -counts.values().map(|&c| c as f64 / n).map(|p| p * p.log2()).sum::<f64>()
}

/// `scheme://authority...` with a letter-first scheme and no white space; returns the scheme.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    let ok_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let ok_rest = !rest.is_empty() && !s.chars().any(char::is_whitespace);
    // A file-like URL (sqlite:///path) has an empty authority but a path, which is still a location. A port,
    // when the authority names one, is a number (`db:5432`, `[::1]:5432`), as SQLAlchemy and redis-py read it.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let ok_port = match host_port.strip_prefix('[') {
        // `[v6]`, optionally followed by `:port`, and nothing else.
        Some(v6) => match v6.split_once(']') {
            Some((_, "")) => true,
            Some((_, after)) => after.strip_prefix(':').is_some_and(digits),
            None => false,
        },
        None => host_port.rsplit_once(':').is_none_or(|(_, p)| digits(p)),
    };
    (ok_scheme && ok_rest && ok_port).then_some(scheme)
}

const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `250ms`, `30s`, `5m`, `1h30m`, `2d`; a bare number means seconds.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.bytes().all(|c| c.is_ascii_digit()) {
        return t.parse::<u64>().ok()?.checked_mul(1_000);
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let (_, factor) = UNITS.iter().find(|(u, _)| *u == unit)?;
        total = total.checked_add(n.checked_mul(*factor)?)?;
    }
    Some(total)
}

/// The canonical spelling of a duration: largest units first, `0s` for zero.
pub fn format_duration_ms(mut ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, factor) in UNITS {
        let n = ms / factor;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms -= n * factor;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enum_ty() -> ValueType {
        ValueType::Enum { values: ["debug", "info", "warn", "error"].map(String::from).to_vec() }
    }

    #[test]
    fn enum_error_names_the_choices() {
        let e = parse("LOG_LEVEL", &enum_ty(), &Input::Text("loud".into()), false).unwrap_err();
        assert_eq!(e.to_string(), r#"key LOG_LEVEL expects one of debug, info, warn, error; got "loud""#);
        assert_eq!(parse("LOG_LEVEL", &enum_ty(), &Input::Text("INFO".into()), false).unwrap(), json!("info"));
        assert_eq!(parse("LOG_LEVEL", &enum_ty(), &Input::Json(json!("Debug")), false).unwrap(), json!("debug"));
        let e = parse("LOG_LEVEL", &enum_ty(), &Input::Json(json!("debug\n")), false).unwrap_err();
        assert_eq!(e.to_string(), r#"key LOG_LEVEL expects one of debug, info, warn, error; got "debug\n""#);
        assert!(parse("LOG_LEVEL", &enum_ty(), &Input::Text(" info".into()), false).is_err());
    }

    #[test]
    fn path_keys_refuse_control_characters() {
        let ty = ValueType::String {
            min_len: None,
            max_len: None,
            min_entropy: None,
            reject_prefixes: Vec::new(),
            reject_values: Vec::new(),
        };
        for key in ["LOG_FILE", "mcpgateway:LOG_FOLDER", "TEMPLATES_DIR", "JWT_PUBLIC_KEY_PATH", "REDIS_SSL_CERTFILE"] {
            assert!(is_path_key(key), "{key}");
            assert!(parse(key, &ty, &Input::Text("/var/log/mcp gateway.log".into()), false).is_ok());
            for bad in ["a\0b", "a\nb", "\x1b[31mred", "x\u{202e}gol.exe"] {
                let e = parse(key, &ty, &Input::Json(json!(bad)), false).unwrap_err();
                assert!(e.to_string().contains("a file path without control characters"), "{e}");
            }
        }
        for key in ["LOG_FILEMODE", "WELL_KNOWN_CUSTOM_FILES", "PLUGINS_CLIENT_MTLS_KEYFILE_PASSWORD", "MAX_PATH_DEPTH"]
        {
            assert!(!is_path_key(key), "{key}");
        }
    }

    #[test]
    fn int_range_and_type() {
        let ty = ValueType::Int { min: Some(1), max: Some(64) };
        assert_eq!(parse("W", &ty, &Input::Text(" 8 ".into()), false).unwrap(), json!(8));
        assert_eq!(parse("W", &ty, &Input::Json(json!(8)), false).unwrap(), json!(8));
        let e = parse("W", &ty, &Input::Json(json!(100)), false).unwrap_err();
        assert_eq!(e.to_string(), "key W expects an integer from 1 to 64; got 100");
        assert!(parse("W", &ty, &Input::Json(json!(1.5)), false).is_err());
        assert!(parse("W", &ty, &Input::Text("eight".into()), false).is_err());
    }

    #[test]
    fn sensitive_input_is_not_echoed() {
        let ty = ValueType::String {
            min_len: Some(32),
            max_len: None,
            min_entropy: None,
            reject_prefixes: vec![],
            reject_values: vec![],
        };
        let e = parse("JWT_SECRET_KEY", &ty, &Input::Text("hunter2".into()), true).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn secrets_follow_the_gateways_rules() {
        let ty = ValueType::String {
            min_len: Some(32),
            max_len: None,
            min_entropy: Some(3.5),
            reject_prefixes: vec!["__replace_me__".into()],
            reject_values: vec!["my-test-key-but-now-longer-than-32-bytes".into()],
        };
        let check = |v: &str| parse("JWT_SECRET_KEY", &ty, &Input::Text(v.into()), true).map_err(|e| e.to_string());
        let placeholder = check("__REPLACE_ME__run_init-secrets_before_starting").unwrap_err();
        assert!(placeholder.contains("placeholder") && !placeholder.contains("run_init"), "{placeholder}");
        assert!(check("MY-TEST-KEY-BUT-NOW-LONGER-THAN-32-BYTES").unwrap_err().contains("weak"));
        assert!(check(&"ab".repeat(20)).unwrap_err().contains("entropy"));
        assert!(check("Zq8vN3kLp0XwR7tY2mB5cF9hJ4gD6sA1eU").is_ok());
        assert!((entropy("aabb") - 1.0).abs() < 1e-9);
    }

    #[test]
    fn durations_are_canonical() {
        let ty = ValueType::Duration { min: Some("1s".into()), max: Some("1h".into()) };
        assert_eq!(parse("T", &ty, &Input::Text("90s".into()), false).unwrap(), json!("1m30s"));
        assert_eq!(parse("T", &ty, &Input::Text("300".into()), false).unwrap(), json!("5m"));
        assert_eq!(parse("T", &ty, &Input::Json(json!(600)), false).unwrap(), json!("10m"));
        assert!(parse("T", &ty, &Input::Text("2h".into()), false).is_err());
        assert!(parse("T", &ty, &Input::Text("5 minutes".into()), false).is_err());
        assert_eq!(format_duration_ms(1500), "1s500ms");
    }

    #[test]
    fn bools_lists_urls_json() {
        assert_eq!(parse("B", &ValueType::Bool, &Input::Text("on".into()), false).unwrap(), json!(true));
        assert!(parse("B", &ValueType::Bool, &Input::Text("maybe".into()), false).is_err());
        let list = ValueType::List { values: vec![] };
        assert_eq!(parse("L", &list, &Input::Text("a, b,,c".into()), false).unwrap(), json!(["a", "b", "c"]));
        let origins = r#"["http://localhost", "http://localhost:4444"]"#;
        let parsed = parse("L", &list, &Input::Text(origins.into()), false).unwrap();
        assert_eq!(parsed, json!(["http://localhost", "http://localhost:4444"]));
        assert_eq!(to_text(&parsed), r#"["http://localhost","http://localhost:4444"]"#);
        assert!(parse("L", &list, &Input::Text("[not json".into()), false).is_err());
        let url = ValueType::Url { schemes: vec!["redis".into(), "rediss".into()] };
        assert!(parse("U", &url, &Input::Text("redis://localhost:6379/0".into()), false).is_ok());
        assert!(parse("U", &url, &Input::Text("http://x".into()), false).is_err());
        assert!(parse("U", &url, &Input::Text("not a url".into()), false).is_err());
        let any = ValueType::Url { schemes: vec![] };
        for good in
            ["postgresql+psycopg://u:p@db:5432/mcp", "sqlite:///./mcp.db", "redis://[::1]:6379/0", "https://h/x"]
        {
            assert!(parse("U", &any, &Input::Text(good.into()), false).is_ok(), "{good}");
        }
        for bad in ["postgresql://u:p@db.internal:notaport/mcp", "redis://h:/0", "redis://[::1]x/0"] {
            assert!(parse("U", &any, &Input::Text(bad.into()), false).is_err(), "{bad}");
        }
        assert_eq!(parse("J", &ValueType::Json, &Input::Text("{\"a\":1}".into()), false).unwrap(), json!({"a": 1}));
        assert!(parse("J", &ValueType::Json, &Input::Text("{".into()), false).is_err());
    }
}
