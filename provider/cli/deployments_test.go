package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

func TestDeploymentsCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const secret = "cli-s3cret-value-never-printed"
	want := func(r runResult, code int, part string) {
		t.Helper()
		if r.code != code || !strings.Contains(r.stdout+r.stderr, part) {
			t.Fatalf("exit %d (want %d), output lacks %q:\nstdout: %s\nstderr: %s", r.code, code, part, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("the secret was printed: %s %s", r.stdout, r.stderr)
		}
	}
	want(b.run("", "deployments", "create", "acme/web/prod"), 1, "no deployment settings")
	want(b.run("", "deployments", "settings", "get", "acme/web/prod"), 1, "no deployment settings")
	want(b.run("", "deployments", "settings", "set", "acme/web", "--file", "-"), 1, "ORG/PROJECT/STACK")
	want(b.run(`{"sourceContext":{"local":{"path":"relative"}}}`, "deployments", "settings", "set", "acme/web/prod", "--file", "-"), 1, "sourceContext.local.path")
	want(b.run(`{"nope":1}`, "deployments", "settings", "set", "acme/web/prod", "--file", "-"), 1, "not deployment settings JSON")
	settings := `{"sourceContext":{"local":{"path":"/srv/web"}},"operationContext":{"environmentVariables":{"TOKEN":{"secret":"` + secret + `"}}}}`
	r := b.run(settings, "deployments", "settings", "set", "acme/web/prod", "--file", "-")
	want(r, 0, "ciphertext")
	want(b.run("", "deployments", "settings", "get", "acme/web/prod"), 0, "/srv/web")

	want(b.run("", "deployments", "create", "acme/web/prod", "--operation", "deploy"), 1, "--operation")
	r = b.run("", "deployments", "create", "acme/web/prod", "--operation", "preview")
	want(r, 0, `"status": "not-started"`)
	var created api.CreateDeploymentResponse
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.Version != 1 {
		t.Fatalf("create printed %q (%v)", r.stdout, err)
	}
	want(b.run("", "deployments", "list", "acme/web/prod"), 0, "preview")
	want(b.run("", "deployments", "get", "acme/web/prod", "1"), 0, created.ID)
	want(b.run("", "deployments", "get", "acme/web/prod", "7"), 1, "not found")
	want(b.run("", "deployments", "logs", "acme/web/prod", created.ID), 0, "")
	want(b.run("", "deployments", "cancel", "acme/web/prod", "1"), 0, `"status": "failed"`)
	want(b.run("", "deployments", "cancel", "acme/web/prod", "1"), 1, "nothing to cancel")

	want(b.run("", "deployments", "drift-schedules", "create", "acme/web/prod", "--cron", "sometimes"), 1, "--cron")
	r = b.run("", "deployments", "drift-schedules", "create", "acme/web/prod", "--cron", "*/5 * * * *", "--auto-remediate")
	want(r, 0, `"autoRemediate": true`)
	var sc api.DriftSchedule
	_ = json.Unmarshal([]byte(r.stdout), &sc)
	want(b.run("", "deployments", "drift-schedules", "list", "acme/web/prod"), 0, sc.ID)
	want(b.run("", "deployments", "drift-schedules", "delete", "acme/web/prod", sc.ID), 0, "")
	want(b.run("", "deployments", "drift-schedules", "delete", "acme/web/prod", sc.ID), 1, "not found")
	want(b.run("", "deployments", "settings", "delete", "acme/web/prod"), 0, "")
	want(b.run("", "deployments", "settings", "delete", "acme/web/prod"), 1, "no deployment settings")
}
