package fairclaim

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func ids(cs []Candidate) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestPickAlternatesClassesAndCarriesTheTurn(t *testing.T) {
	var turn atomic.Uint64
	p := NewPicker(3, Unlimited, Unlimited, &turn)
	first := []Candidate{{ID: 1, Endpoint: "a", Org: "o", Next: 10}, {ID: 2, Endpoint: "b", Org: "p", Next: 10}}
	again := []Candidate{{ID: 3, Endpoint: "c", Org: "q", Next: 5}, {ID: 4, Endpoint: "d", Org: "r", Next: 5}}
	p.Pick(first, again)
	if got, want := ids(p.Picked()), []int64{1, 3, 2}; !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v (first, again, first)", got, want)
	}
	if !p.Full() {
		t.Fatal("Full is false with the limit picked")
	}
	// Three slots went out: the next claim starts with again work.
	q := NewPicker(2, Unlimited, Unlimited, &turn)
	q.Pick([]Candidate{{ID: 5, Endpoint: "e", Org: "s", Next: 1}}, []Candidate{{ID: 6, Endpoint: "f", Org: "t", Next: 9}})
	if got, want := ids(q.Picked()), []int64{6, 5}; !slices.Equal(got, want) {
		t.Fatalf("next claim picked %v, want %v (the turn carries over)", got, want)
	}
}

func TestPickTakesAllOfOneClassWhenTheOtherIsEmpty(t *testing.T) {
	var turn atomic.Uint64
	p := NewPicker(10, Unlimited, Unlimited, &turn)
	p.Pick(nil, []Candidate{{ID: 7, Endpoint: "a", Org: "o", Next: 2}, {ID: 8, Endpoint: "a", Org: "o", Next: 1}})
	if got, want := ids(p.Picked()), []int64{8, 7}; !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v (earliest due first)", got, want)
	}
	if p.Full() {
		t.Fatal("Full is true below the limit")
	}
}

func TestPickOrdersByOrgThenEndpointThenDueThenAge(t *testing.T) {
	var turn atomic.Uint64
	p := NewPicker(5, Unlimited, Unlimited, &turn)
	p.Hold("busy", "org1", true, 2) // org1 has 2 running under this worker
	p.Hold("x", "org2", false, 5)   // another worker's: counts for the endpoint only
	first := []Candidate{
		{ID: 1, Endpoint: "busy", Org: "org1", Next: 1}, // its organization runs the most
		{ID: 2, Endpoint: "x", Org: "org2", Next: 1},    // its endpoint runs 5
		{ID: 4, Endpoint: "y", Org: "org2", Next: 3},
		{ID: 3, Endpoint: "z", Org: "org2", Next: 3}, // same due as 4, older
	}
	p.Pick(first, nil)
	// org2 (0 running) before org1 (2): z and y equally due and idle, so the older (lower ID)
	// first, then y (idle) before x (5 running); org2 and org1 then both run 2, and endpoint
	// busy (2) runs fewer than x (5).
	if got, want := ids(p.Picked()), []int64{3, 4, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v", got, want)
	}
}

func TestPickKeepsCaps(t *testing.T) {
	var turn atomic.Uint64
	p := NewPicker(10, 2, 4, &turn)
	p.Hold("full", "o", false, 2)
	first := []Candidate{
		{ID: 1, Endpoint: "full", Org: "o", Next: 1}, // at its cap already
		{ID: 2, Endpoint: "e", Org: "o", Next: 1},
		{ID: 3, Endpoint: "e", Org: "o", Next: 2},
		{ID: 4, Endpoint: "e", Org: "o", Next: 3}, // e would pass capN
		{ID: 5, Endpoint: "f", Org: "o", Next: 4},
	}
	p.Pick(first, nil)
	if got, want := ids(p.Picked()), []int64{2, 5, 3}; !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v", got, want)
	}
	endpoints, orgs := p.Capped()
	if want := []string{"e", "full"}; !slices.Equal(endpoints, want) {
		t.Fatalf("capped endpoints %v, want %v", endpoints, want)
	}
	if len(orgs) != 0 {
		t.Fatalf("capped organizations %v, want none (another worker's deliveries do not count)", orgs)
	}
	for _, id := range []int64{2, 3, 5} {
		if !p.Taken(id) {
			t.Fatalf("Taken(%d) is false after picking it", id)
		}
	}
	if p.Taken(4) || p.Taken(1) {
		t.Fatal("a candidate kept out by its cap counts as taken")
	}
	if got, want := ids(first), []int64{1, 0, 0, 4, 0}; !slices.Equal(got, want) {
		t.Fatalf("candidates after the pick %v, want %v (taken ones marked 0)", got, want)
	}

	q := NewPicker(10, Unlimited, 2, &turn)
	q.Hold("a", "o", true, 1)
	q.Pick([]Candidate{
		{ID: 1, Endpoint: "a", Org: "o", Next: 1},
		{ID: 2, Endpoint: "b", Org: "o", Next: 2},
		{ID: 3, Endpoint: "c", Org: "p", Next: 3},
	}, nil)
	if got, want := ids(q.Picked()), []int64{3, 2}; !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v (o stops at its cap of 2)", got, want)
	}
	if _, orgs := q.Capped(); !slices.Equal(orgs, []string{"o"}) {
		t.Fatalf("capped organizations %v, want [o]", orgs)
	}
}

func TestCappedIsEmptyNotNil(t *testing.T) {
	var turn atomic.Uint64
	endpoints, orgs := NewPicker(1, 1, 1, &turn).Capped()
	if endpoints == nil || orgs == nil || len(endpoints)+len(orgs) != 0 {
		t.Fatalf("Capped() = %#v, %#v, want two empty slices", endpoints, orgs)
	}
}

func TestWindowAndFirstLook(t *testing.T) {
	for _, c := range []struct {
		limit       int
		perEndpoint int64
		want        int64
	}{{1, 1, 64}, {10, 8, 80}, {10, Unlimited, 160}, {1000, 16, 4096}} {
		if got := Window(c.limit, c.perEndpoint); got != c.want {
			t.Errorf("Window(%d, %d) = %d, want %d", c.limit, c.perEndpoint, got, c.want)
		}
	}
	if got := FirstLook(1); got != 16 {
		t.Errorf("FirstLook(1) = %d, want 16", got)
	}
	if got := FirstLook(50); got != 100 {
		t.Errorf("FirstLook(50) = %d, want 100", got)
	}
}

func TestSort(t *testing.T) {
	t0 := time.Unix(100, 0)
	d := func(id string, attempts int, next, created time.Time) *store.ClaimedDelivery {
		cd := &store.ClaimedDelivery{}
		cd.ID, cd.Attempts, cd.NextAttemptAt, cd.CreatedAt = id, attempts, next, created
		return cd
	}
	out := []*store.ClaimedDelivery{
		d("retry", 2, t0, t0),
		d("late", 1, t0.Add(2*time.Second), t0),
		d("young", 1, t0, t0.Add(time.Second)),
		d("old", 1, t0, t0),
	}
	Sort(out)
	var got []string
	for _, cd := range out {
		got = append(got, cd.ID)
	}
	if want := []string{"old", "young", "late", "retry"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestCaps(t *testing.T) {
	if n, o := Caps(store.DeliveryClaimParams{}); n != Unlimited || o != Unlimited {
		t.Fatalf("Caps of no limits = %d, %d, want Unlimited twice", n, o)
	}
	if n, o := Caps(store.DeliveryClaimParams{PerEndpointLimit: 3, PerOrgLimit: 7}); n != 3 || o != 7 {
		t.Fatalf("Caps = %d, %d, want 3, 7", n, o)
	}
}

// TestEmitCandidates: a direct claim may take an emit's pending deliveries due at the claim's
// time (a delivery naming no due time is due at the emit's), numbered by position.
func TestEmitCandidates(t *testing.T) {
	emitAt := time.Unix(100, 0)
	ds := []store.DeliveryInsertParams{
		{Endpoint: "a:443"},
		{Endpoint: "b:443", NextAttemptAt: emitAt.Add(time.Hour)},
		{Endpoint: "c:443", State: store.DeliveryFailed},
		{Endpoint: "d:443", State: store.DeliveryPending, NextAttemptAt: emitAt.Add(-time.Second)},
	}
	got := EmitCandidates(ds, "acme", store.UnixNanos(emitAt), store.UnixNanos(emitAt.Add(time.Second)))
	want := []Candidate{
		{ID: 1, Endpoint: "a:443", Org: "acme", Next: store.UnixNanos(emitAt)},
		{ID: 4, Endpoint: "d:443", Org: "acme", Next: store.UnixNanos(emitAt.Add(-time.Second))},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("EmitCandidates = %+v, want %+v", got, want)
	}
}

// TestClaimed: a delivery stored claimed comes back as a claim returns it.
func TestClaimed(t *testing.T) {
	now := time.Unix(100, 5)
	p := store.DeliveryClaimParams{Worker: "w", Now: now.Add(time.Millisecond), Lease: time.Minute, Limit: 1}
	d := &store.DeliveryInsertParams{ID: "d1", HookID: 7, Endpoint: "a:443"}
	cd := Claimed(d, "e1", "stack_created", "stack", now, p)
	if cd.ID != "d1" || cd.EventID != "e1" || cd.HookID != 7 || cd.State != store.DeliveryRunning || cd.Attempts != 1 ||
		cd.ClaimedBy != "w" || !cd.LeaseUntil.Equal(p.Now.Add(time.Minute)) || !cd.NextAttemptAt.Equal(now) ||
		!cd.CreatedAt.Equal(now) || cd.Format == "" || cd.Body == nil {
		t.Fatalf("Claimed = %+v", cd.Delivery)
	}
}
