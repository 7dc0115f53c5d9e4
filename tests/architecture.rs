//! The architecture invariants that the compiler does not check: the pure crates (`events`,
//! `projections`) depend only on the crates they are allowed to, dependencies point one way
//! (`events` <- `projections` <- `cfgledger`), their sources never reach for the file system, the network,
//! the clock, the process environment, randomness, an async runtime or a database, and only `src/store`
//! speaks SQL. The source scan skips comments and string literals, so prose such as "randomness" in a doc
//! comment is not a violation, and it is itself tested on snippets so that it cannot pass by finding
//! nothing.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(crate_dir: &str) -> toml::Table {
    let path = root().join(crate_dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// Every dependency table of a manifest with its name: `[dependencies]`, `[dev-dependencies]`,
/// `[build-dependencies]` and their `[target.'cfg(..)'.*]` forms.
fn dependency_tables(m: &toml::Table) -> Vec<(String, toml::Table)> {
    let kinds = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut out = Vec::new();
    for kind in kinds {
        if let Some(t) = m.get(kind).and_then(toml::Value::as_table) {
            out.push((kind.to_string(), t.clone()));
        }
    }
    if let Some(targets) = m.get("target").and_then(toml::Value::as_table) {
        for (cfg, t) in targets {
            for kind in kinds {
                if let Some(t) = t.get(kind).and_then(toml::Value::as_table) {
                    out.push((format!("target.{cfg}.{kind}"), t.clone()));
                }
            }
        }
    }
    out
}

/// The crate a dependency entry names: its `package` when it is renamed, else its key.
fn package_names(t: &toml::Table) -> Vec<String> {
    t.iter()
        .map(|(name, spec)| {
            spec.get("package").and_then(toml::Value::as_str).map_or_else(|| name.clone(), str::to_string)
        })
        .collect()
}

/// What is wrong with a manifest's dependencies: runtime dependencies outside `allowed`, and any
/// dependency (dev-dependencies too) on a crate in `never`, which would turn the dependency arrow around.
/// Dev-dependencies may otherwise add test tools.
fn dependency_problems(m: &toml::Table, allowed: &[&str], never: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, deps) in dependency_tables(m) {
        for name in package_names(&deps) {
            let runtime = !table.ends_with("dev-dependencies");
            if runtime && !allowed.contains(&name.as_str()) {
                problems.push(format!("[{table}] {name} is not among the allowed {allowed:?}"));
            }
            if never.contains(&name.as_str()) {
                problems.push(format!("[{table}] {name} points the dependency arrow the wrong way"));
            }
        }
    }
    problems
}

fn check_dependencies(crate_dir: &str, allowed: &[&str], never: &[&str]) {
    let problems = dependency_problems(&manifest(crate_dir), allowed, never);
    assert!(problems.is_empty(), "{crate_dir}/Cargo.toml:\n{}", problems.join("\n"));
}

#[test]
fn the_dependency_check_finds_what_it_looks_for() {
    let m: toml::Table = r#"
        [dependencies]
        serde = "1"
        tokio = "1"
        [dev-dependencies]
        proptest = "1"
        cfgledger = { path = ".." }
        [target.'cfg(unix)'.dependencies]
        dice = { package = "rand", version = "0.8" }
        [build-dependencies]
        cc = "1"
    "#
    .parse()
    .expect("TOML");
    let problems = dependency_problems(&m, &["serde"], &["cfgledger"]);
    for expected in ["tokio", "[dev-dependencies] cfgledger", "rand", "cc"] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected} not reported in {problems:?}");
    }
    assert!(!problems.iter().any(|p| p.contains("] proptest") || p.contains("] serde ")), "{problems:?}");
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[test]
fn events_depends_only_on_serde_serde_json_and_blake3() {
    check_dependencies("events", &["serde", "serde_json", "blake3"], &["cfgledger-projections", "cfgledger"]);
}

#[test]
fn projections_depends_only_on_events_and_serde() {
    check_dependencies("projections", &["cfgledger-events", "serde", "serde_json"], &["cfgledger"]);
}

#[test]
fn the_client_depends_on_events_and_never_on_the_server_or_an_async_runtime() {
    check_dependencies(
        "client",
        &[
            "cfgledger-events",
            "serde",
            "serde_json",
            "blake3",
            "ureq",
            // ureq's own TLS stack, configured for a private CA (blocking; no runtime).
            "rustls",
            "rustls-native-certs",
            "arc-swap",
            "chacha20poly1305",
            "base64",
            "rand",
            "tempfile",
            "zeroize",
            "tracing",
            "utoipa",
        ],
        &["cfgledger", "cfgledger-projections", "tokio", "axum"],
    );
}

#[test]
fn the_workspace_crates_are_the_ones_these_checks_know() {
    // A new member crate needs its own rules here before it can slip past them.
    let members: Vec<String> = manifest(".")["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|v| v.as_str().expect("a member path").to_string())
        .collect();
    assert_eq!(members, [".", "events", "projections", "client"]);
    let names: Vec<String> = ["events", "projections", "client"]
        .iter()
        .map(|d| manifest(d)["package"]["name"].as_str().expect("a name").to_string())
        .collect();
    assert_eq!(names, ["cfgledger-events", "cfgledger-projections", "cfgledger-client"]);
}

/// The source with comments and the contents of string and character literals blanked out, so that only
/// code is scanned. Line structure is kept for the messages.
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char(prev_char(&b, i)) {
            // A raw string: r"..." or r#"..."#, possibly with more hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match b.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| b.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => out.push('\n'),
                    Some(_) => {}
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                } else if b[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F980}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_char(b: &[char], i: usize) -> char {
    i.checked_sub(1).and_then(|j| b.get(j)).copied().unwrap_or(' ')
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Paths and names a pure crate must not use, with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "the file system"),
    ("std::net", "the network"),
    ("std::env", "the process environment"),
    ("std::process", "other processes"),
    ("SystemTime", "the wall clock"),
    ("Instant::now", "the monotonic clock"),
    ("tokio", "an async runtime"),
    ("rusqlite", "a database"),
    ("rand", "randomness"),
    ("getrandom", "randomness"),
];

/// Occurrences of `needle` in `code` as whole path segments, with `std :: fs` spacing folded.
fn mentions(code: &str, needle: &str) -> bool {
    let folded: String = code.split("::").map(str::trim).collect::<Vec<_>>().join("::");
    folded.match_indices(needle).any(|(at, _)| {
        let before = folded[..at].chars().next_back().unwrap_or(' ');
        let after = folded[at + needle.len()..].chars().next().unwrap_or(' ');
        !ident_char(before) && !ident_char(after)
    })
}

/// `use std::{env, fs}`-style groups: the names imported from `std` by a brace group.
fn std_groups(code: &str) -> Vec<String> {
    let folded: String = code.split_whitespace().collect::<Vec<_>>().join(" ").replace(":: {", "::{");
    let mut out = Vec::new();
    let mut rest = folded.as_str();
    while let Some(at) = rest.find("std::{") {
        let group = &rest[at + "std::{".len()..];
        let mut depth = 1;
        let end = group
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(group.len(), |(i, _)| i);
        let body = group[..end].replace(' ', "");
        out.extend(body.split([',', '{', '}']).filter(|s| !s.is_empty()).map(|s| format!("std::{s}")));
        rest = &group[end..];
    }
    out
}

/// The forbidden things `src` uses, as `what (why)`.
fn violations(src: &str) -> Vec<String> {
    let code = code_only(src);
    let mut found: Vec<String> =
        FORBIDDEN.iter().filter(|(n, _)| mentions(&code, n)).map(|(n, why)| format!("{n} ({why})")).collect();
    for import in std_groups(&code) {
        for (n, why) in FORBIDDEN.iter().filter(|(n, _)| n.starts_with("std::")) {
            if import == *n || import.starts_with(&format!("{n}::")) {
                found.push(format!("{import} ({why})"));
            }
        }
        if import.ends_with("SystemTime") {
            found.push(format!("{import} (the wall clock)"));
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn scan(crate_dir: &str) {
    let files = rust_files(&root().join(crate_dir).join("src"));
    assert!(files.len() > 1, "{crate_dir}/src has its sources");
    let mut problems = Vec::new();
    for file in files {
        let src = std::fs::read_to_string(&file).expect("a source file");
        for v in violations(&src) {
            problems.push(format!("{}: {v}", file.strip_prefix(root()).unwrap_or(&file).display()));
        }
    }
    assert!(problems.is_empty(), "{crate_dir} must stay pure:\n{}", problems.join("\n"));
}

#[test]
fn events_sources_do_no_io_and_read_no_clock() {
    scan("events");
}

#[test]
fn projections_sources_do_no_io_and_read_no_clock() {
    scan("projections");
}

#[test]
fn ui_pages_write_only_through_the_rest_api() {
    let files = rust_files(&root().join("src").join("ui"));
    assert!(files.len() > 3, "src/ui has its pages");
    let writers: Vec<String> = files
        .into_iter()
        .filter(|f| {
            let code = code_only(&std::fs::read_to_string(f).expect("a source file"));
            ["execute", "execute_async", "ExecuteRequest"].iter().any(|w| mentions(&code, w))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(writers.is_empty(), "UI code must change the store through the REST API, not the ledger: {writers:?}");
}

#[test]
fn only_the_store_module_speaks_sql() {
    let store = root().join("src").join("store");
    let outside: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .filter(|f| !f.starts_with(&store))
        .filter(|f| mentions(&code_only(&std::fs::read_to_string(f).expect("a source file")), "rusqlite"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "rusqlite used outside src/store: {outside:?}");
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    let bad = [
        ("use std::fs;", "std::fs"),
        ("let f = std :: fs :: read(p);", "std::fs"),
        ("use std::{env, fmt};", "std::env"),
        ("use std::{collections::HashMap, net::TcpStream};", "std::net"),
        ("use std::time::{Duration, SystemTime};", "SystemTime"),
        ("let t = std::time::Instant::now();", "Instant::now"),
        ("let n: u8 = rand::random();", "rand"),
        ("#[tokio::main] async fn main() {}", "tokio"),
        ("fn f(c: &rusqlite::Connection) {}", "rusqlite"),
        ("let v = ::std::env::var(\"X\");", "std::env"),
    ];
    for (src, what) in bad {
        let v = violations(src);
        assert!(v.iter().any(|x| x.starts_with(what)), "{src:?} should report {what}; got {v:?}");
    }
    let fine = [
        "//! Nothing here reads a clock or draws randomness; std::fs is for the binary.",
        "/* use std::fs; /* nested */ tokio */ fn f() {}",
        "let s = \"std::env and rand\";",
        "let s = r#\"use std::fs; \"quoted\" rand\"#;",
        "let c = '\"'; let d = std::fmt::Write;",
        "fn f<'a>(x: &'a str) -> &'a str { x } // rand",
        "let operand = brand_new(); let randomness = 1; let strand = std::fmt::Error;",
        "use std::{borrow::Cow, collections::HashMap, fmt};",
    ];
    for src in fine {
        assert_eq!(violations(src), Vec::<String>::new(), "{src:?}");
    }
}
