//! The PostgreSQL adapter: the shared log of a multi-instance deployment (the `postgres` crate, sync, since
//! the port is called from the writer thread and blocking tasks). One write connection, a small pool of
//! read connections, and, for the tailer, a dedicated `LISTEN` connection ([`PgListener`]).
//!
//! An append takes a transaction-scoped advisory lock, so appends from every process and machine are
//! serialized; it reads the head under the lock (the writer decides against it, so it never loses a race
//! it already waited for), inserts the batch with one `unnest` statement and sends one `NOTIFY` (one per batch, not per event: a pending notification takes a global
//! lock through commit). Durability is PostgreSQL's: with the default `synchronous_commit=on`, an
//! acknowledged append has been flushed to the WAL (and, with synchronous replication, to the standby). A
//! connection that fails is dropped and replaced at the next call, so the store recovers by itself once the
//! server is back; with a multi-host URL and `target_session_attrs=read-write`, the replacement reaches
//! whichever host takes writes now, so a promoted standby is followed without a restart.
//!
//! A COMMIT whose answer is lost (the connection died with it in flight, as when the primary stops) is
//! settled before it is answered: a fresh connection takes the append lock and looks for the batch's last
//! record ([`PgStore::settle`]). The client is told it was written or that nothing was written, and only
//! when the database stays out of reach is it told that the outcome is unknown.

use super::sql::{self, Arg, Dialect, EventRow, SnapshotRow, Sql, SqlReader};
use super::{
    AppendGuard, BulkLoad, ChangeWatch, ClaimedBeat, DataKeyRow, EventStore, InstanceBeat, LogQuery, StoreError,
    StoredSnapshot,
};
use cfgledger_events::{Head, Record, Timestamp};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod bulk;
mod tls;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The channel every append notifies, with the new head seq as payload.
pub const CHANNEL: &str = "cfgledger_events";
/// Advisory lock keys (arbitrary constants, one per purpose).
const APPEND_LOCK: i64 = 0x6366_676c_0001;
const MIGRATE_LOCK: i64 = 0x6366_676c_0002;
/// Held (per transaction) while agents' heartbeats are checked against their ids' owners and written.
const BEATS_LOCK: i64 = 0x6366_676c_0003;
/// How long a group of heartbeats waits for [`BEATS_LOCK`] before it fails (its beats answered 503).
const BEATS_LOCK_TIMEOUT: &str = "5s";
/// How long a session may sit idle inside a heartbeat transaction before PostgreSQL ends it, releasing the
/// lock: a server stopped or cut off mid-transaction.
const BEATS_IDLE_TIMEOUT: &str = "10s";
/// How long a connection attempt may take before the store reports itself unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Read connections kept for reuse.
const POOL: usize = 8;
/// How long a COMMIT whose answer was lost is looked for before its outcome is reported as unknown. The
/// writer waits meanwhile, so this is also how long the writes queued behind it may wait: as long as
/// SQLite's busy timeout. A promotion that takes longer ends that write in `outcome_unknown`.
const SETTLE_FOR: Duration = Duration::from_secs(10);
/// The longest [`PgStore::settle`] waits for the append lock in one attempt: a transaction whose COMMIT is
/// still waiting (for a synchronous standby that is gone) holds it, and may never let go.
const SETTLE_LOCK_TIMEOUT: &str = "2s";

pub struct PgStore {
    config: Config,
    /// Every connection (write, read, `LISTEN`) is made through it, as the URL's `sslmode` says.
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    shown: String,
    write: Mutex<Option<WriteConn>>,
    readers: Mutex<Vec<Client>>,
}

fn unavailable(e: postgres::Error) -> StoreError {
    StoreError::Unavailable(described(&e))
}

/// What went wrong: `Display` of a server error is just "db error"; the server's own message says what happened.
fn described(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// `e` and its causes: the postgres crate says only "error performing TLS handshake", and its cause says why
/// (the server does not support TLS, the certificate's issuer is unknown).
fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Writes `beats` in one statement: of an id's beats the newest (the later one of a tie), since one statement
/// may not update a row twice, as the other adapters keep; in id order, so that servers writing overlapping
/// groups take the rows' locks in the same order and never deadlock. A beat older than the stored one
/// (queued longer on another server) changes nothing.
fn upsert_beats<'b>(
    c: &mut impl postgres::GenericClient,
    beats: impl Iterator<Item = &'b InstanceBeat>,
) -> Result<(), postgres::Error> {
    let mut last: std::collections::BTreeMap<&str, &InstanceBeat> = std::collections::BTreeMap::new();
    for beat in beats {
        let kept = last.entry(&beat.id).or_insert(beat);
        if beat.last_seen >= kept.last_seen {
            *kept = beat;
        }
    }
    if last.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = last.keys().copied().collect();
    let infos: Vec<String> = ids.iter().map(|id| last[id].info.to_string()).collect();
    let seen: Vec<i64> = ids.iter().map(|id| last[id].last_seen).collect();
    c.execute(
        "INSERT INTO instances (id, info, last_seen) SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
         ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen \
         WHERE excluded.last_seen >= instances.last_seen",
        &[&ids, &infos, &seen],
    )?;
    Ok(())
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("a connection lock was poisoned by a panic".into())
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db?...`, with libpq's `sslmode` and `sslrootcert`) and
    /// applies pending migrations.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let (config, tls) = connection_config(url)?;
        let store =
            PgStore { config, tls, shown: redact(url), write: Mutex::new(None), readers: Mutex::new(Vec::new()) };
        let mut client = store.connect()?;
        migrate(&mut client)?;
        *store.write.lock().map_err(|_| poisoned())? = Some(WriteConn::new(client).map_err(unavailable)?);
        Ok(store)
    }

    fn connect(&self) -> Result<Client, StoreError> {
        self.config
            .connect(self.tls.clone())
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {}: {}", self.shown, with_causes(&e))))
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

    /// Whether the append that ends with `last`, whose COMMIT got no answer, is in the log. It is asked under
    /// the append lock on a fresh connection: a transaction whose COMMIT is still in flight on that server
    /// (waiting for its synchronous standby) holds the lock until it ends, so the answer cannot change
    /// afterwards; after a failover the fresh connection reaches the new primary, whose log is the one that
    /// goes on. Retried for [`SETTLE_FOR`] while the database cannot be asked; the error then is the last
    /// attempt's.
    fn settle(&self, last: &Record) -> Result<bool, StoreError> {
        let seq = Dialect::Postgres.seq_param(last.seq)?;
        let deadline = Instant::now() + SETTLE_FOR;
        loop {
            let asked = self.connect().and_then(|mut c| holds(&mut c, seq, &last.hash.0).map_err(unavailable));
            match asked {
                Ok(found) => return Ok(found),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// Whether the log holds the record `hash` at `seq`, read under the append lock (then released).
fn holds(client: &mut Client, seq: i64, hash: &[u8]) -> Result<bool, postgres::Error> {
    client.batch_execute(&format!(
        "BEGIN; SET LOCAL lock_timeout = '{SETTLE_LOCK_TIMEOUT}'; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
    ))?;
    let row = client.query_opt("SELECT hash FROM events WHERE seq = $1", &[&seq])?;
    client.batch_execute("ROLLBACK")?;
    Ok(row.is_some_and(|r| r.get::<_, &[u8]>(0) == hash))
}

/// How every connection of a store is made: the URL's settings (every host of a multi-host URL, in order,
/// with its `target_session_attrs`), its TLS, and cfgledger's defaults where the URL says nothing.
fn connection_config(url: &str) -> Result<(Config, tokio_postgres_rustls::MakeRustlsConnect), StoreError> {
    let parts = tls::split_url(url)?;
    let (ssl_mode, tls) = tls::connector(parts.mode, parts.root_cert.as_deref())?;
    let mut config: Config =
        parts.url.parse().map_err(|e| StoreError::Url(format!("database URL {}: {e}", redact(url))))?;
    config.ssl_mode(ssl_mode);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives(true).keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("cfgledger");
    }
    Ok((config, tls))
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
        let head = client.prepare(sql::HEAD)?;
        let insert_notify = client.prepare(&format!(
            "WITH inserted AS ( \
                INSERT INTO events ({}) \
                SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                     $7::bytea[], $8::bytea[], $9::bytea[]) \
                RETURNING 1) \
             SELECT pg_notify($10, $11), (SELECT count(*) FROM inserted)",
            sql::RECORD_COLUMNS
        ))?;
        Ok(WriteConn { client, head, insert_notify })
    }
}

/// The write connection inside a transaction that holds the append advisory lock.
struct PgGuard<'a> {
    /// Where a lost COMMIT is settled.
    store: &'a PgStore,
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
        let columns = records.iter().map(|r| EventRow::columns(Dialect::Postgres, r)).collect::<Result<Vec<_>, _>>()?;
        // One array per column, for `unnest`.
        let seqs: Vec<i64> = columns.iter().map(|c| c.seq).collect();
        let times: Vec<i64> = columns.iter().map(|c| c.occurred_at).collect();
        let kinds: Vec<&str> = columns.iter().map(|c| c.kind).collect();
        let actors: Vec<&str> = columns.iter().map(|c| c.actor).collect();
        let batches: Vec<&str> = columns.iter().map(|c| c.batch_id).collect();
        let keys: Vec<Option<&str>> = columns.iter().map(|c| c.key).collect();
        let envelopes: Vec<&[u8]> = columns.iter().map(|c| c.envelope).collect();
        let prevs: Vec<&[u8]> = columns.iter().map(|c| c.prev_hash).collect();
        let hashes: Vec<&[u8]> = columns.iter().map(|c| c.hash).collect();
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
        let committed = conn.client.batch_execute("COMMIT");
        // Whichever way the transaction ended, it is over: there is nothing to roll back.
        self.open = false;
        let Err(lost) = committed else {
            return Ok(Head { seq: last.seq, hash: last.hash });
        };
        // The COMMIT may have been made durable with its answer lost (the server stopped, or was told to
        // terminate the backend while it waited for its synchronous standby): the log says which.
        let cause = described(&lost);
        match self.store.settle(last) {
            Ok(true) => Ok(Head { seq: last.seq, hash: last.hash }),
            Ok(false) => Err(StoreError::Unavailable(format!("{cause}; the log shows that nothing was written"))),
            Err(asking) => Err(StoreError::OutcomeUnknown(format!(
                "the COMMIT got no answer ({cause}), and the database could not be asked within {} s whether the \
                 change was written ({asking}): read it back before retrying",
                SETTLE_FOR.as_secs()
            ))),
        }
    }

    fn data_key_ids(&mut self, subject: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let rows = conn
            .client
            .query("SELECT id FROM data_keys WHERE subject = $1 ORDER BY id", &[&subject])
            .map_err(unavailable)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn stage_data_keys(&mut self, put: &[DataKeyRow], destroy: &[String]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        if !put.is_empty() {
            insert_data_keys(&mut conn.client, put).map_err(unavailable)?;
        }
        if !destroy.is_empty() {
            conn.client.execute("DELETE FROM data_keys WHERE id = ANY($1)", &[&destroy]).map_err(unavailable)?;
        }
        Ok(())
    }
}

const DATA_KEY_COLUMNS: &str = "id, subject, master_key, wrapped, created_at";

fn insert_data_keys(client: &mut Client, rows: &[DataKeyRow]) -> Result<u64, postgres::Error> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    let masters: Vec<&str> = rows.iter().map(|r| r.master_key.as_str()).collect();
    let wrapped: Vec<&str> = rows.iter().map(|r| r.wrapped.as_str()).collect();
    let created: Vec<i64> = rows.iter().map(|r| r.created_at).collect();
    client.execute(
        &format!(
            "INSERT INTO data_keys ({DATA_KEY_COLUMNS}) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
             ON CONFLICT (id) DO NOTHING"
        ),
        &[&ids, &subjects, &masters, &wrapped, &created],
    )
}

fn data_key_row(r: &postgres::Row) -> DataKeyRow {
    DataKeyRow { id: r.get(0), subject: r.get(1), master_key: r.get(2), wrapped: r.get(3), created_at: r.get(4) }
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

/// An event row ([`sql::RECORD_COLUMNS`]) as PostgreSQL returns it.
fn event_row(row: &postgres::Row) -> Result<EventRow, postgres::Error> {
    Ok(EventRow {
        seq: row.try_get(0)?,
        occurred_at: row.try_get(1)?,
        kind: row.try_get(2)?,
        actor: row.try_get(3)?,
        batch_id: row.try_get(4)?,
        key: row.try_get(5)?,
        envelope: row.try_get(6)?,
        prev_hash: row.try_get(7)?,
        hash: row.try_get(8)?,
    })
}

/// The parameters of a built statement, as the `postgres` crate binds them.
fn pg_args(sql: &Sql) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    sql.args
        .iter()
        .map(|a| match a {
            Arg::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Arg::Text(v) => v as &(dyn postgres::types::ToSql + Sync),
        })
        .collect()
}

impl SqlReader for PgStore {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn records(&self, sql: &Sql) -> Result<Vec<Record>, StoreError> {
        let rows = self.with_reader(|c| c.query(&sql.text, &pg_args(sql)))?;
        rows.iter().map(|row| event_row(row).map_err(unavailable)?.into_record()).collect()
    }

    fn texts(&self, sql: &Sql) -> Result<Vec<String>, StoreError> {
        self.first_column(sql)
    }

    fn integers(&self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
        self.first_column(sql)
    }
}

impl PgStore {
    /// The first column of every row `sql` selects.
    fn first_column<T: for<'a> postgres::types::FromSql<'a>>(&self, sql: &Sql) -> Result<Vec<T>, StoreError> {
        let rows = self.with_reader(|c| c.query(&sql.text, &pg_args(sql)))?;
        rows.iter().map(|r| r.try_get(0).map_err(unavailable)).collect()
    }
}

impl EventStore for PgStore {
    fn head(&self) -> Result<Head, StoreError> {
        let row =
            self.with_reader(|c| c.query_opt(sql::HEAD, &[])?.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())?;
        sql::head_row(row)
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
        let mut guard = PgGuard { store: self, slot, head: Head::EMPTY, open: true };
        // On a malformed row the guard's drop rolls back.
        guard.head = sql::head_row(row.0.zip(row.1))?;
        Ok(Box::new(guard))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.records(&sql::read_after(Dialect::Postgres, after, limit)?)
    }

    fn query(&self, q: &LogQuery) -> Result<Vec<Record>, StoreError> {
        sql::query(self, q)
    }

    fn seq_at(&self, time: Timestamp) -> Result<Option<u64>, StoreError> {
        sql::seq_at(self, time)
    }

    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let seq = Dialect::Postgres.seq_param(snapshot.seq)?;
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
        let at = Dialect::Postgres.seq_param(super::clamp_seq(at_or_before))?;
        let select =
            format!("SELECT {} FROM snapshots WHERE seq <= $1 ORDER BY seq DESC LIMIT 1", sql::SNAPSHOT_COLUMNS);
        let row = self.with_reader(|c| c.query_opt(&select, &[&at]))?;
        row.map(|r| {
            SnapshotRow {
                seq: r.try_get(0).map_err(unavailable)?,
                head_hash: r.try_get(1).map_err(unavailable)?,
                digest: r.try_get(2).map_err(unavailable)?,
                state: r.try_get(3).map_err(unavailable)?,
                created_at: r.try_get(4).map_err(unavailable)?,
            }
            .into_snapshot()
        })
        .transpose()
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        sql::snapshot_seqs(self)
    }

    fn delete_snapshot(&self, seq: u64) -> Result<(), StoreError> {
        let seq = Dialect::Postgres.seq_param(seq)?;
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

    fn heartbeats(&self, beats: &[InstanceBeat], forget_before: Option<i64>) -> Result<(), StoreError> {
        self.with_reader(|c| {
            // Forgetting first, in a statement of its own: it locks rows in the table's order, and holding
            // those locks while upserting a group could cross another server's group.
            if let Some(before) = forget_before {
                c.execute("DELETE FROM instances WHERE last_seen < $1", &[&before])?;
            }
            upsert_beats(c, beats.iter())
        })
    }

    fn claim_heartbeats(&self, claims: &[ClaimedBeat]) -> Result<Vec<bool>, StoreError> {
        let ids: Vec<&str> = claims.iter().map(|c| c.beat.id.as_str()).collect();
        self.with_reader(|c| {
            // Every server's claims take one lock, so that no one writes between the owners read here and
            // the beats written (a row lock cannot guard an id no row has yet). READ COMMITTED whatever the
            // database's default, so that the owners are read as the last holder of the lock left them; a
            // server that stalls while holding it loses its session after a while, and one waiting for it
            // gives up, so that a stuck server cannot stop every other's heartbeats.
            let mut tx = c.build_transaction().isolation_level(postgres::IsolationLevel::ReadCommitted).start()?;
            tx.batch_execute(&format!(
                "SET LOCAL lock_timeout = '{BEATS_LOCK_TIMEOUT}'; \
                 SET LOCAL idle_in_transaction_session_timeout = '{BEATS_IDLE_TIMEOUT}'; \
                 SELECT pg_advisory_xact_lock({BEATS_LOCK})"
            ))?;
            let rows = tx.query("SELECT id, info, last_seen FROM instances WHERE id = ANY($1)", &[&ids])?;
            let stored: std::collections::HashMap<String, (Option<String>, i64)> = rows
                .iter()
                .map(|r| {
                    let info: String = r.get(1);
                    (r.get(0), (super::reporter_in(&info), r.get(2)))
                })
                .collect();
            let admitted = super::admit(claims, |id| Ok::<_, postgres::Error>(stored.get(id).cloned()))?;
            upsert_beats(&mut tx, claims.iter().zip(&admitted).filter(|(_, ok)| **ok).map(|(c, _)| &c.beat))?;
            tx.commit()?;
            Ok(admitted)
        })
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

    fn instance(&self, id: &str, since: i64) -> Result<Option<InstanceBeat>, StoreError> {
        let rows = self.with_reader(|c| {
            c.query("SELECT info, last_seen FROM instances WHERE id = $1 AND last_seen >= $2", &[&id, &since])
        })?;
        Ok(rows.first().map(|r| {
            let info: String = r.get(0);
            InstanceBeat {
                id: id.to_string(),
                info: serde_json::from_str(&info).unwrap_or(serde_json::Value::Null),
                last_seen: r.get(1),
            }
        }))
    }

    fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        self.with_reader(|c| c.execute("DELETE FROM instances WHERE id = $1", &[&id])).map(|_| ())
    }

    fn put_data_keys(&self, rows: &[DataKeyRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with_reader(|c| insert_data_keys(c, rows)).map(|_| ())
    }

    fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>, StoreError> {
        let rows =
            self.with_reader(|c| c.query(&format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE id = $1"), &[&id]))?;
        Ok(rows.first().map(data_key_row))
    }

    fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError> {
        let rows =
            self.with_reader(|c| c.query(&format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY id"), &[]))?;
        Ok(rows.iter().map(data_key_row).collect())
    }

    fn rewrap_data_keys(&self, rows: &[DataKeyRow]) -> Result<usize, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let masters: Vec<&str> = rows.iter().map(|r| r.master_key.as_str()).collect();
        let wrapped: Vec<&str> = rows.iter().map(|r| r.wrapped.as_str()).collect();
        let done = self.with_reader(|c| {
            c.execute(
                "UPDATE data_keys SET master_key = n.master_key, wrapped = n.wrapped \
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS n(id, master_key, wrapped) \
                 WHERE data_keys.id = n.id",
                &[&ids, &masters, &wrapped],
            )
        })?;
        Ok(usize::try_from(done).unwrap_or(usize::MAX))
    }

    fn bulk_load(&self) -> Option<Result<Box<dyn BulkLoad + '_>, StoreError>> {
        Some(
            self.connect()
                .and_then(|client| bulk::PgBulkLoad::start(self, client))
                .map(|load| Box::new(load) as Box<dyn BulkLoad + '_>),
        )
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
    use super::{connection_config, redact};
    use postgres::config::{Host, TargetSessionAttrs};

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/cfg?sslmode=disable"),
            "postgres://app@db.example:5432/cfg"
        );
        assert_eq!(redact("postgresql://db/cfg"), "postgresql://db/cfg");
        assert!(!redact("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }

    /// A failover URL names every host, in order, and asks for the one that takes writes: all of it reaches
    /// the postgres crate, TLS parameters taken out, and no password reaches a message.
    #[test]
    fn a_multi_host_url_keeps_its_hosts_in_order_and_its_session_attributes() {
        let url = "postgres://app:s3cret@db1.example:5432,db2.example:5433/cfg?target_session_attrs=read-write&sslmode=require";
        assert_eq!(redact(url), "postgres://app@db1.example:5432,db2.example:5433/cfg");
        let (config, _) = connection_config(url).expect("a multi-host URL parses");
        assert_eq!(config.get_hosts(), &[Host::Tcp("db1.example".to_string()), Host::Tcp("db2.example".to_string())]);
        assert_eq!(config.get_ports(), &[5432, 5433]);
        assert_eq!(config.get_target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(config.get_dbname(), Some("cfg"));
        assert_eq!(config.get_ssl_mode(), postgres::config::SslMode::Require);
    }
}
