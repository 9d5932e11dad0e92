package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// Web console sessions (store.Session): the console_sessions table of migration 014.

// SessionCreate stores a session, deleting expired ones and the token's oldest beyond its cap
// in the same transaction (store.SessionCreateParams).
func (s *Store) SessionCreate(ctx context.Context, p store.SessionCreateParams) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	ss, now := p.Session, store.UnixNanos(p.Now)
	return s.withDurableTx(ctx, func(tx txq) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash IN (
			SELECT id_hash FROM console_sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, now, store.SessionPruneLimit); err != nil {
			return fmt.Errorf("sqlite: delete expired sessions: %w", err)
		}
		if p.PerTokenLimit > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash IN (
				SELECT id_hash FROM console_sessions WHERE token_id = ? ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?)`,
				ss.TokenID, p.PerTokenLimit-1); err != nil {
				return fmt.Errorf("sqlite: delete the oldest sessions of token %s: %w", ss.TokenID, err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			ss.IDHash, ss.TokenID, ss.CSRF, store.UnixNanos(ss.CreatedAt), store.UnixNanos(ss.ExpiresAt))
		if isUnique(err) {
			return fmt.Errorf("session: %w", store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("sqlite: create session of token %s: %w", ss.TokenID, err)
		}
		return nil
	})
}

// SessionGet returns the session with p.IDHash unless it has expired at p.Now.
func (s *Store) SessionGet(ctx context.Context, p store.SessionGetParams) (*store.Session, error) {
	var ss store.Session
	var created, expires int64
	err := dbq{s}.QueryRowContext(ctx, `SELECT id_hash, token_id, csrf, created_at, expires_at FROM console_sessions
		WHERE id_hash = ? AND expires_at > ?`, p.IDHash, store.UnixNanos(p.Now)).Scan(&ss.IDHash, &ss.TokenID, &ss.CSRF, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get session: %w", err)
	}
	ss.CreatedAt, ss.ExpiresAt = store.FromUnixNanos(created), store.FromUnixNanos(expires)
	return &ss, nil
}

// SessionDelete deletes the session with idHash, if there is one.
func (s *Store) SessionDelete(ctx context.Context, idHash string) error {
	return s.withDurableTx(ctx, func(tx txq) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash = ?`, idHash); err != nil {
			return fmt.Errorf("sqlite: delete session: %w", err)
		}
		return nil
	})
}
