package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestAttemptsRebuild: migration 010 rebuilds attempts without AUTOINCREMENT keeping every row
// and id, its down migration puts AUTOINCREMENT back with the same rows, and ids keep growing
// after either.
func TestAttemptsRebuild(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	h, err := b.st.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "h",
		PayloadURL: "https://example.com", Active: true}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	attempt := func() {
		t.Helper()
		ev := &store.Event{Filter: webhook.StackCreated, Subject: webhook.Scope{Org: "acme"}, Payload: []byte(`{}`), CreatedAt: time.Now()}
		if err := b.st.EventEmit(ctx, func(tx store.EmitTx) error {
			if err := tx.EventInsert(ctx, ev); err != nil {
				return err
			}
			return tx.DeliveryInsertMany(ctx, ev.ID, time.Now(), []store.DeliveryInsertParams{{HookID: h.ID, Body: []byte(`{}`)}})
		}); err != nil {
			t.Fatal(err)
		}
		cds, err := b.st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "w", Now: time.Now(), Lease: time.Minute, Limit: 1})
		if err != nil || len(cds) != 1 {
			t.Fatal(len(cds), err)
		}
		if err := b.st.DeliveryComplete(ctx, store.DeliveryCompleteParams{ID: cds[0].ID, Worker: "w", Attempt: 1, State: store.DeliverySucceeded,
			Now: time.Now(), Record: store.Attempt{StartedAt: time.Now(), ResponseCode: 200, ResponseBody: []byte("ok")}}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() string {
		t.Helper()
		as, err := b.st.AttemptList(ctx, store.AttemptListParams{HookID: h.ID})
		if err != nil {
			t.Fatal(err)
		}
		var s strings.Builder
		for _, a := range as {
			fmt.Fprintf(&s, "%d %s %d %d %s;", a.ID, a.DeliveryID, a.Number, a.ResponseCode, a.ResponseBody)
		}
		return s.String()
	}
	autoinc := func() bool {
		t.Helper()
		var q string
		if err := b.st.DB().QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'attempts'`).Scan(&q); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(q, "AUTOINCREMENT")
	}
	if autoinc() {
		t.Fatal("attempts still has AUTOINCREMENT after migration 010")
	}
	attempt()
	attempt()
	want := rows()
	if err := b.st.migrateDown(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if !autoinc() {
		t.Fatal("migrating below 010 did not put AUTOINCREMENT back")
	}
	if got := rows(); got != want {
		t.Fatalf("after migrating down the attempts are\n%s\nwant\n%s", got, want)
	}
	attempt()
	want = rows()
	if err := b.st.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rows(); got != want {
		t.Fatalf("after migrating up again the attempts are\n%s\nwant\n%s", got, want)
	}
	attempt()
	as, err := b.st.AttemptList(ctx, store.AttemptListParams{HookID: h.ID})
	if err != nil || len(as) != 4 {
		t.Fatal(len(as), err)
	}
	for i := 1; i < len(as); i++ {
		if as[i-1].ID <= as[i].ID {
			t.Fatalf("attempt ids are not newest first and growing: %d then %d", as[i-1].ID, as[i].ID)
		}
	}
}
