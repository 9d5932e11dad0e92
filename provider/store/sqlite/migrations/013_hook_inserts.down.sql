DROP TRIGGER hooks_inserts_count;
DELETE FROM store_counts WHERE name = 'hooks_inserts';
