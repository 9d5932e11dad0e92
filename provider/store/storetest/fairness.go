package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Fair claims: see store.DeliveryClaimParams.

func claimOrg(t *testing.T, b *testBundle, worker string, now time.Time, limit, perEndpoint, perOrg int) []*store.ClaimedDelivery {
	t.Helper()
	cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Minute, Limit: limit,
		PerEndpointLimit: perEndpoint, PerOrgLimit: perOrg})
	if err != nil {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	return cds
}

// testClaimRetryNotStarved: a flood of first attempts due before it does not hold back a due
// retry nor a delivery whose lease expired; with a claim of one at a time, each comes within
// two claims.
func testClaimRetryNotStarved(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, early := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h, endpoint: "retry:443"}, enqueue{hook: h, endpoint: "dead:443"})
	cds := claim(t, b, "w", T0, 2, 0)
	if len(cds) != 2 {
		t.Fatalf("claim = %v", ids(cds))
	}
	var retryID, expiredID string
	for _, cd := range cds {
		if cd.Endpoint == "dead:443" {
			expiredID = cd.ID // its worker dies: the lease runs out
			continue
		}
		retryID = cd.ID
		if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliveryPending,
			NextAttemptAt: T0.Add(2 * time.Minute), Record: store.Attempt{StartedAt: T0, ResponseCode: 503}, Now: T0}); err != nil {
			t.Fatal(err)
		}
	}
	// The flood: 300 first attempts, all due before the retry.
	flood := make([]enqueue, 300)
	for i := range flood {
		flood[i] = enqueue{hook: h, endpoint: fmt.Sprintf("e%d:443", i%30), next: T0.Add(time.Duration(i) * time.Millisecond)}
	}
	emit(t, b, orgScope("acme"), webhook.StackCreated, flood...)
	now := T0.Add(3 * time.Minute) // the retry is due and the dead worker's lease has expired
	var got []string
	for range 4 {
		c := claim(t, b, "w2", now, 1, 0)
		if len(c) != 1 {
			t.Fatalf("claim = %v, want one", ids(c))
		}
		got = append(got, c[0].ID)
	}
	if !slices.Contains(got, retryID) || !slices.Contains(got, expiredID) {
		t.Fatalf("four claims of one took %v; want the retry %s and the expired lease %s among them, not only the flood (%v)",
			got, retryID, expiredID, early)
	}
	// Within one claim too: a claim of 4 while 296 first attempts are due still takes turns.
	if err := b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: retryID, Worker: "w2", Attempt: 2, State: store.DeliveryPending,
		NextAttemptAt: now, Record: store.Attempt{StartedAt: now, ResponseCode: 503}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if c := ids(claim(t, b, "w2", now, 4, 0)); !slices.Contains(c, retryID) {
		t.Fatalf("a claim of 4 took %v; want the due retry %s among them", c, retryID)
	}
}

// testClaimRoundRobinOrgs: slots go round-robin across organizations, then endpoints, instead
// of to the oldest backlog: big's endpoint big-1 has the oldest work, yet a claim of 4 takes
// one of big-1's, one of big-2's and both of small's.
func testClaimRoundRobinOrgs(t *testing.T, b *testBundle) {
	ha := createHook(t, b, spec(orgScope("big"), "h"))
	hb := createHook(t, b, spec(orgScope("small"), "h"))
	backlog := make([]enqueue, 10)
	for i := range backlog {
		backlog[i] = enqueue{hook: ha, endpoint: "big-1:443", next: T0.Add(time.Duration(i) * time.Millisecond)}
	}
	emit(t, b, orgScope("big"), webhook.StackCreated, backlog...)
	emit(t, b, orgScope("big"), webhook.StackCreated, enqueue{hook: ha, endpoint: "big-2:443", next: T0.Add(time.Second)})
	emit(t, b, orgScope("small"), webhook.StackCreated,
		enqueue{hook: hb, endpoint: "small:443", next: T0.Add(time.Second)}, enqueue{hook: hb, endpoint: "small:443", next: T0.Add(time.Second)})
	counts := map[string]int{}
	for _, cd := range claim(t, b, "w", T0.Add(time.Minute), 4, 2) {
		counts[cd.Endpoint]++
	}
	if counts["small:443"] != 2 || counts["big-1:443"] != 1 || counts["big-2:443"] != 1 {
		t.Fatalf("a claim of 4 took %v; want both of small's and one of each of big's endpoints", counts)
	}
}

// testClaimPerOrgCap: one organization's deliveries hold at most PerOrgLimit of a worker's
// slots, however large its backlog, so another organization's deliveries due later still find
// a slot; the cap is per worker, and an organization at its cap does not hide others' work.
func testClaimPerOrgCap(t *testing.T, b *testBundle) {
	slow := createHook(t, b, spec(orgScope("slow"), "h"))
	calm := createHook(t, b, spec(orgScope("calm"), "h"))
	backlog := make([]enqueue, 500)
	for i := range backlog {
		backlog[i] = enqueue{hook: slow, endpoint: fmt.Sprintf("slow-%d:443", i%10), next: T0.Add(time.Duration(i) * time.Microsecond)}
	}
	emit(t, b, orgScope("slow"), webhook.StackCreated, backlog...)
	now := T0.Add(time.Minute)
	first := claimOrg(t, b, "w", now, 8, 4, 6)
	if len(first) != 6 {
		t.Fatalf("with only slow's work due, a claim of 8 took %d; want its cap of 6", len(first))
	}
	// Now calm's deliveries come due: the worker's free slots go to them.
	emit(t, b, orgScope("calm"), webhook.StackCreated,
		enqueue{hook: calm, endpoint: "calm:443", next: now}, enqueue{hook: calm, endpoint: "calm:443", next: now},
		enqueue{hook: calm, endpoint: "calm:443", next: now})
	second := claimOrg(t, b, "w", now, 2, 4, 6)
	if len(second) != 2 || second[0].Endpoint != "calm:443" || second[1].Endpoint != "calm:443" {
		t.Fatalf("the worker's last two slots went to %v; want calm's", ids(second))
	}
	// Another worker has its own slots for slow's work (and takes calm's last).
	byOrg := func(cds []*store.ClaimedDelivery) map[string]int {
		m := map[string]int{}
		for _, cd := range cds {
			m[cd.Endpoint[:4]]++
		}
		return m
	}
	if other := byOrg(claimOrg(t, b, "w-other", now, 8, 4, 6)); other["slow"] != 6 || other["calm"] != 1 {
		t.Fatalf("another worker claimed %v; want its own cap of 6 of slow's and calm's last", other)
	}
	// When slow's deliveries finish, the worker takes slow's work again, up to the cap.
	for _, cd := range first[:3] {
		if err := complete(b, cd, store.DeliverySucceeded, now); err != nil {
			t.Fatal(err)
		}
	}
	if again := byOrg(claimOrg(t, b, "w", now, 8, 4, 6)); again["slow"] != 3 || len(again) != 1 {
		t.Fatalf("after 3 of slow's finished, a claim of 8 took %v; want 3 of slow's, back to its cap", again)
	}
	if _, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Minute, Limit: 1, PerOrgLimit: -1}); err == nil {
		t.Fatal("DeliveryClaim with PerOrgLimit -1 succeeded")
	}
}
