package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Fixed inputs, so generated payloads and bodies are the same on every run.
var (
	testNow     = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	testEventID = "evt-0001"
	testConsole = "https://app.pulumi.com"
	stackScope  = webhook.Scope{Org: "acme", Project: "website", Stack: "prod"}
	envScope    = webhook.Scope{Org: "acme", Project: "platform", Environment: "production"}
	orgScope    = webhook.Scope{Org: "acme"}
)

// referenceExamples maps our example names to the headings of the payload examples on the
// Pulumi Cloud webhooks page (the reference facts of package refdocs).
var referenceExamples = map[string]string{
	"stack_created": "Stack Creation",
	"stack_update":  "Stack Update",
	"stack_preview": "Stack Preview",
	"deployment":    "Deployment",
}

// events returns every filter and ping: everything Payload builds.
func events() []webhook.Filter { return append(webhook.AllFilters(), webhook.Ping) }

// httpFormats are the formats Render turns into HTTP bodies.
func httpFormats() []webhook.Format {
	return []webhook.Format{webhook.FormatRaw, webhook.FormatSlack, webhook.FormatMicrosoftTeams}
}

// subjectFor returns the test subject of the right kind for f; pings go to the organization.
func subjectFor(f webhook.Filter) webhook.Scope {
	switch f.Subject() {
	case webhook.ScopeStack:
		return stackScope
	case webhook.ScopeEnvironment:
		return envScope
	default:
		return orgScope
	}
}

// testBundle is one event with the fixed test inputs.
type testBundle struct {
	params PayloadParams
}

func setup(t *testing.T, f webhook.Filter) *testBundle {
	t.Helper()
	return &testBundle{params: PayloadParams{
		EventID: testEventID, Filter: f, Subject: subjectFor(f), ConsoleURL: testConsole, Now: testNow,
	}}
}

// payload builds the bundle's payload with the given overrides, failing the test on error.
func (b *testBundle) payload(t *testing.T, overrides string) []byte {
	t.Helper()
	p := b.params
	if overrides != "" {
		p.Overrides = json.RawMessage(overrides)
	}
	out, err := Payload(p)
	if err != nil {
		t.Fatalf("Payload(%s, %s): %v", p.Filter, overrides, err)
	}
	return out
}

// payloadErr builds the payload expecting FieldErrors, and returns them.
func (b *testBundle) payloadErr(t *testing.T, overrides string) webhook.FieldErrors {
	t.Helper()
	p := b.params
	p.Overrides = json.RawMessage(overrides)
	out, err := Payload(p)
	if err == nil {
		t.Fatalf("Payload(%s, %s) = %s, want an error", p.Filter, overrides, out)
	}
	var fe webhook.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("Payload(%s, %s) error %T %v, want webhook.FieldErrors", p.Filter, overrides, err, err)
	}
	return fe
}

func (b *testBundle) input(payload []byte) Input {
	return Input{Filter: b.params.Filter, Subject: b.params.Subject, Payload: payload, ConsoleURL: testConsole}
}

// decode parses a JSON object, failing the test when it is not one.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("data after the JSON object:\n%s", b)
	}
	return m
}

// readReference returns a documentation example, compacted.
func readReference(t *testing.T, name string) []byte {
	t.Helper()
	examples, err := refdocs.PayloadExamples()
	if err != nil {
		t.Fatal(err)
	}
	b, ok := examples[referenceExamples[name]]
	if !ok {
		t.Fatalf("the reference page has no example for %s", name)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return buf.Bytes()
}

// wantFieldError fails unless errs has an error for field whose message contains every part.
func wantFieldError(t *testing.T, errs webhook.FieldErrors, field string, parts ...string) {
	t.Helper()
	for _, e := range errs {
		if e.Field != field {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(e.Message, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no error for %q containing %q in %v", field, parts, errs)
}

// path walks a decoded JSON value: keys for objects, ints for arrays. It returns nil when
// the path does not exist.
func path(v any, steps ...any) any {
	for _, s := range steps {
		switch s := s.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s]
		case int:
			a, ok := v.([]any)
			if !ok || s >= len(a) {
				return nil
			}
			v = a[s]
		}
	}
	return v
}
