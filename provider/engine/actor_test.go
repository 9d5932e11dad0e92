package engine

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestEmitActorAndOrgDisplayName checks the payload names who caused the event (Actor, else
// the system user; a "user" override still wins) and the organization by its configured
// display name, while links keep the organization's name; deployment_queued events that a
// pulumi_deployments hook queues get the display name too. Organizations without one show
// their name.
func TestEmitActorAndOrgDisplayName(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.OrgDisplayNames = webhook.OrgDisplayNames{"acme": "Acme Corp"} })
	ctx := context.Background()
	payloadOf := func(eventID string) map[string]any {
		t.Helper()
		ev, err := b.store.EventGet(ctx, eventID)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	wantOrg := map[string]any{"name": "Acme Corp", "githubLogin": "acme", "avatarUrl": ""}
	path := func(m map[string]any, k, sub string) any {
		inner, _ := m[k].(map[string]any)
		return inner[sub]
	}

	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Actor: &webhook.User{Name: "ci token"}})
	m := payloadOf(res.EventID)
	if !reflect.DeepEqual(m["user"], map[string]any{"name": "ci token", "githubLogin": "", "avatarUrl": ""}) {
		t.Errorf("user = %v, want the actor", m["user"])
	}
	if !reflect.DeepEqual(m["organization"], wantOrg) {
		t.Errorf("organization = %v", m["organization"])
	}
	if m["updateUrl"] != "https://app.pulumi.com/acme/web/prod/updates/1" {
		t.Errorf("updateUrl = %v, want it under the organization's name", m["updateUrl"])
	}

	res = b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject, Actor: &webhook.User{Name: "ci token"},
		Overrides: json.RawMessage(`{"user": {"name": "Morty"}}`)})
	if got := payloadOf(res.EventID)["user"]; !reflect.DeepEqual(got, map[string]any{"name": "Morty"}) {
		t.Errorf("user with an override = %v, want the override", got)
	}

	res = b.emit(t, EmitParams{Filter: webhook.StackCreated, Subject: stackSubject})
	if got := payloadOf(res.EventID)["user"]; !reflect.DeepEqual(got, map[string]any{"name": webhook.SystemUserName, "githubLogin": webhook.SystemUserName, "avatarUrl": ""}) {
		t.Errorf("user without an actor = %v, want the system user", got)
	}

	other := webhook.Scope{Org: "globex", Project: "web", Stack: "prod"}
	res = b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: other})
	if got := payloadOf(res.EventID)["organization"]; !reflect.DeepEqual(got, map[string]any{"name": "globex", "githubLogin": "globex", "avatarUrl": ""}) {
		t.Errorf("organization without a display name = %v", got)
	}

	// A queued deployment's deployment_queued event is rendered by the engine too.
	_, dres, err := b.eng.DeploymentCreate(ctx, DeploymentCreateParams{Stack: stackSubject, Operation: webhook.OperationUpdate,
		Source: DeploymentSourceAPI, Actor: &webhook.User{Name: "deployer token"}})
	if err != nil {
		t.Fatal(err)
	}
	m = payloadOf(dres.EventID)
	if !reflect.DeepEqual(m["organization"], wantOrg) || path(m, "user", "name") != "deployer token" {
		t.Errorf("deployment_queued organization = %v, user = %v", m["organization"], m["user"])
	}
}
