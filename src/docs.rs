//! The catalog reference, generated from the catalog itself so that the documentation cannot drift from
//! the code: `docs/catalog.md` is this function's output for the built-in catalog, and a test fails when
//! the checked-in file is stale (`CFGLEDGER_BLESS=1 cargo test --test docs` rewrites it).

use cfgledger_events::catalog::{Catalog, SettingSpec};
use cfgledger_events::value::to_text;

fn default_text(spec: &SettingSpec) -> String {
    match &spec.default {
        None => "(unset)".to_string(),
        Some(_) if spec.sensitive => "(secret)".to_string(),
        Some(v) => format!("`{}`", to_text(v)),
    }
}

fn flags(spec: &SettingSpec) -> String {
    let mut out = Vec::new();
    if spec.locked {
        out.push("locked");
    }
    if spec.sensitive {
        out.push("sensitive");
    }
    if spec.bootstrap {
        out.push("environment only");
    }
    out.join(", ")
}

/// Markdown listing every key by category: type and accepted values, default, reload mode and flags.
pub fn catalog_markdown(catalog: &Catalog) -> String {
    let mut out = String::from(
        "# Configuration parameters\n\n\
         Generated from the built-in catalog by `cfgledger::docs::catalog_markdown`; do not edit by hand.\n\
         Regenerate with `CFGLEDGER_BLESS=1 cargo test --test docs`.\n\n\
         - **reload**: `hot` keys take effect in every running instance when changed; `restart` keys are stored\n  \
         at once and reported as pending until the instance restarts.\n\
         - **locked** keys cannot be changed through the CLI, API, UI or import; they are seeded from `.env` at\n  \
         first start, and every attempt to change them is recorded.\n\
         - **sensitive** values are encrypted in the log and shown as `********`.\n\
         - **environment only** keys are read from the process environment or `.env` and never stored.\n\n\
         Effective value: the store's value, else the process environment's, else the default.\n",
    );
    let mut categories: Vec<&str> = Vec::new();
    for spec in catalog.specs() {
        if !categories.contains(&spec.category.as_str()) {
            categories.push(&spec.category);
        }
    }
    for category in categories {
        out.push_str(&format!(
            "\n## {category}\n\n| key | type | accepts | default | reload | flags | description |\n"
        ));
        out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
        for spec in catalog.specs().iter().filter(|s| s.category == category) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                spec.key,
                spec.ty.name(),
                spec.ty.describe().replace('|', "\\|"),
                default_text(spec),
                spec.reload.as_str(),
                flags(spec),
                spec.description.replace('|', "\\|"),
            ));
        }
    }
    out
}
