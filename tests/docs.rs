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
