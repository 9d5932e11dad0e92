CREATE TABLE attempts_old (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
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

INSERT INTO attempts_old (id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
    request_headers, request_body, response_code, response_headers, response_body, error, request_body_ref)
SELECT id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
    request_headers, request_body, response_code, response_headers, response_body, error, request_body_ref
FROM attempts;

DROP TABLE attempts;
ALTER TABLE attempts_old RENAME TO attempts;
CREATE INDEX attempts_hook ON attempts (hook_id, id);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
