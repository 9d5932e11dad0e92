-- Web console sessions (store.Session), kept in the store so that every process on it knows
-- them. id_hash is the SHA-256 of the session ID (the cookie), never the ID; token_id names the
-- API token signed in with, whose plain text is never stored. Expired rows are deleted by
-- later sign-ins (store.SessionPruneLimit at a time, by expires_at), and a token's oldest
-- sessions beyond its cap by token_id. The table is not copied by `store migrate`: sessions
-- are short-lived, and signing in again on the new store replaces them.
CREATE TABLE console_sessions (
    id_hash    TEXT    PRIMARY KEY,
    token_id   TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_token ON console_sessions (token_id, created_at);
