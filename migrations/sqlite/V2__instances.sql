-- Live instances and their heartbeats: operational state, kept outside the event log on purpose. Rows are
-- replaced on every heartbeat and removed when an instance stops or goes silent.
CREATE TABLE instances (
    id        TEXT    PRIMARY KEY,
    info      TEXT    NOT NULL,   -- JSON: host, pid, listen address, version, started_at, applied seq, head hash
    last_seen INTEGER NOT NULL    -- microseconds since the Unix epoch, UTC
);
