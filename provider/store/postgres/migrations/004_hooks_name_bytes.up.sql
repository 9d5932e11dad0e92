-- Pages of one scope's hooks (store.HookListParams After and Limit) are in byte order of the
-- name, whatever the database's collation: the listing compares and orders by
-- name COLLATE "C". hooks_scope_name is in the database's collation, so it cannot serve that
-- order (an index serves only its own collation, even on a database whose default is C); this
-- one finds a page's first row and reads the page in order, instead of reading and sorting the
-- whole scope. hooks_scope_name stays for uniqueness and the lookups by name.
CREATE INDEX hooks_scope_name_bytes ON hooks (org, project, stack, environment, name COLLATE "C");
