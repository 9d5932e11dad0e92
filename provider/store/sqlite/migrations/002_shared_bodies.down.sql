-- Copy every shared body back into its rows before the references go away.
UPDATE attempts SET request_body = (
    SELECT CASE d.body_ref
        WHEN 0 THEN d.body
        WHEN -1 THEN (SELECT e.payload FROM events e WHERE e.id = d.event_id)
        ELSE (SELECT b.body FROM delivery_bodies b WHERE b.id = d.body_ref) END
    FROM deliveries d WHERE d.id = attempts.delivery_id)
WHERE request_body_ref = 1;
UPDATE deliveries SET body = CASE body_ref
        WHEN -1 THEN (SELECT e.payload FROM events e WHERE e.id = deliveries.event_id)
        ELSE (SELECT b.body FROM delivery_bodies b WHERE b.id = deliveries.body_ref) END
WHERE body_ref != 0;
ALTER TABLE attempts DROP COLUMN request_body_ref;
ALTER TABLE deliveries DROP COLUMN body_ref;
DROP TABLE IF EXISTS delivery_bodies;
