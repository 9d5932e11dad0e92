package console_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/console"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// testBundle is a real server with the console mounted, over a SQLite store, with delivery
// workers and a receiver on 127.0.0.1.
type testBundle struct {
	*servertest.Bundle
	recv *servertest.Receiver
	// client does not follow redirects, so tests see them.
	client *http.Client
	// console is the console's handler alone.
	console http.Handler
}

type setupOpts struct {
	console func(*console.Config)
	// sameStore, when set, runs this server on other's store file, as a second server behind
	// a load balancer would (with other's tokens).
	sameStore *testBundle
}

func setup(t *testing.T, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	tb := &testBundle{recv: servertest.NewReceiver(t),
		client: &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var so servertest.Opts
	if o.sameStore != nil {
		so.StorePath = o.sameStore.StorePath
	}
	so.Server = func(c *server.Config) {
		cfg := console.Config{Engine: c.Engine, Store: c.Store,
			// The server exists once Start returns, before any request.
			Authenticate: func(ctx context.Context, token string) (*store.Token, error) {
				return tb.Server.AuthenticateToken(ctx, token)
			},
			AuthenticateID: func(ctx context.Context, id string) (*store.Token, error) {
				return tb.Server.AuthenticateTokenID(ctx, id)
			}}
		if o.console != nil {
			o.console(&cfg)
		}
		con, err := console.New(cfg)
		if err != nil {
			t.Fatalf("console: %v", err)
		}
		tb.console = con.Handler()
		c.Console = tb.console
	}
	tb.Bundle = servertest.Start(t, so)
	if o.sameStore != nil {
		maps.Copy(tb.Tokens, o.sameStore.Tokens)
	}
	return tb
}

// req describes one request to the console.
type req struct {
	method string
	path   string
	token  string // sent as Authorization: token <token>
	auth   string // a raw Authorization header, instead of token
	form   url.Values
	cookie []*http.Cookie
}

type resp struct {
	*http.Response
	body string
}

func (b *testBundle) do(t *testing.T, r req) resp {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	hr, err := http.NewRequest(r.method, b.URL+r.path, body)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	switch {
	case r.auth != "":
		hr.Header.Set("Authorization", r.auth)
	case r.token != "":
		hr.Header.Set("Authorization", "token "+r.token)
	}
	for _, c := range r.cookie {
		hr.AddCookie(c)
	}
	res, err := b.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", r.method, r.path, err)
	}
	return resp{Response: res, body: string(data)}
}

func (r resp) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func wantStatus(t *testing.T, r resp, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, code, r.body)
	}
}

func wantBody(t *testing.T, r resp, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Errorf("%s %s: body lacks %q; body:\n%s", r.Request.Method, r.Request.URL.Path, p, r.body)
		}
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func csrfOf(t *testing.T, r resp) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil || m[1] == "" {
		t.Fatalf("no CSRF token in the page:\n%s", r.body)
	}
	return m[1]
}

// signedIn is a browser session: its cookie and the CSRF token of its forms.
type signedIn struct {
	cookie *http.Cookie
	csrf   string
}

// signIn goes through the sign-in form with org's token.
func (b *testBundle) signIn(t *testing.T, org string) signedIn {
	t.Helper()
	form := b.do(t, req{path: "/-/signin"})
	wantStatus(t, form, http.StatusOK)
	ck := form.cookie(console.SigninCookie)
	if ck == nil {
		t.Fatalf("the sign-in form set no %s cookie", console.SigninCookie)
	}
	res := b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: []*http.Cookie{ck},
		form: url.Values{"csrf": {csrfOf(t, form)}, "token": {b.Tokens[org]}}})
	wantStatus(t, res, http.StatusSeeOther)
	sc := res.cookie(console.SessionCookie)
	if sc == nil {
		t.Fatalf("sign-in set no %s cookie", console.SessionCookie)
	}
	page := b.do(t, req{path: "/" + org, cookie: []*http.Cookie{sc}})
	wantStatus(t, page, http.StatusOK)
	return signedIn{cookie: sc, csrf: csrfOf(t, page)}
}

// createHook creates an organization hook through the API and returns its name.
func (b *testBundle) createHook(t *testing.T, org, name, body string) {
	t.Helper()
	hr, err := http.NewRequest(http.MethodPost, b.URL+"/api/orgs/"+org+"/hooks", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "token "+b.Tokens[org])
	hr.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		data, _ := io.ReadAll(res.Body)
		t.Fatalf("create hook %s: %d %s", name, res.StatusCode, data)
	}
}

// emit fires an event through the API.
func (b *testBundle) emit(t *testing.T, org, body string) {
	t.Helper()
	hr, err := http.NewRequest(http.MethodPost, b.URL+"/api/orgs/"+org+"/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "token "+b.Tokens[org])
	hr.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		data, _ := io.ReadAll(res.Body)
		t.Fatalf("emit: %d %s", res.StatusCode, data)
	}
}

// waitAttempts waits until the hook has n recorded attempts: a receiver sees a request before
// the engine records its attempt.
func (b *testBundle) waitAttempts(t *testing.T, ref store.HookRef, n int) {
	t.Helper()
	waitfor.Condition(t, fmt.Sprintf("%d attempts of %s", n, ref), func() bool {
		as, err := b.Engine.DeliveryLog(context.Background(), ref, engine.DeliveryLogParams{})
		return err == nil && len(as) >= n
	})
}
