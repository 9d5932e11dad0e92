package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

type testBundle struct {
	*servertest.Bundle
	t       *testing.T
	openapi *servertest.OpenAPI
}

func setup(t *testing.T, opts ...func(*servertest.Opts)) *testBundle {
	t.Helper()
	var o servertest.Opts
	for _, f := range opts {
		f(&o)
	}
	return &testBundle{Bundle: servertest.Start(t, o), t: t, openapi: servertest.LoadOpenAPI(t)}
}

// on returns the bundle reporting to t: a subtest's requests fail the subtest, not its parent.
func (b *testBundle) on(t *testing.T) *testBundle {
	return &testBundle{Bundle: b.Bundle, t: t, openapi: b.openapi}
}

// result is one answer, already checked against the OpenAPI document.
type result struct {
	t      *testing.T
	req    string
	Status int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v.
func (r *result) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("%s: decode %s: %v", r.req, r.Body, err)
	}
}

// want fails the test unless the status is code.
func (r *result) want(code int) *result {
	r.t.Helper()
	if r.Status != code {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.req, r.Status, code, r.Body)
	}
	return r
}

// apiError decodes an error body.
func (r *result) apiError() api.Error {
	r.t.Helper()
	var e api.Error
	r.decode(&e)
	return e
}

// reqOpts adjusts one request.
type reqOpts struct {
	token  string
	header map[string]string
	raw    []byte
}

// do sends one request as org's token (or opts.token), with body marshalled to JSON unless it
// is nil or a []byte (sent as is), and validates the exchange against the OpenAPI document.
func (b *testBundle) do(org, method, path string, body any, opts ...func(*reqOpts)) *result {
	b.t.Helper()
	o := reqOpts{token: b.Tokens[org]}
	for _, f := range opts {
		f(&o)
	}
	var raw []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			b.t.Fatalf("marshal: %v", err)
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.URL+path, rd)
	if err != nil {
		b.t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.token != "" {
		req.Header.Set("Authorization", "token "+o.token)
	}
	for k, v := range o.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	b.openapi.Check(b.t, req, raw, resp.StatusCode, resp.Header, out)
	return &result{t: b.t, req: method + " " + path, Status: resp.StatusCode, Header: resp.Header, Body: out}
}

func withToken(tok string) func(*reqOpts) { return func(o *reqOpts) { o.token = tok } }

func withHeader(k, v string) func(*reqOpts) {
	return func(o *reqOpts) {
		if o.header == nil {
			o.header = map[string]string{}
		}
		o.header[k] = v
	}
}

// hookBody is a valid create body; fields can be changed or deleted by the caller.
func hookBody(org, url string) map[string]any {
	return map[string]any{
		"organizationName": org,
		"displayName":      "test hook",
		"payloadUrl":       url,
		"active":           true,
	}
}

// mustContain fails unless s contains every one of subs.
func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}
