package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// deliveryBody reads a delivery's body through its body_ref (see migration 002).
const deliveryBody = `CASE deliveries.body_ref WHEN 0 THEN deliveries.body
	WHEN -1 THEN (SELECT e.payload FROM events e WHERE e.id = deliveries.event_id)
	ELSE (SELECT b.body FROM delivery_bodies b WHERE b.id = deliveries.body_ref) END`

const deliveryColumns = `id, event_id, hook_id, filter, kind, format, ` + deliveryBody + `, endpoint, state, attempts,
	next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at`

func scanDelivery(r scanner) (*store.Delivery, error) {
	var d store.Delivery
	var next, lease, created, updated int64
	if err := r.Scan(&d.ID, &d.EventID, &d.HookID, &d.Filter, &d.Kind, &d.Format, &d.Body, &d.Endpoint, &d.State,
		&d.Attempts, &next, &lease, &d.ClaimedBy, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.NextAttemptAt = store.FromUnixNanos(next)
	d.LeaseUntil = store.FromUnixNanos(lease)
	d.CreatedAt = store.FromUnixNanos(created)
	d.UpdatedAt = store.FromUnixNanos(updated)
	return &d, nil
}

// DeliveryGet returns one delivery, or ErrNotFound.
func (s *Store) DeliveryGet(ctx context.Context, id string) (*store.Delivery, error) {
	d, err := scanDelivery(dbq{s}.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get delivery %s: %w", id, err)
	}
	return d, nil
}

// DeliveryListByEvent returns the deliveries of one event in the order they were stored.
func (s *Store) DeliveryListByEvent(ctx context.Context, eventID string) ([]*store.Delivery, error) {
	rows, err := dbq{s}.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE event_id = ? ORDER BY rowid`, eventID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries of event %s: %w", eventID, err)
	}
	defer rows.Close()
	var out []*store.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list deliveries of event %s: %w", eventID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries of event %s: %w", eventID, err)
	}
	return out, nil
}

// DeliveryStats describes the queue at now. The counts come from store_counts, which triggers
// keep in step with every change (migration 006), and the due times from the first rows of
// the queue's partial indexes: the cost does not grow with the delivery history or the queue.
func (s *Store) DeliveryStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	var st store.QueueStats
	var nextDue sql.NullInt64
	err := dbq{s}.QueryRowContext(ctx, `SELECT
		(SELECT n FROM store_counts WHERE name = 'deliveries_pending'),
		(SELECT n FROM store_counts WHERE name = 'deliveries_running'),
		(SELECT MIN(m) FROM (
			SELECT MIN(next_attempt_at) AS m FROM deliveries WHERE state = 'pending' AND attempts = 0
			UNION ALL
			SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND attempts > 0)),
		(SELECT n FROM store_counts WHERE name = 'hooks_disabled'),
		(SELECT n FROM store_counts WHERE name = 'deliveries_done')`).
		Scan(&st.Pending, &st.Running, &nextDue, &st.HooksDisabled, &st.DeliveriesDone)
	if err != nil {
		return st, fmt.Errorf("sqlite: queue stats: %w", err)
	}
	if nextDue.Valid {
		st.NextDue = store.FromUnixNanos(nextDue.Int64)
		// The earliest pending delivery is the oldest due one, if it is due at all.
		if !st.NextDue.After(now) {
			st.OldestDue = st.NextDue
		}
	}
	return st, nil
}

// DeploymentRequestList returns the deployment requests for target, oldest first. A target
// with only Org (or Org and Project) lists every request under it.
func (s *Store) DeploymentRequestList(ctx context.Context, target webhook.Scope) ([]*store.DeploymentRequest, error) {
	if target.Org == "" {
		return nil, errors.New("sqlite: list deployment requests: the target's organization is required")
	}
	q := `SELECT id, org, project, stack, hook_id, event_id, cause, status, reason, created_at FROM deployment_requests WHERE org = ?`
	args := []any{target.Org}
	if target.Project != "" {
		q += ` AND project = ?`
		args = append(args, target.Project)
		if target.Stack != "" {
			q += ` AND stack = ?`
			args = append(args, target.Stack)
		}
	}
	q += ` ORDER BY created_at, rowid`
	rows, err := dbq{s}.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployment requests: %w", err)
	}
	defer rows.Close()
	var out []*store.DeploymentRequest
	for rows.Next() {
		var r store.DeploymentRequest
		var cause string
		var created int64
		if err := rows.Scan(&r.ID, &r.Target.Org, &r.Target.Project, &r.Target.Stack, &r.HookID, &r.EventID, &cause,
			&r.Status, &r.Reason, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list deployment requests: %w", err)
		}
		if err := json.Unmarshal([]byte(cause), &r.Cause); err != nil {
			return nil, fmt.Errorf("sqlite: deployment request %s: decode cause: %w", r.ID, err)
		}
		if len(r.Cause) == 0 {
			r.Cause = nil
		}
		r.CreatedAt = store.FromUnixNanos(created)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list deployment requests: %w", err)
	}
	return out, nil
}
