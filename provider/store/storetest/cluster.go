package storetest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// RunCluster runs the tests of several stores on one database at once, as several processes
// (or servers) sharing it: the per-endpoint cap holds across all of them, and every delivery
// is claimed by exactly one. Subtests run in parallel, each on its own database.
func RunCluster(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, b *testBundle)
	}{
		{"ClaimCapAcrossStores", testClaimCapAcrossStores},
		{"EmitClaimCapAcrossStores", testEmitClaimCapAcrossStores},
		{"DeploymentRunnerDiesAcrossStores", testDeploymentRunnerDiesAcrossStores},
		{"DeploymentClaimOnePerStackAcrossStores", testDeploymentClaimOnePerStackAcrossStores},
		{"SessionsAcrossStores", testSessionsAcrossStores},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h, setup(t, h.Open))
		})
	}
}

// testClaimCapAcrossStores: three stores on one database, two claimers each, drain a backlog
// over three endpoints capped at two. No endpoint ever has more than two deliveries running,
// counting every store's claims, and every delivery is claimed and completed exactly once.
func testClaimCapAcrossStores(t *testing.T, h Harness, b *testBundle) {
	stores := []*testBundle{b, reopen(t, h, b), reopen(t, h, b)}
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	const capN, per = 2, 20
	var es []enqueue
	for i := range 3 * per {
		es = append(es, enqueue{hook: hook, endpoint: fmt.Sprintf("e%d:443", i%3)})
	}
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, es...)
	var running, peak [3]atomic.Int64
	var mu sync.Mutex
	seen := map[string]string{}
	var done atomic.Int64
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for i, sb := range stores {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				worker := fmt.Sprintf("s%d-w%d", i, w)
				for idle := 0; done.Load() < int64(len(dids)) && idle < 2000; {
					cds, err := sb.st.DeliveryClaim(sb.ctx, store.DeliveryClaimParams{Worker: worker, Now: T0.Add(time.Second), Lease: time.Hour,
						Limit: 3, PerEndpointLimit: capN})
					if err != nil {
						errs <- err
						return
					}
					if len(cds) == 0 {
						idle++
						time.Sleep(time.Millisecond)
						continue
					}
					for _, cd := range cds {
						mu.Lock()
						prev, dup := seen[cd.ID]
						seen[cd.ID] = worker
						mu.Unlock()
						if dup {
							errs <- fmt.Errorf("delivery %s claimed by %s and %s", cd.ID, prev, worker)
							return
						}
						e := int(cd.Endpoint[1] - '0')
						n := running[e].Add(1)
						for p := peak[e].Load(); n > p && !peak[e].CompareAndSwap(p, n); p = peak[e].Load() {
						}
					}
					time.Sleep(time.Millisecond) // the attempts run
					for _, cd := range cds {
						// Counted down before the store frees the slot, so the count never trails it.
						running[int(cd.Endpoint[1]-'0')].Add(-1)
						if err := complete(sb, cd, store.DeliverySucceeded, T0.Add(time.Second)); err != nil {
							errs <- err
							return
						}
						done.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for e := range peak {
		if p := peak[e].Load(); p > capN || p == 0 {
			t.Errorf("endpoint e%d: peak running %d across stores, want 1..%d", e, p, capN)
		}
	}
	if int(done.Load()) != len(dids) || len(seen) != len(dids) {
		t.Fatalf("completed %d, claimed %d, of %d deliveries", done.Load(), len(seen), len(dids))
	}
}

// testDeploymentRunnerDiesAcrossStores: a deployment left running by a store that closed (its
// process ended) is failed by another store with the reason, never handed out again; while
// the runner's store is open it is left alone.
func testDeploymentRunnerDiesAcrossStores(t *testing.T, h Harness, b *testBundle) {
	runner := reopen(t, h, b)
	stack := stackScope("acme", "web", "prod")
	insertDeployments(t, b, &store.Deployment{Stack: stack, Operation: "update", CreatedAt: T0})
	if got, err := runner.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "runner-1", Now: T0, Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}
	if failed, err := b.st.DeploymentFailDead(b.ctx, store.DeploymentFailDeadParams{Now: T0}); err != nil || len(failed) != 0 {
		t.Fatalf("DeploymentFailDead while the runner lives = %d, %v", len(failed), err)
	}
	if err := runner.st.Close(); err != nil {
		t.Fatal(err)
	}
	// A database server may drop the runner's session a moment after the store closed it.
	var failed []*store.Deployment
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if failed, err = b.st.DeploymentFailDead(b.ctx, store.DeploymentFailDeadParams{Now: T0}); err != nil {
			t.Fatal(err)
		}
		if len(failed) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(failed) != 1 || failed[0].Status != store.DeploymentFailed || !strings.HasPrefix(failed[0].Reason, store.DeploymentFailDeadReason) {
		t.Fatalf("DeploymentFailDead after the runner ended = %+v", failed)
	}
	if got, err := b.st.DeploymentClaim(b.ctx, store.DeploymentClaimParams{Worker: "runner-2", Now: T0, Limit: 1}); err != nil || len(got) != 0 {
		t.Fatalf("the dead runner's deployment was claimed again: %d, %v", len(got), err)
	}
}

// testDeploymentClaimOnePerStackAcrossStores: stores claiming at once never start two
// deployments of one stack.
func testDeploymentClaimOnePerStackAcrossStores(t *testing.T, h Harness, b *testBundle) {
	stores := []*testBundle{b, reopen(t, h, b), reopen(t, h, b)}
	stack := stackScope("acme", "web", "prod")
	insertDeployments(t, b, &store.Deployment{Stack: stack, Operation: "update", CreatedAt: T0},
		&store.Deployment{Stack: stack, Operation: "refresh", CreatedAt: T0.Add(time.Second)})
	var claimed atomic.Int64
	errs := make(chan error, len(stores))
	var wg sync.WaitGroup
	for i, sb := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := sb.st.DeploymentClaim(sb.ctx, store.DeploymentClaimParams{Worker: fmt.Sprintf("runner-%d", i), Now: T0, Limit: 2})
			if err != nil {
				errs <- err
				return
			}
			claimed.Add(int64(len(got)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if claimed.Load() != 1 {
		t.Fatalf("claimed %d deployments of one stack at once, want 1", claimed.Load())
	}
}

// testSessionsAcrossStores: two stores on one database stand for two servers behind a load
// balancer. A session created through one is read through the other; deleted (signed out)
// through the second, the first no longer returns it; a sign-in through either prunes the
// other's expired sessions.
func testSessionsAcrossStores(t *testing.T, h Harness, b *testBundle) {
	other := reopen(t, h, b)
	createSession(t, b, newSession("sid", "tok-1", T0, time.Hour), 0, T0)
	got, err := other.st.SessionGet(b.ctx, store.SessionGetParams{IDHash: store.HashSessionID("sid"), Now: T0.Add(time.Minute)})
	if err != nil || got.TokenID != "tok-1" || got.CSRF != "csrf-sid" {
		t.Fatalf("the other store's SessionGet = %+v, %v", got, err)
	}
	if err := other.st.SessionDelete(b.ctx, store.HashSessionID("sid")); err != nil {
		t.Fatalf("SessionDelete through the other store: %v", err)
	}
	if sessionLive(t, b, "sid", T0.Add(time.Minute)) {
		t.Fatal("a session deleted through one store is still returned by the other")
	}
	createSession(t, b, newSession("short", "tok-1", T0, time.Minute), 0, T0)
	createSession(t, other, newSession("later", "tok-2", T0.Add(time.Hour), time.Hour), 0, T0.Add(time.Hour))
	if sessionLive(t, b, "short", T0) {
		t.Fatal("a sign-in through the other store did not prune an expired session")
	}
}
