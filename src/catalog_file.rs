//! Loading `--catalog FILE` (repeatable): TOML (`.toml`) or JSON (anything else), in the shape of
//! [`cfgledger_events::catalog::CatalogFile`], validated before any store is opened. Each file replaces or
//! extends the default namespace (no `namespace`), or adds another application's namespace.

use crate::error::Error;
use cfgledger_events::builtin::builtin;
use cfgledger_events::catalog::{Catalog, CatalogFile};
use std::path::{Path, PathBuf};

/// The catalog to run with: the built-in one with each file applied in order.
pub fn load(paths: &[PathBuf]) -> Result<Catalog, Error> {
    let mut catalog = builtin();
    for path in paths {
        catalog = apply(catalog, path)?;
    }
    Ok(catalog)
}

fn apply(catalog: Catalog, path: &Path) -> Result<Catalog, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Catalog { path: shown.clone(), message: format!("cannot read: {e}") })?;
    let toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    apply_text(&catalog, &shown, &text, toml)
}

/// Applies one catalog file's text (TOML when `toml`, else JSON) to `catalog`; `shown` names the file in
/// errors. The whole of [`load`] but the reading, so the fuzz target `catalog_file` reaches it.
pub fn apply_text(catalog: &Catalog, shown: &str, text: &str, toml: bool) -> Result<Catalog, Error> {
    let fail = |message: String| Error::Catalog { path: shown.to_string(), message };
    let file: CatalogFile = if toml {
        toml::from_str(text).map_err(|e| fail(e.to_string().trim_end().to_string()))?
    } else {
        crate::json::from_slice(text.as_bytes()).map_err(|e| fail(e.to_string()))?
    };
    for spec in &file.settings {
        // The store's own encryption secret is cfgledger's and fixed; an application's keys are all stored,
        // so none of them may claim to be read from the environment only.
        if spec.bootstrap {
            return Err(fail(format!(
                "setting {}: bootstrap keys are cfgledger's own; an application's settings are stored",
                spec.key
            )));
        }
    }
    catalog.with_file(file).map_err(|e| fail(e.to_string()))
}
