package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/cputime"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// The end-to-end benchmark drives POST /api/orgs/{org}/events over HTTP with many clients and
// measures, in the same run and with the same clients, bodies and receivers:
//
//   - server: the whole server (authentication, rate limiting, strict decoding, a durable emit
//     whose commit is fsynced before the 202, then claim, sign, post and record by the
//     delivery workers);
//   - plain: a stock net/http handler that decodes the same request, answers 202 and hands the
//     payload to as many goroutines as the server has workers, which post it to the same
//     receiver with a stock client: nothing stored, signed or recorded.
//
// Each event goes to exactly one hook (one per endpoint; event i to endpoint i mod
// endpoints), so deliveries equal events. Run it with
//
//	go test ./provider/server -run '^$' -bench EndToEnd -benchtime 1x
//
// TestEndToEndCounts runs the same code at a bounded size on every test run.

// e2eShape is one end-to-end run: clients send events in all to endpoints receivers, as fast
// as they can (rate 0) or at rate events per second in total.
type e2eShape struct {
	clients, events, endpoints, rate int
	// workers is the delivery concurrency of both targets (the server's workers, the plain
	// relay's goroutines), and the server's per-endpoint and per-organization caps; 0 means
	// e2eWorkers.
	workers int
}

// e2eWorkers is a shape's delivery concurrency unless it names one.
const e2eWorkers = 16

// e2eFigures are what one run measured.
type e2eFigures struct {
	accepted  float64       // events/s: events over the time until the last 202
	delivered float64       // deliveries/s: events over the time until the last first arrival
	p50, p99  time.Duration // from sending an event to its first delivery attempt arriving
	rssMiB    float64       // the test process's largest resident set during the run
	// cpuPerEvent is the process's CPU time (µs) from the first request to the last delivery,
	// over the events.
	cpuPerEvent float64
}

// e2eTarget is what the clients post events to.
type e2eTarget struct {
	url, token string
	// idle reports whether the target has nothing left to deliver.
	idle func(context.Context) error
}

// e2eReceivers are the endpoints: loopback servers counting each event's arrivals by the
// benchSeq field of the body, and the time of its first.
type e2eReceivers struct {
	// workers is the run's delivery concurrency (e2eShape.workers), for the target to use.
	workers int
	srvs    []*httptest.Server
	mu      sync.Mutex
	arrived []int
	first   []time.Time
	n       atomic.Int64
}

func newE2EReceivers(t testing.TB, endpoints, events int) *e2eReceivers {
	r := &e2eReceivers{arrived: make([]int, events), first: make([]time.Time, events)}
	for range endpoints {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			at := time.Now()
			body, _ := io.ReadAll(req.Body)
			var p struct {
				Seq *int `json:"benchSeq"`
			}
			if json.Unmarshal(body, &p) == nil && p.Seq != nil && *p.Seq >= 0 && *p.Seq < events {
				r.mu.Lock()
				if r.arrived[*p.Seq] == 0 {
					r.first[*p.Seq] = at
				}
				r.arrived[*p.Seq]++
				r.mu.Unlock()
				r.n.Add(1)
			}
			w.WriteHeader(http.StatusOK)
		}))
		t.Cleanup(srv.Close)
		r.srvs = append(r.srvs, srv)
	}
	return r
}

// startE2EServer starts the server with one hook per endpoint, on stack s{i}.
func startE2EServer(t testing.TB, rc *e2eReceivers) e2eTarget {
	t.Helper()
	srv := servertest.Start(t, servertest.Opts{Orgs: []string{"acme"}, Engine: func(c *engine.Config) {
		c.Workers, c.PerEndpointLimit, c.PerOrgLimit = rc.workers, rc.workers, rc.workers
	}})
	for i, r := range rc.srvs {
		if _, err := createLoadHookWith(t.Context(), http.DefaultClient, srv, i, fmt.Sprintf("e2e-%d", i), r.URL+"/hook"); err != nil {
			t.Fatal(err)
		}
	}
	return e2eTarget{url: srv.URL, token: srv.Tokens["acme"], idle: func(ctx context.Context) error {
		s, err := srv.Engine.QueueStats(ctx)
		if err == nil && (s.Pending != 0 || s.Running != 0) {
			err = fmt.Errorf("queue not empty: %+v", s)
		}
		return err
	}}
}

// startE2EPlain starts the plain relay: it checks that a token is present, decodes the same
// request strictly, answers 202 and posts the payload to stack s{i}'s receiver from
// rc.workers goroutines.
func startE2EPlain(t testing.TB, rc *e2eReceivers) e2eTarget {
	t.Helper()
	type job struct {
		url  string
		body []byte
	}
	jobs := make(chan job, 1<<16)
	var pending atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: rc.workers}}
	var wg sync.WaitGroup
	for range rc.workers {
		wg.Go(func() {
			for j := range jobs {
				resp, err := client.Post(j.url, "application/json", bytes.NewReader(j.body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				pending.Add(-1)
			}
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/orgs/{org}/events", func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.Header.Get("Authorization"), "token ") {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
		dec.DisallowUnknownFields()
		var in api.EmitRequest
		if err := dec.Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		i, err := strconv.Atoi(strings.TrimPrefix(in.StackName, "s"))
		if err != nil || i < 0 || i >= len(rc.srvs) {
			http.Error(w, "no such stack", http.StatusNotFound)
			return
		}
		pending.Add(1)
		jobs <- job{url: rc.srvs[i].URL + "/hook", body: in.Payload}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(api.EmitResponse{EventID: "plain", Deliveries: 1})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		close(jobs)
		wg.Wait()
		client.CloseIdleConnections()
	})
	return e2eTarget{url: srv.URL, token: "plain", idle: func(context.Context) error {
		if n := pending.Load(); n != 0 {
			return fmt.Errorf("%d posts pending", n)
		}
		return nil
	}}
}

// runE2E sends shape's events to target and waits until every one has arrived. It fails t
// if a request failed, an event was not delivered, or one was delivered twice.
func runE2E(t testing.TB, shape e2eShape, start func(testing.TB, *e2eReceivers) e2eTarget) e2eFigures {
	t.Helper()
	rc := newE2EReceivers(t, shape.endpoints, shape.events)
	rc.workers = cmp.Or(shape.workers, e2eWorkers)
	target := start(t, rc)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: shape.clients}}
	defer hc.CloseIdleConnections()
	debug.FreeOSMemory()
	stopRSS := sampleRSS()

	ctx, cancel := context.WithTimeout(t.Context(), waitfor.Limit)
	defer cancel()
	sent := make([]time.Time, shape.events)
	var (
		next    atomic.Int64
		failed  atomic.Int64
		firstEr atomic.Value
		wg      sync.WaitGroup
	)
	begin, cpu0 := time.Now(), cputime.Process()
	for range shape.clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= shape.events || ctx.Err() != nil {
					return
				}
				if shape.rate > 0 {
					time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(shape.rate))))
				}
				body := `{"filter":"update_succeeded","projectName":"load","stackName":"s` + strconv.Itoa(i%shape.endpoints) +
					`","payload":{"benchSeq":` + strconv.Itoa(i) + `}}`
				sent[i] = time.Now() // each index is written by one client only, before its delivery can arrive
				if err := e2ePost(ctx, hc, target, body); err != nil {
					failed.Add(1)
					firstEr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	acceptedIn := time.Since(begin)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d events were refused or failed; first: %v", n, shape.events, firstEr.Load())
	}
	waitfor.NoError(t, func() error {
		if n := rc.n.Load(); n < int64(shape.events) {
			return fmt.Errorf("%d of %d events delivered", n, shape.events)
		}
		return target.idle(ctx)
	})
	cpu := cputime.Process() - cpu0
	rss := stopRSS()

	rc.mu.Lock()
	defer rc.mu.Unlock()
	lat := make([]time.Duration, 0, shape.events)
	var last time.Time
	for i, n := range rc.arrived {
		if n != 1 {
			t.Errorf("event %d was delivered %d times, want once", i, n)
			continue
		}
		lat = append(lat, rc.first[i].Sub(sent[i]))
		if rc.first[i].After(last) {
			last = rc.first[i]
		}
	}
	if len(lat) == 0 {
		t.Fatal("no event was delivered exactly once")
	}
	slices.Sort(lat)
	return e2eFigures{
		accepted:  float64(shape.events) / acceptedIn.Seconds(),
		delivered: float64(shape.events) / last.Sub(begin).Seconds(),
		p50:       lat[len(lat)/2], p99: lat[len(lat)*99/100],
		rssMiB:      rss,
		cpuPerEvent: float64(cpu.Microseconds()) / float64(shape.events),
	}
}

func e2ePost(ctx context.Context, hc *http.Client, target e2eTarget, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.url+"/api/orgs/acme/events", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+target.token)
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
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST events: %d %s", resp.StatusCode, b)
	}
	var out api.EmitResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if out.Deliveries != 1 {
		return fmt.Errorf("POST events: %d deliveries, want 1", out.Deliveries)
	}
	return nil
}

// sampleRSS samples the process's resident set every 20 ms until the returned function is
// called, which returns the largest sample in MiB (0 where /proc is missing).
func sampleRSS() func() float64 {
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	sample := func() {
		if kib := readRSSKiB(); kib > peak.Load() {
			peak.Store(kib)
		}
	}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-stopped
		sample()
		return float64(peak.Load()) / 1024
	}
}

// readRSSKiB returns VmRSS from /proc/self/status, or 0.
func readRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// e2eShapes are the benchmark's runs: as fast as the clients can to one endpoint and to many,
// and at 1,000 events/s to one endpoint for the latency target.
var e2eShapes = []struct {
	name  string
	shape e2eShape
}{
	{"one-endpoint", e2eShape{clients: 32, events: 6000, endpoints: 1}},
	{"many-endpoints", e2eShape{clients: 32, events: 6000, endpoints: 16}},
	{"paced-1000", e2eShape{clients: 16, events: 3000, endpoints: 1, rate: 1000}},
	// The same floods with 32 workers (and 32 plain goroutines): delivering 5,000 a second
	// needs slots for 5,000 times what each holds one, its post plus the wait for the round
	// that records it, about 3 ms when the emits keep the store busy.
	{"one-endpoint-32-workers", e2eShape{clients: 32, events: 6000, endpoints: 1, workers: 32}},
	{"many-endpoints-32-workers", e2eShape{clients: 32, events: 6000, endpoints: 16, workers: 32}},
}

// BenchmarkEndToEnd runs each shape through the plain relay and through the server, one after
// the other, and reports each figure of the server beside the plain relay's.
func BenchmarkEndToEnd(b *testing.B) {
	for _, s := range e2eShapes {
		b.Run(s.name, func(b *testing.B) {
			for range b.N {
				plain := runE2E(b, s.shape, startE2EPlain)
				server := runE2E(b, s.shape, startE2EServer)
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(server.accepted, "server-accepted/s")
				b.ReportMetric(plain.accepted, "plain-accepted/s")
				b.ReportMetric(server.delivered, "server-deliveries/s")
				b.ReportMetric(plain.delivered, "plain-deliveries/s")
				b.ReportMetric(ms(server.p50), "server-p50-ms")
				b.ReportMetric(ms(server.p99), "server-p99-ms")
				b.ReportMetric(ms(plain.p50), "plain-p50-ms")
				b.ReportMetric(ms(plain.p99), "plain-p99-ms")
				b.ReportMetric(server.rssMiB, "server-rss-MiB")
				b.ReportMetric(plain.rssMiB, "plain-rss-MiB")
				// CPU of the whole process (clients and receivers included in both) from the
				// first request to the last delivery, per event: steadier than the rates on a
				// shared machine.
				b.ReportMetric(server.cpuPerEvent, "server-cpu-us/event")
				b.ReportMetric(plain.cpuPerEvent, "plain-cpu-us/event")
			}
		})
	}
}

// TestEndToEndCounts runs BenchmarkEndToEnd's code at a bounded size, through both targets: no
// request fails, and every event is delivered exactly once.
func TestEndToEndCounts(t *testing.T) {
	t.Parallel()
	for _, s := range []e2eShape{
		{clients: 8, events: 300, endpoints: 1},
		{clients: 8, events: 300, endpoints: 4},
		{clients: 4, events: 100, endpoints: 1, rate: 1000},
	} {
		for name, start := range map[string]func(testing.TB, *e2eReceivers) e2eTarget{"plain": startE2EPlain, "server": startE2EServer} {
			f := runE2E(t, s, start)
			if f.accepted <= 0 || f.delivered <= 0 || f.p99 < f.p50 {
				t.Errorf("%s %+v: figures %+v", name, s, f)
			}
		}
	}
}
