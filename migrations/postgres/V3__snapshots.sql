-- Checkpoints of the projection: the state after the event at `seq`, with the hash of that event and a
-- digest of the state. A cache, not a record: rows may be replaced or deleted, and a row that fails its
-- digest or whose head hash is not the log's is ignored and rebuilt. Deleting them all changes only speed.
-- The same shape as migrations/sqlite/V3__snapshots.sql.
CREATE TABLE snapshots (
    seq        BIGINT  PRIMARY KEY CHECK (seq > 0),
    head_hash  BYTEA   NOT NULL CHECK (length(head_hash) = 32),
    digest     BYTEA   NOT NULL CHECK (length(digest) = 32),
    state      BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL   -- microseconds since the Unix epoch, UTC
);

-- Prefix queries on the audit index (`key=LOG_*`, `key=tools/*`) compare bytes, whatever the database's
-- collation: a range over this index finds them.
CREATE INDEX events_by_key_bytes ON events ((key COLLATE "C"), seq) WHERE key IS NOT NULL;

-- Audit queries by action read events of a kind newest first (`.env` seeding for a key's history, rejected
-- attempts): without this index they walk the whole log.
CREATE INDEX events_by_kind ON events (kind, seq);
