package render

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// FuzzRender feeds arbitrary overrides to Payload and arbitrary payloads to Render. Payload
// either succeeds or returns FieldErrors; what it builds renders in every HTTP format to
// valid JSON; Render never panics and renders any JSON object.
//
//	go test ./provider/engine/render -run '^$' -fuzz FuzzRender -fuzztime 30s
func FuzzRender(f *testing.F) {
	for i, seed := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"a":1} {}`, "{\"stackName\":\"\xff\"}",
		`{"user":{"name":"Morty Smith","githubLogin":"morty","avatarUrl":"https://crazy-adventures.net/morty.png"}}`,
		`{"version":127}`, `{"version":"127"}`, `{"version":1.5}`, `{"version":-9223372036854775808}`,
		`{"resourceChanges":{"update":3,"delete":1}}`, `{"resourceChanges":[]}`, `{"resourceChanges":{"x":null}}`,
		`{"user":5,"organization":[],"stackName":{"a":[{}]},"updateUrl":"javascript:x"}`,
		`{"deploymentUrl":"https://x.example/a|b>c","environmentUrl":"http://\u0000"}`,
		`{"stackName":"<!here> & <b>","tagName":"` + "\u202e" + `"}`,
		`{"a":{"b":{"c":{"d":[[[[[]]]]]}}}}`, `{"previousRevision":null,"revision":0}`,
		`{"organization":{"githubLogin":""},"projectName":"","stackName":"","environmentName":""}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	all := events()
	f.Fuzz(func(t *testing.T, pick uint8, data []byte) {
		filter := all[int(pick)%len(all)]
		subject := subjectFor(filter)
		payload, err := Payload(PayloadParams{
			EventID: testEventID, Filter: filter, Subject: subject, Overrides: json.RawMessage(data),
			ConsoleURL: testConsole, Now: testNow,
		})
		if err != nil {
			var fe webhook.FieldErrors
			if !errors.As(err, &fe) || len(fe) == 0 {
				t.Fatalf("Payload error %T %v, want webhook.FieldErrors", err, err)
			}
		} else {
			if !json.Valid(payload) {
				t.Fatalf("Payload built invalid JSON: %q", payload)
			}
			for _, format := range httpFormats() {
				out, err := Render(format, Input{Filter: filter, Subject: subject, Payload: payload, ConsoleURL: testConsole})
				if err != nil {
					t.Fatalf("Render(%s) of a built payload: %v", format, err)
				}
				if !json.Valid(out) {
					t.Fatalf("Render(%s) built invalid JSON: %q", format, out)
				}
			}
		}
		// The fuzzed bytes as a stored payload: any JSON object renders; anything else is an
		// error, never a panic.
		var obj map[string]any
		isObject := json.Unmarshal(data, &obj) == nil && obj != nil
		for _, format := range []webhook.Format{webhook.FormatSlack, webhook.FormatMicrosoftTeams} {
			out, err := Render(format, Input{Filter: filter, Subject: subject, Payload: data, ConsoleURL: testConsole})
			switch {
			case isObject && err != nil:
				t.Fatalf("Render(%s) of a JSON object: %v", format, err)
			case err == nil && !json.Valid(out):
				t.Fatalf("Render(%s) built invalid JSON: %q", format, out)
			}
		}
	})
}
