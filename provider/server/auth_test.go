package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// endpoints lists one request per API operation, against acme's objects.
func endpoints(hook, delivery string) []struct{ method, path string } {
	var out []struct{ method, path string }
	for _, base := range []string{"/api/orgs/acme/hooks", "/api/stacks/acme/web/prod/hooks", "/api/esc/environments/acme/app/dev/hooks"} {
		out = append(out, []struct{ method, path string }{
			{"GET", base}, {"POST", base}, {"GET", base + "/" + hook}, {"PATCH", base + "/" + hook},
			{"DELETE", base + "/" + hook}, {"POST", base + "/" + hook + "/ping"}, {"GET", base + "/" + hook + "/deliveries"},
			{"POST", base + "/" + hook + "/deliveries/" + delivery + "/redeliver"},
		}...)
	}
	return append(out, struct{ method, path string }{"POST", "/api/orgs/acme/events"})
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	b := setup(t)
	revoked, tok, err := server.IssueToken(t.Context(), b.Store, server.IssueTokenParams{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.TokenRevoke(t.Context(), tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, ep := range endpoints("h", "d") {
		for name, auth := range map[string]string{
			"missing":      "",
			"wrong scheme": "Bearer " + b.Tokens["acme"],
			"no token":     "token ",
			"unknown":      "token pwh_not-a-real-token",
			"revoked":      "token " + revoked,
		} {
			opts := []func(*reqOpts){withToken("")}
			if auth != "" {
				opts = append(opts, withHeader("Authorization", auth))
			}
			r := b.do("acme", ep.method, ep.path, "{}", opts...).want(http.StatusUnauthorized)
			if r.Header.Get("WWW-Authenticate") != "token" {
				t.Errorf("%s %s (%s): no WWW-Authenticate", ep.method, ep.path, name)
			}
			if strings.Contains(string(r.Body), b.Tokens["acme"]) || strings.Contains(string(r.Body), revoked) {
				t.Errorf("401 body echoes the token: %s", r.Body)
			}
		}
	}
	// The scheme is case-insensitive.
	b.do("acme", "GET", "/api/orgs/acme/hooks", nil, withToken(""), withHeader("Authorization", "Token "+b.Tokens["acme"])).want(http.StatusOK)
	// A used token records when; an unused one does not.
	ts, err := b.Store.TokenList(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if used := !tk.LastUsedAt.IsZero(); used != (tk.Org == "acme" && tk.RevokedAt.IsZero()) {
			t.Errorf("token %s of %s: last used %v", tk.ID, tk.Org, tk.LastUsedAt)
		}
	}
}

func TestCrossOrgIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	for _, sc := range scopes {
		body := hookBody("acme", rcv.URL())
		body["name"], body["secret"] = "h", "acme-secret"
		for k, v := range sc.extra {
			body[k] = v
		}
		b.do("acme", "POST", sc.base, body).want(http.StatusCreated)
	}
	var ping api.WebhookDelivery
	b.do("acme", "POST", "/api/orgs/acme/hooks/h/ping", nil).want(http.StatusOK).decode(&ping)
	before := len(rcv.Requests())

	// globex's token gets the same 404 for acme's existing objects as for missing ones.
	for _, ep := range endpoints("h", ping.ID) {
		var body any
		switch {
		case strings.HasSuffix(ep.path, "/events"):
			body = map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}
		case ep.method == "POST" && strings.HasSuffix(ep.path, "/hooks"):
			body = hookBody("acme", rcv.URL())
		case ep.method == "PATCH":
			body = map[string]any{"displayName": "pwned"}
		}
		existing := b.do("globex", ep.method, ep.path, body).want(http.StatusNotFound).apiError()
		missing := b.do("globex", ep.method, strings.Replace(ep.path, "/hooks/h", "/hooks/nope", 1), body).want(http.StatusNotFound).apiError()
		if strings.Contains(ep.path, "/hooks/h") && existing.Message != strings.Replace(missing.Message, "nope", "h", 1) {
			t.Errorf("%s %s: existing %q vs missing %q: the answers differ, which leaks existence", ep.method, ep.path, existing.Message, missing.Message)
		}
	}
	// Nothing changed, nothing was sent.
	for _, sc := range scopes {
		var h api.WebhookResponse
		b.do("acme", "GET", sc.base+"/h", nil).want(http.StatusOK).decode(&h)
		if h.DisplayName != "test hook" {
			t.Errorf("%s hook changed by globex: %+v", sc.name, h)
		}
	}
	var list []api.WebhookResponse
	b.do("globex", "GET", "/api/orgs/globex/hooks", nil).want(http.StatusOK).decode(&list)
	if len(list) != 0 {
		t.Errorf("globex sees %d hooks", len(list))
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(rcv.Requests()); n != before {
		t.Errorf("globex's requests made %d deliveries to acme's hooks", n-before)
	}
}
