package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Runners: a worker that claims deployments registers a holder of kind 'deployment' (a session
// advisory lock, as delivery holders); DeploymentFailDead fails the deployments of runners whose
// lock nobody holds.

// deploymentClaimLockKey serializes deployment claims across servers (they are rare), so two
// servers never start two operations of one stack.
var deploymentClaimLockKey = lockKey("deployments", "claim")

func checkStack(sc webhook.Scope) error {
	if err := store.CheckStack(sc); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// DeploymentSettingsPut creates or replaces a stack's deployment settings.
func (s *Store) DeploymentSettingsPut(ctx context.Context, p store.DeploymentSettingsPutParams) (*store.DeploymentSettings, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sealed, dj, err := sealing.SealSettings(s.currentBox(), p.Stack, p.Secrets)
	if err != nil {
		return nil, fmt.Errorf("postgres: deployment settings of %s: %w", p.Stack, err)
	}
	now := store.UnixNanos(p.Now)
	err = s.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO deployment_settings (org, project, stack, settings, secrets, secret_digests, created_at, updated_at)
			VALUES ($1, $2, $3, $4::text::json, $5, $6::text::jsonb, $7, $7)
			ON CONFLICT (org, project, stack) DO UPDATE SET settings = excluded.settings, secrets = excluded.secrets,
				secret_digests = excluded.secret_digests, updated_at = excluded.updated_at`,
			p.Stack.Org, p.Stack.Project, p.Stack.Stack, string(p.Settings), sealed, string(dj), now)
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: put deployment settings of %s: %w", p.Stack, err))
	}
	return s.DeploymentSettingsGet(ctx, p.Stack)
}

// DeploymentSettingsGet returns a stack's deployment settings with their secrets opened.
func (s *Store) DeploymentSettingsGet(ctx context.Context, sc webhook.Scope) (*store.DeploymentSettings, error) {
	if err := checkStack(sc); err != nil {
		return nil, err
	}
	var settings, digests string
	var sealed []byte
	var created, updated int64
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT settings::text, secrets, secret_digests::text, created_at, updated_at FROM deployment_settings
			WHERE org = $1 AND project = $2 AND stack = $3`, sc.Org, sc.Project, sc.Stack).Scan(&settings, &sealed, &digests, &created, &updated)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("deployment settings of %s: %w", sc, store.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: get deployment settings of %s: %w", sc, err))
	}
	ds := &store.DeploymentSettings{Stack: sc, Settings: []byte(settings), Secrets: map[string]string{},
		SecretDigests: map[string]string{}, CreatedAt: store.FromUnixNanos(created), UpdatedAt: store.FromUnixNanos(updated)}
	if err := json.Unmarshal([]byte(digests), &ds.SecretDigests); err != nil {
		return nil, fmt.Errorf("postgres: deployment settings of %s: decode digests: %w", sc, err)
	}
	if ds.Secrets, err = sealing.OpenSettings(s.currentBox(), sc, sealed); err != nil {
		return nil, fmt.Errorf("postgres: deployment settings of %s: %w", sc, err)
	}
	return ds, nil
}

// DeploymentSettingsDelete deletes a stack's deployment settings.
func (s *Store) DeploymentSettingsDelete(ctx context.Context, sc webhook.Scope) error {
	if err := checkStack(sc); err != nil {
		return err
	}
	var n int64
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM deployment_settings WHERE org = $1 AND project = $2 AND stack = $3`, sc.Org, sc.Project, sc.Stack)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.fail(fmt.Errorf("postgres: delete deployment settings of %s: %w", sc, err))
	}
	if n == 0 {
		return fmt.Errorf("deployment settings of %s: %w", sc, store.ErrNotFound)
	}
	return nil
}

// DeploymentInsert stores a not-started deployment with the stack's next version. A
// transaction-level lock per stack keeps two servers from giving out one version twice.
func (t *emitTx) DeploymentInsert(ctx context.Context, d *store.Deployment) error {
	if err := store.PrepareDeploymentInsert(d); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("stack", d.Stack.String())); err != nil {
		return fmt.Errorf("postgres: insert deployment: lock %s: %w", d.Stack, err)
	}
	var version int32
	if err := t.tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) + 1 FROM deployments WHERE org = $1 AND project = $2 AND stack = $3`,
		d.Stack.Org, d.Stack.Project, d.Stack.Stack).Scan(&version); err != nil {
		return fmt.Errorf("postgres: insert deployment: next version of %s: %w", d.Stack, err)
	}
	d.Version = int(version)
	_, err := t.tx.Exec(ctx, `INSERT INTO deployments (id, org, project, stack, version, operation, status, source, request_id, cause,
		auto_remediate, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.Version, d.Operation, d.Status, d.Source, d.RequestID, nonNil(d.Cause),
		d.AutoRemediate, store.UnixNanos(d.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("deployment %s: %w", d.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: insert deployment %s: %w", d.ID, err)
	}
	return nil
}

const deploymentColumns = `id, org, project, stack, version, operation, status, reason, source, request_id, cause, auto_remediate,
	cancel_requested, worker, drift_detected, resource_changes::text, log, created_at, started_at, finished_at`

func scanDeployment(row pgx.Row) (*store.Deployment, error) {
	var d store.Deployment
	var changes string
	var version int32
	var created, started, finished int64
	if err := row.Scan(&d.ID, &d.Stack.Org, &d.Stack.Project, &d.Stack.Stack, &version, &d.Operation, &d.Status, &d.Reason,
		&d.Source, &d.RequestID, &d.Cause, &d.AutoRemediate, &d.CancelRequested, &d.Worker, &d.DriftDetected, &changes, &d.Log,
		&created, &started, &finished); err != nil {
		return nil, err
	}
	d.Version = int(version)
	if len(d.Cause) == 0 {
		d.Cause = nil
	}
	if err := json.Unmarshal([]byte(changes), &d.ResourceChanges); err != nil {
		return nil, fmt.Errorf("deployment %s: decode resource changes: %w", d.ID, err)
	}
	d.CreatedAt, d.StartedAt, d.FinishedAt = store.FromUnixNanos(created), store.FromUnixNanos(started), store.FromUnixNanos(finished)
	return &d, nil
}

func queryDeployments(ctx context.Context, q querier, where string, args ...any) ([]*store.Deployment, error) {
	rows, err := q.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Deployment, error) { return scanDeployment(r) })
}

func getDeployment(ctx context.Context, q querier, id string) (*store.Deployment, error) {
	d, err := scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("deployment %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get deployment %s: %w", id, err)
	}
	return d, nil
}

// DeploymentGet returns one deployment.
func (s *Store) DeploymentGet(ctx context.Context, id string) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		d, err = getDeployment(ctx, s.pool, id)
		return err
	})
	return d, s.fail(err)
}

// DeploymentList returns a stack's deployments, newest first.
func (s *Store) DeploymentList(ctx context.Context, p store.DeploymentListParams) ([]*store.Deployment, error) {
	if err := checkStack(p.Stack); err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	return s.listDeployments(ctx, "list deployments of "+p.Stack.String(), `WHERE org = $1 AND project = $2 AND stack = $3
		ORDER BY version DESC LIMIT $4`, p.Stack.Org, p.Stack.Project, p.Stack.Stack, limit)
}

// DeploymentListRecent lists an organization's newest deployments of every stack.
func (s *Store) DeploymentListRecent(ctx context.Context, p store.DeploymentListRecentParams) ([]*store.Deployment, error) {
	if p.Org == "" {
		return nil, errors.New("postgres: list recent deployments: Org is required")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	return s.listDeployments(ctx, "list recent deployments of "+p.Org, `WHERE org = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, p.Org, limit)
}

func (s *Store) listDeployments(ctx context.Context, what, where string, args ...any) ([]*store.Deployment, error) {
	var out []*store.Deployment
	err := s.retrying(ctx, func(ctx context.Context) error {
		var err error
		out, err = queryDeployments(ctx, s.pool, where, args...)
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: %s: %w", what, err))
	}
	return out, nil
}

// DeploymentPending says whether the stack has an unfinished deployment of operation.
func (s *Store) DeploymentPending(ctx context.Context, sc webhook.Scope, operation string) (bool, error) {
	var pending bool
	err := s.retrying(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deployments WHERE org = $1 AND project = $2 AND stack = $3
			AND operation = $4 AND status IN ('not-started', 'accepted', 'running'))`, sc.Org, sc.Project, sc.Stack, operation).Scan(&pending)
	})
	if err != nil {
		return false, s.fail(fmt.Errorf("postgres: pending deployments of %s: %w", sc, err))
	}
	return pending, nil
}

// DeploymentClaim claims not-started deployments, at most one per stack and none of a stack
// with one accepted or running.
func (s *Store) DeploymentClaim(ctx context.Context, p store.DeploymentClaimParams) ([]*store.Deployment, error) {
	if p.Worker == "" {
		return nil, errors.New("postgres: claim deployments: Worker is required")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := s.session.acquire(ctx, kindDeployment, p.Worker); err != nil {
		return nil, s.fail(err)
	}
	var out []*store.Deployment
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, deploymentClaimLockKey); err != nil {
			return err
		}
		var err error
		out, err = queryDeployments(ctx, tx, `WHERE id IN (
			SELECT d.id FROM deployments d WHERE d.status = 'not-started'
			  AND NOT EXISTS (SELECT 1 FROM deployments r WHERE r.org = d.org AND r.project = d.project AND r.stack = d.stack
				AND r.status IN ('accepted', 'running'))
			  AND d.seq = (SELECT min(o.seq) FROM deployments o WHERE o.org = d.org AND o.project = d.project AND o.stack = d.stack
				AND o.status = 'not-started')
			ORDER BY d.created_at, d.seq LIMIT $1)`, p.Limit)
		if err != nil || len(out) == 0 {
			return err
		}
		ids := make([]string, len(out))
		for i, d := range out {
			ids[i] = d.ID
		}
		rows, err := tx.Query(ctx, `UPDATE deployments SET status = 'accepted', worker = $1, started_at = $2 WHERE id = ANY($3::text[])
			RETURNING `+deploymentColumns, p.Worker, store.UnixNanos(p.Now), ids)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Deployment, error) { return scanDeployment(r) })
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: claim deployments: %w", err))
	}
	sortDeployments(out)
	return out, nil
}

// sortDeployments orders claimed deployments oldest first.
func sortDeployments(ds []*store.Deployment) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].CreatedAt.Before(ds[j-1].CreatedAt); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// deploymentUpdate runs one UPDATE of a deployment held by worker that returns the row, or
// ErrDeploymentNotHeld.
func (s *Store) deploymentUpdate(ctx context.Context, what, id, sql string, args ...any) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, sql+` RETURNING `+deploymentColumns, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deployment %s: %w", id, store.ErrDeploymentNotHeld)
		}
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: %s: %w", what, err))
	}
	return d, nil
}

// DeploymentStart marks an accepted deployment held by p.Worker running.
func (s *Store) DeploymentStart(ctx context.Context, p store.DeploymentStartParams) (*store.Deployment, error) {
	return s.deploymentUpdate(ctx, "start deployment", p.ID, `UPDATE deployments SET status = 'running', started_at = $1
		WHERE id = $2 AND status = 'accepted' AND worker = $3`, store.UnixNanos(p.Now), p.ID, p.Worker)
}

// DeploymentProgress saves the log of a held deployment and reports a requested cancel.
func (s *Store) DeploymentProgress(ctx context.Context, p store.DeploymentProgressParams) (bool, error) {
	d, err := s.deploymentUpdate(ctx, "deployment progress", p.ID, `UPDATE deployments SET log = $1
		WHERE id = $2 AND status IN ('accepted', 'running') AND worker = $3`, p.Log, p.ID, p.Worker)
	if err != nil {
		return false, err
	}
	return d.CancelRequested, nil
}

// DeploymentComplete ends an accepted or running deployment held by p.Worker.
func (s *Store) DeploymentComplete(ctx context.Context, p store.DeploymentCompleteParams) (*store.Deployment, error) {
	switch p.Status {
	case store.DeploymentSucceeded, store.DeploymentFailed, store.DeploymentSkipped:
	default:
		return nil, fmt.Errorf("postgres: complete deployment %s: status %q is not a final status (succeeded, failed, skipped)", p.ID, p.Status)
	}
	changes := p.ResourceChanges
	if changes == nil {
		changes = map[string]int{}
	}
	cj, _ := json.Marshal(changes) // a map of ints always marshals
	return s.deploymentUpdate(ctx, "complete deployment", p.ID, `UPDATE deployments SET status = $1, reason = $2, log = $3,
		drift_detected = $4, resource_changes = $5::text::jsonb, finished_at = $6
		WHERE id = $7 AND status IN ('accepted', 'running') AND worker = $8`,
		p.Status, p.Reason, p.Log, p.DriftDetected, string(cj), store.UnixNanos(p.Now), p.ID, p.Worker)
}

// DeploymentCancel cancels a deployment of p.Stack.
func (s *Store) DeploymentCancel(ctx context.Context, p store.DeploymentCancelParams) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1 FOR UPDATE`, p.ID))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deployment %s: %w", p.ID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if d.Stack != p.Stack {
			return fmt.Errorf("deployment %s of %s: %w", p.ID, p.Stack, store.ErrNotFound)
		}
		var q string
		args := []any{p.ID}
		switch d.Status {
		case store.DeploymentNotStarted:
			q = `UPDATE deployments SET status = 'failed', reason = $2, cancel_requested = true, finished_at = $3 WHERE id = $1`
			args = append(args, p.Reason, store.UnixNanos(p.Now))
		case store.DeploymentAccepted, store.DeploymentRunning:
			q = `UPDATE deployments SET cancel_requested = true WHERE id = $1`
		default:
			return nil
		}
		d, err = scanDeployment(tx.QueryRow(ctx, q+` RETURNING `+deploymentColumns, args...))
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: cancel deployment: %w", err))
	}
	return d, nil
}

// DeploymentFailDead fails the accepted and running deployments of dead runners.
func (s *Store) DeploymentFailDead(ctx context.Context, p store.DeploymentFailDeadParams) ([]*store.Deployment, error) {
	var out []*store.Deployment
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT DISTINCT worker FROM deployments WHERE status IN ('accepted', 'running')`)
		if err != nil {
			return err
		}
		workers, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		dead, err := s.deadHolders(ctx, tx, kindDeployment, workers)
		if err != nil {
			return err
		}
		for _, w := range dead {
			reason := store.DeploymentFailDeadReason + w + "): it is not re-run, because a half-finished operation may have changed the stack; look at the stack, then start a new deployment"
			rows, err := tx.Query(ctx, `UPDATE deployments SET status = 'failed', reason = $1, finished_at = $2
				WHERE status IN ('accepted', 'running') AND worker = $3 RETURNING `+deploymentColumns, reason, store.UnixNanos(p.Now), w)
			if err != nil {
				return err
			}
			failed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Deployment, error) { return scanDeployment(r) })
			if err != nil {
				return err
			}
			out = append(out, failed...)
		}
		return nil
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: fail the deployments of dead runners: %w", err))
	}
	return out, nil
}

const driftColumns = `id, org, project, stack, schedule_cron, auto_remediate, next_run_at, last_run_at, created_at`

func scanDrift(row pgx.Row) (*store.DriftSchedule, error) {
	var d store.DriftSchedule
	var next, last, created int64
	if err := row.Scan(&d.ID, &d.Stack.Org, &d.Stack.Project, &d.Stack.Stack, &d.ScheduleCron, &d.AutoRemediate, &next, &last, &created); err != nil {
		return nil, err
	}
	d.NextRunAt, d.LastRunAt, d.CreatedAt = store.FromUnixNanos(next), store.FromUnixNanos(last), store.FromUnixNanos(created)
	return &d, nil
}

// DriftScheduleCreate stores a drift schedule, assigning its ID when empty.
func (s *Store) DriftScheduleCreate(ctx context.Context, d *store.DriftSchedule) error {
	if err := store.PrepareDriftScheduleInsert(d); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO drift_schedules (`+driftColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)`,
			d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.ScheduleCron, d.AutoRemediate, store.UnixNanos(d.NextRunAt), store.UnixNanos(d.CreatedAt))
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("drift schedule %s: %w", d.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return s.fail(fmt.Errorf("postgres: create drift schedule: %w", err))
	}
	return nil
}

func (s *Store) driftQuery(ctx context.Context, where string, args ...any) ([]*store.DriftSchedule, error) {
	var out []*store.DriftSchedule
	err := s.retrying(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT `+driftColumns+` FROM drift_schedules WHERE `+where, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.DriftSchedule, error) { return scanDrift(r) })
		return err
	})
	if err != nil {
		return nil, s.fail(fmt.Errorf("postgres: list drift schedules: %w", err))
	}
	return out, nil
}

// DriftScheduleList returns a stack's drift schedules, oldest first.
func (s *Store) DriftScheduleList(ctx context.Context, sc webhook.Scope) ([]*store.DriftSchedule, error) {
	if err := checkStack(sc); err != nil {
		return nil, err
	}
	return s.driftQuery(ctx, `org = $1 AND project = $2 AND stack = $3 ORDER BY created_at, seq`, sc.Org, sc.Project, sc.Stack)
}

// DriftScheduleDelete deletes one of a stack's drift schedules.
func (s *Store) DriftScheduleDelete(ctx context.Context, sc webhook.Scope, id string) error {
	var n int64
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM drift_schedules WHERE id = $1 AND org = $2 AND project = $3 AND stack = $4`,
			id, sc.Org, sc.Project, sc.Stack)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return s.fail(fmt.Errorf("postgres: delete drift schedule %s: %w", id, err))
	}
	if n == 0 {
		return fmt.Errorf("drift schedule %s of %s: %w", id, sc, store.ErrNotFound)
	}
	return nil
}

// DriftScheduleDue returns the schedules due at now.
func (s *Store) DriftScheduleDue(ctx context.Context, now time.Time) ([]*store.DriftSchedule, error) {
	return s.driftQuery(ctx, `next_run_at <= $1 ORDER BY next_run_at, seq`, store.UnixNanos(now))
}

// DriftScheduleAdvance moves a schedule from p.From to p.To, unless someone did first.
func (s *Store) DriftScheduleAdvance(ctx context.Context, p store.DriftScheduleAdvanceParams) (bool, error) {
	var n int64
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE drift_schedules SET next_run_at = $1, last_run_at = $2 WHERE id = $3 AND next_run_at = $4`,
			store.UnixNanos(p.To), store.UnixNanos(p.Now), p.ID, store.UnixNanos(p.From))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return false, s.fail(fmt.Errorf("postgres: advance drift schedule %s: %w", p.ID, err))
	}
	return n == 1, nil
}

// resealDeploymentSettings re-seals every stack's deployment settings secrets under newBox
// inside KeyRotate's transaction; settings the old key cannot open make it refuse.
func resealDeploymentSettings(ctx context.Context, tx pgx.Tx, old, newBox *secretbox.Box) (int, error) {
	rows, err := tx.Query(ctx, `SELECT org, project, stack, secrets FROM deployment_settings WHERE secrets IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("postgres: rotate the key: read deployment settings: %w", err)
	}
	type sealedRow struct {
		sc     webhook.Scope
		sealed []byte
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sealedRow, error) {
		var sr sealedRow
		err := r.Scan(&sr.sc.Org, &sr.sc.Project, &sr.sc.Stack, &sr.sealed)
		return sr, err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: rotate the key: read deployment settings: %w", err)
	}
	n := 0
	var bad []string
	for _, r := range all {
		sealed, dj, secrets, err := sealing.ResealSettings(old, newBox, r.sc, r.sealed)
		if errors.Is(err, sealing.ErrNotOpened) {
			bad = append(bad, r.sc.String())
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("postgres: rotate the key: deployment settings of %s: %w", r.sc, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE deployment_settings SET secrets = $1, secret_digests = $2::text::jsonb
			WHERE org = $3 AND project = $4 AND stack = $5`, sealed, string(dj), r.sc.Org, r.sc.Project, r.sc.Stack); err != nil {
			return 0, fmt.Errorf("postgres: rotate the key: deployment settings of %s: %w", r.sc, err)
		}
		n += secrets
	}
	if len(bad) > 0 {
		return 0, fmt.Errorf("postgres: rotate the key: the deployment settings secrets of %s cannot be decrypted with the current key: set those settings again or delete them, then rotate; nothing was changed",
			strings.Join(bad, ", "))
	}
	return n, nil
}
