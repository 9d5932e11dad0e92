DROP INDEX IF EXISTS deliveries_seq;
