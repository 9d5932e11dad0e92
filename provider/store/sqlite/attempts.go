package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// AttemptList page sizes.
const (
	AttemptListLimitDefault = store.AttemptListLimitDefault
	AttemptListLimitMax     = store.AttemptListLimitMax
)

// attemptColumns reads attempts a; a request body stored by reference (request_body_ref = 1)
// is read from the attempt's delivery.
const attemptColumns = `a.id, a.delivery_id, a.hook_id, a.number, a.filter, a.kind, a.started_at, a.duration_ns, a.request_url,
	a.request_headers, CASE a.request_body_ref WHEN 1 THEN (SELECT ` + deliveryBody + ` FROM deliveries WHERE deliveries.id = a.delivery_id)
	ELSE a.request_body END, a.response_code, a.response_headers, a.response_body, a.error`

func insertAttempt(ctx context.Context, tx queryer, a *store.Attempt, bodyFromDelivery bool) (int64, error) {
	reqH, err := store.EncodeHeaders(a.RequestHeaders)
	if err != nil {
		return 0, fmt.Errorf("sqlite: record attempt: encode request headers: %w", err)
	}
	respH, err := store.EncodeHeaders(a.ResponseHeaders)
	if err != nil {
		return 0, fmt.Errorf("sqlite: record attempt: encode response headers: %w", err)
	}
	return insertAttemptEncoded(ctx, tx, a, reqH, respH, bodyFromDelivery)
}

// insertAttemptEncoded inserts an attempt whose headers are already encoded. With
// bodyFromDelivery (the request body is exactly the delivery's body) the body is not stored
// again: request_body_ref = 1 reads it from the delivery.
func insertAttemptEncoded(ctx context.Context, tx queryer, a *store.Attempt, reqH, respH string, bodyFromDelivery bool) (int64, error) {
	reqBody, ref := a.RequestBody, 0
	if bodyFromDelivery {
		reqBody, ref = nil, 1
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO attempts (delivery_id, hook_id, number, filter, kind, started_at, duration_ns,
		request_url, request_headers, request_body, request_body_ref, response_code, response_headers, response_body, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.DeliveryID, a.HookID, a.Number, string(a.Filter), string(a.Kind), store.UnixNanos(a.StartedAt), a.Duration.Nanoseconds(),
		a.RequestURL, reqH, reqBody, ref, a.ResponseCode, respH, a.ResponseBody, a.Error).Scan(&a.ID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: record attempt of delivery %s: %w", a.DeliveryID, err)
	}
	return a.ID, nil
}

func scanAttempt(r scanner) (*store.Attempt, error) {
	var a store.Attempt
	var started, dur int64
	var reqH, respH string
	if err := r.Scan(&a.ID, &a.DeliveryID, &a.HookID, &a.Number, &a.Filter, &a.Kind, &started, &dur, &a.RequestURL,
		&reqH, &a.RequestBody, &a.ResponseCode, &respH, &a.ResponseBody, &a.Error); err != nil {
		return nil, err
	}
	a.StartedAt = store.FromUnixNanos(started)
	a.Duration = time.Duration(dur)
	if err := store.DecodeAttemptHeaders(&a, reqH, respH); err != nil {
		return nil, err
	}
	return &a, nil
}

// AttemptRecord records an attempt made outside the worker loop; see
// store.AttemptRecordParams. A redelivery bumps the delivery's attempt count and leaves its
// state alone; if a worker held the delivery at that moment, its completion reports
// ErrLeaseLost and the lease expires normally.
func (s *Store) AttemptRecord(ctx context.Context, p store.AttemptRecordParams) (*store.Attempt, error) {
	rec := p.Record
	now := store.UnixNanos(p.Now)
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite: record attempt: %w", err)
	}
	err := s.withDurableTx(ctx, func(tx txq) error {
		sameBody := false
		if p.Event != nil {
			if err := insertEvent(ctx, tx, p.Event); err != nil {
				return err
			}
			d := *p.Delivery
			if d.State == "" {
				d.State = store.DeliveryFailed
				if rec.Succeeded() {
					d.State = store.DeliverySucceeded
				}
			}
			args, err := deliveryRowArgs(&d, p.Event.ID, string(p.Event.Filter), string(p.Event.Kind), p.Event.Subject.Org, bodyInline, now)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries `+deliveryInsertColumns+` VALUES `+deliveryInsertRow, args...); err != nil {
				if isUnique(err) {
					return fmt.Errorf("delivery %s: %w", d.ID, store.ErrAlreadyExists)
				}
				return fmt.Errorf("sqlite: record ping delivery: %w", err)
			}
			var inserted insertCounts
			inserted.add(d.State)
			if err := inserted.write(ctx, tx); err != nil {
				return err
			}
			lastErr := rec.Error
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET attempts = 1, last_error = ? WHERE id = ?`, lastErr, d.ID); err != nil {
				return fmt.Errorf("sqlite: record ping delivery: %w", err)
			}
			p.Delivery.ID = d.ID
			rec.DeliveryID, rec.HookID, rec.Number = d.ID, d.HookID, 1
			rec.Filter, rec.Kind = p.Event.Filter, p.Event.Kind
			sameBody = len(rec.RequestBody) > 0 && bytes.Equal(rec.RequestBody, d.Body)
		} else {
			var filter, kind string
			var body []byte
			err := tx.QueryRowContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, updated_at = ? WHERE id = ?
				RETURNING attempts, hook_id, filter, kind, `+deliveryBody, now, rec.DeliveryID).Scan(&rec.Number, &rec.HookID, &filter, &kind, &body)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("delivery %s: %w", rec.DeliveryID, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("sqlite: record redelivery of %s: %w", rec.DeliveryID, err)
			}
			rec.Filter, rec.Kind = webhook.Filter(filter), webhook.Kind(kind)
			sameBody = len(rec.RequestBody) > 0 && bytes.Equal(rec.RequestBody, body)
		}
		_, err := insertAttempt(ctx, tx, &rec, sameBody)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// AttemptList returns a hook's attempts newest first; see store.AttemptListParams. Limit 0
// means AttemptListLimitDefault; it is capped at AttemptListLimitMax.
func (s *Store) AttemptList(ctx context.Context, p store.AttemptListParams) ([]*store.Attempt, error) {
	limit, err := p.PageLimit()
	if err != nil {
		return nil, fmt.Errorf("sqlite: list attempts: %w", err)
	}
	q := `SELECT ` + attemptColumns + ` FROM attempts a WHERE a.hook_id = ?`
	args := []any{p.HookID}
	if p.Before > 0 {
		q += ` AND a.id < ?`
		args = append(args, p.Before)
	}
	q += ` ORDER BY a.id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := dbq{s}.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of webhook #%d: %w", p.HookID, err)
	}
	defer rows.Close()
	var out []*store.Attempt
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list attempts of webhook #%d: %w", p.HookID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of webhook #%d: %w", p.HookID, err)
	}
	return out, nil
}
