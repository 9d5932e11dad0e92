package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// scopePaths are the hook collections of one stack, one environment and the organization.
var scopePaths = []struct{ name, path string }{
	{"organization", "/api/orgs/acme/hooks"},
	{"stack", "/api/stacks/acme/web/prod/hooks"},
	{"environment", "/api/esc/environments/acme/app/dev/hooks"},
}

// page is one answer of a listing: the body and the next page it names.
type page struct {
	*result
	token string // X-Continuation-Token
	next  string // the Link rel="next" target
}

// get fetches one page as acme and checks that its two next-page headers agree: both absent,
// or a token and a Link to the same path with that token.
func (b *testBundle) get(path string) *page {
	b.t.Helper()
	r := b.do("acme", "GET", path, nil).want(http.StatusOK)
	p := &page{result: r, token: r.Header.Get(api.HeaderContinuationToken)}
	links := r.Header.Values("Link")
	if p.token == "" {
		if len(links) != 0 {
			b.t.Fatalf("GET %s: Link %q without %s", path, links, api.HeaderContinuationToken)
		}
		return p
	}
	if strings.Trim(p.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		b.t.Errorf("GET %s: token %q is not URL-safe base64", path, p.token)
	}
	if len(links) != 1 || !strings.HasPrefix(links[0], "<") || !strings.HasSuffix(links[0], `>; rel="next"`) {
		b.t.Fatalf("GET %s: Link %q, want one <...>; rel=\"next\"", path, links)
	}
	p.next = strings.TrimSuffix(strings.TrimPrefix(links[0], "<"), `>; rel="next"`)
	u, err := url.Parse(p.next)
	if err != nil || u.Path != strings.Split(path, "?")[0] || u.Query().Get(api.ParamContinuationToken) != p.token || len(u.Query()) != 1 {
		b.t.Fatalf("GET %s: Link target %q, want the same path with only continuationToken=%s", path, p.next, p.token)
	}
	return p
}

func (p *page) hookNames() []string {
	var hs []api.WebhookResponse
	p.decode(&hs)
	names := make([]string, 0, len(hs))
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return names
}

func (p *page) deliveryIDs() []string {
	var ds []api.WebhookDelivery
	p.decode(&ds)
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func (b *testBundle) createHook(collection, name, target string) {
	b.t.Helper()
	body := hookBody("acme", target)
	body["name"] = name
	b.do("acme", "POST", collection, body).want(http.StatusCreated)
}

func wantNames(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// TestHookListPagesEveryScope pages the hooks of each scope while hooks are created and deleted
// between the pages: every hook that exists throughout is listed once, in name order, and the
// unpaged listing still answers every hook.
func TestHookListPagesEveryScope(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) { o.NoWorkers = true })
	for _, sc := range scopePaths {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			b := b.on(t)
			const target = "https://example.invalid/hook" // never called: the workers are stopped
			for _, n := range []string{"h09", "h03", "h21", "h06", "h15", "h12", "h18"} {
				b.createHook(sc.path, n, target)
			}
			all := b.get(sc.path)
			wantNames(t, "unpaged listing", all.hookNames(), "h03", "h06", "h09", "h12", "h15", "h18", "h21")
			if all.token != "" {
				t.Fatalf("the unpaged listing names a next page %q", all.token)
			}
			wantNames(t, "empty continuationToken", b.get(sc.path+"?continuationToken=").hookNames(), "h03", "h06", "h09", "h12", "h15", "h18", "h21")
			if p := b.get(sc.path + "?limit=7"); p.token != "" || len(p.hookNames()) != 7 {
				t.Fatalf("a full last page names a next page %q (or is short: %q)", p.token, p.hookNames())
			}
			if p := b.get(sc.path + "?limit=1000"); len(p.hookNames()) != 7 || p.token != "" {
				t.Fatalf("?limit=1000 = %q, token %q", p.hookNames(), p.token)
			}

			p1 := b.get(sc.path + "?limit=3")
			wantNames(t, "page 1", p1.hookNames(), "h03", "h06", "h09")
			if p1.token == "" {
				t.Fatal("page 1 of 3 names no next page")
			}
			// Between pages: one hook before the cursor, one after it; a seen and an unseen
			// hook deleted.
			b.createHook(sc.path, "h01", target)
			b.createHook(sc.path, "h10", target)
			b.do("acme", "DELETE", sc.path+"/h06", nil).want(http.StatusNoContent)
			b.do("acme", "DELETE", sc.path+"/h15", nil).want(http.StatusNoContent)
			// The token alone keeps the page size.
			p2 := b.get(p1.next)
			wantNames(t, "page 2", p2.hookNames(), "h10", "h12", "h18")
			// ?limit= beside a token changes the size from there on.
			wantNames(t, "page 2 with limit=1", b.get(sc.path+"?limit=1&continuationToken="+p1.token).hookNames(), "h10")
			b.createHook(sc.path, "h99", target)
			p3 := b.get(p2.next)
			wantNames(t, "page 3", p3.hookNames(), "h21", "h99")
			if p3.token != "" {
				t.Errorf("the last page names a next page %q", p3.token)
			}
			// A token stays valid: the same page again gives what follows its cursor now.
			wantNames(t, "page 2 again", b.get(p1.next).hookNames(), "h10", "h12", "h18")
		})
	}
}

// TestDeliveryListPagesEveryScope pages a hook's delivery log in each scope while new
// deliveries are recorded between the pages: the pages hold the attempts that existed when
// paging began, newest first, each once; ?before= and X-Next-Before keep working.
func TestDeliveryListPagesEveryScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	for _, sc := range scopePaths {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			b := b.on(t)
			b.createHook(sc.path, "log", rcv.URL())
			base := sc.path + "/log"
			ping := func() string {
				var d api.WebhookDelivery
				b.do("acme", "POST", base+"/ping", nil).want(http.StatusOK).decode(&d)
				return d.ID
			}
			var pinged []string
			for range 5 {
				pinged = append([]string{ping()}, pinged...) // newest first
			}
			all := b.get(base + "/deliveries")
			wantNames(t, "unpaged delivery log", all.deliveryIDs(), pinged...)
			if all.token != "" || all.Header.Get(api.HeaderNextBefore) != "" {
				t.Fatalf("a log shorter than the default page names a next page: %q, %q", all.token, all.Header.Get(api.HeaderNextBefore))
			}
			if p := b.get(base + "/deliveries?limit=5"); p.token != "" || p.Header.Get(api.HeaderNextBefore) != "" {
				t.Fatalf("a full last page names a next page: %q, %q", p.token, p.Header.Get(api.HeaderNextBefore))
			}

			p1 := b.get(base + "/deliveries?limit=2")
			wantNames(t, "page 1", p1.deliveryIDs(), pinged[:2]...)
			before := p1.Header.Get(api.HeaderNextBefore)
			if p1.token == "" || before == "" {
				t.Fatalf("page 1 of 3 names no next page: token %q, X-Next-Before %q", p1.token, before)
			}
			ping()
			ping()
			p2 := b.get(p1.next)
			wantNames(t, "page 2", p2.deliveryIDs(), pinged[2:4]...)
			// The older cursor gives the same page.
			wantNames(t, "page 2 by before", b.get(base+"/deliveries?limit=2&before="+before).deliveryIDs(), pinged[2:4]...)
			ping()
			p3 := b.get(p2.next)
			wantNames(t, "page 3", p3.deliveryIDs(), pinged[4:]...)
			if p3.token != "" || p3.Header.Get(api.HeaderNextBefore) != "" {
				t.Errorf("the last page names a next page: %q, %q", p3.token, p3.Header.Get(api.HeaderNextBefore))
			}
			// ?limit= beside a token changes the size.
			wantNames(t, "page 2 with limit=1", b.get(base+"/deliveries?limit=1&continuationToken="+p1.token).deliveryIDs(), pinged[2])
			if p := b.get(base + "/deliveries?limit=1000"); len(p.deliveryIDs()) != 8 {
				t.Errorf("?limit=1000 lists %d deliveries, want 8", len(p.deliveryIDs()))
			}
		})
	}
}

// TestPagingRefusesBadParameters: every bad paging parameter is a 400 naming it and the fix.
func TestPagingRefusesBadParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) { o.NoWorkers = true })
	rcv := servertest.NewReceiver(t)
	org, stack, env := scopePaths[0].path, scopePaths[1].path, scopePaths[2].path
	for _, p := range []string{org, stack, env} {
		b.createHook(p, "a", rcv.URL())
		b.createHook(p, "b", rcv.URL())
	}
	gb := hookBody("globex", rcv.URL())
	b.do("globex", "POST", "/api/orgs/globex/hooks", gb).want(http.StatusCreated)
	b.do("globex", "POST", "/api/orgs/globex/hooks", gb).want(http.StatusCreated)
	for _, h := range []string{"a", "b"} {
		for range 2 {
			b.do("acme", "POST", org+"/"+h+"/ping", nil).want(http.StatusOK)
		}
	}
	token := func(org, path string) string {
		t.Helper()
		r := b.do(org, "GET", path, nil).want(http.StatusOK)
		tok := r.Header.Get(api.HeaderContinuationToken)
		if tok == "" {
			t.Fatalf("GET %s named no next page", path)
		}
		return tok
	}
	orgTok := token("acme", org+"?limit=1")
	stackTok := token("acme", stack+"?limit=1")
	envTok := token("acme", env+"?limit=1")
	globexTok := token("globex", "/api/orgs/globex/hooks?limit=1")
	logA := token("acme", org+"/a/deliveries?limit=1")
	// Change one character in the middle; cut the end.
	mid := len(orgTok) / 2
	flip := "A"
	if orgTok[mid] == 'A' {
		flip = "B"
	}
	tampered := orgTok[:mid] + flip + orgTok[mid+1:]
	cut := orgTok[:len(orgTok)-3]

	const fixToken = "leave it out to list from the first page"
	cases := []struct {
		name, path, field string
		says              []string
	}{
		{"limit zero", org + "?limit=0", "limit", []string{"from 1 to 1000"}},
		{"limit negative", stack + "?limit=-1", "limit", []string{"from 1 to 1000"}},
		{"limit too big", env + "?limit=1001", "limit", []string{"from 1 to 1000"}},
		{"limit not a number", org + "?limit=ten", "limit", []string{`"ten"`}},
		{"limit twice", org + "?limit=1&limit=2", "limit", []string{"given 2 times"}},
		{"deliveries: limit too big", org + "/a/deliveries?limit=1001", "limit", []string{"from 1 to 1000"}},
		{"garbage token", org + "?continuationToken=" + url.QueryEscape("not a token!"), "continuationToken", []string{"X-Continuation-Token", fixToken}},
		{"tampered token", org + "?continuationToken=" + tampered, "continuationToken", []string{"cut or changed", fixToken}},
		{"cut token", org + "?continuationToken=" + cut, "continuationToken", []string{"cut or changed", fixToken}},
		{"token twice", org + "?continuationToken=" + orgTok + "&continuationToken=" + orgTok, "continuationToken", []string{"given 2 times"}},
		{"organization token on a stack", stack + "?continuationToken=" + orgTok, "continuationToken", []string{"another listing", "acme/web/prod", fixToken}},
		{"stack token on the organization", org + "?continuationToken=" + stackTok, "continuationToken", []string{"another listing", fixToken}},
		{"environment token on a stack", stack + "?continuationToken=" + envTok, "continuationToken", []string{"another listing", fixToken}},
		{"another organization's token", org + "?continuationToken=" + globexTok, "continuationToken", []string{"another listing", fixToken}},
		{"another hook's delivery token", org + "/b/deliveries?continuationToken=" + logA, "continuationToken", []string{"another listing", `webhook "b"`, fixToken}},
		{"same hook name in another scope", stack + "/a/deliveries?continuationToken=" + logA, "continuationToken", []string{"another listing", fixToken}},
		{"delivery token on a hook listing", org + "?continuationToken=" + logA, "continuationToken", []string{"belongs to a delivery log", fixToken}},
		{"hook token on a delivery log", org + "/a/deliveries?continuationToken=" + orgTok, "continuationToken", []string{"belongs to a webhook listing", fixToken}},
		{"tampered token on a delivery log", org + "/a/deliveries?continuationToken=" + tampered, "continuationToken", []string{"cut or changed"}},
		{"before with a token", org + "/a/deliveries?before=5&continuationToken=" + logA, "before", []string{"give only continuationToken"}},
		{"before not a number", org + "/a/deliveries?before=x", "before", []string{"X-Continuation-Token"}},
		{"before twice", org + "/a/deliveries?before=5&before=6", "before", []string{"given 2 times"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := b.on(t).do("acme", "GET", c.path, nil).want(http.StatusBadRequest).apiError()
			if len(e.Errors) != 1 || e.Errors[0].Field != c.field {
				t.Fatalf("errors %+v, want one naming %s", e.Errors, c.field)
			}
			mustContain(t, "message", e.Message, append([]string{c.field + ": "}, c.says...)...)
			for _, tok := range []string{orgTok, stackTok, envTok, globexTok, logA} {
				if strings.Contains(e.Message, tok) {
					t.Errorf("message %q repeats a token", e.Message)
				}
			}
		})
	}
}
