package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

var _ store.WatchCursors = (*Store)(nil)

// WatchCursorList returns the cursors of backend, ordered by stack.
func (s *Store) WatchCursorList(ctx context.Context, backend string) ([]*store.WatchCursor, error) {
	rows, err := dbq{s}.QueryContext(ctx, `SELECT stack, present, generation, last_nanos, last_key, updated_at
		FROM watch_cursors WHERE backend = ? ORDER BY stack`, backend)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list watch cursors: %w", err)
	}
	defer rows.Close()
	var out []*store.WatchCursor
	for rows.Next() {
		c := &store.WatchCursor{Backend: backend}
		var present int
		var updated int64
		if err := rows.Scan(&c.Stack, &present, &c.Generation, &c.LastNanos, &c.LastKey, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: list watch cursors: %w", err)
		}
		c.Present, c.UpdatedAt = present != 0, store.FromUnixNanos(updated)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list watch cursors: %w", err)
	}
	return out, nil
}

// WatchCursorAdvance moves a stack's cursor to p.Nanos unless it is already further.
func (s *Store) WatchCursorAdvance(ctx context.Context, p store.WatchCursorAdvanceParams) error {
	if p.Backend == "" {
		return errors.New("sqlite: advance watch cursor: Backend is required")
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO watch_cursors (backend, stack, last_nanos, last_key, updated_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (backend, stack) DO UPDATE SET last_nanos = excluded.last_nanos,
				last_key = excluded.last_key, updated_at = excluded.updated_at
			WHERE excluded.last_nanos > watch_cursors.last_nanos`,
			p.Backend, p.Stack, p.Nanos, p.Key, store.UnixNanos(p.Now))
		if err != nil {
			return fmt.Errorf("sqlite: advance watch cursor of %s: %w", p.Stack, err)
		}
		return nil
	})
}

// WatchCursorPresence records a stack's appearance or disappearance, fenced by generation.
func (s *Store) WatchCursorPresence(ctx context.Context, p store.WatchCursorPresenceParams) error {
	if p.Backend == "" {
		return errors.New("sqlite: record watched stack presence: Backend is required")
	}
	present, next := 0, p.Generation+1
	if p.Present {
		present, next = 1, p.Generation
	}
	return s.withWriteTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO watch_cursors (backend, stack, present, generation, updated_at)
			SELECT ?, ?, ?, ?, ? WHERE ? = 0
			ON CONFLICT (backend, stack) DO NOTHING`,
			p.Backend, p.Stack, present, next, store.UnixNanos(p.Now), p.Generation)
		if err != nil {
			return fmt.Errorf("sqlite: record watched stack %s: %w", p.Stack, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		res, err = tx.ExecContext(ctx, `UPDATE watch_cursors SET present = ?, generation = ?, updated_at = ?
			WHERE backend = ? AND stack = ? AND generation = ?`,
			present, next, store.UnixNanos(p.Now), p.Backend, p.Stack, p.Generation)
		if err != nil {
			return fmt.Errorf("sqlite: record watched stack %s: %w", p.Stack, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("watched stack %s generation %d: %w", p.Stack, p.Generation, store.ErrLeaseLost)
		}
		return nil
	})
}
