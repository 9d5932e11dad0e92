package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Benchmarks print their figures with b.ReportMetric. Each iteration runs a fixed workload,
// so run them once each:
//
//	go test -run '^$' -bench . -benchtime 1x ./provider/engine/

// benchEngine opens a store in a temporary directory and an engine on it.
func benchEngine(b *testing.B, mods ...func(*Config)) (*Engine, *sqlite.Store) {
	b.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db"), Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cfg := Config{Store: st, AllowTargets: loopback, Logger: slog.New(slog.DiscardHandler), PollInterval: 50 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e, st
}

// benchReceiver is a loopback endpoint that reads each body and answers 200, counting.
type benchReceiver struct {
	srv *httptest.Server
	n   atomic.Int64
	// onBody, when set, sees every body with its arrival time.
	onBody func(body []byte, at time.Time)
}

func newBenchReceiver(b *testing.B) *benchReceiver {
	r := &benchReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(req.Body)
		if r.onBody != nil {
			r.onBody(body, at)
		}
		r.n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func benchCreateHooks(b *testing.B, e *Engine, specs []webhook.Spec) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(specs); i += 4 {
				if _, err := e.HookCreate(ctx, specs[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func waitFor(b *testing.B, timeout time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("benchmark timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkDeliveryThroughput (1): sustained deliveries per second through the SQLite store,
// beside a plain net/http client, with the same bodies, the same receiver and the same
// concurrency.
//
//   - engine: 5,000 deliveries (100 events x 50 hooks, raw format, ~700-byte bodies, every hook
//     with a secret) are stored before the clock starts; timed is Start until the receiver
//     has all 5,000 and the queue is empty. Each delivery is claimed under a lease, signed
//     (two HMACs), posted with its headers, and its attempt (request and response headers
//     and bodies) recorded durably with the state change, by 8 workers with a per-endpoint
//     cap of 8. The claim loop records finished attempts and claims the next deliveries in
//     one store transaction per round, and a worker's slot is free again only once its
//     attempt is durable.
//   - plain: the same 5,000 bodies, read back from the store, posted by 8 goroutines with a
//     stock http.Client to the same receiver; nothing signed, nothing recorded.
//
// ratio = engine / plain (target >= 0.5). Both run on the same machine as the receiver.
func BenchmarkDeliveryThroughput(b *testing.B) {
	const (
		deliveries  = 5000
		concurrency = 8
		hooks       = 50
	)
	for range b.N {
		b.StopTimer()
		rc := newBenchReceiver(b)
		e, st := benchEngine(b, func(c *Config) { c.Workers = concurrency; c.PerEndpointLimit = concurrency })
		specs := make([]webhook.Spec, hooks)
		for i := range specs {
			specs[i] = hookSpec("h"+strconv.Itoa(i), rc.srv.URL+"/hook", func(s *webhook.Spec) { s.Secret = "bench-secret" })
		}
		benchCreateHooks(b, e, specs)
		ctx := context.Background()
		var bodies [][]byte
		for range deliveries / hooks {
			res, err := e.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
			if err != nil {
				b.Fatal(err)
			}
			ds, err := st.DeliveryListByEvent(ctx, res.EventID)
			if err != nil {
				b.Fatal(err)
			}
			for _, d := range ds {
				bodies = append(bodies, d.Body)
			}
		}
		b.StartTimer()

		start := time.Now()
		if err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 2*time.Minute, func() bool {
			if rc.n.Load() < deliveries {
				return false
			}
			s, err := e.QueueStats(ctx)
			return err == nil && s.Pending == 0 && s.Running == 0
		})
		engineElapsed := time.Since(start)
		if err := e.Stop(ctx); err != nil {
			b.Fatal(err)
		}

		plainElapsed := plainPosts(b, rc.srv.URL+"/hook", bodies, concurrency)
		engineRate := float64(deliveries) / engineElapsed.Seconds()
		plainRate := float64(deliveries) / plainElapsed.Seconds()
		b.ReportMetric(engineRate, "engine-deliveries/s")
		b.ReportMetric(plainRate, "plain-posts/s")
		b.ReportMetric(engineRate/plainRate, "ratio")
	}
}

// plainPosts posts every body with concurrency goroutines and a stock client; it returns how
// long that took.
func plainPosts(b *testing.B, url string, bodies [][]byte, concurrency int) time.Duration {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	work := make(chan []byte, len(bodies))
	for _, body := range bodies {
		work <- body
	}
	close(work)
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for body := range work {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		b.Fatalf("plain client: %d posts failed", n)
	}
	return elapsed
}

// BenchmarkEventToFirstAttempt (2): events emitted at 1,000 per second, each to one hook; the
// latency from calling Emit to the receiver getting the first attempt, p50 and p99.
func BenchmarkEventToFirstAttempt(b *testing.B) {
	const (
		rate   = 1000
		events = 3000
	)
	for range b.N {
		b.StopTimer()
		rc := newBenchReceiver(b)
		var mu sync.Mutex
		sent := make([]time.Time, events)
		lat := make([]time.Duration, 0, events)
		rc.onBody = func(body []byte, at time.Time) {
			var p struct {
				Seq int `json:"benchSeq"`
			}
			if json.Unmarshal(body, &p) != nil {
				return
			}
			mu.Lock()
			lat = append(lat, at.Sub(sent[p.Seq]))
			mu.Unlock()
		}
		e, _ := benchEngine(b, func(c *Config) { c.Workers = 16; c.PerEndpointLimit = 16 })
		benchCreateHooks(b, e, []webhook.Spec{hookSpec("lat", rc.srv.URL+"/lat")})
		ctx := context.Background()
		if err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		start := time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		var emitErr atomic.Value
		for range 4 { // enough emitters that one slow commit does not hold back the schedule
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= events {
						return
					}
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
					mu.Lock()
					sent[i] = time.Now()
					mu.Unlock()
					_, err := e.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject,
						Overrides: json.RawMessage(`{"benchSeq": ` + strconv.Itoa(i) + `}`)})
					if err != nil {
						emitErr.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		achieved := float64(events) / time.Since(start).Seconds()
		if err := emitErr.Load(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, time.Minute, func() bool { return rc.n.Load() >= events })
		b.StopTimer()
		if err := e.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		mu.Unlock()
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(achieved, "events/s")
		b.StartTimer()
	}
}

// BenchmarkFanOut10000 (3): one event matching 10,000 hooks; the time Emit takes to store the
// event and its 10,000 deliveries durably. Each iteration emits fanOutEmits events.
func BenchmarkFanOut10000(b *testing.B) {
	const (
		hooks       = 10000
		fanOutEmits = 5
	)
	e, _ := benchEngine(b)
	specs := make([]webhook.Spec, hooks)
	for i := range specs {
		specs[i] = hookSpec("fan"+strconv.Itoa(i), fmt.Sprintf("https://receiver%d.example.com/hook", i%100))
	}
	benchCreateHooks(b, e, specs)
	ctx := context.Background()
	b.ResetTimer()
	var times []time.Duration
	for range b.N {
		for range fanOutEmits {
			start := time.Now()
			res, err := e.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
			times = append(times, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if res.Deliveries != hooks {
				b.Fatalf("%d deliveries, want %d", res.Deliveries, hooks)
			}
		}
	}
	reportDurations(b, times, "enqueue")
}

// reportDurations reports the mean, median and worst of times in milliseconds.
func reportDurations(b *testing.B, times []time.Duration, what string) {
	slices.Sort(times)
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(sum/time.Duration(len(times))), "mean-ms/"+what)
	b.ReportMetric(ms(times[len(times)/2]), "p50-ms/"+what)
	b.ReportMetric(ms(times[len(times)-1]), "max-ms/"+what)
}

// BenchmarkMatching (4): Emit for one stack with 100,000 hooks spread over 1,000 stacks
// against Emit with only that stack's 100 hooks in the store. Both deliver to 100 hooks; the
// cost must not grow with the 99,900 unrelated ones. Each iteration emits matchingEmits events.
func BenchmarkMatching(b *testing.B) {
	const (
		perStack      = 100
		matchingEmits = 100
	)
	for _, stacks := range []int{1, 1000} {
		b.Run(fmt.Sprintf("hooks=%d", stacks*perStack), func(b *testing.B) {
			e, _ := benchEngine(b)
			specs := make([]webhook.Spec, 0, stacks*perStack)
			for s := range stacks {
				scope := webhook.Scope{Org: "acme", Project: "web", Stack: "s" + strconv.Itoa(s)}
				for h := range perStack {
					specs = append(specs, webhook.Spec{Scope: scope, Name: "h" + strconv.Itoa(h), DisplayName: "h",
						PayloadURL: "https://receiver.example.com/" + strconv.Itoa(h), Active: true,
						Filters: []webhook.Filter{webhook.UpdateSucceeded}})
				}
			}
			start := time.Now()
			benchCreateHooks(b, e, specs)
			b.Logf("created %d hooks in %s", len(specs), time.Since(start).Round(time.Millisecond))
			subject := webhook.Scope{Org: "acme", Project: "web", Stack: "s" + strconv.Itoa(stacks/2)}
			ctx := context.Background()
			b.ResetTimer()
			var times []time.Duration
			for range b.N {
				for range matchingEmits {
					start := time.Now()
					res, err := e.Emit(ctx, EmitParams{Filter: webhook.UpdateSucceeded, Subject: subject})
					times = append(times, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					if res.Deliveries != perStack {
						b.Fatalf("%d deliveries, want %d", res.Deliveries, perStack)
					}
				}
			}
			reportDurations(b, times, "emit")
		})
	}
}
