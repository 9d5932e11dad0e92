-- Bodies are stored once per event instead of once per delivery.
--
-- deliveries.body_ref says where a delivery's body is: 0 in deliveries.body (a body only this
-- delivery has), -1 the event's payload (a raw-format delivery), > 0 the delivery_bodies row
-- with that id (a rendered body several deliveries of one event share). A fan-out to 10,000
-- hooks then writes one body, not 10,000 copies of it.
ALTER TABLE deliveries ADD COLUMN body_ref INTEGER NOT NULL DEFAULT 0;

CREATE TABLE delivery_bodies (
    id       INTEGER PRIMARY KEY,
    event_id TEXT    NOT NULL REFERENCES events (id),
    body     BLOB    NOT NULL
);

-- attempts.request_body_ref 1 means the request body was exactly the delivery's body and is
-- read from there (request_body is NULL); 0 means request_body holds it.
ALTER TABLE attempts ADD COLUMN request_body_ref INTEGER NOT NULL DEFAULT 0;
