package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// bulkDeliveries stores history finished deliveries and backlog pending ones of one hook, all
// of one event, each part with one INSERT ... SELECT over generate_series.
func bulkDeliveries(t testing.TB, s *Store, history, backlog int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	h, err := s.HookCreate(ctx, store.HookCreateParams{Now: now, Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		DisplayName: "h", PayloadURL: "https://example.com/hook", Active: true, Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"},
		Payload: []byte(`{"bench":true}`), CreatedAt: now}
	if err := s.EventEmit(ctx, func(tx store.EmitTx) error { return tx.EventInsert(ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	n := store.UnixNanos(now)
	for _, part := range []struct {
		prefix, state   string
		attempts, count int
	}{{"done-", "succeeded", 1, history}, {"todo-", "pending", 0, backlog}} {
		if part.count == 0 {
			continue
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO deliveries (id, event_id, hook_id, org, filter, kind, format, body, endpoint,
				state, attempts, next_attempt_at, created_at, updated_at)
			SELECT $1 || g, $2, $3, 'acme', 'update_succeeded', 'stack_update', 'raw', NULL, '127.0.0.1:9', $4, $5, $6, $6, $6
			FROM generate_series(1, $7::int) g`, part.prefix, ev.ID, h.ID, part.state, part.attempts, n, part.count); err != nil {
			t.Fatalf("bulk deliveries: %v", err)
		}
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE deliveries`); err != nil {
		t.Fatal(err)
	}
}

// benchOpen opens a store on a fresh database of the shared server.
func benchOpen(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: pgtest.Shared(t).NewDatabase(t), Key: testKey, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkClaimAt1M is storetest.BenchClaimAt1M on PostgreSQL databases built with one
// INSERT ... SELECT generate_series.
func BenchmarkClaimAt1M(b *testing.B) {
	storetest.BenchClaimAt1M(b, func(tb testing.TB, history, backlog int, now time.Time) store.Store {
		s := benchOpen(tb)
		bulkDeliveries(tb, s, history, backlog, now)
		return s
	})
}

// TestClaimAfterBulkHistory runs BenchmarkClaimAt1M's workload at a bounded size: every round
// claims its 8, and the queue's counters see the bulk rows.
func TestClaimAfterBulkHistory(t *testing.T) {
	t.Parallel()
	s := benchOpen(t)
	now := time.Now()
	bulkDeliveries(t, s, 2000, 100, now)
	if _, n := storetest.ClaimRounds(t, s, now, 10); n != 80 {
		t.Fatalf("claimed %d deliveries in 10 rounds, want 80", n)
	}
	st, err := s.DeliveryStats(context.Background(), now)
	if err != nil || st.Pending != 20 || st.Running != 8 || st.DeliveriesDone != 2000+72 {
		t.Fatalf("stats after the rounds = %+v, %v", st, err)
	}
}
