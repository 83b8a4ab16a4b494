-- A principal's CometD sessions are counted at every handshake (a cap per user) and ended
-- together when the user's credentials are revoked.
CREATE INDEX cometd_sessions_by_principal ON cometd_sessions (principal_key, expires_at_ms);
