//! The SQL the two database adapters share: the event row codec (a record to its columns and back), and
//! the builders of the log's reads (the audit query with its nine filters, the skip scan that lists the
//! subjects under a prefix, the read after a seq). A [`Dialect`] says where SQLite and PostgreSQL differ:
//! placeholders (`?N` or `$N`) and the name of the integer type in messages. Both compare the log's text
//! columns bytewise (SQLite's default `BINARY` collation; PostgreSQL's columns are `COLLATE "C"`, migration V5),
//! so a prefix is a range of the `key` index in both.

use super::{LogQuery, StoreError, SubjectMatch, PREFIX_SPLIT};
use cfgledger_events::{Hash, Record, Timestamp};

/// The columns of an event row, in the order the codec reads and writes them.
pub(crate) const RECORD_COLUMNS: &str = "seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash";

/// The last row of the log.
pub(crate) const HEAD: &str = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";

/// Where the SQL of the two adapters differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) parameter.
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// A seq as the database's 64-bit signed integer.
    pub(crate) fn seq_param(self, v: u64) -> Result<i64, StoreError> {
        let integer = match self {
            Dialect::Sqlite => "SQLite's integer",
            Dialect::Postgres => "a bigint",
        };
        i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("seq {v} does not fit {integer}")))
    }
}

/// A seq column's value.
pub(crate) fn to_seq(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative seq {v}")))
}

/// A hash column's value, in the row at `seq`.
pub(crate) fn to_hash(seq: i64, bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(format!("seq {seq}: a hash is not 32 bytes")))
}

/// One event row as the database holds it: [`RECORD_COLUMNS`], in order.
pub(crate) struct EventRow {
    pub seq: i64,
    pub occurred_at: i64,
    pub kind: String,
    pub actor: String,
    pub batch_id: String,
    pub key: Option<String>,
    pub envelope: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl EventRow {
    /// The columns of `r`, borrowed, for an insert.
    pub(crate) fn columns(d: Dialect, r: &Record) -> Result<EventColumns<'_>, StoreError> {
        Ok(EventColumns {
            seq: d.seq_param(r.seq)?,
            occurred_at: r.occurred_at.as_micros(),
            kind: &r.kind,
            actor: &r.actor,
            batch_id: &r.batch_id,
            key: r.key.as_deref(),
            envelope: &r.envelope,
            prev_hash: &r.prev_hash.0,
            hash: &r.hash.0,
        })
    }

    /// The record the row holds; a malformed row (a negative seq, a hash that is not 32 bytes) is corrupt.
    pub(crate) fn into_record(self) -> Result<Record, StoreError> {
        Ok(Record {
            seq: to_seq(self.seq)?,
            occurred_at: Timestamp::from_micros(self.occurred_at),
            kind: self.kind,
            actor: self.actor,
            batch_id: self.batch_id,
            key: self.key,
            envelope: self.envelope,
            prev_hash: to_hash(self.seq, &self.prev_hash)?,
            hash: to_hash(self.seq, &self.hash)?,
        })
    }
}

/// A record's columns, in [`RECORD_COLUMNS`] order, as an insert binds them.
pub(crate) struct EventColumns<'a> {
    pub seq: i64,
    pub occurred_at: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub batch_id: &'a str,
    pub key: Option<&'a str>,
    pub envelope: &'a [u8],
    pub prev_hash: &'a [u8],
    pub hash: &'a [u8],
}

/// The head a [`HEAD`] row names, or the empty log's when there is none.
pub(crate) fn head_row(row: Option<(i64, Vec<u8>)>) -> Result<cfgledger_events::Head, StoreError> {
    match row {
        None => Ok(cfgledger_events::Head::EMPTY),
        Some((seq, hash)) => Ok(cfgledger_events::Head { seq: to_seq(seq)?, hash: to_hash(seq, &hash)? }),
    }
}

/// The columns of a checkpoint row, in order.
pub(crate) const SNAPSHOT_COLUMNS: &str = "seq, head_hash, digest, state, created_at";

/// One `snapshots` row as the database holds it: [`SNAPSHOT_COLUMNS`], in order.
pub(crate) struct SnapshotRow {
    pub seq: i64,
    pub head_hash: Vec<u8>,
    pub digest: Vec<u8>,
    pub state: Vec<u8>,
    pub created_at: i64,
}

impl SnapshotRow {
    pub(crate) fn into_snapshot(self) -> Result<super::StoredSnapshot, StoreError> {
        Ok(super::StoredSnapshot {
            seq: to_seq(self.seq)?,
            // A malformed hash makes a checkpoint that fails its checks (skipped and reported, droppable with
            // `verify --drop-bad-snapshots`), not a store that cannot open: checkpoints are only a cache.
            head_hash: to_hash(self.seq, &self.head_hash).unwrap_or(cfgledger_events::Hash::ZERO),
            digest: to_hash(self.seq, &self.digest).unwrap_or(cfgledger_events::Hash::ZERO),
            state: self.state,
            created_at: Timestamp::from_micros(self.created_at),
        })
    }
}

/// A value bound to a parameter of a built statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// A built statement: its text and its parameters, the `n`th bound to the `n`th placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Sql {
        Sql { text: text.to_string(), args: Vec::new() }
    }

    /// Appends `clause`, whose `?` stands for one new parameter bound to `arg`.
    fn bind(&mut self, d: Dialect, clause: &str, arg: Arg) {
        self.args.push(arg);
        self.text.push_str(&clause.replace('?', &d.placeholder(self.args.len())));
    }
}

/// Up to `limit` records with seq greater than `after`, in seq order.
pub(crate) fn read_after(d: Dialect, after: u64, limit: usize) -> Result<Sql, StoreError> {
    let mut sql = Sql::new(&format!("SELECT {RECORD_COLUMNS} FROM events"));
    sql.bind(d, " WHERE seq > ?", Arg::Int(d.seq_param(super::clamp_seq(after))?));
    sql.bind(d, " ORDER BY seq LIMIT ?", Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    Ok(sql)
}

/// The distinct subjects under `prefix`, each found by one index seek (a skip scan), compared bytewise; at
/// most one more than [`PREFIX_SPLIT`], so that the caller can tell whether there are too many to query
/// one by one.
pub(crate) fn subjects_under(d: Dialect, prefix: &str) -> Sql {
    let mut args = vec![Arg::Text(prefix.to_string())];
    let bound = match super::prefix_end(prefix) {
        Some(end) => {
            args.push(Arg::Text(end));
            format!(" AND key < {}", d.placeholder(2))
        }
        None => String::new(),
    };
    let start = d.placeholder(1);
    let text = format!(
        "WITH RECURSIVE k(key) AS (\
           SELECT (SELECT min(key) FROM events WHERE key >= {start}{bound}) \
           UNION ALL SELECT (SELECT min(key) FROM events WHERE key > k.key{bound}) FROM k WHERE k.key IS NOT NULL) \
         SELECT key FROM k WHERE key IS NOT NULL LIMIT {}",
        PREFIX_SPLIT + 1
    );
    Sql { text, args }
}

/// The audit query `q` in one statement: every filter, the order and the limit.
pub(crate) fn audit(d: Dialect, q: &LogQuery) -> Result<Sql, StoreError> {
    let mut sql = Sql::new(&format!("SELECT {RECORD_COLUMNS} FROM events"));
    sql.bind(d, " WHERE seq > ?", Arg::Int(d.seq_param(super::clamp_seq(q.after))?));
    if let Some(before) = q.before {
        sql.bind(d, " AND seq < ?", Arg::Int(d.seq_param(super::clamp_seq(before))?));
    }
    match &q.subject {
        Some(SubjectMatch::Exact(k)) => sql.bind(d, " AND key = ?", Arg::Text(k.clone())),
        // `query` runs one exact query per subject; reaching here means the list was empty.
        Some(SubjectMatch::AnyOf(_)) => sql.text.push_str(" AND 1 = 0"),
        Some(SubjectMatch::Prefix(p)) => {
            sql.bind(d, " AND key >= ?", Arg::Text(p.clone()));
            if let Some(end) = super::prefix_end(p) {
                sql.bind(d, " AND key < ?", Arg::Text(end));
            }
        }
        None => {}
    }
    if let Some(actor) = &q.actor {
        sql.bind(d, " AND actor = ?", Arg::Text(actor.clone()));
    }
    if let Some(batch) = &q.batch {
        sql.bind(d, " AND batch_id = ?", Arg::Text(batch.clone()));
    }
    if let Some(t) = q.since {
        sql.bind(d, " AND occurred_at >= ?", Arg::Int(t.0));
    }
    if let Some(t) = q.until {
        sql.bind(d, " AND occurred_at <= ?", Arg::Int(t.0));
    }
    for (i, kind) in q.kinds.iter().enumerate() {
        sql.bind(d, if i == 0 { " AND kind IN (?" } else { ", ?" }, Arg::Text(kind.clone()));
    }
    if !q.kinds.is_empty() {
        sql.text.push(')');
    }
    let order = if q.ascending { " ORDER BY seq ASC LIMIT ?" } else { " ORDER BY seq DESC LIMIT ?" };
    sql.bind(d, order, Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    Ok(sql)
}

/// What an adapter runs the shared statements with.
pub(crate) trait SqlReader {
    fn dialect(&self) -> Dialect;
    /// The event rows `sql` selects ([`RECORD_COLUMNS`]).
    fn records(&self, sql: &Sql) -> Result<Vec<Record>, StoreError>;
    /// The first column of every row `sql` selects, as text.
    fn texts(&self, sql: &Sql) -> Result<Vec<String>, StoreError>;
    /// The first column of every row `sql` selects, as an integer.
    fn integers(&self, sql: &Sql) -> Result<Vec<i64>, StoreError>;
}

/// [`super::EventStore::seq_at`] for a SQL adapter.
pub(crate) fn seq_at(db: &impl SqlReader, time: Timestamp) -> Result<Option<u64>, StoreError> {
    // Event times never go backwards along the log, so the last by time is the last by seq.
    let mut sql = Sql::new("SELECT seq FROM events");
    sql.bind(db.dialect(), " WHERE occurred_at <= ?", Arg::Int(time.0));
    sql.text.push_str(" ORDER BY occurred_at DESC, seq DESC LIMIT 1");
    db.integers(&sql)?.into_iter().next().map(to_seq).transpose()
}

/// [`super::EventStore::snapshot_seqs`] for a SQL adapter.
pub(crate) fn snapshot_seqs(db: &impl SqlReader) -> Result<Vec<u64>, StoreError> {
    db.integers(&Sql::new("SELECT seq FROM snapshots ORDER BY seq"))?.into_iter().map(to_seq).collect()
}

/// [`super::EventStore::query`] for a SQL adapter: a prefix shared by a few subjects becomes one index
/// lookup per subject, merged; anything else is one statement.
pub(crate) fn query(db: &impl SqlReader, q: &LogQuery) -> Result<Vec<Record>, StoreError> {
    let d = db.dialect();
    if let Some(SubjectMatch::Prefix(p)) = &q.subject {
        let subjects = db.texts(&subjects_under(d, p))?;
        if subjects.len() <= PREFIX_SPLIT {
            return super::query_each_subject(subjects, q, |one| query(db, one));
        }
    }
    if let Some(SubjectMatch::AnyOf(subjects)) = &q.subject {
        if !subjects.is_empty() {
            return super::query_each_subject(subjects.clone(), q, |one| query(db, one));
        }
    }
    db.records(&audit(d, q)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_binds_one_numbered_parameter_in_each_dialect() {
        let q = LogQuery {
            subject: Some(SubjectMatch::Prefix("LOG_".into())),
            actor: Some("alice".into()),
            kinds: vec!["SettingChanged".into(), "SettingReset".into()],
            batch: Some("b1".into()),
            since: Some(Timestamp(1)),
            until: Some(Timestamp(2)),
            before: Some(9),
            after: 3,
            limit: 50,
            ascending: false,
        };
        let lite = audit(Dialect::Sqlite, &q).unwrap();
        let pg = audit(Dialect::Postgres, &q).unwrap();
        assert_eq!(lite.args, pg.args);
        assert_eq!(lite.args.len(), 11);
        assert!(lite.text.ends_with(
            "WHERE seq > ?1 AND seq < ?2 AND key >= ?3 AND key < ?4 AND actor = ?5 AND batch_id = ?6 \
             AND occurred_at >= ?7 AND occurred_at <= ?8 AND kind IN (?9, ?10) ORDER BY seq DESC LIMIT ?11"
        ));
        assert!(pg.text.ends_with(
            "WHERE seq > $1 AND seq < $2 AND key >= $3 AND key < $4 AND actor = $5 AND batch_id = $6 \
             AND occurred_at >= $7 AND occurred_at <= $8 AND kind IN ($9, $10) ORDER BY seq DESC LIMIT $11"
        ));
        assert_eq!(lite.args[3], Arg::Text("LOG`".into()));
    }

    #[test]
    fn a_seq_beyond_the_sql_integer_is_named_in_the_dialect_s_words() {
        assert!(
            matches!(Dialect::Sqlite.seq_param(1 << 63), Err(StoreError::Corrupt(m)) if m.ends_with("SQLite's integer"))
        );
        assert!(matches!(Dialect::Postgres.seq_param(1 << 63), Err(StoreError::Corrupt(m)) if m.ends_with("a bigint")));
        assert_eq!(Dialect::Postgres.seq_param(7).ok(), Some(7));
    }
}
