package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

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
}

// DeploymentCreate stores a not-started deployment and its deployment_queued event, with the
// deliveries and deployment requests of the hooks that match it, in one transaction.
func (e *Engine) DeploymentCreate(ctx context.Context, p DeploymentCreateParams) (*store.Deployment, *EmitResult, error) {
	var errs webhook.FieldErrors
	if !slices.Contains(Operations, p.Operation) {
		errs.Add("operation", fmt.Sprintf("%q is not an operation: use one of %v", p.Operation, Operations))
	}
	if p.Stack.Org == "" || p.Stack.Project == "" || p.Stack.Stack == "" {
		errs.Add("stack", "name the organization, project and stack to deploy")
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
		ev, err := em.queuedEvent(d)
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

// queuedEvent builds the deployment_queued event of d.
func (em *emitter) queuedEvent(d *store.Deployment) (*store.Event, error) {
	id := newID()
	payload, err := DeploymentPayload(em.e.cfg.ConsoleURL, id, webhook.DeploymentQueued, d, em.now)
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

// DeploymentPayload renders the raw payload of a deployment_* event about d.
func DeploymentPayload(consoleURL, eventID string, f webhook.Filter, d *store.Deployment, now time.Time) ([]byte, error) {
	if f.Kind() != webhook.KindDeployment {
		return nil, errors.New("engine: DeploymentPayload needs a deployment_* filter")
	}
	return render.Payload(render.PayloadParams{EventID: eventID, Filter: f, Subject: d.Stack, Overrides: DeploymentOverrides(d),
		ConsoleURL: consoleURL, Now: now})
}
