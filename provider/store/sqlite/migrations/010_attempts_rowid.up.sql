-- attempts drops AUTOINCREMENT. With it every recorded attempt also read and rewrote the
-- attempts row of sqlite_sequence: one more page (a WAL frame) in every delivery round. An id
-- is now the largest in use plus one. It is still only ever compared as "older than the
-- cursor" (AttemptList pages newest first with Before), so an id reused after the newest
-- attempts were deleted (a deleted hook, retention) is newer than every cursor handed out
-- while the old row existed and never shows up in an older page.
--
-- SQLite cannot drop AUTOINCREMENT in place: the table is rebuilt with the same columns, rows
-- and indexes. Nothing references attempts, so the foreign keys stay valid throughout.
CREATE TABLE attempts_new (
    id               INTEGER PRIMARY KEY, -- the paging cursor: newest first, Before = last id seen
    delivery_id      TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    hook_id          INTEGER NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    filter           TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ns      INTEGER NOT NULL,
    request_url      TEXT    NOT NULL DEFAULT '',
    request_headers  TEXT    NOT NULL DEFAULT '{}',
    request_body     BLOB,
    response_code    INTEGER NOT NULL DEFAULT 0,
    response_headers TEXT    NOT NULL DEFAULT '{}',
    response_body    BLOB,
    error            TEXT    NOT NULL DEFAULT '',
    request_body_ref INTEGER NOT NULL DEFAULT 0
);

INSERT INTO attempts_new (id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
    request_headers, request_body, response_code, response_headers, response_body, error, request_body_ref)
SELECT id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
    request_headers, request_body, response_code, response_headers, response_body, error, request_body_ref
FROM attempts;

DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;
CREATE INDEX attempts_hook ON attempts (hook_id, id);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
