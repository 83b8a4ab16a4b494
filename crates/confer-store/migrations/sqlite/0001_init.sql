-- Confer store schema, SQLite. JSON is stored as TEXT; tables are STRICT so a wrong type is an
-- error instead of a silent conversion.

CREATE TABLE conferences (
    id            TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version >= 0),
    state         TEXT    NOT NULL,          -- JSON snapshot
    index_keys    TEXT    NOT NULL,          -- JSON array of strings, as given by the caller
    live          INTEGER NOT NULL CHECK (live IN (0, 1)),
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- Who can list a conference. Rows are replaced on every commit; the primary key serves
-- "conferences under key K ordered by id".
CREATE TABLE conference_index (
    key           TEXT NOT NULL,
    conference_id TEXT NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    PRIMARY KEY (key, conference_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX conference_index_by_conference ON conference_index (conference_id);

-- The head of the event log: one row, updated by every commit that appends events.
CREATE TABLE event_head (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;
INSERT INTO event_head (id, seq) VALUES (1, 0);

-- The event log. seq is the rowid, assigned by the store (never by AUTOINCREMENT).
CREATE TABLE events (
    seq                INTEGER NOT NULL PRIMARY KEY,
    conference_id      TEXT    NOT NULL,
    conference_version INTEGER NOT NULL,
    kind               TEXT    NOT NULL,
    payload            TEXT    NOT NULL,     -- JSON
    committed_at_ms    INTEGER NOT NULL
) STRICT;

CREATE TABLE idempotency (
    user_id             TEXT    NOT NULL,
    key                 TEXT    NOT NULL,
    request_fingerprint TEXT    NOT NULL,
    response            TEXT    NOT NULL,    -- JSON
    expires_at_ms       INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at_ms);

CREATE TABLE users (
    id            TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    profile       TEXT NOT NULL              -- JSON
) STRICT;

-- A conference's own events in version order: rebuilding the state at any version (what a
-- notification renderer needs for an event it did not see committed) reads only these rows.
CREATE INDEX events_by_conference ON events (conference_id, conference_version);

-- Small settings every node shares (the session signing key), written once.
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
