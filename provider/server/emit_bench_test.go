package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// BenchmarkEmitHandler measures one POST /api/orgs/{org}/events through the server's handler,
// as the end-to-end benchmark sends it, without HTTP transport and without delivery workers:
// authentication, strict decoding, the payload, and the store's durable emit transaction
// (one matching hook), which dominates.
func BenchmarkEmitHandler(b *testing.B) {
	srv := servertest.Start(b, servertest.Opts{Orgs: []string{"acme"}, NoWorkers: true})
	if _, err := createLoadHookWith(context.Background(), http.DefaultClient, srv, 0, "bench", "http://127.0.0.1:1/hook"); err != nil {
		b.Fatal(err)
	}
	h := srv.Server.Handler()
	body := `{"filter":"update_succeeded","projectName":"load","stackName":"s0","payload":{"benchSeq":4711}}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/orgs/acme/events", strings.NewReader(body))
		req.Header.Set("Authorization", "token "+srv.Tokens["acme"])
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
