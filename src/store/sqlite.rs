//! The SQLite adapter: the embedded default. One write connection (appends are serialized by SQLite's
//! write lock anyway, across processes too), a small pool of read connections, and one connection that
//! polls `PRAGMA data_version` to notice other processes' commits.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a commit syncs the WAL before it returns and an
//! acknowledged append survives power loss. Appends take the write lock up front (`BEGIN IMMEDIATE`) and
//! compare the head inside the transaction, which is what keeps concurrent writers in several processes
//! gapless: the loser gets a conflict, never a gap or a fork.

use super::sql::{self, Arg, Dialect, EventRow, SnapshotRow, Sql, SqlReader};
use super::{AppendGuard, ClaimedBeat, DataKeyRow, EventStore, InstanceBeat, LogQuery, StoreError, StoredSnapshot};
use cfgledger_events::{Head, Record, RecordRef, Timestamp};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// How long a connection waits for another process's write lock before the store reports itself busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStore {
    path: PathBuf,
    write: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    poll: Mutex<Connection>,
    /// Kept for its drop, which stops the thread.
    _checkpointer: Checkpointer,
}

/// How often the background checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// A WAL this long (in pages) is checkpointed by the commit that crosses it if the background thread has
/// fallen behind: the safety net that bounds the WAL.
const CHECKPOINT_FALLBACK_PAGES: u32 = 65_536;

/// A thread that checkpoints the WAL with `PASSIVE` checkpoints on its own connection, so that copying pages
/// into the database and syncing it never happens inside a commit: a commit that crossed the automatic
/// threshold used to stall every writer waiting on it for tens of milliseconds.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Checkpointer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("cfgledger-checkpoint".into())
            .spawn(move || {
                let Ok(conn) = connect(&path) else { return };
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    // PASSIVE never waits for readers or writers; whatever it cannot copy now, it copies later.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok();
        Checkpointer { stop, handle }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(StoreError::Unavailable(format!(
                    "cannot open {}: directory {} does not exist",
                    path.display(),
                    parent.display()
                )));
            }
        }
        check_directory(path)?;
        create_private(path)?;
        let mut write = connect(path)?;
        // Checkpoints run on the background checkpointer; a commit checkpoints only if the WAL has grown far
        // past what the checkpointer keeps it at (it stopped, or a reader pinned old pages for long).
        write.execute_batch(&format!("PRAGMA wal_autocheckpoint={CHECKPOINT_FALLBACK_PAGES};")).map_err(unavailable)?;
        migrate(&mut write)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            write: Mutex::new(write),
            readers: Mutex::new(Vec::new()),
            poll: Mutex::new(connect(path)?),
            _checkpointer: Checkpointer::start(path),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the whole database to `path`, which must not exist: SQLite's `VACUUM
    /// INTO`, page by page, with no row re-inserted (and so no index rebuilt row by row). A mirror into a new
    /// file uses it, then checks the copy's chain before putting it in place.
    pub fn copy_to(&self, path: &Path) -> Result<(), StoreError> {
        let target =
            path.to_str().ok_or_else(|| StoreError::Unavailable(format!("{} is not UTF-8", path.display())))?;
        self.with_reader(|conn| conn.execute("VACUUM INTO ?1", params![target]).map(|_| ()).map_err(unavailable))
    }

    /// Drops every instance heartbeat: a copied database must not list the source's running instances.
    pub fn forget_all_instances(&self) -> Result<(), StoreError> {
        let conn = self.write.lock().map_err(|_| poisoned())?;
        conn.execute("DELETE FROM instances", []).map_err(unavailable)?;
        Ok(())
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.readers.lock().map_err(|_| poisoned())?.pop();
        let conn = match conn {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < READER_POOL {
                pool.push(conn);
            }
        }
        out
    }
}

/// The record of an event row ([`sql::RECORD_COLUMNS`]), its text and bytes borrowed where SQLite holds
/// them; a malformed row (a negative seq, a hash that is not 32 bytes, a column of another type) is refused.
/// A rebuild verifies every row in place this way: copying the five columns of each into a `Record` cost
/// five allocations per row.
fn record_ref<'r>(row: &'r rusqlite::Row<'_>) -> Result<RecordRef<'r>, StoreError> {
    let seq: i64 = row.get(0).map_err(unavailable)?;
    let value = |i: usize| row.get_ref(i).map_err(unavailable);
    let mistyped = |i: usize, e: rusqlite::types::FromSqlError| {
        StoreError::Unavailable(format!("seq {seq}: column {} of the event row: {e}", i + 1))
    };
    let text = |i: usize| value(i)?.as_str().map_err(|e| mistyped(i, e));
    let hash = |i: usize| sql::to_hash(seq, value(i)?.as_blob().map_err(|e| mistyped(i, e))?);
    Ok(RecordRef {
        seq: sql::to_seq(seq)?,
        occurred_at: Timestamp::from_micros(row.get(1).map_err(unavailable)?),
        kind: text(2)?,
        actor: text(3)?,
        batch_id: text(4)?,
        key: value(5)?.as_str_or_null().map_err(|e| mistyped(5, e))?,
        envelope: value(6)?.as_blob().map_err(|e| mistyped(6, e))?,
        prev_hash: hash(7)?,
        hash: hash(8)?,
    })
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(v) => rusqlite::types::ToSqlOutput::from(*v),
            Arg::Text(v) => rusqlite::types::ToSqlOutput::from(v.as_str()),
        })
    }
}

impl SqlReader for SqliteStore {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn records(&self, sql: &Sql) -> Result<Vec<Record>, StoreError> {
        self.read_records(sql, 0)
    }

    fn texts(&self, sql: &Sql) -> Result<Vec<String>, StoreError> {
        self.first_column(sql)
    }

    fn integers(&self, sql: &Sql) -> Result<Vec<i64>, StoreError> {
        self.first_column(sql)
    }
}

impl SqliteStore {
    /// The event rows `sql` selects, into a vector made for `expected` of them: a chunk of a rebuild is
    /// known to be full, and growing its vector by doubling copied every record about once more.
    fn read_records(&self, sql: &Sql, expected: usize) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(expected);
        self.visit_records(sql, &mut |rec| out.push(rec.to_record()))?;
        Ok(out)
    }

    /// Lends each event row `sql` selects to `visit`, in order; returns how many there were.
    fn visit_records(&self, sql: &Sql, visit: &mut dyn FnMut(RecordRef<'_>)) -> Result<usize, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(sql.args.iter())).map_err(unavailable)?;
            let mut n = 0;
            while let Some(row) = rows.next().map_err(unavailable)? {
                visit(record_ref(row)?);
                n += 1;
            }
            Ok(n)
        })
    }

    /// The first column of every row `sql` selects.
    fn first_column<T: rusqlite::types::FromSql>(&self, sql: &Sql) -> Result<Vec<T>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
            let rows =
                stmt.query_map(rusqlite::params_from_iter(sql.args.iter()), |r| r.get(0)).map_err(unavailable)?;
            rows.map(|r| r.map_err(unavailable)).collect()
        })
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("a connection lock was poisoned by a panic".into())
}

/// Read connections kept open for reuse. Each change wakes every watch stream, and each reads the log at
/// once: with fewer kept than streams, every change opened (and set up, and prepared for) a connection per
/// stream beyond the pool. An idle connection holds little (the log's pages are shared by the OS).
const READER_POOL: usize = 32;

/// Refuses a database whose directory others may write to without the sticky bit: they could replace or
/// remove the database and its WAL between two opens. A sticky one (such as /tmp) is only warned about,
/// since there others can still create the `-wal` and `-shm` files before the first open.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let mode = std::fs::metadata(&dir)
        .map_err(|e| StoreError::Unavailable(format!("cannot read the directory {}: {e}", dir.display())))?
        .permissions()
        .mode();
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "its group",
        (false, true) => "every user",
        (true, true) => "its group and every user",
    };
    let message = format!(
        "the directory {} of the store {} is writable by {who} (mode {:04o})",
        dir.display(),
        path.display(),
        mode & 0o7777
    );
    if mode & 0o1000 == 0 {
        return Err(StoreError::Unavailable(format!(
            "{message}, who could replace or remove the database; run chmod g-w,o-w {} or keep the store elsewhere",
            dir.display()
        )));
    }
    eprintln!(
        "warning: {message}; others may create its -wal and -shm files first: keep the store in a directory of its own"
    );
    tracing::warn!("{message}");
    Ok(())
}

/// Creates a new database file readable by its owner only (0600): it holds password hashes and sealed
/// secrets. SQLite gives its `-wal` and `-shm` files the database file's permissions. An existing file that
/// others may read (an earlier build created them 0644) is made 0600 with its `-wal` and `-shm`, with a
/// warning.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let file = std::path::PathBuf::from(name);
                let Ok(meta) = std::fs::metadata(&file) else { continue };
                if meta.permissions().mode() & 0o077 == 0 {
                    continue;
                }
                match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => {
                        let message = format!("{} was readable by others; it is now 0600", file.display());
                        eprintln!("warning: {message}");
                        tracing::warn!("{message}");
                    }
                    Err(e) => {
                        return Err(StoreError::Unavailable(format!(
                            "{} is readable by others and cannot be made 0600 ({e}): it holds password hashes and sealed secrets; chmod 600 it",
                            file.display()
                        )))
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Unavailable(format!("cannot create {}: {e}", path.display()))),
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    // journal_mode returns a row; the other pragmas do not. Switching a new file to WAL needs an exclusive
    // lock and SQLite answers "busy" at once, without the busy timeout, while another process holds it.
    let mut attempt = 0u64;
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
            Ok(mode) => break mode,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 200 =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 + attempt.min(20)));
            }
            Err(e) => return Err(unavailable(e)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!("{} cannot use WAL mode (got {mode})", path.display())));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;").map_err(unavailable)?;
    Ok(conn)
}

/// Applies the embedded migrations. Two processes opening a new file at once race here; the loser sees a
/// busy or "already exists" error and retries against the winner's schema.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let mut last = String::new();
    for attempt in 0..50u64 {
        match embedded::migrations::runner().set_grouped(true).run(conn) {
            Ok(_) => return Ok(()),
            Err(e) => {
                last = e.to_string();
                std::thread::sleep(Duration::from_millis(10 + attempt * 5));
            }
        }
    }
    Err(StoreError::Unavailable(format!("cannot apply migrations: {last}")))
}

fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(sql::HEAD)
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(unavailable)?;
    sql::head_row(row)
}

/// The write connection inside a `BEGIN IMMEDIATE` transaction.
struct SqliteGuard<'a> {
    conn: MutexGuard<'a, Connection>,
    head: Head,
    /// The transaction is still open (rolled back on drop).
    open: bool,
}

impl AppendGuard for SqliteGuard<'_> {
    fn head(&self) -> Head {
        self.head
    }

    fn commit(mut self: Box<Self>, records: &[Record]) -> Result<Head, StoreError> {
        super::check_continues(self.head, records)?;
        {
            let insert =
                format!("INSERT INTO events ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", sql::RECORD_COLUMNS);
            let mut stmt = self.conn.prepare_cached(&insert).map_err(unavailable)?;
            for r in records {
                let c = EventRow::columns(Dialect::Sqlite, r)?;
                stmt.execute(params![
                    c.seq,
                    c.occurred_at,
                    c.kind,
                    c.actor,
                    c.batch_id,
                    c.key,
                    c.envelope,
                    c.prev_hash,
                    c.hash
                ])
                .map_err(unavailable)?;
            }
        }
        self.conn.execute_batch("COMMIT").map_err(unavailable)?;
        self.open = false;
        Ok(records.last().map_or(self.head, |r| Head { seq: r.seq, hash: r.hash }))
    }

    fn data_key_ids(&mut self, subject: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT id FROM data_keys WHERE subject = ?1 ORDER BY id").map_err(unavailable)?;
        let rows = stmt.query_map(params![subject], |r| r.get::<_, String>(0)).map_err(unavailable)?;
        rows.map(|r| r.map_err(unavailable)).collect()
    }

    fn stage_data_keys(&mut self, put: &[DataKeyRow], destroy: &[String]) -> Result<(), StoreError> {
        insert_data_keys(&self.conn, put)?;
        let mut stmt = self.conn.prepare_cached("DELETE FROM data_keys WHERE id = ?1").map_err(unavailable)?;
        for id in destroy {
            stmt.execute(params![id]).map_err(unavailable)?;
        }
        Ok(())
    }
}

impl Drop for SqliteGuard<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl EventStore for SqliteStore {
    fn head(&self) -> Result<Head, StoreError> {
        self.with_reader(read_head)
    }

    fn lock(&self) -> Result<Box<dyn AppendGuard + '_>, StoreError> {
        let conn = self.write.lock().map_err(|_| poisoned())?;
        // Takes SQLite's write lock now (waiting up to the busy timeout for another process's).
        conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
        let mut guard = SqliteGuard { conn, head: Head::EMPTY, open: true };
        guard.head = read_head(&guard.conn)?;
        Ok(Box::new(guard))
    }

    fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.read_records(&sql::read_after(Dialect::Sqlite, after, limit)?, limit.min(super::READ_CHUNK))
    }

    fn visit_after(&self, after: u64, limit: usize, visit: &mut dyn FnMut(RecordRef<'_>)) -> Result<usize, StoreError> {
        self.visit_records(&sql::read_after(Dialect::Sqlite, after, limit)?, visit)
    }

    fn query(&self, q: &LogQuery) -> Result<Vec<Record>, StoreError> {
        sql::query(self, q)
    }

    fn seq_at(&self, time: Timestamp) -> Result<Option<u64>, StoreError> {
        sql::seq_at(self, time)
    }

    fn save_snapshot(&self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let conn = self.write.lock().map_err(|_| poisoned())?;
        conn.execute(
            "INSERT OR REPLACE INTO snapshots (seq, head_hash, digest, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                Dialect::Sqlite.seq_param(snapshot.seq)?,
                &snapshot.head_hash.0[..],
                &snapshot.digest.0[..],
                snapshot.state,
                snapshot.created_at.0
            ],
        )
        .map_err(unavailable)?;
        Ok(())
    }

    fn load_snapshot(&self, at_or_before: u64) -> Result<Option<StoredSnapshot>, StoreError> {
        let at = Dialect::Sqlite.seq_param(super::clamp_seq(at_or_before))?;
        let select =
            format!("SELECT {} FROM snapshots WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1", sql::SNAPSHOT_COLUMNS);
        self.with_reader(|conn| {
            let row = conn
                .query_row(&select, params![at], |r| {
                    Ok(SnapshotRow {
                        seq: r.get(0)?,
                        head_hash: r.get(1)?,
                        digest: r.get(2)?,
                        state: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                })
                .optional()
                .map_err(unavailable)?;
            row.map(SnapshotRow::into_snapshot).transpose()
        })
    }

    fn snapshot_seqs(&self) -> Result<Vec<u64>, StoreError> {
        sql::snapshot_seqs(self)
    }

    fn delete_snapshot(&self, seq: u64) -> Result<(), StoreError> {
        let conn = self.write.lock().map_err(|_| poisoned())?;
        conn.execute("DELETE FROM snapshots WHERE seq = ?1", params![Dialect::Sqlite.seq_param(seq)?])
            .map_err(unavailable)?;
        Ok(())
    }

    fn change_token(&self) -> Result<u64, StoreError> {
        let conn = self.poll.lock().map_err(|_| poisoned())?;
        let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(unavailable)?;
        Ok(u64::try_from(v).unwrap_or_default())
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn free_space(&self) -> Option<u64> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        let stat = nix::sys::statvfs::statvfs(dir).ok()?;
        Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
    }

    fn heartbeats(&self, beats: &[InstanceBeat], forget_before: Option<i64>) -> Result<(), StoreError> {
        let mut conn = self.write.lock().map_err(|_| poisoned())?;
        // One transaction: one sync, and the write lock held once, however many beats.
        let tx = conn.transaction().map_err(unavailable)?;
        if let Some(before) = forget_before {
            tx.execute("DELETE FROM instances WHERE last_seen < ?1", params![before]).map_err(unavailable)?;
        }
        upsert_beats(&tx, beats.iter())?;
        tx.commit().map_err(unavailable)
    }

    fn claim_heartbeats(&self, claims: &[ClaimedBeat]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.write.lock().map_err(|_| poisoned())?;
        // SQLite's write lock from the start (across processes), so that no one writes between the owners
        // read here and the beats written.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(unavailable)?;
        let admitted = {
            let mut owner =
                tx.prepare_cached("SELECT info, last_seen FROM instances WHERE id = ?1").map_err(unavailable)?;
            super::admit(claims, |id| {
                let row = owner
                    .query_row(params![id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .optional()
                    .map_err(unavailable)?;
                Ok::<_, StoreError>(row.map(|(info, seen)| (super::reporter_in(&info), seen)))
            })?
        };
        upsert_beats(&tx, claims.iter().zip(&admitted).filter(|(_, ok)| **ok).map(|(c, _)| &c.beat))?;
        tx.commit().map_err(unavailable)?;
        Ok(admitted)
    }

    fn instances(&self, since: i64) -> Result<Vec<InstanceBeat>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, info, last_seen FROM instances WHERE last_seen >= ?1 ORDER BY id")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))
                .map_err(unavailable)?;
            rows.map(|row| {
                let (id, info, last_seen) = row.map_err(unavailable)?;
                let info = serde_json::from_str(&info).unwrap_or(serde_json::Value::Null);
                Ok(InstanceBeat { id, info, last_seen })
            })
            .collect()
        })
    }

    fn instance(&self, id: &str, since: i64) -> Result<Option<InstanceBeat>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT info, last_seen FROM instances WHERE id = ?1 AND last_seen >= ?2")
                .map_err(unavailable)?;
            let mut rows =
                stmt.query_map(params![id, since], |r| Ok((r.get::<_, String>(0)?, r.get(1)?))).map_err(unavailable)?;
            match rows.next() {
                Some(row) => {
                    let (info, last_seen) = row.map_err(unavailable)?;
                    let info = serde_json::from_str(&info).unwrap_or(serde_json::Value::Null);
                    Ok(Some(InstanceBeat { id: id.to_string(), info, last_seen }))
                }
                None => Ok(None),
            }
        })
    }

    fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        let conn = self.write.lock().map_err(|_| poisoned())?;
        conn.execute("DELETE FROM instances WHERE id = ?1", params![id]).map_err(unavailable)?;
        Ok(())
    }

    fn put_data_keys(&self, rows: &[DataKeyRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.write.lock().map_err(|_| poisoned())?;
        let tx = conn.transaction().map_err(unavailable)?;
        insert_data_keys(&tx, rows)?;
        tx.commit().map_err(unavailable)
    }

    fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE id = ?1"))
                .map_err(unavailable)?;
            let mut rows = stmt.query_map(params![id], data_key_row).map_err(unavailable)?;
            rows.next().transpose().map_err(unavailable)
        })
    }

    fn data_keys(&self) -> Result<Vec<DataKeyRow>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys ORDER BY id"))
                .map_err(unavailable)?;
            let rows = stmt.query_map([], data_key_row).map_err(unavailable)?;
            rows.map(|r| r.map_err(unavailable)).collect()
        })
    }

    fn rewrap_data_keys(&self, rows: &[DataKeyRow]) -> Result<usize, StoreError> {
        let mut conn = self.write.lock().map_err(|_| poisoned())?;
        let tx = conn.transaction().map_err(unavailable)?;
        let mut done = 0;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE data_keys SET master_key = ?2, wrapped = ?3 WHERE id = ?1")
                .map_err(unavailable)?;
            for row in rows {
                done += stmt.execute(params![row.id, row.master_key, row.wrapped]).map_err(unavailable)?;
            }
        }
        tx.commit().map_err(unavailable)?;
        Ok(done)
    }
}

/// Writes `beats`; of an id's beats, the newest is kept, and one older than the stored beat changes nothing.
fn upsert_beats<'b>(conn: &Connection, beats: impl Iterator<Item = &'b InstanceBeat>) -> Result<(), StoreError> {
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO instances (id, info, last_seen) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen \
             WHERE excluded.last_seen >= instances.last_seen",
        )
        .map_err(unavailable)?;
    for beat in beats {
        upsert.execute(params![beat.id, beat.info.to_string(), beat.last_seen]).map_err(unavailable)?;
    }
    Ok(())
}

const DATA_KEY_COLUMNS: &str = "id, subject, master_key, wrapped, created_at";

fn data_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DataKeyRow> {
    Ok(DataKeyRow {
        id: r.get(0)?,
        subject: r.get(1)?,
        master_key: r.get(2)?,
        wrapped: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn insert_data_keys(conn: &Connection, rows: &[DataKeyRow]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("INSERT OR IGNORE INTO data_keys ({DATA_KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"))
        .map_err(unavailable)?;
    for row in rows {
        stmt.execute(params![row.id, row.subject, row.master_key, row.wrapped, row.created_at]).map_err(unavailable)?;
    }
    Ok(())
}
