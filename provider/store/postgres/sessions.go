package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Web console sessions (store.Session): the console_sessions table of migration 003.

// SessionCreate stores a session, deleting expired ones and the token's oldest beyond its cap
// in the same transaction (store.SessionCreateParams).
func (s *Store) SessionCreate(ctx context.Context, p store.SessionCreateParams) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	ss, now := p.Session, store.UnixNanos(p.Now)
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash IN (
			SELECT id_hash FROM console_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)`, now, store.SessionPruneLimit); err != nil {
			return fmt.Errorf("postgres: delete expired sessions: %w", err)
		}
		if p.PerTokenLimit > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash IN (
				SELECT id_hash FROM console_sessions WHERE token_id = $1 ORDER BY created_at DESC, id_hash OFFSET $2)`,
				ss.TokenID, p.PerTokenLimit-1); err != nil {
				return fmt.Errorf("postgres: delete the oldest sessions of token %s: %w", ss.TokenID, err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO console_sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			ss.IDHash, ss.TokenID, ss.CSRF, store.UnixNanos(ss.CreatedAt), store.UnixNanos(ss.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("session: %w", store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: create session of token %s: %w", ss.TokenID, err)
		}
		return nil
	}))
}

// SessionGet returns the session with p.IDHash unless it has expired at p.Now.
func (s *Store) SessionGet(ctx context.Context, p store.SessionGetParams) (*store.Session, error) {
	var ss store.Session
	var created, expires int64
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT id_hash, token_id, csrf, created_at, expires_at FROM console_sessions
			WHERE id_hash = $1 AND expires_at > $2`, p.IDHash, store.UnixNanos(p.Now)).Scan(&ss.IDHash, &ss.TokenID, &ss.CSRF, &created, &expires)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get session: %w", err))
	}
	ss.CreatedAt, ss.ExpiresAt = store.FromUnixNanos(created), store.FromUnixNanos(expires)
	return &ss, nil
}

// SessionDelete deletes the session with idHash, if there is one.
func (s *Store) SessionDelete(ctx context.Context, idHash string) error {
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
			return fmt.Errorf("postgres: delete session: %w", err)
		}
		return nil
	}))
}
