-- Confer store schema, PostgreSQL. Created in the schema named by the connection's
-- search_path (the store sets it when a schema is configured).
-- Ids, keys and usernames use the "C" collation: byte order, like SQLite's, so paging by id
-- gives the same pages on both backends and does not depend on the server's locale.

CREATE TABLE conferences (
    id            TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    version       BIGINT  NOT NULL CHECK (version >= 0),
    state         JSONB   NOT NULL,
    index_keys    TEXT[]  NOT NULL,          -- as given by the caller
    live          BOOLEAN NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);

-- Who can list a conference. Rows are replaced on every commit (only the ones that changed
-- are written); the primary key serves "conferences under key K ordered by id".
CREATE TABLE conference_index (
    key           TEXT COLLATE "C" NOT NULL,
    conference_id TEXT COLLATE "C" NOT NULL REFERENCES conferences (id) ON DELETE CASCADE,
    PRIMARY KEY (key, conference_id)
);
CREATE INDEX conference_index_by_conference ON conference_index (conference_id);

-- The head of the event log: one row. Every commit that appends events updates it as its last
-- statement, and the row lock it takes is held until COMMIT: this serializes seq allocation
-- with commit, which is what makes commit order equal seq order (see src/postgres.rs).
CREATE TABLE event_head (
    id  SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq BIGINT   NOT NULL CHECK (seq >= 0)
);
INSERT INTO event_head (id, seq) VALUES (1, 0);

-- The event log. seq comes from event_head, never from a sequence (a sequence hands out
-- numbers in allocation order, not commit order).
CREATE TABLE events (
    seq                BIGINT NOT NULL PRIMARY KEY,
    conference_id      TEXT   NOT NULL,
    conference_version BIGINT NOT NULL,
    kind               TEXT   NOT NULL,
    payload            JSONB  NOT NULL,
    committed_at_ms    BIGINT NOT NULL
);

CREATE TABLE idempotency (
    user_id             TEXT   NOT NULL,
    key                 TEXT   NOT NULL,
    request_fingerprint TEXT   NOT NULL,
    response            JSONB  NOT NULL,
    expires_at_ms       BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at_ms);

CREATE TABLE users (
    id            TEXT  COLLATE "C" NOT NULL PRIMARY KEY,
    username      TEXT  COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT  NOT NULL,
    profile       JSONB NOT NULL
);

-- A conference's own events in version order: rebuilding the state at any version (what a
-- notification renderer needs for an event it did not see committed) reads only these rows.
CREATE INDEX events_by_conference ON events (conference_id, conference_version);

-- Small settings every node shares (the session signing key), written once.
CREATE TABLE settings (
    key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
