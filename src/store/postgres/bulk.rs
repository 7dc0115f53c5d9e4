//! Filling an empty PostgreSQL log in one transaction ([`EventStore::bulk_load`]), as a mirror into a new
//! database does: the rows go in through one `COPY … FROM STDIN BINARY`, and the log's primary key and
//! indexes, dropped inside the same transaction, are built once at the end from sorted input instead of
//! being maintained row by row (which was about 70% of the server's work for an append-by-append copy).
//!
//! The connection lives on a thread of its own, fed through a short bounded queue, so the caller's reading
//! and checking of the next chunk overlaps the encoding and sending of this one. Nothing is visible until
//! the COMMIT: a load dropped or failed halfway rolls back, indexes included, and leaves the log empty.
//!
//! [`EventStore::bulk_load`]: crate::store::EventStore::bulk_load

use super::{described, unavailable, PgStore, APPEND_LOCK, CHANNEL, SETTLE_FOR};
use crate::store::sql::{self, Dialect, EventRow};
use crate::store::{BulkLoad, StoreError};
use cfgledger_events::{Head, Record};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Transaction};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Chunks queued between the caller and the connection's thread: enough to keep both busy, few enough that
/// a slow database holds the reader back instead of filling memory.
const QUEUED: usize = 2;

/// Memory for each deferred index build (PostgreSQL's default, 64 MB, spills a million-row sort to disk).
/// Set for this transaction only.
const INDEX_BUILD_MEMORY: &str = "256MB";

/// The column types of [`sql::RECORD_COLUMNS`], in order.
const TYPES: [Type; 9] =
    [Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA, Type::BYTEA, Type::BYTEA];

enum Message {
    Records(Vec<Record>),
    Done,
}

/// How the connection's thread ended.
enum Ended {
    Committed(Head),
    /// The COMMIT got no answer: the log says whether the load ending with this record is in it.
    CommitLost {
        last: Record,
        cause: String,
    },
    Failed(StoreError),
}

/// A load in progress: the queue to the connection's thread, and the thread.
pub(super) struct PgBulkLoad<'a> {
    /// Where a lost COMMIT is settled.
    store: &'a PgStore,
    queue: Option<SyncSender<Message>>,
    worker: Option<JoinHandle<Ended>>,
}

impl PgBulkLoad<'_> {
    /// Starts the load on `client`, a connection of its own to `store`'s database.
    pub(super) fn start(store: &PgStore, client: Client) -> Result<PgBulkLoad<'_>, StoreError> {
        let (queue, received) = sync_channel(QUEUED);
        let worker = std::thread::Builder::new()
            .name("cfgledger-bulk-load".into())
            .spawn(move || match load(client, received) {
                Ok(ended) => ended,
                Err(e) => Ended::Failed(e),
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the bulk load's thread: {e}")))?;
        Ok(PgBulkLoad { store, queue: Some(queue), worker: Some(worker) })
    }

    /// How the connection's thread ended; a lost COMMIT is looked up in the log, as an append's is.
    fn join(&mut self) -> Result<Head, StoreError> {
        let worker = self.worker.take().ok_or_else(|| StoreError::Unavailable("the bulk load already ended".into()))?;
        match worker.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
            Ended::Committed(head) => Ok(head),
            Ended::Failed(e) => Err(e),
            Ended::CommitLost { last, cause } => match self.store.settle(&last) {
                Ok(true) => Ok(Head { seq: last.seq, hash: last.hash }),
                Ok(false) => Err(StoreError::Unavailable(format!("{cause}; the log shows that nothing was written"))),
                Err(asking) => Err(StoreError::OutcomeUnknown(format!(
                    "the COMMIT of the bulk load got no answer ({cause}), and the database could not be asked within \
                     {} s whether it was written ({asking}): the log holds either none of the records or all of them \
                     up to seq {}; a mirror run again goes on from whichever it is",
                    SETTLE_FOR.as_secs(),
                    last.seq
                ))),
            },
        }
    }
}

impl BulkLoad for PgBulkLoad<'_> {
    fn write(&mut self, records: Vec<Record>) -> Result<(), StoreError> {
        let sent = match &self.queue {
            Some(queue) => queue.send(Message::Records(records)).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped taking records: it failed, and says why.
        self.queue = None;
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(StoreError::Unavailable("the bulk load ended before its records were all written".into())),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<Head, StoreError> {
        if let Some(queue) = self.queue.take() {
            // A thread that already failed is no longer listening; its error is what `join` returns.
            let _ = queue.send(Message::Done);
        }
        self.join()
    }
}

impl Drop for PgBulkLoad<'_> {
    /// A load abandoned before `finish`: the thread sees the queue close, aborts the `COPY` and rolls back;
    /// waiting for it means the write lock is free again when the drop returns.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The connection's thread: the transaction from the write lock to the COMMIT.
fn load(mut client: Client, queue: Receiver<Message>) -> Result<Ended, StoreError> {
    let mut tx = client.transaction().map_err(unavailable)?;
    // One statement streams the whole log and the builds follow it: a timeout the role or database sets
    // for ordinary statements (common on managed PostgreSQL) would cancel every long load, and a rerun would
    // start over and fail the same way. They are lifted for this transaction only, as restore tools do.
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; \
         SET LOCAL idle_in_transaction_session_timeout = 0; SELECT pg_advisory_xact_lock({APPEND_LOCK})"
    ))
    .map_err(unavailable)?;
    let row = tx.query_opt(sql::HEAD, &[]).map_err(unavailable)?;
    let actual = sql::head_row(row.map(|r| (r.get(0), r.get(1))))?;
    if actual != Head::EMPTY {
        return Err(StoreError::Conflict { expected: Head::EMPTY, actual });
    }
    let deferred = Deferred::take_down(&mut tx)?;
    let Some(last) = copy_rows(&mut tx, &queue)? else {
        // Nothing to load: nothing to commit.
        return Ok(Ended::Committed(Head::EMPTY));
    };
    deferred.build(&mut tx)?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.seq.to_string()]).map_err(unavailable)?;
    match tx.commit() {
        Ok(()) => Ok(Ended::Committed(Head { seq: last.seq, hash: last.hash })),
        Err(e) => Ok(Ended::CommitLost { last, cause: described(&e) }),
    }
}

/// Streams the queued records into one `COPY`, each checked to continue the one before (seq and link; the
/// caller checked the hashes). Returns the last record, if there was one.
fn copy_rows(tx: &mut Transaction<'_>, queue: &Receiver<Message>) -> Result<Option<Record>, StoreError> {
    let sink = tx.copy_in(&format!("COPY events ({}) FROM STDIN BINARY", sql::RECORD_COLUMNS)).map_err(unavailable)?;
    // Dropped without `finish`, the writer aborts the COPY.
    let mut writer = BinaryCopyInWriter::new(sink, &TYPES);
    let mut head = Head::EMPTY;
    let mut last = None;
    loop {
        let mut records = match queue.recv() {
            Ok(Message::Records(records)) => records,
            Ok(Message::Done) => break,
            Err(_) => {
                return Err(StoreError::Unavailable("the bulk load was abandoned: nothing was written".into()));
            }
        };
        for r in &records {
            if r.seq != head.seq + 1 || r.prev_hash != head.hash {
                return Err(StoreError::Corrupt(format!(
                    "bulk load refused: seq {} does not continue the log at seq {}",
                    r.seq, head.seq
                )));
            }
            let c = EventRow::columns(Dialect::Postgres, r)?;
            writer
                .write(&[
                    &c.seq,
                    &c.occurred_at,
                    &c.kind,
                    &c.actor,
                    &c.batch_id,
                    &c.key,
                    &c.envelope,
                    &c.prev_hash,
                    &c.hash,
                ])
                .map_err(unavailable)?;
            head = Head { seq: r.seq, hash: r.hash };
        }
        if let Some(r) = records.pop() {
            last = Some(r);
        }
    }
    writer.finish().map_err(unavailable)?;
    Ok(last)
}

/// The log's primary key and indexes, dropped for the load and built again before its COMMIT, each from
/// the definition the database itself gives (`pg_get_indexdef`, `pg_get_constraintdef`), so a migration that
/// adds a plain index needs nothing here. What those definitions leave out (a tablespace, a replica identity
/// or clustering on an index) would not survive; the log's indexes have none of it.
struct Deferred {
    /// The primary key's quoted name and its definition (`PRIMARY KEY (seq)`).
    primary: Option<(String, String)>,
    /// Each other index's `CREATE INDEX` statement.
    indexes: Vec<String>,
}

impl Deferred {
    /// Drops them, when this role owns the log's table (only an owner may); otherwise they stay and are
    /// maintained row by row, which is slower but still one `COPY`.
    fn take_down(tx: &mut Transaction<'_>) -> Result<Deferred, StoreError> {
        let owned: bool = tx
            .query_one("SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = 'events'::regclass", &[])
            .map_err(unavailable)?
            .get(0);
        if !owned {
            return Ok(Deferred { primary: None, indexes: Vec::new() });
        }
        let primary = tx
            .query_opt(
                "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE conrelid = 'events'::regclass AND contype = 'p'",
                &[],
            )
            .map_err(unavailable)?
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
        // Indexes that back a constraint go with it.
        let rows = tx
            .query(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
                 WHERE i.indrelid = 'events'::regclass \
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
                 ORDER BY i.indexrelid",
                &[],
            )
            .map_err(unavailable)?;
        let mut indexes = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0);
            tx.batch_execute(&format!("DROP INDEX {name}")).map_err(unavailable)?;
            indexes.push(row.get(1));
        }
        if let Some((name, _)) = &primary {
            tx.batch_execute(&format!("ALTER TABLE events DROP CONSTRAINT {name}")).map_err(unavailable)?;
        }
        Ok(Deferred { primary, indexes })
    }

    /// Builds them again: the primary key first, which also checks that no seq came twice.
    fn build(self, tx: &mut Transaction<'_>) -> Result<(), StoreError> {
        if self.primary.is_none() && self.indexes.is_empty() {
            return Ok(());
        }
        tx.batch_execute(&format!("SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")).map_err(unavailable)?;
        if let Some((name, definition)) = &self.primary {
            tx.batch_execute(&format!("ALTER TABLE events ADD CONSTRAINT {name} {definition}")).map_err(unavailable)?;
        }
        for statement in &self.indexes {
            tx.batch_execute(statement).map_err(unavailable)?;
        }
        Ok(())
    }
}
