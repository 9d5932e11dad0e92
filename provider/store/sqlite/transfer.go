package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
)

// Transfer (store.Transfer): the export reads every table in one read transaction (a WAL
// snapshot, so writers are never held up); the import writes each batch in one durable
// transaction with ON CONFLICT DO NOTHING, counting what it skipped.

// TransferBatchSizeDefault is the export's batch size when TransferExportParams leaves it 0.
const TransferBatchSizeDefault = store.TransferBatchSizeDefault

var _ store.Transfer = (*Store)(nil)

// TransferKeyCheck returns the check value of the store's key.
func (s *Store) TransferKeyCheck(context.Context) (string, error) { return s.currentBox().Check(), nil }

// TransferCount counts the rows of every table that holds records.
func (s *Store) TransferCount(ctx context.Context) (store.TransferCounts, error) {
	var c store.TransferCounts
	for _, t := range store.TransferTables {
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.Table).Scan(t.Count(&c)); err != nil {
			return c, fmt.Errorf("sqlite: count %s: %w", t.Table, err)
		}
	}
	return c, nil
}

// exportKind reads one kind of record: query returns its rows in a stable order, scan adds
// one row to the batch.
type exportKind struct {
	name  string
	query string
	scan  func(rows *sql.Rows, b *store.TransferBatch) error
}

var exportKinds = []exportKind{
	{"hooks", `SELECT ` + hookColumns + `, secret_box FROM hooks ORDER BY id`, func(rows *sql.Rows, b *store.TransferBatch) error {
		var sealed []byte
		h, err := scanHook(scanWith{rows, []any{&sealed}})
		if err != nil {
			return err
		}
		b.Hooks = append(b.Hooks, &store.SealedHook{Hook: *h, SealedSecret: sealed})
		return nil
	}},
	{"tokens", `SELECT ` + tokenColumns + ` FROM tokens ORDER BY rowid`, func(rows *sql.Rows, b *store.TransferBatch) error {
		t, err := scanToken(rows)
		if err != nil {
			return err
		}
		b.Tokens = append(b.Tokens, t)
		return nil
	}},
	{"events", `SELECT id, filter, kind, org, project, stack, environment, payload, cause, created_at FROM events ORDER BY rowid`,
		func(rows *sql.Rows, b *store.TransferBatch) error {
			var e store.Event
			var cause string
			var created int64
			if err := rows.Scan(&e.ID, &e.Filter, &e.Kind, &e.Subject.Org, &e.Subject.Project, &e.Subject.Stack,
				&e.Subject.Environment, &e.Payload, &cause, &created); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(cause), &e.Cause); err != nil {
				return fmt.Errorf("event %s: decode cause: %w", e.ID, err)
			}
			if len(e.Cause) == 0 {
				e.Cause = nil
			}
			e.CreatedAt = store.FromUnixNanos(created)
			b.Events = append(b.Events, &e)
			return nil
		}},
	{"deliveries", `SELECT ` + deliveryColumns + ` FROM deliveries ORDER BY rowid`, func(rows *sql.Rows, b *store.TransferBatch) error {
		d, err := scanDelivery(rows)
		if err != nil {
			return err
		}
		b.Deliveries = append(b.Deliveries, d)
		return nil
	}},
	{"attempts", `SELECT ` + attemptColumns + ` FROM attempts a ORDER BY a.id`, func(rows *sql.Rows, b *store.TransferBatch) error {
		a, err := scanAttempt(rows)
		if err != nil {
			return err
		}
		b.Attempts = append(b.Attempts, a)
		return nil
	}},
	{"deployment requests", `SELECT id, org, project, stack, hook_id, event_id, cause, status, reason, created_at
		FROM deployment_requests ORDER BY rowid`, func(rows *sql.Rows, b *store.TransferBatch) error {
		var r store.DeploymentRequest
		var cause string
		var created int64
		if err := rows.Scan(&r.ID, &r.Target.Org, &r.Target.Project, &r.Target.Stack, &r.HookID, &r.EventID, &cause,
			&r.Status, &r.Reason, &created); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(cause), &r.Cause); err != nil {
			return fmt.Errorf("deployment request %s: decode cause: %w", r.ID, err)
		}
		if len(r.Cause) == 0 {
			r.Cause = nil
		}
		r.CreatedAt = store.FromUnixNanos(created)
		b.DeploymentRequests = append(b.DeploymentRequests, &r)
		return nil
	}},
	{"deployments", `SELECT ` + deploymentColumns + ` FROM deployments ORDER BY rowid`, func(rows *sql.Rows, b *store.TransferBatch) error {
		d, err := scanDeployment(rows)
		if err != nil {
			return err
		}
		b.Deployments = append(b.Deployments, d)
		return nil
	}},
	{"deployment settings", `SELECT org, project, stack, settings, secrets, secret_digests, created_at, updated_at
		FROM deployment_settings ORDER BY org, project, stack`, func(rows *sql.Rows, b *store.TransferBatch) error {
		var ds store.SealedDeploymentSettings
		var settings, digests string
		var created, updated int64
		if err := rows.Scan(&ds.Stack.Org, &ds.Stack.Project, &ds.Stack.Stack, &settings, &ds.SealedSecrets, &digests,
			&created, &updated); err != nil {
			return err
		}
		ds.Settings = []byte(settings)
		if err := json.Unmarshal([]byte(digests), &ds.SecretDigests); err != nil {
			return fmt.Errorf("deployment settings of %s: decode digests: %w", ds.Stack, err)
		}
		ds.CreatedAt, ds.UpdatedAt = store.FromUnixNanos(created), store.FromUnixNanos(updated)
		b.DeploymentSettings = append(b.DeploymentSettings, &ds)
		return nil
	}},
	{"drift schedules", `SELECT ` + driftColumns + ` FROM drift_schedules ORDER BY rowid`, func(rows *sql.Rows, b *store.TransferBatch) error {
		d, err := scanDrift(rows)
		if err != nil {
			return err
		}
		b.DriftSchedules = append(b.DriftSchedules, d)
		return nil
	}},
	{"watch cursors", `SELECT backend, stack, present, generation, last_nanos, last_key, updated_at FROM watch_cursors
		ORDER BY backend, stack`, func(rows *sql.Rows, b *store.TransferBatch) error {
		var c store.WatchCursor
		var present int
		var updated int64
		if err := rows.Scan(&c.Backend, &c.Stack, &present, &c.Generation, &c.LastNanos, &c.LastKey, &updated); err != nil {
			return err
		}
		c.Present, c.UpdatedAt = present != 0, store.FromUnixNanos(updated)
		b.WatchCursors = append(b.WatchCursors, &c)
		return nil
	}},
	{"idempotency keys", `SELECT org, key, response, created_at FROM idempotency_keys ORDER BY org, key`,
		func(rows *sql.Rows, b *store.TransferBatch) error {
			var k store.IdempotencyKey
			var created int64
			if err := rows.Scan(&k.Org, &k.Key, &k.Response, &created); err != nil {
				return err
			}
			k.CreatedAt = store.FromUnixNanos(created)
			b.IdempotencyKeys = append(b.IdempotencyKeys, &k)
			return nil
		}},
}

// scanWith scans a row whose first columns are another scanner's and whose last ones go to
// extra.
type scanWith struct {
	rows  *sql.Rows
	extra []any
}

func (s scanWith) Scan(dest ...any) error { return s.rows.Scan(append(dest, s.extra...)...) }

// TransferExport reads every record in one read transaction; see store.Transfer.
func (s *Store) TransferExport(ctx context.Context, p store.TransferExportParams, fn func(*store.TransferBatch) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: export: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	batcher := store.NewTransferBatcher(p, fn)
	for _, k := range exportKinds {
		err := func() error {
			rows, err := tx.QueryContext(ctx, k.query)
			if err != nil {
				return fmt.Errorf("sqlite: export %s: %w", k.name, err)
			}
			defer rows.Close()
			for rows.Next() {
				rec := &store.TransferBatch{}
				if err := k.scan(rows, rec); err != nil {
					return fmt.Errorf("sqlite: export %s: %w", k.name, err)
				}
				if err := batcher.Add(rec); err != nil {
					return err
				}
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("sqlite: export %s: %w", k.name, err)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return batcher.Flush()
}

// TransferImport writes one batch in one durable transaction; see store.Transfer.
func (s *Store) TransferImport(ctx context.Context, p store.TransferImportParams) (store.TransferImportResult, error) {
	var res store.TransferImportResult
	if err := sealing.CheckTransferKey(s.currentBox(), p.KeyCheck); err != nil {
		return res, fmt.Errorf("sqlite: import into %s: %w", s.path, err)
	}
	if p.Batch == nil {
		return res, nil
	}
	err := s.withDurableTx(ctx, func(tx txq) error {
		res = store.TransferImportResult{}
		return importBatch(ctx, tx, p.Batch, &res)
	})
	if err != nil {
		return store.TransferImportResult{}, fmt.Errorf("sqlite: import: %w", err)
	}
	return res, nil
}

// importRow runs one INSERT ... ON CONFLICT DO NOTHING and counts it as inserted or existing.
func importRow(ctx context.Context, tx txq, ins, ex *int, what, query string, args ...any) error {
	r, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, _ := r.RowsAffected(); n > 0 {
		*ins++
	} else {
		*ex++
	}
	return nil
}

func importBatch(ctx context.Context, tx txq, b *store.TransferBatch, res *store.TransferImportResult) error {
	in, ex := &res.Inserted, &res.Existing
	for _, h := range b.Hooks {
		if err := importRow(ctx, tx, &in.Hooks, &ex.Hooks, "hook "+h.Ref().String(),
			`INSERT INTO hooks (id, org, project, stack, environment, name, display_name, payload_url, active, format, filters,
				groups, secret_box, secret_digest, disabled_reason, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			h.ID, h.Org, h.Project, h.Stack, h.Environment, h.Name, h.DisplayName, h.PayloadURL, boolInt(h.Active),
			string(h.Format), encodeList(h.Filters), encodeList(h.Groups), h.SealedSecret, h.SecretDigest, h.DisabledReason,
			store.UnixNanos(h.CreatedAt), store.UnixNanos(h.UpdatedAt)); err != nil {
			return err
		}
	}
	for _, t := range b.Tokens {
		if err := importRow(ctx, tx, &in.Tokens, &ex.Tokens, "token "+t.ID,
			`INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			t.ID, t.Org, t.Description, t.Hash, store.UnixNanos(t.CreatedAt), store.UnixNanos(t.LastUsedAt), store.UnixNanos(t.RevokedAt)); err != nil {
			return err
		}
	}
	for _, e := range b.Events {
		cause, _ := json.Marshal(nonNil(e.Cause))
		if err := importRow(ctx, tx, &in.Events, &ex.Events, "event "+e.ID,
			`INSERT INTO events (id, filter, kind, org, project, stack, environment, payload, cause, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, e.ID, string(e.Filter), string(e.Kind), e.Subject.Org,
			e.Subject.Project, e.Subject.Stack, e.Subject.Environment, e.Payload, string(cause), store.UnixNanos(e.CreatedAt)); err != nil {
			return err
		}
	}
	refs, err := importBodyRefs(ctx, tx, b.Deliveries)
	if err != nil {
		return err
	}
	var counts insertCounts
	for _, d := range b.Deliveries {
		before := in.Deliveries
		body, ref := d.Body, refs[d.ID]
		if body == nil || ref != bodyInline {
			body = []byte{}
		}
		if err := importRow(ctx, tx, &in.Deliveries, &ex.Deliveries, "delivery "+d.ID,
			`INSERT INTO deliveries (id, event_id, hook_id, filter, kind, format, body, body_ref, endpoint, org, state, attempts,
				next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT org FROM events WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			d.ID, d.EventID, d.HookID, string(d.Filter), string(d.Kind), string(d.Format), body, ref, d.Endpoint, d.EventID,
			string(d.State), d.Attempts, store.UnixNanos(d.NextAttemptAt), store.UnixNanos(d.LeaseUntil), d.ClaimedBy, d.LastError,
			store.UnixNanos(d.CreatedAt), store.UnixNanos(d.UpdatedAt)); err != nil {
			return err
		}
		if in.Deliveries > before {
			counts.add(d.State)
		}
	}
	if err := counts.write(ctx, tx); err != nil {
		return err
	}
	for _, a := range b.Attempts {
		reqH, err := store.EncodeHeaders(a.RequestHeaders)
		if err != nil {
			return fmt.Errorf("attempt %d: %w", a.ID, err)
		}
		respH, err := store.EncodeHeaders(a.ResponseHeaders)
		if err != nil {
			return fmt.Errorf("attempt %d: %w", a.ID, err)
		}
		if err := importRow(ctx, tx, &in.Attempts, &ex.Attempts, fmt.Sprintf("attempt %d", a.ID),
			`INSERT INTO attempts (id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
				request_headers, request_body, response_code, response_headers, response_body, error, request_body_ref)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`,
			a.ID, a.DeliveryID, a.HookID, a.Number, string(a.Filter), string(a.Kind), store.UnixNanos(a.StartedAt), int64(a.Duration),
			a.RequestURL, reqH, a.RequestBody, a.ResponseCode, respH, a.ResponseBody, a.Error); err != nil {
			return err
		}
	}
	for _, r := range b.DeploymentRequests {
		cause, _ := json.Marshal(nonNil(r.Cause))
		if err := importRow(ctx, tx, &in.DeploymentRequests, &ex.DeploymentRequests, "deployment request "+r.ID,
			`INSERT INTO deployment_requests (id, org, project, stack, hook_id, event_id, cause, status, reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, r.ID, r.Target.Org, r.Target.Project, r.Target.Stack,
			r.HookID, r.EventID, string(cause), r.Status, r.Reason, store.UnixNanos(r.CreatedAt)); err != nil {
			return err
		}
	}
	for _, d := range b.Deployments {
		cause, _ := json.Marshal(nonNil(d.Cause))
		changes, _ := json.Marshal(nonNilMap(d.ResourceChanges))
		if err := importRow(ctx, tx, &in.Deployments, &ex.Deployments, "deployment "+d.ID,
			`INSERT INTO deployments (`+deploymentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.Version, d.Operation, d.Status,
			d.Reason, d.Source, d.RequestID, string(cause), d.AutoRemediate, d.CancelRequested, d.Worker, d.DriftDetected,
			string(changes), d.Log, store.UnixNanos(d.CreatedAt), store.UnixNanos(d.StartedAt), store.UnixNanos(d.FinishedAt)); err != nil {
			return err
		}
	}
	for _, ds := range b.DeploymentSettings {
		digests := ds.SecretDigests
		if digests == nil {
			digests = map[string]string{}
		}
		dj, _ := json.Marshal(digests)
		if err := importRow(ctx, tx, &in.DeploymentSettings, &ex.DeploymentSettings, "deployment settings of "+ds.Stack.String(),
			`INSERT INTO deployment_settings (org, project, stack, settings, secrets, secret_digests, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, ds.Stack.Org, ds.Stack.Project, ds.Stack.Stack,
			string(ds.Settings), ds.SealedSecrets, string(dj), store.UnixNanos(ds.CreatedAt), store.UnixNanos(ds.UpdatedAt)); err != nil {
			return err
		}
	}
	for _, d := range b.DriftSchedules {
		if err := importRow(ctx, tx, &in.DriftSchedules, &ex.DriftSchedules, "drift schedule "+d.ID,
			`INSERT INTO drift_schedules (`+driftColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.ScheduleCron, d.AutoRemediate, store.UnixNanos(d.NextRunAt),
			store.UnixNanos(d.LastRunAt), store.UnixNanos(d.CreatedAt)); err != nil {
			return err
		}
	}
	for _, c := range b.WatchCursors {
		if err := importRow(ctx, tx, &in.WatchCursors, &ex.WatchCursors, "watch cursor "+c.Backend+" "+c.Stack,
			`INSERT INTO watch_cursors (backend, stack, present, generation, last_nanos, last_key, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, c.Backend, c.Stack, boolInt(c.Present), c.Generation,
			c.LastNanos, c.LastKey, store.UnixNanos(c.UpdatedAt)); err != nil {
			return err
		}
	}
	for _, k := range b.IdempotencyKeys {
		if err := importRow(ctx, tx, &in.IdempotencyKeys, &ex.IdempotencyKeys, "idempotency key of "+k.Org,
			`INSERT INTO idempotency_keys (org, key, response, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			k.Org, k.Key, k.Response, store.UnixNanos(k.CreatedAt)); err != nil {
			return err
		}
	}
	return nil
}

// importBodyRefs returns the body_ref of each delivery of ds the store does not have yet,
// sharing bodies as an emit does: bodyEventPayload for a body equal to its event's payload, a
// new delivery_bodies row for a body two or more of them (of one event) have, bodyInline for
// the rest. Deliveries already stored get nothing, so a copy run again stores no body twice.
func importBodyRefs(ctx context.Context, tx txq, ds []*store.Delivery) (map[string]int64, error) {
	refs := map[string]int64{}
	if len(ds) == 0 {
		return refs, nil
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	idsJSON, _ := json.Marshal(ids)
	stored, err := tx.strings(ctx, `SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))`, string(idsJSON))
	if err != nil {
		return nil, fmt.Errorf("find copied deliveries: %w", err)
	}
	have := map[string]bool{}
	for _, id := range stored {
		have[id] = true
	}
	type key struct{ event, body string }
	count := map[key]int{}
	payloads := map[string][]byte{}
	for _, d := range ds {
		if have[d.ID] || len(d.Body) == 0 {
			continue
		}
		p, ok := payloads[d.EventID]
		if !ok {
			if err := tx.QueryRowContext(ctx, `SELECT payload FROM events WHERE id = ?`, d.EventID).Scan(&p); err != nil {
				return nil, fmt.Errorf("delivery %s: its event %s: %w", d.ID, d.EventID, err)
			}
			payloads[d.EventID] = p
		}
		if bytes.Equal(d.Body, p) {
			refs[d.ID] = bodyEventPayload
			continue
		}
		count[key{d.EventID, string(d.Body)}]++
	}
	shared := map[key]int64{}
	for _, d := range ds {
		k := key{d.EventID, string(d.Body)}
		if have[d.ID] || refs[d.ID] != bodyInline || count[k] < 2 {
			continue
		}
		id, ok := shared[k]
		if !ok {
			if err := tx.QueryRowContext(ctx, `INSERT INTO delivery_bodies (event_id, body) VALUES (?, ?) RETURNING id`,
				d.EventID, d.Body).Scan(&id); err != nil {
				return nil, fmt.Errorf("delivery %s: store its shared body: %w", d.ID, err)
			}
			shared[k] = id
		}
		refs[d.ID] = id
	}
	return refs, nil
}
