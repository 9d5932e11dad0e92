package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// BenchmarkListingPages measures the paged listings over HTTP against their unpaged
// baselines in the same run: the hooks of a scope holding benchHooks hooks (every hook at once,
// the first page of 100, and every page of 100 followed by token), and a delivery log of
// benchAttempts attempts (a page of 100 by ?before=, which is the older cursor, and by token;
// both ask the store once more whether an older page exists). Run it with
//
//	go test ./provider/server -run '^$' -bench ListingPages
func BenchmarkListingPages(b *testing.B) {
	const benchHooks, benchAttempts = 1000, 300
	bundle := servertest.Start(b, servertest.Opts{})
	rcv := servertest.NewReceiver(b)
	ctx := context.Background()
	scope := webhook.Scope{Org: "acme"}
	for i := range benchHooks {
		spec := webhook.Spec{Scope: scope, Name: fmt.Sprintf("h%04d", i), DisplayName: "bench", PayloadURL: rcv.URL(), Active: false}
		if _, err := bundle.Engine.HookCreate(ctx, spec); err != nil {
			b.Fatal(err)
		}
	}
	ref := store.HookRef{Scope: scope, Name: "h0000"}
	for range benchAttempts {
		if _, err := bundle.Engine.Ping(ctx, ref); err != nil {
			b.Fatal(err)
		}
	}
	get := func(path string) http.Header {
		req, err := http.NewRequest(http.MethodGet, bundle.URL+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "token "+bundle.Tokens["acme"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return resp.Header
	}
	hooks := api.HooksPath(scope)
	log := api.HookPath(ref) + "/deliveries"
	second := get(log + "?limit=100")
	before, token := second.Get(api.HeaderNextBefore), second.Get(api.HeaderContinuationToken)
	b.Run("hooks/all", func(b *testing.B) {
		for b.Loop() {
			get(hooks)
		}
	})
	b.Run("hooks/first-page-100", func(b *testing.B) {
		for b.Loop() {
			get(hooks + "?limit=100")
		}
	})
	b.Run("hooks/every-page-100", func(b *testing.B) {
		for b.Loop() {
			pages := 0
			for next := hooks + "?limit=100"; next != ""; pages++ {
				h := get(next)
				next = ""
				if t := h.Get(api.HeaderContinuationToken); t != "" {
					next = hooks + "?continuationToken=" + t
				}
			}
			if pages != benchHooks/100 {
				b.Fatalf("%d pages, want %d", pages, benchHooks/100)
			}
		}
	})
	b.Run("deliveries/page-100-by-before", func(b *testing.B) {
		for b.Loop() {
			get(log + "?limit=100&before=" + before)
		}
	})
	b.Run("deliveries/page-100-by-token", func(b *testing.B) {
		for b.Loop() {
			get(log + "?continuationToken=" + token)
		}
	})
}
