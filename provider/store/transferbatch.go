package store

// TransferBatchSizeDefault is the export's batch size when TransferExportParams leaves it 0,
// in every backend.
const TransferBatchSizeDefault = 500

// TransferTables are the tables that hold records, in export order, each with the field of
// its count in TransferCounts. Every backend names its tables so.
var TransferTables = []struct {
	Table string
	Count func(*TransferCounts) *int
}{
	{"hooks", func(c *TransferCounts) *int { return &c.Hooks }},
	{"tokens", func(c *TransferCounts) *int { return &c.Tokens }},
	{"events", func(c *TransferCounts) *int { return &c.Events }},
	{"deliveries", func(c *TransferCounts) *int { return &c.Deliveries }},
	{"attempts", func(c *TransferCounts) *int { return &c.Attempts }},
	{"deployment_requests", func(c *TransferCounts) *int { return &c.DeploymentRequests }},
	{"deployments", func(c *TransferCounts) *int { return &c.Deployments }},
	{"deployment_settings", func(c *TransferCounts) *int { return &c.DeploymentSettings }},
	{"drift_schedules", func(c *TransferCounts) *int { return &c.DriftSchedules }},
	{"watch_cursors", func(c *TransferCounts) *int { return &c.WatchCursors }},
	{"idempotency_keys", func(c *TransferCounts) *int { return &c.IdempotencyKeys }},
}

// TransferNotCopied are the tables of the backends that a transfer does not copy as records
// of their own, each with the reason. With TransferTables they name every table of every
// backend (each backend's tests check its schema against both), so that a new table is copied
// or left out on purpose.
var TransferNotCopied = map[string]string{
	"console_sessions":     "web console sessions are short-lived sign-ins: people sign in again on the new store",
	"delivery_bodies":      "deliveries and attempts carry their bodies, which the importing store shares again",
	"schema_migrations":    "each store has its own schema",
	"store_meta":           "the key check value is compared (TransferKeyCheck), not copied",
	"store_counts":         "SQLite's counters: the importing store's own move on to cover the records",
	"delivery_done_counts": "PostgreSQL's counters: the importing store's own move on to cover the records",
	"holders":              "the processes holding claims in the exporting store hold none in the new one",
	"sqlite_sequence":      "SQLite's own bookkeeping",
}

// TransferBatcher gathers an export's records, one at a time, into batches for fn: a batch is
// handed over once it has size records and the next record does not belong with it (the
// deliveries of one event are never split, TransferBatch.SplitsEvent).
type TransferBatcher struct {
	size  int
	n     int
	batch *TransferBatch
	fn    func(*TransferBatch) error
}

// NewTransferBatcher returns a batcher of p.BatchSize records (TransferBatchSizeDefault for 0
// or less) for fn.
func NewTransferBatcher(p TransferExportParams, fn func(*TransferBatch) error) *TransferBatcher {
	size := p.BatchSize
	if size <= 0 {
		size = TransferBatchSizeDefault
	}
	return &TransferBatcher{size: size, batch: &TransferBatch{}, fn: fn}
}

// Add adds one record (a batch holding one record), first handing the batch so far to fn
// when it is full; fn's error is returned as it is.
func (b *TransferBatcher) Add(rec *TransferBatch) error {
	if b.n >= b.size && !b.batch.SplitsEvent(rec) {
		if err := b.fn(b.batch); err != nil {
			return err
		}
		b.batch, b.n = &TransferBatch{}, 0
	}
	b.batch.Append(rec)
	b.n++
	return nil
}

// Flush hands the last batch to fn, if it holds any record.
func (b *TransferBatcher) Flush() error {
	if b.n == 0 {
		return nil
	}
	return b.fn(b.batch)
}
