package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// A `pulumi up` with more webhooks than the token's burst still succeeds: the remote client
// waits out each 429's Retry-After and sends the request again.
func TestRemoteWaitsOutRateLimit(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true, Server: func(c *server.Config) { c.RateLimit, c.RateBurst = 4, 2 }})
	remote, err := client.NewRemote(srv.URL, srv.Tokens["acme"], nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		spec := webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: fmt.Sprintf("h%d", i), DisplayName: "d", PayloadURL: "https://example.com/", Active: true}
		if _, err := remote.Create(t.Context(), spec); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	hooks, err := srv.Engine.HookList(t.Context(), store.HookListParams{Scope: webhook.Scope{Org: "acme"}})
	if err != nil || len(hooks) != 6 {
		t.Errorf("hooks stored: %d, %v", len(hooks), err)
	}
}

// When the limit does not lift in time, the caller gets the 429, not a hang.
func TestRemoteGivesUpOnRateLimit(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true, Server: func(c *server.Config) { c.RateLimit, c.RateBurst = 0.001, 1 }})
	remote, err := client.NewRemote(srv.URL, srv.Tokens["acme"], nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "nope"}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	// The first request uses the burst; the 404's check of the organization is refused.
	start := time.Now()
	_, err = remote.Get(ctx, ref)
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Errorf("Get past the limit: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Get took %s after its context ended", d)
	}
}
