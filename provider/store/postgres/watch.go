package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// WatchCursorList returns the cursors of backend, ordered by stack.
func (s *Store) WatchCursorList(ctx context.Context, backend string) ([]*store.WatchCursor, error) {
	var out []*store.WatchCursor
	err := s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT stack, present, generation, last_nanos, last_key, updated_at
			FROM watch_cursors WHERE backend = $1 ORDER BY stack`, backend)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.WatchCursor, error) {
			c := &store.WatchCursor{Backend: backend}
			var gen int32
			var updated int64
			if err := r.Scan(&c.Stack, &c.Present, &gen, &c.LastNanos, &c.LastKey, &updated); err != nil {
				return nil, err
			}
			c.Generation, c.UpdatedAt = int(gen), store.FromUnixNanos(updated)
			return c, nil
		})
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list watch cursors: %w", err))
	}
	return out, nil
}

// WatchCursorAdvance moves a stack's cursor to p.Nanos unless it is already further.
func (s *Store) WatchCursorAdvance(ctx context.Context, p store.WatchCursorAdvanceParams) error {
	if p.Backend == "" {
		return errors.New("postgres: advance watch cursor: Backend is required")
	}
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO watch_cursors (backend, stack, last_nanos, last_key, updated_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (backend, stack) DO UPDATE SET last_nanos = excluded.last_nanos,
				last_key = excluded.last_key, updated_at = excluded.updated_at
			WHERE excluded.last_nanos > watch_cursors.last_nanos`,
			p.Backend, p.Stack, p.Nanos, p.Key, store.UnixNanos(p.Now))
		if err != nil {
			return fmt.Errorf("postgres: advance watch cursor of %s: %w", p.Stack, err)
		}
		return nil
	}))
}

// WatchCursorPresence records a stack's appearance or disappearance, fenced by generation.
func (s *Store) WatchCursorPresence(ctx context.Context, p store.WatchCursorPresenceParams) error {
	if p.Backend == "" {
		return errors.New("postgres: record watched stack presence: Backend is required")
	}
	next := p.Generation + 1
	if p.Present {
		next = p.Generation
	}
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		if p.Generation == 0 {
			tag, err := tx.Exec(ctx, `INSERT INTO watch_cursors (backend, stack, present, generation, updated_at)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (backend, stack) DO NOTHING`,
				p.Backend, p.Stack, p.Present, next, store.UnixNanos(p.Now))
			if err != nil {
				return fmt.Errorf("postgres: record watched stack %s: %w", p.Stack, err)
			}
			if tag.RowsAffected() == 1 {
				return nil
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE watch_cursors SET present = $1, generation = $2, updated_at = $3
			WHERE backend = $4 AND stack = $5 AND generation = $6`,
			p.Present, next, store.UnixNanos(p.Now), p.Backend, p.Stack, p.Generation)
		if err != nil {
			return fmt.Errorf("postgres: record watched stack %s: %w", p.Stack, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("watched stack %s generation %d: %w", p.Stack, p.Generation, store.ErrLeaseLost)
		}
		return nil
	}))
}
