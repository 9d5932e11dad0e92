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
