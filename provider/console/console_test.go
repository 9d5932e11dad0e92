package console_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/console"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func hookBody(org, name, url, extra string) string {
	return fmt.Sprintf(`{"organizationName":%q,"name":%q,"displayName":"Hook %s","payloadUrl":%q,"active":true%s}`, org, name, name, url, extra)
}

func TestSignInCookieFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	form := b.do(t, req{path: "/-/signin"})
	wantStatus(t, form, http.StatusOK)
	ck := form.cookie(console.SigninCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("sign-in cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	res := b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: []*http.Cookie{ck},
		form: url.Values{"csrf": {csrfOf(t, form)}, "token": {b.Tokens["acme"]}}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/acme" {
		t.Errorf("sign-in went to %q, want /acme", loc)
	}
	sc := res.cookie(console.SessionCookie)
	switch {
	case sc == nil:
		t.Fatal("no session cookie")
	case !sc.HttpOnly, sc.SameSite != http.SameSiteStrictMode, sc.Path != "/", sc.MaxAge <= 0:
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, a Max-Age", sc)
	case sc.Secure:
		t.Errorf("session cookie is Secure over plain HTTP: browsers would drop it")
	case strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), ";"), b.Tokens["acme"]):
		t.Errorf("the session cookie carries the API token")
	}
	if gone := res.cookie(console.SigninCookie); gone == nil || gone.MaxAge >= 0 {
		t.Errorf("sign-in did not expire the sign-in cookie: %+v", gone)
	}
	page := b.do(t, req{path: "/acme", cookie: []*http.Cookie{sc}})
	wantStatus(t, page, http.StatusOK)
	wantBody(t, page, "Webhooks of acme", "Sign out")
	if strings.Contains(page.body, b.Tokens["acme"]) {
		t.Error("a page shows the API token")
	}

	// Signing out ends the session on the server, not only in the browser.
	out := b.do(t, req{method: http.MethodPost, path: "/-/signout", cookie: []*http.Cookie{sc}, form: url.Values{"csrf": {csrfOf(t, page)}}})
	wantStatus(t, out, http.StatusSeeOther)
	again := b.do(t, req{path: "/acme", cookie: []*http.Cookie{sc}})
	wantStatus(t, again, http.StatusSeeOther)
	if loc := again.Header.Get("Location"); !strings.HasPrefix(loc, "/-/signin") {
		t.Errorf("after sign-out /acme went to %q, want the sign-in form", loc)
	}
}

func TestSignInSecureOverTLS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := httptest.NewRequest(http.MethodGet, "https://console.test/-/signin", nil)
	r.TLS = &tls.ConnectionState{}
	w := httptest.NewRecorder()
	b.console.ServeHTTP(w, r)
	sc := w.Result().Cookies()
	if len(sc) != 1 || !sc[0].Secure || !sc[0].HttpOnly {
		t.Fatalf("sign-in cookie over TLS %+v: want Secure and HttpOnly", sc)
	}
}

func TestSignInErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	form := b.do(t, req{path: "/-/signin?next=" + url.QueryEscape("//evil.example/x")})
	ck := form.cookie(console.SigninCookie)
	csrf := csrfOf(t, form)
	for _, tc := range []struct {
		name   string
		cookie []*http.Cookie
		form   url.Values
		code   int
		want   string
	}{
		{"no CSRF field", []*http.Cookie{ck}, url.Values{"token": {b.Tokens["acme"]}}, http.StatusForbidden, "security token"},
		{"no CSRF cookie", nil, url.Values{"csrf": {csrf}, "token": {b.Tokens["acme"]}}, http.StatusForbidden, "security token"},
		{"wrong CSRF", []*http.Cookie{ck}, url.Values{"csrf": {csrf + "x"}, "token": {b.Tokens["acme"]}}, http.StatusForbidden, "security token"},
		{"empty token", []*http.Cookie{ck}, url.Values{"csrf": {csrf}, "token": {" "}}, http.StatusBadRequest, "token: is required"},
		{"unknown token", []*http.Cookie{ck}, url.Values{"csrf": {csrf}, "token": {"pwh_nope"}}, http.StatusUnauthorized, "token: invalid or revoked API token"},
	} {
		res := b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: tc.cookie, form: tc.form})
		if res.StatusCode != tc.code || !strings.Contains(res.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q; body:\n%s", tc.name, res.StatusCode, tc.code, tc.want, res.body)
		}
		if res.cookie(console.SessionCookie) != nil {
			t.Errorf("%s: a session cookie was set", tc.name)
		}
	}
	// A next= elsewhere is ignored: sign-in only ever sends people to this site.
	res := b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: []*http.Cookie{ck},
		form: url.Values{"csrf": {csrf}, "token": {b.Tokens["acme"]}, "next": {"//evil.example/x"}}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/acme" {
		t.Errorf("next=//evil.example went to %q, want /acme", loc)
	}
	res = b.do(t, req{method: http.MethodPost, path: "/-/signin", cookie: []*http.Cookie{ck},
		form: url.Values{"csrf": {csrf}, "token": {b.Tokens["acme"]}, "next": {"/-/orgs/acme/new-hook"}}})
	if loc := res.Header.Get("Location"); loc != "/-/orgs/acme/new-hook" {
		t.Errorf("next=/-/orgs/acme/new-hook went to %q", loc)
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A person without a session is sent to the form, and back afterwards.
	res := b.do(t, req{path: "/acme"})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/-/signin?next=%2Facme" {
		t.Errorf("anonymous /acme went to %q", loc)
	}
	res = b.do(t, req{path: "/"})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/-/signin" {
		t.Errorf("anonymous / : %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = b.do(t, req{path: "/", token: b.Tokens["globex"]})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/globex" {
		t.Errorf("/ with globex's token: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	for _, tc := range []struct {
		name string
		r    req
		want string
	}{
		{"POST without credentials", req{method: http.MethodPost, path: "/-/orgs/acme/hooks/x/ping", form: url.Values{}}, "not signed in"},
		{"Bearer scheme", req{path: "/acme", auth: "Bearer " + b.Tokens["acme"]}, "not of the form"},
		{"empty token", req{path: "/acme", auth: "token "}, "not of the form"},
		{"unknown token", req{path: "/acme", token: "pwh_unknown"}, "invalid or revoked API token"},
		{"unknown session", req{path: "/-/orgs/acme/hooks/x/ping", cookie: []*http.Cookie{{Name: console.SessionCookie, Value: "forged"}}, method: http.MethodPost, form: url.Values{}}, "session has ended"},
	} {
		res := b.do(t, tc.r)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.body, tc.want) {
			t.Errorf("%s: %d, want 401 with %q; body:\n%s", tc.name, res.StatusCode, tc.want, res.body)
		}
		if tc.r.cookie == nil && res.Header.Get("WWW-Authenticate") != "token" {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, res.Header.Get("WWW-Authenticate"))
		}
	}
	// The API keeps answering JSON under /api/, console or not.
	res = b.do(t, req{path: "/api/nothing", token: b.Tokens["acme"]})
	if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/api/nothing: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestRevokedTokenEndsSession: revoking the token ends its sessions on every server on the
// store at once, and the session is deleted from the store.
func TestRevokedTokenEndsSession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := setup(t, setupOpts{sameStore: b})
	s := b.signIn(t, "acme")
	wantStatus(t, other.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}), http.StatusOK)
	toks, err := b.Store.TokenList(context.Background(), "acme")
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	if err := b.Store.TokenRevoke(context.Background(), toks[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	res := b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, res, http.StatusSeeOther)
	if !strings.HasPrefix(res.Header.Get("Location"), "/-/signin") {
		t.Errorf("revoked token's session went to %q", res.Header.Get("Location"))
	}
	wantSignin(t, "the revoked token's session on the other server", other.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}))
	_, err = b.Store.SessionGet(context.Background(), store.SessionGetParams{IDHash: store.HashSessionID(s.cookie.Value), Now: time.Now()})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked token's session is still stored: %v", err)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	b := setup(t, setupOpts{console: func(c *console.Config) {
		c.SessionTTL = time.Hour
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	}})
	s := b.signIn(t, "acme")
	now.Add(int64(59 * time.Minute))
	wantStatus(t, b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}), http.StatusOK)
	now.Add(int64(2 * time.Minute))
	wantStatus(t, b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}}), http.StatusSeeOther)
}

func TestCSRFRequiredOnEveryForm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createHook(t, "acme", "build", hookBody("acme", "build", b.recv.URL(), ""))
	s := b.signIn(t, "acme")
	other := b.signIn(t, "acme")
	h := "/-/orgs/acme/hooks/build"
	forms := []struct {
		path string
		form url.Values
	}{
		{h + "/ping", url.Values{}},
		{h + "/active", url.Values{"active": {"false"}}},
		{h + "/edit", url.Values{"displayName": {"x"}, "payloadUrl": {b.recv.URL()}, "format": {"raw"}}},
		{h + "/delete", url.Values{}},
		{h + "/deliveries/d/redeliver", url.Values{}},
		{"/-/orgs/acme/new-hook", url.Values{"displayName": {"x"}, "payloadUrl": {b.recv.URL()}, "format": {"raw"}}},
		{"/-/signout", url.Values{}},
	}
	for _, f := range forms {
		for name, csrf := range map[string]string{"none": "", "another session's": other.csrf, "forged": "abc"} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if csrf != "" {
				form.Set("csrf", csrf)
			}
			res := b.do(t, req{method: http.MethodPost, path: f.path, cookie: []*http.Cookie{s.cookie}, form: form})
			if res.StatusCode != http.StatusForbidden || !strings.Contains(res.body, "security token") {
				t.Errorf("POST %s with %s CSRF token: %d, want 403; body:\n%s", f.path, name, res.StatusCode, res.body)
			}
		}
	}
	// Nothing happened: the hook is still there, active, never pinged.
	h2, err := b.Engine.HookGet(context.Background(), store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "build"})
	if err != nil || !h2.Active || h2.DisplayName != "Hook build" {
		t.Fatalf("after refused forms the hook is %+v, %v", h2, err)
	}
	if n := len(b.recv.Requests()); n != 0 {
		t.Errorf("refused forms sent %d requests", n)
	}
	// With the token the same form works; a script with the header needs none.
	res := b.do(t, req{method: http.MethodPost, path: h + "/ping", cookie: []*http.Cookie{s.cookie}, form: url.Values{"csrf": {s.csrf}}})
	wantStatus(t, res, http.StatusSeeOther)
	res = b.do(t, req{method: http.MethodPost, path: h + "/ping", token: b.Tokens["acme"], form: url.Values{}})
	wantStatus(t, res, http.StatusSeeOther)
	b.recv.Wait(t, 2)
}

func TestOtherOrganizationSeesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createHook(t, "acme", "build", hookBody("acme", "build", b.recv.URL(), `,"secret":"acme-secret-1"`))
	b.emit(t, "acme", `{"filter":"stack_created","projectName":"web","stackName":"prod"}`)
	b.waitAttempts(t, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "build"}, 1)
	acme := b.do(t, req{path: "/acme", token: b.Tokens["acme"]})
	wantStatus(t, acme, http.StatusOK)
	ev := regexp.MustCompile(`/-/orgs/acme/events/([^"]+)`).FindStringSubmatch(acme.body)
	if ev == nil {
		t.Fatalf("no event on acme's page:\n%s", acme.body)
	}
	g := b.Tokens["globex"]
	for _, r := range []req{
		{path: "/acme"}, {path: "/acme/web/prod"}, {path: "/acme/esc/p/e"},
		{path: "/-/orgs/acme/hooks/build"}, {path: "/-/orgs/acme/hooks/build/edit"},
		{path: "/-/orgs/acme/new-hook"}, {path: "/-/orgs/acme/events/" + ev[1]},
		{path: "/-/orgs/globex/events/" + ev[1]},
		{path: "/-/orgs/globex/hooks/build"},
		{method: http.MethodPost, path: "/-/orgs/acme/hooks/build/ping", form: url.Values{}},
		{method: http.MethodPost, path: "/-/orgs/acme/hooks/build/delete", form: url.Values{}},
		{method: http.MethodPost, path: "/-/orgs/acme/new-hook", form: url.Values{"displayName": {"x"}, "payloadUrl": {b.recv.URL()}}},
	} {
		r.token = g
		res := b.do(t, r)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("globex %s %s: %d, want 404; body:\n%s", r.method, r.path, res.StatusCode, res.body)
		}
		if strings.Contains(res.body, "Hook build") || strings.Contains(res.body, b.recv.URL()) {
			t.Errorf("globex %s %s shows acme's hook", r.method, r.path)
		}
	}
	own := b.do(t, req{path: "/globex", token: g})
	wantStatus(t, own, http.StatusOK)
	if strings.Contains(own.body, "Hook build") || strings.Contains(own.body, ev[1]) {
		t.Errorf("globex's page shows acme's hook or event:\n%s", own.body)
	}
	if len(b.recv.Requests()) != 1 {
		t.Errorf("globex's requests reached acme's receiver")
	}
}

func TestCreateFormValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	post := func(f url.Values) resp {
		return b.do(t, req{method: http.MethodPost, path: "/-/orgs/acme/new-hook", token: tok, form: f})
	}
	base := func() url.Values {
		return url.Values{"displayName": {"Alerts"}, "payloadUrl": {b.recv.URL()}, "format": {"raw"}, "active": {"on"}, "secret": {"form-secret-42"}}
	}
	// Each bad input is refused with the field named and the engine's own message, and the
	// secret is never sent back.
	for _, tc := range []struct {
		name  string
		edit  func(url.Values)
		field string
		spec  webhook.Spec // validated directly for the expected message, when set
	}{
		{"bad URL", func(f url.Values) { f.Set("payloadUrl", "ftp://x") }, "payloadUrl", webhook.Spec{}},
		{"no display name", func(f url.Values) { f.Set("displayName", "") }, "displayName", webhook.Spec{}},
		{"stack without project", func(f url.Values) { f.Set("stackName", "prod") }, "projectName", webhook.Spec{}},
		{"bad name", func(f url.Values) { f.Set("name", "a/b") }, "name", webhook.Spec{}},
		{"unknown filter", func(f url.Values) { f["filters"] = []string{"nope"} }, "filters[0]", webhook.Spec{}},
		{"unknown format", func(f url.Values) { f.Set("format", "xml") }, "format", webhook.Spec{}},
		{"unknown group", func(f url.Values) { f["groups"] = []string{"nope"} }, "groups[0]", webhook.Spec{}},
	} {
		f := base()
		tc.edit(f)
		res := post(f)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400; body:\n%s", tc.name, res.StatusCode, res.body)
			continue
		}
		want := expectedMessage(t, f, tc.field)
		if !strings.Contains(res.body, "<strong>"+tc.field+"</strong></a>: "+htmlEscape(want)) {
			t.Errorf("%s: the page does not name %s with %q:\n%s", tc.name, tc.field, want, res.body)
		}
		if !strings.Contains(res.body, `aria-invalid="true"`) {
			t.Errorf("%s: no input is marked invalid", tc.name)
		}
		if strings.Contains(res.body, "form-secret-42") {
			t.Errorf("%s: the form sent the secret back", tc.name)
		}
	}
	hooks, err := b.Engine.HookList(context.Background(), store.HookListParams{Scope: webhook.Scope{Org: "acme"}})
	if err != nil || len(hooks) != 0 {
		t.Fatalf("refused forms created %d hooks (%v)", len(hooks), err)
	}
	// A good form creates the hook; the same name again is refused on the name.
	f := base()
	f.Set("name", "alerts")
	f.Set("projectName", "web")
	f.Set("stackName", "prod")
	f["filters"] = []string{"update_succeeded"}
	res := post(f)
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/-/stacks/acme/web/prod/hooks/alerts?done=created" {
		t.Errorf("created hook went to %q", loc)
	}
	h, err := b.Engine.HookGet(context.Background(), store.HookRef{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "alerts"})
	if err != nil || !h.HasSecret || !h.Active || len(h.Filters) != 1 || h.DisplayName != "Alerts" {
		t.Fatalf("created hook %+v, %v", h, err)
	}
	res = post(f)
	wantStatus(t, res, http.StatusConflict)
	wantBody(t, res, `<a href="#name"><strong>name</strong></a>: a webhook named &#34;alerts&#34; already exists in acme/web/prod`)
}

// expectedMessage is what package webhook says about field for the spec the form describes.
func expectedMessage(t *testing.T, f url.Values, field string) string {
	t.Helper()
	spec := webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: f.Get("projectName"), Stack: f.Get("stackName"), Environment: f.Get("environmentName")},
		Name: f.Get("name"), DisplayName: f.Get("displayName"), PayloadURL: f.Get("payloadUrl"), Active: true, Format: webhook.Format(f.Get("format"))}
	for _, x := range f["filters"] {
		spec.Filters = append(spec.Filters, webhook.Filter(x))
	}
	for _, x := range f["groups"] {
		spec.Groups = append(spec.Groups, webhook.Group(x))
	}
	spec.Normalize()
	var fe webhook.FieldErrors
	if !errors.As(spec.Validate(), &fe) {
		t.Fatalf("the spec is valid; the test expects %s to be refused", field)
	}
	for _, e := range fe {
		if e.Field == field {
			return e.Message
		}
	}
	t.Fatalf("webhook.Spec.Validate says nothing about %s: %v", field, fe)
	return ""
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

func TestHookLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	b.createHook(t, "acme", "build", hookBody("acme", "build", b.recv.URL(), `,"secret":"lifecycle-secret-9"`))
	h := "/-/orgs/acme/hooks/build"

	edit := b.do(t, req{path: h + "/edit", token: tok})
	wantStatus(t, edit, http.StatusOK)
	wantBody(t, edit, `value="Hook build"`, "A secret is set", "Remove the secret")

	// Edit: a bad URL is refused naming the field, nothing changes; a good edit saves.
	bad := b.do(t, req{method: http.MethodPost, path: h + "/edit", token: tok,
		form: url.Values{"displayName": {"Renamed"}, "payloadUrl": {"not a url"}, "format": {"raw"}, "active": {"on"}}})
	wantStatus(t, bad, http.StatusBadRequest)
	wantBody(t, bad, "<strong>payloadUrl</strong>")
	good := b.do(t, req{method: http.MethodPost, path: h + "/edit", token: tok,
		form: url.Values{"displayName": {"Renamed"}, "payloadUrl": {b.recv.URL()}, "format": {"slack"}, "active": {"on"}, "filters": {"stack_created"}}})
	wantStatus(t, good, http.StatusSeeOther)
	hk := func() *store.Hook {
		x, err := b.Engine.HookGet(context.Background(), store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "build"})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if x := hk(); x.DisplayName != "Renamed" || x.Format != webhook.FormatSlack || !x.HasSecret || len(x.Filters) != 1 {
		t.Fatalf("after edit: %+v", x)
	}
	// Remove the secret.
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: h + "/edit", token: tok,
		form: url.Values{"displayName": {"Renamed"}, "payloadUrl": {b.recv.URL()}, "format": {"raw"}, "active": {"on"}, "removeSecret": {"on"}}}), http.StatusSeeOther)
	if hk().HasSecret {
		t.Fatal("the secret was not removed")
	}

	// Deactivate and activate.
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: h + "/active", token: tok, form: url.Values{"active": {"false"}}}), http.StatusSeeOther)
	if hk().Active {
		t.Fatal("still active")
	}
	page := b.do(t, req{path: h + "?done=deactivated", token: tok})
	wantBody(t, page, "inactive", "Webhook deactivated", ">Activate<")
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: h + "/active", token: tok, form: url.Values{"active": {"true"}}}), http.StatusSeeOther)
	if !hk().Active {
		t.Fatal("not active again")
	}
	res := b.do(t, req{method: http.MethodPost, path: h + "/active", token: tok, form: url.Values{"active": {"maybe"}}})
	wantStatus(t, res, http.StatusBadRequest)
	wantBody(t, res, "<strong>active</strong>")

	// Ping, then Redeliver: the receiver gets the same body again, and a second attempt is listed.
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: h + "/ping", token: tok, form: url.Values{}}), http.StatusSeeOther)
	first := b.recv.Wait(t, 1)[0]
	page = b.do(t, req{path: h, token: tok})
	id := regexp.MustCompile(`/deliveries/([^/]+)/redeliver`).FindStringSubmatch(page.body)
	if id == nil {
		t.Fatalf("no Redeliver button:\n%s", page.body)
	}
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: h + "/deliveries/" + id[1] + "/redeliver", token: tok, form: url.Values{}}), http.StatusSeeOther)
	second := b.recv.Wait(t, 2)[1]
	if string(second.Body) != string(first.Body) {
		t.Errorf("redelivered body differs:\n%s\n%s", first.Body, second.Body)
	}
	page = b.do(t, req{path: h + "?done=redelivered", token: tok})
	wantBody(t, page, "attempt 2", "attempt 1", "Delivery sent again")
	res = b.do(t, req{method: http.MethodPost, path: h + "/deliveries/nope/redeliver", token: tok, form: url.Values{}})
	wantStatus(t, res, http.StatusNotFound)
	wantBody(t, res, "delivery &#34;nope&#34; of webhook &#34;acme/build&#34; not found")

	// Delete; the hook is gone.
	res = b.do(t, req{method: http.MethodPost, path: h + "/delete", token: tok, form: url.Values{}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/acme?done=deleted" {
		t.Errorf("delete went to %q", loc)
	}
	for _, p := range []string{h, h + "/edit"} {
		res := b.do(t, req{path: p, token: tok})
		wantStatus(t, res, http.StatusNotFound)
		wantBody(t, res, "webhook &#34;acme/build&#34; not found")
	}
	for _, p := range []string{"/ping", "/delete", "/active"} {
		res := b.do(t, req{method: http.MethodPost, path: h + p, token: tok, form: url.Values{"active": {"true"}}})
		wantStatus(t, res, http.StatusNotFound)
	}
}

func TestDeliveriesFilteredAndSecretsHidden(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	b.createHook(t, "acme", "build", hookBody("acme", "build", b.recv.URL(), `,"secret":"never-shown-secret"`))
	b.emit(t, "acme", `{"filter":"stack_created","projectName":"web","stackName":"prod"}`)
	b.recv.Wait(t, 1)
	b.recv.SetStatus(http.StatusGone) // 410: failed at once, no retry
	b.emit(t, "acme", `{"filter":"stack_deleted","projectName":"web","stackName":"prod"}`)
	b.recv.Wait(t, 2)
	h := "/-/orgs/acme/hooks/build"
	var all resp
	waitPage := func(path, want string) resp {
		t.Helper()
		for deadline := time.Now().Add(waitfor.Limit); ; time.Sleep(20 * time.Millisecond) {
			r := b.do(t, req{path: path, token: tok})
			if strings.Contains(r.body, want) || time.Now().After(deadline) {
				if !strings.Contains(r.body, want) {
					t.Fatalf("%s never showed %q:\n%s", path, want, r.body)
				}
				return r
			}
		}
	}
	all = waitPage(h, ">410<")
	wantBody(t, all, "stack_created", "stack_deleted", ">200<", ">410<", "Pulumi-Webhook-Signature", "<details>")
	ok := b.do(t, req{path: h + "?status=succeeded", token: tok})
	wantBody(t, ok, "<strong>stack_created</strong>")
	if strings.Contains(ok.body, "<strong>stack_deleted</strong>") {
		t.Error("status=succeeded lists the failed delivery")
	}
	failed := b.do(t, req{path: h + "?status=failed&event=stack_deleted", token: tok})
	wantBody(t, failed, "<strong>stack_deleted</strong>")
	if strings.Contains(failed.body, "<strong>stack_created</strong>") {
		t.Error("status=failed lists the successful delivery")
	}
	none := b.do(t, req{path: h + "?event=ping", token: tok})
	wantBody(t, none, "No deliveries match these filters")
	for _, q := range []string{"?status=bogus", "?event=bogus", "?before=-1"} {
		res := b.do(t, req{path: h + q, token: tok})
		wantStatus(t, res, http.StatusBadRequest)
	}
	over := waitPage("/acme", "failed</span> after 1 attempt")
	wantBody(t, over, "1 succeeded", "1 failed", "stack_created", "stack_deleted", "<svg")
	for _, p := range []string{"/acme", h, h + "/edit", "/acme/web/prod"} {
		if r := b.do(t, req{path: p, token: tok}); strings.Contains(r.body, "never-shown-secret") {
			t.Errorf("%s shows the secret", p)
		}
	}
	stack := b.do(t, req{path: "/acme/web/prod/updates/1", token: tok})
	wantStatus(t, stack, http.StatusOK)
	wantBody(t, stack, "Webhooks of stack web/prod", "stack_deleted")
	wantStatus(t, b.do(t, req{path: "/acme/a%2Fb/prod", token: tok}), http.StatusNotFound)
}

func TestSecurityHeadersAndAssets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.do(t, req{path: "/acme", token: b.Tokens["acme"]})
	wantStatus(t, res, http.StatusOK)
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY",
		"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if got := res.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	css := b.do(t, req{path: "/-/assets/console.css"})
	wantStatus(t, css, http.StatusOK)
	if !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("console.css: %s", css.Header.Get("Content-Type"))
	}
	wantStatus(t, b.do(t, req{path: "/-/assets/nope.js"}), http.StatusNotFound)
	big := url.Values{"csrf": {strings.Repeat("x", console.MaxFormBytesDefault+1)}}
	wantStatus(t, b.do(t, req{method: http.MethodPost, path: "/-/orgs/acme/new-hook", token: b.Tokens["acme"], form: big}), http.StatusRequestEntityTooLarge)
}

// TestDeliveryLogOlderLinkOnlyWhenOlderExist: a webhook's page links Older only when older
// attempts exist, so a log of exactly one page has none, and the Older page holds the rest.
func TestDeliveryLogOlderLinkOnlyWhenOlderExist(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.Tokens["acme"]
	b.createHook(t, "acme", "log", hookBody("acme", "log", b.recv.URL(), ""))
	ref := store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "log"}
	for range console.DeliveriesPerPage {
		if _, err := b.Engine.Ping(t.Context(), ref); err != nil {
			t.Fatal(err)
		}
	}
	h := "/-/orgs/acme/hooks/log"
	older := regexp.MustCompile(`<a href="([^"]*)">Older</a>`)
	redeliver := regexp.MustCompile(`/deliveries/[^/"]+/redeliver`)
	page := b.do(t, req{path: h, token: tok})
	wantStatus(t, page, http.StatusOK)
	if n := len(redeliver.FindAllString(page.body, -1)); n != console.DeliveriesPerPage || older.MatchString(page.body) {
		t.Fatalf("a log of exactly one page: %d attempts, Older link %q", n, older.FindString(page.body))
	}
	if _, err := b.Engine.Ping(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	page = b.do(t, req{path: h, token: tok})
	m := older.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("a log of one page and one attempt has no Older link")
	}
	next := b.do(t, req{path: html.UnescapeString(m[1]), token: tok})
	wantStatus(t, next, http.StatusOK)
	if n := len(redeliver.FindAllString(next.body, -1)); n != 1 || older.MatchString(next.body) {
		t.Errorf("the Older page: %d attempts (want the oldest one), Older link %q", n, older.FindString(next.body))
	}
}
