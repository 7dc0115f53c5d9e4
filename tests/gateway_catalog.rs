//! The checked-in MCP Gateway settings catalog (`events/catalogs/mcpgateway.json`) is exactly what
//! `scripts/gen_gateway_catalog.py` prints for the gateway the tests install (`support::gateway::python`), so
//! the catalog cannot drift from the gateway version it claims to describe.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

const SCRIPT: &str = "scripts/gen_gateway_catalog.py";
const CATALOG: &str = "events/catalogs/mcpgateway.json";

/// At most this many `-`/`+` lines of a mismatch are shown.
const DIFF_LINES: usize = 40;

#[test]
fn checked_in_catalog_matches_the_installed_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(root.join(SCRIPT).is_file(), "{SCRIPT} is missing: the catalog generator must be checked in");
    let checked_in = std::fs::read(root.join(CATALOG)).unwrap_or_else(|e| {
        panic!("{CATALOG} cannot be read ({e}); generate it with:\n  {}", regenerate(&support::gateway::python()))
    });

    let python = support::gateway::python();
    let home = tempfile::tempdir().expect("a temporary HOME");
    // A clean environment, so that neither the developer's shell nor their home changes what the gateway's
    // settings classes report.
    let out = Command::new(&python)
        .arg(SCRIPT)
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} {SCRIPT}: {e}", python.display()));
    assert!(out.status.success(), "{SCRIPT} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));

    if out.stdout != checked_in {
        panic!(
            "{CATALOG} differs from what {SCRIPT} prints for the installed gateway (- checked in, + generated):\n\
             {}\nRegenerate it with:\n  {}",
            diff(&String::from_utf8_lossy(&checked_in), &String::from_utf8_lossy(&out.stdout)),
            regenerate(&python)
        );
    }
}

fn regenerate(python: &Path) -> String {
    format!("cd {} && {} {SCRIPT} > {CATALOG}", env!("CARGO_MANIFEST_DIR"), python.display())
}

/// A short unified-style diff: the common leading and trailing lines are cut, the differing middle is shown
/// as `-` then `+` lines, at most `DIFF_LINES` of them.
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..].iter().rev().zip(b[head..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (a_mid, b_mid) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let mut lines = vec![format!("@@ -{},{} +{},{} @@", head + 1, a_mid.len(), head + 1, b_mid.len())];
    let changed = a_mid.iter().map(|l| ('-', l)).chain(b_mid.iter().map(|l| ('+', l)));
    let total = a_mid.len() + b_mid.len();
    for (sign, line) in changed.take(DIFF_LINES) {
        let line = line.strip_suffix('\n').unwrap_or(line);
        lines.push(format!("{sign}{line}"));
    }
    if total > DIFF_LINES {
        lines.push(format!("... {} more differing lines", total - DIFF_LINES));
    }
    if a.last().is_some_and(|l| !l.ends_with('\n')) != b.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.push("(the files differ in their final newline)".to_string());
    }
    lines.join("\n")
}

#[test]
fn the_catalog_diff_shows_only_the_differing_lines() {
    let d = diff("a\nb\nc\nd\n", "a\nB\nc\nd\n");
    assert_eq!(d, "@@ -2,1 +2,1 @@\n-b\n+B");
    let long_old: String = (0..100).map(|i| format!("{i}\n")).collect();
    let d = diff(&long_old, "");
    assert_eq!(d.lines().count(), 1 + DIFF_LINES + 1, "{d}");
    assert!(d.ends_with("... 60 more differing lines"), "{d}");
}
