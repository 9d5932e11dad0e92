package engine

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// crashReleaseTimeout is the HTTP timeout of the children of TestCrashReleasesEndpointAtOnce.
// Their lease (2*timeout+15s, 135 s) is far longer than the test waits, so only the release of
// the dead process's claims can let the deliveries through in time.
const crashReleaseTimeout = time.Minute

// TestCrashReleasesEndpointAtOnce: a process delivering to one endpoint is SIGKILLed while it
// holds every slot of the endpoint's cap (its requests hang). A new process on the same store
// must deliver everything at once, not after the dead process's leases run out: the store sees
// that the holder's lock died with it and puts its claims back. The latency from the restart to
// the first delivery is logged; the target is 5 s.
func TestCrashReleasesEndpointAtOnce(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	const events = crashChildWorkers + 4
	var mu sync.Mutex
	hanging := true
	var firstAfterRestart time.Time
	done := map[string]bool{}
	held := 0
	b := setup(t, func(c *Config) { c.Now = time.Now })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		if hanging {
			held++
			mu.Unlock()
			<-r.Context().Done() // until the killed child's connection drops
			return
		}
		if firstAfterRestart.IsZero() {
			firstAfterRestart = time.Now()
		}
		done[r.Header.Get("Pulumi-Webhook-ID")] = true
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	b.createHook(t, hookSpec("crash", rc.url("/crash")))
	var eventIDs []string
	for range events {
		eventIDs = append(eventIDs, b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject}).EventID)
	}
	opts := childOpts{workers: crashChildWorkers, limit: crashChildWorkers, timeout: crashReleaseTimeout}

	first := startChild(t, b.path, opts)
	waitfor.Condition(t, "the first child to fill the endpoint's cap with hanging requests", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return held >= crashChildWorkers
	})
	first.kill(t)
	ctx := context.Background()
	stats, err := b.eng.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Running != crashChildWorkers {
		t.Fatalf("%d deliveries running after the kill, want the dead child's %d", stats.Running, crashChildWorkers)
	}
	mu.Lock()
	hanging = false
	mu.Unlock()

	restart := time.Now()
	second := startChild(t, b.path, opts)
	// waitfor.Limit (2 min) is shorter than the 135 s lease, far longer than the 5 s target.
	waitfor.Condition(t, "every delivery to arrive and be recorded after the restart", func() bool {
		mu.Lock()
		n := len(done)
		mu.Unlock()
		if n < events {
			return false
		}
		st, err := b.eng.QueueStats(ctx)
		return err == nil && st.Pending == 0 && st.Running == 0
	})
	mu.Lock()
	latency, all := firstAfterRestart.Sub(restart), time.Since(restart)
	mu.Unlock()
	t.Logf("after SIGKILL and restart: first delivery to the endpoint %s after the restart, all %d in %s (target: first within 5s; lease %s)",
		latency.Round(time.Millisecond), events, all.Round(time.Millisecond), 2*crashReleaseTimeout+15*time.Second)
	second.kill(t)

	var released int
	for _, ev := range eventIDs {
		for _, d := range b.deliveriesOf(t, ev) {
			if d.State != store.DeliverySucceeded {
				t.Errorf("delivery %s ended %s (%s)", d.ID, d.State, d.LastError)
			}
			if d.Attempts > 1 {
				released++
			}
		}
	}
	if released != crashChildWorkers {
		t.Errorf("%d deliveries took a second attempt, want the dead child's %d", released, crashChildWorkers)
	}
	if t.Failed() {
		t.Logf("first child output:\n%s\nsecond child output:\n%s", first.output(), second.output())
	}
}
