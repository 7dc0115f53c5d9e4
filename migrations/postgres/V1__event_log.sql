-- The event log: the only table that holds configuration. Rows are appended, never changed.
-- `envelope` holds the exact bytes that were hashed (bytea, never jsonb, which would reorder keys); the other
-- columns are copies for indexes. The same shape as migrations/sqlite/V1__event_log.sql.
CREATE TABLE events (
    seq         BIGINT  PRIMARY KEY CHECK (seq > 0),
    occurred_at BIGINT  NOT NULL,   -- microseconds since the Unix epoch, UTC
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    batch_id    TEXT    NOT NULL,
    key         TEXT,
    envelope    BYTEA   NOT NULL,
    prev_hash   BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    hash        BYTEA   NOT NULL CHECK (length(hash) = 32)
);

CREATE INDEX events_by_key   ON events (key, seq) WHERE key IS NOT NULL;
CREATE INDEX events_by_actor ON events (actor, seq);
CREATE INDEX events_by_time  ON events (occurred_at, seq);
CREATE INDEX events_by_batch ON events (batch_id, seq);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % is not allowed', TG_OP;
END
$$;

CREATE TRIGGER events_reject_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_reject_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_reject_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
