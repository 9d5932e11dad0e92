package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Harness opens stores for the tests that need more than one fresh store: a second handle on
// the same database, as another process would open it, or a way to damage a stored value.
type Harness struct {
	// Open opens a fresh, empty store for one test; the suite closes it.
	Open Opener
	// Reopen opens another handle on st's database, as a second process would (same key).
	// The suite closes it, possibly earlier, to stand for that process ending.
	Reopen func(t *testing.T, st store.Store) store.Store
	// CorruptSecret damages the sealed secret of hook id in st's database so that it no longer
	// opens, as a flipped bit on disk would.
	CorruptSecret func(t *testing.T, st store.Store, id int64)
}

// RunReliability runs the tests of crash recovery, secret handling and retention. Subtests run
// in parallel, each on its own store.
func RunReliability(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness, b *testBundle)
	}{
		{"ReleaseDeadHolder", testReleaseDeadHolder},
		{"ReleaseDeadHolderInCycle", testReleaseDeadHolderInCycle},
		{"ReleaseLiveHolderKept", testReleaseLiveHolderKept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h, setup(t, h.Open))
		})
	}
}

// reopen opens a second handle on b's database.
func reopen(t *testing.T, h Harness, b *testBundle) *testBundle {
	t.Helper()
	st := h.Reopen(t, b.st)
	t.Cleanup(func() { _ = st.Close() })
	return &testBundle{st: st, ctx: b.ctx}
}

// testReleaseDeadHolder: a process claims a delivery to an endpoint capped at one and dies
// (its store closes) long before its lease ends. The next claim by anyone takes the delivery
// at once, counted as a retry, with the reason recorded, instead of waiting for the lease.
func testReleaseDeadHolder(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook}, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "doomed/1", Now: T0, Lease: time.Hour, Limit: 1, PerEndpointLimit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	// While it lives, its claim fills the endpoint's cap.
	if got := claim(t, b, "survivor", T0.Add(time.Second), 2, 1); len(got) != 0 {
		t.Fatalf("claimed %v while a live process holds the endpoint's only slot", ids(got))
	}
	if err := other.st.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(2 * time.Second)})
	if err != nil {
		t.Fatalf("DeliveryReleaseDead: %v", err)
	}
	if res.Deliveries != 1 || len(res.Holders) != 1 || res.Holders[0] != "doomed/1" {
		t.Fatalf("DeliveryReleaseDead = %+v, want the one delivery of doomed/1", res)
	}
	d := getDelivery(t, b, held[0].ID)
	if d.State != store.DeliveryPending || d.Attempts != 1 || !strings.HasPrefix(d.LastError, store.ReleasedDeadReason) || !strings.Contains(d.LastError, "doomed/1") {
		t.Fatalf("released delivery: state %s attempts %d last error %q", d.State, d.Attempts, d.LastError)
	}
	got := claim(t, b, "survivor", T0.Add(2*time.Second), 2, 1)
	if len(got) != 1 {
		t.Fatalf("claimed %d deliveries after the holder died, want 1 (the endpoint's one slot)", len(got))
	}
	if again, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(3 * time.Second)}); err != nil || again.Deliveries != 0 {
		t.Fatalf("second DeliveryReleaseDead = %+v, %v; want nothing (the survivor is alive)", again, err)
	}
}

// testReleaseDeadHolderInCycle: the claim itself releases a dead holder's deliveries, with no
// separate call, within its lease.
func testReleaseDeadHolderInCycle(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "doomed/2", Now: T0, Lease: time.Hour, Limit: 1, PerEndpointLimit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	_ = other.st.Close()
	res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Claim: store.DeliveryClaimParams{
		Worker: "survivor", Now: T0.Add(time.Second), Lease: time.Hour, Limit: 1, PerEndpointLimit: 1}})
	if err != nil {
		t.Fatalf("DeliveryCycle: %v", err)
	}
	if len(res.Claimed) != 1 || res.Claimed[0].ID != held[0].ID || res.Claimed[0].Attempts != 2 {
		t.Fatalf("DeliveryCycle claimed %v, want %s as attempt 2", ids(res.Claimed), held[0].ID)
	}
	// The dead holder's late completion, were it to come, is refused.
	err = b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{ID: held[0].ID, Worker: "doomed/2", Attempt: 1,
		State: store.DeliverySucceeded, Now: T0.Add(time.Second), Record: store.Attempt{StartedAt: T0, ResponseCode: 200}})
	wantErr(t, "completion by the dead holder", err, store.ErrLeaseLost)
}

// testReleaseLiveHolderKept: a holder whose store is open keeps its claims, however many
// times others look.
func testReleaseLiveHolderKept(t *testing.T, h Harness, b *testBundle) {
	hook := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: hook})
	other := reopen(t, h, b)
	held, err := other.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: "alive/1", Now: T0, Lease: time.Hour, Limit: 1})
	if err != nil || len(held) != 1 {
		t.Fatalf("the second process claimed %d deliveries, %v; want 1", len(held), err)
	}
	for i := range 3 {
		res, err := b.st.DeliveryReleaseDead(b.ctx, store.DeliveryReleaseDeadParams{Now: T0.Add(time.Duration(i) * time.Second)})
		if err != nil || res.Deliveries != 0 {
			t.Fatalf("DeliveryReleaseDead = %+v, %v; want nothing released from a live holder", res, err)
		}
	}
	if d := getDelivery(t, b, held[0].ID); d.State != store.DeliveryRunning || d.ClaimedBy != "alive/1" {
		t.Fatalf("the live holder's delivery is %s by %q", d.State, d.ClaimedBy)
	}
	if err := complete(other, held[0], store.DeliverySucceeded, T0.Add(5*time.Second)); err != nil {
		t.Fatalf("the live holder could not complete its claim: %v", err)
	}
}
