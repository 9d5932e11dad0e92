package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The black-box probes of issue 9, item 11: each bad request is refused, naming the field,
// and nothing is stored.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := servertest.NewReceiver(t)
	org := "/api/orgs/acme/hooks"
	h := hookBody("acme", rcv.URL())
	h["name"] = "h"
	b.do("acme", "POST", org, h).want(http.StatusCreated)
	with := func(kv ...any) map[string]any {
		m := hookBody("acme", rcv.URL())
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	events := "/api/orgs/acme/events"
	manyGroups := slices.Repeat([]string{"stacks"}, webhook.ListMaxLen+1)
	for _, c := range []struct {
		name         string
		method, path string
		body         any
		field, says  string
	}{
		{"key in another case", "POST", org, `{"organizationName":"acme","displayName":"x","PAYLOADURL":"http://127.0.0.1:1/","active":true}`, "PAYLOADURL", `write "payloadUrl"`},
		{"key in another case on update", "PATCH", org + "/h", `{"DisplayName":"x"}`, "DisplayName", "case-sensitive"},
		{"event key in another case", "POST", events, `{"Filter":"update_succeeded","projectName":"web","stackName":"prod"}`, "Filter", "case-sensitive"},
		{"key twice", "POST", org, `{"organizationName":"acme","displayName":"x","displayName":"y","payloadUrl":"http://127.0.0.1:1/","active":true}`, "displayName", "twice"},
		{"null display name", "POST", org, with("displayName", nil), "displayName", "is null"},
		{"null active", "POST", org, with("active", nil), "active", "is null"},
		{"null format", "POST", org, with("format", nil), "format", "is null"},
		{"null name", "POST", org, with("name", nil), "name", "is null"},
		{"null filters on update", "PATCH", org + "/h", map[string]any{"filters": nil}, "filters", "is null"},
		{"null secret on update", "PATCH", org + "/h", map[string]any{"secret": nil}, "secret", "is null"},
		{"null payload", "POST", events, `{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":null}`, "payload", "is null"},
		{"empty format", "POST", org, with("format", ""), "format", "is empty"},
		{"empty format on update", "PATCH", org + "/h", map[string]any{"format": ""}, "format", "is empty"},
		{"empty projectName on an organization hook", "POST", org, with("projectName", ""), "projectName", "is empty"},
		{"empty stackName on update", "PATCH", org + "/h", map[string]any{"stackName": ""}, "stackName", "is empty"},
		{"port 0", "POST", org, with("payloadUrl", "http://127.0.0.1:0/hook"), "payloadUrl", `port "0"`},
		{"port 65536", "POST", org, with("payloadUrl", "http://127.0.0.1:65536/hook"), "payloadUrl", `port "65536"`},
		{"port 65536 on update", "PATCH", org + "/h", map[string]any{"payloadUrl": "http://127.0.0.1:65536/"}, "payloadUrl", "port"},
		{"NUL in display name", "POST", org, with("displayName", "a\x00b"), "displayName", "U+0000"},
		{"ESC in display name", "PATCH", org + "/h", map[string]any{"displayName": "\x1b[2Jgone"}, "displayName", "U+001B"},
		{"NEL in display name", "POST", org, with("displayName", "a\u0085b"), "displayName", "U+0085"},
		{"zero-width space in display name", "POST", org, with("displayName", "ad\u200bmin"), "displayName", "U+200B"},
		{"bidi override in display name", "POST", org, with("displayName", "\u202egnp.exe"), "displayName", "U+202E"},
		{"long display name", "POST", org, with("displayName", strings.Repeat("d", 300)), "displayName", "at most 256"},
		{"dot-dot name", "POST", org, with("name", ".."), "name", "path"},
		{"long name", "POST", org, with("name", strings.Repeat("n", 33)), "name", "at most 32"},
		{"name with a colon", "POST", org, with("name", "a:b"), "name", "letters, digits"},
		{"long secret", "POST", org, with("secret", strings.Repeat("s", 2000)), "secret", "at most 1024"},
		{"long URL", "POST", org, with("payloadUrl", "http://127.0.0.1:1/"+strings.Repeat("u", 3000)), "payloadUrl", "at most 2048"},
		{"too many groups", "POST", org, with("groups", manyGroups), "groups", fmt.Sprintf("%d entries", webhook.ListMaxLen+1)},
		{"dot-dot stack in an event", "POST", events, map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": ".."}, "stackName", "path"},
		{"long project in an event", "POST", events, map[string]any{"filter": "update_succeeded", "projectName": strings.Repeat("p", 101), "stackName": "prod"}, "projectName", "at most 100"},
		{"bidi stack in an event", "POST", events, map[string]any{"filter": "update_succeeded", "projectName": "web", "stackName": "prod\u202e"}, "stackName", "U+202E"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := &testBundle{Bundle: b.Bundle, t: t, openapi: b.openapi}
			e := tb.do("acme", c.method, c.path, c.body).want(http.StatusBadRequest).apiError()
			found := false
			for _, fe := range e.Errors {
				if fe.Field == c.field {
					found = true
					mustContain(t, "error", fe.Message, c.says)
				}
			}
			if !found {
				t.Errorf("errors %+v do not name %q", e.Errors, c.field)
			}
		})
	}
	// The hook is as created; no other hook was stored.
	var got []api.WebhookResponse
	b.do("acme", "GET", org, nil).want(http.StatusOK).decode(&got)
	if len(got) != 1 || got[0].Name != "h" || got[0].DisplayName != "test hook" || got[0].PayloadURL != rcv.URL() {
		t.Errorf("hooks after the bad requests: %+v", got)
	}
	// A body without a Content-Type is still taken as JSON (curl -d sends one; some clients
	// send none).
	b.do("acme", "PATCH", org+"/h", map[string]any{"active": false}, withHeader("Content-Type", "")).want(http.StatusOK)
	b.do("acme", "PATCH", org+"/h", map[string]any{"active": true}, withHeader("Content-Type", "application/json; charset=utf-8")).want(http.StatusOK)
}

// A body that is not JSON is 415, and any body over the limit is 413, whatever it holds and
// whether its length was announced or not.
func TestContentTypeAndBodySize(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *servertest.Opts) {
		o.Server = func(c *server.Config) { c.MaxBodyBytes = 4096 }
	})
	org := "/api/orgs/acme/hooks"
	valid := hookBody("acme", "http://127.0.0.1:1/hook")
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "json", ";;"} {
		for _, path := range []string{org, "/api/orgs/acme/events"} {
			e := b.do("acme", "POST", path, valid, withHeader("Content-Type", ct)).want(http.StatusUnsupportedMediaType).apiError()
			mustContain(t, "415 message", e.Message, "application/json")
		}
	}

	notJSON := bytes.Repeat([]byte("not json at all "), 1024) // 16 KiB
	for _, announced := range []bool{true, false} {
		for _, path := range []string{org, "/api/orgs/acme/events"} {
			var rd io.Reader = bytes.NewReader(notJSON)
			if !announced {
				rd = io.MultiReader(rd) // hides the length: sent chunked
			}
			req, err := http.NewRequest("POST", b.URL+path, rd)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "token "+b.Tokens["acme"])
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s with a %d-byte non-JSON body (length announced: %t): %d %s", path, len(notJSON), announced, resp.StatusCode, body)
			}
			servertest.CheckErrorBody(t, resp.StatusCode, resp.Header, body)
		}
	}
}

// 60,000 invalid filter names used to get a 113 MB answer; now the answer is bounded.
func TestErrorBodiesAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	filters := make([]string, 60000)
	for i := range filters {
		filters[i] = fmt.Sprintf("bad_%d", i)
	}
	body := hookBody("acme", "http://127.0.0.1:1/hook")
	body["filters"] = filters
	r := b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusBadRequest)
	if len(r.Body) > 64<<10 {
		t.Errorf("the 400 answer is %d bytes", len(r.Body))
	}
	e := r.apiError()
	if len(e.Errors) > webhook.FieldErrorsMax {
		t.Errorf("%d field errors listed, want at most %d", len(e.Errors), webhook.FieldErrorsMax)
	}
	mustContain(t, "message", e.Message, "filters: has 60000 entries", "more problems")
	// Many unknown keys, each long: still bounded.
	keys := map[string]any{}
	for i := range 5000 {
		keys[fmt.Sprintf("%s%d", strings.Repeat("k", 150), i)] = i
	}
	raw, _ := json.Marshal(keys)
	r = b.do("acme", "POST", "/api/orgs/acme/hooks", raw).want(http.StatusBadRequest)
	if len(r.Body) > 16<<10 {
		t.Errorf("the answer to %d unknown keys is %d bytes", len(keys), len(r.Body))
	}
	// A huge unknown filter value is quoted in part only.
	body["filters"] = []string{strings.Repeat("z", 500_000)}
	if r := b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusBadRequest); len(r.Body) > 8<<10 {
		t.Errorf("the answer about a 500 KB filter name is %d bytes", len(r.Body))
	}
}

// Names in the URL are checked before any lookup, and the answer never repeats a long one.
func TestPathNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := strings.Repeat("n", 5000)
	for _, c := range []struct{ path, field string }{
		{"/api/orgs/acme/hooks/" + long, "name"},
		{"/api/orgs/acme/hooks/a%00b", "name"},
		{"/api/orgs/acme/hooks/a%E2%80%AEb/deliveries", "name"},
		{"/api/stacks/acme/web/" + long + "/hooks", "stackName"},
		{"/api/stacks/acme/w%1Bb/prod/hooks/h", "projectName"},
		{"/api/esc/environments/acme/app/d%0Av/hooks", "envName"},
	} {
		r := b.do("acme", "GET", c.path, nil).want(http.StatusBadRequest)
		if len(r.Body) > 1024 {
			t.Errorf("GET %.60s...: a %d-byte answer", c.path, len(r.Body))
		}
		e := r.apiError()
		if len(e.Errors) != 1 || e.Errors[0].Field != c.field {
			t.Errorf("GET %.60s...: %+v, want one error on %s", c.path, e.Errors, c.field)
		}
	}
	// Another organization's URL is 404 whatever its names, as before.
	b.do("acme", "GET", "/api/orgs/globex/hooks/"+long, nil).want(http.StatusNotFound)
	if r := b.do("acme", "GET", "/api/orgs/"+long+"/hooks", nil).want(http.StatusNotFound); len(r.Body) > 1024 {
		t.Errorf("404 for a long organization is %d bytes", len(r.Body))
	}
}

// A hook stored before the hook-name rules, with a name they refuse, stays reachable and can
// still be updated and deleted; only new names must follow the rules.
func TestLegacyHookNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	legacy := strings.Repeat("legacy-name-", 4) + "café"
	_, err := b.Store.HookCreate(t.Context(), store.HookCreateParams{Now: time.Now(), Spec: webhook.Spec{
		Scope: webhook.Scope{Org: "acme"}, Name: legacy, DisplayName: "old", PayloadURL: "https://example.com/old", Active: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/orgs/acme/hooks/" + url.PathEscape(legacy)
	b.do("acme", "GET", path, nil).want(http.StatusOK)
	var got api.WebhookResponse
	b.do("acme", "PATCH", path, map[string]any{"displayName": "renamed", "name": legacy}).want(http.StatusOK).decode(&got)
	if got.DisplayName != "renamed" || got.Name != legacy {
		t.Errorf("after PATCH: %+v", got)
	}
	b.do("acme", "DELETE", path, nil).want(http.StatusNoContent)
	// A new hook cannot take such a name.
	body := hookBody("acme", "https://example.com/new")
	body["name"] = legacy
	b.do("acme", "POST", "/api/orgs/acme/hooks", body).want(http.StatusBadRequest)
}
