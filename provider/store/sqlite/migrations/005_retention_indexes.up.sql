-- Retention (HistoryDeleteBefore) finds old events and idempotency keys by age, and deletes an
-- event's shared bodies and deployment requests by event: indexes for each.
CREATE INDEX events_created ON events (created_at);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX delivery_bodies_event ON delivery_bodies (event_id);
CREATE INDEX deployment_requests_event ON deployment_requests (event_id);
