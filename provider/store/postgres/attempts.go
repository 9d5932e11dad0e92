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

// AttemptList page sizes.
const (
	AttemptListLimitDefault = store.AttemptListLimitDefault
	AttemptListLimitMax     = store.AttemptListLimitMax
)

// attemptColumns reads attempts a; a request body that was exactly the delivery's is read from
// the delivery (and its event).
const attemptColumns = `a.id, a.delivery_id, a.hook_id, a.number, a.filter, a.kind, a.started_at, a.duration_ns, a.request_url,
	a.request_headers::text, CASE WHEN a.request_body_is_delivery
		THEN (SELECT ` + deliveryBody + ` FROM deliveries d WHERE d.id = a.delivery_id) ELSE a.request_body END,
	a.response_code, a.response_headers::text, a.response_body, a.error`

// attemptRow is an attempt to insert with its headers encoded.
type attemptRow struct {
	a           *store.Attempt
	reqH, respH string
}

// insertAttemptRows inserts attempts in one statement, setting each one's ID. An attempt
// whose Filter or Kind is empty takes its delivery's; one whose request body is exactly its
// delivery's body does not store it again (request_body_is_delivery).
func insertAttemptRows(ctx context.Context, tx pgx.Tx, recs []attemptRow) error {
	n := len(recs)
	deliveryIDs, filters, kinds, urls, reqHs, respHs, errs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	hookIDs, started, durations := make([]int64, n), make([]int64, n), make([]int64, n)
	numbers, codes := make([]int32, n), make([]int32, n)
	reqBodies, respBodies := make([][]byte, n), make([][]byte, n)
	for i, r := range recs {
		a := r.a
		deliveryIDs[i], filters[i], kinds[i], urls[i] = a.DeliveryID, string(a.Filter), string(a.Kind), a.RequestURL
		reqHs[i], respHs[i], errs[i] = r.reqH, r.respH, a.Error
		hookIDs[i], started[i], durations[i] = a.HookID, store.UnixNanos(a.StartedAt), a.Duration.Nanoseconds()
		numbers[i], codes[i] = int32(a.Number), int32(a.ResponseCode)
		reqBodies[i], respBodies[i] = a.RequestBody, a.ResponseBody
	}
	rows, err := tx.Query(ctx, `WITH a AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
				$8::text[], $9::text[], $10::bytea[], $11::int[], $12::text[], $13::bytea[], $14::text[])
				WITH ORDINALITY AS a (delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url,
					request_headers, request_body, response_code, response_headers, response_body, error, ord)
		), b AS (
			SELECT a.*, d.filter AS d_filter, d.kind AS d_kind,
				length(a.request_body) > 0 AND a.request_body = `+deliveryBody+` AS same
			FROM a JOIN deliveries d ON d.id = a.delivery_id
		)
		INSERT INTO attempts (delivery_id, hook_id, number, filter, kind, started_at, duration_ns, request_url, request_headers,
			request_body_is_delivery, request_body, response_code, response_headers, response_body, error)
		SELECT delivery_id, hook_id, number, COALESCE(NULLIF(filter, ''), d_filter), COALESCE(NULLIF(kind, ''), d_kind),
			started_at, duration_ns, request_url, request_headers::jsonb, COALESCE(same, false),
			CASE WHEN COALESCE(same, false) THEN NULL ELSE request_body END, response_code, response_headers::jsonb, response_body, error
		FROM b ORDER BY ord
		RETURNING id, filter, kind`,
		deliveryIDs, hookIDs, numbers, filters, kinds, started, durations, urls, reqHs, reqBodies, codes, respHs, respBodies, errs)
	if err != nil {
		return fmt.Errorf("postgres: record attempts: %w", err)
	}
	i := 0
	var id int64
	var filter, kind string
	if _, err := pgx.ForEachRow(rows, []any{&id, &filter, &kind}, func() error {
		if i < n {
			recs[i].a.ID, recs[i].a.Filter, recs[i].a.Kind = id, webhook.Filter(filter), webhook.Kind(kind)
		}
		i++
		return nil
	}); err != nil {
		return fmt.Errorf("postgres: record attempts: %w", err)
	}
	if i != n {
		return fmt.Errorf("postgres: record attempts: %d of %d recorded (a delivery is gone)", i, n)
	}
	return nil
}

// insertAttempt inserts one attempt; with bodyFromDelivery unset the body is compared anyway.
func insertAttempt(ctx context.Context, tx pgx.Tx, a *store.Attempt, _ bool) error {
	reqH, err := store.EncodeHeaders(a.RequestHeaders)
	if err != nil {
		return fmt.Errorf("postgres: record attempt: encode request headers: %w", err)
	}
	respH, err := store.EncodeHeaders(a.ResponseHeaders)
	if err != nil {
		return fmt.Errorf("postgres: record attempt: encode response headers: %w", err)
	}
	return insertAttemptRows(ctx, tx, []attemptRow{{a: a, reqH: reqH, respH: respH}})
}

func scanAttempt(r pgx.Row) (*store.Attempt, error) {
	var a store.Attempt
	var started, dur int64
	var reqH, respH, filter, kind string
	var number, code int32
	if err := r.Scan(&a.ID, &a.DeliveryID, &a.HookID, &number, &filter, &kind, &started, &dur, &a.RequestURL,
		&reqH, &a.RequestBody, &code, &respH, &a.ResponseBody, &a.Error); err != nil {
		return nil, err
	}
	a.Number, a.ResponseCode = int(number), int(code)
	a.Filter, a.Kind = webhook.Filter(filter), webhook.Kind(kind)
	a.StartedAt = store.FromUnixNanos(started)
	a.Duration = time.Duration(dur)
	if err := store.DecodeAttemptHeaders(&a, reqH, respH); err != nil {
		return nil, err
	}
	return &a, nil
}

// AttemptRecord records an attempt made outside the worker loop; see
// store.AttemptRecordParams. A redelivery bumps the delivery's attempt count and leaves its
// state alone.
func (s *Store) AttemptRecord(ctx context.Context, p store.AttemptRecordParams) (*store.Attempt, error) {
	now := store.UnixNanos(p.Now)
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: record attempt: %w", err)
	}
	var rec store.Attempt
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		rec = p.Record
		if p.Event != nil {
			if err := insertEvent(ctx, tx, p.Event); err != nil {
				return err
			}
			d := *p.Delivery
			if d.State == "" {
				d.State = store.DeliveryFailed
				if rec.Error == "" && rec.ResponseCode >= 200 && rec.ResponseCode < 300 {
					d.State = store.DeliverySucceeded
				}
			}
			r, err := checkDelivery(&d, now)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO deliveries (id, event_id, hook_id, org, filter, kind, format, body, endpoint, state,
					attempts, next_attempt_at, last_error, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $13, $13)`,
				r.id, p.Event.ID, r.hookID, p.Event.Subject.Org, string(p.Event.Filter), string(p.Event.Kind), r.format, r.body,
				r.endpoint, r.state, r.next, rec.Error, now)
			if isUnique(err) {
				return fmt.Errorf("delivery %s: %w", d.ID, store.ErrAlreadyExists)
			}
			if err != nil {
				return fmt.Errorf("postgres: record ping delivery: %w", err)
			}
			p.Delivery.ID = d.ID
			rec.DeliveryID, rec.HookID, rec.Number = d.ID, d.HookID, 1
			rec.Filter, rec.Kind = p.Event.Filter, p.Event.Kind
		} else {
			var number int32
			var filter, kind string
			err := tx.QueryRow(ctx, `UPDATE deliveries SET attempts = attempts + 1, updated_at = $1 WHERE id = $2
				RETURNING attempts, hook_id, filter, kind`, now, rec.DeliveryID).Scan(&number, &rec.HookID, &filter, &kind)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("delivery %s: %w", rec.DeliveryID, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("postgres: record redelivery of %s: %w", rec.DeliveryID, err)
			}
			rec.Number = int(number)
			rec.Filter, rec.Kind = webhook.Filter(filter), webhook.Kind(kind)
		}
		return insertAttempt(ctx, tx, &rec, false)
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return &rec, nil
}

// AttemptList returns a hook's attempts newest first; see store.AttemptListParams.
func (s *Store) AttemptList(ctx context.Context, p store.AttemptListParams) ([]*store.Attempt, error) {
	limit, err := p.PageLimit()
	if err != nil {
		return nil, fmt.Errorf("postgres: list attempts: %w", err)
	}
	var out []*store.Attempt
	err = s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT `+attemptColumns+` FROM attempts a
			WHERE a.hook_id = $1 AND ($2 = 0 OR a.id < $2) ORDER BY a.id DESC LIMIT $3`, p.HookID, p.Before, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Attempt, error) { return scanAttempt(r) })
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list attempts of webhook #%d: %w", p.HookID, err))
	}
	return out, nil
}
