package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const deliveryInsertColumns = `(id, event_id, hook_id, filter, kind, format, body, body_ref, endpoint, org, state, attempts,
	next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at)`

// deliveryInsertRow has 14 parameters; attempts, lease_until, claimed_by and last_error are
// constants.
const deliveryInsertRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0, '', '', ?, ?)`

// Where a delivery's body is (deliveries.body_ref): in the row, the event's payload, or else
// the delivery_bodies row with that id.
const (
	bodyInline       = 0
	bodyEventPayload = -1
)

type emitTx struct {
	s  *Store
	tx queryer
	// ctx, when set, is the context of every statement instead of the caller's (a batch of
	// emits, emitbatch.go).
	ctx context.Context
	// events are the events inserted through this emitTx, by ID, so that their deliveries are
	// inserted without reading the event back.
	events map[string]*store.Event
	// deferCounts, when set, keeps the counts of inserted deliveries in counts instead of
	// writing them at once: a batch writes the sum of its committed emits once (emitbatch.go).
	deferCounts bool
	counts      insertCounts
	// tx is what the emits of one write transaction (a batch shares one) know of it.
	txState *emitTxState
}

// emitTxState is what the emits of one write transaction share.
type emitTxState struct {
	// gen is the hooks' generation, once read (genRead): no emit changes a hook.
	gen     hooksGen
	genRead bool
	// held counts the running deliveries, once read for a direct claim (emitclaim.go), with
	// the claims the transaction made since.
	held *heldCounts
	// backlog is set once the transaction knows of due work in the queue, found there or
	// left pending by one of its emits: no direct claim takes a slot before it.
	backlog bool
	// deferred, when set, collects the rows of events and deliveries that the batch inserts at
	// its end, a few statements for all its emits (emitbatch.go).
	deferred *deferredRows
}

// shared returns the transaction's shared state, made on first use.
func (t *emitTx) shared() *emitTxState {
	if t.txState == nil {
		t.txState = &emitTxState{}
	}
	return t.txState
}

// stmtCtx returns the context statements run under.
func (t *emitTx) stmtCtx(ctx context.Context) context.Context {
	if t.ctx != nil {
		return t.ctx
	}
	return ctx
}

func (t *emitTx) HookCandidates(ctx context.Context, subject webhook.Scope, orgOnly bool) ([]*store.Hook, error) {
	ctx = t.stmtCtx(ctx)
	st := t.shared()
	if !st.genRead {
		g, err := readHooksGen(ctx, t.tx)
		if err != nil {
			return nil, err
		}
		st.gen, st.genRead = g, true
	}
	return hookCandidates(ctx, t.s, t.tx, st.gen, subject, orgOnly)
}

func (t *emitTx) EventInsert(ctx context.Context, e *store.Event) error {
	ctx = t.stmtCtx(ctx)
	if rows := t.shared().deferred; rows != nil {
		args, err := eventRowArgs(e)
		if err != nil {
			return err
		}
		rows.events = append(rows.events, args...)
	} else if err := insertEvent(ctx, t.tx, e); err != nil {
		return err
	}
	if t.events == nil {
		t.events = map[string]*store.Event{}
	}
	t.events[e.ID] = e
	// Its deliveries of the raw format will be claimed with this payload as their body. An
	// emit rolled back leaves an entry nothing asks for: event IDs are not reused.
	t.s.payloads.put(e.ID, e.Payload)
	return nil
}

func insertEvent(ctx context.Context, tx queryer, e *store.Event) error {
	args, err := eventRowArgs(e)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, eventInsertSQL(1), args...)
	if isUnique(err) {
		return fmt.Errorf("event %s: %w", e.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: insert event %s: %w", e.ID, err)
	}
	return nil
}

// eventInsertRow is one row of eventInsertSQL; eventRowArgs gives its parameters.
const eventInsertRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

var eventInsertSQLs = map[int]string{}

// eventInsertSQL inserts rows events.
func eventInsertSQL(rows int) string {
	return cachedSQL(eventInsertSQLs, rows, func(b *strings.Builder) {
		b.WriteString(`INSERT INTO events (id, filter, kind, org, project, stack, environment, payload, cause, created_at) VALUES `)
		writeRows(b, eventInsertRow, rows)
	})
}

// eventRowArgs checks e, fills its defaults and returns the parameters of its eventInsertRow.
func eventRowArgs(e *store.Event) ([]any, error) {
	if err := store.PrepareEventInsert(e); err != nil {
		return nil, fmt.Errorf("sqlite: insert event: %w", err)
	}
	cause, err := json.Marshal(nonNil(e.Cause))
	if err != nil {
		return nil, fmt.Errorf("sqlite: insert event: encode cause: %w", err)
	}
	return []any{e.ID, string(e.Filter), string(e.Kind), e.Subject.Org, e.Subject.Project,
		e.Subject.Stack, e.Subject.Environment, e.Payload, string(cause), store.UnixNanos(e.CreatedAt)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeliveryInsertMany inserts the deliveries of one event, up to 200 rows per statement, with
// statements prepared once and reused. Each distinct body is written once: a body equal to the
// event's payload (the raw format) is read from the event, and a body several deliveries share
// (one rendering per format) is stored once in delivery_bodies; only a body that one delivery
// alone has is kept in its row.
func (t *emitTx) DeliveryInsertMany(ctx context.Context, eventID string, now time.Time, ds []store.DeliveryInsertParams) error {
	return t.insertDeliveries(t.stmtCtx(ctx), eventID, now, ds, nil)
}

// insertDeliveries inserts ds (see DeliveryInsertMany); with claim, those it marks are
// inserted claimed (DeliveryInsertClaimed, emitclaim.go).
func (t *emitTx) insertDeliveries(ctx context.Context, eventID string, now time.Time, ds []store.DeliveryInsertParams, claim *directClaim) error {
	if len(ds) == 0 {
		return nil
	}
	ev, err := t.eventOf(ctx, eventID)
	if err != nil {
		return err
	}
	refs, err := t.shareBodies(ctx, eventID, ev.payload, ds)
	if err != nil {
		return err
	}
	var inserted insertCounts
	n := store.UnixNanos(now)
	// The claimed ones go in statements of their own (claimedInsertSQL), the others in
	// deliveryInsertSQL's; a batch written without savepoints inserts both at its end.
	deferred := t.shared().deferred
	var pending, claimed []any
	for i := range ds {
		row, err := deliveryRowArgs(&ds[i], eventID, ev.filter, ev.kind, ev.org, refs[i], n)
		if err != nil {
			return err
		}
		if claim == nil || !claim.mine[i] {
			inserted.add(ds[i].State)
			pending = append(pending, row...)
			if deferred == nil && len(pending) == insertChunk(len(ds))*pendingParams {
				// A fan-out goes in as it is built, a full statement at a time.
				if err := insertRows(ctx, t.tx, pending, pendingParams, deliveryInsertSQL); err != nil {
					return insertDeliveriesErr(eventID, err)
				}
				pending = pending[:0]
			}
			continue
		}
		inserted.running++
		// claimedInsertRow: the row's columns up to org, then its next attempt, lease, holder
		// and times (its state, running, is in the statement).
		claimed = append(claimed, row[:10]...)
		claimed = append(claimed, row[11], claim.lease, claim.worker, row[12], row[13])
	}
	if deferred != nil {
		deferred.pending = append(deferred.pending, pending...)
		deferred.claimed = append(deferred.claimed, claimed...)
	} else {
		if err := insertRows(ctx, t.tx, claimed, claimedParams, claimedInsertSQL); err != nil {
			return insertDeliveriesErr(eventID, err)
		}
		if err := insertRows(ctx, t.tx, pending, pendingParams, deliveryInsertSQL); err != nil {
			return insertDeliveriesErr(eventID, err)
		}
	}
	if inserted.pending > 0 {
		t.s.claimSkips.gen.Add(1) // claims look behind capped endpoints and organizations again
		t.shared().backlog = true // due work now waits for the claim loop (emitclaim.go)
	}
	if t.deferCounts {
		t.counts.addAll(inserted)
		return nil
	}
	return inserted.write(ctx, t.tx)
}

func insertDeliveriesErr(eventID string, err error) error {
	if isUnique(err) {
		return fmt.Errorf("sqlite: insert deliveries of event %s: a delivery ID is taken: %w", eventID, store.ErrAlreadyExists)
	}
	return fmt.Errorf("sqlite: insert deliveries of event %s: %w", eventID, err)
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
	err := t.tx.QueryRowContext(ctx, `SELECT filter, kind, org, payload FROM events WHERE id = ?`, eventID).Scan(&ev.filter, &ev.kind, &ev.org, &ev.payload)
	if errors.Is(err, sql.ErrNoRows) {
		return ev, fmt.Errorf("sqlite: insert deliveries: event %s: %w; insert the event first", eventID, store.ErrNotFound)
	}
	if err != nil {
		return ev, fmt.Errorf("sqlite: insert deliveries of event %s: %w", eventID, err)
	}
	return ev, nil
}

// insertCounts adds up inserted deliveries by the store_counts row that counts them; triggers
// count every later change (migration 006).
type insertCounts struct{ pending, running, done int }

func (c *insertCounts) add(state store.DeliveryState) {
	switch state {
	case store.DeliveryPending, "": // "" is stored as pending
		c.pending++
	case store.DeliveryRunning:
		c.running++
	case store.DeliverySucceeded, store.DeliveryFailed:
		c.done++
	}
}

// addAll adds o's counts to c.
func (c *insertCounts) addAll(o insertCounts) {
	c.pending += o.pending
	c.running += o.running
	c.done += o.done
}

// write adds the counts to store_counts in one statement.
func (c *insertCounts) write(ctx context.Context, tx queryer) error {
	if *c == (insertCounts{}) {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE store_counts SET n = n + CASE name
			WHEN 'deliveries_pending' THEN ?1 WHEN 'deliveries_running' THEN ?2 ELSE ?3 END
		WHERE name IN ('deliveries_pending', 'deliveries_running', 'deliveries_done')`, c.pending, c.running, c.done)
	if err != nil {
		return fmt.Errorf("sqlite: count inserted deliveries: %w", err)
	}
	return nil
}

// shareBodies returns each delivery's body_ref (store.ShareBodies): bodyEventPayload for a
// body equal to payload, the id of a new delivery_bodies row for a body two or more deliveries
// have, bodyInline for the rest.
func (t *emitTx) shareBodies(ctx context.Context, eventID string, payload []byte, ds []store.DeliveryInsertParams) ([]int64, error) {
	plan, shared := store.ShareBodies(payload, len(ds), func(i int) []byte { return ds[i].Body })
	if rows := t.shared().deferred; len(shared) > 0 && rows != nil {
		// A shared body names its event, which must be in the table first.
		if err := rows.flushEvents(ctx, t.tx); err != nil {
			return nil, err
		}
	}
	ids := make([]int64, len(shared))
	for k, body := range shared {
		if err := t.tx.QueryRowContext(ctx, `INSERT INTO delivery_bodies (event_id, body) VALUES (?, ?) RETURNING id`,
			eventID, body).Scan(&ids[k]); err != nil {
			return nil, fmt.Errorf("sqlite: insert deliveries of event %s: store a shared body: %w", eventID, err)
		}
	}
	refs := make([]int64, len(ds))
	for i, k := range plan {
		switch {
		case k == store.BodyEventPayload:
			refs[i] = bodyEventPayload
		case k > 0:
			refs[i] = ids[k-1]
		}
	}
	return refs, nil
}

var deliveryInsertSQLs = map[int]string{}

// deliveryInsertSQL inserts rows deliveries.
func deliveryInsertSQL(rows int) string {
	return cachedSQL(deliveryInsertSQLs, rows, func(b *strings.Builder) {
		b.WriteString("INSERT INTO deliveries " + deliveryInsertColumns + " VALUES ")
		writeRows(b, deliveryInsertRow, rows)
	})
}

// deliveryRowArgs returns the parameters of deliveryInsertRow; org is the event's. With bodyRef
// other than bodyInline the row's body column is left empty: the body is read through the
// reference.
func deliveryRowArgs(d *store.DeliveryInsertParams, eventID, filter, kind, org string, bodyRef, now int64) ([]any, error) {
	state, err := d.PrepareInsert()
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	next := store.UnixNanos(d.NextAttemptAt)
	if next == 0 {
		next = now
	}
	body := d.Body
	if body == nil || bodyRef != bodyInline {
		body = []byte{}
	}
	format := d.Format
	if format == "" {
		format = webhook.FormatDefault
	}
	return []any{d.ID, eventID, d.HookID, filter, kind, string(format), body, bodyRef, d.Endpoint, org, string(state), next, now, now}, nil
}

func (t *emitTx) DeploymentRequestInsert(ctx context.Context, r *store.DeploymentRequest) error {
	ctx = t.stmtCtx(ctx)
	if err := store.PrepareDeploymentRequestInsert(r); err != nil {
		return fmt.Errorf("sqlite: insert deployment request: %w", err)
	}
	cause, err := json.Marshal(nonNil(r.Cause))
	if err != nil {
		return fmt.Errorf("sqlite: insert deployment request: encode cause: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO deployment_requests (id, org, project, stack, hook_id, event_id, cause, status, reason, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Target.Org, r.Target.Project, r.Target.Stack, r.HookID, r.EventID,
		string(cause), r.Status, r.Reason, store.UnixNanos(r.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("deployment request %s: %w", r.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: insert deployment request %s: %w", r.ID, err)
	}
	return nil
}

func (t *emitTx) IdempotencyGet(ctx context.Context, org, key string, since time.Time) ([]byte, error) {
	ctx = t.stmtCtx(ctx)
	var resp []byte
	err := t.tx.QueryRowContext(ctx, `SELECT response FROM idempotency_keys WHERE org = ? AND key = ? AND created_at >= ?`,
		org, key, store.UnixNanos(since)).Scan(&resp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("idempotency key in %s: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read idempotency key: %w", err)
	}
	return resp, nil
}

func (t *emitTx) IdempotencyPut(ctx context.Context, org, key string, response []byte, now time.Time) error {
	ctx = t.stmtCtx(ctx)
	if org == "" || key == "" {
		return errors.New("sqlite: store idempotency key: org and key are required")
	}
	if response == nil {
		response = []byte{}
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO idempotency_keys (org, key, response, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (org, key) DO UPDATE SET response = excluded.response, created_at = excluded.created_at`,
		org, key, response, store.UnixNanos(now))
	if err != nil {
		return fmt.Errorf("sqlite: store idempotency key: %w", err)
	}
	return nil
}

// EventGet returns one event, or ErrNotFound.
func (s *Store) EventGet(ctx context.Context, id string) (*store.Event, error) {
	var e store.Event
	var cause string
	var created int64
	err := dbq{s}.QueryRowContext(ctx, `SELECT id, filter, kind, org, project, stack, environment, payload, cause, created_at
		FROM events WHERE id = ?`, id).Scan(&e.ID, &e.Filter, &e.Kind, &e.Subject.Org, &e.Subject.Project, &e.Subject.Stack,
		&e.Subject.Environment, &e.Payload, &cause, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get event %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(cause), &e.Cause); err != nil {
		return nil, fmt.Errorf("sqlite: event %s: decode cause: %w", id, err)
	}
	if len(e.Cause) == 0 {
		e.Cause = nil
	}
	e.CreatedAt = store.FromUnixNanos(created)
	return &e, nil
}
