package cli

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestEmitOrgDisplayName checks `emit --org-display-name` (and its variable, one setting per
// line) gives organization.name of the payload, the organization's name staying in
// githubLogin, and that a bad setting is refused naming the flag before anything is stored.
func TestEmitOrgDisplayName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine()
	rcv := servertest.NewReceiver(t)
	for _, org := range []string{"acme", "globex"} {
		if _, err := e.HookCreate(t.Context(), webhook.Spec{Scope: webhook.Scope{Org: org}, Name: "all", DisplayName: "all", PayloadURL: rcv.URL(), Active: true}); err != nil {
			t.Fatal(err)
		}
	}
	event := []string{"emit", "--filter", "stack_created", "--project", "web", "--stack", "prod", "--json"}
	b.ok(append(event, "--org", "acme", "--org-display-name", "acme=Acme, Inc.")...)
	b.env[EnvOrgNames] = "acme=Acme Corp\nglobex=Globex Corporation\n"
	b.ok(append(event, "--org", "globex")...)
	b.ok(append(event, "--org", "acme", "--org-display-name", "acme=Flag Wins")...)
	b.fails([]string{"--org-display-name", `"acme" is given twice`}, append(event, "--org", "acme", "--org-display-name", "acme=A\nacme=B")...)
	b.env[EnvOrgNames] = "acme=\u202eevil"
	b.fails([]string{EnvOrgNames, "--org-display-name", "invisible character U+202E"}, append(event, "--org", "acme")...)

	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitfor.Limit)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	got := map[string]bool{}
	for _, r := range rcv.Wait(t, 3) {
		var p webhook.StackPayload
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		got[p.Organization.GithubLogin+"="+p.Organization.Name] = true
	}
	for _, want := range []string{"acme=Acme, Inc.", "globex=Globex Corporation", "acme=Flag Wins"} {
		if !got[want] {
			t.Errorf("no payload has organization %s: %v", want, got)
		}
	}
}

// TestPulumiRefusesBadOrgDisplayName checks the wrapper refuses a bad --org-display-name
// before it runs pulumi (a missing executable would be the error otherwise).
func TestPulumiRefusesBadOrgDisplayName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fails([]string{"--org-display-name", `"acme" has no '='`},
		"pulumi", "--pulumi-bin", "/nonexistent/pulumi", "--org-display-name", "acme", "--", "version")
}
