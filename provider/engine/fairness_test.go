package engine

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestFairnessSlowOrgCannotHoldEveryWorker: one organization's endpoint hangs on every request.
// Its deliveries take at most PerOrgLimit of the workers (3 of 4 by default), so another
// organization's delivery is sent at once instead of waiting for the hung requests to time out.
func TestFairnessSlowOrgCannotHoldEveryWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Workers = 4
		c.PerEndpointLimit = 4
		c.Timeout = 2 * time.Minute // the hung requests outlast the test
	})
	release := make(chan struct{})
	slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	calm := newReceiver(t, nil)
	for _, h := range []struct{ org, url string }{{"slowco", slow.url("/")}, {"calmco", calm.url("/")}} {
		b.createHook(t, hookSpec("h", h.url, func(s *webhook.Spec) { s.Scope = webhook.Scope{Org: h.org} }))
	}
	b.start(t)
	t.Cleanup(func() { close(release) }) // runs before the workers stop
	for range 6 {
		b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "slowco", Project: "p", Stack: "s"}})
	}
	want := PerOrgLimitDefault(4)
	for range want {
		slow.next(t)
	}
	b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "calmco", Project: "p", Stack: "s"}})
	calm.next(t) // fails after 15 s: before per-organization caps, slowco held every worker
	if n := len(slow.requests()); n != want {
		t.Errorf("slowco's hung endpoint got %d requests at once, want its cap of %d", n, want)
	}
}

// TestFairnessRetryNotStarvedByFlood: a retry comes due while 200 first attempts are queued
// ahead of it. With one worker, it is sent among the first few deliveries, not after the
// whole flood.
func TestFairnessRetryNotStarvedByFlood(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Workers = 1 })
	flaky := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	busy := newReceiver(t, nil)
	b.createHook(t, hookSpec("flaky", flaky.url("/"), func(s *webhook.Spec) { s.Filters = []webhook.Filter{webhook.UpdateFailed} }))
	b.createHook(t, hookSpec("busy", busy.url("/"), func(s *webhook.Spec) { s.Filters = []webhook.Filter{webhook.UpdateSucceeded} }))
	ctx := context.Background()
	if err := b.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.emit(t, EmitParams{Filter: webhook.UpdateFailed, Subject: stackSubject})
	b.obs.wantOutcome(t, OutcomeRetry) // due again in a minute
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.eng.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	const flood = 200
	for range flood {
		b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	}
	b.clock.Advance(2 * time.Minute) // the retry is due, behind the flood
	b.start(t)
	flaky.next(t) // the first attempt
	flaky.next(t) // the retry
	if n := len(busy.requests()); n > flood/4 {
		t.Fatalf("the due retry was sent after %d of the %d first attempts queued before it; want it among the first few", n, flood)
	}
}
