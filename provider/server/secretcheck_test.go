package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

func TestSecretCheck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := hookBody("acme", "https://example.com/x")
	body["name"], body["secret"] = "h", "the-secret"
	b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusCreated)
	plain := hookBody("acme", "https://example.com/y")
	plain["name"] = "plain"
	delete(plain, "secret")
	b.do("acme", "POST", "/api/orgs/acme/hooks", plain).want(http.StatusCreated)
	for _, tc := range []struct {
		path, secret string
		want         bool
	}{
		{"/api/orgs/acme/hooks/h/secret/check", "the-secret", true},
		{"/api/orgs/acme/hooks/h/secret/check", "a-guess", false},
		{"/api/orgs/acme/hooks/h/secret/check", "", false},
		{"/api/orgs/acme/hooks/plain/secret/check", "", true},
		{"/api/orgs/acme/hooks/plain/secret/check", "x", false},
	} {
		r := b.do("acme", "POST", tc.path, api.SecretCheckRequest{Secret: tc.secret}).want(http.StatusOK)
		var got api.SecretCheckResponse
		r.decode(&got)
		if got.Matches != tc.want {
			t.Errorf("check %s with %q = %v, want %v", tc.path, tc.secret, got.Matches, tc.want)
		}
		if strings.Contains(string(r.Body), "the-secret") {
			t.Error("the answer quotes the secret")
		}
	}
	e := b.do("acme", "POST", "/api/orgs/acme/hooks/missing/secret/check", api.SecretCheckRequest{Secret: "x"}).want(http.StatusNotFound).apiError()
	mustContain(t, "404 message", e.Message, "missing")
	b.do("acme", "GET", "/api/orgs/acme/hooks/h/secret/check", nil).want(http.StatusMethodNotAllowed)
	b.do("acme", "POST", "/api/orgs/acme/hooks/h/secret/check", "not an object").want(http.StatusBadRequest)
	// Another organization's token learns nothing.
	b.do("globex", "POST", "/api/orgs/acme/hooks/h/secret/check", api.SecretCheckRequest{Secret: "the-secret"}).want(http.StatusNotFound)
}
