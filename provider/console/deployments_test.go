package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

var prodStack = webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}

// deploy queues a deployment of stack through the engine, as the API and the hooks do.
func (b *testBundle) deploy(t *testing.T, stack webhook.Scope, op string) *store.Deployment {
	t.Helper()
	d, _, err := b.Engine.DeploymentCreate(context.Background(), engine.DeploymentCreateParams{Stack: stack, Operation: op, Source: engine.DeploymentSourceAPI})
	if err != nil {
		t.Fatalf("DeploymentCreate %s: %v", op, err)
	}
	return d
}

// runDeployment plays the runner through the store seam: it claims the stack's oldest
// deployment, starts it and saves log; with a final status, it completes it.
func (b *testBundle) runDeployment(t *testing.T, want *store.Deployment, log string, done *store.DeploymentCompleteParams) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	got, err := b.Store.DeploymentClaim(ctx, store.DeploymentClaimParams{Worker: "console-test", Now: now, Limit: 1})
	if err != nil || len(got) != 1 || got[0].ID != want.ID {
		t.Fatalf("DeploymentClaim = %v, %v; want deployment %d", got, err, want.Version)
	}
	if _, err := b.Store.DeploymentStart(ctx, store.DeploymentStartParams{ID: want.ID, Worker: "console-test", Now: now}); err != nil {
		t.Fatalf("DeploymentStart: %v", err)
	}
	if _, err := b.Store.DeploymentProgress(ctx, store.DeploymentProgressParams{ID: want.ID, Worker: "console-test", Log: log}); err != nil {
		t.Fatalf("DeploymentProgress: %v", err)
	}
	if done == nil {
		return
	}
	done.ID, done.Worker, done.Log, done.Now = want.ID, "console-test", log, now
	if _, err := b.Store.DeploymentComplete(ctx, *done); err != nil {
		t.Fatalf("DeploymentComplete: %v", err)
	}
}

func (b *testBundle) deploymentStatus(t *testing.T, d *store.Deployment) *store.Deployment {
	t.Helper()
	got, err := b.Store.DeploymentGet(context.Background(), d.ID)
	if err != nil {
		t.Fatalf("DeploymentGet: %v", err)
	}
	return got
}

func TestDeploymentPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const settingsSecret = "settings-secret-d41d8"
	if _, err := b.Store.DeploymentSettingsPut(ctx, store.DeploymentSettingsPutParams{Stack: prodStack,
		Settings: []byte(`{"operationContext":{"environmentVariables":{}}}`),
		Secrets:  map[string]string{"operationContext.environmentVariables.TOKEN": settingsSecret}, Now: time.Now()}); err != nil {
		t.Fatalf("DeploymentSettingsPut: %v", err)
	}
	up := b.deploy(t, prodStack, webhook.OperationUpdate)
	b.runDeployment(t, up, "Updating (prod)\n\tcreated aws:s3:Bucket site\n\x1b[31mred\x1b[0m TOKEN=[secret]\nResources: 1 created\n",
		&store.DeploymentCompleteParams{Status: store.DeploymentSucceeded})
	drift := b.deploy(t, prodStack, webhook.OperationDetectDrift)
	b.runDeployment(t, drift, "Refreshing (prod)\n~ 1 to update\n", &store.DeploymentCompleteParams{Status: store.DeploymentSucceeded,
		DriftDetected: true, ResourceChanges: map[string]int{"update": 1, "same": 4}})
	queued := b.deploy(t, prodStack, webhook.OperationRefresh)
	tok := b.Tokens["acme"]

	// The list, newest first, from the stack's page and the navigation.
	stack := b.do(t, req{path: "/acme/web/prod", token: tok})
	wantStatus(t, stack, http.StatusOK)
	wantBody(t, stack, `id="deployments-h"`, `href="/-/stacks/acme/web/prod/deployments"`, `href="/acme/web/prod/deployments/2"`, "detect-drift")
	if !strings.Contains(stack.body, `<li><a href="/-/stacks/acme/web/prod/deployments">Deployments of web/prod</a></li>`) {
		t.Errorf("the stack page's navigation lacks Deployments:\n%s", stack.body)
	}
	list := b.do(t, req{path: "/-/stacks/acme/web/prod/deployments", token: tok})
	wantStatus(t, list, http.StatusOK)
	wantBody(t, list, "Deployments of web/prod", "not-started", "succeeded", "refresh", "update", ">api<", `aria-current="page">Deployments of web/prod`)
	i3, i2, i1 := strings.Index(list.body, `/deployments/3"`), strings.Index(list.body, `/deployments/2"`), strings.Index(list.body, `/deployments/1"`)
	if i3 < 0 || i3 > i2 || i2 > i1 {
		t.Errorf("the list is not newest first (positions of 3, 2, 1: %d %d %d):\n%s", i3, i2, i1, list.body)
	}
	empty := b.do(t, req{path: "/-/stacks/acme/web/staging/deployments", token: tok})
	wantStatus(t, empty, http.StatusOK)
	wantBody(t, empty, "No deployments of this stack yet")

	// A finished deployment: its fields and its log, control characters escaped, no Cancel.
	page := b.do(t, req{path: "/acme/web/prod/deployments/1", token: tok})
	wantStatus(t, page, http.StatusOK)
	wantBody(t, page, "Deployment 1 of web/prod", "succeeded", up.ID, `<pre class="log" id="log">Updating (prod)`+"\n\tcreated aws:s3:Bucket site\n"+`\x1b[31mred\x1b[0m TOKEN=[secret]`)
	if strings.Contains(page.body, "Cancel deployment") || strings.Contains(page.body, "\x1b") {
		t.Errorf("a finished deployment's page offers Cancel, or shows a raw escape:\n%s", page.body)
	}
	// The same page by ID, as the API accepts.
	byID := b.do(t, req{path: "/acme/web/prod/deployments/" + up.ID, token: tok})
	wantStatus(t, byID, http.StatusOK)
	wantBody(t, byID, "Deployment 1 of web/prod")

	// Drift findings.
	dp := b.do(t, req{path: "/acme/web/prod/deployments/2", token: tok})
	wantStatus(t, dp, http.StatusOK)
	wantBody(t, dp, `<dd id="drift">yes</dd>`, "same: 4", "update: 1", "~ 1 to update")
	if strings.Contains(page.body, `id="drift"`) {
		t.Errorf("an update without drift findings shows drift fields")
	}

	// Cancel through the form: refused without the session's CSRF token, done with it.
	s := b.signIn(t, "acme")
	qp := b.do(t, req{path: "/acme/web/prod/deployments/3", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, qp, http.StatusOK)
	wantBody(t, qp, "not-started", `action="/-/stacks/acme/web/prod/deployments/3/cancel"`, "Cancel deployment")
	const cancel = "/-/stacks/acme/web/prod/deployments/3/cancel"
	for _, bad := range []url.Values{{}, {"csrf": {"forged"}}} {
		r := b.do(t, req{method: http.MethodPost, path: cancel, cookie: []*http.Cookie{s.cookie}, form: bad})
		wantStatus(t, r, http.StatusForbidden)
		wantBody(t, r, "security token")
	}
	if got := b.deploymentStatus(t, queued); got.Status != store.DeploymentNotStarted {
		t.Fatalf("a refused cancel changed the deployment: %s", got.Status)
	}
	done := b.do(t, req{method: http.MethodPost, path: cancel, cookie: []*http.Cookie{s.cookie}, form: url.Values{"csrf": {csrfOf(t, qp)}}})
	wantStatus(t, done, http.StatusSeeOther)
	if loc := done.Header.Get("Location"); loc != "/acme/web/prod/deployments/3?done=canceled" {
		t.Errorf("cancel went to %q", loc)
	}
	if got := b.deploymentStatus(t, queued); got.Status != store.DeploymentFailed || got.Reason != "canceled before it started" {
		t.Fatalf("after cancel: %s %q, want failed", got.Status, got.Reason)
	}
	after := b.do(t, req{path: "/acme/web/prod/deployments/3?done=canceled", cookie: []*http.Cookie{s.cookie}})
	wantBody(t, after, "Cancel requested", "canceled before it started")
	if strings.Contains(after.body, "Cancel deployment") {
		t.Errorf("a failed deployment still offers Cancel")
	}
	// Cancelling it again: it has finished.
	again := b.do(t, req{method: http.MethodPost, path: cancel, cookie: []*http.Cookie{s.cookie}, form: url.Values{"csrf": {s.csrf}}})
	wantStatus(t, again, http.StatusConflict)
	wantBody(t, again, "deployment 3 has already finished (failed): there is nothing to cancel")

	// A running deployment is marked for its runner to stop.
	running := b.deploy(t, prodStack, webhook.OperationUpdate)
	b.runDeployment(t, running, "Updating (prod)\n", nil)
	r := b.do(t, req{method: http.MethodPost, path: "/-/stacks/acme/web/prod/deployments/4/cancel", cookie: []*http.Cookie{s.cookie}, form: url.Values{"csrf": {s.csrf}}})
	wantStatus(t, r, http.StatusSeeOther)
	if got := b.deploymentStatus(t, running); got.Status != store.DeploymentRunning || !got.CancelRequested {
		t.Fatalf("a running deployment after cancel: %s, cancel requested %v", got.Status, got.CancelRequested)
	}
	wantBody(t, b.do(t, req{path: "/acme/web/prod/deployments/4", token: tok}), "running</span> (cancel requested)")

	// Another stack's deployment, for the 404s.
	qa := b.deploy(t, webhook.Scope{Org: "acme", Project: "web", Stack: "qa"}, webhook.OperationUpdate)
	// The organization's newest deployments of every stack, each with its stack.
	org := b.do(t, req{path: "/-/orgs/acme/deployments", token: tok})
	wantStatus(t, org, http.StatusOK)
	wantBody(t, org, "Deployments of acme", `<a href="/acme/web/qa">web/qa</a>`, `<a href="/acme/web/prod">web/prod</a>`,
		`aria-current="page">Deployments<`)
	iqa, iprod := strings.Index(org.body, `href="/acme/web/qa/deployments/1"`), strings.Index(org.body, `href="/acme/web/prod/deployments/4"`)
	if iqa < 0 || iprod < 0 || iqa > iprod {
		t.Errorf("the organization's deployments are not newest first (qa at %d, prod 4 at %d):\n%s", iqa, iprod, org.body)
	}
	none := b.do(t, req{path: "/-/orgs/globex/deployments", token: b.Tokens["globex"]})
	wantStatus(t, none, http.StatusOK)
	wantBody(t, none, "No deployments in this organization yet")
	if strings.Contains(none.body, "web/prod") {
		t.Errorf("globex's deployments list acme's")
	}

	// Not found: versions and IDs that do not exist, or belong to another stack, and pages
	// that are not stacks.
	for _, p := range []string{"/acme/web/prod/deployments/99", "/acme/web/prod/deployments/0", "/acme/web/prod/deployments/nope",
		"/acme/web/prod/deployments/" + qa.ID, "/acme/web/staging/deployments/1", "/-/stacks/acme/web/bad%20name/deployments"} {
		r := b.do(t, req{path: p, token: tok})
		wantStatus(t, r, http.StatusNotFound)
		wantBody(t, r, "not found")
	}
	nf := b.do(t, req{method: http.MethodPost, path: "/-/stacks/acme/web/prod/deployments/99/cancel", token: tok})
	wantStatus(t, nf, http.StatusNotFound)
	wantBody(t, nf, `deployment &#34;99&#34; of stack &#34;acme/web/prod&#34; not found`)

	// Another organization sees none of it, and cannot cancel.
	other := b.Tokens["globex"]
	for _, p := range []string{"/acme/web/prod/deployments/1", "/-/stacks/acme/web/prod/deployments", "/-/orgs/acme/deployments"} {
		r := b.do(t, req{path: p, token: other})
		wantStatus(t, r, http.StatusNotFound)
		if strings.Contains(r.body, "Updating") || strings.Contains(r.body, up.ID) {
			t.Errorf("globex sees acme's deployment on %s", p)
		}
	}
	fresh := b.deploy(t, prodStack, webhook.OperationPreview)
	gc := b.do(t, req{method: http.MethodPost, path: "/-/stacks/acme/web/prod/deployments/5/cancel", token: other})
	wantStatus(t, gc, http.StatusNotFound)
	if got := b.deploymentStatus(t, fresh); got.Status != store.DeploymentNotStarted {
		t.Errorf("globex cancelled acme's deployment: %s", got.Status)
	}

	// The stack's settings secrets are never shown.
	for _, p := range []string{"/acme/web/prod", "/-/stacks/acme/web/prod/deployments", "/acme/web/prod/deployments/1", "/acme/web/prod/deployments/2"} {
		if r := b.do(t, req{path: p, token: tok}); strings.Contains(r.body, settingsSecret) {
			t.Errorf("%s shows a settings secret", p)
		}
	}
}
