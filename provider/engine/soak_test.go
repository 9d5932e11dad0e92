package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The soak runs a long, rough delivery workload through real processes: events emitted while
// delivery processes are SIGKILLed and restarted on the same SQLite file, to four endpoints
// that behave as endpoints in the wild do.
//
//   - ok answers 200;
//   - flaky answers a third of the deliveries 500 on the first attempt and another third 503
//     with Retry-After: 1 (each later attempt 200);
//   - slow holds one delivery in ten past the attempt timeout on its first attempt;
//   - gone answers 410, which disables its hook.
//
// It reports deliveries lost (a delivery to ok, flaky or slow that never got a 2xx or did not
// end succeeded; must be 0), duplicates (2xx answers beyond the first per delivery: at most
// the attempts in flight at each kill), the store's size on disk and the delivery processes'
// peak RSS.

// soakResult is what one soak measured.
type soakResult struct {
	events, deliveries, lost, duplicates, restarts int
	storeBytes, peakRSS                            int64
	elapsed                                        time.Duration
}

// soakEndpoint is one loopback endpoint of the soak, counting answers per delivery.
type soakEndpoint struct {
	srv      *httptest.Server
	mu       sync.Mutex
	attempts map[string]int // requests per delivery ID
	ok       map[string]int // 2xx answers per delivery ID
}

func newSoakEndpoint(t testing.TB, answer func(id string, attempt int, w http.ResponseWriter, r *http.Request) bool) *soakEndpoint {
	e := &soakEndpoint{attempts: map[string]int{}, ok: map[string]int{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("Pulumi-Webhook-ID")
		e.mu.Lock()
		e.attempts[id]++
		n := e.attempts[id]
		e.mu.Unlock()
		if answer(id, n, w, r) {
			e.mu.Lock()
			e.ok[id]++
			e.mu.Unlock()
		}
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// bucket spreads delivery IDs over n buckets, the same way on every run of a delivery.
func bucket(id string, n uint32) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return h.Sum32() % n
}

// soakTimeout is the attempt timeout of the soak's delivery processes.
const soakTimeout = 300 * time.Millisecond

func soak(t testing.TB, events, restarts int) soakResult {
	t.Helper()
	ok := newSoakEndpoint(t, func(_ string, _ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusOK)
		return true
	})
	flaky := newSoakEndpoint(t, func(id string, attempt int, w http.ResponseWriter, _ *http.Request) bool {
		switch {
		case attempt > 1 || bucket(id, 3) == 0:
			w.WriteHeader(http.StatusOK)
			return true
		case bucket(id, 3) == 1:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return false
	})
	slow := newSoakEndpoint(t, func(id string, attempt int, w http.ResponseWriter, r *http.Request) bool {
		if attempt == 1 && bucket(id, 10) == 0 {
			select { // past the attempt timeout: the sender gives up first
			case <-time.After(3 * soakTimeout):
			case <-r.Context().Done():
			}
			return false
		}
		w.WriteHeader(http.StatusOK)
		return true
	})
	gone := newSoakEndpoint(t, func(_ string, _ int, w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusGone)
		return false
	})

	e, st := benchEngine(t)
	path := st.Path()
	subject := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	live := map[string]*soakEndpoint{"ok": ok, "flaky": flaky, "slow": slow}
	hookOf := map[int64]string{}
	for name, ep := range map[string]*soakEndpoint{"ok": ok, "flaky": flaky, "slow": slow, "gone": gone} {
		h, err := e.HookCreate(context.Background(), webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: name, DisplayName: name,
			PayloadURL: ep.srv.URL + "/" + name, Active: true, Format: webhook.FormatRaw, Secret: "soak-secret"})
		if err != nil {
			t.Fatal(err)
		}
		hookOf[h.ID] = name
	}

	opts := childOpts{workers: 8, limit: 4, timeout: soakTimeout,
		retry: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}}
	var res soakResult
	var eventIDs []string
	start := time.Now()
	c := startChild(t, path, opts)
	chunk := events / (restarts + 1)
	for i := range events {
		r, err := e.Emit(context.Background(), EmitParams{Filter: webhook.UpdateSucceeded, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		eventIDs = append(eventIDs, r.EventID)
		if (i+1)%chunk == 0 && res.restarts < restarts {
			res.peakRSS = max(res.peakRSS, c.peakRSS())
			c.kill(t)
			res.restarts++
			c = startChild(t, path, opts)
		}
	}
	waitfor.NoError(t, func() error {
		s, err := e.QueueStats(context.Background())
		if err != nil {
			return err
		}
		if s.Pending+s.Running > 0 {
			return fmt.Errorf("%d deliveries pending and %d running", s.Pending, s.Running)
		}
		return nil
	})
	res.elapsed = time.Since(start)
	res.peakRSS = max(res.peakRSS, c.peakRSS())
	c.stop(t)

	res.events = len(eventIDs)
	goneDisabled := false
	for _, ev := range eventIDs {
		ds, err := st.DeliveryListByEvent(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			name := hookOf[d.HookID]
			ep, isLive := live[name]
			if !isLive {
				goneDisabled = goneDisabled || d.State != store.DeliverySucceeded
				continue
			}
			res.deliveries++
			ep.mu.Lock()
			n := ep.ok[d.ID]
			ep.mu.Unlock()
			if n == 0 || d.State != store.DeliverySucceeded {
				res.lost++
				t.Errorf("delivery %s to %s lost: %d 2xx answers, ended %s (%s)", d.ID, name, n, d.State, d.LastError)
			}
			if n > 1 {
				res.duplicates += n - 1
			}
		}
	}
	if h, err := e.HookGet(context.Background(), store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "gone"}); err != nil || h.Active {
		t.Errorf("the hook answered 410 is still active (%v)", err)
	}
	if !goneDisabled {
		t.Error("no delivery to the endpoint that answered 410 was given up")
	}
	// At most the attempts in flight at each kill arrive twice.
	if bound := (res.restarts) * opts.workers; res.duplicates > bound {
		t.Errorf("%d duplicates, more than the %d attempts in flight at the %d kills", res.duplicates, bound, res.restarts)
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			res.storeBytes += fi.Size()
		}
	}
	return res
}

// BenchmarkSoak: 5,000 events (15,000 live deliveries) through delivery processes SIGKILLed
// and restarted ten times, with retries, Retry-After, timeouts and a 410. It prints the
// deliveries lost (must be 0), duplicates, store size and the delivery processes' peak RSS.
func BenchmarkSoak(b *testing.B) {
	for range b.N {
		r := soak(b, 5000, 10)
		b.ReportMetric(float64(r.lost), "lost")
		b.ReportMetric(float64(r.duplicates), "duplicates")
		b.ReportMetric(float64(r.storeBytes)/(1<<20), "store-MiB")
		b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(r.deliveries)/r.elapsed.Seconds(), "deliveries/s")
		b.Logf("soak: %d events, %d live deliveries, %d restarts in %s: %d lost, %d duplicates, store %.1f MiB, peak RSS %.1f MiB",
			r.events, r.deliveries, r.restarts, r.elapsed.Round(time.Millisecond), r.lost, r.duplicates,
			float64(r.storeBytes)/(1<<20), float64(r.peakRSS)/(1<<20))
	}
}

// TestSoakCounts runs the soak at a bounded size on every test run: nothing lost, duplicates
// within the bound, the 410 hook disabled.
func TestSoakCounts(t *testing.T) {
	t.Parallel()
	r := soak(t, 300, 2)
	if r.deliveries != 3*r.events {
		t.Errorf("%d live deliveries for %d events, want 3 each", r.deliveries, r.events)
	}
	t.Logf("soak: %d events, %d deliveries, %d restarts, %d duplicates, store %d bytes, peak RSS %d bytes",
		r.events, r.deliveries, r.restarts, r.duplicates, r.storeBytes, r.peakRSS)
}
