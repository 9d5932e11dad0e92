package sqlite

import (
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestClaimSkipCacheFindsOtherWork: a claim that found nothing behind a capped organization
// does not scan for it again for a moment (claimSkipBackoff), but work queued then is not
// hidden: this process's own is found at once, another process's within the backoff.
func TestClaimSkipCacheFindsOtherWork(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := openAt(t, b.path, Config{}) // a second process on the same file
	ctx := t.Context()
	now := time.Now()
	hook := func(s *Store, org string) *store.Hook {
		h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: org}, Name: "h", DisplayName: "h",
			PayloadURL: "https://example.com/" + org, Active: true}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	enqueue := func(s *Store, h *store.Hook, n int) {
		t.Helper()
		ds := make([]store.DeliveryInsertParams, n)
		for i := range ds {
			ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`), Endpoint: h.Org + ":443"}
		}
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: h.Org}, Payload: []byte(`{}`), CreatedAt: now}
		if err := s.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, now, ds)
		}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func() []*store.ClaimedDelivery {
		t.Helper()
		cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 4, PerOrgLimit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return cds
	}
	slow, calm := hook(b.st, "slow"), hook(b.st, "calm")
	enqueue(b.st, slow, 100)
	if got := claim(); len(got) != 1 || got[0].Endpoint != "slow:443" {
		t.Fatalf("first claim = %d deliveries, want slow's one (its cap)", len(got))
	}
	// Another process queues calm's work: found within the backoff.
	enqueue(other, calm, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := claim()
		if len(got) == 1 && got[0].Endpoint == "calm:443" {
			break
		}
		if len(got) != 0 || time.Now().After(deadline) {
			t.Fatalf("claim = %d deliveries; want calm's, queued by another process, within %s", len(got), claimSkipBackoff)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := claim(); len(got) != 0 {
		t.Fatalf("claim = %d deliveries, want none: both organizations are at their cap", len(got))
	}
	// This process's own work is found at once.
	third := hook(b.st, "third")
	enqueue(b.st, third, 1)
	if got := claim(); len(got) != 1 || got[0].Endpoint != "third:443" {
		t.Fatalf("claim right after queuing third's work = %d deliveries, want it", len(got))
	}
}
