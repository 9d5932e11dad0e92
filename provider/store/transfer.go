package store

import (
	"context"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Transfer: copying a whole store into another (`pulumi-webhooks store migrate`, from SQLite
// to PostgreSQL). A backend exports every record it holds, in the domain's terms rather than
// its tables', and imports batches of them, so any backend can be copied into any other.
// Secrets travel sealed, as they are stored: both stores must use the same key, which the
// import checks through the key check values.

// SealedHook is a hook with its secret as stored: sealed with the store's key and bound to the
// hook's scope and name (nil when it has none). Hook.SecretDigest travels with it.
type SealedHook struct {
	Hook
	SealedSecret []byte
}

// SealedDeploymentSettings are a stack's deployment settings with their secrets as stored:
// the JSON object of path to value, sealed with the store's key and bound to the stack (nil
// when there are none).
type SealedDeploymentSettings struct {
	Stack         webhook.Scope
	Settings      []byte
	SealedSecrets []byte
	SecretDigests map[string]string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// IdempotencyKey is the response stored for an Idempotency-Key of an organization.
type IdempotencyKey struct {
	Org       string
	Key       string
	Response  []byte
	CreatedAt time.Time
}

// TransferBatch is a batch of records of any kinds. Attempt IDs, hook IDs and deployment
// versions are kept as they are: deliveries and attempts refer to hooks by ID, and attempt
// IDs are the delivery log's paging cursor.
type TransferBatch struct {
	Hooks              []*SealedHook
	Tokens             []*Token
	Events             []*Event
	Deliveries         []*Delivery
	Attempts           []*Attempt
	DeploymentRequests []*DeploymentRequest
	Deployments        []*Deployment
	DeploymentSettings []*SealedDeploymentSettings
	DriftSchedules     []*DriftSchedule
	WatchCursors       []*WatchCursor
	IdempotencyKeys    []*IdempotencyKey
}

// Append adds o's records to b's.
func (b *TransferBatch) Append(o *TransferBatch) {
	b.Hooks = append(b.Hooks, o.Hooks...)
	b.Tokens = append(b.Tokens, o.Tokens...)
	b.Events = append(b.Events, o.Events...)
	b.Deliveries = append(b.Deliveries, o.Deliveries...)
	b.Attempts = append(b.Attempts, o.Attempts...)
	b.DeploymentRequests = append(b.DeploymentRequests, o.DeploymentRequests...)
	b.Deployments = append(b.Deployments, o.Deployments...)
	b.DeploymentSettings = append(b.DeploymentSettings, o.DeploymentSettings...)
	b.DriftSchedules = append(b.DriftSchedules, o.DriftSchedules...)
	b.WatchCursors = append(b.WatchCursors, o.WatchCursors...)
	b.IdempotencyKeys = append(b.IdempotencyKeys, o.IdempotencyKeys...)
}

// SplitsEvent reports whether starting a new batch before next would split the deliveries of
// one event between two batches: next is a delivery of the event of b's last delivery.
// Exports keep an event's deliveries in one batch, so that an import can share the bodies
// they have in common as an emit does.
func (b *TransferBatch) SplitsEvent(next *TransferBatch) bool {
	return len(b.Deliveries) > 0 && len(next.Deliveries) > 0 &&
		b.Deliveries[len(b.Deliveries)-1].EventID == next.Deliveries[0].EventID
}

// Counts returns how many records of each kind b holds.
func (b *TransferBatch) Counts() TransferCounts {
	return TransferCounts{
		Hooks: len(b.Hooks), Tokens: len(b.Tokens), Events: len(b.Events), Deliveries: len(b.Deliveries),
		Attempts: len(b.Attempts), DeploymentRequests: len(b.DeploymentRequests), Deployments: len(b.Deployments),
		DeploymentSettings: len(b.DeploymentSettings), DriftSchedules: len(b.DriftSchedules),
		WatchCursors: len(b.WatchCursors), IdempotencyKeys: len(b.IdempotencyKeys),
	}
}

// TransferCounts counts records by kind.
type TransferCounts struct {
	Hooks, Tokens, Events, Deliveries, Attempts, DeploymentRequests, Deployments, DeploymentSettings,
	DriftSchedules, WatchCursors, IdempotencyKeys int
}

// TransferCount is one kind's count, for printing.
type TransferCount struct {
	Kind string
	N    int
}

// List returns the counts in export order, named.
func (c TransferCounts) List() []TransferCount {
	return []TransferCount{
		{"hooks", c.Hooks}, {"tokens", c.Tokens}, {"events", c.Events}, {"deliveries", c.Deliveries},
		{"attempts", c.Attempts}, {"deployment requests", c.DeploymentRequests}, {"deployments", c.Deployments},
		{"deployment settings", c.DeploymentSettings}, {"drift schedules", c.DriftSchedules},
		{"watch cursors", c.WatchCursors}, {"idempotency keys", c.IdempotencyKeys},
	}
}

// Total is the number of records of every kind.
func (c TransferCounts) Total() int {
	n := 0
	for _, k := range c.List() {
		n += k.N
	}
	return n
}

// Add returns c + o.
func (c TransferCounts) Add(o TransferCounts) TransferCounts {
	return TransferCounts{
		Hooks: c.Hooks + o.Hooks, Tokens: c.Tokens + o.Tokens, Events: c.Events + o.Events,
		Deliveries: c.Deliveries + o.Deliveries, Attempts: c.Attempts + o.Attempts,
		DeploymentRequests: c.DeploymentRequests + o.DeploymentRequests, Deployments: c.Deployments + o.Deployments,
		DeploymentSettings: c.DeploymentSettings + o.DeploymentSettings, DriftSchedules: c.DriftSchedules + o.DriftSchedules,
		WatchCursors: c.WatchCursors + o.WatchCursors, IdempotencyKeys: c.IdempotencyKeys + o.IdempotencyKeys,
	}
}

// TransferExportParams exports a store. BatchSize bounds the records of one batch (0: a
// backend default; SQLite: 500), except that the deliveries of one event are never split
// between batches (a fan-out's deliveries come in one batch, however many).
type TransferExportParams struct {
	BatchSize int
}

// TransferImportParams imports one batch. KeyCheck is the key check value of the exporting
// store (TransferKeyCheck): the importing store refuses with ErrKeyMismatch unless its own key
// has the same one, since the sealed secrets would not open.
type TransferImportParams struct {
	KeyCheck string
	Batch    *TransferBatch
}

// TransferImportResult says what one import wrote.
type TransferImportResult struct {
	// Inserted counts the records written; Existing those the store already had (same key:
	// hook ID, token ID, event ID, ..., (org, key) for idempotency keys, (backend, stack) for
	// watch cursors), which are kept as they are.
	Inserted, Existing TransferCounts
}

// Transfer is implemented by every backend beside Store.
type Transfer interface {
	// TransferKeyCheck returns the key check value (secretbox.Box.Check) of this store's key.
	TransferKeyCheck(ctx context.Context) (string, error)
	// TransferCount counts the records of each kind the store holds.
	TransferCount(ctx context.Context) (TransferCounts, error)
	// TransferExport calls fn with every record of the store, batch by batch, read from one
	// consistent snapshot, every record after those it refers to: hooks, tokens, events,
	// deliveries, attempts, deployment requests, deployments, deployment settings, drift
	// schedules, watch cursors, idempotency keys; the deliveries of one event together. An
	// error from fn stops the export and is
	// returned. Deliveries carry their bodies and attempts their request bodies, however the
	// backend shares them.
	TransferExport(ctx context.Context, p TransferExportParams, fn func(*TransferBatch) error) error
	// TransferImport writes one batch in one transaction, records in the export's order. A
	// record whose key the store already has is kept and counted as Existing, so an
	// interrupted copy can be run again. The records are taken as they are (states, leases,
	// workers, counts), except that the store's own counters (QueueStats) and sequences move
	// on to cover them.
	TransferImport(ctx context.Context, p TransferImportParams) (TransferImportResult, error)
}
