//! The resource registry's use cases, one function each, shared by the REST API and the CLI (local mode):
//! [`export::export`] (filters, dependencies, a selection, cfgledger's layout or MCP Gateway's) and
//! [`import::import`] (parse, narrow to a selection, re-key foreign credentials, plan, dry run, apply as one
//! batch, report), with [`import::statuses`] reading past imports from the log. `mcpgateway` holds MCP
//! Gateway's own credential sealing. The entity routes themselves are single commands
//! (`Command::CreateResource`, ...) sent by `api/resources.rs`; [`shown`] is how an entity is presented.

pub mod export;
pub mod import;
pub mod mcpgateway;

use crate::error::Error;
use crate::model::{AsOf, Entity, Selection};
use cfgledger_events::ResourceKind;
use cfgledger_projections::ResourceEntry;
use std::collections::{BTreeMap, BTreeSet};

/// The size of a value as compact JSON and the blake3 hash of those bytes, in one pass that keeps no text:
/// what the log line of an export or an import reports.
pub(super) struct Measure {
    pub bytes: usize,
    pub hasher: blake3::Hasher,
}

impl Measure {
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Measure {
        let mut measure = Measure { bytes: 0, hasher: blake3::Hasher::new() };
        let _ = serde_json::to_writer(&mut measure, value);
        measure
    }
}

impl std::io::Write for Measure {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The provenance fields an entity is shown with; stored fields of these names are not shown twice.
const PROVENANCE: [&str; 4] = ["created_at", "updated_at", "version", "as_of"];

/// An entity as it is shown: its stored fields (credentials sealed) and its provenance.
pub fn shown(entry: &ResourceEntry, as_of: Option<AsOf>) -> Entity {
    let mut fields = entry.fields.clone();
    for name in PROVENANCE {
        fields.remove(name);
    }
    Entity {
        fields,
        created_at: entry.created_at.to_string(),
        updated_at: entry.updated_at.to_string(),
        version: entry.version,
        as_of,
    }
}

/// A comma-separated list of kinds, as `?types=` and `--types` take it.
pub fn parse_kinds(text: &str) -> Result<BTreeSet<ResourceKind>, Error> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|e: String| Error::input(e)))
        .collect()
}

/// A comma-separated list of words (`?tags=`, `--tags`).
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// A selection with its kinds checked.
pub fn parse_selection(selection: &Selection) -> Result<BTreeMap<ResourceKind, Vec<String>>, Error> {
    selection
        .iter()
        .map(|(kind, names)| Ok((kind.parse().map_err(|e: String| Error::input(e))?, names.clone())))
        .collect()
}

/// Whether an entity carries any of `wanted` in its `tags` (every entity does when `wanted` is empty).
fn tagged(fields: &serde_json::Map<String, serde_json::Value>, wanted: &[String]) -> bool {
    wanted.is_empty()
        || fields
            .get("tags")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t.as_str().is_some_and(|t| wanted.iter().any(|w| w == t))))
}

/// Whether an entity is active (`is_active` absent or true).
fn active(fields: &serde_json::Map<String, serde_json::Value>) -> bool {
    fields.get("is_active") != Some(&serde_json::Value::Bool(false))
}

/// The entities of `kind` in `state` that a list shows: active ones unless `include_inactive`, and with one of
/// the `tags` when any are given.
pub fn list(
    state: &cfgledger_projections::SettingsState,
    kind: ResourceKind,
    tags: &[String],
    include_inactive: bool,
) -> Vec<Entity> {
    state
        .resources(kind)
        .filter(|(_, e)| include_inactive || active(&e.fields))
        .filter(|(_, e)| tagged(&e.fields, tags))
        .map(|(_, e)| shown(e, None))
        .collect()
}
