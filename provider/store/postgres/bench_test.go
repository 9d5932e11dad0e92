package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// BenchmarkDeliveryCycle8 measures the claim loop's store round on PostgreSQL: record 8
// finished attempts and claim the next 8 in one transaction (DeliveryCycle), as the engine
// does with 8 workers, over 4 endpoints capped at 4 each. It reports deliveries per second
// through the store alone.
func BenchmarkDeliveryCycle8(b *testing.B) {
	benchDeliveryCycle8(b, store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 8, PerEndpointLimit: 4})
}

// BenchmarkDeliveryCycle8OrgCap is BenchmarkDeliveryCycle8 under PerOrgLimit too (8, the
// claim's size, so that it trims nothing): the cost of holding the organization's cap.
func BenchmarkDeliveryCycle8OrgCap(b *testing.B) {
	benchDeliveryCycle8(b, store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 8, PerEndpointLimit: 4, PerOrgLimit: 8})
}

func benchDeliveryCycle8(b *testing.B, claim store.DeliveryClaimParams) {
	st, h := benchStoreWithHook(b, "s")
	ctx := context.Background()
	const total = 4000
	for n := 0; n < total; n += 500 {
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"p":1}`), CreatedAt: t0}
		ds := make([]store.DeliveryInsertParams, 500)
		for i := range ds {
			ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{"p":1}`), Endpoint: fmt.Sprintf("e%d:443", i%4), NextAttemptAt: t0}
		}
		if err := st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, t0, ds)
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	done := 0
	for i := 0; i < b.N; i++ {
		var prev []*store.ClaimedDelivery
		for {
			p := store.DeliveryCycleParams{Claim: claim}
			for _, cd := range prev {
				p.Complete = append(p.Complete, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded,
					Now: t0, Record: store.Attempt{StartedAt: t0, RequestBody: cd.Body, ResponseCode: 200}})
			}
			res, err := st.DeliveryCycle(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			done += len(prev)
			if len(res.Claimed) == 0 {
				break
			}
			prev = res.Claimed
		}
		if i+1 < b.N { // put the work back for the next iteration
			if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET state = 'pending', attempts = 0`); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(done)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkEventEmitFanout10k measures one event stored with 10,000 deliveries (raw bodies,
// read from the event) in one transaction.
func BenchmarkEventEmitFanout10k(b *testing.B) {
	st, h := benchStoreWithHook(b, "")
	ctx := context.Background()
	payload := []byte(`{"kind":"stack","p":1}`)
	b.ResetTimer()
	for range b.N {
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: payload, CreatedAt: t0}
		ds := make([]store.DeliveryInsertParams, 10000)
		for i := range ds {
			ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: payload, Endpoint: fmt.Sprintf("e%d:443", i%50), NextAttemptAt: t0}
		}
		if err := st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, t0, ds)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmitClaimed measures the store's part of the local fast path on PostgreSQL: an
// event with 4 deliveries (4 endpoints capped at 4) stored already claimed by the emitting
// worker (direct: store.EmitClaimer), against the same event stored pending and then claimed
// by the claim loop (claim-loop: DeliveryInsertMany, then DeliveryClaim). Each op then records
// the 4 attempts (DeliveryCompleteMany), the same in both, so the queue is empty again;
// emit-us/op is the EventEmit alone (what an Emit's caller waits for).
func BenchmarkEmitClaimed(b *testing.B) {
	benchEmitClaimed(b, store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 4, PerEndpointLimit: 4})
}

// BenchmarkEmitClaimedOrgCap is BenchmarkEmitClaimed under PerOrgLimit too (4, the claim's
// size, so that it trims nothing): the cost of holding the organization's cap.
func BenchmarkEmitClaimedOrgCap(b *testing.B) {
	benchEmitClaimed(b, store.DeliveryClaimParams{Worker: "w", Now: t0, Lease: time.Hour, Limit: 4, PerEndpointLimit: 4, PerOrgLimit: 4})
}

func benchEmitClaimed(b *testing.B, p store.DeliveryClaimParams) {
	for _, mode := range []string{"direct", "claim-loop"} {
		b.Run(mode, func(b *testing.B) {
			st, h := benchStoreWithHook(b, "s")
			ctx := context.Background()
			payload := []byte(`{"kind":"stack","p":1}`)
			var emitting time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: payload, CreatedAt: t0}
				ds := make([]store.DeliveryInsertParams, 4)
				for i := range ds {
					ds[i] = store.DeliveryInsertParams{HookID: h.ID, Body: payload, Endpoint: fmt.Sprintf("e%d:443", i)}
				}
				var cds []*store.ClaimedDelivery
				emitStart := time.Now()
				if err := st.EventEmit(ctx, func(tx store.EmitTx) error {
					if err := tx.EventInsert(ctx, ev); err != nil {
						return err
					}
					if mode == "direct" {
						var err error
						cds, err = tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, t0, ds, p)
						return err
					}
					return tx.DeliveryInsertMany(ctx, ev.ID, t0, ds)
				}); err != nil {
					b.Fatal(err)
				}
				emitting += time.Since(emitStart)
				if mode != "direct" {
					var err error
					if cds, err = st.DeliveryClaim(ctx, p); err != nil {
						b.Fatal(err)
					}
				}
				if len(cds) != 4 {
					b.Fatalf("claimed %d deliveries, want 4", len(cds))
				}
				ps := make([]store.DeliveryCompleteParams, len(cds))
				for i, cd := range cds {
					ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded,
						Now: t0, Record: store.Attempt{StartedAt: t0, RequestBody: cd.Body, ResponseCode: 200}}
				}
				for _, err := range st.DeliveryCompleteMany(ctx, ps) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(emitting.Microseconds())/float64(b.N), "emit-us/op")
		})
	}
}

// benchStoreWithHook opens a store on a fresh database of the shared server, closed when b
// ends, with one organization hook (secret "" for none).
func benchStoreWithHook(b *testing.B, secret string) (*Store, *store.Hook) {
	b.Helper()
	st, err := Open(context.Background(), Config{URL: pgtest.Shared(b).NewDatabase(b), Key: testKey, Getenv: noEnv})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h, err := st.HookCreate(context.Background(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true, Secret: secret}, Now: t0})
	if err != nil {
		b.Fatal(err)
	}
	return st, h
}
