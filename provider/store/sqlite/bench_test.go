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

// The benchmarks print their figures; what each one relies on besides (every delivery stored,
// claimed once, the cap kept) is checked on every test run by a test of the same workload at
// a bounded size, sharing its setup.

func benchStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "bench.db"), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// benchHook creates the org hook of acme the benchmarks' deliveries belong to.
func benchHook(t testing.TB, s *Store, now time.Time) *store.Hook {
	t.Helper()
	h, err := s.HookCreate(context.Background(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h", DisplayName: "h",
		PayloadURL: "https://example.com/hook", Active: true, Secret: "s"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fanoutBody is a raw update payload of the usual size.
var fanoutBody = []byte(`{"user":{"name":"Jane","githubLogin":"jane","avatarUrl":"https://example.com/a.png"},"organization":{"name":"acme","githubLogin":"acme"},"projectName":"web","stackName":"prod","updateUrl":"https://app.pulumi.com/acme/web/prod/updates/42","kind":"update","result":"succeeded","resourceChanges":{"create":3,"update":1}}`)

// emitDeliveries stores one event with one delivery per entry of ds, in one EventEmit, and
// returns the event's ID.
func emitDeliveries(t testing.TB, s *Store, body []byte, now time.Time, ds []store.DeliveryInsertParams) string {
	t.Helper()
	ctx := context.Background()
	ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: body, CreatedAt: now}
	err := s.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, now, ds)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

// spread is n deliveries of hook with body, to endpoints endpoints in turn, due at due.
func spread(hook int64, body []byte, n, endpoints int, due time.Time) []store.DeliveryInsertParams {
	ds := make([]store.DeliveryInsertParams, n)
	for j := range ds {
		ds[j] = store.DeliveryInsertParams{HookID: hook, Format: webhook.FormatRaw, Body: body, Endpoint: fmt.Sprintf("h%d.example.com:443", j%endpoints), NextAttemptAt: due}
	}
	return ds
}

// BenchmarkEventEmitFanout10k stores one event with 10,000 deliveries in one EventEmit, the
// durable-enqueue half of "one event fanned out to 10,000 hooks" (target <= 250 ms).
func BenchmarkEventEmitFanout10k(b *testing.B) {
	const fanout = 10_000
	s := benchStore(b)
	h := benchHook(b, s, time.Now())
	b.ResetTimer()
	for range b.N {
		emitDeliveries(b, s, fanoutBody, time.Now(), spread(h.ID, fanoutBody, fanout, 500, time.Time{}))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

// TestEventEmitFanoutCounts: one EventEmit of many deliveries stores every one of them, each
// pending, with the body and endpoint it was given.
func TestEventEmitFanoutCounts(t *testing.T) {
	t.Parallel()
	const fanout = 500
	s := benchStore(t)
	h := benchHook(t, s, time.Now())
	ev := emitDeliveries(t, s, fanoutBody, time.Now(), spread(h.ID, fanoutBody, fanout, 50, time.Time{}))
	ds := mustList(t, s, ev)
	ids, endpoints := map[string]bool{}, map[string]bool{}
	for _, d := range ds {
		ids[d.ID], endpoints[d.Endpoint] = true, true
		if d.State != store.DeliveryPending || string(d.Body) != string(fanoutBody) || d.HookID != h.ID {
			t.Fatalf("stored delivery %+v, want a pending one of hook %d with the body", d, h.ID)
		}
	}
	if len(ds) != fanout || len(ids) != fanout || len(endpoints) != 50 {
		t.Fatalf("%d deliveries (%d distinct) to %d endpoints stored, want %d to 50", len(ds), len(ids), len(endpoints), fanout)
	}
}

// claimer claims and completes deliveries the way BenchmarkDeliveryClaim does, 16 at a time
// with 4 per endpoint, and keeps count of what it claimed.
type claimer struct {
	t       testing.TB
	s       *Store
	now     time.Time
	claimed map[string]int
}

// round claims one batch and completes it, returning what it claimed.
func (c *claimer) round() []*store.ClaimedDelivery {
	c.t.Helper()
	ctx := context.Background()
	cds, err := c.s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: c.now, Lease: time.Minute, Limit: 16, PerEndpointLimit: 4})
	if err != nil {
		c.t.Fatal(err)
	}
	perEndpoint := map[string]int{}
	for _, cd := range cds {
		perEndpoint[cd.Endpoint]++
		if c.claimed != nil {
			c.claimed[cd.ID]++
		}
		if err := c.s.DeliveryComplete(ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded,
			Record: store.Attempt{StartedAt: c.now, ResponseCode: 200}, Now: c.now}); err != nil {
			c.t.Fatal(err)
		}
	}
	for ep, n := range perEndpoint {
		if n > 4 {
			c.t.Fatalf("one claim took %d deliveries to %s, over the cap of 4", n, ep)
		}
	}
	return cds
}

// BenchmarkDeliveryClaim measures claiming and completing work from a 10,000-delivery backlog
// spread over 100 endpoints, 16 at a time.
func BenchmarkDeliveryClaim(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	h := benchHook(b, s, now)
	fill := func() { emitDeliveries(b, s, []byte(`{}`), now, spread(h.ID, []byte(`{}`), 10_000, 100, now)) }
	fill()
	c := &claimer{t: b, s: s, now: now}
	claimed := 0
	b.ResetTimer()
	for range b.N {
		n := len(c.round())
		if n == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
			continue
		}
		claimed += n
	}
	b.ReportMetric(float64(claimed)/b.Elapsed().Seconds(), "deliveries/s")
}

// TestDeliveryClaimDrainsBacklog runs BenchmarkDeliveryClaim's rounds over a bounded backlog:
// batches as full as the caps allow while there is work, no endpoint over its cap in a batch,
// every delivery claimed exactly once, and nothing left.
func TestDeliveryClaimDrainsBacklog(t *testing.T) {
	t.Parallel()
	const backlog = 400
	s := benchStore(t)
	now := time.Now()
	h := benchHook(t, s, now)
	ev := emitDeliveries(t, s, []byte(`{}`), now, spread(h.ID, []byte(`{}`), backlog, 20, now))
	left := map[string]int{} // deliveries not yet claimed, per endpoint
	for _, d := range mustList(t, s, ev) {
		left[d.Endpoint]++
	}
	c := &claimer{t: t, s: s, now: now, claimed: map[string]int{}}
	for round := 0; ; round++ {
		want := 0
		for _, n := range left {
			want += min(n, 4)
		}
		want = min(want, 16)
		cds := c.round()
		if len(cds) != want {
			t.Fatalf("round %d claimed %d, want %d (16 at most, 4 per endpoint, of %v left)", round, len(cds), want, left)
		}
		if want == 0 {
			break
		}
		for _, cd := range cds {
			left[cd.Endpoint]--
		}
	}
	for _, d := range mustList(t, s, ev) {
		if c.claimed[d.ID] != 1 || d.State != store.DeliverySucceeded || d.Attempts != 1 {
			t.Errorf("delivery %s claimed %d times, ended %s after %d attempts; want once, succeeded", d.ID, c.claimed[d.ID], d.State, d.Attempts)
		}
	}
	if len(c.claimed) != backlog {
		t.Errorf("%d deliveries claimed, want %d", len(c.claimed), backlog)
	}
}

// createCandidates creates n org hooks of acme that an update of acme/web/prod fans out to.
func createCandidates(t testing.TB, s *Store, n int) webhook.Scope {
	t.Helper()
	for i := range n {
		if _, err := s.HookCreate(context.Background(), store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: fmt.Sprint("h", i), DisplayName: "h",
			PayloadURL: "https://example.com/hook", Active: true, Filters: []webhook.Filter{webhook.UpdateSucceeded, webhook.UpdateFailed},
			Groups: []webhook.Group{webhook.GroupStacks}}, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}
}

// candidates reads the hooks an event to subject fans out to and fails t unless there are want.
func candidates(t testing.TB, s *Store, subject webhook.Scope, want int) {
	t.Helper()
	ctx := context.Background()
	err := s.EventEmit(ctx, func(tx store.EmitTx) error {
		hs, err := tx.HookCandidates(ctx, subject, false)
		if err == nil && len(hs) != want {
			err = fmt.Errorf("got %d candidates, want %d", len(hs), want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHookCandidates10k reads the 10,000 hooks of one organization that an event to it
// fans out to.
func BenchmarkHookCandidates10k(b *testing.B) {
	s := benchStore(b)
	subject := createCandidates(b, s, 10_000)
	b.ResetTimer()
	for range b.N {
		candidates(b, s, subject, 10_000)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}

// TestHookCandidatesCounts: every hook of the organization is a candidate, once.
func TestHookCandidatesCounts(t *testing.T) {
	t.Parallel()
	s := benchStore(t)
	candidates(t, s, createCandidates(t, s, 300), 300)
}

// holdCappedEndpoint stores backlog deliveries due an hour ago to one endpoint and claims four
// of them for an hour, which takes the endpoint to its cap of 4.
func holdCappedEndpoint(t testing.TB, s *Store, backlog int, now time.Time) {
	t.Helper()
	h := benchHook(t, s, now)
	emitDeliveries(t, s, []byte(`{}`), now, spread(h.ID, []byte(`{}`), backlog, 1, now.Add(-time.Hour)))
	if cds, err := s.DeliveryClaim(context.Background(), store.DeliveryClaimParams{Worker: "holder", Now: now, Lease: time.Hour, Limit: 4, PerEndpointLimit: 4}); err != nil || len(cds) != 4 {
		t.Fatalf("hold the slow endpoint: %d, %v", len(cds), err)
	}
}

// claimNothing claims for another worker and fails t unless it gets nothing.
func claimNothing(t testing.TB, s *Store, now time.Time) {
	cds, err := s.DeliveryClaim(context.Background(), store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 16, PerEndpointLimit: 4})
	if err != nil || len(cds) != 0 {
		t.Fatalf("claim = %d, %v; want nothing while the endpoint is at its cap", len(cds), err)
	}
}

// BenchmarkDeliveryClaimCappedBacklog claims when one endpoint, already at its cap, has a
// 10,000-delivery backlog due ahead of everything else: the worst case for the claim's scan.
func BenchmarkDeliveryClaimCappedBacklog(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	holdCappedEndpoint(b, s, 10_000, now)
	b.ResetTimer()
	for range b.N {
		claimNothing(b, s, now)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/claim")
}

// TestDeliveryClaimCappedBacklog: an endpoint at its cap yields nothing, however much of its
// backlog is due.
func TestDeliveryClaimCappedBacklog(t *testing.T) {
	t.Parallel()
	s := benchStore(t)
	now := time.Now()
	holdCappedEndpoint(t, s, 200, now)
	claimNothing(t, s, now)
}

// fillOneEndpoint stores one event with n deliveries of a 700-byte raw body to one endpoint.
func fillOneEndpoint(t testing.TB, s *Store, n int) string {
	t.Helper()
	now := time.Now()
	h := benchHook(t, s, now)
	body := make([]byte, 700)
	for i := range body {
		body[i] = 'a'
	}
	return emitDeliveries(t, s, body, now, spread(h.ID, body, n, 1, time.Time{}))
}

// cycleHeaders are request headers as the sender records them.
var cycleHeaders = map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"pulumi-webhooks/dev"}, "Pulumi-Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"},
	"Pulumi-Webhook-Kind": {"stack_update"}, "Pulumi-Webhook-Signature": {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	"Webhook-Id": {"0199-aaaa-bbbb-cccc-dddddddddddd"}, "Webhook-Timestamp": {"1700000000"}, "Webhook-Signature": {"v1,abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG="}}

// succeeded is the completion of a claimed delivery as the engine records a 200.
func succeeded(cd *store.ClaimedDelivery, now time.Time) store.DeliveryCompleteParams {
	return store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: cd.Attempts, State: store.DeliverySucceeded, Now: now,
		Record: store.Attempt{StartedAt: now, RequestURL: cd.URL, RequestHeaders: cycleHeaders, RequestBody: cd.Body, ResponseCode: 200,
			ResponseHeaders: map[string][]string{"Date": {"Mon"}, "Content-Length": {"0"}}, Duration: time.Millisecond}}
}

// cycle8 is one round of BenchmarkDeliveryCycle8: claim eight deliveries of the endpoint, then
// record their eight attempts in one DeliveryCompleteMany. It returns what it claimed.
func cycle8(t testing.TB, s *Store) []*store.ClaimedDelivery {
	ctx := context.Background()
	now := time.Now()
	cds, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 8, PerEndpointLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]store.DeliveryCompleteParams, len(cds))
	for i, cd := range cds {
		ps[i] = succeeded(cd, now)
	}
	for _, err := range s.DeliveryCompleteMany(ctx, ps) {
		if err != nil {
			t.Fatal(err)
		}
	}
	return cds
}

// BenchmarkDeliveryCycle8 is the store's share of the delivery loop with eight workers on one
// endpoint: claim eight deliveries, then record their eight attempts (with headers as the
// sender records them) in one DeliveryCompleteMany.
func BenchmarkDeliveryCycle8(b *testing.B) {
	s := benchStore(b)
	fillOneEndpoint(b, s, 50000)
	b.ResetTimer()
	for range b.N {
		if n := len(cycle8(b, s)); n != 8 {
			b.Fatalf("claimed %d, want 8", n)
		}
	}
	b.ReportMetric(float64(8*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// fusedCycle runs rounds of the delivery loop as the engine runs them until stop says so:
// each round records the attempts of the previous one and claims up to n more (n workers, cap
// n on the endpoint), in one DeliveryCycle. It calls stop with every round's claims.
func fusedCycle(t testing.TB, s *Store, n int, stop func(round int, claimed []*store.ClaimedDelivery) bool) {
	ctx := context.Background()
	var ps []store.DeliveryCompleteParams
	for round := 0; ; round++ {
		now := time.Now()
		res, err := s.DeliveryCycle(ctx, store.DeliveryCycleParams{Complete: ps,
			Claim: store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: n, PerEndpointLimit: n}})
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range res.CompleteErrs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if stop(round, res.Claimed) {
			return
		}
		ps = ps[:0]
		for _, cd := range res.Claimed {
			ps = append(ps, succeeded(cd, now))
		}
	}
}

// BenchmarkDeliveryCycleFused8 is the store's share of the delivery loop as the engine runs
// it: each round records the eight attempts of the previous round and claims eight more, in
// one DeliveryCycle transaction.
func BenchmarkDeliveryCycleFused8(b *testing.B) {
	s := benchStore(b)
	fillOneEndpoint(b, s, 50000)
	b.ResetTimer()
	fusedCycle(b, s, 8, func(round int, claimed []*store.ClaimedDelivery) bool {
		if len(claimed) != 8 {
			b.Fatalf("claimed %d, want 8", len(claimed))
		}
		return round+1 >= b.N
	})
	b.ReportMetric(float64(8*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkDeliveryCycleRounds is BenchmarkDeliveryCycleFused8 with rounds of 8 to 128
// deliveries: what a delivery costs the store as rounds grow, so how far claiming ahead of
// the workers (larger rounds for the same slots) could take the claim loop. It prints the
// store's time per delivery. The lean runs drop, in their own throwaway store, the two indexes
// of attempts and the trigger counting state changes: not a schema the store supports (the
// listings and the queue's counts need them), but the floor of a round that still writes
// the delivery's row twice and its attempt once.
func BenchmarkDeliveryCycleRounds(b *testing.B) {
	lean := []string{`DROP INDEX attempts_hook`, `DROP INDEX attempts_delivery`, `DROP TRIGGER deliveries_count_update`}
	for _, size := range []int{8, 16, 32, 64, 128} {
		for _, schema := range []string{"store", "lean"} {
			if schema == "lean" && size != 8 && size != 64 {
				continue
			}
			b.Run(fmt.Sprintf("round=%d/%s", size, schema), func(b *testing.B) {
				s := benchStore(b)
				if schema == "lean" {
					for _, q := range lean {
						if _, err := s.db.Exec(q); err != nil {
							b.Fatal(err)
						}
					}
				}
				fillOneEndpoint(b, s, max(50000, size*(b.N+1)))
				b.ResetTimer()
				fusedCycle(b, s, size, func(round int, claimed []*store.ClaimedDelivery) bool {
					if len(claimed) != size {
						b.Fatalf("claimed %d, want %d", len(claimed), size)
					}
					return round+1 >= b.N
				})
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(size*b.N), "us/delivery")
			})
		}
	}
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

// TestDeliveryCyclesDrainOneEndpoint runs the rounds of both cycle benchmarks over a bounded
// backlog: batches of eight until it is empty, every delivery claimed once and recorded as
// succeeded after one attempt.
func TestDeliveryCyclesDrainOneEndpoint(t *testing.T) {
	t.Parallel()
	const backlog = 100 // not a multiple of 8: the last batch is partial
	check := func(t *testing.T, s *Store, ev string, claimed map[string]int) {
		t.Helper()
		for _, d := range mustList(t, s, ev) {
			if claimed[d.ID] != 1 || d.State != store.DeliverySucceeded || d.Attempts != 1 {
				t.Errorf("delivery %s claimed %d times, ended %s after %d attempts; want once, succeeded", d.ID, claimed[d.ID], d.State, d.Attempts)
			}
		}
		if len(claimed) != backlog {
			t.Errorf("%d deliveries claimed, want %d", len(claimed), backlog)
		}
	}
	batch := func(t *testing.T, claimed map[string]int, cds []*store.ClaimedDelivery) {
		t.Helper()
		if want := min(8, backlog-len(claimed)); len(cds) != want {
			t.Fatalf("claimed %d with %d left, want %d", len(cds), backlog-len(claimed), want)
		}
		for _, cd := range cds {
			claimed[cd.ID]++
		}
	}
	t.Run("claim then complete", func(t *testing.T) {
		t.Parallel()
		s := benchStore(t)
		ev := fillOneEndpoint(t, s, backlog)
		claimed := map[string]int{}
		for {
			cds := cycle8(t, s)
			batch(t, claimed, cds)
			if len(cds) == 0 {
				break
			}
		}
		check(t, s, ev, claimed)
	})
	t.Run("fused", func(t *testing.T) {
		t.Parallel()
		s := benchStore(t)
		ev := fillOneEndpoint(t, s, backlog)
		claimed := map[string]int{}
		fusedCycle(t, s, 8, func(_ int, cds []*store.ClaimedDelivery) bool {
			batch(t, claimed, cds)
			return len(cds) == 0
		})
		check(t, s, ev, claimed)
	})
}
