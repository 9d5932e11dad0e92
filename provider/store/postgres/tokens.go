package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

const tokenColumns = `id, org, description, hash, created_at, last_used_at, revoked_at`

func scanToken(r pgx.Row) (*store.Token, error) {
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
		return fmt.Errorf("postgres: create token: %w", err)
	}
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.ID, t.Org, t.Description, t.Hash, store.UnixNanos(t.CreatedAt), store.UnixNanos(t.LastUsedAt), store.UnixNanos(t.RevokedAt))
		if isUnique(err) {
			return fmt.Errorf("token %s: %w", t.ID, store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
		}
		return nil
	}))
}

// TokenGet returns the token with ID id, revoked or not, or ErrNotFound.
func (s *Store) TokenGet(ctx context.Context, id string) (*store.Token, error) {
	t, err := s.tokenGet(ctx, `id`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get token %s: %w", id, err))
	}
	return t, nil
}

// TokenGetByHash returns the token with hash, revoked or not, or ErrNotFound.
func (s *Store) TokenGetByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := s.tokenGet(ctx, `hash`, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get token: %w", err))
	}
	return t, nil
}

// tokenGet reads the token whose column (id or hash, both unique) is value.
func (s *Store) tokenGet(ctx context.Context, column, value string) (*store.Token, error) {
	var t *store.Token
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		t, err = scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+column+` = $1`, value))
		return err
	})
	return t, err
}

// TokenList returns the tokens of org (every token when org is ""), oldest first.
func (s *Store) TokenList(ctx context.Context, org string) ([]*store.Token, error) {
	var out []*store.Token
	err := s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE $1 = '' OR org = $1 ORDER BY created_at, id`, org)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Token, error) { return scanToken(r) })
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list tokens: %w", err))
	}
	return out, nil
}

// TokenRevoke marks a token revoked at now; revoking it again keeps the first time.
func (s *Store) TokenRevoke(ctx context.Context, id string, now time.Time) error {
	return s.tokenUpdate(ctx, s.withTx, "revoke", `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN $1 ELSE revoked_at END WHERE id = $2`, id, now)
}

// TokenTouch records that a token was used at now (not waiting for the WAL flush: losing it
// in a crash of the server loses nothing that matters).
func (s *Store) TokenTouch(ctx context.Context, id string, now time.Time) error {
	return s.tokenUpdate(ctx, s.withLoopTx, "touch", `UPDATE tokens SET last_used_at = $1 WHERE id = $2`, id, now)
}

func (s *Store) tokenUpdate(ctx context.Context, withTx func(context.Context, func(pgx.Tx) error) error, what, sql, id string, now time.Time) error {
	return s.fail(withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, store.UnixNanos(now), id)
		if err != nil {
			return fmt.Errorf("postgres: %s token %s: %w", what, id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		return nil
	}))
}
