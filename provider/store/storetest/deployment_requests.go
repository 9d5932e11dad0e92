package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Deployment requests, and the runner for every deployment noun: requests here, deployments
// in deployments.go, their settings in deployment_settings.go, drift schedules in
// drift_schedules.go.

// runDeployments runs the deployment tests.
func runDeployments(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"DeploymentRequests", testDeploymentRequests},
		{"DeploymentSettings", testDeploymentSettings},
		{"DeploymentSettingsKeyRotate", testDeploymentSettingsKeyRotate},
		{"Deployments", testDeployments},
		{"DeploymentsPruned", testDeploymentsPruned},
		{"DriftSchedules", testDriftSchedules},
	})
}

func testDeploymentRequests(t *testing.T, b *testBundle) {
	h := createHook(t, b, webhook.Spec{Scope: stackScope("acme", "web", "dev"), Name: "deploy", DisplayName: "d", PayloadURL: "web/prod",
		Active: true, Format: webhook.FormatPulumiDeployments})
	ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: stackScope("acme", "web", "dev"), Payload: []byte(`{}`), CreatedAt: T0}
	reqs := []*store.DeploymentRequest{
		{Target: stackScope("acme", "web", "prod"), HookID: h.ID, Cause: []string{"acme/web/prod"}, CreatedAt: T0},
		{Target: stackScope("acme", "web", "prod"), HookID: h.ID, Cause: []string{"acme/web/prod", "acme/web/prod"}, Status: "cycle_detected",
			Reason: "acme/web/prod is already in the chain", CreatedAt: T0.Add(time.Second)},
		{Target: stackScope("acme", "api", "prod"), HookID: h.ID, Status: "skipped",
			Reason: "too many deployments from one event (limit 100)", CreatedAt: T0},
	}
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		for _, r := range reqs {
			r.EventID = ev.ID
			if err := tx.DeploymentRequestInsert(b.ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.st.DeploymentRequestList(b.ctx, stackScope("acme", "web", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("DeploymentRequestList = %d, want 2", len(got))
	}
	if got[0].ID != reqs[0].ID || got[0].Status != "queued" || got[0].EventID != ev.ID || got[0].HookID != h.ID ||
		!slices.Equal(got[0].Cause, reqs[0].Cause) || !got[0].CreatedAt.Equal(T0) || got[0].Target != reqs[0].Target {
		t.Fatalf("first request = %+v, want %+v", got[0], reqs[0])
	}
	if got[1].Status != "cycle_detected" || got[1].Reason != reqs[1].Reason {
		t.Fatalf("second request = %+v", got[1])
	}
	all, err := b.st.DeploymentRequestList(b.ctx, orgScope("acme"))
	if err != nil || len(all) != 3 {
		t.Fatalf("DeploymentRequestList(org) = %d, %v", len(all), err)
	}
	// A skipped request is recorded with its reason, for the record of what was asked.
	if i := slices.IndexFunc(all, func(r *store.DeploymentRequest) bool { return r.ID == reqs[2].ID }); i < 0 ||
		all[i].Status != "skipped" || all[i].Reason != reqs[2].Reason {
		t.Fatalf("skipped request = %+v", all)
	}
	none, err := b.st.DeploymentRequestList(b.ctx, stackScope("acme", "web", "qa"))
	if err != nil || len(none) != 0 {
		t.Fatalf("DeploymentRequestList of another stack = %d, %v", len(none), err)
	}
	if _, err := b.st.DeploymentRequestList(b.ctx, webhook.Scope{}); err == nil {
		t.Fatal("DeploymentRequestList without an organization succeeded")
	}
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		return tx.DeploymentRequestInsert(b.ctx, &store.DeploymentRequest{ID: reqs[0].ID, Target: reqs[0].Target, EventID: ev.ID, CreatedAt: T0})
	})
	wantErr(t, "DeploymentRequestInsert of a taken ID", err, store.ErrAlreadyExists)
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		return tx.DeploymentRequestInsert(b.ctx, &store.DeploymentRequest{Target: orgScope("acme"), EventID: ev.ID, CreatedAt: T0})
	})
	if err == nil {
		t.Fatal("DeploymentRequestInsert without a stack succeeded")
	}
}
