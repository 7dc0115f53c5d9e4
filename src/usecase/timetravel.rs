//! Time travel over the whole store, shared by the admin API and the CLI: audit queries served by the log's
//! indexes, a key's or an entity's history, the store as of a point, the difference between two points, and
//! rollback and revert (one batch of compensating events; history is never rewritten).
//!
//! Settings and entities are both *subjects*: a setting key (`LOG_LEVEL`) or `KIND/NAME` (`tools/search`),
//! which is what the log's `key` column indexes.

use crate::error::Error;
use crate::ledger::history::parse_time;
use crate::ledger::{Ledger, WriteContext};
use crate::model::{
    ApplyStatus, AuditEntry, BadSnapshot, Diff, DiffLine, LaterChange, PageQuery, PlanCounts, PlanStep, PointRef,
    RevertBody, RevertOf, RollbackBody, RollbackReport, VerifiedHead, VerifiedSnapshots, VerifyReport,
};
use crate::present;
use crate::store::{LogQuery, SubjectMatch};
use cfgledger_events::event::StoredValue;
use cfgledger_events::governance::Governance;
use cfgledger_events::namespace;
use cfgledger_events::rollback::{self, RollbackRequest, StepAction};
use cfgledger_events::{
    Catalog, Cause, Command, Envelope, Event, Record, Rejection, RejectionKind, ResourceKind, Timestamp,
};
use cfgledger_projections::SettingsState;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::model::{AuditFilter, AuditPage};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// Records fetched per index query while a filter the index cannot serve (source) thins them out.
const PAGE: usize = 256;

/// The audit trail's actions, with the event kind each comes from.
pub const ACTIONS: [(&str, &str); 35] = [
    ("store_created", "StoreCreated"),
    ("seeded", "EnvSeeded"),
    ("set", "SettingChanged"),
    ("reset", "SettingReset"),
    ("rejected", "ChangeRejected"),
    ("generated", "SecretGenerated"),
    ("user_added", "UserAdded"),
    ("user_removed", "UserRemoved"),
    ("password_changed", "UserPasswordChanged"),
    ("role_changed", "UserRoleChanged"),
    ("signing_key_rotated", "SigningKeyRotated"),
    ("token_revoked", "TokenRevoked"),
    ("import", "ImportApplied"),
    ("resource_created", "ResourceCreated"),
    ("resource_updated", "ResourceUpdated"),
    ("resource_deleted", "ResourceDeleted"),
    ("reseeded", "SettingReseeded"),
    ("secrets_rendered", "SecretsRendered"),
    ("request_proposed", "ChangeRequestProposed"),
    ("request_edited", "ChangeRequestEdited"),
    ("request_approved", "ChangeRequestApproved"),
    ("request_rejected", "ChangeRequestRejected"),
    ("request_withdrawn", "ChangeRequestWithdrawn"),
    ("request_suspended", "ChangeRequestSuspended"),
    ("request_applied", "ChangeRequestApplied"),
    ("policy_changed", "PolicyChanged"),
    ("emergency_bypass", "EmergencyBypassUsed"),
    ("rollout_started", "RolloutStarted"),
    ("rollout_advanced", "RolloutAdvanced"),
    ("rollout_rolled_back", "RolloutRolledBack"),
    ("rollout_completed", "RolloutCompleted"),
    ("master_key_rotated", "MasterKeyRotated"),
    ("resealed", "SecretsResealed"),
    ("master_key_retired", "MasterKeyRetired"),
    ("shredded", "SecretShredded"),
];

/// Where a page starts: below the event `seq`, or inside it after its first `skip` rows (a page ends
/// inside an event when the event has more rows than the page has room for: `.env` seeding has one per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    seq: u64,
    skip: usize,
}

impl Cursor {
    fn text(self) -> String {
        match self.skip {
            0 => format!("s{}", self.seq),
            n => format!("s{}-{n}", self.seq),
        }
    }

    fn parse(text: &str) -> Result<Cursor, Error> {
        let parsed = text.strip_prefix('s').and_then(|rest| {
            let (seq, skip) = match rest.split_once('-') {
                Some((seq, skip)) => (seq, skip.parse::<usize>().ok().filter(|n| *n >= 1)?),
                None => (rest, 0),
            };
            seq.parse::<u64>().ok().filter(|n| *n >= 1).map(|seq| Cursor { seq, skip })
        });
        parsed.ok_or_else(|| {
            Error::input(format!("cursor {text:?} is not one this server gave (use next_cursor as it came)"))
        })
    }

    /// The older `before` form of the cursor. It cannot point inside an event: it restarts at the event
    /// whose rows were cut, so those rows come again rather than go missing.
    fn before(self) -> u64 {
        if self.skip == 0 {
            self.seq
        } else {
            // A cursor is client input: `s18446744073709551615-1` must not overflow (found for the audit fuzz target).
            self.seq.saturating_add(1)
        }
    }
}

struct Checked {
    query: LogQuery,
    /// The event a page that starts inside one starts in, and how many of its rows came already.
    resume: Option<Cursor>,
    /// The key an `EnvSeeded` event must hold to count (it seeds many keys and indexes none).
    seeded_key: Option<SubjectMatch>,
    with_seeded: bool,
    /// In a store written before namespaces, the bare-key rows a namespace or prefix filter must also read
    /// (their keys are placed when read, so they are filtered afterwards by `seeded_key`).
    legacy: Option<SubjectMatch>,
    source: Option<String>,
    limit: usize,
}

fn check(filter: &AuditFilter, head: u64, now: Timestamp, legacy_store: bool) -> Result<Checked, Error> {
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::input(format!("limit expects 1 to {MAX_LIMIT}; got {limit}")));
    }
    let namespace = filter.namespace.as_deref().map(str::trim).filter(|n| !n.is_empty() && *n != "*");
    if let Some(ns) = namespace {
        if !namespace::valid_name(ns) {
            return Err(Error::input(format!("namespace {ns:?} is not a namespace name")));
        }
    }
    // A setting's subject is `namespace:KEY` (a pre-namespace log indexed the bare key too); an entity's is
    // `KIND/NAME`. A namespace without a key is the prefix of its settings.
    let subject = match filter.key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if k.contains('/') => Some(match k.strip_suffix('*') {
            Some(prefix) => SubjectMatch::Prefix(prefix.to_string()),
            None => SubjectMatch::Exact(k.to_string()),
        }),
        Some(k) => Some(match k.strip_suffix('*') {
            Some(prefix) => SubjectMatch::Prefix(namespace::qualify(namespace, prefix)),
            None => SubjectMatch::AnyOf(namespace::log_subjects(&namespace::qualify(namespace, k))),
        }),
        None => namespace.map(|ns| SubjectMatch::Prefix(format!("{ns}{}", namespace::SEP))),
    };
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
    let cursor = match (&filter.cursor, filter.before) {
        (Some(text), _) => Some(Cursor::parse(text)?),
        (None, Some(seq)) => Some(Cursor::parse(&format!("s{seq}"))?),
        (None, None) => None,
    };
    let resume = cursor.filter(|c| c.skip > 0 && c.seq <= head);
    let before = cursor.map(|c| c.before().min(head + 1));
    // A prefix or namespace filter on settings misses a pre-namespace log's bare keys: read those too.
    let legacy = match (&subject, legacy_store) {
        (Some(SubjectMatch::Prefix(p)), true) if !p.contains('/') => {
            Some(SubjectMatch::Prefix(p.split_once(namespace::SEP).map_or(p.as_str(), |(_, bare)| bare).to_string()))
        }
        _ => None,
    };
    // `.env` seeding sets many keys in one event that indexes none: a key filter reads those events too.
    let with_seeded = subject.is_some() && (kinds.is_empty() || kinds.iter().any(|k| k == "EnvSeeded"));
    Ok(Checked {
        resume,
        seeded_key: subject.clone(),
        with_seeded,
        legacy,
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
        SubjectMatch::AnyOf(keys) => keys.iter().any(|k| k == key),
    }
}

/// The entries of one event that the filter keeps.
fn entries_of(env: &Envelope, checked: &Checked, catalog: &Catalog, governance: &Governance) -> Vec<AuditEntry> {
    if checked.source.as_deref().is_some_and(|s| s != env.actor.source.as_str()) {
        return Vec::new();
    }
    let mut entries = present::audit_entries(env, catalog);
    // A change a request applied shows with its request: author and approvers.
    if let Some(request) = governance.request_of_batch(&env.batch.id) {
        for entry in entries.iter_mut().filter(|e| e.change_request.is_none()) {
            entry.change_request = Some(crate::model::AuditRequest {
                id: request.id,
                author: Some(request.author.clone()),
                approvers: request.approvals.iter().map(|a| a.by.clone()).collect(),
                conflicts: Vec::new(),
                late_secs: None,
            });
        }
    }
    let placed = matches!(env.event, Event::EnvSeeded(_)) || checked.legacy.is_some();
    if let (true, Some(m)) = (placed, &checked.seeded_key) {
        entries.retain(|e| match (&e.namespace, &e.key) {
            (Some(ns), Some(k)) => subject_matches(m, &namespace::join(ns, k)),
            _ => false,
        });
    }
    entries.reverse();
    entries
}

/// One page of the audit trail, newest first, from the log's indexes. Every record it is built from is
/// checked against its own hash, its index columns and its neighbours in the page; a page whose range of
/// seqs holds damage the integrity check found fails instead of leaving the damaged record out.
pub fn audit(ledger: &Ledger, filter: &AuditFilter) -> Result<AuditPage, Error> {
    audit_checked(ledger, filter).map_err(|e| ledger.note(e))
}

fn audit_checked(ledger: &Ledger, filter: &AuditFilter) -> Result<AuditPage, Error> {
    let snap = ledger.snapshot();
    let head = snap.head.seq;
    let legacy_store = snap.state.store.as_ref().is_some_and(|s| s.format == cfgledger_events::LEGACY_STORE_FORMAT);
    let checked = check(filter, head, ledger.now(), legacy_store)?;
    // The seqs the page covers: from where it starts down to where the next one would start (the log's
    // first event when there is none).
    let page = |entries: Vec<AuditEntry>, next: Option<Cursor>| -> Result<AuditPage, Error> {
        let high = checked.query.before.map_or(head, |b| b.saturating_sub(1));
        let low = next.map_or(checked.query.after + 1, |c| c.seq);
        ledger.integrity().check_range(low, high)?;
        Ok(page(entries, next, head))
    };
    let store = ledger.store().as_ref();
    let catalog = ledger.catalog();
    let mut entries = Vec::new();
    let mut before = checked.query.before;
    loop {
        let mut records = store.query(&LogQuery { before, ..checked.query.clone() })?;
        let indexed_full = records.len() == PAGE;
        let mut seeded_full = false;
        if let Some(bare) = &checked.legacy {
            let old = store.query(&LogQuery { subject: Some(bare.clone()), before, ..checked.query.clone() })?;
            seeded_full |= old.len() == PAGE;
            let floor = if indexed_full { records.last().map_or(0, |r| r.seq) } else { 0 };
            records.extend(old.into_iter().filter(|r| r.seq >= floor));
            records.sort_by_key(|r| std::cmp::Reverse(r.seq));
            records.dedup_by_key(|r| r.seq);
        }
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
        for (i, rec) in records.iter().enumerate() {
            check_newer_neighbour(rec, i.checked_sub(1).map(|n| &records[n]))?;
            let env = cfgledger_events::verify_record(rec)?;
            let mut rows = entries_of(&env, &checked, catalog, snap.state.governance());
            let skipped = match checked.resume {
                Some(c) if c.seq == rec.seq => c.skip.min(rows.len()),
                _ => 0,
            };
            rows.drain(..skipped);
            // The limit counts rows: an event with more rows than the page has room for is cut, and the
            // next page starts inside it.
            let room = checked.limit - entries.len();
            if rows.len() > room {
                entries.extend(rows.into_iter().take(room));
                let next = Cursor { seq: rec.seq, skip: skipped + room };
                return page(entries, Some(next));
            }
            entries.extend(rows);
            if entries.len() == checked.limit {
                let next = (rec.seq > 1).then_some(Cursor { seq: rec.seq, skip: 0 });
                return page(entries, next);
            }
        }
        match records.last() {
            Some(last) if indexed_full || seeded_full => before = Some(last.seq),
            _ => return page(entries, None),
        }
    }
}

/// A record and the one after it in a query's answer (newest first) must link when they stand next to each
/// other in the log: a record whose hash was swapped with another's verifies alone, not beside its neighbour.
fn check_newer_neighbour(older: &Record, newer: Option<&Record>) -> Result<(), Error> {
    match newer {
        Some(newer) if newer.seq == older.seq + 1 => {
            let head = cfgledger_events::Head { seq: older.seq, hash: older.hash };
            Ok(cfgledger_events::chain::check_follows(&head, newer)?)
        }
        _ => Ok(()),
    }
}

fn page(entries: Vec<AuditEntry>, next: Option<Cursor>, head: u64) -> AuditPage {
    AuditPage { entries, next_cursor: next.map(Cursor::text), next_before: next.map(Cursor::before), head }
}

/// The audit page as CSV: one line per entry, the columns an operator reads.
pub fn csv(entries: &[AuditEntry]) -> String {
    const COLUMNS: &str = "seq,time,action,key,previous,value,actor,role,source,reason,request_id,batch,cause";
    let cell = |text: String| -> String {
        // A cell a spreadsheet would run as a formula (values and reasons are anyone's input, even a refused
        // viewer's) is kept as text (OWASP's CSV injection advice).
        let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let value = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut out = format!("{COLUMNS}\n");
    for e in entries {
        let key = match (&e.key, &e.resource) {
            (Some(k), _) => k.clone(),
            (None, Some(r)) => format!("{}/{}", r.kind, r.name),
            (None, None) => String::new(),
        };
        let row = [
            e.seq.to_string(),
            e.time.clone(),
            e.action.clone(),
            key,
            value(&e.previous),
            value(&e.value),
            e.actor.clone(),
            text(&e.role),
            e.source.clone(),
            text(&e.reason),
            text(&e.request_id),
            e.batch.clone(),
            cause_type(&e.cause),
        ];
        out.push_str(&row.map(cell).join(","));
        out.push('\n');
    }
    out
}

/// The `type` of a cause as it is serialized (`cli`, `api`, `rollback`, ...).
fn cause_type(cause: &Cause) -> String {
    match serde_json::to_value(cause) {
        Ok(Value::Object(m)) => m.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Every value a setting key has had, or every state of an entity, newest first: when, by whom, why, and
/// which batch (import, rollback, API call, ...) produced it.
pub fn history(ledger: &Ledger, subject: &str, query: &PageQuery) -> Result<AuditPage, Error> {
    let is_entity = subject.split_once('/').is_some_and(|(k, _)| k.parse::<ResourceKind>().is_ok());
    let qualified = namespace::subject(subject);
    if !is_entity && ledger.catalog().get(&qualified).is_none() {
        return Err(Error::Rejected(Rejection {
            kind: RejectionKind::UnknownKey,
            message: format!("unknown key {subject}"),
            audit: Vec::new(),
        }));
    }
    let filter = AuditFilter {
        key: Some(if is_entity { subject.to_string() } else { qualified }),
        cursor: query.cursor.clone(),
        limit: query.limit,
        ..AuditFilter::default()
    };
    let mut page = audit(ledger, &filter)?;
    // The older `before` form belongs to the audit trail's query only.
    page.next_before = None;
    if is_entity {
        // An entity's history shows each state it had (credentials stay sealed).
        let store = ledger.store().as_ref();
        for entry in &mut page.entries {
            if let Some(rec) = store.read_after(entry.seq - 1, 1)?.first() {
                let env = cfgledger_events::verify_record(rec).map_err(|e| ledger.note(e.into()))?;
                match env.event {
                    Event::ResourceCreated(e) => entry.value = e.fields,
                    Event::ResourceUpdated(e) => entry.value = e.fields,
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

/// What changed between the states after `from` and after `to` (now when `None`): added, removed and
/// changed keys and entities, with old and new values (masked when sensitive).
pub fn diff(ledger: &Ledger, from: &str, to: Option<&str>, namespace: Option<&str>) -> Result<Diff, Error> {
    if let Some(ns) = namespace {
        super::settings::namespaces(ledger.catalog(), Some(ns))?;
    }
    let from_point = ledger.point(from)?;
    let to_point = match to {
        Some(t) => ledger.point(t)?,
        None => crate::ledger::history::Point { seq: ledger.snapshot().head.seq },
    };
    let (a, b) = (subjects(&ledger.state_at(from_point.seq)?), subjects(&ledger.state_at(to_point.seq)?));
    let catalog = ledger.catalog();
    let mut out = Diff {
        from: PointRef { seq: from_point.seq },
        to: PointRef { seq: to_point.seq },
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
    };
    // With a namespace, only its settings: a subject `ns:KEY` (never an entity's `KIND/NAME`).
    let wanted = |key: &str| namespace.is_none_or(|ns| !key.contains('/') && namespace::split(key).0 == ns);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).filter(|k| wanted(k)).collect();
    for key in keys {
        let (old, new) = (a.get(key), b.get(key));
        if old == new {
            continue;
        }
        let changed = match (old, new) {
            (Some(Subject::Entity(o)), Some(Subject::Entity(n))) => Some(entity_changes(o, n)),
            _ => None,
        };
        let line = DiffLine {
            key: namespace::display(key).to_string(),
            old: shown(catalog, key, old),
            new: shown(catalog, key, new),
            changed,
        };
        match (old, new) {
            (None, Some(_)) => out.added.push(line),
            (Some(_), None) => out.removed.push(line),
            _ => out.changed.push(line),
        }
    }
    Ok(out)
}

fn entity_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let fields: BTreeSet<&String> = old.keys().chain(new.keys()).filter(|k| old.get(*k) != new.get(*k)).collect();
    fields.into_iter().cloned().collect()
}

/// What the log held at the point to return to, for a rollback (restricted to `only` when given).
pub fn rollback_request(
    ledger: &Ledger,
    to_seq: u64,
    only: Option<BTreeSet<String>>,
    expected_head: Option<u64>,
) -> Result<RollbackRequest, Error> {
    let then = ledger.state_at(to_seq)?;
    let mut settings = then.entries().map(|(k, e)| (k.clone(), e.value.clone())).collect();
    let mut resources = BTreeMap::new();
    for kind in ResourceKind::ALL {
        let entities: BTreeMap<String, Map<String, Value>> =
            then.resources(kind).map(|(n, e)| (n.clone(), e.fields.clone())).collect();
        if !entities.is_empty() {
            resources.insert(kind, entities);
        }
    }
    // A value sealed then under a key the store has rotated away from returns under the current key.
    crate::usecase::keys::bring_forward(
        ledger,
        &ledger.snapshot().state,
        only.as_ref(),
        &mut settings,
        &mut resources,
    )?;
    Ok(RollbackRequest { to_seq, settings, resources, only, expected_head })
}

/// A rollback's plan: each step, counts per action, the restart-required subjects, and the head the plan
/// was made at (send it back as `expected_head` to apply exactly this plan).
pub fn plan(ledger: &Ledger, req: &RollbackRequest) -> Result<RollbackReport, Error> {
    let snap = ledger.snapshot();
    let plan = rollback::plan(ledger.catalog(), &snap.state, req).map_err(Error::Rejected)?;
    let mut counts = PlanCounts::default();
    for step in &plan.steps {
        let n = match step.action {
            StepAction::Set => &mut counts.set,
            StepAction::Reset => &mut counts.reset,
            StepAction::Create => &mut counts.create,
            StepAction::Update => &mut counts.update,
            StepAction::Delete => &mut counts.delete,
            StepAction::Locked => &mut counts.locked,
            StepAction::Invalid => &mut counts.invalid,
        };
        *n += 1;
    }
    let restart_required =
        plan.steps.iter().filter(|s| s.restart_required).map(|s| namespace::display(&s.subject).to_string()).collect();
    let steps = plan
        .steps
        .into_iter()
        .map(|s| PlanStep {
            action: s.action,
            subject: namespace::display(&s.subject).to_string(),
            current: s.current,
            value: s.value,
            changed: s.changed,
            restart_required: s.restart_required,
            message: s.message,
        })
        .collect();
    Ok(RollbackReport {
        to: PointRef { seq: req.to_seq },
        steps,
        counts,
        restart_required,
        head: snap.head.seq,
        revert: None,
        dry_run: false,
        batch: None,
        status: None,
    })
}

/// How a caller reached a rollback or a revert: what the batch's cause names as `via`, and how messages
/// name the flag that forces a revert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The CLI command (`rollback`, `revert`).
    Cli,
    /// An API request, as `METHOD PATH`.
    Api(String),
}

impl Via {
    fn name(&self, command: &str) -> String {
        match self {
            Via::Cli => command.to_string(),
            Via::Api(request) => request.clone(),
        }
    }

    fn force_flag(&self) -> &'static str {
        match self {
            Via::Cli => "revert with --force",
            Via::Api(_) => "send \"force\": true",
        }
    }
}

/// Rolls settings and entities back to a point as one batch of compensating events, or (dry run) says how.
pub fn rollback(
    ledger: &Ledger,
    body: &RollbackBody,
    via: &Via,
    mut ctx: WriteContext,
) -> Result<RollbackReport, Error> {
    let point = ledger.point(&body.to)?;
    let ns = body.namespace.as_deref();
    if let Some(ns) = ns {
        super::settings::namespaces(ledger.catalog(), Some(ns))?;
    }
    // A bare key names the given namespace's (the default one without); an entity is `KIND/NAME`.
    let named = |s: &String| if s.contains('/') { s.clone() } else { namespace::qualify(ns, s) };
    let only = body.keys.clone().map(|k| k.iter().map(named).collect::<BTreeSet<String>>());
    let mut req = rollback_request(ledger, point.seq, only, body.expected_head)?;
    if let (Some(ns), None) = (ns, &body.keys) {
        // The whole namespace: every setting of it that the point or now holds.
        let now = ledger.snapshot();
        let mut subjects: BTreeSet<String> = req.settings.keys().cloned().collect();
        subjects.extend(now.state.entries().map(|(k, _)| k.clone()));
        subjects.retain(|k| namespace::split(k).0 == ns);
        req.only = Some(subjects);
    }
    let report = plan(ledger, &req)?;
    ctx.cause = Cause::Rollback { to_seq: point.seq, to: body.to.clone(), via: via.name("rollback") };
    apply(ledger, Command::Rollback(req), report, body.dry_run, ctx)
}

/// Undoes one batch (named by its id, or an unambiguous start or end of it), or (dry run) says how.
pub fn revert(ledger: &Ledger, body: &RevertBody, via: &Via, mut ctx: WriteContext) -> Result<RollbackReport, Error> {
    let (req, report) = revert_request(ledger, &body.batch, body.force, via)?;
    let batch = report.revert.as_ref().map_or_else(|| body.batch.clone(), |r| r.batch.clone());
    ctx.cause = Cause::Revert { batch, via: via.name("revert") };
    apply(ledger, Command::Rollback(req), report, body.dry_run, ctx)
}

fn apply(
    ledger: &Ledger,
    cmd: Command,
    mut report: RollbackReport,
    dry_run: bool,
    ctx: WriteContext,
) -> Result<RollbackReport, Error> {
    report.dry_run = dry_run;
    if dry_run {
        return Ok(report);
    }
    let outcome = ledger.execute(cmd, ctx)?;
    report.status = Some(if outcome.changed() { ApplyStatus::Completed } else { ApplyStatus::NothingToDo });
    report.batch = outcome.batch_id;
    report.head = outcome.head.seq;
    Ok(report)
}

/// The whole id of the batch `id` names: the id itself, or the one batch whose id starts or ends with the
/// digits given (at least 4 hex digits), as git resolves a short commit id. A batch id begins with the time
/// it was made (a UUIDv7, so that appends keep to the right edge of the batch index), so the batches of a
/// minute share their first digits: the pages show the last 8, which are random, and those resolve too.
/// Text that is not hex is taken as a whole id.
pub fn resolve_batch(ledger: &Ledger, id: &str) -> Result<String, Error> {
    /// Records read per step of the scan for a prefix.
    const CHUNK: usize = 10_000;
    let id = id.trim();
    if id.len() >= 32 || id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(id.to_string());
    }
    if id.len() < 4 {
        return Err(Error::input(format!("batch {id:?} is too short: give at least 4 hex digits of the batch id")));
    }
    let part = id.to_ascii_lowercase();
    // The batch index serves whole ids only: a part is matched against the ids of the log's records.
    let store = ledger.store().as_ref();
    let mut found = BTreeSet::new();
    let mut after = 0;
    loop {
        let records = store.read_after(after, CHUNK)?;
        found.extend(
            records
                .iter()
                .filter(|r| r.batch_id.starts_with(&part) || r.batch_id.ends_with(&part))
                .map(|r| r.batch_id.clone()),
        );
        match records.last() {
            Some(last) if records.len() == CHUNK => after = last.seq,
            _ => break,
        }
    }
    choose_batch(id, found)
}

/// The one batch among those whose id starts or ends with `id`: none is a 404, several are refused naming
/// each.
fn choose_batch(id: &str, found: BTreeSet<String>) -> Result<String, Error> {
    let mut found = found.into_iter();
    match (found.next(), found.next()) {
        (None, _) => Err(Error::missing(format!("no batch {id} in the log"))),
        (Some(one), None) => Ok(one),
        (Some(a), Some(b)) => {
            let all: Vec<String> = [a, b].into_iter().chain(found).collect();
            Err(Error::input(format!("batch {id} is ambiguous: it matches {}; give more digits", all.join(", "))))
        }
    }
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
            Event::EnvSeeded(e) => out.extend(e.values.iter().map(|v| namespace::from_log(&v.key).into_owned())),
            Event::ChangeRejected(_)
            | Event::ImportApplied(_)
            | Event::UserAdded(_)
            | Event::UserRemoved(_)
            | Event::UserPasswordChanged(_)
            | Event::UserRoleChanged(_)
            | Event::SigningKeyRotated(_)
            | Event::TokenRevoked(_)
            | Event::SecretsRendered(_)
            // A rollout's own transitions are not reverted; a completion's merge is, by its SettingChanged.
            | Event::RolloutStarted(_)
            | Event::RolloutAdvanced(_)
            | Event::RolloutRolledBack(_)
            | Event::RolloutCompleted(_) => {}
            other => match other.key() {
                Some(key) => {
                    out.insert(namespace::from_log(key).into_owned());
                }
                None => out.extend(other.subject()),
            },
        }
    }
    Ok(out)
}

/// The later changes to any of `subjects` after seq `after`: what a revert would silently undo.
pub fn later_changes(ledger: &Ledger, subjects: &BTreeSet<String>, after: u64) -> Result<Vec<LaterChange>, Error> {
    let store = ledger.store().as_ref();
    let mut out = Vec::new();
    for subject in subjects {
        let matching = if subject.contains('/') {
            SubjectMatch::Exact(subject.clone())
        } else {
            SubjectMatch::AnyOf(namespace::log_subjects(subject))
        };
        let q = LogQuery {
            subject: Some(matching),
            after,
            limit: 1,
            ascending: false,
            kinds: vec![
                "SettingChanged".into(),
                "SettingReset".into(),
                "SecretGenerated".into(),
                "SettingReseeded".into(),
                "ResourceCreated".into(),
                "ResourceUpdated".into(),
                "ResourceDeleted".into(),
            ],
            ..LogQuery::default()
        };
        if let Some(rec) = store.query(&q)?.first() {
            out.push(LaterChange {
                key: namespace::display(subject).to_string(),
                seq: rec.seq,
                batch: rec.batch_id.clone(),
                actor: rec.actor.clone(),
            });
        }
    }
    Ok(out)
}

/// The rollback that undoes batch `id` (a whole id, or an unambiguous start or end of one): its subjects returned to how
/// they were just before it, with its plan. Refused with a conflict naming them when a later batch changed
/// any of those subjects, unless `force`; the message names the flag as `via` spells it.
pub fn revert_request(
    ledger: &Ledger,
    id: &str,
    force: bool,
    via: &Via,
) -> Result<(RollbackRequest, RollbackReport), Error> {
    let id = resolve_batch(ledger, id)?;
    let records = batch_records(ledger, &id)?;
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f.seq, l.seq),
        _ => return Err(Error::missing(format!("no batch {id} in the log"))),
    };
    let subjects = touched(&records)?;
    if subjects.is_empty() {
        return Err(Error::invalid(format!("batch {id} changed no setting or entity: there is nothing to revert")));
    }
    let later = later_changes(ledger, &subjects, last)?;
    if !later.is_empty() && !force {
        let names: Vec<String> = later.iter().map(|c| format!("{} (seq {})", c.key, c.seq)).collect();
        return Err(Error::Rejected(Rejection {
            kind: RejectionKind::Conflict,
            message: format!(
                "later changes touched what batch {id} changed: {}; {} to undo those too",
                names.join(", "),
                via.force_flag()
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
    let mut report = plan(ledger, &req)?;
    report.revert = Some(RevertOf { batch: id, seqs: [first, last], later_changes: later });
    Ok((req, report))
}

/// The chain recomputed from the stored bytes, every checkpoint compared with the replay, and the head.
pub fn verify(ledger: &Ledger) -> Result<VerifyReport, Error> {
    let report = crate::usecase::verify::verify(ledger.store().as_ref(), None).map_err(|e| ledger.note(e))?;
    let background = ledger.integrity().status();
    Ok(VerifyReport {
        background: (background.state != "off").then_some(background),
        status: if report.ok() { "ok" } else { "snapshots_bad" }.to_string(),
        head: VerifiedHead { seq: report.head.seq, hash: report.head.hash.to_hex() },
        snapshots: VerifiedSnapshots {
            ok: report.snapshots_ok.clone(),
            bad: report
                .snapshots_bad
                .iter()
                .map(|(seq, problem)| BadSnapshot { seq: *seq, problem: problem.clone() })
                .collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_an_event_or_a_row_inside_one() {
        for (text, cursor) in [("s42", Cursor { seq: 42, skip: 0 }), ("s42-3", Cursor { seq: 42, skip: 3 })] {
            assert_eq!(Cursor::parse(text).ok(), Some(cursor));
            assert_eq!(cursor.text(), text);
        }
        // The older `before` form cannot point inside an event: it starts at the event whose rows were cut.
        assert_eq!((Cursor { seq: 42, skip: 0 }.before(), Cursor { seq: 42, skip: 3 }.before()), (42, 43));
        for bad in ["42", "s0", "s", "s42-0", "s42-", "s-3", "sx"] {
            let e = Cursor::parse(bad).map(|_| ()).unwrap_err().to_string();
            assert_eq!(e, format!("cursor {bad:?} is not one this server gave (use next_cursor as it came)"));
        }
    }

    #[test]
    fn a_part_of_a_batch_id_names_one_batch_or_is_refused() {
        let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
        assert_eq!(choose_batch("ab12", ids(&["ab12ff"])).ok().as_deref(), Some("ab12ff"));
        let none = choose_batch("ab12", ids(&[])).map(|_| ()).unwrap_err();
        assert_eq!(
            (none.code(), none.to_string()),
            (crate::error::ErrorCode::NotFound, "no batch ab12 in the log".into())
        );
        let two = choose_batch("ab12", ids(&["ab12ff", "ab1200"])).map(|_| ()).unwrap_err();
        assert_eq!(
            (two.code(), two.to_string()),
            (
                crate::error::ErrorCode::BadRequest,
                "batch ab12 is ambiguous: it matches ab1200, ab12ff; give more digits".into()
            )
        );
    }
}
