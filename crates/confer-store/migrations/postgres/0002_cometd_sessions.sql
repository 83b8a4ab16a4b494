-- CometD sessions, shared by every node: a client's next /meta/connect may land on any node.
-- The subscriptions are rows of their own so that a subscribe on one node and a held connect
-- on another each change only their own rows: no read-modify-write of a whole record.

CREATE TABLE cometd_sessions (
    client_id       TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    principal       JSONB   NOT NULL,
    principal_key   TEXT    NOT NULL,
    ack             BOOLEAN NOT NULL,
    cursor_seq      BIGINT  NOT NULL CHECK (cursor_seq >= 0),
    connected       BOOLEAN NOT NULL,
    last_connect_ms BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL
);
CREATE INDEX cometd_sessions_by_expiry ON cometd_sessions (expires_at_ms);

CREATE TABLE cometd_subscriptions (
    client_id TEXT   COLLATE "C" NOT NULL REFERENCES cometd_sessions (client_id) ON DELETE CASCADE,
    pattern   TEXT   COLLATE "C" NOT NULL,
    since     BIGINT NOT NULL CHECK (since >= 0),
    PRIMARY KEY (client_id, pattern)
);
