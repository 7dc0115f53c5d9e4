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

/// Markdown listing every key, by namespace and category: type and accepted values, default, reload mode
/// and flags, with an index of the categories at the top and an anchor per key, so that a reader finds a
/// key with the browser's search or by link (`catalog.md#mcpgateway-log_level`).
pub fn catalog_markdown(catalog: &Catalog) -> String {
    let mut out = String::from(
        "# Configuration parameters\n\n\
         Generated from the built-in catalog by `cfgledger::docs::catalog_markdown`; do not edit by hand.\n\
         Regenerate with `CFGLEDGER_BLESS=1 cargo test --test docs`.\n\n\
         Each application's settings live in their own namespace. `mcpgateway` (the default) is MCP Gateway's whole\n\
         settings class and its plugin framework's `PLUGINS_*` settings, in the gateway's own names, types, units\n\
         and value forms; it is generated from the installed gateway by `scripts/gen_gateway_catalog.py`.\n\
         `cfgledger` holds the store's own settings, set in the environment or `.env` with the `CFGLEDGER_`\n\
         prefix (`CFGLEDGER_LOG_LEVEL`); they never share a key with an application's.\n\n\
         - **reload**: `hot` keys take effect in every running instance when changed; `restart` keys are stored\n  \
         at once and reported as pending until the instance restarts.\n\
         - **locked** keys cannot be changed through the CLI, API, UI or import; they are seeded from `.env` at\n  \
         first start, corrected only by `config reseed`, and every attempt to change them is recorded.\n\
         - **sensitive** values are encrypted in the log and shown as `********`; they leave the store only in a\n  \
         render with `--include-secrets`, which is recorded.\n\
         - **environment only** keys are read from the process environment or `.env` and never stored.\n\n\
         Effective value: the store's value, else the process environment's, else the default.\n",
    );
    out.push_str("\n## Index\n\n");
    for ns in catalog.namespaces() {
        let specs: Vec<&SettingSpec> = catalog.specs().iter().filter(|s| s.namespace == ns.name).collect();
        let version = ns.version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        out.push_str(&format!("- [`{}`: {}{version}](#{}) ({} keys):", ns.name, ns.application, ns.name, specs.len()));
        for category in categories(&specs) {
            let n = specs.iter().filter(|s| s.category == category).count();
            out.push_str(&format!(" [{category}](#{}-{category}) ({n})", ns.name));
        }
        out.push('\n');
    }
    for ns in catalog.namespaces() {
        let specs: Vec<&SettingSpec> = catalog.specs().iter().filter(|s| s.namespace == ns.name).collect();
        let prefix = if ns.env_prefix.is_empty() {
            "their own names".to_string()
        } else {
            format!("the prefix `{}`", ns.env_prefix)
        };
        out.push_str(&format!(
            "\n<a id=\"{}\"></a>\n## Namespace `{}`: {}\n\nIn the environment and `.env`, these keys carry {prefix}.\n",
            ns.name, ns.name, ns.application
        ));
        for category in categories(&specs) {
            out.push_str(&format!(
                "\n<a id=\"{}-{category}\"></a>\n### {} / {category}\n\n| key | type | accepts | default | reload | flags | description |\n",
                ns.name, ns.name
            ));
            out.push_str("| --- | --- | --- | --- | --- | --- | --- |\n");
            for spec in specs.iter().filter(|s| s.category == category) {
                out.push_str(&format!(
                    "| <a id=\"{}-{}\"></a>`{}` | {} | {} | {} | {} | {} | {} |\n",
                    ns.name,
                    spec.key.to_ascii_lowercase(),
                    spec.env_name,
                    spec.ty.name(),
                    spec.ty.describe().replace('|', "\\|"),
                    default_text(spec).replace('|', "\\|"),
                    spec.reload.as_str(),
                    flags(spec),
                    spec.description.replace('|', "\\|"),
                ));
            }
        }
    }
    out
}

fn categories<'a>(specs: &[&'a SettingSpec]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for spec in specs {
        if !out.contains(&spec.category.as_str()) {
            out.push(&spec.category);
        }
    }
    out
}
