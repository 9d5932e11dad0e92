-- A claim marks its picks running by seq (claimUpdateSQL: seq = ANY($4)); without an index on
-- seq that is a scan of every delivery, so a round's cost grew with the history: 0.79 s per
-- round at 1,000,000 stored deliveries (BenchmarkClaimAt1M), against 5 ms with it.
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_seq ON deliveries (seq);
