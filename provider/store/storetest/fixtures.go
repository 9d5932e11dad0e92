package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Fixtures and assertions the suite's files share.

func orgScope(org string) webhook.Scope { return webhook.Scope{Org: org} }

func stackScope(org, project, stack string) webhook.Scope {
	return webhook.Scope{Org: org, Project: project, Stack: stack}
}

func envScope(org, project, env string) webhook.Scope {
	return webhook.Scope{Org: org, Project: project, Environment: env}
}

func spec(sc webhook.Scope, name string) webhook.Spec {
	return webhook.Spec{Scope: sc, Name: name, DisplayName: "hook " + name, PayloadURL: "https://example.com/" + name, Active: true}
}

func createHook(t *testing.T, b *testBundle, s webhook.Spec) *store.Hook {
	t.Helper()
	h, err := b.st.HookCreate(b.ctx, store.HookCreateParams{Spec: s, Now: T0})
	if err != nil {
		t.Fatalf("HookCreate(%s): %v", s.Scope.String()+"/"+s.Name, err)
	}
	return h
}

type enqueue struct {
	hook     *store.Hook
	endpoint string
	next     time.Time
}

// emit stores one event with a delivery per entry and returns the delivery IDs.
func emit(t *testing.T, b *testBundle, subject webhook.Scope, f webhook.Filter, ds ...enqueue) (string, []string) {
	t.Helper()
	ev := &store.Event{Filter: f, Kind: f.Kind(), Subject: subject, Payload: []byte(`{"kind":"` + string(f.Kind()) + `"}`), CreatedAt: T0}
	var ids []string
	err := b.st.EventEmit(b.ctx, func(tx store.EmitTx) error {
		if err := tx.EventInsert(b.ctx, ev); err != nil {
			return err
		}
		params := insertParams(ds)
		if err := tx.DeliveryInsertMany(b.ctx, ev.ID, T0, params); err != nil {
			return err
		}
		for _, p := range params {
			ids = append(ids, p.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EventEmit: %v", err)
	}
	if ev.ID == "" {
		t.Fatal("EventInsert did not set the event ID")
	}
	for _, id := range ids {
		if id == "" {
			t.Fatal("DeliveryInsertMany did not set a delivery ID")
		}
	}
	return ev.ID, ids
}

// insertParams are the deliveries of ds, pending, with the body {"n":i} (i their position) and
// the endpoint example.com:443 unless ds names one.
func insertParams(ds []enqueue) []store.DeliveryInsertParams {
	params := make([]store.DeliveryInsertParams, len(ds))
	for i, d := range ds {
		ep := d.endpoint
		if ep == "" {
			ep = "example.com:443"
		}
		params[i] = store.DeliveryInsertParams{HookID: d.hook.ID, Format: d.hook.Format, Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Endpoint: ep, State: store.DeliveryPending, NextAttemptAt: d.next}
	}
	return params
}

func claim(t *testing.T, b *testBundle, worker string, now time.Time, limit, perEndpoint int) []*store.ClaimedDelivery {
	t.Helper()
	cds, err := b.st.DeliveryClaim(b.ctx, store.DeliveryClaimParams{Worker: worker, Now: now, Lease: time.Minute, Limit: limit, PerEndpointLimit: perEndpoint})
	if err != nil {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	return cds
}

func complete(b *testBundle, cd *store.ClaimedDelivery, state store.DeliveryState, now time.Time) error {
	return b.st.DeliveryComplete(b.ctx, store.DeliveryCompleteParams{
		ID: cd.ID, Worker: cd.ClaimedBy, Attempt: cd.Attempts, State: state, Now: now,
		NextAttemptAt: now.Add(time.Minute),
		Record:        store.Attempt{StartedAt: now, Duration: time.Millisecond, RequestURL: cd.URL, RequestBody: cd.Body, ResponseCode: 200},
	})
}

func getDelivery(t *testing.T, b *testBundle, id string) *store.Delivery {
	t.Helper()
	d, err := b.st.DeliveryGet(b.ctx, id)
	if err != nil {
		t.Fatalf("DeliveryGet(%s): %v", id, err)
	}
	return d
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func wantNoSecret(t *testing.T, h *store.Hook) {
	t.Helper()
	if h.Secret != "" {
		t.Fatalf("hook %s came back with its secret", h.Ref())
	}
}

func sha(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func ids(ds []*store.ClaimedDelivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func refs(hs []*store.Hook) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Ref().String()
	}
	return out
}
