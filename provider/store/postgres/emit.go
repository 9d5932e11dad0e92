package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// wakeChannel is the NOTIFY channel of stored work (see listener).
const wakeChannel = "pulumi_webhooks_work"

// emitTx is EventEmit's transaction.
type emitTx struct {
	s  *Store
	tx pgx.Tx
	// events are the events inserted through this emitTx, by ID, so that their deliveries are
	// inserted without reading the event back.
	events map[string]*store.Event
	// pending says whether pending deliveries were inserted: the commit then wakes workers,
	// and no direct claim of the transaction takes a slot before them (emitclaim.go).
	pending bool
	// due is set once a direct claim found due work in the queue: the transaction's later
	// emits claim nothing either.
	due bool
	// locked holds the endpoint locks the transaction's direct claims took, by key: later
	// direct claims claim only at those endpoints (locking no more, so never waiting).
	locked map[int64]bool
	// holders are the holders the transaction registered for its direct claims.
	holders []txHolder
}

// EventEmit runs fn in one transaction (see store.Store), retried on transient failures like
// every transaction (withTx: a COMMIT whose answer was lost is looked up, not repeated, so an
// event is stored once). When it stored pending deliveries, NOTIFY wakes every server's workers
// at its commit.
func (s *Store) EventEmit(ctx context.Context, fn func(tx store.EmitTx) error) error {
	var last *emitTx
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		et := &emitTx{s: s, tx: tx}
		last = et
		if err := fn(et); err != nil {
			return err
		}
		if et.pending {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, wakeChannel); err != nil {
				return fmt.Errorf("postgres: notify workers: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return s.fail(err)
	}
	if len(last.holders) > 0 {
		s.session.adopt(last.holders)
	}
	return nil
}

func (t *emitTx) HookCandidates(ctx context.Context, subject webhook.Scope, orgOnly bool) ([]*store.Hook, error) {
	return hookCandidates(ctx, t.tx, subject, orgOnly)
}

func (t *emitTx) EventInsert(ctx context.Context, e *store.Event) error {
	if err := insertEvent(ctx, t.tx, e); err != nil {
		return err
	}
	if t.events == nil {
		t.events = map[string]*store.Event{}
	}
	t.events[e.ID] = e
	return nil
}

func insertEvent(ctx context.Context, tx pgx.Tx, e *store.Event) error {
	if err := store.PrepareEventInsert(e); err != nil {
		return fmt.Errorf("postgres: insert event: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO events (id, filter, kind, org, project, stack, environment, payload, cause, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ID, string(e.Filter), string(e.Kind), e.Subject.Org, e.Subject.Project,
		e.Subject.Stack, e.Subject.Environment, e.Payload, nonNil(e.Cause), store.UnixNanos(e.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("event %s: %w", e.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: insert event %s: %w", e.ID, err)
	}
	return nil
}

// deliveryRow is one delivery to insert, checked.
type deliveryRow struct {
	id, format, endpoint, state string
	hookID, next                int64
	body                        []byte // nil: not in the row (store.ShareBodies)
}

func checkDelivery(d *store.DeliveryInsertParams, now int64) (deliveryRow, error) {
	state, err := d.PrepareInsert()
	if err != nil {
		return deliveryRow{}, fmt.Errorf("postgres: %w", err)
	}
	next := store.UnixNanos(d.NextAttemptAt)
	if next == 0 {
		next = now
	}
	format := d.Format
	if format == "" {
		format = webhook.FormatDefault
	}
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	return deliveryRow{id: d.ID, format: string(format), endpoint: d.Endpoint, state: string(state), hookID: d.HookID, next: next, body: body}, nil
}

// DeliveryInsertMany inserts the deliveries of one event in one statement (arrays unnested),
// a body equal to the event's payload stored as a reference to it.
func (t *emitTx) DeliveryInsertMany(ctx context.Context, eventID string, now time.Time, ds []store.DeliveryInsertParams) error {
	if len(ds) == 0 {
		return nil
	}
	ev, err := t.eventOf(ctx, eventID)
	if err != nil {
		return err
	}
	return t.insertDeliveries(ctx, eventID, ev, now, ds)
}

// insertedEvent is what the deliveries of an event copy from it.
type insertedEvent struct {
	filter, kind, org string
	payload           []byte
}

// eventOf returns the event the deliveries belong to: the one inserted through t, else read
// back.
func (t *emitTx) eventOf(ctx context.Context, eventID string) (insertedEvent, error) {
	if e, ok := t.events[eventID]; ok {
		return insertedEvent{filter: string(e.Filter), kind: string(e.Kind), org: e.Subject.Org, payload: e.Payload}, nil
	}
	var ev insertedEvent
	err := t.tx.QueryRow(ctx, `SELECT filter, kind, org, payload FROM events WHERE id = $1`, eventID).Scan(&ev.filter, &ev.kind, &ev.org, &ev.payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return ev, fmt.Errorf("postgres: insert deliveries: event %s: %w; insert the event first", eventID, store.ErrNotFound)
	}
	if err != nil {
		return ev, fmt.Errorf("postgres: insert deliveries of event %s: %w", eventID, err)
	}
	return ev, nil
}

// deliveryInsertSQL inserts the deliveries of event $1 at time $2 from the arrays $3...$10
// (deliveryCols.args).
const deliveryInsertSQL = `INSERT INTO deliveries (id, event_id, hook_id, org, filter, kind, format, body, body_id, endpoint, state,
		next_attempt_at, created_at, updated_at)
	SELECT d.id, e.id, d.hook_id, e.org, e.filter, e.kind, d.format, d.body, NULLIF(d.body_id, 0), d.endpoint, d.state, d.next, $2, $2
	FROM events e, unnest($3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::bigint[], $10::bigint[])
		WITH ORDINALITY AS d (id, hook_id, format, body, endpoint, state, next, body_id, ord)
	WHERE e.id = $1
	ORDER BY d.ord`

// insertDeliveries inserts ds (see DeliveryInsertMany).
func (t *emitTx) insertDeliveries(ctx context.Context, eventID string, ev insertedEvent, now time.Time, ds []store.DeliveryInsertParams) error {
	cols, err := t.deliveryCols(ctx, eventID, ev, now, ds)
	if err != nil {
		return err
	}
	for _, state := range cols.states {
		if state == string(store.DeliveryPending) {
			t.pending = true
			break
		}
	}
	_, err = t.tx.Exec(ctx, deliveryInsertSQL, cols.args(eventID)...)
	return insertDeliveriesErr(eventID, err)
}

func insertDeliveriesErr(eventID string, err error) error {
	if isUnique(err) {
		return fmt.Errorf("postgres: insert deliveries of event %s: a delivery ID is taken: %w", eventID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: insert deliveries of event %s: %w", eventID, err)
	}
	return nil
}

// deliveryCols are the deliveries of one event to insert, column by column.
type deliveryCols struct {
	now                             int64
	ids, formats, endpoints, states []string
	hooks, nexts, bodyIDs           []int64
	bodies                          [][]byte
}

// args are deliveryInsertSQL's parameters.
func (c *deliveryCols) args(eventID string) []any {
	return []any{eventID, c.now, c.ids, c.hooks, c.formats, c.bodies, c.endpoints, c.states, c.nexts, c.bodyIDs}
}

// deliveryCols checks ds (setting their IDs) and stores the bodies they share; a body equal
// to the event's payload is left to be read from it.
func (t *emitTx) deliveryCols(ctx context.Context, eventID string, ev insertedEvent, now time.Time, ds []store.DeliveryInsertParams) (*deliveryCols, error) {
	n := store.UnixNanos(now)
	cols := &deliveryCols{now: n}
	rows := make([]deliveryRow, len(ds))
	for i := range ds {
		r, err := checkDelivery(&ds[i], n)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	plan, shared := store.ShareBodies(ev.payload, len(ds), func(i int) []byte { return ds[i].Body })
	sharedIDs := make([]int64, len(shared))
	for k, body := range shared {
		if err := t.tx.QueryRow(ctx, `INSERT INTO delivery_bodies (event_id, body) VALUES ($1, $2) RETURNING id`,
			eventID, body).Scan(&sharedIDs[k]); err != nil {
			return nil, fmt.Errorf("postgres: insert deliveries of event %s: store a shared body: %w", eventID, err)
		}
	}
	for i := range rows {
		r := &rows[i]
		var bodyID int64
		switch k := plan[i]; {
		case k == store.BodyEventPayload:
			r.body = nil // read from the event
		case k > 0:
			bodyID, r.body = sharedIDs[k-1], nil
		}
		cols.bodyIDs = append(cols.bodyIDs, bodyID)
		cols.ids = append(cols.ids, r.id)
		cols.formats = append(cols.formats, r.format)
		cols.endpoints = append(cols.endpoints, r.endpoint)
		cols.states = append(cols.states, r.state)
		cols.hooks = append(cols.hooks, r.hookID)
		cols.nexts = append(cols.nexts, r.next)
		cols.bodies = append(cols.bodies, r.body)
	}
	return cols, nil
}

func (t *emitTx) DeploymentRequestInsert(ctx context.Context, r *store.DeploymentRequest) error {
	if err := store.PrepareDeploymentRequestInsert(r); err != nil {
		return fmt.Errorf("postgres: insert deployment request: %w", err)
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO deployment_requests (id, org, project, stack, hook_id, event_id, cause, status, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, r.ID, r.Target.Org, r.Target.Project, r.Target.Stack, r.HookID, r.EventID,
		nonNil(r.Cause), r.Status, r.Reason, store.UnixNanos(r.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("deployment request %s: %w", r.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: insert deployment request %s: %w", r.ID, err)
	}
	return nil
}

func (t *emitTx) IdempotencyGet(ctx context.Context, org, key string, since time.Time) ([]byte, error) {
	var resp []byte
	err := t.tx.QueryRow(ctx, `SELECT response FROM idempotency_keys WHERE org = $1 AND key = $2 AND created_at >= $3`,
		org, key, store.UnixNanos(since)).Scan(&resp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("idempotency key in %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read idempotency key: %w", err)
	}
	return resp, nil
}

// IdempotencyPut stores the response for a key. Two servers emitting with the same new key at
// once both find none; the second's insert then waits for the first's transaction and
// overwrites it, as in SQLite where the second emit runs after the first.
func (t *emitTx) IdempotencyPut(ctx context.Context, org, key string, response []byte, now time.Time) error {
	if org == "" || key == "" {
		return errors.New("postgres: store idempotency key: org and key are required")
	}
	if response == nil {
		response = []byte{}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO idempotency_keys (org, key, response, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org, key) DO UPDATE SET response = excluded.response, created_at = excluded.created_at`,
		org, key, response, store.UnixNanos(now))
	if err != nil {
		return fmt.Errorf("postgres: store idempotency key: %w", err)
	}
	return nil
}

// EventGet returns one event, or ErrNotFound.
func (s *Store) EventGet(ctx context.Context, id string) (*store.Event, error) {
	var e store.Event
	var created int64
	var filter, kind string
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT id, filter, kind, org, project, stack, environment, payload, cause, created_at
			FROM events WHERE id = $1`, id).Scan(&e.ID, &filter, &kind, &e.Subject.Org, &e.Subject.Project, &e.Subject.Stack,
			&e.Subject.Environment, &e.Payload, &e.Cause, &created)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get event %s: %w", id, err))
	}
	e.Filter, e.Kind = webhook.Filter(filter), webhook.Kind(kind)
	if len(e.Cause) == 0 {
		e.Cause = nil
	}
	e.CreatedAt = store.FromUnixNanos(created)
	return &e, nil
}

// DeploymentRequestList returns the deployment requests for target, oldest first. A target
// with only Org (or Org and Project) lists every request under it.
func (s *Store) DeploymentRequestList(ctx context.Context, target webhook.Scope) ([]*store.DeploymentRequest, error) {
	if target.Org == "" {
		return nil, errors.New("postgres: list deployment requests: the target's organization is required")
	}
	var out []*store.DeploymentRequest
	err := s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT id, org, project, stack, hook_id, event_id, cause, status, reason, created_at
			FROM deployment_requests
			WHERE org = $1 AND ($2 = '' OR project = $2) AND ($2 = '' OR $3 = '' OR stack = $3)
			ORDER BY created_at, seq`, target.Org, target.Project, target.Stack)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.DeploymentRequest, error) {
			var r store.DeploymentRequest
			var created int64
			if err := row.Scan(&r.ID, &r.Target.Org, &r.Target.Project, &r.Target.Stack, &r.HookID, &r.EventID, &r.Cause,
				&r.Status, &r.Reason, &created); err != nil {
				return nil, err
			}
			if len(r.Cause) == 0 {
				r.Cause = nil
			}
			r.CreatedAt = store.FromUnixNanos(created)
			return &r, nil
		})
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list deployment requests: %w", err))
	}
	return out, nil
}
