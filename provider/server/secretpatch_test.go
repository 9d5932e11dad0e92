package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// TestPatchSecretSemantics checks the secret of a PATCH as Pulumi Cloud takes it: left out or
// "" keeps the secret (deliveries stay signed with it), "__remove-secret" removes it
// (deliveries go unsigned), anything else replaces it; and the sentinel cannot be a secret.
func TestPatchSecretSemantics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	body := hookBody("acme", rcv.URL())
	body["name"], body["secret"] = "signed", "first-secret"
	var h api.WebhookResponse
	b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusCreated).decode(&h)
	const path = "/api/orgs/acme/hooks/signed"
	n := 0
	fire := func() servertest.Request {
		t.Helper()
		b.do("acme", "POST", "/api/orgs/acme/events", map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod"}).
			want(http.StatusAccepted)
		n++
		return rcv.Wait(t, n)[n-1]
	}
	signedWith := func(what, secret string) {
		t.Helper()
		got := fire()
		if err := signature.Verify(secret, got.Header.Get(signature.HeaderSignature), got.Body); err != nil {
			t.Errorf("%s: delivery not signed with the expected secret: %v", what, err)
		}
	}

	for _, keep := range []map[string]any{{"displayName": "no secret field"}, {"secret": ""}} {
		var got api.WebhookResponse
		b.do("acme", "PATCH", path, keep).want(http.StatusOK).decode(&got)
		if !got.HasSecret || got.SecretCiphertext != h.SecretCiphertext {
			t.Errorf("PATCH %v: hasSecret %v, digest changed %v; want the secret kept", keep, got.HasSecret, got.SecretCiphertext != h.SecretCiphertext)
		}
		signedWith("after PATCH keeping the secret", "first-secret")
	}

	var got api.WebhookResponse
	b.do("acme", "PATCH", path, map[string]any{"secret": "second-secret"}).want(http.StatusOK).decode(&got)
	if !got.HasSecret || got.SecretCiphertext == h.SecretCiphertext {
		t.Errorf("PATCH with a new secret: %+v", got)
	}
	signedWith("after replacing the secret", "second-secret")

	b.do("acme", "PATCH", path, map[string]any{"secret": "__remove-secret"}).want(http.StatusOK).decode(&got)
	if got.HasSecret || got.SecretCiphertext != "" {
		t.Errorf("PATCH __remove-secret: %+v, want no secret", got)
	}
	if d := fire(); d.Header.Get(signature.HeaderSignature) != "" {
		t.Errorf("delivery after removing the secret is signed: %q", d.Header.Get(signature.HeaderSignature))
	}
	// Removing a secret that is not there is no error; it stays removed.
	b.do("acme", "PATCH", path, map[string]any{"secret": "__remove-secret"}).want(http.StatusOK).decode(&got)
	if got.HasSecret {
		t.Errorf("second __remove-secret: %+v", got)
	}

	// The sentinel cannot become a secret, on create; and a too long secret is refused on
	// PATCH as on create, naming the field and never quoting the secret.
	bad := hookBody("acme", rcv.URL())
	bad["secret"] = "__remove-secret"
	e := b.do("acme", "POST", "/api/orgs/acme/hooks", bad).want(http.StatusBadRequest).apiError()
	mustContain(t, "create with the sentinel", e.Message, "secret", "removes a secret in an update")
	long := strings.Repeat("k", 1025)
	e = b.do("acme", "PATCH", path, map[string]any{"secret": long}).want(http.StatusBadRequest).apiError()
	mustContain(t, "PATCH with a long secret", e.Message, "secret", "1025 bytes long")
	if strings.Contains(e.Message, long[:64]) {
		t.Error("the error quotes the secret")
	}
	b.do("acme", "GET", path, nil).want(http.StatusOK).decode(&got)
	if got.HasSecret {
		t.Errorf("a refused PATCH changed the hook: %+v", got)
	}
}
