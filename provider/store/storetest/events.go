package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Events: EventEmit's transaction, stored events, and idempotency keys.

// runEvents runs the event tests.
func runEvents(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"EventEmitRollback", testEventEmitRollback},
		{"EventInsertGet", testEventInsertGet},
		{"Idempotency", testIdempotency},
	})
}

func testEventEmitRollback(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{ID: "ev-rollback", Filter: webhook.StackCreated, Subject: orgScope("acme"), Payload: []byte(`{}`), CreatedAt: T0}
	boom := errors.New("boom")
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, T0, []store.DeliveryInsertParams{{ID: "d-rollback", HookID: h.ID, Body: []byte(`{}`)}}); err != nil {
			return err
		}
		if err := tx.IdempotencyPut(b.ctx, "acme", "k", []byte("resp"), T0); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "EventEmit", err, boom)
	_, err = b.st.EventGet(b.ctx, "ev-rollback")
	wantErr(t, "EventGet after rollback", err, store.ErrNotFound)
	_, err = b.st.DeliveryGet(b.ctx, "d-rollback")
	wantErr(t, "DeliveryGet after rollback", err, store.ErrNotFound)
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		_, err := tx.IdempotencyGet(b.ctx, "acme", "k", T0.Add(-time.Hour))
		return err
	})
	wantErr(t, "IdempotencyGet after rollback", err, store.ErrNotFound)
}

func testEventInsertGet(t *testing.T, b *testBundle) {
	ev := &store.Event{Filter: webhook.DeploymentQueued, Subject: stackScope("acme", "web", "prod"), Payload: []byte(`{"a":1}`),
		Cause: []string{"acme/web/dev", "acme/web/prod"}, CreatedAt: T0}
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, ev) }); err != nil {
		t.Fatal(err)
	}
	got, err := b.st.EventGet(b.ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Filter != ev.Filter || got.Kind != webhook.KindDeployment || got.Subject != ev.Subject ||
		string(got.Payload) != `{"a":1}` || !slices.Equal(got.Cause, ev.Cause) || !got.CreatedAt.Equal(T0) {
		t.Fatalf("EventGet = %+v, want %+v", got, ev)
	}
	dup := *ev
	err = b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, &dup) })
	wantErr(t, "EventInsert of a taken ID", err, store.ErrAlreadyExists)
	_, err = b.st.EventGet(b.ctx, "no-such-event")
	wantErr(t, "EventGet", err, store.ErrNotFound)
	for _, bad := range []*store.Event{nil, {Filter: webhook.StackCreated, Payload: []byte(`{}`)}, {Filter: webhook.StackCreated, Subject: orgScope("acme")}} {
		if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.EventInsert(b.ctx, bad) }); err == nil {
			t.Fatalf("EventInsert(%+v) succeeded", bad)
		}
	}
}

func testIdempotency(t *testing.T, b *testBundle) {
	get := func(org, key string, since time.Time) ([]byte, error) {
		var out []byte
		err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			var err error
			out, err = tx.IdempotencyGet(b.ctx, org, key, since)
			return err
		})
		return out, err
	}
	put := func(org, key, resp string, now time.Time) {
		t.Helper()
		if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.IdempotencyPut(b.ctx, org, key, []byte(resp), now) }); err != nil {
			t.Fatal(err)
		}
	}
	_, err := get("acme", "k1", T0.Add(-24*time.Hour))
	wantErr(t, "IdempotencyGet of an unknown key", err, store.ErrNotFound)
	put("acme", "k1", "first", T0)
	if got, err := get("acme", "k1", T0.Add(-24*time.Hour)); err != nil || string(got) != "first" {
		t.Fatalf("IdempotencyGet inside the window = %q, %v", got, err)
	}
	if got, err := get("acme", "k1", T0); err != nil || string(got) != "first" {
		t.Fatalf("IdempotencyGet at the window's edge = %q, %v", got, err)
	}
	_, err = get("acme", "k1", T0.Add(time.Nanosecond))
	wantErr(t, "IdempotencyGet after the window", err, store.ErrNotFound)
	_, err = get("globex", "k1", T0.Add(-time.Hour))
	wantErr(t, "IdempotencyGet in another org", err, store.ErrNotFound)
	// After the window the key can be used again.
	later := T0.Add(25 * time.Hour)
	put("acme", "k1", "second", later)
	if got, err := get("acme", "k1", later.Add(-24*time.Hour)); err != nil || string(got) != "second" {
		t.Fatalf("IdempotencyGet of a reused key = %q, %v", got, err)
	}
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error { return tx.IdempotencyPut(b.ctx, "", "k", nil, T0) }); err == nil {
		t.Fatal("IdempotencyPut without an organization succeeded")
	}
}
