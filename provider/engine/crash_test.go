package engine

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const (
	crashChildWorkers = 8
	crashEvents       = 3000
)

// countingReceiver counts requests per Pulumi-Webhook-ID.
type countingReceiver struct {
	mu    sync.Mutex
	seen  map[string]int
	total int
}

func (r *countingReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	id := req.Header.Get("Pulumi-Webhook-ID")
	r.mu.Lock()
	r.seen[id]++
	r.total++
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *countingReceiver) counts() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), r.total
}

// TestCrashRecovery stores crashEvents events, lets a child process deliver them, kills it
// with SIGKILL midway, starts another child on the same file, and checks that every delivery
// reached the receiver. At-least-once allows duplicates: the deliveries the first child had
// sent but not yet recorded; there can be no more of them than it had workers.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	rec := &countingReceiver{seen: map[string]int{}}
	b := setup(t, func(c *Config) { c.Now = time.Now })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) { rec.ServeHTTP(w, r) })
	b.createHook(t, hookSpec("crash", rc.url("/crash")))
	ctx := context.Background()
	want := map[string]bool{}
	for range crashEvents {
		res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
		want[res.EventID] = true
	}
	ids := map[string]bool{}
	for ev := range want {
		for _, d := range b.deliveriesOf(t, ev) {
			ids[d.ID] = true
		}
	}
	if len(ids) != crashEvents {
		t.Fatalf("%d deliveries stored, want %d", len(ids), crashEvents)
	}

	first := startChild(t, b.path, childOpts{workers: crashChildWorkers, limit: crashChildWorkers})
	waitfor.Condition(t, "the first child to deliver a third", func() bool {
		d, _ := rec.counts()
		return d >= crashEvents/3
	})
	first.kill(t)
	atKill, _ := rec.counts()
	if atKill >= crashEvents {
		t.Fatalf("the first child delivered everything (%d) before it was killed: not a crash midway", atKill)
	}
	stats, err := b.eng.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the first child after %d distinct deliveries; %d left pending, %d running (held by the dead child)", atKill, stats.Pending, stats.Running)

	// The restarted process runs its clock one lease ahead: the dead child's claims have
	// expired for it, as they would after waiting out the lease.
	second := startChild(t, b.path, childOpts{workers: crashChildWorkers, limit: crashChildWorkers, shift: b.eng.Config().Lease() + time.Second})
	waitfor.Condition(t, "every delivery to arrive", func() bool {
		d, _ := rec.counts()
		if d < crashEvents {
			return false
		}
		st, err := b.eng.QueueStats(ctx)
		return err == nil && st.Pending == 0 && st.Running == 0
	})
	second.kill(t)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id := range ids {
		if rec.seen[id] == 0 {
			t.Errorf("delivery %s never reached the receiver", id)
		}
	}
	for id := range rec.seen {
		if !ids[id] {
			t.Errorf("the receiver got unknown delivery %q", id)
		}
	}
	duplicates := rec.total - len(rec.seen)
	t.Logf("crash recovery: %d deliveries, %d requests, %d duplicates (at most %d allowed: the dead child's in-flight attempts)",
		len(ids), rec.total, duplicates, crashChildWorkers)
	if duplicates > crashChildWorkers {
		t.Errorf("%d duplicates, more than the %d attempts the killed child could have had in flight", duplicates, crashChildWorkers)
	}
	for ev := range want {
		for _, d := range b.deliveriesOf(t, ev) {
			if d.State != "succeeded" {
				t.Errorf("delivery %s ended %s", d.ID, d.State)
			}
		}
	}
	if t.Failed() {
		t.Logf("first child output:\n%s\nsecond child output:\n%s", first.output(), second.output())
	}
}
