package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestEmitUserIsTheToken checks events emitted through the API name the token that emitted
// them as their user (its description, else "token <id>"; never the token itself), unless the
// request's payload gives a user, and the organization by its configured display name.
func TestEmitUserIsTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) {
		o.Engine = func(c *engine.Config) { c.OrgDisplayNames = webhook.OrgDisplayNames{"acme": "Acme Corp"} }
	})
	rcv := servertest.NewReceiver(t)
	b.do("acme", "POST", "/api/orgs/acme/hooks", hookBody("acme", rcv.URL())).want(http.StatusCreated)
	anonymous, tok, err := server.IssueToken(context.Background(), b.Store, server.IssueTokenParams{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	event := map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}
	b.do("acme", "POST", "/api/orgs/acme/events", event).want(http.StatusAccepted)
	b.do("acme", "POST", "/api/orgs/acme/events", event, withToken(anonymous)).want(http.StatusAccepted)
	withUser := map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod",
		"payload": map[string]any{"user": map[string]any{"name": "Morty"}}}
	b.do("acme", "POST", "/api/orgs/acme/events", withUser).want(http.StatusAccepted)

	var users []string
	for _, r := range rcv.Wait(t, 3) {
		var p struct {
			User         webhook.User         `json:"user"`
			Organization webhook.Organization `json:"organization"`
			UpdateURL    string               `json:"updateUrl"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		users = append(users, p.User.Name)
		if p.Organization != (webhook.Organization{Name: "Acme Corp", GithubLogin: "acme"}) || !strings.Contains(p.UpdateURL, "/acme/web/prod/") {
			t.Errorf("organization %+v, updateUrl %s", p.Organization, p.UpdateURL)
		}
		if strings.Contains(string(r.Body), b.Tokens["acme"]) || strings.Contains(string(r.Body), anonymous) {
			t.Error("a payload carries an API token")
		}
	}
	want := []string{"test", "token " + tok.ID, "Morty"}
	slices.Sort(users)
	slices.Sort(want)
	if !slices.Equal(users, want) {
		t.Errorf("users %v, want %v (in any order)", users, want)
	}
}

// TestPolicyViolationFilters checks the policy violation filters the REST API accepts (they
// are not in the provider schema): a hook subscribes to one, events emitted through the API
// fire it, and each format renders them.
func TestPolicyViolationFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw, slack, teams, advisory := servertest.NewReceiver(t), servertest.NewReceiver(t), servertest.NewReceiver(t), servertest.NewReceiver(t)
	for _, h := range []struct {
		rcv    *servertest.Receiver
		format string
		filter string
	}{
		{raw, "raw", "policy_violation_mandatory"}, {slack, "slack", "policy_violation_mandatory"},
		{teams, "ms_teams", "policy_violation_mandatory"}, {advisory, "raw", "policy_violation_advisory"},
	} {
		body := hookBody("acme", h.rcv.URL())
		body["format"], body["filters"] = h.format, []string{h.filter}
		var created api.WebhookResponse
		b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusCreated).decode(&created)
		if !reflect.DeepEqual(created.Filters, []string{h.filter}) {
			t.Errorf("created filters %v", created.Filters)
		}
	}
	var res api.EmitResponse
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{
		"filter": "policy_violation_mandatory", "projectName": "web", "stackName": "prod",
		"payload": map[string]any{"policyPack": "security", "policyName": "no-public-buckets", "resourceUrn": "urn:pulumi:prod::web::aws:s3/bucket:Bucket::logs", "message": "bucket is public"},
	}).want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 3 {
		t.Fatalf("emit = %+v, want 3 deliveries (the mandatory hooks; not the advisory one)", res)
	}
	got := raw.Wait(t, 1)[0]
	if got.Header.Get(signature.HeaderKind) != "policy_violation" {
		t.Errorf("kind header %q", got.Header.Get(signature.HeaderKind))
	}
	var p webhook.PolicyViolationPayload
	if err := json.Unmarshal(got.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.EnforcementLevel != "mandatory" || p.PolicyName != "no-public-buckets" || p.StackName != "prod" || p.User.Name != "test" {
		t.Errorf("raw payload %s", got.Body)
	}
	for name, rcv := range map[string]*servertest.Receiver{"slack": slack, "ms_teams": teams} {
		body := string(rcv.Wait(t, 1)[0].Body)
		for _, want := range []string{"Policy violation mandatory", "no-public-buckets", "security", "mandatory"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s body does not say %q: %s", name, want, body)
			}
		}
	}
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "policy_violation_advisory", "projectName": "web", "stackName": "prod"}).
		want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 1 {
		t.Errorf("advisory emit = %+v, want 1 delivery", res)
	}
	advisory.Wait(t, 1)

	// A stack hook takes them too. An environment hook may list them, as Pulumi Cloud accepts
	// filters that cannot fire for the scope, but they never reach it: they are stack events.
	stack := hookBody("acme", raw.URL())
	stack["projectName"], stack["stackName"], stack["filters"] = "web", "prod", []string{"policy_violation_advisory"}
	b.do("acme", "POST", "/api/stacks/acme/web/prod/hooks", stack).want(http.StatusCreated)
	env := hookBody("acme", raw.URL())
	env["projectName"], env["envName"], env["filters"] = "app", "dev", []string{"policy_violation_advisory"}
	b.do("acme", "POST", "/api/esc/environments/acme/app/dev/hooks", env).want(http.StatusCreated)
	b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "policy_violation_advisory", "projectName": "web", "stackName": "prod"}).
		want(http.StatusAccepted).decode(&res)
	if res.Deliveries != 2 {
		t.Errorf("advisory emit with org, stack and environment hooks = %+v, want 2 deliveries (the environment hook is never reached)", res)
	}
	// An unknown filter's error lists them among the valid ones.
	bad := hookBody("acme", raw.URL())
	bad["filters"] = []string{"policy_violation"}
	e := b.do("acme", "POST", "/api/orgs/acme/hooks", bad).want(http.StatusBadRequest).apiError()
	mustContain(t, "unknown filter error", e.Message, `"policy_violation_mandatory"`, `"policy_violation_advisory"`)
}

// TestDeploymentQueuedUserIsTheToken checks a deployment asked for through the API announces
// itself (deployment_queued) with the token's name as user.
func TestDeploymentQueuedUserIsTheToken(t *testing.T) {
	t.Parallel()
	b := setup(t, withCron)
	rcv := servertest.NewReceiver(t)
	b.do("acme", "POST", "/api/orgs/acme/hooks", hookBody("acme", rcv.URL())).want(http.StatusCreated)
	const p = "/api/stacks/acme/web/prod/deployments"
	b.do("acme", http.MethodPost, p+"/settings", map[string]any{"sourceContext": map[string]any{"local": map[string]any{"path": "/srv/web"}}}).want(http.StatusOK)
	b.do("acme", http.MethodPost, p, map[string]any{"operation": "update"}).want(http.StatusAccepted)
	got := rcv.Wait(t, 1)[0]
	var pl webhook.DeploymentPayload
	if err := json.Unmarshal(got.Body, &pl); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get(signature.HeaderKind) != "deployment" || pl.Status != "queued" || pl.User.Name != "test" {
		t.Errorf("deployment_queued: kind %q, payload %s", got.Header.Get(signature.HeaderKind), got.Body)
	}
}

// TestTokenDescriptionChecked checks a token's description, which names it in payloads, is
// displayable text of bounded length, and that a description stored before that rule is not
// used as a user name.
func TestTokenDescriptionChecked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ descr, want string }{
		{"ci\x1b[31m", "invisible character U+001B"},
		{strings.Repeat("d", 257), "at most 256"},
		{"\xff", "not valid UTF-8"},
	} {
		_, _, err := server.IssueToken(t.Context(), b.Store, server.IssueTokenParams{Org: "acme", Description: tc.descr})
		var fe webhook.FieldErrors
		if !errors.As(err, &fe) || len(fe) != 1 || fe[0].Field != "description" || !strings.Contains(fe[0].Message, tc.want) {
			t.Errorf("IssueToken(description %q) = %v, want a description error saying %q", tc.descr, err, tc.want)
		}
	}
	if u := server.TokenUser(&store.Token{ID: "t1", Description: "ci\u202e"}); u.Name != "token t1" {
		t.Errorf("TokenUser of an undisplayable description = %q, want token t1", u.Name)
	}
	if u := server.TokenUser(&store.Token{ID: "t2", Description: "  release bot "}); u.Name != "release bot" {
		t.Errorf("TokenUser = %q, want the trimmed description", u.Name)
	}
}
