package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
)

const hookColumns = `id, org, project, stack, environment, name, display_name, payload_url, active, format,
	filters, groups, secret_digest, secret_box IS NOT NULL, disabled_reason, created_at, updated_at`

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

func scanHook(r scanner) (*store.Hook, error) {
	var h store.Hook
	var active int
	var filters, groups string
	var created, updated int64
	if err := r.Scan(&h.ID, &h.Org, &h.Project, &h.Stack, &h.Environment, &h.Name, &h.DisplayName,
		&h.PayloadURL, &active, &h.Format, &filters, &groups, &h.SecretDigest, &h.HasSecret, &h.DisabledReason,
		&created, &updated); err != nil {
		return nil, err
	}
	h.Active = active != 0
	if err := json.Unmarshal([]byte(filters), &h.Filters); err != nil {
		return nil, fmt.Errorf("sqlite: hook %d: decode filters: %w", h.ID, err)
	}
	if err := json.Unmarshal([]byte(groups), &h.Groups); err != nil {
		return nil, fmt.Errorf("sqlite: hook %d: decode groups: %w", h.ID, err)
	}
	h.CreatedAt = store.FromUnixNanos(created)
	h.UpdatedAt = store.FromUnixNanos(updated)
	return &h, nil
}

func encodeList[T ~string](vs []T) string {
	if len(vs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(vs) // a string slice always marshals
	return string(b)
}

// sealSecret returns the sealed secret and its keyed digest, or (nil, "") for no secret.
func (s *Store) sealSecret(ref store.HookRef, secret string) ([]byte, string, error) {
	sealed, digest, err := sealing.SealHookSecret(s.currentBox(), ref, secret)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: seal the secret of hook %s: %w", ref, err)
	}
	return sealed, digest, nil
}

func (s *Store) openSecret(ref store.HookRef, sealed []byte) (string, error) {
	secret, err := sealing.OpenHookSecret(s.currentBox(), ref, sealed)
	if err != nil {
		return "", fmt.Errorf("sqlite: read the secret of hook %s: %w", ref, err)
	}
	return secret, nil
}

// HookCreate stores a new hook, generating an 8-hex-digit name when Spec.Name is empty.
func (s *Store) HookCreate(ctx context.Context, p store.HookCreateParams) (*store.Hook, error) {
	spec, generate, err := p.PreparedSpec()
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	now := store.UnixNanos(p.Now)
	var id int64
	for i := 0; ; i++ {
		if generate {
			spec.Name = store.NewHookName()
		}
		ref := store.HookRef{Scope: spec.Scope, Name: spec.Name}
		sealed, sum, err := s.sealSecret(ref, spec.Secret)
		if err != nil {
			return nil, err
		}
		err = s.withDurableTx(ctx, func(tx txq) error {
			return tx.QueryRowContext(ctx, `INSERT INTO hooks (org, project, stack, environment, name, display_name,
				payload_url, active, format, filters, groups, secret_box, secret_digest, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				spec.Org, spec.Project, spec.Stack, spec.Environment, spec.Name, spec.DisplayName, spec.PayloadURL,
				boolInt(spec.Active), string(spec.Format), encodeList(spec.Filters), encodeList(spec.Groups),
				sealed, sum, now, now).Scan(&id)
		})
		if err == nil {
			break
		}
		if isUnique(err) {
			if generate && i < store.HookNameAttempts {
				continue
			}
			return nil, fmt.Errorf("webhook %s: %w", ref, store.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("sqlite: create webhook %s: %w", ref, err)
	}
	return s.HookGetByID(ctx, id)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// HookGet returns the hook ref names, or ErrNotFound.
func (s *Store) HookGet(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	h, err := scanHook(dbq{s}.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks
		WHERE org = ? AND project = ? AND stack = ? AND environment = ? AND name = ?`,
		ref.Org, ref.Project, ref.Stack, ref.Environment, ref.Name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", ref, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get webhook %s: %w", ref, err)
	}
	return h, nil
}

// HookGetByID returns the hook with id, or ErrNotFound.
func (s *Store) HookGetByID(ctx context.Context, id int64) (*store.Hook, error) {
	h, err := scanHook(dbq{s}.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get webhook #%d: %w", id, err)
	}
	return h, nil
}

// HookList lists hooks ordered by scope and name; a page of one scope (After, Limit) reads
// only its rows, through hooks_scope_name. Names are compared with the column's BINARY
// collation, which is byte order.
func (s *Store) HookList(ctx context.Context, p store.HookListParams) ([]*store.Hook, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite: list webhooks: %w", err)
	}
	q, args := hookListSQL(p)
	return s.queryHooks(ctx, s.db, q, args...)
}

// hookListSQL is HookList's query and its arguments.
func hookListSQL(p store.HookListParams) (string, []any) {
	q := `SELECT ` + hookColumns + ` FROM hooks`
	var args []any
	switch {
	case p.Scope.Org == "":
	case p.Exact:
		q += ` WHERE org = ? AND project = ? AND stack = ? AND environment = ?`
		args = append(args, p.Scope.Org, p.Scope.Project, p.Scope.Stack, p.Scope.Environment)
		if p.After != "" {
			q += ` AND name > ?`
			args = append(args, p.After)
		}
	default:
		q += ` WHERE org = ?`
		args = append(args, p.Scope.Org)
	}
	q += ` ORDER BY org, project, stack, environment, name`
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	return q, args
}

func (s *Store) queryHooks(ctx context.Context, qr queryer, q string, args ...any) ([]*store.Hook, error) {
	rows, err := qr.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list webhooks: %w", err)
	}
	defer rows.Close()
	var out []*store.Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list webhooks: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list webhooks: %w", err)
	}
	return out, nil
}

// HookUpdate replaces a hook's mutable fields. Reactivating a hook clears DisabledReason;
// deactivating it discards its pending deliveries.
func (s *Store) HookUpdate(ctx context.Context, p store.HookUpdateParams) (*store.Hook, error) {
	spec := p.Spec
	spec.Normalize()
	now := store.UnixNanos(p.Now)
	var sealed []byte
	var sum string
	if p.Secret != nil {
		var err error
		if sealed, sum, err = s.sealSecret(p.Ref, *p.Secret); err != nil {
			return nil, err
		}
	}
	var id int64
	err := s.withDurableTx(ctx, func(tx txq) error {
		set := `display_name = ?, payload_url = ?, active = ?, format = ?, filters = ?, groups = ?, updated_at = ?,
			disabled_reason = CASE WHEN ? THEN '' ELSE disabled_reason END`
		args := []any{spec.DisplayName, spec.PayloadURL, boolInt(spec.Active), string(spec.Format),
			encodeList(spec.Filters), encodeList(spec.Groups), now, spec.Active}
		if p.Secret != nil {
			set += `, secret_box = ?, secret_digest = ?`
			args = append(args, sealed, sum)
		}
		args = append(args, p.Ref.Org, p.Ref.Project, p.Ref.Stack, p.Ref.Environment, p.Ref.Name)
		err := tx.QueryRowContext(ctx, `UPDATE hooks SET `+set+`
			WHERE org = ? AND project = ? AND stack = ? AND environment = ? AND name = ? RETURNING id`, args...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webhook %s: %w", p.Ref, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("sqlite: update webhook %s: %w", p.Ref, err)
		}
		if !spec.Active {
			return discardPending(ctx, tx, id, "", now, "webhook deactivated")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.HookGetByID(ctx, id)
}

// discardPendingSQL finds a hook's queued deliveries through the queue's partial indexes, so
// its cost follows the queue, not the hook's whole delivery history.
const discardPendingSQL = `UPDATE deliveries SET state = 'discarded', lease_until = 0, last_error = ?1, updated_at = ?2
	WHERE rowid IN (
		SELECT rowid FROM deliveries INDEXED BY deliveries_first WHERE state = 'pending' AND attempts = 0 AND hook_id = ?3
		UNION ALL
		SELECT rowid FROM deliveries INDEXED BY deliveries_retry WHERE state = 'pending' AND attempts > 0 AND hook_id = ?3
		UNION ALL
		SELECT rowid FROM deliveries INDEXED BY deliveries_running WHERE state = 'running' AND hook_id = ?3)
	  AND id != ?4`

// discardPending discards the hook's pending and running deliveries except one.
func discardPending(ctx context.Context, tx queryer, hookID int64, except string, now int64, why string) error {
	if _, err := tx.ExecContext(ctx, discardPendingSQL, why, now, hookID, except); err != nil {
		return fmt.Errorf("sqlite: discard deliveries of webhook #%d: %w", hookID, err)
	}
	return nil
}

// HookDelete deletes a hook with its deliveries and attempts.
func (s *Store) HookDelete(ctx context.Context, ref store.HookRef) error {
	return s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hooks WHERE org = ? AND project = ? AND stack = ? AND environment = ? AND name = ?`,
			ref.Org, ref.Project, ref.Stack, ref.Environment, ref.Name)
		if err != nil {
			return fmt.Errorf("sqlite: delete webhook %s: %w", ref, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("webhook %s: %w", ref, store.ErrNotFound)
		}
		return nil
	})
}

// HookDisable deactivates a hook, records why and discards its pending deliveries.
func (s *Store) HookDisable(ctx context.Context, p store.HookDisableParams) error {
	now := store.UnixNanos(p.Now)
	return s.withWriteTx(ctx, func(tx txq) error {
		return disableHook(ctx, tx, p.ID, p.Reason, "", now)
	})
}

func disableHook(ctx context.Context, tx queryer, id int64, reason, except string, now int64) error {
	if strings.TrimSpace(reason) == "" {
		reason = "disabled"
	}
	res, err := tx.ExecContext(ctx, `UPDATE hooks SET active = 0, disabled_reason = ?, updated_at = ? WHERE id = ?`, reason, now, id)
	if err != nil {
		return fmt.Errorf("sqlite: disable webhook #%d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	return discardPending(ctx, tx, id, except, now, "webhook disabled: "+reason)
}

// HookSecretGet returns the hook's plain secret, "" when it has none.
func (s *Store) HookSecretGet(ctx context.Context, id int64) (string, error) {
	var ref store.HookRef
	var sealed []byte
	err := dbq{s}.QueryRowContext(ctx, `SELECT org, project, stack, environment, name, secret_box FROM hooks WHERE id = ?`, id).
		Scan(&ref.Org, &ref.Project, &ref.Stack, &ref.Environment, &ref.Name, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: get the secret of webhook #%d: %w", id, err)
	}
	return s.openSecret(ref, sealed)
}

// hookCandidatesQuery reads the organization's own hooks and those of exactly one stack or
// environment, through the hooks_scope_name index (see TestHookCandidatesUsesIndex).
const (
	hookCandidatesOrg = `SELECT ` + hookColumns + ` FROM hooks
		WHERE org = ?1 AND project = '' AND stack = '' AND environment = '' AND active = 1`
	hookCandidatesScoped = hookCandidatesOrg + `
		UNION ALL
		SELECT ` + hookColumns + ` FROM hooks
		WHERE org = ?1 AND project = ?2 AND stack = ?3 AND environment = ?4 AND active = 1`
)
