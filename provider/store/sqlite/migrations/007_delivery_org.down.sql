DROP INDEX deliveries_first;
DROP INDEX deliveries_retry;
DROP INDEX deliveries_running;
ALTER TABLE deliveries DROP COLUMN org;
CREATE INDEX deliveries_first ON deliveries (next_attempt_at, endpoint) WHERE state = 'pending' AND attempts = 0;
CREATE INDEX deliveries_retry ON deliveries (next_attempt_at, endpoint, attempts) WHERE state = 'pending' AND attempts > 0;
CREATE INDEX deliveries_running ON deliveries (lease_until, endpoint) WHERE state = 'running';
