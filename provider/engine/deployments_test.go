package engine

import (
	"encoding/json"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestDeploymentRequestQueuesDeployment: a pulumi_deployments hook's queued request is also a
// not-started update of its target, in the same transaction, and deployment_queued carries
// the deployment's version and operation.
func TestDeploymentRequestQueuesDeployment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, target := webhook.Scope{Org: "acme", Project: "web", Stack: "a"}, webhook.Scope{Org: "acme", Project: "web", Stack: "b"}
	b.createHook(t, webhook.Spec{Scope: a, Name: "to-b", DisplayName: "to b", PayloadURL: "web/b", Active: true,
		Format: webhook.FormatPulumiDeployments, Filters: []webhook.Filter{webhook.UpdateSucceeded}})
	b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: a})
	b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: a})
	reqs, err := b.store.DeploymentRequestList(t.Context(), target)
	if err != nil || len(reqs) != 2 {
		t.Fatalf("requests = %d, %v", len(reqs), err)
	}
	ds, err := b.store.DeploymentList(t.Context(), store.DeploymentListParams{Stack: target})
	if err != nil || len(ds) != 2 {
		t.Fatalf("deployments = %d, %v", len(ds), err)
	}
	d := ds[1] // oldest
	if d.Version != 1 || ds[0].Version != 2 || d.Operation != webhook.OperationUpdate || d.Status != store.DeploymentNotStarted ||
		d.Source != DeploymentSourceWebhook || d.RequestID != reqs[0].ID || len(d.Cause) != 1 || d.Cause[0] != "acme/web/b" {
		t.Fatalf("deployment = %+v (request %s)", d, reqs[0].ID)
	}
	// DeploymentCreate queues any operation, with its deployment_queued event.
	d2, res, err := b.eng.DeploymentCreate(t.Context(), DeploymentCreateParams{Stack: target, Operation: webhook.OperationRefresh, Source: DeploymentSourceAPI})
	if err != nil || d2.Version != 3 || len(d2.Cause) != 1 || d2.Cause[0] != "acme/web/b" {
		t.Fatalf("DeploymentCreate = %+v, %v", d2, err)
	}
	ev, err := b.store.EventGet(t.Context(), res.EventID)
	if err != nil || ev.Filter != webhook.DeploymentQueued {
		t.Fatalf("event = %+v, %v", ev, err)
	}
	var p map[string]any
	if err := json.Unmarshal(ev.Payload, &p); err != nil || p["version"] != float64(3) || p["operation"] != "refresh" || p["status"] != "queued" {
		t.Fatalf("deployment_queued payload = %v, %v", p, err)
	}
	for _, bad := range []struct {
		p     DeploymentCreateParams
		field string
	}{
		{DeploymentCreateParams{Stack: target, Operation: "deploy"}, "operation"},
		{DeploymentCreateParams{Stack: webhook.Scope{Org: "acme"}, Operation: "update"}, "stackName"},
		{DeploymentCreateParams{Stack: webhook.Scope{Org: "acme", Project: "web", Stack: "a b"}, Operation: "update"}, "stackName"},
	} {
		_, _, err := b.eng.DeploymentCreate(t.Context(), bad.p)
		wantFieldError(t, err, bad.field)
	}
}
