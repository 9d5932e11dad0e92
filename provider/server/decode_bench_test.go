package server

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
)

// BenchmarkDecodeEmit measures the strict decoding of the end-to-end benchmark's event
// request, the per-event work of the handler before the engine: decodeStrict alone (the key
// checks and the decoding), and decodeJSON on the request as it arrives (its Content-Type and
// reading the body too).
func BenchmarkDecodeEmit(b *testing.B) {
	body := []byte(`{"filter":"update_succeeded","projectName":"load","stackName":"s0","payload":{"benchSeq":4711}}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req api.EmitRequest
			if err := decodeStrict(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("request", func(b *testing.B) {
		r, err := http.NewRequest(http.MethodPost, "/api/orgs/acme/events", nil)
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		rd := bytes.NewReader(body)
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(body)
			r.Body = readCloser{rd}
			var req api.EmitRequest
			if err := decodeJSON(r, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
