package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Attempts outside the worker loop: pings, redeliveries, and the attempt history's pages.

// runAttempts runs the attempt tests.
func runAttempts(t *testing.T, open Opener) {
	runTests(t, open, []storeTest{
		{"AttemptRecordPing", testAttemptRecordPing},
		{"AttemptRecordRedelivery", testAttemptRecordRedelivery},
		{"AttemptListPaging", testAttemptListPaging},
	})
}

func testAttemptRecordPing(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	ev := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: orgScope("acme"), Payload: []byte(`{"ping":true}`), CreatedAt: T0}
	d := &store.DeliveryInsertParams{HookID: h.ID, Format: webhook.FormatRaw, Body: []byte(`{"ping":true}`), Endpoint: "example.com:443"}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev, Delivery: d, Now: T0,
		Record: store.Attempt{StartedAt: T0, Duration: time.Millisecond, RequestURL: h.PayloadURL, ResponseCode: 204}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == 0 || a.Number != 1 || a.HookID != h.ID || a.DeliveryID == "" || a.DeliveryID != d.ID || a.Filter != webhook.Ping || a.Kind != webhook.KindPing {
		t.Fatalf("ping attempt = %+v", a)
	}
	if _, err := b.st.EventGet(b.ctx, ev.ID); err != nil {
		t.Fatalf("ping event not stored: %v", err)
	}
	got := getDelivery(t, b, a.DeliveryID)
	if got.State != store.DeliverySucceeded || got.Attempts != 1 || got.EventID != ev.ID {
		t.Fatalf("ping delivery = %+v", got)
	}
	if c := claim(t, b, "w", T0.Add(time.Hour), 10, 0); len(c) != 0 {
		t.Fatal("a ping delivery was queued for the workers")
	}
	// A failed ping is recorded as failed.
	ev2 := &store.Event{Filter: webhook.Ping, Kind: webhook.KindPing, Subject: orgScope("acme"), Payload: []byte(`{}`), CreatedAt: T0}
	a2, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev2, Delivery: &store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`)},
		Now: T0, Record: store.Attempt{StartedAt: T0, Error: "connection refused"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := getDelivery(t, b, a2.DeliveryID); got.State != store.DeliveryFailed || got.LastError != "connection refused" {
		t.Fatalf("failed ping delivery = %+v", got)
	}
	if atts, _ := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID}); len(atts) != 2 || atts[0].ID != a2.ID {
		t.Fatalf("attempt list after pings = %d", len(atts))
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: ev, Delivery: nil, Now: T0})
	if err == nil {
		t.Fatal("AttemptRecord with an event and no delivery succeeded")
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Event: &store.Event{ID: ev.ID, Filter: webhook.Ping, Subject: orgScope("acme"), Payload: []byte(`{}`)},
		Delivery: &store.DeliveryInsertParams{HookID: h.ID, Body: []byte(`{}`)}, Now: T0})
	wantErr(t, "AttemptRecord reusing an event ID", err, store.ErrAlreadyExists)
}

func testAttemptRecordRedelivery(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h})
	cd := claim(t, b, "w", T0, 1, 0)[0]
	if err := complete(b, cd, store.DeliveryFailed, T0); err != nil {
		t.Fatal(err)
	}
	a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0.Add(time.Hour),
		Record: store.Attempt{DeliveryID: dids[0], StartedAt: T0.Add(time.Hour), RequestBody: cd.Body, ResponseCode: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Number != 2 || a.HookID != h.ID || a.Filter != webhook.StackCreated || a.Kind != webhook.KindStack {
		t.Fatalf("redelivery attempt = %+v", a)
	}
	if d := getDelivery(t, b, dids[0]); d.Attempts != 2 {
		t.Fatalf("delivery attempts after redelivery = %d", d.Attempts)
	}
	_, err = b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: "missing"}})
	wantErr(t, "AttemptRecord for an unknown delivery", err, store.ErrNotFound)
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0}); err == nil {
		t.Fatal("AttemptRecord without a delivery ID succeeded")
	}
	if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Delivery: &store.DeliveryInsertParams{HookID: h.ID}, Now: T0}); err == nil {
		t.Fatal("AttemptRecord with a delivery and no event succeeded")
	}
}

func testAttemptListPaging(t *testing.T, b *testBundle) {
	h := createHook(t, b, spec(orgScope("acme"), "h"))
	other := createHook(t, b, spec(orgScope("acme"), "other"))
	_, dids := emit(t, b, orgScope("acme"), webhook.StackCreated, enqueue{hook: h}, enqueue{hook: other})
	var want []int64
	for i := range 7 {
		a, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: dids[0], StartedAt: T0.Add(time.Duration(i))}})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]int64{a.ID}, want...)
		if _, err := b.st.AttemptRecord(b.ctx, store.AttemptRecordParams{Now: T0, Record: store.Attempt{DeliveryID: dids[1]}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	var before int64
	pages := 0
	for {
		page, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: 3, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		pages++
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		for _, a := range page {
			if a.HookID != h.ID {
				t.Fatalf("attempt of hook %d in hook %d's list", a.HookID, h.ID)
			}
			got = append(got, a.ID)
		}
		before = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("paged IDs = %v in %d pages, want %v newest first in 3 pages", got, pages, want)
	}
	all, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(all) != 7 {
		t.Fatalf("AttemptList with the default limit = %d, %v", len(all), err)
	}
	if _, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Limit: -1}); err == nil {
		t.Fatal("AttemptList with a negative limit succeeded")
	}
	if _, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: h.ID, Before: -1}); err == nil {
		t.Fatal("AttemptList with a negative cursor succeeded")
	}
	if none, err := b.st.AttemptList(b.ctx, store.AttemptListParams{HookID: 999999}); err != nil || len(none) != 0 {
		t.Fatalf("AttemptList of an unknown hook = %d, %v", len(none), err)
	}
}
