DROP TABLE holders, drift_schedules, deployments, deployment_settings, watch_cursors, delivery_done_counts,
    store_meta, tokens, idempotency_keys, deployment_requests, attempts, deliveries, delivery_bodies, events, hooks;
DROP FUNCTION deliveries_done_inserted(), deliveries_done_updated();
