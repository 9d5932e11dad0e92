package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Cycles: a worker's completions and its next claim in one call (DeliveryCycle).

// runCycles runs the cycle tests.
func runCycles(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"Cycle", testCycle},
		{"CycleInvalidClaim", testCycleInvalidClaim},
		{"CycleCanceled", testCycleCanceled},
	})
}

// testCycle: one DeliveryCycle records finished attempts and then claims, seeing the endpoint
// capacity the completions freed; with Limit 0 it only records, and with nothing to do it
// does nothing.
func testCycle(t *testing.T, b *testBundle) {
	res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{})
	if err != nil || len(res.CompleteErrs) != 0 || len(res.Claimed) != 0 {
		t.Fatalf("empty DeliveryCycle = %+v, %v", res, err)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h, endpoint: "one:443"}, enqueue{hook: h, endpoint: "one:443"}, enqueue{hook: h, endpoint: "one:443"},
		enqueue{hook: h, endpoint: "one:443", next: T0.Add(time.Hour)})
	claimP := store.DeliveryClaimParams{Worker: "w", Now: T0, Lease: time.Minute, Limit: 5, PerEndpointLimit: 2}
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Claim: claimP})
	if err != nil || len(res.Claimed) != 2 || len(res.CompleteErrs) != 0 {
		t.Fatalf("first cycle = %d claimed, %v", len(res.Claimed), err)
	}
	if got := ids(res.Claimed); !slices.Equal(got, dids[:2]) {
		t.Fatalf("first cycle claimed %v, want %v", got, dids[:2])
	}
	first := res.Claimed[0]
	if first.URL != h.PayloadURL || !first.HookActive || string(first.Body) != `{"n":0}` || first.ClaimedBy != "w" || first.Attempts != 1 {
		t.Fatalf("claimed delivery = %+v", first)
	}
	done := store.DeliveryCompleteParams{ID: first.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
		Record: store.Attempt{StartedAt: T0, RequestURL: first.URL, RequestBody: first.Body, ResponseCode: 204}}
	lost := done
	lost.ID, lost.Worker = res.Claimed[1].ID, "someone-else"
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{done, lost}, Claim: claimP})
	if err != nil || len(res.CompleteErrs) != 2 || res.CompleteErrs[0] != nil {
		t.Fatalf("second cycle = %+v, %v", res, err)
	}
	wantErr(t, "completion by another worker in a cycle", res.CompleteErrs[1], store.ErrLeaseLost)
	// The completion freed one of the endpoint's two slots, and the claim in the same
	// transaction took it; the delivery due in an hour stays pending.
	if got := ids(res.Claimed); !slices.Equal(got, dids[2:3]) {
		t.Fatalf("second cycle claimed %v, want %v", got, dids[2:3])
	}
	want := []store.DeliveryState{store.DeliverySucceeded, store.DeliveryRunning, store.DeliveryRunning, store.DeliveryPending}
	for i, id := range dids {
		if d := getDelivery(t, b, id); d.State != want[i] {
			t.Fatalf("delivery %d is %s, want %s", i, d.State, want[i])
		}
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != 1 || atts[0].DeliveryID != first.ID || atts[0].ResponseCode != 204 || string(atts[0].RequestBody) != `{"n":0}` {
		t.Fatalf("attempts after the cycle = %+v, %v", atts, err)
	}
	// Limit 0: record only.
	second := res.Claimed[0]
	rec := store.DeliveryCompleteParams{ID: second.ID, Worker: "w", Attempt: 1, State: store.DeliveryFailed, Now: T0,
		Record: store.Attempt{StartedAt: T0, ResponseCode: 500}}
	res, err = b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{rec}})
	if err != nil || len(res.CompleteErrs) != 1 || res.CompleteErrs[0] != nil || len(res.Claimed) != 0 {
		t.Fatalf("record-only cycle = %+v, %v", res, err)
	}
	if d := getDelivery(t, b, second.ID); d.State != store.DeliveryFailed {
		t.Fatalf("delivery after a record-only cycle is %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryRunning {
		t.Fatalf("a record-only cycle claimed: delivery is %s", d.State)
	}
}

// testCycleInvalidClaim: an invalid claim fails the whole cycle before anything is written.
func testCycleInvalidClaim(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	done := store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0,
		Record: store.Attempt{StartedAt: T0, ResponseCode: 200}}
	for _, bad := range []store.DeliveryClaimParams{
		{Worker: "", Now: T0, Lease: time.Minute, Limit: 1},
		{Worker: "w", Now: T0, Lease: 0, Limit: 1},
		{Worker: "w", Now: T0, Lease: time.Minute, Limit: 1, PerEndpointLimit: -1},
	} {
		res, err := b.st.DeliveryCycle(b.ctx, store.DeliveryCycleParams{Complete: []store.DeliveryCompleteParams{done}, Claim: bad})
		if err == nil {
			t.Fatalf("DeliveryCycle with claim %+v succeeded", bad)
		}
		if len(res.CompleteErrs) != 1 || res.CompleteErrs[0] == nil || len(res.Claimed) != 0 {
			t.Fatalf("DeliveryCycle with claim %+v = %+v, want the error for the completion too and no claim", bad, res)
		}
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliveryRunning {
		t.Fatalf("a refused cycle completed the delivery: %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("a refused cycle claimed: delivery is %s", d.State)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a refused cycle recorded %d attempts", len(atts))
	}
}

// testCycleCanceled: when the transaction cannot run, the cycle returns the error, sets it for
// every valid completion, and writes and claims nothing; an invalid completion keeps its own
// error.
func testCycleCanceled(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	res, err := b.st.DeliveryCycle(ctx, store.DeliveryCycleParams{
		Complete: []store.DeliveryCompleteParams{
			{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded, Now: T0},
			{ID: cd.ID, Worker: "w", Attempt: 1, State: "bogus", Now: T0},
		},
		Claim: store.DeliveryClaimParams{Worker: "w", Now: T0, Lease: time.Minute, Limit: 5},
	})
	if !errors.Is(err, context.Canceled) || len(res.CompleteErrs) != 2 || !errors.Is(res.CompleteErrs[0], context.Canceled) ||
		res.CompleteErrs[1] == nil || errors.Is(res.CompleteErrs[1], context.Canceled) || len(res.Claimed) != 0 {
		t.Fatalf("DeliveryCycle with a canceled context = %+v, %v", res, err)
	}
	if d := getDelivery(t, b, dids[0]); d.State != store.DeliveryRunning {
		t.Fatalf("a canceled cycle completed the delivery: %s", d.State)
	}
	if d := getDelivery(t, b, dids[1]); d.State != store.DeliveryPending {
		t.Fatalf("a canceled cycle claimed: delivery is %s", d.State)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 0 {
		t.Fatalf("a canceled cycle recorded %d attempts", len(atts))
	}
}
