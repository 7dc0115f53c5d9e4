//! Loading `--catalog FILE`: TOML (`.toml`) or JSON (anything else), in the shape of
//! [`cfgledger_events::catalog::CatalogFile`], validated before any store is opened.

use crate::error::Error;
use cfgledger_events::builtin::builtin;
use cfgledger_events::catalog::{Catalog, CatalogFile};
use std::path::Path;

/// The catalog to run with: the built-in one, or the file's (replacing or extending it).
pub fn load(path: Option<&Path>) -> Result<Catalog, Error> {
    let Some(path) = path else {
        return Ok(builtin());
    };
    let shown = path.display().to_string();
    let fail = |message: String| Error::Catalog { path: shown.clone(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let file: CatalogFile = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str(&text).map_err(|e| fail(e.to_string().trim_end().to_string()))?
    } else {
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?
    };
    for spec in &file.settings {
        if spec.bootstrap && !(spec.locked && spec.sensitive) {
            return Err(fail(format!("setting {}: a bootstrap key must also be locked and sensitive", spec.key)));
        }
    }
    let catalog = Catalog::from_file(builtin(), file).map_err(|e| fail(e.to_string()))?;
    // The encryption secret is read from the environment whatever the catalog says; a catalog that made it
    // an ordinary key would have it seeded into the log in plaintext.
    if let Some(spec) = catalog.get(crate::ledger::SECRET_KEY) {
        if !(spec.bootstrap && spec.locked && spec.sensitive) {
            return Err(fail(format!(
                "setting {}: the encryption secret must stay bootstrap, locked and sensitive",
                spec.key
            )));
        }
    }
    Ok(catalog)
}
