package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
)

// TestDeploymentOfKilledServerFails: a serve process SIGKILLed while a deployment runs leaves
// it running in the store; the next serve fails it with the reason and never runs it again.
// The deployment is held in its pre-run command (waiting for a file), so no pulumi CLI is
// needed to get there.
func TestDeploymentOfKilledServerFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "webhooks.db")
	program := filepath.Join(dir, "program")
	release := filepath.Join(dir, "release")
	if err := os.MkdirAll(program, 0o755); err != nil {
		t.Fatal(err)
	}
	// Whatever happens, let the orphaned pre-run command end.
	t.Cleanup(func() { _ = os.WriteFile(release, nil, 0o644) })
	settings := filepath.Join(dir, "settings.json")
	doc := `{"sourceContext":{"local":{"path":"` + program + `"}},"operationContext":{"preRunCommands":["while [ ! -f ` + release + ` ]; do sleep 0.1; done"]}}`
	if err := os.WriteFile(settings, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, 0, "deployments", "settings", "set", "acme/web/prod", "--file", settings, "--store", store)
	first := startServer(t, store, "--deployment-workers", "1")
	cli(t, 0, "deployments", "create", "acme/web/prod", "--operation", "update", "--store", store)
	get := func() api.Deployment {
		var d api.Deployment
		if err := json.Unmarshal([]byte(cli(t, 0, "deployments", "get", "acme/web/prod", "1", "--store", store)), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitfor.Condition(t, "the deployment to run", func() bool { return get().Status == "running" })
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	startServer(t, store, "--deployment-workers", "1")
	waitfor.Condition(t, "the dead runner's deployment to fail", func() bool { return get().Status == "failed" })
	d := get()
	if !strings.Contains(d.Reason, "ended while it was running") || !strings.Contains(d.Reason, "not re-run") {
		t.Fatalf("reason = %q", d.Reason)
	}
	if out := cli(t, 0, "deployments", "list", "acme/web/prod", "--json", "--store", store); strings.Count(out, `"version"`) != 1 {
		t.Fatalf("deployments after the restart: %s", out)
	}
}
