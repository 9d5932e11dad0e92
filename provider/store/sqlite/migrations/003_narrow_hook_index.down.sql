DROP INDEX deliveries_hook;
CREATE INDEX deliveries_hook ON deliveries (hook_id, state);
