-- store_meta holds values about the store as a whole: the key check value of the key that seals
-- hook secrets (key_check) and the scheme of hooks.secret_digest (digest_scheme). A process whose
-- key does not give key_check refuses to start.
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The secret digest is keyed (HMAC-SHA256 under a key derived from the store key) instead of a
-- plain sha256. The column is renamed; Open recomputes the digests it holds, which needs the key,
-- and records digest_scheme once it has.
ALTER TABLE hooks RENAME COLUMN secret_sha256 TO secret_digest;
