//! Time travel over the whole store, shared by the admin API and the CLI: audit queries served by the log's
//! indexes, a key's or an entity's history, the store as of a point, the difference between two points, and
//! rollback and revert (one batch of compensating events; history is never rewritten).
//!
//! Settings and entities are both *subjects*: a setting key (`LOG_LEVEL`) or `KIND/NAME` (`tools/search`),
//! which is what the log's `key` column indexes.

use crate::error::Error;
use crate::ledger::history::parse_time;
use crate::ledger::Ledger;
use crate::present;
use crate::store::{LogQuery, SubjectMatch};
use cfgledger_events::event::StoredValue;
use cfgledger_events::rollback::{self, RollbackRequest};
use cfgledger_events::{Catalog, Envelope, Event, Record, Rejection, RejectionKind, ResourceKind, Timestamp};
use cfgledger_projections::SettingsState;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// Records fetched per index query while a filter the index cannot serve (source) thins them out.
const PAGE: usize = 256;

/// The audit trail's actions, with the event kind each comes from.
pub const ACTIONS: [(&str, &str); 12] = [
    ("store_created", "StoreCreated"),
    ("seeded", "EnvSeeded"),
    ("set", "SettingChanged"),
    ("reset", "SettingReset"),
    ("rejected", "ChangeRejected"),
    ("generated", "SecretGenerated"),
    ("user_added", "UserAdded"),
    ("user_removed", "UserRemoved"),
    ("import", "ImportApplied"),
    ("resource_created", "ResourceCreated"),
    ("resource_updated", "ResourceUpdated"),
    ("resource_deleted", "ResourceDeleted"),
];

/// An audit query as the API and the CLI take it (all text, checked here).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A subject, exact, or a prefix ending in `*` (`LOG_*`, `tools/*`).
    pub key: Option<String>,
    pub actor: Option<String>,
    /// Actions, comma-separated (`set,reset`).
    pub action: Option<String>,
    /// `cli`, `api`, `ui` or `system`.
    pub source: Option<String>,
    pub batch: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub rejected: bool,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

/// One page of an audit query, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<Value>,
    /// Where the next page starts, if there may be one.
    pub next_cursor: Option<String>,
    pub head: u64,
}

/// The cursor of the page that starts below `seq`.
fn cursor_for(seq: u64) -> String {
    format!("s{seq}")
}

fn parse_cursor(text: &str) -> Result<u64, Error> {
    text.strip_prefix('s').and_then(|n| n.parse::<u64>().ok()).filter(|n| *n >= 1).ok_or_else(|| {
        Error::input(format!("cursor {text:?} is not one this server gave (use next_cursor as it came)"))
    })
}

struct Checked {
    query: LogQuery,
    /// The key an `EnvSeeded` event must hold to count (it seeds many keys and indexes none).
    seeded_key: Option<SubjectMatch>,
    with_seeded: bool,
    source: Option<String>,
    limit: usize,
}

fn check(filter: &AuditFilter, head: u64, now: Timestamp) -> Result<Checked, Error> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::input(format!("limit expects 1 to {MAX_LIMIT}; got {limit}")));
    }
    let subject = filter.key.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(|k| match k.strip_suffix('*') {
        Some(prefix) => SubjectMatch::Prefix(prefix.to_string()),
        None => SubjectMatch::Exact(k.to_string()),
    });
    let mut kinds: Vec<String> = Vec::new();
    if let Some(actions) = &filter.action {
        for action in actions.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match ACTIONS.iter().find(|(name, _)| *name == action) {
                Some((_, kind)) => kinds.push(kind.to_string()),
                None => {
                    let known: Vec<&str> = ACTIONS.iter().map(|(n, _)| *n).collect();
                    return Err(Error::input(format!("unknown action {action:?}; actions are {}", known.join(", "))));
                }
            }
        }
    }
    if filter.rejected {
        if !kinds.is_empty() && !kinds.iter().any(|k| k == "ChangeRejected") {
            return Err(Error::input("rejected=true contradicts the action filter"));
        }
        kinds = vec!["ChangeRejected".into()];
    }
    if let Some(source) = &filter.source {
        if !["cli", "api", "ui", "system"].contains(&source.as_str()) {
            return Err(Error::input(format!("source expects cli, api, ui or system; got {source:?}")));
        }
    }
    let since = filter.since.as_deref().map(|t| parse_time(t, now)).transpose()?;
    let until = filter.until.as_deref().map(|t| parse_time(t, now)).transpose()?;
    if let (Some(a), Some(b)) = (since, until) {
        if a > b {
            return Err(Error::input(format!("since ({a}) is after until ({b})")));
        }
    }
    let before = filter.cursor.as_deref().map(parse_cursor).transpose()?.map(|c| c.min(head + 1));
    // `.env` seeding sets many keys in one event that indexes none: a key filter reads those events too.
    let with_seeded = subject.is_some() && (kinds.is_empty() || kinds.iter().any(|k| k == "EnvSeeded"));
    Ok(Checked {
        seeded_key: subject.clone(),
        with_seeded,
        query: LogQuery {
            subject,
            actor: filter.actor.clone().filter(|a| !a.is_empty()),
            kinds,
            batch: filter.batch.clone().filter(|b| !b.is_empty()),
            since,
            until,
            before,
            after: 0,
            limit: PAGE,
            ascending: false,
        },
        source: filter.source.clone(),
        limit,
    })
}

fn subject_matches(m: &SubjectMatch, key: &str) -> bool {
    match m {
        SubjectMatch::Exact(k) => k == key,
        SubjectMatch::Prefix(p) => key.starts_with(p.as_str()),
    }
}

/// The entries of one event that the filter keeps.
fn entries_of(env: &Envelope, checked: &Checked, catalog: &Catalog) -> Vec<Value> {
    if checked.source.as_deref().is_some_and(|s| s != env.actor.source.as_str()) {
        return Vec::new();
    }
    let mut entries = present::audit_entries(env, catalog);
    if let (Event::EnvSeeded(_), Some(m)) = (&env.event, &checked.seeded_key) {
        entries.retain(|e| e["key"].as_str().is_some_and(|k| subject_matches(m, k)));
    }
    entries.reverse();
    entries
}

/// One page of the audit trail, newest first, from the log's indexes.
pub fn audit(ledger: &Ledger, filter: &AuditFilter) -> Result<AuditPage, Error> {
    let head = ledger.snapshot().head.seq;
    let checked = check(filter, head, ledger.now())?;
    let store = ledger.store().as_ref();
    let catalog = ledger.catalog();
    let mut entries = Vec::new();
    let mut before = checked.query.before;
    loop {
        let mut records = store.query(&LogQuery { before, ..checked.query.clone() })?;
        let indexed_full = records.len() == PAGE;
        let mut seeded_full = false;
        if checked.with_seeded {
            let seeded = LogQuery { subject: None, kinds: vec!["EnvSeeded".into()], before, ..checked.query.clone() };
            let seeded = store.query(&seeded)?;
            seeded_full = seeded.len() == PAGE;
            // Seeded events older than the oldest indexed one fetched belong to a later round.
            let floor = if indexed_full { records.last().map_or(0, |r| r.seq) } else { 0 };
            records.extend(seeded.into_iter().filter(|r| r.seq >= floor));
            records.sort_by_key(|r| std::cmp::Reverse(r.seq));
            records.dedup_by_key(|r| r.seq);
        }
        for rec in &records {
            let env = cfgledger_events::verify_record(rec)?;
            // An event's entries stay on one page, so a page may run a few entries past the limit.
            entries.extend(entries_of(&env, &checked, catalog));
            if entries.len() >= checked.limit {
                let next = (rec.seq > 1).then(|| cursor_for(rec.seq));
                return Ok(AuditPage { entries, next_cursor: next, head });
            }
        }
        match records.last() {
            Some(last) if indexed_full || seeded_full => before = Some(last.seq),
            _ => return Ok(AuditPage { entries, next_cursor: None, head }),
        }
    }
}

/// The audit page as CSV: one line per entry, the columns an operator reads.
pub fn csv(entries: &[Value]) -> String {
    const COLUMNS: [&str; 13] = [
        "seq",
        "time",
        "action",
        "key",
        "previous",
        "value",
        "actor",
        "role",
        "source",
        "reason",
        "request_id",
        "batch",
        "cause",
    ];
    let cell = |v: &Value| -> String {
        let text = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for e in entries {
        let row: Vec<String> = COLUMNS
            .iter()
            .map(|c| match *c {
                "key" if e["key"].is_null() => e["resource"]
                    .as_object()
                    .map(|r| format!("{}/{}", r["kind"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")))
                    .unwrap_or_default(),
                "cause" => cell(&e["cause"]["type"]),
                other => cell(&e[other]),
            })
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Every value a setting key has had, or every state of an entity, newest first: when, by whom, why, and
/// which batch (import, rollback, API call, ...) produced it.
pub fn history(ledger: &Ledger, subject: &str, cursor: Option<&str>, limit: Option<usize>) -> Result<AuditPage, Error> {
    let is_entity = subject.split_once('/').is_some_and(|(k, _)| k.parse::<ResourceKind>().is_ok());
    if !is_entity && ledger.catalog().get(subject).is_none() {
        return Err(Error::Rejected(Rejection {
            kind: RejectionKind::UnknownKey,
            message: format!("unknown key {subject}"),
            audit: Vec::new(),
        }));
    }
    let filter = AuditFilter {
        key: Some(subject.to_string()),
        cursor: cursor.map(str::to_string),
        limit,
        ..AuditFilter::default()
    };
    let mut page = audit(ledger, &filter)?;
    if is_entity {
        // An entity's history shows each state it had (credentials stay sealed).
        let store = ledger.store().as_ref();
        for entry in &mut page.entries {
            let Some(seq) = entry["seq"].as_u64() else { continue };
            if let Some(rec) = store.read_after(seq - 1, 1)?.first() {
                let env = cfgledger_events::verify_record(rec)?;
                match env.event {
                    Event::ResourceCreated(e) => entry["value"] = e.fields,
                    Event::ResourceUpdated(e) => entry["value"] = e.fields,
                    _ => {}
                }
            }
        }
    }
    Ok(page)
}

/// The log's value of every key and every entity as of `seq`, for a diff.
fn subjects(state: &SettingsState) -> BTreeMap<String, Subject> {
    let mut out: BTreeMap<String, Subject> =
        state.entries().map(|(k, e)| (k.clone(), Subject::Setting(e.value.clone()))).collect();
    for kind in ResourceKind::ALL {
        for (name, e) in state.resources(kind) {
            out.insert(format!("{kind}/{name}"), Subject::Entity(e.fields.clone()));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Subject {
    Setting(StoredValue),
    Entity(Map<String, Value>),
}

fn shown(catalog: &Catalog, key: &str, s: Option<&Subject>) -> Value {
    match s {
        None => Value::Null,
        Some(Subject::Setting(v)) => present::shown_value_for(catalog, key, Some(v)),
        Some(Subject::Entity(fields)) => Value::Object(fields.clone()),
    }
}

/// What changed between the states after `from` and after `to`: added, removed and changed keys and
/// entities, with old and new values (masked when sensitive).
pub fn diff(ledger: &Ledger, from: &str, to: Option<&str>) -> Result<Value, Error> {
    let from_point = ledger.point(from)?;
    let to_point = match to {
        Some(t) => ledger.point(t)?,
        None => crate::ledger::history::Point { seq: ledger.snapshot().head.seq },
    };
    let (a, b) = (subjects(&ledger.state_at(from_point.seq)?), subjects(&ledger.state_at(to_point.seq)?));
    let catalog = ledger.catalog();
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (old, new) = (a.get(key), b.get(key));
        if old == new {
            continue;
        }
        let mut line = json!({"key": key, "old": shown(catalog, key, old), "new": shown(catalog, key, new)});
        if let (Some(Subject::Entity(o)), Some(Subject::Entity(n))) = (old, new) {
            line["changed"] = json!(entity_changes(o, n));
        }
        match (old, new) {
            (None, Some(_)) => added.push(line),
            (Some(_), None) => removed.push(line),
            _ => changed.push(line),
        }
    }
    Ok(json!({
        "from": {"seq": from_point.seq}, "to": {"seq": to_point.seq},
        "added": added, "removed": removed, "changed": changed,
    }))
}

fn entity_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let mut fields: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    fields.sort();
    fields
}

/// What the log held at the point to return to, for a rollback (restricted to `only` when given).
pub fn rollback_request(
    ledger: &Ledger,
    to_seq: u64,
    only: Option<BTreeSet<String>>,
    expected_head: Option<u64>,
) -> Result<RollbackRequest, Error> {
    let then = ledger.state_at(to_seq)?;
    let settings = then.entries().map(|(k, e)| (k.clone(), e.value.clone())).collect();
    let mut resources = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let entities: BTreeMap<String, Map<String, Value>> =
            then.resources(kind).map(|(n, e)| (n.clone(), e.fields.clone())).collect();
        if !entities.is_empty() {
            resources.insert(kind, entities);
        }
    }
    Ok(RollbackRequest { to_seq, settings, resources, only, expected_head })
}

/// A rollback's plan as JSON: each step, counts per action, the locked keys left alone, and the head the
/// plan was made at (send it back as `expected_head` to apply exactly this plan).
pub fn plan_json(ledger: &Ledger, req: &RollbackRequest) -> Result<Value, Error> {
    let snap = ledger.snapshot();
    let plan = rollback::plan(ledger.catalog(), &snap.state, req).map_err(Error::Rejected)?;
    let mut counts = Map::new();
    for action in ["set", "reset", "create", "update", "delete", "locked", "invalid"] {
        let n = plan.steps.iter().filter(|s| serde_json::to_value(s.action).ok() == Some(json!(action))).count();
        counts.insert(action.into(), json!(n));
    }
    let restart: Vec<&str> = plan.steps.iter().filter(|s| s.restart_required).map(|s| s.subject.as_str()).collect();
    Ok(json!({
        "to": {"seq": req.to_seq},
        "steps": plan.steps,
        "counts": counts,
        "restart_required": restart,
        "head": snap.head.seq,
    }))
}

/// The batch `id` as the log holds it: its records, oldest first.
pub fn batch_records(ledger: &Ledger, id: &str) -> Result<Vec<Record>, Error> {
    let q = LogQuery { batch: Some(id.to_string()), limit: usize::MAX >> 1, ascending: true, ..LogQuery::default() };
    let records = ledger.store().query(&q)?;
    if records.is_empty() {
        return Err(Error::missing(format!("no batch {id} in the log")));
    }
    Ok(records)
}

/// The subjects a batch touched: setting keys and `KIND/NAME`.
pub fn touched(records: &[Record]) -> Result<BTreeSet<String>, Error> {
    let mut out = BTreeSet::new();
    for rec in records {
        let env = cfgledger_events::verify_record(rec)?;
        match &env.event {
            Event::StoreCreated(_) => {
                return Err(Error::invalid("the batch that created the store cannot be reverted"));
            }
            Event::EnvSeeded(e) => out.extend(e.values.iter().map(|v| v.key.clone())),
            Event::ChangeRejected(_) | Event::ImportApplied(_) | Event::UserAdded(_) | Event::UserRemoved(_) => {}
            other => out.extend(other.subject()),
        }
    }
    Ok(out)
}

/// The later changes to any of `subjects` after seq `after`: what a revert would silently undo.
pub fn later_changes(ledger: &Ledger, subjects: &BTreeSet<String>, after: u64) -> Result<Vec<Value>, Error> {
    let store = ledger.store().as_ref();
    let mut out = Vec::new();
    for subject in subjects {
        let q = LogQuery {
            subject: Some(SubjectMatch::Exact(subject.clone())),
            after,
            limit: 1,
            ascending: false,
            kinds: vec![
                "SettingChanged".into(),
                "SettingReset".into(),
                "SecretGenerated".into(),
                "ResourceCreated".into(),
                "ResourceUpdated".into(),
                "ResourceDeleted".into(),
            ],
            ..LogQuery::default()
        };
        if let Some(rec) = store.query(&q)?.first() {
            out.push(json!({"key": subject, "seq": rec.seq, "batch": rec.batch_id, "actor": rec.actor}));
        }
    }
    Ok(out)
}

/// The rollback that undoes batch `id`: its subjects returned to how they were just before it. Refused
/// with a conflict naming them when a later batch changed any of those subjects, unless `force`.
pub fn revert_request(ledger: &Ledger, id: &str, force: bool) -> Result<(RollbackRequest, Value), Error> {
    let records = batch_records(ledger, id)?;
    let (first, last) = (records[0].seq, records[records.len() - 1].seq);
    let subjects = touched(&records)?;
    if subjects.is_empty() {
        return Err(Error::invalid(format!("batch {id} changed no setting or entity: there is nothing to revert")));
    }
    let later = later_changes(ledger, &subjects, last)?;
    if !later.is_empty() && !force {
        let names: Vec<String> =
            later.iter().map(|c| format!("{} (seq {})", c["key"].as_str().unwrap_or_default(), c["seq"])).collect();
        return Err(Error::Rejected(Rejection {
            kind: RejectionKind::Conflict,
            message: format!(
                "later changes touched what batch {id} changed: {}; revert with force to undo those too",
                names.join(", ")
            ),
            audit: Vec::new(),
        }));
    }
    let mut req = rollback_request(ledger, first - 1, None, None)?;
    // A subject that exists neither before the batch nor now (an entity created by the batch and deleted
    // since) has nothing to return to.
    let snap = ledger.snapshot();
    let exists = |subject: &String| match subject
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse::<ResourceKind>().ok()?, n)))
    {
        Some((kind, name)) => {
            snap.state.resource_entry(kind, name).is_some()
                || req.resources.get(&kind).is_some_and(|m| m.contains_key(name))
        }
        None => true,
    };
    req.only = Some(subjects.iter().filter(|s| exists(s)).cloned().collect());
    let mut plan = plan_json(ledger, &req)?;
    plan["revert"] = json!({"batch": id, "seqs": [first, last], "later_changes": later});
    Ok((req, plan))
}
