package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestOrgCapClaimWaitsForDirectClaim: a worker's claim that runs while an emit's direct claim
// of the same worker and organization has stored its deliveries claimed, uncommitted, does not
// count the organization blind: it waits for the emit's commit and then finds the cap reached,
// so together they never hold more than PerOrgLimit of the organization. The emit is held open
// until the claim has either returned (claimed blind: the cap is passed) or waits for a lock;
// what decides the outcome is which of the two happened, not how long anything took.
func TestOrgCapClaimWaitsForDirectClaim(t *testing.T) {
	t.Parallel()
	st := openURL(t, newDatabase(t), Config{MaxConns: 4})
	ctx := t.Context()
	h := createHook(t, st, "h", "s")
	const worker, orgCap = "w", 1
	claimParams := func(now time.Time) store.DeliveryClaimParams {
		return store.DeliveryClaimParams{Worker: worker, Now: now, Lease: 24 * time.Hour, Limit: 4, PerOrgLimit: orgCap}
	}
	// The worker is registered (as it is long before any emit), so that neither side waits
	// for the other's registration of it.
	if cds, err := st.DeliveryClaim(ctx, claimParams(t0)); err != nil || len(cds) != 0 {
		t.Fatalf("first claim = %d, %v; want nothing claimed", len(cds), err)
	}
	// A delivery of the organization due in an hour: not due for the direct claim (which
	// would otherwise leave the queue's due work first), due for the claim.
	ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"p":1}`), CreatedAt: t0}
	if err := st.EventEmit(ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(ctx, ev.ID, t0, []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`),
			Endpoint: "a:443", NextAttemptAt: t0.Add(time.Hour)}})
	}); err != nil {
		t.Fatalf("emit the queued delivery: %v", err)
	}

	// The emit claims its one delivery directly, then holds its transaction open.
	inEmit, release, emitDone := make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		emitDone <- st.EventEmit(ctx, func(tx store.EmitTx) error {
			ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{"p":2}`), CreatedAt: t0}
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			p := claimParams(t0.Add(time.Second))
			cds, err := tx.(store.EmitClaimer).DeliveryInsertClaimed(ctx, ev.ID, p.Now, []store.DeliveryInsertParams{{HookID: h.ID,
				Body: []byte(`{}`), Endpoint: "b:443"}}, p)
			if err != nil {
				return err
			}
			if len(cds) != 1 {
				return fmt.Errorf("the direct claim claimed %d deliveries, want 1", len(cds))
			}
			select {
			case inEmit <- struct{}{}:
			default:
			}
			<-release
			return nil
		})
	}()
	select {
	case <-inEmit:
	case err := <-emitDone:
		t.Fatalf("the emit ended before holding its direct claim open: %v", err)
	}

	type result struct {
		cds []*store.ClaimedDelivery
		err error
	}
	claimDone := make(chan result, 1)
	go func() {
		cds, err := st.DeliveryClaim(ctx, claimParams(t0.Add(2*time.Hour)))
		claimDone <- result{cds, err}
	}()
	var claimed *result
	for claimed == nil && !waitingForLock(t, st) {
		select {
		case r := <-claimDone:
			claimed = &r
		case <-time.After(time.Millisecond):
		}
	}
	close(release)
	if err := <-emitDone; err != nil {
		t.Fatalf("emit with a direct claim: %v", err)
	}
	if claimed == nil {
		r := <-claimDone
		claimed = &r
	}
	if claimed.err != nil {
		t.Fatalf("claim: %v", claimed.err)
	}
	var running int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE state = 'running' AND claimed_by = $1 AND org = 'acme'`,
		worker).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if running > orgCap {
		t.Fatalf("worker %s holds %d running deliveries of acme (the claim took %d while the direct claim was uncommitted), past PerOrgLimit %d",
			worker, running, len(claimed.cds), orgCap)
	}
	if running != orgCap || len(claimed.cds) != 0 {
		t.Fatalf("worker %s holds %d running deliveries of acme, the claim took %d; want the direct claim's one and none from the claim",
			worker, running, len(claimed.cds))
	}
}

// waitingForLock reports whether a transaction on st's database waits for an advisory lock.
func waitingForLock(t *testing.T, st *Store) bool {
	t.Helper()
	var waiting bool
	err := st.Pool().QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`).Scan(&waiting)
	if err != nil && !errors.Is(err, t.Context().Err()) {
		t.Fatalf("look for a transaction waiting for a lock: %v", err)
	}
	return waiting
}
