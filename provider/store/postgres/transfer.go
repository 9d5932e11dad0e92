package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Transfer (store.Transfer): the export reads every table in one read-only REPEATABLE READ
// transaction (one snapshot); the import writes each batch in one transaction, its statements
// pipelined (pgx.Batch), each INSERT ... ON CONFLICT DO NOTHING, and moves the identity
// sequences of hooks and attempts past the IDs it wrote.

// TransferBatchSizeDefault is the export's batch size when TransferExportParams leaves it 0.
const TransferBatchSizeDefault = store.TransferBatchSizeDefault

var _ store.Transfer = (*Store)(nil)

// TransferKeyCheck returns the check value of the store's key.
func (s *Store) TransferKeyCheck(context.Context) (string, error) { return s.currentBox().Check(), nil }

// TransferCount counts the rows of every table that holds records.
func (s *Store) TransferCount(ctx context.Context) (store.TransferCounts, error) {
	var c store.TransferCounts
	err := s.retrying(ctx, func(ctx context.Context) error {
		c = store.TransferCounts{}
		for _, t := range store.TransferTables {
			var n int64
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+t.Table).Scan(&n); err != nil {
				return fmt.Errorf("count %s: %w", t.Table, err)
			}
			*t.Count(&c) = int(n)
		}
		return nil
	})
	if err != nil {
		return c, s.fail(fmt.Errorf("postgres: %w", err))
	}
	return c, nil
}

type exportKind struct {
	name  string
	query string
	scan  func(rows pgx.Rows, b *store.TransferBatch) error
}

// scanWith scans a row whose first columns are another scanner's and whose last ones go to
// extra.
type scanWith struct {
	rows  pgx.Rows
	extra []any
}

func (s scanWith) Scan(dest ...any) error { return s.rows.Scan(append(dest, s.extra...)...) }

var exportKinds = []exportKind{
	{"hooks", `SELECT ` + hookColumns + `, secret_box FROM hooks ORDER BY id`, func(rows pgx.Rows, b *store.TransferBatch) error {
		var sealed []byte
		h, err := scanHook(scanWith{rows, []any{&sealed}})
		if err != nil {
			return err
		}
		b.Hooks = append(b.Hooks, &store.SealedHook{Hook: *h, SealedSecret: sealed})
		return nil
	}},
	{"tokens", `SELECT ` + tokenColumns + ` FROM tokens ORDER BY created_at, id`, func(rows pgx.Rows, b *store.TransferBatch) error {
		t, err := scanToken(rows)
		if err != nil {
			return err
		}
		b.Tokens = append(b.Tokens, t)
		return nil
	}},
	{"events", `SELECT id, filter, kind, org, project, stack, environment, payload, cause, created_at FROM events ORDER BY created_at, id`,
		func(rows pgx.Rows, b *store.TransferBatch) error {
			var e store.Event
			var filter, kind string
			var created int64
			if err := rows.Scan(&e.ID, &filter, &kind, &e.Subject.Org, &e.Subject.Project, &e.Subject.Stack,
				&e.Subject.Environment, &e.Payload, &e.Cause, &created); err != nil {
				return err
			}
			e.Filter, e.Kind = webhook.Filter(filter), webhook.Kind(kind)
			if len(e.Cause) == 0 {
				e.Cause = nil
			}
			e.CreatedAt = store.FromUnixNanos(created)
			b.Events = append(b.Events, &e)
			return nil
		}},
	{"deliveries", `SELECT ` + deliveryColumns + ` FROM deliveries d ORDER BY d.event_id, d.seq`, func(rows pgx.Rows, b *store.TransferBatch) error {
		d, err := scanDelivery(rows)
		if err != nil {
			return err
		}
		b.Deliveries = append(b.Deliveries, d)
		return nil
	}},
	{"attempts", `SELECT ` + attemptColumns + ` FROM attempts a ORDER BY a.id`, func(rows pgx.Rows, b *store.TransferBatch) error {
		a, err := scanAttempt(rows)
		if err != nil {
			return err
		}
		b.Attempts = append(b.Attempts, a)
		return nil
	}},
	{"deployment requests", `SELECT id, org, project, stack, hook_id, event_id, cause, status, reason, created_at
		FROM deployment_requests ORDER BY seq`, func(rows pgx.Rows, b *store.TransferBatch) error {
		var r store.DeploymentRequest
		var created int64
		if err := rows.Scan(&r.ID, &r.Target.Org, &r.Target.Project, &r.Target.Stack, &r.HookID, &r.EventID, &r.Cause,
			&r.Status, &r.Reason, &created); err != nil {
			return err
		}
		if len(r.Cause) == 0 {
			r.Cause = nil
		}
		r.CreatedAt = store.FromUnixNanos(created)
		b.DeploymentRequests = append(b.DeploymentRequests, &r)
		return nil
	}},
	{"deployments", `SELECT ` + deploymentColumns + ` FROM deployments ORDER BY seq`, func(rows pgx.Rows, b *store.TransferBatch) error {
		d, err := scanDeployment(rows)
		if err != nil {
			return err
		}
		b.Deployments = append(b.Deployments, d)
		return nil
	}},
	{"deployment settings", `SELECT org, project, stack, settings::text, secrets, secret_digests::text, created_at, updated_at
		FROM deployment_settings ORDER BY org, project, stack`, func(rows pgx.Rows, b *store.TransferBatch) error {
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
	{"drift schedules", `SELECT ` + driftColumns + ` FROM drift_schedules ORDER BY seq`, func(rows pgx.Rows, b *store.TransferBatch) error {
		d, err := scanDrift(rows)
		if err != nil {
			return err
		}
		b.DriftSchedules = append(b.DriftSchedules, d)
		return nil
	}},
	{"watch cursors", `SELECT backend, stack, present, generation, last_nanos, last_key, updated_at FROM watch_cursors
		ORDER BY backend, stack`, func(rows pgx.Rows, b *store.TransferBatch) error {
		var c store.WatchCursor
		var gen int32
		var updated int64
		if err := rows.Scan(&c.Backend, &c.Stack, &c.Present, &gen, &c.LastNanos, &c.LastKey, &updated); err != nil {
			return err
		}
		c.Generation, c.UpdatedAt = int(gen), store.FromUnixNanos(updated)
		b.WatchCursors = append(b.WatchCursors, &c)
		return nil
	}},
	{"idempotency keys", `SELECT org, key, response, created_at FROM idempotency_keys ORDER BY org, key`,
		func(rows pgx.Rows, b *store.TransferBatch) error {
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

// TransferExport reads every record from one snapshot; see store.Transfer.
func (s *Store) TransferExport(ctx context.Context, p store.TransferExportParams, fn func(*store.TransferBatch) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.fail(fmt.Errorf("postgres: export: begin: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	batcher := store.NewTransferBatcher(p, fn)
	for _, k := range exportKinds {
		rows, err := tx.Query(ctx, k.query)
		if err != nil {
			return s.fail(fmt.Errorf("postgres: export %s: %w", k.name, err))
		}
		for rows.Next() {
			rec := &store.TransferBatch{}
			if err := k.scan(rows, rec); err != nil {
				rows.Close()
				return s.fail(fmt.Errorf("postgres: export %s: %w", k.name, err))
			}
			if err := batcher.Add(rec); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.fail(fmt.Errorf("postgres: export %s: %w", k.name, err))
		}
	}
	return batcher.Flush()
}

// TransferImport writes one batch in one transaction; see store.Transfer.
func (s *Store) TransferImport(ctx context.Context, p store.TransferImportParams) (store.TransferImportResult, error) {
	var res store.TransferImportResult
	if err := sealing.CheckTransferKey(s.currentBox(), p.KeyCheck); err != nil {
		return res, fmt.Errorf("postgres: import into %s: %w", s.where, err)
	}
	if p.Batch == nil {
		return res, nil
	}
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		res = store.TransferImportResult{}
		return importBatch(ctx, tx, p.Batch, &res)
	})
	if err != nil {
		return store.TransferImportResult{}, s.fail(fmt.Errorf("postgres: import: %w", err))
	}
	return res, nil
}

// importRows queues one INSERT ... ON CONFLICT DO NOTHING per record and counts each as
// inserted or existing once the batch has run.
type importRows struct {
	b      pgx.Batch
	counts []struct {
		ins, ex *int
		what    string
	}
}

func (q *importRows) add(ins, ex *int, what, sql string, args ...any) {
	q.b.Queue(sql, args...)
	q.counts = append(q.counts, struct {
		ins, ex *int
		what    string
	}{ins, ex, what})
}

func (q *importRows) run(ctx context.Context, tx pgx.Tx) error {
	if q.b.Len() == 0 {
		return nil
	}
	batch, counts := q.b, q.counts
	q.b, q.counts = pgx.Batch{}, nil
	br := tx.SendBatch(ctx, &batch)
	for _, c := range counts {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("%s: %w", c.what, err)
		}
		if tag.RowsAffected() > 0 {
			*c.ins++
		} else {
			*c.ex++
		}
	}
	return br.Close()
}

func importBatch(ctx context.Context, tx pgx.Tx, b *store.TransferBatch, res *store.TransferImportResult) error {
	in, ex := &res.Inserted, &res.Existing
	q := &importRows{}
	for _, h := range b.Hooks {
		q.add(&in.Hooks, &ex.Hooks, "hook "+h.Ref().String(),
			`INSERT INTO hooks (id, org, project, stack, environment, name, display_name, payload_url, active, format, filters,
				groups, secret_box, secret_digest, disabled_reason, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING`,
			h.ID, h.Org, h.Project, h.Stack, h.Environment, h.Name, h.DisplayName, h.PayloadURL, h.Active,
			string(h.Format), encodeList(h.Filters), encodeList(h.Groups), h.SealedSecret, h.SecretDigest, h.DisabledReason,
			store.UnixNanos(h.CreatedAt), store.UnixNanos(h.UpdatedAt))
	}
	for _, t := range b.Tokens {
		q.add(&in.Tokens, &ex.Tokens, "token "+t.ID,
			`INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			t.ID, t.Org, t.Description, t.Hash, store.UnixNanos(t.CreatedAt), store.UnixNanos(t.LastUsedAt), store.UnixNanos(t.RevokedAt))
	}
	for _, e := range b.Events {
		q.add(&in.Events, &ex.Events, "event "+e.ID,
			`INSERT INTO events (id, filter, kind, org, project, stack, environment, payload, cause, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, e.ID, string(e.Filter), string(e.Kind),
			e.Subject.Org, e.Subject.Project, e.Subject.Stack, e.Subject.Environment, e.Payload, nonNil(e.Cause), store.UnixNanos(e.CreatedAt))
	}
	// The events are written before the deliveries' shared bodies, which refer to them.
	if err := q.run(ctx, tx); err != nil {
		return err
	}
	bodyIDs, err := importBodyIDs(ctx, tx, b.Deliveries)
	if err != nil {
		return err
	}
	for _, d := range b.Deliveries {
		body, bodyID := d.Body, bodyIDs[d.ID]
		if body == nil {
			body = []byte{}
		}
		// A body equal to its event's payload is stored as NULL, as emits store raw
		// deliveries; a body shared with other deliveries of the event refers to its row.
		q.add(&in.Deliveries, &ex.Deliveries, "delivery "+d.ID,
			`INSERT INTO deliveries (id, event_id, hook_id, org, filter, kind, format, body, body_id, endpoint, state, attempts,
				next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at)
			SELECT $1, e.id, $2, e.org, $3, $4, $5, CASE WHEN $17::bigint <> 0 OR e.payload = $6::bytea THEN NULL ELSE $6::bytea END,
				NULLIF($17::bigint, 0), $7, $8, $9, $10, $11, $12, $13, $14, $15
			FROM events e WHERE e.id = $16
			ON CONFLICT DO NOTHING`,
			d.ID, d.HookID, string(d.Filter), string(d.Kind), string(d.Format), body, d.Endpoint, string(d.State), d.Attempts,
			store.UnixNanos(d.NextAttemptAt), store.UnixNanos(d.LeaseUntil), d.ClaimedBy, d.LastError, store.UnixNanos(d.CreatedAt), store.UnixNanos(d.UpdatedAt),
			d.EventID, bodyID)
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
		q.add(&in.Attempts, &ex.Attempts, fmt.Sprintf("attempt %d", a.ID),
			`INSERT INTO attempts (id, delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
				request_headers, request_body_is_delivery, request_body, response_code, response_headers, response_body, error)
			OVERRIDING SYSTEM VALUE
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, false, $11, $12, $13::jsonb, $14, $15) ON CONFLICT DO NOTHING`,
			a.ID, a.DeliveryID, a.HookID, a.Number, string(a.Filter), string(a.Kind), store.UnixNanos(a.StartedAt), a.Duration.Nanoseconds(),
			a.RequestURL, reqH, a.RequestBody, a.ResponseCode, respH, a.ResponseBody, a.Error)
	}
	for _, r := range b.DeploymentRequests {
		q.add(&in.DeploymentRequests, &ex.DeploymentRequests, "deployment request "+r.ID,
			`INSERT INTO deployment_requests (id, org, project, stack, hook_id, event_id, cause, status, reason, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, r.ID, r.Target.Org, r.Target.Project,
			r.Target.Stack, r.HookID, r.EventID, nonNil(r.Cause), r.Status, r.Reason, store.UnixNanos(r.CreatedAt))
	}
	for _, d := range b.Deployments {
		changes, err := json.Marshal(nonNilChanges(d.ResourceChanges))
		if err != nil {
			return fmt.Errorf("deployment %s: %w", d.ID, err)
		}
		q.add(&in.Deployments, &ex.Deployments, "deployment "+d.ID,
			`INSERT INTO deployments (id, org, project, stack, version, operation, status, reason, source, request_id, cause,
				auto_remediate, cancel_requested, worker, drift_detected, resource_changes, log, created_at, started_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17, $18, $19, $20)
			ON CONFLICT DO NOTHING`, d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.Version, d.Operation, d.Status,
			d.Reason, d.Source, d.RequestID, nonNil(d.Cause), d.AutoRemediate, d.CancelRequested, d.Worker, d.DriftDetected,
			string(changes), d.Log, store.UnixNanos(d.CreatedAt), store.UnixNanos(d.StartedAt), store.UnixNanos(d.FinishedAt))
	}
	for _, ds := range b.DeploymentSettings {
		digests := ds.SecretDigests
		if digests == nil {
			digests = map[string]string{}
		}
		dj, err := json.Marshal(digests)
		if err != nil {
			return fmt.Errorf("deployment settings of %s: %w", ds.Stack, err)
		}
		q.add(&in.DeploymentSettings, &ex.DeploymentSettings, "deployment settings of "+ds.Stack.String(),
			`INSERT INTO deployment_settings (org, project, stack, settings, secrets, secret_digests, created_at, updated_at)
			VALUES ($1, $2, $3, $4::json, $5, $6::jsonb, $7, $8) ON CONFLICT DO NOTHING`, ds.Stack.Org, ds.Stack.Project,
			ds.Stack.Stack, string(ds.Settings), ds.SealedSecrets, string(dj), store.UnixNanos(ds.CreatedAt), store.UnixNanos(ds.UpdatedAt))
	}
	for _, d := range b.DriftSchedules {
		q.add(&in.DriftSchedules, &ex.DriftSchedules, "drift schedule "+d.ID,
			`INSERT INTO drift_schedules (`+driftColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
			d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.ScheduleCron, d.AutoRemediate, store.UnixNanos(d.NextRunAt),
			store.UnixNanos(d.LastRunAt), store.UnixNanos(d.CreatedAt))
	}
	for _, c := range b.WatchCursors {
		q.add(&in.WatchCursors, &ex.WatchCursors, "watch cursor "+c.Backend+" "+c.Stack,
			`INSERT INTO watch_cursors (backend, stack, present, generation, last_nanos, last_key, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, c.Backend, c.Stack, c.Present, c.Generation,
			c.LastNanos, c.LastKey, store.UnixNanos(c.UpdatedAt))
	}
	for _, k := range b.IdempotencyKeys {
		q.add(&in.IdempotencyKeys, &ex.IdempotencyKeys, "idempotency key of "+k.Org,
			`INSERT INTO idempotency_keys (org, key, response, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			k.Org, k.Key, k.Response, store.UnixNanos(k.CreatedAt))
	}
	if err := q.run(ctx, tx); err != nil {
		return err
	}
	// A delivery whose event is missing inserts nothing without a conflict: refuse it rather
	// than count it as existing.
	if len(b.Deliveries) > 0 {
		ids := make([]string, len(b.Deliveries))
		for i, d := range b.Deliveries {
			ids[i] = d.ID
		}
		var found int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE id = ANY($1)`, ids).Scan(&found); err != nil {
			return fmt.Errorf("check deliveries: %w", err)
		}
		if found != len(ids) {
			return errors.New("a delivery's event is missing: copy its event first (TransferExport's order)")
		}
	}
	// The identity sequences move past the IDs written, so new hooks and attempts get new IDs.
	for _, t := range []string{"hooks", "attempts"} {
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), COALESCE((SELECT max(id) FROM `+t+`), 0) + 1, false)`); err != nil {
			return fmt.Errorf("move the %s sequence on: %w", t, err)
		}
	}
	return nil
}

func nonNilChanges(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// importBodyIDs stores once each body that two or more of ds (of one event) have, as an emit
// does, and returns the delivery_bodies id of each delivery that uses one. Deliveries the store
// already has, and bodies equal to their event's payload, get none, so a copy run again stores
// no body twice.
func importBodyIDs(ctx context.Context, tx pgx.Tx, ds []*store.Delivery) (map[string]int64, error) {
	ids := map[string]int64{}
	if len(ds) == 0 {
		return ids, nil
	}
	all := make([]string, len(ds))
	events := map[string]bool{}
	for i, d := range ds {
		all[i] = d.ID
		events[d.EventID] = true
	}
	rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE id = ANY($1)`, all)
	if err != nil {
		return nil, fmt.Errorf("find copied deliveries: %w", err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find copied deliveries: %w", err)
	}
	have := map[string]bool{}
	for _, id := range stored {
		have[id] = true
	}
	eventIDs := make([]string, 0, len(events))
	for id := range events {
		eventIDs = append(eventIDs, id)
	}
	payloads := map[string][]byte{}
	rows, err = tx.Query(ctx, `SELECT id, payload FROM events WHERE id = ANY($1)`, eventIDs)
	if err != nil {
		return nil, fmt.Errorf("read the deliveries' events: %w", err)
	}
	var id string
	var payload []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &payload}, func() error {
		payloads[id] = append([]byte(nil), payload...)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the deliveries' events: %w", err)
	}
	type key struct{ event, body string }
	count := map[key]int{}
	for _, d := range ds {
		if !have[d.ID] && len(d.Body) > 0 && !bytes.Equal(d.Body, payloads[d.EventID]) {
			count[key{d.EventID, string(d.Body)}]++
		}
	}
	shared := map[key]int64{}
	for _, d := range ds {
		k := key{d.EventID, string(d.Body)}
		if have[d.ID] || count[k] < 2 {
			continue
		}
		bid, ok := shared[k]
		if !ok {
			if err := tx.QueryRow(ctx, `INSERT INTO delivery_bodies (event_id, body) VALUES ($1, $2) RETURNING id`,
				d.EventID, d.Body).Scan(&bid); err != nil {
				return nil, fmt.Errorf("delivery %s: store its shared body: %w", d.ID, err)
			}
			shared[k] = bid
		}
		ids[d.ID] = bid
	}
	return ids, nil
}
