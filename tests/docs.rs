//! `docs/catalog.md` must be exactly what the built-in catalog generates: a key added, removed or changed
//! without regenerating the page fails here. `CFGLEDGER_BLESS=1` rewrites the page instead.

use cfgledger::docs::catalog_markdown;
use cfgledger_events::builtin::builtin;

#[test]
fn the_catalog_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/catalog.md");
    let generated = catalog_markdown(&builtin());
    if std::env::var_os("CFGLEDGER_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/catalog.md");
    }
    let on_disk = std::fs::read_to_string(&path).expect("docs/catalog.md exists");
    assert!(
        on_disk == generated,
        "docs/catalog.md is stale: run `CFGLEDGER_BLESS=1 cargo test --test docs` and commit the result"
    );
    // Every key has its row, under its environment name, with an anchor per namespace and key.
    for spec in builtin().specs() {
        let row = format!("<a id=\"{}-{}\"></a>`{}` |", spec.namespace, spec.key.to_ascii_lowercase(), spec.env_name);
        assert!(on_disk.contains(&row), "{} is missing", spec.id);
    }
    assert!(on_disk.contains("## Namespace `mcpgateway`: MCP Gateway") && on_disk.contains("## Namespace `cfgledger`"));
}

/// A merge left half-done must not land: no file git tracks may hold a conflict marker at the start of a line.
#[test]
fn no_tracked_file_holds_a_merge_conflict_marker() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files runs");
    assert!(listed.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    let mut checked = 0;
    let mut found = Vec::new();
    for name in listed.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(text) = std::fs::read_to_string(root.join(&name)) else { continue };
        checked += 1;
        for (number, line) in text.lines().enumerate() {
            let marker = line.starts_with("<<<<<<< ") || line.starts_with(">>>>>>> ") || line == "=======";
            if marker {
                found.push(format!("{name}:{}: {line}", number + 1));
            }
        }
    }
    assert!(checked > 100, "only {checked} tracked text files were read");
    assert!(found.is_empty(), "merge conflict markers:\n{}", found.join("\n"));
}
