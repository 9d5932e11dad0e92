package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "bench.db"), Getenv: noEnv})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkEventEmitFanout10k stores one event with 10,000 deliveries in one EventEmit, the
// durable-enqueue half of "one event fanned out to 10,000 hooks" (target <= 250 ms).
func BenchmarkEventEmitFanout10k(b *testing.B) {
	const fanout = 10_000
	s := benchStore(b)
	ctx := context.Background()
	h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true}, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"user":{"name":"Jane","githubLogin":"jane","avatarUrl":"https://example.com/a.png"},"organization":{"name":"acme","githubLogin":"acme"},"projectName":"web","stackName":"prod","updateUrl":"https://app.pulumi.com/acme/web/prod/updates/42","kind":"update","result":"succeeded","resourceChanges":{"create":3,"update":1}}`)
	ds := make([]store.DeliveryInsertParams, fanout)
	b.ResetTimer()
	for i := range b.N {
		for j := range ds {
			ds[j] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatRaw, Body: body, Endpoint: fmt.Sprintf("h%d.example.com:443", j%500)}
		}
		ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: body, CreatedAt: time.Now()}
		err := s.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), ds)
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

// BenchmarkDeliveryClaim measures claiming and completing work from a 10,000-delivery backlog
// spread over 100 endpoints, 16 at a time.
func BenchmarkDeliveryClaim(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	now := time.Now()
	h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true}, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	fill := func() {
		ds := make([]store.DeliveryInsertParams, 10_000)
		for j := range ds {
			ds[j] = store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`), Endpoint: fmt.Sprintf("h%d:443", j%100)}
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
	fill()
	claimed := 0
	b.ResetTimer()
	for range b.N {
		cds, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 16, PerEndpointLimit: 4})
		if err != nil {
			b.Fatal(err)
		}
		if len(cds) == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
			continue
		}
		for _, cd := range cds {
			if err := s.DeliveryComplete(ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded,
				Record: store.Attempt{StartedAt: now, ResponseCode: 200}, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
		claimed += len(cds)
	}
	b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkHookCandidates10k reads the 10,000 hooks of one organization that an event to it
// fans out to.
func BenchmarkHookCandidates10k(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	now := time.Now()
	for i := range 10_000 {
		if _, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: fmt.Sprint("h", i), DisplayName: "h",
			PayloadURL: "https://example.com/hook", Active: true, Filters: []webhook.Filter{webhook.UpdateSucceeded, webhook.UpdateFailed},
			Groups: []webhook.Group{webhook.GroupStacks}}, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	subject := webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
	b.ResetTimer()
	for range b.N {
		err := s.EventEmit(ctx, func(tx store.EmitTx) error {
			hs, err := tx.HookCandidates(ctx, subject, false)
			if err == nil && len(hs) != 10_000 {
				err = fmt.Errorf("got %d candidates", len(hs))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

// BenchmarkDeliveryClaimCappedBacklog claims when one endpoint, already at its cap, has a
// 10,000-delivery backlog due ahead of everything else: the worst case for the claim's scan.
func BenchmarkDeliveryClaimCappedBacklog(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	now := time.Now()
	h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true}, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]store.DeliveryInsertParams, 10_000)
	for j := range ds {
		ds[j] = store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`), Endpoint: "slow:443", NextAttemptAt: now.Add(-time.Hour)}
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
	if cds, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "holder", Now: now, Lease: time.Hour, Limit: 4, PerEndpointLimit: 4}); err != nil || len(cds) != 4 {
		b.Fatalf("hold the slow endpoint: %d, %v", len(cds), err)
	}
	b.ResetTimer()
	for range b.N {
		cds, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 16, PerEndpointLimit: 4})
		if err != nil || len(cds) != 0 {
			b.Fatalf("claim = %d, %v", len(cds), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/claim")
}

// fillOneEndpoint stores one event with n deliveries of a 700-byte raw body to one endpoint.
func fillOneEndpoint(b *testing.B, s *Store, n int) int64 {
	ctx := context.Background()
	now := time.Now()
	h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true, Secret: "s"}, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 700)
	for i := range body {
		body[i] = 'a'
	}
	ds := make([]store.DeliveryInsertParams, n)
	for j := range ds {
		ds[j] = store.DeliveryInsertParams{HookID: h.ID, Body: body, Endpoint: "one:443"}
	}
	ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: body, CreatedAt: now}
	if err := s.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, now, ds)
	}); err != nil {
		b.Fatal(err)
	}
	return h.ID
}

// BenchmarkDeliveryCycle8 is the store's share of the delivery loop with eight workers on one
// endpoint: claim eight deliveries, then record their eight attempts (with headers as the
// sender records them) in one DeliveryCompleteMany.
func BenchmarkDeliveryCycle8(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	fillOneEndpoint(b, s, 50000)
	hdr := map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"pulumi-webhooks/dev"}, "Pulumi-Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"},
		"Pulumi-Webhook-Kind": {"stack_update"}, "Pulumi-Webhook-Signature": {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		"Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG="}}
	b.ResetTimer()
	for range b.N {
		now := time.Now()
		cds, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 8, PerEndpointLimit: 8})
		if err != nil || len(cds) != 8 {
			b.Fatal(err, len(cds))
		}
		ps := make([]store.DeliveryCompleteParams, len(cds))
		for i, cd := range cds {
			ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded, Now: now,
				Record: store.Attempt{StartedAt: now, RequestURL: cd.URL, RequestHeaders: hdr, RequestBody: cd.Body, ResponseCode: 200,
					ResponseHeaders: map[string][]string{"Date": {"Mon"}, "Content-Length": {"0"}}, Duration: time.Millisecond}}
		}
		for _, err := range s.DeliveryCompleteMany(ctx, ps) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(8*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// cycleHeaders are request headers as the sender records them.
var cycleHeaders = map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"pulumi-webhooks/dev"}, "Pulumi-Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"},
	"Pulumi-Webhook-Kind": {"stack_update"}, "Pulumi-Webhook-Signature": {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	"Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG="}}

// BenchmarkDeliveryCycleFused8 is the store's share of the delivery loop as the engine runs
// it: each round records the eight attempts of the previous round and claims eight more, in
// one DeliveryCycle transaction.
func BenchmarkDeliveryCycleFused8(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	fillOneEndpoint(b, s, 50000)
	var ps []store.DeliveryCompleteParams
	b.ResetTimer()
	for range b.N {
		now := time.Now()
		res, err := s.DeliveryCycle(ctx, store.DeliveryCycleParams{Complete: ps,
			Claim: store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 8, PerEndpointLimit: 8}})
		if err != nil || len(res.Claimed) != 8 {
			b.Fatal(err, len(res.Claimed))
		}
		for _, err := range res.CompleteErrs {
			if err != nil {
				b.Fatal(err)
			}
		}
		ps = ps[:0]
		for _, cd := range res.Claimed {
			ps = append(ps, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded, Now: now,
				Record: store.Attempt{StartedAt: now, RequestURL: cd.URL, RequestHeaders: cycleHeaders, RequestBody: cd.Body, ResponseCode: 200,
					ResponseHeaders: map[string][]string{"Date": {"Mon"}, "Content-Length": {"0"}}, Duration: time.Millisecond}})
		}
	}
	b.ReportMetric(float64(8*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkEventEmitSmall stores events of one delivery each, the shape of a pipeline's
// `pulumi-webhooks emit` or POST /events: one emitter after another (each waits for its own
// commit to be durable) and 8 per CPU at once (their commits can share one fsync). It prints
// events/s.
func BenchmarkEventEmitSmall(b *testing.B) {
	for _, emitters := range []int{1, 8} {
		b.Run(fmt.Sprintf("emitters=%d", emitters), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			h, err := s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
				PayloadURL: "https://example.com/hook", Active: true}, Now: time.Now()})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"kind":"update","result":"succeeded","projectName":"web","stackName":"prod"}`)
			emit := func() error {
				ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: body, CreatedAt: time.Now()}
				return s.EventEmit(ctx, func(tx store.EmitTx) error {
					if err := tx.EventInsert(ctx, ev); err != nil {
						return err
					}
					return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: h.ID, Body: body, Endpoint: "example.com:443"}})
				})
			}
			b.SetParallelism(emitters) // GOMAXPROCS*emitters goroutines; divided below
			b.ResetTimer()
			if emitters == 1 {
				for range b.N {
					if err := emit(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := emit(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
