package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Deliveries: inserting them with their event, shared bodies, and the queue's statistics
// (the counters are in stats.go).

// runDeliveries runs the delivery tests.
func runDeliveries(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"DeliveryInsertMany", testDeliveryInsertMany},
		{"DeliveryInsertInvalid", testDeliveryInsertInvalid},
		{"SharedBodies", testSharedBodies},
		{"DeliveryStats", testDeliveryStats},
		{"DeliveryStatsCounts", testDeliveryStatsCounts},
	})
}

func testDeliveryInsertMany(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{Filter: webhook.UpdateFailed, Subject: stackScope("acme", "web", "prod"), Payload: []byte(`{}`), CreatedAt: T0}
	const n = 450 // crosses batch boundaries in batching backends
	params := make([]store.DeliveryInsertParams, n)
	for i := range params {
		params[i] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatSlack, Body: []byte(fmt.Sprintf(`{"i":%d}`, i)),
			Endpoint: fmt.Sprintf("host%d:443", i%7)}
	}
	params[3].State = store.DeliverySucceeded
	params[4].NextAttemptAt = T0.Add(time.Hour)
	params[5].ID = "explicit-id"
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params)
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := b.st.DeliveryListByEvent(b.ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n {
		t.Fatalf("DeliveryListByEvent = %d deliveries, want %d", len(ds), n)
	}
	for i, d := range ds {
		if d.ID != params[i].ID || string(d.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("delivery %d = %s %s, want %s in insertion order", i, d.ID, d.Body, params[i].ID)
		}
		wantState, wantNext := store.DeliveryPending, T0
		switch i {
		case 3:
			wantState = store.DeliverySucceeded
		case 4:
			wantNext = T0.Add(time.Hour)
		}
		if d.EventID != ev.ID || d.HookID != h.ID || d.Filter != webhook.UpdateFailed || d.Kind != webhook.KindStackUpdate ||
			d.Format != webhook.FormatSlack || d.Endpoint != params[i].Endpoint || d.State != wantState || d.Attempts != 0 ||
			!d.NextAttemptAt.Equal(wantNext) || !d.CreatedAt.Equal(T0) || !d.LeaseUntil.IsZero() || d.ClaimedBy != "" {
			t.Fatalf("delivery %d = %+v", i, d)
		}
	}
	if ds[5].ID != "explicit-id" {
		t.Fatalf("explicit delivery ID not kept: %s", ds[5].ID)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.ID] {
			t.Fatalf("delivery ID %s twice", d.ID)
		}
		seen[d.ID] = true
	}
	if got, err := b.st.DeliveryListByEvent(b.ctx, "no-such-event"); err != nil || len(got) != 0 {
		t.Fatalf("DeliveryListByEvent of an unknown event = %d, %v", len(got), err)
	}
	_, err = b.st.DeliveryGet(b.ctx, "no-such-delivery")
	wantErr(t, "DeliveryGet", err, store.ErrNotFound)
}

func testDeliveryInsertInvalid(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	evID, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	try := func(eventID string, d store.DeliveryInsertParams) error {
		return b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
			return tx.DeliveryInsertMany(b.ctx, eventID, T0, []store.DeliveryInsertParams{d})
		})
	}
	wantErr(t, "DeliveryInsertMany for an unknown event", try("no-such-event", store.DeliveryInsertParams{HookID: h.ID}), store.ErrNotFound)
	wantErr(t, "DeliveryInsertMany with a taken ID", try(evID, store.DeliveryInsertParams{ID: dids[0], HookID: h.ID}), store.ErrAlreadyExists)
	if err := try(evID, store.DeliveryInsertParams{HookID: h.ID, State: store.DeliveryRunning}); err == nil {
		t.Fatal("inserting a running delivery succeeded")
	}
	if err := try(evID, store.DeliveryInsertParams{}); err == nil {
		t.Fatal("inserting a delivery without a hook succeeded")
	}
	if err := try(evID, store.DeliveryInsertParams{HookID: 987654}); err == nil {
		t.Fatal("inserting a delivery for a missing hook succeeded")
	}
	if ds, _ := b.st.DeliveryListByEvent(b.ctx, evID); len(ds) != 1 {
		t.Fatalf("failed inserts left %d deliveries, want 1", len(ds))
	}
}

// testSharedBodies: deliveries whose body equals the event's payload, deliveries sharing one
// rendered body, and deliveries with their own body all read back byte for byte, through
// every read path (get, list, claim, attempts, redelivery), whatever the backend stores.
func testSharedBodies(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	payload := []byte(`{"kind":"stack","raw":true}`)
	slack := []byte(`{"text":"shared slack rendering"}`)
	ev := &store.Event{Filter: webhook.StackCreated, Subject: orgScope("acme"), Payload: payload, CreatedAt: T0}
	bodies := [][]byte{payload, slack, []byte(`{"own":1}`), payload, slack, slack, []byte{}, []byte(`{"own":2}`)}
	params := make([]store.DeliveryInsertParams, len(bodies))
	for i, body := range bodies {
		params[i] = store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatRaw, Body: body, Endpoint: fmt.Sprintf("e%d:443", i)}
	}
	params[2].State = store.DeliverySucceeded
	if err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		return tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params)
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := b.st.DeliveryListByEvent(b.ctx, ev.ID)
	if err != nil || len(ds) != len(bodies) {
		t.Fatalf("DeliveryListByEvent = %d, %v", len(ds), err)
	}
	for i, d := range ds {
		if string(d.Body) != string(bodies[i]) {
			t.Fatalf("listed delivery %d body = %q, want %q", i, d.Body, bodies[i])
		}
		if g := getDelivery(t, b, d.ID); string(g.Body) != string(bodies[i]) {
			t.Fatalf("DeliveryGet %d body = %q, want %q", i, g.Body, bodies[i])
		}
	}
	want := map[string][]byte{}
	for i, p := range params {
		want[p.ID] = bodies[i]
	}
	cds := claim(t, b, "w", T0, 10, 0)
	if len(cds) != len(bodies)-1 {
		t.Fatalf("claimed %d, want %d", len(cds), len(bodies)-1)
	}
	ps := make([]store.DeliveryCompleteParams, len(cds))
	for i, cd := range cds {
		if string(cd.Body) != string(want[cd.ID]) {
			t.Fatalf("claimed %s body = %q, want %q", cd.ID, cd.Body, want[cd.ID])
		}
		// Every other attempt sends something else than the stored body (say a redacted copy).
		reqBody := cd.Body
		if i%2 == 1 {
			reqBody = []byte(`{"sent":"other"}`)
		}
		ps[i] = store.DeliveryCompleteParams{ID: cd.ID, Worker: "w", Attempt: 1, State: store.DeliveryFailed, Now: T0,
			Record: store.Attempt{StartedAt: T0, RequestBody: reqBody, ResponseCode: 500}}
	}
	for i, err := range b.st.DeliveryCompleteMany(b.ctx, ps) {
		if err != nil {
			t.Fatalf("complete %d: %v", i, err)
		}
	}
	atts, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(atts) != len(ps) {
		t.Fatalf("AttemptList = %d, %v", len(atts), err)
	}
	sent := map[string][]byte{}
	for _, p := range ps {
		sent[p.ID] = p.Record.RequestBody
	}
	for _, a := range atts {
		if string(a.RequestBody) != string(sent[a.DeliveryID]) {
			t.Fatalf("attempt of %s request body = %q, want %q", a.DeliveryID, a.RequestBody, sent[a.DeliveryID])
		}
	}
	// A redelivery of a shared-body delivery records the same bytes again.
	var sharedID string
	for id, body := range want {
		if string(body) == string(slack) {
			sharedID = id
		}
	}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: sharedID, StartedAt: T0,
		RequestBody: slack, ResponseCode: 200}})
	if err != nil {
		t.Fatal(err)
	}
	atts, err = b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 1})
	if err != nil || len(atts) != 1 || atts[0].ID != a.ID || string(atts[0].RequestBody) != string(slack) {
		t.Fatalf("redelivery attempt = %+v, %v", atts, err)
	}
}

func testDeliveryStats(t *testing.T, b *testBundle) {
	st, err := b.st.DeliveryStats(b.ctx, T0)
	if err != nil {
		t.Fatal(err)
	}
	if st != (store.QueueStats{}) {
		t.Fatalf("stats of an empty store = %+v", st)
	}
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	emit(t, b, orgScope("acme"), webhook.StackCreated,
		enqueue{hook: h, next: T0.Add(-time.Minute)}, enqueue{hook: h, next: T0.Add(-time.Second)}, enqueue{hook: h, next: T0.Add(time.Hour)},
		enqueue{hook: h, next: T0.Add(-2 * time.Minute)})
	cd := claim(t, b, "w", T0, 1, 0)[0] // the one due at -2m
	st, err = b.st.DeliveryStats(b.ctx, T0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 3 || st.Running != 1 || !st.OldestDue.Equal(T0.Add(-time.Minute)) || !st.NextDue.Equal(T0.Add(-time.Minute)) || st.DeliveriesDone != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if err := complete(b, cd, store.DeliverySucceeded, T0); err != nil {
		t.Fatal(err)
	}
	claimed := claim(t, b, "w", T0, 2, 0)
	for _, c := range claimed {
		if err := complete(b, c, store.DeliveryFailed, T0); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = b.st.DeliveryStats(b.ctx, T0)
	if st.Pending != 1 || st.Running != 0 || !st.OldestDue.IsZero() || !st.NextDue.Equal(T0.Add(time.Hour)) || st.DeliveriesDone != 3 {
		t.Fatalf("stats after completions = %+v", st)
	}
}
