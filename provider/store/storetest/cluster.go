package storetest

import (
	"fmt"
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
