package store

import (
	"context"
	"errors"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// ErrDeploymentNotHeld is returned when a runner records progress or the end of a deployment
// it no longer holds: the deployment is not running under that worker any more (it was failed
// because the worker was judged dead, or it was completed already).
var ErrDeploymentNotHeld = errors.New("deployment not held by this worker")

// Deployment statuses, as Pulumi Deployments names them.
const (
	DeploymentNotStarted = "not-started"
	DeploymentAccepted   = "accepted"
	DeploymentRunning    = "running"
	DeploymentSucceeded  = "succeeded"
	DeploymentFailed     = "failed"
	DeploymentSkipped    = "skipped"
)

// DeploymentSettings are a stack's deployment settings. Settings is the JSON document with
// every secret value taken out (the deploy package owns its shape); Secrets maps a path in the
// document (for instance "operationContext.environmentVariables.TOKEN") to its plain value,
// which the store keeps sealed with the same key as webhook secrets. Never log Secrets.
type DeploymentSettings struct {
	Stack    webhook.Scope
	Settings []byte
	Secrets  map[string]string
	// SecretDigests maps each secret's path to a keyed digest of its value (secretbox.Box.Digest).
	SecretDigests map[string]string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// DeploymentSettingsPutParams creates or replaces a stack's deployment settings.
type DeploymentSettingsPutParams struct {
	Stack    webhook.Scope
	Settings []byte
	Secrets  map[string]string
	Now      time.Time
}

// Deployment is one run of a Pulumi operation on a stack, and the runner's unit of work.
type Deployment struct {
	ID    string
	Stack webhook.Scope
	// Version counts the stack's deployments from 1; the store assigns it.
	Version   int
	Operation string
	// Status is one of the Deployment* statuses; Reason says why it failed or was skipped.
	Status string
	Reason string
	// Source says who asked: "api", "webhook" (a pulumi_deployments hook) or "schedule".
	Source string
	// RequestID is the deployment request of a pulumi_deployments hook that created it.
	RequestID string
	// Cause is the chain of deployment targets that led here (see Event.Cause).
	Cause []string
	// AutoRemediate makes a detect-drift deployment remediate the drift it finds.
	AutoRemediate   bool
	CancelRequested bool
	// Worker is the runner that holds (or held) it.
	Worker          string
	DriftDetected   bool
	ResourceChanges map[string]int
	// Log is the output of the run, secrets redacted.
	Log        string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// DeploymentListParams lists a stack's deployments, newest first, at most Limit (0: 100).
type DeploymentListParams struct {
	Stack webhook.Scope
	Limit int
}

// DeploymentListRecentParams lists an organization's deployments of every stack, newest (by
// creation) first, at most Limit (0: 100).
type DeploymentListRecentParams struct {
	Org   string
	Limit int
}

// DeploymentClaimParams claims up to Limit deployments that have not started, oldest first,
// never one of a stack that already has a deployment running (one operation at a time per
// stack), and never two of one stack. Claimed deployments become accepted with Worker and
// StartedAt = Now; DeploymentStart then marks one running when its operation begins. The store ties Worker to this process, so that DeploymentFailDead can tell
// when it died.
type DeploymentClaimParams struct {
	Worker string
	Now    time.Time
	Limit  int
}

// DeploymentStartParams marks an accepted deployment held by Worker running (else
// ErrDeploymentNotHeld): its runner has prepared it and the operation begins.
type DeploymentStartParams struct {
	ID     string
	Worker string
	Now    time.Time
}

// DeploymentProgressParams saves the log of an accepted or running deployment held by Worker.
type DeploymentProgressParams struct {
	ID     string
	Worker string
	Log    string
}

// DeploymentCompleteParams ends an accepted or running deployment held by Worker (else
// ErrDeploymentNotHeld).
type DeploymentCompleteParams struct {
	ID              string
	Worker          string
	Status          string
	Reason          string
	Log             string
	DriftDetected   bool
	ResourceChanges map[string]int
	Now             time.Time
}

// DeploymentCancelParams cancels a deployment: one not started yet fails at once with Reason;
// a running one is marked so its runner stops it. A finished one is returned unchanged.
type DeploymentCancelParams struct {
	Stack  webhook.Scope
	ID     string
	Reason string
	Now    time.Time
}

// DeploymentFailDeadParams fails the accepted and running deployments whose runner process is
// gone.
type DeploymentFailDeadParams struct {
	Now time.Time
}

// DeploymentFailDeadReason starts the Reason of a deployment failed because its runner died.
const DeploymentFailDeadReason = "the runner holding this deployment ended while it was running (worker "

// DriftSchedule runs detect-drift deployments of a stack on a cron schedule.
type DriftSchedule struct {
	ID            string
	Stack         webhook.Scope
	ScheduleCron  string
	AutoRemediate bool
	NextRunAt     time.Time
	LastRunAt     time.Time
	CreatedAt     time.Time
}

// DriftScheduleAdvanceParams moves a due schedule on: it only writes while the schedule's
// NextRunAt is still From (another process did not fire it first), and sets it to To.
type DriftScheduleAdvanceParams struct {
	ID       string
	From, To time.Time
	Now      time.Time
}

// DeploymentStore is the part of Store that deployments, their settings and drift schedules
// need.
type DeploymentStore interface {
	DeploymentSettingsPut(ctx context.Context, p DeploymentSettingsPutParams) (*DeploymentSettings, error)
	DeploymentSettingsGet(ctx context.Context, stack webhook.Scope) (*DeploymentSettings, error)
	DeploymentSettingsDelete(ctx context.Context, stack webhook.Scope) error

	// Deployments are created inside EventEmit (EmitTx.DeploymentInsert), so that
	// deployment_queued is stored with them.
	DeploymentGet(ctx context.Context, id string) (*Deployment, error)
	DeploymentList(ctx context.Context, p DeploymentListParams) ([]*Deployment, error)
	DeploymentListRecent(ctx context.Context, p DeploymentListRecentParams) ([]*Deployment, error)
	// DeploymentPending says whether the stack has a deployment of operation that has not
	// finished (not-started, accepted or running).
	DeploymentPending(ctx context.Context, stack webhook.Scope, operation string) (bool, error)
	DeploymentClaim(ctx context.Context, p DeploymentClaimParams) ([]*Deployment, error)
	DeploymentStart(ctx context.Context, p DeploymentStartParams) (*Deployment, error)
	// DeploymentProgress saves the log and reports whether a cancel was requested.
	DeploymentProgress(ctx context.Context, p DeploymentProgressParams) (cancel bool, err error)
	DeploymentComplete(ctx context.Context, p DeploymentCompleteParams) (*Deployment, error)
	DeploymentCancel(ctx context.Context, p DeploymentCancelParams) (*Deployment, error)
	// DeploymentFailDead fails, with a Reason starting DeploymentFailDeadReason, the accepted
	// and running deployments of runners known to be dead (SQLite: a per-worker flock, as for delivery
	// holders), and returns them. They are never re-run.
	DeploymentFailDead(ctx context.Context, p DeploymentFailDeadParams) ([]*Deployment, error)

	DriftScheduleCreate(ctx context.Context, s *DriftSchedule) error
	DriftScheduleList(ctx context.Context, stack webhook.Scope) ([]*DriftSchedule, error)
	DriftScheduleDelete(ctx context.Context, stack webhook.Scope, id string) error
	// DriftScheduleDue returns the schedules whose NextRunAt is at or before now.
	DriftScheduleDue(ctx context.Context, now time.Time) ([]*DriftSchedule, error)
	// DriftScheduleAdvance returns false when another process advanced it first.
	DriftScheduleAdvance(ctx context.Context, p DriftScheduleAdvanceParams) (bool, error)
}
