package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// BenchmarkDeliveryStats reads the queue's stats (what every /readyz and /metrics scrape does)
// from stores whose history holds 1,000 to 300,000 finished deliveries beside a queue of 100
// pending ones. The cost must stay flat as the history grows: compare us/op across sizes.
//
//	go test -run '^$' -bench DeliveryStats ./provider/store/sqlite/
func BenchmarkDeliveryStats(b *testing.B) {
	for _, history := range []int{1_000, 30_000, 300_000} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			now := time.Now()
			h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
				PayloadURL: "https://example.com/hook", Active: true}, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			const batch = 10_000
			for done := 0; done < history+100; done += batch {
				n := min(batch, history+100-done)
				ds := make([]store.DeliveryInsertParams, n)
				for j := range ds {
					state := store.DeliverySucceeded
					if done+j >= history {
						state = store.DeliveryPending
					}
					ds[j] = store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{"n":1}`), Endpoint: fmt.Sprintf("h%d:443", j%100), State: state}
				}
				ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: []byte(`{}`), CreatedAt: now}
				if err := s.EventEmit(ctx, func(tx store.EmitTx) error {
					if err := tx.EventInsert(ctx, ev); err != nil {
						return err
					}
					return tx.DeliveryInsertMany(ctx, ev.ID, now, ds)
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				st, err := s.DeliveryStats(ctx, now)
				if err != nil {
					b.Fatal(err)
				}
				if st.Pending != 100 || st.DeliveriesDone != history {
					b.Fatalf("stats = %+v, want 100 pending and %d done", st, history)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/op")
		})
	}
}
