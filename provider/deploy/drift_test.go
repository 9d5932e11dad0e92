package deploy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// restClient calls the REST API of a server running on the bundle's engine.
type restClient struct {
	t     *testing.T
	url   string
	token string
	seen  bytes.Buffer // every response body, to look for leaks
}

func (b *bundle) rest() *restClient {
	srv, err := server.New(server.Config{Engine: b.eng, ParseCron: ParseCron})
	if err != nil {
		b.t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.t.Cleanup(hs.Close)
	tok, _, err := server.IssueToken(b.ctx, b.st, server.IssueTokenParams{Org: "acme"})
	if err != nil {
		b.t.Fatal(err)
	}
	return &restClient{t: b.t, url: hs.URL, token: tok}
}

func (c *restClient) do(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	req.Header.Set("Authorization", "token "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.seen.Write(b)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestDriftScheduleDetectsAndRemediates: a stack whose program manages a webhook of this very
// project (through the real provider plugin, on the same store) is deployed through the REST
// API; the webhook is then changed through the REST API, out of band; a drift schedule firing
// every second detects the drift (a preview-only refresh) and, with autoRemediate, puts the
// webhook back with `up --refresh`. The store key, a secret environment variable of the
// stack, shows up in no log, event or API answer.
func TestDriftScheduleDetectsAndRemediates(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	pluginDir := filepath.Join(b.dir, "plugin")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	build := execCommand(b.ctx, root, "go", "build", "-o", filepath.Join(pluginDir, "pulumi-resource-pulumiservice"), "./provider/cmd/pulumi-resource-pulumiservice")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the provider plugin: %v\n%s", err, out)
	}
	sched, err := NewScheduler(SchedulerConfig{Engine: b.eng, Interval: 200 * time.Millisecond, Wake: b.runner.Wake})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sched.Stop)
	rc := newReceiver(t)
	b.subscribe(rc, webhook.DriftDetected, webhook.DriftDetectionSucceeded, webhook.DriftDetectionFailed,
		webhook.DriftRemediationSucceeded, webhook.DriftRemediationFailed)

	const origURL = "https://receiver.example.com/drift"
	dir := b.program("drift", `name: drift
runtime: yaml
resources:
  watched:
    type: pulumiservice:Webhook
    properties:
      organizationName: acme
      projectName: drift
      stackName: watched
      displayName: Watched
      payloadUrl: `+origURL+`
      active: true
      filters:
        - update_succeeded
`)
	key := base64.StdEncoding.EncodeToString(b.key)
	c := b.rest()
	const p = "/api/stacks/acme/drift/dev/deployments"
	c.do(http.MethodPost, p+"/settings", map[string]any{
		"sourceContext": map[string]any{"local": map[string]any{"path": dir}},
		"operationContext": map[string]any{"environmentVariables": map[string]any{
			"PATH":                       pluginDir + string(os.PathListSeparator) + b.toolBin + ":/usr/bin:/bin",
			"PULUMI_WEBHOOKS_STORE":      b.dbPath,
			"PULUMI_WEBHOOKS_SECRET_KEY": map[string]any{"secret": key},
		}},
		"backend": map[string]any{"url": "file://" + b.state, "passphrase": map[string]any{"secret": "test-passphrase"}},
	}, http.StatusOK, nil)
	c.do(http.MethodPost, p, map[string]any{"operation": "update"}, http.StatusAccepted, nil)
	b.runner.Wake()
	stack := webhook.Scope{Org: "acme", Project: "drift", Stack: "dev"}
	if d := b.wait(stack, 1); d.Status != store.DeploymentSucceeded {
		t.Fatalf("first update = %s (%s)\n%s", d.Status, d.Reason, d.Log)
	}
	hooks, err := b.st.HookList(b.ctx, store.HookListParams{Scope: webhook.Scope{Org: "acme", Project: "drift", Stack: "watched"}, Exact: true})
	if err != nil || len(hooks) != 1 {
		t.Fatalf("the program's webhook: %d, %v", len(hooks), err)
	}
	hookPath := "/api/stacks/acme/drift/watched/hooks/" + hooks[0].Name
	var hook api.WebhookResponse
	c.do(http.MethodGet, hookPath, nil, http.StatusOK, &hook)

	// Out of band: someone changes the webhook through the REST API.
	c.do(http.MethodPatch, hookPath, map[string]any{"payloadUrl": "https://changed.example.com/x"}, http.StatusOK, nil)
	var sc api.DriftSchedule
	c.do(http.MethodPost, p+"/drift/schedules", map[string]any{"scheduleCron": "* * * * * *", "autoRemediate": true}, http.StatusCreated, &sc)

	deadline := time.Now().Add(2 * time.Minute)
	for len(rc.find("drift_detected", "dev")) == 0 || len(rc.find("drift_remediation_succeeded", "dev")) == 0 {
		if time.Now().After(deadline) {
			ds, _ := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: webhook.Scope{Org: "acme", Project: "drift", Stack: "dev"}})
			for _, d := range ds {
				t.Logf("deployment %d %s: %s drift=%v (%s) changes=%v", d.Version, d.Operation, d.Status, d.DriftDetected, d.Reason, d.ResourceChanges)
			}
			if len(ds) > 0 {
				t.Logf("last log:\n%s", ds[0].Log)
			}
			t.Fatalf("timed out waiting for drift_detected and drift_remediation_succeeded; received:\n%s", rc.all())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.do(http.MethodDelete, p+"/drift/schedules/"+sc.ID, nil, http.StatusNoContent, nil)
	c.do(http.MethodGet, hookPath, nil, http.StatusOK, &hook)
	if hook.PayloadURL != origURL {
		t.Fatalf("after remediation the webhook's payloadUrl = %q, want %q", hook.PayloadURL, origURL)
	}
	det := rc.find("drift_detected", "dev")[0].Payload
	if det["driftDetected"] != true || str(det["driftRunId"]) == "" || det["status"] != "succeeded" || str(det["referenceUrl"]) == "" {
		t.Errorf("drift_detected payload = %v", det)
	}
	if ch, _ := det["resourceChanges"].(map[string]any); len(ch) == 0 {
		t.Errorf("drift_detected has no resourceChanges: %v", det)
	}
	rem := rc.find("drift_remediation_succeeded", "dev")[0].Payload
	if rem["status"] != "succeeded" || str(rem["referenceUrl"]) == "" {
		t.Errorf("drift_remediation_succeeded payload = %v", rem)
	}
	ds, _ := b.st.DeploymentList(b.ctx, store.DeploymentListParams{Stack: stack})
	var drifted *store.Deployment
	for _, d := range ds {
		if d.Operation == "detect-drift" && d.DriftDetected {
			drifted = d
		}
	}
	if drifted == nil || drifted.Status != store.DeploymentSucceeded || drifted.Source != "schedule" {
		t.Fatalf("no successful drift deployment from the schedule: %+v", ds)
	}
	var logs api.DeploymentLogs
	c.do(http.MethodGet, p+"/"+drifted.ID+"/logs", nil, http.StatusOK, &logs)
	c.do(http.MethodGet, p+"/settings", nil, http.StatusOK, nil)
	for what, s := range map[string]string{"events": rc.all(), "server log": b.logs.String(), "API": c.seen.String(), "deployment log": logs.Log} {
		if strings.Contains(s, key) {
			t.Errorf("the secret store key leaked into the %s", what)
		}
	}
}
