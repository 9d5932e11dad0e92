package console_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/console"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

// at returns b with requests sent to the server at url (another console on b's store).
func (b *testBundle) at(url string) *testBundle {
	bundle := *b.Bundle
	bundle.URL = url
	o := *b
	o.Bundle = &bundle
	return &o
}

// wantSignin checks that r sends the browser to the sign-in form.
func wantSignin(t *testing.T, what string, r resp) {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/-/signin") {
		t.Fatalf("%s: %d to %q, want a redirect to the sign-in form", what, r.StatusCode, r.Header.Get("Location"))
	}
}

// TestSessionsAcrossServers: two servers on one store, as behind a load balancer. A session
// started through A works through B (same CSRF token); signing out through B ends it on A.
func TestSessionsAcrossServers(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := setup(t, setupOpts{sameStore: a})
	s := a.signIn(t, "acme")
	page := b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, page, http.StatusOK)
	wantBody(t, page, "Webhooks of acme", "Sign out")
	if got := csrfOf(t, page); got != s.csrf {
		t.Errorf("server B's forms carry CSRF token %q, server A's %q: a form from one would fail on the other", got, s.csrf)
	}
	out := b.do(t, req{method: http.MethodPost, path: "/-/signout", cookie: []*http.Cookie{s.cookie}, form: url.Values{"csrf": {s.csrf}}})
	wantSignin(t, "sign-out through B", out)
	if gone := out.cookie(console.SessionCookie); gone == nil || gone.MaxAge >= 0 {
		t.Errorf("sign-out did not expire the session cookie: %+v", gone)
	}
	wantSignin(t, "the signed-out cookie on A", a.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}))
	wantSignin(t, "the signed-out cookie on B", b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}))
}

// TestSessionSurvivesRestart: a new Console on the same store (the server restarted) accepts
// the cookie of a session started before.
func TestSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	a := setup(t)
	s := a.signIn(t, "acme")
	con, err := console.New(console.Config{Engine: a.Engine, Store: a.Store,
		Authenticate: a.Server.AuthenticateToken, AuthenticateID: a.Server.AuthenticateTokenID})
	if err != nil {
		t.Fatal(err)
	}
	restarted := httptest.NewServer(con.Handler())
	t.Cleanup(restarted.Close)
	page := a.at(restarted.URL).do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, page, http.StatusOK)
	if got := csrfOf(t, page); got != s.csrf {
		t.Errorf("the restarted console's CSRF token %q, before %q", got, s.csrf)
	}
}

// TestSessionStoredAsHashOnly: the store file holds the hash of the session ID and the token's
// ID, never the cookie's value nor the API token.
func TestSessionStoredAsHashOnly(t *testing.T) {
	t.Parallel()
	a := setup(t)
	s := a.signIn(t, "acme")
	var stored []byte
	for _, f := range []string{a.StorePath, a.StorePath + "-wal"} {
		data, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		stored = append(stored, data...)
	}
	if !bytes.Contains(stored, []byte(store.HashSessionID(s.cookie.Value))) {
		t.Fatal("the session's hash is not in the store file: the test reads the wrong file")
	}
	if bytes.Contains(stored, []byte(s.cookie.Value)) {
		t.Error("the store file holds the session cookie's value")
	}
	if bytes.Contains(stored, []byte(a.Tokens["acme"])) {
		t.Error("the store file holds the API token")
	}
	if len(s.cookie.Value) < 40 || s.csrf == s.cookie.Value || len(s.csrf) < 40 {
		t.Errorf("weak session ID or CSRF token: %d and %d characters", len(s.cookie.Value), len(s.csrf))
	}
}

// TestSessionsPerToken: a sign-in beyond the token's cap ends its oldest session.
func TestSessionsPerToken(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{console: func(c *console.Config) { c.SessionsPerToken = 2 }})
	first, second, third := b.signIn(t, "acme"), b.signIn(t, "acme"), b.signIn(t, "acme")
	wantSignin(t, "the oldest of three sessions under a cap of 2", b.do(t, req{path: "/acme", cookie: []*http.Cookie{first.cookie}}))
	for _, s := range []signedIn{second, third} {
		wantStatus(t, b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}), http.StatusOK)
	}
	// Another token's sessions do not count.
	wantStatus(t, b.do(t, req{path: "/globex", cookie: []*http.Cookie{b.signIn(t, "globex").cookie}}), http.StatusOK)
	wantStatus(t, b.do(t, req{path: "/acme", cookie: []*http.Cookie{second.cookie}}), http.StatusOK)
}

// TestSessionStoreFails: when the store cannot keep or read sessions, sign-in and pages
// answer 500, and the log says what failed without the cookie or the token.
func TestSessionStoreFails(t *testing.T) {
	t.Parallel()
	a := setup(t)
	s := a.signIn(t, "acme")
	broken, err := sqlite.Open(context.Background(), sqlite.Config{Path: a.StorePath})
	if err != nil {
		t.Fatal(err)
	}
	if err := broken.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	con, err := console.New(console.Config{Engine: a.Engine, Store: broken, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Authenticate: a.Server.AuthenticateToken, AuthenticateID: a.Server.AuthenticateTokenID})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(srv.Close)
	b := a.at(srv.URL)

	form := b.do(t, req{path: "/-/signin"})
	wantStatus(t, form, http.StatusOK)
	in := b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: []*http.Cookie{form.cookie(console.SigninCookie)},
		form: url.Values{"csrf": {csrfOf(t, form)}, "token": {a.Tokens["acme"]}}})
	wantStatus(t, in, http.StatusInternalServerError)
	if in.cookie(console.SessionCookie) != nil {
		t.Error("a failed sign-in set a session cookie")
	}
	page := b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, page, http.StatusInternalServerError)
	log := logs.String()
	for _, want := range []string{"start the session", "read the session"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, s.cookie.Value) || strings.Contains(log, a.Tokens["acme"]) || strings.Contains(log, store.HashSessionID(s.cookie.Value)) {
		t.Errorf("the log holds a secret:\n%s", log)
	}
}
