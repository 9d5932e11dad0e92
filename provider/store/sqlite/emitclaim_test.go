package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// emitClaimed stores an event with deliveries ds through DeliveryInsertClaimed with claim p,
// and returns what it claimed. ds's IDs are filled in.
func emitClaimed(t *testing.T, s *Store, ds []store.DeliveryInsertParams, p store.DeliveryClaimParams) []*store.ClaimedDelivery {
	t.Helper()
	ctx := context.Background()
	var cds []*store.ClaimedDelivery
	err := s.EventEmit(ctx, func(tx store.EmitTx) error {
		ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Payload: []byte(`{}`), CreatedAt: p.Now}
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		var err error
		cds, err = tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, p.Now, ds, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return cds
}

func directParams(worker string, now time.Time, limit int) store.DeliveryClaimParams {
	return store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Hour, Limit: limit, PerEndpointLimit: 4}
}

// TestDeliveryInsertClaimed: with nothing due in the queue, an emit stores up to its limit of
// deliveries claimed, exactly as a claim leaves them (running, attempt 1, leased, held by the
// worker, with the hook's URL and secret); the rest stay pending for the claim loop, and the
// claimed ones complete like claimed ones.
func TestDeliveryInsertClaimed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).st
	now := time.Now()
	h := benchHook(t, s, now)
	ds := spread(h.ID, []byte(`{"n":1}`), 3, 3, time.Time{})
	cds := emitClaimed(t, s, ds, directParams("w", now, 2))
	if len(cds) != 2 {
		t.Fatalf("claimed %d deliveries, want 2 (the limit)", len(cds))
	}
	for i, cd := range cds {
		if cd.ID != ds[i].ID || cd.State != store.DeliveryRunning || cd.Attempts != 1 || cd.ClaimedBy != "w" ||
			!cd.LeaseUntil.Equal(store.FromUnixNanos(store.UnixNanos(now.Add(time.Hour)))) || cd.URL != "https://example.com/hook" ||
			cd.Secret != "s" || !cd.HookActive || string(cd.Body) != `{"n":1}` || cd.Filter != webhook.UpdateSucceeded {
			t.Errorf("claimed delivery %d = %+v; want delivery %s running, attempt 1, held by w for an hour, with the hook's URL and secret", i, cd.Delivery, ds[i].ID)
		}
		stored, err := s.DeliveryGet(ctx, cd.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State != store.DeliveryRunning || stored.Attempts != 1 || stored.ClaimedBy != "w" || !stored.LeaseUntil.Equal(cd.LeaseUntil) {
			t.Errorf("stored delivery %s = %+v; want it as claimed", cd.ID, stored)
		}
	}
	stats, err := s.DeliveryStats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Running != 2 || stats.Pending != 1 {
		t.Errorf("stats %+v, want 2 running and 1 pending", stats)
	}
	// The claim loop gets the one left pending, and only it.
	left, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: now, Lease: time.Hour, Limit: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != ds[2].ID {
		t.Fatalf("the claim loop claimed %d deliveries, want the one left pending (%s)", len(left), ds[2].ID)
	}
	for _, cd := range append(cds, left...) {
		if err := s.DeliveryComplete(ctx, succeeded(cd, now)); err != nil {
			t.Fatalf("complete %s: %v", cd.ID, err)
		}
	}
	if stats, _ = s.DeliveryStats(ctx, now); stats.Running != 0 || stats.Pending != 0 {
		t.Errorf("stats after completing %+v, want nothing queued", stats)
	}
}

// TestDeliveryInsertClaimedLeavesDueWorkFirst: while the queue holds due work (a pending
// delivery, or one whose lease expired), or an earlier emit of the same transaction left one
// pending, an emit claims nothing: the claim loop serves the older work first.
func TestDeliveryInsertClaimedLeavesDueWorkFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	t.Run("pending", func(t *testing.T) {
		s := setup(t).st
		h := benchHook(t, s, now)
		emitDeliveries(t, s, []byte(`{}`), now, spread(h.ID, nil, 1, 1, now))
		if cds := emitClaimed(t, s, spread(h.ID, nil, 1, 1, time.Time{}), directParams("w", now, 4)); len(cds) != 0 {
			t.Fatalf("claimed %d deliveries while a due one waits, want none", len(cds))
		}
	})
	t.Run("expired lease", func(t *testing.T) {
		s := setup(t).st
		h := benchHook(t, s, now)
		emitDeliveries(t, s, []byte(`{}`), now, spread(h.ID, nil, 1, 1, now))
		if _, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "gone", Now: now, Lease: time.Second, Limit: 1}); err != nil {
			t.Fatal(err)
		}
		if cds := emitClaimed(t, s, spread(h.ID, nil, 1, 1, time.Time{}), directParams("w", now.Add(time.Minute), 4)); len(cds) != 0 {
			t.Fatalf("claimed %d deliveries while an expired lease waits, want none", len(cds))
		}
	})
	t.Run("pending earlier in the transaction", func(t *testing.T) {
		s := setup(t).st
		h := benchHook(t, s, now)
		var second []*store.ClaimedDelivery
		err := s.EventEmit(ctx, func(tx store.EmitTx) error {
			ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: now}
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			if err := tx.DeliveryInsertMany(ctx, ev.ID, now, spread(h.ID, nil, 1, 1, time.Time{})); err != nil {
				return err
			}
			var err error
			second, err = tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, now, spread(h.ID, nil, 1, 1, time.Time{}), directParams("w", now, 4))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(second) != 0 {
			t.Fatalf("claimed %d deliveries after the transaction left one pending, want none", len(second))
		}
	})
	t.Run("not due yet", func(t *testing.T) {
		s := setup(t).st
		h := benchHook(t, s, now)
		if cds := emitClaimed(t, s, spread(h.ID, nil, 1, 1, now.Add(time.Hour)), directParams("w", now, 4)); len(cds) != 0 {
			t.Fatalf("claimed %d deliveries due in an hour, want none", len(cds))
		}
	})
}

// TestDeliveryInsertClaimedKeepsCaps: direct claims count what every holder runs at an
// endpoint (PerEndpointLimit) and what this worker runs for the organization (PerOrgLimit), as
// claims do, and pick fairly among the emit's endpoints.
func TestDeliveryInsertClaimedKeepsCaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).st
	now := time.Now()
	h := benchHook(t, s, now)
	// Another worker holds 3 of endpoint h0's 4 slots.
	emitDeliveries(t, s, []byte(`{}`), now, spread(h.ID, nil, 3, 1, now))
	if got, err := s.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "other", Now: now, Lease: time.Hour, Limit: 3}); err != nil || len(got) != 3 {
		t.Fatalf("the other worker claimed %d (%v), want 3", len(got), err)
	}
	// Four deliveries to h0 and four to h1: h0 has one slot left.
	ds := append(spread(h.ID, nil, 4, 1, time.Time{}), spread(h.ID, nil, 4, 1, time.Time{})...)
	for i := 4; i < 8; i++ {
		ds[i].Endpoint = "h1.example.com:443"
	}
	cds := emitClaimed(t, s, ds, directParams("w", now, 8))
	per := map[string]int{}
	for _, cd := range cds {
		per[cd.Endpoint]++
	}
	if per["h0.example.com:443"] != 1 || per["h1.example.com:443"] != 4 {
		t.Fatalf("claimed %v, want 1 at h0 (its cap counts the other worker's 3) and 4 at h1", per)
	}
	// The organization cap counts this worker's own running deliveries.
	s2 := setup(t).st
	h2 := benchHook(t, s2, now)
	p := directParams("w", now, 8)
	p.PerEndpointLimit, p.PerOrgLimit = 0, 2
	if cds := emitClaimed(t, s2, spread(h2.ID, nil, 5, 5, time.Time{}), p); len(cds) != 2 {
		t.Fatalf("claimed %d deliveries of one organization with PerOrgLimit 2, want 2", len(cds))
	}
}

// TestDeliveryInsertClaimedRollsBack: an emit that fails after claiming leaves nothing; bad
// claim parameters are refused naming the field.
func TestDeliveryInsertClaimedRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setup(t).st
	now := time.Now()
	h := benchHook(t, s, now)
	boom := errors.New("boom")
	err := s.EventEmit(ctx, func(tx store.EmitTx) error {
		ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: now}
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		if cds, err := tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, now, spread(h.ID, nil, 2, 1, time.Time{}), directParams("w", now, 2)); err != nil || len(cds) != 2 {
			t.Errorf("claimed %d (%v), want 2", len(cds), err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("emit error %v, want the callback's", err)
	}
	if stats, _ := s.DeliveryStats(ctx, now); stats.Running != 0 || stats.Pending != 0 {
		t.Errorf("stats %+v after a failed emit, want nothing stored", stats)
	}
	err = s.EventEmit(ctx, func(tx store.EmitTx) error {
		ev := &store.Event{Filter: webhook.UpdateSucceeded, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: now}
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		_, err := tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, now, spread(h.ID, nil, 1, 1, time.Time{}), store.DeliveryClaimParams{Now: now, Lease: time.Hour, Limit: 1})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "Worker") {
		t.Fatalf("a direct claim without a worker: error %v, want one naming Worker", err)
	}
}
