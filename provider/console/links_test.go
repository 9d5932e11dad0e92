package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The console links that payloads carry are pages of the console: with --console-url set to
// the server's own URL they open the stack the event is about, or the deployment. (Environment
// payloads carry no link, as Pulumi's documented ones; chat messages link the environment by
// its names.)
func TestPayloadLinksOpenConsolePages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	// Deployment 1 of web/prod exists (queued before any hook, so it is not delivered): the
	// deploymentUrl of deployment_* payloads opens its page.
	b.deploy(t, prodStack, webhook.OperationUpdate)
	b.createHook(t, "acme", "all", hookBody("acme", "all", b.recv.URL(), ""))
	events := []string{
		`{"filter":"update_succeeded","projectName":"web","stackName":"prod"}`,
		`{"filter":"preview_succeeded","projectName":"web","stackName":"prod"}`,
		`{"filter":"deployment_succeeded","projectName":"web","stackName":"prod"}`,
	}
	for _, e := range events {
		b.emit(t, "acme", e)
	}
	reqs := b.recv.Wait(t, len(events))
	b.waitAttempts(t, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "all"}, len(events))
	want := map[string]string{
		"updateUrl": "Webhooks of stack web/prod", "deploymentUrl": "Deployment 1 of web/prod",
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		var payload map[string]any
		if err := json.Unmarshal(r.Body, &payload); err != nil {
			t.Fatalf("payload: %v", err)
		}
		for field, title := range want {
			link, ok := payload[field].(string)
			if !ok || link == "" {
				continue
			}
			// The engine's default console base; a server started with --console-url set to
			// its own URL puts that base here instead, and the path is the same.
			path, found := strings.CutPrefix(link, render.ConsoleURLDefault)
			if !found {
				t.Fatalf("%s %q does not start with %s", field, link, render.ConsoleURLDefault)
			}
			u, err := url.Parse(path)
			if err != nil {
				t.Fatal(err)
			}
			res := b.do(t, req{path: u.EscapedPath(), token: tok})
			wantStatus(t, res, http.StatusOK)
			wantBody(t, res, "<h1>"+title+"</h1>")
			seen[field] = true
		}
	}
	for field := range want {
		if !seen[field] {
			t.Errorf("no payload carried %s", field)
		}
	}
}

// A pulumi_deployments hook sends no HTTP request: Ping says so on the field, and the page has
// no Redeliver button.
func TestPingDeploymentsHookRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	_, err := b.Engine.HookCreate(context.Background(), webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "staging"},
		Name: "deploy", DisplayName: "Deploy", PayloadURL: "web/prod", Active: true, Format: webhook.FormatPulumiDeployments})
	if err != nil {
		t.Fatal(err)
	}
	h := "/-/stacks/acme/web/staging/hooks/deploy"
	res := b.do(t, req{method: http.MethodPost, path: h + "/ping", token: tok, form: url.Values{}})
	wantStatus(t, res, http.StatusBadRequest)
	wantBody(t, res, "<strong>format</strong>: a pulumi_deployments webhook starts deployments")
	page := b.do(t, req{path: h, token: tok})
	wantStatus(t, page, http.StatusOK)
	if strings.Contains(page.body, "Redeliver") {
		t.Error("a pulumi_deployments hook's page offers Redeliver")
	}
}
