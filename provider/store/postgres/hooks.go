package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const hookColumns = `id, org, project, stack, environment, name, display_name, payload_url, active, format,
	filters, groups, secret_digest, secret_box IS NOT NULL, disabled_reason, created_at, updated_at`

func scanHook(r pgx.Row) (*store.Hook, error) {
	var h store.Hook
	var filters, groups []string
	var created, updated int64
	var format string
	if err := r.Scan(&h.ID, &h.Org, &h.Project, &h.Stack, &h.Environment, &h.Name, &h.DisplayName,
		&h.PayloadURL, &h.Active, &format, &filters, &groups, &h.SecretDigest, &h.HasSecret, &h.DisabledReason,
		&created, &updated); err != nil {
		return nil, err
	}
	h.Format = webhook.Format(format)
	for _, f := range filters {
		h.Filters = append(h.Filters, webhook.Filter(f))
	}
	for _, g := range groups {
		h.Groups = append(h.Groups, webhook.Group(g))
	}
	h.CreatedAt = store.FromUnixNanos(created)
	h.UpdatedAt = store.FromUnixNanos(updated)
	return &h, nil
}

func encodeList[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// sealSecret returns the sealed secret and its keyed digest, or (nil, "") for no secret.
func (s *Store) sealSecret(ref store.HookRef, secret string) ([]byte, string, error) {
	sealed, digest, err := sealing.SealHookSecret(s.currentBox(), ref, secret)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: seal the secret of hook %s: %w", ref, err)
	}
	return sealed, digest, nil
}

func (s *Store) openSecret(ref store.HookRef, sealed []byte) (string, error) {
	secret, err := sealing.OpenHookSecret(s.currentBox(), ref, sealed)
	if err != nil {
		return "", fmt.Errorf("postgres: read the secret of hook %s: %w", ref, err)
	}
	return secret, nil
}

// HookCreate stores a new hook, generating an 8-hex-digit name when Spec.Name is empty.
func (s *Store) HookCreate(ctx context.Context, p store.HookCreateParams) (*store.Hook, error) {
	spec, generate, err := p.PreparedSpec()
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	now := store.UnixNanos(p.Now)
	for i := 0; ; i++ {
		if generate {
			spec.Name = store.NewHookName()
		}
		ref := store.HookRef{Scope: spec.Scope, Name: spec.Name}
		sealed, sum, err := s.sealSecret(ref, spec.Secret)
		if err != nil {
			return nil, err
		}
		var h *store.Hook
		err = s.withTx(ctx, func(tx pgx.Tx) error {
			var err error
			h, err = scanHook(tx.QueryRow(ctx, `INSERT INTO hooks (org, project, stack, environment, name, display_name,
				payload_url, active, format, filters, groups, secret_box, secret_digest, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING `+hookColumns,
				spec.Org, spec.Project, spec.Stack, spec.Environment, spec.Name, spec.DisplayName, spec.PayloadURL,
				spec.Active, string(spec.Format), encodeList(spec.Filters), encodeList(spec.Groups), sealed, sum, now))
			return err
		})
		if err == nil {
			return h, nil
		}
		if isUnique(err) {
			if generate && i < store.HookNameAttempts {
				continue
			}
			return nil, fmt.Errorf("webhook %s: %w", ref, store.ErrAlreadyExists)
		}
		return nil, s.fail(fmt.Errorf("postgres: create webhook %s: %w", ref, err))
	}
}

// HookGet returns the hook ref names, or ErrNotFound.
func (s *Store) HookGet(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	var h *store.Hook
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		h, err = scanHook(s.pool.QueryRow(ctx, `SELECT `+hookColumns+` FROM hooks
			WHERE org = $1 AND project = $2 AND stack = $3 AND environment = $4 AND name = $5`,
			ref.Org, ref.Project, ref.Stack, ref.Environment, ref.Name))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", ref, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get webhook %s: %w", ref, err))
	}
	return h, nil
}

// HookGetByID returns the hook with id, or ErrNotFound.
func (s *Store) HookGetByID(ctx context.Context, id int64) (*store.Hook, error) {
	var h *store.Hook
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		h, err = scanHook(s.pool.QueryRow(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get webhook #%d: %w", id, err))
	}
	return h, nil
}

// HookList lists hooks ordered by scope and name. The hooks of one scope (Exact) are compared
// and ordered by name COLLATE "C", byte order whatever the database's collation, and a page
// (After, Limit) reads only its rows through hooks_scope_name_bytes (migration 004).
func (s *Store) HookList(ctx context.Context, p store.HookListParams) ([]*store.Hook, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: list webhooks: %w", err)
	}
	q, args := hookListSQL(p)
	var out []*store.Hook
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		out, err = queryHooks(ctx, s.pool, q, args...)
		return err
	})
	return out, s.fail(err)
}

// hookListSQL is HookList's query and its arguments.
func hookListSQL(p store.HookListParams) (string, []any) {
	q := `SELECT ` + hookColumns + ` FROM hooks`
	var args []any
	switch {
	case p.Scope.Org == "":
		q += ` ORDER BY org, project, stack, environment, name`
	case p.Exact:
		q += ` WHERE org = $1 AND project = $2 AND stack = $3 AND environment = $4`
		args = append(args, p.Scope.Org, p.Scope.Project, p.Scope.Stack, p.Scope.Environment)
		if p.After != "" {
			args = append(args, p.After)
			q += fmt.Sprintf(` AND name COLLATE "C" > $%d`, len(args))
		}
		q += ` ORDER BY org, project, stack, environment, name COLLATE "C"`
	default:
		q += ` WHERE org = $1 ORDER BY org, project, stack, environment, name`
		args = append(args, p.Scope.Org)
	}
	if p.Limit > 0 {
		args = append(args, p.Limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	return q, args
}

func queryHooks(ctx context.Context, q querier, sql string, args ...any) ([]*store.Hook, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list webhooks: %w", err)
	}
	defer rows.Close()
	var out []*store.Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list webhooks: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list webhooks: %w", err)
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
	var h *store.Hook
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = scanHook(tx.QueryRow(ctx, `UPDATE hooks SET display_name = $1, payload_url = $2, active = $3, format = $4,
				filters = $5, groups = $6, updated_at = $7,
				disabled_reason = CASE WHEN $3 THEN '' ELSE disabled_reason END,
				secret_box = CASE WHEN $8 THEN $9 ELSE secret_box END,
				secret_digest = CASE WHEN $8 THEN $10 ELSE secret_digest END
			WHERE org = $11 AND project = $12 AND stack = $13 AND environment = $14 AND name = $15 RETURNING `+hookColumns,
			spec.DisplayName, spec.PayloadURL, spec.Active, string(spec.Format), encodeList(spec.Filters), encodeList(spec.Groups), now,
			p.Secret != nil, sealed, sum, p.Ref.Org, p.Ref.Project, p.Ref.Stack, p.Ref.Environment, p.Ref.Name))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("webhook %s: %w", p.Ref, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("postgres: update webhook %s: %w", p.Ref, err)
		}
		if !spec.Active {
			return discardPending(ctx, tx, h.ID, "", now, "webhook deactivated")
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(err)
	}
	return h, nil
}

// discardPending discards the hook's pending and running deliveries except one.
func discardPending(ctx context.Context, tx pgx.Tx, hookID int64, except string, now int64, why string) error {
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET state = 'discarded', lease_until = 0, last_error = $1, updated_at = $2
		WHERE hook_id = $3 AND state IN ('pending', 'running') AND id <> $4`, why, now, hookID, except); err != nil {
		return fmt.Errorf("postgres: discard deliveries of webhook #%d: %w", hookID, err)
	}
	return nil
}

// HookDelete deletes a hook with its deliveries and attempts.
func (s *Store) HookDelete(ctx context.Context, ref store.HookRef) error {
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM hooks WHERE org = $1 AND project = $2 AND stack = $3 AND environment = $4 AND name = $5`,
			ref.Org, ref.Project, ref.Stack, ref.Environment, ref.Name)
		if err != nil {
			return fmt.Errorf("postgres: delete webhook %s: %w", ref, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("webhook %s: %w", ref, store.ErrNotFound)
		}
		return nil
	}))
}

// HookDisable deactivates a hook, records why and discards its pending deliveries.
func (s *Store) HookDisable(ctx context.Context, p store.HookDisableParams) error {
	now := store.UnixNanos(p.Now)
	return s.fail(s.withTx(ctx, func(tx pgx.Tx) error {
		return disableHook(ctx, tx, p.ID, p.Reason, "", now)
	}))
}

func disableHook(ctx context.Context, tx pgx.Tx, id int64, reason, except string, now int64) error {
	if strings.TrimSpace(reason) == "" {
		reason = "disabled"
	}
	tag, err := tx.Exec(ctx, `UPDATE hooks SET active = false, disabled_reason = $1, updated_at = $2 WHERE id = $3`, reason, now, id)
	if err != nil {
		return fmt.Errorf("postgres: disable webhook #%d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	return discardPending(ctx, tx, id, except, now, "webhook disabled: "+reason)
}

// HookSecretGet returns the hook's plain secret, "" when it has none.
func (s *Store) HookSecretGet(ctx context.Context, id int64) (string, error) {
	var ref store.HookRef
	var sealed []byte
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT org, project, stack, environment, name, secret_box FROM hooks WHERE id = $1`, id).
			Scan(&ref.Org, &ref.Project, &ref.Stack, &ref.Environment, &ref.Name, &sealed)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("webhook #%d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return "", s.fail(fmt.Errorf("postgres: get the secret of webhook #%d: %w", id, err))
	}
	return s.openSecret(ref, sealed)
}

// hookCandidates reads the organization's own hooks and those of exactly one stack or
// environment, through hooks_scope_name.
func hookCandidates(ctx context.Context, tx pgx.Tx, subject webhook.Scope, orgOnly bool) ([]*store.Hook, error) {
	if subject.Org == "" {
		return nil, errors.New("postgres: hook candidates: the event subject has no organization")
	}
	const org = `SELECT ` + hookColumns + ` FROM hooks
		WHERE org = $1 AND project = '' AND stack = '' AND environment = '' AND active`
	if orgOnly || subject.Kind() == webhook.ScopeOrganization {
		return queryHooks(ctx, tx, org, subject.Org)
	}
	return queryHooks(ctx, tx, org+` UNION ALL SELECT `+hookColumns+` FROM hooks
		WHERE org = $1 AND project = $2 AND stack = $3 AND environment = $4 AND active`,
		subject.Org, subject.Project, subject.Stack, subject.Environment)
}
