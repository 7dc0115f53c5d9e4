-- Data keys: one random key per secret's subject (a setting, an entity's credentials), wrapped by a master
-- key. Values sealed under a data key name it (cfgl2:<id>:...). They live outside the event log on purpose:
-- shredding a subject deletes its rows in the transaction that appends its SecretShredded event, after which
-- no key can open that subject's ciphertexts anywhere in the log. A rotation re-wraps rows in place.
CREATE TABLE data_keys (
    id         TEXT   PRIMARY KEY,
    subject    TEXT   NOT NULL,   -- a qualified setting key, or KIND/NAME
    master_key TEXT   NOT NULL,   -- the id of the master key that wraps it
    wrapped    TEXT   NOT NULL,   -- cfgl1:<master key>:<nonce and ciphertext>, bound to id and subject
    created_at INTEGER NOT NULL    -- microseconds since the Unix epoch, UTC
);
CREATE INDEX data_keys_subject ON data_keys (subject);
