-- Fair claims. A delivery carries its organization (its event's), so that a claim can keep one
-- organization under its cap of a worker's slots and skip an organization at its cap while
-- reading the queue, as it skips an endpoint at its cap, from the partial indexes alone. The
-- running index also carries who holds each lease, so the claim counts a worker's holdings
-- per organization without reading the table.
ALTER TABLE deliveries ADD COLUMN org TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET org = (SELECT e.org FROM events e WHERE e.id = deliveries.event_id);

DROP INDEX deliveries_first;
DROP INDEX deliveries_retry;
DROP INDEX deliveries_running;
CREATE INDEX deliveries_first ON deliveries (next_attempt_at, endpoint, org) WHERE state = 'pending' AND attempts = 0;
CREATE INDEX deliveries_retry ON deliveries (next_attempt_at, endpoint, attempts, org) WHERE state = 'pending' AND attempts > 0;
CREATE INDEX deliveries_running ON deliveries (lease_until, endpoint, org, claimed_by) WHERE state = 'running';
