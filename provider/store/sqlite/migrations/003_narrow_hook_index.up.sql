-- deliveries_hook held (hook_id, state), so every claim and every completion moved each
-- delivery's entry in it: two more index writes per state change, and more pages per commit.
-- It now holds hook_id alone, which deleting a hook (the cascade) needs and state changes never
-- touch. Discarding a hook's queued deliveries reads them from the queue's partial indexes.
DROP INDEX deliveries_hook;
CREATE INDEX deliveries_hook ON deliveries (hook_id);
