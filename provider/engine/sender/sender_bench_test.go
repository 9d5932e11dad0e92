package sender

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSend posts the same signed body to a loopback receiver through the Sender and,
// for comparison, through a plain net/http client with the same concurrency. Each reports
// deliveries/s; the Sender's overhead is the guard, the signing and the recording.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	body := bytes.Repeat([]byte(`{"projectName":"website","stackName":"prod"},`), 20)

	b.Run("sender", func(b *testing.B) {
		s, err := New(Config{AllowTargets: loopback, Timeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.SetParallelism(4)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res := s.Send(context.Background(), Request{URL: srv.URL, DeliveryID: "dlv_bench", Kind: "stack_update", Body: body, Secret: "bench-secret"})
				if res.Outcome != Succeeded {
					panic(fmt.Sprintf("send: %s %s", res.Outcome, res.Attempt.Error))
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	})

	b.Run("plain", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		b.SetParallelism(4)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					panic(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
	})
}
