package client_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestRemoteUpdateSecretOnTheWire checks what the remote client sends for each secret update:
// no "secret" to keep it, "__remove-secret" to remove it (an empty secret keeps it, as in
// Pulumi Cloud), the secret to replace it; and that the server does what was asked.
func TestRemoteUpdateSecretOnTheWire(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	var (
		mu      sync.Mutex
		patches []map[string]any
	)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPatch {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("PATCH body is not JSON: %v", err)
			}
			mu.Lock()
			patches = append(patches, m)
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.Server.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(rec.Close)
	c, err := client.NewRemote(rec.URL, srv.Tokens["acme"], nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	spec := webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h", PayloadURL: "https://example.com/h", Active: true, Secret: "first"}
	h, err := c.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Secret = ""
	for i, tc := range []struct {
		secret    *string
		wire      any // nil: no "secret" key
		hasSecret bool
	}{
		{nil, nil, true},
		{ptr("second"), "second", true},
		{ptr(""), "__remove-secret", false},
		{nil, nil, false},
	} {
		got, err := c.Update(ctx, h.Ref(), spec, tc.secret)
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		mu.Lock()
		sent := patches[len(patches)-1]
		mu.Unlock()
		if v, ok := sent["secret"]; (tc.wire == nil && ok) || (tc.wire != nil && v != tc.wire) {
			t.Errorf("update %d sent secret %v (present %v), want %v", i, v, ok, tc.wire)
		}
		if got.HasSecret != tc.hasSecret {
			t.Errorf("update %d: hasSecret %v, want %v", i, got.HasSecret, tc.hasSecret)
		}
	}
}
