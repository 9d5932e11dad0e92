package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Where a deployment came from (store.Deployment.Source).
const (
	DeploymentSourceAPI      = "api"
	DeploymentSourceWebhook  = "webhook"
	DeploymentSourceSchedule = "schedule"
)

// Operations is every operation a deployment can run, as Pulumi Deployments names them.
var Operations = []string{
	webhook.OperationUpdate, webhook.OperationPreview, webhook.OperationRefresh, webhook.OperationDestroy,
	webhook.OperationDetectDrift, webhook.OperationRemediateDrift,
}

// DeploymentCreateParams queues a deployment of a stack.
type DeploymentCreateParams struct {
	Stack     webhook.Scope
	Operation string
	// Source is one of the DeploymentSource constants.
	Source string
	// AutoRemediate makes a detect-drift deployment remediate the drift it finds.
	AutoRemediate bool
	// Cause is the chain that led here; empty means the deployment starts a chain, which
	// then begins with its own stack (so the chain it sets off never deploys it again).
	Cause []string
	// Actor, when known (the API token that asked for the deployment), is the user of its
	// deployment_queued event; the system user when nil.
	Actor *webhook.User
}

// DeploymentCreate stores a not-started deployment and its deployment_queued event, with the
// deliveries and deployment requests of the hooks that match it, in one transaction.
func (e *Engine) DeploymentCreate(ctx context.Context, p DeploymentCreateParams) (*store.Deployment, *EmitResult, error) {
	var errs webhook.FieldErrors
	if !slices.Contains(Operations, p.Operation) {
		errs.Add("operation", fmt.Sprintf("%q is not an operation: use one of %v", p.Operation, Operations))
	}
	var stackErrs webhook.FieldErrors
	if errors.As(p.Stack.CheckStack("a deployment"), &stackErrs) {
		errs = append(errs, stackErrs...)
	}
	if err := errs.Err(); err != nil {
		return nil, nil, err
	}
	now := e.cfg.Now()
	cause := slices.Clone(p.Cause)
	if len(cause) == 0 {
		cause = []string{p.Stack.String()}
	}
	var d *store.Deployment
	var res *EmitResult
	err := e.store.EventEmit(ctx, func(tx store.EmitTx) error {
		d = &store.Deployment{Stack: p.Stack, Operation: p.Operation, Source: p.Source, AutoRemediate: p.AutoRemediate,
			Cause: cause, CreatedAt: now}
		if err := tx.DeploymentInsert(ctx, d); err != nil {
			return fmt.Errorf("store deployment: %w", err)
		}
		res = &EmitResult{}
		em := emitter{e: e, tx: tx, now: now, res: res}
		ev, err := em.queuedEvent(d, p.Actor)
		if err != nil {
			return err
		}
		res.EventID = ev.ID
		return em.emit(ctx, ev)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("queue %s of %s: %w", p.Operation, p.Stack.String(), err)
	}
	e.log.InfoContext(ctx, "deployment queued", "stack", p.Stack.String(), "operation", p.Operation, "version", d.Version,
		"deployment", d.ID, "deliveries", res.Deliveries)
	if res.Deliveries > 0 {
		e.notify()
	}
	return d, res, nil
}

// queuedEvent builds the deployment_queued event of d, caused by actor (nil: nobody).
func (em *emitter) queuedEvent(d *store.Deployment, actor *webhook.User) (*store.Event, error) {
	id := newID()
	payload, err := render.Payload(render.PayloadParams{EventID: id, Filter: webhook.DeploymentQueued, Subject: d.Stack,
		Overrides: DeploymentOverrides(d), ConsoleURL: em.e.cfg.ConsoleURL, Now: em.now, Actor: actor,
		OrgDisplayName: em.e.cfg.OrgDisplayNames[d.Stack.Org]})
	if err != nil {
		return nil, fmt.Errorf("render deployment_queued for %s: %w", d.Stack.String(), err)
	}
	return &store.Event{
		ID: id, Filter: webhook.DeploymentQueued, Kind: webhook.DeploymentQueued.Kind(), Subject: d.Stack,
		Payload: payload, Cause: d.Cause, CreatedAt: em.now,
	}, nil
}

// DeploymentOverrides returns the payload fields of a deployment_* event about d: its version
// and operation (the status follows from the filter).
func DeploymentOverrides(d *store.Deployment) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"version": d.Version, "operation": d.Operation})
	return b
}

// deploymentVersionScan bounds the deployments of a stack searched for a version.
const deploymentVersionScan = 1000

// DeploymentFind returns the deployment of stack that ref names, by version ("3") or by ID;
// an error wrapping store.ErrNotFound when there is none (another stack's ID included).
func (e *Engine) DeploymentFind(ctx context.Context, stack webhook.Scope, ref string) (*store.Deployment, error) {
	if v, err := strconv.Atoi(ref); err == nil {
		ds, err := e.store.DeploymentList(ctx, store.DeploymentListParams{Stack: stack, Limit: deploymentVersionScan})
		if err != nil {
			return nil, fmt.Errorf("deployments of %s: %w", stack.String(), err)
		}
		for _, d := range ds {
			if d.Version == v {
				return d, nil
			}
		}
		return nil, fmt.Errorf("deployment %d of %s: %w", v, stack.String(), store.ErrNotFound)
	}
	d, err := e.store.DeploymentGet(ctx, ref)
	if err == nil && d.Stack != stack {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("deployment %s of %s: %w", ref, stack.String(), err)
	}
	return d, nil
}

// DeploymentCancellable reports whether d has not finished, so that cancelling it does
// something.
func DeploymentCancellable(d *store.Deployment) bool {
	switch d.Status {
	case store.DeploymentNotStarted, store.DeploymentAccepted, store.DeploymentRunning:
		return true
	}
	return false
}

// ErrDeploymentFinished is returned when a deployment to cancel has already finished.
var ErrDeploymentFinished = errors.New("the deployment has already finished: there is nothing to cancel")

// DeploymentCancel cancels d: one that had not started fails at once and deployment_failed is
// emitted; an accepted or running one is marked, and its runner stops it within moments. It
// returns the deployment as it is now, or ErrDeploymentFinished (wrapped) when it had finished.
func (e *Engine) DeploymentCancel(ctx context.Context, d *store.Deployment) (*store.Deployment, error) {
	after, err := e.store.DeploymentCancel(ctx, store.DeploymentCancelParams{Stack: d.Stack, ID: d.ID,
		Reason: "canceled before it started", Now: e.cfg.Now()})
	if err != nil {
		return nil, fmt.Errorf("cancel deployment %s: %w", d.ID, err)
	}
	switch {
	case d.Status == store.DeploymentNotStarted && after.Status == store.DeploymentFailed:
		if _, err := e.Emit(ctx, EmitParams{Filter: webhook.DeploymentFailed, Subject: after.Stack,
			Overrides: DeploymentOverrides(after), Cause: after.Cause}); err != nil {
			return nil, err
		}
	case !DeploymentCancellable(after):
		return after, fmt.Errorf("deployment %s (%s): %w", after.ID, after.Status, ErrDeploymentFinished)
	}
	e.log.InfoContext(ctx, "deployment cancel requested", "stack", after.Stack.String(), "deployment", after.ID, "status", after.Status)
	return after, nil
}
