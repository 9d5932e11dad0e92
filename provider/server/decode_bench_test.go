package server

import (
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

// BenchmarkDecodeEmit measures the strict decoding of the end-to-end benchmark's event
// request (decodeStrict: the key checks and the decoding), the per-event work of the handler
// before the engine.
func BenchmarkDecodeEmit(b *testing.B) {
	body := []byte(`{"filter":"update_succeeded","projectName":"load","stackName":"s0","payload":{"benchSeq":4711}}`)
	b.ReportAllocs()
	for b.Loop() {
		var req api.EmitRequest
		if err := decodeStrict(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}
