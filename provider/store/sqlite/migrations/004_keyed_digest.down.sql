-- The digests stay keyed: a plain sha256 cannot be recomputed without the secrets.
ALTER TABLE hooks RENAME COLUMN secret_digest TO secret_sha256;
DROP TABLE store_meta;
