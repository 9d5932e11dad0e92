package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// HistoryDeleteLimitDefault is how many events (and idempotency keys, and deployments) one
// HistoryDeleteBefore call deletes at most when the caller gives no limit.
const HistoryDeleteLimitDefault = store.HistoryDeleteLimitDefault

// HistoryDeleteBefore deletes one batch of old history; see store.Store. The old events are
// locked (SKIP LOCKED), so two servers' pruners take different batches.
func (s *Store) HistoryDeleteBefore(ctx context.Context, p store.HistoryDeleteBeforeParams) (store.HistoryDeleteBeforeResult, error) {
	var res store.HistoryDeleteBeforeResult
	if err := p.Validate(); err != nil {
		return res, fmt.Errorf("postgres: delete history: %w", err)
	}
	limit, before := p.BatchLimit(), store.UnixNanos(p.Before)
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		res = store.HistoryDeleteBeforeResult{}
		rows, err := tx.Query(ctx, `SELECT e.id FROM events e
			WHERE e.created_at < $1
			  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'running'))
			ORDER BY e.created_at LIMIT $2 FOR UPDATE SKIP LOCKED`, before, limit)
		if err != nil {
			return fmt.Errorf("postgres: delete history: find old events: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: delete history: find old events: %w", err)
		}
		if len(ids) > 0 {
			steps := []struct {
				what string
				q    string
				n    *int
			}{
				{"attempts", `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ANY($1::text[]))`, &res.Attempts},
				{"deliveries", `DELETE FROM deliveries WHERE event_id = ANY($1::text[])`, &res.Deliveries},
				{"bodies", `DELETE FROM delivery_bodies WHERE event_id = ANY($1::text[])`, &res.Bodies},
				{"deployment requests", `DELETE FROM deployment_requests WHERE event_id = ANY($1::text[])`, &res.DeploymentRequests},
				{"events", `DELETE FROM events WHERE id = ANY($1::text[])`, &res.Events},
			}
			for _, st := range steps {
				tag, err := tx.Exec(ctx, st.q, ids)
				if err != nil {
					return fmt.Errorf("postgres: delete history: %s: %w", st.what, err)
				}
				*st.n = int(tag.RowsAffected())
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE (org, key) IN
			(SELECT org, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
		if err != nil {
			return fmt.Errorf("postgres: delete history: idempotency keys: %w", err)
		}
		res.IdempotencyKeys = int(tag.RowsAffected())
		// Finished deployments and their logs, except each stack's newest: it carries the
		// version the stack's next deployment counts on from.
		tag, err = tx.Exec(ctx, `DELETE FROM deployments WHERE id IN (SELECT d.id FROM deployments d
			WHERE d.status IN ('succeeded', 'failed', 'skipped') AND d.finished_at > 0 AND d.finished_at < $1
			  AND d.version < (SELECT max(o.version) FROM deployments o WHERE o.org = d.org AND o.project = d.project AND o.stack = d.stack)
			ORDER BY d.finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
		if err != nil {
			return fmt.Errorf("postgres: delete history: deployments: %w", err)
		}
		res.Deployments = int(tag.RowsAffected())
		res.More = len(ids) == limit || res.IdempotencyKeys == limit || res.Deployments == limit
		return nil
	})
	if err != nil {
		return store.HistoryDeleteBeforeResult{}, s.fail(err)
	}
	return res, nil
}
