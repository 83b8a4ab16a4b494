-- CometD sessions, shared by every process on this file. The subscriptions are rows of their
-- own so that a subscribe and a connect of one session (possibly handled by two requests at
-- once) each change only their own rows: no read-modify-write of a whole record.

CREATE TABLE cometd_sessions (
    client_id       TEXT    NOT NULL PRIMARY KEY,
    principal       TEXT    NOT NULL,          -- JSON
    principal_key   TEXT    NOT NULL,
    ack             INTEGER NOT NULL CHECK (ack IN (0, 1)),
    cursor_seq      INTEGER NOT NULL CHECK (cursor_seq >= 0),
    connected       INTEGER NOT NULL CHECK (connected IN (0, 1)),
    last_connect_ms INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL
) STRICT;
CREATE INDEX cometd_sessions_by_expiry ON cometd_sessions (expires_at_ms);

CREATE TABLE cometd_subscriptions (
    client_id TEXT    NOT NULL REFERENCES cometd_sessions (client_id) ON DELETE CASCADE,
    pattern   TEXT    NOT NULL,
    since     INTEGER NOT NULL CHECK (since >= 0),
    PRIMARY KEY (client_id, pattern)
) STRICT, WITHOUT ROWID;
