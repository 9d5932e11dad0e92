-- Queue statistics (/readyz, /metrics) read counters instead of counting rows, so their cost
-- does not grow with the delivery history. Triggers keep the counters in the transaction of
-- every change they count, whatever statement makes it: a claim, a completion, a discard, a
-- hook's deletion cascading to its deliveries, a prune. Inserted deliveries are the exception:
-- the statements that insert them (DeliveryInsertMany, AttemptRecord) add them up with one
-- update per batch (insertCounts in emit.go), as a trigger per row would cost a 10,000-hook fan-out
-- more than half again its time.
--
CREATE TABLE store_counts (
    name TEXT    PRIMARY KEY,
    n    INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO store_counts (name, n) VALUES
    ('deliveries_pending', (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')),
    ('deliveries_running', (SELECT COUNT(*) FROM deliveries WHERE state = 'running')),
    ('deliveries_done', (SELECT COUNT(*) FROM deliveries WHERE state IN ('succeeded', 'failed'))),
    ('hooks_disabled', (SELECT COUNT(*) FROM hooks WHERE active = 0 AND disabled_reason != ''));

-- A claim that takes over an expired lease sets running again: no change, nothing counted.
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF state ON deliveries
WHEN OLD.state != NEW.state
BEGIN
    UPDATE store_counts SET n = n - 1
    WHERE name = CASE OLD.state WHEN 'pending' THEN 'deliveries_pending' WHEN 'running' THEN 'deliveries_running' END;
    UPDATE store_counts SET n = n + 1
    WHERE name = CASE
        WHEN NEW.state = 'pending' THEN 'deliveries_pending'
        WHEN NEW.state = 'running' THEN 'deliveries_running'
        WHEN NEW.state IN ('succeeded', 'failed') AND OLD.state NOT IN ('succeeded', 'failed') THEN 'deliveries_done' END;
END;

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
WHEN OLD.state IN ('pending', 'running')
BEGIN
    UPDATE store_counts SET n = n - 1 WHERE name = 'deliveries_' || OLD.state;
END;

CREATE TRIGGER hooks_count_insert AFTER INSERT ON hooks
WHEN NEW.active = 0 AND NEW.disabled_reason != ''
BEGIN
    UPDATE store_counts SET n = n + 1 WHERE name = 'hooks_disabled';
END;

CREATE TRIGGER hooks_count_update AFTER UPDATE OF active, disabled_reason ON hooks
WHEN (OLD.active = 0 AND OLD.disabled_reason != '') != (NEW.active = 0 AND NEW.disabled_reason != '')
BEGIN
    UPDATE store_counts SET n = n + CASE WHEN NEW.active = 0 AND NEW.disabled_reason != '' THEN 1 ELSE -1 END
    WHERE name = 'hooks_disabled';
END;

CREATE TRIGGER hooks_count_delete AFTER DELETE ON hooks
WHEN OLD.active = 0 AND OLD.disabled_reason != ''
BEGIN
    UPDATE store_counts SET n = n - 1 WHERE name = 'hooks_disabled';
END;
