package engine

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// inflightReceiver is the handler of an endpoint that counts the requests in flight, overall
// and per sending process (told apart by User-Agent), and holds every request until released.
type inflightReceiver struct {
	mu       sync.Mutex
	inflight int
	peak     int
	// peakSenders is how many processes had requests in flight when the peak was reached.
	peakSenders int
	bySender    map[string]int // requests in flight per User-Agent
	sent        map[string]int // requests per User-Agent, all told
	gate        chan struct{}  // closed by release
}

func newInflightReceiver() *inflightReceiver {
	return &inflightReceiver{bySender: map[string]int{}, sent: map[string]int{}, gate: make(chan struct{})}
}

func (r *inflightReceiver) serve(w http.ResponseWriter, req *http.Request, _ int) {
	ua := req.Header.Get("User-Agent")
	r.mu.Lock()
	r.inflight++
	r.bySender[ua]++
	r.sent[ua]++
	if r.inflight > r.peak {
		r.peak, r.peakSenders = r.inflight, 0
		for _, n := range r.bySender {
			if n > 0 {
				r.peakSenders++
			}
		}
	}
	r.mu.Unlock()
	select {
	case <-r.gate:
	case <-req.Context().Done():
	}
	r.mu.Lock()
	r.inflight--
	r.bySender[ua]--
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// counts returns the requests in flight now, the most there ever were, and how many processes
// had requests in flight at that moment.
func (r *inflightReceiver) counts() (inflight, peak, peakSenders int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight, r.peak, r.peakSenders
}

func (r *inflightReceiver) release() { close(r.gate) }

// capWindow is how long the endpoint is held saturated before the test looks at the peak: long
// enough for every process to look for work many times over (they poll every 20ms) while it
// has idle workers and deliveries due to the endpoint.
const capWindow = 500 * time.Millisecond

// TestPerEndpointLimitAcrossProcesses runs several delivery processes on one SQLite file, all
// delivering to one endpoint on 127.0.0.1 (two hooks, one host:port) whose receiver counts
// the requests in flight and holds them. With the cap below the processes' workers, the
// receiver sees exactly the cap in flight and never more, although every process has idle
// workers and due deliveries for it. With the cap above them (the control), it sees every
// worker of every process at once: the receiver does observe concurrency across processes
// when the cap allows it, so the first case would catch a cap that is not kept.
func TestPerEndpointLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	cases := []struct {
		name                      string
		processes, workers, limit int
	}{
		{"cap below the workers", 4, 2, 3},
		{"cap above the workers", 3, 2, 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			want := min(c.limit, c.processes*c.workers)
			const events = 12 // two deliveries each
			b := setup(t, func(cfg *Config) { cfg.Now = time.Now })
			ir := newInflightReceiver()
			rc := newReceiver(t, ir.serve)
			t.Cleanup(func() {
				select {
				case <-ir.gate:
				default:
					ir.release() // let the held requests end before the receiver closes
				}
			})
			b.createHook(t, hookSpec("a", rc.url("/a")))
			b.createHook(t, hookSpec("b", rc.url("/b")))
			ids := map[string]bool{}
			for range events {
				res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
				for _, d := range b.deliveriesOf(t, res.EventID) {
					ids[d.ID] = true
				}
			}
			if len(ids) != 2*events {
				t.Fatalf("%d deliveries stored, want %d", len(ids), 2*events)
			}

			children := make([]*child, c.processes)
			for i := range children {
				children[i] = startChild(t, b.path, childOpts{workers: c.workers, limit: c.limit,
					timeout: waitfor.Limit, version: fmt.Sprintf("process-%d", i)})
			}
			waitfor.Condition(t, fmt.Sprintf("%d requests in flight at the endpoint", want), func() bool {
				n, _, _ := ir.counts()
				return n >= want
			})
			// Not a wait for something to happen: a chance for the processes to break the cap.
			time.Sleep(capWindow)
			inflight, peak, senders := ir.counts()
			t.Logf("%d processes x %d workers, cap %d: %d in flight from %d processes at the peak of %d",
				c.processes, c.workers, c.limit, inflight, senders, peak)
			if peak != want {
				t.Errorf("the endpoint saw %d requests in flight at once, want %d (cap %d, %d processes of %d workers)",
					peak, want, c.limit, c.processes, c.workers)
			}
			if want > c.workers && senders < 2 {
				t.Errorf("the %d requests in flight came from %d process, want several", peak, senders)
			}

			ir.release()
			ctx := context.Background()
			waitfor.NoError(t, func() error {
				st, err := b.eng.QueueStats(ctx)
				if err == nil && (st.Pending != 0 || st.Running != 0) {
					err = fmt.Errorf("queue not drained: %d pending, %d running", st.Pending, st.Running)
				}
				return err
			})
			for _, ch := range children {
				ch.stop(t)
			}
			if _, peak, _ := ir.counts(); peak > c.limit {
				t.Errorf("after the release the endpoint saw %d requests in flight at once, more than the cap of %d", peak, c.limit)
			}
			reqs := rc.requests()
			got := map[string]int{}
			for _, r := range reqs {
				got[r.header.Get("Pulumi-Webhook-ID")]++
			}
			for id := range ids {
				if got[id] != 1 {
					t.Errorf("delivery %s reached the endpoint %d times, want once", id, got[id])
				}
			}
			for id := range ids {
				if d := b.delivery(t, id); d.State != store.DeliverySucceeded {
					t.Errorf("delivery %s ended %s", id, d.State)
				}
			}
			var spread []string
			ir.mu.Lock()
			for ua, n := range ir.sent {
				spread = append(spread, fmt.Sprintf("%s: %d", strings.TrimPrefix(ua, "pulumi-webhooks/"), n))
			}
			ir.mu.Unlock()
			t.Logf("requests per process: %s", strings.Join(spread, ", "))
		})
	}
}
