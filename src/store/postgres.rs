//! The PostgreSQL adapter: the shared log of a multi-instance deployment (the `postgres` crate, sync, since
//! the port is called from the writer thread and blocking tasks). One write connection, a small pool of
//! read connections, and, for the tailer, a dedicated `LISTEN` connection ([`PgListener`]).
//!
//! An append takes a transaction-scoped advisory lock, so appends from every process and machine are
//! serialized; it reads the head under the lock (the writer decides against it, so it never loses a race
//! it already waited for), inserts the batch with one `unnest` statement and sends one `NOTIFY` (one per batch, not per event: a pending notification takes a global
//! lock through commit). Durability is PostgreSQL's: with the default `synchronous_commit=on`, an
//! acknowledged append has been flushed to the WAL. A connection that fails is dropped and replaced at the
//! next call, so the store recovers by itself once the server is back.

use super::{AppendGuard, ChangeWatch, EventStore, InstanceBeat, LogQuery, StoreError, StoredSnapshot, SubjectMatch};
use cfgledger_events::{Hash, Head, Record, Timestamp};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, NoTls};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The channel every append notifies, with the new head seq as payload.
pub const CHANNEL: &str = "cfgledger_events";
/// Advisory lock keys (arbitrary constants, one per purpose).
const APPEND_LOCK: i64 = 0x6366_676c_0001;
const MIGRATE_LOCK: i64 = 0x6366_676c_0002;
/// How long a connection attempt may take before the store reports itself unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Read connections kept for reuse.
const POOL: usize = 8;

pub struct PgStore {
    config: Config,
    shown: String,
    write: Mutex<Option<WriteConn>>,
    readers: Mutex<Vec<Client>>,
}

fn unavailable(e: postgres::Error) -> StoreError {
    // `Display` of a server error is just "db error"; the server's own message says what happened.
    match e.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Unavailable(e.to_string()),
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("a connection lock was poisoned by a panic".into())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db?...`) and applies pending migrations.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut config: Config =
            url.parse().map_err(|e| StoreError::Url(format!("database URL {}: {e}", redact(url))))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("cfgledger");
        }
        let store = PgStore { config, shown: redact(url), write: Mutex::new(None), readers: Mutex::new(Vec::new()) };
        let mut client = store.connect()?;
        migrate(&mut client)?;
        *store.write.lock().map_err(|_| poisoned())? = Some(WriteConn::new(client).map_err(unavailable)?);
        Ok(store)
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {}: {e}", self.shown)))
    }

    fn write_conn(&self) -> Result<WriteConn, StoreError> {
        WriteConn::new(self.connect()?).map_err(unavailable)
    }

    /// A dedicated connection listening on [`CHANNEL`], for a tailer.
    pub fn listener(&self) -> Result<PgListener, StoreError> {
        let mut client = self.connect()?;
        client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(unavailable)?;
        Ok(PgListener { client })
    }

    /// Runs `f` on a pooled read connection. A pooled connection may have died while idle (a restarted
    /// server, `pg_terminate_backend`) without the client knowing until it is used, so a failure on a
    /// pooled connection empties the pool and is retried once on a fresh connection.
    fn with_reader<T>(&self, mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map_err(|_| poisoned())?.pop();
        let (mut client, was_pooled) = match pooled {
            Some(c) if !c.is_closed() => (c, true),
            _ => (self.connect()?, false),
        };
        let mut out = f(&mut client);
        if out.is_err() && was_pooled && client.is_closed() {
            self.readers.lock().map_err(|_| poisoned())?.clear();
            client = self.connect()?;
            out = f(&mut client);
        }
        if out.is_ok() && !client.is_closed() {
            if let Ok(mut pool) = self.readers.lock() {
                if pool.len() < POOL {
                    pool.push(client);
                }
            }
        }
        out.map_err(unavailable)
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://…".to_string();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let tail = tail.split('?').next().unwrap_or_default();
    format!("{scheme}://{authority}/{tail}")
}

/// Applies the embedded migrations under a session advisory lock, so that instances starting together
/// migrate one after the other.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).map_err(unavailable)?;
    let result = embedded::migrations::runner()
        .set_grouped(true)
        .run(client)
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("cannot apply migrations: {e}")));
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).map_err(unavailable);
    result.and(unlocked.map(|_| ()))
}

fn to_seq(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative seq {v}")))
}

fn to_hash(seq: i64, bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::from_slice(bytes).ok_or_else(|| StoreError::Corrupt(format!("seq {seq}: a hash is not 32 bytes")))
}

fn from_seq(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("seq {v} does not fit a bigint")))
}

/// The write connection with its statements prepared once: an append is then four round trips (BEGIN and
/// the lock as one simple query, the head, insert-and-notify, COMMIT) instead of a prepare, bind and close
/// per statement.
struct WriteConn {
    client: Client,
    head: postgres::Statement,
    insert_notify: postgres::Statement,
}

impl WriteConn {
    fn new(mut client: Client) -> Result<WriteConn, postgres::Error> {
        let head = client.prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?;
        let insert_notify = client.prepare(
            "WITH inserted AS ( \
                INSERT INTO events (seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash) \
                SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                     $7::bytea[], $8::bytea[], $9::bytea[]) \
                RETURNING 1) \
             SELECT pg_notify($10, $11), (SELECT count(*) FROM inserted)",
        )?;
        Ok(WriteConn { client, head, insert_notify })
    }
}

/// The write connection inside a transaction that holds the append advisory lock.
struct PgGuard<'a> {
    slot: MutexGuard<'a, Option<WriteConn>>,
    head: Head,
    /// The transaction is still open (rolled back on drop).
    open: bool,
}

impl PgGuard<'_> {
    fn conn(&mut self) -> Result<&mut WriteConn, StoreError> {
        self.slot.as_mut().ok_or_else(|| StoreError::Unavailable("the write connection is gone".into()))
    }
}

impl AppendGuard for PgGuard<'_> {
    fn head(&self) -> Head {
        self.head
    }

    fn commit(mut self: Box<Self>, records: &[Record]) -> Result<Head, StoreError> {
        super::check_continues(self.head, records)?;
        let Some(last) = records.last() else {
            return Ok(self.head);
        };
        let seqs = records.iter().map(|r| from_seq(r.seq)).collect::<Result<Vec<i64>, _>>()?;
        let times: Vec<i64> = records.iter().map(|r| r.occurred_at.as_micros()).collect();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        let actors: Vec<&str> = records.iter().map(|r| r.actor.as_str()).collect();
        let batches: Vec<&str> = records.iter().map(|r| r.batch_id.as_str()).collect();
        let keys: Vec<Option<&str>> = records.iter().map(|r| r.key.as_deref()).collect();
        let envelopes: Vec<&[u8]> = records.iter().map(|r| r.envelope.as_slice()).collect();
        let prevs: Vec<&[u8]> = records.iter().map(|r| &r.prev_hash.0[..]).collect();
        let hashes: Vec<&[u8]> = records.iter().map(|r| &r.hash.0[..]).collect();
        let seq_text = last.seq.to_string();
        let conn = self.conn()?;
        let row = conn
            .client
            .query_one(
                &conn.insert_notify,
                &[&seqs, &times, &kinds, &actors, &batches, &keys, &envelopes, &prevs, &hashes, &CHANNEL, &seq_text],
            )
            .map_err(unavailable)?;
        let inserted: i64 = row.get(1);
        if usize::try_from(inserted).ok() != Some(records.len()) {
            return Err(StoreError::Unavailable(format!("inserted {inserted} of {} records", records.len())));
        }
        conn.client.batch_execute("COMMIT").map_err(unavailable)?;
        self.open = false;
        Ok(Head { seq: last.seq, hash: last.hash })
    }
}

impl Drop for PgGuard<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.slot.as_mut() {
            if self.open && !conn.client.is_closed() {
                let _ = conn.client.batch_execute("ROLLBACK");
            }
            if conn.client.is_closed() {
                // Replaced by a fresh connection at the next lock.
                *self.slot = None;
            }
        }
    }
}

/// Opens the append transaction: BEGIN and the advisory lock in one round trip, then the head. The head is
/// read by a statement that starts after the lock is held, so its snapshot includes every earlier append
/// (a statement that waited for the lock would still see its older snapshot).
fn begin(conn: &mut WriteConn) -> Result<(Option<i64>, Option<Vec<u8>>), postgres::Error> {
    conn.client.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})"))?;
    Ok(match conn.client.query_opt(&conn.head, &[])? {
        Some(row) => (Some(row.get(0)), Some(row.get(1))),
        None => (None, None),
    })
}

/// A row of `SELECT seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash`.
fn to_record(row: &postgres::Row) -> Result<Record, StoreError> {
    let seq: i64 = row.get(0);
    let prev: Vec<u8> = row.get(7);
    let hash: Vec<u8> = row.get(8);
    Ok(Record {
        seq: to_seq(seq)?,
        occurred_at: Timestamp::from_micros(row.get(1)),
        kind: row.get(2),
        actor: row.get(3),
        batch_id: row.get(4),
        key: row.get(5),
        envelope: row.get(6),
        prev_hash: to_hash(seq, &prev)?,
        hash: to_hash(seq, &hash)?,
    })
}

fn read_rows(client: &mut Client, after: i64, limit: i64) -> Result<Vec<postgres::Row>, postgres::Error> {
    client.query(
        "SELECT seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash \
         FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after, &limit],
    )
}

impl EventStore for PgStore {
    fn head(&self) -> Result<Head, StoreError> {
        let row = self.with_reader(|c| c.query_opt("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1", &[]))?;
        match row {
            None => Ok(Head::EMPTY),
            Some(row) => {
                let seq: i64 = row.get(0);
                let hash: Vec<u8> = row.get(1);
                Ok(Head { seq: to_seq(seq)?, hash: to_hash(seq, &hash)? })
            }
        }
    }

    fn lock(&self) -> Result<Box<dyn AppendGuard + '_>, StoreError> {
        let mut slot = self.write.lock().map_err(|_| poisoned())?;
        let reused = matches!(slot.as_ref(), Some(c) if !c.client.is_closed());
        if !reused {
            *slot = Some(self.write_conn()?);
        }
        let conn = slot.as_mut().ok_or_else(|| StoreError::Unavailable("no write connection".into()))?;
        let row = match begin(conn) {
            Ok(row) => row,
            // An idle connection may have died unnoticed; nothing was written, so a fresh one may retry.
            Err(_) if reused && conn.client.is_closed() => {
                *slot = Some(self.write_conn()?);
                let conn = slot.as_mut().ok_or_else(|| StoreError::Unavailable("no write connection".into()))?;
                match begin(conn) {
                    Ok(row) => row,
                    Err(e) => {
                        *slot = None;
                        return Err(unavailable(e));
                    }
                }
            }
            Err(e) => {
                if conn.client.is_closed() {
                    *slot = None;
                } else {
                    let _ = conn.client.batch_execute("ROLLBACK");
                }
                return Err(unavailable(e));
            }
        };
        let mut guard = PgGuard { slot, head: Head::EMPTY, open: true };
        // On a malformed row the guard's drop rolls back.
        guard.head = match row {
            (Some(seq), Some(hash)) => Head { seq: to_seq(seq)?, hash: to_hash(seq, &hash)? },
            _ => Head::EMPTY,
        };
        Ok(Box::new(guard))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let after = from_seq(super::clamp_seq(after))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with_reader(|c| read_rows(c, after, limit))?;
        rows.iter().map(to_record).collect()
    }

    fn query(&self, q: &LogQuery) -> Result<Vec<Record>, StoreError> {
        if let Some(SubjectMatch::Prefix(p)) = &q.subject {
            // The distinct subjects under the prefix, each found by one index seek (a skip scan), compared
            // bytewise whatever the database's collation.
            let end = super::prefix_end(p);
            let bound = if end.is_some() { " AND (key COLLATE \"C\") < $2" } else { "" };
            let sql = format!(
                "WITH RECURSIVE k(key) AS (\
                   SELECT (SELECT min(key COLLATE \"C\") FROM events WHERE (key COLLATE \"C\") >= $1{bound}) \
                   UNION ALL SELECT (SELECT min(key COLLATE \"C\") FROM events WHERE (key COLLATE \"C\") > k.key{bound}) FROM k WHERE k.key IS NOT NULL) \
                 SELECT key FROM k WHERE key IS NOT NULL LIMIT {}",
                super::PREFIX_SPLIT + 1
            );
            let rows = self.with_reader(|c| match &end {
                Some(e) => c.query(&sql, &[p, e]),
                None => c.query(&sql, &[p]),
            })?;
            let subjects: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if subjects.len() <= super::PREFIX_SPLIT {
                return super::query_each_subject(subjects, q, |one| self.query(one));
            }
        }
        let mut sql = String::from(
            "SELECT seq, occurred_at, kind, actor, batch_id, key, envelope, prev_hash, hash FROM events WHERE seq > $1",
        );
        let mut args: Vec<Box<dyn postgres::types::ToSql + Sync>> =
            vec![Box::new(from_seq(super::clamp_seq(q.after))?)];
        let mut add = |clause: &str, value: Box<dyn postgres::types::ToSql + Sync>| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(before) = q.before {
            add(" AND seq < ?", Box::new(from_seq(super::clamp_seq(before))?));
        }
        match &q.subject {
            Some(SubjectMatch::Exact(k)) => add(" AND key = ?", Box::new(k.clone())),
            Some(SubjectMatch::Prefix(p)) => {
                add(" AND (key COLLATE \"C\") >= ?", Box::new(p.clone()));
                if let Some(end) = super::prefix_end(p) {
                    add(" AND (key COLLATE \"C\") < ?", Box::new(end));
                }
            }
            None => {}
        }
        if let Some(actor) = &q.actor {
            add(" AND actor = ?", Box::new(actor.clone()));
        }
        if let Some(batch) = &q.batch {
            add(" AND batch_id = ?", Box::new(batch.clone()));
        }
        if let Some(t) = q.since {
            add(" AND occurred_at >= ?", Box::new(t.0));
        }
        if let Some(t) = q.until {
            add(" AND occurred_at <= ?", Box::new(t.0));
        }
        if !q.kinds.is_empty() {
            add(" AND kind = ANY(?)", Box::new(q.kinds.clone()));
        }
        add(
            if q.ascending { " ORDER BY seq ASC LIMIT ?" } else { " ORDER BY seq DESC LIMIT ?" },
            Box::new(i64::try_from(q.limit).unwrap_or(i64::MAX)),
        );
        let rows = self.with_reader(|c| {
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
            c.query(&sql, &refs)
        })?;
        rows.iter().map(to_record).collect()
    }

    fn seq_at(&self, time: Timestamp) -> Result<Option<u64>, StoreError> {
        // Event times never go backwards along the log, so the last by time is the last by seq.
        let row = self.with_reader(|c| {
            c.query_opt(
                "SELECT seq FROM events WHERE occurred_at <= $1 ORDER BY occurred_at DESC, seq DESC LIMIT 1",
                &[&time.0],
            )
        })?;
        row.map(|r| to_seq(r.get(0))).transpose()
    }

    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let seq = from_seq(snapshot.seq)?;
        self.with_reader(|c| {
            c.execute(
                "INSERT INTO snapshots (seq, head_hash, digest, state, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (seq) DO UPDATE SET head_hash = excluded.head_hash, digest = excluded.digest, \
                 state = excluded.state, created_at = excluded.created_at",
                &[&seq, &&snapshot.head_hash.0[..], &&snapshot.digest.0[..], &snapshot.state, &snapshot.created_at.0],
            )
        })?;
        Ok(())
    }

    fn load_snapshot(&self, at_or_before: u64) -> Result<Option<StoredSnapshot>, StoreError> {
        let at = from_seq(at_or_before.min(i64::MAX as u64))?;
        let row = self.with_reader(|c| {
            c.query_opt(
                "SELECT seq, head_hash, digest, state, created_at FROM snapshots WHERE seq <= $1 ORDER BY seq DESC LIMIT 1",
                &[&at],
            )
        })?;
        row.map(|r| {
            let seq: i64 = r.get(0);
            let (head_hash, digest): (Vec<u8>, Vec<u8>) = (r.get(1), r.get(2));
            Ok(StoredSnapshot {
                seq: to_seq(seq)?,
                head_hash: to_hash(seq, &head_hash)?,
                digest: to_hash(seq, &digest)?,
                state: r.get(3),
                created_at: Timestamp::from_micros(r.get(4)),
            })
        })
        .transpose()
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        let rows = self.with_reader(|c| c.query("SELECT seq FROM snapshots ORDER BY seq", &[]))?;
        rows.iter().map(|r| to_seq(r.get(0))).collect()
    }

    fn delete_snapshot(&self, seq: u64) -> Result<(), StoreError> {
        let seq = from_seq(seq)?;
        self.with_reader(|c| c.execute("DELETE FROM snapshots WHERE seq = $1", &[&seq]))?;
        Ok(())
    }

    /// The head seq: an index lookup. The tailer is woken by `LISTEN` instead of polling this.
    fn change_token(&self) -> Result<u64, StoreError> {
        self.head().map(|h| h.seq)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn heartbeat(&self, instance: &InstanceBeat, forget_before: i64) -> Result<(), StoreError> {
        let info = instance.info.to_string();
        self.with_reader(|c| {
            c.execute("DELETE FROM instances WHERE last_seen < $1", &[&forget_before])?;
            c.execute(
                "INSERT INTO instances (id, info, last_seen) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen",
                &[&instance.id, &info, &instance.last_seen],
            )
        })
        .map(|_| ())
    }

    fn instances(&self, since: i64) -> Result<Vec<InstanceBeat>, StoreError> {
        let rows = self.with_reader(|c| {
            c.query("SELECT id, info, last_seen FROM instances WHERE last_seen >= $1 ORDER BY id", &[&since])
        })?;
        Ok(rows
            .iter()
            .map(|r| {
                let info: String = r.get(1);
                InstanceBeat {
                    id: r.get(0),
                    info: serde_json::from_str(&info).unwrap_or(serde_json::Value::Null),
                    last_seen: r.get(2),
                }
            })
            .collect())
    }

    fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        self.with_reader(|c| c.execute("DELETE FROM instances WHERE id = $1", &[&id])).map(|_| ())
    }

    fn watch(&self) -> Option<Result<Box<dyn ChangeWatch>, StoreError>> {
        Some(self.listener().map(|l| Box::new(l) as Box<dyn ChangeWatch>))
    }
}

/// A connection that has run `LISTEN cfgledger_events`.
pub struct PgListener {
    client: Client,
}

impl ChangeWatch for PgListener {
    fn wait(&mut self, timeout: Duration) -> Result<usize, StoreError> {
        let first = self.client.notifications().timeout_iter(timeout).next().map_err(unavailable)?;
        if first.is_none() {
            if self.client.is_closed() {
                return Err(StoreError::Unavailable("the LISTEN connection closed".into()));
            }
            return Ok(0);
        }
        // Drain whatever else has arrived: one catch-up covers them all.
        let mut n = 1;
        let mut notifications = self.client.notifications();
        let mut rest = notifications.iter();
        while rest.next().map_err(unavailable)?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/cfg?sslmode=disable"),
            "postgres://app@db.example:5432/cfg"
        );
        assert_eq!(redact("postgresql://db/cfg"), "postgresql://db/cfg");
        assert!(!redact("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }
}
