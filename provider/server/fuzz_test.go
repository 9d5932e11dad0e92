package server

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine/render"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// errorBodyMax bounds what any refusal may say, whatever the input.
const errorBodyMax = 64 << 10

// checkRefusal fails t unless err is a refusal the server answers with a 4xx: field errors or
// a status error, and short.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var (
		fe webhook.FieldErrors
		se *statusError
	)
	switch {
	case errors.As(err, &fe):
		if len(fe) == 0 {
			t.Fatalf("empty FieldErrors")
		}
	case errors.As(err, &se):
		if se.code < 400 || se.code > 499 {
			t.Fatalf("refusal with status %d: %v", se.code, err)
		}
	default:
		t.Fatalf("not a refusal (would be a 500): %T %v", err, err)
	}
	if n := len(err.Error()); n > errorBodyMax {
		t.Fatalf("refusal of %d bytes", n)
	}
}

var fuzzScopes = []webhook.Scope{
	{Org: "acme"},
	{Org: "acme", Project: "web", Stack: "prod"},
	{Org: "acme", Project: "app", Environment: "dev"},
}

// FuzzHookRequest decodes arbitrary create and update bodies as the hook endpoints do. A body
// is either refused with a 4xx that stays short, or gives a spec that validates; such a spec,
// sent the way the remote client sends it, decodes to the same spec.
//
//	go test ./provider/server -run '^$' -fuzz FuzzHookRequest -fuzztime 30s
func FuzzHookRequest(f *testing.F) {
	for _, seed := range []string{
		`{"organizationName":"acme","displayName":"d","payloadUrl":"https://example.com/h","active":true}`,
		`{"organizationName":"acme","displayName":"d","payloadUrl":"https://example.com/h","active":true,"name":"n","secret":"s","format":"slack","filters":["update_succeeded"],"groups":["stacks"]}`,
		`{"organizationName":"acme","projectName":"web","stackName":"prod","displayName":"d","payloadUrl":"web/next","active":false,"format":"pulumi_deployments"}`,
		`{"organizationName":"acme","projectName":"app","envName":"dev","displayName":"d","payloadUrl":"http://127.0.0.1:8080/","active":true,"groups":["environments"]}`,
		`{"PAYLOADURL":"x"}`, `{"displayName":null}`, `{"displayName":"a","displayName":"b"}`, `{"format":""}`,
		`{"filters":[]}`, `{"secret":""}`, `{"hasSecret":true,"secretCiphertext":"x"}`, `[]`, `null`, `{`, `{} {}`, "{\"displayName\":\"\x1b\"}",
		`{"payloadUrl":"http://h:65536/"}`, `{"name":".."}`, `{"active":"yes"}`, `{"filters":"x"}`, `{"filters":[1]}`,
	} {
		f.Add([]byte(seed), uint8(0), false)
		f.Add([]byte(seed), uint8(1), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, pick uint8, update bool) {
		scope := fuzzScopes[int(pick)%len(fuzzScopes)]
		var b api.Webhook
		if err := decodeStrict(body, &b); err != nil {
			checkRefusal(t, err)
			return
		}
		var (
			spec webhook.Spec
			err  error
		)
		if update {
			cur := &store.Hook{Spec: webhook.Spec{Scope: scope, Name: "h", DisplayName: "d", PayloadURL: "https://example.com/", Active: true, Format: webhook.FormatRaw}}
			spec, err = specForUpdate(cur, b)
		} else {
			spec, err = specForCreate(scope, b)
		}
		if err == nil {
			err = spec.Validate()
		}
		if err != nil {
			checkRefusal(t, err)
			return
		}
		var secret *string
		if spec.Secret != "" {
			secret = &spec.Secret
		}
		wire, err := json.Marshal(api.WebhookFromSpec(spec, secret))
		if err != nil {
			t.Fatal(err)
		}
		var again api.Webhook
		if err := decodeStrict(wire, &again); err != nil {
			t.Fatalf("the client's body %s is refused: %v", wire, err)
		}
		back, err := specForCreate(scope, again)
		if err != nil {
			t.Fatalf("the client's body %s is refused: %v", wire, err)
		}
		if !reflect.DeepEqual(back, spec) {
			t.Fatalf("round trip through the client's body changed the spec:\n got %+v\nwant %+v", back, spec)
		}
	})
}

// FuzzEmitRequest decodes arbitrary event bodies and idempotency keys as POST
// /api/orgs/{org}/events does, hands them to the engine's check (engine.EmitParams.Validate,
// with the webhook.Event rules) and builds the payload as the engine's Emit does. A request is
// either refused with a short 4xx, or gives a JSON object payload.
//
//	go test ./provider/server -run '^$' -fuzz FuzzEmitRequest -fuzztime 30s
func FuzzEmitRequest(f *testing.F) {
	for _, seed := range []string{
		`{"filter":"update_succeeded","projectName":"web","stackName":"prod"}`,
		`{"filter":"environment_created","projectName":"app","environmentName":"dev","payload":{"user":{"name":"ci"}}}`,
		`{"filter":"deployment_queued","projectName":"web","stackName":"prod","payload":{"version":3}}`,
		`{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":null}`,
		`{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":[1]}`,
		`{"Filter":"update_succeeded"}`, `{"filter":"ping"}`, `{"filter":"update_succeeded","stackName":".."}`,
		`{"filter":"update_succeeded","projectName":"web","stackName":"prod","payload":{"user":5}}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), "build-4711")
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		var req api.EmitRequest
		if err := decodeStrict(body, &req); err != nil {
			checkRefusal(t, err)
			return
		}
		p := emitParams("acme", req, key)
		if err := p.Validate(); err != nil {
			checkRefusal(t, emitError(err))
			return
		}
		if p.Filter.Subject() == "" || p.Subject.Validate() != nil {
			t.Fatalf("the engine accepted filter %q for subject %+v", p.Filter, p.Subject)
		}
		payload, err := render.Payload(render.PayloadParams{EventID: "00000000-0000-4000-8000-000000000000",
			Filter: p.Filter, Subject: p.Subject, Overrides: p.Overrides, Now: time.Unix(1700000000, 0)})
		if err != nil {
			checkRefusal(t, err) // a payload field of the wrong type
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(payload, &obj); err != nil {
			t.Fatalf("payload is not a JSON object: %v\n%s", err, payload)
		}
	})
}
