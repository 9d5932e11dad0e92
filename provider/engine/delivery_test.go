package engine

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestDeliverySucceedsSigned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	const secret = "s3cret-for-signing"
	h := b.createHook(t, hookSpec("signed", rc.url("/hook"), func(s *webhook.Spec) { s.Secret = secret }))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	if res.Deliveries != 1 || res.EventID == "" {
		t.Fatalf("EmitResult = %+v, want one delivery", res)
	}
	got := rc.next(t)
	b.obs.wantOutcome(t, OutcomeSucceeded)

	d := b.onlyDelivery(t, res.EventID)
	checkSigned(t, got, secret)
	for name, want := range map[string]string{
		"Pulumi-Webhook-ID":   d.ID,
		"Pulumi-Webhook-Kind": "stack_update",
		"webhook-id":          d.ID,
		"Content-Type":        "application/json",
		"User-Agent":          "pulumi-webhooks/test",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if got.path != "/hook" || string(got.body) != string(d.Body) {
		t.Errorf("receiver got %s %q, want /hook with the stored body %q", got.path, got.body, d.Body)
	}
	if !strings.Contains(string(got.body), `"stackName":"prod"`) {
		t.Errorf("body %s does not name the stack", got.body)
	}
	d = b.delivery(t, d.ID)
	if d.State != store.DeliverySucceeded || d.Attempts != 1 || d.HookID != h.ID {
		t.Errorf("delivery after success = %+v, want succeeded after 1 attempt", d)
	}
	log, err := b.eng.DeliveryLog(context.Background(), h.Ref(), DeliveryLogParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ResponseCode != 200 || log[0].DeliveryID != d.ID || string(log[0].RequestBody) != string(got.body) || log[0].Error != "" {
		t.Fatalf("delivery log = %+v, want one 200 attempt of %s", log, d.ID)
	}
	if sig := log[0].RequestHeaders["Pulumi-Webhook-Signature"]; len(sig) != 1 || sig[0] != got.header.Get("Pulumi-Webhook-Signature") {
		t.Errorf("recorded signature header %v, want the one sent", sig)
	}
	st, err := b.eng.QueueStats(context.Background())
	if err != nil || st.Pending != 0 || st.Running != 0 {
		t.Errorf("QueueStats = %+v, %v; want an empty queue", st, err)
	}
}

func TestDeliveryWithoutSecretIsUnsigned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.createHook(t, hookSpec("plain", rc.url("/")))
	b.start(t)
	b.emit(t, EmitParams{Filter: webhook.EnvironmentTagCreated, Subject: webhook.Scope{Org: "acme", Project: "p", Environment: "e"}})
	got := rc.next(t)
	b.obs.wantOutcome(t, OutcomeSucceeded)
	if got.header.Get("Pulumi-Webhook-Signature") != "" || got.header.Get("webhook-signature") != "" {
		t.Errorf("unsigned hook sent signature headers: %v", got.header)
	}
	if got.header.Get("Pulumi-Webhook-Kind") != "environment_tag" {
		t.Errorf("kind header = %q", got.header.Get("Pulumi-Webhook-Kind"))
	}
}

// TestDeliveryRetriesUntilSuccess drives the retry schedule with the fake clock: the endpoint
// fails twice, each retry waits its scheduled delay (±20%), the third attempt succeeds.
func TestDeliveryRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n < 3 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	b.createHook(t, hookSpec("flaky", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.DeploymentSucceeded, Subject: stackSubject})
	id := b.onlyDelivery(t, res.EventID).ID

	for i, wait := range []time.Duration{time.Minute, 10 * time.Minute} {
		b.obs.wantOutcome(t, OutcomeRetry)
		d := b.delivery(t, id)
		now := b.clock.Now()
		lo, hi := now.Add(wait*8/10), now.Add(wait*12/10)
		if d.State != store.DeliveryPending || d.Attempts != i+1 || d.NextAttemptAt.Before(lo) || d.NextAttemptAt.After(hi) {
			t.Fatalf("after attempt %d: %+v; want pending, next attempt in [%s, %s]", i+1, d, lo, hi)
		}
		if !strings.Contains(d.LastError, "500") {
			t.Errorf("LastError = %q, want the 500", d.LastError)
		}
		// Not due yet: nothing happens until the clock passes NextAttemptAt.
		b.clock.Advance(wait * 7 / 10)
		time.Sleep(5 * b.eng.Config().PollInterval)
		if n := len(rc.requests()); n != i+1 {
			t.Fatalf("endpoint got %d requests before the retry was due, want %d", n, i+1)
		}
		b.clock.Advance(wait * 6 / 10)
	}
	b.obs.wantOutcome(t, OutcomeSucceeded)
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("endpoint got %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.header.Get("Pulumi-Webhook-ID") != id || string(r.body) != string(reqs[0].body) {
			t.Errorf("retry differs: id %q body %q; want id %q and the same body", r.header.Get("Pulumi-Webhook-ID"), r.body, id)
		}
	}
	if d := b.delivery(t, id); d.State != store.DeliverySucceeded || d.Attempts != 3 {
		t.Errorf("delivery = %+v, want succeeded after 3 attempts", d)
	}
}

// TestRetryJitterVaries draws the next attempt of every scheduled retry many times: each draw
// stays within ±20% of the scheduled wait, the draws differ from one another, and they fall on
// both sides of the scheduled wait, so retries of many deliveries do not arrive in waves.
func TestRetryJitterVaries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const draws = 64
	now := b.clock.Now()
	for i, wait := range b.eng.Config().RetrySchedule {
		lo, hi := wait*8/10, wait*12/10
		seen := map[time.Duration]bool{}
		var below, above int
		for range draws {
			next, ok := b.eng.nextAttempt(i+1, 0, now)
			if !ok {
				t.Fatalf("retry %d of %d: no next attempt", i+1, len(b.eng.Config().RetrySchedule))
			}
			d := next.Sub(now)
			if d < lo || d > hi {
				t.Errorf("retry %d: waits %s, want within [%s, %s]", i+1, d, lo, hi)
			}
			seen[d] = true
			switch {
			case d < wait:
				below++
			case d > wait:
				above++
			}
		}
		// With a uniform factor, a repeat or a one-sided run of 64 draws is as likely as
		// 64 coin tosses landing the same way.
		if len(seen) < draws-1 || below == 0 || above == 0 {
			t.Errorf("retry %d (scheduled %s): %d distinct waits of %d draws, %d shorter and %d longer; want them spread around it",
				i+1, wait, len(seen), draws, below, above)
		}
	}
	if _, ok := b.eng.nextAttempt(len(b.eng.Config().RetrySchedule)+1, 0, now); ok {
		t.Errorf("an attempt past the schedule got a next attempt")
	}
}

func TestDeliveryGivesUpWhenScheduleRunsOut(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RetrySchedule = []time.Duration{time.Second} })
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	b.createHook(t, hookSpec("down", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.UpdateFailed, Subject: stackSubject})
	b.obs.wantOutcome(t, OutcomeRetry)
	b.clock.Advance(2 * time.Second)
	b.obs.wantOutcome(t, OutcomeFailed)
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliveryFailed || d.Attempts != 2 || len(rc.requests()) != 2 {
		t.Errorf("delivery = %+v after %d requests; want failed after 2", d, len(rc.requests()))
	}
	if !strings.Contains(b.logs.String(), "gave up after 2 attempts") {
		t.Errorf("logs do not say the engine gave up:\n%s", b.logs.String())
	}
}

func TestDelivery410DisablesHook(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Workers = 1; c.PerEndpointLimit = 1 })
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		http.Error(w, "gone", http.StatusGone)
	})
	h := b.createHook(t, hookSpec("gone", rc.url("/")))
	// Two events queued before the workers start: the first 410 must discard the second.
	first := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	second := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	b.start(t)
	var disabled string
	for _, ev := range []observed{b.obs.next(t), b.obs.next(t)} {
		switch {
		case ev.disabled != "":
			disabled = ev.disabled
		case ev.outcome != OutcomeFailed:
			t.Fatalf("observer got %+v, want a failed attempt and a disabled hook", ev)
		}
	}
	if !strings.Contains(disabled, "410") {
		t.Errorf("HookDisabled reason %q does not mention 410", disabled)
	}
	got, err := b.eng.HookGet(context.Background(), h.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got.Active || !strings.Contains(got.DisabledReason, "410") {
		t.Errorf("hook after 410: active %t reason %q; want inactive with the reason", got.Active, got.DisabledReason)
	}
	d1, d2 := b.onlyDelivery(t, first.EventID), b.onlyDelivery(t, second.EventID)
	if d1.State != store.DeliveryFailed || d2.State != store.DeliveryDiscarded {
		t.Errorf("states after 410: first %s, second %s; want failed and discarded", d1.State, d2.State)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("endpoint got %d requests, want 1", n)
	}
	if res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject}); res.Deliveries != 0 {
		t.Errorf("an event after the 410 made %d deliveries, want 0", res.Deliveries)
	}
	// Reactivating the hook clears the reason and deliveries resume being created.
	spec := got.Spec
	spec.Active = true
	re, err := b.eng.HookUpdate(context.Background(), HookUpdateParams{Ref: h.Ref(), Spec: spec})
	if err != nil || !re.Active || re.DisabledReason != "" {
		t.Fatalf("reactivate: %+v, %v", re, err)
	}
}

// A Retry-After longer than the scheduled wait delays the next attempt (bounded by
// RetryAfterMax); see TestDeliveryShortRetryAfterKeepsSchedule for a shorter one.
func TestDelivery429HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.RetrySchedule = []time.Duration{time.Second, time.Second}
		c.RetryAfterMax = 10 * time.Minute
	})
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case 2:
			w.Header().Set("Retry-After", "86400") // a day: bounded by RetryAfterMax
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	b.createHook(t, hookSpec("limited", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.PreviewSucceeded, Subject: stackSubject})
	id := b.onlyDelivery(t, res.EventID).ID

	b.obs.wantOutcome(t, OutcomeRetry)
	if d, want := b.delivery(t, id), b.clock.Now().Add(7*time.Second); !d.NextAttemptAt.Equal(want) {
		t.Fatalf("after 429 Retry-After 7: next attempt at %s, want exactly %s (the schedule says a second)", d.NextAttemptAt, want)
	}
	b.clock.Advance(7 * time.Second)
	b.obs.wantOutcome(t, OutcomeRetry)
	if d, want := b.delivery(t, id), b.clock.Now().Add(10*time.Minute); !d.NextAttemptAt.Equal(want) {
		t.Fatalf("after 503 Retry-After a day: next attempt at %s, want RetryAfterMax later, %s", d.NextAttemptAt, want)
	}
	b.clock.Advance(10 * time.Minute)
	b.obs.wantOutcome(t, OutcomeSucceeded)
	if n := len(rc.requests()); n != 3 {
		t.Errorf("endpoint got %d requests, want 3", n)
	}
}

// A Retry-After shorter than the scheduled wait is the earliest time the endpoint wants to be
// asked again, not a replacement for the schedule: a 503 with Retry-After: 1 must not use up
// every retry within seconds.
func TestDeliveryShortRetryAfterKeepsSchedule(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{time.Minute, 10 * time.Minute, time.Hour}
	b := setup(t, func(c *Config) { c.RetrySchedule = schedule })
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	b.createHook(t, hookSpec("overloaded", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.PreviewSucceeded, Subject: stackSubject})
	id := b.onlyDelivery(t, res.EventID).ID
	for i, wait := range schedule {
		b.obs.wantOutcome(t, OutcomeRetry)
		d := b.delivery(t, id)
		got := d.NextAttemptAt.Sub(b.clock.Now())
		// The schedule's wait with its ±20% jitter, however short the Retry-After.
		if lo, hi := wait*8/10, wait*12/10; got < lo || got > hi {
			t.Fatalf("after attempt %d (503, Retry-After: 1): next attempt in %s, want the schedule's %s ±20%%", i+1, got, wait)
		}
		b.clock.Advance(got)
	}
	b.obs.wantOutcome(t, OutcomeFailed)
	if n := len(rc.requests()); n != len(schedule)+1 {
		t.Errorf("endpoint got %d requests, want %d", n, len(schedule)+1)
	}
}

func TestDeliveryRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := b.createHook(t, hookSpec("moved", rc.url("/moved")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.RefreshSucceeded, Subject: stackSubject})
	b.obs.wantOutcome(t, OutcomeRetry)
	for _, r := range rc.requests() {
		if r.path != "/moved" {
			t.Errorf("the redirect was followed to %s", r.path)
		}
	}
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliveryPending || d.Attempts != 1 {
		t.Errorf("delivery after 302 = %+v; want pending for a retry, not succeeded", d)
	}
	log, err := b.eng.DeliveryLog(context.Background(), h.Ref(), DeliveryLogParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ResponseCode != http.StatusFound || !strings.Contains(log[0].Error, "redirect") {
		t.Errorf("attempt = %+v; want the 302 recorded as a redirect failure", log)
	}
}

func TestDeliveryTimeoutRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Timeout = 150 * time.Millisecond })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	h := b.createHook(t, hookSpec("slow", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.DestroySucceeded, Subject: stackSubject})
	b.obs.wantOutcome(t, OutcomeRetry)
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliveryPending || !d.NextAttemptAt.After(b.clock.Now()) {
		t.Errorf("delivery after timeout = %+v; want pending with a later attempt", d)
	}
	log, err := b.eng.DeliveryLog(context.Background(), h.Ref(), DeliveryLogParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ResponseCode != 0 || !strings.Contains(strings.ToLower(log[0].Error), "timeout") && !strings.Contains(strings.ToLower(log[0].Error), "timed out") {
		t.Errorf("attempt = %+v; want a recorded timeout", log)
	}
}

// TestDeliverySSRFDenied uses a loopback receiver with no allow-list: the guard must refuse
// the address at dial time, the failure must be recorded with its reason, and the receiver
// must get nothing.
func TestDeliverySSRFDenied(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.AllowTargets = nil })
	rc := newReceiver(t, nil)
	h := b.createHook(t, hookSpec("internal", rc.url("/")))
	b.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	b.obs.wantOutcome(t, OutcomeFailed)
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliveryFailed || d.Attempts != 1 {
		t.Errorf("delivery = %+v; want failed after one attempt, no retries", d)
	}
	log, err := b.eng.DeliveryLog(context.Background(), h.Ref(), DeliveryLogParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].ResponseCode != 0 || !strings.Contains(log[0].Error, "127.0.0.1") {
		t.Errorf("attempt = %+v; want the refused address recorded", log)
	}
	t.Logf("recorded reason: %s", log[0].Error)
	if n := len(rc.requests()); n != 0 {
		t.Errorf("the receiver got %d requests, want none", n)
	}
}

// TestDeliveryInactiveHookDiscarded puts a pending delivery of an inactive hook in the store
// (as a race with deactivation or another store backend could) and checks that the worker
// discards it without sending.
func TestDeliveryInactiveHookDiscarded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	h := b.createHook(t, hookSpec("off", rc.url("/"), func(s *webhook.Spec) { s.Active = false }))
	ctx := context.Background()
	ev := &store.Event{ID: newID(), Filter: webhook.UpdateSucceeded, Kind: webhook.KindStackUpdate, Subject: stackSubject, Payload: []byte(`{}`), CreatedAt: b.clock.Now()}
	id := newID()
	err := b.store.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, b.clock.Now(), []store.DeliveryInsertParams{{
			ID: id, HookID: h.ID, Format: webhook.FormatRaw, Body: []byte(`{}`), Endpoint: endpointOf(h.PayloadURL),
			State: store.DeliveryPending, NextAttemptAt: b.clock.Now(),
		}})
	})
	if err != nil {
		t.Fatal(err)
	}
	b.start(t)
	b.obs.wantOutcome(t, OutcomeDiscarded)
	if d := b.delivery(t, id); d.State != store.DeliveryDiscarded {
		t.Errorf("delivery = %+v, want discarded", d)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("inactive hook's endpoint got %d requests", n)
	}
}

// TestPerEndpointLimit holds one endpoint's requests open: it never gets more than the cap at
// once, and a second endpoint is served while the first is stuck.
func TestPerEndpointLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.Workers = 8; c.PerEndpointLimit = 2 })
	release := make(chan struct{})
	var cur, peak atomic.Int64
	slow := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		cur.Add(-1)
	})
	fast := newReceiver(t, nil)
	b.createHook(t, hookSpec("slow", slow.url("/"), func(s *webhook.Spec) { s.Filters = []webhook.Filter{webhook.UpdateSucceeded} }))
	b.createHook(t, hookSpec("fast", fast.url("/"), func(s *webhook.Spec) { s.Filters = []webhook.Filter{webhook.UpdateFailed} }))
	for range 6 {
		b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	}
	for range 3 {
		b.emit(t, EmitParams{Filter: webhook.UpdateFailed, Subject: stackSubject})
	}
	b.start(t)
	slow.next(t)
	slow.next(t)
	for range 3 {
		fast.next(t)
		b.obs.wantOutcome(t, OutcomeSucceeded)
	}
	time.Sleep(5 * b.eng.Config().PollInterval)
	if p := peak.Load(); p != 2 {
		t.Errorf("slow endpoint had %d concurrent requests, want the cap of 2", p)
	}
	close(release)
	for range 6 {
		b.obs.wantOutcome(t, OutcomeSucceeded)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("slow endpoint peaked at %d concurrent requests, want 2", p)
	}
}

// TestLeaseExpiry: a worker that claimed a delivery and died keeps it for the lease; after
// the lease another worker takes it over, and the dead worker can no longer complete it.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.createHook(t, hookSpec("leased", rc.url("/")))
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	ctx := context.Background()
	lease := b.eng.Config().Lease()
	claimed, err := b.store.DeliveryClaim(ctx, store.DeliveryClaimParams{
		Worker: "dead-worker", Now: b.clock.Now(), Lease: lease, Limit: 10, PerEndpointLimit: 4,
	})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("dead worker's claim: %d deliveries, %v", len(claimed), err)
	}
	b.start(t)
	b.clock.Advance(lease - time.Second)
	time.Sleep(10 * b.eng.Config().PollInterval)
	if d := b.onlyDelivery(t, res.EventID); d.ClaimedBy != "dead-worker" || d.State != store.DeliveryRunning || len(rc.requests()) != 0 {
		t.Fatalf("before the lease ran out: %+v, %d requests; want it still held by the dead worker", d, len(rc.requests()))
	}
	b.clock.Advance(2 * time.Second)
	rc.next(t)
	b.obs.wantOutcome(t, OutcomeSucceeded)
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliverySucceeded || d.Attempts != 2 || d.ClaimedBy == "dead-worker" {
		t.Errorf("after takeover: %+v; want succeeded on attempt 2 by a live worker", d)
	}
	err = b.store.DeliveryComplete(ctx, store.DeliveryCompleteParams{
		ID: d.ID, Worker: "dead-worker", Attempt: 1, State: store.DeliverySucceeded, Now: b.clock.Now(),
	})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the dead worker's late completion: %v, want ErrLeaseLost", err)
	}
}

// TestWorkersPickUpOtherProcessesEvents: one engine emits without running workers, another on
// a second connection to the same file delivers within its poll interval.
func TestWorkersPickUpOtherProcessesEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, nil)
	b.createHook(t, hookSpec("shared", rc.url("/")))
	other := setup(t, func(c *Config) {
		c.Store = openStore(t, b.path)
		c.Now = b.clock.Now
		c.PollInterval = 20 * time.Millisecond
	})
	other.start(t)
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	got := rc.next(t)
	other.obs.wantOutcome(t, OutcomeSucceeded)
	if got.header.Get("Pulumi-Webhook-ID") != b.onlyDelivery(t, res.EventID).ID {
		t.Errorf("delivered the wrong delivery")
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.eng.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := b.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.Start(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start: %v, want an error", err)
	}
	if err := b.eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Restartable, and a graceful Stop waits for the attempt in flight.
	var started sync.WaitGroup
	started.Add(1)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		started.Done()
		time.Sleep(200 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	})
	b.createHook(t, hookSpec("inflight", rc.url("/")))
	if err := b.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	started.Wait()
	if err := b.eng.Stop(ctx); err != nil {
		t.Fatalf("graceful Stop: %v", err)
	}
	if d := b.onlyDelivery(t, res.EventID); d.State != store.DeliverySucceeded {
		t.Errorf("graceful Stop returned before the attempt was recorded: %+v", d)
	}
}

// TestStopDeadlineAbortsAttempts: when Stop's context ends first, the attempt in flight is
// aborted and put back as due at once, not counted against the endpoint.
func TestStopDeadlineAbortsAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	b.createHook(t, hookSpec("stuck", rc.url("/")))
	if err := b.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := b.emit(t, EmitParams{Filter: webhook.UpdateSucceeded, Subject: stackSubject})
	rc.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.eng.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 delivery attempts") {
		t.Fatalf("Stop past its deadline: %v; want DeadlineExceeded naming 1 aborted attempt", err)
	}
	b.obs.wantOutcome(t, OutcomeRetry)
	d := b.onlyDelivery(t, res.EventID)
	if d.State != store.DeliveryPending || d.NextAttemptAt.After(b.clock.Now()) || !strings.Contains(d.LastError, "aborted") {
		t.Errorf("aborted delivery = %+v; want pending, due now, marked aborted", d)
	}
}
