package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/client"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

type remoteBundle struct {
	srv      *servertest.Bundle
	remote   client.Client
	embedded client.Client
}

// setupRemote starts a real server and returns a remote client for org acme and an embedded
// client on the same engine, so one scenario can run through both.
func setupRemote(t *testing.T) *remoteBundle {
	t.Helper()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	remote, err := client.NewRemote(srv.URL+"/", srv.Tokens["acme"], nil)
	if err != nil {
		t.Fatalf("NewRemote: %v", err)
	}
	return &remoteBundle{srv: srv, remote: remote, embedded: client.NewEmbedded(srv.Engine)}
}

func specs(name string) []webhook.Spec {
	return []webhook.Spec{
		{Scope: webhook.Scope{Org: "acme"}, Name: name, DisplayName: "org hook", PayloadURL: "https://example.com/o", Active: true, Secret: "s1"},
		{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: name, DisplayName: "stack hook", PayloadURL: "https://example.com/s",
			Active: true, Filters: []webhook.Filter{webhook.UpdateSucceeded, webhook.UpdateFailed}, Format: webhook.FormatSlack},
		{Scope: webhook.Scope{Org: "acme", Project: "app", Environment: "dev"}, Name: name, DisplayName: "env hook", PayloadURL: "https://example.com/e",
			Groups: []webhook.Group{webhook.GroupEnvironments}},
		{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: name + "-d", DisplayName: "deploy", PayloadURL: "web/next",
			Active: true, Format: webhook.FormatPulumiDeployments},
	}
}

// comparable returns what both modes must agree on. The digests are not compared: each store
// keys them with its own key.
func comparable(h *store.Hook) store.Hook {
	return store.Hook{Spec: h.Spec, HasSecret: h.HasSecret}
}

func sameHook(t *testing.T, what string, remote, embedded *store.Hook) {
	t.Helper()
	r, e := comparable(remote), comparable(embedded)
	if len(r.Filters) == 0 {
		r.Filters = nil
	}
	if len(e.Filters) == 0 {
		e.Filters = nil
	}
	if len(r.Groups) == 0 {
		r.Groups = nil
	}
	if len(e.Groups) == 0 {
		e.Groups = nil
	}
	if r.Scope != e.Scope || r.Name != e.Name || r.DisplayName != e.DisplayName || r.PayloadURL != e.PayloadURL ||
		r.Active != e.Active || r.Format != e.Format || !slices.Equal(r.Filters, e.Filters) || !slices.Equal(r.Groups, e.Groups) ||
		r.HasSecret != e.HasSecret || r.Secret != "" {
		t.Errorf("%s: remote %+v\nembedded %+v", what, r, e)
	}
}

// TestRemoteMatchesEmbedded runs the same lifecycle through both clients and compares every
// answer.
func TestRemoteMatchesEmbedded(t *testing.T) {
	t.Parallel()
	b := setupRemote(t)
	ctx := t.Context()
	for i, spec := range specs("r") {
		espec := spec
		espec.Name = strings.Replace(spec.Name, "r", "e", 1)
		rh, err := b.remote.Create(ctx, spec)
		if err != nil {
			t.Fatalf("remote create %d: %v", i, err)
		}
		eh, err := b.embedded.Create(ctx, espec)
		if err != nil {
			t.Fatalf("embedded create %d: %v", i, err)
		}
		eh.Name = rh.Name // the only intended difference
		sameHook(t, "create", rh, eh)

		rref, eref := rh.Ref(), store.HookRef{Scope: espec.Scope, Name: espec.Name}
		rg, err := b.remote.Get(ctx, rref)
		if err != nil {
			t.Fatalf("remote get: %v", err)
		}
		sameHook(t, "get", rg, rh)

		upd := spec
		upd.DisplayName, upd.Active, upd.Filters, upd.Groups = "changed", !spec.Active, nil, nil
		if spec.Format != webhook.FormatPulumiDeployments {
			upd.Format = "" // the default format, not "keep": the slack hook becomes raw in both modes
		}
		for _, secret := range []*string{nil, ptr("new secret"), ptr("")} {
			ru, err := b.remote.Update(ctx, rref, upd, secret)
			if err != nil {
				t.Fatalf("remote update: %v", err)
			}
			eupd := upd
			eupd.Name = espec.Name
			eu, err := b.embedded.Update(ctx, eref, eupd, secret)
			if err != nil {
				t.Fatalf("embedded update: %v", err)
			}
			eu.Name = ru.Name
			sameHook(t, "update", ru, eu)
		}
		// An update with an empty scope and name means the ref's, as in embedded mode.
		bare := upd
		bare.Scope, bare.Name = webhook.Scope{}, ""
		if _, err := b.remote.Update(ctx, rref, bare, nil); err != nil {
			t.Errorf("remote update with a bare spec: %v", err)
		}

		if err := b.remote.Delete(ctx, rref); err != nil {
			t.Fatalf("remote delete: %v", err)
		}
		for _, c := range []client.Client{b.remote, b.embedded} {
			if _, err := c.Get(ctx, rref); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("get after delete: %v, want ErrNotFound", err)
			}
			if err := c.Delete(ctx, rref); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete after delete: %v, want ErrNotFound", err)
			}
			if _, err := c.Update(ctx, rref, upd, nil); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("update after delete: %v, want ErrNotFound", err)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	b := setupRemote(t)
	ctx := t.Context()
	spec := specs("dup")[0]
	if _, err := b.remote.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	_, err := b.remote.Create(ctx, spec)
	if !errors.Is(err, store.ErrAlreadyExists) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate: %v, want ErrAlreadyExists with the server's message", err)
	}

	for _, c := range []struct {
		name  string
		spec  webhook.Spec
		field string
	}{
		{"bad url", webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "x", PayloadURL: "nope", Active: true}, "payloadUrl"},
		{"unknown filter", webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "x", PayloadURL: "https://x", Filters: []webhook.Filter{"nope"}}, "filters[0]"},
		{"environment name with space", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "p", Environment: "a b"}, DisplayName: "x", PayloadURL: "https://x"}, "environmentName"},
		{"deployments on org", webhook.Spec{Scope: webhook.Scope{Org: "acme"}, DisplayName: "x", PayloadURL: "p/s", Format: webhook.FormatPulumiDeployments}, "format"},
	} {
		_, rerr := b.remote.Create(ctx, c.spec)
		_, eerr := b.embedded.Create(ctx, c.spec)
		for mode, err := range map[string]error{"remote": rerr, "embedded": eerr} {
			var fe webhook.FieldErrors
			if !errors.As(err, &fe) {
				t.Errorf("%s %s: %v is not FieldErrors", c.name, mode, err)
				continue
			}
			if !slices.ContainsFunc(fe, func(e webhook.FieldError) bool { return e.Field == c.field }) {
				t.Errorf("%s %s: %v does not name %s", c.name, mode, fe, c.field)
			}
		}
		if rerr != nil && !strings.Contains(rerr.Error(), c.field) {
			t.Errorf("%s: remote message %q does not name %s", c.name, rerr, c.field)
		}
	}

	// Another organization's hooks are invisible, and the client says why.
	other := specs("o")[1]
	other.Org = "globex"
	var foreign *client.ForeignOrgError
	if _, err := b.remote.Create(ctx, other); !errors.As(err, &foreign) || foreign.Org != "globex" || errors.Is(err, store.ErrNotFound) {
		t.Errorf("create in another org: %v, want a ForeignOrgError for globex", err)
	}

	bad, err := client.NewRemote(b.srv.URL, "pwh_wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Get(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "dup"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusUnauthorized || !strings.Contains(err.Error(), "accessToken") || strings.Contains(err.Error(), "pwh_wrong") {
		t.Errorf("wrong token: %v", err)
	}

	// A server that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gone, err := client.NewRemote("http://"+addr, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.Get(ctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "x"}); err == nil || !strings.Contains(err.Error(), "apiUrl") {
		t.Errorf("unreachable server: %v", err)
	}
	// A canceled context is reported, not retried forever.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.remote.Get(cctx, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "dup"}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestRemoteNonJSONError(t *testing.T) {
	t.Parallel()
	// A proxy in front of the server may answer with plain text; the client reports it.
	srv := servertest.NewReceiver(t)
	srv.SetStatus(http.StatusBadGateway)
	c, err := client.NewRemote(strings.TrimSuffix(srv.URL(), "/hook"), "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(t.Context(), store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "x"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadGateway || !strings.Contains(err.Error(), "ok") {
		t.Errorf("502: %v", err)
	}
	// A 2xx answer that is not the API's JSON is an error, not an empty hook.
	srv.SetStatus(http.StatusOK)
	if _, err := c.Get(t.Context(), store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "x"}); err == nil || !strings.Contains(err.Error(), "decode the answer") {
		t.Errorf("200 with a non-JSON body: %v", err)
	}
}

func TestNewRemoteValidation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, token, want string }{
		{"", "t", "pulumiservice:apiUrl is not set"},
		{"", "", "apiUrl is empty"},
		{"127.0.0.1:8080", "t", `apiUrl "127.0.0.1:8080"`},
		{"example.com", "t", "not an absolute"},
		{"ftp://example.com", "t", "not an absolute"},
		{"http://user:pw@example.com", "t", "credentials"},
		{"http://example.com/?x=1", "t", "query"},
		{"http://[::1", "t", "not a valid URL"},
		{"http://example.com", "", "pulumiservice:accessToken is not set"},
		{"http://example.com", "  ", "pulumiservice:accessToken is not set"},
	} {
		_, err := client.NewRemote(c.url, c.token, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRemote(%q, %q) = %v, want an error containing %q", c.url, c.token, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error echoes credentials: %v", err)
		}
	}
}

// TestRemoteForeignOrganization: with a token of another organization, every operation on a
// hook fails with a ForeignOrgError, never with store.ErrNotFound (which a refresh would take
// for a deletion), whether the hook exists or not, and the hook stays on the server.
func TestRemoteForeignOrganization(t *testing.T) {
	t.Parallel()
	b := setupRemote(t)
	ctx := t.Context()
	globex, err := client.NewRemote(b.srv.URL, b.srv.Tokens["globex"], nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, spec := range specs("f") {
		h, err := b.remote.Create(ctx, spec)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		missing := store.HookRef{Scope: h.Scope, Name: "never-created"}
		for _, ref := range []store.HookRef{h.Ref(), missing} {
			_, getErr := globex.Get(ctx, ref)
			_, updErr := globex.Update(ctx, ref, spec, ptr("other"))
			delErr := globex.Delete(ctx, ref)
			for op, err := range map[string]error{"get": getErr, "update": updErr, "delete": delErr} {
				var foreign *client.ForeignOrgError
				switch {
				case !errors.As(err, &foreign):
					t.Errorf("%s %s with a globex token: %v, want a ForeignOrgError", op, ref, err)
				case errors.Is(err, store.ErrNotFound):
					t.Errorf("%s %s with a globex token: %v wraps ErrNotFound: a refresh would drop the hook", op, ref, err)
				case foreign.Org != "acme":
					t.Errorf("%s %s: ForeignOrgError.Org = %q, want acme", op, ref, foreign.Org)
				}
				for _, want := range []string{`another organization than "acme"`, `organization "acme" not found`, "pulumi-webhooks token create --org acme"} {
					if err != nil && !strings.Contains(err.Error(), want) {
						t.Errorf("%s %s: %q does not say %q", op, ref, err, want)
					}
				}
				for org, tok := range b.srv.Tokens {
					if err != nil && strings.Contains(err.Error(), tok) {
						t.Errorf("%s %s: the error quotes %s's token", op, ref, org)
					}
				}
			}
			// The same answer for an existing and a missing hook: names do not leak.
			if getErr != nil && ref == missing {
				if _, existingErr := globex.Get(ctx, h.Ref()); existingErr.Error() != strings.Replace(getErr.Error(), "never-created", h.Name, 1) {
					t.Errorf("existing and missing hooks answer differently:\n%v\n%v", existingErr, getErr)
				}
			}
		}
		got, err := b.srv.Engine.HookGet(ctx, h.Ref())
		if err != nil {
			t.Fatalf("the hook is gone after the foreign token's calls: %v", err)
		}
		if got.DisplayName != spec.DisplayName || got.SecretDigest != h.SecretDigest {
			t.Errorf("the foreign token changed the hook: %+v", got)
		}
		spec.Org = "acme"
		spec.Name = "g" + spec.Name
		var foreign *client.ForeignOrgError
		if _, err := globex.Create(ctx, spec); !errors.As(err, &foreign) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("create in acme with a globex token: %v, want a ForeignOrgError", err)
		}
	}
	// The token's own organization: a missing hook is still store.ErrNotFound.
	ref := store.HookRef{Scope: webhook.Scope{Org: "globex"}, Name: "nope"}
	_, err = globex.Get(ctx, ref)
	var foreign *client.ForeignOrgError
	if !errors.Is(err, store.ErrNotFound) || errors.As(err, &foreign) {
		t.Errorf("missing hook of the token's own organization: %v, want ErrNotFound", err)
	}
	if err := globex.Delete(ctx, ref); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete of a missing hook of the token's own organization: %v, want ErrNotFound", err)
	}
}

// TestRemoteNotFoundUnconfirmed: when the organization check behind a 404 gets an answer that
// is neither the list nor the server's own 404 (here from a proxy in front of a real server),
// the client cannot tell a deleted hook from a hidden one, and says so without ErrNotFound.
func TestRemoteNotFoundUnconfirmed(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	ref := store.HookRef{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "gone"}
	for _, c := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"proxy error", http.StatusBadGateway, "upstream unavailable", "GET /api/orgs/acme/hooks answered 502 Bad Gateway: upstream unavailable"},
		{"plain-text 404", http.StatusNotFound, "no route", "GET /api/orgs/acme/hooks answered 404 Not Found: no route"},
		{"not the API's list", http.StatusOK, "<html>login</html>", "decode the answer to GET /api/orgs/acme/hooks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Path == "/api/orgs/acme/hooks" {
					w.WriteHeader(c.status)
					_, _ = w.Write([]byte(c.body))
					return
				}
				forward.ServeHTTP(w, r)
			}))
			t.Cleanup(proxy.Close)
			for org, tok := range srv.Tokens {
				rc, err := client.NewRemote(proxy.URL, tok, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, getErr := rc.Get(t.Context(), ref)
				for op, err := range map[string]error{"get": getErr, "delete": rc.Delete(t.Context(), ref)} {
					var foreign *client.ForeignOrgError
					switch {
					case err == nil || errors.Is(err, store.ErrNotFound) || errors.As(err, &foreign):
						t.Errorf("%s with %s's token: %v, want an error that is neither ErrNotFound nor ForeignOrgError", op, org, err)
					case !strings.Contains(err.Error(), "unknown whether the webhook is gone") || !strings.Contains(err.Error(), c.want):
						t.Errorf("%s with %s's token: %q does not explain the failed check (%q)", op, org, err, c.want)
					case strings.Contains(err.Error(), tok):
						t.Errorf("%s: the error quotes the token", op)
					}
				}
			}
		})
	}
	// Without the proxy the same request is a plain ErrNotFound.
	rc, err := client.NewRemote(srv.URL, srv.Tokens["acme"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Get(t.Context(), ref); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("direct: %v, want ErrNotFound", err)
	}
}
