package render

import (
	"encoding/json"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// BenchmarkPayloadAndRender measures building one update payload with overrides and rendering
// it for Slack and Teams: the per-event, per-hook work Emit does before storing deliveries.
func BenchmarkPayloadAndRender(b *testing.B) {
	overrides := json.RawMessage(`{"user":{"name":"Morty Smith","githubLogin":"morty"},"resourceChanges":{"update":3,"delete":1},"extra":[1,2,3]}`)
	p := PayloadParams{EventID: testEventID, Filter: webhook.UpdateSucceeded, Subject: stackScope, Overrides: overrides, ConsoleURL: testConsole, Now: testNow}
	b.ReportAllocs()
	for b.Loop() {
		payload, err := Payload(p)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range []webhook.Format{webhook.FormatSlack, webhook.FormatMicrosoftTeams} {
			if _, err := Render(f, Input{Filter: p.Filter, Subject: p.Subject, Payload: payload, ConsoleURL: testConsole}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPayload measures Payload alone, the per-event work the server does before the
// emit transaction: with the end-to-end benchmark's overrides (one field the payload does not
// have), with overrides of known fields (checked, applied, links derived again), and with none.
func BenchmarkPayload(b *testing.B) {
	for _, c := range []struct {
		name      string
		overrides string
	}{
		{"unknown-override", `{"benchSeq":4711}`},
		{"known-overrides", `{"user":{"name":"Morty Smith","githubLogin":"morty"},"resourceChanges":{"update":3,"delete":1},"extra":[1,2,3]}`},
		{"none", ``},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := PayloadParams{
				EventID: testEventID, Filter: webhook.UpdateSucceeded, Subject: stackScope,
				Overrides: json.RawMessage(c.overrides), ConsoleURL: testConsole, Now: testNow,
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Payload(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckOverrides measures the check of an event request's overrides
// (engine.EmitParams.Validate runs it before Payload) on the end-to-end benchmark's overrides.
func BenchmarkCheckOverrides(b *testing.B) {
	raw := json.RawMessage(`{"benchSeq":4711}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckOverrides(raw); err != nil {
			b.Fatal(err)
		}
	}
}
