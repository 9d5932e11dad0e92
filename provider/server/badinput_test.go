package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// badCase is one bad request: the answer must have status code and, for 400, name field.
type badCase struct {
	name   string
	method string
	path   string
	body   any
	header map[string]string
	code   int
	field  string
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) {
		o.Server = func(c *server.Config) { c.MaxBodyBytes = 4096 }
	})
	rcv := servertest.NewReceiver(t)
	org := "/api/orgs/acme/hooks"
	stack := "/api/stacks/acme/web/prod/hooks"
	env := "/api/esc/environments/acme/app/dev/hooks"
	h := hookBody("acme", rcv.URL())
	h["name"] = "h"
	b.do("acme", "POST", org, h).want(http.StatusCreated)
	deploy := hookBody("acme", "web/other")
	deploy["name"], deploy["format"], deploy["projectName"], deploy["stackName"] = "d", "pulumi_deployments", "web", "prod"
	b.do("acme", "POST", stack, deploy).want(http.StatusCreated)

	with := func(kv ...any) map[string]any {
		m := hookBody("acme", rcv.URL())
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	big := `{"displayName": "` + strings.Repeat("x", 5000) + `"}`
	ev := func(kv ...any) map[string]any {
		m := map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	cases := []badCase{
		// create
		{"create: malformed JSON", "POST", org, `{"displayName": `, nil, 400, "body"},
		{"create: not JSON", "POST", org, `hello`, nil, 400, "body"},
		{"create: empty body", "POST", org, ``, nil, 400, "body"},
		{"create: array body", "POST", org, `[]`, nil, 400, "body"},
		{"create: trailing data", "POST", org, `{"displayName": "x"} {}`, nil, 400, "body"},
		{"create: unknown field", "POST", org, with("colour", "red"), nil, 400, "colour"},
		{"create: environmentName is not the wire name", "POST", env, with("environmentName", "dev"), nil, 400, "environmentName"},
		{"create: wrong type", "POST", org, with("active", "yes"), nil, 400, "active"},
		{"create: filters not an array", "POST", org, with("filters", "update_succeeded"), nil, 400, "filters"},
		{"create: unknown format", "POST", org, with("format", "xml"), nil, 400, "format"},
		{"create: unknown filter", "POST", org, with("filters", []string{"update_succeeded", "update_exploded"}), nil, 400, "filters[1]"},
		{"create: unknown group", "POST", org, with("groups", []string{"everything"}), nil, 400, "groups[0]"},
		{"create: missing displayName", "POST", org, with("displayName", nil), nil, 400, "displayName"},
		{"create: blank displayName", "POST", org, with("displayName", "  "), nil, 400, "displayName"},
		{"create: missing payloadUrl", "POST", org, with("payloadUrl", nil), nil, 400, "payloadUrl"},
		{"create: bad payloadUrl", "POST", org, with("payloadUrl", "ftp://example.com"), nil, 400, "payloadUrl"},
		{"create: missing active", "POST", org, with("active", nil), nil, 400, "active"},
		{"create: missing organizationName", "POST", org, with("organizationName", nil), nil, 400, "organizationName"},
		{"create: organizationName mismatch", "POST", org, with("organizationName", "globex"), nil, 400, "organizationName"},
		{"create: org URL with stack fields", "POST", org, with("projectName", "web", "stackName", "prod"), nil, 400, "projectName"},
		{"create: stack URL with envName", "POST", stack, with("envName", "dev"), nil, 400, "envName"},
		{"create: env URL with stackName", "POST", env, with("stackName", "prod"), nil, 400, "stackName"},
		{"create: projectName mismatch", "POST", stack, with("projectName", "api"), nil, 400, "projectName"},
		{"create: empty name", "POST", org, with("name", ""), nil, 400, "name"},
		{"create: name with slash", "POST", org, with("name", "a/b"), nil, 400, "name"},
		{"create: pulumi_deployments on org", "POST", org, with("format", "pulumi_deployments", "payloadUrl", "web/prod"), nil, 400, "format"},
		{"create: bad deployment target", "POST", stack, with("format", "pulumi_deployments", "payloadUrl", "https://x"), nil, 400, "payloadUrl"},
		{"create: white space in URL scope", "POST", "/api/stacks/acme/web/my%20stack/hooks", with(), nil, 400, "stackName"},
		{"create: too large", "POST", org, big, nil, 413, ""},
		// update
		{"update: malformed JSON", "PATCH", org + "/h", `{`, nil, 400, "body"},
		{"update: unknown field", "PATCH", org + "/h", map[string]any{"url": "x"}, nil, 400, "url"},
		{"update: wrong type", "PATCH", org + "/h", map[string]any{"displayName": 5}, nil, 400, "displayName"},
		{"update: unknown format", "PATCH", org + "/h", map[string]any{"format": "xml"}, nil, 400, "format"},
		{"update: unknown filter", "PATCH", org + "/h", map[string]any{"filters": []string{"nope"}}, nil, 400, "filters[0]"},
		{"update: unknown group", "PATCH", org + "/h", map[string]any{"groups": []string{"nope"}}, nil, 400, "groups[0]"},
		{"update: bad payloadUrl", "PATCH", org + "/h", map[string]any{"payloadUrl": "nope"}, nil, 400, "payloadUrl"},
		{"update: blank displayName", "PATCH", org + "/h", map[string]any{"displayName": ""}, nil, 400, "displayName"},
		{"update: rename", "PATCH", org + "/h", map[string]any{"name": "other"}, nil, 400, "name"},
		{"update: move org", "PATCH", org + "/h", map[string]any{"organizationName": "globex"}, nil, 400, "organizationName"},
		{"update: move to stack", "PATCH", org + "/h", map[string]any{"stackName": "prod"}, nil, 400, "stackName"},
		{"update: pulumi_deployments on org", "PATCH", org + "/h", map[string]any{"format": "pulumi_deployments", "payloadUrl": "web/prod"}, nil, 400, "format"},
		{"update: too large", "PATCH", org + "/h", big, nil, 413, ""},
		{"update: missing hook", "PATCH", org + "/nope", map[string]any{"displayName": "x"}, nil, 404, ""},
		// get, delete, ping, deliveries, redeliver
		{"get: missing hook", "GET", org + "/nope", nil, nil, 404, ""},
		{"get: missing stack hook", "GET", stack + "/h", nil, nil, 404, ""},
		{"delete: missing hook", "DELETE", env + "/nope", nil, nil, 404, ""},
		{"ping: missing hook", "POST", org + "/nope/ping", nil, nil, 404, ""},
		{"ping: deployment hook", "POST", stack + "/d/ping", nil, nil, 400, "format"},
		{"deliveries: missing hook", "GET", org + "/nope/deliveries", nil, nil, 404, ""},
		{"deliveries: limit zero", "GET", org + "/h/deliveries?limit=0", nil, nil, 400, "limit"},
		{"deliveries: limit too big", "GET", org + "/h/deliveries?limit=100000", nil, nil, 400, "limit"},
		{"deliveries: limit not a number", "GET", org + "/h/deliveries?limit=ten", nil, nil, 400, "limit"},
		{"deliveries: before negative", "GET", org + "/h/deliveries?before=-1", nil, nil, 400, "before"},
		{"redeliver: missing hook", "POST", org + "/nope/deliveries/x/redeliver", nil, nil, 404, ""},
		{"redeliver: missing delivery", "POST", org + "/h/deliveries/no-such-delivery/redeliver", nil, nil, 404, ""},
		// events
		{"events: malformed JSON", "POST", "/api/orgs/acme/events", `{"filter"`, nil, 400, "body"},
		{"events: unknown field", "POST", "/api/orgs/acme/events", ev("organizationName", "acme"), nil, 400, "organizationName"},
		{"events: missing filter", "POST", "/api/orgs/acme/events", ev("filter", nil), nil, 400, "filter"},
		{"events: unknown filter", "POST", "/api/orgs/acme/events", ev("filter", "update_exploded"), nil, 400, "filter"},
		{"events: ping is not an event", "POST", "/api/orgs/acme/events", ev("filter", "ping"), nil, 400, "filter"},
		{"events: filter wrong type", "POST", "/api/orgs/acme/events", ev("filter", 3), nil, 400, "filter"},
		{"events: stack event without stack", "POST", "/api/orgs/acme/events", ev("stackName", nil), nil, 400, "stackName"},
		{"events: stack event without project", "POST", "/api/orgs/acme/events", ev("projectName", nil), nil, 400, "projectName"},
		{"events: stack event with environment", "POST", "/api/orgs/acme/events", ev("environmentName", "dev"), nil, 400, "environmentName"},
		{"events: environment event with stack", "POST", "/api/orgs/acme/events", ev("filter", "environment_created", "environmentName", "dev"), nil, 400, "stackName"},
		{"events: environment event without environment", "POST", "/api/orgs/acme/events", ev("filter", "environment_tag_created", "stackName", nil), nil, 400, "environmentName"},
		{"events: slash in name", "POST", "/api/orgs/acme/events", ev("stackName", "a/b"), nil, 400, "stackName"},
		{"events: payload not an object", "POST", "/api/orgs/acme/events", ev("payload", []int{1}), nil, 400, "payload"},
		{"events: payload field of the wrong type", "POST", "/api/orgs/acme/events", ev("payload", map[string]any{"user": 5}), nil, 400, "payload.user"},
		{"events: idempotency key too long", "POST", "/api/orgs/acme/events", ev(), map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "Idempotency-Key"},
		{"events: idempotency key with space", "POST", "/api/orgs/acme/events", ev(), map[string]string{"Idempotency-Key": "a b"}, 400, "Idempotency-Key"},
		{"events: too large", "POST", "/api/orgs/acme/events", `{"filter": "update_succeeded", "payload": {"x": "` + strings.Repeat("y", 5000) + `"}}`, nil, 413, ""},
		{"events: stack URL", "POST", "/api/stacks/acme/web/prod/events", ev(), nil, 404, ""},
		// routing
		{"wrong method on collection", "DELETE", org, nil, nil, 405, ""},
		{"wrong method on hook", "POST", org + "/h", nil, nil, 405, ""},
		{"wrong method on events", "GET", "/api/orgs/acme/events", nil, nil, 405, ""},
		{"unknown path", "GET", "/api/orgs/acme/widgets", nil, nil, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var opts []func(*reqOpts)
			for k, v := range c.header {
				opts = append(opts, withHeader(k, v))
			}
			r := b.on(t).do("acme", c.method, c.path, c.body, opts...).want(c.code)
			e := r.apiError()
			if c.code == 405 && r.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			if c.field == "" {
				return
			}
			if !strings.HasPrefix(e.Message, c.field+":") && !strings.Contains(e.Message, "; "+c.field+":") {
				t.Errorf("message %q does not name %q first or after a ';'", e.Message, c.field)
			}
			found := false
			for _, fe := range e.Errors {
				found = found || fe.Field == c.field
			}
			if !found {
				t.Errorf("errors %+v do not list %q", e.Errors, c.field)
			}
		})
	}
	// Nothing above changed the hook.
	var got api.WebhookResponse
	b.do("acme", "GET", org+"/h", nil).want(http.StatusOK).decode(&got)
	if got.DisplayName != "test hook" || got.PayloadURL != rcv.URL() || got.Format != "raw" || len(got.Filters) != 0 {
		t.Errorf("hook after bad input: %+v", got)
	}
}
