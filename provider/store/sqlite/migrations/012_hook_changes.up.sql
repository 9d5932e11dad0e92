-- hooks_changes counts the updates and deletions of webhooks, by any statement of any process.
-- The delivery loop keeps each hook's URL, opened secret and active flag between its rounds
-- (hookCache in claim.go) while this counter and the store's key stay the same: one read of
-- one row instead of reading and opening every claimed delivery's hook again. Inserts are not
-- counted: a new hook's id is in no cache, and an id is only reused after a deletion, which is.
INSERT INTO store_counts (name, n) VALUES ('hooks_changes', 0);

CREATE TRIGGER hooks_changes_update AFTER UPDATE ON hooks
BEGIN
    UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_changes';
END;

CREATE TRIGGER hooks_changes_delete AFTER DELETE ON hooks
BEGIN
    UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_changes';
END;
