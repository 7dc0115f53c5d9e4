//! A `.env` reader with line numbers: `KEY=VALUE`, optional `export `, `#` comments, single quotes
//! (literal), double quotes (with `\n`, `\"`, `\\` escapes). It is hand-written rather than dotenvy because
//! errors must name the file and line, values must never be echoed (they may be secrets), and nothing may
//! be written into the process environment.

use cfgledger_events::decide::EnvEntry;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Syntax { path: String, line: usize, message: String },
}

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<Vec<EnvEntry>, EnvFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Io { path: shown.clone(), source })?;
    parse(&shown, &text)
}

/// Parses `.env` text; `path` is only used in messages.
pub fn parse(path: &str, text: &str) -> Result<Vec<EnvEntry>, EnvFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: &str| EnvFileError::Syntax { path: path.to_string(), line, message: message.to_string() };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed.strip_prefix("export ").map(str::trim_start).unwrap_or(trimmed);
        let Some((key, rest)) = body.split_once('=') else {
            return Err(err("expected KEY=VALUE"));
        };
        let key = key.trim();
        let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(err("a key is letters, digits and underscores, not starting with a digit"));
        }
        let rest = rest.trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').ok_or_else(|| err("unterminated single quote"))?;
            trailing_ok(&quoted[end + 1..])
                .then(|| quoted[..end].to_string())
                .ok_or_else(|| err("text after the closing quote"))?
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let (value, after) = unescape(quoted).ok_or_else(|| err("unterminated double quote"))?;
            trailing_ok(after).then_some(value).ok_or_else(|| err("text after the closing quote"))?
        } else {
            // An unquoted value ends at a ` #` comment.
            let cut = rest.find(" #").map_or(rest, |i| &rest[..i]);
            cut.trim_end().to_string()
        };
        out.push(EnvEntry { key: key.to_string(), value, line });
    }
    Ok(out)
}

fn trailing_ok(after: &str) -> bool {
    let after = after.trim();
    after.is_empty() || after.starts_with('#')
}

/// Reads a double-quoted value up to its closing quote; returns it and the text after the quote.
fn unescape(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let text = "# comment\n\nLOG_LEVEL=debug\nexport MAX_WORKERS = 8 # inline\nA='x # y'\nB=\"two\\nlines\"\nC=\n";
        let got = parse(".env", text).unwrap();
        let pairs: Vec<_> = got.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.line)).collect();
        assert_eq!(
            pairs,
            vec![
                ("LOG_LEVEL", "debug", 3),
                ("MAX_WORKERS", "8", 4),
                ("A", "x # y", 5),
                ("B", "two\nlines", 6),
                ("C", "", 7)
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line_but_not_the_value() {
        let e = parse("prod.env", "A=1\nthis line has no equals sign secret123\n").unwrap_err().to_string();
        assert_eq!(e, "prod.env line 2: expected KEY=VALUE");
        let e = parse("prod.env", "A=\"unterminated secret\n").unwrap_err().to_string();
        assert_eq!(e, "prod.env line 1: unterminated double quote");
        assert!(parse("x", "1A=2").is_err());
    }
}
