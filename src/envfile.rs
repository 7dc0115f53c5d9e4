//! A `.env` reader in python-dotenv's syntax, which is what MCP Gateway's settings read: `KEY=VALUE` with
//! optional `export ` and spaces around `=`, `#` comments (inline after white space on unquoted values),
//! single quotes (`\'` and `\\` escaped), double quotes (`\n`, `\t`, `\r`, `\a`, `\b`, `\f`, `\v`, `\"`,
//! `\\` escapes), quoted values spanning several lines, `${NAME}` and `${NAME:-default}` expanded from
//! earlier lines in every value (as python-dotenv does, quotes of both kinds included; a name no earlier line
//! sets expands to nothing, and the default applies only to a name never set), and a bare `KEY` or `KEY=`
//! meaning unset. Unlike python-dotenv, the process environment is not consulted for `${NAME}`: the file is
//! read as it stands. After an unterminated quote the rest of the file is not read (it would be the quoted
//! value's text, perhaps a secret, taken for lines).
//!
//! It is hand-written rather than dotenvy because every refused line must be reported in one pass with its
//! file, line and key, values must never be echoed (they may be secrets), and nothing may be written into
//! the process environment.

use cfgledger_events::decide::EnvEntry;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// One line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    /// The key, when the line got far enough to name one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "line {} ({key}): {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{}", syntax_message(path, errors))]
    Syntax { path: String, errors: Vec<LineError> },
}

fn syntax_message(path: &str, errors: &[LineError]) -> String {
    let noun = if errors.len() == 1 { "line" } else { "lines" };
    let lines: Vec<String> = errors.iter().map(|e| format!("{path} {e}")).collect();
    format!("{} {noun} of {path} cannot be read; nothing was written:\n  {}", errors.len(), lines.join("\n  "))
}

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<Vec<EnvEntry>, EnvFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Io { path: shown.clone(), source })?;
    parse(&shown, &text)
}

/// Parses `.env` text; `path` is only used in messages. Every line that cannot be read is reported.
/// Entries with an empty value are kept (the caller treats them as unset).
pub fn parse(path: &str, text: &str) -> Result<Vec<EnvEntry>, EnvFileError> {
    let mut parser = Parser { rest: text, line: 1 };
    let mut out: Vec<EnvEntry> = Vec::new();
    let mut errors = Vec::new();
    let mut known: HashMap<String, String> = HashMap::new();
    while !parser.rest.is_empty() {
        let start_line = parser.line;
        match parser.entry(&known) {
            Ok(Some((key, value))) => {
                known.insert(key.clone(), value.clone());
                out.push(EnvEntry { key, value, line: start_line });
            }
            Ok(None) => {}
            Err((key, message)) => {
                let unterminated = message.starts_with("unterminated");
                errors.push(LineError { line: start_line, key, message });
                if unterminated {
                    break;
                }
                parser.skip_line();
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(EnvFileError::Syntax { path: path.to_string(), errors })
    }
}

struct Parser<'a> {
    rest: &'a str,
    line: usize,
}

type Failure = (Option<String>, String);

impl<'a> Parser<'a> {
    /// Consumes `n` bytes, counting new lines.
    fn advance(&mut self, n: usize) {
        self.line += self.rest[..n].matches('\n').count();
        self.rest = &self.rest[n..];
    }

    fn skip_line(&mut self) {
        let n = self.rest.find('\n').map_or(self.rest.len(), |i| i + 1);
        self.advance(n);
    }

    /// The current line without its end.
    fn current_line(&self) -> &'a str {
        let rest = self.rest;
        rest.split('\n').next().unwrap_or("").trim_end_matches('\r')
    }

    /// One logical entry: `Ok(None)` for a blank line, a comment, or a bare `KEY` (unset).
    fn entry(&mut self, known: &HashMap<String, String>) -> Result<Option<(String, String)>, Failure> {
        let line = self.current_line();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            self.skip_line();
            return Ok(None);
        }
        let body =
            trimmed.strip_prefix("export").filter(|b| b.starts_with([' ', '\t'])).map_or(trimmed, str::trim_start);
        let key_len = body.find(['=', ' ', '\t']).unwrap_or(body.len());
        let key = &body[..key_len];
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid {
            return Err((None, "expected KEY=VALUE, with a key of letters, digits and underscores".into()));
        }
        let after_key = body[key_len..].trim_start_matches([' ', '\t']);
        let key = key.to_string();
        let Some(after_eq) = after_key.strip_prefix('=') else {
            if after_key.is_empty() || after_key.starts_with('#') {
                // A bare key: python-dotenv reads it as unset.
                self.skip_line();
                return Ok(None);
            }
            return Err((Some(key), "expected = after the key".into()));
        };
        let value_text = after_eq.trim_start_matches([' ', '\t']);
        let quote = value_text.chars().next().filter(|c| *c == '\'' || *c == '"');
        let value = match quote {
            Some(q) => {
                // `value_text` is a slice of `self.rest`: the quoted value may run on past this line.
                let offset = self.offset_of(value_text).ok_or((Some(key.clone()), "unreadable line".to_string()))?;
                let quoted = &self.rest[offset + 1..];
                let (value, used) = unquote(quoted, q).ok_or_else(|| {
                    let kind = if q == '"' { "double" } else { "single" };
                    (Some(key.clone()), format!("unterminated {kind} quote"))
                })?;
                self.advance(offset + 1 + used);
                let tail = self.current_line();
                let tail_trim = tail.trim();
                if !(tail_trim.is_empty() || tail_trim.starts_with('#')) {
                    return Err((Some(key), "text after the closing quote".into()));
                }
                self.skip_line();
                expand(&value, known)
            }
            None => {
                // An unquoted value ends at a `#` that follows white space.
                let cut =
                    value_text.find(" #").or_else(|| value_text.find("\t#")).map_or(value_text, |i| &value_text[..i]);
                let value = expand(cut.trim_end(), known);
                self.skip_line();
                value
            }
        };
        Ok(Some((key, value)))
    }

    fn offset_of(&self, sub: &str) -> Option<usize> {
        let base = self.rest.as_ptr() as usize;
        let at = sub.as_ptr() as usize;
        (at >= base && at <= base + self.rest.len()).then(|| at - base)
    }
}

/// Reads a quoted value up to its closing quote (which may be lines later); returns it and the bytes used,
/// closing quote included.
fn unquote(s: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, i + 1));
        }
        if c == '\\' {
            let (_, next) = chars.next()?;
            match (quote, next) {
                ('"', 'n') => out.push('\n'),
                ('"', 't') => out.push('\t'),
                ('"', 'r') => out.push('\r'),
                ('"', 'a') => out.push('\u{7}'),
                ('"', 'b') => out.push('\u{8}'),
                ('"', 'f') => out.push('\u{c}'),
                ('"', 'v') => out.push('\u{b}'),
                ('"', '"') | ('"', '\\') | ('"', '\'') | ('\'', '\'') | ('\'', '\\') => out.push(next),
                (_, other) => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// Expands `${NAME}` and `${NAME:-default}` from earlier entries of the file, as python-dotenv does: a name
/// no earlier line sets is empty, the default applies only to such a name, and an unterminated `${` is text.
fn expand(value: &str, known: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match (known.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {}
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(".env", text).unwrap().into_iter().map(|e| (e.key, e.value, e.line)).collect()
    }

    #[test]
    fn parses_the_usual_forms() {
        let text = "# comment\n\nLOG_LEVEL=debug\nexport MAX_WORKERS = 8 # inline\nA='x # y'\nB=\"two\\nlines\"\nC=\n";
        let got = pairs(text);
        let want = [
            ("LOG_LEVEL", "debug", 3),
            ("MAX_WORKERS", "8", 4),
            ("A", "x # y", 5),
            ("B", "two\nlines", 6),
            ("C", "", 7),
        ];
        assert_eq!(got, want.map(|(k, v, l)| (k.to_string(), v.to_string(), l)).to_vec());
    }

    #[test]
    fn python_dotenv_forms() {
        let text = concat!(
            "ALLOWED_ORIGINS='[\"http://localhost\", \"http://localhost:4444\"]'\n",
            "CERT=\"-----BEGIN-----\nabc\n-----END-----\"\n",
            "NEXT=after # the multi-line value\n",
            "URL=postgresql+psycopg://u:p@db:5432/mcp#frag\n",
            "HOST=db\n",
            "DSN=postgres://${HOST}:5432/x\n",
            "FALLBACK=${MISSING:-dflt}\n",
            "QUOTED='${HOST}'\n",
            "BARE\n",
            "export  SPACED=1\n",
            "ESC='it\\'s'\n",
        );
        let got = pairs(text);
        let get = |k: &str| got.iter().find(|(key, ..)| key == k).map(|(_, v, l)| (v.as_str(), *l));
        assert_eq!(get("ALLOWED_ORIGINS"), Some((r#"["http://localhost", "http://localhost:4444"]"#, 1)));
        assert_eq!(get("CERT"), Some(("-----BEGIN-----\nabc\n-----END-----", 2)));
        assert_eq!(get("NEXT"), Some(("after", 5)));
        assert_eq!(get("URL"), Some(("postgresql+psycopg://u:p@db:5432/mcp#frag", 6)));
        assert_eq!(get("DSN"), Some(("postgres://db:5432/x", 8)));
        assert_eq!(get("FALLBACK"), Some(("dflt", 9)));
        assert_eq!(get("QUOTED"), Some(("db", 10)), "python-dotenv expands in single quotes too");
        assert_eq!(get("BARE"), None);
        assert_eq!(get("SPACED"), Some(("1", 12)));
        assert_eq!(get("ESC"), Some(("it's", 13)));
    }

    #[test]
    fn every_bad_line_is_reported_without_its_value() {
        let text = "A=1\nthis line has no equals sign secret123\nB=\"ok\" trailing-secret\n1BAD=x\nC=${NOPE}\nD=\"unterminated secret\nMIIEvQ abc\nZ=1\n";
        let e = parse("prod.env", text).unwrap_err();
        let EnvFileError::Syntax { errors, .. } = &e else { panic!("{e}") };
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        // Line 5 expands an unset name to nothing, as python-dotenv does; nothing after the unterminated
        // quote on line 6 is read, so the quoted value's next line (a secret's text) is never named.
        assert_eq!(lines, vec![2, 3, 4, 6]);
        let message = e.to_string();
        assert!(message.starts_with("4 lines of prod.env cannot be read; nothing was written"), "{message}");
        assert!(message.contains("prod.env line 3 (B): text after the closing quote"), "{message}");
        assert!(message.contains("prod.env line 6 (D): unterminated double quote"), "{message}");
        for secret in ["secret123", "trailing-secret", "unterminated secret", "MIIEvQ"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}
