package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// HistoryDeleteLimitDefault is how many events (and idempotency keys) one HistoryDeleteBefore
// call deletes at most when the caller gives no limit: small enough that the transaction holds
// the write lock for a few milliseconds.
const HistoryDeleteLimitDefault = store.HistoryDeleteLimitDefault

// historyOldEventsSQL picks old events with no pending or running delivery, oldest first,
// through events_created and deliveries_event.
const historyOldEventsSQL = `SELECT e.id FROM events e
	WHERE e.created_at < ?1
	  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'running'))
	ORDER BY e.created_at LIMIT ?2`

// HistoryDeleteBefore deletes one batch of old history; see store.Store.
func (s *Store) HistoryDeleteBefore(ctx context.Context, p store.HistoryDeleteBeforeParams) (store.HistoryDeleteBeforeResult, error) {
	var res store.HistoryDeleteBeforeResult
	if err := p.Validate(); err != nil {
		return res, fmt.Errorf("sqlite: delete history: %w", err)
	}
	limit, before := p.BatchLimit(), store.UnixNanos(p.Before)
	err := s.withWriteTx(ctx, func(tx txq) error {
		res = store.HistoryDeleteBeforeResult{}
		ids, err := tx.strings(ctx, historyOldEventsSQL, before, limit)
		if err != nil {
			return fmt.Errorf("sqlite: delete history: find old events: %w", err)
		}
		if len(ids) > 0 {
			list, _ := json.Marshal(ids) // a string slice always marshals
			steps := []struct {
				what string
				q    string
				n    *int
			}{
				{"attempts", `DELETE FROM attempts WHERE delivery_id IN
					(SELECT id FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?1)))`, &res.Attempts},
				{"deliveries", `DELETE FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?1))`, &res.Deliveries},
				{"bodies", `DELETE FROM delivery_bodies WHERE event_id IN (SELECT value FROM json_each(?1))`, &res.Bodies},
				{"deployment requests", `DELETE FROM deployment_requests WHERE event_id IN (SELECT value FROM json_each(?1))`, &res.DeploymentRequests},
				{"events", `DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))`, &res.Events},
			}
			for _, st := range steps {
				r, err := tx.ExecContext(ctx, st.q, string(list))
				if err != nil {
					return fmt.Errorf("sqlite: delete history: %s: %w", st.what, err)
				}
				n, _ := r.RowsAffected()
				*st.n = int(n)
			}
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE (org, key) IN
			(SELECT org, key FROM idempotency_keys WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)`, before, limit)
		if err != nil {
			return fmt.Errorf("sqlite: delete history: idempotency keys: %w", err)
		}
		n, _ := r.RowsAffected()
		res.IdempotencyKeys = int(n)
		// Finished deployments and their logs, except each stack's newest: it carries the
		// version the stack's next deployment counts on from.
		r, err = tx.ExecContext(ctx, `DELETE FROM deployments WHERE rowid IN (SELECT d.rowid FROM deployments d
			WHERE d.status IN ('succeeded', 'failed', 'skipped') AND d.finished_at > 0 AND d.finished_at < ?1
			  AND d.version < (SELECT MAX(o.version) FROM deployments o WHERE o.org = d.org AND o.project = d.project AND o.stack = d.stack)
			ORDER BY d.finished_at LIMIT ?2)`, before, limit)
		if err != nil {
			return fmt.Errorf("sqlite: delete history: deployments: %w", err)
		}
		n, _ = r.RowsAffected()
		res.Deployments = int(n)
		res.More = len(ids) == limit || res.IdempotencyKeys == limit || res.Deployments == limit
		return nil
	})
	if err != nil {
		return store.HistoryDeleteBeforeResult{}, err
	}
	return res, nil
}
