-- The log's text columns compare bytewise (collation "C"), as SQLite's BINARY collation does, whatever the
-- database's own collation is. Equality is unchanged (both collations are deterministic); what changes is
-- order and cost:
-- - prefix queries on the audit index (`key=LOG_*`, `key=tools/*`) are ranges over the plain `key` index, so
--   the expression index `events_by_key_bytes` that V3 added for them is one index too many and goes;
-- - comparing bytes is about half the CPU of comparing through the C library's collation, in every index
--   insert of an append and in every index build of a bulk load (`clone --mirror`).
-- Changing only the collation rewrites no row; PostgreSQL rebuilds the indexes on these columns, under the
-- table's lock, once.
DROP INDEX IF EXISTS events_by_key_bytes;
ALTER TABLE events
    ALTER COLUMN kind     TYPE TEXT COLLATE "C",
    ALTER COLUMN actor    TYPE TEXT COLLATE "C",
    ALTER COLUMN batch_id TYPE TEXT COLLATE "C",
    ALTER COLUMN key      TYPE TEXT COLLATE "C";
