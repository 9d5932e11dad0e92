package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// loadShape is a load run: clients send requests in all, one in five creating a hook and the
// rest emitting events to stacks, while the workers deliver to receivers.
type loadShape struct {
	clients, requests, stacks, receivers int
}

// benchLoad is the benchmark's load; testLoad is a smaller one that still has many clients
// creating hooks and emitting events at once, for the test that runs every time.
var (
	benchLoad = loadShape{clients: 20, requests: 2000, stacks: 10, receivers: 4}
	testLoad  = loadShape{clients: 8, requests: 240, stacks: 4, receivers: 2}
)

// loadFigures are what a load run measured.
type loadFigures struct {
	latencies  []time.Duration // of every request, sorted
	elapsed    time.Duration   // until the last request was answered
	delivered  time.Duration   // until the last delivery arrived
	deliveries int
}

// TestAPILoad runs testLoad: no request fails, and every delivery the events produced
// arrives exactly once, signed.
func TestAPILoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("sends a few hundred requests")
	}
	f := newLoad(t, testLoad).run()
	t.Logf("%d requests from %d clients in %s; %d deliveries all arrived after %s",
		len(f.latencies), testLoad.clients, f.elapsed.Round(time.Millisecond), f.deliveries, f.delivered.Round(time.Millisecond))
}

// BenchmarkAPILoad measures the API under concurrent load with deliveries running, with the
// checks of TestAPILoad. Run it with
//
//	go test ./provider/server -run '^$' -bench APILoad -benchtime 1x
//
// It reports requests/s, p50 and p99 request latency, and deliveries/s.
func BenchmarkAPILoad(b *testing.B) {
	for range b.N {
		b.StopTimer()
		l := newLoad(b, benchLoad)
		b.StartTimer()
		f := l.run()
		b.StopTimer()
		pct := func(p float64) float64 {
			return float64(f.latencies[int(p*float64(len(f.latencies)-1))].Microseconds()) / 1000
		}
		rate := float64(len(f.latencies)) / f.elapsed.Seconds()
		b.ReportMetric(rate, "req/s")
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(f.deliveries)/f.delivered.Seconds(), "deliveries/s")
		b.ReportMetric(float64(f.deliveries), "deliveries")
		b.Logf("%d requests from %d clients in %s: %.0f req/s, p50 %.1f ms, p99 %.1f ms; %d deliveries all arrived after %s",
			len(f.latencies), benchLoad.clients, f.elapsed.Round(time.Millisecond), rate,
			pct(0.50), pct(0.99), f.deliveries, f.delivered.Round(time.Millisecond))
		b.StartTimer()
	}
}

// load is a server with its receivers, ready for a load run.
type load struct {
	t     testing.TB
	shape loadShape
	srv   *servertest.Bundle
	rcvs  []*servertest.Receiver
}

// newLoad starts the server and the receivers and gives every stack one hook, so every event
// has somewhere to go.
func newLoad(t testing.TB, shape loadShape) *load {
	t.Helper()
	l := &load{t: t, shape: shape}
	l.srv = servertest.Start(t, servertest.Opts{Orgs: []string{"acme"}, Engine: func(c *engine.Config) {
		c.Workers, c.PerEndpointLimit = 8, 8
	}})
	l.rcvs = make([]*servertest.Receiver, shape.receivers)
	for i := range l.rcvs {
		l.rcvs[i] = servertest.NewReceiver(t)
	}
	for s := range shape.stacks {
		if _, err := createLoadHookWith(t.Context(), http.DefaultClient, l.srv, s, fmt.Sprintf("seed-%d", s), l.rcvs[s%shape.receivers].URL()); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// run sends the load, then waits for the deliveries. It fails the test if a request failed,
// or a delivery was lost or arrived twice, or work is left in the queue.
func (l *load) run() loadFigures {
	t, shape := l.t, l.shape
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitfor.Limit)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: shape.clients}}
	defer hc.CloseIdleConnections()

	var (
		mu         sync.Mutex
		f          loadFigures
		errs       []error
		emits      int
		deliveries int
	)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range shape.clients {
		wg.Go(func() {
			for i := range shape.requests / shape.clients {
				if ctx.Err() != nil {
					return
				}
				stack := (c*7 + i) % shape.stacks
				t0 := time.Now()
				var n int
				var err error
				emit := i%5 != 0
				if !emit {
					// Most new hooks go to stacks nobody emits to, one in eight to a busy one.
					target := shape.stacks + stack
					if i%40 == 0 {
						target = stack
					}
					_, err = createLoadHookWith(ctx, hc, l.srv, target, fmt.Sprintf("c%d-%d", c, i), l.rcvs[(c+i)%shape.receivers].URL())
				} else {
					n, err = emitLoad(ctx, hc, l.srv, stack)
				}
				d := time.Since(t0)
				mu.Lock()
				f.latencies = append(f.latencies, d)
				deliveries += n
				if emit && err == nil {
					emits++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	f.elapsed = time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", len(errs), len(f.latencies), errs[0])
	}
	if want := shape.requests / shape.clients * shape.clients; len(f.latencies) != want {
		t.Fatalf("only %d of %d requests were sent within %s", len(f.latencies), want, waitfor.Limit)
	}
	// Every stack emitted to has its seed hook at least, so no event may go nowhere.
	if deliveries < emits {
		t.Fatalf("%d events produced %d deliveries; every event has at least its stack's seed hook", emits, deliveries)
	}

	// No lost delivery: every delivery the events produced arrives, signed, exactly once per ID.
	waitfor.NoError(t, func() error {
		total := 0
		for _, r := range l.rcvs {
			total += len(r.Requests())
		}
		if total < deliveries {
			return fmt.Errorf("%d of %d deliveries arrived", total, deliveries)
		}
		return nil
	})
	f.delivered = time.Since(start)
	f.deliveries = deliveries
	seen := map[string]bool{}
	for _, r := range l.rcvs {
		for _, req := range r.Requests() {
			id := req.Header.Get(signature.HeaderID)
			if seen[id] {
				t.Errorf("delivery %s arrived twice", id)
			}
			seen[id] = true
			if err := signature.Verify("load-secret", req.Header.Get(signature.HeaderSignature), req.Body); err != nil {
				t.Errorf("delivery %s: %v", id, err)
			}
		}
	}
	if len(seen) != deliveries {
		t.Errorf("%d distinct deliveries arrived, the events produced %d", len(seen), deliveries)
	}
	// A delivery arrives before its worker records it done: wait for the queue to empty.
	waitfor.NoError(t, func() error {
		stats, err := l.srv.Engine.QueueStats(context.Background())
		if err != nil || stats.Pending != 0 || stats.Running != 0 {
			return fmt.Errorf("queue after the load: %+v, %v", stats, err)
		}
		return nil
	})
	slices.Sort(f.latencies)
	return f
}

func createLoadHookWith(ctx context.Context, hc *http.Client, srv *servertest.Bundle, stack int, name, url string) (*api.WebhookResponse, error) {
	body := map[string]any{
		"organizationName": "acme", "projectName": "load", "stackName": fmt.Sprintf("s%d", stack),
		"name": name, "displayName": name, "payloadUrl": url, "active": true, "secret": "load-secret",
		"filters": []string{"update_succeeded"},
	}
	var out api.WebhookResponse
	err := loadCall(ctx, hc, srv, fmt.Sprintf("/api/stacks/acme/load/s%d/hooks", stack), body, http.StatusCreated, &out)
	return &out, err
}

func emitLoad(ctx context.Context, hc *http.Client, srv *servertest.Bundle, stack int) (int, error) {
	var out api.EmitResponse
	err := loadCall(ctx, hc, srv, "/api/orgs/acme/events",
		map[string]any{"filter": "update_succeeded", "projectName": "load", "stackName": fmt.Sprintf("s%d", stack)}, http.StatusAccepted, &out)
	return out.Deliveries, err
}

func loadCall(ctx context.Context, hc *http.Client, srv *servertest.Bundle, path string, body any, want int, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+srv.Tokens["acme"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
