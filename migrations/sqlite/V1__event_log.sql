-- The event log: the only table that holds configuration. Rows are appended, never changed.
-- `envelope` holds the exact bytes that were hashed; the other columns are copies for indexes.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    occurred_at INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    batch_id    TEXT    NOT NULL,
    key         TEXT,
    envelope    BLOB    NOT NULL,
    prev_hash   BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32)
);

CREATE INDEX events_by_key   ON events (key, seq) WHERE key IS NOT NULL;
CREATE INDEX events_by_actor ON events (actor, seq);
CREATE INDEX events_by_time  ON events (occurred_at, seq);
CREATE INDEX events_by_batch ON events (batch_id, seq);

CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE is not allowed');
END;
