DROP INDEX deployment_requests_event;
DROP INDEX delivery_bodies_event;
DROP INDEX idempotency_keys_created;
DROP INDEX events_created;
