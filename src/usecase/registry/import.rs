//! The registry's import, one use case ([`import`]) shared by `POST /import` and `cfgledger import`: read the
//! document (cfgledger's export or MCP Gateway's; a `digest` that does not match is refused), narrow it to a
//! selection, open credentials sealed by another store or by MCP Gateway so that this store seals them again
//! under its own key, plan against the current state, and unless it is a dry run apply everything (entities
//! and settings) as one batch. The report says what the plan was and, from the writer's outcome, what was
//! appended. [`statuses`] reads past imports back from the log (they survive restarts).

use super::export::digest;
use super::mcpgateway;
use crate::error::Error;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{EntityCounts, EntityPlan, ImportBody, ImportReport, ImportResult, ImportStatus, ImportStatusKind};
use cfgledger_events::registry_import::EntityAction;
use cfgledger_events::registry_import::{ConflictStrategy, RegistryImport};
use cfgledger_events::resource::{self, ResourceKind};
use cfgledger_events::{Cause, Command, ImportRequest};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// An import to make.
pub struct ImportInput {
    /// The export document, as read.
    pub document: Value,
    pub strategy: ConflictStrategy,
    /// Only these entities (all when `None`).
    pub selection: Option<BTreeMap<ResourceKind, Vec<String>>>,
    /// The secret the document's credentials were sealed under, when it is not this store's.
    pub source_secret: Option<Zeroizing<String>>,
    /// Plan only: nothing is written.
    pub dry_run: bool,
    /// How the import arrived (`POST /import`, `import`): the audit cause names it with the digest.
    pub via: String,
}

impl ImportInput {
    /// The input `POST /import`'s body describes.
    pub fn from_body(body: ImportBody, via: &str) -> Result<ImportInput, Error> {
        Ok(ImportInput {
            strategy: parse_strategy(body.conflict_strategy.as_deref().unwrap_or("update"))?,
            selection: body.selected_entities.as_ref().map(super::parse_selection).transpose()?,
            source_secret: body.source_secret.map(Zeroizing::new),
            document: body.import_data,
            dry_run: body.dry_run,
            via: via.to_string(),
        })
    }
}

/// `skip`, `update`, `rename` or `fail`.
pub fn parse_strategy(text: &str) -> Result<ConflictStrategy, Error> {
    text.parse().map_err(|e: String| Error::input(e))
}

/// A refused import, with the plan when the refusal came at apply time (a `fail` conflict), so that a client
/// can show what clashed.
#[derive(Debug)]
pub struct ImportRefusal {
    pub error: Error,
    pub plan: Option<Box<ImportReport>>,
}

impl From<Error> for ImportRefusal {
    fn from(error: Error) -> Self {
        ImportRefusal { error, plan: None }
    }
}

/// The use case. Blocking (Argon2id for foreign credentials, the writer's acknowledgement): async callers
/// run it on a blocking thread. The caller's admission checks (role, rate limit) come before.
pub fn import(ledger: &Ledger, input: ImportInput, mut ctx: WriteContext) -> Result<ImportReport, ImportRefusal> {
    let parsed = parse(
        ledger,
        &input.document,
        input.strategy,
        input.selection.as_ref(),
        input.source_secret.as_ref().map(|s| s.as_str()),
    )?;
    // The secret has done its work: drop it now, not at the end of the call.
    drop(input.source_secret);
    let mut report = plan(ledger, &parsed)?;
    report.dry_run = input.dry_run;
    if input.dry_run {
        return Ok(report);
    }
    ctx.cause = Cause::Import { digest: parsed.digest.clone(), via: input.via };
    let outcome = match ledger.execute(command(parsed), ctx) {
        Ok(outcome) => outcome,
        Err(error) => return Err(ImportRefusal { error, plan: Some(Box::new(report)) }),
    };
    report.status = Some(if outcome.changed() { ImportStatusKind::Completed } else { ImportStatusKind::NothingToDo });
    report.import_id = outcome.batch_id.clone();
    report.result = outcome.find(|event| match event {
        cfgledger_events::Event::ImportApplied(e) => Some(ImportResult {
            created: e.created.clone(),
            updated: e.updated.clone(),
            unchanged: e.unchanged,
            locked: e.locked.clone(),
        }),
        _ => None,
    });
    report.head = outcome.head.seq;
    Ok(report)
}

/// An import document, parsed: the entities (optionally narrowed to a selection), the settings, and what
/// identifies the document.
pub struct ParsedImport {
    pub digest: String,
    pub source: Option<Value>,
    pub registry: RegistryImport,
    pub settings: Option<ImportRequest>,
}

/// Reads an export document for import. A `digest` that does not match the content is refused (a damaged
/// or edited file); `selected` keeps only the named entities.
pub fn parse(
    ledger: &Ledger,
    doc: &Value,
    strategy: ConflictStrategy,
    selected: Option<&BTreeMap<ResourceKind, Vec<String>>>,
    source_secret: Option<&str>,
) -> Result<ParsedImport, Error> {
    let Some(obj) = doc.as_object() else {
        return Err(Error::invalid("the import document expects a JSON object with \"entities\""));
    };
    let empty = Value::Object(Map::new());
    let entities = obj.get("entities").unwrap_or(&empty);
    let settings = obj.get("settings").unwrap_or(&Value::Null);
    let digest = digest(entities, settings);
    if let Some(claimed) = obj.get("digest") {
        if claimed.as_str() != Some(digest.as_str()) {
            return Err(Error::invalid(format!(
                "the document's digest does not match its content (the file was changed or damaged): it says {claimed}, the content hashes to {digest:?}"
            )));
        }
    }
    let mut by_kind = cfgledger_events::registry_import::parse_entities(entities).map_err(Error::Rejected)?;
    if let Some(selection) = selected {
        for (kind, list) in by_kind.iter_mut() {
            let wanted = selection.get(kind);
            list.retain(|e| {
                let id = e.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default();
                wanted.is_some_and(|names| names.iter().any(|n| n == id))
            });
        }
    }
    if obj.get("encryption_method").and_then(Value::as_str) == Some(mcpgateway::METHOD) {
        open_gateway_credentials(&mut by_kind, source_secret)?;
    } else {
        rekey(ledger, obj.get("encryption"), &mut by_kind, source_secret)?;
    }
    let settings = match settings {
        Value::Object(settings) => {
            let mut only_settings = Map::new();
            only_settings.insert("settings".into(), Value::Object(settings.clone()));
            let mut req =
                crate::usecase::settings_transfer::parse_document(&Value::Object(only_settings), ledger, None)?;
            req.digest = digest.clone();
            Some(req)
        }
        Value::Null => None,
        _ => return Err(Error::invalid("settings expects an object")),
    };
    Ok(ParsedImport {
        digest,
        source: obj.get("source").cloned(),
        registry: RegistryImport { entities: by_kind, strategy },
        settings,
    })
}

/// Opens the credentials of an MCP Gateway export (AES-256-GCM under SHA-256 of its secret, which must be
/// given) and puts them back as credential fields for this store to seal. Fails whole, naming the entity.
fn open_gateway_credentials(
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
) -> Result<(), Error> {
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let Some(Value::String(sealed)) = entity.get("auth_value").cloned() else { continue };
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            let Some(secret) = source_secret else {
                return Err(Error::invalid(format!(
                    "{kind}/{name} carries MCP Gateway credentials (AES-256-GCM): give the gateway's secret as source_secret"
                )));
            };
            let headers = mcpgateway::open(secret, &sealed).map_err(|why| {
                Error::invalid(format!("cannot decrypt the credentials of {kind}/{name}: {why}; nothing was imported"))
            })?;
            let auth_type = entity.get("auth_type").and_then(Value::as_str).unwrap_or("headers").to_string();
            let auth_type = if matches!(auth_type.as_str(), "basic" | "bearer") { auth_type } else { "headers".into() };
            entity.remove("auth_value");
            entity.insert("auth_type".into(), Value::String(auth_type.clone()));
            entity.extend(mcpgateway::credentials(&auth_type, headers));
        }
    }
    Ok(())
}

/// Opens the credentials of entities sealed by another store (another salt, perhaps another secret) and puts
/// them back as plaintext credential fields, which the import seals again under this store's key, bound to
/// the entity. Fails whole, naming the entity and key id, if any value does not open: nothing is written.
fn rekey(
    ledger: &Ledger,
    encryption: Option<&Value>,
    entities: &mut BTreeMap<ResourceKind, Vec<Map<String, Value>>>,
    source_secret: Option<&str>,
) -> Result<(), Error> {
    let sealed_anywhere = entities.values().flatten().any(|e| e.get("auth_value").is_some_and(Value::is_string));
    if !sealed_anywhere {
        return Ok(());
    }
    let Some(info) = encryption.filter(|e| !e.is_null()) else {
        return Err(Error::invalid("the document carries sealed credentials but no \"encryption\" section saying how"));
    };
    let info: cfgledger_events::event::EncryptionInfo = serde_json::from_value(info.clone())
        .map_err(|e| Error::invalid(format!("the document's encryption section does not parse: {e}")))?;
    let own = ledger.snapshot().state.store.as_ref().map(|s| s.encryption.key_id.clone());
    if own.as_deref() == Some(info.key_id.as_str()) && source_secret.is_none() {
        return Ok(());
    }
    let foreign = ledger.foreign_box(&info, source_secret)?;
    for (kind, list) in entities.iter_mut() {
        for entity in list.iter_mut() {
            let Some(Value::String(sealed)) = entity.get("auth_value").cloned() else { continue };
            let name = entity.get(kind.id_field()).and_then(Value::as_str).unwrap_or_default().to_string();
            let opened = cfgledger_events::Sealer::open(&foreign, &resource::auth_binding(*kind, &name), &sealed)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "cannot decrypt the credentials of {kind}/{name} (sealed with key {}): nothing was imported",
                        info.key_id
                    ))
                })?;
            entity.remove("auth_value");
            entity.extend(opened);
        }
    }
    Ok(())
}

/// The plan of an import against the current state: each entity's action, the settings plan, and counts
/// per action. Refuses what the apply would refuse (invalid entities, unresolved references).
pub fn plan(ledger: &Ledger, parsed: &ParsedImport) -> Result<ImportReport, Error> {
    let snap = ledger.snapshot();
    let (plans, _) = cfgledger_events::registry_import::plan(&snap.state, ledger.secret_box(), &parsed.registry)
        .map_err(Error::Rejected)?;
    let entities: Vec<EntityPlan> = plans.into_iter().map(EntityPlan::from).collect();
    let mut counts = EntityCounts::default();
    for p in &entities {
        *match p.action {
            EntityAction::Create => &mut counts.create,
            EntityAction::Update => &mut counts.update,
            EntityAction::Unchanged => &mut counts.unchanged,
            EntityAction::Skip => &mut counts.skip,
            EntityAction::Rename => &mut counts.rename,
            EntityAction::Conflict => &mut counts.conflict,
        } += 1;
    }
    let settings = parsed.settings.as_ref().map(|req| crate::usecase::settings_transfer::plan(ledger, req));
    Ok(ImportReport {
        entities,
        counts,
        settings,
        head: snap.head.seq,
        dry_run: true,
        import_id: None,
        status: None,
        result: None,
    })
}

/// The command that applies a parsed import as one batch.
pub fn command(parsed: ParsedImport) -> Command {
    Command::ImportRegistry {
        digest: parsed.digest,
        source: parsed.source,
        registry: parsed.registry,
        settings: parsed.settings,
    }
}

/// The imports in the log, newest first (at most `limit`, only the batch `only` when given), read from their
/// `ImportApplied` records. Blocking: async callers run it on a blocking thread.
pub fn statuses(ledger: &Ledger, only: Option<&str>, limit: usize) -> Result<Vec<ImportStatus>, Error> {
    let mut found = Vec::new();
    let head = ledger.snapshot().head.seq;
    crate::store::walk_back(ledger.store().as_ref(), head + 1, 1024, |rec| -> Result<bool, Error> {
        if rec.kind != "ImportApplied" || only.is_some_and(|id| id != rec.batch_id) {
            return Ok(true);
        }
        let env = cfgledger_events::verify_record(rec)?;
        if let cfgledger_events::Event::ImportApplied(e) = env.event {
            found.push(ImportStatus {
                import_id: env.batch.id,
                status: ImportStatusKind::Completed,
                seq: env.seq,
                time: env.occurred_at.to_string(),
                actor: env.actor.name,
                source: env.actor.source.as_str().to_string(),
                digest: e.digest,
                created: e.created,
                updated: e.updated,
                unchanged: e.unchanged,
                locked: e.locked,
                reason: env.batch.reason,
            });
        }
        Ok(found.len() < limit)
    })?;
    Ok(found)
}
