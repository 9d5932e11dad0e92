package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const deploySecret = "hunter2-deploy-secret-value"

func withCron(o *servertest.Opts) {
	o.Server = func(c *server.Config) {
		c.ParseCron = func(expr string, now time.Time) (time.Time, error) {
			if expr != "0 * * * *" {
				return time.Time{}, errBadCron
			}
			return now.Add(time.Hour), nil
		}
	}
}

type cronError struct{}

func (cronError) Error() string { return "not a cron expression: give five fields" }

var errBadCron = cronError{}

func TestDeploymentSettingsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const p = "/api/stacks/acme/web/prod/deployments/settings"
	b.do("acme", http.MethodGet, p, nil).want(http.StatusNotFound)
	b.do("acme", http.MethodPatch, p, map[string]any{}).want(http.StatusNotFound)

	body := map[string]any{
		"sourceContext": map[string]any{"local": map[string]any{"path": "/srv/programs/web"}},
		"operationContext": map[string]any{
			"preRunCommands":       []string{"echo hi"},
			"environmentVariables": map[string]any{"TOKEN": map[string]any{"secret": deploySecret}, "PLAIN": "visible"},
		},
		"backend": map[string]any{"url": "file:///var/state", "passphrase": map[string]any{"secret": "pass-" + deploySecret}},
	}
	r := b.do("acme", http.MethodPost, p, body).want(http.StatusOK)
	if strings.Contains(string(r.Body), deploySecret) {
		t.Fatalf("POST settings returned a secret: %s", r.Body)
	}
	var got api.DeploymentSettings
	r.decode(&got)
	tok := got.OperationContext.EnvironmentVariables["TOKEN"]
	if !tok.Secret || tok.Ciphertext == "" || got.OperationContext.EnvironmentVariables["PLAIN"].Value != "visible" {
		t.Fatalf("settings read back = %+v", got.OperationContext.EnvironmentVariables)
	}
	// PATCH changes one field and keeps the secrets; GET never shows them.
	b.do("acme", http.MethodPatch, p, map[string]any{"operationContext": map[string]any{"preRunCommands": []string{"echo changed"}}}).want(http.StatusOK)
	r = b.do("acme", http.MethodGet, p, nil).want(http.StatusOK)
	if strings.Contains(string(r.Body), deploySecret) || !strings.Contains(string(r.Body), "echo changed") {
		t.Fatalf("GET settings after PATCH = %s", r.Body)
	}
	st, err := b.Store.DeploymentSettingsGet(t.Context(), scopeOf("acme", "web", "prod"))
	if err != nil || st.Secrets["operationContext.environmentVariables.TOKEN"] != deploySecret || st.Secrets["backend.passphrase"] != "pass-"+deploySecret {
		t.Fatalf("stored secrets after PATCH lost: %v", err)
	}
	if strings.Contains(string(st.Settings), deploySecret) {
		t.Fatal("the stored settings document holds a secret in the clear")
	}
	// PATCH with null removes a variable.
	b.do("acme", http.MethodPatch, p, map[string]any{"operationContext": map[string]any{"environmentVariables": map[string]any{"PLAIN": nil}}}).want(http.StatusOK)
	r = b.do("acme", http.MethodGet, p, nil).want(http.StatusOK)
	if strings.Contains(string(r.Body), "PLAIN") || !strings.Contains(string(r.Body), "TOKEN") {
		t.Fatalf("GET settings after removing PLAIN = %s", r.Body)
	}
	got.OperationContext.EnvironmentVariables["PLAIN"] = api.SecretValue{Value: "visible"}
	// Sending the whole document back (ciphertexts included) keeps the secrets.
	b.do("acme", http.MethodPost, p, got).want(http.StatusOK)
	st, _ = b.Store.DeploymentSettingsGet(t.Context(), scopeOf("acme", "web", "prod"))
	if st.Secrets["operationContext.environmentVariables.TOKEN"] != deploySecret {
		t.Fatal("POST of the settings as read back lost the secret")
	}

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"relative path", map[string]any{"sourceContext": map[string]any{"local": map[string]any{"path": "rel"}}}, "sourceContext.local.path"},
		{"no repo", map[string]any{"sourceContext": map[string]any{"git": map[string]any{"branch": "main"}}}, "sourceContext.git.repoUrl"},
		{"bad backend", map[string]any{"backend": map[string]any{"url": "http://x"}}, "backend.url"},
		{"bad env name", map[string]any{"operationContext": map[string]any{"environmentVariables": map[string]any{"1X": "v"}}}, "operationContext.environmentVariables"},
		{"unknown field", map[string]any{"sourceContex": map[string]any{}}, "sourceContex"},
		{"forged ciphertext", map[string]any{"operationContext": map[string]any{"environmentVariables": map[string]any{"NEW": map[string]any{"ciphertext": "abc"}}}}, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := b.on(t).do("acme", http.MethodPost, p, tc.body).want(http.StatusBadRequest).apiError()
			if !strings.Contains(e.Message, tc.field) {
				t.Errorf("error %q does not name %s", e.Message, tc.field)
			}
		})
	}
	b.do("acme", http.MethodDelete, p, nil).want(http.StatusNoContent)
	b.do("acme", http.MethodDelete, p, nil).want(http.StatusNotFound)
	// Another organization's token learns nothing.
	b.do("globex", http.MethodGet, p, nil).want(http.StatusNotFound)
}

func TestDeploymentsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, withCron)
	const p = "/api/stacks/acme/web/prod/deployments"
	e := b.do("acme", http.MethodPost, p, map[string]any{"operation": "update"}).want(http.StatusBadRequest).apiError()
	if !strings.Contains(e.Message, "no deployment settings") {
		t.Fatalf("deployment without settings: %q", e.Message)
	}
	b.do("acme", http.MethodPost, p+"/settings", map[string]any{"sourceContext": map[string]any{"local": map[string]any{"path": "/srv/web"}}}).want(http.StatusOK)
	e = b.do("acme", http.MethodPost, p, map[string]any{"operation": "deploy"}).want(http.StatusBadRequest).apiError()
	if !strings.Contains(e.Message, "operation") {
		t.Fatalf("bad operation: %q", e.Message)
	}
	b.do("acme", http.MethodPost, p, map[string]any{}).want(http.StatusBadRequest)
	var c1, c2 api.CreateDeploymentResponse
	b.do("acme", http.MethodPost, p, map[string]any{"operation": "update", "inheritSettings": true}).want(http.StatusAccepted).decode(&c1)
	b.do("acme", http.MethodPost, p, map[string]any{"operation": "detect-drift"}).want(http.StatusAccepted).decode(&c2)
	if c1.Version != 1 || c2.Version != 2 || c1.Status != "not-started" {
		t.Fatalf("created %+v %+v", c1, c2)
	}
	var list api.DeploymentList
	b.do("acme", http.MethodGet, p, nil).want(http.StatusOK).decode(&list)
	if len(list.Deployments) != 2 || list.Deployments[0].Version != 2 {
		t.Fatalf("list = %+v", list)
	}
	var got api.Deployment
	b.do("acme", http.MethodGet, p+"/1", nil).want(http.StatusOK).decode(&got)
	if got.ID != c1.ID || got.Operation != "update" {
		t.Fatalf("get by version = %+v", got)
	}
	b.do("acme", http.MethodGet, p+"/"+c2.ID+"/logs", nil).want(http.StatusOK)
	b.do("acme", http.MethodGet, p+"/9", nil).want(http.StatusNotFound)
	b.do("acme", http.MethodGet, "/api/stacks/acme/web/qa/deployments/"+c1.ID, nil).want(http.StatusNotFound)
	// Cancel before it starts: failed at once; again: nothing to cancel.
	b.do("acme", http.MethodPost, p+"/"+c2.ID+"/cancel", nil).want(http.StatusAccepted).decode(&got)
	if got.Status != "failed" || got.Reason == "" {
		t.Fatalf("canceled = %+v", got)
	}
	b.do("acme", http.MethodPost, p+"/"+c2.ID+"/cancel", nil).want(http.StatusConflict)

	// Drift schedules.
	const ds = p + "/drift/schedules"
	e = b.do("acme", http.MethodPost, ds, map[string]any{"scheduleCron": "every tuesday"}).want(http.StatusBadRequest).apiError()
	if !strings.Contains(e.Message, "scheduleCron") {
		t.Fatalf("bad cron: %q", e.Message)
	}
	b.do("acme", http.MethodPost, ds, map[string]any{}).want(http.StatusBadRequest)
	var sc api.DriftSchedule
	b.do("acme", http.MethodPost, ds, map[string]any{"scheduleCron": "0 * * * *", "autoRemediate": true}).want(http.StatusCreated).decode(&sc)
	if sc.ID == "" || !sc.AutoRemediate || sc.NextExecution == "" {
		t.Fatalf("schedule = %+v", sc)
	}
	var sl api.DriftScheduleList
	b.do("acme", http.MethodGet, ds, nil).want(http.StatusOK).decode(&sl)
	if len(sl.Schedules) != 1 {
		t.Fatalf("schedules = %+v", sl)
	}
	b.do("acme", http.MethodGet, ds+"/"+sc.ID, nil).want(http.StatusOK)
	b.do("acme", http.MethodDelete, ds+"/"+sc.ID, nil).want(http.StatusNoContent)
	b.do("acme", http.MethodDelete, ds+"/"+sc.ID, nil).want(http.StatusNotFound)
}

func TestDriftSchedulesWithoutRunner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do("acme", http.MethodPost, "/api/stacks/acme/web/prod/deployments/drift/schedules", map[string]any{"scheduleCron": "0 * * * *"}).
		want(http.StatusNotImplemented)
}

func scopeOf(org, project, stack string) webhook.Scope {
	return webhook.Scope{Org: org, Project: project, Stack: stack}
}
