package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

const tokenColumns = `id, org, description, hash, created_at, last_used_at, revoked_at`

func scanToken(r scanner) (*store.Token, error) {
	var t store.Token
	var created, used, revoked int64
	if err := r.Scan(&t.ID, &t.Org, &t.Description, &t.Hash, &created, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = store.FromUnixNanos(created), store.FromUnixNanos(used), store.FromUnixNanos(revoked)
	return &t, nil
}

// TokenCreate stores a token (only its hash). An empty ID is generated and set on t.
func (s *Store) TokenCreate(ctx context.Context, t *store.Token) error {
	if err := store.PrepareTokenInsert(t); err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return s.withDurableTx(ctx, func(tx txq) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Org, t.Description, t.Hash, store.UnixNanos(t.CreatedAt), store.UnixNanos(t.LastUsedAt), store.UnixNanos(t.RevokedAt))
		if isUnique(err) {
			return fmt.Errorf("token %s: %w", t.ID, store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("sqlite: create token %s: %w", t.ID, err)
		}
		return nil
	})
}

// TokenGet returns the token with ID id, revoked or not, or ErrNotFound.
func (s *Store) TokenGet(ctx context.Context, id string) (*store.Token, error) {
	t, err := scanToken(dbq{s}.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get token %s: %w", id, err)
	}
	return t, nil
}

// TokenGetByHash returns the token with hash, revoked or not, or ErrNotFound.
func (s *Store) TokenGetByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(dbq{s}.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get token: %w", err)
	}
	return t, nil
}

// TokenList returns the tokens of org (every token when org is ""), oldest first.
func (s *Store) TokenList(ctx context.Context, org string) ([]*store.Token, error) {
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	var args []any
	if org != "" {
		q += ` WHERE org = ?`
		args = append(args, org)
	}
	q += ` ORDER BY created_at, id`
	rows, err := dbq{s}.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	defer rows.Close()
	var out []*store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	return out, nil
}

// TokenRevoke marks a token revoked at now; revoking it again keeps the first time.
func (s *Store) TokenRevoke(ctx context.Context, id string, now time.Time) error {
	return s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`,
			store.UnixNanos(now), id)
		if err != nil {
			return fmt.Errorf("sqlite: revoke token %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// TokenTouch records that a token was used at now.
func (s *Store) TokenTouch(ctx context.Context, id string, now time.Time) error {
	return s.withWriteTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, store.UnixNanos(now), id)
		if err != nil {
			return fmt.Errorf("sqlite: touch token %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}
