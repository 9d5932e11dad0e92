-- hooks_inserts counts the webhooks created, by any statement of any process. With
-- hooks_changes (migration 012: updates and deletions) it tells when the hooks an event could
-- reach may have changed: emits keep each scope's candidate hooks between events
-- (candidateCache in candidates.go) while both counters stay the same, instead of reading and
-- decoding them again in every emit's write transaction. A store whose schema lacks this row
-- (migrated down) keeps nothing.
INSERT INTO store_counts (name, n) VALUES ('hooks_inserts', 0);

CREATE TRIGGER hooks_inserts_count AFTER INSERT ON hooks
BEGIN
    UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_inserts';
END;
