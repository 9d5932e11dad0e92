package sqlite

import (
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestStoreCountsMigration: migration 006 fills the counters from the rows a store already
// holds, so a store upgraded from an earlier version reports the same stats as before.
func TestStoreCountsMigration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	now := time.Now()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "gone", DisplayName: "g",
		PayloadURL: "https://example.com/gone", Active: true}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.HookDisable(ctx, store.HookDisableParams{ID: gone.ID, Reason: "410", Now: now}); err != nil {
		t.Fatal(err)
	}
	ds := []store.DeliveryInsertParams{
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliveryPending},
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliveryPending},
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliveryPending},
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliverySucceeded},
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliveryFailed},
		{HookID: h.ID, Body: []byte(`{}`), State: store.DeliveryDiscarded},
	}
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: now}
	if err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, now, ds)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	before, err := b.st.DeliveryStats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if before.Pending != 2 || before.Running != 1 || before.DeliveriesDone != 2 || before.HooksDisabled != 1 {
		t.Fatalf("stats = %+v", before)
	}
	if err := b.st.migrateDown(ctx, 5); err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := b.st.DB().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'store_counts'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("store_counts left after migrating down: %d, %v", tables, err)
	}
	if err := b.st.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := b.st.DeliveryStats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("stats after the migration filled the counters = %+v, want %+v", after, before)
	}
}
