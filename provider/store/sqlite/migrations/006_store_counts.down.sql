DROP TRIGGER hooks_count_delete;
DROP TRIGGER hooks_count_update;
DROP TRIGGER hooks_count_insert;
DROP TRIGGER deliveries_count_delete;
DROP TRIGGER deliveries_count_update;
DROP TABLE store_counts;
