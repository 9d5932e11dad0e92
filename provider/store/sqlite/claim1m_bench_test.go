package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

// bulkDeliveries stores history finished deliveries and backlog pending ones of hook h, all
// of one event, in two INSERT ... SELECT statements over a generated series.
func bulkDeliveries(t testing.TB, s *Store, history, backlog int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	h := benchHook(t, s, now)
	evID := emitDeliveries(t, s, fanoutBody, now, nil)
	n := store.UnixNanos(now)
	for _, part := range []struct {
		prefix, state string
		count         int
	}{{"done-", "succeeded", history}, {"todo-", "pending", backlog}} {
		if part.count == 0 {
			continue
		}
		err := s.withWriteTx(ctx, func(tx txq) error {
			if _, err := tx.tx.ExecContext(ctx, `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
				INSERT INTO deliveries (id, event_id, hook_id, filter, kind, format, body, body_ref, endpoint, org, state, attempts,
					next_attempt_at, lease_until, claimed_by, last_error, created_at, updated_at)
				SELECT ? || i, ?, ?, 'update_succeeded', 'stack_update', 'raw', x'', -1, '127.0.0.1:9', 'acme', ?,
					CASE ? WHEN 'pending' THEN 0 ELSE 1 END, ?, 0, '', '', ?, ? FROM g`,
				part.count, part.prefix, evID, h.ID, part.state, part.state, n, n, n); err != nil {
				return err
			}
			name := "deliveries_done"
			if part.state == "pending" {
				name = "deliveries_pending"
			}
			_, err := tx.tx.ExecContext(ctx, `UPDATE store_counts SET n = n + ? WHERE name = ?`, part.count, name)
			return err
		})
		if err != nil {
			t.Fatalf("bulk deliveries: %v", err)
		}
	}
}

// BenchmarkClaimAt1M is storetest.BenchClaimAt1M on SQLite stores built with INSERT ... SELECT.
func BenchmarkClaimAt1M(b *testing.B) {
	storetest.BenchClaimAt1M(b, func(tb testing.TB, history, backlog int, now time.Time) store.Store {
		s := benchStore(tb)
		bulkDeliveries(tb, s, history, backlog, now)
		return s
	})
}

// TestClaimAfterBulkHistory runs BenchmarkClaimAt1M's workload at a bounded size: every round
// claims its 8.
func TestClaimAfterBulkHistory(t *testing.T) {
	t.Parallel()
	s := benchStore(t)
	now := time.Now()
	bulkDeliveries(t, s, 2000, 100, now)
	if _, n := storetest.ClaimRounds(t, s, now, 10); n != 80 {
		t.Fatalf("claimed %d deliveries in 10 rounds, want 80", n)
	}
	st, err := s.DeliveryStats(context.Background(), now)
	if err != nil || st.Pending != 100-80+0 || st.DeliveriesDone != 2000+72 {
		t.Fatalf("stats after the rounds = %+v, %v", st, err)
	}
}
