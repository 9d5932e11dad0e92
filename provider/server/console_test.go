package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/console"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// The console, when mounted, serves every path the API does not, except under /api/.
func TestConsoleMount(t *testing.T) {
	t.Parallel()
	var b *testBundle
	b = setup(t, func(o *servertest.Opts) {
		o.Server = func(c *server.Config) {
			con, err := console.New(console.Config{Engine: c.Engine, Store: c.Store,
				Authenticate: func(ctx context.Context, tok string) (*store.Token, error) {
					return b.Server.AuthenticateToken(ctx, tok)
				},
				AuthenticateID: func(ctx context.Context, id string) (*store.Token, error) {
					return b.Server.AuthenticateTokenID(ctx, id)
				}})
			if err != nil {
				t.Fatal(err)
			}
			c.Console = con.Handler()
		}
	})
	resp, body := get(t, b.URL+"/-/signin")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "API token") {
		t.Errorf("/-/signin: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, p := range []string{"/api", "/api/", "/api/nothing", "/api/orgs/acme/nothing/else/here"} {
		resp, _ := get(t, b.URL+p)
		if resp.StatusCode == http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s with the console mounted: %d %s, want a JSON error", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp, body := get(t, b.URL+"/healthz"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
}

func TestConsoleNotMountedIsJSON404(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, _ := get(t, b.URL+"/-/signin")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/-/signin without a console: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestAuthenticateToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	tok, err := b.Server.AuthenticateToken(ctx, b.Tokens["acme"])
	if err != nil || tok.Org != "acme" {
		t.Fatalf("acme's token: %+v, %v", tok, err)
	}
	revoked, rec, err := server.IssueToken(ctx, b.Store, server.IssueTokenParams{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.TokenRevoke(ctx, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, plain := range map[string]string{"unknown": "pwh_unknown", "revoked": revoked, "empty": ""} {
		_, err := b.Server.AuthenticateToken(ctx, plain)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s token: %v, want store.ErrNotFound", name, err)
		}
		if plain != "" && err != nil && strings.Contains(err.Error(), plain) {
			t.Errorf("%s token: the error repeats the token", name)
		}
	}
}

func TestAuthenticateTokenID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	toks, err := b.Store.TokenList(ctx, "acme")
	if err != nil || len(toks) == 0 {
		t.Fatalf("acme's tokens: %d, %v", len(toks), err)
	}
	tok, err := b.Server.AuthenticateTokenID(ctx, toks[0].ID)
	if err != nil || tok.Org != "acme" || tok.ID != toks[0].ID {
		t.Fatalf("acme's token by ID: %+v, %v", tok, err)
	}
	_, rec, err := server.IssueToken(ctx, b.Store, server.IssueTokenParams{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.TokenRevoke(ctx, rec.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{"unknown": "tok_unknown", "revoked": rec.ID, "empty": ""} {
		if _, err := b.Server.AuthenticateTokenID(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s token ID: %v, want store.ErrNotFound", name, err)
		}
	}
}
