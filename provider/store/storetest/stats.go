package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// testDeliveryStatsCounts follows the queue's counts through every way a delivery's state or a
// hook's disabled flag changes: backends keep them as counters (DeliveryStats must not count
// rows), so each path must move them exactly once.
func testDeliveryStatsCounts(t *testing.T, b *testBundle) {
	type counts struct{ pending, running, done, disabled int }
	want := func(step string, c counts) {
		t.Helper()
		st, err := b.st.DeliveryStats(b.ctx, T0)
		if err != nil {
			t.Fatalf("%s: DeliveryStats: %v", step, err)
		}
		got := counts{st.Pending, st.Running, st.DeliveriesDone, st.HooksDisabled}
		if got != c {
			t.Fatalf("%s: stats = %+v, want %+v", step, got, c)
		}
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: other}, enqueue{hook: other})
	want("emitted", counts{pending: 6})

	// Claims of h's deliveries; other's stay pending.
	cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "w", Now: T0, Lease: time.Minute, Limit: 4})
	if err != nil || len(cds) != 4 {
		t.Fatalf("claim = %d, %v", len(cds), err)
	}
	want("claimed 4", counts{pending: 2, running: 4})

	// A retry goes back to pending, a success and a failure are done.
	retry := store.DeliveryCompleteParams{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliveryPending, NextAttemptAt: T0.Add(time.Hour),
		Record: store.Attempt{StartedAt: T0, ResponseCode: 500}, Now: T0}
	for i, err := range b.st.DeliveryCompleteMany(b.ctx, []store.DeliveryCompleteParams{retry,
		{ID: cds[1].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Record: store.Attempt{StartedAt: T0, ResponseCode: 200}, Now: T0},
		{ID: cds[2].ID, Worker: "w", Attempt: 1, State: store.DeliveryFailed, Record: store.Attempt{StartedAt: T0, ResponseCode: 400}, Now: T0},
	}) {
		if err != nil {
			t.Fatalf("complete %d: %v", i, err)
		}
	}
	want("completed 3", counts{pending: 3, running: 1, done: 2})
	// A completion whose lease is lost changes nothing.
	wantErr(t, "a completion repeated", b.st.DeliveryComplete(b.ctx, retry), store.ErrLeaseLost)
	want("lease lost", counts{pending: 3, running: 1, done: 2})

	// An expired lease taken over stays running: counted once. other's two go running.
	later := T0.Add(2 * time.Minute)
	taken, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "w2", Now: later, Lease: time.Minute, Limit: 10})
	if err != nil || len(taken) != 3 || !slices.Contains(ids(taken), cds[3].ID) {
		t.Fatalf("claim with the expired lease = %v, %v; want other's two and %s", ids(taken), err, cds[3].ID)
	}
	want("lease taken over", counts{pending: 1, running: 3, done: 2})

	// A redelivery and a ping: the redelivery leaves the state alone, the ping is done.
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0,
		Record: store.Attempt{DeliveryID: cds[1].ID, StartedAt: T0, ResponseCode: 200}}); err != nil {
		t.Fatal(err)
	}
	ping := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: orgScope("acme"), Payload: []byte(`{}`), CreatedAt: T0}
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ping, Delivery: &store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`)},
		Now: T0, Record: store.Attempt{StartedAt: T0, ResponseCode: 204}}); err != nil {
		t.Fatal(err)
	}
	want("redelivered and pinged", counts{pending: 1, running: 3, done: 3})

	// Disabling h discards its pending retry and its running delivery.
	if err := b.st.HookDisable(b.ctx, store.HookDisableParams{ID: h.ID, Reason: "410 Gone", Now: T0}); err != nil {
		t.Fatal(err)
	}
	want("h disabled", counts{running: 2, done: 3, disabled: 1})
	// Disabling it again, or deactivating it by hand, is not a second disabled hook.
	if err := b.st.HookDisable(b.ctx, store.HookDisableParams{ID: h.ID, Reason: "again", Now: T0}); err != nil {
		t.Fatal(err)
	}
	want("h disabled again", counts{running: 2, done: 3, disabled: 1})
	s := other.Spec
	s.Active = false
	if _, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: other.Ref(), Spec: s, Now: T0}); err != nil {
		t.Fatal(err)
	}
	want("other deactivated by hand", counts{done: 3, disabled: 1})
	// Reactivating h clears its reason: no longer disabled by the engine.
	s = h.Spec
	s.Active = true
	if _, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s, Now: T0}); err != nil {
		t.Fatal(err)
	}
	want("h reactivated", counts{done: 3})

	// Deleting a hook deletes its queued deliveries; the done count keeps its history.
	third := createHook(t, b, spec(orgScope("acme"), "third"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: third}, enqueue{hook: third}, enqueue{hook: h})
	if got := claim(t, b, "w", T0, 1, 0); len(got) != 1 {
		t.Fatalf("claim = %v", ids(got))
	}
	want("emitted 3, claimed 1", counts{pending: 2, running: 1, done: 3})
	if err := b.st.HookDisable(b.ctx, store.HookDisableParams{ID: third.ID, Reason: "410 Gone", Now: T0}); err != nil {
		t.Fatal(err)
	}
	if err := b.st.HookDelete(b.ctx, third.Ref()); err != nil {
		t.Fatal(err)
	}
	if err := b.st.HookDelete(b.ctx, h.Ref()); err != nil {
		t.Fatal(err)
	}
	want("hooks deleted", counts{done: 3})
}
