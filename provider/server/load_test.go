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

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// Load test shape: loadClients clients send loadRequests requests in all, one in five
// creating a hook and the rest emitting events to loadStacks stacks, while the workers
// deliver; everything must finish within loadCap.
const (
	loadClients   = 20
	loadRequests  = 2000
	loadStacks    = 10
	loadReceivers = 4
	loadCap       = 30 * time.Second
)

// BenchmarkAPILoad measures the API under concurrent load with deliveries running, and checks
// that no request failed and no delivery was lost. Run it with
//
//	go test ./provider/server -run '^$' -bench APILoad -benchtime 1x
//
// It reports requests/s, p50 and p99 request latency, and deliveries/s.
func BenchmarkAPILoad(b *testing.B) {
	for range b.N {
		runLoad(b)
	}
}

func runLoad(b *testing.B) {
	b.StopTimer()
	srv := servertest.Start(b, servertest.Opts{Orgs: []string{"acme"}, Engine: func(c *engine.Config) {
		c.Workers, c.PerEndpointLimit = 8, 8
	}})
	rcvs := make([]*servertest.Receiver, loadReceivers)
	for i := range rcvs {
		rcvs[i] = servertest.NewReceiver(b)
	}
	// Every stack starts with one hook, so every event has somewhere to go.
	for s := range loadStacks {
		if _, err := createLoadHook(srv, s, fmt.Sprintf("seed-%d", s), rcvs[s%loadReceivers].URL()); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadCap)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: loadClients}}

	var (
		mu         sync.Mutex
		latencies  []time.Duration
		errs       []error
		deliveries int
	)
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range loadClients {
		wg.Go(func() {
			for i := range loadRequests / loadClients {
				if ctx.Err() != nil {
					return
				}
				stack := (c*7 + i) % loadStacks
				t0 := time.Now()
				var n int
				var err error
				if i%5 == 0 {
					// Most new hooks go to stacks nobody emits to, one in eight to a busy one.
					target := loadStacks + stack
					if i%40 == 0 {
						target = stack
					}
					_, err = createLoadHookWith(ctx, hc, srv, target, fmt.Sprintf("c%d-%d", c, i), rcvs[(c+i)%loadReceivers].URL())
				} else {
					n, err = emitLoad(ctx, hc, srv, stack)
				}
				d := time.Since(t0)
				mu.Lock()
				latencies = append(latencies, d)
				deliveries += n
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) > 0 {
		b.Fatalf("%d of %d requests failed; first: %v", len(errs), len(latencies), errs[0])
	}
	if len(latencies) != loadRequests {
		b.Fatalf("only %d of %d requests were sent within %s", len(latencies), loadRequests, loadCap)
	}

	// No lost delivery: every delivery the events produced arrives, signed, exactly once per ID.
	seen := map[string]bool{}
	for {
		total := 0
		for _, r := range rcvs {
			total += len(r.Requests())
		}
		if total >= deliveries {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("only %d of %d deliveries arrived within %s", total, deliveries, loadCap)
		}
		time.Sleep(20 * time.Millisecond)
	}
	delivered := time.Since(start)
	b.StopTimer()
	for _, r := range rcvs {
		for _, req := range r.Requests() {
			id := req.Header.Get(signature.HeaderID)
			if seen[id] {
				b.Errorf("delivery %s arrived twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != deliveries {
		b.Errorf("%d distinct deliveries arrived, the events produced %d", len(seen), deliveries)
	}
	stats, err := srv.Engine.QueueStats(context.Background())
	if err != nil || stats.Pending != 0 || stats.Running != 0 {
		b.Errorf("queue after the load: %+v, %v", stats, err)
	}

	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(deliveries)/delivered.Seconds(), "deliveries/s")
	b.ReportMetric(float64(deliveries), "deliveries")
	b.StartTimer()
	b.Logf("%d requests from %d clients in %s: %.0f req/s, p50 %.1f ms, p99 %.1f ms; %d deliveries all arrived after %s",
		len(latencies), loadClients, elapsed.Round(time.Millisecond), float64(len(latencies))/elapsed.Seconds(),
		pct(0.50), pct(0.99), deliveries, delivered.Round(time.Millisecond))
}

func createLoadHook(srv *servertest.Bundle, stack int, name, url string) (*api.WebhookResponse, error) {
	return createLoadHookWith(context.Background(), http.DefaultClient, srv, stack, name, url)
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
