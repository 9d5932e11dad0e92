DROP TRIGGER hooks_changes_delete;
DROP TRIGGER hooks_changes_update;
DELETE FROM store_counts WHERE name = 'hooks_changes';
