package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const deliveryColumns = `id, event_id, hook_id, filter, kind, format, body, endpoint, state, attempts,
	next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at`

func scanDelivery(r scanner) (*store.Delivery, error) {
	var d store.Delivery
	var next, lease, created, updated int64
	if err := r.Scan(&d.ID, &d.EventID, &d.HookID, &d.Filter, &d.Kind, &d.Format, &d.Body, &d.Endpoint, &d.State,
		&d.Attempts, &next, &lease, &d.ClaimedBy, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.NextAttemptAt = fromNanos(next)
	d.LeaseUntil = fromNanos(lease)
	d.CreatedAt = fromNanos(created)
	d.UpdatedAt = fromNanos(updated)
	return &d, nil
}

// deliveryClaimSQL claims due deliveries in one statement.
//
//   - held counts, per endpoint, the deliveries running under a lease that has not expired,
//     whichever worker or process holds them; capped lists the endpoints already at the cap.
//   - first, retries and expired are the candidates: the earliest-due first attempts and
//     retries of endpoints that are not capped, and running deliveries whose lease expired (their
//     worker died; they count as retries). Each is a range scan of its partial index that stops
//     after ?6 rows, so the cost follows the claim size, not the backlog.
//   - ranked numbers each endpoint's candidates, first attempts (attempts = 0) ahead of
//     retries, then by next_attempt_at, then in insertion order.
//   - picked keeps per endpoint only as many as fit under the cap beside what is held, and
//     the best ?3 of those overall.
//
// Parameters: ?1 now, ?2 per-endpoint cap, ?3 limit, ?4 lease until, ?5 worker, ?6 candidates
// per class.
const deliveryClaimSQL = `
WITH held AS (
    SELECT endpoint, COUNT(*) AS n FROM deliveries
    WHERE state = 'running' AND lease_until > ?1
    GROUP BY endpoint
),
capped AS (
    SELECT endpoint FROM held WHERE n >= ?2
),
first AS (
    SELECT rowid AS rid, endpoint, 0 AS retry, next_attempt_at FROM deliveries
    WHERE state = 'pending' AND attempts = 0 AND next_attempt_at <= ?1
      AND endpoint NOT IN (SELECT endpoint FROM capped)
    ORDER BY next_attempt_at LIMIT ?6
),
retries AS (
    SELECT rowid AS rid, endpoint, 1 AS retry, next_attempt_at FROM deliveries
    WHERE state = 'pending' AND attempts > 0 AND next_attempt_at <= ?1
      AND endpoint NOT IN (SELECT endpoint FROM capped)
    ORDER BY next_attempt_at LIMIT ?6
),
expired AS (
    SELECT rowid AS rid, endpoint, 1 AS retry, next_attempt_at FROM deliveries
    WHERE state = 'running' AND lease_until <= ?1
      AND endpoint NOT IN (SELECT endpoint FROM capped)
    ORDER BY lease_until LIMIT ?6
),
ranked AS (
    SELECT rid, endpoint, retry, next_attempt_at,
        ROW_NUMBER() OVER (PARTITION BY endpoint ORDER BY retry, next_attempt_at, rid) AS rn
    FROM (SELECT * FROM first UNION ALL SELECT * FROM retries UNION ALL SELECT * FROM expired)
),
picked AS (
    SELECT ranked.rid FROM ranked LEFT JOIN held ON held.endpoint = ranked.endpoint
    WHERE ranked.rn + COALESCE(held.n, 0) <= ?2
    ORDER BY ranked.retry, ranked.next_attempt_at, ranked.rid
    LIMIT ?3
)
UPDATE deliveries
SET state = 'running', attempts = attempts + 1, lease_until = ?4, claimed_by = ?5, updated_at = ?1
WHERE rowid IN (SELECT rid FROM picked)
RETURNING ` + deliveryColumns

// claimCandidates is how many rows of each class (first attempts, retries, expired leases) a
// claim considers: enough to fill the limit even when some endpoints take only part of their
// share. Endpoints at the cap are skipped in the index scan, so they cannot crowd others out.
func claimCandidates(limit int, perEndpoint int64) int64 {
	n := int64(limit) * min(perEndpoint, 16)
	return min(max(n, 64), 4096)
}

// perEndpointUnlimited stands for "no cap" when PerEndpointLimit is zero.
const perEndpointUnlimited = 1 << 40

// DeliveryClaim claims due deliveries (see store.DeliveryClaimParams) and returns them with the
// hook's current URL, secret and active flag, first attempts first.
func (s *Store) DeliveryClaim(ctx context.Context, p store.DeliveryClaimParams) ([]*store.ClaimedDelivery, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if p.Worker == "" {
		return nil, errors.New("sqlite: claim deliveries: Worker is required: give the worker a unique name")
	}
	if p.Lease <= 0 {
		return nil, fmt.Errorf("sqlite: claim deliveries: Lease is %s: give a lease longer than the HTTP timeout", p.Lease)
	}
	if p.PerEndpointLimit < 0 {
		return nil, fmt.Errorf("sqlite: claim deliveries: PerEndpointLimit is %d: give a positive cap, or 0 for none", p.PerEndpointLimit)
	}
	capN := int64(p.PerEndpointLimit)
	if capN == 0 {
		capN = perEndpointUnlimited
	}
	now := toNanos(p.Now)
	var out []*store.ClaimedDelivery
	err := s.withWriteTx(ctx, func(tx txq) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, deliveryClaimSQL, now, capN, p.Limit, now+p.Lease.Nanoseconds(), p.Worker,
			claimCandidates(p.Limit, capN))
		if err != nil {
			return fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: claim deliveries: %w", err)
			}
			out = append(out, &store.ClaimedDelivery{Delivery: *d})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		return s.fillHooks(ctx, tx, out)
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].Attempts > 1, out[j].Attempts > 1
		if ri != rj {
			return !ri
		}
		if !out[i].NextAttemptAt.Equal(out[j].NextAttemptAt) {
			return out[i].NextAttemptAt.Before(out[j].NextAttemptAt)
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, nil
}

// fillHooks sets URL, Secret and HookActive of claimed deliveries from their hooks.
func (s *Store) fillHooks(ctx context.Context, tx queryer, cds []*store.ClaimedDelivery) error {
	seen := map[int64]bool{}
	var ids []int64
	for _, cd := range cds {
		if !seen[cd.HookID] {
			seen[cd.HookID] = true
			ids = append(ids, cd.HookID)
		}
	}
	idList, _ := json.Marshal(ids) // an int64 slice always marshals
	type hookInfo struct {
		url    string
		secret string
		active bool
	}
	hooks := make(map[int64]hookInfo, len(ids))
	rows, err := tx.QueryContext(ctx, `SELECT id, org, project, stack, environment, name, payload_url, active, secret_box
		FROM hooks WHERE id IN (SELECT value FROM json_each(?))`, string(idList))
	if err != nil {
		return fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var ref store.HookRef
		var info hookInfo
		var sealed []byte
		if err := rows.Scan(&id, &ref.Org, &ref.Project, &ref.Stack, &ref.Environment, &ref.Name, &info.url, &info.active, &sealed); err != nil {
			return fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
		}
		if info.secret, err = s.openSecret(ref, sealed); err != nil {
			return err
		}
		hooks[id] = info
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: claim deliveries: read webhooks: %w", err)
	}
	for _, cd := range cds {
		h := hooks[cd.HookID] // a delivery's hook always exists: deleting a hook deletes its deliveries
		cd.URL, cd.Secret, cd.HookActive = h.url, h.secret, h.active
	}
	return nil
}

// DeliveryComplete finishes a claimed attempt; see store.DeliveryCompleteParams. A delivery
// that is gone (its hook was deleted) is reported as ErrLeaseLost too.
func (s *Store) DeliveryComplete(ctx context.Context, p store.DeliveryCompleteParams) error {
	switch p.State {
	case store.DeliveryPending, store.DeliverySucceeded, store.DeliveryFailed, store.DeliveryDiscarded:
	default:
		return fmt.Errorf("sqlite: complete delivery %s: State %q is not a result: use succeeded, failed, discarded, or pending with NextAttemptAt for a retry", p.ID, p.State)
	}
	now := toNanos(p.Now)
	next := toNanos(p.NextAttemptAt)
	if p.State == store.DeliveryPending && next == 0 {
		next = now
	}
	lastErr := p.Record.Error
	if lastErr == "" && p.State != store.DeliverySucceeded && p.Record.ResponseCode != 0 {
		lastErr = fmt.Sprintf("the endpoint answered HTTP %d", p.Record.ResponseCode)
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		var hookID int64
		var filter, kind string
		err := tx.QueryRowContext(ctx, `UPDATE deliveries
			SET state = ?, next_attempt_at = CASE WHEN ? != 0 THEN ? ELSE next_attempt_at END, lease_until = 0,
				last_error = ?, updated_at = ?
			WHERE id = ? AND state = 'running' AND attempts = ? AND claimed_by = ?
			RETURNING hook_id, filter, kind`,
			string(p.State), next, next, lastErr, now, p.ID, p.Attempt, p.Worker).Scan(&hookID, &filter, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s attempt %d by %s: %w", p.ID, p.Attempt, p.Worker, store.ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("sqlite: complete delivery %s: %w", p.ID, err)
		}
		rec := p.Record
		rec.DeliveryID, rec.HookID, rec.Number = p.ID, hookID, p.Attempt
		if rec.Filter == "" {
			rec.Filter = webhook.Filter(filter)
		}
		if rec.Kind == "" {
			rec.Kind = webhook.Kind(kind)
		}
		if _, err := insertAttempt(ctx, tx, &rec); err != nil {
			return err
		}
		if p.DisableHookReason != "" {
			return disableHook(ctx, tx, hookID, p.DisableHookReason, p.ID, now)
		}
		return nil
	})
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

// DeliveryStats describes the queue at now.
func (s *Store) DeliveryStats(ctx context.Context, now time.Time) (store.QueueStats, error) {
	var st store.QueueStats
	var nextDue sql.NullInt64
	err := dbq{s}.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND attempts = 0) +
			(SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND attempts > 0),
		(SELECT COUNT(*) FROM deliveries WHERE state = 'running'),
		(SELECT MIN(m) FROM (
			SELECT MIN(next_attempt_at) AS m FROM deliveries WHERE state = 'pending' AND attempts = 0
			UNION ALL
			SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND attempts > 0)),
		(SELECT COUNT(*) FROM hooks WHERE active = 0 AND disabled_reason != ''),
		(SELECT COUNT(*) FROM deliveries WHERE state IN ('succeeded', 'failed'))`).
		Scan(&st.Pending, &st.Running, &nextDue, &st.HooksDisabled, &st.DeliveriesDone)
	if err != nil {
		return st, fmt.Errorf("sqlite: queue stats: %w", err)
	}
	if nextDue.Valid {
		st.NextDue = fromNanos(nextDue.Int64)
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
		r.CreatedAt = fromNanos(created)
		out = append(out, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list deployment requests: %w", err)
	}
	return out, nil
}
