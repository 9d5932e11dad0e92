package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Claims: which due deliveries a worker takes, leases, the per-endpoint cap and concurrent
// claimers (fair claims across retries and organizations are in fairness.go).

// runClaims runs the claim tests.
func runClaims(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"ClaimBasics", testClaimBasics},
		{"ClaimInvalid", testClaimInvalid},
		{"ClaimOrder", testClaimOrder},
		{"ClaimPerEndpointCap", testClaimPerEndpointCap},
		{"ClaimBacklogDoesNotBlockOthers", testClaimBacklogDoesNotBlockOthers},
		{"ClaimExpiredLease", testClaimExpiredLease},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimCrowdedWindow", testClaimCrowdedWindow},
		{"ClaimRetryNotStarved", testClaimRetryNotStarved},
		{"ClaimRoundRobinOrgs", testClaimRoundRobinOrgs},
		{"ClaimPerOrgCap", testClaimPerOrgCap},
	})
}

func testClaimBasics(t *testing.T, b *testBundle) {
	s := spec(orgScope("acme"), "h")
	s.Secret = "claim-secret"
	h := createHook(t, b, s)
	_, dids := emit(t, b, stackScope("acme", "p", "s"), webhook.UpdateSucceeded,
		enqueue{hook: h}, enqueue{hook: h, next: T0.Add(time.Hour)})
	now := T0.Add(time.Second)
	cds := claim(t, b, "worker-1", now, 10, 0)
	if len(cds) != 1 || cds[0].ID != dids[0] {
		t.Fatalf("claimed %v, want only the due %s", ids(cds), dids[0])
	}
	cd := cds[0]
	if cd.State != store.DeliveryRunning || cd.Attempts != 1 || cd.ClaimedBy != "worker-1" || !cd.LeaseUntil.Equal(now.Add(time.Minute)) ||
		!cd.UpdatedAt.Equal(now) || cd.URL != h.PayloadURL || cd.Secret != "claim-secret" || !cd.HookActive ||
		cd.HookID != h.ID || cd.Filter != webhook.UpdateSucceeded || cd.Kind != webhook.KindStackUpdate || string(cd.Body) != `{"n":0}` {
		t.Fatalf("claimed delivery = %+v", cd)
	}
	stored := getDelivery(t, b, cd.ID)
	if stored.State != store.DeliveryRunning || stored.Attempts != 1 || stored.ClaimedBy != "worker-1" {
		t.Fatalf("stored claimed delivery = %+v", stored)
	}
	if again := claim(t, b, "worker-2", now, 10, 0); len(again) != 0 {
		t.Fatalf("a held delivery was claimed again: %v", ids(again))
	}
	if err := complete(b, cd, store.DeliverySucceeded, now); err != nil {
		t.Fatal(err)
	}
	// The hook's URL and secret are read at claim time.
	url2, secret2 := "https://example.net/moved", "rotated"
	s.PayloadURL = url2
	if _, err := b.st.HookUpdate(b.ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: s, Secret: &secret2, Now: now}); err != nil {
		t.Fatal(err)
	}
	later := T0.Add(2 * time.Hour)
	cds = claim(t, b, "worker-1", later, 10, 0)
	if len(cds) != 1 || cds[0].ID != dids[1] || cds[0].URL != url2 || cds[0].Secret != secret2 {
		t.Fatalf("claim after update = %+v", cds)
	}
	if got := claim(t, b, "worker-1", later, 0, 0); len(got) != 0 {
		t.Fatalf("Limit 0 claimed %d", len(got))
	}
}

func testClaimInvalid(t *testing.T, b *testBundle) {
	for _, p := range []store.DeliveryClaimParams{
		{Now: T0, Lease: time.Minute, Limit: 1},
		{Worker: "w", Now: T0, Limit: 1},
		{Worker: "w", Now: T0, Lease: time.Minute, Limit: 1, PerEndpointLimit: -1},
	} {
		if _, err := b.st.DeliveryClaim(b.ctx, p); err == nil {
			t.Errorf("DeliveryClaim(%+v) succeeded", p)
		}
	}
}

func testClaimOrder(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	// Three deliveries; the first becomes a retry due earliest. First attempts and retries
	// take turns: a claim of two takes the retry and the first attempt due first.
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, next: T0})
	cds := claim(t, b, "w", T0, 1, 0)
	if len(cds) != 1 {
		t.Fatal("nothing to claim")
	}
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliveryPending,
		NextAttemptAt: T0.Add(time.Second), Record: store.Attempt{StartedAt: T0, ResponseCode: 500}, Now: T0}); err != nil {
		t.Fatal(err)
	}
	_, later := emit(t, b, orgScope("acme"), webhook.StackDeleted,
		enqueue{hook: h, next: T0.Add(3 * time.Second)}, enqueue{hook: h, next: T0.Add(2 * time.Second)})
	now := T0.Add(time.Minute)
	got := ids(claim(t, b, "w", now, 2, 0))
	if want := []string{later[1], dids[0]}; !slices.Equal(got, want) {
		t.Fatalf("claim = %v, want the first attempt due first and the retry %v (first attempts listed first)", got, want)
	}
	if got := ids(claim(t, b, "w", now, 5, 0)); !slices.Equal(got, []string{later[0]}) {
		t.Fatalf("then claimed %v, want the other first attempt %s", got, later[0])
	}
}

func testClaimPerEndpointCap(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	var es []enqueue
	for i := range 10 {
		es = append(es, enqueue{hook: h, endpoint: "slow:443", next: T0.Add(time.Duration(i) * time.Millisecond)})
	}
	es = append(es, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)}, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)})
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	first := claim(t, b, "w1", now, 100, 3)
	count := func(cds []*store.ClaimedDelivery) map[string]int {
		m := map[string]int{}
		for _, cd := range cds {
			m[cd.Endpoint]++
		}
		return m
	}
	if c := count(first); c["slow:443"] != 3 || c["fast:443"] != 2 || len(first) != 5 {
		t.Fatalf("first claim per endpoint = %v, want slow 3 fast 2", c)
	}
	// Another worker sees the held leases: the slow endpoint is full.
	if second := claim(t, b, "w2", now, 100, 3); len(second) != 0 {
		t.Fatalf("second worker claimed %v past the cap", count(second))
	}
	// A raised cap admits more, counting what is held.
	if c := count(claim(t, b, "w2", now, 100, 5)); c["slow:443"] != 2 || len(c) != 1 {
		t.Fatalf("claim with cap 5 = %v, want slow 2", c)
	}
	// Finishing one frees one slot.
	var slow *store.ClaimedDelivery
	for _, cd := range first {
		if cd.Endpoint == "slow:443" {
			slow = cd
			break
		}
	}
	if err := complete(b, slow, store.DeliverySucceeded, now); err != nil {
		t.Fatal(err)
	}
	if c := count(claim(t, b, "w3", now, 100, 5)); c["slow:443"] != 1 || len(c) != 1 {
		t.Fatalf("claim after one finished = %v, want slow 1", c)
	}
	// An expired lease no longer counts against the cap.
	if c := count(claim(t, b, "w4", now.Add(2*time.Minute), 100, 5)); c["slow:443"] != 5 || c["fast:443"] != 2 {
		t.Fatalf("claim after leases expired = %v, want slow 5 fast 2", c)
	}
}

// A slow endpoint with a large backlog due first must not hold back other endpoints' work
// once it is at its cap.
func testClaimBacklogDoesNotBlockOthers(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, 0, 505)
	for i := range 500 {
		es = append(es, enqueue{hook: h, endpoint: "slow:443", next: T0.Add(time.Duration(i) * time.Microsecond)})
	}
	for range 5 {
		es = append(es, enqueue{hook: h, endpoint: "fast:443", next: T0.Add(time.Second)})
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	counts := map[string]int{}
	for i := range 2 {
		for _, cd := range claim(t, b, fmt.Sprint("w", i), now, 10, 5) {
			counts[cd.Endpoint]++
		}
	}
	if counts["slow:443"] != 5 || counts["fast:443"] != 5 {
		t.Fatalf("two claims took %v, want slow 5 (its cap) and all 5 fast", counts)
	}
}

func testClaimExpiredLease(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd1, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "dead", Now: T0, Lease: 10 * time.Second, Limit: 1})
	if err != nil || len(cd1) != 1 {
		t.Fatalf("first claim = %d, %v", len(cd1), err)
	}
	// Before the lease ends nobody else gets it.
	if got := claim(t, b, "alive", T0.Add(9*time.Second), 10, 0); len(got) != 0 {
		t.Fatal("a live lease was taken")
	}
	cd2 := claim(t, b, "alive", T0.Add(11*time.Second), 10, 0)
	if len(cd2) != 1 || cd2[0].ID != dids[0] || cd2[0].Attempts != 2 || cd2[0].ClaimedBy != "alive" {
		t.Fatalf("reclaim = %+v", cd2)
	}
	err = complete(b, cd1[0], store.DeliverySucceeded, T0.Add(12*time.Second))
	wantErr(t, "DeliveryComplete by the worker whose lease expired", err, store.ErrLeaseLost)
	if err := complete(b, cd2[0], store.DeliverySucceeded, T0.Add(12*time.Second)); err != nil {
		t.Fatalf("DeliveryComplete by the new holder: %v", err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliverySucceeded || d.Attempts != 2 {
		t.Fatalf("delivery = %+v", d)
	}
}

func testClaimConcurrent(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	const n = 300
	es := make([]enqueue, n)
	for i := range es {
		es[i] = enqueue{hook: h, endpoint: fmt.Sprintf("e%d:443", i%10)}
	}
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			for {
				cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: worker, Now: T0.Add(time.Second), Lease: time.Hour, Limit: 7, PerEndpointLimit: 0})
				if err != nil {
					errs <- err
					return
				}
				if len(cds) == 0 {
					return
				}
				for _, cd := range cds {
					mu.Lock()
					if prev, ok := seen[cd.ID]; ok {
						mu.Unlock()
						errs <- fmt.Errorf("delivery %s claimed by %s and %s", cd.ID, prev, worker)
						return
					}
					seen[cd.ID] = worker
					mu.Unlock()
					if err := complete(b, cd, store.DeliverySucceeded, T0.Add(time.Second)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != len(dids) {
		t.Fatalf("claimed %d of %d deliveries", len(seen), len(dids))
	}
}

// testClaimCrowdedWindow: an endpoint one short of its cap has a backlog due ahead of another
// endpoint's work; the claim takes what the busy endpoint has room for and still reaches the
// other endpoint's deliveries behind the backlog.
func testClaimCrowdedWindow(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	es := make([]enqueue, 0, 43)
	for i := range 40 {
		es = append(es, enqueue{hook: h, endpoint: "busy:443", next: T0.Add(time.Duration(i) * time.Microsecond)})
	}
	for range 3 {
		es = append(es, enqueue{hook: h, endpoint: "calm:443", next: T0.Add(time.Second)})
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	now := T0.Add(time.Minute)
	if got := claim(t, b, "w0", now, 1, 3); len(got) != 1 || got[0].Endpoint != "busy:443" {
		t.Fatalf("first claim = %v", ids(got))
	}
	counts := map[string]int{}
	for _, cd := range claim(t, b, "w1", now, 5, 3) {
		counts[cd.Endpoint]++
	}
	if counts["busy:443"] != 2 || counts["calm:443"] != 3 {
		t.Fatalf("claim took %v, want busy 2 (up to its cap of 3 with 1 held) and all 3 calm", counts)
	}
}
