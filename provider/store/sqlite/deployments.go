package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sealing"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Runners: a worker that claims deployments holds an flock on its own file in
// <database>.runners/ (the same scheme as delivery holders, in a directory of its own) for as
// long as its Store is open. DeploymentFailDead tries the lock of each worker with running
// deployments: a lock it can take belongs to a dead runner, whose deployments it fails.

// RunnersDirSuffix is appended to the database path to name the directory of runner locks.
const RunnersDirSuffix = ".runners"

func checkStack(sc webhook.Scope) error {
	if err := store.CheckStack(sc); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// DeploymentSettingsPut creates or replaces a stack's deployment settings.
func (s *Store) DeploymentSettingsPut(ctx context.Context, p store.DeploymentSettingsPutParams) (*store.DeploymentSettings, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	sealed, dj, err := sealing.SealSettings(s.currentBox(), p.Stack, p.Secrets)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deployment settings of %s: %w", p.Stack, err)
	}
	now := store.UnixNanos(p.Now)
	err = s.withDurableTx(ctx, func(tx txq) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO deployment_settings (org, project, stack, settings, secrets, secret_digests, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, project, stack) DO UPDATE SET settings = excluded.settings, secrets = excluded.secrets,
				secret_digests = excluded.secret_digests, updated_at = excluded.updated_at`,
			p.Stack.Org, p.Stack.Project, p.Stack.Stack, string(p.Settings), sealed, string(dj), now, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: put deployment settings of %s: %w", p.Stack, err)
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
	err := dbq{s}.QueryRowContext(ctx, `SELECT settings, secrets, secret_digests, created_at, updated_at FROM deployment_settings
		WHERE org = ? AND project = ? AND stack = ?`, sc.Org, sc.Project, sc.Stack).Scan(&settings, &sealed, &digests, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("deployment settings of %s: %w", sc, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get deployment settings of %s: %w", sc, err)
	}
	ds := &store.DeploymentSettings{Stack: sc, Settings: []byte(settings), Secrets: map[string]string{},
		SecretDigests: map[string]string{}, CreatedAt: store.FromUnixNanos(created), UpdatedAt: store.FromUnixNanos(updated)}
	if err := json.Unmarshal([]byte(digests), &ds.SecretDigests); err != nil {
		return nil, fmt.Errorf("sqlite: deployment settings of %s: decode digests: %w", sc, err)
	}
	if ds.Secrets, err = sealing.OpenSettings(s.currentBox(), sc, sealed); err != nil {
		return nil, fmt.Errorf("sqlite: deployment settings of %s: %w", sc, err)
	}
	return ds, nil
}

// DeploymentSettingsDelete deletes a stack's deployment settings.
func (s *Store) DeploymentSettingsDelete(ctx context.Context, sc webhook.Scope) error {
	if err := checkStack(sc); err != nil {
		return err
	}
	var n int64
	err := s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM deployment_settings WHERE org = ? AND project = ? AND stack = ?`, sc.Org, sc.Project, sc.Stack)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete deployment settings of %s: %w", sc, err)
	}
	if n == 0 {
		return fmt.Errorf("deployment settings of %s: %w", sc, store.ErrNotFound)
	}
	return nil
}

// DeploymentInsert stores a not-started deployment with the stack's next version.
func (t *emitTx) DeploymentInsert(ctx context.Context, d *store.Deployment) error {
	if err := store.PrepareDeploymentInsert(d); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := t.tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM deployments WHERE org = ? AND project = ? AND stack = ?`,
		d.Stack.Org, d.Stack.Project, d.Stack.Stack).Scan(&d.Version); err != nil {
		return fmt.Errorf("sqlite: insert deployment: next version of %s: %w", d.Stack, err)
	}
	cause, err := json.Marshal(nonNil(d.Cause))
	if err != nil {
		return fmt.Errorf("sqlite: insert deployment: encode cause: %w", err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO deployments (id, org, project, stack, version, operation, status, source, request_id, cause,
		auto_remediate, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.Version, d.Operation, d.Status, d.Source, d.RequestID, string(cause),
		d.AutoRemediate, store.UnixNanos(d.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("deployment %s: %w", d.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: insert deployment %s: %w", d.ID, err)
	}
	return nil
}

const deploymentColumns = `id, org, project, stack, version, operation, status, reason, source, request_id, cause, auto_remediate,
	cancel_requested, worker, drift_detected, resource_changes, log, created_at, started_at, finished_at`

func scanDeployment(row interface{ Scan(...any) error }) (*store.Deployment, error) {
	var d store.Deployment
	var cause, changes string
	var created, started, finished int64
	if err := row.Scan(&d.ID, &d.Stack.Org, &d.Stack.Project, &d.Stack.Stack, &d.Version, &d.Operation, &d.Status, &d.Reason,
		&d.Source, &d.RequestID, &cause, &d.AutoRemediate, &d.CancelRequested, &d.Worker, &d.DriftDetected, &changes, &d.Log,
		&created, &started, &finished); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(cause), &d.Cause); err != nil {
		return nil, fmt.Errorf("deployment %s: decode cause: %w", d.ID, err)
	}
	if len(d.Cause) == 0 {
		d.Cause = nil
	}
	if err := json.Unmarshal([]byte(changes), &d.ResourceChanges); err != nil {
		return nil, fmt.Errorf("deployment %s: decode resource changes: %w", d.ID, err)
	}
	d.CreatedAt = store.FromUnixNanos(created)
	if started != 0 {
		d.StartedAt = store.FromUnixNanos(started)
	}
	if finished != 0 {
		d.FinishedAt = store.FromUnixNanos(finished)
	}
	return &d, nil
}

func getDeployment(ctx context.Context, q queryer, id string) (*store.Deployment, error) {
	d, err := scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("deployment %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get deployment %s: %w", id, err)
	}
	return d, nil
}

// DeploymentGet returns one deployment.
func (s *Store) DeploymentGet(ctx context.Context, id string) (*store.Deployment, error) {
	return getDeployment(ctx, dbq{s}, id)
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
	out, err := s.queryDeployments(ctx, `WHERE org = ? AND project = ? AND stack = ?
		ORDER BY version DESC LIMIT ?`, p.Stack.Org, p.Stack.Project, p.Stack.Stack, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deployments of %s: %w", p.Stack, err)
	}
	return out, nil
}

// queryDeployments returns the deployments a query's WHERE and ORDER clauses (where) pick.
func (s *Store) queryDeployments(ctx context.Context, where string, args ...any) ([]*store.Deployment, error) {
	rows, err := dbq{s}.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeploymentListRecent lists an organization's newest deployments of every stack.
func (s *Store) DeploymentListRecent(ctx context.Context, p store.DeploymentListRecentParams) ([]*store.Deployment, error) {
	if p.Org == "" {
		return nil, errors.New("sqlite: list recent deployments: Org is required")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	out, err := s.queryDeployments(ctx, `WHERE org = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, p.Org, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list recent deployments of %s: %w", p.Org, err)
	}
	return out, nil
}

// DeploymentPending says whether the stack has an unfinished deployment of operation.
func (s *Store) DeploymentPending(ctx context.Context, sc webhook.Scope, operation string) (bool, error) {
	var n int
	err := dbq{s}.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE org = ? AND project = ? AND stack = ? AND operation = ?
		AND status IN ('not-started', 'accepted', 'running')`, sc.Org, sc.Project, sc.Stack, operation).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite: pending deployments of %s: %w", sc, err)
	}
	return n > 0, nil
}

// DeploymentClaim claims not-started deployments, at most one per stack and none of a stack
// with one running.
func (s *Store) DeploymentClaim(ctx context.Context, p store.DeploymentClaimParams) ([]*store.Deployment, error) {
	if p.Worker == "" {
		return nil, errors.New("sqlite: claim deployments: Worker is required")
	}
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := s.runners.acquire(p.Worker); err != nil {
		return nil, err
	}
	var out []*store.Deployment
	err := s.withDurableTx(ctx, func(tx txq) error {
		out = out[:0]
		ids, err := tx.strings(ctx, `SELECT id FROM deployments d WHERE status = 'not-started'
			AND NOT EXISTS (SELECT 1 FROM deployments r WHERE r.org = d.org AND r.project = d.project AND r.stack = d.stack
				AND r.status IN ('accepted', 'running'))
			AND d.rowid = (SELECT MIN(o.rowid) FROM deployments o WHERE o.org = d.org AND o.project = d.project AND o.stack = d.stack
				AND o.status = 'not-started')
			ORDER BY created_at, rowid LIMIT ?`, p.Limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = 'accepted', worker = ?, started_at = ? WHERE id = ?`,
				p.Worker, store.UnixNanos(p.Now), id); err != nil {
				return err
			}
			d, err := getDeployment(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deployments: %w", err)
	}
	return out, nil
}

// DeploymentStart marks an accepted deployment held by p.Worker running.
func (s *Store) DeploymentStart(ctx context.Context, p store.DeploymentStartParams) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.withWriteTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET status = 'running', started_at = ? WHERE id = ? AND status = 'accepted' AND worker = ?`,
			store.UnixNanos(p.Now), p.ID, p.Worker)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("deployment %s: %w", p.ID, store.ErrDeploymentNotHeld)
		}
		d, err = getDeployment(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: start deployment: %w", err)
	}
	return d, nil
}

// DeploymentProgress saves the log of a held deployment and reports a requested cancel.
func (s *Store) DeploymentProgress(ctx context.Context, p store.DeploymentProgressParams) (bool, error) {
	var cancel bool
	err := s.withWriteTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET log = ? WHERE id = ? AND status IN ('accepted', 'running') AND worker = ?`, p.Log, p.ID, p.Worker)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("deployment %s: %w", p.ID, store.ErrDeploymentNotHeld)
		}
		return tx.QueryRowContext(ctx, `SELECT cancel_requested FROM deployments WHERE id = ?`, p.ID).Scan(&cancel)
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: deployment progress: %w", err)
	}
	return cancel, nil
}

// DeploymentComplete ends an accepted or running deployment held by p.Worker.
func (s *Store) DeploymentComplete(ctx context.Context, p store.DeploymentCompleteParams) (*store.Deployment, error) {
	switch p.Status {
	case store.DeploymentSucceeded, store.DeploymentFailed, store.DeploymentSkipped:
	default:
		return nil, fmt.Errorf("sqlite: complete deployment %s: status %q is not a final status (succeeded, failed, skipped)", p.ID, p.Status)
	}
	changes, err := json.Marshal(nonNilMap(p.ResourceChanges))
	if err != nil {
		return nil, err
	}
	var d *store.Deployment
	err = s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ?, reason = ?, log = ?, drift_detected = ?, resource_changes = ?,
			finished_at = ? WHERE id = ? AND status IN ('accepted', 'running') AND worker = ?`,
			p.Status, p.Reason, p.Log, p.DriftDetected, string(changes), store.UnixNanos(p.Now), p.ID, p.Worker)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("deployment %s: %w", p.ID, store.ErrDeploymentNotHeld)
		}
		d, err = getDeployment(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: complete deployment: %w", err)
	}
	return d, nil
}

func nonNilMap(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

// DeploymentCancel cancels a deployment of p.Stack.
func (s *Store) DeploymentCancel(ctx context.Context, p store.DeploymentCancelParams) (*store.Deployment, error) {
	var d *store.Deployment
	err := s.withDurableTx(ctx, func(tx txq) error {
		var err error
		if d, err = getDeployment(ctx, tx, p.ID); err != nil {
			return err
		}
		if d.Stack != p.Stack {
			return fmt.Errorf("deployment %s of %s: %w", p.ID, p.Stack, store.ErrNotFound)
		}
		switch d.Status {
		case store.DeploymentNotStarted:
			_, err = tx.ExecContext(ctx, `UPDATE deployments SET status = 'failed', reason = ?, cancel_requested = 1, finished_at = ? WHERE id = ?`,
				p.Reason, store.UnixNanos(p.Now), p.ID)
		case store.DeploymentAccepted, store.DeploymentRunning:
			_, err = tx.ExecContext(ctx, `UPDATE deployments SET cancel_requested = 1 WHERE id = ?`, p.ID)
		default:
			return nil
		}
		if err != nil {
			return err
		}
		d, err = getDeployment(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: cancel deployment: %w", err)
	}
	return d, nil
}

// DeploymentFailDead fails the accepted and running deployments of dead runners.
func (s *Store) DeploymentFailDead(ctx context.Context, p store.DeploymentFailDeadParams) ([]*store.Deployment, error) {
	rows, err := dbq{s}.QueryContext(ctx, `SELECT DISTINCT worker FROM deployments WHERE status IN ('accepted', 'running')`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find deployment runners: %w", err)
	}
	var workers []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			rows.Close()
			return nil, err
		}
		workers = append(workers, w)
	}
	rows.Close()
	var out []*store.Deployment
	for _, w := range workers {
		dead := s.runners.probe(w)
		if dead == nil {
			continue
		}
		reason := store.DeploymentFailDeadReason + w + "): it is not re-run, because a half-finished operation may have changed the stack; look at the stack, then start a new deployment"
		var failed []*store.Deployment
		err := s.withDurableTx(ctx, func(tx txq) error {
			failed = failed[:0]
			ids, err := tx.strings(ctx, `SELECT id FROM deployments WHERE status IN ('accepted', 'running') AND worker = ?`, w)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = 'failed', reason = ?, finished_at = ? WHERE id = ?`,
					reason, store.UnixNanos(p.Now), id); err != nil {
					return err
				}
				d, err := getDeployment(ctx, tx, id)
				if err != nil {
					return err
				}
				failed = append(failed, d)
			}
			return nil
		})
		dead.finish(err == nil)
		if err != nil {
			return out, fmt.Errorf("sqlite: fail the deployments of dead runner %s: %w", w, err)
		}
		out = append(out, failed...)
	}
	return out, nil
}

// runsDeployments reports whether worker holds deployments (true when that cannot be read).
func (s *Store) runsDeployments(worker string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE status IN ('accepted', 'running') AND worker = ?`, worker).Scan(&n)
	return err != nil || n > 0
}

const driftColumns = `id, org, project, stack, schedule_cron, auto_remediate, next_run_at, last_run_at, created_at`

func scanDrift(row interface{ Scan(...any) error }) (*store.DriftSchedule, error) {
	var d store.DriftSchedule
	var next, last, created int64
	if err := row.Scan(&d.ID, &d.Stack.Org, &d.Stack.Project, &d.Stack.Stack, &d.ScheduleCron, &d.AutoRemediate, &next, &last, &created); err != nil {
		return nil, err
	}
	d.NextRunAt, d.CreatedAt = store.FromUnixNanos(next), store.FromUnixNanos(created)
	if last != 0 {
		d.LastRunAt = store.FromUnixNanos(last)
	}
	return &d, nil
}

// DriftScheduleCreate stores a drift schedule, assigning its ID when empty.
func (s *Store) DriftScheduleCreate(ctx context.Context, d *store.DriftSchedule) error {
	if err := store.PrepareDriftScheduleInsert(d); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	err := s.withDurableTx(ctx, func(tx txq) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO drift_schedules (`+driftColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`,
			d.ID, d.Stack.Org, d.Stack.Project, d.Stack.Stack, d.ScheduleCron, d.AutoRemediate, store.UnixNanos(d.NextRunAt), store.UnixNanos(d.CreatedAt))
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("drift schedule %s: %w", d.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create drift schedule: %w", err)
	}
	return nil
}

func (s *Store) driftQuery(ctx context.Context, q string, args ...any) ([]*store.DriftSchedule, error) {
	rows, err := dbq{s}.QueryContext(ctx, `SELECT `+driftColumns+` FROM drift_schedules WHERE `+q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list drift schedules: %w", err)
	}
	defer rows.Close()
	var out []*store.DriftSchedule
	for rows.Next() {
		d, err := scanDrift(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list drift schedules: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DriftScheduleList returns a stack's drift schedules, oldest first.
func (s *Store) DriftScheduleList(ctx context.Context, sc webhook.Scope) ([]*store.DriftSchedule, error) {
	if err := checkStack(sc); err != nil {
		return nil, err
	}
	return s.driftQuery(ctx, `org = ? AND project = ? AND stack = ? ORDER BY created_at, rowid`, sc.Org, sc.Project, sc.Stack)
}

// DriftScheduleDelete deletes one of a stack's drift schedules.
func (s *Store) DriftScheduleDelete(ctx context.Context, sc webhook.Scope, id string) error {
	var n int64
	err := s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM drift_schedules WHERE id = ? AND org = ? AND project = ? AND stack = ?`,
			id, sc.Org, sc.Project, sc.Stack)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete drift schedule %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("drift schedule %s of %s: %w", id, sc, store.ErrNotFound)
	}
	return nil
}

// DriftScheduleDue returns the schedules due at now.
func (s *Store) DriftScheduleDue(ctx context.Context, now time.Time) ([]*store.DriftSchedule, error) {
	return s.driftQuery(ctx, `next_run_at <= ? ORDER BY next_run_at`, store.UnixNanos(now))
}

// DriftScheduleAdvance moves a schedule from p.From to p.To, unless someone did first.
func (s *Store) DriftScheduleAdvance(ctx context.Context, p store.DriftScheduleAdvanceParams) (bool, error) {
	var n int64
	err := s.withDurableTx(ctx, func(tx txq) error {
		res, err := tx.ExecContext(ctx, `UPDATE drift_schedules SET next_run_at = ?, last_run_at = ? WHERE id = ? AND next_run_at = ?`,
			store.UnixNanos(p.To), store.UnixNanos(p.Now), p.ID, store.UnixNanos(p.From))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: advance drift schedule %s: %w", p.ID, err)
	}
	return n == 1, nil
}

// resealDeploymentSettings re-seals every stack's deployment settings secrets under newBox and
// recomputes their digests, inside KeyRotate's transaction; it returns how many secrets it
// re-sealed. Settings the old key cannot open make it refuse, naming the stacks.
func resealDeploymentSettings(ctx context.Context, tx txq, old, newBox *secretbox.Box) (int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT org, project, stack, secrets FROM deployment_settings WHERE secrets IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: rotate the key: read deployment settings: %w", err)
	}
	type sealedRow struct {
		sc     webhook.Scope
		sealed []byte
	}
	var all []sealedRow
	for rows.Next() {
		var r sealedRow
		if err := rows.Scan(&r.sc.Org, &r.sc.Project, &r.sc.Stack, &r.sealed); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
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
			return 0, fmt.Errorf("sqlite: rotate the key: deployment settings of %s: %w", r.sc, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deployment_settings SET secrets = ?, secret_digests = ? WHERE org = ? AND project = ? AND stack = ?`,
			sealed, string(dj), r.sc.Org, r.sc.Project, r.sc.Stack); err != nil {
			return 0, fmt.Errorf("sqlite: rotate the key: deployment settings of %s: %w", r.sc, err)
		}
		n += secrets
	}
	if len(bad) > 0 {
		return 0, fmt.Errorf("sqlite: rotate the key: the deployment settings secrets of %s cannot be decrypted with the current key: set those settings again or delete them, then rotate; nothing was changed",
			strings.Join(bad, ", "))
	}
	return n, nil
}
