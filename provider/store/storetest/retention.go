package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// emitAt stores an event created at `at` with one delivery per hook (same body, so a shared
// body is stored), an idempotency key and, when deploy is set, a deployment request; it
// returns the event and delivery IDs.
func emitAt(t *testing.T, b *testBundle, at time.Time, key string, deploy bool, hooks ...*store.Hook) (string, []string) {
	t.Helper()
	ev := &store.Event{Filter: webhook.StackCreated, Subject: stackScope("acme", "web", "prod"), Payload: []byte(`{"p":1}`), CreatedAt: at}
	var ids []string
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		ds := make([]store.DeliveryInsertParams, len(hooks))
		for i, h := range hooks {
			ds[i] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatSlack, Body: []byte(`{"text":"shared"}`),
				Endpoint: fmt.Sprintf("e%d:443", i), State: store.DeliveryPending, NextAttemptAt: at}
		}
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, at, ds); err != nil {
			return err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if deploy {
			if err := tx.DeploymentRequestInsert(b.ctx, &store.DeploymentRequest{Target: stackScope("acme", "web", "next"),
				HookID: hooks[0].ID, EventID: ev.ID, CreatedAt: at}); err != nil {
				return err
			}
		}
		return tx.IdempotencyPut(b.ctx, "acme", key, []byte(`{"eventId":"`+ev.ID+`"}`), at)
	})
	if err != nil {
		t.Fatalf("EventEmit: %v", err)
	}
	return ev.ID, ids
}

// finish claims and completes every due delivery at `at` with state.
func finish(t *testing.T, b *testBundle, at time.Time, state store.DeliveryState) {
	t.Helper()
	for _, cd := range claim(t, b, "w", at, 100, 0) {
		if err := complete(b, cd, state, at); err != nil {
			t.Fatal(err)
		}
	}
}

// testHistoryDeleteBefore: old finished history goes with everything hanging from it; pending
// and running work and recent history stay, however small the batches.
func testHistoryDeleteBefore(t *testing.T, h Harness, b *testBundle) {
	h1, h2 := createHook(t, b, spec(orgScope("acme"), "one")), createHook(t, b, spec(orgScope("acme"), "two"))
	old := T0
	// Three old events whose deliveries finished (one with a deployment request).
	var gone []string
	var goneDeliveries []string
	for i := range 3 {
		ev, ds := emitAt(t, b, old, fmt.Sprint("old-", i), i == 0, h1, h2)
		gone = append(gone, ev)
		goneDeliveries = append(goneDeliveries, ds...)
	}
	finish(t, b, old, store.DeliverySucceeded)
	// An old event whose delivery is still retrying, and one whose delivery is running.
	retrying, retryDs := emitAt(t, b, old, "old-retrying", false, h1)
	cds := claim(t, b, "w", old, 1, 0)
	if err := complete(b, cds[0], store.DeliveryPending, old); err != nil { // retry due a minute later
		t.Fatal(err)
	}
	running, _ := emitAt(t, b, old.Add(time.Second), "old-running", false, h2)
	if got := claim(t, b, "w", old.Add(time.Second), 1, 0); len(got) != 1 {
		t.Fatalf("claimed %d, want the running one", len(got))
	}
	// A recent event.
	recent, _ := emitAt(t, b, old.Add(40*24*time.Hour), "recent", true, h1)
	cutoff := old.Add(30 * 24 * time.Hour)

	var total store.HistoryDeleteBeforeResult
	for calls := 0; ; calls++ {
		if calls > 10 {
			t.Fatal("HistoryDeleteBefore keeps saying there is more")
		}
		res, err := b.st.HistoryDeleteBefore(b.ctx, store.HistoryDeleteBeforeParams{Before: cutoff, Limit: 2})
		if err != nil {
			t.Fatalf("HistoryDeleteBefore: %v", err)
		}
		if res.Events > 2 || res.IdempotencyKeys > 2 {
			t.Fatalf("one call deleted %+v, more than its limit of 2", res)
		}
		total.Events += res.Events
		total.Deliveries += res.Deliveries
		total.Attempts += res.Attempts
		total.DeploymentRequests += res.DeploymentRequests
		total.IdempotencyKeys += res.IdempotencyKeys
		if !res.More {
			break
		}
	}
	if total.Events != 3 || total.Deliveries != 6 || total.Attempts != 6 || total.DeploymentRequests != 1 || total.IdempotencyKeys != 5 {
		t.Fatalf("deleted %+v; want the 3 finished old events, their 6 deliveries and attempts, 1 deployment request, and the 5 old keys", total)
	}
	for _, id := range gone {
		if _, err := b.st.EventGet(b.ctx, id); err == nil {
			t.Errorf("old event %s is still there", id)
		}
	}
	for _, id := range goneDeliveries {
		if _, err := b.st.DeliveryGet(b.ctx, id); err == nil {
			t.Errorf("old delivery %s is still there", id)
		}
	}
	for _, id := range []string{retrying, running, recent} {
		if _, err := b.st.EventGet(b.ctx, id); err != nil {
			t.Errorf("event %s with work left or recent was deleted: %v", id, err)
		}
	}
	if d := getDelivery(t, b, retryDs[0]); d.State != store.DeliveryPending {
		t.Fatalf("the retrying delivery is %s", d.State)
	}
	if reqs, _ := b.st.DeploymentRequestList(b.ctx, stackScope("acme", "web", "next")); len(reqs) != 1 || reqs[0].EventID != recent {
		t.Fatalf("deployment requests left: %+v, want only the recent one", reqs)
	}
	if log, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h1.ID}); len(log) != 1 {
		t.Fatalf("%d attempts of hook one left, want the retrying delivery's 1", len(log))
	}
	// The recent idempotency key still answers; the old ones are gone.
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if _, err := tx.IdempotencyGet(b.ctx, "acme", "recent", old); err != nil {
			t.Errorf("the recent idempotency key: %v", err)
		}
		if _, err := tx.IdempotencyGet(b.ctx, "acme", "old-0", old.Add(-time.Hour)); err == nil {
			t.Error("an old idempotency key is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.HistoryDeleteBefore(b.ctx, store.HistoryDeleteBeforeParams{}); err == nil {
		t.Fatal("HistoryDeleteBefore with a zero cut-off succeeded")
	}
}
