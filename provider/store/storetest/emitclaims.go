package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Emit claims: the local fast path (store.EmitClaimer), an emit that stores its deliveries
// already claimed by the emitting process's idle workers. The tests take it as the engine
// does, by asserting it on EventEmit's transaction; a backend whose EmitTx lacks it fails them.
// It claims only when nothing in the queue is due, within the caps counted as a claim counts
// them, and leaves its deliveries as a claim would leave them.

// runEmitClaims runs the emit claim tests.
func runEmitClaims(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"EmitClaimBasics", testEmitClaimBasics},
		{"EmitClaimQueueNotDue", testEmitClaimQueueNotDue},
		{"EmitClaimAfterDuePending", testEmitClaimAfterDuePending},
		{"EmitClaimAfterExpiredLease", testEmitClaimAfterExpiredLease},
		{"EmitClaimAfterPendingInTx", testEmitClaimAfterPendingInTx},
		{"EmitClaimNotDue", testEmitClaimNotDue},
		{"EmitClaimEndpointCap", testEmitClaimEndpointCap},
		{"EmitClaimOrgCap", testEmitClaimOrgCap},
		{"EmitClaimFair", testEmitClaimFair},
		{"EmitClaimTwiceInTx", testEmitClaimTwiceInTx},
		{"EmitClaimRollsBack", testEmitClaimRollsBack},
		{"EmitClaimInvalid", testEmitClaimInvalid},
	})
}

// emitClaimer returns tx's store.EmitClaimer, or an error saying the backend has none.
func emitClaimer(tx store.EmitTx) (store.EmitClaimer, error) {
	ec, ok := tx.(store.EmitClaimer)
	if !ok {
		return nil, fmt.Errorf("the store's EmitTx (%T) does not implement store.EmitClaimer (the local fast path): every backend must", tx)
	}
	return ec, nil
}

// claimEvent is an event of org to store with direct claims, created at now.
func claimEvent(org string, now time.Time) *store.Event {
	return &store.Event{Filter: webhook.UpdateSucceeded, Kind: webhook.UpdateSucceeded.Kind(), Subject: stackScope(org, "web", "prod"),
		Payload: []byte(`{"kind":"update"}`), CreatedAt: now}
}

// insertClaimed stores ev (when not stored yet) and its deliveries ds inside tx through
// DeliveryInsertClaimed with claim p, the emit's time being p.Now; it returns the delivery IDs
// and what it claimed.
func insertClaimed(b *testBundle, tx store.EmitTx, ev *store.Event, p store.DeliveryClaimParams, ds ...enqueue) ([]string, []*store.ClaimedDelivery, error) {
	ec, err := emitClaimer(tx)
	if err != nil {
		return nil, nil, err
	}
	if ev.ID == "" {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return nil, nil, err
		}
	}
	params := insertParams(ds)
	cds, err := ec.DeliveryInsertClaimed(b.ctx, ev.ID, p.Now, params, p)
	if err != nil {
		return nil, nil, err
	}
	dids := make([]string, len(params))
	for i, d := range params {
		if d.ID == "" {
			return nil, nil, errors.New("DeliveryInsertClaimed did not set a delivery ID")
		}
		dids[i] = d.ID
	}
	return dids, cds, nil
}

// emitClaimed stores one event of org acme with deliveries ds, in one EventEmit, through
// DeliveryInsertClaimed with claim p; it returns the delivery IDs and what it claimed.
func emitClaimed(t *testing.T, b *testBundle, p store.DeliveryClaimParams, ds ...enqueue) ([]string, []*store.ClaimedDelivery) {
	t.Helper()
	var dids []string
	var cds []*store.ClaimedDelivery
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		var err error
		dids, cds, err = insertClaimed(b, tx, claimEvent("acme", p.Now), p, ds...)
		return err
	})
	if err != nil {
		t.Fatalf("EventEmit with DeliveryInsertClaimed: %v", err)
	}
	return dids, cds
}

// directClaim is a direct claim of up to limit by worker at now: leased for an hour, at most
// 4 running per endpoint.
func directClaim(worker string, now time.Time, limit int) store.DeliveryClaimParams {
	return store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Hour, Limit: limit, PerEndpointLimit: 4}
}

// queueCounts returns the running and pending deliveries of the queue.
func queueCounts(t *testing.T, b *testBundle, now time.Time) (running, pending int) {
	t.Helper()
	st, err := b.st.DeliveryStats(b.ctx, now)
	if err != nil {
		t.Fatalf("DeliveryStats: %v", err)
	}
	return st.Running, st.Pending
}

func perEndpoint(cds []*store.ClaimedDelivery) map[string]int {
	m := map[string]int{}
	for _, cd := range cds {
		m[cd.Endpoint]++
	}
	return m
}

// testEmitClaimBasics: with nothing due in the queue, an emit stores up to its limit of
// deliveries claimed, exactly as a claim leaves them (running, attempt 1, leased, held by the
// worker, with the hook's URL, secret and active flag); the rest stay pending for the claim
// loop, and the claimed ones complete like claimed ones.
func testEmitClaimBasics(t *testing.T, b *testBundle) {
	s := spec(orgScope("acme"), "h")
	s.Secret = "claim-secret"
	h := createHook(t, b, s)
	now := T0.Add(time.Second)
	dids, cds := emitClaimed(t, b, directClaim("w", now, 2), enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h})
	if len(cds) != 2 {
		t.Fatalf("claimed %d deliveries, want 2 (the limit)", len(cds))
	}
	lease := now.Add(time.Hour)
	for i, cd := range cds {
		if cd.ID != dids[i] || cd.State != store.DeliveryRunning || cd.Attempts != 1 || cd.ClaimedBy != "w" || !cd.LeaseUntil.Equal(lease) ||
			cd.URL != h.PayloadURL || cd.Secret != "claim-secret" || !cd.HookActive || cd.HookID != h.ID || cd.EventID == "" ||
			string(cd.Body) != fmt.Sprintf(`{"n":%d}`, i) || cd.Filter != webhook.UpdateSucceeded || cd.Kind != webhook.KindStackUpdate ||
			cd.Endpoint != "example.com:443" || !cd.NextAttemptAt.Equal(now) || !cd.CreatedAt.Equal(now) || cd.LastError != "" {
			t.Errorf("claimed delivery %d = %+v (URL %q, secret %q, active %v); want %s running, attempt 1, held by w for an hour, with the hook's URL and secret",
				i, cd.Delivery, cd.URL, cd.Secret, cd.HookActive, dids[i])
		}
		stored := getDelivery(t, b, cd.ID)
		if stored.State != store.DeliveryRunning || stored.Attempts != 1 || stored.ClaimedBy != "w" || !stored.LeaseUntil.Equal(lease) ||
			stored.EventID != cd.EventID || !stored.NextAttemptAt.Equal(now) || string(stored.Body) != string(cd.Body) {
			t.Errorf("stored delivery %s = %+v; want it as claimed", cd.ID, stored)
		}
	}
	if running, pending := queueCounts(t, b, now); running != 2 || pending != 1 {
		t.Errorf("queue: %d running, %d pending; want 2 and 1", running, pending)
	}
	// The claim loop gets the one left pending, and only it.
	left := claim(t, b, "w", now, 8, 0)
	if len(left) != 1 || left[0].ID != dids[2] {
		t.Fatalf("the claim loop claimed %v, want the one left pending (%s)", ids(left), dids[2])
	}
	for _, cd := range append(cds, left...) {
		if err := complete(b, cd, store.DeliverySucceeded, now); err != nil {
			t.Fatalf("complete %s: %v", cd.ID, err)
		}
	}
	if running, pending := queueCounts(t, b, now); running != 0 || pending != 0 {
		t.Errorf("queue after completing: %d running, %d pending; want nothing", running, pending)
	}
}

// testEmitClaimQueueNotDue: work in the queue that is not due (a first attempt due later, a
// retry due later, a delivery running under a live lease) does not stop a direct claim.
func testEmitClaimQueueNotDue(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	held := claim(t, b, "other", T0, 2, 0)
	if len(held) != 2 {
		t.Fatalf("claimed %d, want 2", len(held))
	}
	if err := complete(b, held[0], store.DeliveryPending, T0); err != nil { // a retry due in a minute
		t.Fatal(err)
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, next: T0.Add(time.Hour)})
	now := T0.Add(time.Second)
	if _, cds := emitClaimed(t, b, directClaim("w", now, 2), enqueue{hook: h}, enqueue{hook: h}); len(cds) != 2 {
		t.Fatalf("claimed %d deliveries while nothing in the queue is due, want 2", len(cds))
	}
}

// testEmitClaimAfterDuePending: while a due pending delivery waits in the queue, an emit
// claims nothing: the claim loop serves the older work first.
func testEmitClaimAfterDuePending(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, next: T0})
	now := T0.Add(time.Second)
	if _, cds := emitClaimed(t, b, directClaim("w", now, 4), enqueue{hook: h}); len(cds) != 0 {
		t.Fatalf("claimed %d deliveries while a due one waits, want none", len(cds))
	}
	if running, pending := queueCounts(t, b, now); running != 0 || pending != 2 {
		t.Errorf("queue: %d running, %d pending; want 0 and 2", running, pending)
	}
}

// testEmitClaimAfterExpiredLease: while a delivery whose lease expired waits, an emit claims
// nothing.
func testEmitClaimAfterExpiredLease(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, next: T0})
	if _, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "gone", Now: T0, Lease: time.Second, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, cds := emitClaimed(t, b, directClaim("w", T0.Add(time.Minute), 4), enqueue{hook: h}); len(cds) != 0 {
		t.Fatalf("claimed %d deliveries while an expired lease waits, want none", len(cds))
	}
}

// testEmitClaimAfterPendingInTx: once an earlier emit of the same transaction left a delivery
// pending, the transaction's later emits claim nothing.
func testEmitClaimAfterPendingInTx(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	now := T0.Add(time.Second)
	var second []*store.ClaimedDelivery
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		ev := claimEvent("acme", now)
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, now, insertParams([]enqueue{{hook: h}})); err != nil {
			return err
		}
		var err error
		_, second, err = insertClaimed(b, tx, claimEvent("acme", now), directClaim("w", now, 4), enqueue{hook: h})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 0 {
		t.Fatalf("claimed %d deliveries after the transaction left one pending, want none", len(second))
	}
}

// testEmitClaimNotDue: deliveries not due yet are not claimed.
func testEmitClaimNotDue(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	now := T0.Add(time.Second)
	if _, cds := emitClaimed(t, b, directClaim("w", now, 4), enqueue{hook: h, next: now.Add(time.Hour)}); len(cds) != 0 {
		t.Fatalf("claimed %d deliveries due in an hour, want none", len(cds))
	}
	if running, pending := queueCounts(t, b, now); running != 0 || pending != 1 {
		t.Errorf("queue: %d running, %d pending; want 0 and 1", running, pending)
	}
}

// testEmitClaimEndpointCap: a direct claim counts what every holder runs at an endpoint
// (PerEndpointLimit), as claims do.
func testEmitClaimEndpointCap(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	// Another worker holds 3 of endpoint e0's 4 slots.
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, endpoint: "e0:443"}, enqueue{hook: h, endpoint: "e0:443"},
		enqueue{hook: h, endpoint: "e0:443"})
	if got := claim(t, b, "other", T0, 3, 0); len(got) != 3 {
		t.Fatalf("the other worker claimed %d, want 3", len(got))
	}
	// Four deliveries to e0 and four to e1: e0 has one slot left.
	var ds []enqueue
	for _, ep := range []string{"e0:443", "e1:443"} {
		for range 4 {
			ds = append(ds, enqueue{hook: h, endpoint: ep})
		}
	}
	now := T0.Add(time.Second)
	_, cds := emitClaimed(t, b, directClaim("w", now, 8), ds...)
	if per := perEndpoint(cds); per["e0:443"] != 1 || per["e1:443"] != 4 || len(cds) != 5 {
		t.Fatalf("claimed %v, want 1 at e0 (its cap counts the other worker's 3) and 4 at e1", per)
	}
	if running, pending := queueCounts(t, b, now); running != 8 || pending != 3 {
		t.Errorf("queue: %d running, %d pending; want 8 and 3", running, pending)
	}
}

// testEmitClaimOrgCap: a direct claim counts what this worker runs for the organization
// (PerOrgLimit), and not what other workers run, as claims do.
func testEmitClaimOrgCap(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h}, enqueue{hook: h})
	if got := claim(t, b, "w", T0, 1, 0); len(got) != 1 {
		t.Fatalf("w claimed %d, want 1", len(got))
	}
	if got := claim(t, b, "other", T0, 2, 0); len(got) != 2 {
		t.Fatalf("the other worker claimed %d, want 2", len(got))
	}
	p := directClaim("w", T0.Add(time.Second), 8)
	p.PerEndpointLimit, p.PerOrgLimit = 0, 3
	var ds []enqueue
	for i := range 5 {
		ds = append(ds, enqueue{hook: h, endpoint: fmt.Sprintf("e%d:443", i)})
	}
	if _, cds := emitClaimed(t, b, p, ds...); len(cds) != 2 {
		t.Fatalf("claimed %d deliveries of an organization w already runs one of, with PerOrgLimit 3, want 2", len(cds))
	}
}

// testEmitClaimFair: a direct claim shares its slots across the emit's endpoints, as a claim
// does, rather than taking the first deliveries.
func testEmitClaimFair(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	var ds []enqueue
	for _, ep := range []string{"e0:443", "e1:443"} {
		for range 4 {
			ds = append(ds, enqueue{hook: h, endpoint: ep})
		}
	}
	_, cds := emitClaimed(t, b, directClaim("w", T0.Add(time.Second), 2), ds...)
	if per := perEndpoint(cds); per["e0:443"] != 1 || per["e1:443"] != 1 {
		t.Fatalf("claimed %v, want one at each endpoint", per)
	}
}

// testEmitClaimTwiceInTx: the emits of one transaction count each other's direct claims
// against the caps; once one left a delivery pending, the later ones claim nothing.
func testEmitClaimTwiceInTx(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	now := T0.Add(time.Second)
	p := directClaim("w", now, 4)
	p.PerEndpointLimit = 1
	var got [3][]*store.ClaimedDelivery
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		var err error
		if _, got[0], err = insertClaimed(b, tx, claimEvent("acme", now), p, enqueue{hook: h, endpoint: "e0:443"}); err != nil {
			return err
		}
		// e0 is at its cap by the first emit's claim: only e1's delivery is claimed.
		if _, got[1], err = insertClaimed(b, tx, claimEvent("acme", now), p, enqueue{hook: h, endpoint: "e0:443"},
			enqueue{hook: h, endpoint: "e1:443"}); err != nil {
			return err
		}
		// The second left one pending: it goes first.
		_, got[2], err = insertClaimed(b, tx, claimEvent("acme", now), p, enqueue{hook: h, endpoint: "e2:443"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 1 || len(got[1]) != 1 || got[1][0].Endpoint != "e1:443" || len(got[2]) != 0 {
		t.Fatalf("the three emits claimed %v, %v and %v; want e0, then e1, then nothing", perEndpoint(got[0]), perEndpoint(got[1]), perEndpoint(got[2]))
	}
	if running, pending := queueCounts(t, b, now); running != 2 || pending != 2 {
		t.Errorf("queue: %d running, %d pending; want 2 and 2", running, pending)
	}
}

// testEmitClaimRollsBack: an emit that fails after claiming leaves nothing, and the worker
// claims directly again afterwards.
func testEmitClaimRollsBack(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	now := T0.Add(time.Second)
	boom := errors.New("boom")
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		_, cds, err := insertClaimed(b, tx, claimEvent("acme", now), directClaim("w", now, 2), enqueue{hook: h}, enqueue{hook: h})
		if err != nil {
			return err
		}
		if len(cds) != 2 {
			return fmt.Errorf("claimed %d, want 2", len(cds))
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("emit error %v, want the callback's", err)
	}
	if running, pending := queueCounts(t, b, now); running != 0 || pending != 0 {
		t.Errorf("queue after a failed emit: %d running, %d pending; want nothing", running, pending)
	}
	_, cds := emitClaimed(t, b, directClaim("w", now, 2), enqueue{hook: h})
	if len(cds) != 1 {
		t.Fatalf("claimed %d after a failed emit, want 1", len(cds))
	}
	if err := complete(b, cds[0], store.DeliverySucceeded, now); err != nil {
		t.Fatal(err)
	}
}

// testEmitClaimInvalid: bad claim parameters are refused naming the field; a limit of 0
// claims nothing and stores the deliveries pending.
func testEmitClaimInvalid(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	now := T0.Add(time.Second)
	for field, p := range map[string]store.DeliveryClaimParams{
		"Worker":           {Now: now, Lease: time.Hour, Limit: 1},
		"Lease":            {Worker: "w", Now: now, Limit: 1},
		"PerEndpointLimit": {Worker: "w", Now: now, Lease: time.Hour, Limit: 1, PerEndpointLimit: -1},
	} {
		err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			_, _, err := insertClaimed(b, tx, claimEvent("acme", now), p, enqueue{hook: h})
			return err
		})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("a direct claim with a bad %s: error %v, want one naming it", field, err)
		}
	}
	if _, cds := emitClaimed(t, b, directClaim("w", now, 0), enqueue{hook: h}); len(cds) != 0 {
		t.Fatalf("Limit 0 claimed %d", len(cds))
	}
	if running, pending := queueCounts(t, b, now); running != 0 || pending != 1 {
		t.Errorf("queue: %d running, %d pending; want 0 and 1", running, pending)
	}
}

// testReleaseDeadDirectClaimer (RunReliability): a process that claimed deliveries directly
// in its emit and died is judged as a claim's holder is: its claims are released at once.
func testReleaseDeadDirectClaimer(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	other := reopen(t, h, b)
	p := directClaim("doomed/direct", T0, 1)
	p.PerEndpointLimit = 1
	_, held := emitClaimed(t, other, p, enqueue{hook: hook})
	if len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries in its emit, want 1", len(held))
	}
	// While it lives, its claim fills the endpoint's cap.
	if got := claim(t, b, "survivor", T0.Add(time.Second), 2, 1); len(got) != 0 {
		t.Fatalf("claimed %v while a live process holds the endpoint's only slot", ids(got))
	}
	if res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(time.Second)}); err != nil || res.Deliveries != 0 {
		t.Fatalf("DeliveryReleaseDead while the holder lives = %+v, %v; want nothing", res, err)
	}
	if err := other.st.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(2 * time.Second)})
	if err != nil {
		t.Fatalf("DeliveryReleaseDead: %v", err)
	}
	if res.Deliveries != 1 || len(res.Holders) != 1 || res.Holders[0] != "doomed/direct" {
		t.Fatalf("DeliveryReleaseDead = %+v, want the one delivery of doomed/direct", res)
	}
	if got := claim(t, b, "survivor", T0.Add(2*time.Second), 2, 1); len(got) != 1 || got[0].ID != held[0].ID || got[0].Attempts != 2 {
		t.Fatalf("claimed %v after the holder died, want %s as attempt 2", ids(got), held[0].ID)
	}
}

// testEmitClaimCapAcrossStores (RunCluster): three stores on one database, two workers each,
// emit at once to one endpoint capped at two, each emit claiming its deliveries directly as
// far as the cap allows, round after round (the queue empty and nothing running at the start
// of each). No round's direct claims pass the cap, counting every store's, whether the workers
// or the queue count them, and the rest stay pending for the claim loop.
func testEmitClaimCapAcrossStores(t *testing.T, h Harness, b *testBundle) {
	stores := []*testBundle{b, reopen(t, h, b), reopen(t, h, b)}
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	const capN, rounds = 2, 10
	now := T0.Add(time.Second)
	params := func(worker string, limit int) store.DeliveryClaimParams {
		return store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Hour, Limit: limit, PerEndpointLimit: capN}
	}
	var direct int
	for round := range rounds {
		start := make(chan struct{})
		var mu sync.Mutex
		var claimed []*store.ClaimedDelivery
		var owners []*testBundle
		errs := make(chan error, 2*len(stores))
		var wg sync.WaitGroup
		for i, sb := range stores {
			for w := range 2 {
				worker := fmt.Sprintf("s%d-w%d", i, w)
				wg.Go(func() {
					<-start
					var cds []*store.ClaimedDelivery
					err := sb.st.EventEmit(sb.ctx, func(tx store.EmitTx) error {
						var err error
						_, cds, err = insertClaimed(sb, tx, claimEvent("acme", now), params(worker, capN),
							enqueue{hook: hook, endpoint: "e0:443"}, enqueue{hook: hook, endpoint: "e0:443"})
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					defer mu.Unlock()
					for _, cd := range cds {
						claimed, owners = append(claimed, cd), append(owners, sb)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if len(claimed) > capN {
			t.Fatalf("round %d: the emits claimed %d deliveries of the endpoint directly, past its cap of %d", round, len(claimed), capN)
		}
		if running, pending := queueCounts(t, b, now); running != len(claimed) || running+pending != 2*2*len(stores) {
			t.Fatalf("round %d: queue %d running, %d pending; want the %d claimed running and the rest pending", round, running, pending, len(claimed))
		}
		direct += len(claimed)
		for i, cd := range claimed {
			if err := complete(owners[i], cd, store.DeliverySucceeded, now); err != nil {
				t.Fatal(err)
			}
		}
		// The claim loop sends the rest.
		for {
			cds := claim(t, b, "drain", now, capN, capN)
			if len(cds) == 0 {
				break
			}
			for _, cd := range cds {
				if err := complete(b, cd, store.DeliverySucceeded, now); err != nil {
					t.Fatal(err)
				}
			}
		}
		if running, pending := queueCounts(t, b, now); running != 0 || pending != 0 {
			t.Fatalf("round %d: queue %d running, %d pending after the claim loop; want nothing", round, running, pending)
		}
	}
	if direct == 0 {
		t.Error("no emit claimed directly")
	}
	t.Logf("%d deliveries claimed directly over %d rounds of %d emits", direct, rounds, 2*len(stores))
}

// testEmitClaimUndecryptableSecret (RunReliability): a delivery an emit claims directly whose
// active hook's secret no longer opens is failed there and then with the reason, as a claim
// fails it, and not returned; the emit's other deliveries are claimed.
func testEmitClaimUndecryptableSecret(t *testing.T, h Harness, b *testBundle) {
	goodSpec, badSpec := spec(orgScope("acme"), "good"), spec(orgScope("acme"), "bad")
	goodSpec.Secret, badSpec.Secret = "good-secret", "bad-secret"
	good, bad := createHook(t, b, goodSpec), createHook(t, b, badSpec)
	h.CorruptSecret(t, b.st, bad.ID)
	now := T0.Add(time.Second)
	dids, cds := emitClaimed(t, b, directClaim("w", now, 4), enqueue{hook: bad, endpoint: "a:443"}, enqueue{hook: good, endpoint: "b:443"})
	if len(cds) != 1 || cds[0].ID != dids[1] || cds[0].Secret != "good-secret" {
		t.Fatalf("claimed %v, want only %s with its secret", ids(cds), dids[1])
	}
	d := getDelivery(t, b, dids[0])
	if d.State != store.DeliveryFailed || d.LastError != store.UndecryptableSecretReason {
		t.Fatalf("the delivery of the damaged hook is %s (%q), want failed with the reason", d.State, d.LastError)
	}
	log, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: bad.ID})
	if err != nil || len(log) != 1 || log[0].Error != store.UndecryptableSecretReason || log[0].DeliveryID != dids[0] {
		t.Fatalf("the damaged hook's delivery log = %+v, %v; want one attempt saying why", log, err)
	}
}
