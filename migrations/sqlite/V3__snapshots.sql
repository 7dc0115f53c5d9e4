-- Checkpoints of the projection: the state after the event at `seq`, with the hash of that event and a
-- digest of the state. A cache, not a record: rows may be replaced or deleted, and a row that fails its
-- digest or whose head hash is not the log's is ignored and rebuilt. Deleting them all changes only speed.
CREATE TABLE snapshots (
    seq        INTEGER PRIMARY KEY CHECK (seq > 0),
    head_hash  BLOB    NOT NULL CHECK (length(head_hash) = 32),
    digest     BLOB    NOT NULL CHECK (length(digest) = 32),
    state      BLOB    NOT NULL,
    created_at INTEGER NOT NULL   -- microseconds since the Unix epoch, UTC
);

-- Audit queries by action read events of a kind newest first (`.env` seeding for a key's history, rejected
-- attempts): without this index they walk the whole log.
CREATE INDEX events_by_kind ON events (kind, seq);
